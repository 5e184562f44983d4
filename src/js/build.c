/* Building an app's JavaScript module: the engine runs the bundle once in
 * the sandbox, then its state becomes a module of its own.
 *
 * The engine's exports (runtime/js/engine.c): _initialize (the C
 * constructors of a WASI reactor), cvx_js_load (evaluate the prelude and
 * the bundle, answer the analysis) and cvx_js_invoke (one call). The
 * analysis becomes the snapshot's cvx.fn / cvx.schema / cvx.crons sections,
 * so the result is read at deploy like any other module (abi/app.c). */
#include "js/js.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The engine rewritten to export its globals (cvx_wasm_export_globals) and
 * compiled, once per engine: every build starts from it. */
typedef struct {
    pthread_mutex_t mu;
    cvx_engine_t *engine;
    cvx_module_t *module;
} loader_t;
static loader_t loader = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL};

static int load_engine(cvx_engine_t *e, cvx_module_t **out, cvx_err_t *err) {
    pthread_mutex_lock(&loader.mu);
    int rc = CVX_OK;
    if (loader.engine != e || !loader.module) {
        size_t len;
        const uint8_t *wasm = cvx_js_engine(&len);
        cvx_buf_t inst = {0};
        rc = cvx_wasm_export_globals(wasm, len, &inst, err);
        cvx_module_t *m = NULL;
        if (!rc) rc = cvx_module_load(e, (const uint8_t *)inst.data, inst.len, &m, err);
        cvx_buf_free(&inst);
        if (!rc) {
            if (loader.module) cvx_module_release(loader.module);
            loader.module = m;
            loader.engine = e;
        }
    }
    if (!rc) {
        cvx_module_retain(loader.module);
        *out = loader.module;
    }
    pthread_mutex_unlock(&loader.mu);
    return rc;
}

/* Appends one framed record (u32 little-endian length, then the bytes). */
static void frame(cvx_buf_t *sec, const cvx_value_t *v) {
    cvx_buf_t j = {0};
    cvx_json_write(&j, v);
    uint8_t n[4] = {(uint8_t)j.len, (uint8_t)(j.len >> 8), (uint8_t)(j.len >> 16), (uint8_t)(j.len >> 24)};
    cvx_buf_append(sec, n, 4);
    cvx_buf_append(sec, j.data ? j.data : "", j.len);
    cvx_buf_free(&j);
}

/* The analysis ({"functions", "schema", "crons", "warnings"}) as custom
 * sections. */
static int sections_of(cvx_arena_t *a, const cvx_abi_result_t *res, cvx_buf_t secs[4], cvx_buf_t *logs,
                       cvx_err_t *err) {
    cvx_value_t *v;
    if (cvx_json_parse(a, res->value.data, res->value.len, &v, err) || v->type != CVX_T_OBJECT)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "the JavaScript engine's analysis is malformed");
    const cvx_value_t *fns = cvx_obj_get_cstr(v, "functions");
    const cvx_value_t *schema = cvx_obj_get_cstr(v, "schema");
    const cvx_value_t *crons = cvx_obj_get_cstr(v, "crons");
    const cvx_value_t *warnings = cvx_obj_get_cstr(v, "warnings");
    const cvx_value_t *auth = cvx_obj_get_cstr(v, "auth");
    if (!fns || fns->type != CVX_T_ARRAY)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "the JavaScript engine's analysis lists no functions");
    if (fns->u.arr.len == 0)
        return cvx_err_set(err, CVX_E_BAD_MODULE,
                           "convex/ exports no functions: export a query, mutation, action or an httpRouter "
                           "from a file in convex/");
    for (size_t i = 0; i < fns->u.arr.len; i++) frame(&secs[0], fns->u.arr.items[i]);
    if (schema && schema->type == CVX_T_OBJECT) frame(&secs[1], schema);
    if (crons && crons->type == CVX_T_ARRAY && crons->u.arr.len) {
        cvx_value_t *rec = cvx_object(a, 2), *abi = cvx_float64(a, 1);
        if (!rec || !abi || cvx_obj_set(a, rec, "abi", 3, abi) || cvx_obj_set(a, rec, "crons", 5, (cvx_value_t *)crons))
            return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        frame(&secs[2], rec);
    }
    if (auth && auth->type == CVX_T_OBJECT) frame(&secs[3], auth);
    for (size_t i = 0; logs && warnings && warnings->type == CVX_T_ARRAY && i < warnings->u.arr.len; i++) {
        const cvx_value_t *w = warnings->u.arr.items[i];
        if (w->type != CVX_T_STRING) continue;
        cvx_buf_t line = {0};
        cvx_buf_printf(&line, "[WARN] %s", w->u.str.ptr);
        if (logs->len > 1) cvx_buf_append_char(logs, ',');
        cvx_buf_append_json_string(logs, line.data, line.len);
        cvx_buf_free(&line);
    }
    return CVX_OK;
}

int cvx_js_build(cvx_engine_t *e, const cvx_js_source_t *src, const cvx_limits_t *limits, cvx_buf_t *out,
                 cvx_buf_t *logs, cvx_err_t *err) {
    cvx_module_t *m = NULL;
    int rc = load_engine(e, &m, err);
    if (rc) {
        cvx_err_prefix(err, "the JavaScript engine did not load");
        return rc;
    }
    cvx_sourcemap_t *map = NULL;
    if (src->sourcemap && cvx_sourcemap_parse(src->sourcemap, src->sourcemap_len, &map, err)) {
        cvx_module_release(m);
        cvx_err_prefix(err, "the bundle's source map");
        return err->code = CVX_E_BAD_MODULE;
    }
    /* The top level of the app's modules runs like a query with no
     * database: frozen time, seeded randomness, no network. */
    cvx_abi_call_config_t cfg = {.kind = CVX_KIND_QUERY,
                                 .request_id = "deploy",
                                 .services = src->services,
                                 .now_ms = (double)(cvx_now_ns() / 1000000),
                                 .sourcemap = map}; /* max_log_lines 0: the default, 256 */
    cvx_abi_result_t res = {0};
    cvx_instance_t *inst = NULL;
    rc = cvx_abi_run_export(m, "module load", "_initialize", "cvx_js_load", &cfg, limits, src->bundle, src->bundle_len,
                            &res, &inst);
    if (logs) {
        cvx_buf_append_char(logs, '[');
        if (res.logs.len > 2) cvx_buf_append(logs, res.logs.data + 1, res.logs.len - 2);
    }
    cvx_arena_t *a = cvx_arena_new(16384);
    cvx_buf_t secs[4] = {{0}, {0}, {0}, {0}};
    if (rc) {
        cvx_err_set(err, CVX_E_BAD_MODULE, "%s", res.message.data ? res.message.data : cvx_code_message(rc));
        rc = CVX_E_BAD_MODULE;
    } else if (!a) {
        rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    } else {
        rc = sections_of(a, &res, secs, logs, err);
    }
    if (!rc) {
        cvx_custom_section_t extra[5];
        size_t n = 0;
        extra[n++] = (cvx_custom_section_t){"cvx.fn", 6, (const uint8_t *)secs[0].data, secs[0].len};
        if (secs[1].len) extra[n++] = (cvx_custom_section_t){"cvx.schema", 10, (const uint8_t *)secs[1].data, secs[1].len};
        if (secs[2].len) extra[n++] = (cvx_custom_section_t){"cvx.crons", 9, (const uint8_t *)secs[2].data, secs[2].len};
        if (secs[3].len) extra[n++] = (cvx_custom_section_t){"cvx.auth", 8, (const uint8_t *)secs[3].data, secs[3].len};
        if (src->sourcemap)
            extra[n++] = (cvx_custom_section_t){"cvx.js.sourcemap", 16, (const uint8_t *)src->sourcemap, src->sourcemap_len};
        size_t len;
        const uint8_t *engine = cvx_js_engine(&len);
        rc = cvx_wasm_snapshot(engine, len, inst, extra, n, out, err);
    }
    if (logs) cvx_buf_append_char(logs, ']');
    for (int i = 0; i < 4; i++) cvx_buf_free(&secs[i]);
    cvx_arena_free(a);
    cvx_instance_free(inst);
    cvx_abi_result_free(&res);
    cvx_sourcemap_free(map);
    cvx_module_release(m);
    return rc;
}
