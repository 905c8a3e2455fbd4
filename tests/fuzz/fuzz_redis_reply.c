/* fuzz_redis_reply.c - Redis reply handling: arbitrary bytes from "Redis"
 * through hiredis' redisReader into the code that interprets replies.
 *
 * Nothing is stubbed and no function is exposed for it: the harness opens
 * the real Redis store (ss_redis_open) on a Unix socket whose server is a
 * thread of this process that answers every connection with bytes of the
 * input, whatever was asked. So the replies meet the whole client: the
 * transport's reader loop (ss_redis_transport.c: read_reply), the connection
 * layer (ss_redis_conn.c: AUTH and SELECT replies, error replies, NOSCRIPT
 * and the EVAL resend, READONLY/LOADING/MASTERDOWN, the retry on a fresh
 * connection, the breaker) and the store (ss_redis.c: the GET of the lean
 * load, the load script's integer and array replies, SET and DEL replies,
 * PING). The server writes its bytes and then shuts its side down, so a
 * short reply ends at once in end-of-file, never in a timeout.
 *
 * Input: byte 0 configures: bit 0 a password, bit 1 (with bit 0) a user,
 * bit 2 SELECT 3, bit 3 every load by the script (SESSSTORE_REDIS_LOAD),
 * bit 4 a breaker, bit 5 saves are updates (else new), bits 6-7 one to four
 * operations, named two bits each by byte 1 (load, save, remove, ping). The
 * rest is what the server sends: the first connection gets the bytes up to
 * the first SEP, the next connection those up to the next, and so on.
 *
 * Checks: no crash, leak or sanitizer report; a load that succeeds returns
 * a well-formed record alive for the caller's timeouts; results are the
 * documented ones (EEXIST only for a new save, NOTFOUND only for a load or
 * an update, EEXPIRED only for a load, never a decoder's status); no log line holds the password or
 * a control character. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <apr_strings.h>

#include "fuzz.h"
#include "ss_log.h"
#include "ss_redis.h"

#define SEP "\n##\n"
#define SEP_LEN 4
#define MAX_CHUNKS 8
#define MAX_CONNS 32
#define PASSWORD "fuzz-s3cret-pw"
#define NOW apr_time_from_sec(1700000000)

static struct {
    char dir[32];
    char path[64];
    int listen_fd;
    int ctl[2]; /* harness to server: 'q' close everything, then ack */
    int ack[2];
    pthread_mutex_t mu;
    const uint8_t *chunk[MAX_CHUNKS];
    size_t chunk_len[MAX_CHUNKS];
    int nchunks;
    int next;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_redis_reply: %s: %s\n", what, strerror(errno));
    abort();
}

/* A new connection: its share of the input, then end-of-file. */
static void answer(int fd)
{
    const uint8_t *buf = NULL;
    size_t len = 0, off = 0;

    pthread_mutex_lock(&srv.mu);
    if (srv.next < srv.nchunks) {
        buf = srv.chunk[srv.next];
        len = srv.chunk_len[srv.next];
    }
    srv.next++;
    pthread_mutex_unlock(&srv.mu);
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

        if (n <= 0) {
            break; /* the client gave up on this connection */
        }
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
}

/* One byte through a control pipe, again when a signal interrupted it
 * (libFuzzer's timers interrupt system calls). */
static int byte_read(int fd, char *c)
{
    ssize_t r;

    while ((r = read(fd, c, 1)) < 0 && errno == EINTR) {
    }
    return r == 1;
}

static int byte_write(int fd, char c)
{
    ssize_t r;

    while ((r = write(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    return r == 1;
}

/* The server: answers each connection once, reads and drops what the
 * client sends until it closes, and on 'q' closes every connection. */
static void *serve(void *arg)
{
    int conns[MAX_CONNS], n = 0, i;
    char buf[4096];

    (void)arg;
    for (;;) {
        struct pollfd pf[2 + MAX_CONNS];

        pf[0].fd = srv.listen_fd;
        pf[0].events = POLLIN;
        pf[1].fd = srv.ctl[0];
        pf[1].events = POLLIN;
        for (i = 0; i < n; i++) {
            pf[2 + i].fd = conns[i];
            pf[2 + i].events = POLLIN;
        }
        if (poll(pf, (nfds_t)(2 + n), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("poll");
        }
        for (i = n - 1; i >= 0; i--) {
            ssize_t r = pf[2 + i].revents ? read(conns[i], buf, sizeof(buf)) : 1;

            if (r == 0 || (r < 0 && errno != EINTR)) {
                close(conns[i]);
                conns[i] = conns[--n];
            }
        }
        if (pf[0].revents & POLLIN) {
            int fd = accept(srv.listen_fd, NULL, NULL);

            if (fd >= 0) {
                answer(fd);
                if (n < MAX_CONNS) {
                    conns[n++] = fd;
                } else {
                    close(fd);
                }
            }
        }
        if (pf[1].revents & POLLIN) {
            char c = 0;
            int fd;

            if (!byte_read(srv.ctl[0], &c) || c != 'q') {
                return NULL;
            }
            /* Connections the client opened but never waited for. */
            while ((fd = accept(srv.listen_fd, NULL, NULL)) >= 0) {
                close(fd);
            }
            while (n) {
                close(conns[--n]);
            }
            if (!byte_write(srv.ack[1], 'k')) {
                die("ack");
            }
        }
    }
}

static void stop_server(void)
{
    unlink(srv.path);
    rmdir(srv.dir);
}

/* No line the store logs may hold the password, unless the server said it
 * (error replies are quoted). */
static int server_says_password;

static void log_cb(void *baton, int level, apr_status_t rv, const char *msg)
{
    const char *c;

    (void)baton;
    fuzz_trace("  log %d (%d): %s", level, rv, msg);
    FUZZ_CHECK(*msg != '\0', "an empty log line");
    for (c = msg; *c; c++) {
        /* What the server says must not forge lines in the error log. */
        FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "a control character in: %s", msg);
    }
    FUZZ_CHECK(server_says_password || strstr(msg, PASSWORD) == NULL,
               "the password in a log line: %s", msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_un sa;
    pthread_t thread;

    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN); /* as httpd does (ss_redis.h) */
    strcpy(srv.dir, "/tmp/ss-fuzz.XXXXXX");
    if (!mkdtemp(srv.dir)) {
        die("mkdtemp");
    }
    snprintf(srv.path, sizeof(srv.path), "%s/redis.sock", srv.dir);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, srv.path);
    srv.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(srv.listen_fd, 64) != 0) {
        die("listen");
    }
    if (pipe(srv.ctl) != 0 || pipe(srv.ack) != 0) {
        die("pipe");
    }
    atexit(stop_server);
    if (pthread_create(&thread, NULL, serve, NULL) != 0) {
        die("pthread_create");
    }
    pthread_detach(thread);
    ss_log_set(log_cb, NULL);
    return 0;
}

/* The server's script for this input (data NULL: none). */
static void set_chunks(const uint8_t *data, size_t size)
{
    const uint8_t *end = data ? data + size : NULL;

    pthread_mutex_lock(&srv.mu);
    srv.nchunks = 0;
    srv.next = 0;
    while (data && srv.nchunks < MAX_CHUNKS) {
        const uint8_t *sep = srv.nchunks < MAX_CHUNKS - 1 && end - data >= SEP_LEN
                                 ? memmem(data, (size_t)(end - data), SEP, SEP_LEN)
                                 : NULL;

        srv.chunk[srv.nchunks] = data;
        srv.chunk_len[srv.nchunks++] = (size_t)((sep ? sep : end) - data);
        data = sep ? sep + SEP_LEN : NULL;
    }
    pthread_mutex_unlock(&srv.mu);
}

/* Every connection of this input closed, on both sides. */
static void quiesce(void)
{
    char c;

    if (!byte_write(srv.ctl[1], 'q') || !byte_read(srv.ack[0], &c)) {
        die("quiesce");
    }
    set_chunks(NULL, 0);
}

static void op_load(ss_store_t *store, const ss_key_t *key, apr_pool_t *p)
{
    const ss_expiry_t judge = {apr_time_from_sec(1800), apr_time_from_sec(8 * 3600)};
    const ss_expiry_t keep = {apr_time_from_sec(3600), apr_time_from_sec(8 * 3600)};
    ss_record_t rec;
    apr_status_t rv;

    memset(&rec, 0, sizeof(rec));
    rv = store->ops->load(store, key, &judge, &keep, NOW, p, &rec);
    fuzz_trace("load: %d", rv);
    FUZZ_CHECK(rv != APR_EINVAL && rv != APR_ENOTIMPL && rv != SS_RECORD_ENOKEY &&
                   rv != APR_EEXIST && rv != SS_ECONFLICT,
               "load: %d", rv);
    if (rv == APR_SUCCESS) {
        FUZZ_CHECK(rec.user && rec.payload && strlen(rec.payload) == rec.payload_len,
                   "a load returned a malformed record");
        FUZZ_CHECK(ss_expiry_check(&judge, rec.created, rec.accessed, NOW) == SS_LIVE,
                   "a load returned a dead session");
    }
}

static void op_save(ss_store_t *store, const ss_key_t *key, ss_save_mode_e mode, apr_pool_t *p)
{
    /* A new session is revision 1; an update writes 2 over the 1 it loaded. */
    ss_record_t rec = {NOW - apr_time_from_sec(10), NOW, "alice", "user=alice&n=1", 14,
                       mode == SS_SAVE_NEW ? 1 : 2};
    apr_status_t rv;

    rv = store->ops->save(store, key, &rec, NOW + apr_time_from_sec(1800), mode, 1 << 20, p);
    fuzz_trace("%s save: %d", mode == SS_SAVE_NEW ? "new" : "update", rv);
    FUZZ_CHECK(rv != APR_EEXIST || mode == SS_SAVE_NEW, "EEXIST from an update");
    FUZZ_CHECK(rv != APR_NOTFOUND || mode == SS_SAVE_UPDATE, "NOTFOUND from a new save");
    FUZZ_CHECK(rv != SS_ECONFLICT || mode == SS_SAVE_UPDATE, "a conflict from a new save");
    FUZZ_CHECK(rv != SS_EEXPIRED, "EEXPIRED from a save");
    FUZZ_CHECK(rv != APR_ENOSPC && rv != APR_EINVAL, "save: %d", rv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ss_redis_config_t *cfg = NULL;
    ss_store_t *store = NULL;
    ss_store_stats_t stats;
    ss_key_t key;
    const char *uri, *err;
    unsigned conf, ops, n, i;
    apr_status_t rv;

    if (size < 2) {
        return 0;
    }
    conf = data[0];
    ops = data[1];
    set_chunks(data + 2, size - 2);
    server_says_password = memmem(data, size, PASSWORD, strlen(PASSWORD)) != NULL;
    p = fuzz_pool();
    uri = apr_psprintf(p, "unix://%s?connect_timeout=2000&command_timeout=2000&breaker=%d%s%s%s",
                       srv.path, conf & 16 ? 60000 : 0, conf & 1 ? "&password=" PASSWORD : "",
                       (conf & 3) == 3 ? "&user=fuzzer" : "", conf & 4 ? "&db=3" : "");
    err = ss_redis_parse(&cfg, uri, p);
    FUZZ_CHECK(err == NULL, "%s: %s", uri, err);
    if (conf & 8) {
        setenv(SS_REDIS_LOAD_ENV, "script", 1);
    } else {
        unsetenv(SS_REDIS_LOAD_ENV);
    }
    FUZZ_CHECK(ss_redis_open(&store, cfg, p) == APR_SUCCESS, "ss_redis_open");
    FUZZ_CHECK(ss_id_key(FUZZ_SESSION_ID, &key) == APR_SUCCESS, "ss_id_key");
    n = 1 + (conf >> 6);
    for (i = 0; i < n; i++) {
        switch ((ops >> (2 * i)) & 3) {
        case 0:
            op_load(store, &key, p);
            break;
        case 1:
            op_save(store, &key, conf & 32 ? SS_SAVE_UPDATE : SS_SAVE_NEW, p);
            break;
        case 2:
            rv = store->ops->remove(store, &key);
            fuzz_trace("remove: %d", rv);
            FUZZ_CHECK(rv != APR_NOTFOUND && rv != SS_EEXPIRED, "remove: %d", rv);
            break;
        default:
            rv = store->ops->ping(store);
            fuzz_trace("ping: %d", rv);
            break;
        }
    }
    FUZZ_CHECK(store->ops->stats(store, &stats) == APR_SUCCESS, "stats");
    fuzz_trace("connects %lu, retries %lu, errors %lu, fast fails %lu, hits %lu, misses %lu, "
               "touches %lu, malformed %lu, newer %lu",
               (unsigned long)stats.connects, (unsigned long)stats.retries,
               (unsigned long)stats.errors, (unsigned long)stats.fast_fails,
               (unsigned long)stats.hits, (unsigned long)stats.misses, (unsigned long)stats.touches,
               (unsigned long)stats.malformed, (unsigned long)stats.newer_format);
    apr_pool_destroy(p); /* closes the store and its connections */
    quiesce();
    return 0;
}
