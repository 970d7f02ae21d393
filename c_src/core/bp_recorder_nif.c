/* bp_recorder_nif.c - the flight recorder's NIFs. */
#include "bp_recorder_nif.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BP_REC_ATOMS(X)                                                       \
    X(ok) X(error) X(undefined) X(locked) X(not_a_recording) X(already_open)  \
    X(unwritable) X(too_large) X(not_open) X(created) X(resumed) X(moved_prev) \
    X(file) X(ring_size) X(bytes_written) X(frames) X(wraps) X(seq) X(dropped) \
    X(encode_failed) X(tick_cpu_ns) X(tick_records) X(true) X(false)          \
    X(eacces) X(eperm) X(eloop) X(enoent) X(enotdir) X(eisdir) X(erofs)       \
    X(enospc) X(edquot) X(efbig) X(emfile) X(enfile) X(enametoolong)          \
    X(enomem) X(eio) X(einval) X(eexist) X(enodev) X(etxtbsy)

#define BP_REC_ATOM_DECL(name) ERL_NIF_TERM name;
static struct {
    BP_REC_ATOMS(BP_REC_ATOM_DECL)
} a;
#undef BP_REC_ATOM_DECL

void bp_recorder_nif_atoms(ErlNifEnv *env)
{
#define BP_REC_ATOM_MAKE(name) a.name = enif_make_atom(env, #name);
    BP_REC_ATOMS(BP_REC_ATOM_MAKE)
#undef BP_REC_ATOM_MAKE
}

static ERL_NIF_TERM bp_errno_term(ErlNifEnv *env, int e)
{
    static const struct { int e; ERL_NIF_TERM *t; } map[] = {
        {EACCES, &a.eacces}, {EPERM, &a.eperm}, {ELOOP, &a.eloop}, {ENOENT, &a.enoent},
        {ENOTDIR, &a.enotdir}, {EISDIR, &a.eisdir}, {EROFS, &a.erofs},
        {ENOSPC, &a.enospc}, {EDQUOT, &a.edquot}, {EFBIG, &a.efbig}, {EMFILE, &a.emfile},
        {ENFILE, &a.enfile}, {ENAMETOOLONG, &a.enametoolong}, {ENOMEM, &a.enomem},
        {EIO, &a.eio}, {EINVAL, &a.einval}, {EEXIST, &a.eexist}, {ENODEV, &a.enodev},
        {ETXTBSY, &a.etxtbsy},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].e == e)
            return *map[i].t;
    return enif_make_int(env, e);
}

static ERL_NIF_TERM bp_rec_error(ErlNifEnv *env, ERL_NIF_TERM reason)
{
    return enif_make_tuple2(env, a.error, reason);
}

/* A path argument: a binary without NUL, shorter than PATH_MAX - 5 (room
 * for ".prev"), copied NUL-terminated into out. */
static int bp_get_path(ErlNifEnv *env, ERL_NIF_TERM t, char *out)
{
    ErlNifBinary b;
    if (!enif_inspect_binary(env, t, &b) || b.size == 0 || b.size >= PATH_MAX - 5 ||
        memchr(b.data, 0, b.size) != NULL)
        return 0;
    memcpy(out, b.data, b.size);
    out[b.size] = '\0';
    return 1;
}

/* Whether t is a binary holding one whole term in the external term format
 * that decodes safely (no new atoms), at most BP_REC_PAYLOAD_MAX bytes
 * (larger ones are not decoded: *b is filled, 1 is returned, and the
 * append refuses them). */
static int bp_get_payload(ErlNifEnv *env, ERL_NIF_TERM t, ErlNifBinary *b)
{
    ERL_NIF_TERM term;
    if (!enif_inspect_binary(env, t, b) || b->size < 2 || b->data[0] != 131)
        return 0;
    return b->size > BP_REC_PAYLOAD_MAX ||
           enif_binary_to_term(env, b->data, b->size, &term, ERL_NIF_BIN2TERM_SAFE) == b->size;
}

/* recorder_open(Path :: binary(), RingSize, SinceUs, Header :: binary()) ->
 *     {ok, created | resumed | moved_prev} | {error, Reason}
 * Header (an ETF payload, as for recorder_append) is the first frame after
 * the open, before any tick or other record.
 * RingSize: bytes, a multiple of 8 in 65536..4 GiB. SinceUs: this VM's start
 * (µs since the epoch); a recording with this OS pid opened before it is
 * another VM's. Reason: already_open, locked, not_a_recording,
 * {unwritable, Errno}. */
ERL_NIF_TERM bp_recorder_open_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    char path[PATH_MAX];
    ErlNifUInt64 ring;
    ErlNifSInt64 since;
    if (!bp_get_path(env, argv[0], path))
        return enif_make_badarg(env);
    if (!enif_get_uint64(env, argv[1], &ring) || ring < BP_REC_RING_MIN ||
        ring > BP_REC_RING_MAX || ring % 8 != 0)
        return enif_make_badarg(env);
    if (!enif_get_int64(env, argv[2], &since))
        return enif_make_badarg(env);
    ErlNifBinary header;
    if (!bp_get_payload(env, argv[3], &header) || header.size > BP_REC_PAYLOAD_MAX)
        return enif_make_badarg(env);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int e = 0;
    enum bp_recfile_how how = BP_REC_CREATED;
    int rc = bp_recorder_open(bp_core_recorder_of(env), path, ring, (uint64_t)getpid(),
                              since, now_us, header.data, header.size, &e, &how);
    switch (rc) {
    case BP_REC_OK:
        return enif_make_tuple2(env, a.ok,
                                how == BP_REC_RESUMED ? a.resumed
                                : how == BP_REC_MOVED ? a.moved_prev : a.created);
    case BP_REC_LOCKED:
        return bp_rec_error(env, a.locked);
    case BP_REC_NOT_A_RECORDING:
        return bp_rec_error(env, a.not_a_recording);
    case BP_REC_ALREADY_OPEN:
        return bp_rec_error(env, a.already_open);
    case BP_REC_BAD_ARG:
        return enif_make_badarg(env);
    default:
        return bp_rec_error(env, enif_make_tuple2(env, a.unwritable, bp_errno_term(env, e)));
    }
}

/* recorder_close() -> ok (also when none is open). */
ERL_NIF_TERM bp_recorder_close_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    bp_recorder_close(bp_core_recorder_of(env));
    return a.ok;
}

/* recorder_append(Payload :: binary()) -> ok | {error, not_open | too_large}
 * Payload must be one whole term in the external term format that decodes
 * with binary_to_term(Payload, [safe]) (else badarg), at most
 * BP_REC_PAYLOAD_MAX bytes and ring size - 40 (else too_large, counted as
 * dropped). The decode check is the caller's cost: about as long as the
 * term_to_binary that made it. */
ERL_NIF_TERM bp_recorder_append_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    ErlNifBinary b;
    if (!bp_get_payload(env, argv[0], &b))
        return enif_make_badarg(env);
    struct bp_recorder *rec = bp_core_recorder_of(env);
    switch (bp_recorder_append(rec, b.data, b.size)) {
    case BP_REC_OK:
        return a.ok;
    case BP_REC_CLOSED:
        return bp_rec_error(env, a.not_open);
    default:
        return bp_rec_error(env, a.too_large);
    }
}

/* recorder_info() -> undefined | #{file, ring_size, bytes_written, frames,
 * wraps, seq, dropped, encode_failed, tick_cpu_ns, tick_records}: the
 * counters since the file was opened (tick_* since the library loaded),
 * seq the next frame's sequence number. */
ERL_NIF_TERM bp_recorder_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct bp_recorder *rec = bp_core_recorder_of(env);
    struct bp_recfile_info i;
    bp_recfile_info(&rec->file, &i);
    if (!i.open)
        return a.undefined;
    ERL_NIF_TERM file, map;
    size_t n = strlen(i.path);
    unsigned char *p = enif_make_new_binary(env, n, &file);
    if (p == NULL)
        return enif_make_badarg(env);
    memcpy(p, i.path, n);
    ERL_NIF_TERM keys[] = {a.file, a.ring_size, a.bytes_written, a.frames, a.wraps,
                           a.seq, a.dropped, a.encode_failed, a.tick_cpu_ns, a.tick_records};
    ERL_NIF_TERM values[] = {
        file,
        enif_make_uint64(env, i.ring_size),
        enif_make_uint64(env, i.bytes),
        enif_make_uint64(env, i.frames),
        enif_make_uint64(env, i.wraps),
        enif_make_uint64(env, i.seq),
        enif_make_uint64(env, i.dropped),
        enif_make_uint64(env, atomic_load(&rec->encode_failed)),
        enif_make_uint64(env, atomic_load(&rec->tick_cpu_ns)),
        enif_make_uint64(env, atomic_load(&rec->tick_calls)),
    };
    if (!enif_make_map_from_arrays(env, keys, values, 10, &map))
        return enif_make_badarg(env);
    return map;
}

/* recorder_active() -> boolean(): one atomic load; whether a recording is
 * open (the Erlang side checks it before building a record). */
ERL_NIF_TERM bp_recorder_active_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    return bp_recorder_active(bp_core_recorder_of(env)) ? a.true : a.false;
}
