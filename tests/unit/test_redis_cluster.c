/* test_redis_cluster.c - the redirect state machine of the cluster layer
 * (ss_redis_cluster_step), on error replies as Redis sends them: MOVED and
 * ASK followed once each, TRYAGAIN and CLUSTERDOWN paused and retried while
 * the deadline allows, anything else handed back. Then the store over two
 * real cluster nodes (redis-server --cluster-enabled yes), a slot migrated
 * from one to the other by hand: ASK followed with ASKING while the slot is
 * half-way, MOVED once it has moved, the load script loaded again on the
 * node that answered NOSCRIPT. Failover and redis-cli --cluster reshard
 * under load are tests/e2e/test_cluster.sh. */
#include <hiredis.h>

#include "ss_redis.h"
#include "ss_redis_cluster.h"
#include "ss_redis_slot.h"
#include "unit.h"
#include "unit_redis.h"

#define MS apr_time_from_msec(1)

static server_t node_a, node_b; /* test_two_nodes' servers, stopped by the teardown */

static void stop_node(server_t *srv);

/* Each test has a fresh pool as its state (unit_pool_setup); the teardown
 * stops test_two_nodes' servers before the pool goes. */
static int teardown(void **state)
{
    stop_node(&node_a);
    stop_node(&node_b);
    return unit_pool_teardown(state);
}

#define CLUSTER_TEST(fn) cmocka_unit_test_setup_teardown(fn, unit_pool_setup, teardown)

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
                                    apr_time_t deadline, apr_pool_t *pool)
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
    apr_pool_t *pool = *state;
    run_t run;

    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "+OK\r\n", 0, 1000 * MS, pool), SS_CLUSTER_DONE);
    assert_int_equal(step(&run, "$-1\r\n", 0, 1000 * MS, pool), SS_CLUSTER_DONE);
    assert_int_equal(step(&run, ":1\r\n", 0, 1000 * MS, pool), SS_CLUSTER_DONE);
    /* Other errors are the caller's (WRONGTYPE, CROSSSLOT, NOSCRIPT...). */
    assert_int_equal(step(&run, "-WRONGTYPE Operation against a key\r\n", 0, 1000 * MS, pool),
                     SS_CLUSTER_DONE);
    assert_int_equal(step(&run, "-CROSSSLOT Keys in request don't hash to the same slot\r\n", 0,
                          1000 * MS, pool),
                     SS_CLUSTER_DONE);
    /* A word that merely starts like a redirect is not one. */
    assert_int_equal(step(&run, "-MOVEDX 1 h:1\r\n", 0, 1000 * MS, pool), SS_CLUSTER_DONE);
    assert_int_equal(step(&run, "-ASKING\r\n", 0, 1000 * MS, pool), SS_CLUSTER_DONE);
}

static void test_moved_once(void **state)
{
    apr_pool_t *pool = *state;
    run_t run;

    memset(&run, 0, sizeof(run));
    /* As recorded from redis-server 7.0.15 (tests/unit/data/moved.resp). */
    assert_int_equal(step(&run, "-MOVED 12182 127.0.0.1:28659\r\n", 0, 1000 * MS, pool),
                     SS_CLUSTER_MOVED);
    assert_int_equal(run.slot, 12182);
    assert_string_equal(run.to.host, "127.0.0.1");
    assert_int_equal(run.to.port, 28659);
    /* Then ASK is still followed (the new owner is migrating the slot). */
    assert_int_equal(step(&run, "-ASK 12182 127.0.0.1:7002\r\n", 0, 1000 * MS, pool),
                     SS_CLUSTER_ASK);
    assert_int_equal(run.to.port, 7002);
    /* A second MOVED is not: the map is stale, the operation fails. */
    assert_int_equal(step(&run, "-MOVED 12182 127.0.0.1:7003\r\n", 0, 1000 * MS, pool),
                     SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "MOVED again"));
}

static void test_ask_once(void **state)
{
    apr_pool_t *pool = *state;
    run_t run;

    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "-ASK 0 [::1]:7000\r\n", 0, 1000 * MS, pool), SS_CLUSTER_ASK);
    assert_int_equal(run.slot, 0);
    assert_string_equal(run.to.host, "::1");
    assert_int_equal(step(&run, "-ASK 0 [::1]:7001\r\n", 0, 1000 * MS, pool), SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "ASK again"));

    /* The node that answered, named by an empty host (cluster-preferred-endpoint-type unknown). */
    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "-MOVED 16383 :7000\r\n", 0, 1000 * MS, pool), SS_CLUSTER_MOVED);
    assert_string_equal(run.to.host, "");
    assert_int_equal(run.slot, 16383);
}

static void test_malformed_redirects(void **state)
{
    apr_pool_t *pool = *state;
    static const char *const bad[] = {
        "-MOVED\r\n",     "-MOVED 12 \r\n", "-MOVED x h:1\r\n", "-MOVED 16384 h:1\r\n",
        "-MOVED 1 h\r\n", "-ASK 1 h:0\r\n", "-ASK 1x h:1\r\n",  "-ASK 1 h:1:x\r\n",
    };
    size_t i;

    for (i = 0; i < UNIT_COUNT(bad); i++) {
        run_t run;

        memset(&run, 0, sizeof(run));
        if (step(&run, bad[i], 0, 1000 * MS, pool) != SS_CLUSTER_FAIL) {
            fail_msg("'%s' was followed", bad[i]);
        }
        assert_non_null(strstr(run.why, "malformed"));
    }
}

/* TRYAGAIN and CLUSTERDOWN: pauses of 10, 20, 40... ms, at most 200, while
 * the next one ends before the deadline. */
static void test_pauses_within_deadline(void **state)
{
    apr_pool_t *pool = *state;
    run_t run;
    apr_time_t now = 0, deadline = 600 * MS;
    int n = 0;

    memset(&run, 0, sizeof(run));
    while (step(&run,
                n % 2 ? "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
                      : "-CLUSTERDOWN The cluster is down\r\n",
                now, deadline, pool) == SS_CLUSTER_PAUSE) {
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
    assert_int_equal(step(&run, "-CLUSTERDOWN Hash slot not served\r\n", 595 * MS, 600 * MS, pool),
                     SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "CLUSTERDOWN"));
    memset(&run, 0, sizeof(run));
    assert_int_equal(step(&run, "-TRYAGAIN\r\n", 595 * MS, 600 * MS, pool), SS_CLUSTER_FAIL);
    assert_non_null(strstr(run.why, "TRYAGAIN"));
}

/* ---- two real nodes ---- */

static redisReply *admin(const server_t *srv, const char *fmt, ...)
{
    redisContext *c = admin_connect(srv);
    redisReply *r;
    va_list ap;

    assert_non_null(c);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    return r;
}

static void admin_ok(const server_t *srv, const char *fmt, const char *a, const char *b)
{
    redisReply *r = admin(srv, fmt, a, b);

    if (r->type == REDIS_REPLY_ERROR) {
        fail_msg("%s: %s", fmt, r->str);
    }
    freeReplyObject(r);
}

/* Keys held (EXISTS would be redirected while the slot is importing). */
static long long dbsize(const server_t *srv)
{
    redisReply *r = admin(srv, "DBSIZE");
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

    freeReplyObject(r);
    return n;
}

static char *node_id(const server_t *srv, apr_pool_t *pool)
{
    redisReply *r = admin(srv, "CLUSTER MYID");
    char *id = apr_pstrdup(pool, r->str);

    freeReplyObject(r);
    return id;
}

/* Both nodes agree: two nodes, every slot assigned, state ok. */
static int agreed(const server_t *srv)
{
    redisReply *r = admin(srv, "CLUSTER INFO");
    int ok = r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok") &&
             strstr(r->str, "cluster_known_nodes:2") &&
             strstr(r->str, "cluster_slots_assigned:16384");

    freeReplyObject(r);
    return ok;
}

static void start_node(server_t *srv, const char *binary, char *bus)
{
    const char *extra[] = {"--cluster-enabled",
                           "yes",
                           "--cluster-config-file",
                           "nodes.conf",
                           "--cluster-port",
                           bus,
                           NULL};

    snprintf(bus, 16, "%d", free_port());
    assert_int_equal(server_start(srv, binary, extra), 0);
}

static void stop_node(server_t *srv)
{
    char path[128];

    if (!srv->dir[0]) {
        return;
    }
    server_kill(srv);
    snprintf(path, sizeof(path), "%s/nodes.conf", srv->dir);
    unlink(path);
    server_destroy(srv);
}

static ss_store_stats_t stats_of(ss_store_t *store)
{
    ss_store_stats_t st;

    assert_int_equal(store->ops->stats(store, &st), APR_SUCCESS);
    return st;
}

static void test_two_nodes(void **state)
{
    apr_pool_t *pool = *state;
    const char *binary = unit_redis_binary();
    server_t *a = &node_a, *b = &node_b;
    char bus_a[16], bus_b[16], hex[SS_KEY_HEX_LEN + 1], *name, *a_id, *b_id, slot_s[8];
    ss_expiry_t e = {600 * apr_time_from_sec(1), 0};
    apr_time_t now = apr_time_now();
    ss_record_t rec = {now, now, "alice", "n=1", 3, 1}, out;
    ss_redis_config_t *cfg = NULL;
    ss_store_t *store = NULL;
    ss_key_t key;
    unsigned slot;
    int i;

    assert_non_null(binary);
    start_node(a, binary, bus_a);
    start_node(b, binary, bus_b);
    freeReplyObject(admin(a, "CLUSTER ADDSLOTSRANGE 0 16383"));
    freeReplyObject(admin(a, "CLUSTER MEET 127.0.0.1 %d %s", b->port, bus_b));
    for (i = 0; i < 500 && !(agreed(a) && agreed(b)); i++) {
        usleep(20000);
    }
    assert_true(agreed(a) && agreed(b));
    a_id = node_id(a, pool);
    b_id = node_id(b, pool);

    /* Every load by the script: it must be loaded on each node in turn. */
    setenv(SS_REDIS_LOAD_ENV, "script", 1);
    assert_null(ss_redis_parse(
        &cfg, apr_psprintf(pool, "redis-cluster://127.0.0.1:%d?prefix=t:", a->port), pool));
    assert_int_equal(ss_redis_open(&store, cfg, pool), APR_SUCCESS);
    unsetenv(SS_REDIS_LOAD_ENV);
    assert_int_equal(store->ops->ping(store), APR_SUCCESS);
    assert_int_equal(stats_of(store).cluster_nodes, 2);
    assert_int_equal(stats_of(store).slotmap_refreshes, 1);

    assert_int_equal(ss_id_key("a session id of this test", &key), APR_SUCCESS);
    ss_key_hex(&key, hex);
    name = apr_pstrcat(pool, "t:", hex, NULL);
    slot = ss_redis_slot(name, strlen(name));
    snprintf(slot_s, sizeof(slot_s), "%u", slot);
    assert_int_equal(store->ops->save(store, &key, &rec, 0, SS_SAVE_NEW, (apr_size_t)-1, pool),
                     APR_SUCCESS);
    assert_int_equal(store->ops->load(store, &key, &e, &e, now, pool, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "n=1");

    /* Half-way: the key is on B, A still owns the slot (MIGRATING). */
    admin_ok(b, "CLUSTER SETSLOT %s IMPORTING %s", slot_s, a_id);
    admin_ok(a, "CLUSTER SETSLOT %s MIGRATING %s", slot_s, b_id);
    freeReplyObject(admin(a, "MIGRATE 127.0.0.1 %d %s 0 5000", b->port, name));
    assert_int_equal(dbsize(b), 1);
    assert_int_equal(dbsize(a), 0);
    assert_int_equal(store->ops->load(store, &key, &e, &e, now, pool, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "n=1");
    assert_int_equal(stats_of(store).asked, 1);
    assert_int_equal(stats_of(store).moved, 0);
    rec.payload = "n=2";
    rec.revision = out.revision + 1; /* compare-and-set on the revision loaded */
    assert_int_equal(store->ops->save(store, &key, &rec, 0, SS_SAVE_UPDATE, (apr_size_t)-1, pool),
                     APR_SUCCESS);
    assert_int_equal(stats_of(store).asked, 2);

    /* Moved: A answers MOVED once, then the map knows (read again: the
     * last read is older than the interval). */
    apr_sleep(SS_REDIS_CLUSTER_REFRESH_MIN + apr_time_from_msec(50));
    admin_ok(b, "CLUSTER SETSLOT %s NODE %s", slot_s, b_id);
    admin_ok(a, "CLUSTER SETSLOT %s NODE %s", slot_s, b_id);
    assert_int_equal(store->ops->load(store, &key, &e, &e, now, pool, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "n=2");
    assert_int_equal(stats_of(store).moved, 1);
    assert_int_equal(store->ops->load(store, &key, &e, &e, now, pool, &out), APR_SUCCESS);
    assert_int_equal(stats_of(store).moved, 1);
    assert_true(stats_of(store).slotmap_refreshes >= 2);
    assert_int_equal(stats_of(store).errors, 0);
    assert_int_equal(store->ops->remove(store, &key), APR_SUCCESS);
    assert_int_equal(dbsize(b), 0);
    store->ops->close(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CLUSTER_TEST(test_final_replies),
        CLUSTER_TEST(test_moved_once),
        CLUSTER_TEST(test_ask_once),
        CLUSTER_TEST(test_malformed_redirects),
        CLUSTER_TEST(test_pauses_within_deadline),
        CLUSTER_TEST(test_two_nodes),
    };

    return UNIT_RUN(tests);
}
