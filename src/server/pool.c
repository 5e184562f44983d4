/* The worker pool: threads that run jobs (function calls, deploys) off the
 * event loop and post each finished job back to it. */
#include "server/server_int.h"

static void *worker_main(void *arg) {
    cvx_server_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->jobs_mu);
        while (!s->jobs_head && !s->workers_stop) pthread_cond_wait(&s->jobs_cv, &s->jobs_mu);
        cvx__job_t *j = s->jobs_head;
        if (j) {
            s->jobs_head = j->next;
            if (!s->jobs_head) s->jobs_tail = NULL;
        }
        pthread_mutex_unlock(&s->jobs_mu);
        if (!j) return NULL; /* stopping and the queue is empty */
        if (j->task) {
            j->task(j->task_arg);
            cvx_free(j);
            continue;
        }
        j->run(j);
        cvx__job_done(s, j);
    }
}

int cvx__pool_start(cvx_server_t *s, cvx_err_t *err) {
    s->workers = cvx_calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    for (int i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
            s->nworkers = i;
            return cvx_err_set(err, CVX_E_INTERNAL, "cannot start worker thread %d", i);
        }
    }
    return CVX_OK;
}

void cvx__pool_push(cvx_server_t *s, cvx__job_t *j) {
    j->next = NULL;
    pthread_mutex_lock(&s->jobs_mu);
    if (s->jobs_tail) s->jobs_tail->next = j;
    else s->jobs_head = j;
    s->jobs_tail = j;
    pthread_cond_signal(&s->jobs_cv);
    pthread_mutex_unlock(&s->jobs_mu);
}

void cvx__pool_stop(cvx_server_t *s) {
    pthread_mutex_lock(&s->jobs_mu);
    s->workers_stop = true;
    pthread_cond_broadcast(&s->jobs_cv);
    pthread_mutex_unlock(&s->jobs_mu);
    for (int i = 0; i < s->nworkers; i++) pthread_join(s->workers[i], NULL);
    cvx_free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
}

void cvx__pool_task(void *server, void (*fn)(void *), void *arg) {
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
    cvx__pool_push(s, j);
}
