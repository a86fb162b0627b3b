/* test_wheel.c - the timer wheel against a brute-force model: a timer never
 * fires early, never twice, never after being cancelled, and none is lost,
 * across small steps and huge jumps; and 1,000,000 timers at once. */
#include "helpers.h"
#include "time/wheel.h"

ZK_SUITE(wheel);

typedef struct model_timer {
    zk__timer t;
    bool cancelled, fired;
} model_timer;

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random deadlines over every level's range. */
static uint64_t random_delay(void) {
    switch (next_rand() % 6) {
    case 0:
        return 1 + next_rand() % 64;
    case 1:
        return 1 + next_rand() % 4096;
    case 2:
        return 1 + next_rand() % 262144;
    case 3:
        return 1 + next_rand() % 16777216;
    case 4:
        return 1 + next_rand() % ((uint64_t)1 << 36);
    default:
        return ((uint64_t)1 << 36) + next_rand() % ((uint64_t)1 << 38);
    }
}

static void check_fired(zk__timer *list, uint64_t now, size_t *count) {
    for (zk__timer *t = list; t; t = t->next) {
        model_timer *m = (model_timer *)t;
        cr_assert_not(m->cancelled, "a cancelled timer fired");
        cr_assert_not(m->fired, "a timer fired twice");
        cr_assert_leq(t->deadline, now, "fired early: deadline %llu now %llu",
                      (unsigned long long)t->deadline, (unsigned long long)now);
        cr_assert_not(t->linked);
        m->fired = true;
        (*count)++;
    }
}

ZK_TEST(wheel, matches_a_brute_force_model) {
    enum { N = 20000 };
    model_timer *ts = calloc(N, sizeof *ts);
    zk__wheel *w = malloc(sizeof *w);
    uint64_t now = 12345;
    zk__wheel_init(w, now);
    size_t fired = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {
        ts[i].t.deadline = now + random_delay();
        cr_assert(zk__wheel_insert(w, &ts[i].t));
        if (i % 7 == 0) {
            /* advance a little or a lot while inserting */
            now += next_rand() % 5 == 0 ? next_rand() % 100000000
                                        : next_rand() % 50;
            check_fired(zk__wheel_expire(w, now), now, &fired);
        }
        if (i % 5 == 0) {
            model_timer *victim = &ts[next_rand() % (i + 1)];
            if (victim->t.linked) {
                zk__wheel_remove(w, &victim->t);
                victim->cancelled = true;
                cancelled++;
            }
        }
    }
    /* Walk to the end of time in uneven steps, checking next_tick. */
    while (w->count > 0) {
        uint64_t next = zk__wheel_next_tick(w);
        cr_assert_geq(next, now);
        now = next + next_rand() % 3;
        check_fired(zk__wheel_expire(w, now), now, &fired);
    }
    cr_assert_eq(zk__wheel_next_tick(w), UINT64_MAX);
    /* Everything not cancelled fired, and only once (checked above). */
    cr_assert_eq(fired + cancelled, N);
    for (int i = 0; i < N; i++)
        cr_assert(ts[i].fired != ts[i].cancelled);
    /* A deadline not after the last processed tick is refused. */
    zk__timer late = {.deadline = now};
    cr_assert_not(zk__wheel_insert(w, &late));
    free(w);
    free(ts);
}

ZK_TEST(wheel, one_million_timers) {
    enum { N = 1000000 };
    model_timer *ts = calloc(N, sizeof *ts);
    zk__wheel *w = malloc(sizeof *w);
    zk__wheel_init(w, 0);
    for (int i = 0; i < N; i++) {
        ts[i].t.deadline = 1 + next_rand() % 3600000; /* within an hour */
        cr_assert(zk__wheel_insert(w, &ts[i].t));
    }
    for (int i = 0; i < N; i += 3) { /* cancel a third, O(1) each */
        zk__wheel_remove(w, &ts[i].t);
        ts[i].cancelled = true;
    }
    size_t fired = 0;
    uint64_t now = 0;
    while (w->count > 0) {
        now += 1 + next_rand() % 20000;
        check_fired(zk__wheel_expire(w, now), now, &fired);
    }
    cr_assert_eq(fired, N - (N + 2) / 3);
    free(w);
    free(ts);
}
