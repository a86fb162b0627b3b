/* stack.c - the pool of coroutine stacks, see stack.h. */
#include "stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/* Valgrind must be told which memory is a stack, or every switch onto a
 * coroutine stack looks like wild accesses below the thread's own stack.
 * The client requests cost a few instructions outside valgrind. */
#if defined(ZK__HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#define ZK__STACK_REGISTERED(s)                                                \
    ((s)->valgrind_id = VALGRIND_STACK_REGISTER((s)->lo, (s)->lo + (s)->size))
#define ZK__STACK_DEREGISTERED(s) VALGRIND_STACK_DEREGISTER((s)->valgrind_id)
#else
#define ZK__STACK_REGISTERED(s)   ((s)->valgrind_id = 0)
#define ZK__STACK_DEREGISTERED(s) ((void)(s))
#endif

struct zk__stack_slab {
    char *map;
    size_t map_size;
    size_t stride;  /* one page of red zone + the stack */
    size_t carved;  /* descs[0..carved) have been handed out at least once */
    bool abandoned; /* holds an abandoned task's stack: never unmapped */
    zk__stack_slab *next;
    zk__stack descs[ZK__SLAB_STACKS];
};

size_t zk__page_size(void) {
    static _Atomic size_t cached;
    size_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&cached, p, memory_order_relaxed);
    }
    return p;
}

/* ---------------------------------------------------------------------- */
/* The process-wide budget of guarded stacks                              */
/* ---------------------------------------------------------------------- */

static _Atomic long zk__guard_budget;
static pthread_once_t zk__guard_once = PTHREAD_ONCE_INIT;

static long zk__read_long_file(const char *path, long fallback) {
    FILE *f = fopen(path, "r");
    long v = fallback;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = fallback;
        fclose(f);
    }
    return v;
}

static long zk__count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (!f)
        return 1000; /* unknown: assume a busy process */
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void zk__guard_budget_init(void) {
    long max = zk__read_long_file("/proc/sys/vm/max_map_count", 65530);
    long free_maps = max - zk__count_maps();
    /* Half of what is free goes to guard pages, two mappings per stack;
     * the other half stays for the application and for slabs. */
    long stacks = free_maps > 0 ? free_maps / 4 : 0;
#if defined(ZK__TSAN)
    /* ThreadSanitizer maps a shadow stack for every coroutine's fiber:
     * leave it most of the process's mappings. */
    stacks /= 4;
#endif
    const char *env = getenv("ZOKIO_GUARD_STACKS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 0 && v < stacks)
            stacks = v;
    }
    atomic_store(&zk__guard_budget, stacks);
}

static bool zk__guard_take(void) {
    pthread_once(&zk__guard_once, zk__guard_budget_init);
    long v = atomic_load_explicit(&zk__guard_budget, memory_order_relaxed);
    while (v > 0) {
        if (atomic_compare_exchange_weak_explicit(&zk__guard_budget, &v, v - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static void zk__guard_give(void) {
    atomic_fetch_add_explicit(&zk__guard_budget, 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------------- */
/* Mappings                                                               */
/* ---------------------------------------------------------------------- */

static void *zk__map(size_t bytes) {
    void *m =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* A stack with its own mapping and, when `guard` (a budget unit the caller
 * took), a guard page below it; otherwise that page is a red zone. */
static zk__stack *zk__stack_map_single(size_t size, bool guard) {
    size_t page = zk__page_size();
    zk__stack *s = malloc(sizeof *s);
    char *m = s ? zk__map(size + page) : NULL;
    if (!m) {
        free(s);
        if (guard)
            zk__guard_give();
        return NULL;
    }
    s->lo = m + page;
    s->size = size;
    s->slab = NULL;
    s->next_free = NULL;
    s->guarded = guard && mprotect(m, page, PROT_NONE) == 0;
    ZK__STACK_REGISTERED(s);
    if (guard && !s->guarded)
        zk__guard_give(); /* out of mappings: keep it as a red zone */
    return s;
}

static void zk__stack_unmap_single(zk__stack *s) {
    size_t page = zk__page_size();
    ZK__STACK_DEREGISTERED(s);
    munmap(s->lo - page, s->size + page);
    if (s->guarded)
        zk__guard_give();
    free(s);
}

/* Carves the next unguarded stack from a slab; called with the lock. */
static zk__stack *zk__stack_carve(zk__stack_pool *p) {
    zk__stack_slab *sl = p->slab_partial;
    size_t page = zk__page_size();
    if (sl == NULL) {
        sl = calloc(1, sizeof *sl);
        if (!sl)
            return NULL;
        sl->stride = p->default_size + page;
        sl->map_size = sl->stride * ZK__SLAB_STACKS;
        sl->map = zk__map(sl->map_size);
        if (!sl->map) {
            free(sl);
            return NULL;
        }
        sl->next = p->slabs;
        p->slabs = sl;
        p->slab_partial = sl;
    }
    zk__stack *s = &sl->descs[sl->carved];
    s->lo = sl->map + sl->carved * sl->stride + page;
    s->size = p->default_size;
    s->guarded = false;
    s->slab = sl;
    s->next_free = NULL;
    ZK__STACK_REGISTERED(s);
    if (++sl->carved == ZK__SLAB_STACKS)
        p->slab_partial = NULL;
    return s;
}

/* ---------------------------------------------------------------------- */
/* The pool                                                               */
/* ---------------------------------------------------------------------- */

/* A clock cheap enough for every stack return (a few ms of resolution). */
static int64_t zk__coarse_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int zk__stack_pool_init(zk__stack_pool *p, size_t default_size) {
    p->default_size = default_size;
    p->free = NULL;
    p->free_count = 0;
    p->hot_count = 0;
    p->slabs = NULL;
    p->slab_partial = NULL;
    atomic_init(&p->last_put_ns, 0);
    return -pthread_mutex_init(&p->lock, NULL);
}

void zk__stack_pool_destroy(zk__stack_pool *p) {
    zk__stack *s = p->free;
    while (s) {
        zk__stack *next = s->next_free;
        if (s->slab == NULL)
            zk__stack_unmap_single(s);
        s = next;
    }
    zk__stack_slab *sl = p->slabs;
    while (sl) {
        zk__stack_slab *next = sl->next;
        if (!sl->abandoned) {
            for (size_t i = 0; i < sl->carved; i++)
                ZK__STACK_DEREGISTERED(&sl->descs[i]);
            munmap(sl->map, sl->map_size);
            free(sl);
        }
        sl = next;
    }
    pthread_mutex_destroy(&p->lock);
}

/* With the lock held: pops a free default-size stack, or NULL. */
static zk__stack *zk__pool_pop_locked(zk__stack_pool *p) {
    zk__stack *s = p->free;
    if (s) {
        p->free = s->next_free;
        p->free_count--;
        /* Hot stacks are on top of the list; cold ones below. */
        if (p->hot_count > 0)
            p->hot_count--;
    }
    return s;
}

/* With the lock held: pushes a free default-size stack on top. */
static void zk__pool_push_locked(zk__stack_pool *p, zk__stack *s) {
    s->next_free = p->free;
    p->free = s;
    p->free_count++;
    p->hot_count++;
}

static zk__stack *zk__stack_fresh(zk__stack_pool *p) {
    /* Guarded while the budget lasts, then carved from slabs. */
    if (zk__guard_take())
        return zk__stack_map_single(p->default_size, true);
    pthread_mutex_lock(&p->lock);
    zk__stack *s = zk__stack_carve(p);
    pthread_mutex_unlock(&p->lock);
    return s;
}

int zk__stack_get(zk__stack_pool *p, zk__stack_cache *cache, size_t size,
                  zk__stack **out) {
    zk__stack *s = NULL;
    if (size != p->default_size) {
        s = zk__stack_map_single(size, zk__guard_take());
    } else if (cache != NULL && cache->n > 0) {
        s = cache->stacks[--cache->n];
    } else {
        pthread_mutex_lock(&p->lock);
        s = zk__pool_pop_locked(p);
        /* Refill the worker's cache in the same visit. */
        while (s != NULL && cache != NULL && cache->n < ZK__STACK_BATCH) {
            zk__stack *more = zk__pool_pop_locked(p);
            if (more == NULL)
                break;
            cache->stacks[cache->n++] = more;
        }
        pthread_mutex_unlock(&p->lock);
        if (s == NULL)
            s = zk__stack_fresh(p);
    }
    if (s == NULL)
        return -ENOMEM;
    s->next_free = NULL;
    s->cold = false;
    *out = s;
    return 0;
}

void zk__stack_put(zk__stack_pool *p, zk__stack_cache *cache, zk__stack *s) {
    if (s->size != p->default_size) {
        zk__stack_unmap_single(s);
        return;
    }
    /* No system call here: surplus pages are given back by
     * zk__stack_pool_trim() once the runtime is quiet. */
    atomic_store_explicit(&p->last_put_ns, zk__coarse_now_ns(),
                          memory_order_relaxed);
    if (cache != NULL && cache->n < ZK__STACK_CACHE) {
        cache->stacks[cache->n++] = s;
        return;
    }
    pthread_mutex_lock(&p->lock);
    zk__pool_push_locked(p, s);
    /* A full cache hands its oldest half to the pool in the same visit. */
    if (cache != NULL) {
        for (size_t i = 0; i < ZK__STACK_BATCH; i++)
            zk__pool_push_locked(p, cache->stacks[i]);
        for (size_t i = ZK__STACK_BATCH; i < cache->n; i++)
            cache->stacks[i - ZK__STACK_BATCH] = cache->stacks[i];
        cache->n -= ZK__STACK_BATCH;
    }
    pthread_mutex_unlock(&p->lock);
}

void zk__stack_abandon(zk__stack_pool *p, zk__stack *s) {
    if (s->slab == NULL)
        return; /* its own mapping: simply never unmapped */
    pthread_mutex_lock(&p->lock);
    s->slab->abandoned = true;
    pthread_mutex_unlock(&p->lock);
}

void zk__stack_cache_flush(zk__stack_pool *p, zk__stack_cache *cache) {
    pthread_mutex_lock(&p->lock);
    while (cache->n > 0)
        zk__pool_push_locked(p, cache->stacks[--cache->n]);
    pthread_mutex_unlock(&p->lock);
}

void zk__stack_pool_trim(zk__stack_pool *p) {
    if (atomic_load_explicit(&p->hot_count, memory_order_relaxed) <=
        ZK__STACK_HOT)
        return;
    if (zk__coarse_now_ns() -
            atomic_load_explicit(&p->last_put_ns, memory_order_relaxed) <
        ZK__STACK_TRIM_AFTER_NS)
        return; /* still busy: keep the stacks warm */
    pthread_mutex_lock(&p->lock);
    /* The first ZK__STACK_HOT free stacks stay as they are; the pages of
     * the rest go back to the kernel, and guarded ones are unmapped (which
     * returns their mappings to the guard budget). The list is rebuilt
     * with the hot ones first. */
    zk__stack *keep = NULL, **keep_tail = &keep, *cold = NULL;
    zk__stack *release = NULL;
    size_t n = 0, kept = 0;
    for (zk__stack *s = p->free, *next; s; s = next) {
        next = s->next_free;
        s->next_free = NULL;
        if (n++ < ZK__STACK_HOT) {
            *keep_tail = s;
            keep_tail = &s->next_free;
            kept++;
        } else if (s->slab) {
            s->next_free = cold;
            cold = s;
        } else {
            s->next_free = release;
            release = s;
        }
    }
    /* Surplus slab stacks give their pages back but stay in the pool. */
    for (zk__stack *s = cold; s; s = s->next_free) {
        if (!s->cold)
            madvise(s->lo, s->size, MADV_DONTNEED);
        s->cold = true;
    }
    *keep_tail = cold;
    size_t cold_count = 0;
    for (zk__stack *s = cold; s; s = s->next_free)
        cold_count++;
    p->free = keep;
    p->free_count = kept + cold_count;
    p->hot_count = kept;
    pthread_mutex_unlock(&p->lock);
    while (release) {
        zk__stack *next = release->next_free;
        zk__stack_unmap_single(release);
        release = next;
    }
}

bool zk__stack_redzone_ok(const zk__stack *s) {
    if (s->guarded)
        return true;
    /* An overflow runs down from the top of the red zone. Reading the red
     * zone maps the kernel's zero page once per stack (a minor fault), so
     * it is done only when a task finishes. */
    size_t page = zk__page_size();
    const volatile uint64_t *zone = (const volatile uint64_t *)(s->lo - page);
    size_t words = page / sizeof(uint64_t);
    uint64_t seen = zone[words / 2] | zone[0];
    for (size_t i = words - ZK__REDZONE_SCAN / sizeof(uint64_t); i < words; i++)
        seen |= zone[i];
    return seen == 0;
}
