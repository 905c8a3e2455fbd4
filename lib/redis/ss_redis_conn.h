/* ss_redis_conn.h - connections to Redis, for the Redis store (internal).
 *
 * One ss_redis_conn_t per store: its endpoint (ss_redis_transport.h), this
 * process's idle connections, the circuit breaker, the outage log and the
 * store's counters. Connections are opened on demand, set up with AUTH and
 * SELECT, kept for reuse, and dropped when the process turns out to be a
 * forked child. */
#ifndef SS_REDIS_CONN_H
#define SS_REDIS_CONN_H

#include <hiredis.h>

#include "ss_redis_config.h"
#include "ss_store.h"

/* While Redis keeps failing, one summary line at most this often. */
#define SS_REDIS_LOG_INTERVAL apr_time_from_sec(60)

typedef struct ss_redis_conn_t ss_redis_conn_t;

/* Which error replies ss_redis_conn_command returns as replies (with
 * APR_SUCCESS) for the caller to judge, instead of failing: for Redis
 * Cluster (ss_redis_cluster.c). */
typedef enum {
    SS_REDIS_PASS_NONE = 0, /* none: every error reply is a failure */
    SS_REDIS_PASS_CLUSTER,  /* MOVED, ASK, TRYAGAIN and CLUSTERDOWN */
    SS_REDIS_PASS_ALL       /* every one but those closing the connection (READONLY...) */
} ss_redis_pass_e;

/* One command, binary-safe. Zeroed fields keep the plain behaviour. */
typedef struct {
    int argc;
    const char *argv[9];
    size_t len[9];
    const char *script; /* non-NULL: argv[1] is its SHA; sent again as EVAL on NOSCRIPT */
    int asking;         /* Redis Cluster: ASKING first, pipelined on the same connection */
    ss_redis_pass_e pass;
    apr_time_t deadline; /* non-0: an ss_redis_clock() time the operation may not pass */
} ss_redis_cmd_t;

/* cfg and target (ss_redis_target) are kept, not copied: they must live as
 * long as p. With Sentinel (cfg->sentinel_master), every new connection goes
 * to the master the sentinels name and is checked with ROLE, and connections
 * to a former master are not reused (ss_redis_sentinel.h). No network I/O happens here, but for a
 * host name's resolution (bounded by connect_timeout); with TLS every tls_* file is loaded now. A
 * failure is logged, naming the option. */
apr_status_t ss_redis_conn_create(ss_redis_conn_t **rc, const ss_redis_config_t *cfg,
                                  const char *target, apr_pool_t *p);

/* Send cmd, return its reply (free it with freeReplyObject), within one
 * deadline: command_timeout on a pooled connection, connect_timeout +
 * command_timeout when one is opened (ss_redis_transport.h). Fails at once
 * while the breaker is open; retries once on a fresh connection when a pooled
 * one turns out dead (Redis restarted). An error reply is a failure too
 * (APR_EGENERAL); READONLY, LOADING and MASTERDOWN also close the connection
 * (and, on a pooled one, flush the pool and retry once: a failover may have
 * moved the master behind the same address), other error replies keep it.
 * A connection older than cfg->max_age is closed instead of reused. Every
 * failure is counted and logged, every success closes the breaker. With
 * cmd->asking, "ASKING" goes first and the NOSCRIPT fallback repeats it;
 * cmd->pass and cmd->deadline as ss_redis_cmd_t says. */
apr_status_t ss_redis_conn_command(ss_redis_conn_t *rc, const ss_redis_cmd_t *cmd,
                                   redisReply **reply);

/* ss_redis_conn_command, then WAIT replicas timeout in the same round trip
 * (the deadline grows by timeout): fewer acknowledgements than replicas, or
 * an error reply to WAIT, make it fail (APR_EGENERAL), counted and logged as
 * any failure, without opening the breaker. The reply is cmd's. */
apr_status_t ss_redis_conn_command_wait(ss_redis_conn_t *rc, const ss_redis_cmd_t *cmd,
                                        int replicas, apr_interval_time_t timeout,
                                        redisReply **reply);

/* With Sentinel, the master this process uses (ss_redis_sentinel_describe),
 * asking the sentinels first when the last answer is older than
 * SS_REDIS_SENTINEL_FRESH (at most connect_timeout); NULL without. */
const char *ss_redis_conn_describe(ss_redis_conn_t *rc, apr_pool_t *p);

/* The address new connections go to: the configured host:port or socket
 * path, with Sentinel the current master's (NULL while not known). */
const char *ss_redis_conn_address(ss_redis_conn_t *rc, apr_pool_t *p);

/* The per-process counters, with the lock held: the connection layer counts
 * errors, fast_fails, connects and retries; the store adds its outcomes. A
 * forked child starts from zero. Release with ss_redis_conn_unlock. */
ss_store_stats_t *ss_redis_conn_lock(ss_redis_conn_t *rc);
void ss_redis_conn_unlock(ss_redis_conn_t *rc);

/* The reply just returned is not one the command can give (the caller
 * checked its type): the connection is out of step with Redis, or something
 * between them misbehaves. Closes every connection of this process, the idle
 * ones now and those in use when released, since the one it came from is
 * back in the pool and no longer known. */
void ss_redis_conn_discard(ss_redis_conn_t *rc);

/* Close the idle connections; those in use are closed when released. */
void ss_redis_conn_close(ss_redis_conn_t *rc);

#endif
