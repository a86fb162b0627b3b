/* lock.c - the contended paths of the short lock (see lock.h). */
#include "common/lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"

/* How many times a locker looks again before it sleeps: long enough to
 * outlast a critical section of the primitives (tens of nanoseconds), short
 * enough that a preempted holder costs little (a few microseconds). */
#define ZK__LOCK_SPINS 100

void zk__lock_slow(zk__lock *l) {
    for (int i = 0; i < ZK__LOCK_SPINS; i++) {
        zk__cpu_relax();
        /* Read before trying: a failed CAS takes the line from the holder. */
        uint32_t s = atomic_load_explicit(&l->state, memory_order_relaxed);
        if (s == 0 && zk__lock_try(l))
            return;
        if (s == 2)
            break; /* others sleep already: join them */
    }
    /* Mark "maybe sleepers" and sleep until a release finds the mark. A
     * locker that gets the lock this way leaves the mark: it cannot know
     * whether others still sleep, so its release wakes one to find out. */
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, (uint32_t *)&l->state, FUTEX_WAIT_PRIVATE, 2, NULL,
                NULL, 0);
}

void zk__lock_wake(zk__lock *l) {
    syscall(SYS_futex, (uint32_t *)&l->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
            0);
}
