/* semaphore.c - the batch semaphore (see sem.h) and zk_semaphore_*. */
#include <errno.h>
#include <stdlib.h>

#include "sync/sem.h"

/* A waiter's flag once the semaphore closed under it. */
#define ZK__SEM_CLOSED 1u

void zk__sem_init(struct zk_semaphore *s, size_t permits) {
    s->permits = permits;
    s->held = 0;
    s->closed = false;
    zk__waitq_init(&s->waiters);
    zk__lock_init(&s->lock);
}

bool zk__sem_quiet(struct zk_semaphore *s, bool idle) {
    zk__lock_acquire(&s->lock);
    bool quiet = zk__waitq_empty(&s->waiters) && (!idle || s->held == 0);
    zk__lock_release(&s->lock);
    return quiet;
}

static zk_semaphore_acquire_future *zk__acq_of(zk_wait_node *n) {
    return ZK__CONTAINER_OF(n, zk_semaphore_acquire_future, _node);
}

/* Under the lock: hands `n` permits to the waiters in FIFO order; what is
 * left becomes free. */
static void zk__sem_assign_locked(struct zk_semaphore *s, size_t n,
                                  zk__wakelist *wl) {
    zk_wait_node *w;
    while (n > 0 && (w = s->waiters.head) != NULL) {
        size_t give = n < w->_want ? n : (size_t)w->_want;
        w->_want -= give;
        n -= give;
        if (w->_want != 0)
            break;
        zk__waitq_pop(&s->waiters);
        s->held += zk__acq_of(w)->_n;
        w->_flags = 0;
        zk__wakelist_push(wl, zk__node_take_waker(w));
        zk__node_set_state(w, ZK__W_DONE);
    }
    s->permits += n;
}

int zk__sem_try_acquire(struct zk_semaphore *s, size_t n) {
    zk__lock_acquire(&s->lock);
    int rc = -EAGAIN;
    if (s->closed) {
        rc = -EPIPE;
    } else if (zk__waitq_empty(&s->waiters) && s->permits >= n) {
        s->permits -= n;
        s->held += n;
        rc = 0;
    }
    zk__lock_release(&s->lock);
    return rc;
}

int zk__sem_release_held(struct zk_semaphore *s, size_t n,
                         bool (*check)(size_t held, size_t n)) {
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&s->lock);
    if (check != NULL && !check(s->held, n)) {
        zk__lock_release(&s->lock);
        return -EPERM;
    }
    if (n > ZK_SEMAPHORE_MAX_PERMITS - s->permits) {
        zk__lock_release(&s->lock);
        return -EOVERFLOW;
    }
    s->held -= n < s->held ? n : s->held;
    zk__sem_assign_locked(s, n, &wl);
    zk__lock_release(&s->lock);
    zk__wakelist_wake(&wl);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The acquire future                                                     */
/* ---------------------------------------------------------------------- */

static zk_poll zk__acq_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_semaphore_acquire_future *a = (zk_semaphore_acquire_future *)f;
    struct zk_semaphore *s = a->_sem;
    zk_wait_node *node = &a->_node;
    if (s == NULL || a->_n == 0 || a->_n > ZK_SEMAPHORE_MAX_PERMITS) {
        *out = -EINVAL;
        return ZK_READY;
    }
    if (zk__node_state(node) == ZK__W_DONE) {
        /* Handed its permits (or the close): the node left the queue and
         * only this future touches it now, so no lock is needed. */
        *out = node->_flags & ZK__SEM_CLOSED ? -EPIPE : 0;
        zk__node_set_state(node, ZK__W_CONSUMED);
        return ZK_READY;
    }
    zk__lock_acquire(&s->lock);
    switch (zk__node_state(node)) {
    case ZK__W_IDLE:
        if (s->closed) {
            *out = -EPIPE;
            break;
        }
        if (s->permits >= a->_n) {
            s->permits -= a->_n;
            s->held += a->_n;
            *out = 0;
            break;
        }
        /* Take what there is (the queue is empty when permits > 0) and
         * wait for the rest. */
        node->_want = a->_n - s->permits;
        s->permits = 0;
        zk__waitq_push(&s->waiters, node);
        /* fall through */
    case ZK__W_QUEUED:
        zk__node_set_waker(node, cx);
        zk__lock_release(&s->lock);
        return ZK_PENDING;
    case ZK__W_DONE:
        *out = node->_flags & ZK__SEM_CLOSED ? -EPIPE : 0;
        break;
    default:
        *out = -EINVAL; /* polled again after it was ready */
        break;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk__lock_release(&s->lock);
    return ZK_READY;
}

static void zk__acq_drop(zk_future *f) {
    zk_semaphore_acquire_future *a = (zk_semaphore_acquire_future *)f;
    struct zk_semaphore *s = a->_sem;
    zk_wait_node *node = &a->_node;
    uint32_t st = zk__node_state(node);
    if (s == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return; /* nothing shared: only this future sets these states */
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&s->lock);
    st = zk__node_state(node);
    if (st == ZK__W_QUEUED) {
        /* Leave the queue; what it had collected goes to the next. */
        zk__waitq_remove(&s->waiters, node);
        zk__sem_assign_locked(s, a->_n - node->_want, &wl);
    } else if (st == ZK__W_DONE && !(node->_flags & ZK__SEM_CLOSED)) {
        /* Handed the permits but never saw them: pass them on. */
        s->held -= a->_n;
        zk__sem_assign_locked(s, a->_n, &wl);
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&s->lock);
    zk__wakelist_wake(&wl);
}

static const zk_future_ops zk__acq_ops = {zk__acq_poll, zk__acq_drop};

void zk__sem_future_init(zk_semaphore_acquire_future *f, struct zk_semaphore *s,
                         size_t n) {
    f->base.ops = &zk__acq_ops;
    f->_sem = s;
    f->_n = n;
    zk__node_init(&f->_node);
}

/* ---------------------------------------------------------------------- */
/* zk_semaphore                                                           */
/* ---------------------------------------------------------------------- */

int zk_semaphore_new(size_t permits, zk_semaphore **out) {
    if (out == NULL || permits > ZK_SEMAPHORE_MAX_PERMITS)
        return -EINVAL;
    zk_semaphore *s = malloc(sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    zk__sem_init(s, permits);
    *out = s;
    return 0;
}

int zk_semaphore_free(zk_semaphore *s) {
    if (s == NULL)
        return 0;
    if (!zk__sem_quiet(s, false))
        return -EBUSY;
    free(s);
    return 0;
}

void zk_semaphore_acquire_future_init(zk_semaphore_acquire_future *f,
                                      zk_semaphore *s, size_t n) {
    if (f != NULL)
        zk__sem_future_init(f, s, n);
}

int zk_semaphore_acquire(zk_semaphore *s, size_t n) {
    if (s == NULL || n == 0 || n > ZK_SEMAPHORE_MAX_PERMITS)
        return -EINVAL;
    zk_semaphore_acquire_future f;
    zk__sem_future_init(&f, s, n);
    return (int)zk__wait(&f.base, false, 0);
}

int zk_semaphore_acquire_until(zk_semaphore *s, size_t n, zk_instant deadline) {
    if (s == NULL || n == 0 || n > ZK_SEMAPHORE_MAX_PERMITS)
        return -EINVAL;
    zk_semaphore_acquire_future f;
    zk__sem_future_init(&f, s, n);
    return (int)zk__wait(&f.base, true, deadline);
}

int zk_semaphore_try_acquire(zk_semaphore *s, size_t n) {
    if (s == NULL || n == 0 || n > ZK_SEMAPHORE_MAX_PERMITS)
        return -EINVAL;
    return zk__sem_try_acquire(s, n);
}

int zk_semaphore_release(zk_semaphore *s, size_t n) {
    if (s == NULL)
        return -EINVAL;
    return zk__sem_release_held(s, n, NULL);
}

int zk_semaphore_close(zk_semaphore *s) {
    if (s == NULL)
        return -EINVAL;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&s->lock);
    if (s->closed) {
        zk__lock_release(&s->lock);
        return -EALREADY;
    }
    s->closed = true;
    zk_wait_node *w;
    while ((w = zk__waitq_pop(&s->waiters)) != NULL) {
        /* Partial permits come back; the waiter gets -EPIPE. */
        s->permits += zk__acq_of(w)->_n - w->_want;
        w->_flags = ZK__SEM_CLOSED;
        zk__wakelist_push(&wl, zk__node_take_waker(w));
        zk__node_set_state(w, ZK__W_DONE);
    }
    zk__lock_release(&s->lock);
    zk__wakelist_wake(&wl);
    return 0;
}

size_t zk_semaphore_available(zk_semaphore *s) {
    if (s == NULL)
        return 0;
    zk__lock_acquire(&s->lock);
    size_t n = s->permits;
    zk__lock_release(&s->lock);
    return n;
}
