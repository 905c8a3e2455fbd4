/* test_redis_sentinel.c - finding the master through sentinels
 * (ss_redis_sentinel.c): sentinels asked in order, the one that answers moved
 * to the front, AUTH with the sentinel credentials, "no sentinel reachable"
 * and "unknown master name" told apart, an answer reused while fresh and
 * asked again when suspected, a new address a new generation. The sentinels
 * are fakes in a thread of this process (a real redis-server cannot say
 * where a master is); nothing else is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ss_log.h"
#include "ss_redis_config.h"
#include "ss_redis_sentinel.h"
#include "unit.h"
#include "unit_redis.h"

/* A fake sentinel: answers AUTH with +OK (or an error when the password is
 * wrong), get-master-addr-by-name with `master` ("host:port") or a null
 * when master is NULL. */
typedef struct {
    int fd, port;
    pthread_t tid;
    volatile int stop;
    const char *password; /* NULL: AUTH refused as unconfigured */
    const char *host;
    const char *mport;
    volatile int asked;     /* get-master-addr-by-name received */
    volatile int auth_seen; /* AUTH received with the right password */
} fake_t;

static void send_str(int c, const char *s)
{
    (void)!write(c, s, strlen(s));
}

static void answer(fake_t *f, int c, const redisReply *cmd)
{
    char buf[256];

    if (cmd->type != REDIS_REPLY_ARRAY || cmd->elements < 1) {
        send_str(c, "-ERR protocol\r\n");
    } else if (!strcasecmp(cmd->element[0]->str, "AUTH")) {
        const char *pw = cmd->element[cmd->elements - 1]->str;

        if (f->password && !strcmp(pw, f->password)) {
            f->auth_seen = 1;
            send_str(c, "+OK\r\n");
        } else {
            send_str(c, f->password ? "-WRONGPASS invalid password\r\n"
                                    : "-ERR AUTH called without any password configured\r\n");
        }
    } else if (!strcasecmp(cmd->element[0]->str, "SENTINEL") && cmd->elements == 3) {
        f->asked++;
        if (!f->host) {
            send_str(c, "*-1\r\n");
        } else {
            snprintf(buf, sizeof(buf), "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(f->host),
                     f->host, strlen(f->mport), f->mport);
            send_str(c, buf);
        }
    } else {
        send_str(c, "-ERR unknown command\r\n");
    }
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;

    while (!f->stop) {
        struct pollfd p = {f->fd, POLLIN, 0};
        redisReader *rd;
        char buf[4096];
        int c;

        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        c = accept(f->fd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        rd = redisReaderCreate();
        for (;;) {
            struct pollfd q = {c, POLLIN, 0};
            void *cmd = NULL;
            ssize_t n;

            if (poll(&q, 1, 1000) <= 0 || (n = read(c, buf, sizeof(buf))) <= 0) {
                break;
            }
            redisReaderFeed(rd, buf, (size_t)n);
            while (redisReaderGetReply(rd, &cmd) == REDIS_OK && cmd) {
                answer(f, c, cmd);
                freeReplyObject(cmd);
                cmd = NULL;
            }
        }
        redisReaderFree(rd);
        close(c);
    }
    return NULL;
}

static void fake_start(fake_t *f, const char *password, const char *host, const char *mport)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int one = 1;

    memset(f, 0, sizeof(*f));
    f->password = password;
    f->host = host;
    f->mport = mport;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(f->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(listen(f->fd, 16), 0);
    assert_int_equal(pthread_create(&f->tid, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f)
{
    f->stop = 1;
    pthread_join(f->tid, NULL);
    close(f->fd);
}

static apr_pool_t *pool;
static unit_tlog_t tlog;

static int setup(void **state)
{
    (void)state;
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS ||
        apr_thread_mutex_create(&tlog.mutex, APR_THREAD_MUTEX_DEFAULT, pool) != APR_SUCCESS) {
        return -1;
    }
    unit_tlog_reset(&tlog);
    ss_log_set(unit_tlog_capture, &tlog);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ss_log_set(NULL, NULL);
    apr_pool_destroy(pool);
    pool = NULL;
    return 0;
}

static ss_redis_sentinel_t *make(const char *uri)
{
    ss_redis_config_t *cfg = NULL;
    ss_redis_sentinel_t *s = NULL;
    char err[SS_REDIS_ERR_LEN];
    const char *perr = ss_redis_parse(&cfg, uri, pool);

    if (perr) {
        fail_msg("%s: %s", uri, perr);
    }
    assert_int_equal(ss_redis_sentinel_create(&s, cfg, "test", pool, err, sizeof(err)),
                     APR_SUCCESS);
    return s;
}

static apr_time_t soon(void)
{
    return ss_redis_clock() + apr_time_from_sec(2);
}

static void test_first_answer_moves_to_the_front(void **state)
{
    fake_t a, b;
    int dead = free_port();
    ss_redis_sentinel_t *s;
    ss_redis_endpoint_t *ep, *ep2;
    unsigned gen, gen2;
    char err[SS_REDIS_ERR_LEN];
    const char *d;

    (void)state;
    fake_start(&a, NULL, NULL, NULL);          /* knows no such master */
    fake_start(&b, NULL, "127.0.0.1", "6390"); /* knows it */
    s = make(apr_psprintf(pool, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/m", dead,
                          a.port, b.port));
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep, &gen, err, sizeof(err)), APR_SUCCESS);
    assert_int_equal(a.asked, 1);
    assert_int_equal(b.asked, 1);
    d = ss_redis_sentinel_describe(s, pool);
    assert_non_null(strstr(d, "master 127.0.0.1:6390"));
    assert_non_null(strstr(d, apr_psprintf(pool, "sentinel 127.0.0.1:%d", b.port)));
    assert_true(unit_tlog_has(&tlog, "master 'm' is at 127.0.0.1:6390"));

    /* Fresh: not asked again. Suspected: asked again, the answerer first. */
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep2, &gen2, err, sizeof(err)),
                     APR_SUCCESS);
    assert_ptr_equal(ep, ep2);
    assert_int_equal(gen, gen2);
    assert_int_equal(b.asked, 1);
    ss_redis_sentinel_suspect(s, gen);
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep2, &gen2, err, sizeof(err)),
                     APR_SUCCESS);
    assert_int_equal(b.asked, 2);
    assert_int_equal(a.asked, 1); /* b is now first */
    assert_ptr_equal(ep, ep2);    /* same address: same endpoint, same generation */
    assert_int_equal(gen, gen2);

    /* The master moves: a new generation, another endpoint. */
    b.mport = "6391";
    ss_redis_sentinel_suspect(s, gen);
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep2, &gen2, err, sizeof(err)),
                     APR_SUCCESS);
    assert_true(ep2 != ep);
    assert_int_equal(gen2, gen + 1);
    assert_int_equal(ss_redis_sentinel_gen(s), gen2);
    /* A suspicion about an older generation changes nothing. */
    ss_redis_sentinel_suspect(s, gen);
    assert_int_equal(ss_redis_sentinel_refresh(s, soon(), SS_REDIS_SENTINEL_FRESH), 0);
    assert_int_equal(b.asked, 3);
    /* Refresh asks when the answer is older than asked for. */
    assert_int_equal(ss_redis_sentinel_refresh(s, soon(), 0), 1);
    assert_int_equal(b.asked, 4);
    fake_stop(&a);
    fake_stop(&b);
}

static void test_failures_are_told_apart(void **state)
{
    fake_t a;
    ss_redis_sentinel_t *s;
    ss_redis_endpoint_t *ep;
    unsigned gen;
    char err[SS_REDIS_ERR_LEN];

    (void)state;
    s = make(apr_psprintf(pool, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/m", free_port(),
                          free_port()));
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep, &gen, err, sizeof(err)),
                     APR_ECONNREFUSED);
    assert_non_null(strstr(err, "no sentinel reachable: 2 of 2 asked"));
    assert_true(unit_tlog_has(&tlog, "no sentinel reachable"));
    assert_string_equal(ss_redis_sentinel_describe(s, pool),
                        "master not known yet in this process");

    fake_start(&a, NULL, NULL, NULL);
    s = make(apr_psprintf(pool, "redis-sentinel://127.0.0.1:%d/nosuch", a.port));
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep, &gen, err, sizeof(err)),
                     APR_EGENERAL);
    assert_non_null(strstr(err, "unknown master name 'nosuch'"));
    assert_true(unit_tlog_has(&tlog, "unknown master name 'nosuch'"));

    /* A password the sentinel does not take. */
    s = make(apr_psprintf(pool, "redis-sentinel://127.0.0.1:%d/m?sentinel_password=x", a.port));
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep, &gen, err, sizeof(err)),
                     APR_EGENERAL);
    assert_non_null(strstr(err, "sentinels refused"));
    assert_non_null(strstr(err, "refused AUTH"));
    assert_null(strstr(err, "=x"));
    fake_stop(&a);
}

static void test_sentinel_password(void **state)
{
    fake_t a;
    ss_redis_sentinel_t *s;
    ss_redis_endpoint_t *ep;
    unsigned gen;
    char err[SS_REDIS_ERR_LEN];

    (void)state;
    fake_start(&a, "s3cret", "127.0.0.1", "7000");
    s = make(apr_psprintf(pool,
                          "redis-sentinel://u:datapw@127.0.0.1:%d/m?sentinel_user=w&"
                          "sentinel_password=s3cret",
                          a.port));
    assert_int_equal(ss_redis_sentinel_master(s, soon(), &ep, &gen, err, sizeof(err)), APR_SUCCESS);
    assert_int_equal(a.auth_seen, 1);
    fake_stop(&a);
}

static void test_is_master(void **state)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    static const char master[] = "*3\r\n$6\r\nmaster\r\n:10\r\n*0\r\n";
    static const char replica[] = "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n"
                                  "$9\r\nconnected\r\n:10\r\n";

    (void)state;
    redisReaderFeed(rd, master, sizeof(master) - 1);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_true(ss_redis_sentinel_is_master(r));
    freeReplyObject(r);
    redisReaderFeed(rd, replica, sizeof(replica) - 1);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_false(ss_redis_sentinel_is_master(r));
    freeReplyObject(r);
    assert_false(ss_redis_sentinel_is_master(NULL));
    redisReaderFree(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_first_answer_moves_to_the_front),
        UNIT_TEST(test_failures_are_told_apart),
        UNIT_TEST(test_sentinel_password),
        UNIT_TEST(test_is_master),
    };

    return UNIT_RUN(tests);
}
