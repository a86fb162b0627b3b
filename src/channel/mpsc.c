/*
 * mpsc.c - multi-producer channels, bounded and unbounded.
 *
 * One lock guards a ring of messages and two FIFO queues of waiters:
 * senders waiting for room (bounded channels) and receive futures waiting
 * for a message. When the receiver frees a slot while senders wait, the
 * slot is reserved for the first of them (`reserved`) and that sender is
 * woken; the sender copies its message in on its next poll. So a sender
 * whose future is dropped before that poll sent nothing, and gives its
 * reservation to the next waiting sender. A receive copies its message out
 * inside its poll: a dropped receive took nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan.h"
#include "runtime/scope.h"

/* Flag of a sender woken because the receiver is gone. */
#define ZK__MPSC_CLOSED 1u
/* The smallest ring of an unbounded channel. */
#define ZK__MPSC_MIN_SLOTS 16

typedef struct zk__mpsc {
    pthread_mutex_t lock;
    size_t elem;
    /* 0 for an unbounded channel. */
    size_t cap;
    /* The ring: `slots` places, `len` messages from `head`. */
    char *buf;
    size_t slots, head, len;
    /* Slots promised to woken senders that have not filled them yet. */
    size_t reserved;
    size_t senders;
    bool rx_open;
    zk__waitq send_waiters;
    zk__waitq recv_waiters;
} zk__mpsc;

static int zk__mpsc_create(size_t elem, size_t cap, zk_mpsc_tx **tx,
                           zk_mpsc_rx **rx) {
    if (tx == NULL || rx == NULL || !zk__elem_ok(elem))
        return -EINVAL;
    zk__mpsc *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->elem = elem;
    c->cap = cap;
    c->slots = cap ? cap : ZK__MPSC_MIN_SLOTS;
    c->buf = malloc(c->slots * elem);
    if (c->buf == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buf);
        free(c);
        return -ENOMEM;
    }
    c->senders = 1;
    c->rx_open = true;
    zk__waitq_init(&c->send_waiters);
    zk__waitq_init(&c->recv_waiters);
    *tx = (zk_mpsc_tx *)c;
    *rx = (zk_mpsc_rx *)c;
    return 0;
}

int zk_mpsc_new(size_t elem_size, size_t capacity, zk_mpsc_tx **tx,
                zk_mpsc_rx **rx) {
    if (capacity == 0 || capacity > ZK_CHANNEL_CAPACITY_MAX)
        return -EINVAL;
    return zk__mpsc_create(elem_size, capacity, tx, rx);
}

int zk_mpsc_new_unbounded(size_t elem_size, zk_mpsc_tx **tx, zk_mpsc_rx **rx) {
    return zk__mpsc_create(elem_size, 0, tx, rx);
}

static void zk__mpsc_free(zk__mpsc *c) {
    pthread_mutex_destroy(&c->lock);
    free(c->buf);
    free(c);
}

/* ---------------------------------------------------------------------- */
/* The ring, under the lock                                               */
/* ---------------------------------------------------------------------- */

/* Makes room for one more message in an unbounded channel. */
static int zk__mpsc_grow(zk__mpsc *c) {
    if (c->len < c->slots)
        return 0;
    if (c->slots > SIZE_MAX / 2 / c->elem)
        return -ENOMEM;
    size_t slots = c->slots * 2;
    char *buf = malloc(slots * c->elem);
    if (buf == NULL)
        return -ENOMEM;
    size_t first = c->slots - c->head; /* messages before the wrap */
    if (first > c->len)
        first = c->len;
    memcpy(buf, c->buf + c->head * c->elem, first * c->elem);
    memcpy(buf + first * c->elem, c->buf, (c->len - first) * c->elem);
    free(c->buf);
    c->buf = buf;
    c->slots = slots;
    c->head = 0;
    return 0;
}

static void zk__mpsc_push(zk__mpsc *c, const void *msg) {
    size_t at = (c->head + c->len) % c->slots;
    memcpy(c->buf + at * c->elem, msg, c->elem);
    c->len++;
}

/* Wakes the first waiting receive, if any. */
static zk_waker zk__mpsc_wake_receiver(zk__mpsc *c) {
    zk_wait_node *w = zk__waitq_pop(&c->recv_waiters);
    if (w == NULL)
        return (zk_waker){0};
    zk_waker wk = zk__node_take_waker(w);
    zk__node_set_state(w, ZK__W_DONE);
    return wk;
}

/* A slot became free in a bounded channel: reserve it for the first
 * waiting sender, if any. */
static zk_waker zk__mpsc_slot_freed(zk__mpsc *c) {
    zk_wait_node *w = zk__waitq_pop(&c->send_waiters);
    if (w == NULL)
        return (zk_waker){0};
    c->reserved++;
    w->_flags = 0;
    zk_waker wk = zk__node_take_waker(w);
    zk__node_set_state(w, ZK__W_DONE);
    return wk;
}

/* Takes the oldest message into `buf`; returns the waker of a sender that
 * got the freed slot. */
static zk_waker zk__mpsc_pop(zk__mpsc *c, void *buf) {
    memcpy(buf, c->buf + c->head * c->elem, c->elem);
    c->head = (c->head + 1) % c->slots;
    c->len--;
    return c->cap ? zk__mpsc_slot_freed(c) : (zk_waker){0};
}

/* Sends now if possible: 0, -EAGAIN (full or others waiting), -EPIPE,
 * -ENOMEM. On 0, `*wake` is a receiver to wake. */
static int zk__mpsc_send_now(zk__mpsc *c, const void *msg, zk_waker *wake) {
    if (!c->rx_open)
        return -EPIPE;
    if (c->cap) {
        if (!zk__waitq_empty(&c->send_waiters) ||
            c->len + c->reserved >= c->cap)
            return -EAGAIN;
    } else {
        int rc = zk__mpsc_grow(c);
        if (rc != 0)
            return rc;
    }
    zk__mpsc_push(c, msg);
    *wake = zk__mpsc_wake_receiver(c);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Sending                                                                */
/* ---------------------------------------------------------------------- */

static zk_poll zk__mpsc_send_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_mpsc_send_future *s = (zk_mpsc_send_future *)f;
    zk__mpsc *c = s->_chan;
    zk_wait_node *node = &s->_node;
    if (c == NULL || s->_msg == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk_waker wake = {0};
    pthread_mutex_lock(&c->lock);
    switch (zk__node_state(node)) {
    case ZK__W_IDLE: {
        int rc = zk__mpsc_send_now(c, s->_msg, &wake);
        if (rc != -EAGAIN) {
            *out = rc;
            break;
        }
        zk__waitq_push(&c->send_waiters, node);
    }
        /* fall through */
    case ZK__W_QUEUED:
        zk__node_set_waker(node, cx);
        pthread_mutex_unlock(&c->lock);
        return ZK_PENDING;
    case ZK__W_DONE:
        if (node->_flags & ZK__MPSC_CLOSED) {
            *out = -EPIPE;
            break;
        }
        /* Fill the slot reserved for us. */
        c->reserved--;
        if (!c->rx_open) {
            *out = -EPIPE;
            break;
        }
        zk__mpsc_push(c, s->_msg);
        wake = zk__mpsc_wake_receiver(c);
        *out = 0;
        break;
    default:
        *out = -EINVAL;
        break;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    pthread_mutex_unlock(&c->lock);
    zk_waker_wake(&wake);
    return ZK_READY;
}

static void zk__mpsc_send_drop(zk_future *f) {
    zk_mpsc_send_future *s = (zk_mpsc_send_future *)f;
    zk__mpsc *c = s->_chan;
    zk_wait_node *node = &s->_node;
    uint32_t st = zk__node_state(node);
    if (c == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk_waker wake = {0};
    pthread_mutex_lock(&c->lock);
    st = zk__node_state(node);
    if (st == ZK__W_QUEUED) {
        zk__waitq_remove(&c->send_waiters, node);
    } else if (st == ZK__W_DONE && !(node->_flags & ZK__MPSC_CLOSED)) {
        /* A reserved slot we will not fill: the next sender's. */
        c->reserved--;
        wake = zk__mpsc_slot_freed(c);
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    pthread_mutex_unlock(&c->lock);
    zk_waker_wake(&wake);
}

static const zk_future_ops zk__mpsc_send_ops = {zk__mpsc_send_poll,
                                                zk__mpsc_send_drop};

void zk_mpsc_send_future_init(zk_mpsc_send_future *f, zk_mpsc_tx *tx,
                              const void *msg) {
    if (f == NULL)
        return;
    f->base.ops = &zk__mpsc_send_ops;
    f->_chan = tx;
    f->_msg = msg;
    zk__node_init(&f->_node);
}

static int zk__mpsc_send_wait(zk_mpsc_tx *tx, const void *msg,
                              bool has_deadline, zk_instant deadline) {
    if (tx == NULL || msg == NULL)
        return -EINVAL;
    zk__mpsc *c = (zk__mpsc *)tx;
    /* An aborted task's calls fail, as its awaits do (and so do those of
     * a task whose cancel scope was cancelled or expired). */
    int cancel = zk__cancel_status();
    if (cancel != 0)
        return cancel;
    /* The common case takes the lock once and builds no future. */
    zk_waker wake = {0};
    pthread_mutex_lock(&c->lock);
    int rc = zk__mpsc_send_now(c, msg, &wake);
    pthread_mutex_unlock(&c->lock);
    zk_waker_wake(&wake);
    if (rc != -EAGAIN)
        return rc;
    zk_mpsc_send_future f;
    zk_mpsc_send_future_init(&f, tx, msg);
    return (int)zk__wait(&f.base, has_deadline, deadline);
}

int zk_mpsc_send(zk_mpsc_tx *tx, const void *msg) {
    return zk__mpsc_send_wait(tx, msg, false, 0);
}

int zk_mpsc_send_until(zk_mpsc_tx *tx, const void *msg, zk_instant deadline) {
    return zk__mpsc_send_wait(tx, msg, true, deadline);
}

int zk_mpsc_try_send(zk_mpsc_tx *tx, const void *msg) {
    if (tx == NULL || msg == NULL)
        return -EINVAL;
    zk__mpsc *c = (zk__mpsc *)tx;
    zk_waker wake = {0};
    pthread_mutex_lock(&c->lock);
    int rc = zk__mpsc_send_now(c, msg, &wake);
    pthread_mutex_unlock(&c->lock);
    zk_waker_wake(&wake);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Receiving                                                              */
/* ---------------------------------------------------------------------- */

static zk_poll zk__mpsc_recv_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_mpsc_recv_future *r = (zk_mpsc_recv_future *)f;
    zk__mpsc *c = r->_chan;
    zk_wait_node *node = &r->_node;
    if (c == NULL || r->_buf == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk_waker wake = {0};
    pthread_mutex_lock(&c->lock);
    uint32_t st = zk__node_state(node);
    if (st == ZK__W_CONSUMED) {
        *out = -EINVAL;
    } else if (c->len > 0) {
        if (st == ZK__W_QUEUED)
            zk__waitq_remove(&c->recv_waiters, node);
        wake = zk__mpsc_pop(c, r->_buf);
        *out = 0;
    } else if (c->senders == 0) {
        if (st == ZK__W_QUEUED)
            zk__waitq_remove(&c->recv_waiters, node);
        *out = -EPIPE;
    } else {
        /* Nothing yet (or a message we were woken for went to another
         * receive of the same handle): wait (again). */
        if (st != ZK__W_QUEUED)
            zk__waitq_push(&c->recv_waiters, node);
        zk__node_set_waker(node, cx);
        pthread_mutex_unlock(&c->lock);
        return ZK_PENDING;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    pthread_mutex_unlock(&c->lock);
    zk_waker_wake(&wake);
    return ZK_READY;
}

static void zk__mpsc_recv_drop(zk_future *f) {
    zk_mpsc_recv_future *r = (zk_mpsc_recv_future *)f;
    zk__mpsc *c = r->_chan;
    zk_wait_node *node = &r->_node;
    uint32_t st = zk__node_state(node);
    if (c == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk_waker wake = {0};
    pthread_mutex_lock(&c->lock);
    st = zk__node_state(node);
    if (st == ZK__W_QUEUED)
        zk__waitq_remove(&c->recv_waiters, node);
    else if (st == ZK__W_DONE && (c->len > 0 || c->senders == 0))
        wake = zk__mpsc_wake_receiver(c); /* woken for nothing: pass on */
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    pthread_mutex_unlock(&c->lock);
    zk_waker_wake(&wake);
}

static const zk_future_ops zk__mpsc_recv_ops = {zk__mpsc_recv_poll,
                                                zk__mpsc_recv_drop};

void zk_mpsc_recv_future_init(zk_mpsc_recv_future *f, zk_mpsc_rx *rx,
                              void *buf) {
    if (f == NULL)
        return;
    f->base.ops = &zk__mpsc_recv_ops;
    f->_chan = rx;
    f->_buf = buf;
    zk__node_init(&f->_node);
}

/* Receives now if possible: 0, -EAGAIN or -EPIPE. */
static int zk__mpsc_recv_now(zk__mpsc *c, void *buf) {
    zk_waker wake = {0};
    int rc = -EAGAIN;
    pthread_mutex_lock(&c->lock);
    if (c->len > 0) {
        wake = zk__mpsc_pop(c, buf);
        rc = 0;
    } else if (c->senders == 0) {
        rc = -EPIPE;
    }
    pthread_mutex_unlock(&c->lock);
    zk_waker_wake(&wake);
    return rc;
}

static int zk__mpsc_recv_wait(zk_mpsc_rx *rx, void *buf, bool has_deadline,
                              zk_instant deadline) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    int cancel = zk__cancel_status();
    if (cancel != 0)
        return cancel;
    int rc = zk__mpsc_recv_now((zk__mpsc *)rx, buf);
    if (rc != -EAGAIN)
        return rc;
    zk_mpsc_recv_future f;
    zk_mpsc_recv_future_init(&f, rx, buf);
    return (int)zk__wait(&f.base, has_deadline, deadline);
}

int zk_mpsc_recv(zk_mpsc_rx *rx, void *buf) {
    return zk__mpsc_recv_wait(rx, buf, false, 0);
}

int zk_mpsc_recv_until(zk_mpsc_rx *rx, void *buf, zk_instant deadline) {
    return zk__mpsc_recv_wait(rx, buf, true, deadline);
}

int zk_mpsc_try_recv(zk_mpsc_rx *rx, void *buf) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    return zk__mpsc_recv_now((zk__mpsc *)rx, buf);
}

size_t zk_mpsc_len(zk_mpsc_rx *rx) {
    if (rx == NULL)
        return 0;
    zk__mpsc *c = (zk__mpsc *)rx;
    pthread_mutex_lock(&c->lock);
    size_t n = c->len;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                */
/* ---------------------------------------------------------------------- */

int zk_mpsc_tx_clone(zk_mpsc_tx *tx, zk_mpsc_tx **out) {
    if (tx == NULL || out == NULL)
        return -EINVAL;
    zk__mpsc *c = (zk__mpsc *)tx;
    pthread_mutex_lock(&c->lock);
    int rc = -EPIPE;
    if (c->rx_open) {
        c->senders++;
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc == 0)
        *out = tx;
    return rc;
}

int zk_mpsc_tx_close(zk_mpsc_tx **tx) {
    if (tx == NULL || *tx == NULL)
        return -EINVAL;
    zk__mpsc *c = (zk__mpsc *)*tx;
    *tx = NULL;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    pthread_mutex_lock(&c->lock);
    bool last = --c->senders == 0;
    if (last) /* receives waiting now learn the channel is closed */
        zk__waitq_release_all(&c->recv_waiters, 0, &wl);
    bool gone = last && !c->rx_open;
    pthread_mutex_unlock(&c->lock);
    zk__wakelist_wake(&wl);
    if (gone)
        zk__mpsc_free(c);
    return 0;
}

int zk_mpsc_rx_close(zk_mpsc_rx **rx) {
    if (rx == NULL || *rx == NULL)
        return -EINVAL;
    zk__mpsc *c = (zk__mpsc *)*rx;
    *rx = NULL;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    pthread_mutex_lock(&c->lock);
    c->rx_open = false;
    c->len = 0; /* buffered messages are discarded */
    zk__waitq_release_all(&c->send_waiters, ZK__MPSC_CLOSED, &wl);
    bool gone = c->senders == 0;
    pthread_mutex_unlock(&c->lock);
    zk__wakelist_wake(&wl);
    if (gone)
        zk__mpsc_free(c);
    return 0;
}

size_t zk__mpsc_elem_size(const zk_mpsc_rx *rx) {
    return ((const zk__mpsc *)rx)->elem;
}
