/* test_rec_read.c - the recording reader's format side (bp_rec_read.c):
 * CRC-32 against known values, header checks, the ring scan (frames,
 * padding, torn frames, duplicate seqs, a frame against the ring's end). */
#include <stdlib.h>
#include <string.h>

#include "bp_rec_read.h"
#include "bp_crc32.h"
#include "bp_test.h"

#define RING 65536u

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static void header(uint8_t *h, uint32_t version, uint32_t hsize, uint64_t ring)
{
    memset(h, 0, BP_REC_HEADER_SIZE);
    memcpy(h, "BPREC\0v1", 8);
    put32(h + 8, version);
    put32(h + 12, hsize);
    put64(h + 16, ring);
    put64(h + 24, 1234);
    put64(h + 32, 1700000000000000ull);
    put32(h + 40, bp_crc32_update(0, h, 40));
}

/* Writes a frame at `pos' with a payload of `len' bytes of `fill'; returns
 * the next frame's position. */
static uint64_t frame(uint8_t *ring, uint64_t pos, uint64_t seq, uint32_t len, uint8_t fill)
{
    uint8_t *p = ring + pos;
    put32(p, 0x46525042u);
    put32(p + 4, len);
    put64(p + 8, seq);
    put64(p + 16, seq * 1000);
    put64(p + 24, 1700000000000000ull + seq);
    memset(p + 40, fill, len);
    uint32_t crc = bp_crc32_update(bp_crc32_update(0, p + 4, 28), p + 40, len);
    put32(p + 32, crc);
    put32(p + 36, 0);
    return pos + 40 + ((len + 7u) & ~7u);
}

BP_TEST(header_checks)
{
    static uint8_t h[BP_REC_HEADER_SIZE];
    struct bp_rec_header out;
    uint64_t expected;
    uint64_t whole = BP_REC_HEADER_SIZE + RING;
    header(h, 1, 4096, RING);
    CHECK(bp_rec_header_parse(h, sizeof h, whole, &out, &expected) == BP_REC_OK);
    CHECK(out.ring_size == RING && out.os_pid == 1234 && out.version == 1);
    CHECK(expected == whole);
    CHECK(bp_rec_header_parse(h, sizeof h, whole - 1, &out, &expected) == BP_REC_TRUNCATED);
    CHECK(bp_rec_header_parse(h, sizeof h, whole + 1, &out, &expected) == BP_REC_CORRUPT_SIZE);
    CHECK(bp_rec_header_parse(h, 100, 100, &out, &expected) == BP_REC_TRUNCATED);
    CHECK(expected == whole);
    CHECK(bp_rec_header_parse(h, 3, 3, &out, &expected) == BP_REC_TRUNCATED);
    CHECK(bp_rec_header_parse(h, 0, 0, &out, &expected) == BP_REC_NOT_RECORDING);
    CHECK(bp_rec_header_parse((const uint8_t *)"hello", 5, 5, &out, &expected) ==
          BP_REC_NOT_RECORDING);
    h[20] ^= 1; /* the ring size, under the CRC */
    CHECK(bp_rec_header_parse(h, sizeof h, whole, &out, &expected) == BP_REC_CORRUPT_HEADER);
    header(h, 2, 4096, RING);
    CHECK(bp_rec_header_parse(h, sizeof h, whole, &out, &expected) == BP_REC_UNSUPPORTED);
    header(h, 1, 512, RING);
    CHECK(bp_rec_header_parse(h, sizeof h, whole, &out, &expected) == BP_REC_CORRUPT_HEADER);
    header(h, 1, 4096, RING + 4);
    CHECK(bp_rec_header_parse(h, sizeof h, whole + 4, &out, &expected) == BP_REC_CORRUPT_HEADER);
    header(h, 1, 4096, 1024);
    CHECK(bp_rec_header_parse(h, sizeof h, 4096 + 1024, &out, &expected) == BP_REC_CORRUPT_HEADER);
}

BP_TEST(scan_frames_in_order)
{
    uint8_t *ring = calloc(1, RING);
    struct bp_rec_scan s;
    /* A wrapped ring: seq 10.. at the start, seq 3.. after, in the order a
     * writer that went round would leave. */
    uint64_t pos = frame(ring, 0, 10, 5, 'a');
    pos = frame(ring, pos, 11, 8, 'b');
    pos = frame(ring, pos, 12, 1, 'c');
    pos += 64; /* zeros between */
    pos = frame(ring, pos, 3, 100, 'd');
    frame(ring, pos, 4, 33, 'e');
    CHECK(bp_rec_scan(ring, RING, &s) == 0);
    CHECK(s.count == 5 && s.taken == 5 && s.bad_frames == 0 && s.duplicates == 0);
    uint64_t want[] = {3, 4, 10, 11, 12};
    for (size_t i = 0; i < 5 && i < s.count; i++)
        CHECK(s.frames[i].seq == want[i]);
    CHECK(s.count > 0 && s.frames[0].len == 100 && s.frames[0].payload[0] == 'd');
    CHECK(s.count > 0 && s.frames[0].mono_ns == 3000);
    bp_rec_scan_free(&s);
    free(ring);
}

BP_TEST(scan_skips_torn_and_duplicates)
{
    uint8_t *ring = calloc(1, RING);
    struct bp_rec_scan s;
    uint64_t pos = frame(ring, 0, 1, 16, 'a');
    uint64_t torn = pos;
    pos = frame(ring, pos, 2, 16, 'b');
    pos = frame(ring, pos, 3, 16, 'c');
    pos = frame(ring, pos, 3, 16, 'd'); /* a second seq 3 */
    frame(ring, pos, 4, 16, 'e');
    ring[torn + 40 + 3] ^= 0x10;        /* payload of seq 2 changed */
    CHECK(bp_rec_scan(ring, RING, &s) == 0);
    CHECK(s.taken == 4 && s.bad_frames == 1 && s.duplicates == 2 && s.count == 2);
    CHECK(s.count == 2 && s.frames[0].seq == 1 && s.frames[1].seq == 4);
    bp_rec_scan_free(&s);
    free(ring);
}

BP_TEST(scan_respects_the_end)
{
    uint8_t *ring = calloc(1, RING);
    struct bp_rec_scan s;
    /* A frame that ends exactly at the ring's end is taken. */
    frame(ring, RING - 48, 7, 8, 'z');
    /* A magic whose length runs past the end is a bad frame. */
    frame(ring, 0, 8, 16, 'y');
    put32(ring + 4, RING);
    /* A magic in the ring's last 8 bytes: too short for a frame. */
    put32(ring + RING - 56, 0x46525042u);
    CHECK(bp_rec_scan(ring, RING, &s) == 0);
    CHECK(s.count == 1 && s.frames[0].seq == 7 && s.bad_frames == 2);
    bp_rec_scan_free(&s);
    free(ring);
}

const struct bp_test_case bp_rec_read_tests[] = {
    {"rec_read: header checks", header_checks},
    {"rec_read: frames in seq order", scan_frames_in_order},
    {"rec_read: torn and duplicate frames skipped", scan_skips_torn_and_duplicates},
    {"rec_read: the ring's end", scan_respects_the_end},
    {NULL, NULL},
};
