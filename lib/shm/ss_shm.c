/* ss_shm.c - the shared-memory backend.
 *
 * Arena layout, every part at an offset from the base:
 *
 *   shm_header_t | stripes (shm_stripe_t x nstripes) | bucket heads (u32 x nbuckets)
 *   | stripe data (stripe_units x 8 bytes, x nstripes)
 *
 * The arena is cut into stripes, each a small store of its own: its own
 * process-shared robust mutex, a fixed share of the buckets (bucket b
 * belongs to stripe b mod nstripes), its own run of data, update mark and
 * counters. A key's bucket names its stripe, and an operation takes that
 * stripe's lock only, so processes working on different sessions do not
 * wait for each other, and a process preempted while it holds a lock stalls
 * only the sessions of one stripe.
 *
 * A stripe's data is a circular log of slots, in 8-byte units. A slot is
 * one record: a 24-byte header (size and flags, hash-chain link, deadline,
 * 12 bytes of the key), the owner's hash when the record has an owner, then
 * the record, rounded up to a unit. Slots tile the log from the clock hand
 * (the oldest) round to the head (where the next one goes); between head
 * and hand lies all the free space, in one piece. A save writes at the
 * head; when the gap is too small, the hand moves on: a dead slot (removed,
 * replaced, expired) is simply passed and its units join the gap; a live
 * slot loaded since the hand last passed (its reference bit) gets a second
 * chance and is moved across the gap to the head; any other is evicted,
 * but only when the stripe is short of room: the hand goes round as often
 * as slots are written, and while the live slots would fit with room to
 * spare, every one of them is moved, none evicted. That is CLOCK, the
 * usual approximation of least recently used, with no list links and no
 * free list: a slot costs its header and its rounding, and the log never
 * fragments. A record that shrinks keeps its place (the
 * rest of its slot becomes a dead one); one that grows is written anew at
 * the head and its old slot left dead. A slot never wraps: when the end of
 * the data is too short for it, a dead slot pads the end and the head
 * starts again at 0. Formatting writes no slot, so a large arena is ready
 * at once and its pages are touched as it fills.
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
 * Nothing read from the arena is trusted: every position and size is
 * checked before it is followed (a slot must lie within its stripe), chain
 * walks have a step limit, and a failed check (SHM_BROKEN) leads to the same
 * rebuild of the stripe, never to a wild read or an endless loop. The
 * geometry (stripe, bucket and unit counts, offsets) is computed from the
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
/* Bump whenever shm_header_t, shm_stripe_t, shm_slot_t or an invariant of
 * the arena changes: an arena kept across a restart by another layout is not
 * reused. 4: record v2 (revisions); 5: stripes with their own locks inside
 * the arena, 104-byte blocks, 16-byte keys in the entries; 6: the owner's
 * hash in the entries (the per-owner index), 112-byte blocks; 7: a circular
 * log of variable slots per stripe, CLOCK instead of LRU lists. */
#define SHM_LAYOUT 7u
#define SHM_BUILDER "mod_sessstore " PACKAGE_VERSION
#define NIL 0xffffffffu
/* Internal: the arena failed a check. Never returned to the caller. */
#define SHM_BROKEN (APR_OS_START_USERERR + 0x5353)
#define UNIT 8u
/* Stripes: a power of two, at most this many, each of at least
 * STRIPE_MIN_BYTES of data and four times the largest record. */
#define MAX_STRIPES 512u
#define STRIPE_MIN_BYTES (64 * 1024)
/* About one bucket per this many bytes of data: one per session of 200
 * bytes, so hash chains hold about one slot. */
#define BYTES_PER_BUCKET 256u

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
    apr_uint32_t unit;
    apr_uint32_t max_record;
    apr_uint64_t size;
    apr_uint64_t data_offset;
    apr_uint32_t nstripes;
    apr_uint32_t nbuckets;
    apr_uint32_t stripe_units;
} shm_header_t;

/* One stripe's lock and state; every field but the mutex is read and written
 * only under the mutex. Positions are units from the start of the stripe's
 * data. */
typedef struct {
    pthread_mutex_t mutex; /* process-shared, robust */
    apr_uint32_t updating; /* pid of the process amid an update, 0 when none */
    apr_uint32_t rebuilds; /* times the stripe was found damaged and emptied */
    apr_uint32_t head;     /* where the next slot goes */
    apr_uint32_t hand;     /* the oldest slot: the clock hand */
    apr_uint32_t free;     /* units of the gap from head round to hand */
    apr_uint32_t entries;  /* live slots */
    apr_uint32_t live;     /* units of the live slots */
    ss_store_stats_t stats;
} shm_stripe_t;

/* Stripes on cache lines of their own. */
#define STRIPE_STRIDE ((sizeof(shm_stripe_t) + 63) & ~(apr_size_t)63)

#define SLOT_KEY_BYTES 12

/* A slot's header; a dead slot's other fields mean nothing but its size. */
typedef struct {
    /* units << 8 | unused bytes of the last unit << 4 | SLOT_* flags */
    apr_uint32_t meta;
    apr_uint32_t hash_next; /* position of the next slot of the bucket, NIL at the end */
    /* When the record is dead for every location (the keeping timeouts, see
     * ss_store.h), in seconds rounded up; 0: none. Refuses updates of a dead
     * record and reclaims it before live ones; a load judges by the
     * record's own timestamps. */
    apr_uint32_t deadline;
    /* The first SLOT_KEY_BYTES of the key (SHA-256 of the ID): 96 bits, which
     * no two of a store's keys share by chance (a million sessions: 2^-57),
     * nor can anyone make them share but by 2^76 tries of SHA-256 a million
     * keys at a time; and a sealed record opens only under its whole key. */
    unsigned char key[SLOT_KEY_BYTES];
} shm_slot_t;

#define SLOT_LIVE 1u  /* holds a record, indexed; else dead: only its size counts */
#define SLOT_REF 2u   /* loaded or saved since the hand last passed it */
#define SLOT_OWNED 4u /* ss_owner_t of the record's owner after the header */
#define SLOT_FLAGS 0xfu
#define SLOT_HEADER ((apr_uint32_t)sizeof(shm_slot_t))
/* The most units a slot's meta can say: 24 bits (a record of 128 MiB). */
#define SLOT_MAX_UNITS 0xffffffu

typedef char SLOT_HEADER_IS_UNITS[sizeof(shm_slot_t) % UNIT == 0 ? 1 : -1];

/* An arena as this process sees it: the base and the geometry computed from
 * the size and record limit, never read back from the shared header. */
typedef struct {
    char *base;
    apr_size_t size;
    apr_size_t buckets_offset;
    apr_size_t data_offset;
    apr_uint32_t nstripes;
    apr_uint32_t nbuckets;
    apr_uint32_t stripe_units;
    apr_uint32_t max_record;
} arena_t;

/* One stripe of an arena: its state and its data. */
typedef struct {
    const arena_t *a;
    shm_stripe_t *st;
    char *data;
    apr_uint32_t index;
    apr_uint32_t cap; /* units of data */
} zone_t;

typedef struct {
    arena_t a;
} shm_store_t;

static apr_size_t align64(apr_size_t n)
{
    return (n + 63) & ~(apr_size_t)63;
}

/* Units of a slot holding a record of len bytes. */
static apr_uint32_t units_for(apr_size_t len, int owned)
{
    return (apr_uint32_t)((SLOT_HEADER + (owned ? SS_OWNER_BYTES : 0) + len + UNIT - 1) / UNIT);
}

apr_size_t ss_shm_footprint(apr_size_t len, int owned)
{
    return (apr_size_t)units_for(len, owned) * UNIT;
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

static shm_slot_t *slot(const zone_t *z, apr_uint32_t pos)
{
    return (shm_slot_t *)(z->data + (apr_size_t)pos * UNIT);
}

static apr_uint32_t units_of(const shm_slot_t *s)
{
    return s->meta >> 8;
}

static int is_live(const shm_slot_t *s)
{
    return (s->meta & SLOT_LIVE) != 0;
}

static apr_uint32_t owner_bytes(const shm_slot_t *s)
{
    return (s->meta & SLOT_OWNED) ? SS_OWNER_BYTES : 0;
}

/* The record bytes of a live slot whose size is known to be sane. */
static apr_size_t record_len(const shm_slot_t *s)
{
    return (apr_size_t)units_of(s) * UNIT - SLOT_HEADER - owner_bytes(s) - ((s->meta >> 4) & 7);
}

static unsigned char *record_of(shm_slot_t *s)
{
    return (unsigned char *)s + SLOT_HEADER + owner_bytes(s);
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
    z->cap = a->stripe_units;
    z->data = a->base + a->data_offset + (apr_size_t)s * a->stripe_units * UNIT;
}

/* The stripe that holds key. */
static void zone_of(zone_t *z, const arena_t *a, const unsigned char *key)
{
    zone_init(z, a, bucket_of(a, key) & (a->nstripes - 1));
}

/* Whether the slot at pos may be read whole: inside the stripe, and if it
 * is live, a record length within bounds. */
static int slot_ok(const zone_t *z, apr_uint32_t pos)
{
    const shm_slot_t *s;
    apr_uint32_t u;
    apr_size_t len;

    if (pos >= z->cap) {
        return 0;
    }
    s = slot(z, pos);
    u = units_of(s);
    if (u == 0 || u > z->cap - pos) {
        return 0;
    }
    if (!is_live(s)) {
        return 1;
    }
    if ((apr_size_t)u * UNIT < SLOT_HEADER + owner_bytes(s) + SS_RECORD_MIN_LEN) {
        return 0;
    }
    len = record_len(s);
    return len >= SS_RECORD_MIN_LEN && len <= z->a->max_record;
}

/* Seconds, rounded up, of a deadline in microseconds; 0 stays 0. */
static apr_uint32_t deadline_secs(apr_time_t t)
{
    apr_time_t s;

    if (t <= 0) {
        return 0;
    }
    s = (t + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC;
    return s >= (apr_time_t)NIL ? NIL - 1 : (apr_uint32_t)s;
}

static int is_dead(const shm_slot_t *s, apr_time_t now)
{
    return s->deadline && apr_time_from_sec((apr_time_t)s->deadline) <= now;
}

/* The arena's geometry for size bytes and records up to max_record, with
 * nstripes stripes; 0 if they do not fit. */
static int layout_with(arena_t *a, apr_size_t size, apr_size_t max_record, apr_uint32_t nstripes)
{
    apr_size_t fixed = align64(sizeof(shm_header_t)) + (apr_size_t)nstripes * STRIPE_STRIDE;
    apr_uint32_t nbuckets = 16;
    apr_size_t offset, stripe_units;

    if (size <= fixed) {
        return 0;
    }
    while ((apr_size_t)nbuckets * 2 * (BYTES_PER_BUCKET + sizeof(apr_uint32_t)) <= size - fixed &&
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
    stripe_units = (size - offset) / UNIT / nstripes;
    if (stripe_units >= NIL) {
        stripe_units = NIL - 1;
    }
    if (units_for(max_record, 1) > stripe_units / 4) {
        return 0;
    }
    a->size = size;
    a->max_record = (apr_uint32_t)max_record;
    a->nstripes = nstripes;
    a->nbuckets = nbuckets;
    a->buckets_offset = fixed;
    a->data_offset = offset;
    a->stripe_units = (apr_uint32_t)stripe_units;
    return 1;
}

/* The most stripes that fit (at least STRIPE_MIN_BYTES each), down to one;
 * 0 if not even one does. */
static int layout(arena_t *a, apr_size_t size, apr_size_t max_record)
{
    apr_uint32_t n = MAX_STRIPES;

    if (size < SS_SHM_MIN_SIZE || max_record < SS_RECORD_MIN_LEN || max_record > 0x7fffffffUL ||
        units_for(max_record, 1) > SLOT_MAX_UNITS) {
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

/* Empty the stripe: all of it one gap, nothing indexed (its buckets emptied
 * unless buckets_too is 0: the caller has emptied every bucket). No slot is
 * written. Its mutex is left alone (it may be held: by the caller of a
 * rebuild). */
static void format_stripe(const zone_t *z, int buckets_too)
{
    shm_stripe_t *st = z->st;
    apr_uint32_t i;

    st->head = st->hand = 0;
    st->free = z->cap;
    st->entries = 0;
    st->live = 0;
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
    h->unit = UNIT;
    h->size = a.size;
    h->data_offset = a.data_offset;
    h->max_record = a.max_record;
    h->nstripes = a.nstripes;
    h->nbuckets = a.nbuckets;
    h->stripe_units = a.stripe_units;
    h->magic = SHM_MAGIC;
    return APR_SUCCESS;
}

/* ---- checks ------------------------------------------------------------- */

/* Why the header does not describe the arena a, or NULL. */
static const char *check_header(const arena_t *a)
{
    const shm_header_t *h = header(a);

    if (h->magic != SHM_MAGIC || h->layout != SHM_LAYOUT || h->unit != UNIT) {
        return "not an arena of this layout";
    }
    if (h->size != a->size || h->max_record != a->max_record || h->nstripes != a->nstripes ||
        h->nbuckets != a->nbuckets || h->stripe_units != a->stripe_units ||
        h->data_offset != a->data_offset) {
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

/* The position after the slot at pos of u units: 0 at the end of the data. */
static apr_uint32_t after(const zone_t *z, apr_uint32_t pos, apr_uint32_t u)
{
    return pos + u == z->cap ? 0 : pos + u;
}

/* Why the ring's state cannot be right, or NULL: the gap from head must end
 * at the hand. */
static const char *check_ring(const zone_t *z)
{
    const shm_stripe_t *st = z->st;

    if (st->head >= z->cap || st->hand >= z->cap || st->free > z->cap) {
        return "the head, hand or free space is outside the stripe";
    }
    if (((apr_uint64_t)st->head + st->free) % z->cap != st->hand) {
        return "the free space does not end at the hand";
    }
    return NULL;
}

/* Walk the slots from the hand to the head, calling fn for each live one
 * (a non-zero return stops the walk). SHM_BROKEN when a slot is not sane or
 * the slots do not end exactly at the head. fn may kill the slot it is
 * given, nothing else. */
typedef int (*slot_fn)(const zone_t *z, apr_uint32_t pos, void *baton);

static apr_status_t each_slot(const zone_t *z, slot_fn fn, void *baton)
{
    const shm_stripe_t *st = z->st;
    apr_uint32_t pos = st->hand, used, n = 0;

    if (check_ring(z)) {
        return SHM_BROKEN;
    }
    used = z->cap - st->free;
    while (n < used) {
        apr_uint32_t u;

        if (!slot_ok(z, pos)) {
            return SHM_BROKEN;
        }
        u = units_of(slot(z, pos));
        if (u > used - n) {
            return SHM_BROKEN;
        }
        if (is_live(slot(z, pos)) && fn(z, pos, baton)) {
            return APR_SUCCESS;
        }
        n += u;
        pos = after(z, pos, u);
    }
    return pos == st->head ? APR_SUCCESS : SHM_BROKEN;
}

typedef struct {
    unsigned char *starts; /* a bit per unit: a live slot starts there */
    apr_uint32_t entries;
    apr_uint64_t live;
} walk_t;

static int mark_live(const zone_t *z, apr_uint32_t pos, void *baton)
{
    walk_t *w = baton;

    w->starts[pos / 8] |= (unsigned char)(1u << (pos % 8));
    w->entries++;
    w->live += units_of(slot(z, pos));
    return 0;
}

/* Every indexed slot must be a live one of the walk, met once, in its
 * key's bucket; the live slots met that way must be all of them. */
static const char *walk_index(const zone_t *z, walk_t *w)
{
    const arena_t *a = z->a;
    apr_uint32_t b, i, n = 0;

    for (b = z->index; b < a->nbuckets; b += a->nstripes) {
        for (i = buckets(a)[b]; i != NIL; i = slot(z, i)->hash_next) {
            if (i >= z->cap || !(w->starts[i / 8] & (1u << (i % 8)))) {
                return "a hash chain leaves the stripe's live slots or loops";
            }
            w->starts[i / 8] &= (unsigned char)~(1u << (i % 8));
            if (bucket_of(a, slot(z, i)->key) != b) {
                return "a slot in the wrong hash chain";
            }
            n++;
        }
    }
    return n == w->entries ? NULL : "live slots missing from the index";
}

/* Why the stripe is inconsistent, or NULL: the slots tile the log from the
 * hand to the head, the counts agree with them, and every live slot is
 * indexed exactly once. Call it under the stripe's lock. */
static const char *walk_stripe(const zone_t *z)
{
    walk_t w;
    const char *why = check_ring(z);

    if (why) {
        return why;
    }
    memset(&w, 0, sizeof(w));
    w.starts = calloc((apr_size_t)z->cap / 8 + 1, 1);
    if (!w.starts) {
        return "no memory to check it";
    }
    if (each_slot(z, mark_live, &w) != APR_SUCCESS) {
        why = "a slot's size is out of bounds, or the slots do not end at the head";
    } else if (w.entries != z->st->entries || w.live != z->st->live) {
        why = "the stripe's counts disagree with its slots";
    } else {
        why = walk_index(z, &w);
    }
    free(w.starts);
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

/* This process's pid, for the update mark: getpid() is a system call
 * (glibc keeps no copy), and the mark is set twice in a read+write request.
 * A child forked after the first call must not keep its parent's pid. */
static volatile apr_uint32_t own_pid;

static void forget_pid(void)
{
    apr_atomic_set32(&own_pid, 0);
}

static void register_forget_pid(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

static apr_uint32_t mark_pid(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    apr_uint32_t pid = apr_atomic_read32(&own_pid);

    if (!pid) {
        pthread_once(&once, register_forget_pid);
        pid = (apr_uint32_t)getpid();
        apr_atomic_set32(&own_pid, pid);
    }
    return pid;
}

/* lock() and set the mark before the first write. The atomic store is also
 * a compiler barrier: no write of the update is moved before it. */
static apr_status_t begin_update(const zone_t *z)
{
    apr_status_t rv = lock(z);

    if (rv == APR_SUCCESS) {
        apr_atomic_set32(&z->st->updating, mark_pid());
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

/* ---- the index and the log ---------------------------------------------- */

/* *found: the live slot holding key, NIL if none. A chain never holds more
 * slots than the stripe has units: longer, it loops. */
static apr_status_t find(const zone_t *z, const ss_key_t *key, apr_uint32_t *found)
{
    apr_uint32_t i = buckets(z->a)[bucket_of(z->a, key->bytes)], steps = 0;

    while (i != NIL) {
        if (!slot_ok(z, i) || !is_live(slot(z, i)) || ++steps > z->cap) {
            return SHM_BROKEN;
        }
        if (memcmp(slot(z, i)->key, key->bytes, SLOT_KEY_BYTES) == 0) {
            break;
        }
        i = slot(z, i)->hash_next;
    }
    *found = i;
    return APR_SUCCESS;
}

/* The link that points at the slot at pos: its bucket head or the
 * hash_next of the slot before it in the chain; NULL when it is not in its
 * chain (damage). */
static apr_uint32_t *link_to(const zone_t *z, apr_uint32_t pos)
{
    apr_uint32_t b = bucket_of(z->a, slot(z, pos)->key), *link = &buckets(z->a)[b];
    apr_uint32_t steps = 0;

    if ((b & (z->a->nstripes - 1)) != z->index) {
        return NULL; /* another stripe's bucket: not ours to touch */
    }
    while (*link != pos) {
        if (*link >= z->cap || ++steps > z->cap) {
            return NULL;
        }
        link = &slot(z, *link)->hash_next;
    }
    return link;
}

/* Take the live slot at pos out of the index and make it dead; its units
 * stay where they are until the hand passes them. */
static apr_status_t kill_slot(const zone_t *z, apr_uint32_t pos)
{
    shm_stripe_t *st = z->st;
    shm_slot_t *s = slot(z, pos);
    apr_uint32_t *link = link_to(z, pos);

    if (!link || (s->hash_next != NIL && s->hash_next >= z->cap) || st->entries == 0 ||
        st->live < units_of(s)) {
        return SHM_BROKEN;
    }
    *link = s->hash_next;
    FAULT("remove.hash_unlinked");
    s->meta &= ~SLOT_FLAGS;
    st->entries--;
    st->live -= units_of(s);
    return APR_SUCCESS;
}

/* Write a dead slot of u units at pos. */
static void put_dead(const zone_t *z, apr_uint32_t pos, apr_uint32_t u)
{
    slot(z, pos)->meta = u << 8;
}

/* Whether the stripe has room for need more units once its dead slots are
 * reclaimed: the live ones moved together leave a gap of cap - live, less
 * at most need - 1 of padding where the ring wraps, and a margin of 1/32
 * that bounds what the hand moves to free a unit (at most 31 units). */
static int room_without_evicting(const zone_t *z, apr_uint32_t need)
{
    return (apr_uint64_t)z->st->live + 2 * (apr_uint64_t)need + z->cap / 32 <= z->cap;
}

/* The hand passes the slot it points at, to make room for need units: a
 * dead slot's units join the gap, as do those of a live one that is dead by
 * its deadline, or evicted; a live one referenced since the last pass, or
 * any live one while the stripe has room for all of them, is kept (when
 * second_chance): moved across the gap to the head, its reference cleared.
 * The ring is written through as often as slots are written, full or not:
 * only a stripe short of room evicts. Called only while the gap does not
 * wrap (it ends at the hand, before the end of the data). */
static apr_status_t pass_hand(const zone_t *z, int second_chance, apr_uint32_t need, apr_time_t now)
{
    shm_stripe_t *st = z->st;
    apr_uint32_t pos = st->hand, u;
    shm_slot_t *s;

    if (!slot_ok(z, pos) || units_of(slot(z, pos)) > z->cap - st->free) {
        return SHM_BROKEN;
    }
    s = slot(z, pos);
    u = units_of(s);
    if (is_live(s) && second_chance && !is_dead(s, now) &&
        ((s->meta & SLOT_REF) || room_without_evicting(z, need))) {
        apr_uint32_t *link = link_to(z, pos);

        if (!link) {
            return SHM_BROKEN;
        }
        s->meta &= ~SLOT_REF;
        if (st->free) {
            /* The gap [head, hand) lies before the slot, in one piece. */
            memmove(slot(z, st->head), s, (apr_size_t)u * UNIT);
            FAULT("clock.moved");
            *link = st->head;
        }
        st->head = after(z, st->head, u);
        st->hand = after(z, pos, u);
        FAULT("clock.kept");
        return APR_SUCCESS;
    }
    if (is_live(s)) {
        if (is_dead(s, now)) {
            st->stats.evicted_expired++;
        } else {
            st->stats.evicted_lru++;
        }
        if (kill_slot(z, pos) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
        FAULT("evict.killed");
    }
    st->free += u;
    st->hand = after(z, pos, u);
    if (st->free == z->cap) {
        st->head = st->hand = 0; /* empty: start over at the beginning */
    }
    FAULT("evict.passed");
    return APR_SUCCESS;
}

/* Make u units free in one piece at the head. The hand goes round at most
 * twice: every slot it passes once has lost its second chance, so the
 * second round frees everything. A record takes at most a quarter of the
 * stripe. */
static apr_status_t make_room(const zone_t *z, apr_uint32_t u, apr_time_t now)
{
    shm_stripe_t *st = z->st;
    apr_uint64_t passed = 0;

    if (check_ring(z)) {
        return SHM_BROKEN;
    }
    for (;;) {
        apr_uint32_t to_end = z->cap - st->head;

        if ((st->free < to_end ? st->free : to_end) >= u) {
            return APR_SUCCESS;
        }
        if (st->free >= to_end) {
            /* The gap runs past the end, whose piece is too short: a dead
             * slot fills it, and the gap goes on from the beginning. */
            put_dead(z, st->head, to_end);
            st->free -= to_end;
            st->head = 0;
            FAULT("clock.padded");
            continue;
        }
        if (passed > 2 * (apr_uint64_t)z->cap) {
            return SHM_BROKEN;
        }
        passed += units_of(slot(z, st->hand)) ? units_of(slot(z, st->hand)) : 1;
        if (pass_hand(z, passed <= z->cap, u, now) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
    }
}

/* Fill the slot at pos (u units) with key's record; its hash link is left
 * as it is. A new record is not referenced yet: a session created and never
 * used again (a bot, a flood of logins) goes before one in use. The slot
 * is live only once it is whole: written in place, over an indexed slot, a
 * writer that dies halfway leaves an indexed dead slot, which the walk of
 * the next holder finds (never half of each version served as a record).
 * The atomic stores are also compiler barriers. */
static void fill_slot(const zone_t *z, apr_uint32_t pos, apr_uint32_t u, const ss_key_t *key,
                      const ss_owner_t *owner, const char *buf, apr_size_t len, apr_time_t deadline,
                      ss_save_mode_e mode)
{
    shm_slot_t *s = slot(z, pos);
    apr_uint32_t own = owner ? SS_OWNER_BYTES : 0;
    apr_uint32_t spare = u * UNIT - SLOT_HEADER - own - (apr_uint32_t)len;
    apr_uint32_t meta = u << 8 | spare << 4 | (owner ? SLOT_OWNED : 0);

    apr_atomic_set32(&s->meta, meta);
    s->deadline = deadline_secs(deadline);
    memcpy(s->key, key->bytes, SLOT_KEY_BYTES);
    if (owner) {
        memcpy((char *)s + SLOT_HEADER, owner->bytes, SS_OWNER_BYTES);
    }
    memcpy(record_of(s), buf, len / 2);
    FAULT("save.mid_copy");
    memcpy(record_of(s) + len / 2, buf + len / 2, len - len / 2);
    apr_atomic_set32(&s->meta, meta | SLOT_LIVE | (mode == SS_SAVE_UPDATE ? SLOT_REF : 0));
}

#ifdef SS_FAULT_POINTS
typedef struct {
    const char *name;
    apr_size_t offset;
} field_t;

static const field_t stripe_fields[] = {
    {"head", offsetof(shm_stripe_t, head)}, {"hand", offsetof(shm_stripe_t, hand)},
    {"free", offsetof(shm_stripe_t, free)}, {"entries", offsetof(shm_stripe_t, entries)},
    {"live", offsetof(shm_stripe_t, live)},
};

static const field_t slot_fields[] = {
    {"meta", offsetof(shm_slot_t, meta)},
    {"hash_next", offsetof(shm_slot_t, hash_next)},
    {"deadline", offsetof(shm_slot_t, deadline)},
};

/* Test builds only: the address of a named field, for tests that damage the
 * arena by hand: the header's "layout", one of the state of key's stripe,
 * key's bucket head ("bucket"), or one of key's slot (NULL if key is not
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
    for (k = 0; k < sizeof(slot_fields) / sizeof(slot_fields[0]); k++) {
        if (!strcmp(name, slot_fields[k].name)) {
            return (apr_uint32_t *)((char *)slot(&z, i) + slot_fields[k].offset);
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
    shm_stripe_t *st = z->st;
    ss_record_head_t head;
    apr_time_t created;
    apr_uint32_t i;
    shm_slot_t *s;
    apr_status_t rv;

    if (find(z, key, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    if (i == NIL) {
        st->stats.misses++;
        return APR_NOTFOUND;
    }
    s = slot(z, i);
    *len = record_len(s);
    *buf = apr_pmemdup(p, record_of(s), *len);
    rv = ss_record_peek((const unsigned char *)*buf, *len, &head);
    if (rv == APR_ENOTIMPL) {
        st->stats.newer_format++;
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
        if (kill_slot(z, i) != APR_SUCCESS) {
            return SHM_BROKEN;
        }
        if (rv != APR_SUCCESS) {
            st->stats.malformed++;
            ss_log(SS_LOG_WARNING, rv, "shm store: session %s held a malformed record; removed",
                   ss_key_tag(key, p));
            return APR_NOTFOUND;
        }
        st->stats.expired++;
        return SS_EEXPIRED;
    }
    if (ss_expiry_check(judge, created, *accessed, now) != SS_LIVE) {
        st->stats.expired++; /* dead here only: kept for the lenient locations */
        return SS_EEXPIRED;
    }
    if (ss_expiry_touch_due(judge, *accessed, now)) {
        ss_record_poke_accessed(record_of(s), now);
        FAULT("touch.accessed");
        *accessed = now;
        s->deadline = deadline_secs(ss_expiry_deadline(keep, created, now));
        st->stats.touches++;
    }
    s->meta |= SLOT_REF;
    st->stats.hits++;
    return APR_SUCCESS;
}

/* A record whose header passed but whose body did not decode: removed if
 * key still holds exactly those bytes, and counted as malformed, not as
 * the hit it was counted as. */
static void remove_malformed(const zone_t *z, const ss_key_t *key, const char *buf, apr_size_t len,
                             apr_status_t why, apr_pool_t *p)
{
    apr_uint32_t i;

    if (begin_update(z) != APR_SUCCESS) {
        return;
    }
    if (find(z, key, &i) != APR_SUCCESS) {
        recover_broken(z);
    } else if (i != NIL && record_len(slot(z, i)) == len &&
               memcmp(record_of(slot(z, i)), buf, len) == 0) {
        if (kill_slot(z, i) != APR_SUCCESS) {
            recover_broken(z);
        } else {
            z->st->stats.malformed++;
            z->st->stats.hits--;
            ss_log(SS_LOG_WARNING, why, "shm store: session %s held a malformed record; removed",
                   ss_key_tag(key, p));
        }
    }
    end_update(z);
}

/* The clear header of the record in the slot at pos, read in place
 * (ss_record_peek). */
static apr_status_t peek_head(const zone_t *z, apr_uint32_t pos, ss_record_head_t *head)
{
    shm_slot_t *s = slot(z, pos);

    return ss_record_peek(record_of(s), record_len(s), head);
}

/* Whether a save in this mode may go ahead over the slot at i (NIL: none).
 * A dead record counts as gone; an update goes ahead only over the
 * revision it loaded (revision - 1). */
static apr_status_t check_mode(const zone_t *z, apr_uint32_t i, ss_save_mode_e mode,
                               apr_uint32_t revision, apr_time_t now)
{
    int live = i != NIL && !is_dead(slot(z, i), now);
    ss_record_head_t head;

    if (mode == SS_SAVE_NEW && live) {
        return APR_EEXIST;
    }
    if (mode == SS_SAVE_UPDATE && !live) {
        z->st->stats.refused_gone++;
        return APR_NOTFOUND;
    }
    if (mode == SS_SAVE_UPDATE &&
        (peek_head(z, i, &head) != APR_SUCCESS || head.revision != revision - 1)) {
        z->st->stats.refused_conflict++;
        return SS_ECONFLICT;
    }
    return APR_SUCCESS;
}

/* Replace or add key's record. One no larger than the slot it replaces is
 * written over it (a shorter one leaves the rest of the slot dead); a larger
 * or new one goes to a new slot at the head, room made first, and is
 * indexed only once it is whole. */
static apr_status_t save_locked(const zone_t *z, const ss_key_t *key, const ss_owner_t *owner,
                                const char *buf, apr_size_t len, apr_time_t deadline,
                                ss_save_mode_e mode, apr_uint32_t revision, apr_time_t now)
{
    shm_stripe_t *st = z->st;
    apr_uint32_t i, u = units_for(len, owner != NULL), *head;
    apr_status_t rv;

    if (find(z, key, &i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    rv = check_mode(z, i, mode, revision, now);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (i != NIL && units_of(slot(z, i)) >= u) {
        apr_uint32_t old = units_of(slot(z, i));

        fill_slot(z, i, u, key, owner, buf, len, deadline, mode);
        if (old > u) {
            put_dead(z, i + u, old - u);
            st->live -= old - u;
        }
        st->stats.saves++;
        FAULT("save.done");
        return APR_SUCCESS;
    }
    if (i != NIL && kill_slot(z, i) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.old_removed");
    if (make_room(z, u, now) != APR_SUCCESS) {
        return SHM_BROKEN;
    }
    FAULT("save.room_made");
    i = st->head;
    fill_slot(z, i, u, key, owner, buf, len, deadline, mode);
    st->head = after(z, i, u);
    st->free -= u;
    FAULT("save.allocated");
    head = &buckets(z->a)[bucket_of(z->a, key->bytes)];
    if (*head != NIL && *head >= z->cap) {
        return SHM_BROKEN;
    }
    slot(z, i)->hash_next = *head;
    *head = i;
    FAULT("save.hash_linked");
    st->entries++;
    st->live += u;
    st->stats.saves++;
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
    ss_owner_t owner, *owned = NULL;
    char *buf;
    apr_size_t len;
    apr_status_t rv = APR_SUCCESS;
    zone_t z;

    if (*rec->user) {
        rv = ss_owner_hash(rec->user, &owner);
        owned = &owner;
    }
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
    rv = save_locked(&z, key, owned, buf, len, deadline, mode, rec->revision, rec->accessed);
    if (rv == SHM_BROKEN) {
        /* The stripe's sessions are lost, this one need not be: save it anew. */
        recover_broken(&z);
        rv = save_locked(&z, key, owned, buf, len, deadline, mode, rec->revision, rec->accessed);
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
    if (find(&z, key, &i) != APR_SUCCESS || (i != NIL && kill_slot(&z, i) != APR_SUCCESS)) {
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
    apr_uint64_t *sum = (apr_uint64_t *)stats, live = 0;
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
        live += z.st->live;
        unlock(&z);
    }
    stats->capacity_bytes = (apr_uint64_t)s->a.nstripes * s->a.stripe_units * UNIT;
    stats->used_bytes = live * UNIT;
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
    /* The owner goes into the slot with the record itself (shm_save), under
     * the same lock: nothing to do before. */
    (void)store;
    (void)owner;
    (void)key;
    (void)until;
    (void)now;
    return APR_SUCCESS;
}

typedef struct {
    const ss_owner_t *owner;
    const ss_key_t *except;
    apr_size_t count;
    apr_status_t rv;
} revoke_t;

static int revoke_slot(const zone_t *z, apr_uint32_t pos, void *baton)
{
    revoke_t *r = baton;
    shm_slot_t *s = slot(z, pos);

    if (!(s->meta & SLOT_OWNED) ||
        memcmp((char *)s + SLOT_HEADER, r->owner->bytes, SS_OWNER_BYTES) ||
        (r->except && !memcmp(s->key, r->except->bytes, SLOT_KEY_BYTES))) {
        return 0;
    }
    if (kill_slot(z, pos) != APR_SUCCESS) {
        r->rv = SHM_BROKEN;
        return 1;
    }
    FAULT("revoke.removed");
    z->st->stats.removes++;
    r->count++;
    return 0;
}

/* Each stripe in turn, under its own lock: a session saved meanwhile in a
 * stripe already walked is a login after the revoke began. */
static apr_status_t shm_revoke_owner(ss_store_t *store, const ss_owner_t *owner,
                                     const ss_key_t *except, apr_time_t now, apr_size_t *count)
{
    shm_store_t *s = store->impl;
    revoke_t r = {owner, except, 0, APR_SUCCESS};
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
        r.rv = APR_SUCCESS;
        if (each_slot(&z, revoke_slot, &r) != APR_SUCCESS || r.rv != APR_SUCCESS) {
            /* Emptied: the owner's sessions are gone with the rest. */
            recover_broken(&z);
        }
        end_update(&z);
    }
    if (count) {
        *count = r.count;
    }
    return APR_SUCCESS;
}

typedef struct {
    const ss_owner_t *owner;
    apr_size_t limit;
    apr_time_t now;
    apr_array_header_t *out;
} scan_t;

/* Copy a live slot's entry out (of owner, when given), until out holds
 * limit (0: no limit). */
static int scan_slot(const zone_t *z, apr_uint32_t pos, void *baton)
{
    scan_t *sc = baton;
    shm_slot_t *s = slot(z, pos);
    ss_store_entry_t *x;
    ss_record_head_t head;

    if (sc->limit && (apr_size_t)sc->out->nelts >= sc->limit) {
        return 1;
    }
    if (is_dead(s, sc->now) ||
        (sc->owner && (!(s->meta & SLOT_OWNED) ||
                       memcmp((char *)s + SLOT_HEADER, sc->owner->bytes, SS_OWNER_BYTES)))) {
        return 0;
    }
    x = apr_array_push(sc->out);
    memset(x, 0, sizeof(*x));
    /* The rest of the key stays 0: enough to name it (its tag) and to
     * remove it, which compare these bytes only. */
    memcpy(x->key.bytes, s->key, SLOT_KEY_BYTES);
    x->size = record_len(s);
    x->expires = s->deadline ? apr_time_from_sec((apr_time_t)s->deadline) : 0;
    x->readable = peek_head(z, pos, &head) == APR_SUCCESS;
    x->created = x->readable ? head.created : 0;
    x->accessed = x->readable ? head.accessed : 0;
    return 0;
}

static apr_status_t shm_scan(ss_store_t *store, const ss_owner_t *owner, apr_size_t limit,
                             ss_store_entry_fn fn, void *baton, apr_time_t now, apr_pool_t *p)
{
    shm_store_t *s = store->impl;
    scan_t sc = {owner, limit, now, apr_array_make(p, 64, sizeof(ss_store_entry_t))};
    apr_uint32_t k;
    zone_t z;
    int i;

    for (k = 0; k < s->a.nstripes && (!limit || (apr_size_t)sc.out->nelts < limit); k++) {
        apr_status_t rv;

        zone_init(&z, &s->a, k);
        rv = lock(&z);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = each_slot(&z, scan_slot, &sc);
        unlock(&z);
        if (rv != APR_SUCCESS) {
            /* A damaged slot: the next update of the stripe rebuilds it. */
            return APR_EGENERAL;
        }
    }
    /* The callback runs outside every lock. */
    for (i = 0; i < sc.out->nelts; i++) {
        if (fn(baton, &APR_ARRAY_IDX(sc.out, i, ss_store_entry_t))) {
            break;
        }
    }
    return APR_SUCCESS;
}

typedef struct {
    apr_time_t now;
    apr_size_t count;
    apr_status_t rv;
} purge_t;

static int purge_slot(const zone_t *z, apr_uint32_t pos, void *baton)
{
    purge_t *pu = baton;

    if (!is_dead(slot(z, pos), pu->now)) {
        return 0;
    }
    if (kill_slot(z, pos) != APR_SUCCESS) {
        pu->rv = SHM_BROKEN;
        return 1;
    }
    z->st->stats.evicted_expired++;
    pu->count++;
    return 0;
}

/* Each stripe in turn under its own lock: no request waits for more than
 * one stripe's walk. The dead slots' units return to the gap when the hand
 * passes them. */
static apr_status_t shm_purge_expired(ss_store_t *store, apr_time_t now, apr_size_t *count)
{
    shm_store_t *s = store->impl;
    purge_t pu = {now, 0, APR_SUCCESS};
    apr_uint32_t k;
    zone_t z;

    for (k = 0; k < s->a.nstripes; k++) {
        apr_status_t rv;

        zone_init(&z, &s->a, k);
        rv = begin_update(&z);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        pu.rv = APR_SUCCESS;
        if (each_slot(&z, purge_slot, &pu) != APR_SUCCESS || pu.rv != APR_SUCCESS) {
            recover_broken(&z);
        }
        end_update(&z);
    }
    if (count) {
        *count = pu.count;
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
