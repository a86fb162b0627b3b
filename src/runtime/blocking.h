/*
 * blocking.h - the blocking pool: an elastic set of threads that run
 * blocking calls (zk_spawn_blocking) off the workers.
 *
 * Threads start on demand up to a bound and retire after a keep-alive with
 * nothing to do. Blocking tasks are ordinary tasks (same join handles) but
 * they are not in the runtime's live list: a shutdown that stops waiting
 * for them after its timeout leaves them running, so the pool is reference
 * counted (the runtime and each thread hold a reference) and freed by
 * whoever lets go last.
 */
#ifndef ZK__BLOCKING_H
#define ZK__BLOCKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "task.h"

typedef struct zk__blocking_pool zk__blocking_pool;

typedef struct zk__blocking_stats {
    size_t threads, idle, queued;
    uint64_t started, retired;
} zk__blocking_stats;

int zk__blocking_pool_create(struct zk_runtime *rt, size_t max_threads,
                             int64_t keep_alive_ns, zk__blocking_pool **out);

/* Spawns fn(arg) on the pool; returns 0 and a task holding a join
 * reference, or -ENOMEM, -ESHUTDOWN, or -EAGAIN when no thread could be
 * started and none runs (the call was not queued). */
int zk__blocking_spawn(zk__blocking_pool *p, zk_task_fn fn, void *arg,
                       zk__task **out);

/* Refuses new work, cancels what has not started, waits for running work
 * up to `timeout_ns` (< 0: without limit), then lets go of the pool.
 * Returns the number of threads still running blocking work. */
size_t zk__blocking_pool_shutdown(zk__blocking_pool *p, int64_t timeout_ns);

void zk__blocking_pool_stats(zk__blocking_pool *p, zk__blocking_stats *out);

/* True while calls spawned on the pool have not finished (queued or
 * running): a paused clock does not jump meanwhile (current_thread.c). */
bool zk__blocking_pool_busy(zk__blocking_pool *p);

/* The runtime whose blocking pool the calling thread belongs to, or NULL. */
struct zk_runtime *zk__blocking_thread_runtime(void);

#endif
