/*
 * broadcast.c - every receiver sees every message, from a ring that a
 * send overwrites: message number `seq` lives in slot seq % cap while it
 * is among the last `cap` sent. Each receiver keeps the number of the next
 * message it wants; one that fell more than `cap` behind is told how many
 * it lost and moved to the oldest one kept.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan.h"

typedef struct zk__bcast {
    size_t elem, cap;
    char *buf;
    /* Number of the next message sent (messages sent so far). */
    uint64_t tail;
    zk__chan_ends ends;
} zk__bcast;

struct zk_broadcast_rx {
    zk__bcast *chan;
    uint64_t next; /* under the channel's lock */
};

static void zk__bcast_free(zk__bcast *c) {
    free(c->buf);
    free(c);
}

int zk_broadcast_new(size_t elem_size, size_t capacity, zk_broadcast_tx **tx,
                     zk_broadcast_rx **rx) {
    if (tx == NULL || rx == NULL || !zk__elem_ok(elem_size) || capacity == 0 ||
        capacity > ZK_CHANNEL_CAPACITY_MAX)
        return -EINVAL;
    zk__bcast *c = calloc(1, sizeof *c);
    zk_broadcast_rx *r = malloc(sizeof *r);
    if (c == NULL || r == NULL)
        goto nomem;
    c->buf = malloc(capacity * elem_size);
    if (c->buf == NULL)
        goto nomem;
    zk__ends_init(&c->ends);
    c->elem = elem_size;
    c->cap = capacity;
    r->chan = c;
    r->next = 0;
    *tx = (zk_broadcast_tx *)c;
    *rx = r;
    return 0;
nomem:
    if (c)
        free(c->buf);
    free(c);
    free(r);
    return -ENOMEM;
}

int zk_broadcast_tx_clone(zk_broadcast_tx *tx, zk_broadcast_tx **out) {
    if (tx == NULL || out == NULL)
        return -EINVAL;
    zk__bcast *c = (zk__bcast *)tx;
    zk__ends_add_sender(&c->ends);
    *out = tx;
    return 0;
}

int zk_broadcast_subscribe(zk_broadcast_tx *tx, zk_broadcast_rx **out) {
    if (tx == NULL || out == NULL)
        return -EINVAL;
    zk__bcast *c = (zk__bcast *)tx;
    zk_broadcast_rx *r = malloc(sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->chan = c;
    zk__lock_acquire(&c->ends.lock);
    c->ends.receivers++;
    r->next = c->tail;
    zk__lock_release(&c->ends.lock);
    *out = r;
    return 0;
}

int zk_broadcast_tx_close(zk_broadcast_tx **tx) {
    if (tx == NULL || *tx == NULL)
        return -EINVAL;
    zk__bcast *c = (zk__bcast *)*tx;
    *tx = NULL;
    if (zk__ends_close(&c->ends, true))
        zk__bcast_free(c);
    return 0;
}

int zk_broadcast_rx_close(zk_broadcast_rx **rx) {
    if (rx == NULL || *rx == NULL)
        return -EINVAL;
    zk_broadcast_rx *r = *rx;
    zk__bcast *c = r->chan;
    *rx = NULL;
    free(r);
    if (zk__ends_close(&c->ends, false))
        zk__bcast_free(c);
    return 0;
}

int zk_broadcast_send(zk_broadcast_tx *tx, const void *msg) {
    if (tx == NULL || msg == NULL)
        return -EINVAL;
    zk__bcast *c = (zk__bcast *)tx;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&c->ends.lock);
    if (c->ends.receivers == 0) {
        zk__lock_release(&c->ends.lock);
        return -EPIPE;
    }
    memcpy(c->buf + (c->tail % c->cap) * c->elem, msg, c->elem);
    c->tail++;
    zk__waitq_release_all(&c->ends.waiters, 0, &wl);
    int n = c->ends.receivers > INT32_MAX ? INT32_MAX : (int)c->ends.receivers;
    zk__lock_release(&c->ends.lock);
    zk__wakelist_wake(&wl);
    return n;
}

/* Under the lock: the receiver's next message, or why there is none. */
static int zk__bcast_take(zk_broadcast_rx *r, void *buf, uint64_t *missed) {
    zk__bcast *c = r->chan;
    if (r->next == c->tail)
        return c->ends.senders == 0 ? -EPIPE : -EAGAIN;
    if (c->tail - r->next > c->cap) {
        uint64_t oldest = c->tail - c->cap;
        if (missed)
            *missed = oldest - r->next;
        r->next = oldest;
        return -EOVERFLOW;
    }
    memcpy(buf, c->buf + (r->next % c->cap) * c->elem, c->elem);
    r->next++;
    return 0;
}

static zk_poll zk__bcast_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_broadcast_recv_future *b = (zk_broadcast_recv_future *)f;
    zk_broadcast_rx *r = b->_rx;
    zk_wait_node *node = &b->_node;
    if (r == NULL || b->_buf == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk__bcast *c = r->chan;
    zk__lock_acquire(&c->ends.lock);
    uint32_t st = zk__node_state(node);
    int rc =
        st == ZK__W_CONSUMED ? -EINVAL : zk__bcast_take(r, b->_buf, &b->missed);
    if (rc == -EAGAIN) {
        if (st != ZK__W_QUEUED)
            zk__waitq_push(&c->ends.waiters, node);
        zk__node_set_waker(node, cx);
        zk__lock_release(&c->ends.lock);
        return ZK_PENDING;
    }
    if (st == ZK__W_QUEUED)
        zk__waitq_remove(&c->ends.waiters, node);
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->ends.lock);
    *out = rc;
    return ZK_READY;
}

static void zk__bcast_drop(zk_future *f) {
    zk_broadcast_recv_future *b = (zk_broadcast_recv_future *)f;
    zk_wait_node *node = &b->_node;
    uint32_t st = zk__node_state(node);
    if (b->_rx == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk__bcast *c = b->_rx->chan;
    /* Every waiter is woken by a send: nothing to pass on. */
    zk__lock_acquire(&c->ends.lock);
    if (zk__node_state(node) == ZK__W_QUEUED)
        zk__waitq_remove(&c->ends.waiters, node);
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->ends.lock);
}

static const zk_future_ops zk__bcast_ops = {zk__bcast_poll, zk__bcast_drop};

void zk_broadcast_recv_future_init(zk_broadcast_recv_future *f,
                                   zk_broadcast_rx *rx, void *buf) {
    if (f == NULL)
        return;
    f->base.ops = &zk__bcast_ops;
    f->_rx = rx;
    f->_buf = buf;
    f->missed = 0;
    zk__node_init(&f->_node);
}

static int zk__bcast_recv(zk_broadcast_rx *rx, void *buf, uint64_t *missed,
                          bool has_deadline, zk_instant deadline) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    zk_broadcast_recv_future f;
    zk_broadcast_recv_future_init(&f, rx, buf);
    int rc = (int)zk__wait(&f.base, has_deadline, deadline);
    if (rc == -EOVERFLOW && missed)
        *missed = f.missed;
    return rc;
}

int zk_broadcast_recv(zk_broadcast_rx *rx, void *buf, uint64_t *missed) {
    return zk__bcast_recv(rx, buf, missed, false, 0);
}

int zk_broadcast_recv_until(zk_broadcast_rx *rx, void *buf, uint64_t *missed,
                            zk_instant deadline) {
    return zk__bcast_recv(rx, buf, missed, true, deadline);
}

int zk_broadcast_try_recv(zk_broadcast_rx *rx, void *buf, uint64_t *missed) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    zk__bcast *c = rx->chan;
    zk__lock_acquire(&c->ends.lock);
    int rc = zk__bcast_take(rx, buf, missed);
    zk__lock_release(&c->ends.lock);
    return rc;
}

size_t zk__broadcast_elem_size(const zk_broadcast_rx *rx) {
    return rx->chan->elem;
}
