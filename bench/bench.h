/* bench.h - what the benchmark programs share: a clock, medians,
 * resident memory and a future that is ready at once. */
#ifndef ZK_BENCH_H
#define ZK_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <zokio.h>

static inline double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and returns its median. */
static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* A multi-thread runtime with `workers` workers, or abort. */
static inline zk_runtime *bench_runtime(size_t workers) {
    zk_builder *b = zk_builder_new();
    zk_builder_set_kind(b, ZK_RUNTIME_MULTI_THREAD);
    zk_builder_set_workers(b, workers);
    zk_runtime *rt;
    if (zk_builder_build(b, &rt) != 0)
        abort();
    zk_builder_free(b);
    return rt;
}

/* With ZOKIO_BENCH_METRICS=1 in the environment, prints every worker's
 * counters to stderr (what the scheduler did during the runs: steals,
 * parks, LIFO hits), to explain a figure rather than to produce one. */
static inline void bench_print_metrics(zk_runtime *rt) {
    const char *on = getenv("ZOKIO_BENCH_METRICS");
    if (on == NULL || on[0] != '1')
        return;
    zk_runtime_metrics m;
    if (zk_runtime_metrics_get(rt, &m) != 0)
        return;
    for (size_t i = 0; i < m.workers; i++) {
        zk_worker_metrics w;
        if (zk_runtime_worker_metrics(rt, i, &w) != 0)
            continue;
        fprintf(
            stderr,
            "worker %zu: polls %llu lifo %llu (direct %llu) local %llu "
            "steals %llu/%llu parks %llu budget_yields %llu overflows "
            "%llu\n",
            i, (unsigned long long)w.polls, (unsigned long long)w.lifo_hits,
            (unsigned long long)w.direct_switches,
            (unsigned long long)w.local_schedules, (unsigned long long)w.steals,
            (unsigned long long)w.steal_operations, (unsigned long long)w.parks,
            (unsigned long long)w.budget_yields,
            (unsigned long long)w.overflows);
    }
    fprintf(stderr, "remote schedules %llu\n",
            (unsigned long long)m.remote_schedules);
}

/* The process's resident memory in bytes. */
static inline long rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

typedef struct ready_future {
    zk_future base;
    int64_t v;
} ready_future;

static inline zk_poll ready_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)cx;
    *out = ((ready_future *)f)->v;
    return ZK_READY;
}
static const zk_future_ops ready_ops = {ready_poll, NULL};

#endif
