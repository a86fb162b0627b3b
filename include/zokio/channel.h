/*
 * zokio/channel.h - channels between tasks (and plain threads): oneshot,
 * mpsc (bounded and unbounded), broadcast and watch.
 *
 * Messages are copied by value. Each channel has an element size fixed at
 * creation (1 to ZK_CHANNEL_ELEM_MAX bytes): a send copies that many bytes
 * from the caller's buffer into the channel, a receive copies them out
 * into the caller's buffer. The channel never points into caller memory
 * once a send has returned. To move larger objects, send pointers
 * (elem_size = sizeof(void *)); the channel then carries the pointer and
 * ownership of what it points to passes with it: the receiver that gets the
 * pointer owns the object. Messages still buffered when the last handle
 * goes are discarded without any callback, so drain a channel of owning
 * pointers (try_recv until it fails) before closing its receiver.
 *
 * Handles: each channel gives sender and receiver handles. A sender can be
 * cloned; the channel lives until its last handle is closed. Closing
 * takes the handle's address and sets it to NULL (like zk_task_join), so a
 * second close of the same variable is reported as -EINVAL instead of
 * touching freed memory.
 * - When every sender is closed, receivers still get what is buffered,
 *   then -EPIPE.
 * - When every receiver is closed, sends fail at once with -EPIPE (and
 *   senders waiting for room are woken with it); what was buffered is
 *   discarded.
 * A handle may be used from several tasks and threads at once. Close a
 * handle only after every future made from it was dropped.
 *
 * Every wait has the three forms of zokio/sync.h: a blocking-style call
 * that parks the calling coroutine task (or blocks a plain thread), an
 * _until form with an absolute deadline (-ETIMEDOUT), and a future.
 * Cancellation never loses or duplicates a message: a send that returns an
 * error (including -ECANCELED, -ETIMEDOUT or a future dropped before it was
 * ready) did not send, and a receive that returns an error did not take a
 * message. A slot a bounded channel handed to a waiting sender that is
 * then dropped goes to the next waiting sender.
 *
 * Error codes used throughout:
 * -EINVAL      a NULL handle or buffer, an element size of 0 or above
 *              ZK_CHANNEL_ELEM_MAX, a capacity of 0 or too large.
 * -EPIPE       the other side is gone (see above), or a oneshot's value
 *              was already taken.
 * -EAGAIN      (try_ forms) the call would have to wait.
 * -ETIMEDOUT   (_until forms) the deadline passed first.
 * -ECANCELED   the calling task was aborted.
 * -EPERM       a blocking-style call from a future task's poll.
 * -EOVERFLOW   (broadcast) the receiver fell behind and lost messages.
 * -ENOMEM      out of memory.
 */
#ifndef ZOKIO_CHANNEL_H
#define ZOKIO_CHANNEL_H

#include "sync.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest element size of any channel, in bytes. */
#define ZK_CHANNEL_ELEM_MAX ((size_t)64 * 1024)

/* The largest capacity of a bounded mpsc or broadcast channel. */
#define ZK_CHANNEL_CAPACITY_MAX ((size_t)1 << 24)

/* ====================================================================== */
/* oneshot: one value, once                                               */
/* ====================================================================== */

typedef struct zk_oneshot_tx zk_oneshot_tx;
typedef struct zk_oneshot_rx zk_oneshot_rx;

/* Creates a oneshot channel for one value of `elem_size` bytes. Returns 0,
 * -EINVAL or -ENOMEM. */
ZK_EXTERN int zk_oneshot_new(size_t elem_size, zk_oneshot_tx **tx,
                             zk_oneshot_rx **rx);

/*
 * Sends the value (never waits) and closes the sender: `*tx` is set to
 * NULL whatever the outcome. Returns 0, -EPIPE (the receiver was closed:
 * nothing was sent), or -EINVAL (`tx` or `*tx` or `msg` NULL; nothing
 * changed).
 */
ZK_EXTERN int zk_oneshot_send(zk_oneshot_tx **tx, const void *msg);

/* Closes the sender without sending: the receiver gets -EPIPE. Returns 0
 * or -EINVAL (`tx` or `*tx` NULL). */
ZK_EXTERN int zk_oneshot_tx_close(zk_oneshot_tx **tx);

/* Waits for the value and copies it into `buf`. Returns 0, -EPIPE (the
 * sender closed without sending, or the value was already received), or
 * -EINVAL, -ECANCELED, -EPERM, -ENOMEM. */
ZK_EXTERN int zk_oneshot_recv(zk_oneshot_rx *rx, void *buf);

/* zk_oneshot_recv() that gives up at `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_oneshot_recv_until(zk_oneshot_rx *rx, void *buf,
                                    zk_instant deadline);

/* Takes the value if it is there: 0, -EAGAIN (not sent yet), -EPIPE, or
 * -EINVAL. */
ZK_EXTERN int zk_oneshot_try_recv(zk_oneshot_rx *rx, void *buf);

/* Closes the receiver (a later send gets -EPIPE; a value sent and not
 * received is discarded). Returns 0 or -EINVAL. */
ZK_EXTERN int zk_oneshot_rx_close(zk_oneshot_rx **rx);

/* The receive as a future; output as zk_oneshot_recv(). */
typedef struct zk_oneshot_recv_future {
    zk_future base;
    void *_chan;
    void *_buf;
    zk_wait_node _node;
} zk_oneshot_recv_future;

/* Initialises a receive from `rx` into `buf` (which must stay valid until
 * the future is dropped). */
ZK_EXTERN void zk_oneshot_recv_future_init(zk_oneshot_recv_future *f,
                                           zk_oneshot_rx *rx, void *buf);

/* ====================================================================== */
/* mpsc: many senders, one receiver, FIFO                                 */
/* ====================================================================== */

typedef struct zk_mpsc_tx zk_mpsc_tx;
typedef struct zk_mpsc_rx zk_mpsc_rx;

/*
 * Creates a bounded channel holding up to `capacity` messages of
 * `elem_size` bytes (memory for all of them is allocated now). Senders
 * wait while it is full; waiting senders are served in FIFO order.
 * Returns 0, -EINVAL (capacity 0 or above ZK_CHANNEL_CAPACITY_MAX) or
 * -ENOMEM.
 */
ZK_EXTERN int zk_mpsc_new(size_t elem_size, size_t capacity, zk_mpsc_tx **tx,
                          zk_mpsc_rx **rx);

/* Creates an unbounded channel: sends never wait; the buffer grows as
 * needed (a send fails with -ENOMEM when it cannot). Returns 0, -EINVAL or
 * -ENOMEM. */
ZK_EXTERN int zk_mpsc_new_unbounded(size_t elem_size, zk_mpsc_tx **tx,
                                    zk_mpsc_rx **rx);

/* Makes another sender handle for the same channel in `*out`. Returns 0,
 * -EINVAL, or -EPIPE (the receiver is gone; no handle made). */
ZK_EXTERN int zk_mpsc_tx_clone(zk_mpsc_tx *tx, zk_mpsc_tx **out);

/* Closes a sender handle (`*tx` becomes NULL). When it was the last one
 * the receiver drains, then gets -EPIPE. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_mpsc_tx_close(zk_mpsc_tx **tx);

/* Closes the receiver (`*rx` becomes NULL): buffered messages are
 * discarded, sends fail with -EPIPE. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_mpsc_rx_close(zk_mpsc_rx **rx);

/* Sends a copy of `msg`, waiting for room in a bounded channel. Returns 0
 * (sent), or -EPIPE, -EINVAL, -ECANCELED, -EPERM, -ENOMEM (not sent). */
ZK_EXTERN int zk_mpsc_send(zk_mpsc_tx *tx, const void *msg);

/* zk_mpsc_send() that gives up at `deadline` with -ETIMEDOUT (not sent). */
ZK_EXTERN int zk_mpsc_send_until(zk_mpsc_tx *tx, const void *msg,
                                 zk_instant deadline);

/* Sends if there is room now and none of it is reserved for a waiting
 * sender that was woken: 0, -EAGAIN, -EPIPE, -ENOMEM, or -EINVAL. */
ZK_EXTERN int zk_mpsc_try_send(zk_mpsc_tx *tx, const void *msg);

/* Waits for the next message and copies it into `buf`. Returns 0, -EPIPE
 * (every sender closed and nothing left), or -EINVAL, -ECANCELED, -EPERM,
 * -ENOMEM. */
ZK_EXTERN int zk_mpsc_recv(zk_mpsc_rx *rx, void *buf);

/* zk_mpsc_recv() that gives up at `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_mpsc_recv_until(zk_mpsc_rx *rx, void *buf,
                                 zk_instant deadline);

/* Takes the next message if there is one: 0, -EAGAIN, -EPIPE, or
 * -EINVAL. */
ZK_EXTERN int zk_mpsc_try_recv(zk_mpsc_rx *rx, void *buf);

/* Returns the number of messages buffered (0 for NULL). */
ZK_EXTERN size_t zk_mpsc_len(zk_mpsc_rx *rx);

/* A send as a future: output as zk_mpsc_send(). `msg` is read when the
 * message goes in, so it must stay valid until the future is dropped. */
typedef struct zk_mpsc_send_future {
    zk_future base;
    void *_chan;
    const void *_msg;
    zk_wait_node _node;
} zk_mpsc_send_future;

/* Initialises a send of `msg` on `tx`. */
ZK_EXTERN void zk_mpsc_send_future_init(zk_mpsc_send_future *f, zk_mpsc_tx *tx,
                                        const void *msg);

/* A receive as a future: output as zk_mpsc_recv(). */
typedef struct zk_mpsc_recv_future {
    zk_future base;
    void *_chan;
    void *_buf;
    zk_wait_node _node;
} zk_mpsc_recv_future;

/* Initialises a receive from `rx` into `buf`. */
ZK_EXTERN void zk_mpsc_recv_future_init(zk_mpsc_recv_future *f, zk_mpsc_rx *rx,
                                        void *buf);

/* ====================================================================== */
/* broadcast: every receiver sees every message                          */
/* ====================================================================== */

/*
 * A ring of `capacity` messages. A send never waits: it overwrites the
 * oldest message, so a receiver that falls more than `capacity` messages
 * behind loses the oldest ones. Its next receive then returns -EOVERFLOW
 * with the number it lost, and moves it to the oldest message still
 * retained (the receive after that returns it).
 */
typedef struct zk_broadcast_tx zk_broadcast_tx;
typedef struct zk_broadcast_rx zk_broadcast_rx;

/* Creates a broadcast channel with one sender and one receiver. Returns 0,
 * -EINVAL or -ENOMEM. */
ZK_EXTERN int zk_broadcast_new(size_t elem_size, size_t capacity,
                               zk_broadcast_tx **tx, zk_broadcast_rx **rx);

/* Makes another sender handle. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_broadcast_tx_clone(zk_broadcast_tx *tx, zk_broadcast_tx **out);

/* Makes a new receiver that sees the messages sent from now on. Returns
 * 0, -EINVAL or -ENOMEM. */
ZK_EXTERN int zk_broadcast_subscribe(zk_broadcast_tx *tx,
                                     zk_broadcast_rx **out);

/* Closes a sender handle (`*tx` becomes NULL). Returns 0 or -EINVAL. */
ZK_EXTERN int zk_broadcast_tx_close(zk_broadcast_tx **tx);

/* Closes a receiver handle (`*rx` becomes NULL). Returns 0 or -EINVAL. */
ZK_EXTERN int zk_broadcast_rx_close(zk_broadcast_rx **rx);

/* Sends a copy of `msg` to every receiver (never waits). Returns the
 * number of receivers (> 0), or -EPIPE (no receiver: not sent) or
 * -EINVAL. */
ZK_EXTERN int zk_broadcast_send(zk_broadcast_tx *tx, const void *msg);

/*
 * Waits for this receiver's next message and copies it into `buf`.
 * Returns 0, or -EOVERFLOW (it fell behind: `*missed`, if not NULL, gets
 * how many messages it lost; nothing copied; receive again), -EPIPE
 * (every sender closed and it has seen everything), -EINVAL, -ECANCELED,
 * -EPERM, -ENOMEM.
 */
ZK_EXTERN int zk_broadcast_recv(zk_broadcast_rx *rx, void *buf,
                                uint64_t *missed);

/* zk_broadcast_recv() that gives up at `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_broadcast_recv_until(zk_broadcast_rx *rx, void *buf,
                                      uint64_t *missed, zk_instant deadline);

/* Takes this receiver's next message if there is one: as
 * zk_broadcast_recv(), with -EAGAIN instead of waiting. */
ZK_EXTERN int zk_broadcast_try_recv(zk_broadcast_rx *rx, void *buf,
                                    uint64_t *missed);

/* A receive as a future: output as zk_broadcast_recv(); after -EOVERFLOW
 * the `missed` field holds the count. */
typedef struct zk_broadcast_recv_future {
    zk_future base;
    zk_broadcast_rx *_rx;
    void *_buf;
    uint64_t missed;
    zk_wait_node _node;
} zk_broadcast_recv_future;

/* Initialises a receive from `rx` into `buf`. */
ZK_EXTERN void zk_broadcast_recv_future_init(zk_broadcast_recv_future *f,
                                             zk_broadcast_rx *rx, void *buf);

/* ====================================================================== */
/* watch: the latest value                                                */
/* ====================================================================== */

/*
 * One value that senders replace and receivers read, each receiver able
 * to wait until it changes. Receivers see the latest value, not every
 * value. The initial value counts as seen.
 */
typedef struct zk_watch_tx zk_watch_tx;
typedef struct zk_watch_rx zk_watch_rx;

/* Creates a watch channel holding a copy of `initial` (`elem_size`
 * bytes). Returns 0, -EINVAL or -ENOMEM. */
ZK_EXTERN int zk_watch_new(size_t elem_size, const void *initial,
                           zk_watch_tx **tx, zk_watch_rx **rx);

/* Makes another sender handle. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_watch_tx_clone(zk_watch_tx *tx, zk_watch_tx **out);

/* Makes a new receiver for which the current value counts as seen.
 * Returns 0, -EINVAL or -ENOMEM. */
ZK_EXTERN int zk_watch_subscribe(zk_watch_tx *tx, zk_watch_rx **out);

/* Makes a receiver that has seen what `rx` has seen. Returns 0, -EINVAL
 * or -ENOMEM. */
ZK_EXTERN int zk_watch_rx_clone(zk_watch_rx *rx, zk_watch_rx **out);

/* Closes a sender handle (`*tx` becomes NULL); when it was the last one,
 * receivers waiting for a change get -EPIPE. Returns 0 or -EINVAL. */
ZK_EXTERN int zk_watch_tx_close(zk_watch_tx **tx);

/* Closes a receiver handle (`*rx` becomes NULL). Returns 0 or -EINVAL. */
ZK_EXTERN int zk_watch_rx_close(zk_watch_rx **rx);

/* Replaces the value with a copy of `value` and wakes the receivers
 * waiting for a change. Returns 0, -EPIPE (no receiver: not stored) or
 * -EINVAL. */
ZK_EXTERN int zk_watch_send(zk_watch_tx *tx, const void *value);

/* Copies the current value into `buf` and marks it seen by `rx` (works
 * after the senders are gone too). Returns 0 or -EINVAL. */
ZK_EXTERN int zk_watch_borrow(zk_watch_rx *rx, void *buf);

/* Waits until the value changed since `rx` last saw it (borrow or
 * changed), and marks it seen; read it with zk_watch_borrow(). Returns 0,
 * -EPIPE (every sender closed and no unseen change), -EINVAL, -ECANCELED,
 * -EPERM, -ENOMEM. */
ZK_EXTERN int zk_watch_changed(zk_watch_rx *rx);

/* zk_watch_changed() that gives up at `deadline` with -ETIMEDOUT. */
ZK_EXTERN int zk_watch_changed_until(zk_watch_rx *rx, zk_instant deadline);

/* The wait for a change as a future; output as zk_watch_changed(). */
typedef struct zk_watch_changed_future {
    zk_future base;
    zk_watch_rx *_rx;
    zk_wait_node _node;
} zk_watch_changed_future;

/* Initialises a wait for a change seen by `rx`. */
ZK_EXTERN void zk_watch_changed_future_init(zk_watch_changed_future *f,
                                            zk_watch_rx *rx);

#ifdef __cplusplus
}
#endif
#endif
