/* select.c - the first of N futures to finish, or to succeed (race)
 * (zokio/combine.h). */
#include <errno.h>

#include "combine/set.h"

/* Where the next fair select on this thread starts: a select made afresh
 * in a loop (the usual way) must not always favour its first future. */
static _Thread_local size_t zk__select_next_start;

static zk_poll zk__select_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_select_future *sel = (zk_select_future *)f;
    zk_future_set *s = &sel->_set;
    int err = zk__set_start(s);
    if (err != 0) {
        *out = err;
        return ZK_READY;
    }
    /* A fair select starts one further at each poll too, so a future that
     * is always ready cannot hide the ones after it. */
    size_t start = sel->_biased ? 0 : sel->_start++ % s->_n;
    for (size_t k = 0; k < s->_n && s->_left > 0; k++) {
        size_t i = start + k < s->_n ? start + k : start + k - s->_n;
        if (zk__set_done(s, i))
            continue;
        int64_t o;
        if (s->_futs[i]->ops->poll(s->_futs[i], cx, &o) == ZK_PENDING)
            continue;
        zk__set_finish(s, i);
        if (sel->_race && o < 0) {
            if (sel->_first_error == 0)
                sel->_first_error = o;
            continue;
        }
        /* Losers are dropped before anyone sees the winner: what they
         * were doing is cancelled by then. */
        zk__set_drop_all(s);
        if (sel->_value != NULL)
            *sel->_value = o;
        *out = (int64_t)i;
        return ZK_READY;
    }
    if (s->_left > 0)
        return ZK_PENDING;
    zk__set_drop_all(s); /* a race whose every future failed */
    *out = sel->_first_error;
    return ZK_READY;
}

static void zk__select_drop(zk_future *f) {
    zk__set_drop_all(&((zk_select_future *)f)->_set);
}

static const zk_future_ops zk__select_ops = {zk__select_poll, zk__select_drop};

static void zk__select_init(zk_select_future *s, zk_future **futs, size_t n,
                            int64_t *value, bool biased, bool race) {
    if (s == NULL)
        return;
    s->base.ops = &zk__select_ops;
    zk__set_init(&s->_set, futs, n, false);
    s->_value = value;
    s->_biased = biased;
    s->_race = race;
    s->_first_error = 0;
    s->_start = biased ? 0 : zk__select_next_start++;
}

void zk_select_future_init(zk_select_future *s, zk_future **futs, size_t n,
                           int64_t *value) {
    zk__select_init(s, futs, n, value, false, false);
}

void zk_select_biased_future_init(zk_select_future *s, zk_future **futs,
                                  size_t n, int64_t *value) {
    zk__select_init(s, futs, n, value, true, false);
}

void zk_race_future_init(zk_race_future *r, zk_future **futs, size_t n,
                         int64_t *value) {
    zk__select_init(r, futs, n, value, false, true);
}

int zk_select(zk_future **futs, size_t n, int64_t *value) {
    zk_select_future s;
    zk_select_future_init(&s, futs, n, value);
    return (int)zk_await(&s.base);
}

int zk_race(zk_future **futs, size_t n, int64_t *value) {
    zk_race_future r;
    zk_race_future_init(&r, futs, n, value);
    return (int)zk_await(&r.base);
}
