/* interval.h - an interval's schedule, shared by zk_interval_tick() and
 * the interval iterator. */
#ifndef ZK_TIME_INTERVAL_H
#define ZK_TIME_INTERVAL_H

#include "zokio/time.h"

/* The tick scheduled at iv->next fired and was seen at `now`: moves
 * iv->next to the following tick, as iv->missed says. */
void zk__interval_advance(zk_interval *iv, zk_instant now);

#endif
