/* test_future.c - wakers, contexts, hand-polled futures, error names. */
#include "helpers.h"

ZK_SUITE(future);

/* A waker that counts what is done to it. */
typedef struct counting {
    atomic_int clones, wakes, drops;
} counting;

static zk_waker counting_clone(const void *d);
static void counting_wake(const void *d) {
    atomic_fetch_add(&((counting *)d)->wakes, 1);
    atomic_fetch_add(&((counting *)d)->drops, 1);
}
static void counting_wake_by_ref(const void *d) {
    atomic_fetch_add(&((counting *)d)->wakes, 1);
}
static void counting_drop(const void *d) {
    atomic_fetch_add(&((counting *)d)->drops, 1);
}
static const zk_waker_ops counting_ops = {counting_clone, counting_wake,
                                          counting_wake_by_ref, counting_drop};
static zk_waker counting_clone(const void *d) {
    atomic_fetch_add(&((counting *)d)->clones, 1);
    return zk_waker_new(d, &counting_ops);
}

ZK_TEST(future, waker_operations_reach_the_ops) {
    counting c = {0};
    zk_waker w = zk_waker_new(&c, &counting_ops);
    zk_waker w2 = zk_waker_clone(&w);
    cr_assert_eq(atomic_load(&c.clones), 1);
    cr_assert(zk_waker_will_wake(&w, &w2));
    zk_waker_wake_by_ref(&w2);
    cr_assert_eq(atomic_load(&c.wakes), 1);
    zk_waker_wake(&w2);
    cr_assert(zk_waker_is_empty(&w2), "wake consumes the waker");
    cr_assert_eq(atomic_load(&c.wakes), 2);
    zk_waker_drop(&w);
    cr_assert(zk_waker_is_empty(&w));
    cr_assert_eq(atomic_load(&c.drops), 2);
    /* Empty wakers are no-ops everywhere. */
    zk_waker_wake(&w);
    zk_waker_drop(&w);
    zk_waker_wake_by_ref(&w);
    zk_waker_wake(NULL);
    zk_waker_drop(NULL);
    zk_waker_wake_by_ref(NULL);
    zk_waker e = zk_waker_clone(&w);
    cr_assert(zk_waker_is_empty(&e));
    cr_assert_eq(atomic_load(&c.drops), 2);
    cr_assert_not(zk_waker_will_wake(&w, &w));
    cr_assert_not(zk_waker_will_wake(NULL, &w));
}

ZK_TEST(future, noop_waker_can_be_used_freely) {
    zk_waker w = zk_waker_noop();
    zk_waker c = zk_waker_clone(&w);
    zk_waker_wake_by_ref(&c);
    zk_waker_wake(&c);
    zk_waker_drop(&w);
    cr_assert(zk_waker_is_empty(&w));
}

typedef struct two_step {
    zk_future base;
    int polls;
    int dropped;
} two_step;

static zk_poll two_step_poll(zk_future *f, zk_context *cx, int64_t *out) {
    two_step *s = (two_step *)f;
    if (s->polls++ == 0) {
        zk_waker_wake_by_ref(zk_context_waker(cx));
        return ZK_PENDING;
    }
    *out = 42;
    return ZK_READY;
}
static void two_step_drop(zk_future *f) {
    ((two_step *)f)->dropped++;
}
static const zk_future_ops two_step_ops = {two_step_poll, two_step_drop};

ZK_TEST(future, poll_by_hand_with_a_counting_waker) {
    counting c = {0};
    zk_waker w = zk_waker_new(&c, &counting_ops);
    zk_context cx;
    zk_context_init(&cx, &w);
    two_step s = {{&two_step_ops}, 0, 0};
    int64_t out = 0;
    cr_assert_eq(zk_future_poll(&s.base, &cx, &out), ZK_PENDING);
    cr_assert_eq(atomic_load(&c.wakes), 1, "the future asked to be polled");
    cr_assert_eq(zk_future_poll(&s.base, &cx, &out), ZK_READY);
    cr_assert_eq(out, 42);
    zk_future_drop(&s.base);
    cr_assert_eq(s.dropped, 1);
    zk_future_drop(NULL);
}

ZK_TEST(future, poll_rejects_bad_arguments) {
    zk_waker w = zk_waker_noop();
    zk_context cx = {&w};
    int64_t out = 0;
    cr_assert_eq(zk_future_poll(NULL, &cx, &out), ZK_READY);
    cr_assert_eq(out, -EINVAL);
    zk_future nopoll = {NULL};
    out = 0;
    cr_assert_eq(zk_future_poll(&nopoll, &cx, &out), ZK_READY);
    cr_assert_eq(out, -EINVAL);
    two_step s = {{&two_step_ops}, 0, 0};
    out = 0;
    cr_assert_eq(zk_future_poll(&s.base, NULL, &out), ZK_READY);
    cr_assert_eq(out, -EINVAL);
    cr_assert_eq(zk_future_poll(&s.base, &cx, NULL), ZK_READY);
    cr_assert_eq(s.polls, 0, "a rejected poll never reaches the future");
}

ZK_TEST(future, await_outside_a_task_is_refused) {
    two_step s = {{&two_step_ops}, 0, 0};
    cr_assert_eq(zk_await(&s.base), -EPERM);
    cr_assert_eq(s.polls, 0);
    cr_assert_eq(s.dropped, 0, "a refused await leaves the future alone");
    cr_assert_eq(zk_await(NULL), -EINVAL);
    cr_assert_eq(zk_yield(), -EPERM);
    cr_assert_not(zk_in_task());
    cr_assert_not(zk_in_coroutine());
    cr_assert_eq(zk_task_current_id(), 0);
    cr_assert_not(zk_task_cancelled());
    cr_assert_null(zk_runtime_current());
}

static int64_t await_two_step(void *arg) {
    (void)arg;
    two_step s = {{&two_step_ops}, 0, 0};
    int64_t v = zk_await(&s.base);
    return v == 42 && s.polls == 2 && s.dropped == 1 ? 1 : 0;
}

ZK_TEST(future, await_polls_until_ready_then_drops) {
    cr_assert_eq(zk_test_run(await_two_step, NULL), 1);
}

/* A future task that composes a yield future: pending once, then ready
 * with the number of times it was pending. */
typedef struct yielder {
    zk_future base;
    zk_yield_future y;
    int pendings;
} yielder;

static zk_poll yielder_poll(zk_future *f, zk_context *cx, int64_t *out) {
    yielder *s = (yielder *)f;
    int64_t ignored;
    if (zk_future_poll(&s->y.base, cx, &ignored) == ZK_PENDING) {
        s->pendings++;
        return ZK_PENDING;
    }
    *out = s->pendings;
    return ZK_READY;
}
static const zk_future_ops yielder_ops = {yielder_poll, NULL};

ZK_TEST(future, yield_future_composes_inside_a_future_task) {
    zk_runtime *rt = zk_test_runtime();
    yielder f = {{&yielder_ops}, {{NULL}, false}, 0};
    zk_yield_future_init(&f.y);
    int64_t result = -1;
    cr_assert_eq(zk_block_on_future(rt, &f.base, sizeof f, &result), 0);
    cr_assert_eq(result, 1, "pending exactly once, then ready");
    cr_assert_eq(zk_runtime_free(rt), 0);
}

ZK_TEST(future, every_returned_code_has_a_name_and_text) {
    /* Every code a public header names (include/zokio, grep for E[A-Z]). */
    int codes[] = {0,
                   -EINVAL,
                   -ENOMEM,
                   -EPERM,
                   -ECANCELED,
                   -ETIMEDOUT,
                   -ESHUTDOWN,
                   -EALREADY,
                   -EDEADLK,
                   -EBUSY,
                   -EAGAIN,
                   -ENOTSUP,
                   -E2BIG,
                   -EACCES,
                   -EADDRINUSE,
                   -EAFNOSUPPORT,
                   -EBADF,
                   -ECHILD,
                   -ECONNABORTED,
                   -ECONNREFUSED,
                   -ECONNRESET,
                   -EDESTADDRREQ,
                   -EEXIST,
                   -EFBIG,
                   -EIO,
                   -EISDIR,
                   -EMFILE,
                   -EMSGSIZE,
                   -ENAMETOOLONG,
                   -ENETUNREACH,
                   -ENFILE,
                   -ENOENT,
                   -ENOEXEC,
                   -ENOSPC,
                   -ENOSYS,
                   -ENOTCONN,
                   -ENOTDIR,
                   -ENOTEMPTY,
                   -ENOTSOCK,
                   -EOPNOTSUPP,
                   -EOVERFLOW,
                   -EPIPE,
                   -ESRCH,
                   -EXDEV,
                   -ENXIO,
                   -ESPIPE};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        cr_assert_str_neq(zk_strerror(codes[i]), "unknown error", "code %d",
                          codes[i]);
        cr_assert_str_neq(zk_err_name(codes[i]), "EUNKNOWN", "code %d",
                          codes[i]);
        cr_assert_str_eq(zk_strerror(codes[i]), zk_strerror(-codes[i]));
    }
    cr_assert_str_eq(zk_err_name(-ECANCELED), "ECANCELED");
    cr_assert_str_eq(zk_err_name(-EADDRINUSE), "EADDRINUSE");
    cr_assert_str_eq(zk_strerror(-123456), "unknown error");
    cr_assert_str_eq(zk_err_name(987654), "EUNKNOWN");
    cr_assert_str_eq(zk_version(), "0.1.0");
}
