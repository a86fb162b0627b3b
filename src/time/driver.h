/*
 * driver.h - a runtime's time driver: its clock and its timer wheel.
 *
 * One wheel per runtime behind a lock (common/lock.h: its sections are
 * short, so a worker that finds it taken spins briefly before it sleeps;
 * with pthread's mutex, two workers inserting and firing timers met in
 * futex calls). Sleep futures keep their timer
 * entry in themselves (zk_sleep_future._timer) and register on first poll.
 * Expired timers are found by the schedulers: every few scheduling ticks and
 * before parking (zk__time_process), and a parked worker sleeps exactly
 * until the next deadline (zk__time_next). Wakers are woken with the lock
 * held: waking only schedules a task, which never takes this lock, and it
 * keeps a registered sleep future from being freed while its timer fires.
 * A sleep the driver marked fired is dropped without the lock: the driver
 * takes its waker out before it stores the mark, its last access.
 *
 * Deadlines are instants up to ZK_INSTANT_MAX, which means never: sums
 * saturate there (zk__instant_after), and a deadline whose tick lies
 * beyond it is a timer that never fires. The clock itself stops one
 * nanosecond short of it (zk__clock_clamp), however far a paused clock is
 * advanced, so that ZK_INSTANT_MAX never passes.
 */
#ifndef ZK__TIME_DRIVER_H
#define ZK__TIME_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/lock.h"
#include "time/wheel.h"

struct zk_runtime;

/* now + d for a deadline: d <= 0 counts as 0, and a sum past INT64_MAX
 * (ZK_INSTANT_MAX, no deadline) is INT64_MAX: "forever" must not wrap
 * around into the past. */
static inline int64_t zk__instant_after(int64_t now, int64_t d) {
    int64_t at;
    if (d <= 0)
        return now;
    return __builtin_add_overflow(now, d, &at) ? INT64_MAX : at;
}

/* An instant the clock may show: at most ZK_INSTANT_MAX - 1. */
static inline int64_t zk__clock_clamp(int64_t at) {
    return at < INT64_MAX ? at : INT64_MAX - 1;
}

typedef struct zk__time {
    struct zk_runtime *rt;
    zk__lock lock;
    zk__wheel wheel; /* guarded by lock */
    int64_t origin;  /* the clock at tick 0 */
    /* The earliest deadline in the wheel (clock ns), INT64_MAX if none. */
    _Atomic int64_t next_ns;
    /* Clock = CLOCK_MONOTONIC + offset, or paused_now while paused. */
    _Atomic bool paused;
    _Atomic int64_t paused_now;
    _Atomic int64_t offset;
} zk__time;

int zk__time_init(zk__time *t, struct zk_runtime *rt);
void zk__time_destroy(zk__time *t);

/* The runtime's clock. */
int64_t zk__time_now(zk__time *t);

/* Fires the timers that are due (cheap when none is). */
void zk__time_process(zk__time *t);

/* The earliest pending deadline, or INT64_MAX. */
static inline int64_t zk__time_next(zk__time *t) {
    return atomic_load(&t->next_ns);
}

/* With a paused clock and timers pending: moves the clock to the next
 * deadline and fires what is due. Returns false when there is nothing to
 * advance to (not paused, or no timer). */
bool zk__time_auto_advance(zk__time *t);

#endif
