/* bp_elf.c - bounds-checked ELF64 reading: headers, section headers,
 * build-id, .gnu_debuglink, function symbols. See bp_elf.h.
 *
 * Every field is read from a copy (memcpy into a local), never through a
 * pointer into the file, so alignment and truncation cannot fault. An
 * offset and a size are accepted only if off <= size && len <= size - off.
 */
#include "bp_elf.h"
#include "bp_bytes.h"
#include "bp_crc32.h"

#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- reading */

static int bp_in_bounds(uint64_t size, uint64_t off, uint64_t len)
{
    return off <= size && len <= size - off;
}

int bp_elf_read(const struct bp_elf_src *src, uint64_t off, void *dst, size_t len)
{
    if (!bp_in_bounds(src->size, off, len))
        return -1;
    if (len == 0)
        return 0;
    if (src->buf != NULL) {
        memcpy(dst, src->buf + off, len);
        return 0;
    }
    size_t done = 0;
    while (done < len) {
        if (off + done > (uint64_t)INT64_MAX)
            return -1;
        ssize_t n =
            pread(src->fd, (uint8_t *)dst + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* error, or the file shrank under us */
        done += (size_t)n;
    }
    return 0;
}

/* Reads a whole section into a new buffer with one NUL added past its end
 * (so a string search never leaves it). NULL on a bad range, a size over
 * the cap, or no memory (*nomem set). */
static uint8_t *bp_section_copy(const struct bp_elf *e, const struct bp_elf_shdr *s,
                                int *nomem)
{
    *nomem = 0;
    if (s->type == SHT_NOBITS || s->size > BP_ELF_MAX_TABLE ||
        !bp_in_bounds(e->src.size, s->offset, s->size))
        return NULL;
    uint8_t *p = malloc((size_t)s->size + 1);
    if (p == NULL) {
        *nomem = 1;
        return NULL;
    }
    if (bp_elf_read(&e->src, s->offset, p, (size_t)s->size) != 0) {
        free(p);
        return NULL;
    }
    p[s->size] = 0;
    return p;
}

/* -------------------------------------------------------------- headers */

static void bp_shdr_decode(const uint8_t *b, struct bp_elf_shdr *s)
{
    s->name = bp_rd32(b);
    s->type = bp_rd32(b + 4);
    s->flags = bp_rd64(b + 8);
    s->addr = bp_rd64(b + 16);
    s->offset = bp_rd64(b + 24);
    s->size = bp_rd64(b + 32);
    s->link = bp_rd32(b + 40);
    s->info = bp_rd32(b + 44);
    s->addralign = bp_rd64(b + 48);
    s->entsize = bp_rd64(b + 56);
}

/* The ELF header: checks identity and fills shoff, shnum, shstrndx. */
static int bp_elf_header(struct bp_elf *e, uint64_t *shoff, uint32_t *shnum,
                         uint32_t *shstrndx)
{
    uint8_t h[sizeof(Elf64_Ehdr)];
    if (bp_elf_read(&e->src, 0, h, sizeof h) != 0 || memcmp(h, ELFMAG, SELFMAG) != 0 ||
        h[EI_CLASS] != ELFCLASS64 || h[EI_DATA] != ELFDATA2LSB ||
        h[EI_VERSION] != EV_CURRENT)
        return BP_ELF_BAD;
    e->type = bp_rd16(h + offsetof(Elf64_Ehdr, e_type));
    if (e->type != ET_EXEC && e->type != ET_DYN)
        return BP_ELF_BAD;
    *shoff = bp_rd64(h + offsetof(Elf64_Ehdr, e_shoff));
    *shnum = bp_rd16(h + offsetof(Elf64_Ehdr, e_shnum));
    *shstrndx = bp_rd16(h + offsetof(Elf64_Ehdr, e_shstrndx));
    if (*shoff == 0)
        return BP_ELF_BAD; /* no section headers: nothing we can read */
    if (bp_rd16(h + offsetof(Elf64_Ehdr, e_shentsize)) != sizeof(Elf64_Shdr))
        return BP_ELF_BAD;
    if (*shnum == 0 || *shstrndx == SHN_XINDEX) { /* extended numbering: in header 0 */
        uint8_t s0[sizeof(Elf64_Shdr)];
        if (bp_elf_read(&e->src, *shoff, s0, sizeof s0) != 0)
            return BP_ELF_BAD;
        struct bp_elf_shdr z;
        bp_shdr_decode(s0, &z);
        if (*shnum == 0)
            *shnum = z.size > BP_ELF_MAX_SECTIONS ? 0 : (uint32_t)z.size;
        if (*shstrndx == SHN_XINDEX)
            *shstrndx = z.link;
    }
    if (*shnum == 0 || *shnum > BP_ELF_MAX_SECTIONS || *shstrndx >= *shnum ||
        !bp_in_bounds(e->src.size, *shoff, (uint64_t)*shnum * sizeof(Elf64_Shdr)))
        return BP_ELF_BAD;
    return BP_ELF_OK;
}

int bp_elf_open(struct bp_elf *e, const struct bp_elf_src *src)
{
    uint64_t shoff;
    uint32_t shnum, shstrndx;
    int nomem;
    memset(e, 0, sizeof *e);
    e->src = *src;
    int rc = bp_elf_header(e, &shoff, &shnum, &shstrndx);
    if (rc != BP_ELF_OK)
        goto fail;
    size_t bytes = (size_t)shnum * sizeof(Elf64_Shdr);
    uint8_t *raw = malloc(bytes);
    e->sh = malloc(shnum * sizeof *e->sh);
    rc = BP_ELF_NOMEM;
    if (raw == NULL || e->sh == NULL) {
        free(raw);
        goto fail;
    }
    rc = bp_elf_read(&e->src, shoff, raw, bytes) == 0 ? BP_ELF_OK : BP_ELF_BAD;
    for (uint32_t i = 0; rc == BP_ELF_OK && i < shnum; i++)
        bp_shdr_decode(raw + (size_t)i * sizeof(Elf64_Shdr), &e->sh[i]);
    free(raw);
    if (rc != BP_ELF_OK)
        goto fail;
    e->shnum = shnum;
    e->shstr = (char *)bp_section_copy(e, &e->sh[shstrndx], &nomem);
    if (e->shstr == NULL || e->sh[shstrndx].type != SHT_STRTAB) {
        rc = nomem ? BP_ELF_NOMEM : BP_ELF_BAD;
        goto fail;
    }
    e->shstr_len = (size_t)e->sh[shstrndx].size;
    return BP_ELF_OK;
fail:
    bp_elf_close(e);
    return rc;
}

void bp_elf_close(struct bp_elf *e)
{
    free(e->sh);
    free(e->shstr);
    memset(e, 0, sizeof *e);
}

const struct bp_elf_shdr *bp_elf_section(const struct bp_elf *e, const char *name)
{
    for (uint32_t i = 0; i < e->shnum; i++) {
        /* shstr has a NUL past its end: a name at any offset < len ends */
        if (e->sh[i].name < e->shstr_len && strcmp(e->shstr + e->sh[i].name, name) == 0)
            return &e->sh[i];
    }
    return NULL;
}

/* --------------------------------------------------- build-id, debuglink */

/* Looks for NT_GNU_BUILD_ID named "GNU" in one note section's copy. */
static int bp_notes_build_id(const uint8_t *p, uint64_t len, uint64_t align,
                             uint8_t *out, size_t cap, size_t *id_len)
{
    uint64_t at = 0, mask = align - 1;
    while (len - at >= 12) {
        uint64_t namesz = bp_rd32(p + at), descsz = bp_rd32(p + at + 4);
        uint32_t type = bp_rd32(p + at + 8);
        uint64_t name_pad = (namesz + mask) & ~mask, desc_pad = (descsz + mask) & ~mask;
        at += 12;
        if (name_pad > len - at)
            return BP_ELF_BAD;
        const uint8_t *name = p + at;
        at += name_pad;
        if (descsz > len - at)
            return BP_ELF_BAD;
        if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(name, "GNU", 4) == 0) {
            if (descsz == 0 || descsz > cap)
                return BP_ELF_BAD;
            memcpy(out, p + at, (size_t)descsz);
            *id_len = (size_t)descsz;
            return BP_ELF_OK;
        }
        at += desc_pad <= len - at ? desc_pad : len - at;
    }
    return BP_ELF_NONE;
}

/* Note sections are searched in order; one that is malformed (or padded
 * in a way not understood) is passed over. */
int bp_elf_build_id(const struct bp_elf *e, uint8_t *out, size_t cap, size_t *len)
{
    int nomem, bad = 0;
    *len = 0;
    for (uint32_t i = 0; i < e->shnum; i++) {
        if (e->sh[i].type != SHT_NOTE)
            continue;
        uint8_t *p = bp_section_copy(e, &e->sh[i], &nomem);
        if (p == NULL && nomem)
            return BP_ELF_NOMEM;
        int rc = p == NULL ? BP_ELF_BAD
                           : bp_notes_build_id(p, e->sh[i].size,
                                               e->sh[i].addralign == 8 ? 8 : 4, out,
                                               cap, len);
        free(p);
        if (rc == BP_ELF_OK)
            return rc;
        bad |= rc == BP_ELF_BAD;
    }
    return bad ? BP_ELF_BAD : BP_ELF_NONE;
}

int bp_elf_debuglink(const struct bp_elf *e, char *name, size_t cap, uint32_t *crc)
{
    const struct bp_elf_shdr *s = bp_elf_section(e, ".gnu_debuglink");
    int nomem;
    if (s == NULL)
        return BP_ELF_NONE;
    if (s->size > BP_ELF_MAX_DEBUGLINK + 8 || s->size < 6 || cap == 0)
        return BP_ELF_BAD;
    uint8_t *p = bp_section_copy(e, s, &nomem);
    if (p == NULL)
        return nomem ? BP_ELF_NOMEM : BP_ELF_BAD;
    /* name, NUL, padding to 4, u32 CRC */
    size_t n = strnlen((const char *)p, (size_t)s->size);
    size_t crc_at = (n + 1 + 3) & ~(size_t)3;
    int rc = BP_ELF_BAD;
    if (n > 0 && n < cap && n < s->size && crc_at + 4 <= s->size &&
        memchr(p, '/', n) == NULL && strcmp((const char *)p, "..") != 0 &&
        strcmp((const char *)p, ".") != 0) {
        memcpy(name, p, n + 1);
        *crc = bp_rd32(p + crc_at);
        rc = BP_ELF_OK;
    }
    free(p);
    return rc;
}

/* --------------------------------------------------------------- symbols */

static int bp_sym_cmp(const void *a, const void *b)
{
    const struct bp_elf_sym *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->end != y->end)
        return x->end > y->end ? -1 : 1;
    return x->name < y->name ? -1 : x->name > y->name;
}

/* The symbol at entry p if it is a defined function with a name inside
 * the string table: 1 and *s filled, else 0. */
static int bp_sym_decode(const uint8_t *p, size_t strtab_len, const char *strtab,
                         struct bp_elf_sym *s)
{
    uint32_t name = bp_rd32(p);
    uint8_t info = p[4];
    uint16_t shndx = bp_rd16(p + 6);
    uint64_t value = bp_rd64(p + 8), size = bp_rd64(p + 16);
    unsigned type = ELF64_ST_TYPE(info), bind = ELF64_ST_BIND(info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || shndx == SHN_UNDEF ||
        (shndx >= SHN_LORESERVE && shndx != SHN_XINDEX) || size == 0 ||
        value + size < value || name == 0 || name >= strtab_len || strtab[name] == '\0')
        return 0;
    s->start = value;
    s->end = value + size;
    s->name = name;
    s->rank = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
    return 1;
}

int bp_elf_func_syms(const struct bp_elf *e, struct bp_elf_syms *out)
{
    const struct bp_elf_shdr *st = NULL;
    uint8_t *raw = NULL;
    int nomem, rc = BP_ELF_BAD;
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < e->shnum && st == NULL; i++)
        if (e->sh[i].type == SHT_SYMTAB)
            st = &e->sh[i];
    if (st == NULL)
        return BP_ELF_NONE;
    if (st->entsize != sizeof(Elf64_Sym) || st->size % sizeof(Elf64_Sym) != 0 ||
        st->link >= e->shnum || e->sh[st->link].type != SHT_STRTAB ||
        (e->sh[st->link].flags & SHF_COMPRESSED) || (st->flags & SHF_COMPRESSED))
        return BP_ELF_BAD;
    out->strtab = (char *)bp_section_copy(e, &e->sh[st->link], &nomem);
    if (out->strtab == NULL)
        goto fail_nomem;
    out->strtab_len = (size_t)e->sh[st->link].size;
    raw = bp_section_copy(e, st, &nomem);
    if (raw == NULL)
        goto fail_nomem;
    size_t count = (size_t)st->size / sizeof(Elf64_Sym);
    out->v = malloc((count ? count : 1) * sizeof *out->v);
    if (out->v == NULL) {
        nomem = 1;
        goto fail_nomem;
    }
    for (size_t i = 0; i < count; i++)
        out->n += bp_sym_decode(raw + i * sizeof(Elf64_Sym), out->strtab_len,
                                out->strtab, &out->v[out->n]);
    free(raw);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, bp_sym_cmp);
    return BP_ELF_OK;
fail_nomem:
    rc = nomem ? BP_ELF_NOMEM : BP_ELF_BAD;
    free(raw);
    bp_elf_syms_free(out);
    return rc;
}

/* How many earlier symbols a lookup looks back over for one that still
 * covers the address (a long function holding a shorter alias's start). */
#define BP_SYM_LOOKBACK 16u

const char *bp_elf_syms_lookup(const struct bp_elf_syms *s, uint64_t vaddr,
                               uint64_t *start)
{
    size_t lo = 0, hi = s->n; /* first index with start > vaddr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].start <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo, k = 0; i > 0 && k < BP_SYM_LOOKBACK; i--, k++) {
        const struct bp_elf_sym *x = &s->v[i - 1];
        if (vaddr < x->end) {
            /* the first of the symbols sharing that start: best rank */
            while (x > s->v && x[-1].start == x->start && vaddr < x[-1].end)
                x--;
            if (start != NULL)
                *start = x->start;
            return s->strtab + x->name;
        }
    }
    return NULL;
}

void bp_elf_syms_free(struct bp_elf_syms *s)
{
    free(s->v);
    free(s->strtab);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ CRC */


int bp_elf_file_crc32(int fd, uint64_t size, uint32_t *crc)
{
    enum { CHUNK = 1 << 16 };
    if (size > BP_ELF_MAX_CRC_FILE)
        return -1;
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL)
        return -1;
    struct bp_elf_src src = {.buf = NULL, .fd = fd, .size = size};
    uint32_t c = 0;
    int rc = 0;
    for (uint64_t at = 0; at < size && rc == 0; at += CHUNK) {
        size_t len = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
        rc = bp_elf_read(&src, at, buf, len);
        c = bp_crc32_update(c, buf, len);
    }
    free(buf);
    *crc = c;
    return rc;
}
