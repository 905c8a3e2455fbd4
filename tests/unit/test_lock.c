/* test_lock.c - the per-session lock (ss_lock) over both real backends: a
 * shared-memory arena and a real redis-server. */
#include "unit.h"
#include "unit_redis.h"

#include <apr_thread_proc.h>

#include "ss_lock.h"
#include "ss_redis.h"

#define MS(n) ((apr_interval_time_t)(n)*1000)
#define ARENA_SIZE (256 * 1024)
#define THREADS 6
#define ROUNDS 20

static struct {
    int redis;
    int sealed; /* the store seals records, as the module's do by default */
    server_t server;
    unit_arena_t *arena;
    apr_pool_t *p;
    ss_store_t *store;
    ss_lock_ctx_t ctx;
    ss_key_t session; /* the session the tests lock */
} g;

static int group_setup_shm(void **state)
{
    (void)state;
    g.redis = 0;
    g.sealed = 0;
    return 0;
}

static int group_setup_shm_sealed(void **state)
{
    (void)state;
    g.redis = 0;
    g.sealed = 1;
    return 0;
}

static int group_setup_redis(void **state)
{
    const char *binary = unit_redis_binary();

    (void)state;
    g.redis = 1;
    g.sealed = 1;
    return binary ? server_start(&g.server, binary, NULL) : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g.redis) {
        server_destroy(&g.server);
    }
    return 0;
}

static int setup(void **state)
{
    char id[SS_ID_LEN + 1];

    (void)state;
    g.arena = unit_arena_create(sizeof(unit_arena_t));
    if (!g.arena) {
        return -1;
    }
    g.p = g.arena->p;
    if (g.redis) {
        ss_redis_config_t *cfg;
        redisContext *c = admin_connect(&g.server);

        freeReplyObject(redisCommand(c, "FLUSHALL"));
        redisFree(c);
        if (ss_redis_parse(&cfg, apr_psprintf(g.p, "redis://127.0.0.1:%d", g.server.port), g.p) ||
            ss_redis_open(&g.store, cfg, g.p) != APR_SUCCESS) {
            return -1;
        }
    } else {
        unit_arena_open(g.arena, ARENA_SIZE, 4096);
        g.store = g.arena->store;
    }
    g.store->form = g.sealed ? SS_RECORD_FORM_SEALED : SS_RECORD_FORM_CLEAR;
    g.ctx.store = g.store;
    g.ctx.lease = MS(5000);
    g.ctx.timeout = MS(150);
    if (ss_id_generate(id) != APR_SUCCESS || ss_id_key(id, &g.session) != APR_SUCCESS) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unit_arena_destroy(g.arena);
    return 0;
}

static void test_lock_key(void **state)
{
    ss_key_t a, b, other;
    char id[SS_ID_LEN + 1];

    (void)state;
    assert_int_equal(ss_lock_key(&g.session, &a), APR_SUCCESS);
    assert_int_equal(ss_lock_key(&g.session, &b), APR_SUCCESS);
    assert_memory_equal(a.bytes, b.bytes, SS_KEY_BYTES);
    assert_memory_not_equal(a.bytes, g.session.bytes, SS_KEY_BYTES);
    assert_int_equal(ss_id_generate(id), APR_SUCCESS);
    assert_int_equal(ss_id_key(id, &other), APR_SUCCESS);
    assert_int_equal(ss_lock_key(&other, &b), APR_SUCCESS);
    assert_memory_not_equal(a.bytes, b.bytes, SS_KEY_BYTES);
}

static void test_one_holder_at_a_time(void **state)
{
    ss_lock_t a, b;

    (void)state;
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &a), APR_SUCCESS);
    assert_true(a.held);
    assert_int_equal(a.attempts, 1);
    /* Held: the second waits the whole timeout, trying more than once. */
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &b), APR_TIMEUP);
    assert_false(b.held);
    assert_true(b.attempts > 1);
    assert_true(b.waited >= g.ctx.timeout);
    assert_int_equal(ss_lock_release(&g.ctx, &a, g.p), APR_SUCCESS);
    assert_false(a.held);
    /* Free again: taken at once. */
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &b), APR_SUCCESS);
    assert_int_equal(b.attempts, 1);
    assert_int_equal(ss_lock_release(&g.ctx, &b, g.p), APR_SUCCESS);
    /* Releasing twice does nothing. */
    assert_int_equal(ss_lock_release(&g.ctx, &b, g.p), APR_SUCCESS);
}

typedef struct {
    apr_interval_time_t hold;
    ss_lock_t lock;
} holder_t;

static void *APR_THREAD_FUNC hold_then_release(apr_thread_t *t, void *data)
{
    holder_t *h = data;
    apr_pool_t *p;

    (void)t;
    apr_pool_create(&p, NULL);
    apr_sleep(h->hold);
    ss_lock_release(&g.ctx, &h->lock, p);
    apr_pool_destroy(p);
    return NULL; /* not apr_thread_exit: pthread_exit upsets ASan */
}

static void test_waiter_gets_it_when_released(void **state)
{
    holder_t h;
    apr_thread_t *t;
    apr_status_t trv;
    ss_lock_t b;

    (void)state;
    memset(&h, 0, sizeof(h));
    h.hold = MS(50);
    g.ctx.timeout = MS(3000);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &h.lock), APR_SUCCESS);
    assert_int_equal(apr_thread_create(&t, NULL, hold_then_release, &h, g.p), APR_SUCCESS);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &b), APR_SUCCESS);
    assert_true(b.attempts > 1);
    assert_true(b.waited < g.ctx.timeout);
    apr_thread_join(&trv, t);
    assert_int_equal(ss_lock_release(&g.ctx, &b, g.p), APR_SUCCESS);
}

/* A holder that never releases (a crashed child): the lease frees it. */
static void test_lease_frees_a_dead_holder(void **state)
{
    ss_lock_t dead, b;

    (void)state;
    g.ctx.lease = MS(300);
    g.ctx.timeout = MS(3000);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &dead), APR_SUCCESS);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &b), APR_SUCCESS);
    assert_true(b.waited >= MS(200)); /* the lease, give or take the store's clock */
    assert_true(b.attempts > 1);
    assert_int_equal(ss_lock_release(&g.ctx, &b, g.p), APR_SUCCESS);
}

/* A holder whose lease ran out and whose lock another took: its release
 * leaves the other's lock alone. */
static void test_release_leaves_anothers_lock(void **state)
{
    ss_lock_t late, next, third;

    (void)state;
    g.ctx.lease = MS(200);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &late), APR_SUCCESS);
    /* Past the lease, by the shm store's clock too: it keeps deadlines to
     * the second above (leases are whole seconds in httpd.conf). */
    apr_sleep(MS(1400));
    g.ctx.lease = MS(5000);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &next), APR_SUCCESS);
    assert_int_equal(next.attempts, 1);
    assert_int_equal(ss_lock_release(&g.ctx, &late, g.p), APR_SUCCESS);
    g.ctx.timeout = MS(100);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &third), APR_TIMEUP);
    assert_int_equal(ss_lock_release(&g.ctx, &next, g.p), APR_SUCCESS);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &third), APR_SUCCESS);
    assert_int_equal(ss_lock_release(&g.ctx, &third, g.p), APR_SUCCESS);
}

/* The lock of one session does not hold up another's. */
static void test_sessions_are_independent(void **state)
{
    ss_lock_t a, b;
    ss_key_t other;
    char id[SS_ID_LEN + 1];

    (void)state;
    assert_int_equal(ss_id_generate(id), APR_SUCCESS);
    assert_int_equal(ss_id_key(id, &other), APR_SUCCESS);
    assert_int_equal(ss_lock_acquire(&g.ctx, &g.session, g.p, &a), APR_SUCCESS);
    assert_int_equal(ss_lock_acquire(&g.ctx, &other, g.p, &b), APR_SUCCESS);
    assert_int_equal(b.attempts, 1);
    assert_int_equal(ss_lock_release(&g.ctx, &a, g.p), APR_SUCCESS);
    assert_int_equal(ss_lock_release(&g.ctx, &b, g.p), APR_SUCCESS);
}

/* Threads incrementing one stored counter with a read-modify-write each,
 * under the lock: no increment is lost. */
static void *APR_THREAD_FUNC increment(apr_thread_t *t, void *data)
{
    int i, *failures = data;

    (void)t;
    for (i = 0; i < ROUNDS; i++) {
        apr_pool_t *p;
        ss_lock_t lock;
        ss_record_t rec;
        ss_expiry_t none = {0, 0};
        apr_status_t rv;

        apr_pool_create(&p, NULL);
        memset(&rec, 0, sizeof(rec));
        rv = ss_lock_acquire(&g.ctx, &g.session, p, &lock);
        if (rv == APR_SUCCESS) {
            rv = g.store->ops->load(g.store, &g.session, &none, &none, apr_time_now(), p, &rec);
        }
        if (rv == APR_SUCCESS) {
            char *n = apr_psprintf(p, "%d", atoi(rec.payload) + 1);

            apr_sleep(200); /* the window in which an unlocked writer would lose */
            rec.payload = n;
            rec.payload_len = strlen(n);
            rec.accessed = apr_time_now();
            rec.revision++;
            rv = g.store->ops->save(g.store, &g.session, &rec, 0, SS_SAVE_UPDATE, 4096, p);
        }
        if (rv != APR_SUCCESS || ss_lock_release(&g.ctx, &lock, p) != APR_SUCCESS) {
            (*failures)++;
        }
        apr_pool_destroy(p);
    }
    return NULL; /* not apr_thread_exit: pthread_exit upsets ASan */
}

static void test_read_modify_write_loses_nothing(void **state)
{
    apr_thread_t *t[THREADS];
    ss_record_t rec;
    ss_expiry_t none = {0, 0};
    apr_status_t trv;
    int failures[THREADS] = {0}, i;

    (void)state;
    g.ctx.timeout = MS(20000);
    memset(&rec, 0, sizeof(rec));
    rec.user = "";
    rec.payload = "0";
    rec.payload_len = 1;
    rec.created = rec.accessed = apr_time_now();
    assert_int_equal(g.store->ops->save(g.store, &g.session, &rec, 0, SS_SAVE_NEW, 4096, g.p),
                     APR_SUCCESS);
    for (i = 0; i < THREADS; i++) {
        assert_int_equal(apr_thread_create(&t[i], NULL, increment, &failures[i], g.p), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; i++) {
        apr_thread_join(&trv, t[i]);
        assert_int_equal(failures[i], 0);
    }
    assert_int_equal(
        g.store->ops->load(g.store, &g.session, &none, &none, apr_time_now(), g.p, &rec),
        APR_SUCCESS);
    assert_int_equal(atoi(rec.payload), THREADS * ROUNDS);
}

/* A session stored under a fresh ID, for ss_lock_load. */
static const char *stored_session(const ss_session_ctx_t *sctx)
{
    ss_session_t s;

    ss_session_load(sctx, NULL, apr_time_now(), g.p, &s);
    assert_int_equal(ss_session_commit(sctx, &s, "", "a=1", SS_COMMIT_CHANGED, apr_time_now(), g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    return s.cookie;
}

static void test_load_locks_the_live_session(void **state)
{
    ss_session_ctx_t sctx;
    apr_array_header_t *cookies = apr_array_make(g.p, 3, sizeof(const char *));
    char unknown[SS_ID_LEN + 1];
    const char *id;
    ss_session_t sess;
    ss_lock_t lock, other;
    ss_key_t key;

    (void)state;
    memset(&sctx, 0, sizeof(sctx));
    sctx.store = g.store;
    sctx.expiry.idle = sctx.retention.idle = apr_time_from_sec(600);
    sctx.max_size = 4096;
    id = stored_session(&sctx);
    assert_int_equal(ss_id_generate(unknown), APR_SUCCESS);
    /* No cookie: loaded, nothing locked. */
    assert_int_equal(ss_lock_load(&g.ctx, &sctx, cookies, g.p, &sess, &lock), APR_SUCCESS);
    assert_false(lock.held);
    assert_int_equal(sess.state, SS_SESSION_NONE);
    /* Only an unknown ID: loaded as no session, and no lock kept. */
    APR_ARRAY_PUSH(cookies, const char *) = unknown;
    assert_int_equal(ss_lock_load(&g.ctx, &sctx, cookies, g.p, &sess, &lock), APR_SUCCESS);
    assert_false(lock.held);
    assert_int_equal(sess.state, SS_SESSION_NONE);
    apr_array_clear(cookies);
    /* Junk, an unknown ID, then the live one: the live one is locked. */
    APR_ARRAY_PUSH(cookies, const char *) = "junk";
    APR_ARRAY_PUSH(cookies, const char *) = unknown;
    APR_ARRAY_PUSH(cookies, const char *) = id;
    assert_int_equal(ss_lock_load(&g.ctx, &sctx, cookies, g.p, &sess, &lock), APR_SUCCESS);
    assert_true(lock.held);
    assert_int_equal(sess.state, SS_SESSION_LOADED);
    assert_string_equal(sess.payload, "a=1");
    assert_int_equal(ss_id_key(id, &key), APR_SUCCESS);
    assert_int_equal(ss_lock_acquire(&g.ctx, &key, g.p, &other), APR_TIMEUP);
    /* The unknown ID's lock was given back. */
    assert_int_equal(ss_id_key(unknown, &key), APR_SUCCESS);
    assert_int_equal(ss_lock_acquire(&g.ctx, &key, g.p, &other), APR_SUCCESS);
    assert_int_equal(ss_lock_release(&g.ctx, &other, g.p), APR_SUCCESS);
    /* Held: a second request gets APR_TIMEUP and a session it may not write. */
    {
        ss_session_t second;
        ss_lock_t second_lock;

        assert_int_equal(ss_lock_load(&g.ctx, &sctx, cookies, g.p, &second, &second_lock),
                         APR_TIMEUP);
        assert_false(second_lock.held);
        assert_int_equal(second.state, SS_SESSION_STORE_DOWN);
        assert_int_equal(second.store_rv, APR_TIMEUP);
        assert_int_equal(
            ss_session_commit(&sctx, &second, "", "a=2", SS_COMMIT_CHANGED, apr_time_now(), g.p),
            APR_TIMEUP);
        assert_int_equal(second.outcome, SS_COMMIT_FAILED);
    }
    assert_int_equal(ss_lock_release(&g.ctx, &lock, g.p), APR_SUCCESS);
}

#define LOCK_TESTS(name)                                                                           \
    const struct CMUnitTest name[] = {                                                             \
        UNIT_TEST(test_lock_key),                                                                  \
        UNIT_TEST(test_one_holder_at_a_time),                                                      \
        UNIT_TEST(test_waiter_gets_it_when_released),                                              \
        UNIT_TEST(test_lease_frees_a_dead_holder),                                                 \
        UNIT_TEST(test_release_leaves_anothers_lock),                                              \
        UNIT_TEST(test_sessions_are_independent),                                                  \
        UNIT_TEST(test_read_modify_write_loses_nothing),                                           \
        UNIT_TEST(test_load_locks_the_live_session),                                               \
    }

int main(void)
{
    LOCK_TESTS(shm);
    LOCK_TESTS(redis);
    int failed;

    failed = unit_run("lock over shm", shm, UNIT_COUNT(shm), group_setup_shm, group_teardown);
    failed += unit_run("lock over shm, sealed records", shm, UNIT_COUNT(shm),
                       group_setup_shm_sealed, group_teardown);
    failed += unit_run("lock over redis, sealed records", redis, UNIT_COUNT(redis),
                       group_setup_redis, group_teardown);
    return failed;
}
