/*
 * future_task.c - stackless tasks: a future copied into the task's own
 * allocation and polled with the task's waker. No stack, one allocation.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "task.h"

#define ZK__FUTURE_SIZE_MAX ((size_t)1024 * 1024)

typedef struct zk__future_task {
    zk__task_base base;
    /* The future, copied from the spawner; dropped once finished or
     * cancelled. */
    alignas(16) unsigned char future[];
} zk__future_task;

static zk_future *zk__future_of(zk__task *t) {
    return (zk_future *)(void *)((zk__future_task *)t)->future;
}

static zk__run_outcome zk__future_task_poll(zk__task *t) {
    zk_future *f = zk__future_of(t);
    zk_waker waker = zk__task_waker_ref(t);
    zk_context cx = {&waker};
    int64_t out;
    if (f->ops->poll(f, &cx, &out) == ZK_PENDING)
        return ZK__RUN_PENDING;
    zk__task_core_of(t)->result = out;
    zk_future_drop(f);
    return ZK__RUN_READY;
}

static void zk__future_task_cancel(zk__task *t) {
    zk_future_drop(zk__future_of(t));
    zk__task_core_of(t)->result = -ECANCELED;
}

static void zk__future_task_dealloc(zk__task *t) {
    free(t);
}

static const zk__task_vtable zk__future_task_vtable = {
    zk__future_task_poll, zk__future_task_cancel, zk__future_task_dealloc,
    false, true};

int zk__spawn_future(struct zk_runtime *rt, const zk_future *fut, size_t size,
                     zk__task **out) {
    if (fut == NULL || fut->ops == NULL || fut->ops->poll == NULL ||
        size < sizeof(zk_future) || size > ZK__FUTURE_SIZE_MAX)
        return -EINVAL;
    zk__future_task *ft = malloc(sizeof *ft + size);
    if (ft == NULL)
        return -ENOMEM;
    zk__task_init(&ft->base.header, &zk__future_task_vtable, rt);
    memcpy(ft->future, fut, size);
    int rc = zk__runtime_own(rt, &ft->base.header);
    if (rc != 0) {
        free(ft);
        return rc;
    }
    *out = &ft->base.header;
    return 0;
}
