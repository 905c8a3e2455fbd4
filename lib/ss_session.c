/* ss_session.c - one request's session, and the policy that governs it. */
#include <string.h>
#include <strings.h>

#include <apr_atomic.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "ss_log.h"
#include "ss_merge.h"
#include "ss_session.h"

#define EXPIRY_ENTRY "expiry="
#define OVERSIZE_LOG_INTERVAL apr_time_from_sec(60)

void ss_session_load(const ss_session_ctx_t *ctx, const apr_array_header_t *cookies, apr_time_t now,
                     apr_pool_t *p, ss_session_t *sess)
{
    int i, tried = 0;

    memset(sess, 0, sizeof(*sess));
    sess->owner = "";
    if (!cookies || !cookies->nelts) {
        return;
    }
    sess->cookie_seen = 1;
    for (i = 0; i < cookies->nelts && tried < SS_SESSION_MAX_CANDIDATES; i++) {
        const char *id = APR_ARRAY_IDX(cookies, i, const char *);
        ss_record_t rec = {0, 0, NULL, NULL, 0, 0};
        apr_status_t rv;

        if (!ss_id_is_valid(id, strlen(id))) {
            sess->malformed++;
            continue;
        }
        tried++;
        rv = ss_id_key(id, &sess->key);
        if (rv == APR_SUCCESS) {
            sess->named[sess->nnamed++] = sess->key;
            rv = ctx->store->ops->load(ctx->store, &sess->key, &ctx->expiry, &ctx->retention, now,
                                       p, &rec);
        }
        /* The backend judged too; judging the decoded timestamps here keeps a
         * backend bug or a clock step from ever handing out a dead session. */
        if (rv == APR_SUCCESS &&
            ss_expiry_check(&ctx->expiry, rec.created, rec.accessed, now) != SS_LIVE) {
            rv = SS_EEXPIRED;
        }
        if (rv == SS_EEXPIRED) { /* not adopted, like an unknown ID: only counted apart */
            sess->expired++;
            rv = APR_NOTFOUND;
        }
        if (rv == APR_SUCCESS) {
            sess->state = SS_SESSION_LOADED;
            sess->id = id;
            sess->owner = rec.user;
            sess->created = rec.created;
            sess->payload = rec.payload;
            sess->revision = rec.revision;
            return;
        }
        if (rv != APR_NOTFOUND) {
            sess->state = SS_SESSION_STORE_DOWN;
            sess->store_rv = rv;
            return;
        }
        sess->unknown++;
    }
}

int ss_session_claim(ss_session_t *sess, const char *user)
{
    if (sess->state != SS_SESSION_LOADED || !user || !*user || !*sess->owner ||
        !strcmp(user, sess->owner)) {
        return 0;
    }
    /* Another named user's session: never handed out, ended at commit. */
    sess->ended_id = sess->id;
    sess->id = NULL;
    sess->owner = "";
    sess->payload = NULL;
    sess->state = SS_SESSION_NONE;
    return 1;
}

/* Skip mod_session's expiry entries at s (the start of a pair): the next
 * pair that is not one; the value of the last one skipped into *expiry. */
static const char *skip_expiry(const char *s, apr_int64_t *expiry)
{
    while (!strncmp(s, EXPIRY_ENTRY, sizeof(EXPIRY_ENTRY) - 1)) {
        *expiry = apr_atoi64(s + sizeof(EXPIRY_ENTRY) - 1);
        s += strcspn(s, "&");
        s += *s == '&';
    }
    return s;
}

int ss_session_payload_same(const char *a, const char *b, apr_interval_time_t slack)
{
    apr_int64_t ea = 0, eb = 0, diff;

    for (;;) {
        apr_size_t la, lb;

        a = skip_expiry(a, &ea);
        b = skip_expiry(b, &eb);
        if (!*a || !*b) {
            break;
        }
        la = strcspn(a, "&");
        lb = strcspn(b, "&");
        if (la != lb || memcmp(a, b, la)) {
            return 0;
        }
        a += la + (a[la] == '&');
        b += lb + (b[lb] == '&');
    }
    if (*a || *b) {
        return 0;
    }
    diff = ea > eb ? ea - eb : eb - ea;
    return diff == 0 || diff < slack;
}

/* One line a minute at most (per process): a page that always writes too
 * much would otherwise log on every request. Threads race for the line with
 * a compare-and-swap on the second from which the next may be written: 60 s
 * after the last one (not the next calendar minute, which would let two
 * lines a second apart through). */
static int log_turn(volatile apr_uint32_t *next_second, volatile apr_uint32_t *suppressed,
                    apr_time_t now)
{
    apr_uint32_t second = (apr_uint32_t)apr_time_sec(now), next = apr_atomic_read32(next_second);

    if (second < next || apr_atomic_cas32(next_second, second + 60, next) != next) {
        apr_atomic_inc32(suppressed);
        return 0;
    }
    return 1;
}

static void log_oversize(const ss_session_ctx_t *ctx, const ss_record_t *rec, apr_time_t now)
{
    static volatile apr_uint32_t next_second, suppressed;

    if (!log_turn(&next_second, &suppressed, now)) {
        return;
    }
    ss_log(SS_LOG_WARNING, APR_ENOSPC,
           "session not saved: %" APR_SIZE_T_FMT " bytes exceed the limit of %" APR_SIZE_T_FMT
           " (SessionStoreMaxSessionSize); the previous version is kept (%u more such "
           "refusals since the last line)",
           ss_record_size(rec, ctx->store->form), ctx->max_size, apr_atomic_xchg32(&suppressed, 0));
}

static void log_gave_up(const ss_session_t *sess, int tries, apr_time_t now, apr_pool_t *p)
{
    static volatile apr_uint32_t next_second, suppressed;

    if (!log_turn(&next_second, &suppressed, now)) {
        return;
    }
    ss_log(SS_LOG_WARNING, 0,
           "session %s not saved: other requests of the session wrote it %d times while this "
           "one merged its change, for %d ms; the request fails (%u more such failures since the "
           "last line)",
           ss_key_tag(&sess->key, p), tries, (int)apr_time_as_msec(SS_SESSION_MERGE_BUDGET),
           apr_atomic_xchg32(&suppressed, 0));
}

static apr_status_t failed(const ss_session_ctx_t *ctx, ss_session_t *sess, apr_status_t rv,
                           const ss_record_t *rec, apr_time_t now)
{
    if (rv == APR_ENOSPC && rec) {
        log_oversize(ctx, rec, now);
    }
    sess->outcome = SS_COMMIT_FAILED;
    sess->rv = rv;
    sess->cookie = NULL;
    return rv;
}

static apr_status_t save(const ss_session_ctx_t *ctx, const ss_key_t *key, const ss_record_t *rec,
                         ss_save_mode_e mode, apr_pool_t *p)
{
    apr_time_t deadline = ss_expiry_deadline(&ctx->retention, rec->created, rec->accessed);

    return ctx->store->ops->save(ctx->store, key, rec, deadline, mode, ctx->max_size, p);
}

/* Index a fresh key under its named owner before its first write: a
 * session that exists is always in its owner's index. */
static apr_status_t index_new(const ss_session_ctx_t *ctx, const ss_key_t *key,
                              const ss_record_t *rec)
{
    apr_time_t until = 0;
    ss_owner_t owner;
    apr_status_t rv;

    if (!*rec->user) {
        return APR_SUCCESS;
    }
    rv = ss_owner_hash(rec->user, &owner);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* The absolute deadline: no touch moves it. Without one, the store keeps
     * the entry as long as the record exists. */
    if (ctx->retention.absolute > 0) {
        until = rec->created + ctx->retention.absolute;
    }
    return ctx->store->ops->index_add(ctx->store, &owner, key, until, rec->accessed);
}

/* The pause before retry number `retry` (the first one goes at once):
 * random, below 2 ms before the second, doubling, below 32 ms at most, so
 * that the writers of one session stop colliding (bench/run's shared-session
 * rows: smaller pauses collide more, and fail more requests after
 * SS_SESSION_MERGE_BUDGET). */
static void back_off(int retry)
{
    apr_uint32_t r = 0, ceiling = 1000u << (retry < 5 ? retry : 5);

    if (apr_generate_random_bytes((unsigned char *)&r, sizeof(r)) == APR_SUCCESS) {
        apr_sleep((apr_interval_time_t)(r % ceiling));
    }
}

/* Rewrite the session this request loaded with rec (its payload: what the
 * application left), as a compare-and-set on the revision it loaded. When
 * another request wrote first (SS_ECONFLICT), load the session again, apply
 * this request's change to it (ss_merge.h) and write the result on the
 * revision just loaded; again after a random pause, for at most
 * SS_SESSION_MERGE_BUDGET (real time) and SS_SESSION_MERGE_RETRIES times. A payload
 * that cannot be merged (not mod_session's identity encoding:
 * mod_session_crypto) is written whole over the newer revision: the later
 * write wins for the whole session. APR_NOTFOUND when the session is gone
 * (never brought back). On APR_SUCCESS rec is what the store holds now; *wrote
 * is 0 when the merge left the stored session as it was (nothing written). */
static apr_status_t update(const ss_session_ctx_t *ctx, ss_session_t *sess, ss_record_t *rec,
                           apr_time_t now, apr_pool_t *p, int *wrote)
{
    const char *payload = rec->payload;
    ss_merge_change_t *change = NULL;
    apr_status_t rv, mergeable = APR_SUCCESS;
    apr_time_t start = apr_time_now();
    int retries = 0;

    *wrote = 1;
    rec->revision = sess->revision + 1;
    for (;;) {
        ss_record_t cur;

        rv = save(ctx, &sess->key, rec, SS_SAVE_UPDATE, p);
        if (rv != SS_ECONFLICT) {
            return rv;
        }
        sess->merge.conflicts++;
        if (retries == SS_SESSION_MERGE_RETRIES ||
            apr_time_now() - start >= SS_SESSION_MERGE_BUDGET) {
            sess->merge.gave_up = 1;
            log_gave_up(sess, retries + 1, now, p);
            return rv;
        }
        if (retries) {
            back_off(retries);
        }
        retries++;
        if (!change && mergeable == APR_SUCCESS) {
            mergeable = ss_merge_diff(sess->payload, payload, p, &change);
        }
        memset(&cur, 0, sizeof(cur));
        rv = ctx->store->ops->load(ctx->store, &sess->key, &ctx->expiry, &ctx->retention, now, p,
                                   &cur);
        if (rv == SS_EEXPIRED) {
            rv = APR_NOTFOUND; /* expired meanwhile: as good as ended */
        }
        if (rv != APR_SUCCESS) {
            return rv; /* APR_NOTFOUND: ended meanwhile, and it stays so */
        }
        if (change && ss_merge_apply(change, cur.payload, p, &rec->payload) == APR_SUCCESS) {
            sess->merge.merged++;
            if (!strcmp(rec->payload, cur.payload)) {
                *rec = cur; /* the change is in already: nothing to write */
                *wrote = 0;
                return APR_SUCCESS;
            }
        } else {
            rec->payload = payload; /* the later write wins, whole */
            sess->merge.overwritten++;
        }
        rec->payload_len = strlen(rec->payload);
        rec->created = cur.created;
        rec->revision = cur.revision + 1;
    }
}

/* Store rec under a fresh ID, into sess->id and sess->key. */
static apr_status_t write_new(const ss_session_ctx_t *ctx, ss_session_t *sess,
                              const ss_record_t *rec, apr_pool_t *p)
{
    char fresh[SS_ID_LEN + 1];
    ss_key_t key;
    apr_status_t rv = APR_EGENERAL;
    int tries;

    /* A collision of 256-bit random IDs means a broken random source; one
     * retry, then give up rather than overwrite someone's session. */
    for (tries = 0; tries < 2; tries++) {
        rv = ss_id_generate(fresh);
        if (rv == APR_SUCCESS) {
            rv = ss_id_key(fresh, &key);
        }
        if (rv == APR_SUCCESS) {
            rv = index_new(ctx, &key, rec);
        }
        if (rv == APR_SUCCESS) {
            rv = save(ctx, &key, rec, SS_SAVE_NEW, p);
        }
        if (rv != APR_EEXIST) {
            break;
        }
    }
    if (rv == APR_SUCCESS) {
        sess->id = apr_pstrdup(p, fresh);
        sess->key = key;
    }
    return rv;
}

/* Logout, or nothing left in the session: delete every session the
 * browser's cookies name (the loaded one, one this location judged expired
 * but a lenient one still serves, one of a previous owner) and clear the
 * cookie. A failed delete fails the commit: the old cookie still works. */
static apr_status_t end_session(const ss_session_ctx_t *ctx, ss_session_t *sess, apr_time_t now)
{
    int i;

    for (i = 0; i < sess->nnamed; i++) {
        apr_status_t rv = ctx->store->ops->remove(ctx->store, &sess->named[i]);

        if (rv != APR_SUCCESS) {
            return failed(ctx, sess, rv, NULL, now);
        }
    }
    sess->outcome = sess->nnamed ? SS_COMMIT_ENDED : SS_COMMIT_UNCHANGED;
    sess->cookie = sess->cookie_seen ? "" : NULL;
    sess->id = sess->ended_id = NULL;
    sess->payload = NULL;
    sess->nnamed = 0;
    return APR_SUCCESS;
}

/* A new ID for rec. The old record goes once the new one is stored; if it
 * cannot be deleted, the new one is withdrawn and the commit fails, so an
 * old ID never outlives a rotation that was reported done. */
static apr_status_t rotate(const ss_session_ctx_t *ctx, ss_session_t *sess, const ss_record_t *rec,
                           apr_time_t now, apr_pool_t *p)
{
    int had_old = sess->id || sess->ended_id;
    ss_key_t old = sess->key;
    apr_status_t rv = write_new(ctx, sess, rec, p);

    if (rv != APR_SUCCESS) {
        sess->key = old;
        return failed(ctx, sess, rv, rec, now);
    }
    if (had_old) {
        rv = ctx->store->ops->remove(ctx->store, &old);
        if (rv != APR_SUCCESS) {
            ctx->store->ops->remove(ctx->store, &sess->key);
            sess->id = NULL;
            sess->key = old;
            return failed(ctx, sess, rv, NULL, now);
        }
    }
    sess->ended_id = NULL;
    sess->outcome = SS_COMMIT_WRITTEN;
    sess->cookie = sess->id;
    return APR_SUCCESS;
}

apr_status_t ss_session_commit(const ss_session_ctx_t *ctx, ss_session_t *sess, const char *user,
                               const char *payload, int what, apr_time_t now, apr_pool_t *p)
{
    const char *u = user ? user : "";
    ss_record_t rec;
    apr_status_t rv;
    int wrote;

    sess->rv = APR_SUCCESS;
    sess->cookie = NULL;
    memset(&sess->merge, 0, sizeof(sess->merge));
    if (sess->state == SS_SESSION_STORE_DOWN) {
        /* The session may well exist: a change now would replace it, and
         * an emptied one would survive a response saying it ended. */
        if (payload || what) {
            return failed(ctx, sess, sess->store_rv, NULL, now);
        }
        sess->outcome = SS_COMMIT_UNCHANGED;
        return APR_SUCCESS;
    }
    if ((what & SS_COMMIT_LOGOUT) || ss_session_claim(sess, u)) {
        return end_session(ctx, sess, now);
    }
    if (!payload) {
        if (sess->id || sess->ended_id) {
            return end_session(ctx, sess, now); /* emptied, or a previous owner's */
        }
        /* Nothing here, which is not the same as nothing anywhere: a session
         * this location judged expired may live on for a lenient one. */
        sess->outcome = SS_COMMIT_UNCHANGED;
        return APR_SUCCESS;
    }
    rec.accessed = now;
    rec.payload = payload;
    rec.payload_len = strlen(payload);
    rec.revision = sess->revision + 1; /* compared with what the store holds now */
    if (!sess->id || (*u && strcmp(u, sess->owner))) {
        /* A new session, or an anonymous one logging in: a new ID. */
        rec.created = now;
        rec.user = u;
        rv = rotate(ctx, sess, &rec, now, p);
        if (rv == APR_SUCCESS) {
            sess->owner = u;
            sess->created = now;
            sess->payload = payload;
            sess->revision = rec.revision;
        }
        return rv;
    }
    if (sess->payload && ss_session_payload_same(sess->payload, payload, ctx->expiry_slack)) {
        sess->outcome = SS_COMMIT_UNCHANGED; /* the load already touched it */
        return APR_SUCCESS;
    }
    rec.created = sess->created;
    rec.user = sess->owner;
    rv = update(ctx, sess, &rec, now, p, &wrote);
    if (rv == APR_NOTFOUND) {
        /* Ended meanwhile (a logout elsewhere, a rotation by a concurrent
         * login) or expired: writing it back would bring it back, and
         * clearing the cookie could clear the rotation's newer one. */
        sess->outcome = SS_COMMIT_GONE;
        sess->id = NULL;
        return APR_SUCCESS;
    }
    /* SS_ECONFLICT here: still another write in the way after every retry. */
    if (rv != APR_SUCCESS) {
        return failed(ctx, sess, rv, &rec, now);
    }
    sess->outcome = wrote ? SS_COMMIT_WRITTEN : SS_COMMIT_UNCHANGED;
    sess->payload = rec.payload;
    sess->created = rec.created;
    sess->revision = rec.revision;
    return APR_SUCCESS;
}

ss_revoke_e ss_session_revoke_parse(const char *value)
{
    apr_size_t n;

    if (!value) {
        return SS_REVOKE_NONE;
    }
    value += strspn(value, " \t");
    n = strcspn(value, " \t");
    if (value[n + strspn(value + n, " \t")]) {
        return SS_REVOKE_NONE; /* more than one word */
    }
    if (n == 4 && !strncasecmp(value, "user", 4)) {
        return SS_REVOKE_USER;
    }
    if (n == 6 && !strncasecmp(value, "others", 6)) {
        return SS_REVOKE_OTHERS;
    }
    return SS_REVOKE_NONE;
}

apr_status_t ss_session_revoke(const ss_session_ctx_t *ctx, ss_session_t *sess, const char *user,
                               ss_revoke_e what, apr_time_t now, apr_size_t *count)
{
    const char *owner = user && *user ? user : sess->owner;
    int keep = what == SS_REVOKE_OTHERS && sess->id;
    apr_size_t n = 0;
    ss_owner_t hash;
    apr_status_t rv;

    if (count) {
        *count = 0;
    }
    if (what == SS_REVOKE_NONE || !owner || !*owner) {
        return APR_SUCCESS;
    }
    if (sess->state == SS_SESSION_STORE_DOWN || sess->outcome == SS_COMMIT_FAILED) {
        return failed(ctx, sess, sess->state == SS_SESSION_STORE_DOWN ? sess->store_rv : sess->rv,
                      NULL, now);
    }
    rv = ss_owner_hash(owner, &hash);
    if (rv == APR_SUCCESS) {
        rv = ctx->store->ops->revoke_owner(ctx->store, &hash, keep ? &sess->key : NULL, now, &n);
    }
    if (rv != APR_SUCCESS) {
        return failed(ctx, sess, rv, NULL, now);
    }
    if (count) {
        *count = n;
    }
    if (what == SS_REVOKE_OTHERS) {
        return APR_SUCCESS;
    }
    /* This one too, and whatever the cookies named (a session written before
     * the index existed, another owner's): the browser keeps nothing. */
    if (sess->id) {
        rv = ctx->store->ops->remove(ctx->store, &sess->key);
        if (rv != APR_SUCCESS) {
            return failed(ctx, sess, rv, NULL, now);
        }
        sess->cookie_seen = 1; /* its cookie is cleared, even one set by this response */
    }
    rv = end_session(ctx, sess, now);
    if (rv == APR_SUCCESS) {
        sess->outcome = SS_COMMIT_ENDED;
    }
    return rv;
}
