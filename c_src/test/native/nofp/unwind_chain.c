/* unwind_chain.c - see unwind_chain.h. Built with -O2 -fomit-frame-pointer:
 * RBP is an ordinary callee-saved register here, so only DWARF CFI can walk
 * these frames. Each function keeps values live across its call (so the CFI
 * records callee-saved registers) and is not a tail call. */
#include "unwind_chain.h"
#include "bp_regs_capture.h"

#define NOINL __attribute__((noinline, noclone, used))

const char *const chain_names[CHAIN_FRAMES] = {
    "chain_capture", "chain_f11", "chain_f10", "chain_f09", "chain_f08", "chain_f07",
    "chain_f06",     "chain_f05", "chain_f04", "chain_f03", "chain_f02", "chain_f01"};

NOINL uint64_t chain_capture(struct uw_snap *s, uint64_t x)
{
    BP_CAPTURE_REGS(&s->regs);
    s->len = bp_copy_window(s->buf, s->cap, s->regs.sp, s->stack_end);
    return x * 7 + s->regs.sp;
}

#define LINK(name, next, k)                                                  \
    NOINL uint64_t name(struct uw_snap *s, uint64_t x)                        \
    {                                                                         \
        volatile uint64_t pad[k];                                             \
        uint64_t a = x * 3 + k, b = x ^ (0x9e37u * k), c = x + 11 * k;        \
        for (int i = 0; i < k; i++)                                           \
            pad[i] = a + (uint64_t)i;                                         \
        uint64_t r = next(s, x + k);                                          \
        return r + a * b + c + pad[k - 1];                                    \
    }

uint64_t chain_f11(struct uw_snap *s, uint64_t x);
uint64_t chain_f10(struct uw_snap *s, uint64_t x);
uint64_t chain_f09(struct uw_snap *s, uint64_t x);
uint64_t chain_f08(struct uw_snap *s, uint64_t x);
uint64_t chain_f07(struct uw_snap *s, uint64_t x);
uint64_t chain_f05(struct uw_snap *s, uint64_t x);
uint64_t chain_f04(struct uw_snap *s, uint64_t x);
uint64_t chain_f02(struct uw_snap *s, uint64_t x);
uint64_t chain_f01(struct uw_snap *s, uint64_t x);

LINK(chain_f11, chain_capture, 1)
LINK(chain_f10, chain_f11, 3)
LINK(chain_f09, chain_f10, 2)
LINK(chain_f08, chain_f09, 9)
LINK(chain_f07, chain_f08, 1)
LINK(chain_f06, chain_f07, 4)
LINK(chain_f05, chain_f06, 17)
LINK(chain_f04, chain_f05, 2)
LINK(chain_f03, chain_f04, 5)
LINK(chain_f02, chain_f03, 1)
LINK(chain_f01, chain_f02, 3)

NOINL uint64_t chain_run(struct uw_snap *s, uint64_t x)
{
    uint64_t r = chain_f01(s, x);
    return r ^ x;
}

NOINL uint64_t chain_enter_jit(chain_tramp_fn t, struct uw_snap *s, uint64_t x)
{
    uint64_t r = t((void *)chain_f06, s, x);
    return r ^ x;
}

NOINL void chain_scribble(size_t bytes)
{
    volatile uint8_t junk[65536];
    if (bytes > sizeof junk)
        bytes = sizeof junk;
    for (size_t i = 0; i < bytes; i++)
        junk[sizeof junk - 1 - i] = (uint8_t)(0xa5 ^ i);
}
