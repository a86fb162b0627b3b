/*
 * helpers.h - shared by every test file: timeouts scaled for sanitizer
 * builds, a leak check at the end of each test, and small futures that
 * tests compose.
 */
#ifndef ZK_TEST_HELPERS_H
#define ZK_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zokio.h>

#ifndef ZK_TEST_TIMEOUT_SCALE
#define ZK_TEST_TIMEOUT_SCALE 1
#endif
/* Seconds a test may take before Criterion kills it. */
#define ZK_TEST_TIMEOUT (30.0 * ZK_TEST_TIMEOUT_SCALE)

/* A bound on waits that only a broken implementation would exceed: the
 * test then fails with a message instead of hanging until its timeout. */
#define ZK_TEST_GUARD ZK_SEC(10 * ZK_TEST_TIMEOUT_SCALE)

#if defined(__SANITIZE_ADDRESS__)
#define ZK_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZK_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ZK_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZK_TEST_TSAN 1
#endif
#endif

#if defined(ZK_TEST_ASAN)
#include <sanitizer/lsan_interface.h>
/* Every test ends by proving nothing leaked (tasks, stacks, runtime). */
static inline void zk_test_leak_check(void) {
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,
                 "LeakSanitizer found leaks (report above)");
}
#else
static inline void zk_test_leak_check(void) {}
#endif

#define ZK_SUITE(name) TestSuite(name, .timeout = ZK_TEST_TIMEOUT)

/* A Criterion test whose body is followed by the leak check (Criterion
 * does not fail a test for an assertion in its teardown). */
#define ZK_TEST(suite, name)                                                   \
    static void suite##_##name##_body(void);                                   \
    Test(suite, name) {                                                        \
        suite##_##name##_body();                                               \
        zk_test_leak_check();                                                  \
    }                                                                          \
    static void suite##_##name##_body(void)

/* Every test file is built twice: ZK_TEST_MT 0 runs it on a current-thread
 * runtime, 1 on a multi-thread runtime with two workers. */
#ifndef ZK_TEST_MT
#define ZK_TEST_MT 0
#endif

/* A builder set to the runtime kind under test. */
static inline zk_builder *zk_test_builder(void) {
    zk_builder *b = zk_builder_new();
    cr_assert_not_null(b);
#if ZK_TEST_MT
    zk_builder_set_kind(b, ZK_RUNTIME_MULTI_THREAD);
    zk_builder_set_workers(b, 2);
#else
    zk_builder_set_kind(b, ZK_RUNTIME_CURRENT_THREAD);
#endif
    return b;
}

/* Builds the runtime kind under test or fails the test. */
static inline zk_runtime *zk_test_runtime(void) {
    zk_runtime *rt = NULL;
    zk_builder *b = zk_test_builder();
    int rc = zk_builder_build(b, &rt);
    zk_builder_free(b);
    cr_assert_eq(rc, 0, "zk_builder_build: %s", zk_strerror(rc));
    return rt;
}

/* Blocks the calling thread for `ns` of real time: for threads outside a
 * runtime that make an idle period, or poll a condition a test cannot
 * wait on. */
static inline void zk_test_real_sleep(int64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

/* The process's virtual memory size in bytes (0 if unknown): for tests
 * that limit the address space (RLIMIT_AS) a little above it. */
static inline size_t zk_test_vm_size_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (f == NULL || fscanf(f, "%ld", &pages) != 1)
        pages = 0;
    if (f)
        fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Runs fn(arg) as the root task of `rt`, frees the runtime and returns
 * the root's result. */
static inline int64_t zk_test_run_on(zk_runtime *rt, zk_task_fn fn, void *arg) {
    int64_t result = 0;
    int rc = zk_block_on(rt, fn, arg, &result);
    cr_assert_eq(rc, 0, "zk_block_on: %s", zk_strerror(rc));
    cr_assert_eq(zk_runtime_free(rt), 0);
    return result;
}

/* Runs fn(arg) as the root task of a fresh runtime, frees the runtime and
 * returns the root's result. */
static inline int64_t zk_test_run(zk_task_fn fn, void *arg) {
    return zk_test_run_on(zk_test_runtime(), fn, arg);
}

/* zk_test_run() with the runtime's clock paused where that is possible
 * (a current-thread runtime), so that deadlines pass without waiting. */
static inline int64_t zk_test_run_paused(zk_task_fn fn, void *arg) {
    zk_runtime *rt = zk_test_runtime();
#if !ZK_TEST_MT
    cr_assert_eq(zk_time_pause(rt), 0);
#endif
    return zk_test_run_on(rt, fn, arg);
}

/* A future around `inner` that calls on_queued(ctx) the first time
 * `inner` is pending (it then waits in a primitive's queue): lets a test
 * wait until a task is really queued, on any runtime, without sleeping. */
typedef struct zk_test_probe {
    zk_future base;
    zk_future *inner;
    void (*on_queued)(void *ctx);
    void *ctx;
    bool told;
} zk_test_probe;

static inline zk_poll zk_test_probe_poll(zk_future *f, zk_context *cx,
                                         int64_t *out) {
    zk_test_probe *p = (zk_test_probe *)f;
    zk_poll r = zk_future_poll(p->inner, cx, out);
    if (r == ZK_PENDING && !p->told) {
        p->told = true;
        p->on_queued(p->ctx);
    }
    return r;
}

static inline void zk_test_probe_drop(zk_future *f) {
    zk_future_drop(((zk_test_probe *)f)->inner);
}

static const zk_future_ops zk_test_probe_ops = {zk_test_probe_poll,
                                                zk_test_probe_drop};

/* A probe around `inner` that calls on_queued(ctx). */
static inline zk_test_probe
zk_test_probe_of(zk_future *inner, void (*on_queued)(void *ctx), void *ctx) {
    zk_test_probe p = {{&zk_test_probe_ops}, inner, on_queued, ctx, false};
    return p;
}

/* Joins h[0..n), asserting each join succeeds, and returns the sum of the
 * tasks' results. */
static inline int64_t zk_test_join_all(zk_task **h, int n) {
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        int64_t r = 0;
        int rc = zk_task_join(&h[i], &r);
        cr_assert_eq(rc, 0, "join %d: %s", i, zk_strerror(rc));
        sum += r;
    }
    return sum;
}

/* Polls `f` once, which registers or submits what it waits for (a timer,
 * an I/O operation holding its handle), sets `flag`, then awaits `f`. A
 * task that aborts this one, or closes what it waits on, after seeing the
 * flag (zk_test_wait_flag) does so while the wait is registered, never
 * before it began. */
static inline int64_t zk_test_await_after_flag(zk_future *f, atomic_int *flag) {
    zk_waker noop = zk_waker_noop();
    zk_context cx;
    zk_context_init(&cx, &noop);
    int64_t out;
    cr_assert_eq(zk_future_poll(f, &cx, &out), ZK_PENDING);
    atomic_store(flag, 1);
    return zk_await(f);
}

/* Polls `f` once with a waker that does nothing, then drops it: returns
 * its output if it was ready, 1 if it was pending (none of the futures
 * tested with it has 1 for an output). For a future polled where it may
 * not wait, such as off its runtime's workers. */
static inline int64_t zk_test_poll_once_and_drop(zk_future *f) {
    zk_waker noop = zk_waker_noop();
    zk_context cx;
    zk_context_init(&cx, &noop);
    int64_t out = 0;
    zk_poll p = zk_future_poll(f, &cx, &out);
    zk_future_drop(f);
    return p == ZK_READY ? out : 1;
}

/* Waits (parked, on the timer) until `flag` is set by another task. */
static inline void zk_test_wait_flag(atomic_int *flag) {
    while (!atomic_load(flag))
        zk_sleep(ZK_MS(1));
}

/* pthread_self() and errno's address are "const" to the compiler, which
 * may reuse a value read before an await after it: read them through a
 * function it cannot see through. */
static __attribute__((noinline, unused)) pthread_t zk_test_thread(void) {
    pthread_t t = pthread_self();
    __asm__ volatile("" ::: "memory");
    return t;
}

static __attribute__((noinline, unused)) void zk_test_set_errno(int e) {
    errno = e;
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline, unused)) int zk_test_errno(void) {
    int e = errno;
    __asm__ volatile("" ::: "memory");
    return e;
}

/* The real monotonic clock in nanoseconds (not a runtime's paused one),
 * for one-sided bounds on how long something took. */
static inline int64_t zk_test_wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The CPU time of the whole process (all threads), in seconds. */
static inline double zk_test_process_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- polling by hand: a waker that counts its wakes (it lives as long
 * as the test), and one poll with it ---- */
typedef struct counter_waker {
    atomic_int wakes;
} counter_waker;

static zk_waker cw_clone(const void *d);
static inline void cw_wake(const void *d) {
    atomic_fetch_add(&((counter_waker *)d)->wakes, 1);
}
static inline void cw_drop(const void *d) {
    (void)d;
}
static const zk_waker_ops cw_ops = {cw_clone, cw_wake, cw_wake, cw_drop};
static inline zk_waker cw_clone(const void *d) {
    return zk_waker_new(d, &cw_ops);
}

/* Polls once; returns 1 and the output if ready, 0 if pending. */
static inline int poll1(zk_future *f, counter_waker *w, int64_t *out) {
    zk_waker wk = zk_waker_new(w, &cw_ops);
    zk_context cx;
    zk_context_init(&cx, &wk);
    *out = -12345;
    return zk_future_poll(f, &cx, out) == ZK_READY;
}

/* ---- a "gate": a future that is pending until opened; opening wakes the
 * stored waker. Safe to open from any thread. ---- */
typedef struct zk_gate {
    pthread_mutex_t lock;
    bool open;
    zk_waker waker;
    int polls;
} zk_gate;

static inline void zk_gate_init(zk_gate *g) {
    pthread_mutex_init(&g->lock, NULL);
    g->open = false;
    g->waker = (zk_waker){0};
    g->polls = 0;
}

static inline void zk_gate_open(zk_gate *g) {
    pthread_mutex_lock(&g->lock);
    g->open = true;
    zk_waker w = g->waker;
    g->waker = (zk_waker){0};
    pthread_mutex_unlock(&g->lock);
    zk_waker_wake(&w);
}

static inline int zk_gate_polls(zk_gate *g) {
    pthread_mutex_lock(&g->lock);
    int n = g->polls;
    pthread_mutex_unlock(&g->lock);
    return n;
}

static inline void zk_gate_destroy(zk_gate *g) {
    zk_waker_drop(&g->waker);
    pthread_mutex_destroy(&g->lock);
}

typedef struct zk_gate_wait {
    zk_future base;
    zk_gate *gate;
    atomic_int *drops; /* counts drop calls when not NULL */
} zk_gate_wait;

static inline zk_poll zk_gate_wait_poll(zk_future *f, zk_context *cx,
                                        int64_t *out) {
    zk_gate_wait *w = (zk_gate_wait *)f;
    zk_gate *g = w->gate;
    pthread_mutex_lock(&g->lock);
    g->polls++;
    if (g->open) {
        pthread_mutex_unlock(&g->lock);
        *out = 7;
        return ZK_READY;
    }
    if (!zk_waker_will_wake(&g->waker, zk_context_waker(cx))) {
        zk_waker_drop(&g->waker);
        g->waker = zk_waker_clone(zk_context_waker(cx));
    }
    pthread_mutex_unlock(&g->lock);
    return ZK_PENDING;
}

static inline void zk_gate_wait_drop(zk_future *f) {
    zk_gate_wait *w = (zk_gate_wait *)f;
    /* Deregister: a cancelled waiter must not keep the task alive. */
    pthread_mutex_lock(&w->gate->lock);
    zk_waker_drop(&w->gate->waker);
    pthread_mutex_unlock(&w->gate->lock);
    if (w->drops)
        atomic_fetch_add(w->drops, 1);
}

static const zk_future_ops zk_gate_wait_ops = {zk_gate_wait_poll,
                                               zk_gate_wait_drop};

static inline zk_gate_wait zk_gate_waiter(zk_gate *g, atomic_int *drops) {
    return (zk_gate_wait){{&zk_gate_wait_ops}, g, drops};
}

/* ---- a future that is ready at once with a value (zokio/combine.h) ---- */
static inline zk_ready_future zk_ready(int64_t v) {
    zk_ready_future f;
    zk_ready_future_init(&f, v);
    return f;
}

#endif
