/*
 * signal.c - listeners of Unix signals (zokio/signal.h).
 *
 * The process-wide part, shared by every runtime:
 * - per signal, a delivery counter and the disposition that was in place
 *   before zokio installed its handler (restored by the last listener);
 * - a table of listener slots, each naming a signal and the eventfd of one
 *   listener. The handler bumps the signal's counter and writes to the
 *   eventfd of every slot of that signal; it does nothing else (atomics and
 *   write(2): async-signal-safe), then calls the previous handler if that
 *   was a function.
 *
 * A listener remembers the counter value it has reported up to (`seen`).
 * Its recv drains its eventfd, then compares the counter with `seen`: a
 * delivery after the drain either changed the counter already or will
 * make the eventfd readable, which the recv waits for with the driver's
 * readiness operation (ZK__OP_POLL_IN). One eventfd per listener, rather
 * than one pipe for the process, because a shared descriptor drained by
 * one waiter can hide the readiness from another (epoll reports an edge
 * only if the descriptor is still readable when it is collected).
 *
 * Slots and the handler: the handler may run on any thread, at any time,
 * so the table never moves (chunks allocated once, never freed) and a slot
 * is only reused after every handler that might have read its descriptor
 * has left it: a handler raises the slot's `busy` count before reading the
 * slot's signal and descriptor; closing clears the signal, then waits for
 * `busy` to drop to zero (a handler holds it for one write). Both steps are
 * sequentially consistent, so either the handler sees the cleared signal
 * or the close sees it busy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io/op.h"
#include "runtime/runtime.h"
#include "signal/internal.h"
#include "zokio/signal.h"

/* ---------------------------------------------------------------------- */
/* Process-wide state                                                     */
/* ---------------------------------------------------------------------- */

#define ZK__SIG_CHUNK  256
#define ZK__SIG_CHUNKS 4096 /* up to 1M listeners in the process */
#define ZK__SLOT_NONE  UINT32_MAX

typedef struct zk__sig_slot {
    _Atomic int signo; /* 0: free */
    _Atomic int fd;
    _Atomic unsigned busy; /* handlers using the slot now */
    uint32_t next_free;    /* under zk__sig_lock */
} zk__sig_slot;

enum { ZK__PREV_NONE, ZK__PREV_HANDLER, ZK__PREV_SIGACTION };

typedef struct zk__sig_state {
    _Atomic uint64_t count; /* deliveries since the process started */
    /* The previous handler, for the handler to chain to. */
    _Atomic int prev_kind;
    _Atomic(void *) prev_fn;
    /* zokio's handler is installed (read by a forked child). */
    _Atomic bool installed;
    /* Under zk__sig_lock. */
    unsigned listeners;
    struct sigaction prev; /* restored by the last listener */
} zk__sig_state;

static pthread_mutex_t zk__sig_lock = PTHREAD_MUTEX_INITIALIZER;
static zk__sig_state zk__sigs[NSIG];
static zk__sig_slot *_Atomic zk__sig_chunks[ZK__SIG_CHUNKS];
/* Slots the handler scans: those of the allocated chunks. */
static _Atomic size_t zk__sig_nslots;
static uint32_t zk__sig_free = ZK__SLOT_NONE; /* under zk__sig_lock */

static zk__sig_slot *zk__sig_slot_at(size_t i) {
    zk__sig_slot *chunk = atomic_load_explicit(
        &zk__sig_chunks[i / ZK__SIG_CHUNK], memory_order_acquire);
    return &chunk[i % ZK__SIG_CHUNK];
}

/* The signals whose previous handler this thread is running, called from
 * ours. A handler that replaced ours and chains to it (the usual manners),
 * left in place when our last listener closed, becomes our previous handler
 * when a new listener installs ours again: ours then calls it, and it calls
 * ours. The kernel blocks a signal while its handler runs (no SA_NODEFER),
 * so ours entered again for the same signal on this thread is that chain
 * coming back, not a delivery: it returns at once. Initial-exec TLS: a
 * plain load, safe in a signal handler. */
static __thread __attribute__((tls_model("initial-exec")))
uint64_t zk__sig_chaining[(NSIG + 63) / 64];

static void zk__sig_handler(int sig, siginfo_t *info, void *uc) {
    uint64_t bit = (uint64_t)1 << (sig % 64);
    if (zk__sig_chaining[sig / 64] & bit)
        return;
    int saved = errno;
    zk__sig_state *st = &zk__sigs[sig];
    atomic_fetch_add(&st->count, 1);
    size_t n = atomic_load_explicit(&zk__sig_nslots, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        zk__sig_slot *s = zk__sig_slot_at(i);
        if (atomic_load_explicit(&s->signo, memory_order_relaxed) != sig)
            continue;
        atomic_fetch_add(&s->busy, 1);
        if (atomic_load(&s->signo) == sig) {
            uint64_t one = 1;
            ssize_t r = write(atomic_load(&s->fd), &one, sizeof one);
            (void)r; /* the counter is what counts; EAGAIN cannot lose it */
        }
        atomic_fetch_sub(&s->busy, 1);
    }
    void *fn = atomic_load(&st->prev_fn);
    zk__sig_chaining[sig / 64] |= bit;
    switch (atomic_load(&st->prev_kind)) {
    case ZK__PREV_HANDLER:
        ((void (*)(int))fn)(sig);
        break;
    case ZK__PREV_SIGACTION:
        ((void (*)(int, siginfo_t *, void *))fn)(sig, info, uc);
        break;
    }
    zk__sig_chaining[sig / 64] &= ~bit;
    errno = saved;
}

static bool zk__sig_is_ours(const struct sigaction *sa) {
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == zk__sig_handler;
}

/* Takes a free slot, allocating a chunk if needed. Under the lock. */
static uint32_t zk__sig_slot_alloc(void) {
    if (zk__sig_free == ZK__SLOT_NONE) {
        size_t n = atomic_load_explicit(&zk__sig_nslots, memory_order_relaxed);
        if (n / ZK__SIG_CHUNK == ZK__SIG_CHUNKS)
            return ZK__SLOT_NONE;
        zk__sig_slot *chunk = calloc(ZK__SIG_CHUNK, sizeof *chunk);
        if (chunk == NULL)
            return ZK__SLOT_NONE;
        for (uint32_t i = 0; i < ZK__SIG_CHUNK; i++)
            chunk[i].next_free =
                i + 1 < ZK__SIG_CHUNK ? (uint32_t)n + i + 1 : ZK__SLOT_NONE;
        atomic_store_explicit(&zk__sig_chunks[n / ZK__SIG_CHUNK], chunk,
                              memory_order_release);
        atomic_store_explicit(&zk__sig_nslots, n + ZK__SIG_CHUNK,
                              memory_order_release);
        zk__sig_free = (uint32_t)n;
    }
    uint32_t idx = zk__sig_free;
    zk__sig_free = zk__sig_slot_at(idx)->next_free;
    return idx;
}

/* Unpublishes a slot and waits until no handler uses its descriptor.
 * Under the lock. */
static void zk__sig_slot_free(uint32_t idx) {
    zk__sig_slot *s = zk__sig_slot_at(idx);
    atomic_store(&s->signo, 0);
    /* A handler holds `busy` for one write(2): wait it out. */
    while (atomic_load(&s->busy) != 0)
        sched_yield();
    atomic_store(&s->fd, -1);
    s->next_free = zk__sig_free;
    zk__sig_free = idx;
}

/* Installs the handler for the first listener of `signo`. Under the
 * lock. */
static int zk__sig_install(int signo) {
    zk__sig_state *st = &zk__sigs[signo];
    struct sigaction prev, sa;
    if (sigaction(signo, NULL, &prev) != 0)
        return -errno;
    if (zk__sig_is_ours(&prev)) {
        /* Still ours (the last close found it replaced, and the
         * replacement put ours back): keep the saved previous one. */
        atomic_store(&st->installed, true);
        return 0;
    }
    /* Publish the handler to chain to before ours can run. */
    if (prev.sa_flags & SA_SIGINFO) {
        atomic_store(&st->prev_fn, (void *)prev.sa_sigaction);
        atomic_store(&st->prev_kind, ZK__PREV_SIGACTION);
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        atomic_store(&st->prev_fn, (void *)prev.sa_handler);
        atomic_store(&st->prev_kind, ZK__PREV_HANDLER);
    } else {
        atomic_store(&st->prev_kind, ZK__PREV_NONE);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = zk__sig_handler;
    sa.sa_mask = prev.sa_mask; /* what the chained handler expects */
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    if (sigaction(signo, &sa, NULL) != 0)
        return -errno;
    st->prev = prev;
    atomic_store(&st->installed, true);
    return 0;
}

/* The last listener of `signo` is gone: put back what was there, unless
 * someone replaced zokio's handler meanwhile. Under the lock. */
static void zk__sig_uninstall(int signo) {
    struct sigaction cur;
    if (sigaction(signo, NULL, &cur) == 0 && zk__sig_is_ours(&cur))
        sigaction(signo, &zk__sigs[signo].prev, NULL);
    atomic_store(&zk__sigs[signo].installed, false);
}

void zk__signal_reset_in_child(void) {
    for (int sig = 1; sig < NSIG; sig++) {
        if (!atomic_load_explicit(&zk__sigs[sig].installed,
                                  memory_order_relaxed))
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler =
            zk__sigs[sig].prev.sa_handler == SIG_IGN ? SIG_IGN : SIG_DFL;
        sigaction(sig, &sa, NULL);
    }
}

static bool zk__sig_allowed(int signo) {
    if (signo <= 0 || signo >= NSIG)
        return false;
    switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* Listeners                                                              */
/* ---------------------------------------------------------------------- */

struct zk_signal {
    int signo;
    uint32_t slot;
    /* The eventfd, as a handle of the listener's runtime. The listener
     * holds a reference of its own besides the user's (which close
     * drops), so the descriptor stays valid for a recv finishing after the
     * close. */
    zk__io_handle *h;
    /* Deliveries reported so far; touched only by the recv that holds
     * `receiving`. */
    uint64_t seen;
    _Atomic bool receiving;
    _Atomic bool closed;
    /* The user's, plus one per recv in progress. */
    _Atomic uint32_t refs;
};

static void zk__signal_unref(zk_signal *s) {
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        zk__handle_unref(s->h);
        free(s);
    }
}

int zk_signal_listen(int signo, zk_signal **out) {
    if (out == NULL || !zk__sig_allowed(signo))
        return -EINVAL;
    zk_runtime *rt = zk__runtime_current();
    if (rt == NULL)
        return -EPERM;
    zk_signal *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        int rc = -errno;
        free(s);
        return rc;
    }
    int rc = zk__handle_new(rt, efd, ZK__HANDLE_PIPE, &s->h);
    if (rc != 0) {
        close(efd);
        free(s);
        return rc;
    }
    zk__handle_ref(s->h); /* the listener's own reference */
    s->signo = signo;
    atomic_init(&s->receiving, false);
    atomic_init(&s->closed, false);
    atomic_init(&s->refs, 1);

    zk__sig_state *st = &zk__sigs[signo];
    pthread_mutex_lock(&zk__sig_lock);
    s->slot = zk__sig_slot_alloc();
    if (s->slot == ZK__SLOT_NONE)
        rc = -ENOMEM;
    else if (st->listeners == 0 && (rc = zk__sig_install(signo)) != 0)
        zk__sig_slot_free(s->slot);
    if (rc != 0) {
        pthread_mutex_unlock(&zk__sig_lock);
        zk__handle_close(s->h);
        zk__handle_unref(s->h);
        free(s);
        return rc;
    }
    st->listeners++;
    zk__sig_slot *slot = zk__sig_slot_at(s->slot);
    atomic_store(&slot->fd, efd);
    /* Deliveries from here on are reported: one between this read and
     * the slot's publication raised the counter already. */
    s->seen = atomic_load(&st->count);
    atomic_store(&slot->signo, signo);
    pthread_mutex_unlock(&zk__sig_lock);
    *out = s;
    return 0;
}

int zk_signal_close(zk_signal *s) {
    if (s == NULL)
        return -EINVAL;
    if (atomic_exchange_explicit(&s->closed, true, memory_order_acq_rel))
        return -EBADF;
    pthread_mutex_lock(&zk__sig_lock);
    zk__sig_slot_free(s->slot);
    if (--zk__sigs[s->signo].listeners == 0)
        zk__sig_uninstall(s->signo);
    pthread_mutex_unlock(&zk__sig_lock);
    zk__handle_close(s->h); /* wakes a waiting recv with -EBADF */
    zk__signal_unref(s);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Receiving                                                              */
/* ---------------------------------------------------------------------- */

enum {
    ZK__SIGF_INIT,    /* not polled yet */
    ZK__SIGF_ACTIVE,  /* holds `receiving` and a reference */
    ZK__SIGF_POLLING, /* and waits for the eventfd (`_poll`) */
    ZK__SIGF_DONE,
};

/* Gives back what an active future holds. */
static void zk__sigf_release(zk_signal_future *f) {
    if (f->_state == ZK__SIGF_POLLING)
        zk_future_drop(&f->_poll.base);
    if (f->_state == ZK__SIGF_ACTIVE || f->_state == ZK__SIGF_POLLING) {
        atomic_store_explicit(&f->_sig->receiving, false, memory_order_release);
        zk__signal_unref(f->_sig);
    }
    f->_state = ZK__SIGF_DONE;
}

static zk_poll zk__sigf_ready(zk_signal_future *f, int64_t res, int64_t *out) {
    zk__sigf_release(f);
    /* ctrl-c reports "it came" (0), a recv how often. */
    *out = f->_owns && res > 0 ? 0 : res;
    return ZK_READY;
}

static zk_poll zk__sigf_poll(zk_future *base, zk_context *cx, int64_t *out) {
    zk_signal_future *f = (zk_signal_future *)base;
    if (f->_err != 0) {
        *out = f->_err;
        return ZK_READY;
    }
    if (f->_state == ZK__SIGF_DONE) {
        *out = -EINVAL; /* polled after it was ready */
        return ZK_READY;
    }
    zk_signal *s = f->_sig;
    if (f->_state == ZK__SIGF_INIT) {
        /* Before anything is taken: deliveries are the listener's
         * runtime's to report (the wait below would say -EPERM only once
         * nothing was pending). */
        if (zk__io_current(s->h->rt) == NULL) {
            f->_state = ZK__SIGF_DONE;
            *out = -EPERM;
            return ZK_READY;
        }
        if (atomic_load_explicit(&s->closed, memory_order_acquire)) {
            f->_state = ZK__SIGF_DONE;
            *out = -EBADF;
            return ZK_READY;
        }
        if (atomic_exchange_explicit(&s->receiving, true,
                                     memory_order_acquire)) {
            f->_state = ZK__SIGF_DONE;
            *out = -EBUSY;
            return ZK_READY;
        }
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
        f->_state = ZK__SIGF_ACTIVE;
    }
    for (;;) {
        if (f->_state == ZK__SIGF_POLLING) {
            int64_t r;
            if (zk_future_poll(&f->_poll.base, cx, &r) == ZK_PENDING)
                return ZK_PENDING;
            zk_future_drop(&f->_poll.base);
            f->_state = ZK__SIGF_ACTIVE;
            if (r < 0) /* -EBADF (closed), -EPERM (other runtime)... */
                return zk__sigf_ready(f, r, out);
        }
        if (atomic_load_explicit(&s->closed, memory_order_acquire))
            return zk__sigf_ready(f, -EBADF, out);
        uint64_t v;
        ssize_t r = read(s->h->fd, &v, sizeof v); /* drain, non-blocking */
        (void)r;
        uint64_t c = atomic_load(&zk__sigs[s->signo].count);
        if (c != s->seen) {
            int64_t n = (int64_t)(c - s->seen);
            s->seen = c;
            return zk__sigf_ready(f, n, out);
        }
        zk__op_init((zk__io_op *)&f->_poll, ZK__OP_POLL_IN, s->h);
        f->_state = ZK__SIGF_POLLING;
    }
}

static void zk__sigf_drop(zk_future *base) {
    zk_signal_future *f = (zk_signal_future *)base;
    if (f->_err == 0)
        zk__sigf_release(f);
    if (f->_owns && f->_sig != NULL) {
        zk_signal_close(f->_sig);
        f->_sig = NULL;
    }
}

static const zk_future_ops zk__sigf_ops = {zk__sigf_poll, zk__sigf_drop};

void zk_signal_recv_future_init(zk_signal_future *f, zk_signal *s) {
    memset(f, 0, sizeof *f);
    f->base.ops = &zk__sigf_ops;
    f->_sig = s;
    f->_state = ZK__SIGF_INIT;
    if (s == NULL)
        f->_err = -EINVAL;
}

int64_t zk_signal_recv(zk_signal *s) {
    if (s == NULL)
        return -EINVAL;
    zk_signal_future f;
    zk_signal_recv_future_init(&f, s);
    return zk_await(&f.base);
}

void zk_ctrl_c_future_init(zk_signal_future *f) {
    memset(f, 0, sizeof *f);
    f->base.ops = &zk__sigf_ops;
    f->_state = ZK__SIGF_INIT;
    f->_owns = true;
    f->_err = zk_signal_listen(SIGINT, &f->_sig);
    if (f->_err != 0)
        f->_sig = NULL;
}

int zk_ctrl_c(void) {
    if (!zk_in_coroutine())
        return -EPERM;
    zk_signal_future f;
    zk_ctrl_c_future_init(&f);
    return (int)zk_await(&f.base);
}
