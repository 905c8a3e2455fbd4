/* ss_redis_uri.c - the Redis URI: parse it into a config, describe a config
 * back (password masked) for logs and status pages.
 *
 * An error message quotes nothing of a URI that holds a password (an '@' or
 * a password= parameter): a password with an unencoded '/', '?' or '&' is
 * split across the host, the path and the query, so any part of them may be
 * a piece of it. Otherwise it quotes a bad value, escaped, never a host. */
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_redis_config.h"
#include "ss_redis_tls.h"

#define MS_MAX 60000
#define MAX_IDLE_MAX 1024
#define MAX_AGE_MAX 86400
#define DB_MAX 2147483647L
#define QUOTE_MAX 64
#define HOST_MAX 253
#define LABEL_MAX 63

enum {
    P_CONNECT_TIMEOUT,
    P_COMMAND_TIMEOUT,
    P_BREAKER,
    P_PREFIX,
    P_DB,
    P_USER,
    P_PASSWORD,
    P_MAX_IDLE,
    P_MAX_AGE,
    P_WAIT,
    P_SENTINEL_USER,
    P_SENTINEL_PASSWORD,
    P_TLS_CA_FILE, /* the first tls_* one */
    P_TLS_CA_DIR,
    P_TLS_CERT_FILE,
    P_TLS_KEY_FILE,
    P_TLS_SERVER_NAME,
    P_TLS_VERIFY,
    P_TLS_PROTOCOLS,
    P_COUNT
};

static const char *const param_names[P_COUNT] = {"connect_timeout",
                                                 "command_timeout",
                                                 "breaker",
                                                 "prefix",
                                                 "db",
                                                 "user",
                                                 "password",
                                                 "max_idle",
                                                 "max_age",
                                                 "wait",
                                                 "sentinel_user",
                                                 "sentinel_password",
                                                 "tls_ca_file",
                                                 "tls_ca_dir",
                                                 "tls_cert_file",
                                                 "tls_key_file",
                                                 "tls_server_name",
                                                 "tls_verify",
                                                 "tls_protocols"};

static const char *const verify_names[] = {"full", "ca", "none"};

typedef struct {
    ss_redis_config_t *cfg;
    apr_pool_t *p;
    unsigned seen; /* bit per param: from the query, the path or the userinfo */
    int quiet;     /* the URI may hold a password: quote nothing of it */
} parse_t;

/* " 'value'" for a message: at most QUOTE_MAX bytes, anything but printable
 * ASCII as \xNN. Empty when the URI may hold a password. */
static const char *quote(const parse_t *ps, const char *value)
{
    char *buf, *o;
    int n;

    if (ps->quiet) {
        return "";
    }
    buf = apr_palloc(ps->p, QUOTE_MAX * 4 + 8);
    o = apr_cpystrn(buf, " '", 3);
    for (n = 0; *value && n < QUOTE_MAX; value++, n++) {
        unsigned char c = (unsigned char)*value;

        if (c >= 0x20 && c < 0x7f) {
            *o++ = (char)c;
        } else {
            o += apr_snprintf(o, 5, "\\x%02X", c);
        }
    }
    apr_cpystrn(o, *value ? "...'" : "'", 5);
    return buf;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = apr_tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..len) into *out. A %00 is refused: it would cut the
 * string short. */
static const char *pct_decode(const char *s, apr_size_t len, const char *what, apr_pool_t *p,
                              const char **out)
{
    char *buf = apr_palloc(p, len + 1), *o = buf;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (i + 2 >= len || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0 ||
            (s[i + 1] == '0' && s[i + 2] == '0')) {
            return apr_psprintf(p, "bad percent-encoding in the %s", what);
        }
        *o++ = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
        i += 2;
    }
    *o = '\0';
    *out = buf;
    return NULL;
}

/* A decimal in [min, max], digits only. */
static int parse_number(const char *s, long min, long max, long *out)
{
    apr_int64_t v = 0;

    if (!*s || strlen(s) > 10) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isdigit(*s)) {
            return 0;
        }
        v = v * 10 + (*s - '0');
    }
    if (v < min || v > max) {
        return 0;
    }
    *out = (long)v;
    return 1;
}

static const char *mark_seen(parse_t *ps, int param)
{
    if (ps->seen & (1u << param)) {
        return apr_psprintf(ps->p, "%s given twice", param_names[param]);
    }
    ps->seen |= 1u << param;
    return NULL;
}

static const char *set_ms(parse_t *ps, int param, const char *value, long min,
                          apr_interval_time_t *out)
{
    long v;

    if (!parse_number(value, min, MS_MAX, &v)) {
        return apr_psprintf(ps->p, "bad %s%s: expected milliseconds, %ld..%d", param_names[param],
                            quote(ps, value), min, MS_MAX);
    }
    *out = apr_time_from_msec(v);
    return NULL;
}

/* where: "" (the query) or " in the path". */
static const char *set_db(parse_t *ps, const char *value, const char *where)
{
    long v;

    if (!parse_number(value, 0, DB_MAX, &v)) {
        return apr_psprintf(ps->p, "bad db%s%s: expected 0..%ld", quote(ps, value), where, DB_MAX);
    }
    ps->cfg->db = (int)v;
    return NULL;
}

static const char *set_prefix(parse_t *ps, const char *value)
{
    if (strlen(value) > SS_REDIS_PREFIX_MAX) {
        return apr_psprintf(ps->p, "prefix longer than %d bytes", SS_REDIS_PREFIX_MAX);
    }
    ps->cfg->prefix = value;
    return NULL;
}

/* An absolute path (files are read at start-up, from wherever httpd runs). */
static const char *set_tls_path(parse_t *ps, int param, const char *value)
{
    ss_redis_config_t *cfg = ps->cfg;

    if (*value != '/') {
        return apr_psprintf(ps->p, "bad %s%s: expected an absolute path", param_names[param],
                            quote(ps, value));
    }
    switch (param) {
    case P_TLS_CA_FILE:
        cfg->tls_ca_file = value;
        break;
    case P_TLS_CA_DIR:
        cfg->tls_ca_dir = value;
        break;
    case P_TLS_CERT_FILE:
        cfg->tls_cert_file = value;
        break;
    default:
        cfg->tls_key_file = value;
        break;
    }
    return NULL;
}

static int valid_host(const char *s);

/* A DNS name, or an IPv4 or IPv6 address (no brackets). */
static const char *set_server_name(parse_t *ps, const char *value)
{
    struct in6_addr a6;

    if (!valid_host(value) && inet_pton(AF_INET6, value, &a6) != 1) {
        return apr_psprintf(ps->p, "bad tls_server_name%s: expected a DNS name or an address",
                            quote(ps, value));
    }
    ps->cfg->tls_server_name = value;
    return NULL;
}

/* N[,timeout_ms] */
static const char *set_wait(parse_t *ps, const char *value)
{
    const char *comma = strchr(value, ',');
    char *n = apr_pstrmemdup(ps->p, value, comma ? (apr_size_t)(comma - value) : strlen(value));
    long v;

    if (!parse_number(n, 1, SS_REDIS_WAIT_MAX, &v)) {
        return apr_psprintf(ps->p,
                            "bad wait%s: expected N[,timeout_ms], N the replicas to wait for, "
                            "1..%d",
                            quote(ps, value), SS_REDIS_WAIT_MAX);
    }
    ps->cfg->wait_replicas = (int)v;
    if (!comma) {
        return NULL;
    }
    if (!parse_number(comma + 1, 1, MS_MAX, &v)) {
        return apr_psprintf(ps->p, "bad wait%s: expected N[,timeout_ms], timeout_ms 1..%d",
                            quote(ps, value), MS_MAX);
    }
    ps->cfg->wait_timeout = apr_time_from_msec(v);
    return NULL;
}

static const char *set_param(parse_t *ps, int param, const char *value)
{
    ss_redis_config_t *cfg = ps->cfg;
    long v;

    switch (param) {
    case P_CONNECT_TIMEOUT:
        return set_ms(ps, param, value, 1, &cfg->connect_timeout);
    case P_COMMAND_TIMEOUT:
        return set_ms(ps, param, value, 1, &cfg->command_timeout);
    case P_BREAKER:
        return set_ms(ps, param, value, 0, &cfg->breaker);
    case P_PREFIX:
        return set_prefix(ps, value);
    case P_DB:
        return set_db(ps, value, "");
    case P_USER:
        cfg->user = *value ? value : NULL;
        return NULL;
    case P_PASSWORD:
        if (!*value) {
            return "empty password";
        }
        cfg->password = value;
        return NULL;
    case P_MAX_IDLE:
        if (!parse_number(value, 0, MAX_IDLE_MAX, &v)) {
            return apr_psprintf(ps->p, "bad max_idle%s: expected 0..%d", quote(ps, value),
                                MAX_IDLE_MAX);
        }
        cfg->max_idle = (int)v;
        return NULL;
    case P_MAX_AGE:
        if (!parse_number(value, 0, MAX_AGE_MAX, &v)) {
            return apr_psprintf(ps->p, "bad max_age%s: expected seconds, 0..%d", quote(ps, value),
                                MAX_AGE_MAX);
        }
        cfg->max_age = apr_time_from_sec(v);
        return NULL;
    case P_WAIT:
        return set_wait(ps, value);
    case P_SENTINEL_USER:
        cfg->sentinel_user = *value ? value : NULL;
        return NULL;
    case P_SENTINEL_PASSWORD:
        if (!*value) {
            return "empty sentinel_password";
        }
        cfg->sentinel_password = value;
        return NULL;
    case P_TLS_CA_FILE:
    case P_TLS_CA_DIR:
    case P_TLS_CERT_FILE:
    case P_TLS_KEY_FILE:
        return set_tls_path(ps, param, value);
    case P_TLS_SERVER_NAME:
        return set_server_name(ps, value);
    case P_TLS_VERIFY:
        for (v = 0; v < 3; v++) {
            if (!strcmp(value, verify_names[v])) {
                cfg->tls_verify = (ss_redis_tls_verify_e)v;
                return NULL;
            }
        }
        return apr_psprintf(ps->p, "bad tls_verify%s: expected full, ca or none", quote(ps, value));
    case P_TLS_PROTOCOLS:
        if (!strcasecmp(value, "TLSv1.2")) {
            cfg->tls_min_version = TLS1_2_VERSION;
        } else if (!strcasecmp(value, "TLSv1.3")) {
            cfg->tls_min_version = TLS1_3_VERSION;
        } else {
            return apr_psprintf(ps->p,
                                "bad tls_protocols%s: expected the oldest version allowed, "
                                "TLSv1.2 or TLSv1.3",
                                quote(ps, value));
        }
        return NULL;
    }
    return "internal error: unhandled parameter";
}

/* The pos'th name=value pair of the query (from 1). */
static const char *parse_pair(parse_t *ps, const char *pair, int pos)
{
    const char *eq = strchr(pair, '='), *value, *err, *which;
    char *name;
    int i;

    which = ps->quiet ? apr_psprintf(ps->p, " %d", pos) : NULL;
    if (!eq) {
        return apr_psprintf(ps->p, "parameter%s needs a value (name=value)",
                            which ? which : quote(ps, pair));
    }
    name = apr_pstrmemdup(ps->p, pair, eq - pair);
    for (i = 0; i < P_COUNT && strcmp(name, param_names[i]); i++) {
    }
    if (i == P_COUNT) {
        return apr_psprintf(ps->p,
                            "unknown parameter%s (known: connect_timeout, command_timeout, "
                            "breaker, prefix, db, user, password, max_idle, max_age; with "
                            "rediss://: tls_ca_file, tls_ca_dir, tls_cert_file, tls_key_file, "
                            "tls_server_name, tls_verify, tls_protocols)",
                            which ? which : quote(ps, name));
    }
    err = pct_decode(eq + 1, strlen(eq + 1), name, ps->p, &value);
    if (!err) {
        err = mark_seen(ps, i);
    }
    return err ? err : set_param(ps, i, value);
}

static const char *parse_query(parse_t *ps, const char *query)
{
    char *copy = apr_pstrdup(ps->p, query), *last, *pair;
    int pos = 0;

    for (pair = apr_strtok(copy, "&", &last); pair; pair = apr_strtok(NULL, "&", &last)) {
        const char *err = parse_pair(ps, pair, ++pos);
        if (err) {
            return err;
        }
    }
    return NULL;
}

/* [user:]password, as redis-cli reads it: no colon means a password alone. */
static const char *parse_userinfo(parse_t *ps, const char *s, apr_size_t len)
{
    const char *colon = memchr(s, ':', len), *user = NULL, *password, *err;
    apr_size_t plen = colon ? len - (colon - s) - 1 : len;

    if (colon && colon > s) {
        err = pct_decode(s, colon - s, "user", ps->p, &user);
        if (err) {
            return err;
        }
    }
    err = pct_decode(colon ? colon + 1 : s, plen, "password", ps->p, &password);
    if (err) {
        return err;
    }
    if (!*password) {
        return "empty password";
    }
    ps->cfg->user = user;
    ps->cfg->password = password;
    ps->seen |= (user ? 1u << P_USER : 0) | 1u << P_PASSWORD;
    return NULL;
}

static const char *parse_port(parse_t *ps, const char *s)
{
    long v;

    if (!parse_number(s, 1, 65535, &v)) {
        /* Not echoed: in "redis://user:secret" (no "@host") it is the password. */
        return "bad port: expected 1..65535";
    }
    ps->cfg->port = (int)v;
    return NULL;
}

/* A DNS name (letters, digits, '-' and, as /etc/hosts and container names
 * allow, '_'; labels of 1..63, 253 in all, an optional final dot) or, when
 * the last label is all digits, a dotted-quad IPv4 address. */
static int valid_host(const char *s)
{
    struct in_addr a4;
    apr_size_t len = strlen(s), label = 0, i;
    int digits = 1;

    if (len && s[len - 1] == '.') {
        len--;
    }
    if (!len || len > HOST_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (!label || s[i - 1] == '-') {
                return 0;
            }
            label = 0;
            digits = 1;
            continue;
        }
        if (!(apr_isalnum(c) || c == '_' || (c == '-' && label)) || ++label > LABEL_MAX) {
            return 0;
        }
        digits = digits && apr_isdigit(c);
    }
    if (s[len - 1] == '-') {
        return 0;
    }
    return !digits || (len == strlen(s) && inet_pton(AF_INET, s, &a4) == 1);
}

/* The inside of [...]: an IPv6 address, optionally with a zone
 * (fe80::1%25eth0, RFC 6874), kept decoded (fe80::1%eth0) for getaddrinfo. */
static const char *parse_ipv6(parse_t *ps, const char *s, apr_size_t len)
{
    static const char bad[] = "bad IPv6 address in brackets: expected [address] or "
                              "[address%25zone]";
    struct in6_addr a6;
    const char *host, *zone;
    char *addr;

    if (pct_decode(s, len, "IPv6 address", ps->p, &host)) {
        return bad;
    }
    zone = strchr(host, '%');
    addr = apr_pstrmemdup(ps->p, host, zone ? (apr_size_t)(zone - host) : strlen(host));
    if (inet_pton(AF_INET6, addr, &a6) != 1) {
        return bad;
    }
    if (zone) {
        for (zone++; apr_isalnum(*zone) || (*zone && strchr("-._~", *zone)); zone++) {
        }
        if (*zone || zone[-1] == '%') {
            return bad;
        }
    }
    ps->cfg->host = host;
    return NULL;
}

/* host, host:port, [v6], [v6]:port. The host is never quoted: it may hold
 * control characters, or a piece of a password. */
static const char *parse_hostport(parse_t *ps, const char *s)
{
    const char *colon;

    if (*s == '[') {
        const char *close = strchr(s, ']'), *err;

        if (!close) {
            return "bad IPv6 address: expected [address]";
        }
        err = parse_ipv6(ps, s + 1, close - s - 1);
        if (err || !close[1]) {
            return err;
        }
        return close[1] == ':' ? parse_port(ps, close + 2) : "unexpected text after ']'";
    }
    colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) {
        return "an IPv6 address must be written in brackets: redis://[::1]:6379";
    }
    if (colon == s || !*s) {
        return "missing host";
    }
    ps->cfg->host = colon ? apr_pstrmemdup(ps->p, s, colon - s) : s;
    if (!valid_host(ps->cfg->host)) {
        return "bad host: expected a DNS name or an IPv4 address (an IPv6 address goes in "
               "brackets)";
    }
    return colon ? parse_port(ps, colon + 1) : NULL;
}

/* host[:port][,host[:port]...]: the seeds of a cluster. */
static const char *parse_seeds(parse_t *ps, const char *s)
{
    ss_redis_config_t *cfg = ps->cfg;
    ss_redis_addr_t *seeds = apr_pcalloc(ps->p, sizeof(*seeds) * SS_REDIS_SEEDS_MAX);
    char *copy = apr_pstrdup(ps->p, s), *next;

    cfg->nseeds = 0;
    for (; copy; copy = next) {
        const char *err;

        next = strchr(copy, ',');
        if (next) {
            *next++ = '\0';
        }
        if (cfg->nseeds == SS_REDIS_SEEDS_MAX) {
            return apr_psprintf(ps->p, "more than %d seed nodes", SS_REDIS_SEEDS_MAX);
        }
        cfg->port = SS_REDIS_DEFAULT_PORT;
        err = parse_hostport(ps, copy);
        if (err) {
            return apr_psprintf(ps->p, "seed node %d: %s", cfg->nseeds + 1, err);
        }
        seeds[cfg->nseeds].host = cfg->host;
        seeds[cfg->nseeds++].port = cfg->port;
    }
    cfg->seeds = seeds;
    cfg->host = seeds[0].host;
    cfg->port = seeds[0].port;
    return NULL;
}

/* [userinfo@]host[:port][/db], or for a cluster [userinfo@]seeds[/] */
static const char *parse_tcp(parse_t *ps, const char *s)
{
    const char *slash = strchr(s, '/'), *at, *err;
    char *authority = slash ? apr_pstrmemdup(ps->p, s, slash - s) : apr_pstrdup(ps->p, s);

    at = strrchr(authority, '@');
    if (at) {
        err = parse_userinfo(ps, authority, at - authority);
        if (err) {
            return err;
        }
    }
    err = ps->cfg->cluster ? parse_seeds(ps, at ? at + 1 : authority)
                           : parse_hostport(ps, at ? at + 1 : authority);
    if (err || !slash || !slash[1]) {
        return err;
    }
    if (ps->cfg->cluster) {
        return "a Redis Cluster has only db 0: no /db in a redis-cluster:// URI";
    }
    ps->seen |= 1u << P_DB; /* the query comes later: a db there is a duplicate */
    return set_db(ps, slash + 1, " in the path");
}

/* One sentinel, host[:port] or [v6][:port], into the list. */
static const char *parse_sentinel(parse_t *ps, const char *s, int pos, ss_redis_addr_t *out)
{
    const char *err;

    if (!*s) {
        return apr_psprintf(ps->p, "empty sentinel address %d (two commas, or one at an end?)",
                            pos);
    }
    ps->cfg->port = SS_REDIS_DEFAULT_SENTINEL_PORT;
    err = parse_hostport(ps, s);
    if (err) {
        return apr_psprintf(ps->p, "sentinel %d: %s", pos, err);
    }
    out->host = ps->cfg->host;
    out->port = ps->cfg->port;
    ps->cfg->host = NULL;
    ps->cfg->port = 0;
    return NULL;
}

/* The master's name as the sentinels know it: printable, no space. */
static const char *parse_master(parse_t *ps, const char *s, apr_size_t len)
{
    const char *name, *c;

    if (!len) {
        return "missing master name: expected redis-sentinel://host:port[,host:port...]/MASTER"
               "[/db]";
    }
    if (pct_decode(s, len, "master name", ps->p, &name)) {
        return "bad percent-encoding in the master name";
    }
    for (c = name; *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f) {
            return apr_psprintf(ps->p, "bad master name%s: printable characters only, no space",
                                quote(ps, name));
        }
    }
    ps->cfg->sentinel_master = name;
    return NULL;
}

/* [userinfo@]host[:port][,host[:port]...]/MASTER[/db] */
static const char *parse_sentinels(parse_t *ps, const char *s)
{
    const char *slash = strchr(s, '/'), *at, *name, *db, *err;
    char *authority, *list, *item, *last;
    ss_redis_addr_t *addrs;
    int n = 0;

    if (!slash) {
        return "missing master name: expected redis-sentinel://host:port[,host:port...]/MASTER"
               "[/db]";
    }
    authority = apr_pstrmemdup(ps->p, s, slash - s);
    at = strrchr(authority, '@');
    if (at) {
        err = parse_userinfo(ps, authority, at - authority);
        if (err) {
            return err;
        }
    }
    list = apr_pstrdup(ps->p, at ? at + 1 : authority);
    if (!*list) {
        return "missing sentinel address: expected redis-sentinel://host:port[,host:port...]"
               "/MASTER";
    }
    addrs = apr_pcalloc(ps->p, sizeof(*addrs) * SS_REDIS_SENTINEL_MAX);
    /* apr_strtok would skip empty items: walk the commas by hand. */
    for (item = list;; item = last + 1) {
        last = strchr(item, ',');
        if (last) {
            *last = '\0';
        }
        if (n == SS_REDIS_SENTINEL_MAX) {
            return apr_psprintf(ps->p, "more than %d sentinels", SS_REDIS_SENTINEL_MAX);
        }
        err = parse_sentinel(ps, item, n + 1, &addrs[n]);
        if (err) {
            return err;
        }
        n++;
        if (!last) {
            break;
        }
    }
    ps->cfg->sentinels = addrs;
    ps->cfg->nsentinels = n;
    name = slash + 1;
    db = strchr(name, '/');
    err = parse_master(ps, name, db ? (apr_size_t)(db - name) : strlen(name));
    if (err || !db || !db[1]) {
        return err;
    }
    ps->seen |= 1u << P_DB;
    return set_db(ps, db + 1, " in the path");
}

static const char *parse_unix(parse_t *ps, const char *s)
{
    if (*s != '/') {
        return "expected an absolute socket path: unix:///path/to/redis.sock";
    }
    if (!s[1]) {
        return "missing socket path";
    }
    return pct_decode(s, strlen(s), "socket path", ps->p, &ps->cfg->path);
}

static void set_defaults(ss_redis_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = SS_REDIS_DEFAULT_PORT;
    cfg->prefix = SS_REDIS_DEFAULT_PREFIX;
    cfg->connect_timeout = apr_time_from_msec(SS_REDIS_DEFAULT_CONNECT_TIMEOUT_MS);
    cfg->command_timeout = apr_time_from_msec(SS_REDIS_DEFAULT_COMMAND_TIMEOUT_MS);
    cfg->breaker = apr_time_from_msec(SS_REDIS_DEFAULT_BREAKER_MS);
    cfg->max_idle = SS_REDIS_DEFAULT_MAX_IDLE;
    cfg->max_age = apr_time_from_sec(SS_REDIS_DEFAULT_MAX_AGE_S);
    cfg->tls_verify = SS_REDIS_TLS_VERIFY_FULL;
    cfg->tls_min_version = TLS1_2_VERSION;
    cfg->wait_timeout = apr_time_from_msec(SS_REDIS_DEFAULT_WAIT_TIMEOUT_MS);
}

/* sentinel_* options belong to a Sentinel URI, a user to a password. */
static const char *check_sentinel(const parse_t *ps)
{
    const ss_redis_config_t *cfg = ps->cfg;

    if (!cfg->sentinel_master && (ps->seen & (1u << P_SENTINEL_USER | 1u << P_SENTINEL_PASSWORD))) {
        return "sentinel_user and sentinel_password need a redis-sentinel:// or "
               "rediss-sentinel:// URI";
    }
    if (cfg->sentinel_user && !cfg->sentinel_password) {
        return "a sentinel_user needs a sentinel_password";
    }
    return NULL;
}

/* The tls_* parameters belong to rediss://, and go together as they must. */
static const char *check_tls(const parse_t *ps, int is_unix)
{
    const ss_redis_config_t *cfg = ps->cfg;
    int any = (ps->seen >> P_TLS_CA_FILE) != 0;

    if (is_unix && any) {
        return "TLS over a Unix socket is not supported: drop the tls_* parameters (the socket "
               "never leaves the host), or use rediss://host:port";
    }
    if (!cfg->tls && any && cfg->cluster) {
        return "tls_* parameters need a rediss-cluster:// URI (TLS); a redis-cluster:// URI is "
               "plain TCP";
    }
    if (!cfg->tls && any) {
        return "tls_* parameters need a rediss:// URI (TLS) or a rediss-sentinel:// one; "
               "redis:// and redis-sentinel:// are plain TCP";
    }
    if (!cfg->tls_cert_file != !cfg->tls_key_file) {
        return "tls_cert_file and tls_key_file go together (mutual TLS needs both)";
    }
    return NULL;
}

static int has_scheme(const char *uri, const char *scheme, const char **rest)
{
    apr_size_t n = strlen(scheme);

    if (strncasecmp(uri, scheme, n)) {
        return 0;
    }
    *rest = uri + n;
    return 1;
}

const char *ss_redis_parse(ss_redis_config_t **out, const char *uri, apr_pool_t *p)
{
    parse_t ps = {apr_palloc(p, sizeof(ss_redis_config_t)), p, 0, 0};
    const char *rest, *query, *err, *after;
    char *target;
    int is_unix, sentinel = 0;

    set_defaults(ps.cfg);
    if (has_scheme(uri, "redis://", &rest)) {
        is_unix = 0;
    } else if (has_scheme(uri, "redis-sentinel://", &rest)) {
        is_unix = 0;
        sentinel = 1;
    } else if (has_scheme(uri, "rediss-sentinel://", &rest)) {
        is_unix = 0;
        sentinel = 1;
        ps.cfg->tls = 1;
    } else if (has_scheme(uri, "rediss://", &rest)) {
        is_unix = 0;
        ps.cfg->tls = 1;
    } else if (has_scheme(uri, "redis-cluster://", &rest)) {
        is_unix = 0;
        ps.cfg->cluster = 1;
    } else if (has_scheme(uri, "rediss-cluster://", &rest)) {
        is_unix = 0;
        ps.cfg->cluster = 1;
        ps.cfg->tls = 1;
    } else if (has_scheme(uri, "unix://", &rest) || has_scheme(uri, "redis+unix://", &rest)) {
        is_unix = 1;
    } else if (has_scheme(uri, "rediss+unix://", &rest)) {
        return "TLS over a Unix socket is not supported: use unix:// (the socket never leaves "
               "the host) or rediss://host:port";
    } else {
        return "expected redis://[[user]:password@]host[:port][/db][?param=value&...], "
               "rediss://... (TLS), unix:///path/to/redis.sock[?param=value&...], "
               "redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db]"
               "[?param=value&...] (rediss-sentinel:// with TLS) or "
               "redis-cluster://[[user]:password@]host[:port][,host[:port]...][?param=value&...] "
               "(rediss-cluster:// with TLS)";
    }
    if (strchr(rest, '#')) {
        return "a '#' must be percent-encoded (%23)";
    }
    query = strchr(rest, '?');
    ps.quiet = strchr(rest, '@') || (query && strstr(query, "password="));
    /* "redis://u:pa/ss@h" or "redis://u:pa?ss@h": the '/' or '?' ends the
     * authority, so the host, port, db or options would be pieces of the
     * password; "redis://pa?prefix=x@h" would even parse. */
    after = is_unix ? NULL : strpbrk(rest, "/?");
    if (after && strchr(after, '@')) {
        return "an '@' after the host: a password (the part before '@') must percent-encode "
               "'/', '?' and '&' as %2F, %3F and %26; an '@' in the path or the options must "
               "be written %40";
    }
    target = query ? apr_pstrmemdup(p, rest, query - rest) : apr_pstrdup(p, rest);
    err = is_unix    ? parse_unix(&ps, target)
          : sentinel ? parse_sentinels(&ps, target)
                     : parse_tcp(&ps, target);
    if (!err && query) {
        err = parse_query(&ps, query + 1);
    }
    if (!err && ps.cfg->user && !ps.cfg->password) {
        err = "a user needs a password";
    }
    if (!err && ps.cfg->cluster && ps.cfg->db) {
        err = "a Redis Cluster has only db 0: no db= in a redis-cluster:// URI";
    }
    if (!err && ps.cfg->cluster && ps.cfg->wait_replicas) {
        err = "wait= is not supported with redis-cluster:// (WAIT would ask one master's "
              "replicas only)";
    }
    if (!err) {
        err = check_tls(&ps, is_unix);
    }
    if (!err) {
        err = check_sentinel(&ps);
    }
    if (err && query && strstr(query, "password=")) {
        err = apr_pstrcat(p, err,
                          " (nothing is quoted, as the URI holds a password; a password must "
                          "percent-encode '&' as %26)",
                          NULL);
    }
    if (err) {
        return err;
    }
    *out = ps.cfg;
    return NULL;
}

/* Percent-encode everything but unreserved characters and those in keep. */

static const char *pct_encode(const char *s, const char *keep, apr_pool_t *p)
{
    char *buf = apr_palloc(p, strlen(s) * 3 + 1), *o = buf;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (apr_isalnum(c) || strchr("-._~", c) || (c && strchr(keep, c))) {
            *o++ = (char)c;
        } else {
            o += apr_snprintf(o, 4, "%%%02X", c);
        }
    }
    *o = '\0';
    return buf;
}

/* host:port, an IPv6 address in brackets. */
static const char *host_port(const char *host, int port, apr_pool_t *p)
{
    if (strchr(host, ':')) {
        host = apr_pstrcat(p, "[", pct_encode(host, ":", p), "]", NULL);
    }
    return apr_psprintf(p, "%s:%d", host, port);
}

static const char *sentinel_target(const ss_redis_config_t *cfg, const char *user, apr_pool_t *p)
{
    const char *list = "";
    int i;

    for (i = 0; i < cfg->nsentinels; i++) {
        list = apr_pstrcat(p, list, i ? "," : "",
                           host_port(cfg->sentinels[i].host, cfg->sentinels[i].port, p), NULL);
    }
    return apr_psprintf(p, "%s://%s%s%s/%s/%d", cfg->tls ? "rediss-sentinel" : "redis-sentinel",
                        user, cfg->password ? ":***@" : "", list,
                        pct_encode(cfg->sentinel_master, "", p), cfg->db);
}

const char *ss_redis_seeds(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    const char *out = "";
    int i;

    for (i = 0; i < cfg->nseeds; i++) {
        out = apr_pstrcat(p, out, i ? "," : "",
                          host_port(cfg->seeds[i].host, cfg->seeds[i].port, p), NULL);
    }
    return out;
}

const char *ss_redis_target(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    const char *user = cfg->user ? pct_encode(cfg->user, "", p) : "";

    if (cfg->sentinel_master) {
        return sentinel_target(cfg, user, p);
    }
    if (cfg->path) {
        return apr_psprintf(p, "unix://%s?db=%d%s%s%s", pct_encode(cfg->path, "/", p), cfg->db,
                            cfg->user ? "&user=" : "", user, cfg->password ? "&password=***" : "");
    }
    if (cfg->cluster) {
        return apr_pstrcat(p, cfg->tls ? "rediss-cluster://" : "redis-cluster://", user,
                           cfg->password ? ":***@" : "", ss_redis_seeds(cfg, p), NULL);
    }
    return apr_psprintf(p, "%s://%s%s%s/%d", cfg->tls ? "rediss" : "redis", user,
                        cfg->password ? ":***@" : "", host_port(cfg->host, cfg->port, p), cfg->db);
}

/* "&name=value" when value is set, percent-encoded. */
static const char *tls_opt(const char *name, const char *value, const char *keep, apr_pool_t *p)
{
    return value ? apr_pstrcat(p, "&", name, "=", pct_encode(value, keep, p), NULL) : "";
}

/* The TLS options, every one that is set and the two defaults spelled out;
 * file names only, never what they hold. */
static const char *describe_tls(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    if (!cfg->tls) {
        return "";
    }
    return apr_pstrcat(p, "&tls_verify=", verify_names[cfg->tls_verify],
                       "&tls_protocols=", ss_redis_tls_version_name(cfg->tls_min_version),
                       tls_opt("tls_ca_file", cfg->tls_ca_file, "/", p),
                       tls_opt("tls_ca_dir", cfg->tls_ca_dir, "/", p),
                       tls_opt("tls_cert_file", cfg->tls_cert_file, "/", p),
                       tls_opt("tls_key_file", cfg->tls_key_file, "/", p),
                       tls_opt("tls_server_name", cfg->tls_server_name, ":", p), NULL);
}

/* wait and the sentinel_* options, when set. */
static const char *describe_ha(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    const char *wait = "";

    if (cfg->wait_replicas) {
        wait = apr_psprintf(p, "&wait=%d,%" APR_TIME_T_FMT, cfg->wait_replicas,
                            apr_time_as_msec(cfg->wait_timeout));
    }
    return apr_pstrcat(p, wait, tls_opt("sentinel_user", cfg->sentinel_user, "", p),
                       cfg->sentinel_password ? "&sentinel_password=***" : "", NULL);
}

const char *ss_redis_describe(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    return apr_psprintf(
        p,
        "%s%sconnect_timeout=%" APR_TIME_T_FMT "&command_timeout=%" APR_TIME_T_FMT
        "&breaker=%" APR_TIME_T_FMT "&prefix=%s&max_idle=%d&max_age=%" APR_TIME_T_FMT "%s%s",
        ss_redis_target(cfg, p), cfg->path ? "&" : "?", apr_time_as_msec(cfg->connect_timeout),
        apr_time_as_msec(cfg->command_timeout), apr_time_as_msec(cfg->breaker),
        pct_encode(cfg->prefix, ":", p), cfg->max_idle, apr_time_sec(cfg->max_age),
        describe_ha(cfg, p), describe_tls(cfg, p));
}
