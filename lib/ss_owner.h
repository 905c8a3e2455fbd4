/* ss_owner.h - the hashed name of a session's owner, for the per-owner index.
 *
 * No store keeps an owner's name in clear outside the record (where it may be
 * sealed): the index is keyed by SHA-256("mod_sessstore owner v1", NUL, name)
 * cut to its first 128 bits, written as 32 lower-case hex digits. The label
 * keeps these hashes apart from any other SHA-256 of user names. */
#ifndef SS_OWNER_H
#define SS_OWNER_H

#include <apr_errno.h>

#define SS_OWNER_BYTES 16
#define SS_OWNER_HEX_LEN (SS_OWNER_BYTES * 2)

typedef struct {
    unsigned char bytes[SS_OWNER_BYTES];
} ss_owner_t;

/* The hash of a non-empty owner name. APR_EINVAL for NULL or "" (anonymous
 * sessions are not indexed), APR_EGENERAL when the digest fails. */
apr_status_t ss_owner_hash(const char *name, ss_owner_t *owner);

/* Lower-case hex into out[SS_OWNER_HEX_LEN + 1]. */
void ss_owner_hex(const ss_owner_t *owner, char *out);

#endif
