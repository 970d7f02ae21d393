/* bp_recorder.c - the recorder's tick record, encoded with ei. */
#include "bp_recorder.h"

#include <stdlib.h>
#include <string.h>

#include <ei.h>

#define BP_REC_BUF_START 8192
#define BP_TICK_FIXED_MAX 512u  /* version, the outer map, its keys and scalars */
#define BP_TICK_THREAD_MAX 64u  /* one #{kind, index, cpu}: at most 5+6+11+7+5+5+9 */

int bp_recorder_init(struct bp_recorder *rec)
{
    memset(rec, 0, sizeof *rec);
    atomic_init(&rec->active, 0);
    atomic_init(&rec->encode_failed, 0);
    atomic_init(&rec->tick_cpu_ns, 0);
    atomic_init(&rec->tick_calls, 0);
    memset(rec->prev_cpu, 0xff, sizeof rec->prev_cpu); /* -1 everywhere */
    rec->buf = malloc(BP_REC_BUF_START);
    if (rec->buf == NULL)
        return -1;
    rec->cap = BP_REC_BUF_START;
    if (bp_recfile_init(&rec->file) != 0) {
        free(rec->buf);
        rec->buf = NULL;
        return -1;
    }
    return 0;
}

void bp_recorder_destroy(struct bp_recorder *rec)
{
    atomic_store_explicit(&rec->active, 0, memory_order_release);
    bp_recfile_destroy(&rec->file);
    free(rec->buf);
    rec->buf = NULL;
}

int bp_recorder_open(struct bp_recorder *rec, const char *path, uint64_t ring_size,
                     uint64_t os_pid, int64_t since_us, int64_t now_us,
                     const void *first, size_t first_len, int *sys_errno,
                     enum bp_recfile_how *how)
{
    int rc = bp_recfile_open(&rec->file, path, ring_size, os_pid, since_us, now_us, first,
                             first_len, sys_errno, how);
    if (rc == BP_REC_OK)
        atomic_store_explicit(&rec->active, 1, memory_order_release);
    return rc;
}

void bp_recorder_close(struct bp_recorder *rec)
{
    atomic_store_explicit(&rec->active, 0, memory_order_release);
    bp_recfile_close(&rec->file);
}

int bp_recorder_append(struct bp_recorder *rec, const void *payload, size_t len)
{
    return bp_recfile_append(&rec->file, payload, len);
}

/* ------------------------------------------------------------ encoding */

static const char *const bp_kind_name[3] = {"normal", "dirty_cpu", "dirty_io"};

static const char *bp_reason_name(const struct bp_rec_tick *t)
{
    if (!t->gate_closed || t->reason == BP_REASON_NONE)
        return "none";
    if (t->reason == BP_REASON_MEMORY)
        return "memory";
    return t->blind ? "blind" : "scheduler";
}

/* One thread's CPU over the tick, as a fraction of one core; 0.0 on its
 * first reading. Updates prev. */
static double bp_thread_ratio(struct bp_recorder *rec, const struct bp_thread_cpu *c,
                              int64_t dw)
{
    int64_t *prev = &rec->prev_cpu[c->type][c->index - 1];
    int64_t now = (int64_t)c->cpu_ns, was = *prev;
    *prev = now;
    if (was < 0 || dw <= 0 || now < was)
        return 0.0;
    double r = (double)(now - was) / (double)dw;
    return r > 1.0 ? 1.0 : r;
}

/* Encodes the record at buf (NULL: only sizes it). n threads in rec->cpu,
 * their ratios in ratio[]. Returns 0 or -1; *idx is the size. */
static int bp_tick_encode(char *buf, int *idx, const struct bp_recorder *rec, size_t n,
                          const double *ratio, const struct bp_rec_tick *t)
{
    int rc = ei_encode_version(buf, idx) | ei_encode_map_header(buf, idx, 8) |
             ei_encode_atom(buf, idx, "kind") | ei_encode_atom(buf, idx, "tick") |
             ei_encode_atom(buf, idx, "threads");
    if (n > 0)
        rc |= ei_encode_list_header(buf, idx, (int)n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct bp_thread_cpu *c = &rec->cpu[i];
        rc |= ei_encode_map_header(buf, idx, 3) | ei_encode_atom(buf, idx, "kind") |
              ei_encode_atom(buf, idx, bp_kind_name[c->type]) |
              ei_encode_atom(buf, idx, "index") | ei_encode_ulong(buf, idx, c->index) |
              ei_encode_atom(buf, idx, "cpu") | ei_encode_double(buf, idx, ratio[i]);
    }
    rc |= ei_encode_empty_list(buf, idx) | ei_encode_atom(buf, idx, "demand") |
          ei_encode_double(buf, idx, t->demand) | ei_encode_atom(buf, idx, "rss") |
          ei_encode_ulonglong(buf, idx, t->rss) | ei_encode_atom(buf, idx, "memory_limit") |
          ei_encode_ulonglong(buf, idx, t->memory_limit) | ei_encode_atom(buf, idx, "gate") |
          ei_encode_atom(buf, idx, t->gate_closed ? "closed" : "open") |
          ei_encode_atom(buf, idx, "gate_reason") | ei_encode_atom(buf, idx, bp_reason_name(t)) |
          ei_encode_atom(buf, idx, "tick_ms") | ei_encode_double(buf, idx, t->tick_ms);
    return rc == 0 ? 0 : -1;
}

/* Grows the buffer to hold size bytes (bounded: BP_THREADS_MAX threads). */
static int bp_rec_reserve(struct bp_recorder *rec, size_t size)
{
    if (size <= rec->cap)
        return 0;
    if (size > BP_REC_PAYLOAD_MAX)
        return -1;
    char *b = realloc(rec->buf, size);
    if (b == NULL)
        return -1;
    rec->buf = b;
    rec->cap = size;
    return 0;
}

int bp_recorder_tick(struct bp_recorder *rec, struct bp_threads *threads, int64_t wall,
                     const struct bp_rec_tick *t)
{
    uint64_t t0 = bp_threads_self_cpu_ns();
    double *ratio = rec->ratio;
    size_t n = bp_threads_read_all(threads, rec->cpu, BP_THREADS_MAX);
    int64_t dw = rec->prev_wall > 0 ? wall - rec->prev_wall : 0;
    rec->prev_wall = wall;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct bp_thread_cpu *c = &rec->cpu[i];
        if ((unsigned)c->type > 2 || c->index < 1 || c->index > BP_REC_INDEX_MAX)
            continue;
        rec->cpu[k] = *c;
        ratio[k++] = bp_thread_ratio(rec, c, dw);
    }
    /* One pass into a buffer of at least the record's bound: every fixed
     * part fits in BP_TICK_FIXED_MAX bytes and each thread's map in
     * BP_TICK_THREAD_MAX (ei's sizes: a map header of 5 bytes, atoms of 2 +
     * length, a small integer of 2 or an integer of 5, a float of 9). */
    int idx = 0, rc = -100;
    if (bp_rec_reserve(rec, BP_TICK_FIXED_MAX + k * BP_TICK_THREAD_MAX) == 0 &&
        bp_tick_encode(rec->buf, &idx, rec, k, ratio, t) == 0 && idx > 0 &&
        (size_t)idx <= rec->cap)
        rc = bp_recfile_append(&rec->file, rec->buf, (size_t)idx);
    else
        atomic_fetch_add_explicit(&rec->encode_failed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rec->tick_cpu_ns, bp_threads_self_cpu_ns() - t0,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&rec->tick_calls, 1, memory_order_relaxed);
    return rc;
}
