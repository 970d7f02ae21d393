/* bp_ptab.h - walking the VM's process table in slices, without building
 * the list erlang:processes() builds.
 *
 * Why: on OTP 25 erlang:processes() is the only way to enumerate processes
 * (OTP 28 added erlang:processes_iterator/0). It inspects the table in
 * yielding steps, but then builds its result in steps of up to 300,000 list
 * cells on fresh heap memory: at 500k processes one such step held a
 * scheduler for 2.1-3.0 ms (measured with a `running' trace), longer than
 * the scan's 2 ms target for everyone else's latency.
 *
 * How: beam.smp exports its process table, the ErtsPTab `erts_proc' (up to
 * OTP 27 at least; OTP 29's beam.smp does not, and there the scan uses
 * erlang:processes_iterator/0 anyway). Its
 * read-only part holds the slot array (one pointer per slot, NULL when
 * free) and the masks that map a pid's data to its slot; every element
 * starts with the owner's id (ErtsPTabElementCommon, "*Need* to be first"
 * in struct process). None of that is API, so nothing is assumed that is
 * not checked first:
 *   - bp_ptab_locate() finds the read-only part in a copy of the struct by
 *     its shape in one of the two layouts known (ERTS 13, OTP 25: 28-bit
 *     pid data and 32-bit masks; ERTS 14 and later, OTP 26+: 60-bit pid
 *     data, 64-bit masks, the slot in the pid's low bits): two pointers,
 *     the process limit and limit-1, masks that multiply out to the limit,
 *     then the invalid element and its data (all bits set), and accepts
 *     exactly one match in either layout;
 *   - bp_ptab_mapped() reads the slot array's ends, once, and
 *     bp_ptab_check(), on every call, looks up the calling process's own
 *     pid by the mask formula; both through reads that cannot fault, and the
 *     element found must carry that pid.
 * Only after both does bp_ptab_walk() read slots directly. Callers run on a
 * normal scheduler thread: a managed thread, which delays thread progress
 * for as long as the NIF call lasts, so no element it sees can be freed
 * under it (ERTS's own lookups, erts_proc_lookup_raw, rely on the same).
 *
 * Which ERTS versions may use the walk at all is decided in Erlang
 * (beamprof_enum:verified_erts/0, the versions a test verified); this file
 * only knows the shapes.
 *
 * Pure C: no ERTS headers, unit-tested on synthetic tables.
 */
#ifndef BP_PTAB_H
#define BP_PTAB_H

#include <stddef.h>
#include <stdint.h>

/* How an id's data maps to its slot (see the header comment). */
enum bp_ptab_layout {
    BP_PTAB_DATA28, /* ERTS 13 and before: the slot is computed from the data */
    BP_PTAB_DATA60, /* ERTS 14 and later: the slot is the data's low bits */
};

/* The read-only part of a process table, as found. */
struct bp_ptab {
    uint64_t tab;     /* address of the slot array (max words) */
    uint64_t invalid; /* the placeholder element a slot may hold */
    enum bp_ptab_layout layout;
    uint32_t max;     /* slots: the process limit, a power of two */
    uint32_t pix_mask, cl_mask, cl_shift, cli_mask, cli_shift;
};

/* The data of an invalid id (ERTS_PTAB_ID_DATA_SIZE bits, all set): 28
 * bits up to ERTS 13, 60 from ERTS 14. */
#define BP_PTAB_INVALID_DATA 0x0fffffffu
#define BP_PTAB_INVALID_DATA60 0x0fffffffffffffffull
/* Bits of tag below a local pid's or port's data (_TAG_IMMED1_SIZE). */
#define BP_PTAB_DATA_SHIFT 4

/* Finds the read-only part in hdr (len bytes copied from the table
 * struct), for a table of `limit' slots. 0 and *out filled when exactly one
 * place matches; -1 otherwise. */
int bp_ptab_locate(const uint8_t *hdr, size_t len, uint32_t limit, struct bp_ptab *out);

/* The slot of an id's data (the id shifted right by BP_PTAB_DATA_SHIFT),
 * by the table's layout. */
uint32_t bp_ptab_pix(const struct bp_ptab *t, uint64_t data);

/* Reads len bytes at addr into dst without faulting: 0, or -1. */
typedef int (*bp_ptab_read_fn)(void *dst, uint64_t addr, size_t len);

/* 0 when the whole slot array can be read through `read' (one allocation
 * for the VM's life: its first and last slot are read); -1 otherwise. */
int bp_ptab_mapped(const struct bp_ptab *t, bp_ptab_read_fn read);

/* 0 when the slot of `id' (a live local pid or port term word, usually
 * the caller's own) holds an element that carries exactly `id', read
 * through `read'; -1 otherwise. */
int bp_ptab_check(const struct bp_ptab *t, uint64_t id, bp_ptab_read_fn read);

/* Reads slots [from, from + n) (clipped to max) directly and appends to out
 * the id of every element whose low 4 bits equal tag's (a local pid's
 * tag, when tag is a pid). out must have room for n ids. Returns how many
 * were appended; *next is the slot after the last one read. */
size_t bp_ptab_walk(const struct bp_ptab *t, uint32_t from, uint32_t n, uint64_t tag,
                    uint64_t *out, uint32_t *next);

#endif
