/* barrier.c - a reusable barrier whose waiters can withdraw. */
#include <errno.h>
#include <stdlib.h>

#include "sync/waitq.h"

struct zk_barrier {
    zk__lock lock;
    size_t n;
    /* Tasks that arrived in the current round and still wait. */
    size_t arrived;
    zk__waitq waiters;
};

int zk_barrier_new(size_t n, zk_barrier **out) {
    if (out == NULL || n == 0)
        return -EINVAL;
    zk_barrier *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    b->n = n;
    b->arrived = 0;
    zk__waitq_init(&b->waiters);
    zk__lock_init(&b->lock);
    *out = b;
    return 0;
}

int zk_barrier_free(zk_barrier *b) {
    if (b == NULL)
        return 0;
    zk__lock_acquire(&b->lock);
    bool busy = !zk__waitq_empty(&b->waiters);
    zk__lock_release(&b->lock);
    if (busy)
        return -EBUSY;
    free(b);
    return 0;
}

static zk_poll zk__barrier_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_barrier_future *bf = (zk_barrier_future *)f;
    zk_barrier *b = bf->_barrier;
    zk_wait_node *node = &bf->_node;
    if (b == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&b->lock);
    switch (zk__node_state(node)) {
    case ZK__W_IDLE:
        if (++b->arrived == b->n) {
            /* The last to arrive leads and releases the round. */
            b->arrived = 0;
            zk__waitq_release_all(&b->waiters, 0, &wl);
            *out = ZK_BARRIER_LEADER;
            break;
        }
        zk__waitq_push(&b->waiters, node);
        /* fall through */
    case ZK__W_QUEUED:
        zk__node_set_waker(node, cx);
        zk__lock_release(&b->lock);
        return ZK_PENDING;
    case ZK__W_DONE:
        *out = 0;
        break;
    default:
        *out = -EINVAL;
        break;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk__lock_release(&b->lock);
    zk__wakelist_wake(&wl);
    return ZK_READY;
}

static void zk__barrier_drop(zk_future *f) {
    zk_barrier_future *bf = (zk_barrier_future *)f;
    zk_barrier *b = bf->_barrier;
    zk_wait_node *node = &bf->_node;
    uint32_t st = zk__node_state(node);
    if (b == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk__lock_acquire(&b->lock);
    if (zk__node_state(node) == ZK__W_QUEUED) {
        /* The round has not completed: withdraw the arrival. */
        zk__waitq_remove(&b->waiters, node);
        b->arrived--;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&b->lock);
}

static const zk_future_ops zk__barrier_ops = {zk__barrier_poll,
                                              zk__barrier_drop};

void zk_barrier_future_init(zk_barrier_future *f, zk_barrier *b) {
    if (f == NULL)
        return;
    f->base.ops = &zk__barrier_ops;
    f->_barrier = b;
    zk__node_init(&f->_node);
}

int zk_barrier_wait(zk_barrier *b) {
    if (b == NULL)
        return -EINVAL;
    zk_barrier_future f;
    zk_barrier_future_init(&f, b);
    return (int)zk__wait(&f.base, false, 0);
}

int zk_barrier_wait_until(zk_barrier *b, zk_instant deadline) {
    if (b == NULL)
        return -EINVAL;
    zk_barrier_future f;
    zk_barrier_future_init(&f, b);
    return (int)zk__wait(&f.base, true, deadline);
}
