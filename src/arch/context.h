/*
 * context.h - the machine context of a coroutine and the switch between two
 * of them. One implementation per architecture lives beside this file
 * (x86_64.S, aarch64.S); context_ucontext.c is the portable fallback chosen
 * with -DZOKIO_CONTEXT=ucontext or on any other architecture.
 */
#ifndef ZK__CONTEXT_H
#define ZK__CONTEXT_H

#include <stddef.h>

#if defined(ZK__CONTEXT_UCONTEXT)
#include <ucontext.h>
typedef struct zk__ctx {
    ucontext_t uc;
} zk__ctx;
#else
/* Everything else is saved on the stack the context left; only the stack
 * pointer is kept here. */
typedef struct zk__ctx {
    void *sp;
} zk__ctx;
#endif

/* The function a new context starts in; it must never return. */
typedef void (*zk__ctx_entry)(void *arg);

/* Prepares `ctx` to start entry(arg) on the stack [lo, lo + size) at its
 * first switch. */
void zk__ctx_make(zk__ctx *ctx, void *lo, size_t size, zk__ctx_entry entry,
                  void *arg);

/* Saves the caller's callee-saved registers into `from` and resumes `to`.
 * Returns when some context switches back to `from`. (For ucontext it is
 * inlined: an instrumented call around the switch would confuse the
 * sanitizers' per-fiber bookkeeping.) */
#if defined(ZK__CONTEXT_UCONTEXT)
static inline __attribute__((always_inline)) void zk__ctx_switch(zk__ctx *from,
                                                                 zk__ctx *to) {
    swapcontext(&from->uc, &to->uc);
}
#else
void zk__ctx_switch(zk__ctx *from, zk__ctx *to);
#endif

#endif
