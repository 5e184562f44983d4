/*
 * exec: crash safety. A child process writes pairs (`fixture:pair_write`:
 * two documents with the same k in one mutation) with increasing k and
 * reports every acknowledged k to the parent over a pipe, written only
 * after cvx_exec_call returned OK. The parent SIGKILLs it at a random
 * moment (seeded, 20..300 ms after it is ready), reopens the store, and
 * checks that every acknowledged k has both halves and that no k has only
 * one. Repeated on the same data directory: after every crash the store
 * opens and keeps accepting writes.
 *
 * SIGKILL alone keeps what the child wrote in the page cache, so it would
 * pass without any sync at all. A power cut keeps only what a sync reached:
 * the child's fdatasync/fsync (interposed below, over the real system
 * call) records how much of the WAL each one covered, and before reopening
 * the parent cuts the WAL back to that length. Within a round the WAL only
 * grows (the parent's close checkpoints and truncates it, and a child
 * writes far less than the checkpoint threshold after which SQLite would
 * reuse it from the start; were it to, the cut would only drop less), so
 * every byte past that length is one no sync covered.
 *
 * The parent never runs wasm (it reads the store through the C API), so it
 * is single-threaded when it forks; the child builds its own engine (with a
 * module cache shared across children, so only the first one compiles).
 */
#include "support/testutil.h"
#include "support/tu_signals.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 40
#define READY UINT64_MAX

/* ---- what a power cut would keep ---------------------------------------------- */

/* Shared with the children: the WAL length the syncs of it so far covered
 * (NULL: not recording). */
static _Atomic uint64_t *g_wal_synced;

static bool is_wal(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path);
    return n > 4 && memcmp(path + n - 4, "-wal", 4) == 0;
}

/* Everything written before a sync starts is on disk when it returns, so
 * the length taken before the call is what it made durable. */
static int synced(int fd, long nr) {
    struct stat st;
    bool wal = g_wal_synced && is_wal(fd) && fstat(fd, &st) == 0;
    long rc = syscall(nr, fd);
    if (rc == 0 && wal) {
        uint64_t len = (uint64_t)st.st_size, cur = atomic_load(g_wal_synced);
        while (cur < len && !atomic_compare_exchange_weak(g_wal_synced, &cur, len)) {
        }
    }
    return (int)rc;
}

int fdatasync(int fd) { return synced(fd, SYS_fdatasync); }
int fsync(int fd) { return synced(fd, SYS_fsync); }

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- the child --------------------------------------------------------------- */

static void die(const char *what, const cvx_err_t *err) {
    fprintf(stderr, "crash_test child: %s: %s\n", what, err ? err->msg : "");
    _exit(3);
}

static void write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(5); /* the parent is gone */
        c += w;
        n -= (size_t)w;
    }
}

/* Never returns. */
static void child(const char *dir, const char *wasm_path, const char *cache_dir, uint64_t k, int fd) {
    cvx_err_t err;
    cvx_engine_config_t ecfg;
    cvx_engine_config_default(&ecfg);
    ecfg.cache_dir = cache_dir;
    cvx_engine_t *engine;
    if (cvx_engine_new(&ecfg, &engine, &err)) die("engine", &err);
    if (cvx_abi_register(engine, &err)) die("abi", &err);
    cvx_buf_t bytes = {0};
    if (cvx_read_file(wasm_path, &bytes, &err)) die("read", &err);
    cvx_app_t *app;
    if (cvx_app_load(engine, (const uint8_t *)bytes.data, bytes.len, &app, &err)) die("load", &err);
    cvx_store_t *store;
    if (cvx_store_open(dir, NULL, &store, &err)) die("store", &err);
    cvx_runtime_config_t rcfg = {.engine = engine, .store = store};
    cvx_exec_limits_default(&rcfg.limits);
    cvx_runtime_t *rt;
    if (cvx_runtime_new(&rcfg, &rt, &err)) die("runtime", &err);
    if (cvx_runtime_deploy(rt, app, NULL, NULL, &err)) die("deploy", &err);
    uint64_t ready = READY;
    write_all(fd, &ready, sizeof ready);
    for (;; k++) {
        char args[64];
        snprintf(args, sizeof args, "{\"k\":%llu}", (unsigned long long)k);
        cvx_request_t req = {.path = "fixture:pair_write", .args_json = args, .args_len = strlen(args)};
        cvx_response_t resp;
        memset(&resp, 0, sizeof resp);
        int rc = cvx_exec_call(rt, &req, &resp);
        if (rc != CVX_OK) {
            fprintf(stderr, "crash_test child: pair_write %llu: %s: %s\n", (unsigned long long)k, cvx_code_name(rc),
                    resp.r.message.data ? resp.r.message.data : "");
            _exit(4);
        }
        cvx_response_free(&resp);
        write_all(fd, &k, sizeof k); /* acknowledged: committed and durable */
    }
}

/* ---- the parent -------------------------------------------------------------- */

/* Reads whole uint64 records from fd until `deadline_ns` (0: until EOF),
 * or until the child's READY record arrived (once). Returns false on EOF. */
typedef struct {
    uint8_t partial[8];
    size_t npartial;
    uint64_t *acked;
    size_t nacked, cap;
    bool ready, started;
} reader_t;

static bool pump(reader_t *r, int fd, uint64_t deadline_ns) {
    for (;;) {
        int timeout = -1;
        if (deadline_ns) {
            uint64_t now = cvx_monotonic_ns();
            if (now >= deadline_ns) return true;
            timeout = (int)((deadline_ns - now + 999999) / 1000000);
        }
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, timeout);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        uint8_t buf[4096];
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        for (ssize_t i = 0; i < got; i++) {
            r->partial[r->npartial++] = buf[i];
            if (r->npartial < 8) continue;
            uint64_t v;
            memcpy(&v, r->partial, 8);
            r->npartial = 0;
            if (v == READY) {
                r->ready = true;
                continue;
            }
            if (r->nacked == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 1024;
                r->acked = realloc(r->acked, r->cap * sizeof *r->acked);
            }
            r->acked[r->nacked++] = v;
        }
        if (deadline_ns && r->ready && !r->started) {
            r->started = true; /* the caller starts its clock now */
            return true;
        }
    }
}

typedef struct {
    uint64_t max_k;
    size_t pairs;
    uint64_t latest_ts;
} check_t;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Opens the store after a crash and checks every pair. */
static check_t verify(const char *dir, const uint64_t *acked, size_t nacked) {
    cvx_store_t *s;
    cvx_err_t err;
    cvx_store_config_t cfg;
    cvx_store_config_default(&cfg);
    cfg.max_docs_read = cfg.max_bytes_read = UINT64_MAX; /* reads every pair in one snapshot */
    if (cvx_store_open(dir, &cfg, &s, &err)) fail_msg("reopen after crash: %s", err.msg);
    cvx_txn_t *t;
    if (cvx_txn_begin(s, CVX_TXN_READ, 0, &t, &err)) fail_msg("%s", err.msg);
    check_t c = {0, 0, cvx_store_latest_ts(s)};
    /* Every pair document in by_k order (the halves of a pair are
     * adjacent), page by page in one snapshot. */
    size_t n = 0, cap = 1024;
    uint64_t *ks = malloc(cap * sizeof *ks);
    char *sides = malloc(cap);
    cvx_query_t q = {.table = "pairs", .index = "by_k", .limit = 4096};
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    char *cursor = NULL;
    for (;;) {
        cvx_buf_t out = {0};
        if (cvx_txn_query(t, &q, &out, &err)) fail_msg("query pairs: %s", err.msg);
        cvx_arena_reset(a);
        cvx_value_t *v;
        if (cvx_json_parse(a, out.data, out.len, &v, &err)) fail_msg("%s", err.msg);
        cvx_buf_free(&out);
        const cvx_value_t *page = cvx_obj_get_cstr(v, "page");
        for (size_t i = 0; i < page->u.arr.len; i++) {
            if (n == cap) {
                cap *= 2;
                ks = realloc(ks, cap * sizeof *ks);
                sides = realloc(sides, cap);
            }
            const cvx_value_t *d = page->u.arr.items[i];
            ks[n] = (uint64_t)cvx_obj_get_cstr(d, "k")->u.f;
            sides[n++] = cvx_obj_get_cstr(d, "side")->u.str.ptr[0];
        }
        if (cvx_obj_get_cstr(v, "isDone")->u.b) break;
        const cvx_value_t *cur = cvx_obj_get_cstr(v, "continueCursor");
        free(cursor);
        cursor = strndup(cur->u.str.ptr, cur->u.str.len);
        q.cursor = cursor;
    }
    free(cursor);
    cvx_txn_abort(t);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        bool sa = false, sb = false;
        while (j < n && ks[j] == ks[i]) {
            if (sides[j] == 'a') sa = true;
            else if (sides[j] == 'b') sb = true;
            j++;
        }
        if (j - i != 2 || !sa || !sb)
            fail_msg("pair %llu has %zu documents (a: %d, b: %d): a torn write", (unsigned long long)ks[i], j - i, sa,
                     sb);
        c.pairs++;
        if (ks[i] > c.max_k) c.max_k = ks[i];
        i = j;
    }
    /* Every acknowledged k is there (both halves, checked above). */
    for (size_t i = 0; i < nacked; i++) {
        if (!bsearch(&acked[i], ks, n, sizeof *ks, cmp_u64))
            fail_msg("acknowledged pair %llu is missing after the crash", (unsigned long long)acked[i]);
    }
    free(ks);
    free(sides);
    cvx_arena_free(a);
    cvx_store_close(s);
    return c;
}

static void test_kill_while_writing(void **state) {
    const char *wasm = tu_guest_wasm("tests/fixtures/guest");
    char *dir = tu_tmpdir("crash");
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/module-cache", dir);
    char data[4200];
    snprintf(data, sizeof data, "%s/data", dir);
    char wal[4300];
    snprintf(wal, sizeof wal, "%s/cvx.sqlite3-wal", data);
    g_wal_synced = mmap(NULL, sizeof *g_wal_synced, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(g_wal_synced != MAP_FAILED);
    unsigned seed = 20261124;
    if (getenv("CVX_CRASH_SEED")) seed = (unsigned)strtoul(getenv("CVX_CRASH_SEED"), NULL, 10);
    print_message("seed %u (CVX_CRASH_SEED to repeat)\n", seed);

    uint64_t next_k = 1, last_ts = 0;
    size_t total_acked = 0, unacked_committed = 0, cut_rounds = 0;
    uint64_t cut_bytes = 0;
    uint64_t t_start = cvx_monotonic_ns();
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        /* The parent's close checkpointed the WAL with syncs: all of it
         * (usually nothing) is on disk. */
        atomic_store(g_wal_synced, file_size(wal));
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(data, wasm, cache, next_k, fds[1]);
        }
        close(fds[1]);
        reader_t r = {0};
        /* Wait for the child to be ready (the first compiles the module). */
        uint64_t ready_deadline = cvx_monotonic_ns() + 120ull * 1000000000ull;
        while (!r.ready && cvx_monotonic_ns() < ready_deadline)
            if (!pump(&r, fds[0], cvx_monotonic_ns() + 100000000ull)) break;
        if (!r.ready) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("round %d: the writer did not start", round);
        }
        unsigned delay_ms = 20 + (unsigned)(rand_r(&seed) % 281);
        bool alive = pump(&r, fds[0], cvx_monotonic_ns() + (uint64_t)delay_ms * 1000000ull);
        /* On a loaded machine the first write may take longer than the
         * delay: the kill waits for it, so that every round shows the store
         * accepting writes after the previous crash. */
        uint64_t first_deadline = cvx_monotonic_ns() + 60ull * 1000000000ull;
        while (alive && r.nacked == 0 && cvx_monotonic_ns() < first_deadline)
            alive = pump(&r, fds[0], cvx_monotonic_ns() + 1000000ull);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        while (pump(&r, fds[0], 0)) {
        }
        close(fds[0]);
        if (!alive || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("round %d: the writer died on its own (status %d)", round, status);
        uint64_t size = file_size(wal), durable = atomic_load(g_wal_synced);
        if (size > durable) {
            if (truncate(wal, (off_t)durable) != 0) fail_msg("truncate %s: %s", wal, strerror(errno));
            cut_bytes += size - durable;
            cut_rounds++;
        }

        /* The store kept accepting writes after the previous crash. */
        if (r.nacked == 0) fail_msg("round %d: no write acknowledged", round);
        qsort(r.acked, r.nacked, sizeof *r.acked, cmp_u64);
        check_t c = verify(data, r.acked, r.nacked);
        assert_true(r.acked[0] == next_k);
        assert_true(c.max_k >= r.acked[r.nacked - 1]);
        assert_true(c.latest_ts > last_ts);
        /* Nothing committed was lost: exactly the pairs 1..max_k. */
        assert_int_equal(c.pairs, c.max_k);
        unacked_committed += c.max_k - r.acked[r.nacked - 1];
        total_acked += r.nacked;
        last_ts = c.latest_ts;
        next_k = c.max_k + 1;
        free(r.acked);
    }
    double secs = (double)(cvx_monotonic_ns() - t_start) / 1e9;
    print_message("%d kills in %.1f s: %zu acknowledged pairs, %zu committed but not yet acknowledged, %llu pairs "
                  "in the store, none torn; unsynced WAL dropped in %zu rounds (%llu bytes)\n",
                  ROUNDS, secs, total_acked, unacked_committed, (unsigned long long)(next_k - 1), cut_rounds,
                  (unsigned long long)cut_bytes);
    munmap((void *)g_wal_synced, sizeof *g_wal_synced);
    g_wal_synced = NULL;
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_kill_while_writing),
    };
    return cmocka_run_group_tests_name("exec.crash", tests, NULL, NULL);
}
