/* `cvx deploy`: build the functions crate and push the module to a running
 * server, which validates it and swaps it in atomically. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void deploy_usage(FILE *out) {
    fprintf(out,
            "usage: cvx deploy [DIR] --url URL [--admin-key KEY] [--wasm FILE]\n\n"
            "Builds the functions crate in DIR (default: .) and deploys it to the server at URL.\n"
            "The server checks the module (imports, ABI version, metadata) and applies its schema's\n"
            "indexes before switching; a rejected deploy leaves the old code running.\n\n"
            "  --url URL         the server, e.g. http://127.0.0.1:3210 (or $CVX_URL)\n"
            "  --admin-key KEY   the server's admin key (or $CVX_ADMIN_KEY, or DATA/admin_key with --data)\n"
            "  --data DIR        read the admin key from a local data directory\n"
            "  --wasm FILE       deploy a prebuilt module instead of building DIR\n\n"
            "Exit codes: 0 deployed, 2 usage, 3 build failed or module rejected, 4 server unreachable.\n");
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
        cvx_err_set(err, rc, "the server refused the deploy (HTTP %ld): %s", status, resp->data ? resp->data : "");
    }
    cvx_buf_free(&gz);
    cvx_buf_free(&u);
    return rc;
}

int cvx_cmd_deploy(int argc, char **argv) {
    cvx_opt_t opts[] = {{"url", true, NULL}, {"admin-key", true, NULL}, {"data", true, NULL}, {"wasm", true, NULL}};
    size_t nopts = CVX_ARRAY_LEN(opts);
    const char *pos[1];
    size_t npos;
    bool help;
    int rc = cvx_parse_opts(argc, argv, opts, nopts, pos, 1, &npos, &help);
    if (rc) return rc;
    if (help) {
        deploy_usage(stdout);
        return CVX_EXIT_OK;
    }
    const char *url = cvx_opt(opts, nopts, "url");
    if (!url) url = getenv("CVX_URL");
    char keybuf[256];
    const char *key = cvx_cli_admin_key(cvx_opt(opts, nopts, "admin-key"), cvx_opt(opts, nopts, "data"), keybuf, sizeof keybuf);
    if (!url || !key) {
        fprintf(stderr, "cvx deploy: needs --url and an admin key (--admin-key, $CVX_ADMIN_KEY or --data DIR)\n");
        return CVX_EXIT_USAGE;
    }
    const char *dir = npos ? pos[0] : ".";
    cvx_err_t err;
    cvx_buf_t wasm_path = {0}, bytes = {0}, resp = {0};
    int exit_code = CVX_EXIT_OK;
    if (cvx_opt(opts, nopts, "wasm")) {
        cvx_buf_append_str(&wasm_path, cvx_opt(opts, nopts, "wasm"));
    } else {
        cvx_build_opts_t bo = {.quiet = false, .release = true};
        cvx_buf_t crate = {0};
        cvx_project_dirs(dir, &crate, NULL);
        rc = cvx_build_crate(crate.data, &bo, &wasm_path, &err);
        cvx_buf_free(&crate);
        if (rc) {
            fprintf(stderr, "cvx deploy: %s\n", err.msg);
            exit_code = CVX_EXIT_BUILD;
            goto out;
        }
    }
    if (cvx_read_file(wasm_path.data, &bytes, &err)) {
        fprintf(stderr, "cvx deploy: %s\n", err.msg);
        exit_code = CVX_EXIT_SYSTEM;
        goto out;
    }
    rc = cvx_deploy_bytes(url, key, bytes.data, bytes.len, &resp, &err);
    if (rc) {
        fprintf(stderr, "cvx deploy: %s\n", err.msg);
        exit_code = rc == CVX_E_IO ? CVX_EXIT_SYSTEM : rc == CVX_E_AUTH ? CVX_EXIT_USAGE : CVX_EXIT_BUILD;
        goto out;
    }
    printf("deployed %s to %s: %s\n", wasm_path.data, url, resp.data ? resp.data : "");
out:
    cvx_buf_free(&wasm_path);
    cvx_buf_free(&bytes);
    cvx_buf_free(&resp);
    return exit_code;
}
