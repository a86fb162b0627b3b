/*
 * io.h - the I/O driver's internal contract.
 *
 * Each worker of a runtime has one backend instance, created with the
 * runtime: its own io_uring ring, or its view of the epoll instance that
 * the workers share (one reaps it at a time). The schedulers call:
 * - zk__io_after_run() after each task run: io_uring submits what the
 *   tasks prepared once the worker has no more runnable work in hand, or
 *   once a batch is large (one system call for many operations);
 * - zk__io_poll(w, 0, room) every few ticks: completions/events are reaped
 *   and their tasks woken, without sleeping, no more than the worker's
 *   queue has room for (the rest wait in the kernel, in order);
 * - the worker's parker, which sleeps inside the backend (zk__parker with
 *   `io` set): a park returns on an unpark (eventfd, or the parker's
 *   futex for an epoll worker that sleeps while another reaps), on the
 *   next timer deadline or when any completion or event arrives.
 *
 * Operations (op.h) carry their whole state in the caller's future. Handles
 * (zk__io_handle) wrap a file descriptor shared by a user and the
 * operations in flight on it: reference counted, the descriptor is closed
 * when the last reference goes, never while the kernel may still use it.
 */
#ifndef ZK__IO_H
#define ZK__IO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "zokio/future.h"
#include "zokio/io.h"

/* How many events (epoll) or completions (io_uring) ahead of the one it
 * handles a backend fetches what their wakes will touch: the registration
 * or receive queue that far ahead, the task to wake half as far. */
#define ZK__WAKE_AHEAD 8

/* Fetches the task (or whatever) that waker `w` would wake, ahead of the
 * wake, where another thread may change the waker meanwhile (under a lock
 * the caller does not hold): the pointer is only a hint, read atomically so
 * that it is never torn, and a stale one fetches a line for nothing. Left
 * out under ThreadSanitizer, which would report the unlocked read against
 * the locked writes. */
static inline void zk__prefetch_wakee(const zk_waker *w) {
#if defined(ZK__TSAN)
    (void)w;
#else
    __builtin_prefetch(__atomic_load_n(&w->data, __ATOMIC_RELAXED), 1, 3);
#endif
}

struct zk_runtime;
typedef struct zk__io_op zk__io_op;
typedef struct zk__io_handle zk__io_handle;
typedef struct zk__io_worker zk__io_worker;

/*
 * With one instance per worker (io_uring), how many workers share one
 * home, the worker whose ring receives for a handle: 2 workers, or 4,
 * have one home. Homes spread over every worker made every worker wake
 * for its own connections' completions, each reaping a few, so on a
 * machine whose cores the workers share with other work they took turns
 * on a core and slept and woke one after another; one home reaps them
 * all, keeps the batches it can run soon and leaves the longer ones to
 * helpers (multi_thread.c, zk__mt_notify_if_stealable), as a shared
 * epoll instance lets its workers do (bench/README.md, "One home ring").
 * Its costs: one thread runs the kernel's side of every receive for its
 * handles, about a fifth of an echo's CPU (bench/echo_where.sh), which
 * one home per 4 workers bounds (with 2 workers the home does it all);
 * and a task that runs long on a home without yielding holds back the
 * receives of all its handles, which no other worker can reap (the ring
 * is the home's alone), where with every worker a home it held back a
 * share of them. zk_builder_set_io_homes() chooses otherwise.
 */
#define ZK__IO_WORKERS_PER_HOME 4

typedef struct zk__io_backend_ops {
    zk_io_backend kind;
    /* The workers share one instance (epoll): whichever worker reaps next
     * takes any connection's events. With one instance per worker
     * (io_uring), a handle's completions reach its home worker only. */
    bool shared_instance;
    /* Creates worker `index`'s instance. */
    int (*create)(struct zk_runtime *rt, size_t index, zk__io_worker **out);
    /* Frees it; every operation has finished. */
    void (*destroy)(zk__io_worker *w);
    /* Optional: the owner's last act on it, as a multi-thread runtime's
     * worker thread exits (before destroy, on another thread). */
    void (*retire)(zk__io_worker *w);
    /* Hands prepared operations to the kernel: all of them, or with
     * `batch_only` only when enough are pending to make a batch. Owner
     * thread. (io_uring also arms there the multishot receives other
     * workers asked for, which may wake tasks into the owner's queue.) */
    void (*flush)(zk__io_worker *w, bool batch_only);
    /* Reaps completions or events and wakes their tasks, first waiting up
     * to `timeout_ns` for one (0: no wait, < 0: no limit) or for unpark().
     * It handles at most `max` of them (SIZE_MAX: as many as it fetches at
     * once); the others stay in the kernel's queue, in order, for the next
     * poll. Owner thread. epoll's workers share one instance, which one
     * worker at a time reaps. While another reaps, poll() reaps nothing:
     * with no wait asked it returns at once; otherwise it sleeps on
     * `park_state` (the parker's PARKED) until unpark() or the timeout
     * when the other may wait in epoll_wait, and waits for the other's
     * reap to end and takes over when it may not. */
    void (*poll)(zk__io_worker *w, int64_t timeout_ns, size_t max);
    /* Makes the owner's current or next poll() return. Any thread. (On
     * epoll's futex path an unpark is remembered by the parker's state,
     * not by the backend: the parker is its only caller.) */
    void (*unpark)(zk__io_worker *w);
    /* The operation future's poll and drop. */
    zk_poll (*op_poll)(zk__io_op *op, zk__io_worker *w, zk_context *cx);
    void (*op_drop)(zk__io_op *op);
    /* A new handle (epoll registers it); its first user closes it, which
     * wakes or cancels the operations in flight; the last reference frees
     * it. */
    int (*handle_open)(zk__io_handle *h, zk__io_worker *w);
    void (*handle_close)(zk__io_handle *h);
    void (*handle_free)(zk__io_handle *h);
} zk__io_backend_ops;

/* The part of every backend instance the rest of the runtime sees. */
struct zk__io_worker {
    const zk__io_backend_ops *ops;
    struct zk_runtime *rt;
    size_t index;
    /* The state of the parker that sleeps in this instance (park.h, set by
     * zk__parker_attach_io): epoll's poll() sleeps on it with a futex while
     * another worker holds the instance they share to wait in it. */
    _Atomic uint32_t *park_state;
};

/* A runtime's driver: one instance (or view of the shared epoll instance)
 * per worker. */
typedef struct zk__io {
    const zk__io_backend_ops *ops;
    size_t n;
    zk__io_worker **workers;
    /* Handles go in turn to the first `homes` workers (zk__handle_new):
     * all of them with a shared instance; with one per worker, as many as
     * the builder asked, else one worker in ZK__IO_WORKERS_PER_HOME,
     * rounded up (zk__io_init). */
    _Atomic size_t next;
    size_t homes;
    /* io_uring: stream sockets read ahead (uring_rx.c). */
    bool read_ahead;
} zk__io;

extern const zk__io_backend_ops zk__uring_ops; /* absent without liburing */
extern const zk__io_backend_ops zk__epoll_ops;

/* Chooses the backend (`want`, then ZOKIO_IO_BACKEND, then what the
 * kernel allows) and creates `workers` instances. `read_ahead`: 1 on, 0
 * off, -1 as ZOKIO_IO_READ_AHEAD says (on unless "0"). `homes`: how many
 * workers are homes with one instance per worker (0: the default, see
 * ZK__IO_WORKERS_PER_HOME). -ENOSYS when io_uring was required and is
 * unavailable, -EINVAL for a bad `want`. */
int zk__io_init(zk__io *io, struct zk_runtime *rt, size_t workers,
                zk_io_backend want, int read_ahead, size_t homes);
void zk__io_destroy(zk__io *io);

/* The instance of the calling worker thread when it belongs to `rt`'s
 * driver, else NULL. */
zk__io_worker *zk__io_current(struct zk_runtime *rt);

/* `more_work`: the worker has more tasks in hand; their runs will prepare
 * more operations, so a small batch waits for them. */
static inline void zk__io_after_run(zk__io_worker *w, bool more_work) {
    w->ops->flush(w, more_work);
}

/* A multi-thread runtime's worker, exiting: see retire. */
static inline void zk__io_retire(zk__io_worker *w) {
    if (w->ops->retire)
        w->ops->retire(w);
}

/* Adds 1 to an eventfd (how unpark() reaches a worker in its backend). */
void zk__eventfd_signal(int efd);

static inline void zk__io_poll(zk__io_worker *w, int64_t timeout_ns,
                               size_t max) {
    w->ops->poll(w, timeout_ns, max);
}

#endif
