/*
 * zokio/time.h - the runtime's clock and sleeping.
 *
 * Instants and durations are signed 64-bit nanoseconds. zk_now() reads the
 * runtime's monotonic clock: CLOCK_MONOTONIC, unless the runtime's clock is
 * paused (tests), in which case time moves only when told to or when every
 * task waits on a timer. Timers have a resolution of 1 ms and never fire
 * early: a sleep ends at or after its deadline. A deadline of
 * ZK_INSTANT_MAX, or a duration that would carry past it, never passes.
 */
#ifndef ZOKIO_TIME_H
#define ZOKIO_TIME_H

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t zk_instant;  /* nanoseconds on the runtime's clock */
typedef int64_t zk_duration; /* nanoseconds */

/* An instant that never comes: "no deadline" (zk_scope_enter()). */
#define ZK_INSTANT_MAX ((zk_instant)INT64_MAX)

#define ZK_US(n)  ((zk_duration)(n)*1000)
#define ZK_MS(n)  ((zk_duration)(n)*1000 * 1000)
#define ZK_SEC(n) ((zk_duration)(n)*1000 * 1000 * 1000)

/* Returns the current instant of the caller's runtime clock, or of
 * CLOCK_MONOTONIC outside a runtime. */
ZK_EXTERN zk_instant zk_now(void);

/*
 * A future that is ready (output 0) once its deadline has passed. It keeps
 * its timer inside itself: no allocation. Initialise with
 * zk_sleep_future_init_until() or zk_sleep_future_init(), await it or poll it
 * from a task of a runtime (polled outside a runtime its output is -EPERM).
 * Dropping it cancels the timer; a cancelled timer never fires.
 */
typedef struct zk_sleep_future {
    zk_future base;
    zk_instant deadline;
    /* Private: the runtime's timer state. */
    void *_driver;
    uint32_t _state;
    zk_waker _waker;
    uint64_t _timer[4];
} zk_sleep_future;

/* Initialises a sleep that ends at `deadline`. */
ZK_EXTERN void zk_sleep_future_init_until(zk_sleep_future *s,
                                          zk_instant deadline);

/* Initialises a sleep that ends `d` after now (zk_now()); d <= 0 is ready
 * at once. */
ZK_EXTERN void zk_sleep_future_init(zk_sleep_future *s, zk_duration d);

/*
 * Suspends the calling coroutine task for `d` (at least; d <= 0 only
 * yields to the budget). Returns 0, -ECANCELED if the task was aborted, or
 * -EPERM outside a coroutine task.
 */
ZK_EXTERN int zk_sleep(zk_duration d);

/* Like zk_sleep() until the instant `deadline`. */
ZK_EXTERN int zk_sleep_until(zk_instant deadline);

/*
 * A future that runs `inner` with a deadline: ready with inner's output if
 * inner is ready first, or with -ETIMEDOUT once the deadline passes (inner
 * is then dropped, which cancels whatever it was doing). It consumes
 * `inner`: inner's drop runs exactly once, when the timeout future is done
 * or dropped. `inner` is not copied: it must stay where it is while the
 * timeout future lives (both on a coroutine's stack, typically).
 */
typedef struct zk_timeout_future {
    zk_future base;
    zk_future *inner;
    zk_sleep_future sleep;
    bool finished; /* inner dropped already */
} zk_timeout_future;

/* Initialises a timeout future ending at `deadline`. */
ZK_EXTERN void zk_timeout_future_init_until(zk_timeout_future *t,
                                            zk_future *inner,
                                            zk_instant deadline);

/* Initialises a timeout future ending `d` after now. */
ZK_EXTERN void zk_timeout_future_init(zk_timeout_future *t, zk_future *inner,
                                      zk_duration d);

/*
 * zk_await() with a deadline: the blocking-style form every call can take.
 * Returns inner's output, -ETIMEDOUT when the deadline passed first (inner
 * was dropped), -ECANCELED if the task was aborted, -EPERM outside a
 * coroutine task, -EINVAL for a NULL future.
 */
ZK_EXTERN int64_t zk_await_until(zk_future *f, zk_instant deadline);

/* zk_await_until(f, zk_now() + d). */
ZK_EXTERN int64_t zk_await_timeout(zk_future *f, zk_duration d);

/* What an interval does about ticks it missed (its owner was late). */
typedef enum zk_missed_tick {
    /* Fire the missed ticks at once, one per call, then keep the original
     * schedule (the default: the count of ticks is kept). */
    ZK_MISSED_TICK_BURST = 0,
    /* Fire once now and schedule the next tick a period after now. */
    ZK_MISSED_TICK_DELAY = 1,
    /* Fire once now and skip to the next tick of the original schedule. */
    ZK_MISSED_TICK_SKIP = 2
} zk_missed_tick;

/* Ticks every `period`, starting one period after initialisation. */
typedef struct zk_interval {
    zk_duration period;
    zk_instant next;
    zk_missed_tick missed;
} zk_interval;

/* Initialises an interval. Returns 0, or -EINVAL for NULL, a period
 * <= 0, or an unknown missed-tick behaviour. */
ZK_EXTERN int zk_interval_init(zk_interval *iv, zk_duration period,
                               zk_missed_tick missed);

/*
 * Waits for the interval's next tick (in a coroutine task). Returns 0 on a
 * tick, -ECANCELED if the task was aborted, -EPERM outside a coroutine
 * task, -EINVAL for NULL. Ticks never come early.
 */
ZK_EXTERN int zk_interval_tick(zk_interval *iv);

/*
 * Pauses the clock of a current-thread runtime (for tests): zk_now() stops,
 * and while the runtime has no task ready to run it jumps to the next
 * timer's deadline instead of sleeping, so hour-long timeouts take
 * microseconds. It does not jump while a blocking call (zk_spawn_blocking,
 * and so the epoll backend's file calls and DNS) runs, whose result comes
 * in real time; it does jump while a task waits for socket I/O, as Tokio's
 * does, so a deadline on a read from a peer expires at once unless the
 * data is already there. Returns 0, -EINVAL for NULL, -EALREADY if already
 * paused, -ENOTSUP for a multi-thread runtime (whose workers never all agree
 * they are idle at one instant; Tokio has the same rule).
 */
ZK_EXTERN int zk_time_pause(zk_runtime *rt);

/* Moves a paused clock forward by `d` (>= 0); timers due by then fire.
 * The clock stops one nanosecond short of ZK_INSTANT_MAX, however far it
 * is moved, so that a deadline of ZK_INSTANT_MAX still never passes.
 * Returns 0, or -EINVAL (NULL, negative d, clock not paused). */
ZK_EXTERN int zk_time_advance(zk_runtime *rt, zk_duration d);

/* Lets a paused clock follow CLOCK_MONOTONIC again (from where it was, so
 * it never goes backwards). Returns 0, or -EINVAL (NULL, not paused). */
ZK_EXTERN int zk_time_resume(zk_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif
