/*
 * overflow.c - reports a coroutine stack overflow as such.
 *
 * A SIGSEGV/SIGBUS whose address lies just below the running coroutine's
 * stack (its guard page, or further down for a large frame) is reported
 * with the task's id, name and stack size, then the process aborts. Any
 * other fault goes to the handler that was installed before zokio's. The
 * handler runs on an alternate signal stack, since the faulting stack has
 * no room left; zokio gives one to each thread that runs tasks and has none.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "coro.h"
#include "runtime.h"
#include "worker.h"

/* How far below a stack a fault still counts as its overflow: a frame
 * larger than the guard page jumps past it. */
#define ZK__OVERFLOW_REACH ((size_t)64 * 1024)
#define ZK__ALTSTACK_SIZE  ((size_t)64 * 1024)

static struct sigaction zk__prev_segv, zk__prev_bus;
static pthread_once_t zk__overflow_once = PTHREAD_ONCE_INIT;

static size_t zk__fmt_u64(char *buf, uint64_t v) {
    char tmp[24];
    size_t n = 0, i = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[i++] = tmp[--n];
    return i;
}

static size_t zk__fmt_str(char *buf, size_t cap, const char *s) {
    size_t i = 0;
    while (s && s[i] && i < cap) {
        buf[i] = s[i];
        i++;
    }
    return i;
}

void zk__overflow_report(uint64_t id, const char *name, size_t size,
                         const char *how) {
    char msg[512];
    size_t n = 0;
    n += zk__fmt_str(msg + n, 64, "zokio: stack overflow in task ");
    n += zk__fmt_u64(msg + n, id);
    n += zk__fmt_str(msg + n, 8, " \"");
    n += zk__fmt_str(msg + n, 128, name);
    n += zk__fmt_str(msg + n, 16, "\" (stack size ");
    n += zk__fmt_u64(msg + n, size);
    n += zk__fmt_str(msg + n, 16, " bytes): ");
    n += zk__fmt_str(msg + n, 128, how);
    n += zk__fmt_str(msg + n, 80,
                     ". Give it a larger stack (zk_spawn_opts.stack_size).\n");
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
    /* abort() without a handler of ours in the way. */
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void zk__overflow_chain(int sig, siginfo_t *si, void *uc) {
    const struct sigaction *prev =
        sig == SIGSEGV ? &zk__prev_segv : &zk__prev_bus;
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
    } else if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        /* Restore the default and return: the faulting instruction runs
         * again and the default action happens. */
        signal(sig, SIG_DFL);
    } else {
        prev->sa_handler(sig);
    }
}

static void zk__overflow_handler(int sig, siginfo_t *si, void *uc) {
    zk__worker *w = zk__worker_current();
    char *lo;
    size_t size;
    const char *name;
    if (w && w->current && zk__coro_stack_of(w->current, &lo, &size, &name)) {
        char *addr = si->si_addr;
        if (addr < lo && addr >= lo - ZK__OVERFLOW_REACH)
            zk__overflow_report(
                zk__task_id(w->current), name, size,
                "it ran past the end of its stack (fault below it)");
    }
    zk__overflow_chain(sig, si, uc);
}

static void zk__overflow_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = zk__overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &zk__prev_segv);
    sigaction(SIGBUS, &sa, &zk__prev_bus);
}

void *zk__overflow_thread_enter(void) {
    pthread_once(&zk__overflow_once, zk__overflow_install);
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
        return NULL; /* the thread has one already */
    void *mem = mmap(NULL, ZK__ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return NULL;
    stack_t ss = {.ss_sp = mem, .ss_size = ZK__ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ZK__ALTSTACK_SIZE);
        return NULL;
    }
    return mem;
}

void zk__overflow_thread_leave(void *cookie) {
    if (cookie == NULL)
        return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(cookie, ZK__ALTSTACK_SIZE);
}
