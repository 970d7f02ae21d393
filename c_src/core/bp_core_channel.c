/* bp_core_channel.c - the core's end of the channel to the native sampler
 * (see bp_core_channel.h and shared/bp_channel.h).
 *
 * A channel is a resource object of a type this library instance created
 * (never taken over), with a destructor. ERTS runs a NIF library's unload
 * callback, and unmaps it, only once its module is purged and no object of
 * its types with a destructor is left; so while the native library keeps a
 * channel object (enif_keep_resource), the instance that made it, its code
 * and the state the channel points into (thread table, published gate)
 * stay. */
#include "bp_core_channel.h"

#include <stdio.h>
#include <string.h>

#include "bp_atoms.h"
#include "bp_channel.h"

#define BP_CHANNEL_TYPE_NAMES 16 /* an upgrade while older instances linger */

static void bp_channel_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    struct bp_channel *ch = obj;
    ch->magic = 0; /* a stale pointer to it no longer passes the check */
}

ErlNifResourceType *bp_core_channel_open(ErlNifEnv *env)
{
    char name[32];
    for (unsigned i = 0; i < BP_CHANNEL_TYPE_NAMES; i++) {
        if (i == 0)
            snprintf(name, sizeof name, "beamprof_channel");
        else
            snprintf(name, sizeof name, "beamprof_channel_%u", i);
        ErlNifResourceType *t =
            enif_open_resource_type(env, NULL, name, bp_channel_dtor, ERL_NIF_RT_CREATE, NULL);
        if (t != NULL)
            return t;
    }
    return NULL;
}

/* The channel's thread snapshot: rescans the table, copies it. */
static size_t bp_channel_threads(void *ctx, struct bp_channel_thread *out, size_t max)
{
    struct bp_threads *tab = ctx;
    bp_threads_rescan(tab);
    size_t k = 0;
    pthread_mutex_lock(&tab->lock);
    for (size_t i = 0; i < tab->count && k < max; i++, k++) {
        out[k].tid = (int32_t)tab->t[i].tid;
        out[k].type = (uint32_t)tab->t[i].type;
        out[k].index = tab->t[i].index;
    }
    pthread_mutex_unlock(&tab->lock);
    return k;
}

ERL_NIF_TERM bp_native_channel_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_core_channel_src src = bp_core_channel_src_of(env);
    if (src.type == NULL)
        return enif_make_tuple2(env, bp_atom.error, bp_atom.no_channel);
    struct bp_channel *ch = enif_alloc_resource(src.type, sizeof *ch);
    if (ch == NULL)
        return enif_make_tuple2(env, bp_atom.error, bp_atom.enomem);
    memset(ch, 0, sizeof *ch);
    ch->magic = BP_CHANNEL_MAGIC;
    ch->version = BP_CHANNEL_VERSION;
    ch->size = sizeof *ch;
    ch->thread_size = sizeof(struct bp_channel_thread);
    ch->self = ch;
    ch->resource = ch;
    ch->gate_closed = src.gate_closed;
    ch->threads = bp_channel_threads;
    ch->threads_ctx = src.threads;
    ERL_NIF_TERM bin = enif_make_resource_binary(env, ch, ch, sizeof *ch);
    enif_release_resource(ch); /* the binary holds it now */
    return bin;
}
