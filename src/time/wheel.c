/* wheel.c - the hierarchical timer wheel, see wheel.h. */
#include "wheel.h"

#include <string.h>

#include "common/util.h"

#define ZK__LEVEL_BITS 6

/* Ticks covered by one slot of level L, and by all of level L. */
static inline uint64_t zk__slot_span(unsigned level) {
    return (uint64_t)1 << (ZK__LEVEL_BITS * level);
}
static inline uint64_t zk__level_span(unsigned level) {
    return (uint64_t)1 << (ZK__LEVEL_BITS * (level + 1));
}
static inline unsigned zk__digit(uint64_t tick, unsigned level) {
    return (unsigned)(tick >> (ZK__LEVEL_BITS * level)) & (ZK__WHEEL_SLOTS - 1);
}

#define ZK__OVERFLOW_LEVEL ZK__WHEEL_LEVELS
#define ZK__WINDOW_SHIFT   (ZK__LEVEL_BITS * ZK__WHEEL_LEVELS)

void zk__wheel_init(zk__wheel *w, uint64_t now_tick) {
    memset(w, 0, sizeof *w);
    w->elapsed = now_tick;
    w->overflow_next = UINT64_MAX;
}

static void zk__list_push(zk__timer **head, zk__timer *t) {
    t->prev = NULL;
    t->next = *head;
    if (*head)
        (*head)->prev = t;
    *head = t;
}

static void zk__list_unlink(zk__timer **head, zk__timer *t) {
    if (t->prev)
        t->prev->next = t->next;
    else
        *head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

bool zk__wheel_insert(zk__wheel *w, zk__timer *t) {
    if (t->deadline <= w->elapsed)
        return false;
    t->linked = true;
    w->count++;
    if ((t->deadline >> ZK__WINDOW_SHIFT) != (w->elapsed >> ZK__WINDOW_SHIFT)) {
        /* Beyond the top level's window: wait for time to get there. */
        uint64_t window =
            t->deadline & ~(((uint64_t)1 << ZK__WINDOW_SHIFT) - 1);
        t->level = ZK__OVERFLOW_LEVEL;
        zk__list_push(&w->overflow, t);
        if (window < w->overflow_next)
            w->overflow_next = window;
        return true;
    }
    /* The highest base-64 digit where deadline and now differ. */
    uint64_t diff = t->deadline ^ w->elapsed;
    unsigned level = (63 - (unsigned)__builtin_clzll(diff)) / ZK__LEVEL_BITS;
    unsigned slot = zk__digit(t->deadline, level);
    t->level = (uint8_t)level;
    t->slot = (uint8_t)slot;
    zk__list_push(&w->slots[level][slot], t);
    w->occupied[level] |= (uint64_t)1 << slot;
    return true;
}

void zk__wheel_remove(zk__wheel *w, zk__timer *t) {
    ZK__ASSERT(t->linked);
    if (t->level == ZK__OVERFLOW_LEVEL) {
        zk__list_unlink(&w->overflow, t);
    } else {
        zk__list_unlink(&w->slots[t->level][t->slot], t);
        if (w->slots[t->level][t->slot] == NULL)
            w->occupied[t->level] &= ~((uint64_t)1 << t->slot);
    }
    t->linked = false;
    w->count--;
}

/* The start tick of the first occupied slot of `level` at or after the
 * current position (never behind it: see the invariant); a slot at the
 * current position of a coarse level is due now (to be cascaded). */
static uint64_t zk__level_next(const zk__wheel *w, unsigned level,
                               unsigned *slot_out) {
    uint64_t bits = w->occupied[level];
    if (bits == 0)
        return UINT64_MAX;
    unsigned cur = zk__digit(w->elapsed, level);
    uint64_t ahead = bits & (~(uint64_t)0 << cur);
    ZK__ASSERT(ahead != 0);
    unsigned slot = (unsigned)__builtin_ctzll(ahead);
    *slot_out = slot;
    uint64_t base = w->elapsed & ~(zk__level_span(level) - 1);
    uint64_t start = base + (uint64_t)slot * zk__slot_span(level);
    return start > w->elapsed ? start : w->elapsed;
}

/* The earliest tick with work, and where: level ZK__OVERFLOW_LEVEL means
 * the overflow list. */
static uint64_t zk__wheel_next(const zk__wheel *w, unsigned *level_out,
                               unsigned *slot_out) {
    uint64_t best = w->overflow ? w->overflow_next : UINT64_MAX;
    *level_out = ZK__OVERFLOW_LEVEL;
    *slot_out = 0;
    for (unsigned level = 0; level < ZK__WHEEL_LEVELS; level++) {
        unsigned slot;
        uint64_t t = zk__level_next(w, level, &slot);
        if (t < best) {
            best = t;
            *level_out = level;
            *slot_out = slot;
        }
    }
    return best;
}

uint64_t zk__wheel_next_tick(const zk__wheel *w) {
    unsigned level, slot;
    return zk__wheel_next(w, &level, &slot);
}

/* Takes list `list` out and places each timer again relative to the
 * current time; those due go to `*fired`. */
static void zk__wheel_replace(zk__wheel *w, zk__timer *list,
                              zk__timer **fired) {
    while (list) {
        zk__timer *t = list;
        list = t->next;
        t->prev = t->next = NULL;
        t->linked = false;
        w->count--;
        if (!zk__wheel_insert(w, t)) {
            t->next = *fired;
            *fired = t;
        }
    }
}

zk__timer *zk__wheel_expire(zk__wheel *w, uint64_t now_tick) {
    zk__timer *fired = NULL;
    for (;;) {
        unsigned level, slot;
        uint64_t best = zk__wheel_next(w, &level, &slot);
        if (best > now_tick)
            break;
        /* Nothing is due before `best`: move there and empty that slot
         * (or the overflow list); each timer fires or is placed again. */
        if (best > w->elapsed)
            w->elapsed = best;
        zk__timer *list;
        if (level == ZK__OVERFLOW_LEVEL) {
            list = w->overflow;
            w->overflow = NULL;
            w->overflow_next = UINT64_MAX;
        } else {
            list = w->slots[level][slot];
            w->slots[level][slot] = NULL;
            w->occupied[level] &= ~((uint64_t)1 << slot);
        }
        zk__wheel_replace(w, list, &fired);
    }
    if (now_tick > w->elapsed)
        w->elapsed = now_tick;
    return fired;
}
