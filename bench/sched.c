/*
 * sched.c - Zokio's side of the scheduler benchmarks that bench/compare.sh
 * runs against the same workloads in Tokio (peers/tokio) and Go (peers/go).
 * Multi-thread runtime, 2 workers. Each workload runs RUNS times; the median
 * is printed as "RESULT <workload> <variant> <value> <unit>".
 *
 * Variants: "coro" uses coroutine tasks (zk_spawn), "future" uses stackless
 * future tasks (zk_spawn_future).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zokio.h>

#include "bench.h"

#include "oneshot.h"

#define RUNS    5
#define WORKERS 2

static void report(const char *workload, const char *variant, double *v,
                   const char *unit) {
    printf("RESULT %s %s %.1f %s\n", workload, variant, median(v, RUNS), unit);
    fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* spawn_many_local: 1,000,000 tasks spawned from inside a task           */
/* ---------------------------------------------------------------------- */

#define SPAWN_MANY 1000000

static int64_t hit_coro(void *arg) {
    countdown_hit(arg);
    return 0;
}

typedef struct hit_future {
    zk_future base;
    countdown *c;
} hit_future;

static zk_poll hit_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)cx;
    countdown_hit(((hit_future *)f)->c);
    *out = 0;
    return ZK_READY;
}
static const zk_future_ops hit_ops = {hit_poll, NULL};

static int use_futures;

static int64_t spawn_many_root(void *arg) {
    double *elapsed = arg;
    countdown c = {SPAWN_MANY, oneshot_new()};
    oneshot *done = c.done;
    double t0 = now_ns();
    for (int i = 0; i < SPAWN_MANY; i++) {
        if (use_futures) {
            hit_future f = {{&hit_ops}, &c};
            zk_spawn_future(NULL, &f.base, sizeof f, NULL);
        } else {
            zk_spawn(hit_coro, &c, NULL);
        }
    }
    await_done(done);
    *elapsed = now_ns() - t0;
    return 0;
}

static void bench_spawn_many(zk_runtime *rt) {
    for (use_futures = 0; use_futures <= 1; use_futures++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double e;
            zk_block_on(rt, spawn_many_root, &e, NULL);
            v[r] = e / SPAWN_MANY;
        }
        report("spawn_many_local", use_futures ? "future" : "coro", v,
               "ns/task");
    }
}

/* ---------------------------------------------------------------------- */
/* spawn_join_remote: spawn from outside the runtime and join, one by one */
/* ---------------------------------------------------------------------- */

#define SPAWN_JOIN 100000

static int64_t trivial(void *arg) {
    return (intptr_t)arg;
}

static void bench_spawn_join(zk_runtime *rt) {
    for (int fut = 0; fut <= 1; fut++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double t0 = now_ns();
            for (int i = 0; i < SPAWN_JOIN; i++) {
                zk_task *h;
                if (fut) {
                    ready_future f = {{&ready_ops}, i};
                    zk_spawn_future(rt, &f.base, sizeof f, &h);
                } else {
                    zk_runtime_spawn(rt, trivial, (void *)(intptr_t)i, &h);
                }
                zk_task_join(&h, NULL);
            }
            v[r] = (now_ns() - t0) / SPAWN_JOIN;
        }
        report("spawn_join_remote", fut ? "future" : "coro", v, "ns/task");
    }
}

/* ---------------------------------------------------------------------- */
/* yield_many: 200 tasks x 10,000 yields                                  */
/* ---------------------------------------------------------------------- */

#define YIELD_TASKS 200
#define YIELDS      10000

static int64_t yielder_coro(void *arg) {
    for (int i = 0; i < YIELDS; i++)
        zk_yield();
    countdown_hit(arg);
    return 0;
}

typedef struct yielder_future {
    zk_future base;
    int left;
    countdown *c;
} yielder_future;

static zk_poll yielder_poll(zk_future *f, zk_context *cx, int64_t *out) {
    yielder_future *y = (yielder_future *)f;
    if (y->left-- > 0) {
        zk_waker_wake_by_ref(zk_context_waker(cx));
        return ZK_PENDING;
    }
    countdown_hit(y->c);
    *out = 0;
    return ZK_READY;
}
static const zk_future_ops yielder_ops = {yielder_poll, NULL};

static int64_t yield_root(void *arg) {
    double *elapsed = arg;
    countdown c = {YIELD_TASKS, oneshot_new()};
    oneshot *done = c.done;
    double t0 = now_ns();
    for (int i = 0; i < YIELD_TASKS; i++) {
        if (use_futures) {
            yielder_future f = {{&yielder_ops}, YIELDS, &c};
            zk_spawn_future(NULL, &f.base, sizeof f, NULL);
        } else {
            zk_spawn(yielder_coro, &c, NULL);
        }
    }
    await_done(done);
    *elapsed = now_ns() - t0;
    return 0;
}

static void bench_yield_many(zk_runtime *rt) {
    for (use_futures = 0; use_futures <= 1; use_futures++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double e;
            zk_block_on(rt, yield_root, &e, NULL);
            v[r] = e / ((double)YIELD_TASKS * YIELDS);
        }
        report("yield_many", use_futures ? "future" : "coro", v, "ns/yield");
    }
}

/* ---------------------------------------------------------------------- */
/* ping_pong: 1,000 pairs exchanging over oneshot channels, repeated      */
/* ---------------------------------------------------------------------- */

#define PAIRS 1000

typedef struct ping_args {
    countdown *c;
} ping_args;

static int64_t pong_coro(void *arg) {
    oneshot **ch = arg; /* [rx1, tx2] */
    oneshot_recv r = oneshot_receiver(ch[0]);
    zk_await(&r.base);
    oneshot_send(ch[1], 1);
    free(ch);
    return 0;
}

static int64_t ping_coro(void *arg) {
    oneshot *ch1 = oneshot_new(), *ch2 = oneshot_new();
    oneshot **pong = malloc(2 * sizeof *pong);
    pong[0] = ch1;
    pong[1] = ch2;
    zk_spawn(pong_coro, pong, NULL);
    oneshot_send(ch1, 1);
    oneshot_recv r = oneshot_receiver(ch2);
    zk_await(&r.base);
    countdown_hit(arg);
    return 0;
}

/* The same pair as future tasks. */
typedef struct pong_future {
    zk_future base;
    oneshot_recv rx1;
    oneshot *tx2;
} pong_future;

static zk_poll pong_poll(zk_future *f, zk_context *cx, int64_t *out) {
    pong_future *p = (pong_future *)f;
    int64_t v;
    if (oneshot_recv_poll(&p->rx1.base, cx, &v) == ZK_PENDING)
        return ZK_PENDING;
    oneshot_send(p->tx2, 1);
    *out = 0;
    return ZK_READY;
}
static void pong_drop(zk_future *f) {
    oneshot_recv_drop(&((pong_future *)f)->rx1.base);
}
static const zk_future_ops pong_ops = {pong_poll, pong_drop};

typedef struct ping_future {
    zk_future base;
    int started;
    oneshot_recv rx2;
    countdown *c;
} ping_future;

static zk_poll ping_poll(zk_future *f, zk_context *cx, int64_t *out) {
    ping_future *p = (ping_future *)f;
    if (!p->started) {
        p->started = 1;
        oneshot *ch1 = oneshot_new(), *ch2 = oneshot_new();
        pong_future pf = {{&pong_ops}, oneshot_receiver(ch1), ch2};
        zk_spawn_future(NULL, &pf.base, sizeof pf, NULL);
        oneshot_send(ch1, 1);
        p->rx2 = oneshot_receiver(ch2);
    }
    int64_t v;
    if (oneshot_recv_poll(&p->rx2.base, cx, &v) == ZK_PENDING)
        return ZK_PENDING;
    countdown_hit(p->c);
    *out = 0;
    return ZK_READY;
}
static void ping_drop(zk_future *f) {
    ping_future *p = (ping_future *)f;
    if (p->started)
        oneshot_recv_drop(&p->rx2.base);
}
static const zk_future_ops ping_ops = {ping_poll, ping_drop};

static int64_t ping_pong_spawner(void *arg) {
    for (int i = 0; i < PAIRS; i++) {
        if (use_futures) {
            ping_future f = {{&ping_ops}, 0, {{NULL}, NULL}, arg};
            zk_spawn_future(NULL, &f.base, sizeof f, NULL);
        } else {
            zk_spawn(ping_coro, arg, NULL);
        }
    }
    return 0;
}

static int64_t ping_pong_root(void *arg) {
    double *elapsed = arg;
    countdown c = {PAIRS, oneshot_new()};
    oneshot *done = c.done;
    double t0 = now_ns();
    zk_spawn(ping_pong_spawner, &c, NULL);
    await_done(done);
    *elapsed = now_ns() - t0;
    return 0;
}

static void bench_ping_pong(zk_runtime *rt) {
    for (use_futures = 0; use_futures <= 1; use_futures++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double total = 0, e;
            for (int k = 0; k < 20; k++) {
                zk_block_on(rt, ping_pong_root, &e, NULL);
                total += e;
            }
            v[r] = total / 20 / 1000; /* us per round of 1,000 pairs */
        }
        report("ping_pong", use_futures ? "future" : "coro", v, "us/round");
    }
}

/* ---------------------------------------------------------------------- */
/* chained_spawn: each task spawns the next, depth 1,000, repeated        */
/* ---------------------------------------------------------------------- */

#define CHAIN 1000

typedef struct chain {
    int left;
    oneshot *done;
} chain;

static chain the_chain;

static int64_t chain_coro(void *arg) {
    intptr_t left = (intptr_t)arg;
    if (left == 0)
        oneshot_send(the_chain.done, 1);
    else
        zk_spawn(chain_coro, (void *)(left - 1), NULL);
    return 0;
}

typedef struct chain_future {
    zk_future base;
    int left;
} chain_future;

static zk_poll chain_poll(zk_future *f, zk_context *cx, int64_t *out);
static const zk_future_ops chain_ops = {chain_poll, NULL};
static zk_poll chain_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)cx;
    int left = ((chain_future *)f)->left;
    if (left == 0) {
        oneshot_send(the_chain.done, 1);
    } else {
        chain_future next = {{&chain_ops}, left - 1};
        zk_spawn_future(NULL, &next.base, sizeof next, NULL);
    }
    *out = 0;
    return ZK_READY;
}

static int64_t chain_root(void *arg) {
    double *elapsed = arg;
    the_chain.done = oneshot_new();
    oneshot *done = the_chain.done;
    double t0 = now_ns();
    if (use_futures) {
        chain_future f = {{&chain_ops}, CHAIN};
        zk_spawn_future(NULL, &f.base, sizeof f, NULL);
    } else {
        zk_spawn(chain_coro, (void *)(intptr_t)CHAIN, NULL);
    }
    await_done(done);
    *elapsed = now_ns() - t0;
    return 0;
}

static void bench_chained(zk_runtime *rt) {
    for (use_futures = 0; use_futures <= 1; use_futures++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double total = 0, e;
            for (int k = 0; k < 100; k++) {
                zk_block_on(rt, chain_root, &e, NULL);
                total += e;
            }
            v[r] = total / 100 / 1000; /* us per chain of 1,000 */
        }
        report("chained_spawn", use_futures ? "future" : "coro", v, "us/chain");
    }
}

/* ---------------------------------------------------------------------- */
/* idle memory: resident bytes per parked task                            */
/* ---------------------------------------------------------------------- */

static _Atomic long parked;

/* Pending forever: only shutdown ends it. */
typedef struct idle_future {
    zk_future base;
    int polled;
} idle_future;

static zk_poll idle_poll(zk_future *f, zk_context *cx, int64_t *out) {
    idle_future *i = (idle_future *)f;
    (void)cx;
    (void)out;
    if (!i->polled) {
        i->polled = 1;
        atomic_fetch_add(&parked, 1);
    }
    return ZK_PENDING;
}
static const zk_future_ops idle_ops = {idle_poll, NULL};

static int64_t idle_coro(void *arg) {
    (void)arg;
    idle_future f = {{&idle_ops}, 0};
    return zk_await(&f.base);
}

/* In a fresh process: memory freed by earlier work would hide the cost. */
static double idle_bytes_per_task(int futures, long n) {
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        zk_runtime *rt = bench_runtime(WORKERS);
        atomic_store(&parked, 0);
        long before = rss_bytes();
        for (long i = 0; i < n; i++) {
            if (futures) {
                idle_future f = {{&idle_ops}, 0};
                zk_spawn_future(rt, &f.base, sizeof f, NULL);
            } else {
                zk_runtime_spawn(rt, idle_coro, NULL, NULL);
            }
        }
        while (atomic_load(&parked) < n)
            usleep(1000);
        double per = (double)(rss_bytes() - before) / (double)n;
        if (write(fds[1], &per, sizeof per) != sizeof per)
            _exit(1);
        zk_runtime_free(rt);
        _exit(0);
    }
    close(fds[1]);
    double per = -1;
    if (read(fds[0], &per, sizeof per) != sizeof per)
        per = -1;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return per;
}

static void bench_idle_memory(void) {
    double v[RUNS];
    for (int r = 0; r < RUNS; r++)
        v[r] = idle_bytes_per_task(1, 1000000);
    report("idle_memory_1m", "future", v, "bytes/task");
    for (int r = 0; r < RUNS; r++)
        v[r] = idle_bytes_per_task(0, 100000);
    report("idle_memory_100k", "coro", v, "bytes/task");
}

/* ---------------------------------------------------------------------- */
/* timers: 100,000 tasks sleeping 1-50 ms; total time and lateness        */
/* ---------------------------------------------------------------------- */

#ifndef TIMERS
#define TIMERS 100000
#endif

static int64_t lateness[TIMERS];

typedef struct timer_arg {
    int index;
    countdown *c;
} timer_arg;

static zk_duration timer_delay(int i) {
    uint32_t x = (uint32_t)i * 2654435761u;
    return ZK_MS(1 + (x >> 8) % 50);
}

static int64_t timer_coro(void *arg) {
    timer_arg *a = arg;
    zk_instant deadline = zk_now() + timer_delay(a->index);
    zk_sleep_until(deadline);
    lateness[a->index] = zk_now() - deadline;
    countdown_hit(a->c);
    return 0;
}

typedef struct timer_future {
    zk_future base;
    zk_sleep_future sleep;
    timer_arg a;
} timer_future;

static zk_poll timer_future_poll(zk_future *f, zk_context *cx, int64_t *out) {
    timer_future *t = (timer_future *)f;
    int64_t r;
    if (t->sleep.base.ops == NULL) /* first poll: start timing now */
        zk_sleep_future_init(&t->sleep, timer_delay(t->a.index));
    if (zk_future_poll(&t->sleep.base, cx, &r) == ZK_PENDING)
        return ZK_PENDING;
    lateness[t->a.index] = zk_now() - t->sleep.deadline;
    countdown_hit(t->a.c);
    *out = 0;
    return ZK_READY;
}
static void timer_future_drop(zk_future *f) {
    timer_future *t = (timer_future *)f;
    if (t->sleep.base.ops != NULL)
        zk_future_drop(&t->sleep.base);
}
static const zk_future_ops timer_future_ops = {timer_future_poll,
                                               timer_future_drop};

static timer_arg timer_args[TIMERS];

static int64_t timers_root(void *arg) {
    double *elapsed = arg;
    countdown c = {TIMERS, oneshot_new()};
    oneshot *done = c.done;
    double t0 = now_ns();
    for (int i = 0; i < TIMERS; i++) {
        timer_args[i] = (timer_arg){i, &c};
        if (use_futures) {
            timer_future f;
            memset(&f, 0, sizeof f);
            f.base.ops = &timer_future_ops;
            f.a = timer_args[i];
            zk_spawn_future(NULL, &f.base, sizeof f, NULL);
        } else {
            zk_spawn(timer_coro, &timer_args[i], NULL);
        }
    }
    await_done(done);
    *elapsed = now_ns() - t0;
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void bench_timers(zk_runtime *rt) {
    for (use_futures = 0; use_futures <= 1; use_futures++) {
        double total[RUNS], p50[RUNS], p99[RUNS];
        for (int r = 0; r < RUNS; r++) {
            double e;
            zk_block_on(rt, timers_root, &e, NULL);
            qsort(lateness, TIMERS, sizeof lateness[0], cmp_i64);
            total[r] = e / 1e6;
            p50[r] = (double)lateness[TIMERS / 2] / 1e3;
            p99[r] = (double)lateness[TIMERS * 99 / 100] / 1e3;
        }
        const char *v = use_futures ? "future" : "coro";
        report("timers_total", v, total, "ms");
        report("timers_late_p50", v, p50, "us");
        report("timers_late_p99", v, p99, "us");
    }
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    zk_runtime *rt = bench_runtime(WORKERS);
#define RUN(name, call)                                                        \
    if (!only || strcmp(only, name) == 0)                                      \
        call;
    RUN("spawn_many_local", bench_spawn_many(rt));
    RUN("spawn_join_remote", bench_spawn_join(rt));
    RUN("yield_many", bench_yield_many(rt));
    RUN("ping_pong", bench_ping_pong(rt));
    RUN("chained_spawn", bench_chained(rt));
    RUN("timers", bench_timers(rt));
    bench_print_metrics(rt);
    zk_runtime_free(rt);
    RUN("idle_memory", bench_idle_memory());
    return 0;
}
