/* ss_redis_index.c - the per-owner index of the Redis store, and the
 * administration that walks it or the keyspace (ss_redis_index.h). */
#include <string.h>

#include <apr_strings.h>

#include "ss_log.h"
#include "ss_redis_index.h"

#define KEY_MAX (SS_REDIS_PREFIX_MAX + SS_KEY_HEX_LEN + 1)
#define INDEX_KEY_MAX (SS_REDIS_PREFIX_MAX + sizeof(SS_REDIS_INDEX_INFIX) + SS_OWNER_HEX_LEN + 1)
#define SCAN_COUNT "500"

/* The index write: KEYS[1] the index; ARGV[1] now (ms), ARGV[2] the slack
 * (ms), ARGV[3] the score and ARGV[4] the member to add ("" adds nothing:
 * a trim). Trims finite entries dead by the slack, adds, and sets the TTL
 * from the highest score (none while an open entry, score < 0, is there).
 * Returns {entries trimmed, open entries}. Scores are integers in ms: exact
 * in Lua's doubles. */
static const char index_script[] =
    "local idx, now, slack = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local gone = redis.call('ZREMRANGEBYSCORE', idx, 0, '(' .. string.format('%.0f', now - "
    "slack))\n"
    "if ARGV[4] ~= '' then redis.call('ZADD', idx, ARGV[3], ARGV[4]) end\n"
    "local open = redis.call('ZCOUNT', idx, '-inf', '(0')\n"
    "if open > 0 then\n"
    "  redis.call('PERSIST', idx)\n"
    "else\n"
    "  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')\n"
    "  if top[2] then\n"
    "    redis.call('PEXPIRE', idx, string.format('%.0f', tonumber(top[2]) - now + slack))\n"
    "  end\n"
    "end\n"
    "return {gone, open}\n";

/* One session's clear header, size and TTL: KEYS[1] the session key.
 * Returns 0 when it is absent, else {first 64 bytes, length, PTTL}. */
static const char entry_script[] = "local v = redis.call('GETRANGE', KEYS[1], 0, 63)\n"
                                   "if v == '' then return 0 end\n"
                                   "return {v, redis.call('STRLEN', KEYS[1]), "
                                   "redis.call('PTTL', KEYS[1])}\n";

static void cmd_add(ss_redis_cmd_t *cmd, const char *arg, size_t len)
{
    cmd->argv[cmd->argc] = arg;
    cmd->len[cmd->argc++] = len;
}

static void cmd_str(ss_redis_cmd_t *cmd, const char *arg)
{
    cmd_add(cmd, arg, strlen(arg));
}

static apr_status_t unexpected(const ss_redis_index_t *ix, const char *what, const redisReply *r)
{
    ss_log(SS_LOG_ERR, APR_EGENERAL,
           "redis session store %s: unexpected reply type %d to %s; closing this "
           "process's connections",
           ix->target, r->type, what);
    if (ix->cluster) {
        ss_redis_cluster_discard(ix->cluster);
    } else {
        ss_redis_conn_discard(ix->conn);
    }
    return APR_EGENERAL;
}

static void index_key(const ss_redis_index_t *ix, const ss_owner_t *owner, char *out)
{
    char hex[SS_OWNER_HEX_LEN + 1];

    ss_owner_hex(owner, hex);
    apr_snprintf(out, INDEX_KEY_MAX, "%s" SS_REDIS_INDEX_INFIX "%s", ix->prefix, hex);
}

static void session_key(const ss_redis_index_t *ix, const char *member, char *out)
{
    apr_snprintf(out, KEY_MAX, "%s%s", ix->prefix, member);
}

/* A member is the 64 lower-case hex digits of a store key. */
static int member_to_key(const char *s, apr_size_t len, ss_key_t *key)
{
    apr_size_t i;

    if (len != SS_KEY_HEX_LEN) {
        return 0;
    }
    for (i = 0; i < SS_KEY_BYTES; i++) {
        int v = 0, j;

        for (j = 0; j < 2; j++) {
            char c = s[2 * i + j];

            if (c >= '0' && c <= '9') {
                v = v * 16 + (c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v = v * 16 + (c - 'a' + 10);
            } else {
                return 0;
            }
        }
        key->bytes[i] = (unsigned char)v;
    }
    return 1;
}

/* Send cmd; on a cluster to the node of its one key (a script's KEYS[1],
 * else its first argument). SCAN is refused there: each node would have to
 * be walked. */
static apr_status_t dispatch(const ss_redis_index_t *ix, const ss_redis_cmd_t *cmd,
                             redisReply **reply)
{
    int k;

    if (!ix->cluster) {
        return ss_redis_conn_command(ix->conn, cmd, reply);
    }
    if (!strcmp(cmd->argv[0], "SCAN")) {
        ss_log(SS_LOG_ERR, APR_ENOTIMPL,
               "redis session store %s: listing or purging every session is not available on "
               "a Redis Cluster (only by owner)",
               ix->target);
        return APR_ENOTIMPL;
    }
    k = !strcmp(cmd->argv[0], "EVAL") || !strcmp(cmd->argv[0], "EVALSHA") ? 3 : 1;
    return ss_redis_cluster_command(ix->cluster, cmd, cmd->argv[k], cmd->len[k], reply);
}

/* Run a command whose reply must be of type want (-1: any); *reply is set
 * only on success. */
static apr_status_t run(const ss_redis_index_t *ix, const ss_redis_cmd_t *cmd, int want,
                        redisReply **reply)
{
    apr_status_t rv = dispatch(ix, cmd, reply);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (want >= 0 && (*reply)->type != want) {
        rv = unexpected(ix, cmd->argv[0], *reply);
        freeReplyObject(*reply);
        *reply = NULL;
    }
    return rv;
}

/* Run the index script on idx; member NULL trims only. *open: the number of
 * open entries left, *gone: how many finite ones were trimmed. */
static apr_status_t index_write(const ss_redis_index_t *ix, const char *idx, const char *score,
                                const char *member, apr_time_t now, long long *gone,
                                long long *open)
{
    char now_ms[24], slack[24];
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    apr_snprintf(now_ms, sizeof(now_ms), "%" APR_TIME_T_FMT, apr_time_as_msec(now));
    apr_snprintf(slack, sizeof(slack), "%" APR_TIME_T_FMT, apr_time_as_msec(SS_REDIS_INDEX_SLACK));
    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, "EVAL");
    cmd_str(&cmd, index_script);
    cmd_str(&cmd, "1");
    cmd_str(&cmd, idx);
    cmd_str(&cmd, now_ms);
    cmd_str(&cmd, slack);
    cmd_str(&cmd, score ? score : "0");
    cmd_str(&cmd, member ? member : "");
    rv = run(ix, &cmd, REDIS_REPLY_ARRAY, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        rv = unexpected(ix, "the index script", reply);
    } else {
        *gone = reply->element[0]->integer;
        *open = reply->element[1]->integer;
    }
    freeReplyObject(reply);
    return rv;
}

/* A command of three or four string arguments, its integer reply in *n. */
static apr_status_t integer_command(const ss_redis_index_t *ix, const char *verb, const char *a,
                                    const char *b, long long *n)
{
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, verb);
    cmd_str(&cmd, a);
    if (b) {
        cmd_str(&cmd, b);
    }
    rv = run(ix, &cmd, REDIS_REPLY_INTEGER, &reply);
    if (rv == APR_SUCCESS) {
        *n = reply->integer;
        freeReplyObject(reply);
    }
    return rv;
}

/* The members of idx with a score in [min, max] (Redis syntax), as an array
 * reply. */
static apr_status_t members(const ss_redis_index_t *ix, const char *idx, const char *min,
                            const char *max, redisReply **reply)
{
    ss_redis_cmd_t cmd;

    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, "ZRANGEBYSCORE");
    cmd_str(&cmd, idx);
    cmd_str(&cmd, min);
    cmd_str(&cmd, max);
    return run(ix, &cmd, REDIS_REPLY_ARRAY, reply);
}

/* Drop the open entries of idx older than the grace period whose session no
 * longer exists; *dropped counts them. */
static apr_status_t check_open(const ss_redis_index_t *ix, const char *idx, apr_time_t now,
                               apr_size_t *dropped)
{
    char min[32];
    redisReply *reply = NULL;
    apr_status_t rv;
    size_t i;

    /* Open scores are -(time added): older than the grace period means a
     * score above -(now - grace). */
    apr_snprintf(min, sizeof(min), "(-%" APR_TIME_T_FMT,
                 apr_time_as_msec(now - SS_REDIS_INDEX_GRACE));
    rv = members(ix, idx, min, "(0", &reply);
    for (i = 0; rv == APR_SUCCESS && i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        char k[KEY_MAX];
        long long n = 0;

        if (m->type != REDIS_REPLY_STRING || m->len != SS_KEY_HEX_LEN) {
            continue;
        }
        session_key(ix, m->str, k);
        rv = integer_command(ix, "EXISTS", k, NULL, &n);
        if (rv == APR_SUCCESS && n == 0) {
            rv = integer_command(ix, "ZREM", idx, m->str, &n);
            *dropped += n > 0;
        }
    }
    if (reply) {
        freeReplyObject(reply);
    }
    return rv;
}

apr_status_t ss_redis_index_add(const ss_redis_index_t *ix, const ss_owner_t *owner,
                                const ss_key_t *key, apr_time_t until, apr_time_t now)
{
    char idx[INDEX_KEY_MAX], member[SS_KEY_HEX_LEN + 1], score[32];
    long long gone = 0, open = 0;
    apr_size_t dropped = 0;
    apr_status_t rv;

    index_key(ix, owner, idx);
    ss_key_hex(key, member);
    if (until > 0) {
        apr_snprintf(score, sizeof(score), "%" APR_TIME_T_FMT, apr_time_as_msec(until) + 1);
    } else {
        apr_snprintf(score, sizeof(score), "-%" APR_TIME_T_FMT, apr_time_as_msec(now));
    }
    rv = index_write(ix, idx, score, member, now, &gone, &open);
    if (rv == APR_SUCCESS && open >= SS_REDIS_INDEX_CHECK_FROM && !(open & (open - 1))) {
        rv = check_open(ix, idx, now, &dropped);
    }
    return rv;
}

apr_status_t ss_redis_index_revoke(const ss_redis_index_t *ix, const ss_owner_t *owner,
                                   const ss_key_t *except, apr_time_t now, apr_size_t *count)
{
    char idx[INDEX_KEY_MAX], keep[SS_KEY_HEX_LEN + 1] = "";
    redisReply *reply = NULL;
    apr_size_t removed = 0;
    apr_status_t rv;
    size_t i;

    (void)now;
    index_key(ix, owner, idx);
    if (except) {
        ss_key_hex(except, keep);
    }
    rv = members(ix, idx, "-inf", "+inf", &reply);
    /* Each session first, then its entry: an interrupted revoke leaves
     * entries behind, never a live session without one. */
    for (i = 0; rv == APR_SUCCESS && i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        char k[KEY_MAX];
        long long n = 0;

        if (m->type != REDIS_REPLY_STRING || m->len != SS_KEY_HEX_LEN || !strcmp(m->str, keep)) {
            continue;
        }
        session_key(ix, m->str, k);
        rv = integer_command(ix, "DEL", k, NULL, &n);
        /* An entry whose session is not there (yet) stays: it may be a
         * login between its entry and its SET; trimming takes it later. */
        if (rv == APR_SUCCESS && n > 0) {
            removed++;
            rv = integer_command(ix, "ZREM", idx, m->str, &n);
        }
    }
    if (reply) {
        freeReplyObject(reply);
    }
    if (count) {
        *count = removed;
    }
    return rv;
}

/* Fill e from the entry script's reply; 0 when the session is absent. */
static int entry_from(const redisReply *r, apr_time_t now, ss_store_entry_t *e)
{
    ss_record_head_t head;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_INTEGER) {
        return 0;
    }
    e->size = (apr_size_t)r->element[1]->integer;
    e->expires = r->element[2]->integer >= 0 ? now + r->element[2]->integer * 1000 : 0;
    /* The clear header only: a sealed body needs the ID, which no store holds. */
    e->readable = ss_record_peek((const unsigned char *)r->element[0]->str, r->element[0]->len,
                                 &head) == APR_SUCCESS;
    e->created = e->readable ? head.created : 0;
    e->accessed = e->readable ? head.accessed : 0;
    return 1;
}

/* Look up one session and pass it to fn: *stop when fn says so, *seen when
 * the session exists. */
static apr_status_t visit(const ss_redis_index_t *ix, const char *k, const ss_key_t *key,
                          apr_time_t now, ss_store_entry_fn fn, void *baton, int *seen, int *stop)
{
    ss_store_entry_t e;
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, "EVAL");
    cmd_str(&cmd, entry_script);
    cmd_str(&cmd, "1");
    cmd_str(&cmd, k);
    rv = run(ix, &cmd, -1, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    memset(&e, 0, sizeof(e));
    e.key = *key;
    *seen = entry_from(reply, now, &e);
    if (!*seen && reply->type != REDIS_REPLY_INTEGER) {
        rv = unexpected(ix, "the entry script", reply);
    } else if (*seen) {
        *stop = fn(baton, &e) != 0;
    }
    freeReplyObject(reply);
    return rv;
}

static apr_status_t scan_owner(const ss_redis_index_t *ix, const ss_owner_t *owner,
                               apr_size_t limit, ss_store_entry_fn fn, void *baton, apr_time_t now)
{
    char idx[INDEX_KEY_MAX];
    redisReply *reply = NULL;
    apr_size_t done = 0;
    apr_status_t rv;
    int stop = 0;
    size_t i;

    index_key(ix, owner, idx);
    rv = members(ix, idx, "-inf", "+inf", &reply);
    for (i = 0; rv == APR_SUCCESS && !stop && i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        char k[KEY_MAX];
        ss_key_t key;
        int seen = 0;

        if (m->type != REDIS_REPLY_STRING || !member_to_key(m->str, m->len, &key)) {
            continue;
        }
        session_key(ix, m->str, k);
        rv = visit(ix, k, &key, now, fn, baton, &seen, &stop);
        done += seen;
        stop = stop || (limit && done >= limit);
    }
    if (reply) {
        freeReplyObject(reply);
    }
    return rv;
}

/* The prefix as a SCAN MATCH pattern, its glob characters escaped, then
 * rest. */
static const char *pattern(const ss_redis_index_t *ix, const char *rest, apr_pool_t *p)
{
    apr_size_t n = strlen(ix->prefix), rest_len = strlen(rest), i, o = 0;
    char *out = apr_palloc(p, 2 * n + rest_len + 1);

    for (i = 0; i < n; i++) {
        if (strchr("*?[]\\", ix->prefix[i])) {
            out[o++] = '\\';
        }
        out[o++] = ix->prefix[i];
    }
    memcpy(out + o, rest, rest_len + 1);
    return out;
}

/* SCAN the keys matching match; call each(baton, key, len) for every one,
 * until it returns non-zero or fails. */
typedef apr_status_t (*key_fn)(void *baton, const char *key, apr_size_t len, int *stop);

static apr_status_t scan_keys(const ss_redis_index_t *ix, const char *match, key_fn each,
                              void *baton)
{
    char cursor[32] = "0";
    apr_status_t rv = APR_SUCCESS;
    int stop = 0;

    do {
        ss_redis_cmd_t cmd;
        redisReply *reply = NULL;
        const redisReply *keys;
        size_t i;

        memset(&cmd, 0, sizeof(cmd));
        cmd_str(&cmd, "SCAN");
        cmd_str(&cmd, cursor);
        cmd_str(&cmd, "MATCH");
        cmd_str(&cmd, match);
        cmd_str(&cmd, "COUNT");
        cmd_str(&cmd, SCAN_COUNT);
        rv = run(ix, &cmd, REDIS_REPLY_ARRAY, &reply);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[0]->len >= sizeof(cursor) ||
            reply->element[1]->type != REDIS_REPLY_ARRAY) {
            rv = unexpected(ix, "SCAN", reply);
            freeReplyObject(reply);
            return rv;
        }
        apr_cpystrn(cursor, reply->element[0]->str, sizeof(cursor));
        keys = reply->element[1];
        for (i = 0; rv == APR_SUCCESS && !stop && i < keys->elements; i++) {
            if (keys->element[i]->type == REDIS_REPLY_STRING) {
                rv = each(baton, keys->element[i]->str, keys->element[i]->len, &stop);
            }
        }
        freeReplyObject(reply);
    } while (rv == APR_SUCCESS && !stop && strcmp(cursor, "0"));
    return rv;
}

typedef struct {
    const ss_redis_index_t *ix;
    apr_size_t limit, done;
    ss_store_entry_fn fn;
    void *baton;
    apr_time_t now;
} scan_all_t;

static apr_status_t scan_one(void *baton, const char *k, apr_size_t len, int *stop)
{
    scan_all_t *sa = baton;
    apr_size_t n = strlen(sa->ix->prefix);
    ss_key_t key;
    int seen = 0;
    apr_status_t rv;

    /* Only session keys: the prefix and 64 hex digits (not an index). */
    if (len != n + SS_KEY_HEX_LEN || !member_to_key(k + n, SS_KEY_HEX_LEN, &key)) {
        return APR_SUCCESS;
    }
    rv = sa->fn ? visit(sa->ix, k, &key, sa->now, sa->fn, sa->baton, &seen, stop) : APR_SUCCESS;
    sa->done += seen;
    *stop = *stop || (sa->limit && sa->done >= sa->limit);
    return rv;
}

apr_status_t ss_redis_index_scan(const ss_redis_index_t *ix, const ss_owner_t *owner,
                                 apr_size_t limit, ss_store_entry_fn fn, void *baton,
                                 apr_time_t now, apr_pool_t *p)
{
    scan_all_t sa;

    if (owner) {
        return scan_owner(ix, owner, limit, fn, baton, now);
    }
    sa.ix = ix;
    sa.limit = limit;
    sa.done = 0;
    sa.fn = fn;
    sa.baton = baton;
    sa.now = now;
    return scan_keys(ix, pattern(ix, "*", p), scan_one, &sa);
}

typedef struct {
    const ss_redis_index_t *ix;
    apr_time_t now;
    apr_size_t removed;
} purge_t;

static apr_status_t purge_one(void *baton, const char *k, apr_size_t len, int *stop)
{
    purge_t *pu = baton;
    char idx[INDEX_KEY_MAX];
    long long gone = 0, open = 0;
    apr_status_t rv;

    (void)stop;
    if (len >= sizeof(idx)) {
        return APR_SUCCESS;
    }
    memcpy(idx, k, len);
    idx[len] = '\0';
    rv = index_write(pu->ix, idx, NULL, NULL, pu->now, &gone, &open);
    pu->removed += (apr_size_t)gone;
    if (rv == APR_SUCCESS && open > 0) {
        rv = check_open(pu->ix, idx, pu->now, &pu->removed);
    }
    return rv;
}

apr_status_t ss_redis_index_purge(const ss_redis_index_t *ix, apr_time_t now, apr_size_t *count)
{
    apr_pool_t *p;
    purge_t pu = {ix, now, 0};
    apr_status_t rv = apr_pool_create(&p, NULL);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* Redis drops dead sessions by their TTL: only the indexes need it. */
    rv = scan_keys(ix, pattern(ix, SS_REDIS_INDEX_INFIX "*", p), purge_one, &pu);
    apr_pool_destroy(p);
    if (count) {
        *count = pu.removed;
    }
    return rv;
}
