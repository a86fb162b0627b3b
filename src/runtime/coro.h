/* coro.h - what other files need to know about coroutine tasks. */
#ifndef ZK__CORO_H
#define ZK__CORO_H

#include <stdbool.h>
#include <stddef.h>

#include "task.h"
#include "zokio/io.h"

/* For the overflow reporter: the stack bounds and name of a coroutine task.
 * Returns false for a future task. Async-signal-safe. */
bool zk__coro_stack_of(const zk__task *t, char **lo, size_t *size,
                       const char **name);

struct zk_scope;
struct zk__worker;

/* The size of a coroutine task's block (block_cache.h). */
size_t zk__coro_block_size(void);

/* Hands the task blocks worker `w` kept to its runtime's depot (a worker
 * that stops). */
void zk__coro_cache_flush(struct zk__worker *w);

/* The slot that holds the innermost cancel scope of coroutine task `t`
 * (NULL when it is in none), or NULL when `t` is not a coroutine task.
 * Only the task itself reads or writes the slot. */
struct zk_scope **zk__coro_scope_slot(zk__task *t);

/* Writes "zokio: stack overflow in task ..." to stderr with write(2) and
 * aborts the process. Async-signal-safe. */
__attribute__((noreturn)) void zk__overflow_report(uint64_t id,
                                                   const char *name,
                                                   size_t size,
                                                   const char *how);

/*
 * zk_await() that neither the task's abort nor its cancel scopes
 * interrupt: for waits that must end before the caller may go on,
 * whatever happens (freeing a task group waits for its members, which
 * were cancelled with it and end soon). Use it only for a future that a
 * cancelled task's peers are bound to complete: a task stuck in it at shutdown
 * is resumed only when woken, and its future must be woken a bounded number of
 * times (a woken task in a runtime that shuts down is abandoned after
 * ZK_SHUTDOWN_POLLS_MAX resumptions). Returns the future's output, -EPERM
 * outside a coroutine task, -EINVAL for a NULL future.
 */
int64_t zk__await_shielded(zk_future *f);

/* zk_await() for the blocking-style calls (sync/wait.c): in a coroutine
 * task, awaits `f`, stores its output in *out and returns true; elsewhere
 * returns false with `f` untouched. `f` must be a pollable future. One
 * look at the calling thread's task instead of zk_in_coroutine()'s and
 * then zk_await()'s. */
bool zk__await_if_coroutine(zk_future *f, int64_t *out);

/* Builds in `storage` the future of a blocking-style call from its
 * arguments (zk__await_made) and returns it. */
typedef zk_future *(*zk__future_maker)(zk_io_future *storage, void *a,
                                       const void *b, size_t n);

/*
 * zk_await() of the future that `make` builds from `a`, `b` and `n` in
 * this function's own frame: what the blocking-style I/O calls on streams
 * do, so that a coroutine suspended in one keeps a single frame between
 * its caller's and the switch's. A resume reads every frame on that path
 * back, from a stack that went cold while the task waited (on a server
 * with many connections each of its cache lines is a miss), and a call
 * that awaited a future of its own frame kept one frame more. Returns
 * what zk_await() would, with the future made first (its argument
 * errors come before -EPERM outside a coroutine task).
 */
int64_t zk__await_made(zk__future_maker make, void *a, const void *b, size_t n);

#endif
