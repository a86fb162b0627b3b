/*
 * coro.c - coroutine tasks: spawning one, switching into and out of it, and
 * zk_await(), the single path of every blocking-style call.
 *
 * A coroutine task is polled like any task: its poll switches onto the
 * task's stack and returns when the coroutine suspends (pending or yielded)
 * or its function returns (ready). zk_await() polls a future in a loop and
 * suspends between polls; the task's waker brings it back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/context.h"
#include "common/util.h"
#include "coro.h"
#include "runtime.h"
#include "scope.h"
#include "stack.h"
#include "task_state.h"
#include "worker.h"

#if defined(ZK__ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(ZK__TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/*
 * What every resumption and await reads comes first, then the task's
 * header, which every wake and run touches: with the block cache-line
 * aligned (block_cache.h) all of it is one line, the only one of the
 * block a round trip of a connection's task touches (how a run ended goes
 * through the worker, zk__coro_leave). On a server with thousands of
 * connections each line touched per round trip is a cache miss. The task
 * pointer is &base.header (zk__coro_of).
 */
typedef struct zk__coro {
    /* The innermost cancel scope the coroutine is in (scope.c), NULL in
     * none: what zk_await() tests to stay on its fast path. */
    zk_scope *scope;
    /* The stack's lowest usable byte when it has no guard page, else NULL:
     * the check at each suspension reads it here rather than in the
     * stack's descriptor. */
    const char *unguarded_lo;
    zk__ctx ctx;
    zk__task_base base;
    /* Resumptions since shutdown began (see ZK_SHUTDOWN_POLLS_MAX). */
    uint32_t shutdown_polls;
    /* Taken when the task first runs (a task that has not started holds no
     * stack), given back when its function returns. */
    zk__stack *stack;
    size_t stack_size;
    zk_task_fn fn;
    void *arg;
    const char *name;
#if defined(ZK__TSAN)
    void *tsan_fiber;
#endif
#if defined(ZK__ASAN)
    void *asan_fake_stack;
#endif
} zk__coro;

#if !defined(ZK__CONTEXT_UCONTEXT)
_Static_assert(offsetof(zk__coro, base.core) <= 64,
               "a coroutine's resumption fields and header share a line");
#endif

static inline zk__coro *zk__coro_of(zk__task *t) {
    return (zk__coro *)((char *)t - offsetof(zk__coro, base));
}

static inline const zk__coro *zk__coro_of_const(const zk__task *t) {
    return (const zk__coro *)((const char *)t - offsetof(zk__coro, base));
}

/* ---------------------------------------------------------------------- */
/* Switching                                                              */
/* ---------------------------------------------------------------------- */

/* The sanitizers must be told about every stack switch: AddressSanitizer
 * to track which stack is live, ThreadSanitizer to keep a separate
 * happens-before state per coroutine. These helpers are always inlined:
 * ThreadSanitizer records function entry and exit on the current fiber, so
 * a helper that switches fibers between its own entry and exit would unbalance
 * both fibers' shadow stacks. */
#define ZK__SAN_HELPER static inline __attribute__((always_inline))

ZK__SAN_HELPER void zk__san_enter_coro(zk__worker *w, zk__coro *c) {
#if defined(ZK__ASAN)
    __sanitizer_start_switch_fiber(&w->asan_fake_stack, c->stack->lo,
                                   c->stack->size);
#endif
#if defined(ZK__TSAN)
    __tsan_switch_to_fiber(c->tsan_fiber, 0);
#endif
    (void)w;
    (void)c;
}

ZK__SAN_HELPER void zk__san_back_in_sched(zk__worker *w) {
#if defined(ZK__ASAN)
    __sanitizer_finish_switch_fiber(w->asan_fake_stack, NULL, NULL);
#endif
    (void)w;
}

/* Called on the coroutine's stack when it (re)gains the CPU, possibly on
 * another thread than before. The stack it came from is the scheduler's,
 * remembered to switch back to, unless another coroutine switched
 * straight here (`from_coro`). A function of its own under
 * AddressSanitizer, empty and inlined otherwise. */
#if defined(ZK__ASAN)
#define ZK__SAN_IN_CORO static __attribute__((noinline))
#else
#define ZK__SAN_IN_CORO ZK__SAN_HELPER
#endif
ZK__SAN_IN_CORO void zk__san_in_coro(zk__coro *c, bool first, bool from_coro) {
#if defined(ZK__ASAN)
    zk__worker *w = zk__worker_current();
    if (from_coro)
        __sanitizer_finish_switch_fiber(c->asan_fake_stack, NULL, NULL);
    else
        __sanitizer_finish_switch_fiber(first ? NULL : c->asan_fake_stack,
                                        &w->asan_stack_bottom,
                                        &w->asan_stack_size);
#endif
    (void)c;
    (void)first;
    (void)from_coro;
}

/* From one coroutine straight to another, on the same thread. */
ZK__SAN_HELPER void zk__san_switch_coros(zk__coro *from, zk__coro *to) {
#if defined(ZK__ASAN)
    __sanitizer_start_switch_fiber(&from->asan_fake_stack, to->stack->lo,
                                   to->stack->size);
#endif
#if defined(ZK__TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)from;
    (void)to;
}

ZK__SAN_HELPER void zk__san_leave_coro(zk__worker *w, zk__coro *c, bool dying) {
#if defined(ZK__ASAN)
    __sanitizer_start_switch_fiber(dying ? NULL : &c->asan_fake_stack,
                                   w->asan_stack_bottom, w->asan_stack_size);
#endif
#if defined(ZK__TSAN)
    __tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
    (void)w;
    (void)c;
    (void)dying;
}

/* errno is thread-local: it is saved when a coroutine suspends and put back
 * on whichever thread resumes it. Saving and restoring happen in functions
 * of their own, because __errno_location() is declared const and a
 * compiler may otherwise reuse the previous thread's errno address (for
 * the save too: zk_await's loop inlines the suspend, and the address could
 * be hoisted out of the loop and read on another thread after a
 * migration). */
__attribute__((noinline)) static void zk__errno_restore(int e) {
    errno = e;
}

__attribute__((noinline)) static int zk__errno_save(void) {
    int e = errno;
    __asm__ volatile("" ::: "memory"); /* keep it a real read, here */
    return e;
}

static void zk__coro_entry(void *arg) {
    zk__coro *c = arg;
    zk__san_in_coro(c, true, false);
    int64_t r = c->fn(c->arg);
    zk__task_core_of(&c->base.header)->result = r;
    if (ZK__UNLIKELY(c->scope != NULL)) {
        /* The scopes were on its stack, most likely: they cannot be
         * touched any more. Their task references stay taken (a canceller
         * may still hold one of those scopes), so the task's memory leaks:
         * a bug of the program's that must not go unseen. */
        fprintf(stderr,
                "zokio: task %llu \"%s\" returned inside a cancel scope "
                "(a zk_scope_exit() is missing)\n",
                (unsigned long long)zk__task_id(&c->base.header),
                c->name ? c->name : "");
        c->scope = NULL;
    }
    zk__worker *w = zk__worker_current();
    w->left_outcome = ZK__RUN_READY;
    w->left_below = false; /* its stack is checked whole (zk__coro_poll) */
    zk__san_leave_coro(w, c, true);
    zk__ctx_switch(&c->ctx, &w->sched_ctx);
    ZK__BUG("a finished coroutine was resumed");
}

/* The coroutine to switch to straight from `c`, which is about to wait
 * or yield on worker `w`: the one the scheduler would run next if it is a
 * started coroutine (next_direct), claimed for its run and made the worker's
 * current task. NULL: go back to the scheduler loop. */
static zk__coro *zk__coro_next_direct(zk__coro *c, zk__worker *w) {
    struct zk_runtime *rt = c->base.header.rt;
    if (rt->sched_ops->next_direct == NULL ||
        atomic_load_explicit(&rt->shutting_down, memory_order_relaxed))
        return NULL; /* during shutdown every resumption is counted */
    zk__task *t = rt->sched_ops->next_direct(w);
    if (t == NULL || !zk__task_begin_run(t, w))
        return NULL;
    ZK__COUNT(w->metrics.direct_switches);
    return zk__coro_of(t);
}

static void zk__coro_redzone_failed(zk__coro *c) {
    zk__overflow_report(zk__task_id(&c->base.header), c->name, c->stack->size,
                        "it wrote below its stack (red zone check)");
}

/* Records in `w` that the run of `c` ends with `r`, before `c` switches
 * away (suspended: `r` pending or yielded), and whether its stack pointer
 * is below its stack, when that has no guard page. The run's end is read
 * there (zk__coro_left) by the next coroutine or the scheduler, instead
 * of in `c`'s task block, so that a round trip touches no more of that
 * block than the line its resumption reads. */
static inline __attribute__((always_inline)) void
zk__coro_leave(zk__coro *c, zk__worker *w, zk__run_outcome r) {
    w->left_outcome = (uint8_t)r;
    w->left_below = c->unguarded_lo != NULL &&
                    (const char *)__builtin_frame_address(0) < c->unguarded_lo;
}

/* How the run of `c`, which just switched away on worker `w`, ended. */
static zk__run_outcome zk__coro_left(zk__coro *c, zk__worker *w) {
    if (ZK__UNLIKELY(w->left_below))
        zk__coro_redzone_failed(c);
    return (zk__run_outcome)w->left_outcome;
}

/*
 * Suspends the calling coroutine, running on worker `w`, until its task is
 * polled again; returns the worker it then runs on (maybe another).
 *
 * A suspending coroutine hands its worker straight to the next task when
 * that is a started coroutine: one stack switch instead of two (into the
 * scheduler, out to the next task). What it saves is mostly the return
 * predictions: after a switch every return of the resumed side goes to a
 * call chain the processor did not see, a misprediction each, while two
 * coroutines waiting at the same place (a mutex, a channel, a read) have
 * the same chain. The suspending task's run can end (its state go to idle,
 * where a waker may resume it on another thread, or it be queued again)
 * only once its registers are saved, so the next coroutine ends it, first
 * thing on its own stack.
 */
static inline __attribute__((always_inline)) zk__worker *
zk__coro_suspend(zk__coro *c, zk__worker *w, zk__run_outcome r) {
    int saved_errno = zk__errno_save();
    zk__coro *next = zk__coro_next_direct(c, w);
    zk__coro_leave(c, w, r);
    if (next != NULL) {
        w->handed_from = &c->base.header;
        zk__san_switch_coros(c, next);
        zk__ctx_switch(&c->ctx, &next->ctx);
    } else {
        zk__san_leave_coro(w, c, false);
        zk__ctx_switch(&c->ctx, &w->sched_ctx);
    }
    w = zk__worker_current(); /* maybe another thread's */
    zk__task *from = w->handed_from;
    zk__san_in_coro(c, false, from != NULL);
    if (from != NULL) {
        w->handed_from = NULL;
        zk__task_end_run(from, zk__coro_left(zk__coro_of(from), w));
    }
    zk__errno_restore(saved_errno);
    return w;
}

/* ---------------------------------------------------------------------- */
/* The task vtable                                                        */
/* ---------------------------------------------------------------------- */

/* The stack cache of the worker running `c`, if it is one of its
 * runtime's workers. */
static zk__stack_cache *zk__coro_stack_cache(zk__coro *c) {
    zk__worker *w = zk__worker_current();
    return w != NULL && w->rt == c->base.header.rt ? &w->stacks : NULL;
}

/* Gives the stack back to the pool, or, when the task was `abandoned`
 * suspended in an await, leaks it: its frames are still live, and what
 * they registered may write to them later (zk__stack_abandon). */
static void zk__coro_release_stack(zk__coro *c, bool abandoned) {
    if (c->stack == NULL)
        return;
#if defined(ZK__TSAN)
    __tsan_destroy_fiber(c->tsan_fiber);
    c->tsan_fiber = NULL;
#endif
    if (abandoned)
        zk__stack_abandon(&c->base.header.rt->stacks, c->stack);
    else
        zk__stack_put(&c->base.header.rt->stacks, zk__coro_stack_cache(c),
                      c->stack);
    c->stack = NULL;
}

/* First run: take a stack and prepare the context. False when no stack
 * could be had: the task then ends with -ENOMEM without running. */
static bool zk__coro_start(zk__coro *c) {
    zk__task *t = &c->base.header;
    if (zk__stack_get(&t->rt->stacks, zk__coro_stack_cache(c), c->stack_size,
                      &c->stack) != 0) {
        fprintf(stderr,
                "zokio: task %llu \"%s\" could not start: no memory for its "
                "%zu-byte stack\n",
                (unsigned long long)zk__task_id(t), c->name ? c->name : "",
                c->stack_size);
        zk__task_core_of(t)->result = -ENOMEM;
        return false;
    }
#if defined(ZK__TSAN)
    c->tsan_fiber = __tsan_create_fiber(0);
#endif
    c->unguarded_lo = c->stack->guarded ? NULL : c->stack->lo;
    zk__ctx_make(&c->ctx, c->stack->lo, c->stack->size, zk__coro_entry, c);
    return true;
}

static zk__run_outcome zk__coro_poll(zk__task *t) {
    zk__coro *c = zk__coro_of(t);
    if (ZK__UNLIKELY(atomic_load_explicit(&t->rt->shutting_down,
                                          memory_order_relaxed)) &&
        ++c->shutdown_polls > ZK_SHUTDOWN_POLLS_MAX) {
        fprintf(stderr,
                "zokio: abandoning task %llu \"%s\": it ignored cancellation "
                "for %d resumptions during shutdown\n",
                (unsigned long long)zk__task_id(t), c->name ? c->name : "",
                ZK_SHUTDOWN_POLLS_MAX);
        zk__task_core_of(t)->result = -ECANCELED;
        zk__coro_release_stack(c, true);
        return ZK__RUN_READY;
    }
    if (c->stack == NULL && !zk__coro_start(c))
        return ZK__RUN_READY;
    zk__worker *w = zk__worker_current();
    zk__san_enter_coro(w, c);
    zk__ctx_switch(&w->sched_ctx, &c->ctx);
    zk__san_back_in_sched(w);
    /* The coroutine that came back is the worker's current task: not c
     * when c handed the worker straight to another (zk__coro_suspend). */
    c = zk__coro_of(w->current);
    zk__run_outcome r = zk__coro_left(c, w);
    if (r != ZK__RUN_READY)
        return r;
    if (!zk__stack_redzone_ok(c->stack))
        zk__coro_redzone_failed(c);
    zk__coro_release_stack(c, false);
    return ZK__RUN_READY;
}

static void zk__coro_cancel(zk__task *t) {
    (void)t;
    ZK__BUG("a coroutine task cannot be dropped while it runs");
}

/* The calling worker when its freed task blocks may be recycled
 * (block_cache.h); NULL on other threads, and under AddressSanitizer,
 * whose quarantine catches a late use of a freed task only if the memory
 * really goes back to its allocator. */
static zk__worker *zk__coro_recycler(void) {
#if defined(ZK__ASAN)
    return NULL;
#else
    return zk__worker_current();
#endif
}

/* A coroutine task's memory. */
static zk__coro *zk__coro_alloc(void) {
    zk__worker *w = zk__coro_recycler();
    if (w == NULL)
        return zk__block_new(sizeof(zk__coro));
    return zk__block_get(&w->rt->coro_depot, &w->coro_blocks);
}

/* The task's runtime may be gone by now: the block goes to the calling
 * worker's runtime. */
static void zk__coro_free(zk__coro *c) {
    zk__worker *w = zk__coro_recycler();
    if (w == NULL)
        free(c);
    else
        zk__block_put(&w->rt->coro_depot, &w->coro_blocks, c);
}

size_t zk__coro_block_size(void) {
    return sizeof(zk__coro);
}

void zk__coro_cache_flush(zk__worker *w) {
    zk__block_cache_flush(&w->rt->coro_depot, &w->coro_blocks);
}

static void zk__coro_dealloc(zk__task *t) {
    zk__coro *c = zk__coro_of(t);
    ZK__ASSERT(c->stack == NULL);
    zk__coro_free(c);
}

static const zk__task_vtable zk__coro_vtable = {zk__coro_poll, zk__coro_cancel,
                                                zk__coro_dealloc, true, true};

zk_scope **zk__coro_scope_slot(zk__task *t) {
    return t->vtable == &zk__coro_vtable ? &zk__coro_of(t)->scope : NULL;
}

bool zk__coro_stack_of(const zk__task *t, char **lo, size_t *size,
                       const char **name) {
    if (t->vtable != &zk__coro_vtable)
        return false;
    const zk__coro *c = zk__coro_of_const(t);
    if (c->stack == NULL)
        return false;
    *lo = c->stack->lo;
    *size = c->stack->size;
    *name = c->name;
    return true;
}

int zk__spawn_coro(struct zk_runtime *rt, const zk_spawn_opts *opts,
                   zk_task_fn fn, void *arg, zk__task **out) {
    size_t page = zk__page_size();
    size_t size = opts && opts->stack_size ? opts->stack_size : rt->stack_size;
    if (size < ZK_STACK_MIN || size > ZK_STACK_MAX)
        return -EINVAL;
    size = (size + page - 1) & ~(page - 1);

    zk__coro *c = zk__coro_alloc();
    if (c == NULL)
        return -ENOMEM;
    zk__task_init(&c->base.header, &zk__coro_vtable, rt);
    c->stack = NULL;
    c->stack_size = size;
    c->fn = fn;
    c->arg = arg;
    c->name = opts ? opts->name : NULL;
    c->shutdown_polls = 0;
    c->scope = NULL;
    c->unguarded_lo = NULL;
#if defined(ZK__TSAN)
    c->tsan_fiber = NULL;
#endif
#if defined(ZK__ASAN)
    c->asan_fake_stack = NULL;
#endif
    int rc = zk__runtime_own(rt, &c->base.header);
    if (rc != 0) {
        zk__coro_free(c);
        return rc;
    }
    *out = &c->base.header;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Awaiting                                                               */
/* ---------------------------------------------------------------------- */

/* Suspends the coroutine and puts it behind the other ready tasks;
 * returns the worker it runs on afterwards. */
static zk__worker *zk__coro_yield_now(zk__coro *c, zk__worker *w) {
    return zk__coro_suspend(c, w, ZK__RUN_YIELDED);
}

/* Before an await polls: a task whose budget is spent yields first, so
 * that one busy task cannot hold its worker. Yielding here rather than
 * after the await that spent the last unit means the task gives up the
 * worker before it takes what it awaits: a task looping over a mutex
 * yields between its critical sections, not inside one, where every other
 * task would queue behind the lock it holds and the lock's FIFO hand-off
 * would then keep them in a convoy, one task switch per lock. */
static inline zk__worker *zk__coro_check_budget(zk__coro *c, zk__worker *w) {
    if (ZK__LIKELY(w->budget > 0))
        return w;
    ZK__COUNT(w->metrics.budget_yields);
    return zk__coro_yield_now(c, w);
}

/*
 * zk_await() inside a cancel scope: the loop of zk_await() that also fails
 * with the chain's error (scope.c) before every poll, and waits with a
 * timer on the chain's nearest deadline beside the future, so that an
 * await pending at the deadline is woken then. The timer is polled once,
 * to register it: once it fired, the runtime's clock has reached its
 * deadline (the wheel never fires early and the clock never goes back),
 * so the chain's status says -ETIMEDOUT from then on. Kept out of line so
 * that awaits outside any scope pay one pointer test and no stack for it.
 */
__attribute__((noinline)) static int64_t
zk__await_scoped(zk__coro *c, zk__worker *w, zk_future *f) {
    zk__task *t = &c->base.header;
    zk_waker waker = zk__task_waker_ref(t);
    zk_context cx = {&waker};
    zk_sleep_future timer;
    bool armed = false;
    bool fired = false;
    bool waited = false;
    int64_t out;
    for (;;) {
        if (ZK__UNLIKELY(zk__task_is_cancelled(t))) {
            out = -ECANCELED;
            break;
        }
        zk_instant nearest;
        int st = zk__scope_chain_status(t, c->scope, &nearest);
        if (st == 0 && fired)
            st = -ETIMEDOUT;
        if (st != 0) {
            out = st;
            break;
        }
        if (f->ops->poll(f, &cx, &out) == ZK_READY) {
            if (!waited)
                w->budget--;
            zk_future_drop(f);
            if (armed)
                zk_future_drop(&timer.base);
            return out;
        }
        if (!armed && nearest != ZK_INSTANT_MAX) {
            armed = true;
            zk_sleep_future_init_until(&timer, nearest);
            int64_t slept;
            if (zk_future_poll(&timer.base, &cx, &slept) == ZK_READY) {
                fired = true; /* due already: fail without waiting */
                continue;
            }
        }
        w = zk__coro_suspend(c, w, ZK__RUN_PENDING);
        waited = true;
    }
    w->budget--;
    zk_future_drop(f);
    if (armed)
        zk_future_drop(&timer.base);
    return out;
}

/* The coroutine task that may await `f` and, in *wp, the worker running
 * it; or NULL with *err set: -EINVAL for a future that cannot be polled,
 * -EPERM outside a coroutine task. */
static zk__coro *zk__awaiting_coro(const zk_future *f, zk__worker **wp,
                                   int64_t *err) {
    if (f == NULL || f->ops == NULL || f->ops->poll == NULL) {
        *err = -EINVAL;
        return NULL;
    }
    zk__worker *w = zk__worker_current();
    zk__task *t = w ? w->current : NULL;
    if (t == NULL || !t->vtable->coroutine) {
        *err = -EPERM;
        return NULL;
    }
    *wp = w;
    return zk__coro_of(t);
}

/* Polls `f` until it is ready, parking the task in between; with
 * `cancellable`, an abort of the task ends the wait with -ECANCELED. The
 * future is dropped either way. `w` is the worker running the task, kept
 * up to date across suspensions; the budget is spent before the drop,
 * which may itself suspend (a user's drop can call a blocking-style
 * function). Inlined into both callers, so the flag costs nothing at run
 * time. */
static inline int64_t zk__await_loop(zk__coro *c, zk__worker *w, zk_future *f,
                                     bool cancellable) {
    zk__task *t = &c->base.header;
    zk_waker waker = zk__task_waker_ref(t);
    zk_context cx = {&waker};
    bool waited = false;
    for (;;) {
        int64_t out;
        if (cancellable && ZK__UNLIKELY(zk__task_is_cancelled(t))) {
            w->budget--;
            zk_future_drop(f);
            return -ECANCELED;
        }
        if (f->ops->poll(f, &cx, &out) == ZK_READY) {
            if (!waited)
                w->budget--;
            zk_future_drop(f);
            return out;
        }
        w = zk__coro_suspend(c, w, ZK__RUN_PENDING);
        waited = true;
    }
}

/* zk_await() once the awaiting coroutine and its worker are known. */
static inline int64_t zk__await_in(zk__coro *c, zk__worker *w, zk_future *f) {
    w = zk__coro_check_budget(c, w);
    if (ZK__UNLIKELY(c->scope != NULL))
        return zk__await_scoped(c, w, f);
    return zk__await_loop(c, w, f, true);
}

/* zk_await(), inlined into both its forms: zk__await_made's caller must
 * keep one frame. */
static inline __attribute__((always_inline)) int64_t
zk__await_here(zk_future *f) {
    int64_t err;
    zk__worker *w;
    zk__coro *c = zk__awaiting_coro(f, &w, &err);
    if (c == NULL)
        return err;
    return zk__await_in(c, w, f);
}

int64_t zk_await(zk_future *f) {
    return zk__await_here(f);
}

int64_t zk__await_made(zk__future_maker make, void *a, const void *b,
                       size_t n) {
    _Alignas(64) zk_io_future storage; /* see op.h */
    return zk__await_here(make(&storage, a, b, n));
}

bool zk__await_if_coroutine(zk_future *f, int64_t *out) {
    zk__worker *w = zk__worker_current();
    zk__task *t = w ? w->current : NULL;
    if (t == NULL || !t->vtable->coroutine)
        return false;
    *out = zk__await_in(zk__coro_of(t), w, f);
    return true;
}

/* The loop of zk_await() without its checks of the task's abort and of
 * its cancel scopes (see coro.h). */
int64_t zk__await_shielded(zk_future *f) {
    int64_t err;
    zk__worker *w;
    zk__coro *c = zk__awaiting_coro(f, &w, &err);
    if (c == NULL)
        return err;
    w = zk__coro_check_budget(c, w);
    return zk__await_loop(c, w, f, false);
}

static zk_poll zk__yield_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_yield_future *y = (zk_yield_future *)f;
    if (!y->yielded) {
        y->yielded = true;
        zk_waker_wake_by_ref(zk_context_waker(cx));
        return ZK_PENDING;
    }
    *out = 0;
    return ZK_READY;
}

static const zk_future_ops zk__yield_ops = {zk__yield_poll, NULL};

void zk_yield_future_init(zk_yield_future *f) {
    if (f) {
        f->base.ops = &zk__yield_ops;
        f->yielded = false;
    }
}

/* What zk_yield() fails with, as an await would: the task's abort, then
 * its scopes' cancellation or deadline. */
static int zk__coro_yield_status(zk__coro *c) {
    zk__task *t = &c->base.header;
    if (ZK__UNLIKELY(zk__task_is_cancelled(t)))
        return -ECANCELED;
    if (ZK__LIKELY(c->scope == NULL))
        return 0;
    zk_instant nearest;
    return zk__scope_chain_status(t, c->scope, &nearest);
}

/* The same contract as awaiting a zk_yield_future, without the wake: the
 * harness requeues a yielding coroutine directly. */
int zk_yield(void) {
    zk__worker *w = zk__worker_current();
    zk__task *t = w ? w->current : NULL;
    if (t == NULL || !t->vtable->coroutine)
        return -EPERM;
    zk__coro *c = zk__coro_of(t);
    int rc = zk__coro_yield_status(c);
    if (ZK__UNLIKELY(rc != 0)) {
        w->budget--;
        zk__coro_check_budget(c, w);
        return rc;
    }
    zk__coro_yield_now(c, w);
    return zk__coro_yield_status(c);
}
