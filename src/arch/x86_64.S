/*
 * x86_64.S - context switch for the System V AMD64 ABI.
 *
 * Saved on the stack being left: rbp, rbx, r12-r15 (callee-saved), then the
 * SSE control/status word (MXCSR) and the x87 control word, which the ABI
 * also makes callee-saved. The layout is mirrored by zk__ctx_make() in
 * context.c: [mxcsr|fpucw][r15][r14][r13][r12][rbx][rbp][return address].
 */
    .text
    .globl zk__ctx_switch
    .hidden zk__ctx_switch
    .type zk__ctx_switch,@function
    .p2align 4
/* void zk__ctx_switch(zk__ctx *from (rdi), zk__ctx *to (rsi)) */
zk__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size zk__ctx_switch,.-zk__ctx_switch

    .globl zk__ctx_trampoline
    .hidden zk__ctx_trampoline
    .type zk__ctx_trampoline,@function
    .p2align 4
/* First code a new context runs: entry (r13) with arg (r12). The stack is
 * 16-byte aligned here, as the call below requires. */
zk__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size zk__ctx_trampoline,.-zk__ctx_trampoline

    .section .note.GNU-stack,"",@progbits
