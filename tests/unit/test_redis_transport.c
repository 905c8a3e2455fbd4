/* test_redis_transport.c - the Redis transport: one deadline per operation
 * against fake servers on loopback that never answer, trickle a byte every
 * 100 ms, or stall in the middle of a TLS handshake, and a host name that
 * does not resolve; then TLS against real redis-server processes started
 * with --tls-port, with certificates made here by the openssl command.
 *
 * A missing redis-server or openssl fails the run: nothing is skipped.
 * TEST_REDIS_VERBOSE=1 prints the log. The margin every deadline is allowed
 * (scheduling on a busy machine) is MARGIN; the measured figures are
 * printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <hiredis.h>

#include "ss_log.h"
#include "ss_redis.h"
#include "ss_redis_transport.h"
#include "unit.h"
#include "unit_redis.h"

#define MS apr_time_from_msec(1)
#define SEC apr_time_from_sec(1)
/* How late past its deadline an operation may end. */
#define MARGIN (100 * MS)
#define OPENSSL_BIN "/usr/bin/openssl"

static struct {
    const char *binary;
    char dir[64];       /* certificates */
    server_t tls, mtls; /* --tls-auth-clients no / yes */
    apr_pool_t *root, *pool;
    unit_tlog_t log;
} g;

/* ---- fake servers ---- */

typedef enum {
    SILENT,       /* accepts, reads, never answers */
    TRICKLE,      /* answers every command with "+" and then a byte every 100 ms */
    PONG_TRICKLE, /* the first command gets +PONG, later ones trickle */
    ANSWER        /* the first command on each connection gets f->answer, then silence */
} fake_mode_e;

#define FAKE_CLIENTS 8
typedef struct {
    fake_mode_e mode;
    int lfd, port;
    volatile int stop;
    int first_byte; /* of the first client's first read; -1: none yet */
    int accepts;
    const char *answer; /* ANSWER */
    apr_size_t answer_len;
    pthread_t thread;
} fake_t;

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    struct pollfd pfd[FAKE_CLIENTS + 1];
    int trickling[FAKE_CLIENTS + 1], commands[FAKE_CLIENTS + 1];
    apr_time_t last = 0;
    int n = 0, i;

    pfd[0].fd = f->lfd;
    pfd[0].events = POLLIN;
    while (!f->stop) {
        char buf[4096];

        if (poll(pfd, n + 1, 10) < 0) {
            continue;
        }
        for (i = 1; i <= n; i++) {
            ssize_t got;

            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            got = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (got <= 0) {
                pfd[i].events = 0; /* closed: keep the slot, stop polling it */
                continue;
            }
            if (f->first_byte < 0) {
                f->first_byte = (unsigned char)buf[0];
            }
            if (f->mode == SILENT) {
                continue;
            }
            if (f->mode == ANSWER) {
                if (commands[i]++ == 0) {
                    send(pfd[i].fd, f->answer, f->answer_len, MSG_NOSIGNAL);
                }
                continue;
            }
            /* Good enough for one command per read. */
            if (f->mode == PONG_TRICKLE && commands[i]++ == 0) {
                send(pfd[i].fd, "+PONG\r\n", 7, MSG_NOSIGNAL);
                continue;
            }
            if (!trickling[i]) {
                trickling[i] = 1;
                send(pfd[i].fd, "+", 1, MSG_NOSIGNAL);
            }
        }
        if (apr_time_now() - last >= 100 * MS) {
            last = apr_time_now();
            for (i = 1; i <= n; i++) {
                if (trickling[i] && pfd[i].events) {
                    send(pfd[i].fd, "x", 1, MSG_NOSIGNAL);
                }
            }
        }
        if ((pfd[0].revents & POLLIN) && n < FAKE_CLIENTS) {
            int fd = accept(f->lfd, NULL, NULL);

            if (fd >= 0) {
                n++;
                pfd[n].fd = fd;
                pfd[n].events = POLLIN;
                trickling[n] = commands[n] = 0;
                f->accepts++;
            }
        }
    }
    for (i = 1; i <= n; i++) {
        close(pfd[i].fd);
    }
    return NULL;
}

/* Listen on loopback and serve f (mode and answer set) in a thread. */
static void fake_run(fake_t *f)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    memset(&a, 0, sizeof(a));
    f->first_byte = -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_start(fake_t *f, fake_mode_e mode)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    fake_run(f);
}

/* ANSWER: the first command on each connection gets answer[len]. */
static void fake_start_answer(fake_t *f, const char *answer, apr_size_t len)
{
    memset(f, 0, sizeof(*f));
    f->mode = ANSWER;
    f->answer = answer;
    f->answer_len = len;
    fake_run(f);
}

static void fake_stop(fake_t *f)
{
    f->stop = 1;
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

/* ---- stores ---- */

static ss_store_t *open_uri(const char *uri)
{
    ss_redis_config_t *cfg = NULL;
    ss_store_t *store = NULL;
    const char *err = ss_redis_parse(&cfg, uri, g.pool);

    if (err) {
        fail_msg("%s: %s", uri, err);
    }
    assert_int_equal(ss_redis_open(&store, cfg, g.pool), APR_SUCCESS);
    return store;
}

static ss_key_t test_key(int n)
{
    ss_key_t key;
    int i;

    for (i = 0; i < SS_KEY_BYTES; i++) {
        key.bytes[i] = (unsigned char)(n * 13 + i);
        key.seal[i] = (unsigned char)(n * 7 + i);
    }
    key.sealable = 1;
    return key;
}

/* One load: its status in *rv; how long it took. */
static apr_time_t timed_load(ss_store_t *store, apr_status_t *rv)
{
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(1);
    ss_record_t out;
    apr_time_t t0 = apr_time_now();

    *rv = store->ops->load(store, &key, &e, &e, t0, g.pool, &out);
    return apr_time_now() - t0;
}

/* The load failed with APR_TIMEUP between want and want + MARGIN. */
static void assert_deadline(const char *what, apr_time_t elapsed, apr_status_t rv, apr_time_t want)
{
    print_message("%s: failed after %" APR_TIME_T_FMT " us (deadline %" APR_TIME_T_FMT
                  " ms, %" APR_TIME_T_FMT " us late)\n",
                  what, elapsed, apr_time_as_msec(want), elapsed - want);
    assert_int_equal(rv, APR_TIMEUP);
    if (elapsed < want - 2 * MS || elapsed > want + MARGIN) {
        fail_msg("%s: %" APR_TIME_T_FMT " us, expected %" APR_TIME_T_FMT
                 " ms + at most %" APR_TIME_T_FMT " ms",
                 what, elapsed, apr_time_as_msec(want), apr_time_as_msec(MARGIN));
    }
}

/* ---- deadlines ---- */

/* A server that accepts and never answers: the operation that opens the
 * connection ends at connect_timeout + command_timeout. */
static void test_silent_server(void **state)
{
    fake_t f;
    ss_store_t *store;
    apr_status_t rv;
    apr_time_t t;

    (void)state;
    fake_start(&f, SILENT);
    store = open_uri(apr_psprintf(
        g.pool, "redis://127.0.0.1:%d?connect_timeout=100&command_timeout=200&breaker=0", f.port));
    t = timed_load(store, &rv);
    assert_deadline("silent server, new connection", t, rv, 300 * MS);
    assert_non_null(strstr(g.log.last, "timed out"));
    fake_stop(&f);
}

/* A byte every 100 ms, forever: per-read timeouts would wait forever; the
 * deadline ends it. */
static void test_trickling_server(void **state)
{
    fake_t f;
    ss_store_t *store;
    apr_status_t rv;
    apr_time_t t;

    (void)state;
    fake_start(&f, TRICKLE);
    store = open_uri(apr_psprintf(
        g.pool, "redis://127.0.0.1:%d?connect_timeout=100&command_timeout=250&breaker=0", f.port));
    t = timed_load(store, &rv);
    assert_deadline("trickling server, new connection", t, rv, 350 * MS);
    fake_stop(&f);
}

/* On a pooled connection the deadline is command_timeout alone. */
static void test_trickling_server_pooled(void **state)
{
    fake_t f;
    ss_store_t *store;
    apr_status_t rv;
    apr_time_t t;

    (void)state;
    fake_start(&f, PONG_TRICKLE);
    store = open_uri(apr_psprintf(
        g.pool, "redis://127.0.0.1:%d?connect_timeout=100&command_timeout=250&breaker=0", f.port));
    assert_int_equal(store->ops->ping(store), APR_SUCCESS);
    t = timed_load(store, &rv);
    assert_deadline("trickling server, pooled connection", t, rv, 250 * MS);
    assert_int_equal(f.accepts, 1);
    fake_stop(&f);
}

/* An array header announcing 10^8 elements (hiredis would allocate 800 MB
 * for their pointers at once, then wait for them until the deadline) is
 * refused as soon as it is read; an array of SS_REDIS_MAX_ELEMENTS is read
 * whole (and then found to be no answer to GET). Found by
 * tests/fuzz/fuzz_redis_reply ("*2147483647": a 16 GB allocation). */
static void test_array_too_large(void **state)
{
    fake_t f;
    ss_store_t *store;
    apr_status_t rv;
    apr_time_t t;
    char *big;
    int i, n;

    (void)state;
    fake_start_answer(&f, "*100000000\r\n", 13);
    store = open_uri(apr_psprintf(
        g.pool, "redis://127.0.0.1:%d?connect_timeout=1000&command_timeout=2000&breaker=0",
        f.port));
    t = timed_load(store, &rv);
    print_message("an array of 10^8 elements: %d after %" APR_TIME_T_FMT " us: %s\n", rv, t,
                  g.log.last);
    assert_int_equal(rv, APR_EGENERAL);
    assert_true(t < 1000 * MS);
    assert_non_null(strstr(g.log.last, "an array of 100000000 elements (at most 65536)"));
    fake_stop(&f);

    big = apr_palloc(g.pool, 16 + SS_REDIS_MAX_ELEMENTS * 4);
    n = sprintf(big, "*%d\r\n", SS_REDIS_MAX_ELEMENTS);
    for (i = 0; i < SS_REDIS_MAX_ELEMENTS; i++) {
        memcpy(big + n, ":1\r\n", 4);
        n += 4;
    }
    fake_start_answer(&f, big, (apr_size_t)n);
    store = open_uri(apr_psprintf(
        g.pool, "redis://127.0.0.1:%d?connect_timeout=1000&command_timeout=2000&breaker=0",
        f.port));
    unit_tlog_reset(&g.log);
    timed_load(store, &rv);
    assert_int_equal(rv, APR_EGENERAL);
    assert_non_null(strstr(g.log.last, "unexpected reply type 2 to GET"));
    fake_stop(&f);
}

/* An error reply is quoted in the log, but its line breaks and escape
 * sequences cannot forge or garble lines there (found by
 * tests/fuzz/fuzz_redis_reply). */
static void test_error_reply_control_characters(void **state)
{
    static const char reply[] =
        "-ERR bad\n[Wed Dec 02 10:00:00 2026] [auth:notice] forged\x1b[2J\r\n";
    fake_t f;
    ss_store_t *store;
    apr_status_t rv;

    (void)state;
    fake_start_answer(&f, reply, sizeof(reply) - 1);
    store = open_uri(apr_psprintf(g.pool, "redis://127.0.0.1:%d?breaker=0", f.port));
    timed_load(store, &rv);
    print_message("error reply with a line break: %s\n", g.log.last);
    assert_int_equal(rv, APR_EGENERAL);
    assert_non_null(strstr(g.log.last, "GET refused: ERR bad?[Wed Dec 02 10:00:00 2026] "
                                       "[auth:notice] forged?[2J"));
    assert_null(strpbrk(g.log.last, "\r\n\x1b"));
    fake_stop(&f);
}

/* Accepts TCP, reads the ClientHello, never answers: the handshake is part
 * of opening, bounded by connect_timeout. */
static void test_stalled_tls_handshake(void **state)
{
    fake_t f;
    ss_store_t *store;
    apr_status_t rv;
    apr_time_t t;

    (void)state;
    fake_start(&f, SILENT);
    store = open_uri(apr_psprintf(g.pool,
                                  "rediss://127.0.0.1:%d?connect_timeout=150&command_timeout=200"
                                  "&breaker=0&tls_ca_file=%s/ca.pem",
                                  f.port, g.dir));
    t = timed_load(store, &rv);
    assert_deadline("TLS handshake stalled after the ClientHello", t, rv, 150 * MS);
    assert_int_equal(f.first_byte, 0x16); /* a TLS handshake record: the ClientHello */
    assert_non_null(strstr(g.log.last, "TLS handshake: timed out"));
    fake_stop(&f);
}

/* A name that does not resolve: open and every operation end within
 * connect_timeout, and say why. */
static void test_unresolvable_host(void **state)
{
    ss_store_t *store;
    apr_status_t rv;
    apr_time_t t0 = apr_time_now(), t;
    int i;

    (void)state;
    store = open_uri("redis://nonexistent.invalid:6379?connect_timeout=200&command_timeout=100"
                     "&breaker=0");
    t = apr_time_now() - t0;
    print_message("unresolvable host: store opened in %" APR_TIME_T_FMT " us (connect_timeout "
                  "200 ms)\n",
                  t);
    assert_true(t < 200 * MS + MARGIN);
    for (i = 0; i < 3; i++) {
        t = timed_load(store, &rv);
        print_message("unresolvable host: load %d failed after %" APR_TIME_T_FMT " us (%d)\n", i, t,
                      rv);
        assert_true(rv != APR_SUCCESS && rv != APR_NOTFOUND);
        assert_true(t < 200 * MS + MARGIN);
    }
    assert_non_null(strstr(g.log.last, "resolve nonexistent.invalid"));
}

/* ---- TLS against redis-server ---- */

static int tls_ping(const char *uri, int tries)
{
    ss_store_t *store = open_uri(uri);
    int i;

    for (i = 0; i < tries; i++) {
        if (store->ops->ping(store) == APR_SUCCESS) {
            store->ops->close(store);
            return 0;
        }
        usleep(50000);
    }
    store->ops->close(store);
    return -1;
}

static int tls_server_start(server_t *srv, const char *auth_clients)
{
    char port[16], cert[128], key[128], ca[128];
    const char *argv[32];
    int n = 0;

    srv->port = free_port();
    strcpy(srv->dir, "/tmp/test_redis_tls.XXXXXX");
    if (!mkdtemp(srv->dir)) {
        return -1;
    }
    snprintf(srv->sock, sizeof(srv->sock), "%s/redis.sock", srv->dir);
    snprintf(port, sizeof(port), "%d", srv->port);
    snprintf(cert, sizeof(cert), "%s/server.pem", g.dir);
    snprintf(key, sizeof(key), "%s/server.key", g.dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", g.dir);
    argv[n++] = g.binary;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--tls-port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = srv->dir;
    argv[n++] = "--tls-cert-file";
    argv[n++] = cert;
    argv[n++] = "--tls-key-file";
    argv[n++] = key;
    argv[n++] = "--tls-ca-cert-file";
    argv[n++] = ca;
    argv[n++] = "--tls-auth-clients";
    argv[n++] = auth_clients;
    argv[n] = NULL;
    srv->pid = fork();
    if (srv->pid == 0) {
        int fd = open("/dev/null", O_WRONLY);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(g.binary, (char *const *)argv);
        _exit(127);
    }
    if (srv->pid < 0) {
        return -1;
    }
    /* With client certificates required, a ping needs one. */
    if (tls_ping(apr_psprintf(g.pool,
                              "rediss://127.0.0.1:%d?tls_ca_file=%s/ca.pem&tls_cert_file=%s/"
                              "client.pem&tls_key_file=%s/client.key",
                              srv->port, g.dir, g.dir, g.dir),
                 100)) {
        fprintf(stderr, "redis-server %s with TLS did not start on port %d\n", g.binary, srv->port);
        return -1;
    }
    return 0;
}

static int make_certs(void)
{
    char cmd[4096];
    int rc;

    if (access(OPENSSL_BIN, X_OK)) {
        fprintf(stderr,
                "FAIL: %s not found: install the Debian package openssl; TLS cannot "
                "be tested\n",
                OPENSSL_BIN);
        return -1;
    }
    strcpy(g.dir, "/tmp/test_tls_certs.XXXXXX");
    if (!mkdtemp(g.dir)) {
        return -1;
    }
    snprintf(cmd, sizeof(cmd),
             "set -e; cd %s; O=%s; K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';"
             "$O req -x509 $K -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca;"
             "$O req -x509 $K -keyout ca2.key -out ca2.pem -days 2 -subj /CN=other-ca;"
             "$O req $K -keyout server.key -out server.csr -subj /CN=localhost;"
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >san.ext;"
             "$O x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile san.ext;"
             "$O req $K -keyout client.key -out client.csr -subj /CN=client;"
             "$O x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out client.pem -days 2",
             g.dir, OPENSSL_BIN);
    rc = system(apr_psprintf(g.pool, "(%s) >%s/openssl.log 2>&1", cmd, g.dir));
    if (rc) {
        fprintf(stderr, "FAIL: making test certificates failed; see %s/openssl.log\n", g.dir);
        return -1;
    }
    return 0;
}

static const char *tls_uri(const server_t *srv, const char *host, const char *params)
{
    return apr_psprintf(g.pool, "rediss://%s:%d?tls_ca_file=%s/ca.pem&breaker=0%s", host, srv->port,
                        g.dir, params);
}

static void save_and_load(ss_store_t *store, int n)
{
    ss_key_t key = test_key(n);
    apr_time_t now = apr_time_now();
    ss_expiry_t e = {60 * SEC, 0};
    ss_record_t rec = {now, now, "alice", "x=y", 3, 0}, out;

    assert_int_equal(
        store->ops->save(store, &key, &rec, now + e.idle, SS_SAVE_NEW, 1 << 20, g.pool),
        APR_SUCCESS);
    assert_int_equal(store->ops->load(store, &key, &e, &e, now, g.pool, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "x=y");
    assert_int_equal(store->ops->remove(store, &key), APR_SUCCESS);
}

static void test_tls_round_trip(void **state)
{
    (void)state;
    /* An IP address, verified against the certificate's IP SAN. */
    save_and_load(open_uri(tls_uri(&g.tls, "127.0.0.1", "")), 10);
    /* A name, resolved and verified against its DNS SAN. */
    save_and_load(open_uri(tls_uri(&g.tls, "localhost", "&db=3&prefix=t:")), 11);
    /* SNI and verification by tls_server_name, connecting to the address. */
    save_and_load(open_uri(tls_uri(&g.tls, "127.0.0.1", "&tls_server_name=localhost")), 12);
    save_and_load(open_uri(tls_uri(&g.tls, "127.0.0.1", "&tls_protocols=TLSv1.3")), 13);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 0);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_WARNING), 0);
}

static void test_tls_refused(void **state)
{
    static const struct {
        const char *host, *params, *reason;
    } cases[] = {
        {"127.0.0.1", "&tls_server_name=other.example", "hostname mismatch"},
        {"localhost", "&tls_server_name=10.9.9.9", "IP address mismatch"},
    };
    ss_store_t *store;
    apr_status_t rv;
    size_t i;

    (void)state;
    for (i = 0; i < UNIT_COUNT(cases); i++) {
        store = open_uri(tls_uri(&g.tls, cases[i].host, cases[i].params));
        timed_load(store, &rv);
        assert_true(rv != APR_SUCCESS && rv != APR_NOTFOUND);
        if (!strstr(g.log.last, cases[i].reason)) {
            fail_msg("%s: expected \"%s\" in the log, got %s", cases[i].params, cases[i].reason,
                     g.log.last);
        }
    }
    /* Another CA. */
    store = open_uri(
        apr_psprintf(g.pool, "rediss://127.0.0.1:%d?tls_ca_file=%s/ca2.pem", g.tls.port, g.dir));
    timed_load(store, &rv);
    assert_true(rv != APR_SUCCESS && rv != APR_NOTFOUND);
    assert_non_null(strstr(g.log.last, "certificate verification failed"));
    /* tls_verify=ca checks the chain, not the name. */
    save_and_load(open_uri(tls_uri(&g.tls, "127.0.0.1", "&tls_verify=ca&tls_server_name=x.y")), 14);
    /* tls_verify=none checks nothing, and says so when the store opens. */
    g.log.count[SS_LOG_WARNING] = 0;
    save_and_load(open_uri(apr_psprintf(
                      g.pool, "rediss://127.0.0.1:%d?tls_verify=none&tls_ca_file=%s/ca2.pem",
                      g.tls.port, g.dir)),
                  15);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_WARNING), 1);
    assert_true(unit_tlog_has(&g.log, "tls_verify=none"));
}

static void test_mutual_tls(void **state)
{
    ss_store_t *store;
    apr_status_t rv;

    (void)state;
    save_and_load(open_uri(apr_psprintf(g.pool,
                                        "rediss://127.0.0.1:%d?tls_ca_file=%s/ca.pem&tls_cert_file="
                                        "%s/client.pem&tls_key_file=%s/client.key",
                                        g.mtls.port, g.dir, g.dir, g.dir)),
                  16);
    /* Without a client certificate the server refuses (in TLS 1.3 after the
     * client's side of the handshake, at the first read). */
    store = open_uri(tls_uri(&g.mtls, "127.0.0.1", ""));
    timed_load(store, &rv);
    assert_true(rv != APR_SUCCESS && rv != APR_NOTFOUND);
    print_message("no client certificate: %s\n", g.log.last);
    assert_true(unit_tlog_has(&g.log, "certificate required") ||
                unit_tlog_has(&g.log, "require a client certificate"));
}

/* A reconnection resumes the store's last TLS session. */
static void test_session_resumption(void **state)
{
    ss_redis_config_t *cfg = NULL;
    ss_redis_endpoint_t *ep;
    ss_redis_transport_t *t;
    const char *ping[] = {"PING"};
    size_t len[] = {4};
    ss_redis_argv_t cmd = {1, ping, len};
    redisReply *reply;
    char err[SS_REDIS_ERR_LEN];
    int i;

    (void)state;
    assert_null(ss_redis_parse(&cfg, tls_uri(&g.tls, "127.0.0.1", ""), g.pool));
    assert_int_equal(ss_redis_endpoint_create(&ep, cfg, g.pool, err, sizeof(err)), APR_SUCCESS);
    for (i = 0; i < 3; i++) {
        apr_status_t rv = ss_redis_transport_open(&t, ep, ss_redis_clock() + SEC, err, sizeof(err));

        if (rv != APR_SUCCESS) {
            fail_msg("open: %s", err);
        }
        /* The first connection is a full handshake, the next ones resume. */
        assert_int_equal(ss_redis_transport_resumed(t), i > 0);
        assert_int_equal(
            ss_redis_transport_call(t, 1, &cmd, &reply, ss_redis_clock() + SEC, err, sizeof(err)),
            APR_SUCCESS);
        assert_int_equal(reply->type, REDIS_REPLY_STATUS);
        freeReplyObject(reply);
        ss_redis_transport_close(t);
    }
}

/* Redis on a TLS port, spoken to in plain TCP, and the reverse. */
static void test_wrong_protocol(void **state)
{
    ss_store_t *store;
    apr_status_t rv;
    apr_time_t t;
    server_t plain;

    (void)state;
    store = open_uri(apr_psprintf(g.pool, "redis://127.0.0.1:%d?breaker=0", g.tls.port));
    t = timed_load(store, &rv);
    print_message("plain TCP to a TLS port: %d after %" APR_TIME_T_FMT " us: %s\n", rv, t,
                  g.log.last);
    assert_true(rv != APR_SUCCESS && rv != APR_NOTFOUND);
    assert_true(t < 600 * MS + MARGIN);

    memset(&plain, 0, sizeof(plain));
    assert_int_equal(server_start(&plain, g.binary, NULL), 0);
    store = open_uri(apr_psprintf(g.pool,
                                  "rediss://127.0.0.1:%d?breaker=0&connect_timeout=200&tls_ca_"
                                  "file=%s/ca.pem",
                                  plain.port, g.dir));
    t = timed_load(store, &rv);
    print_message("TLS to a plain TCP port: %d after %" APR_TIME_T_FMT " us: %s\n", rv, t,
                  g.log.last);
    assert_true(rv != APR_SUCCESS && rv != APR_NOTFOUND);
    assert_true(t < 200 * MS + MARGIN);
    assert_non_null(strstr(g.log.last, "TLS handshake"));
    server_destroy(&plain);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    if (apr_pool_create(&g.root, NULL) != APR_SUCCESS ||
        apr_thread_mutex_create(&g.log.mutex, APR_THREAD_MUTEX_DEFAULT, g.root) != APR_SUCCESS) {
        return -1;
    }
    g.pool = g.root;
    ss_log_set(unit_tlog_capture, &g.log);
    g.binary = unit_redis_binary();
    if (!g.binary || make_certs()) {
        return -1;
    }
    if (tls_server_start(&g.tls, "no") || tls_server_start(&g.mtls, "yes")) {
        return -1;
    }
    g.pool = NULL;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    server_destroy(&g.tls);
    server_destroy(&g.mtls);
    if (g.dir[0]) {
        if (system(apr_psprintf(g.root, "rm -rf %s", g.dir))) {
            fprintf(stderr, "could not remove %s\n", g.dir);
        }
    }
    apr_pool_destroy(g.root);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    apr_pool_create(&g.pool, NULL);
    unit_tlog_reset(&g.log);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    apr_pool_destroy(g.pool);
    g.pool = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_silent_server),
        UNIT_TEST(test_trickling_server),
        UNIT_TEST(test_trickling_server_pooled),
        UNIT_TEST(test_array_too_large),
        UNIT_TEST(test_error_reply_control_characters),
        UNIT_TEST(test_stalled_tls_handshake),
        UNIT_TEST(test_unresolvable_host),
        UNIT_TEST(test_tls_round_trip),
        UNIT_TEST(test_tls_refused),
        UNIT_TEST(test_mutual_tls),
        UNIT_TEST(test_session_resumption),
        UNIT_TEST(test_wrong_protocol),
    };

    signal(SIGPIPE, SIG_IGN);
    return unit_run("tests", tests, UNIT_COUNT(tests), group_setup, group_teardown);
}
