/* test_redis_cluster.c - the redirect state machine of the cluster layer
 * (ss_redis_cluster_step), on error replies as Redis sends them: MOVED and
 * ASK followed once each, TRYAGAIN and CLUSTERDOWN paused and retried while
 * the deadline allows, anything else handed back. No server needed; the
 * routing over real nodes is tests/e2e/test_cluster.sh. */
#include <hiredis.h>

#include "ss_redis_cluster.h"
#include "unit.h"

#define MS apr_time_from_msec(1)

static apr_pool_t *pool;

static int setup(void **state)
{
    (void)state;
    return apr_pool_create(&pool, NULL) == APR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    apr_pool_destroy(pool);
    return 0;
}

/* A reply of type with text s (hiredis frees what it allocated). */
static redisReply *reply_of(const char *resp)
{
    redisReader *r = redisReaderCreate();
    void *reply = NULL;

    assert_int_equal(redisReaderFeed(r, resp, strlen(resp)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(r);
    return reply;
}

typedef struct {
    ss_redis_redirects_t st;
    ss_redis_addr_t to;
    unsigned slot;
    apr_interval_time_t pause;
    const char *why;
} run_t;

static ss_redis_cluster_step_e step(run_t *run, const char *resp, apr_time_t now,
                                    apr_time_t deadline)
{
    redisReply *r = reply_of(resp);
    ss_redis_cluster_step_e e;

    run->why = NULL;
    e = ss_redis_cluster_step(&run->st, r, now, deadline, &run->to, &run->slot, &run->pause,
                              &run->why, pool);
    freeReplyObject(r);
    return e;
}

static void test_final_replies(void **state)
{
    run_t run;

    (void)state;
    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "+OK\r\n", 0, 1000 * MS), SS_CLUSTER_DONE);
    assert_int_equal(step(&run, "$-1\r\n", 0, 1000 * MS), SS_CLUSTER_DONE);
    assert_int_equal(step(&run, ":1\r\n", 0, 1000 * MS), SS_CLUSTER_DONE);
    /* Other errors are the caller's (WRONGTYPE, CROSSSLOT, NOSCRIPT...). */
    assert_int_equal(step(&run, "-WRONGTYPE Operation against a key\r\n", 0, 1000 * MS),
                     SS_CLUSTER_DONE);
    assert_int_equal(
        step(&run, "-CROSSSLOT Keys in request don't hash to the same slot\r\n", 0, 1000 * MS),
        SS_CLUSTER_DONE);
    /* A word that merely starts like a redirect is not one. */
    assert_int_equal(step(&run, "-MOVEDX 1 h:1\r\n", 0, 1000 * MS), SS_CLUSTER_DONE);
    assert_int_equal(step(&run, "-ASKING\r\n", 0, 1000 * MS), SS_CLUSTER_DONE);
}

static void test_moved_once(void **state)
{
    run_t run;

    (void)state;
    memset(&run, 0, sizeof(run));
    /* As recorded from redis-server 7.0.15 (tests/unit/data/moved.resp). */
    assert_int_equal(step(&run, "-MOVED 12182 127.0.0.1:28659\r\n", 0, 1000 * MS),
                     SS_CLUSTER_MOVED);
    assert_int_equal(run.slot, 12182);
    assert_string_equal(run.to.host, "127.0.0.1");
    assert_int_equal(run.to.port, 28659);
    /* Then ASK is still followed (the new owner is migrating the slot). */
    assert_int_equal(step(&run, "-ASK 12182 127.0.0.1:7002\r\n", 0, 1000 * MS), SS_CLUSTER_ASK);
    assert_int_equal(run.to.port, 7002);
    /* A second MOVED is not: the map is stale, the operation fails. */
    assert_int_equal(step(&run, "-MOVED 12182 127.0.0.1:7003\r\n", 0, 1000 * MS), SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "MOVED again"));
}

static void test_ask_once(void **state)
{
    run_t run;

    (void)state;
    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "-ASK 0 [::1]:7000\r\n", 0, 1000 * MS), SS_CLUSTER_ASK);
    assert_int_equal(run.slot, 0);
    assert_string_equal(run.to.host, "::1");
    assert_int_equal(step(&run, "-ASK 0 [::1]:7001\r\n", 0, 1000 * MS), SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "ASK again"));

    /* The node that answered, named by an empty host (cluster-preferred-endpoint-type unknown). */
    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "-MOVED 16383 :7000\r\n", 0, 1000 * MS), SS_CLUSTER_MOVED);
    assert_string_equal(run.to.host, "");
    assert_int_equal(run.slot, 16383);
}

static void test_malformed_redirects(void **state)
{
    static const char *const bad[] = {
        "-MOVED\r\n",     "-MOVED 12 \r\n", "-MOVED x h:1\r\n", "-MOVED 16384 h:1\r\n",
        "-MOVED 1 h\r\n", "-ASK 1 h:0\r\n", "-ASK 1x h:1\r\n",  "-ASK 1 h:1:x\r\n",
    };
    size_t i;

    (void)state;
    for (i = 0; i < UNIT_COUNT(bad); i++) {
        run_t run;

        memset(&run, 0, sizeof(run));
        if (step(&run, bad[i], 0, 1000 * MS) != SS_CLUSTER_FAIL) {
            fail_msg("'%s' was followed", bad[i]);
        }
        assert_non_null(strstr(run.why, "malformed"));
    }
}

/* TRYAGAIN and CLUSTERDOWN: pauses of 10, 20, 40... ms, at most 200, while
 * the next one ends before the deadline. */
static void test_pauses_within_deadline(void **state)
{
    run_t run;
    apr_time_t now = 0, deadline = 600 * MS;
    int n = 0;

    (void)state;
    memset(&run, 0, sizeof(run));
    while (step(&run,
                n % 2 ? "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
                      : "-CLUSTERDOWN The cluster is down\r\n",
                now, deadline) == SS_CLUSTER_PAUSE) {
        assert_true(run.pause == (n < 5 ? (10 << n) * MS : 200 * MS));
        now += run.pause;
        n++;
        assert_true(n < 20);
    }
    /* 10+20+40+80+160 = 310 ms; 200 more = 510; another 200 would pass 600. */
    assert_int_equal(n, 6);
    assert_true(now == 510 * MS);
    assert_non_null(run.why);
    assert_int_equal(run.st.paused, 6);

    /* No time left at all: no pause. */
    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "-CLUSTERDOWN Hash slot not served\r\n", 595 * MS, 600 * MS),
                     SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "CLUSTERDOWN"));
    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "-TRYAGAIN\r\n", 595 * MS, 600 * MS), SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "TRYAGAIN"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_final_replies),
        UNIT_TEST(test_moved_once),
        UNIT_TEST(test_ask_once),
        UNIT_TEST(test_malformed_redirects),
        UNIT_TEST(test_pauses_within_deadline),
    };

    return UNIT_RUN(tests);
}
