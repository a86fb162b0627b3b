/*
 * zokio/runtime.h - building, driving and shutting down a runtime.
 *
 *     zk_builder *b = zk_builder_new();      // multi-thread by default
 *     zk_builder_set_workers(b, 4);
 *     zk_runtime *rt;
 *     int rc = zk_builder_build(b, &rt);   // configuration errors show here
 *     zk_builder_free(b);
 *     int64_t result;
 *     rc = zk_block_on(rt, main_task, NULL, &result);
 *     zk_runtime_free(rt);
 */
#ifndef ZOKIO_RUNTIME_H
#define ZOKIO_RUNTIME_H

#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a runtime schedules its tasks. */
typedef enum zk_runtime_kind {
    /* All tasks run on the thread that calls zk_block_on(). */
    ZK_RUNTIME_CURRENT_THREAD = 1,
    /* A pool of worker threads that steal work from each other. */
    ZK_RUNTIME_MULTI_THREAD = 2
} zk_runtime_kind;

/* The largest worker count a builder accepts. */
#define ZK_WORKERS_MAX 1024

/* The default coroutine stack size: reserved address space, committed
 * by the kernel only as the task touches it. */
#define ZK_STACK_DEFAULT ((size_t)256 * 1024)

typedef struct zk_builder zk_builder;

/*
 * Returns a new builder holding the defaults: multi-thread kind with one
 * worker per online CPU, thread name "zokio-worker", ZK_STACK_DEFAULT
 * stacks. Returns NULL when out of memory.
 */
ZK_EXTERN zk_builder *zk_builder_new(void);

/* Frees a builder. NULL is a no-op. Runtimes built from it are not
 * affected. */
ZK_EXTERN void zk_builder_free(zk_builder *b);

/* Setters record a value; zk_builder_build() validates all of them. Each is
 * a no-op on a NULL builder. */
ZK_EXTERN void zk_builder_set_kind(zk_builder *b, zk_runtime_kind kind);
/* Worker threads of a multi-thread runtime; must be 1..ZK_WORKERS_MAX
 * (a current-thread runtime accepts only 1). */
ZK_EXTERN void zk_builder_set_workers(zk_builder *b, size_t workers);
/* Name given to the runtime's worker threads, followed by "-N" (at most 10
 * bytes of it are used). The string is copied; NULL is rejected by build. */
ZK_EXTERN void zk_builder_set_thread_name(zk_builder *b, const char *name);
/* Default stack size of coroutine tasks; must lie within
 * [ZK_STACK_MIN, ZK_STACK_MAX]. Rounded up to whole pages. */
ZK_EXTERN void zk_builder_set_stack_size(zk_builder *b, size_t bytes);

/* The blocking pool's defaults and limits. */
#define ZK_BLOCKING_THREADS_DEFAULT       512
#define ZK_BLOCKING_THREADS_MAX           10000
#define ZK_BLOCKING_KEEP_ALIVE_DEFAULT_NS ((int64_t)10 * 1000 * 1000 * 1000)
#define ZK_BLOCKING_KEEP_ALIVE_MAX_NS     ((int64_t)24 * 3600 * 1000 * 1000 * 1000)

/* Most threads the blocking pool may run at once (1..ZK_BLOCKING_THREADS_MAX,
 * default 512); further blocking calls wait in its queue. */
ZK_EXTERN void zk_builder_set_blocking_threads(zk_builder *b,
                                               size_t max_threads);
/* How long an idle blocking thread waits for work before it exits, in
 * nanoseconds (0..ZK_BLOCKING_KEEP_ALIVE_MAX_NS, default 10 s). */
ZK_EXTERN void zk_builder_set_blocking_keep_alive(zk_builder *b, int64_t ns);
/* How long zk_runtime_free() waits for blocking calls that are running, in
 * nanoseconds; negative (the default) waits for them however long they
 * take. Past the timeout they are left to finish on their own. */
ZK_EXTERN void zk_builder_set_shutdown_timeout(zk_builder *b, int64_t ns);

/*
 * Builds a runtime from the builder's settings; the builder can be reused
 * or freed afterwards.
 * Returns 0 and stores the runtime in `*out`, or:
 * -EINVAL      `b` or `out` is NULL, or a setting is invalid: unknown
 *              kind, worker count 0 or above ZK_WORKERS_MAX (or not 1 for
 *              a current-thread runtime), NULL thread name, stack size
 *              outside [ZK_STACK_MIN, ZK_STACK_MAX], blocking threads or
 *              keep-alive out of range, more I/O homes than workers
 *              (zokio/io.h), an unknown I/O backend.
 * -ENOMEM      out of memory.
 * -EAGAIN      a thread could not be started.
 * On error nothing was created.
 */
ZK_EXTERN int zk_builder_build(const zk_builder *b, zk_runtime **out);

/*
 * Shorthand: builds a runtime of `kind` with every other setting at its
 * default. Returns what zk_builder_build() returns.
 */
ZK_EXTERN int zk_runtime_new(zk_runtime_kind kind, zk_runtime **out);

/*
 * Runs fn(arg) as a coroutine task on `rt` and blocks the calling thread
 * (sleeping, not spinning) until it finishes; `*result` (may be NULL)
 * receives its return value. On a multi-thread runtime the task runs on the
 * workers and any number of threads may block on the runtime at once. On a
 * current-thread runtime the calling thread runs the runtime's tasks while
 * it waits; tasks still pending when the root finishes stay in the runtime
 * and run at the next zk_block_on(), which another thread may make. (On
 * io_uring the requests a driving thread submitted are ended by the
 * kernel when it exits and made again by the next driver; but an exit can
 * also wait, in the kernel, for a blocking open it submitted that has
 * begun, such as a FIFO's waiting for its other end.)
 *
 * Returns 0, or:
 * -EINVAL      `rt` or `fn` is NULL.
 * -EPERM       called from inside a task (it would block a worker).
 * -EBUSY       another thread is already driving this current-thread
 *              runtime.
 * A multi-thread runtime's tasks run on its workers whether or not a thread
 * is in zk_block_on().
 * -ESHUTDOWN   the runtime is shutting down.
 * -ENOMEM      no memory for the task.
 * -ECANCELED   the task was cancelled before it finished: another thread
 *              freed the runtime meanwhile (`*result` as zk_task_join()
 *              gives it).
 */
ZK_EXTERN int zk_block_on(zk_runtime *rt, zk_task_fn fn, void *arg,
                          int64_t *result);

/*
 * Like zk_block_on() for a future: `size` bytes at `fut` are copied into a
 * future task. Errors as zk_block_on() and zk_spawn_future().
 */
ZK_EXTERN int zk_block_on_future(zk_runtime *rt, const zk_future *fut,
                                 size_t size, int64_t *result);

/*
 * Shuts the runtime down and frees it: new spawns fail with -ESHUTDOWN,
 * every remaining future task is dropped, every remaining coroutine task is
 * cancelled and run until it returns (its awaits return -ECANCELED), then
 * all stacks, threads and memory are released. Join handles that are still
 * held stay valid; joining one reports the task as cancelled.
 *
 * A coroutine task that ignores cancellation and keeps awaiting is given
 * ZK_SHUTDOWN_POLLS_MAX resumptions, then abandoned with a message on
 * stderr naming it. Its stack and whatever its frames referenced are
 * leaked, never reused or unmapped: something may still point into those
 * frames (a waiter node in the queue of a primitive that outlives the
 * runtime).
 *
 * Then the blocking pool: blocking calls that have not started are
 * cancelled (they never run), running ones are waited for up to the
 * builder's shutdown timeout; past it, a message says how many were left
 * running and they finish on their own (they must not use the runtime any
 * more).
 *
 * It may be called from a task of another runtime: the task waits there
 * for the shutdown (a current-thread runtime's remaining tasks run on its
 * thread meanwhile) and then goes on as before.
 *
 * Returns 0 (NULL is a no-op), or -EBUSY when called from inside a task or
 * a blocking call of this runtime, or while another thread drives this
 * current-thread runtime in zk_block_on() (nothing happens then).
 */
ZK_EXTERN int zk_runtime_free(zk_runtime *rt);

#define ZK_SHUTDOWN_POLLS_MAX 10000

/* Returns the runtime the caller runs in, or NULL outside a runtime. */
ZK_EXTERN zk_runtime *zk_runtime_current(void);

/* Returns the runtime's kind, or 0 for NULL. */
ZK_EXTERN zk_runtime_kind zk_runtime_get_kind(const zk_runtime *rt);

/* Returns the number of worker threads (1 for current-thread), 0 for
 * NULL. */
ZK_EXTERN size_t zk_runtime_workers(const zk_runtime *rt);

/* Returns the number of tasks spawned on `rt` that have not finished yet
 * (0 for NULL). */
ZK_EXTERN size_t zk_runtime_live_tasks(const zk_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif
