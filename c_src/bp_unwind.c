/* bp_unwind.c - remote DWARF unwinding of a copied stack window (stub: the
 * leaf only, until the libunwind version lands). */
#include "bp_unwind.h"

int bp_unwind_copy(const struct bp_regs *regs, const uint8_t *stack, uint64_t stack_addr,
                   size_t stack_len, uint64_t *out, int max, struct bp_regs *at_stop)
{
    (void)stack;
    (void)stack_addr;
    (void)stack_len;
    if (regs == NULL || out == NULL || max <= 0)
        return 0;
    out[0] = regs->ip;
    if (at_stop != NULL)
        *at_stop = *regs;
    return 1;
}
