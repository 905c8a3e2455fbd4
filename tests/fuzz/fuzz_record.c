/* fuzz_record.c - the record decoder (ss_record_decode, sealed and clear,
 * format 1 and 2) and the header functions the backends use on stored bytes
 * (ss_record_peek, ss_record_poke_accessed).
 *
 * Input: byte 0 picks the key (bits 0-1: the seeds' sealable key, the same
 * store key without its seal key, or none) and the mode (bit 2). Raw mode:
 * the rest is a stored value, as a backend reads it. Seal mode: the rest is
 * a 24-byte clear header and a clear body, which the harness seals under
 * the key (AES-256-GCM, the authenticated data of ss_record.h) before
 * decoding, so the sealed body's parser sees arbitrary plaintext (a fuzzer
 * cannot forge a tag).
 *
 * Checks: decode and peek agree (the verdict on the header, the timestamps,
 * the revision); ENOKEY only for a sealed record without a sealable key; a
 * decoded record has NUL-terminated strings whose lengths add up; a clear
 * record (format 1 or 2) encodes back to exactly the input, a sealed one
 * encodes to a record that decodes to the same session, and no longer
 * opens once a byte of its header or body is changed, nor under another
 * session's key; poking the accessed time (never authenticated) changes
 * that and nothing else, and the record still decodes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ss_record.h"

static ss_key_t sealable, clear_only, other;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (ss_id_key(FUZZ_SESSION_ID, &sealable) != APR_SUCCESS ||
        ss_id_key("0therSessionIdXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", &other) != APR_SUCCESS) {
        fuzz_fail(__FILE__, __LINE__, "ss_id_key", "no key");
    }
    clear_only = sealable;
    clear_only.sealable = 0;
    memset(clear_only.seal, 0, sizeof(clear_only.seal));
    return 0;
}

static void check_same(const ss_record_t *a, const ss_record_t *b, const char *what)
{
    FUZZ_CHECK(a->created == b->created && a->accessed == b->accessed &&
                   a->revision == b->revision && !strcmp(a->user, b->user) &&
                   a->payload_len == b->payload_len &&
                   !memcmp(a->payload, b->payload, a->payload_len),
               "%s: the session differs", what);
}

static void check_decoded(const unsigned char *in, size_t size, const ss_key_t *key,
                          const ss_record_head_t *head, const ss_record_t *rec, apr_pool_t *p)
{
    int sealed = head->version == 2 && (head->flags & SS_RECORD_FLAG_SEALED);
    ss_record_form_e form = head->version == 1 ? SS_RECORD_FORM_V1
                            : sealed           ? SS_RECORD_FORM_SEALED
                                               : SS_RECORD_FORM_CLEAR;
    unsigned char *copy;
    char *buf = NULL;
    apr_size_t len = 0;
    ss_record_t again;

    FUZZ_CHECK(strlen(rec->payload) == rec->payload_len, "payload length %lu, strlen %lu",
               (unsigned long)rec->payload_len, (unsigned long)strlen(rec->payload));
    FUZZ_CHECK(rec->created == head->created && rec->accessed == head->accessed &&
                   rec->revision == head->revision,
               "peek and decode disagree on the header");
    FUZZ_CHECK(ss_record_size(rec, form) == size, "ss_record_size %lu, the record %lu",
               (unsigned long)ss_record_size(rec, form), (unsigned long)size);
    FUZZ_CHECK(ss_record_encode(rec, key, form, p, &buf, &len) == APR_SUCCESS, "re-encoding");
    FUZZ_CHECK(len == size, "re-encoded to %lu bytes, not %lu", (unsigned long)len,
               (unsigned long)size);
    if (!sealed) {
        FUZZ_CHECK(!memcmp(buf, in, size), "re-encoding differs");
        return;
    }
    memset(&again, 0, sizeof(again));
    FUZZ_CHECK(ss_record_decode(buf, len, key, p, &again) == APR_SUCCESS, "re-sealed record");
    check_same(rec, &again, "re-sealed");
    FUZZ_CHECK(ss_record_decode((const char *)in, size, &other, p, &again) == APR_EINVAL,
               "opened under another session's key");
    /* Every byte but the accessed time is authenticated: flip one. */
    copy = malloc(size);
    memcpy(copy, in, size);
    {
        size_t at = (size_t)in[size - 1] % (size - 8);

        at = at >= SS_RECORD_ACCESSED_OFFSET ? at + 8 : at;
        /* Not the sealed flag itself: without it the record is one in
         * clear, refused only where sealed records are required. */
        at = at == 3 ? 4 : at;
        copy[at] ^= 0x01;
        FUZZ_CHECK(ss_record_decode((const char *)copy, size, key, p, &again) != APR_SUCCESS,
                   "a sealed record still opened with byte %lu changed", (unsigned long)at);
    }
    free(copy);
}

/* Poke a new accessed time into a copy: peek sees it, nothing else moved,
 * and a record that decoded still does. */
static void check_poke(const unsigned char *in, size_t size, const ss_key_t *key,
                       const ss_record_head_t *head, int decoded, apr_pool_t *p)
{
    unsigned char *copy = malloc(size);
    apr_time_t poked = (apr_time_t)0x0011223344556677LL;
    ss_record_head_t h2;
    ss_record_t rec;

    memcpy(copy, in, size);
    ss_record_poke_accessed(copy, poked);
    FUZZ_CHECK(ss_record_peek(copy, size, &h2) == APR_SUCCESS, "peek after poke");
    FUZZ_CHECK(h2.created == head->created && h2.accessed == poked &&
                   h2.revision == head->revision && h2.version == head->version,
               "poke changed more than the accessed time");
    FUZZ_CHECK(!memcmp(copy, in, SS_RECORD_ACCESSED_OFFSET) &&
                   !memcmp(copy + SS_RECORD_ACCESSED_OFFSET + 8, in + SS_RECORD_ACCESSED_OFFSET + 8,
                           size - SS_RECORD_ACCESSED_OFFSET - 8),
               "poke wrote outside the accessed field");
    if (decoded) {
        memset(&rec, 0, sizeof(rec));
        FUZZ_CHECK(ss_record_decode((const char *)copy, size, key, p, &rec) == APR_SUCCESS &&
                       rec.accessed == poked,
                   "a touched record no longer decodes");
    }
    free(copy);
}

/* Seal mode: header and clear body from the input, sealed here. Returns the
 * record (malloc) and what decoding its body must give. */
static unsigned char *seal_input(const uint8_t *data, size_t size, size_t *out_len,
                                 apr_status_t *want)
{
    const unsigned char *body = data + SS_RECORD_HEADER_LEN;
    size_t body_len = size - SS_RECORD_HEADER_LEN, user_len;
    unsigned char *rec = malloc(size + SS_SEAL_OVERHEAD), aad[12 + 4 + SS_KEY_BYTES];
    const unsigned char *parts[1] = {body};
    apr_size_t lens[1] = {body_len};

    memcpy(rec, data, SS_RECORD_HEADER_LEN);
    rec[0] = rec[1] = 'S';
    rec[2] = 2;
    rec[3] = SS_RECORD_FLAG_SEALED;
    memcpy(aad, rec, 12);
    memcpy(aad + 12, rec + SS_RECORD_REVISION_OFFSET, 4);
    memcpy(aad + 16, sealable.bytes, SS_KEY_BYTES);
    FUZZ_CHECK(ss_seal(sealable.seal, aad, sizeof(aad), parts, lens, 1,
                       rec + SS_RECORD_HEADER_LEN) == APR_SUCCESS,
               "ss_seal");
    *out_len = size + SS_SEAL_OVERHEAD;
    user_len = body_len >= 2 ? ((size_t)body[0] << 8 | body[1]) : 0;
    *want = body_len >= 2 && user_len <= body_len - 2 && !memchr(body + 2, '\0', body_len - 2)
                ? APR_SUCCESS
                : APR_EINVAL;
    return rec;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ss_key_t *keys[3] = {&sealable, &clear_only, NULL};
    const ss_key_t *key;
    apr_pool_t *p;
    const unsigned char *in;
    unsigned char *sealed_input = NULL;
    size_t len;
    ss_record_t rec;
    ss_record_head_t head;
    apr_status_t rv, peek, want = APR_SUCCESS;
    int seal_mode;

    if (size < 1) {
        return 0;
    }
    key = keys[(data[0] & 3) % 3];
    seal_mode = (data[0] & 4) && size - 1 >= SS_RECORD_HEADER_LEN;
    in = data + 1;
    len = size - 1;
    if (seal_mode) {
        key = &sealable;
        in = sealed_input = seal_input(in, len, &len, &want);
    }
    p = fuzz_pool();
    memset(&rec, 0, sizeof(rec));
    memset(&head, 0, sizeof(head));
    rv = ss_record_decode((const char *)in, len, key, p, &rec);
    peek = ss_record_peek(in, len, &head);
    FUZZ_CHECK(rv == APR_SUCCESS || rv == APR_EINVAL || rv == APR_ENOTIMPL ||
                   rv == SS_RECORD_ENOKEY,
               "decode: %d", rv);
    FUZZ_CHECK(peek == APR_SUCCESS || peek == APR_EINVAL || peek == APR_ENOTIMPL, "peek: %d", peek);
    /* Peek judges the header alone: decode may refuse more, never less. */
    FUZZ_CHECK(peek != APR_EINVAL || rv == APR_EINVAL, "peek refused, decode %d", rv);
    FUZZ_CHECK((peek == APR_ENOTIMPL) == (rv == APR_ENOTIMPL), "newer format: peek %d, decode %d",
               peek, rv);
    FUZZ_CHECK(rv != SS_RECORD_ENOKEY ||
                   (peek == APR_SUCCESS && head.version == 2 &&
                    (head.flags & SS_RECORD_FLAG_SEALED) && (!key || !key->sealable)),
               "ENOKEY for a record that needs no key, or with a sealable key");
    if (seal_mode) {
        FUZZ_CHECK(rv == want, "a body sealed here decoded to %d, expected %d", rv, want);
    }
    if (rv == APR_SUCCESS) {
        FUZZ_CHECK(peek == APR_SUCCESS, "decoded, but peek says %d", peek);
        check_decoded(in, len, key, &head, &rec, p);
    }
    if (peek == APR_SUCCESS) {
        FUZZ_CHECK(ss_record_is_sealed((const char *)in, len) ==
                       (head.version == 2 && (head.flags & SS_RECORD_FLAG_SEALED)),
                   "ss_record_is_sealed disagrees with the header");
        check_poke(in, len, key, &head, rv == APR_SUCCESS, p);
    }
    apr_pool_destroy(p);
    free(sealed_input);
    return 0;
}
