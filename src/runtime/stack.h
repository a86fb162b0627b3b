/*
 * stack.h - the pool of coroutine stacks.
 *
 * Every stack is address space reserved with mmap(MAP_NORESERVE): the kernel
 * commits a page only when the task first touches it, so a parked task costs
 * the pages it actually used. Below each stack lies one page that is either
 *  - a guard page (PROT_NONE): an overflow faults there and overflow.c
 *    reports it, naming the task; or
 *  - a red zone that is never legitimately written: it keeps reading as
 *    zeros (the kernel's shared zero page, no memory cost) and is checked
 *    each time the task suspends.
 * A guard page costs two memory mappings per stack, and the process may hold
 * only vm.max_map_count of them (65530 by default), so guard pages are given
 * out from a process-wide budget (half of what the process had free when the
 * first runtime started); past it, stacks come unguarded from slabs of
 * ZK__SLAB_STACKS, one mapping each.
 * Freed stacks of the runtime's default size are kept for reuse with no
 * system call. When a worker goes to sleep and no stack has come back to the
 * pool for ZK__STACK_TRIM_AFTER_NS, zk__stack_pool_trim() gives the pages of
 * all but ZK__STACK_HOT of them back to the kernel: a bursty load keeps its
 * stacks warm, a quiet runtime gives the memory back at its next sleep.
 */
#ifndef ZK__STACK_H
#define ZK__STACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZK__SLAB_STACKS         32
#define ZK__STACK_HOT           64
#define ZK__STACK_TRIM_AFTER_NS ((int64_t)1000 * 1000 * 1000)

typedef struct zk__stack_slab zk__stack_slab;

typedef struct zk__stack {
    /* Usable stack: [lo, lo + size). The page below lo is the guard page or
     * red zone. */
    char *lo;
    size_t size;
    bool guarded;
    /* In the pool with its pages already given back (trim skips it). */
    bool cold;
    /* Valgrind's id for the stack (0 when not built with valgrind.h). */
    unsigned valgrind_id;
    /* The slab this stack was carved from, or NULL if it has its own
     * mapping (which starts one page below lo). */
    zk__stack_slab *slab;
    struct zk__stack *next_free;
} zk__stack;

typedef struct zk__stack_pool {
    pthread_mutex_t lock;
    size_t default_size;
    zk__stack *free; /* default-size stacks ready for reuse */
    size_t free_count;
    /* Free stacks on top of the list whose pages may still be committed;
     * read without the lock as a hint by zk__stack_pool_trim(). */
    _Atomic size_t hot_count;
    zk__stack_slab *slabs;
    zk__stack_slab *slab_partial; /* a slab with stacks never handed out */
    /* When a stack last came back (coarse monotonic clock, ns). */
    _Atomic int64_t last_put_ns;
} zk__stack_pool;

/* A worker's private stock of free default-size stacks: the common case
 * (a task finishing, another starting on the same worker) takes no lock.
 * It is refilled from and flushed to the pool ZK__STACK_BATCH at a time. */
#define ZK__STACK_CACHE 32
#define ZK__STACK_BATCH 16

typedef struct zk__stack_cache {
    zk__stack *stacks[ZK__STACK_CACHE];
    size_t n;
} zk__stack_cache;

int zk__stack_pool_init(zk__stack_pool *p, size_t default_size);
/* Frees every stack; all of them must have been returned. */
void zk__stack_pool_destroy(zk__stack_pool *p);

/* Gets a stack of `size` bytes (page multiple); 0 on success or -ENOMEM.
 * `cache` (the calling worker's, or NULL) is used for default-size
 * stacks. */
int zk__stack_get(zk__stack_pool *p, zk__stack_cache *cache, size_t size,
                  zk__stack **out);
void zk__stack_put(zk__stack_pool *p, zk__stack_cache *cache, zk__stack *s);

/* Gives up a stack without returning it: the stack of a task abandoned at
 * shutdown, whose frames may still be pointed at (a waiter node in a queue
 * of a primitive that outlives the runtime, a buffer the kernel writes).
 * Its memory is never reused or unmapped (the slab it was carved from is
 * kept with it): leaked, as runtime.h says of what such a task
 * referenced. */
void zk__stack_abandon(zk__stack_pool *p, zk__stack *s);
/* Returns every stack of a cache to the pool (a worker that stops). */
void zk__stack_cache_flush(zk__stack_pool *p, zk__stack_cache *cache);
/* Gives back the pages of surplus free stacks if the pool has been quiet
 * for ZK__STACK_TRIM_AFTER_NS. Call when a worker goes to sleep. */
void zk__stack_pool_trim(zk__stack_pool *p);

/* Bytes at the top of the red zone scanned when a task finishes. */
#define ZK__REDZONE_SCAN 256

/* True when an unguarded stack's red zone shows no sign of overflow: its
 * top ZK__REDZONE_SCAN bytes and two sampled words still read as zeros.
 * Always true for guarded stacks. Checked when a task finishes; at each
 * suspension the coroutine compares its stack pointer with the stack's end
 * itself (coro.c). */
bool zk__stack_redzone_ok(const zk__stack *s);

/* The page size, cached. */
size_t zk__page_size(void);

#endif
