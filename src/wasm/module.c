/* Loading a module: validate the binary and its imports against the host
 * functions the engine provides, compile it (or load the compiled artifact
 * from the on-disk cache, keyed by the module's SHA-256 and the engine's
 * fingerprint), list its exports and pre-link it (InstancePre) so that each
 * call only allocates and initialises a fresh instance. */
#include "wasm/wasm_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *kind_name(uint8_t k) {
    switch (k) {
    case 0: return "function";
    case 1: return "table";
    case 2: return "memory";
    case 3: return "global";
    case 4: return "tag";
    default: return "item";
    }
}

static void module_free(cvx_module_t *m) {
    if (!m) return;
    if (m->pre) wasmtime_instance_pre_delete(m->pre);
    if (m->module) wasmtime_module_delete(m->module);
    for (size_t i = 0; i < m->nexports; i++) {
        cvx_free(m->exports[i].name);
        cvx_free(m->exports[i].params);
        cvx_free(m->exports[i].results);
    }
    cvx_free(m->exports);
    for (size_t i = 0; i < m->nimport_modules; i++) cvx_free((void *)m->import_modules[i]);
    cvx_free(m->import_modules);
    cvx_free(m->sections);
    cvx_free(m->kept);
    cvx_free(m);
}

/* Imports must all be host functions the engine registered. Names are
 * checked before compiling (cheap, precise message); signatures after. */
static int check_import_names(cvx_engine_t *e, cvx_module_t *m, const uint8_t *wasm, size_t len, cvx_err_t *err) {
    cvx_wasm_import_t *im;
    size_t n;
    int rc = cvx_wasm_imports(wasm, len, &im, &n, err);
    if (rc) return rc;
    for (size_t i = 0; i < n && rc == CVX_OK; i++) {
        if (im[i].kind != 0) {
            rc = cvx_err_set(err, CVX_E_BAD_MODULE, "module imports a %s (%.*s.%.*s); only host functions can be imported",
                             kind_name(im[i].kind), (int)im[i].module_len, im[i].module, (int)im[i].name_len,
                             im[i].name);
        } else if (!cvx__engine_find_hostfn(e, im[i].module, im[i].module_len, im[i].name, im[i].name_len)) {
            rc = cvx_err_set(err, CVX_E_BAD_MODULE, "unknown import %.*s.%.*s: the host provides no such function",
                             (int)im[i].module_len, im[i].module, (int)im[i].name_len, im[i].name);
        }
        if (rc == CVX_OK) {
            bool seen = false;
            for (size_t k = 0; k < m->nimport_modules; k++)
                if (strlen(m->import_modules[k]) == im[i].module_len &&
                    memcmp(m->import_modules[k], im[i].module, im[i].module_len) == 0)
                    seen = true;
            if (!seen) {
                const char **mods = cvx_realloc(m->import_modules, (m->nimport_modules + 1) * sizeof *mods);
                char *name = cvx_strndup(im[i].module, im[i].module_len);
                if (!mods || !name) {
                    if (mods) m->import_modules = mods;
                    cvx_free(name);
                    rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory reading imports");
                } else {
                    m->import_modules = mods;
                    mods[m->nimport_modules++] = name;
                }
            }
        }
    }
    cvx_free(im);
    return rc;
}

static void sig_text(const char *sig, char *out, size_t cap) {
    size_t o = 0;
    out[o++] = '(';
    for (size_t i = 0; sig[i] && o + 6 < cap; i++) {
        const char *t = sig[i] == 'i' ? "i32" : sig[i] == 'I' ? "i64" : sig[i] == 'f' ? "f32" : "f64";
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", t);
    }
    if (o + 2 < cap) out[o++] = ')';
    out[o] = '\0';
}

static int check_import_types(cvx_engine_t *e, cvx_module_t *m, cvx_err_t *err) {
    wasm_importtype_vec_t imports;
    wasmtime_module_imports(m->module, &imports);
    int rc = CVX_OK;
    for (size_t i = 0; i < imports.size && rc == CVX_OK; i++) {
        const wasm_name_t *mod = wasm_importtype_module(imports.data[i]);
        const wasm_name_t *name = wasm_importtype_name(imports.data[i]);
        const wasm_externtype_t *ty = wasm_importtype_type(imports.data[i]);
        const wasm_functype_t *ft = wasm_externtype_as_functype_const(ty);
        const cvx__hostfn_entry_t *h = cvx__engine_find_hostfn(e, mod->data, mod->size, name->data, name->size);
        if (!ft || !h) continue; /* already reported by check_import_names */
        char *p = cvx__sig_string(wasm_functype_params(ft));
        char *r = cvx__sig_string(wasm_functype_results(ft));
        if (!p || !r) {
            rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory checking imports");
        } else if (strcmp(p, h->fn.params) != 0 || strcmp(r, h->fn.results) != 0) {
            char gp[128], gr[128], hp[128], hr[128];
            sig_text(p, gp, sizeof gp);
            sig_text(r, gr, sizeof gr);
            sig_text(h->fn.params, hp, sizeof hp);
            sig_text(h->fn.results, hr, sizeof hr);
            rc = cvx_err_set(err, CVX_E_BAD_MODULE,
                             "import %.*s.%.*s has type %s -> %s but the host provides %s -> %s", (int)mod->size,
                             mod->data, (int)name->size, name->data, gp, gr, hp, hr);
        }
        cvx_free(p);
        cvx_free(r);
    }
    wasm_importtype_vec_delete(&imports);
    return rc;
}

static int read_exports(cvx_module_t *m, cvx_err_t *err) {
    wasm_exporttype_vec_t exports;
    wasmtime_module_exports(m->module, &exports);
    int rc = CVX_OK;
    bool memory = false;
    m->exports = cvx_calloc(exports.size ? exports.size : 1, sizeof *m->exports);
    if (!m->exports) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory reading exports");
    for (size_t i = 0; i < exports.size && rc == CVX_OK; i++) {
        const wasm_name_t *name = wasm_exporttype_name(exports.data[i]);
        const wasm_externtype_t *ty = wasm_exporttype_type(exports.data[i]);
        if (wasm_externtype_kind(ty) == WASM_EXTERN_MEMORY && name->size == 6 && memcmp(name->data, "memory", 6) == 0)
            memory = true;
        const wasm_functype_t *ft = wasm_externtype_as_functype_const(ty);
        if (!ft) continue;
        struct cvx_export_sig *x = &m->exports[m->nexports];
        x->name = cvx_strndup(name->data, name->size);
        x->params = cvx__sig_string(wasm_functype_params(ft));
        x->results = cvx__sig_string(wasm_functype_results(ft));
        m->nexports++;
        if (!x->name || !x->params || !x->results) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory reading exports");
    }
    wasm_exporttype_vec_delete(&exports);
    if (rc == CVX_OK && !memory)
        rc = cvx_err_set(err, CVX_E_BAD_MODULE, "module does not export its linear memory as \"memory\"");
    return rc;
}

static void cache_path(cvx_engine_t *e, const char *hash, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s-%.16s.cwasm", e->cache_dir, hash, e->fingerprint);
}

static int compile(cvx_engine_t *e, cvx_module_t *m, const uint8_t *wasm, size_t len, cvx_err_t *err) {
    uint64_t t0 = cvx_monotonic_ns();
    char path[4096];
    if (e->cache_dir) {
        cache_path(e, m->hash, path, sizeof path);
        struct stat st;
        if (stat(path, &st) == 0) {
            wasmtime_error_t *we = wasmtime_module_deserialize_file(e->engine, path, &m->module);
            if (!we) {
                m->from_cache = true;
                m->load_ms = (double)(cvx_monotonic_ns() - t0) / 1e6;
                return CVX_OK;
            }
            /* A stale or corrupt artifact: recompile and overwrite it. */
            wasmtime_error_delete(we);
            m->module = NULL;
        }
    }
    wasmtime_error_t *we = wasmtime_module_new(e->engine, wasm, len, &m->module);
    if (we) return cvx__wasm_error(we, err, CVX_E_BAD_MODULE, "invalid WebAssembly");
    m->load_ms = (double)(cvx_monotonic_ns() - t0) / 1e6;
    if (e->cache_dir) {
        wasm_byte_vec_t blob;
        we = wasmtime_module_serialize(m->module, &blob);
        if (!we) {
            cvx_err_t ignored;
            /* The cache is an optimisation: failing to write it is not an
             * error for the deploy. */
            /* Private: the server's cache is in its data directory. */
            if (cvx_mkdirs_private(e->cache_dir, &ignored) == CVX_OK)
                cvx_write_file_private(path, blob.data, blob.size, &ignored);
            wasm_byte_vec_delete(&blob);
        } else {
            wasmtime_error_delete(we);
        }
    }
    return CVX_OK;
}

/* DWARF sections are the bulk of a Rust module built with line tables (4.5
 * of the bench module's 4.8 MB). Wasmtime reads them while compiling and
 * keeps what traps need in its artifact; the host reads none of them. */
static bool is_debug_section(const cvx_custom_section_t *c) {
    return c->name_len >= 6 && memcmp(c->name, ".debug", 6) == 0;
}

/* Copies the custom sections the host may read into one block the module
 * owns, so the caller's bytes need not outlive the load. */
static int keep_sections(cvx_module_t *m, cvx_err_t *err) {
    size_t total = 0, n = 0;
    for (size_t i = 0; i < m->nsections; i++)
        if (!is_debug_section(&m->sections[i])) total += m->sections[i].name_len + m->sections[i].len;
    m->kept = cvx_malloc(total ? total : 1);
    if (!m->kept) return cvx_err_set(err, CVX_E_NOMEM, "out of memory loading a module");
    uint8_t *p = m->kept;
    for (size_t i = 0; i < m->nsections; i++) {
        cvx_custom_section_t c = m->sections[i];
        if (is_debug_section(&c)) continue;
        memcpy(p, c.name, c.name_len);
        c.name = (const char *)p;
        p += c.name_len;
        if (c.len) memcpy(p, c.data, c.len);
        c.data = p;
        p += c.len;
        m->sections[n++] = c;
    }
    m->nsections = n;
    return CVX_OK;
}

int cvx_module_load(cvx_engine_t *e, const uint8_t *wasm, size_t len, cvx_module_t **out, cvx_err_t *err) {
    return cvx_module_load_hashed(e, wasm, len, NULL, out, err);
}

int cvx_module_load_hashed(cvx_engine_t *e, const uint8_t *wasm, size_t len, const char *sha256_hex,
                           cvx_module_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_module_t *m = cvx_calloc(1, sizeof *m);
    if (!m) return cvx_err_set(err, CVX_E_NOMEM, "out of memory loading a module");
    atomic_init(&m->refs, 1);
    m->engine = e;
    if (sha256_hex && strlen(sha256_hex) == 64) {
        memcpy(m->hash, sha256_hex, 65);
    } else {
        uint8_t h[32];
        cvx_sha256(wasm, len, h);
        cvx_hex(h, 32, m->hash);
    }

    int rc = cvx_wasm_custom_sections(wasm, len, &m->sections, &m->nsections, err);
    if (!rc) rc = check_import_names(e, m, wasm, len, err);
    if (!rc) rc = compile(e, m, wasm, len, err);
    if (!rc) rc = check_import_types(e, m, err);
    if (!rc) rc = read_exports(m, err);
    if (!rc) rc = keep_sections(m, err);
    if (!rc) {
        wasmtime_error_t *we = wasmtime_linker_instantiate_pre(e->linker, m->module, &m->pre);
        if (we) rc = cvx__wasm_error(we, err, CVX_E_BAD_MODULE, "cannot link module");
    }
    if (rc) {
        module_free(m);
        return rc;
    }
    *out = m;
    return CVX_OK;
}

void cvx_module_retain(cvx_module_t *m) { atomic_fetch_add(&m->refs, 1); }

void cvx_module_release(cvx_module_t *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) module_free(m);
}

const char *cvx_module_hash(const cvx_module_t *m) { return m->hash; }
bool cvx_module_from_cache(const cvx_module_t *m) { return m->from_cache; }
double cvx_module_load_ms(const cvx_module_t *m) { return m->load_ms; }

size_t cvx_module_custom_sections(const cvx_module_t *m, const cvx_custom_section_t **out) {
    *out = m->sections;
    return m->nsections;
}

bool cvx_module_has_func(const cvx_module_t *m, const char *name, const char *params, const char *results) {
    for (size_t i = 0; i < m->nexports; i++)
        if (strcmp(m->exports[i].name, name) == 0)
            return strcmp(m->exports[i].params, params) == 0 && strcmp(m->exports[i].results, results) == 0;
    return false;
}

size_t cvx_module_import_modules(const cvx_module_t *m, const char *const **out) {
    *out = m->import_modules;
    return m->nimport_modules;
}

int cvx_wat_to_wasm(const char *wat, size_t len, cvx_buf_t *out, cvx_err_t *err) {
    wasm_byte_vec_t v;
    wasmtime_error_t *we = wasmtime_wat2wasm(wat, len, &v);
    if (we) return cvx__wasm_error(we, err, CVX_E_INVALID_ARGUMENT, "invalid WebAssembly text");
    int rc = cvx_buf_append(out, v.data, v.size);
    wasm_byte_vec_delete(&v);
    return rc ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : CVX_OK;
}
