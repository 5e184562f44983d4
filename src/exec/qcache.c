/* The query result cache: (module, function, arguments) -> result, kept
 * while nothing the query read has changed.
 *
 * An entry remembers its read set (index key ranges). Every commit's
 * written keys are checked against the entries' ranges and the overlapping
 * entries are dropped, the same rule that re-runs subscriptions. To keep
 * that check cheap with many entries, no range is found by a scan: every
 * key in [lo, hi) starts with the common prefix C of lo and hi, so each
 * range sits in a hash table under (index, C), and a written key K finds
 * the ranges that may hold it by hashing (index, K's first L bytes) for
 * each length L of a C in use on that index: a few, as C is the bytes of
 * the fields a query fixed (a get by id: the whole key; an equality on
 * the leading index fields, the common `with_index(.., eq)`: those
 * fields). Ranges with nothing in common (a scan of a whole index) share
 * the bucket of the empty prefix.
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

/* One range of an entry, linked into the table under (index, lo's first
 * clen bytes). */
typedef struct reg {
    struct reg *prev, *next;
    entry_t *e;
    cvx_key_range_t r; /* lo and hi point into the entry's bytes */
    uint64_t hash;     /* of (index, lo[0..clen)) */
    size_t clen;       /* the common prefix of lo and hi */
} reg_t;

struct entry {
    cvx_cache_node_t node; /* by key */
    char *key;
    size_t key_len;
    cvx_buf_t value, logs;
    uint32_t nlogs;
    uint8_t log_full; /* the result's, so that a nested caller's log ends too */
    bool log_note;
    reg_t *regs;
    size_t nregs;
    uint8_t *range_bytes;
    bool doomed;
    entry_t *doomed_next;
    entry_t *dead_next; /* c->dead */
    atomic_uint refs;   /* the table's, and each reader's while it copies */
};

/* How many ranges of an index have a common prefix of one length. */
typedef struct {
    size_t len, count;
} plen_t;

typedef struct {
    uint64_t index_id;
    plen_t *plens; /* the lengths in use */
    size_t nplens;
} range_list_t;

struct cvx__qcache {
    pthread_mutex_t mu;
    cvx_store_t *store;
    int listener;
    uint64_t latest_seen;
    cvx_cache_t cache;
    reg_t **table; /* by (index, common prefix) */
    size_t table_cap;
    range_list_t *ranges;
    size_t nranges;
    uint64_t invalidations;
    entry_t *dead; /* evicted, to be released once the lock is dropped */
};

static uint64_t prefix_hash(uint64_t index_id, const uint8_t *key, size_t len) {
    return cvx_fnv1a(cvx_fnv1a(CVX_FNV_SEED, &index_id, sizeof index_id), key, len);
}

/* The bytes every key in the range starts with. */
static size_t common_prefix(const cvx_key_range_t *r) {
    if (r->hi_inf) return 0;
    size_t n = r->lo_len < r->hi_len ? r->lo_len : r->hi_len, i = 0;
    while (i < n && r->lo[i] == r->hi[i]) i++;
    return i;
}

/* Counts a prefix length in or out of its index's list. */
static int plen_add(range_list_t *rl, size_t len, int delta) {
    for (size_t i = 0; i < rl->nplens; i++) {
        if (rl->plens[i].len != len) continue;
        rl->plens[i].count += (size_t)delta;
        if (rl->plens[i].count == 0) rl->plens[i] = rl->plens[--rl->nplens];
        return CVX_OK;
    }
    if (delta < 0) return CVX_OK;
    plen_t *p = cvx_realloc(rl->plens, (rl->nplens + 1) * sizeof *p);
    if (!p) return CVX_E_NOMEM;
    rl->plens = p;
    rl->plens[rl->nplens++] = (plen_t){len, 1};
    return CVX_OK;
}

static void link_reg(reg_t **head, reg_t *g) {
    g->prev = NULL;
    g->next = *head;
    if (*head) (*head)->prev = g;
    *head = g;
}

static void unlink_reg(reg_t **head, reg_t *g) {
    if (g->prev) g->prev->next = g->next;
    else *head = g->next;
    if (g->next) g->next->prev = g->prev;
}

static range_list_t *range_list(cvx__qcache_t *c, uint64_t index_id, bool create) {
    for (size_t i = 0; i < c->nranges; i++)
        if (c->ranges[i].index_id == index_id) return &c->ranges[i];
    if (!create) return NULL;
    range_list_t *r = cvx_realloc(c->ranges, (c->nranges + 1) * sizeof *r);
    if (!r) return NULL;
    c->ranges = r;
    r[c->nranges] = (range_list_t){index_id, NULL, 0};
    return &r[c->nranges++];
}

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
    for (size_t i = 0; i < e->nregs; i++) {
        reg_t *g = &e->regs[i];
        unlink_reg(&c->table[g->hash & (c->table_cap - 1)], g);
        plen_add(range_list(c, g->r.index_id, false), g->clen, -1);
    }
    e->dead_next = c->dead;
    c->dead = e;
}

/* Called by the store after each durable commit, in ts order. */
/* Dooms the entries of the ranges under (index, key[0..len)) that hold
 * the written key. */
static void doom_bucket(cvx__qcache_t *c, const cvx_written_key_t *w, size_t len, entry_t **doomed) {
    uint64_t h = prefix_hash(w->index_id, w->key, len);
    for (reg_t *g = c->table[h & (c->table_cap - 1)]; g; g = g->next) {
        if (g->e->doomed || g->hash != h || g->r.index_id != w->index_id || g->clen != len ||
            (len && memcmp(g->r.lo, w->key, len) != 0) ||
            !cvx_key_range_contains(&g->r, w->index_id, w->key, w->key_len))
            continue;
        g->e->doomed = true;
        g->e->doomed_next = *doomed;
        *doomed = g->e;
    }
}

static void on_commit(void *ctx, const cvx_commit_info_t *ci) {
    cvx__qcache_t *c = ctx;
    pthread_mutex_lock(&c->mu);
    entry_t *doomed = NULL;
    for (size_t k = 0; k < ci->nkeys && c->cache.n; k++) {
        const cvx_written_key_t *w = &ci->keys[k];
        range_list_t *rl = range_list(c, w->index_id, false);
        for (size_t i = 0; rl && i < rl->nplens; i++)
            if (rl->plens[i].len <= w->key_len) doom_bucket(c, w, rl->plens[i].len, &doomed);
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
    c->table_cap = 1024;
    c->table = cvx_calloc(c->table_cap, sizeof *c->table);
    if (!c->table || cvx_cache_init(&c->cache, max_bytes)) {
        cvx_free(c->table);
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
    cvx_free(c->table);
    for (size_t i = 0; i < c->nranges; i++) cvx_free(c->ranges[i].plens);
    cvx_free(c->ranges);
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

static int grow_table(cvx__qcache_t *c) {
    size_t ncap = c->table_cap * 2;
    reg_t **nt = cvx_calloc(ncap, sizeof *nt);
    if (!nt) return CVX_E_NOMEM;
    for (size_t i = 0; i < c->table_cap; i++) {
        for (reg_t *g = c->table[i], *next; g; g = next) {
            next = g->next;
            link_reg(&nt[g->hash & (ncap - 1)], g);
        }
    }
    cvx_free(c->table);
    c->table = nt;
    c->table_cap = ncap;
    return CVX_OK;
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
    size_t bytes = sizeof(entry_t) + len + r->value.len + r->logs.len + nregs * sizeof(reg_t) + range_bytes + 64;
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
        reg_t *g = &e->regs[i];
        cvx_readset_range(rs, i, &g->r);
        if (g->r.lo_len) memcpy(p, g->r.lo, g->r.lo_len);
        g->r.lo = p;
        p += g->r.lo_len;
        if (g->r.hi_len) memcpy(p, g->r.hi, g->r.hi_len);
        g->r.hi = p;
        p += g->r.hi_len;
        g->e = e;
        g->clen = common_prefix(&g->r);
        g->hash = prefix_hash(g->r.index_id, g->r.lo, g->clen);
    }

    pthread_mutex_lock(&c->mu);
    bool fresh = ts == c->latest_seen;
    entry_t *old = fresh ? find(c, key, len, hash) : NULL;
    if (old) evict(c, old);
    bool ok = fresh;
    for (size_t i = 0; i < nregs && ok; i++)
        if (!range_list(c, e->regs[i].r.index_id, true)) ok = false;
    /* counted before anything is linked: a failure has only the counts to undo */
    size_t counted = 0;
    while (ok && counted < nregs) {
        const reg_t *g = &e->regs[counted];
        if (plen_add(range_list(c, g->r.index_id, false), g->clen, 1)) ok = false;
        else counted++;
    }
    if (ok && c->cache.n * 2 + nregs > c->table_cap && grow_table(c)) ok = false;
    if (!ok)
        for (size_t i = 0; i < counted; i++) plen_add(range_list(c, e->regs[i].r.index_id, false), e->regs[i].clen, -1);
    if (ok) {
        cvx_cache_insert(&c->cache, &e->node, hash, bytes);
        for (size_t i = 0; i < nregs; i++) link_reg(&c->table[e->regs[i].hash & (c->table_cap - 1)], &e->regs[i]);
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
