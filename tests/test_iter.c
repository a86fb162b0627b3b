/* test_iter.c - async iterators: sources, adapters, next and collect
 * (zokio/iter.h). */
#include "helpers.h"

ZK_SUITE(iter);

static int square(const void *in, void *out, void *arg) {
    (void)arg;
    int v = *(const int *)in;
    if (v < 0)
        return -EDOM;
    *(long *)out = (long)v * v;
    return 0;
}

static bool is_even(const void *item, void *arg) {
    (*(int *)arg)++;
    return *(const long *)item % 2 == 0;
}

/* ---------------------------------------------------------------------- */
/* Adapters over an array (no runtime needed for ready sources)           */
/* ---------------------------------------------------------------------- */

ZK_TEST(iter, array_map_filter_take_collect) {
    int nums[10];
    for (int i = 0; i < 10; i++)
        nums[i] = i;
    zk_iter *a, *sq, *even, *first3;
    cr_assert_eq(zk_iter_from_array(nums, 10, sizeof(int), &a), 0);
    cr_assert_eq(zk_iter_item_size(a), sizeof(int));
    cr_assert_eq(zk_iter_map(a, sizeof(long), square, NULL, &sq), 0);
    cr_assert_eq(zk_iter_item_size(sq), sizeof(long));
    int asked = 0;
    cr_assert_eq(zk_iter_filter(sq, is_even, &asked, &even), 0);
    cr_assert_eq(zk_iter_take(even, 3, &first3), 0);
    void *items;
    size_t n;
    cr_assert_eq(zk_iter_collect(first3, 0, &items, &n), 0);
    cr_assert_eq(n, 3);
    long *got = items;
    cr_assert_eq(got[0], 0);
    cr_assert_eq(got[1], 4);
    cr_assert_eq(got[2], 16);
    cr_assert_eq(asked, 5, "take stopped asking after the third item");
    free(items);
    long x;
    cr_assert_eq(zk_iter_next(first3, &x), ZK_ITER_END);
    cr_assert_eq(zk_iter_next(first3, &x), ZK_ITER_END, "stays over");
    zk_iter_free(first3); /* frees the whole chain (LeakSanitizer) */
}

ZK_TEST(iter, errors_pass_through_and_stop_a_collect) {
    int nums[4] = {1, -1, 2, 3};
    zk_iter *a, *sq;
    cr_assert_eq(zk_iter_from_array(nums, 4, sizeof(int), &a), 0);
    cr_assert_eq(zk_iter_map(a, sizeof(long), square, NULL, &sq), 0);
    long v;
    cr_assert_eq(zk_iter_next(sq, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(zk_iter_next(sq, &v), -EDOM, "the map's error");
    cr_assert_eq(zk_iter_next(sq, &v), 0, "and it goes on");
    cr_assert_eq(v, 4);
    zk_iter_free(sq);
    cr_assert_eq(zk_iter_from_array(nums, 4, sizeof(int), &a), 0);
    cr_assert_eq(zk_iter_map(a, sizeof(long), square, NULL, &sq), 0);
    void *items = (void *)1;
    size_t n = 99;
    cr_assert_eq(zk_iter_collect(sq, 0, &items, &n), -EDOM);
    cr_assert_null(items);
    cr_assert_eq(n, 0);
    zk_iter_free(sq);
}

ZK_TEST(iter, collect_limits_and_empty) {
    int nums[5] = {1, 2, 3, 4, 5};
    zk_iter *a;
    void *items;
    size_t n;
    cr_assert_eq(zk_iter_from_array(nums, 5, sizeof(int), &a), 0);
    cr_assert_eq(zk_iter_collect(a, 4, &items, &n), -E2BIG);
    cr_assert_null(items);
    zk_iter_free(a);
    cr_assert_eq(zk_iter_from_array(nums, 5, sizeof(int), &a), 0);
    cr_assert_eq(zk_iter_collect(a, 5, &items, &n), 0, "exactly the limit");
    cr_assert_eq(n, 5);
    free(items);
    zk_iter_free(a);
    cr_assert_eq(zk_iter_from_array(NULL, 0, sizeof(int), &a), 0);
    cr_assert_eq(zk_iter_collect(a, 0, &items, &n), 0);
    cr_assert_null(items);
    cr_assert_eq(n, 0);
    zk_iter_free(a);
}

ZK_TEST(iter, bad_input) {
    int nums[2] = {1, 2};
    zk_iter *a = NULL, *out = NULL;
    long v;
    void *items;
    size_t n;
    cr_assert_eq(zk_iter_from_array(nums, 2, 0, &a), -EINVAL);
    cr_assert_eq(zk_iter_from_array(NULL, 2, sizeof(int), &a), -EINVAL);
    cr_assert_eq(zk_iter_from_array(nums, 2, sizeof(int), NULL), -EINVAL);
    cr_assert_eq(zk_iter_from_mpsc(NULL, &a), -EINVAL);
    cr_assert_eq(zk_iter_from_broadcast(NULL, &a), -EINVAL);
    cr_assert_eq(zk_iter_from_watch(NULL, &a), -EINVAL);
    cr_assert_eq(zk_iter_interval(0, ZK_MISSED_TICK_BURST, &a), -EINVAL);
    cr_assert_eq(zk_iter_interval(ZK_MS(1), (zk_missed_tick)9, &a), -EINVAL);
    cr_assert_eq(zk_iter_map(NULL, 8, square, NULL, &out), -EINVAL);
    cr_assert_eq(zk_iter_filter(NULL, is_even, NULL, &out), -EINVAL);
    cr_assert_eq(zk_iter_take(NULL, 1, &out), -EINVAL);
    cr_assert_eq(zk_iter_from_array(nums, 2, sizeof(int), &a), 0);
    cr_assert_eq(zk_iter_map(a, 0, square, NULL, &out), -EINVAL);
    cr_assert_eq(zk_iter_map(a, 8, NULL, NULL, &out), -EINVAL);
    cr_assert_eq(zk_iter_filter(a, NULL, NULL, &out), -EINVAL);
    cr_assert_eq(zk_iter_take(a, 1, NULL), -EINVAL);
    cr_assert_null(out, "nothing made");
    cr_assert_eq(zk_iter_next(NULL, &v), -EINVAL);
    cr_assert_eq(zk_iter_next(a, NULL), -EINVAL);
    cr_assert_eq(zk_iter_collect(NULL, 0, &items, &n), -EINVAL);
    cr_assert_eq(zk_iter_collect(a, 0, NULL, &n), -EINVAL);
    cr_assert_eq(zk_iter_item_size(NULL), 0);
    zk_iter_free(a); /* after failed adapters, still the caller's */
    zk_iter_free(NULL);
}

/* ---------------------------------------------------------------------- */
/* A user-defined iterator                                                */
/* ---------------------------------------------------------------------- */

/* Counts up to `limit`, ready on every other poll (to exercise the
 * pending path of the adapters). */
typedef struct counter_iter {
    zk_iter base;
    int next, limit;
    bool flip;
} counter_iter;

static zk_poll counter_next(zk_iter *self, zk_context *cx, void *item,
                            int64_t *status) {
    counter_iter *c = (counter_iter *)self;
    c->flip = !c->flip;
    if (c->flip) {
        zk_waker_wake_by_ref(zk_context_waker(cx));
        return ZK_PENDING;
    }
    if (c->next == c->limit) {
        *status = ZK_ITER_END;
        return ZK_READY;
    }
    *(int *)item = c->next++;
    *status = 0;
    return ZK_READY;
}

static void counter_free(zk_iter *self) {
    free(self);
}

static const zk_iter_ops counter_ops = {counter_next, counter_free, NULL};

static zk_iter *counter_new(int limit) {
    counter_iter *c = calloc(1, sizeof *c);
    c->base = (zk_iter){&counter_ops, sizeof(int)};
    c->limit = limit;
    return &c->base;
}

static int64_t user_iter_root(void *arg) {
    (void)arg;
    zk_iter *sq;
    cr_assert_eq(
        zk_iter_map(counter_new(1000), sizeof(long), square, NULL, &sq), 0);
    zk_iter_collect_future f;
    void *items;
    size_t n;
    zk_iter_collect_future_init(&f, sq, 0, &items, &n);
    cr_assert_eq(zk_await(&f.base), 0);
    cr_assert_eq(n, 1000);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(((long *)items)[i], (long)(i * i));
    free(items);
    zk_iter_free(sq);
    return 0;
}

ZK_TEST(iter, a_user_iterator_through_map_and_collect_future) {
    zk_test_run(user_iter_root, NULL);
}

/* An iterator that is always ready and counts the abandons it gets while
 * no step of it is pending (the contract says it gets none then). */
typedef struct ready_iter {
    zk_iter base;
    int next;
    int abandons;
} ready_iter;

static zk_poll ready_next(zk_iter *self, zk_context *cx, void *item,
                          int64_t *status) {
    (void)cx;
    ready_iter *r = (ready_iter *)self;
    *(int *)item = r->next++;
    *status = 0;
    return ZK_READY;
}
static void ready_free(zk_iter *self) {
    free(self);
}
static void ready_abandon(zk_iter *self) {
    ((ready_iter *)self)->abandons++;
}
static const zk_iter_ops ready_ops = {ready_next, ready_free, ready_abandon};

static bool keep_none(const void *item, void *arg) {
    (void)item;
    (void)arg;
    return false;
}

/* A filter that gives the worker back after a batch of dropped items is
 * pending while its inner iterator is not: abandoning it then must not
 * tell the inner iterator that a step of it was abandoned. */
ZK_TEST(iter, abandon_reaches_only_a_pending_inner_iterator) {
    ready_iter *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->base = (zk_iter){&ready_ops, sizeof(int)};
    zk_iter *f;
    cr_assert_eq(zk_iter_filter(&r->base, keep_none, NULL, &f), 0);
    int v;
    zk_iter_next_future nf;
    zk_iter_next_future_init(&nf, f, &v);
    counter_waker cw = {0};
    int64_t out;
    cr_assert_eq(poll1(&nf.base, &cw, &out), 0, "pending after a batch");
    cr_assert_gt(r->next, 0);
    zk_future_drop(&nf.base);
    cr_assert_eq(r->abandons, 0, "told of a step that was not pending");
    zk_iter_free(f);
}

/* ---------------------------------------------------------------------- */
/* Channels as iterators                                                  */
/* ---------------------------------------------------------------------- */

#define MSGS 5000

static int64_t mpsc_producer(void *arg) {
    zk_mpsc_tx *tx = arg;
    for (int i = 0; i < MSGS; i++)
        cr_assert_eq(zk_mpsc_send(tx, &i), 0);
    return zk_mpsc_tx_close(&tx);
}

static int64_t mpsc_iter_root(void *arg) {
    (void)arg;
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 16, &tx, &rx), 0);
    zk_iter *it;
    cr_assert_eq(zk_iter_from_mpsc(rx, &it), 0);
    cr_assert_eq(zk_iter_item_size(it), sizeof(int));
    zk_task *h;
    cr_assert_eq(zk_spawn(mpsc_producer, tx, &h), 0);
    int v, expect = 0;
    int rc;
    while ((rc = zk_iter_next(it, &v)) == 0)
        cr_assert_eq(v, expect++);
    cr_assert_eq(rc, ZK_ITER_END, "after the last sender closed");
    cr_assert_eq(expect, MSGS);
    cr_assert_eq(zk_test_join_all(&h, 1), 0);
    zk_iter_free(it);
    zk_mpsc_rx_close(&rx);
    return 0;
}

ZK_TEST(iter, mpsc_yields_every_message_then_ends) {
    zk_test_run(mpsc_iter_root, NULL);
}

/* A next abandoned while waiting (deadline, select lost) loses nothing. */
static int64_t abandoned_next_root(void *arg) {
    (void)arg;
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 4, &tx, &rx), 0);
    zk_iter *it;
    cr_assert_eq(zk_iter_from_mpsc(rx, &it), 0);
    int v = -1;
    cr_assert_eq(zk_iter_next_until(it, &v, zk_now() + ZK_MS(2)), -ETIMEDOUT);
    zk_iter_next_future next;
    zk_sleep_future nap;
    zk_iter_next_future_init(&next, it, &v);
    zk_sleep_future_init(&nap, ZK_MS(2));
    zk_future *fs[2] = {&next.base, &nap.base};
    cr_assert_eq(zk_select(fs, 2, NULL), 1, "the timer won");
    int msg = 5;
    cr_assert_eq(zk_mpsc_send(tx, &msg), 0);
    cr_assert_eq(v, -1, "nothing written by the abandoned steps");
    cr_assert_eq(zk_iter_next(it, &v), 0);
    cr_assert_eq(v, 5, "the message is the next item");
    zk_mpsc_tx_close(&tx);
    cr_assert_eq(zk_iter_next(it, &v), ZK_ITER_END);
    zk_iter_free(it);
    zk_mpsc_rx_close(&rx);
    return 0;
}

ZK_TEST(iter, an_abandoned_next_loses_nothing) {
    zk_test_run(abandoned_next_root, NULL);
}

/* A next abandoned while waiting does not keep a place in the channel's
 * queue: the wake-up of the next message goes to a receive that waits,
 * not to the task that gave up (which then missed it for good). */
typedef struct queue_place {
    zk_iter *it;
    zk_mpsc_rx *rx;
    atomic_int receiving;
    int got;
} queue_place;

static int64_t gives_up_a_next(void *arg) {
    queue_place *q = arg;
    int v = -1;
    zk_iter_next_future next;
    zk_iter_next_future_init(&next, q->it, &v);
    zk_sleep_future nap;
    zk_sleep_future_init(&nap, ZK_MS(1));
    zk_future *fs[2] = {&next.base, &nap.base};
    cr_assert_eq(zk_select(fs, 2, NULL), 1, "the timer won");
    /* A collect abandoned in its first step likewise. */
    void *items = NULL;
    size_t count = 0;
    zk_iter_collect_future all;
    zk_iter_collect_future_init(&all, q->it, 0, &items, &count);
    zk_sleep_future_init(&nap, ZK_MS(1));
    zk_future *gs[2] = {&all.base, &nap.base};
    cr_assert_eq(zk_select(gs, 2, NULL), 1, "the timer won");
    cr_assert_eq(v, -1);
    return 0;
}

static int64_t receives_directly(void *arg) {
    queue_place *q = arg;
    atomic_store(&q->receiving, 1);
    zk_instant deadline = zk_now() + ZK_TEST_GUARD;
    int rc = zk_mpsc_recv_until(q->rx, &q->got, deadline);
    /* Woken by the message, not found by a last look at the deadline. */
    cr_assert_lt(zk_now(), deadline, "the message's wake-up went elsewhere");
    return rc;
}

static int64_t abandoned_next_place_root(void *arg) {
    (void)arg;
    queue_place q = {0};
    zk_mpsc_tx *tx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 4, &tx, &q.rx), 0);
    cr_assert_eq(zk_iter_from_mpsc(q.rx, &q.it), 0);
    zk_task *quitter, *receiver;
    cr_assert_eq(zk_spawn(gives_up_a_next, &q, &quitter), 0);
    cr_assert_eq(zk_test_join_all(&quitter, 1), 0);
    cr_assert_eq(zk_spawn(receives_directly, &q, &receiver), 0);
    while (!atomic_load(&q.receiving))
        zk_yield();
    zk_yield(); /* it waits in the queue (on a current-thread runtime) */
    int msg = 42;
    cr_assert_eq(zk_mpsc_send(tx, &msg), 0);
    int64_t res = -1;
    cr_assert_eq(zk_task_join(&receiver, &res), 0);
    cr_assert_eq(res, 0, "recv: %s", zk_strerror((int)res));
    cr_assert_eq(q.got, 42);
    zk_mpsc_tx_close(&tx);
    zk_iter_free(q.it);
    zk_mpsc_rx_close(&q.rx);
    return 0;
}

ZK_TEST(iter, an_abandoned_next_gives_its_place_in_the_queue_up) {
    zk_test_run(abandoned_next_place_root, NULL);
}

/* A consumer task aborted while its next waits, another consumer takes
 * over the same iterator: every message arrives exactly once. */
typedef struct relay {
    zk_iter *it;
    atomic_int waiting;
    int seen[MSGS];
    int count;
} relay;

static int64_t relay_consumer(void *arg) {
    relay *r = arg;
    int v, rc;
    for (;;) {
        atomic_store(&r->waiting, 1);
        rc = zk_iter_next(r->it, &v);
        atomic_store(&r->waiting, 0);
        if (rc != 0)
            break;
        r->seen[v]++;
        r->count++;
    }
    return rc;
}

static int64_t aborted_consumer_root(void *arg) {
    (void)arg;
    relay *r = calloc(1, sizeof *r);
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 8, &tx, &rx), 0);
    cr_assert_eq(zk_iter_from_mpsc(rx, &r->it), 0);
    zk_task *c;
    cr_assert_eq(zk_spawn(relay_consumer, r, &c), 0);
    /* The consumer parks in next: nothing sent yet. */
    while (!atomic_load(&r->waiting))
        zk_yield();
    cr_assert_eq(zk_task_abort(c), 0);
    int64_t res;
    cr_assert_eq(zk_task_join(&c, &res), -ECANCELED);
    cr_assert_eq(res, -ECANCELED);
    zk_task *p;
    cr_assert_eq(zk_spawn(mpsc_producer, tx, &p), 0);
    cr_assert_eq(zk_spawn(relay_consumer, r, &c), 0);
    cr_assert_eq(zk_task_join(&c, &res), 0);
    cr_assert_eq(res, ZK_ITER_END);
    cr_assert_eq(zk_test_join_all(&p, 1), 0);
    cr_assert_eq(r->count, MSGS);
    for (int i = 0; i < MSGS; i++)
        cr_assert_eq(r->seen[i], 1, "message %d", i);
    zk_iter_free(r->it);
    zk_mpsc_rx_close(&rx);
    free(r);
    return 0;
}

ZK_TEST(iter, an_aborted_consumer_hands_over_without_loss) {
    zk_test_run(aborted_consumer_root, NULL);
}

static int64_t broadcast_iter_root(void *arg) {
    (void)arg;
    zk_broadcast_tx *tx;
    zk_broadcast_rx *rx;
    cr_assert_eq(zk_broadcast_new(sizeof(int), 4, &tx, &rx), 0);
    zk_iter *it;
    cr_assert_eq(zk_iter_from_broadcast(rx, &it), 0);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(zk_broadcast_send(tx, &i), 1);
    int v;
    cr_assert_eq(zk_iter_next(it, &v), -EOVERFLOW, "lost the oldest two");
    for (int i = 2; i < 6; i++) {
        cr_assert_eq(zk_iter_next(it, &v), 0);
        cr_assert_eq(v, i);
    }
    zk_broadcast_tx_close(&tx);
    cr_assert_eq(zk_iter_next(it, &v), ZK_ITER_END);
    zk_iter_free(it);
    zk_broadcast_rx_close(&rx);
    return 0;
}

ZK_TEST(iter, broadcast_reports_lag_then_goes_on) {
    zk_test_run(broadcast_iter_root, NULL);
}

static int64_t watch_sender(void *arg) {
    zk_watch_tx *tx = arg;
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(zk_watch_send(tx, &i), 0);
        zk_yield(); /* the receiver may see each value, or only a later one */
    }
    return zk_watch_tx_close(&tx);
}

static int64_t watch_iter_root(void *arg) {
    (void)arg;
    zk_watch_tx *tx;
    zk_watch_rx *rx;
    int zero = 0;
    cr_assert_eq(zk_watch_new(sizeof(int), &zero, &tx, &rx), 0);
    zk_iter *it;
    cr_assert_eq(zk_iter_from_watch(rx, &it), 0);
    int v = -1;
    cr_assert_eq(zk_iter_next(it, &v), 0);
    cr_assert_eq(v, 0, "the current value first");
    zk_task *h;
    cr_assert_eq(zk_spawn(watch_sender, tx, &h), 0);
    int last = 0, rc;
    while ((rc = zk_iter_next(it, &v)) == 0) {
        cr_assert_gt(v, last, "only newer values");
        last = v;
    }
    cr_assert_eq(rc, ZK_ITER_END);
    cr_assert_eq(last, 3, "the latest value is always seen");
    cr_assert_eq(zk_test_join_all(&h, 1), 0);
    zk_iter_free(it);
    zk_watch_rx_close(&rx);
    return 0;
}

ZK_TEST(iter, watch_yields_the_latest_value_per_change) {
    zk_test_run(watch_iter_root, NULL);
}

/* From a plain thread, next blocks the thread (a channel source). */
static int64_t plain_thread_root(void *arg) {
    zk_mpsc_tx *tx = arg;
    return mpsc_producer(tx);
}

static void *run_producer_runtime(void *arg) {
    zk_test_run(plain_thread_root, arg);
    return NULL;
}

ZK_TEST(iter, next_from_a_plain_thread) {
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 16, &tx, &rx), 0);
    zk_iter *it;
    cr_assert_eq(zk_iter_from_mpsc(rx, &it), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_producer_runtime, tx), 0);
    void *items;
    size_t n;
    cr_assert_eq(zk_iter_collect(it, 0, &items, &n), 0);
    cr_assert_eq(n, MSGS);
    for (int i = 0; i < MSGS; i++)
        cr_assert_eq(((int *)items)[i], i);
    free(items);
    pthread_join(t, NULL);
    zk_iter_free(it);
    zk_mpsc_rx_close(&rx);
}

/* ---------------------------------------------------------------------- */
/* Intervals as iterators                                                 */
/* ---------------------------------------------------------------------- */

static int64_t interval_iter_root(void *arg) {
    (void)arg;
#if !ZK_TEST_MT
    cr_assert_eq(zk_time_pause(zk_runtime_current()), 0);
#endif
    zk_duration period = ZK_MS(2);
    zk_instant start = zk_now();
    zk_iter *ticks, *five;
    cr_assert_eq(zk_iter_interval(period, ZK_MISSED_TICK_BURST, &ticks), 0);
    cr_assert_eq(zk_iter_item_size(ticks), sizeof(zk_instant));
    cr_assert_eq(zk_iter_take(ticks, 5, &five), 0);
    zk_instant at, first = 0;
    int n = 0, rc;
    while ((rc = zk_iter_next(five, &at)) == 0) {
        if (n++ == 0) {
            first = at;
            cr_assert_geq(first, start + period);
        }
        cr_assert_eq(at, first + (n - 1) * period, "the scheduled instant");
        cr_assert_geq(zk_now(), at, "never early");
    }
    cr_assert_eq(rc, ZK_ITER_END);
    cr_assert_eq(n, 5);
    zk_iter_free(five);
    return 0;
}

ZK_TEST(iter, interval_ticks_on_schedule_and_never_early) {
    zk_test_run(interval_iter_root, NULL);
}

#if !ZK_TEST_MT
static int64_t interval_hour_root(void *arg) {
    (void)arg;
    cr_assert_eq(zk_time_pause(zk_runtime_current()), 0);
    zk_iter *ticks;
    cr_assert_eq(zk_iter_interval(ZK_SEC(3600), ZK_MISSED_TICK_SKIP, &ticks),
                 0);
    zk_instant start = zk_now(), at;
    for (int i = 1; i <= 24; i++) {
        cr_assert_eq(zk_iter_next(ticks, &at), 0);
        cr_assert_eq(at, start + i * ZK_SEC(3600));
    }
    zk_iter_free(ticks);
    return 0;
}

ZK_TEST(iter, a_day_of_hourly_ticks_on_the_paused_clock) {
    zk_test_run(interval_hour_root, NULL);
}
#endif

ZK_TEST(iter, interval_outside_a_runtime_is_eperm) {
    zk_iter *ticks;
    cr_assert_eq(zk_iter_interval(ZK_MS(1), ZK_MISSED_TICK_DELAY, &ticks), 0);
    zk_instant at;
    cr_assert_eq(zk_iter_next(ticks, &at), -EPERM);
    zk_iter_free(ticks);
}
