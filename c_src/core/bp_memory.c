/* bp_memory.c - pure parsing and the limit decision (no system calls). */
#include "bp_memory.h"
#include "bp_text.h"

#include <string.h>

int bp_memory_parse_statm(const char *buf, size_t len, uint64_t *resident_pages)
{
    const char *p = buf, *end = buf + len;
    uint64_t size;
    p = bp_text_skip_spaces(p, end);
    if (bp_text_u64(&p, end, &size) != 0)
        return -1;
    const char *q = bp_text_skip_spaces(p, end);
    if (q == p)
        return -1;
    return bp_text_u64(&q, end, resident_pages);
}

/* Value in kB of the line starting with key (e.g. "MemTotal:"), in bytes. */
static int bp_meminfo_field(const char *buf, size_t len, const char *key,
                            uint64_t *bytes)
{
    size_t klen = strlen(key);
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > klen && memcmp(p, key, klen) == 0) {
            const char *v = bp_text_skip_spaces(p + klen, eol);
            uint64_t kb;
            if (bp_text_u64(&v, eol, &kb) != 0 || kb > UINT64_MAX / 1024)
                return -1;
            *bytes = kb * 1024;
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

int bp_memory_parse_meminfo(const char *buf, size_t len, uint64_t *total,
                            uint64_t *available)
{
    if (bp_meminfo_field(buf, len, "MemTotal:", total) != 0 || *total == 0)
        return -1;
    if (bp_meminfo_field(buf, len, "MemAvailable:", available) == 0)
        return 0;
    return bp_meminfo_field(buf, len, "MemFree:", available);
}

/* Is "memory" one of the comma-separated controllers in [p, end)? */
static int bp_has_memory_controller(const char *p, const char *end)
{
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (stop - p == 6 && memcmp(p, "memory", 6) == 0)
            return 1;
        p = stop + 1;
    }
    return 0;
}

static int bp_copy_path(char *dst, const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= BP_CGROUP_PATH_MAX)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int bp_memory_parse_cgroup(const char *buf, size_t len, struct bp_cgroup_paths *out)
{
    const char *p = buf, *end = buf + len;
    out->has_v1 = out->has_v2 = 0;
    out->v1[0] = out->v2[0] = '\0';
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *c1 = memchr(p, ':', (size_t)(eol - p));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;
        if (c2 != NULL) {
            int v2 = (c1 - p == 1 && p[0] == '0' && c2 == c1 + 1);
            if (v2 && !out->has_v2) {
                if (bp_copy_path(out->v2, c2 + 1, eol) != 0)
                    return -1;
                out->has_v2 = 1;
            } else if (!v2 && !out->has_v1 && bp_has_memory_controller(c1 + 1, c2)) {
                if (bp_copy_path(out->v1, c2 + 1, eol) != 0)
                    return -1;
                out->has_v1 = 1;
            }
        }
        p = eol + 1;
    }
    return 0;
}

int bp_memory_parse_limit(const char *buf, size_t len, uint64_t *bytes)
{
    const char *p = buf, *end = buf + len;
    while (end > p && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\0'))
        end--;
    if (end - p == 3 && memcmp(p, "max", 3) == 0)
        return 0;
    if (bp_text_u64(&p, end, bytes) != 0 || p != end)
        return -1;
    return 1;
}

int bp_memory_cgroup_applies(const struct bp_cgroup_limit *cg, uint64_t mem_total)
{
    return cg->bytes > 0 && cg->bytes < mem_total;
}

void bp_memory_decide(uint64_t option_limit, const struct bp_cgroup_limit *cg,
                      struct bp_memory_reading *out)
{
    if (option_limit > 0) {
        out->source = BP_LIMIT_OPTION;
        out->limit = option_limit;
        out->used = out->rss;
    } else if (bp_memory_cgroup_applies(cg, out->mem_total)) {
        out->source = cg->source;
        out->limit = cg->bytes;
        out->used = out->rss;
    } else {
        out->source = BP_LIMIT_MACHINE;
        out->limit = out->mem_total;
        out->used = out->mem_available < out->mem_total
                        ? out->mem_total - out->mem_available
                        : 0;
    }
    out->ratio = out->limit > 0 ? (double)out->used / (double)out->limit : 0.0;
}
