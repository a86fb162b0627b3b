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
/* A batch of tasks woken by timers or I/O that a worker keeps for itself
 * rather than waking a helper: at most ZK__KEEP_MAX tasks, expected to
 * run within ZK__KEEP_NS, and a helper woken if it is still queued
 * ZK__KEEP_NS after it came (see zk__mt_notify_if_stealable). */
#define ZK__KEEP_MAX 32
#define ZK__KEEP_NS  ((int64_t)250 * 1000)

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
    /* While it keeps a batch (zk__mt_notify_if_stealable), when the batch
     * came, on the real clock; thieves leave its queue alone until
     * ZK__KEEP_NS after that. 0: it keeps none. Written by the owner, read
     * by all. */
    _Atomic int64_t kept_since;
    /* Owner only: a batch of woken tasks is queued (whether kept or
     * shared), since `batch_at` on the real clock, and `batch_runs` task
     * runs have ended since; `run_ns`, the mean time a task of the last
     * batches ran on this worker (what a batch is expected to take). */
    bool batch_open;
    uint32_t batch_runs;
    int64_t batch_at;
    int64_t run_ns;
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
    /* Whether workers keep batches: when fewer workers reap I/O than run
     * tasks (a shared epoll instance, or io_uring's homes: io.h). */
    bool keep;
};

/* ---------------------------------------------------------------------- */
/* Notifying sleepers                                                     */
/* ---------------------------------------------------------------------- */

static void zk__mt_notify_parked(zk__mt *mt) {
    size_t index = zk__idle_worker_to_notify(&mt->idle);
    if (index != SIZE_MAX)
        zk__parker_unpark(&mt->workers[index].parker);
}

/* The worker's queue is open to thieves again, and a sleeper is woken to
 * steal from it. (Sequentially consistent, with the load in
 * zk__mt_closed_for: either this notification sees the sleeper registered,
 * or the sleeper, checking the queues once more, sees the queue open.) */
static void zk__mt_share(zk__mt_worker *mw) {
    if (atomic_load_explicit(&mw->kept_since, memory_order_relaxed) != 0)
        atomic_store(&mw->kept_since, 0);
    zk__mt_notify_parked(mw->mt);
}

/*
 * After a batch of wakes from timers or I/O, when this worker holds more
 * tasks than the one it runs next: Tokio's rule wakes a sleeper at once to
 * steal half of them. When the workers do not each reap their own I/O (a
 * shared epoll instance, or io_uring's rings of fewer homes than workers:
 * io.h, ZK__IO_WORKERS_PER_HOME), a batch of up to
 * ZK__KEEP_MAX tasks that the worker expects to run within ZK__KEEP_NS
 * (from the mean run of the tasks of its last batches) is kept instead:
 * the worker runs it and reaps the next batch itself, while the other
 * workers take the tasks queued meanwhile and, on epoll, one of them
 * waiting in the shared instance the events (on io_uring the completions
 * of a home's ring wait for the home to reap them). At an echo server's 1,000
 * connections a reap brings 4-5 events, each run in a few microseconds; waking
 * another worker to steal some cost a futex wake-up and a sleep, and moved
 * those connections' memory to the other core, more than it saved
 * (bench/README.md, "A batch kept by the worker that reaped it"). When every
 * worker is a home (a runtime of one worker, or as zk_builder_set_io_homes()
 * chose) Tokio's rule stays.
 *
 * A kept batch opens to thieves when it is ZK__KEEP_NS old: the owner
 * shares it after the task it runs then (zk__mt_batch_ran); should that
 * task run on, a searching worker takes it anyway (zk__mt_closed_for), and
 * a worker that goes to sleep while the batch is kept sleeps no longer
 * than that (zk__mt_park). Not covered: a worker asleep since before the
 * batch was kept is not woken for it. When the task ahead of the batch
 * runs long without yielding and no event or timer wakes that worker, the
 * batch waits for the end of that run, as a task in Tokio's LIFO slot
 * does.
 *
 * (The batch is judged once, after it is queued: notified one by one, the
 * first wake of a batch woke a sleeper before the batch was queued, and a
 * parked worker reaping its own completions could pick itself.)
 */
static void zk__mt_notify_if_stealable(zk__mt_worker *mw) {
    zk__mt *mt = mw->mt;
    size_t held = (mw->lifo != NULL) + zk__local_queue_len(&mw->queue);
    if (mw->searching || held <= 1)
        return;
    if (!mt->keep) {
        zk__mt_notify_parked(mt);
        return;
    }
    if (!mw->batch_open) {
        mw->batch_open = true;
        mw->batch_runs = 0;
        mw->batch_at = zk__mono_ns();
    }
    if (held <= ZK__KEEP_MAX && (int64_t)held * mw->run_ns <= ZK__KEEP_NS) {
        if (atomic_load_explicit(&mw->kept_since, memory_order_relaxed) == 0)
            atomic_store_explicit(&mw->kept_since, mw->batch_at,
                                  memory_order_relaxed);
        return;
    }
    zk__mt_share(mw);
}

/* After a task's run on a worker with a batch open: the batch is over when
 * the queue is empty, and its mean run goes into `run_ns`; a kept one that
 * has waited ZK__KEEP_NS is shared. */
static inline void zk__mt_batch_ran(zk__mt_worker *mw) {
    if (ZK__LIKELY(!mw->batch_open))
        return;
    mw->batch_runs++;
    bool over = zk__local_queue_len(&mw->queue) == 0;
    bool kept = atomic_load_explicit(&mw->kept_since, memory_order_relaxed);
    if (!over && !kept)
        return;
    int64_t waited = zk__mono_ns() - mw->batch_at;
    if (over) {
        mw->batch_open = false;
        if (kept)
            atomic_store_explicit(&mw->kept_since, 0, memory_order_relaxed);
        /* A moving mean (a quarter of the way to each sample): a batch of
         * long runs gets the next ones shared, a few short ones kept. */
        int64_t sample = waited / mw->batch_runs;
        mw->run_ns += (sample - mw->run_ns) / 4;
    } else if (waited >= ZK__KEEP_NS) {
        zk__mt_share(mw);
    }
}

/* How long `victim`'s queue stays closed to thieves: 0 when it is open,
 * else the time left until its kept batch is ZK__KEEP_NS old (callers see
 * to an empty queue: nothing to steal, and nothing to wait for).
 * `*now` (0: not read yet) is read once, when first needed, for all the
 * victims a caller looks at: a search spins for microseconds, far below
 * ZK__KEEP_NS. */
static int64_t zk__mt_closed_for(zk__mt_worker *victim, int64_t *now) {
    int64_t since = atomic_load(&victim->kept_since);
    if (since == 0)
        return 0;
    if (*now == 0)
        *now = zk__mono_ns();
    int64_t left = since + ZK__KEEP_NS - *now;
    return left > 0 ? left : 0;
}

/* A worker going to sleep looks for work once more: it wakes a sleeper
 * (itself, perhaps) for a queue open to thieves, and returns how long
 * until the first kept batch opens to thieves (INT64_MAX: none is kept,
 * or a sleeper was woken), the longest it may sleep. */
static int64_t zk__mt_notify_if_work_pending(zk__mt_worker *mw) {
    zk__mt *mt = mw->mt;
    int64_t now = 0, first_open = INT64_MAX;
    for (size_t i = 0; i < mt->n; i++) {
        zk__mt_worker *victim = &mt->workers[i];
        if (victim == mw || zk__local_queue_len(&victim->queue) == 0)
            continue;
        int64_t closed = zk__mt_closed_for(victim, &now);
        if (closed == 0) {
            zk__mt_notify_parked(mt);
            return INT64_MAX;
        }
        if (closed < first_open)
            first_open = closed;
    }
    if (zk__inject_len(&mt->inject) > 0) {
        zk__mt_notify_parked(mt);
        return INT64_MAX;
    }
    return first_open;
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
            zk__mt_share(mw);
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

/* `*now`: see zk__mt_closed_for. */
static zk__task *zk__mt_steal(zk__mt_worker *mw, int64_t *now) {
    zk__mt *mt = mw->mt;
    if (!mw->searching) {
        if (!zk__idle_transition_to_searching(&mt->idle))
            return NULL;
        mw->searching = true;
    }
    size_t start = (size_t)(zk__mt_rand(mw) % mt->n);
    for (size_t i = 0; i < mt->n; i++) {
        size_t victim = (start + i) % mt->n;
        if (victim == mw->w.index ||
            zk__mt_closed_for(&mt->workers[victim], now) > 0)
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
        zk__mt_share(mw);
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
    zk__mt_batch_ran(mw);
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
        zk__mt_batch_ran(mw);
    }
}

/* For a coroutine about to wait or yield (coro.c): the task this loop
 * would run next, taken as the loop would take it, when it is a coroutine
 * that has run before. Not at a tick where the loop looks at the inject
 * queue, timers and I/O (zk__mt_next_task): it gets control back then. */
static zk__task *zk__mt_next_direct(zk__worker *w) {
    zk__mt_worker *mw = (zk__mt_worker *)w;
    zk__mt_batch_ran(mw); /* the run of the task that stops ends here */
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
    /* Its queue is empty: whatever it kept was run or stolen. */
    mw->batch_open = false;
    if (atomic_load_explicit(&mw->kept_since, memory_order_relaxed) != 0)
        atomic_store_explicit(&mw->kept_since, 0, memory_order_relaxed);
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
    int64_t kept_open = zk__mt_notify_if_work_pending(mw);
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
        int64_t wait =
            next == INT64_MAX ? INT64_MAX : next - zk__time_now(time);
        if (kept_open < wait)
            wait = kept_open; /* to take a kept batch if it is still there */
        mw->in_driver = true;
        if (wait == INT64_MAX)
            zk__parker_park(&mw->parker);
        else if (wait > 0)
            zk__parker_park_timeout(&mw->parker, wait);
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
        /* A kept batch that opened to thieves meanwhile gets a searcher
         * (this worker, woken by its own notification, as a rule). */
        if (kept_open != INT64_MAX)
            kept_open = zk__mt_notify_if_work_pending(mw);
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
        int64_t now = 0; /* read once per search, if needed */
        for (int spin = 0; t == NULL && spin < ZK__SEARCH_SPINS; spin++) {
            t = zk__mt_steal(mw, &now);
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
    zk__io_retire(mw->io);

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
        atomic_init(&mw->kept_since, 0);
        /* Until a batch is measured, one of two tasks is shared. */
        mw->run_ns = ZK__KEEP_NS;
    }
    mt->keep = rt->io.ops->shared_instance || rt->io.homes < rt->io.n;
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
