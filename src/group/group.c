/*
 * group.c - task groups: members spawned into a group, joined in the order
 * they finish, cancelled together, waited for when the group is freed.
 *
 * How completion is tracked, in O(1) per member and without polling them:
 * the group keeps each member's join handle and registers, as that
 * handle's join waker, a waker whose data is the member's record
 * (zk__member). A task wakes its join waker exactly once, when it
 * completes, however it ends (its function returned, it never got a stack,
 * shutdown abandoned it): a wrapper around the member's function would
 * miss the last two. The wake moves the record, under the group's lock,
 * from the running list to the first waiting join (a hand-off, FIFO) or,
 * when no join waits, to the back of the finished list, and wakes that
 * join after unlocking.
 *
 * Records are reference counted: the group holds one until the member is
 * joined, each clone of the waker one. The completing task may drop its
 * join waker after the member was joined, even after the group was freed;
 * the wake itself always comes before (the group cannot be freed while a
 * member is in its running list), and touches the group only under the
 * lock.
 *
 * Lock order: the group's lock, then the runtime's (spawn, abort and
 * waking under the group's lock only queue tasks). No runtime lock is held
 * when a task completes, so a member's wake can take the group's lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "runtime/coro.h"
#include "runtime/task.h"
#include "runtime/waiter.h"
#include "sync/waitq.h"
#include "zokio/group.h"

/* Where a member is; changes only under the group's lock. */
enum {
    ZK__M_RUNNING,  /* in `running`, its task not complete (or its wake not
                       processed yet) */
    ZK__M_FINISHED, /* in `finished`, waiting for a join */
    ZK__M_HANDED,   /* handed to a DONE join future (its _member) */
    ZK__M_JOINED    /* taken by a join; out of the group */
};

/* How a DONE join node was released. */
#define ZK__JOIN_GOT   1u /* handed a member (the future's _member) */
#define ZK__JOIN_EMPTY 2u /* the group became empty */
#define ZK__JOIN_SELF  3u /* its task became the only running member */

/* The most members one poll of a join-all future joins before it lets
 * other tasks run (a cooperative budget of its own). */
#define ZK__JOIN_ALL_BATCH 128

typedef struct zk__member {
    /* Links in `running` or `finished` (the group's lock). */
    struct zk__member *prev, *next;
    /* The join handle, owned by the group until the member is joined. */
    zk__task *task;
    /* Read by the wake, which comes while the member is RUNNING, so the
     * group still exists. */
    zk_group *group;
    uint64_t id;
    /* The group's reference (until joined) and one per waker clone. */
    _Atomic uint32_t refs;
    uint32_t where;
} zk__member;

typedef struct zk__mlist {
    zk__member *head, *tail;
    size_t n;
} zk__mlist;

struct zk_group {
    zk__lock lock;
    /* Members whose completion was not seen yet. */
    zk__mlist running;
    /* Finished members nobody joined yet, in completion order.
     * Invariant: while `joiners` is not empty, `finished` is. */
    zk__mlist finished;
    /* Members handed to join futures that did not see them yet. */
    size_t handed;
    /* running.n + finished.n + handed, written under the lock, read
     * without it by zk_group_len(). */
    size_t len;
    /* Spawns are refused (close or cancel). */
    bool closed;
    /* zk_group_cancel() ran: every member was aborted. */
    bool cancelled;
    /* join_next futures waiting for a member. */
    zk__waitq joiners;
    /* zk_group_free() waiting for `running` to empty. */
    zk__waitq drainers;
};

/* ---------------------------------------------------------------------- */
/* Member lists                                                           */
/* ---------------------------------------------------------------------- */

static void zk__mlist_push_back(zk__mlist *l, zk__member *m) {
    m->next = NULL;
    m->prev = l->tail;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
    l->n++;
}

static void zk__mlist_push_front(zk__mlist *l, zk__member *m) {
    m->prev = NULL;
    m->next = l->head;
    if (l->head)
        l->head->prev = m;
    else
        l->tail = m;
    l->head = m;
    l->n++;
}

static void zk__mlist_remove(zk__mlist *l, zk__member *m) {
    if (m->prev)
        m->prev->next = m->next;
    else
        l->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        l->tail = m->prev;
    m->prev = m->next = NULL;
    l->n--;
}

static zk__member *zk__mlist_pop_front(zk__mlist *l) {
    zk__member *m = l->head;
    if (m)
        zk__mlist_remove(l, m);
    return m;
}

/* ---------------------------------------------------------------------- */
/* Under the group's lock                                                 */
/* ---------------------------------------------------------------------- */

static void zk__group_update_len(zk_group *g) {
    __atomic_store_n(&g->len, g->running.n + g->finished.n + g->handed,
                     __ATOMIC_RELAXED);
}

/* Gives a finished member to the first waiting join, or keeps it: at the
 * back (completion order) or, when a join gives it back, at the front. */
static void zk__group_deliver(zk_group *g, zk__member *m, bool front,
                              zk__wakelist *wl) {
    zk_wait_node *n = zk__waitq_pop(&g->joiners);
    if (n == NULL) {
        m->where = ZK__M_FINISHED;
        if (front)
            zk__mlist_push_front(&g->finished, m);
        else
            zk__mlist_push_back(&g->finished, m);
        return;
    }
    zk_group_join_future *f = ZK__CONTAINER_OF(n, zk_group_join_future, _node);
    f->_member = m;
    m->where = ZK__M_HANDED;
    g->handed++;
    n->_flags = ZK__JOIN_GOT;
    zk__node_set_state(n, ZK__W_DONE);
    zk__wakelist_push(wl, zk__node_take_waker(n));
}

/* A waiting join whose task is now the group's only running member, with
 * nothing finished or handed to another join, would wait for itself: it
 * is released with -EDEADLK, as its first poll would have been. (A join
 * keeps its task's id in its node's `_want`.) */
static void zk__group_release_self_joins(zk_group *g, zk__wakelist *wl) {
    if (g->running.n != 1 || g->handed != 0 || g->finished.n != 0)
        return;
    uint64_t self = g->running.head->id;
    zk_wait_node *n = g->joiners.head;
    while (n != NULL) {
        zk_wait_node *next = n->_next;
        if (n->_want == self) {
            zk__waitq_remove(&g->joiners, n);
            n->_flags = ZK__JOIN_SELF;
            zk__node_set_state(n, ZK__W_DONE);
            zk__wakelist_push(wl, zk__node_take_waker(n));
        }
        n = next;
    }
}

/* A member was taken by a join. When none is left, every waiting join
 * learns that the group is empty; when only one runs, a join by that
 * member itself learns that it would wait for itself. */
static void zk__group_took(zk_group *g, zk__member *m, zk__wakelist *wl) {
    m->where = ZK__M_JOINED;
    zk__group_update_len(g);
    if (g->len == 0)
        zk__waitq_release_all(&g->joiners, ZK__JOIN_EMPTY, wl);
    else
        zk__group_release_self_joins(g, wl);
}

/* ---------------------------------------------------------------------- */
/* Members                                                                */
/* ---------------------------------------------------------------------- */

static void zk__member_unref(zk__member *m) {
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

/* The member's task completed: its record leaves the running list. */
static void zk__member_finished(zk__member *m) {
    zk_group *g = m->group;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&g->lock);
    if (m->where == ZK__M_RUNNING) {
        zk__mlist_remove(&g->running, m);
        zk__group_deliver(g, m, false, &wl);
        if (g->running.n == 0)
            zk__waitq_release_all(&g->drainers, 0, &wl);
    }
    zk__lock_release(&g->lock);
    zk__wakelist_wake(&wl);
}

/* Reads a joined member's outcome and releases it (and its task). */
static int zk__member_join(zk__member *m, int64_t *result, uint64_t *id) {
    int64_t r;
    bool cancelled;
    zk__task_join_take(m->task, &r, &cancelled);
    if (result)
        *result = r;
    if (id)
        *id = m->id;
    zk__member_unref(m);
    return cancelled ? -ECANCELED : 0;
}

static zk_waker zk__member_waker_clone(const void *data);
static void zk__member_waker_wake_by_ref(const void *data) {
    zk__member_finished((zk__member *)data);
}
static void zk__member_waker_wake(const void *data) {
    zk__member_finished((zk__member *)data);
    zk__member_unref((zk__member *)data);
}
static void zk__member_waker_drop(const void *data) {
    zk__member_unref((zk__member *)data);
}

static const zk_waker_ops zk__member_waker_ops = {
    zk__member_waker_clone, zk__member_waker_wake, zk__member_waker_wake_by_ref,
    zk__member_waker_drop};

static zk_waker zk__member_waker_clone(const void *data) {
    atomic_fetch_add_explicit(&((zk__member *)data)->refs, 1,
                              memory_order_relaxed);
    return (zk_waker){&zk__member_waker_ops, data};
}

/* ---------------------------------------------------------------------- */
/* The group                                                              */
/* ---------------------------------------------------------------------- */

int zk_group_new(zk_group **out) {
    if (out == NULL)
        return -EINVAL;
    zk_group *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    zk__lock_init(&g->lock);
    zk__waitq_init(&g->joiners);
    zk__waitq_init(&g->drainers);
    *out = g;
    return 0;
}

/* What to spawn: a coroutine (fn) or a future task (fut). */
typedef struct zk__spawn_req {
    zk_task_fn fn;
    void *arg;
    const zk_spawn_opts *opts;
    const zk_future *fut;
    size_t size;
} zk__spawn_req;

static int zk__group_spawn(zk_group *g, const zk__spawn_req *q, uint64_t *id) {
    zk__member *m = malloc(sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    m->prev = m->next = NULL;
    m->group = g;
    atomic_init(&m->refs, 1);
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    /* The spawn happens under the lock so that it is ordered with a close
     * or cancel: a spawn either fails or its member is reached by a cancel
     * that follows. */
    zk__lock_acquire(&g->lock);
    if (g->closed) {
        zk__lock_release(&g->lock);
        free(m);
        return -EPIPE;
    }
    zk_task *h;
    int rc = q->fut ? zk_spawn_future(NULL, q->fut, q->size, &h)
                    : zk_spawn_ex(NULL, q->opts, q->fn, q->arg, &h);
    if (rc != 0) {
        zk__lock_release(&g->lock);
        free(m);
        return rc;
    }
    m->task = (zk__task *)h;
    m->id = zk_task_id(h);
    uint64_t mid = m->id;
    /* Registers the member's waker as the join waker (a clone is kept);
     * true when the task completed already, on another worker. Its wake,
     * if it comes now, waits for the lock and finds the member RUNNING. */
    zk_waker w = {&zk__member_waker_ops, m};
    if (zk__task_join_poll(m->task, &w)) {
        zk__group_deliver(g, m, false, &wl);
    } else {
        m->where = ZK__M_RUNNING;
        zk__mlist_push_back(&g->running, m);
    }
    zk__group_update_len(g);
    zk__lock_release(&g->lock);
    zk__wakelist_wake(&wl);
    if (id)
        *id = mid;
    return 0;
}

int zk_group_spawn(zk_group *g, zk_task_fn fn, void *arg,
                   const zk_spawn_opts *opts, uint64_t *id) {
    if (g == NULL || fn == NULL)
        return -EINVAL;
    zk__spawn_req q = {fn, arg, opts, NULL, 0};
    return zk__group_spawn(g, &q, id);
}

int zk_group_spawn_future(zk_group *g, const zk_future *fut, size_t size,
                          uint64_t *id) {
    if (g == NULL || fut == NULL)
        return -EINVAL;
    zk__spawn_req q = {NULL, NULL, NULL, fut, size};
    return zk__group_spawn(g, &q, id);
}

int zk_group_cancel(zk_group *g) {
    if (g == NULL)
        return -EINVAL;
    zk__lock_acquire(&g->lock);
    g->closed = true;
    if (!g->cancelled) {
        /* Once cancelled, no member can be added: one pass reaches all. */
        g->cancelled = true;
        for (zk__member *m = g->running.head; m; m = m->next)
            zk__task_cancel(m->task);
    }
    zk__lock_release(&g->lock);
    return 0;
}

int zk_group_close(zk_group *g) {
    if (g == NULL)
        return -EINVAL;
    zk__lock_acquire(&g->lock);
    g->closed = true;
    zk__lock_release(&g->lock);
    return 0;
}

size_t zk_group_len(const zk_group *g) {
    return g ? __atomic_load_n(&g->len, __ATOMIC_RELAXED) : 0;
}

/* ---------------------------------------------------------------------- */
/* join_next                                                              */
/* ---------------------------------------------------------------------- */

static zk_poll zk__join_next_poll(zk_future *fut, zk_context *cx,
                                  int64_t *out) {
    zk_group_join_future *f = (zk_group_join_future *)fut;
    zk_group *g = f->_group;
    zk_wait_node *n = &f->_node;
    if (g == NULL) {
        *out = -EINVAL;
        return ZK_READY;
    }
    zk__member *m = NULL;
    int rc = 0;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&g->lock);
    switch (zk__node_state(n)) {
    case ZK__W_IDLE:
        /* No join waits while members are finished (the invariant), so
         * taking one here overtakes nobody. */
        if ((m = zk__mlist_pop_front(&g->finished)) != NULL)
            break;
        if (g->running.n == 0 && g->handed == 0) {
            rc = -ECHILD;
            break;
        }
        if (g->running.n == 1 && g->handed == 0 &&
            g->running.head->id == zk_task_current_id()) {
            rc = -EDEADLK; /* it would wait for itself */
            break;
        }
        n->_want = zk_task_current_id();
        zk__waitq_push(&g->joiners, n);
        /* fall through */
    case ZK__W_QUEUED:
        zk__node_set_waker(n, cx);
        zk__lock_release(&g->lock);
        return ZK_PENDING;
    case ZK__W_DONE:
        if (n->_flags == ZK__JOIN_GOT) {
            m = f->_member;
            f->_member = NULL;
            g->handed--;
        } else {
            rc = n->_flags == ZK__JOIN_SELF ? -EDEADLK : -ECHILD;
        }
        break;
    default:
        rc = -EINVAL; /* polled again after it was ready */
        break;
    }
    zk__node_set_state(n, ZK__W_CONSUMED);
    if (m != NULL)
        zk__group_took(g, m, &wl);
    zk__lock_release(&g->lock);
    zk__wakelist_wake(&wl);
    if (m != NULL)
        rc = zk__member_join(m, f->_result, f->_id);
    *out = rc;
    return ZK_READY;
}

static void zk__join_next_drop(zk_future *fut) {
    zk_group_join_future *f = (zk_group_join_future *)fut;
    zk_group *g = f->_group;
    zk_wait_node *n = &f->_node;
    uint32_t st = zk__node_state(n);
    if (g == NULL || st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&g->lock);
    st = zk__node_state(n);
    if (st == ZK__W_QUEUED) {
        zk__waitq_remove(&g->joiners, n);
    } else if (st == ZK__W_DONE && n->_flags == ZK__JOIN_GOT) {
        /* Handed a member it never saw: it goes to the next join. */
        zk__member *m = f->_member;
        f->_member = NULL;
        g->handed--;
        zk__group_deliver(g, m, true, &wl);
    }
    zk__node_set_state(n, ZK__W_CONSUMED);
    zk_waker_drop(&n->_waker);
    zk__lock_release(&g->lock);
    zk__wakelist_wake(&wl);
}

static const zk_future_ops zk__join_next_ops = {zk__join_next_poll,
                                                zk__join_next_drop};

void zk_group_join_next_future_init(zk_group_join_future *f, zk_group *g,
                                    int64_t *result, uint64_t *id) {
    if (f == NULL)
        return;
    f->base.ops = &zk__join_next_ops;
    f->_group = g;
    f->_member = NULL;
    f->_result = result;
    f->_id = id;
    zk__node_init(&f->_node);
}

static int zk__join_next_wait(zk_group *g, int64_t *result, uint64_t *id,
                              bool has_deadline, zk_instant deadline) {
    if (id)
        *id = 0;
    if (g == NULL)
        return -EINVAL;
    zk_group_join_future f;
    zk_group_join_next_future_init(&f, g, result, id);
    return (int)zk__wait(&f.base, has_deadline, deadline);
}

int zk_group_join_next(zk_group *g, int64_t *result, uint64_t *id) {
    return zk__join_next_wait(g, result, id, false, 0);
}

int zk_group_join_next_until(zk_group *g, int64_t *result, uint64_t *id,
                             zk_instant deadline) {
    return zk__join_next_wait(g, result, id, true, deadline);
}

int zk_group_try_join_next(zk_group *g, int64_t *result, uint64_t *id) {
    if (id)
        *id = 0;
    if (g == NULL)
        return -EINVAL;
    zk__wakelist wl;
    zk__wakelist_init(&wl);
    zk__lock_acquire(&g->lock);
    zk__member *m = zk__mlist_pop_front(&g->finished);
    bool empty = g->len == 0;
    if (m != NULL)
        zk__group_took(g, m, &wl);
    zk__lock_release(&g->lock);
    zk__wakelist_wake(&wl);
    if (m == NULL)
        return empty ? -ECHILD : -EAGAIN;
    return zk__member_join(m, result, id);
}

/* ---------------------------------------------------------------------- */
/* join_all                                                               */
/* ---------------------------------------------------------------------- */

static zk_poll zk__join_all_poll(zk_future *fut, zk_context *cx, int64_t *out) {
    zk_group_join_all_future *f = (zk_group_join_all_future *)fut;
    for (int i = 0; i < ZK__JOIN_ALL_BATCH; i++) {
        int64_t r;
        if (zk__join_next_poll(&f->_next.base, cx, &r) == ZK_PENDING)
            return ZK_PENDING;
        if (r != 0 && r != -ECANCELED) {
            *out = r == -ECHILD ? f->_count : r;
            return ZK_READY;
        }
        f->_count++;
        zk_group_join_next_future_init(&f->_next, f->_next._group, NULL, NULL);
    }
    /* Many members were ready: let other tasks run, then go on. */
    zk_waker_wake_by_ref(zk_context_waker(cx));
    return ZK_PENDING;
}

static void zk__join_all_drop(zk_future *fut) {
    zk__join_next_drop(&((zk_group_join_all_future *)fut)->_next.base);
}

static const zk_future_ops zk__join_all_ops = {zk__join_all_poll,
                                               zk__join_all_drop};

void zk_group_join_all_future_init(zk_group_join_all_future *f, zk_group *g) {
    if (f == NULL)
        return;
    f->base.ops = &zk__join_all_ops;
    f->_count = 0;
    zk_group_join_next_future_init(&f->_next, g, NULL, NULL);
}

int64_t zk_group_join_all(zk_group *g) {
    if (g == NULL)
        return -EINVAL;
    zk_group_join_all_future f;
    zk_group_join_all_future_init(&f, g);
    return zk__wait(&f.base, false, 0);
}

int64_t zk_group_join_all_until(zk_group *g, zk_instant deadline) {
    if (g == NULL)
        return -EINVAL;
    zk_group_join_all_future f;
    zk_group_join_all_future_init(&f, g);
    return zk__wait(&f.base, true, deadline);
}

/* ---------------------------------------------------------------------- */
/* free                                                                   */
/* ---------------------------------------------------------------------- */

/* Ready once no member runs (zk_group_free() only). */
typedef struct zk__drain_future {
    zk_future base;
    zk_group *group;
    zk_wait_node node;
} zk__drain_future;

static zk_poll zk__drain_poll(zk_future *fut, zk_context *cx, int64_t *out) {
    zk__drain_future *f = (zk__drain_future *)fut;
    zk_group *g = f->group;
    zk__lock_acquire(&g->lock);
    uint32_t st = zk__node_state(&f->node);
    if (st != ZK__W_DONE && g->running.n > 0) {
        if (st == ZK__W_IDLE)
            zk__waitq_push(&g->drainers, &f->node);
        zk__node_set_waker(&f->node, cx);
        zk__lock_release(&g->lock);
        return ZK_PENDING;
    }
    if (st == ZK__W_QUEUED)
        zk__waitq_remove(&g->drainers, &f->node);
    zk__node_set_state(&f->node, ZK__W_CONSUMED);
    zk_waker_drop(&f->node._waker);
    zk__lock_release(&g->lock);
    *out = 0;
    return ZK_READY;
}

static void zk__drain_drop(zk_future *fut) {
    zk__drain_future *f = (zk__drain_future *)fut;
    zk_group *g = f->group;
    uint32_t st = zk__node_state(&f->node);
    if (st == ZK__W_IDLE || st == ZK__W_CONSUMED)
        return;
    zk__lock_acquire(&g->lock);
    if (zk__node_state(&f->node) == ZK__W_QUEUED)
        zk__waitq_remove(&g->drainers, &f->node);
    zk__node_set_state(&f->node, ZK__W_CONSUMED);
    zk_waker_drop(&f->node._waker);
    zk__lock_release(&g->lock);
}

static const zk_future_ops zk__drain_ops = {zk__drain_poll, zk__drain_drop};

int zk_group_free(zk_group *g) {
    if (g == NULL)
        return 0;
    bool coroutine = zk_in_coroutine();
    bool plain = !zk_in_task();
    if (plain && zk__thread_waiter_current() == NULL)
        return -ENOMEM;
    uint64_t self = zk_task_current_id();
    zk__lock_acquire(&g->lock);
    int rc = 0;
    if (!zk__waitq_empty(&g->joiners) || !zk__waitq_empty(&g->drainers) ||
        g->handed > 0)
        rc = -EBUSY;
    for (zk__member *m = g->running.head; m && rc == 0; m = m->next) {
        if (m->id == self)
            rc = -EDEADLK;
    }
    if (rc == 0 && g->running.n > 0 && !coroutine && !plain)
        rc = -EPERM; /* a future task's poll cannot wait */
    if (rc != 0) {
        zk__lock_release(&g->lock);
        return rc;
    }
    g->closed = true;
    g->cancelled = true;
    for (zk__member *m = g->running.head; m; m = m->next)
        zk__task_cancel(m->task);
    bool wait = g->running.n > 0;
    zk__lock_release(&g->lock);

    if (wait) {
        /* Woken once, when the last member finishes: a task freeing a
         * group during shutdown is resumed a bounded number of times (see
         * zk__await_shielded()). */
        zk__drain_future df = {{&zk__drain_ops}, g, {0}};
        zk__node_init(&df.node);
        if (coroutine)
            zk__await_shielded(&df.base);
        else
            zk__wait(&df.base, false, 0);
    }

    /* Nothing runs and nothing can be added: release what nobody joined.
     * Taking the lock also waits out a last member's wake still inside
     * it. */
    zk__lock_acquire(&g->lock);
    zk__member *left = g->finished.head;
    g->finished = (zk__mlist){0};
    zk__lock_release(&g->lock);
    while (left != NULL) {
        zk__member *next = left->next;
        zk__member_join(left, NULL, NULL);
        left = next;
    }
    free(g);
    return 0;
}
