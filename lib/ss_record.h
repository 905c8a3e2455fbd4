/* ss_record.h - the stored form of one session.
 *
 * Layout (all integers big-endian):
 *   0  'S' 'S'        magic
 *   2  version        SS_RECORD_VERSION
 *   3  flags          0, reserved
 *   4  created        apr_time_t, microseconds
 *  12  accessed       apr_time_t, microseconds (rewritten in place by a touch)
 *  20  user length    u16
 *  22  payload length u32
 *  26  user bytes, then payload bytes
 * The payload is mod_session's encoded string, opaque here (it may be
 * encrypted by mod_session_crypto). A decoder rejects anything that does not
 * add up exactly, so a truncated or hostile value is "no session". */
#ifndef SS_RECORD_H
#define SS_RECORD_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

#define SS_RECORD_VERSION 1
#define SS_RECORD_HEADER_LEN 26
#define SS_RECORD_ACCESSED_OFFSET 12
#define SS_RECORD_USER_MAX 0xffff

typedef struct {
    apr_time_t created;
    apr_time_t accessed;
    const char *user;    /* owning user, "" when anonymous */
    const char *payload; /* NUL-terminated copy of the payload */
    apr_size_t payload_len;
} ss_record_t;

/* Encoded size of rec. */
apr_size_t ss_record_size(const ss_record_t *rec);

/* Encode rec into a pool buffer. APR_EINVAL when the user is too long. */
apr_status_t ss_record_encode(const ss_record_t *rec, apr_pool_t *p, char **buf, apr_size_t *len);

/* Decode buf into *rec (strings copied into p). APR_ENOTIMPL for a
 * well-formed header of a newer version (a rolling upgrade: another node
 * reads it), APR_EINVAL on any other mismatch. */
apr_status_t ss_record_decode(const char *buf, apr_size_t len, apr_pool_t *p, ss_record_t *rec);

/* Read the two timestamps without decoding the rest (for backends that check
 * expiry before copying a record out). APR_EINVAL when buf is not a record,
 * APR_ENOTIMPL when it is one of a newer version. */
apr_status_t ss_record_peek_times(const unsigned char *buf, apr_size_t len, apr_time_t *created,
                                  apr_time_t *accessed);

/* Rewrite the accessed timestamp of an encoded record in place. */
void ss_record_poke_accessed(unsigned char *buf, apr_time_t accessed);

#endif
