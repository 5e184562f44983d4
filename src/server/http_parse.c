/* HTTP/1.1 request parsing (see http_parse.h). Small and strict: a head
 * of at most 64 KiB (the caller's bound) and 100 headers; tokens as RFC
 * 9110 defines them; no obsolete line folding; control characters other
 * than tab refused in header values. */
#include "server/http_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool is_tchar(unsigned char ch) {
    /* ch != 0: strchr would match the string's own terminator. */
    return isalnum(ch) || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

size_t cvx__http_head_end(const char *p, size_t n, size_t from, size_t *scanned) {
    /* A call that returned 0 looked at starts up to n - 2 without seeing a
     * whole terminator: the next one starts there. */
    *scanned = n;
    for (size_t i = from > 2 ? from - 2 : 0; i + 1 < n; i++) {
        if (p[i] != '\n') continue;
        if (p[i + 1] == '\n') return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    }
    return 0;
}

int cvx__http_parse_head(cvx__req_t *req, const char *src, size_t n) {
    req->head = cvx_malloc(n + 1);
    if (!req->head) return 500;
    memcpy(req->head, src, n);
    req->head[n] = '\0';
    char *p = req->head, *end = req->head + n;
    /* request line */
    char *sp = p;
    while (sp < end && is_tchar((unsigned char)*sp)) sp++;
    if (sp == p || sp >= end || *sp != ' ') return 400;
    req->method = cvx_slice(p, (size_t)(sp - p));
    char *t = sp + 1, *te = t;
    while (te < end && *te != ' ' && (unsigned char)*te > 32 && *te != 127) te++;
    if (te == t || te >= end || *te != ' ') return 400;
    if (te - t > 8192) return 414;
    req->target = cvx_slice(t, (size_t)(te - t));
    char *v = te + 1;
    if (end - v < 9 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1')) return 400;
    req->minor = v[7] - '0';
    p = v + 8;
    if (*p == '\r') p++;
    if (*p != '\n') return 400;
    p++;
    /* headers */
    while (p < end && *p != '\r' && *p != '\n') {
        if (req->nhdrs >= CVX__MAX_HEADERS) return 431;
        char *name = p;
        while (p < end && is_tchar((unsigned char)*p)) {
            *p = (char)tolower((unsigned char)*p);
            p++;
        }
        if (p == name || p >= end || *p != ':') return 400; /* also rejects obsolete line folding */
        size_t nlen = (size_t)(p - name);
        p++;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        char *val = p;
        while (p < end && *p != '\r' && *p != '\n') {
            if ((unsigned char)*p < 32 && *p != '\t') return 400;
            p++;
        }
        char *vend = p;
        while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
        if (*p == '\r') p++;
        if (p >= end || *p != '\n') return 400;
        p++;
        *vend = '\0'; /* values become C strings (the CR/LF is gone) */
        req->hdrs[req->nhdrs].name = cvx_slice(name, nlen);
        req->hdrs[req->nhdrs].value = cvx_slice(val, (size_t)(vend - val));
        req->nhdrs++;
    }
    /* path and query */
    char *q = memchr(req->target.ptr, '?', req->target.len);
    req->path = cvx_slice(req->target.ptr, q ? (size_t)(q - req->target.ptr) : req->target.len);
    req->query = q ? cvx_slice(q + 1, req->target.len - (size_t)(q + 1 - req->target.ptr)) : cvx_slice("", 0);
    req->head_only = cvx_slice_eq_cstr(req->method, "HEAD");
    return 0;
}

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILERS };

int cvx__chunked_step(cvx__chunked_t *st, const char *p, size_t n, size_t *used, size_t *data, bool *done) {
    *used = *data = 0;
    *done = false;
    if (n == 0) return 0;
    if (st->state == CH_DATA) {
        size_t take = (size_t)CVX_MIN((uint64_t)n, st->left);
        st->left -= take;
        if (st->left == 0) st->state = CH_DATA_END;
        *used = *data = take;
        return 0;
    }
    const char *nl = memchr(p, '\n', n);
    if (!nl) return n > 4096 ? 400 : 0; /* a line that long is no chunk syntax */
    size_t line = (size_t)(nl - p) + 1, len = line - 1;
    if (len && p[len - 1] == '\r') len--;
    *used = line;
    switch (st->state) {
    case CH_DATA_END:
        if (len != 0) return 400;
        st->state = CH_SIZE;
        return 0;
    case CH_SIZE: {
        size_t hex = 0;
        while (hex < len && isxdigit((unsigned char)p[hex])) hex++;
        /* 15 hex digits: below 2^60, no overflow; extensions after ';'. */
        if (hex == 0 || hex > 15 || (hex < len && p[hex] != ';' && p[hex] != ' ')) return 400;
        char tmp[16];
        memcpy(tmp, p, hex);
        tmp[hex] = '\0';
        st->left = strtoull(tmp, NULL, 16);
        st->state = st->left ? CH_DATA : CH_TRAILERS;
        return 0;
    }
    default: /* trailers, until an empty line */
        if (len == 0) *done = true;
        return 0;
    }
}
