/*
 * local_queue.h - a worker's bounded run queue (Tokio's design).
 *
 * The owner pushes at the tail and pops at the head without locks; other
 * workers steal half of it at a time. `head` packs two 32-bit indexes:
 * `real`, the next task to pop, and `steal`, the first task a thief is still
 * copying out (equal to `real` when nobody steals). Slots in [steal, tail)
 * belong to the queue; the owner never overwrites a slot a thief may still
 * be reading, and only one thief works on a queue at a time. Indexes wrap
 * around 2^32; the buffer is indexed modulo ZK__LOCAL_QUEUE_CAP.
 */
#ifndef ZK__LOCAL_QUEUE_H
#define ZK__LOCAL_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "inject.h"
#include "task.h"

#define ZK__LOCAL_QUEUE_CAP  256u
#define ZK__LOCAL_QUEUE_MASK (ZK__LOCAL_QUEUE_CAP - 1)

typedef struct zk__local_queue {
    _Atomic uint64_t head; /* (steal << 32) | real */
    _Atomic uint32_t tail; /* written by the owner only */
    /* Slots are atomics (relaxed) so that a thief's copy and the owner's
     * later reuse of a slot are ordered only through head/tail. */
    zk__task *_Atomic buffer[ZK__LOCAL_QUEUE_CAP];
} zk__local_queue;

void zk__local_queue_init(zk__local_queue *q);

/* Owner: appends `t`. When the queue is full, moves half of it (and `t`)
 * to `overflow` in one batch; returns true when it did that. */
bool zk__local_queue_push(zk__local_queue *q, zk__task *t,
                          zk__inject *overflow);

/* Owner: takes the oldest task, or NULL. */
zk__task *zk__local_queue_pop(zk__local_queue *q);

/* Thief: moves half of `src` into `dst` (the thief's own queue) and returns
 * one of the stolen tasks to run now, or NULL when there was nothing to take
 * (or another thief was busy). `*stolen` receives how many were taken. */
zk__task *zk__local_queue_steal(zk__local_queue *src, zk__local_queue *dst,
                                uint32_t *stolen);

/* Any thread: how many tasks the queue holds (a racy snapshot). */
uint32_t zk__local_queue_len(zk__local_queue *q);

#endif
