/*
 * zokio/future.h - futures, wakers and the poll context.
 *
 * A future is caller-owned memory whose first member is a `zk_future`. Its
 * `poll` function is called with a context; it either finishes (returns
 * ZK_READY and writes its output) or arranges for the context's waker to be
 * woken when it can make progress and returns ZK_PENDING. This is Tokio's
 * model: a wake that arrives while the task is being polled makes the task
 * run again (it is never lost), and many wakes before the task runs make it
 * run once.
 *
 *     typedef struct { zk_future base; int polls; } two_step;
 *
 *     static zk_poll two_step_poll(zk_future *f, zk_context *cx, int64_t *out)
 * { two_step *s = (two_step *)f; if (s->polls++ == 0) {
 *             zk_waker_wake_by_ref(zk_context_waker(cx)); // ask to be polled
 * again return ZK_PENDING;
 *         }
 *         *out = 42;
 *         return ZK_READY;
 *     }
 *     static const zk_future_ops two_step_ops = { two_step_poll, NULL };
 *
 *     two_step s = { { &two_step_ops }, 0 };
 *     int64_t v = zk_await(&s.base);   // inside a coroutine task: v == 42
 *
 * Lifetime rules:
 * - A future that has not been polled yet may be copied (moved) freely; once
 *   polled it must stay where it is until it is dropped.
 * - `drop` (when not NULL) is called exactly once by whoever consumes the
 *   future (zk_await, a task, a combinator): after it returned ZK_READY, or
 *   instead of further polls when it is cancelled. It releases whatever the
 *   future holds (registered wakers, kernel operations, memory).
 */
#ifndef ZOKIO_FUTURE_H
#define ZOKIO_FUTURE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The result of one poll. */
typedef enum zk_poll {
    ZK_PENDING = 0, /* not finished; the waker will be woken */
    ZK_READY = 1    /* finished; the output was written */
} zk_poll;

typedef struct zk_future zk_future;
typedef struct zk_context zk_context;
typedef struct zk_waker zk_waker;

/*
 * How to wake a particular kind of waiter. `data` is the waker's data
 * pointer. All four functions must be callable from any thread.
 * - clone: returns a new waker for the same waiter (usually a reference
 *   count increment).
 * - wake: wakes the waiter and releases this waker's data (consumes it).
 * - wake_by_ref: wakes the waiter without releasing anything.
 * - drop: releases the waker's data without waking.
 */
typedef struct zk_waker_ops {
    zk_waker (*clone)(const void *data);
    void (*wake)(const void *data);
    void (*wake_by_ref)(const void *data);
    void (*drop)(const void *data);
} zk_waker_ops;

/*
 * A handle that wakes a waiting task. Plain value type: copy it only through
 * zk_waker_clone(), release it with zk_waker_wake() or zk_waker_drop().
 * A zeroed waker (ops == NULL) is "no waker"; every function below accepts
 * it and does nothing.
 */
struct zk_waker {
    const zk_waker_ops *ops;
    const void *data;
};

/* What a poll function receives: the waker of the task being polled. */
struct zk_context {
    const zk_waker *waker;
};

/*
 * The operations of a kind of future. `poll` is required; `drop` may be
 * NULL when the future holds nothing that needs releasing.
 * poll: returns ZK_READY and writes `*out`, or returns ZK_PENDING after
 *       arranging for zk_context_waker(cx) (or a clone of it) to be woken.
 */
typedef struct zk_future_ops {
    zk_poll (*poll)(zk_future *self, zk_context *cx, int64_t *out);
    void (*drop)(zk_future *self);
} zk_future_ops;

/* The first member of every future. */
struct zk_future {
    const zk_future_ops *ops;
};

/* Returns the waker of the task being polled. `cx` must not be NULL. */
static inline const zk_waker *zk_context_waker(const zk_context *cx) {
    return cx->waker;
}

/* Initialises a context that polls with `waker` (for hand-written
 * executors and tests). */
static inline void zk_context_init(zk_context *cx, const zk_waker *waker) {
    cx->waker = waker;
}

/*
 * Builds a waker from user data and operations. No reference is taken:
 * `data` is owned by the returned waker as `ops` defines.
 */
ZK_EXTERN zk_waker zk_waker_new(const void *data, const zk_waker_ops *ops);

/* Returns a waker that does nothing when woken (for polling by hand). */
ZK_EXTERN zk_waker zk_waker_noop(void);

/* Returns a new waker for the same waiter as `w`. A NULL or empty `w`
 * yields an empty waker. */
ZK_EXTERN zk_waker zk_waker_clone(const zk_waker *w);

/* Wakes the waiter and consumes `*w`, which becomes empty. NULL or an
 * empty waker is a no-op. */
ZK_EXTERN void zk_waker_wake(zk_waker *w);

/* Wakes the waiter; `*w` stays valid. NULL or empty is a no-op. */
ZK_EXTERN void zk_waker_wake_by_ref(const zk_waker *w);

/* Releases `*w` without waking; it becomes empty. NULL or empty is a
 * no-op. */
ZK_EXTERN void zk_waker_drop(zk_waker *w);

/* Returns true when `a` and `b` would wake the same waiter (same data and
 * operations), so a future can skip replacing a stored waker. */
ZK_EXTERN bool zk_waker_will_wake(const zk_waker *a, const zk_waker *b);

/* Returns true when `w` is NULL or empty. */
static inline bool zk_waker_is_empty(const zk_waker *w) {
    return w == NULL || w->ops == NULL;
}

/*
 * Polls `f` once with `cx` (checks its arguments, then calls f->ops->poll).
 * Returns ZK_READY or ZK_PENDING. With a NULL `f`, `cx`, `out` or poll
 * function it writes -EINVAL to `*out` when it can and returns ZK_READY.
 */
ZK_EXTERN zk_poll zk_future_poll(zk_future *f, zk_context *cx, int64_t *out);

/* Calls the future's drop function if it has one. NULL is a no-op. */
ZK_EXTERN void zk_future_drop(zk_future *f);

/*
 * Runs `f` to completion from inside a coroutine task, suspending only this
 * task (its worker thread goes on running other tasks) while `f` is
 * pending, then drops `f`. This is the single path every blocking-style call
 * of zokio takes.
 *
 * Returns the future's output, or:
 * -ECANCELED  the task was aborted (before or during the wait); `f` was
 *             dropped without completing. Every later await of an aborted
 *             task returns -ECANCELED at once.
 * -ECANCELED, -ETIMEDOUT
 *             inside a cancel scope (zokio/scope.h) that was cancelled or
 *             whose deadline passed; `f` was dropped.
 * -EPERM      not called from inside a coroutine task (a plain thread or a
 *             future task's poll); `f` is left untouched.
 * -EINVAL     `f` or its poll function is NULL.
 *
 * A task whose awaits keep completing immediately yields to other tasks
 * after a bounded number of them (cooperative budget), transparently. The
 * yield happens at the start of the next await, before `f` is polled, so
 * a task does not give up its worker while holding what `f` would have
 * handed it (a lock, say).
 *
 * On a multi-thread runtime the task may resume on another worker thread.
 * zokio saves errno before the task suspends and restores it on the thread
 * that resumes it. Do not keep the address of a thread-local variable
 * across an await, and note that compilers treat pthread_self() and the
 * address of errno as constant within a function: code after the await may
 * still read or write the errno of the thread the function started on. If
 * errno or the thread identity matters across an await, read and write them
 * in a separate non-inlined function.
 */
ZK_EXTERN int64_t zk_await(zk_future *f);

#ifdef __cplusplus
}
#endif
#endif
