/* bp_memory.h - memory of the VM and the limit it lives under.
 *
 * RSS from /proc/self/statm, MemTotal/MemAvailable from /proc/meminfo (both
 * kept open and read with pread), and the cgroup memory limit (v2 memory.max
 * or v1 memory.limit_in_bytes), which is cached and re-read only on request.
 *
 * The limit in force: the caller's option if > 0, else the cgroup limit if
 * one applies and is below MemTotal, else the machine. The ratio: RSS/limit
 * with an option or cgroup limit (it may exceed 1.0 when RSS is above the
 * limit), (MemTotal - MemAvailable)/MemTotal for the machine.
 *
 * Text parsing is in pure functions (bp_memory.c) the unit tests feed with
 * fixed strings; file access is in bp_memory_linux.c.
 */
#ifndef BP_MEMORY_H
#define BP_MEMORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define BP_CGROUP_PATH_MAX 512

enum bp_limit_source {
    BP_LIMIT_OPTION = 0,
    BP_LIMIT_CGROUP_V2 = 1,
    BP_LIMIT_CGROUP_V1 = 2,
    BP_LIMIT_MACHINE = 3
};

struct bp_memory_reading {
    uint64_t rss;           /* bytes */
    uint64_t mem_total;     /* bytes */
    uint64_t mem_available; /* bytes */
    uint64_t used;          /* what the ratio's numerator is, bytes */
    uint64_t limit;         /* limit in force, bytes */
    double ratio;           /* used / limit */
    enum bp_limit_source source;
};

/* Where this process sits in the cgroup hierarchies (/proc/self/cgroup). */
struct bp_cgroup_paths {
    int has_v1; /* a v1 hierarchy carries the memory controller */
    int has_v2; /* a "0::" line */
    char v1[BP_CGROUP_PATH_MAX];
    char v2[BP_CGROUP_PATH_MAX];
};

/* A cgroup limit as read: bytes == 0 means none found or "max". */
struct bp_cgroup_limit {
    uint64_t bytes;
    enum bp_limit_source source; /* BP_LIMIT_CGROUP_V1/V2 when bytes > 0 */
};

struct bp_memory {
    pthread_mutex_t lock; /* guards the fds' use and `cgroup`; leaf lock */
    int statm_fd;
    int meminfo_fd;
    uint64_t page_size;
    struct bp_cgroup_limit cgroup;
    uint64_t mem_total;   /* MemTotal of the last meminfo read; under lock */
};

/* --- pure (bp_memory.c) ------------------------------------------------- */

/* "size resident ..." -> resident pages. Returns 0, or -1 if malformed. */
int bp_memory_parse_statm(const char *buf, size_t len, uint64_t *resident_pages);

/* /proc/meminfo text -> MemTotal and MemAvailable in bytes. MemAvailable
 * falls back to MemFree on kernels without it. Returns 0, or -1 if MemTotal
 * (or both free figures) is missing. */
int bp_memory_parse_meminfo(const char *buf, size_t len, uint64_t *total,
                            uint64_t *available);

/* /proc/self/cgroup text -> paths of the v1 memory hierarchy and of the v2
 * hierarchy. Returns 0 (even when neither is present), -1 if a path is too
 * long. */
int bp_memory_parse_cgroup(const char *buf, size_t len, struct bp_cgroup_paths *out);

/* A memory.max / memory.limit_in_bytes value. Returns 1 and sets *bytes for
 * a number, 0 for "max" (no limit), -1 if malformed. */
int bp_memory_parse_limit(const char *buf, size_t len, uint64_t *bytes);

/* Whether the cgroup's limit is the one in force when no option sets one:
 * set, and below the machine's memory. */
int bp_memory_cgroup_applies(const struct bp_cgroup_limit *cg, uint64_t mem_total);

/* Chooses the limit in force and computes the ratio (see above). rss,
 * mem_total and mem_available must be set in *out already. */
void bp_memory_decide(uint64_t option_limit, const struct bp_cgroup_limit *cg,
                      struct bp_memory_reading *out);

/* --- platform (bp_memory_linux.c) ---------------------------------------- */

/* Opens /proc/self/statm and /proc/meminfo and reads the cgroup limit.
 * Returns 0, or -1 (with nothing left open) if a file cannot be opened. */
int bp_memory_open(struct bp_memory *m);

/* Closes the fds and destroys the lock. */
void bp_memory_close(struct bp_memory *m);

/* Re-reads the cgroup limit into the cache. Locks. */
void bp_memory_refresh_cgroup(struct bp_memory *m);

/* Reads RSS now and decides the limit with the cached cgroup limit.
 * /proc/meminfo is read when `machine` is set or when the decision needs it
 * (no option limit, and no cgroup limit below the last MemTotal); otherwise
 * mem_total is the last one read and mem_available is left as it was in
 * *out. Returns 0, or -1 if a read failed. Locks. Thread-safe. */
int bp_memory_read(struct bp_memory *m, uint64_t option_limit, int machine,
                   struct bp_memory_reading *out);

#endif
