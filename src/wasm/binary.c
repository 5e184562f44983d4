/* A minimal reader of the wasm binary format: enough to find custom sections
 * (where the guest's metadata lives) and the import list, without compiling.
 * Wasmtime validates everything else; this code only has to be safe on any
 * input, which the fuzz target fuzz/wasm_sections_fuzz.c checks. */
#include "wasm/wasm.h"

#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} reader_t;

static bool read_u32(reader_t *r, uint32_t *out) {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        if (shift == 28 && (b & 0x70)) return false; /* > 32 bits */
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static bool read_u64(reader_t *r) {
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end) return false;
        if (!(*r->p++ & 0x80)) return true;
    }
    return false;
}

static bool read_name(reader_t *r, const char **s, size_t *n) {
    uint32_t len;
    if (!read_u32(r, &len) || (size_t)(r->end - r->p) < len) return false;
    *s = (const char *)r->p;
    *n = len;
    r->p += len;
    return true;
}

static bool skip(reader_t *r, size_t n) {
    if ((size_t)(r->end - r->p) < n) return false;
    r->p += n;
    return true;
}

static bool read_bound(reader_t *r, bool is64) {
    uint32_t x;
    return is64 ? read_u64(r) : read_u32(r, &x);
}

static bool read_limits(reader_t *r) {
    if (r->p >= r->end) return false;
    uint8_t flags = *r->p++;
    bool is64 = flags & 4;
    if (!read_bound(r, is64)) return false;
    if ((flags & 1) && !read_bound(r, is64)) return false;
    if (flags & 8) { /* custom page size */
        uint32_t x;
        if (!read_u32(r, &x)) return false;
    }
    return true;
}

static int header(const uint8_t *wasm, size_t len, cvx_err_t *err) {
    if (len < 8 || memcmp(wasm, "\0asm", 4) != 0)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "not a WebAssembly module (missing \\0asm magic)");
    if (memcmp(wasm + 4, "\x01\0\0\0", 4) != 0) {
        if (wasm[6] == 1 && wasm[7] == 0)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "WebAssembly components are not supported; build a core module");
        return cvx_err_set(err, CVX_E_BAD_MODULE, "unsupported WebAssembly binary version %u", (unsigned)wasm[4]);
    }
    return CVX_OK;
}

/* Calls fn(section id, payload reader) for each section. */
typedef int (*section_fn)(uint8_t id, reader_t *payload, void *ctx, cvx_err_t *err);

static int each_section(const uint8_t *wasm, size_t len, section_fn fn, void *ctx, cvx_err_t *err) {
    int rc = header(wasm, len, err);
    if (rc) return rc;
    reader_t r = {wasm + 8, wasm + len};
    while (r.p < r.end) {
        uint8_t id = *r.p++;
        uint32_t size;
        size_t off = (size_t)(r.p - wasm);
        if (!read_u32(&r, &size) || (size_t)(r.end - r.p) < size)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "truncated or malformed section header at byte %zu", off);
        reader_t payload = {r.p, r.p + size};
        r.p += size;
        if ((rc = fn(id, &payload, ctx, err))) return rc;
    }
    return CVX_OK;
}

typedef struct {
    cvx_custom_section_t *items;
    size_t n, cap;
} sections_t;

static int on_custom(uint8_t id, reader_t *payload, void *ctx, cvx_err_t *err) {
    if (id != 0) return CVX_OK;
    sections_t *s = ctx;
    const char *name;
    size_t name_len;
    if (!read_name(payload, &name, &name_len))
        return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed custom section name");
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        cvx_custom_section_t *p = cvx_realloc(s->items, cap * sizeof *p);
        if (!p) return cvx_err_set(err, CVX_E_NOMEM, "out of memory reading custom sections");
        s->items = p;
        s->cap = cap;
    }
    s->items[s->n].name = name;
    s->items[s->n].name_len = name_len;
    s->items[s->n].data = payload->p;
    s->items[s->n].len = (size_t)(payload->end - payload->p);
    s->n++;
    return CVX_OK;
}

int cvx_wasm_custom_sections(const uint8_t *wasm, size_t len, cvx_custom_section_t **out, size_t *n,
                             cvx_err_t *err) {
    sections_t s = {0};
    *out = NULL;
    *n = 0;
    int rc = each_section(wasm, len, on_custom, &s, err);
    if (rc) {
        cvx_free(s.items);
        return rc;
    }
    *out = s.items;
    *n = s.n;
    return CVX_OK;
}

typedef struct {
    cvx_wasm_import_t *items;
    size_t n;
} imports_t;

static int on_import(uint8_t id, reader_t *r, void *ctx, cvx_err_t *err) {
    if (id != 2) return CVX_OK;
    imports_t *im = ctx;
    uint32_t count;
    /* The format allows one import section; a second one must not replace
     * (and leak) the first before Wasmtime gets to reject the module. */
    if (im->items) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed module: more than one import section");
    if (!read_u32(r, &count)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed import section");
    if (count > (size_t)(r->end - r->p)) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed import section");
    im->items = cvx_calloc(count ? count : 1, sizeof *im->items);
    if (!im->items) return cvx_err_set(err, CVX_E_NOMEM, "out of memory reading imports");
    for (uint32_t i = 0; i < count; i++) {
        cvx_wasm_import_t *it = &im->items[i];
        uint32_t x;
        if (!read_name(r, &it->module, &it->module_len) || !read_name(r, &it->name, &it->name_len) ||
            r->p >= r->end)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed import %u", i);
        it->kind = *r->p++;
        bool ok = true;
        switch (it->kind) {
        case 0: ok = read_u32(r, &x); break;                            /* func: type index */
        case 1: ok = r->p < r->end && (r->p++, read_limits(r)); break;   /* table: reftype + limits */
        case 2: ok = read_limits(r); break;                              /* memory */
        case 3: ok = skip(r, 2); break;                                  /* global: valtype + mut */
        case 4: ok = skip(r, 1) && read_u32(r, &x); break;               /* tag */
        default: ok = false;
        }
        if (!ok) return cvx_err_set(err, CVX_E_BAD_MODULE, "malformed import %u", i);
        im->n = i + 1;
    }
    return CVX_OK;
}

int cvx_wasm_imports(const uint8_t *wasm, size_t len, cvx_wasm_import_t **out, size_t *n, cvx_err_t *err) {
    imports_t im = {0};
    *out = NULL;
    *n = 0;
    int rc = each_section(wasm, len, on_import, &im, err);
    if (rc) {
        cvx_free(im.items);
        return rc;
    }
    *out = im.items;
    *n = im.n;
    return CVX_OK;
}
