/* ss_session.h - one request's session, and the policy that governs it.
 *
 * The host (the module) carries a request to two calls: ss_session_load with
 * the cookie values the browser sent, and ss_session_commit with what the
 * application left in the session. Between them, ss_session_claim tells the
 * session who the request's user is, as soon as that is known. This file
 * decides everything else:
 *
 * - Which cookie: the first well-formed value that names a live session.
 *   Malformed values are skipped without counting against the limit of
 *   SS_SESSION_MAX_CANDIDATES store lookups, so planted junk cookies cannot
 *   hide the real one. An ID the store does not know is never adopted, nor
 *   one whose record this location judges expired (SS_EEXPIRED: counted in
 *   sess->expired, otherwise treated as unknown; the next save gets a new
 *   ID).
 * - Owner change: a session recorded for one named user is never handed to
 *   another. ss_session_claim drops it (the new user starts empty) and the
 *   commit deletes its record.
 * - A new ID whenever the owner changes (an anonymous session that logs in
 *   keeps its data under a new ID: a cart survives the login), and for every
 *   session the store did not hand out.
 * - Logout ends the session: the record is deleted and the browser keeps no
 *   session data, whatever else the application left in it. So does a
 *   session emptied by the application. Every session the browser's cookies
 *   name is deleted, including one this location judged expired but a more
 *   lenient one would still serve.
 * - Deletes come first and fail closed: when the old record cannot be
 *   deleted, nothing new is written and the commit fails, so a browser is
 *   never told it logged out while its old cookie still works.
 * - A save is skipped when nothing but mod_session's own "expiry" entry moved,
 *   and that by less than the expiry slack.
 * - A change that cannot be saved (store down, session too large) is a
 *   failed commit: the host must not answer as if it had worked.
 * - Parallel requests of one session merge, key by key: an update writes
 *   only what this request changed (the keys it set, changed or removed,
 *   compared with what it loaded: ss_merge.h), applied to the session as the
 *   store holds it now. It is written over the revision this request loaded
 *   (compare-and-set); when another request wrote meanwhile, the session is
 *   loaded again and the change applied to it, again after a random pause
 *   while other writes keep coming, for SS_SESSION_MERGE_BUDGET at most,
 *   then the commit fails (SS_ECONFLICT). Changes to different keys
 *   all survive; for one key the later write wins; mod_session's "expiry"
 *   never moves backwards. A payload that cannot be merged (mod_session_crypto's
 *   ciphertext) is written whole over the newer revision: the later write
 *   wins for the whole session. What a commit's merge did: sess->merge.
 * - A session ended meanwhile by another request is not brought back, by
 *   the update or by a merge (a reload that finds nothing ends the commit),
 *   and its cookie is left alone: a newer one (a login that rotated it) may
 *   already have replaced it in the browser.
 * - Expiry: the request's location judges (ctx->expiry); the store keeps a
 *   record as long as the server's most lenient timeouts (ctx->retention)
 *   could still accept it. */
#ifndef SS_SESSION_H
#define SS_SESSION_H

#include <apr_tables.h>

#include "ss_expiry.h"
#include "ss_id.h"
#include "ss_owner.h"
#include "ss_record.h"
#include "ss_store.h"

/* Store lookups per request: several cookie paths can each send one ID. */
#define SS_SESSION_MAX_CANDIDATES 4

/* A commit that meets other writes merges again and again (with random
 * pauses) for at most this long, and at most this many times. */
#define SS_SESSION_MERGE_BUDGET apr_time_from_sec(1)
#define SS_SESSION_MERGE_RETRIES 64

typedef struct {
    ss_store_t *store;
    ss_expiry_t expiry;    /* this location's timeouts: they judge every load */
    ss_expiry_t retention; /* the server's most lenient ones: the store keeps a record this long */
    apr_size_t max_size;   /* encoded record limit in bytes */
    /* How far mod_session's "expiry" entry (SessionMaxAge) may move before an
     * otherwise unchanged session is written again; 0 when it is not used. */
    apr_interval_time_t expiry_slack;
} ss_session_ctx_t;

typedef enum {
    SS_SESSION_NONE,      /* no live session: the application starts empty */
    SS_SESSION_LOADED,    /* a live session, as the store handed it out */
    SS_SESSION_STORE_DOWN /* the store could not answer: nothing may be written */
} ss_session_state_e;

typedef enum {
    SS_COMMIT_UNCHANGED, /* nothing to write */
    SS_COMMIT_WRITTEN,   /* stored under id */
    SS_COMMIT_ENDED,     /* the session was ended: record deleted */
    SS_COMMIT_GONE,      /* ended meanwhile by another request: the changes are dropped */
    SS_COMMIT_FAILED     /* not saved: rv says why; the response must not claim success */
} ss_commit_e;

/* What the request did, for ss_session_commit. */
#define SS_COMMIT_LOGOUT 1  /* the request is a logout */
#define SS_COMMIT_CHANGED 2 /* the application wrote to the session, if only to empty it */

/* What a commit's merge did: all zero when no other request's write was in
 * its way. The host counts them (the module: ss_metrics, every process). */
typedef struct {
    unsigned conflicts;   /* compare-and-sets that found another request's write */
    unsigned merged;      /* retries with this request's change merged in */
    unsigned overwritten; /* retries writing the whole payload (not mergeable) */
    int gave_up;          /* the commit failed after SS_SESSION_MERGE_RETRIES or the budget */
} ss_session_merge_t;

typedef struct {
    ss_session_state_e state;
    apr_status_t store_rv; /* with SS_SESSION_STORE_DOWN: the store's error */
    const char *id;        /* the live session's ID, NULL when none */
    ss_key_t key;          /* the store key of id (or of ended_id), derived once */
    ss_key_t named[SS_SESSION_MAX_CANDIDATES]; /* keys of the well-formed IDs looked up */
    int nnamed;
    const char *owner;      /* "" when anonymous */
    apr_time_t created;     /* with id */
    const char *payload;    /* as loaded; NULL when none */
    apr_uint32_t revision;  /* the record's, as loaded (or last written) */
    const char *ended_id;   /* a session this request ended: deleted at commit */
    int cookie_seen;        /* the browser sent our cookie, valid or not */
    int malformed, unknown; /* cookie values skipped at load */
    int expired;            /* of the unknown, records the store held but judged expired */
    /* Set by ss_session_commit. */
    ss_commit_e outcome;
    apr_status_t rv;    /* with SS_COMMIT_FAILED */
    const char *cookie; /* Set-Cookie to send: a new ID, "" to clear, NULL none */
    ss_session_merge_t merge;
} ss_session_t;

/* Find the session among the cookie values (const char *) the browser sent.
 * Never fails: the outcome is in sess->state. */
void ss_session_load(const ss_session_ctx_t *ctx, const apr_array_header_t *cookies, apr_time_t now,
                     apr_pool_t *p, ss_session_t *sess);

/* The request's user is now known (NULL or "" when it is not). Returns 1
 * when the loaded session belonged to another named user and was dropped:
 * the host must hand the application an empty session instead. */
int ss_session_claim(ss_session_t *sess, const char *user);

/* Decide and carry out the save. payload: what the application left, NULL
 * when the session holds no data; what: SS_COMMIT_* flags. Sets
 * sess->outcome, rv and cookie; returns sess->rv. An owner change noticed
 * only here (no ss_session_claim since the user became known) ends the
 * session without writing: the payload may hold the previous owner's data. */
apr_status_t ss_session_commit(const ss_session_ctx_t *ctx, ss_session_t *sess, const char *user,
                               const char *payload, int what, apr_time_t now, apr_pool_t *p);

/* "Log out everywhere": what a response asked for with the revoke header
 * (SessionStoreRevokeHeader). */
typedef enum {
    SS_REVOKE_NONE,  /* no header, or a value that is not one of these */
    SS_REVOKE_USER,  /* "user": every session of the owner, this one included */
    SS_REVOKE_OTHERS /* "others": every session of the owner but this one */
} ss_revoke_e;

/* The header's value, case-insensitive, blanks around it ignored. */
ss_revoke_e ss_session_revoke_parse(const char *value);

/* After ss_session_commit: end the sessions of the owner (user when named,
 * else the session's) in the store, on every node sharing it, through the
 * store's per-owner index. SS_REVOKE_USER also ends every session the
 * browser's cookies named and clears the cookie (outcome SS_COMMIT_ENDED);
 * SS_REVOKE_OTHERS keeps the current session and its cookie. An anonymous
 * request has no owner: nothing is ended. A store failure is a failed
 * commit (SS_COMMIT_FAILED, returned): the response must not say the
 * sessions ended. *count (may be NULL): sessions ended. */
apr_status_t ss_session_revoke(const ss_session_ctx_t *ctx, ss_session_t *sess, const char *user,
                               ss_revoke_e what, apr_time_t now, apr_size_t *count);
/* Whether two mod_session payloads hold the same data, ignoring an "expiry"
 * entry that moved by less than slack (microseconds; its value is in
 * microseconds too). */
int ss_session_payload_same(const char *a, const char *b, apr_interval_time_t slack);

#endif
