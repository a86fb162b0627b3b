/* test_inject.c - the global queue (src/runtime/inject.h): tasks that ran
 * before are taken ahead of tasks that never ran, each list in FIFO
 * order, and a new task still gets every ZK__INJECT_FRESH_EVERY-th pop. */
#include "helpers.h"
#include "runtime/inject.h"

ZK_SUITE(inject);

#define TASKS 64

static zk__task tasks[TASKS];
/* A task's number: its index. */
#define ID(t) ((uint64_t)((t)-tasks))

static void make_tasks(int ran_from) {
    memset(tasks, 0, sizeof tasks);
    for (int i = 0; i < TASKS; i++) {
        tasks[i].has_run = i >= ran_from;
    }
}

ZK_TEST(inject, tasks_that_ran_go_ahead_of_new_ones_in_fifo_order) {
    zk__inject q;
    cr_assert_eq(zk__inject_init(&q), 0);
    cr_assert_null(zk__inject_pop(&q), "empty at first");
    /* Tasks 0..3 new, 4..7 ran; pushed interleaved, one by one and as a
     * batch, as a local queue's overflow mixes them. */
    make_tasks(4);
    int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    zk__inject_push(&q, &tasks[order[0]]);
    for (int i = 1; i < 7; i++)
        tasks[order[i]].queue_next = &tasks[order[i + 1]];
    zk__inject_push_batch(&q, &tasks[order[1]], &tasks[order[7]]);
    cr_assert_eq(zk__inject_len(&q), 8);
    int expect[8] = {4, 5, 6, 7, 0, 1, 2, 3};
    for (int i = 0; i < 8; i++) {
        zk__task *t = zk__inject_pop(&q);
        cr_assert_not_null(t);
        cr_assert_eq(ID(t), (uint64_t)expect[i], "pop %d gave task %llu", i,
                     (unsigned long long)ID(t));
        cr_assert_null(t->queue_next, "popped tasks are unlinked");
    }
    cr_assert_eq(zk__inject_len(&q), 0);
    cr_assert_null(zk__inject_pop(&q));
    zk__inject_destroy(&q);
}

ZK_TEST(inject, a_stream_of_woken_tasks_does_not_hold_new_ones_back) {
    zk__inject q;
    cr_assert_eq(zk__inject_init(&q), 0);
    /* 0..7 new, 8..63 ran. */
    make_tasks(8);
    for (int i = 0; i < TASKS; i++)
        zk__inject_push(&q, &tasks[i]);
    int fresh_seen = 0, next_fresh = 0, next_ran = 8;
    for (int pop = 1; pop <= TASKS; pop++) {
        zk__task *t = zk__inject_pop(&q);
        cr_assert_not_null(t);
        if (!t->has_run) {
            cr_assert_eq(ID(t), (uint64_t)next_fresh++);
            fresh_seen++;
            /* Only on its turn while tasks that ran still wait. */
            if (next_ran < TASKS)
                cr_assert_eq(pop % ZK__INJECT_FRESH_EVERY, 0,
                             "new task %llu taken at pop %d",
                             (unsigned long long)ID(t), pop);
        } else {
            cr_assert_eq(ID(t), (uint64_t)next_ran++);
        }
    }
    cr_assert_eq(fresh_seen, 8);
    cr_assert_null(zk__inject_pop(&q));
    zk__inject_destroy(&q);
}
