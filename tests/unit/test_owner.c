/* test_owner.c - owner names hashed for the per-owner index (ss_owner). */
#include "unit.h"

#include "ss_owner.h"

static const char *hex_of(const char *name)
{
    static char hex[SS_OWNER_HEX_LEN + 1];
    ss_owner_t o;

    assert_int_equal(ss_owner_hash(name, &o), APR_SUCCESS);
    ss_owner_hex(&o, hex);
    return hex;
}

/* SHA-256("mod_sessstore owner v1" NUL name), first 128 bits: the values
 * come from Python's hashlib, so a change of label or truncation shows. */
static void test_known_values(void **state)
{
    (void)state;
    assert_string_equal(hex_of("alice"), "ae38b65622efcec4104aee611b5d3b7c");
    assert_string_equal(hex_of("jos\xc3\xa9"), "1d0a010c598e73a48bc2412c034732af");
}

static void test_distinct_and_stable(void **state)
{
    char a[SS_OWNER_HEX_LEN + 1];

    (void)state;
    strcpy(a, hex_of("alice"));
    assert_string_equal(a, hex_of("alice"));
    assert_string_not_equal(a, hex_of("Alice"));
    assert_string_not_equal(a, hex_of("alice "));
    assert_int_equal(strlen(a), SS_OWNER_HEX_LEN);
}

static void test_anonymous_is_refused(void **state)
{
    ss_owner_t o;

    (void)state;
    assert_int_equal(ss_owner_hash("", &o), APR_EINVAL);
    assert_int_equal(ss_owner_hash(NULL, &o), APR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_distinct_and_stable),
        cmocka_unit_test(test_anonymous_is_refused),
    };

    return UNIT_RUN(tests);
}
