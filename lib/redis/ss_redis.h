/* ss_redis.h - the Redis backend: a store over one Redis server (or the
 * master that Redis Sentinel names: ss_redis_sentinel.h), configured by a
 * URI (ss_redis_config.h), over connections of its own
 * (ss_redis_transport.h: TCP, Unix or TLS; hiredis formats and parses).
 * With wait=N every save is followed by WAIT in the same round trip, and
 * fewer acknowledgements fail it.
 *
 * Oldest Redis: 5.0 (AUTH with a user needs 6.0 ACLs); tested with 7.0. A
 * load is one GET, judged here; when it has to write (a touch is due, the
 * record is dead for every location, or malformed) the load script does it
 * atomically, one EVALSHA more (EVAL once after a script-cache flush): a
 * second round trip at most once per touch interval of a session. A save is
 * one SET with PX, a remove one DEL; AUTH and SELECT go once per new
 * connection. Redis Cluster is not supported (hiredis does not follow MOVED).
 *
 * Expiry is judged by the caller's clock ("now", also passed to the script),
 * as in the shm backend; every httpd node sharing one Redis needs NTP. Each key
 * also carries a PX TTL equal to the session's deadline, so Redis drops dead
 * sessions by itself; a session with neither timeout lives SS_REDIS_NO_DEADLINE_TTL
 * after its last save, never forever.
 *
 * Connections are opened lazily, in the process that uses them (none survive
 * a fork), reused across requests and threads (one thread at a time each)
 * for at most max_age; at most max_idle wait between requests (more are
 * opened under load, then closed). A connection is closed, never reused,
 * after an I/O error, a reply of the wrong type for the command sent, or an
 * error reply saying the node cannot serve us (READONLY, LOADING,
 * MASTERDOWN); other error replies (WRONGTYPE, NOPERM...) keep it. After an
 * I/O error or such an error reply on a pooled connection the idle ones are
 * dropped and, unless it was a timeout, the operation is retried once on a
 * fresh connection: a Redis restart, or a failover behind the same address,
 * costs no request. The host must ignore SIGPIPE (httpd does).
 *
 * An operation has one deadline: command_timeout on a pooled connection,
 * connect_timeout + command_timeout when it opens one (name resolution,
 * connect and TLS handshake within connect_timeout), however slowly the
 * server trickles its bytes (ss_redis_transport.h). After an I/O failure the breaker fails every
 * operation at once for `breaker` ms, then lets one probe through; the first
 * good reply closes it.
 *
 * Stats are per process: hits, misses, expired, saves, touches, removes,
 * refused_gone, errors, fast_fails, connects, retries. entries, the byte
 * counts and the evictions stay 0 (Redis's own INFO has them). */
#ifndef SS_REDIS_H
#define SS_REDIS_H

#include "ss_redis_config.h"
#include "ss_redis_replication.h"
#include "ss_store.h"

/* Test and benchmark hook, read by ss_redis_open: with this environment
 * variable set to "script", every load is the load script (one EVALSHA), as
 * in releases before the lean load; unset or anything else, the lean load. */
#define SS_REDIS_LOAD_ENV "SESSSTORE_REDIS_LOAD"

/* TTL of a session with neither idle nor absolute timeout: 30 days. */
#define SS_REDIS_NO_DEADLINE_TTL apr_time_from_sec(30 * 24 * 3600)

/* Open a store over cfg (copied into p). No network I/O happens here: the
 * first operation in each process connects. Closed by ops->close or when p
 * is destroyed.
 *
 * Operations return APR_SUCCESS; APR_NOTFOUND from load when the session is
 * absent or expired, and from an SS_SAVE_UPDATE save when the record is gone;
 * APR_EEXIST from an SS_SAVE_NEW save when the key exists. Anything else
 * means the store is unavailable, for example APR_TIMEUP (connect or command
 * timeout), APR_ECONNREFUSED (refused, or failed at once while the breaker is
 * open), APR_EOF (connection lost), another errno (APR_ENOENT: no such Unix
 * socket), APR_EGENERAL (Redis answered with an error, e.g. a wrong password,
 * or with something unexpected). The first failure is logged at ERR, then at
 * most one summary a minute (SS_REDIS_LOG_INTERVAL), and a NOTICE when Redis
 * answers again. */
apr_status_t ss_redis_open(ss_store_t **store, const ss_redis_config_t *cfg, apr_pool_t *p);

/* A counter from the server's INFO (e.g. section "stats", field
 * "evicted_keys"), asked now: one round trip, through the breaker like any
 * operation. APR_EINVAL when store is not a Redis store, APR_NOTFOUND when
 * the field is absent, APR_EGENERAL when the server refuses INFO (an ACL
 * without +info), APR_ENOTIMPL on a Redis Cluster (each node has its own),
 * else the store's error. */
apr_status_t ss_redis_info_counter(ss_store_t *store, const char *section, const char *field,
                                   apr_uint64_t *value);

/* The server's INFO replication (ss_redis_replication.h), asked now like
 * ss_redis_info_counter (same errors; APR_EINVAL also for a reply without a
 * role), and in *master the address this process's connections go to (with
 * Sentinel the current master; NULL while not known). */
apr_status_t ss_redis_replication(ss_store_t *store, ss_redis_replication_t *out,
                                  const char **master, apr_pool_t *p);

/* The store's URI as describe() shows it (no password) without the
 * Sentinel's answer (which changes with time): a metrics label. NULL when
 * store is not a Redis store. */
const char *ss_redis_label(ss_store_t *store, apr_pool_t *p);

/* The value of field in the text of an INFO reply ("field:value" lines). */
apr_status_t ss_redis_info_parse(const char *info, const char *field, apr_uint64_t *value);

#endif
