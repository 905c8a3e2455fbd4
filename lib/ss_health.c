/* ss_health.c - can this process load and save through its store? */
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "ss_health.h"

#define WHY_LEN 160

struct ss_health_t {
    ss_store_t *store;
    ss_key_t key;
    apr_interval_time_t cache;
    apr_thread_mutex_t *lock;
    apr_uint32_t revision; /* of the probe record last written */
    /* The latest verdict. */
    apr_time_t checked; /* 0: never */
    apr_status_t rv;
    apr_interval_time_t rtt;
    char why[WHY_LEN];
};

apr_status_t ss_health_create(ss_health_t **hp, ss_store_t *store, apr_interval_time_t cache,
                              apr_pool_t *p)
{
    ss_health_t *h = apr_pcalloc(p, sizeof(*h));
    char id[SS_ID_LEN + 1];
    apr_status_t rv;

    h->store = store;
    h->cache = cache;
    /* A key from a fresh random ID: no browser holds it, no session has it. */
    rv = ss_id_generate(id);
    if (rv == APR_SUCCESS) {
        rv = ss_id_key(id, &h->key);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&h->lock, APR_THREAD_MUTEX_DEFAULT, p);
    }
    if (rv == APR_SUCCESS) {
        *hp = h;
    }
    return rv;
}

static apr_status_t fail(ss_health_t *h, const char *what, apr_status_t rv)
{
    char err[100];

    /* APR has no words for its generic error: a backend returns it for an
     * error reply or an answer it did not expect, and logs which. */
    apr_snprintf(h->why, sizeof(h->why), "%s: %s", what,
                 rv == APR_EGENERAL ? "it answered with an error (see the error log)"
                                    : apr_strerror(rv, err, sizeof(err)));
    return rv;
}

/* Save the probe record and read it back. */
static apr_status_t probe(ss_health_t *h, apr_time_t now, apr_pool_t *p)
{
    static const ss_expiry_t forever = {0, 0};
    ss_record_t rec, back;
    apr_time_t deadline = now + SS_HEALTH_RECORD_TTL;
    apr_status_t rv;

    memset(&rec, 0, sizeof(rec));
    memset(&back, 0, sizeof(back));
    rec.created = rec.accessed = now;
    rec.user = "";
    rec.payload = apr_psprintf(p, "sessstore-health=%" APR_TIME_T_FMT, now);
    rec.payload_len = strlen(rec.payload);
    /* No blind overwrite exists: update the previous probe's record (a
     * compare-and-set on the revision this process wrote), or write a new
     * one when it has expired (or on the first probe). */
    rec.revision = h->revision + 1;
    rv = h->store->ops->save(h->store, &h->key, &rec, deadline, SS_SAVE_UPDATE, 1024, p);
    if (rv == APR_NOTFOUND) {
        rec.revision = 1;
        rv = h->store->ops->save(h->store, &h->key, &rec, deadline, SS_SAVE_NEW, 1024, p);
    }
    if (rv == APR_SUCCESS) {
        h->revision = rec.revision;
    }
    if (rv != APR_SUCCESS) {
        return fail(h, "the store cannot save", rv);
    }
    rv = h->store->ops->load(h->store, &h->key, &forever, &forever, now, p, &back);
    if (rv == APR_NOTFOUND) {
        apr_snprintf(h->why, sizeof(h->why),
                     "the store cannot load: a record just saved is not found");
        return APR_EGENERAL;
    }
    if (rv != APR_SUCCESS) {
        return fail(h, "the store cannot load", rv);
    }
    if (back.payload_len != rec.payload_len || memcmp(back.payload, rec.payload, rec.payload_len)) {
        apr_snprintf(h->why, sizeof(h->why),
                     "the store cannot load: a record just saved comes back different");
        return APR_EGENERAL;
    }
    h->why[0] = '\0';
    return APR_SUCCESS;
}

apr_status_t ss_health_check(ss_health_t *h, apr_time_t now, apr_interval_time_t *rtt,
                             const char **why, apr_pool_t *p)
{
    apr_status_t rv = apr_thread_mutex_lock(h->lock);

    if (rv != APR_SUCCESS) {
        if (why) {
            *why = "cannot take the health check's lock";
        }
        return rv;
    }
    if (!h->checked || now - h->checked >= h->cache || now < h->checked) {
        apr_pool_t *tmp;
        apr_time_t start = apr_time_now();

        apr_pool_create(&tmp, p);
        h->rv = probe(h, now, tmp);
        apr_pool_destroy(tmp);
        h->rtt = apr_time_now() - start;
        h->checked = now;
    }
    rv = h->rv;
    if (why) {
        *why = apr_pstrdup(p, h->why);
    }
    if (rtt) {
        *rtt = h->rtt;
    }
    apr_thread_mutex_unlock(h->lock);
    return rv;
}
