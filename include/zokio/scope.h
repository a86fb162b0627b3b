/*
 * zokio/scope.h - cancel scopes: a deadline and a cancel switch for a
 * region of code in one coroutine task (structured concurrency).
 *
 * A request handler gets its whole time budget in one place:
 *
 *     zk_scope s = ZK_SCOPE_INIT;
 *     zk_scope_enter_timeout(&s, ZK_SEC(2));
 *     n = zk_stream_read(conn, buf, len); // -ETIMEDOUT once 2 s are gone
 *     rc = zk_mpsc_send(tx, &msg);        // likewise, and so on
 *     if (zk_scope_exit(&s) == -ETIMEDOUT)
 *         log("request over budget");
 *
 * While a scope is entered, every await of the task (zk_await() and so
 * every blocking-style call of zokio, zk_yield() too) returns:
 * -ECANCELED   once this scope or any scope around it was cancelled
 *              (zk_scope_cancel(), from any thread);
 * -ETIMEDOUT   once the nearest deadline of this scope and the scopes
 *              around it has passed (on the runtime's clock, so a paused
 *              clock drives it too; see zk_time_pause()).
 * The awaited future is then dropped (which cancels the kernel I/O, lock
 * wait or timer it stood for; see zk_future), and the call returns at once
 * without waiting, even if it would have been ready. An await that is
 * waiting when the deadline comes, or when the scope is cancelled, is
 * woken at that moment. Aborting the task (zk_task_abort()) wins over both:
 * its awaits return -ECANCELED as before. A call that documents
 * -ECANCELED for an aborted task treats a scope's error the same way (a
 * zk_task_join() that fails keeps its handle, for instance).
 *
 * Scopes nest and are entered and exited strictly last-in first-out by the
 * task that entered them: exiting the inner scope gives its awaits back
 * the outer scope's state. They cost nothing to a task that is in no scope.
 *
 * A scope is caller-owned memory (typically on the coroutine's stack)
 * initialised with ZK_SCOPE_INIT or zk_scope_init() before its first use;
 * it is entered once, and must be initialised again to be entered again.
 * Its fields are private.
 */
#ifndef ZOKIO_SCOPE_H
#define ZOKIO_SCOPE_H

#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zk_scope {
    /* Private. _state: flags, and a tag that tells an initialised scope
     * from stray memory; the rest is written by zk_scope_enter(). */
    uint32_t _state;
    uint32_t _reserved;
    struct zk_scope *_parent;
    void *_task;
    zk_instant _deadline; /* this scope's own */
    zk_instant _nearest;  /* the earliest of the chain from here out */
} zk_scope;

/* The state of a fresh scope (private: use ZK_SCOPE_INIT). */
#define ZK__SCOPE_FRESH 0x5c09e000u

/* Initialises a scope where it is declared: zk_scope s = ZK_SCOPE_INIT; */
#define ZK_SCOPE_INIT                                                          \
    { ZK__SCOPE_FRESH, 0, NULL, NULL, 0, 0 }

/* Initialises (or re-initialises, once exited) the scope at `s`; the same
 * as assigning ZK_SCOPE_INIT. NULL is a no-op. Must not be called while
 * the scope is entered or while another thread may cancel it. */
ZK_EXTERN void zk_scope_init(zk_scope *s);

/*
 * Enters `s` as the innermost scope of the calling coroutine task, with an
 * absolute `deadline` on the runtime's clock (ZK_INSTANT_MAX: none, the
 * scope can only be cancelled). A deadline already past is allowed: every
 * await inside then returns -ETIMEDOUT at once. The deadline in effect is
 * the earliest of this one and those of the scopes around it. If `s` was
 * cancelled before being entered, every await inside returns -ECANCELED.
 *
 * Returns 0, or:
 * -EINVAL      `s` is NULL, or was not initialised (ZK_SCOPE_INIT,
 *              zk_scope_init()), or was entered and exited already.
 * -EBUSY       `s` is entered at the moment (by this task or another).
 * -EPERM       not called from inside a coroutine task.
 * On error nothing changed.
 */
ZK_EXTERN int zk_scope_enter(zk_scope *s, zk_instant deadline);

/* zk_scope_enter(s, zk_now() + d); d <= 0 gives a scope that has expired
 * already, a `d` too large to add gives ZK_INSTANT_MAX. Same returns. */
ZK_EXTERN int zk_scope_enter_timeout(zk_scope *s, zk_duration d);

/*
 * Leaves `s`, which must be the innermost scope of the calling task; the
 * scope around it (if any) applies again. The scope is done: it can no
 * longer be cancelled, and its memory may be reused once no thread can
 * still be inside a zk_scope_cancel() of it.
 *
 * Returns what happened to this scope itself, so the code knows why its
 * awaits failed:
 * 0            neither cancelled nor past its own deadline;
 * -ECANCELED   `s` was cancelled (this wins over a deadline);
 * -ETIMEDOUT   `s`'s own deadline had passed (a scope around it that
 *              expired or was cancelled reports that at its own exit).
 * Or, with nothing changed:
 * -EINVAL      `s` is NULL or is not the innermost scope of the calling
 *              task (never entered, exited already, entered by another
 *              task, or an inner scope is still entered).
 * -EPERM       not called from inside a coroutine task.
 */
ZK_EXTERN int zk_scope_exit(zk_scope *s);

/*
 * Cancels `s`, from any thread or task, whether it is entered already or
 * not yet: from now on every await inside it (and inside scopes nested in
 * it) returns -ECANCELED, and an await waiting right now is woken at once.
 * Cancelling twice is harmless. A cancel that races the owner's
 * zk_scope_exit() is safe: either it lands first (the exit then returns
 * -ECANCELED) or it finds the scope exited (-EALREADY, nothing happens).
 *
 * The scope's memory must stay valid until this call returns: cancelling a
 * scope whose memory is gone (a returned task's stack) is the caller's
 * bug. Keep a scope that other threads cancel in memory both sides own, or
 * make sure the canceller is done before the owner's frame goes.
 *
 * Returns 0, or:
 * -EALREADY    the scope was exited already; nothing changed.
 * -EINVAL      `s` is NULL or was not initialised.
 */
ZK_EXTERN int zk_scope_cancel(zk_scope *s);

/*
 * Returns what happened to `s` itself so far, as zk_scope_exit() would
 * report it: 0, -ECANCELED or -ETIMEDOUT (the last compared with zk_now()
 * of the caller, the runtime's clock when called from its tasks). For a
 * scope that is exited, the answer given at its exit. -EINVAL when `s` is
 * NULL or was not initialised. Callable from any thread.
 */
ZK_EXTERN int zk_scope_status(const zk_scope *s);

/*
 * Returns the deadline in effect for the calling task's awaits: the
 * earliest deadline of the scopes it is in, or ZK_INSTANT_MAX when there
 * is none (no scope, a scope without a deadline, or not a coroutine task).
 * Handy to pass the remaining budget on (zk_now() subtracted from it).
 */
ZK_EXTERN zk_instant zk_scope_current_deadline(void);

#ifdef __cplusplus
}
#endif
#endif
