/*
 * waiter.h - lets a plain thread (not a task) wait for a future's waker:
 * a reference-counted parker cached per thread, so a waker that outlives the
 * wait (a stale clone kept by a future) never points at freed memory.
 */
#ifndef ZK__WAITER_H
#define ZK__WAITER_H

#include <stdatomic.h>

#include "park.h"
#include "zokio/future.h"

typedef struct zk__thread_waiter {
    _Atomic uint32_t refs;
    zk__parker parker;
} zk__thread_waiter;

/* The calling thread's waiter (created on first use; NULL when out of
 * memory). Borrowed: valid until the thread exits. */
zk__thread_waiter *zk__thread_waiter_current(void);

/* A waker that unparks `tw`, borrowing the thread's reference. */
zk_waker zk__thread_waiter_waker(zk__thread_waiter *tw);

#endif
