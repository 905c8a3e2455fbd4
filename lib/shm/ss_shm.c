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
 * available once enough others are freed.
 *
 * A writer can die at any instruction while it holds the lock (a crash
 * elsewhere in the child, the OOM killer, kill -9), and the lock does not
 * say so: APR makes a robust pthread mutex whose owner died consistent again
 * and returns success, and fcntl, flock and SysV locks are just released.
 * So every update is bracketed by a mark in the header, set before its first
 * write and cleared after its last. Whoever takes the lock and finds the mark
 * walks the whole arena (walk_arena) and, if it is damaged, formats it empty
 * again: the sessions are lost, the server goes on.
 *
 * Nothing read from the arena is trusted: every index and length is checked
 * before it is followed, chain walks have a step limit, and a failed check
 * (SHM_BROKEN) leads to the same rebuild, never to a wild read or an endless
 * loop. The geometry (bucket and block counts, offsets) is computed from the
 * size into each process's own memory (arena_t); the header's copy is only
 * compared. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef SS_FAULT_POINTS
#include <signal.h>
#include <stdio.h>
#endif

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_thread_mutex.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "ss_log.h"
#include "ss_shm.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define SHM_MAGIC 0x53534d33u /* "SSM3" */
/* Bump whenever shm_header_t, shm_entry_t or an invariant of the arena
 * changes: an arena kept across a restart by another layout is not reused. */
#define SHM_LAYOUT 5u
#define SHM_BUILDER "mod_sessstore " PACKAGE_VERSION
#define NIL 0xffffffffu
#define SWEEP_INTERVAL apr_time_from_sec(1)
/* Internal: the arena failed a check. Never returned to the caller. */
#define SHM_BROKEN (APR_OS_START_USERERR + 0x5353)

#ifdef SS_FAULT_POINTS
void (*ss_shm_fault_hook)(const char *step);

/* Test builds only: the hook a test installed; else, while the file that
 * SS_FAULT_FILE names holds "step n", SIGKILL at every n-th pass of step
 * (the end-to-end tests turn faults on and off with it). */
static void fault(const char *step)
{
    static unsigned long passes;
    const char *path = getenv("SS_FAULT_FILE");
    char want[64];
    unsigned long every = 1;
    FILE *f;

    if (ss_shm_fault_hook) {
        ss_shm_fault_hook(step);
        return;
    }
    if (!path || (f = fopen(path, "r")) == NULL) {
        return;
    }
    if (fscanf(f, "%63s %lu", want, &every) >= 1 && strcmp(want, step) == 0 &&
        ++passes % (every ? every : 1) == 0) {
        raise(SIGKILL);
    }
    fclose(f);
}
#define FAULT(step) fault(step)
#else
#define FAULT(step) ((void)0)
#endif

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t layout; /* SHM_LAYOUT of the library that formatted it */
    char builder[32];    /* SHM_BUILDER of that library, for the log */
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
    apr_uint32_t updating; /* pid of the process amid an update, 0 when none */
    apr_uint32_t rebuilds; /* times the arena was found damaged and emptied */
    apr_time_t next_sweep; /* no full scan for dead records before this */
    ss_store_stats_t stats;
} shm_header_t;

#define ENTRY_KEY_BYTES 16

typedef struct {
    apr_uint32_t next; /* next block of the chain, NIL at the end; in every block */
    apr_uint32_t hash_next;
    apr_uint32_t lru_prev;
    apr_uint32_t lru_next;
    apr_uint32_t length; /* record bytes in the chain */
    apr_uint32_t unused;
    /* When the record is dead for every location (the keeping timeouts, see
     * ss_store.h); 0: none. Refuses updates of a dead record and picks the
     * dead ones to reclaim first; a load judges by its own timeouts. */
    apr_time_t deadline;
    /* The first ENTRY_KEY_BYTES of the store key: 128 bits of SHA-256 of
     * a 256-bit random ID tell sessions apart as well as 256 do, and leave
     * room for the owner with 64 data bytes in the first block. */
    unsigned char key[ENTRY_KEY_BYTES];
    /* ss_owner_t of the record's owner, all zero when anonymous: the
     * per-owner index is a walk of the entries comparing this (revoke). */
    unsigned char owner[SS_OWNER_BYTES];
} shm_entry_t;

#define FIRST_DATA (SS_SHM_BLOCK_SIZE - sizeof(shm_entry_t))
#define NEXT_DATA (SS_SHM_BLOCK_SIZE - sizeof(apr_uint32_t))

/* An arena as this process sees it: the base and the geometry computed from
 * the size, never read back from the shared header. */
typedef struct {
    char *base;
    apr_size_t size;
    apr_size_t blocks_offset;
    apr_uint32_t nbuckets;
    apr_uint32_t nblocks;
    apr_uint32_t max_record;
} arena_t;

typedef struct {
    arena_t a;
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

static shm_header_t *header(const arena_t *a)
{
    return (shm_header_t *)a->base;
}

static apr_uint32_t *buckets(const arena_t *a)
{
    return (apr_uint32_t *)(a->base + align8(sizeof(shm_header_t)));
}

static char *block(const arena_t *a, apr_uint32_t i)
{
    return a->base + a->blocks_offset + (apr_size_t)i * SS_SHM_BLOCK_SIZE;
}

static shm_entry_t *entry(const arena_t *a, apr_uint32_t i)
{
    return (shm_entry_t *)block(a, i);
}

static apr_uint32_t next_of(const arena_t *a, apr_uint32_t i)
{
    return *(apr_uint32_t *)block(a, i);
}

static void set_next(const arena_t *a, apr_uint32_t i, apr_uint32_t next)
{
    *(apr_uint32_t *)block(a, i) = next;
}

static apr_uint32_t bucket_of(const arena_t *a, const unsigned char *key)
{
    /* Keys are SHA-256 output: any 4 bytes are already uniform. */
    apr_uint32_t h;

    memcpy(&h, key, sizeof(h));
    return h & (a->nbuckets - 1);
}

/* A block index read from the arena may be followed only if this holds. */
static int in_range(const arena_t *a, apr_uint32_t i)
{
    return i < a->nblocks;
}

/* A link: a block index or NIL. */
static int link_ok(const arena_t *a, apr_uint32_t i)
{
    return i == NIL || in_range(a, i);
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

    if (size < SS_SHM_MIN_SIZE || max_record < SS_RECORD_MIN_LEN || max_record > 0xffffffffUL) {
        return 0;
    }
    layout(size, &nbuckets, &offset, &nblocks);
    return blocks_for(max_record) <= nblocks / 4;
}

/* The arena of size bytes at base, for a size and record limit that fit. */
static void arena_init(arena_t *a, const void *base, apr_size_t size, apr_size_t max_record)
{
    apr_size_t nblocks;

    a->base = (char *)base;
    a->size = size;
    a->max_record = (apr_uint32_t)max_record;
    layout(size, &a->nbuckets, &a->blocks_offset, &nblocks);
    a->nblocks = (apr_uint32_t)nblocks;
}

static void format_arena(const arena_t *a)
{
    shm_header_t *h = header(a);
    apr_uint32_t i;

    memset(h, 0, sizeof(*h));
    h->layout = SHM_LAYOUT;
    apr_cpystrn(h->builder, SHM_BUILDER, sizeof(h->builder));
    h->block_size = SS_SHM_BLOCK_SIZE;
    h->size = a->size;
    h->blocks_offset = a->blocks_offset;
    h->max_record = a->max_record;
    h->nbuckets = a->nbuckets;
    h->nblocks = a->nblocks;
    h->lru_head = h->lru_tail = NIL;
    for (i = 0; i < a->nbuckets; i++) {
        buckets(a)[i] = NIL;
    }
    for (i = 0; i < a->nblocks; i++) {
        set_next(a, i, i + 1 < a->nblocks ? i + 1 : NIL);
    }
    h->free_head = 0;
    h->free_count = a->nblocks;
    h->magic = SHM_MAGIC;
}

apr_status_t ss_shm_format(void *base, apr_size_t size, apr_size_t max_record)
{
    arena_t a;

    if (!ss_shm_fits(size, max_record)) {
        return APR_EINVAL;
    }
    arena_init(&a, base, size, max_record);
    format_arena(&a);
    return APR_SUCCESS;
}

/* ---- checks ------------------------------------------------------------- */

/* Why the header does not describe the arena a, or NULL. */
static const char *check_header(const arena_t *a)
{
    const shm_header_t *h = header(a);

    if (h->magic != SHM_MAGIC || h->layout != SHM_LAYOUT || h->block_size != SS_SHM_BLOCK_SIZE) {
        return "not an arena of this layout";
    }
    if (h->size != a->size || h->max_record != a->max_record || h->nbuckets != a->nbuckets ||
        h->nblocks != a->nblocks || h->blocks_offset != a->blocks_offset) {
        return "another size, record limit or geometry";
    }
    return NULL;
}

/* What the full walk has found each block to be. */
enum { SEEN_NONE, SEEN_FREE, SEEN_DATA, SEEN_ENTRY, SEEN_LISTED };

static const char *walk_free(const arena_t *a, unsigned char *seen)
{
    const shm_header_t *h = header(a);
    apr_uint32_t i, n = 0;

    /* Marking each block bounds the walk: a loop meets a marked block. */
    for (i = h->free_head; i != NIL; i = next_of(a, i)) {
        if (!in_range(a, i) || seen[i] != SEEN_NONE) {
            return "the free list leaves the arena or loops";
        }
        seen[i] = SEEN_FREE;
        n++;
    }
    return n == h->free_count ? NULL : "the free count disagrees with the free list";
}

/* An entry's record: a length within bounds, exactly the blocks it needs. */
static const char *walk_chain(const arena_t *a, apr_uint32_t i, unsigned char *seen)
{
    const shm_entry_t *e = entry(a, i);
    apr_uint32_t n, k;

    if (e->length < SS_RECORD_MIN_LEN || e->length > a->max_record) {
        return "a record length out of bounds";
    }
    n = blocks_for(e->length);
    for (k = 1; k < n; k++) {
        i = next_of(a, i);
        if (!in_range(a, i) || seen[i] != SEEN_NONE) {
            return "a record's blocks leave the arena or belong to something else";
        }
        seen[i] = SEEN_DATA;
    }
    return next_of(a, i) == NIL ? NULL : "a record's chain is longer than its length";
}

static const char *walk_index(const arena_t *a, unsigned char *seen)
{
    apr_uint32_t b, i, n = 0;
    const char *why;

    for (b = 0; b < a->nbuckets; b++) {
        for (i = buckets(a)[b]; i != NIL; i = entry(a, i)->hash_next) {
            if (!in_range(a, i) || seen[i] != SEEN_NONE) {
                return "a hash chain leaves the arena, loops or meets another's block";
            }
            if (bucket_of(a, entry(a, i)->key) != b) {
                return "an entry in the wrong hash chain";
            }
            seen[i] = SEEN_ENTRY;
            if ((why = walk_chain(a, i, seen)) != NULL) {
                return why;
            }
            n++;
        }
    }
    return n == header(a)->entries ? NULL : "the entry count disagrees with the index";
}

/* Forward from the head, each prev link checked against the step before and
 * the tail against the last: the list is then right both ways. */
static const char *walk_lru(const arena_t *a, unsigned char *seen)
{
    const shm_header_t *h = header(a);
    apr_uint32_t i, prev = NIL, n = 0;

    for (i = h->lru_head; i != NIL; i = entry(a, i)->lru_next) {
        if (!in_range(a, i) || seen[i] != SEEN_ENTRY) {
            return "the LRU list leaves the index or loops";
        }
        if (entry(a, i)->lru_prev != prev) {
            return "the LRU list's back links disagree with its forward links";
        }
        seen[i] = SEEN_LISTED;
        prev = i;
        n++;
    }
    if (prev != h->lru_tail || n != h->entries) {
        return "the LRU list misses entries or ends elsewhere than its tail";
    }
    return NULL;
}

/* Why the arena is inconsistent, or NULL: every block is on the free list or
 * in exactly one record, every entry is indexed once and listed once. */
static const char *walk_arena(const arena_t *a)
{
    unsigned char *seen;
    const char *why;
    apr_uint32_t i;

    if ((why = check_header(a)) != NULL) {
        return why;
    }
    seen = calloc(a->nblocks, 1);
    if (!seen) {
        return "no memory to check it";
    }
    why = walk_free(a, seen);
    if (!why) {
        why = walk_index(a, seen);
    }
    if (!why) {
        why = walk_lru(a, seen);
    }
    for (i = 0; !why && i < a->nblocks; i++) {
        if (seen[i] == SEEN_NONE) {
            why = "a block is neither free nor in a record";
        }
    }
    free(seen);
    return why;
}

int ss_shm_is_formatted(const void *base, apr_size_t size, apr_size_t max_record)
{
    arena_t a;

    if (!ss_shm_fits(size, max_record)) {
        return 0;
    }
    arena_init(&a, base, size, max_record);
    return check_header(&a) == NULL;
}

apr_status_t ss_shm_check(const void *base, apr_size_t size, apr_size_t max_record,
                          const char **why)
{
    const char *dummy = NULL;
    arena_t a;

    why = why ? why : &dummy;
    if (!ss_shm_fits(size, max_record)) {
        *why = "a size and record limit that do not fit";
        return APR_EINVAL;
    }
    arena_init(&a, base, size, max_record);
    if ((*why = check_header(&a)) != NULL) {
        return APR_EINVAL;
    }
    *why = walk_arena(&a);
    return *why ? APR_EGENERAL : APR_SUCCESS;
}

apr_uint32_t ss_shm_rebuilds(const void *base)
{
    return ((const shm_header_t *)base)->rebuilds;
}

/* Empty a damaged arena; the counters carry on. */
static void rebuild(const arena_t *a, const char *why, apr_uint32_t dead_pid)
{
    shm_header_t *h = header(a);
    ss_store_stats_t stats = h->stats;
    apr_uint32_t rebuilds = h->rebuilds + 1;

    format_arena(a);
    h->stats = stats;
    h->rebuilds = rebuilds;
    if (dead_pid) {
        ss_log(SS_LOG_ERR, 0,
               "shm store: process %u died while updating the session arena and left it "
               "damaged (%s): emptied it, every stored session is lost (rebuild %u)",
               dead_pid, why, rebuilds);
    } else {
        ss_log(SS_LOG_ERR, 0,
               "shm store: the session arena is damaged (%s): emptied it, every stored "
               "session is lost (rebuild %u)",
               why, rebuilds);
    }
}

/* ---- the index, the LRU list and the chains ----------------------------- */

/* A found entry must be safe to read whole: its length within bounds and
 * its chain exactly as long as the length says, inside the arena. */
static int entry_ok(const arena_t *a, apr_uint32_t i)
{
    apr_uint32_t len = entry(a, i)->length, n, k;

    if (len < SS_RECORD_MIN_LEN || len > a->max_record) {
        return 0;
    }
    n = blocks_for(len);
    for (k = 1; k < n; k++) {
        i = next_of(a, i);
        if (!in_range(a, i)) {
            return 0;
        }
    }
    return next_of(a, i) == NIL;
}

/* *found: the entry holding key, NIL if none. A chain never holds more
 * entries than there are blocks: longer, it loops. */
static apr_status_t find(const arena_t *a, const ss_key_t *key, apr_uint32_t *found)
{
    apr_uint32_t i = buckets(a)[bucket_of(a, key->bytes)], steps = 0;

    while (i != NIL) {
        if (!in_range(a, i) || ++steps > a->nblocks) {
            return SHM_BROKEN;
        }
        if (memcmp(entry(a, i)->key, key->bytes, ENTRY_KEY_BYTES) == 0) {
            if (!entry_ok(a, i)) {
                return SHM_BROKEN;
            }
            break;
        }
        i = entry(a, i)->hash_next;
    }
    *found = i;
    return APR_SUCCESS;
}

/* Both neighbours must point back at i before i is taken out. */
static apr_status_t lru_unlink(const arena_t *a, apr_uint32_t i)
{
    shm_header_t *h = header(a);
    shm_entry_t *e = entry(a, i);
    apr_uint32_t prev = e->lru_prev, next = e->lru_next;

    if (!link_ok(a, prev) || !link_ok(a, next) ||
        (prev == NIL ? h->lru_head : entry(a, prev)->lru_next) != i ||
        (next == NIL ? h->lru_tail : entry(a, next)->lru_prev) != i) {
        return SHM_BROKEN;
    }
    if (prev != NIL) {
        entry(a, prev)->lru_next = next;
    } else {
        h->lru_head = next;
    }
    if (next != NIL) {
        entry(a, next)->lru_prev = prev;
    } else {
        h->lru_tail = prev;
    }
    return APR_SUCCESS;
}

static apr_status_t lru_push_head(const arena_t *a, apr_uint32_t i)
{
    shm_header_t *h = header(a);
    shm_entry_t *e = entry(a, i);
    apr_uint32_t head = h->lru_head;

    /* An empty list has no tail; a head has no predecessor. */
    if (head == NIL ? h->lru_tail != NIL
                    : (!in_range(a, head) || entry(a, head)->lru_prev != NIL)) {
        return SHM_BROKEN;
    }
    e->lru_prev = NIL;
    e->lru_next = head;
    if (head != NIL) {
        entry(a, head)->lru_prev = i;
        FAULT("lru.push_half");
    } else {
        h->lru_tail = i;
    }
    h->lru_head = i;
    return APR_SUCCESS;
}

/* The walk stops at the end of the chain: i not in it is damage. */
static apr_status_t hash_unlink(const arena_t *a, apr_uint32_t i)
{
    apr_uint32_t *link = &buckets(a)[bucket_of(a, entry(a, i)->key)];
    apr_uint32_t steps = 0;

    while (*link != i) {
        if (!in_range(a, *link) || ++steps > a->nblocks) {
            return SHM_BROKEN;
        }
        link = &entry(a, *link)->hash_next;
    }
    if (!link_ok(a, entry(a, i)->hash_next)) {
        return SHM_BROKEN;
    }
    *link = entry(a, i)->hash_next;
    return APR_SUCCESS;
}

/* i has passed entry_ok (found, or on the LRU list and checked here). */
static apr_status_t remove_entry(const arena_t *a, apr_uint32_t i)
{
    shm_header_t *h = header(a);
    apr_uint32_t b = i, next, n, k;

    if (!entry_ok(a, i)) {
        return SHM_BROKEN;
    }
    n = blocks_for(entry(a, i)->length);
    if (h->entries == 0 || h->free_count > a->nblocks - n) {
        return SHM_BROKEN;
    }
    if (hash_unlink(a, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("remove.hash_unlinked");
    if (lru_unlink(a, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("remove.lru_unlinked");
    h->entries--;
    for (k = 0; k < n; k++) {
        next = next_of(a, b);
        set_next(a, b, h->free_head);
        FAULT("remove.mid_free_push");
        h->free_head = b;
        h->free_count++;
        b = next;
    }
    return APR_SUCCESS;
}

static int is_dead(const shm_entry_t *e, apr_time_t now)
{
    return e->deadline && e->deadline <= now;
}

/* Remove every dead record, from the tail. */
static apr_status_t sweep(const arena_t *a, apr_time_t now)
{
    shm_header_t *h = header(a);
    apr_uint32_t i, prev, steps = 0;

    for (i = h->lru_tail; i != NIL; i = prev) {
        if (!in_range(a, i) || ++steps > a->nblocks) {
            return SHM_BROKEN;
        }
        prev = entry(a, i)->lru_prev;
        if (is_dead(entry(a, i), now)) {
            if (remove_entry(a, i) != APR_SUCCESS) {
                return SHM_BROKEN;
            }
            h->stats.evicted_expired++;
            FAULT("evict.sweep");
        }
    }
    return APR_SUCCESS;
}

/* Free blocks until n are available: dead records first (a full scan, at
 * most once a second), then the least recently used. A record takes at most
 * a quarter of the blocks, so emptying the list always makes room. */
static apr_status_t make_room(const arena_t *a, apr_uint32_t n, apr_time_t now)
{
    shm_header_t *h = header(a);
    apr_uint32_t i, steps = 0;

    if (h->free_count >= n) {
        return APR_SUCCESS;
    }
    if (now >= h->next_sweep) {
        h->next_sweep = now + SWEEP_INTERVAL;
        if (sweep(a, now) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
    }
    while (h->free_count < n) {
        i = h->lru_tail;
        if (!in_range(a, i) || ++steps > a->nblocks) {
            return SHM_BROKEN;
        }
        if (is_dead(entry(a, i), now)) {
            h->stats.evicted_expired++;
        } else {
            h->stats.evicted_lru++;
        }
        if (remove_entry(a, i) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
        FAULT("evict.lru");
    }
    return APR_SUCCESS;
}

static apr_status_t alloc_chain(const arena_t *a, apr_uint32_t n, apr_uint32_t *first)
{
    shm_header_t *h = header(a);
    apr_uint32_t last = h->free_head, next, k;

    if (h->free_count < n || h->free_count > a->nblocks || !in_range(a, last)) {
        return SHM_BROKEN;
    }
    for (k = 1; k < n; k++) {
        last = next_of(a, last);
        if (!in_range(a, last)) {
            return SHM_BROKEN;
        }
    }
    next = next_of(a, last);
    if (!link_ok(a, next)) {
        return SHM_BROKEN;
    }
    *first = h->free_head;
    h->free_head = next;
    FAULT("alloc.head_moved");
    h->free_count -= n;
    set_next(a, last, NIL);
    return APR_SUCCESS;
}

/* The chain from i is known to hold len bytes (alloc_chain, entry_ok). */
static void copy_in(const arena_t *a, apr_uint32_t i, const char *src, apr_size_t len)
{
    apr_size_t chunk = len < FIRST_DATA ? len : FIRST_DATA;

    memcpy(block(a, i) + sizeof(shm_entry_t), src, chunk);
    src += chunk;
    len -= chunk;
    while (len) {
        FAULT("save.mid_copy");
        i = next_of(a, i);
        chunk = len < NEXT_DATA ? len : NEXT_DATA;
        memcpy(block(a, i) + sizeof(apr_uint32_t), src, chunk);
        src += chunk;
        len -= chunk;
    }
}

static void copy_out(const arena_t *a, apr_uint32_t i, char *dst, apr_size_t len)
{
    apr_size_t chunk = len < FIRST_DATA ? len : FIRST_DATA;

    memcpy(dst, block(a, i) + sizeof(shm_entry_t), chunk);
    dst += chunk;
    len -= chunk;
    while (len) {
        i = next_of(a, i);
        chunk = len < NEXT_DATA ? len : NEXT_DATA;
        memcpy(dst, block(a, i) + sizeof(apr_uint32_t), chunk);
        dst += chunk;
        len -= chunk;
    }
}

#ifdef SS_FAULT_POINTS
typedef struct {
    const char *name;
    apr_size_t offset;
} field_t;

static const field_t header_fields[] = {
    {"free_head", offsetof(shm_header_t, free_head)},
    {"free_count", offsetof(shm_header_t, free_count)},
    {"lru_head", offsetof(shm_header_t, lru_head)},
    {"lru_tail", offsetof(shm_header_t, lru_tail)},
    {"entries", offsetof(shm_header_t, entries)},
    {"layout", offsetof(shm_header_t, layout)},
};

static const field_t entry_fields[] = {
    {"next", offsetof(shm_entry_t, next)},         {"hash_next", offsetof(shm_entry_t, hash_next)},
    {"lru_prev", offsetof(shm_entry_t, lru_prev)}, {"lru_next", offsetof(shm_entry_t, lru_next)},
    {"length", offsetof(shm_entry_t, length)},
};

/* Test builds only: the address of a named field, for tests that damage the
 * arena by hand: one of the header, key's bucket head ("bucket"), or one of
 * key's entry (NULL if key is not found). */
apr_uint32_t *ss_shm_fault_field(void *base, const char *name, const ss_key_t *key)
{
    shm_header_t *h = base;
    apr_uint32_t i;
    size_t k;
    arena_t a;

    arena_init(&a, base, (apr_size_t)h->size, h->max_record);
    for (k = 0; k < sizeof(header_fields) / sizeof(header_fields[0]); k++) {
        if (!strcmp(name, header_fields[k].name)) {
            return (apr_uint32_t *)(a.base + header_fields[k].offset);
        }
    }
    if (!strcmp(name, "bucket")) {
        return &buckets(&a)[bucket_of(&a, key->bytes)];
    }
    if (find(&a, key, &i) != APR_SUCCESS || i == NIL) {
        return NULL;
    }
    for (k = 0; k < sizeof(entry_fields) / sizeof(entry_fields[0]); k++) {
        if (!strcmp(name, entry_fields[k].name)) {
            return (apr_uint32_t *)(block(&a, i) + entry_fields[k].offset);
        }
    }
    return NULL;
}
#endif

/* ---- locking and the update mark ---------------------------------------- */

/* The last holder of the lock died amid an update: keep the arena if the
 * walk finds it whole (the update had not begun, or had ended), else empty
 * it. Runs under the lock, so once per dead writer. */
static void recover(const arena_t *a)
{
    shm_header_t *h = header(a);
    apr_uint32_t pid = apr_atomic_read32(&h->updating);
    const char *why = walk_arena(a);

    if (why) {
        rebuild(a, why, pid);
        return;
    }
    apr_atomic_set32(&h->updating, 0);
    ss_log(SS_LOG_WARNING, 0,
           "shm store: process %u died while updating the session arena; the arena is "
           "consistent and kept",
           pid);
}

/* A check failed halfway through an operation of ours. */
static void recover_broken(const arena_t *a)
{
    const char *why = walk_arena(a);

    rebuild(a, why ? why : "a link or length out of bounds", 0);
    /* Still inside an update (a save retries on the emptied arena): the
     * rebuild cleared the mark with the rest of the header. */
    apr_atomic_set32(&header(a)->updating, (apr_uint32_t)getpid());
}

/* Take the lock, then repair what a holder that died amid an update left. */
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
        return rv;
    }
    if (apr_atomic_read32(&header(&s->a)->updating) != 0) {
        recover(&s->a);
    }
    return APR_SUCCESS;
}

static void unlock(shm_store_t *s)
{
    apr_global_mutex_unlock(s->mutex);
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(s->local);
#endif
}

/* lock() and set the mark before the first write. The atomic store is also
 * a compiler barrier: no write of the update is moved before it. */
static apr_status_t begin_update(shm_store_t *s)
{
    apr_status_t rv = lock(s);

    if (rv == APR_SUCCESS) {
        apr_atomic_set32(&header(&s->a)->updating, (apr_uint32_t)getpid());
        FAULT("update.begun");
    }
    return rv;
}

/* Clear the mark after the last write, and unlock. */
static void end_update(shm_store_t *s)
{
    apr_atomic_set32(&header(&s->a)->updating, 0);
    unlock(s);
}

/* ---- operations --------------------------------------------------------- */

/* Find key, decode it, judge it and touch it. A record that does not decode
 * is removed (a miss, counted and logged); one of a newer format is left for
 * the nodes that read it. A record dead for every location (keep) is
 * removed; one dead only for this location (judge) stays. */
static apr_status_t load_locked(const arena_t *a, int sealed_only, const ss_key_t *key,
                                const ss_expiry_t *judge, const ss_expiry_t *keep, apr_time_t now,
                                apr_pool_t *p, ss_record_t *rec)
{
    shm_header_t *h = header(a);
    apr_uint32_t i;
    shm_entry_t *e;
    char *buf;
    apr_status_t rv;

    if (find(a, key, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    if (i == NIL) {
        h->stats.misses++;
        return APR_NOTFOUND;
    }
    e = entry(a, i);
    buf = apr_palloc(p, e->length ? e->length : 1);
    copy_out(a, i, buf, e->length);
    rv = ss_record_decode(buf, e->length, key, p, rec);
    if (rv == APR_ENOTIMPL) {
        h->stats.newer_format++;
        return APR_NOTFOUND;
    }
    if (rv == SS_RECORD_ENOKEY) {
        return APR_NOTFOUND; /* sealed, and a key that cannot open it: left alone */
    }
    if (rv == APR_SUCCESS && sealed_only && !ss_record_is_sealed(buf, e->length)) {
        rv = APR_EINVAL; /* in clear where only sealed records are accepted */
    }
    if (rv != APR_SUCCESS || ss_expiry_check(keep, rec->created, rec->accessed, now) != SS_LIVE) {
        if (remove_entry(a, i) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
        if (rv != APR_SUCCESS) {
            h->stats.malformed++;
            ss_log(SS_LOG_WARNING, rv, "shm store: session %s held a malformed record; removed",
                   ss_key_tag(key, p));
        } else {
            h->stats.expired++;
        }
        return APR_NOTFOUND;
    }
    if (ss_expiry_check(judge, rec->created, rec->accessed, now) != SS_LIVE) {
        h->stats.expired++; /* dead here only: kept for the lenient locations */
        return APR_NOTFOUND;
    }
    if (ss_expiry_touch_due(judge, rec->accessed, now)) {
        ss_record_poke_accessed((unsigned char *)block(a, i) + sizeof(shm_entry_t), now);
        FAULT("touch.accessed");
        rec->accessed = now;
        e->deadline = ss_expiry_deadline(keep, rec->created, now);
        h->stats.touches++;
    }
    if (lru_unlink(a, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("touch.lru_unlinked");
    if (lru_push_head(a, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    h->stats.hits++;
    return APR_SUCCESS;
}

static apr_status_t shm_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *judge,
                             const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p,
                             ss_record_t *rec)
{
    shm_store_t *s = store->impl;
    apr_status_t rv = begin_update(s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = load_locked(&s->a, store->sealed_only, key, judge, keep, now, p, rec);
    if (rv == SHM_BROKEN) {
        recover_broken(&s->a);
        rv = APR_NOTFOUND;
    }
    end_update(s);
    return rv;
}

/* The revision of entry i's record, from the header in its first block;
 * APR_EINVAL when it is not a record of a version we read. */
static apr_status_t stored_revision(const arena_t *a, apr_uint32_t i, apr_uint32_t *revision)
{
    apr_uint32_t len = entry(a, i)->length;
    ss_record_head_t head;
    apr_status_t rv;

    rv = ss_record_peek((const unsigned char *)block(a, i) + sizeof(shm_entry_t),
                        len < FIRST_DATA ? len : FIRST_DATA, &head);
    *revision = head.revision;
    return rv;
}

/* Whether a save in this mode may go ahead over entry i (NIL: none). A dead
 * entry counts as gone; an update goes ahead only over the revision it
 * loaded (revision - 1). */
static apr_status_t check_mode(const arena_t *a, apr_uint32_t i, ss_save_mode_e mode,
                               apr_uint32_t revision, apr_time_t now)
{
    int live = i != NIL && !is_dead(entry(a, i), now);
    apr_uint32_t stored = 0;

    if (mode == SS_SAVE_NEW && live) {
        return APR_EEXIST;
    }
    if (mode == SS_SAVE_UPDATE && !live) {
        header(a)->stats.refused_gone++;
        return APR_NOTFOUND;
    }
    if (mode == SS_SAVE_UPDATE &&
        (stored_revision(a, i, &stored) != APR_SUCCESS || stored != revision - 1)) {
        header(a)->stats.refused_conflict++;
        return SS_ECONFLICT;
    }
    return APR_SUCCESS;
}

/* Replace or add key's record: the old one out, room made, a chain filled
 * and only then linked into the index and the LRU list. */
static apr_status_t save_locked(const arena_t *a, const ss_key_t *key, const ss_owner_t *owner,
                                const char *buf, apr_size_t len, apr_time_t deadline,
                                ss_save_mode_e mode, apr_uint32_t revision, apr_time_t now)
{
    shm_header_t *h = header(a);
    apr_uint32_t i, n, *head;
    shm_entry_t *e;
    apr_status_t rv;

    if (find(a, key, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    rv = check_mode(a, i, mode, revision, now);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (i != NIL && remove_entry(a, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.old_removed");
    n = blocks_for(len);
    if (make_room(a, n, now) != APR_SUCCESS || alloc_chain(a, n, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.allocated");
    e = entry(a, i);
    memcpy(e->key, key->bytes, ENTRY_KEY_BYTES);
    memcpy(e->owner, owner->bytes, SS_OWNER_BYTES);
    e->length = (apr_uint32_t)len;
    e->deadline = deadline;
    copy_in(a, i, buf, len);
    head = &buckets(a)[bucket_of(a, key->bytes)];
    if (!link_ok(a, *head)) {
        return SHM_BROKEN;
    }
    e->hash_next = *head;
    *head = i;
    FAULT("save.hash_linked");
    if (lru_push_head(a, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.lru_linked");
    h->entries++;
    h->stats.saves++;
    FAULT("save.done");
    return APR_SUCCESS;
}

static apr_status_t shm_save(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                             apr_time_t deadline, ss_save_mode_e mode, apr_size_t limit,
                             apr_pool_t *p)
{
    shm_store_t *s = store->impl;
    ss_owner_t owner;
    char *buf;
    apr_size_t len;
    apr_status_t rv;

    memset(&owner, 0, sizeof(owner));
    rv = *rec->user ? ss_owner_hash(rec->user, &owner) : APR_SUCCESS;
    if (rv == APR_SUCCESS) {
        rv = ss_record_encode(rec, key, store->form, p, &buf, &len);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (len > limit || len > s->a.max_record) {
        rv = lock(s);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        header(&s->a)->stats.refused_oversize++; /* the caller logs it, rate-limited */
        unlock(s);
        return APR_ENOSPC;
    }
    rv = begin_update(s);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = save_locked(&s->a, key, &owner, buf, len, deadline, mode, rec->revision, rec->accessed);
    if (rv == SHM_BROKEN) {
        /* The sessions are lost, this one need not be: save it anew. */
        recover_broken(&s->a);
        rv =
            save_locked(&s->a, key, &owner, buf, len, deadline, mode, rec->revision, rec->accessed);
        rv = rv == SHM_BROKEN ? APR_EGENERAL : rv;
    }
    end_update(s);
    return rv;
}

static apr_status_t shm_remove(ss_store_t *store, const ss_key_t *key)
{
    shm_store_t *s = store->impl;
    apr_uint32_t i;
    apr_status_t rv = begin_update(s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (find(&s->a, key, &i) != APR_SUCCESS ||
        (i != NIL && remove_entry(&s->a, i) != APR_SUCCESS)) {
        recover_broken(&s->a);
    } else if (i != NIL) {
        header(&s->a)->stats.removes++;
    }
    end_update(s);
    return APR_SUCCESS;
}

static apr_status_t shm_stats(ss_store_t *store, ss_store_stats_t *stats)
{
    shm_store_t *s = store->impl;
    shm_header_t *h = header(&s->a);
    apr_status_t rv = lock(s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    *stats = h->stats;
    stats->entries = h->entries;
    stats->rebuilds = h->rebuilds;
    stats->capacity_bytes = (apr_uint64_t)s->a.nblocks * SS_SHM_BLOCK_SIZE;
    stats->used_bytes = (apr_uint64_t)(s->a.nblocks - h->free_count) * SS_SHM_BLOCK_SIZE;
    unlock(s);
    return APR_SUCCESS;
}

static const char *shm_describe(ss_store_t *store, apr_pool_t *p)
{
    shm_store_t *s = store->impl;

    return apr_psprintf(p, "shm (%" APR_SIZE_T_FMT " bytes, sessions up to %u bytes)", s->a.size,
                        s->a.max_record);
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

/* ---- the per-owner index and administration ---------------------------- */

static apr_status_t shm_index_add(ss_store_t *store, const ss_owner_t *owner, const ss_key_t *key,
                                  apr_time_t until, apr_time_t now)
{
    /* The owner goes into the entry with the record itself (shm_save), under
     * the same lock: nothing to do before. */
    (void)store;
    (void)owner;
    (void)key;
    (void)until;
    (void)now;
    return APR_SUCCESS;
}

/* Remove every live entry of owner but except; a walk of the LRU list. */
static apr_status_t revoke_locked(const arena_t *a, const ss_owner_t *owner, const ss_key_t *except,
                                  apr_size_t *count)
{
    shm_header_t *h = header(a);
    apr_uint32_t i, prev, steps = 0;

    for (i = h->lru_tail; i != NIL; i = prev) {
        shm_entry_t *e;

        if (!in_range(a, i) || ++steps > a->nblocks) {
            return SHM_BROKEN;
        }
        e = entry(a, i);
        prev = e->lru_prev;
        if (memcmp(e->owner, owner->bytes, SS_OWNER_BYTES) ||
            (except && !memcmp(e->key, except->bytes, ENTRY_KEY_BYTES))) {
            continue;
        }
        if (remove_entry(a, i) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
        FAULT("revoke.removed");
        h->stats.removes++;
        ++*count;
    }
    return APR_SUCCESS;
}

static apr_status_t shm_revoke_owner(ss_store_t *store, const ss_owner_t *owner,
                                     const ss_key_t *except, apr_time_t now, apr_size_t *count)
{
    shm_store_t *s = store->impl;
    apr_size_t n = 0;
    apr_status_t rv = begin_update(s);

    (void)now;
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (revoke_locked(&s->a, owner, except, &n) != APR_SUCCESS) {
        /* Emptied: the owner's sessions are gone with the rest. */
        recover_broken(&s->a);
    }
    end_update(s);
    if (count) {
        *count = n;
    }
    return APR_SUCCESS;
}

/* Copy the live entries (of owner, when given) out, most recent first. */
static apr_status_t scan_locked(const arena_t *a, const ss_owner_t *owner, apr_size_t limit,
                                apr_time_t now, apr_array_header_t *out)
{
    apr_uint32_t i, steps = 0;

    for (i = header(a)->lru_head; i != NIL && (!limit || (apr_size_t)out->nelts < limit);
         i = entry(a, i)->lru_next) {
        const shm_entry_t *e;
        ss_store_entry_t *x;
        ss_record_head_t head;

        if (!in_range(a, i) || ++steps > a->nblocks || !entry_ok(a, i)) {
            return SHM_BROKEN;
        }
        e = entry(a, i);
        if (is_dead(e, now) || (owner && memcmp(e->owner, owner->bytes, SS_OWNER_BYTES))) {
            continue;
        }
        x = apr_array_push(out);
        memset(x, 0, sizeof(*x));
        /* The rest of the key stays 0: enough to name it (its tag) and to
         * remove it, which compare these bytes only. */
        memcpy(x->key.bytes, e->key, ENTRY_KEY_BYTES);
        x->size = e->length;
        x->expires = e->deadline;
        /* The clear header lies in the first block (FIRST_DATA >= its length). */
        x->readable = ss_record_peek((const unsigned char *)block(a, i) + sizeof(shm_entry_t),
                                     e->length, &head) == APR_SUCCESS;
        x->created = x->readable ? head.created : 0;
        x->accessed = x->readable ? head.accessed : 0;
    }
    return APR_SUCCESS;
}

static apr_status_t shm_scan(ss_store_t *store, const ss_owner_t *owner, apr_size_t limit,
                             ss_store_entry_fn fn, void *baton, apr_time_t now, apr_pool_t *p)
{
    shm_store_t *s = store->impl;
    apr_array_header_t *found = apr_array_make(p, 64, sizeof(ss_store_entry_t));
    apr_status_t rv = lock(s);
    int i;

    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = scan_locked(&s->a, owner, limit, now, found);
    unlock(s);
    if (rv != APR_SUCCESS) {
        /* A damaged link: the next update finds and rebuilds it. */
        return APR_EGENERAL;
    }
    /* The callback runs outside the lock. */
    for (i = 0; i < found->nelts; i++) {
        if (fn(baton, &APR_ARRAY_IDX(found, i, ss_store_entry_t))) {
            break;
        }
    }
    return APR_SUCCESS;
}

static apr_status_t shm_purge_expired(ss_store_t *store, apr_time_t now, apr_size_t *count)
{
    shm_store_t *s = store->impl;
    apr_uint32_t before;
    apr_status_t rv = begin_update(s);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    before = header(&s->a)->entries;
    if (sweep(&s->a, now) != APR_SUCCESS) {
        recover_broken(&s->a);
    }
    if (count) {
        *count = before >= header(&s->a)->entries ? before - header(&s->a)->entries : 0;
    }
    end_update(s);
    return APR_SUCCESS;
}

static const ss_store_ops_t shm_ops = {"shm",          "all httpd processes on this host",
                                       shm_load,       shm_save,
                                       shm_remove,     shm_stats,
                                       shm_describe,   shm_ping,
                                       shm_child_init, shm_close,
                                       shm_index_add,  shm_revoke_owner,
                                       shm_scan,       shm_purge_expired};

apr_status_t ss_shm_open(ss_store_t **store, void *base, apr_global_mutex_t *mutex, apr_pool_t *p)
{
    const shm_header_t *h = base;
    shm_store_t *s;

    /* The geometry is taken from the size once, here, and checked. */
    if (h->magic != SHM_MAGIC || h->layout != SHM_LAYOUT ||
        !ss_shm_is_formatted(base, (apr_size_t)h->size, h->max_record)) {
        return APR_EINVAL;
    }
    s = apr_pcalloc(p, sizeof(*s));
    arena_init(&s->a, base, (apr_size_t)h->size, h->max_record);
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
    (*store)->form = SS_RECORD_FORM_SEALED;
    return APR_SUCCESS;
}
