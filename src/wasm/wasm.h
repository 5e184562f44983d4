/*
 * wasm — the sandbox: one shared Wasmtime engine, module compilation with an
 * on-disk cache, import/export validation, custom-section extraction, and
 * running one exported function in a fresh instance under fuel, memory and
 * wall-time limits.
 *
 * This layer knows nothing about Convex. The abi layer registers the host
 * functions a guest may import (cvx_engine_define) and interprets custom
 * sections; exec decides the limits of each call. Every conversion of a
 * Wasmtime error or trap into a cvx error happens in this layer, in one
 * place (wasm/trap.c).
 *
 * Threads: an engine and its modules are shared by all threads. A
 * cvx_instance_t belongs to the thread that created it.
 *
 * Ownership: cvx_engine_free after every module and instance is gone.
 * Modules are reference-counted (deploys swap them while calls are in
 * flight): cvx_module_load returns one reference; cvx_module_retain adds
 * one; cvx_module_release drops one and frees the module at zero.
 */
#ifndef CVX_WASM_H
#define CVX_WASM_H

#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cvx_engine cvx_engine_t;
typedef struct cvx_module cvx_module_t;
typedef struct cvx_instance cvx_instance_t;

/* ---- engine --------------------------------------------------------------- */

typedef struct {
    bool consume_fuel;       /* instruction metering (fuel limits); default on */
    bool epoch_interruption; /* wall-time limits; default on */
    uint32_t epoch_tick_ms;  /* epoch timer period; default 10 ms */
    bool pooling;            /* pooling instance allocator; default off */
    uint32_t pool_instances; /* slots when pooling; default 128 */
    uint64_t pool_max_memory;/* per-slot memory bound when pooling */
    const char *cache_dir;   /* compiled-module cache directory; NULL = none */
} cvx_engine_config_t;

/* Fills cfg with the defaults above (cache_dir = NULL). */
void cvx_engine_config_default(cvx_engine_config_t *cfg);

/* Creates the engine and, with epoch_interruption, its timer thread.
 * *out is NULL on failure. The config is copied. */
int cvx_engine_new(const cvx_engine_config_t *cfg, cvx_engine_t **out, cvx_err_t *err);
/* Stops the timer thread and frees the engine. NULL is a no-op. */
void cvx_engine_free(cvx_engine_t *e);
const cvx_engine_config_t *cvx_engine_config(const cvx_engine_t *e);

/* ---- host functions -------------------------------------------------------- */

/* A wasm scalar as passed to and from host functions. */
typedef union {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
} cvx_wval_t;

/* A host callback. Return 0 to continue; return non-zero after calling
 * cvx_instance_trap() to end the call with a trap. */
typedef int (*cvx_hostfn_cb)(cvx_instance_t *inst, void *fn_data, const cvx_wval_t *args,
                             cvx_wval_t *results);

typedef struct {
    const char *module;  /* import module, e.g. "cvx_1" */
    const char *name;    /* import name */
    const char *params;  /* one char per param: i=i32 I=i64 f=f32 F=f64 */
    const char *results; /* same alphabet; "" for none */
    cvx_hostfn_cb cb;
    void *data;          /* passed to cb; must outlive the engine */
} cvx_hostfn_t;

/* Registers host functions. Call before loading modules; the arrays are
 * copied (the strings must be static). An import of a module that is not
 * satisfied by a registered function is refused at load. */
int cvx_engine_define(cvx_engine_t *e, const cvx_hostfn_t *fns, size_t n, cvx_err_t *err);

/* ---- modules -------------------------------------------------------------- */

typedef struct {
    const char *name; /* not NUL-terminated: use name_len */
    size_t name_len;
    const uint8_t *data;
    size_t len;
} cvx_custom_section_t;

/* Parses, validates and compiles `wasm` (or loads it from the cache when the
 * same bytes were compiled before by an identical engine). Fails with
 * CVX_E_BAD_MODULE when the bytes are not wasm, when an import is unknown
 * or has the wrong signature ("import cvx_1.__convex_log has type (i32) ->
 * i32 but the host provides (i32, i32, i32) -> i32"), or when there is no
 * exported memory. The bytes are copied as needed; the caller keeps them. */
int cvx_module_load(cvx_engine_t *e, const uint8_t *wasm, size_t len, cvx_module_t **out,
                    cvx_err_t *err);
/* The same, with the SHA-256 (64 hex digits) of `wasm` already known, so the
 * bytes are not hashed again: the caller vouches for it, as it names the
 * compiled artifact that is loaded. NULL hashes. */
int cvx_module_load_hashed(cvx_engine_t *e, const uint8_t *wasm, size_t len, const char *sha256_hex,
                           cvx_module_t **out, cvx_err_t *err);
void cvx_module_retain(cvx_module_t *m);
void cvx_module_release(cvx_module_t *m);

/* SHA-256 of the module bytes, hex. */
const char *cvx_module_hash(const cvx_module_t *m);
/* True when the last load came from the on-disk cache. */
bool cvx_module_from_cache(const cvx_module_t *m);
/* Milliseconds spent compiling (or deserializing) at load. */
double cvx_module_load_ms(const cvx_module_t *m);
/* The custom sections, in file order (filter by name), except DWARF
 * (".debug*"), which only Wasmtime reads. The array and the data live as
 * long as the module. */
size_t cvx_module_custom_sections(const cvx_module_t *m, const cvx_custom_section_t **out);
/* Does the module export a function `name` with the given signature? */
bool cvx_module_has_func(const cvx_module_t *m, const char *name, const char *params,
                         const char *results);
/* Names of the import modules used (e.g. "cvx_1", "wasi_snapshot_preview1"). */
size_t cvx_module_import_modules(const cvx_module_t *m, const char *const **out);

/* Parses just the custom sections of a wasm binary (no compilation). Used by
 * the module cache and by fuzzing. On success *out is an array owned by the
 * caller (cvx_free) whose entries point into `wasm`. */
int cvx_wasm_custom_sections(const uint8_t *wasm, size_t len, cvx_custom_section_t **out,
                             size_t *n, cvx_err_t *err);

/* An import as declared in a binary. */
typedef struct {
    const char *module; /* points into the wasm bytes; not NUL-terminated */
    size_t module_len;
    const char *name;
    size_t name_len;
    uint8_t kind; /* 0 func, 1 table, 2 memory, 3 global, 4 tag */
} cvx_wasm_import_t;

/* Parses the import section of a wasm binary without compiling it. On
 * success *out (owned by the caller, cvx_free) points into `wasm`. */
int cvx_wasm_imports(const uint8_t *wasm, size_t len, cvx_wasm_import_t **out, size_t *n, cvx_err_t *err);

/* Compiles WebAssembly text to binary (appends to out). For tests and
 * hand-written fixtures. */
int cvx_wat_to_wasm(const char *wat, size_t len, cvx_buf_t *out, cvx_err_t *err);

/* ---- instances and calls --------------------------------------------------- */

typedef struct {
    uint64_t fuel;         /* 0 = unlimited (ignored without consume_fuel) */
    uint64_t memory_bytes; /* max linear memory; 0 = unlimited */
    uint64_t timeout_ms;   /* wall time; 0 = unlimited */
} cvx_limits_t;

/* Instantiates a fresh instance of m with `limits`; `host` is handed to host
 * callbacks through cvx_instance_host(). The instance holds a reference to
 * the module. */
int cvx_instance_new(cvx_module_t *m, const cvx_limits_t *limits, void *host, cvx_instance_t **out,
                     cvx_err_t *err);
void cvx_instance_free(cvx_instance_t *inst);
void *cvx_instance_host(cvx_instance_t *inst);

/* Calls export `name` (params/results as in cvx_hostfn_t). On a trap or
 * limit the error code says which: CVX_E_FUEL, CVX_E_MEMORY, CVX_E_TIMEOUT,
 * or CVX_E_TRAP (message names the trap and, when the module carries line
 * tables, the guest's file:line), or the code a host callback set with
 * cvx_instance_trap(). After a failed call the instance must not be called
 * again. */
int cvx_instance_call(cvx_instance_t *inst, const char *name, const cvx_wval_t *args, size_t nargs,
                      cvx_wval_t *results, size_t nresults, cvx_err_t *err);

/* Fuel consumed so far by this instance (0 without metering). */
uint64_t cvx_instance_fuel_used(cvx_instance_t *inst);
/* Current linear memory size in bytes. */
uint64_t cvx_instance_memory_size(cvx_instance_t *inst);

/* For host callbacks: a bounds-checked view of guest memory. Returns a
 * pointer to [ptr, ptr+len) or NULL, after recording a trap that names
 * `what`, when the range is outside memory (or len > 64 MiB). The pointer
 * is valid until the guest runs again. */
uint8_t *cvx_instance_mem(cvx_instance_t *inst, int32_t ptr, int32_t len, const char *what);
/* Records a trap to end the call; the callback must then return non-zero.
 * `code` is the cvx error the call will fail with. */
int cvx_instance_trap(cvx_instance_t *inst, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


/* ---- snapshots (snapshot.c) ------------------------------------------------ */

/* A global's value: `type` is its wasm value type (0x7f i32, 0x7e i64,
 * 0x7d f32, 0x7c f64), `bits` its bit pattern. */
typedef struct {
    uint8_t type;
    uint64_t bits;
} cvx_wasm_global_t;

/* Appends to `out` a copy of `wasm` that also exports each global the
 * module defines, so that cvx_instance_global can read them after an
 * initialisation call. Fails (CVX_E_BAD_MODULE) on a module a snapshot
 * cannot carry: imported memory or globals. */
int cvx_wasm_export_globals(const uint8_t *wasm, size_t len, cvx_buf_t *out, cvx_err_t *err);
/* The value of the module's `index`-th defined global, from an instance of
 * a module rewritten by cvx_wasm_export_globals. */
int cvx_instance_global(cvx_instance_t *inst, uint32_t index, cvx_wasm_global_t *out, cvx_err_t *err);
/* The instance's linear memory, valid until the guest runs again; NULL
 * (and *len 0) without one. */
const uint8_t *cvx_instance_memory_data(cvx_instance_t *inst, size_t *len);
/* Appends to `out` the module `wasm` (the original, not the rewritten
 * copy) with `inst`'s state as its initial state: the memory's size and
 * contents, each mutable global's value; no start function; and custom
 * sections `extra` in place of any named cvx.* it had. `inst` must be an
 * instance of cvx_wasm_export_globals(wasm). */
int cvx_wasm_snapshot(const uint8_t *wasm, size_t len, cvx_instance_t *inst, const cvx_custom_section_t *extra,
                      size_t nextra, cvx_buf_t *out, cvx_err_t *err);

#ifdef __cplusplus
}
#endif
#endif
