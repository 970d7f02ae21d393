/* bp_elf.h - a bounds-checked reader of ELF files' symbol tables, build-id
 * notes and .gnu_debuglink sections, for naming C frames that dladdr
 * cannot name (static functions, objects with only .dynsym).
 *
 * Files are hostile input: every offset, size, count and index read from
 * them is checked against the file's size (or the buffer's length) before
 * use, with overflow-safe arithmetic; every name must end with a NUL inside
 * its string table; sizes are capped (BP_ELF_MAX_*). Only ELF64
 * little-endian ET_EXEC / ET_DYN files are read (the native sampler's
 * platform, x86_64); anything else is refused as malformed.
 *
 * Nothing here runs in signal context; memory comes from malloc. Pure and
 * unit-tested (test/native/test_elf.c) on crafted and truncated images.
 */
#ifndef BP_ELF_H
#define BP_ELF_H

#include <stddef.h>
#include <stdint.h>

#define BP_ELF_MAX_SECTIONS  65536u       /* section headers read */
#define BP_ELF_MAX_TABLE     (64u << 20)  /* bytes of one .symtab or .strtab */
#define BP_ELF_MAX_BUILD_ID  64u          /* bytes of a build-id (SHA-1: 20) */
#define BP_ELF_MAX_DEBUGLINK 256u         /* bytes of a debuglink name */
#define BP_ELF_MAX_CRC_FILE  (4ull << 30) /* bytes of a file checksummed */

/* Where an image is read from: buf (len bytes) when buf is not NULL, else
 * the open file fd, of size bytes (pread; no mmap, so a file truncated
 * under us gives a short read, not SIGBUS). */
struct bp_elf_src {
    const uint8_t *buf;
    int fd;
    uint64_t size;
};

/* Copies len bytes at off of src into dst: 0, or -1 when any of them lies
 * beyond src's size or the read fails. */
int bp_elf_read(const struct bp_elf_src *src, uint64_t off, void *dst, size_t len);

/* One section header, as read (ELF64). */
struct bp_elf_shdr {
    uint32_t name, type;
    uint64_t flags, addr, offset, size;
    uint32_t link, info;
    uint64_t addralign, entsize;
};

/* An opened image: its section headers and section name table. Fill with
 * bp_elf_open, release with bp_elf_close. */
struct bp_elf {
    struct bp_elf_src src;
    uint16_t type; /* ET_EXEC or ET_DYN */
    struct bp_elf_shdr *sh;
    uint32_t shnum;
    char *shstr; /* NUL-terminated copy (one NUL added past its end) */
    size_t shstr_len;
};

enum bp_elf_rc {
    BP_ELF_OK = 0,
    BP_ELF_NONE = 1, /* well formed, but without what was asked */
    BP_ELF_BAD = -1, /* not ELF64 LE EXEC/DYN, or malformed */
    BP_ELF_NOMEM = -2,
};

/* Reads and checks the ELF header and section headers of src (which must
 * stay valid while e is used). BP_ELF_OK, BP_ELF_BAD, BP_ELF_NOMEM; e is
 * zeroed on failure (bp_elf_close on it is harmless). */
int bp_elf_open(struct bp_elf *e, const struct bp_elf_src *src);

void bp_elf_close(struct bp_elf *e);

/* The section named name, or NULL. */
const struct bp_elf_shdr *bp_elf_section(const struct bp_elf *e, const char *name);

/* The GNU build-id (NT_GNU_BUILD_ID in an SHT_NOTE section) into out (cap
 * bytes): its length (1..cap) as *len with BP_ELF_OK, BP_ELF_NONE when
 * there is none, BP_ELF_BAD when the note section is malformed. */
int bp_elf_build_id(const struct bp_elf *e, uint8_t *out, size_t cap, size_t *len);

/* .gnu_debuglink: the file name (NUL-terminated, at most cap - 1 bytes, no
 * '/') and its CRC-32. BP_ELF_OK, BP_ELF_NONE, BP_ELF_BAD. */
int bp_elf_debuglink(const struct bp_elf *e, char *name, size_t cap, uint32_t *crc);

/* One function symbol: [start, end) in the file's virtual addresses. */
struct bp_elf_sym {
    uint64_t start, end;
    uint32_t name; /* offset of its NUL-terminated name in strtab */
    uint32_t rank; /* binding: 0 global, 1 weak, 2 local (ties) */
};

/* A sorted table of function symbols; names point into strtab. */
struct bp_elf_syms {
    struct bp_elf_sym *v;
    size_t n;
    char *strtab;
    size_t strtab_len;
};

/* The defined function symbols (STT_FUNC, STT_GNU_IFUNC; size > 0) of the
 * image's .symtab (SHT_SYMTAB), sorted by start (at one start, global
 * before weak before local). BP_ELF_OK (out->n may be 0), BP_ELF_NONE when
 * there is no SHT_SYMTAB, BP_ELF_BAD when it or its string table is
 * malformed, BP_ELF_NOMEM. out is zeroed first; free with bp_elf_syms_free. */
int bp_elf_func_syms(const struct bp_elf *e, struct bp_elf_syms *out);

/* The name of the function holding vaddr, or NULL; *start (may be NULL)
 * gets its start. */
const char *bp_elf_syms_lookup(const struct bp_elf_syms *s, uint64_t vaddr,
                               uint64_t *start);

void bp_elf_syms_free(struct bp_elf_syms *s);


/* The CRC-32 of the whole of fd's file (size bytes, at most
 * BP_ELF_MAX_CRC_FILE), read with pread: 0, or -1 on a read error or a
 * file too large. */
int bp_elf_file_crc32(int fd, uint64_t size, uint32_t *crc);

#endif
