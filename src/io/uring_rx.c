/*
 * uring_rx.c - multishot receives on byte-stream sockets (io_uring).
 *
 * A single-shot receive costs a submission, and the kernel arms and then
 * tears down a readiness poll for each message. Instead, the first read of
 * a TCP or Unix stream socket arms one multishot receive: the poll stays
 * armed, and every time data arrives the kernel receives it into a buffer
 * it takes from the worker's ring of provided buffers and posts a
 * completion. The completion appends what it brought to the stream's
 * receive queue and wakes the reads waiting for data; a read copies out of
 * the queue and gives the buffers back. A read that finds data queued
 * returns at once.
 *
 * A stream's queue has its own short lock (readers on any worker, and the
 * reaping owner of the ring, nest it inside the ring's lock); the ring's
 * buffers have another, taken inside it, to give buffers back. The ring
 * lock itself is not taken by reads: with it, every read on one worker
 * contended with the other worker's reaping. The multishot and the buffers
 * belong to one ring, the handle's home (`rx->u`; homes take handles in
 * turn, io.h), and only that ring's owner can arm the multishot. A first
 * read running on another worker asks the owner to arm it (`u->asks`,
 * answered at the owner's next flush) and waits; the completions then wake
 * its task on the home worker. Later, a read on another worker that
 * finds the multishot ended falls back to a receive made in the task, which
 * waits for readiness with a poll on its own ring (uring.c; the queue is
 * empty then, so no byte is read out of order).
 *
 * What a completion brought is a piece of a buffer (all of it, or with
 * incremental consumption the next bytes of the buffer the kernel is
 * filling, see below); a buffer goes back to the kernel once the kernel is
 * done with it and every piece of it was read.
 *
 * Limits, so that the buffers stay a cache, not a second socket buffer:
 * - a stream holding ZK__RX_HOLD_MAX buffers' worth of unread bytes, or
 *   ZK__RX_SEGS_MAX unread pieces, has its multishot cancelled: what
 *   follows waits in the socket, where TCP's flow control applies, until
 *   the queue is read and the next read arms it again;
 * - with fewer than ZK__PBUF_LOW buffers that no stream holds, reads fall
 *   back the same way (if the kernel runs out anyway, the multishot
 *   ends with -ENOBUFS, the kernel is given more buffers, and the next
 *   read falls back the same way).
 *
 * A read that times out or is cancelled only leaves the waiters: no data
 * is lost, it stays queued for the next read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/lock.h"
#include "common/util.h"
#include "io/uring.h"
#include "runtime/runtime.h"

#define ZK__PBUF_COUNT  1024u /* a power of two */
#define ZK__PBUF_SIZE   4096u
#define ZK__PBUF_GROUP  0
#define ZK__PBUF_LOW    (ZK__PBUF_COUNT / 8)
#define ZK__RX_HOLD_MAX 16u /* unread buffers' worth of bytes */
#define ZK__RX_SEGS_MAX 64u /* unread pieces */

/* Incremental consumption (Linux 6.12), newer than liburing 2.3. */
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/*
 * How many buffers the kernel holds: few, so they stay in the cache.
 * The kernel takes buffers in the order they were given, so a buffer is
 * used again only after all the others it holds were: with the whole
 * 4 MiB in its hands, every receive wrote to memory out of the cache (on
 * 4 KiB messages the kernel's copy was the costliest function of the
 * server). Buffers given back go on a stack, and the ring is topped up
 * from the stack's top (the most recently used) to `target` only. The
 * target doubles when the kernel runs low (a burst of messages on many
 * streams) and halves again after ZK__PBUF_WINDOW completions that never
 * went below half of it.
 *
 * Where the kernel allows it, it consumes a buffer incrementally: each
 * receive takes only the bytes it needs from the current buffer, the next
 * one continues where it ended, so small messages of many streams are
 * packed one after the other instead of taking a buffer (a page) each; a
 * buffer then holds pieces of several streams and goes back once the
 * kernel has filled it and every piece was read. Without incremental
 * consumption (before 6.12) every receive takes a buffer of its own: the
 * same code, with one piece per buffer.
 */
#define ZK__PBUF_TARGET_MIN 64u
#define ZK__PBUF_WINDOW     4096u

/* One completion's bytes: a piece of a buffer, queued on its stream. */
typedef struct zk__rx_seg {
    uint32_t start; /* where in the buffer */
    uint32_t len;
    uint32_t next; /* in the stream's queue, or the free list */
    uint16_t bid;
} zk__rx_seg;

#define ZK__SEG_CHUNK  1024u
#define ZK__SEG_CHUNKS 1024u /* up to 1M pieces per ring */
#define ZK__SEG_NONE   UINT32_MAX

struct zk__pbufs {
    zk__lock lock;                /* below, but `inc`, `filled`, `br` */
    struct io_uring_buf_ring *br; /* shared with the kernel */
    char *mem;                    /* ZK__PBUF_COUNT buffers */
    bool inc;                     /* consumed incrementally */
    _Atomic uint32_t in_kernel;   /* buffers the kernel may fill */
    uint32_t target;              /* ... how many it should have */
    uint32_t nspare;              /* buffers neither in it nor held */
    /* The owner's record of the fewest buffers left in the kernel over
     * the last `reaped` completions (of ZK__PBUF_WINDOW). */
    uint32_t low_seen;
    uint32_t reaped;
    uint16_t spare[ZK__PBUF_COUNT]; /* the last one given back on top */
    /* Per buffer: its pieces not read yet, plus one while the kernel may
     * fill it; it goes back to the spare stack at zero. */
    uint16_t refs[ZK__PBUF_COUNT];
    /* Per buffer: the bytes the kernel filled so far (owner only). */
    uint32_t filled[ZK__PBUF_COUNT];
    /* The pieces, in chunks that never move (readers follow indexes). */
    zk__rx_seg *segs[ZK__SEG_CHUNKS];
    uint32_t nsegs;
    uint32_t seg_free;
};

static inline zk__rx_seg *zk__seg(zk__pbufs *pb, uint32_t i) {
    return &pb->segs[i / ZK__SEG_CHUNK][i % ZK__SEG_CHUNK];
}

struct zk__uring_rx {
    /* Allocated on a cache line, with what every read and completion
     * touches in its first 64 bytes (up to `waker`). */
    zk__lock lock;       /* everything below but `u` */
    int32_t err;         /* an error the multishot ended with, for one read */
    zk__uring *u;        /* the ring of the multishot and the buffers */
    uint32_t held;       /* unread pieces */
    uint32_t held_bytes; /* ... and their bytes */
    uint32_t head;       /* the oldest unread piece */
    uint32_t tail;       /* the newest */
    uint16_t off;        /* bytes of `head` already read */
    bool armed;          /* a multishot is in the kernel */
    bool stopping;       /* ... and is being cancelled (too much unread) */
    bool eof;            /* the peer shut its side: reads return 0 */
    bool closed;         /* the stream was closed: data that comes is dropped */
    bool asked;          /* the first arming was done or asked of `u`'s owner */
    bool asking;         /* ... and is still in `u->asks` */
    /* The read waiting for data and its task's waker, kept here so that a
     * completion wakes it without touching the read (in its task's cold
     * stack); more reads waiting at once are linked through op->next. A
     * read's `queued` may stay set after a wake: it is checked against
     * these. */
    zk__io_op *waiter;
    zk_waker waker;
    zk__io_op *waiters;
    uint32_t slot;          /* the multishot's slot, while `armed` */
    zk__io_handle *ask_h;   /* held while asking */
    zk__uring_rx *ask_next; /* in u->asks */
};

_Static_assert(offsetof(struct zk__uring_rx, waiters) <= 64,
               "a read's fields of the receive queue must share a line");
_Static_assert(ZK__PBUF_SIZE <= UINT16_MAX, "rx->off holds a piece's offset");

/* ---------------------------------------------------------------------- */
/* Provided buffers                                                       */
/* ---------------------------------------------------------------------- */

/* Hands spare buffers to the kernel up to the target. With pb->lock. */
static void zk__pbufs_top_up(zk__pbufs *pb) {
    uint32_t have = atomic_load_explicit(&pb->in_kernel, memory_order_relaxed);
    uint32_t n = 0;
    while (pb->nspare > 0 && have + n < pb->target) {
        uint16_t bid = pb->spare[--pb->nspare];
        pb->refs[bid] = 1; /* the kernel's */
        io_uring_buf_ring_add(pb->br, pb->mem + (size_t)bid * ZK__PBUF_SIZE,
                              ZK__PBUF_SIZE, bid,
                              io_uring_buf_ring_mask(ZK__PBUF_COUNT), (int)n);
        n++;
    }
    if (n == 0)
        return;
    /* Counted before the kernel can see them (and the reaper count them
     * out), so the count never goes below zero. */
    atomic_fetch_add_explicit(&pb->in_kernel, n, memory_order_relaxed);
    io_uring_buf_ring_advance(pb->br, (int)n);
}

/* Drops a reference to a buffer: at the last, it is spare again. With
 * pb->lock. */
static void zk__pbuf_unref_locked(zk__pbufs *pb, uint16_t bid) {
    if (--pb->refs[bid] == 0) {
        pb->spare[pb->nspare++] = bid;
        zk__pbufs_top_up(pb);
    }
}

/* For tests (zk__rx_fail_pieces_after): pieces to give before failing as
 * if out of memory; negative: never fail. */
static _Atomic long zk__rx_pieces_before_failure = -1;

void zk__rx_fail_pieces_after(long n) {
    atomic_store(&zk__rx_pieces_before_failure, n);
}

/* A free piece, or ZK__SEG_NONE when out of memory. With pb->lock; a new
 * chunk is made by the owner only (the reaper), so no two make one. */
static uint32_t zk__seg_alloc(zk__pbufs *pb) {
    if (ZK__UNLIKELY(atomic_load_explicit(&zk__rx_pieces_before_failure,
                                          memory_order_relaxed) >= 0) &&
        atomic_fetch_sub(&zk__rx_pieces_before_failure, 1) <= 0) {
        atomic_store(&zk__rx_pieces_before_failure, 0); /* stays failing */
        return ZK__SEG_NONE;
    }
    if (pb->seg_free == ZK__SEG_NONE) {
        uint32_t c = pb->nsegs / ZK__SEG_CHUNK;
        zk__rx_seg *chunk =
            c < ZK__SEG_CHUNKS ? malloc(ZK__SEG_CHUNK * sizeof *chunk) : NULL;
        if (chunk == NULL)
            return ZK__SEG_NONE;
        for (uint32_t i = 0; i < ZK__SEG_CHUNK; i++)
            chunk[i].next =
                i + 1 < ZK__SEG_CHUNK ? pb->nsegs + i + 1 : ZK__SEG_NONE;
        pb->segs[c] = chunk;
        pb->seg_free = pb->nsegs;
        pb->nsegs += ZK__SEG_CHUNK;
    }
    uint32_t i = pb->seg_free;
    pb->seg_free = zk__seg(pb, i)->next;
    return i;
}

/* Doubles or halves the target. Owner thread. */
static void zk__pbufs_retarget(zk__pbufs *pb, bool grow) {
    zk__lock_acquire(&pb->lock);
    if (grow && pb->target < ZK__PBUF_COUNT)
        pb->target *= 2;
    else if (!grow && pb->target > ZK__PBUF_TARGET_MIN)
        pb->target /= 2; /* the kernel uses up the extra ones */
    zk__pbufs_top_up(pb);
    zk__lock_release(&pb->lock);
}

/* The owner reaped a completion that took a buffer: the target follows
 * the need. */
static void zk__pbufs_taken(zk__pbufs *pb) {
    uint32_t left =
        atomic_fetch_sub_explicit(&pb->in_kernel, 1, memory_order_relaxed) - 1;
    if (left < pb->low_seen)
        pb->low_seen = left;
    if (left < pb->target / 4) {
        zk__pbufs_retarget(pb, true);
    } else if (++pb->reaped == ZK__PBUF_WINDOW) {
        if (pb->low_seen > pb->target / 2)
            zk__pbufs_retarget(pb, false);
        pb->reaped = 0;
        pb->low_seen = UINT32_MAX;
    }
}

/* Queues a piece on a stream (with rx->lock). */
static void zk__rx_push(zk__pbufs *pb, zk__uring_rx *rx, uint32_t i) {
    if (rx->held++ == 0)
        rx->head = i;
    else
        zk__seg(pb, rx->tail)->next = i;
    rx->tail = i;
    rx->held_bytes += zk__seg(pb, i)->len;
}

/* A completion of a stream's multishot that used buffer `bid`: its bytes
 * (res > 0, stream open) are queued as a piece, and the buffer counts out
 * of the kernel once the kernel is done with it. False when the bytes
 * were lost (no memory for the piece). Owner, with rx->lock. */
static bool zk__pbufs_received(zk__pbufs *pb, zk__uring_rx *rx, uint16_t bid,
                               int32_t res, uint32_t flags) {
    /* Consumed incrementally, the kernel keeps a buffer until it filled
     * it, and says so (IORING_CQE_F_BUF_MORE) in every completion before;
     * one that moved no byte leaves the buffer where it was. */
    bool released = !pb->inc || (res > 0 && !(flags & IORING_CQE_F_BUF_MORE));
    uint32_t start = pb->filled[bid];
    if (res > 0)
        pb->filled[bid] = released ? 0 : start + (uint32_t)res;
    bool kept = true;
    zk__lock_acquire(&pb->lock);
    if (res > 0 && !rx->closed) {
        uint32_t i = zk__seg_alloc(pb);
        if (i != ZK__SEG_NONE) {
            zk__rx_seg *g = zk__seg(pb, i);
            g->bid = bid;
            g->start = start;
            g->len = (uint32_t)res;
            g->next = ZK__SEG_NONE;
            pb->refs[bid]++;
            zk__rx_push(pb, rx, i);
        } else {
            kept = false;
        }
    }
    if (released)
        zk__pbuf_unref_locked(pb, bid);
    zk__lock_release(&pb->lock);
    if (released)
        zk__pbufs_taken(pb);
    return kept;
}

/* Buffers no stream holds: the kernel's and the spare ones. */
static uint32_t zk__pbufs_unheld(zk__pbufs *pb) {
    zk__lock_acquire(&pb->lock);
    uint32_t n =
        atomic_load_explicit(&pb->in_kernel, memory_order_relaxed) + pb->nspare;
    zk__lock_release(&pb->lock);
    return n;
}

/* Makes and registers the owner's buffers. Owner thread. */
static zk__pbufs *zk__pbufs_get(zk__uring *u) {
    if (u->pb != NULL || u->pb_failed)
        return u->pb;
    zk__pbufs *pb = calloc(1, sizeof *pb);
    size_t ring_bytes = ZK__PBUF_COUNT * sizeof(struct io_uring_buf);
    if (pb)
        pb->br = aligned_alloc(4096, ring_bytes);
    if (pb && pb->br)
        pb->mem = aligned_alloc(4096, (size_t)ZK__PBUF_COUNT * ZK__PBUF_SIZE);
    if (pb && pb->br && pb->mem) {
        zk__lock_init(&pb->lock);
        memset(pb->br, 0, ring_bytes);
        io_uring_buf_ring_init(pb->br);
        struct io_uring_buf_reg reg = {
            .ring_addr = (uintptr_t)pb->br,
            .ring_entries = ZK__PBUF_COUNT,
            .bgid = ZK__PBUF_GROUP,
            .pad = IOU_PBUF_RING_INC, /* `flags` in newer headers */
        };
        /* ZOKIO_NO_PBUF_INC=1 asks for what kernels before 6.12 give (a
         * test of that path on newer ones). */
        const char *env = getenv("ZOKIO_NO_PBUF_INC");
        int rc = env && strcmp(env, "1") == 0
                     ? -EINVAL
                     : io_uring_register_buf_ring(&u->ring, &reg, 0);
        pb->inc = rc == 0;
        if (rc == -EINVAL) { /* before 6.12: a buffer per receive */
            reg.pad = 0;
            rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
        }
        if (rc == 0) {
            pb->target = ZK__PBUF_TARGET_MIN;
            pb->low_seen = UINT32_MAX;
            pb->seg_free = ZK__SEG_NONE;
            for (uint32_t i = 0; i < ZK__PBUF_COUNT; i++)
                pb->spare[i] = (uint16_t)(ZK__PBUF_COUNT - 1 - i);
            pb->nspare = ZK__PBUF_COUNT;
            zk__pbufs_top_up(pb);
            u->pb = pb;
            return pb;
        }
    }
    /* Out of memory, or a kernel without buffer rings (5.19): this ring
     * keeps to single-shot receives. */
    if (pb) {
        free(pb->mem);
        free(pb->br);
        free(pb);
    }
    u->pb_failed = true;
    return NULL;
}

void zk__pbufs_free(zk__uring *u) {
    zk__pbufs *pb = u->pb;
    if (pb == NULL)
        return;
    for (uint32_t c = 0; c < pb->nsegs / ZK__SEG_CHUNK; c++)
        free(pb->segs[c]);
    free(pb->mem);
    free(pb->br);
    free(pb);
    u->pb = NULL;
}

/* ---------------------------------------------------------------------- */
/* The receive queue (all with rx->lock)                                  */
/* ---------------------------------------------------------------------- */

/* The oldest piece was read: its buffer loses a reference. */
static void zk__rx_pop(zk__pbufs *pb, zk__uring_rx *rx) {
    uint32_t i = rx->head;
    zk__rx_seg *g = zk__seg(pb, i);
    rx->head = g->next;
    rx->held--;
    rx->held_bytes -= g->len;
    rx->off = 0;
    zk__lock_acquire(&pb->lock);
    g->next = pb->seg_free;
    pb->seg_free = i;
    zk__pbuf_unref_locked(pb, g->bid);
    zk__lock_release(&pb->lock);
}

/* Gives every unread buffer back. */
static void zk__rx_discard(zk__uring_rx *rx) {
    while (rx->held > 0)
        zk__rx_pop(rx->u->pb, rx);
}

/* Copies queued bytes into `iov` (as much as fits); returns how many. */
static size_t zk__rx_copy(zk__uring_rx *rx, const struct iovec *iov, int cnt) {
    zk__pbufs *pb = rx->u->pb;
    size_t total = 0, done = 0;
    int i = 0;
    while (rx->held > 0 && i < cnt) {
        size_t room = iov[i].iov_len - done;
        if (room == 0) {
            i++;
            done = 0;
            continue;
        }
        zk__rx_seg *g = zk__seg(pb, rx->head);
        size_t avail = g->len - rx->off;
        size_t n = avail < room ? avail : room;
        memcpy((char *)iov[i].iov_base + done,
               pb->mem + (size_t)g->bid * ZK__PBUF_SIZE + g->start + rx->off,
               n);
        total += n;
        done += n;
        rx->off += (uint16_t)n;
        if (rx->off == g->len)
            zk__rx_pop(pb, rx);
    }
    return total;
}

static void zk__rx_wake_all(zk__uring_rx *rx) {
    if (rx->waiter != NULL) {
        zk_waker wk = rx->waker;
        rx->waker = (zk_waker){0};
        rx->waiter = NULL;
        zk_waker_wake(&wk);
    }
    zk__io_op *op;
    while ((op = rx->waiters) != NULL) {
        rx->waiters = op->next;
        op->next = NULL;
        op->queued = false;
        zk_waker wk = op->waker;
        op->waker = (zk_waker){0};
        zk_waker_wake(&wk);
    }
}

static void zk__rx_unqueue(zk__uring_rx *rx, zk__io_op *op) {
    op->queued = false;
    if (rx->waiter == op) {
        rx->waiter = NULL;
        zk_waker_drop(&rx->waker);
        return;
    }
    for (zk__io_op **p = &rx->waiters; *p != NULL; p = &(*p)->next) {
        if (*p == op) {
            *p = op->next;
            op->next = NULL;
            return;
        }
    }
}

/* Queues `op` as a read waiting for data, woken through `w`. */
static void zk__rx_enqueue(zk__uring_rx *rx, zk__io_op *op, const zk_waker *w) {
    op->queued = true;
    if (rx->waiter == NULL) {
        rx->waiter = op;
        rx->waker = zk_waker_clone(w);
        return;
    }
    op->waker = zk_waker_clone(w);
    op->next = rx->waiters;
    rx->waiters = op;
}

/* Arms the multishot on rx->u, the calling worker's ring (its owner alone
 * writes its submission queue and slots). False when it cannot now (no
 * entry, no slot without taking the ring's lock, too few buffers). */
static bool zk__rx_arm(zk__uring_rx *rx, zk__io_handle *h) {
    zk__uring *u = rx->u;
    zk__pbufs *pb = zk__pbufs_get(u);
    if (pb == NULL || rx->closed)
        return false;
    /* The lock only when the kernel's own are few. */
    if (atomic_load_explicit(&pb->in_kernel, memory_order_relaxed) <
            ZK__PBUF_LOW &&
        zk__pbufs_unheld(pb) < ZK__PBUF_LOW)
        return false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (sqe == NULL)
        return false; /* the ring is full: the single-shot path flushes */
    uint32_t idx = zk__slot_alloc(u, true);
    if (idx == ZK__SLOT_NONE) {
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, ZK__UD_IGNORE);
        return false;
    }
    if (u->split)
        zk__uring_mark(u, h);
    zk__uring_slot *s = zk__slot(u, idx);
    s->op = NULL;
    s->rx = rx;
    s->h = h; /* the multishot keeps the descriptor and the queue alive */
    zk__handle_ref(h);
    s->seq = ++u->prepared;
    s->forced = 0;
    s->makes_fd = false;
    s->files = false;
    io_uring_prep_recv_multishot(sqe, h->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ZK__PBUF_GROUP;
    io_uring_sqe_set_data64(sqe, zk__slot_ud(u, idx));
    rx->slot = idx;
    rx->armed = true;
    rx->asked = true;
    rx->stopping = false;
    /* A close that raced with this may have missed it (see handle_close
     * in uring.c): the flush turns it into a no-op. */
    if (atomic_load(&h->closed))
        atomic_store_explicit(&u->dirty, true, memory_order_release);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Reads                                                                  */
/* ---------------------------------------------------------------------- */

/* The operation is tested first: it is hot, the handle and runtime less. */
bool zk__rx_wants(const zk__io_op *op) {
    bool wants = false;
    if (op->code == ZK__OP_RECV) {
        wants = op->a.rw.len > 0;
    } else if (op->code == ZK__OP_READV) {
        for (int i = 0; i < op->a.v.cnt && !wants; i++)
            wants = op->a.v.iov[i].iov_len > 0;
    }
    zk__io_handle *h = op->h;
    return wants && h != NULL && h->kind == ZK__HANDLE_SOCKET &&
           h->bytestream && h->rt->io.read_ahead;
}

/* Asks the home ring's owner to arm the multishot (with rx->lock). The
 * stream's handle is held until it has answered. */
static void zk__rx_ask(zk__uring_rx *rx, zk__io_handle *h) {
    zk__uring *u = rx->u;
    rx->asked = rx->asking = true;
    zk__handle_ref(h);
    rx->ask_h = h;
    zk__lock_acquire(&u->ask_lock);
    rx->ask_next = atomic_load_explicit(&u->asks, memory_order_relaxed);
    atomic_store_explicit(&u->asks, rx, memory_order_relaxed);
    zk__lock_release(&u->ask_lock);
    u->base.ops->unpark(&u->base);
}

bool zk__rx_answer_asks(zk__uring *u, bool arm) {
    zk__lock_acquire(&u->ask_lock);
    zk__uring_rx *rx = atomic_load_explicit(&u->asks, memory_order_relaxed);
    atomic_store_explicit(&u->asks, NULL, memory_order_relaxed);
    zk__lock_release(&u->ask_lock);
    bool any = rx != NULL;
    while (rx != NULL) {
        zk__uring_rx *next = rx->ask_next;
        zk__io_handle *h = rx->ask_h;
        if (arm)
            zk__slot_reserve(u); /* no new chunk with rx->lock held */
        zk__lock_acquire(&rx->lock);
        rx->asking = false;
        rx->ask_h = NULL;
        if (arm && !rx->closed && !rx->armed && !rx->eof && rx->err == 0)
            zk__rx_arm(rx, h);
        /* Armed, the reads wait on (now on this worker); else they fall
         * back to single-shot receives where they run. */
        zk__rx_wake_all(rx);
        zk__lock_release(&rx->lock);
        zk__handle_unref(h); /* may free rx */
        rx = next;
    }
    return any;
}

/* The stream's queue, made at its first read; NULL when out of memory or
 * not on a worker. */
static zk__uring_rx *zk__rx_of(zk__io_handle *h) {
    zk__uring_rx *rx =
        __atomic_load_n((zk__uring_rx **)&h->reg, __ATOMIC_ACQUIRE);
    if (rx != NULL)
        return rx;
    if (zk__uring_current(h) == NULL ||
        (rx = zk__zalloc_line(sizeof *rx)) == NULL)
        return NULL;
    zk__lock_init(&rx->lock);
    /* The multishot runs on the handle's home ring (homes take handles in
     * turn: io.h). The first read runs wherever the task that made the
     * stream does (all on one worker, for the connections of one accept
     * loop); the completions then wake the task on its home's worker. */
    rx->u = (zk__uring *)h->rt->io.workers[h->home];
    /* Sequentially consistent, as zk__rx_close()'s load and the close's
     * exchange of `closed`: either the close finds this queue and closes
     * it, or the arming finds the handle closed (zk__rx_arm). */
    zk__uring_rx *none = NULL;
    if (!__atomic_compare_exchange_n((zk__uring_rx **)&h->reg, &none, rx, false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE)) {
        free(rx); /* another read made it first */
        return none;
    }
    /* The read arms with the queue's lock held, where no chunk of slots
     * can be made: on the home ring, one is made now if none is free, so
     * that the first read reads ahead rather than falling back once. */
    if (zk__uring_current(h) == rx->u)
        zk__slot_reserve(rx->u);
    return rx;
}

static zk_poll zk__rx_ready(zk__io_op *op, int64_t res) {
    zk__op_complete(op, res);
    return ZK_READY;
}

bool zk__rx_poll(zk__io_op *op, zk_context *cx, zk_poll *out) {
    zk__io_handle *h = op->h;
    zk__uring_rx *rx = zk__rx_of(h);
    if (rx == NULL)
        return false;
    zk__uring *u = rx->u;
    zk__lock_acquire(&rx->lock);
    if (op->queued)
        zk__rx_unqueue(rx, op);
    int64_t res = 0;
    bool ready = true;
    if (atomic_load_explicit(&h->closed, memory_order_acquire)) {
        res = -EBADF;
    } else if (rx->held > 0) {
        struct iovec one = {op->a.rw.buf, op->a.rw.len};
        res = op->code == ZK__OP_RECV
                  ? (int64_t)zk__rx_copy(rx, &one, 1)
                  : (int64_t)zk__rx_copy(rx, op->a.v.iov, op->a.v.cnt);
    } else if (rx->err != 0) {
        res = rx->err;
        if (res != -ENOMEM) /* bytes were lost: it stays */
            rx->err = 0;
    } else if (rx->eof) {
        res = 0;
    } else if (!rx->armed && !rx->asked && zk__uring_current(h) != u) {
        zk__rx_ask(rx, h); /* the read waits for the home to arm it */
        ready = false;
    } else if (!rx->armed && !rx->asking &&
               (zk__uring_current(h) != u || !zk__rx_arm(rx, h))) {
        /* Nothing queued and nothing coming: a plain receive, here. */
        zk__lock_release(&rx->lock);
        if (op->state == ZK__OPS_WAITING)
            zk_waker_drop(&op->waker);
        op->state = ZK__OPS_INIT;
        if (zk__uring_current(h) == NULL) {
            *out = zk__rx_ready(op, -EPERM);
            return true;
        }
        return false;
    } else {
        ready = false;
    }
    if (ready) {
        /* The multishot stopped for a full queue goes on once read. */
        if (rx->held == 0 && !rx->armed && !rx->eof &&
            zk__uring_current(h) == u && res > 0)
            zk__rx_arm(rx, h);
        if (op->state == ZK__OPS_WAITING)
            zk_waker_drop(&op->waker);
        zk__lock_release(&rx->lock);
        *out = zk__rx_ready(op, res);
        return true;
    }
    if (op->state == ZK__OPS_WAITING)
        zk_waker_drop(&op->waker); /* a waker of the rare second reader */
    op->iow = &u->base;
    op->state = ZK__OPS_WAITING;
    zk__rx_enqueue(rx, op, zk_context_waker(cx));
    zk__lock_release(&rx->lock);
    *out = ZK_PENDING;
    return true;
}

const zk_waker *zk__rx_waker(const zk__uring_rx *rx) {
    return &rx->waker;
}

void zk__rx_drop(zk__io_op *op) {
    zk__uring_rx *rx =
        __atomic_load_n((zk__uring_rx **)&op->h->reg, __ATOMIC_ACQUIRE);
    zk__lock_acquire(&rx->lock);
    if (op->queued)
        zk__rx_unqueue(rx, op);
    zk_waker_drop(&op->waker);
    zk__lock_release(&rx->lock);
    op->state = ZK__OPS_INIT; /* nothing to deliver */
}

/* ---------------------------------------------------------------------- */
/* Completions, close                                                     */
/* ---------------------------------------------------------------------- */

bool zk__rx_reaped(zk__uring *u, zk__uring_slot *s,
                   const struct io_uring_cqe *cqe) {
    zk__uring_rx *rx = s->rx;
    zk__pbufs *pb = u->pb;
    zk__lock_acquire(&rx->lock);
    int32_t res = s->forced ? s->forced : cqe->res;
    bool more = !s->forced && (cqe->flags & IORING_CQE_F_MORE);
    bool lost = false;
    if (!s->forced && (cqe->flags & IORING_CQE_F_BUFFER)) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (!zk__pbufs_received(pb, rx, bid, res, cqe->flags)) {
            /* Bytes dropped: the stream cannot go on. Every read from now
             * fails (after the bytes before the gap). */
            rx->err = -ENOMEM;
            rx->closed = lost = true;
        }
    }
    if (!more) {
        rx->armed = false;
        rx->stopping = false;
        if (res == 0)
            rx->eof = true;
        else if (res == -ENOBUFS && pb != NULL)
            zk__pbufs_retarget(pb, true); /* the kernel ran out */
        else if (res < 0 && res != -ECANCELED && rx->err != -ENOMEM)
            rx->err = res; /* a reset, say: the next read reports it */
    } else if ((lost || rx->held >= ZK__RX_SEGS_MAX ||
                rx->held_bytes >= ZK__RX_HOLD_MAX * ZK__PBUF_SIZE) &&
               !rx->stopping) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (sqe != NULL) { /* else at the next completion */
            io_uring_prep_cancel64(sqe, cqe->user_data, 0);
            io_uring_sqe_set_data64(sqe, ZK__UD_IGNORE);
            rx->stopping = true;
        }
    }
    if (rx->waiter != NULL)
        __builtin_prefetch(s->h, 0, 3); /* as epoll.c's wake does */
    zk__rx_wake_all(rx);
    zk__lock_release(&rx->lock);
    return !more;
}

void zk__rx_close(zk__io_handle *h) {
    /* Sequentially consistent: see zk__rx_of(). */
    zk__uring_rx *rx =
        __atomic_load_n((zk__uring_rx **)&h->reg, __ATOMIC_SEQ_CST);
    if (rx == NULL)
        return;
    zk__lock_acquire(&rx->lock);
    rx->closed = true;
    zk__rx_discard(rx);
    zk__rx_wake_all(rx);
    zk__lock_release(&rx->lock);
}

bool zk__rx_armed(const void *handle) {
    const zk__io_handle *h = handle;
    zk__uring_rx *rx =
        __atomic_load_n((zk__uring_rx *const *)&h->reg, __ATOMIC_ACQUIRE);
    if (rx == NULL)
        return false;
    zk__lock_acquire(&rx->lock);
    bool armed = rx->armed;
    zk__lock_release(&rx->lock);
    return armed;
}

void zk__rx_free(zk__io_handle *h) {
    zk__uring_rx *rx = h->reg;
    if (rx == NULL)
        return;
    /* Closed (so emptied) before its last reference went, unless the
     * runtime is being torn down with the stream open: then the buffers
     * go with the ring. */
    free(rx);
    h->reg = NULL;
}

void zk__rx_buffer_counts(zk_runtime *rt, size_t *unheld, size_t *made) {
    *unheld = *made = 0;
    if (rt->io.ops != &zk__uring_ops)
        return;
    for (size_t i = 0; i < rt->io.n; i++) {
        zk__pbufs *pb = ((zk__uring *)rt->io.workers[i])->pb;
        if (pb == NULL)
            continue;
        *made += ZK__PBUF_COUNT;
        *unheld += zk__pbufs_unheld(pb);
    }
}

bool zk__rx_incremental(zk_runtime *rt) {
    bool any = false, all = true;
    if (rt->io.ops != &zk__uring_ops)
        return false;
    for (size_t i = 0; i < rt->io.n; i++) {
        zk__pbufs *pb = ((zk__uring *)rt->io.workers[i])->pb;
        if (pb != NULL) {
            any = true;
            all = all && pb->inc;
        }
    }
    return any && all;
}
