/* `cvx env`: a running server's environment variables (admin API,
 * /api/admin/env). Values are secrets: `list` prints names only unless
 * asked. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void env_usage(FILE *out) {
    fprintf(out,
            "usage: cvx env list [--values]\n"
            "       cvx env get NAME\n"
            "       cvx env set NAME VALUE\n"
            "       cvx env set --from-file FILE\n"
            "       cvx env remove NAME\n"
            "       (each with [--url URL] [--admin-key KEY])\n\n"
            "The deployment's environment variables, read in functions as process.env.NAME (TypeScript) or\n"
            "convex_sdk::env::var(\"NAME\") (Rust). They are kept with the deployment's data, across restarts\n"
            "and deploys; a change needs no redeploy and re-runs the subscriptions that read the variable.\n"
            "Names: up to 40 letters, digits and underscores, starting with a letter. Values: up to 8 KiB.\n"
            "At most 100 variables.\n\n"
            "  --from-file FILE  set every NAME=VALUE line of a .env file (# comments, blank lines, optional\n"
            "                    quotes and `export `), all in one change\n"
            "  --values          list values too (they are secrets: names only by default)\n"
            "  --url URL         the server (default $CVX_URL or http://127.0.0.1:3210)\n"
            "  --admin-key KEY   its admin key (or $CVX_ADMIN_KEY)\n\n"
            "Exit codes: 0 ok, 1 `get` of a variable that is not set, 2 usage, 4 unreachable, not authorized\n"
            "or refused.\n");
}

/* Appends {"name": ..., "value": ...} (value NULL: null, a removal). */
static void add_change(cvx_buf_t *b, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (b->len > 12) cvx_buf_append_char(b, ',');
    cvx_buf_append_str(b, "{\"name\":");
    cvx_buf_append_json_string(b, name, nlen);
    cvx_buf_append_str(b, ",\"value\":");
    if (value) cvx_buf_append_json_string(b, value, vlen);
    else cvx_buf_append_str(b, "null");
    cvx_buf_append_char(b, '}');
}

typedef struct {
    cvx_buf_t *changes;
    size_t count;
} dotenv_ctx_t;

static int dotenv_var(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen, int line,
                      cvx_err_t *err) {
    dotenv_ctx_t *d = ctx;
    int rc = cvx_abi_env_check_name(name, nlen, err);
    if (rc) return cvx_err_prefix(err, "line %d", line), rc;
    add_change(d->changes, name, nlen, value, vlen);
    d->count++;
    return CVX_OK;
}

/* The NAME=VALUE lines of a .env file (util's dotenv.c) as changes; the
 * file and line of the first bad line in the error. */
static int parse_dotenv(const char *path, cvx_buf_t *changes, size_t *count, cvx_err_t *err) {
    cvx_buf_t text = {0};
    int rc = cvx_read_file(path, &text, err);
    if (!rc && text.len > (4u << 20))
        rc = cvx_err_set(err, CVX_E_LIMIT, "%s is %zu bytes; 100 variables of 8 KiB fit in far less", path, text.len);
    dotenv_ctx_t d = {changes, 0};
    if (!rc) rc = cvx_dotenv_parse(text.data ? text.data : "", text.len, dotenv_var, &d, err);
    if (rc && rc != CVX_E_IO) cvx_err_prefix(err, "%s", path);
    *count = d.count;
    cvx_buf_free(&text);
    return rc;
}

/* Prints the variables of a {name: value} object: names, or NAME=VALUE. */
static void print_vars(const char *json, bool values) {
    cvx_arena_t *a = cvx_arena_new(1 << 14);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (a && cvx_json_parse(a, json, strlen(json), &v, &err) == CVX_OK && v->type == CVX_T_OBJECT) {
        if (v->u.obj.len == 0) fprintf(stderr, "(no environment variables)\n");
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const cvx_value_t *val = v->u.obj.fields[i].value;
            if (values && val->type == CVX_T_STRING) printf("%s=%s\n", v->u.obj.fields[i].name, val->u.str.ptr);
            else printf("%s\n", v->u.obj.fields[i].name);
        }
    }
    cvx_arena_free(a);
}

static int run_env(const cvx_args_t *cl) {
    const char *sub = cl->npos ? cl->pos[0] : "list";
    const char *from = cvx_arg(cl, "from-file");
    bool list = strcmp(sub, "list") == 0, get = strcmp(sub, "get") == 0, set = strcmp(sub, "set") == 0,
         remove = strcmp(sub, "remove") == 0;
    size_t want = list ? (cl->npos ? 1 : 0) : get || remove ? 2 : set && from ? 1 : 3;
    if (!(list || get || set || remove) || cl->npos != want || (from && !set)) {
        env_usage(stderr);
        return CVX_EXIT_USAGE;
    }
    cvx_err_t err;
    cvx_buf_t changes = {0};
    size_t count = 0;
    cvx_buf_append_str(&changes, "{\"changes\":[");
    int rc = CVX_OK;
    if (set && from) rc = parse_dotenv(from, &changes, &count, &err);
    else if (set || remove) {
        const char *name = cl->pos[1], *value = set ? cl->pos[2] : NULL;
        rc = cvx_abi_env_check_name(name, strlen(name), &err);
        if (!rc) add_change(&changes, name, strlen(name), value, value ? strlen(value) : 0), count = 1;
    }
    cvx_buf_append_str(&changes, "]}");
    if (rc) {
        fprintf(stderr, "cvx env: %s\n", err.msg);
        cvx_buf_free(&changes);
        return CVX_EXIT_USAGE;
    }
    char keybuf[256];
    const char *key = cvx_cli_admin_key(cvx_arg(cl, "admin-key"), NULL, keybuf, sizeof keybuf);
    cvx_buf_t url = {0}, out = {0};
    cvx_buf_printf(&url, "%s/api/admin/env", cvx_cli_url(cl));
    long status = 0;
    bool post = set || remove;
    rc = cvx_cli_http(post ? "POST" : "GET", url.data, key, post ? changes.data : NULL, post ? changes.len : 0,
                      post ? "application/json" : NULL, &out, &status, &err);
    if (!rc && status != 200) rc = cvx_err_set(&err, CVX_E_AUTH, "HTTP %ld: %s", status, out.data ? out.data : "");
    cvx_buf_free(&url);
    cvx_buf_free(&changes);
    if (rc) {
        fprintf(stderr, "cvx env: %s\n", err.msg);
        cvx_buf_free(&out);
        return CVX_EXIT_SYSTEM;
    }
    int exit = CVX_EXIT_OK;
    if (list) print_vars(out.data ? out.data : "{}", cvx_arg(cl, "values") != NULL);
    else if (get) {
        cvx_arena_t *a = cvx_arena_new(1 << 14);
        cvx_value_t *v = NULL;
        const cvx_value_t *val = NULL;
        if (a && cvx_json_parse(a, out.data ? out.data : "{}", out.len ? out.len : 2, &v, &err) == CVX_OK &&
            v->type == CVX_T_OBJECT)
            val = cvx_obj_get_cstr(v, cl->pos[1]);
        if (val && val->type == CVX_T_STRING) printf("%s\n", val->u.str.ptr);
        else {
            fprintf(stderr, "cvx env: %s is not set\n", cl->pos[1]);
            exit = CVX_EXIT_FUNCTION;
        }
        cvx_arena_free(a);
    } else if (set) {
        fprintf(stderr, "cvx env: set %zu variable%s\n", count, count == 1 ? "" : "s");
    } else {
        fprintf(stderr, "cvx env: removed %s\n", cl->pos[1]);
    }
    cvx_buf_free(&out);
    return exit;
}

const cvx_command_t cvx_cmd_env = {
    .name = "env",
    .summary = "list, get, set or remove a server's environment variables",
    .options = "url= admin-key= from-file= values",
    .max_pos = 3,
    .usage = env_usage,
    .run = run_env,
};
