/* Opening the store, committing, listeners, and schema (index) changes.
 *
 * Commits are serialised by one lock. Under it: the OCC check against the
 * in-memory log of recent commits, the timestamp, the index maintenance
 * (computed with the catalog current at commit time, so an index created
 * while a transaction ran is still maintained), the durable write, the
 * publication of the new timestamp, and the listeners. A snapshot is handed
 * to readers only after its commit is durable. */
#include "store/store_int.h"

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MAX_ENTRIES 20000
#define LOG_MAX_AGE_NS (120ull * 1000000000ull)

struct commit_entry {
    commit_entry_t *next, *prev;
    uint64_t ts;
    cvx_buf_t bytes;          /* all key bytes */
    cvx_written_key_t *keys;  /* point into bytes */
    size_t nkeys;
};

struct listener {
    listener_t *next;
    int handle;
    cvx_commit_cb cb;
    void *ctx;
};

static _Atomic uint64_t fail_commit_at;
static _Atomic bool fail_commit_sticky;
static _Atomic uint64_t commit_attempts;
static _Atomic uint64_t fail_sync_at;
static _Atomic uint64_t sync_attempts;

void cvx__store_fail_commit(uint64_t nth, bool sticky) {
    atomic_store(&commit_attempts, 0);
    atomic_store(&fail_commit_sticky, sticky);
    atomic_store(&fail_commit_at, nth);
}

void cvx__store_fail_sync(uint64_t nth) {
    atomic_store(&sync_attempts, 0);
    atomic_store(&fail_sync_at, nth);
}

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static bool hold_syncs;

void cvx__store_hold_sync(bool hold) {
    pthread_mutex_lock(&hold_mu);
    hold_syncs = hold;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
}

void cvx__store_checkpoint(cvx_store_t *s) {
    if (s->be->checkpoint) s->be->checkpoint(s->be_state);
}

/* The fault-injecting wrappers around the backend (tests only). A write
 * fails before anything reaches the backend, as a full disk would; a sync
 * fails without syncing, as an fsync reporting EIO would. */
static int backend_write(cvx_store_t *s, const cvx__batch_t *const *b, size_t n, cvx_err_t *err) {
    uint64_t at = atomic_load(&fail_commit_at);
    if (at) {
        uint64_t k = atomic_fetch_add(&commit_attempts, 1) + 1;
        if (k == at || (k > at && atomic_load(&fail_commit_sticky)))
            return cvx_err_set(err, CVX_E_IO, "injected write failure (commit %llu)", (unsigned long long)k);
    }
    return s->be->write(s->be_state, b, n, err);
}

static int backend_sync(cvx_store_t *s, cvx_err_t *err) {
    pthread_mutex_lock(&hold_mu);
    while (hold_syncs) pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    uint64_t at = atomic_load(&fail_sync_at);
    if (at && atomic_fetch_add(&sync_attempts, 1) + 1 == at)
        return cvx_err_set(err, CVX_E_IO, "injected fsync failure");
    return s->be->sync(s->be_state, err);
}

static void *syncer_main(void *arg);

void cvx_store_config_default(cvx_store_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->max_docs_read = 32000;
    cfg->max_bytes_read = 16u << 20;
    cfg->max_docs_written = 16000;
    cfg->max_bytes_written = 16u << 20;
    cfg->read_connections = 4;
}

static int load_table(void *ctx, uint32_t number, const char *name) {
    return cvx__catalog_add_table(ctx, name, strlen(name), number, 0, 0);
}

static int load_index(void *ctx, const cvx__index_row_t *row) {
    cvx__catalog_t *c = ctx;
    cvx_arena_t *a = cvx_arena_new(1024);
    if (!a) return CVX_E_NOMEM;
    cvx_value_t *fields = NULL;
    cvx_err_t err;
    int rc = cvx_json_parse(a, row->fields_json, strlen(row->fields_json), &fields, &err);
    if (!rc && fields->type != CVX_T_ARRAY) rc = CVX_E_STORE;
    const char *names[16];
    size_t n = 0;
    for (size_t i = 0; !rc && i < fields->u.arr.len && i < 16; i++)
        if (fields->u.arr.items[i]->type == CVX_T_STRING) names[n++] = fields->u.arr.items[i]->u.str.ptr;
    if (!rc) rc = cvx__catalog_add_index(c, row->table, row->id, row->name, names, n);
    cvx_arena_free(a);
    return rc;
}

int cvx_store_open(const char *dir, const cvx_store_config_t *cfg, cvx_store_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_store_t *s = cvx_calloc(1, sizeof *s);
    if (!s) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_store_config_default(&s->cfg);
    if (cfg) {
        s->cfg = *cfg;
        cvx_store_config_t d;
        cvx_store_config_default(&d);
        if (!s->cfg.max_docs_read) s->cfg.max_docs_read = d.max_docs_read;
        if (!s->cfg.max_bytes_read) s->cfg.max_bytes_read = d.max_bytes_read;
        if (!s->cfg.max_docs_written) s->cfg.max_docs_written = d.max_docs_written;
        if (!s->cfg.max_bytes_written) s->cfg.max_bytes_written = d.max_bytes_written;
    }
    s->be = &cvx__sqlite_backend;
    pthread_mutex_init(&s->catalog_mu, NULL);
    pthread_mutex_init(&s->commit_mu, NULL);
    pthread_mutex_init(&s->group_mu, NULL);
    pthread_mutex_init(&s->listen_mu, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_cond_init(&s->sync_cv, NULL);
    pthread_mutex_init(&s->pub_mu, NULL);
    pthread_cond_init(&s->pub_cv, NULL);
    pthread_mutex_init(&s->hook_mu, NULL);
    cvx__hot_init(&s->hot);
    s->dir = cvx_strdup(dir);
    /* The data directory is the user's alone (0700): the database holds
     * every app's data. */
    int rc = s->dir ? cvx_mkdirs_private(dir, err) : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) rc = s->be->open(dir, &s->cfg, &s->be_state, err);
    cvx__catalog_t *c = rc ? NULL : cvx_calloc(1, sizeof *c);
    if (!rc && !c) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc) {
        atomic_init(&c->refs, 1);
        c->next_table = CVX_FIRST_USER_TABLE;
        c->next_index = 1;
        rc = s->be->load_catalog(s->be_state, load_table, load_index, c, err);
        if (rc && !err->msg[0]) cvx_err_set(err, rc, "cannot load the catalog of %s", dir);
        s->catalog = c;
    }
    if (rc) {
        cvx_store_close(s);
        return rc;
    }
    atomic_init(&s->next_table, c->next_table);
    atomic_init(&s->next_index, c->next_index);
    s->last_ts = s->be->max_ts(s->be_state);
    atomic_init(&s->latest, s->last_ts);
    atomic_init(&s->released, s->last_ts);
    atomic_init(&s->written, s->last_ts);
    atomic_init(&s->durable, s->last_ts);
    s->log_horizon = s->last_ts;
    if (!s->cfg.no_doc_cache &&
        (cvx__doccache_new(s->cfg.doc_cache_bytes ? s->cfg.doc_cache_bytes : 32u << 20, s->last_ts, &s->docs) ||
         cvx__rangecache_new(s->cfg.range_cache_bytes ? s->cfg.range_cache_bytes : 16u << 20, s->last_ts,
                             &s->ranges))) {
        cvx_store_close(s);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    atomic_init(&s->last_creation_ms, (double)(s->last_ts / 1000) / 1000.0);
    if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
        cvx_store_close(s);
        return cvx_err_set(err, CVX_E_INTERNAL, "cannot start the store's sync thread");
    }
    s->syncer_started = true;
    *out = s;
    return CVX_OK;
}

static void free_entry(commit_entry_t *e) {
    cvx_buf_free(&e->bytes);
    cvx_free(e->keys);
    cvx_free(e);
}

void cvx_store_close(cvx_store_t *s) {
    if (!s) return;
    if (s->syncer_started) {
        /* It finishes what is queued first. */
        pthread_mutex_lock(&s->sync_mu);
        s->sync_stop = true;
        pthread_cond_signal(&s->sync_cv);
        pthread_mutex_unlock(&s->sync_mu);
        pthread_join(s->syncer, NULL);
    }
    if (s->be_state) s->be->close(s->be_state);
    cvx__doccache_free(s->docs);
    cvx__rangecache_free(s->ranges);
    cvx__catalog_release(s->catalog);
    while (s->log_head) {
        commit_entry_t *n = s->log_head->next;
        free_entry(s->log_head);
        s->log_head = n;
    }
    while (s->listeners) {
        listener_t *n = s->listeners->next;
        cvx_free(s->listeners);
        s->listeners = n;
    }
    pthread_mutex_destroy(&s->catalog_mu);
    pthread_mutex_destroy(&s->commit_mu);
    pthread_mutex_destroy(&s->group_mu);
    pthread_mutex_destroy(&s->listen_mu);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_cond_destroy(&s->sync_cv);
    pthread_mutex_destroy(&s->pub_mu);
    pthread_cond_destroy(&s->pub_cv);
    pthread_mutex_destroy(&s->hook_mu);
    cvx__hot_destroy(&s->hot);
    cvx_free(s->dir);
    cvx_free(s);
}

uint64_t cvx_store_latest_ts(cvx_store_t *s) { return atomic_load(&s->latest); }

void cvx_store_stats(cvx_store_t *s, cvx_store_stats_t *out) {
    out->commits = atomic_load(&s->commits);
    out->conflicts = atomic_load(&s->conflicts);
    out->docs_read = atomic_load(&s->docs_read);
    out->docs_written = atomic_load(&s->docs_written);
    out->groups = atomic_load(&s->groups);
    out->group_ns = atomic_load(&s->group_ns);
    out->syncs = atomic_load(&s->syncs);
    out->sync_ns = atomic_load(&s->sync_ns);
    out->doc_cache_hits = out->doc_cache_misses = 0;
    out->doc_cache_entries = out->doc_cache_bytes = 0;
    if (s->docs)
        cvx__doccache_stats(s->docs, &out->doc_cache_hits, &out->doc_cache_misses, &out->doc_cache_entries,
                            &out->doc_cache_bytes);
    out->range_cache_hits = out->range_cache_misses = 0;
    out->range_cache_entries = out->range_cache_bytes = 0;
    if (s->ranges)
        cvx__rangecache_stats(s->ranges, &out->range_cache_hits, &out->range_cache_misses, &out->range_cache_entries,
                              &out->range_cache_bytes);
}

int cvx__store_get(cvx_txn_t *t, const uint8_t id[16], bool *found, bool *deleted, uint32_t *table, cvx_buf_t *value,
                   cvx_err_t *err) {
    cvx_store_t *s = t->s;
    uint64_t at = t->ts;
    if (s->docs && cvx__doccache_get(s->docs, id, at, deleted, table, value)) {
        *found = true;
        return CVX_OK;
    }
    size_t before = value->len;
    void *reader;
    int rc = cvx__txn_reader(t, &reader, err);
    if (!rc) rc = s->be->get(reader, id, at, found, deleted, table, value, err);
    if (!rc && *found && s->docs)
        cvx__doccache_fill(s->docs, id, at, *deleted, *table, value->data ? value->data + before : "",
                           value->len - before);
    return rc;
}

int cvx_store_listen(cvx_store_t *s, cvx_commit_cb cb, void *ctx) {
    listener_t *l = cvx_calloc(1, sizeof *l);
    if (!l) return -1;
    l->cb = cb;
    l->ctx = ctx;
    pthread_mutex_lock(&s->listen_mu);
    l->handle = ++s->next_listener;
    l->next = s->listeners;
    s->listeners = l;
    pthread_mutex_unlock(&s->listen_mu);
    return l->handle;
}

void cvx_store_unlisten(cvx_store_t *s, int handle) {
    pthread_mutex_lock(&s->listen_mu);
    for (listener_t **p = &s->listeners; *p; p = &(*p)->next) {
        if ((*p)->handle == handle) {
            listener_t *l = *p;
            *p = l->next;
            cvx_free(l);
            break;
        }
    }
    pthread_mutex_unlock(&s->listen_mu);
}

/* ---- commit ---------------------------------------------------------------------- */

static uint64_t next_ts(cvx_store_t *s) {
    uint64_t now = cvx_now_ns();
    uint64_t ts = now > s->last_ts ? now : s->last_ts + 1;
    s->last_ts = ts;
    return ts;
}

/* Collects written keys (offsets first; pointers fixed up at the end since
 * the byte buffer may move while it grows). */
typedef struct {
    cvx_buf_t bytes;
    struct {
        uint64_t index_id;
        size_t off, len;
    } *keys;
    size_t n, cap;
} keyset_t;

static int keyset_add(keyset_t *k, uint64_t index_id, const char *key, size_t len) {
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

typedef struct {
    cvx__doc_write_t *docs;
    size_t ndocs;
    cvx__index_write_t *entries;
    size_t nentries, cap_entries;
    cvx_buf_t entry_keys; /* bytes of entry keys */
    size_t *entry_off;
} batch_build_t;

static int add_entry(batch_build_t *b, uint64_t index_id, const cvx_buf_t *key, const uint8_t *id, bool deleted) {
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

static const cvx__table_t *commit_table(const cvx__catalog_t *cur, const cvx_txn_t *t, uint32_t number) {
    const cvx__table_t *tbl = cvx__catalog_table_by_number(cur, number);
    if (!tbl && t->own_catalog) tbl = cvx__catalog_table_by_number(t->own_catalog, number);
    return tbl;
}

/* Index maintenance for one pending document: every index's old and new
 * key are "written" (a reader of either range must see the change); the
 * stored entries change only where a key changed. */
static int maintain(const cvx__table_t *tbl, const cvx__pending_t *p, cvx_arena_t *a, batch_build_t *b, keyset_t *ks,
                    cvx_err_t *err) {
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
        if (old_doc) rc = keyset_add(ks, ix->id, ok.data, ok.len);
        if (!rc && new_doc && !same) rc = keyset_add(ks, ix->id, nk.data, nk.len);
        if (!rc && old_doc && !same) rc = add_entry(b, ix->id, &ok, p->id, true);
        if (!rc && new_doc && !same) rc = add_entry(b, ix->id, &nk, p->id, false);
    }
    cvx_buf_free(&ok);
    cvx_buf_free(&nk);
    return rc ? cvx_err_set(err, rc, "out of memory") : CVX_OK;
}

/* Points out[0..m) at keys [from, from + m) of a keyset. */
static void keyset_slice(const keyset_t *ks, size_t from, size_t m, cvx_written_key_t *out) {
    for (size_t j = 0; j < m; j++)
        out[j] = (cvx_written_key_t){ks->keys[from + j].index_id, (const uint8_t *)ks->bytes.data + ks->keys[from + j].off,
                                     ks->keys[from + j].len};
}

/* Tells the listeners about a published commit (under pub_mu, so in ts
 * order). Out of memory, the keys go in pieces of 64 with the same ts
 * rather than not at all. */
static void notify(cvx_store_t *s, uint64_t ts, const keyset_t *ks) {
    cvx_written_key_t small[64];
    cvx_written_key_t *keys = ks->n <= 64 ? small : cvx_malloc(ks->n * sizeof *keys);
    size_t chunk = keys ? CVX_MAX(ks->n, (size_t)64) : 64;
    if (!keys) keys = small;
    pthread_mutex_lock(&s->listen_mu);
    size_t k = 0;
    do {
        size_t m = CVX_MIN(chunk, ks->n - k);
        keyset_slice(ks, k, m, keys);
        cvx_commit_info_t info = {ts, keys, m};
        for (listener_t *l = s->listeners; l; l = l->next) l->cb(l->ctx, &info);
        k += m;
    } while (k < ks->n);
    pthread_mutex_unlock(&s->listen_mu);
    if (keys != small) cvx_free(keys);
}

/* Appends a commit to the OCC log (a copy of its keys: the keyset is still
 * needed to notify the listeners once the commit is durable). */
static void record_commit(cvx_store_t *s, uint64_t ts, const keyset_t *ks) {
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

/* ---- durability and publication ------------------------------------------------ */

static int broken_error(cvx_store_t *s, cvx_err_t *err) {
    return cvx_err_set(err, CVX_E_IO,
                       "the database could not be made durable (%s); no more writes are accepted until cvx is "
                       "restarted, and whether the last commits reached the disk is unknown",
                       s->broken_err.msg);
}

/* Something written that the syncer makes durable and then publishes, in
 * the order handed over (every seq the commit lock hands out comes here
 * exactly once, in seq order). last_ts 0: nothing was written, only the
 * seq passes. After publication the syncer calls done(ctx) if set (it
 * frees a group), else touches it no more (a waiter owns it). */
typedef struct pub {
    struct pub *next;
    uint64_t seq, last_ts;
    void (*publish)(cvx_store_t *s, void *ctx);
    void (*done)(void *ctx);
    void *ctx;
} pub_t;

/* Under the commit lock, so that the queue is in seq order. */
static void hand_to_syncer(cvx_store_t *s, pub_t *p) {
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
        pub_t *list = s->sq_head;
        s->sq_head = s->sq_tail = NULL;
        pthread_mutex_unlock(&s->sync_mu);
        uint64_t target = atomic_load(&s->written);
        if (target > atomic_load(&s->durable) && !atomic_load(&s->broken)) {
            cvx_err_t e;
            uint64_t t0 = cvx_monotonic_ns();
            int src = backend_sync(s, &e);
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
        pub_t *owned = NULL;
        pthread_mutex_lock(&s->pub_mu);
        for (pub_t *p = list, *next; p; p = next) {
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
        for (pub_t *p = owned, *next; p; p = next) {
            next = p->next;
            p->done(p->ctx);
        }
        pthread_mutex_lock(&s->hook_mu);
        if (s->durable_cb) s->durable_cb(s->durable_ctx);
        pthread_mutex_unlock(&s->hook_mu);
        pthread_mutex_lock(&s->sync_mu);
    }
    pthread_mutex_unlock(&s->sync_mu);
    return NULL;
}

/* Waits for the syncer to pass `p` (handed over by this thread); the
 * outcome of its writes. */
static int wait_passed(cvx_store_t *s, const pub_t *p, cvx_err_t *err) {
    pthread_mutex_lock(&s->pub_mu);
    while (s->published_seq < p->seq) pthread_cond_wait(&s->pub_cv, &s->pub_mu);
    pthread_mutex_unlock(&s->pub_mu);
    return p->last_ts && atomic_load(&s->durable) < p->last_ts ? broken_error(s, err) : CVX_OK;
}

void cvx_store_on_durable(cvx_store_t *s, void (*cb)(void *ctx), void *ctx) {
    pthread_mutex_lock(&s->hook_mu);
    s->durable_cb = cb;
    s->durable_ctx = ctx;
    pthread_mutex_unlock(&s->hook_mu);
}

int cvx_store_check_durable(cvx_store_t *s, uint64_t ts, bool *ready, cvx_err_t *err) {
    *ready = atomic_load(&s->released) >= ts;
    /* Groups durable before a failed sync are still published. */
    if (*ready || !atomic_load(&s->broken) || atomic_load(&s->durable) >= ts) return CVX_OK;
    return broken_error(s, err);
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

/* Everything one transaction writes, prepared under the commit lock. */
typedef struct {
    batch_build_t b;
    keyset_t ks;
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
                keyset_add(&p->ks, CVX__TABLES_INDEX, key.data, key.len))
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
        const keyset_t *ks = &preps[i].ks;
        for (size_t k = 0; k < ks->n; k += 64) {
            size_t m = CVX_MIN(64, ks->n - k);
            keyset_slice(ks, k, m, keys);
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
    pub_t pub;
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
    g->pub = (pub_t){.seq = ++s->group_seq, .publish = publish_group, .done = group_free, .ctx = g};
    cvx__catalog_t *cur = cvx__catalog_acquire(s);
    g->preps = cvx_calloc(n, sizeof *g->preps);
    g->ok = cvx_calloc(n, sizeof *g->ok);
    const cvx__batch_t **batches = cvx_calloc(n, sizeof *batches);
    cvx__catalog_t *next = NULL;
    size_t nb = 0;
    cvx_err_t group_err;
    int group_rc = CVX_OK;
    if (!g->preps || !g->ok || !batches) group_rc = cvx_err_set(&group_err, CVX_E_NOMEM, "out of memory");
    else if (atomic_load(&s->broken)) group_rc = broken_error(s, &group_err);
    for (size_t i = 0; i < n && !group_rc; i++) {
        commit_req_t *r = reqs[i];
        uint64_t with = 0;
        if (conflicts(s, r->t, &with) || conflicts_in_group(s, r->t, g->preps, g->ok, i)) {
            atomic_fetch_add(&s->conflicts, 1);
            r->rc = cvx_err_set(&r->err, CVX_E_CONFLICT, "a transaction committed at %llu wrote data this one read",
                                (unsigned long long)(with ? with : s->last_ts));
            continue;
        }
        uint64_t ts = next_ts(s);
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
    if (!group_rc && nb) group_rc = backend_write(s, batches, nb, &group_err);
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
            record_commit(s, g->preps[i].batch.ts, &g->preps[i].ks);
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
    hand_to_syncer(s, &g->pub);
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
        notify(s, g->preps[i].batch.ts, &g->preps[i].ks);
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

/* ---- schema: indexes ---------------------------------------------------------------- */

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

typedef struct {
    cvx_txn_t *t;
    const cvx__index_t *ix;
    batch_build_t *b;
    cvx_arena_t *a;
    cvx_buf_t doc, key;
    cvx_buf_t prev;
    bool have_prev;
    uint64_t n;
    void (*progress)(void *, const char *);
    void *progress_ctx;
    const char *table;
    cvx_err_t *err;
} backfill_t;

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
    int rc = cvx__store_get(bf->t, id, &found, &gone, &table, &bf->doc, bf->err);
    if (rc || !found || gone) return rc;
    cvx_arena_reset(bf->a);
    cvx_value_t *doc;
    rc = cvx_json_parse(bf->a, bf->doc.data, bf->doc.len, &doc, bf->err);
    if (rc) return rc == CVX_E_NOMEM ? rc : cvx_err_set(bf->err, CVX_E_STORE, "corrupt stored document in %s", bf->table);
    cvx_buf_reset(&bf->key);
    if (cvx__index_key(bf->ix, doc, &bf->key) || add_entry(bf->b, bf->ix->id, &bf->key, NULL, false))
        return cvx_err_set(bf->err, CVX_E_NOMEM, "out of memory");
    bf->n++;
    if (bf->progress && bf->n % 10000 == 0) {
        char line[256];
        snprintf(line, sizeof line, "backfilling index %s.%s: %llu documents", bf->table, bf->ix->name,
                 (unsigned long long)bf->n);
        bf->progress(bf->progress_ctx, line);
    }
    /* Record the id: entry ids point into a dedicated id buffer. */
    return cvx_buf_append(&bf->b->entry_keys, id, 16) ? CVX_E_NOMEM : 0;
}

typedef struct {
    cvx__catalog_t *catalog;
    uint64_t ts;
    const keyset_t *ks;
} schema_pub_t;

static void publish_schema(cvx_store_t *s, void *ctx) {
    schema_pub_t *p = ctx;
    cvx__catalog_publish(s, p->catalog);
    atomic_store(&s->latest, p->ts);
    notify(s, p->ts, p->ks);
}

/* system: the tables are the host's own (names start with '_'); nothing
 * is dropped. Otherwise: the user's schema; user indexes not declared are
 * dropped, system tables are left alone. */
static int apply_indexes(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables, bool system,
                         void (*progress)(void *ctx, const char *line), void *progress_ctx, cvx_err_t *err) {
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
    pthread_mutex_lock(&s->commit_mu);
    cvx__catalog_t *cur = cvx__catalog_acquire(s);
    cvx__catalog_t *next = cvx__catalog_clone(cur);
    uint64_t *dropped = cvx_calloc(64, sizeof *dropped);
    size_t ndropped = 0, cap_dropped = 64;
    cvx__table_row_t *new_tables = cvx_calloc(ntables + 1, sizeof *new_tables);
    size_t nnew_tables = 0, nnew_indexes = 0, cap_indexes = 16;
    cvx__index_row_t *new_indexes = cvx_calloc(cap_indexes, sizeof *new_indexes);
    cvx_buf_t fields_json[256];
    size_t nfields_json = 0;
    batch_build_t b;
    memset(&b, 0, sizeof b);
    int rc = next && dropped && new_tables && new_indexes ? CVX_OK : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    bool changed = false;

    /* Drop user indexes that are gone or changed. */
    for (size_t i = 0; !rc && !system && i < next->ntables; i++) {
        const cvx__table_t *tbl = &next->tables[i];
        if (tbl->name[0] == '_') continue;
        for (size_t k = 0; k < tbl->nindexes; k++) {
            const cvx__index_t *ix = &tbl->indexes[k];
            if (ix->system) continue;
            const cvx_index_def_t *d = declared(tables, ntables, tbl->name, ix->name);
            if (d && same_fields(ix, d)) continue;
            if (ndropped == cap_dropped) {
                uint64_t *p = cvx_realloc(dropped, 2 * cap_dropped * sizeof *p);
                if (!p) {
                    rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                    break;
                }
                dropped = p;
                cap_dropped *= 2;
            }
            dropped[ndropped++] = ix->id;
            if (progress) {
                char line[256];
                snprintf(line, sizeof line, "dropping index %s.%s", tbl->name, ix->name);
                progress(progress_ctx, line);
            }
        }
    }
    for (size_t i = 0; i < ndropped; i++) cvx__catalog_drop_index(next, dropped[i]);
    changed = ndropped > 0;

    /* Create declared tables and indexes that do not exist. */
    uint64_t ts = 0;
    cvx_txn_t *reader = NULL;
    for (size_t i = 0; !rc && i < ntables; i++) {
        const cvx_table_def_t *td = &tables[i];
        const cvx__table_t *tbl = cvx__catalog_table(next, td->name, strlen(td->name));
        if (!tbl) {
            uint32_t number = (uint32_t)atomic_fetch_add(&s->next_table, 1);
            uint64_t ix = atomic_fetch_add(&s->next_index, 2);
            if (cvx__catalog_add_table(next, td->name, strlen(td->name), number, ix, ix + 1)) {
                rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                break;
            }
            tbl = cvx__catalog_table(next, td->name, strlen(td->name));
            new_tables[nnew_tables++] = (cvx__table_row_t){number, tbl->name};
            if (nnew_indexes + 2 >= cap_indexes) {
                cvx__index_row_t *p = cvx_realloc(new_indexes, 2 * cap_indexes * sizeof *p);
                if (!p) {
                    rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                    break;
                }
                new_indexes = p;
                cap_indexes *= 2;
            }
            new_indexes[nnew_indexes++] = (cvx__index_row_t){ix, number, CVX_INDEX_BY_ID, "[\"_id\"]"};
            new_indexes[nnew_indexes++] = (cvx__index_row_t){ix + 1, number, CVX_INDEX_BY_CREATION, "[\"_creationTime\"]"};
            changed = true;
        }
        for (size_t k = 0; !rc && k < td->nindexes; k++) {
            const cvx_index_def_t *d = &td->indexes[k];
            tbl = cvx__catalog_table(next, td->name, strlen(td->name));
            if (cvx__table_index(tbl, d->name)) continue;
            if (nfields_json >= CVX_ARRAY_LEN(fields_json)) {
                rc = cvx_err_set(err, CVX_E_INVALID_ARGUMENT, "schema: too many new indexes in one deploy (max %zu)",
                                 CVX_ARRAY_LEN(fields_json));
                break;
            }
            uint64_t id = atomic_fetch_add(&s->next_index, 1);
            if (cvx__catalog_add_index(next, tbl->number, id, d->name, d->fields, d->nfields)) {
                rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                break;
            }
            cvx_buf_t *fj = &fields_json[nfields_json++];
            memset(fj, 0, sizeof *fj);
            cvx_buf_append_char(fj, '[');
            for (size_t f = 0; f < d->nfields; f++) {
                if (f) cvx_buf_append_char(fj, ',');
                cvx_buf_append_json_string(fj, d->fields[f], strlen(d->fields[f]));
            }
            cvx_buf_append_char(fj, ']');
            if (fj->oom) {
                rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                break;
            }
            if (nnew_indexes + 1 >= cap_indexes) {
                cvx__index_row_t *p = cvx_realloc(new_indexes, 2 * cap_indexes * sizeof *p);
                if (!p) {
                    rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
                    break;
                }
                new_indexes = p;
                cap_indexes *= 2;
            }
            tbl = cvx__catalog_table(next, td->name, strlen(td->name));
            new_indexes[nnew_indexes++] = (cvx__index_row_t){id, tbl->number, cvx__table_index(tbl, d->name)->name, fj->data};
            changed = true;
            /* Backfill from the documents as of now (no commit can run:
             * we hold the commit lock). */
            /* At `written`: every commit the backend holds (under the
             * commit lock, no more arrive), durable or not yet. */
            if (!reader) rc = cvx_txn_begin(s, CVX_TXN_WRITE, 0, &reader, err);
            if (rc) break;
            const cvx__table_t *old_tbl = cvx__catalog_table(cur, td->name, strlen(td->name));
            if (!old_tbl) continue; /* a new table has no documents */
            backfill_t bf = {.t = reader, .ix = cvx__table_index(tbl, d->name), .b = &b, .a = cvx_arena_new(8192),
                             .progress = progress, .progress_ctx = progress_ctx, .table = tbl->name, .err = err};
            void *conn = NULL;
            if (!bf.a) rc = cvx_err_set(err, CVX_E_NOMEM, "out of memory");
            else rc = cvx__txn_reader(reader, &conn, err);
            if (!rc)
                rc = s->be->scan(conn, old_tbl->indexes[0].id, (const uint8_t *)"", 0, NULL, 0, false, reader->ts,
                                 backfill_row, &bf, err);
            if (!rc && progress && bf.n) {
                char line[256];
                snprintf(line, sizeof line, "backfilled index %s.%s: %llu documents", tbl->name, d->name,
                         (unsigned long long)bf.n);
                progress(progress_ctx, line);
            }
            cvx_arena_free(bf.a);
            cvx_buf_free(&bf.doc);
            cvx_buf_free(&bf.key);
            cvx_buf_free(&bf.prev);
        }
    }
    if (!rc && changed) {
        /* Entry keys and ids are interleaved in entry_keys: key, then the
         * 16-byte id (see backfill_row). */
        size_t off = 0;
        for (size_t i = 0; i < b.nentries; i++) {
            b.entries[i].key = (const uint8_t *)b.entry_keys.data + b.entry_off[i];
            off = b.entry_off[i] + b.entries[i].key_len;
            b.entries[i].id = (const uint8_t *)b.entry_keys.data + off;
        }
        ts = next_ts(s);
        cvx__batch_t batch = {.ts = ts,
                              .entries = b.entries,
                              .nentries = b.nentries,
                              .new_tables = new_tables,
                              .nnew_tables = nnew_tables,
                              .new_indexes = new_indexes,
                              .nnew_indexes = nnew_indexes,
                              .dropped_indexes = dropped,
                              .ndropped_indexes = ndropped};
        const cvx__batch_t *one = &batch;
        pub_t pub = {.seq = ++s->group_seq, .publish = publish_schema};
        /* After a failed fsync nothing more is written (the syncer still
         * passes the seq on). */
        rc = atomic_load(&s->broken) ? broken_error(s, err) : backend_write(s, &one, 1, err);
        /* Readers of a table that did not exist must see it now. */
        keyset_t ks;
        memset(&ks, 0, sizeof ks);
        if (!rc) {
            bool ok = true;
            for (size_t i = 0; i < nnew_tables && ok; i++) {
                cvx_buf_t key = {0};
                ok = !cvx__id_key(new_tables[i].name, strlen(new_tables[i].name), &key) && !key.oom &&
                     !keyset_add(&ks, CVX__TABLES_INDEX, key.data, key.len);
                cvx_buf_free(&key);
            }
            /* Without the keys, every transaction older than this commit
             * must conflict (as when record_commit runs out of memory). */
            if (ok) record_commit(s, ts, &ks);
            else s->log_horizon = ts;
            /* The new indexes' entries are at ts: a reader before it that
             * already has the new catalog (it is published before `latest`
             * moves) must not cache their absence. */
            if (s->ranges) cvx__rangecache_apply(s->ranges, ts, NULL, 0);
            atomic_store(&s->written, ts);
        }
        /* Still under the commit lock: no group is written with the old
         * catalog after this one, and the new catalog reaches readers
         * together with the ts its index entries carry. */
        schema_pub_t sp = {next, ts, &ks};
        pub.last_ts = rc ? 0 : ts;
        pub.ctx = &sp;
        hand_to_syncer(s, &pub);
        int frc = wait_passed(s, &pub, err);
        if (!rc) rc = frc;
        if (!rc) next = NULL; /* published */
        cvx_buf_free(&ks.bytes);
        cvx_free(ks.keys);
    }
    cvx_txn_abort(reader);
    pthread_mutex_unlock(&s->commit_mu);
    cvx__catalog_release(cur);
    cvx__catalog_release(next);
    for (size_t i = 0; i < nfields_json; i++) cvx_buf_free(&fields_json[i]);
    cvx_free(dropped);
    cvx_free(new_tables);
    cvx_free(new_indexes);
    cvx_free(b.entries);
    cvx_free(b.entry_off);
    cvx_buf_free(&b.entry_keys);
    return rc;
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

int cvx_store_apply_indexes(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables,
                            void (*progress)(void *ctx, const char *line), void *progress_ctx, cvx_err_t *err) {
    return apply_indexes(s, tables, ntables, false, progress, progress_ctx, err);
}

int cvx_store_ensure_system_tables(cvx_store_t *s, const cvx_table_def_t *tables, size_t ntables, cvx_err_t *err) {
    return apply_indexes(s, tables, ntables, true, NULL, NULL, err);
}

int cvx_store_index_id(cvx_store_t *s, const char *table, const char *index, uint64_t *out) {
    cvx__catalog_t *c = cvx__catalog_acquire(s);
    const cvx__table_t *t = cvx__catalog_table(c, table, strlen(table));
    const cvx__index_t *ix = t ? cvx__table_index(t, index) : NULL;
    if (ix) *out = ix->id;
    cvx__catalog_release(c);
    return ix ? CVX_OK : CVX_E_NOT_FOUND;
}
