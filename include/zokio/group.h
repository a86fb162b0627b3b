/*
 * zokio/group.h - task groups: structured concurrency for tasks.
 *
 * A group owns the tasks spawned into it (its members): coroutine tasks
 * (zk_group_spawn()) or future tasks (zk_group_spawn_future()). Members
 * are joined in the order they finish, one at a time
 * (zk_group_join_next()) or all at once (zk_group_join_all()); the whole
 * group can be cancelled (zk_group_cancel()); and freeing a group cancels
 * the members still running and waits for them, so no member outlives its
 * group: when zk_group_free() returns, every member has finished (a
 * coroutine's function returned, a future was dropped).
 *
 *     zk_group *g;
 *     zk_group_new(&g);
 *     for (int i = 0; i < n; i++)
 *         zk_group_spawn(g, fetch, &jobs[i], NULL, NULL);
 *     int64_t r;
 *     uint64_t id;
 *     while (zk_group_join_next(g, &r, &id) != -ECHILD)
 *         ...;                      // each member as it finishes
 *     zk_group_free(g);
 *
 * Every wait comes, like the sync primitives' (sync.h), as a blocking-style
 * call that parks the calling coroutine task (or blocks a plain thread),
 * the same with a deadline (_until), and a future for future tasks and
 * combinators. Groups work from any thread; members of one group may even
 * run on different runtimes (each is spawned on its spawner's runtime).
 *
 * Joining: a member that finished goes to the first task waiting in
 * join_next (FIFO), or waits in the group, in completion order, for the
 * next join. A join that is cancelled (its task aborted, its deadline
 * passed, its future dropped) after a member was handed to it gives the
 * member back, to the next waiter or to the front of the group: a finished
 * member is never lost, and each is joined exactly once.
 *
 * A member of a group of a current-thread runtime progresses only while a
 * thread drives that runtime (zk_block_on): join or free such a group from
 * inside the runtime.
 *
 * Error codes used throughout:
 * -EINVAL      a NULL group or argument.
 * -ECHILD      (joins) the group has no member to join: none was spawned,
 *              or every one was joined already (as waitpid() says when a
 *              process has no children).
 * -ECANCELED   the calling task was aborted (or its cancel scope
 *              cancelled, see zokio/scope.h) while or before waiting; or,
 *              from a join, the member it joined had been aborted.
 * -ETIMEDOUT   (_until forms, or in a cancel scope) the deadline passed
 *              first.
 * -EPERM       called from a future task's poll, which cannot block (use
 *              the future form).
 * -EDEADLK     the caller would wait for itself (see each call).
 * -EPIPE       (spawn) the group was closed or cancelled.
 * -ENOMEM      out of memory. A plain thread that blocks in a zokio call
 *              needs a small per-thread waiter: -ENOMEM if it cannot be
 *              allocated.
 */
#ifndef ZOKIO_GROUP_H
#define ZOKIO_GROUP_H

#include "sync.h"
#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zk_group zk_group;

/* Creates an empty, open group. Returns 0 and sets `*out`, or -EINVAL
 * (`out` NULL) or -ENOMEM. */
ZK_EXTERN int zk_group_new(zk_group **out);

/*
 * Cancels the members still running and waits until every one has
 * finished, then releases the group, discarding the results of members
 * nobody joined. When it returns 0, no member runs any more.
 *
 * Inside a coroutine task it parks the task, and that wait cannot be
 * cancelled (neither by an abort nor by a cancel scope, zokio/scope.h): a
 * task that frees a group while cancelled still waits for the members
 * (they were cancelled too, and return soon if they heed it), as a parent
 * waits for its children. A plain thread blocks.
 *
 * Returns 0 (NULL is a no-op), or, with nothing done:
 * -EBUSY       a join is waiting on the group, or holds a member it has not
 *              returned yet (a join future not dropped): a future must not
 *              outlive its group.
 * -EDEADLK     the caller is itself a member of the group still running.
 * -EPERM       called from a future task's poll while members still run
 *              (such a task cancels the group, polls a
 *              zk_group_join_all_future to its end, then frees it).
 * -ENOMEM      a plain thread could not get its waiter.
 */
ZK_EXTERN int zk_group_free(zk_group *g);

/*
 * Spawns a coroutine task running fn(arg) into the group, on the runtime
 * the caller runs in, as zk_spawn_ex() with `opts` (may be NULL) would.
 * The group keeps the task's join handle; `*id` (when `id` is not NULL)
 * receives the task's id, which joins report. As with zk_spawn(), the
 * function always runs, even when the member is cancelled before it
 * starts, so it can release `arg` (unless no stack can be had for it; it
 * then ends with the result -ENOMEM).
 *
 * Returns 0, or, with nothing spawned:
 * -EINVAL      `g` or `fn` is NULL, or opts->stack_size is out of range.
 * -EPIPE       the group was closed (zk_group_close()) or cancelled.
 * -EPERM       the caller is not inside a runtime.
 * -ESHUTDOWN   the runtime is shutting down.
 * -ENOMEM      out of memory.
 */
ZK_EXTERN int zk_group_spawn(zk_group *g, zk_task_fn fn, void *arg,
                             const zk_spawn_opts *opts, uint64_t *id);

/*
 * Spawns a future task into the group, on the runtime the caller runs in,
 * as zk_spawn_future() would: `size` bytes at `fut` (a future never
 * polled) are copied into the task. Cancelling such a member drops its
 * future instead of polling it again; its join then reports -ECANCELED
 * with the result -ECANCELED.
 *
 * Returns 0, or, with nothing spawned (the future, still the caller's, is
 * not dropped):
 * -EINVAL      `g` or `fut` or its poll function is NULL, or `size` is
 *              smaller than a zk_future or larger than 1 MiB.
 * -EPIPE, -EPERM, -ESHUTDOWN, -ENOMEM as for zk_group_spawn().
 */
ZK_EXTERN int zk_group_spawn_future(zk_group *g, const zk_future *fut,
                                    size_t size, uint64_t *id);

/*
 * Waits for the next member to finish (or takes one that finished and was
 * not joined yet, oldest first) and removes it from the group. Stores its
 * result in `*result` and its id in `*id` (each may be NULL). `*id` is set
 * to 0 first, so it tells the two meanings of -ECANCELED apart: a member
 * was joined exactly when `*id` is not 0.
 *
 * Returns 0, or:
 * -ECANCELED   (`*id` set) the member had been aborted (by
 *              zk_group_cancel(), or its runtime's shutdown); as with
 *              zk_task_join(), `*result` still receives the value a
 *              coroutine member's function returned (-ECANCELED for a
 *              future member).
 * -ECHILD      the group has no member left to join.
 * -ECANCELED   (`*id` 0) the calling task was aborted; no member was taken.
 * -EDEADLK     the caller is the group's only running member and nothing
 *              finished is left to join: it would wait for itself (also
 *              when that comes about while it waits, once another join
 *              took the last other member).
 * -EINVAL, -EPERM, -ENOMEM as described above.
 */
ZK_EXTERN int zk_group_join_next(zk_group *g, int64_t *result, uint64_t *id);

/* zk_group_join_next() that gives up at `deadline` with -ETIMEDOUT (`*id`
 * 0): no member was taken, and the next join gets it. */
ZK_EXTERN int zk_group_join_next_until(zk_group *g, int64_t *result,
                                       uint64_t *id, zk_instant deadline);

/* Joins a member that has finished, without waiting. Returns 0 or
 * -ECANCELED (member aborted) as zk_group_join_next(), or -EAGAIN (members
 * run but none finished), -ECHILD (no member left) or -EINVAL. */
ZK_EXTERN int zk_group_try_join_next(zk_group *g, int64_t *result,
                                     uint64_t *id);

/*
 * Joins members as they finish until none is left, members spawned
 * meanwhile included, and discards their results (use join_next to see
 * them). Returns the number of members it joined (>= 0), or:
 * -ECANCELED   the calling task was aborted; the members it had not joined
 *              stay in the group.
 * -EDEADLK     the caller is a member of the group: it joined the others,
 *              and would then wait for itself.
 * -EINVAL, -EPERM, -ENOMEM as described above.
 */
ZK_EXTERN int64_t zk_group_join_all(zk_group *g);

/* zk_group_join_all() that gives up at `deadline` with -ETIMEDOUT; the
 * members joined until then are gone, the others stay in the group. */
ZK_EXTERN int64_t zk_group_join_all_until(zk_group *g, zk_instant deadline);

/*
 * Aborts every member still running, with zk_task_abort()'s semantics:
 * a coroutine member's current and later awaits return -ECANCELED and it
 * runs on to the end of its function; a future member is dropped. Joins
 * then report them with -ECANCELED. It also
 * closes the group (a later spawn would escape the cancellation). Calling
 * it again changes nothing. Never waits; works from any thread.
 * Returns 0, or -EINVAL (`g` NULL).
 */
ZK_EXTERN int zk_group_cancel(zk_group *g);

/* Closes the group to new members: later spawns fail with -EPIPE; the
 * members keep running and can be joined. Returns 0, or -EINVAL. */
ZK_EXTERN int zk_group_close(zk_group *g);

/* Returns the number of members not joined yet, running or finished (0 for
 * NULL). */
ZK_EXTERN size_t zk_group_len(const zk_group *g);

/*
 * The future form of join_next: output 0 or -ECANCELED with the member's
 * result and id written to the pointers given at initialisation (either
 * may be NULL; they must stay valid while the future lives, and are
 * written only when a member was joined), or -ECHILD, -EDEADLK, -EINVAL.
 * Dropped before it was ready, it took nothing: a member it had been
 * handed goes to the next join.
 */
typedef struct zk_group_join_future {
    zk_future base;
    void *_group;
    void *_member;
    int64_t *_result;
    uint64_t *_id;
    zk_wait_node _node;
} zk_group_join_future;

/* Initialises a join of the next member of `g` to finish. */
ZK_EXTERN void zk_group_join_next_future_init(zk_group_join_future *f,
                                              zk_group *g, int64_t *result,
                                              uint64_t *id);

/* The future form of join_all: output the number of members joined, or
 * -EDEADLK, -EINVAL. Dropped before it was ready, the members it joined
 * are gone and the others stay in the group. */
typedef struct zk_group_join_all_future {
    zk_future base;
    int64_t _count;
    zk_group_join_future _next;
} zk_group_join_all_future;

/* Initialises a join of every member of `g`. */
ZK_EXTERN void zk_group_join_all_future_init(zk_group_join_all_future *f,
                                             zk_group *g);

#ifdef __cplusplus
}
#endif
#endif
