/*
 * test_net.c - TCP, Unix domain sockets, UDP, addresses and name
 * resolution, with their failure paths. Built for both runtime kinds and
 * run on both I/O backends (ctest sets ZOKIO_IO_BACKEND).
 */
#include <netinet/tcp.h>
#include <signal.h>
#include <unistd.h>

#include "io_helpers.h"

ZK_SUITE(net);

/* ---------------------------------------------------------------------- */
/* Addresses (no runtime)                                                 */
/* ---------------------------------------------------------------------- */

ZK_TEST(net, addr_parse_and_format) {
    zk_addr a;
    char buf[64];
    cr_assert_eq(zk_addr_parse("127.0.0.1:8080", &a), 0);
    cr_assert_eq(a.u.sa.sa_family, AF_INET);
    cr_assert_eq(zk_addr_port(&a), 8080);
    cr_assert_eq(zk_addr_format(&a, buf, sizeof buf), 14);
    cr_assert_str_eq(buf, "127.0.0.1:8080");
    cr_assert_eq(zk_addr_parse("[::1]:80", &a), 0);
    cr_assert_eq(a.u.sa.sa_family, AF_INET6);
    cr_assert_eq(zk_addr_port(&a), 80);
    zk_addr_format(&a, buf, sizeof buf);
    cr_assert_str_eq(buf, "[::1]:80");
    cr_assert_eq(zk_addr_parse("0.0.0.0:0", &a), 0);
    cr_assert_eq(zk_addr_parse("[::]:65535", &a), 0);
    cr_assert_eq(zk_addr_format(&a, buf, 4), -ENOSPC);

    const char *bad[] = {"",
                         "127.0.0.1",
                         "127.0.0.1:",
                         ":80",
                         "1.2.3.4:65536",
                         "1.2.3.4:-1",
                         "1.2.3.4:8x",
                         "::1:80",
                         "[::1]80",
                         "[::1]:",
                         "[1.2.3.4]:80",
                         "localhost:80",
                         "1.2.3.256:1",
                         "[::1:80",
                         "1.2.3.4:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(zk_addr_parse(bad[i], &a), -EINVAL, "%s", bad[i]);
    cr_assert_eq(zk_addr_parse(NULL, &a), -EINVAL);
    cr_assert_eq(zk_addr_parse("1.2.3.4:1", NULL), -EINVAL);
    cr_assert_eq(zk_addr_unix("/tmp/x", &a), 0);
    cr_assert_eq(zk_addr_port(&a), -EINVAL);
    cr_assert_eq(zk_addr_unix("", &a), -EINVAL);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    cr_assert_eq(zk_addr_unix(longp, &a), -ENAMETOOLONG);
}

/* ---------------------------------------------------------------------- */
/* Backend                                                                */
/* ---------------------------------------------------------------------- */

ZK_TEST(net, runs_the_requested_backend) {
    zk_runtime *rt = zk_test_runtime();
    zk_io_backend want = zk_test_backend();
    zk_io_backend got = zk_runtime_io_backend(rt);
    cr_assert(got == ZK_IO_IO_URING || got == ZK_IO_EPOLL);
    if (want != ZK_IO_AUTO)
        cr_assert_eq(got, want, "asked for %s, runs %s",
                     zk_io_backend_name(want), zk_io_backend_name(got));
    cr_assert_eq(zk_runtime_free(rt), 0);

    /* The builder's choice wins over the environment. */
    zk_builder *b = zk_test_builder();
    zk_builder_set_io_backend(b, ZK_IO_EPOLL);
    cr_assert_eq(zk_builder_build(b, &rt), 0);
    cr_assert_eq(zk_runtime_io_backend(rt), ZK_IO_EPOLL);
    cr_assert_eq(zk_runtime_free(rt), 0);
    zk_builder_set_io_backend(b, (zk_io_backend)7);
    cr_assert_eq(zk_builder_build(b, &rt), -EINVAL);
    zk_builder_free(b);
    cr_assert_str_eq(zk_io_backend_name(ZK_IO_IO_URING), "io_uring");
    cr_assert_eq(zk_runtime_io_backend(NULL), ZK_IO_AUTO);
}

/* ---------------------------------------------------------------------- */
/* TCP                                                                    */
/* ---------------------------------------------------------------------- */

static int64_t echo_conn(void *arg) {
    zk_stream *s = arg;
    char buf[4096];
    int64_t total = 0, n;
    while ((n = zk_stream_read(s, buf, sizeof buf)) > 0) {
        if (zk_stream_write_all(s, buf, (size_t)n) != 0)
            break;
        total += n;
    }
    zk_stream_close(s);
    return n < 0 ? n : total;
}

static int64_t tcp_basics_root(void *arg) {
    (void)arg;
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    cr_assert_gt(zk_addr_port(&addr), 0);

    zk_stream *c = NULL, *srv = NULL;
    cr_assert_eq(zk_tcp_connect(&addr, &c), 0);
    zk_addr peer;
    cr_assert_eq(zk_listener_accept(l, &srv, &peer), 0);
    cr_assert_eq(peer.u.sa.sa_family, AF_INET);
    zk_addr local, remote;
    cr_assert_eq(zk_stream_local_addr(c, &local), 0);
    cr_assert_eq(zk_stream_peer_addr(c, &remote), 0);
    cr_assert_eq(zk_addr_port(&local), zk_addr_port(&peer));
    cr_assert_eq(zk_addr_port(&remote), zk_addr_port(&addr));
    cr_assert_eq(zk_tcp_set_nodelay(c, true), 0);
    cr_assert_eq(zk_tcp_set_keepalive(c, true, ZK_SEC(30)), 0);
    cr_assert_eq(zk_tcp_set_keepalive(c, true, -1), -EINVAL);
    /* Too long for the kernel (32,767 s), or for an int of seconds (it
     * used to wrap to 10 s): refused, the idle time left as it was. */
    cr_assert_eq(zk_tcp_set_keepalive(c, true, ZK_SEC(40000)), -EINVAL);
    cr_assert_eq(zk_tcp_set_keepalive(c, true, ZK_SEC(4294967306LL)), -EINVAL);
    int idle = 0;
    socklen_t idle_len = sizeof idle;
    cr_assert_eq(getsockopt(zk_stream_fd(c), IPPROTO_TCP, TCP_KEEPIDLE, &idle,
                            &idle_len),
                 0);
    cr_assert_eq(idle, 30);
    cr_assert_geq(zk_stream_fd(c), 0);

    zk_task *echo;
    cr_assert_eq(zk_spawn(echo_conn, srv, &echo), 0);
    const char msg[] = "hello, zokio";
    cr_assert_eq(zk_stream_write_all(c, msg, sizeof msg), 0);
    char back[sizeof msg];
    cr_assert_eq(zk_stream_read_exact(c, back, sizeof back), 0);
    cr_assert_str_eq(back, msg);

    /* Vectored both ways. */
    char a[3] = "abc", b[5] = "defgh";
    struct iovec out[2] = {{a, 3}, {b, 5}};
    cr_assert_eq(zk_stream_writev(c, out, 2), 8);
    char x[4] = {0}, y[4] = {0};
    struct iovec in[2] = {{x, 4}, {y, 4}};
    int64_t got = 0;
    while (got < 8) {
        struct iovec rest[2];
        int cnt = 0;
        if (got < 4)
            rest[cnt++] = (struct iovec){x + got, (size_t)(4 - got)};
        size_t yo = got > 4 ? (size_t)(got - 4) : 0;
        rest[cnt++] = (struct iovec){y + yo, 4 - yo};
        int64_t n = zk_stream_readv(c, rest, cnt);
        cr_assert_gt(n, 0);
        got += n;
    }
    (void)in;
    cr_assert_eq(memcmp(x, "abcd", 4), 0);
    cr_assert_eq(memcmp(y, "efgh", 4), 0);

    /* Half-close: the echo task sees the end, and so do we after it. */
    cr_assert_eq(zk_stream_shutdown(c, SHUT_WR), 0);
    cr_assert_eq(zk_stream_read(c, back, sizeof back), 0);
    int64_t echoed = 0;
    cr_assert_eq(zk_task_join(&echo, &echoed), 0);
    cr_assert_eq(echoed, (int64_t)sizeof msg + 8);
    cr_assert_eq(zk_stream_shutdown(c, 9), -EINVAL);
    cr_assert_eq(zk_stream_close(c), 0);
    cr_assert_eq(zk_listener_close(l), 0);
    return 0;
}

ZK_IO_TEST(net, tcp_connect_accept_echo_shutdown) {
    zk_test_run(tcp_basics_root, NULL);
}

static int64_t refused_root(void *arg) {
    (void)arg;
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    zk_listener_close(l); /* nothing listens on that port now */
    zk_stream *c = NULL;
    cr_assert_eq(zk_tcp_connect(&addr, &c), -ECONNREFUSED);
    cr_assert_null(c);
    /* The runtime is still fine. */
    l = zk_test_listen(&addr);
    cr_assert_eq(zk_tcp_connect(&addr, &c), 0);
    zk_stream_close(c);
    zk_listener_close(l);
    return 0;
}

ZK_IO_TEST(net, connect_refused) {
    zk_test_run(refused_root, NULL);
}

/* A listener with a full backlog that never accepts: the next connect's
 * handshake gets no answer. */
static int64_t connect_timeout_root(void *arg) {
    (void)arg;
    zk_addr any, addr;
    zk_addr_parse("127.0.0.1:0", &any);
    zk_listener *l;
    cr_assert_eq(zk_tcp_listen(&any, 1, &l), 0);
    zk_listener_local_addr(l, &addr);
    zk_stream *fill[8];
    int nfill = 0;
    int rc = 0;
    zk_instant t0 = 0;
    for (; nfill < 8; nfill++) {
        t0 = zk_now();
        rc = zk_tcp_connect_timeout(&addr, ZK_MS(200), &fill[nfill]);
        if (rc != 0)
            break;
    }
    cr_assert_eq(rc, -ETIMEDOUT, "connect: %s", zk_strerror(rc));
    cr_assert_geq(zk_now() - t0, ZK_MS(200));
    for (int i = 0; i < nfill; i++)
        zk_stream_close(fill[i]);
    zk_listener_close(l);
    return 0;
}

ZK_IO_TEST(net, connect_timeout) {
    zk_test_run(connect_timeout_root, NULL);
}

typedef struct pair {
    zk_stream *a, *b;
    zk_listener *l;
} pair;

static void make_pair(pair *p) {
    zk_addr addr;
    p->l = zk_test_listen(&addr);
    cr_assert_eq(zk_tcp_connect(&addr, &p->a), 0);
    cr_assert_eq(zk_listener_accept(p->l, &p->b, NULL), 0);
}

static void close_pair(pair *p) {
    if (p->a)
        zk_stream_close(p->a);
    if (p->b)
        zk_stream_close(p->b);
    zk_listener_close(p->l);
}

/* After a read into `canary` (filled with 'C') was cancelled: data sent
 * now reaches the next read on `p`, and the cancelled read's buffer stays
 * untouched (the kernel no longer owned it). */
static void check_late_data_skips_canary(pair *p, const char *canary,
                                         size_t size) {
    cr_assert_eq(zk_stream_write_all(p->b, "late", 4), 0);
    char buf[4];
    cr_assert_eq(zk_stream_read_exact(p->a, buf, 4), 0);
    cr_assert_eq(memcmp(buf, "late", 4), 0);
    for (size_t i = 0; i < size; i++)
        cr_assert_eq(canary[i], 'C');
}

/* A read on `p` that timed out was cancelled in the kernel: data that
 * arrives later is not written into its buffer, and the next read gets
 * it. */
static void check_timed_out_read_cancelled(pair *p) {
    char canary[16];
    memset(canary, 'C', sizeof canary);
    zk_io_future f;
    zk_stream_read_future_init(&f, p->a, canary, sizeof canary);
    cr_assert_eq(zk_await_timeout(&f.base, ZK_MS(20)), -ETIMEDOUT);
    check_late_data_skips_canary(p, canary, sizeof canary);
}

static int64_t read_timeout_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    check_timed_out_read_cancelled(&p);
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, read_timeout_cancels_in_kernel) {
    zk_test_run(read_timeout_root, NULL);
}

/* The same after a short read, which makes the next receive wait for
 * readiness before its first attempt (IORING_RECVSEND_POLL_FIRST on
 * io_uring; the readiness cache on epoll): a timeout still cancels it in
 * the kernel, and data that comes later is read, whole, by the next read,
 * also a short one. */
static int64_t short_read_then_timeout_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    char buf[16];
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(zk_stream_write_all(p.b, "abc", 3), 0);
        cr_assert_eq(zk_stream_read(p.a, buf, sizeof buf), 3);
        cr_assert_eq(memcmp(buf, "abc", 3), 0);
        check_timed_out_read_cancelled(&p);
    }
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, read_timeout_after_a_short_read_cancels_in_kernel) {
    zk_test_run(short_read_then_timeout_root, NULL);
}

/* A select between reads on two connections: the loser's read, owned by
 * the kernel at the time, is cancelled there before the select returns,
 * so data that arrives for it later stays in the socket. */
static int64_t select_reads_root(void *arg) {
    (void)arg;
    pair p, q;
    make_pair(&p);
    make_pair(&q);
    char canary[16], won[16];
    memset(canary, 'C', sizeof canary);
    zk_io_future loser, winner;
    zk_stream_read_future_init(&loser, p.a, canary, sizeof canary);
    zk_stream_read_future_init(&winner, q.a, won, sizeof won);
    zk_future *fs[2] = {&loser.base, &winner.base};
    cr_assert_eq(zk_stream_write_all(q.b, "win", 3), 0);
    int64_t got = 0;
    cr_assert_eq(zk_select(fs, 2, &got), 1);
    cr_assert_eq(got, 3);
    cr_assert_eq(memcmp(won, "win", 3), 0);
    check_late_data_skips_canary(&p, canary, sizeof canary);
    close_pair(&p);
    close_pair(&q);
    return 0;
}

ZK_IO_TEST(net, select_cancels_the_losing_read_in_kernel) {
    zk_test_run(select_reads_root, NULL);
}

/* The same through a cancel scope: the read pending at the scope's
 * deadline is woken, returns -ETIMEDOUT and was cancelled in the kernel. */
static int64_t scope_read_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    char canary[16];
    memset(canary, 'C', sizeof canary);
    zk_scope s = ZK_SCOPE_INIT;
    cr_assert_eq(zk_scope_enter_timeout(&s, ZK_MS(20)), 0);
    cr_assert_eq(zk_stream_read(p.a, canary, sizeof canary), -ETIMEDOUT);
    cr_assert_eq(zk_stream_write_all(p.b, "late", 4), -ETIMEDOUT,
                 "every call in the expired scope fails");
    cr_assert_eq(zk_scope_exit(&s), -ETIMEDOUT);
    check_late_data_skips_canary(&p, canary, sizeof canary);
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, read_in_an_expired_scope_cancels_in_kernel) {
    zk_test_run(scope_read_root, NULL);
}

typedef struct blocked_read {
    zk_stream *s;
    char buf[16];
    atomic_int started;
} blocked_read;

static int64_t blocked_reader(void *arg) {
    blocked_read *br = arg;
    zk_io_future f;
    zk_stream_read_future_init(&f, br->s, br->buf, sizeof br->buf);
    return zk_test_await_after_flag(&f.base, &br->started);
}

static int64_t abort_read_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    blocked_read br = {.s = p.a};
    memset(br.buf, 'C', sizeof br.buf);
    zk_task *t;
    cr_assert_eq(zk_spawn(blocked_reader, &br, &t), 0);
    zk_test_wait_flag(&br.started);
    zk_sleep(ZK_MS(5)); /* let it reach the kernel (either way is valid) */
    cr_assert_eq(zk_task_abort(t), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    cr_assert_eq(zk_stream_write_all(p.b, "xy", 2), 0);
    char buf[2];
    cr_assert_eq(zk_stream_read_exact(p.a, buf, 2), 0);
    for (size_t i = 0; i < sizeof br.buf; i++)
        cr_assert_eq(br.buf[i], 'C');
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, abort_blocked_read) {
    zk_test_run(abort_read_root, NULL);
}

static int64_t close_wakes_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    blocked_read br = {.s = p.a};
    zk_task *t;
    cr_assert_eq(zk_spawn(blocked_reader, &br, &t), 0);
    zk_test_wait_flag(&br.started);
    cr_assert_eq(zk_stream_close(p.a), 0);
    p.a = NULL;
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, -EBADF, "read returned %s", zk_strerror((int)r));
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, close_wakes_blocked_reader) {
    zk_test_run(close_wakes_root, NULL);
}

typedef struct blocked_accept {
    zk_listener *l;
    atomic_int started;
} blocked_accept;

static int64_t accept_waiter(void *arg) {
    blocked_accept *ba = arg;
    zk_stream *s = NULL;
    zk_io_future f;
    zk_listener_accept_future_init(&f, ba->l, &s, NULL);
    int64_t rc = zk_test_await_after_flag(&f.base, &ba->started);
    if (s)
        zk_stream_close(s);
    return rc;
}

static int64_t close_listener_root(void *arg) {
    (void)arg;
    zk_addr addr;
    blocked_accept ba = {.l = zk_test_listen(&addr)};
    zk_task *t;
    cr_assert_eq(zk_spawn(accept_waiter, &ba, &t), 0);
    zk_test_wait_flag(&ba.started);
    cr_assert_eq(zk_listener_close(ba.l), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, -EBADF);
    return 0;
}

ZK_IO_TEST(net, close_wakes_blocked_accept) {
    zk_test_run(close_listener_root, NULL);
}

/* Writing to a peer that closed: -EPIPE or -ECONNRESET, no SIGPIPE. */
static int64_t vanished_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    zk_stream_close(p.b);
    p.b = NULL;
    char buf[4096] = {0};
    int64_t r = 0;
    for (int i = 0; i < 1000 && r >= 0; i++)
        r = zk_stream_write(p.a, buf, sizeof buf);
    cr_assert(r == -EPIPE || r == -ECONNRESET, "write: %s",
              zk_strerror((int)r));
    /* Reading now reports the reset or the end. */
    r = zk_stream_read(p.a, buf, sizeof buf);
    cr_assert(r == 0 || r == -ECONNRESET, "read: %s", zk_strerror((int)r));
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, write_to_vanished_peer_no_sigpipe) {
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill this test */
    zk_test_run(vanished_root, NULL);
}

/* Out of descriptors during accept: -EMFILE, then the listener serves
 * again once descriptors are free. */
static int64_t emfile_root(void *arg) {
    (void)arg;
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    zk_stream *c1, *c2;
    cr_assert_eq(zk_tcp_connect(&addr, &c1), 0);
    cr_assert_eq(zk_tcp_connect(&addr, &c2), 0);
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    /* Use up every descriptor below a limit just above what is open. */
    rl = old;
    rl.rlim_cur = (rlim_t)zk_test_fd_count() + 8;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int hog[64], nhog = 0;
    while (nhog < 64 && (hog[nhog] = dup(0)) >= 0)
        nhog++;
    cr_assert_lt(nhog, 64);
    zk_stream *s = NULL;
    cr_assert_eq(zk_listener_accept(l, &s, NULL), -EMFILE);
    cr_assert_null(s);
    while (nhog > 0)
        close(hog[--nhog]);
    setrlimit(RLIMIT_NOFILE, &old);
    /* The connection that could not be taken is still queued. */
    cr_assert_eq(zk_listener_accept(l, &s, NULL), 0);
    zk_stream_close(s);
    cr_assert_eq(zk_listener_accept(l, &s, NULL), 0);
    zk_stream_close(s);
    zk_stream_close(c1);
    zk_stream_close(c2);
    zk_listener_close(l);
    return 0;
}

ZK_IO_TEST(net, accept_emfile_then_recovers) {
    zk_test_run(emfile_root, NULL);
}

static int64_t bad_args_root(void *arg) {
    (void)arg;
    zk_addr addr;
    zk_stream *s = NULL;
    zk_listener *l = NULL;
    char buf[4];
    cr_assert_eq(zk_tcp_connect(NULL, &s), -EINVAL);
    zk_addr_parse("127.0.0.1:1", &addr);
    cr_assert_eq(zk_tcp_connect(&addr, NULL), -EINVAL);
    cr_assert_eq(zk_tcp_connect_timeout(&addr, -1, &s), -EINVAL);
    zk_addr_unix("/tmp/zk-none", &addr);
    cr_assert_eq(zk_tcp_connect(&addr, &s), -EAFNOSUPPORT);
    cr_assert_eq(zk_tcp_listen(&addr, 0, &l), -EINVAL);
    zk_addr_parse("127.0.0.1:0", &addr);
    cr_assert_eq(zk_tcp_listen(&addr, -1, &l), -EINVAL);
    cr_assert_eq(zk_tcp_listen(NULL, 0, &l), -EINVAL);
    cr_assert_eq(zk_stream_read(NULL, buf, 4), -EINVAL);
    cr_assert_eq(zk_stream_write(NULL, buf, 4), -EINVAL);
    cr_assert_eq(zk_stream_write_all(NULL, buf, 4), -EINVAL);
    cr_assert_eq(zk_stream_readv(NULL, NULL, 1), -EINVAL);
    cr_assert_eq(zk_listener_accept(NULL, &s, NULL), -EINVAL);
    cr_assert_eq(zk_stream_close(NULL), -EINVAL);
    cr_assert_eq(zk_listener_close(NULL), -EINVAL);
    cr_assert_eq(zk_stream_fd(NULL), -EINVAL);
    cr_assert_eq(zk_unix_connect("/nonexistent/zokio.sock", &s), -ENOENT);
    cr_assert_eq(zk_stream_from_fd(-1, &s), -EBADF);
    /* Address in use. */
    zk_addr bound;
    l = zk_test_listen(&bound);
    zk_udp *u;
    cr_assert_eq(zk_udp_bind(&bound, &u), 0); /* UDP port space differs */
    zk_udp_close(u);
    zk_listener *l2;
    int rc = zk_tcp_listen(&bound, 0, &l2);
    cr_assert_eq(rc, -EADDRINUSE, "%s", zk_strerror(rc));
    /* One end closed: the other reads the end of the stream. */
    pair p;
    make_pair(&p);
    zk_stream_close(p.a);
    p.a = NULL;
    char byte;
    cr_assert_eq(zk_stream_read(p.b, &byte, 1), 0);
    zk_listener_close(l);
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, bad_arguments) {
    zk_test_run(bad_args_root, NULL);
}

ZK_IO_TEST(net, outside_a_runtime) {
    zk_addr addr;
    zk_listener *l;
    zk_addr_parse("127.0.0.1:0", &addr);
    cr_assert_eq(zk_tcp_listen(&addr, 0, &l), -EPERM);
    zk_stream *s;
    cr_assert_eq(zk_tcp_connect(&addr, &s), -EPERM);
    zk_addr out;
    cr_assert_eq(zk_resolve("localhost:80", &out, 1), -EPERM);
    cr_assert_eq(zk_resolve("127.0.0.1:80", &out, 1), 1); /* no lookup */
}

/* ---------------------------------------------------------------------- */
/* Unix domain sockets                                                    */
/* ---------------------------------------------------------------------- */

static int64_t unix_root(void *arg) {
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/zokio-test-%d.sock", (int)getpid());
    unlink(path);
    zk_listener *l;
    cr_assert_eq(zk_unix_listen(path, 0, &l), 0);
    zk_listener *l2;
    cr_assert_eq(zk_unix_listen(path, 0, &l2), -EADDRINUSE);
    zk_stream *c, *s;
    cr_assert_eq(zk_unix_connect(path, &c), 0);
    cr_assert_eq(zk_listener_accept(l, &s, NULL), 0);
    zk_task *echo;
    cr_assert_eq(zk_spawn(echo_conn, s, &echo), 0);
    char buf[1000];
    for (int i = 0; i < 100; i++) {
        memset(buf, 'a' + i % 26, sizeof buf);
        cr_assert_eq(zk_stream_write_all(c, buf, sizeof buf), 0);
        char back[1000];
        cr_assert_eq(zk_stream_read_exact(c, back, sizeof back), 0);
        cr_assert_eq(memcmp(buf, back, sizeof buf), 0);
    }
    cr_assert_eq(zk_tcp_set_nodelay(c, true), -EOPNOTSUPP);
    zk_stream_close(c);
    int64_t n;
    cr_assert_eq(zk_task_join(&echo, &n), 0);
    cr_assert_eq(n, 100 * 1000);
    zk_listener_close(l);
    unlink(path);
    return 0;
}

ZK_IO_TEST(net, unix_stream_echo) {
    zk_test_run(unix_root, NULL);
}

/* The peer address an accept reports has the length the kernel gave, on
 * both backends (the epoll backend reported the buffer's size). */
static int64_t peer_len_root(void *arg) {
    (void)arg;
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    zk_stream *c, *s;
    cr_assert_eq(zk_tcp_connect(&addr, &c), 0);
    zk_addr peer;
    cr_assert_eq(zk_listener_accept(l, &s, &peer), 0);
    cr_assert_eq(peer.len, sizeof(struct sockaddr_in), "peer.len %u",
                 (unsigned)peer.len);
    zk_stream_close(c);
    zk_stream_close(s);
    zk_listener_close(l);
    return 0;
}

ZK_IO_TEST(net, accept_reports_the_peer_address_length) {
    zk_test_run(peer_len_root, NULL);
}

/* A Unix listener whose backlog is full refuses a connection (Linux does
 * not let it wait): -EAGAIN on both backends, at once (on epoll the
 * connect waited for ever), and a connect once there is room succeeds. */
static int64_t unix_full_root(void *arg) {
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/zokio-full-%d.sock", (int)getpid());
    unlink(path);
    zk_listener *l;
    cr_assert_eq(zk_unix_listen(path, 1, &l), 0);
    enum { TRIES = 8 };
    zk_stream *c[TRIES] = {0};
    int rc = 0, n = 0;
    while (n < TRIES && (rc = zk_unix_connect(path, &c[n])) == 0)
        n++;
    cr_assert_lt(n, TRIES, "a backlog of 1 took %d connections", n);
    cr_assert_eq(rc, -EAGAIN, "%s", zk_strerror(rc));
    zk_stream *s;
    cr_assert_eq(zk_listener_accept(l, &s, NULL), 0);
    zk_stream_close(s);
    cr_assert_eq(zk_unix_connect(path, &c[n]), 0, "room again");
    for (int k = 0; k <= n; k++)
        zk_stream_close(c[k]);
    zk_listener_close(l);
    unlink(path);
    return 0;
}

ZK_IO_TEST(net, unix_connect_to_a_full_backlog_fails_with_eagain) {
    zk_test_run(unix_full_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Pipes                                                                  */
/* ---------------------------------------------------------------------- */

/* A pipe made into two streams: `r` reads what `w` writes. */
static void make_pipe(zk_stream **r, zk_stream **w) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(zk_stream_from_fd(fds[0], r), 0);
    cr_assert_eq(zk_stream_from_fd(fds[1], w), 0);
}

static int64_t pipe_root(void *arg) {
    (void)arg;
    zk_stream *r, *w;
    make_pipe(&r, &w);
    cr_assert_eq(zk_stream_write_all(w, "pipe!", 5), 0);
    char buf[5];
    cr_assert_eq(zk_stream_read_exact(r, buf, 5), 0);
    cr_assert_eq(memcmp(buf, "pipe!", 5), 0);
    cr_assert_eq(zk_stream_shutdown(r, SHUT_RD), -ENOTSOCK);
    zk_stream_close(w);
    cr_assert_eq(zk_stream_read(r, buf, 5), 0); /* end of stream */
    zk_stream_close(r);
    return 0;
}

ZK_IO_TEST(net, pipes) {
    zk_test_run(pipe_root, NULL);
}

typedef struct waiting_reader {
    zk_stream *s;
    atomic_int started; /* its first read is waiting */
} waiting_reader;

/* Reads its stream until end of stream with a buffer larger than what
 * comes, so every read that returns data is short; returns the bytes read.
 * Its first read raises `started` once it waits. */
static int64_t read_to_end_waiting_first(void *arg) {
    waiting_reader *wr = arg;
    char buf[256];
    zk_io_future f;
    zk_stream_read_future_init(&f, wr->s, buf, sizeof buf);
    int64_t total = 0, n = zk_test_await_after_flag(&f.base, &wr->started);
    while (n > 0) {
        total += n;
        n = zk_stream_read(wr->s, buf, sizeof buf);
    }
    return n < 0 ? n : total;
}

/* The reader waits first (its read polled once, then a flag); then the
 * writer sends a little and closes without yielding, so the reader is
 * woken by one event that says both "data" and "hang-up". Its read is
 * short; the next must return the end of the stream at once, not wait for
 * an edge that will never come (the epoll backend takes a short read on a
 * byte stream for "buffer empty"). */
static void check_short_read_then_end(zk_stream *reader, zk_stream *writer) {
    waiting_reader wr = {.s = reader};
    zk_task *t;
    cr_assert_eq(zk_spawn(read_to_end_waiting_first, &wr, &t), 0);
    zk_test_wait_flag(&wr.started);
    cr_assert_eq(zk_stream_write_all(writer, "abc", 3), 0);
    zk_stream_close(writer);
    int64_t got;
    cr_assert_eq(zk_task_join(&t, &got), 0);
    cr_assert_eq(got, 3);
    zk_stream_close(reader);
}

static int64_t short_read_end_root(void *arg) {
    (void)arg;
    zk_stream *r, *w;
    make_pipe(&r, &w);
    check_short_read_then_end(r, w);
    pair p;
    make_pair(&p);
    check_short_read_then_end(p.a, p.b);
    p.a = p.b = NULL;
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, short_read_then_end_of_stream) {
    zk_test_run(short_read_end_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Reads of a stream, whatever the kernel delivered ahead of them         */
/* ---------------------------------------------------------------------- */

/* Byte `i` of the test streams below: a pattern that shows a lost,
 * repeated or reordered byte. */
static char pattern_at(size_t i) {
    return (char)('a' + (i * 7 + i / 4096) % 26);
}

/* Many small writes, then reads with a large buffer, a readv and reads of
 * one byte: the bytes come whole and in order (with read-ahead, a read
 * spans several received buffers, and a small read takes part of one). */
static int64_t small_writes_big_reads_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    enum { CHUNKS = 200, CHUNK = 100, TOTAL = CHUNKS * CHUNK };
    char out[CHUNK];
    for (size_t c = 0; c < CHUNKS; c++) {
        for (size_t i = 0; i < CHUNK; i++)
            out[i] = pattern_at(c * CHUNK + i);
        cr_assert_eq(zk_stream_write_all(p.b, out, CHUNK), 0);
    }
    static char in[TOTAL];
    size_t got = 0;
    /* One byte, then a readv over two buffers, then large reads. */
    cr_assert_eq(zk_stream_read(p.a, in, 1), 1);
    got = 1;
    struct iovec iov[2] = {{in + got, 10}, {in + got + 10, 300}};
    int64_t n = zk_stream_readv(p.a, iov, 2);
    cr_assert_gt(n, 0);
    got += (size_t)n;
    while (got < TOTAL) {
        n = zk_stream_read(p.a, in + got, TOTAL - got);
        cr_assert_gt(n, 0, "read: %lld", (long long)n);
        got += (size_t)n;
    }
    for (size_t i = 0; i < TOTAL; i++)
        cr_assert_eq(in[i], pattern_at(i), "byte %zu", i);
    /* The end comes after the data. */
    cr_assert_eq(zk_stream_shutdown(p.b, SHUT_WR), 0);
    cr_assert_eq(zk_stream_read(p.a, in, 1), 0);
    cr_assert_eq(zk_stream_read(p.a, in, 1), 0);
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, small_writes_then_big_reads_keep_every_byte_in_order) {
    zk_test_run(small_writes_big_reads_root, NULL);
}

#define BULK_BYTES (1u << 20)

static int64_t bulk_writer(void *arg) {
    zk_stream *s = arg;
    static char buf[BULK_BYTES];
    for (size_t i = 0; i < BULK_BYTES; i++)
        buf[i] = pattern_at(i);
    cr_assert_eq(zk_stream_write_all(s, buf, BULK_BYTES), 0);
    cr_assert_eq(zk_stream_shutdown(s, SHUT_WR), 0);
    return 0;
}

/* A reader much slower than its writer (small reads, a yield between
 * them) while 1 MiB arrives: with read-ahead the stream's queue fills, its
 * multishot receive stops (the rest waits in the socket, the writer is held
 * back by TCP) and starts again as the queue drains. Every byte arrives,
 * in order, then the end. */
static int64_t slow_reader_root(void *arg) {
    (void)arg;
    pair p;
    make_pair(&p);
    zk_task *w;
    cr_assert_eq(zk_spawn(bulk_writer, p.b, &w), 0);
    char buf[700];
    size_t got = 0;
    for (;;) {
        int64_t n = zk_stream_read(p.a, buf, sizeof buf);
        cr_assert_geq(n, 0, "read: %lld", (long long)n);
        if (n == 0)
            break;
        for (int64_t i = 0; i < n; i++)
            cr_assert_eq(buf[i], pattern_at(got + (size_t)i), "byte %zu",
                         got + (size_t)i);
        got += (size_t)n;
        zk_yield();
    }
    cr_assert_eq(got, BULK_BYTES);
    cr_assert_eq(zk_task_join(&w, NULL), 0);
    close_pair(&p);
    return 0;
}

ZK_IO_TEST(net, a_slow_reader_gets_every_byte_of_a_bulk_transfer) {
    zk_test_run(slow_reader_root, NULL);
}

/* Internal (src/io/uring_rx.c), absent from builds without io_uring. */
void zk__rx_buffer_counts(zk_runtime *rt, size_t *unheld, size_t *made)
    __attribute__((weak));
bool zk__rx_incremental(zk_runtime *rt) __attribute__((weak));
void zk__rx_fail_pieces_after(long n) __attribute__((weak));

/* Whether the current runtime's stream reads go through provided buffers
 * (io_uring, read-ahead not turned off). */
static bool reads_ahead(void) {
    const char *env = getenv("ZOKIO_IO_READ_AHEAD");
    return zk_runtime_io_backend(zk_runtime_current()) == ZK_IO_IO_URING &&
           !(env && strcmp(env, "0") == 0);
}

/* Every provided buffer of the runtime's rings is back with the kernel or
 * spare (none held by a stream), and rings made them exactly when reads go
 * through them (io_uring with read-ahead). The last completions of closed
 * streams' receives are reaped by their rings' workers in their own time:
 * the count is awaited, bounded. */
static void assert_buffers_given_back(void) {
    if (zk__rx_buffer_counts == NULL)
        return;
    size_t unheld, made;
    zk_instant deadline = zk_now() + ZK_TEST_GUARD;
    do {
        zk__rx_buffer_counts(zk_runtime_current(), &unheld, &made);
        if (unheld == made)
            break;
        zk_yield();
    } while (zk_now() < deadline);
    cr_assert_eq(unheld, made, "%zu of %zu received buffers not given back",
                 made - unheld, made);
    cr_assert_eq(made > 0, reads_ahead(), "buffers made: %zu", made);
}

bool zk__rx_armed(const void *h) __attribute__((weak));

/* A stream's first read arms the receive that reads ahead, also when it
 * is the first request its ring makes (streams made from a socket pair,
 * whose write needs no wait): the arming finds a slot for it, though it
 * cannot make one with the stream's queue locked. */
static int64_t first_read_arms_root(void *arg) {
    (void)arg;
    for (int round = 0; round < 2; round++) {
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        zk_stream *a, *b;
        cr_assert_eq(zk_stream_from_fd(sv[0], &a), 0);
        cr_assert_eq(zk_stream_from_fd(sv[1], &b), 0);
        char c;
        cr_assert_eq(zk_stream_write_all(b, "y", 1), 0);
        cr_assert_eq(zk_stream_read(a, &c, 1), 1);
        cr_assert_eq(c, 'y');
        if (reads_ahead() && zk__rx_armed != NULL)
            cr_assert(zk__rx_armed(a), "round %d: the first read fell back",
                      round);
        zk_stream_close(a);
        zk_stream_close(b);
    }
    assert_buffers_given_back();
    return 0;
}

ZK_IO_TEST(net, a_streams_first_read_reads_ahead) {
    zk_test_run(first_read_arms_root, NULL);
}

/* Data arrives while nobody reads, and the stream is closed with it
 * unread, many times over: every received buffer goes back to its ring
 * (on io_uring with read-ahead; elsewhere the streams just work). */
static int64_t close_unread_root(void *arg) {
    (void)arg;
    char big[8192];
    memset(big, 'x', sizeof big);
    for (int round = 0; round < 300; round++) {
        pair p;
        make_pair(&p);
        char c;
        cr_assert_eq(zk_stream_write_all(p.b, "y", 1), 0);
        cr_assert_eq(zk_stream_read(p.a, &c, 1), 1); /* the read arms */
        cr_assert_eq(c, 'y');
        cr_assert_eq(zk_stream_write_all(p.b, big, sizeof big), 0);
        cr_assert_eq(zk_stream_read(p.a, &c, 1), 1);
        close_pair(&p);
    }
    assert_buffers_given_back();
    return 0;
}

ZK_IO_TEST(net, closing_streams_with_unread_data_many_times) {
    zk_test_run(close_unread_root, NULL);
}

/* Small writes to several streams in turn, read later stream by stream,
 * the last written first. With read-ahead on a kernel that consumes
 * provided buffers incrementally, the streams' bytes are pieces of the
 * same buffers, each going back only once every stream read its piece:
 * every byte comes to its own stream, in order, and every buffer goes
 * back. */
static int64_t interleaved_streams_root(void *arg) {
    (void)arg;
    enum { STREAMS = 8, ROUNDS = 40, CHUNK = 37, TOTAL = ROUNDS * CHUNK };
    pair p[STREAMS];
    for (size_t i = 0; i < STREAMS; i++) {
        make_pair(&p[i]);
        char c;
        cr_assert_eq(zk_stream_write_all(p[i].b, "y", 1), 0);
        cr_assert_eq(zk_stream_read(p[i].a, &c, 1), 1); /* the read arms */
    }
    char out[CHUNK];
    for (size_t r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < STREAMS; i++) {
            for (size_t k = 0; k < CHUNK; k++)
                out[k] = pattern_at(i * TOTAL + r * CHUNK + k);
            cr_assert_eq(zk_stream_write_all(p[i].b, out, CHUNK), 0);
            zk_yield(); /* lets the receives run between the writes */
        }
    }
    for (size_t i = STREAMS; i-- > 0;) {
        if (i == STREAMS - 2 && zk__rx_incremental != NULL &&
            zk__rx_incremental(zk_runtime_current())) {
            /* One stream read, the others' bytes received (they were sent
             * before): packed, they fill a few buffers (the ones the
             * kernel still fills are not counted), not one per write. */
            size_t unheld, made;
            zk__rx_buffer_counts(zk_runtime_current(), &unheld, &made);
            cr_assert_leq(made - unheld, STREAMS * TOTAL / 4096 + 1,
                          "buffers held: %zu", made - unheld);
        }
        char in[TOTAL];
        size_t got = 0;
        while (got < TOTAL) {
            int64_t n = zk_stream_read(p[i].a, in + got, TOTAL - got);
            cr_assert_gt(n, 0, "read: %lld", (long long)n);
            got += (size_t)n;
        }
        for (size_t k = 0; k < TOTAL; k++)
            cr_assert_eq(in[k], pattern_at(i * TOTAL + k),
                         "stream %zu byte %zu", i, k);
    }
    for (size_t i = 0; i < STREAMS; i++)
        close_pair(&p[i]);
    assert_buffers_given_back();
    return 0;
}

ZK_IO_TEST(net, small_messages_of_many_streams_share_buffers) {
    zk_test_run(interleaved_streams_root, NULL);
}

/* Bytes read ahead that the runtime has no memory to keep are lost: the
 * stream's reads fail with -ENOMEM from then on, whatever comes after,
 * the stream still closes, and every buffer goes back. (io_uring with
 * read-ahead only: elsewhere nothing is read ahead.) */
static int64_t lost_piece_root(void *arg) {
    (void)arg;
    if (zk__rx_fail_pieces_after == NULL || !reads_ahead())
        return 0;
    pair p;
    make_pair(&p);
    char c[8];
    cr_assert_eq(zk_stream_write_all(p.b, "y", 1), 0);
    cr_assert_eq(zk_stream_read(p.a, c, 1), 1); /* the read arms */
    zk__rx_fail_pieces_after(0);
    cr_assert_eq(zk_stream_write_all(p.b, "abc", 3), 0);
    cr_assert_eq(zk_stream_read(p.a, c, sizeof c), -ENOMEM);
    cr_assert_eq(zk_stream_write_all(p.b, "def", 3), 0);
    cr_assert_eq(zk_stream_read(p.a, c, sizeof c), -ENOMEM, "it stays");
    zk__rx_fail_pieces_after(-1);
    cr_assert_eq(zk_stream_read(p.a, c, sizeof c), -ENOMEM, "for good");
    /* The other direction is unharmed. */
    cr_assert_eq(zk_stream_write_all(p.a, "zz", 2), 0);
    cr_assert_eq(zk_stream_read(p.b, c, 2), 2);
    close_pair(&p);
    assert_buffers_given_back();
    return 0;
}

ZK_IO_TEST(net, read_ahead_bytes_lost_for_want_of_memory_fail_the_reads) {
    zk_test_run(lost_piece_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* UDP                                                                    */
/* ---------------------------------------------------------------------- */

static int64_t udp_root(void *arg) {
    (void)arg;
    zk_addr any, a_addr, b_addr, from;
    zk_addr_parse("127.0.0.1:0", &any);
    zk_udp *a, *b;
    cr_assert_eq(zk_udp_bind(&any, &a), 0);
    cr_assert_eq(zk_udp_bind(&any, &b), 0);
    zk_udp_local_addr(a, &a_addr);
    zk_udp_local_addr(b, &b_addr);
    cr_assert_eq(zk_udp_send_to(a, "ping", 4, &b_addr), 4);
    char buf[16];
    cr_assert_eq(zk_udp_recv_from(b, buf, sizeof buf, &from), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    cr_assert_eq(zk_addr_port(&from), zk_addr_port(&a_addr));
    cr_assert_eq(zk_udp_connect(b, &from), 0);
    cr_assert_eq(zk_udp_send(b, "pong!", 5), 5);
    cr_assert_eq(zk_udp_recv(a, buf, sizeof buf), 5);
    cr_assert_eq(memcmp(buf, "pong!", 5), 0);
    /* Truncation to the buffer. */
    cr_assert_eq(zk_udp_send_to(a, "0123456789", 10, &b_addr), 10);
    cr_assert_eq(zk_udp_recv(b, buf, 3), 3);
    /* A datagram to a closed port: the connected socket learns it. */
    zk_udp *c;
    cr_assert_eq(zk_udp_bind(&any, &c), 0);
    zk_addr c_addr;
    zk_udp_local_addr(c, &c_addr);
    zk_udp_close(c);
    cr_assert_eq(zk_udp_connect(a, &c_addr), 0);
    cr_assert_eq(zk_udp_send(a, "x", 1), 1);
    int64_t r = zk_udp_recv(a, buf, sizeof buf);
    cr_assert_eq(r, -ECONNREFUSED, "%s", zk_strerror((int)r));
    /* Timeout on a receive that nobody answers. */
    zk_io_future f;
    zk_udp_recv_from_future_init(&f, b, buf, sizeof buf, NULL);
    cr_assert_eq(zk_await_timeout(&f.base, ZK_MS(10)), -ETIMEDOUT);
    cr_assert_eq(zk_udp_send(NULL, buf, 1), -EINVAL);
    cr_assert_eq(zk_udp_bind(NULL, &c), -EINVAL);
    zk_udp_close(a);
    zk_udp_close(b);
    return 0;
}

void zk__uring_fail_asks(bool on) __attribute__((weak));

/* Accepts on `arg` (a listener) that time out, each dropping its poll in
 * the ring of the worker it ran on. */
static int64_t accepts_time_out(void *arg) {
    for (int i = 0; i < 4; i++) {
        zk_stream *s = NULL;
        zk_io_future f;
        zk_listener_accept_future_init(&f, arg, &s, NULL);
        int64_t r = zk_await_timeout(&f.base, ZK_MS(2));
        if (r != -ETIMEDOUT)
            return r == 0 ? -EEXIST : r;
    }
    return 0;
}

/* On a multi-thread runtime's io_uring, drops and closes ask the socket
 * ring's owner to cancel. When it cannot note that (out of memory), it
 * cancels every dropped request and every one on a closed handle instead:
 * the dropped accepts' polls end, so the listener's descriptor is closed
 * once the listener is, though no connection ever came. */
static int64_t unnoted_asks_root(void *arg) {
    (void)arg;
    if (zk__uring_fail_asks == NULL || !ZK_TEST_MT ||
        zk_test_backend() != ZK_IO_IO_URING)
        return 0;
    int fds = zk_test_fd_count();
    zk_addr addr;
    zk_listener *l = zk_test_listen(&addr);
    zk__uring_fail_asks(true);
    zk_task *t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(zk_spawn(accepts_time_out, l, &t[i]), 0);
    cr_assert_eq(zk_test_join_all(t, 4), 0);
    cr_assert_eq(zk_listener_close(l), 0);
    for (int i = 0; i < 10000 && zk_test_fd_count() != fds; i++)
        zk_sleep(ZK_MS(1));
    zk__uring_fail_asks(false);
    cr_assert_eq(zk_test_fd_count(), fds, "the listener was never closed");
    zk_stream *c = NULL;
    cr_assert_eq(zk_tcp_connect(&addr, &c), -ECONNREFUSED);
    return 0;
}

ZK_IO_TEST(net, cancels_asked_of_a_ring_without_memory_to_note_them) {
    zk_test_run(unnoted_asks_root, NULL);
}

ZK_IO_TEST(net, udp) {
    zk_test_run(udp_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Name resolution                                                        */
/* ---------------------------------------------------------------------- */

static int64_t resolve_root(void *arg) {
    (void)arg;
    zk_addr out[4];
    int n = zk_resolve("localhost:80", out, 4);
    cr_assert_geq(n, 1, "resolve: %s", zk_strerror(n));
    for (int i = 0; i < n; i++)
        cr_assert_eq(zk_addr_port(&out[i]), 80);
    cr_assert_eq(zk_resolve("[::1]:443", out, 4), 1);
    cr_assert_eq(zk_addr_port(&out[0]), 443);
    n = zk_resolve("no-such-host.invalid:80", out, 4);
    cr_assert(n == -ENOENT || n == -EAGAIN, "%s", zk_strerror(n));
    cr_assert_eq(zk_resolve("localhost", out, 4), -EINVAL);
    cr_assert_eq(zk_resolve("localhost:99999", out, 4), -EINVAL);
    cr_assert_eq(zk_resolve("localhost:80", out, 0), -EINVAL);
    cr_assert_eq(zk_resolve(NULL, out, 1), -EINVAL);
    /* Brackets hold a literal, whole: not a name, not a literal's prefix
     * (a host longer than any scoped address), not a signed scope. */
    cr_assert_eq(zk_resolve("[localhost]:80", out, 4), -EINVAL);
    char lng[128];
    snprintf(lng, sizeof lng, "[fe80::1%%%070d]:80", 7);
    cr_assert_eq(zk_addr_parse(lng, out), -EINVAL);
    cr_assert_eq(zk_resolve(lng, out, 4), -EINVAL);
    cr_assert_eq(zk_resolve("[fe80::1%+5]:80", out, 4), -EINVAL);
    cr_assert_eq(zk_addr_parse("[fe80::1% 7]:80", out), -EINVAL);
    cr_assert_eq(zk_resolve("[fe80::1%7]:80", out, 4), 1);
    cr_assert_eq(out[0].u.in6.sin6_scope_id, 7);
    return 0;
}

ZK_IO_TEST(net, resolve) {
    zk_test_run(resolve_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* Echo stress: many connections, many messages of varied sizes           */
/* ---------------------------------------------------------------------- */

#if ZK_TEST_TIMEOUT_SCALE > 1 || defined(ZK_TEST_EMULATED)
#define STRESS_CONNS 200
#define STRESS_MSGS  50
#else
#define STRESS_CONNS 1000
#define STRESS_MSGS  1000
#endif

typedef struct stress {
    zk_addr addr;
    zk_listener *l;
    atomic_llong bytes_verified;
    atomic_int errors;
    atomic_int server_conns;
} stress;

typedef struct stress_client {
    stress *st;
    int id;
} stress_client;

static int64_t stress_server(void *arg) {
    stress *st = arg;
    for (;;) {
        zk_stream *s;
        int rc = zk_listener_accept(st->l, &s, NULL);
        if (rc == -EBADF)
            return 0; /* the listener was closed: done */
        if (rc != 0) {
            atomic_fetch_add(&st->errors, 1);
            continue;
        }
        atomic_fetch_add(&st->server_conns, 1);
        zk_task *t;
        if (zk_spawn(echo_conn, s, &t) != 0) {
            atomic_fetch_add(&st->errors, 1);
            zk_stream_close(s);
            continue;
        }
        zk_task_detach(&t);
    }
}

/* Message `m` of client `id`: its length and its bytes (a generator
 * seeded per message, so the reader can check what the writer sent). */
static size_t stress_len(int id, int m) {
    return 1 + (size_t)((id * 7919 + m * 104729) % 1024);
}

static void stress_fill(char *buf, int id, int m, size_t len) {
    uint32_t x = 2166136261u ^ (uint32_t)(id * 65599 + m);
    for (size_t i = 0; i < len; i++) {
        x = x * 1664525u + 1013904223u;
        buf[i] = (char)(x >> 24);
    }
}

typedef struct stress_writer {
    zk_stream *s;
    int id;
} stress_writer;

/* Sends every message while the client reads the echoes: the connection
 * is used in both directions at once. */
static int64_t stress_write_all(void *arg) {
    stress_writer *w = arg;
    char buf[1024];
    for (int m = 0; m < STRESS_MSGS; m++) {
        size_t len = stress_len(w->id, m);
        stress_fill(buf, w->id, m, len);
        int rc = zk_stream_write_all(w->s, buf, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int64_t stress_client_main(void *arg) {
    stress_client *c = arg;
    stress *st = c->st;
    zk_stream *s;
    if (zk_tcp_connect(&st->addr, &s) != 0) {
        atomic_fetch_add(&st->errors, 1);
        return -1;
    }
    stress_writer w = {s, c->id};
    zk_task *writer;
    if (zk_spawn(stress_write_all, &w, &writer) != 0) {
        atomic_fetch_add(&st->errors, 1);
        zk_stream_close(s);
        return -1;
    }
    char want[1024], got[1024];
    for (int m = 0; m < STRESS_MSGS; m++) {
        size_t len = stress_len(c->id, m);
        stress_fill(want, c->id, m, len);
        if (zk_stream_read_exact(s, got, len) != 0 ||
            memcmp(want, got, len) != 0) {
            atomic_fetch_add(&st->errors, 1);
            break;
        }
        atomic_fetch_add(&st->bytes_verified, (long long)len);
    }
    int64_t wr = -1;
    if (zk_task_join(&writer, &wr) != 0 || wr != 0)
        atomic_fetch_add(&st->errors, 1);
    zk_stream_close(s);
    return 0;
}

static int64_t stress_root(void *arg) {
    stress *st = arg;
    st->l = zk_test_listen(&st->addr);
    zk_task *server;
    cr_assert_eq(zk_spawn(stress_server, st, &server), 0);
    static stress_client clients[STRESS_CONNS];
    static zk_task *h[STRESS_CONNS];
    for (int i = 0; i < STRESS_CONNS; i++) {
        clients[i] = (stress_client){st, i};
        cr_assert_eq(zk_spawn(stress_client_main, &clients[i], &h[i]), 0);
    }
    zk_test_join_all(h, STRESS_CONNS);
    zk_listener_close(st->l);
    cr_assert_eq(zk_task_join(&server, NULL), 0);
    return 0;
}

#if !ZK_TEST_MT
/*
 * A task left waiting on a pipe read when the first driving thread's
 * zk_block_on() returned runs on at the next zk_block_on(), made by
 * another thread after the first one exited (runtime.h). On io_uring the
 * kernel ends the exited thread's polls with -ECANCELED, which the read
 * must not report: it waits again and gets the bytes written later.
 */
typedef struct handover {
    zk_runtime *rt;
    zk_stream *r, *w; /* the pipe's ends */
    atomic_int reading;
    zk_task *reader;
    int64_t read_res;
    char buf[16];
} handover;

static int64_t handover_reader(void *arg) {
    handover *h = arg;
    atomic_store(&h->reading, 1);
    zk_io_future f;
    zk_stream_read_future_init(&f, h->r, h->buf, sizeof h->buf);
    h->read_res = zk_await(&f.base);
    return 0;
}

static int64_t handover_root1(void *arg) {
    handover *h = arg;
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_eq(zk_stream_from_fd(pfd[0], &h->r), 0);
    cr_assert_eq(zk_stream_from_fd(pfd[1], &h->w), 0);
    cr_assert_eq(zk_spawn(handover_reader, h, &h->reader), 0);
    while (!atomic_load(&h->reading))
        zk_yield();
    /* The root sleeps, so the worker parks, and parking submits the
     * reader's wait from this thread (not a wait for timing: any length
     * makes the park). */
    zk_sleep(ZK_MS(1));
    return 0;
}

static void *handover_first_driver(void *arg) {
    handover *h = arg;
    cr_assert_eq(zk_block_on(h->rt, handover_root1, h, NULL), 0);
    return NULL; /* and the thread exits */
}

static int64_t handover_root2(void *arg) {
    handover *h = arg;
    cr_assert_eq(zk_stream_write_all(h->w, "hello", 5), 0);
    cr_assert_eq(zk_task_join(&h->reader, NULL), 0);
    cr_assert_eq(zk_stream_close(h->r), 0);
    cr_assert_eq(zk_stream_close(h->w), 0);
    return 0;
}

ZK_IO_TEST(net, a_wait_outlives_the_thread_that_submitted_it) {
    handover h;
    memset(&h, 0, sizeof h);
    h.rt = zk_test_runtime();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, handover_first_driver, &h), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(zk_block_on(h.rt, handover_root2, &h, NULL), 0);
    cr_assert_eq(zk_runtime_free(h.rt), 0);
    cr_assert_eq(h.read_res, 5, "the read gave %lld (%s)",
                 (long long)h.read_res, zk_strerror((int)h.read_res));
    cr_assert_eq(memcmp(h.buf, "hello", 5), 0);
}
#endif

/*
 * Two streams on one pipe's reading end (a descriptor and its dup):
 * closing one must not end the other's read, which gets the bytes written
 * next, as a read(2) on the dup would after a close(2) of the first. (On
 * io_uring the close cancels requests by open file, so the other stream's
 * wait is cancelled too, and must wait again.)
 */
typedef struct dup_pair {
    zk_stream *r1, *r2, *w;
    atomic_int reading;
    char buf[16];
} dup_pair;

static int64_t dup_reader(void *arg) {
    dup_pair *d = arg;
    zk_io_future f;
    /* Once on the first stream, on this worker (io_uring: its ring then
     * may hold requests on that stream, so the close cancels there). */
    zk_stream_read_future_init(&f, d->r1, d->buf, sizeof d->buf);
    cr_assert_eq(zk_test_poll_once_and_drop(&f.base), 1);
    zk_stream_read_future_init(&f, d->r2, d->buf, sizeof d->buf);
    return zk_test_await_after_flag(&f.base, &d->reading);
}

static int64_t dup_close_root(void *arg) {
    (void)arg;
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    int second = dup(pfd[0]);
    cr_assert_geq(second, 0);
    dup_pair d;
    memset(&d, 0, sizeof d);
    cr_assert_eq(zk_stream_from_fd(pfd[0], &d.r1), 0);
    cr_assert_eq(zk_stream_from_fd(second, &d.r2), 0);
    cr_assert_eq(zk_stream_from_fd(pfd[1], &d.w), 0);
    zk_task *t;
    cr_assert_eq(zk_spawn(dup_reader, &d, &t), 0);
    zk_test_wait_flag(&d.reading); /* the reader's read waits */
    cr_assert_eq(zk_stream_close(d.r1), 0);
    cr_assert_eq(zk_stream_write_all(d.w, "hello", 5), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&t, &r), 0);
    cr_assert_eq(r, 5, "the read on the other stream gave %lld (%s)",
                 (long long)r, zk_strerror((int)r));
    cr_assert_eq(memcmp(d.buf, "hello", 5), 0);
    cr_assert_eq(zk_stream_close(d.r2), 0);
    cr_assert_eq(zk_stream_close(d.w), 0);
    return 0;
}

ZK_IO_TEST(net, closing_a_dup_leaves_the_other_streams_read_waiting) {
    zk_test_run(dup_close_root, NULL);
}

#if ZK_TEST_MT
/* A multi-thread runtime whose every worker is an I/O home (io_uring:
 * zk_builder_set_io_homes; by default the tests' two workers share one). */
static zk_runtime *every_worker_a_home(void) {
    zk_builder *b = zk_test_builder();
    zk_builder_set_io_homes(b, 2);
    zk_runtime *rt = NULL;
    int rc = zk_builder_build(b, &rt);
    zk_builder_free(b);
    cr_assert_eq(rc, 0, "zk_builder_build: %s", zk_strerror(rc));
    return rt;
}

/* With the streams homed on both workers' rings: bytes of several streams
 * interleaved in the provided buffers, closes with data unread (every
 * buffer goes back), and a close that cancels on every ring holding
 * requests on a dup. */
ZK_IO_TEST(net, streams_homed_on_every_worker) {
    zk_test_run_on(every_worker_a_home(), interleaved_streams_root, NULL);
    zk_test_run_on(every_worker_a_home(), close_unread_root, NULL);
    zk_test_run_on(every_worker_a_home(), dup_close_root, NULL);
}
#endif

/* Its own suite: a longer timeout than the others. */
TestSuite(net_stress, .timeout = 4 * ZK_TEST_TIMEOUT);

ZK_IO_TEST(net_stress, echo_1000_connections_1000_messages) {
    zk_test_raise_nofile(4 * STRESS_CONNS + 256);
    static stress st;
    zk_test_run(stress_root, &st);
    long long expect = 0;
    for (int c = 0; c < STRESS_CONNS; c++)
        for (int m = 0; m < STRESS_MSGS; m++)
            expect += (long long)stress_len(c, m);
    cr_assert_eq(atomic_load(&st.errors), 0);
    cr_assert_eq(atomic_load(&st.server_conns), STRESS_CONNS);
    cr_assert_eq(atomic_load(&st.bytes_verified), expect);
}
