/* blocking.c - the blocking pool, see blocking.h. */
#define _GNU_SOURCE
#include "blocking.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "common/util.h"
#include "queue.h"
#include "runtime.h"

struct zk__blocking_pool {
    struct zk_runtime *rt;
    size_t max_threads;
    int64_t keep_alive_ns;
    /* The runtime's reference plus one per thread. */
    _Atomic size_t refs;

    pthread_mutex_t lock;
    pthread_cond_t work;     /* idle threads wait here */
    pthread_cond_t all_gone; /* shutdown waits here for threads == 0 */
    /* All below are guarded by lock. */
    zk__task_fifo queue;
    size_t threads;    /* alive */
    size_t idle;       /* waiting for work and not yet handed any */
    size_t notified;   /* wake-ups handed to idle threads, not yet taken */
    size_t unfinished; /* spawned and not yet run (or cancelled) */
    bool shutdown;
    /* Set when shutdown stopped waiting: threads still running then detach
     * themselves instead of waiting to be joined. */
    bool orphaned;
    uint64_t started, retired;
    /* Threads that exited and still have to be joined. */
    pthread_t *exited;
    size_t nexited, exited_cap;
};

static __thread struct zk_runtime *zk__tls_blocking_rt;

struct zk_runtime *zk__blocking_thread_runtime(void) {
    return zk__tls_blocking_rt;
}

/* ---------------------------------------------------------------------- */
/* Blocking tasks                                                         */
/* ---------------------------------------------------------------------- */

typedef struct zk__blocking_task {
    zk__task_base base;
    zk_task_fn fn;
    void *arg;
} zk__blocking_task;

static zk__run_outcome zk__blocking_task_poll(zk__task *t) {
    zk__blocking_task *b = (zk__blocking_task *)t;
    zk__task_core_of(t)->result = b->fn(b->arg);
    return ZK__RUN_READY;
}

/* Aborted (or shut down) before it started: it never runs. */
static void zk__blocking_task_cancel(zk__task *t) {
    zk__task_core_of(t)->result = -ECANCELED;
}

static void zk__blocking_task_dealloc(zk__task *t) {
    free(t);
}

static const zk__task_vtable zk__blocking_task_vtable = {
    zk__blocking_task_poll, zk__blocking_task_cancel, zk__blocking_task_dealloc,
    false, false};

/* ---------------------------------------------------------------------- */
/* Threads                                                                */
/* ---------------------------------------------------------------------- */

static void zk__pool_release(zk__blocking_pool *p) {
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->all_gone);
    pthread_mutex_destroy(&p->lock);
    free(p->exited);
    free(p);
}

/* With the lock held: records the calling, exiting thread for a later
 * join. False when nobody will join it (the pool was orphaned, or no
 * memory for the record): the thread then detaches itself. */
static bool zk__pool_note_exit(zk__blocking_pool *p) {
    if (p->orphaned)
        return false;
    if (p->nexited == p->exited_cap) {
        size_t cap = p->exited_cap ? 2 * p->exited_cap : 8;
        pthread_t *grown = realloc(p->exited, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        p->exited = grown;
        p->exited_cap = cap;
    }
    p->exited[p->nexited++] = pthread_self();
    return true;
}

/* Joins the threads that exited so far (without the lock: a join waits
 * for the last instructions of a thread that just recorded itself). */
static void zk__pool_join_exited(zk__blocking_pool *p) {
    pthread_mutex_lock(&p->lock);
    pthread_t *list = p->exited;
    size_t n = p->nexited;
    p->exited = NULL;
    p->nexited = p->exited_cap = 0;
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < n; i++)
        pthread_join(list[i], NULL);
    free(list);
}

static struct timespec zk__deadline_after(int64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec += ns % 1000000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/* Waits for work with the lock held; returns false when the thread should
 * retire (keep-alive expired) or the pool shuts down. */
static bool zk__pool_wait_for_work(zk__blocking_pool *p) {
    struct timespec deadline = zk__deadline_after(p->keep_alive_ns);
    p->idle++;
    for (;;) {
        int rc = pthread_cond_timedwait(&p->work, &p->lock, &deadline);
        if (p->notified > 0) {
            p->notified--; /* the pusher already took us off `idle` */
            return true;
        }
        if (p->shutdown || rc == ETIMEDOUT) {
            p->idle--;
            return false;
        }
    }
}

static void *zk__pool_thread(void *arg) {
    zk__blocking_pool *p = arg;
    pthread_setname_np(pthread_self(), "zokio-blocking");
    /* As on the workers: a write to a broken pipe returns -EPIPE instead
     * of killing the process (multi_thread.c). */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    zk__tls_blocking_rt = p->rt;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        zk__task *t = zk__fifo_pop(&p->queue);
        if (t != NULL) {
            pthread_mutex_unlock(&p->lock);
            zk__task_run(t);
            pthread_mutex_lock(&p->lock);
            if (--p->unfinished == 0 && !p->shutdown &&
                atomic_load(&p->rt->time.paused))
                /* Its joiner may have looked before this count fell and
                 * parked instead of moving the paused clock: look again.
                 * (Under the lock and before shutdown: the runtime is
                 * alive.) */
                p->rt->sched_ops->timers_changed(p->rt);
            continue;
        }
        if (p->shutdown || !zk__pool_wait_for_work(p))
            break;
    }
    p->threads--;
    p->retired++;
    if (!zk__pool_note_exit(p))
        pthread_detach(pthread_self());
    if (p->threads == 0)
        pthread_cond_broadcast(&p->all_gone);
    pthread_mutex_unlock(&p->lock);
    zk__tls_blocking_rt = NULL;
    zk__pool_release(p);
    return NULL;
}

/* With the lock held: hands the queued task to an idle thread, or starts
 * one if the bound allows (otherwise the task waits in the queue for a
 * running one). Returns -EAGAIN when no thread could be started and none
 * runs: nothing would ever take the task. */
static int zk__pool_dispatch(zk__blocking_pool *p) {
    if (p->idle > 0) {
        p->idle--;
        p->notified++;
        pthread_cond_signal(&p->work);
        return 0;
    }
    if (p->threads >= p->max_threads)
        return 0;
    pthread_t th;
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    if (pthread_create(&th, NULL, zk__pool_thread, p) == 0) {
        p->threads++;
        p->started++;
        return 0;
    }
    atomic_fetch_sub_explicit(&p->refs, 1, memory_order_relaxed);
    return p->threads > 0 ? 0 : -EAGAIN;
}

/* ---------------------------------------------------------------------- */
/* Pool                                                                   */
/* ---------------------------------------------------------------------- */

int zk__blocking_pool_create(struct zk_runtime *rt, size_t max_threads,
                             int64_t keep_alive_ns, zk__blocking_pool **out) {
    zk__blocking_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->rt = rt;
    p->max_threads = max_threads;
    p->keep_alive_ns = keep_alive_ns;
    atomic_init(&p->refs, 1);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = -pthread_mutex_init(&p->lock, NULL);
    if (rc == 0 && (rc = -pthread_cond_init(&p->work, &ca)) != 0)
        pthread_mutex_destroy(&p->lock);
    if (rc == 0 && (rc = -pthread_cond_init(&p->all_gone, &ca)) != 0) {
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
    }
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int zk__blocking_spawn(zk__blocking_pool *p, zk_task_fn fn, void *arg,
                       zk__task **out) {
    zk__blocking_task *b = malloc(sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    zk__task *t = &b->base.header;
    zk__task_init(t, &zk__blocking_task_vtable, p->rt);
    zk__task_drop_ref(t); /* not in the live list: no reference for it */
    b->fn = fn;
    b->arg = arg;
    pthread_mutex_lock(&p->lock);
    if (p->shutdown) {
        pthread_mutex_unlock(&p->lock);
        free(b);
        return -ESHUTDOWN;
    }
    zk__fifo_push(&p->queue, t); /* the first notification's reference */
    if (zk__pool_dispatch(p) != 0) {
        /* No thread runs, so the queue held nothing else: t is its head,
         * and the call fails without having done anything. */
        zk__task *head = zk__fifo_pop(&p->queue);
        ZK__ASSERT(head == t && p->queue.len == 0);
        (void)head;
        pthread_mutex_unlock(&p->lock);
        free(b);
        return -EAGAIN;
    }
    p->unfinished++;
    bool reap = p->nexited > 0;
    pthread_mutex_unlock(&p->lock);
    if (reap)
        zk__pool_join_exited(p); /* threads that retired meanwhile */
    *out = t;
    return 0;
}

size_t zk__blocking_pool_shutdown(zk__blocking_pool *p, int64_t timeout_ns) {
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    zk__task_fifo never_started = p->queue;
    p->queue = (zk__task_fifo){NULL, NULL, 0};
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);

    /* Queued work never starts: complete it as cancelled. */
    zk__task *t;
    size_t cancelled = 0;
    while ((t = zk__fifo_pop(&never_started)) != NULL) {
        zk__task_cancel(t);
        zk__task_run(t);
        cancelled++;
    }

    pthread_mutex_lock(&p->lock);
    p->unfinished -= cancelled;
    if (timeout_ns < 0) {
        while (p->threads > 0)
            pthread_cond_wait(&p->all_gone, &p->lock);
    } else {
        struct timespec deadline = zk__deadline_after(timeout_ns);
        while (p->threads > 0 && pthread_cond_timedwait(&p->all_gone, &p->lock,
                                                        &deadline) != ETIMEDOUT)
            ;
    }
    size_t left = p->threads;
    p->orphaned = left > 0;
    pthread_mutex_unlock(&p->lock);
    zk__pool_join_exited(p);
    zk__pool_release(p);
    return left;
}

bool zk__blocking_pool_busy(zk__blocking_pool *p) {
    pthread_mutex_lock(&p->lock);
    bool busy = p->unfinished > 0;
    pthread_mutex_unlock(&p->lock);
    return busy;
}

void zk__blocking_pool_stats(zk__blocking_pool *p, zk__blocking_stats *out) {
    pthread_mutex_lock(&p->lock);
    out->threads = p->threads;
    out->idle = p->idle;
    out->queued = p->queue.len;
    out->started = p->started;
    out->retired = p->retired;
    pthread_mutex_unlock(&p->lock);
}
