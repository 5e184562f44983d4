/*
 * callbench — the function-call overhead of the sandbox, without HTTP.
 *
 *   native      a direct C call of add(a, b), with the same argument
 *               marshalling a host needs: parse the JSON arguments
 *               {"a":1,"b":2} (cvx's own JSON parser) and write the result
 *               as JSON. The limit for "call a function with JSON in, JSON out".
 *   wasm        cvx_abi_invoke of hello:add (examples/hello): a fresh
 *               instance from the pooling allocator, fuel and epoch limits,
 *               arguments in through the pending buffer, result out through
 *               __convex_output — wasm enter + exit + marshalling.
 *   exec        cvx_exec_call of hello:add on a runtime with a store: adds
 *               argument validation, a request id, the read transaction of
 *               a query and error shaping (everything but HTTP).
 *   exec_get    cvx_exec_call of bench:get (a point read of a seeded user):
 *               a query that touches the store, without HTTP.
 *   exec_get_cached  the same on a runtime with the query result cache (the
 *               server's default): after the first call, a cache hit.
 *
 * With --ts BENCH_TS.pkg (the app package of bench/apps/bench-ts: its
 * esbuild bundle js/bundle.js and source map), the TypeScript app is built
 * as the server builds it at deploy (cvx_js_build: the QuickJS-ng engine
 * runs the bundle's top level once and the heap is snapshotted into a
 * module), then:
 *   ts_build    the time of that build (once), in ms;
 *   ts_empty    cvx_abi_invoke of bench:empty (a query with no arguments
 *               returning null): a fresh engine instance from the snapshot,
 *               the validator of {} and the JavaScript call, like `wasm`.
 *               The TypeScript call-overhead target is ts_empty p50 minus
 *               native p50;
 *   ts_exec_get cvx_exec_call of the TypeScript bench:get on a seeded store
 *               (its own store directory), like exec_get.
 *
 * exec and exec_get run with the query cache off, so they measure a real
 * call every time.
 *
 * Engine settings are the server's (src/server/server.c: default limits,
 * pooling allocator, module cache off here).
 *
 * usage: callbench HELLO.wasm BENCH.wasm TMPDIR [-d SECONDS] [--ts BENCH_TS.pkg]
 * Instruction counts: CALLBENCH_ONLY=exec_get CALLBENCH_COUNT=100
 *   valgrind --tool=callgrind --toggle-collect=exec_call callbench ...
 * Prints one JSON object per line: {"name", "calls", "ns_per_call", "p50_us", "p99_us"}.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include "abi/abi.h"
#include "exec/exec.h"
#include "js/js.h"
#include "store/store.h"
#include "util/util.h"
#include "value/value.h"
#include "wasm/wasm.h"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const cvx_err_t *err) {
    fprintf(stderr, "callbench: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef int (*call_fn)(void *ctx);

static double g_seconds = 2.0;

static void measure(const char *name, call_fn f, void *ctx) {
    /* For instruction counts (valgrind --tool=callgrind): CALLBENCH_ONLY
     * picks one path, CALLBENCH_COUNT runs it exactly that many times. */
    const char *only = getenv("CALLBENCH_ONLY"), *count = getenv("CALLBENCH_COUNT");
    if (only && strcmp(only, name) != 0) return;
    if (count) {
        long k = atol(count);
        for (long i = 0; i < k; i++)
            if (f(ctx)) {
                fprintf(stderr, "callbench: %s failed\n", name);
                exit(1);
            }
        printf("{\"name\": \"%s\", \"calls\": %ld}\n", name, k);
        return;
    }
    /* warm-up */
    uint64_t t0 = now_ns();
    while (now_ns() - t0 < 300000000ull)
        if (f(ctx)) {
            fprintf(stderr, "callbench: %s failed\n", name);
            exit(1);
        }
    size_t cap = 1 << 20, n = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    uint64_t start = now_ns(), end = start + (uint64_t)(g_seconds * 1e9), t = start;
    while (t < end) {
        uint64_t a = now_ns();
        if (f(ctx)) {
            fprintf(stderr, "callbench: %s failed\n", name);
            exit(1);
        }
        t = now_ns();
        if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
        lat[n++] = t - a;
    }
    double total = (double)(t - start);
    qsort(lat, n, sizeof *lat, cmp);
    printf("{\"name\": \"%s\", \"calls\": %zu, \"ns_per_call\": %.1f, \"rps\": %.1f, \"p50_us\": %.3f, \"p99_us\": %.3f}\n", name, n,
           total / (double)n, (double)n / (total / 1e9), (double)lat[n / 2] / 1000.0, (double)lat[(size_t)((double)(n - 1) * 0.99)] / 1000.0);
    fflush(stdout);
    free(lat);
}

/* ---- native ------------------------------------------------------------------- */

__attribute__((noinline)) static double add(double a, double b) { return a + b; }

static int native_call(void *ctx) {
    (void)ctx;
    static const char args[] = "{\"a\":1,\"b\":2}";
    cvx_arena_t *arena = cvx_arena_new(1024);
    cvx_value_t *v;
    cvx_err_t err;
    if (cvx_json_parse(arena, args, sizeof args - 1, &v, &err)) return 1;
    const cvx_value_t *a = cvx_obj_get_cstr(v, "a"), *b = cvx_obj_get_cstr(v, "b");
    if (!a || !b || a->type != CVX_T_FLOAT64 || b->type != CVX_T_FLOAT64) return 1;
    double r = add(a->u.f, b->u.f);
    char out[64];
    int n = snprintf(out, sizeof out, "%.17g", r);
    cvx_arena_free(arena);
    return n <= 0 || strcmp(out, "3") != 0;
}

/* ---- wasm (abi layer) ------------------------------------------------------------ */

typedef struct {
    cvx_app_t *app;
    const cvx_fn_t *fn;
    cvx_limits_t limits;
    const char *args, *expect; /* NULL: hello:add's */
} wasm_ctx_t;

static int wasm_call(void *p) {
    wasm_ctx_t *c = p;
    const char *args = c->args ? c->args : "{\"a\":1,\"b\":2}";
    const char *expect = c->expect ? c->expect : "3";
    cvx_abi_call_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = CVX_KIND_QUERY;
    cfg.request_id = "bench-request";
    cfg.now_ms = 1700000000000.0;
    cfg.max_log_lines = 1000;
    cvx_abi_result_t r = {0};
    int rc = cvx_abi_invoke(c->app, c->fn, &cfg, &c->limits, args, strlen(args), &r);
    int bad = rc != 0 || !r.value.data || strcmp(r.value.data, expect) != 0;
    if (bad) fprintf(stderr, "wasm: rc %d value %s message %s\n", rc, r.value.data ? r.value.data : "-", r.message.data ? r.message.data : "-");
    cvx_abi_result_free(&r);
    return bad;
}

/* ---- exec layer ----------------------------------------------------------------- */

typedef struct {
    cvx_runtime_t *rt;
    const char *path, *args, *expect;
} exec_ctx_t;

static int exec_call(void *p) {
    exec_ctx_t *c = p;
    cvx_request_t req;
    memset(&req, 0, sizeof req);
    req.path = c->path;
    req.args_json = c->args;
    req.args_len = strlen(c->args);
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    int rc = cvx_exec_call(c->rt, &req, &resp);
    int bad = rc != 0 || !resp.r.value.data || (c->expect && !strstr(resp.r.value.data, c->expect));
    if (bad) fprintf(stderr, "exec %s: rc %d %s\n", c->path, rc, resp.r.message.data ? resp.r.message.data : "");
    cvx_response_free(&resp);
    return bad;
}

static cvx_app_t *load_app(cvx_engine_t *e, const char *path) {
    cvx_buf_t wasm = {0};
    cvx_err_t err;
    if (cvx_read_file(path, &wasm, &err)) die(path, &err);
    cvx_app_t *app;
    if (cvx_app_load(e, (const uint8_t *)wasm.data, wasm.len, &app, &err)) die("app load", &err);
    cvx_buf_free(&wasm);
    return app;
}

/* ---- TypeScript (the app package of bench/apps/bench-ts) ------------------------- */

/* Builds the package's bundle into a JavaScript module as the server does
 * at deploy (src/server/deploy.c: the query limits, the source map) and
 * loads it as an app. */
static cvx_app_t *load_ts_app(cvx_engine_t *e, const char *path, double *build_ms) {
    cvx_buf_t pkg = {0}, js = {0};
    cvx_err_t err;
    if (cvx_read_file(path, &pkg, &err)) die(path, &err);
    cvx_pkg_entry_t *ents;
    size_t n;
    if (cvx_pkg_parse(pkg.data, pkg.len, &ents, &n, &err)) die(path, &err);
    const cvx_pkg_entry_t *bundle = cvx_pkg_find(ents, n, "js/bundle.js");
    const cvx_pkg_entry_t *map = cvx_pkg_find(ents, n, "js/bundle.js.map");
    if (!bundle) die("the TypeScript package has no js/bundle.js", NULL);
    cvx_exec_limits_t l;
    cvx_exec_limits_default(&l);
    cvx_limits_t lim = {l.fuel[CVX_KIND_QUERY], l.memory_bytes[CVX_KIND_QUERY], l.timeout_ms[CVX_KIND_QUERY]};
    cvx_js_source_t src = {(const char *)bundle->data, bundle->len, map ? (const char *)map->data : NULL,
                           map ? map->len : 0};
    uint64_t t0 = now_ns();
    if (cvx_js_build(e, &src, &lim, &js, NULL, &err)) die("cvx_js_build", &err);
    *build_ms = (double)(now_ns() - t0) / 1e6;
    cvx_app_source_t s = {(const uint8_t *)js.data, js.len, NULL, "convex/ (TypeScript)"};
    cvx_app_t *app;
    if (cvx_app_load_modules(e, &s, 1, &app, &err)) die("TypeScript app load", &err);
    cvx_free(ents);
    cvx_buf_free(&pkg);
    cvx_buf_free(&js);
    return app;
}

/* The first id of a JSON array of ids (seed_users' answer) into id[]. */
static void first_id(const char *json, char *id, size_t n) {
    const char *q = json ? strchr(json, '"') : NULL;
    const char *e = q ? strchr(q + 1, '"') : NULL;
    if (!e || (size_t)(e - q - 1) >= n) die("seed result", NULL);
    snprintf(id, n, "%.*s", (int)(e - q - 1), q + 1);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: callbench HELLO.wasm BENCH.wasm TMPDIR [-d SECONDS] [--ts BENCH_TS.pkg]\n");
        return 2;
    }
    const char *ts_pkg = NULL;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-d")) g_seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ts")) ts_pkg = argv[i + 1];
        else {
            fprintf(stderr, "callbench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    cvx_err_t err;

    measure("native", native_call, NULL);

    /* Module load: compile (no cache) vs deserialize from the on-disk cache. */
    for (int cached = 0; cached < 2; cached++) {
        char cache[4096];
        snprintf(cache, sizeof cache, "%s/modules", argv[3]);
        double best = 1e18, sum = 0;
        int from_cache = 0;
        for (int i = 0; i < 5; i++) {
            cvx_engine_config_t c;
            cvx_engine_config_default(&c);
            c.pooling = getenv("CVX_NO_POOLING") == NULL;
            c.cache_dir = cached ? cache : NULL;
            cvx_engine_t *e;
            if (cvx_engine_new(&c, &e, &err) || cvx_abi_register(e, &err)) die("engine", &err);
            if (cached && i == 0) cvx_app_release(load_app(e, argv[2])); /* fills the cache */
            uint64_t a = now_ns();
            cvx_app_t *app = load_app(e, argv[2]);
            double ms = (double)(now_ns() - a) / 1e6;
            cvx_module_t *const *mods;
            from_cache = cvx_app_modules(app, &mods) == 1 && cvx_module_from_cache(mods[0]);
            cvx_app_release(app);
            cvx_engine_free(e);
            sum += ms;
            if (ms < best) best = ms;
        }
        printf("{\"name\": \"%s\", \"min_ms\": %.3f, \"mean_ms\": %.3f, \"from_cache\": %s}\n",
               cached ? "load_cached" : "load_compile", best, sum / 5, from_cache ? "true" : "false");
        fflush(stdout);
    }

    cvx_engine_config_t ec;
    cvx_engine_config_default(&ec);
    ec.pooling = getenv("CVX_NO_POOLING") == NULL; /* as the server */
    cvx_engine_t *engine;
    if (cvx_engine_new(&ec, &engine, &err) || cvx_abi_register(engine, &err)) die("engine", &err);
    cvx_app_t *hello = load_app(engine, argv[1]);
    cvx_exec_limits_t lim;
    cvx_exec_limits_default(&lim);
    wasm_ctx_t wc = {.app = hello, .fn = cvx_app_find(hello, "hello:add", 9)};
    if (!wc.fn) die("hello:add not found", NULL);
    wc.limits.fuel = lim.fuel[CVX_KIND_QUERY];
    wc.limits.memory_bytes = lim.memory_bytes[CVX_KIND_QUERY];
    wc.limits.timeout_ms = lim.timeout_ms[CVX_KIND_QUERY];
    measure("wasm", wasm_call, &wc);

    cvx_app_t *ts = NULL;
    if (ts_pkg) {
        double build_ms;
        ts = load_ts_app(engine, ts_pkg, &build_ms);
        printf("{\"name\": \"ts_build\", \"ms\": %.1f}\n", build_ms);
        fflush(stdout);
        wasm_ctx_t tc = {.app = ts, .fn = cvx_app_find(ts, "bench:empty", 11), .limits = wc.limits, .args = "{}",
                         .expect = "null"};
        if (!tc.fn) die("bench:empty not found in the TypeScript app", NULL);
        measure("ts_empty", wasm_call, &tc);
    }

    /* Metering: the same compute-bound guest code with fuel (the default:
     * the seed's instruction limits) and with epoch interruption only. */
    for (int fuel = 1; fuel >= 0; fuel--) {
        cvx_engine_config_t mc;
        cvx_engine_config_default(&mc);
        mc.pooling = getenv("CVX_NO_POOLING") == NULL;
        mc.consume_fuel = fuel;
        cvx_engine_t *me;
        if (cvx_engine_new(&mc, &me, &err) || cvx_abi_register(me, &err)) die("engine", &err);
        cvx_app_t *wapp = load_app(me, argv[2]);
        wasm_ctx_t mctx = {.app = wapp, .fn = cvx_app_find(wapp, "bench:work", 10), .limits = wc.limits,
                           .args = "{\"n\":3000}", .expect = "215063"};
        if (!mctx.fn) die("bench:work not found", NULL);
        measure(fuel ? "work_fuel" : "work_epoch", wasm_call, &mctx);
        cvx_app_release(wapp);
        cvx_engine_free(me);
    }

    cvx_store_config_t sc;
    cvx_store_config_default(&sc);
    cvx_store_t *store;
    if (cvx_store_open(argv[3], &sc, &store, &err)) die("store", &err);
    cvx_runtime_config_t rc = {.engine = engine, .store = store, .limits = lim, .query_cache_bytes = SIZE_MAX};
    cvx_runtime_t *rt;
    if (cvx_runtime_new(&rc, &rt, &err)) die("runtime", &err);
    if (cvx_runtime_deploy(rt, hello, NULL, NULL, &err)) die("deploy hello", &err);
    exec_ctx_t xc = {.rt = rt, .path = "hello:add", .args = "{\"a\":1,\"b\":2}", .expect = "3"};
    measure("exec", exec_call, &xc);

    cvx_app_t *bench = load_app(engine, argv[2]);
    if (cvx_runtime_deploy(rt, bench, NULL, NULL, &err)) die("deploy bench", &err);
    cvx_request_t req;
    memset(&req, 0, sizeof req);
    req.path = "bench:seed_users";
    req.args_json = "{\"start\":0,\"count\":1000}";
    req.args_len = strlen(req.args_json);
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    if (cvx_exec_call(rt, &req, &resp) || !resp.r.value.data) die("seed", NULL);
    /* the first id of the returned array */
    char id[128], args[200];
    first_id(resp.r.value.data, id, sizeof id);
    cvx_response_free(&resp);
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id);
    exec_ctx_t gc = {.rt = rt, .path = "bench:get", .args = args, .expect = "user"};
    measure("exec_get", exec_call, &gc);

    cvx_runtime_config_t cached_cfg = {.engine = engine, .store = store, .limits = lim};
    cvx_runtime_t *cached;
    if (cvx_runtime_new(&cached_cfg, &cached, &err)) die("runtime", &err);
    if (cvx_runtime_deploy(cached, bench, NULL, NULL, &err)) die("deploy bench", &err);
    exec_ctx_t cc = {.rt = cached, .path = "bench:get", .args = args, .expect = "user"};
    measure("exec_get_cached", exec_call, &cc);
    cvx_runtime_free(cached);

    cvx_runtime_free(rt);
    cvx_store_close(store);

    if (ts) {
        /* The TypeScript bench:get on its own seeded store, query cache off. */
        char tsdir[4200];
        snprintf(tsdir, sizeof tsdir, "%s/ts", argv[3]);
        mkdir(tsdir, 0700);
        cvx_store_t *tstore;
        if (cvx_store_open(tsdir, &sc, &tstore, &err)) die("store", &err);
        cvx_runtime_config_t tc = {.engine = engine, .store = tstore, .limits = lim, .query_cache_bytes = SIZE_MAX};
        cvx_runtime_t *trt;
        if (cvx_runtime_new(&tc, &trt, &err)) die("runtime", &err);
        if (cvx_runtime_deploy(trt, ts, NULL, NULL, &err)) die("deploy bench-ts", &err);
        memset(&req, 0, sizeof req);
        req.path = "bench:seed_users";
        req.args_json = "{\"start\":0,\"count\":1000}";
        req.args_len = strlen(req.args_json);
        memset(&resp, 0, sizeof resp);
        if (cvx_exec_call(trt, &req, &resp) || !resp.r.value.data) die("seed (TypeScript)", NULL);
        first_id(resp.r.value.data, id, sizeof id);
        cvx_response_free(&resp);
        snprintf(args, sizeof args, "{\"id\":\"%s\"}", id);
        exec_ctx_t tg = {.rt = trt, .path = "bench:get", .args = args, .expect = "user"};
        measure("ts_exec_get", exec_call, &tg);
        cvx_runtime_free(trt);
        cvx_store_close(tstore);
        cvx_app_release(ts);
    }
    cvx_app_release(bench);
    cvx_app_release(hello);
    cvx_engine_free(engine);
    return 0;
}
