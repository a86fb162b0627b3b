/*
 * once_cell.c - a cell initialised once. The right to initialise (the
 * "turn") is held by one caller at a time; when it gives up, the turn goes
 * to the first waiter, so a failed initializer lets the next one try.
 */
#include <errno.h>
#include <stdlib.h>

#include "sync/waitq.h"

enum { ZK__ONCE_EMPTY, ZK__ONCE_RUNNING, ZK__ONCE_SET };

/* What a DONE waiter was handed. */
#define ZK__ONCE_VALUE 1u
#define ZK__ONCE_TURN  2u

struct zk_once_cell {
    zk__lock lock;
    int state;
    void *value;
    zk__waitq waiters;
};

int zk_once_cell_new(zk_once_cell **out) {
    if (out == NULL)
        return -EINVAL;
    zk_once_cell *c = malloc(sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->state = ZK__ONCE_EMPTY;
    c->value = NULL;
    zk__waitq_init(&c->waiters);
    zk__lock_init(&c->lock);
    *out = c;
    return 0;
}

int zk_once_cell_free(zk_once_cell *c) {
    if (c == NULL)
        return 0;
    zk__lock_acquire(&c->lock);
    bool busy = c->state == ZK__ONCE_RUNNING || !zk__waitq_empty(&c->waiters);
    zk__lock_release(&c->lock);
    if (busy)
        return -EBUSY;
    free(c);
    return 0;
}

int zk_once_cell_get(zk_once_cell *c, void **value) {
    if (c == NULL || value == NULL)
        return -EINVAL;
    zk__lock_acquire(&c->lock);
    int rc = -EAGAIN;
    if (c->state == ZK__ONCE_SET) {
        *value = c->value;
        rc = 0;
    }
    zk__lock_release(&c->lock);
    return rc;
}

/* Under the lock, with the turn held: hands it to the first waiter or
 * empties the cell. */
static zk_waker zk__once_pass_turn_locked(zk_once_cell *c) {
    zk_wait_node *w = zk__waitq_pop(&c->waiters);
    if (w == NULL) {
        c->state = ZK__ONCE_EMPTY;
        return (zk_waker){0};
    }
    w->_flags = ZK__ONCE_TURN;
    zk_waker wk = zk__node_take_waker(w);
    zk__node_set_state(w, ZK__W_DONE);
    return wk;
}

int zk_once_cell_complete(zk_once_cell *c, void *value) {
    if (c == NULL)
        return -EINVAL;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&c->lock);
    if (c->state != ZK__ONCE_RUNNING) {
        zk__lock_release(&c->lock);
        return -EPERM;
    }
    c->value = value;
    c->state = ZK__ONCE_SET;
    zk__waitq_release_all(&c->waiters, ZK__ONCE_VALUE, &wl);
    zk__lock_release(&c->lock);
    zk__wakelist_wake(&wl);
    return 0;
}

int zk_once_cell_abandon(zk_once_cell *c) {
    if (c == NULL)
        return -EINVAL;
    zk__lock_acquire(&c->lock);
    if (c->state != ZK__ONCE_RUNNING) {
        zk__lock_release(&c->lock);
        return -EPERM;
    }
    zk_waker wk = zk__once_pass_turn_locked(c);
    zk__lock_release(&c->lock);
    zk_waker_wake(&wk);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The wait future                                                        */
/* ---------------------------------------------------------------------- */

static zk_poll zk__once_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_once_cell_future *of = (zk_once_cell_future *)f;
    zk_once_cell *c = of->_cell;
    zk_wait_node *node = &of->_node;
    if (c == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk__lock_acquire(&c->lock);
    switch (zk__node_state(node)) {
    case ZK__W_IDLE:
        if (c->state == ZK__ONCE_SET) {
            *out = 0;
            break;
        }
        if (c->state == ZK__ONCE_EMPTY) {
            c->state = ZK__ONCE_RUNNING;
            *out = ZK_ONCE_INIT;
            break;
        }
        zk__waitq_push(&c->waiters, node);
        /* fall through */
    case ZK__W_QUEUED:
        zk__node_set_waker(node, cx);
        zk__lock_release(&c->lock);
        return ZK_PENDING;
    case ZK__W_DONE:
        *out = node->_flags == ZK__ONCE_TURN ? ZK_ONCE_INIT : 0;
        break;
    default:
        *out = -EINVAL;
        break;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk__lock_release(&c->lock);
    return ZK_READY;
}

static void zk__once_drop(zk_future *f) {
    zk_once_cell_future *of = (zk_once_cell_future *)f;
    zk_once_cell *c = of->_cell;
    zk_wait_node *node = &of->_node;
    uint32_t st = zk__node_state(node);
    if (c == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk_waker wk = {0};
    zk__lock_acquire(&c->lock);
    st = zk__node_state(node);
    if (st == ZK__W_QUEUED)
        zk__waitq_remove(&c->waiters, node);
    else if (st == ZK__W_DONE && node->_flags == ZK__ONCE_TURN)
        wk = zk__once_pass_turn_locked(c); /* handed the turn, never saw it */
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->lock);
    zk_waker_wake(&wk);
}

static const zk_future_ops zk__once_ops = {zk__once_poll, zk__once_drop};

void zk_once_cell_future_init(zk_once_cell_future *f, zk_once_cell *c) {
    if (f == NULL)
        return;
    f->base.ops = &zk__once_ops;
    f->_cell = c;
    zk__node_init(&f->_node);
}

static int zk__once_get_or_init(zk_once_cell *c, zk_once_init_fn fn, void *arg,
                                void **value, bool has_deadline,
                                zk_instant deadline) {
    if (c == NULL || fn == NULL || value == NULL)
        return -EINVAL;
    zk_once_cell_future f;
    zk_once_cell_future_init(&f, c);
    int rc = (int)zk__wait(&f.base, has_deadline, deadline);
    if (rc < 0)
        return rc;
    if (rc == ZK_ONCE_INIT) {
        void *v = NULL;
        rc = fn(arg, &v);
        if (rc < 0) {
            zk_once_cell_abandon(c);
            return rc;
        }
        zk_once_cell_complete(c, v);
    }
    return zk_once_cell_get(c, value);
}

int zk_once_cell_get_or_init(zk_once_cell *c, zk_once_init_fn fn, void *arg,
                             void **value) {
    return zk__once_get_or_init(c, fn, arg, value, false, 0);
}

int zk_once_cell_get_or_init_until(zk_once_cell *c, zk_once_init_fn fn,
                                   void *arg, void **value,
                                   zk_instant deadline) {
    return zk__once_get_or_init(c, fn, arg, value, true, deadline);
}
