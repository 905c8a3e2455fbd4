/* ss_expiry.c - idle and absolute session lifetime. */
#include "ss_expiry.h"

#define TIME_MAX ((apr_time_t)0x7fffffffffffffffLL)

/* t + d for d > 0, held at TIME_MAX: timestamps come from stored records,
 * and a forged or corrupt one must not overflow into the past. */
static apr_time_t end_of(apr_time_t t, apr_interval_time_t d)
{
    return t > TIME_MAX - d ? TIME_MAX : t + d;
}

ss_expiry_state_e ss_expiry_check(const ss_expiry_t *e, apr_time_t created, apr_time_t accessed,
                                  apr_time_t now)
{
    /* Absolute first: when both have passed, the hard limit is the reason. */
    if (e->absolute > 0 && now >= end_of(created, e->absolute)) {
        return SS_EXPIRED_ABSOLUTE;
    }
    if (e->idle > 0 && now >= end_of(accessed, e->idle)) {
        return SS_EXPIRED_IDLE;
    }
    return SS_LIVE;
}

/* The longer of two timeouts, where 0 (off) is the longest. */
static apr_interval_time_t longer(apr_interval_time_t a, apr_interval_time_t b)
{
    if (a <= 0 || b <= 0) {
        return 0;
    }
    return a > b ? a : b;
}

void ss_expiry_widen(ss_expiry_t *keep, const ss_expiry_t *e)
{
    keep->idle = longer(keep->idle, e->idle);
    keep->absolute = longer(keep->absolute, e->absolute);
}

apr_time_t ss_expiry_deadline(const ss_expiry_t *e, apr_time_t created, apr_time_t accessed)
{
    apr_time_t idle_end = e->idle > 0 ? end_of(accessed, e->idle) : 0;
    apr_time_t absolute_end = e->absolute > 0 ? end_of(created, e->absolute) : 0;

    if (!idle_end) {
        return absolute_end;
    }
    if (!absolute_end) {
        return idle_end;
    }
    return idle_end < absolute_end ? idle_end : absolute_end;
}

apr_interval_time_t ss_expiry_touch_interval(const ss_expiry_t *e)
{
    apr_interval_time_t slice = e->idle / SS_TOUCH_DIVISOR;

    return slice < SS_TOUCH_MAX ? slice : SS_TOUCH_MAX;
}

int ss_expiry_touch_due(const ss_expiry_t *e, apr_time_t accessed, apr_time_t now)
{
    if (e->idle <= 0) {
        return 0;
    }
    return now - accessed >= ss_expiry_touch_interval(e);
}

const char *ss_expiry_state_name(ss_expiry_state_e state)
{
    switch (state) {
    case SS_EXPIRED_IDLE:
        return "idle timeout";
    case SS_EXPIRED_ABSOLUTE:
        return "absolute timeout";
    case SS_LIVE:
        break;
    }
    return "live";
}
