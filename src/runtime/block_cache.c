/*
 * block_cache.c - per-worker caches of task blocks and the runtime's depot
 * (see block_cache.h).
 */
#include "block_cache.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* A block in the depot: the first word chains the blocks of its batch, the
 * second (in a batch's first block) the next batch. Blocks are at least two
 * pointers large (a task is much larger). */
typedef struct zk__depot_link {
    struct zk__depot_link *next_block;
    struct zk__depot_link *next_batch;
} zk__depot_link;

void zk__block_depot_init(zk__block_depot *d, size_t block_size) {
    ZK__ASSERT(block_size >= sizeof(zk__depot_link));
    zk__lock_init(&d->lock);
    d->block_size = block_size;
    d->batches = NULL;
    atomic_init(&d->nbatches, 0);
}

/* Frees the blocks of one batch. */
static void zk__batch_free(zk__depot_link *l) {
    while (l) {
        zk__depot_link *next = l->next_block;
        free(l);
        l = next;
    }
}

void zk__block_depot_destroy(zk__block_depot *d) {
    zk__depot_link *batch = d->batches;
    while (batch) {
        zk__depot_link *next = batch->next_batch;
        zk__batch_free(batch);
        batch = next;
    }
    d->batches = NULL;
    atomic_store_explicit(&d->nbatches, 0, memory_order_relaxed);
}

/* Moves the ZK__BLOCK_BATCH blocks at the bottom of `c` (freed longest
 * ago: the coldest in this core's cache) to the depot, or frees them when
 * the depot is full. */
static void zk__cache_spill(zk__block_depot *d, zk__block_cache *c) {
    zk__depot_link *batch = NULL;
    for (size_t i = 0; i < ZK__BLOCK_BATCH; i++) {
        zk__depot_link *l = c->blocks[i];
        l->next_block = batch;
        batch = l;
    }
    c->n -= ZK__BLOCK_BATCH;
    memmove(c->blocks, c->blocks + ZK__BLOCK_BATCH, c->n * sizeof c->blocks[0]);
    zk__lock_acquire(&d->lock);
    size_t n = atomic_load_explicit(&d->nbatches, memory_order_relaxed);
    bool room = n < ZK__DEPOT_BATCHES;
    if (room) {
        batch->next_batch = d->batches;
        d->batches = batch;
        atomic_store_explicit(&d->nbatches, n + 1, memory_order_relaxed);
    }
    zk__lock_release(&d->lock);
    if (!room)
        zk__batch_free(batch);
}

/* Refills an empty `c` with a batch from the depot; false when it has
 * none. */
static bool zk__cache_refill(zk__block_depot *d, zk__block_cache *c) {
    /* Unlocked peek: a stale answer only means one malloc or one lock. */
    if (atomic_load_explicit(&d->nbatches, memory_order_relaxed) == 0)
        return false;
    zk__lock_acquire(&d->lock);
    zk__depot_link *batch = d->batches;
    if (batch) {
        d->batches = batch->next_batch;
        atomic_store_explicit(
            &d->nbatches,
            atomic_load_explicit(&d->nbatches, memory_order_relaxed) - 1,
            memory_order_relaxed);
    }
    zk__lock_release(&d->lock);
    for (zk__depot_link *l = batch; l;) {
        zk__depot_link *next = l->next_block;
        c->blocks[c->n++] = l;
        l = next;
    }
    return batch != NULL;
}

void *zk__block_new(size_t block_size) {
    return zk__alloc_line(block_size);
}

void *zk__block_get(zk__block_depot *d, zk__block_cache *c) {
    if (c->n == 0 && !zk__cache_refill(d, c))
        return zk__block_new(d->block_size);
    return c->blocks[--c->n];
}

void zk__block_put(zk__block_depot *d, zk__block_cache *c, void *b) {
    if (c->n == ZK__BLOCK_CACHE)
        zk__cache_spill(d, c);
    c->blocks[c->n++] = b;
}

void zk__block_cache_flush(zk__block_depot *d, zk__block_cache *c) {
    while (c->n >= ZK__BLOCK_BATCH)
        zk__cache_spill(d, c);
    while (c->n > 0) {
        free(c->blocks[--c->n]);
    }
}
