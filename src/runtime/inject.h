/*
 * inject.h - the global (inject) queue: tasks scheduled from outside a
 * scheduler's own threads, and the overflow of full local queues. A mutex
 * guards the lists; `len` lets consumers skip the lock when it is empty.
 *
 * Tasks that have run before (woken or yielded) and tasks that never ran
 * (just spawned) wait in two lists, and a pop prefers the first. A task
 * spawning many others overflows its worker's queue into this one; without
 * the split, tasks woken meanwhile (a timer that fired, a message that
 * came) that overflowed too would wait behind every spawned task that has
 * not started yet, tens of milliseconds at 100,000 spawns. Finishing work
 * already begun before starting new work also keeps memory flat (a
 * coroutine takes its stack when it starts). So that a steady stream of
 * wakes cannot hold new tasks back for ever, every ZK__INJECT_FRESH_EVERY-th
 * pop takes a new task when there is one.
 */
#ifndef ZK__INJECT_H
#define ZK__INJECT_H

#include <pthread.h>
#include <stdatomic.h>

#include "queue.h"

#define ZK__INJECT_FRESH_EVERY 16

typedef struct zk__inject {
    pthread_mutex_t lock;
    zk__task_fifo ran;   /* tasks that have run before */
    zk__task_fifo fresh; /* tasks that never ran */
    unsigned pops;       /* pops since a new task was last taken */
    _Atomic size_t len;  /* ran.len + fresh.len */
} zk__inject;

static inline int zk__inject_init(zk__inject *q) {
    q->ran = (zk__task_fifo){NULL, NULL, 0};
    q->fresh = (zk__task_fifo){NULL, NULL, 0};
    q->pops = 0;
    atomic_init(&q->len, 0);
    return -pthread_mutex_init(&q->lock, NULL);
}

static inline void zk__inject_destroy(zk__inject *q) {
    pthread_mutex_destroy(&q->lock);
}

static inline size_t zk__inject_len(zk__inject *q) {
    return atomic_load_explicit(&q->len, memory_order_acquire);
}

/* Appends a chain of tasks linked through queue_next, head to tail, each
 * to the list it belongs to, in the chain's order. The chain is split
 * before the lock is taken. */
static inline void zk__inject_push_batch(zk__inject *q, zk__task *head,
                                         zk__task *tail) {
    tail->queue_next = NULL;
    zk__task_fifo ran = {NULL, NULL, 0}, fresh = {NULL, NULL, 0};
    for (zk__task *t = head, *next; t != NULL; t = next) {
        next = t->queue_next;
        zk__fifo_push(t->has_run ? &ran : &fresh, t);
    }
    pthread_mutex_lock(&q->lock);
    zk__fifo_splice(&q->ran, &ran);
    zk__fifo_splice(&q->fresh, &fresh);
    atomic_store_explicit(&q->len, q->ran.len + q->fresh.len,
                          memory_order_release);
    pthread_mutex_unlock(&q->lock);
}

static inline void zk__inject_push(zk__inject *q, zk__task *t) {
    zk__inject_push_batch(q, t, t);
}

static inline zk__task *zk__inject_pop(zk__inject *q) {
    if (zk__inject_len(q) == 0)
        return NULL;
    pthread_mutex_lock(&q->lock);
    zk__task_fifo *from = &q->ran;
    if (q->fresh.len > 0 &&
        (q->ran.len == 0 || ++q->pops >= ZK__INJECT_FRESH_EVERY)) {
        from = &q->fresh;
        q->pops = 0;
    }
    zk__task *t = zk__fifo_pop(from);
    atomic_store_explicit(&q->len, q->ran.len + q->fresh.len,
                          memory_order_release);
    pthread_mutex_unlock(&q->lock);
    return t;
}

#endif
