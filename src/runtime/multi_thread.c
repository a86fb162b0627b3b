/*
 * multi_thread.c - the multi-thread work-stealing scheduler (Tokio's
 * design).
 *
 * Each worker thread owns a bounded local queue (local_queue.h) and a LIFO
 * slot. A task woken by the task running on a worker goes to that worker's
 * LIFO slot and runs next (message passing stays hot in cache); at most
 * ZK__LIFO_MAX tasks run from the slot in a row, then it goes to the back of
 * the queue so two tasks waking each other cannot starve the rest. Yields go
 * to the back of the local queue. Wakes from other threads go to the global
 * inject queue, which each worker checks first every ZK__INJECT_INTERVAL
 * ticks (it serves tasks that ran before ahead of new ones: inject.h). A
 * worker without work steals half of another worker's queue, then looks at
 * the inject queue, then sleeps in its parker; idle.h decides who searches
 * and who is woken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "coro.h"
#include "idle.h"
#include "inject.h"
#include "local_queue.h"
#include "park.h"
#include "runtime.h"
#include "worker.h"

#define ZK__INJECT_INTERVAL 61
#define ZK__LIFO_MAX        3
#define ZK__SEARCH_SPINS    64

typedef struct zk__mt zk__mt;

/* Cache-line aligned: workers' queues are hot and written by different
 * threads. */
typedef struct zk__mt_worker {
    /* First member: the generic worker the rest of the runtime sees. */
    alignas(64) zk__worker w;
    zk__mt *mt;
    zk__local_queue queue;
    /* The task woken last by the running task; owner thread only. */
    zk__task *lifo;
    /* Tasks run from the LIFO slot since one was taken from a queue. */
    int lifo_runs;
    zk__parker parker;
    zk__io_worker *io;
    pthread_t thread;
    bool started;
    bool searching;
    /* Firing timers, reaping I/O or parked in the backend: the tasks it
     * wakes come in a batch, and whether another worker should help is
     * decided once after it (zk__mt_notify_if_stealable), not at every
     * wake. */
    bool in_driver;
    uint32_t tick;
    uint64_t rng; /* where to start stealing */
} zk__mt_worker;

struct zk__mt {
    zk_runtime *rt;
    size_t n;
    zk__mt_worker *workers;
    zk__inject inject;
    zk__idle idle;
    _Atomic bool stop;
    /* The worker that sleeps with the next timer's deadline as its
     * timeout (SIZE_MAX: none); the others sleep without one. */
    _Atomic size_t timer_keeper;
};

/* ---------------------------------------------------------------------- */
/* Notifying sleepers                                                     */
/* ---------------------------------------------------------------------- */

static void zk__mt_notify_parked(zk__mt *mt) {
    size_t index = zk__idle_worker_to_notify(&mt->idle);
    if (index != SIZE_MAX)
        zk__parker_unpark(&mt->workers[index].parker);
}

/* After a batch of wakes from timers or I/O: one sleeper is woken to help
 * when this worker holds more tasks than the one it runs next (Tokio's
 * rule). Notified one by one, the first wake of a batch woke a sleeper
 * before the batch was queued, and a parked worker reaping its own
 * completions could pick itself as the sleeper to wake. */
static void zk__mt_notify_if_stealable(zk__mt_worker *mw) {
    size_t held = (mw->lifo != NULL) + zk__local_queue_len(&mw->queue);
    if (!mw->searching && held > 1)
        zk__mt_notify_parked(mw->mt);
}

/* A worker going to sleep looks for work once more. */
static void zk__mt_notify_if_work_pending(zk__mt *mt) {
    for (size_t i = 0; i < mt->n; i++) {
        if (zk__local_queue_len(&mt->workers[i].queue) > 0) {
            zk__mt_notify_parked(mt);
            return;
        }
    }
    if (zk__inject_len(&mt->inject) > 0)
        zk__mt_notify_parked(mt);
}

/* ---------------------------------------------------------------------- */
/* Scheduling                                                             */
/* ---------------------------------------------------------------------- */

static void zk__mt_push_local(zk__mt_worker *mw, zk__task *t) {
    if (zk__local_queue_push(&mw->queue, t, &mw->mt->inject))
        ZK__COUNT(mw->w.metrics.overflows);
}

static void zk__mt_schedule(zk_runtime *rt, zk__task *t, bool yield) {
    zk__mt *mt = rt->sched;
    zk__worker *w = zk__worker_current();
    if (w != NULL && w->rt == rt) {
        zk__mt_worker *mw = (zk__mt_worker *)w;
        ZK__COUNT(w->metrics.local_schedules);
        if (!yield) {
            /* Into the LIFO slot; a task it held goes to the queue. */
            zk__task *prev = mw->lifo;
            mw->lifo = t;
            if (prev == NULL)
                return;
            t = prev;
        }
        zk__mt_push_local(mw, t);
        if (!mw->in_driver)
            zk__mt_notify_parked(mt);
        return;
    }
    zk__remote_schedule_begin(rt);
    zk__inject_push(&mt->inject, t);
    zk__mt_notify_parked(mt);
    zk__remote_schedule_end(rt);
}

/* ---------------------------------------------------------------------- */
/* The worker loop                                                        */
/* ---------------------------------------------------------------------- */

static zk__task *zk__mt_next_task(zk__mt_worker *mw) {
    zk__task *t;
    if (++mw->tick % ZK__INJECT_INTERVAL == 0) {
        mw->in_driver = true;
        zk__time_process(&mw->mt->rt->time);
        /* No more completions or events than the queue has room for (an
         * event may wake more than one task: rare). Overflowing into the
         * inject queue, woken tasks waited there while every later reap's
         * went ahead (an echo server's 99th percentile was 2-3 times
         * Tokio's at 1,000 connections, bench/README.md); left in the
         * kernel, they come first at the next reap. */
        size_t room = ZK__LOCAL_QUEUE_CAP - zk__local_queue_len(&mw->queue);
        zk__io_poll(mw->io, 0, room);
        mw->in_driver = false;
        zk__mt_notify_if_stealable(mw);
        if ((t = zk__inject_pop(&mw->mt->inject)) != NULL)
            return t;
    }
    /* A task woken outside a run (by timers this worker fired) waits in
     * the LIFO slot. */
    if ((t = mw->lifo) != NULL) {
        mw->lifo = NULL;
        return t;
    }
    t = zk__local_queue_pop(&mw->queue);
    return t ? t : zk__inject_pop(&mw->mt->inject);
}

static uint64_t zk__mt_rand(zk__mt_worker *mw) {
    /* xorshift64: only spreads where thieves start looking. */
    uint64_t x = mw->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return mw->rng = x;
}

static zk__task *zk__mt_steal(zk__mt_worker *mw) {
    zk__mt *mt = mw->mt;
    if (!mw->searching) {
        if (!zk__idle_transition_to_searching(&mt->idle))
            return NULL;
        mw->searching = true;
    }
    size_t start = (size_t)(zk__mt_rand(mw) % mt->n);
    for (size_t i = 0; i < mt->n; i++) {
        size_t victim = (start + i) % mt->n;
        if (victim == mw->w.index)
            continue;
        uint32_t stolen;
        zk__task *t = zk__local_queue_steal(&mt->workers[victim].queue,
                                            &mw->queue, &stolen);
        if (t) {
            ZK__COUNT_N(mw->w.metrics.steals, stolen);
            ZK__COUNT(mw->w.metrics.steal_operations);
            return t;
        }
    }
    return zk__inject_pop(&mt->inject);
}

static bool zk__mt_has_work(zk__mt_worker *mw) {
    return mw->lifo != NULL || zk__local_queue_len(&mw->queue) > 0;
}

/* The LIFO slot's task after ZK__LIFO_MAX runs from it in a row: to the
 * back of the queue. Alone there, it is this worker's next task: waking a
 * sleeper to steal it would only move it to another core (and the futex
 * calls cost more than it). */
static void zk__mt_lifo_to_back(zk__mt_worker *mw, zk__task *t) {
    bool alone = zk__local_queue_len(&mw->queue) == 0;
    zk__mt_push_local(mw, t);
    if (!alone)
        zk__mt_notify_parked(mw->mt);
}

static void zk__mt_run(zk__mt_worker *mw, zk__task *t) {
    if (mw->searching) {
        mw->searching = false;
        if (zk__idle_transition_from_searching(&mw->mt->idle))
            zk__mt_notify_parked(mw->mt);
    }
    mw->lifo_runs = 0;
    zk__task_run(t);
    zk__io_after_run(mw->io, zk__mt_has_work(mw));
    while ((t = mw->lifo) != NULL) {
        mw->lifo = NULL;
        if (mw->lifo_runs >= ZK__LIFO_MAX) {
            zk__mt_lifo_to_back(mw, t);
            break;
        }
        mw->lifo_runs++;
        ZK__COUNT(mw->w.metrics.lifo_hits);
        zk__task_run(t);
        zk__io_after_run(mw->io, zk__mt_has_work(mw));
    }
}

/* For a coroutine about to wait or yield (coro.c): the task this loop
 * would run next, taken as the loop would take it, when it is a coroutine
 * that has run before. Not at a tick where the loop looks at the inject
 * queue, timers and I/O (zk__mt_next_task): it gets control back then. */
static zk__task *zk__mt_next_direct(zk__worker *w) {
    zk__mt_worker *mw = (zk__mt_worker *)w;
    zk__task *t = mw->lifo;
    if (t != NULL && mw->lifo_runs < ZK__LIFO_MAX) {
        if (!zk__task_resumable(t))
            return NULL;
        mw->lifo = NULL;
        mw->lifo_runs++;
        ZK__COUNT(w->metrics.lifo_hits);
    } else {
        if ((mw->tick + 1) % ZK__INJECT_INTERVAL == 0)
            return NULL;
        if (t != NULL) {
            mw->lifo = NULL;
            zk__mt_lifo_to_back(mw, t);
        }
        if ((t = zk__local_queue_pop(&mw->queue)) == NULL)
            return NULL;
        mw->tick++;
        mw->lifo_runs = 0;
        if (!zk__task_resumable(t)) {
            /* The loop's next task all the same (which counts it as a
             * LIFO hit: the metric is off by these, rare, tasks). */
            mw->lifo = t;
            return NULL;
        }
    }
    /* What the task that stops now prepared may go to the kernel. */
    zk__io_after_run(mw->io, true);
    return t;
}

static void zk__mt_park(zk__mt_worker *mw) {
    zk__mt *mt = mw->mt;
    mw->in_driver = true;
    zk__time_process(&mt->rt->time);
    mw->in_driver = false;
    if (zk__local_queue_len(&mw->queue) > 0 || mw->lifo != NULL) {
        zk__mt_notify_if_stealable(mw);
        return;
    }
    zk__stack_pool_trim(&mt->rt->stacks);
    zk__idle_transition_to_parked(&mt->idle, mw->w.index, mw->searching);
    mw->searching = false;
    /* Every worker going to sleep looks at the queues once more, not only
     * the last searcher. A worker that gave up searching because another
     * searched is unparked until here: a task pushed meanwhile saw it
     * unparked and woke nobody, while the searcher may have stopped
     * searching (it found its own task) before this worker registered as
     * a sleeper. With a busy worker pushing a few tasks and never parking,
     * those tasks then waited for ever (seen under ThreadSanitizer on a
     * loaded machine). */
    zk__mt_notify_if_work_pending(mt);
    ZK__COUNT(mw->w.metrics.parks);
    zk__time *time = &mt->rt->time;
    while (!atomic_load_explicit(&mt->stop, memory_order_acquire)) {
        /* One sleeper keeps the timers: it wakes at the next deadline.
         * (Keeper first, deadline second: a timer added meanwhile sees the
         * keeper and unparks it.) */
        size_t none = SIZE_MAX;
        bool keeper = atomic_compare_exchange_strong(&mt->timer_keeper, &none,
                                                     mw->w.index);
        int64_t next = keeper ? zk__time_next(time) : INT64_MAX;
        mw->in_driver = true;
        if (next == INT64_MAX) {
            zk__parker_park(&mw->parker);
        } else {
            int64_t wait = next - zk__time_now(time);
            if (wait > 0)
                zk__parker_park_timeout(&mw->parker, wait);
        }
        if (keeper) {
            atomic_store(&mt->timer_keeper, SIZE_MAX);
            zk__time_process(time);
        }
        mw->in_driver = false;
        /* Tasks woken by its timers or by I/O it reaped while parked went
         * to this worker's own queue: it must get up and run them. */
        if (mw->lifo != NULL || zk__local_queue_len(&mw->queue) > 0) {
            if (!zk__idle_unpark_worker_by_id(&mt->idle, mw->w.index))
                mw->searching = true; /* a notification got here first */
            zk__mt_notify_if_stealable(mw);
            break;
        }
        if (!zk__idle_is_parked(&mt->idle, mw->w.index)) {
            /* Picked by a notification: counted as searching. */
            mw->searching = true;
            break;
        }
    }
}

static void *zk__mt_worker_main(void *arg) {
    zk__mt_worker *mw = arg;
    zk__mt *mt = mw->mt;
    char name[16];
    snprintf(name, sizeof name, "%.10s-%zu", mt->rt->thread_name, mw->w.index);
    pthread_setname_np(pthread_self(), name);
    /* A write to a pipe whose reader is gone (a child's stdin) raises
     * SIGPIPE in the writing thread, which MSG_NOSIGNAL cannot prevent for
     * pipes: blocked here, it stays pending and the write returns -EPIPE. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    zk__worker_attach(&mw->w);
    void *altstack = zk__overflow_thread_enter();

    while (!atomic_load_explicit(&mt->stop, memory_order_acquire)) {
        zk__task *t = zk__mt_next_task(mw);
        /* Before sleeping, a searcher looks again for a few microseconds:
         * work that arrives meanwhile is picked up without a futex sleep and
         * wake-up (a bounded spin before the park, not a way of waiting). */
        for (int spin = 0; t == NULL && spin < ZK__SEARCH_SPINS; spin++) {
            t = zk__mt_steal(mw);
            if (t == NULL && !mw->searching)
                break; /* enough others search already */
            if (t == NULL)
                zk__cpu_relax();
        }
        if (t != NULL)
            zk__mt_run(mw, t);
        else
            zk__mt_park(mw);
    }
    /* Every task has finished by now: what is left are stale
     * notifications, which only drop their references. */
    zk__task *t;
    if ((t = mw->lifo) != NULL) {
        mw->lifo = NULL;
        zk__task_run(t);
    }
    while ((t = zk__local_queue_pop(&mw->queue)) != NULL)
        zk__task_run(t);

    zk__stack_cache_flush(&mt->rt->stacks, &mw->w.stacks);
    zk__coro_cache_flush(&mw->w);
    zk__overflow_thread_leave(altstack);
    zk__worker_set(NULL);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Runtime hooks                                                          */
/* ---------------------------------------------------------------------- */

/* Any number of threads may block on a multi-thread runtime: the root runs
 * on the workers and the caller sleeps in zk_task_join(). */
static int zk__mt_enter(zk_runtime *rt) {
    (void)rt;
    return 0;
}

static void zk__mt_run_until(zk_runtime *rt, zk__task *root) {
    (void)rt;
    (void)root;
}

static void zk__mt_leave(zk_runtime *rt) {
    (void)rt;
}

static void zk__mt_stop_workers(zk__mt *mt) {
    atomic_store_explicit(&mt->stop, true, memory_order_release);
    for (size_t i = 0; i < mt->n; i++)
        zk__parker_unpark(&mt->workers[i].parker);
    for (size_t i = 0; i < mt->n; i++)
        if (mt->workers[i].started)
            pthread_join(mt->workers[i].thread, NULL);
}

static int zk__mt_shutdown(zk_runtime *rt) {
    zk__mt *mt = rt->sched;
    zk__runtime_close_and_cancel(rt);
    zk__runtime_wait_drained(rt);
    zk__mt_stop_workers(mt);
    zk__task *t;
    while ((t = zk__inject_pop(&mt->inject)) != NULL)
        zk__task_run(t); /* stale: finished tasks only */
    return 0;
}

static void zk__mt_free(zk__mt *mt) {
    zk__inject_destroy(&mt->inject);
    zk__idle_destroy(&mt->idle);
    free(mt->workers);
    free(mt);
}

static void zk__mt_destroy(zk_runtime *rt) {
    zk__mt_free(rt->sched);
}

static zk__worker *zk__mt_worker_at(zk_runtime *rt, size_t i) {
    return &((zk__mt *)rt->sched)->workers[i].w;
}

static size_t zk__mt_inject_len(zk_runtime *rt) {
    return zk__inject_len(&((zk__mt *)rt->sched)->inject);
}

static size_t zk__mt_local_len(zk_runtime *rt, size_t i) {
    return zk__local_queue_len(&((zk__mt *)rt->sched)->workers[i].queue);
}

static void zk__mt_timers_changed(zk_runtime *rt) {
    zk__mt *mt = rt->sched;
    size_t keeper = atomic_load(&mt->timer_keeper);
    if (keeper != SIZE_MAX)
        zk__parker_unpark(&mt->workers[keeper].parker);
}

static const zk__sched_ops zk__mt_ops = {
    .schedule = zk__mt_schedule,
    .enter = zk__mt_enter,
    .run_until = zk__mt_run_until,
    .leave = zk__mt_leave,
    .shutdown = zk__mt_shutdown,
    .destroy = zk__mt_destroy,
    .worker = zk__mt_worker_at,
    .inject_len = zk__mt_inject_len,
    .local_len = zk__mt_local_len,
    .timers_changed = zk__mt_timers_changed,
    .next_direct = zk__mt_next_direct,
};

int zk__multi_thread_create(zk_runtime *rt) {
    zk__mt *mt = calloc(1, sizeof *mt);
    if (!mt)
        return -ENOMEM;
    mt->rt = rt;
    mt->n = rt->workers;
    atomic_init(&mt->stop, false);
    atomic_init(&mt->timer_keeper, SIZE_MAX);
    mt->workers = aligned_alloc(64, sizeof(zk__mt_worker) * mt->n);
    int rc = mt->workers ? 0 : -ENOMEM;
    if (rc == 0 && (rc = zk__inject_init(&mt->inject)) != 0) {
        free(mt->workers);
    } else if (rc == 0 && (rc = zk__idle_init(&mt->idle, mt->n)) != 0) {
        zk__inject_destroy(&mt->inject);
        free(mt->workers);
    }
    if (rc != 0) {
        free(mt);
        return rc;
    }
    for (size_t i = 0; i < mt->n; i++) {
        zk__mt_worker *mw = &mt->workers[i];
        memset(mw, 0, sizeof *mw);
        zk__worker_init(&mw->w, rt, mw, i);
        mw->mt = mt;
        zk__local_queue_init(&mw->queue);
        zk__parker_init(&mw->parker);
        mw->io = rt->io.workers[i];
        zk__parker_attach_io(&mw->parker, mw->io, ZK__LOCAL_QUEUE_CAP);
        mw->rng = 0x9E3779B97F4A7C15ull * (i + 1);
    }
    rt->sched = mt;
    rt->sched_ops = &zk__mt_ops;
    for (size_t i = 0; i < mt->n; i++) {
        zk__mt_worker *mw = &mt->workers[i];
        if (pthread_create(&mw->thread, NULL, zk__mt_worker_main, mw) != 0) {
            zk__mt_stop_workers(mt);
            zk__mt_free(mt);
            return -EAGAIN;
        }
        mw->started = true;
    }
    return 0;
}
