/* watch.c - one value, replaced by senders; receivers remember the version
 * they saw and wait for a newer one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan.h"

typedef struct zk__watch {
    size_t elem;
    /* Bumped by every send. */
    uint64_t version;
    zk__chan_ends ends;
    _Alignas(max_align_t) char value[];
} zk__watch;

struct zk_watch_rx {
    zk__watch *chan;
    uint64_t seen; /* under the channel's lock */
};

static void zk__watch_free(zk__watch *c) {
    free(c);
}

int zk_watch_new(size_t elem_size, const void *initial, zk_watch_tx **tx,
                 zk_watch_rx **rx) {
    if (tx == NULL || rx == NULL || initial == NULL || !zk__elem_ok(elem_size))
        return -EINVAL;
    zk__watch *c = malloc(sizeof *c + elem_size);
    zk_watch_rx *r = malloc(sizeof *r);
    if (c == NULL || r == NULL) {
        free(c);
        free(r);
        return -ENOMEM;
    }
    zk__ends_init(&c->ends);
    c->elem = elem_size;
    c->version = 0;
    memcpy(c->value, initial, elem_size);
    r->chan = c;
    r->seen = 0;
    *tx = (zk_watch_tx *)c;
    *rx = r;
    return 0;
}

int zk_watch_tx_clone(zk_watch_tx *tx, zk_watch_tx **out) {
    if (tx == NULL || out == NULL)
        return -EINVAL;
    zk__watch *c = (zk__watch *)tx;
    zk__ends_add_sender(&c->ends);
    *out = tx;
    return 0;
}

static int zk__watch_new_rx(zk__watch *c, const zk_watch_rx *like,
                            zk_watch_rx **out) {
    zk_watch_rx *r = malloc(sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->chan = c;
    zk__lock_acquire(&c->ends.lock);
    c->ends.receivers++;
    r->seen = like ? like->seen : c->version;
    zk__lock_release(&c->ends.lock);
    *out = r;
    return 0;
}

int zk_watch_subscribe(zk_watch_tx *tx, zk_watch_rx **out) {
    if (tx == NULL || out == NULL)
        return -EINVAL;
    return zk__watch_new_rx((zk__watch *)tx, NULL, out);
}

int zk_watch_rx_clone(zk_watch_rx *rx, zk_watch_rx **out) {
    if (rx == NULL || out == NULL)
        return -EINVAL;
    return zk__watch_new_rx(rx->chan, rx, out);
}

int zk_watch_tx_close(zk_watch_tx **tx) {
    if (tx == NULL || *tx == NULL)
        return -EINVAL;
    zk__watch *c = (zk__watch *)*tx;
    *tx = NULL;
    if (zk__ends_close(&c->ends, true))
        zk__watch_free(c);
    return 0;
}

int zk_watch_rx_close(zk_watch_rx **rx) {
    if (rx == NULL || *rx == NULL)
        return -EINVAL;
    zk_watch_rx *r = *rx;
    zk__watch *c = r->chan;
    *rx = NULL;
    free(r);
    if (zk__ends_close(&c->ends, false))
        zk__watch_free(c);
    return 0;
}

int zk_watch_send(zk_watch_tx *tx, const void *value) {
    if (tx == NULL || value == NULL)
        return -EINVAL;
    zk__watch *c = (zk__watch *)tx;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&c->ends.lock);
    if (c->ends.receivers == 0) {
        zk__lock_release(&c->ends.lock);
        return -EPIPE;
    }
    memcpy(c->value, value, c->elem);
    c->version++;
    zk__waitq_release_all(&c->ends.waiters, 0, &wl);
    zk__lock_release(&c->ends.lock);
    zk__wakelist_wake(&wl);
    return 0;
}

int zk_watch_borrow(zk_watch_rx *rx, void *buf) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    zk__watch *c = rx->chan;
    zk__lock_acquire(&c->ends.lock);
    memcpy(buf, c->value, c->elem);
    rx->seen = c->version;
    zk__lock_release(&c->ends.lock);
    return 0;
}

static zk_poll zk__watch_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_watch_changed_future *w = (zk_watch_changed_future *)f;
    zk_watch_rx *r = w->_rx;
    zk_wait_node *node = &w->_node;
    if (r == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk__watch *c = r->chan;
    zk__lock_acquire(&c->ends.lock);
    uint32_t st = zk__node_state(node);
    int rc;
    if (st == ZK__W_CONSUMED) {
        rc = -EINVAL;
    } else if (r->seen != c->version) {
        r->seen = c->version;
        rc = 0;
    } else if (c->ends.senders == 0) {
        rc = -EPIPE;
    } else {
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

static void zk__watch_drop(zk_future *f) {
    zk_watch_changed_future *w = (zk_watch_changed_future *)f;
    zk_wait_node *node = &w->_node;
    uint32_t st = zk__node_state(node);
    if (w->_rx == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk__watch *c = w->_rx->chan;
    zk__lock_acquire(&c->ends.lock);
    if (zk__node_state(node) == ZK__W_QUEUED)
        zk__waitq_remove(&c->ends.waiters, node);
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->ends.lock);
}

static const zk_future_ops zk__watch_ops = {zk__watch_poll, zk__watch_drop};

void zk_watch_changed_future_init(zk_watch_changed_future *f, zk_watch_rx *rx) {
    if (f == NULL)
        return;
    f->base.ops = &zk__watch_ops;
    f->_rx = rx;
    zk__node_init(&f->_node);
}

static int zk__watch_changed(zk_watch_rx *rx, bool has_deadline,
                             zk_instant deadline) {
    if (rx == NULL)
        return -EINVAL;
    zk_watch_changed_future f;
    zk_watch_changed_future_init(&f, rx);
    return (int)zk__wait(&f.base, has_deadline, deadline);
}

int zk_watch_changed(zk_watch_rx *rx) {
    return zk__watch_changed(rx, false, 0);
}

int zk_watch_changed_until(zk_watch_rx *rx, zk_instant deadline) {
    return zk__watch_changed(rx, true, deadline);
}

size_t zk__watch_elem_size(const zk_watch_rx *rx) {
    return rx->chan->elem;
}
