/* map.c - map, and_then, ready and pending futures (zokio/combine.h). */
#include <errno.h>

#include "combine/set.h"

/* ---------------------------------------------------------------------- */
/* map                                                                    */
/* ---------------------------------------------------------------------- */

static zk_poll zk__map_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_map_future *m = (zk_map_future *)f;
    if (m->_done) {
        *out = -EINVAL; /* polled after it was ready */
        return ZK_READY;
    }
    if (!zk__future_ok(m->_inner) || m->_fn == NULL) {
        m->_done = true;
        if (zk__future_ok(m->_inner))
            zk_future_drop(m->_inner);
        *out = -EINVAL;
        return ZK_READY;
    }
    int64_t o;
    if (m->_inner->ops->poll(m->_inner, cx, &o) == ZK_PENDING)
        return ZK_PENDING;
    zk_future_drop(m->_inner);
    m->_done = true;
    *out = m->_fn(o, m->_arg);
    return ZK_READY;
}

static void zk__map_drop(zk_future *f) {
    zk_map_future *m = (zk_map_future *)f;
    if (!m->_done && zk__future_ok(m->_inner))
        zk_future_drop(m->_inner);
    m->_done = true;
}

static const zk_future_ops zk__map_ops = {zk__map_poll, zk__map_drop};

void zk_map_future_init(zk_map_future *m, zk_future *inner, zk_map_fn fn,
                        void *arg) {
    if (m == NULL)
        return;
    m->base.ops = &zk__map_ops;
    m->_inner = inner;
    m->_fn = fn;
    m->_arg = arg;
    m->_done = false;
}

/* ---------------------------------------------------------------------- */
/* and_then                                                               */
/* ---------------------------------------------------------------------- */

enum { ZK__THEN_FIRST, ZK__THEN_SECOND, ZK__THEN_DONE };

static zk_poll zk__then_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_and_then_future *t = (zk_and_then_future *)f;
    int64_t o;
    if (t->_stage == ZK__THEN_FIRST) {
        if (!zk__future_ok(t->_first) || t->_next == NULL) {
            if (zk__future_ok(t->_first))
                zk_future_drop(t->_first);
            t->_stage = ZK__THEN_DONE;
            *out = -EINVAL;
            return ZK_READY;
        }
        if (t->_first->ops->poll(t->_first, cx, &o) == ZK_PENDING)
            return ZK_PENDING;
        zk_future_drop(t->_first);
        t->_second = o < 0 ? NULL : t->_next(o, t->_arg);
        if (t->_second == NULL) {
            t->_stage = ZK__THEN_DONE;
            *out = o;
            return ZK_READY;
        }
        if (!zk__future_ok(t->_second)) {
            t->_stage = ZK__THEN_DONE;
            *out = -EINVAL;
            return ZK_READY;
        }
        t->_stage = ZK__THEN_SECOND;
    }
    if (t->_stage == ZK__THEN_DONE) {
        *out = -EINVAL; /* polled after it was ready */
        return ZK_READY;
    }
    if (t->_second->ops->poll(t->_second, cx, &o) == ZK_PENDING)
        return ZK_PENDING;
    zk_future_drop(t->_second);
    t->_stage = ZK__THEN_DONE;
    *out = o;
    return ZK_READY;
}

static void zk__then_drop(zk_future *f) {
    zk_and_then_future *t = (zk_and_then_future *)f;
    if (t->_stage == ZK__THEN_FIRST && zk__future_ok(t->_first))
        zk_future_drop(t->_first);
    else if (t->_stage == ZK__THEN_SECOND)
        zk_future_drop(t->_second);
    t->_stage = ZK__THEN_DONE;
}

static const zk_future_ops zk__then_ops = {zk__then_poll, zk__then_drop};

void zk_and_then_future_init(zk_and_then_future *t, zk_future *first,
                             zk_then_fn next, void *arg) {
    if (t == NULL)
        return;
    t->base.ops = &zk__then_ops;
    t->_first = first;
    t->_second = NULL;
    t->_next = next;
    t->_arg = arg;
    t->_stage = ZK__THEN_FIRST;
}

/* ---------------------------------------------------------------------- */
/* ready and pending                                                      */
/* ---------------------------------------------------------------------- */

static zk_poll zk__ready_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)cx;
    *out = ((zk_ready_future *)f)->value;
    return ZK_READY;
}

static const zk_future_ops zk__ready_ops = {zk__ready_poll, NULL};

void zk_ready_future_init(zk_ready_future *r, int64_t value) {
    if (r == NULL)
        return;
    r->base.ops = &zk__ready_ops;
    r->value = value;
}

/* Never stores the waker: nothing will ever wake it, and a drop (the only
 * way out) then has nothing to release. */
static zk_poll zk__pending_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)f;
    (void)cx;
    (void)out;
    return ZK_PENDING;
}

static const zk_future_ops zk__pending_ops = {zk__pending_poll, NULL};

void zk_pending_future_init(zk_pending_future *p) {
    if (p != NULL)
        p->base.ops = &zk__pending_ops;
}
