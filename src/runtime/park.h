/*
 * park.h - a futex-based parker: one thread sleeps in park() until another
 * calls unpark(). An unpark that comes first is remembered, so the next
 * park() returns at once (no lost wake-ups). This is the default park/unpark
 * of a worker; the I/O driver replaces it with a wait in its ring or epoll.
 */
#ifndef ZK__PARK_H
#define ZK__PARK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct zk__io_worker;

/* A parker's `state`. */
enum { ZK__PARK_EMPTY = 0, ZK__PARK_PARKED = 1, ZK__PARK_NOTIFIED = 2 };

typedef struct zk__parker {
    /* ZK__PARK_EMPTY, ZK__PARK_PARKED or ZK__PARK_NOTIFIED. */
    _Atomic uint32_t state;
    /* A worker's parker sleeps in its I/O driver instance (and returns
     * early when an I/O completion or event arrives); NULL: a futex. */
    struct zk__io_worker *io;
    /* The most completions or events a park reaps (zk__io_poll's
     * `max`). */
    size_t io_max;
} zk__parker;

void zk__parker_init(zk__parker *p);
/* Makes `p` sleep in `io`, the I/O driver instance of the worker that owns
 * `p` (and lets `io` sleep on `p`'s state when it cannot wait itself); a
 * park reaps at most `max_wakes` completions or events (the room in the
 * worker's run queue, which is empty when it parks). */
void zk__parker_attach_io(zk__parker *p, struct zk__io_worker *io,
                          size_t max_wakes);
/* Sleeps until unparked; consumes one pending unpark. */
void zk__parker_park(zk__parker *p);
/* Like zk__parker_park(), but returns after `timeout_ns` (relative, > 0)
 * at the latest. */
void zk__parker_park_timeout(zk__parker *p, int64_t timeout_ns);
/* Wakes the parked thread, or makes its next park() return at once. */
void zk__parker_unpark(zk__parker *p);

#endif
