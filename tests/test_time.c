/* test_time.c - sleeping, the runtime clock, the paused clock, cancelled
 * timers, a million timers, and sleeping workers that wake only at the
 * next deadline. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "helpers.h"

ZK_SUITE(time);

static int64_t sleeps_20ms(void *arg) {
    (void)arg;
    zk_instant t0 = zk_now();
    int rc = zk_sleep(ZK_MS(20));
    zk_instant t1 = zk_now();
    cr_assert_eq(rc, 0);
    return t1 - t0;
}

ZK_TEST(time, a_sleep_never_ends_early) {
    int64_t slept = zk_test_run(sleeps_20ms, NULL);
    cr_assert_geq(slept, ZK_MS(20), "slept %lld ns", (long long)slept);
}

static int64_t sleeps_until_past(void *arg) {
    (void)arg;
    int rc1 = zk_sleep_until(zk_now() - ZK_SEC(1));
    int rc2 = zk_sleep(0);
    int rc3 = zk_sleep(-5);
    return rc1 == 0 && rc2 == 0 && rc3 == 0;
}

ZK_TEST(time, past_deadlines_are_ready_at_once) {
    cr_assert_eq(zk_test_run(sleeps_until_past, NULL), 1);
}

ZK_TEST(time, bad_input) {
    zk_sleep_future s;
    zk_sleep_future_init(&s, ZK_MS(1));
    cr_assert_eq(zk_await(&s.base), -EPERM, "no await outside a task");
    zk_waker w = zk_waker_noop();
    zk_context cx = {&w};
    int64_t out = 0;
    cr_assert_eq(zk_future_poll(&s.base, &cx, &out), ZK_READY);
    cr_assert_eq(out, -EPERM, "polled outside a runtime");
    zk_future_drop(&s.base);
    cr_assert_eq(zk_sleep(ZK_MS(1)), -EPERM);
    cr_assert_eq(zk_time_pause(NULL), -EINVAL);
    cr_assert_eq(zk_time_advance(NULL, 1), -EINVAL);
    cr_assert_eq(zk_time_resume(NULL), -EINVAL);
    zk_runtime *rt = zk_test_runtime();
#if ZK_TEST_MT
    cr_assert_eq(zk_time_pause(rt), -ENOTSUP);
#else
    cr_assert_eq(zk_time_advance(rt, 1), -EINVAL, "not paused");
    cr_assert_eq(zk_time_resume(rt), -EINVAL, "not paused");
    cr_assert_eq(zk_time_pause(rt), 0);
    cr_assert_eq(zk_time_pause(rt), -EALREADY);
    cr_assert_eq(zk_time_advance(rt, -1), -EINVAL);
    cr_assert_eq(zk_time_resume(rt), 0);
#endif
    cr_assert_eq(zk_runtime_free(rt), 0);
}

#if !ZK_TEST_MT
/* A paused clock moved as far as it goes stops short of ZK_INSTANT_MAX,
 * which still never passes; resumed, the clock stays there. */
static int64_t clock_at_the_end_root(void *arg) {
    (void)arg;
    zk_runtime *rt = zk_runtime_current();
    cr_assert_eq(zk_time_advance(rt, INT64_MAX), 0);
    cr_assert_eq(zk_now(), ZK_INSTANT_MAX - 1);
    zk_sleep_future s;
    zk_sleep_future_init_until(&s, ZK_INSTANT_MAX);
    cr_assert_eq(zk_test_poll_once_and_drop(&s.base), 1, "never passes");
    zk_sleep_future_init(&s, INT64_MAX);
    cr_assert_eq(zk_test_poll_once_and_drop(&s.base), 1, "never passes");
    cr_assert_eq(zk_time_advance(rt, 1), 0);
    cr_assert_eq(zk_now(), ZK_INSTANT_MAX - 1);
    cr_assert_eq(zk_time_resume(rt), 0);
    cr_assert_eq(zk_now(), ZK_INSTANT_MAX - 1, "no wrap once resumed");
    zk_sleep_future_init_until(&s, ZK_INSTANT_MAX);
    cr_assert_eq(zk_test_poll_once_and_drop(&s.base), 1, "never passes");
    cr_assert_eq(zk_sleep(0), 0, "a sleep that is due still ends");
    return 0;
}

ZK_TEST(time, a_clock_moved_to_the_end_never_reaches_instant_max) {
    zk_test_run_paused(clock_at_the_end_root, NULL);
}
#endif

/* A future task that sleeps, to check the stackless path. */
static int64_t sleeper_future_root(void *arg) {
    (void)arg;
    zk_sleep_future s;
    zk_sleep_future_init(&s, ZK_MS(5));
    zk_instant deadline = s.deadline;
    zk_task *h;
    cr_assert_eq(zk_spawn_future(NULL, &s.base, sizeof s, &h), 0);
    int64_t r = -1;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 0);
    cr_assert_geq(zk_now(), deadline);
    return 0;
}

ZK_TEST(time, a_future_task_sleeps_without_a_stack) {
    zk_test_run(sleeper_future_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* cancellation                                                           */
/* ---------------------------------------------------------------------- */

static int64_t sleeps_an_hour(void *arg) {
    (void)arg;
    return zk_sleep(ZK_SEC(3600));
}

/* Polls its hour-long sleep once (which registers the timer), says so
 * through `arg`, then awaits it: an abort after the flag always finds the
 * timer in the wheel. */
static int64_t sleeps_an_hour_registered_first(void *arg) {
    zk_sleep_future nap;
    zk_sleep_future_init(&nap, ZK_SEC(3600));
    return zk_test_await_after_flag(&nap.base, arg);
}

static int64_t abort_sleeper_root(void *arg) {
    (void)arg;
    atomic_int registered = 0;
    zk_task *h;
    cr_assert_eq(zk_spawn(sleeps_an_hour_registered_first, &registered, &h), 0);
    zk_test_wait_flag(&registered); /* the sleeper's timer is in */
    cr_assert_eq(zk_task_abort(h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED, "its sleep was cut short");
    return 0;
}

ZK_TEST(time, an_aborted_sleep_returns_ecanceled_and_its_timer_goes) {
    int64_t t0 = zk_test_wall_ns();
    zk_test_run(abort_sleeper_root, NULL);
    /* (zk_runtime_free checks that no timer is left in the wheel.) */
    cr_assert_lt(zk_test_wall_ns() - t0, ZK_SEC(60),
                 "did not wait for the hour");
}

static int64_t parks_an_hour_then_shutdown(void *arg) {
    (void)arg;
    zk_task *h;
    cr_assert_eq(zk_spawn(sleeps_an_hour, NULL, &h), 0);
    zk_sleep(ZK_MS(2));
    zk_task_detach(&h);
    return 0;
}

ZK_TEST(time, shutdown_cancels_sleeping_tasks) {
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_block_on(rt, parks_an_hour_then_shutdown, NULL, NULL), 0);
    cr_assert_eq(zk_runtime_live_tasks(rt), 1);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */
/* no periodic wake-ups                                                   */
/* ---------------------------------------------------------------------- */

static int64_t sleeps_300ms(void *arg) {
    (void)arg;
    return zk_sleep(ZK_MS(300));
}

ZK_TEST(time, sleeping_workers_wake_only_for_the_deadline) {
    zk_runtime *rt = zk_test_runtime();
    int64_t t0 = zk_test_wall_ns();
    cr_assert_eq(zk_block_on(rt, sleeps_300ms, NULL, NULL), 0);
    cr_assert_geq(zk_test_wall_ns() - t0, ZK_MS(300));
    uint64_t parks = 0;
    for (size_t i = 0; i < zk_runtime_workers(rt); i++) {
        zk_worker_metrics m;
        zk_runtime_worker_metrics(rt, i, &m);
        parks += m.parks;
    }
    /* A worker waking every few ms would park ~100 times in 300 ms. */
    cr_assert_leq(parks, 12, "workers parked %llu times",
                  (unsigned long long)parks);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */
/* many timers                                                            */
/* ---------------------------------------------------------------------- */

/* A future task around a sleep that checks it did not end early. */
typedef struct timed_sleep {
    zk_future base;
    zk_sleep_future s;
    atomic_long *early;
} timed_sleep;

static zk_poll timed_sleep_poll(zk_future *f, zk_context *cx, int64_t *out) {
    timed_sleep *t = (timed_sleep *)f;
    int64_t r;
    if (zk_future_poll(&t->s.base, cx, &r) == ZK_PENDING)
        return ZK_PENDING;
    if (zk_now() < t->s.deadline)
        atomic_fetch_add(t->early, 1);
    *out = r;
    return ZK_READY;
}
static void timed_sleep_drop(zk_future *f) {
    zk_future_drop(&((timed_sleep *)f)->s.base);
}
static const zk_future_ops timed_sleep_ops = {timed_sleep_poll,
                                              timed_sleep_drop};

#define MANY 1000000

static int64_t many_timers_root(void *arg) {
    atomic_long *early = arg;
    zk_task **h = malloc(MANY * sizeof *h);
    uint64_t x = 12345;
    for (int i = 0; i < MANY; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        timed_sleep t;
        t.base.ops = &timed_sleep_ops;
        t.early = early;
        zk_sleep_future_init(&t.s, ZK_MS(1 + (int64_t)(x % 50)));
        cr_assert_eq(zk_spawn_future(NULL, &t.base, sizeof t, &h[i]), 0);
    }
    int64_t sum = zk_test_join_all(h, MANY);
    free(h);
    return sum;
}

ZK_TEST(time, one_million_timers_fire_never_early) {
    atomic_long early = 0;
    zk_runtime *rt = zk_test_runtime();
#if !ZK_TEST_MT
    cr_assert_eq(zk_time_pause(rt), 0); /* 50 ms of virtual time */
#endif
    int64_t r = -1;
    cr_assert_eq(zk_block_on(rt, many_timers_root, &early, &r), 0);
    cr_assert_eq(r, 0);
    cr_assert_eq(atomic_load(&early), 0);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */
/* the paused clock                                                       */
/* ---------------------------------------------------------------------- */

#if !ZK_TEST_MT
typedef struct order {
    char seq[8];
    atomic_int n;
} order;

typedef struct sleeper_arg {
    order *o;
    char tag;
    zk_duration d;
} sleeper_arg;

static int64_t sleeps_and_records(void *arg) {
    sleeper_arg *a = arg;
    zk_sleep(a->d);
    a->o->seq[atomic_fetch_add(&a->o->n, 1)] = a->tag;
    return 0;
}

static int64_t paused_root(void *arg) {
    order *o = arg;
    zk_instant t0 = zk_now();
    sleeper_arg a[3] = {{o, 'c', ZK_SEC(3 * 3600)},
                        {o, 'a', ZK_SEC(3600)},
                        {o, 'b', ZK_SEC(2 * 3600)}};
    zk_task *h[3];
    for (int i = 0; i < 3; i++)
        zk_spawn(sleeps_and_records, &a[i], &h[i]);
    zk_test_join_all(h, 3);
    return zk_now() - t0;
}

ZK_TEST(time, a_paused_clock_runs_hours_of_timers_in_no_time) {
    order o;
    memset(&o, 0, sizeof o);
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_time_pause(rt), 0);
    int64_t t0 = zk_test_wall_ns();
    int64_t virtual_elapsed = 0;
    cr_assert_eq(zk_block_on(rt, paused_root, &o, &virtual_elapsed), 0);
    cr_assert_lt(zk_test_wall_ns() - t0, ZK_SEC(10), "real time stayed short");
    cr_assert_str_eq(o.seq, "abc", "fired in deadline order");
    cr_assert_geq(virtual_elapsed, ZK_SEC(3 * 3600));
    cr_assert_lt(virtual_elapsed, ZK_SEC(3 * 3600) + ZK_MS(2),
                 "the clock jumped to the deadlines, not past them");
    cr_assert_eq(zk_runtime_free(rt), 0);
}

static int64_t advanced_by_hand_root(void *arg) {
    zk_runtime *rt = arg;
    zk_task *h;
    cr_assert_eq(zk_spawn(sleeps_an_hour, NULL, &h), 0);
    zk_yield(); /* it registers its timer */
    cr_assert_not(zk_task_is_finished(h));
    cr_assert_eq(zk_time_advance(rt, ZK_SEC(1800)), 0);
    zk_yield();
    cr_assert_not(zk_task_is_finished(h), "half an hour is not enough");
    cr_assert_eq(zk_time_advance(rt, ZK_SEC(1800)), 0);
    int64_t r = -1;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 0);
    return 0;
}

ZK_TEST(time, a_paused_clock_advanced_by_hand) {
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_time_pause(rt), 0);
    cr_assert_eq(zk_block_on(rt, advanced_by_hand_root, rt, NULL), 0);
    cr_assert_eq(zk_time_resume(rt), 0);
    cr_assert_eq(zk_runtime_free(rt), 0);
}
#endif

/* ---------------------------------------------------------------------- */
/* timeouts and intervals                                                 */
/* ---------------------------------------------------------------------- */

typedef struct never {
    zk_future base;
    atomic_int *drops;
} never;

static zk_poll never_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)f;
    (void)cx;
    (void)out;
    return ZK_PENDING;
}
static void never_drop(zk_future *f) {
    atomic_fetch_add(((never *)f)->drops, 1);
}
static const zk_future_ops never_ops = {never_poll, never_drop};

static int64_t times_out(void *arg) {
    atomic_int *drops = arg;
    never n = {{&never_ops}, drops};
    zk_instant t0 = zk_now();
    int64_t r = zk_await_timeout(&n.base, ZK_MS(30));
    cr_assert_eq(r, -ETIMEDOUT);
    cr_assert_geq(zk_now() - t0, ZK_MS(30), "not before the deadline");
    cr_assert_eq(atomic_load(drops), 1, "the inner future was dropped once");
    /* Inner ready first: its output, and the timer is gone. */
    zk_ready_future ready = zk_ready(41);
    cr_assert_eq(zk_await_timeout(&ready.base, ZK_SEC(3600)), 41);
    zk_ready_future again = zk_ready(5);
    cr_assert_eq(zk_await_until(&again.base, zk_now() - 1), 5,
                 "a ready future wins even past its deadline");
    cr_assert_eq(zk_await_until(NULL, 0), -EINVAL);
    return 0;
}

ZK_TEST(time, a_timeout_drops_the_inner_future_and_returns_etimedout) {
    atomic_int drops = 0;
    zk_test_run(times_out, &drops);
    never n = {{&never_ops}, &drops};
    cr_assert_eq(zk_await_timeout(&n.base, 1), -EPERM);
    cr_assert_eq(atomic_load(&drops), 1, "refused outside: not dropped");
}

static int64_t bad_intervals(void *arg) {
    (void)arg;
    zk_interval iv;
    cr_assert_eq(zk_interval_init(NULL, ZK_MS(1), ZK_MISSED_TICK_BURST),
                 -EINVAL);
    cr_assert_eq(zk_interval_init(&iv, 0, ZK_MISSED_TICK_BURST), -EINVAL);
    cr_assert_eq(zk_interval_init(&iv, ZK_MS(1), (zk_missed_tick)9), -EINVAL);
    cr_assert_eq(zk_interval_tick(NULL), -EINVAL);
    cr_assert_eq(zk_interval_init(&iv, ZK_MS(2), ZK_MISSED_TICK_DELAY), 0);
    zk_instant t0 = zk_now();
    for (int i = 0; i < 3; i++)
        cr_assert_eq(zk_interval_tick(&iv), 0);
    cr_assert_geq(zk_now() - t0, ZK_MS(6), "ticks never come early");
    return 0;
}

ZK_TEST(time, interval_bad_input_and_real_ticks) {
    zk_test_run(bad_intervals, NULL);
}

#if !ZK_TEST_MT
/* Paused clock: the consumer is 35 ms late after its first tick of a
 * 10 ms interval; each behaviour then ticks at known instants. */
typedef struct missed_case {
    zk_missed_tick how;
    zk_duration expect[5]; /* instants of the ticks, from the start */
} missed_case;

static int64_t runs_missed_case(void *arg) {
    missed_case *c = arg;
    zk_instant t0 = zk_now();
    zk_interval iv;
    cr_assert_eq(zk_interval_init(&iv, ZK_MS(10), c->how), 0);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(zk_interval_tick(&iv), 0);
        /* Never early; timers have 1 ms ticks, and two roundings may add
         * up before a tick. */
        zk_duration at = zk_now() - t0;
        cr_assert(at >= c->expect[i] && at < c->expect[i] + ZK_MS(2),
                  "tick %d at %lld us", i, (long long)(at / ZK_US(1)));
        if (i == 0)
            zk_sleep(ZK_MS(35)); /* late: now at 45 ms */
    }
    return 0;
}

ZK_TEST(time, interval_missed_ticks_burst_delay_or_skip) {
    missed_case cases[3] = {
        /* burst: 20, 30, 40 at once at 45, then back on schedule */
        {ZK_MISSED_TICK_BURST,
         {ZK_MS(10), ZK_MS(45), ZK_MS(45), ZK_MS(45), ZK_MS(50)}},
        /* delay: one tick at 45, then every 10 ms from there */
        {ZK_MISSED_TICK_DELAY,
         {ZK_MS(10), ZK_MS(45), ZK_MS(55), ZK_MS(65), ZK_MS(75)}},
        /* skip: one tick at 45, then the original schedule */
        {ZK_MISSED_TICK_SKIP,
         {ZK_MS(10), ZK_MS(45), ZK_MS(50), ZK_MS(60), ZK_MS(70)}},
    };
    for (int i = 0; i < 3; i++) {
        zk_runtime *rt = zk_test_runtime();
        cr_assert_eq(zk_time_pause(rt), 0);
        cr_assert_eq(zk_block_on(rt, runs_missed_case, &cases[i], NULL), 0);
        cr_assert_eq(zk_runtime_free(rt), 0);
    }
}
#endif

/* ---------------------------------------------------------------------- */
/* deadlines at the end of time                                           */
/* ---------------------------------------------------------------------- */

/* Waits "forever" in one of four ways, by `arg`. */
static int64_t waits_forever(void *arg) {
    atomic_int drops = 0;
    never n = {{&never_ops}, &drops};
    switch ((int)(intptr_t)arg) {
    case 0:
        return zk_sleep(INT64_MAX);
    case 1:
        return zk_sleep_until(ZK_INSTANT_MAX);
    case 2:
        return zk_await_timeout(&n.base, INT64_MAX);
    default:
        return zk_await_until(&n.base, ZK_INSTANT_MAX - 1);
    }
}

static int64_t far_deadlines_root(void *arg) {
    (void)arg;
    zk_task *h[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(zk_spawn(waits_forever, (void *)(intptr_t)i, &h[i]), 0);
    zk_instant t0 = zk_now();
    cr_assert_eq(zk_sleep(ZK_MS(30)), 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_not(zk_task_is_finished(h[i]), "wait %d ended", i);
        cr_assert_eq(zk_task_abort(h[i]), 0);
        int64_t r = 0;
        cr_assert_eq(zk_task_join(&h[i], &r), -ECANCELED);
        cr_assert_eq(r, -ECANCELED);
    }
    return zk_now() - t0;
}

/* Deadlines near ZK_INSTANT_MAX, or durations that would carry past it,
 * mean "never": they do not wrap around into the past (and end at once),
 * nor overflow the driver's arithmetic (UBSan checks the latter). */
ZK_TEST(time, deadlines_at_the_end_of_time_never_pass) {
    int64_t elapsed = zk_test_run_paused(far_deadlines_root, NULL);
    cr_assert_geq(elapsed, ZK_MS(30));
#if !ZK_TEST_MT
    /* The paused clock jumped to the one real deadline, not past it. */
    cr_assert_lt(elapsed, ZK_MS(32));
#endif
}

#if !ZK_TEST_MT
/* A paused clock whose only timer is at the end of time: the runtime
 * sleeps (it used to jump the clock towards the end in a loop, at 100 %
 * of a core) until another thread aborts the sleeper. */
typedef struct end_of_time {
    zk_task *sleeper;
    atomic_bool joining;
    double cpu_s; /* process CPU time while the root waited */
} end_of_time;

static void *aborts_after_200ms(void *arg) {
    end_of_time *e = arg;
    while (!atomic_load(&e->joining))
        sched_yield();
    /* The window the runtime should spend asleep. */
    zk_test_real_sleep(ZK_MS(200));
    zk_task_abort(e->sleeper);
    return NULL;
}

static int64_t end_of_time_root(void *arg) {
    end_of_time *e = arg;
    cr_assert_eq(zk_spawn(waits_forever, (void *)(intptr_t)1, &e->sleeper), 0);
    zk_task *h = e->sleeper;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, aborts_after_200ms, e), 0);
    zk_instant t0 = zk_now();
    double cpu0 = zk_test_process_cpu_s();
    atomic_store(&e->joining, true);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    e->cpu_s = zk_test_process_cpu_s() - cpu0;
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_lt(zk_now() - t0, ZK_SEC(1), "the paused clock ran away");
    return 0;
}

ZK_TEST(time, a_paused_clock_with_only_a_timer_at_the_end_of_time_sleeps) {
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_time_pause(rt), 0);
    end_of_time e = {0};
    cr_assert_eq(zk_block_on(rt, end_of_time_root, &e, NULL), 0);
    /* Spinning, it would use the whole 200 ms window. */
    cr_assert_lt(e.cpu_s, 0.1, "used %.3f s of CPU while idle", e.cpu_s);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* A paused clock does not jump while a blocking call runs: the call's
 * result comes in real time, and a jump would expire every deadline that
 * waits for it (here a cancel scope of an hour). */
static int64_t sleeps_20ms_really(void *arg) {
    (void)arg;
    zk_test_real_sleep(ZK_MS(20));
    return 7;
}

static int64_t paused_blocking_root(void *arg) {
    (void)arg;
    zk_instant t0 = zk_now();
    zk_scope s = ZK_SCOPE_INIT;
    cr_assert_eq(zk_scope_enter_timeout(&s, ZK_SEC(3600)), 0);
    zk_task *h;
    cr_assert_eq(zk_spawn_blocking(NULL, sleeps_20ms_really, NULL, &h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 7);
    cr_assert_eq(zk_scope_exit(&s), 0);
    cr_assert_lt(zk_now() - t0, ZK_SEC(3600));
    /* With the call done, the clock jumps again. */
    cr_assert_eq(zk_sleep(ZK_SEC(60)), 0);
    return 0;
}

ZK_TEST(time, a_paused_clock_waits_for_blocking_calls) {
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_time_pause(rt), 0);
    int64_t t0 = zk_test_wall_ns();
    cr_assert_eq(zk_block_on(rt, paused_blocking_root, NULL, NULL), 0);
    cr_assert_lt(zk_test_wall_ns() - t0, ZK_SEC(10), "the minute was virtual");
    cr_assert_eq(zk_runtime_free(rt), 0);
}
#endif

/* ---------------------------------------------------------------------- */
/* a timer firing while its sleep is dropped                              */
/* ---------------------------------------------------------------------- */

/* Tasks await a notify with a timeout of about a millisecond while a
 * thread outside the runtime notifies them every millisecond: the timer
 * often fires on one worker while the task, woken by the notify on
 * another, drops the sleep and returns. The driver must not touch the
 * sleep (its waker) after the mark that lets the drop skip the lock
 * (ThreadSanitizer and AddressSanitizer check it in CI). */
#define RACERS 4
#define RACES  300

typedef struct timer_race {
    zk_notify *n[RACERS];
    atomic_bool done;
    atomic_int timeouts;
} timer_race;

typedef struct racer {
    timer_race *race;
    int i;
} racer;

static void *notifies_every_ms(void *arg) {
    timer_race *race = arg;
    while (!atomic_load(&race->done)) {
        zk_test_real_sleep(ZK_MS(1));
        for (int i = 0; i < RACERS; i++)
            zk_notify_one(race->n[i]);
    }
    return NULL;
}

static int64_t races_its_timer(void *arg) {
    racer *r = arg;
    for (int k = 0; k < RACES; k++) {
        zk_notify_future f;
        zk_notify_future_init(&f, r->race->n[r->i]);
        int64_t rc = zk_await_timeout(&f.base, ZK_US(900));
        cr_assert(rc == 0 || rc == -ETIMEDOUT, "rc %lld", (long long)rc);
        if (rc == -ETIMEDOUT)
            atomic_fetch_add(&r->race->timeouts, 1);
    }
    return 0;
}

static int64_t timer_race_root(void *arg) {
    timer_race *race = arg;
    for (int i = 0; i < RACERS; i++)
        cr_assert_eq(zk_notify_new(&race->n[i]), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, notifies_every_ms, race), 0);
    racer rs[RACERS];
    zk_task *h[RACERS];
    for (int i = 0; i < RACERS; i++) {
        rs[i] = (racer){race, i};
        cr_assert_eq(zk_spawn(races_its_timer, &rs[i], &h[i]), 0);
    }
    zk_test_join_all(h, RACERS);
    atomic_store(&race->done, true);
    cr_assert_eq(pthread_join(th, NULL), 0);
    for (int i = 0; i < RACERS; i++)
        cr_assert_eq(zk_notify_free(race->n[i]), 0);
    return 0;
}

ZK_TEST(time, a_timer_firing_while_its_sleep_is_dropped) {
    timer_race race = {0};
    zk_test_run(timer_race_root, &race);
}
