/* wait.c - runs a wait future for a blocking-style call (see waitq.h). */
#include <errno.h>

#include "common/util.h"
#include "runtime/coro.h"
#include "runtime/scope.h"
#include "runtime/waiter.h"
#include "runtime/worker.h"
#include "sync/waitq.h"

/* The plain-thread loop. At the deadline, `expire` gives up (-ETIMEDOUT);
 * otherwise the future is polled once more and handles its own deadline. */
static int64_t zk__wait_plain(zk_future *f, bool has_deadline,
                              zk_instant deadline, bool expire) {
    zk__thread_waiter *tw = zk__thread_waiter_current();
    if (tw == NULL)
        return -ENOMEM;
    zk_waker w = zk__thread_waiter_waker(tw);
    zk_context cx;
    zk_context_init(&cx, &w);
    int64_t out;
    for (;;) {
        if (f->ops->poll(f, &cx, &out) == ZK_READY)
            break;
        if (!has_deadline) {
            zk__parker_park(&tw->parker);
            continue;
        }
        int64_t left = deadline - zk__mono_ns();
        if (left <= 0 && !expire) {
            has_deadline = false; /* the future saw its deadline */
            continue;
        }
        if (left <= 0) {
            /* One last look: what was handed over meanwhile is taken. */
            if (f->ops->poll(f, &cx, &out) == ZK_READY)
                break;
            out = -ETIMEDOUT;
            break;
        }
        zk__parker_park_timeout(&tw->parker, left);
    }
    zk_future_drop(f);
    return out;
}

int64_t zk__wait(zk_future *f, bool has_deadline, zk_instant deadline) {
    int64_t out;
    if (!has_deadline && zk__await_if_coroutine(f, &out))
        return out;
    if (zk_in_coroutine())
        return zk_await_until(f, deadline);
    if (zk_in_task())
        return -EPERM; /* a future task's poll must not block its worker */
    return zk__wait_plain(f, has_deadline, deadline, true);
}

int zk__blocking_call_status(void) {
    zk__worker *w = zk__worker_current();
    zk__task *t = w ? w->current : NULL;
    if (t != NULL && !t->vtable->coroutine)
        return -EPERM;
    return zk__cancel_status();
}

int64_t zk__wait_wake_at(zk_future *f, zk_instant deadline) {
    if (zk_in_coroutine())
        return zk_await(f);
    if (zk_in_task())
        return -EPERM;
    return zk__wait_plain(f, true, deadline, false);
}
