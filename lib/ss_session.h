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

/* Store rec under id. APR_ENOSPC when the record exceeds max_size: nothing is
 * written and the previous version stays. */
apr_status_t ss_session_save(const ss_session_ctx_t *ctx, const char *id, const ss_record_t *rec,
                             apr_pool_t *p);

apr_status_t ss_session_remove(const ss_session_ctx_t *ctx, const char *id);

#endif
