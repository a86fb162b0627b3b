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
