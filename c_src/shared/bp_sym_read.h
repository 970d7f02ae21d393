/* bp_sym_read.h - checked reads of this process's own memory: a read of
 * unmapped or freed memory returns an error instead of faulting. Used by
 * the core's process table walk (bp_scan_nif.c, bp_ptab.c) and the native
 * sampler's JIT symbol walk (bp_symbols.c); compiled into both libraries. */
#ifndef BP_SYM_READ_H
#define BP_SYM_READ_H

#include <stddef.h>
#include <stdint.h>

/* Copies len bytes at address addr of this process into dst without ever
 * faulting: 0 on success, -1 when any byte is unreadable. Thread-safe; not
 * async-signal-safe in its fallback path (it may open /proc/self/mem). */
int bp_sym_read(void *dst, uint64_t addr, size_t len);

#endif
