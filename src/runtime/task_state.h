/*
 * task_state.h - the task state word and its transitions (Tokio's task state
 * machine, written for C11 atomics).
 *
 * Bits:
 *   RUNNING        a thread is polling the task; it alone may touch the body.
 *   COMPLETE       the body finished; core.result is published.
 *   NOTIFIED       a notification (a run-queue entry, or a pending re-run
 *                  while RUNNING) exists; at most one at a time.
 *   CANCELLED      abort or shutdown asked the task to stop.
 *   JOIN_INTEREST  a join handle exists.
 *   JOIN_WAKER     core.join_waker holds a waker. While the task is not
 *                  COMPLETE the join handle owns the field when the bit is
 *                  clear; once COMPLETE the task owns it while the bit is set.
 * The bits above REF_SHIFT count references: the owned list, each
 * notification, the join handle and every task waker hold one.
 */
#ifndef ZK__TASK_STATE_H
#define ZK__TASK_STATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/util.h"
#include "task.h"

#define ZK__RUNNING       ((uint64_t)1 << 0)
#define ZK__COMPLETE      ((uint64_t)1 << 1)
#define ZK__NOTIFIED      ((uint64_t)1 << 2)
#define ZK__CANCELLED     ((uint64_t)1 << 3)
#define ZK__JOIN_INTEREST ((uint64_t)1 << 4)
#define ZK__JOIN_WAKER    ((uint64_t)1 << 5)
#define ZK__REF_SHIFT     6
#define ZK__REF_ONE       ((uint64_t)1 << ZK__REF_SHIFT)
#define ZK__FLAGS_MASK    (ZK__REF_ONE - 1)
#define ZK__LIFECYCLE     (ZK__RUNNING | ZK__COMPLETE)

/* A new task: one reference for the owned list, one for its first
 * notification, one for the join handle (dropped at once if detached). */
#define ZK__STATE_INITIAL (ZK__REF_ONE * 3 | ZK__JOIN_INTEREST | ZK__NOTIFIED)

static inline uint64_t zk__refs(uint64_t s) {
    return s >> ZK__REF_SHIFT;
}

static inline uint64_t zk__state_load(const zk__task *t) {
    return atomic_load_explicit(&t->state, memory_order_acquire);
}

/* True when the CANCELLED bit is set. Inline: tested before every poll of
 * every await (coro.c). */
static inline bool zk__task_is_cancelled(const zk__task *t) {
    return (zk__state_load(t) & ZK__CANCELLED) != 0;
}

static inline bool zk__cas(zk__task *t, uint64_t *cur, uint64_t next) {
    return atomic_compare_exchange_weak_explicit(
        &t->state, cur, next, memory_order_acq_rel, memory_order_acquire);
}

typedef enum {
    ZK__RUN_SUCCESS,
    ZK__RUN_CANCELLED,
    ZK__RUN_FAILED,
    ZK__RUN_DEALLOC
} zk__to_running;

/* Takes the RUNNING lock for the holder of a notification. */
static inline zk__to_running zk__transition_to_running(zk__task *t) {
    uint64_t cur = zk__state_load(t), next;
    zk__to_running action;
    do {
        ZK__ASSERT(cur & ZK__NOTIFIED || cur & ZK__COMPLETE ||
                   cur & ZK__RUNNING);
        next = cur;
        if (cur & ZK__LIFECYCLE) {
            /* Running elsewhere or finished: this notification is stale. */
            ZK__ASSERT(zk__refs(cur) > 0);
            next -= ZK__REF_ONE;
            action = zk__refs(next) == 0 ? ZK__RUN_DEALLOC : ZK__RUN_FAILED;
        } else {
            next = (next | ZK__RUNNING) & ~ZK__NOTIFIED;
            action =
                (cur & ZK__CANCELLED) ? ZK__RUN_CANCELLED : ZK__RUN_SUCCESS;
        }
    } while (!zk__cas(t, &cur, next));
    return action;
}

typedef enum {
    ZK__IDLE_OK,
    ZK__IDLE_OK_NOTIFIED,
    ZK__IDLE_OK_DEALLOC,
    ZK__IDLE_CANCELLED
} zk__to_idle;

/* Releases the RUNNING lock after a poll returned pending. With
 * `check_cancel` a cancelled task stays RUNNING and the caller cancels it. */
static inline zk__to_idle zk__transition_to_idle(zk__task *t,
                                                 bool check_cancel) {
    uint64_t cur = zk__state_load(t), next;
    zk__to_idle action;
    do {
        ZK__ASSERT(cur & ZK__RUNNING);
        if (check_cancel && (cur & ZK__CANCELLED))
            return ZK__IDLE_CANCELLED;
        next = cur & ~ZK__RUNNING;
        if (!(next & ZK__NOTIFIED)) {
            /* The poll consumed the notification's reference. */
            next -= ZK__REF_ONE;
            action = zk__refs(next) == 0 ? ZK__IDLE_OK_DEALLOC : ZK__IDLE_OK;
        } else {
            /* Woken while running: a new notification gets its own
             * reference; the caller drops the old one after scheduling. */
            next += ZK__REF_ONE;
            action = ZK__IDLE_OK_NOTIFIED;
        }
    } while (!zk__cas(t, &cur, next));
    return action;
}

typedef enum {
    ZK__NOTIFY_NOTHING,
    ZK__NOTIFY_SUBMIT,
    ZK__NOTIFY_DEALLOC
} zk__notify;

/* A running task that yielded: RUNNING -> NOTIFIED in one step. Its
 * running reference becomes the notification's, so the caller schedules it
 * without touching the count. */
static inline void zk__transition_yield(zk__task *t) {
    uint64_t cur = zk__state_load(t);
    do {
        ZK__ASSERT(cur & ZK__RUNNING);
    } while (!zk__cas(t, &cur, (cur & ~ZK__RUNNING) | ZK__NOTIFIED));
}

/* A wake that borrows a reference: returns SUBMIT when the caller must
 * schedule the task (a new reference was created for the notification). */
static inline zk__notify zk__transition_to_notified_by_ref(zk__task *t) {
    uint64_t cur = zk__state_load(t), next;
    zk__notify action;
    do {
        if (cur & (ZK__COMPLETE | ZK__NOTIFIED))
            return ZK__NOTIFY_NOTHING;
        next = cur | ZK__NOTIFIED;
        if (cur & ZK__RUNNING) {
            action = ZK__NOTIFY_NOTHING;
        } else {
            next += ZK__REF_ONE;
            action = ZK__NOTIFY_SUBMIT;
        }
    } while (!zk__cas(t, &cur, next));
    return action;
}

/* A wake that consumes a reference: SUBMIT hands that reference to the
 * notification; otherwise it is dropped (DEALLOC when it was the last). */
static inline zk__notify zk__transition_to_notified_by_val(zk__task *t) {
    uint64_t cur = zk__state_load(t), next;
    zk__notify action;
    do {
        next = cur;
        if (cur & ZK__RUNNING) {
            next = (next | ZK__NOTIFIED) - ZK__REF_ONE;
            ZK__ASSERT(zk__refs(next) > 0);
            action = ZK__NOTIFY_NOTHING;
        } else if (cur & (ZK__COMPLETE | ZK__NOTIFIED)) {
            next -= ZK__REF_ONE;
            action =
                zk__refs(next) == 0 ? ZK__NOTIFY_DEALLOC : ZK__NOTIFY_NOTHING;
        } else {
            next |= ZK__NOTIFIED;
            action = ZK__NOTIFY_SUBMIT;
        }
    } while (!zk__cas(t, &cur, next));
    return action;
}

/* Sets CANCELLED (and NOTIFIED so that the task runs and sees it). Returns
 * SUBMIT when the caller must schedule it (a reference was created),
 * NOTHING when it is running or queued already, DEALLOC never. Writes to
 * *finished whether the task had already completed. */
static inline zk__notify zk__transition_to_cancelled(zk__task *t,
                                                     bool *finished) {
    uint64_t cur = zk__state_load(t), next;
    zk__notify action;
    *finished = false;
    do {
        if (cur & ZK__COMPLETE) {
            *finished = true;
            return ZK__NOTIFY_NOTHING;
        }
        if (cur & ZK__CANCELLED)
            return ZK__NOTIFY_NOTHING;
        next = cur | ZK__CANCELLED;
        if ((cur & ZK__RUNNING) || (cur & ZK__NOTIFIED)) {
            next |= ZK__NOTIFIED;
            action = ZK__NOTIFY_NOTHING;
        } else {
            next = (next | ZK__NOTIFIED) + ZK__REF_ONE;
            action = ZK__NOTIFY_SUBMIT;
        }
    } while (!zk__cas(t, &cur, next));
    return action;
}

/* RUNNING -> COMPLETE in one step; returns the new state. */
static inline uint64_t zk__transition_to_complete(zk__task *t) {
    uint64_t prev = atomic_fetch_xor_explicit(
        &t->state, ZK__RUNNING | ZK__COMPLETE, memory_order_acq_rel);
    ZK__ASSERT(prev & ZK__RUNNING);
    ZK__ASSERT(!(prev & ZK__COMPLETE));
    return prev ^ (ZK__RUNNING | ZK__COMPLETE);
}

/* Drops `n` references; returns true when they were the last. */
static inline bool zk__ref_dec_n(zk__task *t, uint64_t n) {
    uint64_t prev = atomic_fetch_sub_explicit(&t->state, n * ZK__REF_ONE,
                                              memory_order_acq_rel);
    ZK__ASSERT(zk__refs(prev) >= n);
    return zk__refs(prev) == n;
}

static inline void zk__ref_inc(zk__task *t) {
    uint64_t prev =
        atomic_fetch_add_explicit(&t->state, ZK__REF_ONE, memory_order_relaxed);
    ZK__ASSERT(zk__refs(prev) > 0 && zk__refs(prev) < (UINT64_MAX >> 8));
}

/* Sets JOIN_WAKER unless the task completed meanwhile. */
static inline bool zk__set_join_waker(zk__task *t) {
    uint64_t cur = zk__state_load(t);
    do {
        ZK__ASSERT(cur & ZK__JOIN_INTEREST);
        ZK__ASSERT(!(cur & ZK__JOIN_WAKER));
        if (cur & ZK__COMPLETE)
            return false;
    } while (!zk__cas(t, &cur, cur | ZK__JOIN_WAKER));
    return true;
}

/* Clears JOIN_WAKER (to replace the waker) unless the task completed. */
static inline bool zk__unset_join_waker(zk__task *t) {
    uint64_t cur = zk__state_load(t);
    do {
        ZK__ASSERT(cur & ZK__JOIN_INTEREST);
        ZK__ASSERT(cur & ZK__JOIN_WAKER);
        if (cur & ZK__COMPLETE)
            return false;
    } while (!zk__cas(t, &cur, cur & ~ZK__JOIN_WAKER));
    return true;
}

/* After waking the join waker of a completed task: clears JOIN_WAKER and
 * returns the new state; if JOIN_INTEREST is gone by then, the task must
 * drop the waker itself. */
static inline uint64_t zk__unset_waker_after_complete(zk__task *t) {
    uint64_t prev = atomic_fetch_and_explicit(&t->state, ~ZK__JOIN_WAKER,
                                              memory_order_acq_rel);
    ZK__ASSERT(prev & ZK__COMPLETE);
    ZK__ASSERT(prev & ZK__JOIN_WAKER);
    return prev & ~ZK__JOIN_WAKER;
}

/* The join handle goes away: clears JOIN_INTEREST (and JOIN_WAKER if the
 * task is still running, taking back the waker field). Returns the new
 * state: without JOIN_WAKER in it, the handle owns the waker field. */
static inline uint64_t zk__transition_join_dropped(zk__task *t) {
    uint64_t cur = zk__state_load(t), next;
    do {
        ZK__ASSERT(cur & ZK__JOIN_INTEREST);
        next = cur & ~ZK__JOIN_INTEREST;
        if (!(cur & ZK__COMPLETE))
            next &= ~ZK__JOIN_WAKER;
    } while (!zk__cas(t, &cur, next));
    return next;
}

#endif
