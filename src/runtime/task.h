/*
 * task.h - the internal task: header, kinds, and the harness that runs it.
 *
 * Memory layout of every task:
 *   zk__task (header, <= 64 bytes: what the scheduler touches)
 *   zk__task_core (owned-list links, join waker, result)
 *   kind-specific part (an embedded future, or a coroutine's context/stack)
 * One allocation per task. The public `zk_task *` join handle is this same
 * pointer; it owns one reference.
 */
#ifndef ZK__TASK_H
#define ZK__TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zokio/future.h"
#include "zokio/task.h"

typedef struct zk__task zk__task;

/* What one run of a task ended with. */
typedef enum zk__run_outcome {
    ZK__RUN_PENDING, /* waits for a wake */
    ZK__RUN_READY,   /* finished: core.result holds the result */
    ZK__RUN_YIELDED  /* wants to run again after the others (no wake
                        needed: the harness requeues it) */
} zk__run_outcome;

typedef struct zk__task_vtable {
    /* Runs the task one step. READY means its body finished and core.result
     * holds its result (a future task's future is dropped by then, a
     * coroutine's stack released). */
    zk__run_outcome (*poll)(zk__task *t);
    /* Drops the body of a task that is cancelled without finishing (future
     * tasks only; coroutines always run to their end). */
    void (*cancel)(zk__task *t);
    /* Frees the task's memory; the body was already released. */
    void (*dealloc)(zk__task *t);
    /* True for coroutine tasks: cancellation wakes them instead of dropping
     * them. */
    bool coroutine;
    /* True when the task is in its runtime's live list (holding a
     * reference) from spawn to completion. Blocking tasks are not: they
     * belong to the blocking pool, which may outlive the runtime. */
    bool owned;
} zk__task_vtable;

/* The part the scheduler touches, kept within one cache line. */
struct zk__task {
    /* State bits and reference count: see task_state.h. */
    _Atomic uint64_t state;
    const zk__task_vtable *vtable;
    /* Link of whichever run queue holds the task's notification. */
    zk__task *queue_next;
    /* The runtime it belongs to. Only read while the task is not complete:
     * once complete, a handle or waker may outlive the runtime. */
    struct zk_runtime *rt;
    /* Set by its first run, and read only by whoever holds its
     * notification: the inject queue puts tasks that never ran after
     * those that did (inject.h). */
    bool has_run;
};

/* What every wake and run touches. 40 bytes: a coroutine task keeps what
 * its resumptions read in the rest of the header's cache line (coro.c). */
_Static_assert(sizeof(zk__task) <= 40,
               "the task header must leave a coroutine 24 bytes of its line");

/* The rest of what every task has. */
typedef struct zk__task_core {
    uint64_t id;
    /* Links in the runtime's list of live tasks (guarded by its lock). */
    zk__task *owned_prev, *owned_next;
    /* The waker of whoever joins the task; access rules in task_state.h
     * (JOIN_WAKER bit). */
    zk_waker join_waker;
    /* Written by the task before COMPLETE is set, read by the join handle
     * after it sees COMPLETE. */
    int64_t result;
} zk__task_core;

typedef struct zk__task_base {
    zk__task header;
    zk__task_core core;
} zk__task_base;

static inline zk__task_core *zk__task_core_of(zk__task *t) {
    return &((zk__task_base *)t)->core;
}

static inline uint64_t zk__task_id(const zk__task *t) {
    return ((const zk__task_base *)t)->core.id;
}

/* Initialises the header and core of a freshly allocated task. */
void zk__task_init(zk__task *t, const zk__task_vtable *vt,
                   struct zk_runtime *rt);

/* Runs a task whose notification the caller popped from a run queue (the
 * caller's queue reference is consumed). Called by workers, and by
 * blocking-pool threads (no worker) for blocking tasks. */
void zk__task_run(zk__task *t);

/* zk__task_run() in two halves, for a coroutine that hands its worker
 * straight to another (coro.c). begin claims the task for a run by the
 * calling thread (w: its worker, NULL on a plain thread) and makes it the
 * worker's current task; false when there is nothing to run (a stale
 * notification, dropped, or a cancelled future task, completed). end takes
 * the outcome of the task's poll: completes, requeues or idles it. */
struct zk__worker;
bool zk__task_begin_run(zk__task *t, struct zk__worker *w);
void zk__task_end_run(zk__task *t, zk__run_outcome r);

/* A coroutine task that has run before: it has a stack another coroutine
 * can switch to (the schedulers' next_direct). */
static inline bool zk__task_resumable(const zk__task *t) {
    return t->vtable->coroutine && t->has_run;
}

/* Wakes the task: schedules it unless it is running, complete or already
 * notified. by_val consumes one reference. */
void zk__task_wake_by_ref(zk__task *t);
void zk__task_wake_by_val(zk__task *t);

/* Marks the task cancelled and schedules it; false when it had already
 * finished. Used by abort and by shutdown. */
bool zk__task_cancel(zk__task *t);

/* Drops one reference, freeing the task at zero. */
void zk__task_drop_ref(zk__task *t);

/* A waker for `t` that borrows the caller's reference (what a poll's
 * context carries): no reference count change. */
zk_waker zk__task_waker_ref(zk__task *t);

/* True once the task completed. */
bool zk__task_is_complete(const zk__task *t);

/* For futures that wait on a task through its join handle (the I/O
 * driver's blocking-pool operations): true once `t` completed, else `w`
 * will be woken when it does. Only the handle's owner calls these. */
bool zk__task_join_poll(zk__task *t, const zk_waker *w);
/* Reads a completed task's result and releases the join handle. */
void zk__task_join_take(zk__task *t, int64_t *result, bool *cancelled);
/* Blocks the calling thread (whatever it is: used where a future's drop
 * must not return before a blocking-pool call ends) until `t` completes,
 * then takes its result as zk__task_join_take(). */
void zk__task_join_blocking(zk__task *t, int64_t *result, bool *cancelled);

#endif
