/* ss_redis_sentinel.h - finding the master through Redis Sentinel (internal),
 * as the documented client protocol says:
 *
 *   - the sentinels are asked in order, each with a short timeout (at most
 *     connect_timeout, and never past the operation's deadline); the first
 *     that answers moves to the front of this process's list;
 *   - SENTINEL get-master-addr-by-name MASTER (after AUTH with
 *     sentinel_user/sentinel_password when given); a null answer (a sentinel
 *     that does not know the name) or an error means: ask the next one;
 *   - the connection layer then checks with ROLE that the node is a master
 *     (ss_redis_sentinel_is_master), else suspects the answer, waits
 *     SS_REDIS_SENTINEL_ROLE_RETRY and asks again, within its deadline;
 *   - the sentinels are asked again for every new connection (an answer is
 *     reused for SS_REDIS_SENTINEL_FRESH at most, so that a burst of new
 *     connections costs one question), at once after the master's node
 *     failed a connection, answered READONLY, LOADING or MASTERDOWN, or
 *     fell short of WAIT's replicas (ss_redis_sentinel_suspect), and, by one
 *     thread of a busy process, once per SS_REDIS_SENTINEL_FRESH before a
 *     pooled connection is used (ss_redis_sentinel_refresh): after a manual
 *     failover the old master accepts writes until Sentinel demotes it, and
 *     writes acknowledged there are lost; this bounds how long a process
 *     keeps sending them;
 *   - while the connection layer's breaker is open, once per
 *     SS_REDIS_SENTINEL_OUTAGE_FRESH: a new master closes the breaker at once
 *     instead of after its full time.
 *
 * Pub/sub (+switch-master) is not used: a subscriber per process is costly
 * and its messages may be lost; the above needs none.
 *
 * A new master address starts a new generation: connections opened to an
 * older one are closed instead of reused, so a demoted master that stays
 * alive keeps no pooled connection (the READONLY-for-an-hour bug of peers),
 * and an answer from one that arrives after the change is not used (the
 * connection layer sends the command again).
 *
 * Failures are logged by kind, once per change of kind and then at most once
 * per SS_REDIS_LOG_INTERVAL: "no sentinel reachable", "unknown master name",
 * "sentinels refused". A change of master is logged at NOTICE. All state is
 * per process. */
#ifndef SS_REDIS_SENTINEL_H
#define SS_REDIS_SENTINEL_H

#include <hiredis.h>

#include "ss_redis_config.h"
#include "ss_redis_transport.h"

/* An answer of the sentinels is reused this long for new connections. */
#define SS_REDIS_SENTINEL_FRESH apr_time_from_sec(1)
/* While the breaker is open, the sentinels are asked this often. */
#define SS_REDIS_SENTINEL_OUTAGE_FRESH apr_time_from_msec(100)
/* After ROLE said "not a master": wait this long before asking again. */
#define SS_REDIS_SENTINEL_ROLE_RETRY apr_time_from_msec(100)
/* Distinct master addresses a process keeps an endpoint for. */
#define SS_REDIS_SENTINEL_MASTERS_MAX 32

typedef struct ss_redis_sentinel_t ss_redis_sentinel_t;

/* For cfg (a Sentinel configuration, kept: it must live as long as p).
 * Builds the sentinels' endpoints; with TLS, loads every tls_* file now (the
 * sentinels and the data nodes share them). No network I/O. On failure err
 * says why. target is for log lines (no password). */
apr_status_t ss_redis_sentinel_create(ss_redis_sentinel_t **s, const ss_redis_config_t *cfg,
                                      const char *target, apr_pool_t *p, char *err,
                                      apr_size_t errlen);

/* The master's endpoint for a new connection, and the generation of that
 * answer: the last answer while fresh and not suspected, else the sentinels'
 * answer now, before deadline. On failure err says why: "no sentinel
 * reachable", "unknown master name", "sentinels refused". */
apr_status_t ss_redis_sentinel_master(ss_redis_sentinel_t *s, apr_time_t deadline,
                                      ss_redis_endpoint_t **ep, unsigned *gen, char *err,
                                      apr_size_t errlen);

/* When the last answer is older than max_age (or suspected) and no other
 * thread is asking: ask the sentinels now, before deadline, and return 1;
 * else 0 at once. A failure is logged, not returned: a master that answers
 * stays usable while the sentinels do not. Afterwards ss_redis_sentinel_gen
 * says whether the master moved. */
int ss_redis_sentinel_refresh(ss_redis_sentinel_t *s, apr_time_t deadline,
                              apr_interval_time_t max_age);

/* The master of generation gen failed a connection, refused to serve
 * (READONLY, LOADING, MASTERDOWN) or is not a master: the next new
 * connection asks the sentinels first. */
void ss_redis_sentinel_suspect(ss_redis_sentinel_t *s, unsigned gen);

/* The current generation: connections of another one go to a former master. */
unsigned ss_redis_sentinel_gen(ss_redis_sentinel_t *s);

/* Whether a ROLE reply says "master". */
int ss_redis_sentinel_is_master(const redisReply *role);

/* For status pages: "master HOST:PORT (sentinel HOST:PORT answered N s
 * ago)", or "master not known yet" in a process that has not asked. */
const char *ss_redis_sentinel_describe(ss_redis_sentinel_t *s, apr_pool_t *p);

/* The current master as "HOST:PORT", or NULL in a process that has not asked. */
const char *ss_redis_sentinel_address(ss_redis_sentinel_t *s, apr_pool_t *p);

#endif
