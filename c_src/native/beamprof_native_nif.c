/* beamprof_native_nif.c - entry file of the native sampler library
 * (beamprof_native_nif.so, module beamprof_native_nif): atoms, the
 * library's private state and its lifecycle (load / upgrade / unload), the
 * NIF table. The sampler is bp_native_sampler.c (control), its NIFs
 * bp_native_sampler_nif.c, the capture bp_native_capture.c, symbolization
 * bp_symbols*.c, unwinding bp_unwind.c.
 *
 * Built only where supported (Linux x86_64 with libunwind's headers) and
 * loaded on first use by beamprof_native_nif.erl, never at application
 * start. The scheduler threads and the load gate come from the core library
 * (beamprof_nif.so) through the channel a start is given (bp_channel.h).
 *
 * Error contract: as the core's (beamprof_nif.c): badarg for an ill-typed
 * argument, {error, Reason} for a condition the caller can act on.
 */
#include <erl_nif.h>
#include <stdint.h>
#include <string.h>

#include "bp_native_atoms.h"
#include "bp_native_channel.h"
#include "bp_native_sampler.h"
#include "bp_native_sampler_nif.h"
#include "bp_symbols_nif.h"
#include "bp_unwind.h"

#if !defined(__linux__) || !defined(__x86_64__)
#error "the native sampler library is built for Linux x86_64 only (see c_src/Makefile)"
#endif

#define BP_NSTATE_MAGIC 0x62706e76u /* "bpnv" */
#define BP_NSTATE_ABI 1u

/* ---------------------------------------------------------------- atoms */

struct bp_native_atoms bp_native_atom;
static int bp_native_atoms_made; /* atoms are VM-global: once per image */

void bp_native_atoms_make(ErlNifEnv *env)
{
    if (bp_native_atoms_made)
        return;
#define BP_NATIVE_ATOM_MAKE(name) bp_native_atom.name = enif_make_atom(env, #name);
    BP_NATIVE_ATOMS(BP_NATIVE_ATOM_MAKE)
#undef BP_NATIVE_ATOM_MAKE
    bp_native_atoms_made = 1;
}

/* ---------------------------------------------------------------- state */

/* The stable head of every version's private state: a newer library reads
 * it from the old private data in upgrade, whatever the rest looks like.
 * Fields are never reordered or removed. */
struct bp_nstate_header {
    uint32_t magic; /* BP_NSTATE_MAGIC */
    uint32_t abi;   /* BP_NSTATE_ABI of the library that made it */
    /* Stops that library's native sampler for good, leaving its samples,
     * and fills *carry (its config, whether it ran, its SIGPROF handler) up
     * to carry->size bytes. Called by the next library from its upgrade. */
    void (*handover)(void *state, struct bp_native_carry *carry);
};

struct bp_nstate {
    struct bp_nstate_header hdr; /* must stay first */
    struct bp_native *_Atomic native; /* NULL until the first start */
};

static void bp_nstate_handover(void *state, struct bp_native_carry *carry)
{
    struct bp_nstate *st = state;
    bp_native_handover(atomic_load(&st->native), carry);
}

static struct bp_nstate *bp_nstate_new(void)
{
    struct bp_nstate *st = enif_alloc(sizeof *st);
    if (st == NULL)
        return NULL;
    memset(st, 0, sizeof *st);
    st->hdr.magic = BP_NSTATE_MAGIC;
    st->hdr.abi = BP_NSTATE_ABI;
    st->hdr.handover = bp_nstate_handover;
    atomic_init(&st->native, NULL);
    return st;
}

struct bp_native *_Atomic *bp_native_slot_of(ErlNifEnv *env)
{
    struct bp_nstate *st = enif_priv_data(env);
    return &st->native;
}

/* ------------------------------------------------------------ lifecycle */

/* load_info is the channel of the core (beamprof_native_nif.erl passes
 * beamprof_nif:native_channel()); only an upgrade uses it, to restart a
 * sampler the old library ran. */
static int bp_load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info)
{
    (void)info;
    bp_native_atoms_make(env);
    if (bp_symbols_nif_load(env) != 0)
        return 1;
    struct bp_nstate *st = bp_nstate_new();
    if (st == NULL)
        return 1;
    *priv = st;
    return 0;
}

/* The old library stops its sampler (its samples stay with it); a running
 * one restarts here with the same config and the channel given to this
 * load, our handler replacing the old one (taken as ours, not someone
 * else's). */
static void bp_upgrade_native(ErlNifEnv *env, struct bp_nstate *st,
                              struct bp_nstate_header *old, ERL_NIF_TERM info)
{
    struct bp_native_carry nc;
    memset(&nc, 0, sizeof nc);
    nc.size = sizeof nc;
    old->handover(old, &nc);
    const struct bp_channel *ch;
    ERL_NIF_TERM refused;
    if (nc.abi < 1 || !nc.was_running || bp_native_channel_read(env, info, &ch, &refused) != 1)
        return;
    struct bp_native *n = bp_native_get(&st->native, 1);
    if (n == NULL)
        return;
    bp_native_adopt(n, &nc);
    void *foreign;
    /* A carry of abi 1 does not say: the VM's internals are not read. */
    (void)bp_native_start(n, &nc.opts, nc.abi >= 2 && nc.vm_internals, ch, &foreign);
}

static int bp_upgrade(ErlNifEnv *env, void **priv, void **old_priv, ERL_NIF_TERM info)
{
    bp_native_atoms_make(env);
    if (bp_symbols_nif_load(env) != 0)
        return 1;
    struct bp_nstate *st = bp_nstate_new();
    if (st == NULL)
        return 1;
    struct bp_nstate_header *old = old_priv ? *old_priv : NULL;
    if (old != NULL && old->magic == BP_NSTATE_MAGIC && old->abi >= 1 && old->handover != NULL)
        bp_upgrade_native(env, st, old, info);
    *priv = st;
    return 0;
}

static void bp_unload(ErlNifEnv *env, void *priv)
{
    (void)env;
    struct bp_nstate *st = priv;
    if (st == NULL)
        return;
    /* Stops (the channel given back), SIGPROF released if ours, waits for
     * running handlers, frees. */
    bp_native_free(atomic_load(&st->native));
    st->hdr.magic = 0;
    enif_free(st);
    bp_unwind_release(); /* after the drain stopped: frees the unwinder's caches */
}

/* loaded() -> true: lets beamprof_native_nif.erl tell a loaded library from
 * its stubs. */
static ERL_NIF_TERM bp_loaded_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)env;
    (void)argc;
    (void)argv;
    return bp_native_atom.true;
}

/* ---------------------------------------------------------------- table */

static ErlNifFunc nif_funcs[] = {
    {"nif_loaded", 0, bp_loaded_nif, 0},
    /* Dirty IO: start reads /proc and creates one timer per thread; stop
     * joins a thread and waits for running signal handlers. */
    {"nif_start", 2, bp_native_start_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"nif_stop", 0, bp_native_stop_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    /* Dirty CPU: DWARF unwinding of up to Max samples (tens of us each). */
    {"nif_drain", 1, bp_native_drain_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"nif_info", 1, bp_native_info_nif, 0},
    /* Dirty CPU: dladdr is linear in an object's symbols; the JIT table
     * snapshot copies tens of thousands of names (bp_symbols_nif.c). */
    {"nif_symbolize", 1, bp_native_symbolize_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"nif_jit_symbols", 1, bp_native_jit_symbols_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    /* A resource and a string copy: short. */
    {"nif_symbol_table", 1, bp_native_symbol_table_nif, 0},
    /* Dirty IO: loading an object's table reads files (a debug file's
     * symbols, a CRC over the whole of a debuglink candidate). */
    {"nif_symbolize", 2, bp_native_symbolize_in_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    /* Copies at most BP_OBJSYMS_MAX small maps: dirty CPU to stay bounded. */
    {"nif_symbol_objects", 1, bp_native_symbol_objects_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
};

ERL_NIF_INIT(beamprof_native_nif, nif_funcs, bp_load, NULL, bp_upgrade, bp_unload)
