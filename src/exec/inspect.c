/* What an operator reads and sets outside function calls: the tables, a
 * page of documents, a document by id (each a read at the latest snapshot),
 * and the environment variables; here so that the layers above reach the
 * store only through exec. */
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

typedef struct {
    const cvx_value_t *changes;
} env_op_t;

static int env_list(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    (void)arg;
    return cvx_abi_env_read(txn, NULL, 0, out, err);
}

static int env_change(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    env_op_t *op = arg;
    int rc = cvx_abi_env_update(txn, op->changes, err);
    if (!rc) rc = cvx_abi_env_read(txn, NULL, 0, out, err);
    return rc;
}

int cvx_exec_env(cvx_runtime_t *rt, const char *changes_json, size_t len, cvx_buf_t *out_json, cvx_err_t *err) {
    if (!changes_json) return cvx_exec_with_read_txn(rt, env_list, NULL, out_json, err);
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_value_t *body = NULL;
    int rc = cvx_json_parse(a, changes_json, len, &body, err);
    if (!rc && body->type != CVX_T_OBJECT)
        rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "expected {\"changes\": [{\"name\": ..., \"value\": string or null}]}");
    env_op_t op = {rc ? NULL : cvx_obj_get_cstr(body, "changes")};
    if (!rc) rc = cvx_exec_with_txn(rt, env_change, &op, out_json, err);
    cvx_arena_free(a);
    return rc;
}
