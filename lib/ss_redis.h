/* ss_redis.h - the Redis backend (hiredis).
 *
 * Configured by one URI, options as query parameters:
 *
 *   redis://[[user]:password@]host[:port][/db][?param=value&...]
 *   unix:///path/to/redis.sock[?db=N&password=...&...]   (also redis+unix://)
 *
 * user, password, prefix and the socket path are percent-decoded; a password
 * holding '@', '/', '?', '&' or '%' must be percent-encoded. Parameters:
 *
 *   connect_timeout  ms, 1..60000, default 300: TCP or Unix connect
 *   command_timeout  ms, 1..60000, default 300: each socket read or write
 *   breaker          ms, 0..60000, default 1000: after a failure, operations
 *                    fail at once for this long (0: never fail fast)
 *   prefix           default "sessstore:"; key = prefix + hex(ss_key_t)
 *   db               0..2147483647, default 0 (or /db in a redis:// URI)
 *   user, password   as in the userinfo (the only way for a Unix socket)
 *   max_idle         0..1024, default 16: idle connections kept per process
 *
 * Host names are resolved at connect time by getaddrinfo(), which no timeout
 * bounds: use an address or an /etc/hosts entry where that matters.
 *
 * Oldest Redis: 5.0 (AUTH with a user needs 6.0 ACLs); tested with 7.0. A
 * load is one EVALSHA (EVAL once after a script-cache flush), a save one SET
 * with PX, a remove one DEL; AUTH and SELECT go once per new connection.
 * Redis Cluster is not supported (hiredis does not follow MOVED).
 *
 * Expiry is judged by the caller's clock ("now", passed to the script), as
 * in the shm backend; every httpd node sharing one Redis needs NTP. Each key
 * also carries a PX TTL equal to the session's deadline, so Redis drops dead
 * sessions by itself; a session with neither timeout lives SS_REDIS_NO_DEADLINE_TTL
 * after its last save, never forever.
 *
 * Connections are opened lazily, in the process that uses them (none survive
 * a fork), reused across requests and threads (one thread at a time each),
 * and a broken one is closed, never reused; at most max_idle wait between
 * requests (more are opened under load, then closed). After an I/O error on
 * a pooled connection the idle ones are dropped and, unless it was a timeout,
 * the operation is retried once on a fresh connection: a Redis restart costs
 * no request. The host must ignore SIGPIPE (httpd does).
 *
 * A request waits at most about connect_timeout + command_timeout (each
 * bounds one socket operation). After an I/O failure the breaker fails every
 * operation at once for `breaker` ms, then lets one probe through; the first
 * good reply closes it.
 *
 * Stats are per process: hits, misses, expired, saves, touches, removes,
 * refused_gone, errors, fast_fails, connects, retries. entries, the byte
 * counts and the evictions stay 0 (Redis's own INFO has them). */
#ifndef SS_REDIS_H
#define SS_REDIS_H

#include "ss_store.h"

#define SS_REDIS_DEFAULT_PORT 6379
#define SS_REDIS_DEFAULT_PREFIX "sessstore:"
#define SS_REDIS_DEFAULT_CONNECT_TIMEOUT_MS 300
#define SS_REDIS_DEFAULT_COMMAND_TIMEOUT_MS 300
#define SS_REDIS_DEFAULT_BREAKER_MS 1000
#define SS_REDIS_DEFAULT_MAX_IDLE 16
/* TTL of a session with neither idle nor absolute timeout: 30 days. */
#define SS_REDIS_NO_DEADLINE_TTL apr_time_from_sec(30 * 24 * 3600)
/* While Redis keeps failing, one summary line at most this often. */
#define SS_REDIS_LOG_INTERVAL apr_time_from_sec(60)

typedef struct {
    const char *host;     /* TCP: name or address (no brackets); NULL for a Unix socket */
    int port;             /* TCP */
    const char *path;     /* Unix socket; NULL for TCP */
    const char *user;     /* NULL: AUTH password alone */
    const char *password; /* NULL: no AUTH */
    int db;
    const char *prefix;
    apr_interval_time_t connect_timeout;
    apr_interval_time_t command_timeout;
    apr_interval_time_t breaker;
    int max_idle;
} ss_redis_config_t;

/* Parse uri into a new *cfg. NULL on success, else a message naming the
 * problem (never containing the password). */
const char *ss_redis_parse(ss_redis_config_t **cfg, const char *uri, apr_pool_t *p);

/* The target for logs and status pages: the URI with the password replaced
 * by "***" and every option spelled out. */
const char *ss_redis_describe(const ss_redis_config_t *cfg, apr_pool_t *p);

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
 * or with something unexpected). The first failure is
 * logged at ERR, then at most one summary per SS_REDIS_LOG_INTERVAL, and a
 * NOTICE when Redis answers again. */
apr_status_t ss_redis_open(ss_store_t **store, const ss_redis_config_t *cfg, apr_pool_t *p);

#endif
