/* microbench.c - micro-benchmarks of lib/ without httpd (bench/run runs it).
 *
 *   microbench [-q] [-c] [-r REDIS_URI]
 *
 * shm: load and save operations per second on one arena, with 1, 2, 8 and 64
 *      threads in one process, and with several processes (2 x 1, 8 x 1,
 *      64 x 1: prefork's shape, and 2 x 32 threads: event's). The arena is
 *      set up as the module does (anonymous apr_shm; its locks inside).
 *      Every operation uses its own key out of 256 per worker, a 200-byte
 *      payload, apr_time_now() as the clock and a pool cleared per operation,
 *      like a request. Configurations are interleaved and repeated; the median
 *      is printed.
 * capacity: a 16 MiB arena (the SessionStoreShmSize default) filled with
 *      200-byte sessions until the first eviction: bytes per session; then
 *      to twice that, every stripe full: bytes per session under eviction.
 *      Twice: sealed records (the default) and records in clear.
 * million: a 300 MiB arena (see bench_million). With -c, only these.
 * seal: CPU microseconds per request that sealing adds (a load's decode, a
 *      save's encode and the seal key's derivation) for a 200-byte session:
 *      ss_record_encode and ss_record_decode sealed and in clear, and
 *      ss_seal_key alone, interleaved and repeated, the median printed.
 * redis: with -r URI, load and save per second through the library's Redis
 *      backend on one connection (bench/run sets it up next to
 *      redis-benchmark -c 1). With -n N as well, only this: after the
 *      prefill, exactly N loads (for redis-server's instructions per load
 *      under callgrind; SESSSTORE_REDIS_LOAD=script makes them the script's).
 *
 * Output: one JSON object per line, for bench/bench.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "ss_id.h"
#include "ss_shm.h"
#include "ss_store.h"

#include "ss_redis.h"

/* Saves as the module makes them: a fresh key is NEW, a known one UPDATE,
 * under the default SessionStoreMaxSessionSize. */
#define MAX_SESSION_SIZE (16 * 1024)
#define STORE_SAVE_NEW(s, k, r, d, p)                                                              \
    (s)->ops->save((s), (k), (r), (d), SS_SAVE_NEW, MAX_SESSION_SIZE, (p))
#define STORE_SAVE(s, k, r, d, p)                                                                  \
    (s)->ops->save((s), (k), (r), (d), SS_SAVE_UPDATE, MAX_SESSION_SIZE, (p))

#define KEYS_PER_WORKER 256
#define PAYLOAD_LEN 200
#define ARENA_SIZE (64 * 1024 * 1024)
#define CAPACITY_ARENA_SIZE (16 * 1024 * 1024)
#define MILLION_ARENA_MIB 300
#define MAX_RECORD (16 * 1024)
#define MAX_WORKERS 64
#define MAX_REPS 9

typedef enum { OP_LOAD, OP_SAVE } op_e;

/* Shared between processes: start/stop flags and per-worker counts. */
typedef struct {
    volatile int go;
    volatile int stop;
    volatile apr_uint64_t ops[MAX_WORKERS];
    volatile apr_uint64_t failures[MAX_WORKERS];
} control_t;

typedef struct {
    ss_store_t *store;
    control_t *ctl;
    int worker;
    op_e op;
} worker_arg_t;

static char payload[PAYLOAD_LEN + 1];
static const ss_expiry_t expiry = {APR_USEC_PER_SEC * 1800, APR_USEC_PER_SEC * 28800};
static apr_time_t created;

static void die(const char *what, apr_status_t rv)
{
    char buf[256];

    fprintf(stderr, "microbench: %s: %s\n", what, apr_strerror(rv, buf, sizeof(buf)));
    exit(1);
}

/* Key number k of worker w: SHA-256 of a fixed, distinct ID-like string. */
static void worker_key(int w, int k, ss_key_t *key)
{
    char id[64];

    snprintf(id, sizeof(id), "bench-%04d-%06d-xxxxxxxxxxxxxxxxxxxxxxxxxx", w, k);
    ss_id_key(id, key);
}

static void make_record(ss_record_t *rec, apr_time_t now)
{
    rec->created = created;
    rec->accessed = now;
    rec->user = "";
    rec->payload = payload;
    rec->payload_len = PAYLOAD_LEN;
    rec->revision = 0;
}

/* Save key k of worker w as a new session accessed at now, alive until
 * deadline, in a pool of its own. */
static void save_fresh(ss_store_t *store, int w, int k, apr_time_t now, apr_time_t deadline,
                       apr_pool_t *pool)
{
    apr_pool_t *p;
    ss_key_t key;
    ss_record_t rec;
    apr_status_t rv;

    apr_pool_create(&p, pool);
    worker_key(w, k, &key);
    make_record(&rec, now);
    rec.created = now;
    rv = STORE_SAVE_NEW(store, &key, &rec, deadline, p);
    apr_pool_destroy(p);
    if (rv != APR_SUCCESS) {
        die("save", rv);
    }
}

static void prefill(ss_store_t *store, int workers, apr_pool_t *p)
{
    int w, k;

    for (w = 0; w < workers; w++) {
        for (k = 0; k < KEYS_PER_WORKER; k++) {
            ss_key_t key;
            ss_record_t rec;
            apr_time_t now = apr_time_now();
            apr_status_t rv;

            worker_key(w, k, &key);
            make_record(&rec, now);
            rv = STORE_SAVE_NEW(store, &key, &rec, ss_expiry_deadline(&expiry, created, now), p);
            if (rv != APR_SUCCESS && rv != APR_EEXIST) {
                die("prefill save", rv);
            }
        }
    }
}

/* The revision each key holds now: the next update of key k writes
 * revs[k] + 1 (SS_SAVE_UPDATE is a compare-and-set on it). */
static void stored_revisions(ss_store_t *store, const ss_key_t *keys, apr_uint32_t *revs,
                             apr_pool_t *p)
{
    int k;

    for (k = 0; k < KEYS_PER_WORKER; k++) {
        ss_record_t rec;

        revs[k] = 0;
        if (store->ops->load(store, &keys[k], &expiry, &expiry, apr_time_now(), p, &rec) ==
            APR_SUCCESS) {
            revs[k] = rec.revision;
        }
    }
    apr_pool_clear(p);
}

static void *APR_THREAD_FUNC worker_main(apr_thread_t *thread, void *data)
{
    worker_arg_t *a = data;
    ss_key_t keys[KEYS_PER_WORKER];
    apr_uint32_t revs[KEYS_PER_WORKER]; /* an update is a compare-and-set on it */
    apr_pool_t *p;
    apr_uint64_t n = 0, failed = 0;
    int k;

    (void)thread;
    apr_pool_create(&p, NULL);
    for (k = 0; k < KEYS_PER_WORKER; k++) {
        worker_key(a->worker, k, &keys[k]);
    }
    stored_revisions(a->store, keys, revs, p);
    while (!a->ctl->go) {
        /* spin until every worker is ready */
    }
    for (k = 0; !a->ctl->stop; k = (k + 1) % KEYS_PER_WORKER) {
        apr_time_t now = apr_time_now();
        ss_record_t rec;
        apr_status_t rv;

        if (a->op == OP_LOAD) {
            rv = a->store->ops->load(a->store, &keys[k], &expiry, &expiry, now, p, &rec);
        } else {
            make_record(&rec, now);
            rec.revision = revs[k] + 1;
            rv = STORE_SAVE(a->store, &keys[k], &rec, ss_expiry_deadline(&expiry, created, now), p);
            revs[k] += rv == APR_SUCCESS;
        }
        if (rv != APR_SUCCESS) {
            failed++;
        }
        n++;
        apr_pool_clear(p);
    }
    a->ctl->ops[a->worker] = n;
    a->ctl->failures[a->worker] = failed;
    apr_pool_destroy(p);
    return NULL;
}

/* Run threads workers numbered from first in this process until ctl->stop. */
static void run_threads(ss_store_t *store, control_t *ctl, int first, int threads, op_e op,
                        apr_pool_t *pool)
{
    apr_thread_t *tids[MAX_WORKERS];
    worker_arg_t args[MAX_WORKERS];
    apr_status_t rv;
    int i;

    for (i = 0; i < threads; i++) {
        args[i].store = store;
        args[i].ctl = ctl;
        args[i].worker = first + i;
        args[i].op = op;
        rv = apr_thread_create(&tids[i], NULL, worker_main, &args[i], pool);
        if (rv != APR_SUCCESS) {
            die("apr_thread_create", rv);
        }
    }
    for (i = 0; i < threads; i++) {
        apr_thread_join(&rv, tids[i]);
    }
}

/* One measurement: procs processes of threads threads each. Returns ops/s. */
static double measure(ss_store_t *store, control_t *ctl, int procs, int threads, op_e op,
                      double seconds, apr_pool_t *pool)
{
    apr_uint64_t total = 0, failed = 0;
    apr_time_t t0, t1;
    pid_t pids[MAX_WORKERS];
    int i;

    memset((void *)ctl, 0, sizeof(*ctl));
    if (procs == 1) {
        /* Threads in this process; the main thread keeps time. */
        worker_arg_t args[MAX_WORKERS];
        apr_thread_t *tids[MAX_WORKERS];
        apr_status_t rv;

        for (i = 0; i < threads; i++) {
            args[i].store = store;
            args[i].ctl = ctl;
            args[i].worker = i;
            args[i].op = op;
            rv = apr_thread_create(&tids[i], NULL, worker_main, &args[i], pool);
            if (rv != APR_SUCCESS) {
                die("apr_thread_create", rv);
            }
        }
        apr_sleep(apr_time_from_msec(20));
        t0 = apr_time_now();
        ctl->go = 1;
        apr_sleep((apr_interval_time_t)(seconds * APR_USEC_PER_SEC));
        ctl->stop = 1;
        t1 = apr_time_now();
        for (i = 0; i < threads; i++) {
            apr_thread_join(&rv, tids[i]);
        }
    } else {
        for (i = 0; i < procs; i++) {
            pids[i] = fork();
            if (pids[i] < 0) {
                perror("fork");
                exit(1);
            }
            if (pids[i] == 0) {
                apr_pool_t *cp;

                apr_pool_create(&cp, NULL);
                run_threads(store, ctl, i * threads, threads, op, cp);
                _exit(0);
            }
        }
        apr_sleep(apr_time_from_msec(50));
        t0 = apr_time_now();
        ctl->go = 1;
        apr_sleep((apr_interval_time_t)(seconds * APR_USEC_PER_SEC));
        ctl->stop = 1;
        t1 = apr_time_now();
        for (i = 0; i < procs; i++) {
            waitpid(pids[i], NULL, 0);
        }
    }
    for (i = 0; i < procs * threads; i++) {
        total += ctl->ops[i];
        failed += ctl->failures[i];
    }
    if (failed) {
        fprintf(stderr, "microbench: %llu of %llu operations failed\n", (unsigned long long)failed,
                (unsigned long long)total);
    }
    return (double)total / ((double)(t1 - t0) / APR_USEC_PER_SEC);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* -1 everywhere: the full matrix; else one configuration (for profiling). */
static struct {
    int procs, threads, op;
    double seconds;
} only = {-1, -1, -1, -1};

static void bench_shm(int quick, apr_pool_t *pool)
{
    static const struct {
        int procs, threads;
    } shapes[] = {{1, 1}, {1, 2}, {1, 8}, {1, 64}, {2, 1}, {8, 1}, {64, 1}, {2, 32}};
    const int nshapes = sizeof(shapes) / sizeof(shapes[0]);
    const int reps = quick ? 3 : 5;
    const double seconds = quick ? 0.2 : 0.5;
    double results[2][sizeof(shapes) / sizeof(shapes[0])][MAX_REPS];
    apr_shm_t *shm;
    ss_store_t *store;
    control_t *ctl;
    apr_status_t rv;
    int r, s, o;

    rv = apr_shm_create(&shm, ARENA_SIZE, NULL, pool);
    if (rv != APR_SUCCESS) {
        die("apr_shm_create", rv);
    }
    rv = ss_shm_format(apr_shm_baseaddr_get(shm), ARENA_SIZE, MAX_RECORD);
    if (rv == APR_SUCCESS) {
        rv = ss_shm_open(&store, apr_shm_baseaddr_get(shm), pool);
    }
    if (rv != APR_SUCCESS) {
        die("ss_shm_format/open", rv);
    }
    ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ctl == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    prefill(store, MAX_WORKERS, pool);

    if (only.procs > 0) {
        double ops =
            measure(store, ctl, only.procs, only.threads, (op_e)only.op, only.seconds, pool);

        printf("{\"bench\":\"shm\",\"stripes\":%u,\"op\":\"%s\",\"procs\":%d,"
               "\"threads\":%d,\"ops_per_s\":%.0f,\"reps\":1}\n",
               ss_shm_stripes(apr_shm_baseaddr_get(shm)), only.op == OP_LOAD ? "load" : "save",
               only.procs, only.threads, ops);
        return;
    }
    /* Interleave: every repetition runs every configuration once. */
    for (r = 0; r < reps; r++) {
        for (s = 0; s < nshapes; s++) {
            for (o = 0; o < 2; o++) {
                int si = (r % 2) ? nshapes - 1 - s : s; /* alternate the order */

                results[o][si][r] = measure(store, ctl, shapes[si].procs, shapes[si].threads,
                                            (op_e)o, seconds, pool);
            }
        }
    }
    for (s = 0; s < nshapes; s++) {
        for (o = 0; o < 2; o++) {
            qsort(results[o][s], (size_t)reps, sizeof(double), cmp_double);
            printf("{\"bench\":\"shm\",\"stripes\":%u,\"op\":\"%s\",\"procs\":%d,"
                   "\"threads\":%d,\"ops_per_s\":%.0f,\"min\":%.0f,\"max\":%.0f,\"reps\":%d}\n",
                   ss_shm_stripes(apr_shm_baseaddr_get(shm)), o == OP_LOAD ? "load" : "save",
                   shapes[s].procs, shapes[s].threads, results[o][s][reps / 2], results[o][s][0],
                   results[o][s][reps - 1], reps);
        }
    }
    fflush(stdout);
}

/* The capacity with records in form (the default: sealed). */
static void bench_capacity(ss_record_form_e form, apr_pool_t *pool)
{
    char *arena = apr_palloc(pool, CAPACITY_ARENA_SIZE);
    ss_store_stats_t stats;
    ss_store_t *store;
    apr_uint64_t entries = 0, used = 0, capacity = 0;
    apr_size_t reclen = 0;
    apr_status_t rv;
    int k;

    rv = ss_shm_format(arena, CAPACITY_ARENA_SIZE, MAX_RECORD);
    if (rv == APR_SUCCESS) {
        rv = ss_shm_open(&store, arena, pool);
    }
    if (rv != APR_SUCCESS) {
        die("ss_shm_format/open", rv);
    }
    store->form = form;
    {
        ss_record_t rec;

        make_record(&rec, apr_time_now());
        reclen = ss_record_size(&rec, store->form);
    }
    for (k = 0;; k++) {
        apr_time_t now = apr_time_now();

        save_fresh(store, MAX_WORKERS + 1, k, now, ss_expiry_deadline(&expiry, now, now), pool);
        store->ops->stats(store, &stats);
        if (stats.evicted_lru || stats.evicted_expired) {
            break;
        }
        entries = stats.entries;
        used = stats.used_bytes;
        capacity = stats.capacity_bytes;
    }
    /* Go on to twice as many: every stripe is full, the arena at its steady
     * state under eviction. */
    for (k = 0; k < (int)entries * 2; k++) {
        apr_time_t now = apr_time_now();

        save_fresh(store, MAX_WORKERS + 2, k, now, ss_expiry_deadline(&expiry, now, now), pool);
    }
    store->ops->stats(store, &stats);
    printf(
        "{\"bench\":\"capacity\",\"form\":\"%s\",\"arena_bytes\":%d,\"record_capacity_bytes\":%llu,"
        "\"payload\":%d,\"record\":%d,\"sessions\":%llu,\"used_bytes\":%llu,"
        "\"arena_bytes_per_session\":%.1f,\"record_bytes_per_session\":%.1f,"
        "\"footprint\":%lu,\"stripes\":%u,\"sessions_full\":%llu,"
        "\"arena_bytes_per_session_full\":%.1f}\n",
        form == SS_RECORD_FORM_SEALED ? "sealed" : "clear", CAPACITY_ARENA_SIZE,
        (unsigned long long)capacity, PAYLOAD_LEN, (int)reclen, (unsigned long long)entries,
        (unsigned long long)used, (double)CAPACITY_ARENA_SIZE / (double)entries,
        (double)used / (double)entries, (unsigned long)ss_shm_footprint(reclen, 0),
        ss_shm_stripes(arena), (unsigned long long)stats.entries,
        (double)CAPACITY_ARENA_SIZE / (double)stats.entries);
    fflush(stdout);
}

/* SessionStoreShmSize 300M, sessions of 200 bytes: the time to format the
 * arena (start-up) and to check it (what a restart does with the arena it
 * keeps); how many sessions it takes before the first eviction, hence the
 * MiB that 1 M sessions need; and the reclaiming of dead sessions. Every
 * session dies a minute after it was saved; two minutes later (the clock is
 * the sessions', not the machine's) new sessions fill the stripes again,
 * and a stripe with no room left reclaims dead ones as its clock hand
 * passes them, under its own lock: the slowest such save is the longest a
 * request waits for that. Then a full sweep of the dead ones
 * (purge_expired, what `sessstore purge-expired` does), one stripe at a
 * time under its lock: its total time and the mean per stripe. */
static void bench_million(apr_pool_t *pool)
{
    const apr_size_t size = (apr_size_t)MILLION_ARENA_MIB * 1024 * 1024;
    const apr_time_t t0 = apr_time_now(), t1 = t0 + apr_time_from_sec(180);
    apr_time_t start, format_us, check_us, slowest = 0, swept_us = 0, purge_us;
    apr_size_t purged = 0;
    apr_uint64_t first_eviction = 0, dead, slow_saves = 0;
    ss_store_stats_t stats;
    ss_store_t *store;
    apr_shm_t *shm;
    apr_status_t rv;
    char *base;
    int k;

    rv = apr_shm_create(&shm, size, NULL, pool);
    if (rv != APR_SUCCESS) {
        die("apr_shm_create (300 MiB)", rv);
    }
    base = apr_shm_baseaddr_get(shm);
    start = apr_time_now();
    rv = ss_shm_format(base, size, MAX_RECORD);
    format_us = apr_time_now() - start;
    if (rv == APR_SUCCESS) {
        rv = ss_shm_open(&store, base, pool);
    }
    if (rv != APR_SUCCESS) {
        die("ss_shm_format/open (300 MiB)", rv);
    }
    /* Until the first eviction, checked every thousand saves: the sessions
     * held then (to a few hundred). */
    for (k = 0; !first_eviction; k++) {
        save_fresh(store, MAX_WORKERS + 3, k, t0, t0 + apr_time_from_sec(60), pool);
        if (k % 1000 == 999) {
            store->ops->stats(store, &stats);
            if (stats.evicted_lru) {
                first_eviction = stats.entries;
            }
        }
    }
    start = apr_time_now();
    rv = ss_shm_check(base, size, MAX_RECORD, NULL);
    check_us = apr_time_now() - start;
    if (rv != APR_SUCCESS) {
        die("ss_shm_check (300 MiB)", rv);
    }
    store->ops->stats(store, &stats);
    dead = stats.entries;
    /* Every one of them dead now: new saves make the stripes sweep. */
    for (k = 0; stats.evicted_expired < dead && k < (int)dead; k++) {
        apr_time_t took = apr_time_now();

        save_fresh(store, MAX_WORKERS + 4, k, t1, t1 + apr_time_from_sec(60), pool);
        took = apr_time_now() - took;
        if (took > slowest) {
            slowest = took;
        }
        if (took > 20) { /* a save alone takes about a microsecond */
            swept_us += took;
            slow_saves++;
        }
        if (k % 1000 == 999) {
            store->ops->stats(store, &stats);
        }
    }
    {
        apr_time_t t2 = t1 + apr_time_from_sec(180);

        start = apr_time_now();
        rv = store->ops->purge_expired(store, t2, &purged);
        purge_us = apr_time_now() - start;
        if (rv != APR_SUCCESS) {
            die("purge_expired (300 MiB)", rv);
        }
    }
    store->ops->stats(store, &stats);
    printf("{\"bench\":\"million\",\"arena_mib\":%d,\"stripes\":%u,\"payload\":%d,"
           "\"format_ms\":%.1f,\"check_ms\":%.1f,\"sessions_before_eviction\":%llu,"
           "\"mib_per_million\":%.1f,\"swept\":%llu,\"sweeping_saves\":%llu,"
           "\"sweep_total_ms\":%.1f,\"sweep_max_ms\":%.2f,\"purged\":%lu,\"purge_ms\":%.1f,"
           "\"purge_stripe_ms\":%.3f}\n",
           MILLION_ARENA_MIB, ss_shm_stripes(base), PAYLOAD_LEN, format_us / 1000.0,
           check_us / 1000.0, (unsigned long long)first_eviction,
           (double)MILLION_ARENA_MIB * 1e6 / (double)first_eviction,
           (unsigned long long)stats.evicted_expired, (unsigned long long)slow_saves,
           swept_us / 1000.0, slowest / 1000.0, (unsigned long)purged, purge_us / 1000.0,
           purge_us / 1000.0 / ss_shm_stripes(base));
    fflush(stdout);
    apr_shm_destroy(shm);
}

/* -r URI -n N: the prefill, then N loads, nothing else. */
static void bench_redis_count(const char *uri, long count, apr_pool_t *pool)
{
    ss_redis_config_t *cfg;
    ss_store_t *store;
    ss_key_t keys[KEYS_PER_WORKER];
    const char *err = ss_redis_parse(&cfg, uri, pool);
    apr_pool_t *p;
    apr_status_t rv;
    long i, failed = 0;

    if (err) {
        fprintf(stderr, "microbench: %s\n", err);
        exit(1);
    }
    rv = ss_redis_open(&store, cfg, pool);
    if (rv != APR_SUCCESS) {
        die("ss_redis_open", rv);
    }
    prefill(store, 1, pool);
    for (i = 0; i < KEYS_PER_WORKER; i++) {
        worker_key(0, (int)i, &keys[i]);
    }
    apr_pool_create(&p, pool);
    for (i = 0; i < count; i++) {
        ss_record_t rec;

        rv = store->ops->load(store, &keys[i % KEYS_PER_WORKER], &expiry, &expiry, apr_time_now(),
                              p, &rec);
        failed += rv != APR_SUCCESS;
        apr_pool_clear(p);
    }
    printf("{\"bench\":\"redis-count\",\"loads\":%ld,\"failures\":%ld}\n", count, failed);
    apr_pool_destroy(p);
    store->ops->close(store);
    fflush(stdout);
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* CPU µs of one round of n: decode + encode of a record in form (a load and
 * a save), or (form < 0) the seal key of an ID alone. */
static double seal_round(int form, const ss_key_t *key, const char *id, int n, apr_pool_t *p)
{
    ss_record_t rec, out;
    char *buf;
    apr_size_t len;
    double t0;
    int i;

    make_record(&rec, apr_time_now());
    rec.user = "alice";
    if (form >= 0 && ss_record_encode(&rec, key, (ss_record_form_e)form, p, &buf, &len)) {
        die("ss_record_encode", APR_EGENERAL);
    }
    t0 = cpu_now();
    for (i = 0; i < n; i++) {
        if (form < 0) {
            unsigned char seal[SS_SEAL_KEY_BYTES];

            if (ss_seal_key(id, SS_ID_LEN, seal) != APR_SUCCESS) {
                die("ss_seal_key", APR_EGENERAL);
            }
            continue;
        }
        if (ss_record_decode(buf, len, key, p, &out) != APR_SUCCESS ||
            ss_record_encode(&out, key, (ss_record_form_e)form, p, &buf, &len) != APR_SUCCESS) {
            die("seal round", APR_EGENERAL);
        }
        if (i % 64 == 63) {
            /* buf lives in p: keep the last one */
            char *keep = malloc(len);

            memcpy(keep, buf, len);
            apr_pool_clear(p);
            buf = apr_pmemdup(p, keep, len);
            free(keep);
        }
    }
    return (cpu_now() - t0) / n;
}

static void bench_seal(int quick, apr_pool_t *pool)
{
    const int reps = quick ? 5 : 11, n = quick ? 20000 : 50000;
    double clear[11], sealed[11], hkdf[11];
    char id[SS_ID_LEN + 1];
    ss_key_t key;
    apr_pool_t *p;
    int r;

    apr_pool_create(&p, pool);
    if (ss_id_generate(id) != APR_SUCCESS || ss_id_key(id, &key) != APR_SUCCESS) {
        die("ss_id_key", APR_EGENERAL);
    }
    for (r = 0; r < reps; r++) {
        /* Alternate the order: a slow moment hits every kind alike. */
        if (r % 2) {
            sealed[r] = seal_round(SS_RECORD_FORM_SEALED, &key, id, n, p);
            clear[r] = seal_round(SS_RECORD_FORM_CLEAR, &key, id, n, p);
        } else {
            clear[r] = seal_round(SS_RECORD_FORM_CLEAR, &key, id, n, p);
            sealed[r] = seal_round(SS_RECORD_FORM_SEALED, &key, id, n, p);
        }
        hkdf[r] = seal_round(-1, &key, id, n, p);
        apr_pool_clear(p);
    }
    qsort(clear, reps, sizeof(double), cmp_double);
    qsort(sealed, reps, sizeof(double), cmp_double);
    qsort(hkdf, reps, sizeof(double), cmp_double);
    printf("{\"bench\":\"seal\",\"payload\":%d,\"clear_us\":%.3f,\"sealed_us\":%.3f,"
           "\"key_us\":%.3f,\"seal_us_per_req\":%.3f}\n",
           PAYLOAD_LEN, clear[reps / 2], sealed[reps / 2], hkdf[reps / 2],
           sealed[reps / 2] - clear[reps / 2] + hkdf[reps / 2]);
    fflush(stdout);
    apr_pool_destroy(p);
}

static void bench_redis(const char *uri, int quick, apr_pool_t *pool)
{
    ss_redis_config_t *cfg;
    ss_store_t *store;
    const char *err;
    apr_status_t rv;
    const double seconds = quick ? 0.5 : 2.0;
    int o;

    err = ss_redis_parse(&cfg, uri, pool);
    if (err) {
        fprintf(stderr, "microbench: %s\n", err);
        exit(1);
    }
    rv = ss_redis_open(&store, cfg, pool);
    if (rv != APR_SUCCESS) {
        die("ss_redis_open", rv);
    }
    prefill(store, 1, pool);
    for (o = 0; o < 2; o++) {
        ss_key_t keys[KEYS_PER_WORKER];
        apr_uint32_t revs[KEYS_PER_WORKER];
        apr_pool_t *p;
        apr_uint64_t n = 0, failed = 0;
        apr_time_t t0, t1, end;
        int k;

        for (k = 0; k < KEYS_PER_WORKER; k++) {
            worker_key(0, k, &keys[k]);
        }
        apr_pool_create(&p, pool);
        stored_revisions(store, keys, revs, p);
        t0 = apr_time_now();
        end = t0 + (apr_interval_time_t)(seconds * APR_USEC_PER_SEC);
        for (k = 0;; k = (k + 1) % KEYS_PER_WORKER) {
            apr_time_t now = apr_time_now();
            ss_record_t rec;

            if (now >= end) {
                t1 = now;
                break;
            }
            if (o == OP_LOAD) {
                rv = store->ops->load(store, &keys[k], &expiry, &expiry, now, p, &rec);
            } else {
                make_record(&rec, now);
                rec.revision = revs[k] + 1;
                rv =
                    STORE_SAVE(store, &keys[k], &rec, ss_expiry_deadline(&expiry, created, now), p);
                revs[k] += rv == APR_SUCCESS;
            }
            failed += rv != APR_SUCCESS;
            n++;
            apr_pool_clear(p);
        }
        printf("{\"bench\":\"redis\",\"op\":\"%s\",\"connections\":1,\"ops_per_s\":%.0f,"
               "\"failures\":%llu}\n",
               o == OP_LOAD ? "load" : "save", (double)n / ((double)(t1 - t0) / APR_USEC_PER_SEC),
               (unsigned long long)failed);
        apr_pool_destroy(p);
    }
    store->ops->close(store);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    apr_pool_t *pool;
    const char *redis_uri = NULL;
    long count = 0;
    int quick = 0, capacity_only = 0, ch;

    while ((ch = getopt(argc, argv, "cqn:r:s:")) != -1) {
        switch (ch) {
        case 's': {
            char opname[8];

            if (sscanf(optarg, "%dx%d:%7[a-z]:%lf", &only.procs, &only.threads, opname,
                       &only.seconds) != 4 ||
                only.procs < 1 || only.threads < 1 || only.procs * only.threads > MAX_WORKERS ||
                (strcmp(opname, "load") && strcmp(opname, "save"))) {
                fprintf(stderr, "microbench: -s PROCSxTHREADS:load|save:SECONDS\n");
                return 2;
            }
            only.op = strcmp(opname, "load") ? OP_SAVE : OP_LOAD;
            break;
        }
        case 'q':
            quick = 1;
            break;
        case 'c':
            capacity_only = 1;
            break;
        case 'r':
            redis_uri = optarg;
            break;
        case 'n':
            count = atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: microbench [-q] [-c] [-r REDIS_URI [-n LOADS]] "
                            "[-s PROCSxTHREADS:load|save:SECONDS]\n");
            return 2;
        }
    }
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    memset(payload, 'x', PAYLOAD_LEN);
    created = apr_time_now();

    if (redis_uri && count > 0) {
        bench_redis_count(redis_uri, count, pool);
        return 0;
    }
    if (only.procs < 0) {
        bench_capacity(SS_RECORD_FORM_SEALED, pool);
        bench_capacity(SS_RECORD_FORM_CLEAR, pool);
        bench_million(pool);
    }
    if (capacity_only) {
        return 0;
    }
    bench_shm(quick, pool);
    if (only.procs > 0) {
        return 0;
    }
    bench_seal(quick, pool);
    if (redis_uri) {
        bench_redis(redis_uri, quick, pool);
    } else {
        printf("{\"bench\":\"redis\",\"available\":false,\"why\":\"no -r URI\"}\n");
    }
    return 0;
}
