/* loadgen.c - the benchmark's HTTP load generator: closed loop, keep-alive,
 * one cookie jar per connection.
 *
 * Why not wrk: wrk's Lua state is per thread, and request()/response() are
 * not told which connection they serve, so "each connection has its own
 * session" holds only with one connection per thread (64 client threads on a
 * 2-core machine, competing with httpd). This program is one epoll thread:
 * every connection keeps the cookie its own responses set (like a browser
 * tab), or, with -s, all connections share one jar (one session, contention).
 * It also checks the probe's answers (tests/probe/mod_sessprobe.c), so a
 * variant that loses sessions or updates shows it instead of looking fast.
 *
 *   loadgen -p PORT -u PATH -c CONNS -d SECONDS [-w SECONDS] [-n COOKIE]
 *           [-m ro|rw] [-s [-k]] [-b] [-r REQUESTS]
 *
 * -k (with -s): connection i asks for "&k=i" on the path, so that each one
 * counts on a key of its own in the shared session; "lost_updates" is then
 * the number of a connection's own increments that it found undone (another
 * request wrote the session back without them).
 *
 * -r ends the measured phase after that many requests (or the duration),
 * for instruction counts under callgrind.
 *
 * Phases: warm-up (every connection's first request creates its session;
 * with -s one request creates the shared one first), drain, then with -b
 * "ready" on stdout and a wait for a line on stdin (the caller snapshots
 * counters), the measured phase, drain. Requests completed within the
 * measured window give requests/s; every measured request (also those
 * completed while draining) gives latencies and "measured_total", so that
 * server-side counters read around the phase divide exactly. Prints one JSON
 * object on stdout. Exit 0 when it ran (errors are counted in the JSON), 2 on
 * bad usage, 1 when the server could not be reached or stalled. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (64 * 1024)
#define WBUF_SIZE (32 * 1024)
#define COOKIE_MAX (16 * 1024)
#define MAX_CONNS 1024
#define STALL_NS (15ULL * 1000000000ULL)

enum { PH_WARMUP, PH_MEASURE, PH_DONE };

typedef struct {
    int fd;
    int busy;       /* a request is in flight */
    int active;     /* may send in this phase */
    uint64_t t0;    /* when the request in flight was sent, ns */
    long long last; /* value the probe last answered on this connection, -1: none */
    size_t rlen, wlen, woff;
    char cookie[COOKIE_MAX]; /* own jar; unused with -s */
    char rbuf[RBUF_SIZE];
    char wbuf[WBUF_SIZE];
} conn_t;

static struct {
    int port;
    const char *path;
    int nconns;
    double duration, warmup;
    const char *cookie_name;
    int rw, shared, keys, barrier;
    unsigned long long max_requests;
} opt = {0, "/probe", 1, 2.0, 0.5, "session", 0, 0, 0, 0, 0};

static conn_t *conns;
static int epfd;
static int phase = PH_WARMUP;
static uint64_t phase_end;
static uint64_t last_progress;
static char shared_cookie[COOKIE_MAX];
static int shared_started; /* -s: the other connections were let go */

static struct {
    uint64_t in_window, total, errors, non200, reconnects, anomalies, resets, nosession;
    long long shared_max_start, shared_max;
    long long own_lost; /* -k: a connection's own increments found undone */
    uint64_t *lat;
    size_t nlat, cap;
} st = {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, 0, NULL, 0, 0};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void fatal(const char *msg)
{
    printf("{\"ok\":false,\"error\":\"%s: %s\"}\n", msg, errno ? strerror(errno) : "");
    fflush(stdout);
    exit(1);
}

static void record_latency(uint64_t ns)
{
    if (st.nlat == st.cap) {
        st.cap = st.cap ? st.cap * 2 : 65536;
        st.lat = realloc(st.lat, st.cap * sizeof(*st.lat));
        if (!st.lat) {
            fatal("out of memory");
        }
    }
    st.lat[st.nlat++] = ns;
}

static void conn_open(conn_t *c)
{
    struct sockaddr_in sa;
    struct epoll_event ev;
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fatal("socket");
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)opt.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A loopback connect completes at once: connect blocking, then switch. */
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fatal("connect");
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fatal("epoll_ctl");
    }
    c->rlen = 0;
}

static void conn_reopen(conn_t *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    st.reconnects++;
    conn_open(c);
}

static void want_write(conn_t *c, int on)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_write(conn_t *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                want_write(c, 1);
                return;
            }
            /* The server closed: resend on a fresh connection. */
            st.errors++;
            conn_reopen(c);
            c->woff = 0;
            continue;
        }
        c->woff += (size_t)n;
    }
    want_write(c, 0);
}

static void send_request(conn_t *c)
{
    const char *cookie = opt.shared ? shared_cookie : c->cookie;
    char key[32] = "";
    int n;

    if (opt.keys) {
        snprintf(key, sizeof(key), "%ck=%d", strchr(opt.path, '?') ? '&' : '?', (int)(c - conns));
    }
    if (*cookie) {
        n = snprintf(c->wbuf, sizeof(c->wbuf),
                     "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: sessstore-loadgen\r\n"
                     "Cookie: %s=%s\r\n\r\n",
                     opt.path, key, opt.port, opt.cookie_name, cookie);
    } else {
        n = snprintf(c->wbuf, sizeof(c->wbuf),
                     "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: "
                     "sessstore-loadgen\r\n\r\n",
                     opt.path, key, opt.port);
    }
    if (n < 0 || (size_t)n >= sizeof(c->wbuf)) {
        errno = 0;
        fatal("request too large");
    }
    c->wlen = (size_t)n;
    c->woff = 0;
    c->busy = 1;
    c->t0 = now_ns();
    flush_write(c);
}

/* Case-insensitive "Name:" at the start of a header line; returns the value. */
static const char *header_value(const char *line, const char *name)
{
    size_t len = strlen(name);

    if (strncasecmp(line, name, len) || line[len] != ':') {
        return NULL;
    }
    line += len + 1;
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    return line;
}

/* "NAME=VALUE; attrs" for our cookie name: store VALUE ("" clears). 1 when
 * it was ours. */
static int take_cookie(conn_t *c, const char *v, const char *eol)
{
    size_t nlen = strlen(opt.cookie_name), vlen;
    const char *end;
    char *jar = opt.shared ? shared_cookie : c->cookie;

    if ((size_t)(eol - v) <= nlen || strncmp(v, opt.cookie_name, nlen) || v[nlen] != '=') {
        return 0;
    }
    v += nlen + 1;
    end = memchr(v, ';', (size_t)(eol - v));
    if (!end) {
        end = eol;
    }
    while (end > v && (end[-1] == ' ' || end[-1] == '\r')) {
        end--;
    }
    vlen = (size_t)(end - v);
    if (vlen >= COOKIE_MAX) {
        vlen = 0; /* cannot keep it: behave like a browser refusing it */
    }
    memcpy(jar, v, vlen);
    jar[vlen] = '\0';
    return 1;
}

static int all_idle(void)
{
    int i;

    for (i = 0; i < opt.nconns; i++) {
        if (conns[i].busy) {
            return 0;
        }
    }
    return 1;
}

static void start_phase(void)
{
    int i;

    for (i = 0; i < opt.nconns; i++) {
        /* -s: one request creates the shared session before the others go. */
        conns[i].active = !(opt.shared && phase == PH_WARMUP && !*shared_cookie && i > 0);
        if (conns[i].active) {
            send_request(&conns[i]);
        }
    }
}

/* The probe's answer. A new session shows as 0 on read+write, and as a
 * Set-Cookie on read-only (no variant sets a cookie for an unchanged one). */
static void check_value(conn_t *c, const char *body, size_t blen, int got_cookie)
{
    char tmp[32];
    long long v;

    if (blen >= 4 && !strncmp(body, "none", 4)) {
        st.nosession++;
        return;
    }
    if (blen == 0 || blen >= sizeof(tmp)) {
        st.anomalies++;
        return;
    }
    memcpy(tmp, body, blen);
    tmp[blen] = '\0';
    v = strtoll(tmp, NULL, 10);
    if (phase == PH_MEASURE && !opt.keys && (opt.rw ? v == 0 : got_cookie)) {
        st.resets++; /* a new session was created: the old one was lost */
    }
    if (opt.keys) {
        /* Its own key: one more than it last stored, or some of its own
         * increments were undone by another request's write. */
        if (c->last >= 0 && v != c->last + 1) {
            if (v <= c->last && phase == PH_MEASURE) {
                st.own_lost += c->last + 1 - v;
            } else if (v > c->last) {
                st.anomalies++;
            }
        }
    } else if (opt.shared) {
        if (v > st.shared_max) {
            st.shared_max = v;
        }
    } else if (c->last >= 0 && v != c->last + (opt.rw ? 1 : 0)) {
        st.anomalies++;
    }
    c->last = v;
}

/* A chunked body at p (avail bytes): its length on the wire when complete
 * (chunks, last chunk, no trailers), 0 when more is needed; the data of the
 * chunks is copied to out (up to outsz - 1 bytes) and its length to *olen.
 * httpd chunks what CGI scripts (php-cgi) send: mod_cgid drops their
 * Content-Length. */
static size_t parse_chunked(const char *p, size_t avail, char *out, size_t outsz, size_t *olen)
{
    size_t off = 0;

    *olen = 0;
    for (;;) {
        const char *eol = memmem(p + off, avail - off, "\r\n", 2);
        char *end;
        unsigned long n;

        if (!eol) {
            return 0;
        }
        n = strtoul(p + off, &end, 16);
        if (end == p + off) {
            errno = 0;
            fatal("bad chunk size");
        }
        off = (size_t)(eol - p) + 2;
        if (n == 0) {
            return avail - off >= 2 && !memcmp(p + off, "\r\n", 2) ? off + 2 : 0;
        }
        if (avail - off < n + 2) {
            return 0;
        }
        if (*olen + n < outsz) {
            memcpy(out + *olen, p + off, n);
            *olen += n;
        }
        off += n + 2;
    }
}

/* Parse one complete response if the buffer holds one. 1: done, 0: need more. */
static int parse_response(conn_t *c)
{
    char *hend, *line, *eol;
    long clen = -1;
    int status, close_after = 0, got_cookie = 0, chunked = 0;
    size_t hlen, wire, blen;
    char chunk_body[64];
    const char *body;

    if (c->rlen == sizeof(c->rbuf)) {
        errno = 0;
        fatal("response too large");
    }
    c->rbuf[c->rlen] = '\0';
    hend = strstr(c->rbuf, "\r\n\r\n");
    if (!hend) {
        return 0;
    }
    hlen = (size_t)(hend - c->rbuf) + 4;
    if (sscanf(c->rbuf, "HTTP/1.%*d %d", &status) != 1) {
        status = 0;
    }
    for (line = strstr(c->rbuf, "\r\n") + 2; line < hend; line = eol + 2) {
        const char *v;

        eol = strstr(line, "\r\n");
        if ((v = header_value(line, "Content-Length"))) {
            clen = strtol(v, NULL, 10);
        } else if ((v = header_value(line, "Set-Cookie"))) {
            got_cookie |= take_cookie(c, v, eol);
        } else if ((v = header_value(line, "Connection"))) {
            close_after = !strncasecmp(v, "close", 5);
        } else if ((v = header_value(line, "Transfer-Encoding"))) {
            chunked = !strncasecmp(v, "chunked", 7);
        }
    }
    if (chunked) {
        wire = parse_chunked(c->rbuf + hlen, c->rlen - hlen, chunk_body, sizeof(chunk_body), &blen);
        if (!wire) {
            return 0;
        }
        body = chunk_body;
    } else {
        if (clen < 0) {
            errno = 0;
            fatal("response without Content-Length or chunked encoding");
        }
        if (c->rlen < hlen + (size_t)clen) {
            return 0;
        }
        wire = blen = (size_t)clen;
        body = c->rbuf + hlen;
    }
    if (status == 200) {
        while (blen && (body[blen - 1] == '\n' || body[blen - 1] == '\r')) {
            blen--;
        }
        check_value(c, body, blen, got_cookie);
    } else {
        st.non200++;
    }
    memmove(c->rbuf, c->rbuf + hlen + wire, c->rlen - hlen - wire);
    c->rlen -= hlen + wire;
    if (close_after) {
        conn_reopen(c);
    }
    return 1;
}

static void on_response(conn_t *c)
{
    uint64_t t = now_ns();

    c->busy = 0;
    last_progress = t;
    if (phase == PH_MEASURE) {
        st.total++;
        record_latency(t - c->t0);
        if (t <= phase_end) {
            st.in_window++;
        }
        if (opt.max_requests && st.total + (opt.nconns - 1) >= opt.max_requests && t < phase_end) {
            phase_end = t; /* the others in flight complete the count */
        }
    }
    if (opt.shared && phase == PH_WARMUP && !shared_started && *shared_cookie) {
        int i;

        shared_started = 1;
        for (i = 1; i < opt.nconns; i++) {
            conns[i].active = 1;
            send_request(&conns[i]);
        }
    }
    if (t < phase_end) {
        send_request(c);
    } else {
        c->active = 0;
    }
}

static void on_readable(conn_t *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - 1 - c->rlen);

        if (n > 0) {
            c->rlen += (size_t)n;
            while (c->busy && parse_response(c)) {
                on_response(c);
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        /* EOF or error: the server closed (keep-alive timeout, restart). */
        conn_reopen(c);
        if (c->busy) {
            st.errors++;
            send_request(c);
        }
        return;
    }
}

static void run_until_idle(void)
{
    struct epoll_event evs[256];

    last_progress = now_ns();
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 100), i;

        if (n < 0 && errno != EINTR) {
            fatal("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;

            if (evs[i].events & EPOLLOUT) {
                flush_write(c);
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                on_readable(c);
            }
        }
        if (now_ns() >= phase_end && all_idle()) {
            return;
        }
        if (now_ns() - last_progress > STALL_NS) {
            errno = 0;
            fatal("no response for 15 s");
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double pct_us(double p)
{
    size_t i;

    if (!st.nlat) {
        return 0;
    }
    i = (size_t)(p * (double)(st.nlat - 1) + 0.5);
    return (double)st.lat[i] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen -p PORT [-u PATH] [-c CONNS] [-d SECONDS] [-w SECONDS] "
                    "[-n COOKIE] [-m ro|rw] [-s [-k]] [-b] [-r REQUESTS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t t_start;
    double elapsed;
    int ch, i;

    while ((ch = getopt(argc, argv, "p:u:c:d:w:n:m:skbr:")) != -1) {
        switch (ch) {
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'u':
            opt.path = optarg;
            break;
        case 'c':
            opt.nconns = atoi(optarg);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'n':
            opt.cookie_name = optarg;
            break;
        case 'm':
            if (!strcmp(optarg, "rw")) {
                opt.rw = 1;
            } else if (strcmp(optarg, "ro")) {
                usage();
            }
            break;
        case 's':
            opt.shared = 1;
            break;
        case 'k':
            opt.keys = 1;
            break;
        case 'b':
            opt.barrier = 1;
            break;
        case 'r':
            opt.max_requests = strtoull(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    if (opt.port <= 0 || opt.port > 65535 || opt.nconns < 1 || opt.nconns > MAX_CONNS ||
        opt.duration <= 0 || opt.warmup < 0 || (opt.keys && (!opt.shared || !opt.rw))) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)opt.nconns, sizeof(*conns));
    if (epfd < 0 || !conns) {
        fatal("setup");
    }
    for (i = 0; i < opt.nconns; i++) {
        conns[i].last = -1;
        conn_open(&conns[i]);
    }

    /* Warm-up: every connection completes at least one request. */
    phase = PH_WARMUP;
    phase_end = now_ns() + (uint64_t)(opt.warmup * 1e9);
    start_phase();
    run_until_idle();

    if (opt.barrier) {
        char line[64];

        printf("ready\n");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) {
            return 0;
        }
    }

    phase = PH_MEASURE;
    st.shared_max_start = st.shared_max;
    t_start = now_ns();
    phase_end = t_start + (uint64_t)(opt.duration * 1e9);
    start_phase();
    run_until_idle();
    elapsed = (double)(phase_end - t_start) / 1e9;

    qsort(st.lat, st.nlat, sizeof(*st.lat), cmp_u64);
    printf("{\"ok\":true,\"conns\":%d,\"shared\":%d,\"rw\":%d,\"duration\":%.3f,"
           "\"requests\":%llu,\"rps\":%.1f,\"measured_total\":%llu,"
           "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
           "\"errors\":%llu,\"non200\":%llu,\"reconnects\":%llu,\"anomalies\":%llu,"
           "\"resets\":%llu,\"nosession\":%llu,\"lost_updates\":%lld}\n",
           opt.nconns, opt.shared, opt.rw, elapsed, (unsigned long long)st.in_window,
           (double)st.in_window / elapsed, (unsigned long long)st.total, pct_us(0.50), pct_us(0.90),
           pct_us(0.99), pct_us(1.0), (unsigned long long)st.errors, (unsigned long long)st.non200,
           (unsigned long long)st.reconnects, (unsigned long long)st.anomalies,
           (unsigned long long)st.resets, (unsigned long long)st.nosession,
           opt.keys               ? st.own_lost
           : opt.shared && opt.rw ? (long long)st.total - (st.shared_max - st.shared_max_start)
                                  : 0LL);
    return 0;
}
