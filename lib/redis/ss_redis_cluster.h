/* ss_redis_cluster.h - a Redis Cluster behind the Redis store (internal).
 *
 * The slot map (ss_redis_slotmap.h) says which master serves each slot; a
 * command on a key goes to the master of the key's slot (ss_redis_slot.h),
 * over that node's own connection pool, breaker and outage log
 * (ss_redis_conn.h: one ss_redis_conn_t per node, made the first time the
 * node is named, kept for the life of the store).
 *
 * The map is read with CLUSTER SHARDS (CLUSTER SLOTS on a server without
 * it) from any node that answers: those the last map listed (masters and
 * replicas, not failed) first, starting each time with the next one, then
 * the seeds of the URI and the nodes since dropped. It is read on first use (or
 * by ss_redis_cluster_refresh, the start-up check in httpd's parent), and
 * again after a MOVED, a CLUSTERDOWN, a slot without an owner or a node that
 * failed, but at most once per SS_REDIS_CLUSTER_REFRESH_MIN, by one thread at
 * a time (the others go on with the map they have).
 *
 * Redirects, within the operation's one deadline (connect_timeout +
 * command_timeout from its start):
 *   MOVED slot host:port   the slot's owner is updated at once, the map read
 *                          again if due, and the command sent to the new
 *                          owner; a second MOVED fails the operation;
 *   ASK slot host:port     ASKING and the command go to that node, the map is
 *                          left alone (the slot is being migrated); once;
 *   TRYAGAIN, CLUSTERDOWN  retried after a short pause (SS_REDIS_CLUSTER_PAUSE,
 *                          doubling) while the deadline allows;
 *   a failed connection    the map is read again and, if the slot has a new
 *                          owner (a replica promoted), the command is sent
 *                          there once.
 * Scripts are cached per node: the NOSCRIPT fallback of ss_redis_conn.c runs
 * on the node that answered, after ASKING again when the command had it.
 *
 * Counters (per process, ss_store_stats_t): slotmap_refreshes, moved and
 * asked (redirects followed), cluster_nodes (nodes in the last map, masters
 * and replicas, failed ones excluded); a node's errors, connects, retries
 * and fast_fails are summed into the store's. */
#ifndef SS_REDIS_CLUSTER_H
#define SS_REDIS_CLUSTER_H

#include <hiredis.h>

#include "ss_redis_config.h"
#include "ss_redis_conn.h"
#include "ss_store.h"

/* The map is read again at most this often. */
#define SS_REDIS_CLUSTER_REFRESH_MIN apr_time_from_msec(100)
/* The first pause after TRYAGAIN or CLUSTERDOWN; each next one doubles. */
#define SS_REDIS_CLUSTER_PAUSE apr_time_from_msec(10)
/* Distinct node addresses remembered; more are refused (logged). */
#define SS_REDIS_CLUSTER_NODES_MAX 1024

typedef struct ss_redis_cluster_t ss_redis_cluster_t;

/* The redirect state machine, apart from the network (unit tested). */
typedef enum {
    SS_CLUSTER_DONE,  /* a final reply: the caller's to judge */
    SS_CLUSTER_MOVED, /* update the slot's owner to *to, retry there */
    SS_CLUSTER_ASK,   /* ASKING and retry on *to, the map unchanged */
    SS_CLUSTER_PAUSE, /* wait *pause, then retry on the slot's owner */
    SS_CLUSTER_FAIL   /* give up: *why says why */
} ss_redis_cluster_step_e;

typedef struct {
    int moved, asked, paused; /* followed so far in this operation */
    apr_interval_time_t pause;
} ss_redis_redirects_t;

/* What to do with reply, at time now, for an operation that must end by
 * deadline (ss_redis_clock() times). st starts zeroed. MOVED and ASK fill
 * *to (allocated in p; an empty host means the node that answered) and
 * *slot; PAUSE fills *pause; FAIL fills *why. */
ss_redis_cluster_step_e ss_redis_cluster_step(ss_redis_redirects_t *st, const redisReply *reply,
                                              apr_time_t now, apr_time_t deadline,
                                              ss_redis_addr_t *to, unsigned *slot,
                                              apr_interval_time_t *pause, const char **why,
                                              apr_pool_t *p);

/* A cluster for cfg (cfg->cluster; kept, not copied: it must live as long
 * as p), with a node for every seed. No network I/O but resolving seed
 * names (bounded); with TLS every tls_* file is loaded now, once per node. */
apr_status_t ss_redis_cluster_create(ss_redis_cluster_t **cl, const ss_redis_config_t *cfg,
                                     const char *target, apr_pool_t *p);

/* Send cmd to the master serving key[0..len), following redirects; as
 * ss_redis_conn_command otherwise (an error reply is a failure,
 * APR_EGENERAL). */
apr_status_t ss_redis_cluster_command(ss_redis_cluster_t *cl, const ss_redis_cmd_t *cmd,
                                      const char *key, size_t len, redisReply **reply);

/* Read the slot map now, unless another thread is at it. APR_SUCCESS when
 * a node gave one. */
apr_status_t ss_redis_cluster_refresh(ss_redis_cluster_t *cl);

/* The store's own counters, as ss_redis_conn_lock. */
ss_store_stats_t *ss_redis_cluster_lock(ss_redis_cluster_t *cl);
void ss_redis_cluster_unlock(ss_redis_cluster_t *cl);

/* The store's counters with every node's summed in. */
void ss_redis_cluster_stats(ss_redis_cluster_t *cl, ss_store_stats_t *out);

/* ss_redis_conn_discard and ss_redis_conn_close of every node. */
void ss_redis_cluster_discard(ss_redis_cluster_t *cl);
void ss_redis_cluster_close(ss_redis_cluster_t *cl);

#endif
