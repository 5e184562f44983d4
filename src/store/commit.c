/* The commit path: OCC, index maintenance, group commit, durability and
 * publication.
 *
 * A committing transaction queues; one leader at a time takes the queue
 * and writes it as a group under the commit lock (write_group): each
 * member is checked (OCC) against the in-memory log of recent commits and
 * the members accepted before it, gets its timestamp, and has its index
 * entries computed with the catalog current at commit time (so an index
 * created while it ran is still maintained); then one backend write holds
 * the whole group. The syncer thread makes written groups durable with
 * one sync and publishes them, in order: the new timestamp reaches
 * readers, and the listeners run, only after the commit is durable.
 * Schema changes (schema.c) take the same lock and hand their write to
 * the same syncer, so they are ordered with the groups. */
#include "store/store_int.h"

#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MAX_ENTRIES 20000
#define LOG_MAX_AGE_NS (120ull * 1000000000ull)

/* A commit in the OCC log: the keys it wrote. */
struct commit_entry {
    commit_entry_t *next, *prev;
    uint64_t ts;
    cvx_buf_t bytes;          /* all key bytes */
    cvx_written_key_t *keys;  /* point into bytes */
    size_t nkeys;
};

/* ---- timestamps, keysets, batches ---------------------------------------------- */

uint64_t cvx__store_next_ts(cvx_store_t *s) {
    uint64_t now = cvx_now_ns();
    uint64_t ts = now > s->last_ts ? now : s->last_ts + 1;
    s->last_ts = ts;
    return ts;
}

int cvx__keyset_add(cvx__keyset_t *k, uint64_t index_id, const char *key, size_t len) {
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        void *p = cvx_realloc(k->keys, cap * sizeof *k->keys);
        if (!p) return CVX_E_NOMEM;
        k->keys = p;
        k->cap = cap;
    }
    k->keys[k->n].index_id = index_id;
    k->keys[k->n].off = k->bytes.len;
    k->keys[k->n].len = len;
    k->n++;
    return cvx_buf_append(&k->bytes, key, len);
}

void cvx__keyset_slice(const cvx__keyset_t *ks, size_t from, size_t m, cvx_written_key_t *out) {
    for (size_t j = 0; j < m; j++)
        out[j] = (cvx_written_key_t){ks->keys[from + j].index_id, (const uint8_t *)ks->bytes.data + ks->keys[from + j].off,
                                     ks->keys[from + j].len};
}

int cvx__batch_add_entry(cvx__batch_build_t *b, uint64_t index_id, const cvx_buf_t *key, const uint8_t *id,
                         bool deleted) {
    if (b->nentries == b->cap_entries) {
        size_t cap = b->cap_entries ? b->cap_entries * 2 : 16;
        cvx__index_write_t *e = cvx_realloc(b->entries, cap * sizeof *e);
        size_t *o = e ? cvx_realloc(b->entry_off, cap * sizeof *o) : NULL;
        if (e) b->entries = e;
        if (!o) return CVX_E_NOMEM;
        b->entry_off = o;
        b->cap_entries = cap;
    }
    b->entries[b->nentries] = (cvx__index_write_t){index_id, NULL, key->len, id, deleted};
    b->entry_off[b->nentries] = b->entry_keys.len;
    b->nentries++;
    return cvx_buf_append(&b->entry_keys, key->data, key->len);
}

/* ---- the OCC log ----------------------------------------------------------------- */

static void free_entry(commit_entry_t *e) {
    cvx_buf_free(&e->bytes);
    cvx_free(e->keys);
    cvx_free(e);
}

static void log_trim(cvx_store_t *s, uint64_t now_ts) {
    while (s->log_head && (s->log_len > LOG_MAX_ENTRIES || s->log_head->ts + LOG_MAX_AGE_NS < now_ts)) {
        commit_entry_t *e = s->log_head;
        s->log_head = e->next;
        if (s->log_head) s->log_head->prev = NULL;
        else s->log_tail = NULL;
        s->log_horizon = e->ts;
        s->log_len--;
        free_entry(e);
    }
}

static bool conflicts(cvx_store_t *s, const cvx_txn_t *t, uint64_t *with_ts) {
    if (t->ts < s->log_horizon) {
        *with_ts = s->log_horizon;
        return true; /* too old to check precisely */
    }
    /* Newest first, down to the snapshot: a transaction only checks the
     * commits it could not see, however long the log is. */
    for (commit_entry_t *e = s->log_tail; e && e->ts > t->ts; e = e->prev) {
        cvx_commit_info_t info = {e->ts, e->keys, e->nkeys};
        if (cvx_readset_overlaps(&t->reads, &info)) {
            *with_ts = e->ts;
            cvx__hot_lost(s, t, &info);
            return true;
        }
    }
    return false;
}

/* Moves a write transaction's snapshot to the newest written commit if
 * nothing it read has changed since its snapshot: its reads and pending
 * writes are then exactly what it would have seen there, and what it reads
 * next includes the commits in between (hot.c calls this after waiting for
 * a stripe, whose previous holder has just written). */
void cvx__txn_refresh(cvx_txn_t *t) {
    cvx_store_t *s = t->s;
    if (t->own_catalog || t->ts >= atomic_load(&s->written)) return;
    /* Only while the pinned catalog is still the current one: a table
     * created in between must not look missing at the new snapshot, and
     * the catalog cannot be swapped (callers hold pointers into it). */
    cvx__catalog_t *c = cvx__catalog_acquire(s);
    bool same = c == t->catalog;
    cvx__catalog_release(c);
    if (!same) return;
    uint64_t with = 0;
    if (t->reads.n == 0 && t->npending == 0) {
        t->ts = atomic_load(&s->written);
        return;
    }
    pthread_mutex_lock(&s->commit_mu);
    if (!conflicts(s, t, &with)) t->ts = atomic_load(&s->written);
    pthread_mutex_unlock(&s->commit_mu);
}

/* Appends a commit to the OCC log (a copy of its keys: the keyset is still
 * needed to notify the listeners once the commit is durable). */
void cvx__store_record_commit(cvx_store_t *s, uint64_t ts, const cvx__keyset_t *ks) {
    commit_entry_t *e = cvx_calloc(1, sizeof *e);
    cvx_written_key_t *keys = e ? cvx_calloc(ks->n ? ks->n : 1, sizeof *keys) : NULL;
    if (!keys || cvx_buf_append(&e->bytes, ks->bytes.data, ks->bytes.len)) {
        if (e) cvx_buf_free(&e->bytes);
        cvx_free(keys);
        cvx_free(e);
        /* Without a log entry concurrent transactions cannot be checked:
         * make all of them conflict instead. */
        s->log_horizon = ts;
        return;
    }
    e->ts = ts;
    for (size_t i = 0; i < ks->n; i++)
        keys[i] = (cvx_written_key_t){ks->keys[i].index_id, (const uint8_t *)e->bytes.data + ks->keys[i].off, ks->keys[i].len};
    e->keys = keys;
    e->nkeys = ks->n;
    e->prev = s->log_tail;
    if (s->log_tail) s->log_tail->next = e;
    else s->log_head = e;
    s->log_tail = e;
    s->log_len++;
    log_trim(s, ts);
}

void cvx__store_log_free(cvx_store_t *s) {
    while (s->log_head) {
        commit_entry_t *n = s->log_head->next;
        free_entry(s->log_head);
        s->log_head = n;
    }
    s->log_tail = NULL;
    s->log_len = 0;
}

/* ---- index maintenance ------------------------------------------------------------ */

static const cvx__table_t *commit_table(const cvx__catalog_t *cur, const cvx_txn_t *t, uint32_t number) {
    const cvx__table_t *tbl = cvx__catalog_table_by_number(cur, number);
    if (!tbl && t->own_catalog) tbl = cvx__catalog_table_by_number(t->own_catalog, number);
    return tbl;
}

/* Index maintenance for one pending document: every index's old and new
 * key are "written" (a reader of either range must see the change); the
 * stored entries change only where a key changed. */
static int maintain(const cvx__table_t *tbl, const cvx__pending_t *p, cvx_arena_t *a, cvx__batch_build_t *b,
                    cvx__keyset_t *ks, cvx_err_t *err) {
    cvx_arena_reset(a);
    cvx_value_t *old_doc = NULL, *new_doc = NULL;
    int prc = p->existed ? cvx_json_parse(a, p->old_json, p->old_len, &old_doc, err) : CVX_OK;
    if (prc) return prc == CVX_E_NOMEM ? prc : cvx_err_set(err, CVX_E_STORE, "corrupt stored document %s", p->id_text);
    prc = !p->deleted ? cvx_json_parse(a, p->new_json, p->new_len, &new_doc, err) : CVX_OK;
    if (prc) return prc == CVX_E_NOMEM ? prc : cvx_err_set(err, CVX_E_STORE, "corrupt pending document %s", p->id_text);
    cvx_buf_t ok = {0}, nk = {0};
    int rc = CVX_OK;
    for (size_t i = 0; i < tbl->nindexes && !rc; i++) {
        const cvx__index_t *ix = &tbl->indexes[i];
        cvx_buf_reset(&ok);
        cvx_buf_reset(&nk);
        if (old_doc) rc = cvx__index_key(ix, old_doc, &ok);
        if (!rc && new_doc) rc = cvx__index_key(ix, new_doc, &nk);
        if (rc || ok.oom || nk.oom) {
            rc = CVX_E_NOMEM;
            break;
        }
        bool same = old_doc && new_doc && ok.len == nk.len && memcmp(ok.data, nk.data, ok.len) == 0;
        if (old_doc) rc = cvx__keyset_add(ks, ix->id, ok.data, ok.len);
        if (!rc && new_doc && !same) rc = cvx__keyset_add(ks, ix->id, nk.data, nk.len);
        if (!rc && old_doc && !same) rc = cvx__batch_add_entry(b, ix->id, &ok, p->id, true);
        if (!rc && new_doc && !same) rc = cvx__batch_add_entry(b, ix->id, &nk, p->id, false);
    }
    cvx_buf_free(&ok);
    cvx_buf_free(&nk);
    return rc ? cvx_err_set(err, rc, "out of memory") : CVX_OK;
}

/* ---- durability and publication ------------------------------------------------ */

int cvx__store_broken_error(cvx_store_t *s, cvx_err_t *err) {
    return cvx_err_set(err, CVX_E_IO,
                       "the database could not be made durable (%s); no more writes are accepted until cvx is "
                       "restarted, and whether the last commits reached the disk is unknown",
                       s->broken_err.msg);
}

void cvx__store_hand_to_syncer(cvx_store_t *s, cvx__pub_t *p) {
    p->next = NULL;
    pthread_mutex_lock(&s->sync_mu);
    if (s->sq_tail) s->sq_tail->next = p;
    else s->sq_head = p;
    s->sq_tail = p;
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->sync_mu);
}

/* The syncer: takes everything queued, makes it durable with one sync
 * (which covers every group written before it starts, so groups written
 * while it runs share the next one), publishes it in order, wakes the
 * waiters and the durability hook. Committing threads do not wait for
 * any of this: their answers do (cvx_store_wait_durable). */
static void *syncer_main(void *arg) {
    cvx_store_t *s = arg;
    pthread_mutex_lock(&s->sync_mu);
    for (;;) {
        while (!s->sq_head && !s->sync_stop) pthread_cond_wait(&s->sync_cv, &s->sync_mu);
        if (!s->sq_head) break; /* stopping, and nothing is left */
        cvx__pub_t *list = s->sq_head;
        s->sq_head = s->sq_tail = NULL;
        pthread_mutex_unlock(&s->sync_mu);
        uint64_t target = atomic_load(&s->written);
        if (target > atomic_load(&s->durable) && !atomic_load(&s->broken)) {
            cvx_err_t e;
            uint64_t t0 = cvx_monotonic_ns();
            int src = cvx__store_backend_sync(s, &e);
            atomic_fetch_add(&s->syncs, 1);
            atomic_fetch_add(&s->sync_ns, cvx_monotonic_ns() - t0);
            if (src) {
                s->broken_err = e;
                atomic_store(&s->broken, true);
            } else {
                atomic_store(&s->durable, target);
            }
        }
        uint64_t durable = atomic_load(&s->durable);
        cvx__pub_t *owned = NULL;
        pthread_mutex_lock(&s->pub_mu);
        for (cvx__pub_t *p = list, *next; p; p = next) {
            /* A waiter's pub may be gone once its seq is passed: read
             * everything first. */
            next = p->next;
            /* Groups durable before a failed sync are still published. */
            if (p->last_ts && p->last_ts <= durable) p->publish(s, p->ctx);
            if (p->done) {
                p->next = owned;
                owned = p;
            }
            s->published_seq = p->seq;
        }
        atomic_store(&s->released, atomic_load(&s->latest));
        pthread_cond_broadcast(&s->pub_cv);
        pthread_mutex_unlock(&s->pub_mu);
        for (cvx__pub_t *p = owned, *next; p; p = next) {
            next = p->next;
            p->done(p->ctx);
        }
        cvx__store_durable_notify(s);
        pthread_mutex_lock(&s->sync_mu);
    }
    pthread_mutex_unlock(&s->sync_mu);
    return NULL;
}

int cvx__store_syncer_start(cvx_store_t *s) {
    if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) return CVX_E_INTERNAL;
    s->syncer_started = true;
    return CVX_OK;
}

void cvx__store_syncer_stop(cvx_store_t *s) {
    if (!s->syncer_started) return;
    /* It finishes what is queued first. */
    pthread_mutex_lock(&s->sync_mu);
    s->sync_stop = true;
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->sync_mu);
    pthread_join(s->syncer, NULL);
}

int cvx__store_wait_passed(cvx_store_t *s, const cvx__pub_t *p, cvx_err_t *err) {
    pthread_mutex_lock(&s->pub_mu);
    while (s->published_seq < p->seq) pthread_cond_wait(&s->pub_cv, &s->pub_mu);
    pthread_mutex_unlock(&s->pub_mu);
    return p->last_ts && atomic_load(&s->durable) < p->last_ts ? cvx__store_broken_error(s, err) : CVX_OK;
}


int cvx_store_check_durable(cvx_store_t *s, uint64_t ts, bool *ready, cvx_err_t *err) {
    *ready = atomic_load(&s->released) >= ts;
    /* Groups durable before a failed sync are still published. */
    if (*ready || !atomic_load(&s->broken) || atomic_load(&s->durable) >= ts) return CVX_OK;
    return cvx__store_broken_error(s, err);
}

int cvx_store_wait_durable(cvx_store_t *s, uint64_t ts, cvx_err_t *err) {
    bool ready;
    int rc = cvx_store_check_durable(s, ts, &ready, err);
    if (rc || ready) return rc;
    /* The syncer broadcasts after every round, failed syncs included. */
    pthread_mutex_lock(&s->pub_mu);
    while (!(rc = cvx_store_check_durable(s, ts, &ready, err)) && !ready) pthread_cond_wait(&s->pub_cv, &s->pub_mu);
    pthread_mutex_unlock(&s->pub_mu);
    return rc;
}

/* ---- group commit ---------------------------------------------------------------- */

/* Everything one transaction writes, prepared under the commit lock. */
typedef struct {
    cvx__batch_build_t b;
    cvx__keyset_t ks;
    cvx_arena_t *arena;
    cvx__table_row_t *new_tables;
    cvx__index_row_t *new_indexes;
    size_t nnew_tables, nnew_indexes;
    cvx__batch_t batch;
} prep_t;

static void prep_free(prep_t *p) {
    cvx_arena_free(p->arena);
    cvx_free(p->b.docs);
    cvx_free(p->b.entries);
    cvx_free(p->b.entry_off);
    cvx_buf_free(&p->b.entry_keys);
    cvx_buf_free(&p->ks.bytes);
    cvx_free(p->ks.keys);
    cvx_free(p->new_tables);
    cvx_free(p->new_indexes);
    memset(p, 0, sizeof *p);
}

/* Builds the rows of `t` at timestamp ts: documents, index entries (with
 * the catalog current at commit time), tables it created, its request
 * record; and the keys it writes, for the OCC log and the listeners. */
static int prepare(cvx_store_t *s, cvx_txn_t *t, const cvx__catalog_t *cur, uint64_t ts, prep_t *p, cvx_err_t *err) {
    memset(p, 0, sizeof *p);
    p->arena = cvx_arena_new(16384);
    p->b.docs = cvx_calloc(t->npending ? t->npending : 1, sizeof *p->b.docs);
    int rc = p->arena && p->b.docs ? CVX_OK : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc && t->own_catalog) {
        size_t extra = t->own_catalog->ntables;
        p->new_tables = cvx_calloc(extra + 1, sizeof *p->new_tables);
        p->new_indexes = cvx_calloc(2 * extra + 1, sizeof *p->new_indexes);
        if (!p->new_tables || !p->new_indexes) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
        for (size_t i = 0; !rc && i < extra; i++) {
            const cvx__table_t *tbl = &t->own_catalog->tables[i];
            if (cvx__catalog_table_by_number(cur, tbl->number)) continue;
            bool used = false;
            for (size_t k = 0; k < t->npending && !used; k++)
                used = t->pending[k].table == tbl->number && !t->pending[k].deleted;
            if (!used) continue;
            p->new_tables[p->nnew_tables++] = (cvx__table_row_t){tbl->number, tbl->name};
            for (size_t k = 0; k < 2; k++)
                p->new_indexes[p->nnew_indexes++] = (cvx__index_row_t){
                    tbl->indexes[k].id, tbl->number, tbl->indexes[k].name, k == 0 ? "[\"_id\"]" : "[\"_creationTime\"]"};
            cvx_buf_t key = {0};
            if (cvx__id_key(tbl->name, strlen(tbl->name), &key) || key.oom ||
                cvx__keyset_add(&p->ks, CVX__TABLES_INDEX, key.data, key.len))
                rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            cvx_buf_free(&key);
        }
    }
    for (size_t i = 0; !rc && i < t->npending; i++) {
        const cvx__pending_t *pd = &t->pending[i];
        if (!pd->existed && pd->deleted) continue; /* inserted then deleted, or a failed insert */
        const cvx__table_t *tbl = commit_table(cur, t, pd->table);
        if (!tbl) {
            rc = cvx_err_set(err, CVX_E_STORE, "table %u of document %s vanished", (unsigned)pd->table, pd->id_text);
            break;
        }
        rc = maintain(tbl, pd, p->arena, &p->b, &p->ks, err);
        p->b.docs[p->b.ndocs++] = (cvx__doc_write_t){pd->id, pd->table, pd->deleted, pd->new_json, pd->new_len};
    }
    if (!rc && (p->ks.bytes.oom || p->b.entry_keys.oom)) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) {
        for (size_t i = 0; i < p->b.nentries; i++)
            p->b.entries[i].key = (const uint8_t *)p->b.entry_keys.data + p->b.entry_off[i];
        p->batch = (cvx__batch_t){.ts = ts,
                                  .docs = p->b.docs,
                                  .ndocs = p->b.ndocs,
                                  .entries = p->b.entries,
                                  .nentries = p->b.nentries,
                                  .new_tables = p->new_tables,
                                  .nnew_tables = p->nnew_tables,
                                  .new_indexes = p->new_indexes,
                                  .nnew_indexes = p->nnew_indexes,
                                  .request_key = t->request_key,
                                  .request_result = t->request_result,
                                  .request_result_len = t->request_result_len};
    }
    (void)s;
    return rc;
}

/* Does a write of an earlier transaction in the same group fall in t's
 * read set? (Those commits are not in the log yet.) */
static bool conflicts_in_group(cvx_store_t *s, const cvx_txn_t *t, const prep_t *preps, const bool *ok, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        cvx_written_key_t keys[64];
        const cvx__keyset_t *ks = &preps[i].ks;
        for (size_t k = 0; k < ks->n; k += 64) {
            size_t m = CVX_MIN(64, ks->n - k);
            cvx__keyset_slice(ks, k, m, keys);
            cvx_commit_info_t info = {preps[i].batch.ts, keys, m};
            if (cvx_readset_overlaps(&t->reads, &info)) {
                cvx__hot_lost(s, t, &info);
                return true;
            }
        }
    }
    return false;
}

typedef struct commit_req {
    struct commit_req *next;
    cvx_txn_t *t;
    int rc;
    cvx_err_t err;
    uint64_t ts;
    bool done;     /* committed or failed by a leader */
    sem_t wake;    /* posted once: done, or (done still false) lead */
} commit_req_t;

/* A group between its write and its publication; the syncer's once
 * handed over (the members' requests are gone by then). */
typedef struct {
    cvx__pub_t pub;
    size_t n;
    /* Per request; the keysets are needed until publication. The batches
     * borrow document values and request records from the members'
     * transactions, which are freed once the group is written: after
     * write_group only their ts, ndocs and the keysets are read. */
    prep_t *preps;
    bool *ok;      /* written */
} group_t;

static void publish_group(cvx_store_t *s, void *ctx);

static void group_free(void *ctx) {
    group_t *g = ctx;
    for (size_t i = 0; g->preps && i < g->n; i++) prep_free(&g->preps[i]);
    cvx_free(g->preps);
    cvx_free(g->ok);
    cvx_free(g);
}

/* Writes a group (under the commit lock): each transaction is checked
 * (OCC) in order against the log and the members accepted before it,
 * gets its own timestamp, and all accepted ones reach the backend in one
 * write. They are then visible to mutations (which start at `written`),
 * not yet to queries: the syncer makes them durable and publishes them. */
static void write_group(cvx_store_t *s, commit_req_t **reqs, size_t n) {
    pthread_mutex_lock(&s->commit_mu);
    group_t *g = cvx_calloc(1, sizeof *g);
    if (!g) {
        for (size_t i = 0; i < n; i++) {
            reqs[i]->rc = cvx_err_set(&reqs[i]->err, CVX_E_NOMEM, "out of memory");
            cvx__hot_release(reqs[i]->t);
        }
        pthread_mutex_unlock(&s->commit_mu);
        return;
    }
    g->n = n;
    g->pub = (cvx__pub_t){.seq = ++s->group_seq, .publish = publish_group, .done = group_free, .ctx = g};
    cvx__catalog_t *cur = cvx__catalog_acquire(s);
    g->preps = cvx_calloc(n, sizeof *g->preps);
    g->ok = cvx_calloc(n, sizeof *g->ok);
    const cvx__batch_t **batches = cvx_calloc(n, sizeof *batches);
    cvx__catalog_t *next = NULL;
    size_t nb = 0;
    cvx_err_t group_err;
    int group_rc = CVX_OK;
    if (!g->preps || !g->ok || !batches) group_rc = cvx_err_set(&group_err, CVX_E_NOMEM, "out of memory");
    else if (atomic_load(&s->broken)) group_rc = cvx__store_broken_error(s, &group_err);
    for (size_t i = 0; i < n && !group_rc; i++) {
        commit_req_t *r = reqs[i];
        uint64_t with = 0;
        if (conflicts(s, r->t, &with) || conflicts_in_group(s, r->t, g->preps, g->ok, i)) {
            atomic_fetch_add(&s->conflicts, 1);
            r->rc = cvx_err_set(&r->err, CVX_E_CONFLICT, "a transaction committed at %llu wrote data this one read",
                                (unsigned long long)(with ? with : s->last_ts));
            continue;
        }
        uint64_t ts = cvx__store_next_ts(s);
        r->rc = prepare(s, r->t, cur, ts, &g->preps[i], &r->err);
        if (r->rc) continue;
        /* The catalog with new tables is built before the write so that a
         * written table is never missing from this process's catalog. */
        for (size_t k = 0; k < g->preps[i].nnew_tables && !r->rc; k++) {
            const cvx__table_t *tbl = cvx__catalog_table_by_number(r->t->own_catalog, g->preps[i].new_tables[k].number);
            if (!next) next = cvx__catalog_clone(cur);
            if (!next || cvx__catalog_add_table(next, tbl->name, strlen(tbl->name), tbl->number, tbl->indexes[0].id,
                                                tbl->indexes[1].id))
                r->rc = cvx_err_set(&r->err, CVX_E_NOMEM, "out of memory");
        }
        if (r->rc) continue;
        r->ts = ts;
        g->ok[i] = true;
        batches[nb++] = &g->preps[i].batch;
    }
    uint64_t t0 = cvx_monotonic_ns();
    if (!group_rc && nb) group_rc = cvx__store_backend_write(s, batches, nb, &group_err);
    if (nb) {
        atomic_fetch_add(&s->groups, 1);
        atomic_fetch_add(&s->group_ns, cvx_monotonic_ns() - t0);
    }
    if (!group_rc && nb) {
        if (next) {
            cvx__catalog_publish(s, next);
            next = NULL;
        }
        for (size_t i = 0; i < n; i++) {
            if (!g->ok[i]) continue;
            /* The cache learns a commit before anyone can read at its ts. */
            if (s->docs) cvx__doccache_apply(s->docs, &g->preps[i].batch);
            /* The range cache holds (key, id) rows, not documents: only the
             * index entries a commit adds or removes change them. */
            if (s->ranges) cvx__rangecache_apply(s->ranges, g->preps[i].batch.ts, g->preps[i].batch.entries,
                                                 g->preps[i].batch.nentries);
            cvx__store_record_commit(s, g->preps[i].batch.ts, &g->preps[i].ks);
            g->pub.last_ts = g->preps[i].batch.ts;
        }
        atomic_store(&s->written, g->pub.last_ts);
    }
    for (size_t i = 0; i < n; i++) {
        /* A group failure fails every request that had no error of its
         * own (accepted ones, and those never examined). */
        if (group_rc && reqs[i]->rc == CVX_OK) {
            reqs[i]->rc = group_rc;
            reqs[i]->err = group_err;
            if (g->ok) g->ok[i] = false;
        }
        /* Written (or failed): the next holder of its hot stripes starts
         * from here. */
        cvx__hot_release(reqs[i]->t);
    }
    cvx__store_hand_to_syncer(s, &g->pub);
    pthread_mutex_unlock(&s->commit_mu);
    cvx__catalog_release(next);
    cvx__catalog_release(cur);
    cvx_free(batches);
}

static void publish_group(cvx_store_t *s, void *ctx) {
    group_t *g = ctx;
    for (size_t i = 0; i < g->n; i++) {
        if (!g->ok[i]) continue;
        atomic_store(&s->latest, g->preps[i].batch.ts);
        atomic_fetch_add(&s->commits, 1);
        atomic_fetch_add(&s->docs_written, g->preps[i].batch.ndocs);
        cvx__store_notify(s, g->preps[i].batch.ts, &g->preps[i].ks);
    }
}

int cvx_txn_commit_written(cvx_txn_t *t, uint64_t *commit_ts, cvx_err_t *err) {
    cvx_store_t *s = t->s;
    bool writes = t->request_key != NULL;
    for (size_t i = 0; i < t->npending && !writes; i++) writes = t->pending[i].existed || !t->pending[i].deleted;
    if (t->mode != CVX_TXN_WRITE || !writes) {
        /* Nothing to write; what it read is at its snapshot. */
        *commit_ts = t->ts;
        cvx_txn_abort(t);
        return CVX_OK;
    }
    /* Nothing below reads through the snapshot: the read connection goes
     * back to the pool now. */
    if (t->reader) s->be->reader_release(s->be_state, t->reader);
    t->reader = NULL;
    commit_req_t req;
    memset(&req, 0, sizeof req);
    req.t = t;
    sem_init(&req.wake, 0, 0);
    /* Group commit. Whoever finds no leader leads: it takes the whole
     * queue (itself and everyone who arrived while the previous group was
     * being written), writes it, hands the lead to the first waiter and
     * the group to the syncer, and wakes exactly its members. Each waits
     * on its own semaphore, so a group's end wakes only the threads it
     * concerns. */
    pthread_mutex_lock(&s->group_mu);
    if (s->queue_tail) s->queue_tail->next = &req;
    else s->queue_head = &req;
    s->queue_tail = &req;
    /* Whether this thread leads is decided here, under the lock, or by the
     * one post it will get: reading a flag another thread sets after
     * unlocking could make it lead early and return while that thread
     * still posts to its (then dead) stack. */
    bool leading = !s->leader_active;
    s->leader_active = true;
    pthread_mutex_unlock(&s->group_mu);
    if (!leading) {
        while (sem_wait(&req.wake) != 0 && errno == EINTR) {
        }
        leading = !req.done;
    }
    if (leading) {
        pthread_mutex_lock(&s->group_mu);
        commit_req_t *group = s->queue_head;
        s->queue_head = s->queue_tail = NULL;
        pthread_mutex_unlock(&s->group_mu);
        size_t n = 0;
        for (commit_req_t *r = group; r; r = r->next) n++;
        commit_req_t *small[64];
        commit_req_t **reqs = n <= 64 ? small : cvx_calloc(n, sizeof *reqs);
        if (reqs) {
            size_t i = 0;
            for (commit_req_t *r = group; r; r = r->next) reqs[i++] = r;
            write_group(s, reqs, n);
            if (reqs != small) cvx_free(reqs);
        } else {
            for (commit_req_t *r = group; r; r = r->next) {
                r->rc = cvx_err_set(&r->err, CVX_E_NOMEM, "out of memory");
                cvx__hot_release(r->t);
            }
        }
        pthread_mutex_lock(&s->group_mu);
        commit_req_t *next_leader = s->queue_head;
        if (!next_leader) s->leader_active = false;
        pthread_mutex_unlock(&s->group_mu);
        if (next_leader) sem_post(&next_leader->wake); /* not done: it leads */
        /* A member's request lives on its stack: read `next` first, and
         * touch nothing after the post. */
        for (commit_req_t *r = group, *nx; r; r = nx) {
            nx = r->next;
            r->done = true;
            if (r != &req) sem_post(&r->wake);
        }
    }
    sem_destroy(&req.wake);
    if (req.rc == CVX_OK) *commit_ts = req.ts;
    else if (err) *err = req.err;
    cvx_txn_abort(t);
    return req.rc;
}

int cvx_txn_commit(cvx_txn_t *t, uint64_t *commit_ts, cvx_err_t *err) {
    bool wait = t->mode == CVX_TXN_WRITE;
    cvx_store_t *s = t->s;
    int rc = cvx_txn_commit_written(t, commit_ts, err);
    return !rc && wait ? cvx_store_wait_durable(s, *commit_ts, err) : rc;
}
