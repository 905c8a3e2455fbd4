/* test_session.c - session operations by ID over a real shared-memory store.
 *
 * The shm store is wrapped in a counting store, so that the tests can tell
 * whether the session layer called the backend at all (and with what). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_global_mutex.h>
#include <apr_pools.h>
#include <apr_shm.h>
#include <apr_strings.h>

#include "ss_log.h"
#include "ss_session.h"
#include "ss_shm.h"
#include "unit.h"

#define SEC(n) apr_time_from_sec(n)
#define T0 SEC(1700000000)
#define ARENA_SIZE (256 * 1024)
#define ARENA_MAX_RECORD (16 * 1024)

typedef struct {
    ss_store_t *inner;
    int loads, saves, removes;
    apr_time_t last_deadline;
    int ignore_expiry; /* simulate a backend that forgets to check expiry */
} counting_t;

typedef struct {
    unit_arena_t shm; /* first: the arena, its mutex and the captured log */
    ss_store_t store; /* the counting wrapper around shm.store */
    counting_t counts;
    ss_session_ctx_t ctx;
} fixture_t;

static apr_status_t c_load(ss_store_t *s, const ss_key_t *key, const ss_expiry_t *expiry,
                           apr_time_t now, apr_pool_t *p, ss_record_t *rec)
{
    counting_t *c = s->impl;
    static const ss_expiry_t none = {0, 0};

    c->loads++;
    return c->inner->ops->load(c->inner, key, c->ignore_expiry ? &none : expiry, now, p, rec);
}

static apr_status_t c_save(ss_store_t *s, const ss_key_t *key, const ss_record_t *rec,
                           apr_time_t deadline, ss_save_mode_e mode, apr_pool_t *p)
{
    counting_t *c = s->impl;

    c->saves++;
    c->last_deadline = deadline;
    return c->inner->ops->save(c->inner, key, rec, c->ignore_expiry ? 0 : deadline, mode, p);
}

static apr_status_t c_remove(ss_store_t *s, const ss_key_t *key)
{
    counting_t *c = s->impl;

    c->removes++;
    return c->inner->ops->remove(c->inner, key);
}

static apr_status_t c_stats(ss_store_t *s, ss_store_stats_t *stats)
{
    counting_t *c = s->impl;

    return c->inner->ops->stats(c->inner, stats);
}

static void c_close(ss_store_t *s)
{
    counting_t *c = s->impl;

    c->inner->ops->close(c->inner);
}

static const ss_store_ops_t counting_ops = {"counting", c_load, c_save, c_remove, c_stats, c_close};

static int setup(void **state)
{
    fixture_t *f = unit_arena_create("test_session", sizeof(fixture_t));

    if (!f) {
        return -1;
    }
    unit_arena_open(&f->shm, ARENA_SIZE, ARENA_MAX_RECORD);
    f->counts.inner = f->shm.store;
    f->store.ops = &counting_ops;
    f->store.impl = &f->counts;
    f->ctx.store = &f->store;
    f->ctx.expiry.idle = SEC(1800);
    f->ctx.expiry.absolute = SEC(8 * 3600);
    f->ctx.max_size = 4096;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    /* Closing the counting wrapper only closes shm.store. */
    unit_arena_destroy(&f->shm);
    return 0;
}

static ss_record_t make(apr_time_t created, apr_time_t accessed, const char *user,
                        const char *payload)
{
    ss_record_t r;

    r.created = created;
    r.accessed = accessed;
    r.user = user;
    r.payload = payload;
    r.payload_len = strlen(payload);
    return r;
}

static void new_id(char *id)
{
    assert_int_equal(ss_id_generate(id), APR_SUCCESS);
    assert_true(ss_id_is_valid(id, strlen(id)));
}

/* A new session under a fresh ID: rec, written as new. */
static void new_session(fixture_t *f, char *id, const ss_record_t *rec)
{
    new_id(id);
    assert_int_equal(ss_session_write(&f->ctx, id, rec, 1, f->shm.p), APR_SUCCESS);
}

static void assert_record(const ss_record_t *got, const ss_record_t *want)
{
    assert_int_equal(got->created, want->created);
    assert_int_equal(got->accessed, want->accessed);
    assert_string_equal(got->user, want->user);
    assert_int_equal(got->payload_len, want->payload_len);
    assert_memory_equal(got->payload, want->payload, want->payload_len);
    assert_int_equal(got->payload[got->payload_len], '\0');
}

static void test_round_trip(void **state)
{
    fixture_t *f = *state;
    char a[SS_ID_LEN + 1], b[SS_ID_LEN + 1];
    ss_record_t ra = make(T0, T0, "alice", "a=1&b=2");
    ss_record_t rb = make(T0 - SEC(7), T0, "", "anonymous=yes");
    ss_record_t out;
    ss_store_stats_t st;

    new_session(f, a, &ra);
    new_session(f, b, &rb);
    assert_int_equal(f->counts.saves, 2);

    memset(&out, 0, sizeof(out));
    assert_int_equal(ss_session_load(&f->ctx, a, T0 + SEC(1), f->shm.p, &out), APR_SUCCESS);
    assert_record(&out, &ra);
    memset(&out, 0, sizeof(out));
    assert_int_equal(ss_session_load(&f->ctx, b, T0 + SEC(1), f->shm.p, &out), APR_SUCCESS);
    assert_record(&out, &rb);

    st = unit_stats(f->shm.store);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.saves, 2);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 0);
    assert_int_equal(st.touches, 0);
}

static void test_save_overwrites(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t v1 = make(T0, T0, "alice", "v=1");
    ss_record_t v2 = make(T0, T0 + SEC(2), "alice", "v=2&more=data");
    ss_record_t out;

    new_session(f, id, &v1);
    assert_int_equal(ss_session_write(&f->ctx, id, &v2, 0, f->shm.p), APR_SUCCESS);
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(3), f->shm.p, &out), APR_SUCCESS);
    assert_record(&out, &v2);
    assert_int_equal(unit_stats(f->shm.store).entries, 1);
}

static void test_save_passes_deadline(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0 + SEC(3600), "u", "x");

    /* idle end (accessed + 30 min) comes before absolute end (created + 8 h) */
    new_session(f, id, &r);
    assert_int_equal(f->counts.last_deadline, T0 + SEC(3600 + 1800));
    /* absolute end first (a fresh ID: the first record is dead by now) */
    r.accessed = T0 + SEC(8 * 3600 - 60);
    new_session(f, id, &r);
    assert_int_equal(f->counts.last_deadline, T0 + SEC(8 * 3600));
    /* no expiry at all: no deadline, and the record lives on */
    f->ctx.expiry.idle = 0;
    f->ctx.expiry.absolute = 0;
    new_session(f, id, &r);
    assert_int_equal(f->counts.last_deadline, 0);
    {
        ss_record_t out;

        assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(10 * 365 * 86400LL), f->shm.p, &out),
                         APR_SUCCESS);
        assert_record(&out, &r);
    }
}

static void test_malformed_ids(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_store_stats_t before, after;
    const char *bad[12];
    char plus[SS_ID_LEN + 1], last[SS_ID_LEN + 1], shortid[SS_ID_LEN];
    size_t i, nbad = 0;

    new_session(f, id, &r);

    memcpy(plus, id, sizeof(plus));
    plus[7] = '+';
    memcpy(last, id, sizeof(last));
    last[SS_ID_LEN - 1] = 'B';
    memcpy(shortid, id, SS_ID_LEN - 1);
    shortid[SS_ID_LEN - 1] = '\0';
    bad[nbad++] = NULL;
    bad[nbad++] = "";
    bad[nbad++] = "short";
    bad[nbad++] = shortid;
    bad[nbad++] = apr_pstrcat(f->shm.p, id, "A", NULL);
    bad[nbad++] = apr_pstrcat(f->shm.p, id, "\n", NULL);
    bad[nbad++] = apr_pstrcat(f->shm.p, " ", shortid, NULL);
    bad[nbad++] = plus;
    bad[nbad++] = last;
    bad[nbad++] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    bad[nbad++] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/";

    before = unit_stats(f->shm.store);
    for (i = 0; i < nbad; i++) {
        ss_record_t out;

        assert_int_equal(ss_session_load(&f->ctx, bad[i], T0 + SEC(1), f->shm.p, &out),
                         APR_NOTFOUND);
        /* Removing a malformed ID is a quiet no-op. */
        assert_int_equal(ss_session_remove(&f->ctx, bad[i]), APR_SUCCESS);
        /* Writing one is refused, new or not. */
        assert_int_equal(ss_session_write(&f->ctx, bad[i], &r, 1, f->shm.p), APR_EINVAL);
        assert_int_equal(ss_session_write(&f->ctx, bad[i], &r, 0, f->shm.p), APR_EINVAL);
    }
    after = unit_stats(f->shm.store);
    /* The store was never asked. */
    assert_int_equal(f->counts.loads, 0);
    assert_int_equal(f->counts.saves, 1);
    assert_int_equal(f->counts.removes, 0);
    assert_int_equal(after.misses, before.misses);
    assert_int_equal(after.hits, before.hits);
    assert_int_equal(after.removes, before.removes);
    assert_int_equal(after.entries, 1);
    assert_memory_equal(&after, &before, sizeof(after));

    /* The real one is still there. */
    {
        ss_record_t out;

        assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(1), f->shm.p, &out), APR_SUCCESS);
        assert_record(&out, &r);
        assert_int_equal(f->counts.loads, 1);
    }
}

static void test_unknown_id(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1], other[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_record_t out;
    ss_store_stats_t st;

    new_session(f, id, &r);
    new_id(other);
    assert_int_equal(ss_session_load(&f->ctx, other, T0 + SEC(1), f->shm.p, &out), APR_NOTFOUND);
    assert_int_equal(f->counts.loads, 1);
    st = unit_stats(f->shm.store);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.entries, 1);
}

static void test_expired_idle(void **state)
{
    fixture_t *f = *state;
    char a[SS_ID_LEN + 1], b[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_record_t out;
    ss_store_stats_t st;

    new_session(f, a, &r);
    new_session(f, b, &r);
    /* One microsecond before the idle deadline: alive. */
    assert_int_equal(ss_session_load(&f->ctx, a, T0 + SEC(1800) - 1, f->shm.p, &out), APR_SUCCESS);
    /* At the deadline: gone, and removed. */
    assert_int_equal(ss_session_load(&f->ctx, b, T0 + SEC(1800), f->shm.p, &out), APR_NOTFOUND);
    st = unit_stats(f->shm.store);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.entries, 1);
    /* Even with a clock from before the deadline, it stays gone. */
    assert_int_equal(ss_session_load(&f->ctx, b, T0 + SEC(1), f->shm.p, &out), APR_NOTFOUND);
    st = unit_stats(f->shm.store);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.expired, 1);
}

static void test_expired_absolute(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_record_t out;
    ss_store_stats_t st;

    f->ctx.expiry.absolute = SEC(3600);
    new_session(f, id, &r);
    /* Kept busy, so idle never fires. */
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(1200), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0 + SEC(1200));
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(2400), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0 + SEC(2400));
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(3600) - 1, f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.created, T0);
    /* The hard limit, however fresh the last access. */
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(3600), f->shm.p, &out), APR_NOTFOUND);
    st = unit_stats(f->shm.store);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(3000), f->shm.p, &out), APR_NOTFOUND);
}

static void test_touch_only_when_due(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_record_t out;

    f->ctx.expiry.idle = SEC(100); /* touch throttle: 10 s */
    f->ctx.expiry.absolute = 0;
    new_session(f, id, &r);

    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(5), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0);
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(10) - 1, f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0);
    assert_int_equal(unit_stats(f->shm.store).touches, 0);

    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(10), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0 + SEC(10));
    assert_int_equal(out.created, T0);
    assert_string_equal(out.payload, "a=1");
    assert_int_equal(unit_stats(f->shm.store).touches, 1);

    /* The touch was stored: the next load sees it and is not due. */
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(15), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0 + SEC(10));
    assert_int_equal(unit_stats(f->shm.store).touches, 1);

    /* The deadline moved from T0 + 100 s to T0 + 110 s. */
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(105), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0 + SEC(105));
    assert_int_equal(unit_stats(f->shm.store).touches, 2);
    /* ...and now to T0 + 205 s. */
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(205), f->shm.p, &out), APR_NOTFOUND);
    assert_int_equal(unit_stats(f->shm.store).expired, 1);
}

static void test_touch_moves_shm_deadline(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_record_t out;

    /* A new save over an entry past its arena deadline goes ahead (the entry
     * counts as gone); refused before it. That shows where the touch moved the
     * deadline: from T0 + 100 s to T0 + 150 s. */
    f->ctx.expiry.idle = SEC(100);
    f->ctx.expiry.absolute = 0;
    new_session(f, id, &r);
    assert_int_equal(f->counts.last_deadline, T0 + SEC(100));
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(50), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(out.accessed, T0 + SEC(50));
    r.accessed = T0 + SEC(149);
    assert_int_equal(ss_session_write(&f->ctx, id, &r, 1, f->shm.p), APR_EEXIST);
    r.accessed = T0 + SEC(150);
    assert_int_equal(ss_session_write(&f->ctx, id, &r, 1, f->shm.p), APR_SUCCESS);
}

static void test_session_rechecks_expiry(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_record_t out;

    /* A backend that ignores expiry still never yields a dead session. */
    f->counts.ignore_expiry = 1;
    new_session(f, id, &r);
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(60), f->shm.p, &out), APR_SUCCESS);
    assert_int_equal(f->counts.removes, 0);
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(1800), f->shm.p, &out), APR_NOTFOUND);
    /* ...and it is removed. */
    assert_int_equal(f->counts.removes, 1);
    assert_int_equal(unit_stats(f->shm.store).entries, 0);
}

static void test_oversize(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t v1 = make(T0, T0, "alice", "v=1");
    ss_record_t big, exact, out;
    char *payload;
    apr_size_t limit = 512, plen;
    ss_store_stats_t before, after;
    ss_key_t key;

    f->ctx.max_size = limit;
    new_session(f, id, &v1);
    assert_int_equal(f->counts.saves, 1);
    assert_int_equal(f->shm.log.count, 0);

    /* One byte over the limit. */
    plen = limit + 1 - SS_RECORD_HEADER_LEN - strlen("alice");
    payload = apr_palloc(f->shm.p, plen + 1);
    memset(payload, 'x', plen);
    payload[plen] = '\0';
    big = make(T0, T0 + SEC(1), "alice", payload);
    assert_int_equal(ss_record_size(&big), limit + 1);
    before = unit_stats(f->shm.store);
    assert_int_equal(ss_session_write(&f->ctx, id, &big, 0, f->shm.p), APR_ENOSPC);
    after = unit_stats(f->shm.store);
    assert_int_equal(f->counts.saves, 1); /* never reached the store */
    assert_memory_equal(&after, &before, sizeof(after));

    /* The previous version is intact. */
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(2), f->shm.p, &out), APR_SUCCESS);
    assert_record(&out, &v1);

    /* The warning: level, status, size and limit, the key tag but not the ID. */
    assert_int_equal(f->shm.log.count, 1);
    assert_int_equal(f->shm.log.level, SS_LOG_WARNING);
    assert_int_equal(f->shm.log.rv, APR_ENOSPC);
    assert_non_null(strstr(f->shm.log.msg, "513"));
    assert_non_null(strstr(f->shm.log.msg, "512"));
    assert_int_equal(ss_id_key(id, &key), APR_SUCCESS);
    assert_non_null(strstr(f->shm.log.msg, ss_key_tag(&key, f->shm.p)));
    assert_null(strstr(f->shm.log.msg, id));
    {
        /* Not even a recognisable piece of it. */
        char piece[9];
        int i;

        for (i = 0; i + 8 <= SS_ID_LEN; i++) {
            memcpy(piece, id + i, 8);
            piece[8] = '\0';
            assert_null(strstr(f->shm.log.msg, piece));
        }
    }

    /* Exactly at the limit is fine. */
    exact = big;
    exact.payload_len = plen - 1;
    payload[plen - 1] = '\0';
    assert_int_equal(ss_record_size(&exact), limit);
    assert_int_equal(ss_session_write(&f->ctx, id, &exact, 0, f->shm.p), APR_SUCCESS);
    assert_int_equal(ss_session_load(&f->ctx, id, T0 + SEC(2), f->shm.p, &out), APR_SUCCESS);
    assert_record(&out, &exact);
    assert_int_equal(f->shm.log.count, 1);
}

static void test_remove(void **state)
{
    fixture_t *f = *state;
    char a[SS_ID_LEN + 1], b[SS_ID_LEN + 1];
    ss_record_t r = make(T0, T0, "alice", "a=1");
    ss_record_t out;
    ss_store_stats_t st;

    new_session(f, a, &r);
    new_session(f, b, &r);
    assert_int_equal(ss_session_remove(&f->ctx, a), APR_SUCCESS);
    assert_int_equal(f->counts.removes, 1);
    assert_int_equal(ss_session_load(&f->ctx, a, T0 + SEC(1), f->shm.p, &out), APR_NOTFOUND);
    /* The other one is untouched. */
    assert_int_equal(ss_session_load(&f->ctx, b, T0 + SEC(1), f->shm.p, &out), APR_SUCCESS);
    assert_record(&out, &r);
    st = unit_stats(f->shm.store);
    assert_int_equal(st.removes, 1);
    assert_int_equal(st.entries, 1);
    /* Removing again, or an unknown ID, succeeds and changes nothing. */
    assert_int_equal(ss_session_remove(&f->ctx, a), APR_SUCCESS);
    st = unit_stats(f->shm.store);
    assert_int_equal(st.removes, 1);
    assert_int_equal(st.entries, 1);
    assert_int_equal(ss_session_remove(&f->ctx, b), APR_SUCCESS);
    st = unit_stats(f->shm.store);
    assert_int_equal(st.removes, 2);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.used_bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_round_trip),
        UNIT_TEST(test_save_overwrites),
        UNIT_TEST(test_save_passes_deadline),
        UNIT_TEST(test_malformed_ids),
        UNIT_TEST(test_unknown_id),
        UNIT_TEST(test_expired_idle),
        UNIT_TEST(test_expired_absolute),
        UNIT_TEST(test_touch_only_when_due),
        UNIT_TEST(test_touch_moves_shm_deadline),
        UNIT_TEST(test_session_rechecks_expiry),
        UNIT_TEST(test_oversize),
        UNIT_TEST(test_remove),
    };

    return UNIT_RUN(tests);
}
