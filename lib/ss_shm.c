/* ss_shm.c - the shared-memory backend.
 *
 * Arena layout, every part at an offset from the base:
 *
 *   shm_header_t | bucket heads (u32 x nbuckets) | blocks (SS_SHM_BLOCK_SIZE x nblocks)
 *
 * A record is a chain of blocks. Every block starts with the index of the
 * next one; the first block of a chain holds the rest of shm_entry_t too
 * (key, deadline, hash-chain and LRU links), then the record's first bytes.
 * Free blocks form a singly linked list. Equal blocks mean no fragmentation
 * and no compaction: a record of n bytes needs blocks_for(n) blocks, always
 * available once enough others are freed. */
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "ss_log.h"
#include "ss_shm.h"

#define SHM_MAGIC 0x53534d32u /* "SSM2": bump whenever shm_header_t changes */
#define NIL 0xffffffffu
#define SWEEP_INTERVAL apr_time_from_sec(1)

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t block_size;
    apr_uint64_t size;
    apr_uint64_t blocks_offset;
    apr_uint32_t max_record;
    apr_uint32_t nbuckets;
    apr_uint32_t nblocks;
    apr_uint32_t free_head;
    apr_uint32_t free_count;
    apr_uint32_t lru_head; /* most recently used */
    apr_uint32_t lru_tail; /* next to evict */
    apr_uint32_t entries;
    apr_time_t next_sweep; /* no full scan for dead records before this */
    ss_store_stats_t stats;
} shm_header_t;

typedef struct {
    apr_uint32_t next; /* next block of the chain, NIL at the end; in every block */
    apr_uint32_t hash_next;
    apr_uint32_t lru_prev;
    apr_uint32_t lru_next;
    apr_uint32_t length; /* record bytes in the chain */
    apr_uint32_t unused;
    apr_time_t deadline; /* 0: none */
    unsigned char key[SS_KEY_BYTES];
} shm_entry_t;

#define FIRST_DATA (SS_SHM_BLOCK_SIZE - sizeof(shm_entry_t))
#define NEXT_DATA (SS_SHM_BLOCK_SIZE - sizeof(apr_uint32_t))

typedef struct {
    char *base;
    apr_global_mutex_t *mutex;
#if APR_HAS_THREADS
    /* This process's threads queue here before they take the global mutex.
     * APR's default global mutex on Linux is a robust, priority-inheritance
     * pthread mutex shared by all threads of all processes: PI hands the lock
     * over in FIFO order through the kernel, so with more contending threads
     * than cores every operation waits for a context switch (a convoy). A
     * plain process-local mutex in front leaves the global one at most one
     * waiter per process. */
    apr_thread_mutex_t *local;
#endif
} shm_store_t;

static apr_size_t align8(apr_size_t n)
{
    return (n + 7) & ~(apr_size_t)7;
}

static apr_uint32_t blocks_for(apr_size_t len)
{
    if (len <= FIRST_DATA) {
        return 1;
    }
    return 1 + (apr_uint32_t)((len - FIRST_DATA + NEXT_DATA - 1) / NEXT_DATA);
}

apr_size_t ss_shm_footprint(apr_size_t len)
{
    return (apr_size_t)blocks_for(len) * SS_SHM_BLOCK_SIZE;
}

static shm_header_t *header(char *base)
{
    return (shm_header_t *)base;
}

static apr_uint32_t *buckets(char *base)
{
    return (apr_uint32_t *)(base + align8(sizeof(shm_header_t)));
}

static char *block(char *base, apr_uint32_t i)
{
    return base + header(base)->blocks_offset + (apr_size_t)i * SS_SHM_BLOCK_SIZE;
}

static shm_entry_t *entry(char *base, apr_uint32_t i)
{
    return (shm_entry_t *)block(base, i);
}

static apr_uint32_t next_of(char *base, apr_uint32_t i)
{
    return *(apr_uint32_t *)block(base, i);
}

static void set_next(char *base, apr_uint32_t i, apr_uint32_t next)
{
    *(apr_uint32_t *)block(base, i) = next;
}

static apr_uint32_t bucket_of(char *base, const ss_key_t *key)
{
    /* Keys are SHA-256 output: any 4 bytes are already uniform. */
    apr_uint32_t h;

    memcpy(&h, key->bytes, sizeof(h));
    return h & (header(base)->nbuckets - 1);
}

/* The arena's layout for size bytes: bucket count, block offset and count. */
static void layout(apr_size_t size, apr_uint32_t *nbuckets_out, apr_size_t *offset_out,
                   apr_size_t *nblocks_out)
{
    apr_size_t fixed = align8(sizeof(shm_header_t));
    apr_uint32_t nbuckets = 16;
    apr_size_t nblocks, offset;

    /* About one bucket per two blocks: sessions span two blocks or more, so
     * chains stay shorter than one entry on average. */
    while ((apr_size_t)nbuckets * 2 * 2 * SS_SHM_BLOCK_SIZE <= size - fixed &&
           nbuckets < 0x40000000u) {
        nbuckets *= 2;
    }
    offset = fixed + (apr_size_t)nbuckets * sizeof(apr_uint32_t);
    offset = (offset + 63) & ~(apr_size_t)63;
    nblocks = (size - offset) / SS_SHM_BLOCK_SIZE;
    if (nblocks >= NIL) {
        nblocks = NIL - 1;
    }
    *nbuckets_out = nbuckets;
    *offset_out = offset;
    *nblocks_out = nblocks;
}

int ss_shm_fits(apr_size_t size, apr_size_t max_record)
{
    apr_uint32_t nbuckets;
    apr_size_t offset, nblocks;

    if (size < SS_SHM_MIN_SIZE || max_record < SS_RECORD_HEADER_LEN || max_record > 0xffffffffUL) {
        return 0;
    }
    layout(size, &nbuckets, &offset, &nblocks);
    return blocks_for(max_record) <= nblocks / 4;
}

apr_status_t ss_shm_format(void *arena, apr_size_t size, apr_size_t max_record)
{
    char *base = arena;
    shm_header_t *h = header(base);
    apr_uint32_t nbuckets, i;
    apr_size_t nblocks, offset;

    if (!ss_shm_fits(size, max_record)) {
        return APR_EINVAL;
    }
    layout(size, &nbuckets, &offset, &nblocks);

    memset(h, 0, sizeof(*h));
    h->block_size = SS_SHM_BLOCK_SIZE;
    h->size = size;
    h->blocks_offset = offset;
    h->max_record = (apr_uint32_t)max_record;
    h->nbuckets = nbuckets;
    h->nblocks = (apr_uint32_t)nblocks;
    h->lru_head = h->lru_tail = NIL;
    for (i = 0; i < nbuckets; i++) {
        buckets(base)[i] = NIL;
    }
    for (i = 0; i < h->nblocks; i++) {
        set_next(base, i, i + 1 < h->nblocks ? i + 1 : NIL);
    }
    h->free_head = 0;
    h->free_count = h->nblocks;
    h->magic = SHM_MAGIC;
    return APR_SUCCESS;
}

int ss_shm_is_formatted(const void *arena, apr_size_t size, apr_size_t max_record)
{
    const shm_header_t *h = arena;

    return h->magic == SHM_MAGIC && h->block_size == SS_SHM_BLOCK_SIZE && h->size == size &&
           h->max_record == max_record;
}

static apr_uint32_t find(char *base, const ss_key_t *key)
{
    apr_uint32_t i = buckets(base)[bucket_of(base, key)];

    while (i != NIL && memcmp(entry(base, i)->key, key->bytes, SS_KEY_BYTES) != 0) {
        i = entry(base, i)->hash_next;
    }
    return i;
}

static void lru_unlink(char *base, apr_uint32_t i)
{
    shm_header_t *h = header(base);
    shm_entry_t *e = entry(base, i);

    if (e->lru_prev != NIL) {
        entry(base, e->lru_prev)->lru_next = e->lru_next;
    } else {
        h->lru_head = e->lru_next;
    }
    if (e->lru_next != NIL) {
        entry(base, e->lru_next)->lru_prev = e->lru_prev;
    } else {
        h->lru_tail = e->lru_prev;
    }
}

static void lru_push_head(char *base, apr_uint32_t i)
{
    shm_header_t *h = header(base);
    shm_entry_t *e = entry(base, i);

    e->lru_prev = NIL;
    e->lru_next = h->lru_head;
    if (h->lru_head != NIL) {
        entry(base, h->lru_head)->lru_prev = i;
    } else {
        h->lru_tail = i;
    }
    h->lru_head = i;
}

static void hash_unlink(char *base, apr_uint32_t i)
{
    apr_uint32_t *link = &buckets(base)[bucket_of(base, (const ss_key_t *)entry(base, i)->key)];

    while (*link != i) {
        link = &entry(base, *link)->hash_next;
    }
    *link = entry(base, i)->hash_next;
}

static void remove_entry(char *base, apr_uint32_t i)
{
    shm_header_t *h = header(base);
    apr_uint32_t b = i, next;

    hash_unlink(base, i);
    lru_unlink(base, i);
    h->entries--;
    while (b != NIL) {
        next = next_of(base, b);
        set_next(base, b, h->free_head);
        h->free_head = b;
        h->free_count++;
        b = next;
    }
}

static int is_dead(const shm_entry_t *e, apr_time_t now)
{
    return e->deadline && e->deadline <= now;
}

/* Free blocks until n are available: dead records first (a full scan, at
 * most once a second), then the least recently used. */
static void make_room(char *base, apr_uint32_t n, apr_time_t now)
{
    shm_header_t *h = header(base);
    apr_uint32_t i, prev;

    if (h->free_count >= n) {
        return;
    }
    if (now >= h->next_sweep) {
        h->next_sweep = now + SWEEP_INTERVAL;
        for (i = h->lru_tail; i != NIL; i = prev) {
            prev = entry(base, i)->lru_prev;
            if (is_dead(entry(base, i), now)) {
                remove_entry(base, i);
                h->stats.evicted_expired++;
            }
        }
    }
    while (h->free_count < n && h->lru_tail != NIL) {
        i = h->lru_tail;
        if (is_dead(entry(base, i), now)) {
            h->stats.evicted_expired++;
        } else {
            h->stats.evicted_lru++;
        }
        remove_entry(base, i);
    }
}

static apr_uint32_t alloc_chain(char *base, apr_uint32_t n)
{
    shm_header_t *h = header(base);
    apr_uint32_t first = h->free_head, last = first, k;

    for (k = 1; k < n; k++) {
        last = next_of(base, last);
    }
    h->free_head = next_of(base, last);
    h->free_count -= n;
    set_next(base, last, NIL);
    return first;
}

static void copy_in(char *base, apr_uint32_t i, const char *src, apr_size_t len)
{
    apr_size_t chunk = len < FIRST_DATA ? len : FIRST_DATA;

    memcpy(block(base, i) + sizeof(shm_entry_t), src, chunk);
    src += chunk;
    len -= chunk;
    while (len) {
        i = next_of(base, i);
        chunk = len < NEXT_DATA ? len : NEXT_DATA;
        memcpy(block(base, i) + sizeof(apr_uint32_t), src, chunk);
        src += chunk;
        len -= chunk;
    }
}

static void copy_out(char *base, apr_uint32_t i, char *dst, apr_size_t len)
{
    apr_size_t chunk = len < FIRST_DATA ? len : FIRST_DATA;

    memcpy(dst, block(base, i) + sizeof(shm_entry_t), chunk);
    dst += chunk;
    len -= chunk;
    while (len) {
        i = next_of(base, i);
        chunk = len < NEXT_DATA ? len : NEXT_DATA;
        memcpy(dst, block(base, i) + sizeof(apr_uint32_t), chunk);
        dst += chunk;
        len -= chunk;
    }
}

static apr_status_t lock(shm_store_t *s)
{
    apr_status_t rv;

#if APR_HAS_THREADS
    rv = apr_thread_mutex_lock(s->local);
    if (rv != APR_SUCCESS) {
        ss_log(SS_LOG_ERR, rv, "shm store: cannot take the process's mutex");
        return rv;
    }
#endif
    rv = apr_global_mutex_lock(s->mutex);
    if (rv != APR_SUCCESS) {
#if APR_HAS_THREADS
        apr_thread_mutex_unlock(s->local);
#endif
        ss_log(SS_LOG_ERR, rv, "shm store: cannot take the mutex");
    }
    return rv;
}

static void unlock(shm_store_t *s)
{
    apr_global_mutex_unlock(s->mutex);
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(s->local);
#endif
}

/* Decode entry i, under the lock. A record that does not decode is removed
 * (a miss, counted and logged); one of a newer format is left for the nodes
 * that read it. */
static apr_status_t decode_entry(char *base, apr_uint32_t i, const ss_key_t *key, apr_pool_t *p,
                                 ss_record_t *rec)
{
    shm_header_t *h = header(base);
    apr_size_t len = entry(base, i)->length;
    char *buf = apr_palloc(p, len ? len : 1);
    apr_status_t rv;

    copy_out(base, i, buf, len);
    rv = ss_record_decode(buf, len, p, rec);
    if (rv == APR_ENOTIMPL) {
        h->stats.newer_format++;
        return APR_NOTFOUND;
    }
    if (rv != APR_SUCCESS) {
        remove_entry(base, i);
        h->stats.malformed++;
        ss_log(SS_LOG_WARNING, rv, "shm store: session %s held a malformed record; removed",
               ss_key_tag(key, p));
        return APR_NOTFOUND;
    }
    return APR_SUCCESS;
}

static apr_status_t shm_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *judge,
                             const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p,
                             ss_record_t *rec)
{
    shm_store_t *s = store->impl;
    shm_header_t *h = header(s->base);
    apr_uint32_t i;
    shm_entry_t *e;
    apr_status_t rv = lock(s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    i = find(s->base, key);
    if (i == NIL) {
        h->stats.misses++;
        unlock(s);
        return APR_NOTFOUND;
    }
    rv = decode_entry(s->base, i, key, p, rec);
    if (rv != APR_SUCCESS) {
        unlock(s);
        return rv;
    }
    e = entry(s->base, i);
    if (ss_expiry_check(keep, rec->created, rec->accessed, now) != SS_LIVE) {
        remove_entry(s->base, i); /* dead for every location */
        h->stats.expired++;
        unlock(s);
        return APR_NOTFOUND;
    }
    if (ss_expiry_check(judge, rec->created, rec->accessed, now) != SS_LIVE) {
        h->stats.expired++; /* dead here only: kept for the lenient locations */
        unlock(s);
        return APR_NOTFOUND;
    }
    if (ss_expiry_touch_due(judge, rec->accessed, now)) {
        ss_record_poke_accessed((unsigned char *)block(s->base, i) + sizeof(shm_entry_t), now);
        rec->accessed = now;
        e->deadline = ss_expiry_deadline(keep, rec->created, now);
        h->stats.touches++;
    }
    lru_unlink(s->base, i);
    lru_push_head(s->base, i);
    h->stats.hits++;
    unlock(s);
    return APR_SUCCESS;
}

/* Whether a save in this mode may go ahead over entry i (NIL: none). A dead
 * entry counts as gone. */
static apr_status_t check_mode(char *base, apr_uint32_t i, ss_save_mode_e mode, apr_time_t now)
{
    int live = i != NIL && !is_dead(entry(base, i), now);

    if (mode == SS_SAVE_NEW && live) {
        return APR_EEXIST;
    }
    if (mode == SS_SAVE_UPDATE && !live) {
        header(base)->stats.refused_gone++;
        return APR_NOTFOUND;
    }
    return APR_SUCCESS;
}

static apr_status_t shm_save(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                             apr_time_t deadline, ss_save_mode_e mode, apr_size_t limit,
                             apr_pool_t *p)
{
    shm_store_t *s = store->impl;
    shm_header_t *h = header(s->base);
    apr_time_t now = rec->accessed;
    char *buf;
    apr_size_t len;
    apr_uint32_t i, n;
    shm_entry_t *e;
    apr_status_t rv;

    rv = ss_record_encode(rec, p, &buf, &len);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = lock(s);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (len > limit || len > h->max_record) {
        h->stats.refused_oversize++; /* the caller logs it, rate-limited */
        unlock(s);
        return APR_ENOSPC;
    }
    i = find(s->base, key);
    rv = check_mode(s->base, i, mode, now);
    if (rv != APR_SUCCESS) {
        unlock(s);
        return rv;
    }
    if (i != NIL) {
        remove_entry(s->base, i);
    }
    n = blocks_for(len);
    make_room(s->base, n, now);
    i = alloc_chain(s->base, n);
    e = entry(s->base, i);
    memcpy(e->key, key->bytes, SS_KEY_BYTES);
    e->length = (apr_uint32_t)len;
    e->deadline = deadline;
    copy_in(s->base, i, buf, len);
    e->hash_next = buckets(s->base)[bucket_of(s->base, key)];
    buckets(s->base)[bucket_of(s->base, key)] = i;
    lru_push_head(s->base, i);
    h->entries++;
    h->stats.saves++;
    unlock(s);
    return APR_SUCCESS;
}

static apr_status_t shm_remove(ss_store_t *store, const ss_key_t *key)
{
    shm_store_t *s = store->impl;
    apr_uint32_t i;
    apr_status_t rv = lock(s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    i = find(s->base, key);
    if (i != NIL) {
        remove_entry(s->base, i);
        header(s->base)->stats.removes++;
    }
    unlock(s);
    return APR_SUCCESS;
}

static apr_status_t shm_stats(ss_store_t *store, ss_store_stats_t *stats)
{
    shm_store_t *s = store->impl;
    shm_header_t *h = header(s->base);
    apr_status_t rv = lock(s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    *stats = h->stats;
    stats->entries = h->entries;
    stats->capacity_bytes = (apr_uint64_t)h->nblocks * SS_SHM_BLOCK_SIZE;
    stats->used_bytes = (apr_uint64_t)(h->nblocks - h->free_count) * SS_SHM_BLOCK_SIZE;
    unlock(s);
    return APR_SUCCESS;
}

static const char *shm_describe(ss_store_t *store, apr_pool_t *p)
{
    shm_store_t *s = store->impl;

    return apr_psprintf(p, "shm (%" APR_UINT64_T_FMT " bytes, sessions up to %u bytes)",
                        header(s->base)->size, header(s->base)->max_record);
}

static apr_status_t shm_ping(ss_store_t *store)
{
    (void)store;
    return APR_SUCCESS; /* memory of this host: nothing to reach */
}

static apr_status_t shm_child_init(ss_store_t *store, apr_pool_t *p)
{
    shm_store_t *s = store->impl;

    return apr_global_mutex_child_init(&s->mutex, apr_global_mutex_lockfile(s->mutex), p);
}

static void shm_close(ss_store_t *store)
{
    /* The arena and the mutex belong to the host; nothing to release. */
    (void)store;
}

static const ss_store_ops_t shm_ops = {"shm",          "all httpd processes on this host",
                                       shm_load,       shm_save,
                                       shm_remove,     shm_stats,
                                       shm_describe,   shm_ping,
                                       shm_child_init, shm_close};

apr_status_t ss_shm_open(ss_store_t **store, void *base, apr_global_mutex_t *mutex, apr_pool_t *p)
{
    shm_store_t *s;

    if (header(base)->magic != SHM_MAGIC) {
        return APR_EINVAL;
    }
    s = apr_pcalloc(p, sizeof(*s));
    s->base = base;
    s->mutex = mutex;
#if APR_HAS_THREADS
    {
        apr_status_t rv = apr_thread_mutex_create(&s->local, APR_THREAD_MUTEX_DEFAULT, p);

        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
#endif
    *store = apr_pcalloc(p, sizeof(**store));
    (*store)->ops = &shm_ops;
    (*store)->impl = s;
    return APR_SUCCESS;
}
