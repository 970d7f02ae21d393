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
 *
 * OTP 29 builds beam.smp with -fvisibility=hidden (erlang/otp#9864): it
 * exports only the NIF and driver APIs, so dlsym finds neither
 * __jit_debug_descriptor nor erts_frame_layout. The descriptor is then
 * searched for in beam.smp's writable segments (bp_jit_find_descriptor) and
 * the frame layout read from the emulator's record in its list (header 0:
 * u32 header, u32 pad, i32 frame_layout, u32 pad, u64 normal_exit, 32
 * bytes; the layout of OTP 25, 27 and 29, checked by beamprof_symbols_SUITE
 * against erts_frame_layout where both exist and against +JPperf where only
 * the record does; a record of another size is not read).
 *
 * All three read the VM's private memory or layout: with the vm_internals
 * option false, nothing here but bp_sym_describe (dladdr, .eh_frame) is
 * called (bp_native_start, nif_info and nif_jit_symbols check the flag
 * first), and bp_sym_internal_reads counts the calls that read.
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
    int frame_layout; /* the emulator record's: 0, 1, or -1 when none was seen */
    int located;      /* bp_jit_snapshot(0, ...): 1 by dlsym, 2 by the segment search */
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

struct bp_objsyms;

enum bp_sym_kind {
    BP_SYM_NONE = 0,    /* in no loaded object (JIT code, anonymous memory) */
    BP_SYM_NAMED = 1,   /* out: the function's name */
    BP_SYM_UNNAMED = 2, /* out: the object's file name; *offset: see below */
};

/* As bp_sym_describe, with the full symbol tables of objs (bp_objsyms.h:
 * .symtab, debug files) for what dladdr cannot name. BP_SYM_NAMED: out
 * holds the name, from dladdr or objs. BP_SYM_UNNAMED: out holds the
 * object's file name (beam.smp for the main program) and *offset the
 * offset from the object's base of the function's start (.eh_frame; the
 * address's own offset when no unwind entry covers it). *obj gets the
 * object's index in objs, -1 when it has none there. *len the length
 * written (out NUL-terminated, truncated to cap). Loads an object's table
 * on first use (file reads: dirty schedulers only). Thread-safe. */
enum bp_sym_kind bp_sym_resolve(struct bp_objsyms *objs, uint64_t addr, char *out, size_t cap,
                                size_t *len, uint64_t *offset, long *obj);

/* Where the frame layout was read. */
enum bp_fl_source {
    BP_FL_NONE = 0,    /* nowhere: the layout is -1 */
    BP_FL_SYMBOL = 1,  /* the exported erts_frame_layout (OTP 25, 27) */
    BP_FL_GDB_JIT = 2, /* the emulator's record of the GDB JIT list (OTP 29) */
};

/* erts_frame_layout of the running VM: 0 or 1; -1 when neither the
 * exported variable nor the GDB JIT list's emulator record gives it. The
 * first answer is kept for the life of the library image (the VM sets the
 * layout once, at boot): the first call may walk the GDB JIT list and
 * search beam.smp's writable segments (about 0.4 MB of checked reads, once);
 * later calls return at once. *source (may be NULL) tells where it came
 * from. Thread-safe; not async-signal-safe. */
int bp_sym_frame_layout_from(enum bp_fl_source *source);

/* bp_sym_frame_layout_from(NULL). */
int bp_sym_frame_layout(void);

/* The frame layout in the emulator's record of the descriptor's list
 * (header 0, exactly 32 bytes, layout 0 or 1, a normal_exit address), or -1
 * when the list cannot be read or holds no such record. Checked reads,
 * bounded walk. */
int bp_jit_frame_layout(uint64_t descriptor_addr);

/* Searches [lo, hi) of this process (checked reads) for a GDB JIT
 * descriptor: version 1, an action of 0..2, a non-NULL first entry, and a
 * list that bp_jit_frame_layout reads (a BEAM's, holding its emulator
 * record). Returns its address and sets *layout to that record's frame
 * layout; 0 and -1 when none is found. */
uint64_t bp_jit_find_descriptor(uint64_t lo, uint64_t hi, int *layout);

/* Parses one symfile (a copy, len bytes) into t: appends one bp_jit_sym per
 * code range. Returns 0 if accepted, -1 if malformed (t unchanged), -2 on
 * allocation failure. Emulator records (header 0) are accepted and add no
 * names; their frame layout (0 or 1) goes to t->frame_layout. Pure:
 * unit-tested with synthetic buffers. */
int bp_jit_parse_symfile(const uint8_t *buf, size_t len, struct bp_jit_table *t);

/* Walks the descriptor at descriptor_addr (0: beam.smp's, found by dlsym,
 * else by bp_jit_find_descriptor over beam.smp's writable segments, the
 * address kept for the image's life) and fills t (which must be zeroed)
 * with a consistent, sorted snapshot. */
enum bp_jit_status bp_jit_snapshot(uint64_t descriptor_addr, struct bp_jit_table *t);

void bp_jit_table_free(struct bp_jit_table *t);

/* How many calls of bp_sym_frame_layout_from, bp_jit_frame_layout,
 * bp_jit_find_descriptor and bp_jit_snapshot this library image has made
 * (a cached answer counts: it was read from the VM once). Every read of
 * erts_frame_layout, of the GDB JIT list and every search for its
 * descriptor goes through one of them, so 0 proves none was made (the
 * vm_internals option; beamprof_native_nif:info/0's internal_reads). */
uint64_t bp_sym_internal_reads(void);

#endif
