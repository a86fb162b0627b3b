/* test_waker.c - the wake races: a wake during a poll is never lost, many
 * wakes before a run make one run, wakes from other threads, wakers that
 * outlive their task and runtime. */
#include "helpers.h"

ZK_SUITE(waker);

/* Counts polls; ready once `events` reaches `target`. Registers a clone of
 * its waker on the first poll. */
typedef struct event_counter {
    zk_future base;
    atomic_long *events;
    long target;
    atomic_int *polls;
    zk_waker *slot; /* where its waker is published */
    atomic_int *published;
} event_counter;

static zk_poll event_counter_poll(zk_future *f, zk_context *cx, int64_t *out) {
    event_counter *e = (event_counter *)f;
    atomic_fetch_add(e->polls, 1);
    if (!atomic_load(e->published)) {
        *e->slot = zk_waker_clone(zk_context_waker(cx));
        atomic_store(e->published, 1);
    }
    if (atomic_load(e->events) >= e->target) {
        *out = atomic_load(e->events);
        return ZK_READY;
    }
    return ZK_PENDING;
}
static const zk_future_ops event_counter_ops = {event_counter_poll, NULL};

/* ---------------------------------------------------------------------- */

typedef struct self_wake {
    zk_future base;
    int polls;
} self_wake;

static zk_poll self_wake_poll(zk_future *f, zk_context *cx, int64_t *out) {
    self_wake *s = (self_wake *)f;
    if (++s->polls == 1) {
        /* A clone woken by value during the poll itself. */
        zk_waker w = zk_waker_clone(zk_context_waker(cx));
        zk_waker_wake(&w);
        return ZK_PENDING;
    }
    *out = s->polls;
    return ZK_READY;
}
static const zk_future_ops self_wake_ops = {self_wake_poll, NULL};

ZK_TEST(waker, a_wake_during_the_poll_runs_the_task_again) {
    zk_runtime *rt = zk_test_runtime();
    self_wake s = {{&self_wake_ops}, 0};
    int64_t r = 0;
    cr_assert_eq(zk_block_on_future(rt, &s.base, sizeof s, &r), 0);
    cr_assert_eq(r, 2);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

static int64_t self_wake_coro(void *arg) {
    (void)arg;
    self_wake s = {{&self_wake_ops}, 0};
    return zk_await(&s.base);
}

ZK_TEST(waker, a_wake_during_an_await_resumes_the_coroutine) {
    cr_assert_eq(zk_test_run(self_wake_coro, NULL), 2);
}

/* ---------------------------------------------------------------------- */

typedef struct many_wakes {
    atomic_long events;
    atomic_int polls;
    atomic_int published;
    zk_waker waker;
} many_wakes;

static int64_t many_wakes_root(void *arg) {
    many_wakes *m = arg;
    event_counter e = {
        {&event_counter_ops}, &m->events, 1, &m->polls, &m->waker,
        &m->published};
    zk_task *h;
    cr_assert_eq(zk_spawn_future(NULL, &e.base, sizeof e, &h), 0);
    while (!atomic_load(&m->published))
        zk_yield();
    cr_assert_eq(atomic_load(&m->polls), 1);
    atomic_store(&m->events, 1);
    for (int i = 0; i < 1000; i++)
        zk_waker_wake_by_ref(&m->waker);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(atomic_load(&m->polls), 2, "1000 wakes, one more poll");
    zk_waker_drop(&m->waker);
    return 0;
}

ZK_TEST(waker, many_wakes_before_a_run_make_one_run) {
    many_wakes m;
    memset(&m, 0, sizeof m);
    zk_test_run(many_wakes_root, &m);
}

/* ---------------------------------------------------------------------- */
/* Wakes from other threads, racing with polls: a lost wake-up would leave
 * the task pending forever and the test would time out. */

#define WAKERS     4
#define WAKES_EACH 20000

typedef struct storm {
    atomic_long events;
    atomic_int polls;
    atomic_int published;
    zk_waker waker;
} storm;

static void *storm_thread(void *arg) {
    storm *s = arg;
    while (!atomic_load(&s->published))
        ;
    zk_waker mine = zk_waker_clone(&s->waker);
    for (int i = 0; i < WAKES_EACH; i++) {
        atomic_fetch_add(&s->events, 1);
        if (i % 2)
            zk_waker_wake_by_ref(&mine);
        else {
            zk_waker once = zk_waker_clone(&mine);
            zk_waker_wake(&once);
        }
    }
    zk_waker_drop(&mine);
    return NULL;
}

ZK_TEST(waker, cross_thread_wake_storm_loses_nothing) {
    storm s;
    memset(&s, 0, sizeof s);
    zk_runtime *rt = zk_test_runtime();
    pthread_t th[WAKERS];
    for (int i = 0; i < WAKERS; i++)
        pthread_create(&th[i], NULL, storm_thread, &s);
    event_counter e = {{&event_counter_ops},
                       &s.events,
                       (long)WAKERS * WAKES_EACH,
                       &s.polls,
                       &s.waker,
                       &s.published};
    int64_t r = 0;
    cr_assert_eq(zk_block_on_future(rt, &e.base, sizeof e, &r), 0);
    cr_assert_eq(r, (int64_t)WAKERS * WAKES_EACH);
    for (int i = 0; i < WAKERS; i++)
        pthread_join(th[i], NULL);
    zk_waker_drop(&s.waker);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* A coroutine and a plain thread hand a turn back and forth 10,000 times:
 * every wake crosses threads and the driver parks in between. */
typedef struct relay {
    zk_gate to_task;
    atomic_int round_done;
} relay;

static int64_t relay_task(void *arg) {
    relay *r = arg;
    for (int i = 0; i < 10000; i++) {
        zk_gate_wait w = zk_gate_waiter(&r->to_task, NULL);
        if (zk_await(&w.base) != 7)
            return -1;
        pthread_mutex_lock(&r->to_task.lock);
        r->to_task.open = false;
        pthread_mutex_unlock(&r->to_task.lock);
        atomic_store(&r->round_done, i + 1);
    }
    return 10000;
}

static void *relay_thread(void *arg) {
    relay *r = arg;
    for (int i = 0; i < 10000; i++) {
        zk_gate_open(&r->to_task);
        while (atomic_load(&r->round_done) != i + 1)
            ;
    }
    return NULL;
}

ZK_TEST(waker, ten_thousand_cross_thread_hand_offs) {
    relay r;
    memset(&r, 0, sizeof r);
    zk_gate_init(&r.to_task);
    zk_runtime *rt = zk_test_runtime();
    pthread_t th;
    pthread_create(&th, NULL, relay_thread, &r);
    int64_t res = 0;
    cr_assert_eq(zk_block_on(rt, relay_task, &r, &res), 0);
    pthread_join(th, NULL);
    cr_assert_eq(res, 10000);
    cr_assert_eq(zk_runtime_free(rt), 0);
    zk_gate_destroy(&r.to_task);
}

/* ---------------------------------------------------------------------- */

typedef struct keeper {
    zk_future base;
    zk_waker *out;
} keeper;

static zk_poll keeper_poll(zk_future *f, zk_context *cx, int64_t *out) {
    keeper *k = (keeper *)f;
    *k->out = zk_waker_clone(zk_context_waker(cx));
    *out = 3;
    return ZK_READY;
}
static const zk_future_ops keeper_ops = {keeper_poll, NULL};

ZK_TEST(waker, a_waker_outlives_its_task_and_runtime) {
    zk_waker kept = {0};
    zk_runtime *rt = zk_test_runtime();
    keeper k = {{&keeper_ops}, &kept};
    int64_t r = 0;
    cr_assert_eq(zk_block_on_future(rt, &k.base, sizeof k, &r), 0);
    cr_assert_eq(r, 3);
    cr_assert_eq(zk_runtime_free(rt), 0);
    /* The task finished and the runtime is gone: waking does nothing and
     * the last drop frees the task (the leak check would see it). */
    zk_waker extra = zk_waker_clone(&kept);
    zk_waker_wake_by_ref(&kept);
    zk_waker_wake(&extra);
    zk_waker_drop(&kept);
}
