/* test_lock.c - the short lock under every primitive (src/common/lock.h):
 * mutual exclusion with more threads than cores, so that holders are
 * preempted and lockers go through the spin and the futex sleep. */
#include <pthread.h>

#include "common/lock.h"
#include "helpers.h"

ZK_SUITE(lock);

#define LOCK_THREADS 6
#define LOCK_ITERS   200000

typedef struct locked_pair {
    zk__lock lock;
    /* Two plain counters changed together under the lock: a locker that
     * saw them differ would have overlapped another. */
    long a, b;
    long overlaps;
} locked_pair;

static void *hammer(void *arg) {
    locked_pair *p = arg;
    for (int i = 0; i < LOCK_ITERS; i++) {
        zk__lock_acquire(&p->lock);
        if (p->a != p->b)
            p->overlaps++;
        p->a++;
        p->b++;
        zk__lock_release(&p->lock);
    }
    return NULL;
}

ZK_TEST(lock, excludes_under_contention_and_ends_free) {
    locked_pair p = {ZK__LOCK_INIT, 0, 0, 0};
    pthread_t t[LOCK_THREADS];
    for (int i = 0; i < LOCK_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, &p), 0);
    for (int i = 0; i < LOCK_THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(p.overlaps, 0);
    cr_assert_eq(p.a, (long)LOCK_THREADS * LOCK_ITERS, "no increment lost");
    cr_assert_eq(p.b, p.a);
    cr_assert(zk__lock_try(&p.lock), "free once every locker is done");
    cr_assert_not(zk__lock_try(&p.lock), "held: a second try fails");
    zk__lock_release(&p.lock);
    cr_assert_eq(atomic_load(&p.lock.state), 0u);
}
