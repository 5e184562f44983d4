/* Which of many key ranges hold a written key, without a scan of them all:
 * the query cache's entries and the sync engine's subscriptions each file
 * their read sets here, and every commit asks for the ranges its written
 * keys fall in.
 *
 * Every key in [lo, hi) starts with the common prefix C of lo and hi (a
 * key that differs from C inside it is below lo or above hi). So a range
 * is filed in a hash table under (index, C), and a written key K finds the
 * ranges that may hold it by hashing (index, K's first L bytes) for each
 * length L of a C in use on that index: a few, since C is the bytes of the
 * fields a query fixed (a get by id: the whole key; an equality on the
 * leading index fields, the usual `with_index(.., eq)`: those fields, even
 * when first() cut the range short). Ranges with nothing in common (a scan
 * of a whole index) share the bucket of the empty prefix. */
#include "store/store_int.h"

#include <string.h>

/* How many ranges of one index have a common prefix of one length. */
typedef struct {
    size_t len, count;
} plen_t;

typedef struct {
    uint64_t index_id;
    plen_t *plens;
    size_t nplens;
} ix_t;

struct cvx_rindex {
    cvx_rindex_reg_t **table;
    size_t cap, n;
    uint64_t seed; /* random: the prefixes come from clients' arguments */
    ix_t *ix;
    size_t nix;
};

static uint64_t prefix_hash(const cvx_rindex_t *x, uint64_t index_id, const uint8_t *key, size_t len) {
    uint64_t h = cvx_fnv1a(x->seed, &index_id, sizeof index_id);
    h = cvx_fnv1a(h, key, len);
    /* FNV's low bits (the bucket) mix poorly: fold the high ones in */
    return h ^ (h >> 29) ^ (h >> 47);
}

static size_t common_prefix(const cvx_key_range_t *r) {
    if (r->hi_inf) return 0;
    size_t n = r->lo_len < r->hi_len ? r->lo_len : r->hi_len, i = 0;
    while (i < n && r->lo[i] == r->hi[i]) i++;
    return i;
}

static ix_t *find_ix(cvx_rindex_t *x, uint64_t index_id, bool create) {
    for (size_t i = 0; i < x->nix; i++)
        if (x->ix[i].index_id == index_id) return &x->ix[i];
    if (!create) return NULL;
    ix_t *p = cvx_realloc(x->ix, (x->nix + 1) * sizeof *p);
    if (!p) return NULL;
    x->ix = p;
    p[x->nix] = (ix_t){index_id, NULL, 0};
    return &p[x->nix++];
}

/* Counts a prefix length in or out. */
static int count_len(ix_t *ix, size_t len, int delta) {
    for (size_t i = 0; i < ix->nplens; i++) {
        if (ix->plens[i].len != len) continue;
        ix->plens[i].count += (size_t)delta;
        if (ix->plens[i].count == 0) ix->plens[i] = ix->plens[--ix->nplens];
        return CVX_OK;
    }
    if (delta < 0) return CVX_OK;
    plen_t *p = cvx_realloc(ix->plens, (ix->nplens + 1) * sizeof *p);
    if (!p) return CVX_E_NOMEM;
    ix->plens = p;
    ix->plens[ix->nplens++] = (plen_t){len, 1};
    return CVX_OK;
}

static void link_reg(cvx_rindex_reg_t **head, cvx_rindex_reg_t *g) {
    g->prev = NULL;
    g->next = *head;
    if (*head) (*head)->prev = g;
    *head = g;
}

static int grow(cvx_rindex_t *x) {
    size_t ncap = x->cap ? x->cap * 2 : 1024;
    cvx_rindex_reg_t **nt = cvx_calloc(ncap, sizeof *nt);
    if (!nt) return CVX_E_NOMEM;
    for (size_t i = 0; i < x->cap; i++) {
        for (cvx_rindex_reg_t *g = x->table[i], *next; g; g = next) {
            next = g->next;
            link_reg(&nt[g->hash & (ncap - 1)], g);
        }
    }
    cvx_free(x->table);
    x->table = nt;
    x->cap = ncap;
    return CVX_OK;
}

int cvx_rindex_new(cvx_rindex_t **out) {
    *out = cvx_calloc(1, sizeof **out);
    if (*out && cvx_os_random(&(*out)->seed, sizeof (*out)->seed)) (*out)->seed = CVX_FNV_SEED ^ (uint64_t)(uintptr_t)*out;
    if (!*out || grow(*out)) {
        cvx_free(*out);
        *out = NULL;
        return CVX_E_NOMEM;
    }
    return CVX_OK;
}

void cvx_rindex_free(cvx_rindex_t *x) {
    if (!x) return;
    for (size_t i = 0; i < x->nix; i++) cvx_free(x->ix[i].plens);
    cvx_free(x->ix);
    cvx_free(x->table);
    cvx_free(x);
}

int cvx_rindex_add(cvx_rindex_t *x, cvx_rindex_reg_t *g) {
    ix_t *ix = find_ix(x, g->r.index_id, true);
    if (!ix) return CVX_E_NOMEM;
    if (x->n * 2 >= x->cap && grow(x)) return CVX_E_NOMEM;
    g->clen = common_prefix(&g->r);
    if (count_len(ix, g->clen, 1)) return CVX_E_NOMEM;
    g->hash = prefix_hash(x, g->r.index_id, g->r.lo, g->clen);
    link_reg(&x->table[g->hash & (x->cap - 1)], g);
    g->filed = true;
    x->n++;
    return CVX_OK;
}

int cvx_rindex_add_all(cvx_rindex_t *x, cvx_rindex_reg_t *regs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (cvx_rindex_add(x, &regs[i]) == CVX_OK) continue;
        while (i) cvx_rindex_remove(x, &regs[--i]);
        return CVX_E_NOMEM;
    }
    return CVX_OK;
}

void cvx_rindex_remove(cvx_rindex_t *x, cvx_rindex_reg_t *g) {
    if (!g->filed) return; /* never filed, or already out */
    g->filed = false;
    cvx_rindex_reg_t **head = &x->table[g->hash & (x->cap - 1)];
    if (g->prev) g->prev->next = g->next;
    else *head = g->next;
    if (g->next) g->next->prev = g->prev;
    g->prev = g->next = NULL;
    ix_t *ix = find_ix(x, g->r.index_id, false);
    if (ix) count_len(ix, g->clen, -1);
    x->n--;
}

void cvx_rindex_match(cvx_rindex_t *x, uint64_t index_id, const uint8_t *key, size_t len,
                      void (*fn)(void *owner, void *ctx), void *ctx) {
    ix_t *ix = find_ix(x, index_id, false);
    for (size_t i = 0; ix && i < ix->nplens; i++) {
        size_t l = ix->plens[i].len;
        if (l > len) continue;
        uint64_t h = prefix_hash(x, index_id, key, l);
        for (cvx_rindex_reg_t *g = x->table[h & (x->cap - 1)], *next; g; g = next) {
            next = g->next; /* fn may not remove g, but reads next first all the same */
            if (g->hash != h || g->clen != l || g->r.index_id != index_id || (l && memcmp(g->r.lo, key, l) != 0) ||
                !cvx_key_range_contains(&g->r, index_id, key, len))
                continue;
            fn(g->owner, ctx);
        }
    }
}
