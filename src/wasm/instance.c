/* One call's sandbox: a fresh store and instance per call, with its own
 * fuel, memory limit and epoch deadline. Nothing survives between calls,
 * which is what makes queries deterministic and a trap harmless: the next
 * call starts from the module's pristine image. */
#include "wasm/wasm_int.h"

#include <stdio.h>
#include <string.h>

#define MAX_GUEST_RANGE (64u << 20)

int cvx_instance_new(cvx_module_t *m, const cvx_limits_t *limits, void *host, cvx_instance_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_instance_t *inst = cvx_calloc(1, sizeof *inst);
    if (!inst) return cvx_err_set(err, CVX_E_NOMEM, "out of memory creating an instance");
    cvx_engine_t *e = m->engine;
    inst->module = m;
    cvx_module_retain(m);
    inst->host = host;
    if (limits) inst->limits = *limits;
    inst->store = wasmtime_store_new(e->engine, inst, NULL);
    inst->ctx = wasmtime_store_context(inst->store);
    if (inst->limits.memory_bytes)
        wasmtime_store_limiter(inst->store, (int64_t)inst->limits.memory_bytes, -1, -1, -1, -1);
    if (e->cfg.consume_fuel) {
        uint64_t fuel = inst->limits.fuel ? inst->limits.fuel : UINT64_MAX;
        wasmtime_error_t *we = wasmtime_context_set_fuel(inst->ctx, fuel);
        if (we) {
            cvx_instance_free(inst);
            return cvx__wasm_error(we, err, CVX_E_INTERNAL, "setting fuel");
        }
        inst->fuel_start = fuel;
    }
    if (e->cfg.epoch_interruption) {
        uint64_t ticks = inst->limits.timeout_ms ? inst->limits.timeout_ms / e->cfg.epoch_tick_ms + 1 : UINT64_MAX / 2;
        wasmtime_context_set_epoch_deadline(inst->ctx, ticks);
    }
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *we = wasmtime_instance_pre_instantiate(m->pre, inst->ctx, &inst->instance, &trap);
    if (we || trap) {
        int rc;
        if (trap) {
            rc = cvx__wasm_trap(inst, trap, err);
        } else {
            rc = cvx__wasm_error(we, err, CVX_E_TRAP, "cannot instantiate module");
            /* Wasmtime refuses to instantiate when the initial memory is
             * already above the store's limit. */
            if (inst->limits.memory_bytes && strstr(err->msg, "limit")) {
                rc = cvx_err_set(err, CVX_E_MEMORY,
                                 "function exceeded its memory limit (%llu MiB): the module's initial memory is larger",
                                 (unsigned long long)(inst->limits.memory_bytes >> 20));
            }
        }
        cvx_instance_free(inst);
        return rc;
    }
    wasmtime_extern_t ext;
    if (wasmtime_instance_export_get(inst->ctx, &inst->instance, "memory", 6, &ext) &&
        ext.kind == WASMTIME_EXTERN_MEMORY) {
        inst->memory = ext.of.memory;
        inst->has_memory = true;
    }
    *out = inst;
    return CVX_OK;
}

void cvx_instance_free(cvx_instance_t *inst) {
    if (!inst) return;
    if (inst->store) wasmtime_store_delete(inst->store);
    cvx_module_release(inst->module);
    cvx_free(inst);
}

void *cvx_instance_host(cvx_instance_t *inst) { return inst->host; }

static wasmtime_val_t to_val(char t, cvx_wval_t v) {
    wasmtime_val_t r;
    memset(&r, 0, sizeof r);
    switch (t) {
    case 'i': r.kind = WASMTIME_I32; r.of.i32 = v.i32; break;
    case 'I': r.kind = WASMTIME_I64; r.of.i64 = v.i64; break;
    case 'f': r.kind = WASMTIME_F32; r.of.f32 = v.f32; break;
    default: r.kind = WASMTIME_F64; r.of.f64 = v.f64; break;
    }
    return r;
}

static cvx_wval_t from_val(const wasmtime_val_t *v) {
    cvx_wval_t r;
    memset(&r, 0, sizeof r);
    switch (v->kind) {
    case WASMTIME_I32: r.i32 = v->of.i32; break;
    case WASMTIME_I64: r.i64 = v->of.i64; break;
    case WASMTIME_F32: r.f32 = v->of.f32; break;
    case WASMTIME_F64: r.f64 = v->of.f64; break;
    default: break;
    }
    return r;
}

int cvx_instance_call(cvx_instance_t *inst, const char *name, const cvx_wval_t *args, size_t nargs,
                      cvx_wval_t *results, size_t nresults, cvx_err_t *err) {
    wasmtime_extern_t ext;
    if (!wasmtime_instance_export_get(inst->ctx, &inst->instance, name, strlen(name), &ext) ||
        ext.kind != WASMTIME_EXTERN_FUNC)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "module has no exported function \"%s\"", name);
    /* The signature as read at load: asking Wasmtime for the function's
     * type allocates, on every call. */
    const struct cvx_export_sig *sig = NULL;
    for (size_t i = 0; i < inst->module->nexports && !sig; i++)
        if (strcmp(inst->module->exports[i].name, name) == 0) sig = &inst->module->exports[i];
    if (!sig || strlen(sig->params) != nargs || strlen(sig->results) != nresults || nargs > 16 || nresults > 16)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "exported function \"%s\" has an unexpected signature", name);
    wasmtime_val_t in[16], outv[16];
    for (size_t i = 0; i < nargs; i++) in[i] = to_val(sig->params[i], args[i]);
    inst->trap_code = 0;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *we = wasmtime_func_call(inst->ctx, &ext.of.func, in, nargs, outv, nresults, &trap);
    if (trap) return cvx__wasm_trap(inst, trap, err);
    if (we) {
        if (inst->trap_code) {
            wasmtime_error_delete(we);
            return cvx_err_set(err, inst->trap_code, "%s", inst->trap_msg);
        }
        return cvx__wasm_error(we, err, CVX_E_TRAP, NULL);
    }
    for (size_t i = 0; i < nresults; i++) results[i] = from_val(&outv[i]);
    return CVX_OK;
}

uint64_t cvx_instance_fuel_used(cvx_instance_t *inst) {
    if (!inst->module->engine->cfg.consume_fuel) return 0;
    uint64_t left = 0;
    wasmtime_error_t *we = wasmtime_context_get_fuel(inst->ctx, &left);
    if (we) {
        wasmtime_error_delete(we);
        return 0;
    }
    return inst->fuel_start - left;
}

uint64_t cvx_instance_memory_size(cvx_instance_t *inst) {
    if (!inst->has_memory) return 0;
    return wasmtime_memory_data_size(inst->ctx, &inst->memory);
}

uint8_t *cvx_instance_mem(cvx_instance_t *inst, int32_t ptr, int32_t len, const char *what) {
    if (!inst->has_memory) {
        cvx_instance_trap(inst, CVX_E_TRAP, "%s: module has no memory", what);
        return NULL;
    }
    size_t size = wasmtime_memory_data_size(inst->ctx, &inst->memory);
    uint64_t p = (uint32_t)ptr, n = (uint32_t)len;
    if (ptr < 0 || len < 0 || n > MAX_GUEST_RANGE || p + n > size) {
        cvx_instance_trap(inst, CVX_E_TRAP,
                          "function trapped: %s: pointer range [%lld, %lld) is outside guest memory (size %zu)", what,
                          (long long)ptr, (long long)ptr + (long long)len, size);
        return NULL;
    }
    return wasmtime_memory_data(inst->ctx, &inst->memory) + p;
}

int cvx_instance_trap(cvx_instance_t *inst, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(inst->trap_msg, sizeof inst->trap_msg, fmt, ap);
    va_end(ap);
    inst->trap_code = code;
    return 1;
}
