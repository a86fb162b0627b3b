/*
 * uring.h - the io_uring backend's ring and slots, shared by uring.c (the
 * ring, operations, handles) and uring_rx.c (multishot receives into
 * provided buffers on byte-stream sockets).
 */
#ifndef ZK__IO_URING_H
#define ZK__IO_URING_H

#include <liburing.h>
#include <pthread.h>

#include "common/lock.h"
#include "io/op.h"

#define ZK__URING_ENTRIES 1024
#define ZK__SLOT_CHUNK    256
#define ZK__SLOT_CHUNKS   4096 /* up to 1M operations in flight per worker */
#define ZK__UD_WAKE       UINT64_MAX
#define ZK__UD_IGNORE     (UINT64_MAX - 1)
#define ZK__SLOT_NONE     UINT32_MAX

typedef struct zk__uring_rx zk__uring_rx;
typedef struct zk__pbufs zk__pbufs;

typedef struct zk__uring_slot {
    zk__io_op *op;    /* NULL once dropped (or free) */
    zk__uring_rx *rx; /* a stream's multishot receive (op is NULL) */
    zk__io_handle *h; /* a dropped operation's or a multishot's handle */
    uint64_t seq;     /* when it was prepared (see `submitted`) */
    uint32_t gen;     /* bumped at each reuse: user_data = gen << 32 | idx */
    uint32_t next;    /* free list */
    int32_t forced;   /* result that replaces a no-op'd request's */
    bool makes_fd;    /* accept/openat: a result >= 0 is a descriptor */
    bool files;       /* on the file ring (see zk__uring) */
} zk__uring_slot;

/* A cancellation another thread asks of a split ring's owner: of the
 * request `ud`, or with `h` set, of every request on h->fd (the ask holds
 * a reference to `h`, so the descriptor stays open until it is made). */
typedef struct zk__uring_ask {
    uint64_t ud;
    zk__io_handle *h;
} zk__uring_ask;

/*
 * A worker's rings. On a current-thread runtime, whose driving thread may
 * change from one zk_block_on() to the next, there is one: `ring`, made
 * with cooperative task running, and `files` points to it. A multi-thread
 * runtime's workers are fixed threads, and their rings are split in two:
 * - `ring`, for sockets, pipes and the worker's wake-up, is single-issuer
 *   with deferred task running: the kernel does a completion's work (a
 *   multishot receive's copy, a poll's wake-up) only when the owner waits
 *   or reaps, for the whole batch, instead of at the exit of whichever
 *   system call comes next (each send, on an echo server). Only the owner
 *   may submit to it or cancel on it, so other threads ask it to cancel
 *   (`cancels`); none of its requests touches the caller's memory once
 *   submitted (polls, multishot receives into the ring's own buffers, a
 *   connect whose address the kernel copied), so a drop need not wait
 *   for that cancellation.
 * - `fring` (`files` points to it), for file and path operations, whose
 *   buffers the kernel writes or reads until they complete: a drop on
 *   any thread cancels them synchronously, as before. Its completions
 *   signal the eventfd the owner's wait in `ring` reads.
 */
typedef struct zk__uring {
    zk__io_worker base;
    struct io_uring ring;
    struct io_uring fring;  /* split: the file ring */
    struct io_uring *files; /* &fring when split, else &ring */
    bool split;
    bool enabled; /* split: `ring` (made disabled) enabled by its owner */
    pthread_mutex_t lock;
    /* Slots in fixed chunks: a slot never moves once allocated. */
    zk__uring_slot *chunks[ZK__SLOT_CHUNKS];
    uint32_t nslots, free_head; /* owner only */
    uint64_t prepared;          /* owner only */
    uint64_t submitted;         /* under lock: seq <= submitted is known */
    _Atomic bool dirty;         /* a pending entry may need to become a no-op */
    int efd;
    uint64_t ebuf;
    bool wake_armed; /* a read of efd is queued (owner only) */
    /* Provided buffers for multishot receives, made by the owner at the
     * first one (NULL until then, or when the kernel refused them:
     * `pb_failed`); used under the lock. */
    zk__pbufs *pb;
    bool pb_failed;
    /* Streams whose first read ran on another worker and asks this one,
     * their home, to arm their multishot (uring_rx.c); linked through
     * rx->ask_next, pushed under `ask_lock`, taken by the owner. */
    zk__lock ask_lock;
    _Atomic(zk__uring_rx *) asks;
    /* Split: cancellations asked of the owner, made at its next flush;
     * under the lock. When the array cannot grow, `cancel_sweep` has the
     * owner cancel every dropped request and every request on a closed
     * handle instead. `cancel_pending` (set with them) is read without the
     * lock at each flush. */
    zk__uring_ask *cancels;
    size_t ncancels, cancels_cap;
    bool cancel_sweep;
    _Atomic bool cancel_pending;
} zk__uring;

static inline zk__uring_slot *zk__slot(zk__uring *u, uint32_t idx) {
    return &u->chunks[idx / ZK__SLOT_CHUNK][idx % ZK__SLOT_CHUNK];
}

static inline uint64_t zk__slot_ud(zk__uring *u, uint32_t idx) {
    return (uint64_t)zk__slot(u, idx)->gen << 32 | idx;
}

/* The bit of `u`'s socket ring in a handle's `rings`. */
static inline uint64_t zk__uring_bit(const zk__uring *u) {
    return (uint64_t)1 << (u->base.index < 63 ? u->base.index : 63);
}

/* Notes, before a request on `h` is prepared on `u`'s split socket ring,
 * that the ring may hold it: a close asks the rings so marked to cancel.
 * Sequentially consistent with the close's exchange of `closed` and the
 * preparer's later read of it, so that either the close sees the mark or
 * the preparer sees the close (and has the flush make the entry a
 * no-op). */
static inline void zk__uring_mark(zk__uring *u, zk__io_handle *h) {
    uint64_t bit = zk__uring_bit(u);
    if (u->base.index >= 63 ||
        !(atomic_load_explicit(&h->rings, memory_order_relaxed) & bit))
        atomic_fetch_or(&h->rings, bit);
}

/* A free slot of the owner's ring, or ZK__SLOT_NONE (out of memory, or
 * `locked` (the caller holds the lock) and a new chunk would be needed). */
uint32_t zk__slot_alloc(zk__uring *u, bool locked);

/* Makes sure zk__slot_alloc(u, true) finds a slot, unless out of memory.
 * Owner thread, holding no lock. */
void zk__slot_reserve(zk__uring *u);

/* The worker's ring for the calling thread when it is a worker of `h`'s
 * runtime, else NULL. */
zk__uring *zk__uring_current(const zk__io_handle *h);

/* Multishot receives (uring_rx.c). A read on a byte-stream socket takes
 * what the stream's multishot receive already brought in, or waits for it;
 * these calls are made by uring.c at the matching points. */

/* True when `op` (a read on a byte-stream socket) goes through the
 * stream's receive queue. */
bool zk__rx_wants(const zk__io_op *op);

/* Polls such a read. Returns false when it must run as a single-shot
 * operation instead (its state is then INIT); else sets *out. */
bool zk__rx_poll(zk__io_op *op, zk_context *cx, zk_poll *out);

/* The waker of the stream's first waiting read (for a prefetch hint). */
const zk_waker *zk__rx_waker(const zk__uring_rx *rx);

/* A waiting read dropped: it leaves the queue's waiters. */
void zk__rx_drop(zk__io_op *op);

/* A completion of the multishot in slot `s`; returns true when it was the
 * last one (the slot is then free to reuse). Called with the lock. */
bool zk__rx_reaped(zk__uring *u, zk__uring_slot *s,
                   const struct io_uring_cqe *cqe);

/* The stream closed: its unread buffers go back, waiting reads wake (and
 * see the close). Any thread. */
void zk__rx_close(zk__io_handle *h);

/* The last reference to the handle went. */
void zk__rx_free(zk__io_handle *h);

/* Owner thread, at each flush: arms the multishots other workers asked
 * for (or, with `arm` false, a ring being destroyed, just lets go of
 * them) and wakes the reads that waited for that. Returns true when there
 * was any ask (tasks may have been woken into the owner's queue). */
bool zk__rx_answer_asks(zk__uring *u, bool arm);

/* Frees the ring's provided buffers (after the ring is gone). */
void zk__pbufs_free(zk__uring *u);

/* For tests: while `on`, cancellations asked of a split socket ring's
 * owner cannot be noted, as when out of memory (it sweeps instead). */
void zk__uring_fail_asks(bool on);

/* For tests: the next `n` completions delivered to path operations (no
 * handle) are taken as ended unasked (-ECANCELED), whatever the kernel
 * said. Only for those that may be made again harmlessly (a metadata
 * read). */
void zk__uring_end_unasked(int n);

/* For tests: the provided buffers of `rt`'s rings that no stream holds
 * (the kernel's and the spare ones), and how many the rings made (0 and 0
 * on epoll). */
void zk__rx_buffer_counts(struct zk_runtime *rt, size_t *unheld, size_t *made);

/* For tests: whether `rt`'s rings that made buffers (at least one) have
 * the kernel consume them incrementally. */
bool zk__rx_incremental(struct zk_runtime *rt);

/* For tests: from now on, the next `n` pieces of received bytes are kept
 * and the following ones fail as when out of memory (the stream's bytes
 * are lost); a negative `n` turns that off. */
void zk__rx_fail_pieces_after(long n);

/* For tests: whether the stream whose handle is `h` has a multishot
 * receive armed (reads ahead) now. */
bool zk__rx_armed(const void *h);

#endif
