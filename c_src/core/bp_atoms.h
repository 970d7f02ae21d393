/* bp_atoms.h - every atom the library returns, declared once (X-macro).
 *
 * Atoms are made in load/upgrade by bp_atoms_make() and never on a hot path.
 * Atom terms are VM-global and permanent, so the same values stay valid for
 * every instance of this library (an upgrade of the same .so shares them).
 */
#ifndef BP_ATOMS_H
#define BP_ATOMS_H

#include <erl_nif.h>

#define BP_ATOMS(X)                                                          \
    X(ok)                                                                    \
    X(error)                                                                 \
    X(true)                                                                  \
    X(false)                                                                 \
    X(none)                                                                  \
    X(open)                                                                  \
    X(closed)                                                                \
    X(scheduler)                                                             \
    X(memory)                                                                \
    X(erlang)                                                                \
    X(os_cpu)                                                                \
    X(normal)                                                                \
    X(dirty_cpu)                                                             \
    X(dirty_io)                                                              \
    X(option)                                                                \
    X(cgroup_v2)                                                             \
    X(cgroup_v1)                                                             \
    X(machine)                                                               \
    X(not_running)                                                           \
    X(invalid)                                                               \
    X(superseded)                                                            \
    X(enomem)                                                                \
    X(thread_create)                                                         \
    X(beamprof_gate)                                                         \
    X(beamprof_gate_ping)                                                    \
    X(state)                                                                 \
    X(reason)                                                                \
    X(source)                                                                \
    X(running)                                                               \
    X(changed_at)                                                            \
    X(tick_ms)                                                               \
    X(scheduler_high)                                                        \
    X(scheduler_low)                                                         \
    X(memory_high)                                                           \
    X(memory_low)                                                            \
    X(reopen_ticks)                                                          \
    X(schedulers_online)                                                     \
    X(memory_limit)                                                          \
    X(rss)                                                                   \
    X(limit)                                                                 \
    X(limit_source)                                                          \
    X(ratio)                                                                 \
    X(mem_total)                                                             \
    X(mem_available)                                                         \
    X(no_channel)                                                            \
    X(ticks)                                                                 \
    X(cpu_ns)                                                                \
    X(threads)                                                               \
    X(starved)                                                               \
    X(blind)                                                                 \
    X(heartbeat_ms)                                                          \
    X(pings)                                                                 \
    X(reported_at)                                                           \
    X(undefined)                                                             \
    X(test_hide_threads)

#define BP_ATOM_DECL(name) ERL_NIF_TERM name;
struct bp_atoms {
    BP_ATOMS(BP_ATOM_DECL)
};
#undef BP_ATOM_DECL

/* Filled by bp_atoms_make(); read-only afterwards. */
extern struct bp_atoms bp_atom;

/* Makes every atom. Call from load/upgrade only (the env is the callback's). */
void bp_atoms_make(ErlNifEnv *env);

#endif
