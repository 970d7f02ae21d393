/* bp_recorder.h - the flight recorder: the ring file (bp_recfile.h) and the
 * `tick` record the sampler thread writes at every tick, encoded in the
 * external term format with erl_interface's ei (doc/recording-format.md,
 * "Payloads"). The Erlang side's records arrive ready-encoded through
 * bp_recorder_append.
 *
 * Threads: bp_recorder_tick is called by the sampler thread only and owns
 * the tick state (CPU readings, encode buffer); everything else may be
 * called from any thread. Locks: the ring file's (a leaf); threads.lock is
 * taken and released before it, never with it.
 */
#ifndef BP_RECORDER_H
#define BP_RECORDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bp_gate.h"
#include "bp_recfile.h"
#include "bp_threads.h"

#define BP_REC_INDEX_MAX 1024 /* per kind: the VM's maximum */

/* What the sampler thread knows at a tick, for the record. */
struct bp_rec_tick {
    double demand;              /* the gate's scheduler figure, 0.0..1.0 */
    uint64_t rss;               /* bytes */
    uint64_t memory_limit;      /* bytes; 0 = none */
    int gate_closed;
    enum bp_gate_reason reason; /* why it is closed */
    int blind;                  /* the thread sees no scheduler thread */
    double tick_ms;             /* the tick's real length */
};

struct bp_recorder {
    struct bp_recfile file;
    _Atomic int active;        /* 1 while a file is open: the tick's one check */
    /* Tick state: the sampler thread's. */
    int64_t prev_cpu[3][BP_REC_INDEX_MAX]; /* CPU ns at the previous tick; -1 = none */
    int64_t prev_wall;                     /* CLOCK_MONOTONIC ns of that tick; 0 = none */
    struct bp_thread_cpu cpu[BP_THREADS_MAX];
    double ratio[BP_THREADS_MAX];
    char *buf;                 /* encode buffer, grown (never shrunk) up to what
                                * BP_THREADS_MAX threads need */
    size_t cap;
    _Atomic uint64_t encode_failed;
    /* The sampler thread's CPU time spent in bp_recorder_tick, and its
     * calls (read by info: the cost per tick record). */
    _Atomic uint64_t tick_cpu_ns;
    _Atomic uint64_t tick_calls;
};

/* Makes the file's lock and the encode buffer. Returns 0 or -1 (nothing left). */
int bp_recorder_init(struct bp_recorder *rec);

/* Closes the file and frees the buffer. No thread may use rec afterwards. */
void bp_recorder_destroy(struct bp_recorder *rec);

/* bp_recfile_open, then marks the recorder active on success. Same
 * arguments and results. Blocks on file I/O. */
int bp_recorder_open(struct bp_recorder *rec, const char *path, uint64_t ring_size,
                     uint64_t os_pid, int64_t since_us, int64_t now_us,
                     const void *first, size_t first_len, int *sys_errno,
                     enum bp_recfile_how *how);

/* Marks inactive and closes the file. Any thread. */
void bp_recorder_close(struct bp_recorder *rec);

static inline int bp_recorder_active(struct bp_recorder *rec)
{
    return atomic_load_explicit(&rec->active, memory_order_acquire);
}

/* Appends a ready-encoded payload (an ETF term). Any thread; never blocks
 * beyond the file lock. Returns a bp_recfile_append result. */
int bp_recorder_append(struct bp_recorder *rec, const void *payload, size_t len);

/* Sampler thread only, at every tick while active: reads every scheduler
 * thread's CPU clock (one clock_gettime each), encodes the `tick` record
 * into the recorder's buffer and appends it. wall is the tick's
 * CLOCK_MONOTONIC ns. Returns a bp_recfile_append result, or -100 when
 * the record could not be encoded (counted in encode_failed). */
int bp_recorder_tick(struct bp_recorder *rec, struct bp_threads *threads, int64_t wall,
                     const struct bp_rec_tick *t);

#endif
