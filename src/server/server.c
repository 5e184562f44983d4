/* Server lifetime: the data directory, the admin key, the engine, store and
 * runtime, and a graceful stop. Deploys and the saved app are deploy.c's. */
#include "server/server_int.h"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Online CPUs, at least 1. */
static int ncpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

void cvx_server_config_default(cvx_server_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 3210;
    int n = ncpus();
    /* Workers mostly wait (on the group commit's fsync, on fetch), and a
     * group is as large as the mutations waiting for it: 8 per CPU gave
     * the most transfers per second on 2 cores (4: 7.5k, 8: 8.9-10k, 16:
     * 9.1k TPS, bench h_transfer_low). Re-measured with cheaper calls,
     * 16 per CPU: transfers 9.7k -> 10.3k TPS, but the contended counter
     * 3.2k -> 2.1k/s and ~80%-contention transfers 3.4k -> 2.4k (more
     * attempts in flight conflict); 8 stays. */
    cfg->workers = n < 2 ? 16 : 8 * n;
    /* Actions get their own slots (an action waiting on fetch holds none),
     * so queries and mutations never queue behind them. */
    cfg->action_workers = n < 2 ? 8 : 4 * n;
    cvx_exec_limits_default(&cfg->limits);
    cfg->max_body = 16u << 20;
    cfg->max_upload = 1ull << 30;
    cfg->max_connections = 20000;
    cfg->request_timeout_ms = 10000;
}

static int load_admin_key(cvx_server_t *s, cvx_err_t *err) {
    if (s->cfg.admin_key) {
        snprintf(s->admin_key, sizeof s->admin_key, "%s", s->cfg.admin_key);
        return CVX_OK;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/admin_key", s->data_dir);
    cvx_buf_t b = {0};
    cvx_err_t ignored;
    if (cvx_read_file(path, &b, &ignored) == CVX_OK) {
        size_t n = b.len;
        while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' || b.data[n - 1] == ' ')) n--;
        if (n == 0 || n >= sizeof s->admin_key) {
            cvx_buf_free(&b);
            return cvx_err_set(err, CVX_E_IO, "%s is empty or malformed; delete it to generate a new key", path);
        }
        memcpy(s->admin_key, b.data, n);
        s->admin_key[n] = '\0';
        cvx_buf_free(&b);
        return CVX_OK;
    }
    uint8_t raw[24];
    if (cvx_os_random(raw, sizeof raw)) return cvx_err_set(err, CVX_E_IO, "cannot read random bytes for the admin key");
    char hex[49];
    cvx_hex(raw, sizeof raw, hex);
    snprintf(s->admin_key, sizeof s->admin_key, "cvx_admin_%s", hex);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return cvx_err_set(err, CVX_E_IO, "cannot create %s", path);
    size_t len = strlen(s->admin_key);
    bool ok = write(fd, s->admin_key, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok) return cvx_err_set(err, CVX_E_IO, "cannot write %s", path);
    /* Printed once, when it is created. */
    fprintf(s->log, "cvx: generated admin key (saved in %s):\n  %s\n", path, s->admin_key);
    return CVX_OK;
}

static bool is_admin_key(void *ctx, const char *key, size_t len) { return cvx__admin_key_is(ctx, key, len); }

/* Uploads being received when the process died: never referenced. */
static void remove_partial_uploads(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4600];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".upload-", 8) != 0 && !strstr(e->d_name, ".tmp.")) continue;
        snprintf(path, sizeof path, "%.4200s/%.255s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void free_server(cvx_server_t *s) {
    cvx_scheduler_stop(s->scheduler);
    if (s->listen_fd >= 0) close(s->listen_fd);
    cvx_sync_free(s->sync);
    cvx_auth_free(s->auth);
    cvx_runtime_free(s->rt);
    cvx_engine_free(s->engine);
    for (size_t i = 0; i < CVX__LOG_RING; i++) {
        cvx_free(s->ring[i].logs);
        cvx_free(s->ring[i].message);
    }
    pthread_mutex_destroy(&s->deploy_mu);
    pthread_mutex_destroy(&s->log_mu);
    cvx_free(s->data_dir);
    cvx_free(s);
}

int cvx_server_start(const cvx_server_config_t *cfg, cvx_server_t **out, cvx_err_t *err) {
    *out = NULL;
    if (!cfg->data_dir) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "the server needs a data directory");
    cvx_server_t *s = cvx_calloc(1, sizeof *s);
    if (!s) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    s->cfg = *cfg;
    if (!s->cfg.max_body) s->cfg.max_body = 16u << 20;
    if (!s->cfg.max_upload) s->cfg.max_upload = 1ull << 30;
    if (!s->cfg.max_connections) s->cfg.max_connections = 20000;
    if (!s->cfg.request_timeout_ms) s->cfg.request_timeout_ms = 10000;
    if (!s->cfg.write_timeout_ms) s->cfg.write_timeout_ms = 30000;
    if (!s->cfg.max_request_memory) s->cfg.max_request_memory = 512u << 20;
    s->nworkers = s->cfg.workers > 0 ? s->cfg.workers : 2;
    s->log = cfg->log ? cfg->log : stderr;
    pthread_mutex_init(&s->deploy_mu, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
#ifdef __GLIBC__
    /* Deploys free a module's megabytes of compiled-code metadata; by
     * default glibc raises its trim and mmap thresholds as big blocks come
     * and go and then keeps freed pages. Fixed thresholds return them:
     * resident memory over 100 redeploys under load grew 28% without this
     * and stays within a few percent with it (tests/e2e/deploy.test.js).
     * It is retention, not a leak: LeakSanitizer finds nothing either way. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    /* Not capped: M_ARENA_MAX at 1 or 4 per CPU made 100 deploys under load
     * add 5% instead of 7-9% resident memory (workers' arenas keep ~190 KB
     * free each), but cost 8-10% of keynote-2 transfers (threads sharing an
     * arena wait on its lock). */
#endif
    s->listen_fd = -1;
    s->data_dir = cvx_strdup(cfg->data_dir);
    int rc = s->data_dir ? cvx_mkdirs_private(s->data_dir, err) : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) rc = load_admin_key(s, err);
    if (!rc) {
        cvx_engine_config_t ec;
        cvx_engine_config_default(&ec);
        char cache[4200];
        snprintf(cache, sizeof cache, "%s/modules", s->data_dir);
        cvx_make_private(cache); /* made 0755 by an older cvx */
        ec.cache_dir = cache;
        ec.pooling = getenv("CVX_NO_POOLING") == NULL;
        /* An instance for every worker thread, the scheduler and a deploy's
         * checks, with room to spare. */
        int need = cvx__pool_threads(s) + 16;
        if (ec.pool_instances < (uint32_t)need) ec.pool_instances = (uint32_t)need;
        rc = cvx_engine_new(&ec, &s->engine, err);
        if (!rc) rc = cvx_abi_register(s->engine, err);
    }
    if (!rc) rc = cvx__bind(s, err);
    char storage_dir[4200];
    if (!rc) {
        /* File storage: blobs in the data directory; URLs on this server;
         * upload URLs signed with a key derived from the admin key. */
        snprintf(storage_dir, sizeof storage_dir, "%s/storage", s->data_dir);
        snprintf(s->upload_dir, sizeof s->upload_dir, "%s", storage_dir);
        rc = cvx_mkdirs_private(storage_dir, err);
        if (!rc) remove_partial_uploads(storage_dir);
    }
    if (!rc) {
        const char *h = s->cfg.host ? s->cfg.host : "127.0.0.1";
        if (s->cfg.public_url) {
            snprintf(s->base_url, sizeof s->base_url, "%s", s->cfg.public_url);
            size_t n = strlen(s->base_url);
            while (n > 0 && s->base_url[n - 1] == '/') s->base_url[--n] = '\0';
        } else if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::")) snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", s->port);
        else snprintf(s->base_url, sizeof s->base_url, strchr(h, ':') ? "http://[%s]:%d" : "http://%s:%d", h, s->port);
        char seed[128];
        int n = snprintf(seed, sizeof seed, "cvx-storage:%s", s->admin_key);
        cvx_sha256(seed, (size_t)n, s->storage_secret);
        cvx_runtime_config_t rcfg = {.engine = s->engine,
                                     .data_dir = s->data_dir,
                                     /* + the two action lanes' slots, the scheduler and a spare */
                                     .read_connections = s->nworkers + 2 * (s->cfg.action_workers > 0 ? s->cfg.action_workers : 8) + 2,
                                     .limits = s->cfg.limits,
                                     .query_cache_bytes = s->cfg.query_cache_bytes,
                                     .storage = {storage_dir, s->base_url, s->storage_secret, sizeof s->storage_secret}};
        rc = cvx_runtime_new(&rcfg, &s->rt, err);
    }
    if (!rc) {
        rc = cvx_auth_new(NULL, &s->auth, err);
    }
    if (!rc) {
        cvx__load_saved_app(s);
    }
    if (!rc) rc = cvx_scheduler_start(s->rt, &s->scheduler, err);
    if (!rc) {
        cvx_sync_hooks_t hooks = {.ctx = s,
                                  .submit = cvx__pool_task,
                                  .wake = cvx__ws_wake,
                                  .is_admin_key = is_admin_key,
                                  .verify_token = cvx__verify_token};
        cvx_sync_config_t sc = {.max_queries_per_client = s->cfg.max_client_queries,
                                .max_total_outbox_bytes = s->cfg.max_outbox_bytes,
                                /* Subscription runs are CPU-bound: more at once
                                 * than cores only takes CPU from the event loop
                                 * and HTTP calls, which keep the other workers. */
                                .max_running_queries = (uint32_t)CVX_MAX(1, CVX_MIN(ncpus(), s->nworkers / 2))};
        rc = cvx_sync_new(s->rt, &hooks, &sc, &s->sync, err);
    }
    if (!rc) rc = cvx__pool_start(s, err);
    if (!rc) {
        rc = cvx__http_start(s, err);
        if (rc) cvx__pool_stop(s);
    } else {
        cvx__pool_stop(s);
    }
    if (rc) {
        free_server(s);
        return rc;
    }
    *out = s;
    return CVX_OK;
}

int cvx_server_port(const cvx_server_t *s) { return s->port; }
const char *cvx_server_admin_key(const cvx_server_t *s) { return s->admin_key; }
cvx_runtime_t *cvx_server_runtime(cvx_server_t *s) { return s->rt; }

void cvx_server_stop(cvx_server_t *s) {
    if (!s) return;
    /* No new scheduled runs; the one in progress finishes. */
    cvx_scheduler_stop(s->scheduler);
    s->scheduler = NULL;
    cvx__http_stop(s); /* returns once every in-flight call was answered */
    cvx__pool_stop(s);
    cvx__http_free(s);
    free_server(s);
}

void cvx_server_wait_for_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
}
