/* test_expiry.c - idle and absolute session lifetime, with an injected clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "ss_expiry.h"
#include "unit.h"

#define SEC(n) apr_time_from_sec(n)
#define T0 SEC(1700000000) /* an arbitrary "now" */

static void test_neither(void **state)
{
    ss_expiry_t e = {0, 0};

    (void)state;
    assert_int_equal(ss_expiry_check(&e, T0, T0, T0), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, 0, 0, T0 + SEC(86400 * 3650)), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, T0, T0, APR_INT64_MAX), SS_LIVE);
    assert_int_equal(ss_expiry_deadline(&e, T0, T0), 0);
    assert_int_equal(ss_expiry_touch_interval(&e), 0);
    assert_false(ss_expiry_touch_due(&e, T0, T0 + SEC(3600)));
}

static void test_idle_only(void **state)
{
    ss_expiry_t e = {SEC(1800), 0};
    const apr_time_t created = T0 - SEC(10 * 3600), accessed = T0;

    (void)state;
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed - SEC(5)), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed + SEC(1800) - 1), SS_LIVE);
    /* Exactly at the deadline is expired. */
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed + SEC(1800)), SS_EXPIRED_IDLE);
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed + SEC(1800) + 1),
                     SS_EXPIRED_IDLE);
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed + SEC(86400)),
                     SS_EXPIRED_IDLE);
    /* The creation time does not matter without an absolute limit. */
    assert_int_equal(ss_expiry_check(&e, 0, accessed, accessed + SEC(60)), SS_LIVE);
    assert_int_equal(ss_expiry_deadline(&e, created, accessed), accessed + SEC(1800));
    assert_int_equal(ss_expiry_deadline(&e, 0, accessed), accessed + SEC(1800));
}

static void test_absolute_only(void **state)
{
    ss_expiry_t e = {0, SEC(8 * 3600)};
    const apr_time_t created = T0, limit = T0 + SEC(8 * 3600);

    (void)state;
    assert_int_equal(ss_expiry_check(&e, created, created, created), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, created, created, limit - 1), SS_LIVE);
    /* Last access long ago does not matter without an idle limit... */
    assert_int_equal(ss_expiry_check(&e, created, created, limit - SEC(1)), SS_LIVE);
    /* ...and a recent access does not extend the absolute lifetime. */
    assert_int_equal(ss_expiry_check(&e, created, limit - 1, limit), SS_EXPIRED_ABSOLUTE);
    assert_int_equal(ss_expiry_check(&e, created, created, limit), SS_EXPIRED_ABSOLUTE);
    assert_int_equal(ss_expiry_check(&e, created, created, limit + SEC(1)), SS_EXPIRED_ABSOLUTE);
    assert_int_equal(ss_expiry_deadline(&e, created, created), limit);
    assert_int_equal(ss_expiry_deadline(&e, created, limit - SEC(1)), limit);
}

static void test_both_idle_first(void **state)
{
    ss_expiry_t e = {SEC(1800), SEC(8 * 3600)};
    const apr_time_t created = T0, accessed = T0 + SEC(3600);

    (void)state;
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed + SEC(1800) - 1), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, created, accessed, accessed + SEC(1800)), SS_EXPIRED_IDLE);
    assert_int_equal(ss_expiry_deadline(&e, created, accessed), accessed + SEC(1800));
}

static void test_both_absolute_first(void **state)
{
    ss_expiry_t e = {SEC(1800), SEC(8 * 3600)};
    const apr_time_t created = T0, limit = T0 + SEC(8 * 3600);
    const apr_time_t accessed = limit - SEC(60); /* idle would allow until limit + 29 min */

    (void)state;
    assert_int_equal(ss_expiry_check(&e, created, accessed, limit - 1), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, created, accessed, limit), SS_EXPIRED_ABSOLUTE);
    assert_int_equal(ss_expiry_deadline(&e, created, accessed), limit);
}

static void test_both_passed_absolute_wins(void **state)
{
    ss_expiry_t e = {SEC(1800), SEC(8 * 3600)};
    const apr_time_t created = T0, accessed = T0 + SEC(60);

    (void)state;
    /* Idle passed long ago, absolute passed too: absolute is the reason. */
    assert_int_equal(ss_expiry_check(&e, created, accessed, T0 + SEC(9 * 3600)),
                     SS_EXPIRED_ABSOLUTE);
    /* Both deadlines at the same instant: absolute again. */
    assert_int_equal(ss_expiry_check(&e, created, T0 + SEC(8 * 3600 - 1800), T0 + SEC(8 * 3600)),
                     SS_EXPIRED_ABSOLUTE);
    /* Just before absolute, only idle has passed. */
    assert_int_equal(ss_expiry_check(&e, created, accessed, T0 + SEC(8 * 3600) - 1),
                     SS_EXPIRED_IDLE);
}

static void test_deadline_picks_smaller(void **state)
{
    ss_expiry_t e = {SEC(100), SEC(1000)};

    (void)state;
    /* idle end 100 s after access, absolute end 1000 s after creation */
    assert_int_equal(ss_expiry_deadline(&e, T0, T0), T0 + SEC(100));
    assert_int_equal(ss_expiry_deadline(&e, T0, T0 + SEC(899)), T0 + SEC(999));
    assert_int_equal(ss_expiry_deadline(&e, T0, T0 + SEC(900)), T0 + SEC(1000));
    assert_int_equal(ss_expiry_deadline(&e, T0, T0 + SEC(901)), T0 + SEC(1000));
    assert_int_equal(ss_expiry_deadline(&e, T0, T0 + SEC(5000)), T0 + SEC(1000));
    /* The deadline and the check agree. */
    assert_int_equal(ss_expiry_check(&e, T0, T0 + SEC(899), T0 + SEC(999) - 1), SS_LIVE);
    assert_int_equal(ss_expiry_check(&e, T0, T0 + SEC(899), T0 + SEC(999)), SS_EXPIRED_IDLE);
}

static void test_touch_interval(void **state)
{
    ss_expiry_t e = {0, SEC(3600)};

    (void)state;
    assert_int_equal(ss_expiry_touch_interval(&e), 0);
    e.idle = SEC(100);
    assert_int_equal(ss_expiry_touch_interval(&e), SEC(10));
    e.idle = SEC(599);
    assert_int_equal(ss_expiry_touch_interval(&e), apr_time_from_msec(59900));
    e.idle = SEC(600);
    assert_int_equal(ss_expiry_touch_interval(&e), SEC(60));
    e.idle = SEC(601);
    assert_int_equal(ss_expiry_touch_interval(&e), SEC(60));
    e.idle = SEC(1800);
    assert_int_equal(ss_expiry_touch_interval(&e), SEC(60));
    e.idle = SEC(86400 * 30);
    assert_int_equal(ss_expiry_touch_interval(&e), SEC(60));
    assert_int_equal(SS_TOUCH_MAX, SEC(60));
    assert_int_equal(SS_TOUCH_DIVISOR, 10);
}

static void test_touch_due_fraction(void **state)
{
    ss_expiry_t e = {SEC(100), 0}; /* throttle 10 s */

    (void)state;
    assert_false(ss_expiry_touch_due(&e, T0, T0));
    assert_false(ss_expiry_touch_due(&e, T0, T0 + SEC(10) - 1));
    assert_true(ss_expiry_touch_due(&e, T0, T0 + SEC(10)));
    assert_true(ss_expiry_touch_due(&e, T0, T0 + SEC(99)));
    /* A clock that stepped back never touches. */
    assert_false(ss_expiry_touch_due(&e, T0, T0 - SEC(30)));
}

static void test_touch_due_capped(void **state)
{
    ss_expiry_t e = {SEC(3600), SEC(86400)}; /* throttle min(360 s, 60 s) */

    (void)state;
    assert_false(ss_expiry_touch_due(&e, T0, T0 + SEC(60) - 1));
    assert_true(ss_expiry_touch_due(&e, T0, T0 + SEC(60)));
    assert_true(ss_expiry_touch_due(&e, T0, T0 + SEC(359)));
}

static void test_touch_due_idle_off(void **state)
{
    ss_expiry_t e = {0, SEC(3600)};

    (void)state;
    assert_false(ss_expiry_touch_due(&e, T0, T0));
    assert_false(ss_expiry_touch_due(&e, T0, T0 + SEC(60)));
    assert_false(ss_expiry_touch_due(&e, T0, T0 + SEC(86400)));
}

static void test_touch_due_tiny_idle(void **state)
{
    ss_expiry_t e = {5, 0}; /* 5 us: the interval rounds down to 0 */

    (void)state;
    assert_int_equal(ss_expiry_touch_interval(&e), 0);
    assert_true(ss_expiry_touch_due(&e, T0, T0));
    assert_true(ss_expiry_touch_due(&e, T0, T0 + 1));
}

static void test_state_names(void **state)
{
    const char *live = ss_expiry_state_name(SS_LIVE);
    const char *idle = ss_expiry_state_name(SS_EXPIRED_IDLE);
    const char *abs = ss_expiry_state_name(SS_EXPIRED_ABSOLUTE);

    (void)state;
    assert_string_equal(live, "live");
    assert_string_equal(idle, "idle timeout");
    assert_string_equal(abs, "absolute timeout");
    assert_int_equal(SS_LIVE, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_POOL_TEST(test_neither),
        UNIT_POOL_TEST(test_idle_only),
        UNIT_POOL_TEST(test_absolute_only),
        UNIT_POOL_TEST(test_both_idle_first),
        UNIT_POOL_TEST(test_both_absolute_first),
        UNIT_POOL_TEST(test_both_passed_absolute_wins),
        UNIT_POOL_TEST(test_deadline_picks_smaller),
        UNIT_POOL_TEST(test_touch_interval),
        UNIT_POOL_TEST(test_touch_due_fraction),
        UNIT_POOL_TEST(test_touch_due_capped),
        UNIT_POOL_TEST(test_touch_due_idle_off),
        UNIT_POOL_TEST(test_touch_due_tiny_idle),
        UNIT_POOL_TEST(test_state_names),
    };

    return UNIT_RUN(tests);
}
