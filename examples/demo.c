/*
 * demo.c - Zokio doing real work: fans out tasks of both kinds, joins them,
 * and prints what it did and how long it took.
 *
 *  1. 10,000 coroutine tasks, each computing a checksum of its own slice
 *     of data and yielding between blocks so the others get their turn;
 *  2. 100,000 future tasks (stackless state machines) that count down and
 *     yield at every step;
 *  3. a ping-pong between two coroutines through a one-slot mailbox made of
 *     a future and wakers, 100,000 round trips (on a current-thread runtime:
 *     the mailbox has no locks, so both tasks must share one thread);
 *  4. blocking calls on the blocking pool, off the workers;
 *  5. a TCP echo server on the loopback and 100 clients sending it 100
 *     messages each, every byte checked (the I/O driver: io_uring or
 *     epoll, whichever the runtime picked).
 * Parts 1, 2, 4 and 5 run on the default multi-thread runtime.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zokio.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- 1. checksums on coroutine tasks ---- */

#define SLICES      10000
#define SLICE_BYTES 4096
static unsigned char *data;

static int64_t checksum_task(void *arg) {
    const unsigned char *p = data + (size_t)(intptr_t)arg * SLICE_BYTES;
    uint32_t a = 1, b = 0; /* Adler-32 */
    for (size_t i = 0; i < SLICE_BYTES; i++) {
        a = (a + p[i]) % 65521;
        b = (b + a) % 65521;
        if (i % 1024 == 1023 && zk_yield() < 0)
            return -1;
    }
    return (int64_t)((b << 16) | a);
}

/* ---- 2. countdown future tasks ---- */

typedef struct countdown {
    zk_future base;
    int left;
} countdown;

static zk_poll countdown_poll(zk_future *f, zk_context *cx, int64_t *out) {
    countdown *c = (countdown *)f;
    if (c->left-- > 0) {
        zk_waker_wake_by_ref(zk_context_waker(cx));
        return ZK_PENDING;
    }
    *out = 1;
    return ZK_READY;
}
static const zk_future_ops countdown_ops = {countdown_poll, NULL};

/* ---- 3. a one-slot mailbox: a value and the waker of whoever waits ---- */

typedef struct mailbox {
    int64_t value;
    bool full;
    zk_waker waiter; /* the receiver or the sender, whoever waits */
} mailbox;

typedef struct mail_op {
    zk_future base;
    mailbox *box;
    int64_t value; /* for send */
} mail_op;

static zk_poll recv_poll(zk_future *f, zk_context *cx, int64_t *out) {
    mail_op *op = (mail_op *)f;
    if (!op->box->full) {
        zk_waker_drop(&op->box->waiter);
        op->box->waiter = zk_waker_clone(zk_context_waker(cx));
        return ZK_PENDING;
    }
    op->box->full = false;
    *out = op->box->value;
    zk_waker_wake(&op->box->waiter); /* a sender may wait for room */
    return ZK_READY;
}

static zk_poll send_poll(zk_future *f, zk_context *cx, int64_t *out) {
    mail_op *op = (mail_op *)f;
    if (op->box->full) {
        zk_waker_drop(&op->box->waiter);
        op->box->waiter = zk_waker_clone(zk_context_waker(cx));
        return ZK_PENDING;
    }
    op->box->full = true;
    op->box->value = op->value;
    zk_waker_wake(&op->box->waiter);
    *out = 0;
    return ZK_READY;
}

static const zk_future_ops recv_ops = {recv_poll, NULL};
static const zk_future_ops send_ops = {send_poll, NULL};

#define ROUNDS 100000
static mailbox ping, pong;

static int64_t pinger(void *arg) {
    (void)arg;
    for (int64_t i = 0; i < ROUNDS; i++) {
        mail_op s = {{&send_ops}, &ping, i};
        zk_await(&s.base);
        mail_op r = {{&recv_ops}, &pong, 0};
        if (zk_await(&r.base) != i + 1)
            return -1;
    }
    return ROUNDS;
}

static int64_t ponger(void *arg) {
    (void)arg;
    for (int64_t i = 0; i < ROUNDS; i++) {
        mail_op r = {{&recv_ops}, &ping, 0};
        int64_t v = zk_await(&r.base);
        mail_op s = {{&send_ops}, &pong, v + 1};
        zk_await(&s.base);
    }
    return 0;
}

/* A blocking call: plain C that does not await (it runs on the blocking
 * pool, where blocking is allowed). */
static int64_t blocking_sum(void *arg) {
    const unsigned char *p =
        data + (size_t)(intptr_t)arg * (SLICES / 8) * SLICE_BYTES;
    uint64_t sum = 0;
    for (size_t i = 0; i < (size_t)(SLICES / 8) * SLICE_BYTES; i++)
        sum += p[i];
    return (int64_t)sum;
}

static int64_t ping_pong_root(void *arg) {
    (void)arg;
    double t0 = now_s();
    zk_task *a, *b;
    zk_spawn(pinger, NULL, &a);
    zk_spawn(ponger, NULL, &b);
    int64_t ra = -1, rb = -1;
    zk_task_join(&a, &ra);
    zk_task_join(&b, &rb);
    double t1 = now_s();
    printf("ping-pong: %lld round trips between two coroutines, %.1f ms "
           "(%.0f ns per round trip)\n",
           (long long)ra, (t1 - t0) * 1e3, (t1 - t0) * 1e9 / ROUNDS);
    return ra != ROUNDS || rb != 0;
}

static int64_t fan_out_root(void *arg) {
    (void)arg;
    int failures = 0;

    double t0 = now_s();
    zk_task **h = malloc(SLICES * sizeof *h);
    uint64_t total = 0;
    for (intptr_t i = 0; i < SLICES; i++)
        if (zk_spawn(checksum_task, (void *)i, &h[i]) < 0)
            return -1;
    for (int i = 0; i < SLICES; i++) {
        int64_t r;
        if (zk_task_join(&h[i], &r) < 0 || r < 0)
            failures++;
        else
            total += (uint64_t)r;
    }
    free(h);
    double t1 = now_s();
    printf("coroutine tasks: %d checksums of %d bytes, checksum sum %llu, "
           "%.1f ms\n",
           SLICES, SLICE_BYTES, (unsigned long long)total, (t1 - t0) * 1e3);

    enum { NFUT = 100000 };
    zk_task **fh = malloc(NFUT * sizeof *fh);
    for (int i = 0; i < NFUT; i++) {
        countdown c = {{&countdown_ops}, 5};
        if (zk_spawn_future(NULL, &c.base, sizeof c, &fh[i]) < 0)
            return -1;
    }
    int64_t done = 0;
    for (int i = 0; i < NFUT; i++) {
        int64_t r;
        if (zk_task_join(&fh[i], &r) == 0)
            done += r;
    }
    free(fh);
    double t2 = now_s();
    printf("future tasks: %lld of %d finished after 5 yields each, %.1f ms\n",
           (long long)done, NFUT, (t2 - t1) * 1e3);
    failures += done != NFUT;

    /* 4. Blocking calls: each sums a slice with a deliberately blocking
     * loop on the blocking pool while the workers stay free. */
    zk_task *bh[8];
    for (intptr_t i = 0; i < 8; i++)
        if (zk_spawn_blocking(NULL, blocking_sum, (void *)i, &bh[i]) < 0)
            return -1;
    uint64_t blocking_total = 0;
    for (int i = 0; i < 8; i++) {
        int64_t r;
        if (zk_task_join(&bh[i], &r) < 0)
            failures++;
        else
            blocking_total += (uint64_t)r;
    }
    double t3 = now_s();
    printf("blocking pool: 8 blocking calls summed %llu bytes' values, "
           "%.1f ms\n",
           (unsigned long long)blocking_total, (t3 - t2) * 1e3);
    return failures;
}

/* ---- 5. an echo server and its clients ---- */

#define CLIENTS  100
#define MESSAGES 100

static int64_t echo_connection(void *arg) {
    zk_stream *s = arg;
    char buf[4096];
    int64_t n, total = 0;
    while ((n = zk_stream_read(s, buf, sizeof buf)) > 0) {
        if (zk_stream_write_all(s, buf, (size_t)n) != 0)
            break;
        total += n;
    }
    zk_stream_close(s);
    return total;
}

static int64_t echo_server(void *arg) {
    zk_listener *l = arg;
    for (;;) {
        zk_stream *s;
        int rc = zk_listener_accept(l, &s, NULL);
        if (rc == -EBADF)
            return 0; /* closed by the demo: stop */
        if (rc != 0)
            continue;
        zk_task *t;
        if (zk_spawn(echo_connection, s, &t) == 0)
            zk_task_detach(&t);
        else
            zk_stream_close(s);
    }
}

static int64_t echo_client(void *arg) {
    const zk_addr *addr = arg;
    zk_stream *s;
    if (zk_tcp_connect(addr, &s) != 0)
        return -1;
    int64_t bad = 0;
    for (int m = 0; m < MESSAGES && bad == 0; m++) {
        char out[256], in[256];
        int len = snprintf(out, sizeof out, "message %d from task %llu", m,
                           (unsigned long long)zk_task_current_id());
        if (zk_stream_write_all(s, out, (size_t)len) != 0 ||
            zk_stream_read_exact(s, in, (size_t)len) != 0 ||
            memcmp(in, out, (size_t)len) != 0)
            bad = 1;
    }
    zk_stream_close(s);
    return bad;
}

static int64_t echo_root(void *arg) {
    (void)arg;
    double t0 = now_s();
    zk_addr addr;
    zk_listener *l;
    zk_addr_parse("127.0.0.1:0", &addr);
    if (zk_tcp_listen(&addr, 0, &l) != 0)
        return -1;
    zk_listener_local_addr(l, &addr);
    zk_task *server, *h[CLIENTS];
    zk_spawn(echo_server, l, &server);
    int64_t failures = 0;
    for (int i = 0; i < CLIENTS; i++)
        if (zk_spawn(echo_client, &addr, &h[i]) != 0)
            return -1;
    for (int i = 0; i < CLIENTS; i++) {
        int64_t r = -1;
        zk_task_join(&h[i], &r);
        failures += r != 0;
    }
    zk_listener_close(l);
    zk_task_join(&server, NULL);
    double t1 = now_s();
    char text[64];
    zk_addr_format(&addr, text, sizeof text);
    printf("echo over %s: %d clients x %d messages on %s, %lld failed, "
           "%.1f ms\n",
           zk_io_backend_name(zk_runtime_io_backend(zk_runtime_current())),
           CLIENTS, MESSAGES, text, (long long)failures, (t1 - t0) * 1e3);
    return failures;
}

int main(void) {
    data = malloc((size_t)SLICES * SLICE_BYTES);
    if (!data)
        return 1;
    srand(1);
    for (size_t i = 0; i < (size_t)SLICES * SLICE_BYTES; i++)
        data[i] = (unsigned char)rand();

    zk_runtime *mt, *ct;
    int rc = zk_runtime_new(ZK_RUNTIME_MULTI_THREAD, &mt);
    if (rc == 0)
        rc = zk_runtime_new(ZK_RUNTIME_CURRENT_THREAD, &ct);
    if (rc < 0) {
        fprintf(stderr, "zk_runtime_new: %s\n", zk_strerror(rc));
        return 1;
    }
    printf("zokio %s demo: multi-thread runtime with %zu workers\n",
           zk_version(), zk_runtime_workers(mt));
    int64_t failures = -1, pp_failures = -1;
    double t0 = now_s();
    int64_t echo_failures = -1;
    rc = zk_block_on(mt, fan_out_root, NULL, &failures);
    if (rc == 0)
        rc = zk_block_on(ct, ping_pong_root, NULL, &pp_failures);
    if (rc == 0)
        rc = zk_block_on(mt, echo_root, NULL, &echo_failures);
    double t1 = now_s();
    zk_runtime_metrics m;
    zk_runtime_metrics_get(mt, &m);
    uint64_t steals = 0, polls = 0;
    for (size_t i = 0; i < m.workers; i++) {
        zk_worker_metrics w;
        zk_runtime_worker_metrics(mt, i, &w);
        steals += w.steals;
        polls += w.polls;
    }
    printf("multi-thread runtime: %llu polls, %llu tasks stolen between "
           "workers, %llu blocking threads started\n",
           (unsigned long long)polls, (unsigned long long)steals,
           (unsigned long long)m.blocking_threads_started);
    zk_runtime_free(mt);
    zk_runtime_free(ct);
    free(data);
    if (rc < 0 || failures != 0 || pp_failures != 0 || echo_failures != 0) {
        fprintf(stderr, "demo failed: rc=%s failures=%lld/%lld/%lld\n",
                zk_strerror(rc), (long long)failures, (long long)pp_failures,
                (long long)echo_failures);
        return 1;
    }
    printf("all done in %.1f ms, no task left behind\n", (t1 - t0) * 1e3);
    return 0;
}
