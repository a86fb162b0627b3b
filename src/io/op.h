/*
 * op.h - one I/O operation (the state behind a zk_io_future) and the
 * handles operations run on.
 *
 * An operation is described once (code + arguments) and then executed the
 * backend's way: epoll tries the system call (zk__op_syscall) and waits for
 * readiness when it would block; io_uring does the same for sockets and
 * pipes (the readiness wait is a poll on the ring; stream reads come from
 * its multishot receive), and for files, paths and connect prepares the
 * request itself and waits for its completion; file operations on epoll
 * run the system call on the blocking pool.
 */
#ifndef ZK__IO_OP_H
#define ZK__IO_OP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "io/io.h"

struct zk__task;

typedef enum zk__op_code {
    /* On handles. */
    ZK__OP_READ,    /* read(2), or pread(2) with off >= 0 */
    ZK__OP_WRITE,   /* write(2), or pwrite(2) with off >= 0 */
    ZK__OP_READV,   /* readv(2) / preadv(2) */
    ZK__OP_WRITEV,  /* writev(2) / pwritev(2) */
    ZK__OP_RECV,    /* recv(2) */
    ZK__OP_SEND,    /* send(2) with MSG_NOSIGNAL */
    ZK__OP_RECVMSG, /* recvmsg(2) */
    ZK__OP_SENDMSG, /* sendmsg(2) with MSG_NOSIGNAL */
    ZK__OP_ACCEPT,  /* accept4(2): result is the new descriptor */
    ZK__OP_CONNECT, /* connect(2) */
    ZK__OP_POLL_IN, /* waits until readable (pidfd, signal pipe) */
    ZK__OP_FSYNC,   /* fsync(2) / fdatasync(2) */
    /* On paths (no handle). */
    ZK__OP_OPENAT,   /* openat(2): result is the new descriptor */
    ZK__OP_STATX,    /* statx(2) */
    ZK__OP_RENAMEAT, /* renameat(2) */
    ZK__OP_UNLINKAT, /* unlinkat(2) */
    ZK__OP_MKDIRAT,  /* mkdirat(2) */
} zk__op_code;

/* What a handle holds: decides the epoll registration and, for files,
 * that epoll runs operations on the blocking pool. */
typedef enum zk__handle_kind {
    ZK__HANDLE_SOCKET,
    ZK__HANDLE_PIPE,
    ZK__HANDLE_FILE,
} zk__handle_kind;

struct zk__io_handle {
    int fd;
    zk__handle_kind kind;
    struct zk_runtime *rt;
    /* One for the user, one per operation in flight. */
    _Atomic uint32_t refs;
    _Atomic bool closed;
    /* A byte stream (TCP, Unix stream socket, pipe): a read or write that
     * moves less than asked found the kernel's buffer empty or full, which
     * the epoll backend uses to skip the call that would fail next. False
     * for datagram sockets, where a short read says nothing of the next. */
    bool bytestream;
    /* A file without a position (FIFO, terminal): lseek(2) gave ESPIPE
     * when it was opened. Reads and writes at an offset are refused with
     * -ESPIPE before they reach either backend, as pread(2) does: the
     * ring's read would ignore the offset. */
    bool unseekable;
    /* The worker it belongs to, homes given in turn (zk__handle_new): on
     * io_uring its multishot receive runs there (epoll's workers share one
     * instance and do not use it). */
    size_t home;
    /* io_uring, split rings (uring.h): the socket rings that may hold
     * requests on it, bit i for worker i (bit 63 for any past 62), so
     * that a close asks those only. */
    _Atomic uint64_t rings;
    /* Backend data: the epoll registration (epoll.c), io_uring's receive
     * queue (uring_rx.c). */
    void *reg;
};

enum zk__op_state {
    ZK__OPS_INIT,    /* not started */
    ZK__OPS_KERNEL,  /* io_uring: prepared or submitted */
    ZK__OPS_WAITING, /* epoll: waiting for readiness or the pool */
    ZK__OPS_DONE,    /* result delivered to the awaiting code */
};

struct zk__io_op {
    zk_future base;
    uint8_t code;
    uint8_t state;
    bool connect_started; /* epoll connect: connect(2) already called */
    bool connect_full;    /* epoll connect: its -EAGAIN is the result */
    bool queued;          /* epoll: on the registration's waiter list */
    bool holds_ref;       /* holds a reference to `h` (from first poll) */
    bool awaits_ready;    /* io_uring: the ring waits for readiness (a poll) */
    /* io_uring open: blocking, in the kernel's workers. */
    uint8_t may_block : 1;
    /* io_uring: how often the kernel ended it unasked and it was made
     * again (zk__uring_ended_unasked), up to ZK__UNASKED_RETRIES. */
    uint8_t unasked : 2;
    int32_t res;
    int fd; /* the descriptor, or the directory for path operations */
    zk__io_handle *h;
    zk__io_worker *iow; /* where it was submitted or registered */
    int64_t (*finish)(zk__io_op *op, int64_t res);
    /* The arguments come before the fields only some operations use: a
     * read or write on a socket reads everything it needs from the first
     * 64 bytes (up to a.rw.len): one cache line when the operation starts
     * on one, as it does when a blocking-style stream call builds it
     * (zk__await_made). That is a frame that went cold while its task
     * waited, and on a server with many connections each line is a miss. */
    union {
        struct {
            void *buf;
            size_t len;
            int64_t off;
        } rw;
        struct {
            const struct iovec *iov;
            int cnt;
            int64_t off;
        } v;
        struct {
            struct msghdr msg;
            struct iovec iov;
        } m;
        struct {
            struct sockaddr_storage *addr; /* accept: peer out; connect: in */
            socklen_t len;
        } sa;
        struct {
            const char *path;
            const char *path2;
            int flags;
            unsigned mode;
            void *statx;
        } p;
        struct {
            bool datasync;
        } sync;
    } a;
    /* io_uring: set (release) when the completion was recorded. */
    _Atomic uint32_t done;
    uint32_t slot;
    zk_waker waker;            /* io_uring; epoll waiters after the first */
    zk__io_op *next, *prev;    /* epoll waiter list */
    struct zk__task *blocking; /* epoll file operation on the pool */
    /* Accept: where the new stream goes (finish hook). */
    void *out;
};

_Static_assert(offsetof(zk__io_op, a.rw.len) + sizeof(size_t) <= 64,
               "a socket read's fields of the operation must share a line");
_Static_assert(sizeof(zk__io_op) <= sizeof(zk_io_future),
               "zk_io_future too small for zk__io_op");

/* True when a read or write on a byte stream moved less than it asked
 * (`res` bytes): the kernel's buffer was empty (read) or full (write)
 * right after it. */
bool zk__op_drained(const zk__io_op *op, int64_t res);

/* Initialises `op` as an unstarted future on handle `h` (NULL for path
 * operations). */
void zk__op_init(zk__io_op *op, zk__op_code code, zk__io_handle *h);

/* Initialises `op` as a future that is ready at once with `err` (bad
 * arguments given to an init function). */
void zk__op_init_failed(zk__io_op *op, int err);

/* Executes the operation's system call once, non-blocking for sockets and
 * pipes; returns the result or -errno. */
int64_t zk__op_syscall(zk__io_op *op);

/* True for a send on a socket (SEND, SENDMSG, WRITEV on a socket). */
bool zk__op_is_socket_send(const zk__io_op *op);

/* Executes a socket send (zk__op_is_socket_send) once without blocking,
 * whatever the descriptor's mode (MSG_DONTWAIT); returns the result or
 * -errno: -EAGAIN when the socket's buffer is full. */
int64_t zk__op_send_now(zk__io_op *op);

/* True when the operation's result is a descriptor it made (accept,
 * open); not while io_uring waits for its readiness (the result is then
 * the poll's events). */
bool zk__op_makes_fd(const zk__io_op *op);

/* True for operations that put data into the descriptor (they wait for
 * POLLOUT; the others for POLLIN). */
bool zk__op_writes(const zk__io_op *op);

/* True for operations epoll cannot wait for (files, paths): they run on
 * the blocking pool. */
bool zk__op_needs_pool(const zk__io_op *op);

/* Delivers a finished operation's result: converts it (finish hook),
 * records it and releases what the future held. */
int64_t zk__op_complete(zk__io_op *op, int64_t res);

/* Runs `op` to completion from a coroutine task (the blocking-style
 * form). */
int64_t zk__op_await(zk__io_op *op);

/* Handles. */
int zk__handle_new(struct zk_runtime *rt, int fd, zk__handle_kind kind,
                   zk__io_handle **out);
static inline void zk__handle_ref(zk__io_handle *h) {
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}
void zk__handle_unref(zk__io_handle *h);
/* Closes for the user: operations in flight end with -EBADF, later ones
 * are refused; the descriptor goes with the last reference. -EBADF if it
 * was already closed. */
int zk__handle_close(zk__io_handle *h);

#endif
