/*
 * current_thread.c - the current-thread scheduler: every task runs on the
 * thread inside zk_block_on().
 *
 * Wakes from the driving thread go to a local FIFO without locking; wakes
 * from any other thread go to a locked inject queue and unpark the driver.
 * The driver takes from the inject queue first every ZK__INJECT_INTERVAL
 * ticks so remote wakes are never starved by a busy local queue. With
 * nothing to run it sleeps in its parker (a futex wait): no CPU when idle.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "park.h"
#include "queue.h"
#include "runtime.h"
#include "worker.h"

#define ZK__INJECT_INTERVAL 61

typedef struct zk__ct {
    zk__worker worker;
    /* Only touched by the driving thread. */
    zk__task_fifo local;
    uint32_t tick;
    void *altstack;

    pthread_mutex_t inject_lock;
    zk__task_fifo inject;
    _Atomic size_t inject_len; /* lets the driver skip the lock when 0 */

    zk__parker parker;
    _Atomic bool driving;
} zk__ct;

static void zk__ct_schedule(zk_runtime *rt, zk__task *t, bool yield) {
    zk__ct *ct = rt->sched;
    (void)yield; /* both go to the back: the local queue is FIFO */
    if (zk__worker_current() == &ct->worker) {
        zk__fifo_push(&ct->local, t);
        return;
    }
    pthread_mutex_lock(&ct->inject_lock);
    zk__fifo_push(&ct->inject, t);
    atomic_store_explicit(&ct->inject_len, ct->inject.len,
                          memory_order_release);
    pthread_mutex_unlock(&ct->inject_lock);
    zk__parker_unpark(&ct->parker);
}

static zk__task *zk__ct_pop_inject(zk__ct *ct) {
    if (atomic_load_explicit(&ct->inject_len, memory_order_acquire) == 0)
        return NULL;
    pthread_mutex_lock(&ct->inject_lock);
    zk__task *t = zk__fifo_pop(&ct->inject);
    atomic_store_explicit(&ct->inject_len, ct->inject.len,
                          memory_order_release);
    pthread_mutex_unlock(&ct->inject_lock);
    return t;
}

static zk__task *zk__ct_next(zk__ct *ct) {
    zk__task *t;
    if (++ct->tick % ZK__INJECT_INTERVAL == 0 &&
        (t = zk__ct_pop_inject(ct)) != NULL)
        return t;
    t = zk__fifo_pop(&ct->local);
    return t ? t : zk__ct_pop_inject(ct);
}

static int zk__ct_enter(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    if (atomic_exchange(&ct->driving, true))
        return -EBUSY;
    zk__worker_init(&ct->worker, rt, ct);
    zk__worker_set(&ct->worker);
    ct->altstack = zk__overflow_thread_enter();
    return 0;
}

static void zk__ct_leave(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    zk__stack_pool_trim(&rt->stacks);
    zk__overflow_thread_leave(ct->altstack);
    ct->altstack = NULL;
    zk__worker_set(NULL);
    atomic_store(&ct->driving, false);
}

static void zk__ct_run_until(zk_runtime *rt, zk__task *root) {
    zk__ct *ct = rt->sched;
    while (!zk__task_is_complete(root)) {
        zk__task *t = zk__ct_next(ct);
        if (t) {
            zk__task_run(t);
        } else {
            zk__stack_pool_trim(&rt->stacks);
            zk__parker_park(&ct->parker);
        }
    }
}

static int zk__ct_shutdown(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    int rc = zk__ct_enter(rt);
    if (rc != 0)
        return rc;
    zk__runtime_close_and_cancel(rt);
    /* Run until every task finished; then drain stale notifications. */
    while (atomic_load_explicit(&rt->live, memory_order_acquire) > 0) {
        zk__task *t = zk__ct_next(ct);
        if (t)
            zk__task_run(t);
        else
            zk__parker_park(&ct->parker);
    }
    zk__task *t;
    while ((t = zk__ct_next(ct)) != NULL)
        zk__task_run(t);
    zk__ct_leave(rt);
    return 0;
}

static void zk__ct_destroy(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    pthread_mutex_destroy(&ct->inject_lock);
    free(ct);
}

static const zk__sched_ops zk__ct_ops = {zk__ct_schedule,  zk__ct_enter,
                                         zk__ct_run_until, zk__ct_leave,
                                         zk__ct_shutdown,  zk__ct_destroy};

int zk__current_thread_create(zk_runtime *rt) {
    zk__ct *ct = calloc(1, sizeof *ct);
    if (!ct)
        return -ENOMEM;
    int rc = -pthread_mutex_init(&ct->inject_lock, NULL);
    if (rc != 0) {
        free(ct);
        return rc;
    }
    zk__parker_init(&ct->parker);
    atomic_init(&ct->driving, false);
    atomic_init(&ct->inject_len, 0);
    rt->sched = ct;
    rt->sched_ops = &zk__ct_ops;
    return 0;
}
