/*
 * util — the small vocabulary every cvx layer shares: error codes and error
 * messages, byte slices and growable buffers, per-call arenas, the
 * replaceable allocator, base64, SHA-256, a seeded ChaCha20 generator and
 * clocks.
 *
 * Contract
 *  - Functions that can fail return an int status: 0 (CVX_OK) on success or
 *    a positive cvx_code_t, and fill a caller-provided cvx_err_t with a
 *    message a user can act on. `err` may be NULL when the caller does not
 *    want the text.
 *  - Out-of-memory is an error (CVX_E_NOMEM), never abort(): every allocation
 *    goes through cvx_malloc/cvx_realloc so tests can make the Nth one fail.
 *  - Ownership is stated at each declaration. Arena memory is freed all at
 *    once by cvx_arena_free/cvx_arena_reset; never free() it piecemeal.
 */
#ifndef CVX_UTIL_H
#define CVX_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes (generated from errors.def) ---------------------------- */

typedef enum {
#define CVX_ERR(name, num, msg) CVX_E_##name = num,
#include "util/errors.def"
#undef CVX_ERR
    CVX_E__COUNT
} cvx_code_t;

#define CVX_OK CVX_E_OK

/* Static strings; never NULL ("UNKNOWN" / "unknown error" for bad codes). */
const char *cvx_code_name(int code);
const char *cvx_code_message(int code);

/* An error carried out of a call: the code and a message for the user. */
#define CVX_ERR_MSG_MAX 1024
typedef struct {
    int code;
    char msg[CVX_ERR_MSG_MAX];
} cvx_err_t;

/* Sets err (if non-NULL) and returns `code`, so callers can write
 * `return cvx_err_set(err, CVX_E_NOT_FOUND, "no table %s", name);`. */
int cvx_err_set(cvx_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cvx_err_vset(cvx_err_t *err, int code, const char *fmt, va_list ap);
/* Prefixes an existing message: "<prefix>: <old message>". */
int cvx_err_prefix(cvx_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cvx_err_clear(cvx_err_t *err);

/* ---- allocation ---------------------------------------------------------- */

/* All cvx allocations go through these. They return NULL on failure. */
void *cvx_malloc(size_t n);
void *cvx_calloc(size_t count, size_t size);
void *cvx_realloc(void *p, size_t n);
void cvx_free(void *p);
char *cvx_strndup(const char *s, size_t n);
char *cvx_strdup(const char *s);

/* Fault injection for tests: make the nth allocation from now (1-based) and,
 * if `sticky`, every later one fail. 0 disables. Returns allocations counted
 * since the last call. Thread-safe; meant for single-threaded tests. */
uint64_t cvx_alloc_fail_after(uint64_t nth, bool sticky);

/* ---- slices and buffers -------------------------------------------------- */

/* A borrowed pointer + length; never owns. */
typedef struct {
    const char *ptr;
    size_t len;
} cvx_slice_t;

static inline cvx_slice_t cvx_slice(const char *p, size_t n) {
    cvx_slice_t s = {p, n};
    return s;
}
cvx_slice_t cvx_slice_cstr(const char *s);
bool cvx_slice_eq(cvx_slice_t a, cvx_slice_t b);
bool cvx_slice_eq_cstr(cvx_slice_t a, const char *s);

/* A growable byte buffer. Zero-initialise ({0}) to start; cvx_buf_free
 * releases it. `data` is always NUL-terminated when len > 0 or after any
 * append, so text can be used as a C string. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool oom; /* set once an append failed; later appends are no-ops */
} cvx_buf_t;

/* Is s[0..n) well-formed UTF-8? */
bool cvx_utf8_valid(const char *s, size_t n);

int cvx_buf_reserve(cvx_buf_t *b, size_t extra);
int cvx_buf_append(cvx_buf_t *b, const void *p, size_t n);
int cvx_buf_append_str(cvx_buf_t *b, const char *s);
int cvx_buf_append_char(cvx_buf_t *b, char c);
int cvx_buf_printf(cvx_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (with quotes and escapes). */
int cvx_buf_append_json_string(cvx_buf_t *b, const char *s, size_t n);
void cvx_buf_reset(cvx_buf_t *b); /* len = 0, keeps capacity */
void cvx_buf_free(cvx_buf_t *b);
/* Hands the bytes to the caller (free with cvx_free) and empties b. */
char *cvx_buf_detach(cvx_buf_t *b, size_t *len);

/* ---- caches -------------------------------------------------------------- */

/* The part every in-memory cache shares (query results, index ranges, hot
 * documents): a hash table of intrusive nodes, a recency list, and a byte
 * budget. Embed a cvx_cache_node_t in the entry (CVX_CONTAINER_OF gets the
 * entry back). The cache owns no entry and takes no lock: the user keeps
 * its own lock, its own secondary indexes, and decides what to evict
 * (cvx_cache_over / cvx_cache_oldest) and when to free, because the three
 * users differ exactly there. */
typedef struct cvx_cache_node {
    struct cvx_cache_node *hnext;         /* hash chain */
    struct cvx_cache_node *newer, *older; /* recency */
    uint64_t hash;
    size_t bytes; /* what the entry counts against the budget */
} cvx_cache_node_t;

typedef struct {
    cvx_cache_node_t **table; /* cap buckets, a power of two */
    size_t cap, n;
    cvx_cache_node_t *newest, *oldest;
    size_t bytes, max_bytes;
    uint64_t hits, misses; /* counted by cvx_cache_hit / cvx_cache_miss */
} cvx_cache_t;

int cvx_cache_init(cvx_cache_t *c, size_t max_bytes);
/* Frees the table; the caller has removed (and freed) every entry. */
void cvx_cache_destroy(cvx_cache_t *c);
/* Is an entry of this size worth keeping? One bigger than an eighth of the
 * budget would flush most of the cache. */
bool cvx_cache_admits(const cvx_cache_t *c, size_t bytes);
/* The first node of hash's chain; walk on with cvx_cache_next. A chain
 * holds other hashes too: compare n->hash, then the key. */
cvx_cache_node_t *cvx_cache_chain(const cvx_cache_t *c, uint64_t hash);
cvx_cache_node_t *cvx_cache_next(const cvx_cache_node_t *n, uint64_t hash);
/* Links n as the newest entry and counts its bytes (the budget may now be
 * exceeded: evict with cvx_cache_oldest until !cvx_cache_over). */
void cvx_cache_insert(cvx_cache_t *c, cvx_cache_node_t *n, uint64_t hash, size_t bytes);
/* Unlinks a linked n; the caller frees it. */
void cvx_cache_remove(cvx_cache_t *c, cvx_cache_node_t *n);
cvx_cache_node_t *cvx_cache_oldest(const cvx_cache_t *c);
/* Would `extra` more bytes exceed the budget? */
bool cvx_cache_over(const cvx_cache_t *c, size_t extra);
/* Counts a hit and makes n the newest. */
void cvx_cache_hit(cvx_cache_t *c, cvx_cache_node_t *n);
void cvx_cache_miss(cvx_cache_t *c);

#define CVX_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- arenas -------------------------------------------------------------- */

/* A bump allocator for things that live exactly as long as one request or
 * one parse. Allocation failure returns NULL. */
typedef struct cvx_arena cvx_arena_t;

cvx_arena_t *cvx_arena_new(size_t first_block);
void *cvx_arena_alloc(cvx_arena_t *a, size_t n); /* 8-byte aligned */
char *cvx_arena_strndup(cvx_arena_t *a, const char *s, size_t n);
/* Frees every block but the first, keeping it for reuse. */
void cvx_arena_reset(cvx_arena_t *a);
void cvx_arena_free(cvx_arena_t *a);
size_t cvx_arena_used(const cvx_arena_t *a);

/* ---- encodings and hashes ------------------------------------------------ */

/* Standard alphabet with '=' padding. */
size_t cvx_base64_encoded_len(size_t n);
int cvx_base64_encode(cvx_buf_t *out, const void *data, size_t n);
/* Decodes into out (appends). Rejects bad characters, bad padding and
 * non-canonical trailing bits with CVX_E_INVALID_VALUE. */
int cvx_base64_decode(cvx_buf_t *out, const char *s, size_t n, cvx_err_t *err);

void cvx_sha256(const void *data, size_t n, uint8_t out[32]);
void cvx_sha1(const void *data, size_t n, uint8_t out[20]); /* WebSocket handshakes only */
void cvx_hex(const uint8_t *in, size_t n, char *out /* 2n+1 */);

/* FNV-1a over n bytes, continuing from h (start with CVX_FNV_SEED): the
 * in-memory hash tables' hash, not for anything an attacker chooses the
 * layout of beyond bucket chains. */
#define CVX_FNV_SEED 0xcbf29ce484222325ull
uint64_t cvx_fnv1a(uint64_t h, const void *data, size_t n);

/* ---- libcurl, loaded on first use (curl.c) -------------------------------- */

/* Loads and initialises libcurl once; every later call answers at once.
 * Until it succeeds the curl_* functions fail (NULL, CURLE_FAILED_INIT).
 * CVX_E_INTERNAL with what is missing when libcurl cannot be loaded. */
int cvx_curl_load(cvx_err_t *err);

/* ---- deterministic random numbers ---------------------------------------- */

/* ChaCha20 keystream generator (RFC 8439 block function). The same seed
 * gives the same bytes on every machine: queries and mutations seed it from
 * the request id. */
typedef struct {
    uint32_t key[8];
    uint32_t nonce[3];
    uint32_t counter;
    uint8_t block[64];
    size_t used; /* bytes of `block` already handed out */
} cvx_chacha_t;

void cvx_chacha_init(cvx_chacha_t *r, const uint8_t key[32], const uint8_t nonce[12]);
/* Seeds from an arbitrary byte string (SHA-256 of it is the key). */
void cvx_chacha_seed(cvx_chacha_t *r, const void *seed, size_t n);
void cvx_chacha_fill(cvx_chacha_t *r, void *out, size_t n);
uint64_t cvx_chacha_u64(cvx_chacha_t *r);
/* Raw block function, exposed for the RFC test vector. */
void cvx_chacha_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3],
                      uint8_t out[64]);

/* Fills out with bytes from the OS generator; 0 or CVX_E_IO. */
int cvx_os_random(void *out, size_t n);

/* ---- .env files (dotenv.c) -------------------------------------------------- */

/* Called for each NAME=VALUE of a .env text: the name as written (not
 * checked), the value unquoted (NUL-terminated, may hold NULs), its line
 * (from 1). A non-zero return stops the parse with that error. */
typedef int (*cvx_dotenv_fn)(void *ctx, const char *name, size_t name_len, const char *value, size_t value_len,
                             int line, cvx_err_t *err);
/* Reads `text` in the dialect described in dotenv.c; a line without '='
 * or with an unclosed quote is CVX_E_INVALID_ARGUMENT "line N: ...". */
int cvx_dotenv_parse(const char *text, size_t len, cvx_dotenv_fn each, void *ctx, cvx_err_t *err);

/* ---- clocks -------------------------------------------------------------- */

uint64_t cvx_now_ns(void);       /* CLOCK_REALTIME, ns since the Unix epoch */
uint64_t cvx_monotonic_ns(void); /* CLOCK_MONOTONIC */
void cvx_sleep_ns(uint64_t ns);  /* nanosleep, resumed after signals */

/* ---- blocking waits ------------------------------------------------------ */

/* A thread pool may want to know when one of its threads waits on
 * something slow outside the guest (a fetch, a timer), to let another job
 * run meanwhile. The hook is per thread; cvx_blocking(true) before such a
 * wait and cvx_blocking(false) after it call it (no-ops without one). */
void cvx_set_blocking_hook(void (*fn)(void *ctx, bool begin), void *ctx);
void cvx_blocking(bool begin);

/* Lowers the calling thread's scheduling priority by `nice` steps (Linux
 * nice values are per thread). Best effort: false where unsupported. */
bool cvx_thread_deprioritize(int nice);

/* ---- cron expressions ---------------------------------------------------- */

/* A parsed 5-field cron expression "minute hour day-of-month month
 * day-of-week" (UTC): each field is "*", a number, a range "a-b", a list
 * "a,b", and/or a step "x/n"; day-of-week 0-7 (0 and 7 are Sunday). */
typedef struct {
    uint64_t minute;  /* bit m for minute m */
    uint32_t hour;
    uint32_t dom;     /* bits 1..31 */
    uint16_t month;   /* bits 1..12 */
    uint8_t dow;      /* bits 0..6 */
    bool dom_any, dow_any;
} cvx_cron_spec_t;

int cvx_cron_parse(const char *expr, cvx_cron_spec_t *out, cvx_err_t *err);
/* The first matching minute strictly after `after_ms` (ms since the
 * epoch); 0 if none within ~5 years (an impossible date like Feb 30). */
uint64_t cvx_cron_next(const cvx_cron_spec_t *c, uint64_t after_ms);

/* ---- files --------------------------------------------------------------- */

/* Reads a whole file into out (appends). CVX_E_IO with path and strerror. */
int cvx_read_file(const char *path, cvx_buf_t *out, cvx_err_t *err);
/* Maps a whole file read-only: pages are read as they are touched, so a
 * caller that looks at a few parts of a large file reads only those. An
 * empty file maps to a non-NULL pointer and length 0. Release with
 * cvx_unmap_file. CVX_E_IO with path and strerror. */
int cvx_map_file(const char *path, const uint8_t **data, size_t *len, cvx_err_t *err);
void cvx_unmap_file(const uint8_t *data, size_t len);
/* Writes atomically: temp file in the same directory, fsync, rename. The
 * file gets `mode` exactly (not masked by the umask); cvx_write_file_atomic
 * is 0644 (project files), cvx_write_file_private 0600 (the server's data
 * directory: nobody else on the machine reads the data). */
int cvx_write_file_mode(const char *path, const void *data, size_t n, unsigned mode, cvx_err_t *err);
int cvx_write_file_atomic(const char *path, const void *data, size_t n, cvx_err_t *err);
int cvx_write_file_private(const char *path, const void *data, size_t n, cvx_err_t *err);
/* mkdir -p. */
int cvx_mkdirs(const char *path, cvx_err_t *err);
/* mkdir -p whose last directory is the user's alone (0700): created so, or
 * tightened if it exists with group or other bits (made by an older cvx).
 * Parents it creates are 0755. */
int cvx_mkdirs_private(const char *path, cvx_err_t *err);
/* Clears the group and other bits of an existing file or directory. Best
 * effort: a missing path or a failed chmod is ignored. */
void cvx_make_private(const char *path);

#define CVX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CVX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CVX_MAX(a, b) ((a) > (b) ? (a) : (b))


/* ---- app packages (pkg.c) ------------------------------------------------- */

/* Named blobs in one byte string (a deploy's modules and bundle, a saved
 * app); names are not NUL-terminated in entries. */
typedef struct {
    const char *name;
    size_t name_len;
    const uint8_t *data;
    size_t len;
} cvx_pkg_entry_t;
#define CVX_PKG_MAX_ENTRIES 64

/* Whether the bytes start like a package. */
bool cvx_pkg_is(const void *p, size_t n);
/* Splits a package; the entries point into `bytes`; *out is the caller's
 * (cvx_free). CVX_E_INVALID_ARGUMENT names what is malformed. */
int cvx_pkg_parse(const void *bytes, size_t n, cvx_pkg_entry_t **out, size_t *count, cvx_err_t *err);
const cvx_pkg_entry_t *cvx_pkg_find(const cvx_pkg_entry_t *e, size_t n, const char *name);
/* Writing: begin with the number of entries, then add each (data < 4 GiB). */
void cvx_pkg_begin(cvx_buf_t *out, uint32_t count);
void cvx_pkg_add(cvx_buf_t *out, const char *name, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
