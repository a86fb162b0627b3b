/*
 * core.c - micro-benchmarks of the core: what a spawn+join, a yield, a
 * ready await and a context switch cost, and the resident memory of a
 * parked task. Every figure is the median of RUNS runs of the real runtime
 * end to end (current-thread runtime, one thread).
 *
 *   bench/run.sh            builds (Release) and runs this
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zokio.h>

#include "bench.h"

#include "arch/context.h"

#define RUNS 5

static zk_runtime *new_runtime(void) {
    zk_runtime *rt;
    if (zk_runtime_new(ZK_RUNTIME_CURRENT_THREAD, &rt) != 0) {
        fprintf(stderr, "runtime creation failed\n");
        exit(1);
    }
    return rt;
}

/* Runs root(arg) RUNS times on fresh runtimes; the root returns the number
 * of operations it did and stores its elapsed ns in *elapsed. Returns the
 * median ns per operation. */
typedef struct timed {
    double elapsed;
    long ops;
} timed;

static double bench(zk_task_fn root) {
    double per_op[RUNS];
    for (int r = 0; r < RUNS; r++) {
        zk_runtime *rt = new_runtime();
        timed t = {0, 0};
        if (zk_block_on(rt, root, &t, NULL) != 0 || t.ops == 0) {
            fprintf(stderr, "benchmark root failed\n");
            exit(1);
        }
        zk_runtime_free(rt);
        per_op[r] = t.elapsed / (double)t.ops;
    }
    return median(per_op, RUNS);
}

/* ---- spawn + join ---- */

static int64_t trivial(void *arg) {
    return (intptr_t)arg;
}

#define SPAWNS 100000
static zk_task *handles[SPAWNS];

static int64_t spawn_join_batch_coro(void *arg) {
    timed *t = arg;
    double t0 = now_ns();
    for (intptr_t i = 0; i < SPAWNS; i++)
        zk_spawn(trivial, (void *)i, &handles[i]);
    for (int i = 0; i < SPAWNS; i++)
        zk_task_join(&handles[i], NULL);
    t->elapsed = now_ns() - t0;
    t->ops = SPAWNS;
    return 0;
}

static int64_t spawn_join_each_coro(void *arg) {
    timed *t = arg;
    double t0 = now_ns();
    for (intptr_t i = 0; i < SPAWNS; i++) {
        zk_task *h;
        zk_spawn(trivial, (void *)i, &h);
        zk_task_join(&h, NULL);
    }
    t->elapsed = now_ns() - t0;
    t->ops = SPAWNS;
    return 0;
}

static int64_t spawn_join_batch_future(void *arg) {
    timed *t = arg;
    double t0 = now_ns();
    for (int i = 0; i < SPAWNS; i++) {
        ready_future f = {{&ready_ops}, i};
        zk_spawn_future(NULL, &f.base, sizeof f, &handles[i]);
    }
    for (int i = 0; i < SPAWNS; i++)
        zk_task_join(&handles[i], NULL);
    t->elapsed = now_ns() - t0;
    t->ops = SPAWNS;
    return 0;
}

/* ---- yield, ready await, switches ---- */

#define ITERS 1000000

static int64_t yield_alone(void *arg) {
    timed *t = arg;
    double t0 = now_ns();
    for (int i = 0; i < ITERS; i++)
        zk_yield();
    t->elapsed = now_ns() - t0;
    t->ops = ITERS;
    return 0;
}

static int64_t await_ready(void *arg) {
    timed *t = arg;
    int64_t sum = 0;
    double t0 = now_ns();
    for (int i = 0; i < ITERS * 10; i++) {
        ready_future f = {{&ready_ops}, i};
        sum += zk_await(&f.base);
    }
    t->elapsed = now_ns() - t0;
    t->ops = ITERS * 10;
    return sum;
}

static int64_t yielder(void *arg) {
    for (int i = 0; i < ITERS; i++)
        zk_yield();
    return (intptr_t)arg;
}

/* Two tasks yielding to each other: every yield suspends one coroutine and
 * resumes the other, i.e. two stack switches through the scheduler. */
static int64_t two_yielders(void *arg) {
    timed *t = arg;
    zk_task *a, *b;
    double t0 = now_ns();
    zk_spawn(yielder, NULL, &a);
    zk_spawn(yielder, NULL, &b);
    zk_task_join(&a, NULL);
    zk_task_join(&b, NULL);
    t->elapsed = now_ns() - t0;
    t->ops = 2L * ITERS; /* task-to-task switches */
    return 0;
}

/* The raw assembly switch, back and forth between two contexts. */
static zk__ctx raw_main, raw_co;
static void raw_entry(void *arg) {
    (void)arg;
    for (;;)
        zk__ctx_switch(&raw_co, &raw_main);
}

static double raw_switch_ns(void) {
    static char stack[64 * 1024] __attribute__((aligned(16)));
    double per[RUNS];
    zk__ctx_make(&raw_co, stack, sizeof stack, raw_entry, NULL);
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        for (int i = 0; i < ITERS * 10; i++)
            zk__ctx_switch(&raw_main, &raw_co);
        per[r] = (now_ns() - t0) / (ITERS * 10 * 2.0);
    }
    return median(per, RUNS);
}

/* ---- resident memory per parked task ---- */

#define PARKED 100000

typedef struct lot {
    int open;
    zk_waker wakers[PARKED];
} lot;
static lot *the_lot;

typedef struct park_fut {
    zk_future base;
    int slot;
} park_fut;

static zk_poll park_poll(zk_future *f, zk_context *cx, int64_t *out) {
    park_fut *p = (park_fut *)f;
    if (the_lot->open) {
        *out = 0;
        return ZK_READY;
    }
    if (zk_waker_is_empty(&the_lot->wakers[p->slot]))
        the_lot->wakers[p->slot] = zk_waker_clone(zk_context_waker(cx));
    return ZK_PENDING;
}
static const zk_future_ops park_ops = {park_poll, NULL};

static int64_t parks(void *arg) {
    park_fut f = {{&park_ops}, (int)(intptr_t)arg};
    return zk_await(&f.base);
}

typedef struct rss_probe {
    int coroutines;
    long before, after;
} rss_probe;

static int64_t rss_root(void *arg) {
    rss_probe *p = arg;
    memset(the_lot, 0, sizeof *the_lot);
    p->before = rss_bytes();
    for (intptr_t i = 0; i < PARKED; i++) {
        if (p->coroutines) {
            zk_spawn(parks, (void *)i, NULL);
        } else {
            park_fut f = {{&park_ops}, (int)i};
            zk_spawn_future(NULL, &f.base, sizeof f, NULL);
        }
    }
    /* One yield lets every task run once and park. */
    zk_yield();
    p->after = rss_bytes();
    the_lot->open = 1;
    for (int i = 0; i < PARKED; i++)
        zk_waker_wake(&the_lot->wakers[i]);
    return 0;
}

/* Each run in a fresh child process: memory freed by earlier work stays
 * resident in the allocator and would hide the cost being measured. */
static double rss_per_task(int coroutines) {
    double per[RUNS];
    for (int r = 0; r < RUNS; r++) {
        int fds[2];
        if (pipe(fds) != 0)
            exit(1);
        pid_t pid = fork();
        if (pid == 0) {
            zk_runtime *rt = new_runtime();
            rss_probe p = {coroutines, 0, 0};
            zk_block_on(rt, rss_root, &p, NULL);
            zk_runtime_free(rt);
            double v = (double)(p.after - p.before) / PARKED;
            if (write(fds[1], &v, sizeof v) != sizeof v)
                _exit(1);
            _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &per[r], sizeof per[r]) != sizeof per[r])
            exit(1);
        close(fds[0]);
        waitpid(pid, NULL, 0);
    }
    return median(per, RUNS);
}

int main(void) {
    the_lot = malloc(sizeof *the_lot);
    printf("zokio %s core benchmarks (current-thread runtime, median of %d "
           "runs)\n\n",
           zk_version(), RUNS);
    printf("%-46s %12s\n", "operation", "cost");
    double rss_coro = rss_per_task(1), rss_fut = rss_per_task(0);
    printf("%-46s %9.1f ns\n",
           "spawn+join coroutine (100k spawned, then joined)",
           bench(spawn_join_batch_coro));
    printf("%-46s %9.1f ns\n", "spawn+join coroutine (one at a time)",
           bench(spawn_join_each_coro));
    printf("%-46s %9.1f ns\n", "spawn+join future task (100k, then joined)",
           bench(spawn_join_batch_future));
    printf("%-46s %9.1f ns\n", "yield (task alone)", bench(yield_alone));
    printf("%-46s %9.1f ns\n", "await of a ready future", bench(await_ready));
    printf("%-46s %9.1f ns\n", "task-to-task switch (two tasks yielding)",
           bench(two_yielders));
    printf("%-46s %9.1f ns\n", "raw assembly switch (zk__ctx_switch)",
           raw_switch_ns());
    printf("%-46s %9.0f B\n", "resident memory per parked coroutine (100k)",
           rss_coro);
    printf("%-46s %9.0f B\n", "resident memory per parked future task (100k)",
           rss_fut);
    free(the_lot);
    return 0;
}
