/* ss_redis_transport.h - connections to one Redis endpoint (internal): a
 * non-blocking socket (TCP or Unix, optionally TLS with OpenSSL) driven by
 * poll(), with an absolute deadline on everything it does. hiredis serves
 * only to format commands (redisFormatCommandArgv) and to parse replies
 * (redisReader), which hiredis 0.14 and 1.x both offer.
 *
 * The endpoint (one per store) holds what every connection shares: the
 * addresses of the host, the SSL_CTX and the last TLS session, for
 * resumption. A transport is one connection, used by one thread at a time,
 * allocated with malloc when it opens and freed when it closes: nothing of it
 * stays behind in a pool.
 *
 * Deadlines. Every call takes an absolute deadline on ss_redis_clock(), a
 * monotonic clock, and fails with APR_TIMEUP when it passes, however the
 * peer trickles its bytes. The connection layer gives each operation one
 * deadline (ss_redis_conn.c):
 *
 *   - on a pooled connection: start + command_timeout;
 *   - when it must open one: start + connect_timeout + command_timeout, of
 *     which opening (name resolution, TCP or Unix connect, TLS handshake)
 *     may use at most connect_timeout; AUTH, SELECT and the command have
 *     what is left;
 *   - a retry on a fresh connection after a pooled one turned out dead (not
 *     timed out) keeps start + connect_timeout + command_timeout.
 *
 * So no operation takes longer than connect_timeout + command_timeout.
 *
 * Names. A host that is an IPv4 or IPv6 address is used as it is, without
 * the resolver. A name is resolved by getaddrinfo() in a detached thread,
 * waited for until a deadline, never longer: at ss_redis_endpoint_create
 * (bounded by connect_timeout) and when a connection opens, if the last
 * answer is older than SS_REDIS_RESOLVE_TTL. Then, with an earlier answer to
 * fall back on, the wait is at most half the time left to connect, and the
 * earlier answer is used when no new one comes. IPv4 addresses are tried
 * before IPv6 ones, each for whatever time is left to connect. */
#ifndef SS_REDIS_TRANSPORT_H
#define SS_REDIS_TRANSPORT_H

#include <hiredis.h>

#include "ss_redis_config.h"

/* The most elements an array in a reply may announce. hiredis allocates an
 * array's element pointers as soon as it reads the header, before any
 * element arrives, and 0.14 sets no bound: "*2147483647" would cost 16 GB.
 * A larger count is a protocol error. */
#define SS_REDIS_MAX_ELEMENTS 65536

/* Room for a failure's description. */
#define SS_REDIS_ERR_LEN 256

/* An answer this recent is used again without asking the resolver. */
#define SS_REDIS_RESOLVE_TTL apr_time_from_sec(1)

typedef struct ss_redis_endpoint_t ss_redis_endpoint_t;
typedef struct ss_redis_transport_t ss_redis_transport_t;

/* One command, binary-safe. */
typedef struct {
    int argc;
    const char *const *argv;
    const size_t *len;
} ss_redis_argv_t;

/* Microseconds on a monotonic clock: deadlines are on this clock. */
apr_time_t ss_redis_clock(void);

/* The endpoint for cfg (kept, not copied: it must live as long as p). With
 * TLS, builds the SSL_CTX, loading every file now (the caller may be root,
 * its children not); resolves a host name, with a bounded wait. On failure,
 * err says why, naming the option. Freed with p. */
apr_status_t ss_redis_endpoint_create(ss_redis_endpoint_t **ep, const ss_redis_config_t *cfg,
                                      apr_pool_t *p, char *err, apr_size_t errlen);

/* Another endpoint, for cfg (kept, not copied), sharing base's SSL_CTX, so
 * that no file is read again (a child may not be able to): the sentinels, and
 * the masters they name, use the options of the store's endpoint with another
 * host and port. Each keeps its own TLS session and addresses. No wait: a
 * host name is resolved when a connection opens. Freed with p. */
apr_status_t ss_redis_endpoint_derive(ss_redis_endpoint_t **ep, const ss_redis_endpoint_t *base,
                                      const ss_redis_config_t *cfg, apr_pool_t *p, char *err,
                                      apr_size_t errlen);

/* Open a connection: resolve (if due), connect, TLS handshake, all before
 * deadline. On failure *t is NULL and err says why; APR_TIMEUP when the
 * deadline passed. */
apr_status_t ss_redis_transport_open(ss_redis_transport_t **t, ss_redis_endpoint_t *ep,
                                     apr_time_t deadline, char *err, apr_size_t errlen);

/* Send n commands in one write, then read their n replies (free each with
 * freeReplyObject), all before deadline. On failure no reply is returned,
 * err says why, and the connection is unusable: close it. */
apr_status_t ss_redis_transport_call(ss_redis_transport_t *t, int n, const ss_redis_argv_t *cmds,
                                     redisReply **replies, apr_time_t deadline, char *err,
                                     apr_size_t errlen);

/* Whether this connection resumed an earlier TLS session. */
int ss_redis_transport_resumed(const ss_redis_transport_t *t);

/* Close and free, without a word to the peer (a TLS close_notify from a
 * forked child would break its parent's connection). NULL is fine. */
void ss_redis_transport_close(ss_redis_transport_t *t);

#endif
