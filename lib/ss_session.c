/* ss_session.c - session operations by ID, over any store. */
#include <string.h>

#include "ss_log.h"
#include "ss_session.h"

/* The store key of a well-formed ID; APR_EINVAL for anything else, before
 * any hashing or store access. */
static apr_status_t key_of(const char *id, ss_key_t *key)
{
    if (!ss_id_is_valid(id, id ? strlen(id) : 0)) {
        return APR_EINVAL;
    }
    return ss_id_key(id, key);
}

apr_status_t ss_session_load(const ss_session_ctx_t *ctx, const char *id, apr_time_t now,
                             apr_pool_t *p, ss_record_t *rec)
{
    ss_key_t key;
    apr_status_t rv = key_of(id, &key);

    if (rv != APR_SUCCESS) {
        return rv == APR_EINVAL ? APR_NOTFOUND : rv;
    }
    rv = ctx->store->ops->load(ctx->store, &key, &ctx->expiry, now, p, rec);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* The backend checked too; checking the decoded timestamps here keeps a
     * backend bug or a clock step from ever returning a dead session. */
    if (ss_expiry_check(&ctx->expiry, rec->created, rec->accessed, now) != SS_LIVE) {
        ctx->store->ops->remove(ctx->store, &key);
        return APR_NOTFOUND;
    }
    return APR_SUCCESS;
}

apr_status_t ss_session_write(const ss_session_ctx_t *ctx, const char *id, const ss_record_t *rec,
                              int is_new, apr_pool_t *p)
{
    ss_key_t key;
    apr_size_t size = ss_record_size(rec);
    apr_status_t rv = key_of(id, &key);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (size > ctx->max_size) {
        ss_log(SS_LOG_WARNING, APR_ENOSPC,
               "session %s not saved: %" APR_SIZE_T_FMT
               " bytes exceed the limit of %" APR_SIZE_T_FMT
               " (SessionStoreMaxSessionSize); the previous version is kept",
               ss_key_tag(&key, p), size, ctx->max_size);
        return APR_ENOSPC;
    }
    return ctx->store->ops->save(ctx->store, &key, rec,
                                 ss_expiry_deadline(&ctx->expiry, rec->created, rec->accessed),
                                 is_new ? SS_SAVE_NEW : SS_SAVE_UPDATE, p);
}

apr_status_t ss_session_remove(const ss_session_ctx_t *ctx, const char *id)
{
    ss_key_t key;
    apr_status_t rv = key_of(id, &key);

    if (rv != APR_SUCCESS) {
        return rv == APR_EINVAL ? APR_SUCCESS : rv; /* nothing stored under it */
    }
    return ctx->store->ops->remove(ctx->store, &key);
}
