/* futex.h - the two futex calls a sleeping thread and its waker make. */
#ifndef ZK__FUTEX_H
#define ZK__FUTEX_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/* Sleeps while `*addr` holds `expect`, until zk__futex_wake() or until
 * `timeout_ns` (relative; < 0: no limit) passes. May return early (a
 * signal, a stale wake): callers check the word again. */
static inline void zk__futex_wait(_Atomic uint32_t *addr, uint32_t expect,
                                  int64_t timeout_ns) {
    struct timespec ts = zk__timespec_of_ns(timeout_ns < 0 ? 0 : timeout_ns);
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expect,
            timeout_ns < 0 ? NULL : &ts, NULL, 0);
}

/* Wakes one thread sleeping on `addr`. */
static inline void zk__futex_wake(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#endif
