/*
 * zokio/sync.h - synchronisation between tasks: semaphore, mutex, rwlock,
 * notify, condition variable, barrier and once-cell.
 *
 * Every primitive is an opaque object with a new/free pair. Every wait
 * comes in three forms:
 * - a blocking-style call (zk_mutex_lock()) that parks the calling
 *   coroutine task (never spins); called from a plain thread that is not
 *   running a task, it blocks that thread (sleeping in a futex) instead;
 * - the same with an absolute deadline on the runtime's clock
 *   (zk_mutex_lock_until(), zk_now() + d), which returns -ETIMEDOUT when
 *   the deadline passes first;
 * - a future (zk_mutex_lock_future) for future tasks, zk_await_until() and
 *   combinators. Futures are caller-owned (typically on the coroutine's
 *   stack) and hold their place in the primitive's wait queue inside
 *   themselves: waiting allocates nothing.
 *
 * Queues are FIFO: a lock or permit that is released while tasks wait is
 * handed to the first waiter directly (a newcomer cannot barge ahead), so
 * no waiter starves.
 *
 * Cancellation: dropping a future (which is what an aborted task's await,
 * a timeout and a combinator do) leaves the queue at once. A future that
 * was already handed a lock, permits or a notification it did not get to
 * see passes them on to the next waiter (or back to the primitive), so an
 * aborted or timed-out waiter never swallows what was meant for someone
 * else. A blocking-style call that returns an error holds nothing.
 *
 * Releasing, unlocking and notifying never wait and work from any thread,
 * inside a runtime or not.
 *
 * Error codes used throughout:
 * -EINVAL      a NULL object or pointer, or a count out of range.
 * -EAGAIN      (try_ forms) the call would have to wait.
 * -ETIMEDOUT   (_until forms) the deadline passed first.
 * -ECANCELED   the calling task was aborted while (or before) waiting.
 * -EPERM       called from a future task's poll (which cannot block: use
 *              the future form), or an unlock of something not locked.
 * -EPIPE       the semaphore was closed.
 * -EBUSY       (free) the object is still locked or waited on.
 * -ENOMEM      out of memory.
 * A plain thread that blocks in a zokio call needs a small per-thread
 * waiter; if it cannot be allocated the call returns -ENOMEM.
 *
 * A future must not outlive the object it waits on, and an object must
 * not be freed while a future made from it lives.
 */
#ifndef ZOKIO_SYNC_H
#define ZOKIO_SYNC_H

#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Private: a waiter's place in a primitive's queue, embedded in each wait
 * future. Its fields belong to the library. */
typedef struct zk_wait_node {
    struct zk_wait_node *_prev, *_next;
    zk_waker _waker;
    uint64_t _want;
    uint32_t _state;
    uint32_t _flags;
} zk_wait_node;

/* ====================================================================== */
/* Semaphore                                                              */
/* ====================================================================== */

typedef struct zk_semaphore zk_semaphore;

/* The most permits a semaphore can hold, and a single acquire can ask for. */
#define ZK_SEMAPHORE_MAX_PERMITS ((size_t)1 << 60)

/*
 * Creates a semaphore holding `permits` permits (0 is allowed).
 * Returns 0 and sets `*out`, or -EINVAL (`out` NULL, or permits above
 * ZK_SEMAPHORE_MAX_PERMITS) or -ENOMEM.
 */
ZK_EXTERN int zk_semaphore_new(size_t permits, zk_semaphore **out);

/* Frees a semaphore. Returns 0 (NULL is a no-op), or -EBUSY while tasks
 * wait on it (nothing is freed). */
ZK_EXTERN int zk_semaphore_free(zk_semaphore *s);

/*
 * Waits until `n` permits can be taken and takes them. Waiters are served
 * in FIFO order: a large request at the head of the queue collects
 * released permits until it has enough, and later requests wait behind it.
 * Returns 0, or -EINVAL (NULL, n == 0, n > ZK_SEMAPHORE_MAX_PERMITS),
 * -EPIPE (the semaphore is or gets closed), -ECANCELED, -EPERM, -ENOMEM.
 */
ZK_EXTERN int zk_semaphore_acquire(zk_semaphore *s, size_t n);

/* zk_semaphore_acquire() that gives up at `deadline` with -ETIMEDOUT
 * (holding no permit). */
ZK_EXTERN int zk_semaphore_acquire_until(zk_semaphore *s, size_t n,
                                         zk_instant deadline);

/* Takes `n` permits if that needs no wait (enough permits and nobody
 * queued). Returns 0, -EAGAIN, -EPIPE (closed) or -EINVAL. */
ZK_EXTERN int zk_semaphore_try_acquire(zk_semaphore *s, size_t n);

/*
 * Adds `n` permits (usually ones acquired earlier); they go to waiters in
 * FIFO order first. Works on a closed semaphore too. Returns 0, or -EINVAL
 * (NULL) or -EOVERFLOW (the total would exceed ZK_SEMAPHORE_MAX_PERMITS;
 * nothing added).
 */
ZK_EXTERN int zk_semaphore_release(zk_semaphore *s, size_t n);

/*
 * Closes the semaphore: every waiter, and every later acquire, fails with
 * -EPIPE. Permits held stay held and may still be released. Returns 0,
 * -EALREADY if it was closed already, or -EINVAL.
 */
ZK_EXTERN int zk_semaphore_close(zk_semaphore *s);

/* Returns the number of permits available right now (0 for NULL). */
ZK_EXTERN size_t zk_semaphore_available(zk_semaphore *s);

/* A future that acquires permits: output 0 (permits taken), -EINVAL or
 * -EPIPE. Dropping it after it became ready keeps the permits (they are
 * the caller's); dropping it before gives back whatever it had collected,
 * to the next waiters first. */
typedef struct zk_semaphore_acquire_future {
    zk_future base;
    void *_sem;
    size_t _n;
    zk_wait_node _node;
} zk_semaphore_acquire_future;

/* Initialises an acquire of `n` permits of `s`. Invalid arguments show
 * as an output of -EINVAL when it is polled. */
ZK_EXTERN void zk_semaphore_acquire_future_init(zk_semaphore_acquire_future *f,
                                                zk_semaphore *s, size_t n);

/* ====================================================================== */
/* Mutex                                                                  */
/* ====================================================================== */

/*
 * An async mutex: waiting for it parks the task, and it may be held across
 * awaits. Unlocking with waiters hands the lock to the first of them
 * (FIFO, no barging). Ownership is not tied to a task: any task or thread
 * may unlock a locked mutex (as with a Tokio guard that was moved).
 */
typedef struct zk_mutex zk_mutex;

/* Creates an unlocked mutex. Returns 0, or -EINVAL (`out` NULL), -ENOMEM. */
ZK_EXTERN int zk_mutex_new(zk_mutex **out);

/* Frees a mutex. Returns 0 (NULL is a no-op), or -EBUSY if it is locked or
 * waited on (nothing is freed). */
ZK_EXTERN int zk_mutex_free(zk_mutex *m);

/* Locks the mutex, waiting as long as needed. Returns 0 (locked), or
 * -EINVAL, -ECANCELED, -EPERM, -ENOMEM (not locked). */
ZK_EXTERN int zk_mutex_lock(zk_mutex *m);

/* zk_mutex_lock() that gives up at `deadline` (-ETIMEDOUT, not locked). */
ZK_EXTERN int zk_mutex_lock_until(zk_mutex *m, zk_instant deadline);

/* Locks the mutex if it is free and nobody waits. Returns 0, -EAGAIN or
 * -EINVAL. */
ZK_EXTERN int zk_mutex_try_lock(zk_mutex *m);

/* Unlocks; the first waiter (if any) gets the lock. Returns 0, -EINVAL, or
 * -EPERM if the mutex is not locked. */
ZK_EXTERN int zk_mutex_unlock(zk_mutex *m);

/* A lock future: output 0 once the caller holds the lock. Dropped before
 * it returned ready, it holds nothing (a hand-off it had received goes to
 * the next waiter). */
typedef zk_semaphore_acquire_future zk_mutex_lock_future;

/* Initialises a lock future for `m`. */
ZK_EXTERN void zk_mutex_lock_future_init(zk_mutex_lock_future *f, zk_mutex *m);

/* ====================================================================== */
/* RwLock                                                                 */
/* ====================================================================== */

/*
 * A readers-writer lock, fair: requests are served in FIFO order, so a
 * waiting writer blocks readers that come after it and is never starved;
 * readers queued together behind a writer all enter when it unlocks.
 */
typedef struct zk_rwlock zk_rwlock;

/* How many readers may hold the lock at once: one more waits (or its try
 * fails with -EAGAIN) until a reader unlocks. */
#define ZK_RWLOCK_MAX_READERS ((size_t)1 << 30)

/* Creates an unlocked rwlock. Returns 0, -EINVAL (`out` NULL) or -ENOMEM. */
ZK_EXTERN int zk_rwlock_new(zk_rwlock **out);

/* Frees it. Returns 0 (NULL is a no-op) or -EBUSY if held or waited on. */
ZK_EXTERN int zk_rwlock_free(zk_rwlock *l);

/* Takes a shared (read) lock. Returns 0, or -EINVAL, -ECANCELED, -EPERM,
 * -ENOMEM. */
ZK_EXTERN int zk_rwlock_read(zk_rwlock *l);

/* zk_rwlock_read() that gives up at `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_rwlock_read_until(zk_rwlock *l, zk_instant deadline);

/* Takes a read lock without waiting: 0, -EAGAIN, or -EINVAL. */
ZK_EXTERN int zk_rwlock_try_read(zk_rwlock *l);

/* Releases a read lock. Returns 0, -EINVAL, or -EPERM if no read lock is
 * held. */
ZK_EXTERN int zk_rwlock_read_unlock(zk_rwlock *l);

/* Takes the exclusive (write) lock. Returns 0, or -EINVAL, -ECANCELED,
 * -EPERM, -ENOMEM. */
ZK_EXTERN int zk_rwlock_write(zk_rwlock *l);

/* zk_rwlock_write() that gives up at `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_rwlock_write_until(zk_rwlock *l, zk_instant deadline);

/* Takes the write lock without waiting: 0, -EAGAIN, or -EINVAL. */
ZK_EXTERN int zk_rwlock_try_write(zk_rwlock *l);

/* Releases the write lock. Returns 0, -EINVAL, or -EPERM if it is not
 * write-locked. */
ZK_EXTERN int zk_rwlock_write_unlock(zk_rwlock *l);

/* Futures for the read and write locks (output 0 once held). */
typedef zk_semaphore_acquire_future zk_rwlock_future;

/* Initialises a future taking a read lock of `l`. */
ZK_EXTERN void zk_rwlock_read_future_init(zk_rwlock_future *f, zk_rwlock *l);

/* Initialises a future taking the write lock of `l`. */
ZK_EXTERN void zk_rwlock_write_future_init(zk_rwlock_future *f, zk_rwlock *l);

/* ====================================================================== */
/* Notify                                                                 */
/* ====================================================================== */

/*
 * Wakes waiting tasks, as Tokio's Notify does. notify_one wakes the first
 * waiter, or, when nobody waits, stores one permit (at most one) that the
 * next wait consumes at once. notify_waiters wakes every task waiting at
 * that moment (and every future initialised before the call, even if not
 * polled yet) and stores nothing.
 */
typedef struct zk_notify zk_notify;

/* Creates a notify. Returns 0, -EINVAL (`out` NULL) or -ENOMEM. */
ZK_EXTERN int zk_notify_new(zk_notify **out);

/* Frees it. Returns 0 (NULL is a no-op) or -EBUSY while tasks wait. */
ZK_EXTERN int zk_notify_free(zk_notify *n);

/* Wakes the first waiter, or stores a permit if nobody waits. Returns 0 or
 * -EINVAL. A waiter woken this way that is dropped before it returned
 * passes the notification on. */
ZK_EXTERN int zk_notify_one(zk_notify *n);

/* Wakes every current waiter; stores no permit. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_notify_waiters(zk_notify *n);

/* Waits for a notification (or consumes the stored permit). Returns 0, or
 * -EINVAL, -ECANCELED, -EPERM, -ENOMEM. */
ZK_EXTERN int zk_notify_wait(zk_notify *n);

/* zk_notify_wait() that gives up at `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_notify_wait_until(zk_notify *n, zk_instant deadline);

/* Consumes the stored permit if there is one: 0, -EAGAIN, or -EINVAL. */
ZK_EXTERN int zk_notify_try_wait(zk_notify *n);

/* A future that waits for a notification (output 0). */
typedef struct zk_notify_future {
    zk_future base;
    void *_notify;
    uint64_t _gen;
    zk_wait_node _node;
} zk_notify_future;

/* Initialises a wait for `n`. notify_waiters calls made after this count
 * for the future even if it is polled later. */
ZK_EXTERN void zk_notify_future_init(zk_notify_future *f, zk_notify *n);

/* ====================================================================== */
/* Condition variable                                                     */
/* ====================================================================== */

/*
 * A condition variable for the async mutex. Waiting unlocks the mutex and
 * joins the condvar's queue in one step (a notify after the unlock cannot
 * be missed), and locks the mutex again before returning. notify_one and
 * notify_all store nothing when nobody waits. Spurious wake-ups do not
 * happen, but re-check the condition in a loop anyway, as usual.
 */
typedef struct zk_condvar zk_condvar;

/* Creates a condvar. Returns 0, -EINVAL (`out` NULL) or -ENOMEM. */
ZK_EXTERN int zk_condvar_new(zk_condvar **out);

/* Frees it. Returns 0 (NULL is a no-op) or -EBUSY while tasks wait. */
ZK_EXTERN int zk_condvar_free(zk_condvar *cv);

/*
 * Unlocks `m` (which the caller must hold), waits for a notification, then
 * locks `m` again. Only 0 returns with `m` held. Returns:
 * 0            notified; `m` is held.
 * -ECANCELED   the task was aborted, or its cancel scope cancelled (before
 *              or during the wait); `m` is NOT held (a cancelled task
 *              cannot wait for it) - do not unlock it.
 * -ETIMEDOUT   the deadline of the task's cancel scope passed (zokio/
 *              scope.h); `m` is NOT held, as for -ECANCELED.
 * -EPERM       `m` was not locked, or called from a future task's poll:
 *              nothing happened (the caller's hold on `m` is unchanged).
 * -EINVAL      a NULL argument; -ENOMEM (plain thread, see above): nothing
 *              happened either.
 */
ZK_EXTERN int zk_condvar_wait(zk_condvar *cv, zk_mutex *m);

/* zk_condvar_wait() with a deadline on the wait for a notification:
 * returns -ETIMEDOUT when it passes first, and then `m` is NOT held, as
 * for every error. (Unlike pthread_cond_timedwait(), which locks again:
 * here a cancel scope's deadline also gives -ETIMEDOUT, and could not wait
 * for the lock, so one rule for every error is the one a caller can rely
 * on. A notification that raced the deadline wins: 0, `m` held.) */
ZK_EXTERN int zk_condvar_wait_until(zk_condvar *cv, zk_mutex *m,
                                    zk_instant deadline);

/* Wakes the first waiter. Returns 0 or -EINVAL. A waiter woken this way
 * that is dropped before it returned passes the notification on. */
ZK_EXTERN int zk_condvar_notify_one(zk_condvar *cv);

/* Wakes every waiter. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_condvar_notify_all(zk_condvar *cv);

/* The future form of zk_condvar_wait(): the first poll unlocks the mutex;
 * the output is what zk_condvar_wait[_until]() returns, with the mutex
 * held for 0 only. Dropped after its first poll but before it
 * was ready, it does not hold the mutex (a lock hand-off it had received
 * is passed on); dropped before its first poll, it did nothing (the caller
 * still holds the mutex). */
typedef struct zk_condvar_future {
    zk_future base;
    void *_cv;
    zk_mutex *_mutex;
    uint32_t _phase;
    bool _has_deadline;
    bool _unlocked;
    zk_wait_node _node;
    zk_mutex_lock_future _lock;
    zk_sleep_future _sleep;
} zk_condvar_future;

/* Initialises a wait on `cv` with the mutex `m`. */
ZK_EXTERN void zk_condvar_future_init(zk_condvar_future *f, zk_condvar *cv,
                                      zk_mutex *m);

/* Initialises a wait that ends with -ETIMEDOUT (the mutex not held) if no
 * notification came by `deadline`. */
ZK_EXTERN void zk_condvar_future_init_until(zk_condvar_future *f,
                                            zk_condvar *cv, zk_mutex *m,
                                            zk_instant deadline);

/* ====================================================================== */
/* Barrier                                                                */
/* ====================================================================== */

/*
 * Lets `n` tasks wait until all of them arrived, then releases them all
 * and starts over (it is reusable). Exactly one task of each round, the
 * last to arrive, is told it is the leader.
 * A waiter that is dropped (aborted, timed out) before its round completed
 * withdraws its arrival: the round then needs another task.
 */
typedef struct zk_barrier zk_barrier;

/* The value a barrier wait returns to the leader of a round. */
#define ZK_BARRIER_LEADER 1

/* Creates a barrier for `n` tasks. Returns 0, -EINVAL (`out` NULL or n == 0)
 * or -ENOMEM. */
ZK_EXTERN int zk_barrier_new(size_t n, zk_barrier **out);

/* Frees it. Returns 0 (NULL is a no-op) or -EBUSY while tasks wait. */
ZK_EXTERN int zk_barrier_free(zk_barrier *b);

/* Arrives and waits for the round to complete. Returns ZK_BARRIER_LEADER
 * for one task of the round and 0 for the others, or -EINVAL, -ECANCELED,
 * -EPERM, -ENOMEM (the arrival was withdrawn). */
ZK_EXTERN int zk_barrier_wait(zk_barrier *b);

/* zk_barrier_wait() that gives up (and withdraws) at `deadline` with
 * -ETIMEDOUT. */
ZK_EXTERN int zk_barrier_wait_until(zk_barrier *b, zk_instant deadline);

/* The future form: the first poll arrives; output as zk_barrier_wait(). */
typedef struct zk_barrier_future {
    zk_future base;
    void *_barrier;
    zk_wait_node _node;
} zk_barrier_future;

/* Initialises a wait on `b`. */
ZK_EXTERN void zk_barrier_future_init(zk_barrier_future *f, zk_barrier *b);

/* ====================================================================== */
/* OnceCell                                                               */
/* ====================================================================== */

/*
 * A cell set once, by one initializer, whose value everyone else waits
 * for. The value is a pointer the cell stores but does not own: whoever
 * initialised it releases what it points to after freeing the cell.
 * If the initializer fails (or its task is aborted, or its future
 * dropped), the next waiter in FIFO order runs its own initializer.
 */
typedef struct zk_once_cell zk_once_cell;

/* An initializer: stores the value in `*value` and returns 0, or returns a
 * negative errno to let the next waiter try. It runs in the caller's task
 * (it may await) or thread. */
typedef int (*zk_once_init_fn)(void *arg, void **value);

/* The output of a once-cell wait future that hands the caller the duty to
 * initialise the cell. */
#define ZK_ONCE_INIT 1

/* Creates an empty cell. Returns 0, -EINVAL (`out` NULL) or -ENOMEM. */
ZK_EXTERN int zk_once_cell_new(zk_once_cell **out);

/* Frees the cell (not its value). Returns 0 (NULL is a no-op) or -EBUSY
 * while it is being initialised or waited on. */
ZK_EXTERN int zk_once_cell_free(zk_once_cell *c);

/* Reads the value if the cell is set: 0 and `*value`, -EAGAIN (not set
 * yet), or -EINVAL. */
ZK_EXTERN int zk_once_cell_get(zk_once_cell *c, void **value);

/*
 * Returns the cell's value in `*value`, initialising it with fn(arg) if it
 * is empty. While another caller's initializer runs, waits for its
 * outcome: its value, or (if it failed) this caller's turn to run `fn`.
 * Returns 0, or the negative errno fn returned (the cell stays empty for
 * the next caller), or -EINVAL, -ECANCELED, -EPERM, -ENOMEM.
 */
ZK_EXTERN int zk_once_cell_get_or_init(zk_once_cell *c, zk_once_init_fn fn,
                                       void *arg, void **value);

/* zk_once_cell_get_or_init() whose wait (not fn itself) gives up at
 * `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_once_cell_get_or_init_until(zk_once_cell *c,
                                             zk_once_init_fn fn, void *arg,
                                             void **value, zk_instant deadline);

/*
 * The future form, for callers that initialise without a stack: output 0
 * once the cell is set (read it with zk_once_cell_get()), or ZK_ONCE_INIT:
 * the caller must now initialise the cell and then call
 * zk_once_cell_complete() or zk_once_cell_abandon(). -EINVAL for a bad
 * cell. Dropped after being given the turn but before returning it, the
 * future passes the turn on.
 */
typedef struct zk_once_cell_future {
    zk_future base;
    void *_cell;
    zk_wait_node _node;
} zk_once_cell_future;

/* Initialises a wait on `c`. */
ZK_EXTERN void zk_once_cell_future_init(zk_once_cell_future *f,
                                        zk_once_cell *c);

/* Sets the value (by the holder of the ZK_ONCE_INIT turn) and wakes every
 * waiter. Returns 0, -EINVAL, or -EPERM if no initialisation is under
 * way. */
ZK_EXTERN int zk_once_cell_complete(zk_once_cell *c, void *value);

/* Gives the turn up (initialisation failed): the next waiter gets it, or
 * the cell becomes empty again. Returns 0, -EINVAL, or -EPERM if no
 * initialisation is under way. */
ZK_EXTERN int zk_once_cell_abandon(zk_once_cell *c);

#ifdef __cplusplus
}
#endif
#endif
