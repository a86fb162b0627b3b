/*
 * scope.c - cancel scopes (zokio/scope.h): entering, exiting, cancelling,
 * and the status an await inside a chain of scopes sees. The await itself
 * (waiting with the chain's deadline armed) is in coro.c.
 *
 * The chain lives in the scopes: each coroutine task keeps a pointer to its
 * innermost scope (zk__coro_scope_slot) and each scope points at the one
 * around it. Only the owning task walks or changes the chain. Other threads
 * touch a scope only through its state word, to cancel it.
 *
 * Waking the owner on cancel, safely against a racing exit: an entered
 * scope holds a reference to its task (taken at enter). The cancel that
 * marks an entered scope cancelled takes that reference over in the same
 * CAS (the WAKER flag) and spends it on the wake; an exit that finds WAKER
 * set leaves the reference to that canceller, otherwise drops it itself.
 * So the canceller never needs the scope after its CAS, the task cannot be
 * freed under it, and nobody waits for anybody.
 */
#include <errno.h>

#include "common/util.h"
#include "coro.h"
#include "runtime.h"
#include "scope.h"
#include "task_state.h"
#include "worker.h"

/*
 * The state word: a tag in the high 24 bits (ZK__SCOPE_FRESH's) and flags.
 *   CLAIMED    an enter is under way or done; a second enter is refused
 *   LIVE       entered: _task, _parent and the deadlines are written (set
 *              with release after them, so whoever sees LIVE reads them)
 *   EXITED     left; the flags no longer change
 *   CANCELLED  zk_scope_cancel() came (before or while entered)
 *   WAKER      that cancel found the scope LIVE and took the scope's task
 *              reference to wake the task with
 *   TIMEDOUT   (with EXITED) the own deadline had passed at the exit
 */
#define ZK__SCOPE_TAG_MASK 0xffffff00u
#define ZK__SCOPE_CLAIMED  0x01u
#define ZK__SCOPE_LIVE     0x02u
#define ZK__SCOPE_EXITED   0x04u
#define ZK__SCOPE_CANCELED 0x08u
#define ZK__SCOPE_WAKER    0x10u
#define ZK__SCOPE_TIMEDOUT 0x20u

_Static_assert((ZK__SCOPE_FRESH & ~ZK__SCOPE_TAG_MASK) == 0,
               "a fresh scope has no flag set");

static uint32_t zk__scope_load(const zk_scope *s) {
    return __atomic_load_n(&s->_state, __ATOMIC_ACQUIRE);
}

static bool zk__scope_tagged(uint32_t st) {
    return (st & ZK__SCOPE_TAG_MASK) == ZK__SCOPE_FRESH;
}

/* The calling task if it is a coroutine task, else NULL. */
static zk__task *zk__scope_owner(void) {
    zk__worker *w = zk__worker_current();
    zk__task *t = w ? w->current : NULL;
    return t != NULL && t->vtable->coroutine ? t : NULL;
}

static bool zk__deadline_passed(zk__task *t, zk_instant deadline) {
    return deadline != ZK_INSTANT_MAX && zk__time_now(&t->rt->time) >= deadline;
}

void zk_scope_init(zk_scope *s) {
    if (s == NULL)
        return;
    *s = (zk_scope)ZK_SCOPE_INIT;
}

int zk_scope_enter(zk_scope *s, zk_instant deadline) {
    if (s == NULL)
        return -EINVAL;
    zk__task *t = zk__scope_owner();
    if (t == NULL)
        return -EPERM;
    /* Claim the scope first, so that a refused enter writes nothing into a
     * scope someone else has entered. A cancel may set CANCELLED meanwhile:
     * the CAS then retries and keeps it. */
    uint32_t st = zk__scope_load(s);
    do {
        if (!zk__scope_tagged(st) || (st & ZK__SCOPE_EXITED))
            return -EINVAL;
        if (st & ZK__SCOPE_CLAIMED)
            return -EBUSY;
    } while (!__atomic_compare_exchange_n(&s->_state, &st,
                                          st | ZK__SCOPE_CLAIMED, false,
                                          __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE));
    zk_scope **slot = zk__coro_scope_slot(t);
    zk_scope *parent = *slot;
    s->_parent = parent;
    s->_task = t;
    s->_deadline = deadline;
    s->_nearest = parent != NULL && parent->_nearest < deadline
                      ? parent->_nearest
                      : deadline;
    /* The reference a cancel wakes the task with (see the top). */
    zk__ref_inc(t);
    __atomic_fetch_or(&s->_state, ZK__SCOPE_LIVE, __ATOMIC_RELEASE);
    *slot = s;
    return 0;
}

int zk_scope_enter_timeout(zk_scope *s, zk_duration d) {
    return zk_scope_enter(s, zk__instant_after(zk_now(), d));
}

int zk_scope_exit(zk_scope *s) {
    if (s == NULL)
        return -EINVAL;
    zk__task *t = zk__scope_owner();
    if (t == NULL)
        return -EPERM;
    zk_scope **slot = zk__coro_scope_slot(t);
    if (*slot != s)
        return -EINVAL;
    *slot = s->_parent;
    bool late = zk__deadline_passed(t, s->_deadline);
    uint32_t old = __atomic_fetch_or(
        &s->_state, ZK__SCOPE_EXITED | (late ? ZK__SCOPE_TIMEDOUT : 0),
        __ATOMIC_ACQ_REL);
    /* The running task holds a reference of its own: this never frees it. */
    if (!(old & ZK__SCOPE_WAKER))
        zk__task_drop_ref(t);
    if (old & ZK__SCOPE_CANCELED)
        return -ECANCELED;
    return late ? -ETIMEDOUT : 0;
}

int zk_scope_cancel(zk_scope *s) {
    if (s == NULL)
        return -EINVAL;
    zk__worker *w = zk__worker_current();
    zk__task *self = w ? w->current : NULL;
    uint32_t st = zk__scope_load(s);
    for (;;) {
        if (!zk__scope_tagged(st))
            return -EINVAL;
        if (st & ZK__SCOPE_EXITED)
            return -EALREADY;
        if (st & ZK__SCOPE_CANCELED)
            return 0;
        uint32_t next = st | ZK__SCOPE_CANCELED;
        zk__task *t = NULL;
        /* A scope not LIVE yet needs no wake: its owner is still inside
         * zk_scope_enter() and sees the flag at its first await. Nor does
         * a task cancelling its own scope. */
        if ((st & ZK__SCOPE_LIVE) && s->_task != self) {
            t = s->_task;
            next |= ZK__SCOPE_WAKER;
        }
        if (__atomic_compare_exchange_n(&s->_state, &st, next, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            /* From here on `s` may be gone; the reference is ours. */
            if (t != NULL)
                zk__task_wake_by_val(t);
            return 0;
        }
    }
}

int zk_scope_status(const zk_scope *s) {
    if (s == NULL)
        return -EINVAL;
    uint32_t st = zk__scope_load(s);
    if (!zk__scope_tagged(st))
        return -EINVAL;
    if (st & ZK__SCOPE_CANCELED)
        return -ECANCELED;
    if (st & ZK__SCOPE_EXITED)
        return (st & ZK__SCOPE_TIMEDOUT) ? -ETIMEDOUT : 0;
    if ((st & ZK__SCOPE_LIVE) && s->_deadline != ZK_INSTANT_MAX &&
        zk_now() >= s->_deadline)
        return -ETIMEDOUT;
    return 0;
}

zk_instant zk_scope_current_deadline(void) {
    zk__task *t = zk__scope_owner();
    zk_scope *inner = t ? *zk__coro_scope_slot(t) : NULL;
    return inner ? inner->_nearest : ZK_INSTANT_MAX;
}

/* ---------------------------------------------------------------------- */
/* What awaits see                                                        */
/* ---------------------------------------------------------------------- */

int zk__scope_chain_status(zk__task *t, const zk_scope *inner,
                           zk_instant *nearest) {
    *nearest = inner->_nearest;
    /* Every scope of the chain is looked at: a cancel of an outer scope
     * only marks that scope. Chains are short (one per nesting level). */
    for (const zk_scope *p = inner; p != NULL; p = p->_parent)
        if (zk__scope_load(p) & ZK__SCOPE_CANCELED)
            return -ECANCELED;
    return zk__deadline_passed(t, inner->_nearest) ? -ETIMEDOUT : 0;
}

int zk__cancel_status(void) {
    zk__worker *w = zk__worker_current();
    zk__task *t = w ? w->current : NULL;
    if (t == NULL)
        return 0;
    if (zk__task_is_cancelled(t))
        return -ECANCELED;
    zk_scope **slot = zk__coro_scope_slot(t);
    if (slot == NULL || *slot == NULL)
        return 0;
    zk_instant nearest;
    return zk__scope_chain_status(t, *slot, &nearest);
}
