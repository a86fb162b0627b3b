/*
 * uring.c - the io_uring backend: one ring per worker.
 *
 * A task's poll prepares a submission queue entry whose user_data names a
 * slot (index + generation) that points back at the operation; the worker
 * submits everything its task prepared after the task's run (flush), and
 * reaps completions every few ticks or while parked in the ring.
 *
 * Cancellation from any thread. The ring's `lock` is held while the owner
 * submits and while it records completions, and by whoever drops an
 * operation or closes a handle. A dropped operation's slot forgets it
 * under the lock; if it had been submitted, a synchronous cancellation
 * (IORING_REGISTER_SYNC_CANCEL, Linux 6.0) returns only once the kernel is
 * done with it, so its buffer is never written after the drop. One that
 * was prepared but not yet submitted becomes a no-op at the next flush.
 * Because the owner submits under the lock, "submitted" read under the lock
 * means the kernel already knows the request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#if defined(ZK__HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif
#include "io/uring.h"
#include "runtime/runtime.h"

uint32_t zk__slot_alloc(zk__uring *u, bool locked) {
    if (u->free_head == ZK__SLOT_NONE) {
        uint32_t c = u->nslots / ZK__SLOT_CHUNK;
        if (c == ZK__SLOT_CHUNKS || locked)
            return ZK__SLOT_NONE;
        zk__uring_slot *chunk = calloc(ZK__SLOT_CHUNK, sizeof *chunk);
        if (!chunk)
            return ZK__SLOT_NONE;
        for (uint32_t i = 0; i < ZK__SLOT_CHUNK; i++)
            chunk[i].next =
                i + 1 < ZK__SLOT_CHUNK ? u->nslots + i + 1 : ZK__SLOT_NONE;
        pthread_mutex_lock(&u->lock); /* cancellers read chunks[] */
        u->chunks[c] = chunk;
        pthread_mutex_unlock(&u->lock);
        u->free_head = u->nslots;
        u->nslots += ZK__SLOT_CHUNK;
    }
    uint32_t idx = u->free_head;
    u->free_head = zk__slot(u, idx)->next;
    return idx;
}

void zk__slot_reserve(zk__uring *u) {
    uint32_t idx = zk__slot_alloc(u, false);
    if (idx != ZK__SLOT_NONE) {
        zk__slot(u, idx)->next = u->free_head;
        u->free_head = idx;
    }
}

zk__uring *zk__uring_current(const zk__io_handle *h) {
    return (zk__uring *)zk__io_current(h->rt);
}

/* ---------------------------------------------------------------------- */
/* Completions                                                            */
/* ---------------------------------------------------------------------- */

/* Queues the read of the eventfd that unpark() writes, when it is not
 * queued yet and there is room (flush makes room before a park). */
static void zk__uring_arm_wake(zk__uring *u) {
    if (u->wake_armed)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL)
        return;
    io_uring_prep_read(sqe, u->efd, &u->ebuf, sizeof u->ebuf, 0);
    io_uring_sqe_set_data64(sqe, ZK__UD_WAKE);
    u->wake_armed = true;
}

/* What the completion at `head` will touch, fetched ahead (see
 * reap_locked); with the lock. Stage 0 fetches its slot, 1 what the slot
 * points to (the receive queue or the operation), 2 the task to wake: each
 * reads only what the stage before fetched a few completions earlier. */
static inline void zk__uring_prefetch(zk__uring *u, unsigned head, int stage) {
    const struct io_uring_cqe *cqe =
        &u->ring.cq.cqes[head & *u->ring.cq.kring_mask];
    uint64_t ud = cqe->user_data;
    if (ud == ZK__UD_WAKE || ud == ZK__UD_IGNORE)
        return;
    zk__uring_slot *s = zk__slot(u, (uint32_t)ud);
    if (stage == 0)
        __builtin_prefetch(s, 0, 3);
    else if (stage == 1)
        __builtin_prefetch(s->rx ? (void *)s->rx : (void *)s->op, 1, 3);
    else if (s->rx != NULL)
        zk__prefetch_wakee(zk__rx_waker(s->rx));
    else if (s->op != NULL)
        zk__prefetch_wakee(&s->op->waker);
}

/* Records completions, at most `max` of them, and wakes their tasks;
 * returns how many. Called with the lock. */
static size_t zk__uring_reap_some_locked(zk__uring *u, size_t max) {
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    /* Each completion's slot, the receive queue or operation it points
     * to and the task it wakes were last touched a round trip ago, and
     * the queue's lock is taken at once: fetched a few completions ahead,
     * their misses overlap instead of coming one after the other. */
    unsigned ready = io_uring_cq_ready(&u->ring);
    if (ready > max)
        ready = (unsigned)max;
    unsigned first = *u->ring.cq.khead;
    for (unsigned k = 0; k < ready && k < ZK__WAKE_AHEAD; k++)
        zk__uring_prefetch(u, first + k, 0);
    for (unsigned k = 0; k < ready && k < ZK__WAKE_AHEAD / 2; k++)
        zk__uring_prefetch(u, first + k, 1);
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        if (n == ready)
            break;
        if (n + ZK__WAKE_AHEAD < ready)
            zk__uring_prefetch(u, head + ZK__WAKE_AHEAD, 0);
        if (n + ZK__WAKE_AHEAD / 2 < ready)
            zk__uring_prefetch(u, head + ZK__WAKE_AHEAD / 2, 1);
        if (n + ZK__WAKE_AHEAD / 4 < ready)
            zk__uring_prefetch(u, head + ZK__WAKE_AHEAD / 4, 2);
        n++;
        uint64_t ud = cqe->user_data;
        if (ud == ZK__UD_WAKE) {
            u->wake_armed = false;
            continue;
        }
        if (ud == ZK__UD_IGNORE)
            continue;
        uint32_t idx = (uint32_t)ud;
        zk__uring_slot *s = zk__slot(u, idx);
        if (s->rx != NULL && !zk__rx_reaped(u, s, cqe))
            continue; /* the multishot goes on: its slot stays */
        int32_t res = s->forced ? s->forced : cqe->res;
        zk__io_op *op = s->op;
        if (op) {
            op->res = res;
            zk_waker wk = op->waker;
            op->waker = (zk_waker){0};
            /* Last touch of the operation: it may be completed and freed
             * by its task as soon as `done` is seen. */
            atomic_store_explicit(&op->done, 1, memory_order_release);
            zk_waker_wake(&wk);
        } else if (res >= 0 && s->makes_fd) {
            /* Dropped, yet the kernel made a descriptor: close it. */
            close(res);
        }
        if (s->h)
            zk__handle_unref(s->h);
        s->op = NULL;
        s->rx = NULL;
        s->h = NULL;
        s->forced = 0;
        s->gen++;
        s->next = u->free_head;
        u->free_head = idx;
    }
    io_uring_cq_advance(&u->ring, n);
    return n;
}

/* Records every completion in the queue. Called with the lock. */
static void zk__uring_reap_locked(zk__uring *u) {
    zk__uring_reap_some_locked(u, SIZE_MAX);
}

/* Reaps what the kernel has for this ring, in up to `rounds` passes and
 * at most `max` completions. It may hold completions back: work it runs
 * only when asked (cooperative task running) and, when the completion
 * queue was full, an overflow list that only a kernel entry moves into the
 * queue, a queue's worth at a time. */
static void zk__uring_reap(zk__uring *u, uint32_t rounds, size_t max) {
    for (uint32_t i = 0; i < rounds && max > 0; i++) {
        if (io_uring_cq_ready(&u->ring) == 0 &&
            (IO_URING_READ_ONCE(*u->ring.sq.kflags) &
             (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
            io_uring_get_events(&u->ring);
        if (io_uring_cq_ready(&u->ring) == 0)
            return;
        pthread_mutex_lock(&u->lock);
        max -= zk__uring_reap_some_locked(u, max);
        pthread_mutex_unlock(&u->lock);
    }
}

/* ---------------------------------------------------------------------- */
/* Submission                                                             */
/* ---------------------------------------------------------------------- */

/* Turns pending entries of dropped operations, or of closed handles, into
 * no-ops. Called with the lock. */
static void zk__uring_scrub_locked(zk__uring *u) {
    struct io_uring_sq *sq = &u->ring.sq;
    for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++) {
        struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
        uint64_t ud = sqe->user_data;
        if (ud == ZK__UD_WAKE || ud == ZK__UD_IGNORE)
            continue;
        zk__uring_slot *s = zk__slot(u, (uint32_t)ud);
        zk__io_handle *h = s->op ? s->op->h : s->h;
        bool closed = h && atomic_load(&h->closed);
        bool dropped = s->op == NULL && s->rx == NULL;
        if (dropped || closed) {
            s->forced = s->op ? -EBADF : -ECANCELED;
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, ud);
        }
    }
}

static void zk__uring_submit_locked(zk__uring *u) {
    if (atomic_exchange_explicit(&u->dirty, false, memory_order_acquire))
        zk__uring_scrub_locked(u);
    while (io_uring_sq_ready(&u->ring) > 0) {
        int r = io_uring_submit(&u->ring);
        if (r >= 0 || r == -EINTR)
            continue;
        if (r == -EAGAIN || r == -EBUSY) {
            /* The completion queue is backed up: make room. */
            zk__uring_reap_locked(u);
            continue;
        }
        /* What is left says the ring itself is broken, not one request
         * (a request's own errors come as its completion): EBADF, EFAULT,
         * EINVAL, ENXIO (torn down) or EBADR (the kernel dropped
         * completions, so tasks would wait for ever). */
        fprintf(stderr, "zokio: io_uring_submit: %s\n", strerror(-r));
        ZK__BUG("io_uring_submit failed");
    }
    u->submitted = u->prepared;
}

/* Entries a worker with more work in hand accumulates before it submits. */
#define ZK__URING_BATCH 32

/* The backend's flush; true when it answered asks (uring_rx.c), which
 * may have woken tasks into this worker's queue. */
static bool zk__uring_flush_ring(zk__uring *u, bool batch_only) {
    bool answered =
        atomic_load_explicit(&u->asks, memory_order_relaxed) != NULL &&
        zk__rx_answer_asks(u, true);
    zk__uring_arm_wake(u);
    unsigned ready = io_uring_sq_ready(&u->ring);
    if (ready == 0 || (batch_only && ready < ZK__URING_BATCH))
        return answered;
    pthread_mutex_lock(&u->lock);
    zk__uring_submit_locked(u);
    pthread_mutex_unlock(&u->lock);
    return answered;
}

static void zk__uring_flush(zk__io_worker *w, bool batch_only) {
    zk__uring_flush_ring((zk__uring *)w, batch_only);
}

static struct io_uring_sqe *zk__uring_sqe(zk__uring *u) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL) {
        zk__uring_flush(&u->base, false);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static void zk__uring_prep(struct io_uring_sqe *sqe, zk__io_op *op) {
    int fd = op->fd;
    if (op->awaits_ready) {
        io_uring_prep_poll_add(sqe, fd, zk__op_writes(op) ? POLLOUT : POLLIN);
        return;
    }
    switch ((zk__op_code)op->code) {
    case ZK__OP_READ: /* on files: the rest waits by readiness */
        io_uring_prep_read(sqe, fd, op->a.rw.buf, (unsigned)op->a.rw.len,
                           (uint64_t)op->a.rw.off);
        break;
    case ZK__OP_WRITE:
        io_uring_prep_write(sqe, fd, op->a.rw.buf, (unsigned)op->a.rw.len,
                            (uint64_t)op->a.rw.off);
        break;
    case ZK__OP_READV:
        io_uring_prep_readv(sqe, fd, op->a.v.iov, (unsigned)op->a.v.cnt,
                            (uint64_t)op->a.v.off);
        break;
    case ZK__OP_WRITEV:
        io_uring_prep_writev(sqe, fd, op->a.v.iov, (unsigned)op->a.v.cnt,
                             (uint64_t)op->a.v.off);
        break;
    case ZK__OP_RECV:
    case ZK__OP_SEND:
    case ZK__OP_RECVMSG:
    case ZK__OP_SENDMSG:
    case ZK__OP_ACCEPT:
        ZK__BUG("a socket operation the ring waits for by readiness was "
                "prepared as itself");
    case ZK__OP_CONNECT:
        io_uring_prep_connect(sqe, fd, (struct sockaddr *)op->a.sa.addr,
                              op->a.sa.len);
        break;
    case ZK__OP_POLL_IN:
        io_uring_prep_poll_add(sqe, fd, POLLIN);
        break;
    case ZK__OP_FSYNC:
        io_uring_prep_fsync(sqe, fd,
                            op->a.sync.datasync ? IORING_FSYNC_DATASYNC : 0);
        break;
    case ZK__OP_OPENAT:
        io_uring_prep_openat(sqe, fd, op->a.p.path, op->a.p.flags | O_CLOEXEC,
                             (mode_t)op->a.p.mode);
        /* The kernel first tries an open that does not block, whose
         * "would block" it does not always retry (a FIFO's missing other
         * end is ENXIO, or no wait at all): forced to its workers, the
         * open is a blocking one, cancellable like any request (file.c). */
        if (op->may_block)
            io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
        break;
    case ZK__OP_STATX:
        io_uring_prep_statx(sqe, fd, op->a.p.path, op->a.p.flags,
                            STATX_BASIC_STATS, (struct statx *)op->a.p.statx);
        break;
    case ZK__OP_RENAMEAT:
        io_uring_prep_renameat(sqe, fd, op->a.p.path, fd, op->a.p.path2, 0);
        break;
    case ZK__OP_UNLINKAT:
        io_uring_prep_unlinkat(sqe, fd, op->a.p.path, op->a.p.flags);
        break;
    case ZK__OP_MKDIRAT:
        io_uring_prep_mkdirat(sqe, fd, op->a.p.path, (mode_t)op->a.p.mode);
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* Operations                                                             */
/* ---------------------------------------------------------------------- */

/* Socket and pipe operations that io_uring does not have the kernel
 * complete. The system call is made in the task (the descriptor is
 * non-blocking) and, when it would block, the ring waits for readiness (a
 * poll) and the call is made again, as on epoll:
 * - A request the kernel completes can be cancelled too late. A receive
 *   that took bytes, a datagram or a connection out of the socket, or a
 *   send that put bytes in, would be reported as cancelled: what it took
 *   is lost, what it sent is sent without the caller knowing. A cancelled
 *   poll loses nothing.
 * - A pipe write that waits in the ring is retried by the kernel in the
 *   submitting thread at any of its later system calls. When the reader
 *   has gone by then, that retry raises SIGPIPE there; a current-thread
 *   runtime's thread blocks SIGPIPE only while it drives the runtime
 *   (MSG_NOSIGNAL is for sockets only), so the signal could kill the
 *   process after zk_block_on returned. In the task, SIGPIPE is blocked.
 * A socket's buffer almost always has room, so a send is made at once in
 * any case: one call instead of a submission and a completion that
 * resumes the task a second time (its stack cold by then). Stream reads
 * on sockets are the multishot receive's (uring_rx.c), which queues what
 * it brings, so that a cancelled read loses nothing either; only those
 * that fall back come here. Connect stays a ring request: a cancelled
 * connect leaves only a socket the caller closes. */
static bool zk__uring_by_readiness(const zk__io_op *op) {
    if (op->h == NULL || op->h->kind == ZK__HANDLE_FILE)
        return false;
    switch ((zk__op_code)op->code) {
    case ZK__OP_READ:
    case ZK__OP_WRITE:
    case ZK__OP_READV:
    case ZK__OP_WRITEV:
    case ZK__OP_RECV:
    case ZK__OP_SEND:
    case ZK__OP_RECVMSG:
    case ZK__OP_SENDMSG:
    case ZK__OP_ACCEPT:
        return true;
    default:
        return false;
    }
}

static zk_poll zk__uring_op_poll(zk__io_op *op, zk__io_worker *w,
                                 zk_context *cx);

static zk_poll zk__uring_complete_now(zk__io_op *op, int64_t res) {
    zk__op_complete(op, res);
    return ZK_READY;
}

/* Hands the recorded result to the awaiting code or, when it was the
 * readiness an operation waited for, makes the call again. */
static zk_poll zk__uring_deliver(zk__io_op *op, zk__io_worker *w,
                                 zk_context *cx) {
    if (op->awaits_ready) {
        op->awaits_ready = false;
        if (op->res >= 0) { /* revents, an error or hang-up among them */
            op->state = ZK__OPS_INIT;
            /* As a first poll would: not on a handle closed since, and on
             * the ring of the worker the task runs on now (`w` is the one
             * that waited, which the task may have left: another thread's
             * ring is never prepared on). */
            if (atomic_load_explicit(&op->h->closed, memory_order_acquire))
                return zk__uring_complete_now(op, -EBADF);
            zk__io_worker *here = zk__io_current(w->rt);
            if (here == NULL) /* polled off the runtime's workers */
                return zk__uring_complete_now(op, -EPERM);
            return zk__uring_op_poll(op, here, cx);
        }
    }
    return zk__uring_complete_now(op, op->res);
}

static zk_poll zk__uring_op_poll(zk__io_op *op, zk__io_worker *w,
                                 zk_context *cx) {
    zk_poll p;
    bool was_waiting = op->state == ZK__OPS_WAITING;
    if (op->state != ZK__OPS_KERNEL && zk__rx_wants(op) &&
        zk__rx_poll(op, cx, &p))
        return p;
    if (op->state == ZK__OPS_INIT && zk__uring_by_readiness(op)) {
        int64_t res = zk__op_is_socket_send(op) ? zk__op_send_now(op)
                                                : zk__op_syscall(op);
        if (res != -EAGAIN)
            return zk__uring_complete_now(op, res);
        op->awaits_ready = true;
    }
    if (op->state == ZK__OPS_INIT) {
        /* A read that left the receive queue (whose ring may be another
         * worker's) runs here, on this worker. */
        if (was_waiting)
            w = zk__io_current(w->rt);
        zk__uring *u = (zk__uring *)w;
        struct io_uring_sqe *sqe = zk__uring_sqe(u);
        uint32_t idx = sqe ? zk__slot_alloc(u, false) : ZK__SLOT_NONE;
        if (idx == ZK__SLOT_NONE) {
            if (sqe) /* give the entry back as a no-op */
                io_uring_prep_nop(sqe),
                    io_uring_sqe_set_data64(sqe, ZK__UD_IGNORE);
            zk__op_complete(op, -ENOMEM);
            return ZK_READY;
        }
        zk__uring_slot *s = zk__slot(u, idx);
        s->op = op; /* the operation holds the handle until delivery */
        s->rx = NULL;
        s->h = NULL;
        s->seq = ++u->prepared;
        s->forced = 0;
        s->makes_fd = zk__op_makes_fd(op);
        zk__uring_prep(sqe, op);
        io_uring_sqe_set_data64(sqe, zk__slot_ud(u, idx));
        op->iow = w;
        op->slot = idx;
        op->waker = zk_waker_clone(zk_context_waker(cx));
        atomic_store_explicit(&op->done, 0, memory_order_relaxed);
        op->state = ZK__OPS_KERNEL;
        /* A close that raced with this preparation may have missed it:
         * the flush then turns it into a no-op (see handle_close). */
        if (op->h && atomic_load(&op->h->closed))
            atomic_store_explicit(&u->dirty, true, memory_order_release);
        return ZK_PENDING;
    }
    if (atomic_load_explicit(&op->done, memory_order_acquire))
        return zk__uring_deliver(op, w, cx);
    zk__uring *u = (zk__uring *)op->iow;
    pthread_mutex_lock(&u->lock);
    bool done = atomic_load_explicit(&op->done, memory_order_acquire);
    if (!done && !zk_waker_will_wake(&op->waker, zk_context_waker(cx))) {
        zk_waker_drop(&op->waker);
        op->waker = zk_waker_clone(zk_context_waker(cx));
    }
    pthread_mutex_unlock(&u->lock);
    return done ? zk__uring_deliver(op, w, cx) : ZK_PENDING;
}

static void zk__uring_sync_cancel(zk__uring *u, uint64_t ud, int fd) {
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    if (fd >= 0) {
        reg.fd = fd;
        reg.flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
    } else {
        reg.addr = ud;
    }
    int r;
    do
        r = io_uring_register_sync_cancel(&u->ring, &reg);
    while (r == -EINTR);
}

static void zk__uring_op_drop(zk__io_op *op) {
    if (op->state == ZK__OPS_WAITING) {
        zk__rx_drop(op); /* nothing of it is in the kernel */
        return;
    }
    zk__uring *u = (zk__uring *)op->iow;
    if (!atomic_load_explicit(&op->done, memory_order_acquire)) {
        pthread_mutex_lock(&u->lock);
        if (!atomic_load_explicit(&op->done, memory_order_acquire)) {
            zk__uring_slot *s = zk__slot(u, op->slot);
            s->op = NULL;
            /* Until its completion is reaped the kernel may still use the
             * descriptor: the slot keeps the handle from now on. */
            s->h = op->h;
            if (s->h)
                zk__handle_ref(s->h);
            bool submitted = s->seq <= u->submitted;
            uint64_t ud = zk__slot_ud(u, op->slot);
            zk_waker_drop(&op->waker);
            if (!submitted)
                atomic_store_explicit(&u->dirty, true, memory_order_release);
            pthread_mutex_unlock(&u->lock);
            /* The slot stays reserved until its completion is reaped, so
             * `ud` still names this request. */
            if (submitted)
                zk__uring_sync_cancel(u, ud, -1);
            op->state = ZK__OPS_INIT; /* nothing to deliver */
            return;
        }
        pthread_mutex_unlock(&u->lock);
    }
    /* Completed but never delivered. */
    op->state = ZK__OPS_DONE;
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                */
/* ---------------------------------------------------------------------- */

static int zk__uring_handle_open(zk__io_handle *h, zk__io_worker *w) {
    (void)h;
    (void)w;
    return 0;
}

/* Every ring may hold operations on the handle: those not yet submitted
 * become no-ops at their flush (`closed` is set), the others are cancelled
 * now and complete with -ECANCELED, reported as -EBADF. */
static void zk__uring_handle_close(zk__io_handle *h) {
    zk__io *io = &h->rt->io;
    for (size_t i = 0; i < io->n; i++) {
        zk__uring *u = (zk__uring *)io->workers[i];
        pthread_mutex_lock(&u->lock);
        atomic_store_explicit(&u->dirty, true, memory_order_release);
        pthread_mutex_unlock(&u->lock);
        zk__uring_sync_cancel(u, 0, h->fd);
    }
    zk__rx_close(h);
}

static void zk__uring_handle_free(zk__io_handle *h) {
    zk__rx_free(h);
    close(h->fd);
    free(h);
}

/* ---------------------------------------------------------------------- */
/* The worker's ring                                                      */
/* ---------------------------------------------------------------------- */

static void zk__uring_poll(zk__io_worker *w, int64_t timeout_ns, size_t max) {
    zk__uring *u = (zk__uring *)w;
    /* Answering asks may wake tasks into this worker's queue: then no
     * wait, the caller must get up and run them. */
    bool answered = zk__uring_flush_ring(u, false);
    if (timeout_ns != 0 && !answered && io_uring_cq_ready(&u->ring) == 0) {
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
                                       .tv_nsec = timeout_ns % 1000000000};
        io_uring_wait_cqe_timeout(&u->ring, &cqe, timeout_ns < 0 ? NULL : &ts);
    }
    zk__uring_reap(u, 4, max);
}

static void zk__uring_unpark(zk__io_worker *w) {
    zk__eventfd_signal(((zk__uring *)w)->efd);
}

/* Slots not on the free list: operations the kernel has not completed
 * (or that were prepared and not submitted). */
static uint32_t zk__uring_outstanding(zk__uring *u) {
    uint32_t free_n = 0;
    for (uint32_t i = u->free_head; i != ZK__SLOT_NONE;
         i = zk__slot(u, i)->next)
        free_n++;
    return u->nslots - free_n;
}

static void zk__uring_destroy(zk__io_worker *w) {
    zk__uring *u = (zk__uring *)w;
    /* Every task has finished, so every operation was dropped (and
     * cancelled): their completions release the handles they held, and
     * close what a dropped open made. All of them, including
     * those the kernel kept aside because the queue was full. */
    zk__rx_answer_asks(u, false);
    zk__uring_reap(u, UINT32_MAX, SIZE_MAX);
    /* Some may come later: a cancellation asked just before the ring's
     * worker exited is completed by the kernel on its own time (it runs an
     * exited thread's completion work from a work queue), and a multishot
     * of a stream left open goes on. Cancel what is left and wait for it,
     * a bounded time, so that the handles those slots hold are released
     * and their descriptors closed before the runtime is gone. */
    if (zk__uring_outstanding(u) > 0) {
        /* Entries still unsubmitted go first, those of operations dropped
         * since they were prepared as no-ops (as at every flush): a read
         * must not reach the kernel with a buffer that is gone. */
        pthread_mutex_lock(&u->lock);
        zk__uring_scrub_locked(u);
        zk__uring_submit_locked(u);
        pthread_mutex_unlock(&u->lock);
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (sqe != NULL) {
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data64(sqe, ZK__UD_IGNORE);
        }
        io_uring_submit(&u->ring);
    }
    for (int i = 0; i < 200 && zk__uring_outstanding(u) > 0; i++) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
        struct io_uring_cqe *cqe;
        io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
        zk__uring_reap(u, UINT32_MAX, SIZE_MAX);
    }
    io_uring_queue_exit(&u->ring);
    zk__pbufs_free(u);
    close(u->efd);
    for (uint32_t c = 0; c < u->nslots / ZK__SLOT_CHUNK; c++)
        free(u->chunks[c]);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

static int zk__uring_create(zk_runtime *rt, size_t index, zk__io_worker **out) {
    zk__uring *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->base.ops = &zk__uring_ops;
    u->base.rt = rt;
    u->base.index = index;
    u->free_head = ZK__SLOT_NONE;
    atomic_init(&u->dirty, false);
    atomic_init(&u->asks, NULL);
    zk__lock_init(&u->ask_lock);
    pthread_mutex_init(&u->lock, NULL);
    int rc = io_uring_queue_init(ZK__URING_ENTRIES, &u->ring,
                                 IORING_SETUP_COOP_TASKRUN |
                                     IORING_SETUP_TASKRUN_FLAG);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(ZK__URING_ENTRIES, &u->ring, 0);
    if (rc < 0) {
        pthread_mutex_destroy(&u->lock);
        free(u);
        return rc;
    }
    u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->efd < 0) {
        rc = -errno;
        io_uring_queue_exit(&u->ring);
        pthread_mutex_destroy(&u->lock);
        free(u);
        return rc;
    }
    *out = &u->base;
    return 0;
}

/* io_uring is usable when a ring can be made and the kernel has
 * synchronous cancellation (6.0); checked once per process. */
static _Atomic int zk__uring_probe = 0; /* 0 unknown, 1 yes, 2 no */

bool zk__uring_available(void) {
    int v = atomic_load(&zk__uring_probe);
#if defined(ZK__HAVE_VALGRIND)
    /* Valgrind neither sees the kernel write buffers through the rings nor
     * lets other threads run while one waits in io_uring_enter: under it,
     * io_uring counts as unavailable. */
    if (v == 0 && RUNNING_ON_VALGRIND)
        v = 2;
#endif
    if (v == 0) {
        struct io_uring ring;
        v = 2;
        if (io_uring_queue_init(2, &ring, 0) == 0) {
            struct io_uring_sync_cancel_reg reg;
            memset(&reg, 0, sizeof reg);
            reg.addr = 1;
            reg.timeout.tv_sec = -1;
            reg.timeout.tv_nsec = -1;
            /* Nothing to cancel: -ENOENT when the kernel supports it. */
            if (io_uring_register_sync_cancel(&ring, &reg) == -ENOENT &&
                (ring.features & IORING_FEAT_EXT_ARG))
                v = 1;
            io_uring_queue_exit(&ring);
        }
        atomic_store(&zk__uring_probe, v);
    }
    return v == 1;
}

const zk__io_backend_ops zk__uring_ops = {
    .kind = ZK_IO_IO_URING,
    .shared_instance = false,
    .create = zk__uring_create,
    .destroy = zk__uring_destroy,
    .flush = zk__uring_flush,
    .poll = zk__uring_poll,
    .unpark = zk__uring_unpark,
    .op_poll = zk__uring_op_poll,
    .op_drop = zk__uring_op_drop,
    .handle_open = zk__uring_handle_open,
    .handle_close = zk__uring_handle_close,
    .handle_free = zk__uring_handle_free,
};
