/* bp_native_walk.h - the native sampler's stack readers: executable ranges (ELF
 * text vs JIT code), a chunk cache over a fault-free memory reader, the
 * frame-pointer walk. Pure C: the reader is a
 * callback (process_vm_readv on our own process in the signal handler, a
 * plain buffer in the unit tests), so no load here can fault.
 *
 * Everything in this header is async-signal-safe except
 * bp_ranges_parse_maps and bp_ranges_publish (control side only).
 */
#ifndef BP_NATIVE_WALK_H
#define BP_NATIVE_WALK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- ranges */

enum bp_range_kind { BP_RANGE_NONE = 0, BP_RANGE_ELF = 1, BP_RANGE_JIT = 2 };

struct bp_range {
    uint64_t lo, hi; /* [lo, hi) */
    uint32_t kind;   /* enum bp_range_kind */
    uint32_t pad;
};

#define BP_RANGES_MAX 4096

struct bp_ranges_buf {
    _Atomic uint32_t readers;
    uint32_t n;
    struct bp_range r[BP_RANGES_MAX];
};

/* Two buffers: one writer (the control side) fills the inactive one once no
 * reader is left in it, then flips `active`. Readers (signal handlers)
 * never wait: see bp_ranges_enter. */
struct bp_ranges {
    _Atomic int active;
    struct bp_ranges_buf b[2];
};

/* Parses the text of /proc/self/maps into sorted executable ranges:
 * file-backed executable mappings are ELF text (and [vdso]); anonymous and
 * /memfd: executable mappings are JIT code. Adjacent ranges of one kind are
 * merged. Returns the number written (at most max). */
size_t bp_ranges_parse_maps(const char *text, size_t len, struct bp_range *out,
                            size_t max);

/* Kind of addr in r[0..n) (sorted, disjoint), by binary search. */
enum bp_range_kind bp_range_kind_of(const struct bp_range *r, size_t n, uint64_t addr);

/* Initialises both buffers empty. */
void bp_ranges_init(struct bp_ranges *rs);

/* Control side, one writer at a time: copies r[0..n) into the inactive
 * buffer (waiting, sleeping 50 us at a time, until no reader is in it) and
 * makes it the active one. */
void bp_ranges_publish(struct bp_ranges *rs, const struct bp_range *r, size_t n);

/* Reader side (async-signal-safe, never waits): the active buffer, pinned
 * until bp_ranges_leave, or NULL if it flipped under us (then nothing is
 * known). */
const struct bp_ranges_buf *bp_ranges_enter(struct bp_ranges *rs);
void bp_ranges_leave(const struct bp_ranges_buf *b);

static inline enum bp_range_kind bp_ranges_kind(const struct bp_ranges_buf *b, uint64_t a)
{
    return b == NULL ? BP_RANGE_NONE : bp_range_kind_of(b->r, b->n, a);
}

/* --------------------------------------------------------- chunk cache */

/* Copies up to len bytes at addr into dst; returns how many were copied
 * from addr on (0 when addr is not readable). Must never fault. */
typedef size_t (*bp_read_fn)(void *ctx, uint64_t addr, uint8_t *dst, size_t len);

struct bp_mem {
    bp_read_fn read;
    void *ctx;
    uint8_t *buf;  /* cap bytes of cache, the caller's */
    size_t cap;
    uint64_t base; /* cache holds [base, base + len) */
    size_t len;
    uint32_t reads; /* reader calls made (cost accounting) */
};

/* Reads the n words at addr (8-aligned) into out through the cache. On a
 * miss, reads one chunk starting at addr. Returns 1, or 0 if unreadable. */
int bp_mem_words(struct bp_mem *m, uint64_t addr, uint64_t *out, size_t n);

/* ------------------------------------------------------------- walkers */

#define BP_FP_MAX_GAP (1u << 20) /* largest accepted frame: 1 MiB */

/* Frame-pointer walk from fp: each frame is [saved fp, return address] at
 * fp; the chain must grow strictly upwards by at most BP_FP_MAX_GAP and be
 * 8-aligned. Writes the return addresses (innermost first) to out, at most
 * max. With jit_only (else NULL), a return address outside its JIT ranges
 * stops the walk before it is written. *ended is set to 1 when the chain
 * ended properly (a saved fp of 0), else 0 (unreadable, invalid, not JIT
 * code, or max reached). Returns the count. */
int bp_fp_walk(struct bp_mem *m, uint64_t fp, uint64_t *out, int max,
               const struct bp_ranges_buf *jit_only, int *ended);

#endif
