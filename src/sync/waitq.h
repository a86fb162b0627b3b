/*
 * waitq.h - the intrusive FIFO of waiters every primitive and channel keeps
 * under its lock, a small batch of wakers to wake after unlocking, and the
 * helper that runs a wait future from a coroutine task or a plain thread.
 *
 * A waiter (zk_wait_node) lives inside its wait future. Its state moves
 * only under the owning object's lock:
 *   IDLE -> QUEUED (first pending poll) -> DONE (handed what it waited for,
 *   unlinked by whoever handed it) -> CONSUMED (its poll saw it)
 * A node in DONE owns what it was handed; its future's drop gives it back
 * or passes it on. Wakers are moved out of a node under the lock and woken
 * after unlocking: once a node leaves QUEUED its future may be freed by
 * its owner at any time after the lock is released.
 */
#ifndef ZK__WAITQ_H
#define ZK__WAITQ_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common/lock.h"
#include "common/util.h"
#include "zokio/sync.h"

enum { ZK__W_IDLE = 0, ZK__W_QUEUED = 1, ZK__W_DONE = 2, ZK__W_CONSUMED = 3 };

typedef struct zk__waitq {
    zk_wait_node *head, *tail;
} zk__waitq;

/* A node's state is written under its object's lock, and read either under
 * it or (by the future that owns the node) without it once the state is
 * IDLE or CONSUMED, which only the owner sets, or DONE, after which nobody
 * but the owner touches the node (the release store of DONE publishes
 * everything the hand-off wrote into it). */
static inline uint32_t zk__node_state(const zk_wait_node *n) {
    return __atomic_load_n(&n->_state, __ATOMIC_ACQUIRE);
}

static inline void zk__node_set_state(zk_wait_node *n, uint32_t s) {
    __atomic_store_n(&n->_state, s, __ATOMIC_RELEASE);
}

static inline void zk__waitq_init(zk__waitq *q) {
    q->head = q->tail = NULL;
}

static inline bool zk__waitq_empty(const zk__waitq *q) {
    return q->head == NULL;
}

static inline void zk__node_init(zk_wait_node *n) {
    n->_prev = n->_next = NULL;
    n->_waker = (zk_waker){0};
    n->_want = 0;
    zk__node_set_state(n, ZK__W_IDLE);
    n->_flags = 0;
}

static inline void zk__waitq_push(zk__waitq *q, zk_wait_node *n) {
    n->_next = NULL;
    n->_prev = q->tail;
    if (q->tail)
        q->tail->_next = n;
    else
        q->head = n;
    q->tail = n;
    zk__node_set_state(n, ZK__W_QUEUED);
}

/* Queues `n` first (a waiter that was served but must wait again keeps
 * its turn). */
static inline void zk__waitq_push_front(zk__waitq *q, zk_wait_node *n) {
    n->_prev = NULL;
    n->_next = q->head;
    if (q->head)
        q->head->_prev = n;
    else
        q->tail = n;
    q->head = n;
    zk__node_set_state(n, ZK__W_QUEUED);
}

static inline void zk__waitq_remove(zk__waitq *q, zk_wait_node *n) {
    if (n->_prev)
        n->_prev->_next = n->_next;
    else
        q->head = n->_next;
    if (n->_next)
        n->_next->_prev = n->_prev;
    else
        q->tail = n->_prev;
    n->_prev = n->_next = NULL;
}

static inline zk_wait_node *zk__waitq_pop(zk__waitq *q) {
    zk_wait_node *n = q->head;
    if (n)
        zk__waitq_remove(q, n);
    return n;
}

/* Under the lock: remembers the polling task's waker in the node. */
static inline void zk__node_set_waker(zk_wait_node *n, zk_context *cx) {
    const zk_waker *w = zk_context_waker(cx);
    if (!zk_waker_will_wake(&n->_waker, w)) {
        zk_waker_drop(&n->_waker);
        n->_waker = zk_waker_clone(w);
    }
}

/* Under the lock: moves the node's waker out. */
static inline zk_waker zk__node_take_waker(zk_wait_node *n) {
    zk_waker w = n->_waker;
    n->_waker = (zk_waker){0};
    return w;
}

/* Wakers collected under a lock, woken once it is released. When the batch
 * is full the oldest are woken at once, under the lock: waking only
 * schedules a task or unparks a thread and never calls back into zokio's
 * primitives. */
#define ZK__WAKE_BATCH 16

typedef struct zk__wakelist {
    zk_waker w[ZK__WAKE_BATCH];
    int n;
} zk__wakelist;

static inline void zk__wakelist_init(zk__wakelist *l) {
    l->n = 0;
}

static inline void zk__wakelist_push(zk__wakelist *l, zk_waker w) {
    if (zk_waker_is_empty(&w))
        return;
    if (l->n == ZK__WAKE_BATCH) {
        for (int i = 0; i < l->n; i++)
            zk_waker_wake(&l->w[i]);
        l->n = 0;
    }
    l->w[l->n++] = w;
}

static inline void zk__wakelist_wake(zk__wakelist *l) {
    for (int i = 0; i < l->n; i++)
        zk_waker_wake(&l->w[i]);
    l->n = 0;
}

/* Under the lock: unlinks every queued node, marks it DONE with `flags`
 * and collects its waker. */
static inline void zk__waitq_release_all(zk__waitq *q, uint32_t flags,
                                         zk__wakelist *l) {
    zk_wait_node *n;
    while ((n = zk__waitq_pop(q)) != NULL) {
        n->_flags = flags;
        zk__node_set_state(n, ZK__W_DONE);
        zk__wakelist_push(l, zk__node_take_waker(n));
    }
}

/*
 * Runs a wait future to completion for a blocking-style call: awaited in a
 * coroutine task (with `deadline` when has_deadline), refused with -EPERM
 * in a future task's poll (f untouched), or, on a plain thread, polled
 * with a waker that unparks the thread, which sleeps between polls (and
 * gives up with -ETIMEDOUT at the deadline, on CLOCK_MONOTONIC like
 * zk_now() outside a runtime). f is dropped in every case but -EPERM.
 */
int64_t zk__wait(zk_future *f, bool has_deadline, zk_instant deadline);

/* For a blocking-style call whose fast path completes without zk__wait():
 * -EPERM in a future task's poll (refused there as the calls that wait
 * are, whether or not it would have had to wait), else the calling task's
 * cancellation (zk__cancel_status: an aborted task's calls fail), else
 * 0. */
int zk__blocking_call_status(void);

/* Like zk__wait() for a future that handles its own deadline (it keeps a
 * timer in a runtime and compares zk_now() with it otherwise): a plain
 * thread polls it again at the deadline instead of dropping it. */
int64_t zk__wait_wake_at(zk_future *f, zk_instant deadline);

#endif
