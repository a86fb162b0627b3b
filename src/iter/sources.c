/*
 * sources.c - iterators over an array, channels and an interval
 * (zokio/iter.h).
 *
 * A channel source keeps its receive future and a buffer of its own
 * between calls. A `next` abandoned while pending drops the receive (which
 * copies its message out only in the poll that ends it, so it took
 * nothing): left queued, it would take the wake-up of the next message
 * from any other receive of the channel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel/chan.h"
#include "time/interval.h"
#include "zokio/iter.h"

/* Allocates an iterator of `size` bytes (its struct and what follows). */
static void *zk__iter_new(size_t size, const zk_iter_ops *ops,
                          size_t item_size) {
    zk_iter *it = calloc(1, size);
    if (it != NULL) {
        it->ops = ops;
        it->item_size = item_size;
    }
    return it;
}

static void zk__iter_plain_free(zk_iter *it) {
    free(it);
}

/* ---------------------------------------------------------------------- */
/* Array                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct zk__array_iter {
    zk_iter base;
    const char *items;
    size_t n, next;
} zk__array_iter;

static zk_poll zk__array_next(zk_iter *self, zk_context *cx, void *item,
                              int64_t *status) {
    (void)cx;
    zk__array_iter *a = (zk__array_iter *)self;
    if (a->next == a->n) {
        *status = ZK_ITER_END;
        return ZK_READY;
    }
    memcpy(item, a->items + a->next++ * self->item_size, self->item_size);
    *status = 0;
    return ZK_READY;
}

static const zk_iter_ops zk__array_ops = {zk__array_next, zk__iter_plain_free,
                                          NULL};

int zk_iter_from_array(const void *items, size_t n, size_t item_size,
                       zk_iter **out) {
    if (out == NULL || (items == NULL && n > 0) || item_size == 0 ||
        item_size > ZK_ITER_ITEM_MAX)
        return -EINVAL;
    zk__array_iter *a = zk__iter_new(sizeof *a, &zk__array_ops, item_size);
    if (a == NULL)
        return -ENOMEM;
    a->items = items;
    a->n = n;
    *out = &a->base;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Channels                                                               */
/* ---------------------------------------------------------------------- */

/* One receive future in flight (`active`) into `buf`; the poll of a
 * channel source only differs in the future it starts. */
typedef struct zk__chan_iter {
    zk_iter base;
    void *rx;
    bool active;
    bool started; /* watch: the current value was yielded */
    union {
        zk_future base;
        zk_mpsc_recv_future mpsc;
        zk_broadcast_recv_future bcast;
        zk_watch_changed_future watch;
    } f;
    _Alignas(max_align_t) char buf[];
} zk__chan_iter;

/* Polls the receive in flight; at its end maps the channel's "closed"
 * (-EPIPE) to the end of the sequence and copies a message out. */
static zk_poll zk__chan_finish(zk__chan_iter *c, zk_context *cx, void *item,
                               int64_t *status) {
    int64_t o;
    if (c->f.base.ops->poll(&c->f.base, cx, &o) == ZK_PENDING)
        return ZK_PENDING;
    zk_future_drop(&c->f.base);
    c->active = false;
    if (o == 0)
        memcpy(item, c->buf, c->base.item_size);
    *status = o == -EPIPE ? ZK_ITER_END : o;
    return ZK_READY;
}

/* The receive in flight took nothing yet: dropping it loses nothing. */
static void zk__chan_abandon(zk_iter *self) {
    zk__chan_iter *c = (zk__chan_iter *)self;
    if (c->active)
        zk_future_drop(&c->f.base);
    c->active = false;
}

static void zk__chan_free(zk_iter *self) {
    zk__chan_abandon(self);
    free(self);
}

static zk_poll zk__mpsc_next(zk_iter *self, zk_context *cx, void *item,
                             int64_t *status) {
    zk__chan_iter *c = (zk__chan_iter *)self;
    if (!c->active) {
        zk_mpsc_recv_future_init(&c->f.mpsc, c->rx, c->buf);
        c->active = true;
    }
    return zk__chan_finish(c, cx, item, status);
}

static zk_poll zk__bcast_next(zk_iter *self, zk_context *cx, void *item,
                              int64_t *status) {
    zk__chan_iter *c = (zk__chan_iter *)self;
    if (!c->active) {
        zk_broadcast_recv_future_init(&c->f.bcast, c->rx, c->buf);
        c->active = true;
    }
    return zk__chan_finish(c, cx, item, status);
}

static zk_poll zk__watch_next(zk_iter *self, zk_context *cx, void *item,
                              int64_t *status) {
    zk__chan_iter *c = (zk__chan_iter *)self;
    if (c->started) {
        if (!c->active) {
            zk_watch_changed_future_init(&c->f.watch, c->rx);
            c->active = true;
        }
        if (zk__chan_finish(c, cx, item, status) == ZK_PENDING)
            return ZK_PENDING;
        if (*status != 0)
            return ZK_READY;
    }
    /* First call, or a change was seen: yield the latest value. */
    c->started = true;
    *status = zk_watch_borrow(c->rx, item);
    return ZK_READY;
}

static const zk_iter_ops zk__mpsc_iter_ops = {zk__mpsc_next, zk__chan_free,
                                              zk__chan_abandon};
static const zk_iter_ops zk__bcast_iter_ops = {zk__bcast_next, zk__chan_free,
                                               zk__chan_abandon};
static const zk_iter_ops zk__watch_iter_ops = {zk__watch_next, zk__chan_free,
                                               zk__chan_abandon};

static int zk__chan_iter_new(void *rx, size_t elem, const zk_iter_ops *ops,
                             zk_iter **out) {
    if (rx == NULL || out == NULL)
        return -EINVAL;
    zk__chan_iter *c = zk__iter_new(sizeof *c + elem, ops, elem);
    if (c == NULL)
        return -ENOMEM;
    c->rx = rx;
    *out = &c->base;
    return 0;
}

int zk_iter_from_mpsc(zk_mpsc_rx *rx, zk_iter **out) {
    return zk__chan_iter_new(rx, rx ? zk__mpsc_elem_size(rx) : 0,
                             &zk__mpsc_iter_ops, out);
}

int zk_iter_from_broadcast(zk_broadcast_rx *rx, zk_iter **out) {
    return zk__chan_iter_new(rx, rx ? zk__broadcast_elem_size(rx) : 0,
                             &zk__bcast_iter_ops, out);
}

int zk_iter_from_watch(zk_watch_rx *rx, zk_iter **out) {
    /* A watch's message is a change notice: `buf` is not used. */
    return zk__chan_iter_new(rx, rx ? zk__watch_elem_size(rx) : 0,
                             &zk__watch_iter_ops, out);
}

/* ---------------------------------------------------------------------- */
/* Interval                                                               */
/* ---------------------------------------------------------------------- */

typedef struct zk__interval_iter {
    zk_iter base;
    zk_interval iv;
    bool armed;
    zk_sleep_future sleep;
} zk__interval_iter;

static zk_poll zk__interval_next(zk_iter *self, zk_context *cx, void *item,
                                 int64_t *status) {
    zk__interval_iter *t = (zk__interval_iter *)self;
    if (!t->armed) {
        zk_sleep_future_init_until(&t->sleep, t->iv.next);
        t->armed = true;
    }
    int64_t o;
    if (t->sleep.base.ops->poll(&t->sleep.base, cx, &o) == ZK_PENDING)
        return ZK_PENDING;
    zk_future_drop(&t->sleep.base);
    t->armed = false;
    if (o < 0) {
        *status = o;
        return ZK_READY;
    }
    zk_instant scheduled = t->iv.next;
    zk__interval_advance(&t->iv, zk_now());
    memcpy(item, &scheduled, sizeof scheduled);
    *status = 0;
    return ZK_READY;
}

static void zk__interval_free(zk_iter *self) {
    zk__interval_iter *t = (zk__interval_iter *)self;
    if (t->armed)
        zk_future_drop(&t->sleep.base);
    free(t);
}

/* An abandoned tick keeps its timer: the next call waits for the same
 * tick. */
static const zk_iter_ops zk__interval_ops = {zk__interval_next,
                                             zk__interval_free, NULL};

int zk_iter_interval(zk_duration period, zk_missed_tick missed, zk_iter **out) {
    if (out == NULL)
        return -EINVAL;
    zk_interval iv;
    int rc = zk_interval_init(&iv, period, missed);
    if (rc != 0)
        return rc;
    zk__interval_iter *t =
        zk__iter_new(sizeof *t, &zk__interval_ops, sizeof(zk_instant));
    if (t == NULL)
        return -ENOMEM;
    t->iv = iv;
    *out = &t->base;
    return 0;
}
