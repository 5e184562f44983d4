/* Private to the sync layer: the engine's state, shared by
 *
 *   protocol.c  client messages decoded, server messages encoded (pure)
 *   subs.c      subscriptions, query sets, runs, commits, Transitions
 *   sync.c      lifetime, clients and their outboxes, receiving, calls
 *
 * One mutex (cvx_sync_t.mu) guards everything here; functions marked
 * "under s->mu" expect the caller to hold it. */
#ifndef CVX_SYNC_INT_H
#define CVX_SYNC_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"
#include "sync/protocol.h"
#include "sync/sync.h"

/* Argument bytes of one client's calls in flight past which it is busy. */
#define CVX__CLIENT_CALL_BYTES ((size_t)32 << 20)
/* Commits remembered for the runs that started before them. */
#define CVX__SYNC_LOG_MAX 8192

typedef struct cvx__cq cvx__cq_t;

/* A shared subscription: one (function, args, journal) and its last
 * result, whoever asked for it. */
typedef struct cvx__sub {
    struct cvx__sub *next;                 /* bucket chain */
    struct cvx__sub *all_prev, *all_next;  /* every subscription (s->all) */
    struct cvx__sub *todo_prev, *todo_next; /* s->todo: may need a run started */
    bool in_todo;
    cvx__cq_t *watchers; /* the client queries on it */
    bool fresh;          /* sub_fresh() as last told to the watchers' nunfresh */
    uint64_t hash;
    char *path;
    char *args;
    size_t args_len;
    char *key_journal; /* the journal clients added it with (part of its key), or NULL */
    char *identity;    /* the UserIdentity it runs as (part of its key), or NULL */
    size_t identity_len;
    bool admin;        /* runs as an admin call: internal and system
                          functions are reachable (part of its key) */
    char *journal;     /* the last run's journal (its pages' ends), or NULL */
    uint64_t refs;     /* client queries + a running task */
    bool running, stale, has_result;
    uint64_t gen;  /* code generation the result was computed with */
    uint64_t seq;  /* bumped when the result changes */
    bool ok;
    cvx_buf_t value; /* success: value JSON; failure: error message */
    cvx_buf_t data;  /* failure: errorData JSON (empty when none) */
    cvx_buf_t logs;  /* JSON array or empty */
    cvx_readset_t *readset;
    cvx_rindex_reg_t *regs; /* readset's ranges, filed in s->index (nregs of them) */
    size_t nregs;
    bool unfiled;           /* out of memory filing them: checked by a scan instead */
    uint64_t snapshot;
} cvx__sub_t;

/* One query of a client's query set. Allocated on its own so that the
 * subscription's watcher list can point at it while c->queries moves. */
struct cvx__cq {
    cvx__cq_t *wprev, *wnext;   /* sub->watchers */
    cvx__cq_t *chprev, *chnext; /* c->changed */
    bool in_changed;
    cvx_sync_client_t *c;
    cvx__sub_t *sub;
    uint64_t seen;  /* sub->seq last sent to this client (0 = never) */
    uint64_t epoch; /* c->epoch when added */
    uint32_t id;
    /* Replaces an id the client had (removed, then added back before the
     * next Transition): the client has this id. */
    bool replaces;
};

/* Open addressing with linear probing, from a client-chosen uint32 id to
 * an index into one of the client's arrays (subs.c). The ids are mixed
 * with a random seed, so a client cannot pick ids that share one probe
 * run. Deletion shifts back (no tombstones), so lookups stay short however
 * the set churns. */
typedef struct {
    uint32_t id;
    uint32_t at; /* index + 1; 0: empty slot */
} cvx__idslot_t;

typedef struct {
    cvx__idslot_t *slots; /* owned */
    size_t cap;           /* 0 or a power of two, at least twice n */
    size_t n;
    uint64_t seed;
} cvx__idmap_t;

typedef struct cvx__call cvx__call_t; /* sync.c: a mutation or action to run */

/* A client message received while an Authenticate is verified, kept
 * decoded (replaying it under the engine's lock then costs no parse). */
typedef struct cvx__held {
    struct cvx__held *next;
    size_t len;        /* the message's bytes, counted against the bound */
    cvx__sync_msg_t m; /* owned */
} cvx__held_t;

struct cvx_sync_client {
    atomic_int refs;
    cvx_sync_t *s;
    void *conn;
    cvx_sync_client_t *prev, *next;
    cvx_sync_client_t *dprev, *dnext; /* s->dirty */
    bool queued;                      /* on s->dirty: try_transition is due */
    char session[CVX__SYNC_SESSION_MAX + 1];
    bool admin;
    /* Who the client's queries and calls run as: a UserIdentity's JSON,
     * or NULL (anonymous). expires: its token's exp (Unix seconds; 0
     * never), auth_base: the baseVersion of the Authenticate that set it. */
    char *identity;
    size_t identity_len;
    int64_t expires;
    double auth_base;
    /* A user token is being verified (on a worker): the messages that
     * follow it wait, in order, until its outcome is applied. */
    bool authenticating;
    cvx__held_t *held, *held_tail;
    size_t held_bytes;
    uint32_t qs, ident;           /* applied versions */
    uint32_t sent_qs, sent_ident; /* versions in the last Transition */
    uint64_t sent_ts;
    cvx__cq_t **queries; /* owned, with each entry */
    size_t nq, capq;
    cvx__idmap_t qmap; /* query id -> index in queries */
    size_t nunfresh;   /* queries whose subscription is not fresh */
    cvx__cq_t *changed, *changed_tail; /* queries with seen != sub->seq, oldest first */
    /* Transitions sent so far: a query added before the last one (epoch
     * < this) is in the client's query set as it knows it. */
    uint64_t epoch;
    /* Ids to send as QueryRemoved: known ids no longer in the set. Each is
     * there once and leaves when re-added, so it never outgrows the last
     * Transition's query set. */
    uint32_t *removed;
    size_t nremoved, capremoved;
    cvx__idmap_t rmap; /* id -> index in removed */
    uint64_t need_ts;  /* a mutation response promised a Transition >= this */
    bool must_send;    /* a MutationResponse went out: a Transition must follow */
    char **out;        /* unsent messages, owned */
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
    cvx__call_t *mq_head, *mq_tail;
};

typedef struct {
    uint64_t ts;
    cvx_buf_t bytes;
    cvx_written_key_t *keys; /* owned; their keys point into bytes */
    size_t nkeys;
} cvx__logent_t;

struct cvx_sync {
    pthread_mutex_t mu;
    cvx_runtime_t *rt;
    cvx_sync_hooks_t hooks;
    cvx_sync_config_t cfg;
    size_t call_bytes; /* every client's call_bytes together */
    int listener;
    uint64_t seed;          /* random: hash layouts clients cannot predict */
    cvx__sub_t **buckets;   /* nbuckets (a power of two) chains, grown with the subscriptions */
    size_t nbuckets;
    cvx__sub_t *all; /* the same subscriptions as a list */
    cvx_rindex_t *index; /* their read sets: which subscriptions a commit touches */
    size_t nunfiled;     /* subscriptions whose read set is not in the index */
    cvx__sub_t *todo, *todo_tail; /* subscriptions that may need a run started, oldest first */
    uint32_t running;             /* runs submitted and not finished */
    cvx_sync_client_t *clients;
    cvx_sync_client_t *dirty; /* clients due a try_transition */
    uint64_t latest_ts;
    uint64_t gen;
    cvx__logent_t log[CVX__SYNC_LOG_MAX]; /* ring of recent commits */
    uint64_t nlog;                        /* total ever appended */
    uint64_t horizon;                     /* commits with ts > horizon are all in the ring */
    cvx_sync_stats_t stats; /* stats.outbox_bytes: the sum of every client's outbytes */
};

/* A 64-bit finaliser (MurmurHash3's fmix64): every input bit moves every
 * output bit, so masking the low bits of the result spreads. */
static inline uint64_t cvx__sync_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* ---- subs.c ----------------------------------------------------------------------- */

/* The subscription table (buckets) of a new engine; -1 out of memory. */
int cvx__sync_subs_init(cvx_sync_t *s);
/* Frees every subscription, the table and the commit log. */
void cvx__sync_subs_free(cvx_sync_t *s);
/* The store's commit listener. */
void cvx__sync_on_commit(void *ctx, const cvx_commit_info_t *ci);
/* Applies a decoded ModifyQuerySet (its fault, if any, reported where the
 * engine always has: see protocol.h). Under s->mu. */
void cvx__sync_modify(cvx_sync_t *s, cvx_sync_client_t *c, const cvx__sync_msg_t *m);
/* Takes the client off the dirty list and empties its query set (it
 * disconnected). Under s->mu. */
void cvx__sync_forget_client(cvx_sync_t *s, cvx_sync_client_t *c);
void cvx__sync_idmap_free(cvx__idmap_t *m);
/* Runs the client's queries as `identity` (NULL: anonymous) and as the
 * client's c->admin from now on: each moves to the subscription of its
 * function and args under those, and its result is sent again. Takes
 * identity (cvx_malloc'd). Under s->mu. */
void cvx__sync_set_identity(cvx_sync_t *s, cvx_sync_client_t *c, char *identity, size_t len);
/* The client is due a try_transition (at the next pump). Under s->mu. */
void cvx__sync_mark_dirty(cvx_sync_t *s, cvx_sync_client_t *c);
/* Sends the client a Transition if it needs one and can have one. Under s->mu. */
void cvx__sync_try_transition(cvx_sync_t *s, cvx_sync_client_t *c);
/* Starts the runs that are due and looks at the clients due a look. Under s->mu. */
void cvx__sync_pump(cvx_sync_t *s);

/* ---- sync.c ----------------------------------------------------------------------- */

/* Queues one outgoing message, taking msg; closes a client too far behind.
 * Under s->mu. */
void cvx__sync_enqueue(cvx_sync_client_t *c, cvx_buf_t *msg);
/* Queues a FatalError and marks the client for closing; only the first
 * counts. Under s->mu. */
void cvx__sync_fatal(cvx_sync_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Has the client been told to go (a protocol error, too slow)? */
bool cvx__sync_closing(const cvx_sync_client_t *c);

#endif
