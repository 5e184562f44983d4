/* Private to the server layer: decoding the WebSocket frames a client
 * sends (RFC 6455 §5) and framing what the server sends. Pure functions
 * over bytes (no I/O, no libuv), so that a fuzzer reaches every line
 * (fuzz/ws_frames_fuzz.c); ws.c does the I/O and the protocol around it.
 *
 * Why our own, not wslay's: docs/decisions.md (a client's megabyte
 * messages cost the event loop several times more in wslay, which
 * unmasks byte by byte and copies each message twice). */
#ifndef CVX_WS_FRAME_H
#define CVX_WS_FRAME_H

#include "util/util.h"

enum { CVX__WS_CONT = 0x0, CVX__WS_TEXT = 0x1, CVX__WS_BINARY = 0x2, CVX__WS_CLOSE = 0x8, CVX__WS_PING = 0x9,
       CVX__WS_PONG = 0xA };

/* What a call to cvx__ws_decode found. */
typedef enum {
    CVX__WS_EV_NEED,    /* every byte given was consumed: more are needed */
    CVX__WS_EV_MESSAGE, /* a whole data message: msg (op in msg_op); then
                           call cvx__ws_decoder_consumed */
    CVX__WS_EV_PING,    /* ctrl[0..ctrl_len): answer with a pong of it */
    CVX__WS_EV_PONG,
    CVX__WS_EV_CLOSE,   /* close_code (1005: none given); reason in ctrl+2 */
    CVX__WS_EV_ERROR,   /* the client broke the protocol: close with
                           close_code (1002, 1007, 1009; 1011 out of memory)
                           and why */
} cvx__ws_event_t;

/* One client's decoding state. Zero it, then set max_msg; free with
 * cvx__ws_decoder_free. */
typedef struct {
    uint64_t max_msg;   /* the largest data message accepted (1009 above) */
    cvx_buf_t msg;      /* the data message being assembled (or just ended) */
    uint8_t msg_op;     /* its opcode; 0 when none is in progress */
    bool msg_done;      /* msg was handed out: cleared on the next call */
    /* The frame being read. */
    uint8_t head[14];
    size_t head_have;
    bool in_payload;
    uint8_t op;
    bool fin;
    uint8_t mask[4];
    uint64_t left, pos; /* payload bytes still to come, and read so far */
    uint8_t ctrl[125];  /* a control frame's payload */
    size_t ctrl_len;
    uint16_t close_code;
    const char *why;    /* ERROR: what was wrong, for the close reason */
    bool failed;
} cvx__ws_decoder_t;

/* Decodes from p[0..n), stopping at the first event: sets *used to the
 * bytes consumed. The message or control payload of the event stays valid
 * until the next call. After ERROR, every call returns ERROR again. */
cvx__ws_event_t cvx__ws_decode(cvx__ws_decoder_t *d, const uint8_t *p, size_t n, size_t *used);

/* The MESSAGE event's message was dealt with: its buffer is emptied (and
 * freed if big). The next cvx__ws_decode does it otherwise; the caller may
 * also take the buffer (cvx_buf_detach) before this. */
void cvx__ws_decoder_consumed(cvx__ws_decoder_t *d);

/* Bytes the decoder holds of an unfinished message (for the server's
 * memory budget); a finished one is not counted. */
size_t cvx__ws_decoder_held(const cvx__ws_decoder_t *d);

void cvx__ws_decoder_free(cvx__ws_decoder_t *d);

/* Writes the head of an unmasked server frame (FIN set) with this opcode
 * and payload length into out (at least 10 bytes); returns its length. */
size_t cvx__ws_frame_head(uint8_t *out, uint8_t op, uint64_t len);

#endif
