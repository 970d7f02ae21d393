/* A NIF busy loop with known C frames (built with frame pointers, leaf
 * included): busy -> busy_top -> busy_mid -> busy_leaf. Test only: one
 * call spins for a few milliseconds on a normal scheduler. */
#include <erl_nif.h>

volatile unsigned long nsym_sink;

__attribute__((noinline)) unsigned long busy_leaf(unsigned long n)
{
    unsigned long x = 0;
    for (unsigned long i = 0; i < n; i++)
        x += i * 2654435761u;
    nsym_sink = x;
    return x;
}

__attribute__((noinline)) unsigned long busy_mid(unsigned long n)
{
    return busy_leaf(n) + 1;
}

__attribute__((noinline)) unsigned long busy_top(unsigned long n)
{
    return busy_mid(n) + 1;
}

static ERL_NIF_TERM busy(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    unsigned long n;
    (void)argc;
    if (!enif_get_ulong(env, argv[0], &n))
        return enif_make_badarg(env);
    return enif_make_ulong(env, busy_top(n));
}

static ErlNifFunc funcs[] = {{"busy", 1, busy, 0}};

ERL_NIF_INIT(nsym_nif, funcs, NULL, NULL, NULL, NULL)
