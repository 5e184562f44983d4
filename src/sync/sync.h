/*
 * sync — reactive queries: the WebSocket sync protocol's state machine
 * (§4 of docs/protocol.md), independent of any transport.
 *
 * Subscriptions are keyed by (function, arguments) and shared by every
 * client that asks for the same thing. Each run of a subscription's query
 * records its read set (index key ranges); a commit re-runs exactly the
 * subscriptions whose read sets it touches. A result computed at snapshot S
 * stays valid at every later timestamp until a commit touches its read set,
 * so a client's Transition is sent at one timestamp T at which all of its
 * queries are known valid: one consistent snapshot per Transition.
 *
 * Mutation responses keep the protocol's ordering rule: a MutationResponse
 * carrying commit ts C goes out first, then a Transition whose end ts >= C.
 *
 * Threads: every function may be called from any thread. Query runs,
 * mutations and actions execute through the host's `submit` hook (the
 * server's worker pool); outgoing messages are queued per client and the
 * host is told to flush them through `wake`. A client whose queue exceeds
 * its bound, or that is behind while all clients' queues together are at
 * theirs, is closed with a reason instead of growing memory: a slow client
 * never slows the others. Its unsent messages are dropped then.
 *
 * A client message costs work in proportion to its own length, whatever
 * other clients hold: each query set modification is O(1).
 */
#ifndef CVX_SYNC_H
#define CVX_SYNC_H

#include "exec/exec.h"
#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cvx_sync cvx_sync_t;
typedef struct cvx_sync_client cvx_sync_client_t;

typedef struct {
    void *ctx;
    /* Runs fn(arg) on some worker thread, later. `kind` says what the
     * task runs (CVX_KIND_QUERY for subscription runs, else the call's
     * kind), so the host can keep actions from starving queries. */
    void (*submit)(void *ctx, cvx_kind_t kind, void (*fn)(void *arg), void *arg);
    /* The client has messages to send (cvx_sync_drain) or must be closed
     * (cvx_sync_should_close). Called from any thread, possibly with
     * internal locks held: only queue a notification. */
    void (*wake)(void *ctx, cvx_sync_client_t *c, void *conn);
    /* Is `key` the admin key? (Authenticate with tokenType "Admin".) */
    bool (*is_admin_key)(void *ctx, const char *key, size_t len);
    /* Checks a user's token (Authenticate with tokenType "User"): appends
     * the UserIdentity's JSON to `identity` and sets *expires (Unix
     * seconds), or fails with the message the client's AuthError shows.
     * Runs on a worker through `submit` (it may wait for the issuer's
     * keys); the client's later messages wait for it, in order. NULL:
     * user tokens are refused. */
    int (*verify_token)(void *ctx, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires,
                        cvx_err_t *err);
} cvx_sync_hooks_t;

/* Limits; a zero field takes its default. */
typedef struct {
    /* Unsent messages per client: a client that falls further behind is
     * closed as too slow. Default 64 MiB. */
    size_t max_outbox_bytes;
    /* The same bound counted in messages. Default 10000. */
    size_t max_outbox_msgs;
    /* Queries one client may hold in its query set at once. An Add past it
     * is a protocol error: FatalError naming the limit, then the client is
     * closed. Bounds the memory and runs one socket can cause; the Convex
     * client holds one query per distinct (function, args) it shows, far
     * fewer. Default 10000 (at most UINT32_MAX - 1). */
    uint32_t max_queries_per_client;
    /* Unsent messages of all clients together, in bytes. When an enqueue
     * would pass it, the client being enqueued to is closed as too slow if
     * it already has unsent messages; a client whose outbox is empty still
     * gets its message, so one that keeps up keeps working and the total
     * passes the bound by at most one message per client. Default 1 GiB. */
    size_t max_total_outbox_bytes;
    /* Mutations and actions one client may have queued or running before
     * it is busy (cvx_sync_client_busy); also busy past 32 MiB of their
     * arguments, or while all clients' together pass
     * max_total_call_bytes. Defaults 128 and 256 MiB. */
    uint32_t max_calls_per_client;
    size_t max_total_call_bytes;
    /* Subscription runs submitted at once; the rest wait their turn in
     * order. Below the host's query workers, so that other calls share
     * them. Default 8. */
    uint32_t max_running_queries;
} cvx_sync_config_t;

/* Creates the sync engine and registers it as a commit listener of the
 * runtime's store. */
int cvx_sync_new(cvx_runtime_t *rt, const cvx_sync_hooks_t *hooks, const cvx_sync_config_t *cfg, cvx_sync_t **out,
                 cvx_err_t *err);
/* Stops listening and frees. No submitted task may still be running;
 * answers to calls that wait for durability in the runtime
 * (cvx_exec_call_then) are waited for. */
void cvx_sync_free(cvx_sync_t *s);

/* New code was deployed: every subscription re-runs. */
void cvx_sync_code_changed(cvx_sync_t *s);

/* A new WebSocket. `conn` is the host's handle, passed back to wake().
 * The client holds one reference for the host; cvx_sync_disconnect drops
 * it. */
cvx_sync_client_t *cvx_sync_connect(cvx_sync_t *s, void *conn);
/* Clients whose identity's token expired by `now` (Unix seconds) get an
 * AuthError and are closed: the official client reconnects with a fresh
 * token. The host calls it every second or so. */
void cvx_sync_expire(cvx_sync_t *s, int64_t now);

/* The socket closed: queries are unsubscribed, pending work is dropped. */
void cvx_sync_disconnect(cvx_sync_client_t *c);

/* One text frame from the client. A protocol violation queues a
 * FatalError and marks the client for closing. */
void cvx_sync_receive(cvx_sync_client_t *c, const char *msg, size_t len);

/* Moves queued outgoing messages (JSON texts, one per frame), oldest
 * first, into `out` (an array the caller frees with
 * cvx_sync_free_messages): as many as fit in max_bytes, and at least one.
 * The rest stay queued, counted against the client's bounds, so a host
 * that takes only what its socket can send lets those bounds close a
 * client that does not read. */
size_t cvx_sync_drain(cvx_sync_client_t *c, size_t max_bytes, char ***out, size_t **lens);
void cvx_sync_free_messages(char **msgs, size_t *lens, size_t n);
/* Non-NULL when the host should close the socket, with the reason. */
const char *cvx_sync_should_close(cvx_sync_client_t *c);
/* Whether the host should stop reading this client's messages for now:
 * it has too many calls in flight. A busy client is woken (`wake`) when
 * one of them ends; it is never busy with none. */
bool cvx_sync_client_busy(cvx_sync_client_t *c);

typedef struct {
    uint64_t subscriptions;   /* live shared subscriptions */
    uint64_t clients;
    uint64_t query_runs;      /* subscription runs so far (test hook) */
    uint64_t transitions;
    uint64_t commits_seen;
    uint64_t dropped_clients; /* closed for being too slow */
    uint64_t outbox_bytes;    /* unsent messages now, all clients together
                                 (what max_total_outbox_bytes bounds) */
} cvx_sync_stats_t;

void cvx_sync_stats(cvx_sync_t *s, cvx_sync_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
