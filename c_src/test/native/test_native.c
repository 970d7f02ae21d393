/* test_native.c - the native sampler's capture half: the SPSC record ring,
 * the executable-range table, the frame-pointer walker and scan on
 * hand-built fake stacks, and a real run of the SIGPROF capture on a busy
 * thread of this test process (weights, stack windows, alternate stack
 * use, the foreign-handler refusal). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bp_native_capture.h"
#include "bp_native_capture_walk.h"
#include "bp_native_ring.h"
#include "bp_native_walk.h"
#include "bp_test.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic int must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "atomic 64-bit must be lock-free");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "atomic pointer must be lock-free");

/* ---------------------------------------------------------------- ring */

static uint64_t push(struct bp_nring *r, uint32_t tag, size_t len)
{
    uint64_t pos;
    uint8_t *p = bp_nring_reserve(r, len, &pos);
    if (p == NULL)
        return 0;
    memset(p + 8, (int)tag, len - 8);
    bp_nring_commit(r, pos, len);
    return 1;
}

BP_TEST(nring_order_and_full)
{
    static uint8_t mem[256] __attribute__((aligned(8)));
    struct bp_nring r;
    CHECK(bp_nring_init(&r, mem, 100) == -1);
    CHECK(bp_nring_init(&r, mem, 256) == 0);
    CHECK(bp_nring_peek(&r) == NULL);
    CHECK(push(&r, 1, 40) && push(&r, 2, 40) && push(&r, 3, 40));
    CHECK(bp_nring_used(&r) == 120);
    CHECK(push(&r, 4, 129) == 0); /* more than half the ring: refused */
    CHECK(push(&r, 4, 128) == 1); /* 248 of 256 */
    CHECK(push(&r, 5, 16) == 0);  /* full: refused, nothing overwritten */
    for (uint8_t tag = 1; tag <= 4; tag++) {
        const struct bp_nring_hdr *h = bp_nring_peek(&r);
        CHECK(h != NULL && h->type == BP_NRING_DATA && h->len == (tag == 4 ? 128 : 40));
        CHECK(h != NULL && ((const uint8_t *)h)[8] == tag);
        if (h != NULL)
            bp_nring_pop(&r, h);
    }
    CHECK(bp_nring_peek(&r) == NULL);
}

BP_TEST(nring_wraps_with_pad)
{
    static uint8_t mem[256] __attribute__((aligned(8)));
    struct bp_nring r;
    bp_nring_init(&r, mem, 256);
    uint32_t next = 1, expect = 1;
    for (int round = 0; round < 200; round++) {
        size_t len = 16 + (size_t)(round * 37 % 100);
        while (push(&r, next, len))
            next++;
        /* drain half of what is there */
        for (int k = 0; k < 2; k++) {
            const struct bp_nring_hdr *h = bp_nring_peek(&r);
            if (h == NULL)
                break;
            CHECK(((const uint8_t *)h)[8] == (uint8_t)expect);
            expect++;
            bp_nring_pop(&r, h);
        }
    }
    const struct bp_nring_hdr *h;
    while ((h = bp_nring_peek(&r)) != NULL) {
        CHECK(((const uint8_t *)h)[8] == (uint8_t)expect);
        expect++;
        bp_nring_pop(&r, h);
    }
    CHECK(expect == next);
    CHECK(bp_nring_used(&r) == 0);
}

/* -------------------------------------------------------------- ranges */

static const char maps_text[] =
    "55a71b0a5000-55a71b10b000 r--p 00000000 fe:00 261569 /usr/lib/erlang/beam.smp\n"
    "55a71b10b000-55a71b396000 r-xp 00066000 fe:00 261569 /usr/lib/erlang/beam.smp\n"
    "7f22dc3ff000-7f22dcbff000 r-xs 00000000 00:01 1520   /memfd:vmem (deleted)\n"
    "7f22dcbff000-7f22dcc00000 r-xp 00000000 00:00 0 \n"
    "7f231e744000-7f231e89a000 r-xp 00026000 fe:00 355428 /usr/lib/libc.so.6\n"
    "7f231e89a000-7f231e8a0000 rw-p 00000000 00:00 0\n"
    "7f231ec8b000-7f231ec8d000 r-xp 00000000 00:00 0                          [vdso]\n"
    "garbage line\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]";

BP_TEST(ranges_parse_and_find)
{
    struct bp_range r[8];
    size_t n = bp_ranges_parse_maps(maps_text, sizeof maps_text - 1, r, 8);
    CHECK(n == 4);
    CHECK(r[0].lo == 0x55a71b10b000u && r[0].kind == BP_RANGE_ELF);
    CHECK(r[1].lo == 0x7f22dc3ff000u && r[1].hi == 0x7f22dcc00000u); /* merged */
    CHECK(r[1].kind == BP_RANGE_JIT);
    CHECK(r[2].kind == BP_RANGE_ELF && r[3].kind == BP_RANGE_ELF);
    CHECK(bp_range_kind_of(r, n, 0x55a71b10b000u) == BP_RANGE_ELF);
    CHECK(bp_range_kind_of(r, n, 0x55a71b396000u) == BP_RANGE_NONE);
    CHECK(bp_range_kind_of(r, n, 0x7f22dcbfffffu) == BP_RANGE_JIT);
    CHECK(bp_range_kind_of(r, n, 0x7f231e89a000u) == BP_RANGE_NONE);
    CHECK(bp_range_kind_of(r, n, 0) == BP_RANGE_NONE);
    CHECK(bp_ranges_parse_maps(maps_text, sizeof maps_text - 1, r, 2) == 2);
}

BP_TEST(ranges_publish_flip)
{
    static struct bp_ranges rs;
    bp_ranges_init(&rs);
    const struct bp_ranges_buf *b = bp_ranges_enter(&rs);
    CHECK(b != NULL && b->n == 0);
    bp_ranges_leave(b);
    struct bp_range one = {0x1000, 0x2000, BP_RANGE_JIT, 0};
    bp_ranges_publish(&rs, &one, 1);
    b = bp_ranges_enter(&rs);
    CHECK(bp_ranges_kind(b, 0x1800) == BP_RANGE_JIT);
    bp_ranges_leave(b);
    CHECK(bp_ranges_kind(NULL, 0x1800) == BP_RANGE_NONE);
}

/* ------------------------------------------------------ walker, fake stack */

/* A fake address space: `words` live at `base`; nothing else is readable. */
struct fake {
    uint64_t base;
    uint64_t words[256];
};

static size_t fake_read(void *ctx, uint64_t addr, uint8_t *dst, size_t len)
{
    struct fake *f = ctx;
    uint64_t end = f->base + sizeof f->words;
    if (addr < f->base || addr >= end)
        return 0;
    size_t n = (size_t)(end - addr) < len ? (size_t)(end - addr) : len;
    memcpy(dst, (uint8_t *)f->words + (addr - f->base), n);
    return n;
}

#define FAKE_BASE 0x7000000000u
#define A(i) (FAKE_BASE + 8u * (i)) /* address of word i */

static void fake_frame(struct fake *f, int at, uint64_t next_fp, uint64_t ret)
{
    f->words[at] = next_fp;
    f->words[at + 1] = ret;
}

static struct bp_mem fake_mem(struct fake *f, uint8_t *buf, size_t cap)
{
    struct bp_mem m = {fake_read, f, buf, cap, 0, 0, 0};
    return m;
}

BP_TEST(fp_walk_chain_ends_at_zero)
{
    static struct fake f;
    uint8_t buf[64];
    memset(&f, 0, sizeof f);
    f.base = FAKE_BASE;
    fake_frame(&f, 10, A(20), 0xAAA1);
    fake_frame(&f, 20, A(40), 0xAAA2);
    fake_frame(&f, 40, A(200), 0xAAA3);
    fake_frame(&f, 200, 0, 0xAAA4); /* the end: saved fp 0, normal_exit */
    struct bp_mem m = fake_mem(&f, buf, sizeof buf); /* tiny cache: many reads */
    uint64_t out[16];
    int ended;
    int n = bp_fp_walk(&m, A(10), out, 16, NULL, &ended);
    CHECK(n == 4 && ended == 1);
    CHECK(out[0] == 0xAAA1 && out[3] == 0xAAA4);
    CHECK(m.reads >= 2);
    /* depth cap */
    n = bp_fp_walk(&m, A(10), out, 2, NULL, &ended);
    CHECK(n == 2 && ended == 0);
    /* one big cache: one read for the whole chain */
    static uint8_t big[4096];
    struct bp_mem m2 = fake_mem(&f, big, sizeof big);
    n = bp_fp_walk(&m2, A(10), out, 16, NULL, &ended);
    CHECK(n == 4 && ended == 1 && m2.reads == 1);
}

BP_TEST(fp_walk_rejects_bad_chains)
{
    static struct fake f;
    uint8_t buf[256];
    memset(&f, 0, sizeof f);
    f.base = FAKE_BASE;
    uint64_t out[16];
    int ended;
    /* goes downwards */
    fake_frame(&f, 30, A(20), 0xB1);
    fake_frame(&f, 20, 0, 0xB2);
    fake_frame(&f, 50, A(50), 0xB3); /* points to itself */
    fake_frame(&f, 60, FAKE_BASE + 8 * 4096, 0xB4); /* off the readable memory */
    f.words[70] = A(70) + BP_FP_MAX_GAP + 8;        /* a gap over the limit */
    struct bp_mem m = fake_mem(&f, buf, sizeof buf);
    CHECK(bp_fp_walk(&m, A(30), out, 16, NULL, &ended) == 1 && !ended);
    CHECK(bp_fp_walk(&m, A(50), out, 16, NULL, &ended) == 1 && !ended);
    /* misaligned */
    CHECK(bp_fp_walk(&m, A(50) + 4, out, 16, NULL, &ended) == 0 && !ended);
    CHECK(bp_fp_walk(&m, A(60), out, 16, NULL, &ended) == 1 && !ended);
    /* a frame across the end of the readable memory */
    CHECK(bp_fp_walk(&m, A(255), out, 16, NULL, &ended) == 0);
    /* unreadable / null */
    CHECK(bp_fp_walk(&m, 0x10, out, 16, NULL, &ended) == 0);
    CHECK(bp_fp_walk(&m, 0, out, 16, NULL, &ended) == 0);
    CHECK(bp_fp_walk(&m, A(70), out, 16, NULL, &ended) == 1 && !ended);
}

/* The [RSP] fix-up of the JIT walk. The caller's frame is at word 40 (its
 * chain ends at word 60); JIT code is [0x5000, 0x6000); rsp is word 10. */
BP_TEST(jit_walk_rsp_fixup)
{
    static struct fake f;
    static struct bp_ranges rs;
    uint8_t buf[256];
    bp_ranges_init(&rs);
    struct bp_range jit = {0x5000, 0x6000, BP_RANGE_JIT, 0};
    bp_ranges_publish(&rs, &jit, 1);
    const struct bp_ranges_buf *b = bp_ranges_enter(&rs);
    uint64_t out[8];
    uint16_t flags;
    struct bp_regs r;
    memset(&r, 0, sizeof r);
    r.ip = 0x5800;
    r.sp = A(10);
    r.bp = A(40);
    memset(&f, 0, sizeof f);
    f.base = FAKE_BASE;
    fake_frame(&f, 40, A(60), 0x5400); /* the caller's frame: returns into its caller */
    fake_frame(&f, 60, 0, 0x5f00);     /* normal_exit */

    /* 1. At the entry (or right after `leave`): [RSP] is the return address
     *    into the caller, which the chain from rbp does not hold. */
    f.words[10] = 0x5300;
    struct bp_mem m = fake_mem(&f, buf, sizeof buf);
    flags = 0;
    int n = bp_ncap_walk_jit(1, &m, b, &r, out, 8, &flags);
    CHECK(n == 3 && out[0] == 0x5300 && out[1] == 0x5400 && out[2] == 0x5f00);
    CHECK((flags & BP_NS_FIXUP) && (flags & BP_NS_FP_END) && !(flags & BP_NS_DEPTH));

    /* 2. Between `push rbp` and `mov rbp, rsp`: [RSP] is the caller's frame
     *    pointer (equal to rbp), the return address is [RSP+8]. */
    f.words[10] = A(40);
    f.words[11] = 0x5300;
    m = fake_mem(&f, buf, sizeof buf);
    flags = 0;
    n = bp_ncap_walk_jit(1, &m, b, &r, out, 8, &flags);
    CHECK(n == 3 && out[0] == 0x5300 && out[1] == 0x5400 && out[2] == 0x5f00);
    CHECK((flags & BP_NS_FIXUP) && (flags & BP_NS_FP_END));

    /* 3. In a function's body with its own frame: rbp is that frame, [RSP]
     *    a local that is not JIT code: the chain alone, no fix-up. */
    f.words[10] = 0x1234;
    fake_frame(&f, 20, A(40), 0x5300);
    r.bp = A(20);
    m = fake_mem(&f, buf, sizeof buf);
    flags = 0;
    n = bp_ncap_walk_jit(1, &m, b, &r, out, 8, &flags);
    CHECK(n == 3 && out[0] == 0x5300 && out[1] == 0x5400 && out[2] == 0x5f00);
    CHECK(!(flags & BP_NS_FIXUP) && (flags & BP_NS_FP_END));

    /* 4. [RSP] is the chain's own first return address (a stale copy): not
     *    counted twice. */
    f.words[10] = 0x5300;
    m = fake_mem(&f, buf, sizeof buf);
    flags = 0;
    n = bp_ncap_walk_jit(1, &m, b, &r, out, 8, &flags);
    CHECK(n == 3 && out[0] == 0x5300 && out[1] == 0x5400);
    CHECK(!(flags & BP_NS_FIXUP));

    /* 5. The depth cap with the fix-up: flagged, never more than max. */
    f.words[10] = 0x5100;
    m = fake_mem(&f, buf, sizeof buf);
    flags = 0;
    n = bp_ncap_walk_jit(1, &m, b, &r, out, 2, &flags);
    CHECK(n == 2 && out[0] == 0x5100 && out[1] == 0x5300);
    CHECK((flags & BP_NS_FIXUP) && (flags & BP_NS_DEPTH) && !(flags & BP_NS_FP_END));

    /* 6. BP_WALK_LEAF (vm_internals off): no frame, no read of the stack. */
    m = fake_mem(&f, buf, sizeof buf);
    flags = 0;
    n = bp_ncap_walk_jit(BP_WALK_LEAF, &m, b, &r, out, 8, &flags);
    CHECK(n == 0 && m.reads == 0 && flags == BP_NS_LEAF);

    /* 7. No frame pointers: any walk but BP_WALK_FP (0 was the removed
     *    return-address scan) reads nothing, as BP_WALK_LEAF. */
    m = fake_mem(&f, buf, sizeof buf);
    flags = 0;
    n = bp_ncap_walk_jit(0, &m, b, &r, out, 8, &flags);
    CHECK(n == 0 && m.reads == 0 && flags == BP_NS_LEAF);
    bp_ranges_leave(b);
}

/* ------------------------------------------------- a real capture run */

#define ALT_SIZE 16384
static uint8_t alt_mem[ALT_SIZE];
static _Atomic int spin_stop;
static _Atomic pid_t spin_tid;

static void *spinner(void *arg)
{
    (void)arg;
    stack_t ss = {.ss_sp = alt_mem, .ss_size = ALT_SIZE, .ss_flags = 0};
    memset(alt_mem, 0xA5, ALT_SIZE);
    sigaltstack(&ss, NULL);
    atomic_store(&spin_tid, (pid_t)syscall(SYS_gettid));
    volatile uint64_t x = 1;
    while (!atomic_load(&spin_stop))
        x = x * 6364136223846793005u + 1442695040888963407u;
    /* Off again before exit: ASan unmaps a thread's alternate stack at exit
     * unless it is disabled (ours is static). */
    stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    return NULL;
}

static uint64_t thread_cpu(pid_t tid)
{
    struct timespec ts;
    clock_gettime(bp_ncap_thread_clock(tid), &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

BP_TEST(capture_busy_thread)
{
    CHECK(bp_ncap_install(&spin_tid, NULL, &(void *){NULL}) == 0);
    pthread_t th;
    atomic_store(&spin_stop, 0);
    atomic_store(&spin_tid, 0);
    pthread_create(&th, NULL, spinner, NULL);
    while (atomic_load(&spin_tid) == 0)
        ;
    pid_t tid = atomic_load(&spin_tid);
    struct bp_ncap_config cfg = {997, 64, 4096, 1u << 20, 1, 99};
    static _Atomic int gate;
    atomic_store(&gate, 0);
    struct bp_ncap_run *run = bp_ncap_run_new(&cfg, 4, &gate);
    CHECK(run != NULL);
    if (run == NULL)
        return;
    bp_ncap_activate(run);
    uint64_t cpu0 = thread_cpu(tid);
    CHECK(bp_ncap_add_thread(run, tid, 0, 1) == 0);
    CHECK(bp_ncap_add_thread(run, 0x7ffffff0, 0, 2) == -2); /* no such thread */
    while (thread_cpu(tid) - cpu0 < 300000000u)
        usleep(1000);
    uint64_t before = atomic_load(&run->slots[0].samples);
    atomic_store(&gate, 1); /* closed: the rate is lowered to gate_hz, never to nothing */
    uint64_t cpu1 = thread_cpu(tid);
    while (thread_cpu(tid) - cpu1 < 300000000u)
        usleep(1000);
    atomic_store(&gate, 0);
    uint64_t cpu2 = thread_cpu(tid), under = atomic_load(&run->slots[0].gated);
    uint64_t during = atomic_load(&run->slots[0].samples) - before;
    bp_ncap_deactivate(run);
    /* A signal after the run (kill-like, SI_TKILL) is counted as stray. */
    uint64_t stray0 = bp_ncap_stray_total();
    syscall(SYS_tgkill, getpid(), tid, SIGPROF);
    for (int i = 0; i < 2000 && bp_ncap_stray_total() == stray0; i++)
        usleep(1000);
    CHECK(bp_ncap_stray_total() == stray0 + 1);
    uint64_t cpu = run->slots[0].cpu_last - run->slots[0].cpu_start;
    atomic_store(&spin_stop, 1);
    pthread_join(th, NULL);

    struct bp_ncap_slot *s = &run->slots[0];
    uint64_t samples = atomic_load(&s->samples), weighted = atomic_load(&s->weighted);
    uint64_t lost = atomic_load(&s->lost_weight), thinned = atomic_load(&s->thinned);
    double expected = (double)cpu / 1e9 * 997.0;
    double gated_hz = (double)during * 1e9 / (double)(cpu2 - cpu1);
    fprintf(stderr, "  capture: %llu samples, weighted %llu + lost %llu, thinned %llu, "
            "expected %.0f over %.0f ms CPU; %llu samples under the gate (%.1f/s of CPU)\n",
            (unsigned long long)samples, (unsigned long long)weighted,
            (unsigned long long)lost, (unsigned long long)thinned, expected, (double)cpu / 1e6,
            (unsigned long long)under, gated_hz);
    CHECK(samples > 10);
    CHECK(thinned > 0);
    CHECK(under > 5 && under <= during + 1); /* a signal may straddle the flip */
    CHECK(bp_ncap_probe_reads() == 0); /* no seccomp filter here */
    CHECK(gated_hz > 99 * 0.3 && gated_hz < 99 * 1.5); /* lowered, not stopped */
    /* thinned signals' weight is carried into the next sample: the total
     * still matches the CPU time (what is carried at the end is small) */
    CHECK((double)(weighted + lost) > expected * 0.5 && (double)(weighted + lost) < expected * 1.5);
    CHECK(atomic_load(&s->dropped) == 0);
    /* BP_WALK_FP on a normal thread: every C sample looked for an Erlang chain */
    CHECK(atomic_load(&s->walks) == samples);
    /* every record: registers, a window copied from the C stack (no JIT
     * ranges known here), in order */
    uint64_t n = 0, last_seq = 0;
    const struct bp_nring_hdr *h;
    while ((h = bp_nring_peek(&s->ring)) != NULL) {
        const struct bp_nsample *smp = (const void *)h;
        CHECK(smp->weight >= 1 && smp->slot == 0);
        CHECK(smp->stack_len > 0 && smp->stack_len <= 4096);
        CHECK(smp->regs.ip != 0 && smp->regs.sp != 0);
        CHECK(n == 0 || smp->seq > last_seq);
        /* the window is the thread's stack at sp */
        last_seq = smp->seq;
        n++;
        bp_nring_pop(&s->ring, h);
    }
    CHECK(n == samples);
    size_t untouched = 0;
    while (untouched < ALT_SIZE && alt_mem[untouched] == 0xA5)
        untouched++;
    /* The kernel's signal frame alone (xsave state with AVX-512) is about
     * 3.3 KB of it on this machine; the handler adds about 0.8 KB (its
     * frame, the chain search's, the iovecs of process_vm_readv). The VM's
     * alternate stack is 13.5 KB. */
    fprintf(stderr, "  signal frame + handler used %zu bytes of the alternate stack\n",
            (size_t)ALT_SIZE - untouched);
#ifdef __SANITIZE_ADDRESS__
    CHECK(ALT_SIZE - untouched < 8192); /* redzones */
#else
    CHECK(ALT_SIZE - untouched < 4608);
#endif
    bp_ncap_run_free(run);
    CHECK(bp_ncap_install(&spin_tid, NULL, &(void *){NULL}) == 0); /* ours: fine again */
}

static void foreign_handler(int sig)
{
    (void)sig;
}

BP_TEST(foreign_handler_refused)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = foreign_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, &old);
    void *foreign = NULL;
    CHECK(bp_ncap_install(&foreign, NULL, &foreign) == 1);
    CHECK(foreign == (void *)(uintptr_t)foreign_handler);
    CHECK(bp_ncap_install(&old, (void *)(uintptr_t)foreign_handler, &foreign) == 0);
    struct sigaction now;
    bp_ncap_release(&sa); /* not the owner: left alone */
    sigaction(SIGPROF, NULL, &now);
    CHECK((now.sa_flags & SA_SIGINFO) && now.sa_handler != SIG_IGN);
    bp_ncap_release(&old); /* the owner: set to SIG_IGN */
    sigaction(SIGPROF, NULL, &now);
    CHECK(now.sa_handler == SIG_IGN);
    sigaction(SIGPROF, &old, NULL);
}

const struct bp_test_case bp_native_tests[] = {
    {"nring_order_and_full", nring_order_and_full},
    {"nring_wraps_with_pad", nring_wraps_with_pad},
    {"ranges_parse_and_find", ranges_parse_and_find},
    {"ranges_publish_flip", ranges_publish_flip},
    {"fp_walk_chain_ends_at_zero", fp_walk_chain_ends_at_zero},
    {"fp_walk_rejects_bad_chains", fp_walk_rejects_bad_chains},
    {"jit_walk_rsp_fixup", jit_walk_rsp_fixup},
    {"capture_busy_thread", capture_busy_thread},
    {"foreign_handler_refused", foreign_handler_refused},
    {NULL, NULL}};
