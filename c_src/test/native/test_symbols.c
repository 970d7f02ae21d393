/* test_symbols.c - bp_symbols: symfile parsing against hand-built buffers,
 * a snapshot of a descriptor list built here, checked reads of unmapped
 * memory, dladdr names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bp_symbols.h"
#include "bp_test.h"

/* Builds an OTP 25 module symfile: ranges {start, end, name}, one line
 * record on the first range. Returns its length. */
struct tr {
    uint32_t start, end;
    const char *name;
};

static size_t put(uint8_t *b, size_t at, const void *v, size_t n)
{
    memcpy(b + at, v, n);
    return at + n;
}

static size_t build(uint8_t *b, uint64_t base, uint32_t code_size, const char *mod,
                    const struct tr *r, uint32_t nr)
{
    memset(b, 0, 4096);
    uint32_t one = 1;
    uint16_t ml = (uint16_t)(strlen(mod) + 1);
    put(b, 0, &one, 4);
    put(b, 8, &base, 8);
    put(b, 16, &nr, 4);
    put(b, 20, &code_size, 4);
    put(b, 24, &ml, 2);
    put(b, 26, mod, ml);
    size_t at = 32 + ml;
    for (uint32_t i = 0; i < nr; i++) {
        uint16_t nl = (uint16_t)(strlen(r[i].name) + 1);
        uint32_t lines = i == 0 ? 1 : 0;
        put(b, at, &r[i].start, 4);
        put(b, at + 4, &r[i].end, 4);
        put(b, at + 8, &lines, 4);
        put(b, at + 12, &nl, 2);
        put(b, at + 14, r[i].name, nl);
        at += 16 + nl;
        if (lines) {
            uint32_t off = r[i].start, line = 7;
            uint16_t fl = 6;
            put(b, at, &off, 4);
            put(b, at + 4, &line, 4);
            put(b, at + 8, &fl, 2);
            put(b, at + 10, "m.erl", 6);
            at += 12 + fl;
        }
    }
    return at;
}

static const struct tr ranges[] = {{0, 0x10, "m::codeHeader"}, {0x10, 0x40, "m:f/1"},
                                   {0x40, 0x80, "m:g/2"}};

/* The emulator's record as OTP 25, 27 and 29 write it (32 bytes). */
static void emu_record(uint8_t rec[32], uint32_t layout)
{
    uint64_t normal_exit = 0x7f0000001000ull;
    memset(rec, 0, 32);
    memcpy(rec + 8, &layout, 4);
    memcpy(rec + 16, &normal_exit, 8);
}

BP_TEST(parses_module_symfile)
{
    uint8_t b[4096];
    size_t len = build(b, 0x10000, 0x80, "m", ranges, 3);
    struct bp_jit_table t;
    memset(&t, 0, sizeof t);
    CHECK(bp_jit_parse_symfile(b, len, &t) == 0);
    CHECK(t.count == 3);
    CHECK(t.syms[1].start == 0x10010 && t.syms[1].end == 0x10040);
    CHECK(t.syms[1].name_len == 5 && memcmp(t.pool + t.syms[1].name_off, "m:f/1", 6) == 0);
    CHECK(memcmp(t.pool + t.syms[2].name_off, "m:g/2", 6) == 0);
    bp_jit_table_free(&t);
}

BP_TEST(rejects_malformed_symfiles)
{
    uint8_t b[4096];
    size_t len = build(b, 0x10000, 0x80, "m", ranges, 3);
    struct bp_jit_table t;
    memset(&t, 0, sizeof t);
    /* every truncation is refused and leaves the table empty */
    for (size_t cut = 0; cut < len; cut++)
        CHECK(bp_jit_parse_symfile(b, cut, &t) == -1);
    CHECK(t.count == 0);
    uint8_t c[4096];
    memcpy(c, b, len);
    uint32_t big = 0x1000000;
    memcpy(c + 16, &big, 4); /* range count beyond the buffer */
    CHECK(bp_jit_parse_symfile(c, len, &t) == -1);
    memcpy(c, b, len);
    uint32_t small = 0x20;
    memcpy(c + 20, &small, 4); /* ranges beyond code_size */
    CHECK(bp_jit_parse_symfile(c, len, &t) == -1);
    memcpy(c, b, len);
    c[26 + 1] = 'x'; /* module name loses its NUL */
    CHECK(bp_jit_parse_symfile(c, len, &t) == -1);
    uint32_t seven = 7;
    memcpy(c, b, len);
    memcpy(c, &seven, 4); /* unknown header */
    CHECK(bp_jit_parse_symfile(c, len, &t) == -1);
    uint32_t zero = 0;
    memcpy(c, &zero, 4); /* the emulator's record: accepted, no names */
    t.frame_layout = -1;
    CHECK(bp_jit_parse_symfile(c, len, &t) == 0);
    CHECK(t.count == 0 && t.frame_layout == -1); /* 0x10000 is not a layout */
    uint8_t emu[32];
    emu_record(emu, 1);
    CHECK(bp_jit_parse_symfile(emu, sizeof emu, &t) == 0 && t.frame_layout == 1);
    emu_record(emu, 0);
    /* another size is another layout: accepted, its layout not read */
    CHECK(bp_jit_parse_symfile(emu, 24, &t) == 0 && t.frame_layout == 1);
    memset(emu + 16, 0, 8); /* no normal_exit */
    CHECK(bp_jit_parse_symfile(emu, sizeof emu, &t) == 0 && t.frame_layout == 1);
    emu_record(emu, 0);
    CHECK(bp_jit_parse_symfile(emu, sizeof emu, &t) == 0 && t.frame_layout == 0);
    /* random bytes never crash */
    srand(42);
    for (int i = 0; i < 2000; i++) {
        memcpy(c, b, len);
        for (int k = 0; k < 4; k++)
            c[rand() % len] = (uint8_t)rand();
        int rc = bp_jit_parse_symfile(c, len, &t);
        CHECK(rc == 0 || rc == -1);
    }
    for (size_t i = 0; i < t.count; i++)
        CHECK(t.syms[i].start <= t.syms[i].end &&
              t.syms[i].name_off + t.syms[i].name_len < t.pool_len);
    bp_jit_table_free(&t);
}

struct entry {
    struct entry *next, *prev;
    const uint8_t *symfile;
    uint64_t size;
};

struct descriptor {
    uint32_t version, action;
    struct entry *relevant, *first;
};

BP_TEST(snapshots_a_descriptor_list)
{
    static uint8_t b1[4096], b2[4096];
    static const struct tr r2[] = {{0, 0x20, "n:h/0"}};
    size_t l1 = build(b1, 0x20000, 0x80, "m", ranges, 3);
    size_t l2 = build(b2, 0x10000, 0x20, "n", r2, 1);
    uint8_t emu[32];
    emu_record(emu, 0);
    struct entry e3 = {NULL, NULL, emu, sizeof emu};
    struct entry e2 = {&e3, NULL, b2, l2};
    struct entry e1 = {&e2, NULL, b1, l1};
    e3.prev = &e2;
    e2.prev = &e1;
    struct descriptor d = {1, 0, NULL, &e1};
    struct bp_jit_table t;
    memset(&t, 0, sizeof t);
    CHECK(bp_jit_snapshot((uint64_t)(uintptr_t)&d, &t) == BP_JIT_OK);
    CHECK(t.count == 4 && t.modules == 3 && t.skipped == 0);
    CHECK(t.frame_layout == 0 && t.located == 0); /* the emulator record's; given */
    CHECK(t.count == 4 && t.syms[0].start == 0x10000 && t.syms[1].start == 0x20000);
    bp_jit_table_free(&t);
    /* a broken back link is never accepted */
    e2.prev = &e3;
    CHECK(bp_jit_snapshot((uint64_t)(uintptr_t)&d, &t) == BP_JIT_UNREADABLE);
    CHECK(t.count == 0);
    e2.prev = &e1;
    /* a cycle is bounded (and refused by the back-link check) */
    e3.next = &e1;
    CHECK(bp_jit_snapshot((uint64_t)(uintptr_t)&d, &t) != BP_JIT_OK);
    e3.next = NULL;
    /* an unreadable symfile is skipped, the rest kept */
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    munmap(page, 4096);
    e2.symfile = page;
    CHECK(bp_jit_snapshot((uint64_t)(uintptr_t)&d, &t) == BP_JIT_OK);
    CHECK(t.count == 3 && t.skipped == 1);
    bp_jit_table_free(&t);
    /* a wrong version is refused */
    d.version = 2;
    CHECK(bp_jit_snapshot((uint64_t)(uintptr_t)&d, &t) != BP_JIT_OK);
}

BP_TEST(finds_a_hidden_descriptor)
{
    static uint8_t b1[4096];
    size_t l1 = build(b1, 0x20000, 0x80, "m", ranges, 3);
    uint8_t emu[32];
    emu_record(emu, 1);
    /* newest first, as the JIT inserts: a module, the emulator, the module
     * erts_beamasm registered before it */
    struct entry e3 = {NULL, NULL, b1, l1};
    struct entry e2 = {&e3, NULL, emu, sizeof emu};
    struct entry e1 = {&e2, NULL, b1, l1};
    e3.prev = &e2;
    e2.prev = &e1;
    /* a decoy whose first entry has a back link, then the descriptor */
    struct entry decoy = {NULL, &e1, b1, l1};
    uint64_t seg[64];
    for (size_t i = 0; i < 64; i++)
        seg[i] = 0x0000000200000001ull; /* version 1, action 2, then junk */
    struct descriptor *fake = (struct descriptor *)(void *)&seg[8];
    struct descriptor *real = (struct descriptor *)(void *)&seg[40];
    *fake = (struct descriptor){1, 0, NULL, &decoy};
    *real = (struct descriptor){1, 0, NULL, &e1};
    uint64_t lo = (uint64_t)(uintptr_t)seg, hi = lo + sizeof seg;
    int layout = -2;
    CHECK(bp_jit_frame_layout((uint64_t)(uintptr_t)real) == 1);
    CHECK(bp_jit_frame_layout((uint64_t)(uintptr_t)fake) == -1);
    CHECK(bp_jit_find_descriptor(lo, hi, &layout) == (uint64_t)(uintptr_t)real && layout == 1);
    /* the snapshot of it has the layout too */
    struct bp_jit_table t;
    memset(&t, 0, sizeof t);
    CHECK(bp_jit_snapshot((uint64_t)(uintptr_t)real, &t) == BP_JIT_OK);
    CHECK(t.frame_layout == 1 && t.count == 6 && t.modules == 3);
    bp_jit_table_free(&t);
    /* a segment ending inside the descriptor, or a list without the
     * emulator's record, or one with a layout other than 0 or 1: none */
    CHECK(bp_jit_find_descriptor(lo, (uint64_t)(uintptr_t)real + 16, &layout) == 0 &&
          layout == -1);
    e2.symfile = b1;
    e2.size = l1;
    CHECK(bp_jit_frame_layout((uint64_t)(uintptr_t)real) == -1);
    CHECK(bp_jit_find_descriptor(lo, hi, &layout) == 0 && layout == -1);
    emu_record(emu, 7);
    e2.symfile = emu;
    e2.size = sizeof emu;
    CHECK(bp_jit_find_descriptor(lo, hi, &layout) == 0);
    emu_record(emu, 0);
    CHECK(bp_jit_find_descriptor(lo, hi, &layout) == (uint64_t)(uintptr_t)real && layout == 0);
    /* an unmapped range is skipped, not faulted on */
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    munmap(page, 4096);
    CHECK(bp_jit_find_descriptor((uint64_t)(uintptr_t)page, (uint64_t)(uintptr_t)page + 4096,
                                 &layout) == 0);
}

BP_TEST(checked_reads)
{
    uint64_t v = 0x1122334455667788ull, out = 0;
    CHECK(bp_sym_read(&out, (uint64_t)(uintptr_t)&v, sizeof v) == 0 && out == v);
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    munmap(page, 4096);
    CHECK(bp_sym_read(&out, (uint64_t)(uintptr_t)page, sizeof out) == -1);
    CHECK(bp_sym_read(&out, 0, sizeof out) == -1);
    CHECK(bp_sym_read(&out, UINT64_MAX - 2, sizeof out) == -1);
}

static int local_function(int x)
{
    return x + 1;
}

BP_TEST(describes_addresses)
{
    char name[256];
    size_t n = bp_sym_describe((uint64_t)(uintptr_t)&qsort + 1, name, sizeof name);
    CHECK(n > 0 && strstr(name, "qsort") != NULL);
    n = bp_sym_describe((uint64_t)(uintptr_t)&local_function, name, sizeof name);
    CHECK(n > 0 && strstr(name, "bp_unit+0x") == name);
    CHECK(local_function(1) == 2);
    uint64_t heap_like = 0;
    CHECK(bp_sym_describe((uint64_t)(uintptr_t)&heap_like, name, sizeof name) == 0 ||
          strstr(name, "+0x") != NULL);
    CHECK(bp_sym_describe(0, name, sizeof name) == 0);
    char tiny[4];
    n = bp_sym_describe((uint64_t)(uintptr_t)&qsort, tiny, sizeof tiny);
    CHECK(n == 3 && tiny[3] == '\0');
    /* not a BEAM: no erts_frame_layout, no descriptor in our data; each
     * lookup counts as a read of VM internals, dladdr does not */
    uint64_t reads = bp_sym_internal_reads();
    (void)bp_sym_describe((uint64_t)(uintptr_t)&qsort, name, sizeof name);
    CHECK(bp_sym_internal_reads() == reads);
    enum bp_fl_source src = BP_FL_SYMBOL;
    CHECK(bp_sym_frame_layout_from(&src) == -1 && src == BP_FL_NONE);
    CHECK(bp_sym_internal_reads() > reads);
    reads = bp_sym_internal_reads();
    CHECK(bp_sym_frame_layout() == -1);
    CHECK(bp_sym_internal_reads() > reads);
    reads = bp_sym_internal_reads();
    struct bp_jit_table t;
    memset(&t, 0, sizeof t);
    CHECK(bp_jit_snapshot(0, &t) == BP_JIT_NO_DESCRIPTOR);
    CHECK(bp_sym_internal_reads() > reads);
}

const struct bp_test_case bp_symbols_tests[] = {
    {"parses_module_symfile", parses_module_symfile},
    {"rejects_malformed_symfiles", rejects_malformed_symfiles},
    {"snapshots_a_descriptor_list", snapshots_a_descriptor_list},
    {"finds_a_hidden_descriptor", finds_a_hidden_descriptor},
    {"checked_reads", checked_reads},
    {"describes_addresses", describes_addresses},
    {NULL, NULL}};
