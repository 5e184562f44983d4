/* The WebSocket frame decoder of ws_frame.c: messages whole or in
 * fragments, split between reads anywhere, control frames between
 * fragments, and every protocol error a client can make. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "server/ws_frame.h"

static const uint8_t MASK[4] = {0x12, 0x34, 0x56, 0x78};

/* Appends a client frame (masked with MASK) to b. */
static void frame(cvx_buf_t *b, uint8_t first, const void *payload, size_t len) {
    uint8_t h[14];
    size_t hl = cvx__ws_frame_head(h, 0, len);
    h[0] = first;
    h[1] |= 0x80;
    memcpy(h + hl, MASK, 4);
    assert_int_equal(cvx_buf_append(b, h, hl + 4), 0);
    for (size_t i = 0; i < len; i++) cvx_buf_append_char(b, (char)(((const uint8_t *)payload)[i] ^ MASK[i & 3]));
}

typedef struct {
    int messages, pings, pongs, closes, errors;
    char last[256];
    size_t last_len;
    uint16_t code;
    const char *why;
} seen_t;

/* Decodes `in` fed in pieces of `step` bytes, collecting the events. */
static seen_t decode(const cvx_buf_t *in, size_t step, uint64_t max_msg) {
    seen_t s = {0};
    cvx__ws_decoder_t d = {.max_msg = max_msg};
    size_t have = 0, off = 0;
    while (off < in->len && !s.errors && !s.closes) {
        if (off == have) have = have + step < in->len ? have + step : in->len;
        size_t used;
        cvx__ws_event_t ev = cvx__ws_decode(&d, (const uint8_t *)in->data + off, have - off, &used);
        assert_true(used <= have - off);
        off += used;
        switch (ev) {
        case CVX__WS_EV_MESSAGE:
            s.messages++;
            s.last_len = d.msg.len < sizeof s.last ? d.msg.len : sizeof s.last;
            if (s.last_len) memcpy(s.last, d.msg.data, s.last_len);
            break;
        case CVX__WS_EV_PING:
            s.pings++;
            s.last_len = d.ctrl_len;
            memcpy(s.last, d.ctrl, d.ctrl_len);
            break;
        case CVX__WS_EV_PONG:
            s.pongs++;
            break;
        case CVX__WS_EV_CLOSE:
            s.closes++;
            s.code = d.close_code;
            break;
        case CVX__WS_EV_ERROR:
            s.errors++;
            s.code = d.close_code;
            s.why = d.why;
            break;
        case CVX__WS_EV_NEED:
            assert_int_equal(off, have); /* all of it was consumed */
            break;
        }
    }
    cvx__ws_decoder_free(&d);
    return s;
}

static void test_messages_in_any_split(void **state) {
    (void)state;
    cvx_buf_t in = {0};
    char big[70000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
    frame(&in, 0x81, "hello", 5);            /* text, 7-bit length */
    frame(&in, 0x81, big, 300);              /* 16-bit length */
    frame(&in, 0x01, "frag", 4);             /* text, not final */
    frame(&in, 0x89, "pi", 2);               /* a ping between fragments */
    frame(&in, 0x00, "men", 3);              /* continuation */
    frame(&in, 0x80, "ted", 3);              /* final continuation */
    frame(&in, 0x81, big, sizeof big);       /* 64-bit length */
    frame(&in, 0x81, "", 0);                 /* empty */
    frame(&in, 0x8A, "", 0);                 /* pong */
    frame(&in, 0x88, "\x03\xe8" "bye", 5);   /* close 1000 */
    size_t steps[] = {1, 2, 3, 7, 13, 64, 4096, in.len};
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        seen_t s = decode(&in, steps[k], 1 << 20);
        assert_int_equal(s.messages, 5);
        assert_int_equal(s.pings, 1);
        assert_int_equal(s.pongs, 1);
        assert_int_equal(s.closes, 1);
        assert_int_equal(s.errors, 0);
        assert_int_equal(s.code, 1000);
    }
    /* The fragmented message arrives whole, the ping inside it apart. */
    cvx_buf_t two = {0};
    frame(&two, 0x01, "frag", 4);
    frame(&two, 0x89, "pi", 2);
    frame(&two, 0x80, "ment", 4);
    cvx__ws_decoder_t d = {.max_msg = 100};
    size_t used, off = 0;
    assert_int_equal(cvx__ws_decode(&d, (const uint8_t *)two.data, two.len, &used), CVX__WS_EV_PING);
    assert_memory_equal(d.ctrl, "pi", 2);
    off += used;
    assert_int_equal(cvx__ws_decode(&d, (const uint8_t *)two.data + off, two.len - off, &used), CVX__WS_EV_MESSAGE);
    assert_int_equal(d.msg.len, 8);
    assert_memory_equal(d.msg.data, "fragment", 8);
    assert_int_equal(d.msg_op, CVX__WS_TEXT);
    assert_int_equal(off + used, two.len);
    assert_int_equal(cvx__ws_decoder_held(&d), 0);
    cvx__ws_decoder_free(&d);
    cvx_buf_free(&two);
    cvx_buf_free(&in);
}

static void test_unmasks_at_every_offset(void **state) {
    (void)state;
    /* The 8-byte unmasking must agree with the byte-wise rule wherever a
     * read boundary falls inside the payload. */
    uint8_t payload[37];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7 + 3);
    cvx_buf_t in = {0};
    frame(&in, 0x82, payload, sizeof payload);
    for (size_t step = 1; step <= in.len; step++) {
        cvx__ws_decoder_t d = {.max_msg = 1000};
        size_t off = 0, have = 0, used;
        cvx__ws_event_t ev = CVX__WS_EV_NEED;
        while (ev == CVX__WS_EV_NEED && off < in.len) {
            have = have + step < in.len ? have + step : in.len;
            ev = cvx__ws_decode(&d, (const uint8_t *)in.data + off, have - off, &used);
            off += used;
        }
        assert_int_equal(ev, CVX__WS_EV_MESSAGE);
        assert_int_equal(d.msg_op, CVX__WS_BINARY);
        assert_int_equal(d.msg.len, sizeof payload);
        assert_memory_equal(d.msg.data, payload, sizeof payload);
        cvx__ws_decoder_free(&d);
    }
    cvx_buf_free(&in);
}

static void expect_error(const char *what, cvx_buf_t *in, uint64_t max_msg, uint16_t code, const char *why_part) {
    seen_t s = decode(in, in->len, max_msg);
    if (s.errors != 1) fail_msg("%s: no error", what);
    assert_int_equal(s.code, code);
    if (!strstr(s.why, why_part)) fail_msg("%s: \"%s\" lacks \"%s\"", what, s.why, why_part);
    in->len = 0;
}

static void test_protocol_errors(void **state) {
    (void)state;
    cvx_buf_t in = {0};
    frame(&in, 0xC1, "x", 1); /* RSV1 */
    expect_error("reserved bit", &in, 100, 1002, "reserved bits");
    frame(&in, 0x83, "x", 1);
    expect_error("opcode 3", &in, 100, 1002, "unknown opcode");
    frame(&in, 0x80, "x", 1);
    expect_error("lone continuation", &in, 100, 1002, "continuation");
    frame(&in, 0x01, "a", 1);
    frame(&in, 0x81, "b", 1);
    expect_error("interleaved messages", &in, 100, 1002, "before the previous one ended");
    frame(&in, 0x09, "p", 1);
    expect_error("fragmented ping", &in, 100, 1002, "must not be fragmented");
    char big[126] = {0};
    frame(&in, 0x89, big, sizeof big);
    expect_error("long ping", &in, 100, 1002, "at most 125");
    frame(&in, 0x88, "\x03", 1);
    expect_error("1-byte close", &in, 100, 1002, "1 byte");
    frame(&in, 0x81, big, 101);
    expect_error("too big", &in, 100, 1009, "too big");
    frame(&in, 0x01, big, 60);
    frame(&in, 0x80, big, 60);
    expect_error("too big in fragments", &in, 100, 1009, "too big");
    /* Unmasked. */
    uint8_t h[] = {0x81, 0x01, 'x'};
    cvx_buf_append(&in, h, sizeof h);
    expect_error("unmasked", &in, 100, 1002, "masked");
    /* A 64-bit length with its top bit set. */
    uint8_t h64[] = {0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    cvx_buf_append(&in, h64, sizeof h64);
    expect_error("length top bit", &in, UINT64_MAX, 1002, "top bit");
    /* After an error, the decoder stays failed. */
    cvx__ws_decoder_t d = {.max_msg = 10};
    size_t used;
    assert_int_equal(cvx__ws_decode(&d, h, sizeof h, &used), CVX__WS_EV_ERROR);
    assert_int_equal(cvx__ws_decode(&d, (const uint8_t *)"\x81", 1, &used), CVX__WS_EV_ERROR);
    assert_int_equal(used, 0);
    cvx__ws_decoder_free(&d);
    /* Close codes a peer may not send, and a reason that is not UTF-8. */
    frame(&in, 0x88, "\x03\xed", 2); /* 1005 */
    expect_error("close 1005", &in, 100, 1002, "invalid close code");
    frame(&in, 0x88, "\x03\xe7", 2); /* 999 */
    expect_error("close 999", &in, 100, 1002, "invalid close code");
    frame(&in, 0x88, "\x13\x88", 2); /* 5000 */
    expect_error("close 5000", &in, 100, 1002, "invalid close code");
    frame(&in, 0x88, "\x03\xe8\xff", 3);
    expect_error("close reason", &in, 100, 1007, "UTF-8");
    frame(&in, 0x88, "\x0f\xa0ok", 4); /* 4000, an application's code */
    seen_t ok = decode(&in, 1, 100);
    assert_int_equal(ok.closes, 1);
    assert_int_equal(ok.code, 4000);
    in.len = 0;
    /* A close without a code reports 1005. */
    frame(&in, 0x88, "", 0);
    seen_t s = decode(&in, 1, 100);
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.code, 1005);
    cvx_buf_free(&in);
}

static void test_held_memory(void **state) {
    (void)state;
    /* An unfinished message is held (and charged); a finished one, once
     * consumed, leaves nothing big behind on an idle connection. */
    static char big[100000];
    cvx_buf_t in = {0};
    frame(&in, 0x01, big, sizeof big / 2);
    size_t first = in.len;
    frame(&in, 0x80, big, sizeof big / 2);
    cvx__ws_decoder_t d = {.max_msg = 1 << 20};
    size_t used;
    assert_int_equal(cvx__ws_decode(&d, (const uint8_t *)in.data, first, &used), CVX__WS_EV_NEED);
    assert_true(cvx__ws_decoder_held(&d) >= sizeof big / 2);
    assert_int_equal(cvx__ws_decode(&d, (const uint8_t *)in.data + first, in.len - first, &used),
                     CVX__WS_EV_MESSAGE);
    assert_int_equal(d.msg.len, sizeof big);
    assert_int_equal(cvx__ws_decoder_held(&d), 0);
    cvx__ws_decoder_consumed(&d);
    assert_int_equal(d.msg.cap, 0);
    assert_int_equal(cvx__ws_decoder_held(&d), 0);
    cvx__ws_decoder_free(&d);
    cvx_buf_free(&in);
}

static void test_frame_head(void **state) {
    (void)state;
    uint8_t h[10];
    assert_int_equal(cvx__ws_frame_head(h, CVX__WS_TEXT, 5), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 5);
    assert_int_equal(cvx__ws_frame_head(h, CVX__WS_CLOSE, 126), 4);
    assert_int_equal(h[0], 0x88);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2] << 8 | h[3], 126);
    assert_int_equal(cvx__ws_frame_head(h, CVX__WS_TEXT, 65536), 10);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 1);
    assert_int_equal(h[8], 0);
    assert_int_equal(h[9], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_in_any_split),
        cmocka_unit_test(test_unmasks_at_every_offset),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_held_memory),
        cmocka_unit_test(test_frame_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
