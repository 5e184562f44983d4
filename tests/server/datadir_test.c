/* The server's data directory is the user's alone: the directory and the
 * ones in it 0700, every file the server writes 0600 (the admin key, the
 * database with its -wal and -shm, the saved app and its record, compiled
 * modules, stored files), whatever the umask. A directory an older cvx
 * left readable (0755 / 0644) is tightened at the next start. */
#include "support/testutil.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server.h"

static cvx_server_t *start(const char *dir) {
    cvx_server_config_t cfg;
    cvx_server_config_default(&cfg);
    cfg.data_dir = dir;
    cfg.port = 0;
    cfg.workers = 2;
    cfg.log = fopen("/dev/null", "w");
    cvx_server_t *srv = NULL;
    cvx_err_t err;
    if (cvx_server_start(&cfg, &srv, &err) != CVX_OK) fail_msg("server start: %s", err.msg);
    return srv;
}

/* Stores a file through the storage API, as ctx.storage.store does. */
static int put_blob(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    cvx_runtime_t *rt = arg;
    return cvx_storage_put(cvx_runtime_storage(rt), txn, "hello", 5, "text/plain", out, err);
}

/* Every file in dir/sub (one level) has `mode`; there is at least one. */
static void assert_files_mode(const char *dir, const char *sub, unsigned mode) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (tu_mode_of(path, e->d_name) != mode)
            fail_msg("%s/%s is %o, not %o", path, e->d_name, tu_mode_of(path, e->d_name), mode);
        n++;
    }
    closedir(d);
    assert_true(n > 0);
}

static void assert_private(const char *dir) {
    assert_int_equal(tu_mode_of(dir, ""), 0700);
    assert_int_equal(tu_mode_of(dir, "admin_key"), 0600);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3"), 0600);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3-wal"), 0600);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3-shm"), 0600);
    assert_int_equal(tu_mode_of(dir, "app.wasm"), 0600);
    assert_int_equal(tu_mode_of(dir, "app.wasm.sha256"), 0600);
    assert_int_equal(tu_mode_of(dir, "modules"), 0700);
    assert_int_equal(tu_mode_of(dir, "storage"), 0700);
}

static void test_data_dir_is_private(void **state) {
    (void)state;
    mode_t old = umask(022);
    char *base = tu_tmpdir("datadir");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/data", base);
    cvx_server_t *srv = start(dir);
    cvx_buf_t wasm = {0}, summary = {0}, id = {0};
    tu_read(tu_guest_wasm("examples/users"), &wasm);
    cvx_err_t err;
    if (cvx_server_deploy(srv, (const uint8_t *)wasm.data, wasm.len, &summary, &err) != CVX_OK)
        fail_msg("deploy: %s", err.msg);
    cvx_runtime_t *rt = cvx_server_runtime(srv);
    if (cvx_exec_with_txn(rt, put_blob, rt, &id, &err) != CVX_OK) fail_msg("storing a file: %s", err.msg);
    assert_private(dir);
    assert_files_mode(dir, "storage", 0600);
    assert_files_mode(dir, "modules", 0600);
    cvx_server_stop(srv);

    /* What an older cvx left: everything readable by everyone. */
    static const char *const files[] = {"cvx.sqlite3", "app.wasm", "app.wasm.sha256"};
    tu_chmod(dir, "", 0755);
    for (size_t i = 0; i < CVX_ARRAY_LEN(files); i++) tu_chmod(dir, files[i], 0644);
    tu_chmod(dir, "modules", 0755);
    tu_chmod(dir, "storage", 0755);
    srv = start(dir);
    assert_private(dir);
    cvx_server_stop(srv);

    cvx_buf_free(&wasm);
    cvx_buf_free(&summary);
    cvx_buf_free(&id);
    umask(old);
    tu_rmrf(base);
    free(base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_dir_is_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
