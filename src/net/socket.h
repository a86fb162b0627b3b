/*
 * socket.h - what the stream, listener and UDP files share: the public
 * handle types are the I/O driver's handles.
 */
#ifndef ZK__NET_SOCKET_H
#define ZK__NET_SOCKET_H

#include "io/op.h"
#include "zokio/net.h"

static inline zk__io_handle *zk__h(const void *p) {
    return (zk__io_handle *)p;
}

/* Makes a non-blocking, close-on-exec socket of `addr`'s family wrapped
 * in a handle of the current runtime. */
int zk__socket_new(int family, int type, zk__io_handle **out);

#endif
