/* The index-range cache: which documents an index range held, kept in
 * memory so that a repeated query (a lookup by a unique field, a page of a
 * list) reads no index entries from SQLite. With the hot-document cache
 * behind it, such a query does not touch SQLite at all.
 *
 * An entry is keyed by the range as asked (index, lo, hi, direction) and
 * holds the visible rows (key, document id) in scan order: all of them
 * (complete), or the first ones up to where a page stopped (partial; a
 * reader that needs more goes on from the last cached key in SQLite).
 * The rows an entry covers are [lo, hi) when complete, else up to and
 * including its last key.
 *
 * Validity by snapshot follows doccache.c: `applied` is the newest commit
 * whose written keys have been applied (entries they touch are dropped);
 * an entry's rows are the range's rows at every snapshot from its `from`
 * through `applied`. A reader at S >= from may use it. A reader's fill at
 * S is kept only if applied <= S, or a commit after S that changed the
 * range may already have been applied (and would not drop the new entry).
 *
 * Dropping on a write must be cheap with many entries. Most ranges are a
 * prefix (eq conditions on the leading fields: [p, successor(p))), and a
 * key is inside such a range iff p is a prefix of it: those entries sit in
 * a hash table by (index, p), and a written key looks up each prefix
 * length in use on its index (few: one per query shape). Other ranges are
 * checked one by one, per index, at most MAX_GENERAL per index.
 *
 * Bounded by bytes, least recently used first out (util's cvx_cache_t). */
#include "store/store_int.h"

#include <string.h>

#define MAX_GENERAL 256 /* other-shaped ranges per index */
#define MAX_LENS 8      /* distinct prefix lengths per index */

typedef struct rentry {
    cvx_cache_node_t node;        /* by the range asked */
    struct rentry *pnext;         /* prefix chain (prefix entries) */
    struct rentry *gprev, *gnext; /* the index's general list (others) */
    uint64_t phash;
    uint64_t index_id;
    uint64_t from;
    bool desc, hi_inf, complete, prefix;
    size_t lo_len, hi_len;   /* the range asked: data[0, lo_len), then hi */
    size_t clo_off, clo_len; /* the range covered, inside data */
    size_t chi_off, chi_len;
    bool chi_inf;
    size_t rows_off, rows_len; /* rows as cvx__rangecache_get returns them */
    uint8_t data[];
} rentry_t;

typedef struct {
    uint64_t index_id;
    rentry_t *general;
    size_t ngeneral;
    size_t lens[MAX_LENS], lens_n[MAX_LENS]; /* prefix lengths in use, entries each */
    size_t nlens;
} rindex_t;

struct cvx__rangecache {
    pthread_mutex_t mu;
    cvx_cache_t cache;
    rentry_t **ptable; /* prefix entries by (index, prefix) */
    size_t pcap, pn;   /* buckets (a power of two), prefix entries */
    rindex_t *ix;
    size_t nix;
    uint64_t applied;
};

static uint64_t range_hash(const cvx__rkey_t *k) {
    uint8_t flags = (uint8_t)(k->desc | k->hi_inf << 1);
    uint64_t h = cvx_fnv1a(CVX_FNV_SEED, &k->index_id, sizeof k->index_id);
    h = cvx_fnv1a(h, &flags, 1);
    h = cvx_fnv1a(h, &k->lo_len, sizeof k->lo_len);
    h = cvx_fnv1a(h, k->lo, k->lo_len);
    return k->hi_inf ? h : cvx_fnv1a(h, k->hi, k->hi_len);
}

static uint64_t prefix_hash(uint64_t index_id, const uint8_t *p, size_t len) {
    return cvx_fnv1a(cvx_fnv1a(CVX_FNV_SEED, &index_id, sizeof index_id), p, len);
}

static int cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    size_t m = CVX_MIN(al, bl);
    int c = m ? memcmp(a, b, m) : 0;
    return c ? c : al < bl ? -1 : al > bl;
}

static bool same_range(const rentry_t *e, const cvx__rkey_t *k) {
    return e->index_id == k->index_id && e->desc == k->desc && e->hi_inf == k->hi_inf && e->lo_len == k->lo_len &&
           (k->hi_inf || e->hi_len == k->hi_len) && (!k->lo_len || memcmp(e->data, k->lo, k->lo_len) == 0) &&
           (k->hi_inf || !k->hi_len || memcmp(e->data + e->lo_len, k->hi, k->hi_len) == 0);
}

/* Is [lo, hi) exactly the keys that start with lo? */
static bool is_prefix_range(const cvx__rkey_t *k) {
    if (k->hi_inf || k->lo_len == 0) return false;
    size_t n = k->lo_len;
    while (n > 0 && k->lo[n - 1] == 0xff) n--;
    return n > 0 && k->hi_len == n && (n == 1 || memcmp(k->lo, k->hi, n - 1) == 0) && k->hi[n - 1] == k->lo[n - 1] + 1;
}

static rindex_t *index_info(cvx__rangecache_t *c, uint64_t index_id, bool create) {
    for (size_t i = 0; i < c->nix; i++)
        if (c->ix[i].index_id == index_id) return &c->ix[i];
    if (!create) return NULL;
    rindex_t *ix = cvx_realloc(c->ix, (c->nix + 1) * sizeof *ix);
    if (!ix) return NULL;
    c->ix = ix;
    memset(&ix[c->nix], 0, sizeof *ix);
    ix[c->nix].index_id = index_id;
    return &ix[c->nix++];
}

static rentry_t *oldest(const cvx__rangecache_t *c) {
    cvx_cache_node_t *n = cvx_cache_oldest(&c->cache);
    return n ? CVX_CONTAINER_OF(n, rentry_t, node) : NULL;
}

static void remove_entry(cvx__rangecache_t *c, rentry_t *e) {
    cvx_cache_remove(&c->cache, &e->node);
    rindex_t *ix = index_info(c, e->index_id, false);
    if (e->prefix) {
        rentry_t **p = &c->ptable[e->phash & (c->pcap - 1)];
        while (*p != e) p = &(*p)->pnext;
        *p = e->pnext;
        c->pn--;
        for (size_t i = 0; ix && i < ix->nlens; i++) {
            if (ix->lens[i] != e->lo_len) continue;
            if (--ix->lens_n[i] == 0) {
                ix->lens[i] = ix->lens[ix->nlens - 1];
                ix->lens_n[i] = ix->lens_n[ix->nlens - 1];
                ix->nlens--;
            }
            break;
        }
    } else if (ix) {
        if (e->gprev) e->gprev->gnext = e->gnext;
        else ix->general = e->gnext;
        if (e->gnext) e->gnext->gprev = e->gprev;
        ix->ngeneral--;
    }
    cvx_free(e);
}

static void grow_prefixes(cvx__rangecache_t *c) {
    size_t ncap = c->pcap * 2;
    rentry_t **np = cvx_calloc(ncap, sizeof *np);
    if (!np) return; /* longer chains, still correct */
    for (size_t i = 0; i < c->pcap; i++) {
        for (rentry_t *e = c->ptable[i], *next; e; e = next) {
            next = e->pnext;
            e->pnext = np[e->phash & (ncap - 1)];
            np[e->phash & (ncap - 1)] = e;
        }
    }
    cvx_free(c->ptable);
    c->ptable = np;
    c->pcap = ncap;
}

int cvx__rangecache_new(size_t max_bytes, uint64_t applied, cvx__rangecache_t **out) {
    *out = NULL;
    cvx__rangecache_t *c = cvx_calloc(1, sizeof *c);
    if (!c) return CVX_E_NOMEM;
    c->pcap = 1024;
    c->ptable = cvx_calloc(c->pcap, sizeof *c->ptable);
    if (!c->ptable || cvx_cache_init(&c->cache, max_bytes)) {
        cvx_free(c->ptable);
        cvx_free(c);
        return CVX_E_NOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->applied = applied;
    *out = c;
    return CVX_OK;
}

void cvx__rangecache_free(cvx__rangecache_t *c) {
    if (!c) return;
    while (oldest(c)) remove_entry(c, oldest(c));
    cvx_cache_destroy(&c->cache);
    cvx_free(c->ptable);
    cvx_free(c->ix);
    pthread_mutex_destroy(&c->mu);
    cvx_free(c);
}

static rentry_t *lookup(cvx__rangecache_t *c, const cvx__rkey_t *k, uint64_t h) {
    for (cvx_cache_node_t *n = cvx_cache_chain(&c->cache, h); n; n = cvx_cache_next(n, h)) {
        rentry_t *e = CVX_CONTAINER_OF(n, rentry_t, node);
        if (same_range(e, k)) return e;
    }
    return NULL;
}

bool cvx__rangecache_get(cvx__rangecache_t *c, const cvx__rkey_t *k, uint64_t at, cvx_buf_t *rows, bool *complete) {
    uint64_t h = range_hash(k);
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    rentry_t *e = lookup(c, k, h);
    if (e && e->from <= at && !cvx_buf_append(rows, e->data + e->rows_off, e->rows_len)) {
        *complete = e->complete;
        cvx_cache_hit(&c->cache, &e->node);
        hit = true;
    } else {
        cvx_cache_miss(&c->cache);
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* Where the key of the row at `off` is, in rows laid out by
 * cvx__rangecache_row_append. */
static void row_key(const uint8_t *rows, size_t off, const uint8_t **key, size_t *len) {
    uint32_t n;
    memcpy(&n, rows + off, sizeof n);
    *key = rows + off + sizeof n;
    *len = n;
}

void cvx__rangecache_fill(cvx__rangecache_t *c, const cvx__rkey_t *k, uint64_t at, const uint8_t *rows,
                          size_t rows_len, size_t last_off, bool complete) {
    /* Partial entries with no row cover nothing; a fill must leave room. */
    if (!complete && rows_len == 0) return;
    const uint8_t *last = NULL;
    size_t last_len = 0;
    if (rows_len) row_key(rows, last_off, &last, &last_len);
    /* The range covered: [lo, hi), or up to and including the last key. */
    const uint8_t *clo = k->lo, *chi = k->hi;
    size_t clo_len = k->lo_len, chi_len = k->hi_len;
    bool chi_inf = k->hi_inf, chi_nul = false;
    if (!complete && !k->desc) {
        chi = last;
        chi_len = last_len;
        chi_inf = false;
        chi_nul = true; /* last ‖ 0x00: just past the last key */
    } else if (!complete) {
        clo = last;
        clo_len = last_len;
    }
    size_t hi_len = k->hi_inf ? 0 : k->hi_len, chi_bytes = chi_inf ? 0 : chi_len + chi_nul;
    size_t data = k->lo_len + hi_len + clo_len + chi_bytes + rows_len;
    size_t need = sizeof(rentry_t) + data;
    bool prefix = is_prefix_range(k);
    uint64_t h = range_hash(k);
    pthread_mutex_lock(&c->mu);
    if (c->applied > at || !cvx_cache_admits(&c->cache, need)) goto out;
    rentry_t *old = lookup(c, k, h);
    /* One current from an earlier snapshot is at least as useful, unless
     * this one has more rows. */
    if (old && old->from <= at && (old->complete || !complete) && old->rows_len >= rows_len) goto out;
    rindex_t *ix = index_info(c, k->index_id, true);
    if (!ix) goto out;
    if (old) remove_entry(c, old);
    if (prefix) {
        size_t i = 0;
        while (i < ix->nlens && ix->lens[i] != k->lo_len) i++;
        if (i == ix->nlens && ix->nlens == MAX_LENS) prefix = false;
    }
    if (!prefix && ix->ngeneral >= MAX_GENERAL) goto out;
    rentry_t *e = cvx_malloc(need);
    if (!e) goto out;
    memset(e, 0, sizeof *e);
    e->index_id = k->index_id;
    e->from = at;
    e->desc = k->desc;
    e->hi_inf = k->hi_inf;
    e->complete = complete;
    e->prefix = prefix;
    uint8_t *d = e->data;
    e->lo_len = k->lo_len;
    if (k->lo_len) memcpy(d, k->lo, k->lo_len);
    d += k->lo_len;
    e->hi_len = hi_len;
    if (hi_len) memcpy(d, k->hi, hi_len);
    d += hi_len;
    e->clo_off = (size_t)(d - e->data);
    e->clo_len = clo_len;
    if (clo_len) memcpy(d, clo, clo_len);
    d += clo_len;
    e->chi_off = (size_t)(d - e->data);
    e->chi_inf = chi_inf;
    e->chi_len = chi_bytes;
    if (!chi_inf && chi_len) memcpy(d, chi, chi_len);
    if (chi_nul) d[chi_len] = 0;
    d += chi_bytes;
    e->rows_off = (size_t)(d - e->data);
    e->rows_len = rows_len;
    if (rows_len) memcpy(d, rows, rows_len);
    while (oldest(c) && cvx_cache_over(&c->cache, need)) remove_entry(c, oldest(c));
    /* Eviction may have dropped the index's last entry, not its record. */
    ix = index_info(c, k->index_id, false);
    cvx_cache_insert(&c->cache, &e->node, h, need);
    if (prefix) {
        if (c->pn + 1 > c->pcap) grow_prefixes(c);
        e->phash = prefix_hash(k->index_id, k->lo, k->lo_len);
        e->pnext = c->ptable[e->phash & (c->pcap - 1)];
        c->ptable[e->phash & (c->pcap - 1)] = e;
        c->pn++;
        size_t i = 0;
        while (i < ix->nlens && ix->lens[i] != k->lo_len) i++;
        if (i == ix->nlens) {
            ix->lens[i] = k->lo_len;
            ix->lens_n[i] = 0;
            ix->nlens++;
        }
        ix->lens_n[i]++;
    } else {
        e->gnext = ix->general;
        if (ix->general) ix->general->gprev = e;
        ix->general = e;
        ix->ngeneral++;
    }
out:
    pthread_mutex_unlock(&c->mu);
}

static bool covers(const rentry_t *e, const uint8_t *key, size_t len) {
    if (cmp(key, len, e->data + e->clo_off, e->clo_len) < 0) return false;
    return e->chi_inf || cmp(key, len, e->data + e->chi_off, e->chi_len) < 0;
}

/* Drops every entry of the key's index that covers the key. */
static void drop_covering(cvx__rangecache_t *c, const cvx__index_write_t *w) {
    rindex_t *ix = index_info(c, w->index_id, false);
    if (!ix) return;
    /* A copy: removing an index's last entry of a length changes lens. */
    size_t lens[MAX_LENS], nlens = ix->nlens;
    memcpy(lens, ix->lens, nlens * sizeof *lens);
    for (size_t i = 0; i < nlens; i++) {
        size_t len = lens[i];
        if (len > w->key_len) continue;
        uint64_t ph = prefix_hash(w->index_id, w->key, len);
        for (rentry_t *e = c->ptable[ph & (c->pcap - 1)], *next; e; e = next) {
            next = e->pnext;
            if (e->phash == ph && e->index_id == w->index_id && e->lo_len == len && memcmp(e->data, w->key, len) == 0)
                remove_entry(c, e);
        }
    }
    for (rentry_t *e = ix->general, *next; e; e = next) {
        next = e->gnext;
        if (covers(e, w->key, w->key_len)) remove_entry(c, e);
    }
}

void cvx__rangecache_apply(cvx__rangecache_t *c, uint64_t ts, const cvx__index_write_t *entries, size_t n) {
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) drop_covering(c, &entries[i]);
    if (ts > c->applied) c->applied = ts;
    pthread_mutex_unlock(&c->mu);
}

void cvx__rangecache_stats(cvx__rangecache_t *c, uint64_t *hits, uint64_t *misses, size_t *entries, size_t *bytes) {
    pthread_mutex_lock(&c->mu);
    *hits = c->cache.hits;
    *misses = c->cache.misses;
    *entries = c->cache.n;
    *bytes = c->cache.bytes;
    pthread_mutex_unlock(&c->mu);
}

int cvx__rangecache_row_append(cvx_buf_t *rows, const uint8_t *key, size_t key_len, const uint8_t id[16]) {
    uint32_t n = (uint32_t)key_len;
    cvx_buf_append(rows, &n, sizeof n);
    cvx_buf_append(rows, key, key_len);
    cvx_buf_append(rows, id, 16);
    return rows->oom ? CVX_E_NOMEM : CVX_OK;
}

size_t cvx__rangecache_row_next(const uint8_t *rows, size_t off, const uint8_t **key, size_t *key_len,
                                const uint8_t **id) {
    row_key(rows, off, key, key_len);
    *id = *key + *key_len;
    return off + sizeof(uint32_t) + *key_len + 16;
}
