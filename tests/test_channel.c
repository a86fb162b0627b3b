/* test_channel.c - oneshot, mpsc (bounded, unbounded), broadcast and
 * watch: semantics, back-pressure, closing, bad input, cancellation in
 * every state, deadlines, plain threads, and counted stress with senders
 * and receivers aborted across workers. */
#include "helpers.h"

ZK_SUITE(channel);

/* ---------------------------------------------------------------------- */
/* bad input                                                              */
/* ---------------------------------------------------------------------- */

ZK_TEST(channel, bad_input_gets_clear_codes) {
    zk_mpsc_tx *tx = NULL;
    zk_mpsc_rx *rx = NULL;
    int v = 1;
    cr_assert_eq(zk_mpsc_new(sizeof v, 0, &tx, &rx), -EINVAL, "capacity 0");
    cr_assert_eq(zk_mpsc_new(0, 4, &tx, &rx), -EINVAL, "element size 0");
    cr_assert_eq(zk_mpsc_new(ZK_CHANNEL_ELEM_MAX + 1, 4, &tx, &rx), -EINVAL);
    cr_assert_eq(zk_mpsc_new(sizeof v, ZK_CHANNEL_CAPACITY_MAX + 1, &tx, &rx),
                 -EINVAL);
    cr_assert_eq(zk_mpsc_new(sizeof v, 4, NULL, &rx), -EINVAL);
    cr_assert_eq(zk_mpsc_new_unbounded(0, &tx, &rx), -EINVAL);
    cr_assert_null(tx, "failed calls leave the handles alone");
    cr_assert_eq(zk_mpsc_new(sizeof v, 4, &tx, &rx), 0);
    cr_assert_eq(zk_mpsc_send(NULL, &v), -EINVAL);
    cr_assert_eq(zk_mpsc_send(tx, NULL), -EINVAL);
    cr_assert_eq(zk_mpsc_try_send(tx, NULL), -EINVAL);
    cr_assert_eq(zk_mpsc_recv(rx, NULL), -EINVAL);
    cr_assert_eq(zk_mpsc_try_recv(NULL, &v), -EINVAL);
    cr_assert_eq(zk_mpsc_try_recv(rx, &v), -EAGAIN);
    cr_assert_eq(zk_mpsc_tx_clone(NULL, &tx), -EINVAL);
    cr_assert_eq(zk_mpsc_tx_close(NULL), -EINVAL);
    cr_assert_eq(zk_mpsc_try_send(tx, &v), 0);
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
    cr_assert_null(tx);
    cr_assert_eq(zk_mpsc_tx_close(&tx), -EINVAL, "double close");
    cr_assert_eq(zk_mpsc_try_recv(rx, &v), 0, "drains after close");
    cr_assert_eq(zk_mpsc_try_recv(rx, &v), -EPIPE, "then closed");
    cr_assert_eq(zk_mpsc_recv(rx, &v), -EPIPE, "closed, even blocking");
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
    cr_assert_eq(zk_mpsc_rx_close(&rx), -EINVAL, "double close");

    cr_assert_eq(zk_mpsc_new(sizeof v, 4, &tx, &rx), 0);
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
    cr_assert_eq(zk_mpsc_try_send(tx, &v), -EPIPE, "receiver gone");
    cr_assert_eq(zk_mpsc_send(tx, &v), -EPIPE);
    zk_mpsc_tx *tx2;
    cr_assert_eq(zk_mpsc_tx_clone(tx, &tx2), -EPIPE);
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);

    zk_oneshot_tx *otx = NULL;
    zk_oneshot_rx *orx = NULL;
    cr_assert_eq(zk_oneshot_new(0, &otx, &orx), -EINVAL);
    cr_assert_eq(zk_oneshot_new(sizeof v, NULL, &orx), -EINVAL);
    cr_assert_eq(zk_oneshot_send(NULL, &v), -EINVAL);
    cr_assert_eq(zk_oneshot_send(&otx, &v), -EINVAL, "NULL handle");
    cr_assert_eq(zk_oneshot_new(sizeof v, &otx, &orx), 0);
    cr_assert_eq(zk_oneshot_send(&otx, NULL), -EINVAL);
    cr_assert_not_null(otx, "kept on -EINVAL");
    cr_assert_eq(zk_oneshot_try_recv(orx, NULL), -EINVAL);
    cr_assert_eq(zk_oneshot_tx_close(&otx), 0);
    cr_assert_eq(zk_oneshot_tx_close(&otx), -EINVAL);
    cr_assert_eq(zk_oneshot_recv(orx, &v), -EPIPE, "closed unsent");
    cr_assert_eq(zk_oneshot_rx_close(&orx), 0);
    cr_assert_eq(zk_oneshot_rx_close(&orx), -EINVAL);

    zk_broadcast_tx *btx = NULL;
    zk_broadcast_rx *brx = NULL;
    cr_assert_eq(zk_broadcast_new(sizeof v, 0, &btx, &brx), -EINVAL);
    cr_assert_eq(zk_broadcast_new(0, 4, &btx, &brx), -EINVAL);
    cr_assert_eq(zk_broadcast_send(NULL, &v), -EINVAL);
    cr_assert_eq(zk_broadcast_recv(NULL, &v, NULL), -EINVAL);
    cr_assert_eq(zk_broadcast_subscribe(NULL, &brx), -EINVAL);
    cr_assert_eq(zk_broadcast_tx_close(&btx), -EINVAL);
    cr_assert_eq(zk_broadcast_rx_close(&brx), -EINVAL);

    zk_watch_tx *wtx = NULL;
    zk_watch_rx *wrx = NULL;
    cr_assert_eq(zk_watch_new(sizeof v, NULL, &wtx, &wrx), -EINVAL);
    cr_assert_eq(zk_watch_new(0, &v, &wtx, &wrx), -EINVAL);
    cr_assert_eq(zk_watch_send(NULL, &v), -EINVAL);
    cr_assert_eq(zk_watch_borrow(NULL, &v), -EINVAL);
    cr_assert_eq(zk_watch_changed(NULL), -EINVAL);
    cr_assert_eq(zk_watch_tx_close(&wtx), -EINVAL);
    cr_assert_eq(zk_watch_rx_close(&wrx), -EINVAL);

    counter_waker w = {0};
    int64_t out;
    zk_mpsc_recv_future rf;
    zk_mpsc_recv_future_init(&rf, NULL, &v);
    cr_assert(poll1(&rf.base, &w, &out));
    cr_assert_eq(out, -EINVAL);
    zk_future_drop(&rf.base);
}

/* ---------------------------------------------------------------------- */
/* oneshot                                                                */
/* ---------------------------------------------------------------------- */

typedef struct pair {
    double x;
    long y;
} pair;

static int64_t oneshot_sender(void *arg) {
    zk_oneshot_tx *tx = arg;
    zk_yield();
    pair p = {2.5, 42};
    return zk_oneshot_send(&tx, &p);
}

static int64_t oneshot_root(void *arg) {
    (void)arg;
    zk_oneshot_tx *tx;
    zk_oneshot_rx *rx;
    cr_assert_eq(zk_oneshot_new(sizeof(pair), &tx, &rx), 0);
    pair p = {0, 0};
    cr_assert_eq(zk_oneshot_try_recv(rx, &p), -EAGAIN);
    zk_task *h;
    cr_assert_eq(zk_spawn(oneshot_sender, tx, &h), 0);
    cr_assert_eq(zk_oneshot_recv(rx, &p), 0);
    cr_assert(p.x == 2.5 && p.y == 42, "copied by value");
    cr_assert_eq(zk_oneshot_recv(rx, &p), -EPIPE, "taken already");
    cr_assert_eq(zk_test_join_all(&h, 1), 0);
    cr_assert_eq(zk_oneshot_rx_close(&rx), 0);

    /* The receiver gone: a send fails and still closes the sender. */
    cr_assert_eq(zk_oneshot_new(sizeof(pair), &tx, &rx), 0);
    cr_assert_eq(zk_oneshot_rx_close(&rx), 0);
    cr_assert_eq(zk_oneshot_send(&tx, &p), -EPIPE);
    cr_assert_null(tx);

    /* A deadline, then the value still arrives for a later receive. */
    cr_assert_eq(zk_oneshot_new(sizeof(pair), &tx, &rx), 0);
    zk_instant t0 = zk_now();
    cr_assert_eq(zk_oneshot_recv_until(rx, &p, t0 + ZK_MS(20)), -ETIMEDOUT);
    cr_assert_geq(zk_now() - t0, ZK_MS(20));
    p.y = 7;
    cr_assert_eq(zk_oneshot_send(&tx, &p), 0);
    p.y = 0;
    cr_assert_eq(zk_oneshot_recv_until(rx, &p, zk_now() + ZK_SEC(3600)), 0);
    cr_assert_eq(p.y, 7);
    cr_assert_eq(zk_oneshot_rx_close(&rx), 0);
    return 0;
}

ZK_TEST(channel, oneshot_send_recv_close_and_deadline) {
    zk_test_run_paused(oneshot_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* mpsc                                                                   */
/* ---------------------------------------------------------------------- */

/* The blocking forms called from a future task's poll: refused with
 * -EPERM, as the header says, even when they would not have to wait (a
 * message is there, or room), and nothing is taken or sent. */
typedef struct blocking_in_poll {
    zk_future base;
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    int *codes; /* the four calls' results, in the root's frame */
} blocking_in_poll;

static zk_poll blocking_in_poll_poll(zk_future *f, zk_context *cx,
                                     int64_t *out) {
    (void)cx;
    blocking_in_poll *p = (blocking_in_poll *)f;
    int v = 2;
    p->codes[0] = zk_mpsc_recv(p->rx, &v);
    p->codes[1] = zk_mpsc_send(p->tx, &v);
    p->codes[2] = zk_mpsc_recv_until(p->rx, &v, ZK_INSTANT_MAX);
    p->codes[3] = zk_mpsc_send_until(p->tx, &v, ZK_INSTANT_MAX);
    *out = 0;
    return ZK_READY;
}

static const zk_future_ops blocking_in_poll_ops = {blocking_in_poll_poll, NULL};

static int64_t mpsc_blocking_in_poll_root(void *arg) {
    (void)arg;
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 4, &tx, &rx), 0);
    int one = 1;
    cr_assert_eq(zk_mpsc_send(tx, &one), 0);
    int codes[4] = {0, 0, 0, 0};
    blocking_in_poll p = {{&blocking_in_poll_ops}, tx, rx, codes};
    zk_task *t;
    cr_assert_eq(zk_spawn_future(NULL, &p.base, sizeof p, &t), 0);
    cr_assert_eq(zk_task_join(&t, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(codes[i], -EPERM, "call %d gave %d", i, codes[i]);
    int v = 0;
    cr_assert_eq(zk_mpsc_try_recv(rx, &v), 0, "the message is still there");
    cr_assert_eq(v, 1);
    cr_assert_eq(zk_mpsc_try_recv(rx, &v), -EAGAIN, "and nothing was sent");
    zk_mpsc_tx_close(&tx);
    zk_mpsc_rx_close(&rx);
    return 0;
}

ZK_TEST(channel, mpsc_blocking_forms_refused_in_a_future_tasks_poll) {
    zk_test_run(mpsc_blocking_in_poll_root, NULL);
}

ZK_TEST(channel, mpsc_bounded_backpressure_fifo_and_dropped_senders) {
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 2, &tx, &rx), 0);
    int v[6] = {0, 1, 2, 3, 4, 5}, got;
    cr_assert_eq(zk_mpsc_try_send(tx, &v[0]), 0);
    cr_assert_eq(zk_mpsc_try_send(tx, &v[1]), 0);
    cr_assert_eq(zk_mpsc_try_send(tx, &v[2]), -EAGAIN, "full");
    counter_waker w[4] = {0};
    zk_mpsc_send_future s[4];
    int64_t out;
    for (int i = 0; i < 4; i++) {
        zk_mpsc_send_future_init(&s[i], tx, &v[2 + i]);
        cr_assert_not(poll1(&s[i].base, &w[i], &out), "waits for room");
    }
    /* A queued sender that is dropped sent nothing. */
    zk_future_drop(&s[1].base);
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), 0);
    cr_assert_eq(got, 0);
    cr_assert_eq(atomic_load(&w[0].wakes), 1, "the room went to s[0]");
    cr_assert_eq(zk_mpsc_try_send(tx, &v[0]), -EAGAIN, "reserved: no barging");
    /* Handed the room, dropped before filling it: it goes to s[2]. */
    zk_future_drop(&s[0].base);
    cr_assert_eq(atomic_load(&w[2].wakes), 1);
    cr_assert(poll1(&s[2].base, &w[2], &out));
    cr_assert_eq(out, 0);
    zk_future_drop(&s[2].base);
    cr_assert_eq(zk_mpsc_len(rx), 2);
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), 0);
    cr_assert_eq(got, 1);
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), 0);
    cr_assert_eq(got, 4, "s[2]'s message; s[0] and s[1] sent nothing");
    cr_assert(poll1(&s[3].base, &w[3], &out));
    cr_assert_eq(out, 0);
    zk_future_drop(&s[3].base);
    /* The receiver closes while a sender waits: it fails with -EPIPE. */
    cr_assert_eq(zk_mpsc_try_send(tx, &v[0]), 0);
    zk_mpsc_send_future_init(&s[0], tx, &v[0]);
    cr_assert_not(poll1(&s[0].base, &w[0], &out));
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
    cr_assert(poll1(&s[0].base, &w[0], &out));
    cr_assert_eq(out, -EPIPE);
    zk_future_drop(&s[0].base);
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
}

/* A new sender that finds the fast path shut (room is reserved for a woken
 * sender) and nobody queued takes a slot only if one is left beyond the
 * reservation. */
ZK_TEST(channel, mpsc_new_sender_takes_only_room_beyond_the_reserved) {
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 3, &tx, &rx), 0);
    int v[5] = {0, 1, 2, 3, 4}, got;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(zk_mpsc_try_send(tx, &v[i]), 0);
    counter_waker w[3] = {0};
    zk_mpsc_send_future s[3];
    int64_t out;
    zk_mpsc_send_future_init(&s[0], tx, &v[3]);
    cr_assert_not(poll1(&s[0].base, &w[0], &out), "full: waits");
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), 0);
    cr_assert_eq(atomic_load(&w[0].wakes), 1, "the freed slot is s[0]'s");
    /* The only free slot is reserved: the newcomer waits. */
    zk_mpsc_send_future_init(&s[1], tx, &v[4]);
    cr_assert_not(poll1(&s[1].base, &w[1], &out), "no barging");
    zk_future_drop(&s[1].base);
    /* A second slot frees (nobody queued, so nobody is woken): a newcomer
     * takes it and leaves the reserved one to s[0]. */
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), 0);
    zk_mpsc_send_future_init(&s[2], tx, &v[4]);
    cr_assert(poll1(&s[2].base, &w[2], &out), "room beyond the reserved");
    cr_assert_eq(out, 0);
    zk_future_drop(&s[2].base);
    cr_assert(poll1(&s[0].base, &w[0], &out), "its room is still there");
    cr_assert_eq(out, 0);
    zk_future_drop(&s[0].base);
    int want[3] = {2, 4, 3};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(zk_mpsc_try_recv(rx, &got), 0);
        cr_assert_eq(got, want[i]);
    }
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), -EAGAIN);
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
}

ZK_TEST(channel, mpsc_receive_woken_then_dropped_passes_the_wake_on) {
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 4, &tx, &rx), 0);
    int got[2] = {-1, -1}, v = 9;
    counter_waker w[2] = {0};
    zk_mpsc_recv_future r[2];
    int64_t out;
    for (int i = 0; i < 2; i++) {
        zk_mpsc_recv_future_init(&r[i], rx, &got[i]);
        cr_assert_not(poll1(&r[i].base, &w[i], &out));
    }
    cr_assert_eq(zk_mpsc_try_send(tx, &v), 0);
    cr_assert_eq(atomic_load(&w[0].wakes), 1);
    zk_future_drop(&r[0].base); /* woken, never took it */
    cr_assert_eq(got[0], -1);
    cr_assert_eq(atomic_load(&w[1].wakes), 1, "the wake moved on");
    cr_assert(poll1(&r[1].base, &w[1], &out));
    cr_assert_eq(out, 0);
    cr_assert_eq(got[1], 9);
    zk_future_drop(&r[1].base);
    /* The last sender closing wakes a waiting receive with -EPIPE. */
    zk_mpsc_recv_future_init(&r[0], rx, &got[0]);
    cr_assert_not(poll1(&r[0].base, &w[0], &out));
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
    cr_assert_eq(atomic_load(&w[0].wakes), 2);
    cr_assert(poll1(&r[0].base, &w[0], &out));
    cr_assert_eq(out, -EPIPE);
    zk_future_drop(&r[0].base);
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
}

ZK_TEST(channel, mpsc_unbounded_grows_and_keeps_order) {
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new_unbounded(sizeof(long), &tx, &rx), 0);
    long got;
    /* Interleave, so that receives swap the senders' queue out while it
     * grows and senders refill the emptied one. */
    long next_in = 0, next_out = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 5000; i++, next_in++)
            cr_assert_eq(zk_mpsc_try_send(tx, &next_in), 0);
        for (int i = 0; i < 3000; i++, next_out++) {
            cr_assert_eq(zk_mpsc_try_recv(rx, &got), 0);
            cr_assert_eq(got, next_out);
        }
        cr_assert_eq(zk_mpsc_len(rx), (size_t)(next_in - next_out),
                     "the messages of both queues count");
    }
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
    while (zk_mpsc_try_recv(rx, &got) == 0)
        cr_assert_eq(got, next_out++);
    cr_assert_eq(next_out, next_in, "every message, in order");
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), -EPIPE);
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
}

static int64_t mpsc_deadline_root(void *arg) {
    (void)arg;
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 1, &tx, &rx), 0);
    int v = 5, got = 0;
    zk_instant t0 = zk_now();
    cr_assert_eq(zk_mpsc_recv_until(rx, &got, t0 + ZK_MS(20)), -ETIMEDOUT);
    cr_assert_geq(zk_now() - t0, ZK_MS(20));
    cr_assert_eq(zk_mpsc_send_until(tx, &v, zk_now() + ZK_MS(20)), 0);
    v = 6;
    cr_assert_eq(zk_mpsc_send_until(tx, &v, zk_now() + ZK_MS(20)), -ETIMEDOUT);
    cr_assert_eq(zk_mpsc_len(rx), 1, "the timed-out send sent nothing");
    cr_assert_eq(zk_mpsc_recv(rx, &got), 0);
    cr_assert_eq(got, 5);
    cr_assert_eq(zk_mpsc_try_recv(rx, &got), -EAGAIN);
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
    return 0;
}

ZK_TEST(channel, mpsc_deadlines) {
    zk_test_run_paused(mpsc_deadline_root, NULL);
}

/* A plain thread produces into a bounded channel a task consumes. */
static void *plain_producer(void *arg) {
    zk_mpsc_tx *tx = arg;
    intptr_t bad = 0;
    for (int i = 0; i < 10000; i++)
        if (zk_mpsc_send(tx, &i) != 0) /* blocks the thread when full */
            bad++;
    zk_mpsc_tx_close(&tx);
    return (void *)bad;
}

static int64_t consumes_all(void *arg) {
    zk_mpsc_rx *rx = arg;
    int got, next = 0;
    while (zk_mpsc_recv(rx, &got) == 0) {
        cr_assert_eq(got, next);
        next++;
    }
    return next;
}

ZK_TEST(channel, mpsc_from_a_plain_thread_to_a_task) {
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 8, &tx, &rx), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, plain_producer, tx), 0);
    cr_assert_eq(zk_test_run(consumes_all, rx), 10000);
    void *bad;
    pthread_join(t, &bad);
    cr_assert_eq((intptr_t)bad, 0);
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
}

/* Several plain threads send into a ring of odd size (indexed modulo its
 * capacity), of one slot, or into an unbounded channel (whose receives swap
 * the senders' queue out from under them), while two tasks receive from
 * the one receiver handle: every message arrives exactly once, and each
 * receiver sees each thread's messages in the order they were sent. */
#define RING_THREADS 3
#define RING_PER     20000

typedef struct ring_msg {
    int thread;
    int seq;
} ring_msg;

typedef struct ring_run {
    zk_mpsc_rx *rx;
    _Atomic unsigned char seen[RING_THREADS][RING_PER];
} ring_run;

typedef struct ring_producer_arg {
    zk_mpsc_tx *tx;
    int thread;
} ring_producer_arg;

static void *ring_producer(void *arg) {
    ring_producer_arg *a = arg;
    intptr_t bad = 0;
    for (int i = 0; i < RING_PER; i++) {
        ring_msg m = {a->thread, i};
        if (zk_mpsc_send(a->tx, &m) != 0)
            bad++;
    }
    zk_mpsc_tx_close(&a->tx);
    return (void *)bad;
}

static int64_t ring_receiver(void *arg) {
    ring_run *run = arg;
    int last[RING_THREADS] = {-1, -1, -1};
    int64_t n = 0, disorder = 0;
    ring_msg m;
    while (zk_mpsc_recv(run->rx, &m) == 0) {
        if (m.seq <= last[m.thread])
            disorder++;
        last[m.thread] = m.seq;
        atomic_fetch_add(&run->seen[m.thread][m.seq], 1);
        n++;
    }
    return disorder ? -1 : n;
}

static int64_t ring_root(void *arg) {
    ring_run *run = arg;
    zk_task *r[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(zk_spawn(ring_receiver, run, &r[i]), 0);
    int64_t total = 0;
    for (int i = 0; i < 2; i++) {
        int64_t n;
        cr_assert_eq(zk_task_join(&r[i], &n), 0);
        cr_assert_geq(n, 0, "a receiver saw a thread's messages out of order");
        total += n;
    }
    return total;
}

ZK_TEST(channel, mpsc_threads_into_odd_one_slot_and_unbounded_two_receivers) {
    static const size_t caps[] = {3, 1, 1000, 0 /* unbounded */};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        ring_run *run = calloc(1, sizeof *run);
        cr_assert_not_null(run);
        zk_mpsc_tx *tx;
        if (caps[c])
            cr_assert_eq(zk_mpsc_new(sizeof(ring_msg), caps[c], &tx, &run->rx),
                         0);
        else
            cr_assert_eq(zk_mpsc_new_unbounded(sizeof(ring_msg), &tx, &run->rx),
                         0);
        ring_producer_arg a[RING_THREADS];
        pthread_t t[RING_THREADS];
        for (int i = 0; i < RING_THREADS; i++) {
            a[i].thread = i;
            cr_assert_eq(zk_mpsc_tx_clone(tx, &a[i].tx), 0);
            cr_assert_eq(pthread_create(&t[i], NULL, ring_producer, &a[i]), 0);
        }
        cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
        cr_assert_eq(zk_test_run(ring_root, run), RING_THREADS * RING_PER,
                     "capacity %zu", caps[c]);
        for (int i = 0; i < RING_THREADS; i++) {
            void *bad;
            pthread_join(t[i], &bad);
            cr_assert_eq((intptr_t)bad, 0);
        }
        for (int i = 0; i < RING_THREADS; i++)
            for (int k = 0; k < RING_PER; k++)
                cr_assert_eq(atomic_load(&run->seen[i][k]), 1,
                             "capacity %zu: thread %d message %d", caps[c], i,
                             k);
        cr_assert_eq(zk_mpsc_rx_close(&run->rx), 0);
        free(run);
    }
}

/* ---- stress: producers and receivers aborted, every message counted --- */

#define PRODUCERS    5
#define PER_PRODUCER 20000

typedef struct msg {
    int producer;
    int seq;
} msg;

typedef struct mpsc_stress {
    zk_mpsc_rx *rx;
    /* Written by each producer for its own messages, read after joins. */
    unsigned char sent[PRODUCERS][PER_PRODUCER];
    /* Written by whichever receiver task holds `rx` at the time (one at a
     * time: the root joins one before starting the next). */
    unsigned char received[PRODUCERS][PER_PRODUCER];
    int last_seq[PRODUCERS];
    atomic_int order_errors;
    atomic_long receives;
    /* Producer 1 is the one aborted mid-stream. After HALFWAY messages it
     * tells the root (`halfway`) and parks on `never` until the abort, so
     * the abort lands mid-stream however the threads are scheduled. */
    zk_notify *halfway, *never;
} mpsc_stress;

#define ABORTED_PRODUCER 1
#define HALFWAY          (PER_PRODUCER / 4)

typedef struct producer_arg {
    mpsc_stress *st;
    zk_mpsc_tx *tx;
    int id;
} producer_arg;

static int64_t stress_producer(void *arg) {
    producer_arg *a = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        msg m = {a->id, i};
        int rc = zk_mpsc_send(a->tx, &m);
        if (rc == 0)
            a->st->sent[a->id][i] = 1;
        else if (rc == -ECANCELED)
            break;
        else
            cr_assert_eq(rc, 0, "send: %s", zk_strerror(rc));
        if (a->id == ABORTED_PRODUCER && i + 1 == HALFWAY) {
            zk_notify_one(a->st->halfway);
            cr_assert_eq(zk_notify_wait(a->st->never), -ECANCELED);
            break;
        }
    }
    return zk_mpsc_tx_close(&a->tx);
}

static int64_t stress_receiver(void *arg) {
    mpsc_stress *st = arg;
    msg m;
    int rc;
    while ((rc = zk_mpsc_recv(st->rx, &m)) == 0) {
        if (st->received[m.producer][m.seq]++ != 0 ||
            m.seq <= st->last_seq[m.producer])
            atomic_fetch_add(&st->order_errors, 1);
        st->last_seq[m.producer] = m.seq;
        if (atomic_fetch_add(&st->receives, 1) % 64 == 0)
            zk_yield(); /* let the aborts land mid-stream */
    }
    return rc; /* -EPIPE at the end, -ECANCELED if aborted */
}

static int64_t mpsc_stress_root(void *arg) {
    (void)arg;
    mpsc_stress *st = calloc(1, sizeof *st);
    for (int p = 0; p < PRODUCERS; p++)
        st->last_seq[p] = -1;
    cr_assert_eq(zk_notify_new(&st->halfway), 0);
    cr_assert_eq(zk_notify_new(&st->never), 0);
    zk_mpsc_tx *tx;
    cr_assert_eq(zk_mpsc_new(sizeof(msg), 64, &tx, &st->rx), 0);
    producer_arg a[PRODUCERS];
    zk_task *prod[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        a[p] = (producer_arg){st, NULL, p};
        cr_assert_eq(zk_mpsc_tx_clone(tx, &a[p].tx), 0);
        cr_assert_eq(zk_spawn(stress_producer, &a[p], &prod[p]), 0);
    }
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
    /* Receivers come and go: each is aborted after a while, except the
     * last, which runs until every producer closed its sender. The first
     * receiver lets producer 1 reach half-way; it is aborted there. */
    for (int round = 0;; round++) {
        zk_task *r;
        cr_assert_eq(zk_spawn(stress_receiver, st, &r), 0);
        if (round == 0) {
            cr_assert_eq(zk_notify_wait(st->halfway), 0);
            cr_assert_eq(zk_task_abort(prod[ABORTED_PRODUCER]), 0);
        }
        if (round < 6) {
            /* Ends when the receiver got -EPIPE too (all senders gone). */
            long target = atomic_load(&st->receives) + 3000;
            while (atomic_load(&st->receives) < target &&
                   !zk_task_is_finished(r))
                zk_yield();
            zk_task_abort(r);
        }
        int64_t res;
        zk_task_join(&r, &res);
        if (res == -EPIPE)
            break;
        cr_assert_eq(res, -ECANCELED);
    }
    for (int p = 0; p < PRODUCERS; p++) {
        int64_t res;
        zk_task_join(&prod[p], &res);
        cr_assert_eq(res, 0);
    }
    long sent = 0, lost = 0, dup = 0;
    for (int p = 0; p < PRODUCERS; p++)
        for (int i = 0; i < PER_PRODUCER; i++) {
            sent += st->sent[p][i];
            lost += st->sent[p][i] && !st->received[p][i];
            dup += st->received[p][i] != st->sent[p][i];
        }
    cr_assert_eq(lost, 0, "messages lost");
    cr_assert_eq(dup, 0, "received but not sent, or twice");
    cr_assert_eq(atomic_load(&st->order_errors), 0);
    cr_assert_eq(atomic_load(&st->receives), sent);
    cr_assert_eq(sent, (long)(PRODUCERS - 1) * PER_PRODUCER + HALFWAY,
                 "all but the aborted producer's second half");
    cr_assert_eq(zk_mpsc_rx_close(&st->rx), 0);
    zk_notify_free(st->halfway);
    zk_notify_free(st->never);
    free(st);
    return 0;
}

ZK_TEST(channel, mpsc_stress_nothing_lost_or_duplicated_under_aborts) {
    zk_test_run(mpsc_stress_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* broadcast                                                              */
/* ---------------------------------------------------------------------- */

ZK_TEST(channel, broadcast_every_receiver_and_lagging_receivers) {
    zk_broadcast_tx *tx;
    zk_broadcast_rx *r1, *r2, *late;
    cr_assert_eq(zk_broadcast_new(sizeof(int), 4, &tx, &r1), 0);
    cr_assert_eq(zk_broadcast_subscribe(tx, &r2), 0);
    int got;
    uint64_t missed = 0;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(zk_broadcast_send(tx, &i), 2, "reached 2 receivers");
    cr_assert_eq(zk_broadcast_subscribe(tx, &late), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(zk_broadcast_try_recv(r1, &got, &missed), 0);
        cr_assert_eq(got, i);
    }
    cr_assert_eq(zk_broadcast_try_recv(r1, &got, &missed), -EAGAIN);
    cr_assert_eq(zk_broadcast_try_recv(late, &got, &missed), -EAGAIN,
                 "sees only what is sent after subscribing");
    for (int i = 3; i < 10; i++)
        cr_assert_eq(zk_broadcast_send(tx, &i), 3);
    /* r2 is 10 behind with room for 4: it lost 6. */
    cr_assert_eq(zk_broadcast_try_recv(r2, &got, &missed), -EOVERFLOW);
    cr_assert_eq(missed, 6);
    for (int i = 6; i < 10; i++) {
        cr_assert_eq(zk_broadcast_try_recv(r2, &got, &missed), 0);
        cr_assert_eq(got, i);
    }
    cr_assert_eq(zk_broadcast_try_recv(late, &got, &missed), -EOVERFLOW);
    cr_assert_eq(missed, 3);
    /* Senders gone: drain, then -EPIPE. */
    zk_broadcast_tx *tx2;
    cr_assert_eq(zk_broadcast_tx_clone(tx, &tx2), 0);
    cr_assert_eq(zk_broadcast_tx_close(&tx), 0);
    cr_assert_eq(zk_broadcast_try_recv(r1, &got, &missed), -EOVERFLOW);
    cr_assert_eq(zk_broadcast_tx_close(&tx2), 0);
    for (int i = 6; i < 10; i++)
        cr_assert_eq(zk_broadcast_try_recv(r1, &got, &missed), 0);
    cr_assert_eq(zk_broadcast_try_recv(r1, &got, &missed), -EPIPE);
    cr_assert_eq(zk_broadcast_recv(r2, &got, &missed), -EPIPE);
    cr_assert_eq(zk_broadcast_rx_close(&r1), 0);
    cr_assert_eq(zk_broadcast_rx_close(&r2), 0);
    cr_assert_eq(zk_broadcast_rx_close(&late), 0);
    /* No receiver: a send fails. */
    cr_assert_eq(zk_broadcast_new(sizeof(int), 4, &tx, &r1), 0);
    cr_assert_eq(zk_broadcast_rx_close(&r1), 0);
    cr_assert_eq(zk_broadcast_send(tx, &got), -EPIPE);
    cr_assert_eq(zk_broadcast_tx_close(&tx), 0);
}

#define BCAST_N 20000

typedef struct bcast_rx_arg {
    zk_broadcast_rx *rx;
    long received, missed;
    int order_errors;
} bcast_rx_arg;

static int64_t bcast_receiver(void *arg) {
    bcast_rx_arg *a = arg;
    int got, last = -1;
    uint64_t missed;
    for (;;) {
        int rc = zk_broadcast_recv(a->rx, &got, &missed);
        if (rc == -EPIPE)
            break;
        if (rc == -EOVERFLOW) {
            a->missed += (long)missed;
            last += (int)missed;
            continue;
        }
        cr_assert_eq(rc, 0);
        if (got != last + 1)
            a->order_errors++;
        last = got;
        a->received++;
    }
    return zk_broadcast_rx_close(&a->rx);
}

static int64_t bcast_stress_root(void *arg) {
    (void)arg;
    zk_broadcast_tx *tx;
    bcast_rx_arg a[4];
    memset(a, 0, sizeof a);
    cr_assert_eq(zk_broadcast_new(sizeof(int), 16, &tx, &a[0].rx), 0);
    for (int i = 1; i < 4; i++)
        cr_assert_eq(zk_broadcast_subscribe(tx, &a[i].rx), 0);
    zk_task *h[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(zk_spawn(bcast_receiver, &a[i], &h[i]), 0);
    for (int i = 0; i < BCAST_N; i++) {
        cr_assert_eq(zk_broadcast_send(tx, &i), 4);
        if (i % 8 == 0)
            zk_yield();
    }
    cr_assert_eq(zk_broadcast_tx_close(&tx), 0);
    cr_assert_eq(zk_test_join_all(h, 4), 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(a[i].order_errors, 0);
        cr_assert_eq(a[i].received + a[i].missed, BCAST_N,
                     "receiver %d: %ld received + %ld missed", i, a[i].received,
                     a[i].missed);
    }
    return 0;
}

ZK_TEST(channel, broadcast_stress_every_message_received_or_counted_missed) {
    zk_test_run(bcast_stress_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* watch                                                                  */
/* ---------------------------------------------------------------------- */

ZK_TEST(channel, watch_latest_value_and_changes) {
    zk_watch_tx *tx;
    zk_watch_rx *rx, *rx2, *sub;
    int init = 10, v;
    cr_assert_eq(zk_watch_new(sizeof(int), &init, &tx, &rx), 0);
    counter_waker w = {0};
    zk_watch_changed_future f;
    int64_t out;
    zk_watch_changed_future_init(&f, rx);
    cr_assert_not(poll1(&f.base, &w, &out), "the initial value is seen");
    cr_assert_eq(zk_watch_borrow(rx, &v), 0);
    cr_assert_eq(v, 10);
    for (int i = 11; i <= 13; i++)
        cr_assert_eq(zk_watch_send(tx, &i), 0);
    cr_assert_geq(atomic_load(&w.wakes), 1);
    cr_assert(poll1(&f.base, &w, &out));
    cr_assert_eq(out, 0);
    zk_future_drop(&f.base);
    cr_assert_eq(zk_watch_borrow(rx, &v), 0);
    cr_assert_eq(v, 13, "only the latest value");
    cr_assert_eq(zk_watch_rx_clone(rx, &rx2), 0);
    cr_assert_eq(zk_watch_subscribe(tx, &sub), 0);
    v = 14;
    cr_assert_eq(zk_watch_send(tx, &v), 0);
    cr_assert_eq(zk_watch_changed(rx2), 0, "the clone had seen 13");
    cr_assert_eq(zk_watch_changed(sub), 0);
    /* Senders gone: an unseen change is still reported, then -EPIPE. */
    zk_watch_tx *tx2;
    cr_assert_eq(zk_watch_tx_clone(tx, &tx2), 0);
    cr_assert_eq(zk_watch_tx_close(&tx), 0);
    cr_assert_eq(zk_watch_tx_close(&tx2), 0);
    cr_assert_eq(zk_watch_changed(rx), 0);
    cr_assert_eq(zk_watch_changed(rx), -EPIPE);
    cr_assert_eq(zk_watch_borrow(rx, &v), 0, "the value stays readable");
    cr_assert_eq(v, 14);
    cr_assert_eq(zk_watch_rx_close(&rx), 0);
    cr_assert_eq(zk_watch_rx_close(&rx2), 0);
    cr_assert_eq(zk_watch_rx_close(&sub), 0);
    /* No receiver: a send fails and stores nothing. */
    cr_assert_eq(zk_watch_new(sizeof(int), &init, &tx, &rx), 0);
    cr_assert_eq(zk_watch_rx_close(&rx), 0);
    cr_assert_eq(zk_watch_send(tx, &v), -EPIPE);
    cr_assert_eq(zk_watch_tx_close(&tx), 0);
}

static int64_t watcher(void *arg) {
    zk_watch_rx *rx = arg;
    int v = 0, last = 0, bad = 0;
    while (v != 1000) {
        int rc = zk_watch_changed(rx);
        cr_assert_eq(rc, 0);
        zk_watch_borrow(rx, &v);
        if (v <= last)
            bad++;
        last = v;
    }
    zk_watch_rx_close(&rx);
    return bad;
}

static int64_t watch_tasks_root(void *arg) {
    (void)arg;
    zk_watch_tx *tx;
    zk_watch_rx *rx[3];
    int v = 0;
    cr_assert_eq(zk_watch_new(sizeof(int), &v, &tx, &rx[0]), 0);
    cr_assert_eq(zk_watch_subscribe(tx, &rx[1]), 0);
    cr_assert_eq(zk_watch_subscribe(tx, &rx[2]), 0);
    zk_task *h[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(zk_spawn(watcher, rx[i], &h[i]), 0);
    for (v = 1; v <= 1000; v++) {
        cr_assert_eq(zk_watch_send(tx, &v), 0);
        if (v % 10 == 0)
            zk_yield();
    }
    cr_assert_eq(zk_test_join_all(h, 3), 0, "values only go up");
    cr_assert_eq(zk_watch_send(tx, &v), -EPIPE, "every receiver closed");
    cr_assert_eq(zk_watch_tx_close(&tx), 0);
    return 0;
}

ZK_TEST(channel, watch_receivers_see_the_last_value_in_tasks) {
    zk_test_run(watch_tasks_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* ping-pong over oneshots                                                */
/* ---------------------------------------------------------------------- */

static int64_t ponger(void *arg) {
    zk_mpsc_rx *rx = arg;
    zk_oneshot_tx *reply;
    long n = 0;
    while (zk_mpsc_recv(rx, &reply) == 0) {
        cr_assert_eq(zk_oneshot_send(&reply, &n), 0);
        n++;
    }
    return n;
}

static int64_t ping_pong_root(void *arg) {
    (void)arg;
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(zk_oneshot_tx *), 1, &tx, &rx), 0);
    zk_task *h;
    cr_assert_eq(zk_spawn(ponger, rx, &h), 0);
    for (long i = 0; i < 5000; i++) {
        zk_oneshot_tx *otx;
        zk_oneshot_rx *orx;
        cr_assert_eq(zk_oneshot_new(sizeof(long), &otx, &orx), 0);
        /* The pointer moves through the channel: the ponger owns otx. */
        cr_assert_eq(zk_mpsc_send(tx, &otx), 0);
        long got = -1;
        cr_assert_eq(zk_oneshot_recv(orx, &got), 0);
        cr_assert_eq(got, i);
        cr_assert_eq(zk_oneshot_rx_close(&orx), 0);
    }
    cr_assert_eq(zk_mpsc_tx_close(&tx), 0);
    int64_t n = 0;
    cr_assert_eq(zk_task_join(&h, &n), 0);
    cr_assert_eq(n, 5000);
    cr_assert_eq(zk_mpsc_rx_close(&rx), 0);
    return 0;
}

ZK_TEST(channel, ping_pong_with_oneshot_replies) {
    zk_test_run(ping_pong_root, NULL);
}
