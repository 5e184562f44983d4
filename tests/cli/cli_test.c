/* cli: the real `cvx` binary (CVX_BIN, set by ctest), run as a user would:
 * help and version, usage errors and their exit codes, `cvx build` of the
 * hello example (and of things that are not a functions crate), `cvx run`
 * with results, panics, argument errors, limits, logs and --json.
 *
 * Exit codes (src/cli/cli.h): 0 ok, 1 the function failed, 2 usage,
 * 3 build error, 4 system error. Every child also runs under ASan/LSan, so
 * a leak in the binary shows up as a wrong exit status. */
#define _GNU_SOURCE
#include "support/testutil.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_bin[4096];
static char *g_tmp;        /* scratch dir for this run */
static char g_hello[4096]; /* examples/hello */

typedef struct {
    int status;
    cvx_buf_t out, err;
} run_t;

static void run_free(run_t *r) {
    cvx_buf_free(&r->out);
    cvx_buf_free(&r->err);
}

static const char *out_of(const run_t *r) { return r->out.data ? r->out.data : ""; }
static const char *err_of(const run_t *r) { return r->err.data ? r->err.data : ""; }

/* Runs cvx with a NULL-terminated argument list; stdout and stderr are
 * captured separately (through files, so neither pipe can fill up). */
static void cvx(run_t *r, const char *first, ...) {
    const char *argv[32];
    size_t n = 0;
    argv[n++] = g_bin;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 31; a = va_arg(ap, const char *)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char out_path[4200], err_path[4200];
    snprintf(out_path, sizeof out_path, "%s/stdout", g_tmp);
    snprintf(err_path, sizeof err_path, "%s/stderr", g_tmp);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0) _exit(126);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(g_bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
    }
    memset(r, 0, sizeof *r);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    tu_read(out_path, &r->out);
    tu_read(err_path, &r->err);
}

static void expect_status(const run_t *r, int status) {
    if (r->status != status)
        fail_msg("expected exit %d, got %d\n--- stdout\n%s\n--- stderr\n%s", status, r->status, out_of(r), err_of(r));
}

/* A fresh data directory for `cvx run --data`. */
static const char *data_dir(void) {
    static char dir[4200];
    static int n;
    snprintf(dir, sizeof dir, "%s/data%d", g_tmp, ++n);
    return dir;
}

/* ---- help and usage ------------------------------------------------------------------- */

static void test_help(void **state) {
    static const char *const forms[] = {"--help", "-h", "help"};
    for (size_t i = 0; i < 3; i++) {
        run_t r;
        cvx(&r, forms[i], NULL);
        expect_status(&r, 0);
        tu_assert_contains(out_of(&r), "usage: cvx <command> [options]");
        tu_assert_contains(out_of(&r), "\n  build ");
        tu_assert_contains(out_of(&r), "\n  run ");
        tu_assert_contains(out_of(&r), "Exit codes: 0 ok, 1 the function failed, 2 usage error");
        assert_int_equal(r.err.len, 0);
        run_free(&r);
    }
    run_t r;
    cvx(&r, "--version", NULL);
    expect_status(&r, 0);
    tu_assert_contains(out_of(&r), "cvx " CVX_VERSION " (wasmtime " CVX_WASMTIME_VERSION ", guest ABI 1)");
    run_free(&r);

    cvx(&r, "build", "--help", NULL);
    expect_status(&r, 0);
    tu_assert_contains(out_of(&r), "usage: cvx build [DIR]");
    tu_assert_contains(out_of(&r), "--json");
    run_free(&r);
    cvx(&r, "run", "--help", NULL);
    expect_status(&r, 0);
    tu_assert_contains(out_of(&r), "usage: cvx run [DIR] FUNCTION [ARGS_JSON] [options]");
    tu_assert_contains(out_of(&r), "--data DIR");
    tu_assert_contains(out_of(&r), "--json");
    run_free(&r);
    /* --help wins over everything else on the line. */
    cvx(&r, "run", "hello:add", "--help", NULL);
    expect_status(&r, 0);
    tu_assert_contains(out_of(&r), "usage: cvx run");
    run_free(&r);
}

static void test_usage_errors(void **state) {
    run_t r;
    cvx(&r, NULL);
    expect_status(&r, 2);
    tu_assert_contains(err_of(&r), "usage: cvx <command>");
    assert_int_equal(r.out.len, 0);
    run_free(&r);

    cvx(&r, "frobnicate", NULL);
    expect_status(&r, 2);
    tu_assert_contains(err_of(&r), "unknown command 'frobnicate'");
    run_free(&r);

    static const struct {
        const char *args[6];
        const char *msg;
    } cases[] = {
        {{"run", "--bogus", "hello:add", NULL}, "unknown option '--bogus'"},
        {{"build", "--nope", NULL}, "unknown option '--nope'"},
        {{"build", "--json=yes", NULL}, "option '--json' takes no value"},
        {{"run", "hello:add", "--data", NULL}, "option '--data' needs a value"},
        {{"run", NULL}, "usage: cvx run"},
        {{"run", "--fuel", "lots", "hello:add", NULL}, "--fuel needs a non-negative integer"},
        {{"run", "--fuel=-1", "hello:add", NULL}, "--fuel needs a non-negative integer"},
        {{"run", "--memory", "0", "hello:add", NULL}, "--memory needs a size in MiB"},
        {{"run", "--timeout", "1s", "hello:add", NULL}, "--timeout needs milliseconds"},
        {{"run", "a", "b:c", "{}", "extra", NULL}, "unexpected argument 'extra'"},
        {{"build", "a", "b", NULL}, "unexpected argument 'b'"},
    };
    for (size_t i = 0; i < CVX_ARRAY_LEN(cases); i++) {
        const char *const *a = cases[i].args;
        cvx(&r, a[0], a[1], a[2], a[3], a[4], a[5]);
        if (r.status != 2 || !strstr(err_of(&r), cases[i].msg))
            fail_msg("cvx %s %s %s: expected exit 2 with \"%s\", got %d: %s", a[0], a[1] ? a[1] : "", a[1] && a[2] ? a[2] : "",
                     cases[i].msg, r.status, err_of(&r));
        run_free(&r);
    }
}

/* ---- cvx build ---------------------------------------------------------------------- */

static void test_build_hello(void **state) {
    run_t r;
    cvx(&r, "build", g_hello, NULL);
    expect_status(&r, 0);
    tu_assert_contains(out_of(&r), "built ");
    tu_assert_contains(out_of(&r), "/wasm32-wasip1/release/hello.wasm");
    tu_assert_contains(out_of(&r), " functions:\n");
    tu_assert_contains(out_of(&r), "  query     hello:add(a, b)  src/lib.rs:");
    tu_assert_contains(out_of(&r), "  query     hello:boom()  src/lib.rs:");
    tu_assert_contains(out_of(&r), "  mutation  hello:app_error(code)  src/lib.rs:");
    tu_assert_contains(out_of(&r), "  action    hello:fail()  src/lib.rs:");
    run_free(&r);

    /* Built twice: the second load comes from the module cache. */
    cvx(&r, "build", "--quiet", g_hello, NULL);
    expect_status(&r, 0);
    tu_assert_contains(out_of(&r), "loaded compiled module from cache");
    run_free(&r);

    cvx(&r, "build", g_hello, "--json", NULL);
    expect_status(&r, 0);
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    cvx_value_t *meta;
    cvx_err_t err;
    if (cvx_json_parse(a, out_of(&r), r.out.len, &meta, &err)) fail_msg("--json output: %s\n%s", err.msg, out_of(&r));
    const cvx_value_t *fns = cvx_obj_get_cstr(meta, "functions");
    assert_non_null(fns);
    assert_int_equal(fns->type, CVX_T_ARRAY);
    bool found = false;
    for (size_t i = 0; i < fns->u.arr.len; i++) {
        const cvx_value_t *f = fns->u.arr.items[i];
        const cvx_value_t *path = cvx_obj_get_cstr(f, "path");
        if (path && strcmp(path->u.str.ptr, "hello:add") == 0) {
            found = true;
            assert_string_equal(cvx_obj_get_cstr(f, "kind")->u.str.ptr, "query");
            assert_int_equal(cvx_obj_get_cstr(f, "args")->u.arr.len, 2);
        }
    }
    assert_true(found);
    const cvx_value_t *hash = cvx_obj_get_cstr(meta, "hash");
    assert_true(hash && hash->type == CVX_T_STRING && hash->u.str.len == 64);
    assert_non_null(cvx_obj_get_cstr(meta, "schema"));
    cvx_arena_free(a);
    run_free(&r);
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Two crates of the same name sharing one CARGO_TARGET_DIR (every crate
 * `cvx init` writes is "app"): cargo took the second for the first's
 * build, fresh, and `cvx build` deployed the first's code. Each build is
 * now its own. */
static void copy_hello(const char *dir, const char *fn_name) {
    char path[4300], sdk[4300];
    snprintf(path, sizeof path, "%s/src", dir);
    assert_int_equal(cvx_mkdirs(path, &(cvx_err_t){0}), CVX_OK);
    cvx_buf_t text = {0};
    snprintf(path, sizeof path, "%s/Cargo.toml", g_hello);
    tu_read(path, &text);
    snprintf(sdk, sizeof sdk, "path = \"%s/sdk/rust/convex_sdk\"", CVX_TEST_SOURCE_DIR);
    char *rel = strstr(text.data, "path = \"../../sdk/rust/convex_sdk\"");
    assert_non_null(rel);
    cvx_buf_t out = {0};
    cvx_buf_append(&out, text.data, (size_t)(rel - text.data));
    cvx_buf_append_str(&out, sdk);
    cvx_buf_append_str(&out, rel + strlen("path = \"../../sdk/rust/convex_sdk\""));
    /* Named "twin", not "hello": the two twins share a name with each
     * other only, not with the crate other tests build in this target
     * dir at the same time. */
    char *name = strstr(out.data, "name = \"hello\"");
    assert_non_null(name);
    memcpy(name, "name = \"twin\" ", 14);
    write_file(dir, "Cargo.toml", out.data);
    cvx_buf_free(&text);
    cvx_buf_free(&out);
    snprintf(path, sizeof path, "%s/Cargo.lock", g_hello);
    tu_read(path, &text);
    write_file(dir, "Cargo.lock", text.data);
    cvx_buf_free(&text);
    snprintf(path, sizeof path, "%s/src/lib.rs", g_hello);
    tu_read(path, &text);
    char *fn = strstr(text.data, "fn add(");
    assert_non_null(fn);
    cvx_buf_append(&out, text.data, (size_t)(fn - text.data));
    cvx_buf_printf(&out, "fn %s(", fn_name);
    cvx_buf_append_str(&out, fn + strlen("fn add("));
    snprintf(path, sizeof path, "%s/src", dir);
    write_file(path, "lib.rs", out.data);
    cvx_buf_free(&text);
    cvx_buf_free(&out);
}

static void test_build_same_name_crates(void **state) {
    char target[4200], a[4200], b[4200];
    snprintf(target, sizeof target, "%s/guest-target", CVX_TEST_BINARY_DIR);
    setenv("CARGO_TARGET_DIR", target, 0);
    snprintf(a, sizeof a, "%s/twin-a", g_tmp);
    snprintf(b, sizeof b, "%s/twin-b", g_tmp);
    copy_hello(a, "add_a");
    copy_hello(b, "add_b");
    const char *order[] = {a, b, a, b};
    for (int i = 0; i < 4; i++) {
        run_t r;
        cvx(&r, "build", "--quiet", order[i], NULL);
        expect_status(&r, 0);
        tu_assert_contains(out_of(&r), order[i] == a ? "twin:add_a(a, b)" : "twin:add_b(a, b)");
        run_free(&r);
    }
}

static void test_build_not_a_crate(void **state) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/empty", g_tmp);
    mkdir(dir, 0700);
    run_t r;
    cvx(&r, "build", dir, NULL);
    expect_status(&r, 3);
    tu_assert_contains(err_of(&r), "/empty holds no functions: expected a Rust crate (Cargo.toml, or convex/Cargo.toml) or "
                                   "TypeScript modules in convex/");
    assert_int_equal(r.out.len, 0);
    run_free(&r);
    cvx(&r, "build", "/nonexistent/cvx/dir", NULL);
    expect_status(&r, 3);
    run_free(&r);
    /* `cvx run` of the same: a build error too. */
    cvx(&r, "run", dir, "m:f", "--data", data_dir(), NULL);
    expect_status(&r, 3);
    tu_assert_contains(err_of(&r), "holds no functions");
    run_free(&r);
}

/* A crate that compiles but is no functions crate: rejected like a deploy. */
static void test_build_rejected(void **state) {
    char dir[4200], src[4300];
    snprintf(dir, sizeof dir, "%s/plain", g_tmp);
    snprintf(src, sizeof src, "%s/src", dir);
    mkdir(dir, 0700);
    mkdir(src, 0700);
    write_file(dir, "Cargo.toml",
               "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n");
    write_file(dir, "src/lib.rs", "#[no_mangle]\npub extern \"C\" fn double(x: i32) -> i32 { x * 2 }\n");
    run_t r;
    cvx(&r, "build", dir, NULL);
    expect_status(&r, 3);
    tu_assert_contains(err_of(&r), "was built but would be rejected at deploy: module imports nothing from cvx_1");
    run_free(&r);
    /* And one that does not compile. */
    write_file(dir, "src/lib.rs", "pub fn broken( {\n");
    cvx(&r, "build", dir, NULL);
    expect_status(&r, 3);
    tu_assert_contains(err_of(&r), "cargo failed to build");
    run_free(&r);
}

/* ---- cvx run -------------------------------------------------------------------------- */

static void test_run_add(void **state) {
    run_t r;
    cvx(&r, "run", g_hello, "hello:add", "{\"a\":1,\"b\":2}", "--data", data_dir(), NULL);
    expect_status(&r, 0);
    assert_string_equal(out_of(&r), "3\n");
    run_free(&r);
    /* Options anywhere; an int64 round trip. */
    cvx(&r, "run", "--data", data_dir(), g_hello, "hello:add_int",
        "{\"a\":{\"$integer\":\"AQAAAAAAAAA=\"},\"b\":{\"$integer\":\"AgAAAAAAAAA=\"}}", NULL);
    expect_status(&r, 0);
    assert_string_equal(out_of(&r), "{\"$integer\":\"AwAAAAAAAAA=\"}\n");
    run_free(&r);
    /* Log lines go to stderr, the result to stdout. */
    cvx(&r, "run", g_hello, "hello:printer", "--data", data_dir(), NULL);
    expect_status(&r, 0);
    assert_string_equal(out_of(&r), "\"printed\"\n");
    tu_assert_contains(err_of(&r), "[LOG] hello from println\n");
    tu_assert_contains(err_of(&r), "[ERROR] hello from eprintln\n");
    tu_assert_contains(err_of(&r), "[WARN] a warn line\n");
    run_free(&r);
}

/* The line of `needle` in examples/hello/src/lib.rs. */
static int source_line(const char *needle) {
    char path[4200];
    snprintf(path, sizeof path, "%s/src/lib.rs", g_hello);
    cvx_buf_t src = {0};
    tu_read(path, &src);
    const char *at = strstr(src.data, needle);
    if (!at) fail_msg("%s not found in %s", needle, path);
    int line = 1;
    for (const char *p = src.data; p < at; p++) line += *p == '\n';
    cvx_buf_free(&src);
    return line;
}

static void test_run_panic(void **state) {
    run_t r;
    cvx(&r, "run", g_hello, "hello:boom", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    assert_int_equal(r.out.len, 0);
    tu_assert_contains(err_of(&r), "error (PANIC)");
    tu_assert_contains(err_of(&r), "Uncaught Error: boom: this function always panics");
    char where[64];
    snprintf(where, sizeof where, "at hello:boom (src/lib.rs:%d:", source_line("panic!(\"boom"));
    tu_assert_contains(err_of(&r), where);
    run_free(&r);
}

static void test_run_json(void **state) {
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *v;
    cvx_err_t err;
    run_t r;
    cvx(&r, "run", g_hello, "hello:add", "{\"a\":1.5,\"b\":2}", "--json", "--data", data_dir(), NULL);
    expect_status(&r, 0);
    assert_string_equal(out_of(&r), "{\"status\":\"success\",\"value\":3.5,\"logLines\":[]}\n");
    run_free(&r);

    cvx(&r, "run", g_hello, "hello:boom", "--json", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    if (cvx_json_parse(a, out_of(&r), r.out.len, &v, &err)) fail_msg("%s: %s", err.msg, out_of(&r));
    assert_string_equal(cvx_obj_get_cstr(v, "status")->u.str.ptr, "error");
    assert_string_equal(cvx_obj_get_cstr(v, "code")->u.str.ptr, "PANIC");
    tu_assert_contains(cvx_obj_get_cstr(v, "errorMessage")->u.str.ptr, "boom: this function always panics");
    assert_int_equal(cvx_obj_get_cstr(v, "logLines")->type, CVX_T_ARRAY);
    assert_null(cvx_obj_get_cstr(v, "value"));
    assert_null(cvx_obj_get_cstr(v, "errorData"));
    run_free(&r);

    cvx(&r, "run", g_hello, "hello:app_error", "{\"code\":\"E_X\"}", "--json", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    if (cvx_json_parse(a, out_of(&r), r.out.len, &v, &err)) fail_msg("%s: %s", err.msg, out_of(&r));
    assert_string_equal(cvx_obj_get_cstr(v, "code")->u.str.ptr, "APPLICATION");
    const cvx_value_t *data = cvx_obj_get_cstr(v, "errorData");
    assert_non_null(data);
    assert_string_equal(cvx_obj_get_cstr(data, "code")->u.str.ptr, "E_X");
    run_free(&r);

    cvx(&r, "run", g_hello, "hello:printer", "--json", "--data", data_dir(), NULL);
    expect_status(&r, 0);
    if (cvx_json_parse(a, out_of(&r), r.out.len, &v, &err)) fail_msg("%s: %s", err.msg, out_of(&r));
    const cvx_value_t *logs = cvx_obj_get_cstr(v, "logLines");
    assert_int_equal(logs->u.arr.len, 6);
    assert_string_equal(logs->u.arr.items[0]->u.str.ptr, "[LOG] hello from println");
    assert_int_equal(r.err.len, 0); /* with --json nothing goes to stderr */
    run_free(&r);
    cvx_arena_free(a);
}

static void test_run_bad_args(void **state) {
    run_t r;
    cvx(&r, "run", g_hello, "hello:add", "{bad", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "error (ARGS)");
    tu_assert_contains(err_of(&r), "invalid JSON");
    run_free(&r);
    cvx(&r, "run", g_hello, "hello:add", "{\"a\":\"x\",\"b\":2}", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "ArgumentValidationError: Value does not match validator.\nPath: .a\nValue: \"x\"\nValidator: v.float64()");
    run_free(&r);
    cvx(&r, "run", g_hello, "hello:add", "{\"a\":1}", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "Object is missing the required field `b`.");
    run_free(&r);
    cvx(&r, "run", g_hello, "hello:add", "[1,2]", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "error (ARGS)");
    run_free(&r);
    cvx(&r, "run", g_hello, "hello:nope", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "error (NO_FUNCTION)");
    tu_assert_contains(err_of(&r), "hello:nope");
    run_free(&r);
}

static void test_run_limits(void **state) {
    run_t r;
    cvx(&r, "run", g_hello, "hello:spin", "--fuel", "5000000", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "error (FUEL)");
    tu_assert_contains(err_of(&r), "function exceeded its fuel limit (5000000 units)");
    run_free(&r);
    cvx(&r, "run", g_hello, "hello:spin", "--fuel", "0", "--timeout", "200", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "error (TIMEOUT)");
    run_free(&r);
    cvx(&r, "run", g_hello, "hello:bomb", "--memory", "16", "--data", data_dir(), NULL);
    expect_status(&r, 1);
    tu_assert_contains(err_of(&r), "error (MEMORY)");
    run_free(&r);
}

/* --request-id seeds queries' randomness; --wasm skips the build. */
static void test_run_request_id_and_wasm(void **state) {
    const char *wasm = tu_guest_wasm("examples/hello");
    run_t a, b, c;
    cvx(&a, "run", "--wasm", wasm, "hello:dice", "--request-id", "r1", "--data", data_dir(), NULL);
    cvx(&b, "run", "--wasm", wasm, "hello:dice", "--request-id", "r1", "--data", data_dir(), NULL);
    cvx(&c, "run", "--wasm", wasm, "hello:dice", "--request-id", "r2", "--data", data_dir(), NULL);
    expect_status(&a, 0);
    expect_status(&b, 0);
    expect_status(&c, 0);
    tu_assert_contains(out_of(&a), "\"roll\":");
    assert_string_equal(out_of(&a), out_of(&b));
    assert_string_not_equal(out_of(&a), out_of(&c));
    run_free(&a);
    run_free(&b);
    run_free(&c);

    run_t r;
    cvx(&r, "run", "--wasm", "/nonexistent.wasm", "hello:add", "--data", data_dir(), NULL);
    expect_status(&r, 4);
    tu_assert_contains(err_of(&r), "/nonexistent.wasm");
    run_free(&r);
    char junk[4200];
    snprintf(junk, sizeof junk, "%s/junk.wasm", g_tmp);
    write_file(g_tmp, "junk.wasm", "not wasm at all");
    cvx(&r, "run", "--wasm", junk, "hello:add", "--data", data_dir(), NULL);
    expect_status(&r, 3);
    tu_assert_contains(err_of(&r), "not a WebAssembly module");
    run_free(&r);
}

static int group_setup(void **state) {
    const char *bin = getenv("CVX_BIN");
    snprintf(g_bin, sizeof g_bin, "%s", bin && *bin ? bin : CVX_TEST_BINARY_DIR "/cvx");
    snprintf(g_hello, sizeof g_hello, "%s/examples/hello", CVX_TEST_SOURCE_DIR);
    g_tmp = tu_tmpdir("cli");
    /* One cargo target dir for all guest builds; a module cache of our own. */
    setenv("CARGO_TARGET_DIR", CVX_TEST_BINARY_DIR "/guest-target", 1);
    setenv("CVX_CACHE_DIR", CVX_TEST_BINARY_DIR "/cli-cache", 1);
    return access(g_bin, X_OK) == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
    tu_rmrf(g_tmp);
    free(g_tmp);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_build_hello),
        cmocka_unit_test(test_build_same_name_crates),
        cmocka_unit_test(test_build_not_a_crate),
        cmocka_unit_test(test_build_rejected),
        cmocka_unit_test(test_run_add),
        cmocka_unit_test(test_run_panic),
        cmocka_unit_test(test_run_json),
        cmocka_unit_test(test_run_bad_args),
        cmocka_unit_test(test_run_limits),
        cmocka_unit_test(test_run_request_id_and_wasm),
    };
    if (getenv("CVX_TEST_FILTER")) cmocka_set_test_filter(getenv("CVX_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
