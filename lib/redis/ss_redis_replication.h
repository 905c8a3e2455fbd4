/* ss_redis_replication.h - what a Redis server's `INFO replication` says of
 * its role and its replicas, for the status and metrics pages (asked when a
 * page is asked for, never per request: ss_redis_replication in ss_redis.h).
 *
 * On a master the reply lists each connected replica as
 *   slaveN:ip=IP,port=PORT,state=STATE,offset=OFFSET,lag=SECONDS
 * next to master_repl_offset, the master's own offset: a replica's offset
 * difference is master_repl_offset - offset (bytes of the replication stream
 * not yet acknowledged), its lag the seconds since its last acknowledgement.
 * At most SS_STORE_REPLICAS_LISTED replicas are kept; connected counts
 * them all. */
#ifndef SS_REDIS_REPLICATION_H
#define SS_REDIS_REPLICATION_H

#include <apr_pools.h>

#include "ss_store.h"

/* The parsed reply: the backend-neutral form the status and metrics pages
 * render (ss_store.h), role "master" or "slave" (a replica). */
typedef ss_store_replication_t ss_redis_replication_t;

/* Parse the text of an INFO replication reply into out (strings in p).
 * APR_EINVAL without a role line; a slaveN line without ip and port is
 * left out (still counted in connected). */
apr_status_t ss_redis_replication_parse(const char *info, ss_redis_replication_t *out,
                                        apr_pool_t *p);

/* One line for a status page: "REPLICAS connected: ADDR state=S lag=N s
 * offset_behind=B; ..." on a master, "replica of ADDR" on a replica. */
const char *ss_redis_replication_describe(const ss_redis_replication_t *r, apr_pool_t *p);

#endif
