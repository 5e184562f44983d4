/* Helpers shared by the commands: option parsing, the cache directory and
 * the engine every command uses. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns 0, or prints an error and returns CVX_EXIT_USAGE. `help` is set
 * when -h/--help was given. */
static int parse_opts(int argc, char **argv, cvx_opt_t *opts, size_t nopts, const char **pos, size_t max_pos,
                      size_t *npos, bool *help) {
    *npos = 0;
    *help = false;
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (!only_positional && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            *help = true;
            continue;
        }
        /* "-" alone and negative numbers / JSON are positional. */
        if (!only_positional && a[0] == '-' && a[1] == '-' && a[2]) {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
            cvx_opt_t *o = NULL;
            for (size_t k = 0; k < nopts; k++)
                if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0) o = &opts[k];
            if (!o) {
                fprintf(stderr, "%s: unknown option '--%.*s' (try --help)\n", argv[0], (int)nlen, name);
                return CVX_EXIT_USAGE;
            }
            if (o->takes_value) {
                if (eq) o->value = eq + 1;
                else if (i + 1 < argc) o->value = argv[++i];
                else {
                    fprintf(stderr, "%s: option '--%s' needs a value\n", argv[0], o->name);
                    return CVX_EXIT_USAGE;
                }
            } else {
                if (eq) {
                    fprintf(stderr, "%s: option '--%s' takes no value\n", argv[0], o->name);
                    return CVX_EXIT_USAGE;
                }
                o->value = "1";
            }
            continue;
        }
        if (*npos >= max_pos) {
            fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", argv[0], a);
            return CVX_EXIT_USAGE;
        }
        pos[(*npos)++] = a;
    }
    return 0;
}

const char *cvx_arg(const cvx_args_t *cl, const char *name) {
    for (size_t k = 0; k < cl->nopts; k++)
        if (strcmp(cl->opts[k].name, name) == 0) return cl->opts[k].value;
    return NULL;
}

int cvx_command_main(const cvx_command_t *cmd, int argc, char **argv) {
    cvx_args_t cl = {.cmd = cmd->name};
    /* "name" is a flag, "name=" takes a value. */
    for (const char *p = cmd->options; *p;) {
        while (*p == ' ') p++;
        size_t n = strcspn(p, " ");
        if (!n) break;
        bool value = p[n - 1] == '=';
        if (cl.nopts == CVX_ARRAY_LEN(cl.opts) || n - value >= sizeof cl.names[0]) {
            fprintf(stderr, "cvx %s: too many or too long options in its description\n", cmd->name);
            return CVX_EXIT_SYSTEM;
        }
        char *name = cl.names[cl.nopts];
        memcpy(name, p, n - value);
        name[n - value] = '\0';
        cl.opts[cl.nopts++] = (cvx_opt_t){name, value, NULL};
        p += n;
    }
    bool help;
    int rc = parse_opts(argc, argv, cl.opts, cl.nopts, cl.pos, CVX_MIN(cmd->max_pos, CVX_ARRAY_LEN(cl.pos)),
                            &cl.npos, &help);
    if (rc) return rc;
    if (help) {
        cmd->usage(stdout);
        return CVX_EXIT_OK;
    }
    return cmd->run(&cl);
}

const char *cvx_cache_dir(void) {
    static char dir[4096];
    if (dir[0]) return dir;
    const char *env = getenv("CVX_CACHE_DIR");
    const char *home = getenv("HOME");
    if (env && *env) snprintf(dir, sizeof dir, "%s", env);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/cvx", home);
    else snprintf(dir, sizeof dir, "/tmp/cvx-cache");
    return dir;
}

int cvx_cli_engine(cvx_engine_t **out, cvx_err_t *err) {
    cvx_engine_config_t cfg;
    cvx_engine_config_default(&cfg);
    char modules[4200];
    snprintf(modules, sizeof modules, "%s/modules", cvx_cache_dir());
    const char *nocache = getenv("CVX_NO_MODULE_CACHE");
    cfg.cache_dir = nocache && *nocache ? NULL : modules;
    int rc = cvx_engine_new(&cfg, out, err);
    if (rc) return rc;
    rc = cvx_abi_register(*out, err);
    if (rc) {
        cvx_engine_free(*out);
        *out = NULL;
    }
    return rc;
}

void cvx_print_functions(FILE *out, const cvx_app_t *app) {
    const cvx_fn_t *fns;
    size_t n = cvx_app_functions(app, &fns);
    for (size_t i = 0; i < n; i++) {
        const cvx_fn_t *f = &fns[i];
        cvx_buf_t sig = {0}, where = {0};
        if (f->args->u.arr.len) {
            for (size_t k = 0; k < f->args->u.arr.len; k++) {
                const cvx_value_t *a = f->args->u.arr.items[k];
                const cvx_value_t *name = cvx_obj_get_cstr(a, "name");
                if (k) cvx_buf_append_str(&sig, ", ");
                if (name && name->type == CVX_T_STRING) cvx_buf_append(&sig, name->u.str.ptr, name->u.str.len);
            }
        } else {
            /* A validator's object fields (TypeScript functions). */
            const char *names[64];
            bool opt[64];
            size_t nf = cvx_validator_fields(f->args_v, names, opt, 64);
            for (size_t k = 0; k < nf && k < 64; k++) cvx_buf_printf(&sig, "%s%s%s", k ? ", " : "", names[k], opt[k] ? "?" : "");
            if (nf > 64) cvx_buf_append_str(&sig, ", ...");
        }
        if (f->line > 0) cvx_buf_printf(&where, "%s:%lld", f->file ? f->file : "?", (long long)f->line);
        else cvx_buf_append_str(&where, f->file ? f->file : f->origin);
        if (f->http)
            fprintf(out, "  %-9s %s %s  %s\n", "http", f->http_method, f->http_route, where.data);
        else
            fprintf(out, "  %-9s %s(%s)%s  %s\n", cvx_kind_name(f->kind), f->path, sig.data ? sig.data : "",
                    f->internal ? " [internal]" : "", where.data);
        cvx_buf_free(&sig);
        cvx_buf_free(&where);
    }
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s) return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || s[0] == '-') return false;
    *out = v;
    return true;
}

int cvx_cli_limits(const cvx_args_t *cl, cvx_exec_limits_t *limits) {
    uint64_t v;
    const char *o;
    if ((o = cvx_arg(cl, "fuel"))) {
        if (!parse_u64(o, &v)) {
            fprintf(stderr, "cvx: --fuel needs a non-negative integer\n");
            return -1;
        }
        for (int k = 1; k <= 3; k++) limits->fuel[k] = v;
    }
    if ((o = cvx_arg(cl, "memory"))) {
        if (!parse_u64(o, &v) || v == 0 || v > 65536) {
            fprintf(stderr, "cvx: --memory needs a size in MiB between 1 and 65536\n");
            return -1;
        }
        for (int k = 1; k <= 3; k++) limits->memory_bytes[k] = v << 20;
    }
    if ((o = cvx_arg(cl, "timeout"))) {
        if (!parse_u64(o, &v)) {
            fprintf(stderr, "cvx: --timeout needs milliseconds\n");
            return -1;
        }
        for (int k = 1; k <= 3; k++) limits->timeout_ms[k] = v;
    }
    return 0;
}
