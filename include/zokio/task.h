/*
 * zokio/task.h - spawning tasks and their join handles.
 *
 * Two kinds of task share one scheduler:
 * - coroutine tasks run a function on a stack of their own; inside one,
 *   zk_await() and every blocking-style call suspend just that task;
 * - future tasks run a stackless future (zk_future) and cost no stack.
 *
 * A spawn can hand back a join handle (zk_task *). The handle is owned by
 * the caller and ends in exactly one of zk_task_join() or zk_task_detach(),
 * both of which take the handle's address and set it to NULL, so a second
 * join or a join after detach is reported (-EINVAL) instead of touching
 * freed memory. Pass a NULL handle pointer to spawn detached.
 */
#ifndef ZOKIO_TASK_H
#define ZOKIO_TASK_H

#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zk_runtime zk_runtime;

/* A join handle for a spawned task. */
typedef struct zk_task zk_task;

/* The body of a coroutine task: its return value is the task's result. */
typedef int64_t (*zk_task_fn)(void *arg);

/* The smallest and largest stack a coroutine task may ask for. */
#define ZK_STACK_MIN ((size_t)16 * 1024)
#define ZK_STACK_MAX ((size_t)1024 * 1024 * 1024)

/* Options for zk_spawn_ex(). Zero-initialise, then set what you need. */
typedef struct zk_spawn_opts {
    /* Stack size in bytes for a coroutine task; 0 uses the runtime's
     * default. Rounded up to whole pages. Must lie within
     * [ZK_STACK_MIN, ZK_STACK_MAX]. */
    size_t stack_size;
    /* A name used in diagnostics (stack overflow reports). The string is
     * not copied: it must outlive the task (a literal is typical). */
    const char *name;
} zk_spawn_opts;

/*
 * Spawns a coroutine task running fn(arg) on the runtime the caller runs
 * in. The task starts running later, on a worker of that runtime. If
 * `handle` is not NULL it receives a join handle; otherwise the task is
 * detached.
 *
 * The function always runs, even when the task is aborted before it starts
 * (its awaits then return -ECANCELED), so it can release `arg`. The task
 * takes its stack when it first runs; in the rare case that no stack can be
 * had then (out of memory or address space), it ends without running,
 * with the result -ENOMEM and a message on stderr.
 *
 * Returns 0, or:
 * -EINVAL      `fn` is NULL.
 * -EPERM       the caller is not inside a runtime (use zk_runtime_spawn()).
 * -ESHUTDOWN   the runtime is shutting down.
 * -ENOMEM      no memory for the task.
 * On error nothing was spawned and `*handle` is left unchanged.
 */
ZK_EXTERN int zk_spawn(zk_task_fn fn, void *arg, zk_task **handle);

/*
 * Like zk_spawn() on runtime `rt` (NULL: the caller's runtime) and with
 * options (`opts` may be NULL). Callable from any thread, inside a runtime
 * or not. Adds these errors:
 * -EINVAL      opts->stack_size is outside [ZK_STACK_MIN, ZK_STACK_MAX].
 * -EPERM       `rt` is NULL and the caller is not inside a runtime.
 */
ZK_EXTERN int zk_spawn_ex(zk_runtime *rt, const zk_spawn_opts *opts,
                          zk_task_fn fn, void *arg, zk_task **handle);

/* zk_spawn_ex(rt, NULL, fn, arg, handle). */
ZK_EXTERN int zk_runtime_spawn(zk_runtime *rt, zk_task_fn fn, void *arg,
                               zk_task **handle);

/*
 * Spawns a future task: `size` bytes starting at `fut` (a future that was
 * never polled, whose first member is a zk_future) are copied into the
 * task, which then owns them; no stack is allocated. The task's result is
 * the future's output. `rt` NULL means the caller's runtime.
 *
 * When the task finishes or is aborted, the copy's drop function runs.
 *
 * Returns 0, or:
 * -EINVAL      `fut` or its poll function is NULL, or `size` is smaller
 *              than a zk_future or larger than 1 MiB.
 * -EPERM       `rt` is NULL and the caller is not inside a runtime.
 * -ESHUTDOWN   the runtime is shutting down.
 * -ENOMEM      no memory for the task.
 */
ZK_EXTERN int zk_spawn_future(zk_runtime *rt, const zk_future *fut, size_t size,
                              zk_task **handle);

/*
 * Runs fn(arg) on the runtime's blocking pool: a separate set of threads for
 * calls that block (file system, DNS, CPU-heavy work), so the workers keep
 * running tasks. The pool starts threads on demand up to its bound and
 * retires idle ones (zk_builder_set_blocking_threads/_keep_alive). `rt`
 * NULL means the caller's runtime (a task, or a blocking call, of it).
 * The handle is joined, detached and aborted like any task's: join parks a
 * task, or blocks a plain thread, until fn returns. A blocking call cannot
 * be interrupted: an abort before it starts means fn never runs (join then
 * gives -ECANCELED and `arg` stays the caller's); after it started, fn runs
 * to its end. Inside fn, zk_runtime_current() is the pool's runtime, so fn
 * may spawn tasks; zk_await() is refused (-EPERM): fn is not a task.
 *
 * Returns 0, or:
 * -EINVAL      `fn` is NULL.
 * -EPERM       `rt` is NULL and the caller is not inside a runtime.
 * -ESHUTDOWN   the runtime is shutting down.
 * -ENOMEM      no memory for the task.
 * -EAGAIN      no pool thread runs and none could be started (out of
 *              threads or address space): fn will not run.
 */
ZK_EXTERN int zk_spawn_blocking(zk_runtime *rt, zk_task_fn fn, void *arg,
                                zk_task **handle);

/*
 * Waits for the task to finish, stores its result in `*result` (may be
 * NULL) and releases the handle, setting `*handle` to NULL.
 *
 * Inside a coroutine task this suspends only the calling task; from a plain
 * thread it blocks that thread (sleeping, not spinning). A task of a
 * current-thread runtime progresses only while some thread drives that
 * runtime (zk_block_on), so join such a task from inside it.
 *
 * Returns 0, or:
 * -EINVAL      `handle` or `*handle` is NULL (already joined or detached).
 * -ECANCELED   the task was aborted before it finished. For a coroutine
 *              task `*result` still receives the value its function
 *              returned; for a future task it is set to -ECANCELED. The
 *              handle is released.
 * -ECANCELED   (with the handle kept, `*handle` unchanged) the calling
 *              coroutine task was itself aborted while waiting; join again
 *              or detach.
 * -EDEADLK     a task tried to join itself; the handle is kept.
 * -EPERM       called from a future task's poll (it would block its
 *              worker: a future task waits for tasks through a group,
 *              zokio/group.h); the handle is kept.
 * -ENOMEM      from a plain thread, no memory for its sleep; the handle is
 *              kept.
 */
ZK_EXTERN int zk_task_join(zk_task **handle, int64_t *result);

/*
 * Releases the handle without waiting: the task keeps running and its
 * result is discarded. Sets `*handle` to NULL.
 * Returns 0, or -EINVAL if `handle` or `*handle` is NULL.
 */
ZK_EXTERN int zk_task_detach(zk_task **handle);

/*
 * Requests cancellation. A future task is dropped instead of being polled
 * again. A coroutine task is woken and its current and every later
 * zk_await() return -ECANCELED so it can clean up and return. The handle
 * stays valid: join or detach it as usual.
 *
 * Returns 0 when the request was registered (or was already), or:
 * -EINVAL      `task` is NULL.
 * -EALREADY    the task had already finished; nothing changed.
 */
ZK_EXTERN int zk_task_abort(zk_task *task);

/* Returns true once the task has finished (completed or cancelled), so a
 * join would not wait. Returns false for NULL. */
ZK_EXTERN bool zk_task_is_finished(const zk_task *task);

/* Returns the task's id (unique within the process, never 0), or 0 for
 * NULL. */
ZK_EXTERN uint64_t zk_task_id(const zk_task *task);

/* Returns the id of the task the caller runs in, or 0 outside a task. */
ZK_EXTERN uint64_t zk_task_current_id(void);

/* Returns true when the caller runs inside a task (a coroutine task, or the
 * poll of a future task). */
ZK_EXTERN bool zk_in_task(void);

/* Returns true when the caller runs inside a coroutine task, the only
 * place where zk_await() and blocking-style calls work. */
ZK_EXTERN bool zk_in_coroutine(void);

/* Returns true when the calling task has been asked to cancel (aborted, or
 * its runtime is shutting down). False outside a task. */
ZK_EXTERN bool zk_task_cancelled(void);

/*
 * Lets other ready tasks run before the calling coroutine task continues
 * (it goes to the back of the run queue).
 * Returns 0, or -ECANCELED if the task was aborted, or -EPERM outside a
 * coroutine task. Inside a cancel scope (zokio/scope.h) it also fails as
 * an await would, with -ECANCELED or -ETIMEDOUT (without yielding when
 * that was so already), so a loop that only computes can yield to learn
 * that its budget is spent.
 */
ZK_EXTERN int zk_yield(void);

/*
 * A future that is pending once (after asking to be polled again) and
 * then ready with output 0: the building block of zk_yield() for future
 * tasks and combinators. Initialise with zk_yield_future_init().
 */
typedef struct zk_yield_future {
    zk_future base;
    bool yielded;
} zk_yield_future;

/* Initialises a yield future. */
ZK_EXTERN void zk_yield_future_init(zk_yield_future *f);

#ifdef __cplusplus
}
#endif
#endif
