/* bp_threads.c - pure parts of the scheduler thread table: name matching
 * and ordering. No system calls here, so the unit tests can drive it. */
#include "bp_threads.h"
#include "bp_text.h"

#include <string.h>

/* The kernel keeps at most this many characters of a thread name. */
#define BP_COMM_MAX 15

struct bp_name_kind {
    const char *full; /* name after "N_" as the VM sets it */
    size_t min_len;   /* shortest truncated tail still unambiguous */
    enum bp_thread_type type;
};

static const struct bp_name_kind bp_kinds[] = {
    {"scheduler", 9, BP_THREAD_NORMAL},
    {"dirty_cpu_scheduler", 9, BP_THREAD_DIRTY_CPU},
    {"dirty_io_scheduler", 8, BP_THREAD_DIRTY_IO},
};

/* Parses a positive decimal without leading zeros, at most 5 digits.
 * Returns the number of digits consumed, 0 if none or invalid. */
static size_t bp_parse_index(const char *s, size_t len, uint32_t *out)
{
    size_t i = 0;
    uint32_t v = 0;
    while (i < len && i < 6 && s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (uint32_t)(s[i] - '0');
        i++;
    }
    if (i == 0 || i > 5 || s[0] == '0')
        return 0;
    *out = v;
    return i;
}

int bp_threads_classify(const char *name, size_t len, enum bp_thread_type *type,
                        uint32_t *index)
{
    while (len > 0 && (name[len - 1] == '\n' || name[len - 1] == '\0'))
        len--;
    if (len == 0 || len > BP_COMM_MAX)
        return 0;
    uint32_t n;
    size_t digits = bp_parse_index(name, len, &n);
    if (digits == 0 || digits >= len || name[digits] != '_')
        return 0;
    const char *tail = name + digits + 1;
    size_t tail_len = len - digits - 1;
    int truncated = (len == BP_COMM_MAX);
    for (size_t k = 0; k < sizeof bp_kinds / sizeof bp_kinds[0]; k++) {
        const struct bp_name_kind *kind = &bp_kinds[k];
        size_t full_len = strlen(kind->full);
        if (tail_len > full_len || memcmp(tail, kind->full, tail_len) != 0)
            continue;
        if (tail_len == full_len || (truncated && tail_len >= kind->min_len)) {
            *type = kind->type;
            *index = n;
            return 1;
        }
    }
    return 0;
}

static int bp_thread_before(const struct bp_thread *a, const struct bp_thread *b)
{
    if (a->type != b->type)
        return a->type < b->type;
    return a->index < b->index;
}

void bp_threads_sort(struct bp_thread *t, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct bp_thread x = t[i];
        size_t j = i;
        while (j > 0 && bp_thread_before(&x, &t[j - 1])) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = x;
    }
}

int bp_threads_parse_schedstat(const char *buf, size_t len, uint64_t *run,
                               uint64_t *wait)
{
    const char *p = buf, *end = buf + len;
    uint64_t r, w;
    p = bp_text_skip_spaces(p, end);
    if (bp_text_u64(&p, end, &r) != 0)
        return -1;
    p = bp_text_skip_spaces(p, end);
    if (bp_text_u64(&p, end, &w) != 0)
        return -1;
    *run = r;
    *wait = w;
    return 0;
}
