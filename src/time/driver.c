/* driver.c - the time driver and zk_sleep, see driver.h and zokio/time.h. */
#include "time/driver.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "runtime/runtime.h"
#include "zokio/time.h"

#define ZK__TICK_NS ((int64_t)1000 * 1000)

_Static_assert(sizeof(((zk_sleep_future *)0)->_timer) >= sizeof(zk__timer),
               "zk_sleep must have room for a timer entry");

enum { ZK__SLEEP_IDLE = 0, ZK__SLEEP_REGISTERED, ZK__SLEEP_FIRED };

/* A sleep's state changes under the driver's lock, but its drop reads it
 * without: a sleep seen FIRED there is one the driver no longer touches
 * (the store is the driver's last access, see zk__time_fire_locked). */
static uint32_t zk__sleep_state(const zk_sleep_future *s) {
    return __atomic_load_n(&s->_state, __ATOMIC_ACQUIRE);
}

static void zk__sleep_set_state(zk_sleep_future *s, uint32_t state) {
    __atomic_store_n(&s->_state, state, __ATOMIC_RELEASE);
}

int zk__time_init(zk__time *t, struct zk_runtime *rt) {
    t->rt = rt;
    t->origin = zk__mono_ns();
    zk__wheel_init(&t->wheel, 0);
    atomic_init(&t->next_ns, INT64_MAX);
    atomic_init(&t->paused, false);
    atomic_init(&t->paused_now, 0);
    atomic_init(&t->offset, 0);
    zk__lock_init(&t->lock);
    return 0;
}

void zk__time_destroy(zk__time *t) {
    ZK__ASSERT(t->wheel.count == 0);
}

int64_t zk__time_now(zk__time *t) {
    if (atomic_load_explicit(&t->paused, memory_order_acquire))
        return atomic_load(&t->paused_now);
    /* Saturated, then clamped: resumed after an advance to the end. */
    return zk__clock_clamp(zk__instant_after(
        zk__mono_ns(), atomic_load_explicit(&t->offset, memory_order_relaxed)));
}

/* Ticks: `now` rounds down, a deadline rounds up, so a timer never fires
 * before its deadline. */
static uint64_t zk__tick_of_now(zk__time *t, int64_t now) {
    return now <= t->origin ? 0 : (uint64_t)((now - t->origin) / ZK__TICK_NS);
}

static uint64_t zk__tick_of_deadline(zk__time *t, int64_t deadline) {
    if (deadline <= t->origin)
        return 0;
    /* Unsigned: near ZK_INSTANT_MAX the rounding would overflow int64. */
    return ((uint64_t)deadline - (uint64_t)t->origin + ZK__TICK_NS - 1) /
           ZK__TICK_NS;
}

/* The instant a tick starts, or INT64_MAX (never) past the clock's end. */
static int64_t zk__instant_of_tick(zk__time *t, uint64_t tick) {
    if (tick >= (uint64_t)(INT64_MAX - t->origin) / ZK__TICK_NS)
        return INT64_MAX;
    return t->origin + (int64_t)tick * ZK__TICK_NS;
}

/* With the lock held: publishes the earliest deadline. */
static void zk__time_update_next(zk__time *t) {
    atomic_store(&t->next_ns,
                 zk__instant_of_tick(t, zk__wheel_next_tick(&t->wheel)));
}

static zk_sleep_future *zk__sleep_of(zk__timer *timer) {
    return ZK__CONTAINER_OF((uint64_t *)(void *)timer, zk_sleep_future,
                            _timer[0]);
}

/* With the lock held: fires what is due by `now`. */
static void zk__time_fire_locked(zk__time *t, int64_t now) {
    zk__timer *fired = zk__wheel_expire(&t->wheel, zk__tick_of_now(t, now));
    while (fired) {
        zk__timer *next = fired->next;
        zk_sleep_future *s = zk__sleep_of(fired);
        /* Once FIRED is stored, the sleep's owner may drop it without the
         * lock and return, and its memory (often a stack frame) is gone:
         * the waker is taken out before. */
        zk_waker w = s->_waker;
        s->_waker = (zk_waker){0};
        zk__sleep_set_state(s, ZK__SLEEP_FIRED);
        zk_waker_wake(&w);
        fired = next;
    }
    zk__time_update_next(t);
}

void zk__time_process(zk__time *t) {
    /* No timer, no clock: a worker calls this before every sleep, and
     * under load the clock's data page is a cold miss (about half a
     * microsecond here, bench/README.md). */
    int64_t next = atomic_load(&t->next_ns);
    if (next == INT64_MAX)
        return;
    int64_t now = zk__time_now(t);
    if (next > now)
        return;
    zk__lock_acquire(&t->lock);
    zk__time_fire_locked(t, now);
    zk__lock_release(&t->lock);
}

bool zk__time_auto_advance(zk__time *t) {
    if (!atomic_load(&t->paused))
        return false;
    zk__lock_acquire(&t->lock);
    int64_t next = atomic_load(&t->next_ns);
    bool moved = next != INT64_MAX;
    if (moved) {
        if (next > atomic_load(&t->paused_now))
            atomic_store(&t->paused_now, next);
        zk__time_fire_locked(t, atomic_load(&t->paused_now));
    }
    zk__lock_release(&t->lock);
    return moved;
}

/* ---------------------------------------------------------------------- */
/* zk_sleep                                                               */
/* ---------------------------------------------------------------------- */

static zk_poll zk__sleep_poll(zk_future *f, zk_context *cx, int64_t *out) {
    zk_sleep_future *s = (zk_sleep_future *)f;
    zk__time *t = s->_driver;
    if (t == NULL) {
        struct zk_runtime *rt = zk__runtime_current();
        if (rt == NULL) {
            *out = -EPERM;
            return ZK_READY;
        }
        t = s->_driver = &rt->time;
    }
    zk__timer *timer = (zk__timer *)(void *)s->_timer;
    bool earlier = false;
    zk__lock_acquire(&t->lock);
    uint32_t state = zk__sleep_state(s);
    if (state != ZK__SLEEP_FIRED && s->deadline <= zk__time_now(t)) {
        if (state == ZK__SLEEP_REGISTERED)
            zk__wheel_remove(&t->wheel, timer);
        zk__sleep_set_state(s, state = ZK__SLEEP_FIRED);
    }
    if (state == ZK__SLEEP_FIRED) {
        zk__lock_release(&t->lock);
        zk_waker_drop(&s->_waker);
        *out = 0;
        return ZK_READY;
    }
    if (state == ZK__SLEEP_IDLE) {
        memset(timer, 0, sizeof *timer);
        timer->deadline = zk__tick_of_deadline(t, s->deadline);
        if (!zk__wheel_insert(&t->wheel, timer)) {
            /* Its tick was processed already: due now. */
            zk__sleep_set_state(s, ZK__SLEEP_FIRED);
            zk__lock_release(&t->lock);
            *out = 0;
            return ZK_READY;
        }
        zk__sleep_set_state(s, ZK__SLEEP_REGISTERED);
        int64_t at = zk__instant_of_tick(t, timer->deadline);
        if (at < atomic_load(&t->next_ns)) {
            atomic_store(&t->next_ns, at);
            earlier = true;
        }
    }
    if (!zk_waker_will_wake(&s->_waker, zk_context_waker(cx))) {
        zk_waker_drop(&s->_waker);
        s->_waker = zk_waker_clone(zk_context_waker(cx));
    }
    zk__lock_release(&t->lock);
    /* A parked worker may be sleeping past the new deadline. */
    if (earlier)
        t->rt->sched_ops->timers_changed(t->rt);
    return ZK_PENDING;
}

static void zk__sleep_drop(zk_future *f) {
    zk_sleep_future *s = (zk_sleep_future *)f;
    zk__time *t = s->_driver;
    if (t != NULL && zk__sleep_state(s) == ZK__SLEEP_REGISTERED) {
        zk__lock_acquire(&t->lock);
        if (zk__sleep_state(s) == ZK__SLEEP_REGISTERED) {
            zk__wheel_remove(&t->wheel, (zk__timer *)(void *)s->_timer);
            zk__sleep_set_state(s, ZK__SLEEP_IDLE);
        }
        zk__lock_release(&t->lock);
    }
    zk_waker_drop(&s->_waker);
}

static const zk_future_ops zk__sleep_ops = {zk__sleep_poll, zk__sleep_drop};

void zk_sleep_future_init_until(zk_sleep_future *s, zk_instant deadline) {
    if (s == NULL)
        return;
    memset(s, 0, sizeof *s);
    s->base.ops = &zk__sleep_ops;
    s->deadline = deadline;
}

zk_instant zk_now(void) {
    struct zk_runtime *rt = zk__runtime_current();
    return rt ? zk__time_now(&rt->time) : zk__mono_ns();
}

void zk_sleep_future_init(zk_sleep_future *s, zk_duration d) {
    zk_sleep_future_init_until(s, zk__instant_after(zk_now(), d));
}

int zk_sleep_until(zk_instant deadline) {
    zk_sleep_future s;
    zk_sleep_future_init_until(&s, deadline);
    return (int)zk_await(&s.base);
}

int zk_sleep(zk_duration d) {
    zk_sleep_future s;
    zk_sleep_future_init(&s, d);
    return (int)zk_await(&s.base);
}

/* ---------------------------------------------------------------------- */
/* The paused clock                                                       */
/* ---------------------------------------------------------------------- */

int zk_time_pause(zk_runtime *rt) {
    if (rt == NULL)
        return -EINVAL;
    if (rt->kind != ZK_RUNTIME_CURRENT_THREAD)
        return -ENOTSUP;
    zk__time *t = &rt->time;
    zk__lock_acquire(&t->lock);
    int rc = -EALREADY;
    if (!atomic_load(&t->paused)) {
        atomic_store(&t->paused_now, zk__time_now(t));
        atomic_store(&t->paused, true);
        rc = 0;
    }
    zk__lock_release(&t->lock);
    return rc;
}

int zk_time_advance(zk_runtime *rt, zk_duration d) {
    if (rt == NULL || d < 0)
        return -EINVAL;
    zk__time *t = &rt->time;
    zk__lock_acquire(&t->lock);
    int rc = -EINVAL;
    if (atomic_load(&t->paused)) {
        atomic_store(&t->paused_now, zk__clock_clamp(zk__instant_after(
                                         atomic_load(&t->paused_now), d)));
        zk__time_fire_locked(t, atomic_load(&t->paused_now));
        rc = 0;
    }
    zk__lock_release(&t->lock);
    return rc;
}

int zk_time_resume(zk_runtime *rt) {
    if (rt == NULL)
        return -EINVAL;
    zk__time *t = &rt->time;
    zk__lock_acquire(&t->lock);
    int rc = -EINVAL;
    if (atomic_load(&t->paused)) {
        atomic_store(&t->offset, atomic_load(&t->paused_now) - zk__mono_ns());
        atomic_store(&t->paused, false);
        rc = 0;
    }
    zk__lock_release(&t->lock);
    if (rc == 0)
        rt->sched_ops->timers_changed(rt);
    return rc;
}
