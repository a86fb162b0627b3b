/* chan.h - what the channel files share. */
#ifndef ZK__CHAN_H
#define ZK__CHAN_H

#include "sync/waitq.h"
#include "zokio/channel.h"

static inline bool zk__elem_ok(size_t elem_size) {
    return elem_size > 0 && elem_size <= ZK_CHANNEL_ELEM_MAX;
}

#endif
