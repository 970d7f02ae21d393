/* bp_gate.c - load gate step function and published state. */
#include "bp_gate.h"
#include "bp_bits.h"

#include <string.h>

void bp_gate_config_default(struct bp_gate_config *c)
{
    c->scheduler_high = 0.80;
    c->scheduler_low = 0.60;
    c->memory_high = 0.90;
    c->memory_low = 0.85;
    c->reopen_ticks = 3;
}

void bp_gate_state_init(struct bp_gate_state *s)
{
    s->closed = 0;
    s->reason = BP_REASON_NONE;
    s->ratio = 0.0;
    s->calm_ticks = 0;
}

/* The reason the inputs give now, memory first; NONE if both are at or
 * below their high marks. */
static enum bp_gate_reason bp_gate_hot(const struct bp_gate_config *c,
                                       double scheduler, double memory)
{
    if (memory > c->memory_high)
        return BP_REASON_MEMORY;
    if (scheduler > c->scheduler_high)
        return BP_REASON_SCHEDULER;
    return BP_REASON_NONE;
}

int bp_gate_step(const struct bp_gate_config *c, struct bp_gate_state *s,
                 double scheduler, double memory)
{
    enum bp_gate_reason hot = bp_gate_hot(c, scheduler, memory);
    if (!s->closed) {
        if (hot == BP_REASON_NONE)
            return 0;
        s->closed = 1;
        s->reason = hot;
        s->ratio = hot == BP_REASON_MEMORY ? memory : scheduler;
        s->calm_ticks = 0;
        return 1;
    }
    /* Closed: keep the reason current. */
    if (hot != BP_REASON_NONE)
        s->reason = hot;
    if (s->reason == BP_REASON_MEMORY)
        s->ratio = memory;
    else if (scheduler >= 0.0)
        s->ratio = scheduler;
    if (scheduler >= 0.0 && scheduler < c->scheduler_low && memory < c->memory_low)
        s->calm_ticks++;
    else
        s->calm_ticks = 0;
    if (s->calm_ticks < c->reopen_ticks)
        return 0;
    bp_gate_state_init(s);
    return 1;
}

#define BP_GATE_REPING_TICKS 5

static struct bp_gate_choice bp_choice(double figure, enum bp_sched_source source,
                                       int ping, int clear_ping)
{
    struct bp_gate_choice c = {figure, source, ping, clear_ping};
    return c;
}

static struct bp_gate_choice bp_gate_input_blind(const struct bp_gate_input *in,
                                                 int answered, int starved, int fresh)
{
    /* A ping lost (its answerer restarted) is sent again after a while. */
    int ping = in->ping_ns == 0 || answered ||
               in->now - in->ping_ns >= BP_GATE_REPING_TICKS * in->tick_ns;
    if (fresh)
        return bp_choice(in->report, BP_SOURCE_ERLANG, ping, answered);
    if (starved)
        return bp_choice(1.0, BP_SOURCE_STARVED, ping, answered);
    return bp_choice(-1.0, BP_SOURCE_NONE, ping, answered);
}

struct bp_gate_choice bp_gate_input(const struct bp_gate_input *in)
{
    int answered = in->ping_ns != 0 && in->report_ns > in->ping_ns;
    int starved = in->ping_ns != 0 && !answered && in->now - in->ping_ns >= in->tick_ns;
    int fresh = in->report_ns != 0 && in->now - in->report_ns <= in->fresh_ns;
    if (in->blind)
        return bp_gate_input_blind(in, answered, starved, fresh);
    if (in->demand < in->mark) {
        if (fresh && in->report > in->demand)
            return bp_choice(in->report, BP_SOURCE_ERLANG, 0, 1);
        return bp_choice(in->demand, BP_SOURCE_OS_CPU, 0, 1);
    }
    int ping = in->ping_ns == 0 || answered;
    if (answered)
        return bp_choice(in->report, BP_SOURCE_ERLANG, ping, 1);
    if (starved) /* stays outstanding: demand decides until it is answered */
        return bp_choice(in->demand, BP_SOURCE_OS_CPU, ping, 0);
    return bp_choice(-1.0, BP_SOURCE_NONE, ping, 0);
}

void bp_gate_pub_init(struct bp_gate_pub *p, int64_t now)
{
    atomic_init(&p->closed, 0);
    atomic_init(&p->seq, 0);
    atomic_init(&p->reason, BP_REASON_NONE);
    atomic_init(&p->ratio_bits, bp_bits_of(0.0));
    atomic_init(&p->source, BP_SOURCE_NONE);
    atomic_init(&p->changed_at, now);
}

int bp_gate_publish(struct bp_gate_pub *p, int closed, enum bp_gate_reason reason,
                    double ratio, enum bp_sched_source source, int64_t now)
{
    int was = atomic_load_explicit(&p->closed, memory_order_relaxed);
    uint32_t seq = atomic_load_explicit(&p->seq, memory_order_relaxed);
    atomic_store_explicit(&p->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&p->reason, (int)reason, memory_order_relaxed);
    atomic_store_explicit(&p->ratio_bits, bp_bits_of(ratio), memory_order_relaxed);
    atomic_store_explicit(&p->source, (int)source, memory_order_relaxed);
    if (was != closed)
        atomic_store_explicit(&p->changed_at, now, memory_order_relaxed);
    atomic_store_explicit(&p->closed, closed, memory_order_relaxed);
    atomic_store_explicit(&p->seq, seq + 2, memory_order_release);
    return was != closed;
}

void bp_gate_read(struct bp_gate_pub *p, struct bp_gate_snapshot *out)
{
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&p->seq, memory_order_acquire);
        if (s1 & 1u)
            continue;
        out->closed = atomic_load_explicit(&p->closed, memory_order_relaxed);
        out->reason = (enum bp_gate_reason)atomic_load_explicit(&p->reason,
                                                                memory_order_relaxed);
        out->ratio = bp_double_of(
            atomic_load_explicit(&p->ratio_bits, memory_order_relaxed));
        out->source = (enum bp_sched_source)atomic_load_explicit(&p->source,
                                                                 memory_order_relaxed);
        out->changed_at = atomic_load_explicit(&p->changed_at, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&p->seq, memory_order_relaxed) == s1)
            return;
    }
}
