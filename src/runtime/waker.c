/* waker.c - the public waker functions and the plain-thread waiter. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/util.h"
#include "waiter.h"
#include "worker.h"

zk_waker zk_waker_new(const void *data, const zk_waker_ops *ops) {
    return (zk_waker){ops, data};
}

zk_waker zk_waker_clone(const zk_waker *w) {
    if (zk_waker_is_empty(w))
        return (zk_waker){NULL, NULL};
    return w->ops->clone(w->data);
}

void zk_waker_wake(zk_waker *w) {
    if (zk_waker_is_empty(w))
        return;
    zk_waker taken = *w;
    w->ops = NULL;
    w->data = NULL;
    taken.ops->wake(taken.data);
}

void zk_waker_wake_by_ref(const zk_waker *w) {
    if (!zk_waker_is_empty(w))
        w->ops->wake_by_ref(w->data);
}

void zk_waker_drop(zk_waker *w) {
    if (zk_waker_is_empty(w))
        return;
    zk_waker taken = *w;
    w->ops = NULL;
    w->data = NULL;
    taken.ops->drop(taken.data);
}

bool zk_waker_will_wake(const zk_waker *a, const zk_waker *b) {
    if (a == NULL || b == NULL)
        return false;
    return a->ops == b->ops && a->data == b->data && a->ops != NULL;
}

/* ---- the no-op waker ---- */

static zk_waker zk__noop_clone(const void *data);
static void zk__noop(const void *data) {
    (void)data;
}
static const zk_waker_ops zk__noop_ops = {zk__noop_clone, zk__noop, zk__noop,
                                          zk__noop};
static zk_waker zk__noop_clone(const void *data) {
    return (zk_waker){&zk__noop_ops, data};
}

zk_waker zk_waker_noop(void) {
    return (zk_waker){&zk__noop_ops, NULL};
}

/* ---- futures: checked poll and drop ---- */

zk_poll zk_future_poll(zk_future *f, zk_context *cx, int64_t *out) {
    if (f == NULL || f->ops == NULL || f->ops->poll == NULL || cx == NULL ||
        out == NULL) {
        if (out)
            *out = -EINVAL;
        return ZK_READY;
    }
    return f->ops->poll(f, cx, out);
}

void zk_future_drop(zk_future *f) {
    if (f && f->ops && f->ops->drop)
        f->ops->drop(f);
}

/* ---- the plain-thread waiter ---- */

static pthread_key_t zk__waiter_key;
static pthread_once_t zk__waiter_once = PTHREAD_ONCE_INIT;
static __thread zk__thread_waiter *zk__tls_waiter;

static void zk__waiter_release(zk__thread_waiter *tw) {
    if (atomic_fetch_sub_explicit(&tw->refs, 1, memory_order_acq_rel) == 1)
        free(tw);
}

static void zk__waiter_thread_exit(void *p) {
    zk__waiter_release((zk__thread_waiter *)p);
}

static void zk__waiter_key_create(void) {
    if (pthread_key_create(&zk__waiter_key, zk__waiter_thread_exit) != 0)
        ZK__BUG("pthread_key_create failed");
}

static zk_waker zk__waiter_clone(const void *data) {
    zk__thread_waiter *tw = (zk__thread_waiter *)data;
    atomic_fetch_add_explicit(&tw->refs, 1, memory_order_relaxed);
    return zk__thread_waiter_waker(tw);
}

static void zk__waiter_wake_by_ref(const void *data) {
    zk__parker_unpark(&((zk__thread_waiter *)data)->parker);
}

static void zk__waiter_drop(const void *data) {
    zk__waiter_release((zk__thread_waiter *)data);
}

static void zk__waiter_wake(const void *data) {
    zk__waiter_wake_by_ref(data);
    zk__waiter_drop(data);
}

static const zk_waker_ops zk__waiter_ops = {
    zk__waiter_clone, zk__waiter_wake, zk__waiter_wake_by_ref, zk__waiter_drop};

zk_waker zk__thread_waiter_waker(zk__thread_waiter *tw) {
    return (zk_waker){&zk__waiter_ops, tw};
}

__attribute__((noinline)) zk__thread_waiter *zk__thread_waiter_current(void) {
    zk__thread_waiter *tw = zk__tls_waiter;
    if (tw)
        return tw;
    pthread_once(&zk__waiter_once, zk__waiter_key_create);
    tw = malloc(sizeof *tw);
    if (tw == NULL)
        return NULL;
    atomic_init(&tw->refs, 1);
    zk__parker_init(&tw->parker);
    if (pthread_setspecific(zk__waiter_key, tw) != 0) {
        free(tw);
        return NULL;
    }
    zk__tls_waiter = tw;
    return tw;
}

/* At exit, glibc runs thread-key destructors for other threads but not for
 * the main thread: release its waiter here (wakers still holding it keep
 * it alive through the reference count). */
__attribute__((destructor)) static void zk__waiter_at_exit(void) {
    zk__thread_waiter *tw = zk__tls_waiter;
    if (tw == NULL)
        return;
    zk__tls_waiter = NULL;
    pthread_setspecific(zk__waiter_key, NULL);
    zk__waiter_release(tw);
}
