/*
 * zokio/combine.h - futures made of futures: join, select, race, map,
 * and_then, ready and pending.
 *
 * Every combinator is a future in caller-owned memory (no allocation,
 * except join, try_join, select and race over more than 64 futures, which
 * allocate one bitmap) that takes its inner futures by pointer: the inner
 * futures must stay where they are while the combinator lives, and the
 * combinator consumes them. Each inner future's drop runs exactly once:
 * when it finished, when the combinator no longer needs it (the losers of
 * a select are dropped as soon as the winner is known, which cancels what
 * they were doing, kernel I/O included), or when the combinator itself is
 * dropped.
 *
 * Inside a coroutine task, await them (zk_await, or zk_await_until for a
 * deadline), or use the blocking-style calls at the end of this header:
 *
 *     zk_sleep_future nap;                  // any two futures
 *     zk_io_future rd;
 *     zk_sleep_future_init(&nap, ZK_SEC(1));
 *     zk_stream_read_future_init(&rd, s, buf, sizeof buf);
 *     zk_future *both[2] = {&rd.base, &nap.base};
 *     int64_t got;
 *     int which = zk_select(both, 2, &got);  // 0: read, 1: a second went by
 *
 * The combinators poll every unfinished inner future each time they are
 * polled, so a poll costs O(n): they are meant for a handful of futures.
 * For many concurrent jobs, spawn tasks (see zokio/group.h).
 */
#ifndef ZOKIO_COMBINE_H
#define ZOKIO_COMBINE_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest number of futures one combinator takes. */
#define ZK_COMBINE_MAX ((size_t)1 << 20)

/* The set of futures a join, select or race works on (private fields). */
typedef struct zk_future_set {
    zk_future **_futs;
    size_t _n;
    /* Which futures are finished or dropped: one bit each, in `_small`
     * up to 64 futures, else in `_big` (allocated at the first poll). */
    uint64_t _small;
    uint64_t *_big;
    size_t _left;
    int _error; /* -EINVAL / -ENOMEM found at init or first poll */
} zk_future_set;

/* ---------------------------------------------------------------------- */
/* join: all of them                                                      */
/* ---------------------------------------------------------------------- */

/*
 * A future that is ready once each of `futs[0..n)` is, with output 0 and
 * each future's output in `outs[i]`. With `stop_on_error` (try_join), the
 * first negative output ends it instead: the others are dropped, and that
 * output is the join's. Other outputs are -EINVAL (a NULL array, a NULL
 * entry, n > ZK_COMBINE_MAX) or -ENOMEM (more than 64 futures and no memory
 * for the bitmap). On a NULL entry or -ENOMEM every other future is dropped
 * unpolled; with a NULL array or n > ZK_COMBINE_MAX nothing is polled or
 * dropped (such an n is taken for a bad count, and the array is not read),
 * and the futures stay the caller's. n == 0 is ready at once with 0.
 * `futs` and `outs` must stay valid while it lives.
 */
typedef struct zk_join_future {
    zk_future base;
    zk_future_set _set;
    int64_t *_outs;
    bool _stop_on_error;
} zk_join_future;

/* Initialises a join of `n` futures; outputs go to `outs[0..n)`. */
ZK_EXTERN void zk_join_future_init(zk_join_future *j, zk_future **futs,
                                   int64_t *outs, size_t n);

/* Initialises a join that stops at the first negative output. */
ZK_EXTERN void zk_try_join_future_init(zk_join_future *j, zk_future **futs,
                                       int64_t *outs, size_t n);

/* ---------------------------------------------------------------------- */
/* select: the first of them                                              */
/* ---------------------------------------------------------------------- */

/*
 * A future that is ready as soon as one of `futs[0..n)` is: its output is
 * that future's index and `*value` (when not NULL) receives that future's
 * output, whatever it is (an error counts as finishing). All the others are
 * dropped at that moment, before the select returns ready, so what they
 * were doing is cancelled (a losing read's buffer is not written later).
 * Successive polls, and successive selects made on one thread, start at
 * successive futures, so that none is starved when several are always
 * ready; a biased select always starts at 0 (for priorities). Output -EINVAL
 * for a NULL array or entry, n == 0 or n > ZK_COMBINE_MAX, -ENOMEM as for
 * join; which futures are then dropped is as for join.
 */
typedef struct zk_select_future {
    zk_future base;
    zk_future_set _set;
    int64_t *_value;
    bool _biased;
    bool _race;
    int64_t _first_error;
    size_t _start;
} zk_select_future;

/* Initialises a select over `n` futures (fair start). */
ZK_EXTERN void zk_select_future_init(zk_select_future *s, zk_future **futs,
                                     size_t n, int64_t *value);

/* Initialises a select that polls in index order (futs[0] first). */
ZK_EXTERN void zk_select_biased_future_init(zk_select_future *s,
                                            zk_future **futs, size_t n,
                                            int64_t *value);

/* ---------------------------------------------------------------------- */
/* race: the first of them to succeed                                     */
/* ---------------------------------------------------------------------- */

/*
 * Like select, but only a success (output >= 0) wins: a future that fails
 * is dropped and the others go on. Output: the winner's index, with its
 * output in `*value`; once every future failed, the first failure's error
 * (and `*value` is not written). For "whichever replica answers first",
 * or a connect to several addresses. Bad input as for select.
 */
typedef zk_select_future zk_race_future;

/* Initialises a race over `n` futures. */
ZK_EXTERN void zk_race_future_init(zk_race_future *r, zk_future **futs,
                                   size_t n, int64_t *value);

/* ---------------------------------------------------------------------- */
/* map and and_then                                                       */
/* ---------------------------------------------------------------------- */

/* Turns an output into another. */
typedef int64_t (*zk_map_fn)(int64_t out, void *arg);

/*
 * A future whose output is fn(inner's output, arg). `fn` sees errors too
 * (decide there whether to pass them on). Output -EINVAL if inner or fn
 * is NULL.
 */
typedef struct zk_map_future {
    zk_future base;
    zk_future *_inner;
    zk_map_fn _fn;
    void *_arg;
    bool _done;
} zk_map_future;

/* Initialises a map of `inner`'s output through fn(out, arg). */
ZK_EXTERN void zk_map_future_init(zk_map_future *m, zk_future *inner,
                                  zk_map_fn fn, void *arg);

/*
 * Given the first future's output, returns the next future to run (memory
 * the caller keeps, e.g. inside `arg`, not yet polled), or NULL to finish
 * with `out` as the output.
 */
typedef zk_future *(*zk_then_fn)(int64_t out, void *arg);

/*
 * A future that runs `first`; when its output is >= 0, runs the future
 * next(output, arg) returns and ends with that one's output. A negative
 * output of `first` ends it at once with that error (next is not called).
 * Output -EINVAL if first or next is NULL.
 */
typedef struct zk_and_then_future {
    zk_future base;
    zk_future *_first;
    zk_future *_second;
    zk_then_fn _next;
    void *_arg;
    int _stage; /* 0 first, 1 second, 2 done */
} zk_and_then_future;

/* Initialises `first` followed by next(out, arg). */
ZK_EXTERN void zk_and_then_future_init(zk_and_then_future *t, zk_future *first,
                                       zk_then_fn next, void *arg);

/* ---------------------------------------------------------------------- */
/* ready and pending                                                      */
/* ---------------------------------------------------------------------- */

/* A future ready at its first poll with `value`. */
typedef struct zk_ready_future {
    zk_future base;
    int64_t value;
} zk_ready_future;

/* Initialises a future that is ready at once with `value`. */
ZK_EXTERN void zk_ready_future_init(zk_ready_future *r, int64_t value);

/* A future that is never ready (only a drop ends it: a select's branch
 * that is switched off, a placeholder, a task that waits for its abort). */
typedef struct zk_pending_future {
    zk_future base;
} zk_pending_future;

/* Initialises a future that never finishes. */
ZK_EXTERN void zk_pending_future_init(zk_pending_future *p);

/* ---------------------------------------------------------------------- */
/* Blocking-style forms (inside a coroutine task)                         */
/* ---------------------------------------------------------------------- */

/*
 * Awaits a join of `futs[0..n)` (see zk_join_future). Returns 0 with every
 * output in `outs`, or -ECANCELED (the task was aborted: the unfinished
 * futures were dropped; finished ones' outputs are in `outs`), -EPERM
 * (not in a coroutine task: nothing polled or dropped), -EINVAL, -ENOMEM.
 * For a deadline, init a zk_join_future and use zk_await_until().
 */
ZK_EXTERN int zk_join(zk_future **futs, int64_t *outs, size_t n);

/*
 * Awaits a select over `futs[0..n)`: returns the index of the first to
 * finish (its output in `*value` if not NULL; the others were dropped),
 * or -ECANCELED, -EPERM, -EINVAL, -ENOMEM as zk_join().
 */
ZK_EXTERN int zk_select(zk_future **futs, size_t n, int64_t *value);

/*
 * Awaits a race over `futs[0..n)`: returns the index of the first to
 * succeed (its output in `*value`), or the first failure's error when
 * all failed, or -ECANCELED, -EPERM, -EINVAL, -ENOMEM as zk_join().
 */
ZK_EXTERN int zk_race(zk_future **futs, size_t n, int64_t *value);

#ifdef __cplusplus
}
#endif
#endif
