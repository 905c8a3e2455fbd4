/* ss_redis_slotmap.c - the slot map of a Redis Cluster, from CLUSTER
 * SHARDS or CLUSTER SLOTS (ss_redis_slotmap.h). */
#include <string.h>

#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_redis_slotmap.h"

/* A number from an integer reply, or a string of decimal digits (7.0.x). */
static int reply_number(const redisReply *r, long long max, long long *out)
{
    long long v = 0;
    size_t i;

    if (r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
    } else if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= 10) {
        for (i = 0; i < r->len; i++) {
            if (!apr_isdigit(r->str[i])) {
                return 0;
            }
            v = v * 10 + (r->str[i] - '0');
        }
    } else {
        return 0;
    }
    if (v < 0 || v > max) {
        return 0;
    }
    *out = v;
    return 1;
}

static int is_str(const redisReply *r, const char *s)
{
    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->len == strlen(s) && !memcmp(r->str, s, r->len);
}

/* The value of name in a flat list of name/value pairs, or NULL. */
static const redisReply *field(const redisReply *pairs, const char *name)
{
    size_t i;

    if (pairs->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }
    for (i = 0; i + 1 < pairs->elements; i += 2) {
        if (is_str(pairs->element[i], name)) {
            return pairs->element[i + 1];
        }
    }
    return NULL;
}

static const char *field_str(const redisReply *pairs, const char *name, apr_pool_t *p)
{
    const redisReply *v = field(pairs, name);

    return v && v->type == REDIS_REPLY_STRING ? apr_pstrmemdup(p, v->str, v->len) : NULL;
}

static ss_redis_slotmap_t *new_map(apr_pool_t *p, size_t most)
{
    ss_redis_slotmap_t *map = apr_pcalloc(p, sizeof(*map));

    map->masters = apr_pcalloc(p, sizeof(*map->masters) * (most ? most : 1));
    map->all = NULL;
    memset(map->owner, 0xff, sizeof(map->owner)); /* -1 */
    return map;
}

int ss_redis_slotmap_find(const ss_redis_slotmap_t *map, const char *host, int port)
{
    int i;

    for (i = 0; i < map->nmasters; i++) {
        if (map->masters[i].port == port && !strcmp(map->masters[i].host, host)) {
            return i;
        }
    }
    return -1;
}

/* The index of host:port among the masters, added if new. */
static int add_master(ss_redis_slotmap_t *map, const char *host, int port)
{
    int i = ss_redis_slotmap_find(map, host, port);

    if (i < 0) {
        i = map->nmasters++;
        map->masters[i].host = host;
        map->masters[i].port = port;
    }
    return i;
}

/* Note a node listed, once. */
static void add_node(apr_array_header_t *all, apr_hash_t *seen, const char *host, int port,
                     apr_pool_t *p)
{
    const char *id = apr_psprintf(p, "%s:%d", host, port);

    if (!apr_hash_get(seen, id, APR_HASH_KEY_STRING)) {
        ss_redis_addr_t *a = apr_array_push(all);

        apr_hash_set(seen, id, APR_HASH_KEY_STRING, id);
        a->host = host;
        a->port = port;
    }
}

static void set_all(ss_redis_slotmap_t *map, apr_array_header_t *all)
{
    map->nodes = all->nelts;
    map->all = (ss_redis_addr_t *)all->elts;
}

/* Give start..end (numbers or strings) to master m. */
static const char *assign(ss_redis_slotmap_t *map, const redisReply *start, const redisReply *end,
                          int m)
{
    long long a, b, s;

    if (!reply_number(start, SS_REDIS_SLOTS - 1, &a) ||
        !reply_number(end, SS_REDIS_SLOTS - 1, &b) || a > b) {
        return "bad slot range";
    }
    for (s = a; s <= b; s++) {
        map->owner[s] = (short)m;
    }
    return NULL;
}

/* How fit a node is to serve its shard: 3 online, 2 loading, 1 anything
 * else, 0 not a master. */
static int master_rank(const redisReply *node)
{
    const redisReply *role = field(node, "role"), *health = field(node, "health");

    if (!role || !is_str(role, "master")) {
        return 0;
    }
    if (health && is_str(health, "online")) {
        return 3;
    }
    return health && is_str(health, "loading") ? 2 : 1;
}

/* The address of a CLUSTER SHARDS node; NULL when it has none usable. */
static const char *shard_node_addr(const redisReply *node, int tls, const ss_redis_addr_t *asked,
                                   ss_redis_addr_t *addr, apr_pool_t *p)
{
    const char *host = field_str(node, "endpoint", p);
    const redisReply *port = tls ? field(node, "tls-port") : NULL;
    long long v;

    if (!host || !strcmp(host, "?")) {
        host = field_str(node, "ip", p);
    }
    if (host && !*host && asked) {
        host = asked->host;
    }
    if (!port) {
        port = field(node, "port");
    }
    if (!host || !*host || !port || !reply_number(port, 65535, &v) || v == 0) {
        return "a node without an address or a port";
    }
    addr->host = host;
    addr->port = (int)v;
    return NULL;
}

static const char *parse_shard(ss_redis_slotmap_t *map, const redisReply *shard, int tls,
                               const ss_redis_addr_t *asked, apr_array_header_t *all,
                               apr_hash_t *seen, apr_pool_t *p)
{
    const redisReply *slots = field(shard, "slots"), *nodes = field(shard, "nodes"), *best = NULL;
    ss_redis_addr_t addr;
    int rank = 0, m;
    size_t i;
    const char *err;

    if (!slots || slots->type != REDIS_REPLY_ARRAY || slots->elements % 2 || !nodes ||
        nodes->type != REDIS_REPLY_ARRAY) {
        return "a shard without slots or nodes";
    }
    for (i = 0; i < nodes->elements; i++) {
        const redisReply *health = field(nodes->element[i], "health");
        int r = master_rank(nodes->element[i]);

        if ((!health || !is_str(health, "fail")) &&
            !shard_node_addr(nodes->element[i], tls, asked, &addr, p)) {
            add_node(all, seen, addr.host, addr.port, p);
        }
        if (r > rank) {
            rank = r;
            best = nodes->element[i];
        }
    }
    if (!slots->elements) {
        return NULL; /* a shard with no slots (an empty master, or replicas only) */
    }
    if (!best) {
        return "a shard with slots but no master";
    }
    err = shard_node_addr(best, tls, asked, &addr, p);
    if (err) {
        return err;
    }
    m = add_master(map, addr.host, addr.port);
    for (i = 0; i < slots->elements && !err; i += 2) {
        err = assign(map, slots->element[i], slots->element[i + 1], m);
    }
    return err;
}

const char *ss_redis_slotmap_from_shards(ss_redis_slotmap_t **out, const redisReply *reply, int tls,
                                         const ss_redis_addr_t *asked, apr_pool_t *p)
{
    ss_redis_slotmap_t *map;
    apr_array_header_t *all = apr_array_make(p, 8, sizeof(ss_redis_addr_t));
    apr_hash_t *seen = apr_hash_make(p);
    const char *err = NULL;
    size_t i;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return "CLUSTER SHARDS: not an array";
    }
    map = new_map(p, reply->elements);
    for (i = 0; i < reply->elements && !err; i++) {
        err = parse_shard(map, reply->element[i], tls, asked, all, seen, p);
    }
    if (err) {
        return apr_pstrcat(p, "CLUSTER SHARDS: ", err, NULL);
    }
    set_all(map, all);
    *out = map;
    return NULL;
}

/* The address of a CLUSTER SLOTS node {endpoint, port, id...}: 1 when
 * usable, 0 when its endpoint is unknown ("?" or nil), -1 when malformed. */
static int slots_node_addr(const redisReply *node, const ss_redis_addr_t *asked,
                           ss_redis_addr_t *addr, apr_pool_t *p)
{
    long long port;

    if (node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
        !reply_number(node->element[1], 65535, &port) || port == 0 ||
        (node->element[0]->type != REDIS_REPLY_STRING &&
         node->element[0]->type != REDIS_REPLY_NIL)) {
        return -1;
    }
    if (node->element[0]->type == REDIS_REPLY_NIL || is_str(node->element[0], "?")) {
        return 0;
    }
    addr->host = apr_pstrmemdup(p, node->element[0]->str, node->element[0]->len);
    if (!*addr->host) {
        if (!asked) {
            return -1;
        }
        addr->host = asked->host;
    }
    addr->port = (int)port;
    return 1;
}

/* One CLUSTER SLOTS range: {start, end, master, replicas...}. */
static const char *parse_range(ss_redis_slotmap_t *map, const redisReply *range,
                               const ss_redis_addr_t *asked, apr_array_header_t *all,
                               apr_hash_t *seen, apr_pool_t *p)
{
    ss_redis_addr_t addr, master;
    int known = 0;
    size_t i;

    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) {
        return "a range without a master";
    }
    for (i = 2; i < range->elements; i++) {
        int got = slots_node_addr(range->element[i], asked, &addr, p);

        if (got < 0) {
            return "a node without an address or a port";
        }
        if (got) {
            add_node(all, seen, addr.host, addr.port, p);
        }
        if (i == 2) {
            known = got;
            master = addr;
        }
    }
    return assign(map, range->element[0], range->element[1],
                  known ? add_master(map, master.host, master.port) : -1);
}

const char *ss_redis_slotmap_from_slots(ss_redis_slotmap_t **out, const redisReply *reply,
                                        const ss_redis_addr_t *asked, apr_pool_t *p)
{
    ss_redis_slotmap_t *map;
    apr_array_header_t *all = apr_array_make(p, 8, sizeof(ss_redis_addr_t));
    apr_hash_t *seen = apr_hash_make(p);
    const char *err = NULL;
    size_t i;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return "CLUSTER SLOTS: not an array";
    }
    map = new_map(p, reply->elements);
    for (i = 0; i < reply->elements && !err; i++) {
        err = parse_range(map, reply->element[i], asked, all, seen, p);
    }
    if (err) {
        return apr_pstrcat(p, "CLUSTER SLOTS: ", err, NULL);
    }
    set_all(map, all);
    *out = map;
    return NULL;
}

int ss_redis_parse_hostport(const char *s, size_t len, ss_redis_addr_t *addr, apr_pool_t *p)
{
    const char *colon = NULL, *host = s;
    size_t i, hlen;
    long port = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == ':') {
            colon = s + i;
        }
    }
    if (!colon || colon + 1 == s + len || s + len - colon - 1 > 5) {
        return 0;
    }
    for (i = (size_t)(colon - s) + 1; i < len; i++) {
        if (!apr_isdigit(s[i])) {
            return 0;
        }
        port = port * 10 + (s[i] - '0');
    }
    if (port < 1 || port > 65535) {
        return 0;
    }
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    for (i = 0; i < hlen; i++) {
        if (!apr_isalnum(host[i]) && !strchr(".-_:%", host[i])) {
            return 0;
        }
    }
    addr->host = apr_pstrmemdup(p, host, hlen);
    addr->port = (int)port;
    return 1;
}
