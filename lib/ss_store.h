/* ss_store.h - the interface every session backend implements.
 *
 * A backend stores encoded records under ss_key_t and never sees a session
 * ID. load() is one atomic step: fetch, check expiry against the record's own
 * timestamps, remove the record if it is dead, and touch it if a touch is due
 * (for Redis that makes a load one round trip). Records are copied into the
 * caller's pool; nothing returned points into the backend's memory.
 *
 * Two sets of timeouts reach a backend. `judge` is the requesting location's:
 * it decides whether this load may use the record. `keep` is the most lenient
 * set of the server: the store keeps a record (its deadline, its TTL) as long
 * as some location could still accept it, so a strict <Location> never ends
 * a session for the rest of the site, and both backends agree.
 *
 * A record that does not decode is a miss: it is removed, logged and counted
 * (malformed); so does a sealed record that does not authenticate under the
 * key. A well-formed record of a newer format version (written by an
 * upgraded node during a rolling upgrade) is a miss that stays (newer_format).
 * A sealed record loaded with a key that cannot open it (sealable = 0) is a
 * miss that stays too. With store->sealed_only, a record in clear (format
 * 1, or 2 unsealed) is malformed: one planted by whoever can write to the
 * store is never handed out.
 *
 * Updates are compare-and-set on the record's revision (ss_record.h): a
 * request writes revision + 1 of what it loaded, and only over that
 * revision. */
#ifndef SS_STORE_H
#define SS_STORE_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "ss_expiry.h"
#include "ss_id.h"
#include "ss_owner.h"
#include "ss_record.h"

/* An update refused because the stored record is no longer the revision
 * the request loaded: another request wrote it meanwhile. */
#define SS_ECONFLICT (APR_OS_START_USERERR + 1)

/* A load that found a record under the key, dead for the judging location:
 * expired everywhere (and removed), or expired for this location only (and
 * kept for the more lenient ones). A caller that does not care why treats it
 * as APR_NOTFOUND. A Redis key that Redis itself dropped when its TTL ran
 * out is simply absent: APR_NOTFOUND, a miss. */
#define SS_EEXPIRED (APR_OS_START_USERERR + 2)

typedef struct {
    apr_uint64_t entries;           /* live records now */
    apr_uint64_t capacity_bytes;    /* bytes available to records */
    apr_uint64_t used_bytes;        /* bytes held by records now */
    apr_uint64_t hits;              /* loads that returned a record */
    apr_uint64_t misses;            /* loads that found nothing */
    apr_uint64_t expired;           /* loads that found a record dead for their location */
    apr_uint64_t saves;             /* records written */
    apr_uint64_t touches;           /* last-access rewrites */
    apr_uint64_t removes;           /* records deleted on request */
    apr_uint64_t evicted_expired;   /* dead records reclaimed to make room */
    apr_uint64_t evicted_lru;       /* live records dropped to make room */
    apr_uint64_t refused_oversize;  /* saves refused because the record was too large */
    apr_uint64_t refused_gone;      /* updates refused because the record was gone */
    apr_uint64_t refused_conflict;  /* updates refused: another request wrote the record */
    apr_uint64_t malformed;         /* records that did not decode, removed */
    apr_uint64_t newer_format;      /* records of a newer format version, left alone */
    apr_uint64_t rebuilds;          /* shm: the arena was found damaged and emptied */
    apr_uint64_t errors;            /* operations the store failed (network backends) */
    apr_uint64_t fast_fails;        /* of those, refused at once by an open breaker */
    apr_uint64_t connects;          /* connections opened */
    apr_uint64_t retries;           /* operations retried after a stale pooled connection */
    apr_uint64_t cluster_nodes;     /* Redis Cluster: nodes in the last slot map (a gauge) */
    apr_uint64_t slotmap_refreshes; /* Redis Cluster: slot maps read */
    apr_uint64_t moved;             /* Redis Cluster: MOVED redirects followed */
    apr_uint64_t asked;             /* Redis Cluster: ASK redirects followed */
} ss_store_stats_t;

/* How a save treats a record already under the key. There is no blind
 * overwrite: a request still holding a session that another request has just
 * removed (logout) would write it back. */
typedef enum {
    SS_SAVE_NEW, /* a fresh ID: APR_EEXIST if a live record holds the key */
    /* An existing ID: APR_NOTFOUND, nothing written, if it is gone;
     * SS_ECONFLICT, nothing written, unless the stored record's revision is
     * rec->revision - 1, the one loaded (a v1 record is revision 0). */
    SS_SAVE_UPDATE
} ss_save_mode_e;

typedef struct ss_store_t ss_store_t;

/* One stored session as an administrator sees it (scan): its clear header
 * and its size, never its owner or payload. */
typedef struct {
    ss_key_t key; /* shm: its first 12 bytes, the rest 0; remove() finds it by those */
    apr_time_t created;
    apr_time_t accessed;
    apr_time_t expires; /* when the store drops it; 0: no deadline */
    apr_size_t size;    /* bytes of the stored record */
    int readable;       /* 0: the header did not decode (created, accessed are 0) */
} ss_store_entry_t;

/* Called by scan for each entry; a non-zero return stops the scan. */
typedef int (*ss_store_entry_fn)(void *baton, const ss_store_entry_t *entry);

typedef struct {
    const char *name;
    /* Whose counters stats() returns: "all httpd processes on this host" or
     * "this httpd process". */
    const char *stats_scope;
    /* APR_SUCCESS with *rec; SS_EEXPIRED when the record is there but dead
     * for judge (removed when it is dead for keep too); APR_NOTFOUND when it
     * is absent, malformed, of a newer format or sealed for another key. */
    apr_status_t (*load)(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *judge,
                         const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p, ss_record_t *rec);
    /* Write the whole record; it lives until deadline (0: no deadline).
     * rec->accessed is taken as the current time. The record is encoded in
     * store->form under key. APR_ENOSPC (counted as refused_oversize,
     * nothing written) when the encoded record exceeds limit bytes. */
    apr_status_t (*save)(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                         apr_time_t deadline, ss_save_mode_e mode, apr_size_t limit, apr_pool_t *p);
    /* APR_SUCCESS whether or not the record existed. */
    apr_status_t (*remove)(ss_store_t *store, const ss_key_t *key);
    apr_status_t (*stats)(ss_store_t *store, ss_store_stats_t *stats);
    /* The backend for logs and status pages, never with a password. */
    const char *(*describe)(ss_store_t *store, apr_pool_t *p);
    /* Start-up check in the parent: APR_SUCCESS when the store answers. */
    apr_status_t (*ping)(ss_store_t *store);
    /* In each new child process, before its first request. */
    apr_status_t (*child_init)(ss_store_t *store, apr_pool_t *p);
    void (*close)(ss_store_t *store);

    /* ---- the per-owner index and administration ----
     * Every session of a named owner is indexed, so that all of them can be
     * ended at once (ss_session_revoke, "sessstore revoke --user"). An entry
     * is never dropped while its session can still live: until is the
     * session's absolute deadline (created + the keeping absolute timeout),
     * which no touch can move; 0 when there is none, and the entry then
     * lasts as long as the record exists (checked by existence). */

    /* Index key under owner, before the record is first written (a crash in
     * between leaves an entry without a record, which is trimmed; never a
     * record without an entry). Also trims the owner's dead entries. */
    apr_status_t (*index_add)(ss_store_t *store, const ss_owner_t *owner, const ss_key_t *key,
                              apr_time_t until, apr_time_t now);
    /* Remove every session of owner except the one under except (NULL:
     * none), and their index entries; *count (may be NULL) says how many
     * records were removed. */
    apr_status_t (*revoke_owner)(ss_store_t *store, const ss_owner_t *owner, const ss_key_t *except,
                                 apr_time_t now, apr_size_t *count);
    /* Call fn for every stored session (owner NULL) or every session of
     * owner, at most limit times (0: no limit). Records that expired by the
     * store's deadline are skipped; others are not judged (the store knows
     * no location's timeouts). */
    apr_status_t (*scan)(ss_store_t *store, const ss_owner_t *owner, apr_size_t limit,
                         ss_store_entry_fn fn, void *baton, apr_time_t now, apr_pool_t *p);
    /* Reclaim what is dead now: records past their deadline (shm) and index
     * entries of sessions that no longer exist (both). *count (may be NULL):
     * how many records and index entries went. */
    apr_status_t (*purge_expired)(ss_store_t *store, apr_time_t now, apr_size_t *count);
} ss_store_ops_t;

struct ss_store_t {
    const ss_store_ops_t *ops;
    void *impl;
    /* How save() writes records: the backends open with
     * SS_RECORD_FORM_SEALED; the host may change it before the first save
     * (SessionStoreRecordFormat, SessionStoreSeal). */
    ss_record_form_e form;
    /* Refuse records that are not sealed (SessionStoreSeal Required); 0 when
     * the backends open. */
    int sealed_only;
};

/* What a replicated store's server says of its replication, as the status
 * and metrics pages show it (asked when a page is asked for, never per
 * request). A backend fills it (Redis: INFO replication,
 * ss_redis_replication.h); the pages render it without knowing which.
 * At most SS_STORE_REPLICAS_LISTED replicas are kept (the metrics' label
 * cardinality stays bounded); connected counts them all. */
#define SS_STORE_REPLICAS_LISTED 8

typedef struct {
    const char *addr;    /* "IP:PORT", "[IPv6]:PORT" */
    const char *state;   /* the backend's word for it (Redis: online, send_bulk...) */
    apr_int64_t offset;  /* the replica's acknowledged offset; -1 unknown */
    apr_int64_t behind;  /* the primary's offset - offset (>= 0): bytes behind; -1 unknown */
    apr_int64_t lag_sec; /* seconds since its last acknowledgement; -1 unknown */
} ss_store_replica_t;

typedef struct {
    const char *role;          /* as the backend names it (Redis: "master", "slave") */
    const char *master_addr;   /* a replica's primary ("HOST:PORT"), else NULL */
    int connected;             /* replicas connected to it, listed or not */
    apr_int64_t master_offset; /* its own replication offset; -1 unknown */
    int nreplicas;             /* entries in replicas, at most SS_STORE_REPLICAS_LISTED */
    ss_store_replica_t replicas[SS_STORE_REPLICAS_LISTED];
} ss_store_replication_t;

#endif
