/* bp_sampler.h - the library's own sampler thread.
 *
 * One OS thread (enif_thread_create), outside the schedulers, ticking at a
 * fixed rate on absolute deadlines. Each tick reads the normal scheduler
 * threads' CPU and run-queue wait (their demand) and the memory figures,
 * chooses the scheduler figure for the gate (demand while it is below the
 * gate's mark; at the mark, the Erlang side's scheduler_wall_time answer to
 * a {beamprof_gate_ping, T} message, or demand again if that answer is a
 * tick late: see bp_gate_input in bp_gate.h; every tick when it sees no
 * scheduler thread, and at least every heartbeat_ms in any case, so that a
 * scheduler blocked in the kernel, busy for scheduler_wall_time while its
 * thread's demand reads 0, still counts), steps the gate, publishes
 * it, pushes a ring record, and sends
 * {beamprof_gate, open | closed, Reason, MonotonicNs} to the notify pid when
 * the published gate flips. While the recorder (bp_recorder.h) is active,
 * each tick also appends a `tick` record to the recording.
 *
 * Locks (order): ctl -> lock. ctl serialises start/stop/reconfigure and is
 * held across the join; the thread never takes it. `lock` guards what the
 * thread reads from the control side (cfg, notify, stop) and is what the
 * thread sleeps on. threads/memory/ring locks are leaves, taken alone.
 */
#ifndef BP_SAMPLER_H
#define BP_SAMPLER_H

#include <erl_nif.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bp_gate.h"
#include "bp_memory.h"
#include "bp_recorder.h"
#include "bp_ring.h"
#include "bp_threads.h"

struct bp_sampler_config {
    uint32_t tick_ms;      /* 1..60000 */
    struct bp_gate_config gate;
    uint64_t memory_limit; /* bytes; 0 = automatic */
};

/* Sampler options kept outside struct bp_sampler_config, whose layout the
 * upgrade carry fixes. */
struct bp_sampler_extra {
    uint32_t heartbeat_ms; /* ping the Erlang side at least this often; 0 = default */
    int hide_threads;      /* test only: the thread sees no scheduler thread */
};

#define BP_HEARTBEAT_MS_DEFAULT 1000u

/* What one library instance hands the next on upgrade. Append-only: a new
 * version adds fields at the end; `size` says how much the caller can take. */
struct bp_carry {
    uint32_t size; /* set by the caller */
    uint32_t abi;  /* set by the callee */
    int was_running;
    struct bp_sampler_config cfg;
    ErlNifPid notify;
    struct bp_gate_state gate;
    struct bp_gate_snapshot pub;
    double report_ratio;
    int64_t report_ns;
    uint32_t schedulers_online; /* since abi 2 */
    struct bp_sampler_extra extra; /* since abi 3 */
    /* Since abi 4: the recording the old library had open (it closes it,
     * the new one reopens and resumes it). Filled by beamprof_nif.c. */
    int rec_open;
    uint64_t rec_ring_size;
    char rec_path[PATH_MAX];
};

struct bp_sampler {
    /* wiring, set once by bp_sampler_init */
    struct bp_threads *threads;
    struct bp_memory *memory;
    struct bp_ring *ring;
    struct bp_gate_pub *pub;
    struct bp_recorder *rec;       /* set after init, before any start; NULL = none */

    pthread_mutex_t ctl;
    pthread_mutex_t lock;
    pthread_cond_t cond;           /* CLOCK_MONOTONIC timed waits */
    int stop;                      /* under lock */
    int cfg_changed;               /* under lock */
    struct bp_sampler_config cfg;  /* under lock */
    struct bp_sampler_extra extra; /* under lock */
    ErlNifPid notify;              /* under lock */
    int have_notify;               /* under lock */

    int retired;                   /* under ctl: never start again */
    ErlNifTid tid;                 /* under ctl */
    _Atomic int running;           /* 1 from a successful start to the join */

    /* Owned by the thread while it runs, by ctl holders otherwise. */
    struct bp_gate_state gate;
    uint64_t cpu_base;             /* CPU ns of finished sampler threads */

    /* Utilization reports, written by any thread. */
    _Atomic uint64_t report_bits;  /* double, bit for bit */
    _Atomic int64_t report_ns;     /* CLOCK_MONOTONIC ns; 0 = never */

    /* Erlang monotonic time minus CLOCK_MONOTONIC, in ns. enif_monotonic_time
     * only works on scheduler threads, so NIF calls measure the offset and
     * the thread adds it to its own clock reads. */
    _Atomic int64_t erl_offset;

    /* Statistics. */
    _Atomic uint64_t ticks;
    _Atomic uint64_t cpu_ns;       /* cpu_base + current thread's CPU */
    _Atomic uint32_t tick_ms;      /* configured tick */

    /* Normal schedulers online (the VM takes the highest-numbered ones
     * offline); 0 = all. Their threads alone count towards demand. */
    _Atomic uint32_t online;

    /* The thread's view, for gate_info: 1 while it sees no normal scheduler
     * thread (the gate then runs on the Erlang side's reports); pings sent;
     * the heartbeat in force. */
    _Atomic int blind;
    _Atomic uint64_t pings;
    _Atomic uint32_t heartbeat_ms;
};

enum bp_sampler_err {
    BP_SAMPLER_OK = 0,
    BP_SAMPLER_RETIRED = -1, /* superseded by a newer library instance */
    BP_SAMPLER_THREAD = -2   /* the thread could not be created */
};

/* Wires the sampler to its data and makes its locks. Does not start it.
 * Returns 0 or -1. */
int bp_sampler_init(struct bp_sampler *s, struct bp_threads *threads,
                    struct bp_memory *memory, struct bp_ring *ring,
                    struct bp_gate_pub *pub);

/* Destroys the locks. The thread must be stopped. */
void bp_sampler_destroy(struct bp_sampler *s);

/* Starts the thread with cfg, extra and notify pid, or, if it runs, hands it the
 * new cfg and pid (taken at its next wake-up, which is now) keeping the gate
 * state. Ring, tick count and the last report are kept across restarts.
 * Returns an enum bp_sampler_err. Scheduler threads only. */
int bp_sampler_start(struct bp_sampler *s, const struct bp_sampler_config *cfg,
                     const struct bp_sampler_extra *extra, const ErlNifPid *notify);

/* Stops and joins the thread if it runs, then resets the gate state and
 * publishes the gate open. If
 * caller_env is not NULL (a process-bound env) and that flipped the
 * published gate, sends {beamprof_gate, open, none, T} to the notify pid.
 * If carry is not NULL, fills it (up to carry->size bytes) before the gate
 * is opened. If retire, the sampler never starts again. Returns 1 if a
 * thread was running. Any thread except the sampler itself. */
int bp_sampler_stop(struct bp_sampler *s, ErlNifEnv *caller_env,
                    struct bp_carry *carry, int retire);

/* Takes over a previous instance's gate and report before a start. Call
 * with no thread running (from upgrade). */
void bp_sampler_adopt(struct bp_sampler *s, const struct bp_carry *carry);

/* Sets how many normal schedulers are online (0 = all), from any thread. */
void bp_sampler_set_online(struct bp_sampler *s, uint32_t online);

/* Records an Erlang-side utilization report (also a heartbeat) and
 * recalibrates the clock offset. Scheduler threads only (NIF context),
 * lock-free. */
void bp_sampler_report(struct bp_sampler *s, double ratio);

/* Measures the Erlang monotonic clock's offset. Scheduler threads only. */
void bp_sampler_calibrate(struct bp_sampler *s);

static inline int bp_sampler_is_running(struct bp_sampler *s)
{
    return atomic_load_explicit(&s->running, memory_order_acquire);
}

/* The memory_limit option in force: the running sampler's, else 0. */
uint64_t bp_sampler_memory_limit(struct bp_sampler *s);

/* Builds {beamprof_gate, open | closed, Reason, T} in env. */
ERL_NIF_TERM bp_sampler_gate_msg(ErlNifEnv *env, int closed,
                                 enum bp_gate_reason reason, double ratio,
                                 int64_t now);

#endif
