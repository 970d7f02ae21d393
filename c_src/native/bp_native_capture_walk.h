/* bp_native_capture_walk.h - internal: the signal handler's walk of JIT frames
 * (bp_native_capture.c), exposed for its unit test on hand-built fake stacks. */
#ifndef BP_NATIVE_CAPTURE_WALK_H
#define BP_NATIVE_CAPTURE_WALK_H

#include <stdint.h>

#include "bp_native_walk.h"
#include "bp_unwind.h"

/* JIT frames of a sample taken in JIT code (registers r), innermost first,
 * at most max, by walk (enum bp_ncap_walk): BP_WALK_FP, the frame-pointer
 * walk from r->bp plus the [RSP] fix-up (the return address at [RSP] at a
 * function's entry and right after `leave`, at [RSP+8] between `push rbp`
 * and `mov rbp, rsp`, when [RSP] holds the caller's frame pointer, still in
 * rbp); BP_WALK_LEAF (or any other value), none (0 frames, BP_NS_LEAF set,
 * m never read). ORs BP_NS_* flags into *flags.
 * Async-signal-safe. */
int bp_ncap_walk_jit(int walk, struct bp_mem *m, const struct bp_ranges_buf *rb,
                     const struct bp_regs *r, uint64_t *out, int max, uint16_t *flags);

#endif
