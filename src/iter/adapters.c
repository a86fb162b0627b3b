/* adapters.c - map, filter and take over any iterator (zokio/iter.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zokio/iter.h"

/* Items a filter may drop in one poll before it lets other tasks run. */
#define ZK__FILTER_BATCH 128

/* What every adapter starts with: the iterator it owns. */
typedef struct zk__adapter {
    zk_iter base;
    zk_iter *inner;
    bool inner_pending; /* the inner iterator's last poll_next was pending */
} zk__adapter;

/* Polls the inner iterator for its next item, noting whether it is left
 * pending (what an abandon must be passed on for). */
static zk_poll zk__adapter_poll_inner(zk__adapter *a, zk_context *cx,
                                      void *item, int64_t *status) {
    zk_poll p = a->inner->ops->poll_next(a->inner, cx, item, status);
    a->inner_pending = p == ZK_PENDING;
    return p;
}

static bool zk__iter_ok(const zk_iter *it) {
    return it != NULL && it->ops != NULL && it->ops->poll_next != NULL &&
           it->item_size > 0;
}

static void *zk__adapter_new(size_t size, const zk_iter_ops *ops,
                             zk_iter *inner, size_t item_size) {
    zk__adapter *a = calloc(1, size);
    if (a != NULL) {
        a->base.ops = ops;
        a->base.item_size = item_size;
        a->inner = inner;
    }
    return a;
}

static void zk__adapter_free(zk_iter *self) {
    zk__adapter *a = (zk__adapter *)self;
    zk_iter_free(a->inner);
    free(a);
}

/* An adapter's pending step is its inner iterator's, when that is pending
 * (a filter that yields after a batch of ready items is not). */
static void zk__adapter_abandon(zk_iter *self) {
    zk__adapter *a = (zk__adapter *)self;
    if (a->inner_pending && a->inner->ops->abandon != NULL)
        a->inner->ops->abandon(a->inner);
    a->inner_pending = false;
}

/* ---------------------------------------------------------------------- */
/* map                                                                    */
/* ---------------------------------------------------------------------- */

typedef struct zk__map_iter {
    zk__adapter a;
    zk_iter_map_fn fn;
    void *arg;
    _Alignas(max_align_t) char in[]; /* inner's item */
} zk__map_iter;

static zk_poll zk__map_next(zk_iter *self, zk_context *cx, void *item,
                            int64_t *status) {
    zk__map_iter *m = (zk__map_iter *)self;
    if (zk__adapter_poll_inner(&m->a, cx, m->in, status) == ZK_PENDING)
        return ZK_PENDING;
    if (*status == 0)
        *status = m->fn(m->in, item, m->arg);
    return ZK_READY;
}

static const zk_iter_ops zk__map_ops = {zk__map_next, zk__adapter_free,
                                        zk__adapter_abandon};

int zk_iter_map(zk_iter *inner, size_t out_size, zk_iter_map_fn fn, void *arg,
                zk_iter **out) {
    if (!zk__iter_ok(inner) || fn == NULL || out == NULL || out_size == 0 ||
        out_size > ZK_ITER_ITEM_MAX || inner->item_size > ZK_ITER_ITEM_MAX)
        return -EINVAL;
    zk__map_iter *m = zk__adapter_new(sizeof *m + inner->item_size,
                                      &zk__map_ops, inner, out_size);
    if (m == NULL)
        return -ENOMEM;
    m->fn = fn;
    m->arg = arg;
    *out = &m->a.base;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* filter                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct zk__filter_iter {
    zk__adapter a;
    zk_iter_filter_fn keep;
    void *arg;
} zk__filter_iter;

static zk_poll zk__filter_next(zk_iter *self, zk_context *cx, void *item,
                               int64_t *status) {
    zk__filter_iter *f = (zk__filter_iter *)self;
    for (int dropped = 0; dropped < ZK__FILTER_BATCH; dropped++) {
        if (zk__adapter_poll_inner(&f->a, cx, item, status) == ZK_PENDING)
            return ZK_PENDING;
        if (*status != 0 || f->keep(item, f->arg))
            return ZK_READY;
    }
    /* Dropped a batch that was all ready: come back after the others. */
    zk_waker_wake_by_ref(zk_context_waker(cx));
    return ZK_PENDING;
}

static const zk_iter_ops zk__filter_ops = {zk__filter_next, zk__adapter_free,
                                           zk__adapter_abandon};

int zk_iter_filter(zk_iter *inner, zk_iter_filter_fn keep, void *arg,
                   zk_iter **out) {
    if (!zk__iter_ok(inner) || keep == NULL || out == NULL)
        return -EINVAL;
    zk__filter_iter *f =
        zk__adapter_new(sizeof *f, &zk__filter_ops, inner, inner->item_size);
    if (f == NULL)
        return -ENOMEM;
    f->keep = keep;
    f->arg = arg;
    *out = &f->a.base;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* take                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct zk__take_iter {
    zk__adapter a;
    size_t left;
} zk__take_iter;

static zk_poll zk__take_next(zk_iter *self, zk_context *cx, void *item,
                             int64_t *status) {
    zk__take_iter *t = (zk__take_iter *)self;
    if (t->left == 0) {
        *status = ZK_ITER_END;
        return ZK_READY;
    }
    if (zk__adapter_poll_inner(&t->a, cx, item, status) == ZK_PENDING)
        return ZK_PENDING;
    if (*status == 0)
        t->left--;
    return ZK_READY;
}

static const zk_iter_ops zk__take_ops = {zk__take_next, zk__adapter_free,
                                         zk__adapter_abandon};

int zk_iter_take(zk_iter *inner, size_t n, zk_iter **out) {
    if (!zk__iter_ok(inner) || out == NULL)
        return -EINVAL;
    zk__take_iter *t =
        zk__adapter_new(sizeof *t, &zk__take_ops, inner, inner->item_size);
    if (t == NULL)
        return -ENOMEM;
    t->left = n;
    *out = &t->a.base;
    return 0;
}
