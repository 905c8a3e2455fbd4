/* ss_redis_slotmap.h - the slot map of a Redis Cluster (internal): which
 * master serves each of the 16384 slots, read from a CLUSTER SHARDS reply
 * (Redis 7.0+) or, on older servers, from a CLUSTER SLOTS reply.
 *
 * CLUSTER SHARDS: an array of shards, each a flat list of name/value pairs
 * with "slots" (start, end, start, end... as integers, or as strings as some
 * 7.0.x releases send them) and "nodes" (each a flat list of pairs: "ip",
 * "endpoint", "port", "tls-port", "role", "health"...). A shard's slots go to
 * its master whose health is "online", else to one "loading", else to any
 * master listed (it fails, and the map is asked again). With TLS the node's
 * "tls-port" is used when it has one.
 *
 * CLUSTER SLOTS: an array of ranges {start, end, {endpoint, port, id...},
 * replicas...}. An empty endpoint means "the node you asked", "?" an unknown
 * one (the range is left without an owner); in CLUSTER SHARDS an "endpoint"
 * of "?" falls back to the "ip".
 *
 * A slot no shard claims has no owner (-1): an operation on it fails until a
 * later map covers it. */
#ifndef SS_REDIS_SLOTMAP_H
#define SS_REDIS_SLOTMAP_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <hiredis.h>

#include "ss_redis_config.h"
#include "ss_redis_slot.h"

typedef struct {
    int nmasters;
    ss_redis_addr_t *masters;    /* the masters that own slots, each once */
    int nodes;                   /* nodes listed, masters and replicas, failed ones excluded */
    ss_redis_addr_t *all;        /* those nodes' addresses */
    short owner[SS_REDIS_SLOTS]; /* index into masters, -1: none */
} ss_redis_slotmap_t;

/* Parse a CLUSTER SHARDS reply into a new *map (allocated in p). tls: use
 * "tls-port" where present. asked: the node that answered, for an unknown
 * endpoint. NULL on success, else what is wrong with the reply. */
const char *ss_redis_slotmap_from_shards(ss_redis_slotmap_t **map, const redisReply *reply, int tls,
                                         const ss_redis_addr_t *asked, apr_pool_t *p);

/* The same from a CLUSTER SLOTS reply (its ports are those of the
 * connection's kind: TLS ports to a TLS client when the cluster uses TLS). */
const char *ss_redis_slotmap_from_slots(ss_redis_slotmap_t **map, const redisReply *reply,
                                        const ss_redis_addr_t *asked, apr_pool_t *p);

/* The index in map->masters of host:port, or -1. */
int ss_redis_slotmap_find(const ss_redis_slotmap_t *map, const char *host, int port);

/* Parse "host:port" (the address of a MOVED or ASK redirect: "[v6]:port"
 * is accepted too, and so is a bare IPv6 address before the last colon).
 * 0 when it is not one. An empty host means the node that answered. */
int ss_redis_parse_hostport(const char *s, size_t len, ss_redis_addr_t *addr, apr_pool_t *p);

#endif
