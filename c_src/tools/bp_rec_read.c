/* bp_rec_read.c - header and frame scan of a flight recording (the CRC is
 * shared/bp_crc32.c, the writer's). */
#include "bp_rec_read.h"

#include "bp_crc32.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_MAGIC 0x46525042u

static const uint8_t header_magic[8] = {'B', 'P', 'R', 'E', 'C', 0, 'v', '1'};

uint32_t bp_rec_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t bp_rec_u64(const uint8_t *p)
{
    return (uint64_t)bp_rec_u32(p) | (uint64_t)bp_rec_u32(p + 4) << 32;
}

enum bp_rec_status bp_rec_header_parse(const uint8_t *file, size_t avail, uint64_t size,
                                       struct bp_rec_header *out, uint64_t *expected)
{
    *expected = BP_REC_HEADER_SIZE;
    size_t prefix = avail < 8 ? avail : 8;
    if (size == 0 || memcmp(file, header_magic, prefix) != 0)
        return BP_REC_NOT_RECORDING;
    if (avail >= 24)
        *expected = BP_REC_HEADER_SIZE + bp_rec_u64(file + 16);
    if (avail < BP_REC_HEADER_SIZE)
        return BP_REC_TRUNCATED;
    if (bp_crc32_update(0, file, 40) != bp_rec_u32(file + 40))
        return BP_REC_CORRUPT_HEADER;
    out->version = bp_rec_u32(file + 8);
    out->ring_size = bp_rec_u64(file + 16);
    out->os_pid = bp_rec_u64(file + 24);
    out->opened_us = (int64_t)bp_rec_u64(file + 32);
    if (out->version != 1)
        return BP_REC_UNSUPPORTED;
    if (bp_rec_u32(file + 12) != BP_REC_HEADER_SIZE || out->ring_size % 8 != 0 ||
        out->ring_size < BP_REC_MIN_RING || out->ring_size > UINT64_MAX - BP_REC_HEADER_SIZE)
        return BP_REC_CORRUPT_HEADER;
    if (size < *expected)
        return BP_REC_TRUNCATED;
    if (size > *expected)
        return BP_REC_CORRUPT_SIZE;
    return BP_REC_OK;
}

/* Whether a whole frame stands at `pos'; fills `f' when it does. */
static int frame_at(const uint8_t *ring, uint64_t ring_size, uint64_t pos, struct bp_rec_frame *f)
{
    const uint8_t *p = ring + pos;
    if (pos + BP_REC_FRAME_HEAD > ring_size)
        return 0;
    uint64_t len = bp_rec_u32(p + 4);
    if (len < 1 || len > ring_size - BP_REC_FRAME_HEAD ||
        pos + BP_REC_FRAME_HEAD + len > ring_size)
        return 0;
    uint32_t crc = bp_crc32_update(0, p + 4, 28);
    crc = bp_crc32_update(crc, p + BP_REC_FRAME_HEAD, (size_t)len);
    if (crc != bp_rec_u32(p + 32))
        return 0;
    f->seq = bp_rec_u64(p + 8);
    f->mono_ns = (int64_t)bp_rec_u64(p + 16);
    f->sys_us = (int64_t)bp_rec_u64(p + 24);
    f->payload = p + BP_REC_FRAME_HEAD;
    f->len = (uint32_t)len;
    return 1;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = ((const struct bp_rec_frame *)a)->seq, y = ((const struct bp_rec_frame *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Sorts and drops every frame whose seq another frame holds too. */
static void unique(struct bp_rec_scan *s)
{
    qsort(s->frames, s->count, sizeof s->frames[0], by_seq);
    size_t out = 0;
    for (size_t i = 0; i < s->count;) {
        size_t j = i + 1;
        while (j < s->count && s->frames[j].seq == s->frames[i].seq)
            j++;
        if (j - i == 1)
            s->frames[out++] = s->frames[i];
        else
            s->duplicates += j - i;
        i = j;
    }
    s->count = out;
}

int bp_rec_scan(const uint8_t *ring, uint64_t ring_size, struct bp_rec_scan *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    uint64_t pos = 0;
    while (pos + 8 <= ring_size) {
        struct bp_rec_frame f;
        if (bp_rec_u32(ring + pos) != FRAME_MAGIC) {
            pos += 8;
            continue;
        }
        if (!frame_at(ring, ring_size, pos, &f)) {
            out->bad_frames++;
            pos += 8;
            continue;
        }
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            struct bp_rec_frame *n = realloc(out->frames, ncap * sizeof *n);
            if (n == NULL) {
                bp_rec_scan_free(out);
                return -1;
            }
            out->frames = n;
            cap = ncap;
        }
        out->frames[out->count++] = f;
        pos += BP_REC_FRAME_HEAD + (((uint64_t)f.len + 7) & ~(uint64_t)7);
    }
    out->taken = out->count;
    unique(out);
    return 0;
}

void bp_rec_scan_free(struct bp_rec_scan *scan)
{
    free(scan->frames);
    scan->frames = NULL;
    scan->count = 0;
}
