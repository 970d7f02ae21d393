/* bp_scan.c - top-K, histogram, id buffer and window table (see bp_scan.h). */
#include "bp_scan.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ------------------------------------------------------------- top-K */

int bp_topk_init(struct bp_topk *t, uint32_t k)
{
    memset(t, 0, sizeof *t);
    if (k < 1 || k > BP_TOPK_MAX)
        return -1;
    t->heap = calloc(k, sizeof *t->heap);
    if (t->heap == NULL)
        return -1;
    t->k = k;
    return 0;
}

void bp_topk_destroy(struct bp_topk *t)
{
    free(t->heap);
    memset(t, 0, sizeof *t);
}

/* a ranks below b: smaller value, or equal value and inserted later. */
static int below(const struct bp_topk_entry *a, const struct bp_topk_entry *b)
{
    return a->value < b->value || (a->value == b->value && a->seq > b->seq);
}

static void swap(struct bp_topk_entry *a, struct bp_topk_entry *b)
{
    struct bp_topk_entry x = *a;
    *a = *b;
    *b = x;
}

static void sift_up(struct bp_topk_entry *h, uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!below(&h[i], &h[parent]))
            return;
        swap(&h[i], &h[parent]);
        i = parent;
    }
}

static void sift_down(struct bp_topk_entry *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && below(&h[l], &h[m]))
            m = l;
        if (r < n && below(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        swap(&h[i], &h[m]);
        i = m;
    }
}

int bp_topk_offer(struct bp_topk *t, int64_t value, uint64_t id, uint64_t *evicted)
{
    struct bp_topk_entry e = {value, t->seq, id};
    if (t->n < t->k) {
        t->seq++;
        t->heap[t->n] = e;
        sift_up(t->heap, t->n++);
        return 1;
    }
    if (value <= t->heap[0].value)
        return 0;
    t->seq++;
    *evicted = t->heap[0].id;
    t->heap[0] = e;
    sift_down(t->heap, t->n, 0);
    return 2;
}

int64_t bp_topk_floor(const struct bp_topk *t)
{
    return t->n < t->k ? INT64_MIN : t->heap[0].value;
}

static int rank_cmp(const void *pa, const void *pb)
{
    const struct bp_topk_entry *a = pa, *b = pb;
    if (a->value != b->value)
        return a->value > b->value ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

uint32_t bp_topk_sorted(const struct bp_topk *t, struct bp_topk_entry *out)
{
    if (t->n > 0)
        memcpy(out, t->heap, t->n * sizeof *out);
    qsort(out, t->n, sizeof *out, rank_cmp);
    return t->n;
}

/* --------------------------------------------------------- histogram */

void bp_hist_init(struct bp_hist *h)
{
    memset(h, 0, sizeof *h);
}

uint32_t bp_hist_index(uint64_t v)
{
    if (v < 2 * BP_HIST_SUB)
        return (uint32_t)v;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t shift = msb - BP_HIST_SUB_BITS;
    uint32_t mant = (uint32_t)(v >> shift); /* in [SUB, 2 * SUB) */
    return (shift + 1u) * BP_HIST_SUB + (mant - BP_HIST_SUB);
}

uint64_t bp_hist_lower(uint32_t idx)
{
    if (idx < 2 * BP_HIST_SUB)
        return idx;
    uint32_t shift = idx / BP_HIST_SUB - 1u;
    uint64_t mant = BP_HIST_SUB + idx % BP_HIST_SUB;
    return mant << shift;
}

uint64_t bp_hist_upper(uint32_t idx)
{
    if (idx < 2 * BP_HIST_SUB)
        return idx;
    uint32_t shift = idx / BP_HIST_SUB - 1u;
    uint64_t mant = BP_HIST_SUB + idx % BP_HIST_SUB;
    /* For the last bucket (mant + 1) << shift is 2^64, which wraps to 0 in
     * unsigned arithmetic (shift < 64): minus one gives UINT64_MAX. */
    return ((mant + 1u) << shift) - 1u;
}

void bp_hist_add(struct bp_hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (h->count == 0 || v > h->max)
        h->max = v;
    h->count++;
    h->sum = h->sum > UINT64_MAX - v ? UINT64_MAX : h->sum + v;
    h->buckets[bp_hist_index(v)]++;
}

uint64_t bp_hist_percentile(const struct bp_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (!(p >= 0.0))
        p = 0.0;
    if (p > 100.0)
        p = 100.0;
    double exact = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < BP_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bp_hist_upper(i);
            if (v > h->max)
                v = h->max;
            return v < h->min ? h->min : v;
        }
    }
    return h->max; /* not reached: the buckets sum to count */
}

/* --------------------------------------------------------- id buffer */

/* The ids live in pages of their own, grown by moving the pages (mremap),
 * never by copying them: at 250k-500k processes a realloc that copied 2-4 MiB
 * held a scheduler 1.5-1.9 ms inside one table-walk call. Under
 * AddressSanitizer they stay on the malloc heap, where its checks apply. */
#if defined(__SANITIZE_ADDRESS__)
#define BP_IDBUF_PAGES 0
#else
#define BP_IDBUF_PAGES 1
#endif

static uint64_t *ids_resize(uint64_t *ids, size_t capacity, size_t cap)
{
#if BP_IDBUF_PAGES
    void *p = ids != NULL
        ? mremap(ids, capacity * sizeof *ids, cap * sizeof *ids, MREMAP_MAYMOVE)
        : mmap(NULL, cap * sizeof *ids, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
    return p == MAP_FAILED ? NULL : p;
#else
    (void)capacity;
    return realloc(ids, cap * sizeof *ids);
#endif
}

void bp_block_free(struct bp_block *b)
{
    if (b->p != NULL) {
#if BP_IDBUF_PAGES
        if (b->pages)
            munmap(b->p, b->bytes);
        else
            free(b->p);
#else
        free(b->p);
#endif
    }
    memset(b, 0, sizeof *b);
}

static void ids_free(uint64_t *ids, size_t capacity)
{
#if BP_IDBUF_PAGES
    if (ids != NULL)
        munmap(ids, capacity * sizeof *ids);
#else
    (void)capacity;
    free(ids);
#endif
}

void bp_idbuf_init(struct bp_idbuf *b)
{
    memset(b, 0, sizeof *b);
}

void bp_idbuf_destroy(struct bp_idbuf *b)
{
    ids_free(b->ids, b->capacity);
    memset(b, 0, sizeof *b);
}

void bp_idbuf_detach(struct bp_idbuf *b, struct bp_block *out)
{
    out->p = b->ids;
    out->bytes = b->capacity * sizeof *b->ids;
    out->pages = BP_IDBUF_PAGES;
    memset(b, 0, sizeof *b);
}

int bp_idbuf_reserve(struct bp_idbuf *b, size_t n)
{
    if (n > BP_IDBUF_MAX || b->size > BP_IDBUF_MAX - n)
        return -1;
    size_t need = b->size + n;
    if (need <= b->capacity)
        return 0;
    size_t cap = b->capacity ? b->capacity : 1024; /* 8 KiB: whole pages from here on */
    while (cap < need)
        cap *= 2;
    uint64_t *ids = ids_resize(b->ids, b->capacity, cap);
    if (ids == NULL)
        return -1;
    b->ids = ids;
    b->capacity = cap;
    return 0;
}

void bp_idbuf_push(struct bp_idbuf *b, uint64_t id)
{
    b->ids[b->size++] = id;
}

uint64_t *bp_idbuf_spare(struct bp_idbuf *b)
{
    return b->ids + b->size;
}

void bp_idbuf_added(struct bp_idbuf *b, size_t n)
{
    b->size += n;
}

size_t bp_idbuf_take(struct bp_idbuf *b, size_t max, const uint64_t **out)
{
    size_t n = b->size - b->cursor;
    if (n > max)
        n = max;
    *out = b->ids + b->cursor;
    b->cursor += n;
    return n;
}

/* ------------------------------------------------------ window table */

void bp_window_init(struct bp_window *w, bp_id_eq eq)
{
    memset(w, 0, sizeof *w);
    w->eq = eq;
}

static void wtab_free(struct bp_wtab *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}

void bp_window_destroy(struct bp_window *w)
{
    wtab_free(&w->t[0]);
    wtab_free(&w->t[1]);
    bp_block_free(&w->dropped[0]);
    bp_block_free(&w->dropped[1]);
}

static void wtab_detach(struct bp_wtab *t, struct bp_block *out)
{
    out->p = t->slots;
    out->bytes = t->slots ? ((size_t)t->mask + 1) * sizeof *t->slots : 0;
    out->pages = 0;
    memset(t, 0, sizeof *t);
}

void bp_window_detach(struct bp_window *w, struct bp_block out[4])
{
    wtab_detach(&w->t[0], &out[0]);
    wtab_detach(&w->t[1], &out[1]);
    out[2] = w->dropped[0];
    out[3] = w->dropped[1];
    memset(w->dropped, 0, sizeof w->dropped);
}

void bp_window_take_dropped(struct bp_window *w, struct bp_block out[2])
{
    out[0] = w->dropped[0];
    out[1] = w->dropped[1];
    memset(w->dropped, 0, sizeof w->dropped);
}

/* Lets a table's slots go: freed now, or kept in a free dropped slot for
 * the caller (keep_dropped); a dropped slot still taken is freed first. */
static void wtab_drop(struct bp_window *w, struct bp_wtab *t)
{
    if (!w->keep_dropped) {
        wtab_free(t);
        return;
    }
    struct bp_block *d = w->dropped[0].p == NULL ? &w->dropped[0] : &w->dropped[1];
    bp_block_free(d);
    wtab_detach(t, d);
}

/* Capacity for `expected` entries at a load of at most 2/3. */
static size_t wtab_capacity(size_t expected)
{
    size_t cap = 64;
    while (cap < expected + expected / 2 + 1)
        cap *= 2;
    return cap;
}

/* Gives t a fresh zeroed array of cap slots (calloc: large arrays come
 * zeroed from mmap, so this does not touch every page now). */
static int wtab_alloc(struct bp_window *w, struct bp_wtab *t, size_t cap)
{
    struct bp_wslot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    uint32_t gen = t->gen, used = t->used;
    wtab_drop(w, t);
    t->gen = gen;
    t->used = used;
    t->slots = slots;
    t->mask = (uint32_t)(cap - 1);
    return 0;
}

int bp_window_begin(struct bp_window *w, size_t expected)
{
    if (expected > BP_WINDOW_EXPECT_MAX)
        expected = BP_WINDOW_EXPECT_MAX;
    uint32_t gen = w->gen + 1;
    if (gen > BP_WINDOW_GEN_MAX) {
        wtab_drop(w, &w->t[0]);
        wtab_drop(w, &w->t[1]);
        gen = 1;
    }
    struct bp_wtab *t = &w->t[gen & 1];
    size_t want = wtab_capacity(expected);
    size_t have = t->slots ? (size_t)t->mask + 1 : 0;
    /* Regrow when too small; shrink when 8x too large. A reused array keeps
     * stale slots: their stamp is not the new generation's, so they read as
     * empty. */
    if (have < want || have > 8 * want) {
        if (wtab_alloc(w, t, want) != 0)
            return -1;
    }
    t->gen = gen;
    t->used = 0;
    w->gen = gen;
    return (int)(gen & 1);
}

static int same(const struct bp_window *w, const struct bp_wslot *s, uint64_t id,
                uint32_t hash)
{
    return s->hash == hash && (s->id == id || (w->eq != NULL && w->eq(s->id, id)));
}

/* The slot holding id in t (generation t->gen), or the empty slot where it
 * would go, or NULL when t has no slots or is full along the probe. */
static struct bp_wslot *wtab_probe(const struct bp_window *w, const struct bp_wtab *t,
                                   uint64_t id, uint32_t hash)
{
    if (t->slots == NULL || t->gen == 0)
        return NULL;
    for (uint32_t i = 0, pos = hash & t->mask; i <= t->mask; i++, pos = (pos + 1) & t->mask) {
        struct bp_wslot *s = &t->slots[pos];
        if ((s->tag >> 4) != t->gen || same(w, s, id, hash))
            return s;
    }
    return NULL;
}

void bp_window_prefetch(const struct bp_window *w, uint32_t hash)
{
    for (int i = 0; i < 2; i++) {
        const struct bp_wtab *t = &w->t[i];
        if (t->slots != NULL)
            __builtin_prefetch(&t->slots[hash & t->mask], 1);
    }
}

int bp_window_previous(const struct bp_window *w, uint64_t id, uint32_t hash, uint64_t *value,
                       uint64_t *aux)
{
    if (w->gen < 2)
        return 0;
    const struct bp_wtab *prev = &w->t[(w->gen - 1) & 1];
    if (prev->gen != w->gen - 1)
        return 0;
    const struct bp_wslot *p = wtab_probe(w, prev, id, hash);
    if (p == NULL || (p->tag >> 4) != prev->gen)
        return 0;
    *value = p->value;
    *aux = p->aux;
    return 1;
}

int bp_window_update(struct bp_window *w, uint64_t id, uint32_t hash, uint64_t value,
                     unsigned flags, uint64_t aux, uint64_t *delta, unsigned *prev_flags,
                     int *inserted)
{
    *delta = 0;
    *prev_flags = 0;
    *inserted = 0;
    if (w->gen == 0)
        return -1;
    int found = 0;
    const struct bp_wtab *prev = &w->t[(w->gen - 1) & 1];
    if (w->gen > 1 && prev->gen == w->gen - 1) {
        const struct bp_wslot *p = wtab_probe(w, prev, id, hash);
        found = p != NULL && (p->tag >> 4) == prev->gen;
        if (found) {
            *prev_flags = p->tag & BP_WINDOW_FLAGS;
            *delta = value >= p->value ? value - p->value : value;
        } else {
            *delta = value;
        }
    }
    struct bp_wtab *cur = &w->t[w->gen & 1];
    struct bp_wslot *s = wtab_probe(w, cur, id, hash);
    if (s == NULL || ((s->tag >> 4) != cur->gen && (cur->used + 1) * 4 > (cur->mask + 1) * 3)) {
        w->overflow++;
        return -1;
    }
    if ((s->tag >> 4) != cur->gen) {
        s->id = id;
        s->hash = hash;
        cur->used++;
        *inserted = 1;
    }
    s->value = value;
    s->aux = aux;
    s->tag = (cur->gen << 4) | (flags & BP_WINDOW_FLAGS);
    return found;
}
