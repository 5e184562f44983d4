/* The WebSocket endpoint of the sync protocol: /api/sync and
 * /api/<clientVersion>/sync on the same port as the HTTP API.
 *
 * The loop thread owns the socket (h2o + wslay); the sync engine owns the
 * protocol state and may produce messages on any thread. It signals through
 * wake(), which posts at most one pending notification per connection to
 * the loop; the loop then drains the client's queue into wslay. A
 * connection is reference-counted because a notification can outlive the
 * socket. */
#include "server/server_int.h"

#include <string.h>
#include <wslay/wslay.h>

#include "h2o/websocket.h"

#define PING_IDLE_MS 15000

struct cvx__ws {
    h2o_multithread_message_t msg; /* wake notification */
    atomic_int refs;
    atomic_bool wake_pending;
    cvx_server_t *srv;
    h2o_websocket_conn_t *conn; /* NULL once closed (loop thread) */
    cvx_sync_client_t *client;
    uint64_t last_send_ms;
    cvx__ws_t *prev, *next; /* all open sockets (loop thread) */
};

static void ws_release(cvx__ws_t *w) {
    if (atomic_fetch_sub(&w->refs, 1) == 1) cvx_free(w);
}

static uint64_t now_ms(void) { return cvx_monotonic_ns() / 1000000; }

static void send_text(cvx__ws_t *w, const char *text, size_t len) {
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    wslay_event_queue_msg(w->conn->ws_ctx, &m);
    w->last_send_ms = now_ms();
}

static void unlink_ws(cvx_server_t *s, cvx__ws_t *w) {
    if (w->prev) w->prev->next = w->next;
    else if (s->sockets == w) s->sockets = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

/* Loop thread: send what the engine queued; close if it asked to. */
static void flush(cvx__ws_t *w) {
    if (!w->conn) return;
    char **msgs;
    size_t *lens;
    size_t n = cvx_sync_drain(w->client, &msgs, &lens);
    for (size_t i = 0; i < n; i++) send_text(w, msgs[i], lens[i]);
    cvx_sync_free_messages(msgs, lens, n);
    const char *reason = cvx_sync_should_close(w->client);
    if (reason) {
        /* 1008: policy violation (protocol error or too slow). */
        wslay_event_queue_close(w->conn->ws_ctx, 1008, (const uint8_t *)reason, CVX_MIN(strlen(reason), 120));
    }
    h2o_websocket_proceed(w->conn);
}

static void on_ws_msg(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg) {
    cvx__ws_t *w = conn->data;
    if (!arg) { /* closed */
        cvx_server_t *s = w->srv;
        unlink_ws(s, w);
        h2o_websocket_close(conn);
        w->conn = NULL;
        cvx_sync_disconnect(w->client);
        w->client = NULL;
        ws_release(w);
        return;
    }
    /* No sending from inside wslay's receive callback: replies are queued
     * by the engine and flushed from the wake notification. */
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        cvx_sync_receive(w->client, (const char *)arg->msg, arg->msg_length);
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
        wslay_event_queue_close(conn->ws_ctx, 1003, (const uint8_t *)"binary frames are not supported", 31);
    }
}

/* Any thread: the engine has something for this client. */
void cvx__ws_wake(void *ctx, cvx_sync_client_t *c, void *conn) {
    cvx_server_t *s = ctx;
    cvx__ws_t *w = conn;
    if (atomic_exchange(&w->wake_pending, true)) return;
    atomic_fetch_add(&w->refs, 1);
    h2o_multithread_send_message(&s->ws_receiver, &w->msg);
}

static void on_wakes(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages) {
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        cvx__ws_t *w = H2O_STRUCT_FROM_MEMBER(cvx__ws_t, msg.link, messages->next);
        h2o_linklist_unlink(&w->msg.link);
        atomic_store(&w->wake_pending, false);
        flush(w);
        ws_release(w);
    }
}

static void on_ping_timer(uv_timer_t *t) {
    cvx_server_t *s = t->data;
    uint64_t now = now_ms();
    for (cvx__ws_t *w = s->sockets; w; w = w->next) {
        if (w->conn && now - w->last_send_ms >= PING_IDLE_MS) {
            send_text(w, "{\"type\":\"Ping\"}", 15);
            h2o_websocket_proceed(w->conn);
        }
    }
}

int cvx__ws_upgrade(cvx_server_t *s, h2o_req_t *req) {
    const char *key;
    if (h2o_is_websocket_handshake(req, &key) != 0 || !key) {
        cvx__send_error(req, 400, "BadRequest", "this endpoint speaks WebSocket only");
        return 0;
    }
    cvx__ws_t *w = cvx_calloc(1, sizeof *w);
    if (!w) {
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return 0;
    }
    atomic_init(&w->refs, 1);
    w->srv = s;
    w->client = cvx_sync_connect(s->sync, w);
    if (!w->client) {
        cvx_free(w);
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return 0;
    }
    w->last_send_ms = now_ms();
    w->conn = h2o_upgrade_to_websocket(req, key, w, on_ws_msg);
    struct wslay_event_context *ctx = w->conn->ws_ctx;
    wslay_event_config_set_max_recv_msg_length(ctx, s->cfg.max_body);
    w->next = s->sockets;
    if (s->sockets) s->sockets->prev = w;
    s->sockets = w;
    return 0;
}

void cvx__ws_init(cvx_server_t *s) {
    h2o_multithread_register_receiver(s->queue, &s->ws_receiver, on_wakes);
    uv_timer_init(&s->loop, &s->ping_timer);
    s->ping_timer.data = s;
    uv_timer_start(&s->ping_timer, on_ping_timer, 5000, 5000);
}

void cvx__ws_close_all(cvx_server_t *s) {
    uv_timer_stop(&s->ping_timer);
    while (s->sockets) {
        cvx__ws_t *w = s->sockets;
        unlink_ws(s, w);
        if (w->conn) {
            h2o_websocket_close(w->conn);
            w->conn = NULL;
        }
        if (w->client) {
            cvx_sync_disconnect(w->client);
            w->client = NULL;
        }
        ws_release(w);
    }
    h2o_multithread_unregister_receiver(s->queue, &s->ws_receiver);
}
