/*
 * http_chunked_fuzz.c — libFuzzer target for the chunked body decoder.
 *
 * The input's first byte picks a read size; the rest is a body in chunked
 * coding. Decoding it as it arrives in reads of that size must give the
 * same outcome and the same bytes as decoding it all at once, and never
 * more body bytes than the input holds.
 */
#include <string.h>

#include "fuzz.h"
#include "server/http_parse.h"

typedef struct {
    int status;
    int done;
    size_t out_len;
    uint64_t sum; /* a cheap digest of the body bytes */
} outcome_t;

static outcome_t decode(const char *p, size_t len, size_t step) {
    outcome_t o = {0, 0, 0, 0};
    cvx__chunked_t st = {0};
    size_t have = 0, off = 0;
    for (;;) {
        if (off == have) {
            if (have == len) break;
            have = have + step < len ? have + step : len;
        }
        size_t used, data;
        bool done;
        o.status = cvx__chunked_step(&st, p + off, have - off, &used, &data, &done);
        if (o.status) break;
        CHECK(data <= used && off + used <= have);
        for (size_t i = 0; i < data; i++) o.sum = o.sum * 31 + (unsigned char)p[off + i];
        o.out_len += data;
        off += used;
        if (done) {
            o.done = 1;
            break;
        }
        if (used == 0) {
            if (have == len) break;
            have = have + step < len ? have + step : len;
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t step = data[0] % 64 + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    outcome_t all = decode(p, len, len ? len : 1), split = decode(p, len, step);
    CHECK(all.out_len <= len);
    /* A line longer than 4096 bytes is refused only once it is seen
     * whole or past that length: both ways end in a 400 or agree. */
    if (all.status == 0 && split.status == 0) {
        CHECK(all.done == split.done);
        if (all.done) CHECK(all.out_len == split.out_len && all.sum == split.sum);
    }
    return 0;
}
