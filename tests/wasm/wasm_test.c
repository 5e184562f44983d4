/* wasm: the sandbox layer on its own, with hand-written WAT guests and
 * hand-made binaries. Module validation and its messages, the limits (fuel,
 * epoch timeout, stack, memory), traps, host functions and their bounds
 * checks, the compiled-module cache, and the binary readers
 * (cvx_wasm_custom_sections / cvx_wasm_imports) on valid, truncated and
 * malformed input. After every failure the same module must still run. */
#include "support/testutil.h"
#include "support/tu_signals.h"

#include <dirent.h>
#include <pthread.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

static void wat(const char *text, cvx_buf_t *out) {
    cvx_err_t err;
    cvx_buf_reset(out);
    if (cvx_wat_to_wasm(text, strlen(text), out, &err)) fail_msg("WAT does not compile: %s\n%s", err.msg, text);
}

static void leb(cvx_buf_t *b, uint64_t v) {
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        if (v) c |= 0x80;
        cvx_buf_append_char(b, (char)c);
    } while (v);
}

/* Appends section `id` with `payload` to a binary. */
static void add_section(cvx_buf_t *wasm, uint8_t id, const void *payload, size_t len) {
    cvx_buf_append_char(wasm, (char)id);
    leb(wasm, len);
    cvx_buf_append(wasm, payload, len);
}

/* Appends a custom section (id 0: name, then data). */
static void add_custom(cvx_buf_t *wasm, const char *name, const void *data, size_t len) {
    cvx_buf_t s = {0};
    leb(&s, strlen(name));
    cvx_buf_append_str(&s, name);
    cvx_buf_append(&s, data, len);
    add_section(wasm, 0, s.data, s.len);
    cvx_buf_free(&s);
}

static void header(cvx_buf_t *b) {
    cvx_buf_reset(b);
    cvx_buf_append(b, "\0asm\x01\0\0\0", 8);
}

/* Host functions of a test module "t". */
static int h_sum(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    uint8_t *p = cvx_instance_mem(inst, a[0].i32, a[1].i32, "t.sum");
    if (!p) return 1;
    int32_t s = 0;
    for (int32_t i = 0; i < a[1].i32; i++) s += p[i];
    r[0].i32 = s;
    return 0;
}

static int h_fail(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    return cvx_instance_trap(inst, a[0].i32, "t.fail says no (%d)", (int)a[0].i32);
}

static int h_silent(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) { return 1; }

static int h_mix(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    r[0].f64 = (double)a[0].i32 + (double)a[1].i64 + (double)a[2].f32 + a[3].f64;
    r[1].i64 = a[1].i64 * 2;
    return 0;
}

static int h_host_ptr(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    r[0].i32 = *(int *)cvx_instance_host(inst);
    return 0;
}

static const cvx_hostfn_t test_fns[] = {
    {"t", "sum", "ii", "i", h_sum, NULL},
    {"t", "fail", "i", "", h_fail, NULL},
    {"t", "silent", "", "", h_silent, NULL},
    {"t", "mix", "iIfF", "FI", h_mix, NULL},
    {"t", "host", "", "i", h_host_ptr, NULL},
};

static cvx_engine_t *engine_with(const char *cache_dir) {
    cvx_engine_config_t cfg;
    cvx_engine_config_default(&cfg);
    cfg.cache_dir = cache_dir;
    cvx_engine_t *e;
    cvx_err_t err;
    if (cvx_engine_new(&cfg, &e, &err)) fail_msg("engine: %s", err.msg);
    if (cvx_engine_define(e, test_fns, CVX_ARRAY_LEN(test_fns), &err)) fail_msg("define: %s", err.msg);
    return e;
}

static cvx_module_t *load_wat(cvx_engine_t *e, const char *text) {
    cvx_buf_t b = {0};
    wat(text, &b);
    cvx_module_t *m;
    cvx_err_t err;
    if (cvx_module_load(e, (const uint8_t *)b.data, b.len, &m, &err)) fail_msg("load: %s\n%s", err.msg, text);
    cvx_buf_free(&b);
    return m;
}

/* Loads WAT that must be refused; returns the code and fills err. */
static int load_wat_err(cvx_engine_t *e, const char *text, cvx_err_t *err) {
    cvx_buf_t b = {0};
    wat(text, &b);
    cvx_module_t *m = NULL;
    int rc = cvx_module_load(e, (const uint8_t *)b.data, b.len, &m, err);
    cvx_buf_free(&b);
    if (rc == CVX_OK) {
        cvx_module_release(m);
        fail_msg("module was accepted:\n%s", text);
    }
    assert_null(m);
    return rc;
}

/* Calls export `name` () -> i32 in a fresh instance under `limits`. */
static int call_i32(cvx_module_t *m, const cvx_limits_t *limits, const char *name, int32_t *out, cvx_err_t *err) {
    cvx_instance_t *inst;
    int rc = cvx_instance_new(m, limits, NULL, &inst, err);
    if (rc) return rc;
    cvx_wval_t r = {0};
    rc = cvx_instance_call(inst, name, NULL, 0, &r, 1, err);
    if (rc == CVX_OK && out) *out = r.i32;
    cvx_instance_free(inst);
    return rc;
}

/* The module exports "ok" () -> i32 returning 42: it must still work. */
static void assert_healthy(cvx_module_t *m) {
    cvx_err_t err;
    int32_t v = 0;
    cvx_limits_t lim = {.fuel = 1000000, .memory_bytes = 16u << 20, .timeout_ms = 5000};
    int rc = call_i32(m, &lim, "ok", &v, &err);
    if (rc) fail_msg("healthy call failed: %s: %s", cvx_code_name(rc), err.msg);
    assert_int_equal(v, 42);
}

#define OK_FN "(func (export \"ok\") (result i32) (i32.const 42))"

/* ---- module validation ------------------------------------------------------------ */

static void test_not_wasm(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_err_t err;
    cvx_module_t *m = (cvx_module_t *)1;
    const char *junk = "hello, this is not a module";
    assert_int_equal(cvx_module_load(e, (const uint8_t *)junk, strlen(junk), &m, &err), CVX_E_BAD_MODULE);
    assert_null(m);
    tu_assert_contains(err.msg, "not a WebAssembly module");
    /* Empty and too-short inputs. */
    assert_int_equal(cvx_module_load(e, (const uint8_t *)"", 0, &m, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "not a WebAssembly module");
    assert_int_equal(cvx_module_load(e, (const uint8_t *)"\0asm", 4, &m, &err), CVX_E_BAD_MODULE);
    /* The right magic, an unknown version. */
    assert_int_equal(cvx_module_load(e, (const uint8_t *)"\0asm\x02\0\0\0", 8, &m, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "unsupported WebAssembly binary version 2");
    /* A valid header and a garbage section: Wasmtime's validator speaks. */
    cvx_buf_t b = {0};
    header(&b);
    uint8_t bogus[] = {1, 2, 3};
    add_section(&b, 1, bogus, sizeof bogus);
    assert_int_equal(cvx_module_load(e, (const uint8_t *)b.data, b.len, &m, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "invalid WebAssembly");
    cvx_buf_free(&b);
    cvx_engine_free(e);
}

static void test_component_refused(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_err_t err;
    cvx_module_t *m;
    /* The component-model preamble: version 0x0d, layer 1. */
    const uint8_t comp[] = {0, 'a', 's', 'm', 0x0d, 0, 1, 0};
    assert_int_equal(cvx_module_load(e, comp, sizeof comp, &m, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "components are not supported");
    cvx_custom_section_t *secs;
    size_t n;
    assert_int_equal(cvx_wasm_custom_sections(comp, sizeof comp, &secs, &n, &err), CVX_E_BAD_MODULE);
    assert_null(secs);
    cvx_engine_free(e);
}

static void test_unknown_import(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_err_t err;
    assert_int_equal(load_wat_err(e,
                                  "(module (import \"env\" \"frobnicate\" (func (param i32)))"
                                  " (memory (export \"memory\") 1))",
                                  &err),
                     CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "unknown import env.frobnicate");
    /* A known module, an unknown name. */
    load_wat_err(e, "(module (import \"t\" \"summ\" (func)) (memory (export \"memory\") 1))", &err);
    tu_assert_contains(err.msg, "unknown import t.summ");
    /* The ABI's functions are not there when the ABI is not registered. */
    load_wat_err(e, "(module (import \"cvx_1\" \"__convex_log\" (func (param i32 i32 i32) (result i32)))"
                    " (memory (export \"memory\") 1))",
                 &err);
    tu_assert_contains(err.msg, "unknown import cvx_1.__convex_log");
    cvx_engine_free(e);
}

static void test_import_wrong_signature(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_err_t err;
    assert_int_equal(load_wat_err(e,
                                  "(module (import \"t\" \"sum\" (func (param i32) (result i32)))"
                                  " (memory (export \"memory\") 1))",
                                  &err),
                     CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "import t.sum has type (i32) -> (i32) but the host provides (i32, i32) -> (i32)");
    load_wat_err(e, "(module (import \"t\" \"mix\" (func (param i32 i64 f32 f64) (result f64)))"
                    " (memory (export \"memory\") 1))",
                 &err);
    tu_assert_contains(err.msg, "import t.mix has type (i32, i64, f32, f64) -> (f64) but the host provides "
                                "(i32, i64, f32, f64) -> (f64, i64)");
    /* With the ABI registered, the example in wasm.h. */
    cvx_engine_t *abi = tu_engine(NULL);
    load_wat_err(abi, "(module (import \"cvx_1\" \"__convex_log\" (func (param i32) (result i32)))"
                      " (memory (export \"memory\") 1))",
                 &err);
    tu_assert_contains(err.msg, "import cvx_1.__convex_log has type (i32) -> (i32) but the host provides "
                                "(i32, i32, i32) -> (i32)");
    cvx_engine_free(abi);
    cvx_engine_free(e);
}

static void test_import_non_function(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_err_t err;
    load_wat_err(e, "(module (import \"env\" \"memory\" (memory 1)) (export \"memory\" (memory 0)))", &err);
    tu_assert_contains(err.msg, "module imports a memory (env.memory); only host functions can be imported");
    load_wat_err(e, "(module (import \"env\" \"g\" (global i32)) (memory (export \"memory\") 1))", &err);
    tu_assert_contains(err.msg, "module imports a global (env.g)");
    load_wat_err(e, "(module (import \"env\" \"tbl\" (table 1 funcref)) (memory (export \"memory\") 1))", &err);
    tu_assert_contains(err.msg, "module imports a table (env.tbl)");
    cvx_engine_free(e);
}

static void test_no_exported_memory(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_err_t err;
    load_wat_err(e, "(module " OK_FN ")", &err);
    tu_assert_contains(err.msg, "does not export its linear memory as \"memory\"");
    /* A memory under another name is not enough. */
    load_wat_err(e, "(module (memory (export \"mem\") 1) " OK_FN ")", &err);
    tu_assert_contains(err.msg, "does not export its linear memory");
    /* Nor is a function called "memory". */
    load_wat_err(e, "(module (memory 1) (func (export \"memory\")))", &err);
    tu_assert_contains(err.msg, "does not export its linear memory");
    cvx_engine_free(e);
}

static void test_module_introspection(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (import \"t\" \"sum\" (func (param i32 i32) (result i32)))"
                                  " (import \"t\" \"fail\" (func (param i32)))"
                                  " (memory (export \"memory\") 1) " OK_FN
                                  " (func (export \"two\") (param i32 i64) (result f64) (f64.const 1)))");
    assert_true(cvx_module_has_func(m, "ok", "", "i"));
    assert_true(cvx_module_has_func(m, "two", "iI", "F"));
    assert_false(cvx_module_has_func(m, "two", "i", "F"));
    assert_false(cvx_module_has_func(m, "memory", "", ""));
    assert_false(cvx_module_has_func(m, "nope", "", "i"));
    const char *const *mods;
    assert_int_equal(cvx_module_import_modules(m, &mods), 1);
    assert_string_equal(mods[0], "t");
    assert_int_equal(strlen(cvx_module_hash(m)), 64);
    assert_false(cvx_module_from_cache(m));
    assert_true(cvx_module_load_ms(m) >= 0);
    const cvx_custom_section_t *secs;
    size_t n = cvx_module_custom_sections(m, &secs);
    for (size_t i = 0; i < n; i++) assert_false(secs[i].name_len == 6 && memcmp(secs[i].name, "cvx.fn", 6) == 0);
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_module_custom_sections(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_buf_t b = {0};
    wat("(module (memory (export \"memory\") 1) " OK_FN ")", &b);
    add_custom(&b, "cvx.fn", "\x02\0\0\0{}", 6);
    add_custom(&b, "other", "", 0);
    add_custom(&b, "cvx.fn", "x", 1);
    add_custom(&b, ".debug_info", "dwarf", 5);
    /* Two modules with the same bytes hash alike. */
    uint8_t h[32];
    char hex[65];
    cvx_sha256(b.data, b.len, h);
    cvx_hex(h, 32, hex);
    cvx_module_t *m;
    cvx_err_t err;
    if (cvx_module_load(e, (const uint8_t *)b.data, b.len, &m, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cvx_module_hash(m), hex);
    /* The caller's bytes are copied: scribbling over them changes nothing. */
    memset(b.data, 0, b.len);
    cvx_buf_free(&b);
    const cvx_custom_section_t *secs;
    size_t n = cvx_module_custom_sections(m, &secs);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        cvx_slice_t name = cvx_slice(secs[i].name, secs[i].name_len);
        if (cvx_slice_eq_cstr(name, "cvx.fn")) {
            if (found == 0) {
                assert_int_equal(secs[i].len, 6);
                assert_memory_equal(secs[i].data, "\x02\0\0\0{}", 6);
            } else {
                assert_int_equal(secs[i].len, 1);
                assert_memory_equal(secs[i].data, "x", 1);
            }
            found++;
        } else if (cvx_slice_eq_cstr(name, "other")) {
            assert_int_equal(found, 1); /* file order */
            assert_int_equal(secs[i].len, 0);
        } else {
            /* DWARF is Wasmtime's alone; the module does not keep it. */
            fail_msg("unexpected section %.*s", (int)secs[i].name_len, secs[i].name);
        }
    }
    assert_int_equal(found, 2);
    assert_healthy(m);
    cvx_module_release(m);
    cvx_engine_free(e);
}

/* A caller that knows the module's hash (the server at start, from what it
 * recorded at deploy) skips hashing; the module goes by that hash. */
static void test_module_load_hashed(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_buf_t b = {0};
    wat("(module (memory (export \"memory\") 1) " OK_FN ")", &b);
    const char *given = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    cvx_module_t *m;
    cvx_err_t err;
    if (cvx_module_load_hashed(e, (const uint8_t *)b.data, b.len, given, &m, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cvx_module_hash(m), given);
    assert_healthy(m);
    cvx_module_release(m);
    /* Without one (or with a malformed one), the bytes are hashed. */
    uint8_t h[32];
    char hex[65];
    cvx_sha256(b.data, b.len, h);
    cvx_hex(h, 32, hex);
    if (cvx_module_load_hashed(e, (const uint8_t *)b.data, b.len, "abc", &m, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cvx_module_hash(m), hex);
    cvx_module_release(m);
    cvx_buf_free(&b);
    cvx_engine_free(e);
}

/* ---- calls, host functions, refcounts ---------------------------------------------- */

static void test_host_functions(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(
        e, "(module (import \"t\" \"sum\" (func $sum (param i32 i32) (result i32)))"
           " (import \"t\" \"mix\" (func $mix (param i32 i64 f32 f64) (result f64 i64)))"
           " (import \"t\" \"host\" (func $host (result i32)))"
           " (memory (export \"memory\") 1) (data (i32.const 100) \"\\01\\02\\03\\04\") " OK_FN
           " (func (export \"sum\") (param i32 i32) (result i32) (call $sum (local.get 0) (local.get 1)))"
           " (func (export \"mix\") (result f64 i64) (call $mix (i32.const 1) (i64.const 2) (f32.const 0.5)"
           "    (f64.const 0.25)))"
           " (func (export \"host\") (result i32) (call $host)))");
    cvx_instance_t *inst;
    cvx_err_t err;
    int host_value = 7;
    cvx_limits_t lim = {.fuel = 1000000};
    assert_int_equal(cvx_instance_new(m, &lim, &host_value, &inst, &err), CVX_OK);
    assert_ptr_equal(cvx_instance_host(inst), &host_value);
    assert_int_equal(cvx_instance_memory_size(inst), 65536);
    cvx_wval_t args[2] = {{.i32 = 100}, {.i32 = 4}}, res[2];
    assert_int_equal(cvx_instance_call(inst, "sum", args, 2, res, 1, &err), CVX_OK);
    assert_int_equal(res[0].i32, 10);
    /* The last byte of memory is in range. */
    args[0].i32 = 65535;
    args[1].i32 = 1;
    assert_int_equal(cvx_instance_call(inst, "sum", args, 2, res, 1, &err), CVX_OK);
    assert_int_equal(res[0].i32, 0);
    /* An empty range at the very end is too. */
    args[0].i32 = 65536;
    args[1].i32 = 0;
    assert_int_equal(cvx_instance_call(inst, "sum", args, 2, res, 1, &err), CVX_OK);
    assert_int_equal(cvx_instance_call(inst, "mix", NULL, 0, res, 2, &err), CVX_OK);
    assert_true(res[0].f64 == 3.75);
    assert_int_equal(res[1].i64, 4);
    assert_int_equal(cvx_instance_call(inst, "host", NULL, 0, res, 1, &err), CVX_OK);
    assert_int_equal(res[0].i32, 7);
    assert_true(cvx_instance_fuel_used(inst) > 0);
    /* Calling something that is not there, or with the wrong arity. */
    assert_int_equal(cvx_instance_call(inst, "nope", NULL, 0, res, 1, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "no exported function \"nope\"");
    assert_int_equal(cvx_instance_call(inst, "memory", NULL, 0, res, 1, &err), CVX_E_BAD_MODULE);
    assert_int_equal(cvx_instance_call(inst, "sum", args, 1, res, 1, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "unexpected signature");
    assert_int_equal(cvx_instance_call(inst, "ok", NULL, 0, res, 0, &err), CVX_E_BAD_MODULE);
    cvx_instance_free(inst);
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_host_bounds(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (import \"t\" \"sum\" (func $sum (param i32 i32) (result i32)))"
                                  " (memory (export \"memory\") 1) " OK_FN
                                  " (func (export \"sum\") (param i32 i32) (result i32)"
                                  "   (call $sum (local.get 0) (local.get 1))))");
    static const struct {
        int32_t ptr, len;
        const char *range;
    } bad[] = {
        {0x7fffffff, 1, "[2147483647, 2147483648)"},
        {0, -1, "[0, -1)"},
        {-1, 1, "[-1, 0)"},
        {65535, 2, "[65535, 65537)"},
        {65536, 1, "[65536, 65537)"},
        {65537, 0, "[65537, 65537)"},
        {0, 65537, "[0, 65537)"},
        {1, 0x7fffffff, "[1, 2147483648)"},
        {0, (64 << 20) + 1, "[0, 67108865)"},
        {(int32_t)0x80000000, 16, "[-2147483648, -2147483632)"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(bad); i++) {
        cvx_instance_t *inst;
        cvx_err_t err;
        assert_int_equal(cvx_instance_new(m, NULL, NULL, &inst, &err), CVX_OK);
        cvx_wval_t args[2] = {{.i32 = bad[i].ptr}, {.i32 = bad[i].len}}, r;
        assert_int_equal(cvx_instance_call(inst, "sum", args, 2, &r, 1, &err), CVX_E_TRAP);
        tu_assert_contains(err.msg, "t.sum: pointer range ");
        tu_assert_contains(err.msg, bad[i].range);
        tu_assert_contains(err.msg, "outside guest memory (size 65536)");
        cvx_instance_free(inst);
        assert_healthy(m);
    }
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_host_trap_codes(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (import \"t\" \"fail\" (func $fail (param i32)))"
                                  " (import \"t\" \"silent\" (func $silent))"
                                  " (memory (export \"memory\") 1) " OK_FN
                                  " (func (export \"fail\") (param i32) (result i32) (call $fail (local.get 0))"
                                  "   (i32.const 1))"
                                  " (func (export \"silent\") (result i32) (call $silent) (i32.const 1)))");
    int codes[] = {CVX_E_TRAP, CVX_E_LOG_LIMIT, CVX_E_MEMORY, CVX_E_LIMIT};
    for (size_t i = 0; i < CVX_ARRAY_LEN(codes); i++) {
        cvx_instance_t *inst;
        cvx_err_t err;
        assert_int_equal(cvx_instance_new(m, NULL, NULL, &inst, &err), CVX_OK);
        cvx_wval_t arg = {.i32 = codes[i]}, r;
        assert_int_equal(cvx_instance_call(inst, "fail", &arg, 1, &r, 1, &err), codes[i]);
        char want[64];
        snprintf(want, sizeof want, "t.fail says no (%d)", codes[i]);
        assert_string_equal(err.msg, want);
        cvx_instance_free(inst);
        assert_healthy(m);
    }
    cvx_err_t err;
    assert_int_equal(call_i32(m, NULL, "silent", NULL, &err), CVX_E_TRAP);
    tu_assert_contains(err.msg, "host function t.silent failed");
    assert_healthy(m);
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_define_invalid(void **state) {
    cvx_engine_config_t cfg;
    cvx_engine_config_default(&cfg);
    cvx_engine_t *e;
    cvx_err_t err;
    assert_int_equal(cvx_engine_new(&cfg, &e, &err), CVX_OK);
    const cvx_hostfn_t bad_sig[] = {{"x", "f", "iq", "", h_silent, NULL}};
    assert_int_equal(cvx_engine_define(e, bad_sig, 1, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "x.f has an invalid signature");
    const cvx_hostfn_t no_cb[] = {{"x", "g", "", "", NULL, NULL}};
    assert_int_equal(cvx_engine_define(e, no_cb, 1, &err), CVX_E_INVALID_ARGUMENT);
    const cvx_hostfn_t too_many[] = {{"x", "h", "iiiiiiiiiiiiiiiii", "", h_silent, NULL}};
    assert_int_equal(cvx_engine_define(e, too_many, 1, &err), CVX_E_INVALID_ARGUMENT);
    /* Defining the same function twice is Wasmtime's error, reported. */
    const cvx_hostfn_t ok[] = {{"x", "k", "", "", h_silent, NULL}};
    assert_int_equal(cvx_engine_define(e, ok, 1, &err), CVX_OK);
    assert_int_not_equal(cvx_engine_define(e, ok, 1, &err), CVX_OK);
    tu_assert_contains(err.msg, "x.k");
    cvx_engine_free(e);
    cvx_engine_free(NULL);
}

static void test_module_refcount(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (memory (export \"memory\") 1) " OK_FN ")");
    cvx_module_retain(m);
    cvx_module_release(m);
    cvx_instance_t *inst;
    cvx_err_t err;
    assert_int_equal(cvx_instance_new(m, NULL, NULL, &inst, &err), CVX_OK);
    /* The instance keeps the module alive after the caller lets go. */
    cvx_module_release(m);
    cvx_wval_t r;
    assert_int_equal(cvx_instance_call(inst, "ok", NULL, 0, &r, 1, &err), CVX_OK);
    assert_int_equal(r.i32, 42);
    cvx_instance_free(inst);
    cvx_module_release(NULL);
    cvx_engine_free(e);
}

/* Fresh instances: globals and memory never leak from one call to the next. */
static void test_fresh_instances(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (memory (export \"memory\") 1) (global $g (mut i32) (i32.const 0))"
                                  " " OK_FN
                                  " (func (export \"bump\") (result i32)"
                                  "   (global.set $g (i32.add (global.get $g) (i32.const 1)))"
                                  "   (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))"
                                  "   (i32.add (global.get $g) (i32.load (i32.const 0)))))");
    for (int i = 0; i < 3; i++) {
        int32_t v = 0;
        cvx_err_t err;
        assert_int_equal(call_i32(m, NULL, "bump", &v, &err), CVX_OK);
        assert_int_equal(v, 2);
    }
    cvx_module_release(m);
    cvx_engine_free(e);
}

typedef struct {
    cvx_module_t *m;
    int ok;
} thread_arg_t;

static void *thread_main(void *p) {
    thread_arg_t *t = p;
    for (int i = 0; i < 25; i++) {
        int32_t v = 0;
        cvx_err_t err;
        cvx_limits_t lim = {.fuel = 1000000, .memory_bytes = 1u << 20, .timeout_ms = 10000};
        if (call_i32(t->m, &lim, "work", &v, &err) == CVX_OK && v == 5050) t->ok++;
        /* Alternate with a trap: a failing call does not disturb the others. */
        if (call_i32(t->m, &lim, "trap", &v, &err) == CVX_E_TRAP) t->ok++;
    }
    return NULL;
}

static void test_threads_share_module(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (memory (export \"memory\") 1) " OK_FN
                                  " (func (export \"trap\") (result i32) unreachable)"
                                  " (func (export \"work\") (result i32) (local $i i32) (local $s i32)"
                                  "   (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))"
                                  "     (local.set $s (i32.add (local.get $s) (local.get $i)))"
                                  "     (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))"
                                  "   (local.get $s)))");
    pthread_t th[4];
    thread_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg_t){m, 0};
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, 50);
    }
    cvx_module_release(m);
    cvx_engine_free(e);
}

/* ---- limits and traps ---------------------------------------------------------------- */

#define SPIN_MODULE                                                                                                 \
    "(module (memory (export \"memory\") 1) " OK_FN " (func (export \"spin\") (result i32) (loop $l (br $l))"     \
    " (i32.const 0)))"

static void test_fuel(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, SPIN_MODULE);
    cvx_limits_t lim = {.fuel = 100000};
    cvx_instance_t *inst;
    cvx_err_t err;
    assert_int_equal(cvx_instance_new(m, &lim, NULL, &inst, &err), CVX_OK);
    cvx_wval_t r;
    assert_int_equal(cvx_instance_call(inst, "spin", NULL, 0, &r, 1, &err), CVX_E_FUEL);
    assert_string_equal(err.msg, "function exceeded its fuel limit (100000 units)");
    assert_int_equal(cvx_instance_fuel_used(inst), 100000);
    cvx_instance_free(inst);
    assert_healthy(m);
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_epoch_timeout(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, SPIN_MODULE);
    cvx_limits_t lim = {.fuel = 0, .timeout_ms = 50}; /* unlimited fuel: only the clock stops it */
    uint64_t t0 = cvx_monotonic_ns();
    cvx_err_t err;
    assert_int_equal(call_i32(m, &lim, "spin", NULL, &err), CVX_E_TIMEOUT);
    uint64_t ms = (cvx_monotonic_ns() - t0) / 1000000;
    assert_string_equal(err.msg, "function timed out (limit 50 ms)");
    print_message("timed out after %llu ms\n", (unsigned long long)ms);
    /* Near the limit: a deadline off by the tick (10 ms) or a few ticks
     * still passes; one counted in the wrong unit (10x) does not. The
     * slack covers instantiation under ASan on a loaded machine. */
    assert_true(ms >= 40);
    if (ms >= 3 * 50 + 250) fail_msg("a 50 ms timeout took %llu ms", (unsigned long long)ms);
    assert_healthy(m);
    /* Without epoch interruption the engine still runs (fuel stops the loop). */
    cvx_engine_config_t cfg;
    cvx_engine_config_default(&cfg);
    cfg.epoch_interruption = false;
    cvx_engine_t *e2;
    assert_int_equal(cvx_engine_new(&cfg, &e2, &err), CVX_OK);
    cvx_module_t *m2 = load_wat(e2, SPIN_MODULE);
    cvx_limits_t lim2 = {.fuel = 50000, .timeout_ms = 1};
    assert_int_equal(call_i32(m2, &lim2, "spin", NULL, &err), CVX_E_FUEL);
    cvx_module_release(m2);
    cvx_engine_free(e2);
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_no_fuel_metering(void **state) {
    cvx_engine_config_t cfg;
    cvx_engine_config_default(&cfg);
    cfg.consume_fuel = false;
    cvx_engine_t *e;
    cvx_err_t err;
    assert_int_equal(cvx_engine_new(&cfg, &e, &err), CVX_OK);
    cvx_module_t *m = load_wat(e, SPIN_MODULE);
    cvx_limits_t lim = {.fuel = 10, .timeout_ms = 30};
    cvx_instance_t *inst;
    assert_int_equal(cvx_instance_new(m, &lim, NULL, &inst, &err), CVX_OK);
    cvx_wval_t r;
    /* Fuel is ignored: the timeout ends it. */
    assert_int_equal(cvx_instance_call(inst, "spin", NULL, 0, &r, 1, &err), CVX_E_TIMEOUT);
    assert_int_equal(cvx_instance_fuel_used(inst), 0);
    cvx_instance_free(inst);
    assert_healthy(m);
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_stack_overflow(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (memory (export \"memory\") 1) " OK_FN
                                  " (func $r (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))"
                                  " (func (export \"deep\") (result i32) (call $r (i32.const 0))))");
    cvx_err_t err;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(call_i32(m, NULL, "deep", NULL, &err), CVX_E_TRAP);
        if (getenv("CVX_TEST_VERBOSE")) print_message("deep -> %s\n", err.msg);
        tu_assert_contains(err.msg, "stack overflow");
        assert_healthy(m);
    }
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_memory_limit(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (memory (export \"memory\") 1) " OK_FN
                                  " (func (export \"grow\") (param i32) (result i32) (memory.grow (local.get 0))))");
    cvx_limits_t lim = {.memory_bytes = 4 * 65536};
    cvx_instance_t *inst;
    cvx_err_t err;
    assert_int_equal(cvx_instance_new(m, &lim, NULL, &inst, &err), CVX_OK);
    cvx_wval_t a = {.i32 = 10}, r;
    assert_int_equal(cvx_instance_call(inst, "grow", &a, 1, &r, 1, &err), CVX_OK);
    assert_int_equal(r.i32, -1); /* beyond the limit: grow fails, no trap */
    a.i32 = 3;
    assert_int_equal(cvx_instance_call(inst, "grow", &a, 1, &r, 1, &err), CVX_OK);
    assert_int_equal(r.i32, 1); /* exactly up to the limit works */
    assert_int_equal(cvx_instance_memory_size(inst), 4 * 65536);
    a.i32 = 1;
    assert_int_equal(cvx_instance_call(inst, "grow", &a, 1, &r, 1, &err), CVX_OK);
    assert_int_equal(r.i32, -1);
    a.i32 = 0x10000; /* 4 GiB */
    assert_int_equal(cvx_instance_call(inst, "grow", &a, 1, &r, 1, &err), CVX_OK);
    assert_int_equal(r.i32, -1);
    cvx_instance_free(inst);
    /* Unlimited: the same grow succeeds. */
    assert_int_equal(cvx_instance_new(m, NULL, NULL, &inst, &err), CVX_OK);
    a.i32 = 10;
    assert_int_equal(cvx_instance_call(inst, "grow", &a, 1, &r, 1, &err), CVX_OK);
    assert_int_equal(r.i32, 1);
    cvx_instance_free(inst);
    assert_healthy(m);
    cvx_module_release(m);

    /* A module whose initial memory is already above the limit. */
    m = load_wat(e, "(module (memory (export \"memory\") 20) " OK_FN ")");
    lim.memory_bytes = 1u << 20; /* 16 pages */
    inst = (cvx_instance_t *)1;
    assert_int_equal(cvx_instance_new(m, &lim, NULL, &inst, &err), CVX_E_MEMORY);
    assert_null(inst);
    tu_assert_contains(err.msg, "function exceeded its memory limit (1 MiB)");
    lim.memory_bytes = 20 * 65536;
    assert_int_equal(call_i32(m, &lim, "ok", NULL, &err), CVX_OK);
    cvx_module_release(m);
    cvx_engine_free(e);
}

static void test_traps(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (memory (export \"memory\") 1) " OK_FN
                                  " (func (export \"unreachable\") (result i32) unreachable)"
                                  " (func (export \"div0\") (result i32) (i32.div_s (i32.const 1) (i32.const 0)))"
                                  " (func (export \"overflow\") (result i32)"
                                  "   (i32.div_s (i32.const -2147483648) (i32.const -1)))"
                                  " (func (export \"oob\") (result i32) (i32.load (i32.const 65535)))"
                                  " (func (export \"conv\") (result i32) (i32.trunc_f64_s (f64.const nan)))"
                                  " (table 1 funcref)"
                                  " (type $t (func (result i32)))"
                                  " (func (export \"null_call\") (result i32) (call_indirect (type $t) (i32.const 0)))"
                                  " (func (export \"bad_index\") (result i32) (call_indirect (type $t) (i32.const 5))))");
    static const struct {
        const char *fn, *msg;
    } cases[] = {
        {"unreachable", "unreachable"},
        {"div0", "integer divide by zero"},
        {"overflow", "integer overflow"},
        {"oob", "memory fault at wasm address 0x10000"},
        {"conv", "invalid conversion to integer"},
        {"null_call", "uninitialized element"},
        {"bad_index", "undefined element"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_err_t err;
        int rc = call_i32(m, NULL, cases[i].fn, NULL, &err);
        if (rc != CVX_E_TRAP) fail_msg("%s: %s: %s", cases[i].fn, cvx_code_name(rc), err.msg);
        if (getenv("CVX_TEST_VERBOSE")) print_message("%s -> %s\n", cases[i].fn, err.msg);
        tu_assert_contains(err.msg, "function trapped: ");
        tu_assert_contains(err.msg, cases[i].msg);
        /* The message is one useful line, not Wasmtime's backtrace dump. */
        assert_null(strstr(err.msg, "Caused by"));
        assert_null(strstr(err.msg, "wasm trap: "));
        assert_healthy(m);
    }
    cvx_module_release(m);
    cvx_engine_free(e);
}

/* A trap in a start function fails instantiation with CVX_E_TRAP. */
static void test_start_trap(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_module_t *m = load_wat(e, "(module (memory (export \"memory\") 1) " OK_FN
                                  " (func $s unreachable) (start $s))");
    cvx_instance_t *inst = (cvx_instance_t *)1;
    cvx_err_t err;
    assert_int_equal(cvx_instance_new(m, NULL, NULL, &inst, &err), CVX_E_TRAP);
    assert_null(inst);
    tu_assert_contains(err.msg, "unreachable");
    cvx_module_release(m);
    cvx_engine_free(e);
}

/* ---- the compiled-module cache ---------------------------------------------------- */

static char *cwasm_file(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) fail_msg("no cache dir %s", dir);
    char *found = NULL;
    struct dirent *ent;
    int n = 0;
    while ((ent = readdir(d))) {
        size_t l = strlen(ent->d_name);
        if (l > 6 && strcmp(ent->d_name + l - 6, ".cwasm") == 0) {
            n++;
            free(found);
            found = malloc(strlen(dir) + l + 2);
            sprintf(found, "%s/%s", dir, ent->d_name);
        }
    }
    closedir(d);
    if (n != 1) fail_msg("expected one .cwasm file in %s, found %d", dir, n);
    return found;
}

static cvx_module_t *load_bytes(cvx_engine_t *e, const cvx_buf_t *b) {
    cvx_module_t *m;
    cvx_err_t err;
    if (cvx_module_load(e, (const uint8_t *)b->data, b->len, &m, &err)) fail_msg("load: %s", err.msg);
    return m;
}

static void test_cache(void **state) {
    char *dir = tu_tmpdir("wasmcache");
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/nested/modules", dir); /* created on demand */
    cvx_buf_t b = {0};
    wat("(module (memory (export \"memory\") 1) " OK_FN
        " (func (export \"f\") (result i32) (i32.const 7)))",
        &b);

    cvx_engine_t *e1 = engine_with(sub);
    cvx_module_t *m = load_bytes(e1, &b);
    assert_false(cvx_module_from_cache(m));
    assert_healthy(m);
    cvx_module_release(m);
    cvx_engine_free(e1);
    char *file = cwasm_file(sub);

    /* A second engine with the same settings loads the compiled code. */
    cvx_engine_t *e2 = engine_with(sub);
    m = load_bytes(e2, &b);
    assert_true(cvx_module_from_cache(m));
    assert_healthy(m);
    int32_t v;
    cvx_err_t err;
    assert_int_equal(call_i32(m, NULL, "f", &v, &err), CVX_OK);
    assert_int_equal(v, 7);
    char hash[65];
    snprintf(hash, sizeof hash, "%s", cvx_module_hash(m));
    tu_assert_contains(file, hash);
    cvx_module_release(m);

    /* Garbage in the cache file: recompiled transparently, and rewritten. */
    FILE *f = fopen(file, "wb");
    fputs("this is not a compiled module", f);
    fclose(f);
    m = load_bytes(e2, &b);
    assert_false(cvx_module_from_cache(m));
    assert_healthy(m);
    cvx_module_release(m);
    m = load_bytes(e2, &b);
    assert_true(cvx_module_from_cache(m));
    assert_healthy(m);
    cvx_module_release(m);

    /* A truncated artifact (a torn write) and an empty one. */
    cvx_buf_t art = {0};
    tu_read(file, &art);
    f = fopen(file, "wb");
    fwrite(art.data, 1, art.len / 2, f);
    fclose(f);
    m = load_bytes(e2, &b);
    assert_false(cvx_module_from_cache(m));
    assert_healthy(m);
    cvx_module_release(m);
    f = fopen(file, "wb");
    fclose(f);
    m = load_bytes(e2, &b);
    assert_false(cvx_module_from_cache(m));
    assert_healthy(m);
    cvx_module_release(m);
    cvx_buf_free(&art);

    /* An engine with different settings does not reuse the artifact. */
    cvx_engine_config_t cfg;
    cvx_engine_config_default(&cfg);
    cfg.cache_dir = sub;
    cfg.consume_fuel = false;
    cvx_engine_t *e3;
    assert_int_equal(cvx_engine_new(&cfg, &e3, &err), CVX_OK);
    m = load_bytes(e3, &b);
    assert_false(cvx_module_from_cache(m));
    assert_int_equal(call_i32(m, NULL, "f", &v, &err), CVX_OK);
    cvx_module_release(m);
    cvx_engine_free(e3);

    /* Different bytes, different entry. */
    cvx_buf_t b2 = {0};
    wat("(module (memory (export \"memory\") 1) " OK_FN " (func (export \"g\") (result i32) (i32.const 8)))", &b2);
    m = load_bytes(e2, &b2);
    assert_false(cvx_module_from_cache(m));
    cvx_module_release(m);
    cvx_buf_free(&b2);
    cvx_engine_free(e2);

    /* An unwritable cache directory is not an error: the module loads. */
    cvx_engine_t *e4 = engine_with("/proc/cvx-no-such-dir");
    m = load_bytes(e4, &b);
    assert_false(cvx_module_from_cache(m));
    assert_healthy(m);
    cvx_module_release(m);
    cvx_engine_free(e4);

    free(file);
    cvx_buf_free(&b);
    tu_rmrf(dir);
    free(dir);
}

/* ---- the binary readers ---------------------------------------------------------- */

static void test_sections_handmade(void **state) {
    cvx_buf_t b = {0};
    cvx_custom_section_t *secs;
    cvx_wasm_import_t *im;
    size_t n;
    cvx_err_t err;

    header(&b);
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_OK);
    assert_int_equal(n, 0);
    cvx_free(secs);
    assert_int_equal(cvx_wasm_imports((const uint8_t *)b.data, b.len, &im, &n, &err), CVX_OK);
    assert_int_equal(n, 0);
    cvx_free(im);

    /* Three custom sections around a (non-custom) type section; an empty
     * name; a name with a NUL; a 2-byte LEB128 size. */
    add_custom(&b, "first", "abc", 3);
    uint8_t types[] = {1, 0x60, 0, 0};
    add_section(&b, 1, types, sizeof types);
    add_custom(&b, "", "x", 1);
    char big[300];
    memset(big, 'z', sizeof big);
    add_custom(&b, "big", big, sizeof big);
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_OK);
    assert_int_equal(n, 3);
    assert_int_equal(secs[0].name_len, 5);
    assert_memory_equal(secs[0].name, "first", 5);
    assert_int_equal(secs[0].len, 3);
    assert_memory_equal(secs[0].data, "abc", 3);
    assert_ptr_equal(secs[0].data, b.data + 8 + 2 + 6); /* points into the input */
    assert_int_equal(secs[1].name_len, 0);
    assert_int_equal(secs[1].len, 1);
    assert_int_equal(secs[2].len, 300);
    assert_memory_equal(secs[2].data, big, 300);
    cvx_free(secs);

    /* Many sections: the array grows. */
    header(&b);
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        add_custom(&b, name, name, strlen(name));
    }
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_OK);
    assert_int_equal(n, 100);
    assert_memory_equal(secs[99].name, "s99", 3);
    cvx_free(secs);

    /* A non-minimal LEB128 size (5 bytes) is accepted. */
    header(&b);
    const uint8_t padded[] = {0, 0x84, 0x80, 0x80, 0x80, 0x00, 1, 'n', 'x', 'y'};
    cvx_buf_append(&b, padded, sizeof padded);
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(secs[0].len, 2);
    cvx_free(secs);
    cvx_buf_free(&b);
}

/* Each of these is refused by both readers, with a message and NULL out. */
static void test_sections_malformed(void **state) {
    static const struct {
        const char *what;
        size_t len;
        const char *bytes;
        const char *msg;
    } cases[] = {
        {"section size past the end", 12, "\0asm\x01\0\0\0\x00\x10\x01\x61", "truncated or malformed section header"},
        {"size LEB128 cut short", 10, "\0asm\x01\0\0\0\x00\x80", "truncated or malformed section header at byte 9"},
        {"size LEB128 over 32 bits", 14, "\0asm\x01\0\0\0\x00\xff\xff\xff\xff\x7f", "malformed section header"},
        {"size LEB128 of 6 bytes", 15, "\0asm\x01\0\0\0\x00\x80\x80\x80\x80\x80\x00", "malformed section header"},
        {"section id without size", 9, "\0asm\x01\0\0\0\x05", "malformed section header"},
        {"not wasm", 8, "\x7f" "ELF\x01\0\0\0", "not a WebAssembly module"},
        {"short", 7, "\0asm\x01\0\0", "not a WebAssembly module"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_custom_section_t *secs = (cvx_custom_section_t *)1;
        cvx_wasm_import_t *im = (cvx_wasm_import_t *)1;
        size_t n = 99;
        cvx_err_t err;
        const uint8_t *p = (const uint8_t *)cases[i].bytes;
        if (cvx_wasm_custom_sections(p, cases[i].len, &secs, &n, &err) != CVX_E_BAD_MODULE)
            fail_msg("custom sections accepted: %s", cases[i].what);
        assert_null(secs);
        assert_int_equal(n, 0);
        tu_assert_contains(err.msg, cases[i].msg);
        n = 99;
        if (cvx_wasm_imports(p, cases[i].len, &im, &n, &err) != CVX_E_BAD_MODULE)
            fail_msg("imports accepted: %s", cases[i].what);
        assert_null(im);
        assert_int_equal(n, 0);
    }

    /* Custom-section specific: the name does not fit its section. */
    cvx_buf_t b = {0};
    header(&b);
    const uint8_t bad_name[] = {0, 3, 10, 'a', 'b'};
    cvx_buf_append(&b, bad_name, sizeof bad_name);
    cvx_custom_section_t *secs;
    size_t n;
    cvx_err_t err;
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_E_BAD_MODULE);
    tu_assert_contains(err.msg, "malformed custom section name");
    assert_null(secs);
    /* The import reader ignores custom sections, so it accepts this. */
    cvx_wasm_import_t *im;
    assert_int_equal(cvx_wasm_imports((const uint8_t *)b.data, b.len, &im, &n, &err), CVX_OK);
    cvx_free(im);
    /* An empty custom section (no name at all). */
    header(&b);
    cvx_buf_append(&b, "\0\0", 2);
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_E_BAD_MODULE);
    cvx_buf_free(&b);
}

static void import_entry(cvx_buf_t *s, const char *mod, const char *name, const void *desc, size_t dlen) {
    leb(s, strlen(mod));
    cvx_buf_append_str(s, mod);
    leb(s, strlen(name));
    cvx_buf_append_str(s, name);
    cvx_buf_append(s, desc, dlen);
}

static void test_imports_handmade(void **state) {
    cvx_buf_t sec = {0}, b = {0};
    leb(&sec, 7);
    import_entry(&sec, "cvx_1", "__convex_log", "\x00\x85\x01", 3);     /* func, type 133 (2-byte LEB) */
    import_entry(&sec, "env", "tbl", "\x01\x70\x01\x01\x10", 5);        /* table funcref, min 1 max 16 */
    import_entry(&sec, "env", "mem", "\x02\x00\x02", 3);                /* memory, min 2 */
    import_entry(&sec, "env", "mem64", "\x02\x05\x01\x80\x80\x04", 6);  /* memory64, min 1 max 65536 */
    import_entry(&sec, "env", "g", "\x03\x7f\x01", 3);                  /* global mut i32 */
    import_entry(&sec, "env", "tag", "\x04\x00\x00", 3);                /* tag, type 0 */
    import_entry(&sec, "", "", "\x02\x08\x01\x10", 4);                  /* memory with a page size */
    header(&b);
    add_custom(&b, "before", "", 0);
    add_section(&b, 2, sec.data, sec.len);
    add_custom(&b, "after", "z", 1);
    cvx_wasm_import_t *im;
    size_t n;
    cvx_err_t err;
    if (cvx_wasm_imports((const uint8_t *)b.data, b.len, &im, &n, &err)) fail_msg("%s", err.msg);
    assert_int_equal(n, 7);
    assert_int_equal(im[0].module_len, 5);
    assert_memory_equal(im[0].module, "cvx_1", 5);
    assert_int_equal(im[0].name_len, 12);
    assert_memory_equal(im[0].name, "__convex_log", 12);
    const uint8_t kinds[] = {0, 1, 2, 2, 3, 4, 2};
    for (size_t i = 0; i < 7; i++) assert_int_equal(im[i].kind, kinds[i]);
    assert_memory_equal(im[3].name, "mem64", 5);
    assert_int_equal(im[6].module_len, 0);
    assert_int_equal(im[6].name_len, 0);
    cvx_free(im);
    cvx_custom_section_t *secs;
    assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_OK);
    assert_int_equal(n, 2);
    cvx_free(secs);

    /* An import section with zero entries. */
    header(&b);
    add_section(&b, 2, "\0", 1);
    assert_int_equal(cvx_wasm_imports((const uint8_t *)b.data, b.len, &im, &n, &err), CVX_OK);
    assert_int_equal(n, 0);
    cvx_free(im);

    /* Two import sections (found by fuzzing: the second one leaked the
     * first's array). The format allows one. */
    header(&b);
    cvx_buf_t one = {0};
    leb(&one, 1);
    import_entry(&one, "cvx_1", "__convex_log", "\x00\x00", 2);
    add_section(&b, 2, one.data, one.len);
    add_section(&b, 2, one.data, one.len);
    im = (cvx_wasm_import_t *)1;
    assert_int_equal(cvx_wasm_imports((const uint8_t *)b.data, b.len, &im, &n, &err), CVX_E_BAD_MODULE);
    assert_null(im);
    tu_assert_contains(err.msg, "more than one import section");
    cvx_buf_free(&one);

    /* A real module from WAT agrees with Wasmtime's view. */
    wat("(module (import \"a\" \"b\" (func)) (import \"c\" \"d\" (memory 1)) (import \"e\" \"f\" (global i64))"
        " (import \"g\" \"h\" (table 2 externref)))",
        &b);
    assert_int_equal(cvx_wasm_imports((const uint8_t *)b.data, b.len, &im, &n, &err), CVX_OK);
    assert_int_equal(n, 4);
    assert_int_equal(im[0].kind, 0);
    assert_int_equal(im[1].kind, 2);
    assert_int_equal(im[2].kind, 3);
    assert_int_equal(im[3].kind, 1);
    assert_memory_equal(im[3].name, "h", 1);
    cvx_free(im);
    cvx_buf_free(&sec);
    cvx_buf_free(&b);
}

static void test_imports_malformed(void **state) {
    static const struct {
        const char *what;
        size_t len;
        const char *payload; /* import section payload */
    } cases[] = {
        {"no count", 0, ""},
        {"count beyond the payload", 5, "\xff\xff\xff\xff\x0f"},
        {"count 2, one entry", 6, "\x02\x01m\x01n\x00"},
        {"module name too long", 4, "\x01\x09m\x01"},
        {"field name too long", 5, "\x01\x01m\x09n"},
        {"no kind", 5, "\x01\x01m\x01n"},
        {"unknown kind", 7, "\x01\x01m\x01n\x05\x00"},
        {"func without type index", 6, "\x01\x01m\x01n\x00"},
        {"func type index unterminated", 7, "\x01\x01m\x01n\x00\x80"},
        {"table without limits", 7, "\x01\x01m\x01n\x01\x70"},
        {"table max missing", 9, "\x01\x01m\x01n\x01\x70\x01\x01"},
        {"memory without flags", 6, "\x01\x01m\x01n\x02"},
        {"memory64 bound unterminated", 9, "\x01\x01m\x01n\x02\x04\xff\xff"},
        {"memory64 bound of 11 bytes", 18, "\x01\x01m\x01n\x02\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
        {"page size missing", 8, "\x01\x01m\x01n\x02\x08\x01"},
        {"global cut short", 7, "\x01\x01m\x01n\x03\x7f"},
        {"tag cut short", 7, "\x01\x01m\x01n\x04\x00"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        cvx_buf_t b = {0};
        header(&b);
        add_section(&b, 2, cases[i].payload, cases[i].len);
        cvx_wasm_import_t *im = (cvx_wasm_import_t *)1;
        size_t n = 99;
        cvx_err_t err;
        err.msg[0] = '\0';
        if (cvx_wasm_imports((const uint8_t *)b.data, b.len, &im, &n, &err) != CVX_E_BAD_MODULE)
            fail_msg("accepted: %s", cases[i].what);
        assert_null(im);
        assert_int_equal(n, 0);
        tu_assert_contains(err.msg, "malformed import");
        /* The custom-section reader does not look inside, and accepts it. */
        cvx_custom_section_t *secs;
        assert_int_equal(cvx_wasm_custom_sections((const uint8_t *)b.data, b.len, &secs, &n, &err), CVX_OK);
        cvx_free(secs);
        cvx_buf_free(&b);
    }
}

/* Every prefix and many single-byte corruptions of a real binary: the
 * readers either accept or refuse with a message; ASan checks the rest. */
static void test_truncations_and_flips(void **state) {
    cvx_buf_t b = {0};
    wat("(module (import \"cvx_1\" \"__convex_log\" (func (param i32 i32 i32) (result i32)))"
        " (import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32 i32 i32 i32) (result i32)))"
        " (import \"m\" \"mem\" (memory 1 2)) (import \"m\" \"t\" (table 1 funcref)) (import \"m\" \"g\" (global (mut f64)))"
        " (func (export \"f\") (result i32) (i32.const 1)))",
        &b);
    add_custom(&b, "cvx.fn", "\x02\0\0\0{}", 6);
    add_custom(&b, "cvx.schema", "\x03\0\0\0nul", 7);
    size_t accepted = 0, refused = 0;
    for (size_t len = 0; len <= b.len; len++) {
        /* A fresh heap copy of exactly `len` bytes so overreads are caught. */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, b.data, len);
        cvx_custom_section_t *secs;
        cvx_wasm_import_t *im;
        size_t n;
        cvx_err_t err;
        int rc1 = cvx_wasm_custom_sections(copy, len, &secs, &n, &err);
        if (rc1) assert_true(err.msg[0] != '\0');
        cvx_free(secs);
        int rc2 = cvx_wasm_imports(copy, len, &im, &n, &err);
        if (rc2 == CVX_OK && len == b.len) assert_int_equal(n, 5);
        cvx_free(im);
        if (rc1 || rc2) refused++;
        else accepted++;
        free(copy);
    }
    assert_true(refused > 0);
    assert_true(accepted > 0);
    for (size_t pos = 8; pos < b.len; pos++) {
        for (int v = 0; v < 4; v++) {
            uint8_t *copy = malloc(b.len);
            memcpy(copy, b.data, b.len);
            static const uint8_t vals[] = {0x00, 0xff, 0x80, 0x7f};
            copy[pos] = vals[v];
            cvx_custom_section_t *secs;
            cvx_wasm_import_t *im;
            size_t n;
            cvx_err_t err;
            if (cvx_wasm_custom_sections(copy, b.len, &secs, &n, &err) == CVX_OK)
                for (size_t i = 0; i < n; i++) {
                    assert_true(secs[i].data >= copy && secs[i].data + secs[i].len <= copy + b.len);
                    assert_true((const uint8_t *)secs[i].name >= copy);
                }
            cvx_free(secs);
            if (cvx_wasm_imports(copy, b.len, &im, &n, &err) == CVX_OK)
                for (size_t i = 0; i < n; i++)
                    assert_true((const uint8_t *)im[i].name + im[i].name_len <= copy + b.len);
            cvx_free(im);
            free(copy);
        }
    }
    cvx_buf_free(&b);
}

/* Loading a module whose bytes are broken goes through the same readers
 * before Wasmtime: never a crash, always CVX_E_BAD_MODULE. */
static void test_load_truncated(void **state) {
    cvx_engine_t *e = engine_with(NULL);
    cvx_buf_t b = {0};
    wat("(module (import \"t\" \"sum\" (func (param i32 i32) (result i32))) (memory (export \"memory\") 1) " OK_FN ")",
        &b);
    for (size_t len = 0; len < b.len; len += 3) {
        cvx_module_t *m = NULL;
        cvx_err_t err;
        int rc = cvx_module_load(e, (const uint8_t *)b.data, len, &m, &err);
        assert_int_equal(rc, CVX_E_BAD_MODULE);
        assert_null(m);
    }
    cvx_module_t *m = load_bytes(e, &b);
    assert_healthy(m);
    cvx_module_release(m);
    cvx_buf_free(&b);
    cvx_engine_free(e);
}

static void test_wat_errors(void **state) {
    cvx_buf_t b = {0};
    cvx_err_t err;
    const char *bad = "(module (func (result i32) (i32.add)))";
    int rc = cvx_wat_to_wasm(bad, strlen(bad), &b, &err);
    /* Text that parses but does not validate is a Wasmtime error too. */
    if (rc == CVX_OK) {
        cvx_engine_t *e = engine_with(NULL);
        cvx_module_t *m;
        assert_int_equal(cvx_module_load(e, (const uint8_t *)b.data, b.len, &m, &err), CVX_E_BAD_MODULE);
        cvx_engine_free(e);
    }
    cvx_buf_reset(&b);
    const char *syntax = "(module (func $f (param i32) (local.get $nope)))";
    assert_int_equal(cvx_wat_to_wasm(syntax, strlen(syntax), &b, &err), CVX_E_INVALID_ARGUMENT);
    tu_assert_contains(err.msg, "invalid WebAssembly text");
    assert_int_equal(cvx_wat_to_wasm("(", 1, &b, &err), CVX_E_INVALID_ARGUMENT);
    cvx_buf_free(&b);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_not_wasm),
        TU_WASM_TEST(test_component_refused),
        TU_WASM_TEST(test_unknown_import),
        TU_WASM_TEST(test_import_wrong_signature),
        TU_WASM_TEST(test_import_non_function),
        TU_WASM_TEST(test_no_exported_memory),
        TU_WASM_TEST(test_module_introspection),
        TU_WASM_TEST(test_module_custom_sections),
        TU_WASM_TEST(test_module_load_hashed),
        TU_WASM_TEST(test_host_functions),
        TU_WASM_TEST(test_host_bounds),
        TU_WASM_TEST(test_host_trap_codes),
        TU_WASM_TEST(test_define_invalid),
        TU_WASM_TEST(test_module_refcount),
        TU_WASM_TEST(test_fresh_instances),
        TU_WASM_TEST(test_threads_share_module),
        TU_WASM_TEST(test_fuel),
        TU_WASM_TEST(test_epoch_timeout),
        TU_WASM_TEST(test_no_fuel_metering),
        TU_WASM_TEST(test_stack_overflow),
        TU_WASM_TEST(test_memory_limit),
        TU_WASM_TEST(test_traps),
        TU_WASM_TEST(test_start_trap),
        TU_WASM_TEST(test_cache),
        TU_WASM_TEST(test_sections_handmade),
        TU_WASM_TEST(test_sections_malformed),
        TU_WASM_TEST(test_imports_handmade),
        TU_WASM_TEST(test_imports_malformed),
        TU_WASM_TEST(test_truncations_and_flips),
        TU_WASM_TEST(test_load_truncated),
        TU_WASM_TEST(test_wat_errors),
    };
    if (getenv("CVX_TEST_FILTER")) cmocka_set_test_filter(getenv("CVX_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
