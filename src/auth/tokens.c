/* Tokens verified lately: SHA-256 of the token -> the identity it gave,
 * until its exp, under the providers it was checked with. Only tokens
 * that verified get in, so a client cannot fill the cache (or pick its
 * hash chains) without an issuer signing for it; the byte budget evicts
 * the least recently used. */
#include <string.h>

#include "auth/auth_int.h"

typedef struct {
    cvx_cache_node_t node;
    uint8_t digest[32];
    uint64_t gen;
    int64_t exp;
    size_t len;
    char identity[];
} entry_t;

static uint64_t hash_of(const uint8_t d[32]) {
    uint64_t h;
    memcpy(&h, d, sizeof h);
    return h;
}

static entry_t *find(cvx_cache_t *c, const uint8_t d[32]) {
    uint64_t h = hash_of(d);
    for (cvx_cache_node_t *n = cvx_cache_chain(c, h); n; n = cvx_cache_next(n, h)) {
        entry_t *e = CVX_CONTAINER_OF(n, entry_t, node);
        if (!memcmp(e->digest, d, 32)) return e;
    }
    return NULL;
}

bool cvx_auth_lookup(cvx_auth_t *a, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires) {
    if (len > CVX_AUTH_MAX_TOKEN) return false;
    uint8_t d[32];
    cvx_sha256(token, len, d);
    uint64_t gen = cvx__auth_gen(a);
    int64_t now = (int64_t)(cvx_now_ns() / 1000000000u);
    pthread_mutex_t *mu = cvx__tokens_lock(a);
    cvx_cache_t *c = cvx__tokens_cache(a);
    pthread_mutex_lock(mu);
    entry_t *e = find(c, d);
    bool hit = e && e->gen == gen && now <= e->exp; /* exp: the skew included */
    if (e && !hit) { /* stale: the providers changed, or it expired */
        cvx_cache_remove(c, &e->node);
        cvx_free(e);
    }
    if (hit) {
        cvx_cache_hit(c, &e->node);
        hit = cvx_buf_append(identity, e->identity, e->len) == 0;
        *expires = e->exp;
    } else {
        cvx_cache_miss(c);
    }
    pthread_mutex_unlock(mu);
    return hit;
}

void cvx__tokens_put(cvx_auth_t *a, const char *token, size_t len, uint64_t gen, int64_t exp, const char *identity,
                     size_t identity_len) {
    size_t bytes = sizeof(entry_t) + identity_len;
    cvx_cache_t *c = cvx__tokens_cache(a);
    if (!cvx_cache_admits(c, bytes)) return;
    entry_t *e = cvx_malloc(bytes);
    if (!e) return;
    cvx_sha256(token, len, e->digest);
    e->gen = gen;
    e->exp = exp;
    e->len = identity_len;
    memcpy(e->identity, identity, identity_len);
    pthread_mutex_t *mu = cvx__tokens_lock(a);
    pthread_mutex_lock(mu);
    entry_t *old = find(c, e->digest);
    if (old) {
        cvx_cache_remove(c, &old->node);
        cvx_free(old);
    }
    while (cvx_cache_over(c, bytes)) {
        cvx_cache_node_t *n = cvx_cache_oldest(c);
        if (!n) break;
        cvx_cache_remove(c, n);
        cvx_free(CVX_CONTAINER_OF(n, entry_t, node));
    }
    cvx_cache_insert(c, &e->node, hash_of(e->digest), bytes);
    pthread_mutex_unlock(mu);
}

void cvx__tokens_clear(cvx_auth_t *a) {
    cvx_cache_t *c = cvx__tokens_cache(a);
    cvx_cache_node_t *n;
    while ((n = cvx_cache_oldest(c))) {
        cvx_cache_remove(c, n);
        cvx_free(CVX_CONTAINER_OF(n, entry_t, node));
    }
}
