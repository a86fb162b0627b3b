/* iter.c - taking items from any iterator: next, its future, collect
 * (zokio/iter.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/waitq.h"
#include "zokio/iter.h"

/* Items a collect takes in one poll before it lets other tasks run: an
 * iterator that is always ready must not hold the worker. */
#define ZK__COLLECT_BATCH 256

static bool zk__iter_ok(const zk_iter *it) {
    return it != NULL && it->ops != NULL && it->ops->poll_next != NULL;
}

void zk_iter_free(zk_iter *it) {
    if (it != NULL && it->ops != NULL && it->ops->free != NULL)
        it->ops->free(it);
}

size_t zk_iter_item_size(const zk_iter *it) {
    return it ? it->item_size : 0;
}

/* ---------------------------------------------------------------------- */
/* next                                                                   */
/* ---------------------------------------------------------------------- */

static zk_poll zk__next_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_iter_next_future *n = (zk_iter_next_future *)f;
    if (!zk__iter_ok(n->_it) || n->_item == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk_poll p = n->_it->ops->poll_next(n->_it, cx, n->_item, out);
    n->_pending = p == ZK_PENDING;
    return p;
}

/* Tells the iterator its pending step was abandoned (zk_iter_ops). */
static void zk__iter_abandon(zk_iter *it) {
    if (zk__iter_ok(it) && it->ops->abandon != NULL)
        it->ops->abandon(it);
}

static void zk__next_drop(zk_future *f) {
    zk_iter_next_future *n = (zk_iter_next_future *)f;
    if (n->_pending)
        zk__iter_abandon(n->_it);
    n->_pending = false;
}

static const zk_future_ops zk__next_ops = {zk__next_poll, zk__next_drop};

void zk_iter_next_future_init(zk_iter_next_future *f, zk_iter *it, void *item) {
    if (f == NULL)
        return;
    f->base.ops = &zk__next_ops;
    f->_it = it;
    f->_item = item;
    f->_pending = false;
}

int zk_iter_next(zk_iter *it, void *item) {
    if (!zk__iter_ok(it) || item == NULL)
        return -EINVAL;
    zk_iter_next_future f;
    zk_iter_next_future_init(&f, it, item);
    return (int)zk__wait(&f.base, false, 0);
}

int zk_iter_next_until(zk_iter *it, void *item, zk_instant deadline) {
    if (!zk__iter_ok(it) || item == NULL)
        return -EINVAL;
    zk_iter_next_future f;
    zk_iter_next_future_init(&f, it, item);
    return (int)zk__wait(&f.base, true, deadline);
}

/* ---------------------------------------------------------------------- */
/* collect                                                                */
/* ---------------------------------------------------------------------- */

static void zk__collect_reset(zk_iter_collect_future *c) {
    free(c->_buf);
    c->_buf = NULL;
    c->_len = c->_cap = 0;
}

/* Makes room for one more item: 0 or -ENOMEM. */
static int zk__collect_grow(zk_iter_collect_future *c, size_t size) {
    if (c->_len < c->_cap)
        return 0;
    size_t cap = c->_cap ? c->_cap * 2 : 16;
    if (cap > SIZE_MAX / size)
        return -ENOMEM;
    char *buf = realloc(c->_buf, cap * size);
    if (buf == NULL)
        return -ENOMEM;
    c->_buf = buf;
    c->_cap = cap;
    return 0;
}

static zk_poll zk__collect_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_iter_collect_future *c = (zk_iter_collect_future *)f;
    zk_iter *it = c->_it;
    if (!zk__iter_ok(it) || c->_items == NULL || c->_count == NULL ||
        it->item_size == 0) {
        *out = -EINVAL;
        return ZK_READY;
    }
    size_t size = it->item_size;
    for (int batch = 0; batch < ZK__COLLECT_BATCH; batch++) {
        int rc = zk__collect_grow(c, size);
        int64_t status = rc;
        if (rc == 0) {
            c->_stepping = it->ops->poll_next(it, cx, c->_buf + c->_len * size,
                                              &status) == ZK_PENDING;
            if (c->_stepping)
                return ZK_PENDING;
        }
        if (status == 0 && c->_max != 0 && c->_len == c->_max)
            status = -E2BIG;
        if (status == 0) {
            c->_len++;
            continue;
        }
        if (status == ZK_ITER_END && c->_len > 0) {
            *c->_items = c->_buf;
            *c->_count = c->_len;
            c->_buf = NULL;
            c->_len = c->_cap = 0;
            *out = 0;
        } else {
            zk__collect_reset(c);
            *c->_items = NULL;
            *c->_count = 0;
            *out = status == ZK_ITER_END ? 0 : status;
        }
        return ZK_READY;
    }
    zk_waker_wake_by_ref(zk_context_waker(cx));
    return ZK_PENDING;
}

static void zk__collect_drop(zk_future *f) {
    zk_iter_collect_future *c = (zk_iter_collect_future *)f;
    if (c->_stepping)
        zk__iter_abandon(c->_it);
    c->_stepping = false;
    zk__collect_reset(c);
}

static const zk_future_ops zk__collect_ops = {zk__collect_poll,
                                              zk__collect_drop};

void zk_iter_collect_future_init(zk_iter_collect_future *f, zk_iter *it,
                                 size_t max, void **items, size_t *count) {
    if (f == NULL)
        return;
    f->base.ops = &zk__collect_ops;
    f->_it = it;
    f->_max = max;
    f->_items = items;
    f->_count = count;
    f->_buf = NULL;
    f->_len = f->_cap = 0;
    f->_stepping = false;
}

int zk_iter_collect(zk_iter *it, size_t max, void **items, size_t *count) {
    if (!zk__iter_ok(it) || items == NULL || count == NULL)
        return -EINVAL;
    *items = NULL;
    *count = 0;
    zk_iter_collect_future f;
    zk_iter_collect_future_init(&f, it, max, items, count);
    return (int)zk__wait(&f.base, false, 0);
}
