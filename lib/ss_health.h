/* ss_health.h - can this process load and save through its store?
 *
 * A probe is a real round trip: it writes a small record under a key of its
 * own (random, per process, never a session's) with a deadline a few
 * seconds ahead, and reads it back. The verdict is kept for `cache` so that
 * a balancer polling every second costs at most one probe per process per
 * interval; concurrent callers in one process wait for the running probe
 * rather than start their own. */
#ifndef SS_HEALTH_H
#define SS_HEALTH_H

#include "ss_store.h"

/* How long the probe's record lives after its last write. */
#define SS_HEALTH_RECORD_TTL apr_time_from_sec(10)

typedef struct ss_health_t ss_health_t;

/* A prober of store, allocated in p (in the process that will use it: the
 * key is drawn here). */
apr_status_t ss_health_create(ss_health_t **h, ss_store_t *store, apr_interval_time_t cache,
                              apr_pool_t *p);

/* APR_SUCCESS when the store saved and loaded back the probe (now, or
 * within the last `cache`), else the store's error. *why (may be NULL): on
 * failure, what failed, for a person, without the store's address or
 * credentials. *rtt (may be NULL): how long the latest probe took. */
apr_status_t ss_health_check(ss_health_t *h, apr_time_t now, apr_interval_time_t *rtt,
                             const char **why, apr_pool_t *p);

#endif
