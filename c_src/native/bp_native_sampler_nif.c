/* bp_native_sampler_nif.c - the native sampler's NIFs: argument validation
 * and terms. Registered in beamprof_native_nif.c's table; the library's
 * state comes through bp_native_slot_of.
 *
 *   nif_start(Config, Channel) -> ok | {error, Reason}  dirty IO
 *   nif_stop() -> ok                                    dirty IO
 *   nif_drain(Max) -> [Sample]                          dirty CPU
 *   nif_info(VmInternals) -> map()                      normal (never waits
 *                                                       for the control lock)
 *
 * Config's vm_internals (a boolean, default true) and info's VmInternals
 * say whether the VM's internals may be read (bp_native_start). Config's
 * test_hooks (tests only: a list of deny_vm_readv | slow_start) sets
 * BP_HOOK_* (bp_native_sampler.h). nif_info never waits for the control
 * lock (bp_native_stats): while a start, a rescan or a drain batch holds
 * it, the run's figures are the last copy and `cached` is true.
 */
#include "bp_native_sampler_nif.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "bp_native_atoms.h"
#include "bp_native_channel.h"
#include "bp_symbols.h"

#define BP_DEFAULT_HZ 99
#define BP_GATE_HZ 99 /* the most a thread is sampled while the gate is closed */
#define BP_DEFAULT_DEPTH 128
#define BP_DEFAULT_STACK 16384
#define BP_DEFAULT_RING (1024u * 1024u) /* touched only as used */
#define BP_DRAIN_MAX 1000000u

static ERL_NIF_TERM bp_err(ErlNifEnv *env, ERL_NIF_TERM reason)
{
    return enif_make_tuple2(env, bp_native_atom.error, reason);
}

/* An optional unsigned key in lo..hi. 0 = absent (def kept), 1 = ok,
 * -1 = ill-typed or out of range. */
static int bp_opt_uint(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key, unsigned lo,
                       unsigned hi, uint32_t *out)
{
    ERL_NIF_TERM v;
    unsigned x;
    if (!enif_get_map_value(env, map, key, &v))
        return 0;
    if (!enif_get_uint(env, v, &x) || x < lo || x > hi)
        return -1;
    *out = x;
    return 1;
}

/* A boolean term: 1 true, 0 false, -1 anything else. */
static int bp_bool(ERL_NIF_TERM v)
{
    return enif_is_identical(v, bp_native_atom.true)    ? 1
           : enif_is_identical(v, bp_native_atom.false) ? 0
                                                        : -1;
}

/* vm_internals: absent (1) or a boolean. -1 when ill-typed. */
static int bp_opt_internals(ErlNifEnv *env, ERL_NIF_TERM map, int *out)
{
    ERL_NIF_TERM v;
    *out = 1;
    if (!enif_get_map_value(env, map, bp_native_atom.vm_internals, &v))
        return 0;
    *out = bp_bool(v);
    return *out < 0 ? -1 : 1;
}

/* threads: a non-empty proper list of normal | dirty_cpu | dirty_io. */
static int bp_opt_kinds(ErlNifEnv *env, ERL_NIF_TERM map, unsigned *kinds)
{
    ERL_NIF_TERM v, head;
    unsigned len;
    *kinds = BP_NATIVE_KIND_ALL;
    if (!enif_get_map_value(env, map, bp_native_atom.threads, &v))
        return 0;
    if (!enif_get_list_length(env, v, &len) || len == 0)
        return -1;
    unsigned k = 0;
    while (enif_get_list_cell(env, v, &head, &v)) {
        if (enif_is_identical(head, bp_native_atom.normal))
            k |= 1u << BP_THREAD_NORMAL;
        else if (enif_is_identical(head, bp_native_atom.dirty_cpu))
            k |= 1u << BP_THREAD_DIRTY_CPU;
        else if (enif_is_identical(head, bp_native_atom.dirty_io))
            k |= 1u << BP_THREAD_DIRTY_IO;
        else
            return -1;
    }
    *kinds = k;
    return 1;
}

/* test_hooks: a proper list of deny_vm_readv | slow_start (tests only). */
static int bp_opt_hooks(ErlNifEnv *env, ERL_NIF_TERM map, unsigned *hooks)
{
    ERL_NIF_TERM v, head;
    *hooks = 0;
    if (!enif_get_map_value(env, map, bp_native_atom.test_hooks, &v))
        return 0;
    if (!enif_is_list(env, v))
        return -1;
    while (enif_get_list_cell(env, v, &head, &v)) {
        if (enif_is_identical(head, bp_native_atom.deny_vm_readv))
            *hooks |= BP_HOOK_DENY_READS;
        else if (enif_is_identical(head, bp_native_atom.slow_start))
            *hooks |= BP_HOOK_SLOW_START;
        else
            return -1;
    }
    return enif_is_empty_list(env, v) ? 1 : -1;
}

/* Reads the config map; 0 = badarg. */
static int bp_native_config(ErlNifEnv *env, ERL_NIF_TERM map, struct bp_native_opts *o,
                            int *vm_internals)
{
    *vm_internals = 1;
    memset(o, 0, sizeof *o);
    o->cap.hz = BP_DEFAULT_HZ;
    o->cap.depth = BP_DEFAULT_DEPTH;
    o->cap.stack_bytes = BP_DEFAULT_STACK;
    o->cap.ring_bytes = BP_DEFAULT_RING;
    if (!enif_is_map(env, map))
        return 0;
    if (bp_opt_uint(env, map, bp_native_atom.hz, 1, 10000, &o->cap.hz) < 0 ||
        bp_opt_uint(env, map, bp_native_atom.depth, 1, BP_NCAP_MAX_DEPTH, &o->cap.depth) < 0 ||
        bp_opt_uint(env, map, bp_native_atom.stack_bytes, 0, 65536, &o->cap.stack_bytes) < 0 ||
        bp_opt_uint(env, map, bp_native_atom.ring_bytes, 65536, 1u << 26, &o->cap.ring_bytes) < 0 ||
        bp_opt_kinds(env, map, &o->kinds) < 0 || bp_opt_internals(env, map, vm_internals) < 0 ||
        bp_opt_hooks(env, map, &o->hooks) < 0)
        return 0;
    o->cap.gate_hz = o->cap.hz < BP_GATE_HZ ? o->cap.hz : BP_GATE_HZ;
    uint32_t r = o->cap.ring_bytes;
    return (o->cap.stack_bytes & 7u) == 0 && (r & (r - 1)) == 0;
}

/* {sigprof_in_use, <<"0x... in lib (symbol)">>}: what is installed. */
static ERL_NIF_TERM bp_foreign_term(ErlNifEnv *env, void *handler)
{
    char text[512];
    Dl_info info;
    memset(&info, 0, sizeof info);
    if (dladdr(handler, &info) != 0 && info.dli_fname != NULL)
        snprintf(text, sizeof text, "SIGPROF handler %p in %s (%s)", handler, info.dli_fname,
                 info.dli_sname != NULL ? info.dli_sname : "?");
    else
        snprintf(text, sizeof text, "SIGPROF handler %p", handler);
    ERL_NIF_TERM bin;
    size_t len = strlen(text);
    unsigned char *p = enif_make_new_binary(env, len, &bin);
    memcpy(p, text, len);
    return enif_make_tuple2(env, bp_native_atom.sigprof_in_use, bin);
}

/* {error, {unsupported, What}} */
static ERL_NIF_TERM bp_unsupported(ErlNifEnv *env, ERL_NIF_TERM what)
{
    return bp_err(env, enif_make_tuple2(env, bp_native_atom.unsupported, what));
}

ERL_NIF_TERM bp_native_start_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct bp_native_opts o;
    const struct bp_channel *ch;
    ERL_NIF_TERM refused;
    int internals;
    if (!bp_native_config(env, argv[0], &o, &internals))
        return enif_make_badarg(env);
    int got = bp_native_channel_read(env, argv[1], &ch, &refused);
    if (got < 0)
        return enif_make_badarg(env);
    uint64_t record = sizeof(struct bp_nsample) + o.cap.stack_bytes + 8u * o.cap.depth +
                      BP_NCAP_STITCH;
    if (4 * record > o.cap.ring_bytes)
        return bp_err(env,
                      enif_make_tuple2(env, bp_native_atom.invalid, bp_native_atom.ring_bytes));
    if (got == 0)
        return refused;
    struct bp_native *n = bp_native_get(bp_native_slot_of(env), 1);
    if (n == NULL)
        return bp_err(env, bp_native_atom.enomem);
    void *foreign = NULL;
    switch (bp_native_start(n, &o, internals, ch, &foreign)) {
    case BP_NATIVE_OK:
        return bp_native_atom.ok;
    case BP_NATIVE_ALREADY:
        return bp_err(env, bp_native_atom.already_started);
    case BP_NATIVE_FOREIGN:
        return bp_err(env, bp_foreign_term(env, foreign));
    case BP_NATIVE_NO_THREADS:
        return bp_unsupported(env, bp_native_atom.no_threads);
    case BP_NATIVE_TIMERS:
        return bp_unsupported(env, bp_native_atom.cpu_timers);
    case BP_NATIVE_RETIRED:
        return bp_err(env, bp_native_atom.superseded);
    case BP_NATIVE_SIGACTION:
        return bp_unsupported(env, bp_native_atom.sigaction);
    default:
        return bp_err(env, bp_native_atom.enomem);
    }
}

/* The instance's sampler, or NULL before the first start. */
static struct bp_native *bp_native_of(ErlNifEnv *env)
{
    return bp_native_get(bp_native_slot_of(env), 0);
}

ERL_NIF_TERM bp_native_stop_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_native *n = bp_native_of(env);
    if (n != NULL)
        bp_native_stop(n);
    return bp_native_atom.ok;
}

ERL_NIF_TERM bp_native_drain_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    ERL_NIF_TERM max = argv[0];
    unsigned m;
    double d;
    if (!enif_get_uint(env, max, &m)) {
        /* A positive integer too big for an unsigned (a bignum too): all. */
        if (!enif_is_number(env, max) || enif_get_double(env, max, &d) ||
            enif_compare(max, enif_make_int(env, 0)) <= 0)
            return enif_make_badarg(env);
        m = BP_DRAIN_MAX;
    }
    if (m < 1)
        return enif_make_badarg(env);
    if (m > BP_DRAIN_MAX)
        m = BP_DRAIN_MAX;
    struct bp_native *n = bp_native_of(env);
    if (n == NULL)
        return enif_make_list(env, 0);
    return bp_native_drain(n, env, m);
}

static ERL_NIF_TERM bp_fp_term(int fp)
{
    return fp == 1 ? bp_native_atom.true : fp == 0 ? bp_native_atom.false : bp_native_atom.unknown;
}

static ERL_NIF_TERM bp_fl_source_term(int source)
{
    return source == BP_FL_SYMBOL    ? bp_native_atom.erts_frame_layout
           : source == BP_FL_GDB_JIT ? bp_native_atom.gdb_jit
                                     : bp_native_atom.none;
}

static ERL_NIF_TERM bp_mode_term(int walk)
{
    return walk == BP_WALK_FP ? bp_native_atom.fp : bp_native_atom.leaf;
}

static ERL_NIF_TERM bp_kinds_term(ErlNifEnv *env, unsigned kinds)
{
    ERL_NIF_TERM l = enif_make_list(env, 0);
    if (kinds & (1u << BP_THREAD_DIRTY_IO))
        l = enif_make_list_cell(env, bp_native_atom.dirty_io, l);
    if (kinds & (1u << BP_THREAD_DIRTY_CPU))
        l = enif_make_list_cell(env, bp_native_atom.dirty_cpu, l);
    if (kinds & (1u << BP_THREAD_NORMAL))
        l = enif_make_list_cell(env, bp_native_atom.normal, l);
    return l;
}

static ERL_NIF_TERM bp_reads_term(int reads)
{
    return reads > 0 ? bp_native_atom.ok : reads == 0 ? bp_native_atom.denied
                                                      : bp_native_atom.untested;
}

static ERL_NIF_TERM bp_bool_term(int b)
{
    return b ? bp_native_atom.true : bp_native_atom.false;
}

/* Events per second of the sampled threads' CPU time, 0.0 before any. */
static ERL_NIF_TERM bp_rate_term(ErlNifEnv *env, uint64_t events, uint64_t cpu_ns)
{
    return enif_make_double(env, cpu_ns > 0 ? (double)events * 1e9 / (double)cpu_ns : 0.0);
}

/* The keys and values of info's map; returns their count. */
static size_t bp_info_pairs(ErlNifEnv *env, const struct bp_native_stats *st, int internals,
                            ERL_NIF_TERM *k, ERL_NIF_TERM *v)
{
    const struct bp_native_stats_run *s = &st->r;
    const struct bp_native_atoms *a = &bp_native_atom;
    uint64_t signals = s->samples + s->dropped + s->thinned;
    uint64_t own = s->handler_ns + s->drain_ns + s->rescan_ns;
    size_t n = 0;
#define BP_KV(key, val) (k[n] = a->key, v[n] = (val), n++)
#define BP_U64(key, x) BP_KV(key, enif_make_uint64(env, (x)))
    BP_KV(running, bp_bool_term(s->running));
    BP_KV(hz, enif_make_uint(env, s->hz));
    BP_KV(hz_under_gate, enif_make_uint(env, s->gate_hz));
    BP_KV(depth, enif_make_uint(env, s->depth));
    BP_KV(frame_pointers, bp_fp_term(st->frame_pointers));
    BP_KV(mode, bp_mode_term(st->jit_walk));
    BP_U64(samples, s->samples);
    BP_U64(weighted, s->weighted);
    BP_U64(dropped, s->dropped);
    BP_U64(thinned, s->thinned);
    BP_U64(gated, s->gated);
    BP_U64(gate_closed_ns, s->gate_closed_ns);
    BP_U64(lost_weight, s->lost_weight);
    /* Samples kept per CPU second: what a reader of the profile got. */
    BP_KV(effective_hz, bp_rate_term(env, s->samples, s->cpu_ns));
    /* Signals per CPU second (thinned and dropped ones too): the timers' rate. */
    BP_KV(signal_hz, bp_rate_term(env, signals, s->cpu_ns));
    BP_U64(cpu_ns, s->cpu_ns);
    BP_U64(wall_ns, s->wall_ns);
    BP_U64(threads, s->threads);
    BP_U64(slots, s->slots);
    BP_U64(stray, st->stray);
    BP_U64(pending_bytes, s->pending);
    BP_U64(drained, s->drained);
    BP_U64(rescans, s->rescans);
    BP_KV(stack_bytes, enif_make_uint(env, s->stack_bytes));
    BP_KV(ring_bytes, enif_make_uint(env, s->ring_bytes));
    BP_KV(thread_kinds, bp_kinds_term(env, s->kinds));
    BP_U64(handler_ns, s->handler_ns);
    BP_U64(drain_ns, s->drain_ns);
    BP_U64(rescan_ns, s->rescan_ns);
    BP_KV(overhead_pct, enif_make_double(env, s->cpu_ns > 0 ? 100.0 * (double)own /
                                                                 (double)s->cpu_ns
                                                           : 0.0));
    BP_KV(frame_layout_source, bp_fl_source_term(st->frame_layout_source));
    BP_KV(vm_internals, bp_bool_term(internals));
    BP_U64(internal_reads, st->internal_reads);
    BP_U64(jit_walks, s->jit_walks);
    BP_KV(vm_readv, bp_reads_term(s->reads));
    BP_KV(cached, bp_bool_term(st->cached));
#undef BP_U64
#undef BP_KV
    return n;
}

ERL_NIF_TERM bp_native_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    int internals = bp_bool(argv[0]);
    if (internals < 0)
        return enif_make_badarg(env);
    struct bp_native_stats s;
    bp_native_stats(bp_native_of(env), internals, &s);
    ERL_NIF_TERM keys[48], values[48], map;
    size_t nk = bp_info_pairs(env, &s, internals, keys, values);
    if (!enif_make_map_from_arrays(env, keys, values, nk, &map))
        return enif_make_badarg(env);
    return map;
}
