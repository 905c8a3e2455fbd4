/* ss_merge.h - merging one request's change to a session into the session
 * as another request left it.
 *
 * mod_session hands the store an encoded string (its "identity" encoding):
 * parts `key=value` joined by '&', key and value URL-encoded (space as '+').
 * mod_session reads it back into a table whose keys are case-insensitive:
 * a later duplicate key wins, a key with an empty value is no entry, a part
 * with a bad %-escape is skipped. Its own "expiry" entry (SessionMaxAge)
 * travels in the same string.
 *
 * A request's change is what it did to the table it loaded: the keys it set
 * or changed (with their new values) and the keys it removed. Applied to the
 * session as the store holds it now, the change overwrites those keys alone;
 * every other key keeps the value the store has. So two requests that change
 * different keys both win, and for one key the later write wins. The
 * "expiry" entry is never moved backwards: the merge keeps the later of the
 * two (a slow request must not shorten a session another request extended).
 *
 * Only what mod_session's identity encoder writes can be merged: every part
 * `key=value` with a non-empty key, nothing but letters, digits, "-._~*+" and
 * %XX escapes on either side of the one '=', and at least one entry with a
 * value. Anything else, in particular mod_session_crypto's ciphertext (one
 * base64 string: a '/', no '=' or a trailing '=' or "=="), is refused with
 * APR_EINVAL: the caller then cannot merge and falls back to overwriting the
 * whole session (last write wins, as without merging). */
#ifndef SS_MERGE_H
#define SS_MERGE_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* mod_session's own entry: SessionMaxAge's deadline, µs since the epoch. */
#define SS_MERGE_EXPIRY_KEY "expiry"

typedef struct {
    apr_table_t *set;            /* decoded key -> decoded new value: set or changed */
    apr_array_header_t *removed; /* const char *, decoded keys the request removed */
} ss_merge_change_t;

/* Decode payload into a new table (decoded keys and values, in the order
 * mod_session would build it, empty values dropped). APR_EINVAL when payload
 * is not an identity-encoded session (see above); *entries is then NULL. */
apr_status_t ss_merge_parse(const char *payload, apr_pool_t *p, apr_table_t **entries);

/* Encode entries as mod_session's identity encoder does: key=value joined by
 * '&' in table order, both URL-encoded. */
const char *ss_merge_encode(const apr_table_t *entries, apr_pool_t *p);

/* The change a request made: loaded is what it loaded, now what it leaves.
 * APR_EINVAL when either cannot be parsed. */
apr_status_t ss_merge_diff(const char *loaded, const char *now, apr_pool_t *p,
                           ss_merge_change_t **change);

/* True when the change sets and removes nothing. */
int ss_merge_change_empty(const ss_merge_change_t *change);

/* Apply change to current (the session as the store holds it now) into
 * *merged: removed keys go, set keys take their new value (in place when
 * current has them, appended otherwise), the "expiry" entry keeps the later
 * of the two. APR_EINVAL when current cannot be parsed. */
apr_status_t ss_merge_apply(const ss_merge_change_t *change, const char *current, apr_pool_t *p,
                            const char **merged);

#endif
