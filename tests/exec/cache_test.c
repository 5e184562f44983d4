/*
 * exec: the query result cache. A repeated query is answered from the
 * cache; a commit that writes anything the query read (a point it got, a
 * range it scanned, a table it counted) drops it, and nothing else does.
 * A reader racing a writer never sees an older value after a newer one.
 * All through the seed example's real guest code.
 */
#include "support/testutil.h"
#include "support/tu_signals.h"

#include <pthread.h>
#include <stdatomic.h>

static cvx_exec_stats_t stats(tu_env_t *env) {
    cvx_exec_stats_t s;
    cvx_exec_stats(env->rt, &s);
    return s;
}

/* Runs a query and reports whether it came from the cache. */
static char *query(tu_env_t *env, const char *path, const char *args, bool *hit) {
    uint64_t before = stats(env).cache_hits;
    char *v = tu_call_ok(env, path, args);
    *hit = stats(env).cache_hits == before + 1;
    return v;
}

static char *create(tu_env_t *env, const char *name, const char *email) {
    char args[256];
    snprintf(args, sizeof args, "{\"name\":\"%s\",\"email\":\"%s\"}", name, email);
    return tu_call_ok(env, "users:create_user", args);
}

static void update_email(tu_env_t *env, const char *id_json, const char *email) {
    char args[256];
    snprintf(args, sizeof args, "{\"id\":%s,\"email\":\"%s\"}", id_json, email);
    free(tu_call_ok(env, "users:update_email", args));
}

static void test_hits_and_precise_invalidation(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("examples/users"), NULL);
    char *ada = create(&env, "Ada", "ada@x");
    char *bob = create(&env, "Bob", "bob@x");
    char args[128];
    snprintf(args, sizeof args, "{\"id\":%s}", ada);
    bool hit;

    char *v1 = query(&env, "users:get_user", args, &hit);
    assert_false(hit);
    char *v2 = query(&env, "users:get_user", args, &hit);
    assert_true(hit);
    assert_string_equal(v1, v2);
    free(v1);
    free(v2);

    /* Another document changes: Ada's entry stays. */
    update_email(&env, bob, "bob@y");
    free(query(&env, "users:get_user", args, &hit));
    assert_true(hit);

    /* Ada changes: the next read runs again and sees it. */
    update_email(&env, ada, "ada@y");
    char *v3 = query(&env, "users:get_user", args, &hit);
    assert_false(hit);
    tu_assert_contains(v3, "ada@y");
    free(v3);
    free(query(&env, "users:get_user", args, &hit));
    assert_true(hit);

    /* A table scan (count) is dropped by an insert anywhere in the table. */
    char *c1 = query(&env, "users:count", "{}", &hit);
    assert_string_equal(c1, "2");
    free(query(&env, "users:count", "{}", &hit));
    assert_true(hit);
    free(create(&env, "Cy", "cy@x"));
    char *c2 = query(&env, "users:count", "{}", &hit);
    assert_false(hit);
    assert_string_equal(c2, "3");
    free(c1);
    free(c2);

    /* An index lookup that found nothing is dropped when a matching
     * document appears, not by unrelated ones. */
    char *n1 = query(&env, "users:by_email", "{\"email\":\"dee@x\"}", &hit);
    assert_string_equal(n1, "null");
    free(n1);
    update_email(&env, bob, "bob@z");
    free(query(&env, "users:by_email", "{\"email\":\"dee@x\"}", &hit));
    assert_true(hit);
    free(create(&env, "Dee", "dee@x"));
    char *n2 = query(&env, "users:by_email", "{\"email\":\"dee@x\"}", &hit);
    assert_false(hit);
    tu_assert_contains(n2, "\"Dee\"");
    free(n2);

    /* Different arguments are different entries. */
    free(query(&env, "users:list", "{\"limit\":1}", &hit));
    assert_false(hit);
    free(query(&env, "users:list", "{\"limit\":2}", &hit));
    assert_false(hit);
    free(query(&env, "users:list", "{\"limit\":1}", &hit));
    assert_true(hit);

    assert_true(stats(&env).cache_invalidations >= 3);
    free(ada);
    free(bob);
    tu_env_close(&env, true);
}

/* Many cached lookups by an indexed field (each one's read set is an
 * equality range on by_email, cut where first() stopped): a write finds
 * the entries it touches by their ranges' common prefix, not by a scan of
 * every entry, and drops exactly those. */
static void test_many_lookups_precise(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("examples/users"), NULL);
    enum { N = 60 };
    char *ids[N], args[128];
    for (int i = 0; i < N; i++) {
        char name[16], email[32];
        snprintf(name, sizeof name, "u%02d", i);
        snprintf(email, sizeof email, "e%02d@x", i);
        ids[i] = create(&env, name, email);
    }
    bool hit;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            snprintf(args, sizeof args, "{\"email\":\"e%02d@x\"}", i);
            free(query(&env, "users:by_email", args, &hit));
            assert_true(hit == (round == 1));
        }
    /* also a page from the start of the index, and a miss */
    free(query(&env, "users:list", "{\"limit\":3}", &hit));
    free(query(&env, "users:by_email", "{\"email\":\"zz@x\"}", &hit));

    update_email(&env, ids[7], "zz@x");
    for (int i = 0; i < N; i++) {
        snprintf(args, sizeof args, "{\"email\":\"e%02d@x\"}", i);
        char *v = query(&env, "users:by_email", args, &hit);
        assert_true(hit == (i != 7));
        if (i == 7) assert_string_equal(v, "null");
        free(v);
    }
    char *z = query(&env, "users:by_email", "{\"email\":\"zz@x\"}", &hit);
    assert_false(hit);
    tu_assert_contains(z, "\"u07\"");
    free(z);
    /* the first page's documents did not change: still cached */
    free(query(&env, "users:list", "{\"limit\":3}", &hit));
    assert_true(hit);
    for (int i = 0; i < N; i++) free(ids[i]);
    tu_env_close(&env, true);
}

/* A reader racing a writer: values only move forward, and once the writer
 * is done the reader sees its last write (no stale entry survives). After
 * each write the writer waits for the reader to finish three more reads,
 * so the cache is really in play: the first may have started before the
 * write, the second started after it and leaves an entry, the third is a
 * hit, and the next write drops that entry while the reader keeps reading.
 * Without that, a reader that never hit the cache would pass for one that
 * never read a stale entry. */
typedef struct {
    tu_env_t *env;
    char *id;
    atomic_int done;
    int rounds;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long reads; /* completed, under mu */
} race_t;

static void *writer(void *arg) {
    race_t *r = arg;
    for (int i = 1; i <= r->rounds; i++) {
        char email[32];
        snprintf(email, sizeof email, "v%06d@x", i);
        update_email(r->env, r->id, email);
        pthread_mutex_lock(&r->mu);
        long target = r->reads + 3;
        while (r->reads < target) pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
    }
    atomic_store(&r->done, 1);
    return NULL;
}

static int version_of(const char *doc) {
    const char *p = strstr(doc, "\"v");
    return p ? atoi(p + 2) : 0;
}

static void test_no_stale_reads_under_writes(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("examples/users"), NULL);
    race_t r = {.env = &env, .id = create(&env, "Race", "v000000@x"), .rounds = 300};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    char args[128];
    snprintf(args, sizeof args, "{\"id\":%s}", r.id);
    cvx_exec_stats_t s0 = stats(&env);
    pthread_t w;
    pthread_create(&w, NULL, writer, &r);
    int last = 0;
    while (!atomic_load(&r.done)) {
        char *doc = tu_call_ok(&env, "users:get_user", args);
        int v = version_of(doc);
        if (v < last) fail_msg("read version %d after %d", v, last);
        last = v;
        free(doc);
        pthread_mutex_lock(&r.mu);
        r.reads++;
        pthread_cond_broadcast(&r.cv);
        pthread_mutex_unlock(&r.mu);
    }
    pthread_join(w, NULL);
    cvx_exec_stats_t s = stats(&env);
    uint64_t hits = s.cache_hits - s0.cache_hits, drops = s.cache_invalidations - s0.cache_invalidations;
    print_message("reads %ld, cache hits %llu, invalidations %llu\n", r.reads, (unsigned long long)hits,
                  (unsigned long long)drops);
    /* At least the third read after every write hit, and every write after
     * the first dropped the entry those reads left. */
    if (hits < (uint64_t)r.rounds) fail_msg("%llu cache hits in %d rounds", (unsigned long long)hits, r.rounds);
    if (drops < (uint64_t)r.rounds - 1)
        fail_msg("%llu invalidations in %d rounds", (unsigned long long)drops, r.rounds);
    bool hit;
    char *doc = query(&env, "users:get_user", args, &hit);
    assert_int_equal(version_of(doc), r.rounds);
    free(doc);
    doc = query(&env, "users:get_user", args, &hit);
    assert_true(hit);
    assert_int_equal(version_of(doc), r.rounds);
    free(doc);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    free(r.id);
    tu_env_close(&env, true);
}

static void deploy(tu_env_t *env, const cvx_buf_t *wasm) {
    cvx_app_t *app;
    cvx_err_t err;
    if (cvx_app_load(env->engine, (const uint8_t *)wasm->data, wasm->len, &app, &err) ||
        cvx_runtime_deploy(env->rt, app, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    cvx_app_release(app);
}

/* A deploy of other code empties the cache (its keys name the old module);
 * a redeploy of the same module keeps it. */
static void test_deploy_of_other_code_clears(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("examples/users"), NULL);
    bool hit;
    free(query(&env, "users:count", "{}", &hit));
    free(query(&env, "users:list", "{\"limit\":1}", &hit));
    assert_int_equal(stats(&env).cache_entries, 2);

    cvx_buf_t wasm = {0};
    cvx_err_t err;
    if (cvx_read_file(tu_guest_wasm("examples/users"), &wasm, &err)) fail_msg("%s", err.msg);
    deploy(&env, &wasm);
    assert_int_equal(stats(&env).cache_entries, 2);
    free(query(&env, "users:count", "{}", &hit));
    assert_true(hit);

    /* The same code plus an empty custom section "x": another module. */
    cvx_buf_append(&wasm, "\0\2\1x", 4);
    deploy(&env, &wasm);
    assert_int_equal(stats(&env).cache_entries, 0);
    free(query(&env, "users:count", "{}", &hit));
    assert_false(hit);
    cvx_buf_free(&wasm);
    tu_env_close(&env, true);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_hits_and_precise_invalidation),
        TU_WASM_TEST(test_many_lookups_precise),
        TU_WASM_TEST(test_no_stale_reads_under_writes),
        TU_WASM_TEST(test_deploy_of_other_code_clears),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
