/*
 * store — the multi-version document store.
 *
 * Model (Convex's): an append-only log of document revisions and index
 * entries, each stamped with the commit timestamp that wrote it. A reader at
 * snapshot ts S sees, for every document and index key, the newest entry
 * with ts <= S. Index keys are the order-preserving encoding of the indexed
 * field values (value layer), followed by _creationTime and _id, so SQLite's
 * byte order is Convex's value order and an index range is a key range.
 *
 * Transactions: a read transaction reads at one snapshot. A write
 * transaction also buffers its writes (and sees them); commit checks, under
 * the commit lock, that no transaction committed after the snapshot wrote a
 * key inside this transaction's read set (serializable OCC). On conflict
 * commit returns CVX_E_CONFLICT and the caller re-runs the mutation.
 * Commits are durable when cvx_txn_commit returns (the WAL is fsync'd).
 * Timestamps are nanoseconds since the Unix epoch, strictly increasing,
 * also across restarts.
 *
 * The write path is a pipeline: a group of commits is checked and written
 * to the backend under the commit lock, then handed to the store's sync
 * thread, which syncs (one fsync covers every group written before it
 * starts) while the next groups are written, and publishes to readers in
 * order. Read transactions start at the newest published
 * (durable) commit. Write transactions start at the newest written one, so
 * that a mutation behind a commit in flight reads it instead of
 * conflicting with it; a mutation's answer is held until what it read is
 * durable (cvx_txn_commit does this; cvx_store_wait_durable for answers
 * given without a commit). If an fsync fails the store stops accepting
 * writes (reads go on) until it is reopened. A table created by a commit
 * in flight is in the catalog from its write on (the groups written after
 * it must maintain its indexes); at earlier snapshots it reads as empty.
 *
 * Hot ranges: where mutations keep conflicting over the same documents,
 * they take turns (a lock per hot read range, held until the commit is
 * written; see hot.c) instead of retrying each other out.
 *
 * Read sets are lists of index key ranges. They drive OCC and are exported
 * (cvx_txn_readset) so the sync layer can re-run exactly the subscriptions a
 * commit touches (cvx_store_on_commit).
 *
 * Threads: a cvx_store_t is shared; each cvx_txn_t is used by one thread at
 * a time. Reads run in parallel on a pool of SQLite connections; commits are
 * serialised.
 *
 * Caches: committed document revisions (doccache.c, 32 MiB by default)
 * and the rows of index ranges queries read (rangecache.c, 16 MiB) are
 * kept in memory, least recently used out, each with the snapshots it is
 * right for, so repeated point reads and index lookups skip SQLite.
 *
 * Backends: SQLite (embedded, default). The backend is reached through a
 * table of function pointers (cvx_store_backend_t in store_int.h) so that
 * another backend (PostgreSQL) can sit behind the same API; test hooks
 * inject write and fsync failures in front of it.
 */
#ifndef CVX_STORE_H
#define CVX_STORE_H

#include "util/util.h"
#include "value/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cvx_store cvx_store_t;
typedef struct cvx_txn cvx_txn_t;

/* ---- opening -------------------------------------------------------------- */

typedef struct {
    /* Per-transaction limits (0 = default). Convex's: 32000 documents
     * read / 16 MiB read, 16000 written / 16 MiB written. */
    uint64_t max_docs_read;
    uint64_t max_bytes_read;
    uint64_t max_docs_written;
    uint64_t max_bytes_written;
    int read_connections; /* read connections opened in the background at
                             open (more open on demand); default 4 */
    bool synchronous_off; /* benchmarks of the non-durable path only */
    size_t doc_cache_bytes; /* hot-document cache; 0 = default (32 MiB) */
    size_t range_cache_bytes; /* index-range cache; 0 = default (16 MiB) */
    bool no_doc_cache;      /* no caches: every read goes to the backend */
} cvx_store_config_t;

void cvx_store_config_default(cvx_store_config_t *cfg);

/* Opens (creating if needed) the store in directory `dir` (file
 * dir/cvx.sqlite3). *out is NULL on failure. */
int cvx_store_open(const char *dir, const cvx_store_config_t *cfg, cvx_store_t **out, cvx_err_t *err);
/* Waits for no transaction to be open is the caller's job; closes files. */
void cvx_store_close(cvx_store_t *s);

/* The newest committed timestamp (the default snapshot for new reads). */
uint64_t cvx_store_latest_ts(cvx_store_t *s);

/* Waits until the commit at `ts` (or any snapshot ts a write transaction
 * had) is durable and published. CVX_E_IO if it never will be (an fsync
 * failed). Immediate when ts <= cvx_store_latest_ts. */
int cvx_store_wait_durable(cvx_store_t *s, uint64_t ts, cvx_err_t *err);
/* The same without waiting: *ready when it is durable and published;
 * CVX_E_IO if it never will be. */
int cvx_store_check_durable(cvx_store_t *s, uint64_t ts, bool *ready, cvx_err_t *err);
/* Adds a durability listener: cb runs each time commits become durable
 * and published, or an fsync failed, on the store's sync thread (keep it
 * short; it must not wait on the store). A caller that parks answers
 * instead of waiting (cvx_txn_commit_written) learns here when to look at
 * them again with cvx_store_check_durable. Returns a handle > 0, or -1
 * when out of memory. */
int cvx_store_listen_durable(cvx_store_t *s, void (*cb)(void *ctx), void *ctx);
/* Once this returns, the listener is not running and never will. */
void cvx_store_unlisten_durable(cvx_store_t *s, int handle);

/* ---- tables and indexes ---------------------------------------------------- */

/* The name of the table `id` names in the newest catalog, copied into
 * `name`; false for a malformed id or one whose table does not exist. */
bool cvx_store_id_table(cvx_store_t *s, const char *id, size_t len, char name[CVX_MAX_TABLE_NAME + 1]);

#define CVX_INDEX_BY_ID "by_id"
#define CVX_INDEX_BY_CREATION "by_creation_time"

typedef struct {
    const char *name;
    size_t nfields;
    const char *const *fields; /* dotted field paths */
} cvx_index_def_t;

typedef struct {
    const char *name;
    size_t nindexes;
    const cvx_index_def_t *indexes; /* user indexes (system ones implied) */
    /* What its documents must match (the schema's validator, without the
     * system fields), or NULL. Checked on writes only when a transaction
     * was given the schema (cvx_txn_set_schema). */
    const cvx_validator_t *validator;
} cvx_table_def_t;

/* Makes the store's user indexes match `tables` exactly: creates tables
 * that do not exist, creates missing indexes and backfills them from the
 * current documents, drops indexes no longer declared. Tables are never
 * dropped. Atomic: on error nothing changed. `progress` (may be NULL) is
 * called with a line of text during long backfills. */
int cvx_store_apply_indexes(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables,
                            void (*progress)(void *ctx, const char *line), void *progress_ctx, cvx_err_t *err);

/* Creates the host's system tables (names starting with '_') and their
 * indexes if missing; never drops anything. */
int cvx_store_ensure_system_tables(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables, cvx_err_t *err);

/* The id of index `index` of `table` (as used in commit notifications);
 * CVX_E_NOT_FOUND when there is no such table or index. */
int cvx_store_index_id(cvx_store_t *s, const char *table, const char *index, uint64_t *out);

/* Table names, sorted, as a JSON array of {"name","number","documents"}. */
int cvx_store_list_tables(cvx_store_t *s, cvx_buf_t *out_json, cvx_err_t *err);

/* ---- transactions ---------------------------------------------------------- */

typedef enum {
    CVX_TXN_READ = 1,  /* queries: writes fail with CVX_E_FORBIDDEN */
    CVX_TXN_WRITE = 2, /* mutations */
} cvx_txn_mode_t;

/* Begins a transaction at snapshot `ts` (0 = latest committed; for a write
 * transaction, the latest written, see above). A snapshot
 * older than the retained history fails with CVX_E_INVALID_ARGUMENT. */
int cvx_txn_begin(cvx_store_t *s, cvx_txn_mode_t mode, uint64_t ts, cvx_txn_t **out, cvx_err_t *err);
uint64_t cvx_txn_snapshot_ts(const cvx_txn_t *t);
/* Ends a transaction without committing (frees it). NULL is a no-op. */
void cvx_txn_abort(cvx_txn_t *t);
/* Commits (write transactions) and frees the transaction in every case.
 * *commit_ts gets the commit timestamp (for a transaction that wrote
 * nothing: its snapshot ts). CVX_E_CONFLICT when another commit after the
 * snapshot touched the read set. */
int cvx_txn_commit(cvx_txn_t *t, uint64_t *commit_ts, cvx_err_t *err);
/* The same, returning once the commit is written instead of durable: the
 * caller must not act on it (answer, call out) before
 * cvx_store_check_durable or cvx_store_wait_durable says *commit_ts is
 * durable; meanwhile its thread is free (a server parks the answer). */
int cvx_txn_commit_written(cvx_txn_t *t, uint64_t *commit_ts, cvx_err_t *err);

/* Every read and write below appends convex-encoded JSON to `out`.
 *
 * Reads record their key ranges in the read set. Limits (documents / bytes
 * read or written) fail with CVX_E_LIMIT and the limit's name. */

/* Appends the document (with _id and _creationTime) or `null`. A malformed
 * id is CVX_E_INVALID_VALUE; an id of a table that does not exist reads as
 * null. */
int cvx_txn_get(cvx_txn_t *t, const char *id, size_t id_len, cvx_buf_t *out, cvx_err_t *err);
/* The table an id names, as this transaction sees the catalog: *table is
 * NULL when its number names no table. Reads nothing. The name lives as
 * long as the transaction. CVX_E_INVALID_VALUE for a malformed id. */
int cvx_txn_id_table(cvx_txn_t *t, const char *id, size_t id_len, const char **table, cvx_err_t *err);
/* A cvx_id_table_fn over a transaction (ctx is the cvx_txn_t). */
const char *cvx_txn_table_of(void *txn, const char *id, size_t id_len);
/* From now on every document this transaction inserts, patches or
 * replaces in one of `tables` must match its validator, or the write fails
 * with CVX_E_SCHEMA and Convex's message ("Failed to insert or update a
 * document in table \"users\" because it does not match the schema: ...").
 * The array must outlive the transaction. */
void cvx_txn_set_schema(cvx_txn_t *t, const cvx_table_def_t *tables, size_t ntables);

/* Inserts `value` (an object without system fields, checked as a
 * document) into `table` (created on first insert). Appends the new id as a
 * JSON string. */
int cvx_txn_insert(cvx_txn_t *t, const char *table, size_t table_len, const cvx_value_t *value, cvx_buf_t *out,
                   cvx_err_t *err);
/* Shallow merge of `fields` into the document, then removes the fields
 * named in `remove`. System fields may appear only with their current
 * values. CVX_E_NOT_FOUND when the document does not exist (or was deleted). */
int cvx_txn_patch(cvx_txn_t *t, const char *id, size_t id_len, const cvx_value_t *fields,
                  const char *const *remove, size_t nremove, cvx_err_t *err);
/* The same writes for the host's own system tables (names starting with
 * '_'), which functions may read but never write directly. */
int cvx_txn_system_insert(cvx_txn_t *t, const char *table, const cvx_value_t *value, cvx_buf_t *out, cvx_err_t *err);
int cvx_txn_system_patch(cvx_txn_t *t, const char *id, size_t id_len, const cvx_value_t *fields, cvx_err_t *err);
int cvx_txn_system_delete(cvx_txn_t *t, const char *id, size_t id_len, cvx_err_t *err);

/* Replaces the whole body (system fields kept). */
int cvx_txn_replace(cvx_txn_t *t, const char *id, size_t id_len, const cvx_value_t *value, cvx_err_t *err);
int cvx_txn_delete(cvx_txn_t *t, const char *id, size_t id_len, cvx_err_t *err);

/* ---- idempotent requests ------------------------------------------------- */

/* Records, durably and atomically with this transaction's writes, that it
 * answered request `key` with `result` (JSON). A retried request finds it
 * with cvx_store_find_request instead of running again. Copies both. */
int cvx_txn_set_request(cvx_txn_t *t, const char *key, const char *result, size_t len, cvx_err_t *err);
/* *found, and the commit ts and result of a recorded request; returns once
 * that commit is durable (it may have been only written). */
int cvx_store_find_request(cvx_store_t *s, const char *key, bool *found, uint64_t *ts, cvx_buf_t *result,
                           cvx_err_t *err);

/* ---- queries --------------------------------------------------------------- */

typedef enum { CVX_OP_EQ = 1, CVX_OP_GT, CVX_OP_GTE, CVX_OP_LT, CVX_OP_LTE } cvx_range_op_t;

typedef struct {
    const char *field;
    cvx_range_op_t op;
    const cvx_value_t *value;
} cvx_range_t;

typedef struct {
    const char *table;
    const char *index;          /* NULL = by_creation_time */
    const cvx_range_t *range;   /* in index-field order (see docs/abi.md) */
    size_t nrange;
    const cvx_value_t *filter;  /* expression tree as in docs/abi.md, or NULL */
    bool desc;
    int64_t limit;              /* < 0 = no limit */
    const char *cursor;         /* continueCursor of the previous page or NULL */
    /* A page's fixed end: a continueCursor this page ends at (inclusive;
     * limit is then ignored) or NULL. Re-running a page with the end it
     * had keeps its boundary while other writes move documents in or out
     * (usePaginatedQuery's pages stay adjacent). */
    const char *end_cursor;
    /* With end_cursor, a page of more than split_over documents also gets
     * "splitCursor" (a cursor at its middle) and "pageStatus":
     * "SplitRecommended"; 0 = never. */
    int64_t split_over;
    cvx_buf_t *cursor_out;      /* gets the continueCursor too (no quotes); may be NULL */
    /* Starts each document of "page", and the "]" that closes it, on a new
     * line (still the same JSON): a reader can then cut the page into
     * documents without parsing it. */
    bool lines;
} cvx_query_t;

/* Runs a query. Appends {"page":[...],"isDone":bool,"continueCursor":str}
 * (and "splitCursor", "pageStatus" when a page with end_cursor is split).
 * The read set gets exactly the key interval scanned: up to the last
 * document returned when the page is full, the whole range when done. An
 * unknown table reads as empty; an unknown index or a malformed range is
 * CVX_E_INVALID_ARGUMENT naming it. */
int cvx_txn_query(cvx_txn_t *t, const cvx_query_t *q, cvx_buf_t *out, cvx_err_t *err);
/* Counts the documents the query would return (ignores limit and cursor). */
int cvx_txn_count(cvx_txn_t *t, const cvx_query_t *q, uint64_t *count, cvx_err_t *err);

/* Evaluates a filter expression (docs/abi.md) against a document; used by
 * the query engine and by tests. */
int cvx_filter_eval(cvx_arena_t *a, const cvx_value_t *expr, const cvx_value_t *doc, bool *match, cvx_err_t *err);

/* ---- read sets and commit notifications ----------------------------------- */

/* A key interval [lo, hi) of one index, in encoded-key space. hi_len == 0
 * with hi_inf means "to the end of the index". */
typedef struct {
    uint64_t index_id;
    uint8_t *lo;
    size_t lo_len;
    uint8_t *hi;
    size_t hi_len;
    bool hi_inf;
} cvx_key_range_t;

typedef struct cvx_readset cvx_readset_t;

/* Takes a copy of the transaction's read set (owned by the caller; free
 * with cvx_readset_free). Call before commit/abort. */
cvx_readset_t *cvx_txn_readset(const cvx_txn_t *t);
void cvx_readset_free(cvx_readset_t *r);
size_t cvx_readset_len(const cvx_readset_t *r);
/* The i-th range of a read set; its pointers borrow from r. */
void cvx_readset_range(const cvx_readset_t *r, size_t i, cvx_key_range_t *out);
/* Is (index_id, key) inside the range? */
bool cvx_key_range_contains(const cvx_key_range_t *r, uint64_t index_id, const uint8_t *key, size_t len);

/* A range index (rangeindex.c): many key ranges, and which of them hold a
 * written key, found without a scan of them all. Not thread-safe: its
 * owner locks. */
typedef struct cvx_rindex cvx_rindex_t;
/* One filed range, embedded in its owner's memory: set `owner` and `r`
 * (whose bytes must outlive the filing) before cvx_rindex_add; the rest is
 * the index's. */
typedef struct cvx_rindex_reg {
    struct cvx_rindex_reg *prev, *next;
    void *owner;
    cvx_key_range_t r;
    uint64_t hash;
    size_t clen;
    bool filed;
} cvx_rindex_reg_t;
int cvx_rindex_new(cvx_rindex_t **out);
void cvx_rindex_free(cvx_rindex_t *x);
/* Files a range; CVX_E_NOMEM leaves it out (and the index as it was). */
int cvx_rindex_add(cvx_rindex_t *x, cvx_rindex_reg_t *reg);
/* Files n ranges, all or none (CVX_E_NOMEM: none). */
int cvx_rindex_add_all(cvx_rindex_t *x, cvx_rindex_reg_t *regs, size_t n);
/* Takes a filed range out (a range not filed is left alone). */
void cvx_rindex_remove(cvx_rindex_t *x, cvx_rindex_reg_t *reg);
/* Calls fn(owner, ctx) for every filed range that holds (index_id, key),
 * once per range (an owner with several such ranges is called several
 * times). fn must not add or remove ranges. */
void cvx_rindex_match(cvx_rindex_t *x, uint64_t index_id, const uint8_t *key, size_t len,
                      void (*fn)(void *owner, void *ctx), void *ctx);

/* A commit's written keys, as handed to commit listeners. */
typedef struct {
    uint64_t index_id;
    const uint8_t *key;
    size_t key_len;
} cvx_written_key_t;

typedef struct {
    uint64_t ts;
    const cvx_written_key_t *keys;
    size_t nkeys;
} cvx_commit_info_t;

/* Does any written key of `c` fall inside `r`? */
bool cvx_readset_overlaps(const cvx_readset_t *r, const cvx_commit_info_t *c);

/* Registers a listener called after each commit is durable, on a
 * committing thread, in ts order, while the publication lock is held (keep
 * it short: queue work; do not commit from it). Returns a handle for
 * cvx_store_unlisten. */
typedef void (*cvx_commit_cb)(void *ctx, const cvx_commit_info_t *c);
int cvx_store_listen(cvx_store_t *s, cvx_commit_cb cb, void *ctx);
void cvx_store_unlisten(cvx_store_t *s, int handle);

/* ---- statistics ------------------------------------------------------------ */

typedef struct {
    uint64_t commits;
    uint64_t conflicts;
    uint64_t docs_read, docs_written;
    uint64_t groups;          /* backend writes (commits / groups = group size) */
    uint64_t group_ns;        /* time spent writing groups, in total */
    uint64_t syncs;           /* fsyncs (each makes every group written before it durable) */
    uint64_t sync_ns;         /* time spent in them, in total */
    uint64_t doc_cache_hits, doc_cache_misses; /* point reads of documents */
    size_t doc_cache_entries, doc_cache_bytes;
    uint64_t range_cache_hits, range_cache_misses; /* index ranges of queries */
    size_t range_cache_entries, range_cache_bytes;
} cvx_store_stats_t;

void cvx_store_stats(cvx_store_t *s, cvx_store_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
