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

/* Why a walk ended (bp_unwind_copy_ex's *why). */
enum {
    BP_UNWIND_NO_INFO = 1, /* out[n-1] has no unwind info (JIT code, anonymous
                              memory, code without CFI): *at_stop holds the
                              registers there, ready for a frame-pointer walk */
    BP_UNWIND_END = 2,     /* the outermost frame (CFI marks no return address) */
    BP_UNWIND_MAX = 3,     /* out is full */
    BP_UNWIND_ERROR = 4    /* a read fell outside the window and the loaded
                              objects (window too short, garbage), or bad
                              arguments; *at_stop is unspecified */
};

/* bp_unwind_copy, also telling why the walk ended (why may be NULL). Only
 * with BP_UNWIND_NO_INFO is *at_stop meaningful for continuing the walk. */
int bp_unwind_copy_ex(const struct bp_regs *regs, const uint8_t *stack, uint64_t stack_addr,
                      size_t stack_len, uint64_t *out, int max, struct bp_regs *at_stop,
                      int *why);

/* Frees the address space and the object table (they are created again on
 * the next call). Call from the NIF library's unload, when no walk runs. */
void bp_unwind_release(void);

#endif
