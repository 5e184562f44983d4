/* The server in-process, over real sockets: a mutation's answer is held on
 * the event loop until its commit is durable (the worker that ran it goes
 * on meanwhile), and becomes the I/O error if the fsync fails. The store's
 * sync hooks play the slow and the failing disk. */
#include "support/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/server.h"
#include "store/store_int.h"

typedef struct {
    char *dir;
    cvx_server_t *srv;
    int port;
} fx_t;

/* A server on a free port with the users example deployed; admin key
 * "test-key". */
static fx_t *start(size_t query_cache_bytes) {
    fx_t *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("server");
    cvx_server_config_t cfg;
    cvx_server_config_default(&cfg);
    cfg.data_dir = f->dir;
    cfg.port = 0;
    cfg.workers = 2;
    cfg.admin_key = "test-key";
    cfg.query_cache_bytes = query_cache_bytes;
    cfg.log = fopen("/dev/null", "w");
    cvx_err_t err;
    if (cvx_server_start(&cfg, &f->srv, &err) != CVX_OK) fail_msg("server start: %s", err.msg);
    f->port = cvx_server_port(f->srv);
    cvx_buf_t wasm = {0}, summary = {0};
    tu_read(tu_guest_wasm("examples/users"), &wasm);
    if (cvx_server_deploy(f->srv, (const uint8_t *)wasm.data, wasm.len, &summary, &err) != CVX_OK)
        fail_msg("deploy: %s", err.msg);
    cvx_buf_free(&wasm);
    cvx_buf_free(&summary);
    return f;
}

static void stop(fx_t *f) {
    cvx__store_hold_sync(false);
    cvx__store_fail_sync(0);
    cvx_server_stop(f->srv);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
}

static int setup(void **state) {
    *state = start(0);
    return 0;
}

static int teardown(void **state) {
    stop(*state);
    return 0;
}

/* Sends POST path with a JSON body on a new connection; returns the socket. */
static int post(fx_t *f, const char *path, const char *body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

/* The response body, or NULL if none began within timeout_ms. Reads until
 * the whole body (Content-Length) is in. Caller frees. */
static char *response(int fd, int timeout_ms) {
    cvx_buf_t in = {0};
    uint64_t deadline = cvx_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        const char *end = in.data ? strstr(in.data, "\r\n\r\n") : NULL;
        if (end) {
            const char *cl = strstr(in.data, "content-length:");
            if (!cl) cl = strstr(in.data, "Content-Length:");
            assert_non_null(cl);
            size_t want = (size_t)strtoul(cl + 15, NULL, 10);
            size_t have = in.len - (size_t)(end + 4 - in.data);
            if (have >= want) {
                char *body = strdup(end + 4);
                cvx_buf_free(&in);
                return body;
            }
        }
        int64_t left = (int64_t)(deadline - cvx_monotonic_ns()) / 1000000;
        if (left <= 0 && in.len == 0) return NULL;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left > 0 ? (int)left : 1000);
        if (r == 0 && in.len == 0) return NULL;
        assert_true(r > 0);
        char buf[4096];
        ssize_t got = read(fd, buf, sizeof buf);
        assert_true(got > 0);
        cvx_buf_append(&in, buf, (size_t)got);
    }
}

static char *call(fx_t *f, const char *kind, const char *path, const char *args) {
    char body[1024];
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"args\":[%s],\"format\":\"json\"}", path, args);
    char url[64];
    snprintf(url, sizeof url, "/api/%s", kind);
    int fd = post(f, url, body);
    char *r = response(fd, 10000);
    close(fd);
    assert_non_null(r);
    return r;
}

/* The counter `name` of GET /api/admin/stats. */
static unsigned long long stat(fx_t *f, const char *name) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char req[] = "GET /api/admin/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Authorization: Convex test-key\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char *body = response(fd, 10000);
    close(fd);
    assert_non_null(body);
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(body, key);
    if (!at) fail_msg("no %s in %s", name, body);
    unsigned long long v = strtoull(at + strlen(key), NULL, 10);
    free(body);
    return v;
}

/* query_cache_bytes SIZE_MAX (cvx serve --query-cache 0) runs every query:
 * the same query twice is two runs, where the default cache answers the
 * second. */
static void test_query_cache_off(void **state) {
    (void)state;
    for (int off = 0; off <= 1; off++) {
        fx_t *f = start(off ? SIZE_MAX : 0);
        for (int i = 0; i < 2; i++) {
            char *r = call(f, "query", "users:count", "{}");
            tu_assert_contains(r, "\"status\":\"success\"");
            free(r);
        }
        assert_int_equal(stat(f, "cacheHits"), off ? 0 : 1);
        stop(f);
    }
}

/* While the fsync is held: the mutation is not answered, a query on
 * another connection is (with the data as of before it), and once the
 * fsync completes the answer goes out and the write is visible. A failed
 * mutation's answer, which quotes a commit in flight, waits as well. */
static void test_answer_waits_for_fsync(void **state) {
    fx_t *f = *state;
    cvx__store_hold_sync(true);
    int m = post(f, "/api/mutation",
                 "{\"path\":\"users:create_user\",\"args\":[{\"name\":\"Ada\",\"email\":\"ada@x\"}],\"format\":\"json\"}");
    assert_null(response(m, 300));
    /* Two workers: if one were parked on the fsync, this would still be
     * answered, but it proves the read path does not wait on the write. */
    char *count = call(f, "query", "users:count", "{}");
    tu_assert_contains(count, "\"value\":0");
    free(count);
    cvx__store_hold_sync(false);
    char *created = response(m, 10000);
    close(m);
    assert_non_null(created);
    tu_assert_contains(created, "\"status\":\"success\"");
    count = call(f, "query", "users:count", "{}");
    tu_assert_contains(count, "\"value\":1");
    free(count);

    /* Delete the user while the disk is slow, then ask to update it: the
     * update fails on a snapshot that holds the unsynced delete, so its
     * error waits for that delete to be durable too. */
    const char *v = strstr(created, "\"value\":\"");
    assert_non_null(v);
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)strcspn(v + 9, "\""), v + 9);
    free(created);
    cvx__store_hold_sync(true);
    char args[256];
    snprintf(args, sizeof args, "{\"path\":\"users:delete_user\",\"args\":[{\"id\":\"%s\"}],\"format\":\"json\"}", id);
    int d = post(f, "/api/mutation", args);
    assert_null(response(d, 200));
    snprintf(args, sizeof args,
             "{\"path\":\"users:update_email\",\"args\":[{\"id\":\"%s\",\"email\":\"b@x\"}],\"format\":\"json\"}", id);
    int u = post(f, "/api/mutation", args);
    assert_null(response(u, 300));
    cvx__store_hold_sync(false);
    char *deleted = response(d, 10000), *updated = response(u, 10000);
    close(d);
    close(u);
    assert_non_null(deleted);
    assert_non_null(updated);
    tu_assert_contains(deleted, "\"status\":\"success\"");
    tu_assert_contains(updated, "NO_SUCH_USER");
    free(deleted);
    free(updated);
}

/* A failed fsync: the held answer becomes the I/O error (the commit may
 * not survive a restart), and the store accepts no more writes. */
static void test_failed_fsync_answers_error(void **state) {
    fx_t *f = *state;
    cvx__store_fail_sync(1);
    char *r = call(f, "mutation", "users:create_user", "{\"name\":\"Bo\",\"email\":\"bo@x\"}");
    tu_assert_contains(r, "\"status\":\"error\"");
    tu_assert_contains(r, "could not be made durable");
    tu_assert_contains(r, "[Request ID:");
    free(r);
    r = call(f, "mutation", "users:create_user", "{\"name\":\"Cy\",\"email\":\"cy@x\"}");
    tu_assert_contains(r, "could not be made durable");
    free(r);
    /* Reads go on, without the write that may be lost. */
    r = call(f, "query", "users:count", "{}");
    tu_assert_contains(r, "\"value\":0");
    free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answer_waits_for_fsync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_answers_error, setup, teardown),
        cmocka_unit_test(test_query_cache_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
