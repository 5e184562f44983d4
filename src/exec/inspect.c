/* What an operator reads outside function calls: the tables, a page of
 * documents, a document by id. Each is a read at the latest snapshot,
 * here so that the layers above reach the store only through exec. */
#include "exec/exec_int.h"

static int no_store(cvx_err_t *err) {
    return cvx_err_set(err, CVX_E_INTERNAL, "no database is attached to this runtime");
}

int cvx_exec_list_tables(cvx_runtime_t *rt, cvx_buf_t *out_json, cvx_err_t *err) {
    cvx_store_t *store = cvx_runtime_store(rt);
    return store ? cvx_store_list_tables(store, out_json, err) : no_store(err);
}

int cvx_exec_read_table(cvx_runtime_t *rt, const char *table, const char *cursor, int64_t limit, cvx_buf_t *out_json,
                        cvx_err_t *err) {
    cvx_store_t *store = cvx_runtime_store(rt);
    if (!store) return no_store(err);
    cvx_txn_t *t = NULL;
    cvx_query_t q = {.table = table, .limit = limit, .cursor = cursor};
    int rc = cvx_txn_begin(store, CVX_TXN_READ, 0, &t, err);
    if (!rc) rc = cvx_txn_query(t, &q, out_json, err);
    cvx_txn_abort(t);
    return rc;
}

int cvx_exec_read_document(cvx_runtime_t *rt, const char *id, size_t id_len, cvx_buf_t *out_json, cvx_err_t *err) {
    cvx_store_t *store = cvx_runtime_store(rt);
    if (!store) return no_store(err);
    cvx_txn_t *t = NULL;
    int rc = cvx_txn_begin(store, CVX_TXN_READ, 0, &t, err);
    if (!rc) rc = cvx_txn_get(t, id, id_len, out_json, err);
    cvx_txn_abort(t);
    return rc;
}
