/* wasm/snapshot: a module whose initial state is a running instance's
 * state (how a JavaScript app starts every call from its initialised
 * heap). Each test builds a guest in WAT, rewrites it to export its
 * globals, runs its initialisation, snapshots it and instantiates the
 * snapshot: memory (size and bytes), every global (bit for bit, negative
 * and NaN values included) and the absence of a start function must carry
 * over, and what a snapshot cannot carry must be refused. */
#include "support/testutil.h"
#include "support/tu_signals.h"

#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

static void wat(const char *text, cvx_buf_t *out) {
    cvx_err_t err;
    cvx_buf_reset(out);
    if (cvx_wat_to_wasm(text, strlen(text), out, &err)) fail_msg("WAT does not compile: %s\n%s", err.msg, text);
}

static cvx_engine_t *engine(void) {
    cvx_engine_t *e;
    cvx_err_t err;
    if (cvx_engine_new(NULL, &e, &err)) fail_msg("engine: %s", err.msg);
    return e;
}

static cvx_module_t *load(cvx_engine_t *e, const cvx_buf_t *b) {
    cvx_module_t *m;
    cvx_err_t err;
    if (cvx_module_load(e, (const uint8_t *)b->data, b->len, &m, &err)) fail_msg("load: %s", err.msg);
    return m;
}

static cvx_instance_t *instance(cvx_module_t *m) {
    cvx_instance_t *inst;
    cvx_err_t err;
    if (cvx_instance_new(m, NULL, NULL, &inst, &err)) fail_msg("instantiate: %s", err.msg);
    return inst;
}

static cvx_wval_t call(cvx_instance_t *inst, const char *name, const cvx_wval_t *args, size_t nargs) {
    cvx_wval_t r = {0};
    cvx_err_t err;
    /* Every export here returns one value, except "init". */
    size_t nres = strcmp(name, "init") ? 1 : 0;
    if (cvx_instance_call(inst, name, args, nargs, &r, nres, &err)) fail_msg("%s: %s", name, err.msg);
    return r;
}

static int32_t call_i32(cvx_instance_t *inst, const char *name) { return call(inst, name, NULL, 0).i32; }

static int32_t load8(cvx_instance_t *inst, int32_t addr) {
    cvx_wval_t a = {.i32 = addr};
    return call(inst, "load", &a, 1).i32;
}

/* Appends a custom section. */
static void add_custom(cvx_buf_t *wasm, const char *name, const char *data) {
    size_t nl = strlen(name), dl = strlen(data);
    cvx_buf_append_char(wasm, 0);
    cvx_buf_append_char(wasm, (char)(1 + nl + dl)); /* short sections only */
    cvx_buf_append_char(wasm, (char)nl);
    cvx_buf_append(wasm, name, nl);
    cvx_buf_append(wasm, data, dl);
}

/* Rewrites `orig` to export its globals, loads it, instantiates it and runs
 * `init` when given. */
static cvx_instance_t *initialised(cvx_engine_t *e, const cvx_buf_t *orig, const char *init) {
    cvx_buf_t rw = {0};
    cvx_err_t err;
    if (cvx_wasm_export_globals((const uint8_t *)orig->data, orig->len, &rw, &err)) fail_msg("export: %s", err.msg);
    cvx_module_t *m = load(e, &rw);
    cvx_buf_free(&rw);
    cvx_instance_t *inst = instance(m);
    cvx_module_release(m); /* the instance holds its own reference */
    if (init) call(inst, init, NULL, 0);
    return inst;
}

static void snapshot(const cvx_buf_t *orig, cvx_instance_t *inst, const cvx_custom_section_t *extra, size_t nextra,
                     cvx_buf_t *out) {
    cvx_err_t err;
    cvx_buf_reset(out);
    if (cvx_wasm_snapshot((const uint8_t *)orig->data, orig->len, inst, extra, nextra, out, &err))
        fail_msg("snapshot: %s", err.msg);
}

static void expect_snapshot_refused(const cvx_buf_t *orig, cvx_instance_t *inst, int code, const char *msg) {
    cvx_buf_t out = {0};
    cvx_err_t err = {0};
    assert_int_equal(cvx_wasm_snapshot((const uint8_t *)orig->data, orig->len, inst, NULL, 0, &out, &err), code);
    assert_string_equal(err.msg, msg);
    cvx_buf_free(&out);
}

/* The guest most tests use: `init` writes scattered bytes (runs close
 * together, far apart, the last byte of memory), grows memory, overwrites
 * part of its data segment and sets globals of every type to values whose
 * encodings are easy to get wrong. */
static const char *GUEST =
    "(module\n"
    "  (memory (export \"memory\") 1 4)\n"
    "  (global $counter (mut i32) (i32.const 3))\n"
    "  (global $big (mut i64) (i64.const 0))\n"
    "  (global $f (mut f32) (f32.const 0))\n"
    "  (global $d (mut f64) (f64.const 0))\n"
    "  (global $k i32 (i32.const 7))\n"
    "  (global $inited (mut i32) (i32.const 0))\n"
    "  (data (i32.const 16) \"hello\")\n"
    "  (func (export \"init\")\n"
    "    (i32.store (i32.const 1000) (i32.const 0x12345678))\n"
    "    (drop (memory.grow (i32.const 1)))\n"
    "    (i32.store8 (i32.const 1300) (i32.const 1))\n"
    "    (i32.store8 (i32.const 70000) (i32.const 99))\n"
    "    (i32.store8 (i32.const 131071) (i32.const 255))\n"
    "    (i32.store8 (i32.const 16) (i32.const 72))\n"
    "    (global.set $counter (i32.const -5))\n"
    "    (global.set $big (i64.const -9223372036854775807))\n"
    "    (global.set $f (f32.const nan:0x400123))\n"
    "    (global.set $d (f64.const -0))\n"
    "    (global.set $inited (i32.const 1)))\n"
    "  (func (export \"inited\") (result i32) (global.get $inited))\n"
    "  (func (export \"counter\") (result i32) (global.get $counter))\n"
    "  (func (export \"bump\") (result i32)\n"
    "    (global.set $counter (i32.add (global.get $counter) (i32.const 1))) (global.get $counter))\n"
    "  (func (export \"big\") (result i64) (global.get $big))\n"
    "  (func (export \"fbits\") (result i32) (i32.reinterpret_f32 (global.get $f)))\n"
    "  (func (export \"dbits\") (result i64) (i64.reinterpret_f64 (global.get $d)))\n"
    "  (func (export \"k\") (result i32) (global.get $k))\n"
    "  (func (export \"load\") (param i32) (result i32) (i32.load8_u (local.get 0)))\n"
    "  (func (export \"pages\") (result i32) (memory.size))\n"
    "  (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0))))\n";

/* ---- exporting globals --------------------------------------------------------- */

static void test_rewritten_module_exports_every_global(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0};
    wat(GUEST, &orig);
    cvx_instance_t *inst = initialised(e, &orig, "init");
    cvx_wasm_global_t g;
    cvx_err_t err;
    static const struct {
        uint8_t type;
        uint64_t bits;
    } want[] = {{0x7f, 0xfffffffbu}, {0x7e, 0x8000000000000001ull}, {0x7d, 0x7fc00123u},
                {0x7c, 0x8000000000000000ull}, {0x7f, 7}, {0x7f, 1}};
    for (uint32_t i = 0; i < CVX_ARRAY_LEN(want); i++) {
        assert_int_equal(cvx_instance_global(inst, i, &g, &err), CVX_OK);
        assert_int_equal(g.type, want[i].type);
        assert_int_equal(g.bits, want[i].bits);
    }
    assert_int_equal(cvx_instance_global(inst, 6, &g, &err), CVX_E_INTERNAL);
    assert_string_equal(err.msg, "global 6 is not exported (was the module rewritten by cvx_wasm_export_globals?)");
    /* The module's own exports are still there. */
    assert_int_equal(call_i32(inst, "k"), 7);
    size_t len;
    assert_non_null(cvx_instance_memory_data(inst, &len));
    assert_int_equal(len, 2 * 65536);
    cvx_instance_free(inst);
    cvx_buf_free(&orig);
    cvx_engine_free(e);
}

/* Imports are checked before anything is written. */
static void test_export_globals_refuses_imported_state(void **state) {
    static const struct {
        const char *wat, *msg;
    } bad[] = {
        {"(module (import \"env\" \"memory\" (memory 1)))", "a module that imports its memory cannot be snapshotted"},
        {"(module (import \"env\" \"g\" (global i32)) (memory (export \"memory\") 1))",
         "a module that imports globals cannot be snapshotted"},
        {"(module (import \"env\" \"g\" (global (mut i64))) (memory (export \"memory\") 1))",
         "a module that imports globals cannot be snapshotted"},
    };
    cvx_buf_t b = {0}, out = {0};
    cvx_err_t err;
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad); i++) {
        wat(bad[i].wat, &b);
        assert_int_equal(cvx_wasm_export_globals((const uint8_t *)b.data, b.len, &out, &err), CVX_E_BAD_MODULE);
        assert_string_equal(err.msg, bad[i].msg);
        assert_int_equal(out.len, 0);
    }
    /* Functions and tables may be imported (with and without a maximum). */
    wat("(module (import \"t\" \"f\" (func (param i32))) (import \"env\" \"t1\" (table 1 funcref))"
        " (import \"env\" \"t2\" (table 1 8 funcref)) (memory (export \"memory\") 1) (global (mut i32) (i32.const 0)))",
        &b);
    assert_int_equal(cvx_wasm_export_globals((const uint8_t *)b.data, b.len, &out, &err), CVX_OK);
    cvx_buf_free(&b);
    cvx_buf_free(&out);
}

static void test_export_globals_refuses_malformed_bytes(void **state) {
    cvx_buf_t b = {0}, out = {0};
    cvx_err_t err;
    assert_int_equal(cvx_wasm_export_globals((const uint8_t *)"junk", 4, &out, &err), CVX_E_BAD_MODULE);
    assert_string_equal(err.msg, "not a WebAssembly core module");
    assert_int_equal(cvx_wasm_export_globals((const uint8_t *)"\0asm\x01\0\0\0\x01\x05\x00", 11, &out, &err),
                     CVX_E_BAD_MODULE);
    assert_string_equal(err.msg, "malformed section header at byte 8");
    /* Every truncation of a real module is refused or rewritten, never read
     * past (the bytes are copied to an exact-size buffer). */
    wat(GUEST, &b);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = cvx_malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        cvx_buf_reset(&out);
        int rc = cvx_wasm_export_globals(copy, n, &out, &err);
        if (rc) assert_int_equal(rc, CVX_E_BAD_MODULE);
        cvx_free(copy);
    }
    cvx_buf_free(&b);
    cvx_buf_free(&out);
}

/* ---- snapshots ----------------------------------------------------------------- */

static void test_snapshot_starts_where_init_left_off(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0}, snap = {0};
    wat(GUEST, &orig);
    cvx_instance_t *inst = initialised(e, &orig, "init");
    snapshot(&orig, inst, NULL, 0, &snap);
    cvx_module_t *m = load(e, &snap);
    cvx_instance_t *s = instance(m);
    /* No init ran in this instance: the state is the snapshot's. */
    assert_int_equal(call_i32(s, "inited"), 1);
    assert_int_equal(call_i32(s, "counter"), -5);
    assert_int_equal(call(s, "big", NULL, 0).i64, -9223372036854775807LL);
    assert_int_equal((uint32_t)call_i32(s, "fbits"), 0x7fc00123u);
    assert_int_equal((uint64_t)call(s, "dbits", NULL, 0).i64, 0x8000000000000000ull);
    assert_int_equal(call_i32(s, "k"), 7);
    assert_int_equal(load8(s, 16), 'H');
    assert_int_equal(load8(s, 17), 'e');
    assert_int_equal(load8(s, 1000), 0x78);
    assert_int_equal(load8(s, 1003), 0x12);
    assert_int_equal(load8(s, 1300), 1);
    assert_int_equal(load8(s, 70000), 99);
    assert_int_equal(load8(s, 131071), 255);
    /* Every byte, not just the ones probed. */
    size_t la, lb;
    const uint8_t *a = cvx_instance_memory_data(inst, &la), *b = cvx_instance_memory_data(s, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    /* The grown size is the new minimum; the maximum stays. */
    assert_int_equal(call_i32(s, "pages"), 2);
    cvx_wval_t two = {.i32 = 2}, one = {.i32 = 1};
    assert_int_equal(call(s, "grow", &two, 1).i32, 2);
    assert_int_equal(call(s, "grow", &one, 1).i32, -1);
    /* Instances of the snapshot are independent of one another. */
    assert_int_equal(call_i32(s, "bump"), -4);
    cvx_instance_t *s2 = instance(m);
    assert_int_equal(call_i32(s2, "counter"), -5);
    assert_int_equal(call_i32(s2, "pages"), 2);
    cvx_instance_free(s2);
    cvx_instance_free(s);
    cvx_module_release(m);
    /* Zeros are not stored: two pages of memory, a few hundred bytes of
     * image. */
    assert_true(snap.len < orig.len + 1024);
    /* The same state gives the same bytes (the module cache keys on them). */
    cvx_buf_t again = {0};
    snapshot(&orig, inst, NULL, 0, &again);
    assert_int_equal(again.len, snap.len);
    assert_memory_equal(again.data, snap.data, snap.len);
    cvx_buf_free(&again);
    cvx_instance_free(inst);
    cvx_buf_free(&orig);
    cvx_buf_free(&snap);
    cvx_engine_free(e);
}

/* The start function ran when the instance was made; in the snapshot it
 * must not run again. A module without a data section gets one. */
static void test_snapshot_drops_the_start_function(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0}, snap = {0};
    wat("(module (memory (export \"memory\") 1)\n"
        "  (global $runs (mut i32) (i32.const 0))\n"
        "  (func $start\n"
        "    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))\n"
        "    (i32.store (i32.const 8) (i32.add (i32.load (i32.const 8)) (i32.const 1))))\n"
        "  (start $start)\n"
        "  (func (export \"runs\") (result i32) (global.get $runs))\n"
        "  (func (export \"stored\") (result i32) (i32.load (i32.const 8))))",
        &orig);
    cvx_instance_t *inst = initialised(e, &orig, NULL);
    assert_int_equal(call_i32(inst, "runs"), 1);
    snapshot(&orig, inst, NULL, 0, &snap);
    cvx_module_t *m = load(e, &snap);
    cvx_instance_t *s = instance(m);
    assert_int_equal(call_i32(s, "runs"), 1);
    assert_int_equal(call_i32(s, "stored"), 1);
    cvx_instance_free(s);
    cvx_module_release(m);
    cvx_instance_free(inst);
    cvx_buf_free(&orig);
    cvx_buf_free(&snap);
    cvx_engine_free(e);
}

/* Old cvx.* metadata gives way to the snapshot's; other custom sections
 * stay, in order. */
static void test_snapshot_replaces_cvx_sections(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0}, snap = {0};
    wat(GUEST, &orig);
    add_custom(&orig, "cvx.fn", "old");
    add_custom(&orig, "keep.me", "kept");
    add_custom(&orig, "cvx.js.sourcemap", "{}");
    add_custom(&orig, "cvx", "short name");
    cvx_instance_t *inst = initialised(e, &orig, "init");
    const cvx_custom_section_t extra[] = {{"cvx.fn", 6, (const uint8_t *)"new", 3},
                                          {"cvx.schema", 10, (const uint8_t *)"", 0}};
    snapshot(&orig, inst, extra, 2, &snap);
    cvx_custom_section_t *secs;
    size_t n;
    cvx_err_t err;
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)snap.data, snap.len, &secs, &n, &err), CVX_OK);
    /* The text format's own "name" section comes first. */
    assert_int_equal(n, 5);
    static const char *const names[] = {"name", "keep.me", "cvx", "cvx.fn", "cvx.schema"};
    static const char *const data[] = {NULL, "kept", "short name", "new", ""};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(secs[i].name_len, strlen(names[i]));
        assert_memory_equal(secs[i].name, names[i], secs[i].name_len);
        if (!data[i]) continue;
        assert_int_equal(secs[i].len, strlen(data[i]));
        assert_memory_equal(secs[i].data, data[i], secs[i].len);
    }
    cvx_free(secs);
    /* And the module still loads and runs from its snapshot. */
    cvx_module_t *m = load(e, &snap);
    cvx_instance_t *s = instance(m);
    assert_int_equal(call_i32(s, "inited"), 1);
    cvx_instance_free(s);
    cvx_module_release(m);
    cvx_instance_free(inst);
    cvx_buf_free(&orig);
    cvx_buf_free(&snap);
    cvx_engine_free(e);
}

/* A data count section (written when code drops a segment) must count
 * the snapshot's segments, not the original's. */
static void test_snapshot_keeps_the_data_count_true(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0}, snap = {0};
    wat("(module (memory (export \"memory\") 1)\n"
        "  (data (i32.const 0) \"a\") (data (i32.const 1) \"b\") (data (i32.const 2) \"c\")\n"
        "  (func (export \"init\") (data.drop 0) (i32.store8 (i32.const 5000) (i32.const 9)))\n"
        "  (func (export \"load\") (param i32) (result i32) (i32.load8_u (local.get 0))))",
        &orig);
    cvx_instance_t *inst = initialised(e, &orig, "init");
    snapshot(&orig, inst, NULL, 0, &snap);
    cvx_module_t *m = load(e, &snap);
    cvx_instance_t *s = instance(m);
    assert_int_equal(load8(s, 0), 'a');
    assert_int_equal(load8(s, 2), 'c');
    assert_int_equal(load8(s, 5000), 9);
    cvx_instance_free(s);
    cvx_module_release(m);
    cvx_instance_free(inst);
    cvx_buf_free(&orig);
    cvx_buf_free(&snap);
    cvx_engine_free(e);
}

/* ---- what a snapshot cannot carry ------------------------------------------------ */

static void test_snapshot_refuses_passive_data(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0};
    wat("(module (memory (export \"memory\") 1) (data $p \"xyz\")\n"
        "  (func (export \"init\") (memory.init $p (i32.const 0) (i32.const 0) (i32.const 3))))",
        &orig);
    cvx_instance_t *inst = initialised(e, &orig, "init");
    expect_snapshot_refused(&orig, inst, CVX_E_BAD_MODULE, "a module with passive data segments cannot be snapshotted");
    cvx_instance_free(inst);
    cvx_buf_free(&orig);
    cvx_engine_free(e);
}

static void test_snapshot_refuses_reference_globals(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0};
    wat("(module (memory (export \"memory\") 1) (global $r (mut funcref) (ref.null func)))", &orig);
    cvx_instance_t *inst = initialised(e, &orig, NULL);
    expect_snapshot_refused(&orig, inst, CVX_E_BAD_MODULE, "global 0 holds a reference, which a snapshot cannot carry");
    cvx_instance_free(inst);
    /* An immutable reference global is kept as written. */
    cvx_buf_t snap = {0};
    wat("(module (memory (export \"memory\") 1) (global $r funcref (ref.null func))"
        " (func (export \"isnull\") (result i32) (ref.is_null (global.get $r))))",
        &orig);
    inst = initialised(e, &orig, NULL);
    snapshot(&orig, inst, NULL, 0, &snap);
    cvx_module_t *m = load(e, &snap);
    cvx_instance_t *s = instance(m);
    assert_int_equal(call_i32(s, "isnull"), 1);
    cvx_instance_free(s);
    cvx_module_release(m);
    cvx_instance_free(inst);
    cvx_buf_free(&snap);
    cvx_buf_free(&orig);
    cvx_engine_free(e);
}

/* The instance must come from the rewritten module: without the global
 * exports there is no state to read. */
static void test_snapshot_needs_the_rewritten_instance(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t orig = {0};
    wat(GUEST, &orig);
    cvx_module_t *m = load(e, &orig);
    cvx_instance_t *inst = instance(m);
    expect_snapshot_refused(&orig, inst, CVX_E_INTERNAL,
                            "global 0 is not exported (was the module rewritten by cvx_wasm_export_globals?)");
    cvx_instance_free(inst);
    cvx_module_release(m);
    /* An instance of another module whose global has another type. */
    cvx_buf_t other = {0};
    wat("(module (memory (export \"memory\") 1) (global (mut i64) (i64.const 1)))", &other);
    inst = initialised(e, &other, NULL);
    wat("(module (memory (export \"memory\") 1) (global (mut i32) (i32.const 1)))", &orig);
    expect_snapshot_refused(&orig, inst, CVX_E_INTERNAL, "global 0 changed type");
    cvx_instance_free(inst);
    cvx_buf_free(&other);
    cvx_buf_free(&orig);
    cvx_engine_free(e);
}

/* Memories a snapshot cannot describe: the module bytes are checked
 * against any instance with a memory. */
static void test_snapshot_refuses_other_memories(void **state) {
    cvx_engine_t *e = engine();
    cvx_buf_t plain = {0}, bad = {0};
    wat("(module (memory (export \"memory\") 1))", &plain);
    cvx_instance_t *inst = initialised(e, &plain, NULL);
    static const struct {
        const char *wat, *msg;
    } cases[] = {
        {"(module (memory (export \"memory\") 1) (memory 1))", "a snapshot needs exactly one memory"},
        {"(module (memory (export \"memory\") i64 1))", "a snapshot needs a 32-bit, unshared memory"},
        {"(module (memory (export \"memory\") 1 1 shared))", "a snapshot needs a 32-bit, unshared memory"},
        {"(module (import \"env\" \"memory\" (memory 1)))", "a module that imports its memory cannot be snapshotted"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        wat(cases[i].wat, &bad);
        expect_snapshot_refused(&bad, inst, CVX_E_BAD_MODULE, cases[i].msg);
    }
    expect_snapshot_refused(&(cvx_buf_t){.data = "junk", .len = 4}, inst, CVX_E_BAD_MODULE, "not a WebAssembly core module");
    cvx_instance_free(inst);
    cvx_buf_free(&plain);
    cvx_buf_free(&bad);
    cvx_engine_free(e);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_rewritten_module_exports_every_global),
        TU_WASM_TEST(test_export_globals_refuses_imported_state),
        TU_WASM_TEST(test_export_globals_refuses_malformed_bytes),
        TU_WASM_TEST(test_snapshot_starts_where_init_left_off),
        TU_WASM_TEST(test_snapshot_drops_the_start_function),
        TU_WASM_TEST(test_snapshot_replaces_cvx_sections),
        TU_WASM_TEST(test_snapshot_keeps_the_data_count_true),
        TU_WASM_TEST(test_snapshot_refuses_passive_data),
        TU_WASM_TEST(test_snapshot_refuses_reference_globals),
        TU_WASM_TEST(test_snapshot_needs_the_rewritten_instance),
        TU_WASM_TEST(test_snapshot_refuses_other_memories),
    };
    if (getenv("CVX_TEST_FILTER")) cmocka_set_test_filter(getenv("CVX_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
