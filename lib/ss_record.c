/* ss_record.c - encoding and decoding of stored sessions. */
#include <string.h>

#include <apr_strings.h>

#include "ss_record.h"

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

apr_size_t ss_record_size(const ss_record_t *rec)
{
    return SS_RECORD_HEADER_LEN + strlen(rec->user) + rec->payload_len;
}

apr_status_t ss_record_encode(const ss_record_t *rec, apr_pool_t *p, char **buf, apr_size_t *len)
{
    apr_size_t user_len = strlen(rec->user);
    unsigned char *out;

    if (user_len > SS_RECORD_USER_MAX || rec->payload_len > 0xffffffffUL) {
        return APR_EINVAL;
    }
    *len = SS_RECORD_HEADER_LEN + user_len + rec->payload_len;
    out = apr_palloc(p, *len);
    out[0] = 'S';
    out[1] = 'S';
    out[2] = SS_RECORD_VERSION;
    out[3] = 0;
    put_time(out + 4, rec->created);
    put_time(out + SS_RECORD_ACCESSED_OFFSET, rec->accessed);
    put_u16(out + 20, (apr_uint32_t)user_len);
    put_u32(out + 22, (apr_uint32_t)rec->payload_len);
    memcpy(out + SS_RECORD_HEADER_LEN, rec->user, user_len);
    memcpy(out + SS_RECORD_HEADER_LEN + user_len, rec->payload, rec->payload_len);
    *buf = (char *)out;
    return APR_SUCCESS;
}

apr_status_t ss_record_peek_times(const unsigned char *buf, apr_size_t len, apr_time_t *created,
                                  apr_time_t *accessed)
{
    if (len < SS_RECORD_HEADER_LEN || buf[0] != 'S' || buf[1] != 'S' || buf[2] == 0) {
        return APR_EINVAL;
    }
    if (buf[2] > SS_RECORD_VERSION) {
        return APR_ENOTIMPL; /* written by a newer node: not ours to judge */
    }
    *created = get_time(buf + 4);
    *accessed = get_time(buf + SS_RECORD_ACCESSED_OFFSET);
    return APR_SUCCESS;
}

void ss_record_poke_accessed(unsigned char *buf, apr_time_t accessed)
{
    put_time(buf + SS_RECORD_ACCESSED_OFFSET, accessed);
}

apr_status_t ss_record_decode(const char *buf, apr_size_t len, apr_pool_t *p, ss_record_t *rec)
{
    const unsigned char *in = (const unsigned char *)buf;
    apr_size_t user_len, payload_len;

    apr_status_t rv;

    if (!buf) {
        return APR_EINVAL;
    }
    rv = ss_record_peek_times(in, len, &rec->created, &rec->accessed);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (in[3] != 0) {
        return APR_EINVAL;
    }
    user_len = get_u16(in + 20);
    payload_len = get_u32(in + 22);
    /* Not "user_len + payload_len != len - header": with a 32-bit size_t
     * that sum can wrap around and let a hostile payload length through. */
    if (user_len > len - SS_RECORD_HEADER_LEN ||
        payload_len != len - SS_RECORD_HEADER_LEN - user_len) {
        return APR_EINVAL;
    }
    /* Both strings are NUL-terminated for the caller: an embedded NUL would
     * silently truncate them, so it is refused. */
    if (memchr(in + SS_RECORD_HEADER_LEN, '\0', user_len + payload_len)) {
        return APR_EINVAL;
    }
    rec->user = apr_pstrmemdup(p, buf + SS_RECORD_HEADER_LEN, user_len);
    rec->payload = apr_pstrmemdup(p, buf + SS_RECORD_HEADER_LEN + user_len, payload_len);
    rec->payload_len = payload_len;
    return APR_SUCCESS;
}
