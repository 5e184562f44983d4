/* The deterministic WASI subset (docs/abi.md §3, "WASI").
 *
 * A wasm32-wasip1 guest imports a handful of WASI functions even when it
 * never touches a file. cvx implements them itself instead of linking a
 * general WASI: stdout and stderr become log lines, randomness and clocks
 * come from the call's deterministic sources, and everything that would
 * reach the filesystem, the environment or the network reports that it does
 * not exist. Also here: the log budget shared with __convex_log and with
 * the calls an action makes (docs/abi.md "Logs"). */
#include "abi/abi_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { WASI_ESUCCESS = 0, WASI_EBADF = 8, WASI_EINVAL = 28, WASI_ENOSYS = 52, WASI_ENOTSUP = 58 };

static const char *const level_prefix[] = {"[LOG] ", "[INFO] ", "[WARN] ", "[ERROR] ", "[DEBUG] "};

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t k;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    if (n < k || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

/* Appends text with each invalid UTF-8 byte replaced by U+FFFD: log lines
 * end up in JSON, which must stay valid whatever bytes the guest wrote. */
static void append_utf8(cvx_buf_t *out, const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t run = 0, i = 0;
    while (i < len) {
        size_t k = utf8_seq(s + i, len - i);
        if (k) {
            i += k;
            continue;
        }
        cvx_buf_append(out, text + run, i - run);
        cvx_buf_append(out, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    cvx_buf_append(out, text + run, len - run);
}

/* The budget a call's log lines are counted against (docs/abi.md "Logs"):
 * its own lines and bytes plus what its caller already holds. */
typedef struct {
    uint32_t max_lines;
    uint64_t used_lines;
    size_t used_bytes;
} budget_t;

/* Room kept under the byte limit for the overflow note, so that the note
 * always fits when a line does not: the longest note is 77 bytes of JSON,
 * with its comma. */
#define NOTE_ROOM 128

static uint32_t max_lines(const cvx_abi_call_config_t *cfg) {
    return cfg->max_log_lines ? cfg->max_log_lines : CVX_ABI_LOG_LINES;
}

static budget_t budget_of(const cvx_abi_call_config_t *cfg) {
    return (budget_t){max_lines(cfg), cfg->log_lines_used, cfg->log_bytes_used};
}

/* The length of `logs` once entry (n bytes of JSON) is appended. */
static size_t len_after(const cvx_buf_t *logs, size_t n) { return logs->len ? logs->len + 1 + n : n + 2; }

static void push_entry(cvx_abi_result_t *res, const char *entry, size_t n) {
    cvx_buf_t *logs = &res->logs;
    if (logs->len == 0) cvx_buf_append_char(logs, '[');
    else logs->data[logs->len - 1] = ','; /* replace the closing ']' */
    cvx_buf_append(logs, entry, n);
    cvx_buf_append_char(logs, ']');
    res->nlogs++;
}

/* Closes the log: the note saying why the lines after it are missing, when
 * there is still room for it (a value of nearly the whole result limit may
 * leave none), and every later line is dropped. */
static void overflow(cvx_abi_result_t *res, const budget_t *b, int why) {
    char text[128];
    if (why == CVX_ABI_LOG_FULL_LINES)
        snprintf(text, sizeof text, "[WARN] Log overflow (maximum %u). Remaining log lines omitted.",
                 (unsigned)b->max_lines);
    else
        snprintf(text, sizeof text, "[WARN] Log overflow (maximum %u bytes). Remaining log lines omitted.",
                 (unsigned)CVX_ABI_MAX_RESULT);
    cvx_buf_t entry = {0};
    cvx_buf_append_json_string(&entry, text, strlen(text));
    res->log_note = b->used_lines + res->nlogs < b->max_lines &&
                    b->used_bytes + len_after(&res->logs, entry.len) <= CVX_ABI_MAX_RESULT && !entry.oom;
    if (res->log_note) push_entry(res, entry.data, entry.len);
    else res->logs.oom |= entry.oom;
    res->log_full = (uint8_t)why;
    cvx_buf_free(&entry);
}

/* Appends one line (a JSON string with its level prefix) if the budget has
 * room for it and for the note after it; else closes the log. The last
 * line a budget allows is the note, as in Convex. */
static void add_entry(cvx_abi_result_t *res, const budget_t *b, const char *entry, size_t n) {
    if (res->log_full) return;
    if (b->used_lines + res->nlogs + 1 >= b->max_lines) overflow(res, b, CVX_ABI_LOG_FULL_LINES);
    else if (b->used_bytes + len_after(&res->logs, n) > CVX_ABI_MAX_RESULT - NOTE_ROOM)
        overflow(res, b, CVX_ABI_LOG_FULL_BYTES);
    else push_entry(res, entry, n);
}

/* Calls fn for each entry (JSON string) of a log array written here.
 * Stops at anything else: the array is ours, but a stop is safer than a
 * misread if it ever is not. */
static void each_entry(const cvx_buf_t *logs, void (*fn)(void *, const char *, size_t), void *ctx) {
    const char *s = logs->data;
    size_t n = logs->len, i = 1;
    if (n < 2 || s[0] != '[') return;
    while (i < n && s[i] == '"') {
        size_t start = i++;
        while (i < n && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
        if (i >= n) return;
        fn(ctx, s + start, ++i - start);
        if (i >= n || s[i] != ',') return;
        i++;
    }
}

int cvx__log_line(cvx_instance_t *inst, cvx__call_t *c, int level, const char *text, size_t len) {
    cvx_abi_result_t *res = c->res;
    if (res->log_full) return 0; /* dropped: a guest that logs on costs nothing */
    if (level < 0 || level > 4) level = 0;
    bool cut = len > CVX_ABI_LOG_LINE;
    if (cut) {
        /* Cut at the limit, backing up so no UTF-8 sequence is split: the
         * first byte left out must not be a continuation byte (a sequence
         * has at most 3 of them; past that the bytes are not UTF-8). */
        len = CVX_ABI_LOG_LINE;
        while (len > CVX_ABI_LOG_LINE - 3 && ((unsigned char)text[len] & 0xC0) == 0x80) len--;
    }
    cvx_buf_t line = {0}, entry = {0};
    cvx_buf_append_str(&line, level_prefix[level]);
    append_utf8(&line, text, len);
    if (cut) cvx_buf_append_str(&line, CVX_ABI_LOG_CUT);
    cvx_buf_append_json_string(&entry, line.data, line.len);
    bool oom = line.oom || entry.oom;
    if (!oom) {
        budget_t b = budget_of(c->cfg);
        add_entry(res, &b, entry.data, entry.len);
    }
    cvx_buf_free(&line);
    cvx_buf_free(&entry);
    if (oom || res->logs.oom) return cvx_instance_trap(inst, CVX_E_NOMEM, "out of memory storing log lines");
    return 0;
}

void cvx_abi_nested_log_budget(const cvx_abi_call_config_t *caller_cfg, const cvx_abi_result_t *caller,
                               cvx_abi_call_config_t *cfg) {
    /* A full caller leaves nothing: the nested call drops every line at
     * once (used == max: not even a note, the caller has its own). */
    uint64_t used = (uint64_t)caller_cfg->log_lines_used + caller->nlogs;
    uint32_t max = max_lines(caller_cfg);
    cfg->log_lines_used = caller->log_full || used > max ? max : (uint32_t)used;
    cfg->log_bytes_used = caller_cfg->log_bytes_used + caller->logs.len;
}

typedef struct {
    cvx_abi_result_t *res;
    budget_t b;
    size_t left; /* entries still to add; any after them are skipped */
} merge_t;

static void merge_entry(void *ctx, const char *entry, size_t n) {
    merge_t *m = ctx;
    if (m->left == 0) return;
    m->left--;
    add_entry(m->res, &m->b, entry, n);
}

void cvx_abi_append_nested_logs(const cvx_abi_call_config_t *caller_cfg, cvx_abi_result_t *caller,
                                const cvx_abi_result_t *nested) {
    if (caller->log_full || (!nested->nlogs && !nested->log_full)) return;
    /* The nested call's own note is not copied as a line: the caller
     * writes its own, so that its log is closed too. */
    merge_t m = {caller, budget_of(caller_cfg), nested->nlogs - (nested->log_note ? 1 : 0)};
    each_entry(&nested->logs, merge_entry, &m);
    if (nested->log_full && !caller->log_full) overflow(caller, &m.b, nested->log_full);
}

void cvx__fit_logs(cvx_abi_result_t *res) {
    size_t payload = res->value.len + res->message.len + (res->has_data ? res->data.len : 0);
    if (!res->logs.len || payload + res->logs.len <= CVX_ABI_MAX_RESULT) return;
    /* The logs are added again from the first, counted after the value,
     * until one does not fit: the lines a call logged first are kept. */
    cvx_buf_t old = res->logs;
    memset(&res->logs, 0, sizeof res->logs);
    res->nlogs = 0;
    res->log_full = 0;
    res->log_note = false;
    merge_t m = {res, {UINT32_MAX, 0, payload}, SIZE_MAX};
    each_entry(&old, merge_entry, &m);
    cvx_buf_free(&old);
}

void cvx__flush_lines(cvx_instance_t *inst, cvx__call_t *c) {
    for (int fd = 0; fd < 2; fd++) {
        if (c->line[fd].len > 0) {
            cvx__log_line(inst, c, fd == 0 ? 0 : 3, c->line[fd].data, c->line[fd].len);
            cvx_buf_reset(&c->line[fd]);
        }
    }
}

void cvx__random(cvx__call_t *c, void *out, size_t n) {
    /* Seeding hashes the request id; most calls never ask for randomness. */
    if (!c->rng_seeded) {
        const char *seed = c->cfg->request_id ? c->cfg->request_id : "";
        cvx_chacha_seed(&c->rng, seed, strlen(seed));
        c->rng_seeded = true;
    }
    if (c->deterministic) cvx_chacha_fill(&c->rng, out, n);
    else if (cvx_os_random(out, n) != CVX_OK) cvx_chacha_fill(&c->rng, out, n);
}

double cvx__now_ms(const cvx__call_t *c) {
    if (c->deterministic) return c->cfg->now_ms;
    return (double)cvx_now_ns() / 1e6;
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* fd_write(fd, iovs, iovs_len, nwritten) -> errno */
static int w_fd_write(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = cvx_instance_host(inst);
    int fd = a[0].i32;
    if (fd != 1 && fd != 2) {
        r[0].i32 = WASI_EBADF;
        return 0;
    }
    if (a[2].i32 < 0 || a[2].i32 > 1024) {
        r[0].i32 = WASI_EINVAL;
        return 0;
    }
    uint8_t *iovs = cvx_instance_mem(inst, a[1].i32, a[2].i32 * 8, "fd_write");
    if (!iovs) return 1;
    uint32_t total = 0;
    cvx_buf_t *line = &c->line[fd - 1];
    for (int i = 0; i < a[2].i32; i++) {
        uint32_t ptr = get_u32(iovs + 8 * i), len = get_u32(iovs + 8 * i + 4);
        uint8_t *p = cvx_instance_mem(inst, (int32_t)ptr, (int32_t)len, "fd_write");
        if (!p) return 1;
        for (uint32_t k = 0; k < len; k++) {
            if (p[k] == '\n') {
                if (cvx__log_line(inst, c, fd == 1 ? 0 : 3, line->data ? line->data : "", line->len)) return 1;
                cvx_buf_reset(line);
            } else if (line->len <= CVX_ABI_LOG_LINE) {
                /* One byte past the limit is kept: cvx__log_line needs it
                 * to cut the line at a character boundary. */
                cvx_buf_append_char(line, (char)p[k]);
            }
        }
        total += len;
        /* iovs may alias memory that a log call could not move, but memory
         * pointers are re-derived per iov anyway. */
        iovs = cvx_instance_mem(inst, a[1].i32, a[2].i32 * 8, "fd_write");
        if (!iovs) return 1;
    }
    uint8_t *nw = cvx_instance_mem(inst, a[3].i32, 4, "fd_write");
    if (!nw) return 1;
    put_u32(nw, total);
    r[0].i32 = WASI_ESUCCESS;
    return 0;
}

static int w_random_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    uint8_t *p = cvx_instance_mem(inst, a[0].i32, a[1].i32, "random_get");
    if (!p) return 1;
    cvx__random(cvx_instance_host(inst), p, (size_t)a[1].i32);
    r[0].i32 = WASI_ESUCCESS;
    return 0;
}

/* clock_time_get(id, precision, out) -> errno. Every clock reads the call's
 * clock: frozen for queries and mutations. */
static int w_clock_time_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = cvx_instance_host(inst);
    uint8_t *p = cvx_instance_mem(inst, a[2].i32, 8, "clock_time_get");
    if (!p) return 1;
    if (a[0].i32 < 0 || a[0].i32 > 3) {
        r[0].i32 = WASI_EINVAL;
        return 0;
    }
    /* Integer arithmetic: the frozen clock is whole milliseconds, and a
     * double product would be off by up to ~128 ns. */
    put_u64(p, c->deterministic ? (uint64_t)llround(c->cfg->now_ms) * 1000000ull : cvx_now_ns());
    r[0].i32 = WASI_ESUCCESS;
    return 0;
}

/* poll_oneoff(in, out, n, nevents) -> errno: clock subscriptions only,
 * which is how a guest sleeps (setTimeout in a JavaScript action). Queries
 * and mutations run on frozen time, so their sleeps end at once; an
 * action sleeps for real, but never past its time limit. */
static int w_poll_oneoff(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    cvx__call_t *c = cvx_instance_host(inst);
    int32_t n = a[2].i32;
    if (n <= 0 || n > 64) {
        r[0].i32 = WASI_EINVAL;
        return 0;
    }
    uint8_t *in = cvx_instance_mem(inst, a[0].i32, n * 48, "poll_oneoff");
    uint8_t *out = in ? cvx_instance_mem(inst, a[1].i32, n * 32, "poll_oneoff") : NULL;
    uint8_t *nev = out ? cvx_instance_mem(inst, a[3].i32, 4, "poll_oneoff") : NULL;
    if (!nev) return 1;
    uint64_t now = cvx_now_ns(), wait = UINT64_MAX;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t *s = in + 48 * i;
        if (s[8] != 0) { /* not a clock */
            r[0].i32 = WASI_ENOTSUP;
            return 0;
        }
        uint64_t timeout = get_u64(s + 24), flags = s[40] | (uint64_t)s[41] << 8;
        uint64_t rel = (flags & 1) ? (timeout > now ? timeout - now : 0) : timeout;
        if (rel < wait) wait = rel;
    }
    if (!c->deterministic && wait > 0) {
        uint64_t left = c->deadline_ns > now ? c->deadline_ns - now : 0;
        /* A pool may run another job while this one sleeps. */
        cvx_blocking(true);
        cvx_sleep_ns(c->deadline_ns && wait >= left ? left : wait);
        cvx_blocking(false);
        if (c->deadline_ns && wait >= left)
            return cvx_instance_trap(inst, CVX_E_TIMEOUT, "function timed out while sleeping");
    }
    for (int32_t i = 0; i < n; i++) {
        uint8_t *e = out + 32 * i;
        memset(e, 0, 32);
        memcpy(e, in + 48 * i, 8); /* userdata */
        e[10] = 0;                 /* eventtype clock */
    }
    put_u32(nev, (uint32_t)n);
    r[0].i32 = WASI_ESUCCESS;
    return 0;
}

static int w_clock_res_get(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    uint8_t *p = cvx_instance_mem(inst, a[1].i32, 8, "clock_res_get");
    if (!p) return 1;
    put_u64(p, 1000000); /* 1 ms: time is reported in milliseconds */
    r[0].i32 = WASI_ESUCCESS;
    return 0;
}

/* environ_sizes_get / args_sizes_get(count_out, bufsize_out): both zero.
 * `d` is the function's name, for trap messages. */
static int w_sizes_zero(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    uint8_t *n = cvx_instance_mem(inst, a[0].i32, 4, d);
    if (!n) return 1;
    put_u32(n, 0);
    uint8_t *s = cvx_instance_mem(inst, a[1].i32, 4, d);
    if (!s) return 1;
    put_u32(s, 0);
    r[0].i32 = WASI_ESUCCESS;
    return 0;
}

static int w_success(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    r[0].i32 = WASI_ESUCCESS;
    return 0;
}

static int w_ebadf(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    r[0].i32 = WASI_EBADF;
    return 0;
}

static int w_enosys(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    r[0].i32 = WASI_ENOSYS;
    return 0;
}


static int w_proc_exit(cvx_instance_t *inst, void *d, const cvx_wval_t *a, cvx_wval_t *r) {
    return cvx_instance_trap(inst, CVX_E_TRAP, "function called exit with status %d", (int)a[0].i32);
}

#define W "wasi_snapshot_preview1"
const cvx_hostfn_t cvx__wasi_hostfns[] = {
    {W, "fd_write", "iiii", "i", w_fd_write, NULL},
    {W, "random_get", "ii", "i", w_random_get, NULL},
    {W, "clock_time_get", "iIi", "i", w_clock_time_get, NULL},
    {W, "clock_res_get", "ii", "i", w_clock_res_get, NULL},
    {W, "environ_get", "ii", "i", w_success, NULL},
    {W, "environ_sizes_get", "ii", "i", w_sizes_zero, (void *)"environ_sizes_get"},
    {W, "args_get", "ii", "i", w_success, NULL},
    {W, "args_sizes_get", "ii", "i", w_sizes_zero, (void *)"args_sizes_get"},
    {W, "proc_exit", "i", "", w_proc_exit, NULL},
    {W, "sched_yield", "", "i", w_success, NULL},
    {W, "fd_close", "i", "i", w_ebadf, NULL},
    {W, "fd_fdstat_get", "ii", "i", w_ebadf, NULL},
    {W, "fd_fdstat_set_flags", "ii", "i", w_ebadf, NULL},
    {W, "fd_filestat_get", "ii", "i", w_ebadf, NULL},
    {W, "fd_prestat_get", "ii", "i", w_ebadf, NULL},
    {W, "fd_prestat_dir_name", "iii", "i", w_ebadf, NULL},
    {W, "fd_read", "iiii", "i", w_ebadf, NULL},
    {W, "fd_seek", "iIii", "i", w_ebadf, NULL},
    {W, "fd_tell", "ii", "i", w_ebadf, NULL},
    {W, "fd_sync", "i", "i", w_ebadf, NULL},
    {W, "path_open", "iiiiiIIii", "i", w_ebadf, NULL},
    {W, "path_filestat_get", "iiiii", "i", w_ebadf, NULL},
    {W, "poll_oneoff", "iiii", "i", w_poll_oneoff, NULL},
    {W, "sock_accept", "iii", "i", w_enosys, NULL},
};
#undef W
const size_t cvx__wasi_nhostfns = CVX_ARRAY_LEN(cvx__wasi_hostfns);
