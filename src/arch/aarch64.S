/*
 * aarch64.S - context switch for the AAPCS64 ABI.
 *
 * Saved on the stack being left (160 bytes, 16-byte aligned): x19-x28,
 * the frame pointer x29, the link register x30 and the low halves of
 * v8-v15 (d8-d15), the callee-saved registers. zk__ctx_make() in context.c
 * builds the same frame for a new context.
 */
    .text
    .globl zk__ctx_switch
    .hidden zk__ctx_switch
    .type zk__ctx_switch,%function
    .p2align 4
/* void zk__ctx_switch(zk__ctx *from (x0), zk__ctx *to (x1)) */
zk__ctx_switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x2, sp
    str x2, [x0]
    ldr x2, [x1]
    mov sp, x2
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .size zk__ctx_switch,.-zk__ctx_switch

    .globl zk__ctx_trampoline
    .hidden zk__ctx_trampoline
    .type zk__ctx_trampoline,%function
    .p2align 4
/* First code a new context runs: entry (x20) with arg (x19). */
zk__ctx_trampoline:
    mov x0, x19
    blr x20
    brk #1
    .size zk__ctx_trampoline,.-zk__ctx_trampoline

    .section .note.GNU-stack,"",%progbits
