/* abi: the guest ABI (docs/abi.md) against hand-written WAT guests.
 *
 *  - cvx_app_load: every way a module's ABI version, metadata records,
 *    exports and schema can be wrong, with the message a user sees;
 *  - bad pointers: every cvx_1 host function and every WASI function that
 *    takes a pointer, called with ranges outside memory, traps with a
 *    message naming the function and the range, and the next call works;
 *  - the list of host functions (src/abi/host_fns.def): the host links each
 *    entry with its signature and refuses any other type or name; the
 *    bad-pointer check of every range of every entry is driven by it too;
 *  - the call protocol: __convex_read, __convex_output, errors, panics,
 *    logs, stdout/stderr through fd_write, WASI determinism;
 *  - what each function kind may do (db in actions, writes in queries,
 *    fetch outside actions, run_* outside actions);
 *  - argument validation for every type descriptor;
 *  - __convex_http_fetch against a loopback HTTP/1.1 server run here. */
#define _GNU_SOURCE
#include "support/testutil.h"
#include "support/tu_signals.h"
#include "abi/abi_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- building guests -------------------------------------------------------------- */

/* Memory layout of every guest (one 64 KiB page):
 *   0..15 hex digits · 16..17 "42" · 100..1023 test data · 1024..8191 args
 *   8192..12287 $hexout output · 12288..16383 scratch · 16384.. big buffers */
#define PRELUDE_IMPORTS                                                                                            \
    "(import \"cvx_1\" \"__convex_read\" (func $read (param i32 i32) (result i32)))\n"                           \
    "(import \"cvx_1\" \"__convex_pending_len\" (func $pending_len (result i32)))\n"                             \
    "(import \"cvx_1\" \"__convex_output\" (func $output (param i32 i32 i32) (result i32)))\n"                   \
    "(import \"cvx_1\" \"__convex_log\" (func $log (param i32 i32 i32) (result i32)))\n"

#define PRELUDE_DEFS                                                                                               \
    "(memory (export \"memory\") 1)\n"                                                                             \
    "(data (i32.const 0) \"0123456789abcdef\")\n"                                                                  \
    "(data (i32.const 16) \"42\")\n"                                                                               \
    ";; outputs [p, p+n) as a JSON string of hex digits\n"                                                         \
    "(func $hexout (param $p i32) (param $n i32) (local $i i32) (local $o i32) (local $b i32)\n"                   \
    "  (i32.store8 (i32.const 8192) (i32.const 34))\n"                                                             \
    "  (local.set $o (i32.const 8193))\n"                                                                          \
    "  (block $done (loop $l\n"                                                                                    \
    "    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))\n"                                                 \
    "    (local.set $b (i32.load8_u (i32.add (local.get $p) (local.get $i))))\n"                                   \
    "    (i32.store8 (local.get $o) (i32.load8_u (i32.shr_u (local.get $b) (i32.const 4))))\n"                    \
    "    (i32.store8 (i32.add (local.get $o) (i32.const 1)) (i32.load8_u (i32.and (local.get $b) (i32.const 15))))\n" \
    "    (local.set $o (i32.add (local.get $o) (i32.const 2)))\n"                                                  \
    "    (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"                                                  \
    "    (br $l)))\n"                                                                                              \
    "  (i32.store8 (local.get $o) (i32.const 34))\n"                                                               \
    "  (drop (call $output (i32.const 0) (i32.const 8192)\n"                                                       \
    "    (i32.sub (i32.add (local.get $o) (i32.const 1)) (i32.const 8192)))))\n"                                   \
    "(func $args (param $n i32) (drop (call $read (i32.const 1024) (local.get $n))))\n"                            \
    "(func (export \"ok\") (param $n i32) (result i32)\n"                                                          \
    "  (call $args (local.get $n))\n"                                                                              \
    "  (drop (call $output (i32.const 0) (i32.const 16) (i32.const 2)))\n"                                         \
    "  (i32.const 0))\n"

static void leb(cvx_buf_t *b, uint64_t v) {
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        if (v) c |= 0x80;
        cvx_buf_append_char(b, (char)c);
    } while (v);
}

static void add_custom(cvx_buf_t *wasm, const char *name, const void *data, size_t len) {
    cvx_buf_t s = {0};
    leb(&s, strlen(name));
    cvx_buf_append_str(&s, name);
    cvx_buf_append(&s, data, len);
    cvx_buf_append_char(wasm, 0);
    leb(wasm, s.len);
    cvx_buf_append(wasm, s.data, s.len);
    cvx_buf_free(&s);
}

/* Appends one framed record: u32 LE length + bytes. */
static void frame(cvx_buf_t *sec, const char *json) {
    uint32_t n = (uint32_t)strlen(json);
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    cvx_buf_append(sec, le, 4);
    cvx_buf_append(sec, json, n);
}

static void fn_record(cvx_buf_t *out, const char *path, const char *kind, const char *export_name) {
    cvx_buf_printf(out,
                   "{\"abi\":1,\"path\":\"%s\",\"kind\":\"%s\",\"visibility\":\"public\",\"export\":\"%s\","
                   "\"args\":[],\"returns\":{\"type\":\"any\"},\"file\":\"src/lib.rs\",\"line\":1}",
                   path, kind, export_name);
}

static void compile_wat(const char *text, cvx_buf_t *out) {
    cvx_err_t err;
    cvx_buf_reset(out);
    if (cvx_wat_to_wasm(text, strlen(text), out, &err)) fail_msg("WAT does not compile: %s\n%s", err.msg, text);
}

/* A guest: the prelude plus `imports` and `body`, with a cvx.fn record
 * "m:<name>" (kind query) for every function export. */
static void guest_wasm(const char *imports, const char *body, cvx_buf_t *wasm) {
    cvx_buf_t text = {0};
    cvx_buf_printf(&text, "(module\n%s%s%s%s)", PRELUDE_IMPORTS, imports ? imports : "", PRELUDE_DEFS, body ? body : "");
    compile_wat(text.data, wasm);
    cvx_buf_t sec = {0}, rec = {0};
    for (const char *p = text.data; (p = strstr(p, "(func (export \"")) != NULL;) {
        p += strlen("(func (export \"");
        char name[128];
        size_t n = strcspn(p, "\"");
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        char path[160];
        snprintf(path, sizeof path, "m:%s", name);
        cvx_buf_reset(&rec);
        fn_record(&rec, path, "query", name);
        frame(&sec, rec.data);
    }
    add_custom(wasm, "cvx.fn", sec.data, sec.len);
    cvx_buf_free(&sec);
    cvx_buf_free(&rec);
    cvx_buf_free(&text);
}

static cvx_engine_t *g_engine; /* shared by the tests; ABI registered */

static cvx_app_t *guest(const char *imports, const char *body) {
    cvx_buf_t wasm = {0};
    guest_wasm(imports, body, &wasm);
    cvx_app_t *app;
    cvx_err_t err;
    if (cvx_app_load(g_engine, (const uint8_t *)wasm.data, wasm.len, &app, &err))
        fail_msg("load: %s\n%s", err.msg, body ? body : "");
    cvx_buf_free(&wasm);
    return app;
}

static cvx_abi_call_config_t call_cfg(cvx_kind_t kind) {
    cvx_abi_call_config_t c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.request_id = "req-1";
    c.now_ms = 1700000000123.0;
    return c;
}

static const cvx_limits_t g_limits = {.fuel = 2000000000ull, .memory_bytes = 64u << 20, .timeout_ms = 20000};

static int run_cfg(cvx_app_t *app, const char *export_name, const cvx_abi_call_config_t *cfg, const char *args,
                   cvx_abi_result_t *res) {
    char path[160];
    snprintf(path, sizeof path, "m:%s", export_name);
    const cvx_fn_t *fn = cvx_app_find(app, path, strlen(path));
    if (!fn) fail_msg("no function %s", path);
    cvx_abi_result_reset(res);
    if (!args) args = "{}";
    return cvx_abi_invoke(app, fn, cfg, &g_limits, args, strlen(args), res);
}

static int run(cvx_app_t *app, const char *export_name, cvx_kind_t kind, const char *args, cvx_abi_result_t *res) {
    cvx_abi_call_config_t cfg = call_cfg(kind);
    return run_cfg(app, export_name, &cfg, args, res);
}

static const char *msg_of(const cvx_abi_result_t *r) { return r->message.data ? r->message.data : ""; }
static const char *value_of(const cvx_abi_result_t *r) { return r->value.data ? r->value.data : ""; }
static const char *logs_of(const cvx_abi_result_t *r) { return r->logs.data ? r->logs.data : ""; }

static void expect(int rc, const cvx_abi_result_t *r, int code) {
    assert_int_equal(rc, r->status);
    if (rc != code)
        fail_msg("expected %s, got %s: %s", cvx_code_name(code), cvx_code_name(rc), msg_of(r));
}

/* The app's "ok" function still works. */
static void assert_healthy(cvx_app_t *app) {
    cvx_abi_result_t r = {0};
    expect(run(app, "ok", CVX_KIND_QUERY, "{\"x\":1}", &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "42");
    cvx_abi_result_free(&r);
}

/* ---- cvx_app_load ------------------------------------------------------------------- */

/* Builds a module from raw WAT plus raw cvx.fn / cvx.schema payloads
 * (NULL = no section) and returns cvx_app_load's code. */
static int load_raw(const char *wat, const void *fn_sec, size_t fn_len, const void *schema_sec, size_t schema_len,
                    cvx_err_t *err) {
    cvx_buf_t wasm = {0};
    compile_wat(wat, &wasm);
    if (fn_sec) add_custom(&wasm, "cvx.fn", fn_sec, fn_len);
    if (schema_sec) add_custom(&wasm, "cvx.schema", schema_sec, schema_len);
    cvx_app_t *app = (cvx_app_t *)1;
    int rc = cvx_app_load(g_engine, (const uint8_t *)wasm.data, wasm.len, &app, err);
    cvx_buf_free(&wasm);
    if (rc == CVX_OK) cvx_app_release(app);
    else assert_null(app);
    return rc;
}

#define SIMPLE_WAT                                                                                                 \
    "(module " PRELUDE_IMPORTS PRELUDE_DEFS                                                                        \
    " (func (export \"f\") (param i32) (result i32) (i32.const 0))"                                               \
    " (func (export \"g\") (param i32) (result i32) (i32.const 0))"                                               \
    " (func (export \"wrong_sig\") (param i64) (result i32) (i32.const 0)))"

/* Loads SIMPLE_WAT with the given records (NULL-terminated) and schema. */
static int load_records(const char *const *records, const char *schema, cvx_err_t *err) {
    cvx_buf_t sec = {0}, sch = {0};
    for (size_t i = 0; records && records[i]; i++) frame(&sec, records[i]);
    if (schema) frame(&sch, schema);
    int rc = load_raw(SIMPLE_WAT, sec.data ? sec.data : "", sec.len, schema ? sch.data : NULL, sch.len, err);
    cvx_buf_free(&sec);
    cvx_buf_free(&sch);
    return rc;
}

#define REC(path, kind, vis, exp)                                                                                  \
    "{\"abi\":1,\"path\":\"" path "\",\"kind\":\"" kind "\",\"visibility\":\"" vis "\",\"export\":\"" exp         \
    "\",\"args\":[]}"

static void expect_load_error(const char *const *records, const char *schema, const char *msg) {
    cvx_err_t err;
    int rc = load_records(records, schema, &err);
    if (rc != CVX_E_BAD_MODULE) fail_msg("expected BAD_MODULE (%s), got %s: %s", msg, cvx_code_name(rc), err.msg);
    tu_assert_contains(err.msg, msg);
}

static void test_load_abi_version(void **state) {
    cvx_err_t err;
    /* Imports nothing from cvx_1. */
    assert_int_equal(load_raw("(module (memory (export \"memory\") 1))", "", 0, NULL, 0, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "module imports nothing from cvx_1");
    tu_assert_contains(err.msg, "convex_sdk");
    /* Only WASI is not enough either. */
    assert_int_equal(load_raw("(module (import \"wasi_snapshot_preview1\" \"sched_yield\" (func (result i32)))"
                              " (memory (export \"memory\") 1))",
                              "", 0, NULL, 0, &err),
                     CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "imports nothing from cvx_1");
    /* cvx_2: names the version and the one supported. */
    assert_int_equal(load_raw("(module (import \"cvx_2\" \"__convex_log\" (func (param i32 i32 i32) (result i32)))"
                              " (memory (export \"memory\") 1))",
                              "", 0, NULL, 0, &err),
                     CVX_E_BAD_MODULE);
    assert_string_equal(err.msg, "module imports ABI version 2 (cvx_2.__convex_log); this server supports version 1");
    /* Mixed with cvx_1 it is still refused. */
    load_raw("(module " PRELUDE_IMPORTS " (import \"cvx_10\" \"x\" (func)) (memory (export \"memory\") 1))", "", 0,
             NULL, 0, &err);
    tu_assert_contains(err.msg, "module imports ABI version 10 (cvx_10.x); this server supports version 1");
    /* Not wasm at all. */
    cvx_app_t *app;
    assert_int_equal(cvx_app_load(g_engine, (const uint8_t *)"nope", 4, &app, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "not a WebAssembly module");
    /* An unknown cvx_1 function is the wasm layer's precise message. */
    load_raw("(module " PRELUDE_IMPORTS " (import \"cvx_1\" \"__convex_teleport\" (func)) (memory (export \"memory\") 1))",
             "", 0, NULL, 0, &err);
    tu_assert_contains(err.msg, "unknown import cvx_1.__convex_teleport");
}

static void test_load_no_metadata(void **state) {
    cvx_err_t err;
    assert_int_equal(load_raw(SIMPLE_WAT, NULL, 0, NULL, 0, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "module has no cvx.fn metadata section");
    /* An empty section declares nothing either. */
    assert_int_equal(load_raw(SIMPLE_WAT, "", 0, NULL, 0, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "no cvx.fn metadata section");
}

static void test_load_record_framing(void **state) {
    cvx_err_t err;
    /* Fewer than 4 bytes left for a header. */
    assert_int_equal(load_raw(SIMPLE_WAT, "\x02\0\0", 3, NULL, 0, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "custom section cvx.fn: truncated record header");
    /* A length beyond the section. */
    assert_int_equal(load_raw(SIMPLE_WAT, "\x10\0\0\0{}", 6, NULL, 0, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "custom section cvx.fn: record 0 is truncated");
    /* A huge length (would overflow a pointer sum). */
    assert_int_equal(load_raw(SIMPLE_WAT, "\xff\xff\xff\xff{}", 6, NULL, 0, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "record 0 is truncated");
    /* A good record then trailing garbage: the second record is named. */
    cvx_buf_t sec = {0};
    frame(&sec, REC("m:f", "query", "public", "f"));
    cvx_buf_append(&sec, "\x01\0", 2);
    assert_int_equal(load_raw(SIMPLE_WAT, sec.data, sec.len, NULL, 0, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "truncated record header");
    cvx_buf_free(&sec);
    /* Schema framing too. */
    cvx_buf_reset(&sec);
    frame(&sec, REC("m:f", "query", "public", "f"));
    assert_int_equal(load_raw(SIMPLE_WAT, sec.data, sec.len, "\x09\0\0\0{}", 6, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "custom section cvx.schema: record 0 is truncated");
    cvx_buf_free(&sec);
}

static void test_load_bad_records(void **state) {
    const char *r1[] = {"{\"abi\":1,", NULL};
    expect_load_error(r1, NULL, "function metadata record 0 is not valid JSON");
    const char *r2[] = {REC("m:f", "query", "public", "f"), "not json", NULL};
    expect_load_error(r2, NULL, "function metadata record 1 is not valid JSON");
    const char *r3[] = {"{\"abi\":2,\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\",\"args\":[]}", NULL};
    expect_load_error(r3, NULL, "function metadata record 0 declares ABI version 2; this server supports version 1");
    const char *r4[] = {"{\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\",\"args\":[]}", NULL};
    expect_load_error(r4, NULL, "declares ABI version");
    const char *r5[] = {"[1,2,3]", NULL};
    expect_load_error(r5, NULL, "declares ABI version");
    const char *r6[] = {"{\"abi\":\"1\",\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\",\"args\":[]}", NULL};
    expect_load_error(r6, NULL, "declares ABI version");
    const char *r7[] = {"{\"abi\":1,\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\"}", NULL};
    expect_load_error(r7, NULL, "lacks \"path\", \"export\", \"kind\" or \"args\"");
    const char *r8[] = {"{\"abi\":1,\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\",\"args\":{}}", NULL};
    expect_load_error(r8, NULL, "lacks");
    const char *r9[] = {"{\"abi\":1,\"path\":7,\"kind\":\"query\",\"export\":\"f\",\"args\":[]}", NULL};
    expect_load_error(r9, NULL, "lacks");
    /* An int64 version is accepted like a number. */
    const char *ok[] = {"{\"abi\":{\"$integer\":\"AQAAAAAAAAA=\"},\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\","
                        "\"args\":[]}",
                        NULL};
    cvx_err_t err;
    if (load_records(ok, NULL, &err)) fail_msg("%s", err.msg);
}

static void test_load_exports(void **state) {
    const char *r1[] = {REC("users:get", "query", "public", "cvx:users::get"), NULL};
    expect_load_error(r1, NULL,
                      "function users:get declares export \"cvx:users::get\" (i32) -> i32, which the module does not "
                      "export");
    const char *r2[] = {REC("m:w", "query", "public", "wrong_sig"), NULL};
    expect_load_error(r2, NULL, "function m:w declares export \"wrong_sig\" (i32) -> i32, which the module does not");
    /* The memory is not a function. */
    const char *r3[] = {REC("m:mem", "query", "public", "memory"), NULL};
    expect_load_error(r3, NULL, "declares export \"memory\"");
}

static void test_load_shapes(void **state) {
    const char *dup[] = {REC("m:f", "query", "public", "f"), REC("m:f", "mutation", "public", "g"), NULL};
    expect_load_error(dup, NULL, "two functions are both named m:f");
    const char *kind[] = {REC("m:f", "subscription", "public", "f"), NULL};
    expect_load_error(kind, NULL, "function m:f has unknown kind \"subscription\"");
    const char *vis[] = {REC("m:f", "query", "private", "f"), NULL};
    expect_load_error(vis, NULL, "function m:f has unknown visibility \"private\"");
    static const char *const bad_paths[] = {"nocolon", ":f", "m:", "a:b:c", ""};
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad_paths); i++) {
        char rec[256], want[128];
        snprintf(rec, sizeof rec, "{\"abi\":1,\"path\":\"%s\",\"kind\":\"query\",\"export\":\"f\",\"args\":[]}",
                 bad_paths[i]);
        snprintf(want, sizeof want, "function path \"%s\" is not of the form module:function", bad_paths[i]);
        const char *r[] = {rec, NULL};
        expect_load_error(r, NULL, want);
    }
    /* Visibility is optional (public); two functions may share an export. */
    const char *ok[] = {"{\"abi\":1,\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\",\"args\":[]}",
                        REC("admin/m:g", "action", "internal", "f"), NULL};
    cvx_err_t err;
    if (load_records(ok, NULL, &err)) fail_msg("%s", err.msg);
}

static void test_load_schema(void **state) {
    const char *rec[] = {REC("m:f", "query", "public", "f"), NULL};
    static const struct {
        const char *schema, *msg;
    } bad[] = {
        {"{\"abi\":1,", "schema record is not valid JSON"},
        {"{\"abi\":1}", "schema record lacks a \"tables\" array"},
        {"{\"abi\":1,\"tables\":{}}", "lacks a \"tables\" array"},
        {"[]", "lacks a \"tables\" array"},
        {"{\"tables\":[{\"name\":\"\"}]}", "schema table 0 has an invalid name"},
        {"{\"tables\":[{\"name\":\"_system\"}]}", "schema table 0 has an invalid name"},
        {"{\"tables\":[{\"name\":\"has space\"}]}", "schema table 0 has an invalid name"},
        {"{\"tables\":[7]}", "schema table 0 has an invalid name"},
        {"{\"tables\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "schema declares table \"a\" twice"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"name\":\"i\",\"fields\":[]}]}]}",
         "schema index 0 of table \"a\" needs a name and 1..16 fields"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"fields\":[\"x\"]}]}]}", "needs a name and 1..16 fields"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"name\":\"i\",\"fields\":\"x\"}]}]}", "needs a name"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"name\":\"i\",\"fields\":[\"a\",\"b\",\"c\",\"d\",\"e\","
         "\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}]}]}",
         "1..16 fields"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"name\":\"by_id\",\"fields\":[\"x\"]}]}]}",
         "index name \"by_id\" on table \"a\" is reserved"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"name\":\"by_creation_time\",\"fields\":[\"x\"]}]}]}",
         "is reserved"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"name\":\"i\",\"fields\":[1]}]}]}",
         "index \"i\" on table \"a\" has a non-string field"},
        {"{\"tables\":[{\"name\":\"a\",\"indexes\":[{\"name\":\"i\",\"fields\":[\"\"]}]}]}", "non-string field"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad); i++) expect_load_error(rec, bad[i].schema, bad[i].msg);

    /* Two schema records. */
    cvx_buf_t fn = {0}, sch = {0};
    frame(&fn, rec[0]);
    frame(&sch, "{\"tables\":[]}");
    frame(&sch, "{\"tables\":[]}");
    cvx_err_t err;
    assert_int_equal(load_raw(SIMPLE_WAT, fn.data, fn.len, sch.data, sch.len, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "module declares more than one schema");
    cvx_buf_free(&fn);
    cvx_buf_free(&sch);
}

/* A good module: functions sorted and found, the schema's tables, the
 * metadata JSON. */
static void test_load_good(void **state) {
    cvx_buf_t wasm = {0}, fn = {0}, sch = {0};
    compile_wat(SIMPLE_WAT, &wasm);
    frame(&fn, "{\"abi\":1,\"path\":\"users:get\",\"kind\":\"query\",\"visibility\":\"public\",\"export\":\"f\","
               "\"args\":[{\"name\":\"id\",\"type\":{\"type\":\"string\"}}],\"returns\":{\"type\":\"any\"},"
               "\"file\":\"src/users.rs\",\"line\":12}");
    frame(&fn, REC("admin/users:purge", "action", "internal", "g"));
    frame(&fn, REC("m:default", "mutation", "public", "g"));
    add_custom(&wasm, "cvx.fn", fn.data, fn.len);
    frame(&sch, "{\"abi\":1,\"tables\":[{\"name\":\"users\",\"fields\":null,\"indexes\":[{\"name\":\"by_email\","
                "\"fields\":[\"email\"]},{\"name\":\"by_age_name\",\"fields\":[\"age\",\"name.first\"]}]},"
                "{\"name\":\"posts\"}],\"strict\":false}");
    add_custom(&wasm, "cvx.schema", sch.data, sch.len);
    cvx_app_t *app;
    cvx_err_t err;
    if (cvx_app_load(g_engine, (const uint8_t *)wasm.data, wasm.len, &app, &err)) fail_msg("%s", err.msg);
    const cvx_fn_t *fns;
    assert_int_equal(cvx_app_functions(app, &fns), 3);
    assert_string_equal(fns[0].path, "admin/users:purge");
    assert_string_equal(fns[0].module, "admin/users");
    assert_string_equal(fns[0].name, "purge");
    assert_true(fns[0].internal);
    assert_int_equal(fns[0].kind, CVX_KIND_ACTION);
    assert_string_equal(fns[1].path, "m:default");
    assert_string_equal(fns[2].path, "users:get");
    assert_string_equal(fns[2].file, "src/users.rs");
    assert_int_equal(fns[2].line, 12);
    assert_false(fns[2].internal);
    assert_string_equal(fns[2].export_name, "f");
    tu_assert_contains(fns[2].meta_json, "\"path\":\"users:get\"");
    assert_ptr_equal(cvx_app_find(app, "users:get", 9), &fns[2]);
    assert_ptr_equal(cvx_app_find(app, "users.js:get", 12), &fns[2]);
    assert_ptr_equal(cvx_app_find(app, "m", 1), &fns[1]);
    assert_null(cvx_app_find(app, "users:nope", 10));
    assert_null(cvx_app_find(app, "", 0));
    char longpath[1000];
    memset(longpath, 'a', sizeof longpath);
    assert_null(cvx_app_find(app, longpath, sizeof longpath));
    const cvx_table_def_t *tables;
    assert_int_equal(cvx_app_tables(app, &tables), 2);
    assert_string_equal(tables[0].name, "users");
    assert_int_equal(tables[0].nindexes, 2);
    assert_string_equal(tables[0].indexes[1].name, "by_age_name");
    assert_int_equal(tables[0].indexes[1].nfields, 2);
    assert_string_equal(tables[0].indexes[1].fields[1], "name.first");
    assert_int_equal(tables[1].nindexes, 0);
    assert_non_null(cvx_app_schema(app));
    const char *meta = cvx_app_metadata_json(app);
    tu_assert_contains(meta, "{\"functions\":[{");
    tu_assert_contains(meta, "\"schema\":{");
    tu_assert_contains(meta, cvx_app_hash(app));
    /* The metadata is one valid JSON document. */
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *v;
    assert_int_equal(cvx_json_parse(a, meta, strlen(meta), &v, &err), CVX_OK);
    assert_int_equal(cvx_obj_get_cstr(v, "functions")->u.arr.len, 3);
    cvx_arena_free(a);
    cvx_app_retain(app);
    cvx_app_release(app);
    cvx_app_release(app);
    cvx_app_release(NULL);
    cvx_buf_free(&wasm);
    cvx_buf_free(&fn);
    cvx_buf_free(&sch);
}

/* "line" comes from the module: any number must give a sane line. */
static void test_load_line_numbers(void **state) {
    static const struct {
        const char *line;
        int64_t want;
    } cases[] = {{"12", 12}, {"12.7", 12}, {"1e300", 0}, {"-1e300", 0}, {"-3", 0}, {"0", 0},
                 {"{\"$integer\":\"BwAAAAAAAAA=\"}", 7}, {"{\"$integer\":\"/////////38=\"}", 0},
                 {"{\"$float\":\"AAAAAAAA+H8=\"}", 0}, {"\"5\"", 0}};
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_buf_t wasm = {0}, fn = {0}, rec = {0};
        compile_wat(SIMPLE_WAT, &wasm);
        cvx_buf_printf(&rec, "{\"abi\":1,\"path\":\"m:f\",\"kind\":\"query\",\"export\":\"f\",\"args\":[],\"line\":%s}",
                       cases[i].line);
        frame(&fn, rec.data);
        add_custom(&wasm, "cvx.fn", fn.data, fn.len);
        cvx_app_t *app;
        cvx_err_t err;
        if (cvx_app_load(g_engine, (const uint8_t *)wasm.data, wasm.len, &app, &err)) fail_msg("%s", err.msg);
        const cvx_fn_t *fns;
        assert_int_equal(cvx_app_functions(app, &fns), 1);
        if (fns[0].line != cases[i].want)
            fail_msg("line %s: got %lld, want %lld", cases[i].line, (long long)fns[0].line, (long long)cases[i].want);
        cvx_app_release(app);
        cvx_buf_free(&wasm);
        cvx_buf_free(&fn);
        cvx_buf_free(&rec);
    }
}

/* ---- bad pointers -------------------------------------------------------------------- */

typedef struct {
    const char *module, *name, *sig;
    const char *args; /* printf: %1$d = ptr, %2$d = len */
    int fixed;        /* > 0: the range has this fixed size (len is not the guest's) */
} hostptr_t;

#define C1 "cvx_1"
#define WS "wasi_snapshot_preview1"
static const hostptr_t hostptrs[] = {
    {C1, "__convex_read", "(param i32 i32) (result i32)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_output", "(param i32 i32 i32) (result i32)", "(i32.const 0) (i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_panic", "(param i32 i32) (result i32)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_log", "(param i32 i32 i32) (result i32)", "(i32.const 1) (i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_random_bytes", "(param i32 i32) (result i32)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_db_get", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_db_insert", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_db_patch", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_db_replace", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_db_delete", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_db_query", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_db_count", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_http_fetch", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_run_query", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_run_mutation", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {C1, "__convex_run_action", "(param i32 i32) (result i64)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {WS, "random_get", "(param i32 i32) (result i32)", "(i32.const %1$d) (i32.const %2$d)", 0},
    {WS, "clock_time_get", "(param i32 i64 i32) (result i32)", "(i32.const 0) (i64.const 1) (i32.const %1$d)", 8},
    {WS, "clock_res_get", "(param i32 i32) (result i32)", "(i32.const 0) (i32.const %1$d)", 8},
    {WS, "environ_sizes_get", "(param i32 i32) (result i32)", "(i32.const %1$d) (i32.const 200)", 4},
    {WS, "environ_sizes_get", "(param i32 i32) (result i32)", "(i32.const 200) (i32.const %1$d)", 4},
    {WS, "args_sizes_get", "(param i32 i32) (result i32)", "(i32.const %1$d) (i32.const 200)", 4},
    {WS, "args_sizes_get", "(param i32 i32) (result i32)", "(i32.const 200) (i32.const %1$d)", 4},
    {WS, "fd_write", "(param i32 i32 i32 i32) (result i32)", "(i32.const 1) (i32.const %1$d) (i32.const 1) (i32.const 0)",
     8},
    {WS, "fd_write", "(param i32 i32 i32 i32) (result i32)",
     "(i32.const 1) (i32.const 300) (i32.const 0) (i32.const %1$d)", 4},
};

static void check_bad_pointer(const hostptr_t *h, cvx_app_t *app, const char *export_name, cvx_kind_t kind,
                              long long ptr, long long len) {
    cvx_abi_result_t r = {0};
    int rc = run(app, export_name, kind, NULL, &r);
    char range[96], what[160];
    snprintf(range, sizeof range, "pointer range [%lld, %lld) is outside guest memory (size 65536)", ptr, ptr + len);
    snprintf(what, sizeof what, "function trapped: %s: %s", h->name, range);
    if (rc != CVX_E_TRAP || !strstr(msg_of(&r), what))
        fail_msg("%s.%s(ptr %lld, len %lld) in a %s: expected TRAP \"%s\", got %s \"%s\"", h->module, h->name, ptr,
                 len, cvx_kind_name(kind), what, cvx_code_name(rc), msg_of(&r));
    cvx_abi_result_free(&r);
    assert_healthy(app);
}

/* The (ptr, len) of variant v for host function h. */
static size_t variants(const hostptr_t *h, size_t v, int32_t *ptr, int32_t *len) {
    static const struct {
        int32_t ptr, len;
    } var[] = {{0x7fffffff, 2}, {16, -1}, {65535, 2}, {0, 0x7fffffff}, {-8, 4}, {65537, 0}};
    if (!h->fixed) {
        if (ptr) *ptr = var[v].ptr, *len = var[v].len;
        return CVX_ARRAY_LEN(var);
    }
    /* Fixed-size ranges: far away, negative, one byte past the end, at the end. */
    const int32_t fixed_ptrs[] = {0x7fffffff, -4, 65536 - h->fixed + 1, 65536};
    if (ptr) *ptr = fixed_ptrs[v], *len = h->fixed;
    return CVX_ARRAY_LEN(fixed_ptrs);
}

static void test_bad_pointers(void **state) {
    size_t checked = 0;
    for (size_t i = 0; i < CVX_ARRAY_LEN(hostptrs); i++) {
        const hostptr_t *h = &hostptrs[i];
        cvx_buf_t imports = {0}, body = {0};
        cvx_buf_printf(&imports, "(import \"%s\" \"%s\" (func $h %s))\n", h->module, h->name, h->sig);
        size_t nvariants = variants(h, 0, NULL, NULL);
        for (size_t v = 0; v < nvariants; v++) {
            int32_t ptr, len;
            variants(h, v, &ptr, &len);
            cvx_buf_printf(&body, "(func (export \"bad%zu\") (param i32) (result i32)\n  (drop (call $h ", v);
            cvx_buf_printf(&body, h->args, ptr, len);
            cvx_buf_append_str(&body, "))\n  (i32.const 0))\n");
        }
        cvx_app_t *app = guest(imports.data, body.data);
        for (size_t v = 0; v < nvariants; v++) {
            int32_t ptr, len;
            variants(h, v, &ptr, &len);
            char name[32];
            snprintf(name, sizeof name, "bad%zu", v);
            /* Every kind: the bounds check comes before any permission check. */
            cvx_kind_t kind = (cvx_kind_t)(1 + v % 3);
            check_bad_pointer(h, app, name, kind, ptr, len);
            checked++;
        }
        cvx_app_release(app);
        cvx_buf_free(&imports);
        cvx_buf_free(&body);
    }
    assert_int_equal(checked, 17 * 6 + 8 * 4);
}

/* fd_write's iovecs: a bad pointer inside an iovec, a negative length in
 * one, and an iovec count that is not a range at all. */
static void test_fd_write_pointers(void **state) {
    cvx_app_t *app = guest(
        "(import \"wasi_snapshot_preview1\" \"fd_write\" (func $fd_write (param i32 i32 i32 i32) (result i32)))\n",
        "(data (i32.const 100) \"hi\\n\")\n"
        ";; iov[0] = {ptr, len} at 300, nwritten at 320\n"
        "(func $w (param $p i32) (param $l i32) (result i32)\n"
        "  (i32.store (i32.const 300) (local.get $p)) (i32.store (i32.const 304) (local.get $l))\n"
        "  (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 320)))\n"
        "(func (export \"iov_far\") (param i32) (result i32) (drop (call $w (i32.const 0x7ffffff0) (i32.const 3)))"
        " (i32.const 0))\n"
        "(func (export \"iov_neg\") (param i32) (result i32) (drop (call $w (i32.const 100) (i32.const -1)))"
        " (i32.const 0))\n"
        "(func (export \"iov_end\") (param i32) (result i32) (drop (call $w (i32.const 65530) (i32.const 7)))"
        " (i32.const 0))\n"
        ";; the second of two iovecs is bad: the first one's text is not lost\n"
        "(func (export \"iov_second\") (param i32) (result i32)\n"
        "  (i32.store (i32.const 308) (i32.const -5)) (i32.store (i32.const 312) (i32.const 10))\n"
        "  (i32.store (i32.const 300) (i32.const 100)) (i32.store (i32.const 304) (i32.const 3))\n"
        "  (drop (call $fd_write (i32.const 2) (i32.const 300) (i32.const 2) (i32.const 320))) (i32.const 0))\n"
        ";; counts are not ranges: a negative or huge count is EINVAL (28), no trap\n"
        "(func (export \"count_neg\") (param i32) (result i32)\n"
        "  (call $fd_write (i32.const 1) (i32.const 300) (i32.const -1) (i32.const 320)))\n"
        "(func (export \"count_big\") (param i32) (result i32)\n"
        "  (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1025) (i32.const 320)))\n"
        ";; fd 0 and fd 3 are EBADF (8) whatever the pointers\n"
        "(func (export \"fd3\") (param i32) (result i32)\n"
        "  (call $fd_write (i32.const 3) (i32.const -1) (i32.const 1) (i32.const -1)))\n"
        "(func (export \"fd0\") (param i32) (result i32)\n"
        "  (call $fd_write (i32.const 0) (i32.const 300) (i32.const 1) (i32.const 320)))\n"
        ";; writes \"hi\\n\", then outputs nwritten as hex\n"
        "(func (export \"good\") (param i32) (result i32)\n"
        "  (drop (call $w (i32.const 100) (i32.const 3))) (call $hexout (i32.const 320) (i32.const 4)) (i32.const 0))\n");
    static const struct {
        const char *fn, *range;
    } traps[] = {
        {"iov_far", "[2147483632, 2147483635)"},
        {"iov_neg", "[100, 99)"},
        {"iov_end", "[65530, 65537)"},
        {"iov_second", "[-5, 5)"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(traps); i++) {
        cvx_abi_result_t r = {0};
        int rc = run(app, traps[i].fn, CVX_KIND_QUERY, NULL, &r);
        expect(rc, &r, CVX_E_TRAP);
        tu_assert_contains(msg_of(&r), "function trapped: fd_write: pointer range ");
        tu_assert_contains(msg_of(&r), traps[i].range);
        if (strcmp(traps[i].fn, "iov_second") == 0) tu_assert_contains(logs_of(&r), "[ERROR] hi");
        cvx_abi_result_free(&r);
        assert_healthy(app);
    }
    static const struct {
        const char *fn;
        int errno_;
    } errs[] = {{"count_neg", 28}, {"count_big", 28}, {"fd3", 8}, {"fd0", 8}};
    for (size_t i = 0; i < CVX_ARRAY_LEN(errs); i++) {
        cvx_abi_result_t r = {0};
        int rc = run(app, errs[i].fn, CVX_KIND_QUERY, NULL, &r);
        expect(rc, &r, CVX_E_UNCAUGHT);
        char want[64];
        snprintf(want, sizeof want, "function returned status %d", errs[i].errno_);
        tu_assert_contains(msg_of(&r), want);
        cvx_abi_result_free(&r);
    }
    cvx_abi_result_t r = {0};
    expect(run(app, "good", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "\"03000000\"");
    assert_string_equal(logs_of(&r), "[\"[LOG] hi\"]");
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

/* ---- the list of host functions (src/abi/host_fns.def) ----------------------------------------------------- */

/* Every entry as these tests see it: a letter per parameter (p a pointer,
 * l the length of the range it follows, i a number; all wasm i32) and the
 * result's WAT type. Nothing here repeats the list: a new entry is linked,
 * signature-checked and bounds-checked by the tests below as it is. */
typedef struct {
    const char *name;   /* the import, "__convex_read" */
    const char *params; /* "pl" */
    const char *result; /* "i32" */
} deffn_t;

#define IN(p) "p"
#define OUT(p) "p"
#define LEN(p) "l"
#define I32(p) "i"
#define DEF_ID(x) x
#define DEF_RESULT_I32 "i32"
#define DEF_RESULT_I64 "i64"
#define DEF_RESULT_F64 "f64"
#define CVX_HOSTFN(name, params, result, doc) {"__convex_" #name, "" DEF_ID params, DEF_RESULT_##result},
static const deffn_t def_fns[] = {
#include "abi/host_fns.def"
};
#undef CVX_HOSTFN
#undef IN
#undef OUT
#undef LEN
#undef I32

/* "(param i32 i32) (result i64)", with `extra` more i32 parameters and
 * the result `result` (NULL: the entry's own). */
static void def_wat_type(const deffn_t *f, int extra, const char *result, cvx_buf_t *out) {
    cvx_buf_reset(out);
    size_t n = strlen(f->params) + (size_t)extra;
    if (n) cvx_buf_append_str(out, "(param");
    for (size_t i = 0; i < n; i++) cvx_buf_append_str(out, " i32");
    cvx_buf_printf(out, "%s(result %s)", n ? ") " : "", result ? result : f->result);
}

/* The type as the wasm layer words it: "(i32, i32) -> (i64)". */
static void def_sig_text(const deffn_t *f, int extra, const char *result, cvx_buf_t *out) {
    cvx_buf_reset(out);
    cvx_buf_append_char(out, '(');
    size_t n = strlen(f->params) + (size_t)extra;
    for (size_t i = 0; i < n; i++) cvx_buf_append_str(out, i ? ", i32" : "i32");
    cvx_buf_printf(out, ") -> (%s)", result ? result : f->result);
}

/* Loads a guest importing `imports` and expects BAD_MODULE with exactly `msg`. */
static void expect_import_refused(const char *imports, const char *msg) {
    cvx_buf_t wasm = {0};
    guest_wasm(imports, NULL, &wasm);
    cvx_app_t *app = NULL;
    cvx_err_t err;
    int rc = cvx_app_load(g_engine, (const uint8_t *)wasm.data, wasm.len, &app, &err);
    if (rc == CVX_OK) cvx_app_release(app);
    if (rc != CVX_E_BAD_MODULE || strcmp(err.msg, msg) != 0)
        fail_msg("%s\nexpected BAD_MODULE \"%s\", got %s \"%s\"", imports, msg, cvx_code_name(rc),
                 rc ? err.msg : "");
    cvx_buf_free(&wasm);
}

/* The host links exactly the list, with its signatures: the table host.c
 * builds from it, a guest importing all of it, and a guest importing any
 * entry with another type or under another name. */
static void test_host_fns_linked(void **state) {
    assert_int_equal(cvx__abi_nhostfns, CVX_ARRAY_LEN(def_fns));
    cvx_buf_t imports = {0}, type = {0}, host = {0}, wrong = {0}, msg = {0}, doc = {0};
    tu_read(CVX_TEST_SOURCE_DIR "/docs/abi.md", &doc);
    for (size_t i = 0; i < CVX_ARRAY_LEN(def_fns); i++) {
        const deffn_t *f = &def_fns[i];
        const cvx_hostfn_t *h = &cvx__abi_hostfns[i];
        assert_string_equal(h->module, "cvx_1");
        assert_string_equal(h->name, f->name);
        assert_int_equal(strlen(h->params), strlen(f->params));
        assert_true(strspn(h->params, "i") == strlen(h->params));
        const char *results = strcmp(f->result, "i32") == 0 ? "i" : strcmp(f->result, "i64") == 0 ? "I" : "F";
        assert_string_equal(h->results, results);
        /* A pointer always comes with its length right after it, and a
         * length only after its pointer. */
        for (size_t k = 0; f->params[k]; k++)
            if ((f->params[k] == 'p' && f->params[k + 1] != 'l') ||
                (f->params[k] == 'l' && (k == 0 || f->params[k - 1] != 'p')))
                fail_msg("%s: a pointer must be followed by its length (%s)", f->name, f->params);
        /* Documented for guest authors. */
        cvx_buf_reset(&msg);
        cvx_buf_printf(&msg, "`%s`", f->name);
        if (!strstr(doc.data, msg.data)) fail_msg("docs/abi.md does not describe %s", f->name);

        def_wat_type(f, 0, NULL, &type);
        cvx_buf_printf(&imports, "(import \"cvx_1\" \"%s\" (func $def%zu %s))\n", f->name, i, type.data);
        /* One parameter too many, and the other result type. */
        def_sig_text(f, 0, NULL, &host);
        for (int v = 0; v < 2; v++) {
            const char *result = v == 0 ? NULL : strcmp(f->result, "i64") == 0 ? "i32" : "i64";
            def_wat_type(f, v == 0, result, &type);
            def_sig_text(f, v == 0, result, &wrong);
            cvx_buf_reset(&msg);
            cvx_buf_printf(&msg, "(import \"cvx_1\" \"%s\" (func %s))\n", f->name, type.data);
            cvx_buf_t want = {0};
            cvx_buf_printf(&want, "import cvx_1.%s has type %s but the host provides %s", f->name, wrong.data,
                           host.data);
            expect_import_refused(msg.data, want.data);
            cvx_buf_free(&want);
        }
    }
    /* All of them at once, each with its type, load. */
    cvx_app_release(guest(imports.data, NULL));
    /* The import name is "__convex_" and the entry's name, in cvx_1 only. */
    expect_import_refused("(import \"cvx_1\" \"db_get\" (func (param i32 i32) (result i64)))\n",
                          "unknown import cvx_1.db_get: the host provides no such function");
    expect_import_refused("(import \"wasi_snapshot_preview1\" \"__convex_db_get\"\n"
                          "  (func (param i32 i32) (result i64)))\n",
                          "unknown import wasi_snapshot_preview1.__convex_db_get: the host provides no such function");
    cvx_buf_free(&imports);
    cvx_buf_free(&type);
    cvx_buf_free(&host);
    cvx_buf_free(&wrong);
    cvx_buf_free(&msg);
    cvx_buf_free(&doc);
}

/* Every pointer range of every entry is bounds-checked, with a trap naming
 * the function: the first range before anything else, so in every kind
 * (as test_bad_pointers checks by hand for some); a later one in an action,
 * where every function reads all of its ranges. The other arguments are
 * valid: numbers 0, other ranges "{}" at 200. */
static void test_bad_pointers_every_host_fn(void **state) {
    const size_t nvariants = variants(&(hostptr_t){0}, 0, NULL, NULL);
    size_t checked = 0, nranges = 0;
    for (size_t i = 0; i < CVX_ARRAY_LEN(def_fns); i++) {
        const deffn_t *f = &def_fns[i];
        if (!strchr(f->params, 'p')) continue;
        hostptr_t h = {C1, f->name, NULL, NULL, 0};
        cvx_buf_t imports = {0}, body = {0}, type = {0};
        def_wat_type(f, 0, NULL, &type);
        cvx_buf_printf(&imports, "(import \"cvx_1\" \"%s\" (func $h %s))\n", f->name, type.data);
        cvx_buf_append_str(&body, "(data (i32.const 200) \"{}\")\n");
        for (size_t bad = 0; f->params[bad]; bad++) {
            if (f->params[bad] != 'p') continue;
            for (size_t v = 0; v < nvariants; v++) {
                int32_t ptr, len;
                variants(&h, v, &ptr, &len);
                cvx_buf_printf(&body, "(func (export \"bad%zu_%zu\") (param i32) (result i32)\n  (drop (call $h",
                               bad, v);
                for (size_t a = 0; f->params[a]; a++) {
                    if (f->params[a] == 'i') cvx_buf_append_str(&body, " (i32.const 0)");
                    else if (f->params[a] == 'p')
                        cvx_buf_printf(&body, " (i32.const %d) (i32.const %d)", a == bad ? ptr : 200,
                                       a == bad ? len : 2);
                }
                cvx_buf_append_str(&body, "))\n  (i32.const 0))\n");
            }
        }
        cvx_app_t *app = guest(imports.data, body.data);
        for (size_t bad = 0, nth = 0; f->params[bad]; bad++) {
            if (f->params[bad] != 'p') continue;
            for (size_t v = 0; v < nvariants; v++) {
                int32_t ptr, len;
                variants(&h, v, &ptr, &len);
                char name[48];
                snprintf(name, sizeof name, "bad%zu_%zu", bad, v);
                cvx_kind_t kind = nth == 0 ? (cvx_kind_t)(1 + v % 3) : CVX_KIND_ACTION;
                check_bad_pointer(&h, app, name, kind, ptr, len);
                checked++;
            }
            nth++;
            nranges++;
        }
        cvx_app_release(app);
        cvx_buf_free(&imports);
        cvx_buf_free(&body);
        cvx_buf_free(&type);
    }
    assert_int_equal(checked, nranges * nvariants);
    assert_true(nranges > 0);
}

/* ---- the call protocol ------------------------------------------------------------------ */

/* Appends (data (i32.const off) "<bytes>\00") with every byte escaped. */
static void data_seg(cvx_buf_t *b, int off, const char *s, size_t n) {
    cvx_buf_printf(b, "(data (i32.const %d) \"", off);
    for (size_t i = 0; i < n; i++) cvx_buf_printf(b, "\\%02x", (unsigned char)s[i]);
    cvx_buf_append_str(b, "\\00\")\n");
}
#define DATA(b, off, s) data_seg(b, off, s, strlen(s))

/* Helpers over NUL-terminated strings in guest memory. */
#define STR_HELPERS                                                                                                \
    "(func $strlen (param $p i32) (result i32) (local $n i32)\n"                                                   \
    "  (block $d (loop $l (br_if $d (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))\n"           \
    "    (local.set $n (i32.add (local.get $n) (i32.const 1))) (br $l)))\n"                                       \
    "  (local.get $n))\n"                                                                                          \
    "(func $out (param $kind i32) (param $p i32)\n"                                                                \
    "  (drop (call $output (local.get $kind) (local.get $p) (call $strlen (local.get $p)))))\n"                   \
    "(func $say (param $level i32) (param $p i32)\n"                                                               \
    "  (drop (call $log (local.get $level) (local.get $p) (call $strlen (local.get $p)))))\n"

static void test_protocol(void **state) {
    cvx_buf_t b = {0};
    DATA(&b, 100, "1");
    DATA(&b, 110, "2");
    DATA(&b, 120, "{\"message\":\"x\"}");
    DATA(&b, 140, "{nope");
    DATA(&b, 150, "{\"message\":\"boom\",\"data\":{\"code\":1,\"tags\":[\"a\"]}}");
    DATA(&b, 210, "{\"message\":\"plain failure\"}");
    DATA(&b, 240, "\"just a string\"");
    DATA(&b, 260, "{\"data\":5}");
    DATA(&b, 280, "{\"big\":{\"$integer\":\"AQAAAAAAAAA=\"},\"b\":{\"$bytes\":\"aGk=\"},\"s\":\"\\u00e9\"}");
    cvx_buf_append_str(&b, STR_HELPERS);
    cvx_buf_append_str(
        &b,
        "(func (export \"twice\") (param $n i32) (result i32) (call $args (local.get $n))\n"
        "  (call $out (i32.const 0) (i32.const 100)) (call $out (i32.const 0) (i32.const 110)) (i32.const 0))\n"
        "(func (export \"err_then_ok\") (param $n i32) (result i32)\n"
        "  (call $out (i32.const 1) (i32.const 120)) (call $out (i32.const 0) (i32.const 100)) (i32.const 0))\n"
        "(func (export \"ok_then_err\") (param $n i32) (result i32)\n"
        "  (call $out (i32.const 0) (i32.const 100)) (call $out (i32.const 1) (i32.const 120)) (i32.const 0))\n"
        "(func (export \"none\") (param $n i32) (result i32) (call $args (local.get $n)) (i32.const 0))\n"
        "(func (export \"badjson\") (param $n i32) (result i32) (call $out (i32.const 0) (i32.const 140)) (i32.const 0))\n"
        "(func (export \"empty\") (param $n i32) (result i32)\n"
        "  (drop (call $output (i32.const 0) (i32.const 100) (i32.const 0))) (i32.const 0))\n"
        "(func (export \"values\") (param $n i32) (result i32) (call $out (i32.const 0) (i32.const 280)) (i32.const 0))\n"
        "(func (export \"appdata\") (param $n i32) (result i32) (call $out (i32.const 1) (i32.const 150)) (i32.const 0))\n"
        "(func (export \"plainerr\") (param $n i32) (result i32) (call $out (i32.const 1) (i32.const 210)) (i32.const 0))\n"
        "(func (export \"errnotobj\") (param $n i32) (result i32) (call $out (i32.const 1) (i32.const 240)) (i32.const 0))\n"
        "(func (export \"errnotjson\") (param $n i32) (result i32) (call $out (i32.const 1) (i32.const 140)) (i32.const 0))\n"
        "(func (export \"errnomsg\") (param $n i32) (result i32) (call $out (i32.const 1) (i32.const 260)) (i32.const 0))\n"
        "(func (export \"badkind\") (param $n i32) (result i32)\n"
        "  (drop (call $output (i32.const 2) (i32.const 100) (i32.const 1))) (i32.const 0))\n"
        "(func (export \"status3\") (param $n i32) (result i32) (call $out (i32.const 0) (i32.const 100)) (i32.const 3))\n"
        "(func (export \"readwrong\") (param $n i32) (result i32)\n"
        "  (drop (call $read (i32.const 1024) (i32.add (local.get $n) (i32.const 3)))) (i32.const 0))\n"
        "(func (export \"readshort\") (param $n i32) (result i32)\n"
        "  (drop (call $read (i32.const 1024) (i32.sub (local.get $n) (i32.const 1)))) (i32.const 0))\n"
        ";; status = the pending length before reading (the args' length)\n"
        "(func (export \"pending\") (param $n i32) (result i32) (call $pending_len))\n"
        ";; read the args, then: read returned n, nothing pending, a 0-byte read works\n"
        "(func (export \"readback\") (param $n i32) (result i32)\n"
        "  (if (i32.ne (call $read (i32.const 1024) (local.get $n)) (local.get $n)) (then (return (i32.const 91))))\n"
        "  (if (i32.ne (call $pending_len) (i32.const 0)) (then (return (i32.const 92))))\n"
        "  (if (i32.ne (call $read (i32.const 1024) (i32.const 0)) (i32.const 0)) (then (return (i32.const 93))))\n"
        "  (drop (call $output (i32.const 0) (i32.const 1024) (local.get $n))) (i32.const 0))\n");
    cvx_app_t *app = guest(NULL, b.data);
    cvx_abi_result_t r = {0};

    expect(run(app, "twice", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "2"); /* the last output wins */
    expect(run(app, "err_then_ok", CVX_KIND_MUTATION, NULL, &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "1");
    expect(run(app, "ok_then_err", CVX_KIND_MUTATION, NULL, &r), &r, CVX_E_UNCAUGHT);
    assert_string_equal(msg_of(&r), "Uncaught Error: x");
    expect(run(app, "none", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_UNCAUGHT);
    assert_string_equal(msg_of(&r), "Uncaught Error: function m:none returned no result");
    expect(run(app, "badjson", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_INVALID_VALUE);
    tu_assert_contains(msg_of(&r), "function returned an invalid value: ");
    expect(run(app, "empty", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_INVALID_VALUE);
    expect(run(app, "values", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    tu_assert_contains(value_of(&r), "{\"$integer\":\"AQAAAAAAAAA=\"}");

    expect(run(app, "appdata", CVX_KIND_ACTION, NULL, &r), &r, CVX_E_APPLICATION);
    assert_string_equal(msg_of(&r), "boom");
    assert_true(r.has_data);
    assert_string_equal(r.data.data, "{\"code\":1,\"tags\":[\"a\"]}");
    expect(run(app, "plainerr", CVX_KIND_ACTION, NULL, &r), &r, CVX_E_UNCAUGHT);
    assert_string_equal(msg_of(&r), "Uncaught Error: plain failure");
    assert_false(r.has_data);
    expect(run(app, "errnotobj", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_UNCAUGHT);
    assert_string_equal(msg_of(&r), "Uncaught Error: function returned a malformed error: the error must be an "
                                    "object {\"message\": string, \"data\"?: value}");
    expect(run(app, "errnotjson", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_UNCAUGHT);
    tu_assert_contains(msg_of(&r), "Uncaught Error: function returned a malformed error: ");
    expect(run(app, "errnomsg", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_APPLICATION);
    assert_string_equal(r.data.data, "5");
    expect(run(app, "badkind", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_TRAP);
    tu_assert_contains(msg_of(&r), "__convex_output: unknown kind 2");
    expect(run(app, "status3", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_UNCAUGHT);
    assert_string_equal(msg_of(&r), "Uncaught Error: function returned status 3");

    expect(run(app, "readwrong", CVX_KIND_QUERY, "{\"a\":1}", &r), &r, CVX_E_TRAP);
    tu_assert_contains(msg_of(&r), "__convex_read: asked for 10 bytes but 7 are pending");
    expect(run(app, "readshort", CVX_KIND_QUERY, "{\"a\":1}", &r), &r, CVX_E_TRAP);
    tu_assert_contains(msg_of(&r), "__convex_read: asked for 6 bytes but 7 are pending");
    expect(run(app, "pending", CVX_KIND_QUERY, "{\"abc\":true}", &r), &r, CVX_E_UNCAUGHT);
    assert_string_equal(msg_of(&r), "Uncaught Error: function returned status 12");
    expect(run(app, "readback", CVX_KIND_QUERY, "{\"round\":[1,\"trip\",null]}", &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "{\"round\":[1,\"trip\",null]}");
    /* Zero-length arguments. */
    cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_QUERY);
    const cvx_fn_t *fn = cvx_app_find(app, "m:pending", 9);
    expect(cvx_abi_invoke(app, fn, &cfg, &g_limits, "", 0, &r), &r, CVX_E_UNCAUGHT);
    tu_assert_contains(msg_of(&r), "no result");
    assert_healthy(app);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
    cvx_buf_free(&b);
}

static void test_panics_and_exit(void **state) {
    cvx_buf_t b = {0};
    DATA(&b, 100, "{\"message\":\"it broke\",\"file\":\"src/lib.rs\",\"line\":7,\"column\":9}");
    DATA(&b, 200, "{\"message\":\"no file\"}");
    DATA(&b, 240, "{\"message\":\"out of memory\",\"kind\":\"oom\",\"size\":1048576}");
    DATA(&b, 300, "\xff not json");
    DATA(&b, 320, "1");
    cvx_buf_append_str(&b, STR_HELPERS);
    cvx_buf_append_str(
        &b, "(func $p (param $at i32) (drop (call $panic (local.get $at) (call $strlen (local.get $at)))))\n"
            "(func (export \"panic\") (param i32) (result i32) (call $p (i32.const 100)) unreachable)\n"
            "(func (export \"panic_nofile\") (param i32) (result i32) (call $p (i32.const 200)) unreachable)\n"
            "(func (export \"panic_oom\") (param i32) (result i32) (call $p (i32.const 240)) unreachable)\n"
            "(func (export \"panic_garbage\") (param i32) (result i32) (call $p (i32.const 300)) unreachable)\n"
            ";; a panic record followed by a normal return is not a failure\n"
            "(func (export \"panic_recovered\") (param i32) (result i32) (call $p (i32.const 100))\n"
            "  (call $out (i32.const 0) (i32.const 320)) (i32.const 0))\n"
            ";; a panic record, then a limit: the limit is reported\n"
            "(func (export \"panic_then_spin\") (param i32) (result i32) (call $p (i32.const 100))\n"
            "  (loop $l (br $l)) (i32.const 0))\n"
            ";; a huge panic record is cut at 64 KiB (here: the 60 KiB after the data)\n"
            "(func (export \"panic_huge\") (param i32) (result i32)\n"
            "  (drop (call $panic (i32.const 1024) (i32.const 60000))) unreachable)\n"
            "(func (export \"exit3\") (param i32) (result i32) (call $exit (i32.const 3)) (i32.const 0))\n"
            "(func (export \"exit0\") (param i32) (result i32) (call $exit (i32.const 0)) (i32.const 0))\n");
    cvx_app_t *app = guest("(import \"cvx_1\" \"__convex_panic\" (func $panic (param i32 i32) (result i32)))\n"
                           "(import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n",
                           b.data);
    cvx_abi_result_t r = {0};
    expect(run(app, "panic", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_PANIC);
    assert_string_equal(msg_of(&r), "Uncaught Error: it broke\n    at m:panic (src/lib.rs:7:9)");
    expect(run(app, "panic_nofile", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_PANIC);
    assert_string_equal(msg_of(&r), "Uncaught Error: no file\n    at m:panic_nofile");
    expect(run(app, "panic_oom", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_MEMORY);
    assert_string_equal(msg_of(&r), "function exceeded its memory limit (64 MiB): allocation of 1048576 bytes failed");
    expect(run(app, "panic_garbage", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_PANIC);
    tu_assert_contains(msg_of(&r), "Uncaught Error: panic");
    expect(run(app, "panic_recovered", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "1");
    cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_QUERY);
    const cvx_fn_t *fn = cvx_app_find(app, "m:panic_then_spin", 17);
    cvx_limits_t lim = {.fuel = 1000000};
    cvx_abi_result_reset(&r);
    expect(cvx_abi_invoke(app, fn, &cfg, &lim, "{}", 2, &r), &r, CVX_E_FUEL);
    tu_assert_contains(msg_of(&r), "fuel limit (1000000 units)");
    expect(run(app, "panic_huge", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_PANIC);
    expect(run(app, "exit3", CVX_KIND_ACTION, NULL, &r), &r, CVX_E_TRAP);
    tu_assert_contains(msg_of(&r), "exit with status 3");
    expect(run(app, "exit0", CVX_KIND_ACTION, NULL, &r), &r, CVX_E_TRAP);
    tu_assert_contains(msg_of(&r), "exit with status 0");
    assert_healthy(app);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
    cvx_buf_free(&b);
}

/* ---- logs ---------------------------------------------------------------------------------- */

/* Parses r->logs (which must be valid JSON) into an array. */
static cvx_value_t *parse_logs(cvx_arena_t *a, const cvx_abi_result_t *r) {
    cvx_value_t *v;
    cvx_err_t err;
    const char *text = r->logs.len ? r->logs.data : "[]";
    if (cvx_json_parse(a, text, strlen(text), &v, &err)) fail_msg("logs are not valid JSON: %s", err.msg);
    assert_int_equal(v->type, CVX_T_ARRAY);
    assert_int_equal(v->u.arr.len, r->nlogs);
    return v;
}

/* The note that ends a log that ran out of lines, as a JSON string. */
static void line_note(char *out, size_t n, unsigned max) {
    snprintf(out, n, "[WARN] Log overflow (maximum %u). Remaining log lines omitted.", max);
}

#define BYTES_NOTE "[WARN] Log overflow (maximum 16777216 bytes). Remaining log lines omitted."

static void test_logs(void **state) {
    cvx_buf_t b = {0};
    DATA(&b, 100, "lvl");
    cvx_buf_append_str(&b, STR_HELPERS);
    cvx_buf_append_str(
        &b, "(func (export \"levels\") (param i32) (result i32)\n"
            "  (call $say (i32.const 0) (i32.const 100)) (call $say (i32.const 1) (i32.const 100))\n"
            "  (call $say (i32.const 2) (i32.const 100)) (call $say (i32.const 3) (i32.const 100))\n"
            "  (call $say (i32.const 4) (i32.const 100)) (call $say (i32.const 9) (i32.const 100))\n"
            "  (call $say (i32.const -1) (i32.const 100))\n"
            "  (drop (call $log (i32.const 0) (i32.const 100) (i32.const 0)))\n"
            "  (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n");
    cvx_app_t *app = guest(NULL, b.data);
    cvx_abi_result_t r = {0};
    expect(run(app, "levels", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_string_equal(logs_of(&r), "[\"[LOG] lvl\",\"[INFO] lvl\",\"[WARN] lvl\",\"[ERROR] lvl\",\"[DEBUG] lvl\","
                                     "\"[LOG] lvl\",\"[LOG] lvl\",\"[LOG] \"]");
    assert_int_equal(r.nlogs, 8);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
    cvx_buf_free(&b);
}

/* 256 lines per call by default, as in Convex: the 256th line of a call
 * that logs more is a WARN note, later lines are dropped, and the call
 * goes on to its result. */
static void test_log_line_limit(void **state) {
    cvx_buf_t b = {0};
    DATA(&b, 110, "x");
    cvx_buf_append_str(&b, STR_HELPERS);
    cvx_buf_append_str(
        &b, "(func $many (param $k i32) (local $i i32)\n"
            "  (block $d (loop $l (br_if $d (i32.ge_u (local.get $i) (local.get $k)))\n"
            "    (call $say (i32.const 0) (i32.const 110))\n"
            "    (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))))\n"
            "(func (export \"log4\") (param i32) (result i32) (call $many (i32.const 4)) (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n"
            "(func (export \"log5\") (param i32) (result i32) (call $many (i32.const 5)) (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n"
            "(func (export \"log255\") (param i32) (result i32) (call $many (i32.const 255)) (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n"
            "(func (export \"log300\") (param i32) (result i32) (call $many (i32.const 300)) (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n"
            ";; logs past the limit, then fails: the lines before it are kept\n"
            "(func (export \"log300_trap\") (param i32) (result i32) (call $many (i32.const 300)) unreachable)\n");
    cvx_app_t *app = guest(NULL, b.data);
    cvx_abi_result_t r = {0};
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    char note[128];
    line_note(note, sizeof note, 256);

    expect(run(app, "log255", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_int_equal(r.nlogs, 255);
    assert_false(r.log_full);
    cvx_value_t *logs = parse_logs(a, &r);
    assert_string_equal(logs->u.arr.items[254]->u.str.ptr, "[LOG] x");

    for (int k = CVX_KIND_QUERY; k <= CVX_KIND_ACTION; k++) {
        expect(run(app, "log300", (cvx_kind_t)k, NULL, &r), &r, CVX_OK);
        assert_string_equal(value_of(&r), "42");
        assert_int_equal(r.nlogs, 256);
        assert_int_equal(r.log_full, CVX_ABI_LOG_FULL_LINES);
        logs = parse_logs(a, &r);
        assert_string_equal(logs->u.arr.items[254]->u.str.ptr, "[LOG] x");
        assert_string_equal(logs->u.arr.items[255]->u.str.ptr, note);
    }
    expect(run(app, "log300_trap", CVX_KIND_MUTATION, NULL, &r), &r, CVX_E_TRAP);
    assert_int_equal(r.nlogs, 256);
    logs = parse_logs(a, &r);
    assert_string_equal(logs->u.arr.items[255]->u.str.ptr, note);

    /* The limit is configurable; the note counts as a line. */
    cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_ACTION);
    cfg.max_log_lines = 5;
    line_note(note, sizeof note, 5);
    expect(run_cfg(app, "log4", &cfg, NULL, &r), &r, CVX_OK);
    assert_string_equal(logs_of(&r), "[\"[LOG] x\",\"[LOG] x\",\"[LOG] x\",\"[LOG] x\"]");
    expect(run_cfg(app, "log5", &cfg, NULL, &r), &r, CVX_OK);
    assert_int_equal(r.nlogs, 5);
    logs = parse_logs(a, &r);
    assert_string_equal(logs->u.arr.items[3]->u.str.ptr, "[LOG] x");
    assert_string_equal(logs->u.arr.items[4]->u.str.ptr, note);
    expect(run_cfg(app, "log300", &cfg, NULL, &r), &r, CVX_OK);
    assert_int_equal(r.nlogs, 5);
    assert_string_equal(parse_logs(a, &r)->u.arr.items[4]->u.str.ptr, note);
    /* A caller's lines count too (an action's, for the calls it makes). */
    cfg.max_log_lines = 0;
    cfg.log_lines_used = 250;
    expect(run_cfg(app, "log300", &cfg, NULL, &r), &r, CVX_OK);
    assert_int_equal(r.nlogs, 6);
    line_note(note, sizeof note, 256);
    assert_string_equal(parse_logs(a, &r)->u.arr.items[5]->u.str.ptr, note);
    assert_healthy(app);
    cvx_arena_free(a);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
    cvx_buf_free(&b);
}

/* JSON size of the log array plus what the call returns: what the result
 * limit bounds. */
static size_t returned_bytes(const cvx_abi_result_t *r) {
    return r->logs.len + r->value.len + r->message.len + (r->has_data ? r->data.len : 0);
}

/* A call's logs count against the 16 MiB result limit with its value:
 * lines that would not fit end the log with a WARN note, and a value that
 * leaves too little room displaces the last lines (or all of them). */
static void test_log_bytes(void **state) {
    cvx_buf_t b = {0};
    DATA(&b, 100, "{\"message\":\"m\",\"data\":");
    cvx_buf_append_str(
        &b, "(func $lines (param $k i32) (param $byte i32) (local $i i32)\n"
            "  (memory.fill (i32.const 16384) (local.get $byte) (i32.const 32768))\n"
            "  (block $d (loop $l (br_if $d (i32.ge_u (local.get $i) (local.get $k)))\n"
            "    (drop (call $log (i32.const 0) (i32.const 16384) (i32.const 32768)))\n"
            "    (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))))\n"
            ";; a JSON string of $n bytes at 65536 (after growing memory): '\"', 'v'..., '\"'\n"
            "(func $string (param $n i32)\n"
            "  (drop (memory.grow (i32.const 260)))\n"
            "  (memory.fill (i32.const 65536) (i32.const 118) (local.get $n))\n"
            "  (i32.store8 (i32.const 65536) (i32.const 34))\n"
            "  (i32.store8 (i32.add (i32.const 65535) (local.get $n)) (i32.const 34)))\n"
            ";; 200 lines that JSON escapes to 6 times their size (byte 1 is \\u0001)\n"
            "(func (export \"escaped\") (param i32) (result i32) (call $lines (i32.const 200) (i32.const 1))\n"
            "  (drop (call $output (i32.const 0) (i32.const 16) (i32.const 2))) (i32.const 0))\n"
            ";; 255 lines of 32 KiB (8 MiB) and a 12 MiB value\n"
            "(func (export \"big_value\") (param i32) (result i32) (call $lines (i32.const 255) (i32.const 97))\n"
            "  (call $string (i32.const 12582912))\n"
            "  (drop (call $output (i32.const 0) (i32.const 65536) (i32.const 12582912))) (i32.const 0))\n"
            ";; a value of exactly the result limit leaves no room for a log line\n"
            "(func (export \"full_value\") (param i32) (result i32) (call $lines (i32.const 3) (i32.const 97))\n"
            "  (call $string (i32.const 16777216))\n"
            "  (drop (call $output (i32.const 0) (i32.const 65536) (i32.const 16777216))) (i32.const 0))\n"
            ";; an application error with 12 MiB of data: counted like a value\n"
            "(func (export \"big_error\") (param i32) (result i32) (call $lines (i32.const 255) (i32.const 97))\n"
            "  (call $string (i32.const 12582912))\n"
            "  (memory.copy (i32.const 65514) (i32.const 100) (i32.const 22))\n"
            "  (i32.store8 (i32.const 12648448) (i32.const 125))\n"
            "  (drop (call $output (i32.const 1) (i32.const 65514) (i32.const 12582935))) (i32.const 0))\n");
    cvx_app_t *app = guest(NULL, b.data);
    cvx_abi_result_t r = {0};

    expect(run(app, "escaped", CVX_KIND_ACTION, NULL, &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "42");
    assert_true(returned_bytes(&r) <= CVX_ABI_MAX_RESULT);
    assert_true(r.logs.len > CVX_ABI_MAX_RESULT - 256 * 1024); /* one line less than the limit, at most */
    assert_int_equal(r.log_full, CVX_ABI_LOG_FULL_BYTES);
    cvx_arena_t *a = cvx_arena_new(1 << 20);
    cvx_value_t *logs = parse_logs(a, &r);
    size_t n = logs->u.arr.len;
    assert_true(n > 1 && n < 200);
    for (size_t i = 0; i + 1 < n; i++) assert_int_equal(logs->u.arr.items[i]->u.str.len, 6 + 32768);
    assert_string_equal(logs->u.arr.items[n - 1]->u.str.ptr, BYTES_NOTE);
    cvx_arena_free(a);

    static const char *const big[] = {"big_value", "big_error"};
    for (size_t f = 0; f < CVX_ARRAY_LEN(big); f++) {
        int rc = run(app, big[f], CVX_KIND_QUERY, NULL, &r);
        expect(rc, &r, f == 0 ? CVX_OK : CVX_E_APPLICATION);
        if (f == 0) assert_int_equal(r.value.len, 12582912);
        else assert_int_equal(r.data.len, 12582912);
        assert_true(returned_bytes(&r) <= CVX_ABI_MAX_RESULT);
        a = cvx_arena_new(1 << 20);
        logs = parse_logs(a, &r);
        n = logs->u.arr.len;
        /* The first lines are kept: as many as fit in the 4 MiB left. */
        assert_true(n > 100 && n < 255);
        for (size_t i = 0; i + 1 < n; i++) assert_int_equal(logs->u.arr.items[i]->u.str.len, 6 + 32768);
        assert_string_equal(logs->u.arr.items[n - 1]->u.str.ptr, BYTES_NOTE);
        assert_true(r.logs.len + 32777 + 12582912 > CVX_ABI_MAX_RESULT); /* no line more would have fit */
        cvx_arena_free(a);
    }

    expect(run(app, "full_value", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_int_equal(r.value.len, CVX_ABI_MAX_RESULT);
    assert_int_equal(r.logs.len, 0);
    assert_int_equal(r.nlogs, 0);
    assert_healthy(app);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
    cvx_buf_free(&b);
}

#define FD_WRITE_IMPORT                                                                                            \
    "(import \"wasi_snapshot_preview1\" \"fd_write\" (func $fd_write (param i32 i32 i32 i32) (result i32)))\n"

static void test_stdout_stderr(void **state) {
    cvx_buf_t b = {0};
    DATA(&b, 100, "one\ntw");
    DATA(&b, 110, "err1\n");
    DATA(&b, 120, "o\nthree");
    DATA(&b, 130, "partial-err");
    DATA(&b, 150, "ab");
    DATA(&b, 160, "c\n\n");
    DATA(&b, 170, "a\nb\nc\nd\ne");
    cvx_buf_append_str(&b, STR_HELPERS);
    cvx_buf_append_str(
        &b, ";; one iovec {p, strlen(p)} at 300\n"
            "(func $w (param $fd i32) (param $p i32)\n"
            "  (i32.store (i32.const 300) (local.get $p)) (i32.store (i32.const 304) (call $strlen (local.get $p)))\n"
            "  (drop (call $fd_write (local.get $fd) (i32.const 300) (i32.const 1) (i32.const 320))))\n"
            "(func (export \"split\") (param i32) (result i32)\n"
            "  (call $w (i32.const 1) (i32.const 100)) (call $w (i32.const 2) (i32.const 110))\n"
            "  (call $w (i32.const 1) (i32.const 120)) (call $w (i32.const 2) (i32.const 130))\n"
            "  (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n"
            ";; two iovecs in one call, then an empty line\n"
            "(func (export \"gather\") (param i32) (result i32)\n"
            "  (i32.store (i32.const 300) (i32.const 150)) (i32.store (i32.const 304) (i32.const 2))\n"
            "  (i32.store (i32.const 308) (i32.const 160)) (i32.store (i32.const 312) (i32.const 3))\n"
            "  (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 2) (i32.const 320)))\n"
            "  (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n"
            ";; a partial line is flushed even when the call fails\n"
            "(func (export \"partial_trap\") (param i32) (result i32) (call $w (i32.const 1) (i32.const 130)) unreachable)\n"
            "(func (export \"limit\") (param i32) (result i32) (call $w (i32.const 1) (i32.const 170))\n"
            "  (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n");
    cvx_app_t *app = guest(FD_WRITE_IMPORT, b.data);
    cvx_abi_result_t r = {0};
    expect(run(app, "split", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_string_equal(logs_of(&r),
                        "[\"[LOG] one\",\"[ERROR] err1\",\"[LOG] two\",\"[LOG] three\",\"[ERROR] partial-err\"]");
    expect(run(app, "gather", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    assert_string_equal(logs_of(&r), "[\"[LOG] abc\",\"[LOG] \"]");
    expect(run(app, "partial_trap", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_TRAP);
    assert_string_equal(logs_of(&r), "[\"[LOG] partial-err\"]");
    /* stdout lines are under the same line limit as __convex_log's. */
    cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_QUERY);
    cfg.max_log_lines = 3;
    expect(run_cfg(app, "limit", &cfg, NULL, &r), &r, CVX_OK);
    assert_string_equal(logs_of(&r), "[\"[LOG] a\",\"[LOG] b\","
                                     "\"[WARN] Log overflow (maximum 3). Remaining log lines omitted.\"]");
    cfg.max_log_lines = 6;
    expect(run_cfg(app, "limit", &cfg, NULL, &r), &r, CVX_OK);
    /* 4 complete lines, then "e" flushed at the end is the 5th. */
    assert_string_equal(logs_of(&r), "[\"[LOG] a\",\"[LOG] b\",\"[LOG] c\",\"[LOG] d\",\"[LOG] e\"]");
    cfg.max_log_lines = 5;
    expect(run_cfg(app, "limit", &cfg, NULL, &r), &r, CVX_OK);
    /* The flush at the end is under the limit too. */
    assert_string_equal(logs_of(&r), "[\"[LOG] a\",\"[LOG] b\",\"[LOG] c\",\"[LOG] d\","
                                     "\"[WARN] Log overflow (maximum 5). Remaining log lines omitted.\"]");
    cvx_abi_result_free(&r);
    cvx_app_release(app);
    cvx_buf_free(&b);
}

/* Lines over 32768 bytes are cut, never inside a UTF-8 sequence, whether
 * they come from __convex_log or from stdout, and say so with Convex's
 * suffix " (truncated due to length)". */
static void test_long_lines(void **state) {
    static const struct {
        const char *ch;
        int at; /* where the character starts */
        int keep; /* bytes of the line that survive */
    } cases[] = {
        {"\xc3\xa9", 32767, 32767},          /* é straddles the limit */
        {"\xe2\x82\xac", 32766, 32766},      /* € straddles */
        {"\xe2\x82\xac", 32767, 32767},
        {"\xf0\x9f\x98\x80", 32765, 32765},  /* 😀 straddles */
        {"\xf0\x9f\x98\x80", 32767, 32767},
        {"\xc3\xa9", 32766, 32768},          /* é ends exactly at the limit: kept */
        {"a", 32767, 32768},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        /* 16384..: 'a' * at, the character, "zzz\n" */
        int len = cases[i].at + (int)strlen(cases[i].ch) + 4;
        cvx_buf_t b = {0};
        data_seg(&b, 16384 + cases[i].at, cases[i].ch, strlen(cases[i].ch));
        data_seg(&b, 16384 + cases[i].at + (int)strlen(cases[i].ch), "zzz\n", 4);
        cvx_buf_printf(&b,
                       "(func $fill (memory.fill (i32.const 16384) (i32.const 97) (i32.const %d)))\n"
                       "(func (export \"via_log\") (param i32) (result i32) (call $fill)\n"
                       "  (drop (call $log (i32.const 0) (i32.const 16384) (i32.const %d)))\n"
                       "  (drop (call $output (i32.const 0) (i32.const 16) (i32.const 2))) (i32.const 0))\n"
                       "(func (export \"via_stdout\") (param i32) (result i32) (call $fill)\n"
                       "  (i32.store (i32.const 300) (i32.const 16384)) (i32.store (i32.const 304) (i32.const %d))\n"
                       "  (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 320)))\n"
                       "  (drop (call $output (i32.const 0) (i32.const 16) (i32.const 2))) (i32.const 0))\n"
                       "(func (export \"via_stdout_unterminated\") (param i32) (result i32) (call $fill)\n"
                       "  (i32.store (i32.const 300) (i32.const 16384)) (i32.store (i32.const 304) (i32.const %d))\n"
                       "  (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 320)))\n"
                       "  (drop (call $output (i32.const 0) (i32.const 16) (i32.const 2))) (i32.const 0))\n",
                       cases[i].at, len - 1, len, len - 1);
        cvx_app_t *app = guest(FD_WRITE_IMPORT, b.data);
        static const char *const fns[] = {"via_log", "via_stdout", "via_stdout_unterminated"};
        for (size_t f = 0; f < 3; f++) {
            cvx_abi_result_t r = {0};
            expect(run(app, fns[f], CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
            cvx_arena_t *a = cvx_arena_new(1 << 17);
            cvx_value_t *logs = parse_logs(a, &r); /* valid JSON: valid UTF-8 */
            assert_int_equal(logs->u.arr.len, 1);
            const cvx_value_t *line = logs->u.arr.items[0];
            if (line->u.str.len != 6 + (size_t)cases[i].keep + strlen(CVX_ABI_LOG_CUT))
                fail_msg("%s, case %zu: line of %zu bytes, expected %d and the suffix", fns[f], i, line->u.str.len - 6,
                         cases[i].keep);
            assert_memory_equal(line->u.str.ptr, "[LOG] aaaa", 10);
            assert_string_equal(line->u.str.ptr + 6 + cases[i].keep, " (truncated due to length)");
            cvx_arena_free(a);
            cvx_abi_result_free(&r);
        }
        cvx_app_release(app);
        cvx_buf_free(&b);
    }
}

/* A 100 KiB line becomes its first 32768 bytes and the suffix, from
 * __convex_log and from stdout (ended by a newline or by the end of the
 * call); a line of exactly 32768 bytes is whole. */
static void test_long_line_cut(void **state) {
    const char *body =
        ";; 'b' * 102400 at 16384 (in 2 more pages), then a newline\n"
        "(func $fill (drop (memory.grow (i32.const 2)))\n"
        "  (memory.fill (i32.const 16384) (i32.const 98) (i32.const 102400))\n"
        "  (i32.store8 (i32.const 118784) (i32.const 10)))\n"
        "(func $ok (drop (call $output (i32.const 0) (i32.const 16) (i32.const 2))))\n"
        "(func (export \"via_log\") (param i32) (result i32) (call $fill)\n"
        "  (drop (call $log (i32.const 0) (i32.const 16384) (i32.const 102400))) (call $ok) (i32.const 0))\n"
        "(func (export \"exact\") (param i32) (result i32) (call $fill)\n"
        "  (drop (call $log (i32.const 0) (i32.const 16384) (i32.const 32768))) (call $ok) (i32.const 0))\n"
        "(func $stdout (param $n i32) (call $fill)\n"
        "  (i32.store (i32.const 300) (i32.const 16384)) (i32.store (i32.const 304) (local.get $n))\n"
        "  (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 320))))\n"
        "(func (export \"via_stdout\") (param i32) (result i32) (call $stdout (i32.const 102401)) (call $ok) (i32.const 0))\n"
        "(func (export \"via_stdout_unterminated\") (param i32) (result i32)\n"
        "  (call $stdout (i32.const 102400)) (call $ok) (i32.const 0))\n";
    cvx_app_t *app = guest(FD_WRITE_IMPORT, body);
    cvx_buf_t want = {0};
    cvx_buf_append_str(&want, "[LOG] ");
    for (int i = 0; i < CVX_ABI_LOG_LINE; i++) cvx_buf_append_char(&want, 'b');
    size_t whole = want.len;
    cvx_buf_append_str(&want, " (truncated due to length)");
    static const char *const fns[] = {"via_log", "via_stdout", "via_stdout_unterminated", "exact"};
    for (size_t f = 0; f < CVX_ARRAY_LEN(fns); f++) {
        cvx_abi_result_t r = {0};
        expect(run(app, fns[f], CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
        cvx_arena_t *a = cvx_arena_new(1 << 17);
        cvx_value_t *logs = parse_logs(a, &r);
        assert_int_equal(logs->u.arr.len, 1);
        const cvx_value_t *line = logs->u.arr.items[0];
        size_t n = strcmp(fns[f], "exact") == 0 ? whole : want.len;
        if (line->u.str.len != n) fail_msg("%s: line of %zu bytes, expected %zu", fns[f], line->u.str.len, n);
        assert_memory_equal(line->u.str.ptr, want.data, n);
        cvx_arena_free(a);
        cvx_abi_result_free(&r);
    }
    cvx_buf_free(&want);
    cvx_app_release(app);
}

/* A guest may log any bytes; the log array must stay valid JSON. */
static void test_log_invalid_utf8(void **state) {
    cvx_buf_t b = {0};
    DATA(&b, 100, "bad \xff\xfe byte, cut \xe2\x82, overlong \xc0\xaf, surrogate \xed\xa0\x80 end");
    DATA(&b, 200, "ok \xc3\xa9\n");
    cvx_buf_append_str(&b, STR_HELPERS);
    cvx_buf_append_str(&b, "(func (export \"f\") (param i32) (result i32) (call $say (i32.const 0) (i32.const 100))\n"
                           "  (i32.store (i32.const 300) (i32.const 100)) (i32.store (i32.const 304) (call $strlen (i32.const 100)))\n"
                           "  (drop (call $fd_write (i32.const 2) (i32.const 300) (i32.const 1) (i32.const 320)))\n"
                           "  (call $say (i32.const 0) (i32.const 200))\n"
                           "  (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n");
    /* 40000 continuation bytes: cut near the limit, not backed up to nothing. */
    cvx_buf_append_str(&b, "(func (export \"garbage\") (param i32) (result i32)\n"
                           "  (memory.fill (i32.const 16384) (i32.const 128) (i32.const 40000))\n"
                           "  (drop (call $log (i32.const 0) (i32.const 16384) (i32.const 40000)))\n"
                           "  (call $out (i32.const 0) (i32.const 16)) (i32.const 0))\n");
    cvx_app_t *app = guest(FD_WRITE_IMPORT, b.data);
    cvx_abi_result_t r = {0};
    expect(run(app, "garbage", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    cvx_arena_t *a = cvx_arena_new(1 << 18);
    cvx_value_t *logs = parse_logs(a, &r);
    assert_int_equal(logs->u.arr.len, 1);
    /* each byte became U+FFFD */
    assert_int_equal(logs->u.arr.items[0]->u.str.len, 6 + 3 * 32765 + strlen(CVX_ABI_LOG_CUT));
    assert_memory_equal(logs->u.arr.items[0]->u.str.ptr, "[LOG] \xef\xbf\xbd", 9);
    cvx_arena_free(a);

    a = cvx_arena_new(4096);
    expect(run(app, "f", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    logs = parse_logs(a, &r);
    assert_int_equal(logs->u.arr.len, 3);
    tu_assert_contains(logs->u.arr.items[0]->u.str.ptr, "[LOG] bad \xef\xbf\xbd");
    tu_assert_contains(logs->u.arr.items[0]->u.str.ptr, " end");
    assert_string_equal(logs->u.arr.items[1]->u.str.ptr, "[LOG] ok \xc3\xa9\n");
    /* The unterminated stderr line is flushed at the end, repaired too. */
    assert_memory_equal(logs->u.arr.items[2]->u.str.ptr, "[ERROR] ", 8);
    assert_string_equal(logs->u.arr.items[2]->u.str.ptr + 8, logs->u.arr.items[0]->u.str.ptr + 6);
    cvx_arena_free(a);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
    cvx_buf_free(&b);
}

/* ---- WASI and determinism --------------------------------------------------------------- */

#define WASI_IMPORTS                                                                                               \
    "(import \"wasi_snapshot_preview1\" \"environ_sizes_get\" (func $env_sizes (param i32 i32) (result i32)))\n" \
    "(import \"wasi_snapshot_preview1\" \"environ_get\" (func $env_get (param i32 i32) (result i32)))\n"         \
    "(import \"wasi_snapshot_preview1\" \"args_sizes_get\" (func $args_sizes (param i32 i32) (result i32)))\n"   \
    "(import \"wasi_snapshot_preview1\" \"args_get\" (func $args_get (param i32 i32) (result i32)))\n"           \
    "(import \"wasi_snapshot_preview1\" \"clock_time_get\" (func $clock (param i32 i64 i32) (result i32)))\n"    \
    "(import \"wasi_snapshot_preview1\" \"clock_res_get\" (func $res (param i32 i32) (result i32)))\n"           \
    "(import \"wasi_snapshot_preview1\" \"random_get\" (func $random_get (param i32 i32) (result i32)))\n"       \
    "(import \"wasi_snapshot_preview1\" \"sched_yield\" (func $yield (result i32)))\n"                           \
    "(import \"wasi_snapshot_preview1\" \"fd_read\" (func $fd_read (param i32 i32 i32 i32) (result i32)))\n"     \
    "(import \"wasi_snapshot_preview1\" \"fd_close\" (func $fd_close (param i32) (result i32)))\n"               \
    "(import \"wasi_snapshot_preview1\" \"fd_prestat_get\" (func $prestat (param i32 i32) (result i32)))\n"      \
    "(import \"wasi_snapshot_preview1\" \"path_open\" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))\n" \
    "(import \"wasi_snapshot_preview1\" \"poll_oneoff\" (func $poll (param i32 i32 i32 i32) (result i32)))\n"    \
    "(import \"wasi_snapshot_preview1\" \"sock_accept\" (func $sock_accept (param i32 i32 i32) (result i32)))\n" \
    "(import \"wasi_snapshot_preview1\" \"fd_fdstat_get\" (func $fdstat (param i32 i32) (result i32)))\n"    \
    "(import \"wasi_snapshot_preview1\" \"fd_prestat_dir_name\" (func $prestat_name (param i32 i32 i32) (result i32)))\n" \
    "(import \"wasi_snapshot_preview1\" \"fd_seek\" (func $fd_seek (param i32 i64 i32 i32) (result i32)))\n"   \
    "(import \"cvx_1\" \"__convex_random_bytes\" (func $random_bytes (param i32 i32) (result i32)))\n"           \
    "(import \"cvx_1\" \"__convex_now_ms\" (func $now_ms (result f64)))\n"

static const char wasi_body[] =
    ";; environment and arguments: all empty (memory prefilled with 0xff)\n"
    "(func (export \"environ\") (param i32) (result i32) (local $e i32)\n"
    "  (memory.fill (i32.const 200) (i32.const 255) (i32.const 16))\n"
    "  (local.set $e (i32.or (call $env_sizes (i32.const 200) (i32.const 204)) (call $args_sizes (i32.const 208) (i32.const 212))))\n"
    "  (local.set $e (i32.or (local.get $e) (i32.or (call $env_get (i32.const 400) (i32.const 500)) (call $args_get (i32.const 400) (i32.const 500)))))\n"
    "  (if (local.get $e) (then (return (local.get $e))))\n"
    "  (call $hexout (i32.const 200) (i32.const 16)) (i32.const 0))\n"
    ";; clocks 0..3 and the resolution, then __convex_now_ms as an f64\n"
    "(func (export \"clocks\") (param i32) (result i32) (local $e i32)\n"
    "  (local.set $e (i32.or (call $clock (i32.const 0) (i64.const 1) (i32.const 200)) (call $clock (i32.const 1) (i64.const 1) (i32.const 208))))\n"
    "  (local.set $e (i32.or (local.get $e) (i32.or (call $clock (i32.const 2) (i64.const 1) (i32.const 216)) (call $clock (i32.const 3) (i64.const 1) (i32.const 224)))))\n"
    "  (local.set $e (i32.or (local.get $e) (call $res (i32.const 0) (i32.const 232))))\n"
    "  (f64.store (i32.const 240) (call $now_ms))\n"
    "  (if (local.get $e) (then (return (local.get $e))))\n"
    "  (call $hexout (i32.const 200) (i32.const 48)) (i32.const 0))\n"
    "(func (export \"clock_bad_id\") (param i32) (result i32) (call $clock (i32.const 4) (i64.const 1) (i32.const 200)))\n"
    "(func (export \"wasi_random\") (param i32) (result i32)\n"
    "  (if (call $random_get (i32.const 200) (i32.const 32)) (then (return (i32.const 99))))\n"
    "  (call $hexout (i32.const 200) (i32.const 32)) (i32.const 0))\n"
    "(func (export \"cvx_random\") (param i32) (result i32)\n"
    "  (drop (call $random_bytes (i32.const 200) (i32.const 32))) (call $hexout (i32.const 200) (i32.const 32)) (i32.const 0))\n"
    ";; 16 bytes from each source: the stream continues across both\n"
    "(func (export \"mixed_random\") (param i32) (result i32)\n"
    "  (drop (call $random_get (i32.const 200) (i32.const 16))) (drop (call $random_bytes (i32.const 216) (i32.const 16)))\n"
    "  (call $hexout (i32.const 200) (i32.const 32)) (i32.const 0))\n"
    ";; no filesystem, no sockets: errno values packed as status\n"
    "(func (export \"nofs\") (param i32) (result i32)\n"
    "  (if (call $yield) (then (return (i32.const 1))))\n"
    "  (if (i32.ne (call $fd_read (i32.const 0) (i32.const 300) (i32.const 1) (i32.const 320)) (i32.const 8)) (then (return (i32.const 2))))\n"
    "  (if (i32.ne (call $fd_close (i32.const 3)) (i32.const 8)) (then (return (i32.const 3))))\n"
    "  (if (i32.ne (call $prestat (i32.const 3) (i32.const 300)) (i32.const 8)) (then (return (i32.const 4))))\n"
    "  (if (i32.ne (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 4) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 300)) (i32.const 8)) (then (return (i32.const 5))))\n"
    ";; a clock subscription (zeroed memory: a relative clock of 0 ns) is a sleep that ends at once\n"
    "  (if (i32.ne (call $poll (i32.const 300) (i32.const 400) (i32.const 1) (i32.const 320)) (i32.const 0)) (then (return (i32.const 6))))\n"
    "  (if (i32.ne (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 300)) (i32.const 52)) (then (return (i32.const 7))))\n"
    "  (call $hexout (i32.const 16) (i32.const 0)) (i32.const 0))\n"
    ";; functions that write nothing do not look at their pointers: wild ones\n"
    ";; get the same answer, and no trap\n"
    "(func (export \"wild\") (param i32) (result i32)\n"
    "  (if (call $env_get (i32.const -1) (i32.const 0x7fffffff)) (then (return (i32.const 1))))\n"
    "  (if (call $args_get (i32.const 0x7fffffff) (i32.const -1)) (then (return (i32.const 2))))\n"
    "  (if (i32.ne (call $fd_read (i32.const 0) (i32.const -1) (i32.const 5) (i32.const -1)) (i32.const 8)) (then (return (i32.const 3))))\n"
    "  (if (i32.ne (call $fdstat (i32.const 1) (i32.const -1)) (i32.const 8)) (then (return (i32.const 4))))\n"
    "  (if (i32.ne (call $prestat (i32.const 3) (i32.const 0x7fffffff)) (i32.const 8)) (then (return (i32.const 5))))\n"
    "  (if (i32.ne (call $prestat_name (i32.const 3) (i32.const -1) (i32.const -1)) (i32.const 8)) (then (return (i32.const 6))))\n"
    "  (if (i32.ne (call $path_open (i32.const 3) (i32.const 0) (i32.const -1) (i32.const -1) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const -1)) (i32.const 8)) (then (return (i32.const 7))))\n"
    "  (if (i32.ne (call $poll (i32.const -1) (i32.const -1) (i32.const 1000) (i32.const -1)) (i32.const 28)) (then (return (i32.const 8))))\n"
    "  (if (i32.ne (call $fd_seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const -1)) (i32.const 8)) (then (return (i32.const 9))))\n"
    "  (call $hexout (i32.const 16) (i32.const 0)) (i32.const 0))\n";

static void hex_of(const void *p, size_t n, char *out) {
    out[0] = '"';
    cvx_hex(p, n, out + 1);
    out[1 + 2 * n] = '"';
    out[2 + 2 * n] = '\0';
}

static void test_wasi_environment(void **state) {
    cvx_app_t *app = guest(WASI_IMPORTS, wasi_body);
    cvx_abi_result_t r = {0};
    expect(run(app, "environ", CVX_KIND_ACTION, NULL, &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "\"00000000000000000000000000000000\"");
    expect(run(app, "nofs", CVX_KIND_QUERY, NULL, &r), &r, CVX_OK);
    expect(run(app, "wild", CVX_KIND_ACTION, NULL, &r), &r, CVX_OK);
    expect(run(app, "clock_bad_id", CVX_KIND_QUERY, NULL, &r), &r, CVX_E_UNCAUGHT);
    tu_assert_contains(msg_of(&r), "function returned status 28");
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

static void test_wasi_clock(void **state) {
    cvx_app_t *app = guest(WASI_IMPORTS, wasi_body);
    cvx_abi_result_t r = {0};
    cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_QUERY);
    for (int k = 0; k < 2; k++) {
        cfg.kind = k == 0 ? CVX_KIND_QUERY : CVX_KIND_MUTATION;
        cfg.now_ms = k == 0 ? 1700000000123.0 : 86400000.5;
        expect(run_cfg(app, "clocks", &cfg, NULL, &r), &r, CVX_OK);
        uint8_t want[48];
        uint64_t ns = (uint64_t)llround(cfg.now_ms) * 1000000ull;
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 8; i++) want[8 * c + i] = (uint8_t)(ns >> (8 * i));
        for (int i = 0; i < 8; i++) want[32 + i] = (uint8_t)(1000000ull >> (8 * i));
        memcpy(want + 40, &cfg.now_ms, 8);
        char hex[100];
        hex_of(want, 48, hex);
        assert_string_equal(value_of(&r), hex); /* frozen: the call's time, every clock */
    }
    /* Actions read the real clock. */
    uint64_t before = cvx_now_ns();
    cfg.kind = CVX_KIND_ACTION;
    expect(run_cfg(app, "clocks", &cfg, NULL, &r), &r, CVX_OK);
    uint64_t after = cvx_now_ns();
    uint8_t got[48];
    cvx_buf_t raw = {0};
    const char *v = value_of(&r);
    for (int i = 0; i < 48; i++) {
        unsigned x;
        sscanf(v + 1 + 2 * i, "%2x", &x);
        got[i] = (uint8_t)x;
    }
    uint64_t ns = 0;
    for (int i = 0; i < 8; i++) ns |= (uint64_t)got[i] << (8 * i);
    assert_true(ns + 2000000 >= before && ns <= after + 2000000);
    double ms;
    memcpy(&ms, got + 40, 8);
    assert_true(ms >= (double)before / 1e6 - 2 && ms <= (double)after / 1e6 + 2);
    cvx_buf_free(&raw);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

static void test_wasi_random(void **state) {
    cvx_app_t *app = guest(WASI_IMPORTS, wasi_body);
    cvx_abi_result_t r = {0};
    /* What the seeded generator gives for "req-1". */
    cvx_chacha_t rng;
    cvx_chacha_seed(&rng, "req-1", 5);
    uint8_t want[32];
    cvx_chacha_fill(&rng, want, 32);
    char hex[70];
    hex_of(want, 32, hex);
    static const char *const fns[] = {"wasi_random", "cvx_random", "mixed_random"};
    for (size_t f = 0; f < 3; f++)
        for (int k = CVX_KIND_QUERY; k <= CVX_KIND_MUTATION; k++) {
            expect(run(app, fns[f], (cvx_kind_t)k, NULL, &r), &r, CVX_OK);
            assert_string_equal(value_of(&r), hex); /* same request id, same bytes, any source */
        }
    cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_QUERY);
    cfg.request_id = "req-2";
    expect(run_cfg(app, "wasi_random", &cfg, NULL, &r), &r, CVX_OK);
    assert_string_not_equal(value_of(&r), hex);
    char other[70];
    snprintf(other, sizeof other, "%s", value_of(&r));
    expect(run_cfg(app, "cvx_random", &cfg, NULL, &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), other);
    /* Actions: OS randomness, different every call. */
    cfg.kind = CVX_KIND_ACTION;
    cfg.request_id = "req-1";
    expect(run_cfg(app, "wasi_random", &cfg, NULL, &r), &r, CVX_OK);
    char a1[70];
    snprintf(a1, sizeof a1, "%s", value_of(&r));
    assert_string_not_equal(a1, hex);
    expect(run_cfg(app, "wasi_random", &cfg, NULL, &r), &r, CVX_OK);
    assert_string_not_equal(value_of(&r), a1);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

/* ---- what each kind may do --------------------------------------------------------------- */

/* The (ptr, len) -> i64 "result" functions. The guest "call_<name>" sends
 * its arguments as the request; on success it outputs the response, on
 * failure it logs the error JSON (level ERROR) and returns the code as its
 * status, so a failure shows as "function returned status <code>". */
static const char *const result_fns[] = {
    "__convex_db_get",    "__convex_db_insert",    "__convex_db_patch",  "__convex_db_replace",
    "__convex_db_delete", "__convex_db_query",     "__convex_db_count",  "__convex_http_fetch",
    "__convex_run_query", "__convex_run_mutation", "__convex_run_action",
};

static cvx_app_t *callhost_app(void) {
    cvx_buf_t imports = {0}, body = {0};
    for (size_t i = 0; i < CVX_ARRAY_LEN(result_fns); i++) {
        cvx_buf_printf(&imports, "(import \"cvx_1\" \"%s\" (func $%s (param i32 i32) (result i64)))\n", result_fns[i],
                       result_fns[i]);
        cvx_buf_printf(&body,
                       "(func (export \"call%s\") (param $n i32) (result i32) (local $r i64) (local $len i32)\n"
                       "  (drop (call $read (i32.const 1024) (local.get $n)))\n"
                       "  (local.set $r (call $%s (i32.const 1024) (local.get $n)))\n"
                       "  (if (i64.lt_s (local.get $r) (i64.const 0)) (then\n"
                       "    (local.set $len (call $pending_len))\n"
                       "    (drop (call $read (i32.const 16384) (local.get $len)))\n"
                       "    (drop (call $log (i32.const 3) (i32.const 16384) (local.get $len)))\n"
                       "    (return (i32.wrap_i64 (i64.sub (i64.const 0) (local.get $r))))))\n"
                       "  (if (i32.ne (call $pending_len) (i32.wrap_i64 (local.get $r))) (then (return (i32.const 99))))\n"
                       "  (drop (call $read (i32.const 16384) (i32.wrap_i64 (local.get $r))))\n"
                       "  (drop (call $output (i32.const 0) (i32.const 16384) (i32.wrap_i64 (local.get $r))))\n"
                       "  (i32.const 0))\n",
                       result_fns[i], result_fns[i]);
    }
    cvx_app_t *app = guest(imports.data, body.data);
    cvx_buf_free(&imports);
    cvx_buf_free(&body);
    return app;
}

/* Expects the host function to have failed with `code` and an error JSON
 * (logged by the guest as its last line) whose message contains `msg`;
 * the error JSON's text goes to `json_out` when not NULL. */
static void expect_host_error_json(int rc, const cvx_abi_result_t *r, int code, const char *msg, cvx_buf_t *json_out) {
    char want[64];
    snprintf(want, sizeof want, "Uncaught Error: function returned status %d", code);
    if (rc != CVX_E_UNCAUGHT || strcmp(msg_of(r), want) != 0)
        fail_msg("expected host error %s (%s), got %s: %s; logs %s", cvx_code_name(code), msg, cvx_code_name(rc),
                 msg_of(r), logs_of(r));
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *logs = parse_logs(a, r);
    assert_true(logs->u.arr.len > 0);
    const cvx_value_t *line = logs->u.arr.items[logs->u.arr.len - 1];
    assert_memory_equal(line->u.str.ptr, "[ERROR] ", 8);
    cvx_value_t *e;
    cvx_err_t err;
    if (cvx_json_parse(a, line->u.str.ptr + 8, line->u.str.len - 8, &e, &err))
        fail_msg("error JSON is invalid: %s: %s", err.msg, line->u.str.ptr);
    const cvx_value_t *m = e->type == CVX_T_OBJECT ? cvx_obj_get_cstr(e, "message") : NULL;
    if (!m || m->type != CVX_T_STRING) fail_msg("error JSON has no message: %s", line->u.str.ptr);
    if (!strstr(m->u.str.ptr, msg)) fail_msg("expected \"%s\" in the error message \"%s\"", msg, m->u.str.ptr);
    if (json_out) cvx_buf_append(json_out, line->u.str.ptr + 8, line->u.str.len - 8);
    cvx_arena_free(a);
}

static void expect_host_error(int rc, const cvx_abi_result_t *r, int code, const char *msg) {
    expect_host_error_json(rc, r, code, msg, NULL);
}

static int call_host(cvx_app_t *app, const char *fn, const cvx_abi_call_config_t *cfg, const char *req,
                     cvx_abi_result_t *r) {
    char name[64];
    snprintf(name, sizeof name, "call%s", fn);
    return run_cfg(app, name, cfg, req, r);
}

/* A permission error ends the call with FORBIDDEN (docs/abi.md: decided by
 * the host, not the guest); the guest saw it too (its last log line). */
static void expect_forbidden(int rc, const cvx_abi_result_t *r, const char *msg) {
    if (rc != CVX_E_FORBIDDEN || !strstr(msg_of(r), msg))
        fail_msg("expected FORBIDDEN (%s), got %s: %s", msg, cvx_code_name(rc), msg_of(r));
    tu_assert_contains(logs_of(r), msg);
}

static void test_db_permissions(void **state) {
    cvx_app_t *app = callhost_app();
    cvx_abi_result_t r = {0};
    static const struct {
        const char *fn, *req;
        bool write;
    } db[] = {
        {"__convex_db_get", "{\"id\":\"x\"}", false},
        {"__convex_db_insert", "{\"table\":\"users\",\"value\":{\"name\":\"Ada\"}}", true},
        {"__convex_db_patch", "{\"id\":\"x\",\"value\":{}}", true},
        {"__convex_db_replace", "{\"id\":\"x\",\"value\":{}}", true},
        {"__convex_db_delete", "{\"id\":\"x\"}", true},
        {"__convex_db_query", "{\"table\":\"users\"}", false},
        {"__convex_db_count", "{\"table\":\"users\"}", false},
    };
    /* Actions have no database, whatever they ask: the guest gets the
     * error and the call ends with it even though this guest swallows it
     * (it returns the code as its status). */
    cvx_abi_call_config_t action = call_cfg(CVX_KIND_ACTION);
    for (size_t i = 0; i < CVX_ARRAY_LEN(db); i++)
        expect_forbidden(call_host(app, db[i].fn, &action, db[i].req, &r), &r,
                         "the database is not available in actions");

    char *dir = tu_tmpdir("abi-db");
    cvx_store_config_t scfg;
    cvx_store_config_default(&scfg);
    cvx_store_t *store;
    cvx_err_t err;
    if (cvx_store_open(dir, &scfg, &store, &err)) fail_msg("store: %s", err.msg);

    /* Queries cannot write, even with a transaction that could. */
    cvx_txn_t *txn;
    if (cvx_txn_begin(store, CVX_TXN_WRITE, 0, &txn, &err)) fail_msg("txn: %s", err.msg);
    cvx_abi_call_config_t query = call_cfg(CVX_KIND_QUERY);
    query.txn = txn;
    for (size_t i = 0; i < CVX_ARRAY_LEN(db); i++) {
        int rc = call_host(app, db[i].fn, &query, db[i].req, &r);
        if (db[i].write) {
            expect_forbidden(rc, &r, "queries cannot write to the database; use a mutation");
        } else if (strstr(logs_of(&r), "FORBIDDEN") || strstr(logs_of(&r), "cannot write")) {
            fail_msg("%s was refused in a query: %s", db[i].fn, logs_of(&r));
        }
    }
    /* Malformed requests are INVALID_ARGUMENT, not traps. */
    cvx_abi_call_config_t mutation = call_cfg(CVX_KIND_MUTATION);
    mutation.txn = txn;
    expect_host_error(call_host(app, "__convex_db_get", &mutation, "{bad json", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "__convex_db_get: invalid request");
    expect_host_error(call_host(app, "__convex_db_get", &mutation, "[1]", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "request must be a JSON object");
    expect_host_error(call_host(app, "__convex_db_get", &mutation, "{}", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "request needs a string field \"id\"");
    expect_host_error(call_host(app, "__convex_db_insert", &mutation, "{\"table\":\"users\",\"value\":[]}", &r), &r,
                      CVX_E_INVALID_ARGUMENT, "request needs an object field \"value\"");
    expect_host_error(call_host(app, "__convex_db_patch", &mutation, "{\"id\":\"x\",\"value\":{},\"remove\":[1]}", &r),
                      &r, CVX_E_INVALID_ARGUMENT, "\"remove\" must be an array of field names");
    expect_host_error(call_host(app, "__convex_db_query", &mutation, "{\"table\":\"users\",\"order\":\"sideways\"}", &r),
                      &r, CVX_E_INVALID_ARGUMENT, "query order must be");
    expect_host_error(call_host(app, "__convex_db_query", &mutation, "{\"table\":\"users\",\"limit\":-1}", &r), &r,
                      CVX_E_INVALID_ARGUMENT, "query limit must be a non-negative integer");
    expect_host_error(call_host(app, "__convex_db_query", &mutation, "{\"table\":\"users\",\"range\":[{\"op\":\"eq\"}]}", &r),
                      &r, CVX_E_INVALID_ARGUMENT, "query range condition 0 needs");
    expect_host_error(call_host(app, "__convex_db_get", &mutation, "{\"id\":\"not-an-id\"}", &r), &r,
                      CVX_E_INVALID_VALUE, "");

    /* A mutation writes; the pending buffer carries the new id back, and a
     * later call in the same transaction reads the document. */
    expect(call_host(app, "__convex_db_insert", &mutation, "{\"table\":\"users\",\"value\":{\"name\":\"Ada\"}}", &r), &r,
           CVX_OK);
    const char *id = value_of(&r);
    assert_true(id[0] == '"' && strlen(id) > 10);
    char req[256];
    snprintf(req, sizeof req, "{\"id\":%s}", id);
    expect(call_host(app, "__convex_db_get", &query, req, &r), &r, CVX_OK);
    tu_assert_contains(value_of(&r), "\"name\":\"Ada\"");
    expect(call_host(app, "__convex_db_count", &query, "{\"table\":\"users\"}", &r), &r, CVX_OK);
    assert_string_equal(value_of(&r), "1");
    cvx_txn_abort(txn);
    cvx_store_close(store);
    tu_rmrf(dir);
    free(dir);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

typedef struct {
    int calls;
    cvx_kind_t kind;
    char path[64];
    char args[256];
} svc_log_t;

static int svc_run(void *ctx, cvx_kind_t kind, const char *path, size_t path_len, const char *args, size_t args_len,
                   cvx_buf_t *out) {
    svc_log_t *l = ctx;
    l->calls++;
    l->kind = kind;
    snprintf(l->path, sizeof l->path, "%.*s", (int)path_len, path);
    snprintf(l->args, sizeof l->args, "%.*s", (int)args_len, args);
    if (strcmp(l->path, "m:fails") == 0) {
        cvx_buf_append_str(out, "{\"message\":\"nested failed\",\"data\":{\"why\":1}}");
        return CVX_E_APPLICATION;
    }
    cvx_buf_append_str(out, "{\"answer\":123}");
    return CVX_OK;
}

static void test_run_functions(void **state) {
    cvx_app_t *app = callhost_app();
    cvx_abi_result_t r = {0};
    svc_log_t log = {0};
    cvx_abi_services_t svc = {&log, svc_run, NULL, NULL, NULL};
    static const struct {
        const char *fn;
        cvx_kind_t kind;
    } fns[] = {{"__convex_run_query", CVX_KIND_QUERY},
               {"__convex_run_mutation", CVX_KIND_MUTATION},
               {"__convex_run_action", CVX_KIND_ACTION}};
    for (size_t i = 0; i < 3; i++) {
        const char *req = "{\"path\":\"m:other\",\"args\":{\"x\":[1,2]}}";
        /* Not from queries or mutations, even with services. */
        for (int k = CVX_KIND_QUERY; k <= CVX_KIND_MUTATION; k++) {
            cvx_abi_call_config_t cfg = call_cfg((cvx_kind_t)k);
            cfg.services = &svc;
            expect_host_error(call_host(app, fns[i].fn, &cfg, req, &r), &r, CVX_E_FORBIDDEN,
                              "only available in actions");
        }
        /* Not without services. */
        cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_ACTION);
        expect_host_error(call_host(app, fns[i].fn, &cfg, req, &r), &r, CVX_E_FORBIDDEN, "only available in actions");
        assert_int_equal(log.calls, 0);
        cfg.services = &svc;
        expect(call_host(app, fns[i].fn, &cfg, req, &r), &r, CVX_OK);
        assert_string_equal(value_of(&r), "{\"answer\":123}");
        assert_int_equal(log.calls, 1);
        assert_int_equal(log.kind, fns[i].kind);
        assert_string_equal(log.path, "m:other");
        assert_string_equal(log.args, "{\"x\":[1,2]}");
        /* args may be omitted ({}), path may not. */
        expect(call_host(app, fns[i].fn, &cfg, "{\"path\":\"m:other\"}", &r), &r, CVX_OK);
        assert_string_equal(log.args, "{}");
        expect_host_error(call_host(app, fns[i].fn, &cfg, "{\"args\":{}}", &r), &r, CVX_E_INVALID_ARGUMENT,
                          "request needs \"path\" (string) and \"args\" (object)");
        expect_host_error(call_host(app, fns[i].fn, &cfg, "{\"path\":\"m:x\",\"args\":[1]}", &r), &r,
                          CVX_E_INVALID_ARGUMENT, "\"args\" (object)");
        /* A failing nested call: its code, and its error JSON pending. */
        cvx_buf_t ej = {0};
        expect_host_error_json(call_host(app, fns[i].fn, &cfg, "{\"path\":\"m:fails\",\"args\":{}}", &r), &r,
                               CVX_E_APPLICATION, "nested failed", &ej);
        assert_string_equal(ej.data, "{\"message\":\"nested failed\",\"data\":{\"why\":1}}");
        cvx_buf_free(&ej);
        log.calls = 0;
    }
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

/* ---- argument validation ------------------------------------------------------------------ */

typedef struct {
    const char *type, *value;
    const char *msg; /* NULL: accepted */
} typecase_t;

/* Each case's message is Convex's own text (crates/common's validator
 * errors), so clients see what they would see on Convex. */
static void check_types(const typecase_t *cases, size_t n) {
    cvx_arena_t *a = cvx_arena_new(4096);
    for (size_t i = 0; i < n; i++) {
        cvx_value_t *t, *v;
        cvx_err_t err;
        if (cvx_json_parse(a, cases[i].type, strlen(cases[i].type), &t, &err)) fail_msg("type %s: %s", cases[i].type, err.msg);
        if (cvx_json_parse(a, cases[i].value, strlen(cases[i].value), &v, &err))
            fail_msg("value %s: %s", cases[i].value, err.msg);
        err.msg[0] = '\0';
        int rc = cvx_abi_check_type(t, v, &err);
        if (!cases[i].msg && rc != CVX_OK)
            fail_msg("%s rejected %s: %s", cases[i].type, cases[i].value, err.msg);
        if (cases[i].msg) {
            if (rc != CVX_E_ARGS) fail_msg("%s accepted %s", cases[i].type, cases[i].value);
            if (!strstr(err.msg, cases[i].msg))
                fail_msg("%s vs %s: expected \"%s\" in \"%s\"", cases[i].type, cases[i].value, cases[i].msg, err.msg);
            tu_assert_contains(err.msg, "ArgumentValidationError: ");
        }
    }
    cvx_arena_free(a);
}

#define I64_ONE "{\"$integer\":\"AQAAAAAAAAA=\"}"
#define NO_MATCH "Value does not match validator.\n\nValue: "

static void test_check_scalars(void **state) {
    static const typecase_t cases[] = {
        {"{\"type\":\"any\"}", "[1,{\"a\":null}]", NULL},
        {"{}", "\"no tag means any\"", NULL},
        {"{\"type\":\"null\"}", "null", NULL},
        {"{\"type\":\"null\"}", "0", NO_MATCH "0.0\nValidator: v.null()"},
        {"{\"type\":\"int64\"}", I64_ONE, NULL},
        {"{\"type\":\"int64\"}", "1", NO_MATCH "1.0\nValidator: v.int64()"},
        {"{\"type\":\"float64\"}", "1.5", NULL},
        {"{\"type\":\"float64\"}", "{\"$float\":\"AAAAAAAA+H8=\"}", NULL}, /* NaN */
        {"{\"type\":\"float64\"}", I64_ONE, NO_MATCH "1\nValidator: v.float64()"},
        {"{\"type\":\"boolean\"}", "false", NULL},
        {"{\"type\":\"boolean\"}", "\"true\"", NO_MATCH "\"true\"\nValidator: v.boolean()"},
        {"{\"type\":\"string\"}", "\"\"", NULL},
        {"{\"type\":\"string\"}", "null", NO_MATCH "null\nValidator: v.string()"},
        {"{\"type\":\"bytes\"}", "{\"$bytes\":\"aGk=\"}", NULL},
        {"{\"type\":\"bytes\"}", "\"aGk=\"", "Validator: v.bytes()"},
        {"{\"type\":\"document\"}", "{\"_id\":\"x\"}", NULL},
        {"{\"type\":\"document\"}", "[]", NO_MATCH "[]\nValidator: v.record(v.string(), v.any())"},
        {"{\"type\":\"literal\",\"value\":\"admin\"}", "\"admin\"", NULL},
        {"{\"type\":\"literal\",\"value\":\"admin\"}", "\"user\"",
         "`\"user\"` does not match literal validator `v.literal(\"admin\")`."},
        {"{\"type\":\"literal\",\"value\":3}", "3", NULL},
        {"{\"type\":\"literal\",\"value\":3}", "{\"$integer\":\"AwAAAAAAAAA=\"}",
         "`3` does not match literal validator `v.literal(3.0)`."},
        {"{\"type\":\"literal\",\"value\":{\"a\":[true]}}", "{\"a\":[true]}", NULL},
        {"{\"type\":\"from_the_future\"}", "1", NULL}, /* unknown descriptors are accepted */
    };
    check_types(cases, CVX_ARRAY_LEN(cases));

    /* A malformed descriptor is refused when it is compiled (at deploy). */
    cvx_arena_t *a = cvx_arena_new(1024);
    cvx_value_t *t, *v;
    cvx_err_t err;
    assert_int_equal(cvx_json_parse(a, "{\"type\":\"literal\"}", 18, &t, &err), CVX_OK);
    assert_int_equal(cvx_json_parse(a, "1", 1, &v, &err), CVX_OK);
    assert_int_equal(cvx_abi_check_type(t, v, &err), CVX_E_INVALID_VALUE);
    tu_assert_contains(err.msg, "literal type has no \"value\"");
    cvx_arena_free(a);
}

static void test_check_ids(void **state) {
    cvx_chacha_t rng;
    cvx_chacha_seed(&rng, "ids", 3);
    cvx_id_t id;
    cvx_id_generate(10001, &rng, 1700000000000ull, &id);
    char text[CVX_ID_MAX_LEN + 1];
    cvx_id_format(&id, text);
    char good[96], bad[96];
    snprintf(good, sizeof good, "\"%s\"", text);
    /* One character changed: the checksum catches it. */
    text[3] = text[3] == 'a' ? 'b' : 'a';
    snprintf(bad, sizeof bad, "\"%s\"", text);
    const typecase_t cases[] = {
        {"{\"type\":\"id\",\"table\":\"users\"}", good, NULL},
        {"{\"type\":\"id\",\"table\":\"users\"}", bad, "Validator: v.id(\"users\")"},
        {"{\"type\":\"id\",\"table\":\"users\"}", "\"short\"", NO_MATCH "\"short\"\nValidator: v.id(\"users\")"},
        {"{\"type\":\"id\",\"table\":\"users\"}", "7", NO_MATCH "7.0\nValidator: v.id(\"users\")"},
        {"{\"type\":\"array\",\"items\":{\"type\":\"id\",\"table\":\"users\"}}", "[1]",
         "Value does not match validator.\nPath: [0]\nValue: 1.0\nValidator: v.id(\"users\")"},
    };
    check_types(cases, CVX_ARRAY_LEN(cases));
}

static void test_check_composites(void **state) {
    static const typecase_t cases[] = {
        /* optional: null or (in an object) absent */
        {"{\"type\":\"optional\",\"inner\":{\"type\":\"string\"}}", "null", NULL},
        {"{\"type\":\"optional\",\"inner\":{\"type\":\"string\"}}", "\"x\"", NULL},
        {"{\"type\":\"optional\",\"inner\":{\"type\":\"string\"}}", "1", NO_MATCH "1.0\nValidator: v.union(v.string(), v.null())"},
        /* array */
        {"{\"type\":\"array\",\"items\":{\"type\":\"float64\"}}", "[]", NULL},
        {"{\"type\":\"array\",\"items\":{\"type\":\"float64\"}}", "[1,2,3]", NULL},
        {"{\"type\":\"array\",\"items\":{\"type\":\"float64\"}}", "[1,\"2\"]",
         "Value does not match validator.\nPath: [1]\nValue: \"2\"\nValidator: v.float64()"},
        {"{\"type\":\"array\",\"items\":{\"type\":\"float64\"}}", "{}", NO_MATCH "{}\nValidator: v.array(v.float64())"},
        {"{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"}}}", "[[true],[false,0]]",
         "Path: [1][1]\nValue: 0.0\nValidator: v.boolean()"},
        /* record */
        {"{\"type\":\"record\",\"values\":{\"type\":\"int64\"}}", "{\"a\":" I64_ONE ",\"b\":" I64_ONE "}", NULL},
        {"{\"type\":\"record\",\"values\":{\"type\":\"int64\"}}", "{\"a\":" I64_ONE ",\"b\":2}",
         "Path: .values()\nValue: 2.0\nValidator: v.int64()"},
        {"{\"type\":\"record\",\"values\":{\"type\":\"int64\"}}", "[]", NO_MATCH "[]\nValidator: v.record(v.string(), v.int64())"},
        /* object: missing, extra, optional and nested fields */
        {"{\"type\":\"object\",\"fields\":{\"name\":{\"type\":\"string\"},\"email\":{\"type\":\"string\"}}}",
         "{\"name\":\"Ada\",\"email\":\"a@b\"}", NULL},
        {"{\"type\":\"object\",\"fields\":{\"name\":{\"type\":\"string\"},\"email\":{\"type\":\"string\"}}}",
         "{\"name\":\"Ada\"}",
         "Object is missing the required field `email`. Consider wrapping the field validator in `v.optional(...)` if "
         "this is expected.\n\nObject: {name: \"Ada\"}\nValidator: v.object({email: v.string(), name: v.string()})"},
        {"{\"type\":\"object\",\"fields\":{\"name\":{\"type\":\"string\"}}}", "{\"name\":\"Ada\",\"age\":3}",
         "Object contains extra field `age` that is not in the validator.\n\nObject: {age: 3.0, name: \"Ada\"}\n"
         "Validator: v.object({name: v.string()})"},
        {"{\"type\":\"object\",\"fields\":{\"nick\":{\"type\":\"optional\",\"inner\":{\"type\":\"string\"}},"
         "\"meta\":{\"type\":\"any\"}}}",
         "{}", NULL},
        {"{\"type\":\"object\",\"fields\":{\"nick\":{\"type\":\"optional\",\"inner\":{\"type\":\"string\"}}}}",
         "{\"nick\":null}", NULL},
        {"{\"type\":\"object\",\"fields\":{\"a\":{\"type\":\"object\",\"fields\":{\"b\":{\"type\":\"boolean\"}}}}}",
         "{\"a\":{\"b\":1}}", "Path: .a.b\nValue: 1.0\nValidator: v.boolean()"},
        {"{\"type\":\"object\",\"fields\":{\"a\":{\"type\":\"string\"}}}", "\"x\"",
         NO_MATCH "\"x\"\nValidator: v.object({a: v.string()})"},
        {"{\"type\":\"object\"}", "{\"anything\":1}", NULL},
        /* union */
        {"{\"type\":\"union\",\"variants\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "null", NULL},
        {"{\"type\":\"union\",\"variants\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "\"s\"", NULL},
        {"{\"type\":\"union\",\"variants\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", "1",
         NO_MATCH "1.0\nValidator: v.union(v.string(), v.null())"},
        {"{\"type\":\"union\",\"variants\":[{\"type\":\"literal\",\"value\":\"a\"},{\"type\":\"literal\",\"value\":\"b\"}]}",
         "\"c\"", NO_MATCH "\"c\"\nValidator: v.union(v.literal(\"a\"), v.literal(\"b\"))"},
        {"{\"type\":\"union\",\"variants\":[]}", "1", NO_MATCH "1.0\nValidator: v.union()"},
        {"{\"type\":\"union\",\"variants\":[{\"type\":\"object\",\"fields\":{\"k\":{\"type\":\"literal\",\"value\":1}}},"
         "{\"type\":\"object\",\"fields\":{\"k\":{\"type\":\"literal\",\"value\":2},\"x\":{\"type\":\"string\"}}}]}",
         "{\"k\":2,\"x\":\"y\"}", NULL},
    };
    check_types(cases, CVX_ARRAY_LEN(cases));
}

/* A type nested to the depth limit is checked; one level more is refused
 * when it is compiled, not by a stack overflow later. The JSON parser has
 * its own limit below this one, so the descriptors are built directly. */
static cvx_value_t *nested_optional(cvx_arena_t *a, int levels) {
    cvx_value_t *t = cvx_object(a, 1);
    cvx_obj_set(a, t, "type", 4, cvx_string(a, "string", 6));
    for (int i = 0; i < levels; i++) {
        cvx_value_t *o = cvx_object(a, 2);
        cvx_obj_set(a, o, "type", 4, cvx_string(a, "optional", 8));
        cvx_obj_set(a, o, "inner", 5, t);
        t = o;
    }
    return t;
}

static void test_check_depth_limit(void **state) {
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *v;
    cvx_err_t err;
    assert_int_equal(cvx_json_parse(a, "\"s\"", 3, &v, &err), CVX_OK);
    assert_int_equal(cvx_abi_check_type(nested_optional(a, CVX_MAX_DEPTH), v, &err), CVX_OK);
    err.msg[0] = '\0';
    assert_int_equal(cvx_abi_check_type(nested_optional(a, CVX_MAX_DEPTH + 1), v, &err), CVX_E_INVALID_VALUE);
    tu_assert_contains(err.msg, "type descriptor nests deeper than 64");
    cvx_arena_free(a);
}

static void test_validate_args(void **state) {
    cvx_arena_t *a = cvx_arena_new(4096);
    const char *decl = "[{\"name\":\"email\",\"type\":{\"type\":\"string\"}},"
                       "{\"name\":\"age\",\"type\":{\"type\":\"optional\",\"inner\":{\"type\":\"int64\"}}},"
                       "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
                       "{\"name\":\"extra\",\"type\":{\"type\":\"any\"}},"
                       "{\"name\":\"profile\",\"type\":{\"type\":\"object\",\"fields\":{\"bio\":{\"type\":\"string\"}}}},"
                       "{\"noname\":true}]";
    cvx_value_t *args;
    cvx_err_t err;
    assert_int_equal(cvx_json_parse(a, decl, strlen(decl), &args, &err), CVX_OK);
    cvx_fn_t fn;
    memset(&fn, 0, sizeof fn);
    fn.path = "users:create";
    fn.args = args;
    assert_int_equal(cvx_validator_from_args(a, args, &fn.args_v, &err), CVX_OK);
    static const struct {
        const char *value, *msg;
    } cases[] = {
        {"{\"email\":\"a@b\",\"tags\":[],\"profile\":{\"bio\":\"\"}}", NULL},
        {"{\"email\":\"a@b\",\"age\":null,\"tags\":[\"x\"],\"extra\":[1],\"profile\":{\"bio\":\"hi\"}}", NULL},
        {"{\"email\":\"a@b\",\"age\":" I64_ONE ",\"tags\":[],\"profile\":{\"bio\":\"\"}}", NULL},
        {"{\"tags\":[],\"profile\":{\"bio\":\"\"}}", "ArgumentValidationError: Object is missing the required field `email`."},
        {"{\"email\":1,\"tags\":[],\"profile\":{\"bio\":\"\"}}",
         "ArgumentValidationError: Value does not match validator.\nPath: .email\nValue: 1.0\nValidator: v.string()"},
        {"{\"email\":\"a\",\"age\":1,\"tags\":[],\"profile\":{\"bio\":\"\"}}",
         "Path: .age\nValue: 1.0\nValidator: v.union(v.int64(), v.null())"},
        {"{\"email\":\"a\",\"tags\":[\"x\",2],\"profile\":{\"bio\":\"\"}}", "Path: .tags[1]\nValue: 2.0\nValidator: v.string()"},
        {"{\"email\":\"a\",\"tags\":[],\"profile\":{}}",
         "Object is missing the required field `bio`. Consider wrapping the field validator in `v.optional(...)` if this "
         "is expected.\nPath: .profile\nObject: {}\nValidator: v.object({bio: v.string()})"},
        {"{\"email\":\"a\",\"tags\":[],\"profile\":{\"bio\":3}}", "Path: .profile.bio\nValue: 3.0\nValidator: v.string()"},
        {"{\"email\":\"a\",\"tags\":[],\"profile\":{\"bio\":\"\",\"x\":1}}",
         "Object contains extra field `x` that is not in the validator.\nPath: .profile\n"},
        {"{\"email\":\"a\",\"tags\":[],\"profile\":{\"bio\":\"\"},\"admin\":true}",
         "ArgumentValidationError: Object contains extra field `admin` that is not in the validator."},
        {"[]", "ArgumentValidationError: arguments must be an object, got array"},
        {"null", "arguments must be an object, got null"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_value_t *v;
        assert_int_equal(cvx_json_parse(a, cases[i].value, strlen(cases[i].value), &v, &err), CVX_OK);
        err.msg[0] = '\0';
        int rc = cvx_abi_validate_args(&fn, v, NULL, NULL, &err);
        if (!cases[i].msg && rc) fail_msg("%s rejected: %s", cases[i].value, err.msg);
        if (cases[i].msg) {
            assert_int_equal(rc, CVX_E_ARGS);
            if (!strstr(err.msg, cases[i].msg)) fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].value, cases[i].msg, err.msg);
        }
    }
    cvx_arena_free(a);
}

/* ---- __convex_http_fetch ------------------------------------------------------------------- */

/* A tiny HTTP/1.1 responder on 127.0.0.1, one connection at a time. */
typedef struct {
    int fd, port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    int requests;
    char last[8192]; /* the last request (head and body) */
    size_t last_len;
} srv_t;

#define BIG_BODY (17u << 20)

static bool send_all(int c, const void *p, size_t n) {
    const char *s = p;
    while (n) {
        ssize_t k = send(c, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        s += k;
        n -= (size_t)k;
    }
    return true;
}

static void send_big(int c, bool chunked) {
    static char block[65536];
    memset(block, 'b', sizeof block);
    for (size_t sent = 0; sent < BIG_BODY; sent += sizeof block) {
        if (chunked) {
            char h[32];
            snprintf(h, sizeof h, "%zx\r\n", sizeof block);
            if (!send_all(c, h, strlen(h))) return;
        }
        if (!send_all(c, block, sizeof block)) return;
        if (chunked && !send_all(c, "\r\n", 2)) return;
    }
    if (chunked) send_all(c, "0\r\n\r\n", 5);
}

static void srv_handle(srv_t *s, int c) {
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[8192];
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof req - 1 && !end) {
        ssize_t k = recv(c, req + n, sizeof req - 1 - n, 0);
        if (k <= 0) return;
        n += (size_t)k;
        req[n] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    if (!end) return;
    size_t head = (size_t)(end + 4 - req), clen = 0;
    const char *cl = strcasestr(req, "\r\ncontent-length:");
    if (cl && cl < end) clen = strtoul(cl + 17, NULL, 10);
    while (n < head + clen && n < sizeof req - 1) {
        ssize_t k = recv(c, req + n, sizeof req - 1 - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    req[n] = '\0';
    pthread_mutex_lock(&s->mu);
    s->requests++;
    memcpy(s->last, req, n + 1);
    s->last_len = n;
    pthread_mutex_unlock(&s->mu);
    char method[16] = "", path[256] = "";
    sscanf(req, "%15s %255s", method, path);
    char out[9000];
    if (strcmp(path, "/hello") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: Yes Indeed\r\nContent-Length: 11\r\n"
                        "Connection: close\r\n\r\nhello world";
        send_all(c, r, strlen(r));
    } else if (strcmp(path, "/echo") == 0) {
        snprintf(out, sizeof out, "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\nX-Method: %s\r\nConnection: close\r\n\r\n",
                 n - head, method);
        send_all(c, out, strlen(out));
        send_all(c, req + head, n - head);
    } else if (strcmp(path, "/redirect") == 0) {
        const char *r = "HTTP/1.1 302 Found\r\nLocation: /hello\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(c, r, strlen(r));
    } else if (strcmp(path, "/big") == 0) {
        snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\nConnection: close\r\n\r\n", BIG_BODY);
        if (send_all(c, out, strlen(out))) send_big(c, false);
    } else if (strcmp(path, "/bigchunked") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        if (send_all(c, r, strlen(r))) send_big(c, true);
    } else {
        const char *r = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found";
        send_all(c, r, strlen(r));
    }
}

static void *srv_main(void *p) {
    srv_t *s = p;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break;
        }
        if (atomic_load(&s->stop)) {
            close(c);
            break;
        }
        srv_handle(s, c);
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

static void srv_start(srv_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(srv_t *s) {
    atomic_store(&s->stop, true);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    connect(c, (struct sockaddr *)&a, sizeof a);
    close(c);
    pthread_join(s->th, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

static int srv_requests(srv_t *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

#define FETCH "__convex_http_fetch"

static void test_fetch_outside_actions(void **state) {
    cvx_app_t *app = callhost_app();
    cvx_abi_result_t r = {0};
    for (int k = CVX_KIND_QUERY; k <= CVX_KIND_MUTATION; k++) {
        cvx_abi_call_config_t cfg = call_cfg((cvx_kind_t)k);
        cfg.allow_private_fetch = true;
        expect_host_error(call_host(app, FETCH, &cfg, "{\"url\":\"http://127.0.0.1:1/\"}", &r), &r, CVX_E_FORBIDDEN,
                          "fetch is only available in actions");
    }
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

static void test_fetch_loopback(void **state) {
    srv_t srv;
    srv_start(&srv);
    cvx_app_t *app = callhost_app();
    cvx_abi_result_t r = {0};
    char req[512];
    cvx_abi_call_config_t cfg = call_cfg(CVX_KIND_ACTION);

    /* Refused by default: loopback is private, and nothing connects. */
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/hello\",\"method\":\"GET\"}", srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_HTTP,
                      "refused to connect to private address 127.0.0.1 (start the server with --allow-private-fetch");
    snprintf(req, sizeof req, "{\"url\":\"http://localhost:%d/hello\"}", srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_HTTP, "refused to connect to private address");
    assert_int_equal(srv_requests(&srv), 0);

    /* Allowed: status, headers and body round trip. */
    cfg.allow_private_fetch = true;
    snprintf(req, sizeof req,
             "{\"url\":\"http://127.0.0.1:%d/hello\",\"method\":\"GET\",\"headers\":[[\"X-Req\",\"one\"],[\"Accept\",\"text/plain\"]]}",
             srv.port);
    expect(call_host(app, FETCH, &cfg, req, &r), &r, CVX_OK);
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *resp;
    cvx_err_t err;
    if (cvx_json_parse(a, value_of(&r), r.value.len, &resp, &err)) fail_msg("%s: %s", err.msg, value_of(&r));
    assert_true(cvx_obj_get_cstr(resp, "status")->u.f == 200);
    const cvx_value_t *hdrs = cvx_obj_get_cstr(resp, "headers");
    bool saw_test = false, saw_type = false;
    for (size_t i = 0; i < hdrs->u.arr.len; i++) {
        const cvx_value_t *h = hdrs->u.arr.items[i];
        assert_int_equal(h->u.arr.len, 2);
        if (strcmp(h->u.arr.items[0]->u.str.ptr, "x-test") == 0) {
            assert_string_equal(h->u.arr.items[1]->u.str.ptr, "Yes Indeed");
            saw_test = true;
        }
        if (strcmp(h->u.arr.items[0]->u.str.ptr, "content-type") == 0) saw_type = true;
    }
    assert_true(saw_test && saw_type);
    const cvx_value_t *body = cvx_obj_get_cstr(resp, "body");
    assert_int_equal(body->type, CVX_T_BYTES);
    assert_int_equal(body->u.str.len, 11);
    assert_memory_equal(body->u.str.ptr, "hello world", 11);
    pthread_mutex_lock(&srv.mu);
    tu_assert_contains(srv.last, "GET /hello HTTP/1.1\r\n");
    tu_assert_contains(srv.last, "\r\nX-Req: one\r\n");
    tu_assert_contains(srv.last, "User-Agent: cvx/");
    pthread_mutex_unlock(&srv.mu);

    /* POST with a binary body, echoed back. */
    snprintf(req, sizeof req,
             "{\"url\":\"http://127.0.0.1:%d/echo\",\"method\":\"POST\",\"headers\":[[\"Content-Type\",\"application/octet-stream\"]],"
             "\"body\":{\"$bytes\":\"AAEC/w==\"}}",
             srv.port);
    expect(call_host(app, FETCH, &cfg, req, &r), &r, CVX_OK);
    tu_assert_contains(value_of(&r), "\"status\":201");
    tu_assert_contains(value_of(&r), "[\"x-method\",\"POST\"]");
    tu_assert_contains(value_of(&r), "\"body\":{\"$bytes\":\"AAEC/w==\"}");
    /* A string body, another method. */
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/echo\",\"method\":\"PUT\",\"body\":\"plain text\"}", srv.port);
    expect(call_host(app, FETCH, &cfg, req, &r), &r, CVX_OK);
    tu_assert_contains(value_of(&r), "[\"x-method\",\"PUT\"]");
    tu_assert_contains(value_of(&r), "\"body\":{\"$bytes\":\"cGxhaW4gdGV4dA==\"}");
    /* A redirect is followed; the headers are the final response's. */
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/redirect\"}", srv.port);
    expect(call_host(app, FETCH, &cfg, req, &r), &r, CVX_OK);
    tu_assert_contains(value_of(&r), "\"status\":200");
    tu_assert_contains(value_of(&r), "[\"x-test\",\"Yes Indeed\"]");
    assert_null(strstr(value_of(&r), "location"));
    /* A 404 is a response, not an error. */
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/missing\"}", srv.port);
    expect(call_host(app, FETCH, &cfg, req, &r), &r, CVX_OK);
    tu_assert_contains(value_of(&r), "\"status\":404");

    /* Too large: announced by Content-Length, or streamed. */
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/big\"}", srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_HTTP, "response body is larger than 16777216 bytes");
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/bigchunked\"}", srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_HTTP, "response body is larger than 16777216 bytes");

    /* Bad requests. */
    expect_host_error(call_host(app, FETCH, &cfg, "{\"url\":\"ftp://127.0.0.1/x\"}", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "only http:// and https:// URLs are supported (got \"ftp://127.0.0.1/x\")");
    expect_host_error(call_host(app, FETCH, &cfg, "{\"url\":\"file:///etc/passwd\"}", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "only http:// and https://");
    expect_host_error(call_host(app, FETCH, &cfg, "{\"url\":\"/relative\"}", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "only http:// and https://");
    expect_host_error(call_host(app, FETCH, &cfg, "{\"method\":\"GET\"}", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "fetch needs a \"url\"");
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/hello\",\"method\":\"GE T\"}", srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_INVALID_ARGUMENT, "invalid method");
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/hello\",\"headers\":[[\"X\",\"a\\r\\nInjected: 1\"]]}",
             srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_INVALID_ARGUMENT, "contains a line break");
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/hello\",\"headers\":[\"X: y\"]}", srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_INVALID_ARGUMENT, "[name, value] string pairs");
    expect_host_error(call_host(app, FETCH, &cfg, "[\"http://x\"]", &r), &r, CVX_E_INVALID_ARGUMENT,
                      "fetch request must be an object");
    /* Nothing listening. */
    srv_stop(&srv);
    snprintf(req, sizeof req, "{\"url\":\"http://127.0.0.1:%d/hello\"}", srv.port);
    expect_host_error(call_host(app, FETCH, &cfg, req, &r), &r, CVX_E_HTTP, "fetch http://127.0.0.1:");

    cvx_arena_free(a);
    cvx_abi_result_free(&r);
    cvx_app_release(app);
}

static int group_setup(void **state) {
    g_engine = tu_engine(NULL);
    return 0;
}

static int group_teardown(void **state) {
    cvx_engine_free(g_engine);
    return 0;
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_load_abi_version),
        TU_WASM_TEST(test_load_no_metadata),
        TU_WASM_TEST(test_load_record_framing),
        TU_WASM_TEST(test_load_bad_records),
        TU_WASM_TEST(test_load_exports),
        TU_WASM_TEST(test_load_shapes),
        TU_WASM_TEST(test_load_schema),
        TU_WASM_TEST(test_load_good),
        TU_WASM_TEST(test_load_line_numbers),
        TU_WASM_TEST(test_bad_pointers),
        TU_WASM_TEST(test_fd_write_pointers),
        TU_WASM_TEST(test_host_fns_linked),
        TU_WASM_TEST(test_bad_pointers_every_host_fn),
        TU_WASM_TEST(test_protocol),
        TU_WASM_TEST(test_panics_and_exit),
        TU_WASM_TEST(test_logs),
        TU_WASM_TEST(test_log_line_limit),
        TU_WASM_TEST(test_log_bytes),
        TU_WASM_TEST(test_stdout_stderr),
        TU_WASM_TEST(test_long_lines),
        TU_WASM_TEST(test_long_line_cut),
        TU_WASM_TEST(test_log_invalid_utf8),
        TU_WASM_TEST(test_wasi_environment),
        TU_WASM_TEST(test_wasi_clock),
        TU_WASM_TEST(test_wasi_random),
        TU_WASM_TEST(test_db_permissions),
        TU_WASM_TEST(test_run_functions),
        TU_WASM_TEST(test_check_scalars),
        TU_WASM_TEST(test_check_ids),
        TU_WASM_TEST(test_check_composites),
        TU_WASM_TEST(test_check_depth_limit),
        TU_WASM_TEST(test_validate_args),
        TU_WASM_TEST(test_fetch_outside_actions),
        TU_WASM_TEST(test_fetch_loopback),
    };
    if (getenv("CVX_TEST_FILTER")) cmocka_set_test_filter(getenv("CVX_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
