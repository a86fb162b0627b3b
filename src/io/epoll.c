/*
 * epoll.c - the epoll backend: one epoll instance shared by a runtime's
 * workers, readiness based, edge-triggered.
 *
 * An operation tries its system call; when it would block it queues itself
 * on its handle's registration (one waiter list per direction) and the
 * worker that reaps the kernel's readiness event wakes it.
 *
 * One worker at a time reaps (Tokio's I/O driver): a worker going to sleep
 * waits in epoll_wait when no other worker does, and otherwise sleeps on
 * its parker's futex; a busy worker reaps without waiting every few ticks
 * when nobody else is reaping (a worker going to sleep meanwhile waits for
 * that short reap to end, then waits in epoll_wait itself). The tasks an event
 * wakes go to the reaping worker's queue, and it wakes a sleeper when it has
 * more than it can run next. With an instance per worker, each worker saw only
 * its own connections' events and slept and woke for each small batch of them:
 * three to six times as many sleeps per round trip on an echo server with
 * 100 connections (bench/README.md).
 *
 * Readiness is cached per direction in `state` (see ZK__RD_*), together
 * with a count of readiness events. An operation that finds its direction
 * not ready does not try the system call: it would fail with EAGAIN. The
 * direction stops being ready when a call fails with EAGAIN, or when a
 * read or write on a byte stream moves less than asked (the kernel's buffer
 * was then empty, or full: Tokio does the same), and only if no event came
 * since the operation read `state` (a compare-and-swap), so no readiness is
 * lost between the attempt and the queueing. An operation queues only if
 * `state` is still what it cleared. The next edge sets it ready again.
 * Once the kernel reported a side closed (hang-up, error), a short read
 * no longer clears it: the next read returns end of file at once.
 * On an echo server this halves the reads: without it every message costs
 * a second read that fails with EAGAIN.
 *
 * Registrations are freed by the reaping worker, before it fetches events:
 * the last user removes the descriptor from epoll, closes it and hands the
 * registration over (`release`), so an event already returned by
 * epoll_wait never points at freed memory.
 *
 * Files and path operations cannot be waited for with epoll: they run
 * their system call on the blocking pool, and dropping one that already
 * started waits for it, so its buffer is never written after the drop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/futex.h"
#include "common/lock.h"
#include "common/util.h"
#include "io/op.h"
#include "runtime/park.h"
#include "runtime/runtime.h"
#include "runtime/task.h"

#define ZK__EPOLL_EVENTS 256

/* A registration's `state`: per direction (0 read, 1 write), a bit that
 * says a system call may not fail with EAGAIN, and a bit that says the
 * kernel reported that side closed (hang-up, error): then a short read
 * does not mean "wait for more" (the next read returns end of file, and no
 * new edge would come). Above them, the count of readiness events. */
#define ZK__RD_BIT(d)    (1u << (d))
#define ZK__RD_BITS      3u
#define ZK__RD_CLOSED(d) (4u << (d))
#define ZK__RD_EVENT     16u

typedef struct zk__epoll zk__epoll;

/* The operations waiting for one direction of a registration, after the
 * first one (its task's waker is kept here, so that the worker that sees
 * the event wakes it without touching the operation, in its task's stack,
 * cold by then: on an echo server that load was most of the event loop's
 * time). More waiters at once are linked from `waiters` with their wakers
 * in the operation. */
typedef struct zk__epoll_dir {
    zk__io_op *waiters; /* doubly linked */
    zk_waker first_waker;
} zk__epoll_dir;

typedef struct zk__epoll_shared zk__epoll_shared;

typedef struct zk__epoll_reg {
    zk__lock lock;
    _Atomic uint64_t state; /* events x ZK__RD_EVENT + ZK__RD_* bits */
    zk__io_handle *h;
    /* Per direction ([0] readers, [1] writers), the first operation
     * waiting: it waits there while `first[d]` is itself, with its `queued`
     * false. Written with the lock; an operation reads it without, at
     * every completion, to learn whether it may be there (nobody else puts
     * it there). */
    _Atomic(zk__io_op *) first[2];
    /* With the fields above, the readers' end the registration's first
     * cache line (it is allocated on one): an event, the read it wakes and
     * a write that completes at once touch that line only. */
    zk__epoll_dir dir[2];
    zk__epoll_shared *sh;
    struct zk__epoll_reg *release_next;
} zk__epoll_reg;

_Static_assert(offsetof(zk__epoll_reg, dir) + sizeof(zk__epoll_dir) <= 64,
               "a read's fields of the registration must share a line");

#define ZK__NO_REAPER SIZE_MAX
/* Set in `reaper` with the index of a worker that may wait in epoll_wait
 * (a park), clear for a running worker's reap without a wait. */
#define ZK__REAPER_WAITS ((size_t)1 << (sizeof(size_t) * 8 - 2))

/* The epoll instance of a runtime, made with its worker 0 and freed with
 * its last worker. */
struct zk__epoll_shared {
    int epfd;
    int efd; /* unpark() of the worker waiting in epoll_wait */
    /* The worker reaping events (waiting in epoll_wait or handling what it
     * returned), with ZK__REAPER_WAITS when it may wait, or ZK__NO_REAPER:
     * taken with a compare-and-swap. */
    _Atomic size_t reaper;
    pthread_mutex_t release_lock;
    zk__epoll_reg *release;
    size_t users;   /* workers not destroyed yet; under release_lock */
    bool no_pwait2; /* the kernel (or emulator) lacks epoll_pwait2 */
};

struct zk__epoll {
    zk__io_worker base;
    zk__epoll_shared *sh;
};

/* ---------------------------------------------------------------------- */
/* Waiter lists                                                           */
/* ---------------------------------------------------------------------- */

static int zk__op_dir(const zk__io_op *op) {
    switch ((zk__op_code)op->code) {
    case ZK__OP_WRITE:
    case ZK__OP_WRITEV:
    case ZK__OP_SEND:
    case ZK__OP_SENDMSG:
    case ZK__OP_CONNECT:
        return 1;
    default:
        return 0;
    }
}

static void zk__waiter_push(zk__epoll_reg *r, zk__io_op *op) {
    int d = zk__op_dir(op);
    op->prev = NULL;
    op->next = r->dir[d].waiters;
    if (op->next)
        op->next->prev = op;
    r->dir[d].waiters = op;
    op->queued = true;
}

static void zk__waiter_remove(zk__epoll_reg *r, zk__io_op *op) {
    int d = zk__op_dir(op);
    if (op->prev)
        op->prev->next = op->next;
    else
        r->dir[d].waiters = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->next = op->prev = NULL;
    op->queued = false;
}

/* Makes `op` wait for its direction, to be woken through `w` (a waiting
 * operation polled again may come with another waker). With the lock. */
static void zk__waiter_set(zk__epoll_reg *r, zk__io_op *op, const zk_waker *w) {
    int d = zk__op_dir(op);
    zk__io_op *first = atomic_load_explicit(&r->first[d], memory_order_relaxed);
    zk_waker *slot = first == op || (first == NULL && !op->queued)
                         ? &r->dir[d].first_waker
                         : &op->waker;
    if (!zk_waker_will_wake(slot, w)) {
        zk_waker_drop(slot);
        *slot = zk_waker_clone(w);
    }
    if (first == NULL && !op->queued)
        atomic_store_explicit(&r->first[d], op, memory_order_relaxed);
    else if (first != op && !op->queued)
        zk__waiter_push(r, op);
}

/* True when `op` may be waiting (a check without the lock). */
static bool zk__waiter_maybe(zk__epoll_reg *r, const zk__io_op *op) {
    return op->queued || atomic_load_explicit(&r->first[zk__op_dir(op)],
                                              memory_order_relaxed) == op;
}

/* `op` stops waiting, without a wake. With the lock. */
static void zk__waiter_cancel(zk__epoll_reg *r, zk__io_op *op) {
    int d = zk__op_dir(op);
    if (atomic_load_explicit(&r->first[d], memory_order_relaxed) == op) {
        atomic_store_explicit(&r->first[d], NULL, memory_order_relaxed);
        zk_waker_drop(&r->dir[d].first_waker);
    } else if (op->queued) {
        zk__waiter_remove(r, op);
    }
    zk_waker_drop(&op->waker);
}

/* Records a readiness event: `bits` (ZK__RD_BIT, ZK__RD_CLOSED) are set.
 * Called with the lock (so events are counted in the order waiters see
 * them). */
static void zk__ready_add(zk__epoll_reg *r, uint64_t bits) {
    uint64_t old = atomic_load_explicit(&r->state, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &r->state, &old, (old | bits) + ZK__RD_EVENT, memory_order_release,
        memory_order_relaxed)) {
    }
}

/* Wakes every waiter of direction `d`. Called with the lock. */
static void zk__waiters_wake_locked(zk__epoll_reg *r, int d) {
    if (atomic_load_explicit(&r->first[d], memory_order_relaxed) != NULL) {
        /* The woken operation's first poll reads its handle: fetched now,
         * it is in the cache by the time that task runs (handles are few
         * to a page, so the prefetch costs no page walk). */
        __builtin_prefetch(r->h, 0, 3);
        atomic_store_explicit(&r->first[d], NULL, memory_order_relaxed);
        zk_waker_wake(&r->dir[d].first_waker);
    }
    zk__io_op *op;
    while ((op = r->dir[d].waiters) != NULL) {
        zk__waiter_remove(r, op);
        zk_waker_wake(&op->waker);
    }
}

/* ---------------------------------------------------------------------- */
/* Operations on the blocking pool                                        */
/* ---------------------------------------------------------------------- */

/* On a pool thread. The result is kept in the operation, and `done` says
 * the call ran: an abort that came after it started cannot stop it, and
 * the join then reports the task cancelled, but what the call made (an
 * opened descriptor) must still reach the caller, or be closed. A call
 * on a file closed while it was queued does not start (fs.h): -EBADF, as
 * a request the close cancelled gets on io_uring. */
static int64_t zk__epoll_pool_run(void *arg) {
    zk__io_op *op = arg;
    bool closed = op->h != NULL &&
                  atomic_load_explicit(&op->h->closed, memory_order_acquire);
    int64_t res = closed ? -EBADF : zk__op_syscall(op);
    op->res = (int32_t)res;
    atomic_store_explicit(&op->done, 1, memory_order_release);
    return res;
}

/* The operation's result once its pool task has ended: the call's, or
 * -ECANCELED if the task was aborted before the call started. */
static int32_t zk__epoll_pool_result(const zk__io_op *op) {
    return atomic_load_explicit(&op->done, memory_order_acquire) ? op->res
                                                                 : -ECANCELED;
}

static zk_poll zk__epoll_pool_poll(zk__io_op *op, zk__io_worker *w,
                                   zk_context *cx) {
    if (op->state == ZK__OPS_INIT) {
        zk_task *t;
        int rc = zk_spawn_blocking(w->rt, zk__epoll_pool_run, op, &t);
        if (rc != 0) {
            zk__op_complete(op, rc);
            return ZK_READY;
        }
        op->blocking = (zk__task *)t;
        op->iow = w;
        op->state = ZK__OPS_WAITING;
    }
    if (!zk__task_join_poll(op->blocking, zk_context_waker(cx)))
        return ZK_PENDING;
    int64_t res;
    bool cancelled;
    zk__task_join_take(op->blocking, &res, &cancelled);
    op->blocking = NULL;
    zk__op_complete(op, zk__epoll_pool_result(op));
    return ZK_READY;
}

/* Dropped while on the pool: a call that has not started never will;
 * one that has is waited for, blocking this thread until it returns (its
 * arguments and buffer are the caller's). What it made is then closed. */
static void zk__epoll_pool_drop(zk__io_op *op) {
    zk__task *t = op->blocking;
    zk_task_abort((zk_task *)t);
    int64_t res;
    bool cancelled;
    zk__task_join_blocking(t, &res, &cancelled);
    op->blocking = NULL;
    op->res = zk__epoll_pool_result(op);
    op->state = ZK__OPS_DONE; /* a descriptor it made is closed */
}

/* ---------------------------------------------------------------------- */
/* Operations on sockets and pipes                                        */
/* ---------------------------------------------------------------------- */

static zk_poll zk__epoll_op_poll(zk__io_op *op, zk__io_worker *w,
                                 zk_context *cx) {
    if (zk__op_needs_pool(op))
        return zk__epoll_pool_poll(op, w, cx);
    zk__io_handle *h = op->h;
    zk__epoll_reg *r = h->reg;
    int d = zk__op_dir(op);
    uint64_t bit = ZK__RD_BIT(d);
    op->iow = w;
    for (;;) {
        uint64_t st = atomic_load_explicit(&r->state, memory_order_acquire);
        int64_t res = atomic_load_explicit(&h->closed, memory_order_acquire)
                          ? -EBADF
                      : st & bit ? zk__op_syscall(op)
                                 : -EAGAIN; /* known not ready */
        bool drained = zk__op_drained(op, res) && !(st & ZK__RD_CLOSED(d));
        if ((res == -EAGAIN || drained) && (st & bit)) {
            /* Not ready any more, unless an event came meanwhile. */
            if (atomic_compare_exchange_strong_explicit(
                    &r->state, &st, st & ~bit, memory_order_acq_rel,
                    memory_order_acquire))
                st &= ~bit;
            else if (res == -EAGAIN)
                continue; /* readiness came meanwhile: retry */
        }
        if (res != -EAGAIN || op->connect_full) {
            if (zk__waiter_maybe(r, op)) {
                zk__lock_acquire(&r->lock);
                zk__waiter_cancel(r, op);
                zk__lock_release(&r->lock);
            }
            zk__op_complete(op, res);
            return ZK_READY;
        }
        zk__lock_acquire(&r->lock);
        if (atomic_load_explicit(&r->state, memory_order_relaxed) != st ||
            atomic_load_explicit(&h->closed, memory_order_acquire)) {
            zk__lock_release(&r->lock);
            continue; /* readiness (or a close) came meanwhile: retry */
        }
        zk__waiter_set(r, op, zk_context_waker(cx));
        zk__lock_release(&r->lock);
        op->state = ZK__OPS_WAITING;
        return ZK_PENDING;
    }
}

static void zk__epoll_op_drop(zk__io_op *op) {
    if (op->blocking) {
        zk__epoll_pool_drop(op);
        return;
    }
    zk__epoll_reg *r = op->h->reg;
    zk__lock_acquire(&r->lock);
    zk__waiter_cancel(r, op);
    zk__lock_release(&r->lock);
    op->state = ZK__OPS_INIT; /* nothing to deliver */
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                */
/* ---------------------------------------------------------------------- */

static int zk__epoll_handle_open(zk__io_handle *h, zk__io_worker *w) {
    if (h->kind == ZK__HANDLE_FILE)
        return 0; /* files go to the pool */
    zk__epoll_shared *sh = ((zk__epoll *)w)->sh;
    zk__epoll_reg *r = zk__zalloc_line(sizeof *r);
    if (!r)
        return -ENOMEM;
    zk__lock_init(&r->lock);
    r->sh = sh;
    r->h = h;
    /* Ready both ways until a call says otherwise: the first one tries.
     * Stored last with release: the worker that gets the events may be
     * another thread, and reads `state` with acquire before anything else
     * of the registration (the kernel orders epoll_ctl before the event,
     * but ThreadSanitizer does not see that). */
    atomic_store_explicit(&r->state, ZK__RD_BITS, memory_order_release);
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = r,
    };
    if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, h->fd, &ev) != 0) {
        int rc = -errno;
        free(r);
        return rc;
    }
    h->reg = r;
    return 0;
}

static void zk__epoll_handle_close(zk__io_handle *h) {
    zk__epoll_reg *r = h->reg;
    if (r == NULL)
        return;
    zk__lock_acquire(&r->lock);
    zk__ready_add(r, ZK__RD_BITS); /* every operation retries, sees closed */
    zk__waiters_wake_locked(r, 0);
    zk__waiters_wake_locked(r, 1);
    zk__lock_release(&r->lock);
}

static void zk__epoll_handle_free(zk__io_handle *h) {
    zk__epoll_reg *r = h->reg;
    if (r == NULL) {
        close(h->fd);
        free(h);
        return;
    }
    zk__epoll_shared *sh = r->sh;
    epoll_ctl(sh->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    close(h->fd);
    pthread_mutex_lock(&sh->release_lock);
    r->release_next = sh->release;
    sh->release = r;
    pthread_mutex_unlock(&sh->release_lock);
}

/* Frees the registrations handed over; by the reaper (or the last worker
 * destroyed), before it fetches events. */
static void zk__epoll_release(zk__epoll_shared *sh) {
    pthread_mutex_lock(&sh->release_lock);
    zk__epoll_reg *r = sh->release;
    sh->release = NULL;
    pthread_mutex_unlock(&sh->release_lock);
    while (r) {
        zk__epoll_reg *next = r->release_next;
        free(r->h);
        free(r);
        r = next;
    }
}

/* ---------------------------------------------------------------------- */
/* The shared epoll instance                                              */
/* ---------------------------------------------------------------------- */

static void zk__epoll_flush(zk__io_worker *w, bool batch_only) {
    (void)w;
    (void)batch_only;
}

static int zk__epoll_wait(zk__epoll_shared *sh, struct epoll_event *evs,
                          int max, int64_t timeout_ns) {
    if (timeout_ns > 0 && !sh->no_pwait2) {
        struct timespec ts = zk__timespec_of_ns(timeout_ns);
        int n = epoll_pwait2(sh->epfd, evs, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        sh->no_pwait2 = true;
    }
    int ms = timeout_ns < 0    ? -1
             : timeout_ns == 0 ? 0
                               : (int)((timeout_ns + 999999) / 1000000);
    return epoll_wait(sh->epfd, evs, max, ms);
}

/* Records the events and wakes their operations' tasks. */
static void zk__epoll_handle_events(zk__epoll_shared *sh,
                                    struct epoll_event *evs, int n) {
    /* Each event's registration was last touched a round trip ago, and
     * its lock is taken at once: one miss after the other, each locked
     * instruction waiting for the last, and so is the task the event
     * wakes. Fetching them a few events ahead lets those misses overlap. */
    for (int i = 0; i < n && i < ZK__WAKE_AHEAD; i++)
        __builtin_prefetch(evs[i].data.ptr, 1, 3);
    for (int i = 0; i < n; i++) {
        if (i + ZK__WAKE_AHEAD < n)
            __builtin_prefetch(evs[i + ZK__WAKE_AHEAD].data.ptr, 1, 3);
        if (i + ZK__WAKE_AHEAD / 2 < n) {
            zk__epoll_reg *next = evs[i + ZK__WAKE_AHEAD / 2].data.ptr;
            if (next != NULL)
                zk__prefetch_wakee(&next->dir[0].first_waker);
        }
        zk__epoll_reg *r = evs[i].data.ptr;
        uint32_t e = evs[i].events;
        if (r == NULL) {
            uint64_t v;
            while (read(sh->efd, &v, sizeof v) < 0 && errno == EINTR) {
            }
            continue;
        }
        bool in = e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI);
        bool out = e & (EPOLLOUT | EPOLLHUP | EPOLLERR);
        uint64_t bits = (in ? ZK__RD_BIT(0) : 0) | (out ? ZK__RD_BIT(1) : 0);
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            bits |= ZK__RD_CLOSED(0);
        if (e & (EPOLLHUP | EPOLLERR))
            bits |= ZK__RD_CLOSED(1);
        /* Pairs with the release store that published the registration
         * (zk__epoll_handle_open), maybe on another thread. */
        (void)atomic_load_explicit(&r->state, memory_order_acquire);
        zk__lock_acquire(&r->lock);
        zk__ready_add(r, bits);
        if (in)
            zk__waiters_wake_locked(r, 0);
        if (out)
            zk__waiters_wake_locked(r, 1);
        zk__lock_release(&r->lock);
    }
}

static void zk__epoll_poll(zk__io_worker *w, int64_t timeout_ns, size_t max) {
    zk__epoll_shared *sh = ((zk__epoll *)w)->sh;
    int cap = max < ZK__EPOLL_EVENTS ? (int)max : ZK__EPOLL_EVENTS;
    if (cap == 0 && timeout_ns == 0)
        return;
    bool waits = timeout_ns != 0 && w->park_state != NULL;
    size_t mine = w->index | (waits ? ZK__REAPER_WAITS : 0);
    size_t cur = ZK__NO_REAPER;
    for (unsigned spins = 0;
         !atomic_compare_exchange_strong(&sh->reaper, &cur, mine); spins++) {
        if (!waits)
            return; /* another worker reaps now */
        if (cur & ZK__REAPER_WAITS) {
            /* It waits for events (and wakes a sleeper when it has more
             * tasks than it runs next): this worker sleeps on its futex. */
            zk__futex_wait(w->park_state, ZK__PARK_PARKED, timeout_ns);
            return;
        }
        /* A running worker's reap without a wait: when it ends, nobody
         * would wait for events. Short, unless its thread is preempted. */
        if (atomic_load(w->park_state) != ZK__PARK_PARKED)
            return; /* unparked meanwhile */
        if (spins % 64 == 63)
            sched_yield();
        else
            zk__cpu_relax();
        cur = ZK__NO_REAPER;
    }
    /* An unpark that came before this worker became the reaper found it
     * not reaping and woke its futex, which nobody waits on: the state says
     * so (both sides sequentially consistent, see zk__epoll_unpark). */
    if (waits && atomic_load(w->park_state) != ZK__PARK_PARKED)
        timeout_ns = 0;
    struct epoll_event evs[ZK__EPOLL_EVENTS];
    /* Events fetched from here on cannot name a released registration. */
    zk__epoll_release(sh);
    int n = zk__epoll_wait(sh, evs, cap > 0 ? cap : 1, timeout_ns);
    zk__epoll_handle_events(sh, evs, n);
    atomic_store(&sh->reaper, ZK__NO_REAPER);
}

static void zk__epoll_unpark(zk__io_worker *w) {
    zk__epoll_shared *sh = ((zk__epoll *)w)->sh;
    /* The parker set NOTIFIED first (sequentially consistent): a worker
     * becoming the reaper after this load sees it and does not wait. */
    if (atomic_load(&sh->reaper) == (w->index | ZK__REAPER_WAITS))
        zk__eventfd_signal(sh->efd);
    else if (w->park_state != NULL)
        zk__futex_wake(w->park_state);
}

static void zk__epoll_shared_free(zk__epoll_shared *sh) {
    zk__epoll_release(sh);
    if (sh->epfd >= 0)
        close(sh->epfd);
    if (sh->efd >= 0)
        close(sh->efd);
    pthread_mutex_destroy(&sh->release_lock);
    free(sh);
}

static void zk__epoll_destroy(zk__io_worker *w) {
    zk__epoll_shared *sh = ((zk__epoll *)w)->sh;
    pthread_mutex_lock(&sh->release_lock);
    bool last = --sh->users == 0;
    pthread_mutex_unlock(&sh->release_lock);
    if (last)
        zk__epoll_shared_free(sh);
    free(w);
}

static int zk__epoll_shared_new(zk__epoll_shared **out) {
    zk__epoll_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return -ENOMEM;
    pthread_mutex_init(&sh->release_lock, NULL);
    atomic_init(&sh->reaper, ZK__NO_REAPER);
    sh->epfd = epoll_create1(EPOLL_CLOEXEC);
    sh->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (sh->epfd < 0 || sh->efd < 0 ||
        epoll_ctl(sh->epfd, EPOLL_CTL_ADD, sh->efd, &ev) != 0) {
        int rc = -errno;
        zk__epoll_shared_free(sh);
        return rc;
    }
    *out = sh;
    return 0;
}

/* Worker 0 makes the instance; the others, created after it, share it. */
static int zk__epoll_create(zk_runtime *rt, size_t index, zk__io_worker **out) {
    zk__epoll *ep = calloc(1, sizeof *ep);
    if (!ep)
        return -ENOMEM;
    ep->base.ops = &zk__epoll_ops;
    ep->base.rt = rt;
    ep->base.index = index;
    if (index == 0) {
        int rc = zk__epoll_shared_new(&ep->sh);
        if (rc != 0) {
            free(ep);
            return rc;
        }
    } else {
        ep->sh = ((zk__epoll *)rt->io.workers[0])->sh;
    }
    pthread_mutex_lock(&ep->sh->release_lock);
    ep->sh->users++;
    pthread_mutex_unlock(&ep->sh->release_lock);
    *out = &ep->base;
    return 0;
}

const zk__io_backend_ops zk__epoll_ops = {
    .kind = ZK_IO_EPOLL,
    .shared_instance = true,
    .create = zk__epoll_create,
    .destroy = zk__epoll_destroy,
    .flush = zk__epoll_flush,
    .poll = zk__epoll_poll,
    .unpark = zk__epoll_unpark,
    .op_poll = zk__epoll_op_poll,
    .op_drop = zk__epoll_op_drop,
    .handle_open = zk__epoll_handle_open,
    .handle_close = zk__epoll_handle_close,
    .handle_free = zk__epoll_handle_free,
};
