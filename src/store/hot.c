/* Hot ranges: pessimistic locks where optimism keeps failing.
 *
 * Under OCC, mutations that all read and write one document (a counter, a
 * popular account) conflict with each other: of the attempts that read the
 * same version, one commits and the rest run again, burning the cores
 * that the winner's successors need. Convex retries; so did we, at a
 * fraction of the throughput a serial loop gets.
 *
 * So the store remembers which read ranges recently caused conflicts: a
 * range read by a transaction that lost is "hot" for HOT_NS, by a hash of
 * the range as requested (index, bounds) into one of CVX__HOT_STRIPES
 * stripes. A write transaction about to read a hot range first takes the
 * stripe's lock, and holds it until its commit is written (or it ends):
 * contenders then run one after the other, each starting from the one
 * before it (a transaction that has read nothing yet moves its snapshot to
 * the newest written commit when it gets the lock). Waiting keeps the
 * stripe hot; without contention it cools and OCC alone runs again.
 *
 * The locks only order attempts; OCC still decides every commit, so a
 * lock given up is never wrong, only slower. Hence no deadlock handling
 * beyond never waiting while holding another stripe (then it only tries:
 * measured, waiting for a second stripe serialised Zipf-distributed
 * transfers into fewer conflicts but 20% fewer commits), and never
 * waiting longer than WAIT_NS. Waiters queue per stripe and a release
 * hands the stripe to the first of them, waking only it. */
#include "store/store_int.h"

#include <errno.h>
#include <semaphore.h>
#include <time.h>

#define HOT_NS (200ull * 1000000ull)
#define WAIT_NS (100ull * 1000000ull)

static _Atomic uint64_t hot_ns = HOT_NS;

void cvx__store_hot_ns(uint64_t ns) { atomic_store(&hot_ns, ns ? ns : HOT_NS); }

/* A transaction waiting for a stripe. The releaser hands the stripe to the
 * first waiter and wakes only it. */
typedef struct cvx__hot_waiter {
    struct cvx__hot_waiter *next;
    sem_t wake;
    bool granted;
} waiter_t;

void cvx__hot_init(cvx__hot_t *h) { pthread_mutex_init(&h->mu, NULL); }

void cvx__hot_destroy(cvx__hot_t *h) { pthread_mutex_destroy(&h->mu); }

/* The stripe (1..CVX__HOT_STRIPES) of a range as a read requests it. */
static uint32_t stripe_of(uint64_t index_id, const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len,
                         bool hi_inf) {
    uint64_t x = 14695981039346656037ull ^ index_id;
    for (size_t i = 0; i < lo_len; i++) x = (x ^ lo[i]) * 1099511628211ull;
    x = (x ^ 0x100) * 1099511628211ull;
    for (size_t i = 0; i < hi_len; i++) x = (x ^ hi[i]) * 1099511628211ull;
    x ^= hi_inf;
    x ^= x >> 29;
    return (uint32_t)(x % CVX__HOT_STRIPES) + 1;
}

static void heat(cvx__hot_t *h, uint32_t stripe) {
    atomic_store_explicit(&h->until[stripe - 1], cvx_monotonic_ns() + atomic_load(&hot_ns), memory_order_relaxed);
}

void cvx__hot_lost(cvx_store_t *s, const cvx_txn_t *t, const cvx_commit_info_t *c) {
    for (size_t i = 0; i < t->reads.n; i++) {
        const cvx__range_t *r = &t->reads.ranges[i];
        if (!r->stripe) continue;
        cvx_readset_t one = {(cvx__range_t *)r, 1};
        if (cvx_readset_overlaps(&one, c)) heat(&s->hot, r->stripe);
    }
}

static bool holds(const cvx_txn_t *t, uint32_t stripe) {
    for (size_t i = 0; i < t->nlocks; i++)
        if (t->locks[i] == stripe) return true;
    return false;
}

uint32_t cvx__hot_before_read(cvx_txn_t *t, uint64_t index_id, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                              size_t hi_len, bool hi_inf) {
    if (t->mode != CVX_TXN_WRITE || index_id == CVX__TABLES_INDEX) return 0;
    uint32_t stripe = stripe_of(index_id, lo, lo_len, hi, hi_len, hi_inf);
    cvx__hot_t *h = &t->s->hot;
    size_t k = stripe - 1;
    if (t->nlocks == CVX_ARRAY_LEN(t->locks) || holds(t, stripe) ||
        atomic_load_explicit(&h->until[k], memory_order_relaxed) < cvx_monotonic_ns())
        return stripe;
    pthread_mutex_lock(&h->mu);
    bool got = !h->held[k];
    if (got) {
        h->held[k] = 1;
    } else if (t->nlocks == 0) {
        heat(h, stripe); /* still contended */
        waiter_t w = {.next = NULL, .granted = false};
        sem_init(&w.wake, 0, 0);
        waiter_t **p = &h->queue[k];
        while (*p) p = &(*p)->next;
        *p = &w;
        pthread_mutex_unlock(&h->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t end = (uint64_t)ts.tv_nsec + WAIT_NS;
        ts.tv_sec += (time_t)(end / 1000000000ull);
        ts.tv_nsec = (long)(end % 1000000000ull);
        while (sem_timedwait(&w.wake, &ts) != 0 && errno == EINTR) {
        }
        pthread_mutex_lock(&h->mu);
        got = w.granted; /* a grant may race the timeout: it wins */
        if (!got)
            for (p = &h->queue[k]; *p; p = &(*p)->next)
                if (*p == &w) {
                    *p = w.next;
                    break;
                }
        sem_destroy(&w.wake);
    }
    pthread_mutex_unlock(&h->mu);
    if (got) {
        t->locks[t->nlocks++] = stripe;
        cvx__txn_refresh(t);
    }
    return stripe;
}

void cvx__hot_release(cvx_txn_t *t) {
    if (!t->nlocks) return;
    cvx__hot_t *h = &t->s->hot;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < t->nlocks; i++) {
        size_t k = t->locks[i] - 1;
        waiter_t *w = h->queue[k];
        if (!w) {
            h->held[k] = 0;
            continue;
        }
        h->queue[k] = w->next; /* the stripe stays held: it is w's now */
        w->granted = true;
        sem_post(&w->wake);
    }
    pthread_mutex_unlock(&h->mu);
    t->nlocks = 0;
}
