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

#include <stddef.h>
#include <stdint.h>

#include "arch/context.h"
#include "common/util.h"
#include "task.h"

struct zk_runtime;

/* Polls in a row that a task may find ready before it must yield. */
#define ZK__BUDGET 128

typedef struct zk__worker {
    struct zk_runtime *rt;
    /* The task being run on this thread, NULL between tasks. */
    zk__task *current;
    /* Where a coroutine switches back to when it suspends. */
    zk__ctx sched_ctx;
    /* Ready awaits left before the current task must yield. */
    int budget;
    /* Scheduler-specific worker state. */
    void *sched;
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
/* Prepares a worker for the calling thread (sanitizer bookkeeping). */
void zk__worker_init(zk__worker *w, struct zk_runtime *rt, void *sched);

#endif
