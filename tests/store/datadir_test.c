/*
 * store: the files of a store's directory are the user's alone. A fresh
 * directory is made 0700 and the database, its -wal and -shm 0600 whatever
 * the umask; a directory an older cvx left 0755 with 0644 files is
 * tightened when the store opens it, and its data is still there.
 */
#include "support/testutil.h"

#include "store/store_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* An empty file of `mode`, as a crashed older cvx may leave a -wal or
 * -shm behind. */
static void leftover(const char *dir, const char *name, unsigned mode) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
    tu_chmod(dir, name, mode);
}

static cvx_store_t *open_store(const char *dir) {
    cvx_store_t *s = NULL;
    cvx_err_t err;
    if (cvx_store_open(dir, NULL, &s, &err)) fail_msg("open %s: %s", dir, err.msg);
    return s;
}

static void put_doc(cvx_store_t *s, const char *json) {
    cvx_arena_t *a = cvx_arena_new(1024);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    assert_int_equal(cvx_json_parse(a, json, strlen(json), &v, &err), CVX_OK);
    cvx_txn_t *t = NULL;
    assert_int_equal(cvx_txn_begin(s, CVX_TXN_WRITE, 0, &t, &err), CVX_OK);
    cvx_buf_t out = {0};
    if (cvx_txn_insert(t, "things", 6, v, &out, &err)) fail_msg("insert: %s", err.msg);
    uint64_t ts;
    if (cvx_txn_commit(t, &ts, &err)) fail_msg("commit: %s", err.msg);
    cvx_buf_free(&out);
    cvx_arena_free(a);
}

static uint64_t count_docs(cvx_store_t *s) {
    cvx_txn_t *t = NULL;
    cvx_err_t err;
    assert_int_equal(cvx_txn_begin(s, CVX_TXN_READ, 0, &t, &err), CVX_OK);
    cvx_query_t q = {.table = "things", .limit = -1};
    uint64_t n = 0;
    assert_int_equal(cvx_txn_count(t, &q, &n, &err), CVX_OK);
    cvx_txn_abort(t);
    return n;
}

/* A store opened in a directory that does not exist yet, under the usual
 * umask (which would give 0755 and 0644): the directory is 0700, and the
 * database, WAL and shared memory 0600 while the store runs. */
static void test_fresh_directory_is_private(void **state) {
    (void)state;
    mode_t old = umask(022);
    char *base = tu_tmpdir("datadir");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data", base);
    cvx_store_t *s = open_store(dir);
    put_doc(s, "{\"a\":1}");
    assert_int_equal(tu_mode_of(dir, ""), 0700);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3"), 0600);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3-wal"), 0600);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3-shm"), 0600);
    cvx_store_close(s);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3"), 0600);
    /* Parents the store had to create are not its business. */
    snprintf(dir, sizeof dir, "%s/a/b", base);
    s = open_store(dir);
    cvx_store_close(s);
    assert_int_equal(tu_mode_of(base, "a/b"), 0700);
    assert_int_equal(tu_mode_of(base, "a"), 0755);
    umask(old);
    tu_rmrf(base);
    free(base);
}

/* The layout an older cvx left: directory 0755, database 0644, and a
 * -wal and -shm of a crash. Opening it tightens all of them; the data is
 * untouched. */
static void test_old_layout_is_tightened(void **state) {
    (void)state;
    mode_t old = umask(022);
    char *dir = tu_tmpdir("datadir");
    cvx_store_t *s = open_store(dir);
    put_doc(s, "{\"a\":1}");
    put_doc(s, "{\"a\":2}");
    cvx_store_close(s);
    tu_chmod(dir, "", 0755);
    tu_chmod(dir, "cvx.sqlite3", 0644);
    leftover(dir, "cvx.sqlite3-wal", 0644);
    leftover(dir, "cvx.sqlite3-shm", 0644);
    s = open_store(dir);
    assert_int_equal(tu_mode_of(dir, ""), 0700);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3"), 0600);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3-wal"), 0600);
    assert_int_equal(tu_mode_of(dir, "cvx.sqlite3-shm"), 0600);
    assert_int_equal(count_docs(s), 2);
    put_doc(s, "{\"a\":3}");
    assert_int_equal(count_docs(s), 3);
    cvx_store_close(s);
    umask(old);
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_directory_is_private),
        cmocka_unit_test(test_old_layout_is_tightened),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
