/* Private to the store layer: the backend interface and the structs behind
 * the handles.
 *
 * The MVCC rules, OCC, the catalog cache and index-key computation live in
 * the generic layer: txn.c and query.c (transactions, reads, queries),
 * filter.c, catalog.c, store.c (opening, closing, statistics, listeners),
 * commit.c (OCC, group commit, the syncer thread, durability), schema.c
 * (index changes), hot.c (hot ranges), cursor.c (pagination cursors), and
 * the caches doccache.c and rangecache.c. A backend only stores and
 * returns versioned rows: document revisions keyed (id, ts) and index
 * entries keyed (index_id, key, ts). SQLite (sqlite.c) is the only backend
 * so far. Tests inject write and sync failures around the backend's calls
 * through faulty.c (cvx__store_fail_commit, cvx__store_fail_sync).
 * Backends are versioned structs of function pointers (SQLite VFS style)
 * so new operations can be appended without breaking old ones. */
#ifndef CVX_STORE_INT_H
#define CVX_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

/* ---- backend ---------------------------------------------------------------- */

typedef struct {
    uint64_t index_id;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *id; /* 16 bytes */
    bool deleted;
} cvx__index_write_t;

typedef struct {
    const uint8_t *id; /* 16 bytes */
    uint32_t table;
    bool deleted;
    const char *value; /* JSON with system fields; NULL when deleted */
    size_t value_len;
} cvx__doc_write_t;

typedef struct {
    uint32_t number;
    const char *name;
} cvx__table_row_t;

typedef struct {
    uint64_t id;
    uint32_t table;
    const char *name;
    const char *fields_json; /* JSON array of field paths */
} cvx__index_row_t;

/* Everything one commit writes, applied atomically and durably. */
typedef struct {
    uint64_t ts;
    const cvx__doc_write_t *docs;
    size_t ndocs;
    const cvx__index_write_t *entries;
    size_t nentries;
    const cvx__table_row_t *new_tables;
    size_t nnew_tables;
    const cvx__index_row_t *new_indexes;
    size_t nnew_indexes;
    const uint64_t *dropped_indexes; /* entries are deleted too */
    size_t ndropped_indexes;
    /* A request the transaction answered (idempotent mutations), or NULL. */
    const char *request_key;
    const char *request_result;
    size_t request_result_len;
} cvx__batch_t;

/* Index scan callback: one raw row, newest first within a key. Return 0 to
 * continue, CVX__SCAN_STOP to stop, or an error code (which the scan
 * returns). The stop value is not an error code: CVX_E_NOMEM is 1. */
#define CVX__SCAN_STOP (-1)
typedef int (*cvx__scan_cb)(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *id, uint64_t ts,
                            bool deleted);

typedef struct cvx_store_backend {
    int version; /* 2: write and sync instead of one durable commit */
    const char *name;
    int (*open)(const char *dir, const cvx_store_config_t *cfg, void **state, cvx_err_t *err);
    void (*close)(void *state);
    /* A reader is a handle usable by one thread at a time. */
    int (*reader_acquire)(void *state, void **reader, cvx_err_t *err);
    void (*reader_release)(void *state, void *reader);
    /* Newest revision of document `id` with ts <= at. *found false when
     * none; `value` gets the JSON (empty for a deletion). */
    int (*get)(void *reader, const uint8_t id[16], uint64_t at, bool *found, bool *deleted, uint32_t *table,
               cvx_buf_t *value, cvx_err_t *err);
    /* Rows of index `index_id` with lo <= key < hi (hi NULL = no upper
     * bound) and ts <= at, ordered by key (desc reverses it) then ts
     * descending. */
    int (*scan)(void *reader, uint64_t index_id, const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len,
                bool desc, uint64_t at, cvx__scan_cb cb, void *ctx, cvx_err_t *err);
    /* Applies n batches (each with its own ts, in ts order) atomically,
     * visible to readers when it returns but not yet durable (group
     * commit: one write for all of them). Called under the commit lock. On
     * error nothing of them is visible. */
    int (*write)(void *state, const cvx__batch_t *const *b, size_t n, cvx_err_t *err);
    /* Makes every write that returned before this call durable. Called
     * outside the commit lock (so the next group's write overlaps it), by
     * one thread at a time. After an error the store writes nothing more:
     * what reached the disk is unknown. */
    int (*sync)(void *state, cvx_err_t *err);
    /* The remembered result of request `key` (see cvx_txn_set_request). */
    int (*find_request)(void *reader, const char *key, bool *found, uint64_t *ts, cvx_buf_t *result,
                        cvx_err_t *err);
    /* Catalog and clock at open. */
    int (*load_catalog)(void *state, int (*on_table)(void *ctx, uint32_t number, const char *name),
                        int (*on_index)(void *ctx, const cvx__index_row_t *row), void *ctx, cvx_err_t *err);
    uint64_t (*max_ts)(void *state);
    /* Optional (NULL: none). Runs one round of the backend's WAL
     * upkeep now and returns when it is over (tests). */
    void (*checkpoint)(void *state);
} cvx_store_backend_t;

extern const cvx_store_backend_t cvx__sqlite_backend;

/* ---- pagination cursors (cursor.c) --------------------------------------- */

enum { CVX__CURSOR_AFTER = 0, CVX__CURSOR_END = 1 };

/* Appends the cursor for (index, flag, key) to out as a JSON string, and
 * bare to copy (may be NULL). CVX_E_NOMEM or 0. */
int cvx__cursor_write(cvx_buf_t *out, cvx_buf_t *copy, uint64_t index_id, int flag, const uint8_t *key, size_t len);
/* Reads a cursor a client sent for a query on index_id: its flag, and its
 * key appended to key. CVX_E_INVALID_ARGUMENT with a message when it is
 * not one we could have written for that index. */
int cvx__cursor_read(const char *cursor, uint64_t index_id, int *flag, cvx_buf_t *key, cvx_err_t *err);

/* ---- test fault hooks (faulty.c) ------------------------------------------ */

/* fail_commit: the nth backend write (1-based) and, if sticky, every later
 * one fails with CVX_E_IO before anything is written; 0 disables.
 * fail_sync: the nth backend sync fails as if fsync had reported an I/O
 * error; 0 disables. Process-wide. */
void cvx__store_fail_commit(uint64_t nth, bool sticky);
void cvx__store_fail_sync(uint64_t nth);
/* Test hook: while held, every backend sync waits (a slow disk), so a test
 * can look at the pipeline between a group's write and its durability. */
void cvx__store_hold_sync(bool hold);
/* The bound on SQLite's -wal file (see WAL_LIMIT_BYTES in sqlite.c). */
#define CVX__WAL_LIMIT_BYTES (64ll << 20)
/* Test hook: one checkpoint round of the backend (for SQLite: PASSIVE,
 * then TRUNCATE if the WAL is past its bound), run now on the store's
 * checkpoint thread; returns when it is over. */
void cvx__store_checkpoint(cvx_store_t *s);
/* Test hook (hot.c): how long a range stays hot after a conflict (0 =
 * default). */
void cvx__store_hot_ns(uint64_t ns);
/* The backend's write and sync as the commit path calls them, failing
 * where the hooks above say. */
int cvx__store_backend_write(cvx_store_t *s, const cvx__batch_t *const *b, size_t n, cvx_err_t *err);
int cvx__store_backend_sync(cvx_store_t *s, cvx_err_t *err);

/* ---- hot-document cache (doccache.c) ---------------------------------------------- */

typedef struct cvx__doccache cvx__doccache_t;
int cvx__doccache_new(size_t max_bytes, uint64_t applied, cvx__doccache_t **out);
void cvx__doccache_free(cvx__doccache_t *c);
/* The newest revision of id visible at snapshot `at`, if cached: appends its
 * JSON to value. */
bool cvx__doccache_get(cvx__doccache_t *c, const uint8_t id[16], uint64_t at, bool *deleted, uint32_t *table,
                       cvx_buf_t *value);
/* A revision a reader found at snapshot `at` (kept only if still current). */
void cvx__doccache_fill(cvx__doccache_t *c, const uint8_t id[16], uint64_t at, bool deleted, uint32_t table,
                        const char *value, size_t len);
/* A durable commit's document writes; before its ts is published. */
void cvx__doccache_apply(cvx__doccache_t *c, const cvx__batch_t *b);
void cvx__doccache_stats(cvx__doccache_t *c, uint64_t *hits, uint64_t *misses, size_t *entries, size_t *bytes);

/* ---- index-range cache (rangecache.c) ---------------------------------------------- */

typedef struct cvx__rangecache cvx__rangecache_t;

/* A range as a query asks for it (before a cursor or a page cuts it). */
typedef struct {
    uint64_t index_id;
    const uint8_t *lo, *hi;
    size_t lo_len, hi_len;
    bool hi_inf, desc;
} cvx__rkey_t;

int cvx__rangecache_new(size_t max_bytes, uint64_t applied, cvx__rangecache_t **out);
void cvx__rangecache_free(cvx__rangecache_t *c);
/* The range's visible rows at snapshot `at`, if cached: appends them to
 * rows (laid out as by cvx__rangecache_row_append, in scan order);
 * *complete false when they are only the first rows of the range. */
bool cvx__rangecache_get(cvx__rangecache_t *c, const cvx__rkey_t *k, uint64_t at, cvx_buf_t *rows, bool *complete);
/* Rows a reader found at snapshot `at` (kept only if still current);
 * last_off is where the last row starts. */
void cvx__rangecache_fill(cvx__rangecache_t *c, const cvx__rkey_t *k, uint64_t at, const uint8_t *rows,
                          size_t rows_len, size_t last_off, bool complete);
/* A commit's index entries, added or removed (before its ts is
 * published): drops the cached ranges that cover any of their keys. An
 * update that keeps a document's key in an index has no entry there and
 * leaves its ranges as they were (the document cache has the revision). */
void cvx__rangecache_apply(cvx__rangecache_t *c, uint64_t ts, const cvx__index_write_t *entries, size_t n);
void cvx__rangecache_stats(cvx__rangecache_t *c, uint64_t *hits, uint64_t *misses, size_t *entries, size_t *bytes);
int cvx__rangecache_row_append(cvx_buf_t *rows, const uint8_t *key, size_t key_len, const uint8_t id[16]);
/* Reads the row at `off`; returns where the next one starts. */
size_t cvx__rangecache_row_next(const uint8_t *rows, size_t off, const uint8_t **key, size_t *key_len,
                                const uint8_t **id);

/* ---- catalog ------------------------------------------------------------------- */

typedef struct cvx__index {
    uint64_t id;
    char *name;
    char **fields; /* user fields; _creationTime and _id are appended */
    size_t nfields;
    bool system;   /* by_id / by_creation_time */
} cvx__index_t;

typedef struct cvx__table {
    uint32_t number;
    char *name;
    cvx__index_t *indexes; /* [0] by_id, [1] by_creation_time, then user */
    size_t nindexes;
} cvx__table_t;

/* An immutable snapshot of the catalog; replaced (copy-on-write) when a
 * table or index is created, so readers never lock. */
typedef struct cvx__catalog {
    atomic_int refs;
    cvx__table_t *tables;
    size_t ntables;
    uint32_t next_table;
    uint64_t next_index;
} cvx__catalog_t;

cvx__catalog_t *cvx__catalog_acquire(cvx_store_t *s);
void cvx__catalog_release(cvx__catalog_t *c);
const cvx__table_t *cvx__catalog_table(const cvx__catalog_t *c, const char *name, size_t len);
const cvx__table_t *cvx__catalog_table_by_number(const cvx__catalog_t *c, uint32_t number);
const cvx__index_t *cvx__table_index(const cvx__table_t *t, const char *name);
/* Copies the catalog (with one reference) for modification. */
cvx__catalog_t *cvx__catalog_clone(const cvx__catalog_t *c);
int cvx__catalog_add_table(cvx__catalog_t *c, const char *name, size_t len, uint32_t number, uint64_t by_id,
                           uint64_t by_creation);
int cvx__catalog_add_index(cvx__catalog_t *c, uint32_t table, uint64_t id, const char *name, const char *const *fields,
                           size_t nfields);
void cvx__catalog_drop_index(cvx__catalog_t *c, uint64_t id);
/* Installs `c` as the current catalog (takes its reference). */
void cvx__catalog_publish(cvx_store_t *s, cvx__catalog_t *c);

/* Appends the index key of `doc` (a parsed stored document) in index `ix`. */
int cvx__index_key(const cvx__index_t *ix, const cvx_value_t *doc, cvx_buf_t *out);
/* Appends the by_id key for an id string. */
int cvx__id_key(const char *id, size_t len, cvx_buf_t *out);

/* ---- hot ranges (hot.c) ---------------------------------------------------------- */

#define CVX__HOT_STRIPES 4096

typedef struct {
    pthread_mutex_t mu;
    uint8_t held[CVX__HOT_STRIPES];
    struct cvx__hot_waiter *queue[CVX__HOT_STRIPES]; /* FIFO of waiters */
    _Atomic uint64_t until[CVX__HOT_STRIPES];        /* hot until (monotonic ns) */
} cvx__hot_t;

void cvx__hot_init(cvx__hot_t *h);
void cvx__hot_destroy(cvx__hot_t *h);

/* ---- the store --------------------------------------------------------------- */

typedef struct commit_entry commit_entry_t; /* commit.c */
typedef struct listener listener_t;         /* store.c */

struct cvx_store {
    const cvx_store_backend_t *be;
    void *be_state;
    cvx_store_config_t cfg;
    char *dir;

    pthread_mutex_t catalog_mu; /* guards `catalog` pointer swaps */
    cvx__catalog_t *catalog;

    pthread_mutex_t commit_mu;   /* serialises writes (OCC check + backend write) */
    /* Group commit: transactions queue here; one leader at a time writes a
     * whole queue with one backend write, then hands the lead on and waits
     * for durability while the next group is written. */
    pthread_mutex_t group_mu;
    struct commit_req *queue_head, *queue_tail;
    bool leader_active;
    /* The pipeline's three watermarks: written <= durable <= ... and
     * latest <= durable. A group is visible in the backend at `written`
     * (mutations read from here: their answers wait for durability), on
     * disk at `durable`, and handed to readers at `latest`, in order. */
    atomic_uint_fast64_t latest;  /* newest published commit ts */
    atomic_uint_fast64_t released; /* ... whose listeners have run: answers
                                      wait for this (a reader's caches
                                      already know the commit) */
    atomic_uint_fast64_t written; /* newest commit ts the backend holds */
    uint64_t last_ts;             /* newest assigned ts (commit_mu) */
    uint64_t group_seq;           /* groups written (commit_mu) */
    /* The syncer thread: groups written and not yet published queue here
     * (in seq order); it syncs them and publishes them. */
    pthread_t syncer;
    bool syncer_started;
    pthread_mutex_t sync_mu;      /* the queue */
    pthread_cond_t sync_cv;
    struct cvx__pub *sq_head, *sq_tail;
    bool sync_stop;
    atomic_uint_fast64_t durable; /* newest commit ts on disk (the syncer writes it) */
    pthread_mutex_t hook_mu;      /* the durability listeners, and their calls */
    listener_t *durable_listeners;
    int next_durable;
    pthread_mutex_t pub_mu;       /* publication, in group order */
    pthread_cond_t pub_cv;
    uint64_t published_seq;       /* groups published or failed (pub_mu) */
    atomic_bool broken;           /* a sync failed: no more writes */
    cvx_err_t broken_err;         /* set once, before broken */
    commit_entry_t *log_head, *log_tail; /* recent commits, oldest first */
    size_t log_len;
    uint64_t log_horizon;        /* every commit with ts > horizon is in the log */

    _Atomic double last_creation_ms;
    /* Numbers handed to tables and indexes created by running transactions
     * (reserved at first insert, made durable by the commit). */
    atomic_uint_fast32_t next_table;
    atomic_uint_fast64_t next_index;

    pthread_mutex_t listen_mu;
    listener_t *listeners;
    int next_listener;

    atomic_uint_fast64_t commits, conflicts, docs_read, docs_written, groups, group_ns, syncs, sync_ns;
    cvx__doccache_t *docs; /* NULL when disabled */
    cvx__rangecache_t *ranges; /* NULL when disabled */
    cvx__hot_t hot;
};

/* The backend's get at t's snapshot through the hot-document cache
 * (appends to value). */
int cvx__store_get(cvx_txn_t *t, const uint8_t id[16], bool *found, bool *deleted, uint32_t *table, cvx_buf_t *value,
                   cvx_err_t *err);

/* Pseudo index 0: the table namespace. A read of a table that does not
 * exist yet, or the creation of one, is a point on this index keyed by the
 * table's name, so creating a table conflicts with (and invalidates) readers
 * that saw it missing. */
#define CVX__TABLES_INDEX 0

/* A range in the read set. */
typedef struct {
    uint64_t index_id;
    cvx_buf_t lo, hi;
    bool hi_inf;
    uint32_t stripe; /* of the range as requested (hot.c); 0 = none */
} cvx__range_t;

struct cvx_readset {
    cvx__range_t *ranges;
    size_t n;
};

/* One document touched by a write transaction: its state at the snapshot
 * and its pending state. */
typedef struct {
    uint8_t id[16];
    char id_text[CVX_ID_MAX_LEN + 1];
    uint32_t table;
    bool existed;   /* at the snapshot */
    char *old_json; /* at the snapshot (NULL if it did not exist) */
    size_t old_len;
    bool deleted;   /* pending state */
    char *new_json; /* pending (NULL when deleted) */
    size_t new_len;
    const char *new_table_name; /* for a table created by this txn */
} cvx__pending_t;

struct cvx_txn {
    cvx_store_t *s;
    cvx_txn_mode_t mode;
    uint64_t ts;
    void *reader;
    cvx__catalog_t *catalog; /* pinned for the transaction */
    cvx__catalog_t *own_catalog; /* tables created by this txn (clone) */
    cvx_arena_t *arena;          /* scratch, reset per operation */
    struct cvx_readset reads;
    cvx__pending_t *pending;
    size_t npending, cap_pending;
    uint32_t *slots; /* open-addressing index into pending (value+1), 0 empty */
    size_t nslots;
    uint64_t docs_read, bytes_read, docs_written, bytes_written;
    char *request_key;    /* cvx_txn_set_request */
    char *request_result;
    size_t request_result_len;
    bool unlimited; /* the store's own reads (listing tables): no limits */
    const cvx_table_def_t *schema; /* cvx_txn_set_schema */
    size_t nschema;
    uint32_t locks[4]; /* hot stripes held until the commit is written */
    size_t nlocks;
};

const cvx__catalog_t *cvx__txn_catalog(const cvx_txn_t *t);
/* t's backend reader, acquired on first use: reads the caches answer need
 * no SQLite connection. */
int cvx__txn_reader(cvx_txn_t *t, void **reader, cvx_err_t *err);
/* Records a range in the read set; `stripe` is the hot-range stripe of
 * the read as requested (0 = none). */
int cvx__txn_read_range(cvx_txn_t *t, uint64_t index_id, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                        size_t hi_len, bool hi_inf, uint32_t stripe);
/* Before a transaction reads a range (as requested, before any page cuts
 * it short): for a write transaction, takes the range's stripe lock if it
 * is hot (see hot.c). Returns the stripe to record with the range (0 for
 * read transactions and the table namespace). */
uint32_t cvx__hot_before_read(cvx_txn_t *t, uint64_t index_id, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                              size_t hi_len, bool hi_inf);
/* Moves a write transaction's snapshot forward to the newest written
 * commit when nothing it read changed in between (commit.c). */
void cvx__txn_refresh(cvx_txn_t *t);
/* Drops the transaction's stripe locks (its commit is written, or it ends). */
void cvx__hot_release(cvx_txn_t *t);
/* A commit conflicted with t: the ranges of t that it wrote into get hot. */
void cvx__hot_lost(cvx_store_t *s, const cvx_txn_t *t, const cvx_commit_info_t *c);
cvx__pending_t *cvx__txn_pending(const cvx_txn_t *t, const uint8_t id[16]);
int cvx__txn_count_read(cvx_txn_t *t, size_t bytes, cvx_err_t *err);
/* Latest visible state of a document in this transaction: from the pending
 * writes, else the backend at the snapshot. *json NULL when absent. The
 * returned JSON lives until the next call (buffer `tmp`). */
int cvx__txn_load(cvx_txn_t *t, const uint8_t id[16], uint32_t table, const char **json, size_t *len,
                  cvx_buf_t *tmp, cvx_err_t *err);

/* ---- the commit path (commit.c), shared with schema changes (schema.c) ---- */

/* The keys a commit writes, for the OCC log and the listeners (offsets,
 * not pointers: the byte buffer may move while it grows). Owns its
 * buffers. */
typedef struct {
    cvx_buf_t bytes;
    struct {
        uint64_t index_id;
        size_t off, len;
    } *keys;
    size_t n, cap;
} cvx__keyset_t;

/* CVX_E_NOMEM or 0. */
int cvx__keyset_add(cvx__keyset_t *k, uint64_t index_id, const char *key, size_t len);
/* Points out[0..m) at keys [from, from + m) of a keyset. */
void cvx__keyset_slice(const cvx__keyset_t *ks, size_t from, size_t m, cvx_written_key_t *out);

/* A batch's documents and index entries while they are built. Owns the
 * arrays and entry_keys; entry keys are offsets into entry_keys
 * (entry_off) until the batch is complete. */
typedef struct {
    cvx__doc_write_t *docs;
    size_t ndocs;
    cvx__index_write_t *entries;
    size_t nentries, cap_entries;
    cvx_buf_t entry_keys; /* bytes of entry keys */
    size_t *entry_off;
} cvx__batch_build_t;

/* Appends an entry (its key copied into entry_keys; id borrowed).
 * CVX_E_NOMEM or 0. */
int cvx__batch_add_entry(cvx__batch_build_t *b, uint64_t index_id, const cvx_buf_t *key, const uint8_t *id,
                         bool deleted);

/* The next commit timestamp (under the commit lock). */
uint64_t cvx__store_next_ts(cvx_store_t *s);
/* Appends a commit to the OCC log (under the commit lock); copies the
 * keys. Out of memory, every older transaction conflicts instead. */
void cvx__store_record_commit(cvx_store_t *s, uint64_t ts, const cvx__keyset_t *ks);
/* Frees the OCC log (cvx_store_close). */
void cvx__store_log_free(cvx_store_t *s);
/* The error of every write after a failed sync. */
int cvx__store_broken_error(cvx_store_t *s, cvx_err_t *err);

/* Something written that the syncer makes durable and then publishes, in
 * the order handed over (every seq the commit lock hands out comes here
 * exactly once, in seq order). last_ts 0: nothing was written, only the
 * seq passes. After publication the syncer calls done(ctx) if set (it
 * frees a group), else touches it no more (a waiter owns it). */
typedef struct cvx__pub {
    struct cvx__pub *next;
    uint64_t seq, last_ts;
    void (*publish)(cvx_store_t *s, void *ctx); /* on the syncer, under pub_mu */
    void (*done)(void *ctx);
    void *ctx;
} cvx__pub_t;

/* Queues p for the syncer (borrowed until it is passed). Under the
 * commit lock, so that the queue is in seq order. */
void cvx__store_hand_to_syncer(cvx_store_t *s, cvx__pub_t *p);
/* Waits for the syncer to pass `p` (handed over by this thread); the
 * outcome of its writes. */
int cvx__store_wait_passed(cvx_store_t *s, const cvx__pub_t *p, cvx_err_t *err);
/* The syncer thread (cvx_store_open); stopping it finishes what is queued
 * first, and does nothing if it never started. CVX_E_INTERNAL or 0. */
int cvx__store_syncer_start(cvx_store_t *s);
void cvx__store_syncer_stop(cvx_store_t *s);

/* Tells the listeners about a published commit (store.c; called by the
 * syncer under pub_mu, so in ts order). */
void cvx__store_notify(cvx_store_t *s, uint64_t ts, const cvx__keyset_t *ks);
/* Runs the durability listeners (store.c; called by the syncer after each
 * publication or failed sync). */
void cvx__store_durable_notify(cvx_store_t *s);

#endif
