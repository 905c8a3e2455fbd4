/* ss_redis_transport.c - one connection to one Redis endpoint: a
 * non-blocking socket driven by poll() against an absolute deadline, TLS by
 * OpenSSL over it, replies parsed by hiredis's redisReader. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ss_redis_tls.h"
#include "ss_redis_transport.h"

#define MAX_ADDRS 8
#define READ_CHUNK 16384
#define KEEPALIVE_IDLE 15 /* s, as hiredis's redisEnableKeepAlive */

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
} addr_t;

/* One getaddrinfo() in a detached thread. Whoever drops the last reference
 * (the thread, the endpoint, a waiter) frees it. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int refs, done, rc;
    pid_t pid; /* a forked child has no such thread: it starts another */
    addr_t addrs[MAX_ADDRS];
    int naddrs;
    char port[8];
    char host[];
} job_t;

struct ss_redis_endpoint_t {
    const ss_redis_config_t *cfg;
    char port[8];
    int literal;            /* an address (or a Unix socket): never resolved */
    SSL_CTX *ctx;           /* NULL: plain */
    const char *tls_name;   /* SNI and the name verified; NULL: none */
    int tls_name_ip;        /* tls_name is an address: no SNI, verified as an IP */
    apr_thread_mutex_t *mu; /* everything below */
    addr_t addrs[MAX_ADDRS];
    int naddrs;
    apr_time_t resolved; /* ss_redis_clock() of the last answer; 0: none */
    job_t *job;          /* the resolution under way, if any */
    SSL_SESSION *session;
};

struct ss_redis_transport_t {
    ss_redis_endpoint_t *ep;
    int fd;
    SSL *ssl;
    redisReader *reader;
    int fresh;            /* nothing read yet */
    apr_int64_t too_many; /* the element count of an array refused, else 0 */
};

apr_time_t ss_redis_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_time_t)ts.tv_sec * APR_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static void set_err(char *err, apr_size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, apr_size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    apr_vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* hiredis's reply functions but for arrays, whose element count is bounded
 * (SS_REDIS_MAX_ELEMENTS): set up once, read-only afterwards. */
#if HIREDIS_MAJOR >= 1
typedef size_t elements_t;
#else
typedef int elements_t;
#endif
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;
static redisReplyObjectFunctions bounded_fn;
static void *(*hiredis_array)(const redisReadTask *task, elements_t n);

static void *bounded_array(const redisReadTask *task, elements_t n)
{
    if ((unsigned long long)n > SS_REDIS_MAX_ELEMENTS) {
        ss_redis_transport_t *t = task->privdata;

        t->too_many = (apr_int64_t)n;
        return NULL; /* the reader stops with an error */
    }
    return hiredis_array(task, n);
}

static void bounded_init(void)
{
    redisReader *r = redisReaderCreate();

    if (r && r->fn && r->fn->createArray) {
        bounded_fn = *r->fn;
        hiredis_array = bounded_fn.createArray;
        bounded_fn.createArray = bounded_array;
    }
    redisReaderFree(r);
}

/* A reader that refuses arrays too large; NULL when out of memory. */
static redisReader *reader_create(ss_redis_transport_t *t)
{
    redisReader *r;

    pthread_once(&bounded_once, bounded_init);
    if (!hiredis_array) {
        return NULL;
    }
    r = redisReaderCreate();
    if (r) {
        r->fn = &bounded_fn;
        r->privdata = t;
    }
    return r;
}

/* What the reader stopped on. */
static void reader_failed(ss_redis_transport_t *t, char *err, apr_size_t errlen)
{
    if (t->too_many) {
        set_err(err, errlen,
                "protocol error: an array of %" APR_INT64_T_FMT " elements (at most %d)",
                t->too_many, SS_REDIS_MAX_ELEMENTS);
    } else {
        set_err(err, errlen, "protocol error: %s", t->reader->errstr);
    }
}

static const char *os_error(int e, char *buf, apr_size_t len)
{
    return apr_strerror(APR_FROM_OS_ERROR(e), buf, len);
}

/* ---- resolving, with a bounded wait ---- */

static void job_unref(job_t *job)
{
    int last;

    pthread_mutex_lock(&job->m);
    last = --job->refs == 0;
    pthread_mutex_unlock(&job->m);
    if (last) {
        pthread_cond_destroy(&job->cv);
        pthread_mutex_destroy(&job->m);
        free(job);
    }
}

/* IPv4 first, as hiredis tried them. */
static int keep_addrs(const struct addrinfo *res, addr_t *out)
{
    const struct addrinfo *ai;
    int n = 0, pass;

    for (pass = 0; pass < 2; pass++) {
        for (ai = res; ai && n < MAX_ADDRS; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET) != (pass == 0) ||
                (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                ai->ai_addrlen > sizeof(out[n].sa)) {
                continue;
            }
            memcpy(&out[n].sa, ai->ai_addr, ai->ai_addrlen);
            out[n++].len = ai->ai_addrlen;
        }
    }
    return n;
}

static void *resolver(void *arg)
{
    job_t *job = arg;
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(job->host, job->port, &hints, &res);
    pthread_mutex_lock(&job->m);
    job->rc = rc;
    if (!rc) {
        job->naddrs = keep_addrs(res, job->addrs);
    }
    job->done = 1;
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->m);
    if (res) {
        freeaddrinfo(res);
    }
    job_unref(job);
    return NULL;
}

/* A new job with its thread running: two references, the thread's and the
 * caller's. NULL when no thread can be started. */
static job_t *job_start(const char *host, const char *port)
{
    size_t n = strlen(host);
    job_t *job = calloc(1, sizeof(*job) + n + 1);
    pthread_condattr_t ca;
    pthread_attr_t ta;
    pthread_t tid;
    sigset_t all, old;
    int rc;

    if (!job) {
        return NULL;
    }
    memcpy(job->host, host, n + 1);
    apr_cpystrn(job->port, port, sizeof(job->port));
    job->refs = 2;
    job->pid = getpid();
    pthread_mutex_init(&job->m, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&job->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    /* Signals are for the host's own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&tid, &ta, resolver, job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&ta);
    if (rc) {
        pthread_cond_destroy(&job->cv);
        pthread_mutex_destroy(&job->m);
        free(job);
        return NULL;
    }
    return job;
}

/* Resolve the host, waiting until wait_until at the most; the answer goes to
 * ep. One resolution at a time per endpoint: later callers wait for it. */
static apr_status_t resolve(ss_redis_endpoint_t *ep, apr_time_t wait_until, char *err,
                            apr_size_t errlen)
{
    struct timespec ts;
    job_t *job;
    int done, rc = 0, n = 0;
    addr_t addrs[MAX_ADDRS];

    apr_thread_mutex_lock(ep->mu);
    job = ep->job;
    if (job && job->pid != getpid()) {
        job = ep->job = NULL; /* its thread stayed in the parent; its memory too */
    }
    if (job) {
        /* One that ended after its waiters gave up: its answer is kept,
         * but a new one is asked for. */
        pthread_mutex_lock(&job->m);
        done = job->done;
        if (done && !job->rc && job->naddrs) {
            memcpy(ep->addrs, job->addrs, sizeof(job->addrs));
            ep->naddrs = job->naddrs;
        }
        pthread_mutex_unlock(&job->m);
        if (done) {
            ep->job = NULL;
            job_unref(job); /* the endpoint's */
            job = NULL;
        }
    }
    if (!job) {
        job = ep->job = job_start(ep->cfg->host, ep->port); /* the endpoint's reference */
        if (!job) {
            apr_thread_mutex_unlock(ep->mu);
            set_err(err, errlen, "resolve %s: cannot start a resolver thread", ep->cfg->host);
            return APR_ENOMEM;
        }
    }
    pthread_mutex_lock(&job->m);
    job->refs++; /* ours */
    pthread_mutex_unlock(&job->m);
    apr_thread_mutex_unlock(ep->mu);

    ts.tv_sec = (time_t)(wait_until / APR_USEC_PER_SEC);
    ts.tv_nsec = (long)(wait_until % APR_USEC_PER_SEC) * 1000;
    pthread_mutex_lock(&job->m);
    while (!job->done && pthread_cond_timedwait(&job->cv, &job->m, &ts) != ETIMEDOUT) {
    }
    done = job->done;
    if (done) {
        rc = job->rc;
        n = job->naddrs;
        memcpy(addrs, job->addrs, sizeof(addrs));
    }
    pthread_mutex_unlock(&job->m);

    if (done) {
        apr_thread_mutex_lock(ep->mu);
        if (ep->job == job) {
            ep->job = NULL;
            job_unref(job); /* the endpoint's */
        }
        if (!rc && n) {
            memcpy(ep->addrs, addrs, sizeof(addrs));
            ep->naddrs = n;
            ep->resolved = ss_redis_clock();
        }
        apr_thread_mutex_unlock(ep->mu);
    }
    job_unref(job);
    if (!done) {
        set_err(err, errlen, "resolve %s: timed out", ep->cfg->host);
        return APR_TIMEUP;
    }
    if (rc) {
        set_err(err, errlen, "resolve %s: %s", ep->cfg->host, gai_strerror(rc));
        return APR_EGENERAL;
    }
    if (!n) {
        set_err(err, errlen, "resolve %s: no IPv4 or IPv6 address", ep->cfg->host);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* The addresses to try, resolving first when the last answer is old. */
static apr_status_t addresses(ss_redis_endpoint_t *ep, apr_time_t deadline, addr_t *out, int *n,
                              char *err, apr_size_t errlen)
{
    apr_time_t now = ss_redis_clock();
    apr_status_t rv = APR_SUCCESS;
    int have, fresh;

    apr_thread_mutex_lock(ep->mu);
    have = ep->naddrs;
    fresh = ep->literal || (have && now - ep->resolved < SS_REDIS_RESOLVE_TTL);
    apr_thread_mutex_unlock(ep->mu);
    if (!fresh) {
        /* With an answer to fall back on, leave time to connect. */
        rv = resolve(ep, have ? now + (deadline - now) / 2 : deadline, err, errlen);
    }
    apr_thread_mutex_lock(ep->mu);
    *n = ep->naddrs;
    memcpy(out, ep->addrs, sizeof(ep->addrs));
    apr_thread_mutex_unlock(ep->mu);
    return *n ? APR_SUCCESS : rv;
}

/* ---- waiting ---- */

/* Until fd is ready for events (or in error: the next call says which), or
 * APR_TIMEUP at the deadline. */
static apr_status_t wait_io(int fd, short events, apr_time_t deadline)
{
    for (;;) {
        apr_time_t left = deadline - ss_redis_clock();
        struct pollfd pfd;
        int rc;

        if (left <= 0) {
            return APR_TIMEUP;
        }
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (rc > 0) {
            return APR_SUCCESS;
        }
        if (rc < 0 && errno != EINTR) {
            return APR_FROM_OS_ERROR(errno);
        }
    }
}

/* ---- connecting ---- */

static void socket_options(int fd, int family)
{
    int on = 1, idle = KEEPALIVE_IDLE, intvl = KEEPALIVE_IDLE / 3, cnt = 3;

    if (family == AF_UNIX) {
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static apr_status_t connect_one(int *out, const addr_t *a, apr_time_t deadline)
{
    int family = a->sa.ss_family, fd, e = 0;
    socklen_t elen = sizeof(e);
    apr_status_t rv;

    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    socket_options(fd, family);
    while (connect(fd, (const struct sockaddr *)&a->sa, a->len)) {
        e = errno;
        if (e == EINTR) {
            continue;
        }
        if (e == EAGAIN && family == AF_UNIX) {
            /* The listener's backlog is full: try again a little later. */
            rv = ss_redis_clock() + 10000 < deadline ? APR_SUCCESS : APR_TIMEUP;
            if (rv == APR_SUCCESS) {
                usleep(10000);
                continue;
            }
            close(fd);
            return rv;
        }
        if (e != EINPROGRESS) {
            close(fd);
            return APR_FROM_OS_ERROR(e);
        }
        rv = wait_io(fd, POLLOUT, deadline);
        if (rv == APR_SUCCESS && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen)) {
            e = errno;
        }
        if (rv == APR_SUCCESS && e) {
            rv = APR_FROM_OS_ERROR(e);
        }
        if (rv != APR_SUCCESS) {
            close(fd);
            return rv;
        }
        break;
    }
    *out = fd;
    return APR_SUCCESS;
}

static int is_tls_record(const char *buf, apr_size_t n)
{
    return n >= 2 && (buf[0] == 0x15 || buf[0] == 0x16) && buf[1] == 0x03;
}

/* A TLS failure: what OpenSSL says, and a hint when the peer does not seem
 * to speak TLS at all. */
static apr_status_t tls_failed(ss_redis_transport_t *t, int ret, const char *what, char *err,
                               apr_size_t errlen)
{
    unsigned long e = ERR_peek_last_error();
    int code = SSL_get_error(t->ssl, ret), saved = errno;
    long verify = SSL_get_verify_result(t->ssl);
    const char *reason = e ? ERR_reason_error_string(e) : NULL, *hint = "";

    if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ||
         ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG ||
         ERR_GET_REASON(e) == SSL_R_RECORD_LENGTH_MISMATCH)) {
        hint = " (is the server's port a TLS port?)";
    }
    ERR_clear_error();
    if (verify != X509_V_OK) {
        set_err(err, errlen, "%s: certificate verification failed: %s", what,
                X509_verify_cert_error_string(verify));
        return APR_EGENERAL;
    }
    if (t->fresh && !SSL_in_init(t->ssl) && !e) {
        /* TLS 1.3: the server judges the client's certificate after the
         * client is done, then drops it, at times before its alert is read. */
        hint = " before any reply (does the server require a client certificate? "
               "tls_cert_file and tls_key_file)";
    }
    if (code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && !e && !saved)) {
        set_err(err, errlen, "%s: connection closed by the server%s", what, hint);
        return APR_EOF;
    }
    if (code == SSL_ERROR_SYSCALL && !e) {
        char buf[128];

        set_err(err, errlen, "%s: %s%s", what, os_error(saved, buf, sizeof(buf)), hint);
        return APR_FROM_OS_ERROR(saved);
    }
    set_err(err, errlen, "%s: %s%s", what, reason ? reason : "TLS error", hint);
    return APR_EGENERAL;
}

/* Drive a TLS operation that asked to wait: 1 to go on, 0 when it failed
 * (*rv says how). */
static int tls_wait(ss_redis_transport_t *t, int ret, apr_time_t deadline, apr_status_t *rv)
{
    int code = SSL_get_error(t->ssl, ret);

    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
        *rv = wait_io(t->fd, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        return *rv == APR_SUCCESS;
    }
    *rv = APR_EGENERAL;
    return 0;
}

static apr_status_t handshake(ss_redis_transport_t *t, apr_time_t deadline, char *err,
                              apr_size_t errlen)
{
    ss_redis_endpoint_t *ep = t->ep;
    apr_status_t rv = APR_SUCCESS;
    int ret;

    t->ssl = SSL_new(ep->ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, t->fd) != 1) {
        ERR_clear_error();
        set_err(err, errlen, "TLS handshake: cannot set up the connection");
        return APR_ENOMEM;
    }
    if (ep->tls_name && !ep->tls_name_ip) {
        SSL_set_tlsext_host_name(t->ssl, ep->tls_name);
    }
    if (ep->tls_name && ep->cfg->tls_verify == SS_REDIS_TLS_VERIFY_FULL) {
        if (ep->tls_name_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ep->tls_name)
                            : SSL_set1_host(t->ssl, ep->tls_name)) {
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        } else {
            ERR_clear_error();
            set_err(err, errlen, "TLS handshake: cannot set the name to verify");
            return APR_EGENERAL;
        }
    }
    SSL_set_app_data(t->ssl, ep); /* for new_session: endpoints may share the SSL_CTX */
    apr_thread_mutex_lock(ep->mu);
    if (ep->session) {
        SSL_set_session(t->ssl, ep->session);
    }
    apr_thread_mutex_unlock(ep->mu);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        ret = SSL_connect(t->ssl);
        if (ret == 1) {
            return APR_SUCCESS;
        }
        if (!tls_wait(t, ret, deadline, &rv)) {
            break;
        }
    }
    if (rv == APR_TIMEUP) {
        set_err(err, errlen,
                "TLS handshake: timed out (no TLS answer: a hung server, or a plain-TCP port?)");
        return rv;
    }
    return tls_failed(t, ret, "TLS handshake", err, errlen);
}

/* A new TLS session from the server (TLS 1.3 sends it after the
 * handshake): kept for the next connection of this store. */
static int new_session(SSL *ssl, SSL_SESSION *session)
{
    ss_redis_endpoint_t *ep = SSL_get_app_data(ssl);
    SSL_SESSION *old;

    apr_thread_mutex_lock(ep->mu);
    old = ep->session;
    ep->session = session;
    apr_thread_mutex_unlock(ep->mu);
    if (old) {
        SSL_SESSION_free(old);
    }
    return 1; /* we keep the reference */
}

static const char *describe_addr(const addr_t *a, char *buf, apr_size_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    if (a->sa.ss_family == AF_UNIX) {
        return ((const struct sockaddr_un *)&a->sa)->sun_path;
    }
    if (getnameinfo((const struct sockaddr *)&a->sa, a->len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV)) {
        return "?";
    }
    apr_snprintf(buf, len, a->sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    return buf;
}

apr_status_t ss_redis_transport_open(ss_redis_transport_t **out, ss_redis_endpoint_t *ep,
                                     apr_time_t deadline, char *err, apr_size_t errlen)
{
    addr_t addrs[MAX_ADDRS];
    ss_redis_transport_t *t;
    apr_status_t rv;
    char buf[128], where[NI_MAXHOST + NI_MAXSERV + 8];
    int n = 0, i, fd = -1;

    *out = NULL;
    rv = addresses(ep, deadline, addrs, &n, err, errlen);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    for (i = 0, rv = APR_TIMEUP; i < n && ss_redis_clock() < deadline; i++) {
        rv = connect_one(&fd, &addrs[i], deadline);
        if (rv == APR_SUCCESS) {
            break;
        }
        set_err(err, errlen, "connect to %s: %s", describe_addr(&addrs[i], where, sizeof(where)),
                rv == APR_TIMEUP ? "timed out" : apr_strerror(rv, buf, sizeof(buf)));
    }
    if (rv != APR_SUCCESS) {
        if (!i) {
            set_err(err, errlen, "connect: timed out");
        }
        return rv;
    }
    t = calloc(1, sizeof(*t));
    if (t) {
        t->reader = reader_create(t);
    }
    if (!t || !t->reader) {
        close(fd);
        free(t);
        set_err(err, errlen, "out of memory");
        return APR_ENOMEM;
    }
    t->ep = ep;
    t->fd = fd;
    t->fresh = 1;
    if (ep->ctx) {
        rv = handshake(t, deadline, err, errlen);
        if (rv != APR_SUCCESS) {
            ss_redis_transport_close(t);
            return rv;
        }
    }
    *out = t;
    return APR_SUCCESS;
}

/* ---- commands ---- */

static apr_status_t write_all(ss_redis_transport_t *t, const char *buf, apr_size_t len,
                              apr_time_t deadline, char *err, apr_size_t errlen)
{
    apr_size_t off = 0;
    apr_status_t rv = APR_SUCCESS;
    char ebuf[128];

    while (off < len) {
        if (ss_redis_clock() >= deadline) {
            rv = APR_TIMEUP;
            break;
        }
        if (t->ssl) {
            int n;

            ERR_clear_error();
            errno = 0;
            n = SSL_write(t->ssl, buf + off, (int)(len - off > INT_MAX ? INT_MAX : len - off));
            if (n > 0) {
                off += (apr_size_t)n;
            } else if (!tls_wait(t, n, deadline, &rv)) {
                if (rv == APR_TIMEUP) {
                    break;
                }
                return tls_failed(t, n, "TLS", err, errlen);
            }
        } else {
            ssize_t n = send(t->fd, buf + off, len - off, MSG_NOSIGNAL);

            if (n >= 0) {
                off += (apr_size_t)n;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                rv = wait_io(t->fd, POLLOUT, deadline);
                if (rv != APR_SUCCESS) {
                    break;
                }
            } else if (errno != EINTR) {
                rv = APR_FROM_OS_ERROR(errno);
                set_err(err, errlen, "%s", os_error(errno, ebuf, sizeof(ebuf)));
                return rv;
            }
        }
    }
    if (rv == APR_TIMEUP) {
        set_err(err, errlen, "timed out");
    }
    return rv;
}

/* Some bytes into buf (*n > 0), or a failure. */
static apr_status_t read_some(ss_redis_transport_t *t, char *buf, apr_size_t cap, apr_size_t *n,
                              apr_time_t deadline, char *err, apr_size_t errlen)
{
    apr_status_t rv = APR_SUCCESS;
    char ebuf[128];

    for (;;) {
        if (ss_redis_clock() >= deadline) {
            rv = APR_TIMEUP;
            break;
        }
        if (t->ssl) {
            int got;

            ERR_clear_error();
            errno = 0;
            got = SSL_read(t->ssl, buf, (int)cap);
            if (got > 0) {
                *n = (apr_size_t)got;
                return APR_SUCCESS;
            }
            if (!tls_wait(t, got, deadline, &rv)) {
                if (rv == APR_TIMEUP) {
                    break;
                }
                return tls_failed(t, got, "TLS", err, errlen);
            }
        } else {
            ssize_t got = recv(t->fd, buf, cap, 0);

            if (got > 0) {
                *n = (apr_size_t)got;
                return APR_SUCCESS;
            }
            if (got == 0 || (errno == ECONNRESET && t->fresh)) {
                /* A TLS port drops a client that speaks plain RESP. */
                set_err(err, errlen, "connection %s by the server%s", got ? "reset" : "closed",
                        t->fresh ? " before any reply (a TLS port? that needs rediss://)" : "");
                return got ? APR_ECONNRESET : APR_EOF;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                rv = wait_io(t->fd, POLLIN, deadline);
                if (rv != APR_SUCCESS) {
                    break;
                }
            } else if (errno != EINTR) {
                rv = APR_FROM_OS_ERROR(errno);
                set_err(err, errlen, "%s", os_error(errno, ebuf, sizeof(ebuf)));
                return rv;
            }
        }
    }
    set_err(err, errlen, "timed out");
    return rv;
}

static apr_status_t read_reply(ss_redis_transport_t *t, redisReply **reply, apr_time_t deadline,
                               char *err, apr_size_t errlen)
{
    char buf[READ_CHUNK];
    void *r = NULL;
    apr_size_t n = 0;
    apr_status_t rv;

    for (;;) {
        if (redisReaderGetReply(t->reader, &r) != REDIS_OK) {
            reader_failed(t, err, errlen);
            return APR_EGENERAL;
        }
        if (r) {
            *reply = r;
            return APR_SUCCESS;
        }
        rv = read_some(t, buf, sizeof(buf), &n, deadline, err, errlen);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (t->fresh && !t->ssl && is_tls_record(buf, n)) {
            set_err(err, errlen, "the server answered in TLS: use a rediss:// URI");
            return APR_EGENERAL;
        }
        t->fresh = 0;
        if (redisReaderFeed(t->reader, buf, n) != REDIS_OK) {
            reader_failed(t, err, errlen);
            return APR_EGENERAL;
        }
    }
}

apr_status_t ss_redis_transport_call(ss_redis_transport_t *t, int n, const ss_redis_argv_t *cmds,
                                     redisReply **replies, apr_time_t deadline, char *err,
                                     apr_size_t errlen)
{
    char *one[4], *buf = NULL;
    long long len[4], total = 0;
    apr_status_t rv = APR_SUCCESS;
    int i, j;

    if (n < 1 || n > 4) {
        set_err(err, errlen, "internal error: %d commands in one call", n);
        return APR_EINVAL;
    }
    for (i = 0; i < n; i++) {
        one[i] = NULL;
        /* hiredis only reads argv; its prototype lacks the inner const. */
        len[i] =
            redisFormatCommandArgv(&one[i], cmds[i].argc, (const char **)cmds[i].argv, cmds[i].len);
        if (len[i] <= 0) {
            rv = APR_ENOMEM;
            break;
        }
        total += len[i];
    }
    if (rv == APR_SUCCESS && n > 1) {
        buf = malloc((size_t)total);
        if (!buf) {
            rv = APR_ENOMEM;
        }
        for (i = 0, total = 0; buf && i < n; i++) {
            memcpy(buf + total, one[i], (size_t)len[i]);
            total += len[i];
        }
    }
    if (rv == APR_SUCCESS) {
        rv = write_all(t, n > 1 ? buf : one[0], (apr_size_t)total, deadline, err, errlen);
    } else {
        set_err(err, errlen, "out of memory");
    }
    free(buf);
    for (i = 0; i < n; i++) {
        if (one[i]) {
            redisFreeCommand(one[i]);
        }
    }
    for (i = 0; rv == APR_SUCCESS && i < n; i++) {
        rv = read_reply(t, &replies[i], deadline, err, errlen);
        if (rv != APR_SUCCESS) {
            for (j = 0; j < i; j++) {
                freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
        }
    }
    return rv;
}

int ss_redis_transport_resumed(const ss_redis_transport_t *t)
{
    return t->ssl && SSL_session_reused(t->ssl);
}

void ss_redis_transport_close(ss_redis_transport_t *t)
{
    if (!t) {
        return;
    }
    if (t->ssl) {
        /* No close_notify on the wire (the socket may be a parent's too),
         * and the session stays resumable. */
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(t->ssl);
    }
    close(t->fd);
    redisReaderFree(t->reader);
    free(t);
}

/* ---- the endpoint ---- */

static apr_status_t endpoint_cleanup(void *data)
{
    ss_redis_endpoint_t *ep = data;

    if (ep->session) {
        SSL_SESSION_free(ep->session);
        ep->session = NULL;
    }
    if (ep->ctx) {
        SSL_CTX_free(ep->ctx);
        ep->ctx = NULL;
    }
    return APR_SUCCESS;
}

/* A Unix socket, or a host that is an address: no resolver involved. */
static apr_status_t literal_addrs(ss_redis_endpoint_t *ep, char *err, apr_size_t errlen)
{
    const ss_redis_config_t *cfg = ep->cfg;
    struct addrinfo hints, *res = NULL;

    if (cfg->path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ep->addrs[0].sa;

        if (strlen(cfg->path) >= sizeof(un->sun_path)) {
            set_err(err, errlen, "socket path longer than %d bytes", (int)sizeof(un->sun_path) - 1);
            return APR_EINVAL;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, cfg->path, strlen(cfg->path) + 1); /* length checked above */
        ep->addrs[0].len = sizeof(*un);
        ep->naddrs = 1;
        ep->literal = 1;
        return APR_SUCCESS;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV; /* never a lookup */
    if (!getaddrinfo(cfg->host, ep->port, &hints, &res)) {
        ep->naddrs = keep_addrs(res, ep->addrs);
        ep->literal = ep->naddrs > 0;
        freeaddrinfo(res);
    }
    return APR_SUCCESS;
}

/* The name sent as SNI and verified: tls_server_name, else the host. */
static void set_tls_name(ss_redis_endpoint_t *ep, apr_pool_t *p)
{
    const ss_redis_config_t *cfg = ep->cfg;
    char *zone;

    ep->tls_name = apr_pstrdup(p, cfg->tls_server_name ? cfg->tls_server_name : cfg->host);
    zone = strchr(ep->tls_name, '%');
    if (zone) {
        *zone = '\0'; /* fe80::1%eth0: the address is fe80::1 */
    }
    ep->tls_name_ip = ss_redis_tls_is_ip(ep->tls_name);
}

static apr_status_t endpoint_init(ss_redis_endpoint_t *ep, const ss_redis_config_t *cfg,
                                  apr_pool_t *p, char *err, apr_size_t errlen)
{
    apr_status_t rv;

    ep->cfg = cfg;
    apr_snprintf(ep->port, sizeof(ep->port), "%d", cfg->port);
    rv = apr_thread_mutex_create(&ep->mu, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        set_err(err, errlen, "cannot create a mutex");
        return rv;
    }
    apr_pool_cleanup_register(p, ep, endpoint_cleanup, apr_pool_cleanup_null);
    return literal_addrs(ep, err, errlen);
}

apr_status_t ss_redis_endpoint_derive(ss_redis_endpoint_t **out, const ss_redis_endpoint_t *base,
                                      const ss_redis_config_t *cfg, apr_pool_t *p, char *err,
                                      apr_size_t errlen)
{
    ss_redis_endpoint_t *ep = apr_pcalloc(p, sizeof(*ep));
    apr_status_t rv = endpoint_init(ep, cfg, p, err, errlen);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (base->ctx) {
        SSL_CTX_up_ref(base->ctx); /* endpoint_cleanup drops it */
        ep->ctx = base->ctx;
        set_tls_name(ep, p);
    }
    *out = ep;
    return APR_SUCCESS;
}

apr_status_t ss_redis_endpoint_create(ss_redis_endpoint_t **out, const ss_redis_config_t *cfg,
                                      apr_pool_t *p, char *err, apr_size_t errlen)
{
    ss_redis_endpoint_t *ep = apr_pcalloc(p, sizeof(*ep));
    apr_status_t rv = endpoint_init(ep, cfg, p, err, errlen);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (cfg->tls) {
        const char *msg = ss_redis_tls_ctx(&ep->ctx, cfg, p);

        if (msg) {
            apr_cpystrn(err, msg, errlen);
            return APR_EGENERAL;
        }
        SSL_CTX_sess_set_new_cb(ep->ctx, new_session);
        set_tls_name(ep, p);
    }
    if (!ep->literal) {
        /* At start-up, so that the first connections need not wait; a
         * failure here is not one: each connection tries again. */
        resolve(ep, ss_redis_clock() + cfg->connect_timeout, err, errlen);
        err[0] = '\0';
    }
    *out = ep;
    return APR_SUCCESS;
}
