/* The worker pools: threads that run jobs (function calls, deploys,
 * subscription runs) off the event loop and post each finished job back
 * to it.
 *
 * Three lanes, each with its own queue and threads, so that one kind of
 * work cannot starve another: queries, mutations and everything else
 * short (CVX__LANE_CALLS); actions (CVX__LANE_ACTIONS); HTTP actions
 * (CVX__LANE_HTTP). Twenty CPU-bound actions once made a plain query wait
 * 65 s behind them in a single queue.
 *
 * A lane has `slots`, the number of its jobs running guest code at once.
 * The action lanes have more threads than slots: a job that blocks
 * outside the guest (an action waiting on fetch or sleeping) gives its
 * slot back for the wait through the blocking hook (cvx_blocking in util),
 * so slow remote servers hold threads, not slots. Each thread may hold a
 * guest instance, so the engine's instance pool is sized from the thread
 * count (cvx__pool_threads). */
#include "server/server_int.h"

#include <string.h>

/* Workers run this much below the event loop: on a saturated machine a
 * burst of heavy queries (32 subscriptions to 4 MiB results at once) left
 * the loop a tenth of a core and a cached query waiting 300-400 ms for
 * it; at +10 the loop's share keeps that under ~100 ms (bench/soak).
 * Where the kernel groups threads by cgroup or session (a systemd service,
 * autogroup), this orders only the process's own threads; elsewhere other
 * processes at nice 0 come before the workers too. */
#define WORKER_NICE 10

/* The blocking hook of a lane's threads: a slot is free while blocked. */
static void on_blocking(void *ctx, bool begin) {
    cvx__lane_t *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (begin) {
        l->busy--;
        pthread_cond_broadcast(&l->cv);
    } else {
        while (l->busy >= l->slots) pthread_cond_wait(&l->cv, &l->mu);
        l->busy++;
    }
    pthread_mutex_unlock(&l->mu);
}

static void *worker_main(void *arg) {
    cvx__lane_t *l = arg;
    cvx_server_t *s = l->srv;
    if (l->threads_n > l->slots) cvx_set_blocking_hook(on_blocking, l);
    cvx_thread_deprioritize(WORKER_NICE);
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (!l->stop && (!l->head || l->busy >= l->slots)) pthread_cond_wait(&l->cv, &l->mu);
        while (l->stop && l->head && l->busy >= l->slots) pthread_cond_wait(&l->cv, &l->mu);
        cvx__job_t *j = l->head;
        if (j) {
            l->head = j->next;
            if (!l->head) l->tail = NULL;
            l->busy++;
        }
        pthread_mutex_unlock(&l->mu);
        if (!j) return NULL; /* stopping and the queue is empty */
        if (j->task) {
            j->task(j->task_arg);
            cvx_free(j);
        } else {
            /* Read first: a job that posts itself may be gone once run returns. */
            bool posted_by_run = j->completes_itself;
            j->run(j);
            if (!posted_by_run) cvx__job_done(s, j);
        }
        pthread_mutex_lock(&l->mu);
        l->busy--;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
}

static int lane_start(cvx_server_t *s, cvx__lane_t *l, int slots, int threads, cvx_err_t *err) {
    l->srv = s;
    l->slots = slots;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->threads = cvx_calloc((size_t)threads, sizeof *l->threads);
    if (!l->threads) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    l->threads_n = threads; /* read by the threads: set before they start */
    /* Default (8 MiB) stacks: guest code runs on the worker's own stack,
     * up to Wasmtime's 2 MiB guest limit plus the host's frames. */
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
            l->threads_n = i;
            return cvx_err_set(err, CVX_E_INTERNAL, "cannot start worker thread %d", i);
        }
    }
    return CVX_OK;
}

static void lane_stop(cvx__lane_t *l) {
    if (!l->srv) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->threads_n; i++) pthread_join(l->threads[i], NULL);
    cvx_free(l->threads);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    memset(l, 0, sizeof *l);
}

static int action_slots(const cvx_server_t *s) { return s->cfg.action_workers > 0 ? s->cfg.action_workers : 8; }

/* Threads of each action lane: four per slot, so three quarters of them
 * may wait on fetch while the slots stay busy. */
static int action_threads(const cvx_server_t *s) { return 4 * action_slots(s); }

int cvx__pool_threads(const cvx_server_t *s) { return s->nworkers + 2 * action_threads(s); }

int cvx__pool_start(cvx_server_t *s, cvx_err_t *err) {
    int a = action_slots(s), at = action_threads(s);
    int rc = lane_start(s, &s->lanes[CVX__LANE_CALLS], s->nworkers, s->nworkers, err);
    if (!rc) rc = lane_start(s, &s->lanes[CVX__LANE_ACTIONS], a, at, err);
    if (!rc) rc = lane_start(s, &s->lanes[CVX__LANE_HTTP], a, at, err);
    return rc;
}

void cvx__pool_push(cvx_server_t *s, cvx__job_t *j) {
    cvx__lane_t *l = &s->lanes[j->lane];
    j->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->tail) l->tail->next = j;
    else l->head = j;
    l->tail = j;
    /* Lanes with more threads than slots also have threads waiting for a
     * slot back after a blocking wait on the same condition: wake all. */
    if (l->threads_n > l->slots) pthread_cond_broadcast(&l->cv);
    else if (l->busy < l->slots) pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Actions push work to the calls lane (a mutation's commit reruns
 * subscriptions), never the other way: the calls lane stops last. */
void cvx__pool_stop(cvx_server_t *s) {
    for (int i = CVX__LANES - 1; i >= 0; i--) lane_stop(&s->lanes[i]);
}

void cvx__pool_task(void *server, cvx_kind_t kind, void (*fn)(void *), void *arg) {
    cvx_server_t *s = server;
    cvx__job_t *j = cvx_calloc(1, sizeof *j);
    if (!j) {
        /* Out of memory: run it here rather than lose it. The hook may be
         * called with the sync lock held, so this is a last resort. */
        fn(arg);
        return;
    }
    j->srv = s;
    j->task = fn;
    j->task_arg = arg;
    j->lane = kind == CVX_KIND_ACTION ? CVX__LANE_ACTIONS : CVX__LANE_CALLS;
    cvx__pool_push(s, j);
}
