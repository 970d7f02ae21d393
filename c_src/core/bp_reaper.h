/* bp_reaper.h - a thread of ours that frees what resource destructors hand
 * it. A destructor runs wherever the last reference to its resource drops:
 * on any scheduler, normal ones included, inside a process's exit or a
 * garbage collection. Giving back tens of MiB there (munmap of touched
 * pages: 1-1.5 ms per 32 MiB table measured here) holds that scheduler for
 * milliseconds. A destructor hands such memory to bp_reaper_give instead,
 * and the reaper thread frees it.
 *
 * The thread starts on the first give and is joined by the last close.
 * Every instance of the core library opens the reaper in load/upgrade and
 * closes it in unload; instances loaded from one file share this image's
 * reaper (a count of opens), and ERTS runs unload only once no resource
 * with a destructor is left, so no give can follow the last close.
 *
 * Locks: one mutex (the queue), never held while a job runs. Not for
 * signal handlers.
 */
#ifndef BP_REAPER_H
#define BP_REAPER_H

#include <stddef.h>
#include <stdint.h>

/* Below this many bytes a destructor frees inline (the hand-over costs
 * more than the free). */
#define BP_REAPER_MIN_BYTES ((size_t)1 << 20)

/* Counts an instance in (load, upgrade). */
void bp_reaper_open(void);

/* Counts an instance out (unload); the last one runs what is queued and
 * joins the thread. */
void bp_reaper_close(void);

/* Queues fn(arg) for the reaper thread: 0, and fn owns arg from now on; -1
 * when it cannot (no memory, no thread, or closed): the caller frees
 * inline. bytes is what fn gives back (for the counters). Any thread. */
int bp_reaper_give(void (*fn)(void *), void *arg, size_t bytes);

struct bp_reaper_stats {
    uint64_t given, done;             /* jobs queued, jobs run */
    uint64_t bytes_given, bytes_done; /* their bytes */
    uint64_t inline_frees;            /* large frees a give refused (done inline) */
    int running;                      /* the thread exists */
};

/* The counters since this image was loaded. Any thread. */
void bp_reaper_stats(struct bp_reaper_stats *s);

/* Counts a large free a give refused (the caller freed inline). */
void bp_reaper_count_inline(void);

#endif
