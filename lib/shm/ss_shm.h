/* ss_shm.h - the shared-memory backend.
 *
 * One fixed arena, shared by every process that maps it: a header, a hash
 * index and equal blocks. A record lives in a chain of blocks whose first
 * block also carries the entry (key, deadline, hash and LRU links). When the
 * arena is full, dead records go first, then the least recently used. All
 * access is under one global mutex supplied by the host, and everything is
 * copied in and out under it. The arena holds only offsets, never pointers,
 * so it stays valid wherever it is mapped.
 *
 * Every update is marked in the header while it runs: if its process dies
 * with the lock held, the next one to take the lock checks the arena and
 * empties it if it is damaged (logged at SS_LOG_ERR, counted by
 * ss_shm_rebuilds). A damaged index or length met by any operation does the
 * same: it is detected, never followed. */
#ifndef SS_SHM_H
#define SS_SHM_H

#include <apr_global_mutex.h>

#include "ss_store.h"

#define SS_SHM_BLOCK_SIZE 128
#define SS_SHM_MIN_SIZE (64 * 1024)

/* Lay out an empty arena over [base, base + size). max_record bounds one
 * record; it must fit in a quarter of the arena. */
apr_status_t ss_shm_format(void *base, apr_size_t size, apr_size_t max_record);

/* True when an arena of size bytes can hold a record of max_record bytes
 * (ss_shm_format accepts exactly these). */
int ss_shm_fits(apr_size_t size, apr_size_t max_record);

/* True when base holds an arena of exactly this size and record limit, laid
 * out by this version of the library. */
int ss_shm_is_formatted(const void *base, apr_size_t size, apr_size_t max_record);

/* Whether an arena kept from an earlier generation (a restart) can be used
 * as it is: APR_SUCCESS if it is formatted as ss_shm_is_formatted says and a
 * full walk finds it consistent; APR_EINVAL if it is not an arena of this
 * layout, size and record limit; APR_EGENERAL if it is damaged. *why (may be
 * NULL) says why not, for the log. Reads only; call it under the mutex while
 * other processes may use the arena. */
apr_status_t ss_shm_check(const void *base, apr_size_t size, apr_size_t max_record,
                          const char **why);

/* How many times the arena was found damaged and emptied since it was
 * formatted. */
apr_uint32_t ss_shm_rebuilds(const void *base);

/* Open a store over an arena formatted by ss_shm_format. mutex guards the
 * arena and must be the same for every process and generation using it. */
apr_status_t ss_shm_open(ss_store_t **store, void *base, apr_global_mutex_t *mutex, apr_pool_t *p);

/* Bytes of arena one record of len bytes occupies. */
apr_size_t ss_shm_footprint(apr_size_t len);

#ifdef SS_FAULT_POINTS
/* Test builds only: called with the name of each fault point passed in the
 * middle of an update ("save.allocated", "remove.hash_unlinked", ...). */
extern void (*ss_shm_fault_hook)(const char *step);

/* Test builds only: the address of a named field of the header or of key's
 * entry, for tests that damage the arena by hand (see ss_shm.c). */
apr_uint32_t *ss_shm_fault_field(void *base, const char *name, const ss_key_t *key);
#endif

#endif
