/*
 * store: the document store through its C API (cvx_store_* / cvx_txn_*) over
 * a real SQLite database in a temporary directory.
 *
 * CRUD and system fields, MVCC snapshots, OCC conflicts with precise read
 * sets (including limit-truncated pages), schema indexes (backfill, range
 * queries, pagination, errors, drops), filters, counts, a transaction's view
 * of its own writes, table creation, per-transaction limits, durability
 * across reopen, injected commit failures, out-of-memory, and commit
 * listeners with read-set overlap.
 */
#include "support/testutil.h"

#include "store/store_int.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* ---- fixture and helpers --------------------------------------------------- */

typedef struct {
    char *dir;
    cvx_store_t *s;
} fx_t;

static cvx_arena_t *g_arena; /* parsed values of the current test */
static void **g_garbage;     /* malloc'd strings of the current test */
static size_t g_ngarbage;

static char *keep(char *p) {
    g_garbage = realloc(g_garbage, (g_ngarbage + 1) * sizeof *g_garbage);
    g_garbage[g_ngarbage++] = p;
    return p;
}

static cvx_store_t *open_store(const char *dir, const cvx_store_config_t *cfg) {
    cvx_store_t *s = NULL;
    cvx_err_t err;
    if (cvx_store_open(dir, cfg, &s, &err)) fail_msg("open %s: %s", dir, err.msg);
    return s;
}

/* Closes and opens the fixture's store again (a restart). */
static void reopen(fx_t *f) {
    cvx_store_close(f->s);
    f->s = open_store(f->dir, NULL);
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("store");
    f->s = open_store(f->dir, NULL);
    g_arena = cvx_arena_new(4096);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    cvx__store_fail_commit(0, false);
    cvx__store_fail_sync(0);
    cvx__store_hold_sync(false);
    cvx__store_hot_ns(0);
    cvx_store_close(f->s);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    cvx_arena_free(g_arena);
    g_arena = NULL;
    for (size_t i = 0; i < g_ngarbage; i++) free(g_garbage[i]);
    free(g_garbage);
    g_garbage = NULL;
    g_ngarbage = 0;
    return 0;
}

/* Parses convex JSON into the test's arena. */
static cvx_value_t *J(const char *json) {
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (cvx_json_parse(g_arena, json, strlen(json), &v, &err)) fail_msg("bad test JSON %s: %s", json, err.msg);
    return v;
}

static cvx_txn_t *begin_at(cvx_store_t *s, cvx_txn_mode_t mode, uint64_t ts) {
    cvx_txn_t *t = NULL;
    cvx_err_t err;
    if (cvx_txn_begin(s, mode, ts, &t, &err)) fail_msg("begin: %s", err.msg);
    return t;
}

static cvx_txn_t *begin(cvx_store_t *s, cvx_txn_mode_t mode) { return begin_at(s, mode, 0); }

static uint64_t commit(cvx_txn_t *t) {
    uint64_t ts = 0;
    cvx_err_t err;
    int rc = cvx_txn_commit(t, &ts, &err);
    if (rc) fail_msg("commit: %s: %s", cvx_code_name(rc), err.msg);
    return ts;
}

/* Inserts and returns the new id (without quotes). */
static char *insert(cvx_txn_t *t, const char *table, const char *json) {
    cvx_buf_t out = {0};
    cvx_err_t err;
    int rc = cvx_txn_insert(t, table, strlen(table), J(json), &out, &err);
    if (rc) fail_msg("insert %s into %s: %s: %s", json, table, cvx_code_name(rc), err.msg);
    assert_true(out.len > 2 && out.data[0] == '"' && out.data[out.len - 1] == '"');
    char *id = keep(strndup(out.data + 1, out.len - 2));
    cvx_buf_free(&out);
    return id;
}

/* One committed insert. */
static char *put(cvx_store_t *s, const char *table, const char *json) {
    cvx_txn_t *t = begin(s, CVX_TXN_WRITE);
    char *id = insert(t, table, json);
    commit(t);
    return id;
}

static char *get(cvx_txn_t *t, const char *id) {
    cvx_buf_t out = {0};
    cvx_err_t err;
    int rc = cvx_txn_get(t, id, strlen(id), &out, &err);
    if (rc) fail_msg("get %s: %s: %s", id, cvx_code_name(rc), err.msg);
    return keep(cvx_buf_detach(&out, NULL));
}

static char *get_latest(cvx_store_t *s, const char *id) {
    cvx_txn_t *t = begin(s, CVX_TXN_READ);
    char *v = get(t, id);
    cvx_txn_abort(t);
    return v;
}

static void patch(cvx_txn_t *t, const char *id, const char *json, const char *const *remove, size_t nremove) {
    cvx_err_t err;
    int rc = cvx_txn_patch(t, id, strlen(id), J(json), remove, nremove, &err);
    if (rc) fail_msg("patch %s: %s: %s", id, cvx_code_name(rc), err.msg);
}

static void patch1(cvx_store_t *s, const char *id, const char *json) {
    cvx_txn_t *t = begin(s, CVX_TXN_WRITE);
    patch(t, id, json, NULL, 0);
    commit(t);
}

static int query_rc(cvx_txn_t *t, const cvx_query_t *q, char **out, cvx_err_t *err) {
    cvx_buf_t b = {0};
    int rc = cvx_txn_query(t, q, &b, err);
    *out = rc ? NULL : keep(cvx_buf_detach(&b, NULL));
    if (rc) {
        assert_true(b.len == 0); /* no half-written page */
        cvx_buf_free(&b);
    }
    return rc;
}

static char *query(cvx_txn_t *t, const cvx_query_t *q) {
    char *out;
    cvx_err_t err;
    int rc = query_rc(t, q, &out, &err);
    if (rc) fail_msg("query %s.%s: %s: %s", q->table, q->index ? q->index : "-", cvx_code_name(rc), err.msg);
    return out;
}

static char *query_latest(cvx_store_t *s, const cvx_query_t *q) {
    cvx_txn_t *t = begin(s, CVX_TXN_READ);
    char *v = query(t, q);
    cvx_txn_abort(t);
    return v;
}

static uint64_t count(cvx_txn_t *t, const cvx_query_t *q) {
    uint64_t n = 0;
    cvx_err_t err;
    int rc = cvx_txn_count(t, q, &n, &err);
    if (rc) fail_msg("count %s: %s", q->table, err.msg);
    return n;
}

/* Text of one value: strings bare, undefined "-", the rest as JSON. */
static void value_text(cvx_buf_t *b, const cvx_value_t *v) {
    if (!v) cvx_buf_append_char(b, '-');
    else if (v->type == CVX_T_STRING) cvx_buf_append(b, v->u.str.ptr, v->u.str.len);
    else cvx_json_write(b, v);
}

/* The field `path` of a document (JSON) as text. */
static char *field(const char *doc_json, const char *path) {
    cvx_value_t *d = J(doc_json);
    assert_int_equal(d->type, CVX_T_OBJECT);
    cvx_buf_t b = {0};
    value_text(&b, cvx_obj_get_path(d, path, strlen(path)));
    return keep(cvx_buf_detach(&b, NULL));
}

/* "v1,v2,..." of field `path` over a query result's page (or a JSON array of
 * documents). */
static char *col(const char *json, const char *path) {
    cvx_value_t *v = J(json);
    const cvx_value_t *page = v->type == CVX_T_ARRAY ? v : cvx_obj_get_cstr(v, "page");
    assert_non_null(page);
    assert_int_equal(page->type, CVX_T_ARRAY);
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "");
    for (size_t i = 0; i < page->u.arr.len; i++) {
        if (i) cvx_buf_append_char(&b, ',');
        value_text(&b, cvx_obj_get_path(page->u.arr.items[i], path, strlen(path)));
    }
    return keep(cvx_buf_detach(&b, NULL));
}

static bool is_done(const char *json) {
    const cvx_value_t *d = cvx_obj_get_cstr(J(json), "isDone");
    assert_non_null(d);
    return d->u.b;
}

static char *cursor_of(const char *json) {
    const cvx_value_t *c = cvx_obj_get_cstr(J(json), "continueCursor");
    assert_non_null(c);
    assert_int_equal(c->type, CVX_T_STRING);
    return keep(strndup(c->u.str.ptr, c->u.str.len));
}

static void apply(cvx_store_t *s, const cvx_table_def_t *tables, size_t n) {
    cvx_err_t err;
    int rc = cvx_store_apply_indexes(s, tables, n, NULL, NULL, &err);
    if (rc) fail_msg("apply_indexes: %s: %s", cvx_code_name(rc), err.msg);
}

static const char *const F_N[] = {"n"};
static const char *const F_AGE[] = {"age"};
static const char *const F_CITY_AGE[] = {"city", "age"};

/* Table `table` with one index by_n on field n. */
static void index_by_n(cvx_store_t *s, const char *table) {
    cvx_index_def_t ix = {"by_n", 1, F_N};
    cvx_table_def_t td = {table, 1, &ix, NULL};
    apply(s, &td, 1);
}

static char *tables_json(cvx_store_t *s) {
    cvx_buf_t b = {0};
    cvx_err_t err;
    if (cvx_store_list_tables(s, &b, &err)) fail_msg("list tables: %s", err.msg);
    return keep(cvx_buf_detach(&b, NULL));
}

#define R(f, o, v) ((cvx_range_t){(f), CVX_OP_##o, J(v)})

/* ---- CRUD ------------------------------------------------------------------- */

static void test_insert_get(void **state) {
    fx_t *f = *state;
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    char *id = insert(t, "things", "{\"name\":\"a\",\"n\":1,\"nested\":{\"x\":[1,2]},\"i\":{\"$integer\":\"AQAAAAAAAAA=\"}}");
    /* The writer sees its own insert before commit. */
    char *doc = get(t, id);
    assert_string_equal(field(doc, "name"), "a");
    assert_string_equal(field(doc, "_id"), id);
    uint64_t ts = commit(t);
    assert_true(ts > 0);
    assert_int_equal(cvx_store_latest_ts(f->s), ts);

    doc = get_latest(f->s, id);
    assert_string_equal(field(doc, "name"), "a");
    assert_string_equal(field(doc, "n"), "1");
    assert_string_equal(field(doc, "nested.x"), "[1,2]");
    assert_string_equal(field(doc, "i"), "{\"$integer\":\"AQAAAAAAAAA=\"}");
    assert_string_equal(field(doc, "_id"), id);
    cvx_value_t *ct = cvx_obj_get_cstr(J(doc), "_creationTime");
    assert_non_null(ct);
    assert_int_equal(ct->type, CVX_T_FLOAT64);
    double now_ms = (double)cvx_now_ns() / 1e6;
    assert_true(ct->u.f > now_ms - 60000 && ct->u.f <= now_ms + 1);

    /* An id of a table that does not exist reads as null. */
    cvx_id_t other;
    char text[CVX_ID_MAX_LEN + 1];
    cvx_id_generate(54321, NULL, cvx_now_ns() / 1000000, &other);
    cvx_id_format(&other, text);
    assert_string_equal(get_latest(f->s, text), "null");
    /* A malformed id is an error naming it. */
    cvx_txn_t *r = begin(f->s, CVX_TXN_READ);
    cvx_buf_t out = {0};
    cvx_err_t err;
    assert_int_equal(cvx_txn_get(r, "not-an-id", 9, &out, &err), CVX_E_INVALID_VALUE);
    tu_assert_contains(err.msg, "not-an-id");
    /* A query transaction cannot write. */
    assert_int_equal(cvx_txn_insert(r, "things", 6, J("{\"a\":1}"), &out, &err), CVX_E_FORBIDDEN);
    assert_int_equal(cvx_txn_patch(r, id, strlen(id), J("{\"a\":1}"), NULL, 0, &err), CVX_E_FORBIDDEN);
    assert_int_equal(cvx_txn_delete(r, id, strlen(id), &err), CVX_E_FORBIDDEN);
    cvx_txn_abort(r);
    cvx_buf_free(&out);
}

/* System tables: the host writes them; functions may read, never write. */
static void test_system_tables(void **state) {
    fx_t *f = *state;
    static const char *const fields[] = {"state"};
    static const cvx_index_def_t ix[] = {{"by_state", 1, fields}};
    cvx_table_def_t defs[] = {{"_jobs", 1, ix, NULL}};
    cvx_err_t err;
    assert_int_equal(cvx_store_ensure_system_tables(f->s, defs, 1, &err), CVX_OK);
    /* A user schema never drops system indexes. */
    assert_int_equal(cvx_store_apply_indexes(f->s, NULL, 0, NULL, NULL, &err), CVX_OK);
    uint64_t id;
    assert_int_equal(cvx_store_index_id(f->s, "_jobs", "by_state", &id), CVX_OK);
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    cvx_buf_t out = {0};
    assert_int_equal(cvx_txn_system_insert(t, "_jobs", J("{\"state\":\"pending\"}"), &out, &err), CVX_OK);
    char docid[64];
    snprintf(docid, sizeof docid, "%.*s", (int)out.len - 2, out.data + 1);
    /* The user-facing writes refuse system documents. */
    assert_int_equal(cvx_txn_patch(t, docid, strlen(docid), J("{\"state\":\"x\"}"), NULL, 0, &err), CVX_E_FORBIDDEN);
    tu_assert_contains(err.msg, "system table");
    assert_int_equal(cvx_txn_delete(t, docid, strlen(docid), &err), CVX_E_FORBIDDEN);
    assert_int_equal(cvx_txn_system_patch(t, docid, strlen(docid), J("{\"state\":\"done\"}"), &err), CVX_OK);
    /* ...and the system writes refuse user tables. */
    assert_int_equal(cvx_txn_system_insert(t, "users", J("{\"a\":1}"), &out, &err), CVX_E_INTERNAL);
    commit(t);
    t = begin(f->s, CVX_TXN_READ);
    cvx_buf_t doc = {0};
    assert_int_equal(cvx_txn_get(t, docid, strlen(docid), &doc, &err), CVX_OK);
    tu_assert_contains(doc.data, "\"state\":\"done\"");
    cvx_txn_abort(t);
    cvx_buf_free(&doc);
    cvx_buf_free(&out);
}

static void test_insert_rejects(void **state) {
    fx_t *f = *state;
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    cvx_buf_t out = {0};
    cvx_err_t err;
    assert_int_equal(cvx_txn_insert(t, "things", 6, J("[1]"), &out, &err), CVX_E_INVALID_VALUE);
    assert_int_equal(cvx_txn_insert(t, "things", 6, J("{\"_id\":\"x\"}"), &out, &err), CVX_E_INVALID_VALUE);
    assert_int_equal(cvx_txn_insert(t, "things", 6, J("{\"_secret\":1}"), &out, &err), CVX_E_INVALID_VALUE);
    tu_assert_contains(err.msg, "_secret");
    assert_int_equal(cvx_txn_insert(t, "_tables", 7, J("{\"a\":1}"), &out, &err), CVX_E_FORBIDDEN);
    tu_assert_contains(err.msg, "system table");
    assert_int_equal(cvx_txn_insert(t, "1abc", 4, J("{\"a\":1}"), &out, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "1abc");
    assert_int_equal(cvx_txn_insert(t, "a-b", 3, J("{\"a\":1}"), &out, &err), CVX_E_INVALID_ARGUMENT);
    /* Over 1 MiB. */
    cvx_buf_t big = {0};
    cvx_buf_append_str(&big, "{\"s\":\"");
    for (int i = 0; i < (1 << 20); i++) cvx_buf_append_char(&big, 'x');
    cvx_buf_append_str(&big, "\"}");
    assert_int_equal(cvx_txn_insert(t, "things", 6, J(big.data), &out, &err), CVX_E_INVALID_VALUE);
    cvx_buf_free(&big);
    assert_int_equal(out.len, 0);
    /* Nothing was written: the commit is a no-op and creates no table. */
    commit(t);
    assert_string_equal(tables_json(f->s), "[]");
    cvx_buf_free(&out);
}

static void test_patch_replace_delete(void **state) {
    fx_t *f = *state;
    char *id = put(f->s, "things", "{\"name\":\"a\",\"n\":1,\"obj\":{\"a\":1,\"b\":2},\"gone\":true}");
    char *before = get_latest(f->s, id);
    char *ct = field(before, "_creationTime");

    /* Shallow merge: obj is replaced whole; `gone` removed; others kept. */
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    static const char *const rm[] = {"gone", "not_there"};
    patch(t, id, "{\"n\":2,\"obj\":{\"c\":3},\"extra\":\"e\"}", rm, 2);
    char *mid = get(t, id);
    assert_string_equal(field(mid, "n"), "2");
    commit(t);
    char *doc = get_latest(f->s, id);
    assert_string_equal(field(doc, "name"), "a");
    assert_string_equal(field(doc, "n"), "2");
    assert_string_equal(field(doc, "obj"), "{\"c\":3}");
    assert_string_equal(field(doc, "extra"), "e");
    assert_string_equal(field(doc, "gone"), "-");
    assert_string_equal(field(doc, "_id"), id);
    assert_string_equal(field(doc, "_creationTime"), ct);

    /* System fields: equal values are accepted, others refused. */
    t = begin(f->s, CVX_TXN_WRITE);
    cvx_buf_t b = {0};
    cvx_buf_printf(&b, "{\"_id\":\"%s\",\"_creationTime\":%s,\"n\":3}", id, ct);
    patch(t, id, b.data, NULL, 0);
    cvx_buf_free(&b);
    cvx_err_t err;
    char *other = put(f->s, "things", "{\"name\":\"b\"}");
    cvx_buf_printf(&b, "{\"_id\":\"%s\"}", other);
    assert_int_equal(cvx_txn_patch(t, id, strlen(id), J(b.data), NULL, 0, &err), CVX_E_INVALID_VALUE);
    tu_assert_contains(err.msg, "_id");
    cvx_buf_free(&b);
    assert_int_equal(cvx_txn_patch(t, id, strlen(id), J("{\"_creationTime\":1}"), NULL, 0, &err), CVX_E_INVALID_VALUE);
    assert_int_equal(cvx_txn_patch(t, id, strlen(id), J("{\"_x\":1}"), NULL, 0, &err), CVX_E_INVALID_VALUE);
    tu_assert_contains(err.msg, "_x");
    static const char *const rm_id[] = {"_id"};
    assert_int_equal(cvx_txn_patch(t, id, strlen(id), J("{}"), rm_id, 1, &err), CVX_E_INVALID_VALUE);
    assert_int_equal(cvx_txn_patch(t, id, strlen(id), J("5"), NULL, 0, &err), CVX_E_INVALID_VALUE);
    commit(t);
    doc = get_latest(f->s, id);
    assert_string_equal(field(doc, "n"), "3");
    assert_string_equal(field(doc, "_id"), id);

    /* Replace: the whole body, system fields kept. */
    t = begin(f->s, CVX_TXN_WRITE);
    assert_int_equal(cvx_txn_replace(t, id, strlen(id), J("{\"z\":1}"), &err), CVX_OK);
    assert_int_equal(cvx_txn_replace(t, id, strlen(id), J("{\"_creationTime\":2,\"z\":1}"), &err), CVX_E_INVALID_VALUE);
    commit(t);
    doc = get_latest(f->s, id);
    cvx_value_t *v = J(doc);
    assert_int_equal(v->u.obj.len, 3);
    assert_string_equal(field(doc, "z"), "1");
    assert_string_equal(field(doc, "_id"), id);
    assert_string_equal(field(doc, "_creationTime"), ct);

    /* Delete; then every write to it is NOT_FOUND and a read is null. */
    t = begin(f->s, CVX_TXN_WRITE);
    assert_int_equal(cvx_txn_delete(t, id, strlen(id), &err), CVX_OK);
    assert_string_equal(get(t, id), "null");
    assert_int_equal(cvx_txn_patch(t, id, strlen(id), J("{\"a\":1}"), NULL, 0, &err), CVX_E_NOT_FOUND);
    commit(t);
    assert_string_equal(get_latest(f->s, id), "null");
    t = begin(f->s, CVX_TXN_WRITE);
    assert_int_equal(cvx_txn_patch(t, id, strlen(id), J("{\"a\":1}"), NULL, 0, &err), CVX_E_NOT_FOUND);
    tu_assert_contains(err.msg, id);
    assert_int_equal(cvx_txn_replace(t, id, strlen(id), J("{\"a\":1}"), &err), CVX_E_NOT_FOUND);
    assert_int_equal(cvx_txn_delete(t, id, strlen(id), &err), CVX_E_NOT_FOUND);
    assert_int_equal(cvx_txn_delete(t, "zzz", 3, &err), CVX_E_INVALID_VALUE);
    commit(t);
    /* The other document is untouched. */
    assert_string_equal(field(get_latest(f->s, other), "name"), "b");
}

static void test_system_fields(void **state) {
    fx_t *f = *state;
    enum { N = 300 };
    char *ids[N];
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            commit(t);
            t = begin(f->s, CVX_TXN_WRITE);
        }
        char json[64];
        snprintf(json, sizeof json, "{\"i\":%d}", i);
        ids[i] = insert(t, "seq", json);
    }
    commit(t);
    cvx_query_t q = {.table = "seq", .limit = -1};
    char *page = query_latest(f->s, &q);
    cvx_value_t *docs = cvx_obj_get_cstr(J(page), "page");
    assert_int_equal(docs->u.arr.len, N);
    double last = -1;
    for (int i = 0; i < N; i++) {
        const cvx_value_t *d = docs->u.arr.items[i];
        /* by_creation_time order is insertion order; times strictly increase. */
        assert_true(cvx_obj_get_cstr(d, "i")->u.f == i);
        const cvx_value_t *id = cvx_obj_get_cstr(d, "_id");
        assert_int_equal(id->u.str.len, strlen(ids[i]));
        assert_memory_equal(id->u.str.ptr, ids[i], id->u.str.len);
        double ct = cvx_obj_get_cstr(d, "_creationTime")->u.f;
        assert_true(ct > last);
        last = ct;
        for (int k = 0; k < i; k++) assert_string_not_equal(ids[k], ids[i]);
    }
}

/* ---- MVCC ------------------------------------------------------------------- */

static void test_mvcc_snapshots(void **state) {
    fx_t *f = *state;
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    char *id = insert(t, "docs", "{\"v\":1}");
    uint64_t ts1 = commit(t);

    cvx_txn_t *before = begin(f->s, CVX_TXN_READ);
    assert_int_equal(cvx_txn_snapshot_ts(before), ts1);

    t = begin(f->s, CVX_TXN_WRITE);
    patch(t, id, "{\"v\":2}", NULL, 0);
    char *id2 = insert(t, "docs", "{\"v\":20}");
    uint64_t ts2 = commit(t);
    assert_true(ts2 > ts1);

    t = begin(f->s, CVX_TXN_WRITE);
    cvx_err_t err;
    assert_int_equal(cvx_txn_delete(t, id, strlen(id), &err), CVX_OK);
    uint64_t ts3 = commit(t);
    assert_true(ts3 > ts2);

    /* The old reader still sees its snapshot: v1, no second document. */
    assert_string_equal(field(get(before, id), "v"), "1");
    assert_string_equal(get(before, id2), "null");
    cvx_query_t q = {.table = "docs", .limit = -1};
    assert_string_equal(col(query(before, &q), "v"), "1");
    assert_int_equal(count(before, &q), 1);
    cvx_txn_abort(before);

    /* A new reader sees the latest state. */
    cvx_txn_t *after = begin(f->s, CVX_TXN_READ);
    assert_string_equal(get(after, id), "null");
    assert_string_equal(col(query(after, &q), "v"), "20");
    cvx_txn_abort(after);

    /* Explicit older snapshots. */
    cvx_txn_t *at1 = begin_at(f->s, CVX_TXN_READ, ts1);
    assert_string_equal(field(get(at1, id), "v"), "1");
    assert_string_equal(col(query(at1, &q), "v"), "1");
    cvx_txn_abort(at1);
    cvx_txn_t *at2 = begin_at(f->s, CVX_TXN_READ, ts2);
    assert_string_equal(field(get(at2, id), "v"), "2");
    assert_string_equal(col(query(at2, &q), "v"), "2,20");
    cvx_txn_abort(at2);
    cvx_txn_t *mid = begin_at(f->s, CVX_TXN_READ, ts2 - 1);
    assert_string_equal(field(get(mid, id), "v"), "1");
    cvx_txn_abort(mid);
    cvx_txn_t *at3 = begin_at(f->s, CVX_TXN_READ, ts3);
    assert_string_equal(get(at3, id), "null");
    cvx_txn_abort(at3);

    /* A snapshot in the future is refused. */
    cvx_txn_t *bad = NULL;
    assert_int_equal(cvx_txn_begin(f->s, CVX_TXN_READ, ts3 + 1000000000ull, &bad, &err), CVX_E_INVALID_ARGUMENT);
    assert_null(bad);
}

/* ---- OCC -------------------------------------------------------------------- */

static void test_occ_point_conflict(void **state) {
    fx_t *f = *state;
    char *id = put(f->s, "acct", "{\"v\":0}");
    char *other = put(f->s, "acct", "{\"v\":100}");
    cvx_store_stats_t st0;
    cvx_store_stats(f->s, &st0);

    /* Both read the document and write it; the second to commit loses. */
    cvx_txn_t *a = begin(f->s, CVX_TXN_WRITE);
    cvx_txn_t *b = begin(f->s, CVX_TXN_WRITE);
    get(a, id);
    get(b, id);
    patch(a, id, "{\"v\":1}", NULL, 0);
    patch(b, id, "{\"v\":2}", NULL, 0);
    commit(a);
    uint64_t ts = 0;
    cvx_err_t err;
    assert_int_equal(cvx_txn_commit(b, &ts, &err), CVX_E_CONFLICT);
    assert_string_equal(field(get_latest(f->s, id), "v"), "1");
    cvx_store_stats_t st;
    cvx_store_stats(f->s, &st);
    assert_int_equal(st.conflicts, st0.conflicts + 1);
    assert_int_equal(st.commits, st0.commits + 1);

    /* A blind write (patch without a get) reads the document too. */
    a = begin(f->s, CVX_TXN_WRITE);
    b = begin(f->s, CVX_TXN_WRITE);
    patch(a, id, "{\"v\":3}", NULL, 0);
    patch(b, id, "{\"w\":3}", NULL, 0);
    commit(b);
    assert_int_equal(cvx_txn_commit(a, &ts, &err), CVX_E_CONFLICT);
    tu_assert_contains(err.msg, "wrote data this one read");

    /* Reader of a deleted document vs. the delete. */
    a = begin(f->s, CVX_TXN_WRITE);
    b = begin(f->s, CVX_TXN_WRITE);
    get(a, id);
    patch(a, other, "{\"seen\":true}", NULL, 0);
    assert_int_equal(cvx_txn_delete(b, id, strlen(id), &err), CVX_OK);
    commit(b);
    assert_int_equal(cvx_txn_commit(a, &ts, &err), CVX_E_CONFLICT);
    assert_string_equal(field(get_latest(f->s, other), "seen"), "-");

    /* Disjoint documents: both commit. A read-only transaction never conflicts. */
    char *x = put(f->s, "acct", "{\"v\":0}");
    a = begin(f->s, CVX_TXN_WRITE);
    b = begin(f->s, CVX_TXN_WRITE);
    cvx_txn_t *r = begin(f->s, CVX_TXN_READ);
    get(r, x);
    patch(a, x, "{\"v\":5}", NULL, 0);
    patch(b, other, "{\"v\":6}", NULL, 0);
    commit(a);
    commit(b);
    uint64_t rts = cvx_txn_snapshot_ts(r);
    assert_int_equal(commit(r), rts);
    /* A write transaction that wrote nothing commits at its snapshot. */
    a = begin(f->s, CVX_TXN_WRITE);
    get(a, x);
    rts = cvx_txn_snapshot_ts(a);
    patch1(f->s, x, "{\"v\":7}");
    assert_int_equal(commit(a), rts);
}

/* A string or bytes value that continues the bound's value with a NUL
 * ("a\u0000b" after "a") is a different, greater value: eq "a" must not
 * return it, gt "a" must, lte "a" must not. Its key continues inside the
 * value's bytes (08 61 00 ff ...), where the next index component's tag
 * would be, so a bound one past the last byte of "a"'s key took it in. */
static void test_ranges_past_nul(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "items");
    static const char *const docs[] = {
        "{\"n\":\"a\",\"t\":\"A\"}",
        "{\"n\":\"a\\u0000b\",\"t\":\"A0B\"}",
        "{\"n\":\"a\\u0001\",\"t\":\"A1\"}",
        "{\"n\":\"b\",\"t\":\"B\"}",
        "{\"n\":{\"$bytes\":\"\"},\"t\":\"E\"}",
        "{\"n\":{\"$bytes\":\"AA==\"},\"t\":\"E0\"}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) put(f->s, "items", docs[i]);
    static const struct {
        cvx_range_op_t op;
        const char *value, *want;
    } cases[] = {
        {CVX_OP_EQ, "\"a\"", "A"},       {CVX_OP_GT, "\"a\"", "A0B,A1,B,E,E0"},
        {CVX_OP_GTE, "\"a\"", "A,A0B,A1,B,E,E0"}, {CVX_OP_LTE, "\"a\"", "A"},
        {CVX_OP_LT, "\"a\\u0001\"", "A,A0B"},     {CVX_OP_EQ, "\"a\\u0000b\"", "A0B"},
        {CVX_OP_EQ, "{\"$bytes\":\"\"}", "E"},   {CVX_OP_GT, "{\"$bytes\":\"\"}", "E0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cvx_range_t r = {"n", cases[i].op, J(cases[i].value)};
        cvx_query_t q = {.table = "items", .index = "by_n", .range = &r, .nrange = 1, .limit = -1};
        const char *got = col(query_latest(f->s, &q), "t");
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu (%s): got %s, want %s", i, cases[i].value, got, cases[i].want);
        uint64_t want_n = 1;
        for (const char *c = cases[i].want; *c; c++) want_n += *c == ',';
        cvx_txn_t *t = begin(f->s, CVX_TXN_READ);
        assert_int_equal(count(t, &q), want_n);
        cvx_txn_abort(t);
    }
}

/* A write transaction that read an index range conflicts exactly with
 * commits that write a key inside the range it consumed. */
static cvx_txn_t *range_reader(cvx_store_t *s, const cvx_query_t *q, const char *expect) {
    cvx_txn_t *t = begin(s, CVX_TXN_WRITE);
    assert_string_equal(col(query(t, q), "n"), expect);
    insert(t, "log", "{\"x\":1}"); /* something to commit */
    return t;
}

static void expect_commit(cvx_txn_t *t, int want, const char *what) {
    uint64_t ts;
    cvx_err_t err = {0};
    int rc = cvx_txn_commit(t, &ts, &err);
    if (rc != want) fail_msg("%s: commit returned %s (%s), expected %s", what, cvx_code_name(rc), err.msg, cvx_code_name(want));
}

static void test_occ_ranges(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "items");
    put(f->s, "log", "{\"x\":0}");
    char *ids[6];
    for (int i = 1; i <= 5; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"n\":%d}", i * 10);
        ids[i] = put(f->s, "items", json);
    }
    cvx_range_t in[] = {R("n", GTE, "20"), R("n", LT, "40")};
    cvx_query_t q = {.table = "items", .index = "by_n", .range = in, .nrange = 2, .limit = -1};
    static const struct {
        const char *doc;
        int want;
    } cases[] = {
        {"{\"n\":25}", CVX_E_CONFLICT}, {"{\"n\":20}", CVX_E_CONFLICT}, {"{\"n\":39.5}", CVX_E_CONFLICT},
        {"{\"n\":40}", CVX_OK},         {"{\"n\":45}", CVX_OK},         {"{\"n\":19}", CVX_OK},
        {"{\"m\":30}", CVX_OK}, /* no n: undefined sorts first */
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_txn_t *t = range_reader(f->s, &q, "20,30");
        cvx_txn_t *w = begin(f->s, CVX_TXN_WRITE);
        char *nid = insert(w, "items", cases[i].doc);
        commit(w);
        expect_commit(t, cases[i].want, cases[i].doc);
        /* Clean up so the next case sees the same data. */
        w = begin(f->s, CVX_TXN_WRITE);
        cvx_err_t err;
        assert_int_equal(cvx_txn_delete(w, nid, strlen(nid), &err), CVX_OK);
        commit(w);
    }
    /* An update moving a document out of the range conflicts (its old key
     * was read); one moving a document outside the range around it does not. */
    cvx_txn_t *t = range_reader(f->s, &q, "20,30");
    patch1(f->s, ids[3], "{\"n\":60}");
    expect_commit(t, CVX_E_CONFLICT, "30 -> 60");
    t = range_reader(f->s, &q, "20");
    patch1(f->s, ids[5], "{\"n\":70}");
    expect_commit(t, CVX_OK, "50 -> 70");
    t = range_reader(f->s, &q, "20");
    patch1(f->s, ids[5], "{\"n\":35}");
    expect_commit(t, CVX_E_CONFLICT, "70 -> 35");
    t = range_reader(f->s, &q, "20,35");
    patch1(f->s, ids[1], "{\"other\":1}"); /* same index key */
    expect_commit(t, CVX_OK, "10 unchanged key");
    /* Now: 10, 20, 35, 40, 60. */

    /* A page cut short by its limit read only up to its last document. */
    cvx_query_t page = {.table = "items", .index = "by_n", .limit = 2};
    t = range_reader(f->s, &page, "10,20");
    put(f->s, "items", "{\"n\":30}");
    expect_commit(t, CVX_OK, "insert after a full ascending page");
    t = range_reader(f->s, &page, "10,20");
    put(f->s, "items", "{\"n\":15}");
    expect_commit(t, CVX_E_CONFLICT, "insert inside a full ascending page");
    t = range_reader(f->s, &page, "10,15");
    put(f->s, "items", "{\"n\":5}");
    expect_commit(t, CVX_E_CONFLICT, "insert before a full ascending page");
    /* Now: 5, 10, 15, 20, 30, 35, 40, 60. */
    page.desc = true;
    t = range_reader(f->s, &page, "60,40");
    put(f->s, "items", "{\"n\":38}");
    expect_commit(t, CVX_OK, "insert after a full descending page");
    t = range_reader(f->s, &page, "60,40");
    put(f->s, "items", "{\"n\":50}");
    expect_commit(t, CVX_E_CONFLICT, "insert inside a full descending page");
    t = range_reader(f->s, &page, "60,50");
    put(f->s, "items", "{\"n\":99}");
    expect_commit(t, CVX_E_CONFLICT, "insert before a full descending page");
    /* A page that reached the end read the whole rest of the range. */
    page.desc = false;
    page.limit = 100;
    t = range_reader(f->s, &page, "5,10,15,20,30,35,38,40,50,60,99");
    put(f->s, "items", "{\"n\":1000}");
    expect_commit(t, CVX_E_CONFLICT, "insert past the end of a done page");
    /* The second page (cursor) read from the cursor on, not before. */
    page.limit = 3;
    cvx_txn_t *r = begin(f->s, CVX_TXN_READ);
    char *p1 = query(r, &page);
    cvx_txn_abort(r);
    assert_string_equal(col(p1, "n"), "5,10,15");
    page.cursor = cursor_of(p1);
    t = range_reader(f->s, &page, "20,30,35");
    put(f->s, "items", "{\"n\":1}");
    expect_commit(t, CVX_OK, "insert before the cursor");
    t = range_reader(f->s, &page, "20,30,35");
    put(f->s, "items", "{\"n\":33}");
    expect_commit(t, CVX_E_CONFLICT, "insert inside a cursor page");
}

/* ---- indexes and queries --------------------------------------------------- */

static void people(cvx_store_t *s) {
    static const char *const rows[] = {
        "{\"name\":\"ann\",\"age\":30,\"city\":\"Paris\"}",  "{\"name\":\"bob\",\"age\":25,\"city\":\"Rome\"}",
        "{\"name\":\"cat\",\"age\":35,\"city\":\"Paris\"}",  "{\"name\":\"dan\",\"city\":\"Oslo\"}",
        "{\"name\":\"eve\",\"age\":30,\"city\":\"Rome\"}",   "{\"name\":\"fay\",\"age\":null,\"city\":\"Paris\"}",
        "{\"name\":\"gus\",\"age\":41,\"city\":\"Paris\"}",  "{\"name\":\"hal\",\"age\":\"old\",\"city\":\"Oslo\"}",
    };
    cvx_txn_t *t = begin(s, CVX_TXN_WRITE);
    for (size_t i = 0; i < CVX_ARRAY_LEN(rows); i++) insert(t, "people", rows[i]);
    commit(t);
}

static void progress_cb(void *ctx, const char *line) {
    cvx_buf_t *b = ctx;
    cvx_buf_printf(b, "%s\n", line);
}

static void test_index_backfill_and_ranges(void **state) {
    fx_t *f = *state;
    people(f->s); /* before the indexes exist */
    cvx_index_def_t ix[] = {{"by_age", 1, F_AGE}, {"by_city_age", 2, F_CITY_AGE}};
    cvx_table_def_t td = {"people", 2, ix, NULL};
    cvx_buf_t progress = {0};
    cvx_err_t err;
    assert_int_equal(cvx_store_apply_indexes(f->s, &td, 1, progress_cb, &progress, &err), CVX_OK);
    tu_assert_contains(progress.data, "people.by_age: 8 documents");
    tu_assert_contains(progress.data, "people.by_city_age: 8 documents");
    cvx_buf_free(&progress);
    put(f->s, "people", "{\"name\":\"ivy\",\"age\":28,\"city\":\"Paris\"}"); /* after */

    cvx_query_t q = {.table = "people", .index = "by_age", .limit = -1};
    /* Whole index: undefined < null < numbers < strings; ties by creation. */
    assert_string_equal(col(query_latest(f->s, &q), "name"), "dan,fay,bob,ivy,ann,eve,cat,gus,hal");
    struct {
        cvx_range_t r[2];
        size_t n;
        const char *want;
    } cases[] = {
        {{R("age", EQ, "30")}, 1, "ann,eve"},
        {{R("age", GT, "30")}, 1, "cat,gus,hal"},
        {{R("age", GTE, "30")}, 1, "ann,eve,cat,gus,hal"},
        {{R("age", LT, "30")}, 1, "dan,fay,bob,ivy"},
        {{R("age", LTE, "30")}, 1, "dan,fay,bob,ivy,ann,eve"},
        {{R("age", GT, "25"), R("age", LTE, "35")}, 2, "ivy,ann,eve,cat"},
        {{R("age", LT, "35"), R("age", GT, "25")}, 2, "ivy,ann,eve"},
        {{R("age", GTE, "30"), R("age", LT, "30")}, 2, ""},
        {{R("age", EQ, "null")}, 1, "fay"},
        {{R("age", EQ, "31")}, 1, ""},
        {{R("age", GTE, "\"a\"")}, 1, "hal"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        q.range = cases[i].r;
        q.nrange = cases[i].n;
        char *out = query_latest(f->s, &q);
        if (strcmp(col(out, "name"), cases[i].want) != 0)
            fail_msg("case %zu: got %s, want %s", i, col(out, "name"), cases[i].want);
        assert_true(is_done(out));
        cvx_txn_t *t = begin(f->s, CVX_TXN_READ);
        assert_int_equal(count(t, &q), strlen(cases[i].want) ? (strlen(cases[i].want) + 1) / 4 : 0);
        cvx_txn_abort(t);
    }

    /* Compound index: eq prefix, then a range on the next field. */
    cvx_query_t c = {.table = "people", .index = "by_city_age", .limit = -1};
    cvx_range_t paris_ge30[] = {R("city", EQ, "\"Paris\""), R("age", GTE, "30")};
    c.range = paris_ge30;
    c.nrange = 2;
    assert_string_equal(col(query_latest(f->s, &c), "name"), "ann,cat,gus");
    cvx_range_t paris[] = {R("city", EQ, "\"Paris\"")};
    c.range = paris;
    c.nrange = 1;
    assert_string_equal(col(query_latest(f->s, &c), "name"), "fay,ivy,ann,cat,gus");
    c.desc = true;
    assert_string_equal(col(query_latest(f->s, &c), "name"), "gus,cat,ann,ivy,fay");
    c.limit = 2;
    char *out = query_latest(f->s, &c);
    assert_string_equal(col(out, "name"), "gus,cat");
    assert_false(is_done(out));
    cvx_range_t paris_30[] = {R("city", EQ, "\"Paris\""), R("age", EQ, "30")};
    c.range = paris_30;
    c.nrange = 2;
    c.desc = false;
    c.limit = -1;
    assert_string_equal(col(query_latest(f->s, &c), "name"), "ann");
    cvx_range_t cities[] = {R("city", GT, "\"Oslo\""), R("city", LT, "\"Rome\"")};
    c.range = cities;
    assert_string_equal(col(query_latest(f->s, &c), "city"), "Paris,Paris,Paris,Paris,Paris");

    /* System indexes. */
    cvx_query_t all = {.table = "people", .limit = 3};
    assert_string_equal(col(query_latest(f->s, &all), "name"), "ann,bob,cat");
    all.desc = true;
    assert_string_equal(col(query_latest(f->s, &all), "name"), "ivy,hal,gus");
    all.index = CVX_INDEX_BY_ID;
    all.limit = -1;
    assert_int_equal(strlen(col(query_latest(f->s, &all), "name")), 9 * 4 - 1);

    /* Index maintenance: a patch moves a document to its new key. */
    cvx_range_t r30[] = {R("age", EQ, "30")};
    q.range = r30;
    q.nrange = 1;
    char *page = query_latest(f->s, &q);
    cvx_value_t *first = cvx_obj_get_cstr(J(page), "page")->u.arr.items[0];
    const cvx_value_t *aid = cvx_obj_get_cstr(first, "_id");
    char *ann = keep(strndup(aid->u.str.ptr, aid->u.str.len));
    patch1(f->s, ann, "{\"age\":31}");
    assert_string_equal(col(query_latest(f->s, &q), "name"), "eve");
    cvx_range_t r31[] = {R("age", EQ, "31")};
    q.range = r31;
    assert_string_equal(col(query_latest(f->s, &q), "name"), "ann");
}

static void test_pagination(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "nums");
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    for (int i = 0; i < 20; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"n\":%d}", i * 10);
        insert(t, "nums", json);
    }
    commit(t);

    /* All pages in one snapshot: exactly every document once. */
    cvx_query_t q = {.table = "nums", .index = "by_n", .limit = 6};
    cvx_txn_t *r = begin(f->s, CVX_TXN_READ);
    cvx_buf_t seen = {0};
    int pages = 0;
    for (;;) {
        char *out = query(r, &q);
        pages++;
        cvx_buf_printf(&seen, "%s%s", seen.len && strlen(col(out, "n")) ? "," : "", col(out, "n"));
        if (is_done(out)) break;
        q.cursor = cursor_of(out);
    }
    cvx_txn_abort(r);
    assert_int_equal(pages, 4);
    assert_string_equal(seen.data, "0,10,20,30,40,50,60,70,80,90,100,110,120,130,140,150,160,170,180,190");
    cvx_buf_reset(&seen);

    /* Pages in separate transactions with inserts in between: a document
     * inserted after the cursor shows up, one before it does not, none twice. */
    q.cursor = NULL;
    q.limit = 5;
    int round = 0;
    for (;;) {
        char *out = query_latest(f->s, &q);
        cvx_buf_printf(&seen, "%s%s", seen.len && strlen(col(out, "n")) ? "," : "", col(out, "n"));
        if (is_done(out)) break;
        q.cursor = cursor_of(out);
        char json[64];
        snprintf(json, sizeof json, "{\"n\":%d}", 5 + round * 40); /* before the cursor */
        put(f->s, "nums", json);
        snprintf(json, sizeof json, "{\"n\":%d}", 1000 + round); /* after it */
        put(f->s, "nums", json);
        round++;
    }
    assert_string_equal(seen.data, "0,10,20,30,40,50,60,70,80,90,100,110,120,130,140,150,160,170,180,190,1000,1001,1002,1003");
    cvx_buf_reset(&seen);

    /* Descending, with a range. */
    cvx_range_t rg[] = {R("n", GTE, "100"), R("n", LT, "1000")};
    q = (cvx_query_t){.table = "nums", .index = "by_n", .range = rg, .nrange = 2, .desc = true, .limit = 4};
    for (;;) {
        char *out = query_latest(f->s, &q);
        cvx_buf_printf(&seen, "%s%s", seen.len && strlen(col(out, "n")) ? "," : "", col(out, "n"));
        if (is_done(out)) break;
        q.cursor = cursor_of(out);
    }
    assert_string_equal(seen.data, "190,180,170,160,150,140,130,125,120,110,100");
    cvx_buf_free(&seen);

    /* The cursor of a finished query stays finished. */
    char *last = query_latest(f->s, &q);
    assert_true(is_done(last));
    q.cursor = cursor_of(last);
    char *again = query_latest(f->s, &q);
    assert_true(is_done(again));
    assert_string_equal(col(again, "n"), "");

    /* Bad cursors. */
    r = begin(f->s, CVX_TXN_READ);
    char *out;
    cvx_err_t err;
    q.cursor = "!!!";
    assert_int_equal(query_rc(r, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "cursor");
    cvx_query_t other = {.table = "nums", .limit = 2};
    char *p = query(r, &other);
    q.cursor = cursor_of(p);
    assert_int_equal(query_rc(r, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "different query");
    cvx_txn_abort(r);
}

static void test_query_errors(void **state) {
    fx_t *f = *state;
    people(f->s);
    cvx_index_def_t ix[] = {{"by_age", 1, F_AGE}, {"by_city_age", 2, F_CITY_AGE}};
    cvx_table_def_t td = {"people", 2, ix, NULL};
    apply(f->s, &td, 1);
    cvx_txn_t *t = begin(f->s, CVX_TXN_READ);
    char *out;
    cvx_err_t err;
    struct {
        cvx_range_t r[3];
        size_t n;
        const char *msg;
    } bad[] = {
        {{R("age", EQ, "1")}, 1, "\"age\""},                                     /* not the first field */
        {{R("city", EQ, "\"x\""), R("name", GT, "1")}, 2, "\"name\""},            /* not the next field */
        {{R("city", GT, "\"x\""), R("age", EQ, "1")}, 2, "eq(\"age\")"},          /* eq after a bound */
        {{R("city", GT, "\"a\""), R("city", GTE, "\"b\"")}, 2, "two lower bounds on \"city\""},
        {{R("city", LT, "\"a\""), R("city", LTE, "\"b\"")}, 2, "two upper bounds on \"city\""},
        {{R("city", GT, "\"a\""), R("age", LT, "3")}, 2, "\"age\""},              /* bounds on two fields */
        {{R("city", EQ, "\"a\""), R("age", EQ, "1"), R("zzz", EQ, "1")}, 3, "\"zzz\""},
    };
    cvx_query_t q = {.table = "people", .index = "by_city_age", .limit = -1};
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad); i++) {
        q.range = bad[i].r;
        q.nrange = bad[i].n;
        assert_int_equal(query_rc(t, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
        tu_assert_contains(err.msg, bad[i].msg);
        tu_assert_contains(err.msg, "people.by_city_age");
        uint64_t n;
        assert_int_equal(cvx_txn_count(t, &q, &n, &err), CVX_E_INVALID_ARGUMENT);
    }
    /* Unknown index: the message lists the table's indexes. */
    q = (cvx_query_t){.table = "people", .index = "by_name", .limit = -1};
    assert_int_equal(query_rc(t, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "by_name");
    tu_assert_contains(err.msg, "by_id, by_creation_time, by_age, by_city_age");
    /* Unknown table: empty and done; an invalid table name is an error. */
    q = (cvx_query_t){.table = "nobody", .index = "by_whatever", .limit = -1};
    out = query(t, &q);
    assert_string_equal(col(out, "_id"), "");
    assert_true(is_done(out));
    assert_int_equal(count(t, &q), 0);
    q.table = "no-body";
    assert_int_equal(query_rc(t, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
    cvx_txn_abort(t);
}

/* An index created while a write transaction runs is maintained by that
 * transaction's commit (its catalog is the one current at commit). */
static void test_index_created_during_txn(void **state) {
    fx_t *f = *state;
    char *a = put(f->s, "late", "{\"n\":1,\"k\":\"a\"}");
    char *b = put(f->s, "late", "{\"n\":3,\"k\":\"b\"}");
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    patch(t, a, "{\"n\":2}", NULL, 0);
    insert(t, "late", "{\"n\":5,\"k\":\"c\"}");
    cvx_err_t err;
    assert_int_equal(cvx_txn_delete(t, b, strlen(b), &err), CVX_OK);
    index_by_n(f->s, "late"); /* backfilled with n=1 and n=3 */
    commit(t);
    cvx_query_t q = {.table = "late", .index = "by_n", .limit = -1};
    assert_string_equal(col(query_latest(f->s, &q), "k"), "a,c");
    assert_string_equal(col(query_latest(f->s, &q), "n"), "2,5");
    cvx_range_t r1[] = {R("n", EQ, "1")};
    q.range = r1;
    q.nrange = 1;
    assert_string_equal(col(query_latest(f->s, &q), "k"), "");

    /* A transaction creating a table that the schema creates meanwhile
     * saw it missing: it conflicts, and its retry uses the schema's table. */
    t = begin(f->s, CVX_TXN_WRITE);
    insert(t, "late_new", "{\"n\":7}");
    cvx_index_def_t ix = {"by_n", 1, F_N};
    cvx_table_def_t both[] = {{"late", 1, &ix, NULL}, {"late_new", 1, &ix, NULL}};
    apply(f->s, both, 2);
    expect_commit(t, CVX_E_CONFLICT, "insert into a table the schema created");
    put(f->s, "late_new", "{\"n\":7}");
    cvx_query_t qn = {.table = "late_new", .index = "by_n", .limit = -1};
    assert_string_equal(col(query_latest(f->s, &qn), "n"), "7");
    assert_string_equal(col(tables_json(f->s), "name"), "late,late_new");
}

static void test_index_drop_and_change(void **state) {
    fx_t *f = *state;
    people(f->s);
    cvx_index_def_t ix[] = {{"by_age", 1, F_AGE}, {"by_city_age", 2, F_CITY_AGE}};
    cvx_table_def_t td = {"people", 2, ix, NULL};
    apply(f->s, &td, 1);
    apply(f->s, &td, 1); /* idempotent */

    /* Undeclared: dropped. */
    td.nindexes = 1;
    cvx_buf_t progress = {0};
    cvx_err_t err;
    assert_int_equal(cvx_store_apply_indexes(f->s, &td, 1, progress_cb, &progress, &err), CVX_OK);
    tu_assert_contains(progress.data, "dropping index people.by_city_age");
    cvx_buf_free(&progress);
    cvx_query_t q = {.table = "people", .index = "by_city_age", .limit = -1};
    cvx_txn_t *t = begin(f->s, CVX_TXN_READ);
    char *out;
    assert_int_equal(query_rc(t, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "(it has: by_id, by_creation_time, by_age)");
    cvx_txn_abort(t);

    /* Documents written while it is gone are in it when it comes back. */
    put(f->s, "people", "{\"name\":\"zed\",\"age\":50,\"city\":\"Paris\"}");
    td.nindexes = 2;
    apply(f->s, &td, 1);
    cvx_range_t paris[] = {R("city", EQ, "\"Paris\"")};
    q.range = paris;
    q.nrange = 1;
    assert_string_equal(col(query_latest(f->s, &q), "name"), "fay,ann,cat,gus,zed");

    /* Same name, other fields: rebuilt on the new fields. */
    static const char *const f_name[] = {"name"};
    cvx_index_def_t changed[] = {{"by_age", 1, f_name}};
    td = (cvx_table_def_t){"people", 1, changed, NULL};
    apply(f->s, &td, 1);
    cvx_query_t byname = {.table = "people", .index = "by_age", .desc = true, .limit = 3};
    assert_string_equal(col(query_latest(f->s, &byname), "name"), "zed,hal,gus");

    /* Tables are never dropped; new declared tables are created empty. */
    cvx_table_def_t two[] = {{"people", 0, NULL, NULL}, {"empty", 1, changed, NULL}};
    apply(f->s, two, 2);
    char *tables = tables_json(f->s);
    tu_assert_contains(tables, "{\"name\":\"empty\",");
    tu_assert_contains(tables, "\"documents\":0}");
    tu_assert_contains(tables, "\"documents\":9}");
    cvx_query_t e = {.table = "empty", .index = "by_age", .limit = -1};
    assert_string_equal(col(query_latest(f->s, &e), "name"), "");

    /* Invalid definitions change nothing. */
    cvx_index_def_t reserved[] = {{"by_id", 1, f_name}};
    cvx_table_def_t badt[] = {{"people", 1, reserved, NULL}};
    assert_int_equal(cvx_store_apply_indexes(f->s, badt, 1, NULL, NULL, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "by_id");
    cvx_table_def_t badname[] = {{"_sys", 0, NULL, NULL}};
    assert_int_equal(cvx_store_apply_indexes(f->s, badname, 1, NULL, NULL, &err), CVX_E_INVALID_ARGUMENT);
    assert_string_equal(tables_json(f->s), tables);
}

/* ---- filters ---------------------------------------------------------------- */

static int eval(const char *expr, const char *doc, bool *match, cvx_err_t *err) {
    return cvx_filter_eval(g_arena, J(expr), J(doc), match, err);
}

static bool matches(const char *expr, const char *doc) {
    bool m = false;
    cvx_err_t err;
    int rc = eval(expr, doc, &m, &err);
    if (rc) fail_msg("filter %s: %s", expr, err.msg);
    return m;
}

static void filter_error(const char *expr, const char *doc, const char *msg) {
    bool m = true;
    cvx_err_t err;
    int rc = eval(expr, doc, &m, &err);
    if (rc != CVX_E_INVALID_ARGUMENT) fail_msg("filter %s: %s, expected INVALID_ARGUMENT", expr, cvx_code_name(rc));
    assert_false(m);
    tu_assert_contains(err.msg, msg);
}

#define F(x) "{\"field\":\"" x "\"}"
#define L(x) "{\"literal\":" x "}"
#define OP0(o) "{\"op\":\"" o "\",\"args\":[]}"
#define OP1(o, a) "{\"op\":\"" o "\",\"args\":[" a "]}"
#define OP2(o, a, b) "{\"op\":\"" o "\",\"args\":[" a "," b "]}"
#define I(b64) "{\"$integer\":\"" b64 "\"}"
#define I_MAX I("/////////38=")
#define I_MIN I("AAAAAAAAAIA=")
#define I_1 I("AQAAAAAAAAA=")
#define I_0 I("AAAAAAAAAAA=")
#define I_M1 I("//////////8=")
#define I_7 I("BwAAAAAAAAA=")
#define I_2 I("AgAAAAAAAAA=")
#define I_3 I("AwAAAAAAAAA=")
#define I_14 I("DgAAAAAAAAA=")
#define I_M7 I("+f////////8=")

static void test_filter_operators(void **state) {
    const char *doc = "{\"a\":5,\"s\":\"abc\",\"b\":true,\"n\":null,\"i\":" I_7 ",\"o\":{\"x\":{\"y\":2}},\"arr\":[1,2]}";
    /* comparisons */
    assert_true(matches(OP2("eq", F("a"), L("5")), doc));
    assert_false(matches(OP2("eq", F("a"), L("6")), doc));
    assert_true(matches(OP2("neq", F("a"), L("6")), doc));
    assert_false(matches(OP2("neq", F("s"), L("\"abc\"")), doc));
    assert_true(matches(OP2("lt", F("a"), L("6")), doc));
    assert_false(matches(OP2("lt", F("a"), L("5")), doc));
    assert_true(matches(OP2("lte", F("a"), L("5")), doc));
    assert_true(matches(OP2("gt", F("s"), L("\"abb\"")), doc));
    assert_false(matches(OP2("gt", F("s"), L("\"abc\"")), doc));
    assert_true(matches(OP2("gte", F("s"), L("\"abc\"")), doc));
    assert_true(matches(OP2("eq", F("o.x.y"), L("2")), doc));
    assert_true(matches(OP2("eq", F("arr"), L("[1,2]")), doc));
    assert_true(matches(OP2("eq", F("i"), L(I_7)), doc));
    /* total order across types: int64 < float64 < boolean < string */
    assert_true(matches(OP2("lt", F("i"), F("a")), doc));
    assert_true(matches(OP2("lt", F("a"), F("b")), doc));
    assert_true(matches(OP2("lt", F("b"), F("s")), doc));
    assert_false(matches(OP2("eq", F("i"), L("7")), doc)); /* int64 7 is not float64 7 */
    /* missing fields are undefined: below null, equal to each other */
    assert_false(matches(OP2("eq", F("missing"), L("null")), doc));
    assert_true(matches(OP2("lt", F("missing"), L("null")), doc));
    assert_true(matches(OP2("eq", F("missing"), F("o.nope.deeper")), doc));
    assert_true(matches(OP2("neq", F("missing"), F("n")), doc));
    assert_true(matches(OP2("eq", F("n"), L("null")), doc));
    assert_false(matches(OP2("eq", F("o.x.y.z"), L("2")), doc));
    /* boolean logic */
    assert_true(matches(OP0("and"), doc));
    assert_false(matches(OP0("or"), doc));
    assert_true(matches(OP2("and", OP2("eq", F("a"), L("5")), OP2("eq", F("b"), L("true"))), doc));
    assert_false(matches(OP2("and", OP2("eq", F("a"), L("5")), OP2("eq", F("b"), L("false"))), doc));
    assert_true(matches(OP2("or", OP2("eq", F("a"), L("1")), OP2("eq", F("b"), L("true"))), doc));
    assert_true(matches(OP1("not", OP2("eq", F("a"), L("1"))), doc));
    assert_false(matches(OP1("not", F("b")), doc));
    assert_true(matches(OP1("not", F("a")), doc)); /* a non-boolean is not true */
    assert_false(matches(F("a"), doc));
    assert_true(matches(F("b"), doc));
    assert_true(matches(L("true"), doc));
    /* arithmetic, float64 */
    assert_true(matches(OP2("eq", OP2("add", F("a"), L("2.5")), L("7.5")), doc));
    assert_true(matches(OP2("eq", OP2("sub", F("a"), L("7")), L("-2")), doc));
    assert_true(matches(OP2("eq", OP2("mul", F("a"), F("a")), L("25")), doc));
    assert_true(matches(OP2("eq", OP2("div", F("a"), L("2")), L("2.5")), doc));
    assert_true(matches(OP2("eq", OP2("mod", F("a"), L("3")), L("2")), doc));
    assert_true(matches(OP2("eq", OP1("neg", F("a")), L("-5")), doc));
    assert_true(matches(OP2("eq", OP2("div", F("a"), L("0")), L("{\"$float\":\"AAAAAAAA8H8=\"}")), doc)); /* +inf */
    /* arithmetic, int64 */
    assert_true(matches(OP2("eq", OP2("add", F("i"), L(I_7)), L(I_14)), doc));
    assert_true(matches(OP2("eq", OP2("sub", F("i"), L(I_7)), L(I_0)), doc));
    assert_true(matches(OP2("eq", OP2("mul", F("i"), L(I_2)), L(I_14)), doc));
    assert_true(matches(OP2("eq", OP2("div", F("i"), L(I_2)), L(I_3)), doc));
    assert_true(matches(OP2("eq", OP2("mod", F("i"), L(I_2)), L(I_1)), doc));
    assert_true(matches(OP2("eq", OP1("neg", F("i")), L(I_M7)), doc));
    assert_true(matches(OP2("eq", OP2("div", L(I_MIN), L(I_1)), L(I_MIN)), doc));
    /* arithmetic errors */
    filter_error(OP2("add", L(I_MAX), L(I_1)), doc, "int64 overflow");
    filter_error(OP2("sub", L(I_MIN), L(I_1)), doc, "int64 overflow");
    filter_error(OP2("mul", L(I_MAX), L(I_2)), doc, "int64 overflow");
    filter_error(OP2("div", L(I_MIN), L(I_M1)), doc, "int64 overflow");
    filter_error(OP2("mod", L(I_MIN), L(I_M1)), doc, "int64 overflow");
    filter_error(OP2("div", F("i"), L(I_0)), doc, "division by zero");
    filter_error(OP2("mod", F("i"), L(I_0)), doc, "division by zero");
    filter_error(OP1("neg", L(I_MIN)), doc, "neg needs a number");
    filter_error(OP1("neg", F("s")), doc, "neg needs a number");
    filter_error(OP2("add", F("i"), F("a")), doc, "int64 and float64");
    filter_error(OP2("add", F("s"), L("1")), doc, "string and float64");
    filter_error(OP2("mul", F("missing"), L("1")), doc, "undefined and float64");
    /* malformed expressions */
    filter_error(OP2("xor", L("true"), L("true")), doc, "unknown filter operator \"xor\"");
    filter_error(OP1("eq", L("1")), doc, "takes 2 arguments, got 1");
    filter_error(OP2("not", L("1"), L("2")), doc, "takes 1 argument, got 2");
    filter_error("[1]", doc, "must be an object");
    filter_error("{\"field\":1}", doc, "string path");
    filter_error("{\"op\":\"eq\"}", doc, "needs");
    filter_error(OP2("and", L("true"), "3"), doc, "must be an object");
    /* Deeper than JSON allows: built directly. */
    cvx_value_t *e = J(L("true"));
    for (int i = 0; i < 70; i++) {
        cvx_value_t *args = cvx_array(g_arena, 1), *o = cvx_object(g_arena, 2);
        cvx_arr_push(g_arena, args, e);
        cvx_obj_set(g_arena, o, "op", 2, cvx_string(g_arena, "not", 3));
        cvx_obj_set(g_arena, o, "args", 4, args);
        e = o;
    }
    bool m = true;
    cvx_err_t err;
    assert_int_equal(cvx_filter_eval(g_arena, e, J(doc), &m, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "deeper than 64");
}

static void test_query_filters(void **state) {
    fx_t *f = *state;
    people(f->s);
    cvx_index_def_t ix[] = {{"by_age", 1, F_AGE}};
    cvx_table_def_t td = {"people", 1, ix, NULL};
    apply(f->s, &td, 1);
    cvx_query_t q = {.table = "people", .index = "by_age", .limit = -1,
                     .filter = J(OP2("eq", F("city"), L("\"Paris\"")))};
    assert_string_equal(col(query_latest(f->s, &q), "name"), "fay,ann,cat,gus");
    q.desc = true;
    assert_string_equal(col(query_latest(f->s, &q), "name"), "gus,cat,ann,fay");
    cvx_txn_t *t = begin(f->s, CVX_TXN_READ);
    assert_int_equal(count(t, &q), 4);
    cvx_txn_abort(t);
    /* The limit counts matching documents; pages continue past skipped ones. */
    q.desc = false;
    q.limit = 2;
    char *p1 = query_latest(f->s, &q);
    assert_string_equal(col(p1, "name"), "fay,ann");
    q.cursor = cursor_of(p1);
    char *p2 = query_latest(f->s, &q);
    assert_string_equal(col(p2, "name"), "cat,gus");
    q.cursor = cursor_of(p2);
    char *p3 = query_latest(f->s, &q);
    assert_string_equal(col(p3, "name"), "");
    assert_true(is_done(p3));
    /* Filter with a range, missing fields, arithmetic. */
    cvx_range_t ge30[] = {R("age", GTE, "30")};
    q = (cvx_query_t){.table = "people", .index = "by_age", .range = ge30, .nrange = 1, .limit = -1,
                      .filter = J(OP2("gt", OP2("mul", F("age"), L("2")), L("65")))};
    /* hal's age is a string: mul fails, an error for the whole query */
    t = begin(f->s, CVX_TXN_READ);
    char *out;
    cvx_err_t err;
    assert_int_equal(query_rc(t, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "mul");
    cvx_range_t numbers[] = {R("age", GTE, "0"), R("age", LT, "100")};
    q.range = numbers;
    q.nrange = 2;
    assert_string_equal(col(query(t, &q), "name"), "cat,gus");
    q.filter = J(OP2("eq", F("age"), F("nothing")));
    q.range = NULL;
    q.nrange = 0;
    assert_string_equal(col(query(t, &q), "name"), "dan");
    cvx_txn_abort(t);
}

/* ---- counts and the writer's own view -------------------------------------- */

static void test_count(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "c");
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    for (int i = 0; i < 50; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"n\":%d}", i);
        insert(t, "c", json);
    }
    commit(t);
    cvx_query_t q = {.table = "c", .limit = 3, .cursor = "ignored"};
    t = begin(f->s, CVX_TXN_WRITE);
    assert_int_equal(count(t, &q), 50);
    cvx_range_t r[] = {R("n", GTE, "10"), R("n", LT, "20")};
    cvx_query_t qr = {.table = "c", .index = "by_n", .range = r, .nrange = 2, .limit = 1};
    assert_int_equal(count(t, &qr), 10);
    qr.filter = J(OP2("eq", OP2("mod", F("n"), L("2")), L("0")));
    assert_int_equal(count(t, &qr), 5);
    insert(t, "c", "{\"n\":12}");
    assert_int_equal(count(t, &qr), 6);
    assert_int_equal(count(t, &q), 51);
    cvx_txn_abort(t);
    cvx_query_t none = {.table = "nothing_here", .limit = -1};
    t = begin(f->s, CVX_TXN_READ);
    assert_int_equal(count(t, &none), 0);
    assert_int_equal(count(t, &q), 50);
    cvx_txn_abort(t);
}

static void test_own_writes(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "w");
    char *id1 = put(f->s, "w", "{\"n\":1,\"k\":\"one\"}");
    char *id3 = put(f->s, "w", "{\"n\":3,\"k\":\"three\"}");
    char *id5 = put(f->s, "w", "{\"n\":5,\"k\":\"five\"}");
    (void)id1;

    for (int round = 0; round < 2; round++) {
        cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
        char *id2 = insert(t, "w", "{\"n\":2,\"k\":\"two\"}");
        char *id4 = insert(t, "w", "{\"n\":4,\"k\":\"four\"}");
        patch(t, id5, "{\"n\":0}", NULL, 0);
        cvx_err_t err;
        assert_int_equal(cvx_txn_delete(t, id3, strlen(id3), &err), CVX_OK);
        /* A document inserted and deleted in the same transaction. */
        char *tmp = insert(t, "w", "{\"n\":2.5,\"k\":\"temp\"}");
        assert_int_equal(cvx_txn_delete(t, tmp, strlen(tmp), &err), CVX_OK);
        patch(t, id2, "{\"k\":\"TWO\"}", NULL, 0);

        assert_string_equal(field(get(t, id2), "k"), "TWO");
        assert_string_equal(field(get(t, id5), "n"), "0");
        assert_string_equal(get(t, id3), "null");
        assert_string_equal(get(t, tmp), "null");

        cvx_query_t q = {.table = "w", .index = "by_n", .limit = -1};
        assert_string_equal(col(query(t, &q), "k"), "five,one,TWO,four");
        q.desc = true;
        assert_string_equal(col(query(t, &q), "k"), "four,TWO,one,five");
        q.filter = J(OP2("gt", F("n"), L("1")));
        assert_string_equal(col(query(t, &q), "k"), "four,TWO");
        q.desc = false;
        assert_string_equal(col(query(t, &q), "k"), "TWO,four");
        q.filter = NULL;
        cvx_range_t r[] = {R("n", GT, "0"), R("n", LTE, "2")};
        q.range = r;
        q.nrange = 2;
        assert_string_equal(col(query(t, &q), "k"), "one,TWO");
        q.range = NULL;
        q.nrange = 0;
        /* Pages with a cursor mix stored and pending documents. */
        q.limit = 2;
        char *p1 = query(t, &q);
        assert_string_equal(col(p1, "k"), "five,one");
        q.cursor = cursor_of(p1);
        char *p2 = query(t, &q);
        assert_string_equal(col(p2, "k"), "TWO,four");
        q.cursor = cursor_of(p2);
        char *p3 = query(t, &q);
        assert_string_equal(col(p3, "k"), "");
        assert_true(is_done(p3));
        /* by_creation_time: stored first (older), then this transaction's. */
        cvx_query_t c = {.table = "w", .limit = -1};
        assert_string_equal(col(query(t, &c), "k"), "one,five,TWO,four");
        c.desc = true;
        c.limit = 1;
        assert_string_equal(col(query(t, &c), "k"), "four");
        assert_int_equal(count(t, &c), 4);

        if (round == 0) {
            /* Aborted: nothing happened. */
            cvx_txn_abort(t);
            cvx_query_t all = {.table = "w", .limit = -1};
            assert_string_equal(col(query_latest(f->s, &all), "k"), "one,three,five");
            assert_string_equal(get_latest(f->s, id2), "null");
        } else {
            commit(t);
            cvx_query_t all = {.table = "w", .index = "by_n", .limit = -1};
            assert_string_equal(col(query_latest(f->s, &all), "k"), "five,one,TWO,four");
            assert_string_equal(field(get_latest(f->s, id4), "k"), "four");
            assert_string_equal(get_latest(f->s, tmp), "null");
        }
    }
}

/* ---- tables ----------------------------------------------------------------- */

static void test_table_creation(void **state) {
    fx_t *f = *state;
    put(f->s, "base", "{\"x\":1}");

    /* A reader that saw the table missing conflicts with its creation. */
    cvx_txn_t *a = begin(f->s, CVX_TXN_WRITE);
    cvx_query_t q = {.table = "fresh", .limit = -1};
    assert_string_equal(col(query(a, &q), "x"), "");
    insert(a, "base", "{\"x\":2}");
    put(f->s, "fresh", "{\"x\":3}");
    expect_commit(a, CVX_E_CONFLICT, "reader of a missing table");
    /* Unrelated table creation: no conflict. */
    a = begin(f->s, CVX_TXN_WRITE);
    q.table = "still_missing";
    query(a, &q);
    insert(a, "base", "{\"x\":2}");
    put(f->s, "another", "{\"x\":4}");
    expect_commit(a, CVX_OK, "reader of another missing table");

    /* Two transactions creating the same table: the second conflicts and
     * its retry sees the table. */
    a = begin(f->s, CVX_TXN_WRITE);
    cvx_txn_t *b = begin(f->s, CVX_TXN_WRITE);
    insert(a, "dup", "{\"who\":\"a\"}");
    insert(b, "dup", "{\"who\":\"b\"}");
    commit(a);
    expect_commit(b, CVX_E_CONFLICT, "second creator");
    put(f->s, "dup", "{\"who\":\"b\"}");
    cvx_query_t d = {.table = "dup", .limit = -1};
    assert_string_equal(col(query_latest(f->s, &d), "who"), "a,b");

    /* An aborted creation and an insert-then-delete create nothing. */
    a = begin(f->s, CVX_TXN_WRITE);
    insert(a, "ghost", "{}");
    cvx_txn_abort(a);
    a = begin(f->s, CVX_TXN_WRITE);
    char *g = insert(a, "ghost2", "{}");
    cvx_err_t err;
    assert_int_equal(cvx_txn_delete(a, g, strlen(g), &err), CVX_OK);
    commit(a);
    char *tables = tables_json(f->s);
    cvx_value_t *tv = J(tables);
    assert_int_equal(tv->u.arr.len, 4);
    assert_string_equal(col(tables, "name"), "another,base,dup,fresh");
    assert_string_equal(col(tables, "documents"), "1,2,2,1");

    /* Table numbers are stable across reopen and distinct. */
    reopen(f);
    assert_string_equal(tables_json(f->s), tables);
    put(f->s, "later", "{}");
    char *after = tables_json(f->s);
    tu_assert_contains(after, "\"name\":\"later\"");
    cvx_value_t *av = J(after);
    for (size_t i = 0; i < av->u.arr.len; i++)
        for (size_t k = 0; k < i; k++)
            assert_false(cvx_value_equal(cvx_obj_get_cstr(av->u.arr.items[i], "number"),
                                         cvx_obj_get_cstr(av->u.arr.items[k], "number")));
}

/* ---- per-transaction limits ------------------------------------------------ */

static void test_limits(void **state) {
    fx_t *f = *state;
    cvx_store_close(f->s);
    cvx_store_config_t cfg;
    cvx_store_config_default(&cfg);
    cfg.max_docs_read = 10;
    cfg.max_bytes_read = 4000;
    cfg.max_docs_written = 5;
    cfg.max_bytes_written = 3000;
    f->s = open_store(f->dir, &cfg);

    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    char *ids[5];
    for (int i = 0; i < 5; i++) ids[i] = insert(t, "lim", "{\"v\":1}");
    cvx_buf_t out = {0};
    cvx_err_t err;
    assert_int_equal(cvx_txn_insert(t, "lim", 3, J("{\"v\":1}"), &out, &err), CVX_E_LIMIT);
    tu_assert_contains(err.msg, "more than 5 documents (limit of documents written per mutation)");
    commit(t); /* the five that fit; not the one that failed */
    t = begin(f->s, CVX_TXN_WRITE);
    for (int i = 0; i < 5; i++) insert(t, "lim", "{\"v\":2}");
    commit(t);
    cvx_query_t q = {.table = "lim", .limit = -1};
    t = begin(f->s, CVX_TXN_READ);
    assert_int_equal(count(t, &q), 10);
    cvx_txn_abort(t);

    /* Reads: the eleventh document read fails, in a query or in gets. */
    put(f->s, "lim", "{\"v\":3}");
    t = begin(f->s, CVX_TXN_READ);
    char *o;
    assert_int_equal(query_rc(t, &q, &o, &err), CVX_E_LIMIT);
    tu_assert_contains(err.msg, "more than 10 documents (limit of documents read per function call)");
    cvx_txn_abort(t);
    t = begin(f->s, CVX_TXN_READ);
    q.limit = 10;
    query(t, &q);
    assert_int_equal(cvx_txn_get(t, ids[0], strlen(ids[0]), &out, &err), CVX_E_LIMIT);
    cvx_txn_abort(t);

    /* Bytes read. */
    cvx_buf_t big = {0};
    cvx_buf_append_str(&big, "{\"s\":\"");
    for (int i = 0; i < 1500; i++) cvx_buf_append_char(&big, 'y');
    cvx_buf_append_str(&big, "\"}");
    char *b1 = put(f->s, "bigs", big.data);
    char *b2 = put(f->s, "bigs", big.data);
    t = begin(f->s, CVX_TXN_READ);
    get(t, b1);
    get(t, b2);
    assert_int_equal(cvx_txn_get(t, b1, strlen(b1), &out, &err), CVX_E_LIMIT);
    tu_assert_contains(err.msg, "more than 4000 bytes (limit of bytes read per function call)");
    cvx_txn_abort(t);

    /* Bytes written. */
    t = begin(f->s, CVX_TXN_WRITE);
    insert(t, "bigs", big.data);
    assert_int_equal(cvx_txn_insert(t, "bigs", 4, J(big.data), &out, &err), CVX_E_LIMIT);
    tu_assert_contains(err.msg, "more than 3000 bytes (limit of bytes written per mutation)");
    cvx_txn_abort(t);
    cvx_buf_free(&big);
    cvx_buf_free(&out);

    /* Limits are for function calls, not for the store's own bookkeeping:
     * listing tables counts every document. */
    char *tables = tables_json(f->s);
    tu_assert_contains(tables, "{\"name\":\"lim\",");
    tu_assert_contains(tables, "\"documents\":11}");

    /* Limits are per transaction: a fresh one starts from zero. */
    t = begin(f->s, CVX_TXN_WRITE);
    for (int i = 0; i < 5; i++) insert(t, "lim", "{\"v\":4}");
    commit(t);
}

/* ---- durability ------------------------------------------------------------- */

static void test_durability(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "d");
    char *ids[30];
    uint64_t last = 0;
    for (int c = 0; c < 3; c++) {
        cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
        for (int i = 0; i < 10; i++) {
            char json[32];
            snprintf(json, sizeof json, "{\"n\":%d}", c * 10 + i);
            ids[c * 10 + i] = insert(t, "d", json);
        }
        uint64_t ts = commit(t);
        assert_true(ts > last);
        last = ts;
    }
    patch1(f->s, ids[0], "{\"n\":100}");
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    cvx_err_t err;
    assert_int_equal(cvx_txn_delete(t, ids[1], strlen(ids[1]), &err), CVX_OK);
    last = commit(t);
    char *ct_last = field(get_latest(f->s, ids[29]), "_creationTime");

    for (int round = 0; round < 3; round++) {
        cvx_store_close(f->s);
        f->s = open_store(f->dir, NULL);
        assert_int_equal(cvx_store_latest_ts(f->s), last);
        assert_string_equal(field(get_latest(f->s, ids[0]), "n"), "100");
        assert_string_equal(get_latest(f->s, ids[1]), "null");
        assert_string_equal(field(get_latest(f->s, ids[2]), "n"), "2");
        cvx_range_t r[] = {R("n", GTE, "27")};
        cvx_query_t q = {.table = "d", .index = "by_n", .range = r, .nrange = 1, .limit = -1};
        char *expect = round == 0 ? "27,28,29,100" : round == 1 ? "27,28,29,100,1000" : "27,28,29,100,1000,1001";
        assert_string_equal(col(query_latest(f->s, &q), "n"), expect);
        /* Timestamps keep increasing across the restart, creation times too. */
        char json[32];
        snprintf(json, sizeof json, "{\"n\":%d}", 1000 + round);
        t = begin(f->s, CVX_TXN_WRITE);
        char *nid = insert(t, "d", json);
        uint64_t ts = commit(t);
        assert_true(ts > last);
        last = ts;
        char *ct = field(get_latest(f->s, nid), "_creationTime");
        assert_true(strtod(ct, NULL) > strtod(ct_last, NULL));
        ct_last = ct;
        /* An old snapshot is still readable after the restart. */
        cvx_txn_t *old = begin_at(f->s, CVX_TXN_READ, ts - 1);
        assert_string_equal(get(old, nid), "null");
        cvx_txn_abort(old);
    }
}

/* ---- injected failures ------------------------------------------------------ */

static void test_commit_failure(void **state) {
    fx_t *f = *state;
    char *keep_id = put(f->s, "t", "{\"v\":1}");
    uint64_t before = cvx_store_latest_ts(f->s);
    char *tables = tables_json(f->s);

    cvx__store_fail_commit(1, false);
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    char *lost = insert(t, "t", "{\"v\":2}");
    insert(t, "brand_new", "{\"v\":3}");
    patch(t, keep_id, "{\"v\":10}", NULL, 0);
    uint64_t ts = 0;
    cvx_err_t err;
    assert_int_equal(cvx_txn_commit(t, &ts, &err), CVX_E_IO);
    tu_assert_contains(err.msg, "injected");
    /* Nothing of it: no document, no patch, no table, no new snapshot. */
    assert_int_equal(cvx_store_latest_ts(f->s), before);
    assert_string_equal(get_latest(f->s, lost), "null");
    assert_string_equal(field(get_latest(f->s, keep_id), "v"), "1");
    assert_string_equal(tables_json(f->s), tables);
    cvx_query_t q = {.table = "brand_new", .limit = -1};
    assert_string_equal(col(query_latest(f->s, &q), "v"), "");

    /* A failed commit is not a commit: a concurrent reader of the same
     * document does not conflict with it. */
    cvx_txn_t *reader = begin(f->s, CVX_TXN_WRITE);
    get(reader, keep_id);
    cvx__store_fail_commit(1, false);
    t = begin(f->s, CVX_TXN_WRITE);
    patch(t, keep_id, "{\"v\":11}", NULL, 0);
    assert_int_equal(cvx_txn_commit(t, &ts, &err), CVX_E_IO);
    patch(reader, keep_id, "{\"v\":12}", NULL, 0);
    commit(reader);

    /* Later commits work, including creating the table that failed. */
    put(f->s, "brand_new", "{\"v\":4}");
    assert_string_equal(col(query_latest(f->s, &q), "v"), "4");

    /* Sticky failures, then recovery. */
    cvx__store_fail_commit(2, true);
    put(f->s, "t", "{\"v\":5}");
    for (int i = 0; i < 3; i++) {
        t = begin(f->s, CVX_TXN_WRITE);
        insert(t, "t", "{\"v\":6}");
        assert_int_equal(cvx_txn_commit(t, &ts, &err), CVX_E_IO);
    }
    /* An index change that fails changes nothing. */
    cvx_index_def_t ix = {"by_v", 1, (const char *const[]){"v"}};
    cvx_table_def_t td = {"t", 1, &ix, NULL};
    assert_int_equal(cvx_store_apply_indexes(f->s, &td, 1, NULL, NULL, &err), CVX_E_IO);
    cvx_query_t byv = {.table = "t", .index = "by_v", .limit = -1};
    cvx_txn_t *r = begin(f->s, CVX_TXN_READ);
    char *o;
    assert_int_equal(query_rc(r, &byv, &o, &err), CVX_E_INVALID_ARGUMENT);
    cvx_txn_abort(r);
    cvx__store_fail_commit(0, false);
    apply(f->s, &td, 1);
    assert_string_equal(col(query_latest(f->s, &byv), "v"), "5,12");

    /* After a restart: exactly the committed data. */
    reopen(f);
    cvx_query_t all = {.table = "t", .limit = -1};
    assert_string_equal(col(query_latest(f->s, &all), "v"), "12,5");
    assert_string_equal(col(query_latest(f->s, &byv), "v"), "5,12");
    assert_string_equal(col(query_latest(f->s, &q), "v"), "4");
}

/* The continueCursor of a page without cvx allocations (for use while
 * allocations are failing). */
static char *raw_cursor(const char *page) {
    const char *c = strstr(page, "\"continueCursor\":\"");
    assert_non_null(c);
    c += strlen("\"continueCursor\":\"");
    return keep(strndup(c, strcspn(c, "\"")));
}

/* Out of memory at every allocation of a write transaction's life: each
 * step fails cleanly with NOMEM (or succeeds with exactly the right
 * result), nothing leaks, and the store holds exactly the transactions that
 * committed. */
/* ---- the write pipeline ------------------------------------------------------ */

typedef struct {
    cvx_txn_t *t;
    int rc;
    uint64_t ts;
    cvx_err_t err;
    atomic_bool done;
    pthread_t th;
} bg_commit_t;

static void *bg_commit_main(void *arg) {
    bg_commit_t *b = arg;
    b->rc = cvx_txn_commit(b->t, &b->ts, &b->err);
    atomic_store(&b->done, true);
    return NULL;
}

static void bg_commit(bg_commit_t *b, cvx_txn_t *t) {
    memset(b, 0, sizeof *b);
    b->t = t;
    assert_int_equal(pthread_create(&b->th, NULL, bg_commit_main, b), 0);
}

static void bg_join(bg_commit_t *b) { pthread_join(b->th, NULL); }

/* Waits (up to 20 s) until the store holds a commit newer than `than`. */
static uint64_t wait_written(cvx_store_t *s, uint64_t than) {
    for (int i = 0; i < 20000; i++) {
        uint64_t w = atomic_load(&s->written);
        if (w > than) return w;
        usleep(1000);
    }
    fail_msg("no commit was written");
    return 0;
}

typedef struct {
    atomic_int calls;
    _Atomic uint64_t last_ts;
    atomic_bool out_of_order;
} order_t;

static void on_commit_order(void *ctx, const cvx_commit_info_t *c) {
    order_t *o = ctx;
    if (c->ts <= atomic_load(&o->last_ts)) atomic_store(&o->out_of_order, true);
    atomic_store(&o->last_ts, c->ts);
    atomic_fetch_add(&o->calls, 1);
}

/* Between a group's write and its fsync: mutations read it, queries and
 * listeners do not, nothing that read it is answered, and the next group
 * is written meanwhile. Then one release publishes both, in order. */
static void test_pipeline(void **state) {
    fx_t *f = *state;
    char *id = put(f->s, "t", "{\"v\":1}");
    order_t seen;
    memset(&seen, 0, sizeof seen);
    int h = cvx_store_listen(f->s, on_commit_order, &seen);
    uint64_t before = cvx_store_latest_ts(f->s);

    cvx__store_hold_sync(true);
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    patch(t, id, "{\"v\":2}", NULL, 0);
    bg_commit_t first;
    bg_commit(&first, t);
    uint64_t w1 = wait_written(f->s, before);
    assert_false(atomic_load(&first.done));
    assert_int_equal(cvx_store_latest_ts(f->s), before);
    assert_int_equal(atomic_load(&seen.calls), 0);

    /* A query still sees the durable state ... */
    assert_string_equal(field(get_latest(f->s, id), "v"), "1");
    /* ... a mutation sees the write in flight and builds on it without
     * conflicting, and its group is written before the first is durable. */
    cvx_txn_t *m = begin(f->s, CVX_TXN_WRITE);
    assert_int_equal(cvx_txn_snapshot_ts(m), w1);
    assert_string_equal(field(get(m, id), "v"), "2");
    patch(m, id, "{\"v\":3}", NULL, 0);
    bg_commit_t second;
    bg_commit(&second, m);
    uint64_t w2 = wait_written(f->s, w1);
    /* A mutation that only read the state in flight is not answered
     * before that state is durable. */
    cvx_txn_t *r = begin(f->s, CVX_TXN_WRITE);
    assert_string_equal(field(get(r, id), "v"), "3");
    bg_commit_t reader;
    bg_commit(&reader, r);
    usleep(20000);
    assert_false(atomic_load(&first.done));
    assert_false(atomic_load(&second.done));
    assert_false(atomic_load(&reader.done));
    assert_int_equal(cvx_store_latest_ts(f->s), before);

    cvx__store_hold_sync(false);
    bg_join(&first);
    bg_join(&second);
    bg_join(&reader);
    assert_int_equal(first.rc, CVX_OK);
    assert_int_equal(second.rc, CVX_OK);
    assert_int_equal(reader.rc, CVX_OK);
    assert_int_equal(first.ts, w1);
    assert_int_equal(second.ts, w2);
    assert_int_equal(reader.ts, w2); /* its snapshot */
    assert_int_equal(cvx_store_latest_ts(f->s), w2);
    assert_int_equal(atomic_load(&seen.calls), 2);
    assert_false(atomic_load(&seen.out_of_order));
    assert_string_equal(field(get_latest(f->s, id), "v"), "3");
    cvx_store_unlisten(f->s, h);

    /* Durable across a reopen. */
    reopen(f);
    assert_string_equal(field(get_latest(f->s, id), "v"), "3");
}

/* Many writers: every acknowledged commit is durable and published, in ts
 * order, whatever the grouping; read-modify-writes of one counter lose no
 * update. */
typedef struct {
    cvx_store_t *s;
    const char *counter;
    int n;
    int conflicts;
} incr_arg_t;

static void *incr_main(void *arg) {
    incr_arg_t *a = arg;
    for (int i = 0; i < a->n;) {
        cvx_txn_t *t = NULL;
        cvx_err_t err;
        if (cvx_txn_begin(a->s, CVX_TXN_WRITE, 0, &t, &err)) return NULL;
        cvx_buf_t out = {0};
        cvx_txn_get(t, a->counter, strlen(a->counter), &out, &err);
        const char *c = strstr(out.data ? out.data : "", "\"c\":");
        long v = c ? strtol(c + 4, NULL, 10) : -1;
        cvx_buf_free(&out);
        char json[64];
        snprintf(json, sizeof json, "{\"c\":%ld}", v + 1);
        cvx_arena_t *ar = cvx_arena_new(256);
        cvx_value_t *val = NULL;
        cvx_json_parse(ar, json, strlen(json), &val, &err);
        cvx_txn_patch(t, a->counter, strlen(a->counter), val, NULL, 0, &err);
        cvx_arena_free(ar);
        uint64_t ts;
        int rc = cvx_txn_commit(t, &ts, &err);
        if (rc == CVX_OK) i++;
        else if (rc == CVX_E_CONFLICT) a->conflicts++;
        else return NULL;
    }
    return NULL;
}

static void test_pipeline_concurrent(void **state) {
    fx_t *f = *state;
    char *counter = put(f->s, "t", "{\"c\":0}");
    order_t seen;
    memset(&seen, 0, sizeof seen);
    int h = cvx_store_listen(f->s, on_commit_order, &seen);
    enum { THREADS = 8, EACH = 150 };
    pthread_t th[THREADS];
    incr_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (incr_arg_t){f->s, counter, EACH, 0};
        assert_int_equal(pthread_create(&th[i], NULL, incr_main, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    assert_string_equal(field(get_latest(f->s, counter), "c"), "1200");
    assert_int_equal(atomic_load(&seen.calls), THREADS * EACH);
    assert_false(atomic_load(&seen.out_of_order));
    assert_int_equal(atomic_load(&seen.last_ts), cvx_store_latest_ts(f->s));
    cvx_store_stats_t st;
    cvx_store_stats(f->s, &st);
    assert_true(st.syncs >= 1 && st.syncs <= st.groups);
    cvx_store_unlisten(f->s, h);
    reopen(f);
    assert_string_equal(field(get_latest(f->s, counter), "c"), "1200");
}

/* Hot ranges: once two mutations conflicted over a document, the next
 * ones take turns on it instead: the second waits for the first's commit
 * to be written and then reads it, so neither conflicts. */
typedef struct {
    cvx_store_t *s;
    const char *id;
    char *seen;            /* what the read returned */
    atomic_bool read_done; /* the read returned */
    atomic_bool release;   /* (holder) may end now */
    bool abort_instead;
    int rc;
    pthread_t th;
} turn_t;

static void *turn_main(void *arg) {
    turn_t *a = arg;
    cvx_txn_t *t = begin(a->s, CVX_TXN_WRITE);
    a->seen = get(t, a->id);
    atomic_store(&a->read_done, true);
    while (!atomic_load(&a->release)) usleep(1000);
    if (a->abort_instead) {
        cvx_txn_abort(t);
        return NULL;
    }
    char json[64];
    snprintf(json, sizeof json, "{\"v\":%d}", atoi(field(a->seen, "v")) + 1);
    patch(t, a->id, json, NULL, 0);
    uint64_t ts;
    cvx_err_t err;
    a->rc = cvx_txn_commit(t, &ts, &err);
    return NULL;
}

static void turn_start(turn_t *a, cvx_store_t *s, const char *id) {
    memset(a, 0, sizeof *a);
    a->s = s;
    a->id = id;
    assert_int_equal(pthread_create(&a->th, NULL, turn_main, a), 0);
}

static void wait_flag(atomic_bool *f) {
    for (int i = 0; i < 20000 && !atomic_load(f); i++) usleep(1000);
    assert_true(atomic_load(f));
}

static void test_hot_ranges(void **state) {
    fx_t *f = *state;
    char *id = put(f->s, "t", "{\"v\":0}");
    cvx_err_t err;
    uint64_t ts;
    cvx__store_hot_ns(3600ull * 1000000000ull); /* however slow this machine is */

    /* A conflict makes the document's range hot. */
    cvx_txn_t *loser = begin(f->s, CVX_TXN_WRITE);
    get(loser, id);
    patch1(f->s, id, "{\"v\":1}");
    patch(loser, id, "{\"v\":100}", NULL, 0);
    assert_int_equal(cvx_txn_commit(loser, &ts, &err), CVX_E_CONFLICT);
    cvx_store_stats_t st0;
    cvx_store_stats(f->s, &st0);

    /* The next two take turns. */
    turn_t a, b;
    turn_start(&a, f->s, id);
    wait_flag(&a.read_done);
    turn_start(&b, f->s, id);
    usleep(50000);
    assert_false(atomic_load(&b.read_done)); /* waiting for a's turn to end */
    atomic_store(&a.release, true);
    wait_flag(&b.read_done);
    atomic_store(&b.release, true);
    pthread_join(a.th, NULL);
    pthread_join(b.th, NULL);
    assert_int_equal(a.rc, CVX_OK);
    assert_int_equal(b.rc, CVX_OK);
    assert_string_equal(field(a.seen, "v"), "1");
    assert_string_equal(field(b.seen, "v"), "2"); /* a's write, not yet durable when b read it */
    assert_string_equal(field(get_latest(f->s, id), "v"), "3");
    cvx_store_stats_t st1;
    cvx_store_stats(f->s, &st1);
    assert_int_equal(st1.conflicts, st0.conflicts);

    /* An aborted turn passes the document on too. */
    turn_start(&a, f->s, id);
    a.abort_instead = true;
    wait_flag(&a.read_done);
    turn_start(&b, f->s, id);
    usleep(20000);
    assert_false(atomic_load(&b.read_done));
    atomic_store(&a.release, true);
    wait_flag(&b.read_done);
    atomic_store(&b.release, true);
    pthread_join(a.th, NULL);
    pthread_join(b.th, NULL);
    assert_int_equal(b.rc, CVX_OK);
    assert_string_equal(field(get_latest(f->s, id), "v"), "4");

    /* A turn that does not end is not waited for forever: the next one
     * goes ahead optimistically (and here conflicts, correctly). */
    turn_start(&a, f->s, id);
    wait_flag(&a.read_done);
    turn_start(&b, f->s, id);
    wait_flag(&b.read_done); /* while a still holds it */
    atomic_store(&b.release, true);
    pthread_join(b.th, NULL);
    atomic_store(&a.release, true);
    pthread_join(a.th, NULL);
    assert_int_equal(b.rc, CVX_OK);
    assert_int_equal(a.rc, CVX_E_CONFLICT);
    assert_string_equal(field(get_latest(f->s, id), "v"), "5");

    /* Queries never wait. */
    cvx_txn_t *w = begin(f->s, CVX_TXN_WRITE);
    get(w, id);
    assert_string_equal(field(get_latest(f->s, id), "v"), "5");
    cvx_txn_abort(w);
}

/* A transaction whose catalog is no longer the current one (a table was
 * created after it began) takes a hot lock without moving its snapshot:
 * it holds pointers into its catalog (a moved one freed it, found by ASan). */
static void test_hot_refresh_keeps_catalog(void **state) {
    fx_t *f = *state;
    cvx__store_hot_ns(3600ull * 1000000000ull);
    char *id = put(f->s, "t", "{\"v\":0}");
    cvx_txn_t *loser = begin(f->s, CVX_TXN_WRITE);
    get(loser, id);
    patch1(f->s, id, "{\"v\":1}");
    patch(loser, id, "{\"v\":100}", NULL, 0);
    uint64_t ts;
    cvx_err_t err;
    assert_int_equal(cvx_txn_commit(loser, &ts, &err), CVX_E_CONFLICT);

    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    uint64_t snapshot = cvx_txn_snapshot_ts(t);
    put(f->s, "created_meanwhile", "{}");
    patch(t, id, "{\"v\":2}", NULL, 0); /* hot: locks, and must not swap catalogs */
    assert_int_equal(cvx_txn_snapshot_ts(t), snapshot);
    commit(t);
    assert_string_equal(field(get_latest(f->s, id), "v"), "2");
    tu_assert_contains(tables_json(f->s), "created_meanwhile");
}

/* An fsync that fails: that commit fails, nothing of it is published, and
 * the store refuses every later write (what reached the disk is unknown)
 * while reads go on; a reopened store works again. */
static void test_sync_failure(void **state) {
    fx_t *f = *state;
    char *id = put(f->s, "t", "{\"v\":1}");
    uint64_t before = cvx_store_latest_ts(f->s);

    cvx__store_fail_sync(1);
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    patch(t, id, "{\"v\":2}", NULL, 0);
    uint64_t ts = 0;
    cvx_err_t err;
    assert_int_equal(cvx_txn_commit(t, &ts, &err), CVX_E_IO);
    tu_assert_contains(err.msg, "could not be made durable");
    tu_assert_contains(err.msg, "injected fsync failure");
    tu_assert_contains(err.msg, "restarted");
    assert_int_equal(cvx_store_latest_ts(f->s), before);
    assert_string_equal(field(get_latest(f->s, id), "v"), "1");

    /* Later writes fail at once, with the same explanation. */
    t = begin(f->s, CVX_TXN_WRITE);
    insert(t, "t", "{\"v\":3}");
    assert_int_equal(cvx_txn_commit(t, &ts, &err), CVX_E_IO);
    tu_assert_contains(err.msg, "injected fsync failure");
    cvx_index_def_t ix = {"by_v", 1, (const char *const[]){"v"}};
    cvx_table_def_t td = {"t", 1, &ix, NULL};
    uint64_t written = atomic_load(&f->s->written);
    assert_int_equal(cvx_store_apply_indexes(f->s, &td, 1, NULL, NULL, &err), CVX_E_IO);
    tu_assert_contains(err.msg, "could not be made durable");
    assert_int_equal(atomic_load(&f->s->written), written); /* nothing reached SQLite */
    /* A mutation that only read what failed to become durable fails too. */
    t = begin(f->s, CVX_TXN_WRITE);
    get(t, id);
    assert_int_equal(cvx_txn_commit(t, &ts, &err), CVX_E_IO);
    assert_int_equal(cvx_store_wait_durable(f->s, before, &err), CVX_OK);
    /* Reads at the durable snapshot go on. */
    assert_string_equal(field(get_latest(f->s, id), "v"), "1");
    assert_int_equal(cvx_store_latest_ts(f->s), before);

    /* Reopened: whether the failed commit survived is the disk's business
     * (here it did: the injected failure skipped an fsync, not a write);
     * either way the store is consistent and takes writes again. */
    reopen(f);
    const char *v = field(get_latest(f->s, id), "v");
    assert_true(!strcmp(v, "1") || !strcmp(v, "2"));
    put(f->s, "t", "{\"v\":4}");
    apply(f->s, &td, 1);
    cvx_query_t byv = {.table = "t", .index = "by_v", .limit = -1};
    assert_string_equal(col(query_latest(f->s, &byv), "v"), !strcmp(v, "1") ? "1,4" : "2,4");
}

static void test_out_of_memory(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "oom");
    cvx_txn_t *t0 = begin(f->s, CVX_TXN_WRITE);
    for (int i = 0; i < 8; i++) insert(t0, "oom", "{\"n\":0}");
    commit(t0);
    int committed = 0;
    uint64_t failures = 0;
    cvx_value_t *doc = J("{\"n\":1,\"s\":\"text\",\"o\":{\"a\":[1,2,3]}}");
    cvx_range_t r[] = {R("n", GTE, "0")};
    cvx_query_t q = {.table = "oom", .index = "by_n", .range = r, .nrange = 1, .limit = 5};
    for (uint64_t n = 1;; n++) {
        char *expect = query_latest(f->s, &q);
        q.cursor = cursor_of(expect);
        char *expect2 = query_latest(f->s, &q);
        q.cursor = NULL;
        cvx_alloc_fail_after(n, false);
        cvx_txn_t *t = NULL;
        cvx_err_t err;
        cvx_buf_t page = {0}, page2 = {0}, out = {0};
        int rc = cvx_txn_begin(f->s, CVX_TXN_WRITE, 0, &t, &err);
        if (!rc) {
            rc = cvx_txn_query(t, &q, &page, &err);
            /* the second page, through the first page's cursor */
            cvx_query_t q2 = q;
            q2.cursor = rc ? NULL : raw_cursor(page.data);
            if (!rc) rc = cvx_txn_query(t, &q2, &page2, &err);
            if (!rc) rc = cvx_txn_insert(t, "oom", 3, doc, &out, &err);
            if (!rc) rc = cvx_txn_insert(t, "oom_new", 7, doc, &out, &err);
            if (!rc) {
                uint64_t ts;
                rc = cvx_txn_commit(t, &ts, &err);
                t = NULL;
            }
            cvx_txn_abort(t);
        }
        uint64_t allocs = cvx_alloc_fail_after(0, false);
        /* A query that succeeded returned exactly the right page. */
        if (page.len && page2.len) {
            assert_string_equal(page.data, expect);
            assert_string_equal(page2.data, expect2);
        }
        cvx_buf_free(&page);
        cvx_buf_free(&page2);
        cvx_buf_free(&out);
        if (rc == CVX_OK) committed++;
        else {
            failures++;
            if (rc != CVX_E_NOMEM) fail_msg("allocation %llu: %s: %s", (unsigned long long)n, cvx_code_name(rc), err.msg);
        }
        if (allocs < n) break; /* the failure was never reached */
    }
    print_message("out of memory at %llu allocation sites, %d commits\n", (unsigned long long)failures, committed);
    assert_true(failures > 20);
    /* Every committed transaction is complete, and the store still works. */
    q = (cvx_query_t){.table = "oom", .limit = -1};
    cvx_txn_t *t = begin(f->s, CVX_TXN_READ);
    assert_int_equal(count(t, &q), 8 + committed);
    cvx_query_t qn = {.table = "oom_new", .limit = -1};
    assert_int_equal(count(t, &qn), committed);
    cvx_range_t r1[] = {R("n", EQ, "1")};
    cvx_query_t qi = {.table = "oom", .index = "by_n", .range = r1, .nrange = 1, .limit = -1};
    assert_int_equal(count(t, &qi), committed);
    cvx_txn_abort(t);
    put(f->s, "oom_new", "{\"n\":2}");
    put(f->s, "oom", "{\"n\":2}");
    reopen(f);
    t = begin(f->s, CVX_TXN_READ);
    assert_int_equal(count(t, &q), 9 + committed);
    assert_int_equal(count(t, &qn), 1 + committed);
    cvx_txn_abort(t);
}

/* Out of memory while creating and backfilling an index: either nothing
 * changed or the index is complete. */
static void test_out_of_memory_indexes(void **state) {
    fx_t *f = *state;
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    for (int i = 0; i < 40; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"n\":%d}", 39 - i);
        insert(t, "bf", json);
    }
    commit(t);
    cvx_index_def_t ix = {"by_n", 1, F_N};
    cvx_table_def_t td[] = {{"bf", 1, &ix, NULL}, {"bf_new", 1, &ix, NULL}};
    cvx_query_t q = {.table = "bf", .index = "by_n", .limit = -1};
    cvx_query_t qn = {.table = "bf_new", .index = "by_n", .limit = -1};
    uint64_t failures = 0;
    for (uint64_t n = 1;; n++) {
        cvx_err_t err;
        cvx_alloc_fail_after(n, false);
        int rc = cvx_store_apply_indexes(f->s, td, 2, NULL, NULL, &err);
        uint64_t allocs = cvx_alloc_fail_after(0, false);
        cvx_txn_t *r = begin(f->s, CVX_TXN_READ);
        char *out;
        if (rc == CVX_OK) {
            char *page = query(r, &q);
            cvx_value_t *docs = cvx_obj_get_cstr(J(page), "page");
            assert_int_equal(docs->u.arr.len, 40);
            for (size_t i = 0; i < 40; i++) assert_true(cvx_obj_get_cstr(docs->u.arr.items[i], "n")->u.f == (double)i);
            assert_string_equal(col(query(r, &qn), "n"), "");
            cvx_txn_abort(r);
            break;
        }
        failures++;
        if (rc != CVX_E_NOMEM) fail_msg("allocation %llu: %s: %s", (unsigned long long)n, cvx_code_name(rc), err.msg);
        assert_int_equal(query_rc(r, &q, &out, &err), CVX_E_INVALID_ARGUMENT);
        tu_assert_contains(err.msg, "has no index");
        cvx_txn_abort(r);
        assert_string_equal(col(tables_json(f->s), "name"), "bf");
        assert_true(allocs >= n);
    }
    assert_true(failures > 10);
}

/* ---- listeners and read sets ----------------------------------------------- */

typedef struct {
    int calls;
    uint64_t ts;
    cvx_written_key_t keys[64];
    uint8_t bytes[64][256];
    size_t nkeys;
} seen_t;

static void on_commit(void *ctx, const cvx_commit_info_t *c) {
    seen_t *s = ctx;
    s->calls++;
    s->ts = c->ts;
    s->nkeys = CVX_MIN(c->nkeys, 64);
    for (size_t i = 0; i < s->nkeys; i++) {
        assert_true(c->keys[i].key_len <= 256);
        memcpy(s->bytes[i], c->keys[i].key, c->keys[i].key_len);
        s->keys[i] = (cvx_written_key_t){c->keys[i].index_id, s->bytes[i], c->keys[i].key_len};
    }
}

static bool overlaps(const cvx_readset_t *r, const seen_t *s) {
    cvx_commit_info_t c = {s->ts, s->keys, s->nkeys};
    return cvx_readset_overlaps(r, &c);
}

/* Runs `reads` in a read transaction and returns its read set. */
static cvx_readset_t *readset_of(cvx_store_t *s, void (*reads)(cvx_txn_t *, void *), void *ctx) {
    cvx_txn_t *t = begin(s, CVX_TXN_READ);
    reads(t, ctx);
    cvx_readset_t *r = cvx_txn_readset(t);
    cvx_txn_abort(t);
    assert_non_null(r);
    return r;
}

static void read_get(cvx_txn_t *t, void *id) { get(t, id); }
static void read_all(cvx_txn_t *t, void *table) {
    cvx_query_t q = {.table = table, .limit = -1};
    query(t, &q);
}
static void read_low(cvx_txn_t *t, void *unused) {
    cvx_range_t r[] = {R("n", LT, "10")};
    cvx_query_t q = {.table = "l", .index = "by_n", .range = r, .nrange = 1, .limit = -1};
    query(t, &q);
}
static void read_high(cvx_txn_t *t, void *unused) {
    cvx_range_t r[] = {R("n", GTE, "100")};
    cvx_query_t q = {.table = "l", .index = "by_n", .range = r, .nrange = 1, .limit = -1};
    query(t, &q);
}
static void read_first(cvx_txn_t *t, void *unused) {
    cvx_query_t q = {.table = "l", .index = "by_n", .limit = 1};
    query(t, &q);
}
static void read_nothing(cvx_txn_t *t, void *unused) {}

static void test_listeners_and_readsets(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "l");
    char *a = put(f->s, "l", "{\"n\":5}");
    char *b = put(f->s, "l", "{\"n\":50}");
    seen_t seen;
    memset(&seen, 0, sizeof seen);
    int h = cvx_store_listen(f->s, on_commit, &seen);
    assert_true(h > 0);

    cvx_readset_t *rs_a = readset_of(f->s, read_get, a);
    cvx_readset_t *rs_b = readset_of(f->s, read_get, b);
    cvx_readset_t *rs_all = readset_of(f->s, read_all, "l");
    cvx_readset_t *rs_low = readset_of(f->s, read_low, NULL);
    cvx_readset_t *rs_high = readset_of(f->s, read_high, NULL);
    cvx_readset_t *rs_first = readset_of(f->s, read_first, NULL);
    cvx_readset_t *rs_missing = readset_of(f->s, read_all, "later");
    cvx_readset_t *rs_none = readset_of(f->s, read_nothing, NULL);
    assert_int_equal(cvx_readset_len(rs_a), 1);
    assert_int_equal(cvx_readset_len(rs_none), 0);
    assert_int_equal(cvx_readset_len(rs_missing), 1);

    /* Patch a: n 5 -> 7 (stays low). */
    patch1(f->s, a, "{\"n\":7}");
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.ts, cvx_store_latest_ts(f->s));
    /* by_id and by_creation_time (unchanged keys), by_n old and new */
    assert_int_equal(seen.nkeys, 4);
    assert_true(overlaps(rs_a, &seen));
    assert_false(overlaps(rs_b, &seen));
    assert_true(overlaps(rs_all, &seen));
    assert_true(overlaps(rs_low, &seen));
    assert_false(overlaps(rs_high, &seen));
    assert_true(overlaps(rs_first, &seen));
    assert_false(overlaps(rs_missing, &seen));
    assert_false(overlaps(rs_none, &seen));

    /* Insert n=200: only the readers of its range and of the whole table. */
    put(f->s, "l", "{\"n\":200}");
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.nkeys, 3); /* one key per index */
    assert_true(seen.keys[0].index_id != seen.keys[1].index_id && seen.keys[1].index_id != seen.keys[2].index_id &&
                seen.keys[0].index_id != seen.keys[2].index_id);
    assert_false(overlaps(rs_a, &seen));
    assert_false(overlaps(rs_b, &seen));
    assert_true(overlaps(rs_all, &seen));
    assert_false(overlaps(rs_low, &seen));
    assert_true(overlaps(rs_high, &seen));
    assert_false(overlaps(rs_first, &seen)); /* its page ended at n=5 */
    assert_false(overlaps(rs_missing, &seen));

    /* Patch b moving it from 50 to 150: old key 50 is in no range read
     * except the table's; new key is in `high`. */
    patch1(f->s, b, "{\"n\":150}");
    assert_true(overlaps(rs_b, &seen));
    assert_true(overlaps(rs_high, &seen));
    assert_false(overlaps(rs_low, &seen));
    assert_false(overlaps(rs_a, &seen));

    /* Creating the table a reader saw missing. */
    put(f->s, "later", "{}");
    bool table_key = false;
    for (size_t i = 0; i < seen.nkeys; i++) table_key = table_key || seen.keys[i].index_id == CVX__TABLES_INDEX;
    assert_true(table_key); /* the table's creation is a written key too */
    assert_true(overlaps(rs_missing, &seen));
    assert_false(overlaps(rs_all, &seen));
    assert_false(overlaps(rs_high, &seen));

    /* A transaction that writes nothing is not a commit. */
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    get(t, a);
    commit(t);
    assert_int_equal(seen.calls, 4);

    cvx_store_unlisten(f->s, h);
    put(f->s, "l", "{\"n\":1}");
    assert_int_equal(seen.calls, 4);

    cvx_readset_t *rs[] = {rs_a, rs_b, rs_all, rs_low, rs_high, rs_first, rs_missing, rs_none};
    for (size_t i = 0; i < CVX_ARRAY_LEN(rs); i++) cvx_readset_free(rs[i]);
    cvx_readset_free(NULL);
}

/* ---- the hot-document cache ---------------------------------------------------- */

static cvx_store_stats_t stats_of(cvx_store_t *s) {
    cvx_store_stats_t st;
    cvx_store_stats(s, &st);
    return st;
}

/* Through the store: repeated reads hit, and every snapshot still sees its
 * own revision (the cache never answers for a snapshot older than the
 * revision it holds). */
static void test_doc_cache_snapshots(void **state) {
    fx_t *f = *state;
    char *id = put(f->s, "docs", "{\"v\":1}");
    uint64_t ts1 = cvx_store_latest_ts(f->s);
    /* The commit put v1 in the cache: a read hits. */
    uint64_t h0 = stats_of(f->s).doc_cache_hits;
    assert_string_equal(field(get_latest(f->s, id), "v"), "1");
    assert_int_equal(stats_of(f->s).doc_cache_hits, h0 + 1);

    cvx_txn_t *old = begin(f->s, CVX_TXN_READ);
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    patch(t, id, "{\"v\":2}", NULL, 0);
    uint64_t ts2 = commit(t);
    /* The cache holds v2 now; the reader at ts1 still gets v1 (from SQLite). */
    uint64_t m0 = stats_of(f->s).doc_cache_misses;
    assert_string_equal(field(get(old, id), "v"), "1");
    assert_int_equal(stats_of(f->s).doc_cache_misses, m0 + 1);
    cvx_txn_abort(old);
    cvx_txn_t *at1 = begin_at(f->s, CVX_TXN_READ, ts1);
    assert_string_equal(field(get(at1, id), "v"), "1");
    cvx_txn_abort(at1);
    h0 = stats_of(f->s).doc_cache_hits;
    assert_string_equal(field(get_latest(f->s, id), "v"), "2");
    assert_int_equal(stats_of(f->s).doc_cache_hits, h0 + 1);
    cvx_txn_t *at2 = begin_at(f->s, CVX_TXN_READ, ts2);
    assert_string_equal(field(get(at2, id), "v"), "2");
    cvx_txn_abort(at2);

    /* A deletion is a revision too. */
    t = begin(f->s, CVX_TXN_WRITE);
    cvx_err_t err;
    assert_int_equal(cvx_txn_delete(t, id, strlen(id), &err), CVX_OK);
    commit(t);
    assert_string_equal(get_latest(f->s, id), "null");
    /* Index reads go through it as well. */
    char *id2 = put(f->s, "docs", "{\"v\":3}");
    (void)id2;
    cvx_query_t q = {.table = "docs", .limit = -1};
    h0 = stats_of(f->s).doc_cache_hits;
    cvx_txn_t *r = begin(f->s, CVX_TXN_READ);
    assert_string_equal(col(query(r, &q), "v"), "3");
    cvx_txn_abort(r);
    assert_true(stats_of(f->s).doc_cache_hits > h0);
}

/* ---- the index-range cache ---------------------------------------------------- */

typedef struct {
    cvx_store_t *s;
    char *ids[512];
    bool live[512];
    uint64_t snaps[64];
} twin_t;

static uint32_t rnd(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (uint32_t)(*x >> 11);
}

/* A query's visible result, compared across the twins: the v of each
 * document, whether the page is done, and the v of the next page. */
static char *twin_query(twin_t *w, cvx_txn_t *t, const cvx_query_t *q) {
    char *page = query(t, q);
    cvx_buf_t b = {0};
    cvx_buf_printf(&b, "%s|%d", col(page, "v"), is_done(page));
    if (!is_done(page) && q->limit > 0) {
        cvx_query_t next = *q;
        next.cursor = cursor_of(page);
        cvx_buf_printf(&b, "|%s", col(query(t, &next), "v"));
    }
    cvx_buf_printf(&b, "|%llu", (unsigned long long)count(t, q));
    (void)w;
    return keep(cvx_buf_detach(&b, NULL));
}

/* The same random history on two stores, one with the caches and one
 * without: every query (all shapes of range, both directions, limits,
 * pages, old snapshots, a mutation's view of its own writes) must see
 * the same documents. */
static void test_range_cache_matches_sqlite(void **state) {
    fx_t *f = *state;
    char *dir2 = tu_tmpdir("store-nocache");
    cvx_store_config_t nocache;
    cvx_store_config_default(&nocache);
    nocache.no_doc_cache = true;
    twin_t w[2] = {{.s = f->s}, {.s = open_store(dir2, &nocache)}};
    for (int k = 0; k < 2; k++) index_by_n(w[k].s, "t");
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t n = 0, nsnaps = 0;
    for (int step = 0; step < 1500; step++) {
        uint32_t op = rnd(&x) % 100, a = rnd(&x), b = rnd(&x), c = rnd(&x);
        size_t pick = n ? a % n : 0;
        char json[128];
        if (op < 30 && n < 512) {
            snprintf(json, sizeof json, "{\"n\":%u,\"v\":%d}", b % 12, step);
            for (int k = 0; k < 2; k++) {
                w[k].ids[n] = put(w[k].s, "t", json);
                w[k].live[n] = true;
            }
            n++;
        } else if (op < 50 && n && w[0].live[pick]) {
            /* Half move the document in the index, half change only v. */
            if (b % 2) snprintf(json, sizeof json, "{\"n\":%u}", c % 12);
            else snprintf(json, sizeof json, "{\"v\":%d}", step);
            for (int k = 0; k < 2; k++) patch1(w[k].s, w[k].ids[pick], json);
        } else if (op < 55 && n && w[0].live[pick]) {
            for (int k = 0; k < 2; k++) {
                cvx_txn_t *t = begin(w[k].s, CVX_TXN_WRITE);
                cvx_err_t err;
                assert_int_equal(cvx_txn_delete(t, w[k].ids[pick], strlen(w[k].ids[pick]), &err), CVX_OK);
                commit(t);
                w[k].live[pick] = false;
            }
        } else if (op < 58 && nsnaps < 64) {
            for (int k = 0; k < 2; k++) w[k].snaps[nsnaps] = cvx_store_latest_ts(w[k].s);
            nsnaps++;
        } else {
            cvx_range_t r[2];
            char v1[16], v2[16];
            snprintf(v1, sizeof v1, "%u", b % 13);
            snprintf(v2, sizeof v2, "%u", b % 13 + c % 4);
            cvx_query_t q = {.table = "t", .index = "by_n", .range = r, .desc = a % 2, .limit = (int64_t[]){-1, 1, 2, 5}[c % 4]};
            switch (a / 2 % 4) {
            case 0: r[0] = R("n", EQ, v1); q.nrange = 1; break;
            case 1: r[0] = R("n", GTE, v1); r[1] = R("n", LT, v2); q.nrange = 2; break;
            case 2: r[0] = R("n", GT, v1); q.nrange = 1; break;
            default: q.nrange = 0; break;
            }
            /* Where: the latest snapshot, an older one, or a mutation that
             * first writes into the range (its pending view). */
            int where = nsnaps && op < 80 ? 1 : op < 90 ? 0 : 2;
            size_t si = nsnaps ? c % nsnaps : 0;
            char *res[2];
            for (int k = 0; k < 2; k++) {
                cvx_txn_t *t = where == 1 ? begin_at(w[k].s, CVX_TXN_READ, w[k].snaps[si])
                                          : begin(w[k].s, where == 2 ? CVX_TXN_WRITE : CVX_TXN_READ);
                if (where == 2) {
                    snprintf(json, sizeof json, "{\"n\":%u,\"v\":%d}", b % 13, -step);
                    insert(t, "t", json);
                    if (n && w[k].live[pick]) patch(t, w[k].ids[pick], "{\"v\":-1}", NULL, 0);
                }
                res[k] = twin_query(&w[k], t, &q);
                cvx_txn_abort(t);
            }
            if (strcmp(res[0], res[1]) != 0)
                fail_msg("step %d (where %d, shape %u, desc %d, limit %lld): cached %s, SQLite %s", step, where, a / 2 % 4,
                         q.desc, (long long)q.limit, res[0], res[1]);
        }
    }
    cvx_store_stats_t st = stats_of(w[0].s);
    assert_true(st.range_cache_hits > 100);
    assert_int_equal(stats_of(w[1].s).range_cache_hits, 0);
    cvx_store_close(w[1].s);
    tu_rmrf(dir2);
    free(dir2);
}

/* Through the store: a lookup is answered from the cache after the first
 * time; an update of a field outside the index keeps the entry (the new
 * content comes from the document cache), one that moves the document out
 * of the range drops it; a reader at a snapshot older than an entry does
 * not use it. */
static void test_range_cache_entries(void **state) {
    fx_t *f = *state;
    index_by_n(f->s, "t");
    char *a = put(f->s, "t", "{\"n\":1,\"v\":\"a\"}");
    put(f->s, "t", "{\"n\":2,\"v\":\"b\"}");
    uint64_t ts1 = cvx_store_latest_ts(f->s);
    cvx_range_t r = R("n", EQ, "1");
    cvx_query_t q = {.table = "t", .index = "by_n", .range = &r, .nrange = 1, .limit = -1};
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a");
    uint64_t h0 = stats_of(f->s).range_cache_hits;
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a");
    assert_int_equal(stats_of(f->s).range_cache_hits, h0 + 1);

    patch1(f->s, a, "{\"v\":\"a2\"}");
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a2");
    assert_int_equal(stats_of(f->s).range_cache_hits, h0 + 2);
    /* The reader at ts1 sees a as it was then. */
    cvx_txn_t *old = begin_at(f->s, CVX_TXN_READ, ts1);
    assert_string_equal(col(query(old, &q), "v"), "a");
    cvx_txn_abort(old);

    patch1(f->s, a, "{\"n\":2}");
    uint64_t m0 = stats_of(f->s).range_cache_misses;
    assert_string_equal(col(query_latest(f->s, &q), "v"), "");
    assert_int_equal(stats_of(f->s).range_cache_misses, m0 + 1);
    r = R("n", EQ, "2");
    /* In creation order within n = 2: a was created first. */
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a2,b");
    put(f->s, "t", "{\"n\":2,\"v\":\"c\"}");
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a2,b,c");

    /* A partial entry (first page) serves a longer page from where it
     * stops. */
    q.limit = 1;
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a2");
    q.limit = 3;
    h0 = stats_of(f->s).range_cache_hits;
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a2,b,c");
    q.desc = true;
    assert_string_equal(col(query_latest(f->s, &q), "v"), "c,b,a2");
    assert_true(stats_of(f->s).range_cache_hits >= h0 + 1);
}

/* An index created by a deploy: a read at a snapshot before it (with the
 * new catalog) finds no entries there, and must not leave that absence
 * in the cache for the snapshots after it; nor may the entry a later read
 * caches answer that older snapshot. */
static void test_range_cache_new_index(void **state) {
    fx_t *f = *state;
    put(f->s, "t", "{\"n\":1,\"v\":\"a\"}");
    uint64_t before = cvx_store_latest_ts(f->s);
    index_by_n(f->s, "t");
    cvx_range_t r = R("n", EQ, "1");
    cvx_query_t q = {.table = "t", .index = "by_n", .range = &r, .nrange = 1, .limit = -1};
    cvx_txn_t *old = begin_at(f->s, CVX_TXN_READ, before);
    char *page = query(old, &q);
    assert_string_equal(col(page, "v"), "");
    assert_true(is_done(page));
    assert_string_equal(col(query_latest(f->s, &q), "v"), "a");
    page = query(old, &q);
    assert_string_equal(col(page, "v"), "");
    assert_true(is_done(page));
    cvx_txn_abort(old);
}

typedef struct {
    atomic_int seen;
} slow_listener_t;

static void slow_listener(void *ctx, const cvx_commit_info_t *c) {
    (void)c;
    usleep(100 * 1000);
    atomic_fetch_add(&((slow_listener_t *)ctx)->seen, 1);
}

/* A commit is not reported durable (to the answer waiting for it) before
 * the listeners have run: a client told its write is done must not then
 * get a cached query result from before it. */
static void test_durable_after_listeners(void **state) {
    fx_t *f = *state;
    slow_listener_t l = {0};
    int h = cvx_store_listen(f->s, slow_listener, &l);
    put(f->s, "t", "{\"v\":1}");
    assert_int_equal(atomic_load(&l.seen), 1);
    cvx_txn_t *t = begin(f->s, CVX_TXN_WRITE);
    insert(t, "t", "{\"v\":2}");
    uint64_t ts = 0;
    cvx_err_t err;
    assert_int_equal(cvx_txn_commit_written(t, &ts, &err), CVX_OK);
    bool ready = false;
    while (!ready) {
        assert_int_equal(cvx_store_check_durable(f->s, ts, &ready, &err), CVX_OK);
        if (!ready) usleep(1000);
    }
    assert_int_equal(atomic_load(&l.seen), 2);
    cvx_store_unlisten(f->s, h);
}

/* An index entry written at key k (length n) of index ix. */
#define IW(ix, k, n) ((cvx__index_write_t){.index_id = (ix), .key = (const uint8_t *)(k), .key_len = (n)})

/* The cache alone: validity by snapshot, fills refused after a newer
 * apply, prefix and other-shaped ranges dropped by the keys inside them
 * only, partial entries covering up to their last key, and the byte bound. */
static void test_range_cache_unit(void **state) {
    (void)state;
    cvx__rangecache_t *c;
    assert_int_equal(cvx__rangecache_new(64 << 10, 10, &c), CVX_OK);
    uint8_t id1[16] = {1}, id2[16] = {2};
    cvx_buf_t rows = {0}, got = {0};
    cvx__rangecache_row_append(&rows, (const uint8_t *)"ab1", 3, id1);
    size_t last = rows.len;
    cvx__rangecache_row_append(&rows, (const uint8_t *)"ab2", 3, id2);
    /* A prefix range ["ab", "ac") and a general one ["b", inf). */
    cvx__rkey_t pk = {7, (const uint8_t *)"ab", (const uint8_t *)"ac", 2, 2, false, false};
    cvx__rkey_t gk = {7, (const uint8_t *)"b", NULL, 1, 0, true, false};
    bool complete = false;
    assert_false(cvx__rangecache_get(c, &pk, 10, &got, &complete));
    cvx__rangecache_fill(c, &pk, 10, (const uint8_t *)rows.data, rows.len, last, true);
    cvx__rangecache_fill(c, &gk, 10, NULL, 0, 0, true);
    assert_true(cvx__rangecache_get(c, &pk, 12, &got, &complete));
    assert_true(complete);
    assert_int_equal(got.len, rows.len);
    assert_memory_equal(got.data, rows.data, rows.len);
    const uint8_t *key, *id;
    size_t klen;
    size_t off = cvx__rangecache_row_next((const uint8_t *)got.data, 0, &key, &klen, &id);
    assert_int_equal(klen, 3);
    assert_memory_equal(key, "ab1", 3);
    assert_memory_equal(id, id1, 16);
    assert_int_equal(cvx__rangecache_row_next((const uint8_t *)got.data, off, &key, &klen, &id), got.len);
    /* Not for a snapshot before it was read; not in the other direction. */
    cvx_buf_reset(&got);
    assert_false(cvx__rangecache_get(c, &pk, 9, &got, &complete));
    cvx__rkey_t pdesc = pk;
    pdesc.desc = true;
    assert_false(cvx__rangecache_get(c, &pdesc, 12, &got, &complete));

    /* Keys outside both ranges, or of another index, drop nothing. */
    cvx__index_write_t outside[] = {IW(7, "aa", 2), IW(7, "ac", 2), IW(8, "ab5", 3)};
    cvx__rangecache_apply(c, 20, outside, 3);
    assert_true(cvx__rangecache_get(c, &pk, 20, &got, &complete));
    assert_true(cvx__rangecache_get(c, &gk, 20, &got, &complete));
    /* A key inside the prefix drops that entry only; one at "b..." the other. */
    cvx__index_write_t in_p = IW(7, "ab\xff", 3), in_g = IW(7, "zz", 2);
    cvx__rangecache_apply(c, 21, &in_p, 1);
    assert_false(cvx__rangecache_get(c, &pk, 21, &got, &complete));
    assert_true(cvx__rangecache_get(c, &gk, 21, &got, &complete));
    cvx__rangecache_apply(c, 22, &in_g, 1);
    assert_false(cvx__rangecache_get(c, &gk, 22, &got, &complete));

    /* A reader at 21 filling after commit 22 was applied: refused. */
    cvx__rangecache_fill(c, &pk, 21, (const uint8_t *)rows.data, rows.len, last, true);
    assert_false(cvx__rangecache_get(c, &pk, 25, &got, &complete));

    /* A partial general entry ["a", inf) whose first page stopped at "ab1"
     * covers up to that key only. */
    cvx__rkey_t ak = {7, (const uint8_t *)"a", NULL, 1, 0, true, false};
    cvx__rangecache_fill(c, &ak, 22, (const uint8_t *)rows.data, last, 0, false);
    cvx_buf_reset(&got);
    assert_true(cvx__rangecache_get(c, &ak, 22, &got, &complete));
    assert_false(complete);
    assert_int_equal(got.len, last);
    cvx__index_write_t past = IW(7, "ab2", 3), before = IW(7, "aa", 2);
    cvx__rangecache_apply(c, 23, &past, 1);
    assert_true(cvx__rangecache_get(c, &ak, 23, &got, &complete));
    cvx__rangecache_apply(c, 24, &before, 1);
    assert_false(cvx__rangecache_get(c, &ak, 24, &got, &complete));

    /* Many entries: the oldest go, the bytes stay within the budget, and
     * more prefix lengths than an index tracks still invalidate. */
    char lo[64], hi[64];
    for (int i = 0; i < 3000; i++) {
        int len = snprintf(lo, sizeof lo, "k%0*d", 1 + i % 12, i);
        memcpy(hi, lo, (size_t)len);
        hi[len - 1]++;
        cvx__rkey_t k = {9, (const uint8_t *)lo, (const uint8_t *)hi, (size_t)len, (size_t)len, false, false};
        cvx__rangecache_fill(c, &k, 30, (const uint8_t *)rows.data, rows.len, last, true);
    }
    uint64_t hits, misses;
    size_t entries, bytes;
    cvx__rangecache_stats(c, &hits, &misses, &entries, &bytes);
    assert_true(bytes <= 64 << 10);
    assert_true(entries > 50 && entries < 3000);
    int len = snprintf(lo, sizeof lo, "k%0*d", 1 + 2999 % 12, 2999);
    memcpy(hi, lo, (size_t)len);
    hi[len - 1]++;
    cvx__rkey_t k = {9, (const uint8_t *)lo, (const uint8_t *)hi, (size_t)len, (size_t)len, false, false};
    assert_true(cvx__rangecache_get(c, &k, 30, &got, &complete));
    char inside[80];
    int ilen = snprintf(inside, sizeof inside, "%sx", lo);
    cvx__index_write_t wk = IW(9, inside, (size_t)ilen);
    cvx__rangecache_apply(c, 31, &wk, 1);
    assert_false(cvx__rangecache_get(c, &k, 31, &got, &complete));
    cvx_buf_free(&rows);
    cvx_buf_free(&got);
    cvx__rangecache_free(c);
}

/* The cache alone: a reader's fill is refused once a newer commit was
 * applied (it could put back an old revision), and it stays in its bytes. */
static void test_doc_cache_unit(void **state) {
    (void)state;
    cvx__doccache_t *c;
    assert_int_equal(cvx__doccache_new(64 << 10, 10, &c), CVX_OK);
    uint8_t id[16] = {1, 2, 3};
    cvx_buf_t v = {0};
    bool deleted;
    uint32_t table;
    assert_false(cvx__doccache_get(c, id, 10, &deleted, &table, &v));
    cvx__doccache_fill(c, id, 10, false, 7, "{\"v\":1}", 7);
    assert_true(cvx__doccache_get(c, id, 12, &deleted, &table, &v));
    assert_string_equal(v.data, "{\"v\":1}");
    assert_int_equal(table, 7);
    assert_false(deleted);
    /* Not for a snapshot before the one it was read at. */
    cvx_buf_reset(&v);
    assert_false(cvx__doccache_get(c, id, 9, &deleted, &table, &v));

    cvx__doc_write_t w = {.id = id, .table = 7, .value = "{\"v\":2}", .value_len = 7};
    cvx__batch_t b = {.ts = 20, .docs = &w, .ndocs = 1};
    cvx__doccache_apply(c, &b);
    cvx_buf_reset(&v);
    assert_false(cvx__doccache_get(c, id, 15, &deleted, &table, &v));
    assert_true(cvx__doccache_get(c, id, 20, &deleted, &table, &v));
    assert_string_equal(v.data, "{\"v\":2}");
    /* A reader at 15 read v1 from SQLite, after commit 20 was applied:
     * refused, v2 stays. */
    cvx__doccache_fill(c, id, 15, false, 7, "{\"v\":1}", 7);
    cvx_buf_reset(&v);
    assert_true(cvx__doccache_get(c, id, 25, &deleted, &table, &v));
    assert_string_equal(v.data, "{\"v\":2}");

    /* Many documents: the oldest go, the bytes stay within the budget. */
    char doc[200];
    memset(doc, 'x', sizeof doc);
    for (uint32_t i = 0; i < 5000; i++) {
        uint8_t k[16] = {0};
        memcpy(k, &i, sizeof i);
        k[15] = 9;
        cvx__doccache_fill(c, k, 30, false, 7, doc, sizeof doc);
    }
    uint64_t hits, misses;
    size_t entries, bytes;
    cvx__doccache_stats(c, &hits, &misses, &entries, &bytes);
    assert_true(bytes <= 64 << 10);
    assert_true(entries > 100 && entries < 5000);
    uint8_t last[16] = {0};
    uint32_t i = 4999;
    memcpy(last, &i, sizeof i);
    last[15] = 9;
    cvx_buf_reset(&v);
    assert_true(cvx__doccache_get(c, last, 30, &deleted, &table, &v));
    uint8_t first[16] = {0};
    first[15] = 9;
    assert_false(cvx__doccache_get(c, first, 30, &deleted, &table, &v));
    cvx_buf_free(&v);
    cvx__doccache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_cache_snapshots, setup, teardown),
        cmocka_unit_test(test_doc_cache_unit),
        cmocka_unit_test_setup_teardown(test_system_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_replace_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mvcc_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_occ_point_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_occ_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_past_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_backfill_and_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_created_during_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_drop_and_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_cache_matches_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_cache_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_cache_unit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_cache_new_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_after_listeners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_refresh_keeps_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listeners_and_readsets, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
