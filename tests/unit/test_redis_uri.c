/* test_redis_uri.c - the Redis URI: parsing, validation, error messages that
 * never quote a password, and describe's output parsing back to the same
 * configuration. No server needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include <openssl/ssl.h>

#include "ss_redis_config.h"
#include "unit.h"

#define SEC apr_time_from_sec(1)
#define MS apr_time_from_msec(1)

/* The error for uri, failing the test when it parses. */
static const char *parse_err(const char *uri, apr_pool_t *pool)
{
    ss_redis_config_t *cfg = NULL;
    const char *err = ss_redis_parse(&cfg, uri, pool);

    if (!err) {
        fail_msg("%s: parsed, expected an error", uri);
    }
    assert_null(cfg);
    return err;
}

static ss_redis_config_t *parse_ok(const char *uri, apr_pool_t *pool)
{
    ss_redis_config_t *cfg = NULL;
    const char *err = ss_redis_parse(&cfg, uri, pool);

    if (err) {
        fail_msg("%s: unexpected error: %s", uri, err);
    }
    return cfg;
}

static void test_parse_defaults(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_config_t *cfg = parse_ok("redis://localhost", pool);

    assert_string_equal(cfg->host, "localhost");
    assert_null(cfg->path);
    assert_int_equal(cfg->port, 6379);
    assert_int_equal(cfg->db, 0);
    assert_null(cfg->user);
    assert_null(cfg->password);
    assert_string_equal(cfg->prefix, "sessstore:");
    assert_true(cfg->connect_timeout == 300 * MS);
    assert_true(cfg->command_timeout == 300 * MS);
    assert_true(cfg->breaker == 1000 * MS);
    assert_int_equal(cfg->max_idle, SS_REDIS_DEFAULT_MAX_IDLE);
    assert_int_equal(SS_REDIS_DEFAULT_MAX_IDLE, 64);
    assert_true(cfg->max_age == 300 * SEC);
}

static void test_parse_forms(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_config_t *cfg;

    cfg = parse_ok("redis://:p%40ss%2Fw%3a@10.0.0.1:6380/2?connect_timeout=50&command_timeout=75"
                   "&prefix=app%3As%26:&breaker=0&max_idle=4&max_age=0",
                   pool);
    assert_string_equal(cfg->password, "p@ss/w:");
    assert_null(cfg->user);
    assert_string_equal(cfg->host, "10.0.0.1");
    assert_int_equal(cfg->port, 6380);
    assert_int_equal(cfg->db, 2);
    assert_true(cfg->connect_timeout == 50 * MS);
    assert_true(cfg->command_timeout == 75 * MS);
    assert_string_equal(cfg->prefix, "app:s&:");
    assert_true(cfg->breaker == 0);
    assert_int_equal(cfg->max_idle, 4);
    assert_true(cfg->max_age == 0);

    cfg = parse_ok("redis://al%69ce:s%3Acr%25t@@[::1]:7000", pool);
    assert_string_equal(cfg->user, "alice");
    assert_string_equal(cfg->password, "s:cr%t@");
    assert_string_equal(cfg->host, "::1");
    assert_int_equal(cfg->port, 7000);

    cfg = parse_ok("redis://secret@cache.example/", pool);
    assert_null(cfg->user);
    assert_string_equal(cfg->password, "secret");
    assert_int_equal(cfg->db, 0);

    cfg = parse_ok("unix:///run/redis/redis%20a.sock?db=3&password=x%26y&user=bob", pool);
    assert_null(cfg->host);
    assert_string_equal(cfg->path, "/run/redis/redis a.sock");
    assert_int_equal(cfg->db, 3);
    assert_string_equal(cfg->password, "x&y");
    assert_string_equal(cfg->user, "bob");

    cfg = parse_ok("redis+unix:///tmp/r.sock", pool);
    assert_string_equal(cfg->path, "/tmp/r.sock");

    cfg = parse_ok("REDIS://h?db=5&prefix=", pool);
    assert_int_equal(cfg->db, 5);
    assert_string_equal(cfg->prefix, "");
}

static void test_parse_errors(void **state)
{
    apr_pool_t *pool = *state;
    static const struct {
        const char *uri, *error;
    } cases[] = {
        {"http://h", "expected redis://"},
        {"rediss+unix:///tmp/r.sock", "TLS over a Unix socket"},
        {"unix:///tmp/r.sock?tls_verify=full", "TLS over a Unix socket"},
        {"redis://h?tls_ca_file=/etc/ca.pem", "need a rediss:// URI"},
        {"redis://h?tls_verify=none", "need a rediss:// URI"},
        {"rediss://h?tls_verify=maybe", "bad tls_verify 'maybe'"},
        {"rediss://h?tls_verify=", "bad tls_verify"},
        {"rediss://h?tls_protocols=TLSv1.1", "bad tls_protocols 'TLSv1.1'"},
        {"rediss://h?tls_protocols=SSLv3", "bad tls_protocols"},
        {"rediss://h?tls_ca_file=ca.pem", "bad tls_ca_file 'ca.pem': expected an absolute path"},
        {"rediss://h?tls_ca_file=", "bad tls_ca_file"},
        {"rediss://h?tls_ca_dir=certs", "bad tls_ca_dir"},
        {"rediss://h?tls_cert_file=/c.pem", "tls_cert_file and tls_key_file go together"},
        {"rediss://h?tls_key_file=/k.pem", "tls_cert_file and tls_key_file go together"},
        {"rediss://h?tls_server_name=a%20b", "bad tls_server_name"},
        {"rediss://h?tls_server_name=", "bad tls_server_name"},
        {"rediss://h?tls_verify=ca&tls_verify=full", "tls_verify given twice"},
        {"rediss://h?tls_ca=/x", "unknown parameter 'tls_ca'"},
        {"redis-sentinel://s/m?tls_ca_file=/etc/ca.pem", "need a rediss:// URI"},
        {"rediss://:s3cret@h?tls_ca_file=x", "expected an absolute path"},
        {"redis://", "missing host"},
        {"redis://:6379", "missing host"},
        {"redis://h:0", "bad port"},
        {"redis://h:65536", "bad port"},
        {"redis://h:6a", "bad port"},
        {"redis://h:", "bad port"},
        {"redis://alice:s3cret", "bad port"},
        {"redis://h/x", "bad db"},
        {"redis://h/-1", "bad db"},
        {"redis://h/99999999999", "bad db"},
        {"redis://h/1?db=2", "db given twice"},
        {"redis://h?connect_timeout=0", "bad connect_timeout"},
        {"redis://h?connect_timeout=60001", "bad connect_timeout"},
        {"redis://h?command_timeout=", "bad command_timeout"},
        {"redis://h?command_timeout=1.5", "bad command_timeout"},
        {"redis://h?breaker=-1", "bad breaker"},
        {"redis://h?max_idle=2000", "bad max_idle"},
        {"redis://h?max_age=86401", "bad max_age"},
        {"redis://h?max_age=-1", "bad max_age"},
        {"redis://h?timeout=5", "unknown parameter 'timeout'"},
        {"redis://h?prefix", "needs a value"},
        {"redis://h?prefix=a&prefix=b", "prefix given twice"},
        {"redis://h?prefix=%zz", "bad percent-encoding in the prefix"},
        {"redis://:@h", "empty password"},
        {"redis://:s3cret%zz@h", "bad percent-encoding in the password"},
        {"redis://:s3cret%00@h", "bad percent-encoding in the password"},
        {"redis://:s3cret@h?password=s3cret", "password given twice"},
        {"redis://h?user=bob", "a user needs a password"},
        {"redis://::1", "brackets"},
        {"redis://[::1", "IPv6"},
        {"redis://[::1]x", "after ']'"},
        {"redis://h#s3cret", "'#'"},
        {"unix://relative/path", "absolute"},
        {"unix://", "absolute"},
        {"unix:///", "missing socket path"},
    };
    char long_prefix[200];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ss_redis_config_t *cfg = NULL;
        const char *err = ss_redis_parse(&cfg, cases[i].uri, pool);

        if (!err || !strstr(err, cases[i].error)) {
            fail_msg("%s: expected an error with \"%s\", got %s", cases[i].uri, cases[i].error,
                     err ? err : "success");
        }
        assert_null(strstr(err, "s3cret"));
        assert_null(cfg);
    }
    memset(long_prefix, 'x', sizeof(long_prefix) - 1);
    long_prefix[sizeof(long_prefix) - 1] = '\0';
    assert_non_null(
        strstr(ss_redis_parse(&(ss_redis_config_t *){NULL},
                              apr_pstrcat(pool, "redis://h?prefix=", long_prefix, NULL), pool),
               "prefix longer"));
}

static void test_parse_tls(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_config_t *cfg = parse_ok("rediss://h", pool);

    assert_int_equal(cfg->tls, 1);
    assert_string_equal(cfg->host, "h");
    assert_int_equal(cfg->port, 6379);
    assert_int_equal(cfg->tls_verify, SS_REDIS_TLS_VERIFY_FULL);
    assert_int_equal(cfg->tls_min_version, TLS1_2_VERSION);
    assert_null(cfg->tls_ca_file);
    assert_null(cfg->tls_ca_dir);
    assert_null(cfg->tls_cert_file);
    assert_null(cfg->tls_key_file);
    assert_null(cfg->tls_server_name);
    assert_int_equal(parse_ok("redis://h", pool)->tls, 0);

    cfg = parse_ok("REDISS://u:pw@cache.example:6380/2?tls_ca_file=/etc/ca%20x.pem&tls_ca_dir="
                   "/etc/ssl/certs&tls_cert_file=/c.pem&tls_key_file=/k.pem&tls_server_name="
                   "redis.internal&tls_verify=ca&tls_protocols=TLSv1.3&prefix=p:",
                   pool);
    assert_int_equal(cfg->tls, 1);
    assert_string_equal(cfg->password, "pw");
    assert_int_equal(cfg->db, 2);
    assert_string_equal(cfg->tls_ca_file, "/etc/ca x.pem");
    assert_string_equal(cfg->tls_ca_dir, "/etc/ssl/certs");
    assert_string_equal(cfg->tls_cert_file, "/c.pem");
    assert_string_equal(cfg->tls_key_file, "/k.pem");
    assert_string_equal(cfg->tls_server_name, "redis.internal");
    assert_int_equal(cfg->tls_verify, SS_REDIS_TLS_VERIFY_CA);
    assert_int_equal(cfg->tls_min_version, TLS1_3_VERSION);
    assert_int_equal(parse_ok("rediss://h?tls_verify=none", pool)->tls_verify,
                     SS_REDIS_TLS_VERIFY_NONE);
    assert_string_equal(parse_ok("rediss://h?tls_server_name=10.0.0.1", pool)->tls_server_name,
                        "10.0.0.1");
    assert_string_equal(parse_ok("rediss://[::1]?tls_server_name=::1", pool)->tls_server_name,
                        "::1");
    /* Described: every TLS option, the defaults spelled out, file names only. */
    assert_string_equal(ss_redis_describe(parse_ok("rediss://h?tls_key_file=/k.pem&tls_cert_file="
                                                   "/c.pem",
                                                   pool),
                                          pool),
                        "rediss://h:6379/0?connect_timeout=300&command_timeout=300&breaker=1000"
                        "&prefix=sessstore:&max_idle=64&max_age=300&tls_verify=full&tls_protocols="
                        "TLSv1.2&tls_cert_file=/c.pem&tls_key_file=/k.pem");
}

/* A rediss:// store checks its files when the directive is read: a missing
 * or bad file names the option. */
static void test_check_tls_files(void **state)
{
    apr_pool_t *pool = *state;
    static const struct {
        const char *params, *error;
    } cases[] = {
        {"tls_ca_file=/nonexistent/ca.pem", "tls_ca_file /nonexistent/ca.pem: No such file"},
        {"tls_ca_file=/etc/passwd", "tls_ca_file /etc/passwd: no CA certificate loaded"},
        {"tls_ca_file=/etc", "tls_ca_file /etc: a directory"},
        {"tls_ca_dir=/nonexistent", "tls_ca_dir /nonexistent: No such file"},
        {"tls_ca_dir=/etc/passwd", "tls_ca_dir /etc/passwd: not a directory"},
        {"tls_cert_file=/nonexistent/c.pem&tls_key_file=/etc/passwd",
         "tls_cert_file /nonexistent/c.pem"},
        {"tls_cert_file=/etc/passwd&tls_key_file=/etc/passwd", "tls_cert_file /etc/passwd"},
    };
    size_t i;

    assert_null(ss_redis_check(parse_ok("redis://h", pool), pool));
    assert_null(ss_redis_check(parse_ok("rediss://h", pool), pool)); /* the system's CAs */
    assert_null(ss_redis_check(parse_ok("rediss://h?tls_ca_dir=/etc/ssl/certs", pool), pool));
    for (i = 0; i < UNIT_COUNT(cases); i++) {
        const char *err = ss_redis_check(
            parse_ok(apr_pstrcat(pool, "rediss://h?", cases[i].params, NULL), pool), pool);

        if (!err || !strstr(err, cases[i].error)) {
            fail_msg("%s: expected an error with \"%s\", got %s", cases[i].params, cases[i].error,
                     err ? err : "success");
        }
    }
}

static void test_describe_hides_the_password(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_config_t *cfg = parse_ok("redis://alice:s3cret@h:6380/1?prefix=a%26b:", pool);
    const char *d = ss_redis_describe(cfg, pool);

    assert_null(strstr(d, "s3cret"));
    assert_non_null(strstr(d, "redis://alice:***@h:6380/1?"));
    assert_non_null(strstr(d, "prefix=a%26b:"));
    assert_non_null(strstr(d, "connect_timeout=300&command_timeout=300&breaker=1000"));
    /* What describe prints parses back to the same target. */
    cfg = parse_ok(d, pool);
    assert_string_equal(cfg->prefix, "a&b:");
    assert_int_equal(cfg->port, 6380);

    cfg = parse_ok("unix:///tmp/r.sock?password=s3cret&db=2", pool);
    d = ss_redis_describe(cfg, pool);
    assert_null(strstr(d, "s3cret"));
    assert_non_null(strstr(d, "unix:///tmp/r.sock?db=2&password=***&"));

    d = ss_redis_describe(parse_ok("redis://[::1]", pool), pool);
    assert_non_null(strstr(d, "redis://[::1]:6379/0?"));
}

/* A password with an unencoded '/', '?' or '&' spills into the host, the
 * path or the query: no part of it may reach the message, which must still
 * say what is wrong and where. */
static void test_errors_never_quote_a_password(void **state)
{
    apr_pool_t *pool = *state;
    static const struct {
        const char *uri, *error, *secret[3];
    } cases[] = {
        {"redis://u:Zq12/3xPASS@host", "percent-encode '/', '?' and '&'", {"Zq12", "3xPASS"}},
        {"redis://u:Zq1?PASS@h", "percent-encode '/', '?' and '&'", {"Zq1", "PASS"}},
        {"redis://Zq1?prefix=PASS@h", "an '@' after the host", {"Zq1", "PASS"}},
        {"redis://u:Ab/Cd?Ef&Gh@host:6379/0", "the part before '@'", {"Ab", "Cd", "Ef&Gh"}},
        {"redis://h?password=SeKr1t&RetPw9", "parameter 2 needs a value", {"SeKr1t", "RetPw9"}},
        {"redis://h?password=SeKr1t&RetPw9=x", "unknown parameter 2", {"SeKr1t", "RetPw9"}},
        {"redis://h?password=SeKr1t&connect_timeout=RetPw9",
         "bad connect_timeout: expected",
         {"SeKr1t", "RetPw9"}},
        {"redis://h?db=RetPw9&password=SeKr1t", "percent-encode '&' as %26", {"SeKr1t", "RetPw9"}},
        {"unix:///s?password=SeKr1t&RetPw9", "parameter 2 needs a value", {"SeKr1t", "RetPw9"}},
        {"redis://u:pw@h/RetPw9", "bad db in the path", {"RetPw9"}},
        {"redis://u:pw@h?max_idle=RetPw9", "bad max_idle: expected", {"RetPw9"}},
        {"redis://u:pw@h?max_age=RetPw9", "bad max_age: expected", {"RetPw9"}},
        {"redis://u:pw@h?RetPw9", "parameter 1 needs a value", {"RetPw9"}},
        {"redis://u:SeKr1t@h:RetPw9", "bad port", {"SeKr1t", "RetPw9"}},
        {"redis://u:SeKr1t@RetPw9!", "bad host", {"SeKr1t", "RetPw9"}},
        {"redis://SeKr1t", NULL, {NULL}}, /* a host: parses */
    };
    size_t i, j;

    for (i = 0; i < UNIT_COUNT(cases) && cases[i].error; i++) {
        const char *err = parse_err(cases[i].uri, pool);

        if (!strstr(err, cases[i].error)) {
            fail_msg("%s: expected an error with \"%s\", got: %s", cases[i].uri, cases[i].error,
                     err);
        }
        for (j = 0; j < 3 && cases[i].secret[j]; j++) {
            if (strstr(err, cases[i].secret[j])) {
                fail_msg("%s: the error quotes \"%s\": %s", cases[i].uri, cases[i].secret[j], err);
            }
        }
    }
}

/* Without a password, a bad value is quoted, but escaped and bounded. */
static void test_errors_quote_escaped(void **state)
{
    apr_pool_t *pool = *state;
    char long_value[300];
    const char *err;

    err = parse_err("redis://h?connect_timeout=%0A5%1B[31m", pool);
    assert_non_null(strstr(err, "bad connect_timeout '\\x0A5\\x1B[31m'"));
    err = parse_err("redis://h?col\x01our=1", pool);
    assert_non_null(strstr(err, "unknown parameter 'col\\x01our'"));
    err = parse_err("redis://h?db=%C3%A9", pool);
    assert_non_null(strstr(err, "bad db '\\xC3\\xA9'"));
    memset(long_value, '7', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    err = parse_err(apr_pstrcat(pool, "redis://h?max_idle=", long_value, NULL), pool);
    assert_true(strlen(err) < 150);
    assert_non_null(strstr(err, "...'"));
}

static void test_hosts(void **state)
{
    apr_pool_t *pool = *state;
    static const struct {
        const char *uri, *host;
    } good[] = {
        {"redis://localhost", "localhost"},
        {"redis://cache.example.:7000", "cache.example."},
        {"redis://10.0.0.1", "10.0.0.1"},
        {"redis://redis_1", "redis_1"},
        {"redis://a-b.c-d.example", "a-b.c-d.example"},
        {"redis://xn--bcher-kva.example", "xn--bcher-kva.example"},
        {"redis://1a", "1a"},
        {"redis://[::1]", "::1"},
        {"redis://[2001:db8::1]:7000", "2001:db8::1"},
        {"redis://[::ffff:10.0.0.1]", "::ffff:10.0.0.1"},
        {"redis://[fe80::1%25eth0]", "fe80::1%eth0"},
    };
    static const struct {
        const char *uri, *error;
    } bad[] = {
        {"redis://[[]", "bad IPv6 address in brackets"},
        {"redis://[]", "bad IPv6 address in brackets"},
        {"redis://[a b]", "bad IPv6 address in brackets"},
        {"redis://[::1 ]", "bad IPv6 address in brackets"},
        {"redis://[1.2.3.4]", "bad IPv6 address in brackets"},
        {"redis://[::1%25]", "bad IPv6 address in brackets"},
        {"redis://[::1%25a b]", "bad IPv6 address in brackets"},
        {"redis://[::1%zz]", "bad IPv6 address in brackets"},
        {"redis://[::1\x01]", "bad IPv6 address in brackets"},
        {"redis://h\x01st", "bad host"},
        {"redis://h\x1b[2Jst:6379", "bad host"},
        {"redis://h st", "bad host"},
        {"redis://h%41", "bad host"},
        {"redis://-h", "bad host"},
        {"redis://h-", "bad host"},
        {"redis://h-.x", "bad host"},
        {"redis://a..b", "bad host"},
        {"redis://.", "bad host"},
        {"redis://.h", "bad host"},
        {"redis://256.1.1.1", "bad host"},
        {"redis://10.0.0", "bad host"},
        {"redis://1.2.3.4.5", "bad host"},
        {"redis://010.0.0.1", "bad host"},
        {"redis://h\xc3\xa9", "bad host"},
    };
    char label[70], name[300];
    size_t i;

    for (i = 0; i < UNIT_COUNT(good); i++) {
        ss_redis_config_t *cfg = NULL;
        const char *err = ss_redis_parse(&cfg, good[i].uri, pool);

        if (err) {
            fail_msg("%s: unexpected error: %s", good[i].uri, err);
        }
        assert_string_equal(cfg->host, good[i].host);
    }
    for (i = 0; i < UNIT_COUNT(bad); i++) {
        const char *err = parse_err(bad[i].uri, pool), *c;

        if (!strstr(err, bad[i].error)) {
            fail_msg("%s: expected an error with \"%s\", got: %s", bad[i].uri, bad[i].error, err);
        }
        /* The host is never quoted, so no control character gets through. */
        for (c = err; *c; c++) {
            assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
        }
    }
    /* Labels up to 63 bytes, names up to 253. */
    memset(label, 'a', 63);
    label[63] = '\0';
    assert_null(ss_redis_parse(&(ss_redis_config_t *){NULL},
                               apr_pstrcat(pool, "redis://", label, ".example", NULL), pool));
    label[63] = 'a';
    label[64] = '\0';
    assert_non_null(strstr(parse_err(apr_pstrcat(pool, "redis://", label, ".example", NULL), pool),
                           "bad host"));
    for (i = 0; i < 63; i++) {
        memcpy(name + 4 * i, "abc.", 4);
    }
    name[252] = 'a';
    name[253] = '\0'; /* 63 "abc." and a final "a" */
    assert_null(ss_redis_parse(&(ss_redis_config_t *){NULL},
                               apr_pstrcat(pool, "redis://", name, NULL), pool));
    name[253] = 'b';
    name[254] = '\0';
    assert_non_null(strstr(parse_err(apr_pstrcat(pool, "redis://", name, NULL), pool), "bad host"));
}

/* Percent-encode everything but unreserved characters. */
static const char *encode(const char *s, apr_pool_t *pool)
{
    char *buf = apr_palloc(pool, strlen(s) * 3 + 1), *o = buf;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (apr_isalnum(c) || strchr("-._~", c)) {
            *o++ = (char)c;
        } else {
            o += apr_snprintf(o, 4, "%%%02X", c);
        }
    }
    *o = '\0';
    return buf;
}

static void assert_same_config(const ss_redis_config_t *a, const ss_redis_config_t *b)
{
#define SAME_STR(f)                                                                                \
    do {                                                                                           \
        if (!a->f || !b->f) {                                                                      \
            assert_ptr_equal(a->f, b->f);                                                          \
        } else {                                                                                   \
            assert_string_equal(a->f, b->f);                                                       \
        }                                                                                          \
    } while (0)
    SAME_STR(host);
    SAME_STR(path);
    SAME_STR(user);
    SAME_STR(password);
    SAME_STR(prefix);
#undef SAME_STR
    assert_int_equal(a->port, b->port);
    assert_int_equal(a->db, b->db);
    assert_true(a->connect_timeout == b->connect_timeout);
    assert_true(a->command_timeout == b->command_timeout);
    assert_true(a->breaker == b->breaker);
    assert_int_equal(a->max_idle, b->max_idle);
    assert_true(a->max_age == b->max_age);
    assert_int_equal(a->tls, b->tls);
    assert_int_equal(a->tls_verify, b->tls_verify);
    assert_int_equal(a->tls_min_version, b->tls_min_version);
    assert_int_equal(a->cluster, b->cluster);
    assert_int_equal(a->nseeds, b->nseeds);
    for (int i = 0; i < a->nseeds; i++) {
        assert_string_equal(a->seeds[i].host, b->seeds[i].host);
        assert_int_equal(a->seeds[i].port, b->seeds[i].port);
    }
#define SAME_STR(f)                                                                                \
    do {                                                                                           \
        if (!a->f || !b->f) {                                                                      \
            assert_ptr_equal(a->f, b->f);                                                          \
        } else {                                                                                   \
            assert_string_equal(a->f, b->f);                                                       \
        }                                                                                          \
    } while (0)
    SAME_STR(tls_ca_file);
    SAME_STR(tls_ca_dir);
    SAME_STR(tls_cert_file);
    SAME_STR(tls_key_file);
    SAME_STR(tls_server_name);
    SAME_STR(sentinel_master);
    SAME_STR(sentinel_user);
    SAME_STR(sentinel_password);
#undef SAME_STR
    assert_int_equal(a->wait_replicas, b->wait_replicas);
    assert_true(a->wait_timeout == b->wait_timeout);
    assert_int_equal(a->nsentinels, b->nsentinels);
    for (int i = 0; i < a->nsentinels; i++) {
        assert_string_equal(a->sentinels[i].host, b->sentinels[i].host);
        assert_int_equal(a->sentinels[i].port, b->sentinels[i].port);
    }
}

/* What describe prints, with the real password put back for "***", parses
 * to the same configuration, field by field. */
static void test_describe_round_trip(void **state)
{
    apr_pool_t *pool = *state;
    static const char *const uris[] = {
        "redis://localhost",
        "redis://alice:s3cr%2Ft@h:6380/1?prefix=a%26b:&connect_timeout=50&command_timeout=70"
        "&breaker=0&max_idle=3&max_age=0",
        "redis://:p%40ss%3A%2F%3F%26%25%23%20@[::1]:7000/2",
        "redis://b%3Ab%40c:pw@[fe80::1%25eth0]?max_age=86400",
        "redis://[2001:db8::10]:6380",
        "redis://bob@cache.example./5",
        "redis://10.0.0.1?prefix=",
        "redis://h?prefix=%01%FF%25%3D%3F%26%2F%23%20:x&db=7",
        "unix:///tmp/r%20s.sock?db=3&password=x%26y&user=b%3Ab",
        "redis+unix:///run/redis/redis.sock?prefix=p:&breaker=10",
        "unix:///tmp/r%3F%23%26.sock?password=a%3Db",
        "rediss://localhost",
        "rediss://alice:s3cr%2Ft@redis.example:6380/1?tls_ca_file=/etc/ssl/ca%20%26%40.pem"
        "&tls_cert_file=/etc/k/c.pem&tls_key_file=/etc/k/k%3D.pem&tls_server_name=r.example",
        "rediss://10.0.0.1?tls_verify=ca&tls_protocols=TLSv1.3&tls_ca_dir=/etc/ssl/certs",
        "rediss://[::1]:7000?tls_verify=none&tls_server_name=::1",
        "redis-cluster://10.0.0.1:7000",
        "redis-cluster://u%3Ax:p%40w@a.example,10.0.0.2:7001,[::1]:7002/?prefix=s:&max_idle=8",
        "rediss-cluster://:pw@h1:7000,h2:7001?tls_ca_file=/etc/ca.pem&tls_verify=ca",
        "redis://h?wait=1",
        "redis://h?wait=2,250",
        "redis-sentinel://s1,s2:26380,[::1]:5/mymaster",
        "redis-sentinel://alice:p%2Fw@10.0.0.1:26379/my%2Em_1/4?wait=1,50",
        "rediss-sentinel://s.example/m?tls_ca_file=/etc/ca.pem&tls_server_name=r.example",
    };
    size_t i;

    for (i = 0; i < UNIT_COUNT(uris); i++) {
        ss_redis_config_t *cfg = NULL, *again = NULL;
        const char *d, *err, *star;
        char *back;

        err = ss_redis_parse(&cfg, uris[i], pool);
        if (err) {
            fail_msg("%s: unexpected error: %s", uris[i], err);
        }
        d = ss_redis_describe(cfg, pool);
        star = strstr(d, "***");
        if (cfg->password) {
            assert_non_null(star);
            assert_null(strstr(star + 3, "***"));
            assert_null(strstr(d, cfg->password));
            back = apr_pstrcat(pool, apr_pstrmemdup(pool, d, star - d), encode(cfg->password, pool),
                               star + 3, NULL);
        } else {
            assert_null(star);
            back = apr_pstrdup(pool, d);
        }
        err = ss_redis_parse(&again, back, pool);
        if (err) {
            fail_msg("%s: described as %s, which does not parse: %s", uris[i], d, err);
        }
        assert_same_config(cfg, again);
        /* And describing it again gives the same text. */
        assert_string_equal(ss_redis_describe(again, pool), d);
    }
}

/* redis-cluster:// and rediss-cluster://: seeds, options, what is refused. */
static void test_cluster(void **state)
{
    apr_pool_t *pool = *state;
    static const struct {
        const char *uri, *err;
    } bad[] = {
        {"redis-cluster://h:7000/1", "only db 0: no /db"},
        {"redis-cluster://h:7000?db=2", "only db 0: no db="},
        {"redis-cluster://h:7000,,h2", "seed node 2: missing host"},
        {"redis-cluster://h:7000,h2:0", "seed node 2: bad port"},
        {"redis-cluster://h:7000,[::1", "seed node 2: bad IPv6"},
        {"redis-cluster://h,::1:7000", "seed node 2: an IPv6 address must be written in brackets"},
        {"redis-cluster://", "seed node 1: missing host"},
        {"redis-cluster://h?tls_verify=none", "need a rediss-cluster:// URI"},
        {"rediss-cluster://h?tls_cert_file=/c.pem", "go together"},
        {"redis-cluster://h?unknown=1", "unknown parameter"},
        {"redis-cluster://h?user=bob", "a user needs a password"},
        {"redis-cluster://h?wait=1", "wait= is not supported"},
        {"rediss-cluster+unix:///tmp/s", "expected redis://"},
    };
    ss_redis_config_t *cfg;
    char many[SS_REDIS_SEEDS_MAX * 8 + 64], *o;
    size_t i;

    cfg =
        parse_ok("redis-cluster://alice:s%40cret@10.0.0.1:7000,node2.example,[fe80::1%25eth0]:7002"
                 "?connect_timeout=50&prefix=app:",
                 pool);
    assert_true(cfg->cluster);
    assert_false(cfg->tls);
    assert_int_equal(cfg->nseeds, 3);
    assert_string_equal(cfg->seeds[0].host, "10.0.0.1");
    assert_int_equal(cfg->seeds[0].port, 7000);
    assert_string_equal(cfg->seeds[1].host, "node2.example");
    assert_int_equal(cfg->seeds[1].port, 6379);
    assert_string_equal(cfg->seeds[2].host, "fe80::1%eth0");
    assert_int_equal(cfg->seeds[2].port, 7002);
    assert_string_equal(cfg->host, "10.0.0.1"); /* the first seed */
    assert_int_equal(cfg->port, 7000);
    assert_string_equal(cfg->user, "alice");
    assert_string_equal(cfg->password, "s@cret");
    assert_int_equal(cfg->db, 0);
    assert_true(cfg->connect_timeout == 50 * MS);
    assert_string_equal(cfg->prefix, "app:");
    assert_string_equal(ss_redis_target(cfg, pool),
                        "redis-cluster://alice:***@10.0.0.1:7000,node2.example:6379,"
                        "[fe80::1%25eth0]:7002");
    assert_null(strstr(ss_redis_describe(cfg, pool), "s@cret"));

    cfg = parse_ok("rediss-cluster://h1:7000?tls_ca_file=/etc/ca.pem&tls_server_name=redis.example",
                   pool);
    assert_true(cfg->cluster);
    assert_true(cfg->tls);
    assert_int_equal(cfg->nseeds, 1);
    assert_string_equal(cfg->tls_ca_file, "/etc/ca.pem");
    assert_string_equal(cfg->tls_server_name, "redis.example");
    assert_true(!strncmp(ss_redis_describe(cfg, pool), "rediss-cluster://h1:7000?", 25));

    cfg = parse_ok("REDIS-CLUSTER://h/", pool);
    assert_true(cfg->cluster);
    assert_int_equal(cfg->seeds[0].port, 6379);

    /* A plain URI is no cluster. */
    cfg = parse_ok("redis://h", pool);
    assert_false(cfg->cluster);
    assert_int_equal(cfg->nseeds, 0);

    for (i = 0; i < UNIT_COUNT(bad); i++) {
        const char *err = parse_err(bad[i].uri, pool);

        if (!strstr(err, bad[i].err)) {
            fail_msg("%s: '%s' does not say '%s'", bad[i].uri, err, bad[i].err);
        }
    }
    /* The most seeds, and one more. */
    o = many + sprintf(many, "redis-cluster://");
    for (i = 0; i < SS_REDIS_SEEDS_MAX; i++) {
        o += sprintf(o, "%sh%zu", i ? "," : "", i);
    }
    assert_int_equal(parse_ok(many, pool)->nseeds, SS_REDIS_SEEDS_MAX);
    strcpy(o, ",x");
    assert_non_null(strstr(parse_err(many, pool), "more than 64 seed nodes"));
}

static void test_sentinel_forms(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_config_t *cfg;

    cfg = parse_ok("redis-sentinel://s1:26380,10.0.0.2,[::1]:7/mymaster", pool);
    assert_null(cfg->host);
    assert_null(cfg->path);
    assert_int_equal(cfg->tls, 0);
    assert_string_equal(cfg->sentinel_master, "mymaster");
    assert_int_equal(cfg->nsentinels, 3);
    assert_string_equal(cfg->sentinels[0].host, "s1");
    assert_int_equal(cfg->sentinels[0].port, 26380);
    assert_string_equal(cfg->sentinels[1].host, "10.0.0.2");
    assert_int_equal(cfg->sentinels[1].port, SS_REDIS_DEFAULT_SENTINEL_PORT);
    assert_string_equal(cfg->sentinels[2].host, "::1");
    assert_int_equal(cfg->sentinels[2].port, 7);
    assert_int_equal(cfg->db, 0);
    assert_null(cfg->password);
    assert_int_equal(cfg->wait_replicas, 0);

    cfg = parse_ok("rediss-sentinel://bob:pw%40x@s1/m%2F1/3?sentinel_user=watch&sentinel_password="
                   "s%26p&wait=1&tls_verify=ca",
                   pool);
    assert_int_equal(cfg->tls, 1);
    assert_string_equal(cfg->user, "bob");
    assert_string_equal(cfg->password, "pw@x");
    assert_string_equal(cfg->sentinel_master, "m/1");
    assert_int_equal(cfg->db, 3);
    assert_string_equal(cfg->sentinel_user, "watch");
    assert_string_equal(cfg->sentinel_password, "s&p");
    assert_int_equal(cfg->wait_replicas, 1);
    assert_true(cfg->wait_timeout == SS_REDIS_DEFAULT_WAIT_TIMEOUT_MS * MS);
    assert_int_equal(cfg->tls_verify, SS_REDIS_TLS_VERIFY_CA);

    cfg = parse_ok("REDIS-SENTINEL://s/m?sentinel_password=x&wait=3,1500", pool);
    assert_null(cfg->sentinel_user);
    assert_string_equal(cfg->sentinel_password, "x");
    assert_int_equal(cfg->wait_replicas, 3);
    assert_true(cfg->wait_timeout == 1500 * MS);
}

static void test_sentinel_errors(void **state)
{
    apr_pool_t *pool = *state;
    static const struct {
        const char *uri, *error;
    } cases[] = {
        {"redis-sentinel://s1,s2", "missing master name"},
        {"redis-sentinel://s1,s2/", "missing master name"},
        {"redis-sentinel://s1,s2//2", "missing master name"},
        {"redis-sentinel:///m", "missing sentinel address"},
        {"redis-sentinel://u:pw@/m", "missing sentinel address"},
        {"redis-sentinel://s1,,s2/m", "empty sentinel address 2"},
        {"redis-sentinel://s1,/m", "empty sentinel address 2"},
        {"redis-sentinel://,s1/m", "empty sentinel address 1"},
        {"redis-sentinel://s1,s2:0/m", "sentinel 2: bad port"},
        {"redis-sentinel://s1:99999/m", "sentinel 1: bad port"},
        {"redis-sentinel://s1,::1/m", "sentinel 2: an IPv6 address must be written in brackets"},
        {"redis-sentinel://s_1,b%20d/m", "sentinel 2: bad host"},
        {"redis-sentinel://s/m%20x", "bad master name 'm x'"},
        {"redis-sentinel://s/m%2", "bad percent-encoding in the master name"},
        {"redis-sentinel://s/m/x", "bad db 'x' in the path"},
        {"redis-sentinel://s/m/1?db=2", "db given twice"},
        {"redis-sentinel://s/m?sentinel_user=u", "a sentinel_user needs a sentinel_password"},
        {"redis-sentinel://s/m?sentinel_password=", "empty sentinel_password"},
        {"redis-sentinel://s/m?tls_verify=ca", "or a rediss-sentinel:// one"},
        {"redis://h?sentinel_password=x", "sentinel_password need a redis-sentinel://"},
        {"redis://h?sentinel_user=u", "need a redis-sentinel://"},
        {"redis://h?wait=0", "bad wait '0': expected N[,timeout_ms]"},
        {"redis://h?wait=65", "1..64"},
        {"redis://h?wait=", "bad wait"},
        {"redis://h?wait=1,", "timeout_ms 1..60000"},
        {"redis://h?wait=1,0", "timeout_ms 1..60000"},
        {"redis://h?wait=1,60001", "timeout_ms"},
        {"redis://h?wait=1,2,3", "timeout_ms"},
        {"redis://h?wait=1&wait=2", "wait given twice"},
        {"redis-sentinels://s/m", "redis-sentinel://"},
    };
    char many[512] = "redis-sentinel://";
    size_t i;

    for (i = 0; i < UNIT_COUNT(cases); i++) {
        const char *err = parse_err(cases[i].uri, pool);

        if (!strstr(err, cases[i].error)) {
            fail_msg("%s: expected an error with \"%s\", got \"%s\"", cases[i].uri, cases[i].error,
                     err);
        }
    }
    for (i = 0; i <= SS_REDIS_SENTINEL_MAX; i++) {
        strcat(many, i ? ",s" : "s");
    }
    strcat(many, "/m");
    assert_non_null(strstr(parse_err(many, pool), "more than 16 sentinels"));
    many[strlen(many) - 4] = '\0'; /* one fewer */
    strcat(many, "/m");
    assert_int_equal(parse_ok(many, pool)->nsentinels, SS_REDIS_SENTINEL_MAX);
}

/* Neither password reaches a description or an error message. */
static void test_sentinel_passwords_hidden(void **state)
{
    apr_pool_t *pool = *state;
    ss_redis_config_t *cfg;
    const char *d;

    cfg = parse_ok("rediss-sentinel://u:DataPw1@s1:1,s2:2/m/2?sentinel_user=w&sentinel_password="
                   "SentPw2&wait=1",
                   pool);
    d = ss_redis_describe(cfg, pool);
    assert_null(strstr(d, "DataPw1"));
    assert_null(strstr(d, "SentPw2"));
    assert_non_null(strstr(d, "rediss-sentinel://u:***@s1:1,s2:2/m/2?"));
    assert_non_null(strstr(d, "&wait=1,100&sentinel_user=w&sentinel_password=***"));
    d = ss_redis_target(cfg, pool);
    assert_string_equal(d, "rediss-sentinel://u:***@s1:1,s2:2/m/2");
    d = parse_err("redis-sentinel://s/m?sentinel_password=SentPw2&wait=SentPw2", pool);
    assert_null(strstr(d, "SentPw2"));
    assert_non_null(strstr(d, "bad wait"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_parse_defaults),
        UNIT_POOL_TEST(test_parse_forms),
        UNIT_POOL_TEST(test_parse_errors),
        UNIT_POOL_TEST(test_parse_tls),
        UNIT_POOL_TEST(test_check_tls_files),
        UNIT_POOL_TEST(test_describe_hides_the_password),
        UNIT_POOL_TEST(test_errors_never_quote_a_password),
        UNIT_POOL_TEST(test_errors_quote_escaped),
        UNIT_POOL_TEST(test_hosts),
        UNIT_POOL_TEST(test_describe_round_trip),
        UNIT_POOL_TEST(test_cluster),
        UNIT_POOL_TEST(test_sentinel_forms),
        UNIT_POOL_TEST(test_sentinel_errors),
        UNIT_POOL_TEST(test_sentinel_passwords_hidden),
    };

    return UNIT_RUN(tests);
}
