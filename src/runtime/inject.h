/*
 * inject.h - the global (inject) queue: tasks scheduled from outside a
 * scheduler's own threads, and the overflow of full local queues. A mutex
 * guards the list; `len` lets consumers skip the lock when it is empty.
 */
#ifndef ZK__INJECT_H
#define ZK__INJECT_H

#include <pthread.h>
#include <stdatomic.h>

#include "queue.h"

typedef struct zk__inject {
    pthread_mutex_t lock;
    zk__task_fifo fifo;
    _Atomic size_t len;
} zk__inject;

static inline int zk__inject_init(zk__inject *q) {
    q->fifo = (zk__task_fifo){NULL, NULL, 0};
    atomic_init(&q->len, 0);
    return -pthread_mutex_init(&q->lock, NULL);
}

static inline void zk__inject_destroy(zk__inject *q) {
    pthread_mutex_destroy(&q->lock);
}

static inline size_t zk__inject_len(zk__inject *q) {
    return atomic_load_explicit(&q->len, memory_order_acquire);
}

/* Appends a chain of `n` tasks linked through queue_next, head to tail. */
static inline void zk__inject_push_batch(zk__inject *q, zk__task *head,
                                         zk__task *tail, size_t n) {
    tail->queue_next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->fifo.tail)
        q->fifo.tail->queue_next = head;
    else
        q->fifo.head = head;
    q->fifo.tail = tail;
    q->fifo.len += n;
    atomic_store_explicit(&q->len, q->fifo.len, memory_order_release);
    pthread_mutex_unlock(&q->lock);
}

static inline void zk__inject_push(zk__inject *q, zk__task *t) {
    zk__inject_push_batch(q, t, t, 1);
}

static inline zk__task *zk__inject_pop(zk__inject *q) {
    if (zk__inject_len(q) == 0)
        return NULL;
    pthread_mutex_lock(&q->lock);
    zk__task *t = zk__fifo_pop(&q->fifo);
    atomic_store_explicit(&q->len, q->fifo.len, memory_order_release);
    pthread_mutex_unlock(&q->lock);
    return t;
}

#endif
