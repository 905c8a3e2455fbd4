/* test_save_mode.c - SS_SAVE_NEW / SS_SAVE_UPDATE on the shm backend and
 * through ss_session_write: an update never brings back a removed session,
 * and writes only over the revision it loaded (compare-and-set). */
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
    apr_global_mutex_t *mutex;
    ss_store_t *store;
    ss_session_ctx_t ctx;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    apr_pool_create(&f->pool, NULL);
    f->arena = apr_pcalloc(f->pool, ARENA_SIZE);
    if (ss_shm_format(f->arena, ARENA_SIZE, 4096) != APR_SUCCESS ||
        apr_global_mutex_create(&f->mutex, NULL, APR_LOCK_DEFAULT, f->pool) != APR_SUCCESS ||
        ss_shm_open(&f->store, f->arena, f->mutex, f->pool) != APR_SUCCESS) {
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
    ss_record_t rec = {now, now, "alice", payload, strlen(payload), 0};

    return rec;
}

static apr_status_t save(fixture_t *f, const ss_key_t *key, const ss_record_t *rec,
                         ss_save_mode_e mode)
{
    return f->store->ops->save(f->store, key, rec, T0 + apr_time_from_sec(60), mode, UNIT_NO_LIMIT,
                               f->pool);
}

static void test_key(ss_key_t *key, int n)
{
    memset(key, 0, sizeof(*key));
    key->bytes[0] = (unsigned char)n;
    key->bytes[5] = 0x5a;
    key->seal[0] = (unsigned char)n; /* any seal key works for the store */
    key->sealable = 1;
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

/* SS_SAVE_UPDATE is a compare-and-set on the revision: it writes over the
 * revision loaded (rec->revision - 1) and nothing else. */
static void test_update_is_compare_and_set(void **state)
{
    fixture_t *f = *state;
    ss_record_t rec = record("a=1", T0), out;
    ss_key_t key;
    int form;

    for (form = SS_RECORD_FORM_CLEAR; form <= SS_RECORD_FORM_SEALED; form++) {
        f->store->form = (ss_record_form_e)form;
        test_key(&key, 10 + form);
        rec.revision = 7;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_NEW), APR_SUCCESS);
        /* Two requests loaded revision 7: the first to save wins... */
        rec.revision = 8;
        rec.payload = "a=first";
        rec.payload_len = 7;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), APR_SUCCESS);
        /* ...the second is refused and writes nothing. */
        rec.payload = "a=second";
        rec.payload_len = 8;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), SS_ECONFLICT);
        /* Neither an older nor a newer revision passes. */
        rec.revision = 7;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), SS_ECONFLICT);
        rec.revision = 10;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), SS_ECONFLICT);
        assert_int_equal(
            f->store->ops->load(f->store, &key, &f->ctx.expiry, &f->ctx.expiry, T0, f->pool, &out),
            APR_SUCCESS);
        assert_string_equal(out.payload, "a=first");
        assert_int_equal(out.revision, 8);
        /* The request that reloads it writes over revision 8. */
        rec.revision = 9;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), APR_SUCCESS);
        /* Gone stays gone: not a conflict. */
        assert_int_equal(f->store->ops->remove(f->store, &key), APR_SUCCESS);
        rec.revision = 10;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), APR_NOTFOUND);
    }
    assert_int_equal(unit_stats(f->store).refused_conflict, 6);
    assert_int_equal(unit_stats(f->store).refused_gone, 2);
}

/* The revision wraps: 0xffffffff is followed by 0. */
static void test_update_revision_wraps(void **state)
{
    fixture_t *f = *state;
    ss_record_t rec = record("a=1", T0);
    ss_key_t key;

    test_key(&key, 20);
    rec.revision = 0xffffffffu;
    assert_int_equal(save(f, &key, &rec, SS_SAVE_NEW), APR_SUCCESS);
    rec.revision = 0;
    assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), APR_SUCCESS);
    rec.revision = 1;
    assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), APR_SUCCESS);
}

/* A record stored as v1 (an old node, or SessionStoreRecordFormat 1) is
 * revision 0: the update that loaded it writes revision 1 over it, as v2. */
static void test_update_over_a_v1_record(void **state)
{
    fixture_t *f = *state;
    ss_record_t rec = record("a=1", T0), out;
    ss_key_t key;

    test_key(&key, 21);
    f->store->form = SS_RECORD_FORM_V1;
    rec.revision = 5; /* not stored by v1 */
    assert_int_equal(save(f, &key, &rec, SS_SAVE_NEW), APR_SUCCESS);
    assert_int_equal(
        f->store->ops->load(f->store, &key, &f->ctx.expiry, &f->ctx.expiry, T0, f->pool, &out),
        APR_SUCCESS);
    assert_int_equal(out.revision, 0);
    f->store->form = SS_RECORD_FORM_SEALED;
    rec.revision = 2;
    assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), SS_ECONFLICT);
    rec.revision = 1;
    rec.payload = "a=2";
    rec.payload_len = 3;
    assert_int_equal(save(f, &key, &rec, SS_SAVE_UPDATE), APR_SUCCESS);
    assert_int_equal(
        f->store->ops->load(f->store, &key, &f->ctx.expiry, &f->ctx.expiry, T0, f->pool, &out),
        APR_SUCCESS);
    assert_int_equal(out.revision, 1);
    assert_string_equal(out.payload, "a=2");
}

/* SessionStoreSeal Required: a record in clear (format 1, or 2 unsealed) is
 * malformed, removed and counted; a sealed one is served. */
static void test_sealed_only_refuses_clear_records(void **state)
{
    fixture_t *f = *state;
    ss_record_t rec = record("a=1", T0), out;
    ss_key_t key;
    int form;

    for (form = SS_RECORD_FORM_CLEAR; form <= SS_RECORD_FORM_V1; form++) {
        test_key(&key, 30 + form);
        f->store->form = (ss_record_form_e)form;
        f->store->sealed_only = 0;
        assert_int_equal(save(f, &key, &rec, SS_SAVE_NEW), APR_SUCCESS);
        f->store->sealed_only = 1;
        assert_int_equal(
            f->store->ops->load(f->store, &key, &f->ctx.expiry, &f->ctx.expiry, T0, f->pool, &out),
            form == SS_RECORD_FORM_SEALED ? APR_SUCCESS : APR_NOTFOUND);
    }
    assert_int_equal(unit_stats(f->store).malformed, 2);
    assert_int_equal(unit_stats(f->store).entries, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_new_refuses_a_live_key),
        UNIT_TEST(test_update_of_a_missing_key_writes_nothing),
        UNIT_TEST(test_update_of_a_dead_key_is_refused),
        UNIT_TEST(test_session_write_does_not_resurrect),
        UNIT_TEST(test_update_is_compare_and_set),
        UNIT_TEST(test_update_revision_wraps),
        UNIT_TEST(test_update_over_a_v1_record),
        UNIT_TEST(test_sealed_only_refuses_clear_records),
    };

    return UNIT_RUN(tests);
}
