/* bp_scan.h - bounded aggregation for process and port scans: a top-K
 * min-heap, a log-linear (HDR-style) histogram, a growable id buffer and a
 * two-generation window table (id -> previous value, for deltas).
 *
 * Pure C: no ERTS symbols, so the unit tests link it alone. Ids are opaque
 * 64-bit words (the NIF layer stores ERL_NIF_TERM words of terms it copied
 * into an environment of its own). None of these structures locks: the NIF
 * layer (bp_scan_nif.c) holds a mutex per resource around every call.
 * Memory comes from malloc/calloc/free.
 */
#ifndef BP_SCAN_H
#define BP_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- top-K */

struct bp_topk_entry {
    int64_t value;
    uint64_t seq; /* insertion order: ties keep the earlier entry first */
    uint64_t id;
};

struct bp_topk {
    struct bp_topk_entry *heap; /* min-heap on (value, -seq), n entries */
    uint32_t k, n;
    uint64_t seq;
};

#define BP_TOPK_MAX 10000u

/* k in 1..BP_TOPK_MAX. Returns 0, or -1 (nothing allocated) on a bad k or
 * no memory. */
int bp_topk_init(struct bp_topk *t, uint32_t k);
void bp_topk_destroy(struct bp_topk *t);

/* Offers (value, id). Returns 0 when refused (full and value not above the
 * smallest kept), 1 when kept, 2 when kept and another entry was evicted
 * (its id in *evicted). A value equal to the smallest kept is refused:
 * the first K to reach a value win. */
int bp_topk_offer(struct bp_topk *t, int64_t value, uint64_t id, uint64_t *evicted);

/* The value an offer must exceed to be kept: INT64_MIN until K entries are
 * kept, then the smallest kept value. */
int64_t bp_topk_floor(const struct bp_topk *t);

/* Copies the kept entries into out (room for t->n), largest value first,
 * equal values in insertion order. Returns t->n. */
uint32_t bp_topk_sorted(const struct bp_topk *t, struct bp_topk_entry *out);

/* --------------------------------------------------------- histogram */

/* Values below 2^(BP_HIST_SUB_BITS+1) have a bucket each; above, every
 * power of two is split into 2^BP_HIST_SUB_BITS buckets, so a bucket spans
 * at most 1/32 of its lowest value (about 3% relative precision). */
#define BP_HIST_SUB_BITS 5
#define BP_HIST_SUB (1u << BP_HIST_SUB_BITS)
#define BP_HIST_BUCKETS ((64u - BP_HIST_SUB_BITS + 1u) * BP_HIST_SUB)

struct bp_hist {
    uint64_t count, min, max, sum; /* sum saturates at UINT64_MAX */
    uint64_t buckets[BP_HIST_BUCKETS];
};

void bp_hist_init(struct bp_hist *h);
void bp_hist_add(struct bp_hist *h, uint64_t v);
uint32_t bp_hist_index(uint64_t v);
/* The smallest and largest value that fall in bucket idx. */
uint64_t bp_hist_lower(uint32_t idx);
uint64_t bp_hist_upper(uint32_t idx);
/* Nearest-rank percentile, p in [0, 100]: the largest value of the bucket
 * holding the ceil(p/100 * count)-th smallest value (at least the first),
 * clamped to [min, max]. 0 when empty. */
uint64_t bp_hist_percentile(const struct bp_hist *h, double p);

/* ------------------------------------------------------ large blocks */

/* A block of memory a structure let go of, to be freed later, on any
 * thread, by bp_block_free (the NIF layer hands large ones to a thread of
 * its own: bp_reaper.h). pages: from mmap (free with munmap), else malloc. */
struct bp_block {
    void *p;
    size_t bytes;
    int pages;
};

/* Frees the block (nothing for p == NULL) and clears it. Any thread. */
void bp_block_free(struct bp_block *b);

/* --------------------------------------------------------- id buffer */

struct bp_idbuf {
    uint64_t *ids;
    size_t size, capacity, cursor;
};

#define BP_IDBUF_MAX ((size_t)1 << 28)

void bp_idbuf_init(struct bp_idbuf *b);
void bp_idbuf_destroy(struct bp_idbuf *b);
/* Empties b (as destroy) without freeing: *out gets its storage. */
void bp_idbuf_detach(struct bp_idbuf *b, struct bp_block *out);
/* Makes room for n more ids (doubling). 0, or -1 (unchanged) beyond
 * BP_IDBUF_MAX or without memory. */
int bp_idbuf_reserve(struct bp_idbuf *b, size_t n);
/* Appends; room must have been reserved. */
void bp_idbuf_push(struct bp_idbuf *b, uint64_t id);
/* Where the next ids go: room for what was reserved. bp_idbuf_added then
 * counts the n written there. */
uint64_t *bp_idbuf_spare(struct bp_idbuf *b);
void bp_idbuf_added(struct bp_idbuf *b, size_t n);
/* Points *out at up to max ids from the cursor and advances it. Returns how
 * many (0 at the end). The pointer is valid until the next push/reserve. */
size_t bp_idbuf_take(struct bp_idbuf *b, size_t max, const uint64_t **out);

/* ------------------------------------------------------ window table */

/* Equality of two ids whose hashes are equal (NULL: the words are equal). */
typedef int (*bp_id_eq)(uint64_t a, uint64_t b);

struct bp_wslot {
    uint64_t id;
    uint64_t value;
    uint64_t aux; /* the caller's word kept beside the value (BP_WINDOW_NO_AUX: none) */
    uint32_t hash;
    uint32_t tag; /* generation << 4 | flags; generation 0 = empty */
};

#define BP_WINDOW_NO_AUX UINT64_MAX

struct bp_wtab {
    struct bp_wslot *slots;
    uint32_t mask; /* capacity - 1 (a power of two), 0 when no slots */
    uint32_t gen;  /* generation written into this table */
    uint32_t used;
};

#define BP_WINDOW_FLAGS 0xfu
#define BP_WINDOW_GEN_MAX ((1u << 28) - 1u)
#define BP_WINDOW_EXPECT_MAX ((size_t)1 << 27)

/* Scan g writes table g & 1 and reads table (g - 1) & 1: a value is kept
 * for exactly one generation, so the table never needs deletions and a
 * new generation clears its table by bumping the stamp (O(1)). */
struct bp_window {
    struct bp_wtab t[2];
    uint32_t gen; /* current generation; 0 before the first begin */
    uint64_t overflow; /* updates that found the current table full */
    bp_id_eq eq;
    /* When keep_dropped is set, bp_window_begin does not free the tables it
     * replaces: it leaves them here for bp_window_take_dropped (a block still
     * here at the next begin is freed then). */
    int keep_dropped;
    struct bp_block dropped[2];
};

void bp_window_init(struct bp_window *w, bp_id_eq eq);
void bp_window_destroy(struct bp_window *w);
/* Empties w (as destroy, dropped blocks included) without freeing: out[0..3]
 * get the two tables and the two dropped blocks. */
void bp_window_detach(struct bp_window *w, struct bp_block out[4]);
/* Moves the blocks begin dropped into out[0..1] (p NULL where none). */
void bp_window_take_dropped(struct bp_window *w, struct bp_block out[2]);
/* Starts the next generation, sized for `expected` updates (at most
 * BP_WINDOW_EXPECT_MAX). Returns the table index (0 or 1) now written, or
 * -1 without memory (nothing changed). At BP_WINDOW_GEN_MAX both tables are
 * dropped and generations start again at 1. */
int bp_window_begin(struct bp_window *w, size_t expected);
/* Records id's value, flags and aux word in the current generation. *delta is value
 * minus the previous generation's value for id (value itself when id is new
 * in a window that has a previous generation or its value went down - a
 * reused id -, 0 in the first generation); *prev_flags the flags it had then (0 when new).
 * Returns 1 when id was in the previous generation, 0 when not, -1 when the
 * current table was full (nothing stored; delta still computed) or no
 * generation was begun (delta 0). *inserted is set when a new slot was
 * taken (the caller then owns the id's storage for this generation). */
int bp_window_update(struct bp_window *w, uint64_t id, uint32_t hash, uint64_t value,
                     unsigned flags, uint64_t aux, uint64_t *delta, unsigned *prev_flags,
                     int *inserted);
/* Hints the cache to load the slots an update of hash will probe first in
 * both tables (no effect on the contents). */
void bp_window_prefetch(const struct bp_window *w, uint32_t hash);
/* What the previous generation recorded for id: 1 with *value and *aux
 * (the word given to bp_window_update), or 0 when id is not there (or
 * there is no previous generation). Reads only. */
int bp_window_previous(const struct bp_window *w, uint64_t id, uint32_t hash, uint64_t *value,
                       uint64_t *aux);

#endif
