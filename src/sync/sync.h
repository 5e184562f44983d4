/*
 * sync — reactive queries: the WebSocket sync protocol's state machine
 * (§4 of shared/spec/convex-protocol.md), independent of any transport.
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
 * its bound is closed with a reason instead of growing memory: a slow
 * client never slows the others.
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
    /* Runs fn(arg) on some worker thread, later. */
    void (*submit)(void *ctx, void (*fn)(void *arg), void *arg);
    /* The client has messages to send (cvx_sync_drain) or must be closed
     * (cvx_sync_should_close). Called from any thread, possibly with
     * internal locks held: only queue a notification. */
    void (*wake)(void *ctx, cvx_sync_client_t *c, void *conn);
    /* Is `key` the admin key? (Authenticate with tokenType "Admin".) */
    bool (*is_admin_key)(void *ctx, const char *key, size_t len);
} cvx_sync_hooks_t;

typedef struct {
    size_t max_outbox_bytes;  /* per client; default 64 MiB */
    size_t max_outbox_msgs;   /* per client; default 10000 */
} cvx_sync_config_t;

/* Creates the sync engine and registers it as a commit listener of the
 * runtime's store. */
int cvx_sync_new(cvx_runtime_t *rt, const cvx_sync_hooks_t *hooks, const cvx_sync_config_t *cfg, cvx_sync_t **out,
                 cvx_err_t *err);
/* Stops listening and frees. Every client must be disconnected and no
 * submitted task may still be running. */
void cvx_sync_free(cvx_sync_t *s);

/* New code was deployed: every subscription re-runs. */
void cvx_sync_code_changed(cvx_sync_t *s);
/* Commits became durable, or an fsync failed (the store's durability hook,
 * cvx_store_on_durable): sends the mutation responses that waited for
 * them. Cheap when none wait. */
void cvx_sync_durable(cvx_sync_t *s);

/* A new WebSocket. `conn` is the host's handle, passed back to wake().
 * The client holds one reference for the host; cvx_sync_disconnect drops
 * it. */
cvx_sync_client_t *cvx_sync_connect(cvx_sync_t *s, void *conn);
/* The socket closed: queries are unsubscribed, pending work is dropped. */
void cvx_sync_disconnect(cvx_sync_client_t *c);

/* One text frame from the client. A protocol violation queues a
 * FatalError and marks the client for closing. */
void cvx_sync_receive(cvx_sync_client_t *c, const char *msg, size_t len);

/* Moves the queued outgoing messages (JSON texts, one per frame) into
 * `out` (an array the caller frees with cvx_sync_free_messages). */
size_t cvx_sync_drain(cvx_sync_client_t *c, char ***out, size_t **lens);
void cvx_sync_free_messages(char **msgs, size_t *lens, size_t n);
/* Non-NULL when the host should close the socket, with the reason. */
const char *cvx_sync_should_close(cvx_sync_client_t *c);

typedef struct {
    uint64_t subscriptions;   /* live shared subscriptions */
    uint64_t clients;
    uint64_t query_runs;      /* subscription runs so far (test hook) */
    uint64_t transitions;
    uint64_t commits_seen;
    uint64_t dropped_clients; /* closed for being too slow */
} cvx_sync_stats_t;

void cvx_sync_stats(cvx_sync_t *s, cvx_sync_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
