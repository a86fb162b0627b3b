/*
 * sem.h - the batch semaphore under the semaphore, the mutex (1 permit)
 * and the rwlock (a reader takes 1 permit, a writer all of them), as in
 * Tokio.
 *
 * Invariant (under `lock`): while waiters are queued, `permits` is 0.
 * Released permits go to the head waiter first; a waiter that cannot be
 * served whole keeps what it collected (node._want counts what it still
 * misses) so a big request at the head cannot be starved by small ones.
 */
#ifndef ZK__SEM_H
#define ZK__SEM_H

#include "sync/waitq.h"

struct zk_semaphore {
    zk__lock lock;
    /* Free permits: owned by nobody, not assigned to a waiter. */
    size_t permits;
    /* Permits handed to acquirers whose acquire completed (ready or DONE)
     * and not released since: lets the mutex and rwlock detect an unlock
     * of something not locked. */
    size_t held;
    bool closed;
    zk__waitq waiters;
};

void zk__sem_init(struct zk_semaphore *s, size_t permits);
/* True when nothing waits (and, with `idle`, no permit is held). */
bool zk__sem_quiet(struct zk_semaphore *s, bool idle);
int zk__sem_try_acquire(struct zk_semaphore *s, size_t n);
/* Releases `n` held permits; -EPERM when check(held) refuses. */
int zk__sem_release_held(struct zk_semaphore *s, size_t n,
                         bool (*check)(size_t held, size_t n));
void zk__sem_future_init(zk_semaphore_acquire_future *f, struct zk_semaphore *s,
                         size_t n);

#endif
