/* ss_redis_tls.c - the OpenSSL client context of a rediss:// store, and the
 * start-up check of its files. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ss_redis_tls.h"

const char *ss_redis_tls_version_name(int version)
{
    return version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2";
}

int ss_redis_tls_is_ip(const char *s)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* The reason of the last OpenSSL error, emptying the queue. */
static const char *ssl_reason(apr_pool_t *p)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    if (r) {
        return apr_pstrdup(p, r);
    }
    if (e) {
        char buf[256];

        ERR_error_string_n(e, buf, sizeof(buf));
        return apr_pstrdup(p, buf);
    }
    return "unknown error";
}

/* A file the process cannot read is said in plain words before OpenSSL's. */
static const char *readable(const char *option, const char *path, int dir, apr_pool_t *p)
{
    struct stat st;
    int bad = stat(path, &st);

    if (!bad && (dir ? !S_ISDIR(st.st_mode) : S_ISDIR(st.st_mode))) {
        return apr_psprintf(p, "%s %s: %s", option, path,
                            dir ? "not a directory" : "a directory, not a file");
    }
    if (bad || access(path, dir ? R_OK | X_OK : R_OK)) {
        char buf[128];

        return apr_psprintf(p, "%s %s: %s", option, path,
                            apr_strerror(APR_FROM_OS_ERROR(errno), buf, sizeof(buf)));
    }
    return NULL;
}

static const char *load_trust(SSL_CTX *ctx, const ss_redis_config_t *cfg, apr_pool_t *p)
{
    const char *err;

    if (cfg->tls_ca_file) {
        err = readable("tls_ca_file", cfg->tls_ca_file, 0, p);
        if (err) {
            return err;
        }
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) != 1) {
            return apr_psprintf(p, "tls_ca_file %s: no CA certificate loaded: %s", cfg->tls_ca_file,
                                ssl_reason(p));
        }
    }
    if (cfg->tls_ca_dir) {
        err = readable("tls_ca_dir", cfg->tls_ca_dir, 1, p);
        if (err) {
            return err;
        }
        if (SSL_CTX_load_verify_locations(ctx, NULL, cfg->tls_ca_dir) != 1) {
            return apr_psprintf(p, "tls_ca_dir %s: %s", cfg->tls_ca_dir, ssl_reason(p));
        }
    }
    if (!cfg->tls_ca_file && !cfg->tls_ca_dir && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return apr_psprintf(p, "cannot load the system's trusted CAs: %s", ssl_reason(p));
    }
    return NULL;
}

static const char *load_identity(SSL_CTX *ctx, const ss_redis_config_t *cfg, apr_pool_t *p)
{
    const char *err;

    if (!cfg->tls_cert_file) {
        return NULL;
    }
    err = readable("tls_cert_file", cfg->tls_cert_file, 0, p);
    if (err) {
        return err;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        return apr_psprintf(p, "tls_cert_file %s: %s", cfg->tls_cert_file, ssl_reason(p));
    }
    err = readable("tls_key_file", cfg->tls_key_file, 0, p);
    if (err) {
        return err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
        return apr_psprintf(p, "tls_key_file %s: %s", cfg->tls_key_file, ssl_reason(p));
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        return apr_psprintf(p, "tls_key_file %s is not the key of tls_cert_file %s",
                            cfg->tls_key_file, cfg->tls_cert_file);
    }
    return NULL;
}

const char *ss_redis_tls_ctx(SSL_CTX **out, const ss_redis_config_t *cfg, apr_pool_t *p)
{
    SSL_CTX *ctx;
    const char *err;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        return apr_psprintf(p, "cannot create a TLS context: %s", ssl_reason(p));
    }
    SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_version);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A peer that closes without close_notify is an EOF, as over TCP. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    SSL_CTX_set_verify(
        ctx, cfg->tls_verify == SS_REDIS_TLS_VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    err = load_trust(ctx, cfg, p);
    if (!err) {
        err = load_identity(ctx, cfg, p);
    }
    if (err) {
        SSL_CTX_free(ctx);
        return err;
    }
    *out = ctx;
    return NULL;
}

const char *ss_redis_check(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    SSL_CTX *ctx = NULL;
    const char *err;

    if (!cfg->tls) {
        return NULL;
    }
    err = ss_redis_tls_ctx(&ctx, cfg, p);
    if (ctx) {
        SSL_CTX_free(ctx);
    }
    return err;
}
