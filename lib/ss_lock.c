/* ss_lock.c - one lock per session, over any store. */
#include <string.h>

#include <apr_general.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ss_lock.h"

#define LOCK_SUFFIX "lock"
#define FIRST_PAUSE 1000    /* µs */
#define LONGEST_PAUSE 20000 /* µs */

apr_status_t ss_lock_key(const ss_key_t *session, ss_key_t *lock)
{
    unsigned char in[SS_KEY_BYTES + sizeof(LOCK_SUFFIX) - 1];
    unsigned int len = 0;

    memcpy(in, session->bytes, SS_KEY_BYTES);
    memcpy(in + SS_KEY_BYTES, LOCK_SUFFIX, sizeof(LOCK_SUFFIX) - 1);
    memset(lock, 0, sizeof(*lock));
    if (!EVP_Digest(in, sizeof(in), lock->bytes, &len, EVP_sha256(), NULL) || len != SS_KEY_BYTES) {
        return APR_EGENERAL;
    }
    /* A store that seals records seals the lock's too, with the session's
     * seal key (the record is bound to its own store key all the same). */
    memcpy(lock->seal, session->seal, sizeof(lock->seal));
    lock->sealable = session->sealable;
    return APR_SUCCESS;
}

/* The lock record lives `lease` from its creation and is never touched: an
 * absolute lifetime, no idle one (a waiter's load must not extend it). */
static ss_expiry_t lease_of(const ss_lock_ctx_t *ctx)
{
    ss_expiry_t e = {0, ctx->lease};

    return e;
}

/* A pause of between half and all of `pause`, so that waiters do not retry
 * in step. */
static apr_interval_time_t jittered(apr_interval_time_t pause)
{
    unsigned char r = 0;

    if (apr_generate_random_bytes(&r, 1) != APR_SUCCESS) {
        return pause;
    }
    return pause / 2 + (pause / 2) * r / 255;
}

apr_status_t ss_lock_acquire(const ss_lock_ctx_t *ctx, const ss_key_t *session_key, apr_pool_t *p,
                             ss_lock_t *lock)
{
    apr_time_t start = apr_time_now(), now = start;
    apr_interval_time_t pause = FIRST_PAUSE;
    ss_record_t rec;
    apr_status_t rv;

    memset(lock, 0, sizeof(*lock));
    rv = ss_lock_key(session_key, &lock->key);
    if (rv == APR_SUCCESS) {
        rv = ss_id_generate(lock->token);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    memset(&rec, 0, sizeof(rec));
    rec.user = "";
    rec.payload = lock->token;
    rec.payload_len = SS_ID_LEN;
    for (;;) {
        apr_interval_time_t left, nap;

        rec.created = rec.accessed = now;
        lock->attempts++;
        rv = ctx->store->ops->save(ctx->store, &lock->key, &rec, now + ctx->lease, SS_SAVE_NEW,
                                   (apr_size_t)-1, p);
        now = apr_time_now();
        lock->waited = now - start;
        if (rv == APR_SUCCESS) {
            lock->held = 1;
            return APR_SUCCESS;
        }
        if (rv != APR_EEXIST) {
            return rv;
        }
        left = ctx->timeout - lock->waited;
        if (left <= 0) {
            return APR_TIMEUP;
        }
        nap = jittered(pause);
        apr_sleep(nap < left ? nap : left);
        pause = pause * 2 < LONGEST_PAUSE ? pause * 2 : LONGEST_PAUSE;
        now = apr_time_now();
    }
}

apr_status_t ss_lock_release(const ss_lock_ctx_t *ctx, ss_lock_t *lock, apr_pool_t *p)
{
    ss_expiry_t lease = lease_of(ctx);
    ss_record_t rec;
    apr_status_t rv;

    if (!lock->held) {
        return APR_SUCCESS;
    }
    lock->held = 0;
    memset(&rec, 0, sizeof(rec));
    rv = ctx->store->ops->load(ctx->store, &lock->key, &lease, &lease, apr_time_now(), p, &rec);
    if (rv == APR_NOTFOUND || rv == SS_EEXPIRED) {
        return APR_SUCCESS; /* the lease ran out: nothing of ours left */
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (rec.payload_len != SS_ID_LEN || CRYPTO_memcmp(rec.payload, lock->token, SS_ID_LEN)) {
        return APR_SUCCESS; /* another holder's, after our lease ran out */
    }
    return ctx->store->ops->remove(ctx->store, &lock->key);
}

static void not_loaded(ss_session_t *sess, apr_status_t rv)
{
    memset(sess, 0, sizeof(*sess));
    sess->owner = "";
    sess->cookie_seen = 1;
    sess->state = SS_SESSION_STORE_DOWN;
    sess->store_rv = rv;
}

apr_status_t ss_lock_load(const ss_lock_ctx_t *lk, const ss_session_ctx_t *ctx,
                          const apr_array_header_t *cookies, apr_pool_t *p, ss_session_t *sess,
                          ss_lock_t *lock)
{
    ss_key_t locked;
    apr_status_t rv = APR_SUCCESS;
    int i, found = 0;

    memset(lock, 0, sizeof(*lock));
    for (i = 0; cookies && i < cookies->nelts && !found; i++) {
        const char *id = APR_ARRAY_IDX(cookies, i, const char *);

        found = ss_id_is_valid(id, strlen(id));
        if (found) {
            rv = ss_id_key(id, &locked);
        }
    }
    if (found && rv == APR_SUCCESS) {
        rv = ss_lock_acquire(lk, &locked, p, lock);
    }
    if (rv != APR_SUCCESS) {
        not_loaded(sess, rv);
        return rv;
    }
    ss_session_load(ctx, cookies, apr_time_now(), p, sess);
    if (found && sess->state == SS_SESSION_LOADED &&
        memcmp(sess->key.bytes, locked.bytes, SS_KEY_BYTES)) {
        /* A later cookie named the live session: lock that one, and load
         * it again now that its last writer is done. */
        locked = sess->key;
        rv = ss_lock_release(lk, lock, p);
        if (rv == APR_SUCCESS) {
            rv = ss_lock_acquire(lk, &locked, p, lock);
        }
        if (rv != APR_SUCCESS) {
            not_loaded(sess, rv);
            return rv;
        }
        ss_session_load(ctx, cookies, apr_time_now(), p, sess);
    }
    if (sess->state != SS_SESSION_LOADED) {
        /* No session to share (an unknown or expired ID, or the store went
         * down): a new one gets a fresh ID, nobody else's. */
        rv = ss_lock_release(lk, lock, p);
        if (rv != APR_SUCCESS && sess->state == SS_SESSION_NONE) {
            not_loaded(sess, rv);
            return rv;
        }
    }
    return APR_SUCCESS;
}
