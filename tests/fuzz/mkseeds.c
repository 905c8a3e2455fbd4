/* mkseeds.c - writes the seed corpora of tests/fuzz/corpus/<harness>/ from
 * the library itself (records by ss_record_encode), so that the seeds follow
 * the formats: "make -f tests/fuzz/Makefile seeds" rewrites them.
 *
 *   mkseeds DIR    one file per seed in DIR/cookie, DIR/record, DIR/uri,
 *                  DIR/redis_reply and DIR/shm_model */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "ss_record.h"

#define NOW apr_time_from_sec(1700000000) /* fuzz_redis_reply's clock */
#define SEP "\n##\n"                      /* fuzz_redis_reply's connection separator */

static const char *root;
static apr_pool_t *pool;
static ss_key_t key; /* of FUZZ_SESSION_ID: the harnesses open the sealed seeds with it */

static void put(const char *harness, const char *name, const void *buf, apr_size_t len)
{
    const char *dir = apr_pstrcat(pool, root, "/", harness, NULL);
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    FILE *f;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        perror(dir);
        exit(1);
    }
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_str(const char *harness, const char *name, const char *s)
{
    put(harness, name, s, strlen(s));
}

static const char *record(ss_record_form_e form, apr_time_t created, apr_time_t accessed,
                          const char *user, const char *payload, apr_size_t *len)
{
    ss_record_t rec = {created, accessed, user, payload, strlen(payload), 3};
    char *buf;

    if (ss_record_encode(&rec, &key, form, pool, &buf, len) != APR_SUCCESS) {
        fprintf(stderr, "mkseeds: cannot encode a record\n");
        exit(1);
    }
    return buf;
}

/* ---- cookie: [name length][name][attributes length][attributes][header] */

static void cookie(const char *file, const char *name, const char *attrs, const char *header)
{
    char *buf = apr_psprintf(pool, "%c%s%c%s%s", (char)strlen(name), name, (char)strlen(attrs),
                             attrs, header);

    put("cookie", file, buf, 2 + strlen(name) + strlen(attrs) + strlen(header));
}

static void cookies(void)
{
    const char *id = "n0nEuYzTXXjS8Ugx3hoiEXxOyUVLIoC3tEsR5_4lVq0";

    cookie("one", "session", "", apr_pstrcat(pool, "session=", id, NULL));
    cookie("among-others", "session", "Path=/app; SameSite=Strict",
           apr_pstrcat(pool, "_ga=GA1.2.3.4; session=", id, "; theme=dark", NULL));
    cookie(
        "two-paths", "sid", "Domain=example.org; Max-Age=3600; !HttpOnly",
        apr_pstrcat(pool, "sid=", id, "; sid=o1dValueFromTheRootPathxxxxxxxxxxxxxxxxxxxx", NULL));
    cookie("merged-headers", "session", "Secure; SameSite=None",
           apr_pstrcat(pool, "a=1; b=2, session=", id, ", c=\"quoted; value\"", NULL));
    cookie("spaces", "session", "Expires=Wed, 21 Oct 2037 07:28:00 GMT; Partitioned",
           apr_pstrcat(pool, "  session =x;session=  ", id, "  ;session=", NULL));
    cookie("prefix-names", "session", "!Secure; !SameSite",
           apr_pstrcat(pool, "sessionx=1; xsession=2; session_=3; session=", id, NULL));
}

/* ---- record: [key and mode] then a stored value ----------------------- */

enum { K_SEALABLE = 0, K_CLEAR_ONLY = 1, K_NONE = 2, M_SEAL_HERE = 4 };

static void put_record(const char *file, unsigned mode, const char *r, apr_size_t len)
{
    char *buf = apr_palloc(pool, len + 1);

    buf[0] = (char)mode;
    memcpy(buf + 1, r, len);
    put("record", file, buf, len + 1);
}

static void records(void)
{
    static const ss_record_form_e forms[3] = {SS_RECORD_FORM_SEALED, SS_RECORD_FORM_CLEAR,
                                              SS_RECORD_FORM_V1};
    static const char *const names[3] = {"sealed", "clear", "v1"};
    apr_size_t len;
    const char *r;
    int f;

    for (f = 0; f < 3; f++) {
        char *copy;

        r = record(forms[f], NOW - 5000000, NOW, "", "counter=1", &len);
        put_record(apr_pstrcat(pool, names[f], "-anonymous", NULL), K_SEALABLE, r, len);
        r = record(forms[f], NOW - apr_time_from_sec(600), NOW - apr_time_from_sec(30), "alice",
                   "user=alice&pw=s3cret&counter=12", &len);
        put_record(apr_pstrcat(pool, names[f], "-mod-auth-form", NULL), K_SEALABLE, r, len);
        put_record(apr_pstrcat(pool, names[f], "-no-seal-key", NULL), K_CLEAR_ONLY, r, len);
        put_record(apr_pstrcat(pool, names[f], "-no-key", NULL), K_NONE, r, len);
        r = record(forms[f], NOW, NOW, "bob", "", &len);
        put_record(apr_pstrcat(pool, names[f], "-empty-payload", NULL), K_SEALABLE, r, len);
        r = record(forms[f], NOW, NOW, "carol",
                   apr_pstrcat(pool, "session=", apr_psprintf(pool, "%0600d", 7),
                               "&x=", "SessionCryptoPassphrase-encrypted:AAECAwQFBgcICQ==", NULL),
                   &len);
        put_record(apr_pstrcat(pool, names[f], "-large", NULL), K_SEALABLE, r, len);
        put_record(apr_pstrcat(pool, names[f], "-truncated", NULL), K_SEALABLE, r, len - 7);
        copy = apr_pmemdup(pool, r, len);
        copy[2] = SS_RECORD_VERSION + 1; /* a newer node's record */
        put_record(apr_pstrcat(pool, names[f], "-newer-version", NULL), K_SEALABLE, copy, len);
        copy = apr_pmemdup(pool, r, len);
        copy[3] ^= 2; /* an unknown flag */
        put_record(apr_pstrcat(pool, names[f], "-flags", NULL), K_SEALABLE, copy, len);
    }
    /* Seal mode: the header and the clear body, sealed by the harness. */
    r = record(SS_RECORD_FORM_CLEAR, NOW - 5000000, NOW, "alice", "user=alice&n=2", &len);
    put_record("seal-here", M_SEAL_HERE, r, len);
}

/* ---- uri: a SessionStoreBackend value ---------------------------------- */

static void uris(void)
{
    static const char *const u[] = {
        "redis://127.0.0.1:6379/0",
        "redis://cache.example.:7000",
        "redis://:p%40ss%2Fw%3a@10.0.0.1:6380/2?connect_timeout=50&command_timeout=75",
        "redis://alice:s3cr%2Ft@h:6380/1?prefix=a%26b:&breaker=0&max_idle=8&max_age=60",
        "redis://b%3Ab%40c:pw@[fe80::1%25eth0]?max_age=86400",
        "redis://[2001:db8::10]:6380",
        "redis://h?db=4&user=u&password=pw",
        "rediss://redis.example:6380?tls_ca_file=/etc/ssl/ca.pem&tls_verify=ca",
        ("rediss://u:pw@10.0.0.2?tls_cert_file=/c.pem&tls_key_file=/k.pem&tls_server_name=r."
         "example&tls_protocols=TLSv1.3"),
        "rediss://[::1]:6380?tls_ca_dir=/etc/ssl/certs&tls_verify=none",
        "unix:///run/redis/redis.sock?db=2&password=s3cret&prefix=app:",
        "redis+unix:///tmp/r.sock?user=alice&password=pw&connect_timeout=1000",
        "redis://h?password=SeKr1t&connect_timeout=RetPw9",
        "redis://al%69ce:s%3Acr%25t@@[::1]:7000",
        "shm",
        "redis-sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3/mymaster/2",
        "redis-sentinel://alice:p%2Fw@10.0.0.1:26379/my%2Em_1/4?wait=1,50",
        ("redis-sentinel://s1,[::1]:26380/m?sentinel_user=sent&sentinel_password=SentPw2&"
         "password=DataPw&prefix=app:"),
        "rediss-sentinel://s1.example,s2.example/m?tls_ca_file=/etc/ca.pem&tls_verify=ca",
        "redis-cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002",
        "redis-cluster://alice:s%40cret@10.0.0.1:7000,node2.example,[fe80::1%25eth0]:7002",
        "redis-cluster://u%3Ax:p%40w@a.example,10.0.0.2:7001,[::1]:7002/?prefix=s:&max_idle=8",
        "rediss-cluster://:pw@h1:7000,h2:7001?tls_ca_file=/etc/ca.pem&tls_verify=ca",
    };
    size_t i;

    for (i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        put_str("uri", apr_psprintf(pool, "uri-%02d", (int)i), u[i]);
    }
}

/* ---- redis_reply: [config][operations] then what the server sends ------ */

enum { C_PASSWORD = 1, C_USER = 2, C_DB = 4, C_SCRIPT = 8, C_BREAKER = 16, C_UPDATE = 32 };

/* The stream being built: binary-safe (records hold NUL bytes). */
static char stream[8192];
static apr_size_t stream_len;

static void app(const void *buf, apr_size_t len)
{
    if (stream_len + len > sizeof(stream)) {
        fprintf(stderr, "mkseeds: stream too long\n");
        exit(1);
    }
    memcpy(stream + stream_len, buf, len);
    stream_len += len;
}

static void s_(const char *s)
{
    app(s, strlen(s));
}

static void bulk(const char *s, apr_size_t len)
{
    s_(apr_psprintf(pool, "$%lu\r\n", (unsigned long)len));
    app(s, len);
    s_("\r\n");
}

/* Write the stream after [config][operations]; ops: one to four letters,
 * L load, S save, R remove, P ping (two bits each, the first lowest). */
static void reply(const char *file, unsigned conf, const char *ops)
{
    char *buf = apr_palloc(pool, stream_len + 2);
    unsigned bits = 0, i;

    for (i = 0; ops[i]; i++) {
        bits |= (unsigned)(strchr("LSRP", ops[i]) - "LSRP") << (2 * i);
    }
    buf[0] = (char)(conf | (i - 1) << 6);
    buf[1] = (char)bits;
    memcpy(buf + 2, stream, stream_len);
    put("redis_reply", file, buf, stream_len + 2);
    stream_len = 0;
}

static void replies(void)
{
    apr_size_t len, stale_len, v1_len;
    /* Sealed, as the stores write them: live for fuzz_redis_reply's
     * timeouts, no touch due; then one whose touch is due (the lean load
     * hands it to the script), and what the script returns, touched. */
    const char *live = record(SS_RECORD_FORM_SEALED, NOW - apr_time_from_sec(60),
                              NOW - apr_time_from_sec(10), "alice", "user=alice&pw=s3cret", &len);
    const char *stale =
        record(SS_RECORD_FORM_SEALED, NOW - apr_time_from_sec(600), NOW - apr_time_from_sec(120),
               "alice", "user=alice&pw=s3cret", &stale_len);
    const char *v1 = record(SS_RECORD_FORM_V1, NOW - apr_time_from_sec(60),
                            NOW - apr_time_from_sec(10), "alice", "user=alice&pw=s3cret", &v1_len);
    char *touched = apr_pmemdup(pool, stale, stale_len);
    char *newer = apr_pmemdup(pool, live, len), *bad = apr_pmemdup(pool, live, len);

    ss_record_poke_accessed((unsigned char *)touched, NOW);
    newer[2] = SS_RECORD_VERSION + 1;
    bad[len - 1] ^= 1; /* the tag: does not authenticate */

    bulk(live, len);
    reply("load-hit", 0, "L");
    s_("$-1\r\n");
    reply("load-miss", 0, "L");
    bulk(stale, stale_len);
    s_("*2\r\n");
    bulk(touched, stale_len);
    s_(":1\r\n");
    reply("load-touch", 0, "L");
    bulk(newer, len);
    reply("load-newer", 0, "L");
    bulk(bad, len);
    s_(":2\r\n");
    reply("load-malformed", 0, "L");
    s_(":0\r\n");
    reply("script-absent", C_SCRIPT, "L");
    s_(":3\r\n");
    reply("script-expired", C_SCRIPT, "L");
    s_("-NOSCRIPT No matching script. Please use EVAL.\r\n*2\r\n");
    bulk(live, len);
    s_(":0\r\n");
    reply("script-noscript", C_SCRIPT, "L");
    s_("-ERR Error running script (call to f_0123): @user_script:19: "
       "@user_script: 19: -READONLY You can't write against a read only replica.\r\n");
    reply("script-wrapped-readonly", C_SCRIPT, "L");
    s_("+OK\r\n");
    reply("save-new", 0, "S");
    s_("$-1\r\n");
    reply("save-new-exists", 0, "S");
    s_(":0\r\n");
    reply("save-update-gone", C_UPDATE, "S");
    s_(":1\r\n");
    reply("save-update", C_UPDATE, "S");
    s_(":2\r\n");
    reply("save-update-conflict", C_UPDATE, "S");
    s_("-NOSCRIPT No matching script. Please use EVAL.\r\n:1\r\n");
    reply("save-update-noscript", C_UPDATE, "S");
    bulk(v1, v1_len);
    reply("load-v1", 0, "L");
    s_("+OK\r\n+OK\r\n+OK\r\n");
    bulk(live, len);
    reply("auth-select", C_PASSWORD | C_USER | C_DB, "SL");
    s_("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    reply("auth-refused", C_PASSWORD, "L");
    s_("-ERR DB index is out of range\r\n");
    reply("select-refused", C_DB, "P");
    s_(":1\r\n-READONLY You can't write against a read only replica.\r\n" SEP ":1\r\n");
    reply("readonly-retry", C_UPDATE, "SS");
    s_("$-1\r\n-LOADING Redis is loading the dataset in memory\r\n" SEP "$-1\r\n");
    reply("loading-retry", 0, "LL");
    s_("+PONG\r\n" SEP ":1\r\n");
    reply("eof-retry", 0, "PR");
    s_("-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n");
    reply("masterdown-breaker", C_BREAKER, "LLL");
    s_("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:0\r\n");
    reply("wrongtype", 0, "LR");
    s_("*1\r\n:1\r\n" SEP ":1\r\n" SEP "+OK\r\n" SEP "$4\r\nPONG\r\n");
    reply("unexpected-types", 0, "LSRP");
    s_(":1\r\n+PONG\r\n");
    reply("remove-ping", 0, "RP");
    app("\x16\x03\x01\x00\x05hello", 10);
    reply("tls-answer", 0, "P");
    s_("!oops\r\n");
    reply("protocol-error", 0, "L");
    s_("*2147483647\r\n"); /* once a 16 GB allocation in hiredis 0.14 */
    reply("array-too-large", 0, "L");
}

/* ---- shm_model: [size][max_record u16][children][2 x (idle u16, absolute
 * u16)] then operations [child | kind << 2 | location << 4 | skew << 5]
 * [key][advance u16][variation]. Kinds: 0 load, 1 new, 2 update, 3 remove. */

typedef struct {
    unsigned char buf[4096];
    apr_size_t len;
} prog_t;

static void b8(prog_t *p, unsigned v)
{
    p->buf[p->len++] = (unsigned char)v;
}

static void b16(prog_t *p, unsigned v)
{
    b8(p, v >> 8);
    b8(p, v);
}

/* size: the geometry byte (bits 0-1 the arena size, 2-3 the stripe cap:
 * 1, 2, 4 or none, bit 4 large records); forms: the record format of each
 * child, 2 bits each (0 sealed, 1 clear, 2 format 1). */
static void header(prog_t *p, unsigned size, unsigned max_record, unsigned children, unsigned forms,
                   unsigned idle0, unsigned abs0, unsigned idle1, unsigned abs1)
{
    p->len = 0;
    b8(p, size);
    b16(p, max_record);
    b8(p, children - 1);
    b8(p, forms);
    b16(p, idle0);
    b16(p, abs0);
    b16(p, idle1);
    b16(p, abs1);
}

/* extra: 1 a load with the store key alone, 2 an update over a revision
 * it did not load. */
static void op(prog_t *p, unsigned child, unsigned kind, unsigned loc, unsigned key,
               unsigned advance, unsigned variation, unsigned extra)
{
    b8(p, child | kind << 2 | loc << 4);
    b8(p, key);
    b16(p, advance);
    b8(p, variation);
    b8(p, extra);
}

static void shm_programs(void)
{
    prog_t p;
    unsigned i;

    /* One session's life: new, load, update, load, remove, load. */
    header(&p, 0x10, 2048, 1, 0, 1801, 3601, 0, 0);
    op(&p, 0, 1, 0, 1, 0, 40, 0);
    op(&p, 0, 0, 0, 1, 100, 0, 0);
    op(&p, 0, 2, 0, 1, 100, 60, 0);
    op(&p, 0, 0, 0, 1, 100, 0, 0);
    op(&p, 0, 3, 0, 1, 0, 0, 0);
    op(&p, 0, 0, 0, 1, 0, 0, 0);
    put("shm_model", "life", p.buf, p.len);

    /* Four children, keys sharing buckets, interleaved. */
    header(&p, 1, 1024, 4, 0, 601, 0, 0, 7201);
    for (i = 0; i < 24; i++) {
        op(&p, i % 4, 1 + (i & 1), (i >> 1) & 1, i % 6, 50, 30 + i * 7, 0);
        op(&p, (i + 1) % 4, 0, i & 1, (i + 3) % 6, 50, 0, 0);
    }
    put("shm_model", "children", p.buf, p.len);

    /* Fill a small arena with large records: evictions. */
    header(&p, 0x10, 8191, 2, 0, 0, 0, 3, 0);
    for (i = 0; i < 40; i++) {
        op(&p, i & 1, 1, 0, i % 40, 1, 200 + i % 50, 0);
        if (i % 5 == 4) {
            op(&p, 0, 0, 0, (i * 7) % 24, 1, 0, 0);
        }
    }
    put("shm_model", "evictions", p.buf, p.len);

    /* Time passes: touches, then idle and absolute expiry, for each location. */
    header(&p, 2, 512, 2, 0, 61, 301, 1801, 3601);
    for (i = 0; i < 6; i++) {
        op(&p, 0, 1, 0, i, 0, 20 + i, 0);
    }
    for (i = 0; i < 30; i++) {
        op(&p, i & 1, 0, (i >> 2) & 1, i % 6, 2000 + i * 500, 0, 0);
    }
    op(&p, 1, 2, 0, 0, 60000, 10, 0);
    op(&p, 1, 1, 1, 0, 0, 10, 0);
    put("shm_model", "expiry", p.buf, p.len);

    /* Refusals: oversize, a limit one byte short, updates of absent keys. */
    header(&p, 0, 300, 1, 0, 1, 0, 0, 0);
    op(&p, 0, 1, 0, 2, 0, 255, 0);
    op(&p, 0, 1, 0, 2, 0, 0xf3, 0);
    op(&p, 0, 2, 0, 5, 0, 9, 0);
    op(&p, 0, 1, 0, 5, 0, 9, 0);
    op(&p, 0, 1, 0, 5, 0, 9, 0);
    put("shm_model", "refusals", p.buf, p.len);

    /* Three children writing sealed, clear and format 1 records over each
     * other's; loads with the store key alone; an update that conflicts. */
    header(&p, 0, 1024, 3, 1 << 2 | 2 << 4, 601, 0, 0, 0); /* sealed, clear, 1 */
    for (i = 0; i < 9; i++) {
        op(&p, i % 3, i < 3 ? 1 : 2, 0, i % 3, 10, 40 + i, 0);
        op(&p, (i + 1) % 3, 0, 0, i % 3, 10, 0, i & 1);
    }
    op(&p, 0, 2, 0, 0, 10, 50, 2);
    op(&p, 0, 2, 0, 0, 10, 50, 0);
    put("shm_model", "formats", p.buf, p.len);
    p.buf[3] |= 1 << 3; /* the second child (clear) refuses records in clear */
    put("shm_model", "formats-required", p.buf, p.len);

    /* Two stripes, large records: each stripe evicts from its own LRU list. */
    header(&p, 2 | 0x10 | 1 << 2, 8000, 2, 0, 0, 0, 0, 0);
    for (i = 0; i < 120; i++) {
        op(&p, i & 1, 1, 0, i % 40, 1, 200 + i % 50, 0);
        if (i % 4 == 3) {
            op(&p, 1, 0, 0, (i * 5) % 40, 1, 0, 0);
        }
    }
    put("shm_model", "stripes", p.buf, p.len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkseeds DIR\n");
        return 2;
    }
    root = argv[1];
    if (ss_id_key(FUZZ_SESSION_ID, &key) != APR_SUCCESS) {
        fprintf(stderr, "mkseeds: no key\n");
        return 1;
    }
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    apr_initialize();
    apr_pool_create(&pool, NULL);
    cookies();
    records();
    uris();
    replies();
    shm_programs();
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
