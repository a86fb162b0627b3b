/*
 * mpsc.c - multi-producer channels, bounded and unbounded.
 *
 * Messages: a bounded channel keeps them in a lock-free ring (ring.h), so
 * a send and a receive that do not wait take no lock, and a sender on one
 * core and the receiver on another meet only in the ring's slots. An
 * unbounded channel keeps them in two queues that grow: senders append to
 * `in` under `in_lock`; receives take from `out` under `out_lock`, and
 * when `out` is empty swap the two under `in_lock`, so the receiver meets
 * the senders' lock once per batch rather than once per message.
 *
 * Waiting: `lock` guards two FIFO queues of waiters (senders waiting for
 * room, receive futures waiting for a message) and the handle counts. The
 * fast paths learn whether anyone waits from two counters kept in step
 * with the queues under the lock: `rx_waiting` (receives queued) and
 * `tx_waiting` (senders queued). A
 * sender that publishes a message and a receive that queues itself follow
 * Dekker's pattern: each writes its side (the message; the count), then
 * reads the other side, all four sequentially consistent (see ring.h; for
 * an unbounded channel `in_lock` orders them the same way: a receive looks
 * at `in` under it), so either the receive
 * finds the message on its second look or the sender sees the count and
 * wakes it. A receive that frees a slot and a sender that queues for room
 * do the same.
 *
 * Fairness: each slot a receive frees while senders wait is reserved for
 * the first of them, which is woken and fills it in its poll; while any
 * room is reserved (`tx_reserved`) new sends do not take the fast path,
 * and under the lock they take only room beyond the reserved. A woken
 * sender that finds no room (a send that read the count just before it
 * rose took it) waits again at the head of the queue. Once every
 * woken sender has looked, sends take the fast path again whenever there
 * is room, so a full channel does not turn into one wake-up per message
 * (a lock convoy). A sender dropped after it was woken sent nothing and
 * passes the reservation on. A receive copies its message out inside its
 * poll: a dropped receive took nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan.h"
#include "channel/ring.h"

/* Flag of a sender woken because the receiver is gone. */
#define ZK__MPSC_CLOSED 1u
/* The smallest queue of an unbounded channel, in messages. */
#define ZK__MPSC_MIN_SLOTS 16

/* A queue of messages that only grows at its end while senders fill it
 * and only shrinks at its start while receives empty it (the two roles
 * swap when it is empty), so it never wraps: `len` messages from `head`,
 * room for `slots`. */
typedef struct zk__fifo {
    char *buf;
    size_t slots, head, len;
} zk__fifo;

typedef struct zk__mpsc {
    size_t elem;
    /* 0 for an unbounded channel. */
    size_t cap;
    _Atomic bool rx_open;
    _Atomic uint32_t rx_waiting;
    _Atomic uint32_t tx_waiting;
    _Atomic uint32_t tx_reserved;
    /* Bounded: the messages. */
    zk__ring ring;
    /* Unbounded: what senders append to, and what receives take from
     * (the older messages). */
    zk__lock in_lock;
    zk__fifo in;
    zk__lock out_lock;
    zk__fifo out;
    /* Waiters and handles. */
    zk__lock lock;
    size_t senders;
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
    int rc = 0;
    if (cap) {
        rc = zk__ring_init(&c->ring, elem, cap);
    } else {
        c->in.slots = c->out.slots = ZK__MPSC_MIN_SLOTS;
        c->in.buf = malloc(ZK__MPSC_MIN_SLOTS * elem);
        c->out.buf = malloc(ZK__MPSC_MIN_SLOTS * elem);
        rc = c->in.buf && c->out.buf ? 0 : -ENOMEM;
    }
    if (rc != 0) {
        free(c->in.buf);
        free(c->out.buf);
        free(c);
        return rc;
    }
    zk__lock_init(&c->in_lock);
    zk__lock_init(&c->out_lock);
    zk__lock_init(&c->lock);
    atomic_init(&c->rx_open, true);
    atomic_init(&c->rx_waiting, 0);
    atomic_init(&c->tx_waiting, 0);
    atomic_init(&c->tx_reserved, 0);
    c->senders = 1;
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
    if (c->cap)
        zk__ring_destroy(&c->ring);
    free(c->in.buf);
    free(c->out.buf);
    free(c);
}

/* ---------------------------------------------------------------------- */
/* The messages                                                           */
/* ---------------------------------------------------------------------- */

/* Appends a message to the senders' queue `q` (head 0), doubling its
 * room when full: 0 or -ENOMEM. */
static int zk__fifo_append(zk__fifo *q, size_t elem, const void *msg) {
    if (q->len == q->slots) {
        if (q->slots > SIZE_MAX / 2 / elem)
            return -ENOMEM;
        char *buf = realloc(q->buf, q->slots * 2 * elem);
        if (buf == NULL)
            return -ENOMEM;
        q->buf = buf;
        q->slots *= 2;
    }
    memcpy(q->buf + q->len * elem, msg, elem);
    q->len++;
    return 0;
}

/* Stores a message: 0, -EAGAIN (full) or -ENOMEM. */
static int zk__mpsc_put(zk__mpsc *c, const void *msg) {
    if (c->cap)
        return zk__ring_push(&c->ring, msg) ? 0 : -EAGAIN;
    zk__lock_acquire(&c->in_lock);
    int rc = zk__fifo_append(&c->in, c->elem, msg);
    zk__lock_release(&c->in_lock);
    return rc;
}

/* Takes the oldest message into `buf`; false when there is none. */
static bool zk__mpsc_take(zk__mpsc *c, void *buf) {
    if (c->cap)
        return zk__ring_pop(&c->ring, buf);
    zk__lock_acquire(&c->out_lock);
    if (c->out.len == 0) {
        /* Everything in `in` came after what `out` held: it becomes the
         * queue to take from, and the emptied `out` (with its memory) the
         * one senders fill. */
        zk__lock_acquire(&c->in_lock);
        zk__fifo empty = c->out;
        c->out = c->in;
        c->in = empty;
        c->in.head = 0;
        zk__lock_release(&c->in_lock);
    }
    bool got = c->out.len > 0;
    if (got) {
        memcpy(buf, c->out.buf + c->out.head * c->elem, c->elem);
        c->out.head++;
        c->out.len--;
    }
    zk__lock_release(&c->out_lock);
    return got;
}

static size_t zk__mpsc_count(zk__mpsc *c) {
    if (c->cap)
        return zk__ring_len(&c->ring);
    zk__lock_acquire(&c->out_lock);
    zk__lock_acquire(&c->in_lock);
    size_t n = c->out.len + c->in.len;
    zk__lock_release(&c->in_lock);
    zk__lock_release(&c->out_lock);
    return n;
}

/* ---------------------------------------------------------------------- */
/* Waking, under the lock                                                 */
/* ---------------------------------------------------------------------- */

/* Wakes the first waiting receive, if any. */
static zk_waker zk__mpsc_wake_receiver(zk__mpsc *c) {
    zk_wait_node *w = zk__waitq_pop(&c->recv_waiters);
    if (w == NULL)
        return (zk_waker){0};
    atomic_fetch_sub(&c->rx_waiting, 1);
    zk_waker wk = zk__node_take_waker(w);
    zk__node_set_state(w, ZK__W_DONE);
    return wk;
}

/* Wakes the first sender waiting for room, if any: the room is reserved
 * for it until it looks. */
static zk_waker zk__mpsc_wake_sender(zk__mpsc *c) {
    zk_wait_node *w = zk__waitq_pop(&c->send_waiters);
    if (w == NULL)
        return (zk_waker){0};
    atomic_fetch_sub(&c->tx_waiting, 1);
    atomic_fetch_add(&c->tx_reserved, 1);
    zk_waker wk = zk__node_take_waker(w);
    zk__node_set_state(w, ZK__W_DONE);
    return wk;
}

/* Wakes every waiting sender with -EPIPE (the receiver is gone). */
static void zk__mpsc_release_senders(zk__mpsc *c, zk__wakelist *wl) {
    zk_wait_node *w;
    while ((w = zk__waitq_pop(&c->send_waiters)) != NULL) {
        w->_flags |= ZK__MPSC_CLOSED;
        zk__node_set_state(w, ZK__W_DONE);
        zk__wakelist_push(wl, zk__node_take_waker(w));
    }
    atomic_store(&c->tx_waiting, 0);
}

/* After a message went in: wakes a receive that waits (see the top). */
static void zk__mpsc_notify_rx(zk__mpsc *c) {
    if (atomic_load_explicit(&c->rx_waiting, memory_order_seq_cst) == 0)
        return;
    zk__lock_acquire(&c->lock);
    zk_waker wk = zk__mpsc_wake_receiver(c);
    zk__lock_release(&c->lock);
    zk_waker_wake(&wk);
}

/* After a message came out of a bounded channel: the freed slot goes to
 * the first waiting sender. */
static void zk__mpsc_notify_tx(zk__mpsc *c) {
    if (!c->cap)
        return;
    if (atomic_load_explicit(&c->tx_waiting, memory_order_seq_cst) == 0)
        return;
    zk__lock_acquire(&c->lock);
    zk_waker wk = zk__mpsc_wake_sender(c);
    zk__lock_release(&c->lock);
    zk_waker_wake(&wk);
}

/* ---------------------------------------------------------------------- */
/* Sending                                                                */
/* ---------------------------------------------------------------------- */

/* Whether a bounded channel has room beyond what is reserved for woken
 * senders. A snapshot, wrong either way at worst for a moment: a woken
 * sender that finds its room taken waits again at the head of the queue;
 * a queued sender told "no room" by a stale length is woken all the same,
 * since room is reserved, and a reservation ends in a message the receive
 * then takes (which wakes the head of the queue) or, dropped, is passed to
 * the head of the queue. */
static bool zk__mpsc_unreserved_room(zk__mpsc *c) {
    uint32_t reserved =
        atomic_load_explicit(&c->tx_reserved, memory_order_relaxed);
    return reserved == 0 || zk__ring_len(&c->ring) + reserved < c->cap;
}

/* Sends now if the channel is open, no room is reserved for a woken
 * sender and there is room: 0, -EAGAIN, -EPIPE or -ENOMEM. */
static int zk__mpsc_send_now(zk__mpsc *c, const void *msg) {
    if (!atomic_load_explicit(&c->rx_open, memory_order_acquire))
        return -EPIPE;
    if (atomic_load_explicit(&c->tx_reserved, memory_order_acquire) != 0)
        return -EAGAIN;
    int rc = zk__mpsc_put(c, msg);
    if (rc == 0)
        zk__mpsc_notify_rx(c);
    return rc;
}

/* Under the lock: `node` (a sender not in the queue) waits for room, at
 * the tail or, woken once already, at the head; then, first in line, it
 * looks at the ring again (a slot freed before the receive saw the count
 * rise). A new sender takes only room beyond what is reserved for woken
 * senders. Returns -EAGAIN while it waits, else the put's result. */
static int zk__mpsc_send_queue(zk__mpsc *c, zk_wait_node *node, const void *msg,
                               bool head) {
    bool first = head || c->send_waiters.head == NULL;
    /* A new sender first in line takes a slot freed since its fast path
     * failed before the count rises. With a full channel that is most
     * sends; raising the count for them made the receiver take the lock
     * after each message for nothing. */
    if (first && !head && zk__mpsc_unreserved_room(c)) {
        int rc = zk__mpsc_put(c, msg);
        if (rc != -EAGAIN)
            return rc;
    }
    if (head)
        zk__waitq_push_front(&c->send_waiters, node);
    else
        zk__waitq_push(&c->send_waiters, node);
    atomic_fetch_add(&c->tx_waiting, 1); /* seq_cst: see the top */
    if (!first || (!head && !zk__mpsc_unreserved_room(c)))
        return -EAGAIN;
    int rc = zk__mpsc_put(c, msg);
    if (rc != -EAGAIN) {
        zk__waitq_remove(&c->send_waiters, node);
        atomic_fetch_sub(&c->tx_waiting, 1);
    }
    return rc;
}

static zk_poll zk__mpsc_send_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_mpsc_send_future *s = (zk_mpsc_send_future *)f;
    zk__mpsc *c = s->_chan;
    zk_wait_node *node = &s->_node;
    if (c == NULL || s->_msg == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    uint32_t st = zk__node_state(node);
    if (st == ZK__W_CONSUMED) {
        *out = -EINVAL; /* polled again after it was ready */
        return ZK_READY;
    }
    if (st == ZK__W_IDLE) {
        int rc = zk__mpsc_send_now(c, s->_msg);
        if (rc != -EAGAIN) {
            zk__node_set_state(node, ZK__W_CONSUMED);
            *out = rc;
            return ZK_READY;
        }
    }
    int rc = -EAGAIN;
    zk__lock_acquire(&c->lock);
    switch (zk__node_state(node)) {
    case ZK__W_IDLE:
        if (atomic_load_explicit(&c->rx_open, memory_order_relaxed))
            rc = zk__mpsc_send_queue(c, node, s->_msg, false);
        else
            rc = -EPIPE;
        break;
    case ZK__W_DONE:
        if (node->_flags & ZK__MPSC_CLOSED) {
            rc = -EPIPE;
            break;
        }
        /* Woken for room reserved for it: fill it. (A send that read the
         * reservation count just before it rose may have taken the slot:
         * then wait again, at the head.) */
        atomic_fetch_sub(&c->tx_reserved, 1);
        if (!atomic_load_explicit(&c->rx_open, memory_order_relaxed)) {
            rc = -EPIPE; /* the receiver went after the wake */
            break;
        }
        rc = zk__mpsc_put(c, s->_msg);
        if (rc == -EAGAIN)
            rc = zk__mpsc_send_queue(c, node, s->_msg, true);
        break;
    default: /* QUEUED: polled without a wake */
        break;
    }
    if (rc == -EAGAIN) {
        zk__node_set_waker(node, cx);
        zk__lock_release(&c->lock);
        return ZK_PENDING;
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->lock);
    if (rc == 0)
        zk__mpsc_notify_rx(c);
    *out = rc;
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
    zk__lock_acquire(&c->lock);
    st = zk__node_state(node);
    if (st == ZK__W_QUEUED) {
        zk__waitq_remove(&c->send_waiters, node);
        atomic_fetch_sub(&c->tx_waiting, 1);
    } else if (st == ZK__W_DONE && !(node->_flags & ZK__MPSC_CLOSED)) {
        /* Room reserved for us that we will not use: the next one's. */
        atomic_fetch_sub(&c->tx_reserved, 1);
        wake = zk__mpsc_wake_sender(c);
    }
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->lock);
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
    /* Refused in a future task's poll; an aborted task's calls fail, as
     * its awaits do (and so do those of a task whose cancel scope was
     * cancelled or expired). */
    int rc = zk__blocking_call_status();
    if (rc != 0)
        return rc;
    /* The common case builds no future. */
    rc = zk__mpsc_send_now((zk__mpsc *)tx, msg);
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
    return zk__mpsc_send_now((zk__mpsc *)tx, msg);
}

/* ---------------------------------------------------------------------- */
/* Receiving                                                              */
/* ---------------------------------------------------------------------- */

/* Under the lock: `node` leaves the receive queue if it is in it. */
static void zk__mpsc_recv_unqueue(zk__mpsc *c, zk_wait_node *node) {
    if (zk__node_state(node) == ZK__W_QUEUED) {
        zk__waitq_remove(&c->recv_waiters, node);
        atomic_fetch_sub(&c->rx_waiting, 1);
    }
}

static zk_poll zk__mpsc_recv_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_mpsc_recv_future *r = (zk_mpsc_recv_future *)f;
    zk__mpsc *c = r->_chan;
    zk_wait_node *node = &r->_node;
    if (c == NULL || r->_buf == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    if (zk__node_state(node) == ZK__W_CONSUMED) {
        *out = -EINVAL;
        return ZK_READY;
    }
    bool got = zk__mpsc_take(c, r->_buf);
    if (got && zk__node_state(node) != ZK__W_QUEUED) {
        /* Not in the queue (IDLE, or DONE: only this future changes
         * those), so nothing to undo under the lock. */
        zk__node_set_state(node, ZK__W_CONSUMED);
        zk__mpsc_notify_tx(c);
        *out = 0;
        return ZK_READY;
    }
    zk__lock_acquire(&c->lock);
    int rc = 0;
    if (!got) {
        if (zk__node_state(node) != ZK__W_QUEUED) {
            /* First wait, or woken for a message another receive of the
             * same handle took: (back) in the queue. */
            zk__waitq_push(&c->recv_waiters, node);
            atomic_fetch_add(&c->rx_waiting, 1); /* seq_cst: see the top */
        }
        /* Second look, after the count is visible to senders; then, with
         * every sender gone (their messages were in before they closed
         * under this lock), the channel is drained and closed. */
        if (zk__mpsc_take(c, r->_buf))
            rc = 0;
        else if (c->senders == 0)
            rc = -EPIPE;
        else
            rc = -EAGAIN;
    }
    if (rc == -EAGAIN) {
        zk__node_set_waker(node, cx);
        zk__lock_release(&c->lock);
        return ZK_PENDING;
    }
    zk__mpsc_recv_unqueue(c, node);
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->lock);
    if (rc == 0)
        zk__mpsc_notify_tx(c);
    *out = rc;
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
    zk__lock_acquire(&c->lock);
    st = zk__node_state(node);
    if (st == ZK__W_QUEUED)
        zk__mpsc_recv_unqueue(c, node);
    else if (st == ZK__W_DONE && (zk__mpsc_count(c) > 0 || c->senders == 0))
        wake = zk__mpsc_wake_receiver(c); /* woken for nothing: pass on */
    zk__node_set_state(node, ZK__W_CONSUMED);
    zk_waker_drop(&node->_waker);
    zk__lock_release(&c->lock);
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
    if (!zk__mpsc_take(c, buf)) {
        zk__lock_acquire(&c->lock);
        bool closed = c->senders == 0;
        zk__lock_release(&c->lock);
        /* Closed: what the senders sent before is visible now. */
        if (!closed || !zk__mpsc_take(c, buf))
            return closed ? -EPIPE : -EAGAIN;
    }
    zk__mpsc_notify_tx(c);
    return 0;
}

static int zk__mpsc_recv_wait(zk_mpsc_rx *rx, void *buf, bool has_deadline,
                              zk_instant deadline) {
    if (rx == NULL || buf == NULL)
        return -EINVAL;
    int rc = zk__blocking_call_status();
    if (rc != 0)
        return rc;
    zk__mpsc *c = (zk__mpsc *)rx;
    if (zk__mpsc_take(c, buf)) {
        zk__mpsc_notify_tx(c);
        return 0;
    }
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
    return zk__mpsc_count((zk__mpsc *)rx);
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                */
/* ---------------------------------------------------------------------- */

int zk_mpsc_tx_clone(zk_mpsc_tx *tx, zk_mpsc_tx **out) {
    if (tx == NULL || out == NULL)
        return -EINVAL;
    zk__mpsc *c = (zk__mpsc *)tx;
    zk__lock_acquire(&c->lock);
    int rc = -EPIPE;
    if (atomic_load_explicit(&c->rx_open, memory_order_relaxed)) {
        c->senders++;
        rc = 0;
    }
    zk__lock_release(&c->lock);
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
    zk__lock_acquire(&c->lock);
    bool last = --c->senders == 0;
    if (last) { /* receives waiting now learn the channel is closed */
        zk__waitq_release_all(&c->recv_waiters, 0, &wl);
        atomic_store(&c->rx_waiting, 0);
    }
    bool gone =
        last && !atomic_load_explicit(&c->rx_open, memory_order_relaxed);
    zk__lock_release(&c->lock);
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
    zk__lock_acquire(&c->lock);
    /* Buffered messages are discarded (they go with the channel). */
    atomic_store_explicit(&c->rx_open, false, memory_order_release);
    zk__mpsc_release_senders(c, &wl);
    bool gone = c->senders == 0;
    zk__lock_release(&c->lock);
    zk__wakelist_wake(&wl);
    if (gone)
        zk__mpsc_free(c);
    return 0;
}

size_t zk__mpsc_elem_size(const zk_mpsc_rx *rx) {
    return ((const zk__mpsc *)rx)->elem;
}
