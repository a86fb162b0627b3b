/* test_blocking.c - the blocking pool: running calls off the workers,
 * elastic threads (bound, keep-alive), abort, shutdown and its timeout. */
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

ZK_SUITE(blocking);

static zk_runtime *runtime_with(size_t threads, int64_t keep_alive_ns,
                                int64_t shutdown_timeout_ns) {
    zk_builder *b = zk_test_builder();
    zk_builder_set_blocking_threads(b, threads);
    zk_builder_set_blocking_keep_alive(b, keep_alive_ns);
    zk_builder_set_shutdown_timeout(b, shutdown_timeout_ns);
    zk_runtime *rt = NULL;
    int rc = zk_builder_build(b, &rt);
    zk_builder_free(b);
    cr_assert_eq(rc, 0, "build: %s", zk_strerror(rc));
    return rt;
}

/* A latch blocking calls wait on (a plain condition variable: these are
 * blocking calls, they may block their thread). */
typedef struct latch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    int entered;
} latch;

static void latch_init(latch *l) {
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->open = false;
    l->entered = 0;
}

static void latch_open(latch *l) {
    pthread_mutex_lock(&l->lock);
    l->open = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static int latch_entered(latch *l) {
    pthread_mutex_lock(&l->lock);
    int n = l->entered;
    pthread_mutex_unlock(&l->lock);
    return n;
}

static int64_t waits_on_latch(void *arg) {
    latch *l = arg;
    pthread_mutex_lock(&l->lock);
    l->entered++;
    while (!l->open)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
    return 1;
}

static void blocking_metrics(zk_runtime *rt, zk_runtime_metrics *m) {
    cr_assert_eq(zk_runtime_metrics_get(rt, m), 0);
}

/* ---------------------------------------------------------------------- */

typedef struct where {
    pthread_t worker, blocking;
    zk_runtime *rt_inside;
    int64_t await_rc;
    int64_t child_result;
} where;

static int64_t child_task(void *arg) {
    (void)arg;
    return 99;
}

static int64_t blocking_body(void *arg) {
    where *w = arg;
    w->blocking = zk_test_thread();
    w->rt_inside = zk_runtime_current();
    zk_ready_future f = zk_ready(1);
    w->await_rc = zk_await(&f.base);
    /* Spawning and joining from a blocking thread. */
    zk_task *h;
    if (zk_spawn(child_task, NULL, &h) == 0)
        zk_task_join(&h, &w->child_result);
    return 123;
}

static int64_t blocking_root(void *arg) {
    where *w = arg;
    w->worker = zk_test_thread();
    zk_task *h;
    cr_assert_eq(zk_spawn_blocking(NULL, blocking_body, w, &h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    return r;
}

ZK_TEST(blocking, runs_off_the_workers_and_is_joined_like_a_task) {
    where w;
    memset(&w, 0, sizeof w);
    zk_runtime *rt = zk_test_runtime();
    int64_t r = 0;
    cr_assert_eq(zk_block_on(rt, blocking_root, &w, &r), 0);
    cr_assert_eq(r, 123);
    cr_assert(!pthread_equal(w.worker, w.blocking));
    cr_assert_eq(w.rt_inside, rt);
    cr_assert_eq(w.await_rc, -EPERM, "a blocking call is not a task");
    cr_assert_eq(w.child_result, 99);
    zk_runtime_metrics m;
    blocking_metrics(rt, &m);
    cr_assert_eq(m.blocking_threads_started, 1);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

ZK_TEST(blocking, a_plain_thread_spawns_and_joins) {
    zk_runtime *rt = zk_test_runtime();
    zk_task *h;
    cr_assert_eq(zk_spawn_blocking(rt, child_task, NULL, &h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 99);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

ZK_TEST(blocking, bad_input) {
    zk_task *h = NULL;
    cr_assert_eq(zk_spawn_blocking(NULL, child_task, NULL, &h), -EPERM);
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_spawn_blocking(rt, NULL, NULL, &h), -EINVAL);
    cr_assert_null(h);
    cr_assert_eq(zk_runtime_free(rt), 0);
    zk_builder *b = zk_builder_new();
    zk_runtime *bad = NULL;
    zk_builder_set_blocking_threads(b, 0);
    cr_assert_eq(zk_builder_build(b, &bad), -EINVAL);
    zk_builder_set_blocking_threads(b, ZK_BLOCKING_THREADS_MAX + 1);
    cr_assert_eq(zk_builder_build(b, &bad), -EINVAL);
    zk_builder_set_blocking_threads(b, 4);
    zk_builder_set_blocking_keep_alive(b, -1);
    cr_assert_eq(zk_builder_build(b, &bad), -EINVAL);
    zk_builder_set_blocking_keep_alive(b, ZK_BLOCKING_KEEP_ALIVE_MAX_NS + 1);
    cr_assert_eq(zk_builder_build(b, &bad), -EINVAL);
    cr_assert_null(bad);
    zk_builder_free(b);
}

/* ---------------------------------------------------------------------- */

ZK_TEST(blocking, threads_start_on_demand_up_to_the_bound) {
    latch l;
    latch_init(&l);
    zk_runtime *rt = runtime_with(3, ZK_BLOCKING_KEEP_ALIVE_DEFAULT_NS, -1);
    zk_task *h[6];
    for (int i = 0; i < 6; i++)
        cr_assert_eq(zk_spawn_blocking(rt, waits_on_latch, &l, &h[i]), 0);
    while (latch_entered(&l) < 3)
        sched_yield();
    zk_runtime_metrics m;
    blocking_metrics(rt, &m);
    cr_assert_eq(m.blocking_threads, 3, "three threads at most");
    cr_assert_eq(m.blocking_queue_depth, 3, "the rest wait their turn");
    cr_assert_eq(latch_entered(&l), 3);
    latch_open(&l);
    cr_assert_eq(zk_test_join_all(h, 6), 6);
    blocking_metrics(rt, &m);
    cr_assert_eq(m.blocking_threads_started, 3, "threads were reused");
    cr_assert_eq(zk_runtime_free(rt), 0);
}

ZK_TEST(blocking, idle_threads_retire_after_the_keep_alive) {
    zk_runtime *rt = runtime_with(8, 20 * 1000 * 1000, -1); /* 20 ms */
    latch l;
    latch_init(&l);
    zk_task *h[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(zk_spawn_blocking(rt, waits_on_latch, &l, &h[i]), 0);
    while (latch_entered(&l) < 4)
        sched_yield();
    latch_open(&l);
    cr_assert_eq(zk_test_join_all(h, 4), 4);
    zk_runtime_metrics m;
    /* Wait for the event being tested: the idle threads exiting. */
    do {
        zk_test_real_sleep(ZK_MS(1));
        blocking_metrics(rt, &m);
    } while (m.blocking_threads > 0);
    cr_assert_eq(m.blocking_threads_started, 4);
    cr_assert_eq(m.blocking_threads_retired, 4);
    cr_assert_eq(m.blocking_idle_threads, 0);
    /* The pool starts threads again when needed. */
    zk_task *again;
    cr_assert_eq(zk_spawn_blocking(rt, child_task, NULL, &again), 0);
    cr_assert_eq(zk_test_join_all(&again, 1), 99);
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */

static atomic_int second_ran;

static int64_t marks_that_it_ran(void *arg) {
    (void)arg;
    atomic_store(&second_ran, 1);
    return 5;
}

ZK_TEST(blocking, abort_before_start_means_it_never_runs) {
    atomic_store(&second_ran, 0);
    latch l;
    latch_init(&l);
    zk_runtime *rt = runtime_with(1, ZK_BLOCKING_KEEP_ALIVE_DEFAULT_NS, -1);
    zk_task *first, *second;
    cr_assert_eq(zk_spawn_blocking(rt, waits_on_latch, &l, &first), 0);
    while (latch_entered(&l) < 1)
        sched_yield();
    cr_assert_eq(zk_spawn_blocking(rt, marks_that_it_ran, NULL, &second), 0);
    cr_assert_eq(zk_task_abort(second), 0);
    cr_assert_eq(zk_task_abort(first), 0, "running: registered");
    latch_open(&l);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&second, &r), -ECANCELED);
    cr_assert_eq(r, -ECANCELED);
    cr_assert_eq(atomic_load(&second_ran), 0);
    cr_assert_eq(zk_task_join(&first, &r), -ECANCELED,
                 "aborted while running: reported as cancelled");
    cr_assert_eq(r, 1, "but it ran to its end");
    cr_assert_eq(zk_runtime_free(rt), 0);
}

/* ---------------------------------------------------------------------- */

typedef struct slow {
    atomic_int release, started, done;
} slow;

static int64_t slow_call(void *arg) {
    slow *s = arg;
    atomic_store(&s->started, 1);
    while (!atomic_load(&s->release))
        sched_yield();
    atomic_store(&s->done, 1);
    return 0;
}

static void *releases_later(void *arg) {
    slow *s = arg;
    /* Long enough that shutdown is already waiting; the assertion below
     * does not depend on it. */
    zk_test_real_sleep(ZK_MS(50));
    atomic_store(&s->release, 1);
    return NULL;
}

ZK_TEST(blocking, shutdown_waits_for_running_calls) {
    slow s;
    memset(&s, 0, sizeof s);
    zk_runtime *rt = zk_test_runtime();
    zk_task *h;
    cr_assert_eq(zk_spawn_blocking(rt, slow_call, &s, &h), 0);
    while (!atomic_load(&s.started))
        sched_yield();
    pthread_t th;
    pthread_create(&th, NULL, releases_later, &s);
    cr_assert_eq(zk_runtime_free(rt), 0);
    cr_assert_eq(atomic_load(&s.done), 1, "free returned after the call");
    pthread_join(th, NULL);
    cr_assert_eq(zk_task_join(&h, NULL), 0);
}

/* Threads of this process named like the blocking pool's. */
static int count_blocking_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], name[32] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* exited meanwhile */
        if (fgets(name, sizeof name, f) &&
            strncmp(name, "zokio-blocking", 14) == 0)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

ZK_TEST(blocking, shutdown_timeout_leaves_a_stuck_call_running) {
    slow s;
    memset(&s, 0, sizeof s);
    zk_runtime *rt = runtime_with(4, ZK_BLOCKING_KEEP_ALIVE_DEFAULT_NS,
                                  20 * 1000 * 1000); /* 20 ms */
    zk_task *h;
    cr_assert_eq(zk_spawn_blocking(rt, slow_call, &s, &h), 0);
    while (!atomic_load(&s.started))
        sched_yield();
    cr_assert_eq(zk_runtime_free(rt), 0);
    cr_assert_eq(atomic_load(&s.done), 0, "free did not wait past 20 ms");
    /* The call finishes on its own, with the runtime gone. */
    atomic_store(&s.release, 1);
    int64_t r = -1;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 0);
    while (count_blocking_threads() > 0) /* its thread exits */
        sched_yield();
}

/* ---------------------------------------------------------------------- */

static atomic_int spawn_rc_in_shutdown;

static int64_t spawns_blocking_when_cancelled(void *arg) {
    zk_gate_wait w = zk_gate_waiter(arg, NULL);
    zk_await(&w.base); /* returns -ECANCELED at shutdown */
    zk_task *h = NULL;
    atomic_store(&spawn_rc_in_shutdown,
                 zk_spawn_blocking(NULL, child_task, NULL, &h));
    return 0;
}

ZK_TEST(blocking, spawn_during_shutdown_is_refused) {
    zk_gate g;
    zk_gate_init(&g);
    atomic_store(&spawn_rc_in_shutdown, 0);
    zk_runtime *rt = zk_test_runtime();
    zk_task *h;
    cr_assert_eq(zk_runtime_spawn(rt, spawns_blocking_when_cancelled, &g, &h),
                 0);
#if ZK_TEST_MT
    while (zk_gate_polls(&g) == 0)
        sched_yield();
#else
    cr_assert_eq(zk_block_on(rt, child_task, NULL, NULL), 0);
#endif
    cr_assert_eq(zk_runtime_free(rt), 0);
    cr_assert_eq(atomic_load(&spawn_rc_in_shutdown), -ESHUTDOWN);
    zk_task_detach(&h);
    zk_gate_destroy(&g);
}

#if !defined(ZK_TEST_ASAN) && !defined(ZK_TEST_TSAN) &&                        \
    !defined(ZK_TEST_EMULATED)
/* (The sanitizers reserve terabytes of shadow memory, and under qemu-user
 * the limit would apply to the emulator: no address-space limit there.) */
#include <sys/resource.h>

/* No address space for a pool thread's stack while no thread runs: the
 * spawn fails with -EAGAIN and nothing is queued (a call queued for a
 * thread that never comes would leave its join waiting forever). With
 * room again, the pool works. */
ZK_TEST(blocking, no_thread_can_start_and_none_runs_spawn_fails_with_eagain) {
    zk_runtime *rt = zk_test_runtime();
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
    /* A thread's stack takes megabytes; leave less than one. */
    struct rlimit tight = {(rlim_t)zk_test_vm_size_bytes() + 512 * 1024,
                           old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_AS, &tight), 0);
    zk_task *h = NULL;
    int rc = zk_spawn_blocking(rt, child_task, NULL, &h);
    cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
    cr_assert_eq(rc, -EAGAIN, "rc %d", rc);
    cr_assert_null(h);
    zk_runtime_metrics m;
    blocking_metrics(rt, &m);
    cr_assert_eq(m.blocking_queue_depth, 0, "nothing left queued");
    cr_assert_eq(zk_spawn_blocking(rt, child_task, NULL, &h), 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 99);
    cr_assert_eq(zk_runtime_free(rt), 0);
}
#endif
