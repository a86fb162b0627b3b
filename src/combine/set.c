/* set.c - the futures of a join, select or race (see set.h). */
#include <errno.h>
#include <stdlib.h>

#include "combine/set.h"

#define ZK__WORD_BITS 64

void zk__set_init(zk_future_set *s, zk_future **futs, size_t n, bool empty_ok) {
    s->_futs = futs;
    s->_n = n;
    s->_small = 0;
    s->_big = NULL;
    s->_left = n;
    s->_error = 0;
    if ((futs == NULL && n > 0) || n > ZK_COMBINE_MAX ||
        (n == 0 && !empty_ok)) {
        /* Nothing to drop that we could trust: a count this large is
         * taken for a bad one (a negative number cast, say), and walking
         * that many entries would read past the caller's array. */
        s->_left = 0;
        s->_error = -EINVAL;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!zk__future_ok(futs[i]))
            s->_error = -EINVAL;
}

static uint64_t *zk__set_word(const zk_future_set *s, size_t i) {
    if (s->_n <= ZK__WORD_BITS)
        return (uint64_t *)&s->_small;
    return &s->_big[i / ZK__WORD_BITS];
}

bool zk__set_done(const zk_future_set *s, size_t i) {
    return (*zk__set_word(s, i) >> (i % ZK__WORD_BITS)) & 1;
}

static void zk__set_mark(zk_future_set *s, size_t i) {
    *zk__set_word(s, i) |= (uint64_t)1 << (i % ZK__WORD_BITS);
    s->_left--;
}

void zk__set_finish(zk_future_set *s, size_t i) {
    zk__set_mark(s, i);
    zk_future_drop(s->_futs[i]);
}

void zk__set_drop_all(zk_future_set *s) {
    if (s->_left > 0) {
        if (s->_n > ZK__WORD_BITS && s->_big == NULL) {
            /* Never started: nothing is done yet. */
            for (size_t i = 0; i < s->_n; i++)
                if (zk__future_ok(s->_futs[i]))
                    zk_future_drop(s->_futs[i]);
        } else {
            for (size_t i = 0; i < s->_n && s->_left > 0; i++)
                if (!zk__set_done(s, i)) {
                    zk__set_mark(s, i);
                    if (zk__future_ok(s->_futs[i]))
                        zk_future_drop(s->_futs[i]);
                }
        }
        s->_left = 0;
    }
    free(s->_big);
    s->_big = NULL;
}

int zk__set_start(zk_future_set *s) {
    if (s->_error == 0 && s->_n > ZK__WORD_BITS && s->_big == NULL) {
        size_t words = (s->_n + ZK__WORD_BITS - 1) / ZK__WORD_BITS;
        s->_big = calloc(words, sizeof *s->_big);
        if (s->_big == NULL)
            s->_error = -ENOMEM;
    }
    int err = s->_error;
    if (err != 0)
        zk__set_drop_all(s);
    return err;
}
