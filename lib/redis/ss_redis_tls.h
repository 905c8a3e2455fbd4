/* ss_redis_tls.h - the OpenSSL client context of a rediss:// store
 * (internal): built from the tls_* options, every file loaded at once. */
#ifndef SS_REDIS_TLS_H
#define SS_REDIS_TLS_H

#include <openssl/ssl.h>

#include "ss_redis_config.h"

/* A new SSL_CTX for cfg (cfg->tls set): protocol floor, trust (the given CA
 * file or directory, else the system's), verification mode, client
 * certificate and key, a client session cache without internal store. NULL
 * on success, else a message naming the option and the file (never a key's
 * content). Free *ctx with SSL_CTX_free. */
const char *ss_redis_tls_ctx(SSL_CTX **ctx, const ss_redis_config_t *cfg, apr_pool_t *p);

/* The oldest protocol's name, as tls_protocols spells it. */
const char *ss_redis_tls_version_name(int version);

/* Whether s is an IPv4 or IPv6 address (then it is verified as an IP
 * address and never sent as SNI). */
int ss_redis_tls_is_ip(const char *s);

#endif
