/* The sync engine over a real runtime and store, driven with protocol
 * messages: a Mutation's response waits in the engine (not in a worker)
 * until its commit is durable, is followed by a Transition at its ts, and
 * becomes a failure if the fsync fails. The store's sync hooks play the
 * slow and the failing disk; the engine's host hooks are plain threads. */
#include "support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "store/store_int.h"
#include "sync/sync.h"

typedef struct {
    tu_env_t env;
    cvx_sync_t *sync;
    cvx_sync_client_t *c;
    atomic_int tasks; /* submitted, not finished */
} fx_t;

typedef struct {
    fx_t *f;
    void (*fn)(void *);
    void *arg;
} task_t;

static void *task_main(void *p) {
    task_t *t = p;
    t->fn(t->arg);
    atomic_fetch_sub(&t->f->tasks, 1);
    free(t);
    return NULL;
}

static void submit(void *ctx, void (*fn)(void *), void *arg) {
    fx_t *f = ctx;
    task_t *t = malloc(sizeof *t);
    *t = (task_t){f, fn, arg};
    atomic_fetch_add(&f->tasks, 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, task_main, t), 0);
    pthread_detach(th);
}

static void wake(void *ctx, cvx_sync_client_t *c, void *conn) {
    (void)ctx;
    (void)c;
    (void)conn;
}

static void durable(void *ctx) { cvx_sync_durable(ctx); }

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    tu_env_open(&f->env, tu_guest_wasm("examples/users"), NULL);
    cvx_sync_hooks_t hooks = {.ctx = f, .submit = submit, .wake = wake};
    cvx_err_t err;
    if (cvx_sync_new(f->env.rt, &hooks, NULL, &f->sync, &err)) fail_msg("sync: %s", err.msg);
    cvx_store_on_durable(f->env.store, durable, f->sync);
    f->c = cvx_sync_connect(f->sync, NULL);
    const char *hello = "{\"type\":\"Connect\",\"sessionId\":\"s1\",\"connectionCount\":0}";
    cvx_sync_receive(f->c, hello, strlen(hello));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    cvx__store_hold_sync(false);
    cvx__store_fail_sync(0);
    while (atomic_load(&f->tasks)) usleep(1000);
    cvx_store_on_durable(f->env.store, NULL, NULL);
    cvx_sync_disconnect(f->c);
    cvx_sync_free(f->sync);
    tu_env_close(&f->env, true);
    free(f);
    return 0;
}

/* Every message queued for the client so far, joined by newlines. */
static char *drain(fx_t *f) {
    char **msgs;
    size_t *lens;
    size_t n = cvx_sync_drain(f->c, &msgs, &lens);
    cvx_buf_t all = {0};
    cvx_buf_append_str(&all, "");
    for (size_t i = 0; i < n; i++) {
        cvx_buf_append(&all, msgs[i], lens[i]);
        cvx_buf_append_char(&all, '\n');
    }
    cvx_sync_free_messages(msgs, lens, n);
    return cvx_buf_detach(&all, NULL);
}

/* Waits (up to 10 s) until the client has been sent something containing
 * `needle`; returns everything sent meanwhile. */
static char *wait_for(fx_t *f, const char *needle) {
    cvx_buf_t all = {0};
    cvx_buf_append_str(&all, "");
    for (int i = 0; i < 10000; i++) {
        char *m = drain(f);
        cvx_buf_append_str(&all, m);
        free(m);
        if (strstr(all.data, needle)) return cvx_buf_detach(&all, NULL);
        usleep(1000);
    }
    fail_msg("no \"%s\" in: %s", needle, all.data);
    return NULL;
}

/* A protocol timestamp: a u64, little-endian, in base64. */
static uint64_t ts_of(const cvx_value_t *v) {
    if (!v || v->type != CVX_T_STRING) fail_msg("a timestamp is not a string");
    cvx_buf_t raw = {0};
    cvx_err_t err;
    if (cvx_base64_decode(&raw, v->u.str.ptr, v->u.str.len, &err)) fail_msg("timestamp %s: %s", v->u.str.ptr, err.msg);
    assert_int_equal(raw.len, 8);
    uint64_t ts = 0;
    for (int i = 7; i >= 0; i--) ts = ts << 8 | (uint8_t)raw.data[i];
    cvx_buf_free(&raw);
    return ts;
}

static void mutation(fx_t *f, int id, const char *name) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "{\"type\":\"Mutation\",\"requestId\":%d,\"udfPath\":\"users:create_user\",\"args\":[{\"name\":\"%s\","
             "\"email\":\"%s@x\"}]}",
             id, name, name);
    cvx_sync_receive(f->c, msg, strlen(msg));
}

static void test_response_waits_for_fsync(void **state) {
    fx_t *f = *state;
    cvx__store_hold_sync(true);
    mutation(f, 1, "ada");
    /* The mutation runs and its group is written; the fsync is held, and
     * the worker that ran it is done: none waits for the disk. */
    for (int i = 0; i < 10000 && atomic_load(&f->tasks); i++) usleep(1000);
    assert_int_equal(atomic_load(&f->tasks), 0);
    usleep(100 * 1000);
    char *early = drain(f);
    if (strstr(early, "MutationResponse")) fail_msg("answered before the fsync: %s", early);
    free(early);
    cvx__store_hold_sync(false);
    char *sent = wait_for(f, "\"type\":\"Transition\"");
    tu_assert_contains(sent, "\"type\":\"MutationResponse\",\"requestId\":1,\"success\":true");
    /* The Transition the client resolves the mutation on comes after it,
     * and reaches its commit: the client shows the mutation's effects only
     * from a Transition whose end is at or past the response's ts. */
    assert_true(strstr(sent, "MutationResponse") < strstr(sent, "\"type\":\"Transition\""));
    cvx_arena_t *a = cvx_arena_new(4096);
    uint64_t mutation_ts = 0, transition_ts = 0;
    bool answered = false, resolved = false;
    for (char *line = sent, *nl; !resolved && (nl = strchr(line, '\n')); line = nl + 1) {
        cvx_value_t *m;
        cvx_err_t err;
        if (cvx_json_parse(a, line, (size_t)(nl - line), &m, &err))
            fail_msg("%s: %.*s", err.msg, (int)(nl - line), line);
        const char *type = cvx_obj_get_cstr(m, "type")->u.str.ptr;
        if (strcmp(type, "MutationResponse") == 0) {
            mutation_ts = ts_of(cvx_obj_get_cstr(m, "ts"));
            answered = true;
        } else if (answered && strcmp(type, "Transition") == 0) {
            transition_ts = ts_of(cvx_obj_get_path(m, "endVersion.ts", strlen("endVersion.ts")));
            resolved = true;
        }
    }
    assert_true(resolved);
    assert_true(mutation_ts > 0);
    if (transition_ts < mutation_ts)
        fail_msg("Transition ends at ts %llu, before the mutation's %llu", (unsigned long long)transition_ts,
                 (unsigned long long)mutation_ts);
    cvx_arena_free(a);
    free(sent);
}

static void test_failed_fsync_fails_response(void **state) {
    fx_t *f = *state;
    cvx__store_fail_sync(1);
    mutation(f, 7, "bo");
    char *sent = wait_for(f, "MutationResponse");
    tu_assert_contains(sent, "\"requestId\":7,\"success\":false");
    tu_assert_contains(sent, "could not be made durable");
    tu_assert_contains(sent, "\"ts\":null");
    free(sent);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_response_waits_for_fsync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_fails_response, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
