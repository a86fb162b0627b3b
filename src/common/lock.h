/*
 * lock.h - the short lock inside every sync primitive and channel.
 *
 * Their critical sections are a few dozen instructions (move a counter,
 * link a waiter, copy a message). pthread's default mutex sleeps in the
 * kernel at the first sign of contention, so two workers sending on one
 * channel spent most of their time in futex calls. This lock spins
 * briefly first (the holder is almost always about to release), and only
 * then sleeps on a futex, so a holder that was preempted costs no CPU.
 *
 * state: 0 free, 1 held, 2 held and someone may sleep on it (Drepper's
 * "Futexes Are Tricky", mutex 2). Plain C11 atomics with acquire/release,
 * so ThreadSanitizer sees the happens-before edges.
 */
#ifndef ZK__LOCK_H
#define ZK__LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct zk__lock {
    _Atomic uint32_t state;
} zk__lock;

#define ZK__LOCK_INIT                                                          \
    { 0 }

static inline void zk__lock_init(zk__lock *l) {
    atomic_init(&l->state, 0);
}

/* The contended paths, in lock.c. */
void zk__lock_slow(zk__lock *l);
void zk__lock_wake(zk__lock *l);

/* True when it took the lock. */
static inline bool zk__lock_try(zk__lock *l) {
    uint32_t free_state = 0;
    return atomic_compare_exchange_strong_explicit(
        &l->state, &free_state, 1, memory_order_acquire, memory_order_relaxed);
}

static inline void zk__lock_acquire(zk__lock *l) {
    if (!zk__lock_try(l))
        zk__lock_slow(l);
}

static inline void zk__lock_release(zk__lock *l) {
    if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
        zk__lock_wake(l);
}

#endif
