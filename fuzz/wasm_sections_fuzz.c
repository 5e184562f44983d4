/*
 * wasm_sections_fuzz.c — libFuzzer target for what cvx reads from a module
 * before Wasmtime compiles it: the wasm binary readers (src/wasm/binary.c:
 * cvx_wasm_custom_sections, cvx_wasm_imports) and the real metadata loader
 * (src/abi/app.c: cvx_app_load — ABI version check, the u32-LE framing of
 * the cvx.fn / cvx.schema / cvx.crons records, every record's parser, the
 * metadata document).
 *
 * These run on every module a user deploys, so they must survive any
 * bytes. app.c is linked as it is; only the wasm layer's module object
 * (Wasmtime) is replaced below by one built from the same binary reader the
 * real one uses for its custom sections. Checked, besides "no crash":
 *  - on success every section, name and import lies inside the input, and
 *    an import's kind is 0..4;
 *  - on failure the outputs are NULL / 0 and the error is CVX_E_BAD_MODULE
 *    with a message;
 *  - both readers agree on the header: one refuses it iff the other does;
 *  - cvx_app_load fails (CVX_E_BAD_MODULE, a message, no app) whenever a
 *    reader does; what it accepts is consistent: functions sorted with
 *    unique module:function paths and each found by cvx_app_find, known
 *    kinds, exports the module has, args arrays, HTTP routes starting with
 *    '/' that cvx_app_find_http reaches, valid table names, crons with a
 *    path and object args, and a metadata document that parses and passes
 *    cvx_value_check.
 *
 * The first input byte is a mode: if its low bit is set, the rest is
 * prefixed with a valid header ("\0asm" 1 0 0 0) so the fuzzer spends its
 * time on sections rather than on rediscovering the magic; if bit 1 is set
 * too, also with an import from cvx_1, so that the loader gets past the
 * ABI version check to the metadata whatever sections follow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi/abi_int.h"
#include "fuzz.h"
#include "value/value.h"
#include "wasm/wasm.h"

/* ---- the wasm layer's module, without Wasmtime --------------------------- */

/* app.c needs these only through cvx_abi_register, which is not fuzzed. */
const cvx_hostfn_t cvx__abi_hostfns[1];
const size_t cvx__abi_nhostfns = 0;
const cvx_hostfn_t cvx__wasi_hostfns[1];
const size_t cvx__wasi_nhostfns = 0;

int cvx_engine_define(cvx_engine_t *e, const cvx_hostfn_t *fns, size_t n, cvx_err_t *err) { return CVX_OK; }

struct cvx_module {
    cvx_custom_section_t *sections;
    size_t nsections;
    char hash[65];
};

int cvx_module_load_hashed(cvx_engine_t *e, const uint8_t *wasm, size_t len, const char *sha256_hex,
                           cvx_module_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_module_t *m = cvx_calloc(1, sizeof *m);
    if (!m) return cvx_err_set(err, CVX_E_NOMEM, "out of memory loading a module");
    uint8_t h[32];
    cvx_sha256(wasm, len, h);
    cvx_hex(h, 32, m->hash);
    int rc = cvx_wasm_custom_sections(wasm, len, &m->sections, &m->nsections, err);
    if (rc) {
        cvx_free(m);
        return rc;
    }
    *out = m;
    return CVX_OK;
}

void cvx_module_release(cvx_module_t *m) {
    if (!m) return;
    cvx_free(m->sections);
    cvx_free(m);
}

const char *cvx_module_hash(const cvx_module_t *m) { return m->hash; }

size_t cvx_module_custom_sections(const cvx_module_t *m, const cvx_custom_section_t **out) {
    *out = m->sections;
    return m->nsections;
}

/* Export sections are Wasmtime's to read: this module exports every name
 * except those starting with '!', so the loader's check takes both ways. */
static bool exported(const char *name) { return name[0] != '!'; }

bool cvx_module_has_func(const cvx_module_t *m, const char *name, const char *params, const char *results) {
    return exported(name) && strcmp(params, "i") == 0 && strcmp(results, "i") == 0;
}

/* ---- the target ------------------------------------------------------------ */

static bool inside(const void *p, size_t n, const uint8_t *base, size_t len) {
    const uint8_t *q = p;
    return n == 0 || (q >= base && q <= base + len && n <= (size_t)(base + len - q));
}

static bool is_header_error(const cvx_err_t *err) {
    return strstr(err->msg, "not a WebAssembly module") || strstr(err->msg, "components are not supported") ||
           strstr(err->msg, "unsupported WebAssembly binary version");
}

static bool parses(cvx_arena_t *a, const char *json, cvx_value_t **v) {
    cvx_err_t err;
    return cvx_json_parse(a, json, strlen(json), v, &err) == CVX_OK &&
           cvx_value_check(*v, CVX_CHECK_VALUE, &err) == CVX_OK;
}

static void check_app(const cvx_app_t *app) {
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return;
    cvx_value_t *v;
    const cvx_fn_t *fns;
    size_t nfns = cvx_app_functions(app, &fns);
    CHECK(nfns > 0);
    for (size_t i = 0; i < nfns; i++) {
        const cvx_fn_t *f = &fns[i];
        if (i) CHECK(strcmp(fns[i - 1].path, f->path) < 0);
        size_t mlen = strlen(f->module);
        CHECK(mlen > 0 && strncmp(f->path, f->module, mlen) == 0 && f->path[mlen] == ':');
        CHECK(f->name == f->path + mlen + 1 && f->name[0] != '\0' && !strchr(f->name, ':'));
        CHECK(f->kind == CVX_KIND_QUERY || f->kind == CVX_KIND_MUTATION || f->kind == CVX_KIND_ACTION);
        CHECK(f->export_name && exported(f->export_name));
        CHECK(f->args && f->args->type == CVX_T_ARRAY);
        if (f->http) {
            CHECK(f->kind == CVX_KIND_ACTION && f->http_method && f->http_route && f->http_route[0] == '/');
            /* Its own route reaches an action of its method (a longer or
             * exact route may win over a prefix). */
            const cvx_fn_t *h = cvx_app_find_http(app, f->http_method, f->http_route);
            CHECK(h && h->http && strcmp(h->http_method, f->http_method) == 0);
        }
        CHECK(f->meta_json && parses(a, f->meta_json, &v));
        /* A path with ".js" before the colon is looked up without it. */
        if (!(mlen > 3 && memcmp(f->path + mlen - 3, ".js", 3) == 0) && strlen(f->path) < 400)
            CHECK(cvx_app_find(app, f->path, strlen(f->path)) == f);
    }
    const cvx_table_def_t *tables;
    size_t ntables = cvx_app_tables(app, &tables);
    CHECK(ntables == 0 || cvx_app_schema(app) != NULL);
    for (size_t i = 0; i < ntables; i++) {
        CHECK(cvx_table_name_valid(tables[i].name, strlen(tables[i].name)) && tables[i].name[0] != '_');
        for (size_t k = 0; k < tables[i].nindexes; k++)
            CHECK(tables[i].indexes[k].nfields >= 1 && tables[i].indexes[k].nfields <= 16);
    }
    const cvx_cron_t *crons;
    size_t ncrons = cvx_app_crons(app, &crons);
    for (size_t i = 0; i < ncrons; i++) {
        CHECK(crons[i].name && crons[i].path && strchr(crons[i].path, ':'));
        CHECK(crons[i].every_ms > 0 || crons[i].cron != NULL);
        CHECK(parses(a, crons[i].args_json, &v) && v->type == CVX_T_OBJECT);
    }
    CHECK(parses(a, cvx_app_metadata_json(app), &v));
    cvx_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t mode = data[0];
    data++, size--;
    /* A private heap copy of exactly the input, so any overread is caught. */
    static const uint8_t prefix[] = "\0asm\x01\0\0\0"
                                    "\x02\x16\x01\x05" "cvx_1" "\x0c" "__convex_log" "\x00\x00";
    size_t hdr = (mode & 1) ? ((mode & 2) ? sizeof prefix - 1 : 8) : 0;
    uint8_t *buf = malloc(size + hdr > 0 ? size + hdr : 1);
    if (!buf) return 0;
    memcpy(buf, prefix, hdr);
    if (size) memcpy(buf + hdr, data, size);
    size_t len = size + hdr;

    cvx_custom_section_t *secs = (cvx_custom_section_t *)1;
    size_t nsecs = 99;
    cvx_err_t err1 = {0};
    int rc1 = cvx_wasm_custom_sections(buf, len, &secs, &nsecs, &err1);
    if (rc1 == CVX_OK) {
        CHECK(nsecs == 0 || secs != NULL);
        for (size_t i = 0; i < nsecs; i++) {
            CHECK(inside(secs[i].name, secs[i].name_len, buf, len));
            CHECK(inside(secs[i].data, secs[i].len, buf, len));
            /* The name comes before the data, in the same section. */
            CHECK((const uint8_t *)secs[i].name + secs[i].name_len <= secs[i].data);
        }
        cvx_free(secs);
    } else {
        CHECK(rc1 == CVX_E_BAD_MODULE);
        CHECK(secs == NULL && nsecs == 0);
        CHECK(err1.msg[0] != '\0');
    }

    cvx_wasm_import_t *im = (cvx_wasm_import_t *)1;
    size_t nim = 99;
    cvx_err_t err2 = {0};
    int rc2 = cvx_wasm_imports(buf, len, &im, &nim, &err2);
    if (rc2 == CVX_OK) {
        CHECK(nim == 0 || im != NULL);
        for (size_t i = 0; i < nim; i++) {
            CHECK(inside(im[i].module, im[i].module_len, buf, len));
            CHECK(inside(im[i].name, im[i].name_len, buf, len));
            CHECK(im[i].kind <= 4);
        }
        cvx_free(im);
    } else {
        CHECK(rc2 == CVX_E_BAD_MODULE);
        CHECK(im == NULL && nim == 0);
        CHECK(err2.msg[0] != '\0');
    }

    /* Both readers share the header and section walk. */
    CHECK((rc1 != CVX_OK && is_header_error(&err1)) == (rc2 != CVX_OK && is_header_error(&err2)));
    if (rc1 != CVX_OK && strstr(err1.msg, "section header")) CHECK(rc2 != CVX_OK);
    if (rc2 != CVX_OK && strstr(err2.msg, "section header")) CHECK(rc1 != CVX_OK);

    cvx_app_t *app = (cvx_app_t *)1;
    cvx_err_t err3 = {0};
    int rc3 = cvx_app_load(NULL, buf, len, &app, &err3);
    if (rc3 == CVX_OK) {
        CHECK(rc1 == CVX_OK && rc2 == CVX_OK);
        CHECK(app != NULL);
        check_app(app);
        cvx_app_release(app);
    } else {
        CHECK(rc3 == CVX_E_BAD_MODULE && err3.code == CVX_E_BAD_MODULE);
        CHECK(app == NULL && err3.msg[0] != '\0');
    }

    free(buf);
    return 0;
}
