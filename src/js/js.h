/*
 * js — TypeScript and JavaScript functions.
 *
 * Owns: the JavaScript engine module (QuickJS-ng compiled to wasm, from
 * runtime/js, carried inside the binary) and the build of an app's
 * JavaScript module from its bundle: the engine runs the bundle's top level
 * once, in the sandbox, reports what it exports (functions with their
 * validators, schema, crons, HTTP routes), and the instance's state is
 * written out as a new module (a snapshot), so every call starts from the
 * initialised heap. The result is an ordinary cvx_1 module with cvx.fn
 * metadata: deploys, calls and limits treat it exactly as a Rust module.
 *
 * Bundling the app's convex/ folder (esbuild) is the CLI's job; this layer
 * starts from the bundle and its source map.
 */
#ifndef CVX_JS_H
#define CVX_JS_H

#include "abi/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The engine module's bytes (static; never freed). */
const uint8_t *cvx_js_engine(size_t *len);

typedef struct {
    const char *bundle;    /* esbuild's IIFE that sets globalThis.__cvx_app */
    size_t bundle_len;
    const char *sourcemap; /* its source map (v3 JSON), or NULL */
    size_t sourcemap_len;
    /* Where convex/auth.config.ts reads environment variables from (its
     * with_read_txn); NULL: none are set (a build without a server). */
    const cvx_abi_services_t *services;
} cvx_js_source_t;

/* Builds the app's JavaScript module into `out` (appends the wasm bytes).
 * The bundle's top level runs under `limits` with no database, frozen time
 * and seeded randomness; its console lines (and warnings about what cvx
 * ignores, such as search indexes) are appended to `logs` as a JSON array
 * when logs is not NULL. A throw, a syntax error or a limit is
 * CVX_E_BAD_MODULE with the app's file and line where the source map
 * knows them. */
int cvx_js_build(cvx_engine_t *e, const cvx_js_source_t *src, const cvx_limits_t *limits, cvx_buf_t *out,
                 cvx_buf_t *logs, cvx_err_t *err);

#ifdef __cplusplus
}
#endif
#endif
