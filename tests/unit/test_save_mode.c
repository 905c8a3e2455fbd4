/* test_save_mode.c - SS_SAVE_NEW / SS_SAVE_UPDATE on the shm backend and
 * through ss_session_write: an update never brings back a removed session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_global_mutex.h>

#include "ss_session.h"
#include "ss_shm.h"
#include "unit.h"

#define ARENA_SIZE (256 * 1024)
#define T0 apr_time_from_sec(1700000000)

typedef struct {
    apr_pool_t *pool;
    void *arena;
    ss_store_t *store;
    ss_session_ctx_t ctx;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    apr_pool_create(&f->pool, NULL);
    f->arena = apr_pcalloc(f->pool, ARENA_SIZE);
    if (ss_shm_format(f->arena, ARENA_SIZE, 4096) != APR_SUCCESS ||
        ss_shm_open(&f->store, f->arena, f->pool) != APR_SUCCESS) {
        return -1;
    }
    f->ctx.store = f->store;
    f->ctx.expiry.idle = apr_time_from_sec(60);
    f->ctx.max_size = 4096;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

static ss_record_t record(const char *payload, apr_time_t now)
{
    ss_record_t rec = {now, now, "alice", payload, strlen(payload)};

    return rec;
}

static void test_key(ss_key_t *key, int n)
{
    memset(key, 0, sizeof(*key));
    key->bytes[0] = (unsigned char)n;
    key->bytes[5] = 0x5a;
}

static void test_new_refuses_a_live_key(void **state)
{
    fixture_t *f = *state;
    ss_record_t rec = record("a=1", T0), out;
    ss_key_t key;

    test_key(&key, 1);
    assert_int_equal(f->store->ops->save(f->store, &key, &rec, T0 + apr_time_from_sec(60),
                                         SS_SAVE_NEW, UNIT_NO_LIMIT, f->pool),
                     APR_SUCCESS);
    rec.payload = "a=2";
    assert_int_equal(f->store->ops->save(f->store, &key, &rec, T0 + apr_time_from_sec(60),
                                         SS_SAVE_NEW, UNIT_NO_LIMIT, f->pool),
                     APR_EEXIST);
    assert_int_equal(
        f->store->ops->load(f->store, &key, &f->ctx.expiry, &f->ctx.expiry, T0, f->pool, &out),
        APR_SUCCESS);
    assert_string_equal(out.payload, "a=1");
}

static void test_update_of_a_missing_key_writes_nothing(void **state)
{
    fixture_t *f = *state;
    ss_record_t rec = record("a=1", T0), out;
    ss_store_stats_t stats;
    ss_key_t key;

    test_key(&key, 2);
    assert_int_equal(f->store->ops->save(f->store, &key, &rec, T0 + apr_time_from_sec(60),
                                         SS_SAVE_UPDATE, UNIT_NO_LIMIT, f->pool),
                     APR_NOTFOUND);
    assert_int_equal(
        f->store->ops->load(f->store, &key, &f->ctx.expiry, &f->ctx.expiry, T0, f->pool, &out),
        APR_NOTFOUND);
    assert_int_equal(f->store->ops->stats(f->store, &stats), APR_SUCCESS);
    assert_int_equal(stats.refused_gone, 1);
    assert_int_equal(stats.saves, 0);
}

static void test_update_of_a_dead_key_is_refused(void **state)
{
    fixture_t *f = *state;
    ss_record_t rec = record("a=1", T0);
    ss_key_t key;

    test_key(&key, 3);
    assert_int_equal(f->store->ops->save(f->store, &key, &rec, T0 + apr_time_from_sec(60),
                                         SS_SAVE_NEW, UNIT_NO_LIMIT, f->pool),
                     APR_SUCCESS);
    rec.accessed = T0 + apr_time_from_sec(61); /* past the deadline */
    assert_int_equal(f->store->ops->save(f->store, &key, &rec, T0 + apr_time_from_sec(121),
                                         SS_SAVE_UPDATE, UNIT_NO_LIMIT, f->pool),
                     APR_NOTFOUND);
}

/* The race the modes exist for: request A logs out (removes the record),
 * request B, which loaded the session before, then saves its change. */
static void test_session_write_does_not_resurrect(void **state)
{
    fixture_t *f = *state;
    char id[SS_ID_LEN + 1];
    ss_record_t rec, out;

    assert_int_equal(ss_id_generate(id), APR_SUCCESS);
    rec = record("a=1", T0);
    assert_int_equal(unit_id_write(&f->ctx, id, &rec, 1, f->pool), APR_SUCCESS);
    rec.payload = "a=2";
    rec.payload_len = 3;
    assert_int_equal(unit_id_write(&f->ctx, id, &rec, 0, f->pool), APR_SUCCESS);
    assert_int_equal(unit_id_load(&f->ctx, id, T0, f->pool, &out), APR_SUCCESS);
    assert_string_equal(out.payload, "a=2");

    assert_int_equal(unit_id_remove(&f->ctx, id), APR_SUCCESS); /* A: logout */
    rec.payload = "a=3";
    assert_int_equal(unit_id_write(&f->ctx, id, &rec, 0, f->pool), APR_NOTFOUND); /* B */
    assert_int_equal(unit_id_load(&f->ctx, id, T0, f->pool, &out), APR_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_new_refuses_a_live_key),
        UNIT_TEST(test_update_of_a_missing_key_writes_nothing),
        UNIT_TEST(test_update_of_a_dead_key_is_refused),
        UNIT_TEST(test_session_write_does_not_resurrect),
    };

    return UNIT_RUN(tests);
}
