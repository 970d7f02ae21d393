/* bp_channel.h - what the core library (beamprof_nif.so) hands the native
 * sampler library (beamprof_native_nif.so). The two are loaded separately
 * by the VM, each with its own symbols, so nothing is linked between them:
 * the core's native_channel/0 NIF returns a binary whose bytes are this
 * struct, living inside a resource object of the core, and the native
 * library's start NIF takes that binary, checks it (bp_channel_check) and
 * keeps the resource object while a run uses it. Design notes and the
 * lifetime argument: c_src/README.md, "The channel".
 *
 * Versioning. The first five fields (magic, version, size, thread_size,
 * self) never move and never change meaning. `version` is the major
 * version: a reader refuses any other. Fields may be appended without a
 * version change; `size` is the writer's sizeof, so a reader sees whether a
 * field it wants is there (size >= offsetof(field) + sizeof(field)).
 */
#ifndef BP_CHANNEL_H
#define BP_CHANNEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bp_thread_kind.h"

#define BP_CHANNEL_MAGIC 0x62706368u /* "bpch" */
#define BP_CHANNEL_VERSION 1u

/* One scheduler thread of the VM, as the core's table knows it. */
struct bp_channel_thread {
    int32_t tid;     /* Linux thread id */
    uint32_t type;   /* enum bp_thread_type */
    uint32_t index;  /* N of the scheduler, >= 1 */
};

struct bp_channel {
    uint32_t magic;       /* BP_CHANNEL_MAGIC */
    uint32_t version;     /* BP_CHANNEL_VERSION of the writer */
    uint32_t size;        /* sizeof(struct bp_channel) of the writer */
    uint32_t thread_size; /* sizeof(struct bp_channel_thread) of the writer */
    /* Its own address: the binary's bytes must be here. A copy of the
     * binary (binary:copy/1, term_to_binary and back, another node) is not
     * the channel and fails the check. */
    const struct bp_channel *self;
    /* The resource object holding this struct: enif_keep_resource /
     * enif_release_resource on it keep the core instance that made it. */
    void *resource;
    /* The core instance's published gate: 1 while closed. Read with one
     * relaxed atomic load, from any thread, signal handlers included. */
    const _Atomic int *gate_closed;
    /* Rescans the core's scheduler thread table and copies at most max
     * threads into out, sorted by type then index; returns how many. Any
     * thread except a signal handler (it takes the table's mutex and reads
     * /proc). ctx is the `threads_ctx` below. */
    size_t (*threads)(void *ctx, struct bp_channel_thread *out, size_t max);
    void *threads_ctx;
};

/* The size a reader of version 1 needs. */
#define BP_CHANNEL_V1_SIZE (offsetof(struct bp_channel, threads_ctx) + sizeof(void *))

enum bp_channel_status {
    BP_CHANNEL_OK = 0,
    BP_CHANNEL_NOT_A_CHANNEL = 1, /* wrong length, magic or self: not ours */
    BP_CHANNEL_BAD_VERSION = 2,   /* a channel of another major version */
    BP_CHANNEL_TOO_SMALL = 3,     /* fields this reader needs are missing */
};

/* Checks len bytes at p as a channel for this reader. Pure (reads p only),
 * any thread. On BP_CHANNEL_OK, *out is the channel; otherwise *out is
 * NULL and, if why is not NULL, *why is a static sentence saying what did
 * not match. */
static inline enum bp_channel_status bp_channel_check(const void *p, size_t len,
                                                      const struct bp_channel **out,
                                                      const char **why)
{
    const struct bp_channel *ch = p;
    const char *w = NULL;
    enum bp_channel_status s = BP_CHANNEL_OK;
    *out = NULL;
    if (p == NULL || len < offsetof(struct bp_channel, resource) ||
        ch->magic != BP_CHANNEL_MAGIC || ch->self != ch || ch->size > len) {
        s = BP_CHANNEL_NOT_A_CHANNEL;
        w = "not a channel made by beamprof_nif:native_channel/0 in this VM";
    } else if (ch->version != BP_CHANNEL_VERSION) {
        s = BP_CHANNEL_BAD_VERSION;
        w = "the core library speaks another channel version than this native library";
    } else if (ch->size < BP_CHANNEL_V1_SIZE ||
               ch->thread_size != sizeof(struct bp_channel_thread) ||
               ch->resource == NULL || ch->gate_closed == NULL || ch->threads == NULL) {
        s = BP_CHANNEL_TOO_SMALL;
        w = "the core library's channel lacks fields this native library needs";
    } else {
        *out = ch;
    }
    if (why != NULL)
        *why = w;
    return s;
}

#endif
