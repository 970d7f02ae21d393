/* unwind_chain.h - a call chain for bp_unwind's tests, compiled apart
 * without frame pointers and without sanitizers (see c_src/Makefile). At its
 * bottom it captures the live registers and copies the stack window from
 * RSP upward, as the SIGPROF handler does. */
#ifndef UNWIND_CHAIN_H
#define UNWIND_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "bp_unwind.h"

struct uw_snap {
    uint8_t *buf;      /* in: where the window goes */
    size_t cap;        /* in: its size */
    uint64_t stack_end; /* in: the thread's stack ends here (copy no further) */
    struct bp_regs regs; /* out: registers at the capture */
    size_t len;          /* out: bytes copied, from regs.sp */
};

/* chain_f01 -> ... -> chain_f11 -> chain_capture: 12 frames. */
uint64_t chain_run(struct uw_snap *s, uint64_t x);

/* Calls t(chain_f06, s, x): t stands for JIT code (an anonymous executable
 * page) between two C frames. */
typedef uint64_t (*chain_tramp_fn)(void *fn, struct uw_snap *s, uint64_t x);
uint64_t chain_enter_jit(chain_tramp_fn t, struct uw_snap *s, uint64_t x);
uint64_t chain_f06(struct uw_snap *s, uint64_t x);
uint64_t chain_f03(struct uw_snap *s, uint64_t x);

/* Overwrites `bytes` of the stack below the caller's frame. */
void chain_scribble(size_t bytes);

/* The chain's names, leaf first (chain_capture, chain_f11, ..., chain_f01). */
#define CHAIN_FRAMES 12
extern const char *const chain_names[CHAIN_FRAMES];

#endif
