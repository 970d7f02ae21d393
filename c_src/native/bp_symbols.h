/* bp_symbols.h - symbolization of native sample addresses, off the hot path.
 *
 * Three sources, all read in an ordinary thread (a NIF call on a dirty
 * scheduler), never in signal context:
 *  - dladdr(3) for addresses inside a loaded ELF object (beam.smp, libc, NIF
 *    libraries): the exported symbol covering the address, else
 *    "<object basename>+0x<offset from the object's base of the start of the
 *    function holding the address>" (function bounds from .eh_frame);
 *  - beam.smp's GDB JIT interface (__jit_debug_descriptor): a linked list of
 *    in-memory "symfiles" the JIT registers for debuggers, one per loaded
 *    module, holding the module's code ranges and their names. The VM edits
 *    that list under its own mutex, which we cannot take, so it is read with
 *    checked copies (process_vm_readv on ourselves: a read of freed, unmapped
 *    memory returns an error instead of faulting), every pointer and size is
 *    validated, the walk is bounded, and a snapshot is only accepted when two
 *    consecutive walks see the same chain;
 *  - erts_frame_layout (dlsym): 1 when the JIT keeps frame pointers.
 */
#ifndef BP_SYMBOLS_H
#define BP_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#include "bp_sym_read.h" /* bp_sym_read: checked reads of our own memory */

/* Limits of one GDB JIT snapshot. */
#define BP_JIT_MAX_ENTRIES 65536u       /* modules (list entries) walked */
#define BP_JIT_MAX_SYMFILE (16u << 20)  /* bytes of one entry's symfile */
#define BP_JIT_MAX_RANGES 4000000u      /* names kept in one snapshot */

/* One named JIT code range [start, end). name points into the table's
 * string pool (NUL-terminated, at most 65535 bytes). */
struct bp_jit_sym {
    uint64_t start;
    uint64_t end;
    uint32_t name_off; /* offset of the name in bp_jit_table.pool */
    uint32_t name_len; /* without the NUL */
};

/* A snapshot of the JIT's symbols, sorted by start. Owned by the caller:
 * fill with bp_jit_snapshot(), release with bp_jit_table_free(). */
struct bp_jit_table {
    struct bp_jit_sym *syms;
    size_t count, cap;
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t modules; /* symfiles accepted */
    uint32_t skipped; /* symfiles rejected by validation */
};

enum bp_jit_status {
    BP_JIT_OK = 0,
    BP_JIT_NO_DESCRIPTOR = 1, /* beam.smp exports no __jit_debug_descriptor */
    BP_JIT_UNREADABLE = 2,    /* a checked read of the list failed */
    BP_JIT_INCONSISTENT = 3,  /* the list kept changing under the walk */
    BP_JIT_ENOMEM = 4,
};

/* Writes the name of the native code at addr into out (NUL-terminated,
 * truncated to cap): its exported symbol, else "object+0x<offset of its
 * function's start>" (from .eh_frame; the address's own offset when no
 * unwind entry covers it), and returns its length; 0 when addr lies in no loaded
 * object (JIT code, anonymous memory). addr should already be "return
 * address - 1" for non-leaf frames. Thread-safe (dladdr takes the loader's
 * lock: never call from a signal handler). */
size_t bp_sym_describe(uint64_t addr, char *out, size_t cap);

/* erts_frame_layout of the running VM: 0 or 1; -1 when not exported. */
int bp_sym_frame_layout(void);

/* Parses one symfile (a copy, len bytes) into t: appends one bp_jit_sym per
 * code range. Returns 0 if accepted, -1 if malformed (t unchanged), -2 on
 * allocation failure. Emulator records (header 0) are accepted and add
 * nothing. Pure: unit-tested with synthetic buffers. */
int bp_jit_parse_symfile(const uint8_t *buf, size_t len, struct bp_jit_table *t);

/* Walks the descriptor at descriptor_addr (0: look it up with dlsym) and
 * fills t (which must be zeroed) with a consistent, sorted snapshot. */
enum bp_jit_status bp_jit_snapshot(uint64_t descriptor_addr, struct bp_jit_table *t);

void bp_jit_table_free(struct bp_jit_table *t);

#endif
