/* fuzz_record.c - the record decoder (ss_record_decode) and the peek and
 * poke functions the backends use on stored bytes.
 *
 * Input: a stored value, as a backend would read it. Checks: decode and peek
 * agree (same verdict on the header, same timestamps); a decoded record has
 * NUL-terminated strings of the lengths that add up to the input, and
 * encodes back to exactly the input; poking the accessed time changes that
 * and nothing else. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ss_record.h"

static void check_decoded(const uint8_t *data, size_t size, const ss_record_t *rec, apr_pool_t *p)
{
    apr_size_t user_len = strlen(rec->user);
    char *buf = NULL;
    apr_size_t len = 0;

    FUZZ_CHECK(strlen(rec->payload) == rec->payload_len, "payload length %lu, strlen %lu",
               (unsigned long)rec->payload_len, (unsigned long)strlen(rec->payload));
    FUZZ_CHECK(SS_RECORD_HEADER_LEN + user_len + rec->payload_len == size,
               "user %lu + payload %lu bytes in a %lu-byte record", (unsigned long)user_len,
               (unsigned long)rec->payload_len, (unsigned long)size);
    FUZZ_CHECK(ss_record_size(rec) == size, "ss_record_size %lu", (unsigned long)size);
    FUZZ_CHECK(ss_record_encode(rec, p, &buf, &len) == APR_SUCCESS, "re-encoding failed");
    FUZZ_CHECK(len == size && !memcmp(buf, data, size), "re-encoding differs");
}

/* Poke a new accessed time into a copy: peek sees it, created stays. */
static void check_poke(const uint8_t *data, size_t size, apr_time_t created, apr_pool_t *p)
{
    unsigned char *copy = malloc(size);
    apr_time_t c2 = 0, a2 = 0, poked = (apr_time_t)0x0011223344556677LL;
    ss_record_t rec;

    memcpy(copy, data, size);
    ss_record_poke_accessed(copy, poked);
    FUZZ_CHECK(ss_record_peek_times(copy, size, &c2, &a2) == APR_SUCCESS, "peek after poke");
    FUZZ_CHECK(c2 == created && a2 == poked, "poke changed created or missed accessed");
    FUZZ_CHECK(!memcmp(copy, data, SS_RECORD_ACCESSED_OFFSET) &&
                   !memcmp(copy + SS_RECORD_ACCESSED_OFFSET + 8,
                           data + SS_RECORD_ACCESSED_OFFSET + 8,
                           size - SS_RECORD_ACCESSED_OFFSET - 8),
               "poke wrote outside the accessed field");
    if (ss_record_decode((const char *)copy, size, p, &rec) == APR_SUCCESS) {
        FUZZ_CHECK(rec.accessed == poked, "decode after poke");
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    ss_record_t rec;
    apr_time_t created = 0, accessed = 0;
    apr_status_t rv, peek;

    memset(&rec, 0, sizeof(rec));
    rv = ss_record_decode((const char *)data, size, p, &rec);
    peek = ss_record_peek_times(data, size, &created, &accessed);
    FUZZ_CHECK(rv == APR_SUCCESS || rv == APR_EINVAL || rv == APR_ENOTIMPL, "decode: %d", rv);
    FUZZ_CHECK(peek == APR_SUCCESS || peek == APR_EINVAL || peek == APR_ENOTIMPL, "peek: %d", peek);
    /* Peek judges the header alone: decode may refuse more, never less. */
    FUZZ_CHECK(peek != APR_EINVAL || rv == APR_EINVAL, "peek refused, decode %d", rv);
    FUZZ_CHECK((peek == APR_ENOTIMPL) == (rv == APR_ENOTIMPL), "newer format: peek %d, decode %d",
               peek, rv);
    if (rv == APR_SUCCESS) {
        FUZZ_CHECK(peek == APR_SUCCESS && created == rec.created && accessed == rec.accessed,
                   "peek and decode disagree on the timestamps");
        check_decoded(data, size, &rec, p);
    }
    if (peek == APR_SUCCESS) {
        check_poke(data, size, created, p);
    }
    apr_pool_destroy(p);
    return 0;
}
