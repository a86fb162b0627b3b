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
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "blocking.h"
#include "common/util.h"
#include "coro.h"
#include "inject.h"
#include "park.h"
#include "queue.h"
#include "runtime.h"
#include "worker.h"

#define ZK__INJECT_INTERVAL 61

typedef struct zk__ct {
    /* First member: the worker the rest of the runtime sees. */
    zk__worker worker;
    zk__io_worker *io;
    /* Only touched by the driving thread. */
    zk__task_fifo local;
    uint32_t tick;
    void *altstack;
    /* SIGPIPE was not blocked in the driving thread before enter(). */
    bool sigpipe_unblock;
    /* The worker the driving thread had before enter(): a task of another
     * runtime that frees this one drives it through its shutdown, and must
     * get its own worker back. */
    zk__worker *outer;

    zk__inject inject;

    zk__parker parker;
    _Atomic bool driving;
} zk__ct;

static void zk__ct_schedule(zk_runtime *rt, zk__task *t, bool yield) {
    zk__ct *ct = rt->sched;
    (void)yield; /* both go to the back: the local queue is FIFO */
    if (zk__worker_current() == &ct->worker) {
        ZK__COUNT(ct->worker.metrics.local_schedules);
        zk__fifo_push(&ct->local, t);
        return;
    }
    zk__remote_schedule_begin(rt);
    zk__inject_push(&ct->inject, t);
    zk__parker_unpark(&ct->parker);
    zk__remote_schedule_end(rt);
}

static zk__task *zk__ct_next(zk__ct *ct) {
    zk__task *t;
    if (++ct->tick % ZK__INJECT_INTERVAL == 0) {
        zk__time_process(&ct->worker.rt->time);
        zk__io_poll(ct->io, 0, SIZE_MAX);
        if ((t = zk__inject_pop(&ct->inject)) != NULL)
            return t;
    }
    t = zk__fifo_pop(&ct->local);
    return t ? t : zk__inject_pop(&ct->inject);
}

/* For a coroutine about to wait or yield (coro.c): the local queue's next
 * task when it is a coroutine that has run before (it has a stack to
 * switch to). Not at a tick where the loop looks at the inject queue,
 * timers and I/O (zk__ct_next): the loop gets control back then. */
static zk__task *zk__ct_next_direct(zk__worker *w) {
    zk__ct *ct = (zk__ct *)w;
    zk__task *t = ct->local.head;
    if (t == NULL || !zk__task_resumable(t) ||
        (ct->tick + 1) % ZK__INJECT_INTERVAL == 0)
        return NULL;
    zk__fifo_pop(&ct->local);
    ct->tick++;
    /* What the task that stops now prepared may go to the kernel. */
    zk__io_after_run(ct->io, true);
    return t;
}

static int zk__ct_enter(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    if (atomic_exchange(&ct->driving, true))
        return -EBUSY;
    ct->outer = zk__worker_current();
    zk__worker_attach(&ct->worker);
    ct->altstack = zk__overflow_thread_enter();
    /* Tasks run on this thread: a write to a pipe whose reader is gone
     * (a child's stdin) must return -EPIPE, not kill the process with
     * SIGPIPE (MSG_NOSIGNAL exists for sockets only). The workers of a
     * multi-thread runtime block it for good; here it is blocked while the
     * thread drives the runtime (see leave). */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ct->sigpipe_unblock = !sigismember(&old, SIGPIPE);
    return 0;
}

static void zk__ct_leave(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    zk__stack_pool_trim(&rt->stacks);
    zk__overflow_thread_leave(ct->altstack);
    ct->altstack = NULL;
    if (ct->sigpipe_unblock) {
        /* A SIGPIPE our writes raised is pending: discard it before the
         * thread's mask is restored, or it would be delivered then. */
        sigset_t pipe_set, pending;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
            struct timespec zero = {0, 0};
            sigtimedwait(&pipe_set, NULL, &zero);
        }
        pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL);
        ct->sigpipe_unblock = false;
    }
    zk__worker_set(ct->outer);
    ct->outer = NULL;
    atomic_store(&ct->driving, false);
}

/* Nothing to run: fire due timers, jump a paused clock, or sleep until
 * the next deadline (or a wake-up from another thread). A paused clock
 * does not jump while blocking calls run (as Tokio's does not): their
 * results come in real time, and a jump would expire every deadline
 * waiting for them. */
static void zk__ct_idle(zk_runtime *rt, zk__ct *ct) {
    zk__time *time = &rt->time;
    zk__time_process(time);
    if (ct->local.len > 0 || zk__inject_len(&ct->inject) > 0)
        return;
    if (atomic_load(&time->paused) && !zk__blocking_pool_busy(rt->blocking) &&
        zk__time_auto_advance(time))
        return;
    zk__stack_pool_trim(&rt->stacks);
    ZK__COUNT(ct->worker.metrics.parks);
    int64_t next = zk__time_next(time);
    if (next == INT64_MAX) {
        zk__parker_park(&ct->parker);
    } else {
        int64_t wait = next - zk__time_now(time);
        if (wait > 0)
            zk__parker_park_timeout(&ct->parker, wait);
    }
}

static void zk__ct_run_until(zk_runtime *rt, zk__task *root) {
    zk__ct *ct = rt->sched;
    while (!zk__task_is_complete(root)) {
        zk__task *t = zk__ct_next(ct);
        if (t) {
            zk__task_run(t);
            zk__io_after_run(ct->io, ct->local.len > 0);
        } else
            zk__ct_idle(rt, ct);
    }
}

static int zk__ct_shutdown(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    int rc = zk__ct_enter(rt);
    if (rc != 0)
        return rc;
    zk__runtime_close_and_cancel(rt);
    /* Run until every task finished; then drain stale notifications. */
    while (zk__runtime_live(rt) > 0) {
        zk__task *t = zk__ct_next(ct);
        if (t) {
            zk__task_run(t);
            zk__io_after_run(ct->io, ct->local.len > 0);
        } else
            zk__ct_idle(rt, ct);
    }
    zk__task *t;
    while ((t = zk__ct_next(ct)) != NULL)
        zk__task_run(t);
    zk__ct_leave(rt);
    return 0;
}

static void zk__ct_destroy(zk_runtime *rt) {
    zk__ct *ct = rt->sched;
    zk__stack_cache_flush(&rt->stacks, &ct->worker.stacks);
    zk__coro_cache_flush(&ct->worker);
    zk__inject_destroy(&ct->inject);
    free(ct);
}

static zk__worker *zk__ct_worker(zk_runtime *rt, size_t i) {
    (void)i;
    return &((zk__ct *)rt->sched)->worker;
}

static size_t zk__ct_inject_len(zk_runtime *rt) {
    return zk__inject_len(&((zk__ct *)rt->sched)->inject);
}

/* The local FIFO belongs to the driving thread: its length is read only
 * there (0 from anywhere else). */
static size_t zk__ct_local_len(zk_runtime *rt, size_t i) {
    zk__ct *ct = rt->sched;
    (void)i;
    return zk__worker_current() == &ct->worker ? ct->local.len : 0;
}

static void zk__ct_timers_changed(zk_runtime *rt) {
    zk__parker_unpark(&((zk__ct *)rt->sched)->parker);
}

static const zk__sched_ops zk__ct_ops = {
    .schedule = zk__ct_schedule,
    .enter = zk__ct_enter,
    .run_until = zk__ct_run_until,
    .leave = zk__ct_leave,
    .shutdown = zk__ct_shutdown,
    .destroy = zk__ct_destroy,
    .worker = zk__ct_worker,
    .inject_len = zk__ct_inject_len,
    .local_len = zk__ct_local_len,
    .timers_changed = zk__ct_timers_changed,
    .next_direct = zk__ct_next_direct,
};

int zk__current_thread_create(zk_runtime *rt) {
    zk__ct *ct = calloc(1, sizeof *ct);
    if (!ct)
        return -ENOMEM;
    int rc = zk__inject_init(&ct->inject);
    if (rc != 0) {
        free(ct);
        return rc;
    }
    zk__parker_init(&ct->parker);
    ct->io = rt->io.workers[0];
    zk__parker_attach_io(&ct->parker, ct->io, SIZE_MAX); /* unbounded queue */
    zk__worker_init(&ct->worker, rt, ct, 0);
    atomic_init(&ct->driving, false);
    rt->sched = ct;
    rt->sched_ops = &zk__ct_ops;
    return 0;
}
