/* bp_symbols_nif.c - the NIFs of symbolization (bp_symbols.c): thin
 * wrappers registered in beamprof_native_nif.c's table.
 *
 *   nif_symbolize([Addr]) -> [binary() | undefined]           (dirty CPU)
 *   nif_symbol_table(DebugRoot) -> Table                       (normal: allocates)
 *     a resource holding the full symbol tables of the objects it is asked
 *     about (bp_objsyms.h), debug files looked for under DebugRoot (a
 *     non-empty binary without NUL, at most 1024 bytes; else badarg)
 *   nif_symbolize(Table, [Addr]) ->
 *       [binary() | {Object :: binary(), Offset} | undefined]  (dirty IO)
 *     a name from dladdr or Table's tables; {Object, Offset} when the
 *     address lies in Object but no table names it (Offset of its
 *     function's start from the object's base); undefined in no object
 *   nif_symbol_objects(Table) -> [#{...}]                      (normal)
 *     per object looked at: object, path, source (dynsym | symtab |
 *     build_id | debuglink), debug_file, build_id (hex), debuglink
 *     (undefined when absent), symbols, rejected [{Path, Reason}]
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

#include "bp_objsyms.h"
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
    X(vm_internals_off)                                                      \
    X(object)                                                                \
    X(path)                                                                  \
    X(source)                                                                \
    X(debug_file)                                                            \
    X(build_id)                                                              \
    X(debuglink)                                                             \
    X(rejected)                                                              \
    X(dynsym)                                                                \
    X(symtab)                                                                \
    X(build_id_mismatch)                                                     \
    X(crc_mismatch)                                                          \
    X(malformed)                                                             \
    X(no_symbols)                                                            \
    X(same_file)

#define BP_SYM_ATOM_DECL(name) ERL_NIF_TERM name;
static struct {
    BP_SYM_ATOMS(BP_SYM_ATOM_DECL)
} bp_sym_atom;
#undef BP_SYM_ATOM_DECL

/* The symbol table resource: a bp_objsyms, freed by the destructor (a
 * few MB at most: the tables of the objects sampled). */
static ErlNifResourceType *bp_symtab_type;

struct bp_symtab_res {
    struct bp_objsyms objs; /* root NULL: never initialised */
};

static void bp_symtab_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    bp_objsyms_free(&((struct bp_symtab_res *)obj)->objs);
}

int bp_symbols_nif_load(ErlNifEnv *env)
{
#define BP_SYM_ATOM_MAKE(name) bp_sym_atom.name = enif_make_atom(env, #name);
    BP_SYM_ATOMS(BP_SYM_ATOM_MAKE)
#undef BP_SYM_ATOM_MAKE
    bp_symtab_type = enif_open_resource_type(env, NULL, "bp_symtab", bp_symtab_dtor,
                                             ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return bp_symtab_type == NULL ? -1 : 0;
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

/* Addrs (a proper list of at most 100000 integers 0..2^64-1, else badarg)
 * mapped by one(env, objs, Addr). */
static ERL_NIF_TERM bp_sym_map(ErlNifEnv *env, ERL_NIF_TERM addrs, struct bp_objsyms *objs,
                               ERL_NIF_TERM (*one)(ErlNifEnv *, struct bp_objsyms *, uint64_t))
{
    unsigned len;
    if (!enif_get_list_length(env, addrs, &len) || len > BP_SYM_MAX_ADDRS)
        return enif_make_badarg(env);
    ERL_NIF_TERM *out = enif_alloc((len ? len : 1) * sizeof *out);
    if (out == NULL)
        return bp_sym_error(env, bp_sym_atom.enomem);
    ERL_NIF_TERM list = addrs, head;
    for (unsigned i = 0; i < len; i++) {
        ErlNifUInt64 addr;
        if (!enif_get_list_cell(env, list, &head, &list) ||
            !enif_get_uint64(env, head, &addr)) {
            enif_free(out);
            return enif_make_badarg(env);
        }
        out[i] = one(env, objs, addr);
    }
    ERL_NIF_TERM result = enif_make_list_from_array(env, out, len);
    enif_free(out);
    return result;
}

/* dladdr's name, or object+0x<offset>; undefined in no loaded object. */
static ERL_NIF_TERM bp_sym_described(ErlNifEnv *env, struct bp_objsyms *objs, uint64_t addr)
{
    char name[BP_SYM_NAME_MAX];
    (void)objs;
    size_t n = bp_sym_describe(addr, name, sizeof name);
    return n ? bp_sym_binary(env, name, n) : bp_sym_atom.undefined;
}

/* nif_symbolize(Addrs): each address's name, or undefined when it lies in
 * no loaded object (JIT code). */
ERL_NIF_TERM bp_native_symbolize_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    return bp_sym_map(env, argv[0], NULL, bp_sym_described);
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

/* ------------------------------------------------ full symbol tables */

#define BP_SYM_ROOT_MAX 1024u

/* nif_symbol_table(DebugRoot). */
ERL_NIF_TERM bp_native_symbol_table_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    ErlNifBinary root;
    char path[BP_SYM_ROOT_MAX + 1];
    if (!enif_inspect_binary(env, argv[0], &root) || root.size == 0 ||
        root.size > BP_SYM_ROOT_MAX || memchr(root.data, '\0', root.size) != NULL)
        return enif_make_badarg(env);
    memcpy(path, root.data, root.size);
    path[root.size] = '\0';
    struct bp_symtab_res *res = enif_alloc_resource(bp_symtab_type, sizeof *res);
    if (res == NULL)
        return bp_sym_error(env, bp_sym_atom.enomem);
    memset(res, 0, sizeof *res);
    if (bp_objsyms_init(&res->objs, path) != 0) {
        enif_release_resource(res);
        return bp_sym_error(env, bp_sym_atom.enomem);
    }
    ERL_NIF_TERM term = enif_make_resource(env, res);
    enif_release_resource(res);
    return term;
}

static ERL_NIF_TERM bp_sym_one(ErlNifEnv *env, struct bp_objsyms *objs, uint64_t addr)
{
    char name[BP_SYM_NAME_MAX];
    size_t len;
    uint64_t offset;
    long obj;
    switch (bp_sym_resolve(objs, addr, name, sizeof name, &len, &offset, &obj)) {
    case BP_SYM_NAMED:
        return bp_sym_binary(env, name, len);
    case BP_SYM_UNNAMED:
        return enif_make_tuple2(env, bp_sym_binary(env, name, len),
                                enif_make_uint64(env, offset));
    default:
        return bp_sym_atom.undefined;
    }
}

/* nif_symbolize(Table, Addrs): Addrs as for nif_symbolize/1. */
ERL_NIF_TERM bp_native_symbolize_in_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct bp_symtab_res *res;
    if (!enif_get_resource(env, argv[0], bp_symtab_type, (void **)&res))
        return enif_make_badarg(env);
    return bp_sym_map(env, argv[1], &res->objs, bp_sym_one);
}

static ERL_NIF_TERM bp_sym_str(ErlNifEnv *env, const char *s)
{
    return s == NULL ? bp_sym_atom.undefined : bp_sym_binary(env, s, strlen(s));
}

static ERL_NIF_TERM bp_obj_source_term(enum bp_obj_source s)
{
    switch (s) {
    case BP_OBJ_SYMTAB:
        return bp_sym_atom.symtab;
    case BP_OBJ_BUILD_ID:
        return bp_sym_atom.build_id;
    case BP_OBJ_DEBUGLINK:
        return bp_sym_atom.debuglink;
    default:
        return bp_sym_atom.dynsym;
    }
}

static ERL_NIF_TERM bp_obj_rejected_term(ErlNifEnv *env, const struct bp_obj *o)
{
    const ERL_NIF_TERM why[] = {bp_sym_atom.malformed, bp_sym_atom.build_id_mismatch,
                                bp_sym_atom.crc_mismatch, bp_sym_atom.malformed,
                                bp_sym_atom.no_symbols, bp_sym_atom.same_file};
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (unsigned i = o->nrejected; i-- > 0;) {
        unsigned r = (unsigned)o->rejected[i].reason;
        ERL_NIF_TERM t = enif_make_tuple2(env, bp_sym_str(env, o->rejected[i].path),
                                          why[r < 6 ? r : 0]);
        list = enif_make_list_cell(env, t, list);
    }
    return list;
}

static ERL_NIF_TERM bp_obj_term(ErlNifEnv *env, const struct bp_obj *o)
{
    char hex[2 * BP_ELF_MAX_BUILD_ID + 1];
    const char *slash = strrchr(o->path, '/');
    ERL_NIF_TERM keys[] = {bp_sym_atom.object, bp_sym_atom.path, bp_sym_atom.source,
                           bp_sym_atom.debug_file, bp_sym_atom.build_id,
                           bp_sym_atom.debuglink, bp_sym_atom.symbols, bp_sym_atom.rejected};
    ERL_NIF_TERM values[] = {
        bp_sym_str(env, slash ? slash + 1 : o->path), bp_sym_str(env, o->path),
        bp_obj_source_term(o->source), bp_sym_str(env, o->debug_file),
        o->build_id_len ? bp_sym_str(env, (bp_obj_build_id_hex(o, hex, sizeof hex), hex))
                        : bp_sym_atom.undefined,
        bp_sym_str(env, o->debuglink), enif_make_uint64(env, o->syms.n),
        bp_obj_rejected_term(env, o)};
    ERL_NIF_TERM map;
    if (!enif_make_map_from_arrays(env, keys, values, 8, &map))
        return bp_sym_atom.undefined; /* distinct keys: cannot happen */
    return map;
}

/* nif_symbol_objects(Table). At most BP_OBJSYMS_MAX objects. */
ERL_NIF_TERM bp_native_symbol_objects_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct bp_symtab_res *res;
    if (!enif_get_resource(env, argv[0], bp_symtab_type, (void **)&res))
        return enif_make_badarg(env);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    const struct bp_obj *o;
    for (size_t i = 0; (o = bp_objsyms_at(&res->objs, i)) != NULL; i++)
        list = enif_make_list_cell(env, bp_obj_term(env, o), list);
    ERL_NIF_TERM reversed;
    enif_make_reverse_list(env, list, &reversed);
    return reversed;
}
