/*
 * zokio/io.h - the I/O driver: which kernel interface a runtime uses, and
 * the future type of every I/O operation.
 *
 * Two backends behave the same as seen from this API:
 * - io_uring (through liburing): one ring per worker; operations are
 *   submitted in batches and complete in the kernel (completion-based).
 *   A stream's receives run on its home ring; one worker in 4 (rounded
 *   up) is a home, and homes take streams in turn (see
 *   zk_builder_set_io_homes()).
 * - epoll: one epoll instance shared by the workers; operations are
 *   tried, and retried when the kernel reports readiness. File operations,
 *   which epoll cannot wait for, run on the blocking pool.
 * On io_uring a request that the kernel ends though nothing cancelled it
 * (the thread that submitted it exited, or a dup of the descriptor was
 * closed) is made again; one the kernel keeps ending (it cannot start its
 * worker threads: RLIMIT_NPROC or pids.max reached) fails with -EAGAIN
 * after a few attempts.
 * A runtime picks io_uring when the kernel allows it and epoll otherwise
 * (seccomp filters, /proc/sys/kernel/io_uring_disabled, kernels older than
 * 6.0, which lack the synchronous cancellation zokio relies on), unless the
 * builder or the ZOKIO_IO_BACKEND environment variable ("io_uring" or
 * "epoll") asks for one; the builder wins over the environment.
 *
 * Every I/O call has a blocking-style form for coroutine tasks, which
 * suspends only the calling task, and a future form (a zk_io_future
 * initialised by a *_future_init function) for future tasks and
 * combinators. A deadline on any of them: zk_await_until(&f.base, when).
 * An operation whose future is dropped before it finished (task aborted,
 * timeout, a select that lost) is cancelled in the kernel before the drop
 * returns: its buffer is never written after that. On sockets and pipes a
 * dropped call also took and wrote nothing, on both backends: no bytes,
 * datagram or connection are lost to it (io_uring waits for their
 * readiness and makes the call in the task, as epoll does). A file
 * operation at an offset may have been done by the kernel when it was
 * dropped.
 */
#ifndef ZOKIO_IO_H
#define ZOKIO_IO_H

#include "future.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum zk_io_backend {
    ZK_IO_AUTO = 0,     /* io_uring when available, else epoll */
    ZK_IO_IO_URING = 1, /* io_uring, or zk_builder_build() fails */
    ZK_IO_EPOLL = 2     /* epoll */
} zk_io_backend;

/*
 * Chooses the I/O backend of runtimes built from `b` (default ZK_IO_AUTO,
 * which also honours ZOKIO_IO_BACKEND). zk_builder_build() returns
 * -EINVAL for a value outside the enum and -ENOSYS when ZK_IO_IO_URING is
 * asked for and the kernel (or this build) does not allow it.
 */
ZK_EXTERN void zk_builder_set_io_backend(zk_builder *b, zk_io_backend backend);

/*
 * Read-ahead on stream sockets, io_uring only (default on; epoll never
 * reads ahead). On, the reads of a TCP or Unix stream socket are served by
 * one multishot receive into the worker's buffers: data is received as it
 * arrives, before the next read asks for it, up to 64 KiB per stream
 * (beyond that it waits in the socket, under TCP's flow control), and a
 * read that finds data waiting returns without a system call. A read that
 * times out or is cancelled loses nothing: the data stays for the next
 * read. Turn it off when something other than zokio's reads takes data
 * from the descriptor (zk_stream_fd() handed to another library or
 * process): bytes already read ahead would be missing there. Without a
 * choice here, ZOKIO_IO_READ_AHEAD=0 in the environment turns it off.
 */
ZK_EXTERN void zk_builder_set_io_read_ahead(zk_builder *b, bool on);

/*
 * io_uring only: how many workers are homes, whose rings receive for the
 * streams, sockets and pipes given to them in turn (0, the default: one
 * worker in 4, rounded up, so one home for up to 4 workers). A home reaps
 * the completions of all its handles and runs the batches of tasks they
 * wake that it can run soon itself, leaving longer ones to the other
 * workers: workers sleep and wake far less than when each reaps its own
 * share, which on a machine whose cores the runtime shares with other
 * work raised an echo server's throughput by 7-29 % (bench/README.md,
 * "One home ring"). The price: a task that runs long on a home without
 * yielding (a computation that belongs on zk_spawn_blocking()) holds back
 * every receive of that home's handles until it yields, since no other
 * worker can reap its ring; with every worker a home (`homes` equal to
 * the workers) it holds back only that worker's share. zk_builder_build()
 * returns -EINVAL when `homes` exceeds the workers. Ignored on epoll,
 * whose workers share one instance.
 */
ZK_EXTERN void zk_builder_set_io_homes(zk_builder *b, size_t homes);

/* Returns the backend `rt` runs: ZK_IO_IO_URING or ZK_IO_EPOLL (never
 * ZK_IO_AUTO); ZK_IO_AUTO for NULL. */
ZK_EXTERN zk_io_backend zk_runtime_io_backend(const zk_runtime *rt);

/* Returns "io_uring", "epoll" or "auto" for a backend value, "?" for
 * anything else. */
ZK_EXTERN const char *zk_io_backend_name(zk_io_backend backend);

/*
 * The future of one I/O operation. Its state (and the kernel's reference
 * to it) lives inside this struct: no allocation per operation. Initialise
 * it with one of the *_future_init functions (zokio/net.h, zokio/fs.h),
 * then zk_await() it, or poll it from a future and drop it with
 * zk_future_drop(). Output: what the blocking-style form returns.
 * After the first poll it must not move until it is dropped.
 */
typedef struct zk_io_future {
    zk_future base;
    uint64_t _opaque[30];
} zk_io_future;

#ifdef __cplusplus
}
#endif
#endif
