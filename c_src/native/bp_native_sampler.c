/* bp_native_sampler.c - the native sampler's control side (see bp_native_sampler.h). */
#include "bp_native_sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bp_native_atoms.h"
#include "bp_symbols.h"
#include "bp_threads_self.h"
#include "bp_unwind.h"

#define BP_NATIVE_THREAD_NAME "beamprof_native"
#define BP_GATE_POLL_MS 100 /* the thread's wake-up: gate time accounting */
#define BP_RESCAN_POLLS 10   /* a rescan every 10 polls (1 s) */
#define BP_SLOW_START_MS 3000 /* BP_HOOK_SLOW_START */
#define BP_SPARE_SLOTS 64   /* room for threads that appear while running */
#define BP_DRAIN_BATCH 32   /* samples unwound per hold of ctl */
#define BP_MAPS_MAX (4u << 20)

static int64_t bp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void bp_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------- creation */

static struct bp_native *bp_native_new(void)
{
    struct bp_native *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->ranges_tmp = malloc(BP_RANGES_MAX * sizeof *n->ranges_tmp);
    n->sel = malloc(BP_THREADS_MAX * sizeof *n->sel);
    n->cache = calloc(1, sizeof *n->cache);
    pthread_condattr_t attr;
    int ok = n->ranges_tmp != NULL && n->sel != NULL && n->cache != NULL &&
             pthread_condattr_init(&attr) == 0;
    if (ok) {
        ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&n->cond, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    if (ok && pthread_mutex_init(&n->lock, NULL) != 0) {
        pthread_cond_destroy(&n->cond);
        ok = 0;
    }
    if (ok && pthread_mutex_init(&n->ctl, NULL) != 0) {
        pthread_mutex_destroy(&n->lock);
        pthread_cond_destroy(&n->cond);
        ok = 0;
    }
    if (ok && pthread_mutex_init(&n->cache_lock, NULL) != 0) {
        pthread_mutex_destroy(&n->ctl);
        pthread_mutex_destroy(&n->lock);
        pthread_cond_destroy(&n->cond);
        ok = 0;
    }
    if (!ok) {
        free(n->ranges_tmp);
        free(n->sel);
        free(n->cache);
        free(n);
        return NULL;
    }
    atomic_init(&n->rescans, 0);
    atomic_init(&n->gate_closed_ns, 0);
    n->reads = -1;
    n->cache->reads = -1;
    return n;
}

struct bp_native *bp_native_get(struct bp_native *_Atomic *slot, int create)
{
    struct bp_native *n = atomic_load(slot);
    if (n != NULL || !create)
        return n;
    struct bp_native *fresh = bp_native_new();
    if (fresh == NULL)
        return NULL;
    struct bp_native *expected = NULL;
    if (atomic_compare_exchange_strong(slot, &expected, fresh))
        return fresh;
    bp_native_free(fresh); /* another caller won: never started, nothing to undo */
    return expected;
}

/* ------------------------------------------------------- ranges, threads */

/* Reads /proc/self/maps (whole, growing the buffer) and publishes the
 * executable ranges to the run. ctl held (or the run not yet shared). */
static void bp_refresh_ranges(struct bp_native *n, struct bp_ncap_run *run)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len == cap) {
            char *bigger = cap < BP_MAPS_MAX ? realloc(buf, cap * 2) : NULL;
            if (bigger == NULL)
                break;
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (buf == NULL)
        return;
    size_t k = bp_ranges_parse_maps(buf, len, n->ranges_tmp, BP_RANGES_MAX);
    free(buf);
    bp_ranges_publish(run->ranges, n->ranges_tmp, k);
}

/* The selected threads of the core's table, rescanned and copied through
 * the channel. ctl held, n->ch set. */
static size_t bp_selected(struct bp_native *n, unsigned kinds, struct bp_channel_thread *out,
                          size_t max)
{
    size_t all = n->ch->threads(n->ch->threads_ctx, out, max), k = 0;
    for (size_t i = 0; i < all; i++)
        if (out[i].type <= BP_THREAD_DIRTY_IO && (kinds & (1u << out[i].type)))
            out[k++] = out[i];
    return k;
}

static int bp_slot_of(struct bp_ncap_run *run, pid_t tid)
{
    size_t ns = atomic_load(&run->nslots);
    for (size_t i = 0; i < ns; i++)
        if (run->slots[i].tid == tid && atomic_load(&run->slots[i].state) == BP_SLOT_ACTIVE)
            return (int)i;
    return -1;
}

/* Adds timers for selected threads not sampled yet and removes those of
 * threads that are gone. Returns the number of threads added. ctl held. */
static size_t bp_sync_threads(struct bp_native *n, struct bp_ncap_run *run, int *timer_errors)
{
    struct bp_channel_thread *sel = n->sel;
    size_t k = bp_selected(n, n->opts.kinds, sel, BP_THREADS_MAX), added = 0;
    *timer_errors = 0;
    size_t ns = atomic_load(&run->nslots);
    for (size_t i = 0; i < ns; i++) {
        struct bp_ncap_slot *s = &run->slots[i];
        if (atomic_load(&s->state) != BP_SLOT_ACTIVE)
            continue;
        int present = 0;
        for (size_t j = 0; j < k && !present; j++)
            present = sel[j].tid == s->tid;
        if (present)
            bp_ncap_refresh_cpu(s);
        else
            bp_ncap_remove_thread(run, i);
    }
    for (size_t j = 0; j < k; j++) {
        if (bp_slot_of(run, sel[j].tid) >= 0)
            continue;
        int rc = bp_ncap_add_thread(run, sel[j].tid, (int)sel[j].type, sel[j].index);
        if (rc >= 0)
            added++;
        else if (rc == -2)
            (*timer_errors)++;
    }
    return added;
}

/* ---------------------------------------------------------- the thread */

/* Adds the time since the last poll to gate_closed_ns when the gate was
 * closed then (a flip is placed at the poll that sees it: within
 * BP_GATE_POLL_MS). The thread while it runs, else ctl held. */
static void bp_gate_account(struct bp_native *n, const struct bp_ncap_run *run)
{
    int64_t now = bp_now_ns();
    if (n->gate_last_closed && now > n->gate_last_ns)
        atomic_fetch_add(&n->gate_closed_ns, (uint64_t)(now - n->gate_last_ns));
    n->gate_last_ns = now;
    n->gate_last_closed = run->gate_closed != NULL && atomic_load(run->gate_closed);
}

static void bp_cache_store(struct bp_native *n);

/* The rescan: threads added/removed, mappings refreshed. Never waits for
 * ctl: stop holds it while joining this thread. */
static void bp_rescan(struct bp_native *n)
{
    if (pthread_mutex_trylock(&n->ctl) != 0)
        return;
    if (n->running && n->run != NULL) {
        uint64_t c0 = bp_threads_self_cpu_ns();
        int errs;
        (void)bp_sync_threads(n, n->run, &errs);
        bp_refresh_ranges(n, n->run);
        atomic_fetch_add(&n->rescans, 1);
        atomic_fetch_add(&n->rescan_ns, bp_threads_self_cpu_ns() - c0);
        bp_cache_store(n);
    }
    pthread_mutex_unlock(&n->ctl);
}

static void *bp_native_main(void *arg)
{
    struct bp_native *n = arg;
    bp_threads_name_self(BP_NATIVE_THREAD_NAME);
    int64_t deadline = bp_now_ns() + BP_GATE_POLL_MS * 1000000LL;
    unsigned polls = 0;
    pthread_mutex_lock(&n->lock);
    while (!n->stop_thread) {
        struct timespec ts = {(time_t)(deadline / 1000000000LL), (long)(deadline % 1000000000LL)};
        int rc = pthread_cond_timedwait(&n->cond, &n->lock, &ts);
        if (n->stop_thread)
            break;
        if (rc != ETIMEDOUT && bp_now_ns() < deadline)
            continue;
        deadline = bp_now_ns() + BP_GATE_POLL_MS * 1000000LL;
        pthread_mutex_unlock(&n->lock);
        bp_gate_account(n, n->thread_run);
        if (++polls % BP_RESCAN_POLLS == 0)
            bp_rescan(n);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

static int bp_thread_start(struct bp_native *n, struct bp_ncap_run *run)
{
    n->stop_thread = 0;
    n->thread_run = run;
    atomic_store(&n->gate_closed_ns, 0);
    n->gate_last_closed = 0;
    bp_gate_account(n, run); /* the state at start */
    ErlNifThreadOpts *opts = enif_thread_opts_create("beamprof_native_opts");
    if (opts != NULL)
        opts->suggested_stack_size = 64; /* kilowords */
    int rc = enif_thread_create(BP_NATIVE_THREAD_NAME, &n->tid, bp_native_main, n, opts);
    if (opts != NULL)
        enif_thread_opts_destroy(opts);
    n->have_thread = rc == 0;
    return rc == 0 ? 0 : -1;
}

static void bp_thread_stop(struct bp_native *n)
{
    if (!n->have_thread)
        return;
    pthread_mutex_lock(&n->lock);
    n->stop_thread = 1;
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->lock);
    enif_thread_join(n->tid, NULL);
    n->have_thread = 0;
}

/* -------------------------------------------------------- start / stop */

/* Takes the channel for the run being started (ctl held). */
static void bp_channel_hold(struct bp_native *n, const struct bp_channel *ch)
{
    enif_keep_resource(ch->resource);
    n->ch = ch;
}

/* Gives the channel back once nothing of the run uses it (ctl held). */
static void bp_channel_drop(struct bp_native *n)
{
    if (n->ch == NULL)
        return;
    enif_release_resource(n->ch->resource);
    n->ch = NULL;
}

/* The frame layout, its source and the walk a start with vm_internals
 * uses. erts_frame_layout: 1 when JIT code keeps frame pointers (+JPperf
 * map | true, and fp on OTP 26+; measured on 25, 27 and 29), 0 without
 * (no flag, +JPperf dump, +JPperf no_fp), -1 when beam.smp says nothing
 * (see bp_sym_frame_layout_from) or vm_internals forbids asking: then
 * nothing is read and the frame-layout cache is not touched. Only frame
 * pointers give callers that can be verified: without them (or not
 * knowing) a sample keeps its innermost Erlang function and C frames. */
static enum bp_ncap_walk bp_walk_choose(int vm_internals, int *layout,
                                        enum bp_fl_source *source)
{
    *source = BP_FL_NONE;
    *layout = vm_internals ? bp_sym_frame_layout_from(source) : -1;
    return vm_internals && *layout == 1 ? BP_WALK_FP : BP_WALK_LEAF;
}

static int bp_start_locked(struct bp_native *n, const struct bp_native_opts *o,
                           int vm_internals, const struct bp_channel *ch, void **foreign)
{
    if (n->retired)
        return BP_NATIVE_RETIRED;
    if (n->running)
        return BP_NATIVE_ALREADY;
    int rc = bp_ncap_install(n, n->also_ours, foreign);
    if (rc != 0)
        return rc > 0 ? BP_NATIVE_FOREIGN : BP_NATIVE_SIGACTION;
    if (n->run != NULL) { /* the previous run, stopped: its samples go */
        bp_ncap_run_free(n->run);
        n->run = NULL;
    }
    n->opts = *o;
    n->vm_internals = vm_internals;
    int layout;
    enum bp_fl_source source;
    n->opts.cap.jit_walk = (int)bp_walk_choose(vm_internals, &layout, &source);
    n->reads = !(o->hooks & BP_HOOK_DENY_READS) && bp_ncap_probe_reads() == 0;
    if (!n->reads) { /* every read would fail: read nothing, keep the leaf */
        n->opts.cap.stack_bytes = 0;
        n->opts.cap.jit_walk = BP_WALK_LEAF;
    }
    if (o->hooks & BP_HOOK_SLOW_START)
        bp_sleep_ms(BP_SLOW_START_MS);
    bp_channel_hold(n, ch);
    size_t count = ch->threads(ch->threads_ctx, n->sel, BP_THREADS_MAX);
    struct bp_ncap_run *run = bp_ncap_run_new(&n->opts.cap, count + BP_SPARE_SLOTS,
                                              ch->gate_closed);
    int errs = 0;
    size_t added = 0;
    n->started_ns = bp_now_ns(); /* before the thread's first gate reading */
    if (run != NULL) {
        bp_refresh_ranges(n, run);
        bp_ncap_activate(run);
        added = bp_sync_threads(n, run, &errs);
    }
    if (run == NULL || added == 0 || bp_thread_start(n, run) != 0) {
        if (run != NULL) {
            bp_ncap_deactivate(run);
            bp_ncap_run_free(run);
        }
        bp_channel_drop(n);
        return run != NULL && added == 0 ? (errs > 0 ? BP_NATIVE_TIMERS : BP_NATIVE_NO_THREADS)
                                         : BP_NATIVE_ENOMEM;
    }
    n->run = run;
    n->running = 1;
    atomic_store(&n->drain_ns, 0);
    atomic_store(&n->rescan_ns, 0);
    n->drained = 0;
    n->stopped_ns = 0;
    bp_cache_store(n);
    return BP_NATIVE_OK;
}

int bp_native_start(struct bp_native *n, const struct bp_native_opts *o, int vm_internals,
                    const struct bp_channel *ch, void **foreign)
{
    pthread_mutex_lock(&n->ctl);
    int rc = bp_start_locked(n, o, vm_internals != 0, ch, foreign);
    pthread_mutex_unlock(&n->ctl);
    return rc;
}

static void bp_stop_locked(struct bp_native *n)
{
    if (!n->running)
        return;
    bp_thread_stop(n);
    bp_gate_account(n, n->run); /* the thread is gone: the last stretch */
    bp_ncap_deactivate(n->run);
    bp_channel_drop(n); /* no rescan and no handler left to use it */
    n->running = 0;
    n->stopped_ns = bp_now_ns();
    bp_cache_store(n);
}

void bp_native_stop(struct bp_native *n)
{
    pthread_mutex_lock(&n->ctl);
    bp_stop_locked(n);
    pthread_mutex_unlock(&n->ctl);
}

void bp_native_handover(struct bp_native *n, struct bp_native_carry *carry)
{
    struct bp_native_carry c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.abi = 2;
    c.handler = bp_ncap_handler_addr();
    if (n != NULL) {
        pthread_mutex_lock(&n->ctl);
        c.was_running = n->running;
        c.opts = n->opts;
        c.vm_internals = n->vm_internals;
        bp_stop_locked(n);
        n->retired = 1;
        pthread_mutex_unlock(&n->ctl);
    }
    uint32_t caller_size = carry->size;
    memcpy(carry, &c, caller_size < sizeof c ? caller_size : sizeof c);
    carry->size = caller_size;
}

void bp_native_adopt(struct bp_native *n, const struct bp_native_carry *carry)
{
    pthread_mutex_lock(&n->ctl);
    n->also_ours = carry->handler;
    pthread_mutex_unlock(&n->ctl);
}

void bp_native_free(struct bp_native *n)
{
    if (n == NULL)
        return;
    bp_native_stop(n);
    bp_ncap_release(n);
    bp_ncap_run_free(n->run);
    pthread_mutex_destroy(&n->ctl);
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->cache_lock);
    pthread_cond_destroy(&n->cond);
    free(n->ranges_tmp);
    free(n->sel);
    free(n->cache);
    free(n);
}

/* ---------------------------------------------------------------- drain */

/* The ring holding the oldest record, or NULL when all are empty. */
static const struct bp_nsample *bp_oldest(struct bp_ncap_run *run, size_t *slot)
{
    const struct bp_nsample *best = NULL;
    size_t ns = atomic_load(&run->nslots);
    for (size_t i = 0; i < ns; i++) {
        const struct bp_nring_hdr *h = bp_nring_peek(&run->slots[i].ring);
        const struct bp_nsample *s = (const struct bp_nsample *)(const void *)h;
        if (s != NULL && (best == NULL || s->seq < best->seq)) {
            best = s;
            *slot = i;
        }
    }
    return best;
}

/* The frames between the frame pointer at.bp, where the unwind of a C
 * sample reached JIT code, and fp_start, where the captured Erlang chain
 * starts, walked through the words the handler copied just below fp_start
 * (bp_nsample_stitch). Writes their return addresses (innermost first) to
 * out, at most max; returns the count, or -1 when at.bp does not lead to
 * fp_start inside the copy. */
static int bp_stitch(const struct bp_nsample *s, const struct bp_ranges_buf *rb, uint64_t fp,
                     uint64_t *out, int max)
{
    const uint8_t *w = bp_nsample_stitch(s);
    uint64_t lo = s->fp_start - s->stitch_len;
    int n = 0;
    while (fp != s->fp_start) {
        uint64_t frame[2];
        if (n >= max || (fp & 7u) != 0 || fp < lo || fp > s->fp_start - 16)
            return -1;
        memcpy(frame, w + (fp - lo), sizeof frame);
        if (frame[0] <= fp || bp_ranges_kind(rb, frame[1]) != BP_RANGE_JIT)
            return -1;
        out[n++] = frame[1];
        fp = frame[0];
    }
    return n;
}

/* Frames of one record, leaf first, at most max (2 or more), and whether
 * the stack is complete (*truncated):
 *   BP_TRUNC_NO       complete: the walk ended at a saved frame pointer of
 *                     0 (the Erlang chain's end), the unwind reached the
 *                     thread's outermost frame (start_thread/clone), or it
 *                     reached JIT code whose frames join the captured chain;
 *   BP_TRUNC_YES      something is missing: the depth cap, an unwind error
 *                     (the copied window too short, garbage), code without
 *                     unwind info that is not JIT code, or a chain that does
 *                     not join the unwind (the C frames are kept, the chain
 *                     is not: it cannot be verified);
 *   BP_TRUNC_UNROOTED JIT code was reached but no Erlang chain was found (or
 *                     none was looked for: BP_WALK_LEAF):
 *                     complete when that code is the scheduler loop
 *                     ($global::process_main, no process running), else an
 *                     Erlang chain was expected and is missing. Only names
 *                     tell, so the collector decides after symbolizing. */
enum { BP_TRUNC_NO = 0, BP_TRUNC_YES = 1, BP_TRUNC_UNROOTED = 2 };

static int bp_frames_of(struct bp_ncap_run *run, const struct bp_nsample *s, uint64_t *out,
                        int max, int *truncated)
{
    const uint64_t *addrs = bp_nsample_addrs(s);
    int n = 0;
    *truncated = BP_TRUNC_NO;
    if (s->flags & BP_NS_JIT) {
        out[n++] = s->regs.ip;
        if (s->flags & BP_NS_DEPTH) /* set by the JIT walk only */
            *truncated = BP_TRUNC_YES;
        else if ((s->flags & (BP_NS_WALKED | BP_NS_LEAF)) && !(s->flags & BP_NS_FP_END))
            *truncated = BP_TRUNC_UNROOTED; /* the leaf alone: complete in the loop only */
    } else {
        struct bp_regs at;
        memset(&at, 0, sizeof at);
        int why = BP_UNWIND_ERROR;
        n = s->stack_len > 0 ? bp_unwind_copy_ex(&s->regs, bp_nsample_stack(s), s->regs.sp,
                                                 s->stack_len, out, max - 1, &at, &why)
                             : 0;
        if (n <= 0) {
            out[0] = s->regs.ip;
            n = 1;
            at = s->regs;
            why = BP_UNWIND_ERROR;
        }
        if (why == BP_UNWIND_END)
            return n; /* the thread's first frame: a chain found is stale */
        const struct bp_ranges_buf *rb = bp_ranges_enter(run->ranges);
        int at_jit = why == BP_UNWIND_NO_INFO && bp_ranges_kind(rb, at.ip) == BP_RANGE_JIT;
        int chain = (s->flags & BP_NS_FP_END) && s->nfp > 0;
        /* The JIT zeroes its frame pointer when it leaves a process (the
         * scheduler loop calls into C with bp 0): an unwind that reaches
         * JIT code with bp 0 says no Erlang chain is live, so a chain the
         * handler found is a stale copy of some other process's. */
        if (at_jit && at.bp == 0)
            chain = 0;
        if (at_jit && out[n - 1] != at.ip && n < max)
            out[n++] = at.ip;
        /* A chain that the unwind does not join is left out: nothing says
         * it is this sample's (the handler may have found it from a dead
         * word of the window). */
        if (!at_jit) {
            *truncated = BP_TRUNC_YES; /* unwind error, depth, or code without CFI */
            chain = 0;
        } else if (!chain) {
            *truncated = BP_TRUNC_UNROOTED;
        } else if (at.bp != s->fp_start) {
            int k = bp_stitch(s, rb, at.bp, out + n, max - n);
            if (k < 0) {
                *truncated = BP_TRUNC_YES; /* the chain does not join the unwind */
                chain = 0;
            } else {
                n += k;
            }
        }
        bp_ranges_leave(rb);
        if (!chain)
            return n;
    }
    for (int i = 0; i < (int)s->nfp && n < max; i++)
        out[n++] = addrs[i];
    if (n == max)
        *truncated = BP_TRUNC_YES;
    return n;
}

static ERL_NIF_TERM bp_kind_atom(int kind)
{
    if (kind == BP_THREAD_DIRTY_CPU)
        return bp_native_atom.dirty_cpu;
    if (kind == BP_THREAD_DIRTY_IO)
        return bp_native_atom.dirty_io;
    return bp_native_atom.normal;
}

static ERL_NIF_TERM bp_sample_term(ErlNifEnv *env, struct bp_ncap_run *run,
                                   const struct bp_nsample *s, uint64_t *frames, int max)
{
    int truncated = 0;
    int n = bp_frames_of(run, s, frames, max, &truncated);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (int i = n; i-- > 0;)
        list = enif_make_list_cell(env, enif_make_uint64(env, frames[i]), list);
    const struct bp_ncap_slot *slot = &run->slots[s->slot];
    ERL_NIF_TERM e[5] = {bp_kind_atom(slot->kind), enif_make_uint(env, slot->index),
                         enif_make_uint(env, s->weight),
                         truncated == BP_TRUNC_NO    ? bp_native_atom.false
                         : truncated == BP_TRUNC_YES ? bp_native_atom.true
                                                     : bp_native_atom.unrooted,
                         list};
    return enif_make_tuple_from_array(env, e, 5);
}

ERL_NIF_TERM bp_native_drain(struct bp_native *n, ErlNifEnv *env, unsigned max)
{
    ERL_NIF_TERM acc = enif_make_list(env, 0);
    uint64_t *frames = malloc((BP_NCAP_MAX_DEPTH + 2) * sizeof *frames);
    if (frames == NULL)
        return acc;
    unsigned done = 0;
    int more = 1;
    uint64_t c0 = bp_threads_self_cpu_ns();
    while (more && done < max) {
        pthread_mutex_lock(&n->ctl);
        struct bp_ncap_run *run = n->run;
        for (unsigned b = 0; run != NULL && b < BP_DRAIN_BATCH && done < max; b++) {
            size_t slot;
            const struct bp_nsample *s = bp_oldest(run, &slot);
            if (s == NULL) {
                more = 0;
                break;
            }
            int limit = (int)run->cfg.depth;
            acc = enif_make_list_cell(env, bp_sample_term(env, run, s, frames, limit), acc);
            bp_nring_pop(&run->slots[slot].ring, &s->h);
            n->drained++;
            done++;
        }
        if (run == NULL)
            more = 0;
        if (!more || done >= max)
            bp_cache_store(n);
        pthread_mutex_unlock(&n->ctl);
    }
    free(frames);
    atomic_fetch_add(&n->drain_ns, bp_threads_self_cpu_ns() - c0);
    ERL_NIF_TERM list;
    enif_make_reverse_list(env, acc, &list);
    return list;
}

/* ---------------------------------------------------------------- stats */

/* The run's statistics. ctl held. */
static void bp_stats_run(struct bp_native *n, struct bp_native_stats_run *st)
{
    memset(st, 0, sizeof *st);
    st->running = n->running;
    st->hz = n->opts.cap.hz;
    st->gate_hz = n->opts.cap.gate_hz;
    st->depth = n->opts.cap.depth;
    st->stack_bytes = n->opts.cap.stack_bytes;
    st->ring_bytes = n->opts.cap.ring_bytes;
    st->kinds = n->opts.kinds;
    st->reads = n->reads;
    st->drained = n->drained;
    st->rescans = atomic_load(&n->rescans);
    st->drain_ns = atomic_load(&n->drain_ns);
    st->rescan_ns = atomic_load(&n->rescan_ns);
    struct bp_ncap_run *run = n->run;
    if (run == NULL)
        return;
    size_t ns = atomic_load(&run->nslots);
    for (size_t i = 0; i < ns; i++) {
        struct bp_ncap_slot *s = &run->slots[i];
        if (n->running)
            bp_ncap_refresh_cpu(s);
        st->samples += atomic_load(&s->samples);
        st->weighted += atomic_load(&s->weighted);
        st->dropped += atomic_load(&s->dropped);
        st->thinned += atomic_load(&s->thinned);
        st->gated += atomic_load(&s->gated);
        st->lost_weight += atomic_load(&s->lost_weight);
        st->handler_ns += atomic_load(&s->handler_ns);
        st->jit_walks += atomic_load(&s->walks);
        st->cpu_ns += s->cpu_last - s->cpu_start;
        st->threads += atomic_load(&s->state) == BP_SLOT_ACTIVE && n->running;
        st->pending += bp_nring_used(&s->ring);
    }
    st->slots = ns;
    st->gate_closed_ns = atomic_load(&n->gate_closed_ns);
    int64_t end = n->running ? bp_now_ns() : n->stopped_ns;
    st->wall_ns = (uint64_t)(end - n->started_ns);
}

/* Refreshes the copy info answers while ctl is held elsewhere. ctl held. */
static void bp_cache_store(struct bp_native *n)
{
    struct bp_native_stats_run st;
    bp_stats_run(n, &st);
    pthread_mutex_lock(&n->cache_lock);
    *n->cache = st;
    pthread_mutex_unlock(&n->cache_lock);
}

void bp_native_stats(struct bp_native *n, int vm_internals, struct bp_native_stats *st)
{
    memset(st, 0, sizeof *st);
    enum bp_fl_source src;
    st->jit_walk = (int)bp_walk_choose(vm_internals, &st->frame_pointers, &src);
    st->frame_layout_source = (int)src;
    st->internal_reads = bp_sym_internal_reads();
    st->stray = bp_ncap_stray_total();
    st->r.reads = -1;
    if (n == NULL)
        return;
    if (pthread_mutex_trylock(&n->ctl) == 0) {
        bp_stats_run(n, &st->r);
        pthread_mutex_lock(&n->cache_lock);
        *n->cache = st->r;
        pthread_mutex_unlock(&n->cache_lock);
        pthread_mutex_unlock(&n->ctl);
        return;
    }
    pthread_mutex_lock(&n->cache_lock);
    st->r = *n->cache;
    pthread_mutex_unlock(&n->cache_lock);
    st->cached = 1;
}
