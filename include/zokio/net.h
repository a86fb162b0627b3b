/*
 * zokio/net.h - addresses, byte streams (TCP, Unix domain sockets, pipes),
 * listeners and UDP sockets.
 *
 * Handles are created inside a runtime (from a task, or from a thread
 * driving zk_block_on) and belong to it. Blocking-style calls suspend only
 * the calling coroutine task; each has a future form for future tasks and
 * combinators (zk_io_future, zokio/io.h), and any of them takes a deadline
 * through zk_await_until()/zk_await_timeout() on its future.
 *
 * Closing: zk_*_close() closes the handle for everyone. Operations other
 * tasks have in flight on it (blocked in a call, or a future polled
 * before the close) end with -EBADF; the file descriptor itself is closed
 * once the kernel is done with all of them. The handle's memory goes with
 * the close: after zk_*_close() returned, no task may start a new call on
 * it, first-poll a future made on it, or close it again. Close every
 * handle before freeing its runtime.
 *
 * Signals: writes use MSG_NOSIGNAL, so a peer that vanished gives -EPIPE
 * or -ECONNRESET and never SIGPIPE.
 *
 * Errors common to every call below (besides those listed with it):
 * -EINVAL  a NULL handle, buffer or output pointer (a zero length is fine);
 * -EPERM   not called inside the handle's runtime (a coroutine task for
 *          blocking-style calls, a worker thread for futures), or, for
 *          constructors, outside any runtime;
 * -EBADF   the handle was closed (also: closed while the call waited);
 * -ECANCELED the calling task was aborted while it waited;
 * -ENOMEM  no memory for the handle; from a stream's reads, no memory to
 *          keep bytes the runtime had already received for it (io_uring
 *          reads ahead): bytes were lost, and every later read fails so;
 * and any error of the underlying system call, negated.
 */
#ifndef ZOKIO_NET_H
#define ZOKIO_NET_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "io.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Addresses                                                              */
/* ---------------------------------------------------------------------- */

/* A socket address (IPv4, IPv6 or Unix), a plain value. */
typedef struct zk_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage ss;
    } u;
    socklen_t len;
} zk_addr;

/*
 * Parses "a.b.c.d:port" or "[ipv6]:port" (port 0-65535; a scope such as
 * "[fe80::1%eth0]:80" is accepted). No name lookup: see zk_resolve().
 * Returns 0, or -EINVAL for NULL arguments or text that is not such an
 * address.
 */
ZK_EXTERN int zk_addr_parse(const char *text, zk_addr *out);

/* Makes a Unix domain socket address. Returns 0, -EINVAL (NULL or empty
 * path) or -ENAMETOOLONG (longer than sun_path allows). */
ZK_EXTERN int zk_addr_unix(const char *path, zk_addr *out);

/*
 * Writes `a` as text ("127.0.0.1:80", "[::1]:80", or the Unix path) into
 * `buf` of `size` bytes, NUL-terminated. Returns the length written, or
 * -EINVAL (NULL, unknown family) or -ENOSPC (`buf` too small).
 */
ZK_EXTERN int zk_addr_format(const zk_addr *a, char *buf, size_t size);

/* Returns the port of an IPv4/IPv6 address, or -EINVAL. */
ZK_EXTERN int zk_addr_port(const zk_addr *a);

/*
 * Resolves "host:port" ("localhost:80", "[::1]:80", "example.org:443")
 * into up to `max` addresses, running getaddrinfo() on the runtime's
 * blocking pool (a literal address needs no lookup). Coroutine tasks only.
 * Returns the number of addresses stored (>= 1), or:
 * -EINVAL   NULL arguments, `max` 0, no ":port" or a bad port, or
 *           brackets around something that is not an IPv6 address (with
 *           an optional "%scope": an interface name or a number), as for
 *           zk_addr_parse();
 * -ENOENT   the name does not exist (EAI_NONAME, EAI_NODATA);
 * -EAGAIN   temporary failure of name resolution (EAI_AGAIN);
 * -EIO      any other resolver failure;
 * -EPERM    not called from a coroutine task; -ECANCELED aborted.
 */
ZK_EXTERN int zk_resolve(const char *host_port, zk_addr *out, size_t max);

/* ---------------------------------------------------------------------- */
/* Streams: TCP, Unix domain sockets, pipes                               */
/* ---------------------------------------------------------------------- */

typedef struct zk_stream zk_stream;
typedef struct zk_listener zk_listener;

/*
 * Connects a TCP stream to `addr` (IPv4 or IPv6). Returns 0 and sets
 * `*out`, or -ECONNREFUSED, -ENETUNREACH, -ETIMEDOUT... (the connect(2)
 * error), -EAFNOSUPPORT for a non-IP address.
 */
ZK_EXTERN int zk_tcp_connect(const zk_addr *addr, zk_stream **out);

/* zk_tcp_connect() that gives up after `timeout` with -ETIMEDOUT (the
 * half-open socket is closed). */
ZK_EXTERN int zk_tcp_connect_timeout(const zk_addr *addr, zk_duration timeout,
                                     zk_stream **out);

/* Connects to the Unix domain stream socket at `path`. Errors as
 * zk_tcp_connect(), plus -ENOENT when nothing is bound at `path` and
 * -EAGAIN when the listener's backlog is full (Linux refuses such a
 * connection instead of letting it wait). */
ZK_EXTERN int zk_unix_connect(const char *path, zk_stream **out);

/*
 * Wraps an open descriptor (socket, pipe or FIFO; ownership passes to the
 * stream, also on failure) and makes it non-blocking. Returns 0 or -EBADF
 * (`fd` not open), -EINVAL (not a socket or pipe, or NULL `out`).
 */
ZK_EXTERN int zk_stream_from_fd(int fd, zk_stream **out);

/* Reads up to `len` bytes. Returns the number read (> 0), 0 at end of
 * stream (or for `len` 0), or a negative error (-ECONNRESET...). */
ZK_EXTERN int64_t zk_stream_read(zk_stream *s, void *buf, size_t len);

/* Writes up to `len` bytes. Returns the number written (may be less than
 * `len`), or -EPIPE / -ECONNRESET when the peer is gone, or another
 * negative error. */
ZK_EXTERN int64_t zk_stream_write(zk_stream *s, const void *buf, size_t len);

/* Writes all `len` bytes (looping over short writes). Returns 0, or the
 * first error (bytes written before it are not reported). */
ZK_EXTERN int zk_stream_write_all(zk_stream *s, const void *buf, size_t len);

/* Reads exactly `len` bytes. Returns 0, -EPIPE when the stream ends
 * first, or the first error. */
ZK_EXTERN int zk_stream_read_exact(zk_stream *s, void *buf, size_t len);

/* Scatter read / gather write over `cnt` buffers (1..IOV_MAX; else
 * -EINVAL). The iovec array must stay valid until the call returns.
 * Return as zk_stream_read() / zk_stream_write(). */
ZK_EXTERN int64_t zk_stream_readv(zk_stream *s, const struct iovec *iov,
                                  int cnt);
ZK_EXTERN int64_t zk_stream_writev(zk_stream *s, const struct iovec *iov,
                                   int cnt);

/* Shuts down reading (SHUT_RD), writing (SHUT_WR) or both (SHUT_RDWR) of a
 * socket stream; the handle stays open. Returns 0, -EINVAL (bad `how`),
 * -ENOTSOCK (a pipe), -ENOTCONN... */
ZK_EXTERN int zk_stream_shutdown(zk_stream *s, int how);

/* Closes the stream (see "Closing" above). Returns 0, or -EINVAL for
 * NULL. */
ZK_EXTERN int zk_stream_close(zk_stream *s);

/* The addresses of a socket stream. Return 0, -EINVAL, -ENOTSOCK. */
ZK_EXTERN int zk_stream_peer_addr(const zk_stream *s, zk_addr *out);
ZK_EXTERN int zk_stream_local_addr(const zk_stream *s, zk_addr *out);

/* The descriptor, for options zokio has no call for (do not close it, do
 * not make it blocking, do not read from it while io_uring reads ahead:
 * zk_builder_set_io_read_ahead()). -EINVAL for NULL. */
ZK_EXTERN int zk_stream_fd(const zk_stream *s);

/* TCP_NODELAY on or off. Returns 0, -EINVAL, or the setsockopt error
 * (-EOPNOTSUPP on a Unix socket). */
ZK_EXTERN int zk_tcp_set_nodelay(zk_stream *s, bool on);

/* SO_KEEPALIVE on or off; with `idle` > 0 also the idle time before the
 * first probe (TCP_KEEPIDLE, whole seconds, at least 1). Returns 0,
 * -EINVAL (NULL, a negative `idle`, or one longer than the kernel takes:
 * 32,767 s on Linux; the socket is then left as it was), or the
 * setsockopt error. */
ZK_EXTERN int zk_tcp_set_keepalive(zk_stream *s, bool on, zk_duration idle);

/* Future forms: output as the blocking-style call's return value. */
ZK_EXTERN void zk_stream_read_future_init(zk_io_future *f, zk_stream *s,
                                          void *buf, size_t len);
ZK_EXTERN void zk_stream_write_future_init(zk_io_future *f, zk_stream *s,
                                           const void *buf, size_t len);
ZK_EXTERN void zk_stream_readv_future_init(zk_io_future *f, zk_stream *s,
                                           const struct iovec *iov, int cnt);
ZK_EXTERN void zk_stream_writev_future_init(zk_io_future *f, zk_stream *s,
                                            const struct iovec *iov, int cnt);

/* ---------------------------------------------------------------------- */
/* Listeners                                                              */
/* ---------------------------------------------------------------------- */

/*
 * Binds a TCP listener to `addr` with SO_REUSEADDR (port 0 picks a free
 * port: see zk_listener_local_addr) and listens with `backlog` (0: 1024).
 * Returns 0, or -EINVAL (NULL, negative backlog, non-IP address),
 * -EADDRINUSE, -EACCES...
 */
ZK_EXTERN int zk_tcp_listen(const zk_addr *addr, int backlog,
                            zk_listener **out);

/* Binds and listens on a Unix domain stream socket at `path` (which must
 * not exist). Errors as zk_tcp_listen(), plus -ENAMETOOLONG. */
ZK_EXTERN int zk_unix_listen(const char *path, int backlog, zk_listener **out);

/*
 * Waits for and accepts a connection. `peer` (may be NULL) receives its
 * address. Returns 0 and sets `*out`, or a negative error; -EMFILE/-ENFILE
 * (out of descriptors) and -ECONNABORTED leave the listener usable: accept
 * again once descriptors are free.
 */
ZK_EXTERN int zk_listener_accept(zk_listener *l, zk_stream **out,
                                 zk_addr *peer);

/* Future form: output 0 with `*out` (and `*peer`) set, or the error. A
 * connection accepted by the kernel whose future is dropped before it
 * delivered it is closed. */
ZK_EXTERN void zk_listener_accept_future_init(zk_io_future *f, zk_listener *l,
                                              zk_stream **out, zk_addr *peer);

/* The bound address. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_listener_local_addr(const zk_listener *l, zk_addr *out);

/* Closes the listener (see "Closing"); a Unix listener does not remove
 * its path. Returns 0, or -EINVAL for NULL. */
ZK_EXTERN int zk_listener_close(zk_listener *l);

/* ---------------------------------------------------------------------- */
/* UDP                                                                    */
/* ---------------------------------------------------------------------- */

typedef struct zk_udp zk_udp;

/* Binds a UDP socket to `addr` (port 0: any free port). Returns 0, or
 * -EINVAL, -EADDRINUSE... */
ZK_EXTERN int zk_udp_bind(const zk_addr *addr, zk_udp **out);

/* Sets the default peer (connect(2): no packet is sent), for
 * zk_udp_send()/zk_udp_recv(). Returns 0 or the error. */
ZK_EXTERN int zk_udp_connect(zk_udp *u, const zk_addr *addr);

/* Sends one datagram to the connected peer. Returns the bytes sent, or
 * -EDESTADDRREQ (not connected), -ECONNREFUSED (an earlier datagram was
 * refused), -EMSGSIZE... */
ZK_EXTERN int64_t zk_udp_send(zk_udp *u, const void *buf, size_t len);

/* Receives one datagram (truncated to `len`). Returns its length. */
ZK_EXTERN int64_t zk_udp_recv(zk_udp *u, void *buf, size_t len);

/* Sends one datagram to `to`. Returns the bytes sent or an error. */
ZK_EXTERN int64_t zk_udp_send_to(zk_udp *u, const void *buf, size_t len,
                                 const zk_addr *to);

/* Receives one datagram and its sender (`from` may be NULL). Returns its
 * length or an error. */
ZK_EXTERN int64_t zk_udp_recv_from(zk_udp *u, void *buf, size_t len,
                                   zk_addr *from);

/* The bound address. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_udp_local_addr(const zk_udp *u, zk_addr *out);

/* Closes the socket (see "Closing"). Returns 0, or -EINVAL for NULL. */
ZK_EXTERN int zk_udp_close(zk_udp *u);

/* Future forms of recv_from / send_to; `to`/`from` must stay valid until
 * the future is dropped. */
ZK_EXTERN void zk_udp_recv_from_future_init(zk_io_future *f, zk_udp *u,
                                            void *buf, size_t len,
                                            zk_addr *from);
ZK_EXTERN void zk_udp_send_to_future_init(zk_io_future *f, zk_udp *u,
                                          const void *buf, size_t len,
                                          const zk_addr *to);

#ifdef __cplusplus
}
#endif
#endif
