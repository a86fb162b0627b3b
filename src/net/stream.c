/*
 * stream.c - byte streams: TCP and Unix domain sockets, pipes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/socket.h"
#include "runtime/coro.h"
#include "runtime/runtime.h"

int zk__socket_new(int family, int type, zk__io_handle **out) {
    zk_runtime *rt = zk__runtime_current();
    if (rt == NULL)
        return -EPERM;
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = zk__handle_new(rt, fd, ZK__HANDLE_SOCKET, out);
    if (rc != 0)
        close(fd);
    else
        (*out)->bytestream = type == SOCK_STREAM;
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Connecting                                                             */
/* ---------------------------------------------------------------------- */

static int zk__connect(const zk_addr *addr, int64_t timeout_ns,
                       zk_stream **out) {
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (!zk_in_coroutine())
        return -EPERM;
    zk__io_handle *h;
    int rc = zk__socket_new(addr->u.sa.sa_family, SOCK_STREAM, &h);
    if (rc != 0)
        return rc;
    zk__io_op op;
    zk__op_init(&op, ZK__OP_CONNECT, h);
    op.a.sa.addr = (struct sockaddr_storage *)&addr->u.ss;
    op.a.sa.len = addr->len;
    int64_t r = timeout_ns < 0 ? zk__op_await(&op)
                               : zk_await_timeout(&op.base, timeout_ns);
    if (r < 0) {
        zk__handle_close(h);
        return (int)r;
    }
    *out = (zk_stream *)h;
    return 0;
}

static bool zk__is_ip(const zk_addr *a) {
    return a->u.sa.sa_family == AF_INET || a->u.sa.sa_family == AF_INET6;
}

int zk_tcp_connect(const zk_addr *addr, zk_stream **out) {
    if (addr == NULL)
        return -EINVAL;
    if (!zk__is_ip(addr))
        return -EAFNOSUPPORT;
    return zk__connect(addr, -1, out);
}

int zk_tcp_connect_timeout(const zk_addr *addr, zk_duration timeout,
                           zk_stream **out) {
    if (addr == NULL || timeout < 0)
        return -EINVAL;
    if (!zk__is_ip(addr))
        return -EAFNOSUPPORT;
    return zk__connect(addr, timeout, out);
}

int zk_unix_connect(const char *path, zk_stream **out) {
    zk_addr a;
    int rc = zk_addr_unix(path, &a);
    if (rc != 0)
        return rc;
    return zk__connect(&a, -1, out);
}

int zk_stream_from_fd(int fd, zk_stream **out) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -EBADF;
    zk__handle_kind kind;
    if (S_ISSOCK(st.st_mode))
        kind = ZK__HANDLE_SOCKET;
    else if (S_ISFIFO(st.st_mode))
        kind = ZK__HANDLE_PIPE;
    else {
        close(fd);
        return -EINVAL;
    }
    zk_runtime *rt = zk__runtime_current();
    int fl = fcntl(fd, F_GETFL);
    if (out == NULL || rt == NULL || fl < 0 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        close(fd);
        return out == NULL ? -EINVAL : rt == NULL ? -EPERM : -errno;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    zk__io_handle *h;
    int rc = zk__handle_new(rt, fd, kind, &h);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    if (kind == ZK__HANDLE_SOCKET) {
        int type = 0;
        socklen_t len = sizeof type;
        h->bytestream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
                        type == SOCK_STREAM;
    }
    *out = (zk_stream *)h;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Reading and writing                                                    */
/* ---------------------------------------------------------------------- */

void zk_stream_read_future_init(zk_io_future *f, zk_stream *s, void *buf,
                                size_t len) {
    zk__io_op *op = (zk__io_op *)f;
    if (s == NULL || (buf == NULL && len > 0)) {
        zk__op_init_failed(op, -EINVAL);
        return;
    }
    zk__io_handle *h = zk__h(s);
    zk__op_init(op, h->kind == ZK__HANDLE_SOCKET ? ZK__OP_RECV : ZK__OP_READ,
                h);
    op->a.rw.buf = buf;
    op->a.rw.len = len > INT_MAX ? INT_MAX : len;
}

void zk_stream_write_future_init(zk_io_future *f, zk_stream *s, const void *buf,
                                 size_t len) {
    zk__io_op *op = (zk__io_op *)f;
    if (s == NULL || (buf == NULL && len > 0)) {
        zk__op_init_failed(op, -EINVAL);
        return;
    }
    zk__io_handle *h = zk__h(s);
    zk__op_init(op, h->kind == ZK__HANDLE_SOCKET ? ZK__OP_SEND : ZK__OP_WRITE,
                h);
    op->a.rw.buf = (void *)buf;
    op->a.rw.len = len > INT_MAX ? INT_MAX : len;
}

static void zk__vec_init(zk_io_future *f, zk_stream *s, const struct iovec *iov,
                         int cnt, zk__op_code code) {
    zk__io_op *op = (zk__io_op *)f;
    if (s == NULL || iov == NULL || cnt <= 0 || cnt > IOV_MAX) {
        zk__op_init_failed(op, -EINVAL);
        return;
    }
    zk__op_init(op, code, zk__h(s));
    op->a.v.iov = iov;
    op->a.v.cnt = cnt;
    op->a.v.off = -1;
}

void zk_stream_readv_future_init(zk_io_future *f, zk_stream *s,
                                 const struct iovec *iov, int cnt) {
    zk__vec_init(f, s, iov, cnt, ZK__OP_READV);
}

void zk_stream_writev_future_init(zk_io_future *f, zk_stream *s,
                                  const struct iovec *iov, int cnt) {
    zk__vec_init(f, s, iov, cnt, ZK__OP_WRITEV);
}

/* The futures of the blocking-style calls, built by zk__await_made() in
 * its own frame. */
static zk_future *zk__read_make(zk_io_future *f, void *s, const void *buf,
                                size_t len) {
    zk_stream_read_future_init(f, s, (void *)buf, len);
    return &f->base;
}

static zk_future *zk__write_make(zk_io_future *f, void *s, const void *buf,
                                 size_t len) {
    zk_stream_write_future_init(f, s, buf, len);
    return &f->base;
}

static zk_future *zk__readv_make(zk_io_future *f, void *s, const void *iov,
                                 size_t cnt) {
    zk_stream_readv_future_init(f, s, iov, (int)cnt);
    return &f->base;
}

static zk_future *zk__writev_make(zk_io_future *f, void *s, const void *iov,
                                  size_t cnt) {
    zk_stream_writev_future_init(f, s, iov, (int)cnt);
    return &f->base;
}

int64_t zk_stream_read(zk_stream *s, void *buf, size_t len) {
    if (len == 0 && s != NULL)
        return 0;
    return zk__await_made(zk__read_make, s, buf, len);
}

int64_t zk_stream_write(zk_stream *s, const void *buf, size_t len) {
    if (len == 0 && s != NULL)
        return 0;
    return zk__await_made(zk__write_make, s, buf, len);
}

int64_t zk_stream_readv(zk_stream *s, const struct iovec *iov, int cnt) {
    return zk__await_made(zk__readv_make, s, iov, (size_t)cnt);
}

int64_t zk_stream_writev(zk_stream *s, const struct iovec *iov, int cnt) {
    return zk__await_made(zk__writev_make, s, iov, (size_t)cnt);
}

int zk_stream_write_all(zk_stream *s, const void *buf, size_t len) {
    if (s == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    const char *p = buf;
    while (len > 0) {
        int64_t n = zk_stream_write(s, p, len);
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int zk_stream_read_exact(zk_stream *s, void *buf, size_t len) {
    if (s == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    char *p = buf;
    while (len > 0) {
        int64_t n = zk_stream_read(s, p, len);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Options and addresses                                                  */
/* ---------------------------------------------------------------------- */

static int zk__usable(const zk_stream *s) {
    if (s == NULL)
        return -EINVAL;
    if (atomic_load(&zk__h(s)->closed))
        return -EBADF;
    return 0;
}

int zk_stream_shutdown(zk_stream *s, int how) {
    int rc = zk__usable(s);
    if (rc != 0)
        return rc;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    return shutdown(zk__h(s)->fd, how) == 0 ? 0 : -errno;
}

int zk_stream_close(zk_stream *s) {
    if (s == NULL)
        return -EINVAL;
    return zk__handle_close(zk__h(s));
}

int zk_stream_peer_addr(const zk_stream *s, zk_addr *out) {
    int rc = zk__usable(s);
    if (rc != 0 || out == NULL)
        return rc ? rc : -EINVAL;
    memset(out, 0, sizeof *out);
    out->len = sizeof out->u;
    return getpeername(zk__h(s)->fd, &out->u.sa, &out->len) == 0 ? 0 : -errno;
}

int zk_stream_local_addr(const zk_stream *s, zk_addr *out) {
    int rc = zk__usable(s);
    if (rc != 0 || out == NULL)
        return rc ? rc : -EINVAL;
    memset(out, 0, sizeof *out);
    out->len = sizeof out->u;
    return getsockname(zk__h(s)->fd, &out->u.sa, &out->len) == 0 ? 0 : -errno;
}

int zk_stream_fd(const zk_stream *s) {
    return s ? zk__h(s)->fd : -EINVAL;
}

int zk_tcp_set_nodelay(zk_stream *s, bool on) {
    int rc = zk__usable(s);
    if (rc != 0)
        return rc;
    int v = on;
    return setsockopt(zk__h(s)->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) == 0
               ? 0
               : -errno;
}

int zk_tcp_set_keepalive(zk_stream *s, bool on, zk_duration idle) {
    int rc = zk__usable(s);
    if (rc != 0)
        return rc;
    if (idle < 0 || idle / ZK_SEC(1) > INT_MAX)
        return -EINVAL;
    int fd = zk__h(s)->fd, v = on;
    /* The idle time first: one the kernel refuses leaves the socket as it
     * was. */
    if (on && idle > 0) {
        int secs = (int)(idle / ZK_SEC(1));
        if (secs < 1)
            secs = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs) != 0)
            return -errno;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v) != 0)
        return -errno;
    return 0;
}
