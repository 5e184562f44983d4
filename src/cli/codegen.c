/* `cvx codegen`: writes convex/_generated for a web app, as Convex's own
 * codegen does, so `api.users.get_user` is a typed FunctionReference from
 * the unmodified `convex` package and `tsc` checks the app.
 *
 * Rust functions are typed from their metadata (docs/abi.md §4). TypeScript
 * modules are typed by TypeScript itself: api.d.ts imports each module's
 * type (ApiFromModules), server.d.ts gives the builders the app's data
 * model, and dataModel.d.ts derives that from convex/schema.ts. In a mixed
 * app the two halves are one `api` object: `api.users.list` may be a
 * TypeScript query beside the Rust `api.users.create`. The module path
 * "admin/users" becomes api.admin.users; Rust names are kept as written. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool ident_ok(const char *s, size_t n) {
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$')) return false;
    }
    return true;
}

static void key(cvx_buf_t *out, const char *s, size_t n) {
    if (ident_ok(s, n)) cvx_buf_append(out, s, n);
    else cvx_buf_append_json_string(out, s, n);
}

/* TypeScript for a type descriptor. */
void cvx_ts_type(const cvx_value_t *t, cvx_buf_t *out) {
    const cvx_value_t *tag = t && t->type == CVX_T_OBJECT ? cvx_obj_get_cstr(t, "type") : NULL;
    const char *k = tag && tag->type == CVX_T_STRING ? tag->u.str.ptr : "any";
    if (!strcmp(k, "string") || !strcmp(k, "id")) cvx_buf_append_str(out, "string");
    else if (!strcmp(k, "float64")) cvx_buf_append_str(out, "number");
    else if (!strcmp(k, "int64")) cvx_buf_append_str(out, "bigint");
    else if (!strcmp(k, "boolean")) cvx_buf_append_str(out, "boolean");
    else if (!strcmp(k, "bytes")) cvx_buf_append_str(out, "ArrayBuffer");
    else if (!strcmp(k, "null")) cvx_buf_append_str(out, "null");
    else if (!strcmp(k, "document")) cvx_buf_append_str(out, "{ _id: string; _creationTime: number; [field: string]: any }");
    else if (!strcmp(k, "array")) {
        cvx_buf_append_str(out, "Array<");
        cvx_ts_type(cvx_obj_get_cstr(t, "items"), out);
        cvx_buf_append_char(out, '>');
    } else if (!strcmp(k, "optional")) {
        cvx_ts_type(cvx_obj_get_cstr(t, "inner"), out);
        cvx_buf_append_str(out, " | null");
    } else if (!strcmp(k, "record")) {
        cvx_buf_append_str(out, "Record<string, ");
        cvx_ts_type(cvx_obj_get_cstr(t, "values"), out);
        cvx_buf_append_char(out, '>');
    } else if (!strcmp(k, "object")) {
        const cvx_value_t *f = cvx_obj_get_cstr(t, "fields");
        cvx_buf_append_str(out, "{ ");
        for (size_t i = 0; f && f->type == CVX_T_OBJECT && i < f->u.obj.len; i++) {
            const cvx_field_t *fd = &f->u.obj.fields[i];
            const cvx_value_t *ft = cvx_obj_get_cstr(fd->value, "type");
            bool opt = ft && ft->type == CVX_T_STRING && !strcmp(ft->u.str.ptr, "optional");
            key(out, fd->name, fd->name_len);
            cvx_buf_append_str(out, opt ? "?: " : ": ");
            cvx_ts_type(fd->value, out);
            cvx_buf_append_str(out, "; ");
        }
        cvx_buf_append_char(out, '}');
    } else if (!strcmp(k, "union")) {
        const cvx_value_t *v = cvx_obj_get_cstr(t, "variants");
        for (size_t i = 0; v && v->type == CVX_T_ARRAY && i < v->u.arr.len; i++) {
            if (i) cvx_buf_append_str(out, " | ");
            cvx_ts_type(v->u.arr.items[i], out);
        }
        if (!v || v->type != CVX_T_ARRAY || v->u.arr.len == 0) cvx_buf_append_str(out, "never");
    } else if (!strcmp(k, "literal")) {
        const cvx_value_t *v = cvx_obj_get_cstr(t, "value");
        if (v && (v->type == CVX_T_STRING || v->type == CVX_T_BOOL || v->type == CVX_T_FLOAT64)) cvx_json_write(out, v);
        else cvx_buf_append_str(out, "any");
    } else {
        cvx_buf_append_str(out, "any");
    }
}

/* One node of the module tree: "admin/users" is admin -> users. */
typedef struct node {
    char *name;
    struct node *children;
    size_t nchildren;
    const cvx_value_t **fns; /* function records ending here */
    size_t nfns;
} node_t;

static node_t *child(node_t *n, const char *name, size_t len) {
    for (size_t i = 0; i < n->nchildren; i++)
        if (strlen(n->children[i].name) == len && !memcmp(n->children[i].name, name, len)) return &n->children[i];
    node_t *c = cvx_realloc(n->children, (n->nchildren + 1) * sizeof *c);
    if (!c) return NULL;
    n->children = c;
    memset(&c[n->nchildren], 0, sizeof *c);
    c[n->nchildren].name = cvx_strndup(name, len);
    return &c[n->nchildren++];
}

static void node_free(node_t *n) {
    for (size_t i = 0; i < n->nchildren; i++) node_free(&n->children[i]);
    cvx_free(n->children);
    cvx_free(n->fns);
    cvx_free(n->name);
}

static void indent(cvx_buf_t *out, int depth) {
    for (int i = 0; i < depth; i++) cvx_buf_append_str(out, "  ");
}

static void emit(const node_t *n, cvx_buf_t *out, int depth) {
    for (size_t i = 0; i < n->nchildren; i++) {
        indent(out, depth);
        key(out, n->children[i].name, strlen(n->children[i].name));
        cvx_buf_append_str(out, ": {\n");
        emit(&n->children[i], out, depth + 1);
        indent(out, depth);
        cvx_buf_append_str(out, "};\n");
    }
    for (size_t i = 0; i < n->nfns; i++) {
        const cvx_value_t *f = n->fns[i];
        const cvx_value_t *path = cvx_obj_get_cstr(f, "path");
        const char *colon = strchr(path->u.str.ptr, ':');
        const cvx_value_t *kind = cvx_obj_get_cstr(f, "kind");
        const cvx_value_t *vis = cvx_obj_get_cstr(f, "visibility");
        const cvx_value_t *file = cvx_obj_get_cstr(f, "file");
        const cvx_value_t *line = cvx_obj_get_cstr(f, "line");
        indent(out, depth);
        cvx_buf_printf(out, "/** `%s` (%s:%.0f) */\n", path->u.str.ptr,
                       file && file->type == CVX_T_STRING ? file->u.str.ptr : "?",
                       line && line->type == CVX_T_FLOAT64 ? line->u.f : 0.0);
        indent(out, depth);
        key(out, colon + 1, strlen(colon + 1));
        cvx_buf_printf(out, ": FunctionReference<\"%s\", \"%s\", { ", kind->u.str.ptr,
                       vis && vis->type == CVX_T_STRING ? vis->u.str.ptr : "public");
        const cvx_value_t *args = cvx_obj_get_cstr(f, "args");
        for (size_t a = 0; args && args->type == CVX_T_ARRAY && a < args->u.arr.len; a++) {
            const cvx_value_t *arg = args->u.arr.items[a];
            const cvx_value_t *name = cvx_obj_get_cstr(arg, "name");
            const cvx_value_t *type = cvx_obj_get_cstr(arg, "type");
            const cvx_value_t *tag = type ? cvx_obj_get_cstr(type, "type") : NULL;
            bool opt = tag && tag->type == CVX_T_STRING && !strcmp(tag->u.str.ptr, "optional");
            if (!name || name->type != CVX_T_STRING) continue;
            key(out, name->u.str.ptr, name->u.str.len);
            cvx_buf_append_str(out, opt ? "?: " : ": ");
            cvx_ts_type(type, out);
            cvx_buf_append_str(out, "; ");
        }
        cvx_buf_append_str(out, "}, ");
        cvx_ts_type(cvx_obj_get_cstr(f, "returns"), out);
        cvx_buf_append_str(out, ">;\n");
    }
}

static int write_file(const char *dir, const char *name, const cvx_buf_t *b, cvx_err_t *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* Unchanged files are left alone so watchers (vite) do not reload. */
    cvx_buf_t old = {0};
    cvx_err_t ignored;
    if (cvx_read_file(path, &old, &ignored) == CVX_OK && old.len == b->len && memcmp(old.data, b->data, b->len) == 0) {
        cvx_buf_free(&old);
        return CVX_OK;
    }
    cvx_buf_free(&old);
    return cvx_write_file_atomic(path, b->data, b->len, err);
}

#define HEADER "/* eslint-disable */\n// Generated by `cvx codegen`. Do not edit.\n"

/* An identifier for a module path, as Convex's codegen makes them:
 * "admin/users" -> admin_users; reserved words get a trailing '_'. */
static void module_ident(const char *path, cvx_buf_t *out) {
    static const char *const reserved[] = {
        "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else",
        "export", "extends", "false", "finally", "for", "function", "if", "import", "in", "instanceof", "new",
        "null", "return", "super", "switch", "this", "throw", "true", "try", "typeof", "var", "void", "while",
        "with", "let", "static", "yield", "await", "enum", "implements", "interface", "package", "private",
        "protected", "public", "fullApi", "api", "internal", "components", "rustApi", "rustInternal"};
    size_t start = out->len;
    for (const char *c = path; *c; c++) cvx_buf_append_char(out, *c == '/' || *c == '-' || *c == '.' ? '_' : *c);
    for (size_t i = 0; i < CVX_ARRAY_LEN(reserved); i++)
        if (!strcmp(out->data + start, reserved[i])) cvx_buf_append_char(out, '_');
}

static bool has_schema(const cvx_project_t *p) {
    for (size_t i = 0; i < p->nmodules; i++) {
        cvx_buf_t mp = {0};
        cvx_module_path(p->modules[i], &mp);
        bool yes = !strcmp(mp.data, "schema");
        cvx_buf_free(&mp);
        if (yes) return true;
    }
    return false;
}

int cvx_codegen_server(const cvx_project_t *p, const char *dir, cvx_err_t *err) {
    int rc = cvx_mkdirs(dir, err);
    if (rc) return rc;
    static const char server_js[] =
        HEADER "import {\n  actionGeneric,\n  httpActionGeneric,\n  internalActionGeneric,\n  internalMutationGeneric,\n"
               "  internalQueryGeneric,\n  mutationGeneric,\n  queryGeneric,\n} from \"convex/server\";\n\n"
               "/** A query: reads the database, reactive, callable by clients. */\nexport const query = queryGeneric;\n"
               "/** A query only other functions may call. */\nexport const internalQuery = internalQueryGeneric;\n"
               "/** A mutation: reads and writes the database in one transaction. */\nexport const mutation = mutationGeneric;\n"
               "/** A mutation only other functions may call. */\nexport const internalMutation = internalMutationGeneric;\n"
               "/** An action: may call the outside world (fetch) and other functions. */\nexport const action = actionGeneric;\n"
               "/** An action only other functions may call. */\nexport const internalAction = internalActionGeneric;\n"
               "/** An HTTP action, routed in convex/http.ts. */\nexport const httpAction = httpActionGeneric;\n";
    static const char server_dts[] =
        HEADER "import {\n  ActionBuilder,\n  HttpActionBuilder,\n  MutationBuilder,\n  QueryBuilder,\n"
               "  GenericActionCtx,\n  GenericMutationCtx,\n  GenericQueryCtx,\n  GenericDatabaseReader,\n"
               "  GenericDatabaseWriter,\n} from \"convex/server\";\nimport type { DataModel } from \"./dataModel.js\";\n\n"
               "export declare const query: QueryBuilder<DataModel, \"public\">;\n"
               "export declare const internalQuery: QueryBuilder<DataModel, \"internal\">;\n"
               "export declare const mutation: MutationBuilder<DataModel, \"public\">;\n"
               "export declare const internalMutation: MutationBuilder<DataModel, \"internal\">;\n"
               "export declare const action: ActionBuilder<DataModel, \"public\">;\n"
               "export declare const internalAction: ActionBuilder<DataModel, \"internal\">;\n"
               "export declare const httpAction: HttpActionBuilder;\n\n"
               "export type QueryCtx = GenericQueryCtx<DataModel>;\n"
               "export type MutationCtx = GenericMutationCtx<DataModel>;\n"
               "export type ActionCtx = GenericActionCtx<DataModel>;\n"
               "export type DatabaseReader = GenericDatabaseReader<DataModel>;\n"
               "export type DatabaseWriter = GenericDatabaseWriter<DataModel>;\n";
    static const char model_schema[] =
        HEADER "import type {\n  DataModelFromSchemaDefinition,\n  DocumentByName,\n  TableNamesInDataModel,\n"
               "  SystemTableNames,\n} from \"convex/server\";\nimport type { GenericId } from \"convex/values\";\n"
               "import schema from \"../schema.js\";\n\n"
               "/** The names of the app's tables. */\nexport type TableNames = TableNamesInDataModel<DataModel>;\n"
               "/** A document of a table, as stored. */\n"
               "export type Doc<TableName extends TableNames> = DocumentByName<DataModel, TableName>;\n"
               "/** The id of a document of a table. */\n"
               "export type Id<TableName extends TableNames | SystemTableNames> = GenericId<TableName>;\n"
               "/** The app's data model, from convex/schema.ts. */\n"
               "export type DataModel = DataModelFromSchemaDefinition<typeof schema>;\n";
    static const char model_any[] =
        HEADER "import type { AnyDataModel } from \"convex/server\";\nimport type { GenericId } from \"convex/values\";\n\n"
               "/** No convex/schema.ts: any table, any document. */\nexport type TableNames = string;\n"
               "export type Doc = any;\nexport type Id<TableName extends TableNames = TableNames> = GenericId<TableName>;\n"
               "export type DataModel = AnyDataModel;\n";
    static const char api_js[] = HEADER "import { anyApi } from \"convex/server\";\n\n"
                                        "/** References to the public functions, e.g. `api.users.list`. */\n"
                                        "export const api = anyApi;\n"
                                        "/** References to the internal functions (callable from other functions only). */\n"
                                        "export const internal = anyApi;\n";
    const struct {
        const char *name, *text;
    } files[] = {{"server.js", server_js},
                 {"server.d.ts", server_dts},
                 {"dataModel.d.ts", has_schema(p) ? model_schema : model_any},
                 {"api.js", api_js}};
    for (size_t i = 0; i < CVX_ARRAY_LEN(files) && !rc; i++) {
        cvx_buf_t b = {0};
        cvx_buf_append_str(&b, files[i].text);
        rc = b.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : write_file(dir, files[i].name, &b, err);
        cvx_buf_free(&b);
    }
    return rc;
}

/* api.d.ts of an app with TypeScript modules: TypeScript types those from
 * their source; the Rust functions' types come from the metadata and are
 * merged in (an intersection, so one module may hold both). */
static void emit_ts_api(const cvx_project_t *p, const node_t *rust_pub, const node_t *rust_int, cvx_buf_t *dts) {
    cvx_buf_append_str(dts, HEADER "import type { ApiFromModules, FilterApi, FunctionReference } from \"convex/server\";\n");
    for (size_t i = 0; i < p->nmodules; i++) {
        cvx_buf_t mp = {0};
        cvx_module_path(p->modules[i], &mp);
        if (strcmp(mp.data, "schema") != 0) {
            cvx_buf_append_str(dts, "import type * as ");
            module_ident(mp.data, dts);
            cvx_buf_printf(dts, " from \"../%s.js\";\n", mp.data);
        }
        cvx_buf_free(&mp);
    }
    cvx_buf_append_str(dts, "\ndeclare const fullApi: ApiFromModules<{\n");
    for (size_t i = 0; i < p->nmodules; i++) {
        cvx_buf_t mp = {0};
        cvx_module_path(p->modules[i], &mp);
        if (strcmp(mp.data, "schema") != 0) {
            cvx_buf_append_str(dts, "  ");
            cvx_buf_append_json_string(dts, mp.data, mp.len);
            cvx_buf_append_str(dts, ": typeof ");
            module_ident(mp.data, dts);
            cvx_buf_append_str(dts, ";\n");
        }
        cvx_buf_free(&mp);
    }
    cvx_buf_append_str(dts, "}>;\n\n/** The Rust crate's functions. */\ndeclare const rustApi: {\n");
    emit(rust_pub, dts, 1);
    cvx_buf_append_str(dts, "};\ndeclare const rustInternal: {\n");
    emit(rust_int, dts, 1);
    cvx_buf_append_str(dts, "};\n\n"
                            "/** References to the public functions, e.g. `api.users.list`. */\n"
                            "export declare const api: FilterApi<typeof fullApi, FunctionReference<any, \"public\">> & typeof rustApi;\n"
                            "/** References to the internal functions (callable from other functions only). */\n"
                            "export declare const internal: FilterApi<typeof fullApi, FunctionReference<any, \"internal\">> &\n"
                            "  typeof rustInternal;\n");
}

int cvx_codegen(const char *metadata_json, const char *out_dir, const cvx_project_t *p, cvx_err_t *err) {
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_value_t *meta = NULL;
    int rc = cvx_json_parse(a, metadata_json, strlen(metadata_json), &meta, err);
    const cvx_value_t *fns = rc ? NULL : cvx_obj_get_cstr(meta, "functions");
    if (!rc && (!fns || fns->type != CVX_T_ARRAY)) rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "metadata has no functions");
    node_t pub = {0}, internal = {0};
    for (size_t i = 0; !rc && i < fns->u.arr.len; i++) {
        const cvx_value_t *f = fns->u.arr.items[i];
        const cvx_value_t *path = cvx_obj_get_cstr(f, "path");
        const cvx_value_t *vis = cvx_obj_get_cstr(f, "visibility");
        const cvx_value_t *kind = cvx_obj_get_cstr(f, "kind");
        const cvx_value_t *exp = cvx_obj_get_cstr(f, "export");
        if (!path || path->type != CVX_T_STRING || !strchr(path->u.str.ptr, ':') || !kind || kind->type != CVX_T_STRING)
            continue;
        /* TypeScript functions are typed from their source; HTTP actions
         * are not callable by reference. */
        if ((p && p->nmodules && exp && exp->type == CVX_T_STRING && !strcmp(exp->u.str.ptr, "cvx_js_invoke")) ||
            !strcmp(kind->u.str.ptr, "httpAction"))
            continue;
        node_t *n = vis && vis->type == CVX_T_STRING && !strcmp(vis->u.str.ptr, "internal") ? &internal : &pub;
        const char *q = path->u.str.ptr, *colon = strchr(q, ':');
        while (n && q < colon) {
            const char *slash = memchr(q, '/', (size_t)(colon - q));
            const char *end = slash ? slash : colon;
            n = child(n, q, (size_t)(end - q));
            q = end + (slash ? 1 : 0);
            if (!slash) break;
        }
        if (!n) {
            rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            break;
        }
        const cvx_value_t **fs = cvx_realloc(n->fns, (n->nfns + 1) * sizeof *fs);
        if (!fs) {
            rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            break;
        }
        n->fns = fs;
        fs[n->nfns++] = f;
    }
    if (!rc) rc = cvx_mkdirs(out_dir, err);
    if (!rc && p && p->nmodules) {
        cvx_buf_t dts = {0};
        emit_ts_api(p, &pub, &internal, &dts);
        rc = dts.oom ? cvx_err_set(err, CVX_E_NOMEM, "out of memory") : cvx_codegen_server(p, out_dir, err);
        if (!rc) rc = write_file(out_dir, "api.d.ts", &dts, err);
        cvx_buf_free(&dts);
    } else if (!rc) {
        cvx_buf_t js = {0}, dts = {0};
        cvx_buf_append_str(&js, "/* eslint-disable */\n"
                                "// Generated by `cvx codegen` from the functions' metadata. Do not edit.\n"
                                "import { anyApi } from \"convex/server\";\n\n"
                                "/** References to the public functions, e.g. `api.users.get_user`. */\n"
                                "export const api = anyApi;\n"
                                "/** References to the internal functions (callable from other functions only). */\n"
                                "export const internal = anyApi;\n");
        cvx_buf_append_str(&dts, "/* eslint-disable */\n"
                                 "// Generated by `cvx codegen` from the functions' metadata. Do not edit.\n"
                                 "import type { FunctionReference } from \"convex/server\";\n\n"
                                 "export declare const api: {\n");
        emit(&pub, &dts, 1);
        cvx_buf_append_str(&dts, "};\n\nexport declare const internal: {\n");
        emit(&internal, &dts, 1);
        cvx_buf_append_str(&dts, "};\n");
        if (js.oom || dts.oom) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        if (!rc) rc = write_file(out_dir, "api.js", &js, err);
        if (!rc) rc = write_file(out_dir, "api.d.ts", &dts, err);
        cvx_buf_free(&js);
        cvx_buf_free(&dts);
    }
    node_free(&pub);
    node_free(&internal);
    cvx_arena_free(a);
    return rc;
}

static void codegen_usage(FILE *out) {
    fprintf(out,
            "usage: cvx codegen [DIR] [--out DIR] [--wasm FILE] [--url URL --admin-key KEY]\n\n"
            "Writes convex/_generated (api, server and dataModel, .js and .d.ts, as Convex's own codegen\n"
            "does) for the app in DIR (default: .), so TypeScript checks calls such as\n"
            "useQuery(api.users.list). Rust functions are typed from their metadata, TypeScript ones from\n"
            "their source. A Rust-only app without convex/ gets <crate>/_generated/api.{js,d.ts}.\n\n"
            "  --out DIR         where to write (default: convex/_generated)\n"
            "  --wasm FILE       read a Rust-only app's metadata from a built module instead of building\n"
            "  --url URL         read the metadata of the code deployed on a server (needs the admin key)\n"
            "  --admin-key KEY   (or $CVX_ADMIN_KEY)\n\n"
            "Exit codes: 0 written, 2 usage, 3 build error, 4 system error.\n");
}

static int run_codegen(const cvx_args_t *cl) {
    int rc = 0;
    const char *dir = cl->npos ? cl->pos[0] : ".";
    cvx_err_t err;
    cvx_project_t p;
    if (cvx_project_open(dir, &p, &err)) {
        fprintf(stderr, "cvx codegen: %s\n", err.msg);
        return CVX_EXIT_USAGE;
    }
    cvx_buf_t meta = {0}, bytes = {0};
    const char *out = cvx_arg(cl, "out") ? cvx_arg(cl, "out") : p.generated.data;
    int exit_code = CVX_EXIT_OK;
    const char *url = cvx_arg(cl, "url");
    if (url) {
        char keybuf[256];
        const char *k = cvx_cli_admin_key(cvx_arg(cl, "admin-key"), NULL, keybuf, sizeof keybuf);
        cvx_buf_t u = {0};
        long status = 0;
        cvx_buf_printf(&u, "%s/api/admin/functions", url);
        rc = cvx_cli_http("GET", u.data, k, NULL, 0, NULL, &meta, &status, &err);
        cvx_buf_free(&u);
        if (!rc && status != 200) rc = cvx_err_set(&err, CVX_E_AUTH, "server answered HTTP %ld: %s", status, meta.data ? meta.data : "");
        if (rc) exit_code = CVX_EXIT_SYSTEM;
    } else {
        cvx_engine_t *engine = NULL;
        cvx_app_t *app = NULL;
        cvx_build_opts_t bo = {.quiet = true, .release = true};
        if (cvx_arg(cl, "wasm")) rc = cvx_read_file(cvx_arg(cl, "wasm"), &p.rust, &err);
        else rc = cvx_project_build(&p, &bo, &err);
        if (!rc) rc = cvx_cli_engine(&engine, &err);
        if (!rc) rc = cvx_project_load(&p, engine, &app, NULL, &err);
        if (!rc) cvx_buf_append_str(&meta, cvx_app_metadata_json(app));
        if (rc) exit_code = err.code == CVX_E_IO || err.code == CVX_E_NOMEM ? CVX_EXIT_SYSTEM : CVX_EXIT_BUILD;
        cvx_app_release(app);
        cvx_engine_free(engine);
    }
    if (!rc) {
        rc = cvx_codegen(meta.data, out, &p, &err);
        if (rc) exit_code = CVX_EXIT_SYSTEM;
        else printf("wrote %s\n", out);
    }
    if (rc) fprintf(stderr, "cvx codegen: %s\n", err.msg);
    cvx_project_free(&p);
    cvx_buf_free(&meta);
    cvx_buf_free(&bytes);
    return exit_code;
}

const cvx_command_t cvx_cmd_codegen = {
    .name = "codegen",
    .summary = "write _generated/api.{js,d.ts} for a web app",
    .options = "out= wasm= url= admin-key=",
    .max_pos = 1,
    .usage = codegen_usage,
    .run = run_codegen,
};
