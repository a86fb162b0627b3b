/*
 * oneshot.h - the minimal oneshot channel the scheduler benchmarks need
 * (zokio's own channels are the sync issue's work). One sender, one
 * receiver, one int64_t, lock-free: the state word says whether the value
 * is there and whether the receiver's waker is stored.
 */
#ifndef ZK_BENCH_ONESHOT_H
#define ZK_BENCH_ONESHOT_H

#include <stdatomic.h>
#include <stdlib.h>
#include <zokio.h>

enum { ONESHOT_VALUE = 1, ONESHOT_WAKER = 2 };

typedef struct oneshot {
    _Atomic uint32_t state;
    _Atomic uint32_t refs; /* sender + receiver */
    int64_t value;
    zk_waker waker; /* owned by the receiver while WAKER is clear */
} oneshot;

static inline oneshot *oneshot_new(void) {
    oneshot *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    atomic_init(&o->refs, 2);
    return o;
}

static inline void oneshot_release(oneshot *o) {
    if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) {
        zk_waker_drop(&o->waker);
        free(o);
    }
}

static inline void oneshot_send(oneshot *o, int64_t v) {
    o->value = v;
    uint32_t prev = atomic_fetch_or_explicit(&o->state, ONESHOT_VALUE,
                                             memory_order_acq_rel);
    if (prev & ONESHOT_WAKER)
        zk_waker_wake(&o->waker);
    oneshot_release(o);
}

typedef struct oneshot_recv {
    zk_future base;
    oneshot *o;
} oneshot_recv;

static inline zk_poll oneshot_recv_poll(zk_future *f, zk_context *cx,
                                        int64_t *out) {
    oneshot *o = ((oneshot_recv *)f)->o;
    uint32_t s = atomic_load_explicit(&o->state, memory_order_acquire);
    if (s & ONESHOT_VALUE)
        goto ready;
    if (s & ONESHOT_WAKER) {
        if (zk_waker_will_wake(&o->waker, zk_context_waker(cx)))
            return ZK_PENDING;
        /* Take the waker back to replace it, unless the value came. */
        if (!atomic_compare_exchange_strong_explicit(
                &o->state, &s, s & ~(uint32_t)ONESHOT_WAKER,
                memory_order_acq_rel, memory_order_acquire))
            goto ready;
        zk_waker_drop(&o->waker);
    }
    o->waker = zk_waker_clone(zk_context_waker(cx));
    if (atomic_fetch_or_explicit(&o->state, ONESHOT_WAKER,
                                 memory_order_acq_rel) &
        ONESHOT_VALUE)
        goto ready; /* the sender came first and did not see the waker */
    return ZK_PENDING;
ready:
    *out = o->value;
    return ZK_READY;
}

static inline void oneshot_recv_drop(zk_future *f) {
    oneshot_release(((oneshot_recv *)f)->o);
}

static const zk_future_ops oneshot_recv_ops = {oneshot_recv_poll,
                                               oneshot_recv_drop};

static inline oneshot_recv oneshot_receiver(oneshot *o) {
    return (oneshot_recv){{&oneshot_recv_ops}, o};
}

/* The last of `remaining` finishers sends on `done`. */
typedef struct countdown {
    _Atomic long remaining;
    oneshot *done;
} countdown;

static inline void countdown_hit(countdown *c) {
    if (atomic_fetch_sub_explicit(&c->remaining, 1, memory_order_acq_rel) == 1)
        oneshot_send(c->done, 1);
}

/* Parks the calling coroutine task until `done` is sent. */
static inline void await_done(oneshot *done) {
    oneshot_recv r = oneshot_receiver(done);
    zk_await(&r.base);
}

#endif
