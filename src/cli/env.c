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

static bool blank(char ch) { return ch == ' ' || ch == '\t'; }

/* The value after '=' as dotenv reads it: quoted ('...' as is, "..." with
 * \n, \r, \t, \" and \\ expanded), or bare up to a " #" comment; trailing
 * blanks dropped. Appends it to out; false when a quote is not closed. */
static bool dotenv_value(const char *v, cvx_buf_t *out) {
    while (blank(*v)) v++;
    if (*v == '"' || *v == '\'') {
        char q = *v++;
        for (; *v && *v != q; v++) {
            if (q == '"' && *v == '\\' && v[1]) {
                v++;
                cvx_buf_append_char(out, *v == 'n' ? '\n' : *v == 'r' ? '\r' : *v == 't' ? '\t' : *v);
            } else {
                cvx_buf_append_char(out, *v);
            }
        }
        return *v == q; /* what follows the closing quote (a comment) is ignored */
    }
    size_t n = 0;
    while (v[n] && !(v[n] == '#' && (n == 0 || blank(v[n - 1])))) n++;
    while (n && blank(v[n - 1])) n--;
    cvx_buf_append(out, v, n);
    return true;
}

/* NAME=VALUE lines of a .env file as changes; the line number of the first
 * bad line in the error. */
static int parse_dotenv(const char *path, cvx_buf_t *changes, size_t *count, cvx_err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f) return cvx_err_set(err, CVX_E_IO, "cannot read %s", path);
    char line[16384];
    int rc = CVX_OK;
    for (int no = 1; rc == CVX_OK && fgets(line, sizeof line, f); no++) {
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "%s:%d: the line is longer than 16 KiB", path, no);
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char *p = line;
        if (no == 1 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
            p += 3; /* a UTF-8 byte order mark */
        while (blank(*p)) p++;
        if (*p == '#' || *p == '\0') continue;
        if (strncmp(p, "export", 6) == 0 && blank(p[6]))
            for (p += 6; blank(*p);) p++;
        char *eq = strchr(p, '=');
        if (!eq) {
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "%s:%d: expected NAME=VALUE", path, no);
            break;
        }
        char *name_end = eq;
        while (name_end > p && blank(name_end[-1])) name_end--;
        rc = cvx_abi_env_check_name(p, (size_t)(name_end - p), err);
        if (rc) {
            cvx_err_prefix(err, "%s:%d", path, no);
            break;
        }
        cvx_buf_t value = {0};
        cvx_buf_append_str(&value, "");
        if (!dotenv_value(eq + 1, &value)) {
            rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "%s:%d: the value's quote is not closed", path, no);
        } else {
            add_change(changes, p, (size_t)(name_end - p), value.data, value.len);
            (*count)++;
        }
        cvx_buf_free(&value);
    }
    fclose(f);
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
