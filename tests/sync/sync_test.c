/* The sync engine over a real runtime and store, driven with protocol
 * messages: a Mutation's response waits in the runtime (not in a worker)
 * until its commit is durable, is followed by a Transition at its ts, and
 * becomes a failure if the fsync fails. The store's sync hooks play the
 * slow and the failing disk; the engine's host hooks are plain threads.
 *
 * Then the hardening: a client's query set costs O(1) per modification and
 * is bounded, malformed messages get exact errors (never stack bytes),
 * strings with NUL are refused, and all clients' unsent messages together
 * stay under a server-wide budget. */
#include "support/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
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

static void submit(void *ctx, cvx_kind_t kind, void (*fn)(void *), void *arg) {
    fx_t *f = ctx;
    (void)kind;
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

/* *state: NULL, or the cvx_sync_config_t to create the engine with
 * (cmocka_unit_test_prestate_setup_teardown). */
static int setup(void **state) {
    const cvx_sync_config_t *cfg = *state;
    fx_t *f = calloc(1, sizeof *f);
    tu_env_open(&f->env, tu_guest_wasm("examples/users"), NULL);
    cvx_sync_hooks_t hooks = {.ctx = f, .submit = submit, .wake = wake};
    cvx_err_t err;
    if (cvx_sync_new(f->env.rt, &hooks, cfg, &f->sync, &err)) fail_msg("sync: %s", err.msg);
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
    cvx_sync_disconnect(f->c);
    cvx_sync_free(f->sync);
    tu_env_close(&f->env, true);
    free(f);
    return 0;
}

/* Every message queued for client c so far, joined by newlines. */
static char *drain_client(cvx_sync_client_t *c) {
    char **msgs;
    size_t *lens;
    size_t n = cvx_sync_drain(c, SIZE_MAX, &msgs, &lens);
    cvx_buf_t all = {0};
    cvx_buf_append_str(&all, "");
    for (size_t i = 0; i < n; i++) {
        cvx_buf_append(&all, msgs[i], lens[i]);
        cvx_buf_append_char(&all, '\n');
    }
    cvx_sync_free_messages(msgs, lens, n);
    return cvx_buf_detach(&all, NULL);
}

static char *drain(fx_t *f) { return drain_client(f->c); }

/* Waits (up to 10 s) until client c has been sent something containing
 * `needle`; returns everything sent meanwhile. */
static char *wait_for_client(cvx_sync_client_t *c, const char *needle) {
    cvx_buf_t all = {0};
    cvx_buf_append_str(&all, "");
    for (int i = 0; i < 10000; i++) {
        char *m = drain_client(c);
        cvx_buf_append_str(&all, m);
        free(m);
        if (strstr(all.data, needle)) return cvx_buf_detach(&all, NULL);
        usleep(1000);
    }
    fail_msg("no \"%s\" in: %.2000s", needle, all.data);
    return NULL;
}

static char *wait_for(fx_t *f, const char *needle) { return wait_for_client(f->c, needle); }

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


/* ---- hardening ------------------------------------------------------------------ */

static void send_to(cvx_sync_client_t *c, const char *msg) { cvx_sync_receive(c, msg, strlen(msg)); }

static size_t count_of(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* A new client, past Connect. */
static cvx_sync_client_t *client(fx_t *f) {
    cvx_sync_client_t *c = cvx_sync_connect(f->sync, NULL);
    assert_non_null(c);
    send_to(c, "{\"type\":\"Connect\",\"sessionId\":\"s2\",\"connectionCount\":0}");
    return c;
}

/* Starts a ModifyQuerySet from version v to v + 1; add mods with add_op /
 * remove_op, then send it with end_mods. */
static void begin_mods(cvx_buf_t *b, int v) {
    cvx_buf_reset(b);
    cvx_buf_printf(b, "{\"type\":\"ModifyQuerySet\",\"baseVersion\":%d,\"newVersion\":%d,\"modifications\":[", v,
                   v + 1);
}

static void sep(cvx_buf_t *b) {
    if (b->data[b->len - 1] != '[') cvx_buf_append_char(b, ',');
}

static void add_op(cvx_buf_t *b, unsigned id) {
    sep(b);
    cvx_buf_printf(b, "{\"type\":\"Add\",\"queryId\":%u,\"udfPath\":\"users:count\",\"args\":[{}]}", id);
}

static void remove_op(cvx_buf_t *b, unsigned id) {
    sep(b);
    cvx_buf_printf(b, "{\"type\":\"Remove\",\"queryId\":%u}", id);
}

static void end_mods(cvx_buf_t *b, cvx_sync_client_t *c) {
    cvx_buf_append_str(b, "]}");
    assert_false(b->oom);
    cvx_sync_receive(c, b->data, b->len);
}

/* In the messages `sent` (one per line), the Transition to query set
 * version qs: counts[id] += 1 for each of its modifications of `type`.
 * Returns how many there were. */
static size_t transition_ids(const char *sent, unsigned qs, const char *type, uint8_t *counts, size_t nids) {
    cvx_arena_t *a = cvx_arena_new(1 << 16);
    size_t n = 0;
    bool seen = false;
    for (const char *line = sent, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        cvx_value_t *m;
        cvx_err_t err;
        if (cvx_json_parse(a, line, (size_t)(nl - line), &m, &err)) fail_msg("%s: %.200s", err.msg, line);
        if (strcmp(cvx_obj_get_cstr(m, "type")->u.str.ptr, "Transition") != 0) continue;
        const cvx_value_t *v = cvx_obj_get_path(m, "endVersion.querySet", strlen("endVersion.querySet"));
        if (!v || v->u.f != (double)qs) continue;
        assert_false(seen);
        seen = true;
        const cvx_value_t *mods = cvx_obj_get_cstr(m, "modifications");
        for (size_t i = 0; i < mods->u.arr.len; i++) {
            const cvx_value_t *mod = mods->u.arr.items[i];
            if (strcmp(cvx_obj_get_cstr(mod, "type")->u.str.ptr, type) != 0) continue;
            double id = cvx_obj_get_cstr(mod, "queryId")->u.f;
            if (id < 0 || id >= (double)nids) fail_msg("unexpected query id %.0f", id);
            counts[(size_t)id]++;
            n++;
        }
    }
    if (!seen) fail_msg("no Transition to query set %u", qs);
    cvx_arena_free(a);
    return n;
}

static char *wait_for_qs(cvx_sync_client_t *c, unsigned qs) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"endVersion\":{\"querySet\":%u,", qs);
    char *sent = wait_for_client(c, needle);
    if (strstr(sent, "FatalError")) fail_msg("%.500s", strstr(sent, "FatalError"));
    return sent;
}

/* Many ids added, removed (each removal moves the last entry into the
 * hole, so the id index must follow), re-added and removed again: every
 * Transition lists each change exactly once, and a Remove finds every id
 * still in the set. */
static void test_query_set_bookkeeping(void **state) {
    fx_t *f = *state;
    enum { N = 3000, NIDS = N + 100 };
    uint8_t *counts = calloc(NIDS, 1);
    cvx_buf_t b = {0};

    begin_mods(&b, 0);
    for (unsigned id = 0; id < N; id++) add_op(&b, id);
    end_mods(&b, f->c);
    char *sent = wait_for_qs(f->c, 1);
    assert_int_equal(transition_ids(sent, 1, "QueryUpdated", counts, NIDS), N);
    for (unsigned id = 0; id < N; id++) assert_int_equal(counts[id], 1);
    free(sent);

    /* Even ids out, 0 and 2 back in; N..N+99 in, N+1 out again. */
    begin_mods(&b, 1);
    for (unsigned id = 0; id < N; id += 2) remove_op(&b, id);
    add_op(&b, 0);
    add_op(&b, 2);
    for (unsigned id = N; id < N + 100; id++) add_op(&b, id);
    remove_op(&b, N + 1);
    end_mods(&b, f->c);
    sent = wait_for_qs(f->c, 2);
    memset(counts, 0, NIDS);
    /* 0 and 2 are replaced, not removed: their update says so. N+1 was
     * never sent: nothing to take back. */
    assert_int_equal(transition_ids(sent, 2, "QueryRemoved", counts, NIDS), N / 2 - 2);
    for (unsigned id = 4; id < N; id += 2) assert_int_equal(counts[id], 1);
    memset(counts, 0, NIDS);
    assert_int_equal(transition_ids(sent, 2, "QueryUpdated", counts, NIDS), 2 + 99);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[N + 1], 0);
    for (unsigned id = N; id < N + 100; id++)
        if (id != N + 1) assert_int_equal(counts[id], 1);
    free(sent);

    /* Everything left out, in an order unlike the one it went in. */
    begin_mods(&b, 2);
    for (int id = N + 99; id >= N; id--)
        if (id != N + 1) remove_op(&b, (unsigned)id);
    for (unsigned id = 1; id < N; id += 4) remove_op(&b, id);
    remove_op(&b, 2);
    for (int id = N - 1; id > 2; id -= 4) remove_op(&b, (unsigned)id);
    remove_op(&b, 0);
    end_mods(&b, f->c);
    sent = wait_for_qs(f->c, 3);
    memset(counts, 0, NIDS);
    assert_int_equal(transition_ids(sent, 3, "QueryRemoved", counts, NIDS), N / 2 + 2 + 99);
    assert_int_equal(transition_ids(sent, 3, "QueryUpdated", counts, NIDS), 0);
    free(sent);

    /* And the set is empty. */
    begin_mods(&b, 3);
    remove_op(&b, 1);
    end_mods(&b, f->c);
    sent = drain(f);
    assert_string_equal(sent, "{\"type\":\"FatalError\",\"error\":\"query 1 is not in the query set\"}\n");
    assert_string_equal(cvx_sync_should_close(f->c), "protocol error: query 1 is not in the query set");
    free(sent);
    cvx_buf_free(&b);
    free(counts);
}

/* A client toggling one id between Transitions: the list of removals to
 * send does not grow with the toggles (it used to keep one per Remove). */
static void test_query_churn_is_bounded(void **state) {
    fx_t *f = *state;
    cvx_buf_t b = {0};
    uint8_t counts[3] = {0};
    begin_mods(&b, 0);
    add_op(&b, 1);
    end_mods(&b, f->c);
    free(wait_for_qs(f->c, 1));

    begin_mods(&b, 1);
    for (int i = 0; i < 2000; i++) {
        remove_op(&b, 1);
        add_op(&b, 1);
        add_op(&b, 2);
        remove_op(&b, 2);
    }
    end_mods(&b, f->c);
    char *sent = wait_for_qs(f->c, 2);
    assert_int_equal(count_of(sent, "QueryRemoved"), 0);
    assert_int_equal(transition_ids(sent, 2, "QueryUpdated", counts, 3), 1);
    assert_int_equal(counts[1], 1);
    free(sent);

    begin_mods(&b, 2);
    for (int i = 0; i < 2000; i++) {
        remove_op(&b, 1);
        add_op(&b, 1);
    }
    remove_op(&b, 1);
    end_mods(&b, f->c);
    sent = wait_for_qs(f->c, 3);
    memset(counts, 0, sizeof counts);
    assert_int_equal(transition_ids(sent, 3, "QueryRemoved", counts, 3), 1);
    assert_int_equal(counts[1], 1);
    assert_int_equal(count_of(sent, "QueryUpdated"), 0);
    free(sent);
    cvx_buf_free(&b);
}

static uint64_t subscriptions(fx_t *f) {
    cvx_sync_stats_t st;
    cvx_sync_stats(f->sync, &st);
    return st.subscriptions;
}

/* Adds (or removes) queries of "users:nope" with args {i} for i in
 * [0, n), one per id i, in one message from version v. */
static void nope_queries(cvx_sync_client_t *c, int v, unsigned n, bool add) {
    cvx_buf_t b = {0};
    begin_mods(&b, v);
    for (unsigned i = 0; i < n; i++) {
        sep(&b);
        if (add)
            cvx_buf_printf(&b, "{\"type\":\"Add\",\"queryId\":%u,\"udfPath\":\"users:nope\",\"args\":[{\"i\":%u}]}", i,
                           i);
        else
            cvx_buf_printf(&b, "{\"type\":\"Remove\",\"queryId\":%u}", i);
    }
    end_mods(&b, c);
    cvx_buf_free(&b);
}

/* More shared subscriptions than the table's first size (4096): the
 * table grows, and every one is still found (a second client's same
 * queries share them) and unlinked. */
static void test_many_subscriptions(void **state) {
    fx_t *f = *state;
    enum { N = 5000 };
    cvx_sync_client_t *a = client(f), *b = client(f);
    nope_queries(a, 0, N, true);
    assert_int_equal(subscriptions(f), N);
    nope_queries(b, 0, N, true);
    assert_int_equal(subscriptions(f), N);
    assert_null(cvx_sync_should_close(a));
    assert_null(cvx_sync_should_close(b));
    nope_queries(a, 1, N, false);
    assert_int_equal(subscriptions(f), N);
    nope_queries(b, 1, N, false);
    /* A run in flight holds its subscription until it ends. */
    for (int i = 0; i < 30000 && atomic_load(&f->tasks); i++) usleep(1000);
    assert_int_equal(subscriptions(f), 0);
    assert_null(cvx_sync_should_close(a));
    assert_null(cvx_sync_should_close(b));
    cvx_sync_disconnect(a);
    cvx_sync_disconnect(b);
}

/* Subscriptions follow commits, for every client watching them: a
 * mutation makes users:count and users:emails stale, their re-runs wake
 * exactly their watchers, and each watcher is sent the new result (and
 * only its own queries). */
static void test_subscriptions_follow_commits(void **state) {
    fx_t *f = *state;
    cvx_sync_client_t *a = client(f), *b = client(f), *c = client(f);
    const char *count = "{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":["
                        "{\"type\":\"Add\",\"queryId\":5,\"udfPath\":\"users:count\",\"args\":[{}]}]}";
    send_to(a, count);
    send_to(b, count);
    send_to(c, "{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":["
               "{\"type\":\"Add\",\"queryId\":9,\"udfPath\":\"users:emails\",\"args\":[{}]}]}");
    char *sa = wait_for_qs(a, 1), *sb = wait_for_qs(b, 1), *sc = wait_for_qs(c, 1);
    tu_assert_contains(sa, "\"queryId\":5,\"value\":0");
    tu_assert_contains(sb, "\"queryId\":5,\"value\":0");
    tu_assert_contains(sc, "\"queryId\":9,\"value\":[]");
    free(sa);
    free(sb);
    free(sc);
    for (int i = 1; i <= 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "u%d", i);
        mutation(f, i, name);
        char *sent = wait_for(f, "\"type\":\"Transition\"");
        tu_assert_contains(sent, "\"success\":true");
        free(sent);
        char want[64];
        snprintf(want, sizeof want, "\"queryId\":5,\"value\":%d", i);
        sa = wait_for_client(a, want);
        sb = wait_for_client(b, want);
        snprintf(want, sizeof want, "\"u%d@x\"", i);
        sc = wait_for_client(c, want);
        assert_null(strstr(sa, "\"queryId\":9"));
        assert_null(strstr(sc, "\"queryId\":5"));
        free(sa);
        free(sb);
        free(sc);
    }
    /* A redeploy re-runs everything; the same results are not re-sent. */
    cvx_sync_code_changed(f->sync);
    for (int i = 0; i < 10000 && atomic_load(&f->tasks); i++) usleep(1000);
    usleep(20 * 1000);
    sa = drain_client(a);
    assert_null(strstr(sa, "QueryUpdated"));
    free(sa);
    assert_null(cvx_sync_should_close(a));
    assert_null(cvx_sync_should_close(b));
    assert_null(cvx_sync_should_close(c));
    cvx_sync_disconnect(a);
    cvx_sync_disconnect(b);
    cvx_sync_disconnect(c);
}

/* Lookups by an indexed field: each subscription's read set is an
 * equality range on by_email, filed in the sync engine's range index. A
 * commit re-runs only the lookup whose range it wrote into. */
static void test_index_lookups_follow_their_keys(void **state) {
    fx_t *f = *state;
    cvx_sync_client_t *a = client(f), *b = client(f);
    cvx_buf_t add = {0};
    cvx_buf_append_str(&add, "{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":[");
    for (int i = 0; i < 40; i++)
        cvx_buf_printf(&add, "%s{\"type\":\"Add\",\"queryId\":%d,\"udfPath\":\"users:by_email\",\"args\":[{\"email\":\"n%d@x\"}]}",
                       i ? "," : "", i, i);
    cvx_buf_append_str(&add, "]}");
    send_to(a, add.data);
    send_to(b, "{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":["
               "{\"type\":\"Add\",\"queryId\":1,\"udfPath\":\"users:by_email\",\"args\":[{\"email\":\"other@x\"}]}]}");
    free(wait_for_qs(a, 1));
    free(wait_for_qs(b, 1));
    mutation(f, 1, "n7");
    char *sent = wait_for(f, "\"type\":\"Transition\"");
    free(sent);
    char *sa = wait_for_client(a, "\"n7@x\"");
    tu_assert_contains(sa, "\"queryId\":7,");
    assert_null(strstr(sa, "\"queryId\":6,"));
    assert_null(strstr(sa, "\"queryId\":8,"));
    free(sa);
    usleep(50 * 1000);
    char *sb = drain_client(b);
    assert_null(strstr(sb, "QueryUpdated"));
    free(sb);
    cvx_buf_free(&add);
    cvx_sync_disconnect(a);
    cvx_sync_disconnect(b);
}

static const cvx_sync_config_t ten_queries = {.max_queries_per_client = 10};

/* max_queries_per_client: reaching it is fine, passing it is a FatalError
 * that names it, and the client is closed. */
static void test_query_limit(void **state) {
    fx_t *f = *state;
    cvx_buf_t b = {0};
    begin_mods(&b, 0);
    for (unsigned id = 0; id < 10; id++) add_op(&b, id);
    end_mods(&b, f->c);
    free(wait_for_qs(f->c, 1));
    /* A Remove makes room in the same message. */
    begin_mods(&b, 1);
    remove_op(&b, 0);
    add_op(&b, 10);
    end_mods(&b, f->c);
    free(wait_for_qs(f->c, 2));
    assert_null(cvx_sync_should_close(f->c));

    begin_mods(&b, 2);
    add_op(&b, 11);
    end_mods(&b, f->c);
    char *sent = drain(f);
    assert_string_equal(sent, "{\"type\":\"FatalError\",\"error\":\"the query set would hold 11 queries, past the "
                              "limit of 10 per client (max_queries_per_client)\"}\n");
    assert_string_equal(cvx_sync_should_close(f->c),
                        "protocol error: the query set would hold 11 queries, past the limit of 10 per client "
                        "(max_queries_per_client)");
    free(sent);
    cvx_buf_free(&b);
}

/* The default limit is 10000: the 10001st query fails. (A message holds
 * at most 8192 modifications: JSON arrays are capped.) */
static void test_default_query_limit(void **state) {
    fx_t *f = *state;
    cvx_buf_t b = {0};
    for (int v = 0; v < 2; v++) {
        begin_mods(&b, v);
        for (unsigned id = (unsigned)v * 5000; id < (unsigned)v * 5000 + 5000; id++) add_op(&b, id);
        end_mods(&b, f->c);
    }
    assert_null(cvx_sync_should_close(f->c));
    free(wait_for_qs(f->c, 2));
    begin_mods(&b, 2);
    add_op(&b, 10000);
    end_mods(&b, f->c);
    char *sent = drain(f);
    assert_string_equal(sent, "{\"type\":\"FatalError\",\"error\":\"the query set would hold 10001 queries, past the "
                              "limit of 10000 per client (max_queries_per_client)\"}\n");
    free(sent);
    cvx_buf_free(&b);
}

static double thread_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds (this thread) for one client to add n queries and remove
 * them all, 2000 modifications per message. */
static double query_set_cost(fx_t *f, unsigned n) {
    enum { PER = 2000 };
    cvx_sync_client_t *c = client(f);
    unsigned nmsg = (n + PER - 1) / PER;
    cvx_buf_t *msgs = calloc(2 * nmsg, sizeof *msgs);
    for (unsigned m = 0; m < 2 * nmsg; m++) {
        begin_mods(&msgs[m], (int)m);
        for (unsigned id = (m % nmsg) * PER; id < n && id < (m % nmsg + 1) * PER; id++) {
            if (m < nmsg) add_op(&msgs[m], id * 7919u);
            else remove_op(&msgs[m], id * 7919u);
        }
        cvx_buf_append_str(&msgs[m], "]}");
        assert_false(msgs[m].oom);
    }
    double t0 = thread_cpu_seconds();
    for (unsigned m = 0; m < 2 * nmsg; m++) cvx_sync_receive(c, msgs[m].data, msgs[m].len);
    double t = thread_cpu_seconds() - t0;
    assert_null(cvx_sync_should_close(c));
    cvx_sync_disconnect(c);
    for (unsigned m = 0; m < 2 * nmsg; m++) cvx_buf_free(&msgs[m]);
    free(msgs);
    return t;
}

static const cvx_sync_config_t many_queries = {.max_queries_per_client = 100000};

/* The cost of a query set modification does not grow with the query set:
 * 32 times the queries cost about 32 times as much, not 1000 (each Add
 * and Remove used to scan the whole set, under the global mutex, on the
 * event loop: 100k queries stalled every client for seconds; the old code
 * measured ~500). This thread's CPU time, with a 4x margin over linear. */
static void test_query_set_cost_is_linear(void **state) {
    fx_t *f = *state;
    query_set_cost(f, 500); /* warm-up: first-use costs out of the way */
    double small = query_set_cost(f, 2000);
    double large = query_set_cost(f, 64000);
    print_message("2000 queries: %.4f s, 64000 queries: %.4f s (ratio %.1f)\n", small, large, large / small);
    if (large > 128 * small) fail_msg("64000 queries cost %.1f times 2000 (linear: 32)", large / small);
}

/* Valid JSON that is not an object gets an exact error: the parse error
 * text it used to print was never set (stack bytes went to the client). */
static void test_non_object_messages(void **state) {
    fx_t *f = *state;
    const char *msgs[] = {"[1,2,3]", "5", "null", "\"Connect\"", "true"};
    for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
        cvx_sync_client_t *c = client(f);
        send_to(c, msgs[i]);
        char *sent = drain_client(c);
        assert_string_equal(sent, "{\"type\":\"FatalError\",\"error\":\"message is not a JSON object\"}\n");
        assert_string_equal(cvx_sync_should_close(c), "protocol error: message is not a JSON object");
        free(sent);
        /* Nothing it sends after is acted on. */
        send_to(c, "{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"t\",\"baseVersion\":0}");
        sent = drain_client(c);
        assert_string_equal(sent, "");
        free(sent);
        cvx_sync_disconnect(c);
    }
    cvx_sync_client_t *c = client(f);
    send_to(c, "{\"type\":");
    char *sent = drain_client(c);
    tu_assert_contains(sent, "{\"type\":\"FatalError\",\"error\":\"message is not valid JSON: ");
    free(sent);
    cvx_sync_disconnect(c);
}

/* Versions past u32 are refused before any cast (a double above
 * UINT32_MAX converted to uint32_t is undefined behaviour). */
static void test_versions_out_of_range(void **state) {
    fx_t *f = *state;
    static const struct {
        const char *msg, *error;
    } cases[] = {
        {"{\"type\":\"ModifyQuerySet\",\"baseVersion\":5000000000,\"newVersion\":5000000001,\"modifications\":[]}",
         "ModifyQuerySet baseVersion 5000000000 does not match the query set version 0"},
        {"{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":5000000000,\"modifications\":[]}",
         "ModifyQuerySet newVersion 5000000000 is out of range"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"None\",\"baseVersion\":9007199254740991}",
         "Authenticate baseVersion 9007199254740991 is out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cvx_sync_client_t *c = client(f);
        send_to(c, cases[i].msg);
        char *sent = drain_client(c);
        cvx_buf_t want = {0};
        cvx_buf_printf(&want, "{\"type\":\"FatalError\",\"error\":\"%s\"}\n", cases[i].error);
        assert_string_equal(sent, want.data);
        cvx_buf_free(&want);
        free(sent);
        cvx_sync_disconnect(c);
    }
}

/* A string with a NUL inside is refused, not cut at the NUL: the path
 * "users:count\u0000x" used to run users:count. */
static void test_nul_in_strings(void **state) {
    fx_t *f = *state;
    static const struct {
        const char *msg, *field;
    } cases[] = {
        {"{\"type\":\"Mutation\",\"requestId\":1,\"udfPath\":\"users:create_user\\u0000x\",\"args\":[{\"name\":\"a\","
         "\"email\":\"a@x\"}]}",
         "udfPath"},
        {"{\"type\":\"Action\",\"requestId\":1,\"udfPath\":\"users:signup\\u0000x\",\"args\":[{}]}", "udfPath"},
        {"{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":[{\"type\":\"Add\","
         "\"queryId\":1,\"udfPath\":\"users:count\\u0000x\",\"args\":[{}]}]}",
         "udfPath"},
        {"{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":[{\"type\":\"Add\","
         "\"queryId\":1,\"udfPath\":\"users:count\",\"args\":[{}],\"journal\":\"j\\u0000x\"}]}",
         "journal"},
        {"{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":[{\"type\":\"Add\\u0000x\","
         "\"queryId\":1,\"udfPath\":\"users:count\",\"args\":[{}]}]}",
         "type"},
        {"{\"type\":\"Connect\",\"sessionId\":\"s\\u0000x\",\"connectionCount\":0}", "sessionId"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"None\\u0000x\",\"baseVersion\":0}", "tokenType"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"Admin\",\"value\":\"k\\u0000x\",\"baseVersion\":0}", "value"},
        {"{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"t\\u0000x\",\"baseVersion\":0}", "value"},
        {"{\"type\":\"Event\\u0000x\"}", "type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cvx_sync_client_t *c = client(f);
        send_to(c, cases[i].msg);
        /* Refused on the spot: nothing was submitted to run. */
        assert_int_equal(atomic_load(&f->tasks), 0);
        char *sent = drain_client(c);
        char want[200], reason[200];
        snprintf(want, sizeof want, "{\"type\":\"FatalError\",\"error\":\"\\\"%s\\\" contains a NUL character\"}\n",
                 cases[i].field);
        snprintf(reason, sizeof reason, "protocol error: \"%s\" contains a NUL character", cases[i].field);
        if (strcmp(sent, want) != 0) fail_msg("case %zu: sent %s", i, sent);
        assert_string_equal(cvx_sync_should_close(c), reason);
        free(sent);
        cvx_sync_disconnect(c);
    }
    /* A sessionId is not cut short either (it names the idempotency keys
     * of the session's mutations): one past the 79 bytes kept is refused. */
    cvx_sync_client_t *c = cvx_sync_connect(f->sync, NULL);
    char hello[200];
    snprintf(hello, sizeof hello, "{\"type\":\"Connect\",\"sessionId\":\"%080d\",\"connectionCount\":0}", 0);
    send_to(c, hello);
    char *sent = drain_client(c);
    assert_string_equal(sent, "{\"type\":\"FatalError\",\"error\":\"sessionId is longer than 79 bytes\"}\n");
    free(sent);
    cvx_sync_disconnect(c);
    /* The same messages without the NUL are fine. */
    c = client(f);
    send_to(c, "{\"type\":\"Authenticate\",\"tokenType\":\"None\",\"baseVersion\":0}");
    assert_null(cvx_sync_should_close(c));
    cvx_sync_disconnect(c);
}

static const cvx_sync_config_t small_total_outbox = {.max_total_outbox_bytes = 1000};

static uint64_t outbox_bytes(fx_t *f) {
    cvx_sync_stats_t st;
    cvx_sync_stats(f->sync, &st);
    return st.outbox_bytes;
}

static uint64_t dropped(fx_t *f) {
    cvx_sync_stats_t st;
    cvx_sync_stats(f->sync, &st);
    return st.dropped_clients;
}

/* One message into a client's outbox: an AuthError (no query runs). */
static void poke(cvx_sync_client_t *c) {
    send_to(c, "{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"t\",\"baseVersion\":0}");
}

static size_t drained(cvx_sync_client_t *c) {
    char **msgs;
    size_t *lens;
    size_t n = cvx_sync_drain(c, SIZE_MAX, &msgs, &lens);
    cvx_sync_free_messages(msgs, lens, n);
    return n;
}

/* max_total_outbox_bytes: once all clients' unsent messages reach it, a
 * client that is behind is closed (and its backlog freed), one that keeps
 * up still gets its messages; the total stays exact through drains,
 * closes and disconnects. */
static void test_total_outbox_budget(void **state) {
    fx_t *f = *state;
    const uint64_t L = strlen("{\"type\":\"AuthError\",\"error\":\"this server does not accept user tokens\","
                              "\"baseVersion\":0,\"authUpdateAttempted\":true}");
    const uint64_t k = 1000 / L; /* messages that fit */
    assert_true(k >= 4);
    assert_int_equal(outbox_bytes(f), 0);

    /* A fills the budget without reading. */
    cvx_sync_client_t *a = client(f), *b = client(f), *c = client(f), *d = client(f);
    for (uint64_t i = 0; i < k; i++) poke(a);
    assert_int_equal(outbox_bytes(f), k * L);
    assert_null(cvx_sync_should_close(a));

    /* B had nothing waiting: it gets its message past the budget. */
    poke(b);
    assert_null(cvx_sync_should_close(b));
    assert_int_equal(outbox_bytes(f), (k + 1) * L);
    assert_int_equal(drained(b), 1);
    assert_int_equal(outbox_bytes(f), k * L);

    /* Behind (one unsent) while over the budget: closed, backlog freed. */
    poke(b);
    assert_int_equal(outbox_bytes(f), (k + 1) * L);
    poke(b);
    const char *why = cvx_sync_should_close(b);
    assert_non_null(why);
    tu_assert_contains(why, "client is too slow: 1 messages");
    tu_assert_contains(why, "while the server's outbox is full");
    assert_int_equal(dropped(f), 1);
    assert_int_equal(outbox_bytes(f), k * L);
    assert_int_equal(drained(b), 0);

    /* C keeps up: it keeps working while the budget is spent. */
    for (int i = 0; i < 5; i++) {
        poke(c);
        assert_int_equal(drained(c), 1);
    }
    assert_null(cvx_sync_should_close(c));
    assert_int_equal(outbox_bytes(f), k * L);

    /* A, behind, asks for one more: closed. */
    poke(a);
    assert_non_null(cvx_sync_should_close(a));
    assert_int_equal(dropped(f), 2);
    assert_int_equal(outbox_bytes(f), 0);

    /* A disconnect gives its unsent messages back. */
    for (int i = 0; i < 3; i++) poke(d);
    assert_int_equal(outbox_bytes(f), 3 * L);
    cvx_sync_disconnect(d);
    assert_int_equal(outbox_bytes(f), 0);

    /* The per-client bound closes and frees too. */
    cvx_sync_disconnect(a);
    cvx_sync_disconnect(b);
    cvx_sync_disconnect(c);
    assert_null(cvx_sync_should_close(f->c));
    assert_int_equal(outbox_bytes(f), 0);
}

static const cvx_sync_config_t three_msgs = {.max_outbox_msgs = 3};

/* The per-client bound: the fourth unsent message closes the client and
 * frees its backlog; the total follows. */
static void test_client_outbox_bound(void **state) {
    fx_t *f = *state;
    for (int i = 0; i < 3; i++) poke(f->c);
    uint64_t three = outbox_bytes(f);
    assert_true(three > 0);
    assert_null(cvx_sync_should_close(f->c));
    poke(f->c);
    tu_assert_contains(cvx_sync_should_close(f->c), "client is too slow: 3 messages");
    assert_int_equal(outbox_bytes(f), 0);
    assert_int_equal(drained(f->c), 0);
}

/* ---- user tokens ------------------------------------------------------------- */

/* The host's token check: "good-<sub>" is that user, after a pause (as a
 * key fetch would take); anything else is refused. */
static int verify_hook(void *ctx, const char *token, size_t len, cvx_buf_t *identity, int64_t *expires,
                       cvx_err_t *err) {
    (void)ctx;
    usleep(50000);
    if (len < 5 || memcmp(token, "good-", 5)) return cvx_err_set(err, CVX_E_AUTH, "refused: not a good token");
    cvx_buf_printf(identity, "{\"tokenIdentifier\":\"https://i|%.*s\",\"subject\":\"%.*s\",\"issuer\":\"https://i\"}",
                   (int)len - 5, token + 5, (int)len - 5, token + 5);
    *expires = (int64_t)time(NULL) + (strstr(token, "short") ? 1 : 3600);
    return CVX_OK;
}

static void send_str(cvx_sync_client_t *c, const char *m) { cvx_sync_receive(c, m, strlen(m)); }

/* What follows an Authenticate waits for its check and runs as its user:
 * the first Transition moves the identity and the query set together;
 * users do not share a subscription, one user's two sockets do; a
 * refused token is an AuthError and what follows runs as before; an
 * expired identity gets an AuthError and the socket is closed. */
static void test_user_tokens(void **state) {
    fx_t *f = *state;
    cvx_sync_hooks_t hooks = {.ctx = f, .submit = submit, .wake = wake, .verify_token = verify_hook};
    cvx_sync_t *s;
    cvx_err_t err;
    if (cvx_sync_new(f->env.rt, &hooks, NULL, &s, &err)) fail_msg("sync: %s", err.msg);
    cvx_sync_client_t *a = cvx_sync_connect(s, NULL), *b = cvx_sync_connect(s, NULL), *a2 = cvx_sync_connect(s, NULL);
    const char *add = "{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":["
                      "{\"type\":\"Add\",\"queryId\":1,\"udfPath\":\"users:count\",\"args\":[{}]}]}";
    send_str(a, "{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"good-ada\",\"baseVersion\":0}");
    send_str(a, add);
    char *sent = drain_client(a);
    assert_string_equal(sent, ""); /* held while the token is checked */
    free(sent);
    assert_true(cvx_sync_client_busy(a));
    sent = wait_for_client(a, "Transition");
    tu_assert_contains(sent, "\"endVersion\":{\"querySet\":1,\"identity\":1,");
    tu_assert_contains(sent, "\"startVersion\":{\"querySet\":0,\"identity\":0,");
    free(sent);
    assert_false(cvx_sync_client_busy(a));

    send_str(b, "{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"good-bob\",\"baseVersion\":0}");
    send_str(b, add);
    free(wait_for_client(b, "Transition"));
    send_str(a2, "{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"good-ada\",\"baseVersion\":0}");
    send_str(a2, add);
    free(wait_for_client(a2, "Transition"));
    cvx_sync_stats_t st;
    cvx_sync_stats(s, &st);
    assert_int_equal(st.subscriptions, 2); /* ada's (two sockets) and bob's */

    /* Refused: an AuthError for that baseVersion; b stays bob. */
    send_str(b, "{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"bad\",\"baseVersion\":1}");
    sent = wait_for_client(b, "AuthError");
    tu_assert_contains(sent, "\"error\":\"refused: not a good token\",\"baseVersion\":1,\"authUpdateAttempted\":true");
    free(sent);
    /* Signing out moves b's query to the anonymous subscription. */
    send_str(b, "{\"type\":\"Authenticate\",\"tokenType\":\"None\",\"baseVersion\":1}");
    sent = wait_for_client(b, "Transition");
    tu_assert_contains(sent, "\"identity\":2,");
    tu_assert_contains(sent, "QueryUpdated");
    free(sent);
    cvx_sync_stats(s, &st);
    assert_int_equal(st.subscriptions, 2); /* ada's and the anonymous one */

    /* A token that expires: AuthError (not an update), then closed. */
    send_str(b, "{\"type\":\"Authenticate\",\"tokenType\":\"User\",\"value\":\"good-short\",\"baseVersion\":2}");
    free(wait_for_client(b, "\"identity\":3,"));
    cvx_sync_expire(s, (int64_t)time(NULL) + 5);
    sent = drain_client(b);
    tu_assert_contains(sent, "\"type\":\"AuthError\"");
    tu_assert_contains(sent, "\"baseVersion\":2,\"authUpdateAttempted\":false");
    free(sent);
    assert_string_equal(cvx_sync_should_close(b), "the auth token expired");
    assert_null(cvx_sync_should_close(a));

    while (atomic_load(&f->tasks)) usleep(1000);
    cvx_sync_disconnect(a);
    cvx_sync_disconnect(b);
    cvx_sync_disconnect(a2);
    cvx_sync_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_response_waits_for_fsync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_fails_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_set_bookkeeping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_churn_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_subscriptions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscriptions_follow_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_lookups_follow_their_keys, setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(test_query_limit, setup, teardown, (void *)&ten_queries),
        cmocka_unit_test_setup_teardown(test_default_query_limit, setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(test_query_set_cost_is_linear, setup, teardown, (void *)&many_queries),
        cmocka_unit_test_setup_teardown(test_non_object_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_out_of_range, setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(test_total_outbox_budget, setup, teardown,
                                                 (void *)&small_total_outbox),
        cmocka_unit_test_prestate_setup_teardown(test_client_outbox_bound, setup, teardown, (void *)&three_msgs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
