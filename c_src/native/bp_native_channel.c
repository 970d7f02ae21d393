/* bp_native_channel.c - reads the core's channel (see bp_native_channel.h
 * and c_src/README.md, "The channel"). */
#include "bp_native_channel.h"

#include <stdio.h>
#include <string.h>

#include "bp_native_atoms.h"

static ERL_NIF_TERM bp_channel_error(ErlNifEnv *env, const char *text)
{
    ERL_NIF_TERM bin;
    size_t len = strlen(text);
    unsigned char *p = enif_make_new_binary(env, len, &bin);
    if (p == NULL)
        return enif_make_badarg(env);
    memcpy(p, text, len);
    ERL_NIF_TERM what = enif_make_tuple2(env, bp_native_atom.channel, bin);
    return enif_make_tuple2(env, bp_native_atom.error,
                            enif_make_tuple2(env, bp_native_atom.unsupported, what));
}

int bp_native_channel_read(ErlNifEnv *env, ERL_NIF_TERM term, const struct bp_channel **out,
                           ERL_NIF_TERM *error)
{
    ErlNifBinary bin;
    const char *why = NULL;
    char text[200];
    *out = NULL;
    if (!enif_inspect_binary(env, term, &bin))
        return -1;
    switch (bp_channel_check(bin.data, bin.size, out, &why)) {
    case BP_CHANNEL_OK:
        return 1;
    case BP_CHANNEL_NOT_A_CHANNEL:
        return -1;
    case BP_CHANNEL_BAD_VERSION:
        snprintf(text, sizeof text, "%s (core: version %u, native: version %u)", why,
                 (unsigned)((const struct bp_channel *)(const void *)bin.data)->version,
                 BP_CHANNEL_VERSION);
        break;
    default:
        snprintf(text, sizeof text, "%s", why);
        break;
    }
    *error = bp_channel_error(env, text);
    return 0;
}
