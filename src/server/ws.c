/* The WebSocket endpoint of the sync protocol: /api/sync and
 * /api/<clientVersion>/sync on the same port as the HTTP API.
 *
 * The loop thread owns the connection and its frame decoder (ws_frame.c:
 * masking, fragmentation, control frames); the sync engine owns the
 * protocol state and may produce messages on any thread. It signals
 * through wake(), which posts at most one pending notification per socket
 * to the loop's mailbox; the loop then drains the client's queue into the
 * socket. A socket is reference-counted because a notification can
 * outlive the connection.
 *
 * A small received message is handed to the engine on the loop; a big one
 * (a 12,000-query ModifyQuerySet is a megabyte to parse) goes to a worker,
 * and the client's later messages queue behind it there, so that order is
 * kept and the loop, which serves every other client, never parses a
 * megabyte. The engine's messages are framed here and handed to libuv as
 * they are: a subscription's multi-MiB Transition is not copied on the
 * loop either.
 *
 * Closing (RFC 6455 §7): a Close from the client is answered with one and
 * the connection closed once it is out. A close of ours (a protocol error,
 * a client too slow, the memory budget) goes after the messages queued
 * before it, which explain it (a FatalError); then the connection lingers
 * (http1.c) so the client reads it rather than a reset. */
#include "server/server_int.h"
#include "server/ws_frame.h"

#include <stdio.h>
#include <string.h>

#define PING_IDLE_MS 15000
/* Above this many unsent bytes in the socket, stop feeding it: the engine's
 * bounded outbox then decides when a client is too slow. */
#define MAX_BUFFERED (4u << 20)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Messages up to this size are handed to the engine on the loop. */
#define INLINE_MAX (64u << 10)
/* Above this many bytes of messages waiting for a worker, stop reading. */
#define MAX_INQ (4u << 20)

/* A message waiting for the worker that hands this client's messages to
 * the engine. */
typedef struct inmsg {
    struct inmsg *next;
    char *data; /* the decoder's buffer, taken over */
    size_t len;
    size_t cost; /* its allocation: charged to the budget and to in_bytes */
} inmsg_t;

struct cvx__ws {
    atomic_int refs;
    atomic_bool wake_pending;
    cvx__ws_t *wake_next;          /* mailbox list (under mail_mu) */
    cvx_server_t *srv;
    cvx__conn_t *conn;             /* NULL once closed (loop thread) */
    cvx__ws_decoder_t dec;
    cvx_sync_client_t *client;
    uint64_t last_send_ms;
    uint64_t charged;              /* the decoder's unfinished message, charged to the budget */
    /* A close the engine asked for (protocol error, too slow), sent after
     * the messages drained before it (a FatalError that explains it). */
    char close_reason[124];
    bool close_sent, close_received;
    bool reading_done;             /* nothing more is read: a Close either way, or an error */
    bool paused;                   /* reading stopped: the client is busy */
    /* Messages waiting for a worker (receive), charged to the budget. The
     * task that hands them over owns the sync client while it runs: a
     * connection closing meanwhile leaves the disconnect to it. */
    pthread_mutex_t in_mu;
    inmsg_t *in_head, *in_tail;
    size_t in_bytes;
    bool in_running, in_orphan;
};

static void ws_release(cvx__ws_t *w) {
    if (atomic_fetch_sub(&w->refs, 1) == 1) {
        pthread_mutex_destroy(&w->in_mu);
        cvx_free(w);
    }
}

static uint64_t now_ms(void) { return cvx_monotonic_ns() / 1000000; }

/* Still a WebSocket: neither closed nor lingering after our close. */
static bool is_open(const cvx__ws_t *w) { return w->conn && w->conn->state == CVX__C_WS; }

bool cvx__is_sync_path(const cvx__req_t *req) {
    cvx_slice_t p = req->path;
    if (cvx_slice_eq_cstr(p, "/api/sync")) return true;
    /* /api/<version>/sync */
    return p.len > 10 && !memcmp(p.ptr, "/api/", 5) && !memcmp(p.ptr + p.len - 5, "/sync", 5) &&
           !memchr(p.ptr + 5, '/', p.len - 10);
}

/* ---- sending ---------------------------------------------------------------------------- */

/* Sends one frame with this payload, taking `payload` (cvx_malloc'd) over
 * when `take`, else copying it. */
static void send_frame(cvx__ws_t *w, uint8_t op, void *payload, size_t len, bool take) {
    if (!is_open(w) || w->close_sent) {
        if (take) cvx_free(payload);
        return;
    }
    void *body = payload;
    if (!len) {
        if (take) cvx_free(payload);
        body = NULL;
    } else if (!take) {
        body = cvx_malloc(len);
        if (!body) {
            cvx__conn_close(w->conn);
            return;
        }
        memcpy(body, payload, len);
    }
    uint8_t h[10];
    size_t hl = cvx__ws_frame_head(h, op, len);
    if (op == CVX__WS_CLOSE) w->close_sent = true;
    if (cvx__conn_write_parts(w->conn, h, hl, body, len) == 0) w->last_send_ms = now_ms();
}

/* Sends our Close (code, and a reason of at most 123 bytes); nothing is
 * read or sent after it. */
static void send_close(cvx__ws_t *w, uint16_t code, const char *reason) {
    uint8_t p[125];
    size_t n = 0;
    if (code) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        size_t rn = reason ? CVX_MIN(strlen(reason), sizeof p - 2) : 0;
        if (rn) memcpy(p + 2, reason, rn);
        n = 2 + rn;
    }
    send_frame(w, CVX__WS_CLOSE, p, n, false);
    w->reading_done = true;
}

/* Closes the connection once both directions are finished: at once after
 * the client's Close and ours, or by lingering after ours alone. */
static void pump(cvx__ws_t *w) {
    cvx__conn_t *c = w->conn;
    if (!is_open(w)) return;
    /* 1008: policy violation (protocol error or too slow). */
    if (w->close_reason[0] && !w->close_sent) send_close(w, 1008, w->close_reason);
    if (!is_open(w) || !w->close_sent || c->writes > 0) return;
    if (w->close_received) cvx__conn_close(c);
    else cvx__conn_linger(c);
}

/* Bytes on their way to this client. */
static size_t backlog(const cvx__ws_t *w) { return w->conn->tcp.write_queue_size; }

/* Moves the engine's messages for this client into the socket, only as
 * many as it can take (MAX_BUFFERED): the rest stay in the engine's
 * outbox, whose bounds close a client that does not read. `all` when
 * closing. */
static void feed(cvx__ws_t *w, bool all) {
    if (!is_open(w) || !w->client || w->close_sent) return;
    size_t queued = backlog(w);
    if (!all && queued >= MAX_BUFFERED) return;
    char **msgs;
    size_t *lens;
    size_t n = cvx_sync_drain(w->client, all ? SIZE_MAX : MAX_BUFFERED - queued, &msgs, &lens);
    for (size_t i = 0; i < n; i++) {
        send_frame(w, CVX__WS_TEXT, msgs[i], lens[i], true);
        msgs[i] = NULL; /* taken over */
    }
    cvx_sync_free_messages(msgs, lens, n);
}

/* ---- receiving -------------------------------------------------------------------------- */

/* Charges what the decoder holds of an unfinished message to the server's
 * budget; false when the budget is exhausted. */
static bool charge(cvx__ws_t *w, uint64_t held) {
    if (held > w->charged) {
        if (!cvx__budget_take(w->srv, held - w->charged)) return false;
    } else {
        cvx__budget_give(w->srv, w->charged - held);
    }
    w->charged = held;
    return true;
}

/* A worker: hands the client's queued messages to the engine, in order. */
static void hand_over(void *arg) {
    cvx__ws_t *w = arg;
    cvx_sync_client_t *client = w->client; /* stays set while we run */
    for (;;) {
        pthread_mutex_lock(&w->in_mu);
        inmsg_t *m = w->in_orphan ? NULL : w->in_head;
        if (m) {
            if (!(w->in_head = m->next)) w->in_tail = NULL;
            w->in_bytes -= m->cost; /* still charged to the budget until handed over */
        } else {
            w->in_running = false;
        }
        bool orphan = w->in_orphan;
        pthread_mutex_unlock(&w->in_mu);
        if (!m) {
            if (orphan) cvx_sync_disconnect(client);
            else cvx__ws_wake(w->srv, client, w); /* reading may resume */
            break;
        }
        cvx_sync_receive(client, m->data, m->len);
        cvx__budget_give(w->srv, m->cost);
        cvx_free(m->data);
        cvx_free(m);
    }
    ws_release(w);
}

static const char busy_reason[] = "server busy: its memory budget for client messages is in use";

/* Gives a text message to the engine: here, or behind the ones queued for
 * a worker, taking the decoder's buffer over (no copy). */
static void receive(cvx__ws_t *w, cvx_buf_t *msg) {
    pthread_mutex_lock(&w->in_mu);
    bool inline_ok = !w->in_running && msg->len <= INLINE_MAX;
    pthread_mutex_unlock(&w->in_mu);
    if (inline_ok) {
        cvx_sync_receive(w->client, msg->data ? msg->data : "", msg->len);
        return;
    }
    size_t cost = msg->cap;
    bool charged = cvx__budget_take(w->srv, cost);
    inmsg_t *m = charged ? cvx_malloc(sizeof *m) : NULL;
    if (!m) {
        if (charged) cvx__budget_give(w->srv, cost);
        send_close(w, 1013, busy_reason); /* try again later */
        return;
    }
    m->next = NULL;
    m->cost = cost;
    m->data = cvx_buf_detach(msg, &m->len);
    pthread_mutex_lock(&w->in_mu);
    if (w->in_tail) w->in_tail->next = m;
    else w->in_head = m;
    w->in_tail = m;
    w->in_bytes += cost;
    bool start = !w->in_running;
    w->in_running = true;
    pthread_mutex_unlock(&w->in_mu);
    if (start) {
        atomic_fetch_add(&w->refs, 1);
        cvx__pool_task(w->srv, CVX_KIND_QUERY, hand_over, w);
    }
}

static void on_event(cvx__ws_t *w, cvx__ws_event_t ev) {
    cvx__ws_decoder_t *d = &w->dec;
    switch (ev) {
    case CVX__WS_EV_MESSAGE:
        /* The decoder holds it no more: receive charges what it keeps. */
        charge(w, 0);
        if (d->msg_op == CVX__WS_BINARY) send_close(w, 1003, "binary frames are not supported");
        else if (w->client && !w->close_sent) receive(w, &d->msg);
        cvx__ws_decoder_consumed(d);
        break;
    case CVX__WS_EV_PING:
        send_frame(w, CVX__WS_PONG, d->ctrl, d->ctrl_len, false);
        break;
    case CVX__WS_EV_CLOSE:
        /* Echo the client's code (RFC 6455 §5.5.1); none when it gave none. */
        w->close_received = true;
        send_close(w, d->close_code == 1005 ? 0 : d->close_code, NULL);
        break;
    case CVX__WS_EV_ERROR:
        send_close(w, d->close_code, d->why);
        break;
    case CVX__WS_EV_PONG:
    case CVX__WS_EV_NEED:
        break;
    }
}

/* Reading stops while the client has too many calls in flight (the
 * engine wakes us when one ends), while its messages wait for a worker,
 * or while its answers pile up unread (pongs to a ping flood, say); TCP
 * then pushes back on the client. After a Close it stops for good. */
static void update_reading(cvx__ws_t *w) {
    cvx__conn_t *c = w->conn;
    if (!is_open(w) || w->reading_done) return;
    pthread_mutex_lock(&w->in_mu);
    bool queued = w->in_bytes >= MAX_INQ;
    pthread_mutex_unlock(&w->in_mu);
    bool stop = queued || backlog(w) >= MAX_BUFFERED || (w->client && cvx_sync_client_busy(w->client));
    if (stop && !w->paused) {
        w->paused = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    } else if (!stop && w->paused) {
        w->paused = false;
        cvx__conn_resume(c);
    }
}

/* ---- connection hooks (loop thread) -------------------------------------------------- */


void cvx__ws_on_data(cvx__conn_t *c) {
    cvx__ws_t *w = c->ws;
    if (!w) return;
    atomic_fetch_add(&w->refs, 1); /* sending may close the connection */
    while (is_open(w) && !w->reading_done && c->in_off < c->in.len) {
        size_t used;
        cvx__ws_event_t ev =
            cvx__ws_decode(&w->dec, (const uint8_t *)c->in.data + c->in_off, c->in.len - c->in_off, &used);
        c->in_off += used;
        if (ev == CVX__WS_EV_NEED) break;
        on_event(w, ev);
    }
    if (is_open(w)) {
        if (!charge(w, cvx__ws_decoder_held(&w->dec))) {
            charge(w, 0);
            send_close(w, 1013, busy_reason); /* try again later (the client reconnects) */
        }
        if (w->reading_done) {
            /* After a Close nothing more is read, or buffered: reading on
             * only to drop a flood would cost the event loop what the
             * client sends. */
            c->in.len = c->in_off = 0;
            if (!w->paused) {
                w->paused = true;
                uv_read_stop((uv_stream_t *)&c->tcp);
            }
        } else if (c->in_off) {
            /* Keep only unconsumed bytes (a partial frame head). */
            memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
            c->in.len -= c->in_off;
            c->in_off = 0;
        }
        pump(w);
        update_reading(w);
    }
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
    pthread_mutex_lock(&w->in_mu);
    bool running = w->in_running;
    w->in_orphan = running;
    inmsg_t *drop = w->in_head;
    size_t dropped = w->in_bytes;
    w->in_head = w->in_tail = NULL;
    w->in_bytes = 0;
    pthread_mutex_unlock(&w->in_mu);
    while (drop) {
        inmsg_t *m = drop;
        drop = m->next;
        cvx_free(m->data);
        cvx_free(m);
    }
    cvx__budget_give(w->srv, dropped);
    if (!running) { /* else the worker handing messages over disconnects */
        cvx_sync_disconnect(w->client);
        w->client = NULL;
    }
    charge(w, 0);
    cvx__ws_decoder_free(&w->dec);
    ws_release(w);
}

void cvx__ws_flush(cvx__ws_t *w) {
    atomic_store(&w->wake_pending, false);
    if (is_open(w)) {
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
    if (!w || !(w->client = cvx_sync_connect(s->sync, w))) {
        cvx_free(w);
        cvx__send_error(req, 500, "OutOfMemory", "out of memory");
        return;
    }
    w->dec.max_msg = s->cfg.max_body;
    atomic_init(&w->refs, 1);
    pthread_mutex_init(&w->in_mu, NULL);
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
    if (s->sync) cvx_sync_expire(s->sync, (int64_t)(cvx_now_ns() / 1000000000u));
    for (cvx__conn_t *c = s->conns; c; c = c->next) {
        cvx__ws_t *w = c->ws;
        if (c->state == CVX__C_WS && w && now - w->last_send_ms >= PING_IDLE_MS) {
            static const char ping[] = "{\"type\":\"Ping\"}";
            send_frame(w, CVX__WS_TEXT, (void *)ping, sizeof ping - 1, false);
        }
    }
}

void cvx__ws_init(cvx_server_t *s) {
    uv_timer_init(&s->loop, &s->ping_timer);
    s->ping_timer.data = s;
    /* Every second: an expired token is told within a second. */
    uv_timer_start(&s->ping_timer, on_ping_timer, 1000, 1000);
}

void cvx__ws_stop(cvx_server_t *s) { uv_timer_stop(&s->ping_timer); }
