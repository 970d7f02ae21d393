/* bp_native_ring.h - a single-producer single-consumer ring of variable-length
 * records, for the native sampler's per-thread sample buffers.
 *
 * The producer is a signal handler on one thread; the consumer is whoever
 * holds the native sampler's control lock (the drain). The producer never
 * blocks, never allocates and touches only the ring's memory and its two
 * atomic counters, so it is async-signal-safe. A full ring refuses the
 * record (the caller counts a drop); nothing is overwritten.
 *
 * Layout: `head` and `tail` are byte counters that only grow; a record lives
 * at (counter & (cap - 1)), starts with struct bp_nring_hdr and is padded to
 * 8 bytes. A record never wraps: when it does not fit before the end of the
 * buffer the producer writes a pad record up to the end and starts at 0.
 */
#ifndef BP_NATIVE_RING_H
#define BP_NATIVE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define BP_NRING_PAD 1u
#define BP_NRING_DATA 2u

struct bp_nring_hdr {
    uint32_t len;  /* whole record, header included, multiple of 8 */
    uint32_t type; /* BP_NRING_PAD | BP_NRING_DATA */
};

struct bp_nring {
    uint8_t *buf;              /* cap bytes, 8-aligned, the caller's */
    size_t cap;                /* a power of two >= 64 */
    _Atomic uint64_t head;     /* written by the producer only */
    _Atomic uint64_t tail;     /* written by the consumer only */
};

/* Uses buf (cap bytes, cap a power of two >= 64, 8-aligned). Returns 0 or
 * -1 for a bad size. Not thread-safe (call before publishing the ring). */
int bp_nring_init(struct bp_nring *r, uint8_t *buf, size_t cap);

/* Producer: reserves room for a record of at most max_len bytes (header
 * included; at most cap / 2). Returns where to write it (the header is
 * filled by commit), or NULL when the ring is full. *pos is for commit.
 * Async-signal-safe. */
void *bp_nring_reserve(struct bp_nring *r, size_t max_len, uint64_t *pos);

/* Producer: publishes the reserved record with its final length (<= the
 * reserved max_len). Async-signal-safe. */
void bp_nring_commit(struct bp_nring *r, uint64_t pos, size_t len);

/* Consumer: the oldest record (header first) or NULL when empty. Skips pad
 * records. The pointer is valid until bp_nring_pop. */
const struct bp_nring_hdr *bp_nring_peek(struct bp_nring *r);

/* Consumer: frees the record bp_nring_peek returned. */
void bp_nring_pop(struct bp_nring *r, const struct bp_nring_hdr *h);

/* Bytes in use (approximate while the producer runs). */
size_t bp_nring_used(struct bp_nring *r);

#endif
