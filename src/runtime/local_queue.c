/* local_queue.c - a worker's bounded run queue, see local_queue.h. */
#include "local_queue.h"

#include "common/util.h"

static inline uint32_t zk__lq_real(uint64_t head) {
    return (uint32_t)head;
}
static inline uint32_t zk__lq_steal(uint64_t head) {
    return (uint32_t)(head >> 32);
}
static inline uint64_t zk__lq_pack(uint32_t steal, uint32_t real) {
    return ((uint64_t)steal << 32) | real;
}

static inline zk__task *zk__lq_slot_get(zk__local_queue *q, uint32_t i) {
    return atomic_load_explicit(&q->buffer[i & ZK__LOCAL_QUEUE_MASK],
                                memory_order_relaxed);
}

static inline void zk__lq_slot_set(zk__local_queue *q, uint32_t i,
                                   zk__task *t) {
    atomic_store_explicit(&q->buffer[i & ZK__LOCAL_QUEUE_MASK], t,
                          memory_order_relaxed);
}

void zk__local_queue_init(zk__local_queue *q) {
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    for (uint32_t i = 0; i < ZK__LOCAL_QUEUE_CAP; i++)
        atomic_init(&q->buffer[i], NULL);
}

uint32_t zk__local_queue_len(zk__local_queue *q) {
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    return tail - zk__lq_real(head);
}

/* Moves the oldest half of a full queue plus `t` to `overflow`. Fails
 * (returns false) when a thief got there first; the caller retries. */
static bool zk__lq_push_overflow(zk__local_queue *q, zk__task *t, uint32_t head,
                                 uint32_t tail, zk__inject *overflow) {
    const uint32_t half = ZK__LOCAL_QUEUE_CAP / 2;
    ZK__ASSERT(tail - head == ZK__LOCAL_QUEUE_CAP);
    uint64_t prev = zk__lq_pack(head, head);
    if (!atomic_compare_exchange_strong_explicit(
            &q->head, &prev, zk__lq_pack(head + half, head + half),
            memory_order_release, memory_order_relaxed))
        return false;
    /* The claimed slots are ours now: link them into one batch. */
    zk__task *first = zk__lq_slot_get(q, head), *last = first;
    for (uint32_t i = 1; i < half; i++) {
        zk__task *next = zk__lq_slot_get(q, head + i);
        last->queue_next = next;
        last = next;
    }
    last->queue_next = t;
    zk__inject_push_batch(overflow, first, t);
    return true;
}

bool zk__local_queue_push(zk__local_queue *q, zk__task *t,
                          zk__inject *overflow) {
    for (;;) {
        uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t steal = zk__lq_steal(head), real = zk__lq_real(head);
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (tail - steal < ZK__LOCAL_QUEUE_CAP) {
            zk__lq_slot_set(q, tail, t);
            atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
            return false;
        }
        if (steal != real) {
            /* A thief is emptying the queue right now: it will have room
             * soon, but this task cannot wait. */
            zk__inject_push(overflow, t);
            return true;
        }
        if (zk__lq_push_overflow(q, t, real, tail, overflow))
            return true;
    }
}

zk__task *zk__local_queue_pop(zk__local_queue *q) {
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t idx;
    for (;;) {
        uint32_t steal = zk__lq_steal(head), real = zk__lq_real(head);
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (real == tail)
            return NULL;
        /* Without a thief both indexes move; with one, only `real`. */
        uint64_t next = steal == real ? zk__lq_pack(real + 1, real + 1)
                                      : zk__lq_pack(steal, real + 1);
        if (atomic_compare_exchange_weak_explicit(&q->head, &head, next,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
            idx = real;
            break;
        }
    }
    return zk__lq_slot_get(q, idx);
}

/* Claims half of `src` for the thief, copies it to `dst` from `dst_tail`
 * on, and releases the claim. Returns how many tasks were copied. */
static uint32_t zk__lq_steal_into(zk__local_queue *src, zk__local_queue *dst,
                                  uint32_t dst_tail) {
    uint64_t prev = atomic_load_explicit(&src->head, memory_order_acquire);
    uint64_t next;
    uint32_t n;
    for (;;) {
        uint32_t steal = zk__lq_steal(prev), real = zk__lq_real(prev);
        if (steal != real)
            return 0; /* another thief is at work */
        uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
        n = tail - real;
        n -= n / 2;
        if (n == 0)
            return 0;
        next = zk__lq_pack(steal, real + n);
        if (atomic_compare_exchange_weak_explicit(&src->head, &prev, next,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    uint32_t first = zk__lq_steal(next);
    for (uint32_t i = 0; i < n; i++)
        zk__lq_slot_set(dst, dst_tail + i, zk__lq_slot_get(src, first + i));
    /* Done copying: steal catches up with real (which the owner may have
     * moved meanwhile). */
    prev = next;
    for (;;) {
        uint32_t real = zk__lq_real(prev);
        if (atomic_compare_exchange_weak_explicit(
                &src->head, &prev, zk__lq_pack(real, real),
                memory_order_acq_rel, memory_order_acquire))
            return n;
    }
}

zk__task *zk__local_queue_steal(zk__local_queue *src, zk__local_queue *dst,
                                uint32_t *stolen) {
    *stolen = 0;
    uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
    uint32_t dst_steal =
        zk__lq_steal(atomic_load_explicit(&dst->head, memory_order_acquire));
    if (dst_tail - dst_steal > ZK__LOCAL_QUEUE_CAP / 2)
        return NULL; /* no room for half of another queue */
    uint32_t n = zk__lq_steal_into(src, dst, dst_tail);
    if (n == 0)
        return NULL;
    *stolen = n;
    /* The last stolen task is run now; the others join dst's queue. */
    zk__task *ret = zk__lq_slot_get(dst, dst_tail + n - 1);
    if (n > 1)
        atomic_store_explicit(&dst->tail, dst_tail + n - 1,
                              memory_order_release);
    return ret;
}
