/* bp_recorder_nif.h - the flight recorder's NIFs (recorder_open/4,
 * recorder_close/0, recorder_append/1, recorder_info/0, recorder_active/0).
 *
 * beamprof_nif.c calls bp_recorder_nif_atoms() from load and upgrade,
 * defines bp_core_recorder_of() (this instance's recorder) and puts
 * BP_RECORDER_NIFS into its function table. Every function validates its
 * arguments (badarg). Open and close touch the file system (open, flock,
 * ftruncate, mmap, a read of the ring on resume, munmap): dirty IO. Append
 * copies one payload into the mapped ring under the file's leaf lock.
 */
#ifndef BP_RECORDER_NIF_H
#define BP_RECORDER_NIF_H

#include <erl_nif.h>

#include "bp_recorder.h"

/* Makes this file's atoms. Load and upgrade only. */
void bp_recorder_nif_atoms(ErlNifEnv *env);

/* This library instance's recorder (beamprof_nif.c). */
struct bp_recorder *bp_core_recorder_of(ErlNifEnv *env);

#define BP_RECORDER_NIF_DECL(name) \
    ERL_NIF_TERM name(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
BP_RECORDER_NIF_DECL(bp_recorder_open_nif)
BP_RECORDER_NIF_DECL(bp_recorder_close_nif)
BP_RECORDER_NIF_DECL(bp_recorder_append_nif)
BP_RECORDER_NIF_DECL(bp_recorder_info_nif)
BP_RECORDER_NIF_DECL(bp_recorder_active_nif)
#undef BP_RECORDER_NIF_DECL

#define BP_RECORDER_NIFS                                                          \
    {"recorder_open", 4, bp_recorder_open_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},       \
    {"recorder_close", 0, bp_recorder_close_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},     \
    {"recorder_append", 1, bp_recorder_append_nif, 0},                            \
    {"recorder_info", 0, bp_recorder_info_nif, 0},                                \
    {"recorder_active", 0, bp_recorder_active_nif, 0}

#endif
