/* fuzz_uri.c - the backend URI parser (ss_redis_parse) and what is built
 * from its result (ss_redis_describe, ss_redis_target).
 *
 * Input: a SessionStoreBackend value, any form (redis://, rediss://,
 * unix://, redis+unix://, redis-sentinel://, rediss-sentinel://,
 * redis-cluster://, rediss-cluster://, and whatever forms the parser
 * grows). Checks
 * (ss_redis_config.h promises them): an error is a non-empty message; a
 * parsed configuration describes itself without its passwords (the data
 * nodes' and the sentinels'), and that description, with the passwords put
 * back percent-encoded for "***", parses to the same configuration; the target line is a prefix of
 * the description. */
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "ss_redis_config.h"

/* Put in place of a parsed password: no URI can make it appear otherwise. */
#define PASSWORD_MARK "\x01password-mark\x02"
#define SENTINEL_MASK "&sentinel_password=***"

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static const char *pct(const char *s, apr_pool_t *p)
{
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;

    for (; *s; s++) {
        o += apr_snprintf(o, 4, "%%%02X", (unsigned char)*s);
    }
    *o = '\0';
    return out;
}

static void check_same(const ss_redis_config_t *a, const ss_redis_config_t *b, const char *d)
{
    int i;

    FUZZ_CHECK(same_str(a->host, b->host) && a->port == b->port && same_str(a->path, b->path),
               "the endpoint changed through '%s'", d);
    FUZZ_CHECK(same_str(a->user, b->user) && same_str(a->password, b->password),
               "the credentials changed through '%s'", d);
    FUZZ_CHECK(a->db == b->db && same_str(a->prefix, b->prefix), "db or prefix changed: '%s'", d);
    FUZZ_CHECK(a->connect_timeout == b->connect_timeout &&
                   a->command_timeout == b->command_timeout && a->breaker == b->breaker &&
                   a->max_idle == b->max_idle && a->max_age == b->max_age,
               "a timeout or pool setting changed through '%s'", d);
    FUZZ_CHECK(a->wait_replicas == b->wait_replicas && a->wait_timeout == b->wait_timeout,
               "wait changed through '%s'", d);
    FUZZ_CHECK(same_str(a->sentinel_master, b->sentinel_master) && a->nsentinels == b->nsentinels &&
                   same_str(a->sentinel_user, b->sentinel_user) &&
                   same_str(a->sentinel_password, b->sentinel_password),
               "a Sentinel setting changed through '%s'", d);
    for (i = 0; i < a->nsentinels; i++) {
        FUZZ_CHECK(!strcmp(a->sentinels[i].host, b->sentinels[i].host) &&
                       a->sentinels[i].port == b->sentinels[i].port,
                   "sentinel %d changed through '%s'", i, d);
    }
    FUZZ_CHECK(a->cluster == b->cluster && a->nseeds == b->nseeds,
               "a cluster setting changed through '%s'", d);
    for (i = 0; i < a->nseeds; i++) {
        FUZZ_CHECK(!strcmp(a->seeds[i].host, b->seeds[i].host) &&
                       a->seeds[i].port == b->seeds[i].port,
                   "seed %d changed through '%s'", i, d);
    }
    FUZZ_CHECK(a->tls == b->tls && a->tls_verify == b->tls_verify &&
                   a->tls_min_version == b->tls_min_version &&
                   same_str(a->tls_ca_file, b->tls_ca_file) &&
                   same_str(a->tls_ca_dir, b->tls_ca_dir) &&
                   same_str(a->tls_cert_file, b->tls_cert_file) &&
                   same_str(a->tls_key_file, b->tls_key_file) &&
                   same_str(a->tls_server_name, b->tls_server_name),
               "a TLS setting changed through '%s'", d);
}

static void check_parsed(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    const char *d = ss_redis_describe(cfg, p);
    const char *t = ss_redis_target(cfg, p);
    const char *mask, *again_err;
    ss_redis_config_t *again = NULL;

    FUZZ_CHECK(!strncmp(d, t, strlen(t)), "target '%s' does not start description '%s'", t, d);
    FUZZ_CHECK(cfg->host || cfg->path || cfg->sentinel_master, "no endpoint");
    if (cfg->password || cfg->sentinel_password) {
        ss_redis_config_t marked = *cfg;

        marked.password = cfg->password ? PASSWORD_MARK : NULL;
        marked.sentinel_password = cfg->sentinel_password ? PASSWORD_MARK : NULL;
        FUZZ_CHECK(!strstr(ss_redis_describe(&marked, p), PASSWORD_MARK) &&
                       !strstr(ss_redis_target(&marked, p), PASSWORD_MARK),
                   "a password shows in the description of '%s'", d);
    }
    /* Put the passwords back: the sentinels' where the option says, then the
     * data nodes' (the only other "***": everything else is encoded). */
    if (cfg->sentinel_password) {
        mask = strstr(d, SENTINEL_MASK);
        FUZZ_CHECK(mask != NULL, "no sentinel password mask in '%s'", d);
        d = apr_pstrcat(p, apr_pstrmemdup(p, d, (apr_size_t)(mask - d)),
                        "&sentinel_password=", pct(cfg->sentinel_password, p),
                        mask + strlen(SENTINEL_MASK), NULL);
    }
    mask = strstr(d, "***");
    FUZZ_CHECK((mask != NULL) == (cfg->password != NULL), "password mask in '%s'", d);
    if (cfg->password) {
        d = apr_pstrcat(p, apr_pstrmemdup(p, d, (apr_size_t)(mask - d)), pct(cfg->password, p),
                        mask + 3, NULL);
    }
    again_err = ss_redis_parse(&again, d, p);
    FUZZ_CHECK(again_err == NULL, "the description does not parse: %s", again_err);
    check_same(cfg, again, d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    const char *uri = apr_pstrmemdup(p, (const char *)data, size);
    ss_redis_config_t *cfg = NULL;
    const char *err = ss_redis_parse(&cfg, uri, p);

    if (err) {
        FUZZ_CHECK(*err != '\0', "an empty error message");
    } else {
        check_parsed(cfg, p);
    }
    apr_pool_destroy(p);
    return 0;
}
