/*
 * exec: mutations and queries from many threads through cvx_exec_call on
 * one runtime (real Wasmtime, real guest, real SQLite).
 *
 *  - 8 threads x 1000 `fixture:incr` of ONE counter: exactly 8000, every
 *    value from 1 to 8000 returned exactly once (the increments are
 *    serializable), with the OCC retries reported.
 *  - snapshot isolation: threads move money between random accounts while
 *    another thread sums all balances; every sum it sees is the initial
 *    total.
 */
#include "support/testutil.h"
#include "support/tu_signals.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    tu_env_t *env;
    int thread;
    int calls;
    int64_t *values; /* incr results */
} worker_t;

static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static char first_error[2048];
static atomic_int errors;

static void record_error(const char *what, int rc, const cvx_response_t *r) {
    atomic_fetch_add(&errors, 1);
    pthread_mutex_lock(&err_mu);
    if (!first_error[0])
        snprintf(first_error, sizeof first_error, "%s: %s: %s", what, cvx_code_name(rc),
                 r->r.message.data ? r->r.message.data : "");
    pthread_mutex_unlock(&err_mu);
}

static int call(tu_env_t *env, const char *path, const char *args, cvx_response_t *r) {
    memset(r, 0, sizeof *r);
    cvx_request_t req = {.path = path, .args_json = args, .args_len = strlen(args)};
    return cvx_exec_call(env->rt, &req, r);
}

/* int64 from {"$integer": base64 LE}. */
static bool int64_of(const char *json, int64_t *out) {
    cvx_arena_t *a = cvx_arena_new(256);
    cvx_value_t *v = NULL;
    bool ok = a && cvx_json_parse(a, json, strlen(json), &v, NULL) == CVX_OK && v->type == CVX_T_INT64;
    if (ok) *out = v->u.i;
    cvx_arena_free(a);
    return ok;
}

static void *incr_worker(void *p) {
    worker_t *w = p;
    for (int i = 0; i < w->calls; i++) {
        cvx_response_t r;
        int rc = call(w->env, "fixture:incr", "{\"name\":\"shared\"}", &r);
        if (rc != CVX_OK || !int64_of(r.r.value.data, &w->values[i])) record_error("incr", rc, &r);
        cvx_response_free(&r);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_counter(void **state) {
    enum { THREADS = 8, CALLS = 1000 };
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("tests/fixtures/guest"), NULL);
    atomic_store(&errors, 0);
    first_error[0] = 0;
    cvx_store_stats_t st0;
    cvx_store_stats(env.store, &st0);
    pthread_t th[THREADS];
    worker_t w[THREADS];
    int64_t *values = calloc(THREADS * CALLS, sizeof *values);
    uint64_t t0 = cvx_monotonic_ns();
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){&env, i, CALLS, values + i * CALLS};
        assert_int_equal(pthread_create(&th[i], NULL, incr_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    double secs = (double)(cvx_monotonic_ns() - t0) / 1e9;

    cvx_exec_stats_t es;
    cvx_exec_stats(env.rt, &es);
    cvx_store_stats_t st;
    cvx_store_stats(env.store, &st);
    print_message("%d x %d incr in %.1f s (%.0f/s): %llu mutation retries, %llu store conflicts, %llu commits\n",
                  THREADS, CALLS, secs, THREADS * CALLS / secs, (unsigned long long)es.mutation_retries,
                  (unsigned long long)(st.conflicts - st0.conflicts), (unsigned long long)(st.commits - st0.commits));
    if (atomic_load(&errors)) fail_msg("%d calls failed; first: %s", atomic_load(&errors), first_error);

    cvx_response_t r;
    assert_int_equal(call(&env, "fixture:counter", "{\"name\":\"shared\"}", &r), CVX_OK);
    int64_t total = 0;
    assert_true(int64_of(r.r.value.data, &total));
    cvx_response_free(&r);
    assert_int_equal(total, THREADS * CALLS);
    /* Serializable: the increments returned 1..8000, each exactly once. */
    qsort(values, THREADS * CALLS, sizeof *values, cmp_i64);
    for (int i = 0; i < THREADS * CALLS; i++)
        if (values[i] != i + 1) fail_msg("value %d is %lld", i + 1, (long long)values[i]);
    assert_int_equal(st.commits - st0.commits, THREADS * CALLS);
    assert_int_equal(es.mutation_retries, st.conflicts - st0.conflicts);
    assert_int_equal(es.failures, 0);
    /* One counter document, not one per racing first insert. */
    assert_int_equal(call(&env, "fixture:scan", "{\"table\":\"counters\"}", &r), CVX_OK);
    tu_assert_contains(r.r.value.data, "\"shared\"");
    assert_null(strstr(strstr(r.r.value.data, "\"shared\"") + 1, "\"shared\""));
    cvx_response_free(&r);
    free(values);
    tu_env_close(&env, true);
}

/* ---- snapshot isolation --------------------------------------------------------- */

enum { ACCOUNTS = 10, BALANCE = 100, MOVERS = 4, TRANSFERS = 250 };

typedef struct {
    tu_env_t *env;
    unsigned seed;
    atomic_bool *stop;
    int totals_seen;
} si_t;

static void *mover(void *p) {
    si_t *s = p;
    for (int i = 0; i < TRANSFERS; i++) {
        int from = rand_r(&s->seed) % ACCOUNTS, to = rand_r(&s->seed) % ACCOUNTS;
        int amount = 1 + rand_r(&s->seed) % 50;
        char args[96];
        snprintf(args, sizeof args, "{\"from\":%d,\"to\":%d,\"amount\":%d}", from, to, amount);
        cvx_response_t r;
        int rc = call(s->env, "fixture:transfer", args, &r);
        if (rc != CVX_OK) record_error("transfer", rc, &r);
        cvx_response_free(&r);
    }
    return NULL;
}

static void *auditor(void *p) {
    si_t *s = p;
    char want[64];
    snprintf(want, sizeof want, "{\"count\":%d,\"sum\":%d}", ACCOUNTS, ACCOUNTS * BALANCE);
    do {
        cvx_response_t r;
        int rc = call(s->env, "fixture:total", "{}", &r);
        if (rc != CVX_OK) record_error("total", rc, &r);
        else if (strcmp(r.r.value.data, want) != 0) {
            cvx_response_t bad = r;
            cvx_buf_t msg = {0};
            cvx_buf_printf(&msg, "total saw %s, expected %s", r.r.value.data, want);
            bad.r.message = msg;
            record_error("total", CVX_E_INTERNAL, &bad);
            cvx_buf_free(&msg);
        }
        s->totals_seen++;
        cvx_response_free(&r);
    } while (!atomic_load(s->stop));
    return NULL;
}

static void test_snapshot_isolation(void **state) {
    tu_env_t env;
    tu_env_open(&env, tu_guest_wasm("tests/fixtures/guest"), NULL);
    atomic_store(&errors, 0);
    first_error[0] = 0;
    char args[64];
    snprintf(args, sizeof args, "{\"n\":%d,\"balance\":%d}", ACCOUNTS, BALANCE);
    free(tu_call_ok(&env, "fixture:setup_accounts", args));
    atomic_bool stop = false;
    si_t movers[MOVERS], audit = {&env, 0, &stop, 0};
    pthread_t th[MOVERS], at;
    uint64_t t0 = cvx_monotonic_ns();
    assert_int_equal(pthread_create(&at, NULL, auditor, &audit), 0);
    for (int i = 0; i < MOVERS; i++) {
        movers[i] = (si_t){&env, 1234u + (unsigned)i, &stop, 0};
        assert_int_equal(pthread_create(&th[i], NULL, mover, &movers[i]), 0);
    }
    for (int i = 0; i < MOVERS; i++) pthread_join(th[i], NULL);
    atomic_store(&stop, true);
    pthread_join(at, NULL);
    cvx_exec_stats_t es;
    cvx_exec_stats(env.rt, &es);
    print_message("%d transfers and %d consistent totals in %.1f s, %llu mutation retries\n", MOVERS * TRANSFERS,
                  audit.totals_seen, (double)(cvx_monotonic_ns() - t0) / 1e9, (unsigned long long)es.mutation_retries);
    if (atomic_load(&errors)) fail_msg("%d calls failed; first: %s", atomic_load(&errors), first_error);
    assert_true(audit.totals_seen >= 10);
    char *total = tu_call_ok(&env, "fixture:total", "{}");
    snprintf(args, sizeof args, "{\"count\":%d,\"sum\":%d}", ACCOUNTS, ACCOUNTS * BALANCE);
    assert_string_equal(total, args);
    free(total);
    /* The balances did move. */
    char *all = tu_call_ok(&env, "fixture:scan", "{\"table\":\"accounts\"}");
    cvx_arena_t *a = cvx_arena_new(1024);
    cvx_value_t *v;
    assert_int_equal(cvx_json_parse(a, all, strlen(all), &v, NULL), CVX_OK);
    int unchanged = 0;
    for (size_t i = 0; i < v->u.arr.len; i++)
        unchanged += cvx_obj_get_cstr(v->u.arr.items[i], "balance")->u.f == BALANCE;
    assert_true(unchanged < ACCOUNTS);
    cvx_arena_free(a);
    free(all);
    tu_env_close(&env, true);
}

int main(void) {
    tu_wasm_signals_init();
    const struct CMUnitTest tests[] = {
        TU_WASM_TEST(test_counter),
        TU_WASM_TEST(test_snapshot_isolation),
    };
    return cmocka_run_group_tests_name("exec.concurrency", tests, NULL, NULL);
}
