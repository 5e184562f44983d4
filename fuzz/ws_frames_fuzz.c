/*
 * ws_frames_fuzz.c — libFuzzer target for the WebSocket frame decoder.
 *
 * The input's first byte picks a read size; the rest is what a client
 * sends after the handshake. Decoding it in reads of that size must give
 * the same events, with the same payloads, as decoding it all at once;
 * never consume more than it is given; and never hold a message over the
 * limit.
 */
#include <string.h>

#include "fuzz.h"
#include "server/ws_frame.h"

#define MAX_MSG 4096
#define MAX_EVENTS 64

typedef struct {
    int n;
    cvx__ws_event_t ev[MAX_EVENTS];
    uint64_t sum[MAX_EVENTS]; /* a digest of each event's payload or code */
} outcome_t;

static uint64_t digest(const void *p, size_t n, uint64_t seed) {
    uint64_t h = seed;
    for (size_t i = 0; i < n; i++) h = h * 31 + ((const uint8_t *)p)[i];
    return h;
}

static outcome_t decode(const uint8_t *p, size_t len, size_t step) {
    outcome_t o = {0};
    cvx__ws_decoder_t d = {.max_msg = MAX_MSG};
    size_t have = 0, off = 0;
    while (o.n < MAX_EVENTS) {
        if (off == have) {
            if (have == len) break;
            have = have + step < len ? have + step : len;
        }
        size_t used;
        cvx__ws_event_t ev = cvx__ws_decode(&d, p + off, have - off, &used);
        CHECK(used <= have - off);
        CHECK(d.msg.len <= MAX_MSG);
        off += used;
        if (ev == CVX__WS_EV_NEED) {
            CHECK(off == have);
            continue;
        }
        uint64_t h = ev;
        if (ev == CVX__WS_EV_MESSAGE) h = digest(d.msg.data, d.msg.len, h * 7 + d.msg_op);
        else if (ev == CVX__WS_EV_PING) h = digest(d.ctrl, d.ctrl_len, h);
        else if (ev == CVX__WS_EV_CLOSE || ev == CVX__WS_EV_ERROR) h = h * 65537 + d.close_code;
        o.ev[o.n] = ev;
        o.sum[o.n++] = h;
        if (ev == CVX__WS_EV_ERROR) {
            CHECK(d.why != NULL);
            CHECK(cvx__ws_decode(&d, p + off, have - off, &used) == CVX__WS_EV_ERROR && used == 0);
            break;
        }
        if (ev == CVX__WS_EV_CLOSE) break; /* the server reads nothing after it */
    }
    cvx__ws_decoder_free(&d);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t step = data[0] % 64 + 1;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    outcome_t all = decode(p, len, len ? len : 1), split = decode(p, len, step);
    CHECK(all.n == split.n);
    for (int i = 0; i < all.n; i++) CHECK(all.ev[i] == split.ev[i] && all.sum[i] == split.sum[i]);
    return 0;
}
