/* symprobe.c - test-only NIF library for beamprof_symbols_SUITE, built once
 * per module name (-DPROBE_MOD=...) and then stripped or not, with or
 * without a separate debug file. Its one function of interest,
 * bp_probe_secret_fn, is static (and the library built with
 * -fvisibility=hidden): dladdr cannot name it, only a full symbol table can.
 *
 *   addr() -> the address of a byte inside bp_probe_secret_fn
 *   spin(Ms) -> ok after running bp_probe_secret_fn for Ms ms (dirty CPU)
 */
#include <erl_nif.h>
#include <stdint.h>
#include <time.h>

#ifndef PROBE_MOD
#error "build with -DPROBE_MOD=<module name>"
#endif

static __attribute__((noinline, used)) uint64_t bp_probe_secret_fn(uint64_t n)
{
    volatile uint64_t x = n;
    for (int i = 0; i < 100000; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

static ERL_NIF_TERM addr(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    uint64_t (*volatile fn)(uint64_t) = bp_probe_secret_fn;
    return enif_make_uint64(env, (ErlNifUInt64)(uintptr_t)fn + 1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static ERL_NIF_TERM spin(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    int ms;
    if (!enif_get_int(env, argv[0], &ms) || ms < 0 || ms > 10000)
        return enif_make_badarg(env);
    double end = now_ms() + ms;
    uint64_t acc = 0;
    while (now_ms() < end)
        acc += bp_probe_secret_fn(acc);
    return enif_make_atom(env, acc == 42 ? "ok_" : "ok");
}

static ErlNifFunc funcs[] = {
    {"addr", 0, addr, 0},
    {"spin", 1, spin, ERL_NIF_DIRTY_JOB_CPU_BOUND},
};

/* one more macro level: ERL_NIF_INIT stringifies its argument unexpanded */
#define BP_PROBE_INIT(mod) ERL_NIF_INIT(mod, funcs, NULL, NULL, NULL, NULL)
BP_PROBE_INIT(PROBE_MOD)
