/* test_stack.c - coroutine stacks: sizes, reuse, errno across suspension,
 * and stack overflows reported as such (guard page and red zone). */
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

ZK_SUITE(stack);

/* Uses about `bytes` of stack through recursion the compiler cannot
 * remove. */
static __attribute__((noinline)) int64_t use_stack(volatile char *prev,
                                                   size_t bytes) {
    volatile char frame[1024];
    frame[0] = prev ? prev[0] : 1;
    frame[1023] = frame[0];
    if (bytes <= sizeof frame)
        return frame[1023];
    return use_stack(frame, bytes - sizeof frame) + 1;
}

static int64_t uses_its_stack(void *arg) {
    return use_stack(NULL, (size_t)(intptr_t)arg) > 0;
}

static int64_t sizes_root(void *arg) {
    (void)arg;
    zk_spawn_opts big = {.stack_size = 4 * 1024 * 1024, .name = "big"};
    zk_task *h;
    /* 1 MiB of frames (four times the default stack; sanitizers double
     * frame sizes) fit in a 4 MiB stack. */
    cr_assert_eq(zk_spawn_ex(NULL, &big, uses_its_stack,
                             (void *)(intptr_t)(1024 * 1024), &h),
                 0);
    int64_t r = 0;
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 1);
    zk_spawn_opts small = {.stack_size = ZK_STACK_MIN};
    cr_assert_eq(
        zk_spawn_ex(NULL, &small, uses_its_stack, (void *)(intptr_t)4096, &h),
        0);
    cr_assert_eq(zk_task_join(&h, &r), 0);
    cr_assert_eq(r, 1);
    return 0;
}

ZK_TEST(stack, per_spawn_stack_sizes_are_honoured) {
    zk_test_run(sizes_root, NULL);
}

static long count_maps(void);

static int64_t reuse_root(void *arg) {
    long *maps_growth = arg;
    long warm = 0;
    for (int i = 0; i < 20000; i++) {
        if (i == 1000)
            warm = count_maps();
        zk_task *h;
        cr_assert_eq(zk_spawn(uses_its_stack, (void *)(intptr_t)8192, &h), 0);
        int64_t r;
        cr_assert_eq(zk_task_join(&h, &r), 0);
        cr_assert_eq(r, 1);
    }
    *maps_growth = count_maps() - warm;
    return 0;
}

static long count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

ZK_TEST(stack, stacks_are_reused_not_remapped) {
    long growth = 0;
    zk_test_run(reuse_root, &growth);
    /* 19,000 more tasks one after the other reuse the same stack: a
     * mapping per task would add thousands (the sanitizers' own lazy
     * mappings may add a few). */
    cr_assert_lt(growth, 100, "maps grew by %ld", growth);
}

/* errno belongs to the thread; a task gets its own value back after it
 * suspends, whatever ran on the thread meanwhile. */
static int64_t sets_errno(void *arg) {
    int mine = (int)(intptr_t)arg;
    /* errno is read and written through opaque helpers: after a task moved
     * to another thread, code the compiler sees through may still use the
     * errno address of the thread it started on (see zk_await). */
    zk_test_set_errno(mine);
    for (int i = 0; i < 10; i++) {
        zk_yield();
        if (zk_test_errno() != mine) /* this thread's errno, read afresh */
            return 0;
        zk_test_set_errno(mine);
    }
    return 1;
}

static int64_t errno_root(void *arg) {
    (void)arg;
    zk_task *h[8];
    for (intptr_t i = 0; i < 8; i++)
        zk_spawn(sets_errno, (void *)(100 + i), &h[i]);
    return zk_test_join_all(h, 8);
}

ZK_TEST(stack, errno_is_kept_across_suspension) {
    cr_assert_eq(zk_test_run(errno_root, NULL), 8);
}

/* ---------------------------------------------------------------------- */
/* overflow                                                               */
/* ---------------------------------------------------------------------- */

static volatile int keep_going = 1;

static __attribute__((noinline)) int64_t recurse_forever(volatile char *p,
                                                         int depth) {
    volatile char frame[256];
    frame[0] = p ? p[0] : (char)depth;
    if (!keep_going) /* always set: only there to hide the recursion */
        return frame[0];
    return recurse_forever(frame, depth + 1) + frame[0];
}

static int64_t overflows(void *arg) {
    (void)arg;
    return recurse_forever(NULL, 0);
}

static int64_t spawns_overflow(void *arg) {
    (void)arg;
    zk_spawn_opts o = {.stack_size = 64 * 1024, .name = "deep-recursion"};
    zk_task *h;
    zk_spawn_ex(NULL, &o, overflows, NULL, &h);
    return zk_task_join(&h, NULL);
}

/* Runs an overflowing task in a child process; returns its stderr and
 * termination status. */
static void run_overflow_child_on(zk_runtime_kind kind, zk_task_fn root,
                                  const char *guard_env, char *buf, size_t cap,
                                  int *status) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        if (guard_env)
            setenv("ZOKIO_GUARD_STACKS", guard_env, 1);
        zk_builder *b = zk_builder_new();
        zk_builder_set_kind(b, kind);
        zk_builder_set_workers(b, 1);
        zk_runtime *rt;
        if (zk_builder_build(b, &rt) != 0)
            _exit(3);
        zk_builder_free(b);
        zk_block_on(rt, root, NULL, NULL);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = read(fds[0], buf + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fds[0]);
    waitpid(pid, status, 0);
}

static void run_overflow_child(zk_task_fn root, const char *guard_env,
                               char *buf, size_t cap, int *status) {
    run_overflow_child_on(ZK_RUNTIME_CURRENT_THREAD, root, guard_env, buf, cap,
                          status);
}

ZK_TEST(stack, overflow_into_the_guard_page_names_the_task) {
    char buf[4096];
    int status;
    run_overflow_child(spawns_overflow, NULL, buf, sizeof buf, &status);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "status %d, stderr: %s", status, buf);
    cr_assert_not_null(strstr(buf, "stack overflow in task"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\"deep-recursion\""), "%s", buf);
    cr_assert_not_null(strstr(buf, "stack size 65536"), "%s", buf);
    cr_assert_not_null(strstr(buf, "ran past the end"), "%s", buf);
}

/* Without guard pages, a small overflow is caught by the red zone check
 * when the task suspends: dig until a frame lies 1-3 KiB below the stack
 * (inside the one-page red zone), then suspend there. */
static __attribute__((noinline)) int64_t dig_below(uintptr_t target) {
    volatile char frame[256];
    frame[0] = 1;
    if ((uintptr_t)frame < target) {
        zk_yield();
        return frame[0];
    }
    return dig_below(target) + frame[0];
}

/* Digs (uintptr_t)arg bytes further than the stack's end. */
static int64_t overflows_a_little(void *arg) {
    volatile char top;
    /* `top` sits near the top of the 64 KiB stack. */
    return dig_below((uintptr_t)&top - 64 * 1024 - (uintptr_t)arg);
}

static int64_t spawn_red_zone_task(uintptr_t further) {
    zk_spawn_opts o = {.stack_size = 64 * 1024, .name = "red-zone"};
    zk_task *h;
    zk_spawn_ex(NULL, &o, overflows_a_little, (void *)further, &h);
    return zk_task_join(&h, NULL);
}

static int64_t spawns_small_overflow(void *arg) {
    (void)arg;
    return spawn_red_zone_task(1024);
}

/* The same overflow on one worker of a multi-thread runtime, with another
 * coroutine ready when the overflowing one yields: the worker then goes
 * straight from one coroutine to the other, and the other one ends the
 * overflowing task's run, so it is the one that reports it. The task digs
 * only just past its stack's end: the calls that pick the next coroutine
 * run below the suspended frame, and with AddressSanitizer's larger
 * frames they would otherwise go past the one-page red zone too (and be
 * reported as a fault, not by the red zone check). */
static int64_t keeps_yielding(void *arg) {
    for (int i = 0; i < 1000 && !atomic_load((_Atomic bool *)arg); i++)
        zk_yield();
    return 0;
}

static int64_t spawns_small_overflow_beside_another(void *arg) {
    (void)arg;
    static _Atomic bool stop;
    zk_task *other;
    zk_spawn(keeps_yielding, (void *)&stop, &other);
    zk_yield(); /* the other one runs and is ready again */
    int64_t r = spawn_red_zone_task(0);
    atomic_store(&stop, true);
    zk_task_join(&other, NULL);
    return r;
}

ZK_TEST(stack, overflow_into_the_red_zone_is_reported_on_a_direct_switch) {
    char buf[4096];
    int status;
    run_overflow_child_on(ZK_RUNTIME_MULTI_THREAD,
                          spawns_small_overflow_beside_another, "0", buf,
                          sizeof buf, &status);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "status %d, stderr: %s", status, buf);
    cr_assert_not_null(strstr(buf, "stack overflow in task"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\"red-zone\""), "%s", buf);
    cr_assert_not_null(strstr(buf, "red zone"), "%s", buf);
}

ZK_TEST(stack, overflow_into_the_red_zone_names_the_task) {
    char buf[4096];
    int status;
    run_overflow_child(spawns_small_overflow, "0", buf, sizeof buf, &status);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "status %d, stderr: %s", status, buf);
    cr_assert_not_null(strstr(buf, "stack overflow in task"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\"red-zone\""), "%s", buf);
    cr_assert_not_null(strstr(buf, "red zone"), "%s", buf);
}

#if !defined(ZK_TEST_ASAN) && !defined(ZK_TEST_TSAN) &&                        \
    !defined(ZK_TEST_EMULATED)
/* (The sanitizers reserve terabytes of shadow memory, and under qemu-user
 * the limit would apply to the emulator: no address-space limit there.) */
#include <sys/resource.h>

static int64_t stack_exhaustion_root(void *arg) {
    (void)arg;
    struct rlimit lim = {(rlim_t)zk_test_vm_size_bytes() + 64 * 1024 * 1024,
                         RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &lim) != 0)
        return 10;
    zk_spawn_opts huge = {.stack_size = 512 * 1024 * 1024, .name = "huge"};
    zk_task *h;
    if (zk_spawn_ex(NULL, &huge, uses_its_stack, (void *)(intptr_t)1024, &h) !=
        0)
        return 11; /* spawning takes no stack: it succeeds */
    int64_t r = 0;
    if (zk_task_join(&h, &r) != 0 || r != -ENOMEM)
        return 12;
    /* The runtime is still usable. */
    if (zk_spawn(uses_its_stack, (void *)(intptr_t)1024, &h) != 0 ||
        zk_task_join(&h, &r) != 0 || r != 1)
        return 13;
    return 0;
}

ZK_TEST(stack, no_address_space_for_a_stack_ends_the_task_with_enomem) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        zk_runtime *rt = zk_test_runtime();
        int64_t r = -1;
        int rc = zk_block_on(rt, stack_exhaustion_root, NULL, &r);
        zk_runtime_free(rt);
        _exit(rc == 0 ? (int)r : 20);
    }
    close(fds[1]);
    char buf[2048];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 &&
           (k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "status %d, stderr: %s", status, buf);
    cr_assert_not_null(strstr(buf, "\"huge\" could not start"), "%s", buf);
}
#endif
