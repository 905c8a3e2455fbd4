/* ss_metered.h - a store that times every load, save and remove of another
 * store into the shared latency histograms (ss_metrics.h).
 *
 * The wrapper forwards every operation unchanged, under the inner store's
 * name and stats scope; only the time spent in load, save and remove is
 * recorded. With no counters (m NULL) it only forwards. */
#ifndef SS_METERED_H
#define SS_METERED_H

#include "ss_metrics.h"
#include "ss_store.h"

/* A store over inner, allocated in p. */
apr_status_t ss_metered_wrap(ss_store_t **store, ss_store_t *inner, ss_metrics_t *m, apr_pool_t *p);

/* The store a metered one wraps (the store itself when it is not one). */
ss_store_t *ss_metered_inner(ss_store_t *store);

#endif
