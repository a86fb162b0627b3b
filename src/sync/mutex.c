/* mutex.c - the async mutex: a semaphore of one permit (see sem.h), so the
 * lock is handed to the first waiter in FIFO order. */
#include <errno.h>
#include <stdlib.h>

#include "sync/sem.h"

struct zk_mutex {
    struct zk_semaphore sem;
};

int zk_mutex_new(zk_mutex **out) {
    if (out == NULL)
        return -EINVAL;
    zk_mutex *m = malloc(sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    zk__sem_init(&m->sem, 1);
    *out = m;
    return 0;
}

int zk_mutex_free(zk_mutex *m) {
    if (m == NULL)
        return 0;
    if (!zk__sem_quiet(&m->sem, true))
        return -EBUSY;
    free(m);
    return 0;
}

void zk_mutex_lock_future_init(zk_mutex_lock_future *f, zk_mutex *m) {
    if (f != NULL)
        zk__sem_future_init(f, m ? &m->sem : NULL, 1);
}

int zk_mutex_lock(zk_mutex *m) {
    if (m == NULL)
        return -EINVAL;
    zk_mutex_lock_future f;
    zk__sem_future_init(&f, &m->sem, 1);
    return (int)zk__wait(&f.base, false, 0);
}

int zk_mutex_lock_until(zk_mutex *m, zk_instant deadline) {
    if (m == NULL)
        return -EINVAL;
    zk_mutex_lock_future f;
    zk__sem_future_init(&f, &m->sem, 1);
    return (int)zk__wait(&f.base, true, deadline);
}

int zk_mutex_try_lock(zk_mutex *m) {
    if (m == NULL)
        return -EINVAL;
    return zk__sem_try_acquire(&m->sem, 1);
}

static bool zk__mutex_locked(size_t held, size_t n) {
    (void)n;
    return held == 1;
}

int zk_mutex_unlock(zk_mutex *m) {
    if (m == NULL)
        return -EINVAL;
    return zk__sem_release_held(&m->sem, 1, zk__mutex_locked);
}
