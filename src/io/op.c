/*
 * op.c - the operation future every I/O call awaits, handles, and the
 * system call behind each operation (used by epoll and the blocking pool).
 */
#define _GNU_SOURCE
#include "io/op.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/runtime.h"
#include "runtime/worker.h"

/* ---------------------------------------------------------------------- */
/* The future                                                             */
/* ---------------------------------------------------------------------- */

static zk_poll zk__op_future_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk__io_op *op = (zk__io_op *)f;
    if (op->state == ZK__OPS_DONE) {
        *out = op->res;
        return ZK_READY;
    }
    zk__io_worker *w = op->iow;
    zk_runtime *rt = op->h ? op->h->rt : zk__runtime_current();
    if (op->state == ZK__OPS_INIT) {
        w = rt ? zk__io_current(rt) : NULL;
        if (w == NULL) {
            /* Not on a worker of the handle's runtime. */
            *out = zk__op_complete(op, -EPERM);
            return ZK_READY;
        }
        if (op->h &&
            atomic_load_explicit(&op->h->closed, memory_order_acquire)) {
            *out = zk__op_complete(op, -EBADF);
            return ZK_READY;
        }
        /* The operation keeps the handle (and its descriptor) alive until
         * its result is delivered or it is dropped. */
        if (op->h) {
            zk__handle_ref(op->h);
            op->holds_ref = true;
        }
    }
    zk_poll p = rt->io.ops->op_poll(op, w, cx);
    if (p == ZK_READY) {
        *out = op->res;
        if (op->holds_ref) {
            op->holds_ref = false;
            zk__handle_unref(op->h);
        }
    }
    return p;
}

/* A result the awaiting code never saw: a descriptor it made is closed. */
static void zk__op_discard(zk__io_op *op, int64_t res) {
    if (res >= 0 && zk__op_makes_fd(op))
        close((int)res);
}

static void zk__op_future_drop(zk_future *f) {
    zk__io_op *op = (zk__io_op *)f;
    if (op->state == ZK__OPS_KERNEL || op->state == ZK__OPS_WAITING) {
        zk_runtime *rt = op->iow->rt;
        rt->io.ops->op_drop(op);
        /* op_drop leaves a result that arrived but was not delivered in
         * op->res with state DONE. */
        if (op->state == ZK__OPS_DONE)
            zk__op_discard(op, op->res);
    }
    if (op->holds_ref) {
        op->holds_ref = false;
        zk__handle_unref(op->h);
    }
    op->state = ZK__OPS_DONE;
}

static const zk_future_ops zk__op_future_ops = {zk__op_future_poll,
                                                zk__op_future_drop};

void zk__op_init(zk__io_op *op, zk__op_code code, zk__io_handle *h) {
    memset(op, 0, sizeof *op);
    op->base.ops = &zk__op_future_ops;
    op->code = (uint8_t)code;
    op->state = ZK__OPS_INIT;
    op->h = h;
    op->fd = h ? h->fd : AT_FDCWD;
    op->a.rw.off = -1;
}

void zk__op_init_failed(zk__io_op *op, int err) {
    zk__op_init(op, ZK__OP_READ, NULL);
    op->res = err;
    op->state = ZK__OPS_DONE;
}

int64_t zk__op_complete(zk__io_op *op, int64_t res) {
    if (res == -ECANCELED && op->h &&
        atomic_load_explicit(&op->h->closed, memory_order_acquire))
        res = -EBADF; /* cancelled because the handle was closed */
    if (op->finish)
        res = op->finish(op, res);
    op->res = (int32_t)res;
    op->state = ZK__OPS_DONE;
    return res;
}

bool zk__op_drained(const zk__io_op *op, int64_t res) {
    if (op->h->kind == ZK__HANDLE_FILE || !op->h->bytestream)
        return false;
    switch ((zk__op_code)op->code) {
    case ZK__OP_READ:
    case ZK__OP_RECV:
    case ZK__OP_WRITE:
    case ZK__OP_SEND:
        return res > 0 && (size_t)res < op->a.rw.len;
    default:
        return false;
    }
}

int64_t zk__op_await(zk__io_op *op) {
    return zk_await(&op->base);
}

/* ---------------------------------------------------------------------- */
/* System calls                                                           */
/* ---------------------------------------------------------------------- */

static int64_t zk__ret(ssize_t r) {
    return r < 0 ? -errno : r;
}

bool zk__op_needs_pool(const zk__io_op *op) {
    if (op->h == NULL)
        return true; /* path operations */
    return op->h->kind == ZK__HANDLE_FILE;
}

bool zk__op_is_socket_send(const zk__io_op *op) {
    return op->code == ZK__OP_SEND || op->code == ZK__OP_SENDMSG ||
           (op->code == ZK__OP_WRITEV && op->h != NULL &&
            op->h->kind == ZK__HANDLE_SOCKET);
}

bool zk__op_makes_fd(const zk__io_op *op) {
    return (op->code == ZK__OP_ACCEPT || op->code == ZK__OP_OPENAT) &&
           !op->awaits_ready;
}

bool zk__op_writes(const zk__io_op *op) {
    return op->code == ZK__OP_WRITE || op->code == ZK__OP_WRITEV ||
           op->code == ZK__OP_SEND || op->code == ZK__OP_SENDMSG;
}

/* A socket send (zk__op_is_socket_send) with `flags` added to
 * MSG_NOSIGNAL (so a vanished peer is -EPIPE, not SIGPIPE). */
static int64_t zk__op_socket_send(zk__io_op *op, int flags) {
    flags |= MSG_NOSIGNAL;
    if (op->code == ZK__OP_SEND)
        return zk__ret(send(op->fd, op->a.rw.buf, op->a.rw.len, flags));
    if (op->code == ZK__OP_SENDMSG)
        return zk__ret(sendmsg(op->fd, &op->a.m.msg, flags));
    struct msghdr m = {.msg_iov = (struct iovec *)op->a.v.iov,
                       .msg_iovlen = (size_t)op->a.v.cnt};
    return zk__ret(sendmsg(op->fd, &m, flags));
}

int64_t zk__op_send_now(zk__io_op *op) {
    return zk__op_socket_send(op, MSG_DONTWAIT);
}

int64_t zk__op_syscall(zk__io_op *op) {
    int fd = op->fd;
    switch ((zk__op_code)op->code) {
    case ZK__OP_READ:
        if (op->a.rw.off >= 0)
            return zk__ret(pread(fd, op->a.rw.buf, op->a.rw.len, op->a.rw.off));
        return zk__ret(read(fd, op->a.rw.buf, op->a.rw.len));
    case ZK__OP_WRITE:
        if (op->a.rw.off >= 0)
            return zk__ret(
                pwrite(fd, op->a.rw.buf, op->a.rw.len, op->a.rw.off));
        return zk__ret(write(fd, op->a.rw.buf, op->a.rw.len));
    case ZK__OP_READV:
        if (op->a.v.off >= 0)
            return zk__ret(preadv(fd, op->a.v.iov, op->a.v.cnt, op->a.v.off));
        return zk__ret(readv(fd, op->a.v.iov, op->a.v.cnt));
    case ZK__OP_WRITEV:
        if (zk__op_is_socket_send(op))
            return zk__op_socket_send(op, 0);
        if (op->a.v.off >= 0)
            return zk__ret(pwritev(fd, op->a.v.iov, op->a.v.cnt, op->a.v.off));
        return zk__ret(writev(fd, op->a.v.iov, op->a.v.cnt));
    case ZK__OP_RECV:
        return zk__ret(recv(fd, op->a.rw.buf, op->a.rw.len, 0));
    case ZK__OP_SEND:
        return zk__op_socket_send(op, 0);
    case ZK__OP_RECVMSG:
        return zk__ret(recvmsg(fd, &op->a.m.msg, 0));
    case ZK__OP_SENDMSG:
        return zk__op_socket_send(op, 0);
    case ZK__OP_ACCEPT: {
        socklen_t len = op->a.sa.len;
        int64_t r = zk__ret(accept4(fd, (struct sockaddr *)op->a.sa.addr,
                                    op->a.sa.addr ? &len : NULL,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (r >= 0 && op->a.sa.addr)
            op->a.sa.len = len; /* the peer's, as io_uring reports it */
        return r;
    }
    case ZK__OP_CONNECT:
        if (!op->connect_started) {
            op->connect_started = true;
            int r = connect(fd, (struct sockaddr *)op->a.sa.addr, op->a.sa.len);
            if (r == 0)
                return 0;
            /* EAGAIN from connect(2) itself is no "in progress": a Unix
             * listener's backlog is full, a result (as on io_uring). */
            op->connect_full = errno == EAGAIN;
            return errno == EINPROGRESS ? -EAGAIN : -errno;
        } else {
            /* Writable: the outcome is in SO_ERROR. */
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                return -errno;
            if (err != 0)
                return -err;
            struct sockaddr_storage peer;
            len = sizeof peer;
            if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
                return errno == ENOTCONN ? -EAGAIN : -errno;
            return 0;
        }
    case ZK__OP_POLL_IN: {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 0);
        if (r < 0)
            return -errno;
        return r == 0 ? -EAGAIN : p.revents;
    }
    case ZK__OP_FSYNC:
        return zk__ret(op->a.sync.datasync ? fdatasync(fd) : fsync(fd));
    case ZK__OP_OPENAT:
        return zk__ret(openat(fd, op->a.p.path, op->a.p.flags | O_CLOEXEC,
                              (mode_t)op->a.p.mode));
    case ZK__OP_STATX:
        return zk__ret(statx(fd, op->a.p.path, op->a.p.flags, STATX_BASIC_STATS,
                             (struct statx *)op->a.p.statx));
    case ZK__OP_RENAMEAT:
        return zk__ret(renameat(fd, op->a.p.path, fd, op->a.p.path2));
    case ZK__OP_UNLINKAT:
        return zk__ret(unlinkat(fd, op->a.p.path, op->a.p.flags));
    case ZK__OP_MKDIRAT:
        return zk__ret(mkdirat(fd, op->a.p.path, (mode_t)op->a.p.mode));
    }
    return -EINVAL;
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                */
/* ---------------------------------------------------------------------- */

int zk__handle_new(zk_runtime *rt, int fd, zk__handle_kind kind,
                   zk__io_handle **out) {
    if (rt == NULL)
        return -EPERM;
    zk__io_handle *h = zk__zalloc_line(sizeof *h);
    if (!h)
        return -ENOMEM;
    h->fd = fd;
    h->kind = kind;
    h->bytestream = kind == ZK__HANDLE_PIPE; /* sockets: set by their maker */
    h->rt = rt;
    atomic_init(&h->refs, 1);
    atomic_init(&h->closed, false);
    atomic_init(&h->rings, 0);
    /* Handles go to the homes in turn, wherever they are made (io.h,
     * ZK__IO_WORKERS_PER_HOME): not to the worker of the task that makes
     * them, which a task moving between workers would make a matter of
     * chance. */
    h->home = atomic_fetch_add(&rt->io.next, 1) % rt->io.homes;
    zk__io_worker *w = rt->io.workers[h->home];
    int rc = rt->io.ops->handle_open(h, w);
    if (rc != 0) {
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void zk__handle_unref(zk__io_handle *h) {
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1)
        h->rt->io.ops->handle_free(h);
}

int zk__handle_close(zk__io_handle *h) {
    /* Sequentially consistent, as the backend's reads of `closed` after
     * it prepared a request (io_uring's socket ring marks: uring.h). */
    if (atomic_exchange(&h->closed, true))
        return -EBADF;
    h->rt->io.ops->handle_close(h);
    zk__handle_unref(h);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The driver                                                             */
/* ---------------------------------------------------------------------- */

void zk__eventfd_signal(int efd) {
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(efd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
}

zk__io_worker *zk__io_current(zk_runtime *rt) {
    zk__worker *w = zk__worker_current();
    if (w == NULL || w->rt != rt || rt->io.workers == NULL)
        return NULL;
    return rt->io.workers[w->index];
}

#if defined(ZK__HAVE_URING)
bool zk__uring_available(void);
#else
static bool zk__uring_available(void) {
    return false;
}
#endif

int zk__io_init(zk__io *io, zk_runtime *rt, size_t workers, zk_io_backend want,
                int read_ahead, size_t homes) {
    memset(io, 0, sizeof *io);
    if ((unsigned)want > ZK_IO_EPOLL)
        return -EINVAL;
    if (read_ahead < 0) {
        const char *env = getenv("ZOKIO_IO_READ_AHEAD");
        read_ahead = !(env && strcmp(env, "0") == 0);
    }
    io->read_ahead = read_ahead != 0;
    if (want == ZK_IO_AUTO) {
        const char *env = getenv("ZOKIO_IO_BACKEND");
        if (env && *env) {
            if (strcmp(env, "io_uring") == 0 || strcmp(env, "uring") == 0)
                want = ZK_IO_IO_URING;
            else if (strcmp(env, "epoll") == 0)
                want = ZK_IO_EPOLL;
            else if (strcmp(env, "auto") != 0)
                return -EINVAL;
        }
    }
    if (want == ZK_IO_IO_URING && !zk__uring_available())
        return -ENOSYS;
    if (want == ZK_IO_AUTO)
        want = zk__uring_available() ? ZK_IO_IO_URING : ZK_IO_EPOLL;
#if defined(ZK__HAVE_URING)
    io->ops = want == ZK_IO_IO_URING ? &zk__uring_ops : &zk__epoll_ops;
#else
    io->ops = &zk__epoll_ops;
#endif
    io->workers = calloc(workers, sizeof *io->workers);
    if (!io->workers)
        return -ENOMEM;
    io->n = workers;
    if (io->ops->shared_instance)
        io->homes = workers;
    else if (homes != 0 && homes <= workers)
        io->homes = homes;
    else
        io->homes =
            (workers + ZK__IO_WORKERS_PER_HOME - 1) / ZK__IO_WORKERS_PER_HOME;
    for (size_t i = 0; i < workers; i++) {
        int rc = io->ops->create(rt, i, &io->workers[i]);
        if (rc != 0) {
            zk__io_destroy(io);
            return rc;
        }
    }
    return 0;
}

void zk__io_destroy(zk__io *io) {
    if (io->workers == NULL)
        return;
    for (size_t i = 0; i < io->n; i++)
        if (io->workers[i])
            io->ops->destroy(io->workers[i]);
    free(io->workers);
    io->workers = NULL;
}

zk_io_backend zk_runtime_io_backend(const zk_runtime *rt) {
    return rt && rt->io.ops ? rt->io.ops->kind : ZK_IO_AUTO;
}

const char *zk_io_backend_name(zk_io_backend backend) {
    switch (backend) {
    case ZK_IO_AUTO:
        return "auto";
    case ZK_IO_IO_URING:
        return "io_uring";
    case ZK_IO_EPOLL:
        return "epoll";
    }
    return "?";
}
