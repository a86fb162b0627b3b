/* idle.c - sleeping and searching workers, see idle.h. */
#include "idle.h"

#include <errno.h>
#include <stdlib.h>

#define ZK__SEARCH_MASK ((uint64_t)0xFFFF)
#define ZK__UNPARK_ONE  ((uint64_t)1 << 16)

static inline uint64_t zk__searching(uint64_t s) {
    return s & ZK__SEARCH_MASK;
}
static inline uint64_t zk__unparked(uint64_t s) {
    return s >> 16;
}

int zk__idle_init(zk__idle *idle, size_t workers) {
    idle->workers = workers;
    idle->nsleepers = 0;
    idle->sleepers = calloc(workers, sizeof *idle->sleepers);
    if (idle->sleepers == NULL)
        return -ENOMEM;
    /* Every worker starts unparked and not searching. */
    atomic_init(&idle->state, (uint64_t)workers * ZK__UNPARK_ONE);
    int rc = -pthread_mutex_init(&idle->lock, NULL);
    if (rc != 0)
        free(idle->sleepers);
    return rc;
}

void zk__idle_destroy(zk__idle *idle) {
    pthread_mutex_destroy(&idle->lock);
    free(idle->sleepers);
}

static bool zk__idle_should_wake(zk__idle *idle) {
    uint64_t s = atomic_load(&idle->state);
    return zk__searching(s) == 0 && zk__unparked(s) < idle->workers;
}

size_t zk__idle_worker_to_notify(zk__idle *idle) {
    /* The caller has just pushed a task (a plain or release store): order
     * that store before the load of `state`. Without the fence the two may
     * be reordered (store-load, even on x86), and a worker going to sleep
     * could find the queue still empty while we find it still searching:
     * nobody would wake for the task. The sleeper's side is a read-modify-
     * write of `state`, a full barrier, before it rechecks the queues. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!zk__idle_should_wake(idle))
        return SIZE_MAX;
    pthread_mutex_lock(&idle->lock);
    size_t index = SIZE_MAX;
    if (zk__idle_should_wake(idle) && idle->nsleepers > 0) {
        atomic_fetch_add(&idle->state, ZK__UNPARK_ONE + 1);
        index = idle->sleepers[--idle->nsleepers];
    }
    pthread_mutex_unlock(&idle->lock);
    return index;
}

bool zk__idle_transition_to_searching(zk__idle *idle) {
    uint64_t s = atomic_load(&idle->state);
    if (2 * zk__searching(s) >= idle->workers)
        return false;
    atomic_fetch_add(&idle->state, 1);
    return true;
}

bool zk__idle_transition_from_searching(zk__idle *idle) {
    return zk__searching(atomic_fetch_sub(&idle->state, 1)) == 1;
}

void zk__idle_transition_to_parked(zk__idle *idle, size_t index,
                                   bool searching) {
    pthread_mutex_lock(&idle->lock);
    atomic_fetch_sub(&idle->state, ZK__UNPARK_ONE + (searching ? 1 : 0));
    idle->sleepers[idle->nsleepers++] = index;
    pthread_mutex_unlock(&idle->lock);
}

bool zk__idle_is_parked(zk__idle *idle, size_t index) {
    pthread_mutex_lock(&idle->lock);
    bool parked = false;
    for (size_t i = 0; i < idle->nsleepers && !parked; i++)
        parked = idle->sleepers[i] == index;
    pthread_mutex_unlock(&idle->lock);
    return parked;
}

bool zk__idle_unpark_worker_by_id(zk__idle *idle, size_t index) {
    pthread_mutex_lock(&idle->lock);
    bool found = false;
    for (size_t i = 0; i < idle->nsleepers; i++) {
        if (idle->sleepers[i] == index) {
            idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
            atomic_fetch_add(&idle->state, ZK__UNPARK_ONE);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&idle->lock);
    return found;
}
