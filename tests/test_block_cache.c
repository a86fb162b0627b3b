/* test_block_cache.c - recycled task blocks (src/runtime/block_cache.h):
 * a full cache passes a batch to the depot, an empty one takes a batch
 * back, a full depot frees what it cannot hold, and two threads trading
 * blocks through one depot never get the same block twice. The leak check
 * after each test (AddressSanitizer builds) proves every block is freed. */
#include "helpers.h"
#include "runtime/block_cache.h"

ZK_SUITE(block_cache);

#define SIZE 200

static zk__block_cache *cache_new(void) {
    zk__block_cache *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    return c;
}

static size_t depot_batches(zk__block_depot *d) {
    return atomic_load(&d->nbatches);
}

ZK_TEST(block_cache, empty_cache_and_depot_fall_back_to_malloc) {
    zk__block_depot d;
    zk__block_depot_init(&d, SIZE);
    zk__block_cache *c = cache_new();
    char *b = zk__block_get(&d, c);
    cr_assert_not_null(b);
    memset(b, 0xab, SIZE); /* the whole block is usable */
    cr_assert_eq(c->n, 0u);
    zk__block_put(&d, c, b);
    cr_assert_eq(c->n, 1u, "kept, not freed");
    cr_assert_eq(zk__block_get(&d, c), b, "the kept block is reused");
    zk__block_put(&d, c, b);
    zk__block_cache_flush(&d, c);
    cr_assert_eq(c->n, 0u);
    cr_assert_eq(depot_batches(&d), 0u, "less than a batch is freed");
    zk__block_depot_destroy(&d);
    free(c);
}

ZK_TEST(block_cache, a_full_cache_passes_a_batch_to_another_worker) {
    zk__block_depot d;
    zk__block_depot_init(&d, SIZE);
    zk__block_cache *freer = cache_new(), *spawner = cache_new();
    void *blocks[ZK__BLOCK_CACHE + 1];
    for (size_t i = 0; i <= ZK__BLOCK_CACHE; i++)
        blocks[i] = zk__block_get(&d, spawner);
    /* Blocks spawned on one worker end on the other. */
    for (size_t i = 0; i < ZK__BLOCK_CACHE; i++)
        zk__block_put(&d, freer, blocks[i]);
    cr_assert_eq(freer->n, (size_t)ZK__BLOCK_CACHE);
    cr_assert_eq(depot_batches(&d), 0u);
    zk__block_put(&d, freer, blocks[ZK__BLOCK_CACHE]);
    cr_assert_eq(depot_batches(&d), 1u, "one batch went to the depot");
    cr_assert_eq(freer->n, (size_t)(ZK__BLOCK_CACHE - ZK__BLOCK_BATCH + 1));
    /* The spawner's empty cache takes that batch back: the blocks it gets
     * are among those the freer let go, not fresh ones. */
    for (size_t k = 0; k < ZK__BLOCK_BATCH; k++) {
        void *b = zk__block_get(&d, spawner);
        bool known = false;
        for (size_t i = 0; i <= ZK__BLOCK_CACHE; i++)
            known |= blocks[i] == b;
        cr_assert(known, "block %zu of the batch is a recycled one", k);
        if (k == 0) {
            cr_assert_eq(depot_batches(&d), 0u);
            cr_assert_eq(spawner->n, (size_t)(ZK__BLOCK_BATCH - 1));
        }
        zk__block_put(&d, freer, b); /* and it ends on the freer again */
    }
    zk__block_cache_flush(&d, freer);
    zk__block_cache_flush(&d, spawner);
    cr_assert_eq(freer->n + spawner->n, 0u);
    cr_assert_gt(depot_batches(&d), 0u, "whole batches wait in the depot");
    zk__block_depot_destroy(&d); /* frees them */
    cr_assert_eq(depot_batches(&d), 0u);
    free(freer);
    free(spawner);
}

ZK_TEST(block_cache, a_full_depot_frees_what_it_cannot_hold) {
    zk__block_depot d;
    zk__block_depot_init(&d, SIZE);
    zk__block_cache *c = cache_new();
    size_t n = (ZK__DEPOT_BATCHES + 2) * ZK__BLOCK_BATCH + ZK__BLOCK_CACHE;
    void **blocks = calloc(n, sizeof *blocks);
    cr_assert_not_null(blocks);
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc(SIZE);
        cr_assert_not_null(blocks[i]);
    }
    for (size_t i = 0; i < n; i++)
        zk__block_put(&d, c, blocks[i]);
    cr_assert_eq(depot_batches(&d), (size_t)ZK__DEPOT_BATCHES,
                 "bounded: the batches past the limit were freed");
    cr_assert_leq(c->n, (size_t)ZK__BLOCK_CACHE);
    zk__block_cache_flush(&d, c);
    zk__block_depot_destroy(&d);
    free(blocks);
    free(c);
}

/* A producer thread takes blocks and hands them to a consumer thread that
 * gives them back, as a spawning worker and a finishing one do: the
 * producer's cache runs dry and refills from the depot, the consumer's
 * fills up and spills into it. A set of the blocks handed out (under a
 * mutex) proves that none is handed out twice at once. */
#define TRADE_BLOCKS 20000
#define QUEUE_LEN    256

typedef struct trade {
    zk__block_depot d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void *queue[QUEUE_LEN];
    size_t head, len;
    bool done;
    void *live[QUEUE_LEN + 1];
    size_t nlive;
    atomic_bool twice, refilled, failed;
} trade;

static void live_add(trade *t, void *b) {
    for (size_t i = 0; i < t->nlive; i++)
        if (t->live[i] == b)
            atomic_store(&t->twice, true);
    t->live[t->nlive++] = b;
}

static void live_remove(trade *t, void *b) {
    for (size_t i = 0; i < t->nlive; i++)
        if (t->live[i] == b) {
            t->live[i] = t->live[--t->nlive];
            return;
        }
}

/* The threads below report failures through `t` (Criterion's assertions
 * work only on the test's own thread). */
static void *producer(void *arg) {
    trade *t = arg;
    zk__block_cache *c = calloc(1, sizeof *c);
    for (int k = 0; c != NULL && k < TRADE_BLOCKS; k++) {
        void *b = zk__block_get(&t->d, c);
        if (b == NULL) {
            atomic_store(&t->failed, true);
            break;
        }
        if (c->n > 0) /* only a refill from the depot fills it */
            atomic_store(&t->refilled, true);
        memset(b, 1, SIZE);
        pthread_mutex_lock(&t->mu);
        while (t->len == QUEUE_LEN)
            pthread_cond_wait(&t->cv, &t->mu);
        live_add(t, b);
        t->queue[(t->head + t->len++) % QUEUE_LEN] = b;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_lock(&t->mu);
    t->done = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (c == NULL)
        atomic_store(&t->failed, true);
    else
        zk__block_cache_flush(&t->d, c);
    free(c);
    return NULL;
}

static void *consumer(void *arg) {
    trade *t = arg;
    zk__block_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        atomic_store(&t->failed, true);
    for (;;) {
        pthread_mutex_lock(&t->mu);
        while (t->len == 0 && !t->done)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->len == 0) {
            pthread_mutex_unlock(&t->mu);
            break;
        }
        void *b = t->queue[t->head];
        t->head = (t->head + 1) % QUEUE_LEN;
        t->len--;
        live_remove(t, b);
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        memset(b, 2, SIZE);
        if (c != NULL)
            zk__block_put(&t->d, c, b);
        else
            free(b);
    }
    if (c != NULL)
        zk__block_cache_flush(&t->d, c);
    free(c);
    return NULL;
}

ZK_TEST(block_cache, blocks_flow_from_the_freeing_thread_to_the_spawning_one) {
    trade *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    zk__block_depot_init(&t->d, SIZE);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    atomic_init(&t->twice, false);
    atomic_init(&t->refilled, false);
    atomic_init(&t->failed, false);
    pthread_t p, c;
    cr_assert_eq(pthread_create(&p, NULL, producer, t), 0);
    cr_assert_eq(pthread_create(&c, NULL, consumer, t), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    cr_assert_not(atomic_load(&t->failed), "out of memory in a thread");
    cr_assert_not(atomic_load(&t->twice), "a block was handed out twice");
    cr_assert_eq(t->nlive, 0u);
    cr_assert(atomic_load(&t->refilled),
              "the spawning thread got blocks back through the depot");
    cr_assert_leq(depot_batches(&t->d), (size_t)ZK__DEPOT_BATCHES);
    zk__block_depot_destroy(&t->d);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
