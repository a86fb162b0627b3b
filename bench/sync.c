/*
 * sync.c - Zokio's side of the channel and lock benchmarks that
 * bench/compare.sh runs against the same workloads in Tokio
 * (peers/tokio/src/sync_bench.rs) and Go (peers/go/sync.go).
 * Multi-thread runtime, 2 workers, coroutine tasks. Each workload runs
 * RUNS times; the median is printed as "RESULT <workload> coro <value>
 * <unit>".
 *
 * - mpsc_bounded: 5 producers x 200,000 messages (8 bytes) through a
 *   bounded mpsc channel of 1,024 to one consumer; total time.
 * - mpsc_unbounded: the same through an unbounded mpsc channel (Go has
 *   none: no Go figure).
 * - ping_pong_oneshot: 1,000 pairs of tasks, each pair exchanging a ping
 *   and a pong over two zk_oneshot channels (the scheduler benchmark's
 *   ping_pong with zokio's real channels); time per round of 1,000 pairs.
 * - mutex_contention: 4 tasks x 250,000 lock / increment / unlock of one
 *   zk_mutex; total time.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zokio.h>

#include "bench.h"

#include "oneshot.h"

#define RUNS    5
#define WORKERS 2

static void report(const char *workload, double *v, const char *unit) {
    printf("RESULT %s coro %.1f %s\n", workload, median(v, RUNS), unit);
    fflush(stdout);
}

static void check(int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "bench_sync: %s: %s\n", what, zk_strerror(rc));
        abort();
    }
}

/* ---------------------------------------------------------------------- */
/* mpsc_bounded                                                           */
/* ---------------------------------------------------------------------- */

#define PRODUCERS    5
#define PER_PRODUCER 200000
#define CAPACITY     1024

static int64_t producer(void *arg) {
    zk_mpsc_tx *tx = arg;
    for (uint64_t i = 0; i < PER_PRODUCER; i++)
        check(zk_mpsc_send(tx, &i), "send");
    return zk_mpsc_tx_close(&tx);
}

typedef struct mpsc_run {
    bool unbounded;
    double elapsed;
} mpsc_run;

static int64_t mpsc_root(void *arg) {
    mpsc_run *run = arg;
    double t0 = now_ns();
    zk_mpsc_tx *tx;
    zk_mpsc_rx *rx;
    if (run->unbounded)
        check(zk_mpsc_new_unbounded(sizeof(uint64_t), &tx, &rx), "mpsc_new");
    else
        check(zk_mpsc_new(sizeof(uint64_t), CAPACITY, &tx, &rx), "mpsc_new");
    for (int p = 0; p < PRODUCERS; p++) {
        zk_mpsc_tx *mine;
        check(zk_mpsc_tx_clone(tx, &mine), "clone");
        check(zk_spawn(producer, mine, NULL), "spawn");
    }
    zk_mpsc_tx_close(&tx);
    uint64_t v, n = 0, sum = 0;
    while (zk_mpsc_recv(rx, &v) == 0) {
        n++;
        sum += v;
    }
    zk_mpsc_rx_close(&rx);
    run->elapsed = now_ns() - t0;
    uint64_t want = (uint64_t)PER_PRODUCER * (PER_PRODUCER - 1) / 2;
    if (n != (uint64_t)PRODUCERS * PER_PRODUCER || sum != PRODUCERS * want) {
        fprintf(stderr, "bench_sync: mpsc lost messages\n");
        abort();
    }
    return 0;
}

static void bench_mpsc(zk_runtime *rt, bool unbounded) {
    double v[RUNS];
    for (int r = 0; r < RUNS; r++) {
        mpsc_run run = {unbounded, 0};
        zk_block_on(rt, mpsc_root, &run, NULL);
        v[r] = run.elapsed / 1e6;
    }
    report(unbounded ? "mpsc_unbounded" : "mpsc_bounded", v, "ms");
}

/* ---------------------------------------------------------------------- */
/* ping_pong_oneshot                                                      */
/* ---------------------------------------------------------------------- */

#define PAIRS 1000

typedef struct pong_arg {
    zk_oneshot_rx *rx1;
    zk_oneshot_tx *tx2;
} pong_arg;

static int64_t pong(void *arg) {
    pong_arg a = *(pong_arg *)arg; /* the pinger's frame may go after */
    char x;
    check(zk_oneshot_recv(a.rx1, &x), "recv ping");
    zk_oneshot_rx_close(&a.rx1);
    return zk_oneshot_send(&a.tx2, &x);
}

static int64_t ping(void *arg) {
    zk_oneshot_tx *tx1;
    pong_arg a;
    check(zk_oneshot_new(1, &tx1, &a.rx1), "oneshot_new");
    zk_oneshot_rx *rx2;
    check(zk_oneshot_new(1, &a.tx2, &rx2), "oneshot_new");
    check(zk_spawn(pong, &a, NULL), "spawn");
    char x = 1;
    check(zk_oneshot_send(&tx1, &x), "send ping");
    check(zk_oneshot_recv(rx2, &x), "recv pong");
    zk_oneshot_rx_close(&rx2);
    countdown_hit(arg);
    return 0;
}

static int64_t ping_spawner(void *arg) {
    for (int i = 0; i < PAIRS; i++)
        check(zk_spawn(ping, arg, NULL), "spawn");
    return 0;
}

static int64_t ping_pong_root(void *arg) {
    double *elapsed = arg;
    countdown c = {PAIRS, oneshot_new()};
    oneshot *done = c.done;
    double t0 = now_ns();
    zk_spawn(ping_spawner, &c, NULL);
    await_done(done);
    *elapsed = now_ns() - t0;
    return 0;
}

static void bench_ping_pong(zk_runtime *rt) {
    double v[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double total = 0, e;
        for (int k = 0; k < 20; k++) {
            zk_block_on(rt, ping_pong_root, &e, NULL);
            total += e;
        }
        v[r] = total / 20 / 1000; /* us per round of 1,000 pairs */
    }
    report("ping_pong_oneshot", v, "us/round");
}

/* ---------------------------------------------------------------------- */
/* mutex_contention                                                       */
/* ---------------------------------------------------------------------- */

#define LOCKERS    4
#define LOCK_ITERS 250000

typedef struct locked_counter {
    zk_mutex *m;
    long value;
    countdown c;
} locked_counter;

static int64_t locker(void *arg) {
    locked_counter *lc = arg;
    for (int i = 0; i < LOCK_ITERS; i++) {
        check(zk_mutex_lock(lc->m), "lock");
        lc->value++;
        zk_mutex_unlock(lc->m);
    }
    countdown_hit(&lc->c);
    return 0;
}

static int64_t mutex_root(void *arg) {
    double *elapsed = arg;
    locked_counter lc = {NULL, 0, {LOCKERS, oneshot_new()}};
    oneshot *done = lc.c.done;
    check(zk_mutex_new(&lc.m), "mutex_new");
    double t0 = now_ns();
    for (int i = 0; i < LOCKERS; i++)
        check(zk_spawn(locker, &lc, NULL), "spawn");
    await_done(done);
    *elapsed = now_ns() - t0;
    if (lc.value != (long)LOCKERS * LOCK_ITERS) {
        fprintf(stderr, "bench_sync: the mutex lost increments\n");
        abort();
    }
    zk_mutex_free(lc.m);
    return 0;
}

static void bench_mutex(zk_runtime *rt) {
    double v[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double e;
        zk_block_on(rt, mutex_root, &e, NULL);
        v[r] = e / 1e6;
    }
    report("mutex_contention", v, "ms");
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    zk_runtime *rt = bench_runtime(WORKERS);
#define RUN(name, call)                                                        \
    if (!only || strcmp(only, name) == 0)                                      \
        call;
    RUN("mpsc_bounded", bench_mpsc(rt, false));
    RUN("mpsc_unbounded", bench_mpsc(rt, true));
    RUN("ping_pong_oneshot", bench_ping_pong(rt));
    RUN("mutex_contention", bench_mutex(rt));
    bench_print_metrics(rt);
    zk_runtime_free(rt);
    return 0;
}
