/*
 * listener.c - TCP and Unix domain stream listeners.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "net/socket.h"
#include "runtime/runtime.h"

#define ZK__BACKLOG_DEFAULT 1024

static int zk__listen(const zk_addr *addr, int backlog, zk_listener **out) {
    if (out == NULL || backlog < 0)
        return -EINVAL;
    *out = NULL;
    zk__io_handle *h;
    int rc = zk__socket_new(addr->u.sa.sa_family, SOCK_STREAM, &h);
    if (rc != 0)
        return rc;
    int one = 1;
    if (addr->u.sa.sa_family != AF_UNIX)
        setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(h->fd, &addr->u.sa, addr->len) != 0 ||
        listen(h->fd, backlog ? backlog : ZK__BACKLOG_DEFAULT) != 0) {
        rc = -errno;
        zk__handle_close(h);
        return rc;
    }
    *out = (zk_listener *)h;
    return 0;
}

int zk_tcp_listen(const zk_addr *addr, int backlog, zk_listener **out) {
    if (addr == NULL)
        return -EINVAL;
    if (addr->u.sa.sa_family != AF_INET && addr->u.sa.sa_family != AF_INET6)
        return -EINVAL;
    return zk__listen(addr, backlog, out);
}

int zk_unix_listen(const char *path, int backlog, zk_listener **out) {
    zk_addr a;
    int rc = zk_addr_unix(path, &a);
    if (rc != 0)
        return rc;
    return zk__listen(&a, backlog, out);
}

/* Turns the accepted descriptor into a stream for the awaiting code. */
static int64_t zk__accept_finish(zk__io_op *op, int64_t res) {
    if (res < 0)
        return res;
    zk__io_handle *h;
    int rc = zk__handle_new(op->h->rt, (int)res, ZK__HANDLE_SOCKET, &h);
    if (rc != 0) {
        close((int)res);
        return rc;
    }
    h->bytestream = true; /* listeners are stream sockets */
    if (op->a.sa.addr)
        ((zk_addr *)op->a.sa.addr)->len = op->a.sa.len;
    *(zk_stream **)op->out = (zk_stream *)h;
    return 0;
}

void zk_listener_accept_future_init(zk_io_future *f, zk_listener *l,
                                    zk_stream **out, zk_addr *peer) {
    zk__io_op *op = (zk__io_op *)f;
    if (l == NULL || out == NULL) {
        zk__op_init_failed(op, -EINVAL);
        return;
    }
    zk__op_init(op, ZK__OP_ACCEPT, zk__h(l));
    *out = NULL;
    op->out = out;
    op->finish = zk__accept_finish;
    if (peer) {
        memset(peer, 0, sizeof *peer);
        op->a.sa.addr = &peer->u.ss;
        op->a.sa.len = sizeof peer->u;
    }
}

int zk_listener_accept(zk_listener *l, zk_stream **out, zk_addr *peer) {
    zk_io_future f;
    zk_listener_accept_future_init(&f, l, out, peer);
    return (int)zk_await(&f.base);
}

int zk_listener_local_addr(const zk_listener *l, zk_addr *out) {
    if (l == NULL || out == NULL)
        return -EINVAL;
    if (atomic_load(&zk__h(l)->closed))
        return -EBADF;
    memset(out, 0, sizeof *out);
    out->len = sizeof out->u;
    return getsockname(zk__h(l)->fd, &out->u.sa, &out->len) == 0 ? 0 : -errno;
}

int zk_listener_close(zk_listener *l) {
    if (l == NULL)
        return -EINVAL;
    return zk__handle_close(zk__h(l));
}
