/*
 * runtime.h - the runtime object and the interface every scheduler
 * implements (current_thread.c now, the work-stealing scheduler next).
 */
#ifndef ZK__RUNTIME_H
#define ZK__RUNTIME_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "block_cache.h"
#include "common/lock.h"
#include "io/io.h"
#include "park.h"
#include "stack.h"
#include "task.h"
#include "time/driver.h"
#include "worker.h"
#include "zokio/runtime.h"

#define ZK__OWNED_SHARDS 64

/* One shard of a runtime's live-task list. `closed` is set at shutdown: no
 * task may be added after it. */
typedef struct zk__owned_shard {
    alignas(64) zk__lock lock; /* short sections: see common/lock.h */
    zk__task *head;
    /* Tasks in the list: written under the lock, read without it. */
    _Atomic size_t count;
    bool closed;
} zk__owned_shard;

typedef struct zk__sched_ops {
    /* Schedules a task whose notification reference the caller hands over.
     * Called from any thread: a worker of this runtime or not. `yield` is
     * true when the task itself yielded (it goes behind the others). */
    void (*schedule)(struct zk_runtime *rt, zk__task *t, bool yield);
    /* zk_block_on() from a plain thread: `enter` claims the right to drive
     * (-EBUSY when another thread has it), `run_until` runs tasks until
     * `root` completes, `leave` gives the right back. */
    int (*enter)(struct zk_runtime *rt);
    void (*run_until)(struct zk_runtime *rt, zk__task *root);
    void (*leave)(struct zk_runtime *rt);
    /* Closes the runtime (zk__runtime_close_and_cancel), then runs every
     * remaining task to its end and stops the workers. Called once, from a
     * plain thread. Returns 0, or -EBUSY (nothing done) when the runtime
     * is being driven by another thread. */
    int (*shutdown)(struct zk_runtime *rt);
    /* Frees the scheduler's memory. */
    void (*destroy)(struct zk_runtime *rt);
    /* For metrics: worker `i` (i < rt->workers), the depth of the global
     * queue and of worker `i`'s local queue. */
    zk__worker *(*worker)(struct zk_runtime *rt, size_t i);
    size_t (*inject_len)(struct zk_runtime *rt);
    size_t (*local_len)(struct zk_runtime *rt, size_t i);
    /* A timer earlier than all others was added (or the clock changed):
     * a worker sleeping until the previous deadline must wake. Any
     * thread. */
    void (*timers_changed)(struct zk_runtime *rt);
    /* Called by a coroutine about to suspend on worker `w`: the started
     * coroutine task to switch to directly, taken off the worker's queues
     * (its notification reference passes to the caller), or NULL to go
     * back to the scheduler loop. Worker thread only; may be NULL. */
    zk__task *(*next_direct)(zk__worker *w);
} zk__sched_ops;

struct zk_runtime {
    const zk__sched_ops *sched_ops;
    void *sched;
    zk_runtime_kind kind;
    size_t workers;
    size_t stack_size;
    char thread_name[16];

    /* Live tasks (spawned, not yet complete), sharded by task id so that
     * spawns and completions on different workers rarely share a lock or
     * a cache line; their number is the sum of the shards' counts (see
     * zk__runtime_live), not a shared counter every spawn would write. */
    zk__owned_shard owned[ZK__OWNED_SHARDS];

    /* True from the start of shutdown: coroutines are then resumed at most
     * ZK_SHUTDOWN_POLLS_MAX times. */
    _Atomic bool shutting_down;
    /* Unparked by every task of a closed runtime that finishes: the thread
     * shutting down a multi-thread runtime waits on it until none is left. */
    zk__parker drained;

    /* Wakes and spawns that came from outside the runtime's workers. */
    _Atomic uint64_t remote_schedules;
    /* Remote schedules between their push and their last touch of the
     * runtime (the unpark). The task they push can run, finish and let the
     * runtime be freed before the unpark returns: zk_runtime_free() waits
     * for this to be 0 (see zk__remote_schedule_begin). */
    _Atomic uint32_t remote_in_flight;

    zk__stack_pool stacks;
    /* Coroutine task blocks that workers freed, for their next spawns. */
    zk__block_depot coro_depot;
    zk__time time;
    zk__io io;

    struct zk__blocking_pool *blocking;
    /* How long zk_runtime_free() waits for running blocking calls (< 0:
     * without limit). */
    int64_t shutdown_timeout_ns;
};

/*
 * Brackets a schedule from outside the runtime's threads. Begin comes after
 * the task's state says it must be pushed, before the push: until the push
 * the task cannot finish, so the runtime cannot be freed before `begin` is
 * visible. End is the schedule's last touch of the runtime.
 */
static inline void zk__remote_schedule_begin(struct zk_runtime *rt) {
    atomic_fetch_add_explicit(&rt->remote_schedules, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->remote_in_flight, 1, memory_order_seq_cst);
}

static inline void zk__remote_schedule_end(struct zk_runtime *rt) {
    atomic_fetch_sub_explicit(&rt->remote_in_flight, 1, memory_order_release);
}

/* Adds a new task to the live list; -ESHUTDOWN once the runtime closed. */
int zk__runtime_own(struct zk_runtime *rt, zk__task *t);
/* Removes a completed task from the live list; the list's reference goes
 * to the caller. */
void zk__runtime_release(struct zk_runtime *rt, zk__task *t);
/* How many tasks are live (spawned, not complete): exact when nothing
 * spawns or completes meanwhile, such as at the end of a shutdown. */
size_t zk__runtime_live(struct zk_runtime *rt);
/* Refuses further spawns and cancels every live task. */
void zk__runtime_close_and_cancel(struct zk_runtime *rt);
/* Hands a task to the scheduler after its spawn (its first notification). */
void zk__runtime_submit(struct zk_runtime *rt, zk__task *t);

/* The runtime the calling thread runs in, or NULL. */
struct zk_runtime *zk__runtime_current(void);

/* Spawns and returns a coroutine task holding a join reference. */
int zk__spawn_coro(struct zk_runtime *rt, const zk_spawn_opts *opts,
                   zk_task_fn fn, void *arg, zk__task **out);
int zk__spawn_future(struct zk_runtime *rt, const zk_future *fut, size_t size,
                     zk__task **out);

/* The schedulers. */
int zk__current_thread_create(struct zk_runtime *rt);
int zk__multi_thread_create(struct zk_runtime *rt);

/* Blocks the calling (plain) thread until every task of the closed runtime
 * has finished. Must be the thread that called
 * zk__runtime_close_and_cancel(): the tasks' ends are seen through the
 * shard locks it took. */
void zk__runtime_wait_drained(struct zk_runtime *rt);

/* Installs the stack-overflow reporter for the process (once) and an
 * alternate signal stack for the calling thread if it has none; the
 * returned cookie undoes the latter. */
void *zk__overflow_thread_enter(void);
void zk__overflow_thread_leave(void *cookie);

#endif
