/* test_redis_slot.c - the Redis Cluster key slot: the published CRC-16/XMODEM
 * check value, and key slots as the real server computes them (CLUSTER
 * KEYSLOT of Debian's redis-server 7.0.15), hash tags and empty tags. */
#include "ss_redis_slot.h"
#include "unit.h"

static void test_crc16_vectors(void **state)
{
    (void)state;
    /* The catalogue's check value of CRC-16/XMODEM, and the Redis Cluster
     * specification's reference ("123456789" -> 0x31C3). */
    assert_int_equal(ss_redis_crc16("123456789", 9), 0x31C3);
    assert_int_equal(ss_redis_crc16("", 0), 0);
    assert_int_equal(ss_redis_crc16("A", 1), 0x58E5);
    assert_int_equal(ss_redis_slot("123456789", 9), 0x31C3 & 16383);
}

typedef struct {
    const char *key;
    unsigned slot;
} keyslot_t;

/* Recorded with redis-cli CLUSTER KEYSLOT on redis-server 7.0.15. */
static const keyslot_t recorded[] = {
    {"foo", 12182},
    {"bar", 5061},
    {"hello", 866},
    {"somekey", 11058},
    {"{user1000}.following", 3443},
    {"{user1000}.followers", 3443},
    {"foo{}{bar}", 8363},    /* an empty first tag: the whole key */
    {"foo{{bar}}zap", 4015}, /* the tag is "{bar" */
    {"foo{bar}{zap}", 5061}, /* the first tag only: "bar" */
    {"{}", 15257},
    {"{", 4092},
    {"}{a}", 15495},
    {"", 0},
    {"sessstore:{u:42}0123456789abcdef", 8980},
    {"sessstore:0123456789abcdef0123456789abcdef", 3268},
};

static void test_recorded_slots(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < UNIT_COUNT(recorded); i++) {
        unsigned slot = ss_redis_slot(recorded[i].key, strlen(recorded[i].key));

        if (slot != recorded[i].slot) {
            fail_msg("slot of '%s': %u, the server says %u", recorded[i].key, slot,
                     recorded[i].slot);
        }
    }
}

static void test_hash_tags(void **state)
{
    (void)state;
    /* Same tag, same slot, whatever surrounds it. */
    assert_int_equal(ss_redis_slot("a{tag}b", 7), ss_redis_slot("tag", 3));
    assert_int_equal(ss_redis_slot("{tag}", 5), ss_redis_slot("zzz{tag}zzz{other}", 18));
    /* Only the length given counts: a '}' past it closes nothing. */
    assert_int_equal(ss_redis_slot("x{tag}", 5), ss_redis_slot("x{tag", 5));
    assert_int_not_equal(ss_redis_slot("x{tag", 5), ss_redis_slot("tag", 3));
    /* Binary keys: a NUL inside a tag is hashed like any byte. */
    assert_int_equal(ss_redis_slot("{a\0b}", 5), ss_redis_crc16("a\0b", 3) & 16383);
    /* Every slot is in range. */
    assert_true(ss_redis_slot("\xff\xff\xff", 3) < SS_REDIS_SLOTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_vectors),
        cmocka_unit_test(test_recorded_slots),
        cmocka_unit_test(test_hash_tags),
    };

    return UNIT_RUN(tests);
}
