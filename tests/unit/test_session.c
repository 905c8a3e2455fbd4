/* test_session.c - the session policy (ss_session) over both real backends.
 *
 * Every test runs over a shared-memory arena and over a real redis-server,
 * twice there: with the lean load and with every load by the script
 * (SESSSTORE_REDIS_LOAD=script, ss_redis.h). The store is wrapped in a fault wrapper that can make
 * one kind of operation fail (a refused delete, a store outage, an ID collision); everything else
 * reaches the real backend. */
#include "unit.h"
#include "unit_redis.h"

#include "ss_redis.h"
#include "ss_session.h"

#define SEC(n) apr_time_from_sec(n)
#define ARENA_SIZE (256 * 1024)
#define ARENA_MAX_RECORD (16 * 1024)

typedef struct {
    ss_store_t *inner;
    apr_status_t fail_load, fail_save, fail_remove; /* 0: pass through */
    int eexist;                                     /* answer EEXIST to this many new saves */
    int saves, removes;
} faulty_t;

static struct {
    int redis; /* this group's backend */
    const char *binary;
    server_t server;
    unit_arena_t *arena;
    apr_pool_t *p;
    ss_store_t *backend;
    ss_store_t store; /* the fault wrapper around backend */
    faulty_t faults;
    ss_session_ctx_t ctx;
    unit_log_t log;
    apr_time_t now;
} g;

/* ---- the fault wrapper ---- */

static apr_status_t f_load(ss_store_t *s, const ss_key_t *key, const ss_expiry_t *judge,
                           const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p, ss_record_t *rec)
{
    faulty_t *f = s->impl;

    if (f->fail_load) {
        return f->fail_load;
    }
    return f->inner->ops->load(f->inner, key, judge, keep, now, p, rec);
}

static apr_status_t f_save(ss_store_t *s, const ss_key_t *key, const ss_record_t *rec,
                           apr_time_t deadline, ss_save_mode_e mode, apr_size_t limit,
                           apr_pool_t *p)
{
    faulty_t *f = s->impl;

    f->saves++;
    if (f->fail_save) {
        return f->fail_save;
    }
    if (mode == SS_SAVE_NEW && f->eexist > 0) {
        f->eexist--;
        return APR_EEXIST;
    }
    return f->inner->ops->save(f->inner, key, rec, deadline, mode, limit, p);
}

static apr_status_t f_remove(ss_store_t *s, const ss_key_t *key)
{
    faulty_t *f = s->impl;

    f->removes++;
    if (f->fail_remove) {
        return f->fail_remove;
    }
    return f->inner->ops->remove(f->inner, key);
}

static apr_status_t f_stats(ss_store_t *s, ss_store_stats_t *st)
{
    faulty_t *f = s->impl;

    return f->inner->ops->stats(f->inner, st);
}

static const char *f_describe(ss_store_t *s, apr_pool_t *p)
{
    faulty_t *f = s->impl;

    return f->inner->ops->describe(f->inner, p);
}

static apr_status_t f_ping(ss_store_t *s)
{
    (void)s;
    return APR_SUCCESS;
}

static apr_status_t f_child_init(ss_store_t *s, apr_pool_t *p)
{
    (void)s;
    (void)p;
    return APR_SUCCESS;
}

static void f_close(ss_store_t *s)
{
    (void)s;
}

static apr_status_t f_index_add(ss_store_t *s, const ss_owner_t *owner, const ss_key_t *key,
                                apr_time_t until, apr_time_t now)
{
    faulty_t *f = s->impl;

    if (f->fail_save) {
        return f->fail_save;
    }
    return f->inner->ops->index_add(f->inner, owner, key, until, now);
}

static apr_status_t f_revoke_owner(ss_store_t *s, const ss_owner_t *owner, const ss_key_t *except,
                                   apr_time_t now, apr_size_t *count)
{
    faulty_t *f = s->impl;

    if (f->fail_remove) {
        return f->fail_remove;
    }
    return f->inner->ops->revoke_owner(f->inner, owner, except, now, count);
}

static apr_status_t f_scan(ss_store_t *s, const ss_owner_t *owner, apr_size_t limit,
                           ss_store_entry_fn fn, void *baton, apr_time_t now, apr_pool_t *p)
{
    faulty_t *f = s->impl;

    return f->inner->ops->scan(f->inner, owner, limit, fn, baton, now, p);
}

static apr_status_t f_purge_expired(ss_store_t *s, apr_time_t now, apr_size_t *count)
{
    faulty_t *f = s->impl;

    return f->inner->ops->purge_expired(f->inner, now, count);
}

static const ss_store_ops_t faulty_ops = {
    "faulty", "test",       f_load,  f_save,      f_remove,       f_stats, f_describe,
    f_ping,   f_child_init, f_close, f_index_add, f_revoke_owner, f_scan,  f_purge_expired};

/* ---- fixtures ---- */

static int group_setup_shm(void **state)
{
    (void)state;
    g.redis = 0;
    return 0;
}

static int group_setup_redis(void **state)
{
    (void)state;
    unsetenv(SS_REDIS_LOAD_ENV);
    g.redis = 1;
    g.binary = unit_redis_binary();
    return g.binary ? server_start(&g.server, g.binary, NULL) : -1;
}

static int group_setup_redis_script(void **state)
{
    int rv = group_setup_redis(state);

    setenv(SS_REDIS_LOAD_ENV, "script", 1);
    return rv;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g.redis) {
        server_destroy(&g.server);
    }
    unsetenv(SS_REDIS_LOAD_ENV);
    return 0;
}

static void admin_flush(void)
{
    redisContext *c = admin_connect(&g.server);

    freeReplyObject(redisCommand(c, "FLUSHALL"));
    redisFree(c);
}

static int setup(void **state)
{
    (void)state;
    g.arena = unit_arena_create(sizeof(unit_arena_t));
    if (!g.arena) {
        return -1;
    }
    g.p = g.arena->p;
    if (g.redis) {
        ss_redis_config_t *cfg;

        admin_flush();
        if (ss_redis_parse(&cfg, apr_psprintf(g.p, "redis://127.0.0.1:%d", g.server.port), g.p) ||
            ss_redis_open(&g.backend, cfg, g.p) != APR_SUCCESS) {
            return -1;
        }
    } else {
        unit_arena_open(g.arena, ARENA_SIZE, ARENA_MAX_RECORD);
        g.backend = g.arena->store;
    }
    memset(&g.faults, 0, sizeof(g.faults));
    g.faults.inner = g.backend;
    g.store.ops = &faulty_ops;
    g.store.impl = &g.faults;
    memset(&g.ctx, 0, sizeof(g.ctx));
    g.ctx.store = &g.store;
    g.ctx.expiry.idle = SEC(1800);
    g.ctx.expiry.absolute = SEC(28800);
    g.ctx.retention = g.ctx.expiry;
    g.ctx.max_size = 4096;
    g.now = apr_time_now();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unit_arena_destroy(g.arena); /* closes the Redis store with its pool */
    return 0;
}

/* ---- helpers ---- */

static apr_array_header_t *cookies(int n, ...)
{
    apr_array_header_t *a = apr_array_make(g.p, n, sizeof(const char *));
    va_list ap;
    int i;

    va_start(ap, n);
    for (i = 0; i < n; i++) {
        APR_ARRAY_PUSH(a, const char *) = va_arg(ap, const char *);
    }
    va_end(ap);
    return a;
}

static ss_session_t load_id(const ss_session_ctx_t *ctx, const char *id, apr_time_t now)
{
    ss_session_t s;

    ss_session_load(ctx, id ? cookies(1, id) : NULL, now, g.p, &s);
    return s;
}

/* A session stored for owner with payload; its ID. */
static const char *stored(const char *owner, const char *payload)
{
    ss_session_t s = load_id(&g.ctx, NULL, g.now);

    assert_int_equal(ss_session_commit(&g.ctx, &s, owner, payload, 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_non_null(s.cookie);
    assert_true(ss_id_is_valid(s.cookie, strlen(s.cookie)));
    return s.cookie;
}

static int is_live(const char *id)
{
    return load_id(&g.ctx, id, g.now).state == SS_SESSION_LOADED;
}

static apr_uint64_t live_records(void)
{
    if (g.redis) {
        redisContext *c = admin_connect(&g.server);
        /* Session keys only: prefix and 64 hex digits, not the owners' indexes. */
        redisReply *r = redisCommand(c, "EVAL %s 0",
                                     "local n = 0 for _, k in ipairs(redis.call('KEYS', "
                                     "'sessstore:*')) do if #k == 74 then n = n + 1 end end "
                                     "return n");
        apr_uint64_t n = r && r->type == REDIS_REPLY_INTEGER ? (apr_uint64_t)r->integer : 999;

        freeReplyObject(r);
        redisFree(c);
        return n;
    }
    return unit_stats(g.backend).entries;
}

/* ---- new, unchanged, changed ---- */

static void test_new_session_gets_a_new_id(void **state)
{
    const char *id;
    ss_session_t s;

    (void)state;
    s = load_id(&g.ctx, NULL, g.now);
    assert_int_equal(s.state, SS_SESSION_NONE);
    assert_false(s.cookie_seen);
    /* Nothing to keep: no record, no cookie. */
    assert_int_equal(ss_session_commit(&g.ctx, &s, NULL, NULL, 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_UNCHANGED);
    assert_null(s.cookie);
    assert_int_equal(g.faults.saves, 0);

    id = stored("", "cart=1");
    s = load_id(&g.ctx, id, g.now);
    assert_int_equal(s.state, SS_SESSION_LOADED);
    assert_string_equal(s.id, id);
    assert_string_equal(s.owner, "");
    assert_string_equal(s.payload, "cart=1");
    assert_int_equal(live_records(), 1);
}

static void test_unchanged_is_not_written(void **state)
{
    const char *id = stored("alice", "a=1&b=2");
    ss_session_t s = load_id(&g.ctx, id, g.now);
    int saves = g.faults.saves;

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1&b=2", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_UNCHANGED);
    assert_null(s.cookie);
    assert_int_equal(g.faults.saves, saves);
}

static void test_changed_is_written_under_the_same_id(void **state)
{
    const char *id = stored("alice", "a=1");
    ss_session_t s = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=2", 0, g.now + SEC(1), g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_null(s.cookie); /* same ID: no Set-Cookie */
    s = load_id(&g.ctx, id, g.now + SEC(2));
    assert_string_equal(s.payload, "a=2");
    assert_string_equal(s.owner, "alice");
}

/* Defect 6: SessionMaxAge's expiry entry alone does not make a write. */
static void test_expiry_entry_within_slack_is_not_a_change(void **state)
{
    const char *id = stored("alice", "a=1&expiry=1000000000");
    ss_session_t s = load_id(&g.ctx, id, g.now);
    int saves = g.faults.saves;

    (void)state;
    g.ctx.expiry_slack = SEC(3);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1&expiry=1002000000", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_UNCHANGED);
    assert_int_equal(g.faults.saves, saves);
    /* Moved by more than the slack: written, so mod_session's own expiry
     * never falls behind. */
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1&expiry=1004000000", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_int_equal(g.faults.saves, saves + 1);
}

static void test_payload_same(void **state)
{
    (void)state;
    assert_true(ss_session_payload_same("a=1&b=2", "a=1&b=2", 0));
    assert_false(ss_session_payload_same("a=1&b=2", "a=1&b=3", 0));
    assert_false(ss_session_payload_same("a=1&b=2", "a=1", SEC(60)));
    assert_false(ss_session_payload_same("a=1", "a=1&b=2", SEC(60)));
    assert_true(ss_session_payload_same("a=1&expiry=5", "a=1&expiry=5", 0));
    assert_false(ss_session_payload_same("a=1&expiry=5", "a=1&expiry=6", 0));
    assert_true(ss_session_payload_same("expiry=5&a=1", "a=1&expiry=9", 10));
    assert_false(ss_session_payload_same("a=1&expiry=5", "a=1&expiry=15", 10));
    assert_true(ss_session_payload_same("a=1", "a=1&expiry=5", 10));
    assert_false(ss_session_payload_same("expiryx=1", "expiryx=2", SEC(60)));
    assert_true(ss_session_payload_same("", "", 0));
}

/* ---- owner change, login, logout ---- */

/* Defect 1: a new named owner never sees the previous owner's data. */
static void test_owner_change_starts_empty(void **state)
{
    const char *id = stored("alice", "user=alice&cart=3");
    ss_session_t s = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(ss_session_claim(&s, NULL), 0);
    assert_int_equal(ss_session_claim(&s, "alice"), 0);
    assert_string_equal(s.payload, "user=alice&cart=3");
    assert_int_equal(ss_session_claim(&s, "bob"), 1);
    assert_null(s.payload);
    assert_null(s.id);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "bob", "user=bob", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_string_not_equal(s.cookie, id);
    assert_false(is_live(id)); /* alice's record is deleted */
    s = load_id(&g.ctx, s.cookie, g.now);
    assert_string_equal(s.owner, "bob");
    assert_string_equal(s.payload, "user=bob");
    assert_int_equal(live_records(), 1);
}

/* An owner change noticed only at commit (the host never claimed): the
 * payload may hold the previous owner's data, so nothing is written. */
static void test_owner_change_at_commit(void **state)
{
    const char *id = stored("alice", "user=alice&cart=3");
    ss_session_t s = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "bob", "user=alice&cart=3&bob=1", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_ENDED);
    assert_string_equal(s.cookie, "");
    assert_false(is_live(id));
    assert_int_equal(live_records(), 0);
}

/* Anonymous -> logged in: the data stays (a cart survives the login), the ID
 * does not (no session fixation). */
static void test_login_keeps_data_under_a_new_id(void **state)
{
    const char *id = stored("", "cart=3");
    ss_session_t s = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(ss_session_claim(&s, "alice"), 0);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "cart=3&user=alice", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_string_not_equal(s.cookie, id);
    assert_false(is_live(id));
    s = load_id(&g.ctx, s.cookie, g.now);
    assert_string_equal(s.payload, "cart=3&user=alice");
    assert_string_equal(s.owner, "alice");
    assert_int_equal(live_records(), 1);
}

/* Defect 2: logout ends the session, whatever the application left. */
static void test_logout_ends_the_session(void **state)
{
    const char *id = stored("alice", "user=alice&cart=3");
    ss_session_t s = load_id(&g.ctx, id, g.now);
    int saves = g.faults.saves;

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "cart=3", SS_COMMIT_LOGOUT, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_ENDED);
    assert_string_equal(s.cookie, ""); /* cleared in the browser */
    assert_false(is_live(id));
    assert_int_equal(g.faults.saves, saves); /* no anonymous copy */
    assert_int_equal(live_records(), 0);
}

static void test_emptied_session_ends(void **state)
{
    const char *id = stored("", "cart=3");
    ss_session_t s = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &s, NULL, NULL, 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_ENDED);
    assert_string_equal(s.cookie, "");
    assert_false(is_live(id));
}

/* Defect 3: a logout whose delete fails is a failure, and nothing else is
 * written. */
static void test_logout_fails_closed(void **state)
{
    const char *id = stored("alice", "user=alice&cart=3");
    ss_session_t s = load_id(&g.ctx, id, g.now);
    int saves = g.faults.saves;

    (void)state;
    g.faults.fail_remove = APR_TIMEUP;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "cart=3", SS_COMMIT_LOGOUT, g.now, g.p),
                     APR_TIMEUP);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    assert_null(s.cookie);
    assert_int_equal(g.faults.saves, saves);
    g.faults.fail_remove = 0;
    assert_true(is_live(id)); /* so the response must not say "logged out" */
}

/* A rotation whose old record cannot be deleted withdraws the new one. */
static void test_rotation_fails_closed(void **state)
{
    const char *id = stored("", "cart=3");
    ss_session_t s = load_id(&g.ctx, id, g.now);

    (void)state;
    g.faults.fail_remove = APR_TIMEUP;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "cart=3&user=alice", 0, g.now, g.p),
                     APR_TIMEUP);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    assert_null(s.cookie);
    g.faults.fail_remove = 0;
    /* The withdrawal went through the same failing remove: the new record may
     * stay, unreachable (no cookie named it); the old one still works. */
    assert_true(is_live(id));
}

/* ---- store failures ---- */

static void test_store_down_at_load(void **state)
{
    const char *id = stored("alice", "a=1");
    ss_session_t s;

    (void)state;
    g.faults.fail_load = APR_TIMEUP;
    s = load_id(&g.ctx, id, g.now);
    assert_int_equal(s.state, SS_SESSION_STORE_DOWN);
    assert_int_equal(s.store_rv, APR_TIMEUP);
    /* Nothing changed: nothing to do. */
    assert_int_equal(ss_session_commit(&g.ctx, &s, NULL, NULL, 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_UNCHANGED);
    assert_null(s.cookie);
    /* An application that empties the session is a change too: with the
     * store down, "you are logged out" would be a lie. */
    assert_int_equal(ss_session_commit(&g.ctx, &s, NULL, NULL, SS_COMMIT_CHANGED, g.now, g.p),
                     APR_TIMEUP);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    /* Defect 7: a change (a login) that cannot be saved is a failure. */
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=2", 0, g.now, g.p), APR_TIMEUP);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    assert_null(s.cookie);
    g.faults.fail_load = 0;
    assert_string_equal(load_id(&g.ctx, id, g.now).payload, "a=1");
}

static void test_failed_save_is_a_failure(void **state)
{
    const char *id = stored("alice", "a=1");
    ss_session_t s = load_id(&g.ctx, id, g.now), n = load_id(&g.ctx, NULL, g.now);

    (void)state;
    g.faults.fail_save = APR_ECONNREFUSED;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=2", 0, g.now, g.p),
                     APR_ECONNREFUSED);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    assert_int_equal(ss_session_commit(&g.ctx, &n, "bob", "a=1", 0, g.now, g.p), APR_ECONNREFUSED);
    assert_int_equal(n.outcome, SS_COMMIT_FAILED);
    assert_null(n.cookie); /* no cookie for a session that does not exist */
}

static void test_oversize_is_refused_and_counted(void **state)
{
    const char *id = stored("alice", "a=1");
    ss_session_t s = load_id(&g.ctx, id, g.now);
    char *big = apr_palloc(g.p, 5000);

    (void)state;
    memset(big, 'x', 4999);
    big[4999] = '\0';
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", big, 0, g.now, g.p), APR_ENOSPC);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    assert_int_equal(unit_stats(g.backend).refused_oversize, 1);
    assert_string_equal(load_id(&g.ctx, id, g.now).payload, "a=1"); /* previous kept */
    /* One log line, then silence for a while (rate-limited). */
    g.arena->log.count = 0;
    s = load_id(&g.ctx, id, g.now);
    ss_session_commit(&g.ctx, &s, "alice", big, 0, g.now, g.p);
    assert_int_equal(unit_stats(g.backend).refused_oversize, 2);
    assert_int_equal(g.arena->log.count, 0);
}

static void test_collision_retries_once(void **state)
{
    ss_session_t s = load_id(&g.ctx, NULL, g.now);

    (void)state;
    g.faults.eexist = 1;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "", "a=1", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_true(is_live(s.cookie));
    s = load_id(&g.ctx, NULL, g.now);
    g.faults.eexist = 2;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "", "a=1", 0, g.now, g.p), APR_EEXIST);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    assert_null(s.cookie);
}

/* Logged out elsewhere while this request ran: its changes never bring the
 * session back. */
static void test_session_gone_meanwhile(void **state)
{
    const char *id = stored("alice", "a=1");
    ss_session_t s = load_id(&g.ctx, id, g.now), other = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(
        ss_session_commit(&g.ctx, &other, "alice", "a=1", SS_COMMIT_LOGOUT, g.now, g.p),
        APR_SUCCESS);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=2", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_GONE);
    /* No clearing cookie: a concurrent login may have set a newer one. */
    assert_null(s.cookie);
    assert_false(is_live(id));
    assert_int_equal(live_records(), 0);
}

/* ---- parallel requests of one session: the merge ---- */

/* Two requests load the same revision and change different keys: the later
 * one's compare-and-set fails, it reloads, merges its change and writes the
 * next revision: both changes stay. */
static void test_disjoint_keys_both_win(void **state)
{
    const char *id = stored("alice", "a=0&b=0");
    ss_session_t s = load_id(&g.ctx, id, g.now), other = load_id(&g.ctx, id, g.now);
    apr_uint32_t r0 = s.revision;

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &other, "alice", "a=0&b=2", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(other.outcome, SS_COMMIT_WRITTEN);
    assert_int_equal(other.revision, r0 + 1);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1&b=0", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_null(s.cookie);
    assert_string_equal(s.payload, "a=1&b=2");
    assert_int_equal(s.revision, r0 + 2);
    assert_int_equal(other.merge.conflicts, 0);
    assert_int_equal(s.merge.conflicts, 1);
    assert_int_equal(s.merge.merged, 1);
    assert_int_equal(s.merge.overwritten, 0);
    assert_false(s.merge.gave_up);
    s = load_id(&g.ctx, id, g.now);
    assert_string_equal(s.payload, "a=1&b=2");
    assert_int_equal(s.revision, r0 + 2);
    assert_int_equal(unit_stats(g.backend).refused_conflict, 1);
    assert_int_equal(g.faults.saves, 4); /* the first write, the other, this one twice */
}

/* Both change the same key: the later write wins for that key alone; a key
 * the later one removed goes, one the earlier one added stays. */
static void test_same_key_later_write_wins(void **state)
{
    const char *id = stored("alice", "a=0&b=0&c=0");
    ss_session_t s = load_id(&g.ctx, id, g.now), other = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &other, "alice", "a=2&b=2&c=0&d=2", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1&b=0", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_string_equal(load_id(&g.ctx, id, g.now).payload, "a=1&b=2&d=2");
}

/* Three requests interleaved: each merge lands on the newest revision. */
static void test_three_interleaved_writers(void **state)
{
    const char *id = stored("alice", "n=0");
    ss_session_t a = load_id(&g.ctx, id, g.now), b = load_id(&g.ctx, id, g.now);
    ss_session_t c;

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &a, "alice", "n=0&a=1", 0, g.now, g.p), APR_SUCCESS);
    c = load_id(&g.ctx, id, g.now); /* sees a's */
    assert_int_equal(ss_session_commit(&g.ctx, &b, "alice", "n=0&b=1", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(ss_session_commit(&g.ctx, &c, "alice", "n=0&a=1&c=1", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_string_equal(load_id(&g.ctx, id, g.now).payload, "n=0&a=1&b=1&c=1");
}

/* A session ended (logout elsewhere) while a request ran: its merge does not
 * bring it back. */
static void test_merge_never_brings_back_an_ended_session(void **state)
{
    const char *id = stored("alice", "a=0&b=0");
    ss_session_t s = load_id(&g.ctx, id, g.now), other = load_id(&g.ctx, id, g.now);
    ss_session_t logout = load_id(&g.ctx, id, g.now);

    (void)state;
    /* Another request wrote first (s must merge), then a logout. */
    assert_int_equal(ss_session_commit(&g.ctx, &other, "alice", "a=0&b=2", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(
        ss_session_commit(&g.ctx, &logout, "alice", NULL, SS_COMMIT_LOGOUT, g.now, g.p),
        APR_SUCCESS);
    assert_int_equal(logout.outcome, SS_COMMIT_ENDED);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1&b=0", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_GONE);
    assert_null(s.cookie);
    assert_false(is_live(id));
    assert_int_equal(live_records(), 0);
}

/* mod_session_crypto's ciphertext cannot be merged: the later write wins
 * for the whole session, counted. */
static void test_unmergeable_payload_overwrites(void **state)
{
    const char *id = stored("alice", "U2FsdGVkX1+0/abc==");
    ss_session_t s = load_id(&g.ctx, id, g.now), other = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(
        ss_session_commit(&g.ctx, &other, "alice", "U2FsdGVkX1+1/def==", 0, g.now, g.p),
        APR_SUCCESS);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "U2FsdGVkX1+2/ghi==", 0, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_string_equal(load_id(&g.ctx, id, g.now).payload, "U2FsdGVkX1+2/ghi==");
    assert_int_equal(s.merge.conflicts, 1);
    assert_int_equal(s.merge.merged, 0);
    assert_int_equal(s.merge.overwritten, 1);
}

/* A change already in the store (both requests set the same value): the
 * merge writes nothing. */
static void test_merge_of_a_change_already_there_writes_nothing(void **state)
{
    const char *id = stored("alice", "a=0");
    ss_session_t s = load_id(&g.ctx, id, g.now), other = load_id(&g.ctx, id, g.now);
    int saves;

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &other, "alice", "a=1", 0, g.now, g.p), APR_SUCCESS);
    saves = g.faults.saves;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_UNCHANGED);
    assert_int_equal(s.revision, other.revision);
    assert_int_equal(g.faults.saves, saves + 1); /* the refused compare-and-set only */
}

/* Conflicts on every try: the commit gives up after its retries (or its
 * time), wrote nothing, and fails (the response must not claim success). */
static void test_merge_gives_up(void **state)
{
    const char *id = stored("alice", "a=0");
    ss_session_t s = load_id(&g.ctx, id, g.now);
    int saves = g.faults.saves;

    (void)state;
    g.faults.fail_save = SS_ECONFLICT;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1", 0, g.now, g.p), SS_ECONFLICT);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    /* Retried until the budget or the count ran out, merging every time. */
    assert_true(s.merge.conflicts > 1 && s.merge.conflicts <= 1 + SS_SESSION_MERGE_RETRIES);
    assert_int_equal(g.faults.saves - saves, (int)s.merge.conflicts);
    assert_int_equal(s.merge.merged, s.merge.conflicts - 1);
    assert_true(s.merge.gave_up);
    g.faults.fail_save = 0;
    assert_string_equal(load_id(&g.ctx, id, g.now).payload, "a=0");
}

/* A store outage during the merge's reload fails the commit. */
static void test_merge_reload_fails(void **state)
{
    const char *id = stored("alice", "a=0");
    ss_session_t s = load_id(&g.ctx, id, g.now), other = load_id(&g.ctx, id, g.now);

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &other, "alice", "b=1&a=0", 0, g.now, g.p),
                     APR_SUCCESS);
    g.faults.fail_load = APR_TIMEUP;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=1", 0, g.now, g.p), APR_TIMEUP);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    g.faults.fail_load = 0;
    assert_string_equal(load_id(&g.ctx, id, g.now).payload, "b=1&a=0");
}

/* ---- cookies ---- */

/* Defect 10: junk cookies do not use up the lookups. */
static void test_malformed_cookies_do_not_count(void **state)
{
    const char *id = stored("alice", "a=1");
    ss_session_t s;
    char unknown[5][SS_ID_LEN + 1];
    int i;

    (void)state;
    ss_session_load(&g.ctx, cookies(9, "x", "", "yy", "../..", "%00", "a b", "1", "2", id), g.now,
                    g.p, &s);
    assert_int_equal(s.state, SS_SESSION_LOADED);
    assert_int_equal(s.malformed, 8);
    for (i = 0; i < 5; i++) {
        assert_int_equal(ss_id_generate(unknown[i]), APR_SUCCESS);
    }
    /* Well-formed unknown IDs each cost a lookup: at most four are tried. */
    ss_session_load(&g.ctx,
                    cookies(6, unknown[0], unknown[1], unknown[2], unknown[3], unknown[4], id),
                    g.now, g.p, &s);
    assert_int_equal(s.state, SS_SESSION_NONE);
    assert_int_equal(s.unknown, SS_SESSION_MAX_CANDIDATES);
    assert_true(s.cookie_seen);
    ss_session_load(&g.ctx, cookies(3, unknown[0], unknown[1], id), g.now, g.p, &s);
    assert_int_equal(s.state, SS_SESSION_LOADED);
    assert_int_equal(s.unknown, 2);
}

/* An ID the store does not know is never adopted: a new one is issued. */
static void test_unknown_id_is_not_adopted(void **state)
{
    char forged[SS_ID_LEN + 1];
    ss_session_t s;

    (void)state;
    assert_int_equal(ss_id_generate(forged), APR_SUCCESS);
    s = load_id(&g.ctx, forged, g.now);
    assert_int_equal(s.state, SS_SESSION_NONE);
    assert_int_equal(s.unknown, 1);
    assert_int_equal(s.expired, 0); /* a miss: no record was there */
    assert_int_equal(ss_session_commit(&g.ctx, &s, "", "a=1", 0, g.now, g.p), APR_SUCCESS);
    assert_string_not_equal(s.cookie, forged);
    assert_false(is_live(forged));
}

/* ---- expiry ---- */

/* A session idle past the timeout loads as expired (the store held a
 * record: SS_EEXPIRED), counted apart from an unknown ID, and is never
 * adopted: the next save gets a new ID. */
static void test_idle_timed_out_loads_as_expired(void **state)
{
    apr_time_t later = g.now + SEC(61);
    const char *id;
    ss_session_t s;

    (void)state;
    g.ctx.expiry.idle = SEC(60);
    g.ctx.retention = g.ctx.expiry;
    id = stored("alice", "a=1");
    s = load_id(&g.ctx, id, later);
    assert_int_equal(s.state, SS_SESSION_NONE);
    assert_null(s.id);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.unknown, 1);
    assert_int_equal(unit_stats(g.backend).expired, 1);
    /* Dead for every location: removed, and the next save gets a new ID. */
    assert_int_equal(live_records(), 0);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "", "a=2", 0, later, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    assert_string_not_equal(s.cookie, id);
    /* Gone now: the same cookie is a plain miss. */
    s = load_id(&g.ctx, id, later);
    assert_int_equal(s.state, SS_SESSION_NONE);
    assert_int_equal(s.expired, 0);
    assert_int_equal(s.unknown, 1);
}

/* Defect 4: one rule on both backends. The location judges its loads; the
 * store keeps the record as long as the most lenient location could still
 * accept it, so a strict location neither ends nor blocks it elsewhere. */
static void test_per_location_expiry(void **state)
{
    ss_session_ctx_t strict = g.ctx;
    const char *id;
    ss_session_t s;

    (void)state;
    strict.expiry.idle = SEC(60);
    g.ctx.retention.idle = SEC(1800); /* the server's most lenient */
    strict.retention = g.ctx.retention;
    id = stored("alice", "a=1");

    s = load_id(&strict, id, g.now + SEC(120));
    assert_int_equal(s.state, SS_SESSION_NONE); /* idle for this location */
    assert_int_equal(s.expired, 1);             /* a record was there: counted as expired */
    s = load_id(&g.ctx, id, g.now + SEC(120));
    assert_int_equal(s.state, SS_SESSION_LOADED); /* still live elsewhere */
    assert_int_equal(s.expired, 0);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "a=2", 0, g.now + SEC(120), g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN); /* not silently dropped */
    /* A strict location's writes keep it as long as the lenient one would. */
    s = load_id(&strict, id, g.now + SEC(150));
    assert_int_equal(s.state, SS_SESSION_LOADED);
    assert_int_equal(ss_session_commit(&strict, &s, "alice", "a=3", 0, g.now + SEC(150), g.p),
                     APR_SUCCESS);
    assert_int_equal(load_id(&g.ctx, id, g.now + SEC(1500)).state, SS_SESSION_LOADED);
    /* Dead for every location: gone from the store. */
    assert_int_equal(load_id(&g.ctx, id, g.now + SEC(1500) + SEC(1800)).state, SS_SESSION_NONE);
    assert_int_equal(live_records(), 0);
}

/* A logout at a strict location ends the session everywhere, even though
 * that location no longer accepts it. */
static void test_logout_at_a_strict_location(void **state)
{
    ss_session_ctx_t strict = g.ctx;
    const char *id = stored("alice", "a=1");
    ss_session_t s;

    (void)state;
    strict.expiry.idle = SEC(60);
    s = load_id(&strict, id, g.now + SEC(120));
    assert_int_equal(s.state, SS_SESSION_NONE);
    /* Merely visiting with nothing to save deletes nothing. */
    assert_int_equal(ss_session_commit(&strict, &s, NULL, NULL, 0, g.now + SEC(120), g.p),
                     APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_UNCHANGED);
    assert_null(s.cookie);
    assert_int_equal(load_id(&g.ctx, id, g.now + SEC(120)).state, SS_SESSION_LOADED);
    /* A logout there does, while that location judges it expired. */
    s = load_id(&strict, id, g.now + SEC(200));
    assert_int_equal(s.state, SS_SESSION_NONE);
    assert_int_equal(s.expired, 1);
    assert_int_equal(
        ss_session_commit(&strict, &s, NULL, NULL, SS_COMMIT_LOGOUT, g.now + SEC(200), g.p),
        APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_ENDED);
    assert_string_equal(s.cookie, "");
    assert_int_equal(load_id(&g.ctx, id, g.now + SEC(200)).state, SS_SESSION_NONE);
    assert_int_equal(live_records(), 0);
}

static void test_retention_widens(void **state)
{
    ss_expiry_t keep = {SEC(60), SEC(600)}, lenient = {SEC(1800), 0}, strict = {SEC(10), SEC(20)};

    (void)state;
    ss_expiry_widen(&keep, &strict);
    assert_true(keep.idle == SEC(60) && keep.absolute == SEC(600));
    ss_expiry_widen(&keep, &lenient);
    assert_true(keep.idle == SEC(1800) && keep.absolute == 0); /* 0: off is the longest */
}

/* ---- records that are not ours to read ---- */

/* The stored bytes of the only record, to corrupt in place: in Redis by
 * GET/SET, in the arena by finding its header (the payload is sealed). The
 * byte at offset_from_start becomes value, or with flip is XORed with it
 * (a random byte such as the nonce's may already hold any value). */
static void corrupt(int offset_from_start, unsigned char value, int flip)
{
    if (g.redis) {
        redisContext *c = admin_connect(&g.server);
        redisReply
            *keys = redisCommand(
                c,
                "KEYS sessstore:????????????????????????????????????????????????????????????????"),
            *v;
        char *buf;

        assert_int_equal(keys->elements, 1);
        v = redisCommand(c, "GET %s", keys->element[0]->str);
        buf = apr_pmemdup(g.p, v->str, v->len);
        buf[offset_from_start] = (char)(flip ? buf[offset_from_start] ^ value : value);
        freeReplyObject(
            redisCommand(c, "SET %s %b KEEPTTL", keys->element[0]->str, buf, (size_t)v->len));
        freeReplyObject(v);
        freeReplyObject(keys);
        redisFree(c);
    } else {
        /* The only record in the arena, found by its clear header: magic,
         * version, the sealed flag and its creation time (g.now). */
        unsigned char head[12] = {'S', 'S', SS_RECORD_VERSION, SS_RECORD_FLAG_SEALED};
        char *base = g.arena->base, *at = NULL, *end = base + g.arena->size;
        int i;

        for (i = 0; i < 8; i++) {
            head[4 + i] = (unsigned char)((apr_uint64_t)g.now >> (56 - 8 * i));
        }
        for (char *q = base; q + sizeof(head) <= end; q++) {
            if (!memcmp(q, head, sizeof(head))) {
                assert_null(at);
                at = q;
            }
        }
        assert_non_null(at);
        at[offset_from_start] = (char)(flip ? at[offset_from_start] ^ value : value);
    }
}

/* Defect 11: a malformed record is a miss, removed and counted; the request
 * goes on as a new session. */
static void test_malformed_record_is_removed(void **state)
{
    const char *id = stored("alice", "unique-payload-1");

    (void)state;
    corrupt(30, 0x5a, 1); /* a byte of the nonce, changed */
    assert_int_equal(load_id(&g.ctx, id, g.now).state, SS_SESSION_NONE);
    assert_int_equal(unit_stats(g.backend).malformed, 1);
    assert_int_equal(live_records(), 0);
}

/* A record of a newer format (a rolling upgrade) is a miss left in place. */
static void test_newer_record_is_left_alone(void **state)
{
    const char *id = stored("alice", "unique-payload-2");

    (void)state;
    corrupt(2, SS_RECORD_VERSION + 1, 0);
    assert_int_equal(load_id(&g.ctx, id, g.now).state, SS_SESSION_NONE);
    assert_int_equal(unit_stats(g.backend).newer_format, 1);
    assert_int_equal(live_records(), 1);
}

/* A forged creation time near the end of time does not wrap around. */
/* ---- log out everywhere ---- */

/* A session of owner, and the ID under which it is stored, as a login makes
 * it: an anonymous session logging in. */
static const char *login(const char *owner, apr_time_t now)
{
    ss_session_t s = load_id(&g.ctx, NULL, now);

    assert_int_equal(ss_session_commit(&g.ctx, &s, owner, "k=v", 0, now, g.p), APR_SUCCESS);
    assert_int_equal(s.outcome, SS_COMMIT_WRITTEN);
    return s.cookie;
}

static void test_revoke_parse(void **state)
{
    (void)state;
    assert_int_equal(ss_session_revoke_parse("user"), SS_REVOKE_USER);
    assert_int_equal(ss_session_revoke_parse(" User\t"), SS_REVOKE_USER);
    assert_int_equal(ss_session_revoke_parse("others"), SS_REVOKE_OTHERS);
    assert_int_equal(ss_session_revoke_parse("OTHERS "), SS_REVOKE_OTHERS);
    assert_int_equal(ss_session_revoke_parse(NULL), SS_REVOKE_NONE);
    assert_int_equal(ss_session_revoke_parse(""), SS_REVOKE_NONE);
    assert_int_equal(ss_session_revoke_parse("users"), SS_REVOKE_NONE);
    assert_int_equal(ss_session_revoke_parse("user others"), SS_REVOKE_NONE);
    assert_int_equal(ss_session_revoke_parse("all"), SS_REVOKE_NONE);
}

static void test_revoke_user_ends_every_session_of_the_owner(void **state)
{
    const char *a1 = login("alice", g.now), *a2 = login("alice", g.now),
               *a3 = login("alice", g.now), *b1 = login("bob", g.now), *b2 = login("bob", g.now),
               *anon = stored("", "cart=1");
    ss_session_t s = load_id(&g.ctx, a2, g.now);
    apr_size_t n = 0;

    (void)state;
    assert_int_equal(s.state, SS_SESSION_LOADED);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", s.payload, 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(ss_session_revoke(&g.ctx, &s, "alice", SS_REVOKE_USER, g.now, &n),
                     APR_SUCCESS);
    assert_int_equal(n, 3);
    assert_int_equal(s.outcome, SS_COMMIT_ENDED);
    assert_non_null(s.cookie);
    assert_string_equal(s.cookie, ""); /* the browser's cookie is cleared */
    assert_false(is_live(a1));
    assert_false(is_live(a2));
    assert_false(is_live(a3));
    assert_true(is_live(b1));
    assert_true(is_live(b2));
    assert_true(is_live(anon));
    assert_int_equal(live_records(), 3);
}

static void test_revoke_others_keeps_this_one(void **state)
{
    const char *a1 = login("alice", g.now), *a2 = login("alice", g.now),
               *a3 = login("alice", g.now), *b1 = login("bob", g.now);
    ss_session_t s = load_id(&g.ctx, a1, g.now);
    apr_size_t n = 0;

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", s.payload, 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(ss_session_revoke(&g.ctx, &s, NULL, SS_REVOKE_OTHERS, g.now, &n), APR_SUCCESS);
    assert_int_equal(n, 2);
    assert_null(s.cookie);
    assert_true(is_live(a1));
    assert_false(is_live(a2));
    assert_false(is_live(a3));
    assert_true(is_live(b1));
}

/* A login and "log out my other devices" in one response: the new session
 * is the one kept. */
static void test_revoke_others_at_login(void **state)
{
    const char *a1 = login("alice", g.now), *a2 = login("alice", g.now);
    ss_session_t s = load_id(&g.ctx, NULL, g.now);
    apr_size_t n = 0;

    (void)state;
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "k=v", 0, g.now, g.p), APR_SUCCESS);
    assert_int_equal(ss_session_revoke(&g.ctx, &s, "alice", SS_REVOKE_OTHERS, g.now, &n),
                     APR_SUCCESS);
    assert_int_equal(n, 2);
    assert_string_equal(s.cookie, s.id);
    assert_true(is_live(s.id));
    assert_false(is_live(a1));
    assert_false(is_live(a2));
}

/* The correctness rule: a session kept alive by touches long after its last
 * write, past every idle deadline it had when it was indexed, still ends
 * with its owner's. With an absolute timeout (the index entry's deadline)
 * and without one (an open entry, checked by existence). */
static void revoke_after_touches(apr_interval_time_t absolute)
{
    ss_session_ctx_t ctx = g.ctx;
    const char *a1, *later;
    ss_session_t s;
    apr_size_t n = 0;
    int k;

    ctx.expiry.idle = ctx.retention.idle = SEC(60);
    ctx.expiry.absolute = ctx.retention.absolute = absolute;
    g.ctx = ctx;
    a1 = login("alice", g.now);
    for (k = 1; k <= 20; k++) { /* a load every 50 s: touched, never written */
        s = load_id(&ctx, a1, g.now + k * SEC(50));
        assert_int_equal(s.state, SS_SESSION_LOADED);
    }
    /* Another login of alice's trims her index, 1000 s on. */
    later = login("alice", g.now + SEC(1000));
    s = load_id(&ctx, later, g.now + SEC(1000));
    assert_int_equal(ss_session_revoke(&ctx, &s, "alice", SS_REVOKE_OTHERS, g.now + SEC(1000), &n),
                     APR_SUCCESS);
    assert_int_equal(n, 1);
    assert_int_equal(load_id(&ctx, a1, g.now + SEC(1001)).state, SS_SESSION_NONE);
    assert_int_equal(load_id(&ctx, later, g.now + SEC(1001)).state, SS_SESSION_LOADED);
}

static void test_revoke_after_touches_absolute(void **state)
{
    (void)state;
    revoke_after_touches(SEC(7200));
}

static void test_revoke_after_touches_idle_only(void **state)
{
    (void)state;
    revoke_after_touches(0);
}

static void test_revoke_anonymous_ends_nothing(void **state)
{
    const char *anon = stored("", "cart=1"), *a1 = login("alice", g.now);
    ss_session_t s = load_id(&g.ctx, anon, g.now);
    apr_size_t n = 9;

    (void)state;
    assert_int_equal(ss_session_revoke(&g.ctx, &s, NULL, SS_REVOKE_USER, g.now, &n), APR_SUCCESS);
    assert_int_equal(n, 0);
    assert_null(s.cookie);
    assert_true(is_live(anon));
    assert_true(is_live(a1));
}

static void test_revoke_fails_closed(void **state)
{
    const char *a1 = login("alice", g.now), *a2 = login("alice", g.now);
    ss_session_t s = load_id(&g.ctx, a1, g.now);

    (void)state;
    g.faults.fail_remove = APR_TIMEUP;
    assert_int_equal(ss_session_revoke(&g.ctx, &s, "alice", SS_REVOKE_USER, g.now, NULL),
                     APR_TIMEUP);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
    assert_null(s.cookie);
    g.faults.fail_remove = 0;
    assert_true(is_live(a2));
    /* A login whose index entry cannot be written is not stored. */
    g.faults.fail_save = APR_TIMEUP;
    s = load_id(&g.ctx, NULL, g.now);
    assert_int_equal(ss_session_commit(&g.ctx, &s, "alice", "k=v", 0, g.now, g.p), APR_TIMEUP);
    assert_int_equal(s.outcome, SS_COMMIT_FAILED);
}

/* The store ops behind the CLI: scan (all, by owner, with a limit),
 * revoke_owner with its count, purge_expired. */
typedef struct {
    int n;
    apr_size_t bytes;
    int readable;
} tally_t;

static int tally(void *baton, const ss_store_entry_t *e)
{
    tally_t *t = baton;

    t->n++;
    t->bytes += e->size;
    t->readable += e->readable && e->created == g.now && e->expires > g.now;
    return 0;
}

static void test_scan_and_purge(void **state)
{
    ss_owner_t alice, bob;
    tally_t t = {0, 0, 0};
    apr_size_t n = 0;

    (void)state;
    login("alice", g.now);
    login("alice", g.now);
    login("bob", g.now);
    stored("", "cart=1");
    assert_int_equal(ss_owner_hash("alice", &alice), APR_SUCCESS);
    assert_int_equal(ss_owner_hash("bob", &bob), APR_SUCCESS);
    assert_int_equal(g.backend->ops->scan(g.backend, NULL, 0, tally, &t, g.now, g.p), APR_SUCCESS);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.readable, 4);
    assert_true(t.bytes > 4 * SS_RECORD_HEADER_LEN);
    memset(&t, 0, sizeof(t));
    assert_int_equal(g.backend->ops->scan(g.backend, &alice, 0, tally, &t, g.now, g.p),
                     APR_SUCCESS);
    assert_int_equal(t.n, 2);
    memset(&t, 0, sizeof(t));
    assert_int_equal(g.backend->ops->scan(g.backend, NULL, 3, tally, &t, g.now, g.p), APR_SUCCESS);
    assert_int_equal(t.n, 3);
    assert_int_equal(g.backend->ops->revoke_owner(g.backend, &bob, NULL, g.now, &n), APR_SUCCESS);
    assert_int_equal(n, 1);
    memset(&t, 0, sizeof(t));
    assert_int_equal(g.backend->ops->scan(g.backend, &bob, 0, tally, &t, g.now, g.p), APR_SUCCESS);
    assert_int_equal(t.n, 0);
    assert_int_equal(g.backend->ops->purge_expired(g.backend, g.now, &n), APR_SUCCESS);
    assert_int_equal(n, 0); /* nothing is dead */
    assert_int_equal(live_records(), 3);
}

static void test_forged_times_do_not_overflow(void **state)
{
    ss_expiry_t e = {SEC(60), SEC(600)};
    apr_time_t huge = (apr_time_t)0x7fffffffffffff00LL;

    (void)state;
    assert_int_equal(ss_expiry_check(&e, huge, huge, g.now), SS_LIVE);
    assert_true(ss_expiry_deadline(&e, huge, huge) > 0);
}

#define POLICY_TESTS(name)                                                                         \
    const struct CMUnitTest name[] = {                                                             \
        UNIT_TEST(test_new_session_gets_a_new_id),                                                 \
        UNIT_TEST(test_unchanged_is_not_written),                                                  \
        UNIT_TEST(test_changed_is_written_under_the_same_id),                                      \
        UNIT_TEST(test_expiry_entry_within_slack_is_not_a_change),                                 \
        UNIT_TEST(test_payload_same),                                                              \
        UNIT_TEST(test_owner_change_starts_empty),                                                 \
        UNIT_TEST(test_owner_change_at_commit),                                                    \
        UNIT_TEST(test_login_keeps_data_under_a_new_id),                                           \
        UNIT_TEST(test_logout_ends_the_session),                                                   \
        UNIT_TEST(test_emptied_session_ends),                                                      \
        UNIT_TEST(test_logout_fails_closed),                                                       \
        UNIT_TEST(test_rotation_fails_closed),                                                     \
        UNIT_TEST(test_store_down_at_load),                                                        \
        UNIT_TEST(test_failed_save_is_a_failure),                                                  \
        UNIT_TEST(test_oversize_is_refused_and_counted),                                           \
        UNIT_TEST(test_collision_retries_once),                                                    \
        UNIT_TEST(test_session_gone_meanwhile),                                                    \
        UNIT_TEST(test_disjoint_keys_both_win),                                                    \
        UNIT_TEST(test_same_key_later_write_wins),                                                 \
        UNIT_TEST(test_three_interleaved_writers),                                                 \
        UNIT_TEST(test_merge_never_brings_back_an_ended_session),                                  \
        UNIT_TEST(test_unmergeable_payload_overwrites),                                            \
        UNIT_TEST(test_merge_of_a_change_already_there_writes_nothing),                            \
        UNIT_TEST(test_merge_gives_up),                                                            \
        UNIT_TEST(test_merge_reload_fails),                                                        \
        UNIT_TEST(test_malformed_cookies_do_not_count),                                            \
        UNIT_TEST(test_unknown_id_is_not_adopted),                                                 \
        UNIT_TEST(test_idle_timed_out_loads_as_expired),                                           \
        UNIT_TEST(test_per_location_expiry),                                                       \
        UNIT_TEST(test_logout_at_a_strict_location),                                               \
        UNIT_TEST(test_retention_widens),                                                          \
        UNIT_TEST(test_malformed_record_is_removed),                                               \
        UNIT_TEST(test_newer_record_is_left_alone),                                                \
        UNIT_TEST(test_forged_times_do_not_overflow),                                              \
        UNIT_TEST(test_revoke_parse),                                                              \
        UNIT_TEST(test_revoke_user_ends_every_session_of_the_owner),                               \
        UNIT_TEST(test_revoke_others_keeps_this_one),                                              \
        UNIT_TEST(test_revoke_others_at_login),                                                    \
        UNIT_TEST(test_revoke_after_touches_absolute),                                             \
        UNIT_TEST(test_revoke_after_touches_idle_only),                                            \
        UNIT_TEST(test_revoke_anonymous_ends_nothing),                                             \
        UNIT_TEST(test_revoke_fails_closed),                                                       \
        UNIT_TEST(test_scan_and_purge),                                                            \
    }

int main(void)
{
    POLICY_TESTS(shm);
    POLICY_TESTS(redis);
    int failed;

    failed = unit_run("policy over shm", shm, UNIT_COUNT(shm), group_setup_shm, group_teardown);
    failed += unit_run("policy over redis, lean load", redis, UNIT_COUNT(redis), group_setup_redis,
                       group_teardown);
    failed += unit_run("policy over redis, script load", redis, UNIT_COUNT(redis),
                       group_setup_redis_script, group_teardown);
    return failed;
}
