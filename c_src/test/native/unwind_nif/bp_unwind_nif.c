/* bp_unwind_nif.c - a test-only NIF library (module bp_unwind_nif, in
 * test/): from inside a NIF call it captures its registers and a window of
 * its own C stack, leaves the capture frames, overwrites the stack below,
 * and unwinds the copy with bp_unwind_copy_ex, the way the sampler's drain
 * does. Built without frame pointers and without sanitizers (it copies raw
 * stack); see `make -C c_src unwind-nif`. Never part of priv/. */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include <erl_nif.h>

#include "bp_unwind.h"
#include "bp_regs_capture.h"

#define WINDOW (64 * 1024)
#define MAXF 64

struct snap {
    struct bp_regs regs;
    uint8_t buf[WINDOW];
    size_t len;
    uint64_t stack_end;
};

__attribute__((noinline, noclone, visibility("default"))) uint64_t
bp_unwind_nif_capture(struct snap *s, uint64_t x)
{
    BP_CAPTURE_REGS(&s->regs);
    s->len = bp_copy_window(s->buf, WINDOW, s->regs.sp, s->stack_end);
    return x + s->regs.sp;
}

__attribute__((noinline, noclone, visibility("default"))) uint64_t
bp_unwind_nif_middle(struct snap *s, uint64_t x)
{
    uint64_t a = x * 5, b = x ^ 0x55;
    uint64_t r = bp_unwind_nif_capture(s, x + 1);
    return r + a * b;
}

__attribute__((noinline)) static void scribble(void)
{
    volatile uint8_t junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)i;
}

static ERL_NIF_TERM frame_term(ErlNifEnv *env, uint64_t ip, int caller)
{
    Dl_info di;
    uint64_t look = caller ? ip - 1 : ip;
    ERL_NIF_TERM name, obj;
    if (dladdr((void *)(uintptr_t)look, &di) == 0) /* in no object: JIT */
        return enif_make_tuple3(env, enif_make_uint64(env, ip), enif_make_atom(env, "none"),
                                enif_make_atom(env, "none"));
    obj = enif_make_string(env, di.dli_fname ? di.dli_fname : "", ERL_NIF_LATIN1);
    if (di.dli_sname != NULL)
        name = enif_make_string(env, di.dli_sname, ERL_NIF_LATIN1);
    else
        name = enif_make_atom(env, "none");
    return enif_make_tuple3(env, enif_make_uint64(env, ip), obj, name);
}

static const char *why_name(int why)
{
    switch (why) {
    case BP_UNWIND_NO_INFO:
        return "no_info";
    case BP_UNWIND_END:
        return "end";
    case BP_UNWIND_MAX:
        return "max";
    default:
        return "error";
    }
}

/* unwind_here() -> {Why, [{Ip, Object | none, Symbol | none}] (leaf first),
 *                   #{ip, sp, bp, window_lo, window_hi, bp_ra}} */
static ERL_NIF_TERM unwind_here(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct snap *s = enif_alloc(sizeof *s);
    if (s == NULL)
        return enif_make_badarg(env);
    memset(&s->regs, 0, sizeof s->regs);
    s->stack_end = bp_thread_stack_end();
    bp_unwind_nif_middle(s, 3);
    scribble();
    uint64_t out[MAXF];
    struct bp_regs at;
    int why = 0;
    int n = bp_unwind_copy_ex(&s->regs, s->buf, s->regs.sp, s->len, out, MAXF, &at, &why);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (int i = n - 1; i >= 0; i--)
        list = enif_make_list_cell(env, frame_term(env, out[i], i > 0), list);
    /* With frame pointers in JIT code (+JPperf map), the return address the
     * frame-pointer walk would take next: [at.bp + 8], read from live memory
     * (the calling process's stack, unchanged during this call). */
    uint64_t bp_ra = 0;
    if (why == BP_UNWIND_NO_INFO && at.bp != 0 && (at.bp & 7) == 0)
        memcpy(&bp_ra, (const void *)(uintptr_t)(at.bp + 8), 8);
    ERL_NIF_TERM keys[] = {enif_make_atom(env, "ip"),        enif_make_atom(env, "sp"),
                           enif_make_atom(env, "bp"),        enif_make_atom(env, "window_lo"),
                           enif_make_atom(env, "window_hi"), enif_make_atom(env, "bp_ra")};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, at.ip),
                           enif_make_uint64(env, at.sp),
                           enif_make_uint64(env, at.bp),
                           enif_make_uint64(env, s->regs.sp),
                           enif_make_uint64(env, s->regs.sp + s->len),
                           enif_make_uint64(env, bp_ra)};
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, 6, &map);
    enif_free(s);
    return enif_make_tuple3(env, enif_make_atom(env, why_name(why)), list, map);
}

static ERL_NIF_TERM unwind_cost(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    /* unwind_cost(Rounds) -> {Frames, NsPerUnwind}, on a dirty CPU scheduler */
    unsigned rounds;
    if (argc != 1 || !enif_get_uint(env, argv[0], &rounds) || rounds == 0 || rounds > 1000000)
        return enif_make_badarg(env);
    struct snap *s = enif_alloc(sizeof *s);
    if (s == NULL)
        return enif_make_badarg(env);
    s->stack_end = bp_thread_stack_end();
    bp_unwind_nif_middle(s, 3);
    uint64_t out[MAXF];
    int n = 0;
    ErlNifTime t0 = enif_monotonic_time(ERL_NIF_NSEC);
    for (unsigned i = 0; i < rounds; i++)
        n = bp_unwind_copy(&s->regs, s->buf, s->regs.sp, s->len, out, MAXF, NULL);
    ErlNifTime t1 = enif_monotonic_time(ERL_NIF_NSEC);
    enif_free(s);
    return enif_make_tuple2(env, enif_make_int(env, n),
                            enif_make_int64(env, (t1 - t0) / (ErlNifTime)rounds));
}

static void unload(ErlNifEnv *env, void *priv)
{
    (void)env;
    (void)priv;
    bp_unwind_release();
}

static ErlNifFunc funcs[] = {
    {"unwind_here", 0, unwind_here, 0},
    {"unwind_here_dirty", 0, unwind_here, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"unwind_cost", 1, unwind_cost, ERL_NIF_DIRTY_JOB_CPU_BOUND},
};

ERL_NIF_INIT(bp_unwind_nif, funcs, NULL, NULL, NULL, unload)
