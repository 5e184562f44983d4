/* Scheduled functions and crons.
 *
 * Jobs are documents of _scheduled_functions, written by the functions
 * that schedule them in the same transaction as their other writes: no
 * commit, no job; no job lost on a crash. One thread runs due jobs:
 *
 *  - a mutation runs with its job's state change (pending -> success) in
 *    its own transaction, so it happens exactly once: a retry after a crash
 *    finds the job already done, a concurrent cancel makes it conflict;
 *  - an action is marked inProgress first, then success or failed: at most
 *    once (after a crash an inProgress job is marked failed, not re-run).
 *
 * Crons keep their last due time in _cron_jobs; scheduling the next run
 * and advancing that time commit together, so each due time produces one
 * job, across restarts too. */
#include "exec/exec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct cvx_scheduler {
    cvx_runtime_t *rt;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, wake;
    int listener;
    uint64_t jobs_index; /* by_id of _scheduled_functions: commits there wake us */
    atomic_uint_fast64_t runs, failures, cron_jobs;
};

static uint64_t now_ms(void) { return cvx_now_ns() / 1000000; }

/* ---- small helpers over the store --------------------------------------------- */

typedef struct {
    cvx_arena_t *a;
    const char *json; /* a request built as JSON text */
    const char *id;
    const char *from_state; /* required current state.kind */
    bool skipped;           /* the job was not in from_state */
} op_t;

static int parse_into(cvx_arena_t *a, const char *json, cvx_value_t **out, cvx_err_t *err) {
    return cvx_json_parse(a, json, strlen(json), out, err);
}

/* Reads a document's state.kind in txn (into buf). */
static int job_state(cvx_txn_t *txn, cvx_arena_t *a, const char *id, const char **kind, cvx_err_t *err) {
    cvx_buf_t doc = {0};
    int rc = cvx_txn_get(txn, id, strlen(id), &doc, err);
    cvx_value_t *v = NULL;
    *kind = NULL;
    if (!rc) rc = cvx_json_parse(a, doc.data ? doc.data : "null", doc.len ? doc.len : 4, &v, err);
    if (!rc && v->type == CVX_T_OBJECT) {
        const cvx_value_t *st = cvx_obj_get_cstr(v, "state");
        const cvx_value_t *k = st && st->type == CVX_T_OBJECT ? cvx_obj_get_cstr(st, "kind") : NULL;
        if (k && k->type == CVX_T_STRING) *kind = k->u.str.ptr;
    }
    cvx_buf_free(&doc);
    return rc;
}

/* Patches job `id` with op->json if its state is op->from_state. */
static int op_transition(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    op_t *op = arg;
    cvx_arena_reset(op->a);
    const char *kind;
    int rc = job_state(txn, op->a, op->id, &kind, err);
    if (rc) return rc;
    op->skipped = !kind || strcmp(kind, op->from_state) != 0;
    if (op->skipped) return CVX_OK;
    cvx_value_t *patch;
    rc = parse_into(op->a, op->json, &patch, err);
    if (!rc) rc = cvx_txn_system_patch(txn, op->id, strlen(op->id), patch, err);
    return rc;
}

static int transition(cvx_scheduler_t *s, const char *id, const char *from, const char *to, const char *error,
                      bool *skipped) {
    cvx_buf_t json = {0};
    cvx_buf_printf(&json, "{\"state\":{\"kind\":\"%s\"", to);
    if (error) {
        cvx_buf_append_str(&json, ",\"error\":");
        cvx_buf_append_json_string(&json, error, strlen(error));
    }
    cvx_buf_append_char(&json, '}');
    if (strcmp(to, "inProgress") != 0) cvx_buf_printf(&json, ",\"completedTime\":%llu", (unsigned long long)now_ms());
    cvx_buf_append_char(&json, '}');
    op_t op = {cvx_arena_new(4096), json.data, id, from, false};
    cvx_buf_t out = {0};
    cvx_err_t err;
    int rc = op.a && json.data ? cvx_exec_with_txn(s->rt, op_transition, &op, &out, &err) : CVX_E_NOMEM;
    if (skipped) *skipped = op.skipped;
    cvx_arena_free(op.a);
    cvx_buf_free(&out);
    cvx_buf_free(&json);
    return rc;
}

/* Runs a query on a system index and calls fn for each document. */
static int each_doc(cvx_scheduler_t *s, const cvx_query_t *q, void (*fn)(cvx_scheduler_t *, const cvx_value_t *, void *),
                    void *ctx) {
    cvx_txn_t *txn = NULL;
    cvx_err_t err;
    cvx_buf_t page = {0};
    int rc = cvx_txn_begin(cvx_runtime_store(s->rt), CVX_TXN_READ, 0, &txn, &err);
    if (!rc) rc = cvx_txn_query(txn, q, &page, &err);
    cvx_txn_abort(txn);
    cvx_arena_t *a = rc ? NULL : cvx_arena_new(8192);
    cvx_value_t *v = NULL;
    if (a && cvx_json_parse(a, page.data, page.len, &v, &err) == CVX_OK) {
        const cvx_value_t *docs = cvx_obj_get_cstr(v, "page");
        for (size_t i = 0; docs && docs->type == CVX_T_ARRAY && i < docs->u.arr.len; i++) fn(s, docs->u.arr.items[i], ctx);
    }
    cvx_arena_free(a);
    cvx_buf_free(&page);
    return rc;
}

/* ---- running jobs ---------------------------------------------------------------- */

typedef struct {
    const char *id;
    bool canceled;
} commit_guard_t;

/* Inside the job's mutation, just before it commits: the job must still be
 * pending, and becomes success in the same commit. */
static int mark_done_in_txn(void *ctx, cvx_txn_t *txn, cvx_err_t *err) {
    commit_guard_t *g = ctx;
    cvx_buf_t json = {0};
    cvx_buf_printf(&json, "{\"state\":{\"kind\":\"success\"},\"completedTime\":%llu}", (unsigned long long)now_ms());
    op_t op = {cvx_arena_new(4096), json.data, g->id, "pending", false};
    cvx_buf_t out = {0};
    int rc = op.a && json.data ? op_transition(txn, &op, &out, err) : cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    if (!rc && op.skipped) {
        g->canceled = true;
        rc = cvx_err_set(err, CVX_E_NOT_FOUND, "scheduled function %s is no longer pending", g->id);
    }
    cvx_arena_free(op.a);
    cvx_buf_free(&out);
    cvx_buf_free(&json);
    return rc;
}

static void run_job(cvx_scheduler_t *s, const cvx_value_t *job, void *ctx) {
    (void)ctx;
    const cvx_value_t *idv = cvx_obj_get_cstr(job, "_id"), *name = cvx_obj_get_cstr(job, "name");
    const cvx_value_t *args = cvx_obj_get_cstr(job, "args");
    if (!idv || idv->type != CVX_T_STRING || !name || name->type != CVX_T_STRING) return;
    const char *id = idv->u.str.ptr;
    const cvx_value_t *arg0 = args && args->type == CVX_T_ARRAY && args->u.arr.len ? args->u.arr.items[0] : NULL;
    cvx_buf_t aj = {0};
    if (arg0) cvx_json_write(&aj, arg0);
    else cvx_buf_append_str(&aj, "{}");

    cvx_app_t *app = cvx_runtime_app(s->rt);
    const cvx_fn_t *fn = app ? cvx_app_find(app, name->u.str.ptr, name->u.str.len) : NULL;
    cvx_kind_t kind = fn ? fn->kind : 0;
    cvx_app_release(app);
    atomic_fetch_add(&s->runs, 1);
    if (!fn || fn->http || kind == CVX_KIND_QUERY) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s %s cannot be scheduled: %s", fn ? "function" : "no function", name->u.str.ptr,
                 !fn ? "it is not deployed" : "only mutations and actions can be scheduled");
        transition(s, id, "pending", "failed", msg, NULL);
        atomic_fetch_add(&s->failures, 1);
        cvx_buf_free(&aj);
        return;
    }
    cvx_response_t resp;
    memset(&resp, 0, sizeof resp);
    cvx_request_t req = {.path = name->u.str.ptr,
                         .path_len = name->u.str.len,
                         .args_json = aj.data,
                         .args_len = aj.len,
                         .allow_internal = true,
                         .request_id = id};
    if (kind == CVX_KIND_MUTATION) {
        commit_guard_t g = {id, false};
        req.before_commit = mark_done_in_txn;
        req.before_commit_ctx = &g;
        int rc = cvx_exec_call(s->rt, &req, &resp);
        if (rc != CVX_OK && !g.canceled) {
            /* The mutation failed and wrote nothing: record why. */
            transition(s, id, "pending", "failed", resp.r.message.data ? resp.r.message.data : cvx_code_name(rc), NULL);
            atomic_fetch_add(&s->failures, 1);
        }
    } else {
        bool skipped = false;
        if (transition(s, id, "pending", "inProgress", NULL, &skipped) == CVX_OK && !skipped) {
            int rc = cvx_exec_call(s->rt, &req, &resp);
            transition(s, id, "inProgress", rc == CVX_OK ? "success" : "failed",
                       rc == CVX_OK ? NULL : (resp.r.message.data ? resp.r.message.data : cvx_code_name(rc)), NULL);
            if (rc != CVX_OK) atomic_fetch_add(&s->failures, 1);
        }
    }
    cvx_response_free(&resp);
    cvx_buf_free(&aj);
}

static void mark_interrupted(cvx_scheduler_t *s, const cvx_value_t *job, void *ctx) {
    (void)ctx;
    const cvx_value_t *idv = cvx_obj_get_cstr(job, "_id");
    if (idv && idv->type == CVX_T_STRING)
        transition(s, idv->u.str.ptr, "inProgress", "failed", "the server stopped while this action was running", NULL);
}

/* Queries jobs in `state` with scheduledTime <= until, oldest first. */
static int jobs_query(cvx_scheduler_t *s, const char *state, uint64_t until, int64_t limit,
                      void (*fn)(cvx_scheduler_t *, const cvx_value_t *, void *), void *ctx) {
    cvx_arena_t *a = cvx_arena_new(1024);
    if (!a) return CVX_E_NOMEM;
    cvx_range_t r[2] = {{"state.kind", CVX_OP_EQ, cvx_string(a, state, strlen(state))},
                        {"scheduledTime", CVX_OP_LTE, cvx_float64(a, (double)until)}};
    cvx_query_t q = {.table = CVX_SCHEDULED_TABLE, .index = "by_state_time", .range = r, .nrange = 2, .limit = limit};
    int rc = r[0].value && r[1].value ? each_doc(s, &q, fn, ctx) : CVX_E_NOMEM;
    cvx_arena_free(a);
    return rc;
}

static void take_time(cvx_scheduler_t *s, const cvx_value_t *job, void *ctx) {
    (void)s;
    const cvx_value_t *t = cvx_obj_get_cstr(job, "scheduledTime");
    if (t && t->type == CVX_T_FLOAT64) *(double *)ctx = t->u.f;
}

/* ---- crons ------------------------------------------------------------------------ */

typedef struct {
    const cvx_cron_t *cron;
    uint64_t now;
    uint64_t next_due; /* out: when this cron is due next (0 unknown) */
    bool scheduled;
} cron_op_t;

static uint64_t advance(const cvx_cron_t *c, const cvx_cron_spec_t *spec, uint64_t from) {
    return c->every_ms ? from + c->every_ms : cvx_cron_next(spec, from);
}

/* In one transaction: read the cron's last due time; if it is due, insert
 * the job and advance the time (skipping runs missed while down). */
static int op_cron(cvx_txn_t *txn, void *arg, cvx_buf_t *out, cvx_err_t *err) {
    cron_op_t *co = arg;
    const cvx_cron_t *c = co->cron;
    co->scheduled = false;
    co->next_due = 0;
    cvx_cron_spec_t spec;
    if (!c->every_ms && cvx_cron_parse(c->cron, &spec, err)) return CVX_OK; /* validated at deploy */
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    cvx_range_t r[1] = {{"name", CVX_OP_EQ, cvx_string(a, c->name, strlen(c->name))}};
    cvx_query_t q = {.table = CVX_CRONS_TABLE, .index = "by_name", .range = r, .nrange = 1, .limit = 1};
    cvx_buf_t page = {0}, json = {0};
    int rc = cvx_txn_query(txn, &q, &page, err);
    cvx_value_t *v = NULL;
    if (!rc) rc = cvx_json_parse(a, page.data, page.len, &v, err);
    const cvx_value_t *docs = rc ? NULL : cvx_obj_get_cstr(v, "page");
    const cvx_value_t *doc = docs && docs->type == CVX_T_ARRAY && docs->u.arr.len ? docs->u.arr.items[0] : NULL;
    if (!rc && !doc) {
        /* First sight of this cron: it starts counting now. */
        cvx_buf_printf(&json, "{\"name\":");
        cvx_buf_append_json_string(&json, c->name, strlen(c->name));
        cvx_buf_printf(&json, ",\"lastDue\":%llu}", (unsigned long long)co->now);
        cvx_value_t *nd;
        cvx_buf_t id = {0};
        rc = parse_into(a, json.data, &nd, err);
        if (!rc) rc = cvx_txn_system_insert(txn, CVX_CRONS_TABLE, nd, &id, err);
        cvx_buf_free(&id);
        co->next_due = advance(c, &spec, co->now);
    } else if (!rc) {
        const cvx_value_t *last = cvx_obj_get_cstr(doc, "lastDue");
        const cvx_value_t *idv = cvx_obj_get_cstr(doc, "_id");
        uint64_t due = advance(c, &spec, last && last->type == CVX_T_FLOAT64 ? (uint64_t)last->u.f : co->now);
        if (due && due <= co->now && idv && idv->type == CVX_T_STRING) {
            /* Missed runs collapse into one: the latest due time. */
            for (uint64_t n = advance(c, &spec, due); n && n <= co->now; n = advance(c, &spec, due)) due = n;
            cvx_buf_printf(&json, "{\"name\":");
            cvx_buf_append_json_string(&json, c->path, strlen(c->path));
            cvx_buf_printf(&json, ",\"args\":[%s],\"scheduledTime\":%llu,\"state\":{\"kind\":\"pending\"}}", c->args_json,
                           (unsigned long long)due);
            cvx_value_t *jobdoc, *patch;
            cvx_buf_t id = {0}, pj = {0};
            cvx_buf_printf(&pj, "{\"lastDue\":%llu}", (unsigned long long)due);
            rc = parse_into(a, json.data, &jobdoc, err);
            if (!rc) rc = cvx_txn_system_insert(txn, CVX_SCHEDULED_TABLE, jobdoc, &id, err);
            if (!rc) rc = parse_into(a, pj.data, &patch, err);
            if (!rc) rc = cvx_txn_system_patch(txn, idv->u.str.ptr, idv->u.str.len, patch, err);
            cvx_buf_free(&id);
            cvx_buf_free(&pj);
            co->scheduled = rc == CVX_OK;
            co->next_due = advance(c, &spec, due);
        } else {
            co->next_due = due;
        }
    }
    cvx_buf_free(&page);
    cvx_buf_free(&json);
    cvx_arena_free(a);
    (void)out;
    return rc;
}

/* Schedules due crons; returns the earliest next due time (0 = none). */
static uint64_t run_crons(cvx_scheduler_t *s, uint64_t now) {
    cvx_app_t *app = cvx_runtime_app(s->rt);
    if (!app) return 0;
    const cvx_cron_t *crons;
    size_t n = cvx_app_crons(app, &crons);
    uint64_t next = 0;
    for (size_t i = 0; i < n; i++) {
        cron_op_t co = {&crons[i], now, 0, false};
        cvx_buf_t out = {0};
        cvx_err_t err;
        if (cvx_exec_with_txn(s->rt, op_cron, &co, &out, &err) == CVX_OK && co.scheduled)
            atomic_fetch_add(&s->cron_jobs, 1);
        cvx_buf_free(&out);
        if (co.next_due && (!next || co.next_due < next)) next = co.next_due;
    }
    cvx_app_release(app);
    return next;
}

/* ---- the thread ------------------------------------------------------------------- */

static void on_commit(void *ctx, const cvx_commit_info_t *c) {
    cvx_scheduler_t *s = ctx;
    for (size_t i = 0; i < c->nkeys; i++) {
        if (c->keys[i].index_id != s->jobs_index) continue;
        pthread_mutex_lock(&s->mu);
        s->wake = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return;
    }
}

static void *scheduler_main(void *arg) {
    cvx_scheduler_t *s = arg;
    jobs_query(s, "inProgress", UINT64_MAX / 2, 1000, mark_interrupted, NULL);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        s->wake = false;
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        uint64_t now = now_ms();
        uint64_t next_cron = run_crons(s, now);
        /* Due jobs, a batch at a time (a job may schedule more). */
        jobs_query(s, "pending", now, 32, run_job, NULL);
        double next_job = 0;
        jobs_query(s, "pending", UINT64_MAX / 2, 1, take_time, &next_job);
        uint64_t wait_until = now + 1000;
        if (next_job > 0 && (uint64_t)next_job < wait_until) wait_until = (uint64_t)next_job;
        if (next_cron && next_cron < wait_until) wait_until = next_cron;
        pthread_mutex_lock(&s->mu);
        if (!s->stop && !s->wake && wait_until > now_ms()) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait_ms = wait_until - now_ms();
            ts.tv_sec += (time_t)(wait_ms / 1000);
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

int cvx_scheduler_start(cvx_runtime_t *rt, cvx_scheduler_t **out, cvx_err_t *err) {
    *out = NULL;
    cvx_store_t *store = cvx_runtime_store(rt);
    const cvx_table_def_t *tables;
    size_t n = cvx_abi_system_tables(&tables);
    int rc = cvx_store_ensure_system_tables(store, tables, n, err);
    if (rc) return rc;
    cvx_scheduler_t *s = cvx_calloc(1, sizeof *s);
    if (!s) return cvx_err_set(err, CVX_E_NOMEM, "out of memory");
    s->rt = rt;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (cvx_store_index_id(store, CVX_SCHEDULED_TABLE, CVX_INDEX_BY_ID, &s->jobs_index) != CVX_OK) s->jobs_index = UINT64_MAX;
    s->listener = cvx_store_listen(store, on_commit, s);
    if (s->listener < 0 || pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        if (s->listener >= 0) cvx_store_unlisten(store, s->listener);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        cvx_free(s);
        return cvx_err_set(err, CVX_E_INTERNAL, "cannot start the scheduler");
    }
    *out = s;
    return CVX_OK;
}

void cvx_scheduler_stop(cvx_scheduler_t *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    cvx_store_unlisten(cvx_runtime_store(s->rt), s->listener);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    cvx_free(s);
}

void cvx_scheduler_stats(cvx_scheduler_t *s, cvx_scheduler_stats_t *out) {
    out->runs = atomic_load(&s->runs);
    out->failures = atomic_load(&s->failures);
    out->cron_jobs = atomic_load(&s->cron_jobs);
}
