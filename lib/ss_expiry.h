/* ss_expiry.h - idle and absolute session lifetime.
 *
 * Idle expiry slides from the last access, absolute expiry runs from creation;
 * 0 disables either. Every function takes "now" from the caller: the clock is
 * the caller's, which keeps this arithmetic testable. */
#ifndef SS_EXPIRY_H
#define SS_EXPIRY_H

#include <apr_time.h>

/* A touch rewrites the last-access time at most once per this fraction of the
 * idle timeout, and at least once a minute, so a busy session is not written
 * on every request yet never expires early by more than that slice. */
#define SS_TOUCH_DIVISOR 10
#define SS_TOUCH_MAX apr_time_from_sec(60)

typedef struct {
    apr_interval_time_t idle;     /* 0: no idle expiry */
    apr_interval_time_t absolute; /* 0: no absolute lifetime */
} ss_expiry_t;

typedef enum { SS_LIVE = 0, SS_EXPIRED_IDLE, SS_EXPIRED_ABSOLUTE } ss_expiry_state_e;

ss_expiry_state_e ss_expiry_check(const ss_expiry_t *e, apr_time_t created, apr_time_t accessed,
                                  apr_time_t now);

/* The shortest timeout: widening by it changes nothing. A set of keeping
 * timeouts starts from {SS_EXPIRY_NARROWEST, SS_EXPIRY_NARROWEST}. */
#define SS_EXPIRY_NARROWEST ((apr_interval_time_t)1)

/* Widen keep to also accept whatever e accepts: each timeout becomes the
 * longer of the two (0, off, is the longest). keep then holds the most
 * lenient timeouts of a server, which is how long a store keeps a record. */
void ss_expiry_widen(ss_expiry_t *keep, const ss_expiry_t *e);

/* The moment the session dies, 0 when neither timeout is set. */
apr_time_t ss_expiry_deadline(const ss_expiry_t *e, apr_time_t created, apr_time_t accessed);

/* True when the last-access time is old enough to be rewritten. */
int ss_expiry_touch_due(const ss_expiry_t *e, apr_time_t accessed, apr_time_t now);

/* Throttle interval between touches for this policy (0 when idle is off). */
apr_interval_time_t ss_expiry_touch_interval(const ss_expiry_t *e);

const char *ss_expiry_state_name(ss_expiry_state_e state);

#endif
