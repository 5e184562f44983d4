/* Private to the abi layer. */
#ifndef CVX_ABI_INT_H
#define CVX_ABI_INT_H

#include "abi/abi.h"

/* The host side of one running invocation: everything host functions
 * need, reachable from the instance's host pointer. */
typedef struct {
    const cvx_abi_call_config_t *cfg;
    cvx_abi_result_t *res;
    const char *fn_path;
    const cvx_fn_t *fn;
    const cvx_app_t *app;     /* the fn's app; NULL for a bare export */
    uint64_t deadline_ns;     /* wall clock the call must end by; 0 = none */
    cvx_buf_t pending;        /* host -> guest bytes (docs/abi.md §2) */
    bool has_output;
    int output_kind;          /* 0 success, 1 error */
    cvx_buf_t output;
    bool panicked;
    cvx_buf_t panic;          /* the guest's panic JSON */
    cvx_chacha_t rng;         /* seeded from the request id at first use */
    bool rng_seeded;
    bool deterministic;
    cvx_buf_t line[2];        /* unfinished stdout / stderr lines */
    cvx_arena_t *arena;       /* scratch for one host call; reset each time */
    /* Pagination journal: the end cursors this call's paginated queries
     * had last time (cfg->journal), and the ones they have now. */
    const cvx_value_t *journal_in; /* JSON array, or NULL */
    cvx_arena_t *journal_arena;
    size_t npaged;
    cvx_buf_t journal;
    int fatal_code;           /* a limit hit inside a host call: the call fails */
    cvx_buf_t fatal_msg;
} cvx__call_t;

/* host.c: the cvx_1 host functions, one per entry of host_fns.def, in its
 * order. */
extern const cvx_hostfn_t cvx__abi_hostfns[];
extern const size_t cvx__abi_nhostfns;

/* The plumbing every request/response host function shares (host.c). */
#define CALL(inst) ((cvx__call_t *)cvx_instance_host(inst))
/* Sets the pending buffer to {"message": msg} and returns -code. */
int64_t cvx__err_pending(cvx__call_t *c, int code, const char *msg);
/* Parses the guest's request bytes (a[0], a[1]) as a JSON object into the
 * call's scratch arena. 1: the range is outside guest memory (a trap is
 * recorded); -1: malformed, *ret is the guest's error result; 0: ok. */
int cvx__parse_request(cvx_instance_t *inst, cvx__call_t *c, const cvx_wval_t *a, const char *what, cvx_value_t **out,
                       int64_t *ret);
/* The prologue of such a host function (inst, c, a and r in scope):
 * declares `req` and returns from the function when the request is bad. */
#define CVX__REQUEST(what, req)                                                                                  \
    cvx_value_t *req = NULL;                                                                                     \
    do {                                                                                                         \
        int64_t ret_ = 0;                                                                                        \
        int prc_ = cvx__parse_request(inst, c, a, what, &req, &ret_);                                            \
        if (prc_ > 0) return 1;                                                                                  \
        if (prc_ < 0) {                                                                                          \
            r[0].i64 = ret_;                                                                                     \
            return 0;                                                                                            \
        }                                                                                                        \
    } while (0)
/* wasi.c */
extern const cvx_hostfn_t cvx__wasi_hostfns[];
extern const size_t cvx__wasi_nhostfns;

/* fetch.c: __convex_http_fetch (host.c links these under host_fns.def's
 * names) */
int cvx__h_http_fetch(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);

/* storage.c: scheduling and file storage */
int cvx__h_schedule(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);
int cvx__h_schedule_cancel(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);
int cvx__h_storage_store(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);
int cvx__h_storage_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);
int cvx__h_storage_get_url(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);
int cvx__h_storage_delete(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);
int cvx__h_storage_metadata(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);
int cvx__h_storage_upload_url(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);

/* host.c: a store error as the call's result; the limits, out of memory
 * and I/O errors end the whole call even if the guest ignores them. */
int64_t cvx__store_error_pending(cvx__call_t *c, const cvx_err_t *err);

/* env.c: environment variables */
int cvx__h_env_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r);

/* Appends one log line with a level prefix, within the call's log budget
 * (abi.h, "logs"): past it the line is dropped, never an error. Returns
 * non-zero (after recording a trap) only when out of memory. */
int cvx__log_line(cvx_instance_t *inst, cvx__call_t *c, int level, const char *text, size_t len);
/* At the end of a call: drops the logs that no longer fit beside its value
 * (or error), so that the two stay within the result limit. */
void cvx__fit_logs(cvx_abi_result_t *res);
/* Flushes unfinished stdout/stderr lines at the end of a call. */
void cvx__flush_lines(cvx_instance_t *inst, cvx__call_t *c);
/* Random bytes for the guest: seeded ChaCha for queries and mutations. */
void cvx__random(cvx__call_t *c, void *out, size_t n);
double cvx__now_ms(const cvx__call_t *c);

#endif
