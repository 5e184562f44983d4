/* Private to the wasm layer: the structs behind the opaque handles. */
#ifndef CVX_WASM_INT_H
#define CVX_WASM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <wasm.h>
#include <wasmtime.h>

#include "wasm/wasm.h"

/* Added to the C API by deps/wasmtime/src/lib.rs (this version does not
 * expose it): reset only the pages an instance wrote, where the kernel has
 * the PAGEMAP_SCAN ioctl. */
void cvx_wasmtime_pooling_pagemap_scan_auto(wasmtime_pooling_allocation_config_t *cfg);

typedef struct {
    cvx_hostfn_t fn;
    size_t nparams, nresults;
} cvx__hostfn_entry_t;

/* Host functions are defined in blocks that never move: the linker keeps
 * pointers to the entries for the engine's lifetime. */
typedef struct cvx__hostfn_block {
    struct cvx__hostfn_block *next;
    size_t n;
    cvx__hostfn_entry_t entries[];
} cvx__hostfn_block_t;

struct cvx_engine {
    cvx_engine_config_t cfg;
    char *cache_dir; /* owned copy of cfg.cache_dir */
    wasm_engine_t *engine;
    wasmtime_linker_t *linker;
    cvx__hostfn_block_t *fns;
    char fingerprint[65]; /* engine settings + Wasmtime version, hex */
    pthread_t ticker;
    bool ticker_running;
    atomic_bool stop;
};

struct cvx_module {
    atomic_int refs;
    cvx_engine_t *engine;
    wasmtime_module_t *module;
    wasmtime_instance_pre_t *pre;
    uint8_t *kept; /* the non-DWARF custom sections' names and data */
    cvx_custom_section_t *sections; /* point into kept */
    size_t nsections;
    const char **import_modules;
    size_t nimport_modules;
    char hash[65];
    bool from_cache;
    double load_ms;
    struct cvx_export_sig {
        char *name;
        char *params, *results;
    } *exports;
    size_t nexports;
};

struct cvx_instance {
    cvx_module_t *module;
    wasmtime_store_t *store;
    wasmtime_context_t *ctx;
    wasmtime_instance_t instance;
    wasmtime_memory_t memory;
    bool has_memory;
    void *host;
    cvx_limits_t limits;
    uint64_t fuel_start;
    int trap_code; /* set by cvx_instance_trap; 0 = none */
    char trap_msg[CVX_ERR_MSG_MAX];
};

/* trap.c: the one place Wasmtime errors and traps become cvx errors. */
int cvx__wasm_error(wasmtime_error_t *e, cvx_err_t *err, int code, const char *what);
int cvx__wasm_trap(cvx_instance_t *inst, wasm_trap_t *trap, cvx_err_t *err);

/* Signature string of a function type ("iI" etc.); caller frees. */
/* The registered host function for an import, or NULL. */
const cvx__hostfn_entry_t *cvx__engine_find_hostfn(const cvx_engine_t *e, const char *module, size_t module_len,
                                                   const char *name, size_t name_len);

char *cvx__sig_string(const wasm_valtype_vec_t *types);
wasm_functype_t *cvx__functype_new(const char *params, const char *results);

#endif
