/* test_metrics.c - the shared counters (ss_metrics), the timing store
 * wrapper (ss_metered) and the health probe (ss_health). */
#include <sys/wait.h>

#include "ss_health.h"
#include "ss_metered.h"
#include "ss_metrics.h"
#include "ss_redis.h"
#include "unit.h"
#include "unit_redis.h"

#define NSLOTS 4
#define T0 apr_time_from_sec(1700000000) /* an arbitrary "now" */
#define ARENA_SIZE (256 * 1024)
#define ARENA_MAX_RECORD 4096

typedef struct {
    unit_arena_t arena; /* first: unit_arena_create lays it out */
    apr_shm_t *shm;
    ss_metrics_t *m;
    apr_size_t size;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = unit_arena_create(sizeof(fixture_t));

    if (!f) {
        return -1;
    }
    f->size = ss_metrics_size(NSLOTS);
    if (apr_shm_create(&f->shm, f->size, NULL, f->arena.p) != APR_SUCCESS ||
        ss_metrics_format(apr_shm_baseaddr_get(f->shm), f->size, NSLOTS) != APR_SUCCESS) {
        return -1;
    }
    f->m = ss_metrics_attach(apr_shm_baseaddr_get(f->shm), f->size);
    *state = f;
    return f->m ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    apr_shm_destroy(f->shm);
    unit_arena_destroy(&f->arena);
    return 0;
}

/* ---- the segment ---- */

static void test_format_and_attach(void **state)
{
    fixture_t *f = *state;
    void *base = apr_shm_baseaddr_get(f->shm);

    assert_true(ss_metrics_is_formatted(base, f->size));
    assert_false(ss_metrics_is_formatted(base, f->size - 1));
    assert_null(ss_metrics_attach(base, ss_metrics_size(NSLOTS + 1)));
    assert_int_equal(ss_metrics_format(base, f->size, NSLOTS + 1), APR_EINVAL);
    /* A segment that is not ours is not used. */
    memset(base, 0x5a, 8);
    assert_false(ss_metrics_is_formatted(base, f->size));
    assert_int_equal(ss_metrics_format(base, f->size, NSLOTS), APR_SUCCESS);
    assert_int_equal(ss_metrics_get(f->m, SS_M_LOAD_HIT), 0);
}

static void test_bump(void **state)
{
    fixture_t *f = *state;
    int i;

    for (i = 0; i < 5; i++) {
        ss_metrics_bump(f->m, SS_M_LOAD_HIT);
    }
    ss_metrics_bump(f->m, SS_M_SAVE_GONE);
    ss_metrics_add(f->m, SS_M_REVOCATIONS, 3);
    ss_metrics_bump(f->m, SS_M__COUNT); /* out of range: ignored */
    ss_metrics_bump(NULL, SS_M_LOAD_HIT);
    assert_int_equal(ss_metrics_get(f->m, SS_M_LOAD_HIT), 5);
    assert_int_equal(ss_metrics_get(f->m, SS_M_SAVE_GONE), 1);
    assert_int_equal(ss_metrics_get(f->m, SS_M_LOAD_MISS), 0);
    assert_int_equal(ss_metrics_get(f->m, SS_M__COUNT), 0);
    assert_int_equal(ss_metrics_get(f->m, SS_M_REVOCATIONS), 3);
    assert_string_equal(ss_metrics_key(SS_M_LOAD_HIT), "loads_hit");
    assert_string_equal(ss_metrics_key(SS_M_LOAD_EXPIRED), "loads_expired");
    assert_string_equal(ss_metrics_key(SS_M_LOAD_ERROR), "loads_error");
    assert_string_equal(ss_metrics_key(SS_M_SAVE_GONE), "saves_refused_gone");
    assert_string_equal(ss_metrics_key(SS_M_REVOCATIONS), "revocations");
    assert_string_equal(ss_metrics_key(SS_M__COUNT), "unknown");
}

/* Several processes bump at once: not one count is lost. */
static void test_bump_across_processes(void **state)
{
    fixture_t *f = *state;
    enum { PROCS = 6, EACH = 20000 };
    pid_t pids[PROCS];
    int i, status;

    for (i = 0; i < PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            int n;

            for (n = 0; n < EACH; n++) {
                ss_metrics_bump(f->m, SS_M_LOAD_HIT);
                ss_metrics_observe(f->m, SS_OP_SAVE, n % 2000);
            }
            _exit(0);
        }
    }
    for (i = 0; i < PROCS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(ss_metrics_get(f->m, SS_M_LOAD_HIT), PROCS * EACH);
    {
        apr_uint64_t b[SS_METRICS_NBUCKETS + 1], sum, count, total = 0;

        ss_metrics_histogram(f->m, SS_OP_SAVE, b, &sum, &count);
        for (i = 0; i <= SS_METRICS_NBUCKETS; i++) {
            total += b[i];
        }
        assert_int_equal(count, PROCS * EACH);
        assert_int_equal(total, PROCS * EACH);
        /* 0 + 1 + ... + 1999, ten times per process */
        assert_int_equal(sum, (apr_uint64_t)PROCS * 10 * (1999 * 2000 / 2));
    }
}

static void test_histogram_buckets(void **state)
{
    fixture_t *f = *state;
    apr_uint64_t b[SS_METRICS_NBUCKETS + 1], sum, count;

    ss_metrics_observe(f->m, SS_OP_LOAD, -5);      /* a clock step: 0 */
    ss_metrics_observe(f->m, SS_OP_LOAD, 100);     /* on the bound: le 0.0001 */
    ss_metrics_observe(f->m, SS_OP_LOAD, 101);     /* le 0.00025 */
    ss_metrics_observe(f->m, SS_OP_LOAD, 1000000); /* le 1 */
    ss_metrics_observe(f->m, SS_OP_LOAD, 1000001); /* +Inf */
    ss_metrics_observe(f->m, SS_OP__COUNT, 1);     /* ignored */
    ss_metrics_histogram(f->m, SS_OP_LOAD, b, &sum, &count);
    assert_int_equal(b[0], 2);
    assert_int_equal(b[1], 1);
    assert_int_equal(b[SS_METRICS_NBUCKETS - 1], 1);
    assert_int_equal(b[SS_METRICS_NBUCKETS], 1);
    assert_int_equal(count, 5);
    assert_int_equal(sum, 100 + 101 + 1000000 + 1000001);
    ss_metrics_histogram(f->m, SS_OP_DELETE, b, &sum, &count);
    assert_int_equal(count, 0);
}

/* ---- processes whose store is down ---- */

static apr_uint32_t dead_pid;

static int alive_but_one(void *baton, apr_uint32_t pid)
{
    (void)baton;
    return pid != dead_pid;
}

static void test_store_state(void **state)
{
    fixture_t *f = *state;
    int s1 = -1, s2 = -1, s3 = -1, s4 = -1, s5 = -1, s6 = -1;

    dead_pid = 0;
    /* No slot until a first failure. */
    assert_int_equal(ss_metrics_store_state(f->m, &s1, 101, 0, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_int_equal(s1, -1);
    assert_int_equal(ss_metrics_store_state(f->m, &s1, 101, 1, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_true(s1 >= 0);
    assert_int_equal(ss_metrics_store_state(f->m, &s2, 102, 1, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_int_not_equal(s1, s2);
    assert_int_equal(ss_metrics_down_count(f->m, T0, alive_but_one, NULL), 2);
    /* Back up. */
    assert_int_equal(ss_metrics_store_state(f->m, &s1, 101, 0, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_int_equal(ss_metrics_down_count(f->m, T0, alive_but_one, NULL), 1);
    /* All four slots taken by live processes: the fifth is not shown. */
    assert_int_equal(ss_metrics_store_state(f->m, &s3, 103, 1, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_int_equal(ss_metrics_store_state(f->m, &s4, 104, 1, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_int_equal(ss_metrics_store_state(f->m, &s5, 105, 1, T0, alive_but_one, NULL),
                     APR_ENOSPC);
    assert_int_equal(s5, -1);
    assert_int_equal(ss_metrics_down_count(f->m, T0, alive_but_one, NULL), 3);
    /* A process that died down no longer counts, and its slot is reused. */
    dead_pid = 102;
    assert_int_equal(ss_metrics_down_count(f->m, T0, alive_but_one, NULL), 2);
    assert_int_equal(ss_metrics_store_state(f->m, &s5, 105, 1, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_int_equal(s5, s2);
    assert_int_equal(ss_metrics_down_count(f->m, T0, alive_but_one, NULL), 3);
    /* A clean exit frees the slot, down or not. */
    ss_metrics_release(f->m, s3, 103);
    ss_metrics_release(f->m, s4, 999); /* not its slot: nothing happens */
    assert_int_equal(ss_metrics_down_count(f->m, T0, alive_but_one, NULL), 2);
    assert_int_equal(ss_metrics_store_state(f->m, &s6, 106, 1, T0, alive_but_one, NULL),
                     APR_SUCCESS);
    assert_int_equal(s6, s3);
    /* A failure counts for SS_METRICS_DOWN_WINDOW_SEC: idle processes stop
     * counting once the store is back. A failure stamped a moment ahead of
     * the reader's clock counts. */
    assert_int_equal(ss_metrics_down_count(f->m, T0 + apr_time_from_sec(9), alive_but_one, NULL),
                     3);
    assert_int_equal(ss_metrics_down_count(f->m, T0 + apr_time_from_sec(10), alive_but_one, NULL),
                     0);
    assert_int_equal(ss_metrics_down_count(f->m, T0 - apr_time_from_sec(1), alive_but_one, NULL),
                     3);
    /* A new failure stamps the time again. */
    assert_int_equal(
        ss_metrics_store_state(f->m, &s6, 106, 1, T0 + apr_time_from_sec(20), alive_but_one, NULL),
        APR_SUCCESS);
    assert_int_equal(ss_metrics_down_count(f->m, T0 + apr_time_from_sec(25), alive_but_one, NULL),
                     1);
}

/* ---- the exposition ---- */

static int occurrences(const char *text, const char *s)
{
    int n = 0;

    while ((text = strstr(text, s))) {
        n++;
        text++;
    }
    return n;
}

static void test_render(void **state)
{
    fixture_t *f = *state;
    ss_metrics_store_t st[2];
    const char *text;
    int s = -1;

    memset(st, 0, sizeof(st));
    dead_pid = 0;
    ss_metrics_bump(f->m, SS_M_LOAD_HIT);
    ss_metrics_bump(f->m, SS_M_LOAD_HIT);
    ss_metrics_bump(f->m, SS_M_LOAD_EXPIRED);
    ss_metrics_bump(f->m, SS_M_SAVE_OVERSIZE);
    ss_metrics_bump(f->m, SS_M_REVOCATIONS);
    ss_metrics_add(f->m, SS_M_MERGE_CONFLICTS, 5);
    ss_metrics_add(f->m, SS_M_MERGE_MERGED, 4);
    ss_metrics_bump(f->m, SS_M_MERGE_GAVE_UP);
    ss_metrics_add(f->m, SS_M_LOCK_TAKEN, 3);
    ss_metrics_bump(f->m, SS_M_LOCK_WAITED);
    ss_metrics_bump(f->m, SS_M_LOCK_TIMEOUTS);
    ss_metrics_observe(f->m, SS_OP_LOAD, 300);
    ss_metrics_observe(f->m, SS_OP_LOAD, 2000000);
    ss_metrics_store_state(f->m, &s, 7, 1, T0, alive_but_one, NULL);
    st[0].label = "shm (16 MiB)";
    st[0].stats_ok = st[0].shared_stats = 1;
    st[0].stats.entries = 3;
    st[0].stats.capacity_bytes = 1024;
    st[0].stats.used_bytes = 384;
    st[0].stats.evicted_lru = 9;
    st[0].evictions = -1;
    st[0].up = 1;
    st[0].rtt = 250;
    st[1].label = "redis \"a\\b\"";
    st[1].stats_ok = 1;
    st[1].evictions = 4;
    st[1].rtt = 1500000;
    text = ss_metrics_render(f->m, st, 2, T0, alive_but_one, NULL, f->arena.p);
    assert_non_null(strstr(text, "# HELP sessstore_loads_total "));
    assert_non_null(strstr(text, "# TYPE sessstore_loads_total counter\n"));
    assert_non_null(strstr(text, "\nsessstore_loads_total{result=\"hit\"} 2\n"));
    assert_non_null(strstr(text, "\nsessstore_loads_total{result=\"miss\"} 0\n"));
    assert_non_null(strstr(text, "\nsessstore_loads_total{result=\"expired\"} 1\n"));
    assert_non_null(strstr(text, "\nsessstore_loads_total{result=\"error\"} 0\n"));
    assert_non_null(strstr(text, "\nsessstore_saves_total{result=\"refused_oversize\"} 1\n"));
    assert_non_null(strstr(text, "\nsessstore_revocations_total 1\n"));
    assert_non_null(strstr(text, "\nsessstore_merge_conflicts_total 5\n"));
    assert_non_null(strstr(text, "# TYPE sessstore_merge_retries_total counter\n"));
    assert_non_null(strstr(text, "\nsessstore_merge_retries_total{how=\"merged\"} 4\n"));
    assert_non_null(strstr(text, "\nsessstore_merge_retries_total{how=\"overwritten\"} 0\n"));
    assert_non_null(strstr(text, "\nsessstore_merge_gave_up_total 1\n"));
    assert_non_null(strstr(text, "\nsessstore_lock_taken_total 3\n"));
    assert_non_null(strstr(text, "\nsessstore_lock_waited_total 1\n"));
    assert_non_null(strstr(text, "\nsessstore_lock_timeouts_total 1\n"));
    assert_string_equal(ss_metrics_key(SS_M_LOCK_TIMEOUTS), "lock_timeouts");
    assert_string_equal(ss_metrics_key(SS_M_MERGE_OVERWRITES), "merge_overwrites");
    assert_non_null(strstr(text, "\nsessstore_children_store_down 1\n"));
    assert_non_null(strstr(text, "# TYPE sessstore_store_operation_duration_seconds histogram\n"));
    /* Cumulative buckets, bounds without trailing zeros. */
    assert_non_null(strstr(
        text,
        "\nsessstore_store_operation_duration_seconds_bucket{op=\"load\",le=\"0.00025\"} 0\n"));
    assert_non_null(strstr(
        text,
        "\nsessstore_store_operation_duration_seconds_bucket{op=\"load\",le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(
        text, "\nsessstore_store_operation_duration_seconds_bucket{op=\"load\",le=\"1\"} 1\n"));
    assert_non_null(strstr(
        text, "\nsessstore_store_operation_duration_seconds_bucket{op=\"load\",le=\"+Inf\"} 2\n"));
    assert_non_null(
        strstr(text, "\nsessstore_store_operation_duration_seconds_sum{op=\"load\"} 2.0003\n"));
    assert_non_null(
        strstr(text, "\nsessstore_store_operation_duration_seconds_count{op=\"load\"} 2\n"));
    assert_non_null(
        strstr(text, "\nsessstore_store_operation_duration_seconds_count{op=\"delete\"} 0\n"));
    /* Per store: what each knows, label values escaped. */
    assert_non_null(strstr(text, "\nsessstore_store_up{store=\"shm (16 MiB)\"} 1\n"));
    assert_non_null(strstr(text, "\nsessstore_store_up{store=\"redis \\\"a\\\\b\\\"\"} 0\n"));
    assert_non_null(
        strstr(text, "\nsessstore_store_rtt_seconds{store=\"shm (16 MiB)\"} 0.00025\n"));
    assert_non_null(strstr(text, "\nsessstore_store_entries{store=\"shm (16 MiB)\"} 3\n"));
    assert_null(strstr(text, "sessstore_store_entries{store=\"redis"));
    /* Neither is a Redis Cluster: no node count. */
    assert_null(strstr(text, "sessstore_store_cluster_nodes"));
    assert_non_null(strstr(text, "\nsessstore_store_evictions_total{store=\"shm (16 MiB)\"} 9\n"));
    assert_non_null(
        strstr(text, "sessstore_store_evictions_total{store=\"redis \\\"a\\\\b\\\"\"} 4\n"));
    /* Every family announced once, every line ends. */
    assert_int_equal(text[strlen(text) - 1], '\n');
    assert_int_equal(occurrences(text, "# TYPE sessstore_store_up "), 1);
    assert_int_equal(occurrences(text, "# TYPE sessstore_loads_total "), 1);
    assert_int_equal(occurrences(text, "# HELP "), occurrences(text, "# TYPE "));
    /* A Redis Cluster store shows its nodes. */
    st[1].stats.cluster_nodes = 6;
    text = ss_metrics_render(f->m, st, 2, T0, alive_but_one, NULL, f->arena.p);
    assert_non_null(strstr(text, "# TYPE sessstore_store_cluster_nodes gauge\n"));
    assert_non_null(
        strstr(text, "\nsessstore_store_cluster_nodes{store=\"redis \\\"a\\\\b\\\"\"} 6\n"));
    assert_null(strstr(text, "sessstore_store_cluster_nodes{store=\"shm"));
    /* Without INFO replication, no replication families. */
    assert_null(strstr(text, "sessstore_redis_"));
}

/* A Redis store's master and replicas, one series per listed replica. */
static void test_render_replication(void **state)
{
    fixture_t *f = *state;
    ss_metrics_store_t st[2];
    ss_redis_replication_t repl;
    const char *text;

    memset(st, 0, sizeof(st));
    assert_int_equal(ss_redis_replication_parse(
                         "role:master\r\nconnected_slaves:3\r\n"
                         "slave0:ip=127.0.0.1,port=7001,state=online,offset=90,lag=0\r\n"
                         "slave1:ip=127.0.0.1,port=7002,state=online,offset=40,lag=3\r\n"
                         "slave2:ip=127.0.0.1,port=7003,state=wait_bgsave,offset=0,lag=x\r\n"
                         "master_repl_offset:100\r\n",
                         &repl, f->arena.p),
                     APR_SUCCESS);
    st[0].label = "shm";
    st[0].evictions = -1;
    st[1].label = "redis-sentinel://s:26379/m";
    st[1].evictions = -1;
    st[1].master = "127.0.0.1:7000";
    st[1].replication = &repl;
    text = ss_metrics_render(f->m, st, 2, T0, alive_but_one, NULL, f->arena.p);
    assert_non_null(strstr(text,
                           "\nsessstore_redis_master_info{store=\"redis-sentinel://s:26379/m\","
                           "master=\"127.0.0.1:7000\",role=\"master\"} 1\n"));
    assert_non_null(
        strstr(text, "\nsessstore_redis_replicas{store=\"redis-sentinel://s:26379/m\"} 3\n"));
    assert_non_null(strstr(text, "\nsessstore_redis_replica_lag_seconds{store=\"redis-sentinel://"
                                 "s:26379/m\",replica=\"127.0.0.1:7002\"} 3\n"));
    assert_non_null(strstr(text, "\nsessstore_redis_replica_offset_behind_bytes{store=\"redis-"
                                 "sentinel://s:26379/m\",replica=\"127.0.0.1:7002\"} 60\n"));
    assert_non_null(strstr(text, "\nsessstore_redis_replica_offset_behind_bytes{store=\"redis-"
                                 "sentinel://s:26379/m\",replica=\"127.0.0.1:7003\"} 100\n"));
    /* An unknown lag gives no series; the shm store none at all. */
    assert_null(strstr(text, "replica=\"127.0.0.1:7003\"} -"));
    assert_int_equal(occurrences(text, "sessstore_redis_replica_lag_seconds{"), 2);
    assert_null(strstr(text, "sessstore_redis_replicas{store=\"shm\""));
    assert_int_equal(occurrences(text, "# TYPE sessstore_redis_replica_lag_seconds gauge\n"), 1);
    assert_int_equal(occurrences(text, "# HELP "), occurrences(text, "# TYPE "));
}

static void test_escape(void **state)
{
    fixture_t *f = *state;

    assert_string_equal(ss_metrics_escape("a\"b\\c\nd", f->arena.p), "a\\\"b\\\\c\\nd");
    assert_string_equal(ss_metrics_escape("", f->arena.p), "");
}

/* ---- the timing wrapper, over a real shm store ---- */

static void test_metered(void **state)
{
    fixture_t *f = *state;
    ss_store_t *w;
    ss_key_t key;
    ss_record_t rec, back;
    ss_expiry_t e = {0, 0};
    apr_uint64_t b[SS_METRICS_NBUCKETS + 1], sum, count;
    apr_time_t now = apr_time_now();

    unit_arena_open(&f->arena, ARENA_SIZE, ARENA_MAX_RECORD);
    assert_int_equal(ss_metered_wrap(&w, f->arena.store, f->m, f->arena.p), APR_SUCCESS);
    assert_string_equal(w->ops->name, f->arena.store->ops->name);
    assert_string_equal(w->ops->stats_scope, f->arena.store->ops->stats_scope);
    assert_ptr_equal(ss_metered_inner(w), f->arena.store);
    assert_ptr_equal(ss_metered_inner(f->arena.store), f->arena.store);
    memset(&key, 7, sizeof(key));
    memset(&rec, 0, sizeof(rec));
    rec.created = rec.accessed = now;
    rec.user = "";
    rec.payload = "a=1";
    rec.payload_len = 3;
    assert_int_equal(w->ops->save(w, &key, &rec, 0, SS_SAVE_NEW, 1024, f->arena.p), APR_SUCCESS);
    assert_int_equal(w->ops->load(w, &key, &e, &e, now, f->arena.p, &back), APR_SUCCESS);
    assert_string_equal(back.payload, "a=1");
    {
        /* Expired for a strict judge, kept for a lenient keeper: passed through as it is. */
        const ss_expiry_t strict = {1, 0};

        assert_int_equal(w->ops->load(w, &key, &strict, &e, now + 10, f->arena.p, &back),
                         SS_EEXPIRED);
    }
    assert_int_equal(w->ops->remove(w, &key), APR_SUCCESS);
    assert_int_equal(w->ops->load(w, &key, &e, &e, now, f->arena.p, &back), APR_NOTFOUND);
    ss_metrics_histogram(f->m, SS_OP_LOAD, b, &sum, &count);
    assert_int_equal(count, 3);
    ss_metrics_histogram(f->m, SS_OP_SAVE, b, &sum, &count);
    assert_int_equal(count, 1);
    ss_metrics_histogram(f->m, SS_OP_DELETE, b, &sum, &count);
    assert_int_equal(count, 1);
    assert_int_equal(unit_stats(w).entries, 0);
    assert_int_equal(unit_stats(w).saves, 1);

    /* The index and administration reach the inner store. */
    {
        ss_owner_t alice;
        apr_size_t n = 0;

        assert_int_equal(ss_owner_hash("alice", &alice), APR_SUCCESS);
        rec.user = "alice";
        assert_int_equal(w->ops->index_add(w, &alice, &key, 0, now), APR_SUCCESS);
        assert_int_equal(w->ops->save(w, &key, &rec, 0, SS_SAVE_NEW, 1024, f->arena.p),
                         APR_SUCCESS);
        assert_int_equal(w->ops->purge_expired(w, now, &n), APR_SUCCESS);
        assert_int_equal(n, 0);
        assert_int_equal(w->ops->revoke_owner(w, &alice, NULL, now, &n), APR_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(w->ops->load(w, &key, &e, &e, now, f->arena.p, &back), APR_NOTFOUND);
    }
}

/* ---- the health probe ---- */

static void test_health_ok(void **state)
{
    fixture_t *f = *state;
    ss_health_t *h;
    apr_interval_time_t rtt = -1;
    const char *why = NULL;
    apr_time_t now = apr_time_now();

    unit_arena_open(&f->arena, ARENA_SIZE, ARENA_MAX_RECORD);
    assert_int_equal(ss_health_create(&h, f->arena.store, apr_time_from_msec(500), f->arena.p),
                     APR_SUCCESS);
    assert_int_equal(ss_health_check(h, now, &rtt, &why, f->arena.p), APR_SUCCESS);
    assert_string_equal(why, "");
    assert_true(rtt >= 0);
    assert_int_equal(unit_stats(f->arena.store).entries, 1);
    /* Within the cache: no round trip. After it: the record is updated. */
    assert_int_equal(ss_health_check(h, now + 1000, NULL, NULL, f->arena.p), APR_SUCCESS);
    assert_int_equal(unit_stats(f->arena.store).saves, 1);
    assert_int_equal(ss_health_check(h, now + apr_time_from_msec(500), NULL, NULL, f->arena.p),
                     APR_SUCCESS);
    assert_int_equal(unit_stats(f->arena.store).saves, 2);
    assert_int_equal(unit_stats(f->arena.store).entries, 1);
    /* Long after, its record has expired: a new one is written. */
    assert_int_equal(ss_health_check(h, now + SS_HEALTH_RECORD_TTL + apr_time_from_sec(5), NULL,
                                     NULL, f->arena.p),
                     APR_SUCCESS);
    assert_int_equal(unit_stats(f->arena.store).entries, 1);
}

/* A store that fails: every save refused, counted. */
typedef struct {
    int saves, loads;
    apr_status_t save_rv, load_rv;
    const char *payload; /* what load hands back */
} fake_t;

static apr_status_t fake_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *judge,
                              const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p,
                              ss_record_t *rec)
{
    fake_t *fk = store->impl;

    (void)key, (void)judge, (void)keep, (void)now, (void)p;
    fk->loads++;
    rec->payload = fk->payload;
    rec->payload_len = strlen(fk->payload);
    return fk->load_rv;
}

static apr_status_t fake_save(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                              apr_time_t deadline, ss_save_mode_e mode, apr_size_t limit,
                              apr_pool_t *p)
{
    fake_t *fk = store->impl;

    (void)key, (void)rec, (void)deadline, (void)mode, (void)limit, (void)p;
    fk->saves++;
    return fk->save_rv;
}

static const ss_store_ops_t fake_ops = {"fake", "none", fake_load, fake_save, NULL, NULL, NULL,
                                        NULL,   NULL,   NULL,      NULL,      NULL, NULL, NULL};

static void test_health_failing(void **state)
{
    fixture_t *f = *state;
    static fake_t fk; /* static: the store reaches it behind the checker's back */
    ss_store_t store = {&fake_ops, &fk, SS_RECORD_FORM_SEALED, 0};
    ss_health_t *h;
    const char *why = NULL;
    apr_time_t now = apr_time_now();

    fk.saves = fk.loads = 0;
    fk.save_rv = APR_ECONNREFUSED;
    fk.load_rv = APR_SUCCESS;
    fk.payload = "x";
    assert_int_equal(ss_health_create(&h, &store, apr_time_from_msec(500), f->arena.p),
                     APR_SUCCESS);
    assert_int_equal(ss_health_check(h, now, NULL, &why, f->arena.p), APR_ECONNREFUSED);
    assert_non_null(strstr(why, "cannot save"));
    assert_non_null(strstr(why, "refused"));
    assert_int_equal(fk.saves, 1);
    /* Cached: polling costs nothing more until the cache runs out. */
    assert_int_equal(ss_health_check(h, now + apr_time_from_msec(499), NULL, &why, f->arena.p),
                     APR_ECONNREFUSED);
    assert_int_equal(fk.saves, 1);
    /* Back: saves work, but loads fail. */
    fk.save_rv = APR_SUCCESS;
    fk.load_rv = APR_TIMEUP;
    assert_int_equal(ss_health_check(h, now + apr_time_from_msec(500), NULL, &why, f->arena.p),
                     APR_TIMEUP);
    assert_non_null(strstr(why, "cannot load"));
    /* A load that returns something else is no health either. */
    fk.load_rv = APR_SUCCESS;
    assert_int_equal(ss_health_check(h, now + apr_time_from_sec(1), NULL, &why, f->arena.p),
                     APR_EGENERAL);
    assert_non_null(strstr(why, "different"));
    fk.load_rv = APR_NOTFOUND;
    assert_int_equal(ss_health_check(h, now + apr_time_from_sec(2), NULL, &why, f->arena.p),
                     APR_EGENERAL);
    assert_non_null(strstr(why, "not found"));
    /* An error reply (APR's generic error) is said in words. */
    fk.load_rv = APR_EGENERAL;
    assert_int_equal(ss_health_check(h, now + apr_time_from_sec(3), NULL, &why, f->arena.p),
                     APR_EGENERAL);
    assert_string_equal(why,
                        "the store cannot load: it answered with an error (see the error log)");
    /* A clock that went back does not freeze the verdict. */
    fk.load_rv = APR_SUCCESS;
    fk.save_rv = APR_ECONNREFUSED;
    assert_int_equal(ss_health_check(h, now, NULL, &why, f->arena.p), APR_ECONNREFUSED);
}

/* ---- Redis's own eviction count (INFO) ---- */

static void test_info_parse(void **state)
{
    const char *info = "# Stats\r\ntotal_connections_received:4\r\nevicted_keys_x:7\r\n"
                       "evicted_keys:12\r\nexpired_keys:3\r\nbad:1x\r\nlast:5";
    apr_uint64_t v = 0;

    (void)state;
    assert_int_equal(ss_redis_info_parse(info, "evicted_keys", &v), APR_SUCCESS);
    assert_int_equal(v, 12);
    assert_int_equal(ss_redis_info_parse(info, "total_connections_received", &v), APR_SUCCESS);
    assert_int_equal(v, 4);
    assert_int_equal(ss_redis_info_parse(info, "last", &v), APR_SUCCESS);
    assert_int_equal(v, 5);
    assert_int_equal(ss_redis_info_parse(info, "evicted", &v), APR_NOTFOUND);
    assert_int_equal(ss_redis_info_parse(info, "bad", &v), APR_EINVAL);
    assert_int_equal(ss_redis_info_parse("", "evicted_keys", &v), APR_NOTFOUND);
}

/* A Redis server that evicts under maxmemory: the count is its own. */
static void test_info_live(void **state)
{
    fixture_t *f = *state;
    const char *binary = unit_redis_binary();
    const char *const extra[] = {"--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru", NULL};
    server_t srv;
    ss_redis_config_t *cfg;
    ss_store_t *store;
    redisContext *admin;
    apr_uint64_t v = 99;
    char *big = apr_palloc(f->arena.p, 20000);
    int i;

    assert_non_null(binary);
    memset(&srv, 0, sizeof(srv));
    assert_int_equal(server_start(&srv, binary, extra), 0);
    assert_null(ss_redis_parse(&cfg, apr_psprintf(f->arena.p, "redis://127.0.0.1:%d/0", srv.port),
                               f->arena.p));
    assert_int_equal(ss_redis_open(&store, cfg, f->arena.p), APR_SUCCESS);
    assert_int_equal(ss_redis_info_counter(store, "stats", "evicted_keys", &v), APR_SUCCESS);
    assert_int_equal(v, 0);
    assert_int_equal(ss_redis_info_counter(store, "stats", "no_such_field", &v), APR_NOTFOUND);
    /* A single node is a master without replicas, at the configured address. */
    {
        ss_redis_replication_t repl;
        const char *master = NULL;

        assert_int_equal(ss_redis_replication(store, &repl, &master, f->arena.p), APR_SUCCESS);
        assert_string_equal(repl.role, "master");
        assert_int_equal(repl.connected, 0);
        assert_int_equal(repl.nreplicas, 0);
        assert_true(repl.master_offset >= 0);
        assert_string_equal(master, apr_psprintf(f->arena.p, "127.0.0.1:%d", srv.port));
    }
    /* Four megabytes into two: Redis evicts. */
    memset(big, 'x', 19999);
    big[19999] = '\0';
    admin = admin_connect(&srv);
    assert_non_null(admin);
    for (i = 0; i < 200; i++) {
        redisReply *r = redisCommand(admin, "SET fill:%d %s", i, big);

        assert_non_null(r);
        freeReplyObject(r);
    }
    redisFree(admin);
    assert_int_equal(ss_redis_info_counter(store, "stats", "evicted_keys", &v), APR_SUCCESS);
    assert_true(v > 0);
    /* Not a Redis store; a Redis that is gone. */
    unit_arena_open(&f->arena, ARENA_SIZE, ARENA_MAX_RECORD);
    assert_int_equal(ss_redis_info_counter(f->arena.store, "stats", "evicted_keys", &v),
                     APR_EINVAL);
    server_kill(&srv);
    assert_int_not_equal(ss_redis_info_counter(store, "stats", "evicted_keys", &v), APR_SUCCESS);
    store->ops->close(store);
    server_destroy(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_format_and_attach),
        UNIT_TEST(test_bump),
        UNIT_TEST(test_bump_across_processes),
        UNIT_TEST(test_histogram_buckets),
        UNIT_TEST(test_store_state),
        UNIT_TEST(test_render),
        UNIT_TEST(test_render_replication),
        UNIT_TEST(test_escape),
        UNIT_TEST(test_metered),
        UNIT_TEST(test_health_ok),
        UNIT_TEST(test_health_failing),
        UNIT_TEST(test_info_parse),
        UNIT_TEST(test_info_live),
    };

    return UNIT_RUN(tests);
}
