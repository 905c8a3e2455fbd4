/* ss_record.c - encoding and decoding of stored sessions. */
#include <string.h>

#include <apr_strings.h>

#include "ss_record.h"

/* The authenticated data of a sealed record: the clear header but for the
 * accessed time (bytes 0..11 and 20..23), then the store key. */
#define AAD_LEN (12 + 4 + SS_KEY_BYTES)

static void put_u16(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_u32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_time(unsigned char *p, apr_time_t t)
{
    apr_uint64_t v = (apr_uint64_t)t;

    put_u32(p, (apr_uint32_t)(v >> 32));
    put_u32(p + 4, (apr_uint32_t)v);
}

static apr_uint32_t get_u16(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 8) | p[1];
}

static apr_uint32_t get_u32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16) | ((apr_uint32_t)p[2] << 8) |
           p[3];
}

static apr_time_t get_time(const unsigned char *p)
{
    return (apr_time_t)(((apr_uint64_t)get_u32(p) << 32) | get_u32(p + 4));
}

static void make_aad(const unsigned char *rec, const ss_key_t *key, unsigned char *aad)
{
    memcpy(aad, rec, 12);
    memcpy(aad + 12, rec + SS_RECORD_REVISION_OFFSET, 4);
    memcpy(aad + 16, key->bytes, SS_KEY_BYTES);
}

apr_size_t ss_record_size(const ss_record_t *rec, ss_record_form_e form)
{
    apr_size_t body = strlen(rec->user) + rec->payload_len;

    switch (form) {
    case SS_RECORD_FORM_V1:
        return SS_RECORD_V1_HEADER_LEN + body;
    case SS_RECORD_FORM_SEALED:
        return SS_RECORD_HEADER_LEN + SS_SEAL_OVERHEAD + 2 + body;
    default:
        return SS_RECORD_HEADER_LEN + 2 + body;
    }
}

static void put_head(unsigned char *out, int version, int flags, const ss_record_t *rec)
{
    out[0] = 'S';
    out[1] = 'S';
    out[2] = (unsigned char)version;
    out[3] = (unsigned char)flags;
    put_time(out + 4, rec->created);
    put_time(out + SS_RECORD_ACCESSED_OFFSET, rec->accessed);
}

apr_status_t ss_record_encode(const ss_record_t *rec, const ss_key_t *key, ss_record_form_e form,
                              apr_pool_t *p, char **buf, apr_size_t *len)
{
    apr_size_t user_len = strlen(rec->user);
    unsigned char *out, *body;

    if (user_len > SS_RECORD_USER_MAX || rec->payload_len > 0xffffffffUL - user_len - 64) {
        return APR_EINVAL;
    }
    if (form == SS_RECORD_FORM_SEALED && (!key || !key->sealable)) {
        return APR_EINVAL; /* never written unsealed by mistake */
    }
    *len = ss_record_size(rec, form);
    out = apr_palloc(p, *len);
    if (form == SS_RECORD_FORM_V1) {
        put_head(out, 1, 0, rec);
        put_u16(out + 20, (apr_uint32_t)user_len);
        put_u32(out + 22, (apr_uint32_t)rec->payload_len);
        memcpy(out + SS_RECORD_V1_HEADER_LEN, rec->user, user_len);
        memcpy(out + SS_RECORD_V1_HEADER_LEN + user_len, rec->payload, rec->payload_len);
        *buf = (char *)out;
        return APR_SUCCESS;
    }
    put_head(out, SS_RECORD_VERSION, form == SS_RECORD_FORM_SEALED ? SS_RECORD_FLAG_SEALED : 0,
             rec);
    put_u32(out + SS_RECORD_REVISION_OFFSET, rec->revision);
    body = out + SS_RECORD_HEADER_LEN;
    if (form == SS_RECORD_FORM_SEALED) {
        unsigned char aad[AAD_LEN], owner_len[2];
        const unsigned char *parts[3];
        apr_size_t lens[3];
        apr_status_t rv;

        make_aad(out, key, aad);
        put_u16(owner_len, (apr_uint32_t)user_len);
        parts[0] = owner_len;
        lens[0] = 2;
        parts[1] = (const unsigned char *)rec->user;
        lens[1] = user_len;
        parts[2] = (const unsigned char *)rec->payload;
        lens[2] = rec->payload_len;
        rv = ss_seal(key->seal, aad, sizeof(aad), parts, lens, 3, body);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    } else {
        put_u16(body, (apr_uint32_t)user_len);
        memcpy(body + 2, rec->user, user_len);
        memcpy(body + 2 + user_len, rec->payload, rec->payload_len);
    }
    *buf = (char *)out;
    return APR_SUCCESS;
}

apr_status_t ss_record_peek(const unsigned char *buf, apr_size_t len, ss_record_head_t *head)
{
    if (!buf || len < SS_RECORD_MIN_LEN || buf[0] != 'S' || buf[1] != 'S' || buf[2] == 0) {
        return APR_EINVAL;
    }
    if (buf[2] > SS_RECORD_VERSION) {
        return APR_ENOTIMPL; /* written by a newer node: not ours to judge */
    }
    head->version = buf[2];
    head->flags = buf[3];
    head->created = get_time(buf + 4);
    head->accessed = get_time(buf + SS_RECORD_ACCESSED_OFFSET);
    if (head->version == 1) {
        head->revision = 0;
        return head->flags ? APR_EINVAL : APR_SUCCESS;
    }
    head->revision = get_u32(buf + SS_RECORD_REVISION_OFFSET);
    if (head->flags & ~SS_RECORD_FLAG_SEALED) {
        return APR_EINVAL;
    }
    if ((head->flags & SS_RECORD_FLAG_SEALED) && len < SS_RECORD_SEALED_MIN_LEN) {
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

int ss_record_is_sealed(const char *buf, apr_size_t len)
{
    ss_record_head_t head;

    return ss_record_peek((const unsigned char *)buf, len, &head) == APR_SUCCESS &&
           (head.flags & SS_RECORD_FLAG_SEALED);
}

void ss_record_poke_accessed(unsigned char *buf, apr_time_t accessed)
{
    put_time(buf + SS_RECORD_ACCESSED_OFFSET, accessed);
}

/* Owner and payload from user_len bytes of owner at user, then payload_len
 * of payload. Both strings are NUL-terminated for the caller: an embedded
 * NUL would silently truncate them, so it is refused. */
static apr_status_t take_strings(const unsigned char *user, apr_size_t user_len,
                                 apr_size_t payload_len, apr_pool_t *p, ss_record_t *rec)
{
    if (memchr(user, '\0', user_len + payload_len)) {
        return APR_EINVAL;
    }
    rec->user = apr_pstrmemdup(p, (const char *)user, user_len);
    rec->payload = apr_pstrmemdup(p, (const char *)user + user_len, payload_len);
    rec->payload_len = payload_len;
    return APR_SUCCESS;
}

/* A v2 body in clear: owner length u16 | owner | payload, len bytes. */
static apr_status_t take_body(const unsigned char *body, apr_size_t len, apr_pool_t *p,
                              ss_record_t *rec)
{
    apr_size_t user_len;

    if (len < 2) {
        return APR_EINVAL;
    }
    user_len = get_u16(body);
    if (user_len > len - 2) {
        return APR_EINVAL;
    }
    return take_strings(body + 2, user_len, len - 2 - user_len, p, rec);
}

static apr_status_t decode_v1(const unsigned char *in, apr_size_t len, apr_pool_t *p,
                              ss_record_t *rec)
{
    apr_size_t user_len = get_u16(in + 20), payload_len = get_u32(in + 22);

    /* Not "user_len + payload_len != len - header": with a 32-bit size_t
     * that sum can wrap around and let a hostile payload length through. */
    if (user_len > len - SS_RECORD_V1_HEADER_LEN ||
        payload_len != len - SS_RECORD_V1_HEADER_LEN - user_len) {
        return APR_EINVAL;
    }
    return take_strings(in + SS_RECORD_V1_HEADER_LEN, user_len, payload_len, p, rec);
}

static apr_status_t decode_sealed(const unsigned char *in, apr_size_t len, const ss_key_t *key,
                                  apr_pool_t *p, ss_record_t *rec)
{
    apr_size_t sealed_len = len - SS_RECORD_HEADER_LEN, clear_len = sealed_len - SS_SEAL_OVERHEAD;
    unsigned char aad[AAD_LEN], *clear;
    apr_status_t rv;

    if (!key || !key->sealable) {
        return SS_RECORD_ENOKEY;
    }
    make_aad(in, key, aad);
    clear = apr_palloc(p, clear_len);
    rv = ss_unseal(key->seal, aad, sizeof(aad), in + SS_RECORD_HEADER_LEN, sealed_len, clear);
    if (rv == APR_SUCCESS) {
        rv = take_body(clear, clear_len, p, rec);
    }
    /* The session lives on in rec's copies; the pool's scratch forgets it. */
    memset(clear, 0, clear_len);
    return rv;
}

apr_status_t ss_record_decode(const char *buf, apr_size_t len, const ss_key_t *key, apr_pool_t *p,
                              ss_record_t *rec)
{
    const unsigned char *in = (const unsigned char *)buf;
    ss_record_head_t head;
    apr_status_t rv;

    rv = ss_record_peek(in, len, &head);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rec->created = head.created;
    rec->accessed = head.accessed;
    rec->revision = head.revision;
    if (head.version == 1) {
        return decode_v1(in, len, p, rec);
    }
    if (head.flags & SS_RECORD_FLAG_SEALED) {
        return decode_sealed(in, len, key, p, rec);
    }
    return take_body(in + SS_RECORD_HEADER_LEN, len - SS_RECORD_HEADER_LEN, p, rec);
}
