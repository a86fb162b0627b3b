/*
 * set.h - the futures a join, select or race works on: which of them are
 * finished, and dropping the rest exactly once.
 */
#ifndef ZK_COMBINE_SET_H
#define ZK_COMBINE_SET_H

#include "zokio/combine.h"

/* True for a future that can be polled. */
static inline bool zk__future_ok(const zk_future *f) {
    return f != NULL && f->ops != NULL && f->ops->poll != NULL;
}

/* Records the array and checks it; a bad array leaves the error in
 * `_error` for the first poll to report. `empty_ok`: n == 0 is valid. */
void zk__set_init(zk_future_set *s, zk_future **futs, size_t n, bool empty_ok);

/* Before the first poll: returns 0, or the error to finish with (the set
 * has then dropped every future it could and owns nothing any more). */
int zk__set_start(zk_future_set *s);

/* True once future `i` has finished or been dropped. */
bool zk__set_done(const zk_future_set *s, size_t i);

/* Drops future `i` and counts it done. */
void zk__set_finish(zk_future_set *s, size_t i);

/* Drops every future not yet done and frees the bitmap: after this the
 * set owns nothing (safe to call again). */
void zk__set_drop_all(zk_future_set *s);

#endif
