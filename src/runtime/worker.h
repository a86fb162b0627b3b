/*
 * worker.h - the per-thread state of a thread that runs tasks.
 *
 * Reached through zk__worker_current(), never through a cached address: a
 * coroutine can suspend on one thread and resume on another, and compilers
 * are allowed to keep a thread-local's address in a register across a call,
 * so thread-locals are only read through a function the compiler cannot
 * see through.
 */
#ifndef ZK__WORKER_H
#define ZK__WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/context.h"
#include "block_cache.h"
#include "common/util.h"
#include "stack.h"
#include "task.h"

struct zk_runtime;

/* Polls in a row that a task may find ready before it must yield. */
#define ZK__BUDGET 128

/* A worker's counters (see zk_worker_metrics). Only the worker's own thread
 * writes them, with ZK__COUNT: a relaxed load and store, no locked
 * instruction; any thread may read them. */
typedef struct zk__counters {
    _Atomic uint64_t polls, tasks_spawned, tasks_completed, local_schedules,
        lifo_hits, direct_switches, steals, steal_operations, parks,
        budget_yields, overflows;
} zk__counters;

#define ZK__COUNT_N(c, n)                                                      \
    atomic_store_explicit(                                                     \
        &(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n),          \
        memory_order_relaxed)
#define ZK__COUNT(c) ZK__COUNT_N(c, 1)

typedef struct zk__worker {
    struct zk_runtime *rt;
    /* The task being run on this thread, NULL between tasks. */
    zk__task *current;
    /* Where a coroutine switches back to when it suspends. */
    zk__ctx sched_ctx;
    /* The coroutine task that switched straight to the current one and
     * whose run the latter ends once on its own stack (coro.c); NULL
     * otherwise. */
    zk__task *handed_from;
    /* How the run of the coroutine that last switched away on this thread
     * ended (a zk__run_outcome), and whether its stack pointer was then
     * below its stack (one without a guard page): written by the
     * coroutine before it switches, read by whoever ends that run (coro.c,
     * zk__coro_leave). */
    uint8_t left_outcome;
    bool left_below;
    /* Ready awaits left before the current task must yield. */
    int budget;
    /* Scheduler-specific worker state. */
    void *sched;
    /* Index among the runtime's workers. */
    size_t index;
    zk__counters metrics;
    /* Free stacks this worker keeps for the coroutines it starts. */
    zk__stack_cache stacks;
    /* Freed coroutine task blocks kept for the next spawns (coro.c). */
    zk__block_cache coro_blocks;
#if defined(ZK__TSAN)
    void *tsan_fiber;
#endif
#if defined(ZK__ASAN)
    const void *asan_stack_bottom;
    size_t asan_stack_size;
    void *asan_fake_stack;
#endif
} zk__worker;

/* The worker of the calling thread, or NULL on a plain thread. */
zk__worker *zk__worker_current(void);
/* Sets (or clears, with NULL) the calling thread's worker; returns the
 * previous one. */
zk__worker *zk__worker_set(zk__worker *w);
/* Initialises a worker once, when its scheduler is created. */
void zk__worker_init(zk__worker *w, struct zk_runtime *rt, void *sched,
                     size_t index);
/* Makes `w` the calling thread's worker and prepares the per-thread parts
 * (sanitizer bookkeeping). Undo with zk__worker_set(NULL). */
void zk__worker_attach(zk__worker *w);

#endif
