/* test_unwind.c - bp_unwind_copy against copies of real stacks: a 12-frame
 * chain built without frame pointers (test/nofp/unwind_chain.c), unwound
 * after the real stack was overwritten; short windows; garbage; an ip in an
 * anonymous executable page (JIT code), alone and between C frames. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bp_unwind.h"
#include "bp_test.h"
#include "nofp/unwind_chain.h"
#include "bp_regs_capture.h"

#define WINDOW (32 * 1024)

/* Captures inside the chain, returns out of it and overwrites the stack
 * where it was. */
static void capture(struct uw_snap *s, uint8_t *buf)
{
    memset(s, 0, sizeof *s);
    s->buf = buf;
    s->cap = WINDOW;
    s->stack_end = bp_thread_stack_end();
    chain_run(s, 42);
    chain_scribble(WINDOW);
}

/* Symbol of a return address (ip - 1 for callers), or "". */
static const char *name_of(uint64_t ip, int caller)
{
    Dl_info di;
    if (dladdr((void *)(uintptr_t)(caller ? ip - 1 : ip), &di) == 0 || di.dli_sname == NULL)
        return "";
    return di.dli_sname;
}

BP_TEST(unwinds_chain_without_frame_pointers)
{
    uint8_t *buf = malloc(WINDOW);
    struct uw_snap s;
    uint64_t out[64];
    struct bp_regs at;
    int why = 0;
    capture(&s, buf);
    CHECK(s.len > 256);
    int n = bp_unwind_copy_ex(&s.regs, buf, s.regs.sp, s.len, out, 64, &at, &why);
    CHECK(n > CHAIN_FRAMES);
    CHECK(out[0] == s.regs.ip);
    for (int i = 0; i < CHAIN_FRAMES && i < n; i++) {
        const char *got = name_of(out[i], i > 0);
        if (strcmp(got, chain_names[i]) != 0) {
            fprintf(stderr, "  frame %d: %s, expected %s\n", i, got, chain_names[i]);
            CHECK(0);
        }
    }
    if (n > CHAIN_FRAMES)
        CHECK(strcmp(name_of(out[CHAIN_FRAMES], 1), "chain_run") == 0);
    /* the walk goes on through the test runner into libc's start code and
     * ends at the thread's outermost frame */
    int in_libc = 0;
    for (int i = CHAIN_FRAMES; i < n; i++) {
        Dl_info di;
        if (dladdr((void *)(uintptr_t)(out[i] - 1), &di) != 0 && di.dli_fname != NULL &&
            strstr(di.dli_fname, "libc.so") != NULL)
            in_libc = 1;
    }
    CHECK(in_libc);
    CHECK(why == BP_UNWIND_END);

    /* the contract's entry point gives the same frames */
    uint64_t out2[64];
    CHECK(bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, out2, 64, NULL) == n);
    CHECK(memcmp(out, out2, (size_t)n * sizeof out[0]) == 0);

    /* max bounds the output */
    CHECK(bp_unwind_copy_ex(&s.regs, buf, s.regs.sp, s.len, out2, 5, &at, &why) == 5);
    CHECK(why == BP_UNWIND_MAX);
    CHECK(memcmp(out, out2, 5 * sizeof out[0]) == 0);
    CHECK(bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, out2, 1, &at) == 1);
    CHECK(out2[0] == s.regs.ip);
    free(buf);
}

BP_TEST(short_window_truncates)
{
    uint8_t *buf = malloc(WINDOW);
    struct uw_snap s;
    uint64_t out[64], full[64];
    struct bp_regs at;
    int why = 0;
    capture(&s, buf);
    int nfull = bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, full, 64, NULL);
    size_t lens[] = {0, 8, 64, 200, 512, 1024};
    int last = 0;
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int n = bp_unwind_copy_ex(&s.regs, buf, s.regs.sp, lens[k], out, 64, &at, &why);
        CHECK(n >= 1 && n < nfull);
        CHECK(why == BP_UNWIND_ERROR);
        CHECK(memcmp(out, full, (size_t)n * sizeof out[0]) == 0); /* a prefix */
        CHECK(n >= last);
        last = n;
    }
    CHECK(last > 1);
    /* no stack at all */
    CHECK(bp_unwind_copy(&s.regs, NULL, s.regs.sp, 4096, out, 64, &at) == 1);
    CHECK(out[0] == s.regs.ip);
    /* bad arguments */
    CHECK(bp_unwind_copy(NULL, buf, s.regs.sp, s.len, out, 64, &at) == 0);
    CHECK(bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, NULL, 64, &at) == 0);
    CHECK(bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, out, 0, &at) == 0);
    free(buf);
}

static uint64_t rnd_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

BP_TEST(garbage_copy_does_not_crash)
{
    enum { WORDS = 512 };
    uint64_t *buf = malloc(WORDS * 8);
    uint64_t out[32];
    struct bp_regs r, at;
    uint64_t base = 0x7ff000000000ULL;
    uint64_t code[] = {(uint64_t)(uintptr_t)chain_f06, (uint64_t)(uintptr_t)chain_f03,
                       (uint64_t)(uintptr_t)chain_run, (uint64_t)(uintptr_t)malloc};
    int total = 0;
    for (int trial = 0; trial < 2000; trial++) {
        int mix = trial % 3; /* 0: pure noise; 1: noise, stack pointers and code addresses */
        for (int i = 0; i < WORDS; i++) {
            uint64_t w = rnd();
            if (mix && (w & 3) == 0)
                w = base + (w >> 8) % (WORDS * 8);
            else if (mix && (w & 3) == 1)
                w = code[(w >> 8) % 4] + (w >> 16) % 64;
            buf[i] = w;
        }
        memset(&r, 0, sizeof r);
        r.ip = mix == 2 ? rnd() : code[trial % 4] + rnd() % 32;
        r.sp = base;
        r.bp = base + (rnd() % WORDS) * 8;
        r.bx = rnd();
        int n = bp_unwind_copy(&r, (const uint8_t *)buf, base, WORDS * 8, out, 32, &at);
        CHECK(n >= 1 && n <= 32);
        CHECK(out[0] == r.ip);
        if (mix == 0)
            CHECK(n <= 2);
        total += n;
    }
    printf("  garbage: %.2f frames per walk on average\n", total / 2000.0);
    free(buf);
}

/* JIT stand-in: push rbp; mov rbp,rsp; mov rax,rdi; mov rdi,rsi; mov rsi,rdx;
 * call rax; pop rbp; ret. The return address into it is page + 15. */
static const uint8_t tramp_code[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0xf8, 0x48, 0x89,
                                     0xf7, 0x48, 0x89, 0xd6, 0xff, 0xd0, 0x5d, 0xc3};
#define TRAMP_RET 15

static uint8_t *exec_page(const uint8_t *code, size_t len)
{
    uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(p, code, len);
    if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) {
        munmap(p, 4096);
        return NULL;
    }
    return p;
}

BP_TEST(stops_at_anonymous_code)
{
    static const uint8_t ret[] = {0xc3};
    uint8_t *page = exec_page(ret, 1);
    CHECK(page != NULL);
    if (page == NULL)
        return;
    uint64_t stack[64] = {0};
    struct bp_regs r = {.ip = (uint64_t)(uintptr_t)page, .sp = (uint64_t)(uintptr_t)stack,
                        .bp = 0x1234, .bx = 7, .r12 = 12, .r13 = 13, .r14 = 14, .r15 = 15};
    struct bp_regs at;
    uint64_t out[8];
    int why = 0;
    memset(&at, 0, sizeof at);
    int n = bp_unwind_copy_ex(&r, (const uint8_t *)stack, r.sp, sizeof stack, out, 8, &at, &why);
    CHECK(n == 1);
    CHECK(out[0] == r.ip);
    CHECK(why == BP_UNWIND_NO_INFO);
    CHECK(at.ip == r.ip && at.sp == r.sp && at.bp == r.bp && at.bx == r.bx);
    CHECK(at.r12 == 12 && at.r13 == 13 && at.r14 == 14 && at.r15 == 15);
    munmap(page, 4096);
}

BP_TEST(stops_at_jit_between_c_frames)
{
    uint8_t *page = exec_page(tramp_code, sizeof tramp_code);
    CHECK(page != NULL);
    if (page == NULL)
        return;
    uint8_t *buf = malloc(WINDOW);
    struct uw_snap s;
    memset(&s, 0, sizeof s);
    s.buf = buf;
    s.cap = WINDOW;
    s.stack_end = bp_thread_stack_end();
    chain_enter_jit((chain_tramp_fn)(void *)page, &s, 5);
    chain_scribble(WINDOW);

    uint64_t out[64];
    struct bp_regs at;
    int why = 0;
    int n = bp_unwind_copy_ex(&s.regs, buf, s.regs.sp, s.len, out, 64, &at, &why);
    /* chain_capture, chain_f11 .. chain_f06, then the JIT return address */
    CHECK(n == 8);
    CHECK(why == BP_UNWIND_NO_INFO);
    for (int i = 0; i < 7 && i < n; i++)
        CHECK(strcmp(name_of(out[i], i > 0), chain_names[i]) == 0);
    uint64_t ret = (uint64_t)(uintptr_t)page + TRAMP_RET;
    CHECK(n >= 1 && out[n - 1] == ret);
    CHECK(at.ip == ret);
    /* after the call returns, rsp == rbp == the trampoline's frame */
    CHECK(at.sp == at.bp);
    CHECK(at.sp > s.regs.sp && at.sp + 16 <= s.regs.sp + s.len);
    /* and the frame-pointer walk continues from there: [bp + 8] returns
     * into chain_enter_jit */
    if (at.bp > s.regs.sp && at.bp + 16 <= s.regs.sp + s.len) {
        uint64_t ra;
        memcpy(&ra, buf + (at.bp - s.regs.sp) + 8, 8);
        CHECK(strcmp(name_of(ra, 1), "chain_enter_jit") == 0);
    }
    free(buf);
    munmap(page, 4096);
}

BP_TEST(survives_library_load_and_unload)
{
    uint8_t *buf = malloc(WINDOW);
    struct uw_snap s;
    uint64_t a[64], b[64];
    capture(&s, buf);
    int na = bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, a, 64, NULL);
    void *h = dlopen("libanl.so.1", RTLD_NOW | RTLD_LOCAL);
    int nb = bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, b, 64, NULL);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 8) == 0);
    if (h != NULL)
        dlclose(h);
    nb = bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, b, 64, NULL);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 8) == 0);
    /* release and start again */
    bp_unwind_release();
    nb = bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, b, 64, NULL);
    CHECK(na == nb && memcmp(a, b, (size_t)na * 8) == 0);
    free(buf);
}

/* Two threads unwinding at once while a third loads and unloads a library:
 * the same frames every time, no deadlock (the walk holds our mutex, then
 * the loader's lock; dlopen/dlclose take the loader's locks only). */
struct conc_arg {
    const struct uw_snap *s;
    const uint8_t *buf;
    const uint64_t *ref;
    int nref;
    int bad;
};

static void *conc_unwinder(void *p)
{
    struct conc_arg *a = p;
    uint64_t out[64];
    for (int i = 0; i < 1000; i++) {
        int n = bp_unwind_copy(&a->s->regs, a->buf, a->s->regs.sp, a->s->len, out, 64, NULL);
        if (n != a->nref || memcmp(out, a->ref, (size_t)n * 8) != 0)
            a->bad++;
    }
    return NULL;
}

static void *conc_loader(void *p)
{
    (void)p;
    for (int i = 0; i < 100; i++) {
        void *h = dlopen("libanl.so.1", RTLD_NOW | RTLD_LOCAL);
        if (h != NULL)
            dlclose(h);
    }
    return NULL;
}

BP_TEST(concurrent_walks_and_reloads)
{
    uint8_t *buf = malloc(WINDOW);
    struct uw_snap s;
    uint64_t ref[64];
    capture(&s, buf);
    int nref = bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, ref, 64, NULL);
    struct conc_arg a1 = {&s, buf, ref, nref, 0}, a2 = {&s, buf, ref, nref, 0};
    pthread_t t1, t2, t3;
    CHECK(pthread_create(&t1, NULL, conc_unwinder, &a1) == 0);
    CHECK(pthread_create(&t2, NULL, conc_unwinder, &a2) == 0);
    CHECK(pthread_create(&t3, NULL, conc_loader, NULL) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    CHECK(a1.bad == 0 && a2.bad == 0);
    free(buf);
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

BP_TEST(measures_cost)
{
    uint8_t *buf = malloc(WINDOW);
    struct uw_snap s;
    uint64_t out[64];
    capture(&s, buf);
    enum { ROUNDS = 20000 };
    int n = 0;
    bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, out, CHAIN_FRAMES, NULL); /* warm */
    double t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++)
        n = bp_unwind_copy(&s.regs, buf, s.regs.sp, s.len, out, CHAIN_FRAMES, NULL);
    double t1 = now_ns();
    CHECK(n == CHAIN_FRAMES);
    printf("  bp_unwind_copy: %.0f ns per %d-frame unwind (warm cache, %d rounds)\n",
           (t1 - t0) / ROUNDS, n, ROUNDS);
    /* a sample taken in JIT code: no libunwind call */
    struct bp_regs jit = s.regs;
    jit.ip = 0x10; /* in no object */
    t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++)
        n = bp_unwind_copy(&jit, buf, s.regs.sp, s.len, out, CHAIN_FRAMES, NULL);
    t1 = now_ns();
    CHECK(n == 1);
    printf("  bp_unwind_copy: %.0f ns for a sample whose leaf is JIT code\n", (t1 - t0) / ROUNDS);
    free(buf);
}

const struct bp_test_case bp_unwind_tests[] = {
    {"unwinds_chain_without_frame_pointers", unwinds_chain_without_frame_pointers},
    {"short_window_truncates", short_window_truncates},
    {"garbage_copy_does_not_crash", garbage_copy_does_not_crash},
    {"stops_at_anonymous_code", stops_at_anonymous_code},
    {"stops_at_jit_between_c_frames", stops_at_jit_between_c_frames},
    {"survives_library_load_and_unload", survives_library_load_and_unload},
    {"concurrent_walks_and_reloads", concurrent_walks_and_reloads},
    {"measures_cost", measures_cost},
    {NULL, NULL}};
