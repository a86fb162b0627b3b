/* notify.c - zk_notify: notify_one with a stored permit, notify_waiters,
 * and waiters that pass on a notify_one they were dropped with. */
#include <errno.h>
#include <stdlib.h>

#include "sync/waitq.h"

/* How a DONE waiter was woken. */
#define ZK__NOTIFIED_ONE 1u
#define ZK__NOTIFIED_ALL 2u

struct zk_notify {
    zk__lock lock;
    zk__waitq waiters;
    /* A notify_one that found nobody waiting (at most one is kept). */
    bool permit;
    /* Count of notify_waiters calls; written under the lock, read
     * without it when a future is initialised. */
    _Atomic uint64_t gen;
};

int zk_notify_new(zk_notify **out) {
    if (out == NULL)
        return -EINVAL;
    zk_notify *n = malloc(sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    zk__waitq_init(&n->waiters);
    n->permit = false;
    atomic_init(&n->gen, 0);
    zk__lock_init(&n->lock);
    *out = n;
    return 0;
}

int zk_notify_free(zk_notify *n) {
    if (n == NULL)
        return 0;
    zk__lock_acquire(&n->lock);
    bool busy = !zk__waitq_empty(&n->waiters);
    zk__lock_release(&n->lock);
    if (busy)
        return -EBUSY;
    free(n);
    return 0;
}

/* Under the lock: wakes the first waiter or stores the permit. */
static zk_waker zk__notify_one_locked(zk_notify *n) {
    zk_wait_node *w = zk__waitq_pop(&n->waiters);
    if (w == NULL) {
        n->permit = true;
        return (zk_waker){0};
    }
    w->_flags = ZK__NOTIFIED_ONE;
    zk_waker wk = zk__node_take_waker(w);
    zk__node_set_state(w, ZK__W_DONE);
    return wk;
}

int zk_notify_one(zk_notify *n) {
    if (n == NULL)
        return -EINVAL;
    zk__lock_acquire(&n->lock);
    zk_waker wk = zk__notify_one_locked(n);
    zk__lock_release(&n->lock);
    zk_waker_wake(&wk);
    return 0;
}

int zk_notify_waiters(zk_notify *n) {
    if (n == NULL)
        return -EINVAL;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&n->lock);
    atomic_fetch_add(&n->gen, 1);
    zk__waitq_release_all(&n->waiters, ZK__NOTIFIED_ALL, &wl);
    zk__lock_release(&n->lock);
    zk__wakelist_wake(&wl);
    return 0;
}

int zk_notify_try_wait(zk_notify *n) {
    if (n == NULL)
        return -EINVAL;
    zk__lock_acquire(&n->lock);
    bool had = n->permit;
    n->permit = false;
    zk__lock_release(&n->lock);
    return had ? 0 : -EAGAIN;
}

/* ---------------------------------------------------------------------- */
/* The wait future                                                        */
/* ---------------------------------------------------------------------- */

static zk_poll zk__notified_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_notify_future *nf = (zk_notify_future *)f;
    zk_notify *n = nf->_notify;
    zk_wait_node *node = &nf->_node;
    if (n == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk__lock_acquire(&n->lock);
    switch (zk__node_state(node)) {
    case ZK__W_IDLE:
        if (n->permit) {
            n->permit = false;
            break;
        }
        if (atomic_load(&n->gen) != nf->_gen)
            break; /* a notify_waiters since the future was made */
        zk__waitq_push(&n->waiters, node);
        /* fall through */
    case ZK__W_QUEUED:
        zk__node_set_waker(node, cx);
        zk__lock_release(&n->lock);
        return ZK_PENDING;
    default:
        break;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk__lock_release(&n->lock);
    *out = 0;
    return ZK_READY;
}

static void zk__notified_drop(zk_future *f) {
    zk_notify_future *nf = (zk_notify_future *)f;
    zk_notify *n = nf->_notify;
    zk_wait_node *node = &nf->_node;
    uint32_t st = zk__node_state(node);
    if (n == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk_waker wk = {0};
    zk__lock_acquire(&n->lock);
    st = zk__node_state(node);
    if (st == ZK__W_QUEUED)
        zk__waitq_remove(&n->waiters, node);
    else if (st == ZK__W_DONE && node->_flags == ZK__NOTIFIED_ONE)
        wk = zk__notify_one_locked(n); /* not ours to swallow */
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&n->lock);
    zk_waker_wake(&wk);
}

static const zk_future_ops zk__notified_ops = {zk__notified_poll,
                                               zk__notified_drop};

void zk_notify_future_init(zk_notify_future *f, zk_notify *n) {
    if (f == NULL)
        return;
    f->base.ops = &zk__notified_ops;
    f->_notify = n;
    f->_gen = n ? atomic_load(&n->gen) : 0;
    zk__node_init(&f->_node);
}

int zk_notify_wait(zk_notify *n) {
    if (n == NULL)
        return -EINVAL;
    zk_notify_future f;
    zk_notify_future_init(&f, n);
    return (int)zk__wait(&f.base, false, 0);
}

int zk_notify_wait_until(zk_notify *n, zk_instant deadline) {
    if (n == NULL)
        return -EINVAL;
    zk_notify_future f;
    zk_notify_future_init(&f, n);
    return (int)zk__wait(&f.base, true, deadline);
}
