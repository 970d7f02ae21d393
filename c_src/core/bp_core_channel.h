/* bp_core_channel.h - the core's end of the channel to the native sampler
 * library (shared/bp_channel.h): its resource type and the
 * native_channel/0 NIF. */
#ifndef BP_CORE_CHANNEL_H
#define BP_CORE_CHANNEL_H

#include <erl_nif.h>
#include <stdatomic.h>

#include "bp_threads.h"

/* What a channel of the calling library instance points at (defined in
 * beamprof_nif.c, which owns the state). */
struct bp_core_channel_src {
    ErlNifResourceType *type; /* the instance's, NULL if none could be made */
    struct bp_threads *threads;
    const _Atomic int *gate_closed;
};
struct bp_core_channel_src bp_core_channel_src_of(ErlNifEnv *env);

/* Opens a channel resource type for the instance being loaded; call from
 * load and upgrade, keep the result in the instance's state. The type is
 * created, never taken over (see c_src/README.md, "The channel"): in an
 * upgrade, where the old instance's type still exists, it gets another name.
 * Returns NULL when no type could be made (then native_channel/0 answers
 * {error, no_channel} and the rest of the library works). */
ErlNifResourceType *bp_core_channel_open(ErlNifEnv *env);

/* native_channel() -> binary() | {error, no_channel | enomem}: a fresh
 * channel of the calling instance. Normal scheduler (one allocation). */
ERL_NIF_TERM bp_native_channel_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

#endif
