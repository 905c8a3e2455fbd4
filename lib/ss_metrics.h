/* ss_metrics.h - counters shared by every process of one httpd, and their
 * Prometheus text rendering.
 *
 * The counters live in a small segment of their own that the host maps into
 * every process (an anonymous apr_shm created once in the parent and kept
 * across restarts). Every update is one lock-free atomic add on a 64-bit
 * word (__atomic builtins: APR's generic fallback would use a mutex private
 * to each process), so a request never waits for another. Readers take a
 * relaxed snapshot: a page is consistent per counter, not across counters.
 *
 * What the segment holds:
 * - event counters (ss_metric_e): loads and saves by result, sessions ended,
 *   new IDs, revocations, merges of parallel requests, session locks;
 * - one latency histogram per store operation (ss_op_e), fixed buckets;
 * - one slot per process that saw its store fail: when its most recent
 *   store operation failed, 0 once one succeeded ("store down": its Redis
 *   breaker is open or the store answered with an error). A process with no
 *   slot never saw a failure. Slots of processes that are gone are ignored
 *   and reused. */
#ifndef SS_METRICS_H
#define SS_METRICS_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "ss_store.h"

typedef enum {
    SS_M_LOAD_HIT,       /* a live session was found */
    SS_M_LOAD_MISS,      /* well-formed IDs, none live, no record found for any */
    SS_M_LOAD_EXPIRED,   /* well-formed IDs, none live, a record found but expired */
    SS_M_LOAD_ERROR,     /* the store could not answer */
    SS_M_SAVE_WRITTEN,   /* a record written (new or updated) */
    SS_M_SAVE_UNCHANGED, /* nothing changed: no write */
    SS_M_SAVE_OVERSIZE,  /* refused: over SessionStoreMaxSessionSize */
    SS_M_SAVE_GONE,      /* refused: the session ended meanwhile */
    SS_M_SAVE_ERROR,     /* the store failed the save */
    SS_M_DELETES,        /* sessions ended (logout, emptied, owner change) */
    SS_M_ROTATIONS,      /* new session IDs issued */
    SS_M_REVOCATIONS,    /* sessions ended by a revocation */
    /* Parallel requests of one session (ss_session.h, ss_lock.h): */
    SS_M_MERGE_CONFLICTS,  /* compare-and-sets that found another request's write */
    SS_M_MERGE_MERGED,     /* retries with the request's change merged in */
    SS_M_MERGE_OVERWRITES, /* retries writing the whole payload (not mergeable) */
    SS_M_MERGE_GAVE_UP,    /* commits failed after the retries: 503 */
    SS_M_LOCK_TAKEN,       /* session locks taken (SessionStoreLock On) */
    SS_M_LOCK_WAITED,      /* of those, taken after waiting for another holder */
    SS_M_LOCK_TIMEOUTS,    /* waits past SessionStoreLockTimeout: 503 */
    SS_M__COUNT
} ss_metric_e;

typedef enum { SS_OP_LOAD, SS_OP_SAVE, SS_OP_DELETE, SS_OP__COUNT } ss_op_e;

/* Upper bounds of the latency buckets, in microseconds; a last bucket
 * (+Inf) takes the rest. */
#define SS_METRICS_NBUCKETS 12
extern const apr_uint32_t ss_metrics_bounds_us[SS_METRICS_NBUCKETS];

typedef struct ss_metrics_t ss_metrics_t;

/* Bytes of a segment with nslots process slots. */
apr_size_t ss_metrics_size(apr_uint32_t nslots);

/* Lay out zeroed counters over [base, base + size) for nslots slots;
 * APR_EINVAL when size is not ss_metrics_size(nslots). */
apr_status_t ss_metrics_format(void *base, apr_size_t size, apr_uint32_t nslots);

/* True when base holds a segment of this layout and size (one kept from an
 * earlier generation can be used as it is). */
int ss_metrics_is_formatted(const void *base, apr_size_t size);

/* The counters over a formatted segment (no allocation: the handle is the
 * segment). NULL when it is not formatted. */
ss_metrics_t *ss_metrics_attach(void *base, apr_size_t size);

/* Add one, or n, to a counter (m may be NULL: no counters, nothing done). */
void ss_metrics_bump(ss_metrics_t *m, ss_metric_e which);
void ss_metrics_add(ss_metrics_t *m, ss_metric_e which, apr_uint64_t n);

/* The counter's key for status pages, e.g. "loads_hit", "saves_refused_gone". */
const char *ss_metrics_key(ss_metric_e which);

/* Record one store operation that took elapsed (clamped at 0). */
void ss_metrics_observe(ss_metrics_t *m, ss_op_e op, apr_interval_time_t elapsed);

/* A process counts as having its store down while its latest store
 * operation failed, for this long after that failure: an idle process is
 * not reported down forever after the store is back. */
#define SS_METRICS_DOWN_WINDOW_SEC 10

/* Note whether process pid's store operation at now failed. A process
 * claims a slot the first time it reports a failure (*slot, kept by the
 * caller, starts at -1); alive(baton, pid) says whether a slot's process
 * still runs, so that a dead one's slot can be taken over. APR_ENOSPC when
 * every slot belongs to a live process (the state is then not shown). At
 * most one write to the segment per second and process. */
typedef int ss_metrics_alive_fn(void *baton, apr_uint32_t pid);
apr_status_t ss_metrics_store_state(ss_metrics_t *m, int *slot, apr_uint32_t pid, int down,
                                    apr_time_t now, ss_metrics_alive_fn *alive, void *baton);

/* Give back pid's slot (a process exiting cleanly). */
void ss_metrics_release(ss_metrics_t *m, int slot, apr_uint32_t pid);

/* How many live processes have their store down at now. */
apr_uint32_t ss_metrics_down_count(const ss_metrics_t *m, apr_time_t now,
                                   ss_metrics_alive_fn *alive, void *baton);

/* A snapshot, for tests and status pages. */
apr_uint64_t ss_metrics_get(const ss_metrics_t *m, ss_metric_e which);
void ss_metrics_histogram(const ss_metrics_t *m, ss_op_e op,
                          apr_uint64_t buckets[SS_METRICS_NBUCKETS + 1], apr_uint64_t *sum_us,
                          apr_uint64_t *count);

/* What the host knows of one store when the page is asked for. */
typedef struct {
    const char *label; /* the store as describe() shows it (no password) */
    int stats_ok;      /* stats holds the store's counters */
    ss_store_stats_t stats;
    int shared_stats;        /* stats covers every process (shm), not just this one */
    apr_int64_t evictions;   /* the store's own eviction count (Redis evicted_keys), -1 unknown */
    int up;                  /* a round trip just now succeeded */
    apr_interval_time_t rtt; /* how long it took */
    /* A replicated store (Redis): the address the store's connections go
     * to (with Sentinel the current master) and that server's replication,
     * asked as the page was made; NULL when unknown (not replicated, Redis
     * Cluster, or the question failed). */
    const char *master;
    const ss_store_replication_t *replication;
} ss_metrics_store_t;

/* The Prometheus text exposition (format 0.0.4) of the counters at now and
 * of the nstores stores, every name prefixed sessstore_. */
const char *ss_metrics_render(const ss_metrics_t *m, const ss_metrics_store_t *stores, int nstores,
                              apr_time_t now, ss_metrics_alive_fn *alive, void *baton,
                              apr_pool_t *p);

/* The label value escaped as the exposition format wants (\\, \", \n). */
const char *ss_metrics_escape(const char *s, apr_pool_t *p);

#endif
