/* ss_shm.h - the shared-memory backend.
 *
 * One fixed arena, shared by every process that maps it: a header, stripes,
 * a hash index and the stripes' data. The arena is cut into stripes (up to
 * 512, each at least 64 KiB), each with its own lock, buckets and data; a
 * key's hash picks its stripe. A stripe's data is a circular log of
 * variable-size slots, one per record: a 24-byte header (size and flags,
 * hash link, deadline, 12 bytes of the key), the owner's hash when there is
 * an owner, the record, rounded up to 8 bytes. When a stripe is full, a
 * clock hand goes round its log: dead records are reclaimed, records loaded
 * since its last pass are kept, others evicted (CLOCK). Everything is
 * copied in and out under the stripe's lock. The arena holds only offsets,
 * never pointers, so it stays valid wherever it is mapped.
 *
 * The locks live in the arena itself: process-shared, robust pthread
 * mutexes, set up by ss_shm_format. Any process that maps the arena (an
 * httpd child, an admin tool attached to a named segment) takes the same
 * locks with nothing else to share.
 *
 * Every update is marked in its stripe while it runs: if its process dies
 * with the lock held, the next one to take the lock checks the stripe and
 * empties it if it is damaged (logged at SS_LOG_ERR, counted by
 * ss_shm_rebuilds); the other stripes are not touched. A damaged index or
 * size met by any operation does the same: it is detected, never
 * followed. */
#ifndef SS_SHM_H
#define SS_SHM_H

#include "ss_store.h"

#define SS_SHM_MIN_SIZE (64 * 1024)

/* Lay out an empty arena over [base, base + size), its locks included.
 * max_record bounds one record; it must fit in a quarter of a stripe (of
 * the whole arena when it is too small for two). Only on memory that no
 * process is using: it initialises the locks. */
apr_status_t ss_shm_format(void *base, apr_size_t size, apr_size_t max_record);

/* True when an arena of size bytes can hold a record of max_record bytes
 * (ss_shm_format accepts exactly these). */
int ss_shm_fits(apr_size_t size, apr_size_t max_record);

/* True when base holds an arena of exactly this size and record limit, laid
 * out by this version of the library. */
int ss_shm_is_formatted(const void *base, apr_size_t size, apr_size_t max_record);

/* Whether an arena kept from an earlier generation (a restart) can be used
 * as it is: APR_SUCCESS if it is formatted as ss_shm_is_formatted says and a
 * walk of every stripe finds it consistent; APR_EINVAL if it is not an arena
 * of this layout, size and record limit; APR_EGENERAL if a stripe is
 * damaged. *why (may be NULL) says why not, for the log. Reads only, each
 * stripe under its lock, so other processes may go on using the arena. */
apr_status_t ss_shm_check(const void *base, apr_size_t size, apr_size_t max_record,
                          const char **why);

/* ss_shm_check, and every damaged stripe emptied (logged at SS_LOG_ERR):
 * APR_EGENERAL then says that some were, and the arena is usable again. */
apr_status_t ss_shm_repair(void *base, apr_size_t size, apr_size_t max_record, const char **why);

/* How many times a stripe of the arena was found damaged and emptied since
 * the arena was formatted. */
apr_uint32_t ss_shm_rebuilds(const void *base);

/* The number of stripes (locks) of a formatted arena; 0 if it is not one. */
apr_uint32_t ss_shm_stripes(const void *base);

/* Open a store over an arena formatted by ss_shm_format, in any process
 * that maps it. */
apr_status_t ss_shm_open(ss_store_t **store, void *base, apr_pool_t *p);

/* ss_shm_open for a process that attached to a named segment of mapped
 * bytes (sessstore(1)): APR_EINVAL unless base holds an arena of this
 * layout that fits in the mapping. */
apr_status_t ss_shm_open_mapped(ss_store_t **store, void *base, apr_size_t mapped, apr_pool_t *p);

/* Bytes of a stripe's data that one record of len bytes occupies, with an
 * owner (owned) or anonymous: a 200-byte session, a 254-byte sealed record,
 * takes 280 bytes anonymous, 296 with an owner (226 in clear: 256). */
apr_size_t ss_shm_footprint(apr_size_t len, int owned);

#ifdef SS_FAULT_POINTS
/* Test builds only: called with the name of each fault point passed in the
 * middle of an update ("save.mid_copy", "remove.hash_unlinked", ...). */
extern void (*ss_shm_fault_hook)(const char *step);

/* Test builds only: when not 0, arenas formatted and opened afterwards have
 * at most this many stripes (a power of two; 1: one log for all). */
extern apr_uint32_t ss_shm_fault_max_stripes;

/* Test builds only: the address of a named field of the header, of key's
 * stripe or of key's entry, for tests that damage the arena by hand (see
 * ss_shm.c). */
apr_uint32_t *ss_shm_fault_field(void *base, const char *name, const ss_key_t *key);

/* Test builds only: the stripe that holds key. */
apr_uint32_t ss_shm_fault_stripe_of(const void *base, const ss_key_t *key);
#endif

#endif
