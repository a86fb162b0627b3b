/*
 * zokio/signal.h - awaiting Unix signals (SIGINT, SIGTERM, SIGHUP,
 * SIGUSR1...) from tasks, and a ctrl-c helper for graceful shutdown.
 *
 * A listener (zk_signal) counts the deliveries of one signal to the
 * process from the moment it was made; zk_signal_recv() parks the calling
 * task until there is at least one it has not reported yet. Every listener
 * sees every delivery: two listeners of SIGTERM, in one runtime or in two,
 * both wake. A delivery that comes while nobody waits is kept: the next
 * recv reports it at once. The kernel merges deliveries of a standard
 * signal that arrive while one is still pending, so the counts are a lower
 * bound of how often the signal was sent.
 *
 * How: the first listener of a signal installs a process-wide handler
 * (sigaction with SA_RESTART) that only bumps a counter and writes to an
 * eventfd of each listener; recv waits for its eventfd through the
 * runtime's I/O driver (io_uring or epoll), so a wait parks only the task.
 * A handler that was installed before (a function, not SIG_DFL/SIG_IGN)
 * is still called after zokio's. When the last listener of a signal
 * closes, the disposition that was in place before the first one (the
 * default action, ignoring, or that handler) is restored, unless someone
 * else has replaced zokio's handler since. So after zk_ctrl_c() returned,
 * a second ctrl-c ends the program as usual. Each listener holds one file
 * descriptor.
 *
 * Signals cannot be listened for: SIGKILL and SIGSTOP (the kernel does not
 * let them be caught), SIGSEGV, SIGBUS, SIGILL, SIGFPE (faults: zokio
 * reports stack overflows through SIGSEGV/SIGBUS) and numbers outside
 * 1..NSIG-1. SIGPIPE raised by zokio's own writes is blocked in the threads
 * that run tasks and is not seen by listeners.
 *
 * ThreadSanitizer builds: TSan runs a handler only when the thread the
 * kernel picked next calls a function TSan intercepts. A thread that
 * sleeps elsewhere (the main thread waiting in zk_block_on() for a
 * multi-thread runtime) holds a delivery back until it wakes; block the
 * signals in such threads (after building the runtime, whose workers
 * inherit the mask of the thread that built it) so the kernel picks a
 * worker.
 *
 * Errors common to every call (besides those listed with it):
 * -EINVAL  a NULL listener or output pointer;
 * -EPERM   not inside the listener's runtime (a coroutine task for
 *          blocking-style calls, a worker thread for futures), or, for
 *          zk_signal_listen(), outside any runtime;
 * -ECANCELED the calling task was aborted while it waited.
 */
#ifndef ZOKIO_SIGNAL_H
#define ZOKIO_SIGNAL_H

#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A listener of one signal. */
typedef struct zk_signal zk_signal;

/*
 * Starts listening for `signo` in the caller's runtime (from a task or a
 * thread driving zk_block_on). Deliveries from the return of this call on
 * are counted for the new listener. Returns 0 and sets `*out`, or:
 * -EINVAL  `out` is NULL, or `signo` cannot be listened for (see above);
 * -EPERM   not called inside a runtime;
 * -EMFILE, -ENFILE  no descriptor for its eventfd;
 * -ENOMEM  no memory;
 * or the error of sigaction(2), negated.
 * On error nothing was installed.
 */
ZK_EXTERN int zk_signal_listen(int signo, zk_signal **out);

/*
 * Waits (parking the calling coroutine task) until the signal was
 * delivered at least once since the listener was made or since the
 * previous recv returned. Returns the number of deliveries it reports
 * (>= 1), or:
 * -EBADF   the listener was closed (also: closed while this call waited);
 * -EBUSY   another recv is already waiting on this listener (one at a
 *          time: several tasks wanting the signal each make a listener).
 * A deadline: zk_signal_recv_future_init() and zk_await_until().
 */
ZK_EXTERN int64_t zk_signal_recv(zk_signal *s);

/*
 * The future form of zk_signal_recv() (and of zk_ctrl_c()), caller-owned,
 * no allocation. Initialise it with zk_signal_recv_future_init() or
 * zk_ctrl_c_future_init(); after its first poll it must not move until it
 * is dropped. Fields are private.
 */
typedef struct zk_signal_future {
    zk_future base;
    zk_signal *_sig;
    int _state;
    int _err;
    bool _owns;
    zk_io_future _poll;
} zk_signal_future;

/*
 * Initialises `f` to receive from `s`: output as zk_signal_recv()'s
 * return value (a NULL `s` gives -EINVAL). Dropping it before it is ready
 * reports nothing: the deliveries stay for the next recv.
 */
ZK_EXTERN void zk_signal_recv_future_init(zk_signal_future *f, zk_signal *s);

/*
 * Stops listening: a recv waiting on the listener returns -EBADF, and the
 * listener's memory goes with the last of them. Returns 0, or -EINVAL for
 * NULL. The last listener of a signal restores its previous disposition
 * (see above). After this call began, the listener must not be passed to
 * any call again, a second close included (as with free(): its memory may
 * be gone); a second close that finds the memory still held by a waiting
 * recv returns -EBADF, but that is a detection of the mistake, not a
 * promise.
 */
ZK_EXTERN int zk_signal_close(zk_signal *s);

/*
 * Waits for the next SIGINT (ctrl-c in a terminal): listens, receives one
 * delivery and closes the listener. Only SIGINTs delivered after the call
 * began count. Returns 0, or the errors of zk_signal_listen() and
 * zk_signal_recv() (-ECANCELED when the task was aborted...).
 */
ZK_EXTERN int zk_ctrl_c(void);

/*
 * The future form of zk_ctrl_c(): starts listening for SIGINT at once
 * (so a SIGINT delivered after this call counts even before the first
 * poll) and is ready with output 0 after a delivery; dropping it closes
 * the listener. Call it inside a runtime; if it cannot listen, the
 * future's output is the error of zk_signal_listen(). The future must be
 * dropped (zk_await() does it) even if it is never polled.
 */
ZK_EXTERN void zk_ctrl_c_future_init(zk_signal_future *f);

#ifdef __cplusplus
}
#endif
#endif
