/* test_runtime.c - the builder, block_on, shutdown, idle CPU use. */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

ZK_SUITE(runtime);

/* ---------------------------------------------------------------------- */
/* builder                                                                */
/* ---------------------------------------------------------------------- */

static int build_with(void (*tweak)(zk_builder *)) {
    zk_builder *b = zk_builder_new();
    cr_assert_not_null(b);
    tweak(b);
    zk_runtime *rt = NULL;
    int rc = zk_builder_build(b, &rt);
    zk_builder_free(b);
    if (rc == 0) {
        cr_assert_not_null(rt);
        cr_assert_eq(zk_runtime_free(rt), 0);
    } else {
        cr_assert_null(rt, "a failed build creates nothing");
    }
    return rc;
}

static void tw_none(zk_builder *b) {
    (void)b;
}
static void tw_kind_bad(zk_builder *b) {
    zk_builder_set_kind(b, 77);
}
static void tw_workers_zero(zk_builder *b) {
    zk_builder_set_workers(b, 0);
}
static void tw_workers_absurd(zk_builder *b) {
    zk_builder_set_kind(b, ZK_RUNTIME_MULTI_THREAD);
    zk_builder_set_workers(b, 1000000);
}
static void tw_ct_two_workers(zk_builder *b) {
    zk_builder_set_kind(b, ZK_RUNTIME_CURRENT_THREAD);
    zk_builder_set_workers(b, 2);
}
static void tw_mt_three_workers(zk_builder *b) {
    zk_builder_set_kind(b, ZK_RUNTIME_MULTI_THREAD);
    zk_builder_set_workers(b, 3);
}
static void tw_stack_zero(zk_builder *b) {
    zk_builder_set_stack_size(b, 0);
}
static void tw_stack_small(zk_builder *b) {
    zk_builder_set_stack_size(b, ZK_STACK_MIN - 1);
}
static void tw_stack_absurd(zk_builder *b) {
    zk_builder_set_stack_size(b, (size_t)1 << 40);
}
static void tw_name_null(zk_builder *b) {
    zk_builder_set_thread_name(b, NULL);
}
static void tw_homes_above_workers(zk_builder *b) {
    zk_builder_set_kind(b, ZK_RUNTIME_MULTI_THREAD);
    zk_builder_set_workers(b, 2);
    zk_builder_set_io_homes(b, 3);
}
static void tw_homes_every_worker(zk_builder *b) {
    zk_builder_set_kind(b, ZK_RUNTIME_MULTI_THREAD);
    zk_builder_set_workers(b, 3);
    zk_builder_set_io_homes(b, 3);
}
static void tw_good_ct(zk_builder *b) {
    zk_builder_set_kind(b, ZK_RUNTIME_CURRENT_THREAD);
    zk_builder_set_workers(b, 1);
    zk_builder_set_thread_name(b, "a-very-long-thread-name-cut-at-15");
    zk_builder_set_stack_size(b, 100000); /* rounded up to pages */
}

ZK_TEST(runtime, builder_rejects_bad_configurations) {
    cr_assert_eq(build_with(tw_none), 0, "the defaults (multi-thread)");
    cr_assert_eq(build_with(tw_good_ct), 0);
    cr_assert_eq(build_with(tw_mt_three_workers), 0);
    cr_assert_eq(build_with(tw_kind_bad), -EINVAL);
    cr_assert_eq(build_with(tw_workers_zero), -EINVAL);
    cr_assert_eq(build_with(tw_workers_absurd), -EINVAL);
    cr_assert_eq(build_with(tw_ct_two_workers), -EINVAL);
    cr_assert_eq(build_with(tw_stack_zero), -EINVAL);
    cr_assert_eq(build_with(tw_stack_small), -EINVAL);
    cr_assert_eq(build_with(tw_stack_absurd), -EINVAL);
    cr_assert_eq(build_with(tw_name_null), -EINVAL);
    cr_assert_eq(build_with(tw_homes_above_workers), -EINVAL);
    cr_assert_eq(build_with(tw_homes_every_worker), 0);
    zk_runtime *rt;
    cr_assert_eq(zk_builder_build(NULL, &rt), -EINVAL);
    zk_builder *b = zk_builder_new();
    cr_assert_eq(zk_builder_build(b, NULL), -EINVAL);
    zk_builder_free(b);
    zk_builder_free(NULL);
    zk_builder_set_kind(NULL, ZK_RUNTIME_CURRENT_THREAD); /* no-ops */
    zk_builder_set_workers(NULL, 1);
    zk_builder_set_io_homes(NULL, 1);
    cr_assert_eq(zk_runtime_new(99, &rt), -EINVAL);
    cr_assert_eq(zk_runtime_free(NULL), 0);
}

ZK_TEST(runtime, accessors) {
    zk_runtime *rt = zk_test_runtime();
#if ZK_TEST_MT
    cr_assert_eq(zk_runtime_get_kind(rt), ZK_RUNTIME_MULTI_THREAD);
    cr_assert_eq(zk_runtime_workers(rt), 2);
#else
    cr_assert_eq(zk_runtime_get_kind(rt), ZK_RUNTIME_CURRENT_THREAD);
    cr_assert_eq(zk_runtime_workers(rt), 1);
#endif
    cr_assert_eq(zk_runtime_live_tasks(rt), 0);
    cr_assert_eq(zk_runtime_get_kind(NULL), 0);
    cr_assert_eq(zk_runtime_workers(NULL), 0);
    cr_assert_eq(zk_runtime_live_tasks(NULL), 0);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */
/* block_on                                                               */
/* ---------------------------------------------------------------------- */

static int64_t nested_block_on(void *arg) {
    zk_runtime *other = arg;
    int64_t r;
    return zk_block_on(other, nested_block_on, other, &r);
}

static int64_t frees_own_runtime(void *arg) {
    (void)arg;
    return zk_runtime_free(zk_runtime_current());
}

ZK_TEST(runtime, block_on_rejects_misuse) {
    zk_runtime *rt = zk_test_runtime();
    int64_t r = 0;
    cr_assert_eq(zk_block_on(NULL, nested_block_on, NULL, &r), -EINVAL);
    cr_assert_eq(zk_block_on(rt, NULL, NULL, &r), -EINVAL);
    cr_assert_eq(zk_block_on_future(NULL, NULL, 0, &r), -EINVAL);
    cr_assert_eq(zk_block_on_future(rt, NULL, 16, &r), -EINVAL);
    zk_runtime *other = zk_test_runtime();
    cr_assert_eq(zk_block_on(rt, nested_block_on, other, &r), 0);
    cr_assert_eq(r, -EPERM, "block_on inside a task is refused");
    cr_assert_eq(zk_block_on(rt, frees_own_runtime, NULL, &r), 0);
    cr_assert_eq(r, -EBUSY, "a runtime cannot free itself from inside");
    cr_assert_eq(zk_runtime_free(other), 0);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

static int64_t noop(void *arg) {
    (void)arg;
    return 0;
}

/* One thread at a time drives a current-thread runtime. */
#if !ZK_TEST_MT
typedef struct busy_probe {
    zk_runtime *rt;
    zk_gate gate;
    atomic_int inside;
    atomic_int other_rc;
} busy_probe;

static int64_t holds_the_driver(void *arg) {
    busy_probe *p = arg;
    atomic_store(&p->inside, 1);
    zk_gate_wait w = zk_gate_waiter(&p->gate, NULL);
    return zk_await(&w.base);
}

static void *second_driver(void *arg) {
    busy_probe *p = arg;
    while (!atomic_load(&p->inside))
        ;
    atomic_store(&p->other_rc, zk_block_on(p->rt, noop, NULL, NULL));
    int free_rc = zk_runtime_free(p->rt);
    zk_gate_open(&p->gate);
    return (void *)(intptr_t)free_rc;
}

ZK_TEST(runtime, a_second_driver_gets_ebusy) {
    busy_probe p;
    memset(&p, 0, sizeof p);
    zk_gate_init(&p.gate);
    p.rt = zk_test_runtime();
    pthread_t th;
    pthread_create(&th, NULL, second_driver, &p);
    int64_t r = 0;
    cr_assert_eq(zk_block_on(p.rt, holds_the_driver, &p, &r), 0);
    void *free_rc;
    pthread_join(th, &free_rc);
    cr_assert_eq(atomic_load(&p.other_rc), -EBUSY);
    cr_assert_eq((intptr_t)free_rc, -EBUSY, "no free while being driven");
    cr_assert_eq(r, 7);
    cr_assert_eq(zk_runtime_free(p.rt), 0);
    zk_gate_destroy(&p.gate);
}

static int64_t spawns_child_and_leaves(void *arg) {
    atomic_int *ran = arg;
    zk_task *h;
    cr_assert_eq(zk_spawn(noop, NULL, &h), 0);
    zk_task_detach(&h);
    atomic_fetch_add(ran, 1);
    return 0;
}

ZK_TEST(runtime, tasks_left_behind_run_at_the_next_block_on) {
    atomic_int ran = 0;
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_block_on(rt, spawns_child_and_leaves, &ran, NULL), 0);
    cr_assert_eq(zk_runtime_live_tasks(rt), 1, "the child waits its turn");
    cr_assert_eq(zk_block_on(rt, noop, NULL, NULL), 0);
    cr_assert_eq(zk_runtime_live_tasks(rt), 0, "it ran during the second");
    cr_assert_eq(zk_runtime_free(rt), 0);
}
#endif

static int64_t joins_given_handle(void *arg) {
    zk_task **h = arg;
    int64_t r = -1;
    int rc = zk_task_join(h, &r);
    return rc == 0 ? r : rc;
}

static int64_t forty_two(void *arg) {
    (void)arg;
    return 42;
}

ZK_TEST(runtime, spawn_from_a_plain_thread_onto_a_runtime) {
    zk_runtime *rt = zk_test_runtime();
    zk_task *h;
    cr_assert_eq(zk_runtime_spawn(rt, forty_two, NULL, &h), 0);
#if !ZK_TEST_MT /* multi-thread workers may have run it already */
    cr_assert_eq(zk_runtime_live_tasks(rt), 1);
    cr_assert_not(zk_task_is_finished(h), "nobody drives the runtime yet");
#endif
    int64_t r = -1;
    cr_assert_eq(zk_block_on(rt, joins_given_handle, &h, &r), 0);
    cr_assert_eq(r, 42);
    cr_assert_null(h);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */
/* shutdown                                                               */
/* ---------------------------------------------------------------------- */

typedef struct shutdown_probe {
    zk_gate gate;
    atomic_int drops;
    atomic_int cleaned;
    atomic_int spawn_rc;
} shutdown_probe;

static int64_t parked_then_cleans_up(void *arg) {
    shutdown_probe *p = arg;
    zk_gate_wait w = zk_gate_waiter(&p->gate, &p->drops);
    int64_t r = zk_await(&w.base);
    if (r == -ECANCELED && zk_task_cancelled()) {
        zk_task *h = NULL;
        int rc = zk_spawn(noop, NULL, &h);
        if (rc == 0)
            zk_task_detach(&h);
        /* Every cancelled task's spawn must fail: keep the first success. */
        int expect = 0;
        atomic_compare_exchange_strong(&p->spawn_rc, &expect, rc);
        if (rc == 0)
            atomic_store(&p->spawn_rc, 1);
        atomic_fetch_add(&p->cleaned, 1);
    }
    return r;
}

typedef struct pending_forever {
    zk_future base;
    atomic_int *drops;
} pending_forever;

static zk_poll pending_forever_poll(zk_future *f, zk_context *cx,
                                    int64_t *out) {
    (void)f;
    (void)cx;
    (void)out;
    return ZK_PENDING; /* and drops its waker: only shutdown can end it */
}
static void pending_forever_drop(zk_future *f) {
    atomic_fetch_add(((pending_forever *)f)->drops, 1);
}
static const zk_future_ops pending_forever_ops = {pending_forever_poll,
                                                  pending_forever_drop};

static int64_t leaves_parked_tasks(void *arg) {
    shutdown_probe *p = arg;
    zk_task *h;
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(zk_spawn(parked_then_cleans_up, p, &h), 0);
        zk_task_detach(&h);
        pending_forever f = {{&pending_forever_ops}, &p->drops};
        cr_assert_eq(zk_spawn_future(NULL, &f.base, sizeof f, &h), 0);
        zk_task_detach(&h);
    }
    while (zk_gate_polls(&p->gate) < 50)
        zk_yield();
    return 0;
}

ZK_TEST(runtime, shutdown_cancels_coroutines_and_drops_futures) {
    shutdown_probe p;
    memset(&p, 0, sizeof p);
    zk_gate_init(&p.gate);
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_block_on(rt, leaves_parked_tasks, &p, NULL), 0);
    cr_assert_eq(zk_runtime_live_tasks(rt), 100);
    cr_assert_eq(zk_runtime_free(rt), 0);
    cr_assert_eq(atomic_load(&p.cleaned), 50, "each coroutine cleaned up");
    cr_assert_eq(atomic_load(&p.drops), 100, "50 awaits + 50 future tasks");
    cr_assert_eq(atomic_load(&p.spawn_rc), -ESHUTDOWN);
    zk_gate_destroy(&p.gate);
}

/* A coroutine that waits for ever (until cancelled). */
static int64_t parks_forever(void *arg) {
    (void)arg;
    static atomic_int drops;
    pending_forever f = {{&pending_forever_ops}, &drops};
    return zk_await(&f.base);
}

typedef struct held_handles {
    zk_task *future, *coro;
} held_handles;

static int64_t keeps_handles(void *arg) {
    held_handles *h = arg;
    static atomic_int drops;
    pending_forever f = {{&pending_forever_ops}, &drops};
    cr_assert_eq(zk_spawn_future(NULL, &f.base, sizeof f, &h->future), 0);
    cr_assert_eq(zk_spawn(parks_forever, NULL, &h->coro), 0);
    zk_yield();
    return 0;
}

static int64_t quick(void *arg) {
    return (int64_t)(intptr_t)arg;
}

static int64_t joins_a_foreign_handle(void *arg) {
    zk_task **h = arg;
    int64_t r = 0;
    /* The last reference: the task's memory goes to this worker. */
    if (zk_task_join(h, &r) != -ECANCELED || r != -ECANCELED)
        return -1;
    /* New tasks take the recycled memory. */
    for (intptr_t i = 0; i < 200; i++) {
        zk_task *t;
        if (zk_spawn(quick, (void *)i, &t) != 0 || zk_task_join(&t, &r) != 0 ||
            r != i)
            return -2;
    }
    return 0;
}

/* Handles held across shutdown report their tasks cancelled. The last
 * handle of a coroutine task frees its memory wherever it is dropped, here
 * on a worker of another runtime, which recycles it. */
ZK_TEST(runtime, a_handle_held_across_shutdown_reports_cancelled) {
    held_handles h = {NULL, NULL};
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_block_on(rt, keeps_handles, &h, NULL), 0);
    cr_assert_eq(zk_runtime_free(rt), 0);
    cr_assert(zk_task_is_finished(h.future));
    cr_assert_eq(zk_task_abort(h.future), -EALREADY);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h.future, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    cr_assert(zk_task_is_finished(h.coro));
    zk_runtime *other = zk_test_runtime();
    r = 1;
    cr_assert_eq(zk_block_on(other, joins_a_foreign_handle, &h.coro, &r), 0);
    cr_assert_eq(r, 0);
    cr_assert_null(h.coro);
    cr_assert_eq(zk_runtime_free(other), 0);
}

/* A task frees a current-thread runtime, whose shutdown runs that
 * runtime's remaining tasks on the freeing thread, nested in the task: the
 * task must find its own runtime and worker again afterwards. */
static int64_t frees_a_current_thread_runtime(void *arg) {
    (void)arg;
    zk_runtime *mine = zk_runtime_current();
    uint64_t me = zk_task_current_id();
    zk_runtime *inner;
    if (zk_runtime_new(ZK_RUNTIME_CURRENT_THREAD, &inner) != 0)
        return -1;
    zk_task *h;
    if (zk_runtime_spawn(inner, parks_forever, NULL, &h) != 0)
        return -2;
    if (zk_runtime_free(inner) != 0)
        return -3;
    int64_t r = 0;
    if (zk_task_join(&h, &r) != -ECANCELED)
        return -4;
    if (zk_runtime_current() != mine || zk_task_current_id() != me ||
        !zk_in_coroutine())
        return -5;
    /* Awaits, spawns and joins still work. */
    if (zk_yield() != 0)
        return -6;
    zk_task *t;
    if (zk_spawn(quick, (void *)(intptr_t)7, &t) != 0 ||
        zk_task_join(&t, &r) != 0 || r != 7)
        return -7;
    return 0;
}

ZK_TEST(runtime, a_task_freeing_a_current_thread_runtime_keeps_its_worker) {
    cr_assert_eq(zk_test_run(frees_a_current_thread_runtime, NULL), 0);
}

/* The future the stubborn task awaits last, on its stack: as a waiter
 * node of a primitive that outlives the runtime would be, it is still
 * pointed at after the task was abandoned. */
static pending_forever *volatile stubborn_future;

static zk_poll recorded_pending_poll(zk_future *f, zk_context *cx,
                                     int64_t *out) {
    stubborn_future = (pending_forever *)f;
    return pending_forever_poll(f, cx, out);
}
static const zk_future_ops recorded_pending_ops = {recorded_pending_poll,
                                                   pending_forever_drop};

static int64_t ignores_cancellation(void *arg) {
    (void)arg;
    for (;;) {
        pending_forever f = {{&recorded_pending_ops}, NULL};
        static atomic_int drops;
        f.drops = &drops;
        zk_await(&f.base); /* -ECANCELED, ignored */
    }
    return 0;
}

static int64_t spawns_stubborn(void *arg) {
    (void)arg;
    zk_spawn_opts o = {.name = "stubborn"};
    zk_task *h;
    cr_assert_eq(zk_spawn_ex(NULL, &o, ignores_cancellation, NULL, &h), 0);
    zk_task_detach(&h);
    zk_yield();
    return 0;
}

ZK_TEST(runtime, a_task_ignoring_cancellation_is_abandoned_at_shutdown) {
    /* The abandoned task's frames and stack are leaked: run it in a child
     * process so the leak check of this test stays meaningful, and read
     * its stderr. */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        zk_runtime *rt;
        zk_runtime_new(ZK_RUNTIME_CURRENT_THREAD, &rt);
        zk_block_on(rt, spawns_stubborn, NULL, NULL);
        int rc = zk_runtime_free(rt);
        /* The abandoned task's stack was leaked, not unmapped or handed
         * to another task: what still points into it may write there. */
        memset(stubborn_future, 0xab, sizeof *stubborn_future);
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    char buf[1024] = {0};
    size_t n = 0;
    ssize_t k;
    while ((k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d",
              status);
    cr_assert_not_null(strstr(buf, "abandoning task"), "stderr: %s", buf);
    cr_assert_not_null(strstr(buf, "\"stubborn\""), "stderr: %s", buf);
}

/* ---------------------------------------------------------------------- */
/* idle                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct idle_probe {
    zk_gate gate;
    atomic_int parked;
    double cpu_during_wait;
    double wall_during_wait;
} idle_probe;

/* Measures the whole process's CPU time while it waits: every worker must
 * be idle, not only the thread the waiting task ran on (on the
 * multi-thread runtime it may be resumed on another worker, whose clock is
 * another thread's). */
static int64_t waits_idle(void *arg) {
    idle_probe *p = arg;
    double c0 = zk_test_process_cpu_s();
    int64_t w0 = zk_test_wall_ns();
    zk_gate_wait w = zk_gate_waiter(&p->gate, NULL);
    zk_await(&w.base);
    p->cpu_during_wait = zk_test_process_cpu_s() - c0;
    p->wall_during_wait = (double)(zk_test_wall_ns() - w0) / 1e9;
    return 0;
}

static void *opens_later(void *arg) {
    idle_probe *p = arg;
    while (zk_gate_polls(&p->gate) == 0) /* parked once it polled */
        sched_yield();
    /* The idle period being measured, not a wait for something to
     * happen. */
    zk_test_real_sleep(ZK_MS(300));
    zk_gate_open(&p->gate);
    return NULL;
}

ZK_TEST(runtime, an_idle_runtime_uses_no_cpu) {
    idle_probe p;
    memset(&p, 0, sizeof p);
    zk_gate_init(&p.gate);
    zk_runtime *rt = zk_test_runtime();
    pthread_t th;
    pthread_create(&th, NULL, opens_later, &p);
    cr_assert_eq(zk_block_on(rt, waits_idle, &p, NULL), 0);
    pthread_join(th, NULL);
    cr_assert_geq(p.wall_during_wait, 0.3);
    /* A spinning worker would burn about 0.3 s; parked ones nearly 0. */
    cr_assert_lt(p.cpu_during_wait, 0.05, "workers used %.3f s of CPU",
                 p.cpu_during_wait);
    cr_assert_eq(zk_runtime_free(rt), 0);
    zk_gate_destroy(&p.gate);
}

/* A plain thread wakes the root task, which finishes at once, and the
 * runtime is freed while that thread may still be inside the wake's
 * unpark: zk_runtime_free() waits for it (AddressSanitizer and TSan see any
 * touch of the freed runtime). */
typedef struct last_wake {
    zk_gate gate;
    atomic_int waiting;
} last_wake;

static int64_t waits_for_gate(void *arg) {
    last_wake *lw = arg;
    zk_gate_wait w = zk_gate_waiter(&lw->gate, NULL);
    atomic_store(&lw->waiting, 1);
    return zk_await(&w.base);
}

static void *opens_gate(void *arg) {
    last_wake *lw = arg;
    while (!atomic_load(&lw->waiting) || zk_gate_polls(&lw->gate) == 0)
        sched_yield();
    zk_gate_open(&lw->gate);
    return NULL;
}

ZK_TEST(runtime, freed_right_after_a_remote_wake_finished_its_last_task) {
    for (int round = 0; round < 200; round++) {
        last_wake lw;
        zk_gate_init(&lw.gate);
        atomic_init(&lw.waiting, 0);
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, opens_gate, &lw), 0);
        cr_assert_eq(zk_test_run(waits_for_gate, &lw), 7);
        pthread_join(t, NULL);
        zk_gate_destroy(&lw.gate);
    }
}
