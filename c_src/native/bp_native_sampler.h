/* bp_native_sampler.h - the native sampler's NIF-side control: start/stop of a
 * capture run over the VM's scheduler threads, the rescan thread, the drain
 * (records -> unwound samples) and its statistics. The capture itself
 * (signal handler, timers, rings) is bp_native_capture.c. The scheduler
 * threads and the load gate come from the core library through a channel
 * (shared/bp_channel.h), kept from start to stop.
 *
 * Nothing exists until the first start (off = zero cost): the state behind
 * struct bp_native is allocated by bp_native_get(create = 1), and no
 * handler, timer or thread exists before bp_native_start.
 *
 * Locks (order): ctl -> the core's thread table lock (inside the channel's
 * threads function); ctl -> cache_lock. ctl serialises start,
 * stop and drain batches; info and the rescan thread only ever trylock it
 * (so info never waits on a normal scheduler, and stop may join the thread
 * while holding ctl). The signal handler takes no lock.
 */
#ifndef BP_NATIVE_SAMPLER_H
#define BP_NATIVE_SAMPLER_H

#include <erl_nif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bp_channel.h"
#include "bp_native_capture.h"

#define BP_NATIVE_KIND_ALL 7u /* 1 << enum bp_thread_type, all three */

/* Test-only hooks (bp_native_opts.hooks), set from the start config's
 * test_hooks list: never in production use. */
#define BP_HOOK_DENY_READS 1u /* the process_vm_readv probe reports denial */
#define BP_HOOK_SLOW_START 2u /* start holds ctl 3 s longer (to test info) */

struct bp_native_opts {
    struct bp_ncap_config cap; /* hz, depth, stack_bytes, ring_bytes, gate_hz
                                  (jit_walk: set by start) */
    unsigned kinds;            /* mask of 1 << enum bp_thread_type */
    unsigned hooks;            /* BP_HOOK_*, tests only */
};

/* What one library instance hands the next on upgrade. Append-only. */
struct bp_native_carry {
    uint32_t size; /* set by the caller */
    uint32_t abi;  /* set by the callee */
    int was_running;
    struct bp_native_opts opts;
    void *handler; /* the old instance's SIGPROF handler */
    int vm_internals; /* abi 2+: the run's vm_internals (an abi 1 carry: read as 0) */
};

enum bp_native_err {
    BP_NATIVE_OK = 0,
    BP_NATIVE_ALREADY = -1,   /* already_started */
    BP_NATIVE_FOREIGN = -2,   /* someone else's SIGPROF handler */
    BP_NATIVE_NO_THREADS = -3,/* no scheduler thread of the selected kinds */
    BP_NATIVE_TIMERS = -4,    /* no CPU-clock timer could be made */
    BP_NATIVE_ENOMEM = -5,
    BP_NATIVE_RETIRED = -6,   /* superseded by a newer library instance */
    BP_NATIVE_SIGACTION = -7
};

struct bp_native {
    pthread_mutex_t ctl;

    /* under ctl */
    /* The core's channel while running: kept (enif_keep_resource) by start,
     * released by stop once no handler and no rescan can use it. */
    const struct bp_channel *ch;
    struct bp_ncap_run *run; /* the last run: running, or stopped and drainable */
    int running;
    int retired;
    void *also_ours;         /* a previous instance's handler (upgrade) */
    struct bp_native_opts opts;
    int vm_internals; /* the last start's (handed over on upgrade) */
    int64_t started_ns, stopped_ns; /* CLOCK_MONOTONIC */
    int reads; /* the last start's process_vm_readv probe: 1 ok, 0 denied
                  (the run is leaf-only), -1 no start yet */
    uint64_t drained;
    struct bp_range *ranges_tmp;    /* BP_RANGES_MAX, for refreshes */
    struct bp_channel_thread *sel;  /* BP_THREADS_MAX, for thread syncs */

    /* the rescan thread */
    pthread_mutex_t lock;  /* guards stop_thread; what the thread sleeps on */
    pthread_cond_t cond;
    int stop_thread;
    int have_thread;       /* under ctl */
    ErlNifTid tid;
    _Atomic uint64_t rescans;
    _Atomic uint64_t rescan_ns; /* CPU time of the rescan thread's work, this run */
    _Atomic uint64_t drain_ns;  /* CPU time of drain calls, this run */
    /* The gate's closed time this run, polled by the thread every
     * BP_GATE_POLL_MS (and at stop): gate_last_* belong to the thread while
     * it runs, to ctl's holder otherwise. */
    _Atomic uint64_t gate_closed_ns;
    int64_t gate_last_ns;
    int gate_last_closed;
    struct bp_ncap_run *thread_run; /* the run the thread polls (set before it starts) */

    /* What info answers while ctl is held by someone else (a start, a
     * rescan parsing /proc/self/maps, a drain batch): the last statistics
     * taken under ctl. Guarded by cache_lock, held only to copy. */
    pthread_mutex_t cache_lock;
    struct bp_native_stats_run *cache;
};

/* The part of the statistics that needs ctl (cached for info). */
struct bp_native_stats_run {
    int running;
    uint32_t hz, depth, stack_bytes, ring_bytes, gate_hz;
    unsigned kinds;
    int reads;          /* see struct bp_native */
    uint64_t jit_walks; /* samples of the last run whose JIT/Erlang stack was read */
    uint64_t samples, weighted, dropped, thinned, gated, lost_weight;
    uint64_t gate_closed_ns; /* wall time the gate was closed during the run */
    uint64_t cpu_ns;    /* CPU time of the sampled threads during the run */
    uint64_t wall_ns;
    uint64_t threads;   /* threads with a live timer */
    uint64_t slots;     /* threads ever sampled in this run */
    uint64_t pending;   /* bytes not drained yet */
    uint64_t drained, rescans;
    uint64_t handler_ns; /* CPU time in the signal handler, all threads */
    uint64_t drain_ns;   /* CPU time of the drains (unwinding included) */
    uint64_t rescan_ns;  /* CPU time of the rescans (threads, mappings) */
};

/* Statistics for native_info. */
struct bp_native_stats {
    struct bp_native_stats_run r;
    int cached; /* r is the copy taken last time ctl was free (it was held) */
    int frame_pointers; /* 1, 0, or -1 when beam.smp does not say (or was not asked) */
    int frame_layout_source; /* enum bp_fl_source: where frame_pointers came from */
    int jit_walk;       /* enum bp_ncap_walk: what a start would use */
    uint64_t internal_reads; /* bp_sym_internal_reads(): image-wide */
    uint64_t stray;     /* bp_ncap_stray_total(): image-wide, since load */
};

/* The state hanging off *slot, made on first use when create is set (a
 * lock-free publish: concurrent creators agree on one). NULL when absent
 * and create is 0, or out of memory. */
struct bp_native *bp_native_get(struct bp_native *_Atomic *slot, int create);

/* Starts capturing on the selected threads of the channel's table, at
 * o->cap.gate_hz while its gate is closed (bp_ncap_config). Probes
 * process_vm_readv first (bp_ncap_probe_reads, or the BP_HOOK_DENY_READS
 * hook): when denied the run reads no stack at all (no window, leaf walk)
 * and n->reads says so. ch must have passed bp_channel_check; on
 * success the run keeps it (enif_keep_resource) until stop. Returns an enum
 * bp_native_err; on BP_NATIVE_FOREIGN, *foreign is the installed handler.
 * With vm_internals set, reads the frame layout (bp_sym_frame_layout_from)
 * and walks JIT frames by it (BP_WALK_FP with frame pointers, else
 * BP_WALK_LEAF: no caller it could not verify); with it 0,
 * reads no VM internals at all: the layout is unknown, the frame-layout
 * cache is neither consulted nor filled, and the walk is BP_WALK_LEAF.
 * Scheduler threads only (may dlsym). */
int bp_native_start(struct bp_native *n, const struct bp_native_opts *o, int vm_internals,
                    const struct bp_channel *ch, void **foreign);

/* Stops: the rescan thread joined, every timer deleted, no handler running
 * in the run, the channel released; the samples stay for the drain and our
 * handler stays installed (a late SIGPROF is counted as stray, see
 * bp_ncap_stray_total). Idempotent. */
void bp_native_stop(struct bp_native *n);

/* Builds up to max samples, oldest first, as a list of
 * {Kind, Index, Weight, Truncated, Addrs}. Any thread with an env. */
ERL_NIF_TERM bp_native_drain(struct bp_native *n, ErlNifEnv *env, unsigned max);

/* Statistics (n may be NULL). Never waits for ctl: while another thread
 * holds it (a start, a rescan, a drain batch) the run's part is the copy
 * taken the last time it was free (s->cached set). The frame layout, its source and the walk
 * are what a start with vm_internals uses: looked up when it is set (the
 * layout is the VM's, fixed at boot: the same for every start), else
 * unknown (-1, BP_FL_NONE, BP_WALK_LEAF) without reading anything. */
void bp_native_stats(struct bp_native *n, int vm_internals, struct bp_native_stats *s);

/* Upgrade: stops this instance for good (it never starts again) and fills
 * the carry for the next one (up to carry->size bytes). */
void bp_native_handover(struct bp_native *n, struct bp_native_carry *carry);

/* Takes a previous instance's handler as ours (before a start). */
void bp_native_adopt(struct bp_native *n, const struct bp_native_carry *carry);

/* Unload: stops, sets SIGPROF to SIG_IGN if our handler is installed, waits
 * for running handlers and frees everything. n may be NULL (then only the
 * disposition is released if ours). */
void bp_native_free(struct bp_native *n);

#endif
