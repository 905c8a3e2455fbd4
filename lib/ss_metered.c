/* ss_metered.c - a store that times the operations of another. */
#include <apr_strings.h>

#include "ss_metered.h"

typedef struct {
    ss_store_t *inner;
    ss_metrics_t *m;
} metered_t;

static apr_status_t metered_load(ss_store_t *store, const ss_key_t *key, const ss_expiry_t *judge,
                                 const ss_expiry_t *keep, apr_time_t now, apr_pool_t *p,
                                 ss_record_t *rec)
{
    metered_t *w = store->impl;
    apr_time_t start = apr_time_now();
    apr_status_t rv = w->inner->ops->load(w->inner, key, judge, keep, now, p, rec);

    ss_metrics_observe(w->m, SS_OP_LOAD, apr_time_now() - start);
    return rv;
}

static apr_status_t metered_save(ss_store_t *store, const ss_key_t *key, const ss_record_t *rec,
                                 apr_time_t deadline, ss_save_mode_e mode, apr_size_t limit,
                                 apr_pool_t *p)
{
    metered_t *w = store->impl;
    apr_time_t start = apr_time_now();
    apr_status_t rv = w->inner->ops->save(w->inner, key, rec, deadline, mode, limit, p);

    ss_metrics_observe(w->m, SS_OP_SAVE, apr_time_now() - start);
    return rv;
}

static apr_status_t metered_remove(ss_store_t *store, const ss_key_t *key)
{
    metered_t *w = store->impl;
    apr_time_t start = apr_time_now();
    apr_status_t rv = w->inner->ops->remove(w->inner, key);

    ss_metrics_observe(w->m, SS_OP_DELETE, apr_time_now() - start);
    return rv;
}

static apr_status_t metered_stats(ss_store_t *store, ss_store_stats_t *stats)
{
    metered_t *w = store->impl;

    return w->inner->ops->stats(w->inner, stats);
}

static const char *metered_describe(ss_store_t *store, apr_pool_t *p)
{
    metered_t *w = store->impl;

    return w->inner->ops->describe(w->inner, p);
}

static apr_status_t metered_ping(ss_store_t *store)
{
    metered_t *w = store->impl;

    return w->inner->ops->ping(w->inner);
}

static apr_status_t metered_child_init(ss_store_t *store, apr_pool_t *p)
{
    metered_t *w = store->impl;

    return w->inner->ops->child_init(w->inner, p);
}

static void metered_close(ss_store_t *store)
{
    metered_t *w = store->impl;

    w->inner->ops->close(w->inner);
}

/* The index and administration: passed through, not timed (a revoke is
 * many round trips, not one operation). */
static apr_status_t metered_index_add(ss_store_t *store, const ss_owner_t *owner,
                                      const ss_key_t *key, apr_time_t until, apr_time_t now)
{
    metered_t *w = store->impl;

    return w->inner->ops->index_add(w->inner, owner, key, until, now);
}

static apr_status_t metered_revoke_owner(ss_store_t *store, const ss_owner_t *owner,
                                         const ss_key_t *except, apr_time_t now, apr_size_t *count)
{
    metered_t *w = store->impl;

    return w->inner->ops->revoke_owner(w->inner, owner, except, now, count);
}

static apr_status_t metered_scan(ss_store_t *store, const ss_owner_t *owner, apr_size_t limit,
                                 ss_store_entry_fn fn, void *baton, apr_time_t now, apr_pool_t *p)
{
    metered_t *w = store->impl;

    return w->inner->ops->scan(w->inner, owner, limit, fn, baton, now, p);
}

static apr_status_t metered_purge_expired(ss_store_t *store, apr_time_t now, apr_size_t *count)
{
    metered_t *w = store->impl;

    return w->inner->ops->purge_expired(w->inner, now, count);
}

apr_status_t ss_metered_wrap(ss_store_t **store, ss_store_t *inner, ss_metrics_t *m, apr_pool_t *p)
{
    ss_store_ops_t *ops = apr_pcalloc(p, sizeof(*ops));
    metered_t *w = apr_pcalloc(p, sizeof(*w));

    if (!inner) {
        return APR_EINVAL;
    }
    /* The inner store's own name and scope: logs and pages do not change. */
    ops->name = inner->ops->name;
    ops->stats_scope = inner->ops->stats_scope;
    ops->load = metered_load;
    ops->save = metered_save;
    ops->remove = metered_remove;
    ops->stats = metered_stats;
    ops->describe = metered_describe;
    ops->ping = metered_ping;
    ops->child_init = metered_child_init;
    ops->close = metered_close;
    ops->index_add = metered_index_add;
    ops->revoke_owner = metered_revoke_owner;
    ops->scan = metered_scan;
    ops->purge_expired = metered_purge_expired;
    w->inner = inner;
    w->m = m;
    *store = apr_pcalloc(p, sizeof(**store));
    (*store)->ops = ops;
    (*store)->impl = w;
    (*store)->form = inner->form; /* the session layer reads it (size logs) */
    return APR_SUCCESS;
}

ss_store_t *ss_metered_inner(ss_store_t *store)
{
    return store && store->ops->load == metered_load ? ((metered_t *)store->impl)->inner : store;
}
