/* ss_merge.c - merging one request's change to a session into the session
 * as another request left it (mod_session's identity encoding). */
#include <string.h>

#include <apr_escape.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "ss_merge.h"

/* One side of a part as the identity encoder writes it: letters, digits,
 * "-._~*+" and %XX escapes; no '=', '&' or '/'. */
static int part_is_encoded(const char *s, apr_size_t n)
{
    apr_size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '%') {
            if (i + 2 >= n || !apr_isxdigit(s[i + 1]) || !apr_isxdigit(s[i + 2])) {
                return 0;
            }
            i += 2;
        } else if (!apr_isalnum(c) && !strchr("-._~*+", c)) {
            return 0;
        }
    }
    return 1;
}

apr_status_t ss_merge_parse(const char *payload, apr_pool_t *p, apr_table_t **entries)
{
    apr_table_t *t = apr_table_make(p, 8);
    const char *s = payload;

    *entries = NULL;
    if (!s) {
        return APR_EINVAL;
    }
    for (;;) {
        apr_size_t n = strcspn(s, "&");
        const char *eq = memchr(s, '=', n);
        const char *key, *value;

        if (!eq || eq == s || !part_is_encoded(s, (apr_size_t)(eq - s)) ||
            !part_is_encoded(eq + 1, n - (apr_size_t)(eq - s) - 1)) {
            return APR_EINVAL;
        }
        /* NULL for a bad escape or an escaped NUL: never the encoder's. */
        key = apr_punescape_url(p, apr_pstrmemdup(p, s, (apr_size_t)(eq - s)), NULL, NULL, 1);
        value = apr_punescape_url(p, apr_pstrmemdup(p, eq + 1, n - (apr_size_t)(eq - s) - 1), NULL,
                                  NULL, 1);
        if (!key || !value) {
            return APR_EINVAL;
        }
        /* As mod_session reads it: an empty value is no entry, a later
         * duplicate replaces an earlier one. */
        if (*value) {
            apr_table_set(t, key, value);
        } else {
            apr_table_unset(t, key);
        }
        s += n;
        if (!*s++) {
            break;
        }
    }
    /* A session the module hands over holds at least one entry; "k=" alone
     * is what a base64 string with one '=' of padding looks like. */
    if (apr_is_empty_table(t)) {
        return APR_EINVAL;
    }
    *entries = t;
    return APR_SUCCESS;
}

const char *ss_merge_encode(const apr_table_t *entries, apr_pool_t *p)
{
    const apr_array_header_t *arr = apr_table_elts(entries);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *parts = apr_array_make(p, arr->nelts ? arr->nelts : 1, sizeof(char *));
    int i;

    for (i = 0; i < arr->nelts; i++) {
        APR_ARRAY_PUSH(parts, char *) = apr_pstrcat(p, apr_pescape_urlencoded(p, e[i].key), "=",
                                                    apr_pescape_urlencoded(p, e[i].val), NULL);
    }
    return apr_array_pstrcat(p, parts, '&');
}

apr_status_t ss_merge_diff(const char *loaded, const char *now, apr_pool_t *p,
                           ss_merge_change_t **change)
{
    apr_table_t *before, *after;
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    ss_merge_change_t *c;
    apr_status_t rv;
    int i;

    *change = NULL;
    rv = ss_merge_parse(loaded, p, &before);
    if (rv == APR_SUCCESS) {
        rv = ss_merge_parse(now, p, &after);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    c = apr_palloc(p, sizeof(*c));
    c->set = apr_table_make(p, 4);
    c->removed = apr_array_make(p, 2, sizeof(const char *));
    arr = apr_table_elts(after);
    e = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++) {
        const char *old = apr_table_get(before, e[i].key);

        if (!old || strcmp(old, e[i].val)) {
            apr_table_setn(c->set, e[i].key, e[i].val);
        }
    }
    arr = apr_table_elts(before);
    e = (const apr_table_entry_t *)arr->elts;
    for (i = 0; i < arr->nelts; i++) {
        if (!apr_table_get(after, e[i].key)) {
            APR_ARRAY_PUSH(c->removed, const char *) = e[i].key;
        }
    }
    *change = c;
    return APR_SUCCESS;
}

int ss_merge_change_empty(const ss_merge_change_t *change)
{
    return apr_is_empty_table(change->set) && !change->removed->nelts;
}

apr_status_t ss_merge_apply(const ss_merge_change_t *change, const char *current, apr_pool_t *p,
                            const char **merged)
{
    const apr_array_header_t *arr = apr_table_elts(change->set);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_table_t *t;
    apr_status_t rv;
    int i;

    *merged = NULL;
    rv = ss_merge_parse(current, p, &t);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < change->removed->nelts; i++) {
        apr_table_unset(t, APR_ARRAY_IDX(change->removed, i, const char *));
    }
    for (i = 0; i < arr->nelts; i++) {
        const char *have = apr_table_get(t, e[i].key);

        if (have && !strcasecmp(e[i].key, SS_MERGE_EXPIRY_KEY) &&
            apr_atoi64(have) > apr_atoi64(e[i].val)) {
            continue; /* never moved backwards */
        }
        apr_table_set(t, e[i].key, e[i].val);
    }
    *merged = ss_merge_encode(t, p);
    return APR_SUCCESS;
}
