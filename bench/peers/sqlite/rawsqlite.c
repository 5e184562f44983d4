/*
 * rawsqlite — the storage limit: the bench workloads as plain C loops on
 * SQLite (the same libsqlite3 cvx links), one thread, prepared statements,
 * WAL with synchronous=FULL. No network, no JSON, no sandbox.
 *
 *   get        SELECT one user row by primary key, read every column
 *   range100   SELECT 100 users by the n index (ORDER BY n LIMIT 100)
 *   insert     one INSERT, its own durable transaction (one fsync each)
 *   insert64   64 INSERTs per durable transaction (perfect group commit)
 *   incr       BEGIN IMMEDIATE; SELECT counter by name; UPDATE; COMMIT
 *   transfer   BEGIN IMMEDIATE; 2 SELECTs by n; 2 UPDATEs; COMMIT
 *              (accounts picked uniformly, or Zipf with alpha)
 *
 * usage: rawsqlite DIR WORKLOAD [-d SECONDS] [-w WARMUP] [--alpha A] [--seed N]
 * Prints one JSON object: ops/s, per-operation latency percentiles (µs) and
 * this process's CPU time over the measurement window (cpu_s).
 */
#define _GNU_SOURCE
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define N_USERS 10000
#define N_ACCOUNTS 100000

static sqlite3 *db;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check(int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "rawsqlite: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void exec(const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "rawsqlite: %s: %s\n", sql, err);
        exit(1);
    }
}

static sqlite3_stmt *prep(const char *sql) {
    sqlite3_stmt *s;
    check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL), sql);
    return s;
}

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static double *zipf_cdf;
static long pick(long n) {
    if (!zipf_cdf) return (long)(rnd() % (uint64_t)n);
    double u = (double)(rnd() >> 11) / 9007199254740992.0;
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void id_of(long i, char out[33]) { snprintf(out, 33, "%016lx%016lx", (unsigned long)i * 2654435761u, (unsigned long)i); }

static void seed(void) {
    exec("CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, ct REAL NOT NULL, name TEXT, email TEXT, n REAL);"
         "CREATE INDEX IF NOT EXISTS users_by_n ON users (n, ct, id);"
         "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, ct REAL NOT NULL, kind TEXT, n REAL, payload TEXT);"
         "CREATE TABLE IF NOT EXISTS counters (id TEXT PRIMARY KEY, ct REAL NOT NULL, name TEXT, count REAL);"
         "CREATE INDEX IF NOT EXISTS counters_by_name ON counters (name, ct, id);"
         "CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, ct REAL NOT NULL, n REAL, balance REAL);"
         "CREATE INDEX IF NOT EXISTS accounts_by_n ON accounts (n, ct, id);");
    sqlite3_stmt *c = prep("SELECT count(*) FROM users");
    sqlite3_step(c);
    int have = sqlite3_column_int(c, 0);
    sqlite3_finalize(c);
    if (have) return;
    exec("BEGIN");
    sqlite3_stmt *u = prep("INSERT INTO users VALUES (?, ?, ?, ?, ?)");
    char id[33], name[64], email[64];
    for (long i = 0; i < N_USERS; i++) {
        id_of(i, id);
        snprintf(name, sizeof name, "user %ld", i);
        snprintf(email, sizeof email, "user%ld@example.com", i);
        sqlite3_bind_text(u, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(u, 2, 1.7e12 + (double)i);
        sqlite3_bind_text(u, 3, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(u, 4, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(u, 5, (double)i);
        check(sqlite3_step(u), "seed users");
        sqlite3_reset(u);
    }
    sqlite3_finalize(u);
    sqlite3_stmt *a = prep("INSERT INTO accounts VALUES (?, ?, ?, 10000000)");
    for (long i = 0; i < N_ACCOUNTS; i++) {
        id_of(1000000 + i, id);
        sqlite3_bind_text(a, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(a, 2, 1.7e12 + (double)i);
        sqlite3_bind_double(a, 3, (double)i);
        check(sqlite3_step(a), "seed accounts");
        sqlite3_reset(a);
    }
    sqlite3_finalize(a);
    exec("INSERT INTO counters VALUES ('c0', 0, 'c', 0)");
    exec("COMMIT");
}

static sqlite3_stmt *s_get, *s_range, *s_ins, *s_cget, *s_cset, *s_aget, *s_aset, *s_begin, *s_commit;
static long seqno;
static volatile double sink;

static void step_all(sqlite3_stmt *s) {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int n = sqlite3_column_count(s);
        for (int i = 0; i < n; i++) {
            const unsigned char *t = sqlite3_column_text(s, i);
            sink += t ? t[0] : 0;
        }
    }
    check(rc, "step");
    sqlite3_reset(s);
}

static void run1(sqlite3_stmt *s) {
    check(sqlite3_step(s), "step");
    sqlite3_reset(s);
}

static void insert_one(void) {
    char id[33];
    id_of(10000000 + seqno, id);
    sqlite3_bind_text(s_ins, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s_ins, 2, 1.8e12 + (double)seqno);
    sqlite3_bind_double(s_ins, 3, (double)seqno);
    seqno++;
    run1(s_ins);
}

static void op(const char *w) {
    if (!strcmp(w, "get")) {
        char id[33];
        id_of((long)(rnd() % N_USERS), id);
        sqlite3_bind_text(s_get, 1, id, -1, SQLITE_TRANSIENT);
        step_all(s_get);
    } else if (!strcmp(w, "range100")) {
        sqlite3_bind_double(s_range, 1, (double)(rnd() % (N_USERS - 100)));
        step_all(s_range);
    } else if (!strcmp(w, "insert")) {
        insert_one();
    } else if (!strcmp(w, "insert64")) {
        run1(s_begin);
        for (int i = 0; i < 64; i++) insert_one();
        run1(s_commit);
    } else if (!strcmp(w, "incr")) {
        run1(s_begin);
        sqlite3_bind_text(s_cget, 1, "c", -1, SQLITE_STATIC);
        check(sqlite3_step(s_cget), "incr");
        double v = sqlite3_column_double(s_cget, 1);
        char id[64];
        snprintf(id, sizeof id, "%s", (const char *)sqlite3_column_text(s_cget, 0));
        sqlite3_reset(s_cget);
        sqlite3_bind_double(s_cset, 1, v + 1);
        sqlite3_bind_text(s_cset, 2, id, -1, SQLITE_TRANSIENT);
        run1(s_cset);
        run1(s_commit);
    } else if (!strcmp(w, "transfer")) {
        long from = pick(N_ACCOUNTS), to = pick(N_ACCOUNTS);
        for (int spins = 0; to == from && spins < 32; spins++) to = pick(N_ACCOUNTS);
        run1(s_begin);
        char ida[64], idb[64];
        double ba, bb;
        sqlite3_bind_double(s_aget, 1, (double)from);
        check(sqlite3_step(s_aget), "transfer");
        snprintf(ida, sizeof ida, "%s", (const char *)sqlite3_column_text(s_aget, 0));
        ba = sqlite3_column_double(s_aget, 1);
        sqlite3_reset(s_aget);
        sqlite3_bind_double(s_aget, 1, (double)to);
        check(sqlite3_step(s_aget), "transfer");
        snprintf(idb, sizeof idb, "%s", (const char *)sqlite3_column_text(s_aget, 0));
        bb = sqlite3_column_double(s_aget, 1);
        sqlite3_reset(s_aget);
        if (from != to && ba >= 1) {
            sqlite3_bind_double(s_aset, 1, ba - 1);
            sqlite3_bind_text(s_aset, 2, ida, -1, SQLITE_TRANSIENT);
            run1(s_aset);
            sqlite3_bind_double(s_aset, 1, bb + 1);
            sqlite3_bind_text(s_aset, 2, idb, -1, SQLITE_TRANSIENT);
            run1(s_aset);
        }
        run1(s_commit);
    } else {
        fprintf(stderr, "rawsqlite: unknown workload %s\n", w);
        exit(2);
    }
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rawsqlite DIR WORKLOAD [-d SECONDS] [-w WARMUP] [--alpha A] [--seed N]\n");
        return 2;
    }
    const char *dir = argv[1], *w = argv[2];
    double dur = 3, warm = 1, alpha = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-d")) dur = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-w")) warm = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--alpha")) alpha = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) {
            unsigned long long sd = strtoull(argv[i + 1], NULL, 10);
            rs ^= (sd + 1) * 0x9e3779b97f4a7c15ull;
            if (!rs) rs = 88172645463325252ull;
        }
    }
    if (alpha > 0) {
        zipf_cdf = malloc(sizeof(double) * N_ACCOUNTS);
        double sum = 0, c = 0;
        for (long i = 0; i < N_ACCOUNTS; i++) sum += 1.0 / pow((double)(i + 1), alpha);
        for (long i = 0; i < N_ACCOUNTS; i++) zipf_cdf[i] = (c += 1.0 / pow((double)(i + 1), alpha) / sum);
        zipf_cdf[N_ACCOUNTS - 1] = 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/raw.sqlite3", dir);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "rawsqlite: cannot open %s\n", path);
        return 1;
    }
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    seed();
    s_get = prep("SELECT id, ct, name, email, n FROM users WHERE id = ?");
    s_range = prep("SELECT id, ct, name, email, n FROM users WHERE n >= ? ORDER BY n, ct, id LIMIT 100");
    s_ins = prep("INSERT INTO events VALUES (?, ?, 'bench', ?, '0123456789abcdef0123456789abcdef')");
    s_cget = prep("SELECT id, count FROM counters WHERE name = ? ORDER BY name, ct, id LIMIT 1");
    s_cset = prep("UPDATE counters SET count = ? WHERE id = ?");
    s_aget = prep("SELECT id, balance FROM accounts WHERE n = ? ORDER BY n, ct, id LIMIT 1");
    s_aset = prep("UPDATE accounts SET balance = ? WHERE id = ?");
    s_begin = prep("BEGIN IMMEDIATE");
    {
        sqlite3_stmt *m = prep("SELECT COALESCE(MAX(n), 0) + 1 FROM events");
        sqlite3_step(m);
        seqno = (long)sqlite3_column_int64(m, 0);
        sqlite3_finalize(m);
    }
    s_commit = prep("COMMIT");

    uint64_t t0 = now_ns(), tm = t0 + (uint64_t)(warm * 1e9), te = tm + (uint64_t)(dur * 1e9);
    size_t cap = 1 << 20, n = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    uint64_t ops = 0;
    struct rusage ru0 = {0}, ru1 = {0};
    int have_ru0 = 0;
    for (;;) {
        uint64_t a = now_ns();
        if (!have_ru0 && a >= tm) {
            getrusage(RUSAGE_SELF, &ru0);
            have_ru0 = 1;
        }
        if (a >= te) {
            getrusage(RUSAGE_SELF, &ru1);
            break;
        }
        op(w);
        uint64_t b = now_ns();
        if (a >= tm) {
            if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
            lat[n++] = b - a;
            ops++;
        }
    }
    qsort(lat, n, sizeof *lat, cmp);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)lat[i];
#define P(p) (n ? (double)lat[(size_t)((p) / 100.0 * (double)(n - 1))] / 1000.0 : 0)
    double per = !strcmp(w, "insert64") ? 64 : 1;
    if (!have_ru0) ru0 = ru1;
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("{\"ok\": %llu, \"errors\": 0, \"rps\": %.1f, \"mean_us\": %.2f, \"p50_us\": %.2f, \"p90_us\": %.2f, "
           "\"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f, \"ops_per_txn\": %.0f, \"cpu_s\": %.3f, "
           "\"sqlite\": \"%s\"}\n",
           (unsigned long long)(ops * per), (double)ops * per / dur, n ? sum / (double)n / 1000.0 : 0, P(50), P(90), P(99),
           P(99.9), n ? (double)lat[n - 1] / 1000.0 : 0, per, cpu, sqlite3_libversion());
    sqlite3_close(db);
    return 0;
}
