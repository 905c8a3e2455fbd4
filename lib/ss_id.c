/* ss_id.c - session IDs and the store keys derived from them. */
#include <string.h>

#include <apr_general.h>

#include "ss_id.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

apr_status_t ss_id_generate(char *id)
{
    unsigned char raw[SS_ID_BYTES];
    apr_size_t i, o = 0;
    apr_status_t rv;

    rv = apr_generate_random_bytes(raw, sizeof(raw));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* 32 bytes = 10 groups of 3 and 2 left over: 40 + 3 characters. */
    for (i = 0; i + 3 <= sizeof(raw); i += 3) {
        apr_uint32_t v = (raw[i] << 16) | (raw[i + 1] << 8) | raw[i + 2];
        id[o++] = b64url[(v >> 18) & 63];
        id[o++] = b64url[(v >> 12) & 63];
        id[o++] = b64url[(v >> 6) & 63];
        id[o++] = b64url[v & 63];
    }
    {
        apr_uint32_t v = (raw[i] << 8) | raw[i + 1];
        id[o++] = b64url[(v >> 10) & 63];
        id[o++] = b64url[(v >> 4) & 63];
        id[o++] = b64url[(v << 2) & 63];
    }
    id[o] = '\0';
    memset(raw, 0, sizeof(raw));
    return APR_SUCCESS;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

int ss_id_is_valid(const char *s, apr_size_t len)
{
    apr_size_t i;
    int last;

    if (!s || len != SS_ID_LEN) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (b64url_value(s[i]) < 0) {
            return 0;
        }
    }
    /* The last character encodes 4 bits; the 2 low bits must be zero, so
     * every ID has exactly one spelling. */
    last = b64url_value(s[len - 1]);
    return (last & 3) == 0;
}

apr_status_t ss_id_key(const char *id, ss_key_t *key)
{
    apr_size_t id_len = strlen(id);
    apr_status_t rv;

    key->sealable = 0;
    rv = ss_seal_sha256(id, id_len, key->bytes);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = ss_seal_key(id, id_len, key->seal);
    key->sealable = rv == APR_SUCCESS;
    return rv;
}

#define TAG_LEN 8 /* hex digits of ss_key_tag */

/* Lower-case hex of the key's first n bytes into out (2n characters). */
static void hex_of(const ss_key_t *key, int n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[key->bytes[i] >> 4];
        out[2 * i + 1] = hex[key->bytes[i] & 15];
    }
}

void ss_key_hex(const ss_key_t *key, char *out)
{
    hex_of(key, SS_KEY_BYTES, out);
    out[SS_KEY_HEX_LEN] = '\0';
}

/* Made for every request that has a session (a log note): the 4 bytes it
 * shows, not the whole key. */
const char *ss_key_tag(const ss_key_t *key, apr_pool_t *p)
{
    char *tag = apr_palloc(p, TAG_LEN + 1);

    hex_of(key, TAG_LEN / 2, tag);
    tag[TAG_LEN] = '\0';
    return tag;
}
