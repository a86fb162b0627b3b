/*
 * hello.c - the README's example: a root task fans out coroutine tasks that
 * each yield a few times, joins them and sums their results.
 */
#include <stdio.h>
#include <zokio.h>

static int64_t worker(void *arg) {
    intptr_t n = (intptr_t)arg;
    for (int i = 0; i < 3; i++)
        zk_yield(); /* lets the other tasks run; only this task waits */
    return n * n;
}

static int64_t root(void *arg) {
    (void)arg;
    zk_task *tasks[10];
    for (intptr_t i = 0; i < 10; i++) {
        int rc = zk_spawn(worker, (void *)i, &tasks[i]);
        if (rc < 0) {
            fprintf(stderr, "spawn: %s\n", zk_strerror(rc));
            return rc;
        }
    }
    int64_t sum = 0;
    for (int i = 0; i < 10; i++) {
        int64_t r;
        if (zk_task_join(&tasks[i], &r) == 0)
            sum += r;
    }
    return sum;
}

int main(void) {
    zk_runtime *rt;
    int rc = zk_runtime_new(ZK_RUNTIME_CURRENT_THREAD, &rt);
    if (rc < 0) {
        fprintf(stderr, "runtime: %s\n", zk_strerror(rc));
        return 1;
    }
    int64_t sum = 0;
    rc = zk_block_on(rt, root, NULL, &sum);
    zk_runtime_free(rt);
    printf("sum of squares 0..9 = %lld (%s)\n", (long long)sum,
           rc == 0 ? "ok" : zk_strerror(rc));
    return rc == 0 && sum == 285 ? 0 : 1;
}
