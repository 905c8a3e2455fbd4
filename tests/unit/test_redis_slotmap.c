/* test_redis_slotmap.c - the slot map parser, on replies recorded from a
 * real cluster (Debian's redis-server 7.0.15, three masters and three
 * replicas made by redis-cli --cluster create; tests/unit/data/):
 *
 *   shards.resp, slots.resp     CLUSTER SHARDS and CLUSTER SLOTS, all healthy
 *   moved.resp                  GET foo sent to the node that does not own it
 *   shards_failed.resp,         the same after kill -9 of the master on port
 *   slots_failed.resp           21640, once its replica had taken over
 *
 * 7.0.15 sends the slot numbers of CLUSTER SHARDS as integers; earlier 7.0.x
 * releases sent strings: the recorded reply is rewritten that way too. */
#include <hiredis.h>

#include "ss_redis_slotmap.h"
#include "unit.h"

#define FAILED_PORT 21640

/* Parse RESP text into one reply; free it with freeReplyObject. */
static redisReply *parse_resp(const char *buf, size_t len)
{
    redisReader *r = redisReaderCreate();
    void *reply = NULL;

    assert_non_null(r);
    assert_int_equal(redisReaderFeed(r, buf, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    redisReaderFree(r);
    if (!reply) {
        fail_msg("incomplete RESP");
    }
    return reply;
}

/* The recorded reply tests/unit/data/name. */
static redisReply *recorded(const char *name, apr_pool_t *pool)
{
    apr_size_t len;
    char *buf = unit_read_data(name, &len, pool);

    return parse_resp(buf, len);
}

/* The recorded SHARDS text with every slot number as a bulk string. */
static redisReply *shards_as_strings(apr_pool_t *pool)
{
    apr_size_t len;
    const char *in = unit_read_data("shards.resp", &len, pool), *end = in + len;
    char *out = apr_palloc(pool, len * 2 + 1), *o = out;
    static const char mark[] = "$5\r\nslots\r\n*";

    while (in < end) {
        const char *m = strstr(in, mark);
        size_t n;

        if (!m) {
            memcpy(o, in, (size_t)(end - in));
            o += end - in;
            break;
        }
        m += sizeof(mark) - 1;
        memcpy(o, in, (size_t)(m - in));
        o += m - in;
        n = strtoul(m, (char **)&in, 10);
        o += sprintf(o, "%zu\r\n", n);
        in += 2;
        while (n--) {
            const char *nl = strstr(in, "\r\n");

            assert_true(*in == ':');
            o += sprintf(o, "$%d\r\n%.*s\r\n", (int)(nl - in - 1), (int)(nl - in - 1), in + 1);
            in = nl + 2;
        }
    }
    return parse_resp(out, (size_t)(o - out));
}

/* Every slot has an owner, and the masters are three distinct nodes. */
static void check_full(const ss_redis_slotmap_t *map, int nodes)
{
    int s;

    assert_int_equal(map->nmasters, 3);
    assert_int_equal(map->nodes, nodes);
    for (s = 0; s < SS_REDIS_SLOTS; s++) {
        if (map->owner[s] < 0 || map->owner[s] >= map->nmasters) {
            fail_msg("slot %d: owner %d", s, map->owner[s]);
        }
    }
    for (s = 0; s < 3; s++) {
        assert_string_equal(map->masters[s].host, "127.0.0.1");
    }
    /* Every node listed once, the masters among them. */
    for (s = 0; s < map->nodes; s++) {
        int o;

        assert_string_equal(map->all[s].host, "127.0.0.1");
        for (o = 0; o < s; o++) {
            assert_int_not_equal(map->all[o].port, map->all[s].port);
        }
    }
    for (s = 0; s < 3; s++) {
        int o, found = 0;

        for (o = 0; o < map->nodes; o++) {
            found += map->all[o].port == map->masters[s].port;
        }
        assert_int_equal(found, 1);
    }
    assert_int_not_equal(map->masters[0].port, map->masters[1].port);
    assert_int_not_equal(map->masters[1].port, map->masters[2].port);
    assert_int_not_equal(map->masters[0].port, map->masters[2].port);
}

static int owner_port(const ss_redis_slotmap_t *map, unsigned slot)
{
    return map->masters[map->owner[slot]].port;
}

/* Two maps give every slot to the same address. */
static void check_same(const ss_redis_slotmap_t *a, const ss_redis_slotmap_t *b)
{
    int s;

    for (s = 0; s < SS_REDIS_SLOTS; s++) {
        if (owner_port(a, s) != owner_port(b, s)) {
            fail_msg("slot %d: %d against %d", s, owner_port(a, s), owner_port(b, s));
        }
    }
}

/* The owner of foo's slot is the node the recorded MOVED names. */
static void check_moved(const ss_redis_slotmap_t *map, apr_pool_t *pool)
{
    redisReply *moved = recorded("moved.resp", pool);
    ss_redis_addr_t addr;
    const char *sp;

    assert_int_equal(moved->type, REDIS_REPLY_ERROR);
    assert_int_equal(strncmp(moved->str, "MOVED 12182 ", 12), 0);
    assert_int_equal(ss_redis_slot("foo", 3), 12182);
    sp = moved->str + 12;
    assert_true(ss_redis_parse_hostport(sp, strlen(sp), &addr, pool));
    assert_int_equal(owner_port(map, 12182), addr.port);
    assert_int_equal(ss_redis_slotmap_find(map, addr.host, addr.port), map->owner[12182]);
    freeReplyObject(moved);
}

static void test_shards(void **state)
{
    apr_pool_t *pool = *state;
    redisReply *r = recorded("shards.resp", pool);
    ss_redis_slotmap_t *map = NULL;
    const char *err;

    err = ss_redis_slotmap_from_shards(&map, r, 0, NULL, pool);
    assert_null(err);
    check_full(map, 6);
    check_moved(map, pool);
    /* The recorded cluster has no TLS port: with tls the plain one stays. */
    {
        ss_redis_slotmap_t *tls = NULL;

        assert_null(ss_redis_slotmap_from_shards(&tls, r, 1, NULL, pool));
        check_same(map, tls);
    }
    freeReplyObject(r);
}

static void test_shards_strings(void **state)
{
    apr_pool_t *pool = *state;
    redisReply *ints = recorded("shards.resp", pool), *strs = shards_as_strings(pool);
    ss_redis_slotmap_t *a = NULL, *b = NULL;

    /* The rewrite did turn them into strings. */
    assert_int_equal(strs->element[0]->element[1]->element[0]->type, REDIS_REPLY_STRING);
    assert_null(ss_redis_slotmap_from_shards(&a, ints, 0, NULL, pool));
    assert_null(ss_redis_slotmap_from_shards(&b, strs, 0, NULL, pool));
    check_full(b, 6);
    check_same(a, b);
    freeReplyObject(ints);
    freeReplyObject(strs);
}

static void test_slots(void **state)
{
    apr_pool_t *pool = *state;
    redisReply *shards = recorded("shards.resp", pool), *slots = recorded("slots.resp", pool);
    ss_redis_slotmap_t *a = NULL, *b = NULL;

    assert_null(ss_redis_slotmap_from_shards(&a, shards, 0, NULL, pool));
    assert_null(ss_redis_slotmap_from_slots(&b, slots, NULL, pool));
    /* Recorded a moment after the cluster was made: the node asked did not
     * list the replicas yet (CLUSTER SHARDS did). */
    check_full(b, 3);
    check_same(a, b);
    check_moved(b, pool);
    freeReplyObject(shards);
    freeReplyObject(slots);
}

static void test_after_failover(void **state)
{
    apr_pool_t *pool = *state;
    redisReply *shards = recorded("shards_failed.resp", pool),
               *slots = recorded("slots_failed.resp", pool);
    redisReply *before = recorded("shards.resp", pool);
    ss_redis_slotmap_t *a = NULL, *b = NULL, *old = NULL;
    int s, moved = 0;

    assert_null(ss_redis_slotmap_from_shards(&a, shards, 0, NULL, pool));
    assert_null(ss_redis_slotmap_from_slots(&b, slots, NULL, pool));
    assert_null(ss_redis_slotmap_from_shards(&old, before, 0, NULL, pool));
    /* The failed master is still listed (role master, health fail): it is
     * not chosen, and not counted as a node. */
    check_full(a, 5);
    check_full(b, 5);
    check_same(a, b);
    assert_int_equal(ss_redis_slotmap_find(a, "127.0.0.1", FAILED_PORT), -1);
    for (s = 0; s < SS_REDIS_SLOTS; s++) {
        if (owner_port(old, s) == FAILED_PORT) {
            moved++;
            assert_int_not_equal(owner_port(a, s), FAILED_PORT);
        } else {
            assert_int_equal(owner_port(a, s), owner_port(old, s));
        }
    }
    assert_true(moved > 5000);
    freeReplyObject(shards);
    freeReplyObject(slots);
    freeReplyObject(before);
}

/* Hand-written replies: unknown and empty endpoints, gaps, bad input. */
static void test_edge_cases(void **state)
{
    static const char gap[] = "*2\r\n"
                              "*3\r\n:0\r\n:99\r\n*2\r\n$0\r\n\r\n:7000\r\n"
                              "*3\r\n:200\r\n:300\r\n*2\r\n$1\r\n?\r\n:7001\r\n";
    static const char *const bad[] = {
        "+OK\r\n",
        "*1\r\n*2\r\n:0\r\n:5\r\n",                              /* no master */
        "*1\r\n*3\r\n:6\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n",       /* start > end */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",   /* past the last slot */
        "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:0\r\n",       /* port 0 */
        "*1\r\n*3\r\n:0\r\n$2\r\n1x\r\n*2\r\n$1\r\nh\r\n:1\r\n", /* not a number */
    };
    static const char shard_nomaster[] =
        "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n"
        "$5\r\nnodes\r\n*1\r\n*4\r\n$4\r\nrole\r\n$7\r\nreplica\r\n"
        "$4\r\nport\r\n:1\r\n";
    static const char shard_tls[] = "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n$1\r\n0\r\n$5\r\n16383\r\n"
                                    "$5\r\nnodes\r\n*1\r\n*12\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
                                    "$4\r\nport\r\n:1\r\n$8\r\ntls-port\r\n:2\r\n"
                                    "$2\r\nip\r\n$3\r\n::1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n"
                                    "$6\r\nhealth\r\n$6\r\nonline\r\n";
    apr_pool_t *pool = *state;
    ss_redis_addr_t asked = {"10.1.2.3", 7777};
    ss_redis_slotmap_t *map = NULL;
    redisReply *r;
    size_t i;

    r = parse_resp(gap, strlen(gap));
    assert_null(ss_redis_slotmap_from_slots(&map, r, &asked, pool));
    assert_int_equal(map->nmasters, 1);
    assert_string_equal(map->masters[0].host, "10.1.2.3");
    assert_int_equal(map->masters[0].port, 7000);
    assert_int_equal(map->owner[0], 0);
    assert_int_equal(map->owner[99], 0);
    assert_int_equal(map->owner[100], -1);
    assert_int_equal(map->owner[250], -1); /* unknown endpoint */
    assert_int_equal(map->owner[16383], -1);
    freeReplyObject(r);

    for (i = 0; i < UNIT_COUNT(bad); i++) {
        map = NULL;
        r = parse_resp(bad[i], strlen(bad[i]));
        assert_non_null(ss_redis_slotmap_from_slots(&map, r, &asked, pool));
        assert_null(map);
        assert_non_null(ss_redis_slotmap_from_shards(&map, r, 0, &asked, pool));
        assert_null(map);
        freeReplyObject(r);
    }
    r = parse_resp(shard_nomaster, strlen(shard_nomaster));
    assert_non_null(ss_redis_slotmap_from_shards(&map, r, 0, NULL, pool));
    freeReplyObject(r);

    r = parse_resp(shard_tls, strlen(shard_tls));
    assert_null(ss_redis_slotmap_from_shards(&map, r, 1, NULL, pool));
    assert_string_equal(map->masters[0].host, "::1"); /* endpoint "?": the ip */
    assert_int_equal(map->masters[0].port, 2);
    assert_null(ss_redis_slotmap_from_shards(&map, r, 0, NULL, pool));
    assert_int_equal(map->masters[0].port, 1);
    assert_int_equal(map->owner[16383], 0);
    freeReplyObject(r);
}

static void test_hostport(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_addr_t a;

    assert_true(ss_redis_parse_hostport("127.0.0.1:7000", 14, &a, pool));
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 7000);
    assert_true(ss_redis_parse_hostport("[::1]:7001", 10, &a, pool));
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 7001);
    assert_true(ss_redis_parse_hostport("::1:7002", 8, &a, pool));
    assert_string_equal(a.host, "::1");
    assert_true(ss_redis_parse_hostport("redis-3.example:6379", 20, &a, pool));
    assert_string_equal(a.host, "redis-3.example");
    assert_true(ss_redis_parse_hostport(":6379", 5, &a, pool)); /* the node that answered */
    assert_string_equal(a.host, "");
    assert_false(ss_redis_parse_hostport("host", 4, &a, pool));
    assert_false(ss_redis_parse_hostport("host:", 5, &a, pool));
    assert_false(ss_redis_parse_hostport("host:0", 6, &a, pool));
    assert_false(ss_redis_parse_hostport("host:65536", 10, &a, pool));
    assert_false(ss_redis_parse_hostport("host:12x", 8, &a, pool));
    assert_false(ss_redis_parse_hostport("ho st:1", 7, &a, pool));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_shards),     UNIT_POOL_TEST(test_shards_strings),
        UNIT_POOL_TEST(test_slots),      UNIT_POOL_TEST(test_after_failover),
        UNIT_POOL_TEST(test_edge_cases), UNIT_POOL_TEST(test_hostport),
    };

    return UNIT_RUN(tests);
}
