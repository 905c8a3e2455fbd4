/* ss_redis_index.h - the Redis store's per-owner index and its
 * administration: revoke an owner's sessions, scan, purge (internal; reached
 * through ss_store_ops_t).
 *
 * Index key: prefix + "owner:" + hex(ss_owner_t), a sorted set whose members
 * are hex(ss_key_t) (the session key without its prefix). Score:
 * - the session's absolute deadline in milliseconds since the epoch, when it
 *   has one: no touch can move it, so trimming by score never drops a
 *   session that can still live;
 * - otherwise minus the time it was added (ms): never trimmed by score, but
 *   checked by existence (EXISTS of the session key) once older than
 *   SS_REDIS_INDEX_GRACE, so that a login between its index entry and its
 *   SET is never mistaken for a dead one.
 * Every write of the index (a script on that one key, so atomic) trims
 * finite entries dead by SS_REDIS_INDEX_SLACK (clock skew between nodes),
 * adds the new member and sets the key's TTL from its highest score plus the
 * slack, or removes the TTL while an open (no-deadline) entry is in it: the
 * index never expires before its longest-lived member.
 *
 * Each command and script names one key, so every one of them is valid in
 * Redis Cluster: the index and a session are touched by separate commands,
 * never together. Order makes that safe: the entry is added before the
 * session's first SET (a crash in between leaves an entry without a
 * session, trimmed later), and a revoke deletes the session before its
 * entry. */
#ifndef SS_REDIS_INDEX_H
#define SS_REDIS_INDEX_H

#include "ss_redis_cluster.h"
#include "ss_redis_conn.h"
#include "ss_store.h"

#define SS_REDIS_INDEX_INFIX "owner:"
/* A finite entry stays this long past its score: nodes' clocks differ. */
#define SS_REDIS_INDEX_SLACK apr_time_from_sec(60)
/* An open entry younger than this is never checked by existence. */
#define SS_REDIS_INDEX_GRACE apr_time_from_sec(300)
/* Open entries are checked by existence when their number reaches 16, 32,
 * 64...: amortised O(1) per login. */
#define SS_REDIS_INDEX_CHECK_FROM 16

typedef struct {
    ss_redis_conn_t *conn;
    /* Instead of conn, for a Redis Cluster: each command goes to the node of
     * its one key (an index and its sessions may live on different nodes);
     * SCAN, which no single node answers for all, is refused (APR_ENOTIMPL):
     * only the by-owner operations work there. */
    ss_redis_cluster_t *cluster;
    const char *prefix;
    const char *target; /* for log lines */
} ss_redis_index_t;

apr_status_t ss_redis_index_add(const ss_redis_index_t *ix, const ss_owner_t *owner,
                                const ss_key_t *key, apr_time_t until, apr_time_t now);
apr_status_t ss_redis_index_revoke(const ss_redis_index_t *ix, const ss_owner_t *owner,
                                   const ss_key_t *except, apr_time_t now, apr_size_t *count);
apr_status_t ss_redis_index_scan(const ss_redis_index_t *ix, const ss_owner_t *owner,
                                 apr_size_t limit, ss_store_entry_fn fn, void *baton,
                                 apr_time_t now, apr_pool_t *p);
apr_status_t ss_redis_index_purge(const ss_redis_index_t *ix, apr_time_t now, apr_size_t *count);

#endif
