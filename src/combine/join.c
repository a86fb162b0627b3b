/* join.c - all of N futures (zokio/combine.h). */
#include <errno.h>

#include "combine/set.h"

static zk_poll zk__join_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_join_future *j = (zk_join_future *)f;
    zk_future_set *s = &j->_set;
    int err = zk__set_start(s);
    if (err != 0) {
        *out = err;
        return ZK_READY;
    }
    for (size_t i = 0; i < s->_n && s->_left > 0; i++) {
        if (zk__set_done(s, i))
            continue;
        int64_t o;
        if (s->_futs[i]->ops->poll(s->_futs[i], cx, &o) == ZK_PENDING)
            continue;
        j->_outs[i] = o;
        zk__set_finish(s, i);
        if (o < 0 && j->_stop_on_error) {
            zk__set_drop_all(s); /* the rest are not wanted any more */
            *out = o;
            return ZK_READY;
        }
    }
    if (s->_left > 0)
        return ZK_PENDING;
    zk__set_drop_all(s); /* frees the bitmap */
    *out = 0;
    return ZK_READY;
}

static void zk__join_drop(zk_future *f) {
    zk__set_drop_all(&((zk_join_future *)f)->_set);
}

static const zk_future_ops zk__join_ops = {zk__join_poll, zk__join_drop};

static void zk__join_init(zk_join_future *j, zk_future **futs, int64_t *outs,
                          size_t n, bool stop_on_error) {
    if (j == NULL)
        return;
    j->base.ops = &zk__join_ops;
    zk__set_init(&j->_set, futs, n, true);
    if (outs == NULL && n > 0 && j->_set._error == 0)
        j->_set._error = -EINVAL;
    j->_outs = outs;
    j->_stop_on_error = stop_on_error;
}

void zk_join_future_init(zk_join_future *j, zk_future **futs, int64_t *outs,
                         size_t n) {
    zk__join_init(j, futs, outs, n, false);
}

void zk_try_join_future_init(zk_join_future *j, zk_future **futs, int64_t *outs,
                             size_t n) {
    zk__join_init(j, futs, outs, n, true);
}

int zk_join(zk_future **futs, int64_t *outs, size_t n) {
    zk_join_future j;
    zk_join_future_init(&j, futs, outs, n);
    return (int)zk_await(&j.base);
}
