/* unit.h - what the cmocka unit tests share: running a group under APR, the
 * pool fixture, recorded data, log capture, and a shared-memory arena.
 *
 * Header-only (the tests are built from one source file each): every function
 * is static inline, so that a test that does not use one compiles it out
 * without an unused-function warning. */
#ifndef UNIT_H
#define UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "ss_log.h"
#include "ss_session.h"
#include "ss_shm.h"
#include "ss_store.h"

/* ---- running ----------------------------------------------------------- */

/* A test with the setup and teardown of its own file. */
#define UNIT_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* A test whose state is a fresh APR pool (unit_pool_setup). */
#define UNIT_POOL_TEST(fn) cmocka_unit_test_setup_teardown(fn, unit_pool_setup, unit_pool_teardown)

/* The body of main(): the group, named as cmocka_run_group_tests names it,
 * between apr_initialize and apr_terminate. */
#define UNIT_RUN(tests) UNIT_RUN_NAMED(#tests, tests)
#define UNIT_RUN_NAMED(name, tests) unit_run(name, tests, UNIT_COUNT(tests), NULL, NULL)

/* The number of elements of an array. */
#define UNIT_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Runs the n tests as one group under APR; the number that failed, or 1 when
 * APR does not start. */
static inline int unit_run(const char *name, const struct CMUnitTest *tests, size_t n,
                           CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    int failed;

    if (apr_initialize() != APR_SUCCESS) {
        return 1;
    }
    failed = _cmocka_run_group_tests(name, tests, n, group_setup, group_teardown);
    apr_terminate();
    return failed;
}

/* ---- the pool fixture -------------------------------------------------- */

static inline int unit_pool_setup(void **state)
{
    apr_pool_t *p;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static inline int unit_pool_teardown(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

/* ---- recorded data ----------------------------------------------------- */

#ifdef DATA_DIR
/* The whole of tests/unit/data/name (DATA_DIR: Makefile.am gives it to the
 * tests that read recorded replies), NUL-terminated, from p; its length in
 * *len unless len is NULL. Fails the test when the file cannot be read. */
static inline char *unit_read_data(const char *name, apr_size_t *len, apr_pool_t *p)
{
    const char *path = apr_pstrcat(p, DATA_DIR, "/", name, NULL);
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n = 0;
    char *buf;

    if (apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_FPROT_OS_DEFAULT, p) !=
            APR_SUCCESS ||
        apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS) {
        fail_msg("cannot open %s", path);
    }
    buf = apr_palloc(p, (apr_size_t)fi.size + 1);
    if (fi.size > 0 && apr_file_read_full(f, buf, (apr_size_t)fi.size, &n) != APR_SUCCESS) {
        fail_msg("cannot read %s", path);
    }
    apr_file_close(f);
    buf[n] = '\0';
    if (len) {
        *len = n;
    }
    return buf;
}
#endif

/* ---- log capture ------------------------------------------------------- */

/* The last message logged, and how many there were. */
typedef struct {
    int count;
    int level;
    apr_status_t rv;
    char msg[2048];
} unit_log_t;

/* An ss_log_set callback; baton is a unit_log_t. */
static inline void unit_capture_log(void *baton, int level, apr_status_t rv, const char *msg)
{
    unit_log_t *cap = baton;

    cap->count++;
    cap->level = level;
    cap->rv = rv;
    apr_cpystrn(cap->msg, msg, sizeof(cap->msg));
}

/* Every message logged, for tests whose store logs from several threads:
 * counts by level, the last message and (as far as it fits) all of them.
 * Set mutex before installing unit_tlog_capture with the log as baton. */
typedef struct {
    apr_thread_mutex_t *mutex;
    int count[8];
    char last[1024];
    char all[8192];
} unit_tlog_t;

static inline void unit_tlog_capture(void *baton, int level, apr_status_t rv, const char *msg)
{
    unit_tlog_t *l = baton;

    apr_thread_mutex_lock(l->mutex);
    if (level >= 0 && level < 8) {
        l->count[level]++;
    }
    apr_cpystrn(l->last, msg, sizeof(l->last));
    if (strlen(l->all) + strlen(msg) + 2 < sizeof(l->all)) {
        strcat(l->all, msg);
        strcat(l->all, "\n");
    }
    apr_thread_mutex_unlock(l->mutex);
    if (getenv("TEST_REDIS_VERBOSE")) {
        fprintf(stderr, "log[%d] (%d) %s\n", level, rv, msg);
    }
}

/* Forget what was logged (between tests). */
static inline void unit_tlog_reset(unit_tlog_t *l)
{
    memset(l->count, 0, sizeof(l->count));
    l->last[0] = l->all[0] = '\0';
}

/* Messages logged at level. */
static inline int unit_tlog_count(unit_tlog_t *l, int level)
{
    int n;

    apr_thread_mutex_lock(l->mutex);
    n = l->count[level];
    apr_thread_mutex_unlock(l->mutex);
    return n;
}

/* Whether any message logged contains s. */
static inline int unit_tlog_has(unit_tlog_t *l, const char *s)
{
    int yes;

    apr_thread_mutex_lock(l->mutex);
    yes = strstr(l->all, s) != NULL;
    apr_thread_mutex_unlock(l->mutex);
    return yes;
}

/* ---- stores ------------------------------------------------------------ */

/* The store's counters; a field it does not fill reads 0xee bytes. */
static inline ss_store_stats_t unit_stats(ss_store_t *store)
{
    ss_store_stats_t st;

    memset(&st, 0xee, sizeof(st));
    assert_int_equal(store->ops->stats(store, &st), APR_SUCCESS);
    return st;
}

/* No record size limit, for tests about something else. */
#define UNIT_NO_LIMIT ((apr_size_t)-1)

/* By-ID operations straight on ctx->store, for the tests of a backend: the
 * key of a well-formed ID, ctx->expiry as both the judging and the keeping
 * timeouts, ctx->max_size as the limit; an update with unit_update. */
static inline apr_status_t unit_id_key(const char *id, ss_key_t *key)
{
    if (!ss_id_is_valid(id, strlen(id))) {
        return APR_EINVAL;
    }
    return ss_id_key(id, key);
}

/* An update over whatever revision the store holds now (SS_SAVE_UPDATE is a
 * compare-and-set on it): the revision is loaded first, with timeouts that
 * judge nothing dead, and rec is written as the next one. Tests about
 * something else than the compare-and-set use it; a writer that slips in
 * between makes it SS_ECONFLICT. */
static inline apr_status_t unit_update(ss_store_t *store, const ss_key_t *key,
                                       const ss_record_t *rec, apr_time_t deadline,
                                       apr_size_t limit, apr_pool_t *p)
{
    static const ss_expiry_t forever = {0, 0};
    ss_record_t now, next = *rec;

    next.revision = 1;
    if (store->ops->load(store, key, &forever, &forever, rec->accessed, p, &now) == APR_SUCCESS) {
        next.revision = now.revision + 1;
    }
    return store->ops->save(store, key, &next, deadline, SS_SAVE_UPDATE, limit, p);
}

static inline apr_status_t unit_id_write(const ss_session_ctx_t *ctx, const char *id,
                                         const ss_record_t *rec, int is_new, apr_pool_t *p)
{
    ss_key_t key;
    apr_time_t deadline = ss_expiry_deadline(&ctx->expiry, rec->created, rec->accessed);
    apr_status_t rv = unit_id_key(id, &key);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!is_new) {
        return unit_update(ctx->store, &key, rec, deadline, ctx->max_size, p);
    }
    return ctx->store->ops->save(ctx->store, &key, rec, deadline, SS_SAVE_NEW, ctx->max_size, p);
}

static inline apr_status_t unit_id_load(const ss_session_ctx_t *ctx, const char *id, apr_time_t now,
                                        apr_pool_t *p, ss_record_t *rec)
{
    ss_key_t key;

    if (unit_id_key(id, &key) != APR_SUCCESS) {
        return APR_NOTFOUND;
    }
    return ctx->store->ops->load(ctx->store, &key, &ctx->expiry, &ctx->expiry, now, p, rec);
}

static inline apr_status_t unit_id_remove(const ss_session_ctx_t *ctx, const char *id)
{
    ss_key_t key;

    if (unit_id_key(id, &key) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    return ctx->store->ops->remove(ctx->store, &key);
}

/* ---- the shared-memory arena fixture ----------------------------------- */

/* A pool, the log captured into log, and (after unit_arena_open) an arena at base, of
 * size bytes, opened as store. */
typedef struct {
    apr_pool_t *p;
    void *base;
    apr_size_t size;
    ss_store_t *store;
    unit_log_t log;
} unit_arena_t;

/* A zeroed fixture of fixture_size bytes, allocated from its own pool, that
 * begins with a unit_arena_t (set up as above, with no arena yet). NULL when
 * something fails. */
static inline void *unit_arena_create(apr_size_t fixture_size)
{
    apr_pool_t *p;
    unit_arena_t *a;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return NULL;
    }
    a = apr_pcalloc(p, fixture_size);
    a->p = p;
    ss_log_set(unit_capture_log, &a->log);
    return a;
}

/* A fresh anonymous shared arena, formatted and opened as a->store. */
static inline void unit_arena_open(unit_arena_t *a, apr_size_t size, apr_size_t max_record)
{
    apr_shm_t *shm;

    assert_int_equal(apr_shm_create(&shm, size, NULL, a->p), APR_SUCCESS);
    a->base = apr_shm_baseaddr_get(shm);
    a->size = size;
    assert_int_equal(ss_shm_format(a->base, size, max_record), APR_SUCCESS);
    assert_true(ss_shm_is_formatted(a->base, size, max_record));
    assert_int_equal(ss_shm_open(&a->store, a->base, a->p), APR_SUCCESS);
}

/* Undoes unit_arena_create (and unit_arena_open), the pool last. */
static inline void unit_arena_destroy(unit_arena_t *a)
{
    ss_log_set(NULL, NULL);
    if (a->store) {
        a->store->ops->close(a->store);
    }
    apr_pool_destroy(a->p);
}

#endif /* UNIT_H */
