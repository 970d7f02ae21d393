/* bp_symbols.c - native symbolization: dladdr, the GDB JIT descriptor of
 * beam.smp, erts_frame_layout. See bp_symbols.h for the contracts.
 *
 * Nothing here runs in signal context. Memory comes from malloc (this file
 * is unit-tested without ERTS); every table is freed by its caller before
 * the NIF call that built it returns.
 */
#include "bp_symbols.h"
#include "bp_bytes.h"
#include "bp_objsyms.h"

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* --------------------------------------------------------------- dladdr */

/* The main program (beam.smp): dladdr names it by argv[0] (whatever the
 * VM was started as), so it is recognised by its base address instead and
 * named after /proc/self/exe. */
static char bp_exe_name[256];
static char bp_exe_path[4096]; /* "" when /proc/self/exe cannot be read */
static void *bp_exe_base;
static pthread_once_t bp_exe_once = PTHREAD_ONCE_INIT;

static const char *bp_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void bp_exe_name_init(void)
{
    char path[1024];
    Dl_info info;
    memset(&info, 0, sizeof info);
    if (dladdr((void *)(uintptr_t)getauxval(AT_PHDR), &info))
        bp_exe_base = info.dli_fbase;
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) {
        snprintf(bp_exe_name, sizeof bp_exe_name, "%s", "exe");
        return;
    }
    path[n] = '\0';
    if ((size_t)n < sizeof bp_exe_path)
        memcpy(bp_exe_path, path, (size_t)n + 1);
    const char *base = bp_basename(path);
    size_t n2 = strnlen(base, sizeof bp_exe_name - 1);
    memcpy(bp_exe_name, base, n2);
    bp_exe_name[n2] = '\0';
}

/* The start of the function holding addr from the object's unwind tables
 * (.eh_frame: every function has an FDE, static ones included), so all
 * samples in one unnamed function share one frame; addr itself when no FDE
 * covers it. */
static uint64_t bp_function_start(uint64_t addr)
{
    unw_proc_info_t pi;
    memset(&pi, 0, sizeof pi);
    if (unw_get_proc_info_by_ip(unw_local_addr_space, (unw_word_t)addr, &pi, NULL) == 0 &&
        pi.start_ip <= addr && addr < pi.end_ip)
        return pi.start_ip;
    return addr;
}

size_t bp_sym_describe(uint64_t addr, char *out, size_t cap)
{
    Dl_info info;
    int n;
    if (cap == 0 || addr == 0)
        return 0;
    memset(&info, 0, sizeof info);
    if (!dladdr((void *)(uintptr_t)addr, &info) || info.dli_fbase == NULL)
        return 0;
    if (info.dli_sname != NULL && info.dli_sname[0] != '\0' && info.dli_saddr != NULL) {
        n = snprintf(out, cap, "%s", info.dli_sname);
    } else {
        const char *obj;
        pthread_once(&bp_exe_once, bp_exe_name_init);
        if (info.dli_fbase == bp_exe_base || info.dli_fname == NULL ||
            info.dli_fname[0] == '\0') {
            obj = bp_exe_name;
        } else {
            obj = bp_basename(info.dli_fname);
        }
        n = snprintf(out, cap, "%s+0x%llx", obj,
                     (unsigned long long)(bp_function_start(addr) -
                                          (uint64_t)(uintptr_t)info.dli_fbase));
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static size_t bp_sym_copy(char *out, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return n;
}

enum bp_sym_kind bp_sym_resolve(struct bp_objsyms *objs, uint64_t addr, char *out, size_t cap,
                                size_t *len, uint64_t *offset, long *obj)
{
    Dl_info info;
    struct link_map *lm = NULL;
    *len = 0;
    *offset = 0;
    *obj = -1;
    if (cap == 0 || addr == 0)
        return BP_SYM_NONE;
    memset(&info, 0, sizeof info);
    if (!dladdr1((void *)(uintptr_t)addr, &info, (void **)&lm, RTLD_DL_LINKMAP) ||
        info.dli_fbase == NULL)
        return BP_SYM_NONE;
    if (info.dli_sname != NULL && info.dli_sname[0] != '\0' && info.dli_saddr != NULL) {
        *len = bp_sym_copy(out, cap, info.dli_sname);
        return BP_SYM_NAMED;
    }
    pthread_once(&bp_exe_once, bp_exe_name_init);
    int is_exe = info.dli_fbase == bp_exe_base || info.dli_fname == NULL ||
                 info.dli_fname[0] == '\0' || (lm != NULL && lm->l_name[0] == '\0');
    const char *path = is_exe ? bp_exe_path : info.dli_fname;
    uint64_t fbase = (uint64_t)(uintptr_t)info.dli_fbase;
    if (objs != NULL && lm != NULL && path[0] != '\0') {
        *obj = bp_objsyms_get(objs, fbase, (uint64_t)lm->l_addr, path);
        const struct bp_obj *o = *obj >= 0 ? bp_objsyms_at(objs, (size_t)*obj) : NULL;
        const char *name = o != NULL ? bp_obj_lookup(o, addr, NULL) : NULL;
        if (name != NULL) {
            *len = bp_sym_copy(out, cap, name);
            return BP_SYM_NAMED;
        }
    }
    *len = bp_sym_copy(out, cap, is_exe ? bp_exe_name : bp_basename(info.dli_fname));
    *offset = bp_function_start(addr) - fbase;
    return BP_SYM_UNNAMED;
}

/* ----------------------------------------------------- symfile parsing */

/* The layout beam.smp (OTP 25, x86_64) writes for a module (header 1):
 *   0  u32 header        8  u64 base_address   16 u32 range_count
 *   20 u32 code_size     24 u16 name_length    26 name (NUL-terminated)
 *   ranges start at 32 + name_length, each:
 *   0 u32 start_offset  4 u32 end_offset  8 u32 line_count  12 u16 name_length
 *   14 name; next range at 16 + name_length, after line_count line records:
 *   0 u32 start_offset  4 u32 line  8 u16 file_length  10 file; next at
 *   12 + file_length.
 * The emulator's own record (header 0) carries no names:
 *   0  u32 header (0)    8  i32 frame_layout (0, or 1 with frame pointers)
 *   16 u64 normal_exit   (32 bytes in all on OTP 25, 27 and 29). */
#define BP_SF_MODULE_HDR 32u
#define BP_SF_RANGE_HDR 16u
#define BP_SF_RANGE_NAME 14u
#define BP_SF_LINE_HDR 12u
#define BP_SF_LINE_FILE 10u
#define BP_SF_EMU_LAYOUT 8u
#define BP_SF_EMU_EXIT 16u
#define BP_SF_EMU_SIZE 32u

/* A NUL-terminated name of name_len bytes (NUL included) at buf+at. */
static int bp_name_ok(const uint8_t *buf, size_t len, size_t at, size_t name_len)
{
    return name_len >= 1 && at <= len && name_len <= len - at &&
           buf[at + name_len - 1] == '\0' &&
           memchr(buf + at, '\0', name_len) == buf + at + name_len - 1;
}

static int bp_table_reserve(struct bp_jit_table *t, size_t syms, size_t bytes)
{
    if (t->count + syms > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->count + syms)
            cap *= 2;
        void *p = realloc(t->syms, cap * sizeof *t->syms);
        if (p == NULL)
            return -1;
        t->syms = p;
        t->cap = cap;
    }
    if (t->pool_len + bytes > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 65536;
        while (cap < t->pool_len + bytes)
            cap *= 2;
        void *p = realloc(t->pool, cap);
        if (p == NULL)
            return -1;
        t->pool = p;
        t->pool_cap = cap;
    }
    return 0;
}

/* First pass: checks every record of the module and sums what it adds. */
static int bp_symfile_check(const uint8_t *buf, size_t len, size_t *names, size_t *bytes)
{
    uint32_t count = bp_rd32(buf + 16), code_size = bp_rd32(buf + 20);
    size_t name_len = bp_rd16(buf + 24), at;
    uint64_t base = bp_rd64(buf + 8);
    if (base == 0 || base + code_size < base || !bp_name_ok(buf, len, 26, name_len))
        return -1;
    if (count > (len / BP_SF_RANGE_HDR) || count > BP_JIT_MAX_RANGES)
        return -1;
    at = BP_SF_MODULE_HDR + name_len;
    *names = 0;
    *bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (at > len || len - at < BP_SF_RANGE_HDR)
            return -1;
        uint32_t start = bp_rd32(buf + at), end = bp_rd32(buf + at + 4);
        uint32_t lines = bp_rd32(buf + at + 8);
        size_t rname = bp_rd16(buf + at + 12);
        if (start > end || end > code_size ||
            !bp_name_ok(buf, len, at + BP_SF_RANGE_NAME, rname))
            return -1;
        *names += 1;
        *bytes += rname;
        at += BP_SF_RANGE_HDR + rname;
        if (lines > len / BP_SF_LINE_HDR)
            return -1;
        for (uint32_t l = 0; l < lines; l++) {
            if (at > len || len - at < BP_SF_LINE_HDR)
                return -1;
            size_t flen = bp_rd16(buf + at + 8);
            if (!bp_name_ok(buf, len, at + BP_SF_LINE_FILE, flen))
                return -1;
            at += BP_SF_LINE_HDR + flen;
        }
    }
    return at <= len ? 0 : -1;
}

/* The frame layout of an emulator record (header 0): only from a record
 * of exactly the 32 bytes OTP 25, 27 and 29 write (another size is another
 * layout, not read) with a layout of 0 or 1 and a normal_exit address;
 * else -1. */
static int bp_emu_layout(const uint8_t *rec, size_t len)
{
    if (len != BP_SF_EMU_SIZE || bp_rd32(rec) != 0 || bp_rd64(rec + BP_SF_EMU_EXIT) == 0)
        return -1;
    uint32_t layout = bp_rd32(rec + BP_SF_EMU_LAYOUT);
    return layout <= 1 ? (int)layout : -1;
}

int bp_jit_parse_symfile(const uint8_t *buf, size_t len, struct bp_jit_table *t)
{
    size_t names, bytes;
    if (buf == NULL || len < 4)
        return -1;
    uint32_t header = bp_rd32(buf);
    if (header == 0) { /* the emulator's record: frame layout, no names */
        int layout = bp_emu_layout(buf, len);
        if (layout >= 0)
            t->frame_layout = layout;
        return 0;
    }
    if (header != 1 || len < BP_SF_MODULE_HDR)
        return -1;
    if (bp_symfile_check(buf, len, &names, &bytes) != 0)
        return -1;
    if (t->count + names > BP_JIT_MAX_RANGES || t->pool_len + bytes > UINT32_MAX)
        return -1;
    if (bp_table_reserve(t, names, bytes) != 0)
        return -2;
    uint64_t base = bp_rd64(buf + 8);
    uint32_t count = bp_rd32(buf + 16);
    size_t at = BP_SF_MODULE_HDR + bp_rd16(buf + 24);
    for (uint32_t i = 0; i < count; i++) {
        size_t rname = bp_rd16(buf + at + 12);
        struct bp_jit_sym *s = &t->syms[t->count++];
        s->start = base + bp_rd32(buf + at);
        s->end = base + bp_rd32(buf + at + 4);
        s->name_off = (uint32_t)t->pool_len;
        s->name_len = (uint32_t)(rname - 1);
        memcpy(t->pool + t->pool_len, buf + at + BP_SF_RANGE_NAME, rname);
        t->pool_len += rname;
        uint32_t lines = bp_rd32(buf + at + 8);
        at += BP_SF_RANGE_HDR + rname;
        for (uint32_t l = 0; l < lines; l++)
            at += BP_SF_LINE_HDR + bp_rd16(buf + at + 8);
    }
    return 0;
}

static int bp_sym_cmp(const void *a, const void *b)
{
    const struct bp_jit_sym *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static void bp_jit_table_sort(struct bp_jit_table *t)
{
    if (t->count > 1)
        qsort(t->syms, t->count, sizeof *t->syms, bp_sym_cmp);
}

void bp_jit_table_free(struct bp_jit_table *t)
{
    free(t->syms);
    free(t->pool);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------ descriptor walk */

/* struct jit_descriptor { u32 version; u32 action; entry *relevant; entry
 * *first; ... } and struct jit_code_entry { entry *next, *prev; const char
 * *symfile_addr; u64 symfile_size; } (the GDB JIT interface). */
struct bp_jit_entry {
    uint64_t next, prev, symfile, size;
};

static int bp_read_first(uint64_t desc, uint64_t *first)
{
    uint8_t d[24];
    if (bp_sym_read(d, desc, sizeof d) != 0 || bp_rd32(d) != 1)
        return -1;
    *first = bp_rd64(d + 16);
    return 0;
}

/* One walk: copies and parses every symfile into t and records the chain
 * of entry addresses in chain[]. 0 ok, -1 unreadable/invalid link, -2 enomem. */
static int bp_walk(uint64_t desc, struct bp_jit_table *t, uint64_t *chain, size_t *n)
{
    uint64_t at, prev = 0;
    uint8_t *copy = NULL;
    size_t copy_cap = 0;
    int rc = 0;
    *n = 0;
    if (bp_read_first(desc, &at) != 0)
        return -1;
    while (at != 0) {
        struct bp_jit_entry e;
        if (*n >= BP_JIT_MAX_ENTRIES || bp_sym_read(&e, at, sizeof e) != 0 || e.prev != prev) {
            rc = -1;
            break;
        }
        chain[(*n)++] = at;
        if (e.size > 0 && e.size <= BP_JIT_MAX_SYMFILE) {
            if (e.size > copy_cap) {
                void *p = realloc(copy, e.size);
                if (p == NULL) {
                    rc = -2;
                    break;
                }
                copy = p;
                copy_cap = e.size;
            }
            int parsed = -1;
            if (bp_sym_read(copy, e.symfile, e.size) == 0)
                parsed = bp_jit_parse_symfile(copy, e.size, t);
            if (parsed == -2) {
                rc = -2;
                break;
            }
            if (parsed == 0)
                t->modules++;
            else
                t->skipped++;
        } else {
            t->skipped++;
        }
        prev = at;
        at = e.next;
    }
    free(copy);
    return rc;
}

/* The chain again, addresses only: 1 if it equals chain[0..n). */
static int bp_chain_same(uint64_t desc, const uint64_t *chain, size_t n)
{
    uint64_t at;
    size_t i = 0;
    if (bp_read_first(desc, &at) != 0)
        return 0;
    while (at != 0) {
        struct bp_jit_entry e;
        if (i >= n || chain[i] != at || bp_sym_read(&e, at, sizeof e) != 0)
            return 0;
        i++;
        at = e.next;
    }
    return i == n;
}

/* ---------------------------------------- locating beam.smp's descriptor */

static _Atomic uint64_t bp_internal_reads;

uint64_t bp_sym_internal_reads(void)
{
    return atomic_load(&bp_internal_reads);
}

static void bp_count_internal_read(void)
{
    atomic_fetch_add(&bp_internal_reads, 1);
}

#define BP_SCAN_CHUNK 65536u
#define BP_RW_SEGS_MAX 8

int bp_jit_frame_layout(uint64_t desc)
{
    uint64_t at, prev = 0;
    size_t n = 0;
    bp_count_internal_read();
    if (bp_read_first(desc, &at) != 0)
        return -1;
    while (at != 0 && n++ < BP_JIT_MAX_ENTRIES) {
        struct bp_jit_entry e;
        uint8_t rec[BP_SF_EMU_SIZE];
        if ((at & 7u) != 0 || bp_sym_read(&e, at, sizeof e) != 0 || e.prev != prev)
            return -1;
        if (e.size == sizeof rec && bp_sym_read(rec, e.symfile, sizeof rec) == 0 &&
            bp_rd32(rec) == 0)
            return bp_emu_layout(rec, sizeof rec);
        prev = at;
        at = e.next;
    }
    return -1;
}

uint64_t bp_jit_find_descriptor(uint64_t lo, uint64_t hi, int *layout)
{
    bp_count_internal_read();
    uint8_t *buf = malloc(BP_SCAN_CHUNK + 24);
    if (buf == NULL)
        return 0;
    uint64_t found = 0;
    *layout = -1;
    lo = (lo + 7u) & ~(uint64_t)7u;
    for (uint64_t base = lo; found == 0 && base + 24 <= hi; base += BP_SCAN_CHUNK) {
        size_t len = hi - base < BP_SCAN_CHUNK + 24 ? (size_t)(hi - base) : BP_SCAN_CHUNK + 24;
        if (bp_sym_read(buf, base, len) != 0)
            continue;
        for (size_t off = 0; off + 24 <= len && off < BP_SCAN_CHUNK; off += 8) {
            uint64_t first = bp_rd64(buf + off + 16);
            if (bp_rd32(buf + off) == 1 && bp_rd32(buf + off + 4) <= 2 && first != 0 &&
                (first & 7u) == 0 && (*layout = bp_jit_frame_layout(base + off)) >= 0) {
                found = base + off;
                break;
            }
        }
    }
    free(buf);
    return found;
}

struct bp_rw_segs {
    uint64_t lo[BP_RW_SEGS_MAX], hi[BP_RW_SEGS_MAX];
    int n;
};

/* The main program's (beam.smp's: the first object listed) writable
 * PT_LOAD segments, where __jit_debug_descriptor lives (.data). */
static int bp_main_rw_segs(struct dl_phdr_info *info, size_t size, void *data)
{
    struct bp_rw_segs *s = data;
    (void)size;
    for (size_t i = 0; i < info->dlpi_phnum && s->n < BP_RW_SEGS_MAX; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
            s->lo[s->n] = (uint64_t)info->dlpi_addr + ph->p_vaddr;
            s->hi[s->n] = s->lo[s->n] + ph->p_memsz;
            s->n++;
        }
    }
    return 1;
}

/* beam.smp's descriptor: exported (OTP 25, 27: *how = 1), else searched for
 * in its writable segments (OTP 29: *how = 2; *layout then gets the frame
 * layout the search read when this call searched, else -1), else 0. The
 * answer is kept: the descriptor is a static of beam.smp. A search that
 * finds nothing is tried three times (the list may be changing under it)
 * before that is kept too. */
static uint64_t bp_main_descriptor(int *how, int *layout)
{
    static _Atomic uint64_t cached;
    static _Atomic int cached_how; /* 0 not looked yet, 1 dlsym, 2 search, 3 none */
    int h = atomic_load(&cached_how);
    *layout = -1;
    if (h != 0) {
        *how = h == 3 ? 0 : h;
        return atomic_load(&cached);
    }
    uint64_t desc = (uint64_t)(uintptr_t)dlsym(RTLD_DEFAULT, "__jit_debug_descriptor");
    h = desc != 0 ? 1 : 3;
    for (int attempt = 0; desc == 0 && attempt < 3; attempt++) {
        struct bp_rw_segs segs = {.n = 0};
        dl_iterate_phdr(bp_main_rw_segs, &segs);
        for (int i = 0; i < segs.n && desc == 0; i++)
            desc = bp_jit_find_descriptor(segs.lo[i], segs.hi[i], layout);
        if (desc != 0)
            h = 2;
        else
            usleep(1000);
    }
    atomic_store(&cached, desc);
    atomic_store(&cached_how, h);
    *how = h == 3 ? 0 : h;
    return desc;
}

int bp_sym_frame_layout_from(enum bp_fl_source *source)
{
    static _Atomic int cached; /* 0 unknown, else 1 + layout + 2 * source */
    int c = atomic_load(&cached), layout = -1, how;
    enum bp_fl_source src = BP_FL_NONE;
    bp_count_internal_read();
    if (c != 0) {
        layout = (c - 1) % 2;
        src = (enum bp_fl_source)((c - 1) / 2);
    } else {
        const int *sym = dlsym(RTLD_DEFAULT, "erts_frame_layout");
        if (sym != NULL && (*sym == 0 || *sym == 1)) {
            layout = *sym;
            src = BP_FL_SYMBOL;
        } else {
            uint64_t desc = bp_main_descriptor(&how, &layout);
            for (int attempt = 0; desc != 0 && layout < 0 && attempt < 3; attempt++)
                layout = bp_jit_frame_layout(desc);
            src = layout >= 0 ? BP_FL_GDB_JIT : BP_FL_NONE;
        }
        if (layout >= 0)
            atomic_store(&cached, 1 + layout + 2 * (int)src);
    }
    if (source != NULL)
        *source = src;
    return layout;
}

int bp_sym_frame_layout(void)
{
    return bp_sym_frame_layout_from(NULL);
}

enum bp_jit_status bp_jit_snapshot(uint64_t desc, struct bp_jit_table *t)
{
    enum bp_jit_status status = BP_JIT_INCONSISTENT;
    int located = 0, layout;
    bp_count_internal_read();
    if (desc == 0)
        desc = bp_main_descriptor(&located, &layout);
    if (desc == 0)
        return BP_JIT_NO_DESCRIPTOR;
    uint64_t *chain = malloc(BP_JIT_MAX_ENTRIES * sizeof *chain);
    if (chain == NULL)
        return BP_JIT_ENOMEM;
    for (int attempt = 0; attempt < 8; attempt++) {
        size_t n;
        bp_jit_table_free(t);
        t->frame_layout = -1;
        t->located = located;
        int rc = bp_walk(desc, t, chain, &n);
        if (rc == -2) {
            status = BP_JIT_ENOMEM;
            break;
        }
        if (rc == 0 && bp_chain_same(desc, chain, n)) {
            status = BP_JIT_OK;
            break;
        }
        status = rc == 0 ? BP_JIT_INCONSISTENT : BP_JIT_UNREADABLE;
        usleep(1000u << (attempt < 4 ? attempt : 4)); /* let a load finish */
    }
    free(chain);
    if (status != BP_JIT_OK)
        bp_jit_table_free(t);
    else
        bp_jit_table_sort(t);
    return status;
}
