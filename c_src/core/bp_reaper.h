/* bp_reaper.h - a thread of ours that frees large blocks.
 *
 * A resource's destructor runs wherever its last reference drops: on the
 * scheduler of a walker process that was killed holding a buffer of tens
 * of MiB, say. Unmapping that much takes milliseconds (1-1.5 ms per 32 MiB
 * table here), too long for a normal scheduler. The scan's destructors and
 * its table regrowth hand such blocks to this thread instead.
 *
 * One reaper per library image (static state): load and upgrade take a
 * reference (the first starts the thread), unload drops one (the last stops
 * and joins the thread after it has freed everything queued). A block handed
 * over while no thread runs, or when the queue is full, is freed by the
 * caller at once.
 *
 * Locks: one mutex of its own, a leaf (never held with another lock).
 */
#ifndef BP_REAPER_H
#define BP_REAPER_H

#include <stddef.h>
#include <stdint.h>

#include "bp_scan.h"

/* Blocks below this many bytes are freed at once: not worth a hand-over. */
#define BP_REAPER_MIN_BYTES ((size_t)256 * 1024)

/* Takes a reference, starting the thread on the first. 0, or -1 when the
 * thread cannot be created (blocks are then freed by their callers). Load
 * and upgrade only. */
int bp_reaper_ref(void);

/* Drops a reference; the last one stops the thread once it has freed what
 * is queued, and joins it. Unload only. */
void bp_reaper_unref(void);

/* Hands the block over (or frees it now: small, no thread, queue full) and
 * clears *b. Any thread, including resource destructors. */
void bp_reaper_free(struct bp_block *b);

/* Blocks freed by the thread so far (for tests). Any thread. */
uint64_t bp_reaper_freed(void);

#endif
