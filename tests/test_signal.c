/*
 * test_signal.c - signal listeners: delivery to one and several listeners
 * (also in two runtimes), deliveries kept until a recv, the ctrl-c helper,
 * deadlines, close and abort while waiting, the disposition restored by
 * the last listener, bad arguments. Built for both runtime kinds and run
 * on both I/O backends (ctest sets ZOKIO_IO_BACKEND).
 */
#include <signal.h>
#include <unistd.h>

#include "io_helpers.h"

ZK_SUITE(signal);

/*
 * zk_test_run() for these tests. Under ThreadSanitizer, a signal sent to
 * the process is handed to its handler only when the receiving thread next
 * enters a function TSan intercepts; the kernel prefers the main thread,
 * which, while a multi-thread runtime runs the root task, sleeps in a raw
 * futex wait in zk_block_on() and would never get there. So in that build
 * the main thread blocks the test's signals while it waits (after the
 * workers were created: they inherit the mask of their creator), and the
 * kernel hands them to a worker. Other builds keep the main thread as a
 * possible receiver.
 */
static void run_signals_join(zk_task_fn fn, void *arg, pthread_t *join) {
    zk_runtime *rt = zk_test_runtime();
#if ZK_TEST_MT && defined(ZK_TEST_TSAN)
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &old);
#endif
    int64_t result = -1;
    int rc = zk_block_on(rt, fn, arg, &result);
#if ZK_TEST_MT && defined(ZK_TEST_TSAN)
    pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
    cr_assert_eq(rc, 0, "zk_block_on: %s", zk_strerror(rc));
    cr_assert_eq(result, 0);
    /* A thread that may still be waking a task of this runtime is done
     * before the runtime goes. */
    if (join != NULL)
        pthread_join(*join, NULL);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

static void run_signals(zk_task_fn fn, void *arg) {
    run_signals_join(fn, arg, NULL);
}

/* Sends `signo` to the whole process, as kill(2) from outside would.
 * Under ThreadSanitizer it goes to the calling thread instead: a
 * process-directed signal may land on one of TSan's own background
 * threads, which defer handlers until they next enter an intercepted
 * function (they never do), so the signal would never be handled. */
static int send_to_process(int signo) {
#if defined(ZK_TEST_TSAN)
    return raise(signo);
#else
    return kill(getpid(), signo);
#endif
}

static zk_signal *listen_or_fail(int signo) {
    zk_signal *s = NULL;
    int rc = zk_signal_listen(signo, &s);
    cr_assert_eq(rc, 0, "listen(%d): %s", signo, zk_strerror(rc));
    cr_assert_not_null(s);
    return s;
}

/* Returns once a recv of another task (recv_task) is in progress on `s`
 * (a recv of our own then reports -EBUSY): that task holds the listener,
 * so it may be closed under it. A probe that finds the listener free holds
 * it until its zero deadline passes, which recv_task tolerates. Yields
 * between tries; no timing involved. */
static void wait_until_receiving(zk_signal *s) {
    for (;;) {
        zk_signal_future f;
        zk_signal_recv_future_init(&f, s);
        int64_t r = zk_await_timeout(&f.base, 0);
        if (r == -EBUSY)
            return;
        cr_assert_eq(r, -ETIMEDOUT, "probe: %s", zk_strerror((int)r));
        cr_assert_eq(zk_yield(), 0);
    }
}

/* ---------------------------------------------------------------------- */
/* Delivery                                                               */
/* ---------------------------------------------------------------------- */

static int64_t one_listener_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR1);
    /* raise(): delivered to this thread before it returns. */
    cr_assert_eq(raise(SIGUSR1), 0);
    cr_assert_eq(zk_signal_recv(s), 1);
    /* kill(): to the process, any thread may take it, maybe later. */
    cr_assert_eq(send_to_process(SIGUSR1), 0);
    cr_assert_eq(zk_signal_recv(s), 1);
    cr_assert_eq(zk_signal_close(s), 0);
    return 0;
}

ZK_IO_TEST(signal, delivery_to_one_listener) {
    run_signals(one_listener_root, NULL);
}

/* Receives once. A probe of wait_until_receiving() may hold the listener
 * for a moment (-EBUSY): then try again. */
static int64_t recv_task(void *arg) {
    int64_t r;
    while ((r = zk_signal_recv(arg)) == -EBUSY)
        zk_yield();
    return r;
}

static int64_t two_listeners_root(void *arg) {
    (void)arg;
    zk_signal *a = listen_or_fail(SIGUSR1);
    zk_signal *b = listen_or_fail(SIGUSR1);
    zk_signal *other = listen_or_fail(SIGUSR2);
    zk_task *ta, *tb;
    cr_assert_eq(zk_spawn(recv_task, a, &ta), 0);
    cr_assert_eq(zk_spawn(recv_task, b, &tb), 0);
    /* Both wait (parked in the driver) before the signal comes. */
    wait_until_receiving(a);
    wait_until_receiving(b);
    cr_assert_eq(send_to_process(SIGUSR1), 0);
    int64_t ra = 0, rb = 0;
    cr_assert_eq(zk_task_join(&ta, &ra), 0);
    cr_assert_eq(zk_task_join(&tb, &rb), 0);
    cr_assert_eq(ra, 1);
    cr_assert_eq(rb, 1);
    /* A listener of another signal saw nothing. */
    zk_signal_future f;
    zk_signal_recv_future_init(&f, other);
    cr_assert_eq(zk_await_timeout(&f.base, ZK_MS(10)), -ETIMEDOUT);
    zk_signal_close(a);
    zk_signal_close(b);
    zk_signal_close(other);
    return 0;
}

ZK_IO_TEST(signal, every_listener_sees_each_delivery) {
    run_signals(two_listeners_root, NULL);
}

static int64_t kept_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR2);
    /* Three deliveries while nobody waits (each raise() is handled before
     * it returns, so the kernel cannot merge them). */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(raise(SIGUSR2), 0);
    cr_assert_eq(zk_signal_recv(s), 3);
    /* Nothing more is pending. */
    zk_signal_future f;
    zk_signal_recv_future_init(&f, s);
    cr_assert_eq(zk_await_timeout(&f.base, ZK_MS(10)), -ETIMEDOUT);
    /* Many, counted exactly. */
    int64_t total = 0;
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(raise(SIGUSR2), 0);
        if (i % 10 == 9) {
            int64_t n = zk_signal_recv(s);
            cr_assert_gt(n, 0);
            total += n;
        }
    }
    cr_assert_eq(total, 500);
    zk_signal_close(s);
    return 0;
}

ZK_IO_TEST(signal, deliveries_before_recv_are_kept) {
    run_signals(kept_root, NULL);
}

/* A listener in a second runtime (driven by another thread) sees the same
 * delivery. */
typedef struct cross {
    zk_gate listening; /* opened by the second runtime once it listens */
    int64_t got;
} cross;

static int64_t cross_root_b(void *arg) {
    cross *x = arg;
    zk_signal *s = listen_or_fail(SIGHUP);
    zk_gate_open(&x->listening);
    x->got = zk_signal_recv(s);
    zk_signal_close(s);
    return 0;
}

static void *cross_thread(void *arg) {
    run_signals(cross_root_b, arg);
    return NULL;
}

static int64_t cross_root_a(void *arg) {
    cross *x = arg;
    zk_signal *s = listen_or_fail(SIGHUP);
    zk_gate_wait w = zk_gate_waiter(&x->listening, NULL);
    cr_assert_eq(zk_await(&w.base), 7);
    cr_assert_eq(send_to_process(SIGHUP), 0);
    cr_assert_eq(zk_signal_recv(s), 1);
    zk_signal_close(s);
    return 0;
}

ZK_IO_TEST(signal, listeners_in_two_runtimes) {
    cross x = {0};
    zk_gate_init(&x.listening);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cross_thread, &x), 0);
    /* The other runtime wakes our root through the gate: it must be done
     * with that before our runtime is freed. */
    run_signals_join(cross_root_a, &x, &th);
    cr_assert_eq(x.got, 1);
    zk_gate_destroy(&x.listening);
}

/* ---------------------------------------------------------------------- */
/* ctrl-c                                                                 */
/* ---------------------------------------------------------------------- */

static int64_t ctrl_c_future_root(void *arg) {
    (void)arg;
    struct sigaction sa;
    zk_signal_future f;
    zk_ctrl_c_future_init(&f); /* listens from here on */
    sigaction(SIGINT, NULL, &sa);
    cr_assert_neq(sa.sa_handler, SIG_DFL);
    cr_assert_eq(raise(SIGINT), 0); /* would end the test if not caught */
    cr_assert_eq(zk_await(&f.base), 0);
    /* The last listener closed: ctrl-c ends the program again. */
    sigaction(SIGINT, NULL, &sa);
    cr_assert_eq(sa.sa_handler, SIG_DFL);
    cr_assert_eq(sa.sa_flags & SA_SIGINFO, 0);
    return 0;
}

ZK_IO_TEST(signal, ctrl_c_future) {
    run_signals(ctrl_c_future_root, NULL);
}

static int64_t ctrl_c_task(void *arg) {
    (void)arg;
    return zk_ctrl_c();
}

static int64_t ctrl_c_root(void *arg) {
    (void)arg;
    /* zk_ctrl_c() starts listening inside the call, at a moment this task
     * cannot observe; a listener of our own keeps the SIGINTs sent before
     * that from ending the test, and we send until the task has one. */
    zk_signal *guard = listen_or_fail(SIGINT);
    zk_task *t;
    cr_assert_eq(zk_spawn(ctrl_c_task, NULL, &t), 0);
    int sent = 0;
    while (!zk_task_is_finished(t)) {
        cr_assert_eq(raise(SIGINT), 0);
        sent++;
        cr_assert_eq(zk_sleep(ZK_MS(1)), 0);
    }
    int64_t r = -1;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, 0, "zk_ctrl_c: %s", zk_strerror((int)r));
    cr_assert_eq(zk_signal_recv(guard), sent);
    zk_signal_close(guard);
    return 0;
}

ZK_IO_TEST(signal, ctrl_c_helper) {
    run_signals(ctrl_c_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Deadlines, close, abort                                                */
/* ---------------------------------------------------------------------- */

static int64_t timeout_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR1);
    zk_signal_future f;
    zk_signal_recv_future_init(&f, s);
    zk_instant t0 = zk_now();
    cr_assert_eq(zk_await_timeout(&f.base, ZK_MS(30)), -ETIMEDOUT);
    cr_assert_geq(zk_now() - t0, ZK_MS(30));
    /* The listener is still usable: the timed-out recv reported nothing
     * and let go of it. */
    cr_assert_eq(raise(SIGUSR1), 0);
    zk_signal_recv_future_init(&f, s);
    cr_assert_eq(zk_await_timeout(&f.base, ZK_SEC(30)), 1);
    zk_signal_close(s);
    return 0;
}

ZK_IO_TEST(signal, recv_timeout) {
    run_signals(timeout_root, NULL);
}

static int64_t close_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR2);
    zk_task *t;
    cr_assert_eq(zk_spawn(recv_task, s, &t), 0);
    wait_until_receiving(s);
    cr_assert_eq(zk_signal_close(s), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, -EBADF, "recv: %s", zk_strerror((int)r));
    /* The disposition is back to the default. */
    struct sigaction sa;
    sigaction(SIGUSR2, NULL, &sa);
    cr_assert_eq(sa.sa_handler, SIG_DFL);
    return 0;
}

ZK_IO_TEST(signal, close_wakes_waiting_recv) {
    run_signals(close_root, NULL);
}

static int64_t abort_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR1);
    zk_task *t;
    cr_assert_eq(zk_spawn(recv_task, s, &t), 0);
    wait_until_receiving(s);
    cr_assert_eq(zk_task_abort(t), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    /* The aborted recv let go of the listener and reported nothing. */
    cr_assert_eq(raise(SIGUSR1), 0);
    cr_assert_eq(zk_signal_recv(s), 1);
    zk_signal_close(s);
    return 0;
}

ZK_IO_TEST(signal, abort_waiting_recv) {
    run_signals(abort_root, NULL);
}

/* A future task receives. */
static int64_t future_task_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR2);
    zk_signal_future f;
    zk_signal_recv_future_init(&f, s);
    zk_task *t;
    cr_assert_eq(zk_spawn_future(NULL, &f.base, sizeof f, &t), 0);
    cr_assert_eq(send_to_process(SIGUSR2), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, 1);
    zk_signal_close(s);
    return 0;
}

ZK_IO_TEST(signal, future_task_receives) {
    run_signals(future_task_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Dispositions                                                           */
/* ---------------------------------------------------------------------- */

static atomic_int user_handler_calls;

static void user_handler(int sig) {
    (void)sig;
    atomic_fetch_add(&user_handler_calls, 1);
}

static int64_t disposition_root(void *arg) {
    (void)arg;
    struct sigaction sa, cur;
    /* A handler that was there before is chained to, then restored. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = user_handler;
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    zk_signal *s = listen_or_fail(SIGUSR1);
    zk_signal *s2 = listen_or_fail(SIGUSR1);
    cr_assert_eq(raise(SIGUSR1), 0);
    cr_assert_eq(zk_signal_recv(s), 1);
    cr_assert_eq(atomic_load(&user_handler_calls), 1);
    zk_signal_close(s);
    /* One listener left: still zokio's handler. */
    sigaction(SIGUSR1, NULL, &cur);
    cr_assert_neq(cur.sa_handler, user_handler);
    cr_assert_eq(zk_signal_recv(s2), 1);
    zk_signal_close(s2);
    sigaction(SIGUSR1, NULL, &cur);
    cr_assert_eq(cur.sa_handler, user_handler);

    /* An ignored signal is ignored again afterwards. */
    sa.sa_handler = SIG_IGN;
    cr_assert_eq(sigaction(SIGHUP, &sa, NULL), 0);
    s = listen_or_fail(SIGHUP);
    cr_assert_eq(raise(SIGHUP), 0);
    cr_assert_eq(zk_signal_recv(s), 1);
    zk_signal_close(s);
    sigaction(SIGHUP, NULL, &cur);
    cr_assert_eq(cur.sa_handler, SIG_IGN);

    /* Listening again after that works (the handler is reinstalled). */
    s = listen_or_fail(SIGHUP);
    cr_assert_eq(raise(SIGHUP), 0);
    cr_assert_eq(zk_signal_recv(s), 1);
    zk_signal_close(s);
    return 0;
}

ZK_IO_TEST(signal, disposition_chained_and_restored) {
    run_signals(disposition_root, NULL);
}

/* A library's handler put over zokio's that chains to it, as handlers
 * should, is left in place when the last listener closes; a new listener
 * then chains to it in turn. A delivery must go round once: zokio's, the
 * library's, zokio's again (which returns at once), not for ever. */
static struct sigaction lib_prev;
static atomic_int lib_calls;

static void lib_handler(int sig, siginfo_t *info, void *uc) {
    if (atomic_fetch_add(&lib_calls, 1) > 100) { /* the loop: end it */
        static const char msg[] = "handlers call each other for ever\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(3);
    }
    if (lib_prev.sa_flags & SA_SIGINFO)
        lib_prev.sa_sigaction(sig, info, uc);
    else if (lib_prev.sa_handler != SIG_DFL && lib_prev.sa_handler != SIG_IGN)
        lib_prev.sa_handler(sig);
}

static int64_t chain_loop_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = lib_handler;
    sa.sa_flags = SA_SIGINFO;
    cr_assert_eq(sigaction(SIGUSR2, &sa, &lib_prev), 0);
    cr_assert_eq(raise(SIGUSR2), 0); /* the library's, then zokio's */
    cr_assert_eq(zk_signal_recv(s), 1);
    cr_assert_eq(zk_signal_close(s), 0);
    s = listen_or_fail(SIGUSR2); /* zokio's again, chaining to it */
    atomic_store(&lib_calls, 0);
    cr_assert_eq(raise(SIGUSR2), 0);
    cr_assert_eq(zk_signal_recv(s), 1, "one delivery, counted once");
    cr_assert_eq(atomic_load(&lib_calls), 1);
    cr_assert_eq(zk_signal_close(s), 0);
    /* The library's handler is what is left; then the default again. */
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    return 0;
}

ZK_IO_TEST(signal, a_handler_that_chains_back_is_called_once) {
    run_signals(chain_loop_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Bad input                                                              */
/* ---------------------------------------------------------------------- */

static int64_t bad_args_root(void *arg) {
    (void)arg;
    zk_signal *s = NULL;
    const int refused[] = {0,       -1,      NSIG,   1000,   SIGKILL,
                           SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        cr_assert_eq(zk_signal_listen(refused[i], &s), -EINVAL, "%d",
                     refused[i]);
    cr_assert_null(s);
    cr_assert_eq(zk_signal_listen(SIGUSR1, NULL), -EINVAL);
    cr_assert_eq(zk_signal_recv(NULL), -EINVAL);
    cr_assert_eq(zk_signal_close(NULL), -EINVAL);
    zk_signal_future f;
    zk_signal_recv_future_init(&f, NULL);
    cr_assert_eq(zk_await(&f.base), -EINVAL);
    /* A second recv while one waits is refused, not queued. */
    s = listen_or_fail(SIGUSR1);
    zk_task *t;
    cr_assert_eq(zk_spawn(recv_task, s, &t), 0);
    wait_until_receiving(s);
    cr_assert_eq(zk_signal_recv(s), -EBUSY);
    cr_assert_eq(raise(SIGUSR1), 0);
    int64_t r;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, 1);
    cr_assert_eq(zk_signal_close(s), 0);
    return 0;
}

ZK_IO_TEST(signal, bad_arguments) {
    run_signals(bad_args_root, NULL);
}

/* A recv polled on a thread that is not one of the listener's runtime's
 * workers is refused before it takes anything: the delivery stays for the
 * runtime's own recv. */
static void *foreign_recv_thread(void *arg) {
    zk_signal_future f;
    zk_signal_recv_future_init(&f, arg);
    return (void *)(intptr_t)zk_test_poll_once_and_drop(&f.base);
}

static int64_t foreign_recv_root(void *arg) {
    (void)arg;
    zk_signal *s = listen_or_fail(SIGUSR2);
    cr_assert_eq(raise(SIGUSR2), 0);
    pthread_t th;
    void *res;
    cr_assert_eq(pthread_create(&th, NULL, foreign_recv_thread, s), 0);
    cr_assert_eq(pthread_join(th, &res), 0);
    cr_assert_eq((intptr_t)res, -EPERM, "recv on a foreign thread: %lld",
                 (long long)(intptr_t)res);
    cr_assert_eq(zk_signal_recv(s), 1, "the delivery was taken");
    cr_assert_eq(zk_signal_close(s), 0);
    return 0;
}

ZK_IO_TEST(signal, recv_outside_its_runtime_is_eperm_and_takes_nothing) {
    run_signals(foreign_recv_root, NULL);
}

ZK_IO_TEST(signal, outside_a_runtime) {
    zk_signal *s = NULL;
    cr_assert_eq(zk_signal_listen(SIGUSR1, &s), -EPERM);
    cr_assert_null(s);
    cr_assert_eq(zk_ctrl_c(), -EPERM);
    zk_signal_future f;
    zk_ctrl_c_future_init(&f);
    int64_t out = 0;
    zk_waker noop = zk_waker_noop();
    zk_context cx;
    zk_context_init(&cx, &noop);
    cr_assert_eq(zk_future_poll(&f.base, &cx, &out), ZK_READY);
    cr_assert_eq(out, -EPERM);
    zk_future_drop(&f.base);
    /* Nothing was installed. */
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    cr_assert_eq(sa.sa_handler, SIG_DFL);
}
