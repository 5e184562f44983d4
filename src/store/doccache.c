/* The hot-document cache: committed document revisions kept in memory so
 * that a point read (cvx_txn_get, and every document an index range
 * yields) skips SQLite, whose per-statement cost is a read transaction and,
 * after any commit, a reload of the connection's page cache.
 *
 * Snapshots decide what a reader may see, so an entry says for which
 * snapshots it is right. The invariant, under the cache lock:
 *
 *   every entry holds the newest revision of its document with
 *   ts <= applied, where `applied` is the newest commit applied here;
 *   `from` is a snapshot at which that revision was already current.
 *
 * A reader at snapshot S (S <= applied always: commits are applied before
 * their ts is published) may use an entry when from <= S: no revision can
 * lie in (from, S], or it would be newer than the entry and <= applied.
 *
 * Entries come from two places. A commit applies its writes (revision ts =
 * commit ts) before publishing. A reader that read a revision from SQLite at
 * snapshot S adds it with from = S, but only when applied <= S: otherwise a
 * commit after S, already applied, may have written the document, and the
 * older revision would overwrite the newer one. Misses are never cached
 * (a document that does not exist has no entry).
 *
 * Bounded by bytes, least recently used first out (util's cvx_cache_t). */
#include "store/store_int.h"

#include <string.h>

typedef struct dentry {
    cvx_cache_node_t node;
    uint8_t id[16];
    uint64_t from;
    uint32_t table;
    bool deleted;
    size_t len;
    char value[]; /* len bytes of JSON, NUL-terminated */
} dentry_t;

struct cvx__doccache {
    pthread_mutex_t mu;
    cvx_cache_t cache;
    uint64_t applied;
};

static uint64_t id_hash(const uint8_t id[16]) {
    /* Ids end in random bytes; mixing two words spreads sequential ones. */
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull));
    h ^= h >> 29;
    return h * 0xBF58476D1CE4E5B9ull >> 17;
}

static dentry_t *find(const cvx__doccache_t *c, const uint8_t id[16]) {
    uint64_t h = id_hash(id);
    for (cvx_cache_node_t *n = cvx_cache_chain(&c->cache, h); n; n = cvx_cache_next(n, h)) {
        dentry_t *e = CVX_CONTAINER_OF(n, dentry_t, node);
        if (memcmp(e->id, id, 16) == 0) return e;
    }
    return NULL;
}

static void remove_entry(cvx__doccache_t *c, dentry_t *e) {
    cvx_cache_remove(&c->cache, &e->node);
    cvx_free(e);
}

static dentry_t *oldest(const cvx__doccache_t *c) {
    cvx_cache_node_t *n = cvx_cache_oldest(&c->cache);
    return n ? CVX_CONTAINER_OF(n, dentry_t, node) : NULL;
}

/* Replaces id's entry (if any) with a new one; drops the old entry if the
 * new one cannot be allocated, which keeps the invariant. */
static void put(cvx__doccache_t *c, const uint8_t id[16], uint64_t from, uint32_t table, bool deleted,
                const char *value, size_t len) {
    dentry_t *old = find(c, id);
    if (old) remove_entry(c, old);
    size_t need = sizeof(dentry_t) + len + 1;
    if (!cvx_cache_admits(&c->cache, need)) return;
    dentry_t *e = cvx_malloc(need);
    if (!e) return;
    memcpy(e->id, id, 16);
    e->from = from;
    e->table = table;
    e->deleted = deleted;
    e->len = len;
    if (len) memcpy(e->value, value, len);
    e->value[len] = '\0';
    while (oldest(c) && cvx_cache_over(&c->cache, need)) remove_entry(c, oldest(c));
    cvx_cache_insert(&c->cache, &e->node, id_hash(id), need);
}

int cvx__doccache_new(size_t max_bytes, uint64_t applied, cvx__doccache_t **out) {
    *out = NULL;
    cvx__doccache_t *c = cvx_calloc(1, sizeof *c);
    if (!c) return CVX_E_NOMEM;
    if (cvx_cache_init(&c->cache, max_bytes)) {
        cvx_free(c);
        return CVX_E_NOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->applied = applied;
    *out = c;
    return CVX_OK;
}

void cvx__doccache_free(cvx__doccache_t *c) {
    if (!c) return;
    while (oldest(c)) remove_entry(c, oldest(c));
    cvx_cache_destroy(&c->cache);
    pthread_mutex_destroy(&c->mu);
    cvx_free(c);
}

bool cvx__doccache_get(cvx__doccache_t *c, const uint8_t id[16], uint64_t at, bool *deleted, uint32_t *table,
                       cvx_buf_t *value) {
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    dentry_t *e = find(c, id);
    if (e && e->from <= at && !cvx_buf_append(value, e->value, e->len)) {
        *deleted = e->deleted;
        *table = e->table;
        cvx_cache_hit(&c->cache, &e->node);
        hit = true;
    } else {
        cvx_cache_miss(&c->cache);
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void cvx__doccache_fill(cvx__doccache_t *c, const uint8_t id[16], uint64_t at, bool deleted, uint32_t table,
                        const char *value, size_t len) {
    pthread_mutex_lock(&c->mu);
    if (c->applied <= at) {
        dentry_t *e = find(c, id);
        /* An entry current from an earlier snapshot is at least as useful. */
        if (!e || e->from > at) put(c, id, at, table, deleted, value, len);
    }
    pthread_mutex_unlock(&c->mu);
}

void cvx__doccache_apply(cvx__doccache_t *c, const cvx__batch_t *b) {
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < b->ndocs; i++) {
        const cvx__doc_write_t *d = &b->docs[i];
        put(c, d->id, b->ts, d->table, d->deleted, d->deleted ? "" : d->value, d->deleted ? 0 : d->value_len);
    }
    if (b->ts > c->applied) c->applied = b->ts;
    pthread_mutex_unlock(&c->mu);
}

void cvx__doccache_stats(cvx__doccache_t *c, uint64_t *hits, uint64_t *misses, size_t *entries, size_t *bytes) {
    pthread_mutex_lock(&c->mu);
    *hits = c->cache.hits;
    *misses = c->cache.misses;
    *entries = c->cache.n;
    *bytes = c->cache.bytes;
    pthread_mutex_unlock(&c->mu);
}
