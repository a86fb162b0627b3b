/*
 * test_process.c - child processes: piped round trips, exit codes and
 * signals, deadlines, kill, abort, free without wait, spawn failures,
 * descriptor hygiene, SIGPIPE, bad arguments. Built for both runtime kinds
 * and run on both I/O backends (ctest sets ZOKIO_IO_BACKEND), and once
 * more without pidfds (ZOKIO_NO_PIDFD=1: the blocking-pool fallback).
 * Every test ends by checking that the process has no child left, running
 * or zombie.
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io_helpers.h"

ZK_SUITE(process);

/* No child is left: not running, not a zombie. */
static void assert_no_children(void) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    zk_test_set_errno(0);
    int r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
    cr_assert(r < 0 && zk_test_errno() == ECHILD,
              "a child is left (waitid %d, pid %d)", r, (int)si.si_pid);
}

/* A process test: the body, then no child may be left. */
#define ZK_PROC_TEST(suite, name)                                              \
    static void suite##_##name##_proc(void);                                   \
    ZK_IO_TEST(suite, name) {                                                  \
        suite##_##name##_proc();                                               \
        assert_no_children();                                                  \
    }                                                                          \
    static void suite##_##name##_proc(void)

static zk_child *spawn_or_fail(const char *const *argv,
                               const zk_process_opts *opts) {
    zk_child *c = NULL;
    int rc = zk_process_spawn(argv, opts, &c);
    cr_assert_eq(rc, 0, "spawn %s: %s", argv[0], zk_strerror(rc));
    cr_assert_not_null(c);
    cr_assert_gt(zk_child_pid(c), 0);
    return c;
}

/* Reads the stream to its end into buf (NUL-terminated); returns the
 * length. */
static size_t read_all(zk_stream *s, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        cr_assert_lt(len, cap, "output larger than expected");
        int64_t n = zk_stream_read(s, buf + len, cap - 1 - len);
        cr_assert_geq(n, 0, "read: %s", zk_strerror((int)n));
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

static zk_exit_status wait_or_fail(zk_child *c) {
    zk_exit_status st;
    memset(&st, 0xAB, sizeof st);
    int rc = zk_child_wait(c, &st);
    cr_assert_eq(rc, 0, "wait: %s", zk_strerror(rc));
    return st;
}

/* ---------------------------------------------------------------------- */
/* Pipes                                                                  */
/* ---------------------------------------------------------------------- */

#define CAT_BYTES (256 * 1024) /* several pipe buffers each way */

static int64_t cat_writer(void *arg) {
    zk_stream *in = arg;
    char *buf = malloc(CAT_BYTES);
    for (size_t i = 0; i < CAT_BYTES; i++)
        buf[i] = (char)(i * 7 + i / 4096);
    int rc = zk_stream_write_all(in, buf, CAT_BYTES);
    free(buf);
    zk_stream_close(in); /* cat sees the end of its input */
    return rc;
}

static int64_t cat_root(void *arg) {
    (void)arg;
    const char *argv[] = {"cat", NULL};
    zk_process_opts o = {.stdin_mode = ZK_STDIO_PIPE,
                         .stdout_mode = ZK_STDIO_PIPE};
    zk_child *c = spawn_or_fail(argv, &o);
    zk_stream *in = zk_child_take_stdin(c);
    zk_stream *out = zk_child_take_stdout(c);
    cr_assert_not_null(in);
    cr_assert_not_null(out);
    cr_assert_null(zk_child_take_stdin(c));  /* taken already */
    cr_assert_null(zk_child_take_stderr(c)); /* not piped */
    zk_task *w;
    cr_assert_eq(zk_spawn(cat_writer, in, &w), 0);
    char *got = malloc(CAT_BYTES + 1);
    size_t len = read_all(out, got, CAT_BYTES + 1);
    cr_assert_eq(len, (size_t)CAT_BYTES);
    for (size_t i = 0; i < CAT_BYTES; i++)
        cr_assert_eq(got[i], (char)(i * 7 + i / 4096), "byte %zu", i);
    free(got);
    int64_t wr = -1;
    cr_assert_eq(zk_task_join(&w, &wr), 0);
    cr_assert_eq(wr, 0);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited);
    cr_assert_eq(st.code, 0);
    cr_assert_eq(st.signal, 0);
    cr_assert_not(st.core_dumped);
    zk_stream_close(out);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, cat_round_trip_through_pipes) {
    zk_test_run(cat_root, NULL);
}

static int64_t echo_root(void *arg) {
    (void)arg;
    const char *argv[] = {"echo", "hello", "zokio", NULL};
    zk_process_opts o = {.stdout_mode = ZK_STDIO_PIPE};
    zk_child *c = spawn_or_fail(argv, &o);
    zk_stream *out = zk_child_take_stdout(c);
    char buf[64];
    read_all(out, buf, sizeof buf);
    cr_assert_str_eq(buf, "hello zokio\n");
    zk_stream_close(out);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited && st.code == 0);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, echo_output) {
    zk_test_run(echo_root, NULL);
}

/* stderr piped, stdout to /dev/null, stdin from /dev/null; untaken
 * streams are closed by free. */
static int64_t stdio_modes_root(void *arg) {
    (void)arg;
    const char *argv[] = {"sh", "-c", "cat; echo out; echo err >&2", NULL};
    zk_process_opts o = {.stdin_mode = ZK_STDIO_NULL,
                         .stdout_mode = ZK_STDIO_NULL,
                         .stderr_mode = ZK_STDIO_PIPE};
    zk_child *c = spawn_or_fail(argv, &o);
    cr_assert_null(zk_child_take_stdin(c));
    cr_assert_null(zk_child_take_stdout(c));
    zk_stream *err = zk_child_take_stderr(c);
    char buf[64];
    read_all(err, buf, sizeof buf);
    cr_assert_str_eq(buf, "err\n");
    zk_stream_close(err);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited && st.code == 0);
    zk_child_free(c);

    /* Piped streams nobody takes are closed by zk_child_free(). */
    const char *argv2[] = {"true", NULL};
    zk_process_opts all = {.stdin_mode = ZK_STDIO_PIPE,
                           .stdout_mode = ZK_STDIO_PIPE,
                           .stderr_mode = ZK_STDIO_PIPE};
    c = spawn_or_fail(argv2, &all);
    st = wait_or_fail(c);
    cr_assert(st.exited && st.code == 0);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, stdio_null_and_untaken_pipes) {
    zk_test_run(stdio_modes_root, NULL);
}

static int64_t env_cwd_root(void *arg) {
    (void)arg;
    /* A replaced environment (no PATH in it: sh is found through ours)
     * and another working directory. */
    const char *argv[] = {"sh", "-c",
                          "printf '%s:%s:' \"$ZK_VAR\" \"$HOME\"; pwd", NULL};
    const char *env[] = {"ZK_VAR=from zokio", NULL};
    zk_process_opts o = {.env = env, .cwd = "/", .stdout_mode = ZK_STDIO_PIPE};
    zk_child *c = spawn_or_fail(argv, &o);
    zk_stream *out = zk_child_take_stdout(c);
    char buf[128];
    read_all(out, buf, sizeof buf);
    cr_assert_str_eq(buf, "from zokio::/\n");
    zk_stream_close(out);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited && st.code == 0);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, environment_and_directory) {
    zk_test_run(env_cwd_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Exit status, kill, deadlines                                           */
/* ---------------------------------------------------------------------- */

static int64_t exit_code_root(void *arg) {
    (void)arg;
    const char *argv[] = {"sh", "-c", "exit 3", NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited);
    cr_assert_eq(st.code, 3);
    cr_assert_eq(st.signal, 0);
    /* Waiting again gives the same status at once. */
    zk_exit_status again = wait_or_fail(c);
    cr_assert(again.exited && again.code == 3);
    cr_assert_eq(zk_child_try_wait(c, &again), 1);
    cr_assert_eq(again.code, 3);
    /* Killing a child that exited is refused. */
    cr_assert_eq(zk_child_kill(c, SIGTERM), -ESRCH);
    cr_assert_eq(zk_child_kill(c, 0), -ESRCH);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, exit_code) {
    zk_test_run(exit_code_root, NULL);
}

static int64_t kill_root(void *arg) {
    (void)arg;
    const char *argv[] = {"sleep", "30", NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    cr_assert_eq(zk_child_try_wait(c, NULL), 0);
    cr_assert_eq(zk_child_kill(c, 0), 0); /* it runs */
    zk_instant t0 = zk_now();
    cr_assert_eq(zk_child_kill(c, SIGKILL), 0);
    zk_exit_status st = wait_or_fail(c);
    cr_assert_not(st.exited);
    cr_assert_eq(st.signal, SIGKILL);
    cr_assert_eq(st.code, -1);
    /* Reported quickly, not after the 30 s sleep (a generous bound). */
    cr_assert_lt(zk_now() - t0, ZK_SEC(15));
    cr_assert_eq(zk_child_kill(c, SIGKILL), -ESRCH);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, kill_reports_the_signal) {
    zk_test_run(kill_root, NULL);
}

static int64_t wait_timeout_root(void *arg) {
    (void)arg;
    const char *argv[] = {"sleep", "30", NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    zk_child_wait_future f;
    zk_exit_status st;
    zk_child_wait_future_init(&f, c, &st);
    zk_instant t0 = zk_now();
    cr_assert_eq(zk_await_timeout(&f.base, ZK_MS(50)), -ETIMEDOUT);
    cr_assert_geq(zk_now() - t0, ZK_MS(50));
    /* Still running; the deadline only ended the wait. */
    cr_assert_eq(zk_child_try_wait(c, NULL), 0);
    cr_assert_eq(zk_child_kill(c, SIGTERM), 0);
    zk_child_wait_future_init(&f, c, &st);
    cr_assert_eq(zk_await_timeout(&f.base, ZK_SEC(30)), 0);
    cr_assert_not(st.exited);
    cr_assert_eq(st.signal, SIGTERM);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, wait_with_deadline) {
    zk_test_run(wait_timeout_root, NULL);
}

static int64_t waiter_task(void *arg) {
    zk_exit_status st;
    int rc = zk_child_wait(arg, &st);
    if (rc != 0)
        return rc;
    return st.exited ? st.code : 1000 + st.signal;
}

static int64_t abort_wait_root(void *arg) {
    (void)arg;
    const char *argv[] = {"sleep", "30", NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    zk_task *t;
    cr_assert_eq(zk_spawn(waiter_task, c, &t), 0);
    cr_assert_eq(zk_yield(), 0);
    cr_assert_eq(zk_task_abort(t), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    /* The child is untouched. */
    cr_assert_eq(zk_child_try_wait(c, NULL), 0);
    /* Two tasks wait at once; both see the same end. */
    zk_task *a, *b;
    cr_assert_eq(zk_spawn(waiter_task, c, &a), 0);
    cr_assert_eq(zk_spawn(waiter_task, c, &b), 0);
    cr_assert_eq(zk_child_kill(c, SIGKILL), 0);
    int64_t ra = 0, rb = 0;
    cr_assert_eq(zk_task_join(&a, &ra), 0);
    cr_assert_eq(zk_task_join(&b, &rb), 0);
    cr_assert_eq(ra, 1000 + SIGKILL);
    cr_assert_eq(rb, 1000 + SIGKILL);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, abort_task_blocked_in_wait) {
    zk_test_run(abort_wait_root, NULL);
}

/* A future task waits. */
static int64_t future_wait_root(void *arg) {
    (void)arg;
    const char *argv[] = {"sh", "-c", "exit 42", NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    zk_child_wait_future f;
    zk_child_wait_future_init(&f, c, NULL);
    zk_task *t;
    cr_assert_eq(zk_spawn_future(NULL, &f.base, sizeof f, &t), 0);
    int64_t r = -1;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, 0);
    zk_exit_status st;
    cr_assert_eq(zk_child_try_wait(c, &st), 1);
    cr_assert(st.exited && st.code == 42);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, future_task_waits) {
    zk_test_run(future_wait_root, NULL);
}

/* Many children at once. */
static int64_t many_child(void *arg) {
    intptr_t i = (intptr_t)arg;
    char code[16];
    snprintf(code, sizeof code, "exit %d", (int)(i % 50));
    const char *argv[] = {"sh", "-c", code, NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    zk_exit_status st = wait_or_fail(c);
    zk_child_free(c);
    return st.exited ? st.code : -1;
}

static int64_t many_root(void *arg) {
    (void)arg;
    enum { N = 32 };
    zk_task *t[N];
    int64_t want = 0;
    for (intptr_t i = 0; i < N; i++) {
        cr_assert_eq(zk_spawn(many_child, (void *)i, &t[i]), 0);
        want += i % 50;
    }
    cr_assert_eq(zk_test_join_all(t, N), want);
    return 0;
}

ZK_PROC_TEST(process, many_children) {
    zk_test_run(many_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Freeing, failures, hygiene                                             */
/* ---------------------------------------------------------------------- */

static int64_t free_running_root(void *arg) {
    pid_t *pid = arg;
    const char *argv[] = {"sleep", "30", NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    *pid = zk_child_pid(c);
    zk_instant t0 = zk_now();
    zk_child_free(c); /* kills it; reaped in the background */
    cr_assert_lt(zk_now() - t0, ZK_SEC(5));
    return 0;
}

ZK_PROC_TEST(process, free_without_wait_kills_and_reaps) {
    pid_t pid = 0;
    zk_test_run(free_running_root, &pid);
    /* The runtime's shutdown waited for the background reap. */
    cr_assert_gt(pid, 0);
}

static int64_t spawn_fail_root(void *arg) {
    (void)arg;
    zk_child *c = (zk_child *)(uintptr_t)0x1; /* must stay unchanged */
    const char *missing[] = {"/nonexistent/zokio-no-such-program", NULL};
    cr_assert_eq(zk_process_spawn(missing, NULL, &c), -ENOENT);
    const char *missing_path[] = {"zokio-no-such-program-on-path", NULL};
    cr_assert_eq(zk_process_spawn(missing_path, NULL, &c), -ENOENT);
    const char *argv[] = {"true", NULL};
    zk_process_opts o = {.cwd = "/nonexistent/zokio-dir"};
    cr_assert_eq(zk_process_spawn(argv, &o, &c), -ENOENT);
    const char *not_exec[] = {"/dev/null", NULL};
    cr_assert_eq(zk_process_spawn(not_exec, NULL, &c), -EACCES);
    zk_process_opts piped = {.stdin_mode = ZK_STDIO_PIPE,
                             .stdout_mode = ZK_STDIO_PIPE,
                             .stderr_mode = ZK_STDIO_PIPE};
    cr_assert_eq(zk_process_spawn(missing, &piped, &c), -ENOENT);
    cr_assert_eq((uintptr_t)c, 0x1);
    /* The runtime is fine afterwards. */
    c = spawn_or_fail(argv, NULL);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited && st.code == 0);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, spawn_failures) {
    zk_test_run(spawn_fail_root, NULL);
}

/* A wait polled on a thread that is not one of the child's runtime's
 * workers is refused before it reaps: the child, already exited, is still
 * there for its runtime's wait. */
static void *foreign_wait_thread(void *arg) {
    zk_child_wait_future f;
    zk_exit_status st;
    zk_child_wait_future_init(&f, arg, &st);
    return (void *)(intptr_t)zk_test_poll_once_and_drop(&f.base);
}

static int64_t foreign_wait_root(void *arg) {
    (void)arg;
    const char *argv[] = {"true", NULL};
    zk_child *c = spawn_or_fail(argv, NULL);
    /* Until it has exited, without reaping it. */
    siginfo_t si;
    cr_assert_eq(waitid(P_PID, (id_t)zk_child_pid(c), &si, WEXITED | WNOWAIT),
                 0);
    pthread_t th;
    void *res;
    cr_assert_eq(pthread_create(&th, NULL, foreign_wait_thread, c), 0);
    cr_assert_eq(pthread_join(th, &res), 0);
    cr_assert_eq((intptr_t)res, -EPERM, "wait on a foreign thread: %s",
                 zk_strerror((int)(intptr_t)res));
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited && st.code == 0);
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, wait_outside_its_runtime_is_eperm_and_reaps_nothing) {
    zk_test_run(foreign_wait_root, NULL);
}

/* A descriptor without close-on-exec in the parent does not reach the
 * program. */
static int64_t fd_hygiene_root(void *arg) {
    (void)arg;
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(dup2(p[0], 100), 100);
    cr_assert_eq(fcntl(100, F_GETFD) & FD_CLOEXEC, 0);
    const char *argv[] = {"sh", "-c",
                          "if test -e /proc/self/fd/100; then exit 1; fi; "
                          "test -e /proc/self/fd/2",
                          NULL};
    zk_process_opts o = {.stdin_mode = ZK_STDIO_NULL,
                         .stdout_mode = ZK_STDIO_PIPE,
                         .stderr_mode = ZK_STDIO_NULL};
    zk_child *c = spawn_or_fail(argv, &o);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited);
    cr_assert_eq(st.code, 0, "descriptor 100 reached the child");
    zk_child_free(c);
    close(100);
    close(p[0]);
    close(p[1]);
    return 0;
}

ZK_PROC_TEST(process, no_descriptor_leaks_into_child) {
    zk_test_run(fd_hygiene_root, NULL);
}

/* Writing to the stdin of a child that exited: -EPIPE, and the process
 * does not die of SIGPIPE (whose default action is restored here). */
static int64_t epipe_root(void *arg) {
    (void)arg;
    const char *argv[] = {"true", NULL};
    zk_process_opts o = {.stdin_mode = ZK_STDIO_PIPE};
    zk_child *c = spawn_or_fail(argv, &o);
    zk_stream *in = zk_child_take_stdin(c);
    zk_exit_status st = wait_or_fail(c);
    cr_assert(st.exited && st.code == 0);
    int64_t r = zk_stream_write(in, "x", 1);
    cr_assert_eq(r, -EPIPE, "write: %s", zk_strerror((int)r));
    cr_assert_eq(zk_stream_write_all(in, "more", 4), -EPIPE);
    zk_stream_close(in);
    zk_child_free(c);
    /* A plain pipe whose reader is gone, likewise. */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    zk_stream *w;
    cr_assert_eq(zk_stream_from_fd(p[1], &w), 0);
    cr_assert_eq(zk_stream_write(w, "y", 1), -EPIPE);
    zk_stream_close(w);
    return 0;
}

ZK_PROC_TEST(process, write_to_exited_child_is_epipe_not_sigpipe) {
    signal(SIGPIPE, SIG_DFL);
    sigset_t none, mask, pending;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    zk_test_run(epipe_root, NULL);
    /* This thread's mask is as it was, with no SIGPIPE left pending. */
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    cr_assert_not(sigismember(&mask, SIGPIPE));
    sigpending(&pending);
    cr_assert_not(sigismember(&pending, SIGPIPE));
}

/* A pipe write still waiting for room when zk_block_on returns, whose
 * reader then goes while the thread runs outside the runtime with SIGPIPE
 * unblocked: the process lives on, and the write ends with -EPIPE when
 * the runtime runs again. (A write the io_uring kernel side retried in
 * that thread raised SIGPIPE there and killed the process.) */
typedef struct {
    int read_fd;      /* the full pipe's reader, a plain descriptor */
    zk_stream *full;  /* its writer */
    zk_stream *probe; /* a second pipe's reader, for kernel round trips */
    int probe_fd;     /* that pipe's writer */
    int full_fd, probe_read_fd; /* the descriptors the streams take */
    zk_task *writer;
} waiting_write;

static int64_t make_streams_root(void *arg) {
    waiting_write *ww = arg;
    cr_assert_eq(zk_stream_from_fd(ww->full_fd, &ww->full), 0);
    cr_assert_eq(zk_stream_from_fd(ww->probe_read_fd, &ww->probe), 0);
    return 0;
}

static int64_t fill_pipe_task(void *arg) {
    waiting_write *ww = arg;
    static char block[256 * 1024];
    return zk_stream_write_all(ww->full, block, sizeof block);
}

/* One read the runtime waits for in the kernel when its backend does:
 * what other tasks prepared before it has been submitted when it ends. */
static void kernel_round_trip(waiting_write *ww) {
    char c;
    cr_assert_eq(write(ww->probe_fd, "p", 1), 1);
    cr_assert_eq(zk_stream_read(ww->probe, &c, 1), 1);
}

static int queued_bytes(int fd) {
    int n = 0;
    cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

static int64_t leave_write_waiting_root(void *arg) {
    waiting_write *ww = arg;
    cr_assert_eq(zk_spawn(fill_pipe_task, ww, &ww->writer), 0);
    while (queued_bytes(ww->read_fd) < 4096)
        kernel_round_trip(ww);
    /* The pipe is full: the writer's next attempt waits, and two round
     * trips later it waits in the kernel on either backend. */
    kernel_round_trip(ww);
    kernel_round_trip(ww);
    return 0;
}

static int64_t join_writer_root(void *arg) {
    waiting_write *ww = arg;
    int64_t res = 0;
    cr_assert_eq(zk_task_join(&ww->writer, &res), 0);
    return res;
}

ZK_IO_TEST(process, pipe_write_waiting_outside_block_on_is_epipe_not_sigpipe) {
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    int full[2], probe[2];
    cr_assert_eq(pipe(full), 0);
    cr_assert_eq(pipe(probe), 0);
    cr_assert_geq(fcntl(full[1], F_SETPIPE_SZ, 4096), 4096);
    waiting_write ww = {.read_fd = full[0], .probe_fd = probe[1]};
    zk_runtime *rt = zk_test_runtime();
    int64_t res = -1;
    ww.full_fd = full[1];
    ww.probe_read_fd = probe[0];
    cr_assert_eq(zk_block_on(rt, make_streams_root, &ww, &res), 0);
    cr_assert_eq(zk_block_on(rt, leave_write_waiting_root, &ww, &res), 0);
    cr_assert_eq(res, 0);
    /* The reader goes; the next system calls of this thread are made
     * with SIGPIPE unblocked. */
    close(full[0]);
    cr_assert_gt(getpid(), 0);
    cr_assert_eq(zk_block_on(rt, join_writer_root, &ww, &res), 0);
    cr_assert_eq(res, -EPIPE, "write: %s", zk_strerror((int)res));
    zk_stream_close(ww.full);
    zk_stream_close(ww.probe);
    close(probe[1]);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */
/* Bad input                                                              */
/* ---------------------------------------------------------------------- */

static int64_t bad_args_root(void *arg) {
    (void)arg;
    zk_child *c = NULL;
    const char *argv[] = {"true", NULL};
    const char *empty[] = {NULL};
    cr_assert_eq(zk_process_spawn(NULL, NULL, &c), -EINVAL);
    cr_assert_eq(zk_process_spawn(empty, NULL, &c), -EINVAL);
    cr_assert_eq(zk_process_spawn(argv, NULL, NULL), -EINVAL);
    zk_process_opts o = {.stdout_mode = (zk_stdio)7};
    cr_assert_eq(zk_process_spawn(argv, &o, &c), -EINVAL);
    cr_assert_null(c);
    cr_assert_eq(zk_child_pid(NULL), -EINVAL);
    cr_assert_null(zk_child_take_stdin(NULL));
    cr_assert_null(zk_child_take_stdout(NULL));
    cr_assert_null(zk_child_take_stderr(NULL));
    cr_assert_eq(zk_child_kill(NULL, SIGTERM), -EINVAL);
    cr_assert_eq(zk_child_wait(NULL, NULL), -EINVAL);
    cr_assert_eq(zk_child_try_wait(NULL, NULL), -EINVAL);
    zk_child_free(NULL);
    zk_child_wait_future f;
    zk_child_wait_future_init(&f, NULL, NULL);
    cr_assert_eq(zk_await(&f.base), -EINVAL);
    c = spawn_or_fail(argv, NULL);
    cr_assert_eq(zk_child_kill(c, -1), -EINVAL);
    cr_assert_eq(zk_child_kill(c, NSIG), -EINVAL);
    cr_assert_eq(zk_child_wait(c, NULL), 0); /* status may be NULL */
    zk_child_free(c);
    return 0;
}

ZK_PROC_TEST(process, bad_arguments) {
    zk_test_run(bad_args_root, NULL);
}

ZK_PROC_TEST(process, outside_a_coroutine) {
    zk_child *c = NULL;
    const char *argv[] = {"true", NULL};
    cr_assert_eq(zk_process_spawn(argv, NULL, &c), -EPERM);
    cr_assert_null(c);
}
