/* worker.c - the thread-local worker pointer, see worker.h. */
#include "worker.h"

#include <string.h>

#include "common/util.h"

#if defined(ZK__TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* initial-exec: the stack overflow handler reads it from a signal handler,
 * where a lazily allocated TLS block would not be safe. */
static __thread zk__worker *zk__tls_worker
    __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) zk__worker *zk__worker_current(void) {
    zk__worker *w = zk__tls_worker;
    __asm__ volatile("" ::: "memory");
    return w;
}

__attribute__((noinline)) zk__worker *zk__worker_set(zk__worker *w) {
    zk__worker *prev = zk__tls_worker;
    zk__tls_worker = w;
    return prev;
}

void zk__worker_init(zk__worker *w, struct zk_runtime *rt, void *sched,
                     size_t index) {
    memset(w, 0, sizeof *w);
    w->rt = rt;
    w->sched = sched;
    w->index = index;
    w->budget = ZK__BUDGET;
}

void zk__worker_attach(zk__worker *w) {
    w->current = NULL;
    w->handed_from = NULL;
#if defined(ZK__TSAN)
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
    zk__worker_set(w);
}
