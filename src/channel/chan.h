/* chan.h - what the channel files share. */
#ifndef ZK__CHAN_H
#define ZK__CHAN_H

#include <errno.h>
#include <stdbool.h>

#include "sync/waitq.h"
#include "zokio/channel.h"

static inline bool zk__elem_ok(size_t elem_size) {
    return elem_size > 0 && elem_size <= ZK_CHANNEL_ELEM_MAX;
}

/* The part shared by the channels with many senders and many receivers
 * (broadcast, watch): the lock, how many handles of each side are open,
 * and the receivers waiting for a message. */
typedef struct zk__chan_ends {
    zk__lock lock;
    size_t senders, receivers;
    zk__waitq waiters;
} zk__chan_ends;

/* One sender and one receiver. */
static inline void zk__ends_init(zk__chan_ends *e) {
    zk__lock_init(&e->lock);
    e->senders = 1;
    e->receivers = 1;
    zk__waitq_init(&e->waiters);
}

/* A new sender handle (receivers open under the lock themselves: they
 * also read where they start). */
static inline void zk__ends_add_sender(zk__chan_ends *e) {
    zk__lock_acquire(&e->lock);
    e->senders++;
    zk__lock_release(&e->lock);
}

/* A handle of one side closes. When the last sender goes, waiting
 * receivers are woken (they drain, then learn it is closed). Returns true
 * when no handle of either side is left: the caller frees the channel. */
static inline bool zk__ends_close(zk__chan_ends *e, bool sender) {
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&e->lock);
    size_t *side = sender ? &e->senders : &e->receivers;
    bool last = --*side == 0;
    if (last && sender)
        zk__waitq_release_all(&e->waiters, 0, &wl);
    bool gone = e->senders == 0 && e->receivers == 0;
    zk__lock_release(&e->lock);
    zk__wakelist_wake(&wl);
    return gone;
}

/* Element sizes, for the channel iterators (src/iter/sources.c). */
size_t zk__mpsc_elem_size(const zk_mpsc_rx *rx);
size_t zk__broadcast_elem_size(const zk_broadcast_rx *rx);
size_t zk__watch_elem_size(const zk_watch_rx *rx);

#endif
