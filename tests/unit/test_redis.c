/* test_redis.c - the Redis backend against real redis-server processes (the
 * URI: test_redis_uri.c).
 *
 * Each server is started here on a free loopback port (and a Unix socket in a
 * temporary directory), without persistence, and killed at the end. A missing
 * redis-server fails the run: this backend must not go untested silently.
 * REDIS_SERVER overrides the binary; TEST_REDIS_VERBOSE=1 prints the log.
 *
 * The tests run with the lean load (a GET, the script only to write), and
 * the storage tests run once more with every load by the script
 * (SESSSTORE_REDIS_LOAD=script, ss_redis.h), the fallback: both must behave
 * alike, and test_load_commands shows which commands and round trips each
 * makes. */
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
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <hiredis.h>

#include "ss_log.h"
#include "ss_redis.h"
#include "ss_redis_index.h"
#include "ss_session.h"
#include "unit.h"
#include "unit_redis.h"

#define SEC apr_time_from_sec(1)
#define MS apr_time_from_msec(1)
#define THREADS 8
#define THREAD_ROUNDS 200

static struct {
    const char *binary;
    server_t main;
    server_t own;     /* a test's private server, killed by the teardown */
    apr_pool_t *root; /* the group's: the log mutex */
    apr_pool_t *pool; /* the test's */
    unit_tlog_t log;
    int script; /* this group loads by the script only */
} g;

static long long admin_integer(const server_t *srv, const char *fmt, ...)
{
    redisContext *c = admin_connect(srv);
    redisReply *r;
    long long v = -1;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    }
    freeReplyObject(r);
    redisFree(c);
    return v;
}

static void admin_ok(const server_t *srv, const char *fmt, ...)
{
    redisContext *c = admin_connect(srv);
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) {
        fail_msg("admin command failed: %s", r->str);
    }
    freeReplyObject(r);
    redisFree(c);
}

/* Bytes of a string value in [from, to], or NULL. */
static char *admin_range(const server_t *srv, const char *key, int from, int to, size_t *len)
{
    redisContext *c = admin_connect(srv);
    redisReply *r = redisCommand(c, "GETRANGE %s %d %d", key, from, to);
    char *out = NULL;

    if (r && r->type == REDIS_REPLY_STRING) {
        out = apr_pmemdup(g.pool, r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    redisFree(c);
    return out;
}

/* "calls=" of one command in INFO commandstats; 0 when never called. */
static long long calls_of(const server_t *srv, const char *command)
{
    redisContext *c = admin_connect(srv);
    redisReply *r = redisCommand(c, "INFO commandstats");
    char needle[64];
    const char *at;
    long long v = 0;

    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", command);
    if (r && r->type == REDIS_REPLY_STRING && (at = strstr(r->str, needle))) {
        v = atoll(at + strlen(needle));
    }
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* Counters of srv read on one admin connection kept open, so that reading
 * them costs exactly one socket read (the INFO itself) and no connect or
 * close: total_reads_processed is one per round trip of a client. */
typedef struct {
    redisContext *c;
    long long reads, get, evalsha, eval;
} counters_t;

static long long info_field(const char *info, const char *field)
{
    const char *at = strstr(info, field);

    return at ? atoll(at + strlen(field)) : 0;
}

static void counters_read(counters_t *k)
{
    redisReply *r = redisCommand(k->c, "INFO all");

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    k->reads = info_field(r->str, "total_reads_processed:");
    k->get = info_field(r->str, "cmdstat_get:calls=");
    k->evalsha = info_field(r->str, "cmdstat_evalsha:calls=");
    k->eval = info_field(r->str, "cmdstat_eval:calls=");
    freeReplyObject(r);
}

/* EXISTS key on the counters' connection (read again after it). */
static long long exists_on(counters_t *k, const char *key)
{
    redisReply *r = redisCommand(k->c, "EXISTS %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

    freeReplyObject(r);
    counters_read(k);
    return n;
}

/* What one operation cost since *k was read: round trips (socket reads of
 * the store's connection, less the INFO that reads them), GETs, EVALSHAs
 * and EVALs. *k is read again. */
#define counters_expect(k, rtt, get, evalsha, eval)                                                \
    counters_expect_at(__LINE__, k, rtt, get, evalsha, eval)
static void counters_expect_at(int line, counters_t *k, long long rtt, long long get,
                               long long evalsha, long long eval)
{
    counters_t before = *k;

    counters_read(k);
    if (k->reads - before.reads - 1 != rtt || k->get - before.get != get ||
        k->evalsha - before.evalsha != evalsha || k->eval - before.eval != eval) {
        fail_msg(
            "line %d, %s load: %lld round trips, %lld GET, %lld EVALSHA, %lld EVAL; expected %lld, "
            "%lld, %lld, %lld",
            line, g.script ? "script" : "lean", k->reads - before.reads - 1, k->get - before.get,
            k->evalsha - before.evalsha, k->eval - before.eval, rtt, get, evalsha, eval);
    }
}

/* Clients connected to srv, other than the one asking; waits up to 1 s for
 * the count to reach want (a client's close reaches the server a little
 * later), and returns the last count seen. */
static long long clients_of(const server_t *srv, long long want)
{
    long long n = -1;
    int i;

    for (i = 0; i < 100; i++) {
        redisContext *c = admin_connect(srv);
        redisReply *r = redisCommand(c, "INFO clients");
        const char *at;

        if (r && r->type == REDIS_REPLY_STRING && (at = strstr(r->str, "connected_clients:"))) {
            n = atoll(at + strlen("connected_clients:")) - 1;
        }
        freeReplyObject(r);
        redisFree(c);
        if (n == want) {
            break;
        }
        usleep(10000);
    }
    return n;
}

/* ---- a fake Redis ---- */

/* A loopback listener that answers every command (whatever it is) with one
 * canned reply, and counts the connections it accepted and saw closed. */
#define FAKE_CLIENTS 8
typedef struct {
    int lfd, port;
    const char *volatile reply; /* a test may change it while the fake runs */
    volatile apr_uint32_t stop, accepts, closes;
    apr_thread_t *thread;
} fake_t;

/* The length of the first complete RESP command in buf, or 0. */
static size_t resp_command_len(const char *buf, size_t n)
{
    const char *p = buf, *end = buf + n, *nl;
    long args;

    if (n < 4 || *p != '*' || !(nl = memchr(p, '\n', n))) {
        return 0;
    }
    args = atol(p + 1);
    p = nl + 1;
    while (args-- > 0) {
        if (p >= end || *p != '$' || !(nl = memchr(p, '\n', end - p))) {
            return 0;
        }
        long len = atol(p + 1);

        p = nl + 1;
        if (end - p < len + 2) {
            return 0;
        }
        p += len + 2;
    }
    return p - buf;
}

static void *APR_THREAD_FUNC fake_main(apr_thread_t *t, void *arg)
{
    fake_t *f = arg;
    struct pollfd pfd[FAKE_CLIENTS + 1];
    char buf[FAKE_CLIENTS][8192];
    size_t fill[FAKE_CLIENTS] = {0}, len;
    int n = 0, i;
    ssize_t got;

    (void)t;
    pfd[0].fd = f->lfd;
    pfd[0].events = POLLIN;
    while (!apr_atomic_read32(&f->stop)) {
        if (poll(pfd, n + 1, 20) <= 0) {
            continue;
        }
        for (i = 0; i < n; i++) {
            if (!pfd[i + 1].revents) {
                continue;
            }
            got = recv(pfd[i + 1].fd, buf[i] + fill[i], sizeof(buf[i]) - fill[i], 0);
            if (got <= 0) {
                close(pfd[i + 1].fd);
                apr_atomic_inc32(&f->closes);
                pfd[i + 1] = pfd[n];
                memcpy(buf[i], buf[n - 1], fill[n - 1]);
                fill[i] = fill[n - 1];
                n--;
                i--;
                continue;
            }
            fill[i] += (size_t)got;
            while ((len = resp_command_len(buf[i], fill[i]))) {
                memmove(buf[i], buf[i] + len, fill[i] - len);
                fill[i] -= len;
                if (send(pfd[i + 1].fd, f->reply, strlen(f->reply), MSG_NOSIGNAL) < 0) {
                    break;
                }
            }
        }
        if ((pfd[0].revents & POLLIN) && n < FAKE_CLIENTS) {
            pfd[n + 1].fd = accept(f->lfd, NULL, NULL);
            pfd[n + 1].events = POLLIN;
            if (pfd[n + 1].fd >= 0) {
                fill[n++] = 0;
                apr_atomic_inc32(&f->accepts);
            }
        }
    }
    for (i = 0; i < n; i++) {
        close(pfd[i + 1].fd);
    }
    return NULL;
}

static void fake_start(fake_t *f, const char *reply)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    memset(f, 0, sizeof(*f));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->reply = reply;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(apr_thread_create(&f->thread, NULL, fake_main, f, g.pool), APR_SUCCESS);
}

static void fake_stop(fake_t *f)
{
    apr_status_t trv;

    apr_atomic_set32(&f->stop, 1);
    apr_thread_join(&trv, f->thread);
    close(f->lfd);
}

/* Waits up to 1 s for the fake to have seen want connections closed. */
static apr_uint32_t fake_closes(fake_t *f, apr_uint32_t want)
{
    int i;

    for (i = 0; i < 100 && apr_atomic_read32(&f->closes) != want; i++) {
        usleep(10000);
    }
    return apr_atomic_read32(&f->closes);
}

/* What a fake sentinel answers SENTINEL get-master-addr-by-name with (and
 * anything else it is sent): the master at 127.0.0.1:port. */
static const char *sentinel_answer(int port)
{
    const char *p = apr_itoa(g.pool, port);

    return apr_psprintf(g.pool, "*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n", (int)strlen(p), p);
}

/* ---- store helpers ---- */

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

static ss_store_t *open_server(const server_t *srv, const char *params)
{
    return open_uri(apr_psprintf(g.pool, "redis://127.0.0.1:%d%s", srv->port, params));
}

/* A key as if derived from an ID: any seal key works for the store. */
static ss_key_t test_key(int n)
{
    ss_key_t key;
    int i;

    for (i = 0; i < SS_KEY_BYTES; i++) {
        key.bytes[i] = (unsigned char)(n * 31 + i * 7);
        key.seal[i] = (unsigned char)(n * 17 + i * 3);
    }
    key.sealable = 1;
    return key;
}

static const char *redis_key(const char *prefix, const ss_key_t *key)
{
    char hex[SS_KEY_HEX_LEN + 1];

    ss_key_hex(key, hex);
    return apr_pstrcat(g.pool, prefix, hex, NULL);
}

static ss_record_t record(const char *payload, apr_time_t created, apr_time_t accessed)
{
    ss_record_t rec = {created, accessed, "alice", payload, strlen(payload), 0};

    return rec;
}

static apr_status_t save(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                         const ss_expiry_t *e, ss_save_mode_e mode)
{
    return store->ops->save(store, key, rec, ss_expiry_deadline(e, rec->created, rec->accessed),
                            mode, UNIT_NO_LIMIT, g.pool);
}

static apr_status_t load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *e,
                         apr_time_t now, ss_record_t *rec)
{
    return store->ops->load(store, key, e, e, now, g.pool, rec);
}

static int is_store_failure(apr_status_t rv)
{
    return rv != APR_SUCCESS && rv != APR_NOTFOUND;
}

/* ---- the per-owner index ---- */

static const char *index_key(const char *prefix, const char *owner)
{
    ss_owner_t o;
    char hex[SS_OWNER_HEX_LEN + 1];

    assert_int_equal(ss_owner_hash(owner, &o), APR_SUCCESS);
    ss_owner_hex(&o, hex);
    return apr_pstrcat(g.pool, prefix, "owner:", hex, NULL);
}

static void index_add(ss_store_t *store, const char *owner, const ss_key_t *key, apr_time_t until,
                      apr_time_t now)
{
    ss_owner_t o;

    assert_int_equal(ss_owner_hash(owner, &o), APR_SUCCESS);
    assert_int_equal(store->ops->index_add(store, &o, key, until, now), APR_SUCCESS);
}

/* The index's key, members, scores and TTL: never shorter than its
 * longest-lived member, none while an open (no-deadline) member is there. */
static void test_index_scores_and_ttl(void **state)
{
    ss_store_t *store = open_server(&g.main, "?prefix=t:ix:");
    apr_time_t now = apr_time_now();
    ss_key_t k1 = test_key(11), k2 = test_key(12), k3 = test_key(13), k4 = test_key(14);
    const char *idx = index_key("t:ix:", "alice");
    char hex[SS_KEY_HEX_LEN + 1];
    long long pttl;

    (void)state;
    /* The name is stored hashed: 32 hex digits, no trace of "alice". */
    assert_int_equal(strlen(idx), strlen("t:ix:owner:") + SS_OWNER_HEX_LEN);
    assert_null(strstr(idx, "alice"));
    index_add(store, "alice", &k1, now + 600 * SEC, now);
    ss_key_hex(&k1, hex);
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", idx), 1);
    assert_int_equal(admin_integer(&g.main, "EVAL %s 1 %s %s",
                                   "return tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))", idx,
                                   hex),
                     apr_time_as_msec(now + 600 * SEC) + 1);
    pttl = admin_integer(&g.main, "PTTL %s", idx);
    assert_true(pttl > 650000 && pttl <= 660000 + 1000); /* 600 s + the 60 s slack */
    index_add(store, "alice", &k2, now + 1200 * SEC, now);
    pttl = admin_integer(&g.main, "PTTL %s", idx);
    assert_true(pttl > 1250000 && pttl <= 1261000);
    /* A shorter-lived member does not shorten the index. */
    index_add(store, "alice", &k3, now + 60 * SEC, now);
    pttl = admin_integer(&g.main, "PTTL %s", idx);
    assert_true(pttl > 1250000 && pttl <= 1261000);
    /* An open member: no TTL at all. */
    index_add(store, "alice", &k4, 0, now);
    assert_int_equal(admin_integer(&g.main, "PTTL %s", idx), -1);
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", idx), 4);
    /* 200 s later, k3 (dead 140 s ago, beyond the slack) is trimmed by the
     * next write; the others stay. */
    index_add(store, "alice", &k3, now + 3600 * SEC, now + 200 * SEC);
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", idx), 4);
    index_add(store, "alice", &k4, 0, now + 1300 * SEC);
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", idx), 2); /* k1 and k2 went: k3, k4 */
    /* Another owner has another index. */
    index_add(store, "bob", &k1, now + 600 * SEC, now);
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", index_key("t:ix:", "bob")), 1);
}

/* Open members are checked by existence when their number reaches 16: those
 * older than the grace period whose session is gone are dropped, a young
 * one (a login between its entry and its SET) never. */
static void test_index_open_members_checked(void **state)
{
    ss_store_t *store = open_server(&g.main, "?prefix=t:open:");
    apr_time_t now = apr_time_now(), old = now - 2 * SS_REDIS_INDEX_GRACE;
    ss_expiry_t idle = {600 * SEC, 0};
    ss_record_t rec = record("a=1", now, now);
    const char *idx = index_key("t:open:", "carol");
    int i;

    (void)state;
    for (i = 0; i < SS_REDIS_INDEX_CHECK_FROM - 2; i++) {
        ss_key_t k = test_key(100 + i);

        index_add(store, "carol", &k, 0, old);
    }
    {
        ss_key_t live = test_key(99);

        index_add(store, "carol", &live, 0, old); /* old, but its session exists */
        assert_int_equal(save(store, &live, &rec, &idle, SS_SAVE_NEW), APR_SUCCESS);
    }
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", idx), SS_REDIS_INDEX_CHECK_FROM - 1);
    {
        ss_key_t young = test_key(98); /* the 16th: no session yet, but young */

        index_add(store, "carol", &young, 0, now);
    }
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", idx), 2);
}

static int count_entry(void *baton, const ss_store_entry_t *e)
{
    (void)e;
    ++*(int *)baton;
    return 0;
}

/* Revoke deletes each session, then its entry; an entry whose session is
 * not there stays for trimming; purge trims what is dead. */
static void test_index_revoke_and_purge(void **state)
{
    ss_store_t *store = open_server(&g.main, "?prefix=t:rv:");
    apr_time_t now = apr_time_now();
    ss_expiry_t e = {600 * SEC, 3600 * SEC};
    ss_record_t rec = record("a=1", now, now);
    ss_key_t k1 = test_key(21), k2 = test_key(22), k3 = test_key(23), ghost = test_key(24);
    const char *idx = index_key("t:rv:", "dave");
    ss_owner_t dave;
    apr_size_t n = 0;
    int seen = 0;

    (void)state;
    assert_int_equal(ss_owner_hash("dave", &dave), APR_SUCCESS);
    index_add(store, "dave", &k1, now + 3600 * SEC, now);
    index_add(store, "dave", &k2, now + 3600 * SEC, now);
    index_add(store, "dave", &k3, now + 3600 * SEC, now);
    index_add(store, "dave", &ghost, now + 3600 * SEC, now);
    assert_int_equal(save(store, &k1, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(save(store, &k2, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(save(store, &k3, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(store->ops->scan(store, &dave, 0, count_entry, &seen, now, g.pool),
                     APR_SUCCESS);
    assert_int_equal(seen, 3); /* the ghost has no session */
    assert_int_equal(store->ops->revoke_owner(store, &dave, &k2, now, &n), APR_SUCCESS);
    assert_int_equal(n, 2);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("t:rv:", &k1)), 0);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("t:rv:", &k2)), 1);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("t:rv:", &k3)), 0);
    assert_int_equal(admin_integer(&g.main, "ZCARD %s", idx), 2); /* k2 and the ghost */
    /* Purge an hour and two minutes on: both entries are past their score. */
    assert_int_equal(store->ops->purge_expired(store, now + 3720 * SEC, &n), APR_SUCCESS);
    assert_int_equal(n, 2);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", idx), 0);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    if (apr_pool_create(&g.root, NULL) != APR_SUCCESS ||
        apr_thread_mutex_create(&g.log.mutex, APR_THREAD_MUTEX_DEFAULT, g.root) != APR_SUCCESS) {
        return -1;
    }
    ss_log_set(unit_tlog_capture, &g.log);
    g.binary = unit_redis_binary();
    if (!g.binary) {
        return -1;
    }
    return server_start(&g.main, g.binary, NULL);
}

static int group_setup_lean(void **state)
{
    g.script = 0;
    unsetenv(SS_REDIS_LOAD_ENV);
    return group_setup(state);
}

static int group_setup_script(void **state)
{
    g.script = 1;
    setenv(SS_REDIS_LOAD_ENV, "script", 1);
    return group_setup(state);
}

static int group_teardown(void **state)
{
    (void)state;
    server_destroy(&g.main);
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
    if (g.own.pid) {
        kill(g.own.pid, SIGCONT);
    }
    server_destroy(&g.own);
    apr_pool_destroy(g.pool);
    g.pool = NULL;
    return 0;
}

/* ---- storing ---- */

static void test_round_trip(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {600 * SEC, 3600 * SEC};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("k=v&x=\xc3\xa9", now - 5 * SEC, now - SEC), out;
    ss_key_t key = test_key(1);
    ss_store_stats_t st;

    (void)state;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, rec.payload);
    assert_int_equal(out.payload_len, rec.payload_len);
    assert_string_equal(out.user, "alice");
    assert_true(out.created == rec.created);
    assert_true(out.accessed == rec.accessed); /* 1 s ago: no touch due yet */

    assert_int_equal(store->ops->remove(store, &key), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(store->ops->remove(store, &key), APR_SUCCESS); /* absent: still fine */
    st = unit_stats(store);
    assert_int_equal(st.saves, 1);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.removes, 1);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.connects, 1);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 0);
}

static void test_keys_and_ttls(void **state)
{
    ss_store_t *store = open_server(&g.main, "?prefix=t:ttl:");
    ss_expiry_t idle_only = {600 * SEC, 0}, abs_only = {0, 90 * SEC}, none = {0, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now, now);
    ss_key_t k1 = test_key(2), k2 = test_key(3), k3 = test_key(4);
    long long pttl;

    (void)state;
    assert_int_equal(save(store, &k1, &rec, &idle_only, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(save(store, &k2, &rec, &abs_only, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(save(store, &k3, &rec, &none, SS_SAVE_NEW), APR_SUCCESS);

    /* The key is the prefix and the hex of ss_key_t, nothing else. */
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("t:ttl:", &k1)), 1);
    assert_int_equal(admin_integer(&g.main, "STRLEN %s", redis_key("t:ttl:", &k1)),
                     ss_record_size(&rec, store->form));

    pttl = admin_integer(&g.main, "PTTL %s", redis_key("t:ttl:", &k1));
    assert_true(pttl > 590000 && pttl <= 600000);
    pttl = admin_integer(&g.main, "PTTL %s", redis_key("t:ttl:", &k2));
    assert_true(pttl > 80000 && pttl <= 90000);
    /* Neither timeout: still a TTL, the documented cap. */
    pttl = admin_integer(&g.main, "PTTL %s", redis_key("t:ttl:", &k3));
    assert_true(pttl > apr_time_as_msec(SS_REDIS_NO_DEADLINE_TTL) - 10000 &&
                pttl <= apr_time_as_msec(SS_REDIS_NO_DEADLINE_TTL));

    /* A record already past its absolute lifetime is not written, its key
     * goes, and the update says it found the session gone. */
    rec.created = now - 100 * SEC;
    assert_int_equal(save(store, &k2, &rec, &abs_only, SS_SAVE_UPDATE), APR_NOTFOUND);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("t:ttl:", &k2)), 0);
}

static void test_expired_records_are_deleted(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t idle = {2 * SEC, 0}, absolute = {0, 5 * SEC};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now, now), out;
    ss_key_t k1 = test_key(5), k2 = test_key(6), k3 = test_key(7);
    ss_store_stats_t st;

    (void)state;
    assert_int_equal(save(store, &k1, &rec, &idle, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(save(store, &k2, &rec, &absolute, SS_SAVE_NEW), APR_SUCCESS);
    /* The loads' clock is ahead of Redis's TTLs: the script itself must judge. */
    assert_int_equal(load(store, &k1, &idle, now + 2 * SEC, &out), SS_EEXPIRED);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("sessstore:", &k1)), 0);
    assert_int_equal(load(store, &k2, &absolute, now + 4 * SEC, &out), APR_SUCCESS);
    assert_int_equal(load(store, &k2, &absolute, now + 5 * SEC, &out), SS_EEXPIRED);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("sessstore:", &k2)), 0);

    /* Garbage under our key is no session, and is removed. */
    admin_ok(&g.main, "SET %s %s", redis_key("sessstore:", &k3), "not a record");
    assert_int_equal(load(store, &k3, &idle, now, &out), APR_NOTFOUND);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("sessstore:", &k3)), 0);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_WARNING), 1);

    st = unit_stats(store);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.malformed, 1);
    assert_int_equal(st.hits, 1);
}

static apr_time_t stored_accessed(const char *key)
{
    size_t len = 0;
    const unsigned char *b = (const unsigned char *)admin_range(&g.main, key, 12, 19, &len);
    apr_uint64_t v = 0;
    int i;

    assert_non_null(b);
    assert_int_equal(len, 8);
    for (i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    return (apr_time_t)v;
}

static void test_touch_only_when_due(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {100 * SEC, 0}, capped = {100 * SEC, 65 * SEC}; /* touch every 10 s */
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now - 50 * SEC, now - 50 * SEC), out;
    ss_key_t key = test_key(8);
    const char *k = redis_key("sessstore:", &key);
    long long pttl;

    (void)state;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    /* The save counts as an access at rec.accessed: a full idle TTL. Shorten
     * it as if time had passed on Redis's clock, to see a touch renew it. */
    pttl = admin_integer(&g.main, "PTTL %s", k);
    assert_true(pttl > 95000 && pttl <= 100000);
    assert_int_equal(admin_integer(&g.main, "PEXPIRE %s 30000", k), 1);

    /* 5 s after the last access: not due, nothing written. */
    assert_int_equal(load(store, &key, &e, now - 45 * SEC, &out), APR_SUCCESS);
    assert_true(out.accessed == now - 50 * SEC);
    assert_true(stored_accessed(k) == now - 50 * SEC);
    assert_true(admin_integer(&g.main, "PTTL %s", k) <= 30000);
    assert_int_equal(unit_stats(store).touches, 0);

    /* 50 s after: due. The timestamp is rewritten in place, the TTL renewed. */
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_true(out.accessed == now);
    assert_true(stored_accessed(k) == now);
    pttl = admin_integer(&g.main, "PTTL %s", k);
    assert_true(pttl > 95000 && pttl <= 100000);
    assert_int_equal(unit_stats(store).touches, 1);
    assert_string_equal(out.payload, "a=1");

    /* With an absolute limit nearer than the idle one, the TTL stops there. */
    assert_int_equal(load(store, &key, &capped, now + 11 * SEC, &out), APR_SUCCESS);
    pttl = admin_integer(&g.main, "PTTL %s", k);
    assert_true(pttl > 3000 && pttl <= 4000);
}

static void test_one_round_trip_each(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {100 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now - 20 * SEC, now - 20 * SEC), out;
    ss_key_t key = test_key(9);
    long long evalsha, eval, set, del;

    (void)state;
    assert_int_equal(load(store, &key, &e, now, &out), APR_NOTFOUND); /* connect, cache script */
    evalsha = calls_of(&g.main, "evalsha");
    eval = calls_of(&g.main, "eval");
    set = calls_of(&g.main, "set");
    del = calls_of(&g.main, "del");

    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(calls_of(&g.main, "set"), set + 1);
    assert_int_equal(calls_of(&g.main, "evalsha"), evalsha);

    /* A load with a touch: still one EVALSHA (the GET, SETRANGE and PEXPIRE
     * run inside it). */
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_int_equal(unit_stats(store).touches, 1);
    assert_int_equal(calls_of(&g.main, "evalsha"), evalsha + 1);
    assert_int_equal(calls_of(&g.main, "eval"), eval);
    assert_int_equal(calls_of(&g.main, "set"), set + 1);

    assert_int_equal(store->ops->remove(store, &key), APR_SUCCESS);
    assert_int_equal(calls_of(&g.main, "del"), del + 1);
    assert_int_equal(calls_of(&g.main, "evalsha"), evalsha + 1);
    /* All on the one pooled connection. */
    assert_int_equal(unit_stats(store).connects, 1);

    /* After a script-cache flush, the first load falls back to EVAL once. */
    admin_ok(&g.main, "SCRIPT FLUSH");
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_int_equal(calls_of(&g.main, "eval"), eval + 1);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_int_equal(calls_of(&g.main, "eval"), eval + 1);
    assert_int_equal(unit_stats(store).errors, 0);
}

/* Every kind of load: the commands it runs and its round trips. The lean
 * load is one GET and no script unless it writes; only a due touch (or a
 * record to delete) adds the script, one round trip more, once per touch
 * interval. The script load is one EVALSHA (whose own GET counts too). */
static void test_load_commands(void **state)
{
    ss_store_t *store = open_server(&g.main, "?prefix=t:cmds:");
    ss_expiry_t e = {100 * SEC, 0}, strict = {5 * SEC, 0}; /* touch every 10 s, 0.5 s */
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now - SEC, now - SEC), out;
    ss_key_t key = test_key(30), absent = test_key(31), newer = test_key(32);
    const char *k = redis_key("t:cmds:", &key);
    const long long script = g.script; /* the script's GET counts as well */
    counters_t c;
    ss_store_stats_t st;
    char *v;
    size_t len = 0;

    (void)state;
    c.c = admin_connect(&g.main);
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(save(store, &newer, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    v = admin_range(&g.main, redis_key("t:cmds:", &newer), 0, 200, &len);
    v[2] = SS_RECORD_VERSION + 1;
    admin_ok(&g.main, "SET %s %b KEEPTTL", redis_key("t:cmds:", &newer), v, len);
    /* The script cached, the connection pooled. */
    assert_int_equal(load(store, &absent, &e, now, &out), APR_NOTFOUND);
    counters_read(&c);

    /* A live record, no touch due. */
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=1");
    counters_expect(&c, 1, 1, script, 0);
    /* Absent. */
    assert_int_equal(load(store, &absent, &e, now, &out), APR_NOTFOUND);
    counters_expect(&c, 1, 1, script, 0);
    /* Dead for this location, kept for the others. */
    assert_int_equal(store->ops->load(store, &key, &strict, &e, now + 5 * SEC, g.pool, &out),
                     SS_EEXPIRED);
    counters_expect(&c, 1, 1, script, 0);
    assert_int_equal(exists_on(&c, k), 1);
    /* A newer format: left alone. */
    assert_int_equal(load(store, &newer, &e, now, &out), APR_NOTFOUND);
    counters_expect(&c, 1, 1, script, 0);
    /* A touch due: the lean load reads, then the script reads and writes. */
    assert_int_equal(load(store, &key, &e, now + 10 * SEC, &out), APR_SUCCESS);
    assert_true(out.accessed == now + 10 * SEC);
    counters_expect(&c, 1 + !script, 2 - script, 1, 0);
    /* Within the next touch interval: no script again. */
    assert_int_equal(load(store, &key, &e, now + 19 * SEC, &out), APR_SUCCESS);
    assert_true(out.accessed == now + 10 * SEC);
    counters_expect(&c, 1, 1, script, 0);
    /* Dead everywhere: deleted by the script. */
    assert_int_equal(load(store, &key, &e, now + 110 * SEC, &out), SS_EEXPIRED);
    counters_expect(&c, 1 + !script, 2 - script, 1, 0);
    assert_int_equal(exists_on(&c, k), 0);

    st = unit_stats(store);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.touches, 1);
    assert_int_equal(st.newer_format, 1);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.connects, 1);
    redisFree(c.c);
}

static void test_save_modes(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {100 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now, now), out;
    ss_key_t key = test_key(10);

    (void)state;
    /* An update of an unknown ID writes nothing. */
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_NOTFOUND);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("sessstore:", &key)), 0);
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_EEXIST);
    rec.payload = "a=2";
    rec.revision = 1; /* over revision 0, the one written */
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=2");
    assert_int_equal(out.revision, 1);
    rec.revision = 2;
    /* Logout elsewhere, then a late save of the old state: not resurrected. */
    assert_int_equal(store->ops->remove(store, &key), APR_SUCCESS);
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_NOTFOUND);
    assert_int_equal(load(store, &key, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(unit_stats(store).refused_gone, 2);
    /* A removed key is free again for a new session. */
    rec.payload = "a=3";
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=3");
}

/* SS_SAVE_UPDATE is one EVALSHA comparing the stored revision (bytes 21..24)
 * with the one loaded: the first of two writers wins, the second gets
 * SS_ECONFLICT and writes nothing; gone stays APR_NOTFOUND. */
static void test_update_is_compare_and_set(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {100 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now, now), out;
    ss_key_t key = test_key(40);
    const char *k = redis_key("sessstore:", &key);
    long long evalsha, pttl;
    ss_store_stats_t st;

    (void)state;
    rec.revision = 7;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    evalsha = calls_of(&g.main, "evalsha");
    rec.revision = 8;
    rec.payload = "a=first";
    rec.payload_len = 7;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_SUCCESS);
    assert_int_equal(calls_of(&g.main, "evalsha"), evalsha + 1); /* one round trip */
    pttl = admin_integer(&g.main, "PTTL %s", k);
    assert_true(pttl > 95000 && pttl <= 100000);
    rec.payload = "a=second";
    rec.payload_len = 8;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), SS_ECONFLICT);
    rec.revision = 7;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), SS_ECONFLICT);
    rec.revision = 10;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), SS_ECONFLICT);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=first");
    assert_int_equal(out.revision, 8);
    /* After a script-cache flush the update falls back to EVAL. */
    admin_ok(&g.main, "SCRIPT FLUSH");
    rec.revision = 9;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=second");
    assert_int_equal(out.revision, 9);
    /* Something that is not a record of ours under the key: a conflict,
     * never overwritten by an update. */
    admin_ok(&g.main, "SET %s garbage", k);
    rec.revision = 10;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), SS_ECONFLICT);
    assert_int_equal(admin_integer(&g.main, "STRLEN %s", k), 7);
    /* Gone. */
    assert_int_equal(store->ops->remove(store, &key), APR_SUCCESS);
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_NOTFOUND);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", k), 0);
    st = unit_stats(store);
    assert_int_equal(st.refused_conflict, 4);
    assert_int_equal(st.refused_gone, 1);
    assert_int_equal(st.errors, 0);
}

/* Records of format v1 (an old node, or SessionStoreRecordFormat 1) are read
 * by the lean load and the script, touched in place, and rewritten as v2 at
 * their next update, which expects revision 0. */
static void test_v1_records(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {100 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=1", now - 20 * SEC, now - 20 * SEC), out;
    ss_key_t key = test_key(41);
    const char *k = redis_key("sessstore:", &key);
    char *v;
    size_t len = 0;

    (void)state;
    store->form = SS_RECORD_FORM_V1;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    v = admin_range(&g.main, k, 0, 200, &len);
    assert_int_equal(len, SS_RECORD_V1_HEADER_LEN + 5 + 3);
    assert_int_equal(v[2], 1);
    /* Loaded, and touched (due after 20 s) in place: still v1. */
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=1");
    assert_string_equal(out.user, "alice");
    assert_int_equal(out.revision, 0);
    assert_true(out.accessed == now);
    assert_int_equal(unit_stats(store).touches, 1);
    assert_true(stored_accessed(k) == now);
    v = admin_range(&g.main, k, 0, 200, &len);
    assert_int_equal(v[2], 1);
    /* An update over revision 0, sealed. */
    store->form = SS_RECORD_FORM_SEALED;
    rec.accessed = now;
    rec.revision = 2;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), SS_ECONFLICT);
    rec.revision = 1;
    rec.payload = "a=2";
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_SUCCESS);
    v = admin_range(&g.main, k, 0, 200, &len);
    assert_int_equal(v[2], SS_RECORD_VERSION);
    assert_int_equal(v[3], SS_RECORD_FLAG_SEALED);
    assert_int_equal(len, SS_RECORD_HEADER_LEN + SS_SEAL_OVERHEAD + 2 + 5 + 3);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=2");
    assert_int_equal(out.revision, 1);
    assert_int_equal(unit_stats(store).malformed, 0);
}

/* Sealed in Redis: neither owner nor payload readable there; a record whose
 * sealed bytes were changed is malformed (removed, counted); a key that
 * cannot open it (rebuilt from the store alone) leaves it alone. */
static void test_sealed_records(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {100 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("pw=hunter2", now, now), out;
    ss_key_t key = test_key(42), closed;
    const char *k = redis_key("sessstore:", &key);
    char *v;
    size_t len = 0;

    (void)state;
    store->form = SS_RECORD_FORM_SEALED;
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    v = admin_range(&g.main, k, 0, 500, &len);
    assert_int_equal(v[3], SS_RECORD_FLAG_SEALED);
    assert_null(memmem(v, len, "hunter2", 7));
    assert_null(memmem(v, len, "alice", 5));
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "pw=hunter2");
    closed = key;
    closed.sealable = 0;
    assert_int_equal(load(store, &closed, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", k), 1);
    assert_int_equal(unit_stats(store).malformed, 0);
    /* One bit of the ciphertext flipped. */
    v[SS_RECORD_HEADER_LEN + SS_SEAL_NONCE_BYTES + 3] ^= 1;
    admin_ok(&g.main, "SET %s %b KEEPTTL", k, v, len);
    assert_int_equal(load(store, &key, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(unit_stats(store).malformed, 1);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", k), 0);
    assert_true(unit_tlog_has(&g.log, "malformed"));
}

/* SessionStoreSeal Required: a record in clear planted under a session's
 * key (by whoever can write to Redis) is malformed: deleted, counted, never
 * served; a sealed one is. */
static void test_sealed_only_refuses_clear_records(void **state)
{
    ss_store_t *store = open_server(&g.main, "");
    ss_expiry_t e = {100 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("user=admin", now, now), out;
    ss_key_t clear = test_key(43), v1 = test_key(44), sealed = test_key(45);

    (void)state;
    store->form = SS_RECORD_FORM_CLEAR;
    assert_int_equal(save(store, &clear, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    store->form = SS_RECORD_FORM_V1;
    assert_int_equal(save(store, &v1, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    store->form = SS_RECORD_FORM_SEALED;
    assert_int_equal(save(store, &sealed, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    store->sealed_only = 1;
    assert_int_equal(load(store, &clear, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(load(store, &v1, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(load(store, &sealed, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "user=admin");
    assert_int_equal(unit_stats(store).malformed, 2);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("sessstore:", &clear)), 0);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("sessstore:", &v1)), 0);
}

static void test_session_api_over_redis(void **state)
{
    ss_session_ctx_t ctx = {open_server(&g.main, ""), {60 * SEC, 0}, {60 * SEC, 0}, 4096, 0};
    char id[SS_ID_LEN + 1];
    ss_record_t rec, out;
    apr_time_t now = apr_time_now();
    ss_key_t key;

    (void)state;
    assert_int_equal(ss_id_generate(id), APR_SUCCESS);
    rec = record("a=1", now, now);
    assert_int_equal(unit_id_write(&ctx, id, &rec, 1, g.pool), APR_SUCCESS);
    assert_int_equal(unit_id_load(&ctx, id, now, g.pool, &out), APR_SUCCESS);
    /* The session ID itself is nowhere in Redis: only its hash is the key. */
    assert_int_equal(ss_id_key(id, &key), APR_SUCCESS);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", redis_key("sessstore:", &key)), 1);
    assert_int_equal(admin_integer(&g.main, "EXISTS sessstore:%s", id), 0);
    assert_int_equal(unit_id_remove(&ctx, id), APR_SUCCESS);
    assert_int_equal(unit_id_write(&ctx, id, &rec, 0, g.pool), APR_NOTFOUND);
}

/* ---- connecting ---- */

static void save_and_load(ss_store_t *store, int n)
{
    ss_expiry_t e = {60 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("x=y", now, now), out;
    ss_key_t key = test_key(n);

    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "x=y");
}

static void test_auth(void **state)
{
    static const char *const extra[] = {"--requirepass", "s3cret", NULL};
    ss_store_t *store;
    ss_key_t key = test_key(11), acl_key = test_key(12);
    ss_expiry_t e = {60 * SEC, 0};
    ss_record_t out;

    (void)state;
    assert_int_equal(server_start(&g.own, g.binary, extra), 0);
    g.own.password = "s3cret";
    /* The least a user needs (the admin guide's ACL), on our prefix only. */
    admin_ok(&g.own, "ACL SETUSER web on >w@nder ~sessstore:* -@all +get +set +del +setrange "
                     "+pexpire +eval +evalsha +select");

    save_and_load(open_uri(apr_psprintf(g.pool, "redis://:s3cret@127.0.0.1:%d", g.own.port)), 11);
    store = open_uri(apr_psprintf(g.pool, "redis://web:w%%40nder@127.0.0.1:%d/1", g.own.port));
    save_and_load(store, 12);
    assert_int_equal(store->ops->remove(store, &acl_key), APR_SUCCESS);
    assert_int_equal(unit_stats(store).removes, 1);
    save_and_load(open_uri(apr_psprintf(g.pool, "unix://%s?password=s3cret", g.own.sock)), 13);

    /* Wrong password and no password: a store failure, logged, never NOTFOUND. */
    store = open_uri(apr_psprintf(g.pool, "redis://:b4dpass@127.0.0.1:%d?breaker=0", g.own.port));
    assert_true(is_store_failure(load(store, &key, &e, apr_time_now(), &out)));
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);
    assert_non_null(strstr(g.log.last, "AUTH refused"));
    assert_null(strstr(g.log.last, "b4dpass"));
    store = open_server(&g.own, "?breaker=0");
    assert_true(is_store_failure(load(store, &key, &e, apr_time_now(), &out)));
    assert_non_null(strstr(g.log.last, "NOAUTH"));
}

static void test_select_db(void **state)
{
    ss_store_t *store = open_server(&g.main, "/3");
    ss_key_t key = test_key(14);
    const char *k = redis_key("sessstore:", &key);
    redisContext *c;
    redisReply *r;

    (void)state;
    save_and_load(store, 14);
    assert_int_equal(admin_integer(&g.main, "EXISTS %s", k), 0); /* db 0 */
    c = admin_connect(&g.main);
    freeReplyObject(redisCommand(c, "SELECT 3"));
    r = redisCommand(c, "EXISTS %s", k);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
}

static void test_unix_socket(void **state)
{
    ss_store_t *store = open_uri(apr_psprintf(g.pool, "unix://%s?db=1", g.main.sock));

    (void)state;
    save_and_load(store, 15);
    assert_int_equal(unit_stats(store).connects, 1);
}

/* ---- outages ---- */

/* A load of key on a thread of its own: its status, and the payload found. */
typedef struct {
    ss_store_t *store;
    ss_key_t key;
    apr_status_t rv;
    char payload[32];
} probe_t;

/* Threads here return rather than call apr_thread_exit: pthread_exit leaves
 * ASan's stack poisoning behind and makes it report a false overflow. */
static void *APR_THREAD_FUNC probe(apr_thread_t *t, void *arg)
{
    probe_t *pr = arg;
    ss_expiry_t e = {60 * SEC, 0};
    ss_record_t out;
    apr_pool_t *p;

    (void)t;
    apr_pool_create(&p, NULL);
    pr->rv = pr->store->ops->load(pr->store, &pr->key, &e, &e, apr_time_now(), p, &out);
    if (pr->rv == APR_SUCCESS) {
        apr_cpystrn(pr->payload, out.payload, sizeof(pr->payload));
    }
    apr_pool_destroy(p);
    return NULL;
}

/* One load now: its status in *rv; how long it took. */
static apr_time_t timed_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *e,
                             apr_status_t *rv)
{
    ss_record_t out;
    apr_time_t t0 = apr_time_now();

    *rv = load(store, key, e, t0, &out);
    return apr_time_now() - t0;
}

static int is_success(apr_status_t rv)
{
    return rv == APR_SUCCESS;
}

static int is_answer(apr_status_t rv)
{
    return !is_store_failure(rv);
}

/* Loads every 20 ms until done(status), for 3 s at the most: the last status
 * in *rv; when it started. */
static apr_time_t load_until(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *e,
                             int (*done)(apr_status_t), apr_status_t *rv)
{
    ss_record_t out;
    apr_time_t t0 = apr_time_now();

    while (!done(*rv = load(store, key, e, apr_time_now(), &out)) &&
           apr_time_now() - t0 < 3 * SEC) {
        usleep(20000);
    }
    return t0;
}

static void test_hung_server_times_out(void **state)
{
    apr_thread_t *prober;
    apr_status_t trv;
    probe_t pr = {0};
    ss_store_t *store;
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(16);
    apr_time_t t0, elapsed, worst = 0;
    apr_status_t rv;
    ss_store_stats_t st;
    int i;

    (void)state;
    assert_int_equal(server_start(&g.own, g.binary, NULL), 0);
    store = open_server(&g.own, "?connect_timeout=200&command_timeout=200&breaker=1000");
    save_and_load(store, 16);

    kill(g.own.pid, SIGSTOP);
    elapsed = timed_load(store, &key, &e, &rv);
    assert_int_equal(rv, APR_TIMEUP);
    print_message("hung server, command timeout 200 ms: failed after %" APR_TIME_T_FMT " us\n",
                  elapsed);
    assert_true(elapsed >= 190 * MS && elapsed < 400 * MS + 100 * MS);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);
    st = unit_stats(store);

    /* Within the breaker window: at once, without touching the network. */
    for (i = 0; i < 20; i++) {
        elapsed = timed_load(store, &key, &e, &rv);
        worst = elapsed > worst ? elapsed : worst;
        assert_int_equal(rv, APR_ECONNREFUSED);
    }
    print_message("breaker open: slowest of 20 fast failures %" APR_TIME_T_FMT " us\n", worst);
    assert_true(worst < 5 * MS);
    assert_int_equal(unit_stats(store).connects, st.connects);
    assert_int_equal(unit_stats(store).fast_fails, 20);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);

    /* After the window, one probe goes out; the others still fail at once. */
    usleep(1000000);
    pr.store = store;
    pr.key = key;
    assert_int_equal(apr_thread_create(&prober, NULL, probe, &pr, g.pool), APR_SUCCESS);
    /* Until the probe's connection is open (the stopped server's kernel
     * accepts it): on a loaded machine the thread may start late, and a load
     * sent before it would be the probe itself. */
    for (i = 0; i < 400 && unit_stats(store).connects == st.connects; i++) {
        usleep(5000);
    }
    assert_int_equal(unit_stats(store).connects, st.connects + 1);
    usleep(20000);
    elapsed = timed_load(store, &key, &e, &rv);
    assert_int_equal(rv, APR_ECONNREFUSED);
    assert_true(elapsed < 5 * MS);
    apr_thread_join(&trv, prober);
    assert_int_equal(pr.rv, APR_TIMEUP);
    assert_int_equal(unit_stats(store).connects, st.connects + 1);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);

    kill(g.own.pid, SIGCONT);
    t0 = load_until(store, &key, &e, is_success, &rv);
    assert_int_equal(rv, APR_SUCCESS);
    print_message("hung server resumed: answering again after %" APR_TIME_T_FMT " ms (breaker "
                  "1000 ms)\n",
                  apr_time_as_msec(apr_time_now() - t0));
    assert_true(apr_time_now() - t0 < 1500 * MS);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_NOTICE), 1);
}

/* A listener whose accept queue is full drops new SYNs: connects hang. */
static void test_connect_timeout(void **state)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fds[4], i;
    ss_store_t *store;
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(18);
    apr_time_t elapsed;
    apr_status_t rv;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(listen(lfd, 0), 0);
    for (i = 0; i < 4; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fds[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(50000);
    store = open_uri(
        apr_psprintf(g.pool, "redis://127.0.0.1:%d?connect_timeout=100", ntohs(a.sin_port)));
    elapsed = timed_load(store, &key, &e, &rv);
    for (i = 0; i < 4; i++) {
        close(fds[i]);
    }
    close(lfd);
    assert_int_equal(rv, APR_TIMEUP);
    print_message("connect timeout 100 ms: failed after %" APR_TIME_T_FMT " us\n", elapsed);
    assert_true(elapsed >= 95 * MS && elapsed < 200 * MS);
    assert_int_equal(unit_stats(store).connects, 0);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);
}

static void test_outage_and_recovery(void **state)
{
    ss_store_t *store;
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(17);
    ss_record_t rec;
    apr_time_t t0, elapsed, worst = 0;
    apr_status_t rv;
    int i, port;

    (void)state;
    assert_int_equal(server_start(&g.own, g.binary, NULL), 0);
    store = open_server(&g.own, "?connect_timeout=200&command_timeout=200&breaker=500");
    save_and_load(store, 17);

    port = g.own.port;
    server_kill(&g.own);
    /* Stale pooled socket, then a refused connect, then the breaker: 30
     * operations over ~0.6 s, none slow, one log line. */
    for (i = 0; i < 30; i++) {
        elapsed = timed_load(store, &key, &e, &rv);
        worst = elapsed > worst ? elapsed : worst;
        assert_true(is_store_failure(rv));
        usleep(20000);
    }
    print_message("server killed: slowest of 30 failed loads %" APR_TIME_T_FMT " us\n", worst);
    assert_true(worst < 400 * MS + 100 * MS);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);
    assert_true(unit_stats(store).fast_fails > 20);
    rec = record("a=1", apr_time_now(), apr_time_now());
    assert_true(is_store_failure(save(store, &key, &rec, &e, SS_SAVE_NEW)));
    assert_true(is_store_failure(store->ops->remove(store, &key)));

    g.own.port = port;
    assert_int_equal(server_start(&g.own, g.binary, NULL), 0);
    t0 = load_until(store, &key, &e, is_answer, &rv);
    assert_int_equal(rv, APR_NOTFOUND); /* answering again; nothing was persisted */
    print_message("server restarted: answering again after %" APR_TIME_T_FMT " ms (breaker "
                  "500 ms)\n",
                  apr_time_as_msec(apr_time_now() - t0));
    assert_true(apr_time_now() - t0 < 1 * SEC);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 1);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_NOTICE), 1);
    save_and_load(store, 17);
}

typedef struct {
    ss_store_t *store;
    int n;
    int failures;
    apr_pool_t *pool;
} worker_t;

static void *APR_THREAD_FUNC worker(apr_thread_t *t, void *arg)
{
    worker_t *w = arg;
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(100 + w->n);
    char payload[64];
    int i;

    (void)t;
    for (i = 0; i < THREAD_ROUNDS; i++) {
        apr_time_t now = apr_time_now();
        ss_record_t rec = {now, now, "", payload, 0, (apr_uint32_t)i}, out;

        rec.payload_len = (apr_size_t)snprintf(payload, sizeof(payload), "t=%d&i=%d", w->n, i);
        if (w->store->ops->save(w->store, &key, &rec, now + e.idle,
                                i ? SS_SAVE_UPDATE : SS_SAVE_NEW, UNIT_NO_LIMIT,
                                w->pool) != APR_SUCCESS ||
            w->store->ops->load(w->store, &key, &e, &e, now, w->pool, &out) != APR_SUCCESS ||
            strcmp(out.payload, payload)) {
            w->failures++;
        }
        apr_pool_clear(w->pool);
    }
    return NULL;
}

static void run_workers(ss_store_t *store)
{
    apr_thread_t *threads[THREADS];
    worker_t workers[THREADS];
    apr_status_t trv;
    int i;

    for (i = 0; i < THREADS; i++) {
        workers[i].store = store;
        workers[i].n = i;
        workers[i].failures = 0;
        apr_pool_create(&workers[i].pool, g.pool);
    }
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(apr_thread_create(&threads[i], NULL, worker, &workers[i], g.pool),
                         APR_SUCCESS);
    }
    for (i = 0; i < THREADS; i++) {
        apr_thread_join(&trv, threads[i]);
        assert_int_equal(workers[i].failures, 0);
    }
}

static void test_threads(void **state)
{
    ss_store_t *store = open_server(&g.main, "?prefix=t:threads:");
    ss_store_stats_t st;

    (void)state;
    run_workers(store);
    st = unit_stats(store);
    assert_int_equal(st.hits, THREADS * THREAD_ROUNDS);
    assert_int_equal(st.saves, THREADS * THREAD_ROUNDS);
    assert_int_equal(st.errors, 0);
    assert_true(st.connects >= 1 && st.connects <= THREADS);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 0);
}

/* After a Redis restart every pooled socket is dead; users must not notice. */
static void test_restart_behind_pooled_connections(void **state)
{
    ss_store_t *store;
    ss_store_stats_t before, after;
    int i, port;

    (void)state;
    assert_int_equal(server_start(&g.own, g.binary, NULL), 0);
    store = open_server(&g.own, "?prefix=t:threads:");
    run_workers(store); /* leaves several idle connections */
    before = unit_stats(store);

    port = g.own.port;
    server_kill(&g.own);
    g.own.port = port;
    assert_int_equal(server_start(&g.own, g.binary, NULL), 0);
    for (i = 0; i < 10; i++) {
        save_and_load(store, 200 + i);
    }
    after = unit_stats(store);
    assert_int_equal(after.errors, 0);
    assert_int_equal(after.retries - before.retries, 1); /* the rest of the pool was flushed */
    assert_int_equal(after.connects - before.connects, 1);
    assert_int_equal(unit_tlog_count(&g.log, SS_LOG_ERR), 0);
}

/* ---- error replies and connection age ---- */

/* A master demoted to a replica answers writes with READONLY: that connection
 * (and the idle ones, all to the same node) must go, so that a failover
 * behind the same address is followed at once. */
static void test_readonly_closes_the_connection(void **state)
{
    ss_store_t *store;
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(19);
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("a=2", now, now), out;
    ss_store_stats_t st, after;

    (void)state;
    assert_int_equal(server_start(&g.own, g.binary, NULL), 0);
    store = open_server(&g.own, "?breaker=1000");
    save_and_load(store, 19);
    st = unit_stats(store);
    assert_int_equal(st.connects, 1);
    assert_int_equal(clients_of(&g.own, 1), 1); /* pooled */

    /* Demoted: a replica of a master that is not there. */
    admin_ok(&g.own, "REPLICAOF 127.0.0.1 %d", free_port());
    rec.revision = 1; /* over save_and_load's revision 0 */
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_EGENERAL);
    assert_non_null(strstr(g.log.last, "READONLY"));
    /* The pooled connection was closed and the save tried once more on a new
     * one (a moved VIP would have led it to the new master), closed too. */
    after = unit_stats(store);
    assert_int_equal(after.connects, st.connects + 1);
    assert_int_equal(after.retries, st.retries + 1);
    assert_int_equal(clients_of(&g.own, 0), 0);
    /* An error reply is no outage: the breaker stays shut, and reads still
     * work on the replica (on a new connection, since none was kept). */
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "x=y");
    after = unit_stats(store);
    assert_int_equal(after.fast_fails, 0);
    assert_int_equal(after.connects, st.connects + 2);

    /* Master again: the next write succeeds. */
    admin_ok(&g.own, "REPLICAOF NO ONE");
    assert_int_equal(save(store, &key, &rec, &e, SS_SAVE_UPDATE), APR_SUCCESS);
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=2");
    assert_int_equal(unit_stats(store).connects, st.connects + 2);
    assert_int_equal(clients_of(&g.own, 1), 1);
}

/* Which error replies close the connection, and a reply of the wrong type. */
static void test_error_replies(void **state)
{
    static const struct {
        const char *reply;
        int closes;
    } cases[] = {
        {"-LOADING Redis is loading the dataset in memory\r\n", 1},
        {"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
         1},
        {"-READONLY You can't write against a read only replica.\r\n", 1},
        /* Redis 5 and 6 wrap an error raised inside a script. */
        {"-ERR Error running script (call to f_0): @user_script:13: @user_script: 13: -READONLY "
         "You can't write against a read only replica.\r\n",
         1},
        /* A status where the load script gives an integer or an array: the
         * connection is out of step with what was sent. */
        {"+OK\r\n", 1},
        {"$3\r\nabc\r\n", 1},
        /* Errors that say nothing about the node. */
        {"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", 0},
        {"-ERR Error running script (call to f_0): @user_script:3: Script attempted to access "
         "nonexistent global variable 'x'\r\n",
         0},
        {"-NOPERM this user has no permissions to run the 'evalsha' command\r\n", 0},
    };
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(20);
    ss_record_t out;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fake_t f;
        ss_store_t *store;
        int expect = cases[i].closes ? 2 : 1;

        fake_start(&f, cases[i].reply);
        store = open_uri(apr_psprintf(g.pool, "redis://127.0.0.1:%d?breaker=0", f.port));
        assert_int_equal(load(store, &key, &e, apr_time_now(), &out), APR_EGENERAL);
        assert_int_equal(load(store, &key, &e, apr_time_now(), &out), APR_EGENERAL);
        if ((int)apr_atomic_read32(&f.accepts) != expect ||
            (int)fake_closes(&f, expect) != expect - 1 + cases[i].closes) {
            fail_msg("reply %.30s: %u connections, %u closed; expected %d, %d", cases[i].reply,
                     apr_atomic_read32(&f.accepts), apr_atomic_read32(&f.closes), expect,
                     expect - 1 + cases[i].closes);
        }
        assert_int_equal(unit_stats(store).errors, 2);
        store->ops->close(store);
        fake_stop(&f);
    }
}

/* Sentinel, wait=1 on a master without replicas: a save that falls short of
 * WAIT makes the next operation ask the sentinels again (after SENTINEL
 * FAILOVER the old master loses its replicas before it is demoted), where a
 * pooled connection otherwise reuses their answer for a second. The sentinel
 * is a fake naming g.main; it counts the questions as connections. */
static void test_wait_shortfall_asks_the_sentinels(void **state)
{
    ss_expiry_t e = {60 * SEC, 0};
    ss_key_t key = test_key(25);
    apr_time_t now = apr_time_now();
    ss_record_t rec = record("x=y", now, now), out;
    fake_t f;
    ss_store_t *store;

    (void)state;
    fake_start(&f, sentinel_answer(g.main.port));
    store =
        open_uri(apr_psprintf(g.pool, "redis-sentinel://127.0.0.1:%d/mymaster?wait=1,20", f.port));
    assert_int_equal(load(store, &key, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(apr_atomic_read32(&f.accepts), 1); /* for the new connection */
    assert_int_equal(load(store, &key, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(apr_atomic_read32(&f.accepts), 1); /* pooled, answer fresh */

    assert_true(is_store_failure(save(store, &key, &rec, &e, SS_SAVE_NEW)));
    assert_non_null(strstr(g.log.last, "WAIT: 0 of 1 replicas acknowledged"));
    assert_int_equal(apr_atomic_read32(&f.accepts), 1);
    /* Written on the master all the same (WAIT cannot undo it). */
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "x=y");
    assert_int_equal(apr_atomic_read32(&f.accepts), 2); /* asked again */
    assert_int_equal(load(store, &key, &e, now, &out), APR_SUCCESS);
    assert_int_equal(apr_atomic_read32(&f.accepts), 2);
    store->ops->close(store);
    fake_stop(&f);
}

/* Sentinel: a master stopped with a read on its pooled connection, the
 * sentinels name another meanwhile, and the process learns of it before the
 * old one resumes and answers. That answer is not used: the load is sent
 * again to the new master (the old one's copy is stale, and an update based
 * on it would undo newer writes). */
static void test_replaced_master_answer_is_not_used(void **state)
{
    ss_expiry_t e = {60 * SEC, 0};
    apr_time_t now = apr_time_now();
    ss_record_t old = record("old", now, now), fresh = record("new", now, now), out;
    ss_store_t *store, *direct;
    probe_t pr = {0};
    apr_thread_t *thread;
    apr_status_t trv;
    ss_key_t other = test_key(27);
    fake_t f;

    (void)state;
    assert_int_equal(server_start(&g.own, g.binary, NULL), 0);
    pr.key = test_key(26);
    /* The new master already has the newer record. */
    direct = open_server(&g.main, "");
    assert_int_equal(save(direct, &pr.key, &fresh, &e, SS_SAVE_NEW), APR_SUCCESS);
    direct->ops->close(direct);

    fake_start(&f, sentinel_answer(g.own.port));
    store = open_uri(apr_psprintf(
        g.pool, "redis-sentinel://127.0.0.1:%d/mymaster?command_timeout=5000&breaker=0", f.port));
    assert_int_equal(save(store, &pr.key, &old, &e, SS_SAVE_NEW), APR_SUCCESS); /* on own */
    assert_int_equal(apr_atomic_read32(&f.accepts), 1);

    kill(g.own.pid, SIGSTOP);
    pr.store = store;
    assert_int_equal(apr_thread_create(&thread, NULL, probe, &pr, g.pool), APR_SUCCESS);
    usleep(100000); /* its GET waits on the stopped master */
    f.reply = sentinel_answer(g.main.port);
    usleep(1000000); /* the sentinels' answer is no longer fresh */
    /* Another load opens a connection: the sentinels are asked, and name main. */
    assert_int_equal(load(store, &other, &e, now, &out), APR_NOTFOUND);
    assert_int_equal(apr_atomic_read32(&f.accepts), 2);
    kill(g.own.pid, SIGCONT);
    apr_thread_join(&trv, thread);
    assert_int_equal(pr.rv, APR_SUCCESS);
    assert_string_equal(pr.payload, "new");
    assert_int_equal(unit_stats(store).retries, 1);
    store->ops->close(store);
    fake_stop(&f);
}

/* max_age: a pooled connection that old is replaced. */
static void test_max_age(void **state)
{
    ss_store_t *store = open_server(&g.main, "?max_age=1");

    (void)state;
    save_and_load(store, 21);
    save_and_load(store, 22);
    assert_int_equal(unit_stats(store).connects, 1);
    usleep(1100000);
    save_and_load(store, 23);
    assert_int_equal(unit_stats(store).connects, 2);
    save_and_load(store, 24);
    assert_int_equal(unit_stats(store).connects, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_round_trip),
        UNIT_TEST(test_index_scores_and_ttl),
        UNIT_TEST(test_index_open_members_checked),
        UNIT_TEST(test_index_revoke_and_purge),
        UNIT_TEST(test_keys_and_ttls),
        UNIT_TEST(test_expired_records_are_deleted),
        UNIT_TEST(test_touch_only_when_due),
        UNIT_TEST(test_one_round_trip_each),
        UNIT_TEST(test_load_commands),
        UNIT_TEST(test_save_modes),
        UNIT_TEST(test_update_is_compare_and_set),
        UNIT_TEST(test_v1_records),
        UNIT_TEST(test_sealed_records),
        UNIT_TEST(test_sealed_only_refuses_clear_records),
        UNIT_TEST(test_session_api_over_redis),
        UNIT_TEST(test_auth),
        UNIT_TEST(test_select_db),
        UNIT_TEST(test_unix_socket),
        UNIT_TEST(test_hung_server_times_out),
        UNIT_TEST(test_connect_timeout),
        UNIT_TEST(test_outage_and_recovery),
        UNIT_TEST(test_threads),
        UNIT_TEST(test_restart_behind_pooled_connections),
        UNIT_TEST(test_readonly_closes_the_connection),
        UNIT_TEST(test_error_replies),
        UNIT_TEST(test_wait_shortfall_asks_the_sentinels),
        UNIT_TEST(test_replaced_master_answer_is_not_used),
        UNIT_TEST(test_max_age),
    };
    /* The fallback: what a load decides, with every load by the script. */
    const struct CMUnitTest script[] = {
        UNIT_TEST(test_round_trip),
        UNIT_TEST(test_keys_and_ttls),
        UNIT_TEST(test_expired_records_are_deleted),
        UNIT_TEST(test_touch_only_when_due),
        UNIT_TEST(test_one_round_trip_each),
        UNIT_TEST(test_load_commands),
        UNIT_TEST(test_save_modes),
        UNIT_TEST(test_update_is_compare_and_set),
        UNIT_TEST(test_v1_records),
        UNIT_TEST(test_sealed_records),
        UNIT_TEST(test_session_api_over_redis),
        UNIT_TEST(test_auth),
        UNIT_TEST(test_readonly_closes_the_connection),
        UNIT_TEST(test_error_replies),
        UNIT_TEST(test_threads),
    };
    int failed;

    /* A write to a socket Redis closed must be an error, not a death. */
    signal(SIGPIPE, SIG_IGN);
    failed = unit_run("lean load", tests, UNIT_COUNT(tests), group_setup_lean, group_teardown);
    failed +=
        unit_run("script load", script, UNIT_COUNT(script), group_setup_script, group_teardown);
    return failed;
}
