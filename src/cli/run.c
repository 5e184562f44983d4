/* `cvx run`: build a functions crate (or take a .wasm), deploy it to a local
 * store and run one function, printing its log lines and result. The store
 * persists in DIR/.cvx/data, so a mutation's writes are there for the next
 * run. */
#include "cli/cli.h"

#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: cvx run [DIR] FUNCTION [ARGS_JSON] [options]\n\n"
            "Runs one function of the functions crate in DIR (default: .) against a local database and\n"
            "prints its result as convex-encoded JSON. Log lines go to stderr.\n\n"
            "  FUNCTION          module:function, e.g. users:create_user (\"module\" alone means module:default)\n"
            "  ARGS_JSON         the arguments object, e.g. '{\"name\":\"Ada\"}' (default {})\n"
            "  --data DIR        database directory (default: DIR/.cvx/data)\n"
            "  --wasm FILE       run a prebuilt module instead of building DIR\n"
            "  --fuel N          fuel limit (default 10000000000 for queries/mutations, 10x for actions; 0 = none)\n"
            "  --memory MIB      memory limit in MiB (default 256, actions 512)\n"
            "  --timeout MS      wall-time limit in ms (default 30000, actions 300000; 0 = none)\n"
            "  --request-id ID   request id (seeds the random generator of queries and mutations)\n"
            "  --json            print the whole response as JSON: status, value, errorMessage, errorData, logLines\n"
            "  --identity JSON   run as this user: UserIdentity fields, e.g. '{\"subject\":\"u1\",\"issuer\":\"https://x\",\n"
            "                    \"name\":\"Ada\"}' (tokenIdentifier is issuer|subject); with --url, needs the admin key\n"
            "  --url URL         run on a server instead (POST /api/run); no build, no local data\n"
            "  --admin-key KEY   with --url: the admin key, to call internal functions (or $CVX_ADMIN_KEY)\n\n"
            "Exit codes: 0 the function succeeded, 1 it failed, 2 usage, 3 build error, 4 system error.\n");
}

static void print_logs(const cvx_abi_result_t *r) {
    if (!r->logs.len) return;
    /* The logs are a JSON array of strings: print each on its own line. */
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (a && cvx_json_parse(a, r->logs.data, r->logs.len, &v, &err) == CVX_OK && v->type == CVX_T_ARRAY)
        for (size_t i = 0; i < v->u.arr.len; i++)
            if (v->u.arr.items[i]->type == CVX_T_STRING) fprintf(stderr, "%s\n", v->u.arr.items[i]->u.str.ptr);
    cvx_arena_free(a);
}

/* --url: the server runs it; the response is the HTTP API's JSON. */
static int run_remote(const cvx_args_t *cl, const char *fn, const char *args) {
    char keybuf[256];
    const char *key = cvx_cli_admin_key(cvx_arg(cl, "admin-key"), NULL, keybuf, sizeof keybuf);
    /* Acting as a user: "Convex <key>:<base64 of the identity>", as
     * convex's setAdminAuth(key, identity) sends it. */
    cvx_buf_t acting = {0};
    const char *identity = cvx_arg(cl, "identity");
    if (identity) {
        if (!key) {
            fprintf(stderr, "cvx run: --identity needs the admin key (--admin-key or $CVX_ADMIN_KEY)\n");
            return CVX_EXIT_USAGE;
        }
        cvx_buf_printf(&acting, "%s:", key);
        cvx_base64_encode(&acting, identity, strlen(identity));
        key = acting.data;
    }
    cvx_buf_t url = {0}, body = {0}, out = {0};
    cvx_buf_printf(&url, "%s/api/run/", cvx_arg(cl, "url"));
    for (const char *p = fn; *p; p++) cvx_buf_append_char(&url, *p == ':' ? '/' : *p);
    if (!strchr(fn, ':')) cvx_buf_append_str(&url, "/default");
    cvx_buf_printf(&body, "{\"args\":%s,\"format\":\"convex_encoded_json\"}", args);
    cvx_err_t err;
    long status = 0;
    int rc = cvx_cli_http("POST", url.data, key, body.data, body.len, "application/json", &out, &status, &err);
    int exit_code = CVX_EXIT_SYSTEM;
    if (rc) {
        fprintf(stderr, "cvx run: %s\n", err.msg);
    } else if (status != 200) {
        fprintf(stderr, "cvx run: the server answered HTTP %ld: %s\n", status, out.data ? out.data : "");
        exit_code = status == 400 ? CVX_EXIT_USAGE : CVX_EXIT_SYSTEM;
    } else if (cvx_arg(cl, "json")) {
        printf("%s\n", out.data);
        exit_code = strstr(out.data, "\"status\":\"success\"") ? CVX_EXIT_OK : CVX_EXIT_FUNCTION;
    } else {
        cvx_arena_t *a = cvx_arena_new(4096);
        cvx_value_t *v = NULL;
        if (a && cvx_json_parse(a, out.data, out.len, &v, &err) == CVX_OK && v->type == CVX_T_OBJECT) {
            const cvx_value_t *logs = cvx_obj_get_cstr(v, "logLines");
            for (size_t i = 0; logs && logs->type == CVX_T_ARRAY && i < logs->u.arr.len; i++)
                if (logs->u.arr.items[i]->type == CVX_T_STRING) fprintf(stderr, "%s\n", logs->u.arr.items[i]->u.str.ptr);
            const cvx_value_t *st = cvx_obj_get_cstr(v, "status");
            bool ok = st && st->type == CVX_T_STRING && !strcmp(st->u.str.ptr, "success");
            cvx_buf_t b = {0};
            if (ok) {
                cvx_json_write(&b, cvx_obj_get_cstr(v, "value"));
                printf("%s\n", b.data);
                exit_code = CVX_EXIT_OK;
            } else {
                const cvx_value_t *m = cvx_obj_get_cstr(v, "errorMessage");
                const cvx_value_t *d = cvx_obj_get_cstr(v, "errorData");
                fprintf(stderr, "error: %s\n", m && m->type == CVX_T_STRING ? m->u.str.ptr : "(no message)");
                if (d) {
                    cvx_json_write(&b, d);
                    printf("%s\n", b.data);
                }
                exit_code = CVX_EXIT_FUNCTION;
            }
            cvx_buf_free(&b);
        } else {
            fprintf(stderr, "cvx run: unexpected response: %s\n", out.data ? out.data : "");
        }
        cvx_arena_free(a);
    }
    cvx_buf_free(&url);
    cvx_buf_free(&body);
    cvx_buf_free(&out);
    cvx_buf_free(&acting);
    return exit_code;
}

static int run_run(const cvx_args_t *cl) {
    int rc = 0;
    const char *dir = ".", *fn = NULL, *args = "{}";
    if (cl->npos == 3) {
        dir = cl->pos[0];
        fn = cl->pos[1];
        args = cl->pos[2];
    } else if (cl->npos == 2) {
        /* Either DIR FUNCTION or FUNCTION ARGS. */
        if (strchr(cl->pos[0], ':') || cl->pos[1][0] == '{') {
            fn = cl->pos[0];
            args = cl->pos[1];
        } else {
            dir = cl->pos[0];
            fn = cl->pos[1];
        }
    } else if (cl->npos == 1) {
        fn = cl->pos[0];
    }
    if (!fn) {
        run_usage(stderr);
        return CVX_EXIT_USAGE;
    }

    /* Checked here, for a clear error before any build or request. */
    cvx_buf_t identity = {0};
    if (cvx_arg(cl, "identity")) {
        cvx_err_t ierr;
        const char *as = cvx_arg(cl, "identity");
        if (cvx_auth_identity_from_attributes(as, strlen(as), &identity, &ierr)) {
            fprintf(stderr, "cvx run: --identity: %s\n", ierr.msg);
            cvx_buf_free(&identity);
            return CVX_EXIT_USAGE;
        }
    }
    if (cvx_arg(cl, "url")) {
        cvx_buf_free(&identity);
        return run_remote(cl, fn, args);
    }

    cvx_exec_limits_t limits;
    cvx_exec_limits_default(&limits);
    if (cvx_cli_limits(cl, &limits) != 0) {
        cvx_buf_free(&identity);
        return CVX_EXIT_USAGE;
    }

    cvx_err_t err;
    cvx_buf_t data_dir = {0};
    const char *wasm_opt = cvx_arg(cl, "wasm");
    cvx_project_t p;
    memset(&p, 0, sizeof p);
    if (wasm_opt) {
        rc = cvx_read_file(wasm_opt, &p.rust, &err);
    } else {
        cvx_build_opts_t bo = {.quiet = true, .release = true};
        rc = cvx_project_open(dir, &p, &err);
        if (!rc) rc = cvx_project_build(&p, &bo, &err);
    }
    if (rc) {
        fprintf(stderr, "cvx run: %s\n", err.msg);
        cvx_project_free(&p);
        cvx_buf_free(&identity);
        return err.code == CVX_E_IO || err.code == CVX_E_NOMEM ? CVX_EXIT_SYSTEM : CVX_EXIT_BUILD;
    }
    const char *data_opt = cvx_arg(cl, "data");
    if (data_opt) cvx_buf_append_str(&data_dir, data_opt);
    else cvx_buf_printf(&data_dir, "%s/.cvx/data", dir);

    int exit_code = CVX_EXIT_SYSTEM;
    cvx_engine_t *engine = NULL;
    cvx_store_t *store = NULL;
    cvx_runtime_t *rt = NULL;
    cvx_app_t *app = NULL;
    cvx_store_config_t scfg;
    cvx_store_config_default(&scfg);
    if (cvx_cli_engine(&engine, &err) || cvx_mkdirs(data_dir.data, &err) ||
        cvx_store_open(data_dir.data, &scfg, &store, &err)) {
        fprintf(stderr, "cvx run: %s\n", err.msg);
        goto out;
    }
    if (cvx_project_load(&p, engine, &app, NULL, &err)) {
        fprintf(stderr, "cvx run: %s: %s\n", wasm_opt ? wasm_opt : dir, err.msg);
        exit_code = CVX_EXIT_BUILD;
        goto out;
    }
    cvx_runtime_config_t rcfg = {.engine = engine, .store = store, .limits = limits};
    if (cvx_runtime_new(&rcfg, &rt, &err) || cvx_runtime_deploy(rt, app, NULL, NULL, &err)) {
        fprintf(stderr, "cvx run: %s\n", err.msg);
        goto out;
    }
    cvx_request_t req = {.path = fn,
                         .args_json = args,
                         .args_len = strlen(args),
                         .request_id = cvx_arg(cl, "request-id"),
                         .allow_internal = true,
                         .identity = identity.data,
                         .identity_len = identity.len};
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    rc = cvx_exec_call(rt, &req, &resp);
    if (cvx_arg(cl, "json")) {
        cvx_buf_t j = {0};
        cvx_buf_append_str(&j, "{\"status\":");
        cvx_buf_append_str(&j, rc == CVX_OK ? "\"success\"" : "\"error\"");
        if (rc == CVX_OK) {
            cvx_buf_append_str(&j, ",\"value\":");
            cvx_buf_append(&j, resp.r.value.data, resp.r.value.len);
        } else {
            cvx_buf_printf(&j, ",\"code\":\"%s\",\"errorMessage\":", cvx_code_name(rc));
            cvx_buf_append_json_string(&j, resp.r.message.data ? resp.r.message.data : "", resp.r.message.len);
            if (resp.r.has_data) {
                cvx_buf_append_str(&j, ",\"errorData\":");
                cvx_buf_append(&j, resp.r.data.data, resp.r.data.len);
            }
        }
        cvx_buf_append_str(&j, ",\"logLines\":");
        cvx_buf_append_str(&j, resp.r.logs.len ? resp.r.logs.data : "[]");
        cvx_buf_append_char(&j, '}');
        printf("%s\n", j.data);
        cvx_buf_free(&j);
    } else {
        print_logs(&resp.r);
        if (rc == CVX_OK) {
            printf("%s\n", resp.r.value.data ? resp.r.value.data : "null");
        } else {
            fprintf(stderr, "error (%s): %s\n", cvx_code_name(rc), resp.r.message.data ? resp.r.message.data : "");
            if (resp.r.has_data) printf("%s\n", resp.r.data.data);
        }
    }
    exit_code = rc == CVX_OK ? CVX_EXIT_OK : CVX_EXIT_FUNCTION;
    cvx_response_free(&resp);
out:
    cvx_runtime_free(rt);
    cvx_app_release(app);
    cvx_store_close(store);
    cvx_engine_free(engine);
    cvx_project_free(&p);
    cvx_buf_free(&data_dir);
    cvx_buf_free(&identity);
    return exit_code;
}

const cvx_command_t cvx_cmd_run = {
    .name = "run",
    .summary = "run one function and print its result",
    .options = "data= wasm= fuel= memory= timeout= request-id= json url= admin-key= identity=",
    .max_pos = 3,
    .usage = run_usage,
    .run = run_run,
};
