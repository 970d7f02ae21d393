/* bp_native_sampler_nif.h - the native sampler's NIFs (bp_native_sampler_nif.c),
 * registered in beamprof_native_nif.c's table. */
#ifndef BP_NATIVE_SAMPLER_NIF_H
#define BP_NATIVE_SAMPLER_NIF_H

#include <erl_nif.h>

#include "bp_native_sampler.h"

/* Where the calling library instance keeps its native sampler (defined in
 * beamprof_native_nif.c, which owns the state). */
struct bp_native *_Atomic *bp_native_slot_of(ErlNifEnv *env);

ERL_NIF_TERM bp_native_start_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM bp_native_stop_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM bp_native_drain_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM bp_native_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
