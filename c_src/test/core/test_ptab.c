/* test_ptab.c - finding a process table's read-only part by its shape,
 * the slot formula, the self check and the walk, on synthetic tables laid
 * out as OTP 25 (ERTS 13) and OTP 27 (ERTS 15) lay out erts_proc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bp_ptab.h"
#include "bp_test.h"

enum { LIMIT = 1024, RO_OFFSET = 192, HDR = 512 };

#define PID_TAG 0x3u
#define PORT_TAG 0x7u

static uint64_t slots[LIMIT];
static uint64_t elements[LIMIT]; /* element i: its id word */
static uint64_t invalid_element = 0xdeadull;

static void put64(uint8_t *hdr, size_t off, uint64_t v)
{
    memcpy(hdr + off, &v, sizeof v);
}

static void put32(uint8_t *hdr, size_t off, uint32_t v)
{
    memcpy(hdr + off, &v, sizeof v);
}

/* The read-only part at `at': 1024 slots as 128 cache lines of 8 words. */
static void write_ro(uint8_t *hdr, size_t at)
{
    put64(hdr, at, (uint64_t)(uintptr_t)slots);
    put64(hdr, at + 8, 0x1000);                       /* free_id_data */
    put32(hdr, at + 16, LIMIT);
    put32(hdr, at + 20, LIMIT - 1);                   /* pix_mask */
    put32(hdr, at + 24, 127);                         /* pix_cl_mask */
    put32(hdr, at + 28, 3);                           /* pix_cl_shift */
    put32(hdr, at + 32, 7);                           /* pix_cli_mask */
    put32(hdr, at + 36, 7);                           /* pix_cli_shift */
    put64(hdr, at + 40, 0x0000000400000fffull);       /* dix masks */
    put64(hdr, at + 48, 0x0000000900000007ull);
    put64(hdr, at + 56, (uint64_t)(uintptr_t)&invalid_element);
    put64(hdr, at + 64, BP_PTAB_INVALID_DATA);
    put64(hdr, at + 72, 0);                           /* release_element */
    put64(hdr, at + 80, 776);                         /* element_size */
}

/* The read-only part as ERTS 14+ lays it out (OTP 27.3, seen at offset
 * 192 of erts_proc): 64-bit masks, the two shifts in one word. */
static void write_ro60(uint8_t *hdr, size_t at)
{
    put64(hdr, at, (uint64_t)(uintptr_t)slots);
    put64(hdr, at + 8, 0x1000);                       /* free_id_data */
    put64(hdr, at + 16, LIMIT);                       /* max, padding */
    put64(hdr, at + 24, LIMIT - 1);                   /* pix_mask */
    put64(hdr, at + 32, 127);                         /* pix_cl_mask */
    put64(hdr, at + 40, 7);                           /* pix_cli_mask */
    put64(hdr, at + 48, 0x0000000700000003ull);       /* cl_shift 3, cli_shift 7 */
    put64(hdr, at + 56, 0xfff);                       /* dix masks and shifts */
    put64(hdr, at + 64, 7);
    put64(hdr, at + 72, 0x0000000900000003ull);
    put64(hdr, at + 80, (uint64_t)(uintptr_t)&invalid_element);
    put64(hdr, at + 88, BP_PTAB_INVALID_DATA60);
    put64(hdr, at + 96, 0);                           /* release_element */
    put64(hdr, at + 104, 760);                        /* element_size */
}

static void make_header60(uint8_t *hdr)
{
    memset(hdr, 0, HDR);
    put64(hdr, 0, 0x0384003210000000ull);
    put64(hdr, 128, UINT64_MAX);
    write_ro60(hdr, RO_OFFSET);
}

static void make_header(uint8_t *hdr)
{
    memset(hdr, 0, HDR);
    put64(hdr, 0, 0x0384003210000000ull); /* list data, as seen on OTP 25 */
    put64(hdr, 128, UINT64_MAX);
    write_ro(hdr, RO_OFFSET);
}

static uint64_t id_of(uint64_t data, uint64_t tag)
{
    return data << BP_PTAB_DATA_SHIFT | tag;
}

/* Reads only the synthetic table's memory; anything else "faults". */
static int test_read(void *dst, uint64_t addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    const struct {
        const void *base;
        size_t size;
    } areas[] = {{slots, sizeof slots}, {elements, sizeof elements},
                 {&invalid_element, sizeof invalid_element}};
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        uintptr_t b = (uintptr_t)areas[i].base;
        if (a >= b && len <= areas[i].size && a - b <= areas[i].size - len) {
            memcpy(dst, (const void *)a, len);
            return 0;
        }
    }
    return -1;
}

/* Puts element `data' (with tag) in its slot. */
static void insert(const struct bp_ptab *t, uint64_t data, uint64_t tag)
{
    uint32_t pix = bp_ptab_pix(t, data);
    elements[pix] = id_of(data, tag);
    slots[pix] = (uint64_t)(uintptr_t)&elements[pix];
}

BP_TEST(ptab_locate_finds_the_read_only_part)
{
    uint8_t hdr[HDR];
    struct bp_ptab t;
    make_header(hdr);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == 0);
    CHECK(t.tab == (uint64_t)(uintptr_t)slots);
    CHECK(t.invalid == (uint64_t)(uintptr_t)&invalid_element);
    CHECK(t.max == LIMIT && t.pix_mask == LIMIT - 1 && t.layout == BP_PTAB_DATA28);
    CHECK(t.cl_mask == 127 && t.cl_shift == 3 && t.cli_mask == 7 && t.cli_shift == 7);
    /* a copy too short to hold it */
    CHECK(bp_ptab_locate(hdr, RO_OFFSET + 32, LIMIT, &t) == -1);
}

BP_TEST(ptab_locate_finds_the_erts14_layout)
{
    uint8_t hdr[HDR];
    struct bp_ptab t;
    make_header60(hdr);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == 0);
    CHECK(t.layout == BP_PTAB_DATA60);
    CHECK(t.tab == (uint64_t)(uintptr_t)slots);
    CHECK(t.invalid == (uint64_t)(uintptr_t)&invalid_element);
    CHECK(t.max == LIMIT && t.pix_mask == LIMIT - 1);
    CHECK(t.cl_mask == 127 && t.cl_shift == 3 && t.cli_mask == 7 && t.cli_shift == 7);
    /* the slot is the low bits of the id's data, whatever lies above */
    CHECK(bp_ptab_pix(&t, 5) == 5 && bp_ptab_pix(&t, 5 + ((uint64_t)77 << 40)) == 5);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT * 2, &t) == -1);
    put64(hdr, RO_OFFSET + 88, BP_PTAB_INVALID_DATA); /* 28-bit invalid data */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
    make_header60(hdr);
    put64(hdr, RO_OFFSET + 48, 0x0000000300000007ull); /* shifts swapped */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
    make_header60(hdr);
    put64(hdr, RO_OFFSET + 32, 127 | (1ull << 40)); /* a mask beyond the limit */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
    /* both layouts in one copy: ambiguous, refused */
    make_header60(hdr);
    write_ro(hdr, 16);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
}

/* The check and the walk on an ERTS 14+ table: ids carry their slot in
 * their low data bits, with any serial above. */
BP_TEST(ptab_check_and_walk_erts14)
{
    uint8_t hdr[HDR];
    struct bp_ptab t;
    static uint64_t out[LIMIT];
    make_header60(hdr);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == 0);
    memset(slots, 0, sizeof slots);
    size_t n_pids = 0;
    for (uint64_t pix = 0; pix < LIMIT; pix += 3) {
        uint64_t tag = pix % 2 ? PORT_TAG : PID_TAG;
        uint64_t data = ((uint64_t)(pix * 7919) << 20) | pix; /* serial above the slot */
        elements[pix] = id_of(data, tag);
        slots[pix] = (uint64_t)(uintptr_t)&elements[pix];
        n_pids += tag == PID_TAG;
    }
    CHECK(bp_ptab_check(&t, elements[6], test_read) == 0);
    CHECK(bp_ptab_check(&t, elements[6] + ((uint64_t)1 << 40), test_read) == -1); /* older */
    CHECK(bp_ptab_check(&t, id_of(7, PID_TAG), test_read) == -1);                /* free */
    uint32_t next = 0;
    size_t n = bp_ptab_walk(&t, 0, LIMIT, PID_TAG, out, &next);
    CHECK(n == n_pids && next == LIMIT);
    for (size_t i = 0; i < n; i++)
        CHECK((out[i] & 0xf) == PID_TAG && out[i] == elements[(out[i] >> 4) & (LIMIT - 1)]);
    memset(slots, 0, sizeof slots);
}

BP_TEST(ptab_locate_refuses_what_does_not_fit)
{
    uint8_t hdr[HDR];
    struct bp_ptab t;
    make_header(hdr);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT * 2, &t) == -1); /* another limit */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, 1000, &t) == -1);      /* not a power of 2 */
    CHECK(bp_ptab_locate(NULL, sizeof hdr, LIMIT, &t) == -1);
    write_ro(hdr, 16); /* two places match: which one is it? neither */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
    make_header(hdr);
    put32(hdr, RO_OFFSET + 28, 4); /* shifts that do not fit the masks */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
    make_header(hdr);
    put32(hdr, RO_OFFSET + 24, 255); /* masks that do not multiply out */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
    make_header(hdr);
    put64(hdr, RO_OFFSET + 64, 0x0ffffffeu); /* no invalid data */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
    make_header(hdr);
    put64(hdr, RO_OFFSET, 0); /* no slot array */
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == -1);
}

/* Every data below the limit has its own slot, and data a limit apart
 * share one (a slot's next owner). */
BP_TEST(ptab_pix_is_a_bijection)
{
    uint8_t hdr[HDR];
    struct bp_ptab t;
    static uint8_t seen[LIMIT];
    make_header(hdr);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == 0);
    memset(seen, 0, sizeof seen);
    for (uint64_t d = 0; d < LIMIT; d++) {
        uint32_t pix = bp_ptab_pix(&t, d);
        CHECK(pix < LIMIT && !seen[pix]);
        if (pix < LIMIT)
            seen[pix] = 1;
        CHECK(bp_ptab_pix(&t, d + LIMIT * 5) == pix);
    }
    /* consecutive data land in different cache lines (8 words) */
    CHECK(bp_ptab_pix(&t, 1) / 8 != bp_ptab_pix(&t, 2) / 8);
}

BP_TEST(ptab_check_wants_the_id_in_its_slot)
{
    uint8_t hdr[HDR];
    struct bp_ptab t;
    make_header(hdr);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == 0);
    memset(slots, 0, sizeof slots);
    insert(&t, 9 + 3 * LIMIT, PID_TAG);
    CHECK(bp_ptab_check(&t, id_of(9 + 3 * LIMIT, PID_TAG), test_read) == 0);
    CHECK(bp_ptab_check(&t, id_of(9 + 4 * LIMIT, PID_TAG), test_read) == -1); /* older owner */
    CHECK(bp_ptab_check(&t, id_of(10, PID_TAG), test_read) == -1);            /* free slot */
    slots[bp_ptab_pix(&t, 10)] = (uint64_t)(uintptr_t)&invalid_element;
    CHECK(bp_ptab_check(&t, id_of(10, PID_TAG), test_read) == -1); /* placeholder */
    slots[bp_ptab_pix(&t, 11)] = 0x40;                             /* unreadable element */
    CHECK(bp_ptab_check(&t, id_of(11, PID_TAG), test_read) == -1);
    CHECK(bp_ptab_mapped(&t, test_read) == 0);
    struct bp_ptab bad = t;
    bad.tab = 0x1000; /* slot array unreadable */
    CHECK(bp_ptab_check(&bad, id_of(9 + 3 * LIMIT, PID_TAG), test_read) == -1);
    CHECK(bp_ptab_mapped(&bad, test_read) == -1);
    bad = t;
    bad.max = LIMIT * 2; /* the array is shorter than the table says */
    CHECK(bp_ptab_mapped(&bad, test_read) == -1);
    memset(slots, 0, sizeof slots);
}

/* Walking the table in chunks gives exactly the elements with the pid tag,
 * skipping free slots, the placeholder and other tags. */
BP_TEST(ptab_walk_in_chunks)
{
    uint8_t hdr[HDR];
    struct bp_ptab t;
    static uint64_t out[LIMIT], expected[LIMIT];
    make_header(hdr);
    CHECK(bp_ptab_locate(hdr, sizeof hdr, LIMIT, &t) == 0);
    memset(slots, 0, sizeof slots);
    size_t n_expected = 0;
    for (uint64_t d = 0; d < LIMIT; d++) {
        uint64_t data = d + LIMIT * (d % 3);
        if (d % 5 == 0)
            continue; /* free */
        if (d % 7 == 0) {
            slots[bp_ptab_pix(&t, data)] = (uint64_t)(uintptr_t)&invalid_element;
            continue;
        }
        uint64_t tag = d % 11 == 0 ? PORT_TAG : PID_TAG;
        insert(&t, data, tag);
        if (tag == PID_TAG)
            expected[n_expected++] = id_of(data, tag);
    }
    size_t n = 0;
    uint32_t from = 0, next = 0, calls = 0;
    while (from < LIMIT) {
        n += bp_ptab_walk(&t, from, 100, id_of(1, PID_TAG), out + n, &next);
        CHECK(next == (from + 100 < LIMIT ? from + 100 : LIMIT));
        from = next;
        calls++;
    }
    CHECK(calls == (LIMIT + 99) / 100);
    CHECK(n == n_expected);
    for (size_t i = 0; i < n_expected; i++) {
        int found = 0;
        for (size_t j = 0; j < n && !found; j++)
            found = out[j] == expected[i];
        CHECK(found);
    }
    CHECK(bp_ptab_walk(&t, LIMIT, 100, PID_TAG, out, &next) == 0 && next == LIMIT);
    CHECK(bp_ptab_walk(&t, LIMIT + 5, 100, PID_TAG, out, &next) == 0 && next == LIMIT + 5);
    memset(slots, 0, sizeof slots);
}

const struct bp_test_case bp_ptab_tests[] = {
    {"ptab: locate finds the read-only part", ptab_locate_finds_the_read_only_part},
    {"ptab: locate refuses what does not fit", ptab_locate_refuses_what_does_not_fit},
    {"ptab: locate finds the ERTS 14+ layout", ptab_locate_finds_the_erts14_layout},
    {"ptab: check and walk, ERTS 14+", ptab_check_and_walk_erts14},
    {"ptab: slot formula is a bijection", ptab_pix_is_a_bijection},
    {"ptab: check wants the id in its slot", ptab_check_wants_the_id_in_its_slot},
    {"ptab: walk in chunks", ptab_walk_in_chunks},
    {NULL, NULL},
};
