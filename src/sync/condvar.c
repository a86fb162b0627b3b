/*
 * condvar.c - a condition variable for the async mutex.
 *
 * A wait future goes through three phases: it joins the queue and unlocks
 * the mutex in its first poll (joining first, so a notify sent after the
 * unlock finds it), waits to be notified (or for its deadline), then locks
 * the mutex again with an embedded lock future. Only a notified wait locks
 * again: one that ends with an error (its deadline, or dropped by an abort
 * or a cancel scope) leaves the mutex unlocked, so that every error means
 * the same for the caller whichever of them it was.
 */
#include <errno.h>
#include <stdlib.h>

#include "sync/waitq.h"

/* DONE: the future returned its output; DROPPED: dropped before that. */
enum { ZK__CV_START, ZK__CV_WAIT, ZK__CV_RELOCK, ZK__CV_DONE, ZK__CV_DROPPED };

/* How a DONE waiter was woken. */
#define ZK__CV_ONE 1u
#define ZK__CV_ALL 2u

struct zk_condvar {
    zk__lock lock;
    zk__waitq waiters;
};

int zk_condvar_new(zk_condvar **out) {
    if (out == NULL)
        return -EINVAL;
    zk_condvar *cv = malloc(sizeof *cv);
    if (cv == NULL)
        return -ENOMEM;
    zk__waitq_init(&cv->waiters);
    zk__lock_init(&cv->lock);
    *out = cv;
    return 0;
}

int zk_condvar_free(zk_condvar *cv) {
    if (cv == NULL)
        return 0;
    zk__lock_acquire(&cv->lock);
    bool busy = !zk__waitq_empty(&cv->waiters);
    zk__lock_release(&cv->lock);
    if (busy)
        return -EBUSY;
    free(cv);
    return 0;
}

/* Under the lock: wakes the first waiter, if any. */
static zk_waker zk__cv_one_locked(zk_condvar *cv) {
    zk_wait_node *w = zk__waitq_pop(&cv->waiters);
    if (w == NULL)
        return (zk_waker){0};
    w->_flags = ZK__CV_ONE;
    zk_waker wk = zk__node_take_waker(w);
    zk__node_set_state(w, ZK__W_DONE);
    return wk;
}

int zk_condvar_notify_one(zk_condvar *cv) {
    if (cv == NULL)
        return -EINVAL;
    zk__lock_acquire(&cv->lock);
    zk_waker wk = zk__cv_one_locked(cv);
    zk__lock_release(&cv->lock);
    zk_waker_wake(&wk);
    return 0;
}

int zk_condvar_notify_all(zk_condvar *cv) {
    if (cv == NULL)
        return -EINVAL;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&cv->lock);
    zk__waitq_release_all(&cv->waiters, ZK__CV_ALL, &wl);
    zk__lock_release(&cv->lock);
    zk__wakelist_wake(&wl);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The wait future                                                        */
/* ---------------------------------------------------------------------- */

/* Leaves the queue (if still in it) and reports whether the waiter had
 * been notified. A notify_one it will not act on goes to the next waiter
 * when `pass_on`. */
static bool zk__cv_leave(zk_condvar_future *f, bool pass_on) {
    zk_condvar *cv = f->_cv;
    zk_wait_node *node = &f->_node;
    zk_waker wk = {0};
    zk__lock_acquire(&cv->lock);
    uint32_t st = zk__node_state(node);
    bool notified = st == ZK__W_DONE;
    if (st == ZK__W_QUEUED)
        zk__waitq_remove(&cv->waiters, node);
    else if (notified && pass_on && node->_flags == ZK__CV_ONE)
        wk = zk__cv_one_locked(cv);
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&cv->lock);
    zk_waker_wake(&wk);
    return notified;
}

/* True once the deadline passed (a timer keeps the task's waker inside a
 * runtime; a plain thread is polled again at the deadline). */
static bool zk__cv_expired(zk_condvar_future *f, zk_context *cx) {
    if (!f->_has_deadline)
        return false;
    int64_t r;
    if (zk_future_poll(&f->_sleep.base, cx, &r) == ZK_PENDING)
        return false;
    return r == 0 || zk_now() >= f->_sleep.deadline;
}

static void zk__cv_start_relock(zk_condvar_future *f) {
    if (f->_has_deadline)
        zk_future_drop(&f->_sleep.base);
    f->_phase = ZK__CV_RELOCK;
    zk_mutex_lock_future_init(&f->_lock, f->_mutex);
}

static zk_poll zk__cv_poll(zk_future *fut, zk_context *cx, int64_t *out) {
    zk_condvar_future *f = (zk_condvar_future *)fut;
    zk_condvar *cv = f->_cv;
    zk_wait_node *node = &f->_node;
    if (cv == NULL || f->_mutex == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    switch (f->_phase) {
    case ZK__CV_START: {
        zk__lock_acquire(&cv->lock);
        zk__waitq_push(&cv->waiters, node);
        zk__node_set_waker(node, cx);
        zk__lock_release(&cv->lock);
        f->_phase = ZK__CV_WAIT;
        int rc = zk_mutex_unlock(f->_mutex);
        f->_unlocked = rc == 0;
        if (rc != 0) {
            zk__cv_leave(f, true);
            if (f->_has_deadline)
                zk_future_drop(&f->_sleep.base);
            f->_phase = ZK__CV_DONE;
            *out = rc;
            return ZK_READY;
        }
    }
        /* fall through */
    case ZK__CV_WAIT: {
        zk__lock_acquire(&cv->lock);
        bool notified = zk__node_state(node) == ZK__W_DONE;
        if (!notified)
            zk__node_set_waker(node, cx);
        zk__lock_release(&cv->lock);
        if (notified) {
            zk__cv_leave(f, false);
            zk__cv_start_relock(f);
        } else if (!zk__cv_expired(f, cx)) {
            return ZK_PENDING;
        } else if (zk__cv_leave(f, false)) {
            /* A notification that raced the deadline wins. */
            zk__cv_start_relock(f);
        } else {
            zk_future_drop(&f->_sleep.base);
            f->_phase = ZK__CV_DONE;
            *out = -ETIMEDOUT;
            return ZK_READY;
        }
    }
        /* fall through */
    case ZK__CV_RELOCK: {
        int64_t r;
        if (zk_future_poll(&f->_lock.base, cx, &r) == ZK_PENDING)
            return ZK_PENDING;
        zk_future_drop(&f->_lock.base);
        f->_phase = ZK__CV_DONE;
        *out = r < 0 ? r : 0;
        return ZK_READY;
    }
    default:
        *out = -EINVAL;
        return ZK_READY;
    }
}

static void zk__cv_drop(zk_future *fut) {
    zk_condvar_future *f = (zk_condvar_future *)fut;
    switch (f->_phase) {
    case ZK__CV_WAIT:
        zk__cv_leave(f, true);
        if (f->_has_deadline)
            zk_future_drop(&f->_sleep.base);
        break;
    case ZK__CV_RELOCK:
        zk_future_drop(&f->_lock.base);
        break;
    case ZK__CV_START:
        break;
    default:
        return; /* done, or dropped already */
    }
    f->_phase = ZK__CV_DROPPED;
}

static const zk_future_ops zk__cv_ops = {zk__cv_poll, zk__cv_drop};

void zk_condvar_future_init(zk_condvar_future *f, zk_condvar *cv, zk_mutex *m) {
    if (f == NULL)
        return;
    f->base.ops = &zk__cv_ops;
    f->_cv = cv;
    f->_mutex = m;
    f->_phase = ZK__CV_START;
    f->_has_deadline = false;
    f->_unlocked = false;
    zk__node_init(&f->_node);
}

void zk_condvar_future_init_until(zk_condvar_future *f, zk_condvar *cv,
                                  zk_mutex *m, zk_instant deadline) {
    if (f == NULL)
        return;
    zk_condvar_future_init(f, cv, m);
    f->_has_deadline = true;
    zk_sleep_future_init_until(&f->_sleep, deadline);
}

/* The await of an aborted task, or of one in a cancel scope that expired
 * or was cancelled, drops the future, maybe before its first poll unlocked
 * the mutex: unlock it then, so that -ECANCELED and -ETIMEDOUT always mean
 * the mutex is not held. (Not for -EPERM or -ENOMEM: the wait did not
 * start, and the caller still holds it.) */
static int zk__cv_finish(zk_condvar_future *f, int rc) {
    if ((rc == -ECANCELED || rc == -ETIMEDOUT) && f->_phase != ZK__CV_DONE &&
        !f->_unlocked)
        zk_mutex_unlock(f->_mutex);
    return rc;
}

int zk_condvar_wait(zk_condvar *cv, zk_mutex *m) {
    if (cv == NULL || m == NULL)
        return -EINVAL;
    zk_condvar_future f;
    zk_condvar_future_init(&f, cv, m);
    return zk__cv_finish(&f, (int)zk__wait(&f.base, false, 0));
}

int zk_condvar_wait_until(zk_condvar *cv, zk_mutex *m, zk_instant deadline) {
    if (cv == NULL || m == NULL)
        return -EINVAL;
    zk_condvar_future f;
    zk_condvar_future_init_until(&f, cv, m, deadline);
    return zk__cv_finish(&f, (int)zk__wait_wake_at(&f.base, deadline));
}
