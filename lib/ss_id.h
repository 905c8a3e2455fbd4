/* ss_id.h - session IDs and the store keys derived from them.
 *
 * An ID is 256 bits from the CSPRNG, written as unpadded URL-safe base64
 * (43 characters). The store never sees an ID: it is keyed by SHA-256(ID),
 * so a dump of the store cannot be replayed as cookies. Next to the store
 * key, the ID yields the key that seals the record's body (ss_seal.h): the
 * store never holds it. */
#ifndef SS_ID_H
#define SS_ID_H

#include <apr_errno.h>
#include <apr_pools.h>

#include "ss_seal.h"

#define SS_ID_BYTES 32
#define SS_ID_LEN 43 /* base64url(32 bytes), no padding */
#define SS_KEY_BYTES 32
#define SS_KEY_HEX_LEN (SS_KEY_BYTES * 2)

typedef struct {
    unsigned char bytes[SS_KEY_BYTES];     /* the store key: SHA-256(ID) */
    unsigned char seal[SS_SEAL_KEY_BYTES]; /* with sealable: HKDF of the ID */
    /* 1 when built from the ID (ss_id_key); 0 for a key rebuilt from the
     * store alone (its hex): it can read a record's clear header, never
     * open or write a sealed body. */
    int sealable;
} ss_key_t;

/* Write a fresh ID and its terminating NUL into id[SS_ID_LEN + 1]. */
apr_status_t ss_id_generate(char *id);

/* True only for a string of exactly SS_ID_LEN base64url characters whose last
 * character carries no stray bits; anything else is "no session". */
int ss_id_is_valid(const char *s, apr_size_t len);

/* key->bytes = SHA-256(id), key->seal = its seal key, key->sealable = 1. */
apr_status_t ss_id_key(const char *id, ss_key_t *key);

/* Lower-case hex of the key into out[SS_KEY_HEX_LEN + 1]. */
void ss_key_hex(const ss_key_t *key, char *out);

/* The first 8 hex digits of the key: enough to follow one session through a
 * log, useless to an attacker. */
const char *ss_key_tag(const ss_key_t *key, apr_pool_t *p);

#endif
