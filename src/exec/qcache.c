/* The query result cache: (module, function, arguments) -> result, kept
 * while nothing the query read has changed.
 *
 * An entry remembers its read set (index key ranges). Every commit's
 * written keys are checked against the entries' ranges and the overlapping
 * entries are dropped, the same rule that re-runs subscriptions. The
 * ranges are filed in a range index (store's cvx_rindex), so that check
 * costs a few hash probes per written key, not a scan of every entry.
 *
 * Correctness at the edges: a result computed at snapshot S is stored only
 * if the last commit this cache has seen is S. Commits are reported in
 * timestamp order under the store's commit lock, so every commit after S
 * is seen after the entry exists and can drop it; a result computed while
 * a newer commit was being published is simply not cached.
 *
 * A deploy needs no invalidation: keys start with the module's hash, and
 * the same module computes the same results. Memory is bounded (LRU, in
 * util's cvx_cache_t; the range index over entries stays here).
 *
 * The lock covers only pointer work: a hit's multi-MiB value is copied,
 * and an evicted entry freed, after it is released (entries are
 * reference-counted). The event loop answers hits under this lock, and a
 * worker preempted while copying inside it would stall every client. */
#include "exec/exec_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

typedef struct entry entry_t;

struct entry {
    cvx_cache_node_t node; /* by key */
    char *key;
    size_t key_len;
    cvx_buf_t value, logs;
    uint32_t nlogs;
    uint8_t log_full; /* the result's, so that a nested caller's log ends too */
    bool log_note;
    cvx_rindex_reg_t *regs; /* its read set, filed in c->index; lo and hi in range_bytes */
    size_t nregs;
    uint8_t *range_bytes;
    bool doomed;
    entry_t *doomed_next;
    entry_t *dead_next; /* c->dead */
    atomic_uint refs;   /* the table's, and each reader's while it copies */
};

struct cvx__qcache {
    pthread_mutex_t mu;
    cvx_store_t *store;
    int listener;
    uint64_t latest_seen;
    cvx_cache_t cache;
    cvx_rindex_t *index; /* the entries' read sets */
    uint64_t invalidations;
    entry_t *dead; /* evicted, to be released once the lock is dropped */
};

static entry_t *oldest(const cvx__qcache_t *c) {
    cvx_cache_node_t *n = cvx_cache_oldest(&c->cache);
    return n ? CVX_CONTAINER_OF(n, entry_t, node) : NULL;
}

static void entry_free(entry_t *e) {
    cvx_free(e->key);
    cvx_buf_free(&e->value);
    cvx_buf_free(&e->logs);
    cvx_free(e->regs);
    cvx_free(e->range_bytes);
    cvx_free(e);
}

static void entry_release(entry_t *e) {
    if (atomic_fetch_sub(&e->refs, 1) == 1) entry_free(e);
}

/* Unlocks the cache, then releases the entries evicted meanwhile. */
static void unlock(cvx__qcache_t *c) {
    entry_t *dead = c->dead;
    c->dead = NULL;
    pthread_mutex_unlock(&c->mu);
    while (dead) {
        entry_t *e = dead;
        dead = e->dead_next;
        entry_release(e);
    }
}

/* Under c->mu; the entry is released by unlock(). */
static void evict(cvx__qcache_t *c, entry_t *e) {
    cvx_cache_remove(&c->cache, &e->node);
    for (size_t i = 0; i < e->nregs; i++) cvx_rindex_remove(c->index, &e->regs[i]);
    e->dead_next = c->dead;
    c->dead = e;
}

static void doom(void *owner, void *ctx) {
    entry_t *e = owner, **doomed = ctx;
    if (e->doomed) return;
    e->doomed = true;
    e->doomed_next = *doomed;
    *doomed = e;
}

/* Called by the store after each durable commit, in ts order. */
static void on_commit(void *ctx, const cvx_commit_info_t *ci) {
    cvx__qcache_t *c = ctx;
    pthread_mutex_lock(&c->mu);
    entry_t *doomed = NULL;
    for (size_t k = 0; k < ci->nkeys && c->cache.n; k++) {
        const cvx_written_key_t *w = &ci->keys[k];
        cvx_rindex_match(c->index, w->index_id, w->key, w->key_len, doom, &doomed);
    }
    while (doomed) {
        entry_t *e = doomed;
        doomed = e->doomed_next;
        evict(c, e);
        c->invalidations++;
    }
    c->latest_seen = ci->ts;
    unlock(c);
}

int cvx__qcache_new(cvx_store_t *store, size_t max_bytes, cvx__qcache_t **out) {
    *out = NULL;
    cvx__qcache_t *c = cvx_calloc(1, sizeof *c);
    if (!c) return CVX_E_NOMEM;
    if (cvx_rindex_new(&c->index) || cvx_cache_init(&c->cache, max_bytes)) {
        cvx_rindex_free(c->index);
        cvx_free(c);
        return CVX_E_NOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->store = store;
    c->listener = cvx_store_listen(store, on_commit, c);
    /* Commits before this point are already in every snapshot we will see. */
    pthread_mutex_lock(&c->mu);
    uint64_t latest = cvx_store_latest_ts(store);
    if (latest > c->latest_seen) c->latest_seen = latest;
    pthread_mutex_unlock(&c->mu);
    *out = c;
    return CVX_OK;
}

void cvx__qcache_free(cvx__qcache_t *c) {
    if (!c) return;
    cvx_store_unlisten(c->store, c->listener);
    pthread_mutex_lock(&c->mu);
    while (oldest(c)) evict(c, oldest(c));
    unlock(c);
    cvx_cache_destroy(&c->cache);
    cvx_rindex_free(c->index);
    pthread_mutex_destroy(&c->mu);
    cvx_free(c);
}

void cvx__qcache_clear(cvx__qcache_t *c) {
    pthread_mutex_lock(&c->mu);
    while (oldest(c)) evict(c, oldest(c));
    unlock(c);
}

static entry_t *find(cvx__qcache_t *c, const char *key, size_t len, uint64_t h) {
    for (cvx_cache_node_t *n = cvx_cache_chain(&c->cache, h); n; n = cvx_cache_next(n, h)) {
        entry_t *e = CVX_CONTAINER_OF(n, entry_t, node);
        if (e->key_len == len && memcmp(e->key, key, len) == 0) return e;
    }
    return NULL;
}

bool cvx__qcache_get(cvx__qcache_t *c, const char *key, size_t len, cvx_abi_result_t *r, uint64_t *ts) {
    uint64_t h = cvx_fnv1a(CVX_FNV_SEED, key, len);
    pthread_mutex_lock(&c->mu);
    entry_t *e = find(c, key, len, h);
    uint64_t seen = c->latest_seen;
    if (e) {
        atomic_fetch_add(&e->refs, 1);
        cvx_cache_hit(&c->cache, &e->node);
    } else {
        cvx_cache_miss(&c->cache);
    }
    unlock(c);
    if (!e) return false;
    /* The entry's fields never change once it is in the table. */
    bool hit = !cvx_buf_append(&r->value, e->value.data, e->value.len) &&
               !cvx_buf_append(&r->logs, e->logs.data, e->logs.len);
    if (hit) {
        r->nlogs = e->nlogs;
        r->log_full = e->log_full;
        r->log_note = e->log_note;
        *ts = seen;
    }
    entry_release(e);
    return hit;
}

void cvx__qcache_put(cvx__qcache_t *c, const char *key, size_t len, uint64_t ts, const cvx_readset_t *rs,
                     const cvx_abi_result_t *r) {
    if (!rs || r->status != CVX_OK) return;
    size_t nregs = cvx_readset_len(rs), range_bytes = 0;
    for (size_t i = 0; i < nregs; i++) {
        cvx_key_range_t kr;
        cvx_readset_range(rs, i, &kr);
        range_bytes += kr.lo_len + kr.hi_len;
    }
    size_t bytes = sizeof(entry_t) + len + r->value.len + r->logs.len + nregs * sizeof(cvx_rindex_reg_t) + range_bytes + 64;
    if (!cvx_cache_admits(&c->cache, bytes)) return;

    entry_t *e = cvx_calloc(1, sizeof *e);
    if (!e) return;
    e->key = cvx_malloc(len ? len : 1);
    e->regs = cvx_calloc(nregs ? nregs : 1, sizeof *e->regs);
    e->range_bytes = cvx_malloc(range_bytes ? range_bytes : 1);
    if (!e->key || !e->regs || !e->range_bytes || cvx_buf_append(&e->value, r->value.data, r->value.len) ||
        cvx_buf_append(&e->logs, r->logs.data, r->logs.len)) {
        entry_free(e);
        return;
    }
    memcpy(e->key, key, len);
    e->key_len = len;
    uint64_t hash = cvx_fnv1a(CVX_FNV_SEED, key, len);
    e->nlogs = r->nlogs;
    e->log_full = r->log_full;
    e->log_note = r->log_note;
    e->nregs = nregs;
    atomic_init(&e->refs, 1);
    uint8_t *p = e->range_bytes;
    for (size_t i = 0; i < nregs; i++) {
        cvx_rindex_reg_t *g = &e->regs[i];
        cvx_readset_range(rs, i, &g->r);
        if (g->r.lo_len) memcpy(p, g->r.lo, g->r.lo_len);
        g->r.lo = p;
        p += g->r.lo_len;
        if (g->r.hi_len) memcpy(p, g->r.hi, g->r.hi_len);
        g->r.hi = p;
        p += g->r.hi_len;
        g->owner = e;
    }

    pthread_mutex_lock(&c->mu);
    bool fresh = ts == c->latest_seen;
    entry_t *old = fresh ? find(c, key, len, hash) : NULL;
    if (old) evict(c, old);
    bool ok = fresh && cvx_rindex_add_all(c->index, e->regs, nregs) == CVX_OK;
    if (ok) {
        cvx_cache_insert(&c->cache, &e->node, hash, bytes);
        while (cvx_cache_over(&c->cache, 0) && oldest(c) && oldest(c) != e) evict(c, oldest(c));
        e = NULL;
    }
    unlock(c);
    if (e) entry_free(e); /* not cached */
}

void cvx__qcache_stats(cvx__qcache_t *c, uint64_t *hits, uint64_t *misses, uint64_t *invalidations, size_t *entries,
                       size_t *bytes) {
    pthread_mutex_lock(&c->mu);
    *hits = c->cache.hits;
    *misses = c->cache.misses;
    *invalidations = c->invalidations;
    *entries = c->cache.n;
    *bytes = c->cache.bytes;
    pthread_mutex_unlock(&c->mu);
}
