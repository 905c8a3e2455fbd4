/* ss_redis_config.h - the Redis backend's configuration, from one URI.
 *
 *   redis://[[user]:password@]host[:port][/db][?param=value&...]
 *   rediss://...   the same over TLS (OpenSSL), with the tls_* parameters
 *   unix:///path/to/redis.sock[?db=N&password=...&...]   (also redis+unix://)
 *   redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db][?...]
 *   rediss-sentinel://...   the same over TLS, to the sentinels and the data nodes
 *   redis-cluster://[[user]:password@]host[:port][,host[:port]...][?param=value&...]
 *   rediss-cluster://...   a Redis Cluster, over TLS for the second form
 *
 * In a Sentinel URI the hosts are the sentinels (port 26379 by default,
 * SS_REDIS_SENTINEL_MAX at most), MASTER the name they monitor the master
 * by (percent-decoded; printable, no space), and the userinfo, db and
 * options are the data nodes'; the sentinels' own credentials are the
 * sentinel_user and sentinel_password options (ss_redis_sentinel.h).
 *
 * A cluster URI lists seed nodes (at most SS_REDIS_SEEDS_MAX, port 6379 by
 * default): any one that answers gives the slot map (ss_redis_cluster.h).
 * It takes no db (a cluster has only db 0: /db and db= are refused); the
 * other parameters, tls_* included, apply to every node.
 *
 * user, password, prefix and the socket path are percent-decoded; a password
 * holding '@', '/', '?', '&', '#' or '%' must be percent-encoded, and an '@'
 * after the host (a password whose '/' or '?' was not) is refused. The host
 * is a DNS name (letters, digits, '-', '_'), a dotted-quad IPv4 address, or
 * an IPv6 address in brackets ([fe80::1%25eth0] with a zone). Parameters:
 *
 *   connect_timeout  ms, 1..60000, default 300: opening a connection (name
 *                    resolution, TCP or Unix connect, TLS handshake)
 *   command_timeout  ms, 1..60000, default 300: the rest of the operation
 *                    (see ss_redis_transport.h for the one deadline rule)
 *   breaker          ms, 0..60000, default 1000: after a failure, operations
 *                    fail at once for this long (0: never fail fast)
 *   prefix           default "sessstore:"; key = prefix + hex(ss_key_t)
 *   db               0..2147483647, default 0 (or /db in a redis:// URI)
 *   user, password   as in the userinfo (the only way for a Unix socket)
 *   max_idle         0..1024, default 64: idle connections kept per process
 *                    (at least ThreadsPerChild, or busy threads reconnect)
 *   max_age          s, 0..86400, default 300: a connection this old is
 *                    closed instead of reused (0: no limit), so that every
 *                    connection eventually follows a DNS or VIP change
 *   wait             N[,timeout_ms]: after each save, WAIT N timeout_ms in
 *                    the same round trip; fewer than N replicas acknowledging
 *                    fails the save. N 1..64, timeout_ms 1..60000, default
 *                    100; the save's deadline grows by timeout_ms
 *   sentinel_user, sentinel_password   (Sentinel URIs only) AUTH sent to
 *                    the sentinels; a user needs a password
 *
 * TLS (rediss:// only; refused with a Unix socket or on redis://):
 *   tls_ca_file      PEM file of trusted CAs   } neither: the system's store
 *   tls_ca_dir       OpenSSL hashed directory  }
 *   tls_cert_file    client certificate chain (PEM) } mutual TLS: both or
 *   tls_key_file     its private key (PEM)          } neither
 *   tls_server_name  the name sent as SNI and verified (default: the host)
 *   tls_verify       full (default): chain and host name (or IP address);
 *                    ca: chain only; none: nothing (a warning at open)
 *   tls_protocols    the oldest version accepted: TLSv1.2 (default), TLSv1.3
 *
 * Host names are resolved with a bounded wait (ss_redis_transport.h); an
 * address is never sent to the resolver. */
#ifndef SS_REDIS_CONFIG_H
#define SS_REDIS_CONFIG_H

#include <apr_pools.h>
#include <apr_time.h>

#define SS_REDIS_DEFAULT_PORT 6379
#define SS_REDIS_DEFAULT_PREFIX "sessstore:"
#define SS_REDIS_DEFAULT_CONNECT_TIMEOUT_MS 300
#define SS_REDIS_DEFAULT_COMMAND_TIMEOUT_MS 300
#define SS_REDIS_DEFAULT_BREAKER_MS 1000
#define SS_REDIS_DEFAULT_MAX_IDLE 64
#define SS_REDIS_DEFAULT_MAX_AGE_S 300
#define SS_REDIS_SEEDS_MAX 64
/* Bounds the key length, so a key fits in a stack buffer. */
#define SS_REDIS_PREFIX_MAX 100
#define SS_REDIS_DEFAULT_SENTINEL_PORT 26379
#define SS_REDIS_SENTINEL_MAX 16
#define SS_REDIS_WAIT_MAX 64
#define SS_REDIS_DEFAULT_WAIT_TIMEOUT_MS 100

/* A sentinel's or a cluster node's address. */
typedef struct {
    const char *host; /* name or address, no brackets */
    int port;
} ss_redis_addr_t;

typedef enum {
    SS_REDIS_TLS_VERIFY_FULL, /* chain and host name */
    SS_REDIS_TLS_VERIFY_CA,   /* chain only */
    SS_REDIS_TLS_VERIFY_NONE  /* nothing: only when written */
} ss_redis_tls_verify_e;

typedef struct {
    const char *host;     /* TCP: name or address (no brackets); NULL for a Unix socket
                           * or Sentinel */
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
    apr_interval_time_t max_age; /* 0: no limit */
    int tls;                     /* rediss:// */
    const char *tls_ca_file;     /* NULL: not given (all tls_* strings) */
    const char *tls_ca_dir;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_server_name;
    ss_redis_tls_verify_e tls_verify;
    int tls_min_version; /* OpenSSL's TLS1_2_VERSION or TLS1_3_VERSION */
    int wait_replicas;   /* 0: no WAIT after a save */
    apr_interval_time_t wait_timeout;
    const char *sentinel_master; /* NULL: not Sentinel */
    int nsentinels;
    const ss_redis_addr_t *sentinels;
    const char *sentinel_user;     /* NULL: AUTH sentinel_password alone */
    const char *sentinel_password; /* NULL: no AUTH to the sentinels */
    int cluster;                   /* redis-cluster:// or rediss-cluster:// */
    int nseeds;                    /* cluster: the seed nodes; host and port are the first */
    const ss_redis_addr_t *seeds;  /* cluster: nseeds of them */
} ss_redis_config_t;

/* Parse uri into a new *cfg. NULL on success, else a message naming the
 * problem and where it is. It never contains the password: when the URI may
 * hold one (an '@', a password= parameter) it quotes no part of the URI;
 * otherwise it quotes a bad value, escaped and cut short, never the host. */
const char *ss_redis_parse(ss_redis_config_t **cfg, const char *uri, apr_pool_t *p);

/* What can be checked without the network: with TLS, every tls_* file is
 * readable and valid (loaded into a throwaway SSL_CTX, as ss_redis_open
 * will). NULL when fine, else a message naming the option and the file.
 * For the directive handler, so that a configtest fails on a bad file. */
const char *ss_redis_check(const ss_redis_config_t *cfg, apr_pool_t *p);

/* The target for logs and status pages: the URI with the password replaced
 * by "***" and every option spelled out. With the password put back
 * (percent-encoded) for "***", it parses to the same configuration. */
const char *ss_redis_describe(const ss_redis_config_t *cfg, apr_pool_t *p);

/* The short form, for the backend's own log lines: scheme, user, host or
 * socket path, port and db; the password masked, no other option. */
const char *ss_redis_target(const ss_redis_config_t *cfg, apr_pool_t *p);

/* A cluster's seeds as the URI writes them: host:port,host:port... */
const char *ss_redis_seeds(const ss_redis_config_t *cfg, apr_pool_t *p);

#endif
