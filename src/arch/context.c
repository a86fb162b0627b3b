/*
 * context.c - builds the first frame of a new context so that the
 * architecture's zk__ctx_switch() "returns" into zk__ctx_trampoline, which
 * calls the entry function. The frame layouts mirror the .S files.
 */
#include <stdint.h>
#include <string.h>

#include "context.h"

#if !defined(ZK__CONTEXT_UCONTEXT)

void zk__ctx_trampoline(void);

#if defined(__x86_64__)

void zk__ctx_make(zk__ctx *ctx, void *lo, size_t size, zk__ctx_entry entry,
                  void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    /* 8 slots of 8 bytes; the trampoline then starts with rsp 16-aligned. */
    uint64_t *frame = (uint64_t *)(top - 16 - 8 * 8);
    uint32_t csr[2] = {0x1F80, 0x037F}; /* default MXCSR and x87 CW */
    memcpy(&frame[0], csr, sizeof csr);
    frame[1] = 0;                          /* r15 */
    frame[2] = 0;                          /* r14 */
    frame[3] = (uint64_t)(uintptr_t)entry; /* r13 */
    frame[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
    frame[5] = 0;                          /* rbx */
    frame[6] = 0;                          /* rbp: ends backtraces */
    frame[7] = (uint64_t)(uintptr_t)zk__ctx_trampoline; /* return address */
    ctx->sp = frame;
}

#elif defined(__aarch64__)

void zk__ctx_make(zk__ctx *ctx, void *lo, size_t size, zk__ctx_entry entry,
                  void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 16 - 160);
    memset(frame, 0, 160);
    frame[0] = (uint64_t)(uintptr_t)arg;                 /* x19 */
    frame[1] = (uint64_t)(uintptr_t)entry;               /* x20 */
    frame[10] = 0;                                       /* x29 */
    frame[11] = (uint64_t)(uintptr_t)zk__ctx_trampoline; /* x30 */
    ctx->sp = frame;
}

#else
#error                                                                         \
    "no assembly context switch for this architecture: build with -DZOKIO_CONTEXT=ucontext"
#endif

#else /* ZK__CONTEXT_UCONTEXT */

/* makecontext() passes int arguments only, so the pointers travel in two
 * halves. */
static void zk__ctx_ucontext_start(unsigned int e_hi, unsigned int e_lo,
                                   unsigned int a_hi, unsigned int a_lo) {
    uintptr_t e = ((uintptr_t)e_hi << 16 << 16) | e_lo;
    uintptr_t a = ((uintptr_t)a_hi << 16 << 16) | a_lo;
    ((zk__ctx_entry)e)((void *)a);
    __builtin_trap();
}

void zk__ctx_make(zk__ctx *ctx, void *lo, size_t size, zk__ctx_entry entry,
                  void *arg) {
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))zk__ctx_ucontext_start, 4,
                (unsigned int)(e >> 16 >> 16), (unsigned int)e,
                (unsigned int)(a >> 16 >> 16), (unsigned int)a);
}

#endif
