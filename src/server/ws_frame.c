/* WebSocket frames (RFC 6455 §5): see ws_frame.h. */
#include "server/ws_frame.h"

#include <string.h>

/* A message buffer larger than this is freed once its message is
 * consumed: an idle connection holds no more than this, uncharged. */
#define KEEP_MSG_CAP (4u << 10)

static cvx__ws_event_t fail(cvx__ws_decoder_t *d, uint16_t code, const char *why) {
    d->failed = true;
    d->close_code = code;
    d->why = why;
    return CVX__WS_EV_ERROR;
}

/* Copies n payload bytes, unmasking them: the mask repeats every 4 bytes,
 * so 8 at a time with the mask rotated to the payload position. */
static void unmask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], uint64_t pos) {
    uint8_t m8[8];
    for (int i = 0; i < 8; i++) m8[i] = mask[(pos + (uint64_t)i) & 3];
    uint64_t m;
    memcpy(&m, m8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= m;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ m8[i & 7];
}

/* Bytes the head has in all, once its first two are known. */
static size_t head_len(const uint8_t *h) {
    uint8_t l7 = h[1] & 0x7F;
    return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* The head is complete: checks it against the protocol and the state. */
static cvx__ws_event_t start_payload(cvx__ws_decoder_t *d) {
    const uint8_t *h = d->head;
    d->fin = h[0] & 0x80;
    d->op = h[0] & 0x0F;
    if (h[0] & 0x70) return fail(d, 1002, "reserved bits set (no extension was negotiated)");
    if (!(h[1] & 0x80)) return fail(d, 1002, "a client's frames must be masked");
    uint64_t len = h[1] & 0x7F;
    size_t at = 2;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
        if (len >> 63) return fail(d, 1002, "frame length has its top bit set");
        at = 10;
    }
    memcpy(d->mask, h + at, 4);
    switch (d->op) {
    case CVX__WS_CLOSE:
    case CVX__WS_PING:
    case CVX__WS_PONG:
        if (!d->fin) return fail(d, 1002, "a control frame must not be fragmented");
        if (len > sizeof d->ctrl) return fail(d, 1002, "a control frame's payload must be at most 125 bytes");
        d->ctrl_len = 0;
        break;
    case CVX__WS_CONT:
        if (!d->msg_op) return fail(d, 1002, "a continuation frame without a message to continue");
        break;
    case CVX__WS_TEXT:
    case CVX__WS_BINARY:
        if (d->msg_op) return fail(d, 1002, "a new message began before the previous one ended");
        d->msg_op = d->op;
        break;
    default:
        return fail(d, 1002, "unknown opcode");
    }
    if (d->op < CVX__WS_CLOSE && len > d->max_msg - d->msg.len) return fail(d, 1009, "message too big");
    d->left = len;
    d->pos = 0;
    d->in_payload = true;
    return CVX__WS_EV_NEED;
}

/* The frame's payload is all in: the event it makes, if any. */
static cvx__ws_event_t end_frame(cvx__ws_decoder_t *d) {
    d->in_payload = false;
    d->head_have = 0;
    switch (d->op) {
    case CVX__WS_PING:
        return CVX__WS_EV_PING;
    case CVX__WS_PONG:
        return CVX__WS_EV_PONG;
    case CVX__WS_CLOSE: {
        if (d->ctrl_len == 1) return fail(d, 1002, "a close frame's payload cannot be 1 byte");
        uint16_t code = d->ctrl_len >= 2 ? (uint16_t)(d->ctrl[0] << 8 | d->ctrl[1]) : 1005;
        /* Codes a peer may send (RFC 6455 §7.4): 1005, 1006 and 1015 only
         * ever describe a close, they are never sent. */
        bool sendable = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                        (code >= 3000 && code <= 4999);
        if (d->ctrl_len >= 2 && !sendable) return fail(d, 1002, "invalid close code");
        if (d->ctrl_len > 2 && !cvx_utf8_valid((const char *)d->ctrl + 2, d->ctrl_len - 2))
            return fail(d, 1007, "close reason is not valid UTF-8");
        d->close_code = code;
        return CVX__WS_EV_CLOSE;
    }
    default:
        if (!d->fin) return CVX__WS_EV_NEED;
        d->msg_done = true;
        return CVX__WS_EV_MESSAGE;
    }
}

cvx__ws_event_t cvx__ws_decode(cvx__ws_decoder_t *d, const uint8_t *p, size_t n, size_t *used) {
    *used = 0;
    if (d->failed) return CVX__WS_EV_ERROR;
    if (d->msg_done) cvx__ws_decoder_consumed(d);
    size_t off = 0;
    for (;;) {
        if (!d->in_payload) {
            /* The head: 2 bytes, then as many as they announce. */
            size_t need = d->head_have < 2 ? 2 : head_len(d->head);
            while (d->head_have < need && off < n) {
                d->head[d->head_have++] = p[off++];
                if (d->head_have == 2) need = head_len(d->head);
            }
            if (d->head_have < need) break;
            cvx__ws_event_t ev = start_payload(d);
            if (ev != CVX__WS_EV_NEED) {
                *used = off;
                return ev;
            }
        }
        size_t take = (size_t)CVX_MIN((uint64_t)(n - off), d->left);
        if (take) {
            uint8_t *dst;
            if (d->op >= CVX__WS_CLOSE) {
                dst = d->ctrl + d->ctrl_len;
                d->ctrl_len += take;
            } else {
                if (cvx_buf_reserve(&d->msg, take)) {
                    *used = off;
                    return fail(d, 1011, "server out of memory");
                }
                dst = (uint8_t *)d->msg.data + d->msg.len;
                d->msg.len += take;
            }
            unmask_copy(dst, p + off, take, d->mask, d->pos);
            off += take;
            d->pos += take;
            d->left -= take;
        }
        if (d->left) break;
        cvx__ws_event_t ev = end_frame(d);
        if (ev != CVX__WS_EV_NEED) {
            *used = off;
            return ev;
        }
        if (off == n) break;
    }
    *used = off;
    return CVX__WS_EV_NEED;
}

void cvx__ws_decoder_consumed(cvx__ws_decoder_t *d) {
    d->msg_done = false;
    d->msg_op = 0;
    if (d->msg.cap > KEEP_MSG_CAP) cvx_buf_free(&d->msg);
    d->msg.len = 0;
}

size_t cvx__ws_decoder_held(const cvx__ws_decoder_t *d) { return d->msg_op && !d->msg_done ? d->msg.cap : 0; }

void cvx__ws_decoder_free(cvx__ws_decoder_t *d) { cvx_buf_free(&d->msg); }

size_t cvx__ws_frame_head(uint8_t *out, uint8_t op, uint64_t len) {
    out[0] = (uint8_t)(0x80 | op);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
