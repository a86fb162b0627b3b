/*
 * zokio/metrics.h - counters the schedulers keep anyway, for a user to
 * read. They are cheap enough to stay on in release builds: each counter is
 * written by one thread only, with plain (relaxed) stores. A snapshot read
 * while the runtime runs is consistent per counter, not across counters.
 */
#ifndef ZOKIO_METRICS_H
#define ZOKIO_METRICS_H

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one worker thread did since the runtime started. */
typedef struct zk_worker_metrics {
    uint64_t polls;            /* task polls (runs) */
    uint64_t tasks_spawned;    /* spawns made from this worker */
    uint64_t tasks_completed;  /* tasks that finished on this worker */
    uint64_t local_schedules;  /* wakes/spawns queued on this worker */
    uint64_t lifo_hits;        /* tasks run straight from the LIFO slot */
    uint64_t direct_switches;  /* coroutines resumed straight from another
                                  that suspended, without the scheduler
                                  loop in between */
    uint64_t steals;           /* tasks taken from other workers */
    uint64_t steal_operations; /* successful steal attempts */
    uint64_t parks;            /* times the worker went to sleep */
    uint64_t budget_yields;    /* yields forced by the cooperative budget */
    uint64_t overflows;        /* local queue overflows to the inject queue */
    size_t local_queue_depth;  /* tasks in its local queue now */
} zk_worker_metrics;

/* Runtime-wide figures. */
typedef struct zk_runtime_metrics {
    size_t workers;
    size_t live_tasks;         /* spawned and not finished */
    size_t inject_queue_depth; /* tasks in the global queue now */
    uint64_t remote_schedules; /* wakes/spawns from outside the workers */
    size_t blocking_threads;   /* threads of the blocking pool now */
    size_t blocking_idle_threads;
    size_t blocking_queue_depth; /* blocking calls waiting for a thread */
    uint64_t blocking_threads_started;
    uint64_t blocking_threads_retired;
} zk_runtime_metrics;

/*
 * Fills `*out` with the runtime-wide figures.
 * Returns 0, or -EINVAL if `rt` or `out` is NULL.
 */
ZK_EXTERN int zk_runtime_metrics_get(zk_runtime *rt, zk_runtime_metrics *out);

/*
 * Fills `*out` with the counters of worker `index` (0 .. workers - 1).
 * Returns 0, or -EINVAL if `rt` or `out` is NULL or `index` is out of
 * range.
 */
ZK_EXTERN int zk_runtime_worker_metrics(zk_runtime *rt, size_t index,
                                        zk_worker_metrics *out);

#ifdef __cplusplus
}
#endif
#endif
