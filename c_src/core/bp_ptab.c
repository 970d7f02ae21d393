/* bp_ptab.c - finding and walking the VM's process table; see bp_ptab.h. */
#include "bp_ptab.h"

#include <string.h>

static uint64_t u64_at(const uint8_t *p, size_t off)
{
    uint64_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static uint32_t u32_at(const uint8_t *p, size_t off)
{
    uint32_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static int is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static uint32_t log2_u64(uint64_t pow2)
{
    return (uint32_t)__builtin_ctzll(pow2);
}

/* The two layouts of the read-only part seen so far, from offset o: tab,
 * free_id_data, max (32 bits), then the masks and shifts that map data to
 * a slot, the masks that map data to a free-list index ("dix"), and later
 * on the invalid element followed by its data (all bits of an id's data).
 *   ERTS 13 and before (OTP 25): 28-bit id data, masks of 32 bits in the
 *     order pix_mask, cl_mask, cl_shift, cli_mask, cli_shift; a pid word
 *     holds its data, and the slot is computed from it.
 *   ERTS 14 and later (OTP 26+, 60-bit pids): masks of 64 bits, in the
 *     order pix_mask, cl_mask, cli_mask, then the two 32-bit shifts; a pid
 *     word holds the slot in its low bits (the "pixdata").
 * Offsets are from o; a mask is read as 32 or 64 bits (mask_bytes). */
struct layout {
    enum bp_ptab_layout id;
    unsigned mask_bytes;
    size_t pix_mask, cl_mask, cl_shift, cli_mask, cli_shift, masks_end;
    uint64_t invalid_data;
};

static const struct layout layouts[] = {
    {BP_PTAB_DATA28, 4, 20, 24, 28, 32, 36, 40, BP_PTAB_INVALID_DATA},
    {BP_PTAB_DATA60, 8, 24, 32, 48, 40, 52, 56, BP_PTAB_INVALID_DATA60},
};

/* Words after the masks within which the invalid element must sit (the
 * "dix" masks come first). */
#define BP_PTAB_INVALID_WINDOW 64

static uint64_t mask_at(const uint8_t *hdr, size_t off, unsigned bytes)
{
    return bytes == 8 ? u64_at(hdr, off) : u32_at(hdr, off);
}

/* The invalid element: exactly one nonzero word followed by the layout's
 * invalid data within the window after the masks; 0 otherwise. */
static uint64_t invalid_at(const uint8_t *hdr, size_t len, size_t from, uint64_t data)
{
    int invalids = 0;
    uint64_t invalid = 0;
    for (size_t j = from + 8; j + 8 <= len && j <= from + BP_PTAB_INVALID_WINDOW; j += 8) {
        if (u64_at(hdr, j) == data && u64_at(hdr, j - 8) != 0) {
            invalid = u64_at(hdr, j - 8);
            invalids++;
        }
    }
    return invalids == 1 ? invalid : 0;
}

/* The read-only part in layout l at offset o, or -1. */
static int match_at(const uint8_t *hdr, size_t len, size_t o, uint32_t limit,
                    const struct layout *l, struct bp_ptab *m)
{
    if (o + l->masks_end > len)
        return -1;
    uint64_t tab = u64_at(hdr, o), free_ids = u64_at(hdr, o + 8);
    if (tab == 0 || (tab & 7) != 0 || free_ids == 0 || u32_at(hdr, o + 16) != limit ||
        mask_at(hdr, o + l->pix_mask, l->mask_bytes) != limit - 1)
        return -1;
    uint64_t cl_mask = mask_at(hdr, o + l->cl_mask, l->mask_bytes);
    uint64_t cli_mask = mask_at(hdr, o + l->cli_mask, l->mask_bytes);
    uint64_t cl_shift = u32_at(hdr, o + l->cl_shift), cli_shift = u32_at(hdr, o + l->cli_shift);
    if (cl_mask >= limit || cli_mask >= limit || !is_pow2(cl_mask + 1) ||
        !is_pow2(cli_mask + 1) || (cl_mask + 1) * (cli_mask + 1) != limit ||
        cl_shift != log2_u64(cli_mask + 1) || cli_shift != log2_u64(cl_mask + 1))
        return -1;
    uint64_t invalid = invalid_at(hdr, len, o + l->masks_end, l->invalid_data);
    if (invalid == 0)
        return -1;
    *m = (struct bp_ptab){.tab = tab, .invalid = invalid, .max = limit, .layout = l->id,
                          .pix_mask = limit - 1, .cl_mask = (uint32_t)cl_mask,
                          .cl_shift = (uint32_t)cl_shift, .cli_mask = (uint32_t)cli_mask,
                          .cli_shift = (uint32_t)cli_shift};
    return 0;
}

int bp_ptab_locate(const uint8_t *hdr, size_t len, uint32_t limit, struct bp_ptab *out)
{
    if (hdr == NULL || out == NULL || limit < 2 || !is_pow2(limit))
        return -1;
    int found = 0;
    struct bp_ptab m, first;
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        for (size_t o = 0; o + 8 <= len; o += 8)
            if (match_at(hdr, len, o, limit, &layouts[i], &m) == 0 && found++ == 0)
                first = m;
    if (found != 1)
        return -1;
    *out = first;
    return 0;
}

/* ERTS spreads consecutive data over cache lines: the low bits pick the
 * cache line, the high bits the word within it. Since ERTS 14 the id holds
 * the result (its low bits are the slot). */
uint32_t bp_ptab_pix(const struct bp_ptab *t, uint64_t data)
{
    if (t->layout == BP_PTAB_DATA60)
        return (uint32_t)(data & t->pix_mask);
    uint32_t n = (uint32_t)data & t->pix_mask;
    return ((n & t->cl_mask) << t->cl_shift) | ((n >> t->cli_shift) & t->cli_mask);
}

int bp_ptab_mapped(const struct bp_ptab *t, bp_ptab_read_fn read)
{
    uint64_t first, last;
    return read(&first, t->tab, 8) == 0 && read(&last, t->tab + ((uint64_t)t->max - 1) * 8, 8) == 0
               ? 0 : -1;
}

int bp_ptab_check(const struct bp_ptab *t, uint64_t id, bp_ptab_read_fn read)
{
    uint64_t el, got;
    uint32_t pix = bp_ptab_pix(t, id >> BP_PTAB_DATA_SHIFT);
    if (pix >= t->max || read(&el, t->tab + (uint64_t)pix * 8, 8) != 0)
        return -1;
    if (el == 0 || el == t->invalid || read(&got, el, 8) != 0)
        return -1;
    return got == id ? 0 : -1;
}

/* Slots are read a block at a time: the block's elements are prefetched
 * before their ids are read (each is a cache miss on a large table). */
#define BP_PTAB_BLOCK 32

size_t bp_ptab_walk(const struct bp_ptab *t, uint32_t from, uint32_t n, uint64_t tag,
                    uint64_t *out, uint32_t *next)
{
    const uint64_t *slots = (const uint64_t *)(uintptr_t)t->tab;
    uint32_t end = from >= t->max ? t->max : (n > t->max - from ? t->max : from + n);
    size_t k = 0;
    for (uint32_t i = from; i < end;) {
        const uint64_t *els[BP_PTAB_BLOCK];
        int m = 0;
        for (uint32_t stop = end - i > BP_PTAB_BLOCK ? i + BP_PTAB_BLOCK : end; i < stop; i++) {
            uint64_t e = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
            if (e != 0 && e != t->invalid) {
                els[m] = (const uint64_t *)(uintptr_t)e;
                __builtin_prefetch(els[m]);
                m++;
            }
        }
        for (int j = 0; j < m; j++) {
            uint64_t id = __atomic_load_n(els[j], __ATOMIC_RELAXED);
            if ((id & 0xf) == (tag & 0xf))
                out[k++] = id;
        }
    }
    *next = end > from ? end : from;
    return k;
}
