/*
 * store: the SQLite WAL stays bounded. A reader that keeps its snapshot
 * (as steady read load always has one) stops PASSIVE checkpoints from
 * resetting the WAL, which then grows past the bound; once such readers
 * are gone, one checkpoint round of the store brings the file back to at
 * most the bound (CVX__WAL_LIMIT_BYTES), every commit still there after a
 * reopen. While the reader stays, the round gives up in bounded time and
 * commits go on.
 */
#include "support/testutil.h"

#include "store/store_int.h"

#include <sqlite3.h>
#include <sys/stat.h>

static long long wal_bytes(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cvx.sqlite3-wal", dir);
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* Commits `ndocs` documents of about `bytes` each in one transaction. */
static void put_docs(cvx_store_t *s, int ndocs, size_t bytes, int seq) {
    cvx_buf_t json = {0};
    cvx_buf_printf(&json, "{\"seq\":%d,\"pad\":\"", seq);
    for (size_t i = 0; i < bytes; i++) cvx_buf_append_char(&json, (char)('a' + (i * 7 + (size_t)seq) % 26));
    cvx_buf_append_str(&json, "\"}");
    assert_false(json.oom);
    cvx_arena_t *a = cvx_arena_new(bytes + 1024);
    cvx_value_t *v = NULL;
    cvx_err_t err;
    assert_int_equal(cvx_json_parse(a, json.data, json.len, &v, &err), CVX_OK);
    cvx_txn_t *t = NULL;
    assert_int_equal(cvx_txn_begin(s, CVX_TXN_WRITE, 0, &t, &err), CVX_OK);
    cvx_buf_t out = {0};
    for (int i = 0; i < ndocs; i++)
        if (cvx_txn_insert(t, "blobs", 5, v, &out, &err)) fail_msg("insert: %s", err.msg);
    uint64_t ts;
    if (cvx_txn_commit(t, &ts, &err)) fail_msg("commit: %s", err.msg);
    cvx_buf_free(&out);
    cvx_buf_free(&json);
    cvx_arena_free(a);
}

/* Document revisions in the database (each insert is one), counted by
 * SQLite: reading them through the store would read 80 MB. */
static int64_t count_rows(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cvx.sqlite3", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM cvx_documents", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_wal_bounded_after_checkpoint(void **state) {
    (void)state;
    char *dir = tu_tmpdir("wal");
    cvx_store_t *s = NULL;
    cvx_err_t err;
    if (cvx_store_open(dir, NULL, &s, &err)) fail_msg("open: %s", err.msg);
    put_docs(s, 1, 100, 0);
    int64_t docs = 1;

    /* A reader in the middle of a read transaction, on its own
     * connection: its snapshot pins the WAL. */
    char db_path[4096];
    snprintf(db_path, sizeof db_path, "%s/cvx.sqlite3", dir);
    sqlite3 *rd = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM cvx_documents;", NULL, NULL, NULL), SQLITE_OK);

    /* About 4 MB of WAL a commit, until it is past the bound. */
    const long long bound = CVX__WAL_LIMIT_BYTES;
    int seq = 1;
    while (wal_bytes(dir) <= bound + (2ll << 20)) {
        if (seq > 100) fail_msg("the WAL stayed at %lld bytes", wal_bytes(dir));
        put_docs(s, 16, 250 * 1024, seq++);
        docs += 16;
    }
    assert_true(wal_bytes(dir) > bound);

    /* While the reader holds on, a round cannot reset the WAL: it gives
     * up instead of holding commits for long, and commits go on. */
    uint64_t t0 = cvx_monotonic_ns();
    cvx__store_checkpoint(s);
    assert_true(cvx_monotonic_ns() - t0 < 5000000000ull);
    assert_true(wal_bytes(dir) > bound);
    put_docs(s, 1, 100, seq++);
    docs++;

    /* The reader is done: the next round brings the WAL within bounds at
     * once, even with no commit after it. */
    assert_int_equal(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(rd);
    cvx__store_checkpoint(s);
    assert_true(wal_bytes(dir) <= bound);

    /* And stays there as writes go on; nothing was lost. */
    put_docs(s, 4, 200 * 1024, seq++);
    docs += 4;
    assert_true(wal_bytes(dir) <= bound);
    assert_int_equal(count_rows(dir), docs);
    cvx_store_close(s);
    if (cvx_store_open(dir, NULL, &s, &err)) fail_msg("reopen: %s", err.msg);
    assert_int_equal(count_rows(dir), docs);
    cvx_store_close(s);
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wal_bounded_after_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
