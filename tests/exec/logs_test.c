/*
 * exec: what a call's log lines may cost, through the runtime (real
 * Wasmtime, tests/fixtures/guest built with the Rust toolchain, real
 * store). The lines come back with the result, so they are bounded like
 * it: 256 lines per call (the last one a WARN note when more were logged),
 * 32768 bytes per line, and the logs plus the value within the 16 MiB
 * result limit. The calls an action makes (run_query etc.) log into the
 * action's log under the same budget; a query answered from the cache is
 * no exception.
 */
#include "support/testutil.h"
#include "support/tu_signals.h"

static tu_env_t env;
static cvx_arena_t *arena;

#define LINE_NOTE "[WARN] Log overflow (maximum 256). Remaining log lines omitted."
#define BYTES_NOTE "[WARN] Log overflow (maximum 16777216 bytes). Remaining log lines omitted."

static int group_setup(void **state) {
    tu_env_open(&env, tu_guest_wasm("tests/fixtures/guest"), NULL);
    arena = cvx_arena_new(1 << 20);
    return 0;
}

static int group_teardown(void **state) {
    tu_env_close(&env, true);
    cvx_arena_free(arena);
    return 0;
}

/* Runs a call that must succeed; resp must be freed. */
static void call_ok(const char *path, const char *args, cvx_response_t *resp) {
    int rc = tu_call(&env, path, args, resp);
    if (rc != CVX_OK) fail_msg("%s(%s): %s: %s", path, args, cvx_code_name(rc), resp->r.message.data);
}

/* The response's logs as an array of strings (valid JSON, nlogs of them). */
static const cvx_value_t *logs_of(const cvx_response_t *resp) {
    cvx_arena_reset(arena);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    const char *text = resp->r.logs.len ? resp->r.logs.data : "[]";
    if (cvx_json_parse(arena, text, strlen(text), &v, &err)) fail_msg("logs are not valid JSON: %s", err.msg);
    assert_int_equal(v->type, CVX_T_ARRAY);
    assert_int_equal(v->u.arr.len, resp->r.nlogs);
    return v;
}

static const char *line(const cvx_value_t *logs, size_t i) { return logs->u.arr.items[i]->u.str.ptr; }

/* 300 lines: the first 255 and the note; the query still answers. */
static void test_line_limit(void **state) {
    cvx_response_t r;
    call_ok("fixture:loud", "{\"lines\": 300, \"size\": 3}", &r);
    assert_string_equal(r.r.value.data, "300");
    const cvx_value_t *logs = logs_of(&r);
    assert_int_equal(logs->u.arr.len, 256);
    assert_string_equal(line(logs, 254), "[LOG] yyy");
    assert_string_equal(line(logs, 255), LINE_NOTE);
    cvx_response_free(&r);
}

/* 300 lines of 100000 bytes: 256 lines, each cut to 32768 bytes with the
 * suffix, and all of it within the result limit. */
static void test_long_lines(void **state) {
    cvx_response_t r;
    call_ok("fixture:loud", "{\"lines\": 300, \"size\": 100000}", &r);
    assert_true(r.r.logs.len + r.r.value.len <= CVX_ABI_MAX_RESULT);
    const cvx_value_t *logs = logs_of(&r);
    assert_int_equal(logs->u.arr.len, 256);
    for (size_t i = 0; i < 255; i++) {
        const cvx_value_t *l = logs->u.arr.items[i];
        assert_int_equal(l->u.str.len, 6 + 32768 + strlen(CVX_ABI_LOG_CUT));
        assert_string_equal(l->u.str.ptr + 6 + 32768, " (truncated due to length)");
    }
    assert_string_equal(line(logs, 255), LINE_NOTE);
    cvx_response_free(&r);
}

/* The action's 100 lines, then its query's until the budget is spent:
 * 155 of them and the note. The action's lines after that are dropped. */
static void want_shared(const cvx_response_t *r, const char *nested_line) {
    assert_string_equal(r->r.value.data, "300");
    const cvx_value_t *logs = logs_of(r);
    assert_int_equal(logs->u.arr.len, 256);
    assert_string_equal(line(logs, 0), "[LOG] before 0");
    assert_string_equal(line(logs, 99), "[LOG] before 99");
    for (size_t i = 100; i < 255; i++) assert_string_equal(line(logs, i), nested_line);
    assert_string_equal(line(logs, 255), LINE_NOTE);
}

static void test_nested_share_lines(void **state) {
    cvx_response_t r;
    call_ok("fixture:loud_action", "{\"before\": 100, \"fill\": 0, \"lines\": 300, \"size\": 4, \"after\": 5}", &r);
    want_shared(&r, "[LOG] yyyy");
    cvx_response_free(&r);
    /* The query's log was cut by the action's budget: not cached as its
     * answer, so a call of its own (same argument bytes as the action's
     * call: same cache key) gets all its lines. */
    call_ok("fixture:loud", "{\"lines\":300,\"size\":4}", &r);
    const cvx_value_t *logs = logs_of(&r);
    assert_int_equal(logs->u.arr.len, 256);
    assert_string_equal(line(logs, 254), "[LOG] yyyy");
    cvx_response_free(&r);
}

/* The same with the query's answer (and its 256 lines) from the cache:
 * they are cut to the action's budget all the same, with one note. */
static void test_nested_share_cached(void **state) {
    cvx_response_t r;
    /* The arguments' bytes as the action's call writes them: the cache
     * key. */
    call_ok("fixture:loud", "{\"lines\":300,\"size\":5}", &r);
    assert_int_equal(r.r.nlogs, 256);
    cvx_response_free(&r);
    cvx_exec_stats_t before, after;
    cvx_exec_stats(env.rt, &before);
    call_ok("fixture:loud_action", "{\"before\": 100, \"fill\": 0, \"lines\": 300, \"size\": 5, \"after\": 5}", &r);
    cvx_exec_stats(env.rt, &after);
    assert_int_equal(after.cache_hits, before.cache_hits + 1);
    want_shared(&r, "[LOG] yyyyy");
    cvx_response_free(&r);
    /* A query that did not fill the budget leaves the action room. */
    call_ok("fixture:loud_action", "{\"before\": 2, \"fill\": 0, \"lines\": 2, \"size\": 1, \"after\": 2}", &r);
    assert_string_equal(r.r.logs.data, "[\"[LOG] before 0\",\"[LOG] before 1\",\"[LOG] y\",\"[LOG] y\","
                                       "\"[LOG] after 0\",\"[LOG] after 1\"]");
    cvx_response_free(&r);
}

/* Bytes are shared too: 70 lines that JSON makes 192 KiB each (13.1 MiB)
 * leave the query room for less than 100 of its 200 lines of 32 KiB. */
static void test_nested_share_bytes(void **state) {
    cvx_response_t r;
    call_ok("fixture:loud_action",
            "{\"before\": 70, \"fill\": 32700, \"lines\": 200, \"size\": 32768, \"after\": 5}", &r);
    assert_true(r.r.logs.len + r.r.value.len <= CVX_ABI_MAX_RESULT);
    assert_true(r.r.logs.len > CVX_ABI_MAX_RESULT - 64 * 1024);
    const cvx_value_t *logs = logs_of(&r);
    size_t n = logs->u.arr.len;
    assert_true(n > 71 && n < 70 + 100);
    for (size_t i = 0; i < 70; i++) assert_memory_equal(line(logs, i), "[LOG] before ", 13);
    for (size_t i = 70; i + 1 < n; i++) assert_int_equal(logs->u.arr.items[i]->u.str.len, 6 + 32768);
    assert_string_equal(line(logs, n - 1), BYTES_NOTE);
    cvx_response_free(&r);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_line_limit),
        TU_WASM_TEST(test_long_lines),
        TU_WASM_TEST(test_nested_share_lines),
        TU_WASM_TEST(test_nested_share_cached),
        TU_WASM_TEST(test_nested_share_bytes),
    };
    return cmocka_run_group_tests_name("exec.logs", tests, group_setup, group_teardown);
}
