/* How a call's answer leaves: once, when it may.
 *
 * An answer may be shown only when what it says survives a crash: a
 * mutation's commit is durable, and a failed mutation's error (which may
 * quote what it read) waits for the snapshot it read. cvx_exec_call holds
 * its thread for that. cvx_exec_call_then does not: the mutation's commit
 * is written, its answer parked here, and the worker goes on to the next
 * call, whose commit is written while the first one's fsync runs and is
 * made durable by the next. The store's durability listener (its sync
 * thread, after each fsync) moves the answers it settled to this
 * runtime's completer thread, which hands each to its `done`, in the order
 * the calls finished; one whose commit never becomes durable gets that
 * I/O error instead, since what it would have said may not be true after
 * a restart.
 *
 * No lost wake-up: an answer is parked and checked under one mutex, and
 * the store publishes a durable ts before it calls its listeners, so a
 * check that comes too early is followed by a listener call that sees the
 * answer parked. */
#include "exec/exec_int.h"

#include <pthread.h>
#include <string.h>

typedef struct parked {
    struct parked *next;
    cvx_response_t resp;
    uint64_t wait_ts;
    cvx_call_done_fn done;
    void *ctx;
    bool failed; /* its wait ended in err */
    cvx_err_t err;
} parked_t;

/* A FIFO list: answers leave in the order their calls finished. */
typedef struct {
    parked_t *head, **tail;
} plist_t;

static void plist_push(plist_t *l, parked_t *p) {
    p->next = NULL;
    *l->tail = p;
    l->tail = &p->next;
}

struct cvx__completions {
    cvx_store_t *store;
    int listener;
    pthread_t thread; /* the completer: runs the `done` of ready answers */
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* to the completer: `ready` is not empty, or stop */
    pthread_cond_t drained; /* signalled when `held` drops to 0 */
    plist_t parked;         /* waiting for their ts */
    plist_t ready;          /* settled, for the completer */
    size_t held;            /* parked, ready, or being handed over */
    bool stop;
};

/* Hands the answer over; err: what it waited for will never be durable. */
static void finish(cvx_response_t *resp, const cvx_err_t *err, cvx_call_done_fn done, void *ctx) {
    if (err) cvx__response_set_not_durable(resp, err);
    done(ctx, resp);
    cvx_response_free(resp);
}

/* May an answer waiting for ts go? Sets *failed (and err) when ts will
 * never be durable: then it goes with that error. */
static bool settled(cvx__completions_t *c, uint64_t ts, bool *failed, cvx_err_t *err) {
    bool ready = false;
    *failed = cvx_store_check_durable(c->store, ts, &ready, err) != CVX_OK;
    return *failed || ready;
}

/* The store's durability listener: on its sync thread, after a fsync, with
 * the store's listener lock held. It only moves settled answers to the
 * completer: a `done` shapes JSON, logs and takes its owner's locks, and
 * the next fsync must not wait for that. */
static void on_durable(void *ctx) {
    cvx__completions_t *c = ctx;
    bool any = false;
    pthread_mutex_lock(&c->mu);
    plist_t keep = {NULL, &keep.head};
    for (parked_t *p = c->parked.head, *next; p; p = next) {
        next = p->next;
        if (settled(c, p->wait_ts, &p->failed, &p->err)) {
            plist_push(&c->ready, p);
            any = true;
        } else {
            plist_push(&keep, p);
        }
    }
    c->parked = keep.head ? keep : (plist_t){NULL, &c->parked.head};
    if (any) pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
}

static void *completer_main(void *arg) {
    cvx__completions_t *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->ready.head && !c->stop) pthread_cond_wait(&c->wake, &c->mu);
        if (!c->ready.head) break; /* stop, and nothing left */
        parked_t *batch = c->ready.head;
        c->ready = (plist_t){NULL, &c->ready.head};
        /* Outside the lock: a worker parking an answer meanwhile must not
         * wait for `done`. */
        pthread_mutex_unlock(&c->mu);
        size_t n = 0;
        while (batch) {
            parked_t *p = batch;
            batch = p->next;
            finish(&p->resp, p->failed ? &p->err : NULL, p->done, p->ctx);
            cvx_free(p);
            n++;
        }
        pthread_mutex_lock(&c->mu);
        c->held -= n;
        if (c->held == 0) pthread_cond_broadcast(&c->drained);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int cvx__completions_new(cvx_store_t *store, cvx__completions_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx__completions_t *c = cvx_calloc(1, sizeof *c);
    if (!c) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    c->store = store;
    c->parked.tail = &c->parked.head;
    c->ready.tail = &c->ready.head;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    pthread_cond_init(&c->drained, NULL);
    if (pthread_create(&c->thread, NULL, completer_main, c) != 0) {
        cvx__completions_free(c);
        return cvx_err_set(err, CVX_E_IO, "cannot start the completion thread");
    }
    c->thread_started = true;
    c->listener = cvx_store_listen_durable(store, on_durable, c);
    if (c->listener < 0) {
        cvx__completions_free(c);
        return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    }
    *out = c;
    return CVX_OK;
}

void cvx__completions_drain(cvx__completions_t *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    while (c->held) pthread_cond_wait(&c->drained, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void cvx__completions_free(cvx__completions_t *c) {
    if (!c) return;
    if (c->thread_started) {
        cvx__completions_drain(c);
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    if (c->listener > 0) cvx_store_unlisten_durable(c->store, c->listener);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->drained);
    cvx_free(c);
}

/* Takes resp's contents (resp is left empty). */
static void complete(cvx__completions_t *c, cvx_response_t *resp, uint64_t wait_ts, cvx_call_done_fn done, void *ctx) {
    if (!wait_ts || !c) {
        finish(resp, NULL, done, ctx);
        return;
    }
    parked_t *p = cvx_calloc(1, sizeof *p);
    if (!p) {
        /* Out of memory: wait here rather than answer early. */
        cvx_err_t err;
        bool failed = cvx_store_wait_durable(c->store, wait_ts, &err) != CVX_OK;
        finish(resp, failed ? &err : NULL, done, ctx);
        return;
    }
    pthread_mutex_lock(&c->mu);
    if (settled(c, wait_ts, &p->failed, &p->err)) {
        pthread_mutex_unlock(&c->mu);
        finish(resp, p->failed ? &p->err : NULL, done, ctx);
        cvx_free(p);
        return;
    }
    p->resp = *resp;
    memset(resp, 0, sizeof *resp);
    p->wait_ts = wait_ts;
    p->done = done;
    p->ctx = ctx;
    plist_push(&c->parked, p);
    c->held++;
    pthread_mutex_unlock(&c->mu);
}

void cvx_exec_call_then(cvx_runtime_t *rt, const cvx_request_t *req, cvx_call_done_fn done, void *ctx) {
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    uint64_t wait_ts = 0;
    cvx__exec_call_deferred(rt, req, &resp, &wait_ts);
    complete(cvx__runtime_completions(rt), &resp, wait_ts, done, ctx);
}

void cvx_exec_drain(cvx_runtime_t *rt) { cvx__completions_drain(cvx__runtime_completions(rt)); }
