/* bp_native_capture.c - the native sampler's signal handler, timers and runs (see
 * bp_native_capture.h). Linux x86_64. */
#include "bp_native_capture.h"
#include "bp_native_capture_walk.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

/* The run the handler serves, and how many handlers of this library image
 * are inside it. The control side clears `cur` and then waits for
 * `inflight` to reach 0; a handler counts itself before it loads `cur`.
 * Both are seq_cst, so a handler either is counted before the wait reads 0
 * or loads the cleared pointer: no handler uses a run after deactivation. */
static _Atomic(struct bp_ncap_run *) bp_ncap_cur;
static _Atomic int bp_ncap_inflight;
static _Atomic(const void *) bp_ncap_owner; /* who installed our handler */

#define BP_PAGE 4096u
#define BP_IOV_MAX 18 /* 64 KiB window + 2 partial pages */

/* ------------------------------------------------------ fault-free reads */

/* Reads our own memory through the kernel: process_vm_readv on our own pid
 * returns a short count (or -1 EFAULT) for an unmapped page instead of
 * faulting. One iovec per page, so a read stops at the first unreadable
 * page with everything before it copied. Allowed on our own process
 * whatever ptrace_scope says (same thread group). */
static size_t bp_self_read(void *ctx, uint64_t addr, uint8_t *dst, size_t len)
{
    const struct bp_ncap_run *run = ctx;
    struct iovec local = {dst, len};
    struct iovec remote[BP_IOV_MAX];
    int n = 0;
    uint64_t a = addr;
    size_t left = len;
    while (left > 0 && n < BP_IOV_MAX) {
        size_t c = BP_PAGE - (size_t)(a & (BP_PAGE - 1));
        if (c > left)
            c = left;
        remote[n].iov_base = (void *)(uintptr_t)a;
        remote[n].iov_len = c;
        n++;
        a += c;
        left -= c;
    }
    local.iov_len = len - left;
    long got = syscall(SYS_process_vm_readv, (long)run->pid, &local, 1L, remote,
                       (unsigned long)n, 0UL);
    return got > 0 ? (size_t)got : 0;
}

/* ------------------------------------------------------------- handler */

static _Atomic uint64_t bp_ncap_stray_all; /* image-wide, see bp_ncap_stray_total */

uint64_t bp_ncap_stray_total(void)
{
    return atomic_load(&bp_ncap_stray_all);
}

int bp_ncap_probe_reads(void)
{
    uint64_t src[2] = {0x6270726f62650a01u, 0x0102030405060708u}, dst[2] = {0, 0};
    struct iovec local = {dst, sizeof dst}, remote = {src, sizeof src};
    errno = 0;
    long got = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1UL, 0UL);
    if (got == (long)sizeof src && memcmp(src, dst, sizeof src) == 0)
        return 0;
    return errno != 0 ? errno : EIO;
}

static void bp_count_stray(struct bp_ncap_run *run)
{
    atomic_fetch_add_explicit(&bp_ncap_stray_all, 1, memory_order_relaxed);
    if (run != NULL)
        atomic_fetch_add_explicit(&run->stray, 1, memory_order_relaxed);
}

/* The interrupted registers, from the signal's ucontext (x86_64 only: the
 * Makefile builds the native library nowhere else). */
static void bp_regs_of(const ucontext_t *uc, struct bp_regs *r)
{
#if defined(__x86_64__)
    const greg_t *g = uc->uc_mcontext.gregs;
    r->ip = (uint64_t)g[REG_RIP];
    r->sp = (uint64_t)g[REG_RSP];
    r->bp = (uint64_t)g[REG_RBP];
    r->bx = (uint64_t)g[REG_RBX];
    r->r12 = (uint64_t)g[REG_R12];
    r->r13 = (uint64_t)g[REG_R13];
    r->r14 = (uint64_t)g[REG_R14];
    r->r15 = (uint64_t)g[REG_R15];
#else
#error "the native sampler reads x86_64 registers: it is built for Linux x86_64 only"
#endif
}

/* JIT frames of a sample taken in JIT code: the frame-pointer walk from
 * bp, with the [RSP] fix-up (at a function's entry, right after `leave`,
 * and in frameless code the return address is at [RSP] and not yet, or no
 * longer, in the chain); without frame pointers, nothing (the callers of
 * the innermost function cannot be verified there). */
int bp_ncap_walk_jit(int walk, struct bp_mem *m, const struct bp_ranges_buf *rb,
                     const struct bp_regs *r, uint64_t *out, int max, uint16_t *flags)
{
    if (walk != BP_WALK_FP) {
        *flags |= BP_NS_LEAF;
        return 0;
    }
    /* [RSP] is the return address right after `leave` and at the entry;
     * between `push rbp` and `mov rbp, rsp` it is the caller's frame
     * pointer (still in rbp) and the return address is one word up. */
    uint64_t top[2] = {0, 0};
    uint64_t sp = r->sp & ~(uint64_t)7u;
    int have = max > 1 && (bp_mem_words(m, sp, top, 2) || bp_mem_words(m, sp, top, 1));
    if (have && top[0] == r->bp && top[0] != 0)
        top[0] = top[1];
    int fix = have && bp_ranges_kind(rb, top[0]) == BP_RANGE_JIT;
    int ended;
    int n = bp_fp_walk(m, r->bp, out + fix, max - fix, NULL, &ended);
    *flags |= BP_NS_WALKED | (ended ? BP_NS_FP_END : n == max - fix ? BP_NS_DEPTH : 0);
    if (fix && (n == 0 || out[1] != top[0])) {
        out[0] = top[0];
        *flags |= BP_NS_FIXUP;
        return n + 1;
    }
    if (fix)
        memmove(out, out + 1, (size_t)n * sizeof *out);
    return n;
}

/* An Erlang chain for a sample taken in C code: walked from fp, kept only
 * if every return address is JIT code (checked frame by frame, so a wrong
 * candidate costs one read) and it ends at a saved fp of 0. */
static int bp_erlang_chain(struct bp_mem *m, const struct bp_ranges_buf *rb, uint64_t fp,
                           uint64_t *out, int max)
{
    int ended;
    int n = bp_fp_walk(m, fp, out, max, rb, &ended);
    return ended ? n : 0; /* not ended: broken, not JIT code, or the depth cap */
}

#define BP_FIND_TRIES 16     /* candidate frame pointers tried per sample */
#define BP_SAVED_SPAN 7      /* words a prologue's pushes occupy below its return address */
#define BP_JIT_RA_SCAN 8192  /* bytes searched for the innermost JIT return address */

static int bp_fp_candidate(const struct bp_ranges_buf *rb, const struct bp_regs *r,
                           size_t len, uint64_t fp)
{
    return fp != 0 && (fp & 7u) == 0 && (fp < r->sp || fp - r->sp >= len) &&
           bp_ranges_kind(rb, fp) == BP_RANGE_NONE;
}

/* In C code, bp holds the JIT's frame pointer only if no C frame reused
 * it; otherwise a C frame that did saved it in the copied window. Tries, at
 * most BP_FIND_TRIES walks in all:
 * 1. bp;
 * 2. the words just below the innermost JIT return address of the window
 *    (searched in its first BP_JIT_RA_SCAN bytes), nearest first: that
 *    return address is the first C frame's, called from JIT code, and its
 *    prologue pushed the callee-saved registers, the Erlang frame pointer
 *    among them, right below it; further down are its locals and then
 *    dead words of earlier calls, whose stale frame pointers can still
 *    lead to a chain that ends properly (OTP 27's lists_reverse_2 pushes
 *    rbp and rbx only: trying the lowest word first took such a chain in
 *    about 5% of a GC-heavy load's samples, beamprof_native_SUITE's
 *    truncation_honest);
 * 3. the window's other words below that return address, nearest to it
 *    first: the outermost C frame that reused bp saved the JIT's value, and
 *    the frames nearer the leaf saved values of their callers;
 * 4. the rest of the window (above that return address), innermost first.
 * Only words that point outside the window are tried. Returns the chain
 * length and sets *fp_found. */
static int bp_find_chain(struct bp_mem *m, const struct bp_ranges_buf *rb,
                         const struct bp_regs *r, const uint8_t *win, size_t len,
                         uint64_t *out, int max, uint64_t *fp_found)
{
    int tries = 0;
    size_t ra = len; /* offset of the innermost JIT return address (steps 1-3) */
    for (int step = 0; step < 4; step++) {
        size_t lo = 0, hi = step == 0 ? 8 : len;
        if (step == 2) {
            hi = ra >= 8 * BP_SAVED_SPAN ? ra - 8 * BP_SAVED_SPAN : 0;
        } else if (step == 3) {
            lo = ra + 8 < len ? ra + 8 : len;
        } else if (step == 1) {
            for (size_t off = 0; off + 8 <= len && off < BP_JIT_RA_SCAN; off += 8) {
                uint64_t w;
                memcpy(&w, win + off, 8);
                if (bp_ranges_kind(rb, w) == BP_RANGE_JIT) {
                    ra = off;
                    break;
                }
            }
            lo = ra >= 8 * BP_SAVED_SPAN ? ra - 8 * BP_SAVED_SPAN : 0;
            hi = ra;
        }
        for (size_t i = 0; lo + 8 * (i + 1) <= hi && tries < BP_FIND_TRIES; i++) {
            size_t off = step == 1 || step == 2 ? hi - 8 * (i + 1) : lo + 8 * i;
            uint64_t fp = r->bp;
            if (step > 0)
                memcpy(&fp, win + off, 8);
            if ((step > 0 && fp == r->bp) || !bp_fp_candidate(rb, r, len, fp))
                continue;
            tries++;
            int n = bp_erlang_chain(m, rb, fp, out, max);
            if (n > 0) {
                *fp_found = fp;
                return n;
            }
        }
    }
    return 0;
}

/* Writes one record for a sample. The C stack window (when not in JIT
 * code) goes first, read straight into the ring; then the frame addresses
 * of the Erlang chain (see bp_find_chain). */
static void bp_capture(struct bp_ncap_run *run, struct bp_ncap_slot *slot,
                       const ucontext_t *uc, uint32_t weight, int gated)
{
    uint64_t w = (uint64_t)weight + slot->carry; /* thinned signals' weight */
    slot->carry = 0;
    weight = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
    struct bp_regs r;
    bp_regs_of(uc, &r);
    const struct bp_ranges_buf *rb = bp_ranges_enter(run->ranges);
    enum bp_range_kind kind = bp_ranges_kind(rb, r.ip);
    size_t win = kind == BP_RANGE_JIT ? 0 : run->cfg.stack_bytes;
    size_t max_len = sizeof(struct bp_nsample) + win + (size_t)run->cfg.depth * 8 +
                     (win == 0 ? 0 : BP_NCAP_STITCH);
    uint64_t pos;
    struct bp_nsample *s = bp_nring_reserve(&slot->ring, max_len, &pos);
    if (s == NULL) {
        atomic_fetch_add_explicit(&slot->dropped, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&slot->lost_weight, weight, memory_order_relaxed);
        bp_ranges_leave(rb);
        return;
    }
    s->flags = kind == BP_RANGE_JIT ? BP_NS_JIT : kind == BP_RANGE_ELF ? BP_NS_ELF : 0;
    s->stack_len = win == 0 ? 0 : (uint32_t)bp_self_read(run, r.sp, (uint8_t *)(s + 1), win);
    uint64_t *addrs = (uint64_t *)(void *)((uint8_t *)(s + 1) + ((s->stack_len + 7u) & ~7u));
    s->stitch_len = 0;
    struct bp_mem m = {bp_self_read, run, slot->scratch, BP_NCAP_SCRATCH, 0, 0, 0};
    int n = 0, max = (int)run->cfg.depth;
    s->fp_start = r.bp;
    if (kind == BP_RANGE_JIT) {
        n = bp_ncap_walk_jit(run->cfg.jit_walk, &m, rb, &r, addrs, max, &s->flags);
    } else if (run->cfg.jit_walk == BP_WALK_FP && slot->kind == 0 /* BP_THREAD_NORMAL */) {
        /* Dirty schedulers' native stacks never lead to the Erlang stack
         * of the process they run: no chain to look for. */
        n = bp_find_chain(&m, rb, &r, (const uint8_t *)(s + 1), s->stack_len, addrs, max,
                          &s->fp_start);
        s->flags |= BP_NS_WALKED | (n > 0 ? BP_NS_FP_END : 0);
        /* The words just below the chain's first frame: the drain joins
         * the frame where the unwind reaches JIT code to the chain. Only
         * with a stack window: without one there is no unwind to join (and
         * no room was reserved for them). */
        if (n > 0 && s->stack_len > 0 && s->fp_start > BP_NCAP_STITCH)
            s->stitch_len = (uint32_t)bp_self_read(run, s->fp_start - BP_NCAP_STITCH,
                                                   (uint8_t *)(addrs + n), BP_NCAP_STITCH);
    }
    if (s->flags & BP_NS_WALKED)
        atomic_fetch_add_explicit(&slot->walks, 1, memory_order_relaxed);
    s->seq = atomic_fetch_add_explicit(&run->seq, 1, memory_order_relaxed);
    s->weight = weight;
    s->nfp = (uint16_t)n;
    s->slot = (uint32_t)(slot - run->slots);
    s->regs = r;
    bp_ranges_leave(rb);
    bp_nring_commit(&slot->ring, pos,
                    (size_t)((uint8_t *)(addrs + n) + s->stitch_len - (uint8_t *)s));
    atomic_fetch_add_explicit(&slot->samples, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->weighted, weight, memory_order_relaxed);
    if (gated)
        atomic_fetch_add_explicit(&slot->gated, 1, memory_order_relaxed);
}

/* While the gate is closed the slot keeps gate_hz of every hz signals
 * (by weight: a signal of weight w stands for w periods): 1 when this one
 * is not captured (its weight carried to the next sample), 0 when it is.
 * The rate never drops to nothing; with gate_hz 0 or >= hz nothing is
 * thinned. */
static int bp_thin(const struct bp_ncap_run *run, struct bp_ncap_slot *slot, uint32_t weight)
{
    uint32_t hz = run->cfg.hz, low = run->cfg.gate_hz;
    if (low == 0 || low >= hz)
        return 0;
    slot->gate_credit += (uint64_t)low * weight;
    if (slot->gate_credit < hz) {
        slot->carry += weight;
        atomic_fetch_add_explicit(&slot->thinned, 1, memory_order_relaxed);
        return 1;
    }
    slot->gate_credit %= hz;
    return 0;
}

/* The SIGPROF handler. Runs on the alternate signal stack (SA_ONSTACK; the
 * VM's is 13.5 KB with no guard page): its frame and its callees' hold a
 * struct bp_regs, a struct bp_mem and an iovec array of 18 entries, well
 * under 1 KB (the unit test measures the high-water mark on a painted
 * alternate stack).
 *
 * What it calls, and why each is async-signal-safe:
 * - C11 atomics on lock-free integers and pointers (static asserts in the
 *   unit test): plain instructions, no locks.
 * - clock_gettime(CLOCK_THREAD_CPUTIME_ID) at entry and exit (the
 *   handler's own cost, summed per slot): async-signal-safe in POSIX, a
 *   system call with no library state.
 * - syscall(SYS_gettid): a raw system call, no library state. Proves the
 *   slot is this thread's, so each ring has one producer.
 * - syscall(SYS_process_vm_readv) on our own pid (bp_self_read): every read
 *   of the interrupted thread's stacks goes through the kernel, which
 *   returns a short count for an unmapped page instead of raising SIGSEGV;
 *   the handler itself never dereferences a sampled address. It does not
 *   take any user-space lock; the kernel may sleep on a page fault exactly
 *   as the interrupted code would.
 * - memcpy/memmove (in bp_mem_words and bp_ncap_walk_jit) on our own buffers:
 *   pure functions listed as async-signal-safe since POSIX.1-2016.
 * - bp_nring_reserve/commit, bp_ranges_enter/leave, the walkers: our own
 *   code, atomics and loads from memory we allocated up front.
 * It saves and restores errno. It does not call malloc, stdio, locks,
 * dl_iterate_phdr, dladdr, libunwind or timer_getoverrun (the overrun
 * comes with the signal: si_overrun). */
static void bp_ncap_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    int saved_errno = errno;
    atomic_fetch_add(&bp_ncap_inflight, 1);
    struct bp_ncap_slot *slot = NULL;
    struct timespec t0, t1;
    int timed = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0) == 0;
    struct bp_ncap_run *run = atomic_load(&bp_ncap_cur);
    if (run == NULL || si == NULL || si->si_code != SI_TIMER || ucv == NULL) {
        bp_count_stray(run);
        goto out;
    }
    uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
    uint32_t gen = (uint32_t)(v >> 32), idx = (uint32_t)v;
    if (gen != run->gen || idx >= atomic_load(&run->nslots)) {
        bp_count_stray(run);
        goto out;
    }
    if (atomic_load_explicit(&run->slots[idx].state, memory_order_acquire) != BP_SLOT_ACTIVE ||
        run->slots[idx].tid != (pid_t)syscall(SYS_gettid)) {
        bp_count_stray(run);
        goto out;
    }
    slot = &run->slots[idx];
    if (!atomic_load_explicit(&run->capturing, memory_order_acquire))
        goto out;
    uint32_t weight = 1u + (si->si_overrun > 0 ? (uint32_t)si->si_overrun : 0u);
    int closed = run->gate_closed != NULL &&
                 atomic_load_explicit(run->gate_closed, memory_order_relaxed);
    if (closed && bp_thin(run, slot, weight))
        goto out;
    bp_capture(run, slot, ucv, weight, closed);
out:
    if (slot != NULL && timed && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1) == 0) {
        int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        if (ns > 0)
            atomic_fetch_add_explicit(&slot->handler_ns, (uint64_t)ns, memory_order_relaxed);
    }
    atomic_fetch_sub(&bp_ncap_inflight, 1);
    errno = saved_errno;
}

void *bp_ncap_handler_addr(void)
{
    return (void *)(uintptr_t)bp_ncap_handler;
}

/* --------------------------------------------------------- disposition */

static void *bp_disposition(const struct sigaction *sa)
{
    if (sa->sa_flags & SA_SIGINFO)
        return (void *)(uintptr_t)sa->sa_sigaction;
    return (void *)(uintptr_t)sa->sa_handler;
}

/* Keeps this library mapped for the rest of the VM's life once its handler
 * has been installed. A SIGPROF the kernel has already started delivering
 * when the disposition changes (stop, unload, upgrade) may enter the
 * handler at any later moment; with the code pinned it always finds it, and
 * what it then touches is safe by the protocol of bp_ncap_inflight and
 * bp_ncap_cur (the handler counts itself in before it loads the run; a stop
 * clears the run before it waits for the count to drop to zero). Cost: the
 * library's pages stay mapped after a purge (a few hundred KiB), and loading
 * the same file again reuses them. Runs outside signal context. */
static void bp_pin_library(void)
{
    static _Atomic int pinned;
    if (atomic_exchange(&pinned, 1))
        return;
    Dl_info di;
    if (dladdr(bp_ncap_handler_addr(), &di) != 0 && di.dli_fname != NULL)
        (void)dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int bp_ncap_install(const void *owner, void *also_ours, void **foreign)
{
    struct sigaction cur, sa;
    if (sigaction(SIGPROF, NULL, &cur) != 0)
        return -1;
    void *h = bp_disposition(&cur);
    if (h != (void *)(uintptr_t)SIG_DFL && h != (void *)(uintptr_t)SIG_IGN &&
        h != bp_ncap_handler_addr() && (also_ours == NULL || h != also_ours)) {
        *foreign = h;
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = bp_ncap_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    bp_pin_library();
    if (sigaction(SIGPROF, &sa, NULL) != 0)
        return -1;
    atomic_store(&bp_ncap_owner, owner);
    return 0;
}

static void bp_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void bp_wait_handlers(void)
{
    while (atomic_load(&bp_ncap_inflight) != 0)
        bp_sleep_us(50);
}

void bp_ncap_release(const void *owner)
{
    struct sigaction cur;
    const void *expected = owner;
    if (owner != NULL && atomic_compare_exchange_strong(&bp_ncap_owner, &expected, NULL) &&
        sigaction(SIGPROF, NULL, &cur) == 0 && bp_disposition(&cur) == bp_ncap_handler_addr()) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        (void)sigaction(SIGPROF, &ign, NULL);
    }
    /* A handler the kernel enters later still finds its code (pinned, see
     * bp_pin_library) and, the run being cleared, touches nothing else. */
    bp_wait_handlers();
}

/* ---------------------------------------------------------------- runs */

clockid_t bp_ncap_thread_clock(pid_t tid)
{
    unsigned int id = ((~(unsigned int)tid) << 3) | 6u; /* CPUCLOCK_SCHED, per thread */
    return (clockid_t)id;
}

static uint32_t bp_new_gen(void)
{
    static _Atomic uint32_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint32_t g = (uint32_t)ts.tv_nsec ^ (uint32_t)((uint64_t)ts.tv_sec * 2654435761u) ^
                 (atomic_fetch_add(&counter, 1) << 20);
    return g == 0 ? 1 : g;
}

struct bp_ncap_run *bp_ncap_run_new(const struct bp_ncap_config *cfg, size_t cap_slots,
                                    const _Atomic int *gate_closed)
{
    struct bp_ncap_run *run = calloc(1, sizeof *run);
    if (run == NULL)
        return NULL;
    run->slots = calloc(cap_slots == 0 ? 1 : cap_slots, sizeof *run->slots);
    run->ranges = malloc(sizeof *run->ranges);
    if (run->slots == NULL || run->ranges == NULL) {
        free(run->slots);
        free(run->ranges);
        free(run);
        return NULL;
    }
    bp_ranges_init(run->ranges);
    run->gen = bp_new_gen();
    run->pid = getpid();
    run->cfg = *cfg;
    run->cap_slots = cap_slots;
    run->gate_closed = gate_closed;
    atomic_init(&run->capturing, 0);
    atomic_init(&run->nslots, 0);
    atomic_init(&run->seq, 0);
    atomic_init(&run->stray, 0);
    return run;
}

void bp_ncap_activate(struct bp_ncap_run *run)
{
    atomic_store(&run->capturing, 1);
    atomic_store(&bp_ncap_cur, run);
}

static uint64_t bp_cpu_ns(pid_t tid, int *ok)
{
    struct timespec ts;
    *ok = clock_gettime(bp_ncap_thread_clock(tid), &ts) == 0;
    return *ok ? (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec : 0;
}

void bp_ncap_refresh_cpu(struct bp_ncap_slot *slot)
{
    int ok;
    uint64_t ns = bp_cpu_ns(slot->tid, &ok);
    if (ok && atomic_load(&slot->state) == BP_SLOT_ACTIVE)
        slot->cpu_last = ns;
}

static int bp_arm_timer(struct bp_ncap_run *run, struct bp_ncap_slot *slot, size_t idx)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_value.sival_ptr = (void *)(uintptr_t)(((uint64_t)run->gen << 32) | idx);
    sev._sigev_un._tid = slot->tid;
    if (timer_create(bp_ncap_thread_clock(slot->tid), &sev, &slot->timer) != 0)
        return -1;
    slot->have_timer = 1;
    long period = 1000000000L / (long)run->cfg.hz;
    struct itimerspec its = {{period / 1000000000L, period % 1000000000L},
                             {period / 1000000000L, period % 1000000000L}};
    return timer_settime(slot->timer, 0, &its, NULL);
}

int bp_ncap_add_thread(struct bp_ncap_run *run, pid_t tid, int kind, uint32_t index)
{
    size_t idx = atomic_load(&run->nslots);
    if (idx >= run->cap_slots)
        return -1;
    struct bp_ncap_slot *slot = &run->slots[idx];
    memset(slot, 0, sizeof *slot);
    slot->ring_mem = aligned_alloc(64, run->cfg.ring_bytes);
    slot->scratch = malloc(BP_NCAP_SCRATCH);
    if (slot->ring_mem == NULL || slot->scratch == NULL ||
        bp_nring_init(&slot->ring, slot->ring_mem, run->cfg.ring_bytes) != 0) {
        free(slot->ring_mem);
        free(slot->scratch);
        memset(slot, 0, sizeof *slot);
        return -1;
    }
    slot->tid = tid;
    slot->kind = kind;
    slot->index = index;
    int ok;
    slot->cpu_start = slot->cpu_last = bp_cpu_ns(tid, &ok);
    atomic_store_explicit(&slot->state, BP_SLOT_ACTIVE, memory_order_release);
    atomic_store(&run->nslots, idx + 1);
    if (bp_arm_timer(run, slot, idx) != 0) {
        int e = errno;
        bp_ncap_remove_thread(run, idx);
        errno = e;
        return -2;
    }
    return (int)idx;
}

void bp_ncap_remove_thread(struct bp_ncap_run *run, size_t idx)
{
    struct bp_ncap_slot *slot = &run->slots[idx];
    bp_ncap_refresh_cpu(slot);
    atomic_store(&slot->state, BP_SLOT_DEAD);
    if (slot->have_timer)
        timer_delete(slot->timer);
    slot->have_timer = 0;
}

void bp_ncap_deactivate(struct bp_ncap_run *run)
{
    atomic_store(&run->capturing, 0);
    size_t n = atomic_load(&run->nslots);
    for (size_t i = 0; i < n; i++) {
        bp_ncap_refresh_cpu(&run->slots[i]);
        if (run->slots[i].have_timer)
            timer_delete(run->slots[i].timer);
        run->slots[i].have_timer = 0;
    }
    struct bp_ncap_run *expected = run;
    atomic_compare_exchange_strong(&bp_ncap_cur, &expected, NULL);
    bp_wait_handlers();
}

void bp_ncap_run_free(struct bp_ncap_run *run)
{
    if (run == NULL)
        return;
    size_t n = atomic_load(&run->nslots);
    for (size_t i = 0; i < n; i++) {
        free(run->slots[i].ring_mem);
        free(run->slots[i].scratch);
    }
    free(run->slots);
    free(run->ranges);
    free(run);
}
