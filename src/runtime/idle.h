/*
 * idle.h - which workers of a multi-thread runtime sleep, and how many are
 * searching for work (Tokio's protocol).
 *
 * `state` packs the number of unparked workers (high bits) and of searching
 * workers (low 16 bits). Rules that make wake-ups never lost and cheap:
 * - a new task wakes a sleeper only when nobody is searching (a searcher
 *   will find it) and some worker sleeps; the woken one starts searching;
 * - at most half of the workers search at once;
 * - a searcher that finds work stops searching, and if it was the last one
 *   it wakes another sleeper, so the search goes on while work remains;
 * - a worker going to sleep checks every queue once more and wakes a
 *   worker if it finds work (the other side of a racing new task). Tokio
 *   leaves this to the last searcher; but a worker that did not search
 *   because another did stays counted as unparked until it registers as a
 *   sleeper, and tasks pushed in that window wake nobody if the searcher
 *   stopped meanwhile.
 * All accesses to `state` are sequentially consistent: a task pushed then
 * `state` read on one side, `state` changed then queues read on the other.
 */
#ifndef ZK__IDLE_H
#define ZK__IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zk__idle {
    _Atomic uint64_t state;
    size_t workers;
    pthread_mutex_t lock;
    size_t *sleepers; /* indexes of parked workers, guarded by lock */
    size_t nsleepers;
} zk__idle;

int zk__idle_init(zk__idle *idle, size_t workers);
void zk__idle_destroy(zk__idle *idle);

/* Returns the index of a sleeping worker that the caller must unpark (now
 * counted as unparked and searching), or SIZE_MAX when none should be. */
size_t zk__idle_worker_to_notify(zk__idle *idle);

/* A worker that found no local work asks to search; false when half of the
 * workers already do. */
bool zk__idle_transition_to_searching(zk__idle *idle);

/* A searching worker found work; returns true if it was the last searcher
 * (the caller then wakes another worker). */
bool zk__idle_transition_from_searching(zk__idle *idle);

/* Worker `index` goes to sleep (the caller then checks the queues once
 * more). */
void zk__idle_transition_to_parked(zk__idle *idle, size_t index,
                                   bool searching);

/* Worker `index`, registered as sleeping, found work of its own (timers it
 * fired while parked woke tasks into its queue): takes it off the sleepers
 * and counts it unparked. Returns false if a notification had already
 * picked it (it is then counted as unparked and searching). */
bool zk__idle_unpark_worker_by_id(zk__idle *idle, size_t index);

/* True while worker `index` is still registered as sleeping (it woke up
 * spuriously or was not picked). */
bool zk__idle_is_parked(zk__idle *idle, size_t index);

#endif
