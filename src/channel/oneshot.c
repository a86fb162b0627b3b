/* oneshot.c - a channel for one value: one allocation holding the state,
 * the waiting receives and the value itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan.h"

enum { ZK__ONESHOT_EMPTY, ZK__ONESHOT_SENT, ZK__ONESHOT_TAKEN };

typedef struct zk__oneshot {
    zk__lock lock;
    size_t elem;
    int state;
    bool tx_open, rx_open;
    zk__waitq waiters;
    /* Aligned for any message type. */
    _Alignas(max_align_t) char value[];
} zk__oneshot;

int zk_oneshot_new(size_t elem_size, zk_oneshot_tx **tx, zk_oneshot_rx **rx) {
    if (tx == NULL || rx == NULL || !zk__elem_ok(elem_size))
        return -EINVAL;
    zk__oneshot *c = malloc(sizeof *c + elem_size);
    if (c == NULL)
        return -ENOMEM;
    zk__lock_init(&c->lock);
    c->elem = elem_size;
    c->state = ZK__ONESHOT_EMPTY;
    c->tx_open = c->rx_open = true;
    zk__waitq_init(&c->waiters);
    *tx = (zk_oneshot_tx *)c;
    *rx = (zk_oneshot_rx *)c;
    return 0;
}

static void zk__oneshot_free(zk__oneshot *c) {
    free(c);
}

/* Closes the sending side, sending `msg` first when not NULL. */
static int zk__oneshot_finish(zk__oneshot *c, const void *msg) {
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&c->lock);
    int rc = 0;
    if (msg != NULL) {
        if (c->rx_open) {
            memcpy(c->value, msg, c->elem);
            c->state = ZK__ONESHOT_SENT;
        } else {
            rc = -EPIPE;
        }
    }
    c->tx_open = false;
    zk__waitq_release_all(&c->waiters, 0, &wl);
    bool gone = !c->rx_open;
    zk__lock_release(&c->lock);
    zk__wakelist_wake(&wl);
    if (gone)
        zk__oneshot_free(c);
    return rc;
}

int zk_oneshot_send(zk_oneshot_tx **tx, const void *msg) {
    if (tx == NULL || *tx == NULL || msg == NULL)
        return -EINVAL;
    zk__oneshot *c = (zk__oneshot *)*tx;
    *tx = NULL;
    return zk__oneshot_finish(c, msg);
}

int zk_oneshot_tx_close(zk_oneshot_tx **tx) {
    if (tx == NULL || *tx == NULL)
        return -EINVAL;
    zk__oneshot *c = (zk__oneshot *)*tx;
    *tx = NULL;
    return zk__oneshot_finish(c, NULL);
}

int zk_oneshot_rx_close(zk_oneshot_rx **rx) {
    if (rx == NULL || *rx == NULL)
        return -EINVAL;
    zk__oneshot *c = (zk__oneshot *)*rx;
    *rx = NULL;
    zk__lock_acquire(&c->lock);
    c->rx_open = false;
    bool gone = !c->tx_open;
    zk__lock_release(&c->lock);
    if (gone)
        zk__oneshot_free(c);
    return 0;
}

/* Under the lock: takes the value, or says why not. */
static int zk__oneshot_take(zk__oneshot *c, void *buf) {
    if (c->state == ZK__ONESHOT_SENT) {
        memcpy(buf, c->value, c->elem);
        c->state = ZK__ONESHOT_TAKEN;
        return 0;
    }
    if (c->state == ZK__ONESHOT_TAKEN || !c->tx_open)
        return -EPIPE;
    return -EAGAIN;
}

static zk_poll zk__oneshot_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_oneshot_recv_future *r = (zk_oneshot_recv_future *)f;
    zk__oneshot *c = r->_chan;
    zk_wait_node *node = &r->_node;
    if (c == NULL || r->_buf == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk__lock_acquire(&c->lock);
    uint32_t st = zk__node_state(node);
    int rc = st == ZK__W_CONSUMED ? -EINVAL : zk__oneshot_take(c, r->_buf);
    if (rc == -EAGAIN) {
        if (st != ZK__W_QUEUED)
            zk__waitq_push(&c->waiters, node);
        zk__node_set_waker(node, cx);
        zk__lock_release(&c->lock);
        return ZK_PENDING;
    }
    if (st == ZK__W_QUEUED)
        zk__waitq_remove(&c->waiters, node);
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->lock);
    *out = rc;
    return ZK_READY;
}

static void zk__oneshot_drop(zk_future *f) {
    zk_oneshot_recv_future *r = (zk_oneshot_recv_future *)f;
    zk__oneshot *c = r->_chan;
    zk_wait_node *node = &r->_node;
    uint32_t st = zk__node_state(node);
    if (c == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk__lock_acquire(&c->lock);
    if (zk__node_state(node) == ZK__W_QUEUED)
        zk__waitq_remove(&c->waiters, node);
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->lock);
}

static const zk_future_ops zk__oneshot_ops = {zk__oneshot_poll,
                                              zk__oneshot_drop};

void zk_oneshot_recv_future_init(zk_oneshot_recv_future *f, zk_oneshot_rx *rx,
                                 void *buf) {
    if (f == NULL)
        return;
    f->base.ops = &zk__oneshot_ops;
    f->_chan = rx;
    f->_buf = buf;
    zk__node_init(&f->_node);
}

static int zk__oneshot_recv(zk_oneshot_rx *rx, void *buf, bool has_deadline,
                            zk_instant deadline) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    zk_oneshot_recv_future f;
    zk_oneshot_recv_future_init(&f, rx, buf);
    return (int)zk__wait(&f.base, has_deadline, deadline);
}

int zk_oneshot_recv(zk_oneshot_rx *rx, void *buf) {
    return zk__oneshot_recv(rx, buf, false, 0);
}

int zk_oneshot_recv_until(zk_oneshot_rx *rx, void *buf, zk_instant deadline) {
    return zk__oneshot_recv(rx, buf, true, deadline);
}

int zk_oneshot_try_recv(zk_oneshot_rx *rx, void *buf) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    zk__oneshot *c = (zk__oneshot *)rx;
    zk__lock_acquire(&c->lock);
    int rc = zk__oneshot_take(c, buf);
    zk__lock_release(&c->lock);
    return rc;
}
