/* The WebSocket endpoint of the sync protocol: /api/sync and
 * /api/<clientVersion>/sync on the same port as the HTTP API.
 *
 * The loop thread owns the connection and its wslay context (framing,
 * masking, control frames, fragmentation); the sync engine owns the
 * protocol state and may produce messages on any thread. It signals
 * through wake(), which posts at most one pending notification per socket
 * to the loop's mailbox; the loop then drains the client's queue into
 * wslay. A socket is reference-counted because a notification can outlive
 * the connection.
 *
 * Nothing is sent from inside wslay's callbacks: received messages go to
 * the engine, whose replies come back through wake(). */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>
#include <wslay/wslay.h>

#define PING_IDLE_MS 15000
/* Above this many unsent bytes in the socket, stop feeding it: the engine's
 * bounded outbox then decides when a client is too slow. */
#define MAX_BUFFERED (4u << 20)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct cvx__ws {
    atomic_int refs;
    atomic_bool wake_pending;
    cvx__ws_t *wake_next;          /* mailbox list (under mail_mu) */
    cvx_server_t *srv;
    cvx__conn_t *conn;             /* NULL once closed (loop thread) */
    wslay_event_context_ptr ctx;
    cvx_sync_client_t *client;
    uint64_t last_send_ms;
    cvx_buf_t out;                 /* frames wslay produced in one send */
    /* Bytes handed to wslay since the last whole message: an upper bound
     * of what it buffers for an unfinished one, charged to the server's
     * memory budget until the message completes. */
    uint64_t partial, charged;
    /* A close the engine asked for (protocol error, too slow), sent once
     * the messages queued before it are out: wslay sends control frames
     * ahead of data, which would lose a FatalError that explains it. */
    char close_reason[124];
    bool close_queued;
    bool paused;                   /* reading stopped: the client is busy */
};

static void ws_release(cvx__ws_t *w) {
    if (atomic_fetch_sub(&w->refs, 1) == 1) cvx_free(w);
}

static uint64_t now_ms(void) { return cvx_monotonic_ns() / 1000000; }

bool cvx__is_sync_path(const cvx__req_t *req) {
    cvx_slice_t p = req->path;
    if (cvx_slice_eq_cstr(p, "/api/sync")) return true;
    /* /api/<version>/sync */
    return p.len > 10 && !memcmp(p.ptr, "/api/", 5) && !memcmp(p.ptr + p.len - 5, "/sync", 5) &&
           !memchr(p.ptr + 5, '/', p.len - 10);
}

/* ---- wslay I/O callbacks ---------------------------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user) {
    cvx__ws_t *w = user;
    cvx__conn_t *c = w->conn;
    (void)flags;
    size_t avail = c ? c->in.len - c->in_off : 0;
    if (avail == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = CVX_MIN(avail, len);
    memcpy(buf, c->in.data + c->in_off, n);
    c->in_off += n;
    w->partial += n;
    return (ssize_t)n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user) {
    cvx__ws_t *w = user;
    (void)flags;
    if (!w->conn || w->conn->tcp.write_queue_size + w->out.len >= MAX_BUFFERED) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (cvx_buf_append(&w->out, data, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user) {
    cvx__ws_t *w = user;
    (void)ctx;
    /* A control frame may arrive between a message's fragments, which
     * wslay keeps meanwhile: only a whole data message ends the charge. */
    if (!wslay_is_ctrl_frame(arg->opcode)) w->partial = 0;
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        if (w->client) cvx_sync_receive(w->client, (const char *)arg->msg, arg->msg_length);
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
        wslay_event_queue_close(w->ctx, 1003, (const uint8_t *)"binary frames are not supported", 31);
    }
    /* Ping/pong/close are answered by wslay itself. */
}

/* Runs wslay's writer and hands its frames to the connection; closes the
 * connection once both directions are finished. */
static void pump(cvx__ws_t *w) {
    cvx__conn_t *c = w->conn;
    if (!c) return;
    if (wslay_event_send(w->ctx) != 0) {
        cvx__conn_close(c);
        return;
    }
    if (w->close_reason[0] && !w->close_queued && wslay_event_get_queued_msg_count(w->ctx) == 0) {
        /* 1008: policy violation (protocol error or too slow). */
        w->close_queued = true;
        wslay_event_queue_close(w->ctx, 1008, (const uint8_t *)w->close_reason, strlen(w->close_reason));
        if (wslay_event_send(w->ctx) != 0) {
            cvx__conn_close(c);
            return;
        }
    }
    if (w->out.len) {
        /* The frames go out as they are, without another copy. */
        if (cvx__conn_write_take(c, &w->out)) return; /* the connection closed itself */
        w->last_send_ms = now_ms();
    }
    if (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx) && c->writes == 0) cvx__conn_close(c);
}

static void send_text(cvx__ws_t *w, const char *text, size_t len);

/* Bytes on their way to this client: queued in wslay, framed, or in
 * libuv's write queue. */
static size_t backlog(const cvx__ws_t *w) {
    return wslay_event_get_queued_msg_length(w->ctx) + w->out.len + w->conn->tcp.write_queue_size;
}

/* Moves the engine's messages for this client into wslay, only as many as
 * the socket can take (MAX_BUFFERED): the rest stay in the engine's
 * outbox, whose bounds close a client that does not read. `all` when
 * closing. */
static void feed(cvx__ws_t *w, bool all) {
    if (!w->conn || !w->client) return;
    size_t queued = backlog(w);
    if (!all && queued >= MAX_BUFFERED) return;
    char **msgs;
    size_t *lens;
    size_t n = cvx_sync_drain(w->client, all ? SIZE_MAX : MAX_BUFFERED - queued, &msgs, &lens);
    for (size_t i = 0; i < n; i++) send_text(w, msgs[i], lens[i]);
    cvx_sync_free_messages(msgs, lens, n);
}

/* Reading stops while the client has too many calls in flight (the
 * engine wakes us when one ends) or while its answers pile up unread
 * (pongs to a ping flood, say); TCP then pushes back on the client. After
 * a Close frame it stops for good (cvx__ws_on_data). */
static void update_reading(cvx__ws_t *w) {
    cvx__conn_t *c = w->conn;
    if (!c || !wslay_event_want_read(w->ctx)) return;
    bool stop = wslay_event_want_read(w->ctx) && (backlog(w) >= MAX_BUFFERED || (w->client && cvx_sync_client_busy(w->client)));
    if (stop && !w->paused) {
        w->paused = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    } else if (!stop && w->paused) {
        w->paused = false;
        cvx__conn_resume(c);
    }
}

/* ---- connection hooks (loop thread) -------------------------------------------------- */

/* Charges what wslay holds of an unfinished message to the server's
 * budget; false when the budget is exhausted. */
static bool charge(cvx__ws_t *w) {
    if (w->partial > w->charged) {
        if (!cvx__budget_take(w->srv, w->partial - w->charged)) return false;
    } else {
        cvx__budget_give(w->srv, w->charged - w->partial);
    }
    w->charged = w->partial;
    return true;
}

void cvx__ws_on_data(cvx__conn_t *c) {
    cvx__ws_t *w = c->ws;
    if (!w) return;
    if (wslay_event_recv(w->ctx) != 0) {
        cvx__conn_close(c);
        return;
    }
    atomic_fetch_add(&w->refs, 1); /* pump may close the connection */
    if (!charge(w)) {
        /* 1013: try again later (the client reconnects). */
        static const char why[] = "server busy: its memory budget for client messages is in use";
        w->partial = 0;
        charge(w);
        wslay_event_queue_close(w->ctx, 1013, (const uint8_t *)why, sizeof why - 1);
        wslay_event_shutdown_read(w->ctx);
    }
    if (!wslay_event_want_read(w->ctx)) {
        /* After a Close frame nothing more is read, or buffered: the
         * socket closes once our close frame is out, or at the write
         * timeout if the client does not read it. Reading on only to drop
         * a flood would cost the event loop what the client sends. */
        c->in.len = c->in_off = 0;
        if (!w->paused) {
            w->paused = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    } else if (c->in_off) {
        /* Keep only unconsumed bytes (a partial frame). */
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    pump(w);
    update_reading(w);
    ws_release(w);
}

void cvx__ws_on_written(cvx__conn_t *c) {
    cvx__ws_t *w = c->ws;
    if (!w) return;
    atomic_fetch_add(&w->refs, 1);
    feed(w, false);
    pump(w);
    update_reading(w);
    ws_release(w);
}

void cvx__ws_closed(cvx__conn_t *c) {
    cvx__ws_t *w = c->ws;
    c->ws = NULL;
    w->conn = NULL;
    cvx_sync_disconnect(w->client);
    w->client = NULL;
    w->partial = 0;
    charge(w);
    wslay_event_context_free(w->ctx);
    w->ctx = NULL;
    cvx_buf_free(&w->out);
    ws_release(w);
}

static void send_text(cvx__ws_t *w, const char *text, size_t len) {
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    wslay_event_queue_msg(w->ctx, &m);
}

void cvx__ws_flush(cvx__ws_t *w) {
    atomic_store(&w->wake_pending, false);
    if (w->conn) {
        const char *reason = cvx_sync_should_close(w->client);
        /* A closing client's last messages (a FatalError) all go before
         * the close; the engine has already dropped a slow one's backlog. */
        feed(w, reason != NULL);
        if (reason && !w->close_reason[0]) {
            snprintf(w->close_reason, sizeof w->close_reason, "%s", reason);
            /* A close reason is at most 123 bytes; do not end inside a
             * UTF-8 sequence. */
            size_t rn = strlen(w->close_reason), lead = rn;
            while (lead > 0 && ((unsigned char)w->close_reason[lead - 1] & 0xC0) == 0x80) lead--;
            if (lead > 0) {
                unsigned char b0 = (unsigned char)w->close_reason[lead - 1];
                size_t need = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 1;
                if (lead - 1 + need > rn) w->close_reason[lead - 1] = '\0';
            }
        }
        pump(w);
        update_reading(w);
    }
    ws_release(w); /* the mailbox's reference */
}

cvx__ws_t *cvx__ws_next_wake(cvx__ws_t *w) { return w->wake_next; }

/* Any thread: the engine has something for this client. */
void cvx__ws_wake(void *ctx, cvx_sync_client_t *client, void *conn) {
    cvx_server_t *s = ctx;
    cvx__ws_t *w = conn;
    (void)client;
    if (atomic_exchange(&w->wake_pending, true)) return;
    atomic_fetch_add(&w->refs, 1);
    pthread_mutex_lock(&s->mail_mu);
    if (s->mail_closed) {
        pthread_mutex_unlock(&s->mail_mu);
        ws_release(w);
        return;
    }
    w->wake_next = s->wakes;
    s->wakes = w;
    uv_async_send(&s->mail_async);
    pthread_mutex_unlock(&s->mail_mu);
}

/* ---- the handshake (RFC 6455 §4.2) --------------------------------------------------- */

static bool has_token(cvx_slice_t v, const char *tok) {
    size_t n = strlen(tok);
    for (size_t i = 0; i + n <= v.len; i++) {
        if (strncasecmp(v.ptr + i, tok, n) != 0) continue;
        bool start = i == 0 || v.ptr[i - 1] == ',' || v.ptr[i - 1] == ' ';
        bool end = i + n == v.len || v.ptr[i + n] == ',' || v.ptr[i + n] == ' ';
        if (start && end) return true;
    }
    return false;
}

void cvx__ws_upgrade(cvx_server_t *s, cvx__req_t *req) {
    cvx_slice_t key = cvx__req_header(req, "sec-websocket-key");
    cvx_slice_t version = cvx__req_header(req, "sec-websocket-version");
    if (!cvx__req_method_is(req, "GET") || !has_token(cvx__req_header(req, "upgrade"), "websocket") ||
        !has_token(cvx__req_header(req, "connection"), "upgrade") || key.len == 0 || key.len > 64) {
        cvx__send_error(req, 400, "BadRequest", "this endpoint speaks WebSocket only");
        return;
    }
    if (!cvx_slice_eq_cstr(version, "13")) {
        cvx_buf_t h = {0};
        cvx__header(&h, "sec-websocket-version", "13");
        cvx__respond(req, 426, &h, "", 0);
        cvx_buf_free(&h);
        return;
    }
    cvx__ws_t *w = cvx_calloc(1, sizeof *w);
    struct wslay_event_callbacks cb = {.recv_callback = on_recv, .send_callback = on_send, .on_msg_recv_callback = on_msg};
    if (!w || wslay_event_context_server_init(&w->ctx, &cb, w) != 0 || !(w->client = cvx_sync_connect(s->sync, w))) {
        if (w && w->ctx) wslay_event_context_free(w->ctx);
        cvx_free(w);
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return;
    }
    wslay_event_config_set_max_recv_msg_length(w->ctx, s->cfg.max_body);
    atomic_init(&w->refs, 1);
    w->srv = s;
    w->last_send_ms = now_ms();

    char src[128], accept[64];
    uint8_t digest[20];
    int n = snprintf(src, sizeof src, "%.*s%s", (int)key.len, key.ptr, WS_GUID);
    cvx_sha1(src, (size_t)n, digest);
    cvx_buf_t b64 = {0};
    cvx_base64_encode(&b64, digest, sizeof digest);
    snprintf(accept, sizeof accept, "%.*s", (int)b64.len, b64.data ? b64.data : "");
    cvx_buf_free(&b64);
    char head[256];
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                 "sec-websocket-accept: %s\r\n\r\n",
                 accept);

    /* The connection is a WebSocket from here on; the request is done. */
    cvx__conn_t *c = req->conn;
    req->responded = true;
    c->req = NULL;
    cvx__req_release(req);
    c->ws = w;
    w->conn = c;
    c->state = CVX__C_WS;
    if (cvx__conn_write(c, head, (size_t)n) != 0) return;
    cvx__conn_resume(c);
    if (c->in.len > c->in_off) cvx__ws_on_data(c); /* frames sent right behind the handshake */
}

/* ---- keep-alive ------------------------------------------------------------------------ */

static void on_ping_timer(uv_timer_t *t) {
    cvx_server_t *s = t->data;
    uint64_t now = now_ms();
    for (cvx__conn_t *c = s->conns; c; c = c->next) {
        cvx__ws_t *w = c->ws;
        if (c->state == CVX__C_WS && w && now - w->last_send_ms >= PING_IDLE_MS) {
            send_text(w, "{\"type\":\"Ping\"}", 15);
            pump(w);
        }
    }
}

void cvx__ws_init(cvx_server_t *s) {
    uv_timer_init(&s->loop, &s->ping_timer);
    s->ping_timer.data = s;
    uv_timer_start(&s->ping_timer, on_ping_timer, 5000, 5000);
}

void cvx__ws_stop(cvx_server_t *s) { uv_timer_stop(&s->ping_timer); }
