/* bp_regs_capture.h - for the unwinding tests: the registers a signal
 * handler would copy, captured in line where the macro stands (so they are
 * that function's own), and a copy routine the sanitizers do not check. */
#ifndef BP_REGS_CAPTURE_H
#define BP_REGS_CAPTURE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bp_unwind.h"

#if !defined(__x86_64__)
#error "the unwinding tests capture x86_64 registers in line: x86_64 only"
#endif

/* Copies with rep movsb: no memcpy call for the sanitizers to check (a
 * stack window spans other frames' redzones). */
static inline void bp_raw_copy(uint8_t *dst, uint64_t src, size_t n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* Copies the stack from sp up to stack_end (0: unknown), at most cap bytes,
 * into buf; returns the length. */
static inline size_t bp_copy_window(uint8_t *buf, size_t cap, uint64_t sp, uint64_t stack_end)
{
    size_t n = cap;
    if (stack_end > sp && stack_end - sp < n)
        n = (size_t)(stack_end - sp);
    bp_raw_copy(buf, sp, n);
    return n;
}

/* The top (highest address) of the calling thread's stack, 0 if unknown. */
static inline uint64_t bp_thread_stack_end(void)
{
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &a) != 0)
        return 0;
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    return (uint64_t)(uintptr_t)addr + size;
}

/* Fills *(regs) (a struct bp_regs) with this point's rip, rsp, rbp and the
 * callee-saved registers. */
#define BP_CAPTURE_REGS(regs)                                                  \
    do {                                                                       \
        uint64_t r_[8];                                                        \
        __asm__ volatile("leaq 0(%%rip), %%rax\n\t"                            \
                         "movq %%rax, 0(%0)\n\t"                               \
                         "movq %%rsp, 8(%0)\n\t"                               \
                         "movq %%rbp, 16(%0)\n\t"                              \
                         "movq %%rbx, 24(%0)\n\t"                              \
                         "movq %%r12, 32(%0)\n\t"                              \
                         "movq %%r13, 40(%0)\n\t"                              \
                         "movq %%r14, 48(%0)\n\t"                              \
                         "movq %%r15, 56(%0)\n\t"                              \
                         :                                                     \
                         : "r"(r_)                                             \
                         : "rax", "memory");                                   \
        (regs)->ip = r_[0];                                                    \
        (regs)->sp = r_[1];                                                    \
        (regs)->bp = r_[2];                                                    \
        (regs)->bx = r_[3];                                                    \
        (regs)->r12 = r_[4];                                                   \
        (regs)->r13 = r_[5];                                                   \
        (regs)->r14 = r_[6];                                                   \
        (regs)->r15 = r_[7];                                                   \
    } while (0)

#endif
