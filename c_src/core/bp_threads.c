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

/* OTP 25 and earlier: "N_scheduler", "N_dirty_cpu_scheduler" and
 * "N_dirty_io_scheduler", cut by the kernel to 15 characters. */
static const struct bp_name_kind bp_kinds[] = {
    {"scheduler", 9, BP_THREAD_NORMAL},
    {"dirty_cpu_scheduler", 9, BP_THREAD_DIRTY_CPU},
    {"dirty_io_scheduler", 8, BP_THREAD_DIRTY_IO},
};

/* OTP 26 and later: "erts_sched_N", "erts_dcpus_N", "erts_dios_N" (at most
 * 15 characters with N <= 1024, so never truncated). */
static const struct bp_name_prefix {
    const char *prefix;
    enum bp_thread_type type;
} bp_prefixes[] = {
    {"erts_sched_", BP_THREAD_NORMAL},
    {"erts_dcpus_", BP_THREAD_DIRTY_CPU},
    {"erts_dios_", BP_THREAD_DIRTY_IO},
};

#define BP_COUNT(a) (sizeof(a) / sizeof((a)[0]))

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

/* "N_<kind>" (OTP 25 and earlier). */
static int bp_classify_suffixed(const char *name, size_t len, enum bp_thread_type *type,
                                uint32_t *index)
{
    uint32_t n;
    size_t digits = bp_parse_index(name, len, &n);
    if (digits == 0 || digits >= len || name[digits] != '_')
        return 0;
    const char *tail = name + digits + 1;
    size_t tail_len = len - digits - 1;
    int truncated = (len == BP_COMM_MAX);
    for (size_t k = 0; k < BP_COUNT(bp_kinds); k++) {
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

/* "erts_<kind>_N" (OTP 26 and later): the digits must end the name. */
static int bp_classify_prefixed(const char *name, size_t len, enum bp_thread_type *type,
                                uint32_t *index)
{
    for (size_t k = 0; k < BP_COUNT(bp_prefixes); k++) {
        size_t plen = strlen(bp_prefixes[k].prefix);
        if (len <= plen || memcmp(name, bp_prefixes[k].prefix, plen) != 0)
            continue;
        uint32_t n;
        if (bp_parse_index(name + plen, len - plen, &n) != len - plen)
            return 0;
        *type = bp_prefixes[k].type;
        *index = n;
        return 1;
    }
    return 0;
}

int bp_threads_classify(const char *name, size_t len, enum bp_thread_type *type,
                        uint32_t *index)
{
    while (len > 0 && (name[len - 1] == '\n' || name[len - 1] == '\0'))
        len--;
    if (len == 0 || len > BP_COMM_MAX)
        return 0;
    return bp_classify_suffixed(name, len, type, index) ||
           bp_classify_prefixed(name, len, type, index);
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
