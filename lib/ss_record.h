/* ss_record.h - the stored form of one session (record format v2).
 *
 * Layout (all integers big-endian; docs/architecture.md has the table):
 *   0  'S' 'S'        magic
 *   2  version        SS_RECORD_VERSION (2)
 *   3  flags          bit 0 SS_RECORD_FLAG_SEALED; other bits must be 0
 *   4  created        apr_time_t, microseconds
 *  12  accessed       apr_time_t, microseconds (rewritten in place by a
 *                     touch: neither sealed nor authenticated)
 *  20  revision       u32: every write stores the loaded revision + 1
 *                     (wraps; compared for equality only)
 *  24  body, to the end of the value:
 *      unsealed: owner length u16 | owner | payload
 *      sealed:   nonce[12] | AES-256-GCM(owner length u16 | owner | payload)
 *                | tag[16], under the key ss_id_key derives from the ID;
 *                authenticated data: bytes 0..11 and 20..23 of the record,
 *                then the 32-byte store key.
 *
 * Version 1 (26-byte header: created, accessed, owner length u16, payload
 * length u32, then owner and payload) is still read, as revision 0, unsealed,
 * and written when asked (SS_RECORD_FORM_V1: a rolling upgrade while nodes
 * that only read v1 still share the store).
 *
 * The payload is mod_session's encoded string, opaque here (it may be
 * encrypted by mod_session_crypto too). A decoder rejects anything that does
 * not add up exactly, or does not authenticate, so a truncated, hostile or
 * tampered value is "no session". */
#ifndef SS_RECORD_H
#define SS_RECORD_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "ss_id.h"
#include "ss_seal.h"

#define SS_RECORD_VERSION 2
#define SS_RECORD_HEADER_LEN 24    /* v2: the body starts here */
#define SS_RECORD_V1_HEADER_LEN 26 /* v1: owner and payload start here */
#define SS_RECORD_MIN_LEN 26       /* the shortest record of any version */
#define SS_RECORD_ACCESSED_OFFSET 12
#define SS_RECORD_REVISION_OFFSET 20
#define SS_RECORD_FLAG_SEALED 1
#define SS_RECORD_USER_MAX 0xffff
/* The shortest sealed record: header, nonce, sealed owner length, tag. */
#define SS_RECORD_SEALED_MIN_LEN (SS_RECORD_HEADER_LEN + 2 + SS_SEAL_OVERHEAD)
/* APR_EACCES from ss_record_decode: a sealed record, and a key that cannot
 * open it (sealable = 0). The record may be perfectly good: not malformed. */
#define SS_RECORD_ENOKEY APR_EACCES

/* How a record is written. 0 and 1 read as "seal or not" in the current
 * format; SS_RECORD_FORM_V1 writes the previous format. */
typedef enum {
    SS_RECORD_FORM_CLEAR = 0,  /* v2, unsealed body */
    SS_RECORD_FORM_SEALED = 1, /* v2, sealed body (the default of the stores) */
    SS_RECORD_FORM_V1 = 2      /* v1: no revision, never sealed */
} ss_record_form_e;

typedef struct {
    apr_time_t created;
    apr_time_t accessed;
    const char *user;    /* owning user, "" when anonymous */
    const char *payload; /* NUL-terminated copy of the payload */
    apr_size_t payload_len;
    apr_uint32_t revision; /* 0 for a v1 record */
} ss_record_t;

/* What can be read of a record without its key. */
typedef struct {
    int version; /* 1 or 2 */
    int flags;   /* SS_RECORD_FLAG_* (0 for v1) */
    apr_time_t created;
    apr_time_t accessed;
    apr_uint32_t revision; /* 0 for v1 */
} ss_record_head_t;

/* Encoded size of rec in form. */
apr_size_t ss_record_size(const ss_record_t *rec, ss_record_form_e form);

/* Encode rec in form into a pool buffer. key is the store key the record is
 * written under: SS_RECORD_FORM_SEALED needs it sealable (APR_EINVAL
 * otherwise); the other forms ignore it (it may be NULL). APR_EINVAL when
 * the user or payload is too long for the format. */
apr_status_t ss_record_encode(const ss_record_t *rec, const ss_key_t *key, ss_record_form_e form,
                              apr_pool_t *p, char **buf, apr_size_t *len);

/* Decode buf, stored under key, into *rec (strings copied into p). A sealed
 * body is authenticated and opened with key. APR_ENOTIMPL for a well-formed
 * header of a newer version (a rolling upgrade: another node reads it),
 * SS_RECORD_ENOKEY for a sealed record and a key that is not sealable (or
 * NULL), APR_EINVAL on any other mismatch: malformed, including a sealed
 * body that does not authenticate (tampered, or another key's). */
apr_status_t ss_record_decode(const char *buf, apr_size_t len, const ss_key_t *key, apr_pool_t *p,
                              ss_record_t *rec);

/* Read the clear header without the key (for backends that judge expiry
 * or compare revisions before copying a record out, and for tools).
 * APR_EINVAL when buf is not a record (bad magic, version 0, flags or a
 * length its version does not allow), APR_ENOTIMPL when it is one of a
 * newer version. */
apr_status_t ss_record_peek(const unsigned char *buf, apr_size_t len, ss_record_head_t *head);

/* Whether buf, a record ss_record_peek accepts, is sealed. */
int ss_record_is_sealed(const char *buf, apr_size_t len);

/* Rewrite the accessed timestamp of an encoded record (any version) in
 * place. */
void ss_record_poke_accessed(unsigned char *buf, apr_time_t accessed);

#endif
