/* ss_session.h - session operations by ID, over any store.
 *
 * This is what the module calls: it validates the ID, derives the key,
 * applies the size limit and computes the record's deadline. */
#ifndef SS_SESSION_H
#define SS_SESSION_H

#include "ss_expiry.h"
#include "ss_id.h"
#include "ss_record.h"
#include "ss_store.h"

typedef struct {
    ss_store_t *store;
    ss_expiry_t expiry;
    apr_size_t max_size; /* encoded record limit in bytes */
} ss_session_ctx_t;

/* APR_SUCCESS with *rec; APR_NOTFOUND for a malformed, unknown or expired ID;
 * anything else is a store failure. */
apr_status_t ss_session_load(const ss_session_ctx_t *ctx, const char *id, apr_time_t now,
                             apr_pool_t *p, ss_record_t *rec);

/* Store rec under id, as a new session (is_new: a freshly generated ID) or
 * as an update of the session loaded under id. APR_ENOSPC when the record
 * exceeds max_size: nothing is written and the previous version stays.
 * APR_NOTFOUND for an update when the record is gone (removed by a logout or
 * expired meanwhile): nothing is written, so a removed session never comes
 * back; the caller should drop the ID. APR_EEXIST for a new ID already in use.
 * APR_EINVAL for a malformed ID (nothing is written). Anything else is a
 * store failure. rec->accessed is taken as now. */
apr_status_t ss_session_write(const ss_session_ctx_t *ctx, const char *id, const ss_record_t *rec,
                              int is_new, apr_pool_t *p);

apr_status_t ss_session_remove(const ss_session_ctx_t *ctx, const char *id);

#endif
