/* bp_thread_kind.h - the kinds of VM scheduler threads, shared by the core
 * (which finds them, bp_threads.h) and the native sampler (which samples
 * them, told through the channel, bp_channel.h). The values are part of the
 * channel's contract: never renumbered. */
#ifndef BP_THREAD_KIND_H
#define BP_THREAD_KIND_H

/* 1024 normal + 1024 dirty CPU + 1024 dirty IO is the VM's maximum. */
#define BP_THREADS_MAX 3072

enum bp_thread_type {
    BP_THREAD_NORMAL = 0,
    BP_THREAD_DIRTY_CPU = 1,
    BP_THREAD_DIRTY_IO = 2
};

#endif
