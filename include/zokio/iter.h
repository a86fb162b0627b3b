/*
 * zokio/iter.h - async iterators ("streams"): a sequence of items that
 * arrive over time, taken one at a time with a future-like `next`.
 *
 * (Tokio calls these streams; zokio keeps the word "stream" for byte
 * streams, zokio/net.h.)
 *
 * An iterator yields items of a fixed size (`item_size` bytes, copied into
 * the caller's buffer). Each `next` ends in one of:
 *   0            an item was copied into the buffer;
 *   ZK_ITER_END  the sequence is over (and stays over);
 *   < 0          an error for this step (what follows depends on the
 *                source: a broadcast receiver that fell behind gets
 *                -EOVERFLOW once, then goes on).
 *
 *     zk_iter *ticks, *five;
 *     zk_iter_interval(ZK_MS(100), ZK_MISSED_TICK_SKIP, &ticks);
 *     zk_iter_take(ticks, 5, &five);        // five owns ticks now
 *     zk_instant at;
 *     while (zk_iter_next(five, &at) == 0)
 *         printf("tick at %lld\n", (long long)at);
 *     zk_iter_free(five);                   // frees ticks too
 *
 * Iterators are heap objects made by the functions below, or by users:
 * embed a `zk_iter` as the first member and give it operations. An adapter
 * (map, filter, take) owns the iterator it wraps from the moment it is
 * made, and frees it with itself. Sources borrow their channel: the
 * receiver handle must outlive the iterator.
 *
 * Cancellation: a `next` that is abandoned while pending (its future
 * dropped by a select or a timeout, its task aborted) loses nothing. A
 * channel source gives up its receive, which had taken nothing: the
 * message it waited for stays in the channel, for the next `next` or any
 * other receive of the channel (a receive left waiting would take the
 * wake-up a message brings, and another receive would miss it). Other
 * iterators keep the step they were in the middle of, and the next `next`
 * continues it.
 *
 * One iterator is used by one task at a time (it is not locked).
 */
#ifndef ZOKIO_ITER_H
#define ZOKIO_ITER_H

#include "channel.h"
#include "future.h"
#include "time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The result of a `next` when the sequence is over. */
#define ZK_ITER_END 1

/* The largest item an iterator made here carries. */
#define ZK_ITER_ITEM_MAX ((size_t)1 << 20)

typedef struct zk_iter zk_iter;

/*
 * The operations of a kind of iterator.
 * poll_next: like a future's poll for the next item. Returns ZK_READY with
 *            `*status` set as described above (and the item copied into
 *            `item` when it is 0), or ZK_PENDING after arranging for the
 *            context's waker to be woken. It may be called with another
 *            context or buffer after a pending result (see Cancellation).
 * free:      releases the iterator, whatever step it is in.
 * abandon:   optional (NULL: the step is kept for the next call). Called
 *            when a `next` or collect whose last poll_next was pending is
 *            dropped: an iterator that can undo that step without losing
 *            an item (give up a channel receive that took nothing) does
 *            so, rather than stay queued where nobody polls it. An adapter
 *            passes it to the iterator it wraps.
 */
typedef struct zk_iter_ops {
    zk_poll (*poll_next)(zk_iter *self, zk_context *cx, void *item,
                         int64_t *status);
    void (*free)(zk_iter *self);
    void (*abandon)(zk_iter *self);
} zk_iter_ops;

/* The first member of every iterator. */
struct zk_iter {
    const zk_iter_ops *ops;
    size_t item_size;
};

/* Frees an iterator (and the iterators it wraps). NULL is a no-op. */
ZK_EXTERN void zk_iter_free(zk_iter *it);

/* Returns the size of the iterator's items, or 0 for NULL. */
ZK_EXTERN size_t zk_iter_item_size(const zk_iter *it);

/* ---------------------------------------------------------------------- */
/* Taking items                                                           */
/* ---------------------------------------------------------------------- */

/*
 * Waits for the next item and copies it into `item` (item_size bytes).
 * Returns 0, ZK_ITER_END, the source's error, or -ECANCELED (the task was
 * aborted; nothing lost, see above), -EPERM (inside a future task's
 * poll), -EINVAL (NULL). From a plain thread it blocks the thread, which
 * works for channel sources; time sources need a runtime (-EPERM).
 */
ZK_EXTERN int zk_iter_next(zk_iter *it, void *item);

/* zk_iter_next() that gives up at `deadline` with -ETIMEDOUT (nothing is
 * lost: the step goes on at the next call). */
ZK_EXTERN int zk_iter_next_until(zk_iter *it, void *item, zk_instant deadline);

/* `next` as a future; output as zk_iter_next(). `item` must stay valid
 * while the future lives. Dropping it while pending loses nothing. */
typedef struct zk_iter_next_future {
    zk_future base;
    zk_iter *_it;
    void *_item;
    bool _pending; /* the last poll was pending */
} zk_iter_next_future;

/* Initialises a `next` of `it` into `item`. */
ZK_EXTERN void zk_iter_next_future_init(zk_iter_next_future *f, zk_iter *it,
                                        void *item);

/*
 * Takes every item until the end, into a new array: `*items` (free() it;
 * NULL when there are none) of `*count` items. At most `max` items (0: no
 * limit). Returns 0, or (with nothing allocated and `*items` NULL):
 * -E2BIG (more than `max` items), -ENOMEM, the first error the iterator
 * gave, -ECANCELED, -EPERM, -EINVAL as zk_iter_next(). The items taken
 * before a failure are gone.
 */
ZK_EXTERN int zk_iter_collect(zk_iter *it, size_t max, void **items,
                              size_t *count);

/* A collect as a future; output as zk_iter_collect(). */
typedef struct zk_iter_collect_future {
    zk_future base;
    zk_iter *_it;
    size_t _max;
    void **_items;
    size_t *_count;
    char *_buf;
    size_t _len, _cap;
    bool _stepping; /* the iterator's last poll_next was pending */
} zk_iter_collect_future;

/* Initialises a collect of `it` (see zk_iter_collect()). */
ZK_EXTERN void zk_iter_collect_future_init(zk_iter_collect_future *f,
                                           zk_iter *it, size_t max,
                                           void **items, size_t *count);

/* ---------------------------------------------------------------------- */
/* Sources                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Each makes an iterator in `*out` and returns 0, or -EINVAL (NULL, or
 * sizes out of range) or -ENOMEM.
 */

/* Yields copies of `items[0..n)` (item_size bytes each; the array must
 * outlive the iterator), then ends. */
ZK_EXTERN int zk_iter_from_array(const void *items, size_t n, size_t item_size,
                                 zk_iter **out);

/* Yields each message of the channel (items of its element size); ends
 * once every sender is closed and the channel is drained. */
ZK_EXTERN int zk_iter_from_mpsc(zk_mpsc_rx *rx, zk_iter **out);

/* Yields each message this receiver gets; -EOVERFLOW when it fell behind
 * (then it goes on from the oldest message kept); ends once every sender
 * is closed and it has seen everything. */
ZK_EXTERN int zk_iter_from_broadcast(zk_broadcast_rx *rx, zk_iter **out);

/* Yields the current value at once, then the latest value after each
 * change; ends once every sender is closed. */
ZK_EXTERN int zk_iter_from_watch(zk_watch_rx *rx, zk_iter **out);

/* Yields the scheduled instant (zk_instant) of each tick of an interval
 * starting one period from now, with `missed` ticks handled as
 * zk_interval does; never ends. Needs a runtime (-EPERM from next
 * outside one). */
ZK_EXTERN int zk_iter_interval(zk_duration period, zk_missed_tick missed,
                               zk_iter **out);

/* ---------------------------------------------------------------------- */
/* Adapters                                                               */
/* ---------------------------------------------------------------------- */

/*
 * Each wraps `inner` in a new iterator `*out`, which owns inner from then
 * on. Returns 0, or -EINVAL (NULL) or -ENOMEM; on failure inner stays the
 * caller's. Errors from inner pass through unchanged.
 */

/* Turns an item of `in` into one of `out_size` bytes; returns 0, or a
 * negative error that becomes that step's result. */
typedef int (*zk_iter_map_fn)(const void *in, void *out, void *arg);

/* Yields fn(item) for each item of inner. */
ZK_EXTERN int zk_iter_map(zk_iter *inner, size_t out_size, zk_iter_map_fn fn,
                          void *arg, zk_iter **out);

/* Says whether to keep an item. */
typedef bool (*zk_iter_filter_fn)(const void *item, void *arg);

/* Yields the items of inner for which keep(item, arg) is true. */
ZK_EXTERN int zk_iter_filter(zk_iter *inner, zk_iter_filter_fn keep, void *arg,
                             zk_iter **out);

/* Yields the first `n` items of inner, then ends (without asking inner
 * for more). */
ZK_EXTERN int zk_iter_take(zk_iter *inner, size_t n, zk_iter **out);

#ifdef __cplusplus
}
#endif
#endif
