/* bp_native_nif.h - the native sampler's NIF bodies (bp_native_nif.c). */
#ifndef BP_NATIVE_NIF_H
#define BP_NATIVE_NIF_H

#include <erl_nif.h>

#include "bp_native.h"

/* Where the library instance keeps its native sampler. */
struct bp_native_env {
    struct bp_native *_Atomic *slot; /* NULL until the first start */
    struct bp_threads *threads;
    const _Atomic int *gate_closed;
};

ERL_NIF_TERM bp_native_start_term(ErlNifEnv *env, ERL_NIF_TERM config,
                                  const struct bp_native_env *ne);
ERL_NIF_TERM bp_native_stop_term(ErlNifEnv *env, const struct bp_native_env *ne);
ERL_NIF_TERM bp_native_drain_term(ErlNifEnv *env, ERL_NIF_TERM max,
                                  const struct bp_native_env *ne);
ERL_NIF_TERM bp_native_info_term(ErlNifEnv *env, const struct bp_native_env *ne);

#endif
