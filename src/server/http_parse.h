/* Private to the server layer: HTTP/1.1 request parsing, pure functions
 * over bytes (no I/O, no libuv), so that a fuzzer can reach every line of
 * it (fuzz/http_head_fuzz.c, fuzz/http_chunked_fuzz.c). http1.c does the
 * I/O around it.
 *
 * Why our own parser: docs/decisions.md (Debian 12 packages no llhttp or
 * picohttpparser, and a body's limit depends on its route, decided from
 * the head). */
#ifndef CVX_HTTP_PARSE_H
#define CVX_HTTP_PARSE_H

#include "util/util.h"

typedef struct cvx__conn cvx__conn_t;
typedef struct cvx_server cvx_server_t;

#define CVX__MAX_HEADERS 100

typedef struct {
    cvx_slice_t name;  /* lower-cased */
    cvx_slice_t value; /* NUL-terminated, surrounding blanks trimmed */
} cvx__hdr_t;

/* One request. Created and freed on the loop thread; reference-counted
 * because a job on a worker may outlive the connection (then `conn` is
 * NULL and the answer is dropped). While a job holds it, the loop does not
 * touch its fields, so the worker may read the head and body. */
typedef struct {
    int refs;
    cvx__conn_t *conn;
    cvx_server_t *srv;
    cvx_slice_t method, target, path, query; /* slices of `head` */
    int minor;                               /* HTTP/1.<minor> */
    cvx__hdr_t hdrs[CVX__MAX_HEADERS];
    size_t nhdrs;
    char *head;
    cvx_buf_t body;       /* in memory, unless streamed to body_fd */
    int body_fd;          /* -1, or an upload's temporary file */
    char body_path[4200]; /* its path; cleared if the file was adopted */
    uint64_t body_len;
    uint64_t charged;     /* bytes charged to the server's memory budget */
    bool head_only;       /* HEAD: no body in the response */
    bool responded;
} cvx__req_t;

/* Where a request head ends ("\r\n\r\n" or "\n\n"): the length of the
 * head including it, or 0 while incomplete. The search resumes at `from`
 * (bytes before it were searched by an earlier call on the same prefix),
 * backing up over a terminator split between reads, so a head that
 * arrives byte by byte costs linear time in all: set *scanned to how far
 * this call looked (the next call's `from`). */
size_t cvx__http_head_end(const char *p, size_t n, size_t from, size_t *scanned);

/* Parses a complete head of n bytes (as cvx__http_head_end measured it)
 * into req: copies it to req->head (owned by req) and points the method,
 * target, path, query and headers into that copy. 0, or the HTTP status
 * to refuse it with (400, 414, 431, 500 when out of memory). */
int cvx__http_parse_head(cvx__req_t *req, const char *src, size_t n);

/* Chunked transfer coding, decoded step by step as bytes arrive. */
typedef struct {
    int state;     /* size line, data, CRLF after data, trailers */
    uint64_t left; /* data bytes left in the current chunk */
} cvx__chunked_t;

/* One step over p[0..n): returns 0 and sets *used to the bytes consumed
 * (0: a line is incomplete, come back with more) and *data to how many of
 * those are body bytes (p[0..*data)), *done at the end of the body; or
 * 400 for a malformed body. After a size line, st->left is the chunk's
 * size: the caller checks it against its limit. */
int cvx__chunked_step(cvx__chunked_t *st, const char *p, size_t n, size_t *used, size_t *data, bool *done);

#endif
