/* See testutil.h. */
#define _GNU_SOURCE
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

char *tu_tmpdir(const char *tag) {
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/cvx-test-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    if (!d) fail_msg("mkdtemp failed");
    return strdup(d);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

void tu_rmrf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

const char *tu_guest_wasm(const char *name) {
    static char paths[8][4096];
    static char names[8][256];
    for (int i = 0; i < 8; i++)
        if (strcmp(names[i], name) == 0) return paths[i];
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", CVX_TEST_SOURCE_DIR, name);
    /* One target dir for every test binary: std is built once. */
    char target[4096];
    snprintf(target, sizeof target, "%s/guest-target", CVX_TEST_BINARY_DIR);
    setenv("CARGO_TARGET_DIR", target, 0);
    cvx_buf_t out = {0};
    cvx_err_t err;
    cvx_build_opts_t o = {.quiet = true, .release = true};
    if (cvx_build_crate(dir, &o, &out, &err)) fail_msg("building %s: %s", dir, err.msg);
    for (int i = 0; i < 8; i++) {
        if (names[i][0]) continue;
        snprintf(names[i], sizeof names[i], "%s", name);
        snprintf(paths[i], sizeof paths[i], "%s", out.data);
        cvx_buf_free(&out);
        return paths[i];
    }
    fail_msg("too many guest crates");
    return NULL;
}

void tu_read(const char *path, cvx_buf_t *out) {
    cvx_err_t err;
    if (cvx_read_file(path, out, &err)) fail_msg("%s", err.msg);
}

cvx_engine_t *tu_engine(const char *cache_dir) {
    cvx_engine_config_t cfg;
    cvx_engine_config_default(&cfg);
    cfg.cache_dir = cache_dir;
    cvx_engine_t *e;
    cvx_err_t err;
    if (cvx_engine_new(&cfg, &e, &err)) fail_msg("engine: %s", err.msg);
    if (cvx_abi_register(e, &err)) fail_msg("abi: %s", err.msg);
    return e;
}

static void open_store(tu_env_t *env, const cvx_exec_limits_t *limits) {
    cvx_err_t err;
    cvx_store_config_t scfg;
    cvx_store_config_default(&scfg);
    if (cvx_store_open(env->dir, &scfg, &env->store, &err)) fail_msg("store: %s", err.msg);
    cvx_runtime_config_t rc = {.engine = env->engine, .store = env->store};
    if (limits) rc.limits = *limits;
    else cvx_exec_limits_default(&rc.limits);
    if (cvx_runtime_new(&rc, &env->rt, &err)) fail_msg("runtime: %s", err.msg);
    if (cvx_runtime_deploy(env->rt, env->app, NULL, NULL, &err)) fail_msg("deploy: %s", err.msg);
}

void tu_env_open(tu_env_t *env, const char *wasm_path, const cvx_exec_limits_t *limits) {
    memset(env, 0, sizeof *env);
    env->dir = tu_tmpdir("env");
    env->engine = tu_engine(NULL);
    cvx_buf_t bytes = {0};
    tu_read(wasm_path, &bytes);
    cvx_err_t err;
    if (cvx_app_load(env->engine, (const uint8_t *)bytes.data, bytes.len, &env->app, &err))
        fail_msg("load %s: %s", wasm_path, err.msg);
    cvx_buf_free(&bytes);
    open_store(env, limits);
}

void tu_env_reopen(tu_env_t *env) {
    cvx_exec_limits_t limits = *cvx_runtime_limits(env->rt);
    cvx_runtime_free(env->rt);
    cvx_store_close(env->store);
    open_store(env, &limits);
}

void tu_env_close(tu_env_t *env, bool remove_dir) {
    cvx_runtime_free(env->rt);
    cvx_store_close(env->store);
    cvx_app_release(env->app);
    cvx_engine_free(env->engine);
    if (remove_dir) tu_rmrf(env->dir);
    free(env->dir);
    memset(env, 0, sizeof *env);
}

int tu_call(tu_env_t *env, const char *path, const char *args, cvx_response_t *resp) {
    memset(resp, 0, sizeof *resp);
    cvx_request_t req = {.path = path, .args_json = args, .args_len = args ? strlen(args) : 0, .allow_internal = true};
    return cvx_exec_call(env->rt, &req, resp);
}

char *tu_call_ok(tu_env_t *env, const char *path, const char *args) {
    cvx_response_t resp;
    int rc = tu_call(env, path, args, &resp);
    if (rc != CVX_OK)
        fail_msg("%s(%s) failed: %s: %s", path, args ? args : "", cvx_code_name(rc),
                 resp.r.message.data ? resp.r.message.data : "");
    char *v = strdup(resp.r.value.data ? resp.r.value.data : "");
    cvx_response_free(&resp);
    return v;
}

int tu_sh(cvx_buf_t *out, bool merge, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8300];
    snprintf(full, sizeof full, "%s%s", cmd, merge ? " 2>&1" : "");
    FILE *p = popen(full, "r");
    if (!p) fail_msg("popen failed");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        if (out) cvx_buf_append(out, buf, n);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

unsigned tu_mode_of(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", dir, name[0] ? "/" : "", name);
    struct stat st;
    if (stat(path, &st) != 0) fail_msg("cannot stat %s", path);
    return (unsigned)(st.st_mode & 07777);
}

void tu_chmod(const char *dir, const char *name, unsigned mode) {
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", dir, name[0] ? "/" : "", name);
    if (chmod(path, (mode_t)mode) != 0) fail_msg("cannot chmod %s", path);
}
