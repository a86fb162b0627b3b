/* rwlock.c - the fair readers-writer lock: a semaphore of
 * 2 * ZK_RWLOCK_MAX_READERS + 1 permits where a reader takes two and a
 * writer all of them. FIFO service means a queued writer collects the permits
 * readers give back while later readers queue behind it: writers never starve.
 */
#include <errno.h>
#include <stdlib.h>

#include "sync/sem.h"

/* Two permits per reader and one more for a writer: at most
 * ZK_RWLOCK_MAX_READERS readers fit (the next one waits, or its try
 * fails, one permit short), and what they hold is always less than what a
 * writer holds, so an unlock can tell which kind of lock is held. */
#define ZK__RW_READ 2
#define ZK__RW_ALL  (ZK__RW_READ * ZK_RWLOCK_MAX_READERS + 1)

struct zk_rwlock {
    struct zk_semaphore sem;
};

int zk_rwlock_new(zk_rwlock **out) {
    if (out == NULL)
        return -EINVAL;
    zk_rwlock *l = malloc(sizeof *l);
    if (l == NULL)
        return -ENOMEM;
    zk__sem_init(&l->sem, ZK__RW_ALL);
    *out = l;
    return 0;
}

int zk_rwlock_free(zk_rwlock *l) {
    if (l == NULL)
        return 0;
    if (!zk__sem_quiet(&l->sem, true))
        return -EBUSY;
    free(l);
    return 0;
}

void zk_rwlock_read_future_init(zk_rwlock_future *f, zk_rwlock *l) {
    if (f != NULL)
        zk__sem_future_init(f, l ? &l->sem : NULL, ZK__RW_READ);
}

void zk_rwlock_write_future_init(zk_rwlock_future *f, zk_rwlock *l) {
    if (f != NULL)
        zk__sem_future_init(f, l ? &l->sem : NULL, ZK__RW_ALL);
}

static int zk__rw_wait(zk_rwlock *l, size_t n, bool has_deadline,
                       zk_instant deadline) {
    if (l == NULL)
        return -EINVAL;
    zk_rwlock_future f;
    zk__sem_future_init(&f, &l->sem, n);
    return (int)zk__wait(&f.base, has_deadline, deadline);
}

int zk_rwlock_read(zk_rwlock *l) {
    return zk__rw_wait(l, ZK__RW_READ, false, 0);
}

int zk_rwlock_read_until(zk_rwlock *l, zk_instant deadline) {
    return zk__rw_wait(l, ZK__RW_READ, true, deadline);
}

int zk_rwlock_write(zk_rwlock *l) {
    return zk__rw_wait(l, ZK__RW_ALL, false, 0);
}

int zk_rwlock_write_until(zk_rwlock *l, zk_instant deadline) {
    return zk__rw_wait(l, ZK__RW_ALL, true, deadline);
}

int zk_rwlock_try_read(zk_rwlock *l) {
    return l ? zk__sem_try_acquire(&l->sem, ZK__RW_READ) : -EINVAL;
}

int zk_rwlock_try_write(zk_rwlock *l) {
    return l ? zk__sem_try_acquire(&l->sem, ZK__RW_ALL) : -EINVAL;
}

/* Readers hold a positive even number of permits below ALL; a writer
 * holds exactly ALL (odd). */
static bool zk__rw_read_held(size_t held, size_t n) {
    (void)n;
    return held >= ZK__RW_READ && held < ZK__RW_ALL;
}

static bool zk__rw_write_held(size_t held, size_t n) {
    (void)n;
    return held == ZK__RW_ALL;
}

int zk_rwlock_read_unlock(zk_rwlock *l) {
    return l ? zk__sem_release_held(&l->sem, ZK__RW_READ, zk__rw_read_held)
             : -EINVAL;
}

int zk_rwlock_write_unlock(zk_rwlock *l) {
    return l ? zk__sem_release_held(&l->sem, ZK__RW_ALL, zk__rw_write_held)
             : -EINVAL;
}
