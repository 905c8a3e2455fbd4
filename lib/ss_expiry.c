/* ss_expiry.c - idle and absolute session lifetime. */
#include "ss_expiry.h"

ss_expiry_state_e ss_expiry_check(const ss_expiry_t *e, apr_time_t created, apr_time_t accessed,
                                  apr_time_t now)
{
    /* Absolute first: when both have passed, the hard limit is the reason. */
    if (e->absolute > 0 && now >= created + e->absolute) {
        return SS_EXPIRED_ABSOLUTE;
    }
    if (e->idle > 0 && now >= accessed + e->idle) {
        return SS_EXPIRED_IDLE;
    }
    return SS_LIVE;
}

apr_time_t ss_expiry_deadline(const ss_expiry_t *e, apr_time_t created, apr_time_t accessed)
{
    apr_time_t idle_end = e->idle > 0 ? accessed + e->idle : 0;
    apr_time_t absolute_end = e->absolute > 0 ? created + e->absolute : 0;

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
