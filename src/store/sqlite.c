/* The SQLite backend: versioned rows in two WITHOUT ROWID tables.
 *
 *   cvx_documents(id, ts, table_number, deleted, value)   PK (id, ts)
 *   cvx_index_entries(index_id, key, ts, id, deleted)      PK (index_id, key, ts)
 *
 * WAL mode, and readers never block the writer. Each reader is its own
 * connection with its own prepared statements; one writer connection
 * applies batches under the store's commit lock. Readers need no SQLite
 * transaction: every row they may see has ts <= their snapshot.
 *
 * Durability is split from the write (the store pipelines them): the
 * writer runs with synchronous=NORMAL, so COMMIT appends to the WAL and is
 * visible to other connections without an fsync, and sync() fdatasyncs the
 * WAL through a descriptor of our own. That is what synchronous=FULL does
 * inside COMMIT, moved to where it can overlap the next group's write. A
 * crash before the fdatasync loses only commits nobody was told about;
 * checkpoints run on a connection with synchronous=FULL, which syncs the
 * WAL before copying it into the database and the database before the WAL
 * may be reused.
 *
 * The database, its -wal and -shm are the user's alone (0600): SQLite
 * gives the -wal and -shm the database file's mode, so the database is
 * created 0600 before SQLite opens it, and files an older cvx made 0644
 * are tightened at open. */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION 1
/* WAL pages (about 40 MB) after which the checkpointer folds the WAL into
 * the database. Ten times SQLite's inline default: a page rewritten by
 * many commits is copied once per checkpoint, and under random updates
 * (bench h_transfer_low) this cut checkpoint CPU enough for +15% TPS. */
#define CHECKPOINT_PAGES 10000

/* The WAL's bound: 64 MiB. A PASSIVE checkpoint copies what it can but
 * cannot reset the WAL while a reader still uses it, and under steady
 * load some reader always does: the WAL then only grows (160 MiB seen
 * under mixed load), and without a size limit SQLite never gives the
 * space back even once it resets. Two things keep it at this size:
 * journal_size_limit, so the first commit after a reset truncates the
 * file back to it; and the checkpointer, which after a PASSIVE round that
 * leaves the file larger than this runs a TRUNCATE checkpoint between two
 * group writes (commits wait for it, see truncate_wal). So the file is
 * at most this after each checkpoint round, plus what commits append while
 * the round runs, unless readers keep the TRUNCATE from finishing (then
 * it is tried again, see TRUNCATE_WAIT_MS). Well above the ~40 MB at which
 * checkpoints start, so a WAL that resets by itself never takes the
 * truncating path. */
#define WAL_LIMIT_BYTES CVX__WAL_LIMIT_BYTES
/* How long a TRUNCATE checkpoint waits for readers still on the old WAL
 * (commits are held meanwhile). Reads are single statements: they drain
 * in well under a millisecond unless their threads are descheduled (on
 * an oversubscribed 2-core machine 20 ms was often not enough). Past it
 * the TRUNCATE gives up; the next try may wait twice as long, up to the
 * max (the bound matters more the longer it is overrun), and comes only
 * after five times that, so waiting for readers holds commits up at most a
 * sixth of the time even while readers keep a TRUNCATE from finishing. */
#define TRUNCATE_WAIT_MS 20
#define TRUNCATE_WAIT_MAX_MS 320

/* Readers get a small page cache: SQLite empties a connection's cache
 * whenever it starts reading after another connection's commit, and the
 * emptying walks the whole cache (with commits every few hundred
 * microseconds, a 16 MiB cache cost more to empty than it saved; the hot
 * data is in cvx's document and range caches anyway). */
#define READER_CACHE_KIB 2048
#define WRITER_CACHE_KIB 16384

typedef struct reader {
    struct reader *next;
    sqlite3 *db;
    sqlite3_stmt *get;
    sqlite3_stmt *scan[2][2]; /* [desc][bounded] */
    sqlite3_stmt *find_request;
} reader_t;

typedef struct {
    char *path;
    sqlite3 *writer;
    sqlite3_stmt *ins_doc, *ins_entry, *ins_table, *ins_index, *drop_index, *del_entries, *set_max_ts, *ins_request;
    sqlite3_stmt *begin, *commit, *rollback; /* prepared once: a group's own SQL is three statements */
    pthread_mutex_t pool_mu;
    reader_t *free_readers;
    int nreaders;
    bool synchronous_off;
    int wal_fd; /* the -wal file, for sync (-1 when synchronous_off) */
    uint64_t max_ts;
    /* Checkpoints run on their own thread and connection, not inside a
     * commit: the commit lock is the write path's one serial section, and
     * an inline checkpoint made every thousandth group wait for it. */
    pthread_t ckpt_thread;
    bool ckpt_started, ckpt_stop, ckpt_wanted;
    bool ckpt_gone; /* the thread could not open its connection */
    uint64_t ckpt_begun, ckpt_done; /* rounds, for sq_checkpoint */
    int warm_readers; /* readers the background thread opens at start */
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv, ckpt_done_cv;
    /* Held by each group write and by a TRUNCATE checkpoint: the
     * checkpoint runs between two groups, and the writer waits on this
     * lock (woken as soon as it is free) instead of polling SQLite's
     * write lock through its busy handler. */
    pthread_mutex_t write_mu;
    bool ckpt_forced; /* sq_checkpoint asks: no backoff (under ckpt_mu) */
    /* The checkpointer thread's own: */
    uint64_t busy_deadline_ns; /* its busy handler gives up then (0: not yet waiting) */
    uint64_t wait_ns;           /* for readers, in the next TRUNCATE */
    uint64_t truncate_after_ns; /* no TRUNCATE before (after a failed one) */
} sq_t;

/* After each commit, with the WAL's size in pages (writer's thread). */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages) {
    sq_t *q = arg;
    (void)db;
    (void)name;
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&q->ckpt_mu);
        if (!q->ckpt_wanted) {
            q->ckpt_wanted = true;
            pthread_cond_signal(&q->ckpt_cv);
        }
        pthread_mutex_unlock(&q->ckpt_mu);
    }
    return SQLITE_OK;
}

/* synchronous: the PRAGMA's value (OFF, NORMAL, FULL). */
static int open_db(const char *path, sqlite3 **db, const char *synchronous, int cache_kib, cvx_err_t *err);
static int reader_new(sq_t *q, struct reader **out, cvx_err_t *err);

/* The checkpoint connection's busy handler: a PASSIVE checkpoint never
 * waits; a TRUNCATE one waits here for readers, up to q->wait_ns from its
 * first wait (not from its start: its syncs may take longer than that on
 * a busy disk, and are not the readers' fault). */
static int ckpt_busy(void *arg, int count) {
    sq_t *q = arg;
    (void)count;
    uint64_t now = cvx_monotonic_ns();
    if (!q->busy_deadline_ns) q->busy_deadline_ns = now + q->wait_ns;
    if (now >= q->busy_deadline_ns) return 0;
    cvx_sleep_ns(200000);
    return 1;
}

static off_t wal_size(const sq_t *q) {
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", q->path);
    struct stat st;
    return stat(wal, &st) == 0 ? st.st_size : 0;
}

/* Folds the whole WAL into the database and truncates it to zero bytes,
 * holding the next group write back meanwhile (writes must stop for the
 * WAL to be reset; readers still on it are waited for, see ckpt_busy).
 * Durable: with synchronous=FULL on this connection SQLite syncs the WAL
 * before copying it and the database before truncating, so a commit
 * written but not yet synced by sq_sync is in the synced database by then
 * (and sq_sync's descriptor is the same, now empty, file). Most of the
 * copying was done by the PASSIVE checkpoint just before, without holding
 * anyone up. False if readers kept it from finishing. */
static bool truncate_wal(sq_t *q, sqlite3 *db) {
    pthread_mutex_lock(&q->write_mu);
    q->busy_deadline_ns = 0;
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    pthread_mutex_unlock(&q->write_mu);
    return rc == SQLITE_OK;
}

/* One round: PASSIVE, then TRUNCATE if the WAL file is still larger than
 * WAL_LIMIT_BYTES (unless backing off from a failed one; `forced` ignores
 * that). True if it is still larger: the round is due again. */
static bool checkpoint_round(sq_t *q, sqlite3 *db, bool forced) {
    /* PASSIVE: copies what it can without blocking readers or the
     * writer; the next commit after a complete one restarts the WAL. */
    int log = 0, done = 0;
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (wal_size(q) <= WAL_LIMIT_BYTES) return false;
    if (!forced && cvx_monotonic_ns() < q->truncate_after_ns) return true;
    if (!q->wait_ns) q->wait_ns = TRUNCATE_WAIT_MS * 1000000ull;
    if (truncate_wal(q, db)) {
        q->wait_ns = q->truncate_after_ns = 0;
        return false;
    }
    q->wait_ns = CVX_MIN(2 * q->wait_ns, TRUNCATE_WAIT_MAX_MS * 1000000ull);
    q->truncate_after_ns = cvx_monotonic_ns() + 5 * q->wait_ns;
    return true;
}

static void *checkpointer(void *arg) {
    sq_t *q = arg;
    sqlite3 *db = NULL;
    cvx_err_t err;
    if (open_db(q->path, &db, q->synchronous_off ? "OFF" : "FULL", READER_CACHE_KIB, &err) != CVX_OK) {
        pthread_mutex_lock(&q->ckpt_mu);
        q->ckpt_gone = true;
        pthread_cond_broadcast(&q->ckpt_done_cv);
        pthread_mutex_unlock(&q->ckpt_mu);
        return NULL;
    }
    sqlite3_busy_handler(db, ckpt_busy, q);
    /* Fill the read pool off the start-up path: a connection opened later,
     * under load, shows up as resident memory growing at a random moment
     * (tests/e2e/deploy.test.js). More still open on demand. */
    for (int i = 0; i < q->warm_readers; i++) {
        reader_t *r = NULL;
        if (reader_new(q, &r, &err) != CVX_OK) break;
        pthread_mutex_lock(&q->pool_mu);
        r->next = q->free_readers;
        q->free_readers = r;
        pthread_mutex_unlock(&q->pool_mu);
    }
    bool due = false; /* the WAL is past its bound: a round when the backoff ends */
    pthread_mutex_lock(&q->ckpt_mu);
    for (;;) {
        while (!q->ckpt_wanted && !q->ckpt_stop) {
            if (!due) {
                pthread_cond_wait(&q->ckpt_cv, &q->ckpt_mu);
                continue;
            }
            /* Even if no commit comes to ask: the load may just have
             * stopped, with the WAL still large. */
            uint64_t now = cvx_monotonic_ns();
            if (now >= q->truncate_after_ns) break;
            uint64_t ns = q->truncate_after_ns - now;
            struct timespec at;
            clock_gettime(CLOCK_MONOTONIC, &at);
            ns += (uint64_t)at.tv_nsec;
            at.tv_sec += (time_t)(ns / 1000000000ull);
            at.tv_nsec = (long)(ns % 1000000000ull);
            pthread_cond_timedwait(&q->ckpt_cv, &q->ckpt_mu, &at);
        }
        if (q->ckpt_stop) break;
        bool forced = q->ckpt_forced;
        q->ckpt_wanted = q->ckpt_forced = false;
        uint64_t round = ++q->ckpt_begun;
        pthread_mutex_unlock(&q->ckpt_mu);
        due = checkpoint_round(q, db, forced);
        pthread_mutex_lock(&q->ckpt_mu);
        q->ckpt_done = round;
        pthread_cond_broadcast(&q->ckpt_done_cv);
    }
    q->ckpt_gone = true;
    pthread_cond_broadcast(&q->ckpt_done_cv);
    pthread_mutex_unlock(&q->ckpt_mu);
    sqlite3_close(db);
    return NULL;
}

static int sq_error(sqlite3 *db, cvx_err_t *err, const char *what) {
    return cvx_err_set(err, CVX_E_STORE, "SQLite: %s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
}

static int exec_sql(sqlite3 *db, const char *sql, cvx_err_t *err) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        cvx_err_set(err, CVX_E_STORE, "SQLite: %s (in: %.80s)", msg ? msg : "error", sql);
        sqlite3_free(msg);
        return CVX_E_STORE;
    }
    return CVX_OK;
}

static int open_db(const char *path, sqlite3 **db, const char *synchronous, int cache_kib, cvx_err_t *err) {
    *db = NULL;
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int code = cvx_err_set(err, CVX_E_STORE, "cannot open database %s: %s", path,
                               *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        sqlite3_close(*db);
        *db = NULL;
        return code;
    }
    sqlite3_busy_timeout(*db, 10000);
    sqlite3_extended_result_codes(*db, 1);
    char sync_sql[64], cache_sql[64];
    snprintf(sync_sql, sizeof sync_sql, "PRAGMA synchronous=%s", synchronous);
    snprintf(cache_sql, sizeof cache_sql, "PRAGMA cache_size=-%d", cache_kib);
    char limit_sql[64];
    snprintf(limit_sql, sizeof limit_sql, "PRAGMA journal_size_limit=%lld", WAL_LIMIT_BYTES);
    if (exec_sql(*db, "PRAGMA journal_mode=WAL", err) || exec_sql(*db, sync_sql, err) ||
        exec_sql(*db, cache_sql, err) || exec_sql(*db, limit_sql, err)) {
        sqlite3_close(*db);
        *db = NULL;
        return CVX_E_STORE;
    }
    return CVX_OK;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, cvx_err_t *err) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return sq_error(db, err, "prepare");
    return CVX_OK;
}

static const char *const scan_sql[2][2] = {
    {"SELECT key, ts, id, deleted FROM cvx_index_entries WHERE index_id=?1 AND key>=?2 AND ts<=?4 "
     "ORDER BY key ASC, ts DESC",
     "SELECT key, ts, id, deleted FROM cvx_index_entries WHERE index_id=?1 AND key>=?2 AND key<?3 AND ts<=?4 "
     "ORDER BY key ASC, ts DESC"},
    {"SELECT key, ts, id, deleted FROM cvx_index_entries WHERE index_id=?1 AND key>=?2 AND ts<=?4 "
     "ORDER BY key DESC, ts DESC",
     "SELECT key, ts, id, deleted FROM cvx_index_entries WHERE index_id=?1 AND key>=?2 AND key<?3 AND ts<=?4 "
     "ORDER BY key DESC, ts DESC"},
};

static void reader_free(reader_t *r) {
    if (!r) return;
    sqlite3_finalize(r->get);
    sqlite3_finalize(r->find_request);
    for (int d = 0; d < 2; d++)
        for (int b = 0; b < 2; b++) sqlite3_finalize(r->scan[d][b]);
    sqlite3_close(r->db);
    cvx_free(r);
}

static int reader_new(sq_t *q, reader_t **out, cvx_err_t *err) {
    reader_t *r = cvx_calloc(1, sizeof *r);
    if (!r) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    int rc = open_db(q->path, &r->db, q->synchronous_off ? "OFF" : "FULL", READER_CACHE_KIB, err);
    if (!rc)
        rc = prepare(r->db,
                     "SELECT ts, deleted, table_number, value FROM cvx_documents WHERE id=?1 AND ts<=?2 "
                     "ORDER BY ts DESC LIMIT 1",
                     &r->get, err);
    for (int d = 0; d < 2 && !rc; d++)
        for (int b = 0; b < 2 && !rc; b++) rc = prepare(r->db, scan_sql[d][b], &r->scan[d][b], err);
    if (!rc) rc = prepare(r->db, "SELECT ts, result FROM cvx_requests WHERE key=?1", &r->find_request, err);
    if (rc) {
        reader_free(r);
        return rc;
    }
    *out = r;
    return CVX_OK;
}

static void sq_close(void *state) {
    sq_t *q = state;
    if (!q) return;
    if (q->ckpt_started) {
        pthread_mutex_lock(&q->ckpt_mu);
        q->ckpt_stop = true;
        pthread_cond_signal(&q->ckpt_cv);
        pthread_mutex_unlock(&q->ckpt_mu);
        pthread_join(q->ckpt_thread, NULL);
    }
    while (q->free_readers) {
        reader_t *n = q->free_readers->next;
        reader_free(q->free_readers);
        q->free_readers = n;
    }
    sqlite3_stmt *sts[] = {q->ins_doc,     q->ins_entry,   q->ins_table,  q->ins_index, q->drop_index, q->del_entries,
                           q->set_max_ts,  q->ins_request, q->begin,      q->commit,    q->rollback};
    for (size_t i = 0; i < CVX_ARRAY_LEN(sts); i++) sqlite3_finalize(sts[i]);
    if (q->writer) {
        /* Fold the WAL back into the main file on a clean shutdown. */
        sqlite3_exec(q->writer, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        sqlite3_close(q->writer);
    }
    if (q->wal_fd >= 0) close(q->wal_fd);
    pthread_mutex_destroy(&q->pool_mu);
    pthread_mutex_destroy(&q->ckpt_mu);
    pthread_cond_destroy(&q->ckpt_cv);
    pthread_cond_destroy(&q->ckpt_done_cv);
    pthread_mutex_destroy(&q->write_mu);
    cvx_free(q->path);
    cvx_free(q);
}

/* Creates the database file 0600 if it does not exist (SQLite would make
 * it 0644 less the umask, and its -wal and -shm after it), and clears the
 * group and other bits of the files an older cvx left: the database, its
 * WAL, shared memory and a rollback journal. */
static int make_private_files(const char *path, cvx_err_t *err) {
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        fchmod(fd, 0600); /* exactly, whatever the umask */
        close(fd);
    } else if (errno != EEXIST) {
        return cvx_err_set(err, CVX_E_STORE, "cannot create database %s: %s", path, strerror(errno));
    }
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < CVX_ARRAY_LEN(suffixes); i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        cvx_make_private(p);
    }
    return CVX_OK;
}

static int sq_open(const char *dir, const cvx_store_config_t *cfg, void **state, cvx_err_t *err) {
    *state = NULL;
    sq_t *q = cvx_calloc(1, sizeof *q);
    if (!q) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    pthread_mutex_init(&q->pool_mu, NULL);
    pthread_mutex_init(&q->ckpt_mu, NULL);
    /* Monotonic: the checkpointer's timed waits must not move with the
     * wall clock. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->ckpt_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&q->ckpt_done_cv, NULL);
    pthread_mutex_init(&q->write_mu, NULL);
    cvx_buf_t path = {0};
    cvx_buf_printf(&path, "%s/cvx.sqlite3", dir);
    q->path = cvx_buf_detach(&path, NULL);
    q->synchronous_off = cfg->synchronous_off;
    q->wal_fd = -1;
    q->warm_readers = cfg->read_connections;
    int rc = q->path ? make_private_files(q->path, err) : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) rc = open_db(q->path, &q->writer, q->synchronous_off ? "OFF" : "NORMAL", WRITER_CACHE_KIB, err);
    if (!rc)
        rc = exec_sql(q->writer,
                      "CREATE TABLE IF NOT EXISTS cvx_meta(key TEXT PRIMARY KEY, value) ;"
                      "CREATE TABLE IF NOT EXISTS cvx_tables(number INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
                      "CREATE TABLE IF NOT EXISTS cvx_indexes(id INTEGER PRIMARY KEY, table_number INTEGER NOT NULL,"
                      " name TEXT NOT NULL, fields TEXT NOT NULL);"
                      "CREATE TABLE IF NOT EXISTS cvx_documents(id BLOB NOT NULL, ts INTEGER NOT NULL,"
                      " table_number INTEGER NOT NULL, deleted INTEGER NOT NULL, value BLOB,"
                      " PRIMARY KEY(id, ts)) WITHOUT ROWID;"
                      "CREATE TABLE IF NOT EXISTS cvx_index_entries(index_id INTEGER NOT NULL, key BLOB NOT NULL,"
                      " ts INTEGER NOT NULL, id BLOB NOT NULL, deleted INTEGER NOT NULL,"
                      " PRIMARY KEY(index_id, key, ts)) WITHOUT ROWID;"
                      "CREATE TABLE IF NOT EXISTS cvx_requests(key TEXT PRIMARY KEY, ts INTEGER NOT NULL,"
                      " result BLOB NOT NULL) WITHOUT ROWID;"
                      "INSERT OR IGNORE INTO cvx_meta(key, value) VALUES ('schema_version', 1);"
                      "INSERT OR IGNORE INTO cvx_meta(key, value) VALUES ('max_ts', 0);",
                      err);
    if (!rc) {
        sqlite3_stmt *st = NULL;
        rc = prepare(q->writer, "SELECT (SELECT value FROM cvx_meta WHERE key='schema_version'),"
                                " (SELECT value FROM cvx_meta WHERE key='max_ts')", &st, err);
        if (!rc && sqlite3_step(st) == SQLITE_ROW) {
            int64_t version = sqlite3_column_int64(st, 0);
            q->max_ts = (uint64_t)sqlite3_column_int64(st, 1);
            if (version != SCHEMA_VERSION)
                rc = cvx_err_set(err, CVX_E_STORE,
                                 "database %s has format version %lld; this cvx reads version %d", q->path,
                                 (long long)version, SCHEMA_VERSION);
        }
        sqlite3_finalize(st);
    }
    if (!rc) rc = prepare(q->writer, "INSERT INTO cvx_documents(id, ts, table_number, deleted, value) VALUES (?1,?2,?3,?4,?5)", &q->ins_doc, err);
    if (!rc) rc = prepare(q->writer, "INSERT INTO cvx_index_entries(index_id, key, ts, id, deleted) VALUES (?1,?2,?3,?4,?5)", &q->ins_entry, err);
    if (!rc) rc = prepare(q->writer, "INSERT INTO cvx_tables(number, name) VALUES (?1, ?2)", &q->ins_table, err);
    if (!rc) rc = prepare(q->writer, "INSERT INTO cvx_indexes(id, table_number, name, fields) VALUES (?1,?2,?3,?4)", &q->ins_index, err);
    if (!rc) rc = prepare(q->writer, "DELETE FROM cvx_indexes WHERE id=?1", &q->drop_index, err);
    if (!rc) rc = prepare(q->writer, "DELETE FROM cvx_index_entries WHERE index_id=?1", &q->del_entries, err);
    if (!rc) rc = prepare(q->writer, "UPDATE cvx_meta SET value=?1 WHERE key='max_ts'", &q->set_max_ts, err);
    if (!rc) rc = prepare(q->writer, "INSERT INTO cvx_requests(key, ts, result) VALUES (?1,?2,?3)", &q->ins_request, err);
    if (!rc) rc = prepare(q->writer, "BEGIN IMMEDIATE", &q->begin, err);
    if (!rc) rc = prepare(q->writer, "COMMIT", &q->commit, err);
    if (!rc) rc = prepare(q->writer, "ROLLBACK", &q->rollback, err);
    if (!rc && !q->synchronous_off) {
        /* The writer's first statements created the WAL; it stays while a
         * connection is open, and a checkpoint rewinds it, never replaces
         * it, so this descriptor syncs whatever the writer appends. */
        char wal[4096];
        snprintf(wal, sizeof wal, "%s-wal", q->path);
        q->wal_fd = open(wal, O_RDWR | O_CLOEXEC);
        if (q->wal_fd < 0) rc = cvx_err_set(err, CVX_E_STORE, "cannot open %s: %s", wal, strerror(errno));
    }
    if (rc) {
        sq_close(q);
        return rc;
    }
    /* Replaces SQLite's inline auto-checkpoint (which is itself a WAL hook). */
    sqlite3_wal_hook(q->writer, on_wal, q);
    if (pthread_create(&q->ckpt_thread, NULL, checkpointer, q) == 0) q->ckpt_started = true;
    else sqlite3_wal_autocheckpoint(q->writer, CHECKPOINT_PAGES); /* fall back to inline */
    *state = q;
    return CVX_OK;
}

static int sq_reader_acquire(void *state, void **out, cvx_err_t *err) {
    sq_t *q = state;
    pthread_mutex_lock(&q->pool_mu);
    reader_t *r = q->free_readers;
    if (r) q->free_readers = r->next;
    pthread_mutex_unlock(&q->pool_mu);
    if (!r) {
        int rc = reader_new(q, &r, err);
        if (rc) return rc;
    }
    *out = r;
    return CVX_OK;
}

static void sq_reader_release(void *state, void *reader) {
    sq_t *q = state;
    reader_t *r = reader;
    if (!r) return;
    pthread_mutex_lock(&q->pool_mu);
    r->next = q->free_readers;
    q->free_readers = r;
    pthread_mutex_unlock(&q->pool_mu);
}

static int sq_get(void *reader, const uint8_t id[16], uint64_t at, bool *found, bool *deleted, uint32_t *table,
                  cvx_buf_t *value, cvx_err_t *err) {
    reader_t *r = reader;
    sqlite3_stmt *st = r->get;
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)at);
    int rc = sqlite3_step(st);
    *found = false;
    if (rc == SQLITE_ROW) {
        *found = true;
        *deleted = sqlite3_column_int(st, 1) != 0;
        *table = (uint32_t)sqlite3_column_int64(st, 2);
        const void *v = sqlite3_column_blob(st, 3);
        int n = sqlite3_column_bytes(st, 3);
        if (v && n > 0 && cvx_buf_append(value, v, (size_t)n)) {
            sqlite3_reset(st);
            return cvx_err_set(err, CVX_E_NOMEM, "out of memory reading a document");
        }
        rc = SQLITE_DONE;
    }
    int out = rc == SQLITE_DONE ? CVX_OK : sq_error(r->db, err, "reading a document");
    sqlite3_reset(st);
    return out;
}

static int sq_scan(void *reader, uint64_t index_id, const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len,
                   bool desc, uint64_t at, cvx__scan_cb cb, void *ctx, cvx_err_t *err) {
    reader_t *r = reader;
    sqlite3_stmt *st = r->scan[desc][hi != NULL];
    sqlite3_bind_int64(st, 1, (int64_t)index_id);
    sqlite3_bind_blob(st, 2, lo ? (const void *)lo : "", (int)lo_len, SQLITE_STATIC);
    if (hi) sqlite3_bind_blob(st, 3, hi, (int)hi_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)at);
    int out = CVX_OK;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            out = sq_error(r->db, err, "scanning an index");
            break;
        }
        const uint8_t *key = sqlite3_column_blob(st, 0);
        size_t key_len = (size_t)sqlite3_column_bytes(st, 0);
        uint64_t ts = (uint64_t)sqlite3_column_int64(st, 1);
        const uint8_t *id = sqlite3_column_blob(st, 2);
        if (!id || sqlite3_column_bytes(st, 2) != 16) {
            out = cvx_err_set(err, CVX_E_STORE, "corrupt index entry in index %llu", (unsigned long long)index_id);
            break;
        }
        bool deleted = sqlite3_column_int(st, 3) != 0;
        int c = cb(ctx, key ? key : (const uint8_t *)"", key_len, id, ts, deleted);
        if (c == CVX__SCAN_STOP) break;
        if (c != 0) {
            out = c;
            break;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return out;
}

static int step_done(sq_t *q, sqlite3_stmt *st, cvx_err_t *err, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? CVX_OK : sq_error(q->writer, err, what);
}

/* One batch's rows, inside the open transaction. */
static int apply_batch(sq_t *q, const cvx__batch_t *b, cvx_err_t *err) {
    int rc = CVX_OK;
    for (size_t i = 0; i < b->nnew_tables && !rc; i++) {
        sqlite3_bind_int64(q->ins_table, 1, b->new_tables[i].number);
        sqlite3_bind_text(q->ins_table, 2, b->new_tables[i].name, -1, SQLITE_STATIC);
        rc = step_done(q, q->ins_table, err, "creating a table");
    }
    for (size_t i = 0; i < b->ndropped_indexes && !rc; i++) {
        sqlite3_bind_int64(q->drop_index, 1, (int64_t)b->dropped_indexes[i]);
        rc = step_done(q, q->drop_index, err, "dropping an index");
        sqlite3_bind_int64(q->del_entries, 1, (int64_t)b->dropped_indexes[i]);
        if (!rc) rc = step_done(q, q->del_entries, err, "dropping an index");
    }
    for (size_t i = 0; i < b->nnew_indexes && !rc; i++) {
        const cvx__index_row_t *ix = &b->new_indexes[i];
        sqlite3_bind_int64(q->ins_index, 1, (int64_t)ix->id);
        sqlite3_bind_int64(q->ins_index, 2, ix->table);
        sqlite3_bind_text(q->ins_index, 3, ix->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q->ins_index, 4, ix->fields_json, -1, SQLITE_STATIC);
        rc = step_done(q, q->ins_index, err, "creating an index");
    }
    for (size_t i = 0; i < b->ndocs && !rc; i++) {
        const cvx__doc_write_t *d = &b->docs[i];
        sqlite3_bind_blob(q->ins_doc, 1, d->id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(q->ins_doc, 2, (int64_t)b->ts);
        sqlite3_bind_int64(q->ins_doc, 3, d->table);
        sqlite3_bind_int(q->ins_doc, 4, d->deleted);
        if (d->value) sqlite3_bind_blob(q->ins_doc, 5, d->value, (int)d->value_len, SQLITE_STATIC);
        else sqlite3_bind_null(q->ins_doc, 5);
        rc = step_done(q, q->ins_doc, err, "writing a document");
    }
    for (size_t i = 0; i < b->nentries && !rc; i++) {
        const cvx__index_write_t *e = &b->entries[i];
        sqlite3_bind_int64(q->ins_entry, 1, (int64_t)e->index_id);
        sqlite3_bind_blob(q->ins_entry, 2, e->key, (int)e->key_len, SQLITE_STATIC);
        sqlite3_bind_int64(q->ins_entry, 3, (int64_t)b->ts);
        sqlite3_bind_blob(q->ins_entry, 4, e->id, 16, SQLITE_STATIC);
        sqlite3_bind_int(q->ins_entry, 5, e->deleted);
        rc = step_done(q, q->ins_entry, err, "writing an index entry");
    }
    if (!rc && b->request_key) {
        sqlite3_bind_text(q->ins_request, 1, b->request_key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q->ins_request, 2, (int64_t)b->ts);
        sqlite3_bind_blob(q->ins_request, 3, b->request_result ? b->request_result : "", (int)b->request_result_len,
                          SQLITE_STATIC);
        rc = step_done(q, q->ins_request, err, "recording a request");
    }
    return rc;
}

/* sq_write under write_mu. */
static int write_locked(sq_t *q, const cvx__batch_t *const *batches, size_t n, cvx_err_t *err) {
    int rc = step_done(q, q->begin, err, "starting a write");
    if (rc) return rc;
    for (size_t i = 0; i < n && !rc; i++) rc = apply_batch(q, batches[i], err);
    uint64_t ts = batches[n - 1]->ts;
    if (!rc) {
        sqlite3_bind_int64(q->set_max_ts, 1, (int64_t)ts);
        rc = step_done(q, q->set_max_ts, err, "recording the commit timestamp");
    }
    if (!rc) rc = step_done(q, q->commit, err, "committing");
    if (rc) {
        sqlite3_step(q->rollback);
        sqlite3_reset(q->rollback);
        return rc;
    }
    q->max_ts = ts;
    return CVX_OK;
}

static int sq_write(void *state, const cvx__batch_t *const *batches, size_t n, cvx_err_t *err) {
    sq_t *q = state;
    if (n == 0) return CVX_OK;
    pthread_mutex_lock(&q->write_mu);
    int rc = write_locked(q, batches, n, err);
    pthread_mutex_unlock(&q->write_mu);
    return rc;
}

/* One checkpoint round on the checkpointer's thread, now, and its end
 * waited for (tests; see cvx__store_checkpoint). */
static void sq_checkpoint(void *state) {
    sq_t *q = state;
    pthread_mutex_lock(&q->ckpt_mu);
    if (q->ckpt_started) {
        /* The round after those begun so far: one begun already may have
         * looked at the WAL before the caller's last commit. */
        uint64_t want = q->ckpt_begun + 1;
        q->ckpt_wanted = q->ckpt_forced = true;
        pthread_cond_signal(&q->ckpt_cv);
        while (q->ckpt_done < want && !q->ckpt_gone) pthread_cond_wait(&q->ckpt_done_cv, &q->ckpt_mu);
    }
    pthread_mutex_unlock(&q->ckpt_mu);
}

static int sq_sync(void *state, cvx_err_t *err) {
    sq_t *q = state;
    if (q->wal_fd < 0) return CVX_OK;
    while (fdatasync(q->wal_fd) != 0) {
        if (errno == EINTR) continue;
        return cvx_err_set(err, CVX_E_IO, "fdatasync of %s-wal: %s", q->path, strerror(errno));
    }
    return CVX_OK;
}

static int sq_find_request(void *reader, const char *key, bool *found, uint64_t *ts, cvx_buf_t *result,
                           cvx_err_t *err) {
    reader_t *r = reader;
    sqlite3_stmt *st = r->find_request;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = false;
    int out = CVX_OK;
    if (rc == SQLITE_ROW) {
        *found = true;
        *ts = (uint64_t)sqlite3_column_int64(st, 0);
        const void *v = sqlite3_column_blob(st, 1);
        if (cvx_buf_append(result, v ? v : "", (size_t)sqlite3_column_bytes(st, 1)))
            out = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    } else if (rc != SQLITE_DONE) {
        out = sq_error(r->db, err, "looking up a request");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return out;
}

static int sq_load_catalog(void *state, int (*on_table)(void *, uint32_t, const char *),
                           int (*on_index)(void *, const cvx__index_row_t *), void *ctx, cvx_err_t *err) {
    sq_t *q = state;
    sqlite3_stmt *st = NULL;
    int rc = prepare(q->writer, "SELECT number, name FROM cvx_tables ORDER BY number", &st, err);
    while (!rc && sqlite3_step(st) == SQLITE_ROW)
        rc = on_table(ctx, (uint32_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    if (rc) return rc;
    rc = prepare(q->writer, "SELECT id, table_number, name, fields FROM cvx_indexes ORDER BY id", &st, err);
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        cvx__index_row_t row = {(uint64_t)sqlite3_column_int64(st, 0), (uint32_t)sqlite3_column_int64(st, 1),
                                (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3)};
        rc = on_index(ctx, &row);
    }
    sqlite3_finalize(st);
    return rc;
}

static uint64_t sq_max_ts(void *state) { return ((sq_t *)state)->max_ts; }

const cvx_store_backend_t cvx__sqlite_backend = {
    .version = 2,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .reader_acquire = sq_reader_acquire,
    .reader_release = sq_reader_release,
    .get = sq_get,
    .scan = sq_scan,
    .write = sq_write,
    .sync = sq_sync,
    .find_request = sq_find_request,
    .load_catalog = sq_load_catalog,
    .max_ts = sq_max_ts,
    .checkpoint = sq_checkpoint,
};
