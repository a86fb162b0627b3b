/*
 * ring.h - the message ring of a bounded mpsc channel: a fixed array of
 * slots that senders fill and receivers empty without taking a lock.
 *
 * Each slot starts with a sequence number saying whose turn it is (the
 * algorithm of Dmitry Vyukov's bounded MPMC queue): a sender may fill the
 * slot of position p when its sequence is 2p, and publishes the message by
 * setting it to 2p + 1; a receiver may empty it when the sequence is
 * 2p + 1, and hands it to the sender of the next lap with 2(p + cap).
 * (Doubled so that a ring of one slot can tell "full" from "free for the
 * next lap".) Positions are 64-bit counters that never wrap in practice.
 *
 * Senders race for positions on `tail` and receivers on `head`; the two
 * counters live on different cache lines so a sender and a receiver on two
 * cores touch a shared line only where they meet in the slots.
 *
 * A slot's sequence is read and written with sequentially consistent
 * operations (an exchange, not a plain store, to publish): a channel that
 * follows a push or pop with a seq_cst load of its "someone waits" count,
 * while a waiter raises that count with a seq_cst RMW before looking at the
 * ring again, needs no separate fence for one of them to see the other.
 */
#ifndef ZK__RING_H
#define ZK__RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ZK__RING_PAD 64

typedef struct zk__ring {
    size_t cap, elem, stride;
    /* cap - 1 when cap is a power of two (index by mask), else 0. */
    uint64_t mask;
    char *slots;
    char _pad0[ZK__RING_PAD];
    _Atomic uint64_t tail; /* the next position to fill */
    char _pad1[ZK__RING_PAD - sizeof(uint64_t)];
    _Atomic uint64_t head; /* the next position to empty */
    char _pad2[ZK__RING_PAD - sizeof(uint64_t)];
} zk__ring;

/* Returns 0 or -ENOMEM. */
static inline int zk__ring_init(zk__ring *r, size_t elem, size_t cap) {
    r->cap = cap;
    r->elem = elem;
    /* The sequence, then the message, 8-byte aligned. */
    r->stride = sizeof(uint64_t) + ((elem + 7) & ~(size_t)7);
    r->mask = (cap & (cap - 1)) == 0 ? cap - 1 : 0;
    r->slots = malloc(cap * r->stride);
    if (r->slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        atomic_init((_Atomic uint64_t *)(void *)(r->slots + i * r->stride),
                    2 * (uint64_t)i);
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    return 0;
}

static inline void zk__ring_destroy(zk__ring *r) {
    free(r->slots);
}

static inline _Atomic uint64_t *zk__ring_slot(const zk__ring *r, uint64_t pos) {
    uint64_t i = r->mask ? pos & r->mask : pos % r->cap;
    return (_Atomic uint64_t *)(void *)(r->slots + i * r->stride);
}

/* Copies `msg` into the next free slot. False when the ring is full (or
 * its oldest message is being taken out right now). */
static inline bool zk__ring_push(zk__ring *r, const void *msg) {
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        _Atomic uint64_t *seq = zk__ring_slot(r, pos);
        uint64_t s = atomic_load_explicit(seq, memory_order_seq_cst);
        int64_t turn = (int64_t)(s - 2 * pos);
        if (turn == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                memcpy(seq + 1, msg, r->elem);
                atomic_exchange_explicit(seq, 2 * pos + 1,
                                         memory_order_seq_cst);
                return true;
            }
        } else if (turn < 0) {
            return false; /* still holds the message of the last lap */
        } else {
            pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }
}

/* Copies the oldest message out into `out`. False when the ring is empty
 * (or its oldest message is being copied in right now). */
static inline bool zk__ring_pop(zk__ring *r, void *out) {
    uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        _Atomic uint64_t *seq = zk__ring_slot(r, pos);
        uint64_t s = atomic_load_explicit(seq, memory_order_seq_cst);
        int64_t turn = (int64_t)(s - (2 * pos + 1));
        if (turn == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                memcpy(out, seq + 1, r->elem);
                atomic_exchange_explicit(seq, 2 * (pos + r->cap),
                                         memory_order_seq_cst);
                return true;
            }
        } else if (turn < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
}

/* How many messages are in the ring (a snapshot). */
static inline size_t zk__ring_len(zk__ring *r) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t n = tail > head ? tail - head : 0;
    return n > r->cap ? r->cap : (size_t)n;
}

#endif
