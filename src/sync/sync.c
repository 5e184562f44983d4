/* The sync engine (see sync.h for the contract).
 *
 * One mutex guards all state; work that runs guest code (query runs,
 * mutations, actions) happens outside it on the host's workers.
 *
 * Validity argument. A subscription's result computed at snapshot S is
 * valid at ts T >= S iff no commit in (S, T] wrote a key inside the read
 * set of that run. Commits are seen in ts order through the store's commit
 * listener: each commit marks touched results stale. A run that finishes
 * checks the commits that happened since its snapshot (the recent-commit
 * log) before its result is considered fresh. So "fresh" means valid at
 * `latest_ts`, and a Transition at `latest_ts` built only from fresh
 * results is one consistent snapshot.
 *
 * Cost. Client messages are handled on the host's event loop under the one
 * mutex, so the work one message causes must not grow with what other
 * clients (or this one, earlier) did: every query set modification is O(1)
 * (a per-client hash from query id to its entry, a growing hash of shared
 * subscriptions), a message only starts the runs it created (the `todo`
 * list) and looks at its own client (the `dirty` list), and a finished run
 * wakes only the clients subscribed to it (the subscription's watchers).
 * Deciding and building a Transition costs what changed, not the query
 * set: each client counts its queries that are not fresh (a subscription
 * tells its watchers when its freshness flips) and lists the ones whose
 * result it has not been sent. */
#include "sync/sync.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

/* Argument bytes of one client's calls in flight past which it is busy. */
#define CVX__CLIENT_CALL_BYTES ((size_t)32 << 20)
#define NBUCKETS_MIN 4096
#define LOG_MAX 8192

typedef struct cq cq_t;

typedef struct sub {
    struct sub *next; /* bucket chain */
    struct sub *all_prev, *all_next; /* every subscription (s->all) */
    struct sub *todo_prev, *todo_next; /* s->todo: may need a run started */
    bool in_todo;
    cq_t *watchers;   /* the client queries on it */
    bool fresh;       /* sub_fresh() as last told to the watchers' nunfresh */
    uint64_t hash;
    char *path;
    char *args;
    size_t args_len;
    char *key_journal; /* the journal clients added it with (part of its identity), or NULL */
    char *journal;     /* the last run's journal (its pages' ends), or NULL */
    uint64_t refs;    /* client queries + a running task */
    bool running, stale, has_result;
    uint64_t gen;     /* code generation the result was computed with */
    uint64_t seq;     /* bumped when the result changes */
    bool ok;
    cvx_buf_t value;  /* success: value JSON; failure: error message */
    cvx_buf_t data;   /* failure: errorData JSON (empty when none) */
    cvx_buf_t logs;   /* JSON array or empty */
    cvx_readset_t *readset;
    uint64_t snapshot;
} sub_t;

/* One query of a client's query set. Allocated on its own so that the
 * subscription's watcher list can point at it while c->queries moves. */
struct cq {
    cq_t *wprev, *wnext;   /* sub->watchers */
    cq_t *chprev, *chnext; /* c->changed */
    bool in_changed;
    cvx_sync_client_t *c;
    sub_t *sub;
    uint64_t seen;  /* sub->seq last sent to this client (0 = never) */
    uint64_t epoch; /* c->epoch when added */
    uint32_t id;
    /* Replaces an id the client had (removed, then added back before the
     * next Transition): the client has this id. */
    bool replaces;
};

/* Open addressing with linear probing, from a client-chosen uint32 id to
 * an index into one of the client's arrays. The ids are mixed with a
 * random seed, so a client cannot pick ids that share one probe run.
 * Deletion shifts back (no tombstones), so lookups stay short however the
 * set churns. */
typedef struct {
    uint32_t id;
    uint32_t at; /* index + 1; 0: empty slot */
} idslot_t;

typedef struct {
    idslot_t *slots;
    size_t cap; /* 0 or a power of two, at least twice n */
    size_t n;
    uint64_t seed;
} idmap_t;

struct cvx_sync_client {
    atomic_int refs;
    cvx_sync_t *s;
    void *conn;
    cvx_sync_client_t *prev, *next;
    cvx_sync_client_t *dprev, *dnext; /* s->dirty */
    bool queued;                      /* on s->dirty: try_transition is due */
    char session[80];
    bool admin;
    uint32_t qs, ident;            /* applied versions */
    uint32_t sent_qs, sent_ident;  /* versions in the last Transition */
    uint64_t sent_ts;
    cq_t **queries;
    size_t nq, capq;
    idmap_t qmap;    /* query id -> index in queries */
    size_t nunfresh; /* queries whose subscription is not fresh */
    cq_t *changed, *changed_tail; /* queries with seen != sub->seq, oldest first */
    /* Transitions sent so far: a query added before the last one (epoch
     * < this) is in the client's query set as it knows it. */
    uint64_t epoch;
    /* Ids to send as QueryRemoved: known ids no longer in the set. Each is
     * there once and leaves when re-added, so it never outgrows the last
     * Transition's query set. */
    uint32_t *removed;
    size_t nremoved, capremoved;
    idmap_t rmap;  /* id -> index in removed */
    uint64_t need_ts; /* a mutation response promised a Transition >= this */
    bool must_send;   /* a MutationResponse went out: a Transition must follow */
    char **out;
    size_t *outlen;
    size_t nout, capout, outbytes;
    char close_reason[200];
    bool closed;
    /* Mutations and actions received and not yet run to their end, and the
     * bytes of their arguments: the host stops reading a busy client
     * (cvx_sync_client_busy), so one socket cannot queue unbounded work. */
    uint32_t calls;
    size_t call_bytes;
    bool host_paused; /* the host saw it busy: wake it when it is not */
    /* A client's mutations run one at a time, in the order sent, as
     * Convex runs them: the next starts once the one before committed.
     * (Actions run side by side.) */
    bool mutating;
    struct call_arg *mq_head, *mq_tail;
};

typedef struct {
    uint64_t ts;
    cvx_buf_t bytes;
    cvx_written_key_t *keys;
    size_t nkeys;
} logent_t;

/* A mutation's response waiting for its commit to be durable (the worker
 * that ran it went on). Holds a client reference. */
typedef struct parked {
    struct parked *next;
    cvx_sync_client_t *c;
    cvx_buf_t msg;         /* the response as it will go out */
    uint64_t wait_ts, ts;  /* ts: the commit (0 when it failed) */
    double request_id;
    char exec_id[40];      /* for the error that replaces it if never durable */
} parked_t;

struct cvx_sync {
    pthread_mutex_t mu;
    parked_t *parked;
    atomic_size_t nparked; /* read without mu by cvx_sync_durable */
    cvx_runtime_t *rt;
    cvx_sync_hooks_t hooks;
    cvx_sync_config_t cfg;
    size_t call_bytes; /* every client's call_bytes together */
    int listener;
    uint64_t seed;     /* random: hash layouts clients cannot predict */
    sub_t **buckets;   /* nbuckets (a power of two) chains, grown with the subscriptions */
    size_t nbuckets;
    sub_t *all; /* the same subscriptions as a list: commits visit only these */
    sub_t *todo, *todo_tail; /* subscriptions that may need a run started, oldest first */
    uint32_t running;        /* runs submitted and not finished */
    cvx_sync_client_t *clients;
    cvx_sync_client_t *dirty; /* clients due a try_transition */
    uint64_t latest_ts;
    uint64_t gen;
    logent_t log[LOG_MAX]; /* ring of recent commits */
    uint64_t nlog;         /* total ever appended */
    uint64_t horizon;      /* commits with ts > horizon are all in the ring */
    cvx_sync_stats_t stats; /* stats.outbox_bytes: the sum of every client's outbytes */
};

/* ---- helpers ------------------------------------------------------------------ */

static void b64_u64(cvx_buf_t *b, uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    cvx_buf_append_char(b, '"');
    cvx_base64_encode(b, le, 8);
    cvx_buf_append_char(b, '"');
}

/* A 64-bit finaliser (MurmurHash3's fmix64): every input bit moves every
 * output bit, so masking the low bits of the result spreads. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static size_t idmap_home(const idmap_t *m, uint32_t id) { return (size_t)mix64(id ^ m->seed) & (m->cap - 1); }

/* The index stored for id, or SIZE_MAX. */
static size_t idmap_find(const idmap_t *m, uint32_t id) {
    if (!m->cap) return SIZE_MAX;
    for (size_t i = idmap_home(m, id);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slots[i].at) return SIZE_MAX;
        if (m->slots[i].id == id) return m->slots[i].at - 1;
    }
}

/* Sets id -> at (at < UINT32_MAX), adding or replacing. Replacing never
 * allocates; adding may (-1: out of memory, the map unchanged). */
static int idmap_put(idmap_t *m, uint32_t id, size_t at) {
    if (m->cap) {
        size_t i = idmap_home(m, id);
        for (; m->slots[i].at; i = (i + 1) & (m->cap - 1))
            if (m->slots[i].id == id) {
                m->slots[i].at = (uint32_t)at + 1;
                return 0;
            }
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        idslot_t *slots = cvx_calloc(cap, sizeof *slots);
        if (!slots) return -1;
        idmap_t grown = {slots, cap, m->n, m->seed};
        for (size_t k = 0; k < m->cap; k++) {
            if (!m->slots[k].at) continue;
            size_t i = idmap_home(&grown, m->slots[k].id);
            while (slots[i].at) i = (i + 1) & (cap - 1);
            slots[i] = m->slots[k];
        }
        cvx_free(m->slots);
        *m = grown;
    }
    size_t i = idmap_home(m, id);
    while (m->slots[i].at) i = (i + 1) & (m->cap - 1);
    m->slots[i] = (idslot_t){id, (uint32_t)at + 1};
    m->n++;
    return 0;
}

static void idmap_del(idmap_t *m, uint32_t id) {
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = idmap_home(m, id);
    while (m->slots[i].at && m->slots[i].id != id) i = (i + 1) & mask;
    if (!m->slots[i].at) return;
    m->n--;
    /* Backward shift: an entry after the hole moves into it unless its
     * home lies (cyclically) after the hole, where a lookup starts past it. */
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].at) break;
        size_t home = idmap_home(m, m->slots[j].id);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].at = 0;
}

static void idmap_free(idmap_t *m) {
    cvx_free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static void client_release(cvx_sync_client_t *c) {
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    for (size_t i = 0; i < c->nout; i++) cvx_free(c->out[i]);
    cvx_free(c->out);
    cvx_free(c->outlen);
    cvx_free(c->queries);
    idmap_free(&c->qmap);
    cvx_free(c->removed);
    idmap_free(&c->rmap);
    cvx_free(c);
}

/* The client is due a try_transition (at the next pump). Under s->mu. */
static void mark_dirty(cvx_sync_t *s, cvx_sync_client_t *c) {
    if (c->queued || c->closed) return;
    c->queued = true;
    c->dprev = NULL;
    c->dnext = s->dirty;
    if (s->dirty) s->dirty->dprev = c;
    s->dirty = c;
}

static void unmark_dirty(cvx_sync_t *s, cvx_sync_client_t *c) {
    if (!c->queued) return;
    if (c->dprev) c->dprev->dnext = c->dnext;
    else s->dirty = c->dnext;
    if (c->dnext) c->dnext->dprev = c->dprev;
    c->dprev = c->dnext = NULL;
    c->queued = false;
}

static bool needs_run(const cvx_sync_t *s, const sub_t *u) {
    return !u->running && (!u->has_result || u->stale || u->gen != s->gen);
}

/* The subscription may need a run: the next pump looks. Under s->mu. */
static void todo_push(cvx_sync_t *s, sub_t *u) {
    if (u->in_todo) return;
    u->in_todo = true;
    u->todo_next = NULL;
    u->todo_prev = s->todo_tail;
    if (s->todo_tail) s->todo_tail->todo_next = u;
    else s->todo = u;
    s->todo_tail = u;
}

static void todo_unlink(cvx_sync_t *s, sub_t *u) {
    if (!u->in_todo) return;
    if (u->todo_prev) u->todo_prev->todo_next = u->todo_next;
    else s->todo = u->todo_next;
    if (u->todo_next) u->todo_next->todo_prev = u->todo_prev;
    else s->todo_tail = u->todo_prev;
    u->todo_prev = u->todo_next = NULL;
    u->in_todo = false;
}

static void sub_free(sub_t *u) {
    cvx_free(u->path);
    cvx_free(u->args);
    cvx_free(u->key_journal);
    cvx_free(u->journal);
    cvx_buf_free(&u->value);
    cvx_buf_free(&u->data);
    cvx_buf_free(&u->logs);
    cvx_readset_free(u->readset);
    cvx_free(u);
}

/* Drops one reference; unlinks and frees at zero. Under s->mu. */
static void sub_unref(cvx_sync_t *s, sub_t *u) {
    if (--u->refs > 0) return;
    for (sub_t **p = &s->buckets[u->hash & (s->nbuckets - 1)]; *p; p = &(*p)->next) {
        if (*p == u) {
            *p = u->next;
            break;
        }
    }
    if (u->all_prev) u->all_prev->all_next = u->all_next;
    else s->all = u->all_next;
    if (u->all_next) u->all_next->all_prev = u->all_prev;
    todo_unlink(s, u);
    s->stats.subscriptions--;
    sub_free(u);
}

/* Doubles the buckets once there are more subscriptions than buckets, so
 * that chains stay short however many clients subscribe. Out of memory
 * leaves the table as it is (longer chains, still correct). */
static void sub_table_grow(cvx_sync_t *s) {
    if (s->stats.subscriptions < s->nbuckets) return;
    size_t n = s->nbuckets * 2;
    sub_t **b = cvx_calloc(n, sizeof *b);
    if (!b) return;
    for (sub_t *u = s->all; u; u = u->all_next) {
        u->next = b[u->hash & (n - 1)];
        b[u->hash & (n - 1)] = u;
    }
    cvx_free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Queries are shared by (path, args, journal): a client that comes back
 * with the journal it was sent gets the same pages again. The hash is
 * seeded: clients choose the args, and must not choose one chain. */
static sub_t *sub_get(cvx_sync_t *s, const char *path, size_t path_len, const char *args, size_t args_len,
                      const char *journal) {
    uint64_t h = cvx_fnv1a(cvx_fnv1a(s->seed, path, path_len) ^ 0xff, args, args_len);
    if (journal) h = cvx_fnv1a(h ^ 0xfe, journal, strlen(journal));
    h = mix64(h ^ s->seed);
    for (sub_t *u = s->buckets[h & (s->nbuckets - 1)]; u; u = u->next)
        if (u->hash == h && strlen(u->path) == path_len && !memcmp(u->path, path, path_len) &&
            u->args_len == args_len && !memcmp(u->args, args, args_len) &&
            (u->key_journal ? journal && !strcmp(u->key_journal, journal) : !journal)) {
            u->refs++;
            return u;
        }
    sub_t *u = cvx_calloc(1, sizeof *u);
    if (!u) return NULL;
    u->path = cvx_strndup(path, path_len);
    u->args = cvx_strndup(args, args_len);
    if (journal) {
        u->key_journal = cvx_strdup(journal);
        u->journal = cvx_strdup(journal);
    }
    if (!u->path || !u->args || (journal && (!u->key_journal || !u->journal))) {
        sub_free(u);
        return NULL;
    }
    u->args_len = args_len;
    u->hash = h;
    u->refs = 1;
    u->all_next = s->all;
    if (s->all) s->all->all_prev = u;
    s->all = u;
    u->next = s->buckets[h & (s->nbuckets - 1)];
    s->buckets[h & (s->nbuckets - 1)] = u;
    s->stats.subscriptions++;
    sub_table_grow(s); /* after linking u: a rehash rebuilds every chain from s->all */
    todo_push(s, u);
    return u;
}

/* Frees the client's unsent messages, keeping the server-wide total
 * exact. Under s->mu. */
static void outbox_clear(cvx_sync_t *s, cvx_sync_client_t *c) {
    for (size_t i = 0; i < c->nout; i++) cvx_free(c->out[i]);
    s->stats.outbox_bytes -= c->outbytes;
    c->nout = 0;
    c->outbytes = 0;
}

/* Queues one outgoing message; closes the client when it falls too far
 * behind. Takes ownership of msg. Under s->mu.
 *
 * Two bounds. Per client (max_outbox_msgs/bytes): one slow reader cannot
 * hold more than that. Server-wide (max_total_outbox_bytes): a thousand
 * clients each under their own bound could still exhaust memory together,
 * so once the total is reached, a client that already has unsent messages
 * (it is behind) is closed rather than given more. A client whose outbox
 * is empty still gets its message: one that keeps up keeps working, and
 * the total overshoots by at most one message per client. */
static void enqueue(cvx_sync_client_t *c, cvx_buf_t *msg) {
    cvx_sync_t *s = c->s;
    if (c->closed || c->close_reason[0]) {
        cvx_buf_free(msg);
        return;
    }
    bool over_total = c->nout > 0 && s->stats.outbox_bytes + msg->len > s->cfg.max_total_outbox_bytes;
    if (msg->oom || c->nout >= s->cfg.max_outbox_msgs || c->outbytes + msg->len > s->cfg.max_outbox_bytes ||
        over_total) {
        snprintf(c->close_reason, sizeof c->close_reason,
                 "client is too slow: %zu messages (%zu bytes) waiting to be sent%s", c->nout, c->outbytes,
                 over_total ? " while the server's outbox is full" : "");
        s->stats.dropped_clients++;
        cvx_buf_free(msg);
        /* Nothing more goes to it but the close: its backlog is memory
         * the others can use. */
        outbox_clear(s, c);
        s->hooks.wake(s->hooks.ctx, c, c->conn);
        return;
    }
    if (c->nout == c->capout) {
        size_t cap = c->capout ? c->capout * 2 : 8;
        char **o = cvx_realloc(c->out, cap * sizeof *o);
        size_t *l = o ? cvx_realloc(c->outlen, cap * sizeof *l) : NULL;
        if (o) c->out = o;
        if (!l) {
            snprintf(c->close_reason, sizeof c->close_reason, "server out of memory");
            cvx_buf_free(msg);
            s->hooks.wake(s->hooks.ctx, c, c->conn);
            return;
        }
        c->outlen = l;
        c->capout = cap;
    }
    size_t len;
    c->out[c->nout] = cvx_buf_detach(msg, &len);
    c->outlen[c->nout++] = len;
    c->outbytes += len;
    s->stats.outbox_bytes += len;
    s->hooks.wake(s->hooks.ctx, c, c->conn);
}

static void fatal(cvx_sync_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Queues a FatalError and marks the client for closing. Only the first
 * error counts: once the client is closing, later calls do nothing (a
 * caller may report a field as missing after str() refused it). */
static void fatal(cvx_sync_client_t *c, const char *fmt, ...) {
    if (c->closed || c->close_reason[0]) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cvx_buf_t b = {0};
    cvx_buf_append_str(&b, "{\"type\":\"FatalError\",\"error\":");
    cvx_buf_append_json_string(&b, msg, strlen(msg));
    cvx_buf_append_char(&b, '}');
    enqueue(c, &b);
    if (!c->close_reason[0]) snprintf(c->close_reason, sizeof c->close_reason, "protocol error: %.150s", msg);
    c->s->hooks.wake(c->s->hooks.ctx, c, c->conn);
}

/* ---- transitions -------------------------------------------------------------- */

static bool sub_fresh(const cvx_sync_t *s, const sub_t *u) {
    return u->has_result && !u->running && !u->stale && u->gen == s->gen;
}

static void append_modification(cvx_buf_t *b, uint32_t qid, const sub_t *u) {
    if (u->ok) {
        cvx_buf_printf(b, "{\"type\":\"QueryUpdated\",\"queryId\":%u,\"value\":", qid);
        cvx_buf_append(b, u->value.data, u->value.len);
    } else {
        cvx_buf_printf(b, "{\"type\":\"QueryFailed\",\"queryId\":%u,\"errorMessage\":", qid);
        cvx_buf_append_json_string(b, u->value.data ? u->value.data : "", u->value.len);
        if (u->data.len) {
            cvx_buf_append_str(b, ",\"errorData\":");
            cvx_buf_append(b, u->data.data, u->data.len);
        }
    }
    cvx_buf_append_str(b, ",\"logLines\":");
    cvx_buf_append_str(b, u->logs.len ? u->logs.data : "[]");
    cvx_buf_append_str(b, ",\"journal\":");
    if (u->journal) cvx_buf_append_json_string(b, u->journal, strlen(u->journal));
    else cvx_buf_append_str(b, "null");
    cvx_buf_append_char(b, '}');
}

/* Does the client have this query, as far as it knows from the
 * Transitions it was sent? Then removing it must be told. */
static bool cq_known(const cq_t *q) { return q->replaces || q->epoch < q->c->epoch; }

/* q's result is to be sent (at the next Transition). */
static void changed_push(cvx_sync_client_t *c, cq_t *q) {
    if (q->in_changed) return;
    q->in_changed = true;
    q->chnext = NULL;
    q->chprev = c->changed_tail;
    if (c->changed_tail) c->changed_tail->chnext = q;
    else c->changed = q;
    c->changed_tail = q;
}

static void changed_unlink(cvx_sync_client_t *c, cq_t *q) {
    if (!q->in_changed) return;
    if (q->chprev) q->chprev->chnext = q->chnext;
    else c->changed = q->chnext;
    if (q->chnext) q->chnext->chprev = q->chprev;
    else c->changed_tail = q->chprev;
    q->chprev = q->chnext = NULL;
    q->in_changed = false;
}

/* Call after anything sub_fresh() reads changed: keeps every watcher's
 * count of queries not fresh exact, and wakes the watchers when the
 * result becomes fresh (they may be waiting for it). O(watchers), only
 * when freshness flips. Under s->mu. */
static void sub_update_fresh(cvx_sync_t *s, sub_t *u) {
    bool fresh = sub_fresh(s, u);
    if (fresh == u->fresh) return;
    u->fresh = fresh;
    for (cq_t *q = u->watchers; q; q = q->wnext) {
        if (fresh) {
            q->c->nunfresh--;
            mark_dirty(s, q->c);
        } else {
            q->c->nunfresh++;
        }
    }
}

/* Sends a Transition if the client needs one and all its queries are fresh
 * at latest_ts. A client that must wait is woken again by what it waits
 * for: a run of one of its queries finishing (its watchers), or a commit
 * (need_ts). Under s->mu. */
static void try_transition(cvx_sync_t *s, cvx_sync_client_t *c) {
    unmark_dirty(s, c);
    if (c->closed || c->close_reason[0]) return;
    if (c->nunfresh) return; /* wait: some result is being (re)computed */
    if (s->latest_ts < c->need_ts) return;
    bool changed = c->nremoved > 0 || c->changed;
    if (!changed && !c->must_send && c->qs == c->sent_qs && c->ident == c->sent_ident && c->need_ts <= c->sent_ts)
        return;
    uint64_t ts = s->latest_ts > c->sent_ts ? s->latest_ts : c->sent_ts;
    cvx_buf_t b = {0};
    cvx_buf_printf(&b, "{\"type\":\"Transition\",\"startVersion\":{\"querySet\":%u,\"identity\":%u,\"ts\":", c->sent_qs,
                   c->sent_ident);
    b64_u64(&b, c->sent_ts);
    cvx_buf_printf(&b, "},\"endVersion\":{\"querySet\":%u,\"identity\":%u,\"ts\":", c->qs, c->ident);
    b64_u64(&b, ts);
    cvx_buf_append_str(&b, "},\"modifications\":[");
    bool first = true;
    for (size_t i = 0; i < c->nremoved; i++) {
        cvx_buf_printf(&b, "%s{\"type\":\"QueryRemoved\",\"queryId\":%u}", first ? "" : ",", c->removed[i]);
        first = false;
    }
    while (c->changed) {
        cq_t *q = c->changed;
        changed_unlink(c, q);
        if (q->seen == q->sub->seq) continue;
        if (!first) cvx_buf_append_char(&b, ',');
        append_modification(&b, q->id, q->sub);
        q->seen = q->sub->seq;
        first = false;
    }
    cvx_buf_append_str(&b, "]}");
    c->nremoved = 0;
    idmap_free(&c->rmap);
    c->epoch++; /* every query now in the set is known to the client */
    c->sent_qs = c->qs;
    c->sent_ident = c->ident;
    c->sent_ts = ts;
    c->must_send = false;
    s->stats.transitions++;
    enqueue(c, &b);
}

static void run_sub_task(void *arg);

typedef struct {
    cvx_sync_t *s;
    sub_t *u;
} run_arg_t;

/* Starts the runs that are due, oldest first and at most
 * max_running_queries at once (so that one client's thousands of new
 * subscriptions queue here, not ahead of every other call in the host's
 * workers), then sends what can be sent to the clients due a look.
 * Visits only the todo and dirty lists. Under s->mu. */
static void pump(cvx_sync_t *s) {
    while (s->todo && s->running < s->cfg.max_running_queries) {
        sub_t *u = s->todo;
        if (!needs_run(s, u)) {
            /* Fresh, or running: a run re-queues it when it ends. */
            todo_unlink(s, u);
            continue;
        }
        run_arg_t *ra = cvx_malloc(sizeof *ra);
        if (!ra) break; /* it stays queued: retried on the next pump */
        todo_unlink(s, u);
        ra->s = s;
        ra->u = u;
        u->running = true;
        u->stale = false;
        sub_update_fresh(s, u);
        u->refs++; /* held by the task */
        s->running++;
        s->hooks.submit(s->hooks.ctx, CVX_KIND_QUERY, run_sub_task, ra);
    }
    while (s->dirty) try_transition(s, s->dirty);
}

static void mark_all_dirty(cvx_sync_t *s) {
    for (cvx_sync_client_t *c = s->clients; c; c = c->next) mark_dirty(s, c);
}

/* ---- subscription runs ---------------------------------------------------------- */

static bool touched_since(cvx_sync_t *s, const cvx_readset_t *r, uint64_t since) {
    if (since < s->horizon) return true; /* the log no longer covers it */
    uint64_t first = s->nlog > LOG_MAX ? s->nlog - LOG_MAX : 0;
    /* Newest first, down to `since`. */
    for (uint64_t i = s->nlog; i > first; i--) {
        const logent_t *e = &s->log[(i - 1) % LOG_MAX];
        if (e->ts <= since) break;
        cvx_commit_info_t info = {e->ts, e->keys, e->nkeys};
        if (cvx_readset_overlaps(r, &info)) return true;
    }
    return false;
}

/* One run of a subscription's query, on a worker. */
static void run_sub_task(void *arg) {
    run_arg_t *ra = arg;
    cvx_sync_t *s = ra->s;
    sub_t *u = ra->u;
    cvx_free(ra);
    pthread_mutex_lock(&s->mu);
    uint64_t gen = s->gen;
    char *path = cvx_strdup(u->path);
    char *args = cvx_strndup(u->args, u->args_len);
    char *journal = u->journal ? cvx_strdup(u->journal) : NULL;
    size_t args_len = u->args_len;
    pthread_mutex_unlock(&s->mu);

    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    if (path && args) {
        cvx_request_t req = {.path = path, .args_json = args, .args_len = args_len, .expect_kind = CVX_KIND_QUERY,
                             .want_readset = true, .journal = journal};
        cvx_exec_call(s->rt, &req, &resp);
    } else {
        resp.r.status = CVX_E_NOMEM;
        cvx_buf_append_str(&resp.r.message, "out of memory");
    }

    pthread_mutex_lock(&s->mu);
    u->running = false;
    s->running--;
    s->stats.query_runs++;
    if (u->refs > 1) {
        bool ok = resp.r.status == CVX_OK;
        const cvx_buf_t *v = ok ? &resp.r.value : &resp.r.message;
        /* Its pages keep the ends they have now (a failed run keeps the old). */
        const char *nj = resp.r.journal.len ? resp.r.journal.data : NULL;
        bool same_journal = !ok || (nj ? u->journal && !strcmp(u->journal, nj) : !u->journal);
        if (!same_journal) {
            cvx_free(u->journal);
            u->journal = nj ? cvx_strdup(nj) : NULL;
        }
        bool same = u->has_result && u->ok == ok && u->value.len == v->len &&
                    (v->len == 0 || !memcmp(u->value.data, v->data, v->len)) && u->data.len == resp.r.data.len &&
                    (u->data.len == 0 || !memcmp(u->data.data, resp.r.data.data, u->data.len)) && same_journal;
        if (!same) {
            cvx_buf_reset(&u->value);
            cvx_buf_append(&u->value, v->data ? v->data : "", v->len);
            cvx_buf_reset(&u->data);
            if (!ok && resp.r.has_data) cvx_buf_append(&u->data, resp.r.data.data, resp.r.data.len);
            u->ok = ok;
            u->seq++;
            for (cq_t *q = u->watchers; q; q = q->wnext) changed_push(q->c, q);
        }
        cvx_buf_reset(&u->logs);
        if (resp.r.logs.len) cvx_buf_append(&u->logs, resp.r.logs.data, resp.r.logs.len);
        u->has_result = true;
        u->gen = gen;
        cvx_readset_free(u->readset);
        u->readset = resp.readset;
        resp.readset = NULL;
        u->snapshot = resp.ts;
        /* A failed run without a read set (unknown function) depends on
         * nothing but the code: it stays until the next deploy. */
        if (u->readset && touched_since(s, u->readset, resp.ts)) u->stale = true;
        if (u->value.oom || u->logs.oom || u->data.oom) u->stale = true;
        /* Stale again, or computed with code replaced meanwhile. */
        if (needs_run(s, u)) todo_push(s, u);
    }
    /* Only its own clients can be waiting for this result: they are woken
     * if it is fresh now. */
    sub_update_fresh(s, u);
    sub_unref(s, u);
    pump(s);
    pthread_mutex_unlock(&s->mu);
    cvx_response_free(&resp);
    cvx_free(path);
    cvx_free(args);
    cvx_free(journal);
}

/* ---- commits ------------------------------------------------------------------- */

/* Remembers a commit for the runs that started before it. Under s->mu. */
static void remember(cvx_sync_t *s, const cvx_commit_info_t *ci) {
    logent_t *e = &s->log[s->nlog % LOG_MAX];
    if (s->nlog >= LOG_MAX) s->horizon = e->ts;
    cvx_buf_free(&e->bytes);
    cvx_free(e->keys);
    memset(e, 0, sizeof *e);
    e->ts = ci->ts;
    e->keys = cvx_calloc(ci->nkeys ? ci->nkeys : 1, sizeof *e->keys);
    size_t total = 0;
    for (size_t i = 0; i < ci->nkeys; i++) total += ci->keys[i].key_len;
    if (!e->keys || cvx_buf_reserve(&e->bytes, total)) {
        /* Cannot remember it: treat every run as unverifiable. */
        s->horizon = ci->ts;
    } else {
        for (size_t i = 0; i < ci->nkeys; i++) {
            e->keys[i].index_id = ci->keys[i].index_id;
            e->keys[i].key_len = ci->keys[i].key_len;
            e->keys[i].key = (const uint8_t *)e->bytes.data + e->bytes.len;
            cvx_buf_append(&e->bytes, ci->keys[i].key, ci->keys[i].key_len);
        }
        e->nkeys = ci->nkeys;
    }
    s->nlog++;
}

static void on_commit(void *ctx, const cvx_commit_info_t *ci) {
    cvx_sync_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->stats.commits_seen++;
    if (ci->ts > s->latest_ts) s->latest_ts = ci->ts;
    /* No subscription means no run in flight (a run holds one), so nothing
     * to remember the commit for: every later run starts after it. */
    if (s->all) remember(s, ci);
    else s->horizon = ci->ts;
    for (sub_t *u = s->all; u; u = u->all_next)
        if (u->has_result && !u->running && !u->stale && u->readset && cvx_readset_overlaps(u->readset, ci)) {
            u->stale = true;
            sub_update_fresh(s, u);
            todo_push(s, u);
        }
    /* The clients of those subscriptions hear when the re-runs end; here,
     * only clients waiting for latest_ts to reach a mutation's commit. */
    for (cvx_sync_client_t *c = s->clients; c; c = c->next)
        if (c->need_ts > c->sent_ts) mark_dirty(s, c);
    pump(s);
    pthread_mutex_unlock(&s->mu);
}

/* ---- mutations and actions ------------------------------------------------------- */

/* Under s->mu. A client with no call in flight is never busy: whatever
 * else is queued, its next message may be read, and a busy client has a
 * call whose end wakes it. */
static bool client_busy(const cvx_sync_client_t *c) {
    const cvx_sync_t *s = c->s;
    if (!c->calls) return false;
    return c->calls >= s->cfg.max_calls_per_client || c->call_bytes >= CVX__CLIENT_CALL_BYTES ||
           s->call_bytes >= s->cfg.max_total_call_bytes;
}

bool cvx_sync_client_busy(cvx_sync_client_t *c) {
    pthread_mutex_lock(&c->s->mu);
    bool busy = client_busy(c);
    c->host_paused = busy;
    pthread_mutex_unlock(&c->s->mu);
    return busy;
}

typedef struct call_arg {
    struct call_arg *next; /* the client's queue of mutations waiting their turn */
    cvx_sync_client_t *c;
    cvx_kind_t kind;
    double request_id;
    char *path;
    char *args;
    size_t args_len;
    bool admin;
    char session[80];
} call_arg_t;

/* Sends a call's response; for a committed mutation (commit_ts), the
 * Transition that must follow it. Takes msg. Under s->mu. */
static void deliver(cvx_sync_t *s, cvx_sync_client_t *c, cvx_buf_t *msg, uint64_t commit_ts) {
    enqueue(c, msg);
    if (!commit_ts) return;
    /* The client may show the mutation's effect only after a Transition
     * at or past its commit. */
    if (commit_ts > c->need_ts) c->need_ts = commit_ts;
    /* The client resolves the mutation on the first Transition after the
     * response whose ts reaches the commit: send one even when an earlier
     * Transition already covered the commit's effects. */
    c->must_send = true;
    try_transition(s, c);
}

/* A MutationResponse or ActionResponse for a call's outcome. */
static void call_message(cvx_buf_t *b, cvx_kind_t kind, double request_id, const cvx_response_t *resp) {
    bool ok = resp->r.status == CVX_OK;
    cvx_buf_printf(b, "{\"type\":\"%s\",\"requestId\":%.0f,\"success\":%s,\"result\":",
                   kind == CVX_KIND_MUTATION ? "MutationResponse" : "ActionResponse", request_id, ok ? "true" : "false");
    if (ok) cvx_buf_append(b, resp->r.value.data ? resp->r.value.data : "null", resp->r.value.data ? resp->r.value.len : 4);
    else cvx_buf_append_json_string(b, resp->r.message.data ? resp->r.message.data : "", resp->r.message.len);
    if (kind == CVX_KIND_MUTATION) {
        cvx_buf_append_str(b, ",\"ts\":");
        if (ok) b64_u64(b, resp->ts);
        else cvx_buf_append_str(b, "null");
    }
    if (!ok && resp->r.has_data) {
        cvx_buf_append_str(b, ",\"errorData\":");
        cvx_buf_append(b, resp->r.data.data, resp->r.data.len);
    }
    cvx_buf_append_str(b, ",\"logLines\":");
    cvx_buf_append_str(b, resp->r.logs.len ? resp->r.logs.data : "[]");
    cvx_buf_append_char(b, '}');
}

/* The MutationResponse of a mutation whose commit will never be durable. */
static void not_durable_message(cvx_buf_t *b, double request_id, const char *exec_id, const cvx_err_t *err) {
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    memcpy(resp.request_id, exec_id, sizeof resp.request_id);
    cvx_response_set_not_durable(&resp, err);
    cvx_buf_reset(b);
    call_message(b, CVX_KIND_MUTATION, request_id, &resp);
    cvx_response_free(&resp);
}

/* Delivers a parked response if its commit is durable, or the I/O error
 * instead if it never will be; then frees it (true). Under s->mu. */
static bool settle(cvx_sync_t *s, parked_t *p) {
    bool ready = false;
    cvx_err_t err;
    if (cvx_store_check_durable(cvx_runtime_store(s->rt), p->wait_ts, &ready, &err) != CVX_OK) {
        not_durable_message(&p->msg, p->request_id, p->exec_id, &err);
        p->ts = 0;
    } else if (!ready) {
        return false;
    }
    deliver(s, p->c, &p->msg, p->ts);
    cvx_buf_free(&p->msg);
    client_release(p->c);
    atomic_fetch_sub(&s->nparked, 1);
    cvx_free(p);
    return true;
}

static void run_call(void *arg) {
    call_arg_t *ca = arg;
    cvx_sync_client_t *c = ca->c;
    cvx_sync_t *s = c->s;
    /* A client re-sends unacknowledged mutations after a reconnect, with
     * the same session and request id: they must apply once. */
    char key[160];
    snprintf(key, sizeof key, "ws:%s:%.0f", ca->session, ca->request_id);
    cvx_request_t req = {.path = ca->path, .args_json = ca->args, .args_len = ca->args_len, .expect_kind = ca->kind,
                         .allow_internal = ca->admin,
                         .idempotency_key = ca->kind == CVX_KIND_MUTATION && ca->session[0] ? key : NULL,
                         /* The response waits in the engine for the fsync, not the worker. */
                         .defer_durable = ca->kind == CVX_KIND_MUTATION};
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    cvx_exec_call(s->rt, &req, &resp);
    cvx_buf_t b = {0};
    bool ok = resp.r.status == CVX_OK;
    call_message(&b, ca->kind, ca->request_id, &resp);
    pthread_mutex_lock(&s->mu);
    c->calls--;
    c->call_bytes -= ca->args_len;
    s->call_bytes -= ca->args_len;
    if (ca->kind == CVX_KIND_MUTATION) {
        /* Committed (or failed): the client's next mutation may start. */
        call_arg_t *next = c->mq_head;
        if (next) {
            c->mq_head = next->next;
            if (!c->mq_head) c->mq_tail = NULL;
            next->next = NULL;
            s->hooks.submit(s->hooks.ctx, CVX_KIND_MUTATION, run_call, next);
        } else {
            c->mutating = false;
        }
    }
    /* A paused client reads again once not busy; with no call left it
     * never is, so its last call's end always wakes it. */
    if (c->host_paused && !client_busy(c) && !c->closed) {
        c->host_paused = false;
        s->hooks.wake(s->hooks.ctx, c, c->conn);
    }
    parked_t *p = resp.wait_ts ? cvx_calloc(1, sizeof *p) : NULL;
    if (p) {
        /* Counted before the look, so that the store's hook, which looks
         * after publishing, cannot miss it (see cvx_sync_durable). */
        atomic_fetch_add(&s->nparked, 1);
        *p = (parked_t){.c = c, .msg = b, .wait_ts = resp.wait_ts, .ts = ok ? resp.ts : 0, .request_id = ca->request_id};
        memcpy(p->exec_id, resp.request_id, sizeof p->exec_id);
        memset(&b, 0, sizeof b);
        if (!settle(s, p)) {
            p->next = s->parked;
            s->parked = p;
        }
        c = NULL; /* the parked response holds the reference (settle drops it) */
    } else {
        if (resp.wait_ts) {
            /* No memory to park it: wait here. */
            cvx_err_t err;
            pthread_mutex_unlock(&s->mu);
            int wrc = cvx_store_wait_durable(cvx_runtime_store(s->rt), resp.wait_ts, &err);
            pthread_mutex_lock(&s->mu);
            if (wrc) {
                not_durable_message(&b, ca->request_id, resp.request_id, &err);
                ok = false;
            }
        }
        deliver(s, c, &b, ok && ca->kind == CVX_KIND_MUTATION ? resp.ts : 0);
    }
    pthread_mutex_unlock(&s->mu);
    cvx_buf_free(&b);
    cvx_response_free(&resp);
    cvx_free(ca->path);
    cvx_free(ca->args);
    cvx_free(ca);
    if (c) client_release(c);
}

void cvx_sync_durable(cvx_sync_t *s) {
    if (atomic_load(&s->nparked) == 0) return;
    pthread_mutex_lock(&s->mu);
    for (parked_t **pp = &s->parked; *pp;) {
        parked_t *p = *pp, *next = p->next;
        if (settle(s, p)) *pp = next; /* p is freed */
        else pp = &p->next;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- client messages ------------------------------------------------------------- */

/* A string field of a client message, or NULL when absent or not a string.
 * A string with a NUL inside is a protocol error (and NULL): these fields
 * are used as C strings from here on, where "users:count\u0000x" would be
 * cut to "users:count" and run it, a journal or session cut short would
 * name someone else's. */
static const char *str(cvx_sync_client_t *c, const cvx_value_t *o, const char *k) {
    const cvx_value_t *v = cvx_obj_get_cstr(o, k);
    if (!v || v->type != CVX_T_STRING) return NULL;
    if (memchr(v->u.str.ptr, '\0', v->u.str.len)) {
        fatal(c, "\"%s\" contains a NUL character", k);
        return NULL;
    }
    return v->u.str.ptr;
}

/* Has the client been told to go (a protocol error so far in this message)? */
static bool closing(const cvx_sync_client_t *c) { return c->closed || c->close_reason[0]; }

static bool num(const cvx_value_t *o, const char *k, double *out) {
    const cvx_value_t *v = cvx_obj_get_cstr(o, k);
    if (!v || v->type != CVX_T_FLOAT64 || v->u.f < 0 || v->u.f > 9007199254740991.0 || v->u.f != (double)(int64_t)v->u.f)
        return false;
    *out = v->u.f;
    return true;
}

/* args: [obj] -> canonical JSON of obj ("{}" when absent). */
static int args_json(const cvx_value_t *msg, cvx_buf_t *out) {
    const cvx_value_t *args = cvx_obj_get_cstr(msg, "args");
    if (args && args->type == CVX_T_ARRAY) {
        if (args->u.arr.len > 1) return -1;
        args = args->u.arr.len ? args->u.arr.items[0] : NULL;
    }
    if (args && args->type != CVX_T_OBJECT) return -1;
    if (args) cvx_json_write(out, args);
    else cvx_buf_append_str(out, "{}");
    return out->oom ? -1 : 0;
}

/* Drops query i of the client; the last one takes its place. O(1). */
static void remove_query(cvx_sync_t *s, cvx_sync_client_t *c, size_t i) {
    cq_t *q = c->queries[i];
    idmap_del(&c->qmap, q->id);
    changed_unlink(c, q);
    if (!q->sub->fresh) c->nunfresh--;
    if (q->wprev) q->wprev->wnext = q->wnext;
    else q->sub->watchers = q->wnext;
    if (q->wnext) q->wnext->wprev = q->wprev;
    sub_unref(s, q->sub);
    cvx_free(q);
    size_t last = --c->nq;
    if (i != last) {
        c->queries[i] = c->queries[last];
        idmap_put(&c->qmap, c->queries[i]->id, i); /* replaces: cannot fail */
    }
}

/* Takes id off the ids to send as QueryRemoved, if there. O(1). */
static void unremove(cvx_sync_client_t *c, uint32_t id) {
    size_t r = idmap_find(&c->rmap, id);
    if (r == SIZE_MAX) return;
    idmap_del(&c->rmap, id);
    size_t last = --c->nremoved;
    if (r != last) {
        c->removed[r] = c->removed[last];
        idmap_put(&c->rmap, c->removed[r], r); /* replaces: cannot fail */
    }
}

static void add_query(cvx_sync_t *s, cvx_sync_client_t *c, const cvx_value_t *mod, uint32_t id) {
    if (idmap_find(&c->qmap, id) != SIZE_MAX) {
        fatal(c, "query %u is already in the query set", id);
        return;
    }
    /* Each query costs memory and runs; the Convex client subscribes to
     * one per distinct (function, args) on screen, far below this. */
    if (c->nq >= s->cfg.max_queries_per_client) {
        fatal(c, "query %u would exceed the limit of %u queries per client (max_queries_per_client)", id,
              s->cfg.max_queries_per_client);
        return;
    }
    const char *path = str(c, mod, "udfPath");
    const char *journal = str(c, mod, "journal");
    if (closing(c)) return;
    cvx_buf_t args = {0};
    if (!path || args_json(mod, &args)) {
        cvx_buf_free(&args);
        fatal(c, "Add of query %u needs a udfPath and args: [object]", id);
        return;
    }
    if (c->nq == c->capq) {
        size_t cap = c->capq ? c->capq * 2 : 8;
        cq_t **qs = cvx_realloc(c->queries, cap * sizeof *qs);
        if (!qs) {
            cvx_buf_free(&args);
            fatal(c, "server out of memory");
            return;
        }
        c->queries = qs;
        c->capq = cap;
    }
    cq_t *q = cvx_calloc(1, sizeof *q);
    if (!q || idmap_put(&c->qmap, id, c->nq)) {
        cvx_free(q);
        cvx_buf_free(&args);
        fatal(c, "server out of memory");
        return;
    }
    sub_t *u = sub_get(s, path, strlen(path), args.data, args.len, journal && *journal ? journal : NULL);
    cvx_buf_free(&args);
    if (!u) {
        idmap_del(&c->qmap, id);
        cvx_free(q);
        fatal(c, "server out of memory");
        return;
    }
    /* A result someone else already has is sent as is; seen = 0 makes it
     * count as changed for this client. An id the client removed since
     * the last Transition needs no QueryRemoved now: the new query's
     * update replaces what the client has for it. */
    q->c = c;
    q->sub = u;
    q->id = id;
    q->epoch = c->epoch;
    q->replaces = idmap_find(&c->rmap, id) != SIZE_MAX;
    if (q->replaces) unremove(c, id);
    q->wnext = u->watchers;
    if (u->watchers) u->watchers->wprev = q;
    u->watchers = q;
    if (!u->fresh) c->nunfresh++;
    if (q->seen != u->seq) changed_push(c, q); /* else: its first result will be */
    c->queries[c->nq++] = q;
}

static void modify_query_set(cvx_sync_t *s, cvx_sync_client_t *c, const cvx_value_t *m) {
    double base, next;
    const cvx_value_t *mods = cvx_obj_get_cstr(m, "modifications");
    if (!num(m, "baseVersion", &base) || !num(m, "newVersion", &next) || !mods || mods->type != CVX_T_ARRAY) {
        fatal(c, "ModifyQuerySet needs baseVersion, newVersion and modifications");
        return;
    }
    /* Versions are u32 here: a larger double must not reach the casts. */
    if (base != (double)c->qs) {
        fatal(c, "ModifyQuerySet baseVersion %.0f does not match the query set version %u", base, c->qs);
        return;
    }
    if (next > (double)(UINT32_MAX - 1)) {
        fatal(c, "ModifyQuerySet newVersion %.0f is out of range", next);
        return;
    }
    if (next <= base) {
        fatal(c, "ModifyQuerySet newVersion %.0f must be greater than baseVersion %.0f", next, base);
        return;
    }
    /* A message that would pass the query limit even if every Remove in it
     * applied is refused whole, before any of its Adds starts a run. */
    size_t adds = 0, removes = 0;
    for (size_t i = 0; i < mods->u.arr.len; i++) {
        const cvx_value_t *mod = mods->u.arr.items[i];
        const cvx_value_t *t = mod->type == CVX_T_OBJECT ? cvx_obj_get_cstr(mod, "type") : NULL;
        if (t && t->type == CVX_T_STRING && !strcmp(t->u.str.ptr, "Add")) adds++;
        else removes++;
    }
    if (c->nq + adds > (size_t)s->cfg.max_queries_per_client + removes) {
        fatal(c, "the query set would hold %zu queries, past the limit of %u per client (max_queries_per_client)",
              c->nq + adds - CVX_MIN(removes, c->nq + adds), s->cfg.max_queries_per_client);
        return;
    }
    /* Every modification below is O(1): a message's cost is its length. */
    for (size_t i = 0; i < mods->u.arr.len; i++) {
        const cvx_value_t *mod = mods->u.arr.items[i];
        const char *type = mod->type == CVX_T_OBJECT ? str(c, mod, "type") : NULL;
        double qid;
        if (!type || !num(mod, "queryId", &qid)) {
            fatal(c, "query set modification %zu needs a type and a queryId", i);
            return;
        }
        if (qid > UINT32_MAX) {
            fatal(c, "queryId %.0f is out of range", qid);
            return;
        }
        uint32_t id = (uint32_t)qid;
        if (!strcmp(type, "Add")) {
            add_query(s, c, mod, id);
            if (closing(c)) return;
        } else if (!strcmp(type, "Remove")) {
            size_t found = idmap_find(&c->qmap, id);
            if (found == SIZE_MAX) {
                fatal(c, "query %u is not in the query set", id);
                return;
            }
            bool known = cq_known(c->queries[found]);
            remove_query(s, c, found);
            /* A query the client never got needs no QueryRemoved. So each
             * id is listed once, and only ids of the last Transition. */
            if (!known) continue;
            if (c->nremoved == c->capremoved) {
                size_t cap = c->capremoved ? c->capremoved * 2 : 8;
                uint32_t *r = cvx_realloc(c->removed, cap * sizeof *r);
                if (!r) {
                    fatal(c, "server out of memory");
                    return;
                }
                c->removed = r;
                c->capremoved = cap;
            }
            if (idmap_put(&c->rmap, id, c->nremoved)) {
                fatal(c, "server out of memory");
                return;
            }
            c->removed[c->nremoved++] = id;
        } else {
            fatal(c, "unknown query set modification \"%s\"", type);
            return;
        }
    }
    c->qs = (uint32_t)next;
    mark_dirty(s, c);
}

static void authenticate(cvx_sync_t *s, cvx_sync_client_t *c, const cvx_value_t *m) {
    const char *type = str(c, m, "tokenType");
    double base;
    if (!type || !num(m, "baseVersion", &base)) {
        fatal(c, "Authenticate needs tokenType and baseVersion");
        return;
    }
    if (base > (double)(UINT32_MAX - 1)) {
        fatal(c, "Authenticate baseVersion %.0f is out of range", base);
        return;
    }
    if (!strcmp(type, "Admin")) {
        const char *key = str(c, m, "value");
        if (closing(c)) return;
        if (!key || !s->hooks.is_admin_key || !s->hooks.is_admin_key(s->hooks.ctx, key, strlen(key))) {
            cvx_buf_t b = {0};
            cvx_buf_printf(&b, "{\"type\":\"AuthError\",\"error\":\"invalid admin key\",\"baseVersion\":%.0f,"
                               "\"authUpdateAttempted\":true}",
                           base);
            enqueue(c, &b);
            return;
        }
        c->admin = true;
    } else if (!strcmp(type, "User")) {
        if (!str(c, m, "value") && closing(c)) return;
        cvx_buf_t b = {0};
        cvx_buf_printf(&b, "{\"type\":\"AuthError\",\"error\":\"this server does not accept user tokens yet (no auth "
                           "provider is configured)\",\"baseVersion\":%.0f,\"authUpdateAttempted\":true}",
                       base);
        enqueue(c, &b);
        return;
    } else if (!strcmp(type, "None")) {
        c->admin = false;
    } else {
        fatal(c, "unknown tokenType \"%s\"", type);
        return;
    }
    c->ident = (uint32_t)base + 1;
    mark_dirty(s, c);
}

static void start_call(cvx_sync_t *s, cvx_sync_client_t *c, const cvx_value_t *m, cvx_kind_t kind) {
    double rid;
    const char *path = str(c, m, "udfPath");
    if (closing(c)) return;
    cvx_buf_t args = {0};
    if (!num(m, "requestId", &rid) || !path || args_json(m, &args)) {
        cvx_buf_free(&args);
        fatal(c, "%s needs requestId, udfPath and args: [object]", kind == CVX_KIND_MUTATION ? "Mutation" : "Action");
        return;
    }
    call_arg_t *ca = cvx_calloc(1, sizeof *ca);
    if (!ca || !(ca->path = cvx_strdup(path))) {
        cvx_free(ca);
        cvx_buf_free(&args);
        fatal(c, "server out of memory");
        return;
    }
    ca->c = c;
    ca->kind = kind;
    ca->request_id = rid;
    ca->args = cvx_buf_detach(&args, &ca->args_len);
    ca->admin = c->admin;
    snprintf(ca->session, sizeof ca->session, "%s", c->session);
    c->calls++;
    c->call_bytes += ca->args_len;
    s->call_bytes += ca->args_len;
    atomic_fetch_add(&c->refs, 1);
    if (kind == CVX_KIND_MUTATION && c->mutating) {
        if (c->mq_tail) c->mq_tail->next = ca;
        else c->mq_head = ca;
        c->mq_tail = ca;
        return;
    }
    if (kind == CVX_KIND_MUTATION) c->mutating = true;
    s->hooks.submit(s->hooks.ctx, kind, run_call, ca);
}

void cvx_sync_receive(cvx_sync_client_t *c, const char *msg, size_t len) {
    cvx_sync_t *s = c->s;
    cvx_arena_t *a = cvx_arena_new(4096);
    cvx_value_t *m = NULL;
    cvx_err_t err = {0};
    /* Parsed before taking the engine's lock: a client's megabyte message
     * must not hold up every other client's results meanwhile. */
    int prc = a ? cvx_json_parse(a, msg, len, &m, &err) : CVX_E_NOMEM;
    pthread_mutex_lock(&s->mu);
    /* Once told to go (a protocol error, too slow), nothing more it sends
     * is acted on: frames already read may still arrive. */
    if (closing(c)) goto out;
    if (!a) {
        fatal(c, "server out of memory");
        goto out;
    }
    if (prc != CVX_OK) {
        fatal(c, "message is not valid JSON: %s", err.msg);
        goto out;
    }
    if (m->type != CVX_T_OBJECT) {
        fatal(c, "message is not a JSON object");
        goto out;
    }
    const char *type = str(c, m, "type");
    if (!type) {
        fatal(c, "message has no \"type\"");
    } else if (!strcmp(type, "Connect")) {
        const char *session = str(c, m, "sessionId");
        /* The session names the idempotency keys of its mutations: cut
         * short, two sessions could share them. */
        if (session && strlen(session) >= sizeof c->session)
            fatal(c, "sessionId is longer than %zu bytes", sizeof c->session - 1);
        if (!closing(c)) snprintf(c->session, sizeof c->session, "%s", session ? session : "");
    } else if (!strcmp(type, "ModifyQuerySet")) {
        modify_query_set(s, c, m);
    } else if (!strcmp(type, "Authenticate")) {
        authenticate(s, c, m);
    } else if (!strcmp(type, "Mutation")) {
        start_call(s, c, m, CVX_KIND_MUTATION);
    } else if (!strcmp(type, "Action")) {
        start_call(s, c, m, CVX_KIND_ACTION);
    } else if (!strcmp(type, "Event")) {
        /* telemetry: ignored */
    } else {
        fatal(c, "unknown message type \"%s\"", type);
    }
    /* Starts the runs this message created and looks at this client: the
     * others are woken by their own runs and commits. */
    pump(s);
out:
    pthread_mutex_unlock(&s->mu);
    cvx_arena_free(a);
}

/* ---- lifetime ---------------------------------------------------------------------- */

int cvx_sync_new(cvx_runtime_t *rt, const cvx_sync_hooks_t *hooks, const cvx_sync_config_t *cfg, cvx_sync_t **out,
                 cvx_err_t *err) {
    *out = NULL;
    cvx_sync_t *s = cvx_calloc(1, sizeof *s);
    if (!s) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    s->nbuckets = NBUCKETS_MIN;
    s->buckets = cvx_calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets) {
        cvx_free(s);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    s->rt = rt;
    s->hooks = *hooks;
    if (cfg) s->cfg = *cfg;
    if (!s->cfg.max_outbox_bytes) s->cfg.max_outbox_bytes = 64u << 20;
    if (!s->cfg.max_outbox_msgs) s->cfg.max_outbox_msgs = 10000;
    if (!s->cfg.max_queries_per_client) s->cfg.max_queries_per_client = 10000;
    /* Indexes into a client's arrays are stored as uint32 + 1. */
    if (s->cfg.max_queries_per_client > UINT32_MAX - 1) s->cfg.max_queries_per_client = UINT32_MAX - 1;
    if (!s->cfg.max_total_outbox_bytes) s->cfg.max_total_outbox_bytes = (size_t)1 << 30;
    if (!s->cfg.max_calls_per_client) s->cfg.max_calls_per_client = 128;
    if (!s->cfg.max_running_queries) s->cfg.max_running_queries = 8;
    if (!s->cfg.max_total_call_bytes) s->cfg.max_total_call_bytes = (size_t)256 << 20;
    if (cvx_os_random(&s->seed, sizeof s->seed)) {
        /* No OS randomness: something an outsider cannot read off. */
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        s->seed = mix64((uint64_t)(uintptr_t)s ^ (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 32));
    }
    s->latest_ts = cvx_store_latest_ts(cvx_runtime_store(rt));
    s->horizon = s->latest_ts;
    s->gen = cvx_runtime_generation(rt);
    s->listener = cvx_store_listen(cvx_runtime_store(rt), on_commit, s);
    if (s->listener < 0) {
        pthread_mutex_destroy(&s->mu);
        cvx_free(s->buckets);
        cvx_free(s);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    *out = s;
    return CVX_OK;
}

void cvx_sync_free(cvx_sync_t *s) {
    if (!s) return;
    cvx_store_unlisten(cvx_runtime_store(s->rt), s->listener);
    /* Responses still waiting are dropped with their clients: a client
     * re-sends its unanswered mutations, and the request record answers. */
    while (s->parked) {
        parked_t *p = s->parked;
        s->parked = p->next;
        cvx_buf_free(&p->msg);
        client_release(p->c);
        cvx_free(p);
    }
    while (s->clients) cvx_sync_disconnect(s->clients);
    while (s->all) {
        sub_t *u = s->all;
        s->all = u->all_next;
        sub_free(u);
    }
    cvx_free(s->buckets);
    for (size_t i = 0; i < LOG_MAX; i++) {
        cvx_buf_free(&s->log[i].bytes);
        cvx_free(s->log[i].keys);
    }
    pthread_mutex_destroy(&s->mu);
    cvx_free(s);
}

void cvx_sync_code_changed(cvx_sync_t *s) {
    pthread_mutex_lock(&s->mu);
    s->gen = cvx_runtime_generation(s->rt);
    for (sub_t *u = s->all; u; u = u->all_next) {
        sub_update_fresh(s, u);
        todo_push(s, u);
    }
    mark_all_dirty(s);
    pump(s);
    pthread_mutex_unlock(&s->mu);
}

cvx_sync_client_t *cvx_sync_connect(cvx_sync_t *s, void *conn) {
    cvx_sync_client_t *c = cvx_calloc(1, sizeof *c);
    if (!c) return NULL;
    atomic_init(&c->refs, 1);
    c->s = s;
    c->conn = conn;
    pthread_mutex_lock(&s->mu);
    c->qmap.seed = c->rmap.seed = mix64(s->seed ^ (uint64_t)(uintptr_t)c);
    c->next = s->clients;
    if (s->clients) s->clients->prev = c;
    s->clients = c;
    s->stats.clients++;
    pthread_mutex_unlock(&s->mu);
    return c;
}

void cvx_sync_disconnect(cvx_sync_client_t *c) {
    cvx_sync_t *s = c->s;
    pthread_mutex_lock(&s->mu);
    unmark_dirty(s, c);
    c->closed = true;
    while (c->nq) remove_query(s, c, c->nq - 1);
    outbox_clear(s, c);
    if (c->prev) c->prev->next = c->next;
    else s->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    s->stats.clients--;
    pthread_mutex_unlock(&s->mu);
    client_release(c);
}

size_t cvx_sync_drain(cvx_sync_client_t *c, size_t max_bytes, char ***out, size_t **lens) {
    pthread_mutex_lock(&c->s->mu);
    size_t n = 0, bytes = 0;
    while (n < c->nout && (n == 0 || bytes + c->outlen[n] <= max_bytes)) bytes += c->outlen[n++];
    if (n == c->nout) { /* all of it: hand the arrays over */
        *out = c->out;
        *lens = c->outlen;
        c->out = NULL;
        c->outlen = NULL;
        c->capout = 0;
    } else {
        *out = cvx_malloc(n * sizeof **out);
        *lens = cvx_malloc(n * sizeof **lens);
        if (!*out || !*lens) {
            cvx_free(*out);
            cvx_free(*lens);
            *out = NULL;
            *lens = NULL;
            pthread_mutex_unlock(&c->s->mu);
            return 0; /* the messages stay queued for the next drain */
        }
        memcpy(*out, c->out, n * sizeof **out);
        memcpy(*lens, c->outlen, n * sizeof **lens);
        memmove(c->out, c->out + n, (c->nout - n) * sizeof *c->out);
        memmove(c->outlen, c->outlen + n, (c->nout - n) * sizeof *c->outlen);
    }
    c->nout -= n;
    c->outbytes -= bytes;
    c->s->stats.outbox_bytes -= bytes;
    pthread_mutex_unlock(&c->s->mu);
    return n;
}

void cvx_sync_free_messages(char **msgs, size_t *lens, size_t n) {
    for (size_t i = 0; i < n; i++) cvx_free(msgs[i]);
    cvx_free(msgs);
    cvx_free(lens);
}

const char *cvx_sync_should_close(cvx_sync_client_t *c) {
    pthread_mutex_lock(&c->s->mu);
    const char *r = c->close_reason[0] ? c->close_reason : NULL;
    pthread_mutex_unlock(&c->s->mu);
    return r;
}

void cvx_sync_stats(cvx_sync_t *s, cvx_sync_stats_t *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}
