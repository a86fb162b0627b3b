/*
 * process.c - child processes (zokio/process.h).
 *
 * Spawning: fork(2), then in the child only async-signal-safe calls (the
 * parent may have other threads, whose locks the child inherits in
 * whatever state they were): dup2 the standard streams, chdir, mark every
 * descriptor above 2 close-on-exec, reset zokio's signal handlers and the
 * signal mask, execvpe. A close-on-exec pipe reports an exec failure's
 * errno to the parent (end of file means the exec happened), which reads
 * it through the I/O driver, so the spawning task parks while the program
 * starts. fork rather than posix_spawn: glibc's posix_spawn learns about
 * exec failures through memory shared with a vfork-like child, which
 * qemu-user does not share, so it would report a missing program as a
 * successful spawn there.
 *
 * Waiting: a pidfd (or, without pidfds, an eventfd that a blocking-pool
 * thread writes once waitid(WNOWAIT) saw the exit) is awaited with the
 * driver's readiness operation; then waitid(WNOHANG) reaps the child.
 *
 * Reaping and signalling are serialised by the child's lock, so a kill
 * never reaches a process id that was reaped (and maybe reused): kill(2)
 * runs under the lock only while the child is not reaped. In pool mode a
 * waiter reaps only after the pool thread's waitid(WNOWAIT) returned
 * (`exit_seen`), so that thread never waits on an id that was given back.
 * The pool thread itself never reaps. Once the handle is freed, only the
 * reaper task (see below) reaps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/op.h"
#include "runtime/runtime.h"
#include "runtime/task.h"
#include "signal/internal.h"
#include "zokio/process.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

struct zk_child {
    zk_runtime *rt;
    pid_t pid;
    /* Readable once the child exited: its pidfd, or (pool mode) an
     * eventfd the pool thread writes. The child holds a reference of its
     * own besides the user's (dropped by zk_child_free). */
    zk__io_handle *exit_h;
    bool use_pidfd;
    /* Pool mode: the blocking-pool task waiting for the exit (joined by
     * the reaper, or detached once the child was reaped). */
    zk_task *pool_task;
    zk_stream *stdio[3]; /* not taken yet */
    /* The user's (handed to the reaper by zk_child_free), one per wait in
     * progress, and the pool task's. */
    _Atomic uint32_t refs;

    pthread_mutex_t lock;
    /* Under `lock`. */
    bool reaped;
    bool freed;
    bool exit_seen; /* pool mode: the pool thread saw the exit */
    int wait_err;   /* waitid failed (-ECHILD): reported by every wait */
    zk_exit_status status;
};

static void zk__child_unref(zk_child *c) {
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        zk__handle_unref(c->exit_h);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
}

static void zk__child_ref(zk_child *c) {
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void zk__status_from(zk_exit_status *st, const siginfo_t *si) {
    memset(st, 0, sizeof *st);
    if (si->si_code == CLD_EXITED) {
        st->exited = true;
        st->code = si->si_status;
    } else {
        st->code = -1;
        st->signal = si->si_status;
        st->core_dumped = si->si_code == CLD_DUMPED;
    }
}

/* Reaps the child if it has exited. Returns 1 (reaped, now or before), 0
 * (running, or not known to have exited in pool mode) or the waitid
 * error. Under the lock. */
static int zk__child_reap_locked(zk_child *c) {
    if (c->reaped)
        return 1;
    if (c->wait_err != 0)
        return c->wait_err;
    if (!c->use_pidfd && !c->exit_seen)
        return 0;
    siginfo_t si;
    int r;
    do {
        memset(&si, 0, sizeof si);
        r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        c->wait_err = -errno;
        return c->wait_err;
    }
    if (si.si_pid == 0)
        return 0;
    zk__status_from(&c->status, &si);
    c->reaped = true;
    return 1;
}

/* Blocks until the child exited and reaps it. Only for a child that was
 * killed (it exits at once) and that no pool task waits for, when there is
 * no runtime left to wait in. */
static void zk__child_reap_blocking(zk_child *c) {
    siginfo_t si;
    int r;
    do {
        memset(&si, 0, sizeof si);
        r = waitid(P_PID, (id_t)c->pid, &si, WEXITED);
    } while (r < 0 && errno == EINTR);
    pthread_mutex_lock(&c->lock);
    if (r == 0)
        zk__status_from(&c->status, &si);
    c->reaped = true;
    pthread_mutex_unlock(&c->lock);
}

/* Pool mode: on the blocking pool, waits (without reaping) for the exit,
 * then makes the exit handle readable. Holds a reference. */
static int64_t zk__child_pool_wait(void *arg) {
    zk_child *c = arg;
    siginfo_t si;
    int r;
    do {
        memset(&si, 0, sizeof si);
        r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT);
    } while (r < 0 && errno == EINTR);
    pthread_mutex_lock(&c->lock);
    c->exit_seen = true;
    if (r < 0 && c->wait_err == 0)
        c->wait_err = -errno;
    pthread_mutex_unlock(&c->lock);
    uint64_t one = 1;
    ssize_t w = write(c->exit_h->fd, &one, sizeof one);
    (void)w; /* an eventfd write of 1 cannot fail here */
    zk__child_unref(c);
    return 0;
}

/* Pool mode: blocks until the pool task has finished (it ran, or was
 * cancelled before it started) and releases its handle. */
static void zk__child_pool_join_blocking(zk_child *c) {
    int64_t res;
    bool cancelled;
    zk__task_join_blocking((zk__task *)c->pool_task, &res, &cancelled);
    c->pool_task = NULL;
}

/* ---------------------------------------------------------------------- */
/* The reaper of a freed child                                            */
/* ---------------------------------------------------------------------- */

/* A future task that owns a freed child that was still running (it was
 * killed): it waits for the exit like a wait does (pidfd readiness, or in
 * pool mode the pool task's end), reaps, closes the exit handle and drops
 * the last reference. If it is cancelled instead (runtime shutdown), its
 * drop reaps with a blocking wait: the child was killed, so that is short.
 * Either way the child is reaped before its runtime's shutdown ends. */
typedef struct zk__reaper {
    zk_future base;
    zk_child *c;
    bool polling;
    bool finished;
    zk_io_future poll;
} zk__reaper;

/* Reaps for good (blocking if it must) and lets the child go. */
static void zk__reaper_finish(zk__reaper *r) {
    zk_child *c = r->c;
    if (r->polling) {
        zk_future_drop(&r->poll.base);
        r->polling = false;
    }
    if (c->pool_task != NULL)
        zk__child_pool_join_blocking(c);
    pthread_mutex_lock(&c->lock);
    int rc = zk__child_reap_locked(c);
    pthread_mutex_unlock(&c->lock);
    if (rc == 0) /* pool task cancelled before it ran, or no pidfd wait */
        zk__child_reap_blocking(c);
    zk__handle_close(c->exit_h);
    zk__child_unref(c);
    r->finished = true;
}

static zk_poll zk__reaper_poll(zk_future *base, zk_context *cx, int64_t *out) {
    zk__reaper *r = (zk__reaper *)base;
    zk_child *c = r->c;
    *out = 0;
    if (r->finished)
        return ZK_READY;
    if (!c->use_pidfd) {
        /* The pool task ends once the child exited (or never ran). */
        if (!zk__task_join_poll((zk__task *)c->pool_task, zk_context_waker(cx)))
            return ZK_PENDING;
        zk__reaper_finish(r);
        return ZK_READY;
    }
    for (;;) {
        if (r->polling) {
            int64_t res;
            if (zk_future_poll(&r->poll.base, cx, &res) == ZK_PENDING)
                return ZK_PENDING;
            zk_future_drop(&r->poll.base);
            r->polling = false;
            if (res < 0)
                break; /* cannot wait here: reap blocking */
        }
        pthread_mutex_lock(&c->lock);
        int rc = zk__child_reap_locked(c);
        pthread_mutex_unlock(&c->lock);
        if (rc != 0)
            break;
        zk__op_init((zk__io_op *)&r->poll, ZK__OP_POLL_IN, c->exit_h);
        r->polling = true;
    }
    zk__reaper_finish(r);
    return ZK_READY;
}

static void zk__reaper_drop(zk_future *base) {
    zk__reaper *r = (zk__reaper *)base;
    if (!r->finished)
        zk__reaper_finish(r);
}

static const zk_future_ops zk__reaper_ops = {zk__reaper_poll, zk__reaper_drop};

/* ---------------------------------------------------------------------- */
/* Spawning                                                               */
/* ---------------------------------------------------------------------- */

/* Moves a descriptor above 2, so that the child's dup2 onto 0-2 can never
 * overwrite a descriptor it still has to dup (the parent may run with 0-2
 * closed). Keeps close-on-exec. */
static int zk__fd_above_stdio(int *fd) {
    if (*fd > 2)
        return 0;
    int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (n < 0)
        return -errno;
    close(*fd);
    *fd = n;
    return 0;
}

/* The child after fork: async-signal-safe calls only. Never returns. */
static __attribute__((noreturn)) void
zk__child_exec(const char *const *argv, char *const *envp, const char *cwd,
               const int child_fd[3], int errfd) {
    int e;
    for (int i = 0; i < 3; i++) {
        /* child_fd[i] > 2, so dup2 makes a new descriptor without
         * close-on-exec. */
        if (child_fd[i] >= 0 && dup2(child_fd[i], i) < 0)
            goto fail;
    }
    if (cwd != NULL && chdir(cwd) != 0)
        goto fail;
    /* Nothing but 0-2 reaches the program, whatever the parent left
     * without close-on-exec (best effort before Linux 5.11). */
    syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    zk__signal_reset_in_child();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvpe(argv[0], (char *const *)argv, envp);
fail:
    e = errno;
    ssize_t w = write(errfd, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* Makes the handle the child's exit is awaited on. */
static int zk__child_exit_handle(zk_child *c) {
    int fd = -1;
    const char *no = getenv("ZOKIO_NO_PIDFD");
    if (no == NULL || strcmp(no, "1") != 0)
        fd = (int)syscall(SYS_pidfd_open, c->pid, 0); /* close-on-exec */
    c->use_pidfd = fd >= 0;
    if (fd < 0) {
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0)
            return -errno;
    }
    int rc = zk__handle_new(c->rt, fd, ZK__HANDLE_PIPE, &c->exit_h);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    zk__handle_ref(c->exit_h); /* the child's own reference */
    if (!c->use_pidfd) {
        zk__child_ref(c);
        rc = zk_spawn_blocking(c->rt, zk__child_pool_wait, c, &c->pool_task);
        if (rc != 0) {
            atomic_fetch_sub(&c->refs, 1);
            zk__handle_close(c->exit_h);
            zk__handle_unref(c->exit_h);
            c->exit_h = NULL;
            return rc;
        }
    }
    return 0;
}

/* Reads the exec result from the child's error pipe, parking. Returns 0
 * (the program runs), the child's errno negated, or -ECANCELED... */
static int zk__await_exec(zk_runtime *rt, int errfd) {
    zk__io_handle *h;
    int rc = zk__handle_new(rt, errfd, ZK__HANDLE_PIPE, &h);
    if (rc != 0) {
        close(errfd);
        return rc;
    }
    int e = 0;
    size_t got = 0;
    while (got < sizeof e) {
        zk__io_op op;
        zk__op_init(&op, ZK__OP_READ, h);
        op.a.rw.buf = (char *)&e + got;
        op.a.rw.len = sizeof e - got;
        int64_t n = zk__op_await(&op);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0) /* closed by the exec: it happened */
            break;
        got += (size_t)n;
    }
    zk__handle_close(h);
    if (rc != 0)
        return rc;
    if (got == sizeof e)
        return e > 0 ? -e : -EIO;
    return got == 0 ? 0 : -EIO;
}

int zk_process_spawn(const char *const *argv, const zk_process_opts *opts,
                     zk_child **out) {
    static const zk_process_opts defaults;
    if (argv == NULL || argv[0] == NULL || out == NULL)
        return -EINVAL;
    if (opts == NULL)
        opts = &defaults;
    const zk_stdio modes[3] = {opts->stdin_mode, opts->stdout_mode,
                               opts->stderr_mode};
    for (int i = 0; i < 3; i++)
        if ((unsigned)modes[i] > ZK_STDIO_PIPE)
            return -EINVAL;
    if (!zk_in_coroutine())
        return -EPERM;
    zk_runtime *rt = zk__runtime_current();

    zk_child *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->rt = rt;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lock, NULL);

    /* The descriptors: the child's ends, the parent's, the error pipe. */
    int child_fd[3] = {-1, -1, -1}, parent_fd[3] = {-1, -1, -1};
    int nullfd = -1, errp[2] = {-1, -1};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (modes[i] == ZK_STDIO_NULL) {
            if (nullfd < 0 &&
                (nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                rc = -errno;
            if (rc == 0)
                rc = zk__fd_above_stdio(&nullfd);
            child_fd[i] = nullfd;
        } else if (modes[i] == ZK_STDIO_PIPE) {
            int p[2];
            if (pipe2(p, O_CLOEXEC) != 0) {
                rc = -errno;
                break;
            }
            child_fd[i] = i == 0 ? p[0] : p[1];
            parent_fd[i] = i == 0 ? p[1] : p[0];
            rc = zk__fd_above_stdio(&child_fd[i]);
            if (rc == 0)
                rc = zk__fd_above_stdio(&parent_fd[i]);
        }
    }
    if (rc == 0 && pipe2(errp, O_CLOEXEC | O_NONBLOCK) != 0)
        rc = -errno;
    if (rc == 0)
        rc = zk__fd_above_stdio(&errp[1]);

    pid_t pid = -1;
    if (rc == 0) {
        char *const *envp =
            opts->env ? (char *const *)opts->env : (char *const *)environ;
        /* No signal handler may run in the child before it reset them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pid = fork();
        if (pid == 0)
            zk__child_exec(argv, envp, opts->cwd, child_fd, errp[1]);
        int fork_err = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0)
            rc = -fork_err;
    }
    /* The child's ends are the child's now. */
    for (int i = 0; i < 3; i++)
        if (child_fd[i] >= 0 && child_fd[i] != nullfd)
            close(child_fd[i]);
    if (nullfd >= 0)
        close(nullfd);
    if (errp[1] >= 0)
        close(errp[1]);
    if (rc != 0) {
        for (int i = 0; i < 3; i++)
            if (parent_fd[i] >= 0)
                close(parent_fd[i]);
        if (errp[0] >= 0)
            close(errp[0]);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc;
    }
    c->pid = pid;

    rc = zk__child_exit_handle(c);
    if (rc != 0) {
        /* No way to wait for it in the runtime: kill it and reap it
         * here (it dies at once). */
        close(errp[0]);
        for (int i = 0; i < 3; i++)
            if (parent_fd[i] >= 0)
                close(parent_fd[i]);
        kill(pid, SIGKILL);
        zk__child_reap_blocking(c);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc;
    }
    /* The parent's ends become streams (non-blocking; the child's ends
     * are other open files and stay blocking). */
    for (int i = 0; i < 3; i++) {
        if (parent_fd[i] < 0)
            continue;
        if (rc == 0)
            rc = zk_stream_from_fd(parent_fd[i], &c->stdio[i]);
        else
            close(parent_fd[i]);
    }
    int exec_rc = zk__await_exec(rt, errp[0]);
    if (rc == 0)
        rc = exec_rc;
    if (rc != 0) {
        /* An exec failure: the child is exiting; reap it (an aborted
         * task's wait returns at once and the free reaps it instead). */
        if (exec_rc != 0 && exec_rc != -ECANCELED)
            zk_child_wait(c, NULL);
        zk_child_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The child's handle                                                     */
/* ---------------------------------------------------------------------- */

int zk_child_pid(const zk_child *c) {
    return c ? (int)c->pid : -EINVAL;
}

static zk_stream *zk__child_take(zk_child *c, int i) {
    if (c == NULL)
        return NULL;
    pthread_mutex_lock(&c->lock);
    zk_stream *s = c->stdio[i];
    c->stdio[i] = NULL;
    pthread_mutex_unlock(&c->lock);
    return s;
}

zk_stream *zk_child_take_stdin(zk_child *c) {
    return zk__child_take(c, 0);
}

zk_stream *zk_child_take_stdout(zk_child *c) {
    return zk__child_take(c, 1);
}

zk_stream *zk_child_take_stderr(zk_child *c) {
    return zk__child_take(c, 2);
}

int zk_child_try_wait(zk_child *c, zk_exit_status *status) {
    if (c == NULL)
        return -EINVAL;
    pthread_mutex_lock(&c->lock);
    int rc = c->freed ? -EBADF : zk__child_reap_locked(c);
    if (rc == 1 && status != NULL)
        *status = c->status;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int zk_child_kill(zk_child *c, int signo) {
    if (c == NULL || signo < 0 || signo >= NSIG)
        return -EINVAL;
    int rc;
    pthread_mutex_lock(&c->lock);
    if (c->freed) {
        rc = -EBADF;
    } else if (c->reaped || c->wait_err != 0) {
        rc = -ESRCH; /* the id may name another process now */
    } else {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((r == 0 && si.si_pid != 0) || (r < 0 && errno == ECHILD))
            rc = -ESRCH; /* exited: a zombie waiting to be reaped */
        else
            rc = kill(c->pid, signo) == 0 ? 0 : -errno;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void zk_child_free(zk_child *c) {
    if (c == NULL)
        return;
    zk_stream *streams[3];
    pthread_mutex_lock(&c->lock);
    memcpy(streams, c->stdio, sizeof streams);
    memset(c->stdio, 0, sizeof c->stdio);
    c->freed = true;
    bool running = zk__child_reap_locked(c) == 0;
    if (running) {
        /* Still running (or, in pool mode, not yet seen to exit): kill
         * it; the id is still the child's, which is not reaped. */
        kill(c->pid, SIGKILL);
    }
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < 3; i++)
        if (streams[i] != NULL)
            zk_stream_close(streams[i]);
    if (!running) {
        /* Reaped (or lost to someone else's wait): nothing to wait for. */
        if (c->pool_task != NULL)
            zk_task_detach(&c->pool_task); /* it holds its own reference */
        zk__handle_close(c->exit_h);       /* a wait in progress: -EBADF */
        zk__child_unref(c);
        return;
    }
    /* The reaper takes over the user's reference. */
    zk__reaper r = {.base = {&zk__reaper_ops}, .c = c};
    if (zk_spawn_future(c->rt, &r.base, sizeof r, NULL) != 0)
        zk__reaper_drop(&r.base); /* shutting down: reap here */
}

/* ---------------------------------------------------------------------- */
/* Waiting                                                                */
/* ---------------------------------------------------------------------- */

enum {
    ZK__CWF_INIT,    /* not polled yet */
    ZK__CWF_ACTIVE,  /* holds a reference */
    ZK__CWF_POLLING, /* and waits for the exit handle (`_poll`) */
    ZK__CWF_DONE,
};

static void zk__cwf_release(zk_child_wait_future *f) {
    if (f->_state == ZK__CWF_POLLING)
        zk_future_drop(&f->_poll.base);
    if (f->_state == ZK__CWF_ACTIVE || f->_state == ZK__CWF_POLLING)
        zk__child_unref(f->_child);
    f->_state = ZK__CWF_DONE;
}

static zk_poll zk__cwf_ready(zk_child_wait_future *f, int64_t res,
                             int64_t *out) {
    zk__cwf_release(f);
    *out = res;
    return ZK_READY;
}

static zk_poll zk__cwf_poll(zk_future *base, zk_context *cx, int64_t *out) {
    zk_child_wait_future *f = (zk_child_wait_future *)base;
    zk_child *c = f->_child;
    if (c == NULL || f->_state == ZK__CWF_DONE) {
        *out = -EINVAL;
        return ZK_READY;
    }
    if (f->_state == ZK__CWF_INIT) {
        /* Before the reap: a child is its runtime's to wait for (the wait
         * below would say -EPERM only while it still ran). */
        if (zk__io_current(c->rt) == NULL) {
            f->_state = ZK__CWF_DONE;
            *out = -EPERM;
            return ZK_READY;
        }
        zk__child_ref(c);
        f->_state = ZK__CWF_ACTIVE;
    }
    for (;;) {
        if (f->_state == ZK__CWF_POLLING) {
            int64_t r;
            if (zk_future_poll(&f->_poll.base, cx, &r) == ZK_PENDING)
                return ZK_PENDING;
            zk_future_drop(&f->_poll.base);
            f->_state = ZK__CWF_ACTIVE;
            if (r < 0) /* -EBADF (freed), -EPERM (other runtime)... */
                return zk__cwf_ready(f, r, out);
        }
        pthread_mutex_lock(&c->lock);
        int rc = c->freed ? -EBADF : zk__child_reap_locked(c);
        if (rc == 1 && f->_status != NULL)
            *f->_status = c->status;
        pthread_mutex_unlock(&c->lock);
        if (rc != 0)
            return zk__cwf_ready(f, rc == 1 ? 0 : rc, out);
        zk__op_init((zk__io_op *)&f->_poll, ZK__OP_POLL_IN, c->exit_h);
        f->_state = ZK__CWF_POLLING;
    }
}

static void zk__cwf_drop(zk_future *base) {
    zk__cwf_release((zk_child_wait_future *)base);
}

static const zk_future_ops zk__cwf_ops = {zk__cwf_poll, zk__cwf_drop};

void zk_child_wait_future_init(zk_child_wait_future *f, zk_child *c,
                               zk_exit_status *status) {
    memset(f, 0, sizeof *f);
    f->base.ops = &zk__cwf_ops;
    f->_child = c;
    f->_status = status;
    f->_state = ZK__CWF_INIT;
}

int zk_child_wait(zk_child *c, zk_exit_status *status) {
    if (c == NULL)
        return -EINVAL;
    zk_child_wait_future f;
    zk_child_wait_future_init(&f, c, status);
    return (int)zk_await(&f.base);
}
