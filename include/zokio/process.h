/*
 * zokio/process.h - child processes: spawn, talk to them through pipes,
 * await their exit, signal them.
 *
 * A child is spawned from a coroutine task and belongs to that task's
 * runtime. Its piped standard streams are ordinary zk_stream handles
 * (zokio/net.h), so reading and writing them parks only the calling task.
 * Awaiting its exit waits for a pidfd (Linux 5.3) to become readable
 * through the runtime's I/O driver, then reaps it with waitid(2): no
 * SIGCHLD handler, no polling. Where pidfd_open() is missing (old kernels,
 * some emulators), one thread of the runtime's blocking pool waits for each
 * running child instead (the environment variable ZOKIO_NO_PIDFD=1 forces
 * this, for tests). There, running children count against the pool's
 * bound (zk_builder_set_blocking_threads()): with as many children running
 * as the bound allows threads, the exit of one more is seen only when a
 * thread frees up, and other blocking calls (file calls on epoll, DNS)
 * wait behind them. Raise the bound for many long-lived children.
 *
 * Descriptors: every descriptor zokio makes is close-on-exec, and the
 * child marks every descriptor above 2 close-on-exec before it runs the
 * program (close_range(2), Linux 5.11), so the program starts with only
 * its standard input, output and error, even when the parent has
 * descriptors without FD_CLOEXEC. The child's signal mask is emptied
 * (zokio's threads block SIGPIPE; the program gets none of that), and a
 * signal zokio listens for (zokio/signal.h) gets the disposition it had
 * before zokio's handler, as exec would give any caught signal.
 *
 * Lifetime: zk_child_free() releases the handle. A child still running
 * then is killed (SIGKILL) and reaped in the background by a task of its
 * runtime, so a child never outlives its handle and never stays a zombie:
 * to let a program run on, wait for it in a task of its own. Free every
 * child before freeing its runtime (whose shutdown finishes those
 * background reaps). If the program sets SIGCHLD to SIG_IGN, the kernel
 * reaps children itself and waits report -ECHILD.
 *
 * Errors common to every call (besides those listed with it):
 * -EINVAL  a NULL child or pointer argument;
 * -EPERM   not inside the child's runtime (a coroutine task for
 *          blocking-style calls, a worker thread for futures);
 * -ECANCELED the calling task was aborted while it waited.
 */
#ifndef ZOKIO_PROCESS_H
#define ZOKIO_PROCESS_H

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A spawned child process. */
typedef struct zk_child zk_child;

/* What a standard stream of the child is connected to. */
typedef enum zk_stdio {
    ZK_STDIO_INHERIT = 0, /* the parent's (the default) */
    ZK_STDIO_NULL = 1,    /* /dev/null */
    ZK_STDIO_PIPE = 2     /* a pipe to the parent: zk_child_take_std*() */
} zk_stdio;

/* Options for zk_process_spawn(). Zero-initialise, then set what you
 * need: all-zero inherits the environment, directory and streams. */
typedef struct zk_process_opts {
    /* "NAME=value" strings, NULL-terminated, that replace the environment;
     * NULL keeps the parent's. The program itself is looked up in the
     * parent's PATH either way. */
    const char *const *env;
    /* The child's working directory; NULL keeps the parent's. */
    const char *cwd;
    zk_stdio stdin_mode;
    zk_stdio stdout_mode;
    zk_stdio stderr_mode;
} zk_process_opts;

/*
 * Spawns `argv[0]` with arguments `argv` (NULL-terminated; a name without
 * '/' is looked up in PATH as execvp(3) does) and options `opts` (NULL:
 * all defaults). Waits, parking the calling coroutine task, until the
 * program has started (exec succeeded) or failed to. Returns 0 and sets
 * `*out`, or:
 * -EINVAL  `argv`, `argv[0]` or `out` is NULL, or a stdio mode is not a
 *          zk_stdio value;
 * -EPERM   not called from a coroutine task;
 * -ENOENT  the program (or `cwd`) does not exist; -EACCES, -ENOEXEC...:
 *          the error of execve(2) or chdir(2) in the child, which exited
 *          and was reaped;
 * -EAGAIN, -ENOMEM  fork(2) failed; -EMFILE, -ENFILE: no descriptor for
 *          the pipes;
 * -ECANCELED the task was aborted while the program was starting (the
 *          child was killed and is reaped in the background).
 * On error no child is left running and `*out` is unchanged.
 */
ZK_EXTERN int zk_process_spawn(const char *const *argv,
                               const zk_process_opts *opts, zk_child **out);

/* Returns the child's process id, or -EINVAL for NULL. Once the child was
 * waited for, the id may belong to another process. */
ZK_EXTERN int zk_child_pid(const zk_child *c);

/*
 * Take the parent's end of a piped standard stream: the caller owns the
 * returned stream and closes it with zk_stream_close() (closing the stdin
 * stream is how the child sees the end of its input). Each returns NULL
 * when the stream was not ZK_STDIO_PIPE, was taken already, or `c` is
 * NULL. Streams not taken are closed by zk_child_free().
 */
ZK_EXTERN zk_stream *zk_child_take_stdin(zk_child *c);
ZK_EXTERN zk_stream *zk_child_take_stdout(zk_child *c);
ZK_EXTERN zk_stream *zk_child_take_stderr(zk_child *c);

/* How a child ended. */
typedef struct zk_exit_status {
    bool exited;      /* true: it called exit(code); false: a signal */
    int code;         /* the exit code (0-255) when `exited`, else -1 */
    int signal;       /* the signal that killed it when !`exited`, else 0 */
    bool core_dumped; /* killed, and the kernel wrote a core dump */
} zk_exit_status;

/*
 * Waits, parking the calling coroutine task, until the child has exited,
 * reaps it and stores how it ended in `*status` (may be NULL). Waiting
 * again (or from several tasks at once) gives the same status. Returns 0,
 * or:
 * -EBADF   zk_child_free() was called meanwhile;
 * -ECHILD  the child was reaped by someone else (a waitpid(-1) of the
 *          program, or SIGCHLD set to SIG_IGN).
 * A deadline: zk_child_wait_future_init() and zk_await_until(); a wait
 * that times out leaves the child running.
 */
ZK_EXTERN int zk_child_wait(zk_child *c, zk_exit_status *status);

/* The future form of zk_child_wait(), caller-owned, no allocation; after
 * its first poll it must not move until it is dropped. Fields are
 * private. */
typedef struct zk_child_wait_future {
    zk_future base;
    zk_child *_child;
    zk_exit_status *_status;
    int _state;
    zk_io_future _poll;
} zk_child_wait_future;

/* Initialises `f` to wait for `c`: output as zk_child_wait()'s return
 * value (a NULL `c` gives -EINVAL); `status` (may be NULL) must stay valid
 * until the future is dropped. */
ZK_EXTERN void zk_child_wait_future_init(zk_child_wait_future *f, zk_child *c,
                                         zk_exit_status *status);

/*
 * Does not wait: if the child has exited, reaps it, stores its status in
 * `*status` (may be NULL) and returns 1; returns 0 while it runs. Any
 * thread. Also -ECHILD (see zk_child_wait()), -EBADF after free. Without
 * pidfds, a child that just exited may read as running for a moment.
 */
ZK_EXTERN int zk_child_try_wait(zk_child *c, zk_exit_status *status);

/*
 * Sends signal `signo` to the child (0 only checks that it runs). Safe
 * against process-id reuse: a child that was reaped is never signalled.
 * Any thread. Returns 0, or:
 * -EINVAL  `signo` is not a signal number;
 * -ESRCH   the child has already exited (whether or not it was waited
 *          for); a child exiting at the same moment may still give 0;
 * -EPERM   the kernel refused (the child changed its credentials).
 */
ZK_EXTERN int zk_child_kill(zk_child *c, int signo);

/*
 * Releases the child's handle: closes the streams not taken, kills a
 * child that still runs (SIGKILL) and reaps it in the background, in a
 * task of the child's runtime (see "Lifetime"). A wait in progress on it
 * returns -EBADF (once the killed child has exited). Does not wait, except
 * when the runtime is already shutting down: then it reaps the killed
 * child itself. NULL is a no-op. After it returned, `c` must not be used.
 */
ZK_EXTERN void zk_child_free(zk_child *c);

#ifdef __cplusplus
}
#endif
#endif
