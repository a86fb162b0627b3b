/*
 * wheel.h - a hierarchical timer wheel: 6 levels of 64 slots, 1 ms per tick
 * at level 0 (so level L covers 64^(L+1) ms; the whole wheel 2^36 ms, about
 * two years). O(1) insert and cancel; expiring jumps straight to the next
 * occupied slot with the per-level occupancy bitmaps, so an idle stretch of
 * any length costs a handful of steps.
 *
 * Invariant: `elapsed` is the last tick processed; a timer in level L, slot
 * S has a deadline whose base-64 digits above L equal those of `elapsed`
 * (at the time it was placed) and whose digit L is S. Deadlines outside the
 * top level's current window (2^36 ticks) wait in an overflow list until
 * time reaches their window. A timer never fires before its deadline tick:
 * expiry compares the exact deadline.
 *
 * The wheel does no locking and no waking: its owner (the time driver)
 * holds a lock around it and wakes what expire() hands back.
 */
#ifndef ZK__WHEEL_H
#define ZK__WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZK__WHEEL_LEVELS 6
#define ZK__WHEEL_SLOTS  64

typedef struct zk__timer zk__timer;

struct zk__timer {
    zk__timer *prev, *next; /* slot or overflow list (or the expired list) */
    uint64_t deadline;      /* tick */
    uint8_t level, slot;    /* level ZK__WHEEL_LEVELS: the overflow list */
    bool linked;            /* in the wheel */
};

typedef struct zk__wheel {
    uint64_t elapsed;
    uint64_t occupied[ZK__WHEEL_LEVELS];
    zk__timer *slots[ZK__WHEEL_LEVELS][ZK__WHEEL_SLOTS];
    zk__timer *overflow;
    /* No overflow timer belongs in the wheel before this tick (a lower
     * bound: cancelling does not raise it). */
    uint64_t overflow_next;
    size_t count;
} zk__wheel;

void zk__wheel_init(zk__wheel *w, uint64_t now_tick);

/* Inserts `t` with t->deadline set. Returns false (and inserts nothing)
 * when the deadline is not after the last processed tick: it has expired
 * already. */
bool zk__wheel_insert(zk__wheel *w, zk__timer *t);

/* Removes a linked timer. */
void zk__wheel_remove(zk__wheel *w, zk__timer *t);

/* The tick of the earliest occupied slot (the next time expire() has work
 * to do, possibly only cascading), or UINT64_MAX when the wheel is empty. */
uint64_t zk__wheel_next_tick(const zk__wheel *w);

/* Processes time up to `now_tick`: returns the timers whose deadline has
 * come, unlinked and chained through `next` (NULL-terminated). */
zk__timer *zk__wheel_expire(zk__wheel *w, uint64_t now_tick);

#endif
