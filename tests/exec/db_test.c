/*
 * exec: the database through real guest code. The seed example
 * (examples/users: create_user, get_user, list, by_email, emails, count,
 * page, update_email, delete_user), persistence across a restart, and bad
 * input sent by guests (tests/fixtures/guest's raw functions) that must end
 * in a clear error without changing a single stored byte.
 */
#include "support/testutil.h"
#include "support/tu_signals.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h" /* the fsync fault hooks */

static cvx_arena_t *arena;
#define ANYFAIL (-1) /* any failure */

static int setup(void **state) {
    arena = cvx_arena_new(4096);
    return 0;
}

static int teardown(void **state) {
    cvx_arena_free(arena);
    arena = NULL;
    return 0;
}

static cvx_value_t *parse(const char *json) {
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (cvx_json_parse(arena, json, strlen(json), &v, &err)) fail_msg("bad JSON %.200s: %s", json, err.msg);
    return v;
}

static const char *str_field(const cvx_value_t *obj, const char *name) {
    const cvx_value_t *v = cvx_obj_get_cstr(obj, name);
    if (!v || v->type != CVX_T_STRING) fail_msg("no string field %s", name);
    return v->u.str.ptr;
}

/* Calls run this app instead of the runtime's deployed one when set. */
static cvx_app_t *g_app;

/* A call on rt that must succeed; returns its value parsed. */
static cvx_value_t *ok_rt(cvx_runtime_t *rt, const char *path, const char *args) {
    cvx_response_t r;
    memset(&r, 0, sizeof r);
    cvx_request_t req = {.path = path, .args_json = args, .args_len = strlen(args), .app = g_app};
    int rc = cvx_exec_call(rt, &req, &r);
    if (rc) fail_msg("%s(%.200s): %s: %s", path, args, cvx_code_name(rc), r.r.message.data);
    cvx_value_t *v = parse(r.r.value.data);
    cvx_response_free(&r);
    return v;
}

/* A call on rt that must fail with `code` and a message containing `msg`. */
static void fails_rt(cvx_runtime_t *rt, const char *path, const char *args, int code, const char *msg) {
    cvx_response_t r;
    memset(&r, 0, sizeof r);
    cvx_request_t req = {.path = path, .args_json = args, .args_len = strlen(args), .app = g_app};
    int rc = cvx_exec_call(rt, &req, &r);
    if (code == ANYFAIL ? rc == CVX_OK : rc != code)
        fail_msg("%s(%.200s): got %s (%s), expected %s", path, args, cvx_code_name(rc),
                 rc ? r.r.message.data : r.r.value.data, cvx_code_name(code));
    tu_assert_contains(r.r.message.data, msg);
    cvx_response_free(&r);
}

/* Every table and every document, read in one snapshot through the store's
 * C API: compared before and after bad input. */
static char *snapshot(cvx_store_t *s) {
    cvx_buf_t b = {0}, tables = {0};
    cvx_err_t err;
    if (cvx_store_list_tables(s, &tables, &err)) fail_msg("%s", err.msg);
    cvx_buf_append(&b, tables.data, tables.len);
    cvx_txn_t *t;
    if (cvx_txn_begin(s, CVX_TXN_READ, 0, &t, &err)) fail_msg("%s", err.msg);
    cvx_value_t *tv = parse(tables.data);
    for (size_t i = 0; i < tv->u.arr.len; i++) {
        cvx_query_t q = {.table = str_field(tv->u.arr.items[i], "name"), .index = CVX_INDEX_BY_ID, .limit = -1};
        cvx_buf_append_char(&b, '\n');
        if (cvx_txn_query(t, &q, &b, &err)) fail_msg("%s", err.msg);
    }
    cvx_txn_abort(t);
    cvx_buf_free(&tables);
    return cvx_buf_detach(&b, NULL);
}

/* Another module, run on env's runtime with cvx_request_t.app (not
 * deployed: its schema is not applied), so that the seed's and the
 * fixture's functions see the same database. */
static cvx_app_t *load_app(tu_env_t *env, const char *crate) {
    cvx_buf_t bytes = {0};
    tu_read(tu_guest_wasm(crate), &bytes);
    cvx_err_t err;
    cvx_app_t *app;
    if (cvx_app_load(env->engine, (const uint8_t *)bytes.data, bytes.len, &app, &err)) fail_msg("%s", err.msg);
    cvx_buf_free(&bytes);
    return app;
}

static cvx_value_t *ok_app(cvx_runtime_t *rt, cvx_app_t *app, const char *path, const char *args) {
    g_app = app;
    cvx_value_t *v = ok_rt(rt, path, args);
    g_app = NULL;
    return v;
}

static void fails_app(cvx_runtime_t *rt, cvx_app_t *app, const char *path, const char *args, int code, const char *msg) {
    g_app = app;
    fails_rt(rt, path, args, code, msg);
    g_app = NULL;
}

/* ---- the seed example -------------------------------------------------------- */

static void test_users(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("examples/users"), NULL);
    cvx_value_t *id = ok_rt(env.rt, "users:create_user", "{\"name\":\"Ada\",\"email\":\"ada@example.com\"}");
    assert_int_equal(id->type, CVX_T_STRING);
    char args[256];
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id->u.str.ptr);
    cvx_value_t *doc = ok_rt(env.rt, "users:get_user", args);
    assert_string_equal(str_field(doc, "name"), "Ada");
    assert_string_equal(str_field(doc, "email"), "ada@example.com");
    assert_string_equal(str_field(doc, "_id"), id->u.str.ptr);
    assert_int_equal(cvx_obj_get_cstr(doc, "_creationTime")->type, CVX_T_FLOAT64);
    assert_int_equal(doc->u.obj.len, 4);

    ok_rt(env.rt, "users:create_user", "{\"name\":\"Grace\",\"email\":\"grace@example.com\"}");
    ok_rt(env.rt, "users:create_user", "{\"name\":\"Edsger\",\"email\":\"edsger@example.com\"}");
    /* list: newest first, with a limit */
    cvx_value_t *list = ok_rt(env.rt, "users:list", "{}");
    assert_int_equal(list->u.arr.len, 3);
    assert_string_equal(str_field(list->u.arr.items[0], "name"), "Edsger");
    assert_string_equal(str_field(list->u.arr.items[2], "name"), "Ada");
    list = ok_rt(env.rt, "users:list", "{\"limit\":2}");
    assert_int_equal(list->u.arr.len, 2);
    assert_string_equal(str_field(list->u.arr.items[1], "name"), "Grace");
    /* by_email through the index; a miss is null */
    cvx_value_t *g = ok_rt(env.rt, "users:by_email", "{\"email\":\"grace@example.com\"}");
    assert_string_equal(str_field(g, "name"), "Grace");
    assert_int_equal(ok_rt(env.rt, "users:by_email", "{\"email\":\"nobody@example.com\"}")->type, CVX_T_NULL);
    assert_true(cvx_value_equal(ok_rt(env.rt, "users:count", "{}"), parse("3")));
    assert_true(cvx_value_equal(ok_rt(env.rt, "users:emails", "{}"),
                                parse("[\"ada@example.com\",\"grace@example.com\",\"edsger@example.com\"]")));
    /* page: oldest first, two at a time */
    cvx_value_t *p1 = ok_rt(env.rt, "users:page", "{\"paginationOpts\":{\"numItems\":2,\"cursor\":null}}");
    assert_int_equal(cvx_obj_get_cstr(p1, "page")->u.arr.len, 2);
    assert_false(cvx_obj_get_cstr(p1, "isDone")->u.b);
    snprintf(args, sizeof args, "{\"paginationOpts\":{\"numItems\":2,\"cursor\":\"%s\"}}",
             str_field(p1, "continueCursor"));
    cvx_value_t *p2 = ok_rt(env.rt, "users:page", args);
    cvx_value_t *page2 = cvx_obj_get_cstr(p2, "page");
    assert_int_equal(page2->u.arr.len, 1);
    assert_string_equal(str_field(page2->u.arr.items[0], "name"), "Edsger");
    assert_true(cvx_obj_get_cstr(p2, "isDone")->u.b);

    /* update_email moves the user in by_email; delete_user removes it */
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"email\":\"ada@lovelace.org\"}", id->u.str.ptr);
    cvx_value_t *u = ok_rt(env.rt, "users:update_email", args);
    assert_string_equal(str_field(u, "email"), "ada@lovelace.org");
    assert_int_equal(ok_rt(env.rt, "users:by_email", "{\"email\":\"ada@example.com\"}")->type, CVX_T_NULL);
    assert_string_equal(str_field(ok_rt(env.rt, "users:by_email", "{\"email\":\"ada@lovelace.org\"}"), "_id"),
                        id->u.str.ptr);
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id->u.str.ptr);
    ok_rt(env.rt, "users:delete_user", args);
    assert_int_equal(ok_rt(env.rt, "users:get_user", args)->type, CVX_T_NULL);
    assert_true(cvx_value_equal(ok_rt(env.rt, "users:count", "{}"), parse("2")));
    /* A missing user is an application error with data. */
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"email\":\"x\"}", id->u.str.ptr);
    cvx_response_t r;
    assert_int_equal(tu_call(&env, "users:update_email", args, &r), CVX_E_APPLICATION);
    assert_string_equal(str_field(parse(r.r.data.data), "code"), "NO_SUCH_USER");
    cvx_response_free(&r);
    /* signup: an action running a query and a mutation */
    ok_rt(env.rt, "users:signup", "{\"name\":\"Barbara\",\"email\":\"barbara@example.com\"}");
    assert_int_equal(tu_call(&env, "users:signup", "{\"name\":\"B\",\"email\":\"barbara@example.com\"}", &r),
                     CVX_E_APPLICATION);
    assert_string_equal(str_field(parse(r.r.data.data), "code"), "EMAIL_TAKEN");
    cvx_response_free(&r);
    assert_true(cvx_value_equal(ok_rt(env.rt, "users:count", "{}"), parse("3")));
    tu_env_close(&env, true);
}

static void test_persistence(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("examples/users"), NULL);
    char ids[20][64];
    for (int i = 0; i < 20; i++) {
        char args[128];
        snprintf(args, sizeof args, "{\"name\":\"u%d\",\"email\":\"u%d@example.com\"}", i, i);
        snprintf(ids[i], sizeof ids[i], "%s", ok_rt(env.rt, "users:create_user", args)->u.str.ptr);
    }
    char *before = snapshot(env.store);
    for (int round = 0; round < 2; round++) {
        tu_env_reopen(&env);
        char *after = snapshot(env.store);
        assert_string_equal(after, before);
        free(after);
        for (int i = 0; i < 20; i += 7) {
            char args[128];
            snprintf(args, sizeof args, "{\"id\":\"%.100s\"}", ids[i]);
            cvx_value_t *doc = ok_rt(env.rt, "users:get_user", args);
            char want[32];
            snprintf(want, sizeof want, "u%d", i);
            assert_string_equal(str_field(doc, "name"), want);
        }
        assert_string_equal(str_field(ok_rt(env.rt, "users:by_email", "{\"email\":\"u13@example.com\"}"), "name"),
                            "u13");
        assert_true(cvx_value_equal(ok_rt(env.rt, "users:count", "{}"), parse("20")));
    }
    /* Writable after the restart, and the new user sorts newest. */
    ok_rt(env.rt, "users:create_user", "{\"name\":\"late\",\"email\":\"late@example.com\"}");
    assert_string_equal(str_field(ok_rt(env.rt, "users:list", "{\"limit\":1}")->u.arr.items[0], "name"), "late");
    free(before);
    tu_env_close(&env, true);
}

/* ---- bad input ------------------------------------------------------------------ */

static void test_bad_input_changes_nothing(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("tests/fixtures/guest"), NULL);
    cvx_app_t *users = load_app(&env, "examples/users");
    cvx_runtime_t *rt = env.rt;

    cvx_value_t *id = ok_rt(rt, "fixture:insert_raw", "{\"table\":\"things\",\"value\":{\"a\":1,\"o\":{\"x\":[1,2]}}}");
    cvx_value_t *gone = ok_rt(rt, "fixture:insert_raw", "{\"table\":\"things\",\"value\":{\"a\":2}}");
    char args[512];
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", gone->u.str.ptr);
    ok_rt(rt, "fixture:delete_raw", args);
    ok_rt(rt, "fixture:incr", "{\"name\":\"c\"}");
    cvx_value_t *uid = ok_app(rt, users, "users:create_user", "{\"name\":\"Ada\",\"email\":\"ada@example.com\"}");
    char *before = snapshot(env.store);
    uint64_t ts_before = cvx_store_latest_ts(env.store);

    /* A field name starting with '$' is not a valid value at all. */
    fails_rt(rt, "fixture:insert_raw", "{\"table\":\"things\",\"value\":{\"$x\":1}}", CVX_E_ARGS, "$x");
    /* Field names starting with '_' are reserved. */
    fails_rt(rt, "fixture:insert_raw", "{\"table\":\"things\",\"value\":{\"_x\":1}}", CVX_E_UNCAUGHT, "_x");
    fails_rt(rt, "fixture:insert_raw", "{\"table\":\"things\",\"value\":{\"_id\":\"x\"}}", CVX_E_UNCAUGHT, "_id");
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"value\":{\"_private\":1}}", id->u.str.ptr);
    fails_rt(rt, "fixture:patch_raw", args, CVX_E_UNCAUGHT, "_private");
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"value\":{\"_id\":\"%s\"}}", id->u.str.ptr, uid->u.str.ptr);
    fails_rt(rt, "fixture:patch_raw", args, CVX_E_UNCAUGHT, "system field _id cannot be changed");
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"value\":{\"_creationTime\":1}}", id->u.str.ptr);
    fails_rt(rt, "fixture:replace_raw", args, CVX_E_UNCAUGHT, "_creationTime");
    /* System tables and bad table names. */
    fails_rt(rt, "fixture:insert_raw", "{\"table\":\"_tables\",\"value\":{}}", CVX_E_UNCAUGHT, "system table");
    fails_rt(rt, "fixture:insert_raw", "{\"table\":\"no such\",\"value\":{}}", CVX_E_UNCAUGHT, "invalid table name");
    /* Not an object. */
    fails_rt(rt, "fixture:insert_raw", "{\"table\":\"things\",\"value\":[1]}", CVX_E_UNCAUGHT, "object");
    /* Documents over 1 MiB: inserted, or grown by a patch. */
    cvx_buf_t big = {0};
    cvx_buf_append_str(&big, "{\"table\":\"things\",\"value\":{\"s\":\"");
    for (int i = 0; i < (2 << 20); i++) cvx_buf_append_char(&big, 'x');
    cvx_buf_append_str(&big, "\"}}");
    fails_rt(rt, "fixture:insert_raw", big.data, CVX_E_UNCAUGHT, "document is too large");
    cvx_buf_reset(&big);
    cvx_buf_printf(&big, "{\"id\":\"%s\",\"value\":{\"s\":\"", id->u.str.ptr);
    for (int i = 0; i < (1 << 20) + 10; i++) cvx_buf_append_char(&big, 'y');
    cvx_buf_append_str(&big, "\"}}");
    fails_rt(rt, "fixture:patch_raw", big.data, CVX_E_UNCAUGHT, "document is too large");
    cvx_buf_reset(&big);
    /* Too deep for a document (16 levels), fine as an argument. */
    cvx_buf_append_str(&big, "{\"table\":\"things\",\"value\":{\"a\":");
    for (int i = 0; i < 20; i++) cvx_buf_append_char(&big, '[');
    cvx_buf_append_char(&big, '1');
    for (int i = 0; i < 20; i++) cvx_buf_append_char(&big, ']');
    cvx_buf_append_str(&big, "}}");
    fails_rt(rt, "fixture:insert_raw", big.data, CVX_E_UNCAUGHT, "nest");
    cvx_buf_free(&big);

    /* Malformed ids. */
    fails_rt(rt, "fixture:get_raw", "{\"id\":\"not-an-id\"}", CVX_E_UNCAUGHT, "not-an-id");
    fails_rt(rt, "fixture:patch_raw", "{\"id\":\"not-an-id\",\"value\":{\"a\":1}}", CVX_E_UNCAUGHT, "not-an-id");
    fails_rt(rt, "fixture:delete_raw", "{\"id\":\"\"}", CVX_E_UNCAUGHT, "invalid id");
    char corrupt[64];
    snprintf(corrupt, sizeof corrupt, "%s", id->u.str.ptr);
    corrupt[3] = corrupt[3] == 'a' ? 'b' : 'a'; /* checksum no longer matches */
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"value\":{\"a\":1}}", corrupt);
    fails_rt(rt, "fixture:patch_raw", args, CVX_E_UNCAUGHT, corrupt);
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", corrupt);
    fails_app(rt, users, "users:get_user", args, CVX_E_UNCAUGHT, corrupt);

    /* An id of a table that does not exist: reads as null, writes are
     * NOT_FOUND. */
    cvx_id_t ghost;
    char ghost_text[CVX_ID_MAX_LEN + 1];
    cvx_id_generate(60000, NULL, cvx_now_ns() / 1000000, &ghost);
    cvx_id_format(&ghost, ghost_text);
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", ghost_text);
    assert_int_equal(ok_app(rt, users, "users:get_user", args)->type, CVX_T_NULL);
    assert_int_equal(ok_rt(rt, "fixture:get_raw", args)->type, CVX_T_NULL);
    fails_rt(rt, "fixture:delete_raw", args, CVX_E_UNCAUGHT, "does not exist");
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"value\":{\"a\":1}}", ghost_text);
    fails_rt(rt, "fixture:patch_raw", args, CVX_E_UNCAUGHT, "does not exist");
    /* An id of another table: the untyped seed functions read it as it
     * is (Convex's db.get takes any id), and a typed read of it fails. */
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id->u.str.ptr);
    cvx_value_t *other = ok_app(rt, users, "users:get_user", args);
    assert_string_equal(str_field(other, "_id"), id->u.str.ptr);
    assert_non_null(cvx_obj_get_cstr(other, "o"));
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"email\":\"x@example.com\"}", id->u.str.ptr);
    fails_app(rt, users, "users:update_email", args, CVX_E_UNCAUGHT, "missing field `name`");
    /* Patching a deleted document. */
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"value\":{\"a\":3}}", gone->u.str.ptr);
    fails_rt(rt, "fixture:patch_raw", args, CVX_E_UNCAUGHT, "does not exist");
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"value\":{\"a\":3}}", gone->u.str.ptr);
    fails_rt(rt, "fixture:replace_raw", args, CVX_E_UNCAUGHT, "does not exist");
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", gone->u.str.ptr);
    fails_rt(rt, "fixture:delete_raw", args, CVX_E_UNCAUGHT, "does not exist");
    assert_int_equal(ok_rt(rt, "fixture:get_raw", args)->type, CVX_T_NULL);

    /* A query that writes: the host refuses with FORBIDDEN (which the
     * guest sees, and which fails the call when not handled). */
    /* The guest sees FORBIDDEN, and the call ends with it whatever the
     * guest does with the error. */
    fails_rt(rt, "fixture:sneaky_write_code", "{}", CVX_E_FORBIDDEN, "queries cannot write to the database");
    fails_rt(rt, "fixture:sneaky_write", "{}", CVX_E_FORBIDDEN, "queries cannot write to the database; use a mutation");
    /* Mutations that fail after writing. */
    fails_rt(rt, "fixture:write_then_fail", "{}", CVX_E_UNCAUGHT, "failing after a write");
    fails_rt(rt, "fixture:write_then_panic", "{}", CVX_E_PANIC, "panicking after a write");
    assert_true(cvx_value_equal(ok_rt(rt, "fixture:counter", "{\"name\":\"ghost\"}"),
                                parse("{\"$integer\":\"AAAAAAAAAAA=\"}")));
    /* Queries of nonsense are errors too, and change nothing. */
    fails_rt(rt, "fixture:scan", "{\"table\":\"no such\"}", CVX_E_UNCAUGHT, "invalid table name");

    char *after = snapshot(env.store);
    assert_string_equal(after, before);
    assert_int_equal(cvx_store_latest_ts(env.store), ts_before);
    /* And the store still takes writes. */
    ok_rt(rt, "fixture:incr", "{\"name\":\"c\"}");
    assert_true(cvx_value_equal(ok_rt(rt, "fixture:counter", "{\"name\":\"c\"}"), parse("{\"$integer\":\"AgAAAAAAAAA=\"}")));
    free(before);
    free(after);
    cvx_app_release(users);
    tu_env_close(&env, true);
}

/* Per-transaction limits reached by guest code end the call with a clear
 * error and leave nothing behind. */
static void test_guest_limits(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("tests/fixtures/guest"), NULL);
    cvx_runtime_free(env.rt); /* the runtime listens to the store: first */
    cvx_store_close(env.store);
    /* Reopen with small limits. */
    cvx_store_config_t scfg;
    cvx_store_config_default(&scfg);
    scfg.max_docs_written = 100;
    scfg.max_docs_read = 150;
    cvx_err_t err;
    if (cvx_store_open(env.dir, &scfg, &env.store, &err)) fail_msg("%s", err.msg);
    cvx_runtime_config_t cfg = {.engine = env.engine, .store = env.store};
    cvx_exec_limits_default(&cfg.limits);
    if (cvx_runtime_new(&cfg, &env.rt, &err) || cvx_runtime_deploy(env.rt, env.app, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    ok_rt(env.rt, "fixture:bulk_insert", "{\"n\":100}");
    char *before = snapshot(env.store);
    fails_rt(env.rt, "fixture:bulk_insert", "{\"n\":101}", CVX_E_LIMIT, "documents written");
    char *after = snapshot(env.store);
    assert_string_equal(after, before);
    free(after);
    ok_rt(env.rt, "fixture:bulk_insert", "{\"n\":50}");
    assert_true(cvx_value_equal(ok_rt(env.rt, "fixture:bulk_count", "{}"), parse("150")));
    ok_rt(env.rt, "fixture:bulk_insert", "{\"n\":1}");
    fails_rt(env.rt, "fixture:bulk_count", "{}", CVX_E_LIMIT, "documents read");
    free(before);
    tu_env_close(&env, true);
}

/* ---- one completion path ---------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, status;
    pthread_t thread;
    char message[512];
} done_t;

static void on_done(void *ctx, cvx_response_t *resp) {
    done_t *d = ctx;
    pthread_mutex_lock(&d->mu);
    d->calls++;
    d->status = resp->r.status;
    d->thread = pthread_self();
    snprintf(d->message, sizeof d->message, "%s", resp->r.message.data ? resp->r.message.data : "");
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void done_init(done_t *d) {
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
}

static int done_calls(done_t *d) {
    pthread_mutex_lock(&d->mu);
    int n = d->calls;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static void done_wait(done_t *d) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&d->mu);
    while (!d->calls)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until)) fail_msg("no completion within 20 s");
    pthread_mutex_unlock(&d->mu);
}

static void call_then(tu_env_t *env, const char *path, const char *args, done_t *d) {
    cvx_request_t req = {.path = path, .args_json = args, .args_len = strlen(args)};
    cvx_exec_call_then(env->rt, &req, on_done, d);
}

/* cvx_exec_call_then answers once: at once when nothing waits, after the
 * fsync for a mutation (on the store's thread, the caller's thread long
 * free), and with the I/O error when the fsync fails. */
static void test_call_then_completes_once_when_durable(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("examples/users"), NULL);
    done_t q, m, bad;
    done_init(&q);
    done_init(&m);
    done_init(&bad);

    cvx__store_hold_sync(true);
    call_then(&env, "users:create_user", "{\"name\":\"Ada\",\"email\":\"ada@x\"}", &m);
    /* Nothing can make it durable while the fsync is held. */
    usleep(200 * 1000);
    assert_int_equal(done_calls(&m), 0);
    /* A query waits for nothing: answered on this thread before return. */
    call_then(&env, "users:count", "{}", &q);
    assert_int_equal(done_calls(&q), 1);
    assert_int_equal(q.status, CVX_OK);
    assert_true(pthread_equal(q.thread, pthread_self()));
    cvx__store_hold_sync(false);
    done_wait(&m);
    assert_int_equal(m.status, CVX_OK);
    assert_false(pthread_equal(m.thread, pthread_self()));
    cvx_exec_drain(env.rt);
    assert_int_equal(done_calls(&m), 1);
    assert_true(cvx_value_equal(ok_rt(env.rt, "users:count", "{}"), parse("1")));

    /* A failed fsync: the answer becomes the I/O error. */
    cvx__store_fail_sync(1);
    call_then(&env, "users:create_user", "{\"name\":\"Bo\",\"email\":\"bo@x\"}", &bad);
    done_wait(&bad);
    cvx_exec_drain(env.rt);
    assert_int_equal(done_calls(&bad), 1);
    assert_int_equal(bad.status, CVX_E_IO);
    tu_assert_contains(bad.message, "could not be made durable");
    tu_assert_contains(bad.message, "[Request ID:");
    cvx__store_fail_sync(0);
    tu_env_close(&env, true);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        {"test_users", tu_wasm_run, setup, teardown, (void *)(uintptr_t)test_users},
        {"test_persistence", tu_wasm_run, setup, teardown, (void *)(uintptr_t)test_persistence},
        {"test_call_then_completes_once_when_durable", tu_wasm_run, setup, teardown,
         (void *)(uintptr_t)test_call_then_completes_once_when_durable},
        {"test_bad_input_changes_nothing", tu_wasm_run, setup, teardown, (void *)(uintptr_t)test_bad_input_changes_nothing},
        {"test_guest_limits", tu_wasm_run, setup, teardown, (void *)(uintptr_t)test_guest_limits},
    };
    return cmocka_run_group_tests_name("exec.db", tests, NULL, NULL);
}
