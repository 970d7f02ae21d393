/* bp_native_walk.c - executable ranges, chunk cache and stack walkers (see
 * bp_native_walk.h). Nothing here dereferences a stack address itself: every read
 * of the sampled thread's memory goes through bp_mem's reader. */
#include "bp_native_walk.h"

#include <string.h>
#include <time.h>

/* ------------------------------------------------------------- ranges */

static int bp_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses a hex number at *p up to a non-hex character. */
static int bp_hex(const char **p, const char *end, uint64_t *v)
{
    uint64_t x = 0;
    int digits = 0;
    while (*p < end && bp_hexval(**p) >= 0 && digits < 16) {
        x = (x << 4) | (uint64_t)bp_hexval(**p);
        (*p)++;
        digits++;
    }
    *v = x;
    return digits > 0;
}

/* Skips n space-separated fields. */
static void bp_skip_fields(const char **p, const char *end, int n)
{
    for (int i = 0; i < n; i++) {
        while (*p < end && **p == ' ')
            (*p)++;
        while (*p < end && **p != ' ' && **p != '\n')
            (*p)++;
    }
    while (*p < end && **p == ' ')
        (*p)++;
}

/* Kind of one maps line whose fields start at p (after the range). */
static enum bp_range_kind bp_line_kind(const char *p, const char *eol)
{
    if (eol - p < 4 || p[2] != 'x')
        return BP_RANGE_NONE;
    bp_skip_fields(&p, eol, 4); /* perms offset dev inode */
    size_t n = (size_t)(eol - p);
    if (n == 0 || (n >= 7 && memcmp(p, "/memfd:", 7) == 0))
        return BP_RANGE_JIT;
    if (p[0] == '/' || (n >= 6 && memcmp(p, "[vdso]", 6) == 0))
        return BP_RANGE_ELF;
    if (n >= 5 && memcmp(p, "[anon", 5) == 0)
        return BP_RANGE_JIT;
    return BP_RANGE_NONE; /* [vsyscall] and the like */
}

size_t bp_ranges_parse_maps(const char *text, size_t len, struct bp_range *out,
                            size_t max)
{
    const char *p = text, *end = text + len;
    size_t n = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        uint64_t lo, hi;
        const char *q = p;
        if (bp_hex(&q, eol, &lo) && q < eol && *q == '-' && (q++, bp_hex(&q, eol, &hi)) &&
            q < eol && *q == ' ' && hi > lo) {
            q++;
            enum bp_range_kind k = bp_line_kind(q, eol);
            if (k != BP_RANGE_NONE) {
                if (n > 0 && out[n - 1].kind == k && out[n - 1].hi == lo) {
                    out[n - 1].hi = hi;
                } else if (n < max && (n == 0 || lo >= out[n - 1].hi)) {
                    out[n].lo = lo;
                    out[n].hi = hi;
                    out[n].kind = k;
                    out[n].pad = 0;
                    n++;
                }
            }
        }
        p = eol + 1;
    }
    return n;
}

enum bp_range_kind bp_range_kind_of(const struct bp_range *r, size_t n, uint64_t addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr < r[mid].lo)
            hi = mid;
        else if (addr >= r[mid].hi)
            lo = mid + 1;
        else
            return (enum bp_range_kind)r[mid].kind;
    }
    return BP_RANGE_NONE;
}

void bp_ranges_init(struct bp_ranges *rs)
{
    atomic_init(&rs->active, 0);
    for (int i = 0; i < 2; i++) {
        atomic_init(&rs->b[i].readers, 0);
        rs->b[i].n = 0;
    }
}

void bp_ranges_publish(struct bp_ranges *rs, const struct bp_range *r, size_t n)
{
    int next = 1 - atomic_load(&rs->active);
    struct bp_ranges_buf *b = &rs->b[next];
    /* A reader that pins `next` after this check sees `active` != next when
     * it re-checks (seq_cst), and lets go without reading. */
    while (atomic_load(&b->readers) != 0) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    if (n > BP_RANGES_MAX)
        n = BP_RANGES_MAX;
    memcpy(b->r, r, n * sizeof *r);
    b->n = (uint32_t)n;
    atomic_store(&rs->active, next);
}

const struct bp_ranges_buf *bp_ranges_enter(struct bp_ranges *rs)
{
    int i = atomic_load(&rs->active);
    struct bp_ranges_buf *b = &rs->b[i];
    atomic_fetch_add(&b->readers, 1);
    if (atomic_load(&rs->active) != i) {
        atomic_fetch_sub(&b->readers, 1);
        return NULL;
    }
    return b;
}

void bp_ranges_leave(const struct bp_ranges_buf *b)
{
    if (b != NULL)
        atomic_fetch_sub(&((struct bp_ranges_buf *)b)->readers, 1);
}

/* --------------------------------------------------------- chunk cache */

int bp_mem_words(struct bp_mem *m, uint64_t addr, uint64_t *out, size_t n)
{
    size_t bytes = n * 8;
    if (addr < m->base || addr - m->base > m->len || m->len - (addr - m->base) < bytes) {
        if (addr > UINT64_MAX - m->cap)
            return 0;
        m->reads++;
        m->base = addr;
        m->len = m->read(m->ctx, addr, m->buf, m->cap);
        if (m->len < bytes)
            return 0;
    }
    memcpy(out, m->buf + (addr - m->base), bytes);
    return 1;
}

/* ------------------------------------------------------------- walkers */

int bp_fp_walk(struct bp_mem *m, uint64_t fp, uint64_t *out, int max,
               const struct bp_ranges_buf *jit_only, int *ended)
{
    int n = 0;
    *ended = 0;
    while (n < max) {
        uint64_t frame[2];
        if (fp == 0 || (fp & 7u) != 0 || !bp_mem_words(m, fp, frame, 2) ||
            (jit_only != NULL && bp_ranges_kind(jit_only, frame[1]) != BP_RANGE_JIT))
            return n;
        out[n++] = frame[1];
        if (frame[0] == 0) {
            *ended = 1;
            return n;
        }
        if (frame[0] <= fp || frame[0] - fp > BP_FP_MAX_GAP)
            return n;
        fp = frame[0];
    }
    return n;
}
