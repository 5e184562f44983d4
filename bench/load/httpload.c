/*
 * httpload — a closed-loop HTTP/1.1 load generator for loopback benchmarks.
 *
 * N keep-alive connections, each with `pipeline` requests in flight (1 =
 * send the next request when the previous answer arrived), one epoll thread.
 * Every request's latency (from the moment it is written to the moment its
 * whole response is read) is kept, so percentiles are exact (sorted samples,
 * no histogram buckets). Only requests that complete inside the measurement
 * window count; the warm-up before it is discarded.
 *
 * Requests are made from templates (the path and the body) with
 * placeholders filled per request:
 *   {id}        a random line of --ids FILE
 *   {rand:N}    a uniform integer in [0, N)
 *   {seq}       a counter unique to this run
 *   {from} {to} two distinct accounts in [0, --accounts N), uniform or Zipf
 *               with --alpha A (A > 0), like the keynote-2 benchmark
 *
 * A response counts as a success when its status is 2xx and, with
 * --expect STR (repeatable: every STR), its body contains STR (cvx answers
 * HTTP 200 for function errors; --expect '"status":"success"' catches them;
 * --expect '"value":true' makes a transfer that did not move an error).
 *
 * --mix PCT --path2 TEMPLATE [--body2 TEMPLATE]: PCT% of the requests use
 * the second templates instead (a read/write mix); their successes are
 * counted apart (ok2_total) and their latencies summarised apart (t2_*).
 *
 * --id-alpha A picks {id} by Zipf rank over the --ids lines (the first line
 * the most popular) instead of uniformly.
 *
 * --rate R runs open loop: requests are due at a fixed rate of R per second
 * whatever the answers do, each sent on the next idle connection (at most
 * one in flight per connection), and its latency counts from when it was
 * due, not when a connection was free to send it, so a server that falls
 * behind is charged for the queue it causes (no coordinated omission).
 * "late" counts requests still waiting for a connection at the end.
 *
 * --seed N seeds the random choices (ids, starts, accounts).
 * --watch-pid PID[,PID...] reads /proc/PID/stat (the server's CPU time, all
 * threads; summed over the PIDs for a server of several processes)
 * and /proc/stat (the whole machine's busy time) at the same two instants
 * as this process's own getrusage: the start and the end of the window, so
 * server, load generator and machine CPU cover exactly the window whose
 * requests are counted.
 *
 * Output: one JSON object on stdout (throughput, latency percentiles in
 * microseconds, errors, this process's own CPU time over the window, and
 * with --watch-pid the server's and the machine's; ok_total/errors_total over
 * the whole run including the warm-up; unanswered = requests still in
 * flight when it gave up waiting; with --accounts, acked_wdelta = the sum
 * of (to - from) over every successful request, for the transfer invariant).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "httpload: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- random numbers (xoshiro256**) ------------------------------------------ */

static uint64_t rs[4];
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rnd(void) {
    uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
    rs[2] ^= rs[0];
    rs[3] ^= rs[1];
    rs[1] ^= rs[2];
    rs[0] ^= rs[3];
    rs[2] ^= t;
    rs[3] = rotl(rs[3], 45);
    return r;
}
static double rnd01(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static void seed_rng(uint64_t s) {
    for (int i = 0; i < 4; i++) {
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rs[i] = z ^ (z >> 31);
    }
}

/* ---- account picker (uniform or Zipf over N, like keynote-2's zipf.ts) ------ */

static long n_accounts;
static double alpha, id_alpha;
static double *zipf_cdf, *id_cdf;

/* The cumulative distribution of ranks 1..n with weight 1/rank^a. */
static double *zipf_init(long n, double a) {
    if (a <= 0 || n <= 0) return NULL;
    double *cdf = malloc(sizeof(double) * (size_t)n);
    if (!cdf) die("out of memory");
    double sum = 0;
    for (long i = 0; i < n; i++) sum += 1.0 / pow((double)(i + 1), a);
    double c = 0;
    for (long i = 0; i < n; i++) {
        c += 1.0 / pow((double)(i + 1), a) / sum;
        cdf[i] = c;
    }
    cdf[n - 1] = 1.0;
    return cdf;
}

/* Uniform in [0, n) without a cdf, else by Zipf rank. */
static long pick(const double *cdf, long n) {
    if (!cdf) return (long)(rnd01() * (double)n);
    double u = rnd01();
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static long pick_account(void) { return pick(zipf_cdf, n_accounts); }

/* ---- templates ---------------------------------------------------------------- */

enum { SEG_LIT, SEG_ID, SEG_RAND, SEG_SEQ, SEG_FROM, SEG_TO };
typedef struct {
    int kind;
    const char *s;
    size_t len;
    long n;
} seg_t;
typedef struct {
    seg_t *segs;
    size_t nsegs;
    int accounts; /* has {from} or {to} */
} tmpl_t;

static char **ids;
static size_t nids;
static uint64_t seq;

static void tmpl_parse(tmpl_t *t, const char *src) {
    t->segs = calloc(strlen(src) + 1, sizeof(seg_t));
    t->nsegs = 0;
    const char *p = src;
    while (*p) {
        const char *b = strchr(p, '{');
        const char *e = b ? strchr(b, '}') : NULL;
        int kind = -1;
        long n = 0;
        if (b && e) {
            size_t l = (size_t)(e - b - 1);
            if (l == 2 && !strncmp(b + 1, "id", 2)) kind = SEG_ID;
            else if (l == 3 && !strncmp(b + 1, "seq", 3)) kind = SEG_SEQ;
            else if (l == 4 && !strncmp(b + 1, "from", 4)) kind = SEG_FROM;
            else if (l == 2 && !strncmp(b + 1, "to", 2)) kind = SEG_TO;
            else if (l > 5 && !strncmp(b + 1, "rand:", 5)) kind = SEG_RAND, n = atol(b + 6);
        }
        if (kind < 0) {
            /* literal up to (and including) a '{' that is not a placeholder */
            const char *stop = b ? (b == p ? b + 1 : b) : p + strlen(p);
            t->segs[t->nsegs++] = (seg_t){SEG_LIT, p, (size_t)(stop - p), 0};
            p = stop;
            continue;
        }
        if (b > p) t->segs[t->nsegs++] = (seg_t){SEG_LIT, p, (size_t)(b - p), 0};
        if (kind == SEG_FROM || kind == SEG_TO) t->accounts = 1;
        t->segs[t->nsegs++] = (seg_t){kind, NULL, 0, n};
        p = e + 1;
    }
}

typedef struct {
    char *d;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + extra) c *= 2;
    b->d = realloc(b->d, c);
    if (!b->d) die("out of memory");
    b->cap = c;
}
static void buf_add(buf_t *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->d + b->len, p, n);
    b->len += n;
}

static void tmpl_expand(const tmpl_t *t, buf_t *out, long from, long to) {
    char num[32];
    for (size_t i = 0; i < t->nsegs; i++) {
        const seg_t *s = &t->segs[i];
        int l;
        switch (s->kind) {
        case SEG_LIT: buf_add(out, s->s, s->len); break;
        case SEG_ID: {
            if (!nids) die("{id} needs --ids FILE");
            const char *id = ids[pick(id_cdf, (long)nids)];
            buf_add(out, id, strlen(id));
            break;
        }
        case SEG_RAND: l = snprintf(num, sizeof num, "%ld", s->n > 0 ? (long)(rnd() % (uint64_t)s->n) : 0); buf_add(out, num, (size_t)l); break;
        case SEG_SEQ: l = snprintf(num, sizeof num, "%llu", (unsigned long long)seq++); buf_add(out, num, (size_t)l); break;
        case SEG_FROM: l = snprintf(num, sizeof num, "%ld", from); buf_add(out, num, (size_t)l); break;
        case SEG_TO: l = snprintf(num, sizeof num, "%ld", to); buf_add(out, num, (size_t)l); break;
        }
    }
}

/* ---- configuration -------------------------------------------------------------- */

static const char *host = "127.0.0.1";
static int port;
static int nconns = 16, pipeline_depth = 1;
static double warmup_s = 1, duration_s = 5;
static const char *method = "POST";
static tmpl_t path_t, body_t, path2_t, body2_t;
static int has_body, has_body2, mix_pct;
static double rate;
#define MAX_EXPECT 8
static const char *expect[MAX_EXPECT];
static int nexpect;
#define MAX_WATCH 16
static int watch_pids[MAX_WATCH], nwatch;
static char extra_headers[4096];
static int verbose;

/* ---- connections --------------------------------------------------------------- */

typedef struct {
    int fd;
    int idx;
    int connected;
    buf_t w;        /* bytes to write */
    size_t woff;
    buf_t r;        /* bytes read, not yet parsed */
    uint64_t *sent; /* ring of send (open loop: due) times of in-flight requests */
    long *from, *to; /* ring of the accounts of in-flight requests */
    char *second;    /* ring: made from the second templates (--mix) */
    int head, inflight;
    int is_idle; /* open loop: on the idle stack */
} conn_t;

static int ep;
static conn_t *conns;
static uint64_t t_start, t_measure, t_end;
static int stopping;

typedef struct {
    uint64_t *v;
    size_t n, cap;
} lats_t;
static lats_t lat_all, lat_2; /* every success in the window; those of the second templates */
static uint64_t ok2_total, ok2_in_window;
static uint64_t ok_in_window, err_in_window, ok_total, err_total, conn_errors, reconnects, lost_in_flight;
static long long acked_wdelta; /* sum of (to - from) over successful requests (transfers) */
static int printed_errors;

static void lats_add(lats_t *l, uint64_t v) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1 << 20;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) die("out of memory");
    }
    l->v[l->n++] = v;
}

static void record(uint64_t done, uint64_t sent, int ok, const char *body, size_t blen, int status, int second) {
    if (ok && second) ok2_total++;
    if (ok) ok_total++;
    else {
        err_total++;
        if (printed_errors < 3) {
            printed_errors++;
            fprintf(stderr, "httpload: error response (HTTP %d): %.*s\n", status, (int)(blen > 300 ? 300 : blen), body);
        }
    }
    /* closed loop: what completed in the window; open loop: what fell due
     * in it, however late it completed (the drain after the window waits
     * for those), so the slowest requests are not left out */
    uint64_t when = rate > 0 ? sent : done;
    if (when < t_measure || when >= t_end) return;
    if (!ok) {
        err_in_window++;
        return;
    }
    ok_in_window++;
    lats_add(&lat_all, done - sent);
    if (second) {
        ok2_in_window++;
        lats_add(&lat_2, done - sent);
    }
}

static void conn_open(conn_t *c);

static void conn_fail(conn_t *c) {
    conn_errors++;
    /* requests in flight are lost: count them as errors */
    uint64_t t = now_ns();
    lost_in_flight += (uint64_t)c->inflight;
    for (int i = 0; i < c->inflight; i++) record(t, t, 0, "connection lost", 15, 0, 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->inflight = 0;
    c->r.len = 0;
    c->w.len = c->woff = 0;
    if (!stopping) {
        reconnects++;
        conn_open(c);
    }
}

/* Open loop: times at which requests fell due, waiting for a connection. */
#define MAX_BACKLOG (1u << 22)
static uint64_t *backlog;
static size_t bl_head, bl_len, bl_max;
static uint64_t next_due, offered, late_dropped;
static conn_t **idle;
static int nidle;

static void queue_request(conn_t *c, uint64_t due) {
    static buf_t path, body;
    int second = mix_pct > 0 && (int)(rnd() % 100) < mix_pct;
    const tmpl_t *pt = second ? &path2_t : &path_t, *bt = second ? &body2_t : &body_t;
    int with_body = second ? has_body2 : has_body;
    long from = 0, to = 0;
    /* only requests that name accounts get a pair (and count in acked_wdelta) */
    if (n_accounts > 0 && (pt->accounts || (with_body && bt->accounts))) {
        from = pick_account();
        to = pick_account();
        for (int spins = 0; to == from && spins < 32; spins++) to = pick_account();
    }
    path.len = 0;
    tmpl_expand(pt, &path, from, to);
    body.len = 0;
    if (with_body) tmpl_expand(bt, &body, from, to);
    char head[8192];
    int hl;
    if (with_body)
        hl = snprintf(head, sizeof head,
                      "%s %.*s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
                      method, (int)path.len, path.d, host, port, extra_headers, body.len);
    else
        hl = snprintf(head, sizeof head, "%s %.*s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n", method, (int)path.len, path.d, host,
                      port, extra_headers);
    buf_add(&c->w, head, (size_t)hl);
    if (with_body) buf_add(&c->w, body.d, body.len);
    int slot = (c->head + c->inflight) % pipeline_depth;
    c->sent[slot] = due ? due : now_ns();
    c->from[slot] = from;
    c->to[slot] = to;
    c->second[slot] = (char)second;
    c->inflight++;
}

static void conn_flush(conn_t *c) {
    while (c->woff < c->w.len) {
        ssize_t n = write(c->fd, c->w.d + c->woff, c->w.len - c->woff);
        if (n < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            conn_fail(c);
            return;
        }
        c->woff += (size_t)n;
    }
    if (c->woff == c->w.len) c->w.len = c->woff = 0;
    struct epoll_event ev = {.events = EPOLLIN | (c->w.len ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void dispatch(void);

static void fill(conn_t *c) {
    if (stopping) return;
    if (rate > 0) {
        /* open loop: the connection takes the oldest due request, or waits */
        if (c->inflight == 0 && c->fd >= 0 && !c->is_idle) {
            c->is_idle = 1;
            idle[nidle++] = c;
        }
        dispatch();
        if (!c->inflight && c->fd >= 0) conn_flush(c); /* stop watching for writability */
        return;
    }
    while (c->inflight < pipeline_depth) queue_request(c, 0);
    conn_flush(c);
}

/* Moves requests that fell due by now into the backlog, then hands the
 * backlog to idle connections, oldest first. */
static void dispatch(void) {
    if (stopping) return; /* what is still in the backlog counts as late */
    uint64_t t = now_ns(), interval = (uint64_t)(1e9 / rate);
    while (next_due <= t) {
        offered++;
        if (bl_len < MAX_BACKLOG) backlog[(bl_head + bl_len++) % MAX_BACKLOG] = next_due;
        else late_dropped++;
        next_due += interval;
    }
    if (bl_len > bl_max) bl_max = bl_len;
    while (bl_len && nidle) {
        conn_t *c = idle[--nidle];
        c->is_idle = 0;
        if (c->fd < 0 || !c->connected || c->inflight) continue;
        uint64_t due = backlog[bl_head];
        bl_head = (bl_head + 1) % MAX_BACKLOG;
        bl_len--;
        queue_request(c, due);
        conn_flush(c);
    }
}

static void conn_open(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    c->connected = 0;
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        die("connect %s:%d: %s", host, port, strerror(errno));
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Parses as many complete responses as rbuf holds. Returns -1 on a protocol
 * error. */
static int parse_responses(conn_t *c) {
    size_t off = 0;
    for (;;) {
        char *p = c->r.d + off;
        size_t avail = c->r.len - off;
        char *eoh = memmem(p, avail, "\r\n\r\n", 4);
        if (!eoh) break;
        size_t hlen = (size_t)(eoh - p) + 4;
        if (avail < 12 || memcmp(p, "HTTP/1.", 7)) return -1;
        int status = atoi(p + 9);
        long clen = -1;
        int chunked = 0, close_after = 0;
        for (char *line = memchr(p, '\n', hlen); line && line < eoh; line = memchr(line + 1, '\n', (size_t)(eoh - line))) {
            char *l = line + 1;
            if (!strncasecmp(l, "content-length:", 15)) clen = atol(l + 15);
            else if (!strncasecmp(l, "transfer-encoding:", 18) && memmem(l, 40, "chunked", 7)) chunked = 1;
            else if (!strncasecmp(l, "connection:", 11) && memmem(l, 30, "close", 5)) close_after = 1;
        }
        size_t total;
        const char *body = p + hlen;
        size_t blen;
        if (chunked) {
            size_t q = hlen;
            int done = 0;
            for (;;) {
                char *nl = memmem(p + q, avail - q, "\r\n", 2);
                if (!nl) break;
                long sz = strtol(p + q, NULL, 16);
                size_t need = (size_t)(nl - p) + 2 + (size_t)sz + 2;
                if (need > avail) break;
                q = need;
                if (sz == 0) {
                    done = 1;
                    break;
                }
            }
            if (!done) break;
            total = q;
            blen = total - hlen;
        } else {
            if (clen < 0) clen = 0;
            if (avail < hlen + (size_t)clen) break;
            total = hlen + (size_t)clen;
            blen = (size_t)clen;
        }
        uint64_t t = now_ns();
        if (c->inflight <= 0) return -1;
        uint64_t sent = c->sent[c->head];
        long rfrom = c->from[c->head], rto = c->to[c->head];
        int second = c->second[c->head];
        c->head = (c->head + 1) % pipeline_depth;
        c->inflight--;
        int ok = status >= 200 && status < 300;
        for (int k = 0; ok && k < nexpect; k++) ok = memmem(body, blen, expect[k], strlen(expect[k])) != NULL;
        if (ok && n_accounts > 0) acked_wdelta += (long long)(rto - rfrom);
        record(t, sent, ok, body, blen, status, second);
        off += total;
        if (close_after) {
            memmove(c->r.d, c->r.d + off, c->r.len - off);
            c->r.len -= off;
            conn_fail(c);
            return 1;
        }
    }
    if (off) {
        memmove(c->r.d, c->r.d + off, c->r.len - off);
        c->r.len -= off;
    }
    return 0;
}

static void on_event(conn_t *c, uint32_t events) {
    if (!c->connected) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            int e = 0;
            socklen_t l = sizeof e;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
            die("connect %s:%d: %s", host, port, strerror(e ? e : ECONNREFUSED));
        }
        c->connected = 1;
        fill(c);
        return;
    }
    if (events & EPOLLIN) {
        for (;;) {
            buf_reserve(&c->r, 65536);
            ssize_t n = read(c->fd, c->r.d + c->r.len, c->r.cap - c->r.len);
            if (n > 0) {
                c->r.len += (size_t)n;
                if ((size_t)n < 65536) break;
                continue;
            }
            if (n < 0 && errno == EAGAIN) break;
            if (n < 0 && errno == EINTR) continue;
            conn_fail(c); /* EOF or error */
            return;
        }
        int rc = parse_responses(c);
        if (rc < 0) {
            fprintf(stderr, "httpload: malformed response\n");
            conn_fail(c);
            return;
        }
        if (rc > 0) return; /* reconnected */
        fill(c);
    }
    if ((events & EPOLLOUT) && c->fd >= 0) conn_flush(c);
    if ((events & (EPOLLERR | EPOLLHUP)) && c->fd >= 0 && !(events & EPOLLIN)) conn_fail(c);
}

/* CPU seconds (user + system, all threads) of --watch-pid, and of the whole
 * machine (user nice system irq softirq of /proc/stat's first line). */
static void sample_watch(double *proc_s, double *busy_s) {
    if (nwatch == 0) return;
    double hz = (double)sysconf(_SC_CLK_TCK);
    char path[64], buf[4096];
    *proc_s = 0;
    for (int i = 0; i < nwatch; i++) {
        snprintf(path, sizeof path, "/proc/%d/stat", watch_pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        /* after ")": state(3) ... utime is field 14, stime 15 */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            *proc_s += (double)(ut + st) / hz;
    }
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        unsigned long long v[8] = {0};
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]) >= 7)
            *busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
        fclose(f);
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Exact percentile of sorted samples, in µs. */
static double pct(const lats_t *l, double p) {
    if (!l->n) return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)l->n);
    if (i > 0) i--;
    if (i >= l->n) i = l->n - 1;
    return (double)l->v[i] / 1000.0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: httpload --url http://127.0.0.1:PORT [-c CONNS] [-d SECONDS] [-w WARMUP] [--pipeline N]\n"
            "                [--method M] [--path TEMPLATE] [--body TEMPLATE] [--ids FILE]\n"
            "                [--accounts N] [--alpha A] [--expect STR]... [--header 'K: V'] [--seed N]\n"
            "                [--watch-pid PID] [--rate R] [--mix PCT --path2 T [--body2 T]] [--id-alpha A]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *url = NULL, *path = "/", *body = NULL, *ids_file = NULL, *path2 = NULL, *body2 = NULL;
    uint64_t seed = 12345;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "--url")) url = NEXT();
        else if (!strcmp(a, "-c")) nconns = atoi(NEXT());
        else if (!strcmp(a, "-d")) duration_s = atof(NEXT());
        else if (!strcmp(a, "-w")) warmup_s = atof(NEXT());
        else if (!strcmp(a, "--pipeline")) pipeline_depth = atoi(NEXT());
        else if (!strcmp(a, "--method")) method = NEXT();
        else if (!strcmp(a, "--path")) path = NEXT();
        else if (!strcmp(a, "--body")) body = NEXT();
        else if (!strcmp(a, "--ids")) ids_file = NEXT();
        else if (!strcmp(a, "--accounts")) n_accounts = atol(NEXT());
        else if (!strcmp(a, "--alpha")) alpha = atof(NEXT());
        else if (!strcmp(a, "--id-alpha")) id_alpha = atof(NEXT());
        else if (!strcmp(a, "--rate")) rate = atof(NEXT());
        else if (!strcmp(a, "--mix")) mix_pct = atoi(NEXT());
        else if (!strcmp(a, "--path2")) path2 = NEXT();
        else if (!strcmp(a, "--body2")) body2 = NEXT();
        else if (!strcmp(a, "--expect")) {
            if (nexpect == MAX_EXPECT) usage();
            expect[nexpect++] = NEXT();
        } else if (!strcmp(a, "--watch-pid")) {
            /* a comma-separated list: a server of several processes */
            for (char *tok = strtok(strdup(NEXT()), ","); tok && nwatch < MAX_WATCH; tok = strtok(NULL, ","))
                if (atoi(tok) > 0) watch_pids[nwatch++] = atoi(tok);
        }
        else if (!strcmp(a, "--seed")) seed = strtoull(NEXT(), NULL, 10);
        else if (!strcmp(a, "-v")) verbose = 1;
        else if (!strcmp(a, "--header")) {
            const char *h = NEXT();
            size_t l = strlen(extra_headers);
            snprintf(extra_headers + l, sizeof extra_headers - l, "%s\r\n", h);
        } else usage();
    }
    if (!url || strncmp(url, "http://", 7)) usage();
    if (nconns < 1 || pipeline_depth < 1 || duration_s <= 0 || rate < 0) usage();
    if (mix_pct < 0 || mix_pct > 100 || (mix_pct > 0 && !path2)) usage();
    if (rate > 0) pipeline_depth = 1; /* open loop: one request per connection at a time */
    {
        static char hostbuf[256];
        const char *hp = url + 7;
        const char *colon = strchr(hp, ':');
        if (!colon) usage();
        snprintf(hostbuf, sizeof hostbuf, "%.*s", (int)(colon - hp), hp);
        host = hostbuf;
        port = atoi(colon + 1);
    }
    seed_rng(seed);
    zipf_cdf = zipf_init(n_accounts, alpha);
    if (ids_file) {
        FILE *f = fopen(ids_file, "r");
        if (!f) die("%s: %s", ids_file, strerror(errno));
        char line[1024];
        size_t cap = 0;
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!*line) continue;
            if (nids == cap) ids = realloc(ids, (cap = cap ? cap * 2 : 1024) * sizeof *ids);
            ids[nids++] = strdup(line);
        }
        fclose(f);
        if (!nids) die("%s has no ids", ids_file);
        id_cdf = zipf_init((long)nids, id_alpha);
    }
    tmpl_parse(&path_t, path);
    if (body) {
        has_body = 1;
        tmpl_parse(&body_t, body);
    }
    if (path2) tmpl_parse(&path2_t, path2);
    if (body2) {
        has_body2 = 1;
        tmpl_parse(&body2_t, body2);
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)nconns, sizeof *conns);
    t_start = now_ns();
    t_measure = t_start + (uint64_t)(warmup_s * 1e9);
    t_end = t_measure + (uint64_t)(duration_s * 1e9);
    for (int i = 0; i < nconns; i++) {
        conns[i].idx = i;
        conns[i].sent = calloc((size_t)pipeline_depth, sizeof(uint64_t));
        conns[i].from = calloc((size_t)pipeline_depth, sizeof(long));
        conns[i].to = calloc((size_t)pipeline_depth, sizeof(long));
        conns[i].second = calloc((size_t)pipeline_depth, 1);
        conn_open(&conns[i]);
    }
    /* Open loop: a timerfd wakes the loop when the next request is due
     * (epoll_wait's millisecond timeout is too coarse for thousands a second). */
    int tfd = -1;
    if (rate > 0) {
        backlog = malloc(sizeof(uint64_t) * MAX_BACKLOG);
        idle = calloc((size_t)nconns, sizeof *idle);
        if (!backlog || !idle) die("out of memory");
        next_due = t_start;
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (tfd < 0) die("timerfd_create: %s", strerror(errno));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    }
    struct rusage ru0, ru1;
    double srv0 = 0, srv1 = 0, busy0 = 0, busy1 = 0;
    int have_ru0 = 0;
    struct epoll_event evs[256];
    uint64_t drain_deadline = 0;
    for (;;) {
        uint64_t t = now_ns();
        if (!have_ru0 && t >= t_measure) {
            getrusage(RUSAGE_SELF, &ru0);
            sample_watch(&srv0, &busy0);
            have_ru0 = 1;
        }
        if (!stopping && t >= t_end) {
            stopping = 1;
            getrusage(RUSAGE_SELF, &ru1);
            sample_watch(&srv1, &busy1);
            drain_deadline = t + 2000000000ull;
        }
        if (stopping) {
            int busy = 0;
            for (int i = 0; i < nconns; i++) busy |= conns[i].fd >= 0 && conns[i].inflight > 0;
            if (!busy || t >= drain_deadline) break;
        }
        if (tfd >= 0 && !stopping) {
            struct itimerspec its = {.it_value = {(time_t)(next_due / 1000000000u), (long)(next_due % 1000000000u)}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, evs, 256, 10);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                on_event(evs[i].data.ptr, evs[i].events);
                continue;
            }
            uint64_t expirations;
            if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("timerfd: %s", strerror(errno));
        }
        if (rate > 0) dispatch();
    }
    if (!have_ru0) getrusage(RUSAGE_SELF, &ru0);
    uint64_t unanswered = 0;
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0) unanswered += (uint64_t)conns[i].inflight;
    qsort(lat_all.v, lat_all.n, sizeof *lat_all.v, cmp_u64);
    qsort(lat_2.v, lat_2.n, sizeof *lat_2.v, cmp_u64);
    const lats_t *L = &lat_all;
    double sum = 0;
    for (size_t i = 0; i < L->n; i++) sum += (double)L->v[i];
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("{\"ok\": %llu, \"errors\": %llu, \"rps\": %.1f, \"mean_us\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
           "\"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, \"connections\": %d, \"pipeline\": %d, "
           "\"seconds\": %.2f, \"conn_errors\": %llu, \"errors_total\": %llu, \"loadgen_cpu_s\": %.3f, "
           "\"loadgen_cpu_share\": %.3f, \"ok_total\": %llu, \"lost_in_flight\": %llu, \"unanswered\": %llu, "
           "\"seed\": %llu",
           (unsigned long long)ok_in_window, (unsigned long long)err_in_window, (double)ok_in_window / duration_s,
           L->n ? sum / (double)L->n / 1000.0 : 0, pct(L, 50), pct(L, 90), pct(L, 99), pct(L, 99.9), L->n ? (double)L->v[L->n - 1] / 1000.0 : 0,
           nconns, pipeline_depth, duration_s, (unsigned long long)conn_errors, (unsigned long long)err_total, cpu,
           cpu / duration_s, (unsigned long long)ok_total, (unsigned long long)lost_in_flight,
           (unsigned long long)unanswered, (unsigned long long)seed);
    if (n_accounts > 0) printf(", \"acked_wdelta\": %lld", acked_wdelta);
    if (mix_pct > 0)
        printf(", \"mix_pct\": %d, \"ok2\": %llu, \"ok2_total\": %llu, \"t2_p50_us\": %.1f, \"t2_p99_us\": %.1f", mix_pct,
               (unsigned long long)ok2_in_window, (unsigned long long)ok2_total, pct(&lat_2, 50), pct(&lat_2, 99));
    if (rate > 0)
        printf(", \"offered_rate\": %.1f, \"offered\": %llu, \"late\": %llu, \"backlog_max\": %zu", rate,
               (unsigned long long)offered, (unsigned long long)(bl_len + late_dropped), bl_max);
    if (nwatch > 0)
        printf(", \"server_cpu_s\": %.3f, \"machine_busy_s\": %.3f", srv1 - srv0, busy1 - busy0);
    printf("}\n");
    return 0;
}
