/* bp_symbols_nif.c - the NIFs of symbolization (bp_symbols.c): thin
 * wrappers registered in beamprof_native_nif.c's table.
 *
 *   nif_symbolize([Addr]) -> [binary() | undefined]           (dirty CPU)
 *   nif_jit_symbols(VmInternals) -> {ok, [{Start, End, Name}], Info}
 *                                    | {error, R}              (dirty CPU)
 *     VmInternals false: {error, vm_internals_off}, nothing read; not a
 *     boolean: badarg.
 *     Info: modules, skipped, symbols, frame_layout (the emulator record's:
 *     0 | 1 | undefined), descriptor (dlsym | search: how beam.smp's
 *     __jit_debug_descriptor was found; search on OTP 29, which hides it)
 *
 * Names are binaries, never atoms. The dirty ones run dladdr (linear in an
 * object's symbols, takes the loader's lock) or copy the whole JIT symbol
 * table (tens of thousands of names): too long for a normal scheduler.
 */
#include <erl_nif.h>
#include <string.h>

#include "bp_symbols.h"
#include "bp_symbols_nif.h"

#define BP_SYM_MAX_ADDRS 100000u
#define BP_SYM_NAME_MAX 512

#define BP_SYM_ATOMS(X)                                                      \
    X(ok)                                                                    \
    X(error)                                                                 \
    X(undefined)                                                             \
    X(no_descriptor)                                                         \
    X(unreadable)                                                            \
    X(inconsistent)                                                          \
    X(enomem)                                                                \
    X(modules)                                                               \
    X(skipped)                                                               \
    X(symbols)                                                               \
    X(frame_layout)                                                          \
    X(descriptor)                                                            \
    X(dlsym)                                                                 \
    X(search)                                                                \
    X(true)                                                                  \
    X(false)                                                                 \
    X(vm_internals_off)

#define BP_SYM_ATOM_DECL(name) ERL_NIF_TERM name;
static struct {
    BP_SYM_ATOMS(BP_SYM_ATOM_DECL)
} bp_sym_atom;
#undef BP_SYM_ATOM_DECL

void bp_symbols_nif_load(ErlNifEnv *env)
{
#define BP_SYM_ATOM_MAKE(name) bp_sym_atom.name = enif_make_atom(env, #name);
    BP_SYM_ATOMS(BP_SYM_ATOM_MAKE)
#undef BP_SYM_ATOM_MAKE
}

static ERL_NIF_TERM bp_sym_error(ErlNifEnv *env, ERL_NIF_TERM reason)
{
    return enif_make_tuple2(env, bp_sym_atom.error, reason);
}

static ERL_NIF_TERM bp_sym_binary(ErlNifEnv *env, const char *s, size_t len)
{
    ERL_NIF_TERM bin;
    unsigned char *p = enif_make_new_binary(env, len, &bin);
    if (p == NULL)
        return enif_make_badarg(env); /* out of memory: the VM reports it */
    memcpy(p, s, len);
    return bin;
}

/* nif_symbolize(Addrs): Addrs a proper list of at most 100000 integers
 * 0..2^64-1. Each becomes its name, or undefined when the address lies in
 * no loaded object (JIT code). */
ERL_NIF_TERM bp_native_symbolize_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    unsigned len;
    if (!enif_get_list_length(env, argv[0], &len) || len > BP_SYM_MAX_ADDRS)
        return enif_make_badarg(env);
    ERL_NIF_TERM *out = enif_alloc((len ? len : 1) * sizeof *out);
    if (out == NULL)
        return bp_sym_error(env, bp_sym_atom.enomem);
    ERL_NIF_TERM list = argv[0], head;
    char name[BP_SYM_NAME_MAX];
    for (unsigned i = 0; i < len; i++) {
        ErlNifUInt64 addr;
        if (!enif_get_list_cell(env, list, &head, &list) ||
            !enif_get_uint64(env, head, &addr)) {
            enif_free(out);
            return enif_make_badarg(env);
        }
        size_t n = bp_sym_describe(addr, name, sizeof name);
        out[i] = n ? bp_sym_binary(env, name, n) : bp_sym_atom.undefined;
    }
    ERL_NIF_TERM result = enif_make_list_from_array(env, out, len);
    enif_free(out);
    return result;
}

static ERL_NIF_TERM bp_jit_status_term(enum bp_jit_status s)
{
    switch (s) {
    case BP_JIT_NO_DESCRIPTOR:
        return bp_sym_atom.no_descriptor;
    case BP_JIT_UNREADABLE:
        return bp_sym_atom.unreadable;
    case BP_JIT_INCONSISTENT:
        return bp_sym_atom.inconsistent;
    default:
        return bp_sym_atom.enomem;
    }
}

/* The table as [{Start, End, Name}] sorted by Start; every Name is a
 * sub-binary of one binary holding all names. */
static ERL_NIF_TERM bp_jit_table_term(ErlNifEnv *env, const struct bp_jit_table *t)
{
    ERL_NIF_TERM pool = bp_sym_binary(env, t->pool ? t->pool : "", t->pool_len);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = t->count; i-- > 0;) {
        const struct bp_jit_sym *s = &t->syms[i];
        ERL_NIF_TERM name = enif_make_sub_binary(env, pool, s->name_off, s->name_len);
        ERL_NIF_TERM row = enif_make_tuple3(env, enif_make_uint64(env, s->start),
                                            enif_make_uint64(env, s->end), name);
        list = enif_make_list_cell(env, row, list);
    }
    return list;
}

ERL_NIF_TERM bp_native_jit_symbols_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    if (enif_is_identical(argv[0], bp_sym_atom.false))
        return bp_sym_error(env, bp_sym_atom.vm_internals_off);
    if (!enif_is_identical(argv[0], bp_sym_atom.true))
        return enif_make_badarg(env);
    struct bp_jit_table t;
    memset(&t, 0, sizeof t);
    enum bp_jit_status s = bp_jit_snapshot(0, &t);
    if (s != BP_JIT_OK)
        return bp_sym_error(env, bp_jit_status_term(s));
    ERL_NIF_TERM list = bp_jit_table_term(env, &t);
    ERL_NIF_TERM keys[] = {bp_sym_atom.modules, bp_sym_atom.skipped, bp_sym_atom.symbols,
                           bp_sym_atom.frame_layout, bp_sym_atom.descriptor};
    ERL_NIF_TERM values[] = {enif_make_uint(env, t.modules), enif_make_uint(env, t.skipped),
                             enif_make_uint64(env, t.count),
                             t.frame_layout < 0 ? bp_sym_atom.undefined
                                                : enif_make_int(env, t.frame_layout),
                             t.located == 2 ? bp_sym_atom.search : bp_sym_atom.dlsym};
    ERL_NIF_TERM info;
    bp_jit_table_free(&t);
    if (!enif_make_map_from_arrays(env, keys, values, 5, &info))
        return enif_make_badarg(env);
    return enif_make_tuple3(env, bp_sym_atom.ok, list, info);
}
