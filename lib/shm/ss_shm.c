/* ss_shm.c - the shared-memory backend.
 *
 * Arena layout, every part at an offset from the base:
 *
 *   shm_header_t | stripes (shm_stripe_t x nstripes) | bucket heads (u32 x nbuckets)
 *   | blocks (SS_SHM_BLOCK_SIZE x nblocks)
 *
 * The arena is cut into stripes, each a small store of its own: its own
 * process-shared robust mutex, a fixed share of the buckets (bucket b
 * belongs to stripe b mod nstripes) and of the blocks (a contiguous run),
 * its own free list, LRU list, update mark and counters. A key's bucket
 * names its stripe, and an operation takes that stripe's lock only, so
 * processes working on different sessions do not wait for each other, and a
 * process preempted while it holds a lock stalls only the sessions of one
 * stripe. Eviction is least recently used within the stripe.
 *
 * A record is a chain of blocks of its stripe. Every block starts with the
 * index of the next one; the first block of a chain holds the rest of
 * shm_entry_t too (key, owner, deadline, hash-chain and LRU links), then the
 * record's first bytes. Free blocks form a singly linked list, and the
 * blocks a stripe never used yet (from its `fresh` mark to its end) are free
 * without being on it: formatting writes no block, so a large arena is
 * ready at once and its pages are touched as it fills. Equal blocks
 * mean no fragmentation and no compaction: a record of n bytes needs
 * blocks_for(n) blocks, always available once enough others are freed.
 *
 * A writer can die at any instruction while it holds a stripe's lock (a
 * crash elsewhere in the child, the OOM killer, kill -9). The mutex is
 * robust: the next locker gets EOWNERDEAD and makes it consistent. Whether
 * the stripe is consistent is another matter, so every update is bracketed
 * by a mark in the stripe, set before its first write and cleared after its
 * last. Whoever takes the lock and finds the mark walks the stripe
 * (walk_stripe) and, if it is damaged, formats it empty again: that
 * stripe's sessions are lost, the others and the server go on.
 *
 * Nothing read from the arena is trusted: every index and length is checked
 * before it is followed (a link must stay within its stripe), chain walks
 * have a step limit, and a failed check (SHM_BROKEN) leads to the same
 * rebuild of the stripe, never to a wild read or an endless loop. The
 * geometry (stripe, bucket and block counts, offsets) is computed from the
 * size and the record limit into each process's own memory (arena_t); the
 * header's copy is only compared. */
#include <errno.h>
#include <pthread.h>
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

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "ss_log.h"
#include "ss_shm.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define SHM_MAGIC 0x53534d34u /* "SSM4" */
/* Bump whenever shm_header_t, shm_stripe_t, shm_entry_t or an invariant of
 * the arena changes: an arena kept across a restart by another layout is not
 * reused. 4: record v2 (revisions); 5: stripes with their own locks inside
 * the arena, 104-byte blocks, 16-byte keys in the entries; 6: the owner's
 * hash in the entries (the per-owner index), 112-byte blocks. */
#define SHM_LAYOUT 6u
#define SHM_BUILDER "mod_sessstore " PACKAGE_VERSION
#define NIL 0xffffffffu
#define SWEEP_INTERVAL apr_time_from_sec(1)
/* Internal: the arena failed a check. Never returned to the caller. */
#define SHM_BROKEN (APR_OS_START_USERERR + 0x5353)
/* Stripes: a power of two, at most this many, each of at least
 * STRIPE_MIN_BYTES of blocks and four times the largest record. */
#define MAX_STRIPES 512u
#define STRIPE_MIN_BYTES (64 * 1024)

#ifdef SS_FAULT_POINTS
void (*ss_shm_fault_hook)(const char *step);
apr_uint32_t ss_shm_fault_max_stripes;

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
    apr_uint32_t max_record;
    apr_uint64_t size;
    apr_uint64_t blocks_offset;
    apr_uint32_t nstripes;
    apr_uint32_t nbuckets;
    apr_uint32_t nblocks;
    apr_uint32_t stripe_blocks;
} shm_header_t;

/* One stripe's lock and state; every field but the mutex is read and written
 * only under the mutex. */
typedef struct {
    pthread_mutex_t mutex; /* process-shared, robust */
    apr_uint32_t updating; /* pid of the process amid an update, 0 when none */
    apr_uint32_t rebuilds; /* times the stripe was found damaged and emptied */
    apr_uint32_t free_head;
    apr_uint32_t free_count;
    apr_uint32_t lru_head; /* most recently used */
    apr_uint32_t lru_tail; /* next to evict */
    apr_uint32_t entries;
    apr_uint32_t fresh;    /* blocks from here to the stripe's end were never used: free */
    apr_time_t next_sweep; /* no full scan for dead records before this */
    ss_store_stats_t stats;
} shm_stripe_t;

#define ENTRY_KEY_BYTES 16

/* Stripes on cache lines of their own. */
#define STRIPE_STRIDE ((sizeof(shm_stripe_t) + 63) & ~(apr_size_t)63)

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
    /* The first ENTRY_KEY_BYTES of the key (SHA-256 of the ID): 128 bits,
     * which no two of a store's keys share by chance, nor can anyone make
     * them share without a second preimage of SHA-256. */
    unsigned char key[ENTRY_KEY_BYTES];
    /* ss_owner_t of the record's owner, all zero when anonymous: the
     * per-owner index is a walk of the entries comparing this (revoke). */
    unsigned char owner[SS_OWNER_BYTES];
} shm_entry_t;

#define FIRST_DATA (SS_SHM_BLOCK_SIZE - sizeof(shm_entry_t))
/* The clear header of every record version lies in the first block: it is
 * read there, in place (peek_head). Fails to compile otherwise. */
typedef char FIRST_DATA_HOLDS_HEADER
    [FIRST_DATA >= SS_RECORD_V1_HEADER_LEN && FIRST_DATA >= SS_RECORD_HEADER_LEN ? 1 : -1];
#define NEXT_DATA (SS_SHM_BLOCK_SIZE - sizeof(apr_uint32_t))

/* An arena as this process sees it: the base and the geometry computed from
 * the size and record limit, never read back from the shared header. */
typedef struct {
    char *base;
    apr_size_t size;
    apr_size_t buckets_offset;
    apr_size_t blocks_offset;
    apr_uint32_t nstripes;
    apr_uint32_t nbuckets;
    apr_uint32_t nblocks;
    apr_uint32_t stripe_blocks;
    apr_uint32_t max_record;
} arena_t;

/* One stripe of an arena: its state and the blocks [first, end) it owns. */
typedef struct {
    const arena_t *a;
    shm_stripe_t *st;
    apr_uint32_t index;
    apr_uint32_t first;
    apr_uint32_t end;
} zone_t;

typedef struct {
    arena_t a;
} shm_store_t;

static apr_size_t align64(apr_size_t n)
{
    return (n + 63) & ~(apr_size_t)63;
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

static shm_stripe_t *stripe_state(const arena_t *a, apr_uint32_t s)
{
    return (shm_stripe_t *)(a->base + align64(sizeof(shm_header_t)) +
                            (apr_size_t)s * STRIPE_STRIDE);
}

static apr_uint32_t *buckets(const arena_t *a)
{
    return (apr_uint32_t *)(a->base + a->buckets_offset);
}

static char *block(const arena_t *a, apr_uint32_t i)
{
    return a->base + a->blocks_offset + (apr_size_t)i * SS_SHM_BLOCK_SIZE;
}

static shm_entry_t *entry(const zone_t *z, apr_uint32_t i)
{
    return (shm_entry_t *)block(z->a, i);
}

static apr_uint32_t next_of(const zone_t *z, apr_uint32_t i)
{
    return *(apr_uint32_t *)block(z->a, i);
}

static void set_next(const zone_t *z, apr_uint32_t i, apr_uint32_t next)
{
    *(apr_uint32_t *)block(z->a, i) = next;
}

static apr_uint32_t bucket_of(const arena_t *a, const unsigned char *key)
{
    /* Keys are SHA-256 output: any 4 bytes are already uniform. */
    apr_uint32_t h;

    memcpy(&h, key, sizeof(h));
    return h & (a->nbuckets - 1);
}

static void zone_init(zone_t *z, const arena_t *a, apr_uint32_t s)
{
    z->a = a;
    z->st = stripe_state(a, s);
    z->index = s;
    z->first = s * a->stripe_blocks;
    z->end = z->first + a->stripe_blocks;
}

/* The stripe that holds key. */
static void zone_of(zone_t *z, const arena_t *a, const unsigned char *key)
{
    zone_init(z, a, bucket_of(a, key) & (a->nstripes - 1));
}

/* A block index read from the arena may be followed only if this holds: a
 * stripe's links never leave its own blocks. */
static int in_range(const zone_t *z, apr_uint32_t i)
{
    return i >= z->first && i < z->end;
}

/* A link: a block index or NIL. */
static int link_ok(const zone_t *z, apr_uint32_t i)
{
    return i == NIL || in_range(z, i);
}

/* The arena's geometry for size bytes and records up to max_record, with
 * nstripes stripes; 0 if they do not fit. */
static int layout_with(arena_t *a, apr_size_t size, apr_size_t max_record, apr_uint32_t nstripes)
{
    apr_size_t fixed = align64(sizeof(shm_header_t)) + (apr_size_t)nstripes * STRIPE_STRIDE;
    apr_uint32_t nbuckets = 16;
    apr_size_t offset, stripe_blocks;

    if (size <= fixed) {
        return 0;
    }
    /* About one bucket per two blocks: sessions span two blocks or more, so
     * chains stay shorter than one entry on average. */
    while ((apr_size_t)nbuckets * 2 * 2 * SS_SHM_BLOCK_SIZE <= size - fixed &&
           nbuckets < 0x40000000u) {
        nbuckets *= 2;
    }
    if (nbuckets < nstripes) {
        return 0;
    }
    offset = align64(fixed + (apr_size_t)nbuckets * sizeof(apr_uint32_t));
    if (size <= offset) {
        return 0;
    }
    stripe_blocks = (size - offset) / SS_SHM_BLOCK_SIZE / nstripes;
    if (stripe_blocks * nstripes >= NIL) {
        stripe_blocks = (NIL - 1) / nstripes;
    }
    if (blocks_for(max_record) > stripe_blocks / 4) {
        return 0;
    }
    a->size = size;
    a->max_record = (apr_uint32_t)max_record;
    a->nstripes = nstripes;
    a->nbuckets = nbuckets;
    a->buckets_offset = fixed;
    a->blocks_offset = offset;
    a->stripe_blocks = (apr_uint32_t)stripe_blocks;
    a->nblocks = (apr_uint32_t)(stripe_blocks * nstripes);
    return 1;
}

/* The most stripes that fit (at least STRIPE_MIN_BYTES each), down to one;
 * 0 if not even one does. */
static int layout(arena_t *a, apr_size_t size, apr_size_t max_record)
{
    apr_uint32_t n = MAX_STRIPES;

    if (size < SS_SHM_MIN_SIZE || max_record < SS_RECORD_MIN_LEN || max_record > 0xffffffffUL) {
        return 0;
    }
#ifdef SS_FAULT_POINTS
    while (ss_shm_fault_max_stripes && n > ss_shm_fault_max_stripes) {
        n /= 2;
    }
#endif
    for (; n > 1; n /= 2) {
        if (size / n >= STRIPE_MIN_BYTES && layout_with(a, size, max_record, n)) {
            return 1;
        }
    }
    return layout_with(a, size, max_record, 1);
}

int ss_shm_fits(apr_size_t size, apr_size_t max_record)
{
    arena_t a;

    return layout(&a, size, max_record);
}

/* Empty the stripe: every block free as never used, nothing indexed (its
 * buckets emptied unless buckets_too is 0: the caller has emptied every
 * bucket). No block is written. Its mutex is left alone (it may be held: by
 * the caller of a rebuild). */
static void format_stripe(const zone_t *z, int buckets_too)
{
    shm_stripe_t *st = z->st;
    apr_uint32_t i;

    st->free_head = NIL;
    st->fresh = z->first;
    st->free_count = z->end - z->first;
    st->lru_head = st->lru_tail = NIL;
    st->entries = 0;
    st->next_sweep = 0;
    for (i = z->index; buckets_too && i < z->a->nbuckets; i += z->a->nstripes) {
        buckets(z->a)[i] = NIL;
    }
}

static apr_status_t init_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);

    if (rc == 0) {
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (rc == 0) {
            rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        }
        if (rc == 0) {
            rc = pthread_mutex_init(m, &attr);
        }
        pthread_mutexattr_destroy(&attr);
    }
    return rc ? APR_FROM_OS_ERROR(rc) : APR_SUCCESS;
}

apr_status_t ss_shm_format(void *base, apr_size_t size, apr_size_t max_record)
{
    shm_header_t *h = base;
    arena_t a;
    zone_t z;
    apr_uint32_t s;
    apr_status_t rv;

    if (!layout(&a, size, max_record)) {
        return APR_EINVAL;
    }
    a.base = base;
    memset(h, 0, sizeof(*h));
    /* Every bucket NIL in one pass (format_stripe's loop for each stripe
     * would cross the whole index a thousand times). */
    memset(buckets(&a), 0xff, (apr_size_t)a.nbuckets * sizeof(apr_uint32_t));
    for (s = 0; s < a.nstripes; s++) {
        zone_init(&z, &a, s);
        memset(z.st, 0, sizeof(*z.st));
        rv = init_mutex(&z.st->mutex);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        format_stripe(&z, 0);
    }
    h->layout = SHM_LAYOUT;
    apr_cpystrn(h->builder, SHM_BUILDER, sizeof(h->builder));
    h->block_size = SS_SHM_BLOCK_SIZE;
    h->size = a.size;
    h->blocks_offset = a.blocks_offset;
    h->max_record = a.max_record;
    h->nstripes = a.nstripes;
    h->nbuckets = a.nbuckets;
    h->nblocks = a.nblocks;
    h->stripe_blocks = a.stripe_blocks;
    h->magic = SHM_MAGIC;
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
    if (h->size != a->size || h->max_record != a->max_record || h->nstripes != a->nstripes ||
        h->nbuckets != a->nbuckets || h->nblocks != a->nblocks ||
        h->stripe_blocks != a->stripe_blocks || h->blocks_offset != a->blocks_offset) {
        return "another size, record limit or geometry";
    }
    return NULL;
}

/* The arena at base if it is one of this size and record limit, laid out by
 * this library: 0 and *why otherwise. */
static int arena_open(arena_t *a, const void *base, apr_size_t size, apr_size_t max_record,
                      const char **why)
{
    if (!layout(a, size, max_record)) {
        *why = "a size and record limit that do not fit";
        return 0;
    }
    a->base = (char *)base;
    *why = check_header(a);
    return *why == NULL;
}

/* What the walk of a stripe has found each of its blocks to be. */
enum { SEEN_NONE, SEEN_FREE, SEEN_DATA, SEEN_ENTRY, SEEN_LISTED };

static const char *walk_free(const zone_t *z, unsigned char *seen)
{
    apr_uint32_t i, n = 0;

    /* The blocks never used yet, from fresh to the end, are free. */
    if (z->st->fresh < z->first || z->st->fresh > z->end) {
        return "the first unused block is outside the stripe";
    }
    for (i = z->st->fresh; i < z->end; i++) {
        seen[i - z->first] = SEEN_FREE;
        n++;
    }
    /* Marking each block bounds the walk: a loop meets a marked block. */
    for (i = z->st->free_head; i != NIL; i = next_of(z, i)) {
        if (!in_range(z, i) || seen[i - z->first] != SEEN_NONE) {
            return "the free list leaves the stripe, loops or reaches the unused blocks";
        }
        seen[i - z->first] = SEEN_FREE;
        n++;
    }
    return n == z->st->free_count ? NULL : "the free count disagrees with the free list";
}

/* An entry's record: a length within bounds, exactly the blocks it needs. */
static const char *walk_chain(const zone_t *z, apr_uint32_t i, unsigned char *seen)
{
    const shm_entry_t *e = entry(z, i);
    apr_uint32_t n, k;

    if (e->length < SS_RECORD_MIN_LEN || e->length > z->a->max_record) {
        return "a record length out of bounds";
    }
    n = blocks_for(e->length);
    for (k = 1; k < n; k++) {
        i = next_of(z, i);
        if (!in_range(z, i) || seen[i - z->first] != SEEN_NONE) {
            return "a record's blocks leave the stripe or belong to something else";
        }
        seen[i - z->first] = SEEN_DATA;
    }
    return next_of(z, i) == NIL ? NULL : "a record's chain is longer than its length";
}

static const char *walk_index(const zone_t *z, unsigned char *seen)
{
    const arena_t *a = z->a;
    apr_uint32_t b, i, n = 0;
    const char *why;

    for (b = z->index; b < a->nbuckets; b += a->nstripes) {
        for (i = buckets(a)[b]; i != NIL; i = entry(z, i)->hash_next) {
            if (!in_range(z, i) || seen[i - z->first] != SEEN_NONE) {
                return "a hash chain leaves the stripe, loops or meets another's block";
            }
            if (bucket_of(a, entry(z, i)->key) != b) {
                return "an entry in the wrong hash chain";
            }
            seen[i - z->first] = SEEN_ENTRY;
            if ((why = walk_chain(z, i, seen)) != NULL) {
                return why;
            }
            n++;
        }
    }
    return n == z->st->entries ? NULL : "the entry count disagrees with the index";
}

/* Forward from the head, each prev link checked against the step before and
 * the tail against the last: the list is then right both ways. */
static const char *walk_lru(const zone_t *z, unsigned char *seen)
{
    const shm_stripe_t *st = z->st;
    apr_uint32_t i, prev = NIL, n = 0;

    for (i = st->lru_head; i != NIL; i = entry(z, i)->lru_next) {
        if (!in_range(z, i) || seen[i - z->first] != SEEN_ENTRY) {
            return "the LRU list leaves the index or loops";
        }
        if (entry(z, i)->lru_prev != prev) {
            return "the LRU list's back links disagree with its forward links";
        }
        seen[i - z->first] = SEEN_LISTED;
        prev = i;
        n++;
    }
    if (prev != st->lru_tail || n != st->entries) {
        return "the LRU list misses entries or ends elsewhere than its tail";
    }
    return NULL;
}

/* Why the stripe is inconsistent, or NULL: every block of it is on its free
 * list or in exactly one of its records, every entry is indexed once and
 * listed once. Call it under the stripe's lock. */
static const char *walk_stripe(const zone_t *z)
{
    apr_uint32_t n = z->end - z->first, i;
    unsigned char *seen = calloc(n, 1);
    const char *why;

    if (!seen) {
        return "no memory to check it";
    }
    why = walk_free(z, seen);
    if (!why) {
        why = walk_index(z, seen);
    }
    if (!why) {
        why = walk_lru(z, seen);
    }
    for (i = 0; !why && i < n; i++) {
        if (seen[i] == SEEN_NONE) {
            why = "a block is neither free nor in a record";
        }
    }
    free(seen);
    return why;
}

int ss_shm_is_formatted(const void *base, apr_size_t size, apr_size_t max_record)
{
    const char *why;
    arena_t a;

    return arena_open(&a, base, size, max_record, &why);
}

/* Empty a damaged stripe; its counters carry on. */
static void rebuild(const zone_t *z, const char *why, apr_uint32_t dead_pid)
{
    shm_stripe_t *st = z->st;
    apr_uint32_t lost = st->entries;

    format_stripe(z, 1);
    st->rebuilds++;
    st->stats.rebuilds++;
    if (dead_pid) {
        ss_log(SS_LOG_ERR, 0,
               "shm store: process %u died while updating the session arena and left stripe "
               "%u of %u damaged (%s): emptied it, its %u stored sessions are lost (rebuild %u "
               "of this stripe)",
               dead_pid, z->index, z->a->nstripes, why, lost, st->rebuilds);
    } else {
        ss_log(SS_LOG_ERR, 0,
               "shm store: stripe %u of %u of the session arena is damaged (%s): emptied it, "
               "its %u stored sessions are lost (rebuild %u of this stripe)",
               z->index, z->a->nstripes, why, lost, st->rebuilds);
    }
}

/* ---- locking and the update mark ---------------------------------------- */

/* The last holder of the lock died amid an update: keep the stripe if the
 * walk finds it whole (the update had not begun, or had ended), else empty
 * it. Runs under the lock, so once per dead writer. */
static void recover(const zone_t *z)
{
    apr_uint32_t pid = apr_atomic_read32(&z->st->updating);
    const char *why = walk_stripe(z);

    if (why) {
        rebuild(z, why, pid);
    } else {
        ss_log(SS_LOG_WARNING, 0,
               "shm store: process %u died while updating stripe %u of the session arena; the "
               "stripe is consistent and kept",
               pid, z->index);
    }
    apr_atomic_set32(&z->st->updating, 0);
}

/* A check failed halfway through an operation of ours. */
static void recover_broken(const zone_t *z)
{
    const char *why = walk_stripe(z);

    rebuild(z, why ? why : "a link or length out of bounds", 0);
    /* Still inside an update (a save retries on the emptied stripe). */
}

/* Take the stripe's mutex; a holder that died with it makes it ours with
 * EOWNERDEAD, and the stripe's state is then judged by the mark (below). */
static apr_status_t take(const zone_t *z)
{
    int rc = pthread_mutex_lock(&z->st->mutex);

    if (rc == EOWNERDEAD) {
        rc = pthread_mutex_consistent(&z->st->mutex);
    }
    if (rc != 0) {
        ss_log(SS_LOG_ERR, APR_FROM_OS_ERROR(rc),
               "shm store: cannot take the lock of stripe %u of the session arena", z->index);
        return APR_FROM_OS_ERROR(rc);
    }
    return APR_SUCCESS;
}

static void unlock(const zone_t *z)
{
    pthread_mutex_unlock(&z->st->mutex);
}

/* Take the lock, then repair what a holder that died amid an update left. */
static apr_status_t lock(const zone_t *z)
{
    apr_status_t rv = take(z);

    if (rv == APR_SUCCESS && apr_atomic_read32(&z->st->updating) != 0) {
        recover(z);
    }
    return rv;
}

/* lock() and set the mark before the first write. The atomic store is also
 * a compiler barrier: no write of the update is moved before it. */
static apr_status_t begin_update(const zone_t *z)
{
    apr_status_t rv = lock(z);

    if (rv == APR_SUCCESS) {
        apr_atomic_set32(&z->st->updating, (apr_uint32_t)getpid());
        FAULT("update.begun");
    }
    return rv;
}

/* Clear the mark after the last write, and unlock. */
static void end_update(const zone_t *z)
{
    apr_atomic_set32(&z->st->updating, 0);
    unlock(z);
}

/* Each stripe in turn, under its lock: walk it, and if repair is set, empty
 * it when it is damaged. The first damage found goes to *why. */
static apr_status_t check_stripes(const arena_t *a, int repair, const char **why)
{
    apr_status_t rv = APR_SUCCESS;
    apr_uint32_t s;
    zone_t z;

    for (s = 0; s < a->nstripes; s++) {
        const char *w;

        zone_init(&z, a, s);
        if (take(&z) != APR_SUCCESS) {
            if (rv == APR_SUCCESS) {
                *why = "a stripe's lock cannot be taken";
            }
            rv = APR_EGENERAL;
            continue;
        }
        w = walk_stripe(&z);
        if (w && rv == APR_SUCCESS) {
            *why = w;
            rv = APR_EGENERAL;
        }
        if (w && repair) {
            rebuild(&z, w, apr_atomic_read32(&z.st->updating));
        }
        if (!w || repair) {
            /* Whole, or emptied: no repair left to the next holder. */
            apr_atomic_set32(&z.st->updating, 0);
        }
        unlock(&z);
    }
    return rv;
}

apr_status_t ss_shm_check(const void *base, apr_size_t size, apr_size_t max_record,
                          const char **why)
{
    const char *dummy = NULL;
    arena_t a;

    why = why ? why : &dummy;
    if (!arena_open(&a, base, size, max_record, why)) {
        return APR_EINVAL;
    }
    *why = NULL;
    return check_stripes(&a, 0, why);
}

apr_status_t ss_shm_repair(void *base, apr_size_t size, apr_size_t max_record, const char **why)
{
    const char *dummy = NULL;
    arena_t a;

    why = why ? why : &dummy;
    if (!arena_open(&a, base, size, max_record, why)) {
        return APR_EINVAL;
    }
    *why = NULL;
    return check_stripes(&a, 1, why);
}

apr_uint32_t ss_shm_rebuilds(const void *base)
{
    const shm_header_t *h = base;
    const char *why;
    apr_uint32_t s, n = 0;
    arena_t a;

    if (!arena_open(&a, base, (apr_size_t)h->size, h->max_record, &why)) {
        return 0;
    }
    for (s = 0; s < a.nstripes; s++) {
        n += apr_atomic_read32(&stripe_state(&a, s)->rebuilds);
    }
    return n;
}

apr_uint32_t ss_shm_stripes(const void *base)
{
    const shm_header_t *h = base;
    const char *why;
    arena_t a;

    return arena_open(&a, base, (apr_size_t)h->size, h->max_record, &why) ? a.nstripes : 0;
}

/* ---- the index, the LRU list and the chains ----------------------------- */

/* A found entry must be safe to read whole: its length within bounds and
 * its chain exactly as long as the length says, inside the stripe. */
static int entry_ok(const zone_t *z, apr_uint32_t i)
{
    apr_uint32_t len = entry(z, i)->length, n, k;

    if (len < SS_RECORD_MIN_LEN || len > z->a->max_record) {
        return 0;
    }
    n = blocks_for(len);
    for (k = 1; k < n; k++) {
        i = next_of(z, i);
        if (!in_range(z, i)) {
            return 0;
        }
    }
    return next_of(z, i) == NIL;
}

/* *found: the entry holding key, NIL if none. A chain never holds more
 * entries than there are blocks: longer, it loops. */
static apr_status_t find(const zone_t *z, const ss_key_t *key, apr_uint32_t *found)
{
    apr_uint32_t i = buckets(z->a)[bucket_of(z->a, key->bytes)], steps = 0;

    while (i != NIL) {
        if (!in_range(z, i) || ++steps > z->a->stripe_blocks) {
            return SHM_BROKEN;
        }
        if (memcmp(entry(z, i)->key, key->bytes, ENTRY_KEY_BYTES) == 0) {
            if (!entry_ok(z, i)) {
                return SHM_BROKEN;
            }
            break;
        }
        i = entry(z, i)->hash_next;
    }
    *found = i;
    return APR_SUCCESS;
}

/* Both neighbours must point back at i before i is taken out. */
static apr_status_t lru_unlink(const zone_t *z, apr_uint32_t i)
{
    shm_stripe_t *h = z->st;
    shm_entry_t *e = entry(z, i);
    apr_uint32_t prev = e->lru_prev, next = e->lru_next;

    if (!link_ok(z, prev) || !link_ok(z, next) ||
        (prev == NIL ? h->lru_head : entry(z, prev)->lru_next) != i ||
        (next == NIL ? h->lru_tail : entry(z, next)->lru_prev) != i) {
        return SHM_BROKEN;
    }
    if (prev != NIL) {
        entry(z, prev)->lru_next = next;
    } else {
        h->lru_head = next;
    }
    if (next != NIL) {
        entry(z, next)->lru_prev = prev;
    } else {
        h->lru_tail = prev;
    }
    return APR_SUCCESS;
}

static apr_status_t lru_push_head(const zone_t *z, apr_uint32_t i)
{
    shm_stripe_t *h = z->st;
    shm_entry_t *e = entry(z, i);
    apr_uint32_t head = h->lru_head;

    /* An empty list has no tail; a head has no predecessor. */
    if (head == NIL ? h->lru_tail != NIL
                    : (!in_range(z, head) || entry(z, head)->lru_prev != NIL)) {
        return SHM_BROKEN;
    }
    e->lru_prev = NIL;
    e->lru_next = head;
    if (head != NIL) {
        entry(z, head)->lru_prev = i;
        FAULT("lru.push_half");
    } else {
        h->lru_tail = i;
    }
    h->lru_head = i;
    return APR_SUCCESS;
}

/* The walk stops at the end of the chain: i not in it is damage. */
static apr_status_t hash_unlink(const zone_t *z, apr_uint32_t i)
{
    apr_uint32_t b = bucket_of(z->a, entry(z, i)->key), *link = &buckets(z->a)[b];
    apr_uint32_t steps = 0;

    if ((b & (z->a->nstripes - 1)) != z->index) {
        return SHM_BROKEN; /* another stripe's bucket: not ours to touch */
    }
    while (*link != i) {
        if (!in_range(z, *link) || ++steps > z->a->stripe_blocks) {
            return SHM_BROKEN;
        }
        link = &entry(z, *link)->hash_next;
    }
    if (!link_ok(z, entry(z, i)->hash_next)) {
        return SHM_BROKEN;
    }
    *link = entry(z, i)->hash_next;
    return APR_SUCCESS;
}

/* i has passed entry_ok (found, or on the LRU list and checked here). */
static apr_status_t remove_entry(const zone_t *z, apr_uint32_t i)
{
    shm_stripe_t *h = z->st;
    apr_uint32_t b = i, next, n, k;

    if (!entry_ok(z, i)) {
        return SHM_BROKEN;
    }
    n = blocks_for(entry(z, i)->length);
    if (h->entries == 0 || h->free_count > z->end - z->first - n) {
        return SHM_BROKEN;
    }
    if (hash_unlink(z, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("remove.hash_unlinked");
    if (lru_unlink(z, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("remove.lru_unlinked");
    h->entries--;
    for (k = 0; k < n; k++) {
        next = next_of(z, b);
        set_next(z, b, h->free_head);
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
static apr_status_t sweep(const zone_t *z, apr_time_t now)
{
    shm_stripe_t *h = z->st;
    apr_uint32_t i, prev, steps = 0;

    for (i = h->lru_tail; i != NIL; i = prev) {
        if (!in_range(z, i) || ++steps > z->a->stripe_blocks) {
            return SHM_BROKEN;
        }
        prev = entry(z, i)->lru_prev;
        if (is_dead(entry(z, i), now)) {
            if (remove_entry(z, i) != APR_SUCCESS) {
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
static apr_status_t make_room(const zone_t *z, apr_uint32_t n, apr_time_t now)
{
    shm_stripe_t *h = z->st;
    apr_uint32_t i, steps = 0;

    if (h->free_count >= n) {
        return APR_SUCCESS;
    }
    if (now >= h->next_sweep) {
        h->next_sweep = now + SWEEP_INTERVAL;
        if (sweep(z, now) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
    }
    while (h->free_count < n) {
        i = h->lru_tail;
        if (!in_range(z, i) || ++steps > z->a->stripe_blocks) {
            return SHM_BROKEN;
        }
        if (is_dead(entry(z, i), now)) {
            h->stats.evicted_expired++;
        } else {
            h->stats.evicted_lru++;
        }
        if (remove_entry(z, i) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
        FAULT("evict.lru");
    }
    return APR_SUCCESS;
}

/* n blocks chained from *first: off the free list, then off the blocks never
 * used yet. */
static apr_status_t alloc_chain(const zone_t *z, apr_uint32_t n, apr_uint32_t *first)
{
    shm_stripe_t *h = z->st;
    apr_uint32_t prev = NIL, b, k;

    if (h->free_count < n || h->free_count > z->end - z->first || h->fresh < z->first ||
        h->fresh > z->end) {
        return SHM_BROKEN;
    }
    for (k = 0; k < n; k++) {
        if (h->free_head != NIL) {
            b = h->free_head;
            if (!in_range(z, b) || !link_ok(z, next_of(z, b))) {
                return SHM_BROKEN;
            }
            h->free_head = next_of(z, b);
        } else if (h->fresh < z->end) {
            b = h->fresh++;
        } else {
            return SHM_BROKEN; /* fewer free blocks than counted */
        }
        FAULT("alloc.head_moved");
        h->free_count--;
        if (prev == NIL) {
            *first = b;
        } else {
            set_next(z, prev, b);
        }
        prev = b;
    }
    set_next(z, prev, NIL);
    return APR_SUCCESS;
}

/* The chain from i is known to hold len bytes (alloc_chain, entry_ok). */
static void copy_in(const zone_t *z, apr_uint32_t i, const char *src, apr_size_t len)
{
    apr_size_t chunk = len < FIRST_DATA ? len : FIRST_DATA;

    memcpy(block(z->a, i) + sizeof(shm_entry_t), src, chunk);
    src += chunk;
    len -= chunk;
    while (len) {
        FAULT("save.mid_copy");
        i = next_of(z, i);
        chunk = len < NEXT_DATA ? len : NEXT_DATA;
        memcpy(block(z->a, i) + sizeof(apr_uint32_t), src, chunk);
        src += chunk;
        len -= chunk;
    }
}

static void copy_out(const zone_t *z, apr_uint32_t i, char *dst, apr_size_t len)
{
    apr_size_t chunk = len < FIRST_DATA ? len : FIRST_DATA;

    memcpy(dst, block(z->a, i) + sizeof(shm_entry_t), chunk);
    dst += chunk;
    len -= chunk;
    while (len) {
        i = next_of(z, i);
        chunk = len < NEXT_DATA ? len : NEXT_DATA;
        memcpy(dst, block(z->a, i) + sizeof(apr_uint32_t), chunk);
        dst += chunk;
        len -= chunk;
    }
}

#ifdef SS_FAULT_POINTS
typedef struct {
    const char *name;
    apr_size_t offset;
} field_t;

static const field_t stripe_fields[] = {
    {"free_head", offsetof(shm_stripe_t, free_head)},
    {"free_count", offsetof(shm_stripe_t, free_count)},
    {"lru_head", offsetof(shm_stripe_t, lru_head)},
    {"lru_tail", offsetof(shm_stripe_t, lru_tail)},
    {"entries", offsetof(shm_stripe_t, entries)},
    {"fresh", offsetof(shm_stripe_t, fresh)},
};

static const field_t entry_fields[] = {
    {"next", offsetof(shm_entry_t, next)},         {"hash_next", offsetof(shm_entry_t, hash_next)},
    {"lru_prev", offsetof(shm_entry_t, lru_prev)}, {"lru_next", offsetof(shm_entry_t, lru_next)},
    {"length", offsetof(shm_entry_t, length)},
};

/* Test builds only: the address of a named field, for tests that damage the
 * arena by hand: the header's "layout", one of the state of key's stripe,
 * key's bucket head ("bucket"), or one of key's entry (NULL if key is not
 * found). */
apr_uint32_t *ss_shm_fault_field(void *base, const char *name, const ss_key_t *key)
{
    shm_header_t *h = base;
    const char *why;
    apr_uint32_t i;
    size_t k;
    arena_t a;
    zone_t z;

    if (!strcmp(name, "layout")) {
        return &h->layout;
    }
    if (!arena_open(&a, base, (apr_size_t)h->size, h->max_record, &why)) {
        return NULL;
    }
    zone_of(&z, &a, key->bytes);
    for (k = 0; k < sizeof(stripe_fields) / sizeof(stripe_fields[0]); k++) {
        if (!strcmp(name, stripe_fields[k].name)) {
            return (apr_uint32_t *)((char *)z.st + stripe_fields[k].offset);
        }
    }
    if (!strcmp(name, "bucket")) {
        return &buckets(&a)[bucket_of(&a, key->bytes)];
    }
    if (find(&z, key, &i) != APR_SUCCESS || i == NIL) {
        return NULL;
    }
    for (k = 0; k < sizeof(entry_fields) / sizeof(entry_fields[0]); k++) {
        if (!strcmp(name, entry_fields[k].name)) {
            return (apr_uint32_t *)(block(&a, i) + entry_fields[k].offset);
        }
    }
    return NULL;
}

/* Test builds only: the stripe that holds key. */
apr_uint32_t ss_shm_fault_stripe_of(const void *base, const ss_key_t *key)
{
    const shm_header_t *h = base;
    const char *why;
    arena_t a;

    if (!arena_open(&a, base, (apr_size_t)h->size, h->max_record, &why)) {
        return NIL;
    }
    return bucket_of(&a, key->bytes) & (a.nstripes - 1);
}
#endif

/* ---- operations --------------------------------------------------------- */

/* Find key, judge it by the timestamps of its header and touch it, and copy
 * its bytes out to *buf: decoding them is left to the caller, outside the
 * lock. A record whose header is not a record's, or one in clear where only
 * sealed ones are accepted (sealed_only), is removed (a miss, counted and
 * logged); one of a newer format is left for the nodes that read it. A
 * record dead for every location (keep) is removed; one dead only for this
 * location (judge) stays. *accessed: its access time, after the touch. */
static apr_status_t load_locked(const zone_t *z, int sealed_only, const ss_key_t *key,
                                const ss_expiry_t *judge, const ss_expiry_t *keep, apr_time_t now,
                                apr_pool_t *p, char **buf, apr_size_t *len, apr_time_t *accessed)
{
    shm_stripe_t *h = z->st;
    ss_record_head_t head;
    apr_time_t created;
    apr_uint32_t i;
    shm_entry_t *e;
    apr_status_t rv;

    if (find(z, key, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    if (i == NIL) {
        h->stats.misses++;
        return APR_NOTFOUND;
    }
    e = entry(z, i);
    *len = e->length;
    *buf = apr_palloc(p, *len);
    copy_out(z, i, *buf, *len);
    rv = ss_record_peek((const unsigned char *)*buf, *len, &head);
    if (rv == APR_ENOTIMPL) {
        h->stats.newer_format++;
        return APR_NOTFOUND;
    }
    if (rv == APR_SUCCESS && (head.flags & SS_RECORD_FLAG_SEALED) && !key->sealable) {
        return APR_NOTFOUND; /* sealed, and a key that cannot open it: left alone */
    }
    if (rv == APR_SUCCESS && sealed_only && !ss_record_is_sealed(*buf, *len)) {
        rv = APR_EINVAL; /* in clear where only sealed records are accepted */
    }
    created = head.created;
    *accessed = head.accessed;
    if (rv != APR_SUCCESS || ss_expiry_check(keep, created, *accessed, now) != SS_LIVE) {
        if (remove_entry(z, i) != APR_SUCCESS) {
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
    if (ss_expiry_check(judge, created, *accessed, now) != SS_LIVE) {
        h->stats.expired++; /* dead here only: kept for the lenient locations */
        return APR_NOTFOUND;
    }
    if (ss_expiry_touch_due(judge, *accessed, now)) {
        ss_record_poke_accessed((unsigned char *)block(z->a, i) + sizeof(shm_entry_t), now);
        FAULT("touch.accessed");
        *accessed = now;
        e->deadline = ss_expiry_deadline(keep, created, now);
        h->stats.touches++;
    }
    if (lru_unlink(z, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("touch.lru_unlinked");
    if (lru_push_head(z, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    h->stats.hits++;
    return APR_SUCCESS;
}

/* A record whose header passed but whose body did not decode: removed if
 * key still holds exactly those bytes, and counted as malformed, not as
 * the hit it was counted as. */
static void remove_malformed(const zone_t *z, const ss_key_t *key, const char *buf, apr_size_t len,
                             apr_status_t why, apr_pool_t *p)
{
    apr_uint32_t i;
    char *now_there;

    if (begin_update(z) != APR_SUCCESS) {
        return;
    }
    if (find(z, key, &i) != APR_SUCCESS) {
        recover_broken(z);
    } else if (i != NIL && entry(z, i)->length == len) {
        now_there = apr_palloc(p, len);
        copy_out(z, i, now_there, len);
        if (memcmp(now_there, buf, len) == 0) {
            if (remove_entry(z, i) != APR_SUCCESS) {
                recover_broken(z);
            } else {
                z->st->stats.malformed++;
                z->st->stats.hits--;
                ss_log(SS_LOG_WARNING, why,
                       "shm store: session %s held a malformed record; removed",
                       ss_key_tag(key, p));
            }
        }
    }
    end_update(z);
}

/* The clear header of entry i's record, read in place (ss_record_peek).
 * It is given the record's whole length, which it checks against the
 * format's minimum (a sealed record's exceeds FIRST_DATA), but it reads only
 * the header, which lies in the first block (FIRST_DATA_HOLDS_HEADER). */
static apr_status_t peek_head(const zone_t *z, apr_uint32_t i, ss_record_head_t *head)
{
    return ss_record_peek((const unsigned char *)block(z->a, i) + sizeof(shm_entry_t),
                          entry(z, i)->length, head);
}

/* The revision of entry i's record, from the header in its first block;
 * APR_EINVAL when it is not a record of a version we read. */
static apr_status_t stored_revision(const zone_t *z, apr_uint32_t i, apr_uint32_t *revision)
{
    ss_record_head_t head;
    apr_status_t rv;

    rv = peek_head(z, i, &head);
    *revision = head.revision;
    return rv;
}

/* Whether a save in this mode may go ahead over entry i (NIL: none). A dead
 * entry counts as gone; an update goes ahead only over the revision it
 * loaded (revision - 1). */
static apr_status_t check_mode(const zone_t *z, apr_uint32_t i, ss_save_mode_e mode,
                               apr_uint32_t revision, apr_time_t now)
{
    int live = i != NIL && !is_dead(entry(z, i), now);
    apr_uint32_t stored = 0;

    if (mode == SS_SAVE_NEW && live) {
        return APR_EEXIST;
    }
    if (mode == SS_SAVE_UPDATE && !live) {
        z->st->stats.refused_gone++;
        return APR_NOTFOUND;
    }
    if (mode == SS_SAVE_UPDATE &&
        (stored_revision(z, i, &stored) != APR_SUCCESS || stored != revision - 1)) {
        z->st->stats.refused_conflict++;
        return SS_ECONFLICT;
    }
    return APR_SUCCESS;
}

/* Replace or add key's record: the old one out, room made, a chain filled
 * and only then linked into the index and the LRU list. */
static apr_status_t save_locked(const zone_t *z, const ss_key_t *key, const ss_owner_t *owner,
                                const char *buf, apr_size_t len, apr_time_t deadline,
                                ss_save_mode_e mode, apr_uint32_t revision, apr_time_t now)
{
    shm_stripe_t *h = z->st;
    apr_uint32_t i, n, *head;
    shm_entry_t *e;
    apr_status_t rv;

    if (find(z, key, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    rv = check_mode(z, i, mode, revision, now);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (i != NIL && remove_entry(z, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.old_removed");
    n = blocks_for(len);
    if (make_room(z, n, now) != APR_SUCCESS || alloc_chain(z, n, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.allocated");
    e = entry(z, i);
    memcpy(e->key, key->bytes, ENTRY_KEY_BYTES);
    memcpy(e->owner, owner->bytes, SS_OWNER_BYTES);
    e->length = (apr_uint32_t)len;
    e->deadline = deadline;
    copy_in(z, i, buf, len);
    head = &buckets(z->a)[bucket_of(z->a, key->bytes)];
    if (!link_ok(z, *head)) {
        return SHM_BROKEN;
    }
    e->hash_next = *head;
    *head = i;
    FAULT("save.hash_linked");
    if (lru_push_head(z, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.lru_linked");
    h->entries++;
    h->stats.saves++;
    FAULT("save.done");
    return APR_SUCCESS;
}

static apr_status_t shm_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *judge,
                             const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p,
                             ss_record_t *rec)
{
    shm_store_t *s = store->impl;
    apr_time_t accessed;
    apr_size_t len;
    apr_status_t rv;
    char *buf;
    zone_t z;

    zone_of(&z, &s->a, key->bytes);
    rv = begin_update(&z);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = load_locked(&z, store->sealed_only, key, judge, keep, now, p, &buf, &len, &accessed);
    if (rv == SHM_BROKEN) {
        recover_broken(&z);
        rv = APR_NOTFOUND;
    }
    end_update(&z);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = ss_record_decode(buf, len, key, p, rec);
    if (rv != APR_SUCCESS) {
        remove_malformed(&z, key, buf, len, rv, p);
        return APR_NOTFOUND;
    }
    rec->accessed = accessed; /* the copy was taken before the touch */
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
    zone_t z;

    memset(&owner, 0, sizeof(owner));
    rv = *rec->user ? ss_owner_hash(rec->user, &owner) : APR_SUCCESS;
    if (rv == APR_SUCCESS) {
        rv = ss_record_encode(rec, key, store->form, p, &buf, &len);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    zone_of(&z, &s->a, key->bytes);
    if (len > limit || len > s->a.max_record) {
        rv = lock(&z);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        z.st->stats.refused_oversize++; /* the caller logs it, rate-limited */
        unlock(&z);
        return APR_ENOSPC;
    }
    rv = begin_update(&z);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = save_locked(&z, key, &owner, buf, len, deadline, mode, rec->revision, rec->accessed);
    if (rv == SHM_BROKEN) {
        /* The stripe's sessions are lost, this one need not be: save it anew. */
        recover_broken(&z);
        rv = save_locked(&z, key, &owner, buf, len, deadline, mode, rec->revision, rec->accessed);
        rv = rv == SHM_BROKEN ? APR_EGENERAL : rv;
    }
    end_update(&z);
    return rv;
}

static apr_status_t shm_remove(ss_store_t *store, const ss_key_t *key)
{
    shm_store_t *s = store->impl;
    apr_uint32_t i;
    apr_status_t rv;
    zone_t z;

    zone_of(&z, &s->a, key->bytes);
    rv = begin_update(&z);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (find(&z, key, &i) != APR_SUCCESS || (i != NIL && remove_entry(&z, i) != APR_SUCCESS)) {
        recover_broken(&z);
    } else if (i != NIL) {
        z.st->stats.removes++;
    }
    end_update(&z);
    return APR_SUCCESS;
}

/* The sum of the stripes' counters, each read under its lock. */
static apr_status_t shm_stats(ss_store_t *store, ss_store_stats_t *stats)
{
    shm_store_t *s = store->impl;
    apr_uint64_t *sum = (apr_uint64_t *)stats, free_blocks = 0;
    const size_t nfields = sizeof(*stats) / sizeof(apr_uint64_t);
    apr_uint32_t k;
    size_t f;
    zone_t z;

    memset(stats, 0, sizeof(*stats));
    for (k = 0; k < s->a.nstripes; k++) {
        const apr_uint64_t *one;
        apr_status_t rv;

        zone_init(&z, &s->a, k);
        rv = lock(&z);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        one = (const apr_uint64_t *)&z.st->stats;
        for (f = 0; f < nfields; f++) {
            sum[f] += one[f];
        }
        stats->entries += z.st->entries;
        free_blocks += z.st->free_count;
        unlock(&z);
    }
    stats->capacity_bytes = (apr_uint64_t)s->a.nblocks * SS_SHM_BLOCK_SIZE;
    stats->used_bytes = ((apr_uint64_t)s->a.nblocks - free_blocks) * SS_SHM_BLOCK_SIZE;
    return APR_SUCCESS;
}

static const char *shm_describe(ss_store_t *store, apr_pool_t *p)
{
    shm_store_t *s = store->impl;

    return apr_psprintf(p, "shm (%" APR_SIZE_T_FMT " bytes in %u stripes, sessions up to %u bytes)",
                        s->a.size, s->a.nstripes, s->a.max_record);
}

static apr_status_t shm_ping(ss_store_t *store)
{
    (void)store;
    return APR_SUCCESS; /* memory of this host: nothing to reach */
}

static apr_status_t shm_child_init(ss_store_t *store, apr_pool_t *p)
{
    /* The locks live in the arena: nothing to attach. */
    (void)store;
    (void)p;
    return APR_SUCCESS;
}

static void shm_close(ss_store_t *store)
{
    /* The arena belongs to the host; nothing to release. */
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

/* Remove every entry of owner in the stripe but except; a walk of its LRU
 * list. */
static apr_status_t revoke_locked(const zone_t *z, const ss_owner_t *owner, const ss_key_t *except,
                                  apr_size_t *count)
{
    apr_uint32_t i, prev, steps = 0;

    for (i = z->st->lru_tail; i != NIL; i = prev) {
        shm_entry_t *e;

        if (!in_range(z, i) || ++steps > z->a->stripe_blocks) {
            return SHM_BROKEN;
        }
        e = entry(z, i);
        prev = e->lru_prev;
        if (memcmp(e->owner, owner->bytes, SS_OWNER_BYTES) ||
            (except && !memcmp(e->key, except->bytes, ENTRY_KEY_BYTES))) {
            continue;
        }
        if (remove_entry(z, i) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
        FAULT("revoke.removed");
        z->st->stats.removes++;
        ++*count;
    }
    return APR_SUCCESS;
}

/* Each stripe in turn, under its own lock: a session saved meanwhile in a
 * stripe already walked is a login after the revoke began. */
static apr_status_t shm_revoke_owner(ss_store_t *store, const ss_owner_t *owner,
                                     const ss_key_t *except, apr_time_t now, apr_size_t *count)
{
    shm_store_t *s = store->impl;
    apr_size_t n = 0;
    apr_uint32_t k;
    zone_t z;

    (void)now;
    for (k = 0; k < s->a.nstripes; k++) {
        apr_status_t rv;

        zone_init(&z, &s->a, k);
        rv = begin_update(&z);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (revoke_locked(&z, owner, except, &n) != APR_SUCCESS) {
            /* Emptied: the owner's sessions are gone with the rest. */
            recover_broken(&z);
        }
        end_update(&z);
    }
    if (count) {
        *count = n;
    }
    return APR_SUCCESS;
}

/* Copy the stripe's live entries (of owner, when given) out, most recent
 * first, until out holds limit (0: no limit). */
static apr_status_t scan_locked(const zone_t *z, const ss_owner_t *owner, apr_size_t limit,
                                apr_time_t now, apr_array_header_t *out)
{
    apr_uint32_t i, steps = 0;

    for (i = z->st->lru_head; i != NIL && (!limit || (apr_size_t)out->nelts < limit);
         i = entry(z, i)->lru_next) {
        const shm_entry_t *e;
        ss_store_entry_t *x;
        ss_record_head_t head;

        if (!in_range(z, i) || ++steps > z->a->stripe_blocks || !entry_ok(z, i)) {
            return SHM_BROKEN;
        }
        e = entry(z, i);
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
        x->readable = peek_head(z, i, &head) == APR_SUCCESS;
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
    apr_uint32_t k;
    zone_t z;
    int i;

    for (k = 0; k < s->a.nstripes && (!limit || (apr_size_t)found->nelts < limit); k++) {
        apr_status_t rv;

        zone_init(&z, &s->a, k);
        rv = lock(&z);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = scan_locked(&z, owner, limit, now, found);
        unlock(&z);
        if (rv != APR_SUCCESS) {
            /* A damaged link: the next update of the stripe rebuilds it. */
            return APR_EGENERAL;
        }
    }
    /* The callback runs outside every lock. */
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
    apr_size_t n = 0;
    apr_uint32_t k;
    zone_t z;

    for (k = 0; k < s->a.nstripes; k++) {
        apr_uint32_t before;
        apr_status_t rv;

        zone_init(&z, &s->a, k);
        rv = begin_update(&z);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        before = z.st->entries;
        if (sweep(&z, now) != APR_SUCCESS) {
            recover_broken(&z);
        }
        n += before >= z.st->entries ? before - z.st->entries : 0;
        end_update(&z);
    }
    if (count) {
        *count = n;
    }
    return APR_SUCCESS;
}

static const ss_store_ops_t shm_ops = {"shm",          "all httpd processes on this host",
                                       shm_load,       shm_save,
                                       shm_remove,     shm_stats,
                                       shm_describe,   shm_ping,
                                       shm_child_init, shm_close,
                                       shm_index_add,  shm_revoke_owner,
                                       shm_scan,       shm_purge_expired};

apr_status_t ss_shm_open(ss_store_t **store, void *base, apr_pool_t *p)
{
    const shm_header_t *h = base;
    const char *why;
    shm_store_t *s = apr_pcalloc(p, sizeof(*s));

    /* The geometry is taken from the size and record limit once, here, and
     * checked against the header. */
    if (h->magic != SHM_MAGIC || h->layout != SHM_LAYOUT ||
        !arena_open(&s->a, base, (apr_size_t)h->size, h->max_record, &why)) {
        return APR_EINVAL;
    }
    *store = apr_pcalloc(p, sizeof(**store));
    (*store)->ops = &shm_ops;
    (*store)->impl = s;
    (*store)->form = SS_RECORD_FORM_SEALED;
    return APR_SUCCESS;
}

apr_status_t ss_shm_open_mapped(ss_store_t **store, void *base, apr_size_t mapped, apr_pool_t *p)
{
    const shm_header_t *h = base;

    /* The header first: its size must be known to lie within the mapping
     * before anything past it is read. */
    if (!base || mapped < sizeof(*h) || h->magic != SHM_MAGIC || h->size > mapped) {
        return APR_EINVAL;
    }
    return ss_shm_open(store, base, p);
}
