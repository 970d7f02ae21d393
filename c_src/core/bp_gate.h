/* bp_gate.h - the load gate: a pure step function and its published state.
 *
 * The gate closes fast and opens slowly. While open it closes when memory is
 * above memory_high (checked first: memory is the more dangerous) or the
 * scheduler utilization is above scheduler_high. While closed its reason
 * follows the inputs, and it reopens only after reopen_ticks consecutive
 * ticks with both inputs below their low marks.
 *
 * The published state (struct bp_gate_pub) is C11 atomics: `closed` is the
 * one load the gate/0 NIF makes; the other fields form a snapshot guarded by
 * a sequence counter (a seqlock: one writer at a time, readers retry), so
 * readers never block and never see a torn snapshot.
 */
#ifndef BP_GATE_H
#define BP_GATE_H

#include <stdatomic.h>
#include <stdint.h>

enum bp_gate_reason { BP_REASON_NONE = 0, BP_REASON_SCHEDULER = 1, BP_REASON_MEMORY = 2 };

/* Where the scheduler figure the gate used came from. STARVED: the C thread
 * sees no scheduler thread (blind) and the Erlang side left a ping
 * unanswered for a whole tick, so every scheduler had work: the figure is
 * 1.0. */
enum bp_sched_source {
    BP_SOURCE_NONE = 0,
    BP_SOURCE_ERLANG = 1,
    BP_SOURCE_OS_CPU = 2,
    BP_SOURCE_STARVED = 3
};

struct bp_gate_config {
    double scheduler_high; /* default 0.80 */
    double scheduler_low;  /* default 0.60 */
    double memory_high;    /* default 0.90 */
    double memory_low;     /* default 0.85 */
    uint32_t reopen_ticks; /* default 3 */
};

struct bp_gate_state {
    int closed;
    enum bp_gate_reason reason;
    double ratio;         /* the reason's current value; 0 when none */
    uint32_t calm_ticks;  /* consecutive ticks below both low marks */
};

/* Fills the defaults above. */
void bp_gate_config_default(struct bp_gate_config *c);

/* The initial state: open, no reason. */
void bp_gate_state_init(struct bp_gate_state *s);

/* One tick. Pure: reads *c, updates *s. Returns 1 if the gate flipped (open
 * to closed or closed to open), 0 otherwise. A negative `scheduler` means
 * "not known this tick" (the Erlang side was asked and has not answered
 * yet): it can neither close the gate nor count towards reopening it. */
int bp_gate_step(const struct bp_gate_config *c, struct bp_gate_state *s,
                 double scheduler, double memory);

/* What the sampler thread knows when it chooses the scheduler figure for a
 * tick (bp_gate_input). Times are CLOCK_MONOTONIC ns. */
struct bp_gate_input {
    int blind;         /* the thread sees no normal scheduler thread */
    double demand;     /* (CPU + run-queue wait) / wall of those threads */
    double mark;       /* scheduler_high while open, scheduler_low while closed */
    int64_t now;
    int64_t tick_ns;
    int64_t ping_ns;   /* when the outstanding ping was sent; 0 = none */
    int64_t report_ns; /* when the Erlang side last reported; 0 = never */
    double report;     /* what it reported (scheduler_wall_time utilization) */
    int64_t fresh_ns;  /* a report at most this old still counts */
};

struct bp_gate_choice {
    double figure;               /* -1 = not known this tick: the gate holds */
    enum bp_sched_source source;
    int ping;                    /* send a ping now (and note it as outstanding) */
    int clear_ping;              /* forget the outstanding ping */
};

/* Chooses the scheduler figure for one tick. Pure.
 *
 * Seeing the threads (blind == 0): below the mark, demand, unless a fresh
 * Erlang report (a heartbeat's answer, say) is higher: utilization counts a
 * scheduler blocked in the kernel (a blocking NIF, page faults) as busy
 * while its thread's demand reads 0. At the mark, a ping is sent; a report
 * that came after it decides (erlang), a ping unanswered for a tick means
 * the Erlang side is starved and demand decides (os_cpu), in between the
 * figure is not known.
 *
 * Blind: the Erlang side's scheduler_wall_time is the only figure. A ping is
 * sent every tick (when none is outstanding or the last was answered); a
 * fresh report decides (erlang); a ping unanswered for a tick gives 1.0
 * (starved); otherwise the figure is not known. */
struct bp_gate_choice bp_gate_input(const struct bp_gate_input *in);

/* Published state. Writers are serialised by the caller (only the sampler
 * thread, or the control path while no sampler thread runs). */
struct bp_gate_pub {
    _Atomic int closed;         /* what gate/0 returns */
    _Atomic uint32_t seq;       /* odd while a snapshot is being written */
    _Atomic int reason;         /* enum bp_gate_reason */
    _Atomic uint64_t ratio_bits; /* double, bit for bit */
    _Atomic int source;         /* enum bp_sched_source */
    _Atomic int64_t changed_at; /* monotonic ns of the last flip of `closed` */
};

struct bp_gate_snapshot {
    int closed;
    enum bp_gate_reason reason;
    double ratio;
    enum bp_sched_source source;
    int64_t changed_at;
};

/* Sets the published state to open, no reason, changed at `now`. */
void bp_gate_pub_init(struct bp_gate_pub *p, int64_t now);

/* Publishes a snapshot. changed_at is updated to `now` only when `closed`
 * differs from what was published. Returns 1 if `closed` changed. */
int bp_gate_publish(struct bp_gate_pub *p, int closed, enum bp_gate_reason reason,
                    double ratio, enum bp_sched_source source, int64_t now);

/* One atomic load: 1 if closed. Any thread. */
static inline int bp_gate_is_closed(const struct bp_gate_pub *p)
{
    return atomic_load_explicit(&p->closed, memory_order_relaxed);
}

/* A consistent snapshot. Any thread, never blocks. */
void bp_gate_read(struct bp_gate_pub *p, struct bp_gate_snapshot *out);

#endif
