/*
 * udp.c - UDP sockets.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "net/socket.h"
#include "runtime/runtime.h"

int zk_udp_bind(const zk_addr *addr, zk_udp **out) {
    if (addr == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    if (addr->u.sa.sa_family != AF_INET && addr->u.sa.sa_family != AF_INET6)
        return -EINVAL;
    zk__io_handle *h;
    int rc = zk__socket_new(addr->u.sa.sa_family, SOCK_DGRAM, &h);
    if (rc != 0)
        return rc;
    if (bind(h->fd, &addr->u.sa, addr->len) != 0) {
        rc = -errno;
        zk__handle_close(h);
        return rc;
    }
    *out = (zk_udp *)h;
    return 0;
}

int zk_udp_connect(zk_udp *u, const zk_addr *addr) {
    if (u == NULL || addr == NULL)
        return -EINVAL;
    if (atomic_load(&zk__h(u)->closed))
        return -EBADF;
    return connect(zk__h(u)->fd, &addr->u.sa, addr->len) == 0 ? 0 : -errno;
}

static int64_t zk__recv_from_finish(zk__io_op *op, int64_t res) {
    zk_addr *from = op->out;
    if (res >= 0 && from)
        from->len = op->a.m.msg.msg_namelen;
    return res;
}

void zk_udp_recv_from_future_init(zk_io_future *f, zk_udp *u, void *buf,
                                  size_t len, zk_addr *from) {
    zk__io_op *op = (zk__io_op *)f;
    if (u == NULL || (buf == NULL && len > 0)) {
        zk__op_init_failed(op, -EINVAL);
        return;
    }
    zk__op_init(op, ZK__OP_RECVMSG, zk__h(u));
    op->a.m.iov = (struct iovec){buf, len > INT_MAX ? INT_MAX : len};
    op->a.m.msg.msg_iov = &op->a.m.iov;
    op->a.m.msg.msg_iovlen = 1;
    if (from) {
        memset(from, 0, sizeof *from);
        op->a.m.msg.msg_name = &from->u.ss;
        op->a.m.msg.msg_namelen = sizeof from->u;
    }
    op->out = from;
    op->finish = zk__recv_from_finish;
}

void zk_udp_send_to_future_init(zk_io_future *f, zk_udp *u, const void *buf,
                                size_t len, const zk_addr *to) {
    zk__io_op *op = (zk__io_op *)f;
    if (u == NULL || (buf == NULL && len > 0)) {
        zk__op_init_failed(op, -EINVAL);
        return;
    }
    zk__op_init(op, ZK__OP_SENDMSG, zk__h(u));
    op->a.m.iov = (struct iovec){(void *)buf, len > INT_MAX ? INT_MAX : len};
    op->a.m.msg.msg_iov = &op->a.m.iov;
    op->a.m.msg.msg_iovlen = 1;
    if (to) {
        op->a.m.msg.msg_name = (void *)&to->u.ss;
        op->a.m.msg.msg_namelen = to->len;
    }
}

int64_t zk_udp_send(zk_udp *u, const void *buf, size_t len) {
    return zk_udp_send_to(u, buf, len, NULL);
}

int64_t zk_udp_recv(zk_udp *u, void *buf, size_t len) {
    return zk_udp_recv_from(u, buf, len, NULL);
}

int64_t zk_udp_send_to(zk_udp *u, const void *buf, size_t len,
                       const zk_addr *to) {
    zk_io_future f;
    zk_udp_send_to_future_init(&f, u, buf, len, to);
    return zk_await(&f.base);
}

int64_t zk_udp_recv_from(zk_udp *u, void *buf, size_t len, zk_addr *from) {
    zk_io_future f;
    zk_udp_recv_from_future_init(&f, u, buf, len, from);
    return zk_await(&f.base);
}

int zk_udp_local_addr(const zk_udp *u, zk_addr *out) {
    if (u == NULL || out == NULL)
        return -EINVAL;
    if (atomic_load(&zk__h(u)->closed))
        return -EBADF;
    memset(out, 0, sizeof *out);
    out->len = sizeof out->u;
    return getsockname(zk__h(u)->fd, &out->u.sa, &out->len) == 0 ? 0 : -errno;
}

int zk_udp_close(zk_udp *u) {
    if (u == NULL)
        return -EINVAL;
    return zk__handle_close(zk__h(u));
}
