/* Snapshots: a module whose initial state is a running instance's state.
 *
 * A JavaScript app's engine evaluates the `convex` library and the app's
 * bundle once, at deploy; every call must start from that initialised heap
 * rather than parse the bundle again (milliseconds, against microseconds).
 * Like Wizer, cvx first rewrites the module to export every global it
 * defines (cvx_wasm_export_globals), runs the initialisation, then writes
 * the original module again with the instance's state as its initial
 * state (cvx_wasm_snapshot): memory's size and contents as active data
 * segments, each mutable global's value as its initialiser, no start
 * function. Wasmtime maps such an image copy-on-write, so instantiating a
 * snapshot costs what instantiating the bare engine costs.
 *
 * What is not in memory or globals cannot be carried: the rewrite refuses
 * modules with imported memories or globals, passive data segments, or
 * more than one memory. Tables are kept as written (the engine never
 * changes its function table). */
#include "wasm/wasm_int.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} rd_t;

static bool rd_u32(rd_t *r, uint32_t *out) {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        if (shift == 28 && (b & 0x70)) return false;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Skips a signed or unsigned LEB128 of at most `max` bytes. */
static bool rd_skip_leb(rd_t *r, int max) {
    for (int i = 0; i < max; i++) {
        if (r->p >= r->end) return false;
        if (!(*r->p++ & 0x80)) return true;
    }
    return false;
}

static bool rd_skip(rd_t *r, size_t n) {
    if ((size_t)(r->end - r->p) < n) return false;
    r->p += n;
    return true;
}

static void put_u32(cvx_buf_t *b, uint32_t v) {
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        if (v) byte |= 0x80;
        cvx_buf_append_char(b, (char)byte);
    } while (v);
}

static void put_s64(cvx_buf_t *b, int64_t v) {
    for (;;) {
        uint8_t byte = v & 0x7f;
        v >>= 7; /* arithmetic shift on every compiler cvx supports */
        bool done = (v == 0 && !(byte & 0x40)) || (v == -1 && (byte & 0x40));
        if (!done) byte |= 0x80;
        cvx_buf_append_char(b, (char)byte);
        if (done) return;
    }
}

static void put_section(cvx_buf_t *out, uint8_t id, const cvx_buf_t *payload) {
    cvx_buf_append_char(out, (char)id);
    put_u32(out, (uint32_t)payload->len);
    cvx_buf_append(out, payload->data ? payload->data : "", payload->len);
}

/* Skips a constant expression up to and including its `end`: the
 * instructions a global or segment initialiser may use. */
static bool skip_const_expr(rd_t *r) {
    while (r->p < r->end) {
        uint8_t op = *r->p++;
        switch (op) {
        case 0x0b: return true;
        case 0x41: if (!rd_skip_leb(r, 5)) return false; break;
        case 0x42: if (!rd_skip_leb(r, 10)) return false; break;
        case 0x43: if (!rd_skip(r, 4)) return false; break;
        case 0x44: if (!rd_skip(r, 8)) return false; break;
        case 0x23: case 0xd2: if (!rd_skip_leb(r, 5)) return false; break;
        case 0xd0: if (!rd_skip(r, 1)) return false; break;
        case 0x6a: case 0x6b: case 0x6c: case 0x7c: case 0x7d: case 0x7e: break;
        default: return false;
        }
    }
    return false;
}

/* One pass over the sections, calling fn with each one. */
typedef int (*section_cb)(uint8_t id, rd_t *payload, const uint8_t *raw, size_t raw_len, void *ctx, cvx_err_t *err);

static int sections(const uint8_t *wasm, size_t len, section_cb fn, void *ctx, cvx_err_t *err) {
    if (len < 8 || memcmp(wasm, "\0asm\x01\0\0\0", 8) != 0)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "not a WebAssembly core module");
    rd_t r = {wasm + 8, wasm + len};
    while (r.p < r.end) {
        const uint8_t *start = r.p;
        uint8_t id = *r.p++;
        uint32_t size;
        if (!rd_u32(&r, &size) || (size_t)(r.end - r.p) < size)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed section header at byte %zu", (size_t)(start - wasm));
        rd_t payload = {r.p, r.p + size};
        r.p += size;
        int rc = fn(id, &payload, start, (size_t)(r.p - start), ctx, err);
        if (rc) return rc;
    }
    return CVX_OK;
}

/* What the rewrites need to know of a module. */
typedef struct {
    uint32_t imported_globals;
    uint32_t defined_globals;
    bool has_export_section;
} shape_t;

static int shape_cb(uint8_t id, rd_t *r, const uint8_t *raw, size_t raw_len, void *ctx, cvx_err_t *err) {
    shape_t *s = ctx;
    uint32_t n;
    if (id == 2) {
        if (!rd_u32(r, &n)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed import section");
        for (uint32_t i = 0; i < n; i++) {
            uint32_t l;
            if (!rd_u32(r, &l) || !rd_skip(r, l) || !rd_u32(r, &l) || !rd_skip(r, l) || r->p >= r->end)
                return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed import %u", i);
            uint8_t kind = *r->p++;
            if (kind == 2) return cvx_err_set(err, CVX_E_BAD_MODULE, "a module that imports its memory cannot be snapshotted");
            if (kind == 3) return cvx_err_set(err, CVX_E_BAD_MODULE, "a module that imports globals cannot be snapshotted");
            bool ok = kind == 0 ? rd_u32(r, &l) : kind == 1 ? rd_skip(r, 1) && r->p < r->end && ((*r->p++ & 1) ? rd_u32(r, &l) && rd_u32(r, &l) : rd_u32(r, &l)) : false;
            if (!ok) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed import %u", i);
        }
    } else if (id == 6) {
        if (!rd_u32(r, &n)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed global section");
        s->defined_globals = n;
    } else if (id == 7) {
        s->has_export_section = true;
    }
    (void)raw, (void)raw_len;
    return CVX_OK;
}

/* ---- exporting the globals ------------------------------------------------------ */

#define GLOBAL_EXPORT "cvx:global:"

typedef struct {
    shape_t shape;
    cvx_buf_t *out;
    bool exports_done;
} exp_ctx_t;

static void add_global_exports(exp_ctx_t *c, cvx_buf_t *payload, uint32_t existing) {
    put_u32(payload, existing + c->shape.defined_globals);
    for (uint32_t i = 0; i < c->shape.defined_globals; i++) {
        char name[32];
        int n = snprintf(name, sizeof name, GLOBAL_EXPORT "%u", i);
        put_u32(payload, (uint32_t)n);
        cvx_buf_append(payload, name, (size_t)n);
        cvx_buf_append_char(payload, 3);
        put_u32(payload, c->shape.imported_globals + i);
    }
}

static int export_cb(uint8_t id, rd_t *r, const uint8_t *raw, size_t raw_len, void *ctx, cvx_err_t *err) {
    exp_ctx_t *c = ctx;
    /* The export section's place is before start (8), elements (9), data
     * count (12), code (10) and data (11); tags (13) come before it. */
    if (!c->exports_done && id >= 7 && id != 13) {
        if (id == 7) {
            uint32_t n;
            if (!rd_u32(r, &n)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed export section");
            cvx_buf_t payload = {0};
            add_global_exports(c, &payload, n);
            cvx_buf_append(&payload, r->p, (size_t)(r->end - r->p));
            put_section(c->out, 7, &payload);
            cvx_buf_free(&payload);
            c->exports_done = true;
            return CVX_OK;
        }
        cvx_buf_t payload = {0};
        add_global_exports(c, &payload, 0);
        put_section(c->out, 7, &payload);
        cvx_buf_free(&payload);
        c->exports_done = true;
    }
    cvx_buf_append(c->out, raw, raw_len);
    return CVX_OK;
}

int cvx_wasm_export_globals(const uint8_t *wasm, size_t len, cvx_buf_t *out, cvx_err_t *err) {
    exp_ctx_t c = {.out = out};
    int rc = sections(wasm, len, shape_cb, &c.shape, err);
    if (rc) return rc;
    cvx_buf_append(out, wasm, 8);
    rc = sections(wasm, len, export_cb, &c, err);
    if (!rc && !c.exports_done) {
        cvx_buf_t payload = {0};
        add_global_exports(&c, &payload, 0);
        put_section(out, 7, &payload);
        cvx_buf_free(&payload);
    }
    if (!rc && out->oom) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory rewriting the module");
    return rc;
}

int cvx_instance_global(cvx_instance_t *inst, uint32_t index, cvx_wasm_global_t *out, cvx_err_t *err) {
    char name[32];
    int n = snprintf(name, sizeof name, GLOBAL_EXPORT "%u", index);
    wasmtime_extern_t item;
    if (!wasmtime_instance_export_get(inst->ctx, &inst->instance, name, (size_t)n, &item) ||
        item.kind != WASMTIME_EXTERN_GLOBAL)
        return cvx_err_set(err, CVX_E_INTERNAL, "global %u is not exported (was the module rewritten by cvx_wasm_export_globals?)", index);
    /* Asked for a reference's value, a Wasmtime built without GC aborts
     * the process: refuse by type first. */
    wasm_globaltype_t *gt = wasmtime_global_type(inst->ctx, &item.of.global);
    bool num = gt && wasm_valkind_is_num(wasm_valtype_kind(wasm_globaltype_content(gt)));
    if (gt) wasm_globaltype_delete(gt);
    if (!num) return cvx_err_set(err, CVX_E_BAD_MODULE, "global %u holds a reference, which a snapshot cannot carry", index);
    wasmtime_val_t v;
    wasmtime_global_get(inst->ctx, &item.of.global, &v);
    switch (v.kind) {
    case WASMTIME_I32: out->type = 0x7f, out->bits = (uint32_t)v.of.i32; break;
    case WASMTIME_I64: out->type = 0x7e, out->bits = (uint64_t)v.of.i64; break;
    case WASMTIME_F32: memcpy(&out->bits, &v.of.f32, 4), out->type = 0x7d, out->bits &= 0xffffffffu; break;
    case WASMTIME_F64: memcpy(&out->bits, &v.of.f64, 8), out->type = 0x7c; break;
    default: return cvx_err_set(err, CVX_E_BAD_MODULE, "global %u holds a reference, which a snapshot cannot carry", index);
    }
    return CVX_OK;
}

const uint8_t *cvx_instance_memory_data(cvx_instance_t *inst, size_t *len) {
    *len = inst->has_memory ? wasmtime_memory_data_size(inst->ctx, &inst->memory) : 0;
    return inst->has_memory ? wasmtime_memory_data(inst->ctx, &inst->memory) : NULL;
}

/* ---- writing the snapshot ---------------------------------------------------------- */

typedef struct {
    shape_t shape;
    cvx_instance_t *inst;
    const uint8_t *mem;
    size_t mem_len;
    uint32_t nsegments;
    cvx_buf_t *out;
    cvx_buf_t data; /* the data section's payload, built first */
    bool data_done;
} snap_ctx_t;

/* Active segments (memory 0, i32.const offset) for each run of non-zero
 * bytes; runs closer than GAP bytes are joined, as a segment header costs
 * more than a short run of zeros. */
#define GAP 256

static void build_data(snap_ctx_t *c) {
    cvx_buf_t segs = {0};
    size_t i = 0, n = c->mem_len;
    while (i < n) {
        while (i < n && c->mem[i] == 0) i++;
        if (i == n) break;
        size_t start = i, end = i;
        while (i < n) {
            if (c->mem[i] != 0) {
                end = ++i;
                continue;
            }
            size_t z = i;
            while (i < n && c->mem[i] == 0 && i - z < GAP) i++;
            if (i == n || i - z >= GAP) break;
        }
        cvx_buf_append_char(&segs, 0); /* active, memory 0 */
        cvx_buf_append_char(&segs, 0x41);
        put_s64(&segs, (int64_t)(int32_t)(uint32_t)start);
        cvx_buf_append_char(&segs, 0x0b);
        put_u32(&segs, (uint32_t)(end - start));
        cvx_buf_append(&segs, c->mem + start, end - start);
        c->nsegments++;
    }
    put_u32(&c->data, c->nsegments);
    cvx_buf_append(&c->data, segs.data ? segs.data : "", segs.len);
    cvx_buf_free(&segs);
}

static int snap_memory(snap_ctx_t *c, rd_t *r, cvx_err_t *err) {
    uint32_t n, min, max = 0;
    if (!rd_u32(r, &n) || n != 1 || r->p >= r->end)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "a snapshot needs exactly one memory");
    uint8_t flags = *r->p++;
    if (flags & ~1u) return cvx_err_set(err, CVX_E_BAD_MODULE, "a snapshot needs a 32-bit, unshared memory");
    if (!rd_u32(r, &min) || ((flags & 1) && !rd_u32(r, &max)))
        return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed memory section");
    uint32_t pages = (uint32_t)(c->mem_len / 65536);
    cvx_buf_t p = {0};
    put_u32(&p, 1);
    cvx_buf_append_char(&p, (char)flags);
    put_u32(&p, pages > min ? pages : min);
    if (flags & 1) put_u32(&p, max);
    put_section(c->out, 5, &p);
    cvx_buf_free(&p);
    return CVX_OK;
}

static int snap_globals(snap_ctx_t *c, rd_t *r, cvx_err_t *err) {
    uint32_t n;
    if (!rd_u32(r, &n)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed global section");
    cvx_buf_t p = {0};
    put_u32(&p, n);
    int rc = CVX_OK;
    for (uint32_t i = 0; i < n && rc == CVX_OK; i++) {
        if ((size_t)(r->end - r->p) < 2) {
            rc = cvx_err_set(err, CVX_E_BAD_MODULE, "malformed global %u", i);
            break;
        }
        uint8_t type = r->p[0], mut = r->p[1];
        const uint8_t *init = r->p + 2;
        r->p += 2;
        if (!skip_const_expr(r)) {
            rc = cvx_err_set(err, CVX_E_BAD_MODULE, "global %u has an initialiser a snapshot cannot read", i);
            break;
        }
        cvx_buf_append_char(&p, (char)type);
        cvx_buf_append_char(&p, (char)mut);
        if (!mut) {
            cvx_buf_append(&p, init, (size_t)(r->p - init));
            continue;
        }
        cvx_wasm_global_t g;
        if ((rc = cvx_instance_global(c->inst, i, &g, err))) break;
        if (g.type != type) {
            rc = cvx_err_set(err, CVX_E_INTERNAL, "global %u changed type", i);
            break;
        }
        switch (type) {
        case 0x7f: cvx_buf_append_char(&p, 0x41), put_s64(&p, (int32_t)(uint32_t)g.bits); break;
        case 0x7e: cvx_buf_append_char(&p, 0x42), put_s64(&p, (int64_t)g.bits); break;
        case 0x7d: {
            uint32_t b = (uint32_t)g.bits;
            cvx_buf_append_char(&p, 0x43);
            cvx_buf_append(&p, &b, 4);
            break;
        }
        default: cvx_buf_append_char(&p, 0x44), cvx_buf_append(&p, &g.bits, 8); break;
        }
        cvx_buf_append_char(&p, 0x0b);
    }
    if (!rc) put_section(c->out, 6, &p);
    cvx_buf_free(&p);
    return rc;
}

/* Only active segments can be replaced by the image: a passive one may be
 * named by memory.init in the code, which the rewrite does not follow. */
static int check_data(rd_t *r, cvx_err_t *err) {
    uint32_t n;
    if (!rd_u32(r, &n)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed data section");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t mode, l;
        if (!rd_u32(r, &mode)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed data segment %u", i);
        if (mode == 1) return cvx_err_set(err, CVX_E_BAD_MODULE, "a module with passive data segments cannot be snapshotted");
        if (mode == 2 && !rd_u32(r, &l)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed data segment %u", i);
        if (mode > 2 || !skip_const_expr(r) || !rd_u32(r, &l) || !rd_skip(r, l))
            return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed data segment %u", i);
    }
    return CVX_OK;
}

static int snap_cb(uint8_t id, rd_t *r, const uint8_t *raw, size_t raw_len, void *ctx, cvx_err_t *err) {
    snap_ctx_t *c = ctx;
    switch (id) {
    case 0: {
        /* Old cvx.* sections give way to the ones the snapshot adds. */
        uint32_t l;
        rd_t name = *r;
        if (rd_u32(&name, &l) && l >= 4 && (size_t)(name.end - name.p) >= l && memcmp(name.p, "cvx.", 4) == 0) return CVX_OK;
        break;
    }
    case 5: return snap_memory(c, r, err);
    case 6: return snap_globals(c, r, err);
    case 8: return CVX_OK; /* the start function ran already */
    case 11: {
        int rc = check_data(r, err);
        if (rc) return rc;
        put_section(c->out, 11, &c->data);
        c->data_done = true;
        return CVX_OK;
    }
    case 12: {
        cvx_buf_t p = {0};
        put_u32(&p, c->nsegments);
        put_section(c->out, 12, &p);
        cvx_buf_free(&p);
        return CVX_OK;
    }
    default: break;
    }
    cvx_buf_append(c->out, raw, raw_len);
    return CVX_OK;
}

int cvx_wasm_snapshot(const uint8_t *wasm, size_t len, cvx_instance_t *inst, const cvx_custom_section_t *extra,
                      size_t nextra, cvx_buf_t *out, cvx_err_t *err) {
    snap_ctx_t c = {.inst = inst, .out = out};
    int rc = sections(wasm, len, shape_cb, &c.shape, err);
    if (rc) return rc;
    c.mem = cvx_instance_memory_data(inst, &c.mem_len);
    if (!c.mem) return cvx_err_set(err, CVX_E_BAD_MODULE, "a snapshot needs a memory");
    build_data(&c);
    cvx_buf_append(out, wasm, 8);
    rc = sections(wasm, len, snap_cb, &c, err);
    /* A module without a data section gets one: after code (10), before
     * the custom sections appended below. */
    if (!rc && !c.data_done) put_section(out, 11, &c.data);
    for (size_t i = 0; !rc && i < nextra; i++) {
        cvx_buf_t p = {0};
        put_u32(&p, (uint32_t)extra[i].name_len);
        cvx_buf_append(&p, extra[i].name, extra[i].name_len);
        cvx_buf_append(&p, extra[i].data, extra[i].len);
        put_section(out, 0, &p);
        cvx_buf_free(&p);
    }
    cvx_buf_free(&c.data);
    if (!rc && out->oom) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory writing the snapshot");
    return rc;
}
