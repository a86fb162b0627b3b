/* test_task.c - spawning, joining, detaching, aborting tasks of both kinds,
 * yields, the cooperative budget, and large task counts. */
#include "helpers.h"

ZK_SUITE(task);

static int64_t square(void *arg) {
    intptr_t n = (intptr_t)arg;
    return n * n;
}

/* ---------------------------------------------------------------------- */
/* spawn and join                                                         */
/* ---------------------------------------------------------------------- */

static int64_t spawn_join_root(void *arg) {
    (void)arg;
    zk_task *h[16];
    for (intptr_t i = 0; i < 16; i++)
        cr_assert_eq(zk_spawn(square, (void *)i, &h[i]), 0);
    int64_t sum = 0;
    for (int i = 0; i < 16; i++) {
        int64_t r = -1;
        cr_assert_eq(zk_task_join(&h[i], &r), 0);
        cr_assert_null(h[i], "join releases and clears the handle");
        cr_assert_eq(r, (int64_t)i * i);
        sum += r;
    }
    return sum;
}

ZK_TEST(task, coroutine_tasks_return_their_results) {
    cr_assert_eq(zk_test_run(spawn_join_root, NULL), 1240);
}

typedef struct countdown {
    zk_future base;
    int left;
    int64_t value;
    atomic_int *drops;
} countdown;

static zk_poll countdown_poll(zk_future *f, zk_context *cx, int64_t *out) {
    countdown *c = (countdown *)f;
    if (c->left-- > 0) {
        zk_waker_wake_by_ref(zk_context_waker(cx));
        return ZK_PENDING;
    }
    *out = c->value;
    return ZK_READY;
}
static void countdown_drop(zk_future *f) {
    countdown *c = (countdown *)f;
    if (c->drops)
        atomic_fetch_add(c->drops, 1);
}
static const zk_future_ops countdown_ops = {countdown_poll, countdown_drop};

static int64_t future_task_root(void *arg) {
    atomic_int *drops = arg;
    zk_task *h;
    countdown c = {{&countdown_ops}, 3, 99, drops};
    cr_assert_eq(zk_spawn_future(NULL, &c.base, sizeof c, &h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(c.left, 3, "the task works on its own copy");
    return r;
}

ZK_TEST(task, future_tasks_return_their_output_and_are_dropped_once) {
    atomic_int drops = 0;
    cr_assert_eq(zk_test_run(future_task_root, &drops), 99);
    cr_assert_eq(atomic_load(&drops), 1);
}

/* ---------------------------------------------------------------------- */
/* bad input                                                              */
/* ---------------------------------------------------------------------- */

static int64_t bad_input_root(void *arg) {
    (void)arg;
    zk_task *h = NULL;
    cr_assert_eq(zk_spawn(NULL, NULL, &h), -EINVAL);
    cr_assert_null(h, "a failed spawn leaves the handle unchanged");
    cr_assert_eq(zk_spawn_future(NULL, NULL, 16, &h), -EINVAL);
    countdown c = {{&countdown_ops}, 0, 1, NULL};
    cr_assert_eq(zk_spawn_future(NULL, &c.base, 1, &h), -EINVAL);
    cr_assert_eq(zk_spawn_future(NULL, &c.base, (size_t)1 << 30, &h), -EINVAL);
    zk_future nopoll = {NULL};
    cr_assert_eq(zk_spawn_future(NULL, &nopoll, sizeof nopoll, &h), -EINVAL);
    zk_spawn_opts o = {.stack_size = 1};
    cr_assert_eq(zk_spawn_ex(NULL, &o, square, NULL, &h), -EINVAL);
    o.stack_size = ZK_STACK_MAX + 1;
    cr_assert_eq(zk_spawn_ex(NULL, &o, square, NULL, &h), -EINVAL);
    cr_assert_null(h);
    cr_assert_eq(zk_task_join(NULL, NULL), -EINVAL);
    cr_assert_eq(zk_task_join(&h, NULL), -EINVAL);
    cr_assert_eq(zk_task_detach(NULL), -EINVAL);
    cr_assert_eq(zk_task_detach(&h), -EINVAL);
    cr_assert_eq(zk_task_abort(NULL), -EINVAL);
    cr_assert_not(zk_task_is_finished(NULL));
    cr_assert_eq(zk_task_id(NULL), 0);
    cr_assert_eq(zk_runtime_live_tasks(zk_runtime_current()), 1,
                 "only the root is alive: nothing was spawned");
    return 0;
}

ZK_TEST(task, bad_arguments_get_einval_and_spawn_nothing) {
    cr_assert_eq(zk_test_run(bad_input_root, NULL), 0);
}

ZK_TEST(task, spawn_outside_a_runtime_is_refused) {
    zk_task *h = NULL;
    cr_assert_eq(zk_spawn(square, NULL, &h), -EPERM);
    countdown c = {{&countdown_ops}, 0, 1, NULL};
    cr_assert_eq(zk_spawn_future(NULL, &c.base, sizeof c, &h), -EPERM);
    cr_assert_eq(zk_runtime_spawn(NULL, square, NULL, &h), -EINVAL);
    cr_assert_null(h);
}

static int64_t join_twice_root(void *arg) {
    (void)arg;
    zk_task *h, *copy;
    cr_assert_eq(zk_spawn(square, (void *)3, &h), 0);
    copy = h;
    (void)copy;
    int64_t r;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 9);
    cr_assert_eq(zk_task_join(&h, &r), -EINVAL, "second join is refused");

    cr_assert_eq(zk_spawn(square, (void *)4, &h), 0);
    cr_assert_eq(zk_task_detach(&h), 0);
    cr_assert_null(h);
    cr_assert_eq(zk_task_join(&h, &r), -EINVAL, "join after detach");
    cr_assert_eq(zk_task_detach(&h), -EINVAL, "detach twice");
    return 0;
}

ZK_TEST(task, join_twice_and_join_after_detach_are_refused) {
    cr_assert_eq(zk_test_run(join_twice_root, NULL), 0);
}

/* ---------------------------------------------------------------------- */
/* abort in every state                                                   */
/* ---------------------------------------------------------------------- */

typedef struct abort_probe {
    zk_gate gate;
    atomic_int drops;
    atomic_int started;
    int64_t first, second, yielded;
    bool saw_cancel_flag;
} abort_probe;

static int64_t waits_on_gate(void *arg) {
    abort_probe *p = arg;
    atomic_store(&p->started, 1);
    zk_gate_wait w = zk_gate_waiter(&p->gate, &p->drops);
    p->first = zk_await(&w.base);
    p->saw_cancel_flag = zk_task_cancelled();
    zk_gate_wait w2 = zk_gate_waiter(&p->gate, &p->drops);
    p->second = zk_await(&w2.base);
    p->yielded = zk_yield();
    return 5; /* cleaned up and returned */
}

static int64_t abort_before_start_root(void *arg) {
    abort_probe *p = arg;
    zk_task *h;
    cr_assert_eq(zk_spawn(waits_on_gate, p, &h), 0);
    cr_assert_eq(zk_task_abort(h), 0);
    cr_assert_eq(zk_task_abort(h), 0, "aborting twice is harmless");
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    cr_assert_eq(r, 5, "the function ran and its value is kept");
    return 0;
}

ZK_TEST(task, abort_before_start_runs_the_function_cancelled) {
    abort_probe p;
    memset(&p, 0, sizeof p);
    zk_gate_init(&p.gate);
    zk_test_run(abort_before_start_root, &p);
    cr_assert_eq(atomic_load(&p.started), 1);
    cr_assert_eq(p.first, -ECANCELED);
    cr_assert_eq(p.second, -ECANCELED);
    cr_assert_eq(p.yielded, -ECANCELED);
    cr_assert(p.saw_cancel_flag);
    cr_assert_eq(atomic_load(&p.drops), 2, "each cancelled future dropped");
    cr_assert_eq(p.gate.polls, 0, "a cancelled await does not poll");
    zk_gate_destroy(&p.gate);
}

static int64_t abort_while_parked_root(void *arg) {
    abort_probe *p = arg;
    zk_task *h;
    cr_assert_eq(zk_spawn(waits_on_gate, p, &h), 0);
    while (zk_gate_polls(&p->gate) == 0) /* let it park on the gate */
        zk_yield();
    cr_assert_not(zk_task_is_finished(h));
    cr_assert_eq(zk_task_abort(h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    cr_assert_eq(r, 5);
    return 0;
}

ZK_TEST(task, abort_while_parked_wakes_the_task_with_ecanceled) {
    abort_probe p;
    memset(&p, 0, sizeof p);
    zk_gate_init(&p.gate);
    zk_test_run(abort_while_parked_root, &p);
    cr_assert_eq(p.first, -ECANCELED);
    cr_assert_eq(p.second, -ECANCELED, "later awaits fail too");
    cr_assert_eq(p.yielded, -ECANCELED);
    cr_assert_eq(p.gate.polls, 1);
    cr_assert_eq(atomic_load(&p.drops), 2);
    cr_assert(zk_waker_is_empty(&p.gate.waker),
              "the dropped future deregistered its waker");
    zk_gate_destroy(&p.gate);
}

/* Abort from another thread while the task is running on the driver. */
typedef struct running_probe {
    atomic_int running;
    zk_task *handle;
    atomic_int abort_rc;
} running_probe;

static int64_t spins_until_cancelled(void *arg) {
    running_probe *p = arg;
    atomic_store(&p->running, 1);
    while (!zk_task_cancelled())
        ; /* runs until the other thread's abort lands */
    zk_ready_future f = zk_ready(1);
    return zk_await(&f.base);
}

static void *aborter(void *arg) {
    running_probe *p = arg;
    while (!atomic_load(&p->running))
        ;
    atomic_store(&p->abort_rc, zk_task_abort(p->handle));
    return NULL;
}

static int64_t abort_while_running_root(void *arg) {
    running_probe *p = arg;
    cr_assert_eq(zk_spawn(spins_until_cancelled, p, &p->handle), 0);
    pthread_t th;
    pthread_create(&th, NULL, aborter, p);
    int64_t r = 0;
    int rc = zk_task_join(&p->handle, &r);
    pthread_join(th, NULL);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(r, -ECANCELED, "the await after the abort failed");
    cr_assert_eq(atomic_load(&p->abort_rc), 0);
    return 0;
}

ZK_TEST(task, abort_while_running_from_another_thread) {
    running_probe p;
    memset(&p, 0, sizeof p);
    zk_test_run(abort_while_running_root, &p);
}

static int64_t abort_finished_root(void *arg) {
    (void)arg;
    zk_task *h;
    cr_assert_eq(zk_spawn(square, (void *)6, &h), 0);
    while (!zk_task_is_finished(h))
        zk_yield();
    cr_assert_eq(zk_task_abort(h), -EALREADY);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0, "a finished task is not cancelled");
    cr_assert_eq(r, 36);
    return 0;
}

ZK_TEST(task, abort_of_a_finished_task_is_ealready) {
    zk_test_run(abort_finished_root, NULL);
}

static int64_t abort_future_root(void *arg) {
    atomic_int *drops = arg;
    /* Before its first poll. */
    countdown c = {{&countdown_ops}, 1000000, 1, drops};
    zk_task *h;
    cr_assert_eq(zk_spawn_future(NULL, &c.base, sizeof c, &h), 0);
    cr_assert_eq(zk_task_abort(h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    cr_assert_eq(atomic_load(drops), 1);
    /* While it keeps waking itself (queued between polls). */
    cr_assert_eq(zk_spawn_future(NULL, &c.base, sizeof c, &h), 0);
    zk_yield();
    zk_yield();
    cr_assert_eq(zk_task_abort(h), 0);
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    cr_assert_eq(atomic_load(drops), 2);
    return 0;
}

ZK_TEST(task, abort_drops_a_future_task_exactly_once) {
    atomic_int drops = 0;
    zk_test_run(abort_future_root, &drops);
    cr_assert_eq(atomic_load(&drops), 2);
}

/* A future task that aborts itself during its own poll. */
typedef struct self_abort {
    zk_future base;
    zk_task **handle;
    int polls;
    atomic_int *drops;
} self_abort;

static zk_poll self_abort_poll(zk_future *f, zk_context *cx, int64_t *out) {
    self_abort *s = (self_abort *)f;
    (void)cx;
    (void)out;
    s->polls++;
    cr_assert(zk_in_task());
    cr_assert_not(zk_in_coroutine());
    zk_ready_future r = zk_ready(1);
    cr_assert_eq(zk_await(&r.base), -EPERM, "no await in a future task");
    cr_assert_eq(zk_task_abort(*s->handle), 0);
    cr_assert_eq(s->polls, 1, "never polled again after the abort");
    return ZK_PENDING;
}
static void self_abort_drop(zk_future *f) {
    atomic_fetch_add(((self_abort *)f)->drops, 1);
}
static const zk_future_ops self_abort_ops = {self_abort_poll, self_abort_drop};

static int64_t self_abort_root(void *arg) {
    atomic_int *drops = arg;
    static zk_task *h;
    self_abort s = {{&self_abort_ops}, &h, 0, drops};
    cr_assert_eq(zk_spawn_future(NULL, &s.base, sizeof s, &h), 0);
    int64_t r;
    cr_assert_eq(zk_task_join(&h, &r), -ECANCELED);
    return 0;
}

ZK_TEST(task, abort_during_poll_drops_after_the_poll) {
    atomic_int drops = 0;
    zk_test_run(self_abort_root, &drops);
    cr_assert_eq(atomic_load(&drops), 1);
}

/* ---------------------------------------------------------------------- */
/* joining: self, cancelled joiner, plain threads                         */
/* ---------------------------------------------------------------------- */

static zk_task *self_handle;
static int64_t joins_itself(void *arg) {
    (void)arg;
    while (self_handle == NULL)
        zk_yield();
    return zk_task_join(&self_handle, NULL);
}

static int64_t join_self_root(void *arg) {
    (void)arg;
    zk_task *h;
    cr_assert_eq(zk_spawn(joins_itself, NULL, &h), 0);
    self_handle = h;
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, -EDEADLK);
    cr_assert_not_null(self_handle, "the refused join kept the handle");
    return 0;
}

ZK_TEST(task, a_task_joining_itself_gets_edeadlk) {
    zk_test_run(join_self_root, NULL);
}

typedef struct joiner_probe {
    zk_gate gate;
    zk_task *target;
    int rc;
    bool kept;
} joiner_probe;

static int64_t waits_forever(void *arg) {
    zk_gate_wait w = zk_gate_waiter(arg, NULL);
    return zk_await(&w.base);
}

static int64_t joins_target(void *arg) {
    joiner_probe *p = arg;
    p->rc = zk_task_join(&p->target, NULL);
    p->kept = p->target != NULL;
    return 0;
}

static int64_t cancelled_joiner_root(void *arg) {
    joiner_probe *p = arg;
    zk_task *j;
    cr_assert_eq(zk_spawn(waits_forever, &p->gate, &p->target), 0);
    cr_assert_eq(zk_spawn(joins_target, p, &j), 0);
    zk_yield();
    zk_yield();
    cr_assert_eq(zk_task_abort(j), 0);
    cr_assert_eq(zk_task_join(&j, NULL), -ECANCELED);
    cr_assert_eq(p->rc, -ECANCELED);
    cr_assert(p->kept, "the joiner keeps the handle it could not join");
    zk_gate_open(&p->gate);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&p->target, &r), 0);
    cr_assert_eq(r, 7);
    return 0;
}

ZK_TEST(task, a_cancelled_joiner_keeps_its_handle) {
    joiner_probe p;
    memset(&p, 0, sizeof p);
    zk_gate_init(&p.gate);
    zk_test_run(cancelled_joiner_root, &p);
    zk_gate_destroy(&p.gate);
}

/* A plain thread joins a task of a runtime that another thread drives. */
typedef struct plain_join {
    zk_runtime *rt;
    zk_gate gate;
    zk_task *handle;
    atomic_int published;
    atomic_int joined;
} plain_join;

static int64_t plain_join_root(void *arg) {
    plain_join *p = arg;
    zk_task *child;
    cr_assert_eq(zk_spawn(waits_forever, &p->gate, &child), 0);
    p->handle = child;
    atomic_store(&p->published, 1);
    /* Keep the runtime driven until the plain thread has joined. */
    while (!atomic_load(&p->joined))
        zk_yield();
    return 0;
}

static void *plain_joiner(void *arg) {
    plain_join *p = arg;
    while (!atomic_load(&p->published))
        ;
    zk_gate_open(&p->gate);
    int64_t r = 0;
    int rc = zk_task_join(&p->handle, &r);
    atomic_store(&p->joined, rc == 0 && r == 7 ? 1 : -1);
    return NULL;
}

ZK_TEST(task, a_plain_thread_can_join_a_task) {
    plain_join p;
    memset(&p, 0, sizeof p);
    zk_gate_init(&p.gate);
    p.rt = zk_test_runtime();
    pthread_t th;
    pthread_create(&th, NULL, plain_joiner, &p);
    cr_assert_eq(zk_block_on(p.rt, plain_join_root, &p, NULL), 0);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&p.joined), 1);
    cr_assert_eq(zk_runtime_free(p.rt), 0);
    zk_gate_destroy(&p.gate);
}

/* ---------------------------------------------------------------------- */
/* identity                                                               */
/* ---------------------------------------------------------------------- */

static int64_t reports_identity(void *arg) {
    uint64_t *id = arg;
    *id = zk_task_current_id();
    return zk_in_task() && zk_in_coroutine() && !zk_task_cancelled() &&
           zk_runtime_current() != NULL;
}

static int64_t identity_root(void *arg) {
    (void)arg;
    uint64_t ids[8] = {0};
    zk_task *h[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(zk_spawn(reports_identity, &ids[i], &h[i]), 0);
    for (int i = 0; i < 8; i++) {
        uint64_t hid = zk_task_id(h[i]);
        cr_assert_neq(hid, 0);
        int64_t r;
        cr_assert_eq(zk_task_join(&h[i], &r), 0);
        cr_assert_eq(r, 1);
        cr_assert_eq(ids[i], hid);
        for (int j = 0; j < i; j++)
            cr_assert_neq(ids[i], ids[j], "ids are unique");
    }
    cr_assert_neq(zk_task_current_id(), 0);
    return 0;
}

ZK_TEST(task, ids_are_unique_and_visible_inside) {
    zk_test_run(identity_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* yield, fairness, budget                                                */
/* ---------------------------------------------------------------------- */

typedef struct trace {
    char order[64];
    atomic_int len;
} trace;

typedef struct tracer {
    trace *t;
    char tag;
} tracer;

static int64_t yields_and_traces(void *arg) {
    tracer *tr = arg;
    for (int i = 0; i < 4; i++) {
        int at = atomic_fetch_add(&tr->t->len, 1);
        tr->t->order[at] = tr->tag;
        cr_assert_eq(zk_yield(), 0);
    }
    return 0;
}

static int64_t yield_root(void *arg) {
    trace *t = arg;
    tracer a = {t, 'a'}, b = {t, 'b'};
    zk_task *ha, *hb;
    zk_spawn(yields_and_traces, &a, &ha);
    zk_spawn(yields_and_traces, &b, &hb);
    zk_task_join(&ha, NULL);
    zk_task_join(&hb, NULL);
    return 0;
}

ZK_TEST(task, yield_lets_the_other_tasks_run) {
    trace t;
    memset(&t, 0, sizeof t);
    zk_test_run(yield_root, &t);
#if ZK_TEST_MT
    /* Two workers run both at once: the order is free, the count is not. */
    int a = 0, b = 0;
    for (int i = 0; t.order[i]; i++)
        a += t.order[i] == 'a', b += t.order[i] == 'b';
    cr_assert(a == 4 && b == 4, "order %s", t.order);
#else
    cr_assert_str_eq(t.order, "abababab");
#endif
}

typedef struct budget_probe {
    atomic_int busy_done;
    atomic_int other_runs;
} budget_probe;

static int64_t never_waits(void *arg) {
    budget_probe *p = arg;
    for (int i = 0; i < 100000; i++) {
        zk_ready_future f = zk_ready(i);
        cr_assert_eq(zk_await(&f.base), i);
    }
    atomic_store(&p->busy_done, 1);
    return 0;
}

static int64_t counts_turns(void *arg) {
    budget_probe *p = arg;
    while (!atomic_load(&p->busy_done)) {
        atomic_fetch_add(&p->other_runs, 1);
        zk_yield();
    }
    return 0;
}

static int64_t budget_root(void *arg) {
    zk_task *a, *b;
    zk_spawn(counts_turns, arg, &b);
    zk_spawn(never_waits, arg, &a);
    zk_task_join(&a, NULL);
    zk_task_join(&b, NULL);
    return 0;
}

ZK_TEST(task, a_task_whose_awaits_are_always_ready_still_yields) {
    budget_probe p;
    memset(&p, 0, sizeof p);
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_block_on(rt, budget_root, &p, NULL), 0);
    /* 100,000 ready awaits with a budget of 128 make about 780 forced
     * yields, wherever the tasks ran. */
    uint64_t forced = 0;
    for (size_t i = 0; i < zk_runtime_workers(rt); i++) {
        zk_worker_metrics m;
        cr_assert_eq(zk_runtime_worker_metrics(rt, i, &m), 0);
        forced += m.budget_yields;
    }
    cr_assert_geq(forced, 700);
#if !ZK_TEST_MT
    /* On one thread, each of those yields gave the other task a turn (on
     * two workers the tasks may run side by side instead). */
    cr_assert_geq(atomic_load(&p.other_runs), 100);
#endif
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */
/* numbers                                                                */
/* ---------------------------------------------------------------------- */

#define MILLION 1000000

static int64_t million_futures_root(void *arg) {
    (void)arg;
    zk_task **h = malloc(MILLION * sizeof *h);
    cr_assert_not_null(h);
    for (int i = 0; i < MILLION; i++) {
        countdown c = {{&countdown_ops}, i % 3, 1, NULL};
        cr_assert_eq(zk_spawn_future(NULL, &c.base, sizeof c, &h[i]), 0);
    }
#if !ZK_TEST_MT /* workers finish tasks while this one spawns */
    cr_assert_eq(zk_runtime_live_tasks(zk_runtime_current()), MILLION + 1);
#endif
    int64_t sum = zk_test_join_all(h, MILLION);
    free(h);
    return sum;
}

ZK_TEST(task, one_million_future_tasks) {
    cr_assert_eq(zk_test_run(million_futures_root, NULL), MILLION);
}

static int64_t one(void *arg) {
    (void)arg;
    return 1;
}

static int64_t million_coroutines_root(void *arg) {
    (void)arg;
    enum { WAVE = 10000 };
    static zk_task *h[WAVE];
    int64_t sum = 0;
    for (int wave = 0; wave < MILLION / WAVE; wave++) {
        for (int i = 0; i < WAVE; i++)
            cr_assert_eq(zk_spawn(one, NULL, &h[i]), 0);
        sum += zk_test_join_all(h, WAVE);
    }
    return sum;
}

ZK_TEST(task, one_million_coroutine_tasks_in_waves) {
    cr_assert_eq(zk_test_run(million_coroutines_root, NULL), MILLION);
}

/* 100,000 coroutines parked at once, each with its own waker slot. Under
 * ThreadSanitizer each coroutine also carries a TSan fiber whose state
 * costs memory mappings of its own, and 100,000 of them exceed a default
 * vm.max_map_count: that build checks 10,000. */
#if defined(ZK_TEST_TSAN)
#define PARKED 10000
#else
#define PARKED 100000
#endif

typedef struct lot {
    bool open;
    atomic_int parked;
    zk_waker wakers[PARKED];
} lot;

typedef struct lot_wait {
    zk_future base;
    lot *l;
    int slot;
} lot_wait;

static zk_poll lot_wait_poll(zk_future *f, zk_context *cx, int64_t *out) {
    lot_wait *w = (lot_wait *)f;
    if (w->l->open) {
        *out = w->slot;
        return ZK_READY;
    }
    if (zk_waker_is_empty(&w->l->wakers[w->slot])) {
        w->l->wakers[w->slot] = zk_waker_clone(zk_context_waker(cx));
        atomic_fetch_add(&w->l->parked, 1);
    }
    return ZK_PENDING;
}
static const zk_future_ops lot_wait_ops = {lot_wait_poll, NULL};

static lot *the_lot;
static int64_t parks(void *arg) {
    lot_wait w = {{&lot_wait_ops}, the_lot, (int)(intptr_t)arg};
    return zk_await(&w.base) == (intptr_t)arg;
}

static int64_t parked_root(void *arg) {
    (void)arg;
    zk_task **h = malloc(PARKED * sizeof *h);
    for (intptr_t i = 0; i < PARKED; i++)
        cr_assert_eq(zk_spawn(parks, (void *)i, &h[i]), 0, "spawn %ld",
                     (long)i);
    while (atomic_load(&the_lot->parked) < PARKED)
        zk_yield();
    cr_assert_eq(zk_runtime_live_tasks(zk_runtime_current()), PARKED + 1);
    the_lot->open = true;
    for (int i = 0; i < PARKED; i++)
        zk_waker_wake(&the_lot->wakers[i]);
    int64_t ok = zk_test_join_all(h, PARKED);
    free(h);
    return ok;
}

ZK_TEST(task, one_hundred_thousand_parked_coroutines) {
    the_lot = calloc(1, sizeof *the_lot);
    cr_assert_eq(zk_test_run(parked_root, NULL), PARKED);
    free(the_lot);
}
