/* bp_native_capture.h - capture half of the native sampler: per-thread CPU-clock
 * timers raising SIGPROF on their own thread, the signal handler, and the
 * per-thread rings it fills. No ERTS dependency (the NIF glue is
 * bp_native_sampler.c), so the unit tests run it for real.
 *
 * A run (struct bp_ncap_run) owns a fixed array of thread slots; each slot
 * has its ring and its scratch buffer, allocated before its timer exists.
 * The handler finds its slot through the timer's sigev_value (the run's
 * generation and the slot index), checks the slot belongs to the calling
 * thread (gettid), and writes one record: registers, a frame-pointer walk
 * of the JIT frames (only where JIT code keeps frame pointers) and, when the sample is not
 * in JIT code, a copy of the C stack window above RSP for later DWARF
 * unwinding. See the comment above bp_ncap_handler in bp_native_capture.c for the
 * list of what the handler calls and why each is async-signal-safe.
 *
 * Concurrency: the control side (start, add/remove thread, deactivate,
 * free, drain) is serialised by the caller (bp_native's ctl lock). The
 * handler runs concurrently on any sampled thread; the slot ring is SPSC
 * (the handler of that slot's thread is the only producer).
 */
#ifndef BP_NATIVE_CAPTURE_H
#define BP_NATIVE_CAPTURE_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "bp_native_ring.h"
#include "bp_native_walk.h"
#include "bp_unwind.h"

#define BP_NCAP_MAX_DEPTH 1024  /* upper bound of cfg.depth */
#define BP_NCAP_SCRATCH 8192     /* per-slot chunk cache for walks */
#define BP_NCAP_STITCH 512       /* bytes copied below a C sample's chain */

struct bp_ncap_config {
    uint32_t hz;          /* 1..10000 */
    uint32_t depth;       /* max frames kept from the walk, 1..1024 */
    uint32_t stack_bytes; /* C stack window copied, 0..65536, multiple of 8 */
    uint32_t ring_bytes;  /* per thread, power of two */
    int jit_walk;         /* enum bp_ncap_walk: how the JIT's frames are read */
    uint32_t gate_hz;     /* rate kept while the gate is closed: 0 or >= hz keeps hz */
};

/* How a sample's JIT frames are read. BP_WALK_FP reads the VM's own stack
 * (the Erlang process's frames): the caller picks it only when the
 * vm_internals option allows it and the VM's JIT code keeps frame pointers.
 * There is no walk for JIT code without frame pointers: a return-address
 * scan (value 0, removed) took stale words above the process's stack for
 * callers, so such a VM's samples are read as BP_WALK_LEAF: only what can
 * be verified. Any value other than BP_WALK_FP reads as BP_WALK_LEAF. */
enum bp_ncap_walk {
    BP_WALK_FP = 1,  /* the frame-pointer walk (erts_frame_layout 1); also the
                        Erlang chain of samples taken in C code */
    BP_WALK_LEAF = 2 /* none: a JIT sample is its ip alone, a C sample its
                        C frames (DWARF) down to the JIT code that called them */
};

/* Flags of a sample record. */
#define BP_NS_JIT 0x01u      /* ip is in JIT code */
#define BP_NS_ELF 0x02u      /* ip is in a known ELF text mapping */
#define BP_NS_FP_END 0x04u   /* the walk ended at a saved fp of 0 */
#define BP_NS_FIXUP 0x08u    /* addrs[0] is the [RSP] word (frameless JIT code) */
#define BP_NS_WALKED 0x20u   /* a walk was attempted (bp outside the window) */
#define BP_NS_DEPTH 0x40u    /* the walk stopped at the depth cap */
#define BP_NS_LEAF 0x80u     /* a JIT sample whose frames were not read (BP_WALK_LEAF) */

/* One sample in a ring: this header, stack_len bytes of stack copied from
 * regs.sp (padded to 8), nfp return addresses (innermost first), then
 * stitch_len bytes copied from fp_start - stitch_len (a C sample whose
 * Erlang chain was found: the frames just below the chain). */
struct bp_nsample {
    struct bp_nring_hdr h;
    uint64_t seq;       /* global capture order */
    uint32_t weight;    /* 1 + timer overrun */
    uint16_t flags;     /* BP_NS_* */
    uint16_t nfp;
    uint32_t stack_len;
    uint32_t slot;
    struct bp_regs regs;
    uint64_t fp_start;  /* the bp the walk started from */
    uint32_t stitch_len;
    uint32_t pad;
};

static inline const uint8_t *bp_nsample_stack(const struct bp_nsample *s)
{
    return (const uint8_t *)(s + 1);
}

static inline const uint64_t *bp_nsample_addrs(const struct bp_nsample *s)
{
    return (const uint64_t *)(const void *)((const uint8_t *)(s + 1) +
                                            ((s->stack_len + 7u) & ~7u));
}

static inline const uint8_t *bp_nsample_stitch(const struct bp_nsample *s)
{
    return (const uint8_t *)(bp_nsample_addrs(s) + s->nfp);
}

enum bp_slot_state { BP_SLOT_FREE = 0, BP_SLOT_ACTIVE = 1, BP_SLOT_DEAD = 2 };

struct bp_ncap_slot {
    pid_t tid;
    int kind;        /* enum bp_thread_type */
    uint32_t index;
    _Atomic int state; /* enum bp_slot_state */
    timer_t timer;
    int have_timer;
    uint8_t *ring_mem;
    uint8_t *scratch;
    struct bp_nring ring;
    uint64_t cpu_start; /* thread CPU ns when its timer was armed */
    uint64_t cpu_last;  /* last reading (kept after the thread is gone) */
    _Atomic uint64_t samples;     /* records written */
    _Atomic uint64_t weighted;    /* their weights */
    _Atomic uint64_t dropped;     /* ring full */
    _Atomic uint64_t thinned;     /* gate closed: signals not captured (rate lowered to
                                     gate_hz); their weight goes to the next sample */
    _Atomic uint64_t gated;       /* samples captured while the gate was closed */
    _Atomic uint64_t lost_weight; /* weights of dropped samples */
    _Atomic uint64_t handler_ns;  /* thread CPU time spent in the handler */
    _Atomic uint64_t walks;       /* samples whose JIT/Erlang stack was read */
    /* The handler's own (this thread only, never nested: SIGPROF is
     * blocked while its handler runs). */
    uint64_t gate_credit; /* gate_hz x weight accumulated, a capture per hz */
    uint64_t carry;       /* weight of thinned signals not yet in a sample */
};

struct bp_ncap_run {
    uint32_t gen;
    pid_t pid;
    struct bp_ncap_config cfg;
    _Atomic int capturing;
    const _Atomic int *gate_closed; /* NULL: no gate */
    struct bp_ranges *ranges;
    size_t cap_slots;
    _Atomic size_t nslots; /* published slots */
    struct bp_ncap_slot *slots;
    _Atomic uint64_t seq;
    _Atomic uint64_t stray; /* signals that were not for this run */
};

/* SIGPROFs our handler got that were for no live slot (sent by kill or
 * tgkill, a timer of an earlier run, a run stopped or not yet started),
 * since this library image was loaded. Any thread. */
uint64_t bp_ncap_stray_total(void);

/* Whether process_vm_readv on our own pid works (a seccomp filter or a
 * kernel without it denies it): 0 when it does, else the errno. The
 * capture reads every stack through it. Control side. */
int bp_ncap_probe_reads(void);

/* Installs the handler for SIGPROF (SA_SIGINFO | SA_RESTART | SA_ONSTACK)
 * unless someone else's is installed: SIG_DFL, SIG_IGN, our own handler and
 * `also_ours` (a previous instance's handler handed over on upgrade; may be
 * NULL) are fine. `owner` (any unique pointer: the instance) becomes the
 * owner of the disposition in this library image. Returns 0; 1 if foreign
 * (*foreign gets its address); -1 if sigaction failed. Control side. */
int bp_ncap_install(const void *owner, void *also_ours, void **foreign);

/* If `owner` installed our handler and it is still the one installed, sets
 * SIGPROF to SIG_IGN (pending signals are discarded). Then waits until no
 * handler of this image runs, plus a grace period for one that was entered
 * but has not counted itself yet. Called before the library's code goes
 * away. Two instances loaded from one file share this image's statics: an
 * old instance never resets a disposition a newer one installed. */
void bp_ncap_release(const void *owner);

/* Our handler's address (for the upgrade hand-over). */
void *bp_ncap_handler_addr(void);

/* A new run with room for cap_slots threads, not yet active. NULL on
 * allocation failure. */
struct bp_ncap_run *bp_ncap_run_new(const struct bp_ncap_config *cfg, size_t cap_slots,
                                    const _Atomic int *gate_closed);

/* Makes the run the one the handler serves (before any thread is added). */
void bp_ncap_activate(struct bp_ncap_run *run);

/* Adds a thread: ring and scratch allocated, slot published, CPU timer
 * created and armed. Returns the slot index, -1 when full or on allocation
 * failure, -2 when the timer cannot be created (thread gone or no CPU
 * timers: errno tells). */
int bp_ncap_add_thread(struct bp_ncap_run *run, pid_t tid, int kind, uint32_t index);

/* Stops a thread's timer (thread gone): its slot stays, with its samples. */
void bp_ncap_remove_thread(struct bp_ncap_run *run, size_t idx);

/* Reads the CPU time of a slot's thread into cpu_last (kept if gone). */
void bp_ncap_refresh_cpu(struct bp_ncap_slot *slot);

/* Stops capturing: every timer deleted, the run no longer served, and no
 * handler still inside it when this returns. The rings keep their samples. */
void bp_ncap_deactivate(struct bp_ncap_run *run);

/* Frees a deactivated run. */
void bp_ncap_run_free(struct bp_ncap_run *run);

/* The kernel's CPU clock of a thread of this process. */
clockid_t bp_ncap_thread_clock(pid_t tid);

#endif
