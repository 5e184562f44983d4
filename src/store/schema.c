/* Schema changes: the tables and indexes a deploy declares, and the
 * host's own system tables; and the catalog as it is listed (tables with
 * their document counts, an index's id).
 *
 * A change runs under the commit lock, so no commit is written while it
 * is built: it diffs the declared indexes against the catalog (dropping
 * the user indexes no longer declared, or declared with other fields),
 * creates the missing tables and indexes in a copy of the catalog,
 * backfills each new index from the documents as of `written`, then
 * writes everything as one commit and hands it to the syncer (commit.c),
 * which publishes the new catalog with the commit's timestamp once it is
 * durable. */
#include "store/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One schema change while it is built (under the commit lock). */
typedef struct {
    cvx_store_t *s;
    const cvx_table_def_t *tables; /* declared (borrowed) */
    size_t ntables;
    void (*progress)(void *ctx, const char *line); /* NULL: silent */
    void *progress_ctx;
    cvx__catalog_t *cur;  /* the catalog before the change (a reference) */
    cvx__catalog_t *next; /* the catalog after it (a reference; NULL once published) */
    uint64_t *dropped;    /* ids of the indexes dropped (owned) */
    size_t ndropped, cap_dropped;
    cvx__table_row_t *new_tables; /* owned; names point into next */
    size_t nnew_tables;
    cvx__index_row_t *new_indexes; /* owned; names point into next, fields into fields_json */
    size_t nnew_indexes, cap_indexes;
    cvx_buf_t fields_json[256]; /* per new user index (owned) */
    size_t nfields_json;
    cvx__batch_build_t b; /* backfilled entries (owned; see backfill_row) */
    cvx_txn_t *reader;    /* owned: at `written`, begun at the first new index */
    bool changed;
} change_t;

/* One line of the deploy's progress output (cut at 255 bytes). */
__attribute__((format(printf, 2, 3))) static void report(const change_t *c, const char *fmt, ...) {
    if (!c->progress) return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->progress(c->progress_ctx, line);
}

/* ---- diff: declared against existing ------------------------------------------------ */

/* system: the tables are the host's own (names start with '_'), else the
 * user's. */
static int check_declared(const cvx_table_def_t *tables, size_t ntables, bool system, cvx_err_t *err) {
    for (size_t i = 0; i < ntables; i++) {
        if (!cvx_table_name_valid(tables[i].name, strlen(tables[i].name)) || (tables[i].name[0] == '_') != system)
            return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "schema: invalid table name \"%s\"", tables[i].name);
        for (size_t k = 0; k < tables[i].nindexes; k++) {
            const cvx_index_def_t *d = &tables[i].indexes[k];
            if (!d->name[0] || !strcmp(d->name, CVX_INDEX_BY_ID) || !strcmp(d->name, CVX_INDEX_BY_CREATION) ||
                d->nfields == 0 || d->nfields > 16)
                return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "schema: index \"%s\" on \"%s\" is invalid", d->name,
                                   tables[i].name);
        }
    }
    return CVX_OK;
}

static bool same_fields(const cvx__index_t *ix, const cvx_index_def_t *d) {
    if (ix->nfields != d->nfields) return false;
    for (size_t i = 0; i < d->nfields; i++)
        if (strcmp(ix->fields[i], d->fields[i]) != 0) return false;
    return true;
}

static const cvx_index_def_t *declared(const cvx_table_def_t *tables, size_t n, const char *table, const char *index) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tables[i].name, table) != 0) continue;
        for (size_t k = 0; k < tables[i].nindexes; k++)
            if (strcmp(tables[i].indexes[k].name, index) == 0) return &tables[i].indexes[k];
    }
    return NULL;
}

/* Drops from c->next the user indexes that are no longer declared, or
 * declared with other fields (they are created again); system tables are
 * left alone. */
static int drop_undeclared(change_t *c, cvx_err_t *err) {
    int rc = CVX_OK;
    for (size_t i = 0; !rc && i < c->next->ntables; i++) {
        const cvx__table_t *tbl = &c->next->tables[i];
        if (tbl->name[0] == '_') continue;
        for (size_t k = 0; k < tbl->nindexes; k++) {
            const cvx__index_t *ix = &tbl->indexes[k];
            if (ix->system) continue;
            const cvx_index_def_t *d = declared(c->tables, c->ntables, tbl->name, ix->name);
            if (d && same_fields(ix, d)) continue;
            if (c->ndropped == c->cap_dropped) {
                uint64_t *p = cvx_realloc(c->dropped, 2 * c->cap_dropped * sizeof *p);
                if (!p) {
                    rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                    break;
                }
                c->dropped = p;
                c->cap_dropped *= 2;
            }
            c->dropped[c->ndropped++] = ix->id;
            report(c, "dropping index %s.%s", tbl->name, ix->name);
        }
    }
    for (size_t i = 0; i < c->ndropped; i++) cvx__catalog_drop_index(c->next, c->dropped[i]);
    c->changed = c->ndropped > 0;
    return rc;
}

/* ---- creating tables and indexes --------------------------------------------------- */

/* Room for n more rows in new_indexes (n <= 2: one doubling is enough). */
static int reserve_index_rows(change_t *c, size_t n, cvx_err_t *err) {
    if (c->nnew_indexes + n < c->cap_indexes) return CVX_OK;
    cvx__index_row_t *p = cvx_realloc(c->new_indexes, 2 * c->cap_indexes * sizeof *p);
    if (!p) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    c->new_indexes = p;
    c->cap_indexes *= 2;
    return CVX_OK;
}

/* A declared table missing from c->next, with its two system indexes. */
static int create_table(change_t *c, const cvx_table_def_t *td, cvx_err_t *err) {
    uint32_t number = (uint32_t)atomic_fetch_add(&c->s->next_table, 1);
    uint64_t ix = atomic_fetch_add(&c->s->next_index, 2);
    if (cvx__catalog_add_table(c->next, td->name, strlen(td->name), number, ix, ix + 1))
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    const cvx__table_t *tbl = cvx__catalog_table(c->next, td->name, strlen(td->name));
    c->new_tables[c->nnew_tables++] = (cvx__table_row_t){number, tbl->name};
    int rc = reserve_index_rows(c, 2, err);
    if (rc) return rc;
    c->new_indexes[c->nnew_indexes++] = (cvx__index_row_t){ix, number, CVX_INDEX_BY_ID, "[\"_id\"]"};
    c->new_indexes[c->nnew_indexes++] = (cvx__index_row_t){ix + 1, number, CVX_INDEX_BY_CREATION, "[\"_creationTime\"]"};
    c->changed = true;
    return CVX_OK;
}

/* The fields of index d as the backend stores them (a JSON array), in the
 * next slot of c->fields_json. */
static int fields_json(change_t *c, const cvx_index_def_t *d, const char **out, cvx_err_t *err) {
    cvx_buf_t *fj = &c->fields_json[c->nfields_json++];
    memset(fj, 0, sizeof *fj);
    cvx_buf_append_char(fj, '[');
    for (size_t f = 0; f < d->nfields; f++) {
        if (f) cvx_buf_append_char(fj, ',');
        cvx_buf_append_json_string(fj, d->fields[f], strlen(d->fields[f]));
    }
    cvx_buf_append_char(fj, ']');
    if (fj->oom) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    *out = fj->data;
    return CVX_OK;
}

/* ---- backfilling ------------------------------------------------------------------- */

typedef struct {
    change_t *c;
    const cvx__index_t *ix; /* the new index, in c->next */
    const char *table;
    cvx_arena_t *a;
    cvx_buf_t doc, key;
    cvx_buf_t prev;
    bool have_prev;
    uint64_t n;
    cvx_err_t *err;
} backfill_t;

/* One row of the table's by_id index: the newest revision of each id
 * comes first; a live document gets its entry in the new index. */
static int backfill_row(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *id, uint64_t ts, bool deleted) {
    backfill_t *bf = ctx;
    if (bf->have_prev && bf->prev.len == key_len && memcmp(bf->prev.data, key, key_len) == 0) return 0;
    cvx_buf_reset(&bf->prev);
    cvx_buf_append(&bf->prev, key, key_len);
    bf->have_prev = true;
    if (deleted) return 0;
    bool found = false, gone = false;
    uint32_t table = 0;
    cvx_buf_reset(&bf->doc);
    int rc = cvx__store_get(bf->c->reader, id, &found, &gone, &table, &bf->doc, bf->err);
    if (rc || !found || gone) return rc;
    cvx_arena_reset(bf->a);
    cvx_value_t *doc;
    rc = cvx_json_parse(bf->a, bf->doc.data, bf->doc.len, &doc, bf->err);
    if (rc) return rc == CVX_E_NOMEM ? rc : cvx_err_set(bf->err, CVX_E_STORE, "corrupt stored document in %s", bf->table);
    cvx_buf_reset(&bf->key);
    if (cvx__index_key(bf->ix, doc, &bf->key) || cvx__batch_add_entry(&bf->c->b, bf->ix->id, &bf->key, NULL, false))
        return cvx_err_set(bf->err, CVX_E_NOMEM, "out of memory");
    bf->n++;
    if (bf->n % 10000 == 0)
        report(bf->c, "backfilling index %s.%s: %llu documents", bf->table, bf->ix->name, (unsigned long long)bf->n);
    /* Record the id: entry ids point into a dedicated id buffer. */
    return cvx_buf_append(&bf->c->b.entry_keys, id, 16) ? CVX_E_NOMEM : 0;
}

/* Fills index d of table td (tbl in c->next) from the documents the table
 * had before the change, at `written`: every commit the backend holds,
 * durable or not yet (under the commit lock, no more arrive). */
static int backfill(change_t *c, const cvx_table_def_t *td, const cvx__table_t *tbl, const cvx_index_def_t *d,
                    cvx_err_t *err) {
    int rc = c->reader ? CVX_OK : cvx_txn_begin(c->s, CVX_TXN_WRITE, 0, &c->reader, err);
    if (rc) return rc;
    const cvx__table_t *old_tbl = cvx__catalog_table(c->cur, td->name, strlen(td->name));
    if (!old_tbl) return CVX_OK; /* a new table has no documents */
    backfill_t bf = {.c = c, .ix = cvx__table_index(tbl, d->name), .table = tbl->name, .a = cvx_arena_new(8192),
                     .err = err};
    void *conn = NULL;
    if (!bf.a) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    else rc = cvx__txn_reader(c->reader, &conn, err);
    if (!rc)
        rc = c->s->be->scan(conn, old_tbl->indexes[0].id, (const uint8_t *)"", 0, NULL, 0, false, c->reader->ts,
                            backfill_row, &bf, err);
    if (!rc && bf.n)
        report(c, "backfilled index %s.%s: %llu documents", tbl->name, d->name, (unsigned long long)bf.n);
    cvx_arena_free(bf.a);
    cvx_buf_free(&bf.doc);
    cvx_buf_free(&bf.key);
    cvx_buf_free(&bf.prev);
    return rc;
}

/* A declared index missing from table td in c->next, backfilled. */
static int create_index(change_t *c, const cvx_table_def_t *td, const cvx_index_def_t *d, cvx_err_t *err) {
    if (c->nfields_json >= CVX_ARRAY_LEN(c->fields_json))
        return cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "schema: too many new indexes in one deploy (max %zu)",
                           CVX_ARRAY_LEN(c->fields_json));
    const cvx__table_t *tbl = cvx__catalog_table(c->next, td->name, strlen(td->name));
    uint64_t id = atomic_fetch_add(&c->s->next_index, 1);
    if (cvx__catalog_add_index(c->next, tbl->number, id, d->name, d->fields, d->nfields))
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    const char *fields = NULL;
    int rc = fields_json(c, d, &fields, err);
    if (!rc) rc = reserve_index_rows(c, 1, err);
    if (rc) return rc;
    tbl = cvx__catalog_table(c->next, td->name, strlen(td->name)); /* adding the index moved it */
    c->new_indexes[c->nnew_indexes++] = (cvx__index_row_t){id, tbl->number, cvx__table_index(tbl, d->name)->name, fields};
    c->changed = true;
    return backfill(c, td, tbl, d, err);
}

/* Creates the declared tables and indexes that c->next lacks. */
static int create_declared(change_t *c, cvx_err_t *err) {
    int rc = CVX_OK;
    for (size_t i = 0; !rc && i < c->ntables; i++) {
        const cvx_table_def_t *td = &c->tables[i];
        if (!cvx__catalog_table(c->next, td->name, strlen(td->name))) rc = create_table(c, td, err);
        for (size_t k = 0; !rc && k < td->nindexes; k++) {
            const cvx__table_t *tbl = cvx__catalog_table(c->next, td->name, strlen(td->name));
            if (!cvx__table_index(tbl, td->indexes[k].name)) rc = create_index(c, td, &td->indexes[k], err);
        }
    }
    return rc;
}

/* ---- writing and publishing -------------------------------------------------------- */

typedef struct {
    cvx__catalog_t *catalog;
    uint64_t ts;
    const cvx__keyset_t *ks;
} schema_pub_t;

/* The syncer publishes the change once it is durable: the new catalog
 * first, then its ts. */
static void publish_schema(cvx_store_t *s, void *ctx) {
    schema_pub_t *p = ctx;
    cvx__catalog_publish(s, p->catalog);
    atomic_store(&s->latest, p->ts);
    cvx__store_notify(s, p->ts, p->ks);
}

/* A written change, in the OCC log with the names of the tables it
 * created: readers of a table that did not exist must see it now. */
static void record_written(change_t *c, uint64_t ts, cvx__keyset_t *ks) {
    cvx_store_t *s = c->s;
    bool ok = true;
    for (size_t i = 0; i < c->nnew_tables && ok; i++) {
        cvx_buf_t key = {0};
        ok = !cvx__id_key(c->new_tables[i].name, strlen(c->new_tables[i].name), &key) && !key.oom &&
             !cvx__keyset_add(ks, CVX__TABLES_INDEX, key.data, key.len);
        cvx_buf_free(&key);
    }
    /* Without the keys, every transaction older than this commit must
     * conflict (as when cvx__store_record_commit runs out of memory). */
    if (ok) cvx__store_record_commit(s, ts, ks);
    else s->log_horizon = ts;
    /* The new indexes' entries are at ts: a reader before it that already
     * has the new catalog (it is published before `latest` moves) must not
     * cache their absence. */
    if (s->ranges) cvx__rangecache_apply(s->ranges, ts, NULL, 0);
    atomic_store(&s->written, ts);
}

/* Writes the change as one commit and waits for the syncer to pass it.
 * Still under the commit lock: no group is written with the old catalog
 * after this one, and the new catalog reaches readers together with the
 * ts its index entries carry. */
static int write_change(change_t *c, cvx_err_t *err) {
    cvx_store_t *s = c->s;
    cvx__batch_build_t *b = &c->b;
    /* Entry keys and ids are interleaved in entry_keys: key, then the
     * 16-byte id (see backfill_row). */
    for (size_t i = 0; i < b->nentries; i++) {
        b->entries[i].key = (const uint8_t *)b->entry_keys.data + b->entry_off[i];
        b->entries[i].id = (const uint8_t *)b->entry_keys.data + b->entry_off[i] + b->entries[i].key_len;
    }
    uint64_t ts = cvx__store_next_ts(s);
    cvx__batch_t batch = {.ts = ts,
                          .entries = b->entries,
                          .nentries = b->nentries,
                          .new_tables = c->new_tables,
                          .nnew_tables = c->nnew_tables,
                          .new_indexes = c->new_indexes,
                          .nnew_indexes = c->nnew_indexes,
                          .dropped_indexes = c->dropped,
                          .ndropped_indexes = c->ndropped};
    const cvx__batch_t *one = &batch;
    cvx__pub_t pub = {.seq = ++s->group_seq, .publish = publish_schema};
    /* After a failed fsync nothing more is written (the syncer still
     * passes the seq on). */
    int rc = atomic_load(&s->broken) ? cvx__store_broken_error(s, err) : cvx__store_backend_write(s, &one, 1, err);
    cvx__keyset_t ks;
    memset(&ks, 0, sizeof ks);
    if (!rc) record_written(c, ts, &ks);
    schema_pub_t sp = {c->next, ts, &ks};
    pub.last_ts = rc ? 0 : ts;
    pub.ctx = &sp;
    cvx__store_hand_to_syncer(s, &pub);
    int frc = cvx__store_wait_passed(s, &pub, err);
    if (!rc) rc = frc;
    if (!rc) c->next = NULL; /* published */
    cvx_buf_free(&ks.bytes);
    cvx_free(ks.keys);
    return rc;
}

/* ---- the whole change -------------------------------------------------------------- */

static void change_free(change_t *c) {
    cvx__catalog_release(c->cur);
    cvx__catalog_release(c->next);
    for (size_t i = 0; i < c->nfields_json; i++) cvx_buf_free(&c->fields_json[i]);
    cvx_free(c->dropped);
    cvx_free(c->new_tables);
    cvx_free(c->new_indexes);
    cvx_free(c->b.entries);
    cvx_free(c->b.entry_off);
    cvx_buf_free(&c->b.entry_keys);
}

/* system: the tables are the host's own (names start with '_'); nothing
 * is dropped. Otherwise: the user's schema; user indexes not declared are
 * dropped, system tables are left alone. */
static int apply_indexes(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables, bool system,
                         void (*progress)(void *ctx, const char *line), void *progress_ctx, cvx_err_t *err) {
    int rc = check_declared(tables, ntables, system, err);
    if (rc) return rc;
    change_t c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.tables = tables;
    c.ntables = ntables;
    c.progress = progress;
    c.progress_ctx = progress_ctx;
    pthread_mutex_lock(&s->commit_mu);
    c.cur = cvx__catalog_acquire(s);
    c.next = cvx__catalog_clone(c.cur);
    c.cap_dropped = 64;
    c.dropped = cvx_calloc(c.cap_dropped, sizeof *c.dropped);
    c.new_tables = cvx_calloc(ntables + 1, sizeof *c.new_tables);
    c.cap_indexes = 16;
    c.new_indexes = cvx_calloc(c.cap_indexes, sizeof *c.new_indexes);
    if (!c.next || !c.dropped || !c.new_tables || !c.new_indexes) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc && !system) rc = drop_undeclared(&c, err);
    if (!rc) rc = create_declared(&c, err);
    if (!rc && c.changed) rc = write_change(&c, err);
    cvx_txn_abort(c.reader);
    pthread_mutex_unlock(&s->commit_mu);
    change_free(&c);
    return rc;
}

/* ---- entry points and the catalog as listed ---------------------------------------- */

int cvx_store_apply_indexes(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables,
                            void (*progress)(void *ctx, const char *line), void *progress_ctx, cvx_err_t *err) {
    return apply_indexes(s, tables, ntables, false, progress, progress_ctx, err);
}

int cvx_store_ensure_system_tables(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables, cvx_err_t *err) {
    return apply_indexes(s, tables, ntables, true, NULL, NULL, err);
}

int cvx_store_list_tables(cvx_store_t *s, cvx_buf_t *out, cvx_err_t *err) {
    cvx__catalog_t *c = cvx__catalog_acquire(s);
    cvx_txn_t *t = NULL;
    int rc = cvx_txn_begin(s, CVX_TXN_READ, 0, &t, err);
    if (!rc) t->unlimited = true; /* counts every document of every table */
    cvx_buf_append_char(out, '[');
    /* Sorted by name for stable output. */
    const cvx__table_t **sorted = cvx_calloc(c->ntables + 1, sizeof *sorted);
    if (!sorted && !rc) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < c->ntables; i++) {
        size_t k = i;
        while (k > 0 && strcmp(sorted[k - 1]->name, c->tables[i].name) > 0) {
            sorted[k] = sorted[k - 1];
            k--;
        }
        sorted[k] = &c->tables[i];
    }
    for (size_t i = 0; !rc && i < c->ntables; i++) {
        cvx_query_t q = {.table = sorted[i]->name, .index = CVX_INDEX_BY_ID, .limit = -1};
        uint64_t n = 0;
        rc = cvx_txn_count(t, &q, &n, err);
        if (rc) break;
        if (i) cvx_buf_append_char(out, ',');
        cvx_buf_append_str(out, "{\"name\":");
        cvx_buf_append_json_string(out, sorted[i]->name, strlen(sorted[i]->name));
        cvx_buf_printf(out, ",\"number\":%u,\"documents\":%llu}", (unsigned)sorted[i]->number, (unsigned long long)n);
    }
    cvx_buf_append_char(out, ']');
    cvx_free(sorted);
    cvx_txn_abort(t);
    cvx__catalog_release(c);
    if (!rc && out->oom) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    return rc;
}

int cvx_store_index_id(cvx_store_t *s, const char *table, const char *index, uint64_t *out) {
    cvx__catalog_t *c = cvx__catalog_acquire(s);
    const cvx__table_t *t = cvx__catalog_table(c, table, strlen(table));
    const cvx__index_t *ix = t ? cvx__table_index(t, index) : NULL;
    if (ix) *out = ix->id;
    cvx__catalog_release(c);
    return ix ? CVX_OK : CVX_E_NOT_FOUND;
}
