/* timeout.c - deadlines around any future, and intervals (zokio/time.h). */
#include <errno.h>
#include <string.h>

#include "time/driver.h"
#include "time/interval.h"

static zk_poll zk__timeout_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_timeout_future *t = (zk_timeout_future *)f;
    if (t->finished) {
        *out = -ETIMEDOUT;
        return ZK_READY;
    }
    if (zk_future_poll(t->inner, cx, out) == ZK_READY) {
        zk_future_drop(t->inner);
        t->finished = true;
        return ZK_READY;
    }
    int64_t slept;
    if (zk_future_poll(&t->sleep.base, cx, &slept) == ZK_PENDING)
        return ZK_PENDING;
    /* Out of time: dropping inner cancels what it was doing. */
    zk_future_drop(t->inner);
    t->finished = true;
    *out = slept < 0 ? slept : -ETIMEDOUT;
    return ZK_READY;
}

static void zk__timeout_drop(zk_future *f) {
    zk_timeout_future *t = (zk_timeout_future *)f;
    if (!t->finished) {
        zk_future_drop(t->inner);
        t->finished = true;
    }
    zk_future_drop(&t->sleep.base);
}

static const zk_future_ops zk__timeout_ops = {zk__timeout_poll,
                                              zk__timeout_drop};

void zk_timeout_future_init_until(zk_timeout_future *t, zk_future *inner,
                                  zk_instant deadline) {
    if (t == NULL)
        return;
    t->base.ops = &zk__timeout_ops;
    t->inner = inner;
    t->finished = false;
    zk_sleep_future_init_until(&t->sleep, deadline);
}

void zk_timeout_future_init(zk_timeout_future *t, zk_future *inner,
                            zk_duration d) {
    zk_timeout_future_init_until(t, inner, zk__instant_after(zk_now(), d));
}

int64_t zk_await_until(zk_future *f, zk_instant deadline) {
    if (f == NULL || f->ops == NULL || f->ops->poll == NULL)
        return -EINVAL;
    zk_timeout_future t;
    zk_timeout_future_init_until(&t, f, deadline);
    /* Outside a coroutine zk_await refuses (-EPERM) without polling or
     * dropping anything: f stays the caller's. */
    return zk_await(&t.base);
}

int64_t zk_await_timeout(zk_future *f, zk_duration d) {
    return zk_await_until(f, zk__instant_after(zk_now(), d));
}

/* ---------------------------------------------------------------------- */
/* Intervals                                                              */
/* ---------------------------------------------------------------------- */

int zk_interval_init(zk_interval *iv, zk_duration period,
                     zk_missed_tick missed) {
    if (iv == NULL || period <= 0 ||
        (missed != ZK_MISSED_TICK_BURST && missed != ZK_MISSED_TICK_DELAY &&
         missed != ZK_MISSED_TICK_SKIP))
        return -EINVAL;
    iv->period = period;
    iv->missed = missed;
    iv->next = zk__instant_after(zk_now(), period);
    return 0;
}

void zk__interval_advance(zk_interval *iv, zk_instant now) {
    zk_instant scheduled = iv->next;
    switch (iv->missed) {
    case ZK_MISSED_TICK_BURST:
        iv->next = zk__instant_after(scheduled, iv->period);
        break;
    case ZK_MISSED_TICK_DELAY:
        iv->next = zk__instant_after(now, iv->period);
        break;
    case ZK_MISSED_TICK_SKIP: {
        /* The first tick of the original schedule after now. */
        int64_t behind = now > scheduled ? (now - scheduled) / iv->period : 0;
        int64_t ahead;
        iv->next = __builtin_mul_overflow(behind + 1, iv->period, &ahead)
                       ? INT64_MAX
                       : zk__instant_after(scheduled, ahead);
        break;
    }
    }
}

int zk_interval_tick(zk_interval *iv) {
    if (iv == NULL)
        return -EINVAL;
    int rc = zk_sleep_until(iv->next);
    if (rc != 0)
        return rc;
    zk__interval_advance(iv, zk_now());
    return 0;
}
