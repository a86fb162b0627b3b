/* test_combine.c - join, try_join, select, race, map, and_then, ready and
 * pending (zokio/combine.h). */
#include "helpers.h"

ZK_SUITE(combine);

/* A future that is ready with `value` at its `ready_at`-th poll (never when
 * ready_at is 0; it then waits for nothing and only a drop ends it), and
 * counts its polls and drops. */
typedef struct probe {
    zk_future base;
    int ready_at;
    int64_t value;
    int polls;
    int drops;
} probe;

static zk_poll probe_poll(zk_future *f, zk_context *cx, int64_t *out) {
    probe *p = (probe *)f;
    cr_assert_eq(p->drops, 0, "polled after its drop");
    if (++p->polls == p->ready_at) {
        *out = p->value;
        return ZK_READY;
    }
    if (p->ready_at != 0)
        zk_waker_wake_by_ref(zk_context_waker(cx));
    return ZK_PENDING;
}

static void probe_drop(zk_future *f) {
    ((probe *)f)->drops++;
}

static const zk_future_ops probe_ops = {probe_poll, probe_drop};

static probe mk_probe(int ready_at, int64_t value) {
    return (probe){{&probe_ops}, ready_at, value, 0, 0};
}

/* Polls `f` by hand until ready (at most `max` polls); returns its output. */
static int64_t poll_until_ready(zk_future *f, int max, int *polls) {
    counter_waker w = {0};
    int64_t out;
    for (int i = 1; i <= max; i++)
        if (poll1(f, &w, &out)) {
            if (polls)
                *polls = i;
            return out;
        }
    cr_assert(false, "not ready after %d polls", max);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* join                                                                   */
/* ---------------------------------------------------------------------- */

ZK_TEST(combine, join_waits_for_all_and_drops_each_once) {
    probe p[3] = {mk_probe(3, 30), mk_probe(1, -5), mk_probe(2, 20)};
    zk_future *fs[3] = {&p[0].base, &p[1].base, &p[2].base};
    int64_t outs[3] = {0};
    zk_join_future j;
    zk_join_future_init(&j, fs, outs, 3);
    int polls;
    cr_assert_eq(poll_until_ready(&j.base, 10, &polls), 0);
    cr_assert_eq(polls, 3, "ready when the slowest is");
    cr_assert_eq(outs[0], 30);
    cr_assert_eq(outs[1], -5, "an error is just an output");
    cr_assert_eq(outs[2], 20);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(p[i].drops, 1);
        cr_assert_eq(p[i].polls, p[i].ready_at, "no poll after ready");
    }
    zk_future_drop(&j.base); /* as zk_await does: nothing dropped twice */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p[i].drops, 1);
}

ZK_TEST(combine, try_join_stops_at_the_first_error) {
    probe p[3] = {mk_probe(5, 1), mk_probe(2, -EIO), mk_probe(0, 0)};
    zk_future *fs[3] = {&p[0].base, &p[1].base, &p[2].base};
    int64_t outs[3] = {0};
    zk_join_future j;
    zk_try_join_future_init(&j, fs, outs, 3);
    cr_assert_eq(poll_until_ready(&j.base, 10, NULL), -EIO);
    zk_future_drop(&j.base);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p[i].drops, 1, "future %d dropped once", i);
    cr_assert_lt(p[0].polls, 5, "the slow one was cancelled, not finished");
}

ZK_TEST(combine, join_of_many_uses_a_bitmap_and_drop_releases_all) {
    enum { N = 200 };
    probe *p = calloc(N, sizeof *p);
    zk_future **fs = calloc(N, sizeof *fs);
    int64_t *outs = calloc(N, sizeof *outs);
    for (int i = 0; i < N; i++) {
        p[i] = mk_probe(1 + i % 7, i);
        fs[i] = &p[i].base;
    }
    zk_join_future j;
    zk_join_future_init(&j, fs, outs, N);
    cr_assert_eq(poll_until_ready(&j.base, 10, NULL), 0);
    zk_future_drop(&j.base);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(outs[i], i);
        cr_assert_eq(p[i].drops, 1);
    }
    /* Dropped half-way: each unfinished one dropped once, bitmap freed
     * (LeakSanitizer checks the latter). */
    for (int i = 0; i < N; i++)
        p[i] = mk_probe(1 + i % 7, i);
    zk_join_future_init(&j, fs, outs, N);
    counter_waker w = {0};
    int64_t out;
    cr_assert_eq(poll1(&j.base, &w, &out), 0);
    cr_assert_eq(poll1(&j.base, &w, &out), 0);
    zk_future_drop(&j.base);
    for (int i = 0; i < N; i++)
        cr_assert_eq(p[i].drops, 1, "future %d", i);
    free(p);
    free(fs);
    free(outs);
}

ZK_TEST(combine, join_bad_input) {
    int64_t outs[2];
    zk_join_future j;
    zk_join_future_init(&j, NULL, NULL, 0);
    cr_assert_eq(poll_until_ready(&j.base, 1, NULL), 0, "nothing to wait for");
    zk_join_future_init(&j, NULL, outs, 2);
    cr_assert_eq(poll_until_ready(&j.base, 1, NULL), -EINVAL);
    probe p = mk_probe(1, 1);
    zk_future *fs[2] = {&p.base, NULL};
    zk_join_future_init(&j, fs, outs, 2);
    cr_assert_eq(poll_until_ready(&j.base, 1, NULL), -EINVAL);
    cr_assert_eq(p.polls, 0, "nothing polled");
    cr_assert_eq(p.drops, 1, "the valid one was dropped");
    p = mk_probe(1, 1);
    fs[1] = &p.base;
    zk_join_future_init(&j, fs, NULL, 1);
    cr_assert_eq(poll_until_ready(&j.base, 1, NULL), -EINVAL, "no outputs");
    cr_assert_eq(p.drops, 1);
    /* A count over the limit: the array (two entries here) is not read,
     * nothing is polled or dropped. */
    p = mk_probe(1, 1);
    fs[0] = fs[1] = &p.base;
    zk_join_future_init(&j, fs, outs, ZK_COMBINE_MAX + 1);
    cr_assert_eq(poll_until_ready(&j.base, 1, NULL), -EINVAL);
    zk_future_drop(&j.base);
    cr_assert_eq(p.polls, 0);
    cr_assert_eq(p.drops, 0, "the caller's futures were dropped");
    zk_join_future_init(NULL, fs, outs, 1); /* no crash */
}

/* ---------------------------------------------------------------------- */
/* select and race                                                        */
/* ---------------------------------------------------------------------- */

ZK_TEST(combine, select_takes_the_first_and_drops_the_others_first) {
    probe p[3] = {mk_probe(0, 0), mk_probe(2, 42), mk_probe(4, 1)};
    zk_future *fs[3] = {&p[0].base, &p[1].base, &p[2].base};
    int64_t value = 0;
    zk_select_future s;
    zk_select_future_init(&s, fs, 3, &value);
    cr_assert_eq(poll_until_ready(&s.base, 10, NULL), 1);
    cr_assert_eq(value, 42);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p[i].drops, 1, "future %d dropped by the time", i);
    zk_future_drop(&s.base);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p[i].drops, 1);
    /* An error finishes a select like anything else. */
    p[0] = mk_probe(1, -EPIPE);
    p[1] = mk_probe(0, 0);
    zk_select_future_init(&s, fs, 2, &value);
    cr_assert_eq(poll_until_ready(&s.base, 1, NULL), 0);
    cr_assert_eq(value, -EPIPE);
    /* Without a value pointer. */
    p[0] = mk_probe(0, 0);
    p[1] = mk_probe(1, 9);
    zk_select_future_init(&s, fs, 2, NULL);
    cr_assert_eq(poll_until_ready(&s.base, 1, NULL), 1);
}

ZK_TEST(combine, select_is_fair_and_biased_select_is_not) {
    int wins[2] = {0, 0};
    for (int round = 0; round < 1000; round++) {
        probe p[2] = {mk_probe(1, 0), mk_probe(1, 1)};
        zk_future *fs[2] = {&p[0].base, &p[1].base};
        zk_select_future s;
        zk_select_future_init(&s, fs, 2, NULL);
        wins[poll_until_ready(&s.base, 1, NULL)]++;
        cr_assert_eq(p[0].drops + p[1].drops, 2);
    }
    cr_assert_geq(wins[0], 250, "index 0 won %d of 1000", wins[0]);
    cr_assert_geq(wins[1], 250, "index 1 won %d of 1000", wins[1]);
    for (int round = 0; round < 100; round++) {
        probe p[2] = {mk_probe(1, 0), mk_probe(1, 1)};
        zk_future *fs[2] = {&p[0].base, &p[1].base};
        zk_select_future s;
        zk_select_biased_future_init(&s, fs, 2, NULL);
        cr_assert_eq(poll_until_ready(&s.base, 1, NULL), 0);
    }
}

ZK_TEST(combine, race_skips_failures_until_all_failed) {
    probe p[3] = {mk_probe(1, -ECONNREFUSED), mk_probe(3, 7),
                  mk_probe(2, -EHOSTUNREACH)};
    zk_future *fs[3] = {&p[0].base, &p[1].base, &p[2].base};
    int64_t value = 0;
    zk_race_future r;
    zk_race_future_init(&r, fs, 3, &value);
    cr_assert_eq(poll_until_ready(&r.base, 10, NULL), 1);
    cr_assert_eq(value, 7);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p[i].drops, 1);
    p[0] = mk_probe(2, -ECONNREFUSED);
    p[1] = mk_probe(1, -ETIMEDOUT);
    value = 123;
    zk_race_future_init(&r, fs, 2, &value);
    cr_assert_eq(poll_until_ready(&r.base, 10, NULL), -ETIMEDOUT,
                 "the first failure's error");
    cr_assert_eq(value, 123, "not written");
    cr_assert_eq(p[0].drops + p[1].drops, 2);
}

ZK_TEST(combine, select_bad_input) {
    zk_select_future s;
    zk_select_future_init(&s, NULL, 0, NULL);
    cr_assert_eq(poll_until_ready(&s.base, 1, NULL), -EINVAL,
                 "a select of nothing would never finish");
    probe p = mk_probe(1, 1);
    zk_future *fs[2] = {NULL, &p.base};
    zk_select_future_init(&s, fs, 2, NULL);
    cr_assert_eq(poll_until_ready(&s.base, 1, NULL), -EINVAL);
    cr_assert_eq(p.polls, 0);
    cr_assert_eq(p.drops, 1);
    zk_race_future_init(&s, NULL, 3, NULL);
    cr_assert_eq(poll_until_ready(&s.base, 1, NULL), -EINVAL);
    p = mk_probe(1, 1);
    fs[0] = &p.base;
    zk_select_future_init(&s, fs, ZK_COMBINE_MAX + 1, NULL);
    cr_assert_eq(poll_until_ready(&s.base, 1, NULL), -EINVAL);
    zk_future_drop(&s.base);
    cr_assert_eq(p.polls + p.drops, 0, "the caller's futures were touched");
}

/* ---------------------------------------------------------------------- */
/* map, and_then, ready, pending                                          */
/* ---------------------------------------------------------------------- */

static int64_t times_ten(int64_t out, void *arg) {
    (*(int *)arg)++;
    return out * 10;
}

ZK_TEST(combine, map_transforms_the_output_and_drops_inner_once) {
    int calls = 0;
    probe p = mk_probe(2, -4);
    zk_map_future m;
    zk_map_future_init(&m, &p.base, times_ten, &calls);
    cr_assert_eq(poll_until_ready(&m.base, 5, NULL), -40, "sees errors too");
    zk_future_drop(&m.base);
    cr_assert_eq(calls, 1);
    cr_assert_eq(p.drops, 1);
    /* Dropped while pending: inner dropped once, fn never called. */
    p = mk_probe(0, 0);
    zk_map_future_init(&m, &p.base, times_ten, &calls);
    counter_waker w = {0};
    int64_t out;
    cr_assert_eq(poll1(&m.base, &w, &out), 0);
    zk_future_drop(&m.base);
    cr_assert_eq(p.drops, 1);
    cr_assert_eq(calls, 1);
    /* Bad input. */
    p = mk_probe(1, 1);
    zk_map_future_init(&m, &p.base, NULL, NULL);
    cr_assert_eq(poll_until_ready(&m.base, 1, NULL), -EINVAL);
    cr_assert_eq(p.drops, 1, "inner still released");
    zk_future_drop(&m.base);
    cr_assert_eq(p.drops, 1);
    zk_map_future_init(&m, NULL, times_ten, &calls);
    cr_assert_eq(poll_until_ready(&m.base, 1, NULL), -EINVAL);
}

typedef struct chain {
    probe second;
    int calls;
    int64_t seen;
    bool give_null;
} chain;

static zk_future *then_second(int64_t out, void *arg) {
    chain *c = arg;
    c->calls++;
    c->seen = out;
    return c->give_null ? NULL : &c->second.base;
}

ZK_TEST(combine, and_then_runs_the_next_future_or_stops_at_an_error) {
    probe first = mk_probe(2, 5);
    chain c = {mk_probe(3, 99), 0, 0, false};
    zk_and_then_future t;
    zk_and_then_future_init(&t, &first.base, then_second, &c);
    int polls;
    cr_assert_eq(poll_until_ready(&t.base, 10, &polls), 99);
    cr_assert_eq(polls, 4, "the second is polled at once");
    cr_assert_eq(c.seen, 5);
    zk_future_drop(&t.base);
    cr_assert_eq(first.drops, 1);
    cr_assert_eq(c.second.drops, 1);
    /* The first fails: next not called. */
    first = mk_probe(1, -ENOENT);
    c = (chain){mk_probe(1, 1), 0, 0, false};
    zk_and_then_future_init(&t, &first.base, then_second, &c);
    cr_assert_eq(poll_until_ready(&t.base, 1, NULL), -ENOENT);
    cr_assert_eq(c.calls, 0);
    zk_future_drop(&t.base);
    cr_assert_eq(c.second.drops, 0, "never started, never dropped");
    /* next returns NULL: the first's output is the result. */
    first = mk_probe(1, 8);
    c = (chain){mk_probe(1, 1), 0, 0, true};
    zk_and_then_future_init(&t, &first.base, then_second, &c);
    cr_assert_eq(poll_until_ready(&t.base, 1, NULL), 8);
    /* Dropped in the second stage: only the second is dropped then. */
    first = mk_probe(1, 1);
    c = (chain){mk_probe(0, 0), 0, 0, false};
    zk_and_then_future_init(&t, &first.base, then_second, &c);
    counter_waker w = {0};
    int64_t out;
    cr_assert_eq(poll1(&t.base, &w, &out), 0);
    zk_future_drop(&t.base);
    cr_assert_eq(first.drops, 1);
    cr_assert_eq(c.second.drops, 1);
    zk_and_then_future_init(&t, &first.base, NULL, &c);
    first = mk_probe(1, 1);
    cr_assert_eq(poll_until_ready(&t.base, 1, NULL), -EINVAL);
    cr_assert_eq(first.drops, 1);
}

ZK_TEST(combine, ready_and_pending) {
    zk_ready_future r;
    zk_ready_future_init(&r, -7);
    cr_assert_eq(poll_until_ready(&r.base, 1, NULL), -7);
    zk_pending_future p;
    zk_pending_future_init(&p);
    counter_waker w = {0};
    int64_t out;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(poll1(&p.base, &w, &out), 0);
    cr_assert_eq(atomic_load(&w.wakes), 0, "never wakes anyone");
    zk_future_drop(&p.base);
    zk_ready_future_init(&r, 3);
    zk_pending_future_init(&p);
    zk_future *fs[2] = {&p.base, &r.base};
    int64_t value;
    zk_select_future s;
    zk_select_future_init(&s, fs, 2, &value);
    cr_assert_eq(poll_until_ready(&s.base, 1, NULL), 1);
    cr_assert_eq(value, 3);
}

/* ---------------------------------------------------------------------- */
/* In tasks: the blocking-style forms, with the runtime's own futures      */
/* ---------------------------------------------------------------------- */

static int64_t join_sleeps_root(void *arg) {
    (void)arg;
    zk_instant start = zk_now();
    zk_sleep_future s[3];
    zk_future *fs[3];
    int64_t outs[3];
    for (int i = 0; i < 3; i++) {
        zk_sleep_future_init(&s[i], ZK_MS(5 * (i + 1)));
        fs[i] = &s[i].base;
    }
    cr_assert_eq(zk_join(fs, outs, 3), 0);
    cr_assert_geq(zk_now() - start, ZK_MS(15), "all three slept");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(outs[i], 0);
    return 0;
}

ZK_TEST(combine, join_runs_sleeps_side_by_side) {
    zk_test_run(join_sleeps_root, NULL);
}

/* A select between a receive and a timer: the timer wins, and the message
 * sent afterwards is not lost (the dropped receive took nothing). */
static int64_t select_recv_or_timer_root(void *arg) {
    (void)arg;
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    cr_assert_eq(zk_mpsc_new(sizeof(int), 4, &tx, &rx), 0);
    int got = -1;
    zk_mpsc_recv_future recv;
    zk_sleep_future nap;
    zk_mpsc_recv_future_init(&recv, rx, &got);
    zk_sleep_future_init(&nap, ZK_MS(5));
    zk_future *fs[2] = {&recv.base, &nap.base};
    int64_t value = -1;
    cr_assert_eq(zk_select(fs, 2, &value), 1, "the timer");
    cr_assert_eq(value, 0);
    int msg = 77;
    cr_assert_eq(zk_mpsc_send(tx, &msg), 0);
    cr_assert_eq(got, -1, "the dropped receive wrote nothing");
    cr_assert_eq(zk_mpsc_recv(rx, &got), 0);
    cr_assert_eq(got, 77);
    /* Now the receive wins. */
    msg = 78;
    cr_assert_eq(zk_mpsc_send(tx, &msg), 0);
    zk_mpsc_recv_future_init(&recv, rx, &got);
    zk_sleep_future_init(&nap, ZK_SEC(3600));
    cr_assert_eq(zk_select(fs, 2, &value), 0);
    cr_assert_eq(got, 78);
    zk_mpsc_tx_close(&tx);
    zk_mpsc_rx_close(&rx);
    return 0;
}

ZK_TEST(combine, select_between_a_receive_and_a_timer) {
    zk_test_run(select_recv_or_timer_root, NULL);
}

static int64_t race_root(void *arg) {
    (void)arg;
    zk_ready_future bad;
    zk_sleep_future slow, fast;
    zk_ready_future_init(&bad, -ECONNREFUSED);
    zk_sleep_future_init(&slow, ZK_SEC(3600));
    zk_sleep_future_init(&fast, ZK_MS(1));
    zk_future *fs[3] = {&bad.base, &slow.base, &fast.base};
    int64_t value = -1;
    cr_assert_eq(zk_race(fs, 3, &value), 2, "the first success");
    cr_assert_eq(value, 0);
    return 0;
}

ZK_TEST(combine, race_in_a_task) {
    zk_test_run(race_root, NULL);
}

/* An aborted task's join drops every unfinished future once. */
typedef struct abort_join {
    zk_gate gate;
    atomic_int drops;
    atomic_bool waiting;
} abort_join;

static int64_t joins_gates(void *arg) {
    abort_join *a = arg;
    zk_gate_wait w[2] = {zk_gate_waiter(&a->gate, &a->drops),
                         zk_gate_waiter(&a->gate, &a->drops)};
    zk_ready_future r;
    zk_ready_future_init(&r, 1);
    zk_future *fs[3] = {&w[0].base, &r.base, &w[1].base};
    int64_t outs[3] = {0, 0, 0};
    atomic_store(&a->waiting, true);
    int rc = zk_join(fs, outs, 3);
    cr_assert_eq(outs[1], 1, "the finished one's output is kept");
    return rc;
}

static int64_t abort_join_root(void *arg) {
    (void)arg;
    abort_join a;
    zk_gate_init(&a.gate);
    atomic_init(&a.drops, 0);
    atomic_init(&a.waiting, false);
    zk_task *h;
    cr_assert_eq(zk_spawn(joins_gates, &a, &h), 0);
    while (!atomic_load(&a.waiting) || zk_gate_polls(&a.gate) < 2)
        zk_yield();
    cr_assert_eq(zk_task_abort(h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    cr_assert_eq(atomic_load(&a.drops), 2);
    zk_gate_destroy(&a.gate);
    return 0;
}

ZK_TEST(combine, an_aborted_join_drops_what_it_waited_for) {
    zk_test_run(abort_join_root, NULL);
}

ZK_TEST(combine, blocking_forms_outside_a_task_touch_nothing) {
    probe p = mk_probe(1, 1);
    zk_future *fs[1] = {&p.base};
    int64_t outs[1], v;
    cr_assert_eq(zk_join(fs, outs, 1), -EPERM);
    cr_assert_eq(zk_select(fs, 1, &v), -EPERM);
    cr_assert_eq(zk_race(fs, 1, &v), -EPERM);
    cr_assert_eq(p.polls + p.drops, 0, "still the caller's");
}
