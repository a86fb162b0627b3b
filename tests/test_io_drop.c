/*
 * test_io_drop.c - an I/O operation's future dropped at each of its states:
 * never polled; prepared but not yet handed to the kernel (io_uring: its
 * submission queue entry is written, the worker submits only after the
 * task's run); submitted and waiting in the kernel; completed in the kernel
 * but not yet reaped; completed and reaped but its result never seen.
 * After each drop the kernel must never write into the dropped buffer or
 * take the data or connection that arrives next (unless it had already
 * done so when the future was dropped), a new operation on the same
 * stream or listener must get it, and nothing may leak: descriptors (every
 * test counts them), memory and tasks (LeakSanitizer in ASan builds).
 *
 * Nothing here sleeps or measures time: each state is reached by the order
 * of calls within one task run (a worker submits only between its tasks'
 * runs, or inside one when its submission queue is full, and reaps only
 * between them), by an operation whose completion proves that earlier ones
 * were submitted, or by a waker that reports the completion.
 *
 * On a multi-thread runtime a task on the other worker may also drop or
 * poll an operation this worker prepared: the drop must still cancel it,
 * and a poll that has to wait again must wait where its own worker
 * submits and reaps.
 *
 * Built for both runtime kinds and run on both I/O backends (ctest sets
 * ZOKIO_IO_BACKEND). On epoll an operation is a waiter on its handle's
 * readiness, so "submitted" and "completed" mean queued and woken. On
 * io_uring a socket or pipe operation that would block waits in the ring
 * for readiness (a poll) and is made in the task, and a stream read copies
 * from the stream's multishot receive queue: there too a drop after
 * completion has taken nothing, and the expectations are the same.
 */
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_helpers.h"

ZK_SUITE(io_drop);

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */

typedef struct pair {
    zk_stream *a, *b;
    zk_listener *l; /* NULL for a socketpair or a pipe */
    bool pipe;      /* a pipe: `a` reads, `b` writes */
} pair;

/* A connected TCP pair: `a` connected, `b` accepted. */
static void make_pair(pair *p) {
    zk_addr addr;
    p->l = zk_test_listen(&addr);
    cr_assert_eq(zk_tcp_connect(&addr, &p->a), 0);
    cr_assert_eq(zk_listener_accept(p->l, &p->b, NULL), 0);
}

/* A Unix socketpair made into streams (no listener, no await). */
static void make_local_pair(pair *p) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(zk_stream_from_fd(sv[0], &p->a), 0);
    cr_assert_eq(zk_stream_from_fd(sv[1], &p->b), 0);
    p->l = NULL;
}

/* A pipe made into streams: `a` its reading end, `b` its writing end. */
static void make_pipe_pair(pair *p) {
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_eq(zk_stream_from_fd(pfd[0], &p->a), 0);
    cr_assert_eq(zk_stream_from_fd(pfd[1], &p->b), 0);
    p->l = NULL;
    p->pipe = true;
}

static void close_pair(pair *p) {
    cr_assert_eq(zk_stream_close(p->a), 0);
    if (p->b) /* NULL once a pipe's writing end was closed */
        cr_assert_eq(zk_stream_close(p->b), 0);
    if (p->l)
        cr_assert_eq(zk_listener_close(p->l), 0);
}

/* On io_uring, once this returns every operation the calling task
 * prepared earlier in its current run has been submitted: the write is
 * prepared after them on the same ring (the task has not left its run), a
 * ring submits its entries in order, and the write has completed. Must be
 * called with no await since those preparations. */
static void ring_barrier(pair *aux) {
    cr_assert_eq(zk_stream_write_all(aux->a, "!", 1), 0);
    char c = 0;
    cr_assert_eq(zk_stream_read_exact(aux->b, &c, 1), 0);
    cr_assert_eq(c, '!');
}

/* A clone of the calling task's own waker (drop it with zk_waker_drop):
 * an operation polled with it holds a reference to the task, so a waker
 * its drop forgot to release shows up as a leaked task. Awaited before
 * the sequences under test (a ready await may yield). */
typedef struct grab_waker {
    zk_future base;
    zk_waker w;
} grab_waker;

static zk_poll grab_poll(zk_future *f, zk_context *cx, int64_t *out) {
    ((grab_waker *)f)->w = zk_waker_clone(zk_context_waker(cx));
    *out = 0;
    return ZK_READY;
}

static const zk_future_ops grab_ops = {grab_poll, NULL};

static zk_waker task_waker(void) {
    grab_waker g = {{&grab_ops}, {0}};
    cr_assert_eq(zk_await(&g.base), 0);
    return g.w;
}

/* A waker that opens a gate (and counts): the task awaits the gate to
 * learn that the operation polled with it was woken, i.e. on io_uring that
 * its completion was reaped. Callable from any thread. */
typedef struct wake_gate {
    zk_gate gate;
    atomic_int wakes;
} wake_gate;

static zk_waker wg_clone(const void *d);
static void wg_wake(const void *d) {
    wake_gate *g = (wake_gate *)d;
    atomic_fetch_add(&g->wakes, 1);
    zk_gate_open(&g->gate);
}
static void wg_drop(const void *d) {
    (void)d;
}
static const zk_waker_ops wg_ops = {wg_clone, wg_wake, wg_wake, wg_drop};
static zk_waker wg_clone(const void *d) {
    return zk_waker_new(d, &wg_ops);
}

static void wake_gate_init(wake_gate *g) {
    zk_gate_init(&g->gate);
    atomic_init(&g->wakes, 0);
}

/* Waits until something woke the gate's waker. */
static void wake_gate_wait(wake_gate *g) {
    zk_gate_wait w = zk_gate_waiter(&g->gate, NULL);
    cr_assert_eq(zk_await_timeout(&w.base, ZK_TEST_GUARD), 7,
                 "the operation was never woken");
}

/* Polls `f` once by hand with `w`; it must stay pending. */
static void poll_pending(zk_io_future *f, const zk_waker *w) {
    zk_context cx;
    zk_context_init(&cx, w);
    int64_t out = 0;
    zk_poll r = zk_future_poll(&f->base, &cx, &out);
    cr_assert_eq(r, ZK_PENDING, "ready at once with %lld", (long long)out);
}

/* Futures live on the heap and are freed right after their drop: whatever
 * still pointed at one (a waiter list, a slot, a completion) is then a
 * use after free that AddressSanitizer reports. */
static zk_io_future *new_future(void) {
    zk_io_future *f = malloc(sizeof *f);
    cr_assert_not_null(f);
    return f;
}

static void drop_and_free(zk_io_future *f) {
    zk_future_drop(&f->base);
    memset(f, 0xA5, sizeof *f);
    free(f);
}

static void assert_canary(const char *buf, size_t size, const char *what) {
    for (size_t i = 0; i < size; i++)
        cr_assert_eq(buf[i], 'C',
                     "%s: byte %zu of the dropped buffer was "
                     "written (0x%02x)",
                     what, i, (unsigned char)buf[i]);
}

/* Writes `msg` on `s` and ends its sending side. */
static void send_and_end(zk_stream *s, const char *msg) {
    cr_assert_eq(zk_stream_write_all(s, msg, strlen(msg)), 0);
    cr_assert_eq(zk_stream_shutdown(s, SHUT_WR), 0);
}

/* send_and_end() from `p->b`; a pipe's end is its writing end closed. */
static void pair_send_and_end(pair *p, const char *msg) {
    if (!p->pipe) {
        send_and_end(p->b, msg);
        return;
    }
    cr_assert_eq(zk_stream_write_all(p->b, msg, strlen(msg)), 0);
    cr_assert_eq(zk_stream_close(p->b), 0);
    p->b = NULL;
}

/* Reads `s` to its end: what arrives must be exactly `expect`. Reading to
 * the end cannot hang when an operation that should be gone took the data
 * instead: the read then sees the end with bytes missing. */
static void expect_until_end(zk_stream *s, const char *expect) {
    char buf[256];
    size_t got = 0;
    for (;;) {
        cr_assert_lt(got, sizeof buf - 1, "more data than expected");
        int64_t n = zk_stream_read(s, buf + got, sizeof buf - 1 - got);
        cr_assert_geq(n, 0, "read: %s", zk_strerror((int)n));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    cr_assert_str_eq(buf, expect, "the stream lost or gained data");
}

/* After a read into `canary` was dropped: `msg` sent from `from` reaches
 * the next read on `to` whole, and the dropped buffer was never written. */
static void late_data_skips_dropped(zk_stream *from, zk_stream *to,
                                    const char *msg, const char *canary,
                                    size_t size, const char *what) {
    send_and_end(from, msg);
    expect_until_end(to, msg);
    assert_canary(canary, size, what);
}

/* The local port of a stream (matches the peer port an accept reports). */
static int local_port(zk_stream *s) {
    zk_addr a;
    cr_assert_eq(zk_stream_local_addr(s, &a), 0);
    return zk_addr_port(&a);
}

/* Accepts on `l`: the connection must be `client`'s, and it must work. */
static void accept_expect(zk_listener *l, zk_stream *client) {
    zk_stream *srv = NULL;
    zk_addr peer;
    int rc = zk_listener_accept(l, &srv, &peer);
    cr_assert_eq(rc, 0, "accept: %s", zk_strerror(rc));
    cr_assert_eq(zk_addr_port(&peer), local_port(client),
                 "accepted another connection than the next one queued "
                 "(a dropped accept took one)");
    cr_assert_eq(zk_stream_write_all(client, "hi", 2), 0);
    char buf[2];
    cr_assert_eq(zk_stream_read_exact(srv, buf, 2), 0);
    cr_assert_eq(memcmp(buf, "hi", 2), 0);
    cr_assert_eq(zk_stream_close(srv), 0);
}

/* ---------------------------------------------------------------------- */
/* Reads                                                                  */
/* ---------------------------------------------------------------------- */

/* Never polled, then prepared and dropped in the same run: the entry in
 * the submission queue becomes a no-op at the next flush, so the data
 * that arrives later goes to the next read and never into the dropped
 * buffer. */
static int64_t read_prepared_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    zk_waker tw = task_waker();
    char canary[16];
    memset(canary, 'C', sizeof canary);
    zk_io_future *f = new_future();
    zk_stream_read_future_init(f, p.a, canary, sizeof canary);
    drop_and_free(f); /* never polled: nothing to undo */

    f = new_future();
    zk_stream_read_future_init(f, p.a, canary, sizeof canary);
    poll_pending(f, &tw);
    drop_and_free(f); /* prepared, not submitted: same run */

    late_data_skips_dropped(p.b, p.a, "late data", canary, sizeof canary,
                            "prepared read");
    /* The stream still works the other way. */
    send_and_end(p.a, "back");
    expect_until_end(p.b, "back");
    close_pair(&p);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, read_dropped_before_submission) {
    zk_test_run(read_prepared_root, NULL);
}

/* Submitted (waiting in the kernel for data), then dropped: cancelled in
 * the kernel before the drop returns. */
static int64_t read_submitted_root(void *arg) {
    (void)arg;
    pair p, aux;
    make_pair(&p);
    make_local_pair(&aux);
    zk_waker tw = task_waker();
    char canary[16];
    memset(canary, 'C', sizeof canary);
    zk_io_future *f = new_future();
    zk_stream_read_future_init(f, p.a, canary, sizeof canary);
    poll_pending(f, &tw);
    ring_barrier(&aux); /* the read is in the kernel now */
    drop_and_free(f);

    late_data_skips_dropped(p.b, p.a, "late data", canary, sizeof canary,
                            "submitted read");
    close_pair(&p);
    close_pair(&aux);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, read_dropped_after_submission) {
    zk_test_run(read_submitted_root, NULL);
}

/* A read of `p->a` into `buf` (filled with the canary), polled by hand
 * with `g`'s waker and woken by "first" sent from `p->b`: returned pending
 * and woken, its result not yet seen. */
static zk_io_future *read_woken_by_first(pair *p, wake_gate *g, char *buf,
                                         size_t len) {
    wake_gate_init(g);
    zk_waker w = zk_waker_new(g, &wg_ops);
    memset(buf, 'C', len);
    zk_io_future *f = new_future();
    zk_stream_read_future_init(f, p->a, buf, len);
    poll_pending(f, &w);
    cr_assert_eq(zk_stream_write_all(p->b, "first", 5), 0);
    wake_gate_wait(g);
    return f;
}

/* Completed (io_uring: the completion was reaped and the waker woken;
 * epoll: readiness woke it) but its result never seen. Nothing was read:
 * epoll, and io_uring's readiness wait, read in the poll; a read-ahead
 * read copies from the stream's queue in the poll. The data stays for the
 * next read. `arg` non-NULL: on a pipe instead of a TCP pair. */
static int64_t read_completed_root(void *arg) {
    pair p = {0};
    if (arg)
        make_pipe_pair(&p);
    else
        make_pair(&p);
    wake_gate g;
    char buf[16];
    zk_io_future *f = read_woken_by_first(&p, &g, buf, sizeof buf);
    drop_and_free(f);
    cr_assert_eq(atomic_load(&g.wakes), 1);

    assert_canary(buf, sizeof buf, "completed read");
    pair_send_and_end(&p, "late");
    expect_until_end(p.a, "firstlate");
    close_pair(&p);
    zk_gate_destroy(&g.gate);
    return 0;
}

ZK_IO_TEST(io_drop, read_dropped_after_completion) {
    zk_test_run(read_completed_root, NULL);
}

/* The same on a pipe (no read-ahead: on io_uring a pipe read that would
 * block waits for readiness). */
ZK_IO_TEST(io_drop, pipe_read_dropped_after_completion) {
    static bool on_a_pipe = true;
    zk_test_run(read_completed_root, &on_a_pipe);
}

/* Woken (its readiness came, or io_uring's poll for it completed), then
 * its stream closed before the task polled again: the call is not made on
 * the closed handle; it ends with -EBADF, as one in flight does. */
static int64_t read_woken_then_closed_root(void *arg) {
    (void)arg;
    pair p = {0};
    make_pipe_pair(&p);
    wake_gate g;
    char buf[16];
    zk_io_future *f = read_woken_by_first(&p, &g, buf, sizeof buf);
    cr_assert_eq(zk_stream_close(p.a), 0);
    zk_waker w = zk_waker_new(&g, &wg_ops);
    zk_context cx;
    zk_context_init(&cx, &w);
    int64_t out = 0;
    cr_assert_eq(zk_future_poll(&f->base, &cx, &out), ZK_READY);
    cr_assert_eq(out, -EBADF, "read: %s", zk_strerror((int)out));
    assert_canary(buf, sizeof buf, "read of a closed stream");
    drop_and_free(f);
    cr_assert_eq(zk_stream_close(p.b), 0);
    zk_gate_destroy(&g.gate);
    return 0;
}

ZK_IO_TEST(io_drop, read_woken_then_its_stream_closed_is_ebadf) {
    zk_test_run(read_woken_then_closed_root, NULL);
}

/* The same for a datagram: the one that woke the dropped receive is the
 * next receive's. */
static int64_t udp_recv_completed_root(void *arg) {
    (void)arg;
    zk_addr any, to;
    cr_assert_eq(zk_addr_parse("127.0.0.1:0", &any), 0);
    zk_udp *a, *b;
    cr_assert_eq(zk_udp_bind(&any, &a), 0);
    cr_assert_eq(zk_udp_bind(&any, &b), 0);
    cr_assert_eq(zk_udp_local_addr(b, &to), 0);
    wake_gate g;
    wake_gate_init(&g);
    zk_waker wk = zk_waker_new(&g, &wg_ops);
    char buf[16];
    memset(buf, 'C', sizeof buf);
    zk_addr from;
    zk_io_future *f = new_future();
    zk_udp_recv_from_future_init(f, b, buf, sizeof buf, &from);
    poll_pending(f, &wk);
    cr_assert_eq(zk_udp_send_to(a, "one", 3, &to), 3);
    wake_gate_wait(&g);
    drop_and_free(f);
    assert_canary(buf, sizeof buf, "completed datagram receive");
    cr_assert_eq(zk_udp_send_to(a, "two", 3, &to), 3);
    char got[16];
    cr_assert_eq(zk_udp_recv(b, got, sizeof got), 3);
    cr_assert_eq(memcmp(got, "one", 3), 0, "the first datagram was lost");
    cr_assert_eq(zk_udp_recv(b, got, sizeof got), 3);
    cr_assert_eq(memcmp(got, "two", 3), 0);
    cr_assert_eq(zk_udp_close(a), 0);
    cr_assert_eq(zk_udp_close(b), 0);
    zk_gate_destroy(&g.gate);
    return 0;
}

ZK_IO_TEST(io_drop, udp_recv_dropped_after_completion) {
    zk_test_run(udp_recv_completed_root, NULL);
}

/* Prepared, dropped and the stream closed in the same run: the dropped
 * entry still names the descriptor, so it stays open until that entry's
 * (no-op) completion is reaped, and is closed then: the peer sees the end. */
static int64_t read_prepared_close_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    zk_waker tw = task_waker();
    char canary[16];
    memset(canary, 'C', sizeof canary);
    zk_io_future *f = new_future();
    zk_stream_read_future_init(f, p.a, canary, sizeof canary);
    poll_pending(f, &tw);
    drop_and_free(f);
    cr_assert_eq(zk_stream_close(p.a), 0);

    char c;
    zk_io_future rd;
    zk_stream_read_future_init(&rd, p.b, &c, 1);
    cr_assert_eq(zk_await_timeout(&rd.base, ZK_TEST_GUARD), 0,
                 "the peer never saw the end: the descriptor was not closed");
    assert_canary(canary, sizeof canary, "prepared read, closed stream");
    cr_assert_eq(zk_stream_close(p.b), 0);
    cr_assert_eq(zk_listener_close(p.l), 0);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, read_dropped_before_submission_then_closed) {
    zk_test_run(read_prepared_close_root, NULL);
}

static int64_t send_real_task(void *arg) {
    send_and_end(arg, "real");
    return 0;
}

/* A write that would block (the peer reads nothing, both socket buffers
 * are full), dropped before it went out, sends nothing: on io_uring it was
 * prepared and not yet submitted, on epoll it waited for room. Writes with
 * room complete at their first poll on both backends. */
static int64_t write_prepared_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    zk_waker tw = task_waker();
    static char zombie[65536];
    memset(zombie, 'z', sizeof zombie);
    size_t sent = 0;
    zk_context cx;
    zk_context_init(&cx, &tw);
    for (;;) {
        zk_io_future *f = new_future();
        zk_stream_write_future_init(f, p.a, zombie, sizeof zombie);
        int64_t out = 0;
        zk_poll r = zk_future_poll(&f->base, &cx, &out);
        if (r == ZK_PENDING) {
            drop_and_free(f);
            break;
        }
        drop_and_free(f);
        /* It had room: it wrote at once, as reported. */
        cr_assert_gt(out, 0, "write: %s", zk_strerror((int)out));
        sent += (size_t)out;
        cr_assert_lt(sent, (size_t)64 << 20, "the socket never filled up");
    }
    /* The socket is full: "real" goes out as the reader below drains it. */
    zk_task *sender;
    cr_assert_eq(zk_spawn(send_real_task, p.a, &sender), 0);
    /* Exactly the bytes reported written, then "real": a byte of the
     * dropped write would come before "real". */
    static char buf[65536];
    size_t got = 0, tail = 0;
    char last[5] = {0};
    for (;;) {
        int64_t n = zk_stream_read(p.b, buf, sizeof buf);
        cr_assert_geq(n, 0, "read: %s", zk_strerror((int)n));
        if (n == 0)
            break;
        for (int64_t k = 0; k < n; k++, got++) {
            if (got < sent)
                cr_assert_eq(buf[k], 'z');
            else if (tail < 4)
                last[tail++] = buf[k];
            else
                cr_assert(false, "more data than was reported written");
        }
    }
    cr_assert_eq(got, sent + 4, "%zu bytes arrived, %zu + 4 expected", got,
                 sent);
    cr_assert_str_eq(last, "real", "the dropped write sent data");
    cr_assert_eq(zk_task_join(&sender, NULL), 0);
    close_pair(&p);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, write_dropped_before_submission) {
    zk_test_run(write_prepared_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Many drops in one run                                                  */
/* ---------------------------------------------------------------------- */

#define NSTREAMS 8
#define NREADS   200

/* NREADS reads over NSTREAMS streams prepared and dropped in one run, then
 * NREADS more submitted and dropped: every stream still carries its data
 * to a new read, both ways, and no dropped buffer is written. */
static int64_t many_reads_root(void *arg) {
    (void)arg;
    pair p[NSTREAMS], aux;
    for (int s = 0; s < NSTREAMS; s++)
        make_pair(&p[s]);
    make_local_pair(&aux);
    zk_waker tw = task_waker();
    zk_io_future *f = calloc(NREADS, sizeof *f);
    char(*bufs)[16] = malloc(NREADS * sizeof *bufs);
    cr_assert(f && bufs);
    memset(bufs, 'C', NREADS * sizeof *bufs);

    for (int i = 0; i < NREADS; i++) {
        zk_stream_read_future_init(&f[i], p[i % NSTREAMS].a, bufs[i],
                                   sizeof bufs[i]);
        poll_pending(&f[i], &tw);
    }
    for (int i = 0; i < NREADS; i++)
        zk_future_drop(&f[i].base);

    for (int i = 0; i < NREADS; i++) {
        zk_stream_read_future_init(&f[i], p[i % NSTREAMS].a, bufs[i],
                                   sizeof bufs[i]);
        poll_pending(&f[i], &tw);
    }
    ring_barrier(&aux);
    for (int i = 0; i < NREADS; i++)
        zk_future_drop(&f[i].base);
    memset(f, 0xA5, NREADS * sizeof *f);
    free(f);

    for (int s = 0; s < NSTREAMS; s++) {
        char msg[32];
        snprintf(msg, sizeof msg, "stream %d", s);
        send_and_end(p[s].b, msg);
        expect_until_end(p[s].a, msg);
        snprintf(msg, sizeof msg, "reply %d", s);
        send_and_end(p[s].a, msg);
        expect_until_end(p[s].b, msg);
    }
    for (int i = 0; i < NREADS; i++)
        assert_canary(bufs[i], sizeof bufs[i], "one of many reads");
    for (int s = 0; s < NSTREAMS; s++)
        close_pair(&p[s]);
    close_pair(&aux);
    free(bufs);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, many_reads_dropped_in_one_run) {
    zk_test_run(many_reads_root, NULL);
}

/* More reads prepared and dropped in one run than the submission queue
 * (1024 entries) and the completion queue (2048) hold: the queue fills and
 * is flushed inside the run, each time turning the dropped entries into
 * no-ops, and their completions overflow the completion queue. */
#define NFLOOD 5000

static int64_t flood_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    zk_waker tw = task_waker();
    char canary[16];
    memset(canary, 'C', sizeof canary);
    for (int i = 0; i < NFLOOD; i++) {
        zk_io_future *f = new_future();
        zk_stream_read_future_init(f, p.a, canary, sizeof canary);
        poll_pending(f, &tw);
        drop_and_free(f);
    }
    late_data_skips_dropped(p.b, p.a, "after the flood", canary, sizeof canary,
                            "flooded read");
    close_pair(&p);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, more_drops_in_one_run_than_the_ring_holds) {
    zk_test_run(flood_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Accepts                                                                */
/* ---------------------------------------------------------------------- */

/* Prepared and dropped before submission (`arg` NULL), or submitted (the
 * accept waits in the kernel) and dropped: it takes none of the
 * connections that arrive next, which the next two accepts get, in order.
 * The dropped accept never wrote its peer address. */
static int64_t accept_dropped_root(void *arg) {
    bool submitted = arg != NULL;
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    pair aux;
    make_local_pair(&aux);
    zk_waker tw = task_waker();
    zk_stream *lost = NULL;
    zk_addr peer;
    zk_io_future *f = new_future();
    zk_listener_accept_future_init(f, l, &lost, &peer);
    poll_pending(f, &tw);
    if (submitted)
        ring_barrier(&aux);
    drop_and_free(f);

    zk_stream *c1, *c2;
    cr_assert_eq(zk_tcp_connect(&addr, &c1), 0);
    cr_assert_eq(zk_tcp_connect(&addr, &c2), 0);
    accept_expect(l, c1);
    accept_expect(l, c2);
    cr_assert_null(lost);
    const unsigned char *pb = (const unsigned char *)&peer;
    for (size_t i = 0; i < sizeof peer; i++)
        cr_assert_eq(pb[i], 0, "the dropped accept wrote a peer address");
    zk_stream_close(c1);
    zk_stream_close(c2);
    zk_listener_close(l);
    close_pair(&aux);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, accept_dropped_before_submission) {
    zk_test_run(accept_dropped_root, NULL);
}

ZK_IO_TEST(io_drop, accept_dropped_after_submission) {
    zk_test_run(accept_dropped_root, "submitted");
}

/* Completed and reaped, its result never seen. The accept had only been
 * woken (epoll) or had its readiness poll complete (io_uring): the
 * connection waits for the next accept, and the one after it follows. */
static int64_t accept_completed_root(void *arg) {
    (void)arg;
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    wake_gate g;
    wake_gate_init(&g);
    zk_waker w = zk_waker_new(&g, &wg_ops);
    zk_stream *lost = NULL;
    zk_addr peer;
    zk_io_future *f = new_future();
    zk_listener_accept_future_init(f, l, &lost, &peer);
    poll_pending(f, &w);
    int fds = zk_test_fd_count();
    zk_stream *c1, *c2;
    cr_assert_eq(zk_tcp_connect(&addr, &c1), 0);
    wake_gate_wait(&g);
    /* The client's socket only: nothing was accepted. */
    cr_assert_eq(zk_test_fd_count(), fds + 1);
    drop_and_free(f);
    cr_assert_eq(zk_test_fd_count(), fds + 1);
    cr_assert_null(lost);
    accept_expect(l, c1);
    cr_assert_eq(zk_tcp_connect(&addr, &c2), 0);
    accept_expect(l, c2);
    zk_stream_close(c1);
    zk_stream_close(c2);
    zk_listener_close(l);
    zk_gate_destroy(&g.gate);
    return 0;
}

ZK_IO_TEST(io_drop, accept_dropped_after_completion) {
    zk_test_run(accept_completed_root, NULL);
}

/* io_uring: completed in the kernel but not yet reaped when dropped. The
 * whole sequence runs in one task run on the ring's own thread, so nothing
 * reaps meanwhile: the accept's readiness poll is submitted by filling the
 * submission queue (more than 1024 reads of an empty pipe prepared after
 * it, each a poll too, force a flush inside the run), a blocking
 * connect(2) completes it (the kernel runs the poll's completion on this
 * thread, at the exit of one of its system calls: here, the connect's),
 * and the drop comes before the run ends. The completion is reaped later
 * and finds no operation; nothing was accepted, so the connection waits
 * for the next accept, as on epoll. */
#define NFILL 1100

static int64_t accept_unreaped_root(void *arg) {
    (void)arg;
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    zk_stream *in;
    cr_assert_eq(zk_stream_from_fd(pfd[0], &in), 0);
    zk_waker tw = task_waker();
    zk_stream *lost = NULL;
    zk_addr peer;
    zk_io_future *f = new_future();
    zk_listener_accept_future_init(f, l, &lost, &peer);
    poll_pending(f, &tw);
    char sink[8];
    for (int i = 0; i < NFILL; i++) {
        zk_io_future *d = new_future();
        zk_stream_read_future_init(d, in, sink, sizeof sink);
        poll_pending(d, &tw);
        drop_and_free(d);
    }
    int fds = zk_test_fd_count();
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(cfd, 0);
    cr_assert_eq(connect(cfd, &addr.u.sa, addr.len), 0);
    drop_and_free(f);
    cr_assert_null(lost);
    cr_assert_eq(zk_test_fd_count(), fds + 1, "an accepted descriptor");

    zk_stream *c1, *c2;
    cr_assert_eq(zk_stream_from_fd(cfd, &c1), 0);
    accept_expect(l, c1);
    cr_assert_eq(zk_tcp_connect(&addr, &c2), 0);
    accept_expect(l, c2);
    zk_stream_close(c1);
    zk_stream_close(c2);
    zk_listener_close(l);
    cr_assert_eq(zk_stream_close(in), 0);
    close(pfd[1]);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, accept_dropped_when_completed_but_not_reaped) {
    zk_test_run(accept_unreaped_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Dropped by another thread                                              */
/* ---------------------------------------------------------------------- */

static void *drop_thread(void *arg) {
    zk_future_drop(arg);
    return NULL;
}

/* Drops `f` on a thread outside the runtime and waits for it (meanwhile
 * this worker stays in the current task run, so its ring cannot submit),
 * then frees it. */
static void drop_elsewhere(zk_io_future *f) {
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, drop_thread, &f->base), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    memset(f, 0xA5, sizeof *f);
    free(f);
}

/* A read prepared on this worker's ring and dropped by another thread
 * before the ring submitted it; then one submitted and dropped by another
 * thread (a cancellation from a thread that is not the ring's). */
static int64_t other_thread_root(void *arg) {
    (void)arg;
    pair p, q, aux;
    make_pair(&p);
    make_pair(&q);
    make_local_pair(&aux);
    zk_waker tw = task_waker();
    char canary[16], canary2[16];
    memset(canary, 'C', sizeof canary);
    memset(canary2, 'C', sizeof canary2);
    zk_io_future *f = new_future();
    zk_stream_read_future_init(f, p.a, canary, sizeof canary);
    poll_pending(f, &tw);
    drop_elsewhere(f);
    late_data_skips_dropped(p.b, p.a, "late data", canary, sizeof canary,
                            "prepared read, other thread");

    f = new_future();
    zk_stream_read_future_init(f, q.a, canary2, sizeof canary2);
    poll_pending(f, &tw);
    ring_barrier(&aux);
    drop_elsewhere(f);
    late_data_skips_dropped(q.b, q.a, "late data", canary2, sizeof canary2,
                            "submitted read, other thread");

    close_pair(&p);
    close_pair(&q);
    close_pair(&aux);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, read_dropped_by_a_thread_outside_the_runtime) {
    zk_test_run(other_thread_root, NULL);
}

#if ZK_TEST_MT
/* ---------------------------------------------------------------------- */
/* Handed to another worker                                               */
/* ---------------------------------------------------------------------- */

/* Multi-thread runtime: a task on the other worker works on an operation
 * the calling task prepared, while the calling task keeps its own worker
 * inside its run (waiting on a condition variable, not on the runtime):
 * that worker can neither submit or reap its ring nor run the other task,
 * so the other worker must. The other task waits on a gate opened from a
 * plain thread (a wake from a worker could put it in that worker's own
 * LIFO slot). */
typedef struct handoff {
    zk_runtime *rt;
    zk_gate go;
    zk_io_future *f; /* what the other task works on */
    pair *p;
    zk_task *task;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    pthread_t runner; /* the thread the other task ran on */
} handoff;

/* The other task's first and last steps. */
static void handoff_begin(handoff *h) {
    zk_gate_wait w = zk_gate_waiter(&h->go, NULL);
    cr_assert_eq(zk_await(&w.base), 7);
}

static void handoff_end(handoff *h) {
    pthread_t self = zk_test_thread();
    pthread_mutex_lock(&h->lock);
    h->runner = self;
    h->done = true;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

static int64_t nudge_task(void *arg) {
    (void)arg;
    return 0;
}

static uint64_t parks_total(zk_runtime *rt) {
    uint64_t n = 0;
    for (size_t i = 0; i < zk_runtime_workers(rt); i++) {
        zk_worker_metrics m;
        if (zk_runtime_worker_metrics(rt, i, &m) == 0)
            n += m.parks;
    }
    return n;
}

/* Opens the gate (the other task goes to the global queue), then makes
 * sure the other worker runs it. A worker that is still awake is counted
 * on to look at the global queue soon, so the wake does not wake it; but
 * the other worker may be on its way to sleep without looking again (it
 * could not become a searcher while the blocked worker still searched,
 * before that worker took the calling task), and the blocked worker will
 * not look either. So each time the other worker goes to sleep (its park
 * count moves) while the other task is not done, a no-op task spawned from
 * here wakes it: a wake always wakes a sleeping worker when no worker
 * searches. No time is involved: the loop follows the task's flag and the
 * park count. */
static void *open_gate_thread(void *arg) {
    handoff *h = arg;
    uint64_t parks = parks_total(h->rt);
    zk_gate_open(&h->go);
    for (;;) {
        pthread_mutex_lock(&h->lock);
        bool done = h->done;
        pthread_mutex_unlock(&h->lock);
        if (done)
            return NULL;
        uint64_t now = parks_total(h->rt);
        if (now != parks) {
            parks = now;
            zk_runtime_spawn(h->rt, nudge_task, NULL, NULL);
        }
        sched_yield();
    }
}

/* Spawns `fn` (which starts with handoff_begin and ends with handoff_end)
 * and returns once it waits on the gate, and so is in no queue. */
static void handoff_spawn(handoff *h, int64_t (*fn)(void *), pair *p) {
    memset(h, 0, sizeof *h);
    h->rt = zk_runtime_current();
    h->p = p;
    zk_gate_init(&h->go);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    cr_assert_eq(zk_spawn(fn, h, &h->task), 0);
    while (zk_gate_polls(&h->go) == 0)
        zk_yield();
}

/* Lets the other task run on the other worker with `f`, and blocks this
 * worker until it is done. */
static void handoff_run(handoff *h, zk_io_future *f) {
    pthread_t self = zk_test_thread();
    h->f = f;
    pthread_t opener;
    cr_assert_eq(pthread_create(&opener, NULL, open_gate_thread, h), 0);
    pthread_mutex_lock(&h->lock);
    while (!h->done)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    cr_assert_eq(pthread_join(opener, NULL), 0);
    cr_assert(!pthread_equal(self, h->runner),
              "the other task ran on the blocked worker");
}

static void handoff_finish(handoff *h) {
    cr_assert_eq(zk_task_join(&h->task, NULL), 0);
    zk_gate_destroy(&h->go);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
}

/* A read prepared on one worker's ring and dropped by a task on the other
 * worker, before the first ring submitted it. */
static int64_t dropper_task(void *arg) {
    handoff *h = arg;
    handoff_begin(h);
    zk_future_drop(&h->f->base);
    handoff_end(h);
    return 0;
}

static int64_t other_worker_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    zk_waker tw = task_waker();
    handoff h;
    handoff_spawn(&h, dropper_task, &p);

    char canary[16];
    memset(canary, 'C', sizeof canary);
    zk_io_future *f = new_future();
    zk_stream_read_future_init(f, p.a, canary, sizeof canary);
    poll_pending(f, &tw);
    handoff_run(&h, f);
    memset(f, 0xA5, sizeof *f);
    free(f);

    late_data_skips_dropped(p.b, p.a, "late data", canary, sizeof canary,
                            "read dropped on another worker");
    handoff_finish(&h);
    close_pair(&p);
    zk_waker_drop(&tw);
    return 0;
}

ZK_IO_TEST(io_drop, read_prepared_on_one_worker_dropped_on_another) {
    zk_test_run(other_worker_root, NULL);
}

/* A pipe read woken on one worker (io_uring: its poll completed on that
 * worker's ring), whose readiness is gone when a task on the other worker
 * polls it again: the read, made again, would block, so it waits once
 * more, and it must wait where the polling worker will submit and reap,
 * not on the first worker's ring, which that worker (blocked) would never
 * submit. The data that follows wakes it and it reads it. */
static int64_t repoll_task(void *arg) {
    handoff *h = arg;
    handoff_begin(h);
    wake_gate g;
    wake_gate_init(&g);
    zk_waker w = zk_waker_new(&g, &wg_ops);
    poll_pending(h->f, &w);
    cr_assert_eq(zk_stream_write_all(h->p->b, "again", 5), 0);
    wake_gate_wait(&g);
    zk_context cx;
    zk_context_init(&cx, &w);
    int64_t out = 0;
    cr_assert_eq(zk_future_poll(&h->f->base, &cx, &out), ZK_READY);
    cr_assert_eq(out, 5, "read: %s", zk_strerror((int)out));
    drop_and_free(h->f);
    zk_gate_destroy(&g.gate);
    handoff_end(h);
    return 0;
}

static int64_t repoll_root(void *arg) {
    (void)arg;
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pair p = {.pipe = true};
    cr_assert_eq(zk_stream_from_fd(pfd[0], &p.a), 0);
    cr_assert_eq(zk_stream_from_fd(pfd[1], &p.b), 0);
    handoff h;
    handoff_spawn(&h, repoll_task, &p);

    wake_gate g;
    char buf[16];
    zk_io_future *f = read_woken_by_first(&p, &g, buf, sizeof buf);
    /* Readiness gone: "first" taken by hand. */
    char got[8];
    cr_assert_eq(read(pfd[0], got, sizeof got), 5);
    handoff_run(&h, f);
    cr_assert_eq(memcmp(buf, "again", 5), 0);
    assert_canary(buf + 5, sizeof buf - 5, "read on another worker");

    handoff_finish(&h);
    close_pair(&p);
    zk_gate_destroy(&g.gate);
    return 0;
}

ZK_IO_TEST(io_drop, pipe_read_woken_then_polled_on_another_worker_waits_there) {
    zk_test_run(repoll_root, NULL);
}
#endif

/* ---------------------------------------------------------------------- */
/* Shutdown                                                               */
/* ---------------------------------------------------------------------- */

static int64_t nothing_task(void *arg) {
    (void)arg;
    return 0;
}

/* The root's last run drops prepared reads (one, then more than the
 * completion queue holds), closes everything and ends while another task
 * is runnable, so the worker does not submit after that run: the runtime's
 * shutdown must still release every dropped entry's descriptor (the
 * descriptor count around the test) and memory. `arg`: the dropped
 * buffers, which outlive the runtime.
 *
 * With more drops than the completion queue holds (2048), the no-op
 * completions beyond it wait in the kernel's overflow list, which
 * zk__uring_destroy() must flush too, or the handles their slots hold
 * would never be released (descriptor and memory). */
typedef struct exit_arg {
    int n;
    char *bufs;
} exit_arg;

static int64_t drop_then_exit_root(void *arg) {
    exit_arg *x = arg;
    pair p;
    make_pair(&p);
    zk_waker tw = task_waker();
    for (int i = 0; i < x->n; i++) {
        zk_io_future *f = new_future();
        zk_stream_read_future_init(f, p.a, x->bufs + 16 * i, 16);
        poll_pending(f, &tw);
        drop_and_free(f);
    }
    cr_assert_eq(zk_spawn(nothing_task, NULL, NULL), 0);
    close_pair(&p);
    zk_waker_drop(&tw);
    return 0;
}

static void drop_then_exit(int n) {
    exit_arg x = {n, malloc(16 * (size_t)n)};
    cr_assert_not_null(x.bufs);
    memset(x.bufs, 'C', 16 * (size_t)n);
    zk_test_run(drop_then_exit_root, &x);
    assert_canary(x.bufs, 16 * (size_t)n, "read dropped before shutdown");
    free(x.bufs);
}

ZK_IO_TEST(io_drop, runtime_freed_right_after_a_drop) {
    drop_then_exit(1);
}

ZK_IO_TEST(io_drop, runtime_freed_right_after_many_drops) {
    drop_then_exit(NFLOOD);
}
