/* Module analysis: what a deployed app contains, read from its modules'
 * custom sections without running them (docs/abi.md §4).
 *
 * An app is one module per language: the Rust crate's, and the snapshot
 * of the JavaScript engine with the app's TypeScript bundle (src/js). Their
 * functions, schema and crons become one set, so a name defined in both is
 * a deploy error naming both files.
 *
 * The checks here are the ones a user needs a precise message for at deploy
 * time: the ABI version (from the import module names), the metadata
 * records, the export each record names, duplicate paths, the schema, the
 * validators. The wasm layer has already checked imports and signatures. */
#include "abi/abi_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cvx_app {
    atomic_int refs;
    cvx_module_t *modules[CVX_APP_MAX_MODULES];
    const char *labels[CVX_APP_MAX_MODULES];
    cvx_sourcemap_t *maps[CVX_APP_MAX_MODULES]; /* from cvx.js.sourcemap */
    size_t nmodules;
    size_t loading;          /* the module being analysed */
    char hash[65];           /* of the modules' hashes, in order */
    cvx_arena_t *arena;
    cvx_fn_t *fns; /* sorted by path */
    size_t nfns;
    const cvx_value_t *schema;
    const char *schema_origin;
    bool schema_validation;
    const char *crons_origin;
    cvx_table_def_t *tables;
    size_t ntables;
    cvx_cron_t *crons;
    size_t ncrons;
    const char *auth;        /* the cvx.auth record's JSON, or NULL */
    size_t auth_len;
    const char *auth_origin;
    char *metadata_json;
};

const char *cvx_kind_name(cvx_kind_t k) {
    switch (k) {
    case CVX_KIND_QUERY: return "query";
    case CVX_KIND_MUTATION: return "mutation";
    case CVX_KIND_ACTION: return "action";
    }
    return "function";
}

int cvx_abi_register(cvx_engine_t *e, cvx_err_t *err) {
    int rc = cvx_engine_define(e, cvx__abi_hostfns, cvx__abi_nhostfns, err);
    if (!rc) rc = cvx_engine_define(e, cvx__wasi_hostfns, cvx__wasi_nhostfns, err);
    return rc;
}

/* The ABI version is the number in the import module name (cvx_<N>). */
static int check_abi_version(const uint8_t *wasm, size_t len, cvx_err_t *err) {
    cvx_wasm_import_t *im;
    size_t n;
    int rc = cvx_wasm_imports(wasm, len, &im, &n, err);
    if (rc) return rc;
    bool has_v1 = false;
    for (size_t i = 0; i < n && rc == CVX_OK; i++) {
        if (im[i].module_len > 4 && memcmp(im[i].module, "cvx_", 4) == 0) {
            if (im[i].module_len == strlen(CVX_ABI_MODULE) && memcmp(im[i].module, CVX_ABI_MODULE, im[i].module_len) == 0)
                has_v1 = true;
            else
                rc = cvx_err_set(err, CVX_E_BAD_MODULE,
                                 "module imports ABI version %.*s (%.*s.%.*s); this server supports version %d",
                                 (int)im[i].module_len - 4, im[i].module + 4, (int)im[i].module_len, im[i].module,
                                 (int)im[i].name_len, im[i].name, CVX_ABI_VERSION);
        }
    }
    cvx_free(im);
    if (rc == CVX_OK && !has_v1)
        rc = cvx_err_set(err, CVX_E_BAD_MODULE,
                         "module imports nothing from %s: it was not built with a cvx SDK (convex_sdk)",
                         CVX_ABI_MODULE);
    return rc;
}

static const char *str_field(const cvx_value_t *obj, const char *name) {
    const cvx_value_t *v = cvx_obj_get_cstr(obj, name);
    return v && v->type == CVX_T_STRING ? v->u.str.ptr : NULL;
}

/* Splits framed records: u32 little-endian length, then that many bytes. */
typedef int (*record_fn)(cvx_app_t *app, const char *json, size_t len, size_t index, cvx_err_t *err);

static int each_record(cvx_app_t *app, const char *section, record_fn fn, size_t *count, cvx_err_t *err) {
    const cvx_custom_section_t *secs;
    size_t nsecs = cvx_module_custom_sections(app->modules[app->loading], &secs);
    size_t index = 0;
    for (size_t s = 0; s < nsecs; s++) {
        if (secs[s].name_len != strlen(section) || memcmp(secs[s].name, section, secs[s].name_len) != 0) continue;
        const uint8_t *p = secs[s].data, *end = secs[s].data + secs[s].len;
        while (p < end) {
            if (end - p < 4)
                return cvx_err_set(err, CVX_E_BAD_MODULE, "custom section %s: truncated record header", section);
            uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            p += 4;
            if ((size_t)(end - p) < n)
                return cvx_err_set(err, CVX_E_BAD_MODULE, "custom section %s: record %zu is truncated", section, index);
            int rc = fn(app, (const char *)p, n, index, err);
            if (rc) return rc;
            p += n;
            index++;
        }
    }
    *count += index;
    return CVX_OK;
}

/* A function's argument and return validators: Convex's JSON when the
 * record carries it (argsValidator / returnsValidator, as the JavaScript
 * runtime writes them), else the cvx type descriptors (args / returns). */
static int compile_validators(cvx_app_t *app, cvx_fn_t *f, const cvx_value_t *rec, cvx_err_t *err) {
    const cvx_value_t *av = cvx_obj_get_cstr(rec, "argsValidator");
    const cvx_value_t *rv = cvx_obj_get_cstr(rec, "returnsValidator");
    const cvx_value_t *rt = cvx_obj_get_cstr(rec, "returns");
    int rc = av ? cvx_validator_from_convex(app->arena, av, &f->args_v, err)
                : cvx_validator_from_args(app->arena, f->args, &f->args_v, err);
    if (!rc && rv && rv->type != CVX_T_NULL) rc = cvx_validator_from_convex(app->arena, rv, &f->returns_v, err);
    else if (!rc && !av && rt) rc = cvx_validator_from_type(app->arena, rt, &f->returns_v, err);
    if (rc && rc != CVX_E_NOMEM) {
        cvx_err_prefix(err, "function %s", f->path);
        err->code = rc = CVX_E_BAD_MODULE;
    }
    return rc;
}

static int parse_fn(cvx_app_t *app, const char *json, size_t len, size_t index, cvx_err_t *err) {
    cvx_value_t *rec;
    if (cvx_json_parse(app->arena, json, len, &rec, err)) {
        cvx_err_prefix(err, "function metadata record %zu is not valid JSON", index);
        err->code = CVX_E_BAD_MODULE;
        return CVX_E_BAD_MODULE;
    }
    const cvx_value_t *abi = rec->type == CVX_T_OBJECT ? cvx_obj_get_cstr(rec, "abi") : NULL;
    double version = abi ? (abi->type == CVX_T_FLOAT64 ? abi->u.f : abi->type == CVX_T_INT64 ? (double)abi->u.i : -1) : -1;
    if (version != CVX_ABI_VERSION)
        return cvx_err_set(err, CVX_E_BAD_MODULE,
                           "function metadata record %zu declares ABI version %g; this server supports version %d",
                           index, version, CVX_ABI_VERSION);
    cvx_fn_t *f = &app->fns[app->nfns];
    memset(f, 0, sizeof *f);
    f->path = str_field(rec, "path");
    f->export_name = str_field(rec, "export");
    const char *kind = str_field(rec, "kind");
    const char *vis = str_field(rec, "visibility");
    f->args = cvx_obj_get_cstr(rec, "args");
    f->returns = cvx_obj_get_cstr(rec, "returns");
    f->file = str_field(rec, "file");
    /* A line number from the module: anything that is not a plausible
     * line (negative, huge, NaN) is 0, never an out-of-range cast. */
    const cvx_value_t *line = cvx_obj_get_cstr(rec, "line");
    double ln = line && line->type == CVX_T_FLOAT64 ? line->u.f : line && line->type == CVX_T_INT64 ? (double)line->u.i : 0;
    f->line = ln >= 1 && ln <= 1e9 ? (int64_t)ln : 0;
    if (!f->path || !f->export_name || !kind || !f->args || f->args->type != CVX_T_ARRAY)
        return cvx_err_set(err, CVX_E_BAD_MODULE,
                           "function metadata record %zu lacks \"path\", \"export\", \"kind\" or \"args\"", index);
    if (strcmp(kind, "query") == 0) f->kind = CVX_KIND_QUERY;
    else if (strcmp(kind, "mutation") == 0) f->kind = CVX_KIND_MUTATION;
    else if (strcmp(kind, "action") == 0) f->kind = CVX_KIND_ACTION;
    else if (strcmp(kind, "httpAction") == 0) {
        /* An HTTP action runs as an action; only its route reaches it. */
        f->kind = CVX_KIND_ACTION;
        f->http = true;
        f->http_method = str_field(rec, "method");
        f->http_route = str_field(rec, "route");
        static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"};
        bool known = false;
        for (size_t m = 0; f->http_method && m < CVX_ARRAY_LEN(methods); m++) known = known || !strcmp(f->http_method, methods[m]);
        if (!known || !f->http_route || f->http_route[0] != '/')
            return cvx_err_set(err, CVX_E_BAD_MODULE,
                               "HTTP action %s needs \"method\" (GET, POST, PUT, PATCH, DELETE, OPTIONS) and a \"route\" "
                               "starting with '/'",
                               f->path);
    } else return cvx_err_set(err, CVX_E_BAD_MODULE, "function %s has unknown kind \"%s\"", f->path, kind);
    f->internal = vis && strcmp(vis, "internal") == 0;
    if (vis && !f->internal && strcmp(vis, "public") != 0)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "function %s has unknown visibility \"%s\"", f->path, vis);
    const char *colon = strchr(f->path, ':');
    if (!colon || colon == f->path || !colon[1] || strchr(colon + 1, ':'))
        return cvx_err_set(err, CVX_E_BAD_MODULE, "function path \"%s\" is not of the form module:function", f->path);
    f->module = cvx_arena_strndup(app->arena, f->path, (size_t)(colon - f->path));
    f->name = colon + 1;
    f->meta_json = cvx_arena_strndup(app->arena, json, len);
    if (!f->module || !f->meta_json) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    f->wasm = app->modules[app->loading];
    f->sourcemap = app->maps[app->loading];
    f->origin = app->labels[app->loading];
    int rc = compile_validators(app, f, rec, err);
    if (rc) return rc;
    if (!cvx_module_has_func(f->wasm, f->export_name, "i", "i"))
        return cvx_err_set(err, CVX_E_BAD_MODULE,
                           "function %s declares export \"%s\" (i32) -> i32, which the module does not export",
                           f->path, f->export_name);
    app->nfns++;
    return CVX_OK;
}

static int count_fn(cvx_app_t *app, const char *json, size_t len, size_t index, cvx_err_t *err) { return CVX_OK; }

static int parse_schema(cvx_app_t *app, const char *json, size_t len, size_t index, cvx_err_t *err) {
    if (index > 0) return cvx_err_set(err, CVX_E_BAD_MODULE, "module declares more than one schema");
    if (app->schema)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "the app declares two schemas: in %s and in %s; keep one",
                           app->schema_origin, app->labels[app->loading]);
    app->schema_origin = app->labels[app->loading];
    cvx_value_t *rec;
    if (cvx_json_parse(app->arena, json, len, &rec, err)) {
        cvx_err_prefix(err, "schema record is not valid JSON");
        err->code = CVX_E_BAD_MODULE;
        return CVX_E_BAD_MODULE;
    }
    const cvx_value_t *tables = rec->type == CVX_T_OBJECT ? cvx_obj_get_cstr(rec, "tables") : NULL;
    if (!tables || tables->type != CVX_T_ARRAY)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "schema record lacks a \"tables\" array");
    app->schema = rec;
    const cvx_value_t *sv = cvx_obj_get_cstr(rec, "schemaValidation");
    app->schema_validation = !sv || sv->type != CVX_T_BOOL || sv->u.b;
    app->tables = cvx_arena_alloc(app->arena, (tables->u.arr.len + 1) * sizeof *app->tables);
    if (!app->tables) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < tables->u.arr.len; i++) {
        const cvx_value_t *t = tables->u.arr.items[i];
        const char *name = t->type == CVX_T_OBJECT ? str_field(t, "name") : NULL;
        if (!name || !cvx_table_name_valid(name, strlen(name)) || name[0] == '_')
            return cvx_err_set(err, CVX_E_BAD_MODULE, "schema table %zu has an invalid name", i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(app->tables[k].name, name) == 0)
                return cvx_err_set(err, CVX_E_BAD_MODULE, "schema declares table \"%s\" twice", name);
        cvx_table_def_t *td = &app->tables[app->ntables++];
        td->name = name;
        td->nindexes = 0;
        td->validator = NULL;
        const cvx_value_t *dv = cvx_obj_get_cstr(t, "documentValidator");
        const cvx_value_t *doc_fields = cvx_obj_get_cstr(t, "fields");
        int vrc = CVX_OK;
        if (dv && dv->type != CVX_T_NULL) vrc = cvx_validator_from_convex(app->arena, dv, &td->validator, err);
        else if (doc_fields && doc_fields->type == CVX_T_OBJECT) {
            /* A Rust schema's fields: the object descriptor they make. */
            cvx_value_t *tag = cvx_string(app->arena, "object", 6);
            cvx_value_t *desc = cvx_object(app->arena, 2);
            if (!tag || !desc || cvx_obj_set(app->arena, desc, "type", 4, tag) ||
                cvx_obj_set(app->arena, desc, "fields", 6, (cvx_value_t *)doc_fields))
                return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            vrc = cvx_validator_from_type(app->arena, desc, &td->validator, err);
        }
        if (vrc) {
            cvx_err_prefix(err, "schema of table \"%s\"", name);
            err->code = CVX_E_BAD_MODULE;
            return CVX_E_BAD_MODULE;
        }
        const cvx_value_t *idx = cvx_obj_get_cstr(t, "indexes");
        size_t nidx = idx && idx->type == CVX_T_ARRAY ? idx->u.arr.len : 0;
        cvx_index_def_t *defs = cvx_arena_alloc(app->arena, (nidx + 1) * sizeof *defs);
        if (!defs) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        for (size_t k = 0; k < nidx; k++) {
            const cvx_value_t *ix = idx->u.arr.items[k];
            const char *iname = ix->type == CVX_T_OBJECT ? str_field(ix, "name") : NULL;
            const cvx_value_t *fields = iname ? cvx_obj_get_cstr(ix, "fields") : NULL;
            if (!iname || !fields || fields->type != CVX_T_ARRAY || fields->u.arr.len == 0 || fields->u.arr.len > 16)
                return cvx_err_set(err, CVX_E_BAD_MODULE,
                                   "schema index %zu of table \"%s\" needs a name and 1..16 fields", k, name);
            if (strcmp(iname, CVX_INDEX_BY_ID) == 0 || strcmp(iname, CVX_INDEX_BY_CREATION) == 0)
                return cvx_err_set(err, CVX_E_BAD_MODULE, "index name \"%s\" on table \"%s\" is reserved", iname,
                                   name);
            const char **fl = cvx_arena_alloc(app->arena, fields->u.arr.len * sizeof *fl);
            if (!fl) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            for (size_t f = 0; f < fields->u.arr.len; f++) {
                const cvx_value_t *fv = fields->u.arr.items[f];
                if (fv->type != CVX_T_STRING || fv->u.str.len == 0)
                    return cvx_err_set(err, CVX_E_BAD_MODULE, "index \"%s\" on table \"%s\" has a non-string field",
                                       iname, name);
                fl[f] = fv->u.str.ptr;
            }
            defs[k].name = iname;
            defs[k].fields = fl;
            defs[k].nfields = fields->u.arr.len;
            td->nindexes++;
        }
        td->indexes = defs;
    }
    return CVX_OK;
}

/* The cvx.auth record (docs/abi.md "Authentication"): kept as text; the
 * server resolves and checks it (auth/providers.c), with the deployment's
 * environment variables. */
static int parse_auth(cvx_app_t *app, const char *json, size_t len, size_t index, cvx_err_t *err) {
    if (index > 0 || app->auth)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "the app declares auth providers in %s and in %s; keep them in one place",
                           app->auth ? app->auth_origin : app->labels[app->loading], app->labels[app->loading]);
    char *copy = cvx_arena_alloc(app->arena, len + 1);
    if (!copy) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    memcpy(copy, json, len);
    copy[len] = '\0';
    app->auth = copy;
    app->auth_len = len;
    app->auth_origin = app->labels[app->loading];
    return CVX_OK;
}

/* The cvx.crons record (docs/abi.md "Crons"). */
static int parse_crons(cvx_app_t *app, const char *json, size_t len, size_t index, cvx_err_t *err) {
    if (index > 0) return cvx_err_set(err, CVX_E_BAD_MODULE, "module declares more than one cron section");
    if (app->crons)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "the app declares crons in %s and in %s; keep them in one place",
                           app->crons_origin, app->labels[app->loading]);
    app->crons_origin = app->labels[app->loading];
    cvx_value_t *rec;
    if (cvx_json_parse(app->arena, json, len, &rec, err)) {
        cvx_err_prefix(err, "cron record is not valid JSON");
        err->code = CVX_E_BAD_MODULE;
        return CVX_E_BAD_MODULE;
    }
    const cvx_value_t *crons = rec->type == CVX_T_OBJECT ? cvx_obj_get_cstr(rec, "crons") : NULL;
    if (!crons || crons->type != CVX_T_ARRAY) return cvx_err_set(err, CVX_E_BAD_MODULE, "cron record lacks a \"crons\" array");
    app->crons = cvx_arena_alloc(app->arena, (crons->u.arr.len + 1) * sizeof *app->crons);
    if (!app->crons) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < crons->u.arr.len; i++) {
        const cvx_value_t *c = crons->u.arr.items[i];
        cvx_cron_t *cr = &app->crons[app->ncrons];
        memset(cr, 0, sizeof *cr);
        cr->name = c->type == CVX_T_OBJECT ? str_field(c, "name") : NULL;
        cr->path = cr->name ? str_field(c, "path") : NULL;
        const cvx_value_t *args = cr->path ? cvx_obj_get_cstr(c, "args") : NULL;
        const cvx_value_t *sched = cr->path ? cvx_obj_get_cstr(c, "schedule") : NULL;
        if (!cr->name || !cr->path || !strchr(cr->path, ':') || (args && args->type != CVX_T_OBJECT) || !sched ||
            sched->type != CVX_T_OBJECT)
            return cvx_err_set(err, CVX_E_BAD_MODULE, "cron %zu needs \"name\", \"path\" (module:function) and \"schedule\"", i);
        cvx_buf_t a = {0};
        if (args) cvx_json_write(&a, args);
        else cvx_buf_append_str(&a, "{}");
        cr->args_json = a.data ? cvx_arena_strndup(app->arena, a.data, a.len) : NULL;
        cvx_buf_free(&a);
        if (!cr->args_json) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        const cvx_value_t *every = cvx_obj_get_cstr(sched, "every");
        const cvx_value_t *ms = every && every->type == CVX_T_OBJECT ? cvx_obj_get_cstr(every, "ms") : NULL;
        if (ms && ms->type == CVX_T_FLOAT64 && ms->u.f >= 1 && ms->u.f <= 1e13) {
            cr->every_ms = (uint64_t)ms->u.f;
        } else {
            cr->cron = str_field(sched, "cron");
            if (!cr->cron) return cvx_err_set(err, CVX_E_BAD_MODULE, "cron \"%s\" has no valid schedule", cr->name);
            cvx_cron_spec_t spec;
            if (cvx_cron_parse(cr->cron, &spec, err)) {
                cvx_err_prefix(err, "cron \"%s\"", cr->name);
                err->code = CVX_E_BAD_MODULE;
                return CVX_E_BAD_MODULE;
            }
        }
        for (size_t k = 0; k < app->ncrons; k++)
            if (!strcmp(app->crons[k].name, cr->name))
                return cvx_err_set(err, CVX_E_BAD_MODULE, "two crons are named \"%s\"", cr->name);
        app->ncrons++;
    }
    return CVX_OK;
}

static int cmp_fn(const void *a, const void *b) {
    return strcmp(((const cvx_fn_t *)a)->path, ((const cvx_fn_t *)b)->path);
}

static int build_metadata_json(cvx_app_t *app, cvx_err_t *err) {
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "{\"functions\":[");
    for (size_t i = 0; i < app->nfns; i++) {
        if (i) cvx_buf_append_char(&b, ',');
        cvx_buf_append_str(&b, app->fns[i].meta_json);
    }
    cvx_buf_append_str(&b, "],\"schema\":");
    if (app->schema) cvx_json_write(&b, app->schema);
    else cvx_buf_append_str(&b, "null");
    cvx_buf_printf(&b, ",\"hash\":\"%s\"}", app->hash);
    if (b.oom) {
        cvx_buf_free(&b);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    app->metadata_json = cvx_buf_detach(&b, NULL);
    return CVX_OK;
}

/* Where a function comes from, for messages: its file, else its module. */
static const char *origin(const cvx_fn_t *f) { return f->file ? f->file : f->origin; }

/* A JavaScript module's source map (one cvx.js.sourcemap section of raw
 * JSON); a malformed one is a bad module, not a silent loss of lines. */
static int load_sourcemap(cvx_app_t *app, cvx_err_t *err) {
    const cvx_custom_section_t *secs;
    size_t n = cvx_module_custom_sections(app->modules[app->loading], &secs);
    for (size_t i = 0; i < n; i++) {
        if (secs[i].name_len != 16 || memcmp(secs[i].name, "cvx.js.sourcemap", 16) != 0) continue;
        if (app->maps[app->loading]) return cvx_err_set(err, CVX_E_BAD_MODULE, "module has two source maps");
        if (cvx_sourcemap_parse((const char *)secs[i].data, secs[i].len, &app->maps[app->loading], err)) {
            cvx_err_prefix(err, "%s", app->labels[app->loading]);
            return err->code = CVX_E_BAD_MODULE;
        }
    }
    return CVX_OK;
}

/* Reads each module's records into the app. */
static int analyse(cvx_app_t *app, cvx_err_t *err) {
    size_t count = 0;
    int rc = CVX_OK;
    for (app->loading = 0; app->loading < app->nmodules && !rc; app->loading++) rc = load_sourcemap(app, err);
    for (app->loading = 0; app->loading < app->nmodules && !rc; app->loading++) {
        size_t before = count;
        rc = each_record(app, "cvx.fn", count_fn, &count, err);
        if (!rc && count == before)
            rc = cvx_err_set(err, CVX_E_BAD_MODULE,
                             "%s has no cvx.fn metadata section: it declares no functions (was it built with "
                             "convex_sdk and does it use #[query] / #[mutation] / #[action]?)",
                             app->labels[app->loading]);
    }
    if (!rc) {
        app->fns = cvx_arena_alloc(app->arena, count * sizeof *app->fns);
        if (!app->fns) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    size_t ignored = 0;
    for (app->loading = 0; app->loading < app->nmodules && !rc; app->loading++) {
        rc = each_record(app, "cvx.fn", parse_fn, &ignored, err);
        if (!rc) rc = each_record(app, "cvx.schema", parse_schema, &ignored, err);
        if (!rc) rc = each_record(app, "cvx.crons", parse_crons, &ignored, err);
        if (!rc) rc = each_record(app, "cvx.auth", parse_auth, &ignored, err);
    }
    if (!rc) {
        qsort(app->fns, app->nfns, sizeof *app->fns, cmp_fn);
        for (size_t i = 1; i < app->nfns && !rc; i++) {
            const cvx_fn_t *a = &app->fns[i - 1], *b = &app->fns[i];
            if (strcmp(a->path, b->path) != 0) continue;
            if (a->wasm != b->wasm)
                rc = cvx_err_set(err, CVX_E_BAD_MODULE, "function %s is defined twice: in %s and in %s; rename one",
                                 a->path, origin(a), origin(b));
            else rc = cvx_err_set(err, CVX_E_BAD_MODULE, "two functions are both named %s", a->path);
        }
    }
    return rc;
}

int cvx_app_load_modules(cvx_engine_t *e, const cvx_app_source_t *srcs, size_t n, cvx_app_t **out, cvx_err_t *err) {
    *out = NULL;
    if (n == 0 || n > CVX_APP_MAX_MODULES)
        return cvx_err_set(err, CVX_E_BAD_MODULE, "an app has 1 to %d modules, not %zu", CVX_APP_MAX_MODULES, n);
    int rc = CVX_OK;
    for (size_t i = 0; i < n && !rc; i++) rc = check_abi_version(srcs[i].wasm, srcs[i].len, err);
    if (rc) return rc;
    cvx_app_t *app = cvx_calloc(1, sizeof *app);
    if (!app) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    atomic_init(&app->refs, 1);
    app->arena = cvx_arena_new(16384);
    if (!app->arena) {
        cvx_free(app);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    cvx_buf_t hashes = {0};
    for (size_t i = 0; i < n && !rc; i++) {
        rc = cvx_module_load_hashed(e, srcs[i].wasm, srcs[i].len, srcs[i].sha256_hex, &app->modules[i], err);
        if (rc) break;
        app->nmodules++;
        app->labels[i] = cvx_arena_strndup(app->arena, srcs[i].label ? srcs[i].label : "the module",
                                           strlen(srcs[i].label ? srcs[i].label : "the module"));
        if (!app->labels[i]) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        cvx_buf_append_str(&hashes, cvx_module_hash(app->modules[i]));
    }
    /* One module's app is named by that module's hash, as before apps had
     * several; several modules' by the hash of their hashes. */
    if (!rc && n == 1) memcpy(app->hash, cvx_module_hash(app->modules[0]), 65);
    else if (!rc) {
        uint8_t digest[32];
        cvx_sha256(hashes.data, hashes.len, digest);
        cvx_hex(digest, 32, app->hash);
    }
    cvx_buf_free(&hashes);
    if (!rc) rc = analyse(app, err);
    if (!rc) rc = build_metadata_json(app, err);
    if (rc) {
        cvx_app_release(app);
        return rc;
    }
    *out = app;
    return CVX_OK;
}

int cvx_app_load(cvx_engine_t *e, const uint8_t *wasm, size_t len, cvx_app_t **out, cvx_err_t *err) {
    return cvx_app_load_hashed(e, wasm, len, NULL, out, err);
}

int cvx_app_load_hashed(cvx_engine_t *e, const uint8_t *wasm, size_t len, const char *sha256_hex, cvx_app_t **out,
                        cvx_err_t *err) {
    cvx_app_source_t src = {wasm, len, sha256_hex, "the module"};
    return cvx_app_load_modules(e, &src, 1, out, err);
}

void cvx_app_retain(cvx_app_t *app) { atomic_fetch_add(&app->refs, 1); }

void cvx_app_release(cvx_app_t *app) {
    if (!app || atomic_fetch_sub(&app->refs, 1) != 1) return;
    for (size_t i = 0; i < app->nmodules; i++) {
        cvx_module_release(app->modules[i]);
        cvx_sourcemap_free(app->maps[i]);
    }
    cvx_arena_free(app->arena);
    cvx_free(app->metadata_json);
    cvx_free(app);
}

size_t cvx_app_functions(const cvx_app_t *app, const cvx_fn_t **out) {
    *out = app->fns;
    return app->nfns;
}

const cvx_fn_t *cvx_app_find(const cvx_app_t *app, const char *path, size_t len) {
    char buf[512];
    if (len == 0 || len + sizeof ":default" > sizeof buf) return NULL;
    memcpy(buf, path, len);
    buf[len] = '\0';
    if (!memchr(path, ':', len)) memcpy(buf + len, ":default", sizeof ":default");
    /* Clients may send "users.js:get" style names for JS modules; strip a
     * trailing ".js" from the module part to match. */
    char *colon = strchr(buf, ':');
    if (colon - buf > 3 && memcmp(colon - 3, ".js", 3) == 0) memmove(colon - 3, colon, strlen(colon) + 1);
    size_t lo = 0, hi = app->nfns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(app->fns[mid].path, buf);
        if (c == 0) return &app->fns[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const cvx_value_t *cvx_app_schema(const cvx_app_t *app) { return app->schema; }
bool cvx_app_schema_validation(const cvx_app_t *app) { return app->schema && app->schema_validation; }

const cvx_fn_t *cvx_app_find_http(const cvx_app_t *app, const char *method, const char *path) {
    const cvx_fn_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < app->nfns; i++) {
        const cvx_fn_t *f = &app->fns[i];
        if (!f->http || strcmp(f->http_method, method) != 0) continue;
        size_t n = strlen(f->http_route);
        bool prefix = f->http_route[n - 1] == '/';
        bool match = prefix ? strncmp(path, f->http_route, n) == 0 : strcmp(path, f->http_route) == 0;
        /* Exact routes win over prefixes; the longest prefix wins. */
        if (match && (!best || (!prefix && best->http_route[best_len - 1] == '/') || n > best_len)) {
            best = f;
            best_len = n;
        }
    }
    return best;
}

const char *cvx_app_auth(const cvx_app_t *app, size_t *len) {
    *len = app->auth_len;
    return app->auth;
}

size_t cvx_app_crons(const cvx_app_t *app, const cvx_cron_t **out) {
    *out = app->crons;
    return app->ncrons;
}

size_t cvx_app_tables(const cvx_app_t *app, const cvx_table_def_t **out) {
    *out = app->tables;
    return app->ntables;
}

size_t cvx_app_modules(const cvx_app_t *app, cvx_module_t *const **out) {
    *out = app->modules;
    return app->nmodules;
}

const char *cvx_app_metadata_json(const cvx_app_t *app) { return app->metadata_json; }
const char *cvx_app_hash(const cvx_app_t *app) { return app->hash; }
