/* bp_native_ring.c - SPSC ring of variable-length records (see bp_native_ring.h). */
#include "bp_native_ring.h"

#define BP_ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

int bp_nring_init(struct bp_nring *r, uint8_t *buf, size_t cap)
{
    if (buf == NULL || cap < 64 || (cap & (cap - 1)) != 0 || ((uintptr_t)buf & 7u) != 0)
        return -1;
    r->buf = buf;
    r->cap = cap;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

static struct bp_nring_hdr *bp_nring_at(struct bp_nring *r, uint64_t pos)
{
    return (struct bp_nring_hdr *)(void *)(r->buf + (pos & (r->cap - 1)));
}

void *bp_nring_reserve(struct bp_nring *r, size_t max_len, uint64_t *pos)
{
    size_t need = BP_ALIGN8(max_len);
    if (need < sizeof(struct bp_nring_hdr) || need > r->cap / 2)
        return NULL;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t off = (size_t)(head & (r->cap - 1));
    size_t pad = off + need > r->cap ? r->cap - off : 0;
    if (head + pad + need - tail > r->cap)
        return NULL;
    if (pad != 0) {
        /* Becomes visible with the commit's release store of head. */
        struct bp_nring_hdr *p = bp_nring_at(r, head);
        p->len = (uint32_t)pad;
        p->type = BP_NRING_PAD;
    }
    *pos = head + pad;
    return bp_nring_at(r, head + pad);
}

void bp_nring_commit(struct bp_nring *r, uint64_t pos, size_t len)
{
    struct bp_nring_hdr *h = bp_nring_at(r, pos);
    size_t n = BP_ALIGN8(len < sizeof *h ? sizeof *h : len);
    h->len = (uint32_t)n;
    h->type = BP_NRING_DATA;
    atomic_store_explicit(&r->head, pos + n, memory_order_release);
}

const struct bp_nring_hdr *bp_nring_peek(struct bp_nring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    while (tail != head) {
        const struct bp_nring_hdr *h = bp_nring_at(r, tail);
        if (h->type == BP_NRING_DATA)
            return h;
        tail += h->len; /* a pad record */
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    return NULL;
}

void bp_nring_pop(struct bp_nring *r, const struct bp_nring_hdr *h)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + h->len, memory_order_release);
}

size_t bp_nring_used(struct bp_nring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    return (size_t)(head - tail);
}
