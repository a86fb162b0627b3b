/*
 * runtime.c - the builder, the runtime object, spawning, block_on and
 * shutdown. Scheduling itself is behind zk__sched_ops (current_thread.c).
 */
#include "runtime.h"
#include "coro.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocking.h"
#include "common/util.h"
#include "task_state.h"
#include "worker.h"
#include "zokio/metrics.h"

/* ---------------------------------------------------------------------- */
/* Builder                                                                */
/* ---------------------------------------------------------------------- */

struct zk_builder {
    zk_runtime_kind kind;
    size_t workers;
    size_t stack_size;
    size_t blocking_threads;
    int64_t blocking_keep_alive_ns;
    int64_t shutdown_timeout_ns;
    bool name_set_null;
    char thread_name[16];
    zk_io_backend io_backend;
    int io_read_ahead; /* -1: not chosen (ZOKIO_IO_READ_AHEAD decides) */
    size_t io_homes;   /* 0: the default (io.h) */
};

static size_t zk__default_workers(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

zk_builder *zk_builder_new(void) {
    zk_builder *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->kind = ZK_RUNTIME_MULTI_THREAD;
    b->workers = 0; /* 0: the kind's default */
    b->stack_size = ZK_STACK_DEFAULT;
    b->blocking_threads = ZK_BLOCKING_THREADS_DEFAULT;
    b->blocking_keep_alive_ns = ZK_BLOCKING_KEEP_ALIVE_DEFAULT_NS;
    b->shutdown_timeout_ns = -1;
    b->io_read_ahead = -1;
    strcpy(b->thread_name, "zokio-worker");
    return b;
}

void zk_builder_free(zk_builder *b) {
    free(b);
}

void zk_builder_set_kind(zk_builder *b, zk_runtime_kind kind) {
    if (b)
        b->kind = kind;
}

void zk_builder_set_workers(zk_builder *b, size_t workers) {
    if (b)
        b->workers = workers == 0 ? SIZE_MAX : workers; /* 0 is invalid */
}

void zk_builder_set_thread_name(zk_builder *b, const char *name) {
    if (!b)
        return;
    b->name_set_null = name == NULL;
    if (name) {
        strncpy(b->thread_name, name, sizeof b->thread_name - 1);
        b->thread_name[sizeof b->thread_name - 1] = '\0';
    }
}

void zk_builder_set_stack_size(zk_builder *b, size_t bytes) {
    if (b)
        b->stack_size = bytes;
}

void zk_builder_set_blocking_threads(zk_builder *b, size_t max_threads) {
    if (b)
        b->blocking_threads = max_threads;
}

void zk_builder_set_blocking_keep_alive(zk_builder *b, int64_t ns) {
    if (b)
        b->blocking_keep_alive_ns = ns;
}

void zk_builder_set_shutdown_timeout(zk_builder *b, int64_t ns) {
    if (b)
        b->shutdown_timeout_ns = ns;
}

void zk_builder_set_io_backend(zk_builder *b, zk_io_backend backend) {
    if (b)
        b->io_backend = backend;
}

void zk_builder_set_io_read_ahead(zk_builder *b, bool on) {
    if (b)
        b->io_read_ahead = on;
}

void zk_builder_set_io_homes(zk_builder *b, size_t homes) {
    if (b)
        b->io_homes = homes;
}

int zk_builder_build(const zk_builder *b, zk_runtime **out) {
    if (b == NULL || out == NULL)
        return -EINVAL;
    if (b->kind != ZK_RUNTIME_CURRENT_THREAD &&
        b->kind != ZK_RUNTIME_MULTI_THREAD)
        return -EINVAL;
    size_t workers = b->workers;
    if (workers == 0)
        workers =
            b->kind == ZK_RUNTIME_CURRENT_THREAD ? 1 : zk__default_workers();
    if (workers == SIZE_MAX || workers > ZK_WORKERS_MAX)
        return -EINVAL;
    if (b->kind == ZK_RUNTIME_CURRENT_THREAD && workers != 1)
        return -EINVAL;
    if (b->io_homes > workers)
        return -EINVAL;
    if (b->name_set_null)
        return -EINVAL;
    if (b->stack_size < ZK_STACK_MIN || b->stack_size > ZK_STACK_MAX)
        return -EINVAL;
    if (b->blocking_threads == 0 ||
        b->blocking_threads > ZK_BLOCKING_THREADS_MAX)
        return -EINVAL;
    if (b->blocking_keep_alive_ns < 0 ||
        b->blocking_keep_alive_ns > ZK_BLOCKING_KEEP_ALIVE_MAX_NS)
        return -EINVAL;

    zk_runtime *rt = aligned_alloc(64, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    memset(rt, 0, sizeof *rt);
    size_t page = zk__page_size();
    rt->kind = b->kind;
    rt->workers = workers;
    rt->stack_size = (b->stack_size + page - 1) & ~(page - 1);
    memcpy(rt->thread_name, b->thread_name, sizeof rt->thread_name);
    rt->shutdown_timeout_ns = b->shutdown_timeout_ns;
    atomic_init(&rt->shutting_down, false);
    atomic_init(&rt->remote_schedules, 0);
    atomic_init(&rt->remote_in_flight, 0);
    zk__parker_init(&rt->drained);
    int rc = 0;
    for (size_t i = 0; i < ZK__OWNED_SHARDS; i++) {
        zk__lock_init(&rt->owned[i].lock);
        atomic_init(&rt->owned[i].count, 0);
    }
    zk__block_depot_init(&rt->coro_depot, zk__coro_block_size());
    rc = zk__stack_pool_init(&rt->stacks, rt->stack_size);
    if (rc == 0 && (rc = zk__time_init(&rt->time, rt)) != 0)
        zk__stack_pool_destroy(&rt->stacks);
    if (rc == 0 && (rc = zk__io_init(&rt->io, rt, workers, b->io_backend,
                                     b->io_read_ahead, b->io_homes)) != 0) {
        zk__time_destroy(&rt->time);
        zk__stack_pool_destroy(&rt->stacks);
    }
    if (rc == 0) {
        rc = zk__blocking_pool_create(rt, b->blocking_threads,
                                      b->blocking_keep_alive_ns, &rt->blocking);
        if (rc != 0) {
            zk__io_destroy(&rt->io);
            zk__time_destroy(&rt->time);
            zk__stack_pool_destroy(&rt->stacks);
        }
    }
    if (rc == 0) {
        rc = rt->kind == ZK_RUNTIME_CURRENT_THREAD
                 ? zk__current_thread_create(rt)
                 : zk__multi_thread_create(rt);
        if (rc != 0) {
            zk__blocking_pool_shutdown(rt->blocking, -1);
            zk__io_destroy(&rt->io);
            zk__time_destroy(&rt->time);
            zk__stack_pool_destroy(&rt->stacks);
        }
    }
    if (rc != 0) {
        zk__block_depot_destroy(&rt->coro_depot); /* empty: for symmetry */
        free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

int zk_runtime_new(zk_runtime_kind kind, zk_runtime **out) {
    zk_builder *b = zk_builder_new();
    if (!b)
        return -ENOMEM;
    zk_builder_set_kind(b, kind);
    int rc = zk_builder_build(b, out);
    zk_builder_free(b);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* The live-task list                                                     */
/* ---------------------------------------------------------------------- */

static zk__owned_shard *zk__shard_of(zk_runtime *rt, const zk__task *t) {
    return &rt->owned[zk__task_id(t) & (ZK__OWNED_SHARDS - 1)];
}

/* Under the shard's lock: one writer at a time, so no atomic add. */
static void zk__shard_count_add(zk__owned_shard *sh, size_t delta) {
    size_t n = atomic_load_explicit(&sh->count, memory_order_relaxed);
    atomic_store_explicit(&sh->count, n + delta, memory_order_release);
}

int zk__runtime_own(zk_runtime *rt, zk__task *t) {
    zk__task_core *core = zk__task_core_of(t);
    zk__owned_shard *sh = zk__shard_of(rt, t);
    /* The shards close one after another; the flag is set before the
     * first one, so a spawn that follows the start of shutdown (say, from
     * a task that saw its cancellation) fails whatever its shard. */
    if (atomic_load(&rt->shutting_down))
        return -ESHUTDOWN;
    zk__lock_acquire(&sh->lock);
    if (sh->closed) {
        zk__lock_release(&sh->lock);
        return -ESHUTDOWN;
    }
    core->owned_prev = NULL;
    core->owned_next = sh->head;
    if (sh->head)
        zk__task_core_of(sh->head)->owned_prev = t;
    sh->head = t;
    zk__shard_count_add(sh, 1);
    zk__lock_release(&sh->lock);
    return 0;
}

void zk__runtime_release(zk_runtime *rt, zk__task *t) {
    zk__task_core *core = zk__task_core_of(t);
    zk__owned_shard *sh = zk__shard_of(rt, t);
    zk__lock_acquire(&sh->lock);
    if (core->owned_prev)
        zk__task_core_of(core->owned_prev)->owned_next = core->owned_next;
    else
        sh->head = core->owned_next;
    if (core->owned_next)
        zk__task_core_of(core->owned_next)->owned_prev = core->owned_prev;
    core->owned_prev = core->owned_next = NULL;
    zk__shard_count_add(sh, (size_t)-1);
    /* Read under the lock that zk__runtime_close_and_cancel() takes to set
     * it: either this task saw the shard closed, or its count went down
     * before the thread shutting down closed the shard (and so before it
     * counts in zk__runtime_wait_drained()). */
    bool closed = sh->closed;
    zk__lock_release(&sh->lock);
    /* During shutdown every task that ends wakes that thread, which counts
     * again (an unpark before its park counts). */
    if (closed)
        zk__parker_unpark(&rt->drained);
}

size_t zk__runtime_live(zk_runtime *rt) {
    size_t n = 0;
    for (size_t i = 0; i < ZK__OWNED_SHARDS; i++)
        n += atomic_load_explicit(&rt->owned[i].count, memory_order_acquire);
    return n;
}

void zk__runtime_wait_drained(zk_runtime *rt) {
    while (zk__runtime_live(rt) > 0)
        zk__parker_park(&rt->drained);
}

void zk__runtime_close_and_cancel(zk_runtime *rt) {
    atomic_store(&rt->shutting_down, true);
    for (size_t i = 0; i < ZK__OWNED_SHARDS; i++) {
        zk__owned_shard *sh = &rt->owned[i];
        zk__lock_acquire(&sh->lock);
        sh->closed = true;
        for (zk__task *t = sh->head; t; t = zk__task_core_of(t)->owned_next)
            zk__task_cancel(t);
        zk__lock_release(&sh->lock);
    }
}

void zk__runtime_submit(zk_runtime *rt, zk__task *t) {
    rt->sched_ops->schedule(rt, t, false);
}

zk_runtime *zk__runtime_current(void) {
    zk__worker *w = zk__worker_current();
    return w ? w->rt : zk__blocking_thread_runtime();
}

/* ---------------------------------------------------------------------- */
/* Spawning                                                               */
/* ---------------------------------------------------------------------- */

/* The common end of every spawn: hand out or drop the join reference and
 * give the task its first run. */
static void zk__spawned(zk_runtime *rt, zk__task *t, zk_task **handle) {
    zk__worker *w = zk__worker_current();
    if (w != NULL && w->rt == rt)
        ZK__COUNT(w->metrics.tasks_spawned);
    if (handle) {
        *handle = (zk_task *)t;
    } else {
        /* The live list and the first notification still hold `t`. */
        zk_task *h = (zk_task *)t;
        zk_task_detach(&h);
    }
    zk__runtime_submit(rt, t);
}

int zk_spawn_ex(zk_runtime *rt, const zk_spawn_opts *opts, zk_task_fn fn,
                void *arg, zk_task **handle) {
    if (fn == NULL)
        return -EINVAL;
    if (rt == NULL && (rt = zk__runtime_current()) == NULL)
        return -EPERM;
    zk__task *t;
    int rc = zk__spawn_coro(rt, opts, fn, arg, &t);
    if (rc != 0)
        return rc;
    zk__spawned(rt, t, handle);
    return 0;
}

int zk_spawn(zk_task_fn fn, void *arg, zk_task **handle) {
    return zk_spawn_ex(NULL, NULL, fn, arg, handle);
}

int zk_runtime_spawn(zk_runtime *rt, zk_task_fn fn, void *arg,
                     zk_task **handle) {
    if (rt == NULL)
        return -EINVAL;
    return zk_spawn_ex(rt, NULL, fn, arg, handle);
}

int zk_spawn_blocking(zk_runtime *rt, zk_task_fn fn, void *arg,
                      zk_task **handle) {
    if (fn == NULL)
        return -EINVAL;
    if (rt == NULL && (rt = zk__runtime_current()) == NULL)
        return -EPERM;
    if (atomic_load(&rt->shutting_down))
        return -ESHUTDOWN;
    zk__task *t;
    int rc = zk__blocking_spawn(rt->blocking, fn, arg, &t);
    if (rc != 0)
        return rc;
    zk_task *h = (zk_task *)t;
    if (handle)
        *handle = h;
    else
        zk_task_detach(&h);
    return 0;
}

int zk_spawn_future(zk_runtime *rt, const zk_future *fut, size_t size,
                    zk_task **handle) {
    if (rt == NULL && (rt = zk__runtime_current()) == NULL)
        return fut == NULL ? -EINVAL : -EPERM;
    zk__task *t;
    int rc = zk__spawn_future(rt, fut, size, &t);
    if (rc != 0)
        return rc;
    zk__spawned(rt, t, handle);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* block_on and shutdown                                                  */
/* ---------------------------------------------------------------------- */

typedef int (*zk__root_spawner)(zk_runtime *rt, const void *a, const void *b,
                                size_t size, zk__task **out);

static int zk__block_on(zk_runtime *rt, zk__root_spawner spawn, const void *a,
                        const void *b, size_t size, int64_t *result) {
    zk__worker *w = zk__worker_current();
    if (w != NULL)
        return -EPERM;
    int rc = rt->sched_ops->enter(rt);
    if (rc != 0)
        return rc;
    zk__task *root;
    rc = spawn(rt, a, b, size, &root);
    if (rc != 0) {
        rt->sched_ops->leave(rt);
        return rc;
    }
    zk__runtime_submit(rt, root);
    rt->sched_ops->run_until(rt, root);
    rt->sched_ops->leave(rt);
    zk_task *h = (zk_task *)root;
    return zk_task_join(&h, result);
}

static int zk__root_coro(zk_runtime *rt, const void *fn, const void *arg,
                         size_t size, zk__task **out) {
    (void)size;
    zk_task_fn f;
    memcpy(&f, fn, sizeof f);
    return zk__spawn_coro(rt, NULL, f, (void *)arg, out);
}

static int zk__root_future(zk_runtime *rt, const void *fut, const void *unused,
                           size_t size, zk__task **out) {
    (void)unused;
    return zk__spawn_future(rt, fut, size, out);
}

int zk_block_on(zk_runtime *rt, zk_task_fn fn, void *arg, int64_t *result) {
    if (rt == NULL || fn == NULL)
        return -EINVAL;
    return zk__block_on(rt, zk__root_coro, &fn, arg, 0, result);
}

int zk_block_on_future(zk_runtime *rt, const zk_future *fut, size_t size,
                       int64_t *result) {
    if (rt == NULL)
        return -EINVAL;
    return zk__block_on(rt, zk__root_future, fut, NULL, size, result);
}

int zk_runtime_free(zk_runtime *rt) {
    if (rt == NULL)
        return 0;
    zk__worker *w = zk__worker_current();
    if ((w != NULL && w->rt == rt) || zk__blocking_thread_runtime() == rt)
        return -EBUSY;
    int rc = rt->sched_ops->shutdown(rt);
    if (rc != 0)
        return rc;
    ZK__ASSERT(zk__runtime_live(rt) == 0);
    /* A thread that woke the last task may still be unparking us. */
    while (atomic_load_explicit(&rt->remote_in_flight, memory_order_acquire))
        sched_yield();
    /* Blocking work that outlives the timeout keeps running on its own:
     * blocking tasks and the pool do not need the runtime. */
    size_t left =
        zk__blocking_pool_shutdown(rt->blocking, rt->shutdown_timeout_ns);
    if (left > 0)
        fprintf(stderr,
                "zokio: shutdown timed out with %zu blocking call(s) still "
                "running; they are left to finish on their own\n",
                left);
    rt->sched_ops->destroy(rt);
    zk__io_destroy(&rt->io);
    zk__time_destroy(&rt->time);
    zk__stack_pool_destroy(&rt->stacks);
    zk__block_depot_destroy(&rt->coro_depot);
    free(rt);
    return 0;
}

zk_runtime *zk_runtime_current(void) {
    return zk__runtime_current();
}

zk_runtime_kind zk_runtime_get_kind(const zk_runtime *rt) {
    return rt ? rt->kind : (zk_runtime_kind)0;
}

size_t zk_runtime_workers(const zk_runtime *rt) {
    return rt ? rt->workers : 0;
}

size_t zk_runtime_live_tasks(const zk_runtime *rt) {
    return rt ? zk__runtime_live((zk_runtime *)rt) : 0;
}

/* ---------------------------------------------------------------------- */
/* Metrics                                                                */
/* ---------------------------------------------------------------------- */

#define ZK__READ(c) atomic_load_explicit(&(c), memory_order_relaxed)

int zk_runtime_metrics_get(zk_runtime *rt, zk_runtime_metrics *out) {
    if (rt == NULL || out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->workers = rt->workers;
    out->live_tasks = zk_runtime_live_tasks(rt);
    out->inject_queue_depth = rt->sched_ops->inject_len(rt);
    out->remote_schedules = ZK__READ(rt->remote_schedules);
    zk__blocking_stats b;
    zk__blocking_pool_stats(rt->blocking, &b);
    out->blocking_threads = b.threads;
    out->blocking_idle_threads = b.idle;
    out->blocking_queue_depth = b.queued;
    out->blocking_threads_started = b.started;
    out->blocking_threads_retired = b.retired;
    return 0;
}

int zk_runtime_worker_metrics(zk_runtime *rt, size_t index,
                              zk_worker_metrics *out) {
    if (rt == NULL || out == NULL || index >= rt->workers)
        return -EINVAL;
    zk__counters *c = &rt->sched_ops->worker(rt, index)->metrics;
    out->polls = ZK__READ(c->polls);
    out->tasks_spawned = ZK__READ(c->tasks_spawned);
    out->tasks_completed = ZK__READ(c->tasks_completed);
    out->local_schedules = ZK__READ(c->local_schedules);
    out->lifo_hits = ZK__READ(c->lifo_hits);
    out->steals = ZK__READ(c->steals);
    out->steal_operations = ZK__READ(c->steal_operations);
    out->parks = ZK__READ(c->parks);
    out->budget_yields = ZK__READ(c->budget_yields);
    out->direct_switches = ZK__READ(c->direct_switches);
    out->overflows = ZK__READ(c->overflows);
    out->local_queue_depth = rt->sched_ops->local_len(rt, index);
    return 0;
}
