/*
 * block_cache.h - recycled memory for coroutine tasks.
 *
 * Every coroutine task is a block of one fixed size. A task is often
 * spawned on one worker and freed on another (it was stolen, or its last
 * reference went with a waker), and glibc then takes the first worker's
 * arena lock for each free once the freeing thread's own cache is full:
 * with two workers spawning and ending tasks in a stream, that lock and
 * malloc's bookkeeping took a fifth of the time.
 *
 * So each worker keeps up to ZK__BLOCK_CACHE freed blocks and spawns from
 * them with no lock. Imbalance (one worker spawns, another frees) goes
 * through the runtime's depot: a worker whose cache is full moves
 * ZK__BLOCK_BATCH blocks there in one locked step, and one whose cache is
 * empty takes a batch back the same way. The depot holds at most
 * ZK__DEPOT_BATCHES batches and frees what would go past them; the rest is
 * freed with the runtime. A block freed on a thread that is no worker goes
 * straight back to malloc.
 *
 * Under AddressSanitizer coro.c does not use the caches: a recycled block
 * is handed to the next spawn at once, where ASan's quarantine keeps freed
 * memory poisoned long enough to catch a late use of a finished task.
 */
#ifndef ZK__BLOCK_CACHE_H
#define ZK__BLOCK_CACHE_H

#include <stdatomic.h>
#include <stddef.h>

#include "common/lock.h"

#define ZK__BLOCK_CACHE   64
#define ZK__BLOCK_BATCH   32
#define ZK__DEPOT_BATCHES 64

/* A worker's private stock. */
typedef struct zk__block_cache {
    void *blocks[ZK__BLOCK_CACHE];
    size_t n;
} zk__block_cache;

/* A runtime's shared stock: batches of ZK__BLOCK_BATCH blocks, each batch
 * chained through its blocks' first words (see block_cache.c). */
typedef struct zk__block_depot {
    zk__lock lock;
    size_t block_size;
    void *batches;
    /* Written under the lock; read without it as a hint. */
    _Atomic size_t nbatches;
} zk__block_depot;

void zk__block_depot_init(zk__block_depot *d, size_t block_size);

/* A new block of `block_size` bytes that starts on a cache line
 * (zk__alloc_line), so that a task's hot fields, kept together in its
 * first line, take as few lines as they can; free() releases it. NULL
 * when memory is exhausted. */
void *zk__block_new(size_t block_size);

/* Frees every block in the depot; the caches were flushed before. */
void zk__block_depot_destroy(zk__block_depot *d);

/* A block of the depot's size: from `c` (the calling worker's cache),
 * refilled from the depot when empty, else zk__block_new(). NULL when
 * memory is exhausted. */
void *zk__block_get(zk__block_depot *d, zk__block_cache *c);

/* Gives a block back to `c`, passing a batch to the depot first when `c`
 * is full. The block may come from any runtime's depot or from malloc:
 * they are all plain malloc'd blocks of the same size. */
void zk__block_put(zk__block_depot *d, zk__block_cache *c, void *b);

/* Moves every block of `c` to the depot or frees it (a worker that
 * stops). */
void zk__block_cache_flush(zk__block_depot *d, zk__block_cache *c);

#endif
