/* ss_lock.h - one lock per session, over any store (SessionStoreLock).
 *
 * With the lock, the requests of one session run one after another, as with
 * PHP's file handler: each one loads the session after the previous one
 * saved it, so a read-modify-write (a counter, a list) loses nothing.
 *
 * The lock is a record of its own in the session's store, under
 * SHA-256(session key || "lock"), holding a random token: taking it is a
 * save of a new record (SET NX PX on Redis, a new entry on shm: atomic on
 * both), which fails while another holder's record lives. It lives `lease`
 * at most (the store's deadline, the record's absolute lifetime), so a lock
 * whose holder died (a crashed child, a lost node) frees itself. A waiter
 * tries again after a short, growing, randomised pause until `timeout` has
 * passed, then gives up (APR_TIMEUP).
 *
 * Release loads the lock record and removes it only when it holds the
 * holder's own token. Check and remove are two steps, not one: a holder that
 * ran past its lease can, in the moment between them, remove the lock the
 * next holder has just taken. Within the lease that cannot happen (nobody
 * else can take a lock that lives), so the lease must exceed the longest
 * request. A holder past its lease has lost the lock anyway: its session
 * writes then rely on the merge (ss_session.h), as without the lock.
 *
 * The wait reads the real clock (apr_time_now) and sleeps (apr_sleep). */
#ifndef SS_LOCK_H
#define SS_LOCK_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "ss_id.h"
#include "ss_session.h"
#include "ss_store.h"

typedef struct {
    ss_store_t *store;
    apr_interval_time_t lease;   /* the lock frees itself this long after it was taken */
    apr_interval_time_t timeout; /* the longest wait for it */
} ss_lock_ctx_t;

typedef struct {
    ss_key_t key;              /* the lock record's key */
    char token[SS_ID_LEN + 1]; /* this holder's */
    int held;
    int attempts;               /* saves tried to take it (1: at once, more: it waited) */
    apr_interval_time_t waited; /* time spent taking it */
} ss_lock_t;

/* The lock record's key for a session's store key (its seal key is the
 * session's: a store that seals records can write it). */
apr_status_t ss_lock_key(const ss_key_t *session, ss_key_t *lock);

/* Take the lock of the session stored under session_key. APR_SUCCESS with
 * lock->held; APR_TIMEUP when another holder kept it for ctx->timeout; a
 * store error as the store returned it (nothing held either way). */
apr_status_t ss_lock_acquire(const ss_lock_ctx_t *ctx, const ss_key_t *session_key, apr_pool_t *p,
                             ss_lock_t *lock);

/* Give the lock back if this holder still has it (its token is in the lock
 * record); nothing to do when it is not held. APR_SUCCESS also when the
 * lease ran out meanwhile (another holder's lock stays). */
apr_status_t ss_lock_release(const ss_lock_ctx_t *ctx, ss_lock_t *lock, apr_pool_t *p);

/* ss_session_load with the session's lock held: the lock of the first
 * well-formed ID among the cookies is taken, then the session loaded (the
 * clock read after the wait). When the live session turns out to be another
 * of the cookies' IDs, its lock is taken instead and it is loaded again.
 * No cookie with a well-formed ID, or no live session among them: no lock
 * is kept (nothing to share). APR_SUCCESS with sess loaded (lock->held when
 * a live session was found);
 * APR_TIMEUP when the lock was not free within ctx->timeout, or a store
 * error: then sess is SS_SESSION_STORE_DOWN with that error, so that
 * nothing is written, and no lock is held. */
apr_status_t ss_lock_load(const ss_lock_ctx_t *lk, const ss_session_ctx_t *ctx,
                          const apr_array_header_t *cookies, apr_pool_t *p, ss_session_t *sess,
                          ss_lock_t *lock);

#endif
