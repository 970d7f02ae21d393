/* bp_sampler.c - the sampler thread and its control. */
#include "bp_sampler.h"
#include "bp_bits.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "bp_atoms.h"

#define BP_SAMPLER_NAME "beamprof_sampl"
#define BP_CGROUP_EVERY_TICKS 50
#define BP_NS_PER_MS 1000000LL

static int64_t bp_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Erlang monotonic time in ns from any thread, through the offset. */
static int64_t bp_erl_now(struct bp_sampler *s)
{
    return bp_clock_ns() + atomic_load_explicit(&s->erl_offset, memory_order_relaxed);
}

void bp_sampler_calibrate(struct bp_sampler *s)
{
    int64_t erl = enif_monotonic_time(ERL_NIF_NSEC);
    atomic_store_explicit(&s->erl_offset, erl - bp_clock_ns(), memory_order_relaxed);
}

static struct timespec bp_ts_of(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    return ts;
}

int bp_sampler_init(struct bp_sampler *s, struct bp_threads *threads,
                    struct bp_memory *memory, struct bp_ring *ring,
                    struct bp_gate_pub *pub)
{
    pthread_condattr_t attr;
    memset(s, 0, sizeof *s);
    s->threads = threads;
    s->memory = memory;
    s->ring = ring;
    s->pub = pub;
    s->cfg.tick_ms = 100;
    bp_gate_config_default(&s->cfg.gate);
    bp_gate_state_init(&s->gate);
    atomic_init(&s->running, 0);
    atomic_init(&s->report_bits, bp_bits_of(0.0));
    atomic_init(&s->report_ns, 0);
    atomic_init(&s->ticks, 0);
    atomic_init(&s->cpu_ns, 0);
    atomic_init(&s->tick_ms, 100);
    atomic_init(&s->erl_offset, 0);
    atomic_init(&s->online, 0);
    atomic_init(&s->blind, 0);
    atomic_init(&s->pings, 0);
    atomic_init(&s->heartbeat_ms, BP_HEARTBEAT_MS_DEFAULT);
    s->extra.heartbeat_ms = BP_HEARTBEAT_MS_DEFAULT;
    bp_sampler_calibrate(s);
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&s->cond, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok)
        return -1;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pthread_cond_destroy(&s->cond);
        return -1;
    }
    if (pthread_mutex_init(&s->ctl, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        return -1;
    }
    return 0;
}

void bp_sampler_destroy(struct bp_sampler *s)
{
    pthread_mutex_destroy(&s->ctl);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
}

ERL_NIF_TERM bp_sampler_gate_msg(ErlNifEnv *env, int closed,
                                 enum bp_gate_reason reason, double ratio,
                                 int64_t now)
{
    ERL_NIF_TERM why = bp_atom.none;
    if (reason == BP_REASON_SCHEDULER)
        why = enif_make_tuple2(env, bp_atom.scheduler, enif_make_double(env, ratio));
    else if (reason == BP_REASON_MEMORY)
        why = enif_make_tuple2(env, bp_atom.memory, enif_make_double(env, ratio));
    return enif_make_tuple4(env, bp_atom.beamprof_gate,
                            closed ? bp_atom.closed : bp_atom.open, why,
                            enif_make_int64(env, now));
}

/* Per-thread loop state, on the thread's stack. */
struct bp_loop {
    struct bp_sampler_config cfg;
    ErlNifPid notify;
    int have_notify;
    ErlNifEnv *msg_env;
    int64_t last_wall;
    int64_t ping_ns; /* CLOCK_MONOTONIC of the outstanding ping; 0 = none */
    int64_t heartbeat_at; /* CLOCK_MONOTONIC of the last ping of any kind */
    uint32_t heartbeat_ms;
    int hide_threads;
    uint64_t nticks;
    int64_t rec_wall; /* CLOCK_MONOTONIC of the previous tick, for its real length */
    struct bp_memory_reading mem;
};

/* Asks the notify pid for a utilization report: {beamprof_gate_ping, T}. */
static void bp_sampler_ping(struct bp_sampler *s, struct bp_loop *l, int64_t wall)
{
    atomic_fetch_add_explicit(&s->pings, 1, memory_order_relaxed);
    if (!l->have_notify || l->msg_env == NULL)
        return;
    ERL_NIF_TERM t = enif_make_int64(l->msg_env, wall + atomic_load(&s->erl_offset));
    (void)enif_send(NULL, &l->notify, l->msg_env,
                    enif_make_tuple2(l->msg_env, bp_atom.beamprof_gate_ping, t));
    enif_clear_env(l->msg_env);
}

/* The scheduler figure for the gate, and when to ask the Erlang side (the
 * rules: bp_gate_input in bp_gate.h). A report counts as fresh for two
 * ticks when blind (a ping every tick), else for a heartbeat and a tick. */
static double bp_sched_input(struct bp_sampler *s, struct bp_loop *l, int64_t wall,
                             int blind, double demand, enum bp_sched_source *src)
{
    int64_t tick_ns = (int64_t)l->cfg.tick_ms * BP_NS_PER_MS;
    int64_t hb_ns = (int64_t)l->heartbeat_ms * BP_NS_PER_MS;
    struct bp_gate_input in = {
        .blind = blind,
        .demand = demand,
        .mark = s->gate.closed ? l->cfg.gate.scheduler_low : l->cfg.gate.scheduler_high,
        .now = wall,
        .tick_ns = tick_ns,
        .ping_ns = l->ping_ns,
        .report_ns = atomic_load_explicit(&s->report_ns, memory_order_acquire),
        .report = bp_double_of(atomic_load_explicit(&s->report_bits, memory_order_relaxed)),
        .fresh_ns = blind ? 2 * tick_ns : hb_ns + tick_ns,
    };
    struct bp_gate_choice c = bp_gate_input(&in);
    if (c.clear_ping)
        l->ping_ns = 0;
    if (c.ping)
        l->ping_ns = wall;
    if (c.ping || wall - l->heartbeat_at >= hb_ns) { /* a heartbeat is not outstanding */
        bp_sampler_ping(s, l, wall);
        l->heartbeat_at = wall;
    }
    *src = c.source;
    return c.figure;
}

/* CPU and demand ratios of the normal scheduler threads since the previous
 * tick (see bp_sched_input). Returns 1 when no thread contributed (none
 * found, none readable, or hidden by the test option): the thread is blind. */
static int bp_sched_load(struct bp_sampler *s, struct bp_loop *l, int64_t wall,
                         double *os, double *demand)
{
    uint64_t run, wait;
    uint32_t n;
    bp_threads_sample_normal(s->threads, atomic_load_explicit(&s->online, memory_order_relaxed),
                             &run, &wait, &n);
    if (l->hide_threads)
        n = 0;
    int64_t dw = wall - l->last_wall;
    l->last_wall = wall;
    *os = *demand = 0.0;
    if (n == 0)
        return 1;
    if (dw <= 0)
        return 0;
    double span = (double)n * (double)dw;
    *os = (double)run / span > 1.0 ? 1.0 : (double)run / span;
    *demand = (double)(run + wait) / span > 1.0 ? 1.0 : (double)(run + wait) / span;
    return 0;
}

static void bp_sampler_notify(struct bp_loop *l, ERL_NIF_TERM msg)
{
    (void)enif_send(NULL, &l->notify, l->msg_env, msg);
    enif_clear_env(l->msg_env);
}

/* The tick's record for the recording, when one is open. */
static void bp_sampler_record(struct bp_sampler *s, struct bp_loop *l, int64_t wall,
                              double sched, double demand, int blind)
{
    int64_t since = l->rec_wall;
    l->rec_wall = wall;
    if (s->rec == NULL || !bp_recorder_active(s->rec))
        return;
    double figure = sched >= 0.0 ? sched : demand;
    struct bp_rec_tick rt = {
        .demand = figure > 1.0 ? 1.0 : figure,
        .rss = l->mem.rss,
        .memory_limit = l->mem.limit,
        .gate_closed = s->gate.closed,
        .reason = s->gate.reason,
        .blind = blind,
        .tick_ms = since > 0 ? (double)(wall - since) / 1e6 : (double)l->cfg.tick_ms,
    };
    (void)bp_recorder_tick(s->rec, s->threads, wall, &rt);
}

static void bp_sampler_tick(struct bp_sampler *s, struct bp_loop *l)
{
    int64_t wall = bp_clock_ns();
    double os_cpu, demand;
    int blind = bp_sched_load(s, l, wall, &os_cpu, &demand);
    atomic_store_explicit(&s->blind, blind, memory_order_relaxed);
    /* The machine's figures (and the cgroup limit) are re-read every 50
     * ticks; in between /proc/meminfo only when the limit is the machine's. */
    int refresh = l->nticks % BP_CGROUP_EVERY_TICKS == 0;
    if (refresh)
        bp_memory_refresh_cgroup(s->memory);
    (void)bp_memory_read(s->memory, l->cfg.memory_limit, refresh, &l->mem); /* keeps last on failure */
    int64_t now = bp_erl_now(s);
    enum bp_sched_source src;
    double sched = bp_sched_input(s, l, wall, blind, demand, &src);
    bp_gate_step(&l->cfg.gate, &s->gate, sched, l->mem.ratio);
    int flipped = bp_gate_publish(s->pub, s->gate.closed, s->gate.reason,
                                  s->gate.ratio, src, now);
    struct bp_tick t = {now,    sched,       (int)src,     s->gate.closed, os_cpu,
                        demand, l->mem.used, l->mem.limit, l->mem.ratio};
    bp_ring_push(s->ring, &t);
    bp_sampler_record(s, l, wall, sched, demand, blind);
    if (flipped && l->have_notify && l->msg_env != NULL)
        bp_sampler_notify(l, bp_sampler_gate_msg(l->msg_env, s->gate.closed, s->gate.reason,
                                                 s->gate.ratio, now));
    l->nticks++;
    atomic_fetch_add_explicit(&s->ticks, 1, memory_order_relaxed);
    atomic_store_explicit(&s->cpu_ns, s->cpu_base + bp_threads_self_cpu_ns(),
                          memory_order_relaxed);
}

/* Takes what the control side set, with `lock` held. */
static void bp_loop_take_config(struct bp_sampler *s, struct bp_loop *l)
{
    l->cfg = s->cfg;
    l->notify = s->notify;
    l->have_notify = s->have_notify;
    l->heartbeat_ms = s->extra.heartbeat_ms ? s->extra.heartbeat_ms : BP_HEARTBEAT_MS_DEFAULT;
    l->hide_threads = s->extra.hide_threads;
    s->cfg_changed = 0;
}

/* Waits until the deadline, a stop or a new config, with `lock` held.
 * Returns 1 to stop. */
static int bp_sampler_wait(struct bp_sampler *s, struct bp_loop *l, int64_t *deadline)
{
    for (;;) {
        if (s->stop)
            return 1;
        if (s->cfg_changed) {
            bp_loop_take_config(s, l);
            /* A shorter tick takes effect now; a reconfigure never delays
             * the tick already due (repeated calls cannot starve ticks). */
            int64_t sooner = bp_clock_ns() + (int64_t)l->cfg.tick_ms * BP_NS_PER_MS;
            if (sooner < *deadline)
                *deadline = sooner;
        }
        if (bp_clock_ns() >= *deadline)
            return 0;
        struct timespec ts = bp_ts_of(*deadline);
        int rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
            return 0; /* never spin on an unexpected error: tick */
    }
}

static void *bp_sampler_main(void *arg)
{
    struct bp_sampler *s = arg;
    struct bp_loop l;
    memset(&l, 0, sizeof l);
    bp_threads_name_self(BP_SAMPLER_NAME);
    l.msg_env = enif_alloc_env();
    pthread_mutex_lock(&s->lock);
    bp_loop_take_config(s, &l);
    pthread_mutex_unlock(&s->lock);
    l.heartbeat_at = bp_clock_ns();
    uint64_t ignored_run, ignored_wait;
    uint32_t ignored_n;
    bp_threads_sample_normal(s->threads, 0, &ignored_run, &ignored_wait, &ignored_n); /* prime */
    l.last_wall = bp_clock_ns();
    (void)bp_memory_read(s->memory, l.cfg.memory_limit, 1, &l.mem);
    int64_t deadline = l.last_wall + (int64_t)l.cfg.tick_ms * BP_NS_PER_MS;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int stop = bp_sampler_wait(s, &l, &deadline);
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        bp_sampler_tick(s, &l);
        int64_t tick_ns = (int64_t)l.cfg.tick_ms * BP_NS_PER_MS;
        deadline += tick_ns;
        int64_t now = bp_clock_ns();
        if (deadline <= now) /* fell behind: skip, do not burst */
            deadline = now + tick_ns;
    }
    atomic_store_explicit(&s->cpu_ns, s->cpu_base + bp_threads_self_cpu_ns(),
                          memory_order_relaxed);
    if (l.msg_env != NULL)
        enif_free_env(l.msg_env);
    return NULL;
}

static void bp_sampler_configure(struct bp_sampler *s,
                                 const struct bp_sampler_config *cfg,
                                 const struct bp_sampler_extra *extra,
                                 const ErlNifPid *notify)
{
    pthread_mutex_lock(&s->lock);
    s->cfg = *cfg;
    s->extra = *extra;
    s->have_notify = notify != NULL;
    if (notify != NULL)
        s->notify = *notify;
    s->cfg_changed = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    atomic_store_explicit(&s->tick_ms, cfg->tick_ms, memory_order_relaxed);
    atomic_store_explicit(&s->heartbeat_ms,
                          extra->heartbeat_ms ? extra->heartbeat_ms : BP_HEARTBEAT_MS_DEFAULT,
                          memory_order_relaxed);
}

int bp_sampler_start(struct bp_sampler *s, const struct bp_sampler_config *cfg,
                     const struct bp_sampler_extra *extra, const ErlNifPid *notify)
{
    int rc = BP_SAMPLER_OK;
    bp_sampler_calibrate(s);
    pthread_mutex_lock(&s->ctl);
    if (s->retired) {
        rc = BP_SAMPLER_RETIRED;
        goto out;
    }
    bp_sampler_configure(s, cfg, extra, notify);
    if (bp_sampler_is_running(s))
        goto out;
    pthread_mutex_lock(&s->lock);
    s->stop = 0;
    pthread_mutex_unlock(&s->lock);
    bp_threads_reset_prev(s->threads);
    ErlNifThreadOpts *opts = enif_thread_opts_create("beamprof_sampler_opts");
    if (opts != NULL)
        opts->suggested_stack_size = 64; /* kilowords: 512 KB on 64-bit */
    if (enif_thread_create(BP_SAMPLER_NAME, &s->tid, bp_sampler_main, s, opts) != 0)
        rc = BP_SAMPLER_THREAD;
    else
        atomic_store_explicit(&s->running, 1, memory_order_release);
    if (opts != NULL)
        enif_thread_opts_destroy(opts);
out:
    pthread_mutex_unlock(&s->ctl);
    return rc;
}

static void bp_sampler_fill_carry(struct bp_sampler *s, int was_running,
                                  struct bp_carry *carry)
{
    struct bp_carry c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.abi = 4;
    c.was_running = was_running;
    pthread_mutex_lock(&s->lock);
    c.cfg = s->cfg;
    c.extra = s->extra;
    c.notify = s->notify;
    pthread_mutex_unlock(&s->lock);
    c.gate = s->gate;
    bp_gate_read(s->pub, &c.pub);
    c.report_ratio = bp_double_of(atomic_load(&s->report_bits));
    c.report_ns = atomic_load(&s->report_ns);
    c.schedulers_online = atomic_load(&s->online);
    size_t n = carry->size < sizeof c ? carry->size : sizeof c;
    uint32_t caller_size = carry->size;
    memcpy(carry, &c, n);
    carry->size = caller_size;
}

int bp_sampler_stop(struct bp_sampler *s, ErlNifEnv *caller_env,
                    struct bp_carry *carry, int retire)
{
    pthread_mutex_lock(&s->ctl);
    int was = bp_sampler_is_running(s);
    if (was) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        enif_thread_join(s->tid, NULL);
        atomic_store_explicit(&s->running, 0, memory_order_release);
        atomic_store_explicit(&s->blind, 0, memory_order_relaxed);
        s->cpu_base = atomic_load_explicit(&s->cpu_ns, memory_order_relaxed);
    }
    if (carry != NULL)
        bp_sampler_fill_carry(s, was, carry);
    /* Not running means open: the next start begins from an open gate, so
     * its first message can only be a real close. */
    bp_gate_state_init(&s->gate);
    if (retire)
        s->retired = 1;
    int64_t now = enif_monotonic_time(ERL_NIF_NSEC);
    int flipped = bp_gate_publish(s->pub, 0, BP_REASON_NONE, 0.0, BP_SOURCE_NONE, now);
    pthread_mutex_lock(&s->lock);
    ErlNifPid pid = s->notify;
    int have = s->have_notify;
    pthread_mutex_unlock(&s->lock);
    if (flipped && have && caller_env != NULL) {
        ERL_NIF_TERM msg = bp_sampler_gate_msg(caller_env, 0, BP_REASON_NONE, 0.0, now);
        (void)enif_send(caller_env, &pid, NULL, msg);
    }
    pthread_mutex_unlock(&s->ctl);
    return was;
}

void bp_sampler_adopt(struct bp_sampler *s, const struct bp_carry *carry)
{
    s->gate = carry->gate;
    bp_gate_publish(s->pub, carry->pub.closed, carry->pub.reason, carry->pub.ratio,
                    carry->pub.source, carry->pub.changed_at);
    atomic_store(&s->pub->changed_at, carry->pub.changed_at);
    atomic_store(&s->report_bits, bp_bits_of(carry->report_ratio));
    atomic_store(&s->report_ns, carry->report_ns);
    if (carry->abi >= 2)
        atomic_store(&s->online, carry->schedulers_online);
    if (carry->abi >= 3)
        s->extra = carry->extra;
}

void bp_sampler_set_online(struct bp_sampler *s, uint32_t online)
{
    atomic_store_explicit(&s->online, online, memory_order_relaxed);
}

void bp_sampler_report(struct bp_sampler *s, double ratio)
{
    bp_sampler_calibrate(s);
    atomic_store_explicit(&s->report_bits, bp_bits_of(ratio), memory_order_relaxed);
    atomic_store_explicit(&s->report_ns, bp_clock_ns(), memory_order_release);
}

uint64_t bp_sampler_memory_limit(struct bp_sampler *s)
{
    if (!bp_sampler_is_running(s))
        return 0;
    pthread_mutex_lock(&s->lock);
    uint64_t v = s->cfg.memory_limit;
    pthread_mutex_unlock(&s->lock);
    return v;
}
