/* util.h - small helpers every internal file may use. */
#ifndef ZK__UTIL_H
#define ZK__UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ZK__LIKELY(x)   __builtin_expect(!!(x), 1)
#define ZK__UNLIKELY(x) __builtin_expect(!!(x), 0)

#define ZK__CONTAINER_OF(ptr, type, member)                                    \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A broken invariant inside the library: the only case zokio aborts. */
#define ZK__BUG(msg)                                                           \
    do {                                                                       \
        fprintf(stderr, "zokio: internal error at %s:%d: %s\n", __FILE__,      \
                __LINE__, msg);                                                \
        abort();                                                               \
    } while (0)

#define ZK__ASSERT(cond)                                                       \
    do {                                                                       \
        if (ZK__UNLIKELY(!(cond)))                                             \
            ZK__BUG("invariant failed: " #cond);                               \
    } while (0)

/* A relative duration in nanoseconds (>= 0) as a timespec, for the
 * system calls that take one. */
static inline struct timespec zk__timespec_of_ns(int64_t ns) {
    return (struct timespec){(time_t)(ns / 1000000000),
                             (long)(ns % 1000000000)};
}

/* CLOCK_MONOTONIC in nanoseconds: the real clock, which a runtime's paused
 * clock (time/driver.h) does not stop. */
static inline int64_t zk__mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Memory for `size` bytes that starts on a cache line (64 bytes), freed
 * with free(); NULL when out of memory. For objects that every round trip
 * of a connection touches: laid out so that what a round trip reads
 * shares a line, they must also start on one. */
static inline void *zk__alloc_line(size_t size) {
    return aligned_alloc(64, (size + 63) & ~(size_t)63);
}

/* zk__alloc_line(), zeroed. */
static inline void *zk__zalloc_line(size_t size) {
    void *p = zk__alloc_line(size);
    if (p != NULL)
        __builtin_memset(p, 0, size);
    return p;
}

/* A hint to the CPU inside a bounded spin. */
static inline void zk__cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZK__ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define ZK__TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(ZK__ASAN)
#define ZK__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(ZK__TSAN)
#define ZK__TSAN 1
#endif

#endif
