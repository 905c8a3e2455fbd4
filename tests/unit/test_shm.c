/* test_shm.c - the shared-memory backend: format, capacity, eviction,
 * concurrent use by several processes and threads, writers killed in the
 * middle of updates (built with SS_FAULT_POINTS) and arenas damaged by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_atomic.h>
#include <apr_pools.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "ss_log.h"
#include "ss_session.h"
#include "ss_shm.h"
#include "unit.h"

#define SEC(n) apr_time_from_sec(n)
#define T0 SEC(1700000000)
#define MIB (1024 * 1024)

/* The arena and the captured log. */
typedef unit_arena_t fixture_t;

static const ss_expiry_t no_expiry = {0, 0};

static int setup(void **state)
{
    /* One stripe: one ring, exact capacities. The tests of concurrency and
     * of crashes use the stripes the arena's size gives. */
    ss_shm_fault_max_stripes = 1;
    *state = unit_arena_create(sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    unit_arena_destroy(*state);
    return 0;
}

/* The bytes a record of user "" adds to its payload, in the form the
 * stores write (their default: sealed). */
#define REC_OVERHEAD (SS_RECORD_HEADER_LEN + 2 + SS_SEAL_OVERHEAD)

/* What the tests know of a slot (see ss_shm.c): a stripe's data is a ring of
 * 8-byte units; a slot's header starts with its meta word, units << 8 |
 * spare bytes << 4 | flags; its header is 24 bytes, then the owner's hash
 * (16 bytes) when it has one, then the record. */
#define UNIT_BYTES 8u
#define SLOT_HEADER_BYTES 24u
#define OWNER_BYTES 16u
#define META_LIVE 1u
#define META_REF 2u
#define META_OWNED 4u
#define META_UNITS(m) ((m) >> 8)

/* Units of the slot of a sealed record of user "" with plen bytes of
 * payload. */
static apr_uint32_t units_of_plen(apr_size_t plen)
{
    return (apr_uint32_t)(ss_shm_footprint(REC_OVERHEAD + plen, 0) / UNIT_BYTES);
}

static void key_of(int i, ss_key_t *key)
{
    char name[32];

    snprintf(name, sizeof(name), "test-key-%d", i);
    assert_int_equal(ss_id_key(name, key), APR_SUCCESS);
}

/* The payload of key i at version v: self-describing, plen bytes. */
static char *payload_of(int i, int v, apr_size_t plen, apr_pool_t *p)
{
    char *s = apr_palloc(p, plen + 1);
    apr_size_t k;
    int n = snprintf(s, plen + 1, "k%d:v%d:", i, v);

    for (k = n > 0 ? (apr_size_t)n : 0; k < plen; k++) {
        s[k] = (char)('a' + (i * 7 + v * 3 + (int)k) % 26);
    }
    s[plen] = '\0';
    return s;
}

static apr_status_t save_kv(fixture_t *f, int i, int v, apr_size_t plen, apr_time_t now,
                            apr_time_t deadline)
{
    ss_key_t key;
    ss_record_t r;
    apr_status_t rv;

    key_of(i, &key);
    r.created = now;
    r.accessed = now;
    r.user = "";
    r.payload = payload_of(i, v, plen, f->p);
    r.payload_len = plen;
    r.revision = 0;
    /* These tests are about the arena, not the save modes: create the key,
     * or update it when a live record holds it. */
    rv = f->store->ops->save(f->store, &key, &r, deadline, SS_SAVE_NEW, UNIT_NO_LIMIT, f->p);
    if (rv == APR_EEXIST) {
        rv = unit_update(f->store, &key, &r, deadline, UNIT_NO_LIMIT, f->p);
    }
    return rv;
}

static apr_status_t save_i(fixture_t *f, int i, apr_size_t plen)
{
    return save_kv(f, i, 0, plen, T0, 0);
}

static apr_status_t load_i(fixture_t *f, int i, apr_time_t now, ss_record_t *out)
{
    ss_key_t key;

    key_of(i, &key);
    return f->store->ops->load(f->store, &key, &no_expiry, &no_expiry, now, f->p, out);
}

/* Key i is present with version v of plen bytes. */
static void assert_present(fixture_t *f, int i, int v, apr_size_t plen)
{
    ss_record_t out;

    assert_int_equal(load_i(f, i, T0, &out), APR_SUCCESS);
    assert_int_equal(out.payload_len, plen);
    assert_string_equal(out.payload, payload_of(i, v, plen, f->p));
}

static void assert_absent(fixture_t *f, int i)
{
    ss_record_t out;

    assert_int_equal(load_i(f, i, T0, &out), APR_NOTFOUND);
}

/* ---- format ------------------------------------------------------------ */

static void test_format_rejects_small_arena(void **state)
{
    char *buf = calloc(1, SS_SHM_MIN_SIZE);

    (void)state;
    assert_non_null(buf);
    assert_int_equal(ss_shm_format(buf, 0, 1024), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, 4096, 1024), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, SS_SHM_MIN_SIZE - 1, 1024), APR_EINVAL);
    /* Nothing was written by the refusals. */
    assert_false(ss_shm_is_formatted(buf, SS_SHM_MIN_SIZE - 1, 1024));
    assert_false(ss_shm_is_formatted(buf, SS_SHM_MIN_SIZE, 1024));
    assert_int_equal(ss_shm_format(buf, SS_SHM_MIN_SIZE, 1024), APR_SUCCESS);
    assert_true(ss_shm_is_formatted(buf, SS_SHM_MIN_SIZE, 1024));
    free(buf);
}

static void test_format_rejects_tiny_max_record(void **state)
{
    char *buf = calloc(1, SS_SHM_MIN_SIZE);

    (void)state;
    assert_non_null(buf);
    /* A record cannot be shorter than its header. */
    assert_int_equal(ss_shm_format(buf, SS_SHM_MIN_SIZE, 0), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, SS_SHM_MIN_SIZE, SS_RECORD_MIN_LEN - 1), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, SS_SHM_MIN_SIZE, SS_RECORD_MIN_LEN), APR_SUCCESS);
    free(buf);
}

/* A slot's size is 24 bits of units: a record limit whose slot would not
 * say its own size is refused however large the arena (16 GiB here, never
 * allocated: ss_shm_fits only computes). */
static void test_format_rejects_record_beyond_slot_size(void **state)
{
    const apr_size_t size = (apr_size_t)16 * 1024 * MIB;
    const apr_size_t largest = (apr_size_t)0xffffff * UNIT_BYTES - SLOT_HEADER_BYTES - OWNER_BYTES;

    (void)state;
    assert_true(sizeof(apr_size_t) >= 8);
    assert_true(ss_shm_fits(size, largest));
    assert_false(ss_shm_fits(size, largest + 1));
    assert_false(ss_shm_fits(size, 200 * MIB));
    assert_false(ss_shm_fits(size, 0x7fffffff));
}

static void test_format_rejects_max_record_over_quarter(void **state)
{
    fixture_t *f = *state;
    const apr_size_t size = MIB;
    char *buf = calloc(1, size);
    apr_uint64_t units;
    apr_size_t quarter_bytes, max_ok;
    ss_store_stats_t st;

    assert_non_null(buf);
    assert_int_equal(ss_shm_format(buf, size, size), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, size, size / 2), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, size, size / 4 + 1), APR_EINVAL);
    assert_false(ss_shm_is_formatted(buf, size, size / 4 + 1));
    assert_int_equal(ss_shm_format(buf, size, size / 5), APR_SUCCESS);

    /* The exact boundary: the largest record whose slot, with an owner,
     * fits in a quarter of the stripe's units. */
    f->base = buf;
    assert_int_equal(ss_shm_open(&f->store, buf, f->p), APR_SUCCESS);
    assert_int_equal(ss_shm_stripes(buf), 1);
    st = unit_stats(f->store);
    assert_int_equal(st.capacity_bytes % UNIT_BYTES, 0);
    units = st.capacity_bytes / UNIT_BYTES;
    quarter_bytes = (apr_size_t)(units / 4) * UNIT_BYTES;
    max_ok = quarter_bytes;
    while (ss_shm_footprint(max_ok, 1) > quarter_bytes) {
        max_ok--;
    }
    /* The owner's hash counts: an anonymous record one byte longer would
     * fit, the limit does not depend on who writes. */
    assert_true(ss_shm_footprint(max_ok + 1, 0) <= quarter_bytes);
    assert_true(max_ok > size / 5);
    assert_int_equal(ss_shm_format(buf, size, max_ok + 1), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, size, max_ok), APR_SUCCESS);
    assert_true(ss_shm_is_formatted(buf, size, max_ok));
    f->store = NULL;
    free(buf);
}

static void test_is_formatted(void **state)
{
    fixture_t *f = *state;
    char *buf = calloc(1, 2 * SS_SHM_MIN_SIZE);
    ss_store_t *store = NULL;

    assert_non_null(buf);
    assert_false(ss_shm_is_formatted(buf, 2 * SS_SHM_MIN_SIZE, 4096));
    assert_int_equal(ss_shm_open(&store, buf, f->p), APR_EINVAL);
    assert_int_equal(ss_shm_format(buf, 2 * SS_SHM_MIN_SIZE, 4096), APR_SUCCESS);
    assert_true(ss_shm_is_formatted(buf, 2 * SS_SHM_MIN_SIZE, 4096));
    /* Another size or record limit is another arena. */
    assert_false(ss_shm_is_formatted(buf, SS_SHM_MIN_SIZE, 4096));
    assert_false(ss_shm_is_formatted(buf, 2 * SS_SHM_MIN_SIZE + UNIT_BYTES, 4096));
    assert_false(ss_shm_is_formatted(buf, 2 * SS_SHM_MIN_SIZE - UNIT_BYTES, 4096));
    assert_false(ss_shm_is_formatted(buf, 2 * SS_SHM_MIN_SIZE, 4095));
    assert_false(ss_shm_is_formatted(buf, 2 * SS_SHM_MIN_SIZE, 8192));
    assert_int_equal(ss_shm_open(&store, buf, f->p), APR_SUCCESS);
    assert_non_null(store);
    /* A damaged header is not an arena. */
    buf[0] ^= 0x5a;
    assert_false(ss_shm_is_formatted(buf, 2 * SS_SHM_MIN_SIZE, 4096));
    assert_int_equal(ss_shm_open(&store, buf, f->p), APR_EINVAL);
    free(buf);
}

/* Formatting writes the header, the stripes and the index, never a slot:
 * a large arena is ready at once, its pages touched only as it fills. */
static void test_format_writes_no_slot(void **state)
{
    fixture_t *f = *state;
    const apr_size_t size = 4 * MIB;
    unsigned char *buf = malloc(size);
    apr_size_t untouched = 0, k;

    (void)f;
    ss_shm_fault_max_stripes = 0;
    assert_non_null(buf);
    memset(buf, 0x5a, size);
    assert_int_equal(ss_shm_format(buf, size, 8192), APR_SUCCESS);
    assert_true(ss_shm_stripes(buf) > 1);
    for (k = size; k > 0 && buf[k - 1] == 0x5a; k--) {
        untouched++;
    }
    /* The stripes' data is all but the few percent the index and stripes
     * take. */
    assert_true(untouched >= size - size / 32);
    free(buf);
}

static void test_reformat_empties(void **state)
{
    fixture_t *f = *state;
    ss_store_stats_t st;
    int i;

    unit_arena_open(f, 256 * 1024, 8192);
    for (i = 0; i < 10; i++) {
        assert_int_equal(save_i(f, i, 300), APR_SUCCESS);
    }
    assert_int_equal(unit_stats(f->store).entries, 10);
    assert_int_equal(ss_shm_format(f->base, f->size, 8192), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.saves, 0);
    for (i = 0; i < 10; i++) {
        assert_absent(f, i);
    }
}

/* A slot is its 24-byte header, the owner's 16-byte hash when it has an
 * owner, the record, rounded up to 8 bytes: nothing else, at any size. */
static void test_footprint(void **state)
{
    apr_size_t len, prev = 0, prev_owned = 0;

    (void)state;
    for (len = SS_RECORD_MIN_LEN; len < 200000; len++) {
        apr_size_t fp = ss_shm_footprint(len, 0), owned = ss_shm_footprint(len, 1);

        assert_int_equal(fp % UNIT_BYTES, 0);
        assert_true(fp >= len + SLOT_HEADER_BYTES);
        assert_true(fp < len + SLOT_HEADER_BYTES + UNIT_BYTES);
        assert_int_equal(owned, ss_shm_footprint(len + OWNER_BYTES, 0));
        assert_true(fp >= prev && owned >= prev_owned);
        prev = fp;
        prev_owned = owned;
    }
    /* Exact at the unit boundaries. */
    assert_int_equal(ss_shm_footprint(40, 0), 64);
    assert_int_equal(ss_shm_footprint(41, 0), 72);
    assert_int_equal(ss_shm_footprint(24, 1), 64);
    assert_int_equal(ss_shm_footprint(25, 1), 72);
    assert_int_equal(ss_shm_footprint(SS_RECORD_MIN_LEN, 0), 56);
    /* ss_shm.h's figures: a 200-byte session sealed (254 bytes) takes 280
     * bytes anonymous, 296 with an owner; in clear (226 bytes) 256. */
    assert_int_equal(REC_OVERHEAD + 200, 254);
    assert_int_equal(ss_shm_footprint(254, 0), 280);
    assert_int_equal(ss_shm_footprint(254, 1), 296);
    assert_int_equal(ss_shm_footprint(226, 0), 256);
}

/* ---- capacity and eviction --------------------------------------------- */

#define CAP_PLEN 200

static void test_capacity_fill(void **state)
{
    fixture_t *f = *state;
    const apr_size_t reclen = REC_OVERHEAD + CAP_PLEN; /* user "" */
    const apr_size_t fp = ss_shm_footprint(reclen, 0);
    ss_store_stats_t st;
    apr_uint64_t fit;
    int i;

    unit_arena_open(f, MIB, 16384);
    st = unit_stats(f->store);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.saves, 0);
    assert_int_equal(st.capacity_bytes % UNIT_BYTES, 0);
    assert_true(st.capacity_bytes <= MIB);
    /* The index and header take a few percent at most. */
    assert_true(st.capacity_bytes >= MIB - MIB / 32);
    fit = st.capacity_bytes / fp;

    for (i = 0;; i++) {
        assert_int_equal(save_i(f, i, CAP_PLEN), APR_SUCCESS);
        st = unit_stats(f->store);
        if (st.evicted_lru) {
            break;
        }
        assert_int_equal(st.entries, (apr_uint64_t)i + 1);
        assert_int_equal(st.used_bytes, ((apr_uint64_t)i + 1) * fp);
        assert_true(st.used_bytes <= st.capacity_bytes);
        assert_true(i < 100000);
    }
    /* The first eviction comes with the first record that does not fit. */
    assert_int_equal((apr_uint64_t)i, fit);
    assert_int_equal(st.evicted_lru, 1);
    assert_int_equal(st.evicted_expired, 0);
    assert_int_equal(st.entries, fit);
    assert_int_equal(st.used_bytes, fit * fp);
    assert_int_equal(st.saves, fit + 1);
    assert_true(st.capacity_bytes - st.used_bytes < fp);
    assert_absent(f, 0);

    /* A hundred more: a hundred more of the oldest go, one for one. */
    for (i = (int)fit + 1; i <= (int)fit + 100; i++) {
        assert_int_equal(save_i(f, i, CAP_PLEN), APR_SUCCESS);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, 101);
    assert_int_equal(st.entries, fit);
    assert_int_equal(st.used_bytes, fit * fp);
    for (i = 0; i <= 100; i++) {
        assert_absent(f, i);
    }
    for (i = 101; i <= (int)fit + 100; i++) {
        assert_present(f, i, 0, CAP_PLEN);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.hits, fit);
    assert_int_equal(st.misses, 102);
}

/* Fill a 1 MiB arena exactly to capacity with CAP_PLEN records 0..fit-1. */
static int fill_exactly(fixture_t *f, apr_time_t now, int dead_every, apr_time_t deadline)
{
    ss_store_stats_t st;
    apr_uint64_t fit;
    int i;

    unit_arena_open(f, MIB, 16384);
    fit = unit_stats(f->store).capacity_bytes / ss_shm_footprint(REC_OVERHEAD + CAP_PLEN, 0);
    for (i = 0; i < (int)fit; i++) {
        int dies = dead_every && i % dead_every == dead_every - 1;

        assert_int_equal(save_kv(f, i, 0, CAP_PLEN, now, dies ? deadline : 0), APR_SUCCESS);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.entries, fit);
    assert_int_equal(st.evicted_lru + st.evicted_expired, 0);
    return (int)fit;
}

/* Key i's slot: its meta word, NULL when the key is not in the arena. Read
 * without a load, which would set the slot's reference bit. */
static apr_uint32_t *meta_of(fixture_t *f, int i)
{
    ss_key_t key;

    key_of(i, &key);
    return ss_shm_fault_field(f->base, "meta", &key);
}

static int in_arena(fixture_t *f, int i)
{
    return meta_of(f, i) != NULL;
}

/* Whether key i is in the arena and referenced since the hand last passed
 * it. */
static int referenced(fixture_t *f, int i)
{
    apr_uint32_t *meta = meta_of(f, i);

    return meta && (*meta & META_REF);
}

/* A field of the state of key i's stripe (one stripe here: of the arena). */
static apr_uint32_t stripe_field(fixture_t *f, const char *name)
{
    ss_key_t key;
    apr_uint32_t *field;

    key_of(0, &key);
    field = ss_shm_fault_field(f->base, name, &key);
    assert_non_null(field);
    return *field;
}

/* CLOCK: a load sets the reference bit, and so does an update; a new
 * record starts without it. In a full stripe the hand evicts the
 * unreferenced in order and gives a referenced one a second chance: kept,
 * its bit cleared; when the hand comes round again without a use of it in
 * between, it goes. */
static void test_evict_clock_second_chance(void **state)
{
    fixture_t *f = *state;
    int n = fill_exactly(f, T0, 0, 0);
    const int A = 100000, B = 200000;
    ss_store_stats_t st;
    int i, k;

    for (i = 0; i < n; i++) {
        assert_true(in_arena(f, i));
        assert_false(referenced(f, i));
    }
    assert_int_equal(save_i(f, A, CAP_PLEN), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, 1);
    assert_false(in_arena(f, 0));
    for (i = 1; i < n; i++) {
        assert_true(in_arena(f, i));
    }
    assert_false(referenced(f, A));

    /* Key 3 loaded, key 5 overwritten in place (same size): referenced. */
    assert_present(f, 3, 0, CAP_PLEN);
    assert_int_equal(save_kv(f, 5, 1, CAP_PLEN, T0, 0), APR_SUCCESS);
    assert_int_equal(unit_stats(f->store).evicted_lru, 1); /* in place: no room needed */
    assert_true(referenced(f, 3));
    assert_true(referenced(f, 5));
    /* Six saves: 1, 2, 4, 6, 7, 8 go; 3 and 5 are passed, their bits
     * cleared. */
    for (k = 1; k <= 6; k++) {
        assert_int_equal(save_i(f, A + k, CAP_PLEN), APR_SUCCESS);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, 7);
    assert_int_equal(st.evicted_expired, 0);
    assert_int_equal(st.entries, (apr_uint64_t)n);
    for (i = 0; i < 9; i++) {
        assert_int_equal(in_arena(f, i), i == 3 || i == 5);
    }
    assert_false(referenced(f, 3));
    assert_false(referenced(f, 5));
    for (i = 9; i < n; i++) {
        assert_true(in_arena(f, i));
    }
    for (k = 0; k <= 6; k++) {
        assert_false(referenced(f, A + k));
    }

    /* A + 1 loaded. One round later the hand is back where it began: A and
     * A + 2, not used since their saves, go; A + 1 has its second chance; 3,
     * kept once and not used since, goes. */
    assert_present(f, A + 1, 0, CAP_PLEN);
    for (k = 0; in_arena(f, 3); k++) {
        assert_true(k < n);
        assert_int_equal(save_i(f, B + k, CAP_PLEN), APR_SUCCESS);
    }
    assert_true(k > n - 10);
    assert_false(in_arena(f, A));
    assert_true(in_arena(f, A + 1));
    assert_false(referenced(f, A + 1));
    assert_false(in_arena(f, A + 2));
    assert_true(in_arena(f, 5));
    assert_true(in_arena(f, B));
    assert_int_equal(unit_stats(f->store).entries, (apr_uint64_t)n);
    /* Key 5 used again before the hand reaches it: kept once more. */
    assert_present(f, 5, 1, CAP_PLEN);
    for (i = 0; i < 3; i++) {
        assert_int_equal(save_i(f, B + k + i, CAP_PLEN), APR_SUCCESS);
    }
    assert_true(in_arena(f, 5));
    assert_false(referenced(f, 5));
    for (i = 0; i < n; i++) {
        if (i != 5) {
            assert_false(in_arena(f, i));
        }
    }
}

/* A record of many units: the hand evicts as many small ones, oldest first,
 * as its slot needs. */
static void test_evict_large_record_takes_several(void **state)
{
    fixture_t *f = *state;
    int n = fill_exactly(f, T0, 0, 0);
    const apr_size_t big = 4000;
    const apr_size_t small_fp = ss_shm_footprint(REC_OVERHEAD + CAP_PLEN, 0);
    const apr_size_t big_fp = ss_shm_footprint(REC_OVERHEAD + big, 0);
    apr_uint64_t need = (big_fp + small_fp - 1) / small_fp, need2;
    ss_store_stats_t st;
    int i;

    /* None referenced: the tail of the data shorter than a slot becomes
     * padding, the big slot starts at the beginning and takes the place of
     * the first need records. */
    assert_true(need > 10);
    assert_int_equal(save_i(f, 100000, big), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, need);
    assert_int_equal(st.entries, (apr_uint64_t)n - need + 1);
    assert_int_equal(st.used_bytes, ((apr_uint64_t)n - need) * small_fp + big_fp);
    for (i = 0; i < n; i++) {
        assert_int_equal(in_arena(f, i), i >= (int)need);
    }
    /* A second one: the next ones in order, what the first left over
     * counted. */
    need2 = (big_fp - (need * small_fp - big_fp) + small_fp - 1) / small_fp;
    assert_int_equal(save_i(f, 100001, big), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, need + need2);
    for (i = 0; i < n; i++) {
        assert_int_equal(in_arena(f, i), i >= (int)(need + need2));
    }
    assert_present(f, (int)(need + need2), 0, CAP_PLEN);
    assert_present(f, n - 1, 0, CAP_PLEN);
    assert_present(f, 100000, 0, big);
    assert_present(f, 100001, 0, big);
    assert_int_equal(ss_shm_check(f->base, f->size, 16384, NULL), APR_SUCCESS);
}

/* Records dead by their deadline are reclaimed when the hand reaches them,
 * referenced or not, before it evicts any live one: every record is loaded
 * after the fill (referenced), so each save takes the place of the next
 * dead one and no live one goes. */
static void test_evict_expired_when_reached(void **state)
{
    fixture_t *f = *state;
    /* Every 7th record dies at T0 + 10 s; the rest never do. */
    int n = fill_exactly(f, T0, 7, T0 + SEC(10));
    int dead = n / 7, i, k;
    ss_store_stats_t st;

    assert_true(dead > 10);
    for (i = 0; i < n; i++) {
        assert_present(f, i, 0, CAP_PLEN); /* the arena's deadline only ranks */
        assert_true(referenced(f, i));
    }
    for (k = 0; k < dead; k++) {
        assert_int_equal(save_kv(f, 100000 + k, 0, CAP_PLEN, T0 + SEC(20), 0), APR_SUCCESS);
        st = unit_stats(f->store);
        assert_int_equal(st.evicted_expired, (apr_uint64_t)k + 1);
        assert_int_equal(st.evicted_lru, 0);
        assert_false(in_arena(f, 7 * k + 6));
        if (k + 1 < dead) {
            assert_true(in_arena(f, 7 * k + 13));
        }
    }
    st = unit_stats(f->store);
    assert_int_equal(st.entries, (apr_uint64_t)n);
    for (i = 0; i < n; i++) {
        assert_int_equal(in_arena(f, i), i % 7 != 6);
    }
    /* None dead left: the next save evicts the oldest live one, whose bit
     * the hand cleared on its way. */
    assert_int_equal(save_kv(f, 200000, 0, CAP_PLEN, T0 + SEC(20), 0), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, 1);
    assert_int_equal(st.evicted_expired, (apr_uint64_t)dead);
    assert_false(in_arena(f, 0));
    for (i = 1; i < n; i++) {
        if (i % 7 != 6) {
            assert_present(f, i, 0, CAP_PLEN);
        }
    }
    for (k = 0; k < dead; k++) {
        assert_present(f, 100000 + k, 0, CAP_PLEN);
    }
    assert_int_equal(unit_stats(f->store).expired, 0); /* reclaimed, not found dead by a load */
}

/* A record dead by its deadline goes when the hand reaches it even if it
 * was just written and loaded: the reference bit gives a second chance to
 * live records only. */
static void test_evict_expired_despite_reference(void **state)
{
    fixture_t *f = *state;
    int n = fill_exactly(f, T0, 0, 0), i;
    ss_store_stats_t st;

    /* Key 0, the oldest, updated in place with a deadline and loaded (both
     * set its reference bit): the arena's deadline ranks it, the caller's
     * policy (none) decides. */
    assert_int_equal(save_kv(f, 0, 1, CAP_PLEN, T0, T0 + SEC(10)), APR_SUCCESS);
    {
        ss_record_t out;

        assert_int_equal(load_i(f, 0, T0 + SEC(60), &out), APR_SUCCESS);
    }
    assert_true(referenced(f, 0));
    assert_int_equal(save_kv(f, 100000, 0, CAP_PLEN, T0 + SEC(60), 0), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_expired, 1);
    assert_int_equal(st.evicted_lru, 0);
    assert_false(in_arena(f, 0));
    for (i = 1; i < n; i++) {
        assert_present(f, i, 0, CAP_PLEN);
    }
    assert_present(f, 100000, 0, CAP_PLEN);
}

/* The deadline to the microsecond (kept in seconds, rounded up): just
 * before it nothing is dead and the hand evicts the oldest live record;
 * at it, the next one, dead, is reclaimed as expired; the hand does not
 * jump ahead to dead ones further on. */
static void test_evict_expired_at_deadline(void **state)
{
    fixture_t *f = *state;
    /* Keys 1, 3, 5, ... die at T0 + 10 s. */
    int n = fill_exactly(f, T0, 2, T0 + SEC(10)), i;
    ss_store_stats_t st;

    assert_int_equal(save_kv(f, 100000, 0, CAP_PLEN, T0 + SEC(10) - 1, 0), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, 1);
    assert_int_equal(st.evicted_expired, 0);
    assert_false(in_arena(f, 0));
    assert_true(in_arena(f, 1));
    assert_int_equal(save_kv(f, 100001, 0, CAP_PLEN, T0 + SEC(10), 0), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, 1);
    assert_int_equal(st.evicted_expired, 1);
    assert_false(in_arena(f, 1));
    /* Next in line, key 2, is live and unreferenced: it goes, though dead
     * ones wait further on. */
    assert_int_equal(save_kv(f, 100002, 0, CAP_PLEN, T0 + SEC(10), 0), APR_SUCCESS);
    st = unit_stats(f->store);
    assert_int_equal(st.evicted_lru, 2);
    assert_int_equal(st.evicted_expired, 1);
    for (i = 0; i < n; i++) {
        assert_int_equal(in_arena(f, i), i > 2);
    }
}

/* A record that keeps its size, or shrinks, is rewritten where it is; one
 * that grows gets a new slot at the head, its old one left dead. */
static void test_update_in_place(void **state)
{
    fixture_t *f = *state;
    apr_uint32_t *meta, *grown, head, u1000 = units_of_plen(1000), u400 = units_of_plen(400);
    apr_uint32_t u2000 = units_of_plen(2000);
    apr_uint64_t used;
    ss_store_stats_t st;
    int i;

    unit_arena_open(f, 256 * 1024, 8192);
    for (i = 1; i <= 3; i++) {
        assert_int_equal(save_kv(f, i, 0, 1000, T0, 0), APR_SUCCESS);
    }
    meta = meta_of(f, 1);
    assert_non_null(meta);
    assert_int_equal(META_UNITS(*meta), u1000);
    assert_int_equal(*meta & (META_LIVE | META_OWNED), META_LIVE);
    head = stripe_field(f, "head");
    assert_int_equal(head, 3 * u1000);
    used = unit_stats(f->store).used_bytes;
    assert_int_equal(used, 3 * u1000 * UNIT_BYTES);

    /* As many units (a few bytes fewer): the same slot, nothing added. */
    assert_int_equal(units_of_plen(995), u1000);
    assert_int_equal(save_kv(f, 1, 1, 995, T0, 0), APR_SUCCESS);
    assert_ptr_equal(meta_of(f, 1), meta);
    assert_int_equal(META_UNITS(*meta), u1000);
    assert_int_equal(stripe_field(f, "head"), head);
    st = unit_stats(f->store);
    assert_int_equal(st.used_bytes, used);
    assert_int_equal(st.entries, 3);
    assert_present(f, 1, 1, 995);

    /* Shrunk: the same slot, fewer units; the rest a dead slot of its own. */
    assert_int_equal(save_kv(f, 1, 2, 400, T0, 0), APR_SUCCESS);
    assert_ptr_equal(meta_of(f, 1), meta);
    assert_int_equal(META_UNITS(*meta), u400);
    {
        apr_uint32_t rest = *(apr_uint32_t *)((char *)meta + (apr_size_t)u400 * UNIT_BYTES);

        assert_int_equal(META_UNITS(rest), u1000 - u400);
        assert_int_equal(rest & META_LIVE, 0);
    }
    assert_int_equal(stripe_field(f, "head"), head);
    st = unit_stats(f->store);
    assert_int_equal(st.used_bytes, used - (u1000 - u400) * UNIT_BYTES);
    assert_int_equal(st.entries, 3);
    assert_present(f, 1, 2, 400);
    assert_int_equal(ss_shm_check(f->base, f->size, 8192, NULL), APR_SUCCESS);

    /* Grown past its slot: written anew at the head; the old slot dead, its
     * size kept until the hand passes it. */
    assert_int_equal(save_kv(f, 1, 3, 2000, T0, 0), APR_SUCCESS);
    grown = meta_of(f, 1);
    assert_non_null(grown);
    assert_true(grown != meta);
    /* Key 1's first slot was the first of the ring: the new one is head
     * units further. */
    assert_int_equal((char *)grown - (char *)meta, (apr_size_t)head * UNIT_BYTES);
    assert_int_equal(*meta & META_LIVE, 0);
    assert_int_equal(META_UNITS(*meta), u400);
    assert_int_equal(META_UNITS(*grown), u2000);
    assert_true(*grown & META_REF);
    assert_int_equal(stripe_field(f, "head"), head + u2000);
    st = unit_stats(f->store);
    assert_int_equal(st.used_bytes, (2 * u1000 + u2000) * UNIT_BYTES);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.evicted_lru, 0);
    assert_present(f, 1, 3, 2000);
    assert_present(f, 2, 0, 1000);
    assert_present(f, 3, 0, 1000);
    assert_int_equal(ss_shm_check(f->base, f->size, 8192, NULL), APR_SUCCESS);
}

/* The hand goes round as often as new slots are written, whatever the
 * arena holds: a record not used for a round of the hand must still not be
 * evicted while its stripe has room for everything live. Only a stripe
 * short of room evicts. */
static void test_no_eviction_while_room(void **state)
{
    fixture_t *f = *state;
    ss_store_stats_t st;
    ss_key_t key;
    int k;

    unit_arena_open(f, 256 * 1024, 8192);
    assert_int_equal(save_i(f, 0, 1000), APR_SUCCESS);
    /* Key 1 grown (a new slot at the head) and shrunk (in place) in turn,
     * new keys saved and removed: the ring is written through many times
     * over, with never more than three records live. */
    for (k = 0; k < 2000; k++) {
        assert_int_equal(save_kv(f, 1, k, k % 2 ? 2000 : 100, T0, 0), APR_SUCCESS);
        assert_int_equal(save_i(f, 1000 + k, 500), APR_SUCCESS);
        key_of(1000 + k, &key);
        assert_int_equal(f->store->ops->remove(f->store, &key), APR_SUCCESS);
    }
    st = unit_stats(f->store);
    assert_true(st.saves * ss_shm_footprint(REC_OVERHEAD + 500, 0) > 5 * st.capacity_bytes);
    assert_int_equal(st.evicted_lru, 0);
    assert_int_equal(st.entries, 2);
    assert_present(f, 0, 0, 1000);
    assert_present(f, 1, 1999, 2000);
    assert_int_equal(ss_shm_check(f->base, f->size, 8192, NULL), APR_SUCCESS);
}

static void test_load_dead_record(void **state)
{
    fixture_t *f = *state;
    ss_record_t out;
    ss_store_stats_t st;

    unit_arena_open(f, 256 * 1024, 8192);
    assert_int_equal(save_kv(f, 1, 0, 50, T0, T0 + SEC(10)), APR_SUCCESS);
    /* The arena's deadline only ranks records for eviction: the caller's
     * policy decides, and with none the record outlives it. */
    assert_int_equal(load_i(f, 1, T0 + SEC(10), &out), APR_SUCCESS);
    assert_int_equal(unit_stats(f->store).expired, 0);
    /* A policy under which it is dead: gone, and removed. */
    {
        const ss_expiry_t idle = {SEC(10), 0};
        ss_key_t key;

        key_of(1, &key);
        assert_int_equal(
            f->store->ops->load(f->store, &key, &idle, &idle, T0 + SEC(10), f->p, &out),
            SS_EEXPIRED);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(load_i(f, 1, T0, &out), APR_NOTFOUND);
    assert_int_equal(unit_stats(f->store).misses, 1);
}

static void test_arena_oversize_refused(void **state)
{
    fixture_t *f = *state;
    const apr_size_t max_record = 1000;
    const apr_size_t max_plen = max_record - REC_OVERHEAD; /* user "" */
    ss_store_stats_t before, after;

    unit_arena_open(f, 256 * 1024, max_record);
    assert_int_equal(save_kv(f, 1, 1, 500, T0, 0), APR_SUCCESS);
    assert_int_equal(f->log.count, 0);
    before = unit_stats(f->store);
    assert_int_equal(save_kv(f, 1, 2, max_plen + 1, T0, 0), APR_ENOSPC);
    after = unit_stats(f->store);
    assert_int_equal(after.refused_oversize, 1);
    assert_int_equal(after.saves, before.saves);
    assert_int_equal(after.entries, 1);
    assert_int_equal(after.used_bytes, before.used_bytes);
    assert_present(f, 1, 1, 500);
    /* Counted, not logged: the session layer logs refusals, rate-limited. */
    assert_int_equal(f->log.count, 0);
    /* Refused for a new key too, which then does not exist. */
    assert_int_equal(save_kv(f, 2, 1, max_plen + 5000, T0, 0), APR_ENOSPC);
    assert_absent(f, 2);
    assert_int_equal(unit_stats(f->store).refused_oversize, 2);
    /* Exactly the limit is accepted. */
    assert_int_equal(save_kv(f, 1, 3, max_plen, T0, 0), APR_SUCCESS);
    assert_present(f, 1, 3, max_plen);
    assert_int_equal(unit_stats(f->store).refused_oversize, 2);
}

/* ---- slot accounting --------------------------------------------------- */

static apr_uint32_t lcg(apr_uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Overwrites in place, shrinking, growing, thousands of them at random sizes
 * round the ring: the bytes used are always the sum of the footprints, and
 * once everything is removed the whole ring is usable again. */
static void test_overwrite_no_leak(void **state)
{
    fixture_t *f = *state;
    static const apr_size_t sizes[] = {30, 2000, 100, 5000, 0, 800, 7000, 1, 38, 39, 162, 163};
    apr_size_t cur[200];
    apr_uint64_t expect, fit, cap_units;
    apr_uint32_t seed = 42;
    ss_store_stats_t st;
    size_t k;
    int i, round;

    unit_arena_open(f, MIB, 16384);
    /* One key, resized up and down. */
    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        assert_int_equal(save_kv(f, 7, (int)k, sizes[k], T0, 0), APR_SUCCESS);
        st = unit_stats(f->store);
        assert_int_equal(st.entries, 1);
        assert_int_equal(st.used_bytes, ss_shm_footprint(REC_OVERHEAD + sizes[k], 0));
        assert_present(f, 7, (int)k, sizes[k]);
    }
    assert_int_equal(f->store->ops->remove(f->store, &(ss_key_t){{0}, {0}, 0}), APR_SUCCESS);
    {
        ss_key_t key;

        key_of(7, &key);
        assert_int_equal(f->store->ops->remove(f->store, &key), APR_SUCCESS);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.removes, 1);

    /* Many keys, many random sizes, overwritten round after round: the hand
     * goes round the ring several times, reclaiming the dead slots the
     * overwrites leave and moving the live ones (all referenced: each was
     * saved since) to the head. Nothing is evicted. */
    for (round = 0; round < 20; round++) {
        expect = 0;
        for (i = 0; i < 200; i++) {
            cur[i] = lcg(&seed) % 3000;
            assert_int_equal(save_kv(f, i, round, cur[i], T0, 0), APR_SUCCESS);
            expect += ss_shm_footprint(REC_OVERHEAD + cur[i], 0);
        }
        st = unit_stats(f->store);
        assert_int_equal(st.evicted_lru, 0);
        assert_int_equal(st.entries, 200);
        assert_int_equal(st.used_bytes, expect);
        assert_int_equal(ss_shm_check(f->base, f->size, 16384, NULL), APR_SUCCESS);
    }
    /* The hand went round more than once. */
    assert_true(st.saves * ss_shm_footprint(REC_OVERHEAD + 1500, 0) > 2 * st.capacity_bytes);
    for (i = 0; i < 200; i++) {
        assert_present(f, i, 19, cur[i]);
    }
    for (i = 0; i < 200; i += 2) {
        ss_key_t key;

        key_of(i, &key);
        assert_int_equal(f->store->ops->remove(f->store, &key), APR_SUCCESS);
        expect -= ss_shm_footprint(REC_OVERHEAD + cur[i], 0);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.entries, 100);
    assert_int_equal(st.used_bytes, expect);
    for (i = 1; i < 200; i += 2) {
        ss_key_t key;

        key_of(i, &key);
        assert_int_equal(f->store->ops->remove(f->store, &key), APR_SUCCESS);
    }
    st = unit_stats(f->store);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.removes, 201);
    assert_int_equal(ss_shm_check(f->base, f->size, 16384, NULL), APR_SUCCESS);

    /* Every unit is reachable again: the ring takes as many of the smallest
     * records (in clear: 56 bytes) as it has room for without evicting,
     * less at most one for the padding where the ring wraps, and then
     * evicts the oldest of them. */
    f->store->form = SS_RECORD_FORM_CLEAR;
    assert_int_equal(ss_shm_footprint(SS_RECORD_HEADER_LEN + 2, 0), 56);
    cap_units = st.capacity_bytes / UNIT_BYTES;
    fit = cap_units / 7;
    for (i = 0;; i++) {
        assert_true(i <= (int)fit);
        assert_int_equal(save_kv(f, 1000 + i, 0, 0, T0, 0), APR_SUCCESS);
        if (unit_stats(f->store).evicted_lru) {
            break;
        }
    }
    st = unit_stats(f->store);
    print_message("  %lu of %lu records of 7 units fit in the emptied ring\n", (unsigned long)i,
                  (unsigned long)fit);
    assert_true((apr_uint64_t)i >= fit - 1);
    assert_int_equal(st.evicted_lru, 1);
    assert_int_equal(st.entries, (apr_uint64_t)i);
    assert_int_equal(st.used_bytes, (apr_uint64_t)i * 56);
    assert_false(in_arena(f, 1000));
    assert_present(f, 1000 + i, 0, 0);
    assert_present(f, 1001, 0, 0);
    assert_present(f, 1000 + i - 1, 0, 0);
    assert_int_equal(ss_shm_check(f->base, f->size, 16384, NULL), APR_SUCCESS);
}

/* ---- concurrency ------------------------------------------------------- */

#define MAX_WORKERS 8
#define OWN_KEYS 16
#define SHARED_KEYS 4
#define MAX_KEYS (MAX_WORKERS * OWN_KEYS + SHARED_KEYS)
#define MIN_PLEN 40
#define MAX_PLEN 3000
#define OP_STEP SEC(1)         /* fake time per operation */
#define HAMMER_IDLE SEC(86400) /* no expiry within a run; touch every 60 s */

typedef struct {
    apr_uint64_t saves, hits, misses, removes, corrupt, errors;
    int final_counter[OWN_KEYS]; /* -1: absent */
    int final_len[OWN_KEYS];
    apr_time_t final_created[OWN_KEYS];
    apr_time_t final_accessed[OWN_KEYS];
    apr_uint64_t own_touches; /* touches of its own keys, which it can predict */
} worker_result_t;

typedef struct {
    ss_session_ctx_t ctx;
    int nworkers;
    int ops;
    int evicting; /* arena small enough that records get evicted */
    char ids[MAX_KEYS][SS_ID_LEN + 1];
    worker_result_t *results;
    volatile apr_uint32_t *go; /* the workers start together when this turns 1 */
    void *base;                /* for processes */
} hammer_t;

typedef struct {
    hammer_t *h;
    int w;
} thread_arg_t;

static int nkeys_of(const hammer_t *h)
{
    return h->nworkers * OWN_KEYS + SHARED_KEYS;
}

static apr_uint32_t fnv1a(const char *s, apr_size_t n)
{
    apr_uint32_t v = 2166136261u;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        v = (v ^ (unsigned char)s[i]) * 16777619u;
    }
    return v;
}

/* "key:writer:counter:len:" + filler + "#" + 8 hex digits of FNV-1a of all
 * that precedes; buf holds len + 1 bytes. */
static void make_payload(char *buf, int key, int writer, int counter, int len)
{
    int n = snprintf(buf, (size_t)len + 1, "%d:%d:%d:%d:", key, writer, counter, len), i;

    for (i = n; i < len - 9; i++) {
        buf[i] = (char)('a' + (key * 7 + counter * 13 + i) % 26);
    }
    buf[len - 9] = '#';
    snprintf(buf + len - 8, 9, "%08x", (unsigned)fnv1a(buf, (apr_size_t)len - 9));
}

/* 0 when rec is exactly a value some worker wrote under key. */
static int verify_payload(const hammer_t *h, const ss_record_t *rec, int key, int *writer,
                          int *counter)
{
    char buf[MAX_PLEN + 1], user[32];
    int k, w, c, len;

    snprintf(user, sizeof(user), "u%d", key);
    if (strcmp(rec->user, user) != 0) {
        return 1;
    }
    if (sscanf(rec->payload, "%d:%d:%d:%d:", &k, &w, &c, &len) != 4) {
        return 1;
    }
    if (k != key || w < 0 || w >= h->nworkers || c <= 0 || c > h->ops || len < MIN_PLEN ||
        len > MAX_PLEN || (apr_size_t)len != rec->payload_len) {
        return 1;
    }
    make_payload(buf, k, w, c, len);
    if (memcmp(buf, rec->payload, (apr_size_t)len) != 0) {
        return 1;
    }
    if (fnv1a(rec->payload, (apr_size_t)len - 9) !=
        (apr_uint32_t)strtoul(rec->payload + len - 8, NULL, 16)) {
        return 1;
    }
    *writer = w;
    *counter = c;
    return 0;
}

static apr_uint32_t xorshift(apr_uint32_t *s)
{
    apr_uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Write rec under id: as new, or as an update over the revision the store
 * holds now (read by a load like any other, counted as the worker's). */
static apr_status_t write_counted(const hammer_t *h, worker_result_t *res, const char *id,
                                  const ss_record_t *rec, int is_new, apr_pool_t *p)
{
    ss_record_t now, next = *rec;
    ss_key_t key;
    apr_status_t rv;

    if (is_new) {
        return unit_id_write(&h->ctx, id, rec, 1, p);
    }
    rv = unit_id_load(&h->ctx, id, rec->accessed, p, &now);
    if (rv == APR_SUCCESS) {
        res->hits++;
        next.revision = now.revision + 1;
    } else if (rv == APR_NOTFOUND) {
        res->misses++;
        next.revision = 1;
    } else {
        return rv;
    }
    rv = unit_id_key(id, &key);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return h->ctx.store->ops->save(h->ctx.store, &key, &next,
                                   ss_expiry_deadline(&h->ctx.expiry, next.created, next.accessed),
                                   SS_SAVE_UPDATE, h->ctx.max_size, p);
}

/* A worker knows whether each of its own keys holds a record: it writes it
 * as new or as an update accordingly. Finding otherwise is corruption, except
 * for a record that an evicting arena dropped. */
static apr_status_t write_own(const hammer_t *h, worker_result_t *res, int slot, const char *id,
                              const ss_record_t *rec, apr_pool_t *p)
{
    int is_new = res->final_counter[slot] < 0;
    apr_status_t rv = write_counted(h, res, id, rec, is_new, p);

    if (rv == APR_NOTFOUND && !is_new && h->evicting) {
        res->final_counter[slot] = -1;
        return write_counted(h, res, id, rec, 1, p);
    }
    if (rv == APR_NOTFOUND || rv == APR_EEXIST || rv == SS_ECONFLICT) {
        res->corrupt++;
    }
    return rv;
}

/* Nobody knows whether a shared key holds a record: update it, or create it
 * when it is gone; another worker may create it in between, write it between
 * the revision read and the update (a conflict), or an evicting arena drop
 * it. */
static apr_status_t write_shared(const hammer_t *h, worker_result_t *res, const char *id,
                                 const ss_record_t *rec, apr_pool_t *p)
{
    apr_status_t rv = APR_NOTFOUND;
    int is_new = 0, tries;

    for (tries = 0; tries < 16; tries++) {
        rv = write_counted(h, res, id, rec, is_new, p);
        if (rv != APR_NOTFOUND && rv != APR_EEXIST && rv != SS_ECONFLICT) {
            break;
        }
        is_new = rv == APR_NOTFOUND;
    }
    return rv;
}

/* Thousands of mixed operations by worker w: saves and loads on its own
 * keys and on the shared ones, removes on its own keys. It knows exactly
 * what its own keys must hold; a shared key may hold anything some worker
 * wrote, but nothing else. No cmocka here: this runs in children and
 * threads, and reports through res. */
static void hammer_worker(const hammer_t *h, int w, apr_pool_t *pool, worker_result_t *res)
{
    apr_uint32_t seed = 0x9e3779b9u * (apr_uint32_t)(w + 1);
    int counter = 0, op, j;
    char buf[MAX_PLEN + 1], user[32];
    apr_pool_t *iter;

    memset(res, 0, sizeof(*res));
    for (j = 0; j < OWN_KEYS; j++) {
        res->final_counter[j] = -1;
    }
    if (apr_pool_create(&iter, pool) != APR_SUCCESS) {
        res->errors++;
        return;
    }
    while (!apr_atomic_read32(h->go)) {
        apr_sleep(100);
    }
    for (op = 0; op < h->ops; op++) {
        apr_time_t now = T0 + op * OP_STEP;
        apr_uint32_t r = xorshift(&seed) % 100;
        int own = xorshift(&seed) % 4 != 0;
        int slot = own ? (int)(xorshift(&seed) % OWN_KEYS) : 0;
        int key = own ? w * OWN_KEYS + slot
                      : h->nworkers * OWN_KEYS + (int)(xorshift(&seed) % SHARED_KEYS);
        const char *id = h->ids[key];
        apr_status_t rv;

        apr_pool_clear(iter);
        if (r < 40) {
            ss_record_t rec;
            int len = MIN_PLEN + (int)(xorshift(&seed) % (MAX_PLEN - MIN_PLEN + 1));

            make_payload(buf, key, w, ++counter, len);
            snprintf(user, sizeof(user), "u%d", key);
            rec.created = now;
            rec.accessed = now;
            rec.user = user;
            rec.payload = buf;
            rec.payload_len = (apr_size_t)len;
            rec.revision = 0;
            rv = own ? write_own(h, res, slot, id, &rec, iter)
                     : write_shared(h, res, id, &rec, iter);
            if (rv != APR_SUCCESS) {
                res->errors++;
                continue;
            }
            res->saves++;
            if (own) {
                res->final_counter[slot] = counter;
                res->final_len[slot] = len;
                res->final_created[slot] = now;
                res->final_accessed[slot] = now;
            }
        } else if (r < 90 || !own) {
            ss_record_t rec;
            int writer, c;

            rv = unit_id_load(&h->ctx, id, now, iter, &rec);
            if (rv == APR_NOTFOUND) {
                res->misses++;
                if (own && res->final_counter[slot] >= 0) {
                    /* Only an eviction may take one of our records away. */
                    if (!h->evicting) {
                        res->corrupt++;
                    }
                    res->final_counter[slot] = -1;
                }
                continue;
            }
            if (rv != APR_SUCCESS) {
                res->errors++;
                continue;
            }
            res->hits++;
            if (verify_payload(h, &rec, key, &writer, &c) != 0) {
                res->corrupt++;
                continue;
            }
            if (own) {
                /* Nobody else loads our keys: we know when a touch is due. */
                int due =
                    now - res->final_accessed[slot] >= ss_expiry_touch_interval(&h->ctx.expiry);
                apr_time_t accessed = due ? now : res->final_accessed[slot];

                if (writer != w || c != res->final_counter[slot] ||
                    (int)rec.payload_len != res->final_len[slot] ||
                    rec.created != res->final_created[slot] || rec.accessed != accessed) {
                    /* A stale or foreign value under one of our own keys. */
                    res->corrupt++;
                }
                res->final_accessed[slot] = accessed;
                res->own_touches += due;
            }
        } else {
            if (unit_id_remove(&h->ctx, id) != APR_SUCCESS) {
                res->errors++;
                continue;
            }
            if (res->final_counter[slot] >= 0) {
                res->removes++;
            }
            res->final_counter[slot] = -1;
        }
    }
    apr_pool_destroy(iter);
}

static void hammer_init(fixture_t *f, hammer_t *h, int nworkers, int ops, apr_size_t arena)
{
    int k, j;

    memset(h, 0, sizeof(*h));
    ss_shm_fault_max_stripes = 0; /* as many stripes as the size gives */
    unit_arena_open(f, arena, 8192);
    assert_true(ss_shm_stripes(f->base) >= (arena >= MIB ? 16u : 1u));
    h->ctx.store = f->store;
    h->ctx.expiry.idle = HAMMER_IDLE;
    h->ctx.expiry.absolute = 0;
    h->ctx.max_size = 8192;
    h->nworkers = nworkers;
    h->ops = ops;
    h->base = f->base;
    h->evicting = arena < MIB;
    for (k = 0; k < nkeys_of(h); k++) {
        assert_int_equal(ss_id_generate(h->ids[k]), APR_SUCCESS);
        for (j = 0; j < k; j++) {
            assert_string_not_equal(h->ids[j], h->ids[k]);
        }
    }
    ss_log_set(NULL, NULL);
}

/* Every key loaded once more at later: what a worker last saved under its
 * own key, or (only where records may be lost) nothing; under a shared key
 * some worker's value, whole. The records found, their bytes in *bytes. */
static apr_uint64_t hammer_contents(fixture_t *f, hammer_t *h, apr_time_t later,
                                    apr_uint64_t *bytes)
{
    apr_uint64_t found = 0;
    int k;

    for (k = 0; k < nkeys_of(h); k++) {
        ss_record_t rec;
        apr_status_t rv = unit_id_load(&h->ctx, h->ids[k], later, f->p, &rec);
        int own = k < h->nworkers * OWN_KEYS, writer = -1, c = -1;
        const worker_result_t *res = own ? &h->results[k / OWN_KEYS] : NULL;

        if (rv == APR_NOTFOUND) {
            /* Only an eviction can lose a record its owner last saved. */
            if (own && !h->evicting) {
                assert_int_equal(res->final_counter[k % OWN_KEYS], -1);
            }
            continue;
        }
        assert_int_equal(rv, APR_SUCCESS);
        assert_int_equal(verify_payload(h, &rec, k, &writer, &c), 0);
        if (own) {
            assert_int_equal(writer, k / OWN_KEYS);
            assert_int_equal(c, res->final_counter[k % OWN_KEYS]);
            assert_int_equal(rec.payload_len, res->final_len[k % OWN_KEYS]);
            assert_int_equal(rec.created, res->final_created[k % OWN_KEYS]);
        }
        /* Every record was last accessed over a minute before: touched now. */
        assert_int_equal(rec.accessed, later);
        found++;
        *bytes += ss_shm_footprint(ss_record_size(&rec, f->store->form), *rec.user != '\0');
    }
    return found;
}

/* After the workers: counters agree with what they saw, and the arena holds
 * exactly what loading every key finds. */
static void hammer_check(fixture_t *f, hammer_t *h)
{
    ss_store_stats_t st, st2;
    apr_uint64_t saves = 0, hits = 0, misses = 0, removes = 0, touches = 0, found, bytes = 0;
    apr_time_t later = T0 + (apr_time_t)h->ops * OP_STEP + SEC(60);
    int w;

    for (w = 0; w < h->nworkers; w++) {
        const worker_result_t *res = &h->results[w];

        assert_int_equal(res->corrupt, 0);
        assert_int_equal(res->errors, 0);
        saves += res->saves;
        hits += res->hits;
        misses += res->misses;
        removes += res->removes;
        touches += res->own_touches;
    }
    st = unit_stats(f->store);
    print_message("  %d workers x %d ops: %lu saves, %lu hits, %lu misses, %lu removes, "
                  "%lu touches, %lu evicted\n",
                  h->nworkers, h->ops, (unsigned long)st.saves, (unsigned long)st.hits,
                  (unsigned long)st.misses, (unsigned long)st.removes, (unsigned long)st.touches,
                  (unsigned long)st.evicted_lru);
    assert_true(saves > (apr_uint64_t)h->nworkers * h->ops / 4);
    assert_true(hits > (apr_uint64_t)h->nworkers * h->ops / 10);
    assert_int_equal(st.saves, saves);
    assert_int_equal(st.hits, hits);
    assert_int_equal(st.misses, misses);
    assert_int_equal(st.expired, 0);
    assert_int_equal(st.refused_oversize, 0);
    assert_int_equal(st.evicted_expired, 0);
    assert_true(touches > 0);
    assert_true(st.touches >= touches);
    if (h->evicting) {
        assert_true(st.evicted_lru > 0);
        assert_true(st.removes <= removes);
    } else {
        assert_int_equal(st.evicted_lru, 0);
        assert_int_equal(st.removes, removes);
    }

    found = hammer_contents(f, h, later, &bytes);
    st2 = unit_stats(f->store);
    assert_true(found > 0);
    assert_int_equal(st2.entries, found);
    assert_int_equal(st2.used_bytes, bytes);
    assert_int_equal(st2.hits, st.hits + found);
    assert_int_equal(st2.misses, st.misses + (nkeys_of(h) - found));
    assert_int_equal(st2.touches, st.touches + found);
}

/* Fork the workers, waiting for *h->go in shared memory; the number
 * started. */
static int fork_workers(fixture_t *f, hammer_t *h, apr_proc_t *procs)
{
    apr_shm_t *results_shm;
    int w, started = 0;

    /* The results and the start flag live in shared memory too. */
    assert_int_equal(
        apr_shm_create(&results_shm, sizeof(worker_result_t) * (MAX_WORKERS + 1), NULL, f->p),
        APR_SUCCESS);
    h->results = apr_shm_baseaddr_get(results_shm);
    memset(h->results, 0, sizeof(worker_result_t) * (MAX_WORKERS + 1));
    h->go = (volatile apr_uint32_t *)&h->results[MAX_WORKERS];

    for (w = 0; w < h->nworkers; w++) {
        apr_status_t rv = apr_proc_fork(&procs[w], f->p);

        if (rv == APR_INCHILD) {
            apr_pool_t *cp;
            worker_result_t *res = &h->results[w];
            hammer_t mine = *h;
            static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
            size_t k;

            /* cmocka's handlers would resume the test run inside the child:
             * a crash must kill it, for the parent to see. */
            for (k = 0; k < sizeof(crash_signals) / sizeof(crash_signals[0]); k++) {
                signal(crash_signals[k], SIG_DFL);
            }
            if (apr_pool_create(&cp, NULL) != APR_SUCCESS ||
                ss_shm_open(&mine.ctx.store, h->base, cp) != APR_SUCCESS) {
                _exit(3);
            }
            hammer_worker(&mine, w, cp, res);
            _exit(res->corrupt ? 1 : res->errors ? 2 : 0);
        }
        if (rv != APR_INPARENT) {
            break;
        }
        started++;
    }
    return started;
}

/* How many of the n processes did not exit with 0. */
static int wait_workers(apr_proc_t *procs, int n)
{
    int w, bad = 0;

    for (w = 0; w < n; w++) {
        int code = -1;
        apr_exit_why_e why = APR_PROC_SIGNAL;

        if (apr_proc_wait(&procs[w], &code, &why, APR_WAIT) != APR_CHILD_DONE ||
            why != APR_PROC_EXIT || code != 0) {
            fprintf(stderr, "worker %d: why %d code %d\n", w, (int)why, code);
            bad++;
        }
    }
    return bad;
}

static void run_processes(fixture_t *f, hammer_t *h)
{
    apr_proc_t procs[MAX_WORKERS];
    int started = fork_workers(f, h, procs);

    apr_atomic_set32(h->go, 1);
    assert_int_equal(wait_workers(procs, started), 0);
    assert_int_equal(started, h->nworkers);
    hammer_check(f, h);
}

static void *APR_THREAD_FUNC thread_main(apr_thread_t *t, void *data)
{
    thread_arg_t *arg = data;
    apr_pool_t *tp = NULL;

    if (apr_pool_create_unmanaged_ex(&tp, NULL, NULL) != APR_SUCCESS) {
        arg->h->results[arg->w].errors++;
    } else {
        hammer_worker(arg->h, arg->w, tp, &arg->h->results[arg->w]);
        apr_pool_destroy(tp);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void run_threads(fixture_t *f, hammer_t *h)
{
    apr_thread_t *threads[MAX_WORKERS];
    thread_arg_t args[MAX_WORKERS];
    int w;

    h->results = apr_pcalloc(f->p, sizeof(worker_result_t) * MAX_WORKERS);
    h->go = apr_pcalloc(f->p, sizeof(*h->go));
    for (w = 0; w < h->nworkers; w++) {
        args[w].h = h;
        args[w].w = w;
        assert_int_equal(apr_thread_create(&threads[w], NULL, thread_main, &args[w], f->p),
                         APR_SUCCESS);
    }
    apr_atomic_set32(h->go, 1);
    for (w = 0; w < h->nworkers; w++) {
        apr_status_t trv = APR_EGENERAL;

        assert_int_equal(apr_thread_join(&trv, threads[w]), APR_SUCCESS);
        assert_int_equal(trv, APR_SUCCESS);
    }
    hammer_check(f, h);
}

/* A hammer run: nworkers x ops operations on an arena of the given size. */
static void hammer(void **state, int nworkers, int ops, apr_size_t arena,
                   void (*run)(fixture_t *, hammer_t *))
{
    fixture_t *f = *state;
    hammer_t *h = apr_palloc(f->p, sizeof(*h));

    hammer_init(f, h, nworkers, ops, arena);
    run(f, h);
}

static void test_hammer_processes(void **state)
{
    hammer(state, 4, 8000, 4 * MIB, run_processes);
}

static void test_hammer_processes_evicting(void **state)
{
    hammer(state, 4, 8000, SS_SHM_MIN_SIZE, run_processes);
}

static void test_hammer_threads(void **state)
{
    hammer(state, 8, 4000, 4 * MIB, run_threads);
}

static void test_hammer_threads_evicting(void **state)
{
    hammer(state, 8, 4000, SS_SHM_MIN_SIZE, run_threads);
}

/* ---- crashes and damage ------------------------------------------------ */

/* Every message logged, by kind: rebuilds (ERR, "emptied it"), dead writers
 * whose arena was kept (WARNING, "died while updating"), anything else. */
typedef struct {
    int rebuilds, kept, other;
    char last[2048];
} damage_log_t;

static void capture_damage(void *baton, int level, apr_status_t rv, const char *msg)
{
    damage_log_t *d = baton;

    (void)rv;
    if (level == SS_LOG_ERR && strstr(msg, "emptied it")) {
        d->rebuilds++;
    } else if (level == SS_LOG_WARNING && strstr(msg, "consistent and kept")) {
        d->kept++;
    } else {
        d->other++;
    }
    apr_cpystrn(d->last, msg, sizeof(d->last));
}

#define DAMAGE_ARENA (256 * 1024)
#define DAMAGE_MAX_RECORD 4096
#define DAMAGE_KEYS 300
static const ss_expiry_t touchy = {SEC(3600), 0}; /* a touch is due after 60 s */

/* A record found under key i is the one written under key i, whole. */
static void assert_own_record(int i, const ss_record_t *rec, apr_pool_t *p)
{
    char prefix[32];
    int v = -1;

    snprintf(prefix, sizeof(prefix), "k%d:v", i);
    assert_int_equal(strncmp(rec->payload, prefix, strlen(prefix)), 0);
    assert_int_equal(sscanf(rec->payload + strlen(prefix), "%d", &v), 1);
    assert_memory_equal(rec->payload, payload_of(i, v, rec->payload_len, p), rec->payload_len);
}

/* The kinds of operation of the damage workload. */
enum { DAMAGE_LOAD, DAMAGE_REMOVE, DAMAGE_REVOKE, DAMAGE_PURGE, DAMAGE_SAVE };

static int damage_kind(int op)
{
    return op % 5 == 3     ? DAMAGE_LOAD
           : op % 11 == 7  ? DAMAGE_REMOVE
           : op % 53 == 26 ? DAMAGE_REVOKE
           : op % 47 == 23 ? DAMAGE_PURGE
                           : DAMAGE_SAVE;
}

/* Operation op of a workload that saves (records of 64 bytes to 2.6 KB,
 * every seventh dying 10 s later, every third with an owner), loads
 * (touching), removes, revokes an owner's records, purges dead ones, fills
 * the arena and evicts: every fault point is passed within a few hundred
 * operations. */
static void damage_op(fixture_t *f, int op, apr_time_t now, apr_pool_t *p)
{
    /* A load asks for the key saved 61 operations (seconds) before: due for
     * a touch, if nothing removed it since. */
    int i = ((op % 5 == 3 ? op - 61 : op) * 37 % DAMAGE_KEYS + DAMAGE_KEYS) % DAMAGE_KEYS;
    ss_key_t key;
    ss_record_t rec;
    apr_status_t rv;

    key_of(i, &key);
    switch (damage_kind(op)) {
    case DAMAGE_LOAD:
        rv = f->store->ops->load(f->store, &key, &touchy, &touchy, now, p, &rec);
        assert_true(rv == APR_SUCCESS || rv == APR_NOTFOUND || rv == SS_EEXPIRED);
        if (rv == APR_SUCCESS) {
            assert_own_record(i, &rec, p);
        }
        break;
    case DAMAGE_REMOVE:
        assert_int_equal(f->store->ops->remove(f->store, &key), APR_SUCCESS);
        break;
    case DAMAGE_REVOKE: {
        ss_owner_t owner;

        assert_int_equal(ss_owner_hash(op % 2 ? "owner-1" : "owner-0", &owner), APR_SUCCESS);
        assert_int_equal(f->store->ops->revoke_owner(f->store, &owner, NULL, now, NULL),
                         APR_SUCCESS);
        break;
    }
    case DAMAGE_PURGE:
        assert_int_equal(f->store->ops->purge_expired(f->store, now, NULL), APR_SUCCESS);
        break;
    default: {
        apr_size_t plen = 10 + (apr_size_t)((op * 7919) % 2500);

        rec.created = rec.accessed = now;
        rec.user = i % 3 ? "" : i % 2 ? "owner-1" : "owner-0";
        rec.payload = payload_of(i, op, plen, p);
        rec.payload_len = plen;
        rec.revision = 0;
        rv = f->store->ops->save(f->store, &key, &rec, i % 7 ? 0 : now + SEC(10), SS_SAVE_NEW,
                                 UNIT_NO_LIMIT, p);
        if (rv == APR_EEXIST) {
            rv = unit_update(f->store, &key, &rec, 0, UNIT_NO_LIMIT, p);
        }
        assert_true(rv == APR_SUCCESS || rv == APR_NOTFOUND);
    }
    }
}

/* One fault point, whether the stripe is damaged when a writer dies there:
 * 0 never, 1 always, DAMAGE_EITHER depending on where the update was (said
 * below). */
#define DAMAGE_EITHER 2

typedef struct {
    const char *step;
    int damages;
} fault_step_t;

static const fault_step_t fault_steps[] = {
    {"update.begun", 0},              /* the mark is set, nothing written yet */
    {"save.old_removed", 0},          /* the old version is out, wholly: a dead slot */
    {"save.room_made", 0},            /* the hand moved on, the gap large enough */
    {"save.mid_copy", DAMAGE_EITHER}, /* in place: the slot not live yet, still indexed; at
                                       * the head: half a slot in the gap, nothing told */
    {"save.allocated", 1},            /* a live slot past the head, not indexed */
    {"save.hash_linked", 1},          /* indexed, not counted */
    {"save.done", 0},                 /* everything but the mark */
    {"remove.hash_unlinked", 1},      /* the crash of issue 9: out of the index, still live */
    {"touch.accessed", 0},            /* the record's access time rewritten, not the deadline */
    {"clock.moved", DAMAGE_EITHER},   /* a kept slot copied to the head, the index not told:
                                       * whole where the copy did not overlap it */
    {"clock.kept", 0},                /* the kept slot moved and indexed, head and hand past it */
    {"clock.padded", 0},              /* the tail of the data a dead slot, the head back at 0 */
    {"evict.killed", 0},              /* the evicted slot dead, the hand not past it */
    {"evict.passed", 0},              /* the hand past a dead slot, its units in the gap */
    {"revoke.removed", 0},            /* one of the owner's slots dead, the walk not done */
};

static const char *fault_target;
static int fault_passes_left;

static void kill_at_target(const char *step)
{
    if (strcmp(step, fault_target) == 0 && --fault_passes_left == 0) {
        raise(SIGKILL);
    }
}

/* A child runs the workload and SIGKILLs itself, with the lock held, on the
 * pass-th pass of step; 0 when it died so, -1 when it never got there. Its
 * pid goes to *pid. */
static int kill_child_at(fixture_t *f, const char *step, int pass, apr_time_t t0, pid_t *pid)
{
    apr_proc_t proc;
    apr_exit_why_e why;
    int code = -1;
    apr_status_t rv = apr_proc_fork(&proc, f->p);

    if (rv == APR_INCHILD) {
        apr_pool_t *p;
        int op;

        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        fault_target = step;
        fault_passes_left = pass;
        ss_shm_fault_hook = kill_at_target;
        apr_pool_create(&p, NULL);
        for (op = 0; op < 5000; op++) {
            apr_pool_clear(p);
            damage_op(f, op, t0 + op * SEC(1), p);
        }
        _exit(0);
    }
    assert_int_equal(rv, APR_INPARENT);
    *pid = proc.pid;
    assert_int_equal(apr_proc_wait(&proc, &code, &why, APR_WAIT), APR_CHILD_DONE);
    return why == APR_PROC_SIGNAL && code == SIGKILL ? 0 : -1;
}

static void test_writer_killed_at_every_step(void **state)
{
    fixture_t *f = *state;
    static const int passes[] = {1, 4, 29};
    damage_log_t log;
    apr_pool_t *p;
    apr_time_t t = T0;
    apr_uint32_t rebuilds = 0;
    int kills = 0, damaged = 0, ops = 0;
    pid_t child = 0;
    char died[64];
    size_t s, k;
    int op;

    alarm(300);                   /* a hang fails the test */
    ss_shm_fault_max_stripes = 0; /* each kill damages one stripe of several */
    unit_arena_open(f, DAMAGE_ARENA, DAMAGE_MAX_RECORD);
    assert_true(ss_shm_stripes(f->base) > 1);
    assert_int_equal(apr_pool_create(&p, f->p), APR_SUCCESS);
    ss_log_set(capture_damage, &log);
    for (s = 0; s < UNIT_COUNT(fault_steps); s++) {
        for (k = 0; k < UNIT_COUNT(passes); k++) {
            memset(&log, 0, sizeof(log));
            if (kill_child_at(f, fault_steps[s].step, passes[k], t, &child) != 0) {
                fail_msg("%s: pass %d never reached", fault_steps[s].step, passes[k]);
            }
            kills++;
            t += SEC(100000);
            /* The next holder of the lock finds the mark: one message, a
             * rebuild exactly when the step leaves damage. */
            for (op = 0; op < 400; op++) {
                apr_pool_clear(p);
                damage_op(f, op * 3 + 1, t + op * SEC(1), p);
            }
            ops += 400;
            t += SEC(100000);
            if (log.rebuilds + log.kept != 1 || log.other != 0 ||
                (fault_steps[s].damages != DAMAGE_EITHER &&
                 log.rebuilds != fault_steps[s].damages)) {
                fail_msg("%s, pass %d: %d rebuilds, %d kept, %d other; last: %s",
                         fault_steps[s].step, passes[k], log.rebuilds, log.kept, log.other,
                         log.last);
            }
            /* It names the child that died, not this process: the mark's
             * pid, kept per process, is forgotten in a forked child. */
            snprintf(died, sizeof(died), "process %ld died", (long)child);
            if (!strstr(log.last, died)) {
                fail_msg("%s, pass %d: expected \"%s\" in: %s", fault_steps[s].step, passes[k],
                         died, log.last);
            }
            if (fault_steps[s].damages == DAMAGE_EITHER) {
                print_message("  %s, pass %d: %s\n", fault_steps[s].step, passes[k],
                              log.rebuilds ? "damaged, emptied" : "consistent, kept");
            }
            damaged += log.rebuilds;
            assert_int_equal(ss_shm_rebuilds(f->base), rebuilds + log.rebuilds);
            rebuilds = ss_shm_rebuilds(f->base);
            assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, NULL), APR_SUCCESS);
        }
    }
    /* The arena filled and evicted all along. */
    assert_true(unit_stats(f->store).evicted_lru > 0);
    assert_true(unit_stats(f->store).evicted_expired > 0);
    print_message("  %d fault points, %d kills, %d arenas damaged and rebuilt, %d ops after them\n",
                  (int)UNIT_COUNT(fault_steps), kills, damaged, ops);
    ss_log_set(NULL, NULL);
    alarm(0);
}

/* A writer killed halfway through rewriting a record in place (same size):
 * the next holder of the lock must not serve half of each version. Either
 * version whole, or the stripe emptied; records in clear, which no seal
 * would catch. */
static void test_killed_mid_overwrite_in_place(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    apr_proc_t proc;
    apr_exit_why_e why;
    ss_record_t out;
    apr_status_t rv;
    int code = -1;

    unit_arena_open(f, 256 * 1024, 8192);
    f->store->form = SS_RECORD_FORM_CLEAR;
    assert_int_equal(save_kv(f, 1, 0, 1000, T0, 0), APR_SUCCESS);
    assert_int_equal(save_kv(f, 2, 0, 1000, T0, 0), APR_SUCCESS);
    rv = apr_proc_fork(&proc, f->p);
    if (rv == APR_INCHILD) {
        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        fault_target = "save.mid_copy";
        fault_passes_left = 1;
        ss_shm_fault_hook = kill_at_target;
        save_kv(f, 1, 1, 1000, T0, 0);
        _exit(0);
    }
    assert_int_equal(rv, APR_INPARENT);
    assert_int_equal(apr_proc_wait(&proc, &code, &why, APR_WAIT), APR_CHILD_DONE);
    assert_int_equal(why, APR_PROC_SIGNAL);
    assert_int_equal(code, SIGKILL);
    memset(&log, 0, sizeof(log));
    ss_log_set(capture_damage, &log);
    rv = load_i(f, 1, T0, &out);
    if (rv == APR_SUCCESS) {
        assert_int_equal(out.payload_len, 1000);
        if (strcmp(out.payload, payload_of(1, 0, 1000, f->p)) != 0) {
            assert_string_equal(out.payload, payload_of(1, 1, 1000, f->p));
        }
    } else {
        assert_int_equal(rv, APR_NOTFOUND);
    }
    assert_int_equal(log.rebuilds + log.kept, 1);
    assert_int_equal(log.other, 0);
    assert_int_equal(ss_shm_check(f->base, f->size, 8192, NULL), APR_SUCCESS);
    ss_log_set(NULL, NULL);
}

/* Processes hammer a striped arena while another one, saving its own keys
 * in between, is killed with a stripe's lock held in the middle of a save
 * (a live slot written past the head, in no index). The lock is robust: nobody waits for
 * the dead process, the next holder of that stripe's lock empties the
 * stripe, once, and every worker finishes its operations without an error
 * or a foreign value; the arena is whole. */
static void test_hammer_processes_one_killed(void **state)
{
    fixture_t *f = *state;
    hammer_t *h = apr_palloc(f->p, sizeof(*h));
    apr_proc_t procs[MAX_WORKERS], killer;
    apr_exit_why_e why = APR_PROC_EXIT;
    apr_uint64_t bytes = 0;
    apr_status_t rv;
    int started, code = -1;

    alarm(120); /* a process waiting for the dead one's lock fails the test */
    hammer_init(f, h, 4, 8000, DAMAGE_ARENA);
    assert_true(ss_shm_stripes(f->base) >= 4);
    h->evicting = 1; /* records of the emptied stripe are lost, like evicted ones */
    started = fork_workers(f, h, procs);
    assert_int_equal(started, h->nworkers);
    rv = apr_proc_fork(&killer, f->p);
    if (rv == APR_INCHILD) {
        apr_pool_t *p;
        int op;

        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        fault_target = "save.allocated";
        fault_passes_left = 300;
        ss_shm_fault_hook = kill_at_target;
        apr_pool_create(&p, NULL);
        while (!apr_atomic_read32(h->go)) {
            apr_sleep(100);
        }
        for (op = 0; op < 100000; op++) {
            apr_pool_clear(p);
            if (damage_kind(op) == DAMAGE_SAVE) { /* every op passes the point */
                damage_op(f, op, T0 + op * SEC(1), p);
            }
        }
        _exit(0);
    }
    assert_int_equal(rv, APR_INPARENT);
    apr_atomic_set32(h->go, 1);
    assert_int_equal(apr_proc_wait(&killer, &code, &why, APR_WAIT), APR_CHILD_DONE);
    assert_int_equal(why, APR_PROC_SIGNAL);
    assert_int_equal(code, SIGKILL);
    assert_int_equal(wait_workers(procs, started), 0);
    /* The workers met the dead writer's stripe and emptied it, once. */
    assert_int_equal(ss_shm_rebuilds(f->base), 1);
    assert_int_equal(ss_shm_check(f->base, f->size, 8192, NULL), APR_SUCCESS);
    assert_true(hammer_contents(f, h, T0 + (apr_time_t)h->ops * OP_STEP + SEC(60), &bytes) > 0);
    assert_int_equal(ss_shm_check(f->base, f->size, 8192, NULL), APR_SUCCESS);
    print_message("  %d workers x %d ops on %u stripes, a writer killed mid-save: 1 stripe "
                  "emptied, %lu records kept\n",
                  h->nworkers, h->ops, ss_shm_stripes(f->base),
                  (unsigned long)unit_stats(f->store).entries);
    alarm(0);
}

/* ---- damage by hand ---- */

static void fill_for_damage(fixture_t *f, damage_log_t *log)
{
    apr_pool_t *p;
    int op;

    unit_arena_open(f, DAMAGE_ARENA, DAMAGE_MAX_RECORD);
    assert_int_equal(apr_pool_create(&p, f->p), APR_SUCCESS);
    for (op = 0; op < 600; op++) {
        apr_pool_clear(p);
        damage_op(f, op, T0, p);
    }
    apr_pool_destroy(p);
    memset(log, 0, sizeof(*log));
    ss_log_set(capture_damage, log);
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, NULL), APR_SUCCESS);
}

/* A stored key (a load finds it), from k up. */
static int stored_key(fixture_t *f, int k)
{
    ss_record_t rec;

    for (; k < DAMAGE_KEYS; k++) {
        if (load_i(f, k, T0, &rec) == APR_SUCCESS) {
            return k;
        }
    }
    fail_msg("no stored key");
    return -1;
}

static apr_uint32_t *field_of(fixture_t *f, const char *name, int i)
{
    ss_key_t key;
    apr_uint32_t *field;

    key_of(i, &key);
    field = ss_shm_fault_field(f->base, name, &key);
    assert_non_null(field);
    return field;
}

/* The damage is seen by the full walk; the operation then meets it, empties
 * the arena once, and the arena works again. */
static void assert_detected(fixture_t *f, damage_log_t *log, void (*op)(fixture_t *, int), int i)
{
    const char *why = NULL;

    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, &why), APR_EGENERAL);
    assert_non_null(why);
    op(f, i);
    if (log->rebuilds != 1 || log->other != 0) {
        fail_msg("%d rebuilds, %d other messages; last: %s", log->rebuilds, log->other, log->last);
    }
    assert_non_null(strstr(log->last, why));
    assert_int_equal(ss_shm_rebuilds(f->base), 1);
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, NULL), APR_SUCCESS);
    assert_true(unit_stats(f->store).entries <= 1); /* emptied; a save may have followed */
    assert_int_equal(save_kv(f, 1, 9, 3000, T0, 0), APR_SUCCESS);
    assert_present(f, 1, 9, 3000);
}

static void op_load(fixture_t *f, int i)
{
    ss_record_t rec;

    assert_int_equal(load_i(f, i, T0, &rec), APR_NOTFOUND);
}

static void op_remove(fixture_t *f, int i)
{
    ss_key_t key;

    key_of(i, &key);
    assert_int_equal(f->store->ops->remove(f->store, &key), APR_SUCCESS);
}

static void op_save(fixture_t *f, int i)
{
    assert_int_equal(save_kv(f, i, 1, 500, T0, 0), APR_SUCCESS);
}

/* Saves of new keys until the damage is met. */
static void op_save_many(fixture_t *f, int i)
{
    int k;

    for (k = 0; k < 2000 && ss_shm_rebuilds(f->base) == 0; k++) {
        assert_int_equal(save_kv(f, 10000 + i + k, 0, 2000, T0 + SEC(k), 0), APR_SUCCESS);
    }
}

static void test_damage_bucket_out_of_range(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    i = stored_key(f, 0);
    *field_of(f, "bucket", i) = 0x7ffffff0u;
    assert_detected(f, &log, op_load, i);
}

static void test_damage_bucket_mid_slot(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    /* Into the middle of a slot, within the stripe: no slot starts there. */
    i = stored_key(f, 0);
    *field_of(f, "bucket", i) += 1;
    assert_detected(f, &log, op_remove, i);
}

static void test_damage_meta_units_huge(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    apr_uint32_t *meta;
    int i;

    fill_for_damage(f, &log);
    i = stored_key(f, 0);
    meta = field_of(f, "meta", i);
    *meta = 0xffffffu << 8 | (*meta & 0xffu);
    assert_detected(f, &log, op_load, i);
}

static void test_damage_meta_units_huge_on_overwrite(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    apr_uint32_t *meta;
    int i;

    fill_for_damage(f, &log);
    /* Units enough for any record, but past the stripe's end: an overwrite
     * in place would write far beyond it. */
    i = stored_key(f, 0);
    meta = field_of(f, "meta", i);
    *meta = 0x10000u << 8 | (*meta & 0xffu);
    assert_detected(f, &log, op_save, i);
}

static void test_damage_meta_units_zero(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    i = stored_key(f, 0);
    *field_of(f, "meta", i) &= 0xffu;
    assert_detected(f, &log, op_remove, i);
}

static void test_damage_meta_units_too_few_for_record(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    /* Two units: less than a slot's header, let alone a record. */
    i = stored_key(f, 0);
    *field_of(f, "meta", i) = 2u << 8 | META_LIVE;
    assert_detected(f, &log, op_load, i);
}

static void test_damage_meta_not_live(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    /* Indexed, yet dead: a remove must not unlink it twice. */
    i = stored_key(f, 0);
    *field_of(f, "meta", i) &= ~META_LIVE;
    assert_detected(f, &log, op_remove, i);
}

/* A slot one unit shorter or longer than it is: its record still reads
 * (a shorter one fails its seal, a miss), but the slots no longer tile the
 * ring. The walk of a restart (ss_shm_repair) finds it and empties the
 * stripe; so does the hand when it gets there. */
static void damage_units_by(fixture_t *f, int delta, int by_repair)
{
    damage_log_t log;
    const char *why = NULL;
    apr_uint32_t *meta;
    int i;

    fill_for_damage(f, &log);
    i = stored_key(f, 0);
    meta = field_of(f, "meta", i);
    *meta = (apr_uint32_t)((int)META_UNITS(*meta) + delta) << 8 | (*meta & 0xffu);
    if (!by_repair) {
        assert_detected(f, &log, op_save_many, 0);
        return;
    }
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, &why), APR_EGENERAL);
    assert_non_null(why);
    assert_int_equal(ss_shm_repair(f->base, f->size, DAMAGE_MAX_RECORD, &why), APR_EGENERAL);
    assert_int_equal(log.rebuilds, 1);
    assert_int_equal(log.other, 0);
    assert_int_equal(ss_shm_rebuilds(f->base), 1);
    assert_int_equal(unit_stats(f->store).entries, 0);
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, NULL), APR_SUCCESS);
    assert_int_equal(save_kv(f, 1, 9, 3000, T0, 0), APR_SUCCESS);
    assert_present(f, 1, 9, 3000);
}

static void test_damage_meta_units_short_by_repair(void **state)
{
    damage_units_by(*state, -1, 1);
}

static void test_damage_meta_units_long_by_repair(void **state)
{
    damage_units_by(*state, 1, 1);
}

static void test_damage_meta_units_short_by_hand(void **state)
{
    damage_units_by(*state, -1, 0);
}

static void test_damage_meta_units_long_by_hand(void **state)
{
    damage_units_by(*state, 1, 0);
}

static void test_damage_hash_chain_cycle(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    apr_uint32_t iy;
    int x = 100000, y, c;

    fill_for_damage(f, &log);
    /* Two new keys and an absent one in one chain: a save puts its slot at
     * the head of the chain, so the bucket then holds the slot's position. */
    for (y = x + 1; field_of(f, "bucket", y) != field_of(f, "bucket", x); y++) {
    }
    for (c = y + 1; field_of(f, "bucket", c) != field_of(f, "bucket", x); c++) {
    }
    assert_int_equal(save_kv(f, x, 0, 100, T0, 0), APR_SUCCESS);
    assert_int_equal(save_kv(f, y, 0, 100, T0, 0), APR_SUCCESS);
    iy = *field_of(f, "bucket", y);
    /* y -> x -> y -> ... */
    *field_of(f, "hash_next", x) = iy;
    assert_detected(f, &log, op_load, c);
}

static void test_damage_hash_next_out_of_range(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    i = stored_key(f, 0);
    *field_of(f, "hash_next", i) = 0x7fffffffu;
    assert_detected(f, &log, op_remove, i);
}

/* A field of the stripe's state (one stripe: key 0's). */
static apr_uint32_t *state_field(fixture_t *f, const char *name)
{
    return field_of(f, name, 0);
}

static void test_damage_head_moved(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;

    fill_for_damage(f, &log);
    /* The gap no longer ends at the hand. */
    *state_field(f, "head") = *state_field(f, "head") ? *state_field(f, "head") - 1 : 1;
    assert_detected(f, &log, op_save_many, 0);
}

static void test_damage_free_too_high(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;

    fill_for_damage(f, &log);
    /* More room claimed than there is: the head would run over the hand. */
    *state_field(f, "free") += 40;
    assert_detected(f, &log, op_save_many, 0);
}

static void test_damage_hand_out_of_range(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;

    fill_for_damage(f, &log);
    *state_field(f, "hand") += 1000000;
    assert_detected(f, &log, op_save_many, 0);
}

static void test_damage_head_and_free_consistent_but_wrong(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;

    fill_for_damage(f, &log);
    /* The gap said to start a unit early, and be a unit longer: it ends at
     * the hand, but the last slot now ends past the head. */
    *state_field(f, "head") -= 1;
    *state_field(f, "free") += 1;
    assert_detected(f, &log, op_save_many, 0);
}

static void test_damage_counts_too_low(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    /* Fewer units live than the slot to remove holds. */
    i = stored_key(f, 0);
    *state_field(f, "live") = 1;
    assert_detected(f, &log, op_remove, i);
}

static void test_damage_entries_zero(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    int i;

    fill_for_damage(f, &log);
    i = stored_key(f, 0);
    *state_field(f, "entries") = 0;
    assert_detected(f, &log, op_remove, i);
}

static void test_kept_arena_of_another_layout(void **state)
{
    fixture_t *f = *state;
    damage_log_t log;
    ss_key_t none = {{0}, {0}, 0};
    ss_store_t *store = NULL;
    const char *why = NULL;

    fill_for_damage(f, &log);
    *ss_shm_fault_field(f->base, "layout", &none) += 1;
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, &why), APR_EINVAL);
    assert_non_null(strstr(why, "layout"));
    assert_false(ss_shm_is_formatted(f->base, f->size, DAMAGE_MAX_RECORD));
    assert_int_equal(ss_shm_open(&store, f->base, f->p), APR_EINVAL);
    /* The layout of the blocks (6) is not this one either. */
    *ss_shm_fault_field(f->base, "layout", &none) -= 2;
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, &why), APR_EINVAL);
    assert_int_equal(ss_shm_open(&store, f->base, f->p), APR_EINVAL);
    /* Another size or record limit is refused as foreign too, not walked. */
    *ss_shm_fault_field(f->base, "layout", &none) += 1;
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD, NULL), APR_SUCCESS);
    assert_int_equal(ss_shm_check(f->base, f->size, DAMAGE_MAX_RECORD + 1, NULL), APR_EINVAL);
    assert_int_equal(ss_shm_check(f->base, f->size - UNIT_BYTES, DAMAGE_MAX_RECORD, NULL),
                     APR_EINVAL);
    assert_int_equal(log.rebuilds + log.other, 0);
}

/* How long a full walk takes on a full arena of size bytes. */
static void walk_time(fixture_t *f, apr_size_t size)
{
    apr_pool_t *p;
    apr_time_t t0;
    ss_store_stats_t st;
    ss_record_t rec;
    ss_key_t key;
    int i;

    unit_arena_open(f, size, 16384);
    assert_int_equal(apr_pool_create(&p, f->p), APR_SUCCESS);
    /* Records of 130 to 730 bytes, until the arena has evicted for a while. */
    for (i = 0; unit_stats(f->store).evicted_lru < 1000; i++) {
        apr_pool_clear(p);
        key_of(i, &key);
        rec.created = rec.accessed = T0;
        rec.user = "";
        rec.payload_len = 50 + (apr_size_t)(i * 7919) % 600;
        rec.payload = payload_of(i, 0, rec.payload_len, p);
        assert_int_equal(
            f->store->ops->save(f->store, &key, &rec, 0, SS_SAVE_NEW, UNIT_NO_LIMIT, p),
            APR_SUCCESS);
    }
    apr_pool_destroy(p);
    st = unit_stats(f->store);
    t0 = apr_time_now();
    assert_int_equal(ss_shm_check(f->base, f->size, 16384, NULL), APR_SUCCESS);
    t0 = apr_time_now() - t0;
    print_message("  full walk of a %lu MiB arena, %lu records: %.1f ms\n",
                  (unsigned long)(size / MIB), (unsigned long)st.entries, t0 / 1000.0);
}

static void test_walk_time(void **state)
{
    fixture_t *f = *state;
    const char *big = getenv("SS_SHM_WALK_MIB"); /* 16 unless set, e.g. 300 by hand */

    walk_time(f, big ? (apr_size_t)atoi(big) * MIB : 16 * MIB);
}

/* ---- the per-owner index (the owner hash in the entry) ---- */

static apr_status_t save_owned(fixture_t *f, int i, const char *owner, apr_time_t deadline)
{
    ss_key_t key;
    ss_record_t r = {T0, T0, owner, "k=v", 3, 0};

    key_of(i, &key);
    return f->store->ops->save(f->store, &key, &r, deadline, SS_SAVE_NEW, UNIT_NO_LIMIT, f->p);
}

static int count_cb(void *baton, const ss_store_entry_t *e)
{
    (void)e;
    ++*(int *)baton;
    return 0;
}

/* revoke_owner removes exactly the owner's entries but the one kept, and
 * leaves the arena whole; purge_expired reclaims the dead ones. */
static void test_revoke_owner_and_purge(void **state)
{
    fixture_t *f = *state;
    ss_owner_t alice, bob;
    ss_key_t keep;
    apr_size_t n = 0;
    int i, seen = 0;

    unit_arena_open(f, 256 * 1024, 4096);
    assert_int_equal(ss_owner_hash("alice", &alice), APR_SUCCESS);
    assert_int_equal(ss_owner_hash("bob", &bob), APR_SUCCESS);
    for (i = 0; i < 10; i++) {
        assert_int_equal(save_owned(f, i, i % 2 ? "bob" : "alice", 0), APR_SUCCESS);
    }
    assert_int_equal(save_owned(f, 10, "", 0), APR_SUCCESS);
    key_of(4, &keep);
    assert_int_equal(f->store->ops->revoke_owner(f->store, &alice, &keep, T0, &n), APR_SUCCESS);
    assert_int_equal(n, 4); /* 0, 2, 6, 8 */
    for (i = 0; i < 11; i++) {
        ss_record_t out;

        assert_int_equal(load_i(f, i, T0, &out),
                         i % 2 == 0 && i != 4 && i != 10 ? APR_NOTFOUND : APR_SUCCESS);
    }
    assert_int_equal(f->store->ops->scan(f->store, &bob, 0, count_cb, &seen, T0, f->p),
                     APR_SUCCESS);
    assert_int_equal(seen, 5);
    assert_int_equal(ss_shm_check(f->base, f->size, 4096, NULL), APR_SUCCESS);

    /* Three records dead at T0 + 10 s, reclaimed by a purge at T0 + 20 s. */
    for (i = 20; i < 23; i++) {
        assert_int_equal(save_owned(f, i, "carol", T0 + apr_time_from_sec(10)), APR_SUCCESS);
    }
    assert_int_equal(f->store->ops->purge_expired(f->store, T0, &n), APR_SUCCESS);
    assert_int_equal(n, 0);
    seen = 0;
    assert_int_equal(f->store->ops->scan(f->store, NULL, 0, count_cb, &seen, T0, f->p),
                     APR_SUCCESS);
    assert_int_equal(seen, 10);
    assert_int_equal(f->store->ops->purge_expired(f->store, T0 + apr_time_from_sec(20), &n),
                     APR_SUCCESS);
    assert_int_equal(n, 3);
    assert_int_equal(unit_stats(f->store).entries, 7);
    assert_int_equal(ss_shm_check(f->base, f->size, 4096, NULL), APR_SUCCESS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(test_format_rejects_small_arena),
        UNIT_TEST(test_revoke_owner_and_purge),
        UNIT_TEST(test_format_rejects_tiny_max_record),
        UNIT_TEST(test_format_rejects_max_record_over_quarter),
        UNIT_TEST(test_format_rejects_record_beyond_slot_size),
        UNIT_TEST(test_is_formatted),
        UNIT_TEST(test_format_writes_no_slot),
        UNIT_TEST(test_reformat_empties),
        UNIT_TEST(test_footprint),
        UNIT_TEST(test_capacity_fill),
        UNIT_TEST(test_evict_clock_second_chance),
        UNIT_TEST(test_evict_large_record_takes_several),
        UNIT_TEST(test_evict_expired_when_reached),
        UNIT_TEST(test_evict_expired_despite_reference),
        UNIT_TEST(test_evict_expired_at_deadline),
        UNIT_TEST(test_update_in_place),
        UNIT_TEST(test_no_eviction_while_room),
        UNIT_TEST(test_load_dead_record),
        UNIT_TEST(test_arena_oversize_refused),
        UNIT_TEST(test_overwrite_no_leak),
        UNIT_TEST(test_hammer_processes),
        UNIT_TEST(test_hammer_processes_evicting),
        UNIT_TEST(test_hammer_threads),
        UNIT_TEST(test_hammer_threads_evicting),
        UNIT_TEST(test_writer_killed_at_every_step),
        UNIT_TEST(test_killed_mid_overwrite_in_place),
        UNIT_TEST(test_hammer_processes_one_killed),
        UNIT_TEST(test_damage_bucket_out_of_range),
        UNIT_TEST(test_damage_bucket_mid_slot),
        UNIT_TEST(test_damage_meta_units_huge),
        UNIT_TEST(test_damage_meta_units_huge_on_overwrite),
        UNIT_TEST(test_damage_meta_units_zero),
        UNIT_TEST(test_damage_meta_units_too_few_for_record),
        UNIT_TEST(test_damage_meta_not_live),
        UNIT_TEST(test_damage_meta_units_short_by_repair),
        UNIT_TEST(test_damage_meta_units_long_by_repair),
        UNIT_TEST(test_damage_meta_units_short_by_hand),
        UNIT_TEST(test_damage_meta_units_long_by_hand),
        UNIT_TEST(test_damage_hash_chain_cycle),
        UNIT_TEST(test_damage_hash_next_out_of_range),
        UNIT_TEST(test_damage_head_moved),
        UNIT_TEST(test_damage_free_too_high),
        UNIT_TEST(test_damage_hand_out_of_range),
        UNIT_TEST(test_damage_head_and_free_consistent_but_wrong),
        UNIT_TEST(test_damage_counts_too_low),
        UNIT_TEST(test_damage_entries_zero),
        UNIT_TEST(test_kept_arena_of_another_layout),
        UNIT_TEST(test_walk_time),
    };

    return UNIT_RUN(tests);
}
