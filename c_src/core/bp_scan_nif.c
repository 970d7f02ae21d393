/* bp_scan_nif.c - the scan's NIF resources over the pure structures of
 * bp_scan.c.
 *
 * Terms kept across calls (pids, ports, top-K items) are copied into a
 * process-independent environment owned by the resource; the pure
 * structures hold the copies' ERL_NIF_TERM words. Local pids and ports are
 * immediates on OTP 25, so the copies cost no heap, but nothing here relies
 * on it: the top-K environment is rebuilt with only the live items once
 * evictions have left enough garbage in it, the window's two environments
 * are cleared when their table's generation is recycled, and the window
 * compares ids with enif_is_identical when their words differ.
 *
 * Locks: one ErlNifMutex per resource, held for one call, never with
 * another lock (a leaf in the library's lock order).
 */
#include "bp_scan_nif.h"

#include <assert.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "bp_atoms.h"
#include "bp_ptab.h"
#include "bp_reaper.h"
#include "bp_scan.h"
#include "bp_sym_read.h"
#include "bp_threads.h"

static_assert(sizeof(ERL_NIF_TERM) == sizeof(uint64_t), "a term is one 64-bit word");

#define BP_SCAN_ATOMS(X)                                                     \
    X(size) X(taken) X(count) X(min) X(max) X(sum) X(generation) X(entries)  \
    X(previous) X(capacity) X(overflow) X(no_generation) X(skipped) X(undefined)   \
    X(more) X(done) X(unavailable) X(freed)

#define BP_SCAN_ATOM_DECL(name) ERL_NIF_TERM name;
static struct {
    BP_SCAN_ATOMS(BP_SCAN_ATOM_DECL)
} am;
#undef BP_SCAN_ATOM_DECL

struct scan_buf {
    ErlNifMutex *lock;
    ErlNifEnv *env; /* copies of the ids */
    struct bp_idbuf b;
};

struct scan_topk {
    ErlNifMutex *lock;
    ErlNifEnv *env; /* copies of the kept items, plus evicted garbage */
    uint32_t garbage;
    struct bp_topk t;
};

struct scan_hist {
    ErlNifMutex *lock;
    struct bp_hist h;
};

struct scan_window {
    ErlNifMutex *lock;
    ErlNifEnv *env[2]; /* copies of the ids of table 0 and 1 */
    struct bp_window w;
};

static ErlNifResourceType *buf_type, *topk_type, *hist_type, *window_type;

/* ------------------------------------------------------- destructors */

/* Destructors tolerate half-built objects (a failed constructor releases
 * what it made through them). They run wherever the last reference drops
 * (the scheduler of a killed walker, say): large blocks go to the reaper
 * thread (bp_reaper.h), not freed here. */
static void buf_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    struct scan_buf *r = obj;
    struct bp_block ids;
    bp_idbuf_detach(&r->b, &ids);
    bp_reaper_free(&ids);
    if (r->env)
        enif_free_env(r->env);
    if (r->lock)
        enif_mutex_destroy(r->lock);
}

static void topk_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    struct scan_topk *r = obj;
    bp_topk_destroy(&r->t);
    if (r->env)
        enif_free_env(r->env);
    if (r->lock)
        enif_mutex_destroy(r->lock);
}

static void hist_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    struct scan_hist *r = obj;
    if (r->lock)
        enif_mutex_destroy(r->lock);
}

static void window_dtor(ErlNifEnv *env, void *obj)
{
    (void)env;
    struct scan_window *r = obj;
    struct bp_block blocks[4];
    bp_window_detach(&r->w, blocks);
    for (int i = 0; i < 4; i++)
        bp_reaper_free(&blocks[i]);
    for (int i = 0; i < 2; i++)
        if (r->env[i])
            enif_free_env(r->env[i]);
    if (r->lock)
        enif_mutex_destroy(r->lock);
}

int bp_scan_open(ErlNifEnv *env)
{
#define BP_SCAN_ATOM_MAKE(name) am.name = enif_make_atom(env, #name);
    BP_SCAN_ATOMS(BP_SCAN_ATOM_MAKE)
#undef BP_SCAN_ATOM_MAKE
    ErlNifResourceFlags flags = ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER;
    buf_type = enif_open_resource_type(env, NULL, "bp_scan_buf", buf_dtor, flags, NULL);
    topk_type = enif_open_resource_type(env, NULL, "bp_scan_topk", topk_dtor, flags, NULL);
    hist_type = enif_open_resource_type(env, NULL, "bp_scan_hist", hist_dtor, flags, NULL);
    window_type =
        enif_open_resource_type(env, NULL, "bp_scan_window", window_dtor, flags, NULL);
    if (!(buf_type && topk_type && hist_type && window_type))
        return -1;
    (void)bp_reaper_ref(); /* without its thread, blocks are freed where dropped */
    return 0;
}

void bp_scan_close(void)
{
    bp_reaper_unref();
}

/* ----------------------------------------------------------- helpers */

/* Allocates a zeroed resource of `size` bytes with its mutex. NULL
 * without memory (nothing left behind). */
static void *new_resource(ErlNifResourceType *type, size_t size)
{
    void *obj = enif_alloc_resource(type, size);
    if (obj == NULL)
        return NULL;
    memset(obj, 0, size);
    ErlNifMutex **lock = obj; /* every resource struct starts with its lock */
    *lock = enif_mutex_create("bp_scan");
    if (*lock == NULL) {
        enif_release_resource(obj);
        return NULL;
    }
    return obj;
}

/* Hands a built resource to the caller as a term. */
static ERL_NIF_TERM give(ErlNifEnv *env, void *obj)
{
    ERL_NIF_TERM t = enif_make_resource(env, obj);
    enif_release_resource(obj);
    return t;
}

/* {error, enomem}, releasing obj (a half-built resource, or NULL). */
static ERL_NIF_TERM fail(ErlNifEnv *env, void *obj)
{
    if (obj != NULL)
        enif_release_resource(obj);
    return enif_make_tuple2(env, bp_atom.error, bp_atom.enomem);
}

/* Tells the VM what share of a timeslice a call used since t0
 * (enif_monotonic_time, ns), at a timeslice per BP_SCAN_CHARGE_NS, the
 * rate at which the walker charges its own slices (beamprof_scan_walk's
 * ?CHARGE_NS): a process calling it in a loop is scheduled out about that
 * often, and the scheduler reads its clock (and fires due timers) as often. */
#define BP_SCAN_CHARGE_NS 500000
static void consume_since(ErlNifEnv *env, ErlNifTime t0)
{
    ErlNifTime ns = enif_monotonic_time(ERL_NIF_NSEC) - t0;
    int percent = (int)(ns * 100 / BP_SCAN_CHARGE_NS);
    (void)enif_consume_timeslice(env, percent < 1 ? 1 : percent > 100 ? 100 : percent);
}

static int is_local_id(ErlNifEnv *env, ERL_NIF_TERM t)
{
    ErlNifPid pid;
    ErlNifPort port;
    return enif_get_local_pid(env, t, &pid) || enif_get_local_port(env, t, &port);
}

static ERL_NIF_TERM make_map(ErlNifEnv *env, ERL_NIF_TERM *keys, ERL_NIF_TERM *values,
                             size_t n)
{
    ERL_NIF_TERM map;
    if (!enif_make_map_from_arrays(env, keys, values, n, &map))
        return enif_make_badarg(env); /* duplicate keys: a bug of ours */
    return map;
}

/* ----------------------------------------------------------- id buffer */

/* scan_buf_new() -> Buf */
ERL_NIF_TERM bp_scan_buf_new_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct scan_buf *r = new_resource(buf_type, sizeof *r);
    if (r == NULL)
        return fail(env, NULL);
    bp_idbuf_init(&r->b);
    r->env = enif_alloc_env();
    if (r->env == NULL)
        return fail(env, r);
    return give(env, r);
}

/* Counts up to BP_SCAN_PUT_CHUNK leading elements of list, all local pids
 * or ports; *rest is what follows them. 0 on a bad element or tail. */
static int count_chunk(ErlNifEnv *env, ERL_NIF_TERM list, size_t *n, ERL_NIF_TERM *rest)
{
    ERL_NIF_TERM head;
    *n = 0;
    while (*n < BP_SCAN_PUT_CHUNK && enif_get_list_cell(env, list, &head, &list)) {
        if (!is_local_id(env, head))
            return 0;
        (*n)++;
    }
    *rest = list;
    return *n == BP_SCAN_PUT_CHUNK || enif_is_empty_list(env, list);
}

/* scan_buf_put(Buf, [pid() | port()]) -> Rest | {error, enomem}. Takes up
 * to BP_SCAN_PUT_CHUNK ids and returns the rest of the list: call again
 * with it until []. The whole chunk is checked before any id is kept. */
ERL_NIF_TERM bp_scan_buf_put_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_buf *r;
    size_t n;
    ERL_NIF_TERM rest, list = argv[1], head;
    if (!enif_get_resource(env, argv[0], buf_type, (void **)&r))
        return enif_make_badarg(env);
    ErlNifTime t0 = enif_monotonic_time(ERL_NIF_NSEC);
    if (!enif_is_list(env, list) || !count_chunk(env, list, &n, &rest))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    if (bp_idbuf_reserve(&r->b, n) != 0) {
        enif_mutex_unlock(r->lock);
        return fail(env, NULL);
    }
    for (size_t i = 0; i < n && enif_get_list_cell(env, list, &head, &list); i++)
        bp_idbuf_push(&r->b, (uint64_t)enif_make_copy(r->env, head));
    enif_mutex_unlock(r->lock);
    consume_since(env, t0);
    return rest;
}

/* ------------------------------------------------- process table walk */

/* The process table as found (bp_ptab.h), under the lock: once found it is
 * kept for the library instance's life (`found'); a failed search is not
 * kept, since a call with a wrong limit must not disable the walk for the
 * right one (a search is a dlsym and a 512-byte read). */
static struct {
    pthread_mutex_t lock;
    int found;
    struct bp_ptab t;
} ptab = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Bytes of the table struct copied to look for its read-only part (OTP 25:
 * at offset 192, 96 bytes long; OTP 27: at 192, 120 bytes). */
#define BP_PTAB_HEADER 512

static int ptab_find(uint32_t limit, struct bp_ptab *out)
{
    pthread_mutex_lock(&ptab.lock);
    if (!ptab.found) {
        uint8_t hdr[BP_PTAB_HEADER];
        void *sym = dlsym(RTLD_DEFAULT, "erts_proc");
        size_t len = sizeof hdr;
        /* a shorter copy when the struct sits near the end of its mapping */
        while (sym != NULL && len >= 128 && bp_sym_read(hdr, (uint64_t)(uintptr_t)sym, len) != 0)
            len /= 2;
        ptab.found = sym != NULL && len >= 128 && bp_ptab_locate(hdr, len, limit, &ptab.t) == 0 &&
                     bp_ptab_mapped(&ptab.t, bp_sym_read) == 0;
    }
    int found = ptab.found && ptab.t.max == limit;
    if (found)
        *out = ptab.t;
    pthread_mutex_unlock(&ptab.lock);
    return found ? 0 : -1;
}

/* Slots read per call: 0.05-0.3 ms at 500k processes (a cache miss per
 * element). 16384 made calls of up to 0.6 ms, and a 1 ms pinger on the same
 * scheduler woke 2.0-2.4 ms apart during the walk; 8192 kept it under 2 ms in
 * 14 of 15 walks. */
#define BP_PTAB_SLOTS 8192u
/* Read BP_PTAB_CHUNK at a time, a call stops once it has run this long: on a
 * loaded host the whole walk took up to 3x its usual time (58 ms against
 * 14-20 at 500k processes), and so would each call. */
#define BP_PTAB_CHUNK 1024u
#define BP_PTAB_CALL_NS 200000

/* scan_ptab_fill(Buf, Limit, Slot) -> {more, Next} | done | {error,
 * unavailable} | {error, enomem}. Appends to Buf the pids of the process
 * table's slots from Slot on, at most BP_PTAB_SLOTS and about
 * BP_PTAB_CALL_NS at a time; call again with Next until done. Limit is
 * erlang:system_info(process_limit). `unavailable': the table was not
 * found (no `erts_proc' symbol, as on OTP 29, or no layout bp_ptab knows),
 * or does not hold the caller where the mask formula says (checked on
 * every call), so the caller falls back to erlang:processes(). Whether the
 * running ERTS may be walked at all is the caller's decision
 * (beamprof_enum, the versions a test verified). */
ERL_NIF_TERM bp_scan_ptab_fill_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_buf *r;
    unsigned int limit, slot;
    ErlNifPid self;
    struct bp_ptab t;
    if (!enif_get_resource(env, argv[0], buf_type, (void **)&r) ||
        !enif_get_uint(env, argv[1], &limit) || !enif_get_uint(env, argv[2], &slot) ||
        slot > limit || enif_self(env, &self) == NULL)
        return enif_make_badarg(env);
    ErlNifTime t0 = enif_monotonic_time(ERL_NIF_NSEC);
    uint64_t me = (uint64_t)enif_make_pid(env, &self);
    if (ptab_find(limit, &t) != 0 || bp_ptab_check(&t, me, bp_sym_read) != 0)
        return enif_make_tuple2(env, bp_atom.error, am.unavailable);
    if (slot == limit)
        return am.done;
    enif_mutex_lock(r->lock);
    if (bp_idbuf_reserve(&r->b, BP_PTAB_SLOTS) != 0) {
        enif_mutex_unlock(r->lock);
        return fail(env, NULL);
    }
    /* In chunks, until BP_PTAB_SLOTS or BP_PTAB_CALL_NS: the misses cost
     * more when the host's other guests load the memory. */
    uint32_t next = slot;
    for (uint32_t read = 0; read < BP_PTAB_SLOTS && next < limit; read += BP_PTAB_CHUNK) {
        bp_idbuf_added(&r->b, bp_ptab_walk(&t, next, BP_PTAB_CHUNK, me, bp_idbuf_spare(&r->b),
                                           &next));
        if (enif_monotonic_time(ERL_NIF_NSEC) - t0 >= BP_PTAB_CALL_NS)
            break;
    }
    enif_mutex_unlock(r->lock);
    consume_since(env, t0);
    return next >= limit ? am.done : enif_make_tuple2(env, am.more, enif_make_uint(env, next));
}

/* scan_buf_release(Buf) -> ok. Gives the ids' memory back (the buffer stays
 * usable, empty). A dirty I/O job: unmapping the 8 MiB of 500k processes'
 * ids takes 0.5-0.7 ms here, and a walker that let its buffers go on its own
 * scheduler (in the destructor, uncharged) delayed a 1 ms pinger on that
 * scheduler by whole milliseconds when scans came back to back. */
ERL_NIF_TERM bp_scan_buf_release_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_buf *r;
    if (!enif_get_resource(env, argv[0], buf_type, (void **)&r))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    bp_idbuf_destroy(&r->b);
    enif_clear_env(r->env);
    enif_mutex_unlock(r->lock);
    return bp_atom.ok;
}

/* scan_buf_take(Buf, Max) -> [pid() | port()]: the next ids, at most Max
 * (1..BP_SCAN_TAKE_MAX); [] when all were taken. */
ERL_NIF_TERM bp_scan_buf_take_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_buf *r;
    unsigned int max;
    const uint64_t *ids;
    if (!enif_get_resource(env, argv[0], buf_type, (void **)&r))
        return enif_make_badarg(env);
    if (!enif_get_uint(env, argv[1], &max) || max < 1 || max > BP_SCAN_TAKE_MAX)
        return enif_make_badarg(env);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    enif_mutex_lock(r->lock);
    size_t n = bp_idbuf_take(&r->b, max, &ids);
    for (size_t i = n; i-- > 0;)
        list = enif_make_list_cell(env, enif_make_copy(env, (ERL_NIF_TERM)ids[i]), list);
    enif_mutex_unlock(r->lock);
    (void)enif_consume_timeslice(env, (int)(1 + n * 10 / BP_SCAN_TAKE_MAX));
    return list;
}

/* scan_buf_info(Buf) -> #{size, taken} */
ERL_NIF_TERM bp_scan_buf_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_buf *r;
    if (!enif_get_resource(env, argv[0], buf_type, (void **)&r))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    ERL_NIF_TERM keys[] = {am.size, am.taken};
    ERL_NIF_TERM values[] = {enif_make_uint64(env, r->b.size),
                             enif_make_uint64(env, r->b.cursor)};
    enif_mutex_unlock(r->lock);
    return make_map(env, keys, values, 2);
}

/* --------------------------------------------------------------- top-K */

/* scan_topk_new(K) -> TopK, K in 1..10000 */
ERL_NIF_TERM bp_scan_topk_new_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    unsigned int k;
    if (!enif_get_uint(env, argv[0], &k) || k < 1 || k > BP_TOPK_MAX)
        return enif_make_badarg(env);
    struct scan_topk *r = new_resource(topk_type, sizeof *r);
    if (r == NULL)
        return fail(env, NULL);
    if (bp_topk_init(&r->t, k) != 0)
        return fail(env, r);
    r->env = enif_alloc_env();
    if (r->env == NULL)
        return fail(env, r);
    return give(env, r);
}

/* Moves the kept items into a fresh environment and frees the old one with
 * the evicted items' copies. O(K); run once evictions reach 2K + 256, so
 * amortized O(1) per offer. Returns -1 (nothing changed) without memory. */
static int topk_compact(struct scan_topk *r)
{
    ErlNifEnv *fresh = enif_alloc_env();
    if (fresh == NULL)
        return -1;
    for (uint32_t i = 0; i < r->t.n; i++)
        r->t.heap[i].id = (uint64_t)enif_make_copy(fresh, (ERL_NIF_TERM)r->t.heap[i].id);
    enif_free_env(r->env);
    r->env = fresh;
    r->garbage = 0;
    return 0;
}

/* Offers (value, item) to a locked top-K; the item is copied only when kept. */
static void topk_offer_term(struct scan_topk *r, ERL_NIF_TERM item, int64_t value)
{
    uint64_t evicted;
    if (value > bp_topk_floor(&r->t) || r->t.n < r->t.k) {
        uint64_t id = (uint64_t)enif_make_copy(r->env, item);
        if (bp_topk_offer(&r->t, value, id, &evicted) == 2 && ++r->garbage > 2 * r->t.k + 256)
            (void)topk_compact(r); /* without memory: retried at the next eviction */
    }
}

/* scan_topk_add(TopK, Item, Value) -> Floor. Keeps (Value, Item) if Value
 * is above the smallest of the K kept (any term as Item, a 64-bit signed
 * integer as Value). Returns the value the next offer must exceed:
 * -2^63 until K entries are kept. */
ERL_NIF_TERM bp_scan_topk_add_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_topk *r;
    ErlNifSInt64 value;
    if (!enif_get_resource(env, argv[0], topk_type, (void **)&r))
        return enif_make_badarg(env);
    if (!enif_get_int64(env, argv[2], &value))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    topk_offer_term(r, argv[1], value);
    int64_t floor = bp_topk_floor(&r->t);
    enif_mutex_unlock(r->lock);
    return enif_make_int64(env, floor);
}

/* scan_topk_list(TopK) -> [{Value, Item}], largest first, ties in the
 * order they were offered. */
#define BP_TOPK_LIST_DIRTY 1000u
ERL_NIF_TERM bp_scan_topk_list_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct scan_topk *r;
    if (!enif_get_resource(env, argv[0], topk_type, (void **)&r))
        return enif_make_badarg(env);
    /* Sorting and copying 10000 entries takes several ms: beyond
     * BP_TOPK_LIST_DIRTY entries the list is built on a dirty CPU scheduler. */
    enif_mutex_lock(r->lock);
    uint32_t kept = r->t.n;
    enif_mutex_unlock(r->lock);
    if (kept > BP_TOPK_LIST_DIRTY && enif_thread_type() == ERL_NIF_THR_NORMAL_SCHEDULER)
        return enif_schedule_nif(env, "scan_topk_list", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 bp_scan_topk_list_nif, argc, argv);
    enif_mutex_lock(r->lock);
    struct bp_topk_entry *out = enif_alloc((r->t.n + 1) * sizeof *out);
    if (out == NULL) {
        enif_mutex_unlock(r->lock);
        return fail(env, NULL);
    }
    uint32_t n = bp_topk_sorted(&r->t, out);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (uint32_t i = n; i-- > 0;) {
        ERL_NIF_TERM item = enif_make_copy(env, (ERL_NIF_TERM)out[i].id);
        list = enif_make_list_cell(
            env, enif_make_tuple2(env, enif_make_int64(env, out[i].value), item), list);
    }
    enif_mutex_unlock(r->lock);
    enif_free(out);
    return list;
}

/* ----------------------------------------------------------- histogram */

/* scan_hist_new() -> Hist */
ERL_NIF_TERM bp_scan_hist_new_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct scan_hist *r = new_resource(hist_type, sizeof *r);
    if (r == NULL)
        return fail(env, NULL);
    bp_hist_init(&r->h);
    return give(env, r);
}

/* scan_hist_add(Hist, Value) -> ok, Value in 0..2^64-1 */
ERL_NIF_TERM bp_scan_hist_add_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_hist *r;
    ErlNifUInt64 v;
    if (!enif_get_resource(env, argv[0], hist_type, (void **)&r) ||
        !enif_get_uint64(env, argv[1], &v))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    bp_hist_add(&r->h, v);
    enif_mutex_unlock(r->lock);
    return bp_atom.ok;
}

static int get_percent(ErlNifEnv *env, ERL_NIF_TERM t, double *p)
{
    long i;
    if (enif_get_long(env, t, &i)) {
        *p = (double)i;
        return i >= 0 && i <= 100;
    }
    return enif_get_double(env, t, p) && *p >= 0.0 && *p <= 100.0;
}

/* scan_hist_percentiles(Hist, [P]) -> [Value], each P a number in 0..100
 * (at most 1000 of them); see bp_hist_percentile(). */
#define BP_PERCENTILES_NORMAL_MAX 64u /* 64 x 1920 buckets: ~0.1 ms */
ERL_NIF_TERM bp_scan_hist_percentiles_nif(ErlNifEnv *env, int argc,
                                          const ERL_NIF_TERM argv[])
{
    struct scan_hist *r;
    unsigned len;
    double ps[BP_SCAN_PERCENTILES_MAX];
    ERL_NIF_TERM list = argv[1], head;
    if (!enif_get_resource(env, argv[0], hist_type, (void **)&r))
        return enif_make_badarg(env);
    if (!enif_get_list_length(env, list, &len) || len > BP_SCAN_PERCENTILES_MAX)
        return enif_make_badarg(env);
    /* Each percentile walks up to BP_HIST_BUCKETS buckets: 1000 of them take
     * about 2 ms, so beyond BP_PERCENTILES_NORMAL_MAX a dirty CPU scheduler
     * answers. */
    if (len > BP_PERCENTILES_NORMAL_MAX && enif_thread_type() == ERL_NIF_THR_NORMAL_SCHEDULER)
        return enif_schedule_nif(env, "scan_hist_percentiles", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 bp_scan_hist_percentiles_nif, argc, argv);
    for (unsigned i = 0; i < len && enif_get_list_cell(env, list, &head, &list); i++)
        if (!get_percent(env, head, &ps[i]))
            return enif_make_badarg(env);
    ERL_NIF_TERM out = enif_make_list(env, 0);
    enif_mutex_lock(r->lock);
    for (unsigned i = len; i-- > 0;)
        out = enif_make_list_cell(env, enif_make_uint64(env, bp_hist_percentile(&r->h, ps[i])),
                                  out);
    enif_mutex_unlock(r->lock);
    return out;
}

/* scan_hist_info(Hist) -> #{count, min, max, sum} (sum saturates at
 * 2^64-1; min and max are 0 when empty) */
ERL_NIF_TERM bp_scan_hist_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_hist *r;
    if (!enif_get_resource(env, argv[0], hist_type, (void **)&r))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    ERL_NIF_TERM keys[] = {am.count, am.min, am.max, am.sum};
    ERL_NIF_TERM values[] = {enif_make_uint64(env, r->h.count), enif_make_uint64(env, r->h.min),
                             enif_make_uint64(env, r->h.max), enif_make_uint64(env, r->h.sum)};
    enif_mutex_unlock(r->lock);
    return make_map(env, keys, values, 4);
}

/* -------------------------------------------------------------- window */

static int term_eq(uint64_t a, uint64_t b)
{
    return enif_is_identical((ERL_NIF_TERM)a, (ERL_NIF_TERM)b);
}

/* scan_window_new() -> Window */
ERL_NIF_TERM bp_scan_window_new_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    struct scan_window *r = new_resource(window_type, sizeof *r);
    if (r == NULL)
        return fail(env, NULL);
    bp_window_init(&r->w, term_eq);
    r->w.keep_dropped = 1; /* tables begin replaces go to the reaper */
    r->env[0] = enif_alloc_env();
    r->env[1] = enif_alloc_env();
    if (r->env[0] == NULL || r->env[1] == NULL)
        return fail(env, r);
    return give(env, r);
}

/* scan_window_release(Window) -> ok. Frees both generations' tables (the
 * window stays usable: the next scan_window_begin allocates afresh). A dirty
 * I/O job: giving back a table of 500k processes' slots (32 MiB, touched)
 * takes 1-1.5 ms per table, too long for a normal scheduler, where the
 * resource's destructor would otherwise do it. */
ERL_NIF_TERM bp_scan_window_release_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_window *r;
    if (!enif_get_resource(env, argv[0], window_type, (void **)&r))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    bp_window_destroy(&r->w);
    enif_clear_env(r->env[0]);
    enif_clear_env(r->env[1]);
    enif_mutex_unlock(r->lock);
    return bp_atom.ok;
}

/* scan_window_begin(Window, Expected) -> Generation | {error, enomem}.
 * Starts the next generation sized for Expected (0..2^27) updates. */
ERL_NIF_TERM bp_scan_window_begin_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_window *r;
    ErlNifUInt64 expected;
    if (!enif_get_resource(env, argv[0], window_type, (void **)&r) ||
        !enif_get_uint64(env, argv[1], &expected) || expected > BP_WINDOW_EXPECT_MAX)
        return enif_make_badarg(env);
    struct bp_block dropped[2];
    enif_mutex_lock(r->lock);
    int idx = bp_window_begin(&r->w, (size_t)expected);
    if (idx >= 0)
        enif_clear_env(r->env[idx]); /* ids of the generation before last */
    uint32_t gen = r->w.gen;
    bp_window_take_dropped(&r->w, dropped);
    enif_mutex_unlock(r->lock);
    bp_reaper_free(&dropped[0]);
    bp_reaper_free(&dropped[1]);
    if (idx < 0)
        return fail(env, NULL);
    return enif_make_uint(env, gen);
}

/* The aux word of a process's slot: its memory (bytes, below 2^48) and the
 * queue length it had when that memory was asked (below 2^16); anything
 * else is not kept (BP_WINDOW_NO_AUX). */
#define BP_AUX_MQL_BITS 16
#define BP_AUX_MQL_MAX ((1u << BP_AUX_MQL_BITS) - 1u)
#define BP_AUX_MEM_MAX (((uint64_t)1 << (64 - BP_AUX_MQL_BITS)) - 2u)

static uint64_t make_aux(uint64_t mql, uint64_t mem)
{
    if (mql >= BP_AUX_MQL_MAX || mem > BP_AUX_MEM_MAX)
        return BP_WINDOW_NO_AUX;
    return mem << BP_AUX_MQL_BITS | mql;
}

/* scan_window_update(Window, Id, Value, Flags) -> Delta | {Delta, Risen}
 * | {error, no_generation}. Id a local pid or port, Value 0..2^64-1, Flags
 * 0..15. Delta as bp_window_update(); the tuple when some flag is set now
 * that was not set in the previous generation (Risen: those bits).
 * scan_window_update(Window, Id, Value, Flags, Mql, Mem): the same, and
 * keeps Mem (bytes, or `skipped`: not kept) with the queue length Mql for
 * scan_window_cached/4 of the next generation. */
ERL_NIF_TERM bp_scan_window_update_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct scan_window *r;
    ErlNifUInt64 value, mql, mem;
    unsigned int flags, prev;
    uint64_t delta, aux = BP_WINDOW_NO_AUX;
    int inserted;
    if (!enif_get_resource(env, argv[0], window_type, (void **)&r) ||
        !is_local_id(env, argv[1]) || !enif_get_uint64(env, argv[2], &value) ||
        !enif_get_uint(env, argv[3], &flags) || flags > BP_WINDOW_FLAGS)
        return enif_make_badarg(env);
    if (argc == 6) {
        if (!enif_get_uint64(env, argv[4], &mql))
            return enif_make_badarg(env);
        if (enif_get_uint64(env, argv[5], &mem))
            aux = make_aux(mql, mem);
        else if (!enif_is_identical(argv[5], am.skipped))
            return enif_make_badarg(env);
    }
    uint32_t hash = (uint32_t)enif_hash(ERL_NIF_INTERNAL_HASH, argv[1], 0);
    enif_mutex_lock(r->lock);
    uint32_t gen = r->w.gen;
    ERL_NIF_TERM id = gen ? enif_make_copy(r->env[gen & 1], argv[1]) : argv[1];
    int res = bp_window_update(&r->w, (uint64_t)id, hash, value, flags, aux, &delta, &prev,
                               &inserted);
    enif_mutex_unlock(r->lock);
    if (res < 0 && gen == 0)
        return enif_make_tuple2(env, bp_atom.error, am.no_generation);
    ERL_NIF_TERM d = enif_make_uint64(env, delta);
    unsigned risen = flags & ~prev;
    return risen ? enif_make_tuple2(env, d, enif_make_uint(env, risen)) : d;
}

/* scan_window_cached(Window, Id, Value, Mql) -> Mem | none: the memory the
 * previous generation kept for Id (scan_window_update/6) when it recorded
 * exactly Value and Mql then; none otherwise. Reads only. */
ERL_NIF_TERM bp_scan_window_cached_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_window *r;
    ErlNifUInt64 value, mql;
    uint64_t was, aux;
    if (!enif_get_resource(env, argv[0], window_type, (void **)&r) ||
        !is_local_id(env, argv[1]) || !enif_get_uint64(env, argv[2], &value) ||
        !enif_get_uint64(env, argv[3], &mql))
        return enif_make_badarg(env);
    uint32_t hash = (uint32_t)enif_hash(ERL_NIF_INTERNAL_HASH, argv[1], 0);
    enif_mutex_lock(r->lock);
    int found = bp_window_previous(&r->w, (uint64_t)argv[1], hash, &was, &aux);
    enif_mutex_unlock(r->lock);
    if (!found || was != value || aux == BP_WINDOW_NO_AUX ||
        (aux & BP_AUX_MQL_MAX) != mql)
        return bp_atom.none;
    return enif_make_uint64(env, aux >> BP_AUX_MQL_BITS);
}

/* scan_window_reds(Window, TopK, Ids, Values) -> {Gone, Floor}: the
 * reductions-only pass over one slice (on a dirty CPU scheduler beyond
 * BP_WINDOW_REDS_NORMAL_MAX ids). Ids a list of local pids or ports,
 * Values as long (at most BP_SCAN_TAKE_MAX), each a value 0..2^64-1 or
 * `undefined' (the process is gone: counted in Gone, nothing recorded).
 * Records each value with no flags (scan_window_update/4) and offers each
 * delta to TopK (a top-K, or `undefined'); Floor is TopK's floor after
 * (-2^63 without one). One call per slice instead of one per process, and
 * the table slots are prefetched a few ids ahead: the probes of a big table
 * are cache misses, and this way they overlap. The window lock and the
 * top-K lock are taken one after the other, never together. */
#define BP_PREFETCH_AHEAD 8
/* Slices longer than this run on a dirty CPU scheduler: an id costs 0.1-0.7
 * us here (a table probe that misses the cache, a copy, a top-K offer), so
 * 16384 ids took 1.8-11.5 ms; 1024 stay under about 0.7 ms on a normal one.
 * The walker's slices are at most 2048 ids and usually far fewer. */
#define BP_WINDOW_REDS_NORMAL_MAX 1024u
ERL_NIF_TERM bp_scan_window_reds_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    struct scan_window *r;
    struct scan_topk *t = NULL;
    unsigned n, nv;
    ERL_NIF_TERM list = argv[2], vlist = argv[3], head;
    if (!enif_get_resource(env, argv[0], window_type, (void **)&r))
        return enif_make_badarg(env);
    if (!enif_is_identical(argv[1], am.undefined) &&
        !enif_get_resource(env, argv[1], topk_type, (void **)&t))
        return enif_make_badarg(env);
    if (!enif_get_list_length(env, list, &n) || !enif_get_list_length(env, vlist, &nv) ||
        n != nv || n > BP_SCAN_TAKE_MAX)
        return enif_make_badarg(env);
    int normal = enif_thread_type() == ERL_NIF_THR_NORMAL_SCHEDULER;
    if (n > BP_WINDOW_REDS_NORMAL_MAX && normal)
        return enif_schedule_nif(env, "scan_window_reds", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 bp_scan_window_reds_nif, argc, argv);
    ERL_NIF_TERM *ids = enif_alloc((n + 1) * sizeof *ids);
    uint64_t *values = enif_alloc((n + 1) * sizeof *values);
    uint32_t *hashes = enif_alloc((n + 1) * sizeof *hashes);
    if (ids == NULL || values == NULL || hashes == NULL) {
        enif_free(ids);
        enif_free(values);
        enif_free(hashes);
        return fail(env, NULL);
    }
    unsigned m = 0, gone = 0;
    int bad = 0;
    for (unsigned i = 0; i < n && enif_get_list_cell(env, list, &head, &list); i++) {
        ERL_NIF_TERM v;
        ErlNifUInt64 value;
        (void)enif_get_list_cell(env, vlist, &v, &vlist);
        if (!is_local_id(env, head)) {
            bad = 1;
            break;
        }
        if (enif_is_identical(v, am.undefined)) {
            gone++;
            continue;
        }
        if (!enif_get_uint64(env, v, &value)) {
            bad = 1;
            break;
        }
        ids[m] = head;
        values[m] = value;
        hashes[m] = (uint32_t)enif_hash(ERL_NIF_INTERNAL_HASH, head, 0);
        m++;
    }
    if (bad) {
        enif_free(ids);
        enif_free(values);
        enif_free(hashes);
        return enif_make_badarg(env);
    }
    enif_mutex_lock(r->lock);
    uint32_t gen = r->w.gen;
    for (unsigned i = 0; i < m && i < BP_PREFETCH_AHEAD; i++)
        bp_window_prefetch(&r->w, hashes[i]);
    for (unsigned i = 0; i < m; i++) {
        uint64_t delta;
        unsigned prev;
        int inserted;
        if (i + BP_PREFETCH_AHEAD < m)
            bp_window_prefetch(&r->w, hashes[i + BP_PREFETCH_AHEAD]);
        ERL_NIF_TERM id = gen ? enif_make_copy(r->env[gen & 1], ids[i]) : ids[i];
        (void)bp_window_update(&r->w, (uint64_t)id, hashes[i], values[i], 0, BP_WINDOW_NO_AUX,
                               &delta, &prev, &inserted);
        values[i] = delta; /* reused for the offers below */
    }
    enif_mutex_unlock(r->lock);
    int64_t floor = INT64_MIN;
    if (t != NULL) {
        enif_mutex_lock(t->lock);
        for (unsigned i = 0; i < m; i++)
            if (values[i] <= (uint64_t)INT64_MAX)
                topk_offer_term(t, ids[i], (int64_t)values[i]);
        floor = bp_topk_floor(&t->t);
        enif_mutex_unlock(t->lock);
    }
    enif_free(ids);
    enif_free(values);
    enif_free(hashes);
    if (normal)
        (void)enif_consume_timeslice(env, (int)(1 + n * 100 / BP_WINDOW_REDS_NORMAL_MAX));
    return enif_make_tuple2(env, enif_make_uint(env, gone), enif_make_int64(env, floor));
}

/* scan_window_info(Window) -> #{generation, entries, previous, capacity,
 * overflow} */
ERL_NIF_TERM bp_scan_window_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    struct scan_window *r;
    if (!enif_get_resource(env, argv[0], window_type, (void **)&r))
        return enif_make_badarg(env);
    enif_mutex_lock(r->lock);
    const struct bp_wtab *cur = &r->w.t[r->w.gen & 1], *prev = &r->w.t[(r->w.gen + 1) & 1];
    int has_prev = r->w.gen > 1 && prev->gen == r->w.gen - 1;
    uint64_t cap = (cur->slots ? (uint64_t)cur->mask + 1 : 0) +
                   (prev->slots ? (uint64_t)prev->mask + 1 : 0);
    ERL_NIF_TERM keys[] = {am.generation, am.entries, am.previous, am.capacity, am.overflow};
    ERL_NIF_TERM values[] = {
        enif_make_uint(env, r->w.gen),
        enif_make_uint(env, r->w.gen ? cur->used : 0),
        enif_make_uint(env, has_prev ? prev->used : 0),
        enif_make_uint64(env, cap),
        enif_make_uint64(env, r->w.overflow),
    };
    enif_mutex_unlock(r->lock);
    return make_map(env, keys, values, 5);
}

/* ------------------------------------------------------------ CPU clock */

/* scan_reaper_info() -> #{freed}: blocks the reaper thread has freed so
 * far (bp_reaper.h). */
ERL_NIF_TERM bp_scan_reaper_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    ERL_NIF_TERM keys[] = {am.freed};
    ERL_NIF_TERM values[] = {enif_make_uint64(env, bp_reaper_freed())};
    return make_map(env, keys, values, 1);
}

/* scan_thread_cpu() -> Ns: CPU time of the calling scheduler thread
 * (CLOCK_THREAD_CPUTIME_ID; 0 when unreadable). The scanner reads it at
 * both ends of a slice run on one scheduler. */
ERL_NIF_TERM bp_scan_thread_cpu_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)argc;
    (void)argv;
    return enif_make_uint64(env, bp_threads_self_cpu_ns());
}
