/* `cvx deploy`: build the functions crate and push the module to a running
 * server, which validates it and swaps it in atomically. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void deploy_usage(FILE *out) {
    fprintf(out,
            "usage: cvx deploy [DIR] --url URL [--admin-key KEY] [--wasm FILE]\n\n"
            "Builds the app in DIR (default: .; its Rust crate and its TypeScript modules in convex/) and\n"
            "deploys it to the server at URL. The server checks everything (imports, ABI version,\n"
            "metadata; it runs the TypeScript modules' top level in its sandbox) and applies the schema's\n"
            "indexes before switching; a rejected deploy leaves the old code running.\n\n"
            "  --url URL         the server, e.g. http://127.0.0.1:3210 (or $CVX_URL)\n"
            "  --admin-key KEY   the server's admin key (or $CVX_ADMIN_KEY, or DATA/admin_key with --data)\n"
            "  --data DIR        read the admin key from a local data directory\n"
            "  --wasm FILE       deploy a prebuilt module instead of building DIR\n\n"
            "Exit codes: 0 deployed, 2 usage, 3 build failed or module rejected, 4 server unreachable.\n");
}

/* The server's refusal, {"code", "message"}, as the message's own text: a
 * build error's stack reads better with its newlines. */
static void refused(long status, const cvx_buf_t *resp, int rc, cvx_err_t *err) {
    cvx_arena_t *a = resp->data ? cvx_arena_new(4096) : NULL;
    cvx_value_t *v = NULL;
    cvx_err_t ignored;
    const cvx_value_t *code = NULL, *msg = NULL;
    if (a && cvx_json_parse(a, resp->data, resp->len, &v, &ignored) == CVX_OK && v->type == CVX_T_OBJECT) {
        code = cvx_obj_get_cstr(v, "code");
        msg = cvx_obj_get_cstr(v, "message");
    }
    if (code && code->type == CVX_T_STRING && msg && msg->type == CVX_T_STRING)
        cvx_err_set(err, rc, "the server refused the deploy (HTTP %ld, %s):\n%s", status, code->u.str.ptr,
                    msg->u.str.ptr);
    else
        cvx_err_set(err, rc, "the server refused the deploy (HTTP %ld): %s", status, resp->data ? resp->data : "");
    cvx_arena_free(a);
}

int cvx_deploy_bytes(const char *url, const char *key, const void *wasm, size_t len, cvx_buf_t *resp,
                     cvx_err_t *err) {
    cvx_buf_t gz = {0}, u = {0};
    int rc = cvx_gzip(wasm, len, &gz, err);
    long status = 0;
    cvx_buf_printf(&u, "%s/api/deploy", url);
    if (!rc) rc = cvx_cli_http("POST", u.data, key, gz.data, gz.len, "application/wasm", resp, &status, err);
    if (!rc && status != 200) {
        rc = status == 401 ? CVX_E_AUTH : CVX_E_BAD_MODULE;
        refused(status, resp, rc, err);
    }
    cvx_buf_free(&gz);
    cvx_buf_free(&u);
    return rc;
}

static int run_deploy(const cvx_args_t *cl) {
    int rc = 0;
    const char *url = cvx_arg(cl, "url");
    if (!url) url = getenv("CVX_URL");
    char keybuf[256];
    const char *key = cvx_cli_admin_key(cvx_arg(cl, "admin-key"), cvx_arg(cl, "data"), keybuf, sizeof keybuf);
    if (!url || !key) {
        fprintf(stderr, "cvx deploy: needs --url and an admin key (--admin-key, $CVX_ADMIN_KEY or --data DIR)\n");
        return CVX_EXIT_USAGE;
    }
    const char *dir = cl->npos ? cl->pos[0] : ".";
    cvx_err_t err;
    cvx_buf_t bytes = {0}, resp = {0};
    const char *what = cvx_arg(cl, "wasm");
    cvx_project_t p;
    memset(&p, 0, sizeof p);
    int exit_code = CVX_EXIT_OK;
    if (what) {
        if (cvx_read_file(what, &bytes, &err)) {
            fprintf(stderr, "cvx deploy: %s\n", err.msg);
            exit_code = CVX_EXIT_SYSTEM;
            goto out;
        }
    } else {
        cvx_build_opts_t bo = {.quiet = false, .release = true};
        if (cvx_project_open(dir, &p, &err) || cvx_project_build(&p, &bo, &err)) {
            fprintf(stderr, "cvx deploy: %s\n", err.msg);
            exit_code = CVX_EXIT_BUILD;
            goto out;
        }
        cvx_project_deploy_body(&p, &bytes);
        what = p.root.data;
    }
    rc = cvx_deploy_bytes(url, key, bytes.data, bytes.len, &resp, &err);
    if (rc) {
        fprintf(stderr, "cvx deploy: %s\n", err.msg);
        exit_code = rc == CVX_E_IO ? CVX_EXIT_SYSTEM : rc == CVX_E_AUTH ? CVX_EXIT_USAGE : CVX_EXIT_BUILD;
        goto out;
    }
    printf("deployed %s to %s: %s\n", what, url, resp.data ? resp.data : "");
out:
    cvx_project_free(&p);
    cvx_buf_free(&bytes);
    cvx_buf_free(&resp);
    return exit_code;
}

const cvx_command_t cvx_cmd_deploy = {
    .name = "deploy",
    .summary = "build and push functions to a running server",
    .options = "url= admin-key= data= wasm=",
    .max_pos = 1,
    .usage = deploy_usage,
    .run = run_deploy,
};
