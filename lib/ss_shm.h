/* ss_shm.h - the shared-memory backend.
 *
 * One fixed arena, shared by every process that maps it: a header, a hash
 * index and equal blocks. A record lives in a chain of blocks whose first
 * block also carries the entry (key, deadline, hash and LRU links). When the
 * arena is full, dead records go first, then the least recently used. All
 * access is under one global mutex supplied by the host, and everything is
 * copied in and out under it. The arena holds only offsets, never pointers,
 * so it stays valid wherever it is mapped. */
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

/* True when base holds an arena of exactly this size and record limit. */
int ss_shm_is_formatted(const void *base, apr_size_t size, apr_size_t max_record);

/* Open a store over an arena formatted by ss_shm_format. mutex guards the
 * arena and must be the same for every process and generation using it. */
apr_status_t ss_shm_open(ss_store_t **store, void *base, apr_global_mutex_t *mutex, apr_pool_t *p);

/* Bytes of arena one record of len bytes occupies. */
apr_size_t ss_shm_footprint(apr_size_t len);

#endif
