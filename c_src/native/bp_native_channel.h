/* bp_native_channel.h - the native library's end of the channel from the
 * core (shared/bp_channel.h): reading and checking the term. */
#ifndef BP_NATIVE_CHANNEL_H
#define BP_NATIVE_CHANNEL_H

#include <erl_nif.h>

#include "bp_channel.h"

/* Reads term, the binary of beamprof_nif:native_channel/0, as a channel.
 * Returns 1 with *out set when this library can use it; 0 when it is a
 * channel this library cannot read (another version, fields missing), with
 * *error set to {error, {unsupported, {channel, Detail :: binary()}}}; -1
 * when term is not a channel at all (the caller raises badarg). The channel
 * is valid while term is; bp_native_start keeps it longer. */
int bp_native_channel_read(ErlNifEnv *env, ERL_NIF_TERM term, const struct bp_channel **out,
                           ERL_NIF_TERM *error);

#endif
