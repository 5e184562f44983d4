/* Test fault injection around the backend's write and sync.
 *
 * Every backend write and sync of the commit path (commit.c) and of schema
 * changes (schema.c) goes through cvx__store_backend_write and
 * cvx__store_backend_sync, so a test can make the nth one fail as a full
 * disk or an fsync reporting EIO would, or hold syncs back as a slow disk
 * would. The hooks are process-wide: they act on every open store. */
#include "store/store_int.h"

static _Atomic uint64_t fail_commit_at;
static _Atomic bool fail_commit_sticky;
static _Atomic uint64_t commit_attempts;
static _Atomic uint64_t fail_sync_at;
static _Atomic uint64_t sync_attempts;

void cvx__store_fail_commit(uint64_t nth, bool sticky) {
    atomic_store(&commit_attempts, 0);
    atomic_store(&fail_commit_sticky, sticky);
    atomic_store(&fail_commit_at, nth);
}

void cvx__store_fail_sync(uint64_t nth) {
    atomic_store(&sync_attempts, 0);
    atomic_store(&fail_sync_at, nth);
}

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static bool hold_syncs;

void cvx__store_hold_sync(bool hold) {
    pthread_mutex_lock(&hold_mu);
    hold_syncs = hold;
    pthread_cond_broadcast(&hold_cv);
    pthread_mutex_unlock(&hold_mu);
}

void cvx__store_checkpoint(cvx_store_t *s) {
    if (s->be->checkpoint) s->be->checkpoint(s->be_state);
}

/* A write fails before anything reaches the backend, as a full disk
 * would. */
int cvx__store_backend_write(cvx_store_t *s, const cvx__batch_t *const *b, size_t n, cvx_err_t *err) {
    uint64_t at = atomic_load(&fail_commit_at);
    if (at) {
        uint64_t k = atomic_fetch_add(&commit_attempts, 1) + 1;
        if (k == at || (k > at && atomic_load(&fail_commit_sticky)))
            return cvx_err_set(err, CVX_E_IO, "injected write failure (commit %llu)", (unsigned long long)k);
    }
    return s->be->write(s->be_state, b, n, err);
}

/* A sync fails without syncing, as an fsync reporting EIO would. */
int cvx__store_backend_sync(cvx_store_t *s, cvx_err_t *err) {
    pthread_mutex_lock(&hold_mu);
    while (hold_syncs) pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    uint64_t at = atomic_load(&fail_sync_at);
    if (at && atomic_fetch_add(&sync_attempts, 1) + 1 == at)
        return cvx_err_set(err, CVX_E_IO, "injected fsync failure");
    return s->be->sync(s->be_state, err);
}
