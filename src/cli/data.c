/* `cvx data` and `cvx logs`: look into a running server (admin API) or, for
 * data, straight into a local data directory. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void data_usage(FILE *out) {
    fprintf(out,
            "usage: cvx data [TABLE] [--url URL --admin-key KEY | --data DIR] [--limit N] [--cursor C]\n\n"
            "Without TABLE: lists the tables and their document counts. With TABLE: prints its documents\n"
            "(oldest first, one JSON document per line) and, when there are more, the cursor for the next page.\n\n"
            "  --url URL         a running server (default $CVX_URL or http://127.0.0.1:3210)\n"
            "  --admin-key KEY   its admin key (or $CVX_ADMIN_KEY)\n"
            "  --data DIR        read a local data directory instead (works while a server runs)\n"
            "  --limit N         documents per page (default 100)\n"
            "  --cursor C        continue after a previous page\n\n"
            "Exit codes: 0 ok, 2 usage, 4 unreachable or not authorized.\n");
}

static void print_page(const char *json) {
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (a && cvx_json_parse(a, json, strlen(json), &v, &err) == CVX_OK && v->type == CVX_T_OBJECT) {
        const cvx_value_t *page = cvx_obj_get_cstr(v, "page");
        for (size_t i = 0; page && page->type == CVX_T_ARRAY && i < page->u.arr.len; i++) {
            cvx_buf_t b = {0};
            cvx_json_write(&b, page->u.arr.items[i]);
            printf("%s\n", b.data);
            cvx_buf_free(&b);
        }
        const cvx_value_t *done = cvx_obj_get_cstr(v, "isDone");
        const cvx_value_t *cur = cvx_obj_get_cstr(v, "continueCursor");
        if (done && done->type == CVX_T_BOOL && !done->u.b && cur && cur->type == CVX_T_STRING)
            fprintf(stderr, "more: --cursor %s\n", cur->u.str.ptr);
    } else {
        printf("%s\n", json);
    }
    cvx_arena_free(a);
}

static void print_tables(const char *json) {
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    if (a && cvx_json_parse(a, json, strlen(json), &v, &err) == CVX_OK && v->type == CVX_T_ARRAY) {
        if (v->u.arr.len == 0) printf("(no tables yet)\n");
        for (size_t i = 0; i < v->u.arr.len; i++) {
            const cvx_value_t *name = cvx_obj_get_cstr(v->u.arr.items[i], "name");
            const cvx_value_t *n = cvx_obj_get_cstr(v->u.arr.items[i], "documents");
            printf("%-32s %.0f documents\n", name && name->type == CVX_T_STRING ? name->u.str.ptr : "?",
                   n && n->type == CVX_T_FLOAT64 ? n->u.f : 0.0);
        }
    } else {
        printf("%s\n", json);
    }
    cvx_arena_free(a);
}

static int run_data(const cvx_args_t *cl) {
    int rc = 0;
    const char *table = cl->npos ? cl->pos[0] : NULL;
    long limit = cvx_arg(cl, "limit") ? strtol(cvx_arg(cl, "limit"), NULL, 10) : 100;
    if (limit < 1 || limit > 10000) {
        fprintf(stderr, "cvx data: --limit needs 1..10000\n");
        return CVX_EXIT_USAGE;
    }
    const char *cursor = cvx_arg(cl, "cursor");
    cvx_err_t err;
    cvx_buf_t out = {0};
    const char *dir = cvx_arg(cl, "data");
    if (dir) {
        cvx_store_t *store = NULL;
        cvx_store_config_t sc;
        cvx_store_config_default(&sc);
        rc = cvx_store_open(dir, &sc, &store, &err);
        if (!rc && !table) rc = cvx_store_list_tables(store, &out, &err);
        if (!rc && table) {
            cvx_txn_t *t = NULL;
            cvx_query_t q = {.table = table, .limit = limit, .cursor = cursor};
            rc = cvx_txn_begin(store, CVX_TXN_READ, 0, &t, &err);
            if (!rc) rc = cvx_txn_query(t, &q, &out, &err);
            cvx_txn_abort(t);
        }
        cvx_store_close(store);
    } else {
        char keybuf[256];
        const char *key = cvx_cli_admin_key(cvx_arg(cl, "admin-key"), NULL, keybuf, sizeof keybuf);
        cvx_buf_t url = {0};
        if (table) {
            cvx_buf_printf(&url, "%s/api/admin/documents?table=%s&limit=%ld", cvx_cli_url(cl), table, limit);
            if (cursor) {
                cvx_buf_append_str(&url, "&cursor=");
                for (const char *p = cursor; *p; p++)
                    if (*p == '+' || *p == '/' || *p == '=') cvx_buf_printf(&url, "%%%02X", (unsigned char)*p);
                    else cvx_buf_append_char(&url, *p);
            }
        } else {
            cvx_buf_printf(&url, "%s/api/admin/tables", cvx_cli_url(cl));
        }
        long status = 0;
        rc = cvx_cli_http("GET", url.data, key, NULL, 0, NULL, &out, &status, &err);
        if (!rc && status != 200) rc = cvx_err_set(&err, CVX_E_AUTH, "HTTP %ld: %s", status, out.data ? out.data : "");
        cvx_buf_free(&url);
    }
    if (rc) {
        fprintf(stderr, "cvx data: %s\n", err.msg);
        cvx_buf_free(&out);
        return CVX_EXIT_SYSTEM;
    }
    if (table) print_page(out.data ? out.data : "{}");
    else print_tables(out.data ? out.data : "[]");
    cvx_buf_free(&out);
    return CVX_EXIT_OK;
}

static void logs_usage(FILE *out) {
    fprintf(out,
            "usage: cvx logs [--url URL] [--admin-key KEY] [--once]\n\n"
            "Follows the function calls of a running server: one line per call (request id, kind,\n"
            "function, duration, outcome) followed by its log lines.\n\n"
            "  --url URL         the server (default $CVX_URL or http://127.0.0.1:3210)\n"
            "  --admin-key KEY   its admin key (or $CVX_ADMIN_KEY)\n"
            "  --once            print what is there and exit instead of following\n\n"
            "Exit codes: 0 ok, 2 usage, 4 unreachable or not authorized.\n");
}

static int run_logs(const cvx_args_t *cl) {
    int rc = 0;
    char keybuf[256];
    const char *key = cvx_cli_admin_key(cvx_arg(cl, "admin-key"), NULL, keybuf, sizeof keybuf);
    bool once = cvx_arg(cl, "once") != NULL;
    uint64_t after = 0;
    for (;;) {
        cvx_buf_t url = {0}, out = {0};
        cvx_err_t err;
        long status = 0;
        cvx_buf_printf(&url, "%s/api/admin/logs?after=%llu", cvx_cli_url(cl), (unsigned long long)after);
        rc = cvx_cli_http("GET", url.data, key, NULL, 0, NULL, &out, &status, &err);
        cvx_buf_free(&url);
        if (!rc && status != 200) rc = cvx_err_set(&err, CVX_E_AUTH, "HTTP %ld: %s", status, out.data ? out.data : "");
        if (rc) {
            fprintf(stderr, "cvx logs: %s\n", err.msg);
            cvx_buf_free(&out);
            return CVX_EXIT_SYSTEM;
        }
        cvx_arena_t *a = cvx_arena_new(1 << 16);
        cvx_value_t *v = NULL;
        if (a && cvx_json_parse(a, out.data, out.len, &v, &err) == CVX_OK && v->type == CVX_T_OBJECT) {
            const cvx_value_t *next = cvx_obj_get_cstr(v, "next");
            const cvx_value_t *entries = cvx_obj_get_cstr(v, "entries");
            for (size_t i = 0; entries && entries->type == CVX_T_ARRAY && i < entries->u.arr.len; i++) {
                const cvx_value_t *e = entries->u.arr.items[i];
                const cvx_value_t *f[6] = {cvx_obj_get_cstr(e, "requestId"), cvx_obj_get_cstr(e, "kind"),
                                           cvx_obj_get_cstr(e, "path"),      cvx_obj_get_cstr(e, "durationMs"),
                                           cvx_obj_get_cstr(e, "status"),    cvx_obj_get_cstr(e, "errorMessage")};
                printf("[%s] %s %s %.2fms %s\n", f[0] ? f[0]->u.str.ptr : "?", f[1] ? f[1]->u.str.ptr : "?",
                       f[2] ? f[2]->u.str.ptr : "?", f[3] && f[3]->type == CVX_T_FLOAT64 ? f[3]->u.f : 0.0,
                       f[4] ? f[4]->u.str.ptr : "?");
                const cvx_value_t *lines = cvx_obj_get_cstr(e, "logLines");
                for (size_t k = 0; lines && lines->type == CVX_T_ARRAY && k < lines->u.arr.len; k++)
                    if (lines->u.arr.items[k]->type == CVX_T_STRING) printf("    %s\n", lines->u.arr.items[k]->u.str.ptr);
                if (f[5] && f[5]->type == CVX_T_STRING) printf("    %s\n", f[5]->u.str.ptr);
            }
            if (next && next->type == CVX_T_FLOAT64) after = (uint64_t)next->u.f;
        }
        fflush(stdout);
        cvx_arena_free(a);
        cvx_buf_free(&out);
        if (once) return CVX_EXIT_OK;
        usleep(500 * 1000);
    }
}

const cvx_command_t cvx_cmd_data = {
    .name = "data",
    .summary = "list tables or a table's documents",
    .options = "url= admin-key= data= limit= cursor=",
    .max_pos = 1,
    .usage = data_usage,
    .run = run_data,
};

const cvx_command_t cvx_cmd_logs = {
    .name = "logs",
    .summary = "follow function logs of a running server",
    .options = "url= admin-key= once",
    .max_pos = 0,
    .usage = logs_usage,
    .run = run_logs,
};
