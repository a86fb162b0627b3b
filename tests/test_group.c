/* test_group.c - task groups: members joined as they finish, join_all,
 * cancel and close, free with members running (from a task, an aborted
 * task, a plain thread), deadlines and aborted joins that lose nothing,
 * the future forms, bad input, and stress across workers. */
#include "helpers.h"

ZK_SUITE(group);

/* ---------------------------------------------------------------------- */
/* members and small futures the tests share                              */
/* ---------------------------------------------------------------------- */

/* A member that tells `started` it runs, waits for a permit of `go`
 * (permits add up: releasing lets one member go whether or not it waits
 * yet), then counts its cleanup: returns `value` when let go, 1000 + the
 * wait's error otherwise (1000 - ECANCELED when cancelled). */
typedef struct member_arg {
    zk_semaphore *go;
    zk_semaphore *started; /* may be NULL */
    atomic_int *cleanups;  /* may be NULL */
    int64_t value;
} member_arg;

static int64_t waits_for_go(void *arg) {
    member_arg *a = arg;
    if (a->started)
        zk_semaphore_release(a->started, 1);
    int rc = zk_semaphore_acquire(a->go, 1);
    if (rc == -ECANCELED) {
        /* Cleanup that itself awaits: every await of an aborted task
         * returns at once, but it still runs to the end. */
        cr_assert_eq(zk_yield(), -ECANCELED);
    }
    if (a->cleanups)
        atomic_fetch_add(a->cleanups, 1);
    return rc == 0 ? a->value : 1000 + rc;
}

static int64_t returns_arg(void *arg) {
    return (int64_t)(intptr_t)arg;
}

#define CANCELLED_RESULT (1000 - ECANCELED)

/* A future that polls `inner` once (so it is queued), then calls
 * hook(ctx), and is ready the next time it is polled without polling
 * `inner` again: lets a task sleep until whatever `inner` waits for was
 * handed to it, and then leave `inner` unseen. Output 1 when `inner` was
 * ready at once (its output in `inner_out`), 0 after a wake. */
typedef struct first_wake {
    zk_future base;
    zk_future *inner;
    void (*hook)(void *ctx);
    void *ctx;
    int64_t inner_out;
    bool polled;
} first_wake;

static zk_poll first_wake_poll(zk_future *f, zk_context *cx, int64_t *out) {
    first_wake *w = (first_wake *)f;
    if (w->polled) {
        *out = 0;
        return ZK_READY;
    }
    w->polled = true;
    if (zk_future_poll(w->inner, cx, &w->inner_out) == ZK_READY) {
        *out = 1;
        return ZK_READY;
    }
    if (w->hook)
        w->hook(w->ctx);
    return ZK_PENDING;
}
static const zk_future_ops first_wake_ops = {first_wake_poll, NULL};

static void semaphore_hook(void *ctx) {
    zk_semaphore_release(ctx, 1);
}

/* ---------------------------------------------------------------------- */
/* bad input                                                              */
/* ---------------------------------------------------------------------- */

static int64_t bad_input_in_task(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    zk_spawn_opts o = {.stack_size = 1};
    uint64_t id = 77;
    cr_assert_eq(zk_group_spawn(g, returns_arg, NULL, &o, &id), -EINVAL,
                 "stack size out of range");
    cr_assert_eq(id, 77, "a failed spawn writes nothing");
    cr_assert_eq(zk_group_len(g), 0, "and leaves no member");
    cr_assert_eq(zk_group_join_next(g, NULL, NULL), -ECHILD);
    cr_assert_eq(zk_group_join_all(g), 0);
    cr_assert_eq(zk_group_free(g), 0);
    return 0;
}

ZK_TEST(group, bad_input_gets_clear_codes) {
    zk_group *g;
    int64_t r = 5;
    uint64_t id = 9;
    cr_assert_eq(zk_group_new(NULL), -EINVAL);
    cr_assert_eq(zk_group_spawn(NULL, returns_arg, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(zk_group_join_next(NULL, &r, &id), -EINVAL);
    cr_assert_eq(id, 0, "id 0: no member was joined");
    cr_assert_eq(zk_group_join_next_until(NULL, &r, &id, 0), -EINVAL);
    cr_assert_eq(zk_group_try_join_next(NULL, &r, &id), -EINVAL);
    cr_assert_eq(zk_group_join_all(NULL), -EINVAL);
    cr_assert_eq(zk_group_join_all_until(NULL, 0), -EINVAL);
    cr_assert_eq(zk_group_cancel(NULL), -EINVAL);
    cr_assert_eq(zk_group_close(NULL), -EINVAL);
    cr_assert_eq(zk_group_len(NULL), 0);
    cr_assert_eq(zk_group_free(NULL), 0, "freeing NULL is a no-op");
    zk_group_join_next_future_init(NULL, NULL, NULL, NULL);
    zk_group_join_all_future_init(NULL, NULL);

    counter_waker cw;
    atomic_init(&cw.wakes, 0);
    int64_t out;
    zk_group_join_future jf;
    zk_group_join_next_future_init(&jf, NULL, &r, &id);
    cr_assert(poll1(&jf.base, &cw, &out));
    cr_assert_eq(out, -EINVAL);
    zk_future_drop(&jf.base);
    zk_group_join_all_future af;
    zk_group_join_all_future_init(&af, NULL);
    cr_assert(poll1(&af.base, &cw, &out));
    cr_assert_eq(out, -EINVAL);
    zk_future_drop(&af.base);

    cr_assert_eq(zk_group_new(&g), 0);
    cr_assert_eq(zk_group_spawn(g, NULL, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(zk_group_spawn(g, returns_arg, NULL, NULL, &id), -EPERM,
                 "outside a runtime");
    cr_assert_eq(zk_group_len(g), 0);
    /* An empty group answers at once, even on a plain thread. */
    cr_assert_eq(zk_group_join_next(g, &r, &id), -ECHILD);
    cr_assert_eq(zk_group_join_next_until(g, &r, &id, 0), -ECHILD);
    cr_assert_eq(zk_group_try_join_next(g, &r, &id), -ECHILD);
    cr_assert_eq(zk_group_join_all(g), 0);
    cr_assert_eq(r, 5, "no member: result untouched");
    zk_group_join_next_future_init(&jf, g, &r, &id);
    cr_assert(poll1(&jf.base, &cw, &out));
    cr_assert_eq(out, -ECHILD);
    zk_future_drop(&jf.base);
    cr_assert_str_eq(zk_err_name(-ECHILD), "ECHILD");
    cr_assert_eq(zk_group_free(g), 0);

    zk_test_run(bad_input_in_task, NULL);
}

/* ---------------------------------------------------------------------- */
/* joining                                                                */
/* ---------------------------------------------------------------------- */

enum { ORDER_N = 8 };

/* Members let go one at a time in a scrambled order: each join_next
 * returns exactly the member that was let go, with its id and result. */
static int64_t one_at_a_time_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    member_arg a[ORDER_N];
    uint64_t ids[ORDER_N];
    for (int i = 0; i < ORDER_N; i++) {
        a[i] = (member_arg){NULL, NULL, NULL, 100 + i};
        cr_assert_eq(zk_semaphore_new(0, &a[i].go), 0);
        ids[i] = 0;
        cr_assert_eq(zk_group_spawn(g, waits_for_go, &a[i], NULL, &ids[i]), 0);
        cr_assert_neq(ids[i], 0);
        cr_assert_eq(zk_group_len(g), (size_t)i + 1);
    }
    static const int order[ORDER_N] = {5, 2, 7, 0, 3, 6, 1, 4};
    for (int k = 0; k < ORDER_N; k++) {
        int i = order[k];
        cr_assert_eq(zk_group_try_join_next(g, NULL, NULL), -EAGAIN,
                     "nothing finished yet");
        cr_assert_eq(zk_semaphore_release(a[i].go, 1), 0);
        int64_t r = -1;
        uint64_t id = 0;
        cr_assert_eq(zk_group_join_next(g, &r, &id), 0);
        cr_assert_eq(id, ids[i], "step %d: member %d", k, i);
        cr_assert_eq(r, 100 + i);
        cr_assert_eq(zk_group_len(g), (size_t)(ORDER_N - k - 1));
    }
    uint64_t id = 5;
    cr_assert_eq(zk_group_join_next(g, NULL, &id), -ECHILD, "all joined");
    cr_assert_eq(id, 0);
    for (int i = 0; i < ORDER_N; i++)
        cr_assert_eq(zk_semaphore_free(a[i].go), 0);
    cr_assert_eq(zk_group_free(g), 0);
    return 0;
}

ZK_TEST(group, join_next_returns_each_member_as_it_finishes) {
    zk_test_run(one_at_a_time_root, NULL);
}

#if !ZK_TEST_MT
static int64_t sleeps_then_returns(void *arg) {
    intptr_t ms = (intptr_t)arg;
    cr_assert_eq(zk_sleep(ZK_MS(ms)), 0);
    return ms;
}

/* Members that finished wait in the group in completion order (a paused
 * clock orders them exactly; it needs a current-thread runtime). */
static int64_t completion_order_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    static const intptr_t ms[] = {40, 10, 70, 20, 60, 30, 50};
    enum { N = sizeof ms / sizeof ms[0] };
    for (int i = 0; i < N; i++)
        cr_assert_eq(
            zk_group_spawn(g, sleeps_then_returns, (void *)ms[i], NULL, NULL),
            0);
    cr_assert_eq(zk_sleep(ZK_MS(100)), 0);
    cr_assert_eq(zk_group_len(g), N, "finished members stay until joined");
    for (intptr_t want = 10; want <= 70; want += 10) {
        int64_t r;
        uint64_t id;
        cr_assert_eq(zk_group_try_join_next(g, &r, &id), 0);
        cr_assert_eq(r, want);
        cr_assert_neq(id, 0);
    }
    cr_assert_eq(zk_group_try_join_next(g, NULL, NULL), -ECHILD);
    cr_assert_eq(zk_group_free(g), 0);
    return 0;
}

ZK_TEST(group, finished_members_wait_in_completion_order) {
    zk_runtime *rt = zk_test_runtime();
    cr_assert_eq(zk_time_pause(rt), 0);
    int64_t r = -1;
    cr_assert_eq(zk_block_on(rt, completion_order_root, NULL, &r), 0);
    cr_assert_eq(r, 0);
    cr_assert_eq(zk_runtime_free(rt), 0);
}
#endif

/* join_all joins every member, members spawned meanwhile (by members)
 * included. */
typedef struct all_state {
    zk_group *g;
    atomic_int ran;
} all_state;

static int64_t counts_and_yields(void *arg) {
    all_state *st = arg;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(zk_yield(), 0);
    atomic_fetch_add(&st->ran, 1);
    return 1;
}

static int64_t spawns_a_sibling(void *arg) {
    all_state *st = arg;
    cr_assert_eq(zk_yield(), 0);
    cr_assert_eq(zk_group_spawn(st->g, counts_and_yields, st, NULL, NULL), 0);
    atomic_fetch_add(&st->ran, 1);
    return 2;
}

static int64_t join_all_root(void *arg) {
    (void)arg;
    all_state st;
    atomic_init(&st.ran, 0);
    cr_assert_eq(zk_group_new(&st.g), 0);
    enum { N = 50 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(
            zk_group_spawn(st.g, i % 2 ? spawns_a_sibling : counts_and_yields,
                           &st, NULL, NULL),
            0);
    cr_assert_eq(zk_group_join_all(st.g), N + N / 2);
    cr_assert_eq(atomic_load(&st.ran), N + N / 2, "every member ran");
    cr_assert_eq(zk_group_len(st.g), 0);
    cr_assert_eq(zk_group_join_next(st.g, NULL, NULL), -ECHILD);
    cr_assert_eq(zk_group_join_all(st.g), 0, "nothing left");
    /* A group stays usable after join_all. */
    cr_assert_eq(zk_group_spawn(st.g, returns_arg, (void *)7, NULL, NULL), 0);
    int64_t r;
    cr_assert_eq(zk_group_join_next(st.g, &r, NULL), 0);
    cr_assert_eq(r, 7);
    cr_assert_eq(zk_group_free(st.g), 0);
    return 0;
}

ZK_TEST(group, join_all_joins_every_member_and_those_spawned_meanwhile) {
    zk_test_run(join_all_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* cancel and close                                                       */
/* ---------------------------------------------------------------------- */

enum { CANCEL_N = 20 };

static int64_t cancel_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    zk_semaphore *never, *started;
    cr_assert_eq(zk_semaphore_new(0, &never), 0);
    cr_assert_eq(zk_semaphore_new(0, &started), 0);
    atomic_int cleanups;
    atomic_init(&cleanups, 0);
    member_arg a = {never, started, &cleanups, 1};
    uint64_t ids[CANCEL_N];
    for (int i = 0; i < CANCEL_N; i++)
        cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, &ids[i]), 0);
    cr_assert_eq(zk_semaphore_acquire(started, CANCEL_N), 0, "all run");

    cr_assert_eq(zk_group_cancel(g), 0);
    cr_assert_eq(zk_group_cancel(g), 0, "again: nothing changes");
    uint64_t id = 3;
    cr_assert_eq(zk_group_spawn(g, returns_arg, NULL, NULL, &id), -EPIPE,
                 "a cancelled group takes no member");
    cr_assert_eq(id, 3);
    cr_assert_eq(zk_group_len(g), CANCEL_N);

    bool seen[CANCEL_N] = {false};
    for (int k = 0; k < CANCEL_N; k++) {
        int64_t r = 0;
        cr_assert_eq(zk_group_join_next(g, &r, &id), -ECANCELED,
                     "the member was aborted");
        cr_assert_neq(id, 0, "and it was joined");
        cr_assert_eq(r, CANCELLED_RESULT, "its await saw -ECANCELED");
        int i = 0;
        while (i < CANCEL_N && ids[i] != id)
            i++;
        cr_assert_lt(i, CANCEL_N);
        cr_assert_not(seen[i], "joined once");
        seen[i] = true;
    }
    cr_assert_eq(atomic_load(&cleanups), CANCEL_N);
    cr_assert_eq(zk_group_join_next(g, NULL, &id), -ECHILD);
    cr_assert_eq(zk_group_free(g), 0);
    cr_assert_eq(zk_semaphore_free(never), 0);
    cr_assert_eq(zk_semaphore_free(started), 0);
    return 0;
}

ZK_TEST(group, cancel_aborts_every_member_and_closes_the_group) {
    zk_test_run(cancel_root, NULL);
}

static int64_t close_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    member_arg a = {NULL, NULL, NULL, 9};
    cr_assert_eq(zk_semaphore_new(0, &a.go), 0);
    cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, NULL), 0);
    cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, NULL), 0);
    cr_assert_eq(zk_group_close(g), 0);
    cr_assert_eq(zk_group_close(g), 0);
    cr_assert_eq(zk_group_spawn(g, returns_arg, NULL, NULL, NULL), -EPIPE);
    cr_assert_eq(zk_group_len(g), 2, "closing cancels nothing");
    cr_assert_eq(zk_semaphore_release(a.go, 2), 0);
    int64_t r;
    cr_assert_eq(zk_group_join_next(g, &r, NULL), 0);
    cr_assert_eq(r, 9);
    cr_assert_eq(zk_group_join_all(g), 1);
    cr_assert_eq(zk_group_free(g), 0);
    cr_assert_eq(zk_semaphore_free(a.go), 0);
    return 0;
}

ZK_TEST(group, close_refuses_spawns_and_lets_members_finish) {
    zk_test_run(close_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* free                                                                   */
/* ---------------------------------------------------------------------- */

enum { FREE_N = 30 };

typedef struct free_state {
    zk_group *g;
    zk_semaphore *never;
    zk_semaphore *started;
    zk_semaphore *ready; /* the owner tells the root it owns the group */
    atomic_int cleanups;
    member_arg a;
} free_state;

static void free_state_init(free_state *st) {
    cr_assert_eq(zk_group_new(&st->g), 0);
    cr_assert_eq(zk_semaphore_new(0, &st->never), 0);
    cr_assert_eq(zk_semaphore_new(0, &st->started), 0);
    cr_assert_eq(zk_semaphore_new(0, &st->ready), 0);
    atomic_init(&st->cleanups, 0);
    st->a = (member_arg){st->never, st->started, &st->cleanups, 1};
}

static void free_state_destroy(free_state *st) {
    cr_assert_eq(zk_semaphore_free(st->never), 0);
    cr_assert_eq(zk_semaphore_free(st->started), 0);
    cr_assert_eq(zk_semaphore_free(st->ready), 0);
}

/* Spawns FREE_N members that wait forever; returns once all run. */
static int64_t spawn_waiting_members(void *arg) {
    free_state *st = arg;
    for (int i = 0; i < FREE_N; i++)
        cr_assert_eq(zk_group_spawn(st->g, waits_for_go, &st->a, NULL, NULL),
                     0);
    cr_assert_eq(zk_semaphore_acquire(st->started, FREE_N), 0);
    return 0;
}

static int64_t free_root(void *arg) {
    (void)arg;
    free_state st;
    free_state_init(&st);
    spawn_waiting_members(&st);
    /* One member finished and was never joined: released by free. */
    cr_assert_eq(zk_group_spawn(st.g, returns_arg, NULL, NULL, NULL), 0);
    cr_assert_eq(zk_group_free(st.g), 0);
    cr_assert_eq(atomic_load(&st.cleanups), FREE_N,
                 "free returned after every member's cleanup");
    free_state_destroy(&st);
    return 0;
}

ZK_TEST(group, free_cancels_running_members_and_waits_for_them) {
    zk_test_run(free_root, NULL);
}

/* A task that is aborted while it owns a group still waits for the
 * members when it frees the group. */
static int64_t owner_aborted(void *arg) {
    free_state *st = arg;
    spawn_waiting_members(st);
    cr_assert_eq(zk_semaphore_release(st->ready, 1), 0);
    cr_assert_eq(zk_semaphore_acquire(st->never, 1), -ECANCELED);
    cr_assert_eq(zk_group_free(st->g), 0);
    return atomic_load(&st->cleanups);
}

static int64_t aborted_owner_root(void *arg) {
    (void)arg;
    free_state st;
    free_state_init(&st);
    zk_task *owner;
    cr_assert_eq(zk_spawn(owner_aborted, &st, &owner), 0);
    cr_assert_eq(zk_semaphore_acquire(st.ready, 1), 0);
    cr_assert_eq(zk_task_abort(owner), 0);
    int64_t r = -1;
    cr_assert_eq(zk_task_join(&owner, &r), -ECANCELED);
    cr_assert_eq(r, FREE_N, "the owner's free waited for every member");
    free_state_destroy(&st);
    return 0;
}

ZK_TEST(group, free_from_an_aborted_task_still_waits_for_the_members) {
    zk_test_run(aborted_owner_root, NULL);
}

/* Inside a cancelled cancel scope the joins fail at once and take
 * nothing, but free still waits for the members. */
static int64_t scoped_free_root(void *arg) {
    (void)arg;
    free_state st;
    free_state_init(&st);
    spawn_waiting_members(&st);
    uint64_t mid;
    cr_assert_eq(zk_group_spawn(st.g, returns_arg, (void *)5, NULL, &mid), 0);
    zk_scope sc = ZK_SCOPE_INIT;
    cr_assert_eq(zk_scope_enter(&sc, ZK_INSTANT_MAX), 0);
    cr_assert_eq(zk_scope_cancel(&sc), 0);
    uint64_t id = 1;
    cr_assert_eq(zk_group_join_next(st.g, NULL, &id), -ECANCELED);
    cr_assert_eq(id, 0, "nothing taken");
    cr_assert_eq(zk_group_join_all(st.g), -ECANCELED);
    cr_assert_eq(zk_group_len(st.g), FREE_N + 1);
    cr_assert_eq(zk_group_free(st.g), 0);
    cr_assert_eq(atomic_load(&st.cleanups), FREE_N,
                 "free waited for the members all the same");
    cr_assert_eq(zk_scope_exit(&sc), -ECANCELED);
    free_state_destroy(&st);
    return 0;
}

ZK_TEST(group, free_in_a_cancelled_scope_still_waits_for_the_members) {
    zk_test_run(scoped_free_root, NULL);
}

/* From a plain thread: on a multi-thread runtime free blocks while the
 * workers finish the members; a current-thread runtime's members only run
 * while it is driven, so there the runtime's shutdown ends them and the
 * group, which outlives its runtime, is freed after. */
ZK_TEST(group, free_from_a_plain_thread) {
    zk_runtime *rt = zk_test_runtime();
    free_state st;
    free_state_init(&st);
    cr_assert_eq(zk_block_on(rt, spawn_waiting_members, &st, NULL), 0);
    cr_assert_eq(zk_group_len(st.g), FREE_N);
#if ZK_TEST_MT
    cr_assert_eq(zk_group_free(st.g), 0);
    cr_assert_eq(atomic_load(&st.cleanups), FREE_N);
    cr_assert_eq(zk_runtime_free(rt), 0);
#else
    cr_assert_eq(zk_runtime_free(rt), 0);
    cr_assert_eq(atomic_load(&st.cleanups), FREE_N);
    cr_assert_eq(zk_group_len(st.g), FREE_N, "finished, never joined");
    int64_t r;
    cr_assert_eq(zk_group_try_join_next(st.g, &r, NULL), -ECANCELED,
                 "shutdown aborted it");
    cr_assert_eq(r, CANCELLED_RESULT);
    cr_assert_eq(zk_group_free(st.g), 0);
#endif
    free_state_destroy(&st);
}

/* A join waiting on the group makes free refuse (-EBUSY), with nothing
 * done. */
static int64_t busy_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    member_arg a = {NULL, NULL, NULL, 4};
    cr_assert_eq(zk_semaphore_new(0, &a.go), 0);
    cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, NULL), 0);
    counter_waker cw;
    atomic_init(&cw.wakes, 0);
    int64_t out;
    zk_group_join_future jf;
    zk_group_join_next_future_init(&jf, g, NULL, NULL);
    cr_assert_not(poll1(&jf.base, &cw, &out), "queued");
    cr_assert_eq(zk_group_free(g), -EBUSY);
    cr_assert_eq(zk_group_spawn(g, returns_arg, NULL, NULL, NULL), 0,
                 "the refused free did not close the group");
    zk_future_drop(&jf.base);
    cr_assert_eq(zk_semaphore_release(a.go, 1), 0);
    int64_t r;
    cr_assert_eq(zk_group_join_next(g, &r, NULL), 0);
    cr_assert_eq(zk_group_join_next(g, &r, NULL), 0);
    cr_assert_eq(zk_group_free(g), 0);
    cr_assert_eq(zk_semaphore_free(a.go), 0);
    return 0;
}

ZK_TEST(group, free_refuses_while_a_join_waits) {
    zk_test_run(busy_root, NULL);
}

/* A member that would wait for itself gets -EDEADLK. */
typedef struct self_state {
    zk_group *g;
    zk_notify *done;
} self_state;

static int64_t joins_own_group(void *arg) {
    self_state *st = arg;
    int64_t all = zk_group_join_all(st->g); /* joins the sibling first */
    int next = zk_group_join_next(st->g, NULL, NULL);
    int fr = zk_group_free(st->g);
    zk_notify_one(st->done);
    return all == -EDEADLK && next == -EDEADLK && fr == -EDEADLK ? 1 : 0;
}

static int64_t self_join_root(void *arg) {
    (void)arg;
    self_state st;
    cr_assert_eq(zk_group_new(&st.g), 0);
    cr_assert_eq(zk_notify_new(&st.done), 0);
    member_arg sib = {NULL, NULL, NULL, 3};
    cr_assert_eq(zk_semaphore_new(0, &sib.go), 0);
    cr_assert_eq(zk_group_spawn(st.g, waits_for_go, &sib, NULL, NULL), 0);
    uint64_t me;
    cr_assert_eq(zk_group_spawn(st.g, joins_own_group, &st, NULL, &me), 0);
    cr_assert_eq(zk_semaphore_release(sib.go, 1), 0);
    cr_assert_eq(zk_notify_wait(st.done), 0);
    int64_t r;
    uint64_t id;
    cr_assert_eq(zk_group_join_next(st.g, &r, &id), 0);
    cr_assert_eq(id, me, "the sibling was joined by the member");
    cr_assert_eq(r, 1, "join_all, join_next and free refused");
    cr_assert_eq(zk_group_free(st.g), 0);
    cr_assert_eq(zk_notify_free(st.done), 0);
    cr_assert_eq(zk_semaphore_free(sib.go), 0);
    return 0;
}

ZK_TEST(group, a_member_waiting_for_itself_gets_edeadlk) {
    zk_test_run(self_join_root, NULL);
}

typedef struct late_self {
    zk_group *g;
    zk_semaphore *queued;
    int64_t result; /* of the member joined */
} late_self;

/* Joins the next member of the group, saying when it waits; gives up
 * (-ETIMEDOUT) only if a bug keeps it waiting. */
static void tell_semaphore(void *ctx) {
    zk_semaphore_release(ctx, 1);
}

static int64_t joins_next_queued(void *arg) {
    late_self *ls = arg;
    zk_group_join_future f;
    zk_group_join_next_future_init(&f, ls->g, &ls->result, NULL);
    zk_test_probe p = zk_test_probe_of(&f.base, tell_semaphore, ls->queued);
    return zk_await_until(&p.base, zk_now() + ZK_SEC(10));
}

/* A member's join that waited behind another join: once that one took
 * the other member, the waiting member is the only one running, with
 * nothing to join but itself, and its join ends with -EDEADLK then (as it
 * would have at its start) instead of waiting forever. */
static int64_t late_self_join_root(void *arg) {
    (void)arg;
    late_self outside = {0}, inside = {0};
    cr_assert_eq(zk_group_new(&outside.g), 0);
    cr_assert_eq(zk_semaphore_new(0, &outside.queued), 0);
    inside.g = outside.g;
    inside.queued = outside.queued;
    member_arg sib = {NULL, NULL, NULL, 2};
    cr_assert_eq(zk_semaphore_new(0, &sib.go), 0);
    cr_assert_eq(zk_group_spawn(outside.g, waits_for_go, &sib, NULL, NULL), 0);
    zk_task *h;
    cr_assert_eq(zk_spawn(joins_next_queued, &outside, &h), 0);
    cr_assert_eq(zk_semaphore_acquire(outside.queued, 1), 0);
    uint64_t me;
    cr_assert_eq(
        zk_group_spawn(outside.g, joins_next_queued, &inside, NULL, &me), 0);
    cr_assert_eq(zk_semaphore_acquire(outside.queued, 1), 0); /* behind h */
    cr_assert_eq(zk_semaphore_release(sib.go, 1), 0);
    int64_t r = -1;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 0);
    cr_assert_eq(outside.result, 2, "the join first in line got the sibling");
    uint64_t id = 0;
    cr_assert_eq(zk_group_join_next(outside.g, &r, &id), 0);
    cr_assert_eq(id, me);
    cr_assert_eq(r, -EDEADLK, "the member's own join was refused");
    cr_assert_eq(zk_group_join_next(outside.g, &r, &id), -ECHILD);
    cr_assert_eq(zk_group_free(outside.g), 0);
    cr_assert_eq(zk_semaphore_free(outside.queued), 0);
    cr_assert_eq(zk_semaphore_free(sib.go), 0);
    return 0;
}

ZK_TEST(group, a_member_queued_behind_another_join_learns_it_waits_for_itself) {
    zk_test_run(late_self_join_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* deadlines and cancelled joins lose nothing                             */
/* ---------------------------------------------------------------------- */

static int64_t deadline_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    member_arg a = {NULL, NULL, NULL, 11};
    cr_assert_eq(zk_semaphore_new(0, &a.go), 0);
    uint64_t mid;
    cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, &mid), 0);
    int64_t r = -1;
    uint64_t id = 8;
    zk_instant t0 = zk_now();
    cr_assert_eq(zk_group_join_next_until(g, &r, &id, t0 + ZK_MS(20)),
                 -ETIMEDOUT);
    cr_assert_geq(zk_now() - t0, ZK_MS(20), "not before the deadline");
    cr_assert_eq(id, 0, "nothing taken");
    cr_assert_eq(zk_group_join_all_until(g, zk_now() + ZK_MS(20)), -ETIMEDOUT);
    cr_assert_eq(zk_group_len(g), 1);
    cr_assert_eq(zk_semaphore_release(a.go, 1), 0);
    cr_assert_eq(zk_group_join_next_until(g, &r, &id, zk_now() + ZK_SEC(60)), 0,
                 "the member is still there");
    cr_assert_eq(id, mid);
    cr_assert_eq(r, 11);
    cr_assert_eq(zk_group_join_next_until(g, &r, &id, zk_now() + ZK_SEC(60)),
                 -ECHILD);
    cr_assert_eq(zk_group_free(g), 0);
    cr_assert_eq(zk_semaphore_free(a.go), 0);
    return 0;
}

ZK_TEST(group, a_deadline_passes_and_the_member_stays_for_the_next_join) {
    cr_assert_eq(zk_test_run_paused(deadline_root, NULL), 0);
}

/* A member finishing as the deadline passes, many times over: it is
 * either joined, or left for the next join; never lost. */
static int64_t sleeps_1ms(void *arg) {
    zk_sleep(ZK_MS(1));
    return (int64_t)(intptr_t)arg;
}

static int64_t deadline_race_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    int timed_out = 0;
    for (intptr_t i = 0; i < 300; i++) {
        uint64_t mid, id;
        int64_t r;
        cr_assert_eq(zk_group_spawn(g, sleeps_1ms, (void *)i, NULL, &mid), 0);
        int rc = zk_group_join_next_until(g, &r, &id, zk_now() + ZK_MS(1));
        if (rc == -ETIMEDOUT) {
            timed_out++;
            cr_assert_eq(id, 0);
            rc = zk_group_join_next(g, &r, &id);
        }
        cr_assert_eq(rc, 0, "round %d: %s", (int)i, zk_strerror(rc));
        cr_assert_eq(id, mid);
        cr_assert_eq(r, i);
        cr_assert_eq(zk_group_len(g), 0);
    }
    cr_assert_eq(zk_group_free(g), 0);
    return timed_out;
}

ZK_TEST(group, a_member_racing_a_deadline_is_never_lost) {
    zk_test_run(deadline_race_root, NULL);
}

/* The joining task is aborted while it waits: it takes nothing, and the
 * member is there for the next join. */
typedef struct joiner_state {
    zk_group *g;
    zk_semaphore *queued;
} joiner_state;

static int64_t joins_queued(void *arg) {
    joiner_state *st = arg;
    uint64_t id = 1;
    zk_group_join_future jf;
    zk_group_join_next_future_init(&jf, st->g, NULL, &id);
    first_wake fw = {{&first_wake_ops}, &jf.base, semaphore_hook,
                     st->queued,        0,        false};
    int64_t rc = zk_await(&fw.base);
    cr_assert_eq(rc, -ECANCELED);
    zk_future_drop(&jf.base);
    return (int64_t)id; /* untouched: 1 */
}

static int64_t aborted_joiner_root(void *arg) {
    (void)arg;
    joiner_state st;
    cr_assert_eq(zk_group_new(&st.g), 0);
    cr_assert_eq(zk_semaphore_new(0, &st.queued), 0);
    member_arg a = {NULL, NULL, NULL, 21};
    cr_assert_eq(zk_semaphore_new(0, &a.go), 0);
    uint64_t mid;
    cr_assert_eq(zk_group_spawn(st.g, waits_for_go, &a, NULL, &mid), 0);
    zk_task *j;
    cr_assert_eq(zk_spawn(joins_queued, &st, &j), 0);
    cr_assert_eq(zk_semaphore_acquire(st.queued, 1), 0, "the join waits");
    cr_assert_eq(zk_task_abort(j), 0);
    int64_t r;
    cr_assert_eq(zk_task_join(&j, &r), -ECANCELED);
    cr_assert_eq(r, 1);

    cr_assert_eq(zk_semaphore_release(a.go, 1), 0);
    uint64_t id;
    cr_assert_eq(zk_group_join_next(st.g, &r, &id), 0);
    cr_assert_eq(id, mid, "the member was not lost");
    cr_assert_eq(r, 21);
    cr_assert_eq(zk_group_free(st.g), 0);
    cr_assert_eq(zk_semaphore_free(st.queued), 0);
    cr_assert_eq(zk_semaphore_free(a.go), 0);
    return 0;
}

ZK_TEST(group, a_join_aborted_while_waiting_takes_nothing) {
    zk_test_run(aborted_joiner_root, NULL);
}

/* A member handed to a join that is dropped before it looked goes to the
 * next join waiting, or back to the group. */
typedef struct handoff_state {
    zk_semaphore *go;
    zk_group_join_future *second;
    counter_waker *cw;
} handoff_state;

static void queue_second_then_go(void *ctx) {
    handoff_state *st = ctx;
    int64_t out;
    cr_assert_not(poll1(&st->second->base, st->cw, &out), "queued second");
    zk_semaphore_release(st->go, 1);
}

static int64_t handoff_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    member_arg a = {NULL, NULL, NULL, 31};
    cr_assert_eq(zk_semaphore_new(0, &a.go), 0);
    uint64_t mid;
    cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, &mid), 0);

    counter_waker cw;
    atomic_init(&cw.wakes, 0);
    int64_t r1 = -1, r2 = -1;
    uint64_t id1 = 0, id2 = 0;
    zk_group_join_future first, second;
    zk_group_join_next_future_init(&first, g, &r1, &id1);
    zk_group_join_next_future_init(&second, g, &r2, &id2);
    handoff_state st = {a.go, &second, &cw};
    first_wake fw = {
        {&first_wake_ops}, &first.base, queue_second_then_go, &st, 0, false};
    /* Sleeps until the member is handed to `first`. */
    cr_assert_eq(zk_await(&fw.base), 0);
    cr_assert_eq(atomic_load(&cw.wakes), 0, "handed to the first join");
    cr_assert_eq(zk_group_len(g), 1, "handed, not joined");
    zk_future_drop(&first.base);
    cr_assert_eq(id1, 0, "the dropped join saw nothing");
    cr_assert_eq(atomic_load(&cw.wakes), 1, "passed on to the second");
    int64_t out;
    cr_assert(poll1(&second.base, &cw, &out));
    cr_assert_eq(out, 0);
    cr_assert_eq(id2, mid);
    cr_assert_eq(r2, 31);
    zk_future_drop(&second.base);

    /* With nobody else waiting it goes back to the group. */
    cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, &mid), 0);
    zk_group_join_next_future_init(&first, g, &r1, &id1);
    fw = (first_wake){
        {&first_wake_ops}, &first.base, semaphore_hook, a.go, 0, false};
    cr_assert_eq(zk_await(&fw.base), 0);
    zk_future_drop(&first.base);
    cr_assert_eq(zk_group_len(g), 1);
    cr_assert_eq(zk_group_try_join_next(g, &r1, &id1), 0);
    cr_assert_eq(id1, mid);
    cr_assert_eq(zk_group_free(g), 0);
    cr_assert_eq(zk_semaphore_free(a.go), 0);
    return 0;
}

ZK_TEST(group, a_member_handed_to_a_dropped_join_goes_to_the_next) {
    zk_test_run(handoff_root, NULL);
}

/* ---------------------------------------------------------------------- */
/* the future forms                                                       */
/* ---------------------------------------------------------------------- */

/* A future task's poll cannot block: the blocking-style calls refuse, and
 * so does free while members run. Output: 1 when both refused. */
typedef struct refuses {
    zk_future base;
    zk_group *g;
} refuses;

static zk_poll refuses_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)cx;
    zk_group *g = ((refuses *)f)->g;
    bool ok = zk_group_join_next(g, NULL, NULL) == -EPERM &&
              zk_group_join_all(g) == -EPERM && zk_group_free(g) == -EPERM;
    *out = ok;
    return ZK_READY;
}
static const zk_future_ops refuses_ops = {refuses_poll, NULL};

/* Frees the group from a future task's poll, once nothing runs. */
static zk_poll frees_poll(zk_future *f, zk_context *cx, int64_t *out) {
    (void)cx;
    *out = zk_group_free(((refuses *)f)->g);
    return ZK_READY;
}
static const zk_future_ops frees_ops = {frees_poll, NULL};

static int64_t futures_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    member_arg a = {NULL, NULL, NULL, 41};
    cr_assert_eq(zk_semaphore_new(0, &a.go), 0);
    enum { N = 5 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(zk_group_spawn(g, waits_for_go, &a, NULL, NULL), 0);

    zk_task *h;
    int64_t r;
    refuses rf = {{&refuses_ops}, g};
    cr_assert_eq(zk_spawn_future(NULL, &rf.base, sizeof rf, &h), 0);
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 1, "a future task's poll is refused");

    /* A combinator: a timeout around join_next. */
    uint64_t id = 0;
    zk_group_join_future jf;
    zk_group_join_next_future_init(&jf, g, &r, &id);
    zk_timeout_future tf;
    zk_timeout_future_init(&tf, &jf.base, ZK_MS(10));
    cr_assert_eq(zk_await(&tf.base), -ETIMEDOUT);
    cr_assert_eq(id, 0);
    cr_assert_eq(zk_semaphore_release(a.go, 1), 0);
    zk_group_join_next_future_init(&jf, g, &r, &id);
    cr_assert_eq(zk_await_until(&jf.base, zk_now() + ZK_SEC(60)), 0);
    cr_assert_neq(id, 0);
    cr_assert_eq(r, 41);

    /* A future task joins the rest. */
    zk_group_join_all_future af;
    zk_group_join_all_future_init(&af, g);
    cr_assert_eq(zk_spawn_future(NULL, &af.base, sizeof af, &h), 0);
    for (int i = 1; i < N; i++)
        cr_assert_eq(zk_semaphore_release(a.go, 1), 0);
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, N - 1);
    cr_assert_eq(zk_group_len(g), 0);

    /* With nothing running a future task may free the group. */
    cr_assert_eq(zk_group_spawn(g, returns_arg, NULL, NULL, NULL), 0);
    zk_group_join_next_future_init(&jf, g, &r, &id);
    first_wake fw = {{&first_wake_ops}, &jf.base, NULL, NULL, 0, false};
    int64_t w = zk_await(&fw.base); /* until it finished */
    if (w == 1)
        cr_assert_eq(fw.inner_out, 0);
    else
        zk_future_drop(&jf.base); /* handed, unseen: back to the group */
    cr_assert_eq(zk_group_len(g), w == 1 ? 0 : 1);
    refuses fr = {{&frees_ops}, g};
    cr_assert_eq(zk_spawn_future(NULL, &fr.base, sizeof fr, &h), 0);
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 0, "freed");
    cr_assert_eq(zk_semaphore_free(a.go), 0);
    return 0;
}

ZK_TEST(group, future_forms_compose_and_future_tasks_are_refused_waits) {
    cr_assert_eq(zk_test_run_paused(futures_root, NULL), 0);
}

/* A select over the joins of two groups: the losing join is dropped and
 * takes nothing. */
static int64_t select_root(void *arg) {
    (void)arg;
    zk_group *ga, *gb;
    cr_assert_eq(zk_group_new(&ga), 0);
    cr_assert_eq(zk_group_new(&gb), 0);
    member_arg a = {NULL, NULL, NULL, 71}, b = {NULL, NULL, NULL, 72};
    cr_assert_eq(zk_semaphore_new(0, &a.go), 0);
    cr_assert_eq(zk_semaphore_new(0, &b.go), 0);
    uint64_t ida, idb;
    cr_assert_eq(zk_group_spawn(ga, waits_for_go, &a, NULL, &ida), 0);
    cr_assert_eq(zk_group_spawn(gb, waits_for_go, &b, NULL, &idb), 0);
    int64_t ra = -1, rb = -1;
    uint64_t ja_id = 0, jb_id = 0;
    zk_group_join_future ja, jb;
    zk_group_join_next_future_init(&ja, ga, &ra, &ja_id);
    zk_group_join_next_future_init(&jb, gb, &rb, &jb_id);
    cr_assert_eq(zk_semaphore_release(b.go, 1), 0);
    zk_future *both[2] = {&ja.base, &jb.base};
    int64_t out = -1;
    cr_assert_eq(zk_select(both, 2, &out), 1, "group b's member finished");
    cr_assert_eq(out, 0);
    cr_assert_eq(jb_id, idb);
    cr_assert_eq(rb, 72);
    cr_assert_eq(ja_id, 0, "the losing join took nothing");
    cr_assert_eq(zk_group_len(ga), 1);
    cr_assert_eq(zk_semaphore_release(a.go, 1), 0);
    cr_assert_eq(zk_group_join_next(ga, &ra, &ja_id), 0);
    cr_assert_eq(ja_id, ida);
    cr_assert_eq(ra, 71);
    cr_assert_eq(zk_group_free(ga), 0);
    cr_assert_eq(zk_group_free(gb), 0);
    cr_assert_eq(zk_semaphore_free(a.go), 0);
    cr_assert_eq(zk_semaphore_free(b.go), 0);
    return 0;
}

ZK_TEST(group, a_select_over_two_groups_loses_no_member) {
    zk_test_run(select_root, NULL);
}

/* Future tasks are members too: cancelling one drops its future. */
static int64_t future_members_root(void *arg) {
    (void)arg;
    zk_group *g;
    cr_assert_eq(zk_group_new(&g), 0);
    zk_ready_future rf = zk_ready(5);
    uint64_t rid, gid;
    cr_assert_eq(zk_group_spawn_future(g, &rf.base, sizeof rf, &rid), 0);
    zk_gate gate;
    zk_gate_init(&gate);
    atomic_int drops;
    atomic_init(&drops, 0);
    zk_gate_wait gw = zk_gate_waiter(&gate, &drops);
    cr_assert_eq(zk_group_spawn_future(g, &gw.base, sizeof gw, &gid), 0);
    int64_t r;
    uint64_t id;
    cr_assert_eq(zk_group_join_next(g, &r, &id), 0);
    cr_assert_eq(id, rid);
    cr_assert_eq(r, 5);
    cr_assert_eq(zk_group_cancel(g), 0);
    cr_assert_eq(zk_group_join_next(g, &r, &id), -ECANCELED);
    cr_assert_eq(id, gid);
    cr_assert_eq(r, -ECANCELED, "a dropped future has no output");
    cr_assert_eq(atomic_load(&drops), 1, "its future was dropped");
    cr_assert_eq(zk_group_spawn_future(g, &rf.base, sizeof rf, NULL), -EPIPE);
    cr_assert_eq(zk_group_free(g), 0);

    /* Freed with a future member waiting: dropped, and waited for. */
    cr_assert_eq(zk_group_new(&g), 0);
    gw = zk_gate_waiter(&gate, &drops);
    cr_assert_eq(zk_group_spawn_future(g, &gw.base, sizeof gw, NULL), 0);
    cr_assert_eq(zk_group_free(g), 0);
    cr_assert_eq(atomic_load(&drops), 2);
    zk_gate_destroy(&gate);

    cr_assert_eq(zk_group_spawn_future(NULL, &rf.base, sizeof rf, NULL),
                 -EINVAL);
    cr_assert_eq(zk_group_new(&g), 0);
    cr_assert_eq(zk_group_spawn_future(g, NULL, sizeof rf, NULL), -EINVAL);
    cr_assert_eq(zk_group_spawn_future(g, &rf.base, 1, NULL), -EINVAL);
    cr_assert_eq(zk_group_len(g), 0);
    cr_assert_eq(zk_group_free(g), 0);
    return 0;
}

ZK_TEST(group, future_tasks_are_members_too) {
    zk_test_run(future_members_root, NULL);
}

#if ZK_TEST_MT
/* A plain thread joins members that run on the workers: it blocks,
 * with and without a deadline. */
typedef struct plain_state {
    zk_group *g;
    member_arg a;
} plain_state;

static int64_t spawns_ten(void *arg) {
    plain_state *st = arg;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(zk_group_spawn(st->g, waits_for_go, &st->a, NULL, NULL),
                     0);
    return 0;
}

ZK_TEST(group, a_plain_thread_joins_members_running_on_workers) {
    zk_runtime *rt = zk_test_runtime();
    plain_state st = {NULL, {NULL, NULL, NULL, 51}};
    cr_assert_eq(zk_group_new(&st.g), 0);
    cr_assert_eq(zk_semaphore_new(0, &st.a.go), 0);
    cr_assert_eq(zk_block_on(rt, spawns_ten, &st, NULL), 0);
    int64_t r;
    uint64_t id = 1;
    cr_assert_eq(zk_group_join_next_until(st.g, &r, &id, zk_now() + ZK_MS(10)),
                 -ETIMEDOUT);
    cr_assert_eq(id, 0);
    cr_assert_eq(zk_semaphore_release(st.a.go, 10), 0);
    cr_assert_eq(zk_group_join_next(st.g, &r, &id), 0);
    cr_assert_neq(id, 0);
    cr_assert_eq(r, 51);
    cr_assert_eq(zk_group_join_all(st.g), 9);
    cr_assert_eq(zk_group_free(st.g), 0);
    cr_assert_eq(zk_semaphore_free(st.a.go), 0);
    cr_assert_eq(zk_runtime_free(rt), 0);
}
#endif

/* ---------------------------------------------------------------------- */
/* stress                                                                 */
/* ---------------------------------------------------------------------- */

enum { STRESS_N = 10000, STRESS_JOINERS = 3 };

typedef struct stress {
    zk_group *g;
    uint64_t ids[STRESS_N];
    atomic_int seen[STRESS_N];
    atomic_int joined;
    atomic_int aborted;
    atomic_int bad;
} stress;

static int64_t stress_member(void *arg) {
    intptr_t i = (intptr_t)arg;
    for (int k = 0; k < (int)(i % 4); k++)
        zk_yield();
    return i;
}

static int64_t stress_joiner(void *arg) {
    stress *s = arg;
    for (;;) {
        int64_t r;
        uint64_t id;
        int rc = zk_group_join_next(s->g, &r, &id);
        if (rc == -ECHILD)
            return 0;
        if (rc == -ECANCELED && id != 0)
            atomic_fetch_add(&s->aborted, 1);
        else if (rc != 0) {
            atomic_fetch_add(&s->bad, 1);
            return rc;
        }
        if (r < 0 || r >= STRESS_N || s->ids[r] != id ||
            atomic_fetch_add(&s->seen[r], 1) != 0)
            atomic_fetch_add(&s->bad, 1);
        atomic_fetch_add(&s->joined, 1);
    }
}

static int64_t stress_root(void *arg) {
    bool cancel = arg != NULL;
    stress *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    cr_assert_eq(zk_group_new(&s->g), 0);
    zk_spawn_opts o = {.stack_size = ZK_STACK_MIN, .name = "member"};
    for (intptr_t i = 0; i < STRESS_N; i++) {
        cr_assert_eq(
            zk_group_spawn(s->g, stress_member, (void *)i, &o, &s->ids[i]), 0);
        if (cancel && i == STRESS_N / 2)
            cr_assert_eq(zk_group_cancel(s->g), 0);
        if (cancel && i >= STRESS_N / 2)
            break;
    }
    int n = cancel ? STRESS_N / 2 + 1 : STRESS_N;
    zk_task *h[STRESS_JOINERS - 1];
    for (int j = 0; j < STRESS_JOINERS - 1; j++)
        cr_assert_eq(zk_spawn(stress_joiner, s, &h[j]), 0);
    cr_assert_eq(stress_joiner(s), 0);
    cr_assert_eq(zk_test_join_all(h, STRESS_JOINERS - 1), 0);
    cr_assert_eq(atomic_load(&s->bad), 0);
    cr_assert_eq(atomic_load(&s->joined), n, "every member joined");
    for (int i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&s->seen[i]), 1, "member %d once", i);
    if (!cancel)
        cr_assert_eq(atomic_load(&s->aborted), 0);
    cr_assert_eq(zk_group_len(s->g), 0);
    cr_assert_eq(zk_group_free(s->g), 0);
    free(s);
    return 0;
}

ZK_TEST(group, stress_ten_thousand_members_each_joined_once) {
    zk_test_run(stress_root, NULL);
}

ZK_TEST(group, stress_cancel_while_members_finish_and_joins_race) {
    zk_test_run(stress_root, (void *)1);
}

/* Groups freed while their members finish, over and over. */
static int64_t free_race_root(void *arg) {
    (void)arg;
    for (int round = 0; round < 200; round++) {
        zk_group *g;
        cr_assert_eq(zk_group_new(&g), 0);
        for (intptr_t i = 0; i < 20; i++)
            cr_assert_eq(
                zk_group_spawn(g, stress_member, (void *)i, NULL, NULL), 0);
        if (round % 2)
            zk_yield();
        if (round % 3 == 0) {
            int64_t r;
            zk_group_join_next(g, &r, NULL);
        }
        cr_assert_eq(zk_group_free(g), 0);
    }
    return 0;
}

ZK_TEST(group, stress_free_while_members_finish) {
    zk_test_run(free_race_root, NULL);
}
