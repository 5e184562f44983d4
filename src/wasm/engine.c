/* The shared Wasmtime engine: configuration, the host-function linker and
 * the epoch ticker thread that turns wall-time limits into interrupts.
 *
 * One engine serves every module and thread. Host functions are defined once
 * in a store-independent linker, and each module gets an InstancePre from it,
 * so a call never re-resolves imports. */
#include "wasm/wasm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cvx_engine_config_default(cvx_engine_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->consume_fuel = true;
    cfg->epoch_interruption = true;
    cfg->epoch_tick_ms = 10;
    cfg->pooling = false;
    cfg->pool_instances = 128;
    cfg->pool_max_memory = 512ull << 20;
}

static wasm_valkind_t kind_of(char c) {
    switch (c) {
    case 'i': return WASM_I32;
    case 'I': return WASM_I64;
    case 'f': return WASM_F32;
    case 'F': return WASM_F64;
    default: return WASM_EXTERNREF; /* never a valid signature char */
    }
}

static char char_of(wasm_valkind_t k) {
    switch (k) {
    case WASM_I32: return 'i';
    case WASM_I64: return 'I';
    case WASM_F32: return 'f';
    case WASM_F64: return 'F';
    default: return '?';
    }
}

char *cvx__sig_string(const wasm_valtype_vec_t *types) {
    char *s = cvx_malloc(types->size + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < types->size; i++) s[i] = char_of(wasm_valtype_kind(types->data[i]));
    s[types->size] = '\0';
    return s;
}

static void valtypes(const char *sig, wasm_valtype_vec_t *out) {
    size_t n = strlen(sig);
    if (n == 0) {
        wasm_valtype_vec_new_empty(out);
        return;
    }
    wasm_valtype_t *v[16];
    for (size_t i = 0; i < n && i < 16; i++) v[i] = wasm_valtype_new(kind_of(sig[i]));
    wasm_valtype_vec_new(out, n, v);
}

wasm_functype_t *cvx__functype_new(const char *params, const char *results) {
    wasm_valtype_vec_t p, r;
    valtypes(params, &p);
    valtypes(results, &r);
    return wasm_functype_new(&p, &r);
}

static bool sig_valid(const char *s) {
    size_t n = strlen(s);
    if (n > 16) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("iIfF", s[i])) return false;
    return true;
}

static void *ticker_main(void *arg) {
    cvx_engine_t *e = arg;
    struct timespec ts = {.tv_sec = e->cfg.epoch_tick_ms / 1000,
                          .tv_nsec = (long)(e->cfg.epoch_tick_ms % 1000) * 1000000L};
    while (!atomic_load(&e->stop)) {
        nanosleep(&ts, NULL);
        wasmtime_engine_increment_epoch(e->engine);
    }
    return NULL;
}

static void compute_fingerprint(cvx_engine_t *e) {
    char desc[256];
    int n = snprintf(desc, sizeof desc, "wasmtime-%s fuel=%d epoch=%d pooling=%d abi-cache-1", CVX_WASMTIME_VERSION,
                     e->cfg.consume_fuel, e->cfg.epoch_interruption, e->cfg.pooling);
    uint8_t h[32];
    cvx_sha256(desc, (size_t)n, h);
    cvx_hex(h, 32, e->fingerprint);
}

int cvx_engine_new(const cvx_engine_config_t *cfg_in, cvx_engine_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_engine_config_t cfg;
    if (cfg_in) cfg = *cfg_in;
    else cvx_engine_config_default(&cfg);
    if (cfg.epoch_tick_ms == 0) cfg.epoch_tick_ms = 10;

    cvx_engine_t *e = cvx_calloc(1, sizeof *e);
    if (!e) return cvx_err_set(err, CVX_E_NOMEM, "out of memory creating the engine");
    e->cfg = cfg;
    if (cfg.cache_dir) {
        e->cache_dir = cvx_strdup(cfg.cache_dir);
        if (!e->cache_dir) {
            cvx_free(e);
            return cvx_err_set(err, CVX_E_NOMEM, "out of memory creating the engine");
        }
        e->cfg.cache_dir = e->cache_dir;
    }

    /* Traps report the guest's file:line when the module has line tables. */
    setenv("WASMTIME_BACKTRACE_DETAILS", "1", 0);

    wasm_config_t *wc = wasm_config_new();
    wasmtime_config_consume_fuel_set(wc, cfg.consume_fuel);
    wasmtime_config_epoch_interruption_set(wc, cfg.epoch_interruption);
    wasmtime_config_cranelift_opt_level_set(wc, WASMTIME_OPT_LEVEL_SPEED);
    wasmtime_config_parallel_compilation_set(wc, true);
    /* Guests get a bounded native stack; deep recursion traps cleanly. 2
     * MiB (of a worker thread's 8; Wasmtime allows no more than its async
     * stack size): the JavaScript engine's interpreter takes about 780
     * bytes per JavaScript call, and its own limit (a RangeError,
     * runtime/js/engine.c) must come first. */
    wasmtime_config_max_wasm_stack_set(wc, 2u << 20);
    /* `perf record` names guest functions only from a perf map, which
     * Wasmtime writes to /tmp/perf-PID.map when asked (DEVELOPERS.md,
     * "Profiling"). */
    const char *prof = getenv("CVX_PERF_MAP");
    if (prof && strcmp(prof, "1") == 0)
        wasmtime_config_profiler_set(wc, WASMTIME_PROFILING_STRATEGY_PERFMAP);
    if (cfg.pooling) {
        wasmtime_pooling_allocation_config_t *pc = wasmtime_pooling_allocation_config_new();
        wasmtime_pooling_allocation_config_total_core_instances_set(pc, cfg.pool_instances);
        wasmtime_pooling_allocation_config_total_memories_set(pc, cfg.pool_instances);
        wasmtime_pooling_allocation_config_total_tables_set(pc, cfg.pool_instances);
        wasmtime_pooling_allocation_config_max_memory_size_set(pc, (size_t)cfg.pool_max_memory);
        /* Reset the first 2 MiB of a reused memory with memset instead of
         * madvise: the page faults otherwise dominate (hello:add over HTTP,
         * wrk -c16: 21.6k req/s without, 52.9k with). With the pagemap scan
         * only the pages the call wrote are reset (a Rust guest: about 13 of
         * the 272 its 1 MiB stack and data span), not the whole 2 MiB;
         * callbench's hello:add went from 12.7 to 5.8 µs. Each warm
         * slot keeps its written pages resident, so keep few: after deploys,
         * idle slots would otherwise accumulate resident memory. */
        wasmtime_pooling_allocation_config_max_unused_warm_slots_set(pc, 4);
        wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pc, 2u << 20);
        cvx_wasmtime_pooling_pagemap_scan_auto(pc);
        wasmtime_pooling_allocation_config_table_keep_resident_set(pc, 64u << 10);
        wasmtime_pooling_allocation_strategy_set(wc, pc);
        wasmtime_pooling_allocation_config_delete(pc);
    }
    e->engine = wasm_engine_new_with_config(wc);
    if (!e->engine) {
        cvx_free(e->cache_dir);
        cvx_free(e);
        return cvx_err_set(err, CVX_E_INTERNAL, "Wasmtime refused the engine configuration");
    }
    e->linker = wasmtime_linker_new(e->engine);
    compute_fingerprint(e);
    if (cfg.epoch_interruption) {
        if (pthread_create(&e->ticker, NULL, ticker_main, e) != 0) {
            cvx_engine_free(e);
            return cvx_err_set(err, CVX_E_INTERNAL, "cannot start the epoch timer thread");
        }
        e->ticker_running = true;
    }
    *out = e;
    return CVX_OK;
}

void cvx_engine_free(cvx_engine_t *e) {
    if (!e) return;
    if (e->ticker_running) {
        atomic_store(&e->stop, true);
        pthread_join(e->ticker, NULL);
    }
    if (e->linker) wasmtime_linker_delete(e->linker);
    if (e->engine) wasm_engine_delete(e->engine);
    while (e->fns) {
        cvx__hostfn_block_t *next = e->fns->next;
        cvx_free(e->fns);
        e->fns = next;
    }
    cvx_free(e->cache_dir);
    cvx_free(e);
}

const cvx_engine_config_t *cvx_engine_config(const cvx_engine_t *e) { return &e->cfg; }

static wasm_trap_t *trampoline(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *vals, size_t nvals) {
    const cvx__hostfn_entry_t *h = env;
    cvx_instance_t *inst = wasmtime_context_get_data(wasmtime_caller_context(caller));
    cvx_wval_t args[16], results[16];
    for (size_t i = 0; i < h->nparams; i++) {
        switch (h->fn.params[i]) {
        case 'i': args[i].i32 = vals[i].i32; break;
        case 'I': args[i].i64 = vals[i].i64; break;
        case 'f': args[i].f32 = vals[i].f32; break;
        default: args[i].f64 = vals[i].f64; break;
        }
    }
    (void)nvals;
    if (h->fn.cb(inst, h->fn.data, args, results) != 0) {
        if (inst->trap_code == 0) cvx_instance_trap(inst, CVX_E_TRAP, "host function %s.%s failed", h->fn.module, h->fn.name);
        return wasmtime_trap_new(inst->trap_msg, strlen(inst->trap_msg));
    }
    for (size_t i = 0; i < h->nresults; i++) {
        switch (h->fn.results[i]) {
        case 'i': vals[i].i32 = results[i].i32; break;
        case 'I': vals[i].i64 = results[i].i64; break;
        case 'f': vals[i].f32 = results[i].f32; break;
        default: vals[i].f64 = results[i].f64; break;
        }
    }
    return NULL;
}

int cvx_engine_define(cvx_engine_t *e, const cvx_hostfn_t *fns, size_t n, cvx_err_t *err) {
    for (size_t i = 0; i < n; i++)
        if (!sig_valid(fns[i].params) || !sig_valid(fns[i].results) || !fns[i].cb)
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "host function %s.%s has an invalid signature",
                               fns[i].module, fns[i].name);
    cvx__hostfn_block_t *b = cvx_calloc(1, sizeof *b + n * sizeof b->entries[0]);
    if (!b) return cvx_err_set(err, CVX_E_NOMEM, "out of memory defining host functions");
    b->n = n;
    b->next = e->fns;
    e->fns = b; /* linked before defining: the linker may hold entries on failure */
    for (size_t i = 0; i < n; i++) {
        cvx__hostfn_entry_t *h = &b->entries[i];
        h->fn = fns[i];
        h->nparams = strlen(fns[i].params);
        h->nresults = strlen(fns[i].results);
        wasm_functype_t *ty = cvx__functype_new(fns[i].params, fns[i].results);
        wasmtime_error_t *we = wasmtime_linker_define_func_unchecked(
            e->linker, fns[i].module, strlen(fns[i].module), fns[i].name, strlen(fns[i].name), ty, trampoline, h,
            NULL);
        wasm_functype_delete(ty);
        if (we) {
            int rc = cvx__wasm_error(we, err, CVX_E_INTERNAL, "defining a host function");
            cvx_err_prefix(err, "%s.%s", fns[i].module, fns[i].name);
            return rc;
        }
    }
    return CVX_OK;
}

const cvx__hostfn_entry_t *cvx__engine_find_hostfn(const cvx_engine_t *e, const char *module, size_t module_len,
                                                   const char *name, size_t name_len) {
    for (const cvx__hostfn_block_t *b = e->fns; b; b = b->next)
        for (size_t i = 0; i < b->n; i++) {
            const cvx__hostfn_entry_t *h = &b->entries[i];
            if (strlen(h->fn.module) == module_len && memcmp(h->fn.module, module, module_len) == 0 &&
                strlen(h->fn.name) == name_len && memcmp(h->fn.name, name, name_len) == 0)
                return h;
        }
    return NULL;
}
