/*
 * task.c - the task harness (run, complete, cancel), task wakers and join
 * handles. Kind-specific parts live in coro.c and future_task.c.
 */
#include <errno.h>
#include <string.h>

#include "runtime.h"
#include "task_state.h"
#include "waiter.h"
#include "worker.h"

static _Atomic uint64_t zk__next_task_id = 1;

void zk__task_init(zk__task *t, const zk__task_vtable *vt,
                   struct zk_runtime *rt) {
    atomic_init(&t->state, ZK__STATE_INITIAL);
    t->vtable = vt;
    t->queue_next = NULL;
    t->has_run = false;
    t->rt = rt;
    memset(zk__task_core_of(t), 0, sizeof(zk__task_core));
    zk__task_core_of(t)->id =
        atomic_fetch_add_explicit(&zk__next_task_id, 1, memory_order_relaxed);
}

static void zk__task_dealloc(zk__task *t) {
    t->vtable->dealloc(t);
}

void zk__task_drop_ref(zk__task *t) {
    if (zk__ref_dec_n(t, 1))
        zk__task_dealloc(t);
}

bool zk__task_is_complete(const zk__task *t) {
    return (zk__state_load(t) & ZK__COMPLETE) != 0;
}

/* ---------------------------------------------------------------------- */
/* Running                                                                */
/* ---------------------------------------------------------------------- */

/* The body finished (result stored, body released): leave the live list,
 * publish COMPLETE, wake the joiner and drop the running reference. The
 * live list goes first so that whoever sees the task complete also sees
 * it gone from zk_runtime_live_tasks(). */
static void zk__task_complete(zk__task *t) {
    zk__worker *w = zk__worker_current();
    if (w != NULL)
        ZK__COUNT(w->metrics.tasks_completed);
    bool owned = t->vtable->owned;
    if (owned)
        zk__runtime_release(t->rt, t);
    zk__task_core *core = zk__task_core_of(t);
    uint64_t s = zk__transition_to_complete(t);
    if ((s & ZK__JOIN_INTEREST) && (s & ZK__JOIN_WAKER)) {
        zk_waker_wake_by_ref(&core->join_waker);
        s = zk__unset_waker_after_complete(t);
        if (!(s & ZK__JOIN_INTEREST))
            zk_waker_drop(&core->join_waker);
    }
    /* The running reference and the live list's. */
    if (zk__ref_dec_n(t, owned ? 2 : 1))
        zk__task_dealloc(t);
}

static void zk__task_cancel_and_complete(zk__task *t) {
    t->vtable->cancel(t);
    zk__task_complete(t);
}

bool zk__task_begin_run(zk__task *t, zk__worker *w) {
    switch (zk__transition_to_running(t)) {
    case ZK__RUN_FAILED:
        return false;
    case ZK__RUN_DEALLOC:
        zk__task_dealloc(t);
        return false;
    case ZK__RUN_CANCELLED:
        if (!t->vtable->coroutine) {
            zk__task_cancel_and_complete(t);
            return false;
        }
        /* A coroutine runs on and sees -ECANCELED from its awaits. */
        break;
    case ZK__RUN_SUCCESS:
        break;
    }
    t->has_run = true;
    if (w != NULL) {
        w->current = t;
        w->budget = ZK__BUDGET;
        ZK__COUNT(w->metrics.polls);
    }
    return true;
}

void zk__task_end_run(zk__task *t, zk__run_outcome r) {
    struct zk_runtime *rt = t->rt;
    if (r == ZK__RUN_READY) {
        zk__task_complete(t);
        return;
    }
    if (r == ZK__RUN_YIELDED) {
        zk__transition_yield(t);
        rt->sched_ops->schedule(rt, t, true);
        return;
    }

    switch (zk__transition_to_idle(t, !t->vtable->coroutine)) {
    case ZK__IDLE_OK:
        return;
    case ZK__IDLE_OK_DEALLOC:
        zk__task_dealloc(t);
        return;
    case ZK__IDLE_OK_NOTIFIED:
        rt->sched_ops->schedule(rt, t, true);
        zk__task_drop_ref(t);
        return;
    case ZK__IDLE_CANCELLED:
        zk__task_cancel_and_complete(t);
        return;
    }
}

void zk__task_run(zk__task *t) {
    zk__worker *w = zk__worker_current();
    if (!zk__task_begin_run(t, w))
        return;
    zk__run_outcome r = t->vtable->poll(t);
    if (w != NULL) {
        /* The task that comes back is the worker's current one: a
         * coroutine may have handed the worker straight to another
         * (coro.c), which is then the one that suspended or finished. */
        t = w->current;
        w->current = NULL;
    }
    zk__task_end_run(t, r);
}

bool zk__task_cancel(zk__task *t) {
    bool finished;
    if (zk__transition_to_cancelled(t, &finished) == ZK__NOTIFY_SUBMIT)
        t->rt->sched_ops->schedule(t->rt, t, false);
    return !finished;
}

/* ---------------------------------------------------------------------- */
/* Task wakers                                                            */
/* ---------------------------------------------------------------------- */

void zk__task_wake_by_ref(zk__task *t) {
    if (zk__transition_to_notified_by_ref(t) == ZK__NOTIFY_SUBMIT)
        t->rt->sched_ops->schedule(t->rt, t, false);
}

void zk__task_wake_by_val(zk__task *t) {
    switch (zk__transition_to_notified_by_val(t)) {
    case ZK__NOTIFY_SUBMIT:
        t->rt->sched_ops->schedule(t->rt, t, false);
        break;
    case ZK__NOTIFY_DEALLOC:
        zk__task_dealloc(t);
        break;
    case ZK__NOTIFY_NOTHING:
        break;
    }
}

static zk_waker zk__task_waker_clone(const void *data);
static void zk__task_waker_wake(const void *data) {
    zk__task_wake_by_val((zk__task *)data);
}
static void zk__task_waker_wake_by_ref(const void *data) {
    zk__task_wake_by_ref((zk__task *)data);
}
static void zk__task_waker_drop(const void *data) {
    zk__task_drop_ref((zk__task *)data);
}

static const zk_waker_ops zk__task_waker_ops = {
    zk__task_waker_clone, zk__task_waker_wake, zk__task_waker_wake_by_ref,
    zk__task_waker_drop};

static zk_waker zk__task_waker_clone(const void *data) {
    zk__ref_inc((zk__task *)data);
    return (zk_waker){&zk__task_waker_ops, data};
}

zk_waker zk__task_waker_ref(zk__task *t) {
    return (zk_waker){&zk__task_waker_ops, t};
}

/* ---------------------------------------------------------------------- */
/* Join handles                                                           */
/* ---------------------------------------------------------------------- */

/* Returns true when the task completed; otherwise makes sure `w` will be
 * woken when it does. Only the join handle's owner calls this. */
static bool zk__join_poll(zk__task *t, const zk_waker *w) {
    zk__task_core *core = zk__task_core_of(t);
    uint64_t s = zk__state_load(t);
    if (s & ZK__COMPLETE)
        return true;
    if (s & ZK__JOIN_WAKER) {
        if (zk_waker_will_wake(&core->join_waker, w))
            return false;
        /* Take the field back to replace the waker. */
        if (!zk__unset_join_waker(t))
            return true;
        zk_waker_drop(&core->join_waker);
    }
    core->join_waker = zk_waker_clone(w);
    if (zk__set_join_waker(t))
        return false;
    zk_waker_drop(&core->join_waker);
    return true;
}

static void zk__join_handle_drop(zk__task *t) {
    uint64_t s = zk__transition_join_dropped(t);
    if (!(s & ZK__JOIN_WAKER))
        zk_waker_drop(&zk__task_core_of(t)->join_waker);
    zk__task_drop_ref(t);
}

bool zk__task_join_poll(zk__task *t, const zk_waker *w) {
    return zk__join_poll(t, w);
}

void zk__task_join_take(zk__task *t, int64_t *result, bool *cancelled) {
    uint64_t s = zk__state_load(t);
    ZK__ASSERT(s & ZK__COMPLETE);
    *result = zk__task_core_of(t)->result;
    *cancelled = (s & ZK__CANCELLED) != 0;
    zk__join_handle_drop(t);
}

void zk__task_join_blocking(zk__task *t, int64_t *result, bool *cancelled) {
    zk__thread_waiter *tw = zk__thread_waiter_current();
    ZK__ASSERT(tw != NULL);
    zk_waker wk = zk__thread_waiter_waker(tw);
    while (!zk__join_poll(t, &wk))
        zk__parker_park(&tw->parker);
    zk__task_join_take(t, result, cancelled);
}

typedef struct zk__join_future {
    zk_future base;
    zk__task *task;
} zk__join_future;

static zk_poll zk__join_future_poll(zk_future *f, zk_context *cx,
                                    int64_t *out) {
    zk__join_future *j = (zk__join_future *)f;
    if (!zk__join_poll(j->task, zk_context_waker(cx)))
        return ZK_PENDING;
    *out = 0;
    return ZK_READY;
}

static const zk_future_ops zk__join_future_ops = {zk__join_future_poll, NULL};

/* A plain thread about to sleep until a task completes first watches it
 * for a few microseconds: short tasks then cost no futex sleep and wake-up
 * (a bounded spin before a park, never a way of waiting). */
#define ZK__JOIN_SPIN 2000

static bool zk__join_spin(zk__task *t) {
    for (int i = 0; i < ZK__JOIN_SPIN; i++) {
        if (zk__task_is_complete(t))
            return true;
        zk__cpu_relax();
    }
    return false;
}

int zk_task_join(zk_task **handle, int64_t *result) {
    if (handle == NULL || *handle == NULL)
        return -EINVAL;
    zk__task *t = (zk__task *)*handle;
    zk__worker *w = zk__worker_current();
    zk__task *self = w ? w->current : NULL;
    if (self == t)
        return -EDEADLK;
    if (self != NULL) {
        if (!self->vtable->coroutine)
            return -EPERM;
        zk__join_future jf = {{&zk__join_future_ops}, t};
        int64_t r = zk_await(&jf.base);
        if (r < 0 && !zk__task_is_complete(t))
            return (int)r; /* the joiner itself was cancelled */
    } else if (!zk__task_is_complete(t) && !zk__join_spin(t)) {
        zk__thread_waiter *tw = zk__thread_waiter_current();
        if (tw == NULL)
            return -ENOMEM;
        zk_waker wk = zk__thread_waiter_waker(tw);
        while (!zk__join_poll(t, &wk))
            zk__parker_park(&tw->parker);
    }
    uint64_t s = zk__state_load(t);
    ZK__ASSERT(s & ZK__COMPLETE);
    if (result)
        *result = zk__task_core_of(t)->result;
    *handle = NULL;
    zk__join_handle_drop(t);
    return (s & ZK__CANCELLED) ? -ECANCELED : 0;
}

int zk_task_detach(zk_task **handle) {
    if (handle == NULL || *handle == NULL)
        return -EINVAL;
    zk__task *t = (zk__task *)*handle;
    *handle = NULL;
    zk__join_handle_drop(t);
    return 0;
}

int zk_task_abort(zk_task *task) {
    if (task == NULL)
        return -EINVAL;
    return zk__task_cancel((zk__task *)task) ? 0 : -EALREADY;
}

bool zk_task_is_finished(const zk_task *task) {
    return task != NULL && zk__task_is_complete((const zk__task *)task);
}

uint64_t zk_task_id(const zk_task *task) {
    return task ? zk__task_id((const zk__task *)task) : 0;
}

/* ---------------------------------------------------------------------- */
/* The current task                                                       */
/* ---------------------------------------------------------------------- */

static zk__task *zk__current_task(void) {
    zk__worker *w = zk__worker_current();
    return w ? w->current : NULL;
}

uint64_t zk_task_current_id(void) {
    zk__task *t = zk__current_task();
    return t ? zk__task_id(t) : 0;
}

bool zk_in_task(void) {
    return zk__current_task() != NULL;
}

bool zk_in_coroutine(void) {
    zk__task *t = zk__current_task();
    return t != NULL && t->vtable->coroutine;
}

bool zk_task_cancelled(void) {
    zk__task *t = zk__current_task();
    return t != NULL && zk__task_is_cancelled(t);
}
