/* `cvx serve`: the production server in the foreground until SIGINT/SIGTERM,
 * then a graceful stop (in-flight calls finish, acknowledged writes are
 * already durable). */
#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static void serve_usage(FILE *out) {
    fprintf(out,
            "usage: cvx serve [--data DIR] [--port N] [options]\n\n"
            "Serves the Convex HTTP API (and WebSocket sync) for the module deployed into DIR.\n\n"
            "  --data DIR              data directory (default: ./cvx-data); created if missing\n"
            "  --host ADDR             address to listen on (default 127.0.0.1; 0.0.0.0 for all)\n"
            "  --port N                port (default 3210; 0 picks a free port and prints it)\n"
            "  --workers N             threads running functions (default: 8 per CPU)\n"
            "  --admin-key KEY         use KEY instead of DIR/admin_key (generated on first start)\n"
            "  --allow-private-fetch   let actions fetch loopback and private addresses\n"
            "  --log-calls             print one line per function call\n"
            "  --request-timeout MS    close a connection that takes longer to send a request (default 10000)\n"
            "  --write-timeout MS      close a connection that reads nothing of its answers for this long\n"
            "                          (default 30000)\n"
            "  --action-workers N      actions running at once, apart from --workers (default: 4 per CPU)\n"
            "  --max-request-memory MIB  request bodies and unfinished WebSocket messages held for all\n"
            "                          clients together; past it requests get 503 (default 512)\n"
            "  --max-client-queries N  subscriptions one WebSocket client may hold (default 10000)\n"
            "  --max-outbox MIB        unsent WebSocket messages, all clients together (default 1024)\n"
            "  --max-upload MIB        largest file accepted on an upload URL (default 1024)\n"
            "  --query-cache MIB       memory for cached query results (default 64; 0 = no cache, every\n"
            "                          query runs: for measuring, not for production)\n"
            "  --public-url URL        base of file and upload URLs, when clients reach the server\n"
            "                          through a proxy (default http://HOST:PORT)\n"
            "  --fuel N, --memory MIB, --timeout MS   override the per-call limits for every kind\n\n"
            "Deploy code with `cvx deploy DIR --url http://HOST:PORT --admin-key KEY`.\n"
            "Exit codes: 0 stopped cleanly, 2 usage, 4 could not start.\n");
}

/* An integer option within [lo, hi]; *out is 0 when absent. */
static int num_opt(const cvx_args_t *cl, const char *name, long lo, long hi, const char *what, long *out) {
    const char *o = cvx_arg(cl, name);
    *out = 0;
    if (!o) return 0;
    char *end;
    long v = strtol(o, &end, 10);
    if (!*o || *end || v < lo || v > hi) {
        fprintf(stderr, "cvx serve: --%s needs %s between %ld and %ld\n", name, what, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int run_serve(const cvx_args_t *cl) {
    cvx_server_config_t cfg;
    cvx_server_config_default(&cfg);
    cfg.data_dir = cvx_arg(cl, "data") ? cvx_arg(cl, "data") : "cvx-data";
    if (cvx_arg(cl, "host")) cfg.host = cvx_arg(cl, "host");
    const char *o;
    char *end;
    if ((o = cvx_arg(cl, "port"))) {
        long p = strtol(o, &end, 10);
        if (*end || p < 0 || p > 65535) {
            fprintf(stderr, "cvx serve: --port needs a number between 0 and 65535\n");
            return CVX_EXIT_USAGE;
        }
        cfg.port = (int)p;
    }
    if ((o = cvx_arg(cl, "workers"))) {
        long w = strtol(o, &end, 10);
        if (*end || w < 1 || w > 256) {
            fprintf(stderr, "cvx serve: --workers needs a number between 1 and 256\n");
            return CVX_EXIT_USAGE;
        }
        cfg.workers = (int)w;
    }
    long v;
    if (num_opt(cl, "request-timeout", 100, 3600000, "milliseconds", &v)) return CVX_EXIT_USAGE;
    if (v) cfg.request_timeout_ms = (uint32_t)v;
    if (num_opt(cl, "write-timeout", 100, 3600000, "milliseconds", &v)) return CVX_EXIT_USAGE;
    if (v) cfg.write_timeout_ms = (uint32_t)v;
    if (num_opt(cl, "action-workers", 1, 256, "a number", &v)) return CVX_EXIT_USAGE;
    if (v) cfg.action_workers = (int)v;
    if (num_opt(cl, "max-request-memory", 1, 1l << 20, "a size in MiB", &v)) return CVX_EXIT_USAGE;
    if (v) cfg.max_request_memory = (uint64_t)v << 20;
    if (num_opt(cl, "max-client-queries", 1, 1000000, "a number", &v)) return CVX_EXIT_USAGE;
    if (v) cfg.max_client_queries = (uint32_t)v;
    if (num_opt(cl, "max-outbox", 1, 1l << 20, "a size in MiB", &v)) return CVX_EXIT_USAGE;
    if (v) cfg.max_outbox_bytes = (uint64_t)v << 20;
    if (cvx_arg(cl, "query-cache")) {
        if (num_opt(cl, "query-cache", 0, 1l << 20, "a size in MiB", &v)) return CVX_EXIT_USAGE;
        cfg.query_cache_bytes = v ? (size_t)v << 20 : SIZE_MAX;
    }
    if ((o = cvx_arg(cl, "max-upload"))) {
        long m = strtol(o, &end, 10);
        if (*end || m < 1 || m > (1l << 20)) {
            fprintf(stderr, "cvx serve: --max-upload needs a size in MiB between 1 and 1048576\n");
            return CVX_EXIT_USAGE;
        }
        cfg.max_upload = (uint64_t)m << 20;
    }
    if ((o = cvx_arg(cl, "public-url"))) {
        if (strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0) {
            fprintf(stderr, "cvx serve: --public-url must start with http:// or https://\n");
            return CVX_EXIT_USAGE;
        }
        cfg.public_url = o;
    }
    if (cvx_cli_limits(cl, &cfg.limits) != 0) return CVX_EXIT_USAGE;
    cfg.admin_key = cvx_arg(cl, "admin-key");
    cfg.limits.allow_private_fetch = cvx_arg(cl, "allow-private-fetch") != NULL;
    cfg.log_calls = cvx_arg(cl, "log-calls") != NULL;

    /* Signals are taken synchronously by the main thread (sigwait); every
     * thread started from here inherits the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    cvx_server_t *srv;
    cvx_err_t err;
    if (cvx_server_start(&cfg, &srv, &err)) {
        fprintf(stderr, "cvx serve: %s\n", err.msg);
        return CVX_EXIT_SYSTEM;
    }
    bool v6 = strchr(cfg.host, ':') != NULL; /* an IPv6 address goes in brackets in a URL */
    fprintf(stderr, "cvx serve: listening on http://%s%s%s:%d (data in %s)\n", v6 ? "[" : "", cfg.host, v6 ? "]" : "",
            cvx_server_port(srv), cfg.data_dir);
    /* A machine-readable line for scripts and tests that use --port 0. */
    printf("CVX_PORT=%d\n", cvx_server_port(srv));
    fflush(stdout);
    cvx_server_wait_for_signal();
    fprintf(stderr, "cvx serve: stopping (finishing calls in flight)\n");
    cvx_server_stop(srv);
    fprintf(stderr, "cvx serve: stopped\n");
    return CVX_EXIT_OK;
}

const cvx_command_t cvx_cmd_serve = {
    .name = "serve",
    .summary = "start the backend server",
    .options = "data= host= port= workers= admin-key= allow-private-fetch log-calls fuel= memory= timeout= request-timeout= max-upload= public-url= write-timeout= action-workers= max-request-memory= max-client-queries= max-outbox= query-cache=",
    .max_pos = 0,
    .usage = serve_usage,
    .run = run_serve,
};
