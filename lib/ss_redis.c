/* ss_redis.c - the Redis backend (hiredis).
 *
 * Three parts: the URI parser, the connection layer (a per-process LIFO of
 * idle contexts, the circuit breaker and the rate-limited outage log, all
 * under one thread mutex never held across network I/O), and the store
 * operations, each one round trip. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <hiredis.h>
#include <openssl/evp.h>

#include "ss_log.h"
#include "ss_redis.h"

#define PREFIX_MAX 100
#define KEY_MAX (PREFIX_MAX + SS_KEY_HEX_LEN + 1)
#define MS_MAX 60000
#define MAX_IDLE_MAX 1024
#define DB_MAX 2147483647L
#define ERR_LEN 256

/* ---- configuration ---- */

enum {
    P_CONNECT_TIMEOUT,
    P_COMMAND_TIMEOUT,
    P_BREAKER,
    P_PREFIX,
    P_DB,
    P_USER,
    P_PASSWORD,
    P_MAX_IDLE,
    P_COUNT
};

static const char *const param_names[P_COUNT] = {
    "connect_timeout", "command_timeout", "breaker", "prefix", "db", "user",
    "password",        "max_idle"};

typedef struct {
    ss_redis_config_t *cfg;
    apr_pool_t *p;
    unsigned seen; /* bit per param: from the query, the path or the userinfo */
} parse_t;

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
        return apr_psprintf(ps->p, "bad %s '%s': expected milliseconds, %ld..%d",
                            param_names[param], value, min, MS_MAX);
    }
    *out = apr_time_from_msec(v);
    return NULL;
}

static const char *set_db(parse_t *ps, const char *value)
{
    long v;
    const char *err = mark_seen(ps, P_DB);

    if (err) {
        return err;
    }
    if (!parse_number(value, 0, DB_MAX, &v)) {
        return apr_psprintf(ps->p, "bad db '%s': expected 0..%ld", value, DB_MAX);
    }
    ps->cfg->db = (int)v;
    return NULL;
}

static const char *set_prefix(parse_t *ps, const char *value)
{
    if (strlen(value) > PREFIX_MAX) {
        return apr_psprintf(ps->p, "prefix longer than %d bytes", PREFIX_MAX);
    }
    ps->cfg->prefix = value;
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
            return apr_psprintf(ps->p, "bad max_idle '%s': expected 0..%d", value, MAX_IDLE_MAX);
        }
        cfg->max_idle = (int)v;
        return NULL;
    }
    return "internal error: unhandled parameter";
}

static const char *parse_pair(parse_t *ps, const char *pair)
{
    const char *eq = strchr(pair, '='), *value, *err;
    char *name;
    int i;

    if (!eq) {
        return apr_psprintf(ps->p, "parameter '%s' needs a value (name=value)", pair);
    }
    name = apr_pstrmemdup(ps->p, pair, eq - pair);
    for (i = 0; i < P_COUNT && strcmp(name, param_names[i]); i++) {
    }
    if (i == P_COUNT) {
        return apr_psprintf(ps->p,
                            "unknown parameter '%s' (known: connect_timeout, command_timeout, "
                            "breaker, prefix, db, user, password, max_idle)",
                            name);
    }
    err = pct_decode(eq + 1, strlen(eq + 1), name, ps->p, &value);
    if (!err && i == P_DB) {
        return set_db(ps, value);
    }
    if (!err) {
        err = mark_seen(ps, i);
    }
    return err ? err : set_param(ps, i, value);
}

static const char *parse_query(parse_t *ps, const char *query)
{
    char *copy = apr_pstrdup(ps->p, query), *last, *pair;

    for (pair = apr_strtok(copy, "&", &last); pair; pair = apr_strtok(NULL, "&", &last)) {
        const char *err = parse_pair(ps, pair);
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

/* host, host:port, [v6], [v6]:port */
static const char *parse_hostport(parse_t *ps, const char *s)
{
    const char *colon;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1) {
            return "bad IPv6 address: expected [address]";
        }
        ps->cfg->host = apr_pstrmemdup(ps->p, s + 1, close - s - 1);
        if (!close[1]) {
            return NULL;
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
    return colon ? parse_port(ps, colon + 1) : NULL;
}

/* [userinfo@]host[:port][/db] */
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
    err = parse_hostport(ps, at ? at + 1 : authority);
    if (err || !slash || !slash[1]) {
        return err;
    }
    return set_db(ps, slash + 1);
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
    parse_t ps = {apr_palloc(p, sizeof(ss_redis_config_t)), p, 0};
    const char *rest, *query, *err;
    char *target;
    int is_unix;

    set_defaults(ps.cfg);
    if (has_scheme(uri, "redis://", &rest)) {
        is_unix = 0;
    } else if (has_scheme(uri, "unix://", &rest) || has_scheme(uri, "redis+unix://", &rest)) {
        is_unix = 1;
    } else if (has_scheme(uri, "rediss://", &rest)) {
        return "rediss:// (TLS) is not supported: use a Unix socket or a TLS tunnel";
    } else {
        return "expected redis://[[user]:password@]host[:port][/db][?param=value&...] or "
               "unix:///path/to/redis.sock[?param=value&...]";
    }
    if (strchr(rest, '#')) {
        return "a '#' must be percent-encoded (%23)";
    }
    query = strchr(rest, '?');
    target = query ? apr_pstrmemdup(p, rest, query - rest) : apr_pstrdup(p, rest);
    err = is_unix ? parse_unix(&ps, target) : parse_tcp(&ps, target);
    if (!err && query) {
        err = parse_query(&ps, query + 1);
    }
    if (!err && ps.cfg->user && !ps.cfg->password) {
        err = "a user needs a password";
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

/* Scheme, userinfo (password masked), host or path: enough to name the target. */
static const char *target_of(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    const char *user = cfg->user ? pct_encode(cfg->user, "", p) : "";
    const char *host = cfg->host;

    if (cfg->path) {
        return apr_psprintf(p, "unix://%s?db=%d%s%s%s", pct_encode(cfg->path, "/", p), cfg->db,
                            cfg->user ? "&user=" : "", user, cfg->password ? "&password=***" : "");
    }
    if (strchr(host, ':')) {
        host = apr_pstrcat(p, "[", host, "]", NULL);
    }
    return apr_psprintf(p, "redis://%s%s%s:%d/%d", user, cfg->password ? ":***@" : "", host,
                        cfg->port, cfg->db);
}

const char *ss_redis_describe(const ss_redis_config_t *cfg, apr_pool_t *p)
{
    return apr_psprintf(p,
                        "%s%sconnect_timeout=%" APR_TIME_T_FMT "&command_timeout=%" APR_TIME_T_FMT
                        "&breaker=%" APR_TIME_T_FMT "&prefix=%s&max_idle=%d",
                        target_of(cfg, p), cfg->path ? "&" : "?",
                        apr_time_as_msec(cfg->connect_timeout),
                        apr_time_as_msec(cfg->command_timeout), apr_time_as_msec(cfg->breaker),
                        pct_encode(cfg->prefix, ":", p), cfg->max_idle);
}

/* ---- connections, breaker, outage log ---- */

/* The load, as one script. KEYS[1] the key; ARGV: now, idle, absolute, touch
 * interval (microseconds, decimal), then now as 8 big-endian bytes. Returns
 * 0 (absent), 1 (expired, deleted), 2 (not a record, deleted) or {record,
 * touched}. Lua 5.1 numbers are doubles: exact for microsecond times below
 * 2^53 (year 2255). The offsets below are ss_record.h's, 1-based. */
#if SS_RECORD_HEADER_LEN != 26 || SS_RECORD_ACCESSED_OFFSET != 12 || SS_RECORD_VERSION != 1
#error "load_script hard-codes the record layout: update it"
#endif
static const char load_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return 0 end\n"
    "local m1, m2, ver = string.byte(v, 1, 3)\n"
    "if #v < 26 or m1 ~= 83 or m2 ~= 83 or ver ~= 1 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 2\n"
    "end\n"
    "local function be64(i)\n"
    "  local n = 0\n"
    "  for k = i, i + 7 do n = n * 256 + string.byte(v, k) end\n"
    "  return n\n"
    "end\n"
    "local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local abs, every = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local created, accessed = be64(5), be64(13)\n"
    "if (abs > 0 and now >= created + abs) or (idle > 0 and now >= accessed + idle) then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "if idle > 0 and now - accessed >= every then\n"
    "  local deadline = now + idle\n"
    "  if abs > 0 and created + abs < deadline then deadline = created + abs end\n"
    "  redis.call('SETRANGE', KEYS[1], 12, ARGV[5])\n"
    "  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil((deadline - now) / 1000)))\n"
    "  return {string.sub(v, 1, 12) .. ARGV[5] .. string.sub(v, 21), 1}\n"
    "end\n"
    "return {v, 0}\n";

typedef struct {
    ss_redis_config_t cfg;
    const char *target; /* for log lines, no password */
    char sha[41];       /* SHA-1 of load_script */
    apr_thread_mutex_t *mutex;
    /* Everything below is under mutex. */
    redisContext **idle; /* LIFO: the most recently used socket is the likeliest alive */
    int nidle;
    pid_t pid; /* process the idle contexts belong to */
    int closed;
    apr_time_t breaker_until; /* 0: closed; else fail fast until then, then one probe */
    int probing;
    int down; /* failing since down_since; logged */
    apr_time_t down_since, last_report;
    apr_uint64_t failures, unreported, unreported_fast;
    apr_status_t last_rv;
    char last_error[ERR_LEN];
    ss_store_stats_t stats;
} redis_store_t;

typedef struct {
    redisContext *c;
    int pooled;    /* taken from the idle pool, so possibly stale */
    int timed_out; /* the last failure was a timeout */
    int connects, retried;
    char err[ERR_LEN]; /* why the last exchange failed */
} conn_t;

typedef struct {
    int argc;
    const char *argv[9];
    size_t len[9];
    int evalsha; /* argv[1] is the script's SHA: fall back to EVAL on NOSCRIPT */
} cmd_t;

/* A log line decided under the mutex, written after it is released. */
typedef struct {
    int level; /* 0: none */
    apr_status_t rv;
    char msg[512];
} note_t;

static void note_emit(const note_t *n)
{
    if (n->level) {
        ss_log(n->level, n->rv, "%s", n->msg);
    }
}

static struct timeval to_timeval(apr_interval_time_t t)
{
    struct timeval tv;

    tv.tv_sec = (time_t)apr_time_sec(t);
    tv.tv_usec = (suseconds_t)apr_time_usec(t);
    return tv;
}

static void drop_idle_locked(redis_store_t *s)
{
    while (s->nidle) {
        redisFree(s->idle[--s->nidle]);
    }
}

/* A forked child inherits its parent's sockets and state; it starts afresh. */
static void check_pid_locked(redis_store_t *s)
{
    pid_t pid = getpid();

    if (s->pid == pid) {
        return;
    }
    drop_idle_locked(s);
    s->pid = pid;
    s->breaker_until = 0;
    s->probing = 0;
    s->down = 0;
    memset(&s->stats, 0, sizeof(s->stats));
}

static void report_locked(redis_store_t *s, apr_time_t now, note_t *note)
{
    note->level = SS_LOG_ERR;
    note->rv = s->last_rv;
    apr_snprintf(note->msg, sizeof(note->msg),
                 "redis session store %s still unavailable: %" APR_UINT64_T_FMT
                 " more failed operations in the last %" APR_TIME_T_FMT " s (%" APR_UINT64_T_FMT
                 " failed at once, breaker open); last error: %s",
                 s->target, s->unreported, apr_time_sec(now - s->last_report), s->unreported_fast,
                 s->last_error);
    s->last_report = now;
    s->unreported = 0;
    s->unreported_fast = 0;
}

/* Count a failed operation; log the first of an outage, then summaries. */
static void failed_locked(redis_store_t *s, apr_status_t rv, const char *why, int fast,
                          apr_time_t now, note_t *note)
{
    s->stats.errors++;
    s->stats.fast_fails += fast;
    if (!fast) {
        s->last_rv = rv;
        apr_cpystrn(s->last_error, why, sizeof(s->last_error));
    }
    if (!s->down) {
        s->down = 1;
        s->down_since = s->last_report = now;
        s->failures = 1;
        s->unreported = s->unreported_fast = 0;
        note->level = SS_LOG_ERR;
        note->rv = rv;
        apr_snprintf(note->msg, sizeof(note->msg),
                     "redis session store %s unavailable: %s; sessions can be neither loaded nor "
                     "saved until it answers (further failures summarised every %" APR_TIME_T_FMT
                     " s)",
                     s->target, why, apr_time_sec(SS_REDIS_LOG_INTERVAL));
        return;
    }
    s->failures++;
    s->unreported++;
    s->unreported_fast += fast;
    if (now - s->last_report >= SS_REDIS_LOG_INTERVAL) {
        report_locked(s, now, note);
    }
}

static void recovered_locked(redis_store_t *s, apr_time_t now, note_t *note)
{
    s->breaker_until = 0;
    s->probing = 0;
    if (!s->down) {
        return;
    }
    s->down = 0;
    note->level = SS_LOG_NOTICE;
    note->rv = APR_SUCCESS;
    apr_snprintf(note->msg, sizeof(note->msg),
                 "redis session store %s answers again after %" APR_UINT64_T_FMT
                 " failed operations over %" APR_TIME_T_FMT " ms",
                 s->target, s->failures, apr_time_as_msec(now - s->down_since));
}

/* Admit an operation (or fail it at once while the breaker is open) and hand
 * it an idle connection if there is one. */
static apr_status_t acquire(redis_store_t *s, conn_t *conn)
{
    apr_time_t now = apr_time_now();
    note_t note = {0};
    apr_status_t rv = APR_SUCCESS;

    apr_thread_mutex_lock(s->mutex);
    check_pid_locked(s);
    if (s->cfg.breaker > 0 && s->breaker_until) {
        if (now < s->breaker_until || s->probing) {
            rv = APR_ECONNREFUSED;
            failed_locked(s, rv, "breaker open", 1, now, &note);
        } else {
            s->probing = 1; /* this operation is the probe */
        }
    }
    if (rv == APR_SUCCESS && s->nidle) {
        conn->c = s->idle[--s->nidle];
        conn->pooled = 1;
    }
    apr_thread_mutex_unlock(s->mutex);
    note_emit(&note);
    return rv;
}

static void release(redis_store_t *s, conn_t *conn, apr_status_t rv)
{
    apr_time_t now = apr_time_now();
    note_t note = {0};
    int io_failed = !conn->c; /* an error reply leaves the connection usable */

    apr_thread_mutex_lock(s->mutex);
    s->stats.connects += conn->connects;
    s->stats.retries += conn->retried;
    if (conn->c && !s->closed && s->pid == getpid() && s->nidle < s->cfg.max_idle) {
        s->idle[s->nidle++] = conn->c;
        conn->c = NULL;
    }
    if (rv == APR_SUCCESS) {
        recovered_locked(s, now, &note);
    } else {
        /* Only I/O failures open the breaker: an error reply came quickly
         * over a working connection, so nothing is gained by failing fast. */
        if (io_failed && s->cfg.breaker > 0) {
            s->breaker_until = now + s->cfg.breaker;
        } else {
            s->breaker_until = 0;
        }
        s->probing = 0;
        failed_locked(s, rv, conn->err, 0, now, &note);
    }
    apr_thread_mutex_unlock(s->mutex);
    if (conn->c) {
        redisFree(conn->c);
        conn->c = NULL;
    }
    note_emit(&note);
}

/* Redis restarted or dropped idle clients: the other idle sockets are as
 * stale as the one that just failed. */
static void flush_idle(redis_store_t *s)
{
    apr_thread_mutex_lock(s->mutex);
    drop_idle_locked(s);
    apr_thread_mutex_unlock(s->mutex);
}

static int is_timeout(int err)
{
    /* SO_RCVTIMEO/SO_SNDTIMEO expiry, or hiredis's own connect timeout. */
    return err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT;
}

/* Status for a context that failed at the I/O or protocol level; err is the
 * errno saved right after the failing call. Frees the context. */
static apr_status_t conn_failed(conn_t *conn, redisContext *c, int err, const char *what)
{
    apr_status_t rv;

    conn->timed_out = c->err == REDIS_ERR_IO && is_timeout(err);
    if (conn->timed_out) {
        rv = APR_TIMEUP;
    } else if (c->err == REDIS_ERR_EOF) {
        rv = APR_EOF;
    } else if (c->err == REDIS_ERR_IO && err) {
        rv = APR_FROM_OS_ERROR(err);
    } else if (c->err == REDIS_ERR_OOM) {
        rv = APR_ENOMEM;
    } else {
        rv = APR_EGENERAL;
    }
    apr_snprintf(conn->err, sizeof(conn->err), "%s: %s", what,
                 conn->timed_out ? "timed out" : c->errstr);
    redisFree(c);
    if (conn->c == c) {
        conn->c = NULL;
    }
    return rv;
}

/* Note an error reply, without its final period: it goes inside a sentence. */
static void refused(conn_t *conn, const char *what, const redisReply *reply)
{
    size_t n;

    apr_snprintf(conn->err, sizeof(conn->err), "%s refused: %s", what, reply->str);
    n = strlen(conn->err);
    if (n && conn->err[n - 1] == '.') {
        conn->err[n - 1] = '\0';
    }
}

/* AUTH and SELECT, pipelined: one round trip per new connection. */
static apr_status_t setup(const redis_store_t *s, conn_t *conn, redisContext *c)
{
    const ss_redis_config_t *cfg = &s->cfg;
    const char *argv[3];
    char db[16];
    int n = 0, i, err;
    redisReply *reply = NULL;
    apr_status_t rv = APR_SUCCESS;

    if (cfg->password) {
        argv[0] = "AUTH";
        argv[1] = cfg->user ? cfg->user : cfg->password;
        argv[2] = cfg->password;
        if (redisAppendCommandArgv(c, cfg->user ? 3 : 2, argv, NULL) != REDIS_OK) {
            return conn_failed(conn, c, 0, "AUTH");
        }
        n++;
    }
    if (cfg->db) {
        apr_snprintf(db, sizeof(db), "%d", cfg->db);
        argv[0] = "SELECT";
        argv[1] = db;
        if (redisAppendCommandArgv(c, 2, argv, NULL) != REDIS_OK) {
            return conn_failed(conn, c, 0, "SELECT");
        }
        n++;
    }
    for (i = 0; i < n && rv == APR_SUCCESS; i++) {
        if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
            err = errno;
            return conn_failed(conn, c, err, "AUTH/SELECT");
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            refused(conn, i == 0 && cfg->password ? "AUTH" : "SELECT", reply);
            rv = APR_EGENERAL;
        }
        freeReplyObject(reply);
    }
    if (rv != APR_SUCCESS) {
        redisFree(c);
    }
    return rv;
}

static apr_status_t connect_new(const redis_store_t *s, conn_t *conn)
{
    const ss_redis_config_t *cfg = &s->cfg;
    struct timeval tv = to_timeval(cfg->connect_timeout);
    redisContext *c;
    apr_status_t rv;
    int err;

    c = cfg->path ? redisConnectUnixWithTimeout(cfg->path, tv)
                  : redisConnectWithTimeout(cfg->host, cfg->port, tv);
    err = errno;
    if (!c) {
        apr_cpystrn(conn->err, "cannot allocate a redis context", sizeof(conn->err));
        return APR_ENOMEM;
    }
    if (c->err) {
        return conn_failed(conn, c, err, "connect");
    }
    conn->connects++;
    if (redisSetTimeout(c, to_timeval(cfg->command_timeout)) != REDIS_OK ||
        (!cfg->path && redisEnableKeepAlive(c) != REDIS_OK)) {
        return conn_failed(conn, c, errno, "socket options");
    }
    rv = setup(s, conn, c);
    if (rv == APR_SUCCESS) {
        conn->c = c;
    }
    return rv;
}

static redisReply *send_cmd(redisContext *c, cmd_t *cmd)
{
    return redisCommandArgv(c, cmd->argc, cmd->argv, cmd->len);
}

/* One command on conn (connecting first if it has none). An I/O failure
 * frees the connection; an error reply leaves it usable. */
static apr_status_t exchange(const redis_store_t *s, conn_t *conn, cmd_t *cmd, redisReply **out)
{
    redisReply *reply;
    cmd_t eval;
    apr_status_t rv;

    if (!conn->c) {
        rv = connect_new(s, conn);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    reply = send_cmd(conn->c, cmd);
    if (reply && reply->type == REDIS_REPLY_ERROR && cmd->evalsha &&
        !strncmp(reply->str, "NOSCRIPT", 8)) {
        /* Script cache empty (restart, SCRIPT FLUSH): EVAL caches it again. */
        freeReplyObject(reply);
        eval = *cmd;
        eval.argv[0] = "EVAL";
        eval.argv[1] = load_script;
        eval.len[0] = 4;
        eval.len[1] = strlen(load_script);
        reply = send_cmd(conn->c, &eval);
    }
    if (!reply) {
        int err = errno;

        return conn_failed(conn, conn->c, err, cmd->argv[0]);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        refused(conn, cmd->argv[0], reply);
        freeReplyObject(reply);
        return APR_EGENERAL;
    }
    *out = reply;
    return APR_SUCCESS;
}

/* One command, with the breaker, the pool, and one retry on a fresh
 * connection when a pooled one turns out dead. A timeout is not retried:
 * the request would wait twice. */
static apr_status_t roundtrip(redis_store_t *s, cmd_t *cmd, redisReply **reply)
{
    conn_t conn;
    apr_status_t rv;

    memset(&conn, 0, sizeof(conn));
    rv = acquire(s, &conn);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = exchange(s, &conn, cmd, reply);
    if (rv != APR_SUCCESS && conn.pooled && !conn.c) {
        flush_idle(s);
        if (!conn.timed_out) {
            conn.pooled = 0;
            conn.retried = 1;
            rv = exchange(s, &conn, cmd, reply);
        }
    }
    release(s, &conn, rv);
    return rv;
}

static void bump(redis_store_t *s, apr_uint64_t *counter)
{
    apr_thread_mutex_lock(s->mutex);
    (*counter)++;
    apr_thread_mutex_unlock(s->mutex);
}

static apr_status_t unexpected(redis_store_t *s, const char *what, const redisReply *reply)
{
    ss_log(SS_LOG_ERR, APR_EGENERAL, "redis session store %s: unexpected reply type %d to %s",
           s->target, reply->type, what);
    bump(s, &s->stats.errors);
    return APR_EGENERAL;
}

/* ---- operations ---- */

static void make_key(const redis_store_t *s, const ss_key_t *key, char *out)
{
    apr_size_t n = strlen(s->cfg.prefix);

    memcpy(out, s->cfg.prefix, n);
    ss_key_hex(key, out + n);
}

static void cmd_add(cmd_t *cmd, const char *arg, size_t len)
{
    cmd->argv[cmd->argc] = arg;
    cmd->len[cmd->argc++] = len;
}

static void cmd_str(cmd_t *cmd, const char *arg)
{
    cmd_add(cmd, arg, strlen(arg));
}

/* The script found no live record: count why. */
static apr_status_t load_gone(redis_store_t *s, const ss_key_t *key, const redisReply *reply,
                              apr_pool_t *p)
{
    switch (reply->integer) {
    case 0:
        bump(s, &s->stats.misses);
        return APR_NOTFOUND;
    case 2:
        ss_log(SS_LOG_WARNING, APR_EINVAL,
               "redis session store %s: session %s held no valid record; deleted", s->target,
               ss_key_tag(key, p));
        /* fall through */
    case 1:
        bump(s, &s->stats.expired);
        return APR_NOTFOUND;
    }
    return unexpected(s, "the load script", reply);
}

static apr_status_t load_reply(redis_store_t *s, const ss_key_t *key, const ss_expiry_t *expiry,
                               apr_time_t now, const redisReply *reply, apr_pool_t *p,
                               ss_record_t *rec)
{
    const redisReply *value, *touched;
    apr_status_t rv;

    if (reply->type == REDIS_REPLY_INTEGER) {
        return load_gone(s, key, reply, p);
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        return unexpected(s, "the load script", reply);
    }
    value = reply->element[0];
    touched = reply->element[1];
    rv = ss_record_decode(value->str, value->len, p, rec);
    if (rv != APR_SUCCESS) {
        ss_log(SS_LOG_ERR, rv, "redis session store %s: session %s holds an undecodable record",
               s->target, ss_key_tag(key, p));
        bump(s, &s->stats.errors);
        return rv;
    }
    /* The script decided with the same rule; a disagreement would be a bug,
     * and must not return a dead session. */
    if (ss_expiry_check(expiry, rec->created, rec->accessed, now) != SS_LIVE) {
        bump(s, &s->stats.expired);
        return APR_NOTFOUND;
    }
    apr_thread_mutex_lock(s->mutex);
    s->stats.hits++;
    s->stats.touches += touched->integer == 1;
    apr_thread_mutex_unlock(s->mutex);
    return APR_SUCCESS;
}

static apr_status_t redis_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *expiry,
                               apr_time_t now, apr_pool_t *p, ss_record_t *rec)
{
    redis_store_t *s = store->impl;
    char k[KEY_MAX], num[4][24];
    unsigned char stamp[SS_RECORD_HEADER_LEN];
    cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    make_key(s, key, k);
    apr_snprintf(num[0], sizeof(num[0]), "%" APR_TIME_T_FMT, now);
    apr_snprintf(num[1], sizeof(num[1]), "%" APR_TIME_T_FMT, expiry->idle);
    apr_snprintf(num[2], sizeof(num[2]), "%" APR_TIME_T_FMT, expiry->absolute);
    apr_snprintf(num[3], sizeof(num[3]), "%" APR_TIME_T_FMT, ss_expiry_touch_interval(expiry));
    memset(stamp, 0, sizeof(stamp));
    ss_record_poke_accessed(stamp, now);
    memset(&cmd, 0, sizeof(cmd));
    cmd.evalsha = 1;
    cmd_str(&cmd, "EVALSHA");
    cmd_str(&cmd, s->sha);
    cmd_str(&cmd, "1");
    cmd_str(&cmd, k);
    cmd_str(&cmd, num[0]);
    cmd_str(&cmd, num[1]);
    cmd_str(&cmd, num[2]);
    cmd_str(&cmd, num[3]);
    cmd_add(&cmd, (const char *)stamp + SS_RECORD_ACCESSED_OFFSET, 8);
    rv = roundtrip(s, &cmd, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = load_reply(s, key, expiry, now, reply, p, rec);
    freeReplyObject(reply);
    return rv;
}

static apr_status_t redis_remove(ss_store_t *store, const ss_key_t *key)
{
    redis_store_t *s = store->impl;
    char k[KEY_MAX];
    cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    make_key(s, key, k);
    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, "DEL");
    cmd_str(&cmd, k);
    rv = roundtrip(s, &cmd, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        rv = unexpected(s, "DEL", reply);
    } else if (reply->integer > 0) {
        bump(s, &s->stats.removes);
    }
    freeReplyObject(reply);
    return rv;
}

static apr_status_t save_reply(redis_store_t *s, const redisReply *reply, ss_save_mode_e mode)
{
    if (reply->type == REDIS_REPLY_STATUS) {
        bump(s, &s->stats.saves);
        return APR_SUCCESS;
    }
    if (reply->type != REDIS_REPLY_NIL) {
        return unexpected(s, "SET", reply);
    }
    /* NX or XX said no. */
    if (mode == SS_SAVE_NEW) {
        return APR_EEXIST;
    }
    bump(s, &s->stats.refused_gone);
    return APR_NOTFOUND;
}

static apr_status_t redis_save(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                               apr_time_t deadline, ss_save_mode_e mode, apr_pool_t *p)
{
    redis_store_t *s = store->impl;
    apr_interval_time_t ttl = deadline ? deadline - rec->accessed : SS_REDIS_NO_DEADLINE_TTL;
    char k[KEY_MAX], ms[24], *buf;
    apr_size_t len;
    cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    if (ttl <= 0) {
        return redis_remove(store, key); /* already dead: nothing to keep */
    }
    rv = ss_record_encode(rec, p, &buf, &len);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    make_key(s, key, k);
    apr_snprintf(ms, sizeof(ms), "%" APR_TIME_T_FMT, (ttl + 999) / 1000);
    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, "SET");
    cmd_str(&cmd, k);
    cmd_add(&cmd, buf, len);
    cmd_str(&cmd, "PX");
    cmd_str(&cmd, ms);
    if (mode != SS_SAVE_UPSERT) {
        cmd_str(&cmd, mode == SS_SAVE_NEW ? "NX" : "XX");
    }
    rv = roundtrip(s, &cmd, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = save_reply(s, reply, mode);
    freeReplyObject(reply);
    return rv;
}

static apr_status_t redis_stats(ss_store_t *store, ss_store_stats_t *stats)
{
    redis_store_t *s = store->impl;

    apr_thread_mutex_lock(s->mutex);
    check_pid_locked(s);
    *stats = s->stats;
    apr_thread_mutex_unlock(s->mutex);
    return APR_SUCCESS;
}

static void redis_close(ss_store_t *store)
{
    redis_store_t *s = store->impl;

    apr_thread_mutex_lock(s->mutex);
    drop_idle_locked(s);
    s->closed = 1;
    apr_thread_mutex_unlock(s->mutex);
}

static apr_status_t cleanup(void *store)
{
    redis_close(store);
    return APR_SUCCESS;
}

static const ss_store_ops_t redis_ops = {"redis",      redis_load,  redis_save,
                                         redis_remove, redis_stats, redis_close};

static apr_status_t script_sha(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;

    if (!EVP_Digest(load_script, strlen(load_script), md, &len, EVP_sha1(), NULL) || len != 20) {
        return APR_EGENERAL;
    }
    for (i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = '\0';
    return APR_SUCCESS;
}

static const char *dup_or_null(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrdup(p, s) : NULL;
}

apr_status_t ss_redis_open(ss_store_t **store, const ss_redis_config_t *cfg, apr_pool_t *p)
{
    redis_store_t *s = apr_pcalloc(p, sizeof(*s));
    apr_status_t rv;

    s->cfg = *cfg;
    s->cfg.host = dup_or_null(p, cfg->host);
    s->cfg.path = dup_or_null(p, cfg->path);
    s->cfg.user = dup_or_null(p, cfg->user);
    s->cfg.password = dup_or_null(p, cfg->password);
    s->cfg.prefix = apr_pstrdup(p, cfg->prefix);
    if (strlen(s->cfg.prefix) > PREFIX_MAX || (!s->cfg.host == !s->cfg.path)) {
        return APR_EINVAL;
    }
    s->idle = apr_pcalloc(p, sizeof(*s->idle) * (cfg->max_idle > 0 ? cfg->max_idle : 1));
    s->target = target_of(&s->cfg, p);
    s->pid = getpid();
    rv = script_sha(s->sha);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&s->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *store = apr_pcalloc(p, sizeof(**store));
    (*store)->ops = &redis_ops;
    (*store)->impl = s;
    apr_pool_cleanup_register(p, *store, cleanup, apr_pool_cleanup_null);
    return APR_SUCCESS;
}
