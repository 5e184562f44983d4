/*
 * exec: every row of examples/hello/README.md through the runtime (real
 * Wasmtime, real guest built with the Rust toolchain, real store): values,
 * errors, panics with their source location, fuel / timeout / memory
 * limits (and a healthy host after each), the log line limit, determinism
 * of queries and not of actions, application errors, visibility, kinds,
 * argument validation and unknown functions.
 */
#include "support/testutil.h"
#include "support/tu_signals.h"

#include <math.h>

static tu_env_t env;            /* hello, default limits */
static cvx_runtime_t *limited;  /* same engine/store/app: small fuel */
static cvx_runtime_t *small_mem; /* small memory */
static cvx_runtime_t *timed;    /* fuel off, small timeout */
static tu_env_t fixture;        /* tests/fixtures/guest (actions) */
static cvx_arena_t *arena;

#define SMALL_FUEL 20000000ull
#define SMALL_MEMORY (32ull << 20)
#define SMALL_TIMEOUT_MS 300

static cvx_runtime_t *runtime_with(const cvx_exec_limits_t *l) {
    cvx_runtime_config_t cfg = {.engine = env.engine, .store = env.store, .limits = *l};
    cvx_runtime_t *rt;
    cvx_err_t err;
    if (cvx_runtime_new(&cfg, &rt, &err)) fail_msg("runtime: %s", err.msg);
    if (cvx_runtime_deploy(rt, env.app, NULL, NULL, &err)) fail_msg("deploy: %s", err.msg);
    return rt;
}

static int group_setup(void **state) {
    tu_env_open(&env, tu_guest_wasm("examples/hello"), NULL);
    cvx_exec_limits_t l;
    cvx_exec_limits_default(&l);
    for (int k = 1; k <= 3; k++) l.fuel[k] = SMALL_FUEL;
    limited = runtime_with(&l);
    cvx_exec_limits_default(&l);
    for (int k = 1; k <= 3; k++) l.memory_bytes[k] = SMALL_MEMORY;
    small_mem = runtime_with(&l);
    cvx_exec_limits_default(&l);
    for (int k = 1; k <= 3; k++) {
        l.fuel[k] = 0;
        l.timeout_ms[k] = SMALL_TIMEOUT_MS;
    }
    timed = runtime_with(&l);
    tu_env_open(&fixture, tu_guest_wasm("tests/fixtures/guest"), NULL);
    arena = cvx_arena_new(4096);
    return 0;
}

static int group_teardown(void **state) {
    cvx_runtime_free(limited);
    cvx_runtime_free(small_mem);
    cvx_runtime_free(timed);
    tu_env_close(&env, true);
    tu_env_close(&fixture, true);
    cvx_arena_free(arena);
    return 0;
}

/* A call on runtime rt; resp must be freed. */
static int call_rt(cvx_runtime_t *rt, const char *path, const char *args, const char *request_id, cvx_response_t *resp) {
    memset(resp, 0, sizeof *resp);
    cvx_request_t req = {.path = path,
                         .args_json = args,
                         .args_len = args ? strlen(args) : 0,
                         .request_id = request_id,
                         .allow_internal = false};
    return cvx_exec_call(rt, &req, resp);
}

static cvx_value_t *parse(const char *json) {
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (cvx_json_parse(arena, json, strlen(json), &v, &err)) fail_msg("bad JSON %s: %s", json, err.msg);
    return v;
}

/* The value must equal `want` (compared as Convex values). */
static void want_value(const char *path, const char *args, const char *want) {
    cvx_response_t r;
    int rc = call_rt(env.rt, path, args, NULL, &r);
    if (rc != CVX_OK)
        fail_msg("%s(%s): %s: %s", path, args, cvx_code_name(rc), r.r.message.data ? r.r.message.data : "");
    if (!cvx_value_equal(parse(r.r.value.data), parse(want)))
        fail_msg("%s(%s) returned %s, expected %s", path, args, r.r.value.data, want);
    cvx_response_free(&r);
}

/* The call must fail with `code` and a message containing `msg`. */
static void want_error_rt(cvx_runtime_t *rt, const char *path, const char *args, int code, const char *msg) {
    cvx_response_t r;
    int rc = call_rt(rt, path, args, NULL, &r);
    if (rc != code)
        fail_msg("%s(%s): got %s (%s), expected %s", path, args ? args : "", cvx_code_name(rc),
                 rc ? r.r.message.data : r.r.value.data, cvx_code_name(code));
    assert_int_equal(r.r.status, code);
    tu_assert_contains(r.r.message.data, msg);
    /* System errors carry the request id header clients show. */
    if (code != CVX_E_APPLICATION) {
        char head[80];
        snprintf(head, sizeof head, "[Request ID: %s] Server Error\n", r.request_id);
        assert_memory_equal(r.r.message.data, head, strlen(head));
    }
    cvx_response_free(&r);
}

static void want_error(const char *path, const char *args, int code, const char *msg) {
    want_error_rt(env.rt, path, args, code, msg);
}

/* The runtime is healthy: a plain call works. */
static void want_healthy(cvx_runtime_t *rt) {
    cvx_response_t r;
    int rc = call_rt(rt, "hello:add", "{\"a\":1,\"b\":2}", NULL, &r);
    if (rc != CVX_OK) fail_msg("host unhealthy: %s: %s", cvx_code_name(rc), r.r.message.data);
    assert_string_equal(r.r.value.data, "3");
    cvx_response_free(&r);
}

/* ---- values ------------------------------------------------------------------ */

static void test_arithmetic_and_strings(void **state) {
    want_value("hello:add", "{\"a\": 1, \"b\": 2}", "3");
    want_value("hello:add", "{\"a\": 0.5, \"b\": -2.25}", "-1.75");
    want_value("hello:add_int", "{\"a\":{\"$integer\":\"AgAAAAAAAAA=\"},\"b\":{\"$integer\":\"KAAAAAAAAAA=\"}}",
                 "{\"$integer\":\"KgAAAAAAAAA=\"}");
    /* int64 extremes round-trip exactly (no float64 on the way). */
    want_value("hello:add_int", "{\"a\":{\"$integer\":\"/////////38=\"},\"b\":{\"$integer\":\"AAAAAAAAAAA=\"}}",
                 "{\"$integer\":\"/////////38=\"}");
    want_value("hello:add_int", "{\"a\":{\"$integer\":\"AAAAAAAAAIA=\"},\"b\":{\"$integer\":\"AAAAAAAAAAA=\"}}",
                 "{\"$integer\":\"AAAAAAAAAIA=\"}");
    want_value("hello:add_int", "{\"a\":{\"$integer\":\"//////////8=\"},\"b\":{\"$integer\":\"AQAAAAAAAAA=\"}}",
                 "{\"$integer\":\"AAAAAAAAAAA=\"}");
    want_error("hello:add_int", "{\"a\":{\"$integer\":\"/////////38=\"},\"b\":{\"$integer\":\"AQAAAAAAAAA=\"}}",
                 CVX_E_UNCAUGHT, "add_int: 9223372036854775807 + 1 overflows int64");
    want_value("hello:greet", "{\"name\": \"Ada\"}", "\"Hello, Ada!\"");
    want_value("hello:greet", "{\"name\": \"\\u00e9\\ud83d\\ude00\"}", "\"Hello, \\u00e9\\ud83d\\ude00!\"");
    want_value("hello:shout", "{\"text\": \"hi\"}", "\"HI!\"");
    want_value("hello:version", "{}", "1");
    want_value("hello:describe", "{\"tags\": [\"a\", \"b\"], \"point\": {\"x\": 3, \"y\": 4}}",
                 "{\"label\": \"(none)\", \"tag_count\": {\"$integer\":\"AgAAAAAAAAA=\"}, \"tags\": [\"a\", \"b\"], "
                 "\"distance\": 5, \"point\": {\"x\": 3, \"y\": 4}}");
    want_value("hello:describe", "{\"label\": \"p\", \"tags\": [], \"point\": {\"x\": 0, \"y\": 0}}",
                 "{\"label\": \"p\", \"tag_count\": {\"$integer\":\"AAAAAAAAAAA=\"}, \"tags\": [], \"distance\": 0, "
                 "\"point\": {\"x\": 0, \"y\": 0}}");
}

static void test_echo_round_trips(void **state) {
    static const char *const values[] = {
        "null", "true", "false", "0", "-1.5", "1e300", "\"\"", "\"text with \\\"quotes\\\" and \\n\"",
        "{\"$integer\":\"/////////38=\"}", "{\"$integer\":\"AAAAAAAAAIA=\"}", "{\"$integer\":\"AAAAAAAAAAA=\"}",
        "{\"$bytes\":\"\"}", "{\"$bytes\":\"AAH/gA==\"}", "[]", "{}",
        "[1,[2,[3,[4]]],{\"a\":{\"b\":{\"c\":[]}}}]",
        "{\"i\":{\"$integer\":\"BQAAAAAAAAA=\"},\"b\":{\"$bytes\":\"AP8=\"},\"n\":null,\"a\":[true]}",
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(values); i++) {
        char args[512];
        snprintf(args, sizeof args, "{\"value\": %s}", values[i]);
        want_value("hello:echo", args, values[i]);
    }
    /* Non-finite floats and -0 keep their exact bits. */
    static const char *const floats[] = {
        "{\"$float\":\"AAAAAAAA+H8=\"}", /* NaN */
        "{\"$float\":\"AAAAAAAA8H8=\"}", /* +inf */
        "{\"$float\":\"AAAAAAAA8P8=\"}", /* -inf */
        "{\"$float\":\"AAAAAAAAAIA=\"}", /* -0 */
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(floats); i++) {
        char args[128];
        snprintf(args, sizeof args, "{\"value\": %s}", floats[i]);
        cvx_response_t r;
        assert_int_equal(call_rt(env.rt, "hello:echo", args, NULL, &r), CVX_OK);
        cvx_value_t *v = parse(r.r.value.data), *w = parse(floats[i]);
        assert_int_equal(v->type, CVX_T_FLOAT64);
        assert_memory_equal(&v->u.f, &w->u.f, sizeof(double));
        cvx_response_free(&r);
    }
    cvx_value_t *nan = parse("{\"$float\":\"AAAAAAAA+H8=\"}");
    assert_true(isnan(nan->u.f));
}

/* ---- errors, panics, limits ------------------------------------------------- */

static void test_panic_has_location(void **state) {
    cvx_response_t r;
    assert_int_equal(call_rt(env.rt, "hello:boom", "{}", NULL, &r), CVX_E_PANIC);
    tu_assert_contains(r.r.message.data, "Uncaught Error: boom: this function always panics");
    tu_assert_contains(r.r.message.data, "src/lib.rs:44:5");
    tu_assert_contains(r.r.message.data, "hello:boom");
    cvx_response_free(&r);
    want_healthy(env.rt);
    want_error("hello:fail", "{}", CVX_E_UNCAUGHT, "Uncaught Error: fail: this function always fails");
}

static void test_fuel_limit(void **state) {
    uint64_t t0 = cvx_monotonic_ns();
    cvx_response_t r;
    assert_int_equal(call_rt(limited, "hello:spin", "{}", NULL, &r), CVX_E_FUEL);
    tu_assert_contains(r.r.message.data, "function exceeded its fuel limit (20000000 units)");
    assert_true(r.r.fuel_used >= SMALL_FUEL);
    cvx_response_free(&r);
    print_message("fuel limit hit after %.0f ms\n", (double)(cvx_monotonic_ns() - t0) / 1e6);
    want_healthy(limited);
    /* Again, to see the instance was not reused in a broken state. */
    want_error_rt(limited, "hello:spin", "{}", CVX_E_FUEL, "fuel limit");
    want_healthy(limited);
}

static void test_timeout(void **state) {
    uint64_t t0 = cvx_monotonic_ns();
    cvx_response_t r;
    assert_int_equal(call_rt(timed, "hello:spin", "{}", NULL, &r), CVX_E_TIMEOUT);
    double ms = (double)(cvx_monotonic_ns() - t0) / 1e6;
    tu_assert_contains(r.r.message.data, "function timed out (limit 300 ms)");
    cvx_response_free(&r);
    print_message("timed out after %.0f ms\n", ms);
    /* Near the limit: a deadline off by the epoch tick or a few ticks
     * still passes; one counted in the wrong unit (10x) does not. The
     * slack covers the call around it (instantiation, arguments) under
     * ASan on a loaded machine. */
    assert_true(ms >= SMALL_TIMEOUT_MS * 0.9);
    if (ms >= 3 * SMALL_TIMEOUT_MS + 1000) fail_msg("a %d ms timeout took %.0f ms", SMALL_TIMEOUT_MS, ms);
    want_healthy(timed);
}

static void test_memory_limit(void **state) {
    cvx_response_t r;
    assert_int_equal(call_rt(small_mem, "hello:bomb", "{}", NULL, &r), CVX_E_MEMORY);
    tu_assert_contains(r.r.message.data, "function exceeded its memory limit (32 MiB)");
    assert_true(r.r.memory_bytes <= SMALL_MEMORY);
    cvx_response_free(&r);
    want_healthy(small_mem);
    want_error_rt(small_mem, "hello:bomb", "{}", CVX_E_MEMORY, "memory limit");
    want_healthy(small_mem);
}

static void test_logs(void **state) {
    cvx_response_t r;
    assert_int_equal(call_rt(env.rt, "hello:chatty", "{\"n\": 3}", NULL, &r), CVX_OK);
    assert_string_equal(r.r.value.data, "3");
    assert_int_equal(r.r.nlogs, 3);
    assert_true(cvx_value_equal(parse(r.r.logs.data), parse("[\"[LOG] line 1\",\"[LOG] line 2\",\"[LOG] line 3\"]")));
    cvx_response_free(&r);

    assert_int_equal(call_rt(env.rt, "hello:printer", "{}", NULL, &r), CVX_OK);
    assert_string_equal(r.r.value.data, "\"printed\"");
    assert_true(cvx_value_equal(parse(r.r.logs.data),
                                parse("[\"[LOG] hello from println\",\"[ERROR] hello from eprintln\","
                                      "\"[INFO] an info line\",\"[WARN] a warn line\",\"[ERROR] an error line\","
                                      "\"[DEBUG] a debug line\"]")));
    cvx_response_free(&r);

    /* 256 lines is the limit, as in Convex: 255 lines and a note saying
     * the rest were dropped; the call itself succeeds. */
    assert_int_equal(call_rt(env.rt, "hello:chatty", "{\"n\": 255}", NULL, &r), CVX_OK);
    assert_int_equal(r.r.nlogs, 255);
    cvx_response_free(&r);
    assert_int_equal(call_rt(env.rt, "hello:chatty", "{\"n\": 1001}", NULL, &r), CVX_OK);
    assert_string_equal(r.r.value.data, "1001");
    assert_int_equal(r.r.nlogs, 256);
    const cvx_value_t *logs = parse(r.r.logs.data);
    assert_string_equal(logs->u.arr.items[254]->u.str.ptr, "[LOG] line 255");
    assert_string_equal(logs->u.arr.items[255]->u.str.ptr,
                        "[WARN] Log overflow (maximum 256). Remaining log lines omitted.");
    cvx_response_free(&r);
    want_healthy(env.rt);
}

/* ---- determinism -------------------------------------------------------------- */

static char *call_value(cvx_runtime_t *rt, const char *path, const char *args, const char *request_id) {
    cvx_response_t r;
    int rc = call_rt(rt, path, args, request_id, &r);
    if (rc) fail_msg("%s: %s: %s", path, cvx_code_name(rc), r.r.message.data);
    if (request_id) assert_string_equal(r.request_id, request_id);
    char *v = strdup(r.r.value.data);
    cvx_response_free(&r);
    return v;
}

static void test_determinism(void **state) {
    char *a = call_value(env.rt, "hello:dice", "{}", "req-1");
    char *b = call_value(env.rt, "hello:dice", "{}", "req-1");
    char *c = call_value(env.rt, "hello:dice", "{}", "req-2");
    char *d = call_value(env.rt, "hello:dice", "{}", NULL);
    assert_string_equal(a, b);
    cvx_value_t *va = parse(a), *vc = parse(c), *vd = parse(d);
    const cvx_value_t *ba = cvx_obj_get_cstr(va, "bytes"), *bc = cvx_obj_get_cstr(vc, "bytes"),
                      *bd = cvx_obj_get_cstr(vd, "bytes");
    assert_int_equal(ba->type, CVX_T_BYTES);
    assert_int_equal(ba->u.str.len, 16);
    assert_false(cvx_value_equal(ba, bc));
    assert_false(cvx_value_equal(ba, bd));
    assert_false(cvx_value_equal(cvx_obj_get_cstr(va, "std_hash"), cvx_obj_get_cstr(vc, "std_hash")));
    double roll = cvx_obj_get_cstr(va, "roll")->u.f, fl = cvx_obj_get_cstr(va, "float")->u.f;
    assert_true(roll >= 1 && roll <= 6 && roll == floor(roll));
    assert_true(fl >= 0 && fl < 1);
    assert_int_equal(cvx_obj_get_cstr(va, "int")->type, CVX_T_INT64);
    free(a);
    free(b);
    free(c);
    free(d);

    /* Time is frozen for the call: both clocks agree, near the real time. */
    double before = (double)cvx_now_ns() / 1e6;
    char *n = call_value(env.rt, "hello:now", "{}", NULL);
    double after = (double)cvx_now_ns() / 1e6;
    cvx_value_t *vn = parse(n);
    double ms = cvx_obj_get_cstr(vn, "ms")->u.f, std_ms = cvx_obj_get_cstr(vn, "std_ms")->u.f;
    /* Frozen at whole milliseconds, like Date.now() in Convex. */
    assert_true(ms == floor(ms));
    assert_true(ms >= floor(before) && ms <= after);
    /* std's clock (WASI clock_time_get, in ns) reads the same frozen time.
     * Not compared exactly: clock_time_get (src/abi/wasi.c) converts with
     * (uint64_t)(ms * 1e6), which is off by up to ~128 ns for today's
     * timestamps, so std_ms can differ from ms in the last bits. */
    if (fabs(ms - std_ms) > 0.001) fail_msg("now: ms %.6f != std_ms %.6f (%s)", ms, std_ms, n);
    /* Frozen: a second call in the same millisecond or later never goes back. */
    char *n2 = call_value(env.rt, "hello:now", "{}", NULL);
    assert_true(cvx_obj_get_cstr(parse(n2), "ms")->u.f >= ms);
    free(n2);
    free(n);

    /* Actions are not deterministic: the same request id gives other bytes. */
    char *x = call_value(fixture.rt, "fixture:action_random", "{}", "req-1");
    char *y = call_value(fixture.rt, "fixture:action_random", "{}", "req-1");
    cvx_value_t *vx = parse(x), *vy = parse(y);
    assert_int_equal(cvx_obj_get_cstr(vx, "bytes")->u.str.len, 16);
    assert_false(cvx_value_equal(cvx_obj_get_cstr(vx, "bytes"), cvx_obj_get_cstr(vy, "bytes")));
    free(x);
    free(y);
}

/* ---- application errors, visibility, kinds, arguments --------------------- */

static void test_application_error(void **state) {
    cvx_response_t r;
    assert_int_equal(call_rt(env.rt, "hello:app_error", "{}", NULL, &r), CVX_E_APPLICATION);
    assert_int_equal(r.kind, CVX_KIND_MUTATION);
    assert_true(r.r.has_data);
    cvx_value_t *want =
        parse("{\"code\": \"E_HELLO\", \"count\": 3, \"detail\": \"this function always fails with data\"}");
    assert_true(cvx_value_equal(parse(r.r.data.data), want));
    /* The message is the data as JSON, without a server-error header. */
    assert_true(cvx_value_equal(parse(r.r.message.data), want));
    cvx_response_free(&r);
    assert_int_equal(call_rt(env.rt, "hello:app_error", "{\"code\": \"E_X\"}", NULL, &r), CVX_E_APPLICATION);
    assert_string_equal(cvx_obj_get_cstr(parse(r.r.data.data), "code")->u.str.ptr, "E_X");
    cvx_response_free(&r);
}

static void test_internal_and_kinds(void **state) {
    want_error("hello:secret", "{}", CVX_E_NO_FUNCTION, "Could not find public function for 'hello:secret'");
    cvx_response_t r;
    assert_int_equal(tu_call(&env, "hello:secret", "{}", &r), CVX_OK); /* allow_internal */
    assert_string_equal(r.r.value.data, "\"the secret is 42\"");
    cvx_response_free(&r);

    cvx_request_t req = {.path = "hello:add", .args_json = "{\"a\":1,\"b\":2}", .args_len = 13,
                         .expect_kind = CVX_KIND_MUTATION};
    memset(&r, 0, sizeof r);
    assert_int_equal(cvx_exec_call(env.rt, &req, &r), CVX_E_NO_FUNCTION);
    tu_assert_contains(r.r.message.data, "Trying to execute hello:add as a mutation, but it is defined as a query.");
    cvx_response_free(&r);
    req.expect_kind = CVX_KIND_ACTION;
    memset(&r, 0, sizeof r);
    assert_int_equal(cvx_exec_call(env.rt, &req, &r), CVX_E_NO_FUNCTION);
    tu_assert_contains(r.r.message.data, "as an action, but it is defined as a query");
    cvx_response_free(&r);
    req.expect_kind = CVX_KIND_QUERY;
    memset(&r, 0, sizeof r);
    assert_int_equal(cvx_exec_call(env.rt, &req, &r), CVX_OK);
    assert_int_equal(r.kind, CVX_KIND_QUERY);
    assert_int_equal(r.ts, cvx_store_latest_ts(env.store)); /* a query reads at a snapshot */
    cvx_response_free(&r);

    want_error("hello:nope", "{}", CVX_E_NO_FUNCTION, "Could not find public function for 'hello:nope'");
    want_error("nope:add", "{}", CVX_E_NO_FUNCTION, "Could not find public function for 'nope:add'");
}

static void test_argument_validation(void **state) {
    want_error("hello:greet", "{}", CVX_E_ARGS,
               "ArgumentValidationError: Object is missing the required field `name`. Consider wrapping the field "
               "validator in `v.optional(...)` if this is expected.");
    want_error("hello:greet", "{\"name\": 1}", CVX_E_ARGS, "name");
    want_error("hello:greet", "{\"name\": 1}", CVX_E_ARGS, "string");
    want_error("hello:greet", "{\"name\": \"a\", \"extra\": 1}", CVX_E_ARGS,
               "Object contains extra field `extra` that is not in the validator.");
    want_error("hello:add", "{\"a\": 1}", CVX_E_ARGS, "the required field `b`");
    want_error("hello:add_int", "{\"a\": 1, \"b\": 2}", CVX_E_ARGS, "int64");
    want_error("hello:chatty", "{}", CVX_E_ARGS, "the required field `n`");
    want_error("hello:describe", "{\"tags\": [\"a\", 2], \"point\": {}}", CVX_E_ARGS, "tags");
    want_error("hello:describe", "{\"label\": 5, \"tags\": [], \"point\": {}}", CVX_E_ARGS, "label");
    want_error("hello:greet", "[\"Ada\"]", CVX_E_ARGS, "");
    want_error("hello:greet", "{\"name\": ", CVX_E_ARGS, "");
    want_healthy(env.rt);
    cvx_exec_stats_t st;
    cvx_exec_stats(env.rt, &st);
    assert_true(st.failures > 0);
    assert_true(st.calls[CVX_KIND_QUERY] > 0);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_arithmetic_and_strings),
        TU_WASM_TEST(test_echo_round_trips),
        TU_WASM_TEST(test_panic_has_location),
        TU_WASM_TEST(test_fuel_limit),
        TU_WASM_TEST(test_timeout),
        TU_WASM_TEST(test_memory_limit),
        TU_WASM_TEST(test_logs),
        TU_WASM_TEST(test_determinism),
        TU_WASM_TEST(test_application_error),
        TU_WASM_TEST(test_internal_and_kinds),
        TU_WASM_TEST(test_argument_validation),
    };
    return cmocka_run_group_tests_name("exec.hello", tests, group_setup, group_teardown);
}
