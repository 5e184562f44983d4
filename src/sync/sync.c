/* The sync engine (see sync.h for the contract): its lifetime, clients
 * and their outboxes, receiving messages, and the calls (mutations and
 * actions), whose answers the runtime holds until what they say is
 * durable (cvx_exec_call_then).
 * Subscriptions and Transitions are subs.c's; messages are decoded and
 * encoded by protocol.c; the shared state is in sync_int.h.
 *
 * One mutex guards all state; work that runs guest code (query runs,
 * mutations, actions) happens outside it on the host's workers, and a
 * client's message is decoded before the mutex is taken. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "sync/sync_int.h"

/* ---- clients and their outboxes ----------------------------------------------- */

/* Frees a decoded message, wiping the token or key it carried first:
 * secrets are not left in freed memory. */
static void msg_dispose(cvx__sync_msg_t *m) {
    if (m->token) explicit_bzero((char *)m->token, strlen(m->token));
    cvx__sync_msg_free(m);
}

/* Drops one reference; frees the client at zero. */
static void client_release(cvx_sync_client_t *c) {
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    for (size_t i = 0; i < c->nout; i++) cvx_free(c->out[i]);
    cvx_free(c->out);
    cvx_free(c->outlen);
    cvx_free(c->queries);
    cvx__sync_idmap_free(&c->qmap);
    cvx_free(c->removed);
    cvx__sync_idmap_free(&c->rmap);
    cvx_free(c->identity);
    while (c->held) {
        cvx__held_t *h = c->held;
        c->held = h->next;
        msg_dispose(&h->m);
        cvx_free(h);
    }
    cvx_free(c);
}

/* Frees the client's unsent messages, keeping the server-wide total
 * exact. Under s->mu. */
static void outbox_clear(cvx_sync_t *s, cvx_sync_client_t *c) {
    for (size_t i = 0; i < c->nout; i++) cvx_free(c->out[i]);
    s->stats.outbox_bytes -= c->outbytes;
    c->nout = 0;
    c->outbytes = 0;
}

/* Two bounds. Per client (max_outbox_msgs/bytes): one slow reader cannot
 * hold more than that. Server-wide (max_total_outbox_bytes): a thousand
 * clients each under their own bound could still exhaust memory together,
 * so once the total is reached, a client that already has unsent messages
 * (it is behind) is closed rather than given more. A client whose outbox
 * is empty still gets its message: one that keeps up keeps working, and
 * the total overshoots by at most one message per client. */
void cvx__sync_enqueue(cvx_sync_client_t *c, cvx_buf_t *msg) {
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

bool cvx__sync_closing(const cvx_sync_client_t *c) { return c->closed || c->close_reason[0]; }

/* Only the first error counts: once the client is closing, later calls do
 * nothing (a modification's error after the message was refused). */
void cvx__sync_fatal(cvx_sync_client_t *c, const char *fmt, ...) {
    if (c->closed || c->close_reason[0]) return;
    char msg[CVX__SYNC_ERROR_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cvx_buf_t b = {0};
    cvx__sync_put_fatal(&b, msg);
    cvx__sync_enqueue(c, &b);
    if (!c->close_reason[0]) snprintf(c->close_reason, sizeof c->close_reason, "protocol error: %.150s", msg);
    c->s->hooks.wake(c->s->hooks.ctx, c, c->conn);
}

/* ---- mutations and actions ------------------------------------------------------- */

/* Under s->mu. A client with no call in flight is never busy: whatever
 * else is queued, its next message may be read, and a busy client has a
 * call whose end wakes it. */
static bool client_busy(const cvx_sync_client_t *c) {
    const cvx_sync_t *s = c->s;
    /* Its messages wait for the token's check anyway; whose end wakes it. */
    if (c->authenticating) return true;
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

/* A mutation or action, from its message to its answer. */
typedef struct cvx__call {
    struct cvx__call *next; /* the client's queue of mutations waiting their turn */
    cvx_sync_client_t *c;   /* a reference, held until the answer is delivered */
    cvx_kind_t kind;
    double request_id;
    char *path;
    char *args;
    size_t args_len;
    bool admin;
    char *identity; /* the client's when the call came, or NULL */
    size_t identity_len;
    char session[CVX__SYNC_SESSION_MAX + 1];
} cvx__call_t;

static void call_free(cvx__call_t *ca) {
    cvx_free(ca->path);
    cvx_free(ca->args);
    cvx_free(ca->identity);
    cvx_free(ca);
}

/* Sends a call's response; for a committed mutation (commit_ts), the
 * Transition that must follow it. Takes msg. Under s->mu. */
static void deliver(cvx_sync_t *s, cvx_sync_client_t *c, cvx_buf_t *msg, uint64_t commit_ts) {
    cvx__sync_enqueue(c, msg);
    if (!commit_ts) return;
    /* The client may show the mutation's effect only after a Transition
     * at or past its commit. */
    if (commit_ts > c->need_ts) c->need_ts = commit_ts;
    /* The client resolves the mutation on the first Transition after the
     * response whose ts reaches the commit: send one even when an earlier
     * Transition already covered the commit's effects. */
    c->must_send = true;
    cvx__sync_try_transition(s, c);
}

/* The call's answer, once it may leave (its commit is durable, or never
 * will be and resp says so): on the worker that ran it, or later on the
 * store's durability thread. Frees the call and drops its reference. */
static void call_done(void *ctx, cvx_response_t *resp) {
    cvx__call_t *ca = ctx;
    cvx_sync_client_t *c = ca->c;
    cvx_sync_t *s = c->s;
    bool ok = resp->r.status == CVX_OK, mutation = ca->kind == CVX_KIND_MUTATION;
    cvx__sync_outcome_t o = {ok, ok ? &resp->r.value : &resp->r.message, resp->r.has_data ? &resp->r.data : NULL,
                             &resp->r.logs};
    cvx_buf_t b = {0};
    cvx__sync_put_call_response(&b, mutation, ca->request_id, &o, resp->ts);
    pthread_mutex_lock(&s->mu);
    deliver(s, c, &b, ok && mutation ? resp->ts : 0);
    pthread_mutex_unlock(&s->mu);
    call_free(ca);
    client_release(c);
}

/* A call on a worker. Its answer goes through call_done, which may run
 * before this returns or after; once the call has run (a mutation's commit
 * is written, not yet durable), the client's next mutation may start. */
static void run_call(void *arg) {
    cvx__call_t *ca = arg;
    cvx_sync_client_t *c = ca->c;
    cvx_sync_t *s = c->s;
    cvx_kind_t kind = ca->kind;
    size_t args_len = ca->args_len;
    /* A client re-sends unacknowledged mutations after a reconnect, with
     * the same session and request id: they must apply once. */
    char key[160];
    snprintf(key, sizeof key, "ws:%s:%.0f", ca->session, ca->request_id);
    cvx_request_t req = {.path = ca->path, .args_json = ca->args, .args_len = ca->args_len, .expect_kind = kind,
                         .allow_internal = ca->admin,
                         .identity = ca->identity,
                         .identity_len = ca->identity_len,
                         .idempotency_key = kind == CVX_KIND_MUTATION && ca->session[0] ? key : NULL};
    atomic_fetch_add(&c->refs, 1); /* ours; ca's goes with call_done */
    cvx_exec_call_then(s->rt, &req, call_done, ca);
    /* ca may be gone now. */
    pthread_mutex_lock(&s->mu);
    c->calls--;
    c->call_bytes -= args_len;
    s->call_bytes -= args_len;
    if (kind == CVX_KIND_MUTATION) {
        /* Committed (or failed): the client's next mutation may start. */
        cvx__call_t *next = c->mq_head;
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
    pthread_mutex_unlock(&s->mu);
    client_release(c);
}

/* ---- client messages ------------------------------------------------------------- */

static void auth_error(cvx_sync_client_t *c, const char *msg, double base_version) {
    cvx_buf_t b = {0};
    cvx__sync_put_auth_error(&b, msg, base_version, true);
    cvx__sync_enqueue(c, &b);
}

/* An Authenticate's outcome: the identity (NULL: anonymous; taken) its
 * queries and calls run as from now on, announced by the next Transition's
 * identity version. Under s->mu. */
static void identity_applied(cvx_sync_t *s, cvx_sync_client_t *c, double base_version, char *identity, size_t len,
                             int64_t expires) {
    cvx__sync_set_identity(s, c, identity, len);
    c->expires = expires;
    c->auth_base = base_version;
    c->ident = (uint32_t)base_version + 1;
    cvx__sync_mark_dirty(s, c);
}

typedef struct {
    cvx_sync_client_t *c; /* a reference */
    char *token;
    double base_version;
} verify_t;

static void handle(cvx_sync_t *s, cvx_sync_client_t *c, cvx__sync_msg_t *m);

/* Messages that arrived during the check, in order, until one starts
 * another check. Under s->mu. */
static void replay_held(cvx_sync_t *s, cvx_sync_client_t *c) {
    while (c->held && !c->authenticating && !cvx__sync_closing(c)) {
        cvx__held_t *h = c->held;
        c->held = h->next;
        if (!c->held) c->held_tail = NULL;
        c->held_bytes -= h->len;
        handle(s, c, &h->m);
        msg_dispose(&h->m);
        cvx_free(h);
    }
}

/* A user's token, checked on a worker (the issuer's keys may need a
 * fetch): the client's later messages wait meanwhile. */
static void verify_task(void *arg) {
    verify_t *v = arg;
    cvx_sync_client_t *c = v->c;
    cvx_sync_t *s = c->s;
    cvx_buf_t identity = {0};
    int64_t expires = 0;
    cvx_err_t err;
    cvx_err_clear(&err);
    int rc = s->hooks.verify_token(s->hooks.ctx, v->token, strlen(v->token), &identity, &expires, &err);
    /* The token is a secret: wiped before its memory is freed. */
    explicit_bzero(v->token, strlen(v->token));
    pthread_mutex_lock(&s->mu);
    c->authenticating = false;
    if (!cvx__sync_closing(c)) {
        if (rc == CVX_OK) {
            size_t len;
            char *id = cvx_buf_detach(&identity, &len);
            c->admin = false;
            identity_applied(s, c, v->base_version, id, len, expires);
        } else {
            auth_error(c, err.msg, v->base_version);
        }
        replay_held(s, c);
        if (c->host_paused && !client_busy(c)) {
            c->host_paused = false;
            s->hooks.wake(s->hooks.ctx, c, c->conn);
        }
    }
    cvx__sync_pump(s);
    pthread_mutex_unlock(&s->mu);
    cvx_buf_free(&identity);
    cvx_free(v->token);
    cvx_free(v);
    client_release(c);
}

static void authenticate(cvx_sync_t *s, cvx_sync_client_t *c, const cvx__sync_msg_t *m) {
    switch (m->token_type) {
    case CVX__SYNC_TOKEN_ADMIN: {
        if (!m->token || !s->hooks.is_admin_key || !s->hooks.is_admin_key(s->hooks.ctx, m->token, strlen(m->token))) {
            auth_error(c, "invalid admin key", m->base_version);
            return;
        }
        cvx_buf_t id = {0};
        cvx_err_t err;
        if (m->impersonating &&
            cvx_auth_identity_from_attributes(m->impersonating, m->impersonating_len, &id, &err) != CVX_OK) {
            auth_error(c, err.msg, m->base_version);
            return;
        }
        c->admin = true;
        size_t len;
        char *identity = m->impersonating ? cvx_buf_detach(&id, &len) : NULL;
        identity_applied(s, c, m->base_version, identity, identity ? len : 0, 0);
        return;
    }
    case CVX__SYNC_TOKEN_USER: {
        if (!s->hooks.verify_token) {
            auth_error(c, "this server does not accept user tokens", m->base_version);
            return;
        }
        verify_t *v = cvx_calloc(1, sizeof *v);
        if (!v || !(v->token = cvx_strdup(m->token ? m->token : ""))) {
            cvx_free(v);
            cvx__sync_fatal(c, "server out of memory");
            return;
        }
        v->c = c;
        v->base_version = m->base_version;
        atomic_fetch_add(&c->refs, 1);
        c->authenticating = true;
        s->hooks.submit(s->hooks.ctx, CVX_KIND_ACTION, verify_task, v);
        return;
    }
    case CVX__SYNC_TOKEN_NONE:
        c->admin = false;
        identity_applied(s, c, m->base_version, NULL, 0, 0);
        return;
    }
}

/* Queues a Mutation or Action, taking its args from m. */
static void start_call(cvx_sync_t *s, cvx_sync_client_t *c, cvx__sync_msg_t *m) {
    cvx_kind_t kind = m->type == CVX__SYNC_MUTATION ? CVX_KIND_MUTATION : CVX_KIND_ACTION;
    cvx__call_t *ca = cvx_calloc(1, sizeof *ca);
    if (!ca || !(ca->path = cvx_strdup(m->udf_path))) {
        cvx_free(ca);
        cvx__sync_fatal(c, "server out of memory");
        return;
    }
    ca->c = c;
    ca->kind = kind;
    ca->request_id = m->request_id;
    ca->args = cvx_buf_detach(&m->args, &ca->args_len);
    ca->admin = c->admin;
    if (c->identity && !(ca->identity = cvx_strndup(c->identity, c->identity_len))) {
        call_free(ca);
        cvx__sync_fatal(c, "server out of memory");
        return;
    }
    ca->identity_len = c->identity_len;
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

/* One decoded message. Under s->mu. */
static void handle(cvx_sync_t *s, cvx_sync_client_t *c, cvx__sync_msg_t *m) {
    /* A ModifyQuerySet reports its fault among its state checks. */
    if (m->type == CVX__SYNC_MODIFY_QUERY_SET) cvx__sync_modify(s, c, m);
    else if (m->fault) cvx__sync_fatal(c, "%s", m->error);
    else if (m->type == CVX__SYNC_CONNECT) snprintf(c->session, sizeof c->session, "%s", m->session_id);
    else if (m->type == CVX__SYNC_AUTHENTICATE) authenticate(s, c, m);
    else if (m->type == CVX__SYNC_MUTATION || m->type == CVX__SYNC_ACTION) start_call(s, c, m);
    /* (An Event is client telemetry: ignored.) */
}

/* Messages a client may send while its token is checked: the host stops
 * reading it then, so this bounds only what was already read. */
#define HELD_MAX ((size_t)16 << 20)

/* Keeps a decoded message for after the token check, taking it over
 * (true), or closes the client (false: the caller still owns m). Under
 * s->mu. */
static bool hold(cvx_sync_client_t *c, cvx__sync_msg_t *m, size_t len) {
    if (c->held_bytes + len > HELD_MAX) {
        cvx__sync_fatal(c, "more than 16 MiB of messages arrived while its Authenticate was being checked");
        return false;
    }
    cvx__held_t *h = cvx_malloc(sizeof *h);
    if (!h) {
        cvx__sync_fatal(c, "server out of memory");
        return false;
    }
    h->next = NULL;
    h->len = len;
    h->m = *m;
    if (c->held_tail) c->held_tail->next = h;
    else c->held = h;
    c->held_tail = h;
    c->held_bytes += len;
    return true;
}

void cvx_sync_receive(cvx_sync_client_t *c, const char *msg, size_t len) {
    cvx_sync_t *s = c->s;
    /* Decoded before taking the engine's lock: a client's megabyte message
     * must not hold up every other client's results meanwhile. */
    cvx__sync_msg_t m;
    cvx__sync_decode(msg, len, &m);
    pthread_mutex_lock(&s->mu);
    /* Once told to go (a protocol error, too slow), nothing more it sends
     * is acted on: frames already read may still arrive. */
    bool kept = false;
    if (cvx__sync_closing(c)) goto out;
    /* Convex applies a client's messages in order: what follows an
     * Authenticate runs as its identity, so it waits for the check. */
    if (c->authenticating) kept = hold(c, &m, len);
    else handle(s, c, &m);
    /* Starts the runs this message created and looks at this client: the
     * others are woken by their own runs and commits. */
    cvx__sync_pump(s);
out:
    pthread_mutex_unlock(&s->mu);
    if (!kept) msg_dispose(&m);
}

void cvx_sync_expire(cvx_sync_t *s, int64_t now) {
    pthread_mutex_lock(&s->mu);
    for (cvx_sync_client_t *c = s->clients; c; c = c->next) {
        if (!c->expires || now < c->expires || cvx__sync_closing(c)) continue;
        /* The official client answers by fetching a fresh token and
         * reconnecting with it; the socket closes so that no query or
         * call of a client that does not goes on as the expired user. */
        cvx_buf_t b = {0};
        cvx__sync_put_auth_error(&b, "the auth token expired: the client must authenticate again", c->auth_base, false);
        cvx__sync_enqueue(c, &b);
        c->expires = 0;
        if (!c->close_reason[0]) snprintf(c->close_reason, sizeof c->close_reason, "the auth token expired");
        s->hooks.wake(s->hooks.ctx, c, c->conn);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- lifetime ---------------------------------------------------------------------- */

int cvx_sync_new(cvx_runtime_t *rt, const cvx_sync_hooks_t *hooks, const cvx_sync_config_t *cfg, cvx_sync_t **out,
                 cvx_err_t *err) {
    *out = NULL;
    cvx_sync_t *s = cvx_calloc(1, sizeof *s);
    if (!s) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (cvx__sync_subs_init(s)) {
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
        s->seed = cvx__sync_mix64((uint64_t)(uintptr_t)s ^ (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 32));
    }
    s->latest_ts = cvx_store_latest_ts(cvx_runtime_store(rt));
    s->horizon = s->latest_ts;
    s->gen = cvx_runtime_generation(rt);
    s->listener = cvx_store_listen(cvx_runtime_store(rt), cvx__sync_on_commit, s);
    if (s->listener < 0) {
        pthread_mutex_destroy(&s->mu);
        cvx__sync_subs_free(s);
        cvx_free(s);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    *out = s;
    return CVX_OK;
}

void cvx_sync_free(cvx_sync_t *s) {
    if (!s) return;
    cvx_store_unlisten(cvx_runtime_store(s->rt), s->listener);
    /* Answers the runtime still holds for durability reach their clients
     * (closed ones drop them: a client re-sends its unanswered mutations,
     * and the request record answers) before the clients go. */
    cvx_exec_drain(s->rt);
    while (s->clients) cvx_sync_disconnect(s->clients);
    cvx__sync_subs_free(s);
    pthread_mutex_destroy(&s->mu);
    cvx_free(s);
}

cvx_sync_client_t *cvx_sync_connect(cvx_sync_t *s, void *conn) {
    cvx_sync_client_t *c = cvx_calloc(1, sizeof *c);
    if (!c) return NULL;
    atomic_init(&c->refs, 1);
    c->s = s;
    c->conn = conn;
    pthread_mutex_lock(&s->mu);
    c->qmap.seed = c->rmap.seed = cvx__sync_mix64(s->seed ^ (uint64_t)(uintptr_t)c);
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
    c->closed = true;
    cvx__sync_forget_client(s, c);
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
