/* bp_symbols_nif.h - NIFs of symbolization, registered in beamprof_native_nif.c. */
#ifndef BP_SYMBOLS_NIF_H
#define BP_SYMBOLS_NIF_H

#include <erl_nif.h>

/* Makes this file's atoms and opens its resource type (create or take
 * over); call from load and upgrade. 0, or -1 when the type cannot be
 * opened (the load then fails). */
int bp_symbols_nif_load(ErlNifEnv *env);

ERL_NIF_TERM bp_native_symbolize_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM bp_native_symbol_table_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM bp_native_symbolize_in_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM bp_native_symbol_objects_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
ERL_NIF_TERM bp_native_jit_symbols_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
