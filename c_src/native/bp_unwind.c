/* bp_unwind.c - remote DWARF unwinding of a stack window copied in a signal
 * handler, done later in an ordinary thread (the way `perf record
 * --call-graph dwarf` does it), through libunwind's remote API and our own
 * accessors.
 *
 * What the accessors serve:
 *   - memory inside [stack_addr, stack_addr + stack_len): from the copy;
 *   - memory inside a read-only PT_LOAD segment of an object that is loaded
 *     now (that is where .eh_frame_hdr, .eh_frame and the code live): from
 *     our own process, since the copy is of our own process;
 *   - anything else: refused (-UNW_EINVAL). A garbage copy can therefore make
 *     libunwind read only the copy and mapped object segments.
 *   - registers: from struct bp_regs (IP, SP, RBP, RBX, R12-R15); the others
 *     are refused.
 *   - unwind info: the object whose executable segment holds ip, its
 *     PT_GNU_EH_FRAME binary-search table, handed to libunwind's
 *     dwarf_search_unwind_table as a UNW_INFO_FORMAT_REMOTE_TABLE. An ip in
 *     no object (JIT code, anonymous memory) or one its table does not cover
 *     stops the walk: find_proc_info returns -UNW_ESTOPUNWIND, which unw_step
 *     passes back without trying its frame-chain guess (it guesses only on
 *     -UNW_ENOINFO), so the cursor still holds the registers of that frame
 *     and we report them in at_stop.
 *
 * Why reading object memory is safe against a concurrent dlclose: the whole
 * walk runs inside a dl_iterate_phdr callback. glibc holds its
 * dl_load_write_lock around that callback, and dlclose unmaps an object only
 * while holding the same lock (elf/dl-close.c, _dl_close_worker), so every
 * object seen in the list stays mapped until the walk ends. The lock is
 * recursive, so the nested dl_iterate_phdr that rebuilds the object table
 * works. The lock is held for one walk (microseconds); dlopen/dlclose in
 * another thread wait that long. Nothing here runs in signal context.
 *
 * The object table (executable segments with their eh_frame_hdr tables and
 * readable segment ranges, both sorted) is rebuilt whenever glibc's
 * dlpi_adds/dlpi_subs counters differ from the ones it was built at, and
 * libunwind's per-address-space cache of register rules (keyed by ip) is
 * flushed at the same time, so a reloaded library never sees stale rules.
 *
 * Threads: one address space and one object table serve the whole library,
 * guarded by one mutex, so bp_unwind_copy may be called from any thread
 * (callers serialise; the drain is one thread in practice, and a second
 * address space would only duplicate the caches). libunwind's rule cache is
 * UNW_CACHE_GLOBAL: with our mutex around every walk its own lock is never
 * contended, but it still costs two sigprocmask calls per unw_step (Debian's
 * build has no per-thread cache), which is most of a walk's cost; a sample
 * taken in JIT code costs no libunwind call at all. No allocation in the steady state: the tables are
 * allocated only when the set of loaded objects changes, and libunwind takes
 * its per-frame CIE records from its own pool. bp_unwind_release() frees
 * everything (the NIF library's unload calls it).
 *
 * x86_64 only (struct bp_regs is that architecture's register set). */
#include "bp_unwind.h"

#if !defined(__x86_64__)
#error "bp_unwind.c unwinds x86_64 register sets (libunwind-x86_64): x86_64 only"
#endif

#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libunwind.h>

/* Exported by libunwind (libunwind-x86_64.so) but not declared in its public
 * headers; the prototype is the one of src/dwarf/Gfind_proc_info-lsb.c. */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
                                               unw_dyn_info_t *di, unw_proc_info_t *pi,
                                               int need_unwind_info, void *arg);

/* An executable segment of a loaded object and that object's .eh_frame_hdr
 * search table (table == 0: none usable). */
struct uw_exec {
    uint64_t lo, hi;
    uint64_t hdr;       /* runtime address of .eh_frame_hdr (the table's base) */
    uint64_t table;     /* runtime address of the table's first entry */
    uint64_t fde_count; /* entries (8 bytes each) */
};

/* A readable range (page-rounded read-only PT_LOAD segment) of a loaded
 * object. */
struct uw_range {
    uint64_t lo, hi;
};

/* One walk's arguments, handed to the accessors as their `arg`. */
struct uw_call {
    const struct bp_regs *regs;
    const uint8_t *stack;
    uint64_t stack_addr;
    size_t stack_len;
    int no_info; /* find_proc_info refused an ip: no unwind info there */
    /* results */
    uint64_t *out;
    int max;
    int n;
    int why;
    struct bp_regs at_stop;
};

/* Register-rule cache entries (per distinct ip; a few hundred bytes each):
 * the VM's hot C code has hundreds of distinct return addresses. */
#define UW_CACHE_ENTRIES 1024

static pthread_mutex_t uw_lock = PTHREAD_MUTEX_INITIALIZER;
static unw_addr_space_t uw_as;
static struct uw_exec *uw_execs;
static size_t uw_nexecs;
static struct uw_range *uw_ranges;
static size_t uw_nranges;
static unsigned long long uw_adds, uw_subs;
static int uw_tables_valid;

/* ---- object table ---------------------------------------------------- */

/* Reads an eh_frame_hdr-encoded value at p (runtime address of our own
 * mapped memory, inside [p, end)); returns the number of bytes consumed, 0 if
 * the encoding is unsupported or runs past end. Only the forms that occur in
 * eh_frame_hdr (absptr, [us]data{2,4,8}, with absolute, pc- or data-relative
 * application) are handled. */
static size_t read_encoded(const uint8_t *p, const uint8_t *end, uint8_t enc, uint64_t datarel,
                           uint64_t *val)
{
    uint64_t v;
    size_t len;
    switch (enc & 0x0f) {
    case 0x00: /* absptr */
    case 0x04: /* udata8 */
    case 0x0c: /* sdata8 */
        len = 8;
        break;
    case 0x03: /* udata4 */
    case 0x0b: /* sdata4 */
        len = 4;
        break;
    case 0x02: /* udata2 */
    case 0x0a: /* sdata2 */
        len = 2;
        break;
    default:
        return 0;
    }
    if ((size_t)(end - p) < len)
        return 0;
    if (len == 8) {
        memcpy(&v, p, 8);
    } else if (len == 4) {
        uint32_t u;
        memcpy(&u, p, 4);
        v = (enc & 0x08) ? (uint64_t)(int64_t)(int32_t)u : u;
    } else {
        uint16_t u;
        memcpy(&u, p, 2);
        v = (enc & 0x08) ? (uint64_t)(int64_t)(int16_t)u : u;
    }
    switch (enc & 0x70) {
    case 0x00:
        break;
    case 0x10: /* pcrel */
        v += (uint64_t)(uintptr_t)p;
        break;
    case 0x30: /* datarel: relative to the start of .eh_frame_hdr */
        v += datarel;
        break;
    default:
        return 0;
    }
    *val = v;
    return len;
}

/* Fills e->hdr/table/fde_count from the object's PT_GNU_EH_FRAME, when its
 * search table has the form libunwind's remote lookup expects (sorted pairs
 * of datarel sdata4). The header lies in a loaded segment of the object. */
static void parse_eh_frame_hdr(uint64_t hdr, uint64_t hdr_len, struct uw_exec *e)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)hdr;
    const uint8_t *end = p + hdr_len;
    uint64_t eh_frame, count;
    size_t k;

    e->hdr = e->table = e->fde_count = 0;
    if (hdr_len < 4 || p[0] != 1)
        return;
    if (p[3] != 0x3b) /* DW_EH_PE_datarel | DW_EH_PE_sdata4 */
        return;
    const uint8_t *q = p + 4;
    if ((k = read_encoded(q, end, p[1], hdr, &eh_frame)) == 0)
        return;
    q += k;
    if ((k = read_encoded(q, end, p[2], hdr, &count)) == 0)
        return;
    q += k;
    if (count == 0 || count > (uint64_t)1 << 28)
        return;
    e->hdr = hdr;
    e->table = (uint64_t)(uintptr_t)q;
    e->fde_count = count;
}

struct uw_build {
    struct uw_exec *execs;
    size_t nexecs, cap_execs;
    struct uw_range *ranges;
    size_t nranges, cap_ranges;
};

/* Counts (execs == NULL) or records the segments of one object. */
static int build_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct uw_build *b = data;
    uint64_t hdr = 0, hdr_len = 0;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_EH_FRAME) {
            hdr = info->dlpi_addr + ph->p_vaddr;
            hdr_len = ph->p_memsz;
        }
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
            continue;
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        uint64_t hi = lo + ph->p_memsz;
        /* Only read-only segments: .eh_frame_hdr, .eh_frame and code live
         * there, and nothing else writes them while we read. */
        if ((ph->p_flags & PF_R) && !(ph->p_flags & PF_W)) {
            if (b->ranges != NULL && b->nranges < b->cap_ranges) {
                b->ranges[b->nranges].lo = lo & ~(uint64_t)4095;
                b->ranges[b->nranges].hi = (hi + 4095) & ~(uint64_t)4095;
            }
            b->nranges++;
        }
        if (ph->p_flags & PF_X) {
            if (b->execs != NULL && b->nexecs < b->cap_execs) {
                struct uw_exec *e = &b->execs[b->nexecs];
                e->lo = lo;
                e->hi = hi;
                if (hdr != 0)
                    parse_eh_frame_hdr(hdr, hdr_len, e);
                else
                    e->hdr = e->table = e->fde_count = 0;
            }
            b->nexecs++;
        }
    }
    return 0;
}

static int cmp_exec(const void *a, const void *b)
{
    const struct uw_exec *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

static int cmp_range(const void *a, const void *b)
{
    const struct uw_range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Rebuilds the object table; called with uw_lock and glibc's loader lock
 * held (from inside the walk's dl_iterate_phdr callback), so the list cannot
 * change between the counting and the recording pass. */
static int rebuild_tables(void)
{
    struct uw_build b = {0};
    dl_iterate_phdr(build_cb, &b);
    struct uw_exec *execs = calloc(b.nexecs ? b.nexecs : 1, sizeof *execs);
    struct uw_range *ranges = calloc(b.nranges ? b.nranges : 1, sizeof *ranges);
    if (execs == NULL || ranges == NULL) {
        free(execs);
        free(ranges);
        return -1;
    }
    b.cap_execs = b.nexecs;
    b.cap_ranges = b.nranges;
    b.nexecs = b.nranges = 0;
    b.execs = execs;
    b.ranges = ranges;
    dl_iterate_phdr(build_cb, &b);
    if (b.nexecs > b.cap_execs)
        b.nexecs = b.cap_execs;
    if (b.nranges > b.cap_ranges)
        b.nranges = b.cap_ranges;
    qsort(execs, b.nexecs, sizeof *execs, cmp_exec);
    qsort(ranges, b.nranges, sizeof *ranges, cmp_range);
    free(uw_execs);
    free(uw_ranges);
    uw_execs = execs;
    uw_nexecs = b.nexecs;
    uw_ranges = ranges;
    uw_nranges = b.nranges;
    return 0;
}

static const struct uw_exec *find_exec(uint64_t ip)
{
    size_t lo = 0, hi = uw_nexecs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ip < uw_execs[mid].lo)
            hi = mid;
        else if (ip >= uw_execs[mid].hi)
            lo = mid + 1;
        else
            return &uw_execs[mid];
    }
    return NULL;
}

/* Whether [addr, addr + len) lies inside one readable object range. Ranges
 * of different objects may overlap after page rounding; any containing one
 * will do, so search for the last range starting at or below addr and look
 * back a little. */
static int readable(uint64_t addr, uint64_t len)
{
    size_t lo = 0, hi = uw_nranges;
    if (addr + len < addr)
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uw_ranges[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo, k = 0; i > 0 && k < 4; i--, k++) {
        const struct uw_range *r = &uw_ranges[i - 1];
        if (addr >= r->lo && addr + len <= r->hi)
            return 1;
    }
    return 0;
}

/* ---- accessors ------------------------------------------------------- */

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                              int need_unwind_info, void *arg)
{
    struct uw_call *c = arg;
    const struct uw_exec *e = find_exec(ip);
    if (e == NULL || e->table == 0) {
        c->no_info = 1;
        return -UNW_ESTOPUNWIND;
    }
    unw_dyn_info_t di;
    memset(&di, 0, sizeof di);
    di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    di.start_ip = e->lo;
    di.end_ip = e->hi;
    di.u.rti.name_ptr = 0;
    di.u.rti.segbase = e->hdr;
    di.u.rti.table_data = e->table;
    /* in words: each entry is two int32 */
    di.u.rti.table_len = e->fde_count * 8 / sizeof(unw_word_t);
    int ret = UNW_OBJ(dwarf_search_unwind_table)(as, ip, &di, pi, need_unwind_info, arg);
    if (ret == -UNW_ENOINFO) {
        c->no_info = 1;
        return -UNW_ESTOPUNWIND;
    }
    return ret;
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    /* libunwind frees the DWARF (table-format) info it allocated itself;
     * we hand out nothing that needs freeing. */
    (void)as;
    (void)pi;
    (void)arg;
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    (void)as;
    (void)addr;
    (void)arg;
    return -UNW_ENOINFO;
}

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *valp, int write,
                          void *arg)
{
    struct uw_call *c = arg;
    (void)as;
    if (write)
        return -UNW_EINVAL;
    if (addr >= c->stack_addr && c->stack_len >= sizeof *valp &&
        addr - c->stack_addr <= c->stack_len - sizeof *valp) {
        memcpy(valp, c->stack + (addr - c->stack_addr), sizeof *valp);
        return 0;
    }
    if (readable(addr, sizeof *valp)) {
        memcpy(valp, (const void *)(uintptr_t)addr, sizeof *valp);
        return 0;
    }
    return -UNW_EINVAL;
}

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *valp, int write,
                          void *arg)
{
    const struct bp_regs *r = ((struct uw_call *)arg)->regs;
    (void)as;
    if (write)
        return -UNW_EREADONLYREG;
    switch (reg) {
    case UNW_X86_64_RIP:
        *valp = r->ip;
        return 0;
    case UNW_X86_64_RSP:
        *valp = r->sp;
        return 0;
    case UNW_X86_64_RBP:
        *valp = r->bp;
        return 0;
    case UNW_X86_64_RBX:
        *valp = r->bx;
        return 0;
    case UNW_X86_64_R12:
        *valp = r->r12;
        return 0;
    case UNW_X86_64_R13:
        *valp = r->r13;
        return 0;
    case UNW_X86_64_R14:
        *valp = r->r14;
        return 0;
    case UNW_X86_64_R15:
        *valp = r->r15;
        return 0;
    default:
        return -UNW_EBADREG;
    }
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
                            void *arg)
{
    (void)as;
    (void)reg;
    (void)val;
    (void)write;
    (void)arg;
    return -UNW_EBADREG;
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *cursor, void *arg)
{
    (void)as;
    (void)cursor;
    (void)arg;
    return -UNW_EINVAL;
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
                             unw_word_t *offp, void *arg)
{
    (void)as;
    (void)addr;
    (void)buf;
    (void)len;
    (void)offp;
    (void)arg;
    return -UNW_ENOINFO;
}

static unw_accessors_t uw_accessors = {
    .find_proc_info = acc_find_proc_info,
    .put_unwind_info = acc_put_unwind_info,
    .get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
    .access_mem = acc_access_mem,
    .access_reg = acc_access_reg,
    .access_fpreg = acc_access_fpreg,
    .resume = acc_resume,
    .get_proc_name = acc_get_proc_name,
};

/* ---- the walk -------------------------------------------------------- */

static uint64_t get_reg(unw_cursor_t *cur, unw_regnum_t reg)
{
    unw_word_t v;
    return unw_get_reg(cur, reg, &v) == 0 ? (uint64_t)v : 0;
}

static void walk(struct uw_call *c)
{
    unw_cursor_t cur;
    c->n = 0;
    c->why = BP_UNWIND_ERROR;
    c->at_stop = *c->regs;
    if (find_exec(c->regs->ip) == NULL) { /* a sample taken in JIT code */
        c->out[c->n++] = c->regs->ip;
        c->why = BP_UNWIND_NO_INFO;
        return;
    }
    if (unw_init_remote(&cur, uw_as, c) < 0) {
        c->out[c->n++] = c->regs->ip;
        return;
    }
    uint64_t prev_sp = c->regs->sp;
    for (;;) {
        uint64_t ip = get_reg(&cur, UNW_REG_IP);
        c->out[c->n++] = ip;
        if (c->n >= c->max) {
            c->why = BP_UNWIND_MAX;
            break;
        }
        /* An ip in no loaded object (JIT code) cannot have unwind info: stop
         * here without asking libunwind (each unw_step costs two
         * sigprocmask calls for its cache lock). A return address is looked
         * up at ip - 1, the call instruction, as libunwind does. */
        if (find_exec(c->n == 1 ? ip : ip - 1) == NULL) {
            c->why = BP_UNWIND_NO_INFO;
            break;
        }
        c->no_info = 0;
        int r = unw_step(&cur);
        if (r > 0) {
            /* Each frame pops at least its return address: a stack
             * pointer that does not move up is a garbage chain. */
            uint64_t sp = get_reg(&cur, UNW_REG_SP);
            if (sp <= prev_sp) {
                c->why = BP_UNWIND_ERROR;
                return; /* at_stop left as the registers given */
            }
            prev_sp = sp;
            continue;
        }
        c->why = r == 0 ? BP_UNWIND_END : c->no_info ? BP_UNWIND_NO_INFO : BP_UNWIND_ERROR;
        break;
    }
    c->at_stop.ip = get_reg(&cur, UNW_X86_64_RIP);
    c->at_stop.sp = get_reg(&cur, UNW_X86_64_RSP);
    c->at_stop.bp = get_reg(&cur, UNW_X86_64_RBP);
    c->at_stop.bx = get_reg(&cur, UNW_X86_64_RBX);
    c->at_stop.r12 = get_reg(&cur, UNW_X86_64_R12);
    c->at_stop.r13 = get_reg(&cur, UNW_X86_64_R13);
    c->at_stop.r14 = get_reg(&cur, UNW_X86_64_R14);
    c->at_stop.r15 = get_reg(&cur, UNW_X86_64_R15);
}

/* Called by dl_iterate_phdr for its first object, with the loader lock
 * held: re-validates the object table and walks. */
static int walk_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct uw_call *c = data;
    int have_counts = size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs;
    if (!have_counts || !uw_tables_valid || info->dlpi_adds != uw_adds ||
        info->dlpi_subs != uw_subs) {
        if (rebuild_tables() != 0) {
            uw_tables_valid = 0;
            c->out[c->n++] = c->regs->ip;
            c->why = BP_UNWIND_ERROR;
            return 1;
        }
        unw_flush_cache(uw_as, 0, 0);
        uw_tables_valid = have_counts;
        if (have_counts) {
            uw_adds = info->dlpi_adds;
            uw_subs = info->dlpi_subs;
        }
    }
    walk(c);
    return 1;
}

int bp_unwind_copy_ex(const struct bp_regs *regs, const uint8_t *stack, uint64_t stack_addr,
                      size_t stack_len, uint64_t *out, int max, struct bp_regs *at_stop,
                      int *why)
{
    struct uw_call c;
    if (why != NULL)
        *why = BP_UNWIND_ERROR;
    if (regs == NULL || out == NULL || max <= 0)
        return 0;
    if (stack == NULL)
        stack_len = 0;
    memset(&c, 0, sizeof c);
    c.regs = regs;
    c.stack = stack;
    c.stack_addr = stack_addr;
    c.stack_len = stack_len;
    c.out = out;
    c.max = max;
    c.why = BP_UNWIND_ERROR;
    c.at_stop = *regs;

    pthread_mutex_lock(&uw_lock);
    if (uw_as == NULL) {
        uw_as = unw_create_addr_space(&uw_accessors, 0);
        if (uw_as != NULL) {
            /* Debian's libunwind is built without its per-thread cache
             * (PER_THREAD behaves as GLOBAL); NONE re-parses every FDE and
             * measured 2x slower. */
            unw_set_caching_policy(uw_as, UNW_CACHE_GLOBAL);
            unw_set_cache_size(uw_as, UW_CACHE_ENTRIES, 0);
            uw_tables_valid = 0;
        }
    }
    if (uw_as != NULL)
        dl_iterate_phdr(walk_cb, &c);
    pthread_mutex_unlock(&uw_lock);

    if (c.n == 0) { /* no address space, or no object list at all */
        out[c.n++] = regs->ip;
        c.why = BP_UNWIND_ERROR;
        c.at_stop = *regs;
    }
    if (at_stop != NULL)
        *at_stop = c.at_stop;
    if (why != NULL)
        *why = c.why;
    return c.n;
}

int bp_unwind_copy(const struct bp_regs *regs, const uint8_t *stack, uint64_t stack_addr,
                   size_t stack_len, uint64_t *out, int max, struct bp_regs *at_stop)
{
    return bp_unwind_copy_ex(regs, stack, stack_addr, stack_len, out, max, at_stop, NULL);
}

void bp_unwind_release(void)
{
    pthread_mutex_lock(&uw_lock);
    if (uw_as != NULL) {
        unw_destroy_addr_space(uw_as);
        uw_as = NULL;
    }
    free(uw_execs);
    free(uw_ranges);
    uw_execs = NULL;
    uw_ranges = NULL;
    uw_nexecs = uw_nranges = 0;
    uw_tables_valid = 0;
    pthread_mutex_unlock(&uw_lock);
}
