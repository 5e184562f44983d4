/*
 * http_head_fuzz.c — libFuzzer target for the HTTP/1.1 request head parser.
 *
 * The input's first byte picks a read size; the rest is what a client
 * sent. Finding the head's end read by read (resuming as http1.c does)
 * must agree with finding it in one go, and a found head either parses
 * with every slice inside the parser's copy, names in lower case and no
 * NUL in a method or header name, or is refused with 400, 414 or 431.
 */
#include <string.h>

#include "fuzz.h"
#include "server/http_parse.h"

static size_t head_len;

static int inside(const cvx__req_t *r, cvx_slice_t s) {
    return s.len == 0 || (s.ptr >= r->head && s.ptr + s.len <= r->head + head_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t step = data[0] % 64 + 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1, scanned;

    size_t whole = cvx__http_head_end(text, len, 0, &scanned);
    size_t have = 0, found = 0;
    scanned = 0;
    while (have < len && !found) {
        have = have + step < len ? have + step : len;
        found = cvx__http_head_end(text, have, scanned, &scanned);
    }
    CHECK(found == whole);
    if (!whole) return 0;

    cvx__req_t *req = calloc(1, sizeof *req);
    if (!req) return 0;
    head_len = whole;
    int st = cvx__http_parse_head(req, text, whole);
    if (st == 0) {
        CHECK(req->method.len > 0 && memchr(req->method.ptr, '\0', req->method.len) == NULL);
        CHECK(inside(req, req->method) && inside(req, req->target) && inside(req, req->path) && inside(req, req->query));
        CHECK(req->minor == 0 || req->minor == 1);
        CHECK(req->nhdrs <= CVX__MAX_HEADERS);
        for (size_t i = 0; i < req->nhdrs; i++) {
            cvx_slice_t n = req->hdrs[i].name;
            CHECK(n.len > 0 && inside(req, n) && inside(req, req->hdrs[i].value));
            for (size_t k = 0; k < n.len; k++) CHECK(n.ptr[k] != '\0' && !(n.ptr[k] >= 'A' && n.ptr[k] <= 'Z'));
            CHECK(req->hdrs[i].value.ptr[req->hdrs[i].value.len] == '\0');
        }
    } else {
        CHECK(st == 400 || st == 414 || st == 431 || st == 500);
    }
    free(req->head);
    free(req);
    return 0;
}
