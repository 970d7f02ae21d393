/* bp_native_atoms.h - every atom the native sampler library returns,
 * declared once (X-macro), made in load/upgrade by bp_native_atoms_make().
 * The library is its own NIF library (module beamprof_native_nif): its
 * atoms are its own, apart from the core's bp_atoms.h. */
#ifndef BP_NATIVE_ATOMS_H
#define BP_NATIVE_ATOMS_H

#include <erl_nif.h>

#define BP_NATIVE_ATOMS(X)                                                   \
    X(ok)                                                                    \
    X(error)                                                                 \
    X(true)                                                                  \
    X(false)                                                                 \
    X(normal)                                                                \
    X(dirty_cpu)                                                             \
    X(dirty_io)                                                              \
    X(invalid)                                                               \
    X(superseded)                                                            \
    X(enomem)                                                                \
    X(running)                                                               \
    X(cpu_ns)                                                                \
    X(threads)                                                               \
    X(hz)                                                                    \
    X(depth)                                                                 \
    X(stack_bytes)                                                           \
    X(ring_bytes)                                                            \
    X(already_started)                                                       \
    X(sigprof_in_use)                                                        \
    X(unrooted)                                                              \
    X(handler_ns)                                                            \
    X(drain_ns)                                                              \
    X(rescan_ns)                                                             \
    X(overhead_pct)                                                          \
    X(unsupported)                                                           \
    X(no_threads)                                                            \
    X(cpu_timers)                                                            \
    X(sigaction)                                                             \
    X(frame_pointers)                                                        \
    X(frame_layout_source)                                                   \
    X(erts_frame_layout)                                                     \
    X(gdb_jit)                                                               \
    X(none)                                                                  \
    X(unknown)                                                               \
    X(samples)                                                               \
    X(weighted)                                                              \
    X(dropped)                                                               \
    X(thinned)                                                               \
    X(gated)                                                                 \
    X(gate_closed_ns)                                                        \
    X(hz_under_gate)                                                         \
    X(vm_readv)                                                              \
    X(denied)                                                                \
    X(untested)                                                              \
    X(cached)                                                                \
    X(test_hooks)                                                            \
    X(deny_vm_readv)                                                         \
    X(slow_start)                                                            \
    X(lost_weight)                                                           \
    X(effective_hz)                                                          \
    X(signal_hz)                                                             \
    X(wall_ns)                                                               \
    X(stray)                                                                 \
    X(slots)                                                                 \
    X(pending_bytes)                                                         \
    X(drained)                                                               \
    X(rescans)                                                               \
    X(mode)                                                                  \
    X(fp)                                                                    \
    X(leaf)                                                                  \
    X(thread_kinds)                                                          \
    X(channel)                                                               \
    X(vm_internals)                                                          \
    X(internal_reads)                                                        \
    X(jit_walks)

#define BP_NATIVE_ATOM_DECL(name) ERL_NIF_TERM name;
struct bp_native_atoms {
    BP_NATIVE_ATOMS(BP_NATIVE_ATOM_DECL)
};
#undef BP_NATIVE_ATOM_DECL

/* Filled by bp_native_atoms_make(); read-only afterwards. */
extern struct bp_native_atoms bp_native_atom;

/* Makes every atom. Call from load/upgrade only (the env is the callback's). */
void bp_native_atoms_make(ErlNifEnv *env);

#endif
