/*
 * key_decode_fuzz.c — libFuzzer target for the index-key decoder.
 *
 * Index keys come from disk, so the decoder must survive any bytes. It is
 * also canonical: whatever prefix it accepts must be exactly what the
 * encoder writes for the decoded value (one value, one key — otherwise two
 * equal values could occupy two index slots). Checked for a compound key
 * too: the input is decoded component by component to its end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "value/value.h"

static int sign(int c) { return (c > 0) - (c < 0); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cvx_arena_t *a = cvx_arena_new(4096);
    if (!a) return 0;
    cvx_buf_t again = {0};
    size_t off = 0, prev_off = 0, prev_len = 0;
    const cvx_value_t *prev = NULL;
    while (off < size) {
        cvx_value_t *v;
        size_t used = 0;
        cvx_err_t err = {0};
        int rc = cvx_key_decode(a, data + off, size - off, &v, &used, &err);
        if (rc) {
            CHECK(rc == CVX_E_INVALID_VALUE && err.msg[0] != '\0');
            break;
        }
        CHECK(used > 0 && used <= size - off);
        cvx_buf_reset(&again);
        CHECK(cvx_key_append(&again, v) == CVX_OK);
        CHECK(again.len == used && memcmp(again.data, data + off, used) == 0);
        /* Byte order of this key against the previous component's key
         * must be the value order (memcmp, shorter first on a prefix). */
        if (off > 0) {
            size_t n = prev_len < used ? prev_len : used;
            int c = memcmp(data + prev_off, data + off, n);
            if (c == 0) c = prev_len < used ? -1 : prev_len > used;
            int want = cvx_value_compare(prev, v);
            CHECK(sign(c) == sign(want));
            CHECK(sign(cvx_value_compare(v, prev)) == -sign(want));
        }
        CHECK(cvx_value_compare(v, v) == 0);
        prev = v;
        prev_off = off;
        prev_len = used;
        off += used;
    }
    cvx_buf_free(&again);
    cvx_arena_free(a);
    return 0;
}
