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
 *
 * On a multi-thread runtime the worker's socket ring accepts submissions
 * and cancellations from its owner only (uring.h): there a drop on
 * another thread, or a close, asks the owner to cancel (`cancels`), and
 * the request keeps its handle, so its descriptor, until its completion.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
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
static inline void zk__uring_prefetch(zk__uring *u, struct io_uring *ring,
                                      unsigned head, int stage) {
    const struct io_uring_cqe *cqe =
        &ring->cq.cqes[head & *ring->cq.kring_mask];
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

/* Records completions of `ring`, at most `max` of them, and wakes their
 * tasks; returns how many. Called with the lock. */
static size_t zk__uring_reap_some_locked(zk__uring *u, struct io_uring *ring,
                                         size_t max) {
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    /* Each completion's slot, the receive queue or operation it points
     * to and the task it wakes were last touched a round trip ago, and
     * the queue's lock is taken at once: fetched a few completions ahead,
     * their misses overlap instead of coming one after the other. */
    unsigned ready = io_uring_cq_ready(ring);
    if (ready > max)
        ready = (unsigned)max;
    unsigned first = *ring->cq.khead;
    for (unsigned k = 0; k < ready && k < ZK__WAKE_AHEAD; k++)
        zk__uring_prefetch(u, ring, first + k, 0);
    for (unsigned k = 0; k < ready && k < ZK__WAKE_AHEAD / 2; k++)
        zk__uring_prefetch(u, ring, first + k, 1);
    io_uring_for_each_cqe(ring, head, cqe) {
        if (n == ready)
            break;
        if (n + ZK__WAKE_AHEAD < ready)
            zk__uring_prefetch(u, ring, head + ZK__WAKE_AHEAD, 0);
        if (n + ZK__WAKE_AHEAD / 2 < ready)
            zk__uring_prefetch(u, ring, head + ZK__WAKE_AHEAD / 2, 1);
        if (n + ZK__WAKE_AHEAD / 4 < ready)
            zk__uring_prefetch(u, ring, head + ZK__WAKE_AHEAD / 4, 2);
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
        s->seq = 0; /* free (see zk__uring_sweep_locked) */
        s->gen++;
        s->next = u->free_head;
        u->free_head = idx;
    }
    io_uring_cq_advance(ring, n);
    return n;
}

/* Records every completion in the queues. Called with the lock. */
static void zk__uring_reap_locked(zk__uring *u) {
    zk__uring_reap_some_locked(u, &u->ring, SIZE_MAX);
    if (u->split)
        zk__uring_reap_some_locked(u, &u->fring, SIZE_MAX);
}

/* True on the thread of `u`'s worker. */
static bool zk__uring_is_owner(zk__uring *u) {
    return zk__io_current(u->base.rt) == &u->base;
}

/* Whether this thread may enter `ring` (submit, wait, run its task work):
 * a split socket ring takes its owner only. */
static bool zk__uring_may_enter(zk__uring *u, struct io_uring *ring) {
    return !u->split || ring != &u->ring || zk__uring_is_owner(u);
}

/* Reaps what the kernel has for this ring, in up to `rounds` passes and
 * at most `max` completions. It may hold completions back: work it runs
 * only when asked (cooperative task running) and, when the completion
 * queue was full, an overflow list that only a kernel entry moves into the
 * queue, a queue's worth at a time. */
static size_t zk__uring_reap_ring(zk__uring *u, struct io_uring *ring,
                                  uint32_t rounds, size_t max) {
    size_t n = 0;
    for (uint32_t i = 0; i < rounds && n < max; i++) {
        if (io_uring_cq_ready(ring) == 0 &&
            (IO_URING_READ_ONCE(*ring->sq.kflags) &
             (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) &&
            zk__uring_may_enter(u, ring))
            io_uring_get_events(ring);
        if (io_uring_cq_ready(ring) == 0)
            break;
        pthread_mutex_lock(&u->lock);
        n += zk__uring_reap_some_locked(u, ring, max - n);
        pthread_mutex_unlock(&u->lock);
    }
    return n;
}

static void zk__uring_reap(zk__uring *u, uint32_t rounds, size_t max) {
    size_t n = zk__uring_reap_ring(u, &u->ring, rounds, max);
    if (u->split && n < max)
        zk__uring_reap_ring(u, &u->fring, rounds, max - n);
}

/* ---------------------------------------------------------------------- */
/* Submission                                                             */
/* ---------------------------------------------------------------------- */

/* Turns pending entries of dropped operations, or of closed handles, into
 * no-ops. Called with the lock. */
static void zk__uring_scrub_ring_locked(zk__uring *u, struct io_uring *ring) {
    struct io_uring_sq *sq = &ring->sq;
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

static void zk__uring_scrub_locked(zk__uring *u) {
    zk__uring_scrub_ring_locked(u, &u->ring);
    if (u->split)
        zk__uring_scrub_ring_locked(u, &u->fring);
}

static void zk__uring_submit_ring_locked(zk__uring *u, struct io_uring *ring) {
    while (io_uring_sq_ready(ring) > 0) {
        int r = io_uring_submit(ring);
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
}

static void zk__uring_submit_locked(zk__uring *u) {
    if (atomic_exchange_explicit(&u->dirty, false, memory_order_acquire))
        zk__uring_scrub_locked(u);
    zk__uring_submit_ring_locked(u, &u->ring);
    if (u->split)
        zk__uring_submit_ring_locked(u, &u->fring);
    u->submitted = u->prepared;
}

static _Atomic bool zk__uring_asks_fail = false;

void zk__uring_fail_asks(bool on) {
    atomic_store(&zk__uring_asks_fail, on);
}

/* Split: asks the owner to cancel (zk__uring_ask); any thread, the owner
 * included. Made at the owner's next flush. */
static void zk__uring_ask_cancel(zk__uring *u, uint64_t ud, zk__io_handle *h) {
    if (h)
        zk__handle_ref(h);
    pthread_mutex_lock(&u->lock);
    bool fail =
        atomic_load_explicit(&zk__uring_asks_fail, memory_order_relaxed);
    if (u->ncancels == u->cancels_cap && !fail) {
        size_t cap = u->cancels_cap ? 2 * u->cancels_cap : 64;
        zk__uring_ask *a = realloc(u->cancels, cap * sizeof *a);
        if (a) {
            u->cancels = a;
            u->cancels_cap = cap;
        }
    }
    if (u->ncancels < u->cancels_cap && !fail) {
        u->cancels[u->ncancels++] = (zk__uring_ask){.ud = ud, .h = h};
        h = NULL;
    } else {
        u->cancel_sweep = true; /* it finds the request, or the closed h */
    }
    atomic_store_explicit(&u->cancel_pending, true, memory_order_release);
    pthread_mutex_unlock(&u->lock);
    if (h)
        zk__handle_unref(h);
    if (!zk__uring_is_owner(u))
        zk__eventfd_signal(u->efd);
}

/* A cancellation of `ring`'s request `ud` (0 with `fd`: all on `fd`) in
 * the next submission; the owner, with the lock. */
static void zk__uring_prep_cancel_locked(zk__uring *u, struct io_uring *ring,
                                         uint64_t ud, int fd) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL) {
        zk__uring_submit_locked(u);
        sqe = io_uring_get_sqe(ring);
    }
    if (fd >= 0)
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    else
        io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, ZK__UD_IGNORE);
}

/* What the asks could not hold: every dropped request of the socket ring
 * and every one on a closed handle is cancelled (again, for some: a second
 * cancellation finds nothing). With the lock. */
static void zk__uring_sweep_locked(zk__uring *u) {
    for (uint32_t i = 0; i < u->nslots; i++) {
        zk__uring_slot *s = zk__slot(u, i);
        if (s->seq == 0 || s->seq > u->submitted || s->files)
            continue; /* free, not submitted (scrubbed instead) or a file's */
        zk__io_handle *h = s->op ? s->op->h : s->h;
        bool dropped = s->op == NULL && s->rx == NULL;
        if (dropped || (h && atomic_load(&h->closed)))
            zk__uring_prep_cancel_locked(u, &u->ring, zk__slot_ud(u, i), -1);
    }
}

/* The owner makes the cancellations asked of it. The descriptors of the
 * handles asked for are looked up as the cancellations are submitted,
 * which is why the asks hold them until then. */
static void zk__uring_make_cancels(zk__uring *u) {
    if (!atomic_load_explicit(&u->cancel_pending, memory_order_acquire))
        return;
    pthread_mutex_lock(&u->lock);
    atomic_store_explicit(&u->cancel_pending, false, memory_order_relaxed);
    for (size_t i = 0; i < u->ncancels; i++) {
        zk__uring_ask *a = &u->cancels[i];
        zk__uring_prep_cancel_locked(u, &u->ring, a->ud, a->h ? a->h->fd : -1);
    }
    if (u->cancel_sweep) {
        u->cancel_sweep = false;
        zk__uring_sweep_locked(u);
    }
    zk__uring_submit_locked(u);
    size_t n = u->ncancels;
    u->ncancels = 0;
    /* Released with the lock held, as the reap does. */
    for (size_t i = 0; i < n; i++)
        if (u->cancels[i].h)
            zk__handle_unref(u->cancels[i].h);
    pthread_mutex_unlock(&u->lock);
}

/* Split: the owner enables the socket ring, made disabled so that its
 * single issuer is the worker's thread, not the one that built the
 * runtime (liburing 2.3 declares io_uring_enable_rings but lacks it). */
static void zk__uring_enable(zk__uring *u) {
    if (u->enabled)
        return;
    u->enabled = true;
    if (syscall(__NR_io_uring_register, u->ring.ring_fd,
                IORING_REGISTER_ENABLE_RINGS, NULL, 0) != 0)
        ZK__BUG("io_uring: enabling a worker's ring failed");
}

/* Entries a worker with more work in hand accumulates before it submits. */
#define ZK__URING_BATCH 32

/* The backend's flush; true when it answered asks (uring_rx.c), which
 * may have woken tasks into this worker's queue. */
static bool zk__uring_flush_ring(zk__uring *u, bool batch_only) {
    if (u->split) {
        zk__uring_enable(u);
        zk__uring_make_cancels(u);
    }
    bool answered =
        atomic_load_explicit(&u->asks, memory_order_relaxed) != NULL &&
        zk__rx_answer_asks(u, true);
    zk__uring_arm_wake(u);
    unsigned ready = io_uring_sq_ready(&u->ring);
    if (u->split)
        ready += io_uring_sq_ready(&u->fring);
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

static struct io_uring_sqe *zk__uring_sqe(zk__uring *u, struct io_uring *ring) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (sqe == NULL) {
        zk__uring_flush(&u->base, false);
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

/* Whether `op` goes to the file ring: file and path operations, whose
 * buffers and results the kernel writes until they complete. */
static bool zk__uring_on_files(const zk__io_op *op) {
    switch ((zk__op_code)op->code) {
    case ZK__OP_OPENAT:
    case ZK__OP_STATX:
    case ZK__OP_RENAMEAT:
    case ZK__OP_UNLINKAT:
    case ZK__OP_MKDIRAT:
        return true;
    default:
        return op->h != NULL && op->h->kind == ZK__HANDLE_FILE;
    }
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

/* The kernel's own "restart the system call" codes (ERESTARTSYS 512 to
 * ERESTART_RESTARTBLOCK 516), which a system call never returns but a
 * request interrupted in one of io_uring's workers may complete with:
 * an open waiting for a FIFO's other end whose submitting thread exited
 * gets -ERESTARTSYS. */
static bool zk__uring_restart_code(int64_t res) {
    return res <= -512 && res >= -516;
}

/*
 * A request that the kernel ended though nothing here asked it to, its
 * handle (if it has one) still open: its submitting thread exited (a
 * current-thread runtime's earlier driving thread: the kernel ends its
 * polls and cancels or interrupts its queued and running file work), or
 * a handle on a dup of the same file was closed (the kernel cancels by
 * open file, not by descriptor). Made again, it loses nothing: a
 * readiness poll took nothing, a file request cancelled before it ran
 * did nothing, and one interrupted (a restart code) was at a wait, as a
 * system call interrupted by a signal is restarted. A connect is not made
 * again (a second one on the same socket is refused); it reports the
 * cancellation.
 */
static bool zk__uring_ended_unasked(const zk__io_op *op) {
    return (op->res == -ECANCELED || zk__uring_restart_code(op->res)) &&
           op->code != ZK__OP_CONNECT &&
           (op->h == NULL ||
            !atomic_load_explicit(&op->h->closed, memory_order_acquire));
}

/* How often one operation is made again after the kernel ended it
 * unasked: once per thread exit or close of a dup is the rule. Beyond
 * that the kernel keeps refusing it (when io_uring cannot start its
 * worker threads, RLIMIT_NPROC or pids.max reached, it cancels their
 * work), and the call fails with -EAGAIN rather than wait forever. */
#define ZK__UNASKED_RETRIES 3

static _Atomic int zk__uring_unasked_forced = 0;

void zk__uring_end_unasked(int n) {
    atomic_store(&zk__uring_unasked_forced, n);
}

/* The result to report for an operation that ended with a restart code or
 * unasked and is not made again: a restart code as a system call
 * interrupted there reports it, and a cancellation nobody asked for that
 * kept coming as -EAGAIN (the calling task was not cancelled). -EBADF when
 * the handle was closed. */
static int64_t zk__uring_unasked_result(const zk__io_op *op) {
    if (op->h != NULL &&
        atomic_load_explicit(&op->h->closed, memory_order_acquire))
        return -EBADF;
    /* Else -ECANCELED, ended unasked with every retry spent. */
    return zk__uring_restart_code(op->res) ? -EINTR : -EAGAIN;
}

/* Hands the recorded result to the awaiting code or, when it was the
 * readiness an operation waited for (or a cancellation not meant for it),
 * makes the call again. */
static zk_poll zk__uring_deliver(zk__io_op *op, zk__io_worker *w,
                                 zk_context *cx) {
    /* The test hook, for path requests only: off the sockets' path. */
    if (op->h == NULL &&
        ZK__UNLIKELY(atomic_load_explicit(&zk__uring_unasked_forced,
                                          memory_order_relaxed) > 0) &&
        atomic_fetch_sub(&zk__uring_unasked_forced, 1) > 0)
        op->res = -ECANCELED;
    bool unasked = zk__uring_ended_unasked(op);
    bool again = unasked && op->unasked < ZK__UNASKED_RETRIES;
    if (again)
        op->unasked++;
    if (op->awaits_ready || again) {
        op->awaits_ready = false;
        /* revents (an error or hang-up among them), or a retry */
        if (op->res >= 0 || again) {
            op->state = ZK__OPS_INIT;
            /* As a first poll would: not on a handle closed since, and on
             * the ring of the worker the task runs on now (`w` is the one
             * that waited, which the task may have left: another thread's
             * ring is never prepared on). */
            if (op->h != NULL &&
                atomic_load_explicit(&op->h->closed, memory_order_acquire))
                return zk__uring_complete_now(op, -EBADF);
            zk__io_worker *here = zk__io_current(w->rt);
            if (here == NULL) /* polled off the runtime's workers */
                return zk__uring_complete_now(op, -EPERM);
            return zk__uring_op_poll(op, here, cx);
        }
    }
    int64_t res = op->res;
    if (unasked || zk__uring_restart_code(res))
        res = zk__uring_unasked_result(op);
    return zk__uring_complete_now(op, res);
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
        bool files = zk__uring_on_files(op);
        struct io_uring_sqe *sqe =
            zk__uring_sqe(u, files ? u->files : &u->ring);
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
        s->files = files;
        if (u->split && !files && op->h)
            zk__uring_mark(u, op->h);
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

/* Cancels `ud` (or with `fd`, every request on it) on `ring` and returns
 * once the kernel is done with them. Any thread, but not on a split
 * socket ring. */
static void zk__uring_sync_cancel(struct io_uring *ring, uint64_t ud, int fd) {
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
        r = io_uring_register_sync_cancel(ring, &reg);
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
            struct io_uring *ring = s->files ? u->files : &u->ring;
            zk_waker_drop(&op->waker);
            if (!submitted)
                atomic_store_explicit(&u->dirty, true, memory_order_release);
            pthread_mutex_unlock(&u->lock);
            /* The slot stays reserved until its completion is reaped, so
             * `ud` still names this request. On the split socket ring the
             * owner cancels it, later: nothing of the caller's is used by
             * the request any more (uring.h). */
            if (submitted && ring == &u->ring && u->split)
                zk__uring_ask_cancel(u, ud, NULL);
            else if (submitted)
                zk__uring_sync_cancel(ring, ud, -1);
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
 * and complete with -ECANCELED, reported as -EBADF: now, or on a split
 * socket ring at its owner's next flush. */
static void zk__uring_handle_close(zk__io_handle *h) {
    zk__io *io = &h->rt->io;
    uint64_t marked = atomic_load(&h->rings);
    for (size_t i = 0; i < io->n; i++) {
        zk__uring *u = (zk__uring *)io->workers[i];
        pthread_mutex_lock(&u->lock);
        atomic_store_explicit(&u->dirty, true, memory_order_release);
        pthread_mutex_unlock(&u->lock);
        if (!u->split)
            zk__uring_sync_cancel(&u->ring, 0, h->fd);
        else if (h->kind == ZK__HANDLE_FILE)
            zk__uring_sync_cancel(&u->fring, 0, h->fd);
        else if (marked & zk__uring_bit(u))
            zk__uring_ask_cancel(u, 0, h);
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
    /* A completion of the file ring wakes the wait through the eventfd
     * (registered with it) that the wake-up read on `ring` waits for. */
    if (timeout_ns != 0 && !answered && io_uring_cq_ready(&u->ring) == 0 &&
        (!u->split || io_uring_cq_ready(&u->fring) == 0)) {
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

/* Slots in use on the file ring (`files`) or the other: operations the
 * kernel has not completed, or that were prepared and not submitted. */
static uint32_t zk__uring_outstanding(zk__uring *u, bool files) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < u->nslots; i++) {
        const zk__uring_slot *s = zk__slot(u, i);
        n += s->seq != 0 && (s->files == files || !u->split);
    }
    return n;
}

/* Cancels whatever is left on the rings this thread may enter and waits,
 * a bounded time, for its completions, so that the handles those slots
 * hold are released and their descriptors closed. Every task has
 * finished, so every operation was dropped: their completions release the
 * handles they held and close what a dropped open made. Some come late: a
 * cancellation asked just before the ring's worker exited is completed by
 * the kernel on its own time, and a multishot of a stream left open goes
 * on until cancelled. */
static void zk__uring_drain(zk__uring *u) {
    zk__rx_answer_asks(u, false);
    zk__uring_reap(u, UINT32_MAX, SIZE_MAX);
    struct io_uring *rings[2] = {&u->ring, u->split ? &u->fring : NULL};
    for (int r = 0; r < 2; r++) {
        struct io_uring *ring = rings[r];
        bool files = r == 1 || !u->split;
        if (ring == NULL || !zk__uring_may_enter(u, ring) ||
            zk__uring_outstanding(u, files) == 0)
            continue;
        /* Entries still unsubmitted go first, those of operations dropped
         * since they were prepared as no-ops (as at every flush): a read
         * must not reach the kernel with a buffer that is gone. */
        pthread_mutex_lock(&u->lock);
        zk__uring_scrub_ring_locked(u, ring);
        zk__uring_submit_ring_locked(u, ring);
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        if (sqe != NULL) {
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data64(sqe, ZK__UD_IGNORE);
        }
        zk__uring_submit_ring_locked(u, ring);
        pthread_mutex_unlock(&u->lock);
        for (int i = 0; i < 200 && zk__uring_outstanding(u, files) > 0; i++) {
            struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
            struct io_uring_cqe *cqe;
            io_uring_wait_cqe_timeout(ring, &cqe, &ts);
            zk__uring_reap(u, UINT32_MAX, SIZE_MAX);
        }
    }
}

/* The worker's last act on its rings (a multi-thread runtime's worker
 * thread, as it exits): only it can cancel on its socket ring. */
static void zk__uring_retire(zk__io_worker *w) {
    zk__uring *u = (zk__uring *)w;
    if (u->split && u->enabled)
        zk__uring_drain(u);
}

static void zk__uring_destroy(zk__io_worker *w) {
    zk__uring *u = (zk__uring *)w;
    zk__uring_drain(u);
    io_uring_queue_exit(&u->ring);
    if (u->split)
        io_uring_queue_exit(&u->fring);
    /* What the drain could not end (a socket ring whose owner was gone
     * when it was asked to cancel) ended with the rings: the handles its
     * slots held go now. */
    for (uint32_t i = 0; i < u->nslots; i++) {
        zk__uring_slot *s = zk__slot(u, i);
        if (s->seq != 0 && s->op == NULL && s->h != NULL)
            zk__handle_unref(s->h);
    }
    for (size_t i = 0; i < u->ncancels; i++)
        if (u->cancels[i].h)
            zk__handle_unref(u->cancels[i].h);
    free(u->cancels);
    zk__pbufs_free(u);
    close(u->efd);
    for (uint32_t c = 0; c < u->nslots / ZK__SLOT_CHUNK; c++)
        free(u->chunks[c]);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* A multi-thread runtime's worker gets the split rings (uring.h), unless
 * the kernel lacks deferred task running (6.1): then one ring, as a
 * current-thread runtime's. */
static int zk__uring_make_rings(zk__uring *u, bool split) {
    if (split) {
        int rc = io_uring_queue_init(
            ZK__URING_ENTRIES, &u->ring,
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED);
        if (rc == 0) {
            rc = io_uring_queue_init(ZK__URING_ENTRIES, &u->fring,
                                     IORING_SETUP_COOP_TASKRUN |
                                         IORING_SETUP_TASKRUN_FLAG);
            if (rc == 0 &&
                (rc = io_uring_register_eventfd(&u->fring, u->efd)) != 0)
                io_uring_queue_exit(&u->fring);
            if (rc != 0) {
                io_uring_queue_exit(&u->ring);
                return rc;
            }
            u->split = true;
            u->files = &u->fring;
            return 0;
        }
        if (rc != -EINVAL)
            return rc;
    }
    u->files = &u->ring;
    int rc = io_uring_queue_init(ZK__URING_ENTRIES, &u->ring,
                                 IORING_SETUP_COOP_TASKRUN |
                                     IORING_SETUP_TASKRUN_FLAG);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(ZK__URING_ENTRIES, &u->ring, 0);
    return rc;
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
    atomic_init(&u->cancel_pending, false);
    zk__lock_init(&u->ask_lock);
    pthread_mutex_init(&u->lock, NULL);
    int rc = 0;
    u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->efd < 0)
        rc = -errno;
    else if ((rc = zk__uring_make_rings(u, rt->kind ==
                                               ZK_RUNTIME_MULTI_THREAD)) != 0)
        close(u->efd);
    if (rc != 0) {
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
    .retire = zk__uring_retire,
    .flush = zk__uring_flush,
    .poll = zk__uring_poll,
    .unpark = zk__uring_unpark,
    .op_poll = zk__uring_op_poll,
    .op_drop = zk__uring_op_drop,
    .handle_open = zk__uring_handle_open,
    .handle_close = zk__uring_handle_close,
    .handle_free = zk__uring_handle_free,
};
