/* test_redis_replication.c - the INFO replication parser, on replies
 * recorded from Debian's redis-server 7.0.15 (tests/unit/data/):
 *
 *   info-replication-master.txt   a master with two replicas, the second
 *                                 stopped (SIGSTOP) while 50 SETs went on:
 *                                 lag=4, offset 79 against 3455
 *   info-replication-replica.txt  one of its replicas (redis-cli's raw
 *                                 output of INFO replication, from another
 *                                 run of the same setup)
 */
#include "ss_redis_replication.h"
#include "unit.h"

static void test_master(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_replication_t r;

    assert_int_equal(ss_redis_replication_parse(
                         unit_read_data("info-replication-master.txt", NULL, pool), &r, pool),
                     APR_SUCCESS);
    assert_string_equal(r.role, "master");
    assert_null(r.master_addr);
    assert_int_equal(r.connected, 2);
    assert_int_equal(r.nreplicas, 2);
    assert_int_equal(r.master_offset, 3455);
    assert_string_equal(r.replicas[0].addr, "127.0.0.1:44456");
    assert_string_equal(r.replicas[0].state, "online");
    assert_int_equal(r.replicas[0].offset, 3455);
    assert_int_equal(r.replicas[0].behind, 0);
    assert_int_equal(r.replicas[0].lag_sec, 0);
    assert_string_equal(r.replicas[1].addr, "127.0.0.1:44463");
    assert_int_equal(r.replicas[1].offset, 79);
    assert_int_equal(r.replicas[1].behind, 3376);
    assert_int_equal(r.replicas[1].lag_sec, 4);
    assert_string_equal(ss_redis_replication_describe(&r, pool),
                        "2 connected: 127.0.0.1:44456 state=online lag=0 s offset_behind=0; "
                        "127.0.0.1:44463 state=online lag=4 s offset_behind=3376");
}

static void test_replica(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_replication_t r;

    assert_int_equal(ss_redis_replication_parse(
                         unit_read_data("info-replication-replica.txt", NULL, pool), &r, pool),
                     APR_SUCCESS);
    assert_string_equal(r.role, "slave");
    assert_string_equal(r.master_addr, "127.0.0.1:43689");
    assert_int_equal(r.connected, 0);
    assert_int_equal(r.nreplicas, 0);
    assert_string_equal(ss_redis_replication_describe(&r, pool), "replica of 127.0.0.1:43689");
}

static void test_edge_cases(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_replication_t r;
    const char *many;
    int i;

    assert_int_equal(ss_redis_replication_parse("", &r, pool), APR_EINVAL);
    assert_int_equal(
        ss_redis_replication_parse("# Replication\r\nconnected_slaves:0\r\n", &r, pool),
        APR_EINVAL);
    /* No final newline, an IPv6 replica, one without a port (left out),
     * one with a malformed offset, unknown fields. */
    assert_int_equal(
        ss_redis_replication_parse("role:master\r\nconnected_slaves:3\r\n"
                                   "slave0:ip=::1,port=7001,state=send_bulk,offset=10,lag=1,x=y\r\n"
                                   "slave1:ip=10.0.0.2,state=online,offset=5,lag=0\r\n"
                                   "slave2:ip=10.0.0.3,port=7003,state=online,offset=5x,lag=\r\n"
                                   "master_repl_offset:12",
                                   &r, pool),
        APR_SUCCESS);
    assert_int_equal(r.connected, 3);
    assert_int_equal(r.nreplicas, 2);
    assert_string_equal(r.replicas[0].addr, "[::1]:7001");
    assert_string_equal(r.replicas[0].state, "send_bulk");
    assert_int_equal(r.replicas[0].behind, 2);
    assert_string_equal(r.replicas[1].addr, "10.0.0.3:7003");
    assert_int_equal(r.replicas[1].offset, -1);
    assert_int_equal(r.replicas[1].behind, -1);
    assert_int_equal(r.replicas[1].lag_sec, -1);
    assert_string_equal(ss_redis_replication_describe(&r, pool),
                        "3 connected: [::1]:7001 state=send_bulk lag=1 s offset_behind=2; "
                        "10.0.0.3:7003 state=online lag=? s offset_behind=? (1 more not listed)");
    /* More replicas than are listed: the count stays right, the list bounded. */
    many = "role:master\nconnected_slaves:20\n";
    for (i = 0; i < 20; i++) {
        many = apr_psprintf(pool, "%sslave%d:ip=10.0.0.%d,port=6379,state=online,offset=1,lag=0\n",
                            many, i, i);
    }
    assert_int_equal(ss_redis_replication_parse(many, &r, pool), APR_SUCCESS);
    assert_int_equal(r.connected, 20);
    assert_int_equal(r.nreplicas, SS_STORE_REPLICAS_LISTED);
    assert_int_equal(r.master_offset, -1);
    assert_int_equal(r.replicas[0].behind, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_master),
        UNIT_POOL_TEST(test_replica),
        UNIT_POOL_TEST(test_edge_cases),
    };

    return UNIT_RUN(tests);
}
