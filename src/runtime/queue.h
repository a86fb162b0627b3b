/*
 * queue.h - an intrusive FIFO of tasks linked through their header's
 * `queue_next`. A task is in at most one queue at a time: only the holder of
 * its "notified" reference may enqueue it (see task_state.h).
 */
#ifndef ZK__QUEUE_H
#define ZK__QUEUE_H

#include <stddef.h>

#include "task.h"

typedef struct zk__task_fifo {
    zk__task *head;
    zk__task *tail;
    size_t len;
} zk__task_fifo;

static inline void zk__fifo_push(zk__task_fifo *q, zk__task *t) {
    t->queue_next = NULL;
    if (q->tail)
        q->tail->queue_next = t;
    else
        q->head = t;
    q->tail = t;
    q->len++;
}

static inline zk__task *zk__fifo_pop(zk__task_fifo *q) {
    zk__task *t = q->head;
    if (t) {
        q->head = t->queue_next;
        if (!q->head)
            q->tail = NULL;
        t->queue_next = NULL;
        q->len--;
    }
    return t;
}

/* Appends `from` to the end of `to`. */
static inline void zk__fifo_splice(zk__task_fifo *to, zk__task_fifo *from) {
    if (from->len == 0)
        return;
    if (to->tail)
        to->tail->queue_next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    to->len += from->len;
}

#endif
