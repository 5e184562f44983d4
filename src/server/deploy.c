/* Deploys, and the deployed app that survives restarts.
 *
 * A deploy body is a Rust module (wasm, as `cvx deploy` of a Rust-only app
 * sends it) or an app package (util/pkg.c) with any of: "rust.wasm", the
 * TypeScript side as "js/bundle.js" and "js/bundle.js.map", or an already
 * built JavaScript module "js.wasm". A bundle is built here, in the
 * sandbox (js/build.c), so the server's engine runs what it built.
 *
 * Deploys are serialised (deploy_mu) and atomic: the modules are validated
 * and analysed together, the indexes applied, and only then swapped in;
 * calls in flight keep the app they started with (reference counts), so
 * none sees a mix of old and new code and the old app is freed after its
 * last call. The app is saved as data/app.wasm: the module itself for a
 * one-module Rust app, else a package of the built modules, so a restart
 * loads it without building anything again. */
#include "server/server_int.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "js/js.h"

#define RUST_LABEL "the Rust crate"
#define JS_LABEL "convex/ (TypeScript)"

/* app.wasm.sha256 records the hashes of the saved app's modules ('+'
 * between them) with the size and mtime app.wasm had when it was written,
 * so a start need not hash megabytes of module (mostly DWARF, or a
 * JavaScript heap) again: 4 ms of an 18 ms start for the bench module. A
 * record that does not match the file (a crash between the two writes, a
 * hand-copied module) is ignored and the modules hashed. */
static void app_record_path(const cvx_server_t *s, char *out, size_t n) {
    snprintf(out, n, "%s/app.wasm.sha256", s->data_dir);
}

/* What follows the hashes in the record: " <size> <mtime>\n". */
static int app_record_tail(const struct stat *st, char *out, size_t n) {
    return snprintf(out, n, " %lld %lld.%09ld\n", (long long)st->st_size, (long long)st->st_mtim.tv_sec,
                    st->st_mtim.tv_nsec);
}

/* st: app.wasm as written. */
static void save_app_record(cvx_server_t *s, const struct stat *st, cvx_app_t *app) {
    char path[4200], tail[128];
    cvx_buf_t line = {0};
    cvx_module_t *const *mods;
    size_t n = cvx_app_modules(app, &mods);
    for (size_t i = 0; i < n; i++) {
        if (i) cvx_buf_append_char(&line, '+');
        cvx_buf_append_str(&line, cvx_module_hash(mods[i]));
    }
    app_record_tail(st, tail, sizeof tail);
    cvx_buf_append_str(&line, tail);
    app_record_path(s, path, sizeof path);
    cvx_err_t ignored;
    if (line.oom || cvx_write_file_private(path, line.data, line.len, &ignored)) unlink(path);
    cvx_buf_free(&line);
}

/* The recorded hashes if the record still describes app.wasm (st): up to
 * CVX_APP_MAX_MODULES of them into hashes[], their count in *n. */
static bool read_app_record(const cvx_server_t *s, const struct stat *st, char hashes[][65], size_t *n) {
    char path[4200], want[128];
    app_record_path(s, path, sizeof path);
    cvx_make_private(path); /* written 0644 by an older cvx */
    app_record_tail(st, want, sizeof want);
    cvx_buf_t b = {0};
    cvx_err_t ignored;
    *n = 0;
    bool ok = cvx_read_file(path, &b, &ignored) == CVX_OK && b.len > strlen(want) &&
              strcmp(b.data + b.len - strlen(want), want) == 0;
    size_t len = ok ? b.len - strlen(want) : 0;
    for (size_t off = 0; ok && off < len; off += 65) {
        ok = *n < CVX_APP_MAX_MODULES && len - off >= 64 && (off + 64 == len || b.data[off + 64] == '+');
        for (size_t i = 0; ok && i < 64; i++) ok = strchr("0123456789abcdef", b.data[off + i]) != NULL;
        if (ok) {
            memcpy(hashes[*n], b.data + off, 64);
            hashes[(*n)++][64] = '\0';
        }
    }
    cvx_buf_free(&b);
    return ok && *n > 0;
}

/* The modules a body or a saved app holds. */
typedef struct {
    cvx_app_source_t srcs[2];
    size_t n;
    cvx_pkg_entry_t *entries;
    cvx_buf_t js; /* a JavaScript module built from a bundle */
    bool built;   /* js was built now (the saved app needs it) */
} modules_t;

static void modules_free(modules_t *m) {
    cvx_free(m->entries);
    cvx_buf_free(&m->js);
}

static int env_read_txn(void *ctx, int (*fn)(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err), void *arg,
                        cvx_buf_t *out, cvx_err_t *err) {
    return cvx_exec_with_read_txn(ctx, fn, arg, out, err);
}

/* Splits `body` into modules, building the JavaScript one from a bundle;
 * hashes[] (may be NULL) vouch for the modules' bytes, in order. Console
 * lines of the bundle's top level go to `logs` (a JSON array). */
static int unpack(cvx_server_t *s, const uint8_t *body, size_t len, char hashes[][65], size_t nhashes, modules_t *m,
                  cvx_buf_t *logs, cvx_err_t *err) {
    memset(m, 0, sizeof *m);
    if (!cvx_pkg_is(body, len)) {
        m->srcs[m->n++] = (cvx_app_source_t){body, len, nhashes == 1 ? hashes[0] : NULL, "module"};
        return CVX_OK;
    }
    size_t count;
    int rc = cvx_pkg_parse(body, len, &m->entries, &count, err);
    if (rc) return rc;
    const cvx_pkg_entry_t *rust = cvx_pkg_find(m->entries, count, "rust.wasm");
    const cvx_pkg_entry_t *built = cvx_pkg_find(m->entries, count, "js.wasm");
    const cvx_pkg_entry_t *bundle = cvx_pkg_find(m->entries, count, "js/bundle.js");
    const cvx_pkg_entry_t *map = cvx_pkg_find(m->entries, count, "js/bundle.js.map");
    if (built && bundle) return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "an app package holds js.wasm or js/bundle.js, not both");
    if (!rust && !built && !bundle)
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "the app package has neither rust.wasm nor js/bundle.js: nothing to deploy");
    if (rust) m->srcs[m->n++] = (cvx_app_source_t){rust->data, rust->len, NULL, RUST_LABEL};
    if (bundle) {
        const cvx_exec_limits_t *l = cvx_runtime_limits(s->rt);
        cvx_limits_t lim = {l->fuel[CVX_KIND_QUERY], l->memory_bytes[CVX_KIND_QUERY], l->timeout_ms[CVX_KIND_QUERY]};
        /* convex/auth.config.ts reads the deployment's variables. */
        cvx_abi_services_t env = {.ctx = s->rt, .with_read_txn = env_read_txn};
        cvx_js_source_t src = {(const char *)bundle->data, bundle->len, map ? (const char *)map->data : NULL,
                               map ? map->len : 0, &env};
        rc = cvx_js_build(s->engine, &src, &lim, &m->js, logs, err);
        if (rc) return rc;
        m->built = true;
        m->srcs[m->n++] = (cvx_app_source_t){(const uint8_t *)m->js.data, m->js.len, NULL, JS_LABEL};
    } else if (built) {
        m->srcs[m->n++] = (cvx_app_source_t){built->data, built->len, NULL, JS_LABEL};
    }
    for (size_t i = 0; i < m->n && nhashes == m->n; i++) m->srcs[i].sha256_hex = hashes[i];
    return CVX_OK;
}

/* Writes what a restart must load: the body itself when it needs no
 * building, else a package of the built modules. */
static void save_app(cvx_server_t *s, const uint8_t *body, size_t len, const modules_t *m, cvx_app_t *app) {
    char path[4200];
    snprintf(path, sizeof path, "%s/app.wasm", s->data_dir);
    cvx_buf_t pkg = {0};
    if (m->built) {
        cvx_pkg_begin(&pkg, (uint32_t)m->n);
        for (size_t i = 0; i < m->n; i++)
            cvx_pkg_add(&pkg, strcmp(m->srcs[i].label, JS_LABEL) == 0 ? "js.wasm" : "rust.wasm", m->srcs[i].wasm,
                        m->srcs[i].len);
        body = (const uint8_t *)pkg.data;
        len = pkg.len;
    }
    cvx_err_t werr;
    struct stat st;
    if (pkg.oom) fprintf(s->log, "cvx: warning: deployed, but could not save the app: out of memory\n");
    else if (cvx_write_file_private(path, body, len, &werr))
        fprintf(s->log, "cvx: warning: deployed, but could not save the app: %s\n", werr.msg);
    else if (stat(path, &st) == 0)
        save_app_record(s, &st, app);
    cvx_buf_free(&pkg);
}

static int deploy_now(cvx_server_t *s, const uint8_t *body, size_t len, cvx_buf_t *summary, cvx_err_t *err) {
    cvx_app_t *app = NULL;
    uint64_t t0 = cvx_monotonic_ns();
    modules_t m;
    cvx_buf_t logs = {0};
    int rc = unpack(s, body, len, NULL, 0, &m, &logs, err);
    if (!rc) rc = cvx_app_load_modules(s->engine, m.srcs, m.n, &app, err);
    /* Providers are checked before the code goes live (a variable they
     * name may be unset), and set once it has. */
    cvx_auth_t *check = NULL;
    cvx_buf_t off = {0};
    if (!rc) rc = cvx_auth_new(NULL, &check, err);
    if (!rc && (rc = cvx__auth_apply(s, app, check, &off, err))) cvx_err_prefix(err, "auth");
    cvx_auth_free(check);
    if (!rc) rc = cvx_runtime_deploy(s->rt, app, NULL, NULL, err);
    if (!rc && cvx__auth_apply(s, app, NULL, NULL, err))
        fprintf(s->log, "cvx: warning: the app's auth providers were not changed: %s\n", err->msg);
    /* A provider that is off is news for whoever deploys. */
    if (!rc && off.len) {
        fprintf(s->log, "cvx: warning: %s\n", off.data);
        cvx_buf_t line = {0};
        cvx_buf_printf(&line, "[WARN] %s", off.data);
        if (logs.len > 2) logs.data[--logs.len] = ',';
        else cvx_buf_reset(&logs), cvx_buf_append_char(&logs, '[');
        cvx_buf_append_json_string(&logs, line.data, line.len);
        cvx_buf_append_char(&logs, ']');
        cvx_buf_free(&line);
    }
    cvx_buf_free(&off);
    if (!rc && s->sync) cvx_sync_code_changed(s->sync);
    if (!rc) {
        save_app(s, body, len, &m, app);
        const cvx_fn_t *fns;
        size_t n = cvx_app_functions(app, &fns);
        if (summary) {
            cvx_buf_printf(summary, "{\"functions\":%zu,\"hash\":\"%s\",\"generation\":%llu,\"ms\":%.1f", n,
                           cvx_app_hash(app), (unsigned long long)cvx_runtime_generation(s->rt),
                           (double)(cvx_monotonic_ns() - t0) / 1e6);
            if (logs.len > 2) {
                cvx_buf_append_str(summary, ",\"logs\":");
                cvx_buf_append(summary, logs.data, logs.len);
            }
            cvx_buf_append_char(summary, '}');
        }
    }
    modules_free(&m);
    cvx_buf_free(&logs);
    cvx_app_release(app);
#ifdef __GLIBC__
    /* Compiling a module churns megabytes through whichever worker's malloc
     * arena ran the deploy; give the freed pages of every arena back (100
     * deploys under load: +14% resident without this, within a few percent
     * with it; tests/e2e/deploy.test.js). Deploys are rare, this is cheap. */
    malloc_trim(0);
#endif
    return rc;
}

typedef struct {
    cvx_server_t *s;
    const uint8_t *body;
    size_t len;
    cvx_buf_t *summary;
    cvx_err_t *err;
    int rc;
} deploy_arg_t;

static void *deploy_main(void *p) {
    deploy_arg_t *a = p;
    a->rc = deploy_now(a->s, a->body, a->len, a->summary, a->err);
    return NULL;
}

int cvx_server_deploy(cvx_server_t *s, const uint8_t *body, size_t len, cvx_buf_t *summary, cvx_err_t *err) {
    pthread_mutex_lock(&s->deploy_mu);
    /* On a short-lived thread of its own: glibc hands a new thread the
     * malloc arena an exited one left behind, so the megabytes a module
     * load churns through land in the same arena every time instead of
     * fragmenting each worker's in turn (resident memory over 100 deploys
     * under load: tests/e2e/deploy.test.js). */
    deploy_arg_t a = {s, body, len, summary, err, CVX_OK};
    pthread_t t;
    if (pthread_create(&t, NULL, deploy_main, &a) == 0) pthread_join(t, NULL);
    else deploy_main(&a);
    pthread_mutex_unlock(&s->deploy_mu);
    return a.rc;
}

void cvx__load_saved_app(cvx_server_t *s) {
    char path[4200], hashes[CVX_APP_MAX_MODULES][65];
    snprintf(path, sizeof path, "%s/app.wasm", s->data_dir);
    cvx_make_private(path); /* written 0644 by an older cvx */
    struct stat st;
    if (stat(path, &st) != 0) return;
    size_t nhashes = 0;
    bool known = read_app_record(s, &st, hashes, &nhashes);
    const uint8_t *bytes = NULL;
    size_t len = 0;
    cvx_err_t e2;
    cvx_app_t *app = NULL;
    modules_t m;
    memset(&m, 0, sizeof m);
    /* Mapped, not read: with the compiled module cached, only its headers
     * and custom sections are touched. */
    if (cvx_map_file(path, &bytes, &len, &e2) || unpack(s, bytes, len, known ? hashes : NULL, known ? nhashes : 0, &m, NULL, &e2) ||
        cvx_app_load_modules(s->engine, m.srcs, m.n, &app, &e2) || cvx_runtime_deploy(s->rt, app, NULL, NULL, &e2))
        fprintf(s->log, "cvx: warning: the saved app %s was not loaded: %s\n", path, e2.msg);
    else if (!known)
        save_app_record(s, &st, app);
    if (app && cvx__auth_apply(s, app, NULL, NULL, &e2))
        fprintf(s->log, "cvx: warning: user tokens are refused until this is fixed: auth: %s\n", e2.msg);
    modules_free(&m);
    cvx_app_release(app);
    if (bytes) cvx_unmap_file(bytes, len);
}
