/* beamprof_nif.c - entry file of the beamprof C core (beamprof_nif.so): atoms,
 * the library's private state and its lifecycle (load / upgrade / unload), the
 * NIF table and thin NIF wrappers. Each concern lives in its own
 * bp_<concern>.c. Portable C for Linux on any architecture; the native
 * sampler is a library of its own (c_src/native/), reached through the
 * channel of bp_core_channel.c.
 *
 * Error contract: an ill-typed or out-of-range argument raises badarg (every
 * argument is validated first, in order); a condition the caller can act on
 * returns {error, Reason}.
 *
 * Lock order (all locks of the library): sampler.ctl -> sampler.lock;
 * threads.lock, memory.lock, ring.lock and the recorder's file lock
 * (rec.file.lock) are leaves, never held together with any other lock. The published gate is lock-free (atomics).
 */
#include <erl_nif.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bp_atoms.h"
#include "bp_core_channel.h"
#include "bp_gate.h"
#include "bp_memory.h"
#include "bp_recorder.h"
#include "bp_recorder_nif.h"
#include "bp_ring.h"
#include "bp_sampler.h"

#include "bp_scan_nif.h"
#include "bp_threads.h"

#if !defined(__linux__)
#error "beamprof needs Linux (see c_src/Makefile)"
#endif

#define BP_STATE_MAGIC 0x62707266u /* "bprf" */
#define BP_STATE_ABI 3u /* 2: native_handover; 3: the native sampler moved out */
#define BP_RING_SIZE 600          /* 60 s at the default 100 ms tick */

/* ---------------------------------------------------------------- atoms */

struct bp_atoms bp_atom;
static int bp_atoms_made; /* atoms are VM-global: make them once per image */

void bp_atoms_make(ErlNifEnv *env)
{
    if (bp_atoms_made)
        return;
#define BP_ATOM_MAKE(name) bp_atom.name = enif_make_atom(env, #name);
    BP_ATOMS(BP_ATOM_MAKE)
#undef BP_ATOM_MAKE
    bp_atoms_made = 1;
}

/* ---------------------------------------------------------------- state */

/* The head of what abi 2 libraries (the native sampler still inside the
 * core) hand over; this library only asks for the head, to retire theirs. */
struct bp_native_carry {
    uint32_t size; /* set by the caller */
    uint32_t abi;  /* set by the callee: 0 when it had no native sampler */
};

/* The stable head of every version's private state. A newer library reads
 * it from the old private data in upgrade, whatever the rest looks like.
 * Fields are never reordered or removed. */
struct bp_state_header {
    uint32_t magic; /* BP_STATE_MAGIC */
    uint32_t abi;   /* BP_STATE_ABI of the library that made it */
    /* Stops and joins that library's sampler thread if it runs, retires it
     * (it never starts a thread again) and fills *carry up to carry->size
     * bytes. Returns 1 if a thread was running. Called by the next library
     * from its upgrade callback. */
    int (*stop)(void *state, struct bp_carry *carry);
    /* Since abi 2. Stops that library's native sampler for good, leaving
     * its samples, and fills *carry up to carry->size bytes. Since abi 3 the
     * native sampler is beamprof_native_nif's: this one answers abi 0. */
    void (*native_handover)(void *state, struct bp_native_carry *carry);
};

struct bp_state {
    struct bp_state_header hdr; /* must stay first */
    struct bp_threads threads;
    struct bp_memory memory;
    struct bp_gate_pub pub;
    struct bp_ring ring;
    struct bp_sampler sampler;
    struct bp_recorder rec;
    struct bp_tick slots[BP_RING_SIZE];
    ErlNifResourceType *channel_type; /* this instance's (bp_core_channel.c) */
};

/* Also closes this library's recording, handing its path and size to the
 * next library (which reopens it: the same VM resumes it). */
static int bp_state_stop(void *state, struct bp_carry *carry)
{
    struct bp_state *st = state;
    int was = bp_sampler_stop(&st->sampler, NULL, carry, 1);
    struct bp_recfile_info info;
    bp_recfile_info(&st->rec.file, &info);
    bp_recorder_close(&st->rec);
    if (info.open && carry->size >= sizeof *carry) {
        carry->rec_open = 1;
        carry->rec_ring_size = info.ring_size;
        memcpy(carry->rec_path, info.path, sizeof carry->rec_path);
    }
    return was;
}

static void bp_state_native_handover(void *state, struct bp_native_carry *carry)
{
    (void)state;
    uint32_t size = carry->size;
    if (size >= sizeof *carry)
        carry->abi = 0; /* no native sampler here: nothing ran, nothing to carry */
}

/* Makes a fresh state: threads discovered, files opened, no thread started.
 * Returns NULL with nothing left behind on failure. */
static struct bp_state *bp_state_new(void)
{
    struct bp_state *st = enif_alloc(sizeof *st);
    if (st == NULL)
        return NULL;
    memset(st, 0, sizeof *st);
    st->hdr.magic = BP_STATE_MAGIC;
    st->hdr.abi = BP_STATE_ABI;
    st->hdr.stop = bp_state_stop;
    st->hdr.native_handover = bp_state_native_handover;
    bp_gate_pub_init(&st->pub, enif_monotonic_time(ERL_NIF_NSEC));
    if (bp_threads_init(&st->threads) != 0)
        goto fail;
    if (bp_memory_open(&st->memory) != 0)
        goto fail_threads;
    if (bp_ring_init(&st->ring, st->slots, BP_RING_SIZE) != 0)
        goto fail_memory;
    if (bp_sampler_init(&st->sampler, &st->threads, &st->memory, &st->ring,
                        &st->pub) != 0)
        goto fail_ring;
    if (bp_recorder_init(&st->rec) != 0)
        goto fail_sampler;
    st->sampler.rec = &st->rec;
    return st;
fail_sampler:
    bp_sampler_destroy(&st->sampler);
fail_ring:
    bp_ring_destroy(&st->ring);
fail_memory:
    bp_memory_close(&st->memory);
fail_threads:
    bp_threads_destroy(&st->threads);
fail:
    enif_free(st);
    return NULL;
}

/* Frees a state whose thread is stopped. */
static void bp_state_free(struct bp_state *st)
{
    bp_recorder_destroy(&st->rec);
    bp_sampler_destroy(&st->sampler);
    bp_ring_destroy(&st->ring);
    bp_memory_close(&st->memory);
    bp_threads_destroy(&st->threads);
    st->hdr.magic = 0;
    enif_free(st);
}

static struct bp_state *bp_st(ErlNifEnv *env)
{
    return enif_priv_data(env);
}

struct bp_recorder *bp_core_recorder_of(ErlNifEnv *env)
{
    return &bp_st(env)->rec;
}

static int64_t bp_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------ lifecycle */

/* What load and upgrade both do first: atoms, the scan's resource types, a
 * fresh state with this instance's channel type. NULL on failure. */
static struct bp_state *bp_instance_open(ErlNifEnv *env)
{
    bp_atoms_make(env);
    bp_recorder_nif_atoms(env);
    if (bp_scan_open(env) != 0)
        return NULL;
    struct bp_state *st = bp_state_new();
    if (st == NULL) {
        bp_scan_close();
        return NULL;
    }
    st->channel_type = bp_core_channel_open(env);
    return st;
}

static int bp_load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info)
{
    (void)info;
    struct bp_state *st = bp_instance_open(env);
    if (st == NULL)
        return 1;
    *priv = st;
    return 0;
}

/* An abi 2 library ran the native sampler itself: retire it (stopped for
 * good, its samples dropped with it). beamprof_native_nif starts anew. */
static void bp_upgrade_native(struct bp_state_header *old)
{
    struct bp_native_carry nc = {sizeof nc, 0};
    old->native_handover(old, &nc);
}

/* Reopens the recording the old library closed: this VM's, so it resumes
 * after its newest frame. A failure leaves the recorder closed (the Erlang
 * side's recorder_info/0 then says undefined). */
static void bp_upgrade_recorder(struct bp_state *st, const struct bp_carry *carry)
{
    int e = 0;
    enum bp_recfile_how how;
    char path[PATH_MAX];
    memcpy(path, carry->rec_path, sizeof path);
    path[sizeof path - 1] = '\0';
    (void)bp_recorder_open(&st->rec, path, carry->rec_ring_size, (uint64_t)getpid(), 0,
                           bp_wall_us(), NULL, 0, &e, &how);
}

/* The module is reloaded while old code (with its library) exists: stop the
 * old library's thread through its own stop function, then run ours with
 * the same config, notify pid and gate state. At most one thread exists. */
static int bp_upgrade(ErlNifEnv *env, void **priv, void **old_priv, ERL_NIF_TERM info)
{
    (void)info;
    struct bp_state *st = bp_instance_open(env);
    if (st == NULL)
        return 1;
    struct bp_state_header *old = old_priv ? *old_priv : NULL;
    if (old != NULL && old->magic == BP_STATE_MAGIC && old->stop != NULL) {
        struct bp_carry carry;
        memset(&carry, 0, sizeof carry);
        carry.size = sizeof carry;
        old->stop(old, &carry);
        if (carry.abi >= 1) {
            bp_sampler_adopt(&st->sampler, &carry);
            if (carry.was_running) /* extra is zero (defaults) from abi < 3 */
                (void)bp_sampler_start(&st->sampler, &carry.cfg, &carry.extra,
                                       &carry.notify);
        }
        if (old->abi >= 2 && old->native_handover != NULL)
            bp_upgrade_native(old);
        if (carry.abi >= 4 && carry.rec_open)
            bp_upgrade_recorder(st, &carry);
    }
    *priv = st;
    return 0;
}

static void bp_unload(ErlNifEnv *env, void *priv)
{
    (void)env;
    struct bp_state *st = priv;
    if (st == NULL)
        return;
    bp_sampler_stop(&st->sampler, NULL, NULL, 1);
    bp_state_free(st);
    bp_scan_close();
}

/* ----------------------------------------------------------------- gate */

static ERL_NIF_TERM bp_gate_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    return bp_gate_is_closed(&bp_st(env)->pub) ? bp_atom.closed : bp_atom.open;
}

static ERL_NIF_TERM bp_reason_term(ErlNifEnv *env, enum bp_gate_reason reason,
                                   double ratio)
{
    if (reason == BP_REASON_SCHEDULER)
        return enif_make_tuple2(env, bp_atom.scheduler, enif_make_double(env, ratio));
    if (reason == BP_REASON_MEMORY)
        return enif_make_tuple2(env, bp_atom.memory, enif_make_double(env, ratio));
    return bp_atom.none;
}

static ERL_NIF_TERM bp_source_term(int source)
{
    if (source == BP_SOURCE_ERLANG)
        return bp_atom.erlang;
    if (source == BP_SOURCE_OS_CPU)
        return bp_atom.os_cpu;
    if (source == BP_SOURCE_STARVED)
        return bp_atom.starved;
    return bp_atom.none;
}

static ERL_NIF_TERM bp_make_map(ErlNifEnv *env, ERL_NIF_TERM *keys,
                                ERL_NIF_TERM *values, size_t n)
{
    ERL_NIF_TERM map;
    if (!enif_make_map_from_arrays(env, keys, values, n, &map))
        return enif_make_badarg(env); /* duplicate keys: a bug of ours */
    return map;
}

/* The last Erlang report, in Erlang monotonic ns, or undefined. */
static ERL_NIF_TERM bp_reported_at_term(ErlNifEnv *env, struct bp_sampler *s)
{
    int64_t at = atomic_load_explicit(&s->report_ns, memory_order_acquire);
    if (at == 0)
        return bp_atom.undefined;
    return enif_make_int64(env, at + atomic_load_explicit(&s->erl_offset, memory_order_relaxed));
}

/* gate_info() -> #{state, reason, source, running, changed_at, blind,
 * heartbeat_ms, pings, reported_at}. reason is not_running while no sampler
 * thread runs (the gate then reads open). */
static ERL_NIF_TERM bp_gate_info_nif(ErlNifEnv *env, int argc,
                                     const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_state *st = bp_st(env);
    struct bp_sampler *s = &st->sampler;
    struct bp_gate_snapshot g;
    bp_gate_read(&st->pub, &g);
    int running = bp_sampler_is_running(s);
    ERL_NIF_TERM keys[] = {bp_atom.state,   bp_atom.reason,       bp_atom.source,
                           bp_atom.running, bp_atom.changed_at,   bp_atom.blind,
                           bp_atom.pings,   bp_atom.heartbeat_ms, bp_atom.reported_at};
    ERL_NIF_TERM values[] = {
        g.closed ? bp_atom.closed : bp_atom.open,
        running ? bp_reason_term(env, g.reason, g.ratio) : bp_atom.not_running,
        bp_source_term(g.source),
        running ? bp_atom.true : bp_atom.false,
        enif_make_int64(env, g.changed_at),
        running && atomic_load(&s->blind) ? bp_atom.true : bp_atom.false,
        enif_make_uint64(env, atomic_load(&s->pings)),
        enif_make_uint(env, atomic_load(&s->heartbeat_ms)),
        bp_reported_at_term(env, s),
    };
    return bp_make_map(env, keys, values, 9);
}

/* -------------------------------------------------------------- sampler */

static int bp_get_ratio_key(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key,
                            double *out)
{
    ERL_NIF_TERM v;
    return enif_get_map_value(env, map, key, &v) && enif_get_double(env, v, out) &&
           *out > 0.0 && *out <= 1.0;
}

/* Reads and range-checks every key of the config map. 0 = ill-typed. */
static int bp_get_config(ErlNifEnv *env, ERL_NIF_TERM map, struct bp_sampler_config *c)
{
    ERL_NIF_TERM v;
    unsigned int tick, reopen;
    ErlNifUInt64 limit;
    if (!enif_is_map(env, map))
        return 0;
    if (!enif_get_map_value(env, map, bp_atom.tick_ms, &v) ||
        !enif_get_uint(env, v, &tick) || tick < 1 || tick > 60000)
        return 0;
    if (!bp_get_ratio_key(env, map, bp_atom.scheduler_high, &c->gate.scheduler_high) ||
        !bp_get_ratio_key(env, map, bp_atom.scheduler_low, &c->gate.scheduler_low) ||
        !bp_get_ratio_key(env, map, bp_atom.memory_high, &c->gate.memory_high) ||
        !bp_get_ratio_key(env, map, bp_atom.memory_low, &c->gate.memory_low))
        return 0;
    if (!enif_get_map_value(env, map, bp_atom.reopen_ticks, &v) ||
        !enif_get_uint(env, v, &reopen) || reopen < 1)
        return 0;
    if (!enif_get_map_value(env, map, bp_atom.memory_limit, &v) ||
        !enif_get_uint64(env, v, &limit))
        return 0;
    c->tick_ms = tick;
    c->gate.reopen_ticks = reopen;
    c->memory_limit = limit;
    return 1;
}

/* The optional schedulers_online key: 1..1024, absent = 0 (all). -1 if
 * present and ill-typed. */
static int bp_get_online(ErlNifEnv *env, ERL_NIF_TERM map, uint32_t *online)
{
    ERL_NIF_TERM v;
    unsigned int n;
    *online = 0;
    if (!enif_get_map_value(env, map, bp_atom.schedulers_online, &v))
        return 0;
    if (!enif_get_uint(env, v, &n) || n < 1 || n > 1024)
        return -1;
    *online = n;
    return 0;
}

static ERL_NIF_TERM bp_error(ErlNifEnv *env, ERL_NIF_TERM reason)
{
    return enif_make_tuple2(env, bp_atom.error, reason);
}

/* The optional keys heartbeat_ms (10..3600000, absent = 1000) and
 * test_hide_threads (boolean, absent = false; test only: the thread acts as
 * if it found no scheduler thread). 0 if present and ill-typed. */
static int bp_get_extra(ErlNifEnv *env, ERL_NIF_TERM map, struct bp_sampler_extra *e)
{
    ERL_NIF_TERM v;
    unsigned int hb;
    e->heartbeat_ms = BP_HEARTBEAT_MS_DEFAULT;
    e->hide_threads = 0;
    if (enif_get_map_value(env, map, bp_atom.heartbeat_ms, &v)) {
        if (!enif_get_uint(env, v, &hb) || hb < 10 || hb > 3600000)
            return 0;
        e->heartbeat_ms = hb;
    }
    if (enif_get_map_value(env, map, bp_atom.test_hide_threads, &v)) {
        if (!enif_is_identical(v, bp_atom.true) && !enif_is_identical(v, bp_atom.false))
            return 0;
        e->hide_threads = enif_is_identical(v, bp_atom.true);
    }
    return 1;
}

/* sampler_start(Config, NotifyPid) -> ok | {error, Reason} */
static ERL_NIF_TERM bp_sampler_start_nif(ErlNifEnv *env, int argc,
                                         const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct bp_sampler_config cfg;
    struct bp_sampler_extra extra;
    uint32_t online;
    ErlNifPid pid;
    if (!bp_get_config(env, argv[0], &cfg) || bp_get_online(env, argv[0], &online) != 0 ||
        !bp_get_extra(env, argv[0], &extra))
        return enif_make_badarg(env);
    if (!enif_get_local_pid(env, argv[1], &pid))
        return enif_make_badarg(env);
    if (cfg.gate.scheduler_low >= cfg.gate.scheduler_high)
        return bp_error(env, enif_make_tuple2(env, bp_atom.invalid, bp_atom.scheduler_low));
    if (cfg.gate.memory_low >= cfg.gate.memory_high)
        return bp_error(env, enif_make_tuple2(env, bp_atom.invalid, bp_atom.memory_low));
    bp_sampler_set_online(&bp_st(env)->sampler, online);
    switch (bp_sampler_start(&bp_st(env)->sampler, &cfg, &extra, &pid)) {
    case BP_SAMPLER_OK:
        return bp_atom.ok;
    case BP_SAMPLER_RETIRED:
        return bp_error(env, bp_atom.superseded);
    default:
        return bp_error(env, bp_atom.thread_create);
    }
}

/* sampler_stop() -> ok. Dirty IO: the join may wait for a tick's reads. */
static ERL_NIF_TERM bp_sampler_stop_nif(ErlNifEnv *env, int argc,
                                        const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    bp_sampler_stop(&bp_st(env)->sampler, env, NULL, 0);
    return bp_atom.ok;
}

/* report_utilization(Ratio) -> ok | not_running */
static ERL_NIF_TERM bp_report_utilization_nif(ErlNifEnv *env, int argc,
                                              const ERL_NIF_TERM argv[])
{
    (void)argc;
    double ratio;
    int i;
    if (enif_get_int(env, argv[0], &i)) {
        if (i != 0 && i != 1)
            return enif_make_badarg(env);
        ratio = (double)i;
    } else if (!enif_get_double(env, argv[0], &ratio) || !(ratio >= 0.0 && ratio <= 1.0)) {
        return enif_make_badarg(env);
    }
    struct bp_sampler *s = &bp_st(env)->sampler;
    bp_sampler_report(s, ratio);
    return bp_sampler_is_running(s) ? bp_atom.ok : bp_atom.not_running;
}

static ERL_NIF_TERM bp_sampler_info_nif(ErlNifEnv *env, int argc,
                                        const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_state *st = bp_st(env);
    struct bp_sampler *s = &st->sampler;
    ERL_NIF_TERM keys[] = {bp_atom.running, bp_atom.ticks, bp_atom.tick_ms,
                           bp_atom.cpu_ns, bp_atom.threads};
    ERL_NIF_TERM values[] = {
        bp_sampler_is_running(s) ? bp_atom.true : bp_atom.false,
        enif_make_uint64(env, atomic_load(&s->ticks)),
        enif_make_uint(env, atomic_load(&s->tick_ms)),
        enif_make_uint64(env, atomic_load(&s->cpu_ns)),
        enif_make_uint64(env, bp_threads_count(&st->threads)),
    };
    return bp_make_map(env, keys, values, 5);
}

/* ------------------------------------------------------------- readings */

static ERL_NIF_TERM bp_thread_type_term(enum bp_thread_type t)
{
    if (t == BP_THREAD_DIRTY_CPU)
        return bp_atom.dirty_cpu;
    if (t == BP_THREAD_DIRTY_IO)
        return bp_atom.dirty_io;
    return bp_atom.normal;
}

/* sched_cpu() -> {MonotonicNs, [{Type, Index, CpuNs}]} sorted by type, index */
static ERL_NIF_TERM bp_sched_cpu_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_state *st = bp_st(env);
    size_t max = bp_threads_count(&st->threads) + 64;
    if (max > BP_THREADS_MAX)
        max = BP_THREADS_MAX;
    struct bp_thread_cpu *buf = enif_alloc(max * sizeof *buf);
    if (buf == NULL)
        return bp_error(env, bp_atom.enomem);
    int64_t now = enif_monotonic_time(ERL_NIF_NSEC);
    size_t n = bp_threads_read_all(&st->threads, buf, max);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;) {
        ERL_NIF_TERM row = enif_make_tuple3(env, bp_thread_type_term(buf[i].type),
                                            enif_make_uint(env, buf[i].index),
                                            enif_make_uint64(env, buf[i].cpu_ns));
        list = enif_make_list_cell(env, row, list);
    }
    enif_free(buf);
    return enif_make_tuple2(env, enif_make_int64(env, now), list);
}

static ERL_NIF_TERM bp_limit_source_term(enum bp_limit_source s)
{
    switch (s) {
    case BP_LIMIT_OPTION:
        return bp_atom.option;
    case BP_LIMIT_CGROUP_V2:
        return bp_atom.cgroup_v2;
    case BP_LIMIT_CGROUP_V1:
        return bp_atom.cgroup_v1;
    default:
        return bp_atom.machine;
    }
}

/* memory() -> #{rss, limit, limit_source, ratio, mem_total, mem_available} */
static ERL_NIF_TERM bp_memory_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_state *st = bp_st(env);
    struct bp_memory_reading m;
    /* A running sampler thread re-reads the cgroup limit every 50 ticks;
     * without one, nothing else keeps it current. */
    if (!bp_sampler_is_running(&st->sampler))
        bp_memory_refresh_cgroup(&st->memory);
    if (bp_memory_read(&st->memory, bp_sampler_memory_limit(&st->sampler), 1, &m) != 0)
        return bp_error(env, bp_atom.memory);
    ERL_NIF_TERM keys[] = {bp_atom.rss,   bp_atom.limit,     bp_atom.limit_source,
                           bp_atom.ratio, bp_atom.mem_total, bp_atom.mem_available};
    ERL_NIF_TERM values[] = {
        enif_make_uint64(env, m.rss),       enif_make_uint64(env, m.limit),
        bp_limit_source_term(m.source),     enif_make_double(env, m.ratio),
        enif_make_uint64(env, m.mem_total), enif_make_uint64(env, m.mem_available),
    };
    return bp_make_map(env, keys, values, 6);
}

static ERL_NIF_TERM bp_tick_term(ErlNifEnv *env, const struct bp_tick *t)
{
    ERL_NIF_TERM e[9] = {
        enif_make_int64(env, t->mono_ns),
        enif_make_double(env, t->sched_ratio),
        bp_source_term(t->sched_source),
        enif_make_double(env, t->os_cpu_ratio),
        enif_make_uint64(env, t->mem_used),
        enif_make_uint64(env, t->mem_limit),
        enif_make_double(env, t->mem_ratio),
        t->gate_closed ? bp_atom.closed : bp_atom.open,
        enif_make_double(env, t->demand_ratio),
    };
    return enif_make_tuple_from_array(env, e, 9);
}

/* history() -> [{Mono, Sched, Source, OsCpu, MemUsed, MemLimit, MemRatio, Gate,
 * Demand}] newest first; Sched is -1.0 on a tick where it was not known. */
static ERL_NIF_TERM bp_history_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_state *st = bp_st(env);
    struct bp_tick *buf = enif_alloc(BP_RING_SIZE * sizeof *buf);
    if (buf == NULL)
        return bp_error(env, bp_atom.enomem);
    size_t n = bp_ring_copy(&st->ring, buf, BP_RING_SIZE);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;)
        list = enif_make_list_cell(env, bp_tick_term(env, &buf[i]), list);
    enif_free(buf);
    return list;
}

/* -------------------------------------------------------------- channel */

/* What bp_core_channel.c's channels point at: this instance's state. */
struct bp_core_channel_src bp_core_channel_src_of(ErlNifEnv *env)
{
    struct bp_state *st = bp_st(env);
    struct bp_core_channel_src src = {st->channel_type, &st->threads, &st->pub.closed};
    return src;
}

/* ---------------------------------------------------------------- table */

static ErlNifFunc nif_funcs[] = {
    {"gate", 0, bp_gate_nif, 0},
    {"gate_info", 0, bp_gate_info_nif, 0},
    /* Dirty IO: it waits for the control lock, which a stop holds across
     * the thread join (up to a tick's reads under /proc and /sys). */
    {"sampler_start", 2, bp_sampler_start_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    /* Dirty IO: joining the thread may wait for the end of a tick (file
     * reads under /proc and /sys), which must not hold a normal scheduler. */
    {"sampler_stop", 0, bp_sampler_stop_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"report_utilization", 1, bp_report_utilization_nif, 0},
    {"sched_cpu", 0, bp_sched_cpu_nif, 0},
    {"memory", 0, bp_memory_nif, 0},
    {"history", 0, bp_history_nif, 0},
    {"sampler_info", 0, bp_sampler_info_nif, 0},
    {"native_channel", 0, bp_native_channel_nif, 0},

    BP_SCAN_NIFS,
    BP_RECORDER_NIFS,
};

ERL_NIF_INIT(beamprof_nif, nif_funcs, bp_load, NULL, bp_upgrade, bp_unload)
