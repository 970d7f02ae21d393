/* test_elf.c - bp_elf (ELF symbol tables, build-id, debuglink, CRC-32) on
 * an image built here, then truncated, corrupted field by field and
 * fuzzed (under test-asan every read is checked); bp_objsyms' debug file
 * search (build-id, debuglink with its CRC) on files written to a
 * temporary directory. */
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bp_elf.h"
#include "bp_crc32.h"
#include "bp_objsyms.h"
#include "bp_test.h"

/* --------------------------------------------------------------- image */

#define IMG_MAX 4096
enum { S_NULL, S_TEXT, S_SYMTAB, S_STRTAB, S_SHSTRTAB, S_NOTE, S_LINK, S_COUNT };

/* Where build() put things, for the corruption tests. */
static size_t g_shoff, g_symoff, g_stroff, g_linkoff, g_noteoff;

static const char shstr[] = "\0.text\0.symtab\0.strtab\0.shstrtab\0.note.gnu.build-id\0"
                            ".gnu_debuglink";
static const uint32_t shname[S_COUNT] = {0, 1, 7, 15, 23, 33, 52};
static const char strtab[] = "\0alpha\0beta\0gamma_alias\0data\0undef\0empty";
static const uint8_t build_id[20] = {0xab, 0xcd, 1,  2,  3,  4,  5,  6,  7,  8,
                                     9,    10,   11, 12, 13, 14, 15, 16, 17, 18};

static void sym(uint8_t *b, size_t at, uint32_t name, unsigned bind, unsigned type,
                uint16_t shndx, uint64_t value, uint64_t size)
{
    Elf64_Sym s = {.st_name = name,
                   .st_info = ELF64_ST_INFO(bind, type),
                   .st_other = 0,
                   .st_shndx = shndx,
                   .st_value = value,
                   .st_size = size};
    memcpy(b + at, &s, sizeof s);
}

static size_t section(uint8_t *b, size_t idx, uint32_t type, uint64_t off,
                      uint64_t size, uint32_t link, uint64_t entsize, uint64_t addr)
{
    Elf64_Shdr s;
    memset(&s, 0, sizeof s);
    s.sh_name = shname[idx];
    s.sh_type = type;
    s.sh_offset = off;
    s.sh_size = size;
    s.sh_link = link;
    s.sh_entsize = entsize;
    s.sh_addr = addr;
    s.sh_addralign = 4;
    memcpy(b + g_shoff + idx * sizeof s, &s, sizeof s);
    return off + size;
}

/* An ET_DYN image: .text at 0x1000, functions alpha [0x1000, 0x1040),
 * beta (local) and gamma_alias (global) both [0x1040, 0x1060), and
 * symbols to be left out (an object, an undefined, a zero-sized, one whose
 * name lies past .strtab); a build-id; a debuglink "x.debug" with crc. */
static size_t build(uint8_t *b, uint32_t crc)
{
    memset(b, 0, IMG_MAX);
    Elf64_Ehdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_DYN;
    h.e_machine = EM_X86_64;
    h.e_version = EV_CURRENT;
    h.e_ehsize = sizeof h;
    h.e_shentsize = sizeof(Elf64_Shdr);
    h.e_shnum = S_COUNT;
    h.e_shstrndx = S_SHSTRTAB;
    size_t at = sizeof h;
    /* .symtab */
    g_symoff = at;
    sym(b, at + 0 * 24, 0, 0, 0, 0, 0, 0);
    sym(b, at + 1 * 24, 1, STB_GLOBAL, STT_FUNC, S_TEXT, 0x1000, 0x40);
    sym(b, at + 2 * 24, 7, STB_LOCAL, STT_FUNC, S_TEXT, 0x1040, 0x20);
    sym(b, at + 3 * 24, 12, STB_GLOBAL, STT_FUNC, S_TEXT, 0x1040, 0x20);
    sym(b, at + 4 * 24, 24, STB_GLOBAL, STT_OBJECT, S_TEXT, 0x1070, 0x8);
    sym(b, at + 5 * 24, 29, STB_GLOBAL, STT_FUNC, SHN_UNDEF, 0, 0);
    sym(b, at + 6 * 24, 35, STB_GLOBAL, STT_FUNC, S_TEXT, 0x1080, 0);
    sym(b, at + 7 * 24, 5000, STB_GLOBAL, STT_FUNC, S_TEXT, 0x1090, 0x10);
    size_t symsize = 8 * 24;
    at += symsize;
    g_stroff = at;
    memcpy(b + at, strtab, sizeof strtab);
    at += sizeof strtab;
    size_t shstroff = at;
    memcpy(b + at, shstr, sizeof shstr);
    at += sizeof shstr;
    at = (at + 3) & ~(size_t)3;
    g_noteoff = at;
    uint32_t note[3] = {4, sizeof build_id, NT_GNU_BUILD_ID};
    memcpy(b + at, note, sizeof note);
    memcpy(b + at + 12, "GNU", 4);
    memcpy(b + at + 16, build_id, sizeof build_id);
    size_t notesize = 16 + sizeof build_id;
    at += notesize;
    g_linkoff = at;
    memcpy(b + at, "x.debug\0", 8);
    memcpy(b + at + 8, &crc, 4);
    at += 12;
    at = (at + 7) & ~(size_t)7;
    g_shoff = at;
    h.e_shoff = at;
    memcpy(b, &h, sizeof h);
    section(b, S_TEXT, SHT_NOBITS, 0, 0x100, 0, 0, 0x1000);
    section(b, S_SYMTAB, SHT_SYMTAB, g_symoff, symsize, S_STRTAB, 24, 0);
    section(b, S_STRTAB, SHT_STRTAB, g_stroff, sizeof strtab, 0, 0, 0);
    section(b, S_SHSTRTAB, SHT_STRTAB, shstroff, sizeof shstr, 0, 0, 0);
    section(b, S_NOTE, SHT_NOTE, g_noteoff, notesize, 0, 0, 0);
    section(b, S_LINK, SHT_PROGBITS, g_linkoff, 12, 0, 0, 0);
    return at + S_COUNT * sizeof(Elf64_Shdr);
}

/* Runs every reader on buf[0..len): nothing may read outside it; whatever
 * symbols come back must have names inside their table. Returns the
 * number of symbols (or -1 when the image is refused). */
static int exercise(const uint8_t *buf, size_t len)
{
    struct bp_elf_src src = {.buf = buf, .fd = -1, .size = len};
    struct bp_elf e;
    if (bp_elf_open(&e, &src) != BP_ELF_OK)
        return -1;
    uint8_t id[BP_ELF_MAX_BUILD_ID];
    size_t idlen;
    char link[64];
    uint32_t crc;
    (void)bp_elf_build_id(&e, id, sizeof id, &idlen);
    (void)bp_elf_debuglink(&e, link, sizeof link, &crc);
    (void)bp_elf_section(&e, ".text");
    struct bp_elf_syms s;
    int n = -1;
    if (bp_elf_func_syms(&e, &s) == BP_ELF_OK) {
        n = (int)s.n;
        for (size_t i = 0; i < s.n; i++) {
            CHECK(s.v[i].name < s.strtab_len);
            CHECK(strlen(s.strtab + s.v[i].name) < s.strtab_len);
            CHECK(s.v[i].start < s.v[i].end);
            CHECK(bp_elf_syms_lookup(&s, s.v[i].start, NULL) != NULL);
        }
        (void)bp_elf_syms_lookup(&s, UINT64_MAX, NULL);
    }
    bp_elf_syms_free(&s);
    bp_elf_close(&e);
    return n;
}

/* ---------------------------------------------------------------- tests */

BP_TEST(elf_reads_symbols)
{
    uint8_t b[IMG_MAX];
    size_t len = build(b, 0x12345678u);
    struct bp_elf_src src = {.buf = b, .fd = -1, .size = len};
    struct bp_elf e;
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    struct bp_elf_syms s;
    CHECK(bp_elf_func_syms(&e, &s) == BP_ELF_OK);
    CHECK(s.n == 3); /* alpha, beta, gamma_alias */
    uint64_t start = 0;
    const char *n = bp_elf_syms_lookup(&s, 0x1000, &start);
    CHECK(n != NULL && strcmp(n, "alpha") == 0 && start == 0x1000);
    n = bp_elf_syms_lookup(&s, 0x103f, &start);
    CHECK(n != NULL && strcmp(n, "alpha") == 0);
    n = bp_elf_syms_lookup(&s, 0x1050, &start); /* the global alias wins */
    CHECK(n != NULL && strcmp(n, "gamma_alias") == 0 && start == 0x1040);
    CHECK(bp_elf_syms_lookup(&s, 0x0fff, NULL) == NULL);
    CHECK(bp_elf_syms_lookup(&s, 0x1060, NULL) == NULL); /* past the end */
    CHECK(bp_elf_syms_lookup(&s, 0x1074, NULL) == NULL); /* an object, not a function */
    CHECK(bp_elf_syms_lookup(&s, 0x1080, NULL) == NULL); /* zero-sized */
    CHECK(bp_elf_syms_lookup(&s, 0x1098, NULL) == NULL); /* name past .strtab */
    bp_elf_syms_free(&s);
    uint8_t id[BP_ELF_MAX_BUILD_ID];
    size_t idlen = 0;
    CHECK(bp_elf_build_id(&e, id, sizeof id, &idlen) == BP_ELF_OK);
    CHECK(idlen == sizeof build_id && memcmp(id, build_id, idlen) == 0);
    CHECK(bp_elf_build_id(&e, id, 8, &idlen) == BP_ELF_BAD); /* longer than the room */
    char link[64];
    uint32_t crc = 0;
    CHECK(bp_elf_debuglink(&e, link, sizeof link, &crc) == BP_ELF_OK);
    CHECK(strcmp(link, "x.debug") == 0 && crc == 0x12345678u);
    CHECK(bp_elf_debuglink(&e, link, 4, &crc) == BP_ELF_BAD); /* longer than the room */
    bp_elf_close(&e);
}

BP_TEST(elf_truncated_everywhere)
{
    uint8_t b[IMG_MAX];
    size_t len = build(b, 1);
    int full = exercise(b, len);
    CHECK(full == 3);
    for (size_t cut = 0; cut < len; cut++) {
        /* a heap copy of exactly cut bytes: ASan sees a read past it */
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, b, cut);
        int n = exercise(p, cut);
        CHECK(n == -1); /* the section headers are last: any cut loses them */
        free(p);
    }
}

static int refused_after(void (*patch)(uint8_t *))
{
    uint8_t b[IMG_MAX];
    size_t len = build(b, 1);
    patch(b);
    uint8_t *p = malloc(len);
    memcpy(p, b, len);
    int n = exercise(p, len);
    free(p);
    return n;
}

static void set64(uint8_t *b, size_t at, uint64_t v)
{
    memcpy(b + at, &v, 8);
}
static void set32(uint8_t *b, size_t at, uint32_t v)
{
    memcpy(b + at, &v, 4);
}
static void set16(uint8_t *b, size_t at, uint16_t v)
{
    memcpy(b + at, &v, 2);
}
static size_t shf(int idx, size_t field)
{
    return g_shoff + (size_t)idx * 64 + field;
}

static void p_magic(uint8_t *b)
{
    b[1] = 'X';
}
static void p_class(uint8_t *b)
{
    b[EI_CLASS] = ELFCLASS32;
}
static void p_endian(uint8_t *b)
{
    b[EI_DATA] = ELFDATA2MSB;
}
static void p_type(uint8_t *b)
{
    set16(b, 16, ET_REL);
}
static void p_shentsize(uint8_t *b)
{
    set16(b, 58, 40);
}
static void p_shoff_huge(uint8_t *b)
{
    set64(b, 40, UINT64_MAX - 8);
}
static void p_shnum_huge(uint8_t *b)
{
    set16(b, 60, 0xffff);
}
static void p_shstrndx(uint8_t *b)
{
    set16(b, 62, S_COUNT);
}
static void p_shstr_type(uint8_t *b)
{
    set32(b, shf(S_SHSTRTAB, 4), SHT_PROGBITS);
}
static void p_shstr_wrap(uint8_t *b)
{
    set64(b, shf(S_SHSTRTAB, 24), UINT64_MAX - 4);
}
static void p_sym_entsize(uint8_t *b)
{
    set64(b, shf(S_SYMTAB, 56), 16);
}
static void p_sym_size(uint8_t *b)
{
    set64(b, shf(S_SYMTAB, 32), 8 * 24 + 7);
}
static void p_sym_link(uint8_t *b)
{
    set32(b, shf(S_SYMTAB, 40), 99);
}
static void p_sym_link_type(uint8_t *b)
{
    set32(b, shf(S_SYMTAB, 40), S_TEXT);
}
static void p_sym_off_wrap(uint8_t *b)
{
    set64(b, shf(S_SYMTAB, 24), UINT64_MAX - 23);
}
static void p_sym_huge(uint8_t *b)
{
    set64(b, shf(S_SYMTAB, 32), (uint64_t)1 << 40);
}
static void p_str_off_wrap(uint8_t *b)
{
    set64(b, shf(S_STRTAB, 24), UINT64_MAX);
}
static void p_shname_wild(uint8_t *b)
{
    set32(b, shf(S_LINK, 0), 0xfffffff0u);
}

BP_TEST(elf_refuses_bad_headers)
{
    void (*bad[])(uint8_t *) = {p_magic,      p_class,      p_endian,     p_type,
                                p_shentsize,  p_shoff_huge, p_shnum_huge, p_shstrndx,
                                p_shstr_type, p_shstr_wrap};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = refused_after(bad[i]);
        if (n != -1)
            fprintf(stderr, "  header patch %zu accepted\n", i);
        CHECK(n == -1);
    }
}

/* A bad symbol table: the image opens, no symbols come back. */
static int syms_rc_after(void (*patch)(uint8_t *))
{
    uint8_t b[IMG_MAX];
    size_t len = build(b, 1);
    patch(b);
    struct bp_elf_src src = {.buf = b, .fd = -1, .size = len};
    struct bp_elf e;
    if (bp_elf_open(&e, &src) != BP_ELF_OK)
        return 99;
    struct bp_elf_syms s;
    int rc = bp_elf_func_syms(&e, &s);
    CHECK(s.n == 0 && s.v == NULL && s.strtab == NULL);
    bp_elf_syms_free(&s);
    bp_elf_close(&e);
    return rc;
}

BP_TEST(elf_refuses_bad_symtab)
{
    void (*bad[])(uint8_t *) = {p_sym_entsize,   p_sym_size,     p_sym_link,
                                p_sym_link_type, p_sym_off_wrap, p_sym_huge,
                                p_str_off_wrap};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = syms_rc_after(bad[i]);
        if (rc != BP_ELF_BAD)
            fprintf(stderr, "  symtab patch %zu: %d\n", i, rc);
        CHECK(rc == BP_ELF_BAD);
    }
    /* a section name offset far outside .shstrtab is no match, not a read */
    CHECK(refused_after(p_shname_wild) == 3);
}

BP_TEST(elf_bad_notes_and_debuglink)
{
    uint8_t b[IMG_MAX];
    size_t len = build(b, 7);
    struct bp_elf_src src = {.buf = b, .fd = -1, .size = len};
    struct bp_elf e;
    uint8_t id[BP_ELF_MAX_BUILD_ID];
    size_t idlen;
    char link[64];
    uint32_t crc;
    /* a note whose name runs past its section */
    set32(b, g_noteoff, 0x7ffffff0u);
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    CHECK(bp_elf_build_id(&e, id, sizeof id, &idlen) == BP_ELF_BAD);
    bp_elf_close(&e);
    /* a descriptor past its section */
    build(b, 7);
    set32(b, g_noteoff + 4, 0xfffffff0u);
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    CHECK(bp_elf_build_id(&e, id, sizeof id, &idlen) == BP_ELF_BAD);
    bp_elf_close(&e);
    /* another note type: none */
    build(b, 7);
    set32(b, g_noteoff + 8, 99);
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    CHECK(bp_elf_build_id(&e, id, sizeof id, &idlen) == BP_ELF_NONE);
    bp_elf_close(&e);
    /* a debuglink name without its NUL, one with a '/', one with no room for
     * the CRC */
    build(b, 7);
    memcpy(b + g_linkoff, "abcdefghijkl", 12);
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    CHECK(bp_elf_debuglink(&e, link, sizeof link, &crc) == BP_ELF_BAD);
    bp_elf_close(&e);
    build(b, 7);
    memcpy(b + g_linkoff, "../x.d\0", 7);
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    CHECK(bp_elf_debuglink(&e, link, sizeof link, &crc) == BP_ELF_BAD);
    bp_elf_close(&e);
    build(b, 7);
    memcpy(b + g_linkoff, "abcdefghij\0", 11);
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    CHECK(bp_elf_debuglink(&e, link, sizeof link, &crc) == BP_ELF_BAD);
    bp_elf_close(&e);
}

BP_TEST(elf_fuzzed_bytes)
{
    uint8_t b[IMG_MAX];
    size_t len = build(b, 1);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 3000; round++) {
        uint8_t *p = malloc(len);
        memcpy(p, b, len);
        for (int k = 0; k < 1 + round % 6; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = (size_t)(x % len);
            /* mostly the headers and tables, where the offsets are */
            if (round % 2 == 0)
                at = g_shoff + (size_t)(x % (len - g_shoff));
            p[at] = (uint8_t)(x >> 32);
        }
        (void)exercise(p, len);
        free(p);
    }
}


/* --------------------------------------------------------------- files */

static void write_file(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK(fwrite(b, 1, len, f) == len);
    fclose(f);
}

/* A "stripped object": the image without its .symtab (type made NULL). */
static size_t build_stripped(uint8_t *b, uint32_t crc)
{
    size_t len = build(b, crc);
    set32(b, shf(S_SYMTAB, 4), SHT_NULL);
    return len;
}

BP_TEST(elf_file_reads_like_buffer)
{
    char dir[] = "/tmp/bp_elf_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    uint8_t b[IMG_MAX];
    size_t len = build(b, 1);
    snprintf(path, sizeof path, "%s/obj.so", dir);
    write_file(path, b, len);
    int fd = open(path, O_RDONLY);
    struct bp_elf_src src = {.buf = NULL, .fd = fd, .size = len};
    struct bp_elf e;
    CHECK(bp_elf_open(&e, &src) == BP_ELF_OK);
    struct bp_elf_syms s;
    CHECK(bp_elf_func_syms(&e, &s) == BP_ELF_OK && s.n == 3);
    bp_elf_syms_free(&s);
    bp_elf_close(&e);
    /* the file shrinks under a reader that was told its old size */
    CHECK(truncate(path, (off_t)(len / 2)) == 0);
    CHECK(bp_elf_open(&e, &src) == BP_ELF_BAD);
    uint32_t crc;
    CHECK(bp_elf_file_crc32(fd, len, &crc) == -1);
    close(fd);
    unlink(path);
    rmdir(dir);
}

/* bp_obj_load: own .symtab; build-id (and a file whose build-id differs);
 * debuglink with the right CRC, and with a wrong one (not used). */
BP_TEST(objsyms_finds_debug_files)
{
    char dir[] = "/tmp/bp_objsyms_XXXXXX", path[512], obj_path[512];
    CHECK(mkdtemp(dir) != NULL);
    uint8_t full[IMG_MAX], stripped[IMG_MAX];
    size_t full_len = build(full, 0);
    uint32_t crc = bp_crc32_update(0, full, full_len);
    struct bp_obj o;
    /* its own .symtab */
    snprintf(obj_path, sizeof obj_path, "%s/full.so", dir);
    write_file(obj_path, full, full_len);
    CHECK(bp_obj_load(&o, obj_path, 0x10000, dir) == 0);
    CHECK(o.source == BP_OBJ_SYMTAB && o.syms.n == 3 && o.build_id_len == 20);
    const char *n = bp_obj_lookup(&o, 0x10000 + 0x1010, NULL);
    CHECK(n != NULL && strcmp(n, "alpha") == 0);
    CHECK(bp_obj_lookup(&o, 0x1010, NULL) == NULL); /* below the bias */
    bp_obj_free(&o);
    /* stripped, nothing installed: dynsym, debuglink x.debug noted */
    size_t slen = build_stripped(stripped, crc);
    snprintf(obj_path, sizeof obj_path, "%s/lib.so", dir);
    write_file(obj_path, stripped, slen);
    CHECK(bp_obj_load(&o, obj_path, 0, dir) == 0);
    CHECK(o.source == BP_OBJ_DYNSYM && o.syms.n == 0 && o.debuglink != NULL &&
          strcmp(o.debuglink, "x.debug") == 0 && o.nrejected == 0);
    bp_obj_free(&o);
    /* debuglink next to it, wrong CRC (a byte changed): not used */
    full[g_stroff + 1] = 'A'; /* "Alpha" */
    snprintf(path, sizeof path, "%s/x.debug", dir);
    write_file(path, full, full_len);
    CHECK(bp_obj_load(&o, obj_path, 0, dir) == 0);
    CHECK(o.source == BP_OBJ_DYNSYM && o.nrejected == 1 &&
          o.rejected[0].reason == BP_REJ_CRC_MISMATCH);
    bp_obj_free(&o);
    /* the right CRC in .debug/: used */
    full[g_stroff + 1] = 'a';
    unlink(path);
    snprintf(path, sizeof path, "%s/.debug", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.debug/x.debug", dir);
    write_file(path, full, full_len);
    CHECK(bp_obj_load(&o, obj_path, 0, dir) == 0);
    CHECK(o.source == BP_OBJ_DEBUGLINK && o.debug_file != NULL &&
          strcmp(o.debug_file, path) == 0);
    n = bp_obj_lookup(&o, 0x1041, NULL);
    CHECK(n != NULL && strcmp(n, "gamma_alias") == 0);
    bp_obj_free(&o);
    unlink(path);
    /* by build-id under the root: a file with another build-id is refused,
     * then the right one is taken */
    char idpath[512];
    snprintf(path, sizeof path, "%s/.build-id", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.build-id/ab", dir);
    mkdir(path, 0700);
    snprintf(idpath, sizeof idpath,
             "%s/.build-id/ab/cd0102030405060708090a0b0c0d0e0f101112.debug", dir);
    uint8_t other[IMG_MAX];
    size_t olen = build(other, 0);
    other[g_noteoff + 16 + 19] ^= 0xff;
    write_file(idpath, other, olen);
    CHECK(bp_obj_load(&o, obj_path, 0, dir) == 0);
    CHECK(o.source == BP_OBJ_DYNSYM && o.nrejected == 1 &&
          o.rejected[0].reason == BP_REJ_BUILD_ID_MISMATCH);
    bp_obj_free(&o);
    write_file(idpath, full, full_len);
    CHECK(bp_obj_load(&o, obj_path, 0, dir) == 0);
    CHECK(o.source == BP_OBJ_BUILD_ID && o.syms.n == 3);
    char hex[64];
    CHECK(bp_obj_build_id_hex(&o, hex, sizeof hex) == 40 &&
          strcmp(hex, "abcd0102030405060708090a0b0c0d0e0f101112") == 0);
    bp_obj_free(&o);
    unlink(idpath);
    snprintf(path, sizeof path, "%s/.build-id/ab", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/.build-id", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/.debug", dir);
    rmdir(path);
    unlink(obj_path);
    snprintf(path, sizeof path, "%s/full.so", dir);
    unlink(path);
    rmdir(dir);
}

BP_TEST(objsyms_set_keeps_objects)
{
    struct bp_objsyms set;
    CHECK(bp_objsyms_init(&set, "/nonexistent-debug-root") == 0);
    long a = bp_objsyms_get(&set, 0x1000, 0, "/nonexistent/a.so");
    long b = bp_objsyms_get(&set, 0x2000, 0, "/nonexistent/b.so");
    CHECK(a == 0 && b == 1);
    CHECK(bp_objsyms_get(&set, 0x1000, 0, "/nonexistent/a.so") == 0);
    CHECK(bp_objsyms_get(&set, 0x1000, 0, "/nonexistent/c.so") == 2); /* reused base */
    const struct bp_obj *o = bp_objsyms_at(&set, 1);
    CHECK(o != NULL && o->source == BP_OBJ_DYNSYM &&
          strcmp(o->path, "/nonexistent/b.so") == 0);
    CHECK(bp_objsyms_at(&set, 3) == NULL);
    bp_objsyms_free(&set);
    bp_objsyms_free(&set); /* twice: harmless */
}

/* Threads asking one set for the same objects get one index each. */
static struct bp_objsyms g_set;

static void *get_many(void *arg)
{
    long *seen = arg;
    char path[64];
    for (int k = 0; k < 200; k++) {
        int i = k % 8;
        snprintf(path, sizeof path, "/nonexistent/obj%d.so", i);
        long idx = bp_objsyms_get(&g_set, 0x1000u * (uint64_t)(i + 1), 0, path);
        const struct bp_obj *o = idx >= 0 ? bp_objsyms_at(&g_set, (size_t)idx) : NULL;
        if (o == NULL || strcmp(o->path, path) != 0)
            seen[i] = -2;
        else if (seen[i] == -1)
            seen[i] = idx;
        else if (seen[i] != idx)
            seen[i] = -3;
    }
    return NULL;
}

BP_TEST(objsyms_threads_share_a_set)
{
    pthread_t t[4];
    long seen[4][8];
    CHECK(bp_objsyms_init(&g_set, "/nonexistent-debug-root") == 0);
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 8; j++)
            seen[i][j] = -1;
        CHECK(pthread_create(&t[i], NULL, get_many, seen[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(g_set.n == 8);
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 4; i++)
            CHECK(seen[i][j] >= 0 && seen[i][j] == seen[0][j]);
    bp_objsyms_free(&g_set);
}

const struct bp_test_case bp_elf_tests[] = {
    {"elf_reads_symbols", elf_reads_symbols},
    {"elf_truncated_everywhere", elf_truncated_everywhere},
    {"elf_refuses_bad_headers", elf_refuses_bad_headers},
    {"elf_refuses_bad_symtab", elf_refuses_bad_symtab},
    {"elf_bad_notes_and_debuglink", elf_bad_notes_and_debuglink},
    {"elf_fuzzed_bytes", elf_fuzzed_bytes},
    {"elf_file_reads_like_buffer", elf_file_reads_like_buffer},
    {"objsyms_finds_debug_files", objsyms_finds_debug_files},
    {"objsyms_set_keeps_objects", objsyms_set_keeps_objects},
    {"objsyms_threads_share_a_set", objsyms_threads_share_a_set},
    {NULL, NULL},
};
