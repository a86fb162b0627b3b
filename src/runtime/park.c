/* park.c - futex parker, see park.h. */
#include "park.h"

#include "common/futex.h"
#include "io/io.h"

void zk__parker_init(zk__parker *p) {
    atomic_init(&p->state, ZK__PARK_EMPTY);
    p->io = NULL;
    p->io_max = 0;
}

void zk__parker_attach_io(zk__parker *p, zk__io_worker *io, size_t max_wakes) {
    p->io = io;
    p->io_max = max_wakes;
    io->park_state = &p->state;
}

/* Parks until unparked or, with a timeout (>= 0), until it passes (one
 * futex wait; a spurious return before either is treated as the end of the
 * wait only when a timeout was given, which callers tolerate: they
 * recheck). */
static void zk__parker_wait(zk__parker *p, int64_t timeout_ns) {
    uint32_t expect = ZK__PARK_NOTIFIED;
    /* Fast path: an unpark already happened. */
    if (atomic_compare_exchange_strong_explicit(
            &p->state, &expect, ZK__PARK_EMPTY, memory_order_acquire,
            memory_order_relaxed))
        return;
    expect = ZK__PARK_EMPTY;
    if (!atomic_compare_exchange_strong_explicit(
            &p->state, &expect, ZK__PARK_PARKED, memory_order_acquire,
            memory_order_relaxed)) {
        /* Only an unpark can have changed EMPTY: consume it. */
        atomic_exchange_explicit(&p->state, ZK__PARK_EMPTY,
                                 memory_order_acquire);
        return;
    }
    if (p->io != NULL) {
        /* Any return of the driver's wait ends the park (completions and
         * events woke tasks the caller must now run). */
        zk__io_poll(p->io, timeout_ns, p->io_max);
        atomic_exchange_explicit(&p->state, ZK__PARK_EMPTY,
                                 memory_order_acquire);
        return;
    }
    for (;;) {
        zk__futex_wait(&p->state, ZK__PARK_PARKED, timeout_ns);
        /* Leave PARKED, consuming an unpark if one came. */
        if (atomic_exchange_explicit(&p->state, ZK__PARK_EMPTY,
                                     memory_order_acquire) ==
                ZK__PARK_NOTIFIED ||
            timeout_ns >= 0)
            return;
        /* Spurious wake-up (EINTR, or a stale wake): sleep again. */
        expect = ZK__PARK_EMPTY;
        if (!atomic_compare_exchange_strong_explicit(
                &p->state, &expect, ZK__PARK_PARKED, memory_order_acquire,
                memory_order_relaxed)) {
            atomic_exchange_explicit(&p->state, ZK__PARK_EMPTY,
                                     memory_order_acquire);
            return;
        }
    }
}

void zk__parker_park(zk__parker *p) {
    zk__parker_wait(p, -1);
}

void zk__parker_park_timeout(zk__parker *p, int64_t timeout_ns) {
    zk__parker_wait(p, timeout_ns);
}

void zk__parker_unpark(zk__parker *p) {
    /* Sequentially consistent: a backend that sleeps on `state` or in its
     * instance, whichever it could, orders this against its choice. */
    if (atomic_exchange_explicit(&p->state, ZK__PARK_NOTIFIED,
                                 memory_order_seq_cst) == ZK__PARK_PARKED) {
        if (p->io != NULL)
            p->io->ops->unpark(p->io);
        else
            zk__futex_wake(&p->state);
    }
}
