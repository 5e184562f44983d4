/*
 * wsfan — subscription fan-out latency: N WebSocket clients subscribe to one
 * query; a writer commits a mutation over HTTP; we time how long each client
 * takes to receive the new value.
 *
 * Protocols:
 *   cvx   the Convex sync protocol (/api/1.45.0/sync): Connect, then
 *         ModifyQuerySet Add bench:counter {name}; an update is a Transition
 *         carrying a QueryUpdated. The writer POSTs /api/mutation bench:incr.
 *   node  the Node peer's /ws: {"sub": name}; an update is any message.
 *         The writer POSTs /api/mutation bench:incr (same body).
 *
 * Each round: send the mutation (t_send), read its HTTP response (t_commit),
 * wait until every client got its update (or a 10 s timeout). Per client
 * and round we record t_recv - t_send and t_recv - t_commit (the latter can
 * be < 0 when a client hears of the commit before the writer does; such
 * samples count as 0). One epoll thread does everything.
 *
 * usage: wsfan --url http://127.0.0.1:PORT --proto cvx|node [-n CLIENTS] [-r ROUNDS] [--name COUNTER]
 * Prints one JSON object.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wsfan: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct {
    int fd;
    int state; /* 0 connecting, 1 handshake sent, 2 open (subscribing), 3 ready */
    char *r;
    size_t rlen, rcap;
    uint64_t got_round; /* last round whose update arrived */
} client_t;

static const char *host = "127.0.0.1";
static int port;
static int proto_cvx = 1;
static const char *counter = "fan";
static int ep;

static int tcp_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) die("connect: %s", strerror(errno));
    return fd;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                usleep(100);
                continue;
            }
            die("write: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
}

/* A masked client text frame (opcode 1) or pong (opcode 10). */
static void ws_send(int fd, int opcode, const char *msg, size_t len) {
    char hdr[14];
    size_t h = 0;
    hdr[h++] = (char)(0x80 | opcode);
    if (len < 126) hdr[h++] = (char)(0x80 | len);
    else if (len < 65536) {
        hdr[h++] = (char)(0x80 | 126);
        hdr[h++] = (char)(len >> 8);
        hdr[h++] = (char)len;
    } else die("message too long");
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(hdr + h, mask, 4);
    h += 4;
    char *buf = malloc(h + len);
    memcpy(buf, hdr, h);
    for (size_t i = 0; i < len; i++) buf[h + i] = (char)(msg[i] ^ mask[i & 3]);
    write_all(fd, buf, h + len);
    free(buf);
}

static uint64_t cur_round; /* 1-based; 0 = before the first round */
static uint64_t t_send, t_commit;
static int commit_seen;
static double *lat_send, *lat_commit;
static size_t nlat, caplat;
static int nready, nclients;
static uint64_t updates_in_round;

static void on_message(client_t *c, const char *m, size_t len) {
    if (c->state == 2) {
        /* the initial value */
        if (!proto_cvx || memmem(m, len, "QueryUpdated", 12)) {
            c->state = 3;
            nready++;
        }
        return;
    }
    if (c->state != 3 || cur_round == 0 || c->got_round == cur_round) return;
    if (proto_cvx && !memmem(m, len, "QueryUpdated", 12)) return;
    uint64_t t = now_ns();
    c->got_round = cur_round;
    updates_in_round++;
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 4096;
        lat_send = realloc(lat_send, caplat * sizeof(double));
        lat_commit = realloc(lat_commit, caplat * sizeof(double));
    }
    lat_send[nlat] = (double)(t - t_send) / 1000.0;
    /* the commit time is known only once the writer got its response; fixed up later */
    lat_commit[nlat] = (double)t;
    nlat++;
}

static void client_subscribe(client_t *c, int idx) {
    char msg[512];
    if (proto_cvx) {
        int n = snprintf(msg, sizeof msg,
                         "{\"type\":\"Connect\",\"sessionId\":\"00000000-0000-4000-8000-%012d\",\"connectionCount\":0,"
                         "\"lastCloseReason\":null,\"clientTs\":0}",
                         idx);
        ws_send(c->fd, 1, msg, (size_t)n);
        n = snprintf(msg, sizeof msg,
                     "{\"type\":\"ModifyQuerySet\",\"baseVersion\":0,\"newVersion\":1,\"modifications\":[{\"type\":\"Add\","
                     "\"queryId\":0,\"udfPath\":\"bench:counter\",\"args\":[{\"name\":\"%s\"}]}]}",
                     counter);
        ws_send(c->fd, 1, msg, (size_t)n);
    } else {
        int n = snprintf(msg, sizeof msg, "{\"sub\":\"%s\"}", counter);
        ws_send(c->fd, 1, msg, (size_t)n);
    }
}

static void client_read(client_t *c, int idx) {
    for (;;) {
        if (c->rcap - c->rlen < 65536) {
            c->rcap = c->rcap ? c->rcap * 2 : 131072;
            c->r = realloc(c->r, c->rcap);
        }
        ssize_t n = read(c->fd, c->r + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        die("client %d: connection closed by the server (state %d)", idx, c->state);
    }
    size_t off = 0;
    if (c->state == 1) {
        char *e = memmem(c->r, c->rlen, "\r\n\r\n", 4);
        if (!e) return;
        if (c->rlen < 12 || memcmp(c->r + 9, "101", 3)) die("client %d: upgrade refused: %.*s", idx, (int)(c->rlen > 200 ? 200 : c->rlen), c->r);
        off = (size_t)(e - c->r) + 4;
        c->state = 2;
        client_subscribe(c, idx);
    }
    for (;;) {
        unsigned char *p = (unsigned char *)c->r + off;
        size_t avail = c->rlen - off;
        if (avail < 2) break;
        int opcode = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (p[1] & 0x80) h += 4; /* servers do not mask, but be lenient */
        if (avail < h + len) break;
        const char *payload = (const char *)p + h;
        if (opcode == 9) ws_send(c->fd, 10, payload, (size_t)len);
        else if (opcode == 8) die("client %d: server closed the WebSocket: %.*s", idx, (int)(len > 2 ? len - 2 : 0), payload + 2);
        else if (opcode == 1 || opcode == 0) on_message(c, payload, (size_t)len);
        off += h + (size_t)len;
    }
    memmove(c->r, c->r + off, c->rlen - off);
    c->rlen -= off;
}

/* The writer: one keep-alive HTTP connection, blocking writes, reads through epoll. */
static int wfd;
static char wbuf[65536];
static size_t wlen;

static void writer_send(void) {
    char body[256], req[1024];
    int bl = snprintf(body, sizeof body, "{\"path\":\"bench:incr\",\"args\":[{\"name\":\"%s\"}],\"format\":\"convex_encoded_json\"}", counter);
    int rl = snprintf(req, sizeof req,
                      "POST /api/mutation HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      host, port, bl, body);
    t_send = now_ns();
    commit_seen = 0;
    write_all(wfd, req, (size_t)rl);
}

static void writer_read(void) {
    for (;;) {
        ssize_t n = read(wfd, wbuf + wlen, sizeof wbuf - wlen - 1);
        if (n > 0) {
            wlen += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        die("writer connection closed");
    }
    wbuf[wlen] = 0;
    char *e = strstr(wbuf, "\r\n\r\n");
    if (!e) return;
    char *cl = strcasestr(wbuf, "content-length:");
    size_t clen = cl ? (size_t)atol(cl + 15) : 0;
    size_t total = (size_t)(e - wbuf) + 4 + clen;
    if (wlen < total) return;
    if (!strstr(e, "\"status\":\"success\"")) die("mutation failed: %.*s", (int)clen, e + 4);
    t_commit = now_ns();
    commit_seen = 1;
    memmove(wbuf, wbuf + total, wlen - total);
    wlen -= total;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pctl(double *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int main(int argc, char **argv) {
    const char *url = NULL;
    int rounds = 20;
    nclients = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--proto")) proto_cvx = !strcmp(argv[i + 1], "cvx");
        else if (!strcmp(argv[i], "-n")) nclients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--name")) counter = argv[i + 1];
        else die("unknown option %s", argv[i]);
    }
    if (!url || strncmp(url, "http://", 7) || !strchr(url + 7, ':')) die("usage: wsfan --url http://127.0.0.1:PORT --proto cvx|node [-n N] [-r ROUNDS]");
    port = atoi(strchr(url + 7, ':') + 1);
    if (rounds < 1 || nclients < 1) die("need at least one round and one client");
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    ep = epoll_create1(EPOLL_CLOEXEC);
    client_t *cs = calloc((size_t)nclients, sizeof *cs);
    const char *wspath = proto_cvx ? "/api/1.45.0/sync" : "/ws";
    char hs[512];
    int hsl = snprintf(hs, sizeof hs,
                       "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                       wspath, host, port);
    uint64_t t0 = now_ns();
    /* Connect in batches of 100 so the accept queue never overflows. */
    int next = 0;
    struct epoll_event evs[512];
    while (nready < nclients) {
        int pending = 0;
        for (int i = 0; i < next; i++) pending += cs[i].state < 3;
        while (next < nclients && pending < 100) {
            client_t *c = &cs[next];
            c->fd = tcp_connect();
            struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)next};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            next++;
            pending++;
        }
        int n = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < n; i++) {
            int idx = (int)evs[i].data.u64;
            client_t *c = &cs[idx];
            if (c->state == 0) {
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) die("client %d: connect failed", idx);
                write_all(c->fd, hs, (size_t)hsl);
                c->state = 1;
                struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)idx};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            } else {
                client_read(c, idx);
            }
        }
        if (now_ns() - t0 > 60000000000ull) die("only %d of %d clients subscribed after 60 s", nready, nclients);
    }
    double setup_ms = (double)(now_ns() - t0) / 1e6;

    wfd = tcp_connect();
    {
        /* wait for the writer's connect */
        struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)-1};
        epoll_ctl(ep, EPOLL_CTL_ADD, wfd, &ev);
        for (int done = 0; !done;) {
            int n = epoll_wait(ep, evs, 512, 1000);
            for (int i = 0; i < n; i++) {
                if (evs[i].data.u64 == (uint64_t)-1) done = 1;
                else client_read(&cs[evs[i].data.u64], (int)evs[i].data.u64);
            }
        }
        ev.events = EPOLLIN;
        epoll_ctl(ep, EPOLL_CTL_MOD, wfd, &ev);
    }

    double *all_delivered = calloc((size_t)rounds, sizeof(double));
    double *commit_ms = calloc((size_t)rounds, sizeof(double));
    int timeouts = 0;
    size_t negatives = 0;
    for (int r = 1; r <= rounds; r++) {
        /* a quiet gap between rounds */
        uint64_t gap_end = now_ns() + 100000000ull;
        while (now_ns() < gap_end) {
            int n = epoll_wait(ep, evs, 512, 10);
            for (int i = 0; i < n; i++)
                if (evs[i].data.u64 == (uint64_t)-1) writer_read();
                else client_read(&cs[evs[i].data.u64], (int)evs[i].data.u64);
        }
        size_t first = nlat;
        cur_round = (uint64_t)r;
        updates_in_round = 0;
        writer_send();
        uint64_t deadline = t_send + 10000000000ull;
        uint64_t last = 0;
        while ((updates_in_round < (uint64_t)nclients || !commit_seen) && now_ns() < deadline) {
            int n = epoll_wait(ep, evs, 512, 10);
            for (int i = 0; i < n; i++)
                if (evs[i].data.u64 == (uint64_t)-1) writer_read();
                else client_read(&cs[evs[i].data.u64], (int)evs[i].data.u64);
            if (updates_in_round == (uint64_t)nclients && !last) last = now_ns();
        }
        if (updates_in_round < (uint64_t)nclients || !commit_seen) {
            timeouts++;
            fprintf(stderr, "wsfan: round %d: %llu of %d clients updated within 10 s\n", r, (unsigned long long)updates_in_round,
                    nclients);
        }
        commit_ms[r - 1] = commit_seen ? (double)(t_commit - t_send) / 1e6 : 0;
        all_delivered[r - 1] = last ? (double)(last - t_send) / 1e6 : 10000;
        for (size_t i = first; i < nlat; i++) {
            double d = (lat_commit[i] - (double)t_commit) / 1000.0;
            if (d < 0) {
                negatives++;
                d = 0;
            }
            lat_commit[i] = d;
        }
    }
    qsort(lat_send, nlat, sizeof(double), cmpd);
    qsort(lat_commit, nlat, sizeof(double), cmpd);
    qsort(all_delivered, (size_t)rounds, sizeof(double), cmpd);
    qsort(commit_ms, (size_t)rounds, sizeof(double), cmpd);
    printf("{\"clients\": %d, \"rounds\": %d, \"samples\": %zu, \"timeouts\": %d, \"setup_ms\": %.1f, "
           "\"from_send_p50_ms\": %.3f, \"from_send_p99_ms\": %.3f, \"from_send_max_ms\": %.3f, "
           "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"before_commit_response\": %zu, "
           "\"all_delivered_p50_ms\": %.3f, \"all_delivered_max_ms\": %.3f, \"mutation_p50_ms\": %.3f}\n",
           nclients, rounds, nlat, timeouts, setup_ms, pctl(lat_send, nlat, 50) / 1000, pctl(lat_send, nlat, 99) / 1000,
           nlat ? lat_send[nlat - 1] / 1000 : 0, pctl(lat_commit, nlat, 50) / 1000, pctl(lat_commit, nlat, 99) / 1000,
           nlat ? lat_commit[nlat - 1] / 1000 : 0, negatives, pctl(all_delivered, (size_t)rounds, 50),
           all_delivered[rounds > 0 ? rounds - 1 : 0], pctl(commit_ms, (size_t)rounds, 50));
    return 0;
}
