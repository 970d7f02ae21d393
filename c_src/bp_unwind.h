/* bp_unwind.h - unwinds the C frames of a stack window that a signal handler
 * copied, later, in an ordinary thread, through libunwind's remote API with
 * our own accessors (the way `perf record --call-graph dwarf` does). */
#ifndef BP_UNWIND_H
#define BP_UNWIND_H

#include <stddef.h>
#include <stdint.h>

/* The registers the capture copies (x86_64): instruction pointer, stack
 * pointer, frame pointer and the callee-saved registers DWARF CFI may
 * restore from. */
struct bp_regs {
    uint64_t ip, sp, bp, bx, r12, r13, r14, r15;
};

/* Unwinds the C frames of a stack window copied in a signal handler, in an
 * ordinary thread, through libunwind's remote API with our own accessors.
 * stack holds stack_len bytes that lived at stack_addr (normally
 * stack_addr == regs->sp). Stops at the first ip that has no unwind info (JIT
 * code) and reports the registers there in *at_stop (may be NULL). Returns
 * the number of frames written to out (leaf first, out[0] = regs->ip), 0 when
 * max <= 0 or an argument is NULL. */
int bp_unwind_copy(const struct bp_regs *regs, const uint8_t *stack, uint64_t stack_addr,
                   size_t stack_len, uint64_t *out, int max, struct bp_regs *at_stop);

#endif
