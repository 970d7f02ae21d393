/* bp_objsyms.h - full symbol tables of loaded objects, for the C frames
 * dladdr cannot name (it reads only .dynsym: exported functions).
 *
 * For an object (beam.smp, libc, a NIF library) the table comes from, in
 * this order, as gdb and perf look for them:
 *  1. the object's own .symtab, where it has one with functions (not
 *     stripped);
 *  2. a separate debug file found by build-id:
 *     <root>/.build-id/<first byte, hex>/<other bytes, hex>.debug, used only
 *     when its own build-id equals the object's;
 *  3. a separate debug file named by the object's .gnu_debuglink, looked
 *     for in the object's directory, its .debug/ subdirectory, then
 *     <root>/<the object's directory>/, used only when the CRC-32 of the
 *     whole file equals the debuglink's.
 * root is the debug directory (gdb's debug-file-directory), /usr/lib/debug
 * by default. A candidate that fails its check is not used and is listed
 * in the object's `rejected' (path and reason). Files are read with pread
 * through bp_elf.c (bounds-checked; hostile input), never mapped.
 *
 * A struct bp_objsyms holds the objects looked at so far (at most
 * BP_OBJSYMS_MAX), each loaded on first use and kept until
 * bp_objsyms_free. Thread-safe: one mutex per set (taken while an object
 * loads: file reads, a CRC over a debug file of tens of MB; callers are on
 * dirty schedulers). Never in signal context.
 */
#ifndef BP_OBJSYMS_H
#define BP_OBJSYMS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bp_elf.h"

#define BP_OBJSYMS_MAX      1024u
#define BP_OBJ_REJECTED_MAX 4u

enum bp_obj_source {
    BP_OBJ_DYNSYM = 0,    /* no full table found: dladdr's names only */
    BP_OBJ_SYMTAB = 1,    /* the object's own .symtab */
    BP_OBJ_BUILD_ID = 2,  /* <root>/.build-id/xx/yyyy.debug */
    BP_OBJ_DEBUGLINK = 3, /* the .gnu_debuglink file, CRC checked */
};

enum bp_obj_reject {
    BP_REJ_BUILD_ID_MISMATCH = 1, /* the file's build-id differs (or it has none) */
    BP_REJ_CRC_MISMATCH = 2,      /* the file's CRC-32 is not the debuglink's */
    BP_REJ_MALFORMED = 3,         /* not a readable ELF file / symbol table */
    BP_REJ_NO_SYMBOLS = 4,        /* a matching file without function symbols */
    BP_REJ_SAME_FILE = 5,         /* the candidate is the object itself */
};

struct bp_obj_rejected {
    char *path;
    enum bp_obj_reject reason;
};

/* One object: what was found for it. Strings are malloc'd and owned. */
struct bp_obj {
    uint64_t base; /* dli_fbase: the key */
    uint64_t bias; /* runtime address = file virtual address + bias */
    char *path;    /* the object's file */
    enum bp_obj_source source;
    char *debug_file; /* the file the table came from (source 2, 3) */
    uint8_t build_id[BP_ELF_MAX_BUILD_ID];
    size_t build_id_len; /* 0: none */
    char *debuglink;     /* NULL: none */
    struct bp_obj_rejected rejected[BP_OBJ_REJECTED_MAX];
    unsigned nrejected;
    struct bp_elf_syms syms;
};

struct bp_objsyms {
    pthread_mutex_t lock; /* guards objs and n; no other lock is taken under it */
    char *root;
    struct bp_obj **objs; /* each allocated apart: stays put while more are added */
    size_t n, cap;
};

/* An empty set looking for debug files under root (copied). 0, or -1 when
 * out of memory (o then needs no free). */
int bp_objsyms_init(struct bp_objsyms *o, const char *root);

/* Frees every table and string; o may be half-built (zeroed). */
void bp_objsyms_free(struct bp_objsyms *o);

/* Fills obj (zeroed first) for the object file at path, loaded at bias:
 * its build-id and debuglink, and a symbol table by the order above.
 * Returns 0 (obj->source says what was found), -1 when out of memory
 * (obj freed). Reads files only: unit-testable without loading anything. */
int bp_obj_load(struct bp_obj *obj, const char *path, uint64_t bias, const char *root);

void bp_obj_free(struct bp_obj *obj);

/* The name of the function holding runtime address addr in obj, or NULL;
 * *start (may be NULL) gets the function's runtime start. */
const char *bp_obj_lookup(const struct bp_obj *obj, uint64_t addr, uint64_t *start);

/* The object of o loaded at base from path (loading it, at bias, the
 * first time): its index, or -1 when the set is full or out of memory.
 * Takes o's lock; the object stays valid (and unchanged) until
 * bp_objsyms_free. */
long bp_objsyms_get(struct bp_objsyms *o, uint64_t base, uint64_t bias,
                    const char *path);

/* The object at index i (from bp_objsyms_get): NULL if out of range. Takes
 * o's lock to read n; the object itself is immutable once added. */
const struct bp_obj *bp_objsyms_at(struct bp_objsyms *o, size_t i);

/* The build-id as lowercase hex into out (2 * len + 1 bytes at most cap):
 * the length written. */
size_t bp_obj_build_id_hex(const struct bp_obj *obj, char *out, size_t cap);

#endif
