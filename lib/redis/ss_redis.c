/* ss_redis.c - the Redis store: one round trip per operation, over the
 * connection layer (ss_redis_conn.c).
 *
 * A load is a plain GET judged here (the lean load). Whenever the script
 * below would write (a touch is due, the record is dead for every location,
 * or it does not decode), the load is made again by the script, which reads,
 * decides and writes atomically inside Redis: a second round trip at most
 * once per touch interval of a session, and once when a record dies or turns
 * out malformed. With SESSSTORE_REDIS_LOAD=script in the environment every
 * load is the script (the load of earlier releases; tests and bench/run). */
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "ss_log.h"
#include "ss_redis.h"
#include "ss_redis_cluster.h"
#include "ss_redis_conn.h"
#include "ss_redis_index.h"

#define KEY_MAX (SS_REDIS_PREFIX_MAX + SS_KEY_HEX_LEN + 1)

/* The load, as one script (every load that writes; lean_load mirrors its
 * decisions and must change with it). KEYS[1] the key; ARGV[1] now (microseconds,
 * decimal), ARGV[2] now as 8 big-endian bytes, ARGV[3] six decimal numbers
 * separated by spaces: idle, absolute and touch interval of the judging
 * location, idle and absolute of the keeping (most lenient) timeouts, all in
 * microseconds, and the TTL in milliseconds of a record that keeps no
 * deadline (few arguments: Redis refuses long commands before AUTH, and the
 * error would then be less clear). Returns 0 (absent), 1 (expired
 * everywhere, deleted), 2 (malformed, deleted), 3 (expired for this
 * location, kept), 4 (newer format, kept) or {record, touched}. Lua 5.1
 * numbers are doubles: exact for microsecond times below 2^53 (year 2255).
 * The offsets below are ss_record.h's, 1-based; both versions are judged
 * (the timestamps sit at the same offsets), a sealed body is authenticated
 * by the caller, which alone holds its key. */
#if SS_RECORD_HEADER_LEN != 24 || SS_RECORD_V1_HEADER_LEN != 26 || SS_RECORD_MIN_LEN != 26 ||      \
    SS_RECORD_ACCESSED_OFFSET != 12 || SS_RECORD_REVISION_OFFSET != 20 ||                          \
    SS_RECORD_VERSION != 2 || SS_RECORD_FLAG_SEALED != 1 || SS_RECORD_SEALED_MIN_LEN != 54
#error "load_script and save_script hard-code the record layout: update them"
#endif
static const char load_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return 0 end\n"
    "local m1, m2, ver, flags = string.byte(v, 1, 4)\n"
    "if #v < 26 or m1 ~= 83 or m2 ~= 83 or ver == 0 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 2\n"
    "end\n"
    "if ver > 2 then return 4 end\n"
    "local function be(i, n)\n"
    "  local x = 0\n"
    "  for k = i, i + n - 1 do x = x * 256 + string.byte(v, k) end\n"
    "  return x\n"
    "end\n"
    "local bad\n"
    "if ver == 1 then bad = flags ~= 0 or #v ~= 26 + be(21, 2) + be(23, 4)\n"
    "elseif flags == 0 then bad = be(25, 2) > #v - 26\n"
    "else bad = flags ~= 1 or #v < 54 end\n"
    "if bad then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 2\n"
    "end\n"
    "local now, created, accessed = tonumber(ARGV[1]), be(5, 8), be(13, 8)\n"
    "local n = {}\n"
    "for x in string.gmatch(ARGV[3], '%d+') do n[#n + 1] = tonumber(x) end\n"
    "local idle, abs, every, kidle, kabs, ms = n[1], n[2], n[3], n[4], n[5], n[6]\n"
    "local function dead(idle, abs)\n"
    "  return (abs > 0 and now >= created + abs) or (idle > 0 and now >= accessed + idle)\n"
    "end\n"
    "if dead(kidle, kabs) then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "if dead(idle, abs) then return 3 end\n"
    "if idle > 0 and now - accessed >= every then\n"
    "  local deadline = 0\n"
    "  if kidle > 0 then deadline = now + kidle end\n"
    "  if kabs > 0 and (deadline == 0 or created + kabs < deadline) then\n"
    "    deadline = created + kabs\n"
    "  end\n"
    "  if deadline > 0 then ms = math.ceil((deadline - now) / 1000) end\n"
    "  redis.call('SETRANGE', KEYS[1], 12, ARGV[2])\n"
    "  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ms))\n"
    "  return {string.sub(v, 1, 12) .. ARGV[2] .. string.sub(v, 21), 1}\n"
    "end\n"
    "return {v, 0}\n";

/* An update, compare-and-set on the record's revision, in one round trip.
 * KEYS[1] the key; ARGV[1] the new record, ARGV[2] its TTL in milliseconds,
 * ARGV[3] the revision loaded, as 4 big-endian bytes: it must be what the
 * stored record holds at bytes 21..24 (1-based; a v1 record holds revision
 * 0). Returns 1 (written), 0 (gone: nothing written) or 2 (conflict: another
 * revision, or not a record of a version this node reads; nothing written). */
static const char save_script[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return 0 end\n"
    "local m1, m2, ver = string.byte(v, 1, 3)\n"
    "local rev = '\\0\\0\\0\\0'\n"
    "if ver == 2 then rev = string.sub(v, 21, 24) end\n"
    "if #v < 26 or m1 ~= 83 or m2 ~= 83 or (ver ~= 1 and ver ~= 2) or rev ~= ARGV[3] then\n"
    "  return 2\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n";

typedef struct {
    ss_redis_config_t cfg;
    const char *target;          /* for log lines, no password */
    int script_only;             /* every load by the script (SS_REDIS_LOAD_ENV) */
    char sha[41];                /* SHA-1 of load_script */
    char save_sha[41];           /* SHA-1 of save_script */
    ss_redis_conn_t *conn;       /* also holds the counters: a fork resets them with the pool */
    ss_redis_cluster_t *cluster; /* instead of conn, for a Redis Cluster */
    ss_redis_index_t ix;         /* the per-owner index, over conn or cluster */
} redis_store_t;

/* This process's counters, locked (ss_redis_conn_lock). */
static ss_store_stats_t *stats_lock(redis_store_t *s)
{
    return s->cluster ? ss_redis_cluster_lock(s->cluster) : ss_redis_conn_lock(s->conn);
}

static void stats_unlock(redis_store_t *s)
{
    if (s->cluster) {
        ss_redis_cluster_unlock(s->cluster);
    } else {
        ss_redis_conn_unlock(s->conn);
    }
}

/* Send cmd on key (its slot picks the node of a cluster). */
static apr_status_t command(redis_store_t *s, const ss_redis_cmd_t *cmd, const char *key,
                            redisReply **reply)
{
    if (s->cluster) {
        return ss_redis_cluster_command(s->cluster, cmd, key, strlen(key), reply);
    }
    return ss_redis_conn_command(s->conn, cmd, reply);
}

static apr_status_t unexpected(redis_store_t *s, const char *what, const redisReply *reply)
{
    ss_log(SS_LOG_ERR, APR_EGENERAL,
           "redis session store %s: unexpected reply type %d to %s; closing this "
           "process's connections",
           s->target, reply->type, what);
    stats_lock(s)->errors++;
    stats_unlock(s);
    if (s->cluster) {
        ss_redis_cluster_discard(s->cluster);
    } else {
        ss_redis_conn_discard(s->conn);
    }
    return APR_EGENERAL;
}

static void make_key(const redis_store_t *s, const ss_key_t *key, char *out)
{
    apr_size_t n = strlen(s->cfg.prefix);

    memcpy(out, s->cfg.prefix, n);
    ss_key_hex(key, out + n);
}

static void cmd_add(ss_redis_cmd_t *cmd, const char *arg, size_t len)
{
    cmd->argv[cmd->argc] = arg;
    cmd->len[cmd->argc++] = len;
}

static void cmd_str(ss_redis_cmd_t *cmd, const char *arg)
{
    cmd_add(cmd, arg, strlen(arg));
}

/* Add one to a counter of this process. */
#define COUNT(s, field)                                                                            \
    do {                                                                                           \
        stats_lock(s)->field++;                                                                    \
        stats_unlock(s);                                                                           \
    } while (0)

static void malformed(redis_store_t *s, const ss_key_t *key, apr_pool_t *p)
{
    COUNT(s, malformed);
    ss_log(SS_LOG_WARNING, APR_EINVAL,
           "redis session store %s: session %s held a malformed record; removed", s->target,
           ss_key_tag(key, p));
}

/* Send "verb key" (GET, DEL); its reply into *reply. */
static apr_status_t key_command(redis_store_t *s, const char *verb, const ss_key_t *key,
                                redisReply **reply)
{
    char k[KEY_MAX];
    ss_redis_cmd_t cmd;

    make_key(s, key, k);
    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, verb);
    cmd_str(&cmd, k);
    return command(s, &cmd, k, reply);
}

/* DEL the key: *deleted tells whether it existed. */
static apr_status_t del_key(redis_store_t *s, const ss_key_t *key, int *deleted)
{
    redisReply *reply = NULL;
    apr_status_t rv = key_command(s, "DEL", key, &reply);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        rv = unexpected(s, "DEL", reply);
    } else {
        *deleted = reply->integer > 0;
    }
    freeReplyObject(reply);
    return rv;
}

/* The script found no record this location may use: count why. */
static apr_status_t load_gone(redis_store_t *s, const ss_key_t *key, const redisReply *reply,
                              apr_pool_t *p)
{
    switch (reply->integer) {
    case 0:
        COUNT(s, misses);
        return APR_NOTFOUND;
    case 1: /* expired everywhere: deleted */
    case 3: /* expired for this location: kept for the others */
        COUNT(s, expired);
        return SS_EEXPIRED;
    case 2:
        malformed(s, key, p);
        return APR_NOTFOUND;
    case 4:
        COUNT(s, newer_format);
        return APR_NOTFOUND;
    }
    return unexpected(s, "the load script", reply);
}

static apr_status_t load_reply(redis_store_t *s, int sealed_only, const ss_key_t *key,
                               const ss_expiry_t *judge, apr_time_t now, const redisReply *reply,
                               apr_pool_t *p, ss_record_t *rec)
{
    const redisReply *value, *touched;
    ss_store_stats_t *st;
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
    rv = ss_record_decode(value->str, value->len, key, p, rec);
    if (rv == SS_RECORD_ENOKEY) {
        return APR_NOTFOUND; /* sealed, and a key that cannot open it: left alone */
    }
    if (rv == APR_SUCCESS && sealed_only && !ss_record_is_sealed(value->str, value->len)) {
        rv = APR_EINVAL; /* in clear where only sealed records are accepted */
    }
    if (rv != APR_SUCCESS) {
        /* What the script cannot see, such as a NUL inside a string or a
         * sealed body that does not authenticate. */
        int deleted;

        del_key(s, key, &deleted);
        malformed(s, key, p);
        return APR_NOTFOUND;
    }
    /* The script decided with the same rule; a disagreement would be a bug,
     * and must not return a dead session. */
    if (ss_expiry_check(judge, rec->created, rec->accessed, now) != SS_LIVE) {
        COUNT(s, expired);
        return SS_EEXPIRED;
    }
    st = stats_lock(s);
    st->hits++;
    st->touches += touched->integer == 1;
    stats_unlock(s);
    return APR_SUCCESS;
}

static apr_status_t script_load(redis_store_t *s, int sealed_only, const ss_key_t *key,
                                const ss_expiry_t *judge, const ss_expiry_t *keep, apr_time_t now,
                                apr_pool_t *p, ss_record_t *rec)
{
    char k[KEY_MAX], now_s[24], limits[6 * 24];
    unsigned char stamp[SS_RECORD_HEADER_LEN];
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    make_key(s, key, k);
    apr_snprintf(now_s, sizeof(now_s), "%" APR_TIME_T_FMT, now);
    apr_snprintf(limits, sizeof(limits),
                 "%" APR_TIME_T_FMT " %" APR_TIME_T_FMT " %" APR_TIME_T_FMT " %" APR_TIME_T_FMT
                 " %" APR_TIME_T_FMT " %" APR_TIME_T_FMT,
                 judge->idle, judge->absolute, ss_expiry_touch_interval(judge), keep->idle,
                 keep->absolute, SS_REDIS_NO_DEADLINE_TTL / 1000);
    memset(stamp, 0, sizeof(stamp));
    ss_record_poke_accessed(stamp, now);
    memset(&cmd, 0, sizeof(cmd));
    cmd.script = load_script;
    cmd_str(&cmd, "EVALSHA");
    cmd_str(&cmd, s->sha);
    cmd_str(&cmd, "1");
    cmd_str(&cmd, k);
    cmd_str(&cmd, now_s);
    cmd_add(&cmd, (const char *)stamp + SS_RECORD_ACCESSED_OFFSET, 8);
    cmd_str(&cmd, limits);
    rv = command(s, &cmd, k, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = load_reply(s, sealed_only, key, judge, now, reply, p, rec);
    freeReplyObject(reply);
    return rv;
}

/* The lean load: GET, judged here exactly as the script judges. It decides
 * the outcomes that write nothing (absent, newer format, dead for this
 * location only, live with no touch due) and returns 0 in *decided for the
 * others (malformed, dead for every location, touch due): the script then
 * makes the load again, atomically, and its answer stands. */
static apr_status_t lean_load(redis_store_t *s, int sealed_only, const ss_key_t *key,
                              const ss_expiry_t *judge, const ss_expiry_t *keep, apr_time_t now,
                              apr_pool_t *p, ss_record_t *rec, int *decided)
{
    redisReply *reply = NULL;
    apr_status_t rv;

    *decided = 1;
    rv = key_command(s, "GET", key, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        COUNT(s, misses);
        rv = APR_NOTFOUND;
    } else if (reply->type != REDIS_REPLY_STRING) {
        rv = unexpected(s, "GET", reply);
    } else {
        /* The script's order: malformed (the header), then newer, then the
         * lengths, then dead everywhere, dead here, touch. */
        rv = ss_record_decode(reply->str, reply->len, key, p, rec);
        if (rv == APR_SUCCESS && sealed_only && !ss_record_is_sealed(reply->str, reply->len)) {
            rv = APR_EINVAL; /* malformed here: the script deletes it */
        }
        if (rv == APR_ENOTIMPL) {
            COUNT(s, newer_format);
            rv = APR_NOTFOUND;
        } else if (rv == SS_RECORD_ENOKEY) {
            rv = APR_NOTFOUND; /* sealed, and a key that cannot open it: left alone */
        } else if (rv != APR_SUCCESS ||
                   ss_expiry_check(keep, rec->created, rec->accessed, now) != SS_LIVE) {
            *decided = 0; /* malformed, or dead for every location: deleted by the script */
        } else if (ss_expiry_check(judge, rec->created, rec->accessed, now) != SS_LIVE) {
            COUNT(s, expired); /* the script's 3: kept for the other locations */
            rv = SS_EEXPIRED;
        } else if (ss_expiry_touch_due(judge, rec->accessed, now)) {
            *decided = 0; /* the script rewrites the last access and the TTL */
        } else {
            COUNT(s, hits);
        }
    }
    freeReplyObject(reply);
    return rv;
}

static apr_status_t redis_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *judge,
                               const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p,
                               ss_record_t *rec)
{
    redis_store_t *s = store->impl;
    int decided = 0;
    apr_status_t rv;

    if (!s->script_only) {
        rv = lean_load(s, store->sealed_only, key, judge, keep, now, p, rec, &decided);
        if (decided) {
            return rv;
        }
    }
    return script_load(s, store->sealed_only, key, judge, keep, now, p, rec);
}

static apr_status_t redis_remove(ss_store_t *store, const ss_key_t *key)
{
    redis_store_t *s = store->impl;
    int deleted = 0;
    apr_status_t rv = del_key(s, key, &deleted);

    if (deleted) {
        COUNT(s, removes);
    }
    return rv;
}

/* The reply to SET ... NX (a new record): OK, or nil when the key is taken. */
static apr_status_t save_new_reply(redis_store_t *s, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_STATUS) {
        COUNT(s, saves);
        return APR_SUCCESS;
    }
    if (reply->type != REDIS_REPLY_NIL) {
        return unexpected(s, "SET", reply);
    }
    return APR_EEXIST;
}

/* The reply to save_script (an update). */
static apr_status_t save_update_reply(redis_store_t *s, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_INTEGER) {
        return unexpected(s, "the save script", reply);
    }
    switch (reply->integer) {
    case 1:
        COUNT(s, saves);
        return APR_SUCCESS;
    case 0:
        COUNT(s, refused_gone);
        return APR_NOTFOUND;
    case 2:
        COUNT(s, refused_conflict);
        return SS_ECONFLICT;
    }
    return unexpected(s, "the save script", reply);
}

static apr_status_t redis_save(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                               apr_time_t deadline, ss_save_mode_e mode, apr_size_t limit,
                               apr_pool_t *p)
{
    redis_store_t *s = store->impl;
    apr_interval_time_t ttl = deadline ? deadline - rec->accessed : SS_REDIS_NO_DEADLINE_TTL;
    apr_uint32_t loaded = rec->revision - 1; /* what an update expects to find */
    unsigned char loaded_be[4];
    char k[KEY_MAX], ms[24], *buf;
    apr_size_t len;
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    if (ttl <= 0) {
        /* Already dead: nothing to keep, and an update found it gone. */
        rv = redis_remove(store, key);
        return rv == APR_SUCCESS && mode == SS_SAVE_UPDATE ? APR_NOTFOUND : rv;
    }
    rv = ss_record_encode(rec, key, store->form, p, &buf, &len);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (len > limit) {
        COUNT(s, refused_oversize); /* the caller logs it, rate-limited */
        return APR_ENOSPC;
    }
    make_key(s, key, k);
    apr_snprintf(ms, sizeof(ms), "%" APR_TIME_T_FMT, (ttl + 999) / 1000);
    loaded_be[0] = (unsigned char)(loaded >> 24);
    loaded_be[1] = (unsigned char)(loaded >> 16);
    loaded_be[2] = (unsigned char)(loaded >> 8);
    loaded_be[3] = (unsigned char)loaded;
    memset(&cmd, 0, sizeof(cmd));
    if (mode == SS_SAVE_NEW) {
        cmd_str(&cmd, "SET");
        cmd_str(&cmd, k);
        cmd_add(&cmd, buf, len);
        cmd_str(&cmd, "PX");
        cmd_str(&cmd, ms);
        cmd_str(&cmd, "NX");
    } else {
        cmd.script = save_script;
        cmd_str(&cmd, "EVALSHA");
        cmd_str(&cmd, s->save_sha);
        cmd_str(&cmd, "1");
        cmd_str(&cmd, k);
        cmd_add(&cmd, buf, len);
        cmd_str(&cmd, ms);
        cmd_add(&cmd, (const char *)loaded_be, sizeof(loaded_be));
    }
    /* wait= is refused on a cluster URI: WAIT goes to one node only. */
    rv = s->cfg.wait_replicas && !s->cluster
             ? ss_redis_conn_command_wait(s->conn, &cmd, s->cfg.wait_replicas, s->cfg.wait_timeout,
                                          &reply)
             : command(s, &cmd, k, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = mode == SS_SAVE_NEW ? save_new_reply(s, reply) : save_update_reply(s, reply);
    freeReplyObject(reply);
    return rv;
}

static apr_status_t redis_stats(ss_store_t *store, ss_store_stats_t *stats)
{
    redis_store_t *s = store->impl;

    if (s->cluster) {
        ss_redis_cluster_stats(s->cluster, stats);
        return APR_SUCCESS;
    }
    *stats = *ss_redis_conn_lock(s->conn);
    ss_redis_conn_unlock(s->conn);
    return APR_SUCCESS;
}

static void redis_close(ss_store_t *store)
{
    redis_store_t *s = store->impl;

    if (s->cluster) {
        ss_redis_cluster_close(s->cluster);
    } else {
        ss_redis_conn_close(s->conn);
    }
}

static apr_status_t cleanup(void *store)
{
    redis_close(store);
    return APR_SUCCESS;
}

static const char *redis_describe(ss_store_t *store, apr_pool_t *p)
{
    redis_store_t *s = store->impl;
    const char *master = s->conn ? ss_redis_conn_describe(s->conn, p) : NULL;

    return master ? apr_pstrcat(p, ss_redis_describe(&s->cfg, p), "; ", master, NULL)
                  : ss_redis_describe(&s->cfg, p);
}

static apr_status_t redis_ping(ss_store_t *store)
{
    redis_store_t *s = store->impl;
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    if (s->cluster) {
        /* A node that answers with a slot map. */
        return ss_redis_cluster_refresh(s->cluster);
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, "PING");
    rv = ss_redis_conn_command(s->conn, &cmd, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (reply->type != REDIS_REPLY_STATUS) {
        rv = unexpected(s, "PING", reply);
    }
    freeReplyObject(reply);
    return rv;
}

static apr_status_t redis_child_init(ss_store_t *store, apr_pool_t *p)
{
    /* Connections are opened by the process that uses them. */
    (void)store;
    (void)p;
    return APR_SUCCESS;
}

static apr_status_t redis_index_add(ss_store_t *store, const ss_owner_t *owner, const ss_key_t *key,
                                    apr_time_t until, apr_time_t now)
{
    redis_store_t *s = store->impl;

    return ss_redis_index_add(&s->ix, owner, key, until, now);
}

static apr_status_t redis_revoke_owner(ss_store_t *store, const ss_owner_t *owner,
                                       const ss_key_t *except, apr_time_t now, apr_size_t *count)
{
    redis_store_t *s = store->impl;
    apr_size_t n = 0;
    apr_status_t rv = ss_redis_index_revoke(&s->ix, owner, except, now, &n);

    stats_lock(s)->removes += n;
    stats_unlock(s);
    if (count) {
        *count = n;
    }
    return rv;
}

static apr_status_t redis_scan(ss_store_t *store, const ss_owner_t *owner, apr_size_t limit,
                               ss_store_entry_fn fn, void *baton, apr_time_t now, apr_pool_t *p)
{
    redis_store_t *s = store->impl;

    return ss_redis_index_scan(&s->ix, owner, limit, fn, baton, now, p);
}

static apr_status_t redis_purge_expired(ss_store_t *store, apr_time_t now, apr_size_t *count)
{
    redis_store_t *s = store->impl;

    return ss_redis_index_purge(&s->ix, now, count);
}

static const ss_store_ops_t redis_ops = {
    "redis",         "this httpd process", redis_load, redis_save,         redis_remove,
    redis_stats,     redis_describe,       redis_ping, redis_child_init,   redis_close,
    redis_index_add, redis_revoke_owner,   redis_scan, redis_purge_expired};

static apr_status_t script_sha(const char *script, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;

    if (!EVP_Digest(script, strlen(script), md, &len, EVP_sha1(), NULL) || len != 20) {
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
    s->cfg.sentinel_master = dup_or_null(p, cfg->sentinel_master);
    s->cfg.sentinel_user = dup_or_null(p, cfg->sentinel_user);
    s->cfg.sentinel_password = dup_or_null(p, cfg->sentinel_password);
    if (cfg->nsentinels > 0) {
        ss_redis_addr_t *a = apr_pmemdup(p, cfg->sentinels, sizeof(*a) * cfg->nsentinels);
        int i;

        for (i = 0; i < cfg->nsentinels; i++) {
            a[i].host = apr_pstrdup(p, a[i].host);
        }
        s->cfg.sentinels = a;
    }
    if (cfg->nseeds > 0) {
        ss_redis_addr_t *seeds = apr_pmemdup(p, cfg->seeds, sizeof(*seeds) * cfg->nseeds);
        int i;

        for (i = 0; i < cfg->nseeds; i++) {
            seeds[i].host = apr_pstrdup(p, seeds[i].host);
        }
        s->cfg.seeds = seeds;
    }
    if (strlen(s->cfg.prefix) > SS_REDIS_PREFIX_MAX ||
        (!!s->cfg.host + !!s->cfg.path + !!s->cfg.sentinel_master) != 1 ||
        (s->cfg.sentinel_master && s->cfg.nsentinels < 1)) {
        return APR_EINVAL;
    }
    s->target = ss_redis_target(&s->cfg, p);
    s->script_only = getenv(SS_REDIS_LOAD_ENV) && !strcmp(getenv(SS_REDIS_LOAD_ENV), "script");
    rv = script_sha(load_script, s->sha);
    if (rv == APR_SUCCESS) {
        rv = script_sha(save_script, s->save_sha);
    }
    if (rv == APR_SUCCESS && s->cfg.cluster) {
        rv = ss_redis_cluster_create(&s->cluster, &s->cfg, s->target, p);
    } else if (rv == APR_SUCCESS) {
        rv = ss_redis_conn_create(&s->conn, &s->cfg, s->target, p);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    s->ix.conn = s->conn;
    s->ix.cluster = s->cluster;
    s->ix.prefix = s->cfg.prefix;
    s->ix.target = s->target;
    *store = apr_pcalloc(p, sizeof(**store));
    (*store)->ops = &redis_ops;
    (*store)->impl = s;
    (*store)->form = SS_RECORD_FORM_SEALED;
    apr_pool_cleanup_register(p, *store, cleanup, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

apr_status_t ss_redis_info_parse(const char *info, const char *field, apr_uint64_t *value)
{
    apr_size_t flen = strlen(field);
    const char *line = info;

    while (line && *line) {
        if (!strncmp(line, field, flen) && line[flen] == ':' && apr_isdigit(line[flen + 1])) {
            char *end;

            *value = (apr_uint64_t)apr_strtoi64(line + flen + 1, &end, 10);
            return *end == '\r' || *end == '\n' || !*end ? APR_SUCCESS : APR_EINVAL;
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return APR_NOTFOUND;
}

/* INFO section, asked now; its text (in p) in *text. */
static apr_status_t info(ss_store_t *store, const char *section, const char **text, apr_pool_t *p)
{
    redis_store_t *s;
    ss_redis_cmd_t cmd;
    redisReply *reply = NULL;
    apr_status_t rv;

    if (!store || store->ops != &redis_ops) {
        return APR_EINVAL;
    }
    s = store->impl;
    if (s->cluster) {
        return APR_ENOTIMPL; /* one INFO per node: not summed */
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd_str(&cmd, "INFO");
    cmd_str(&cmd, section);
    rv = ss_redis_conn_command(s->conn, &cmd, &reply);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        *text = apr_pstrmemdup(p, reply->str, reply->len);
    } else {
        rv = APR_EGENERAL; /* an error reply: INFO not allowed to this user (ACL) */
    }
    freeReplyObject(reply);
    return rv;
}

apr_status_t ss_redis_info_counter(ss_store_t *store, const char *section, const char *field,
                                   apr_uint64_t *value)
{
    apr_pool_t *p;
    const char *text;
    apr_status_t rv;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return APR_ENOMEM;
    }
    rv = info(store, section, &text, p);
    if (rv == APR_SUCCESS) {
        rv = ss_redis_info_parse(text, field, value);
    }
    apr_pool_destroy(p);
    return rv;
}

const char *ss_redis_label(ss_store_t *store, apr_pool_t *p)
{
    if (!store || store->ops != &redis_ops) {
        return NULL;
    }
    return ss_redis_describe(&((redis_store_t *)store->impl)->cfg, p);
}

apr_status_t ss_redis_replication(ss_store_t *store, ss_redis_replication_t *out,
                                  const char **master, apr_pool_t *p)
{
    const char *text;
    apr_status_t rv = info(store, "replication", &text, p);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    *master = ss_redis_conn_address(((redis_store_t *)store->impl)->conn, p);
    return ss_redis_replication_parse(text, out, p);
}
