/* bp_recfile.h - the flight recorder's ring file (doc/recording-format.md):
 * a 4096-byte header and a ring of CRC-checked frames in one file of fixed
 * size, memory-mapped MAP_SHARED, so that what was appended is in the page
 * cache (and so in the file) the moment the copy ends, even if the process
 * is killed right after. No fsync: a machine crash can lose the tail.
 *
 * Plain POSIX, no erl_nif: unit-tested alone (c_src/test/core/test_recfile.c).
 *
 * Concurrency: one struct bp_recfile is shared by the sampler thread (tick
 * frames) and NIF callers (Erlang-side frames, open, close, info). Every
 * function locks its `lock` for its whole duration; it is a leaf lock: no
 * other lock is taken while it is held, and nothing blocks under it except
 * the file operations of open/close (which NIFs run on dirty IO schedulers).
 */
#ifndef BP_RECFILE_H
#define BP_RECFILE_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BP_REC_HEADER_SIZE 4096u
#define BP_REC_FRAME_HEAD 40u
#define BP_REC_VERSION 1u
#define BP_REC_FRAME_MAGIC 0x46525042u /* "BPRF" little-endian */
#define BP_REC_RING_MIN 65536ull
#define BP_REC_RING_MAX (1ull << 32)   /* 4 GiB */
#define BP_REC_RING_DEFAULT (16ull << 20)
/* The largest payload one frame takes (the ring's bound, ring - 40, is
 * larger at every allowed size but the smallest). */
#define BP_REC_PAYLOAD_MAX (1u << 20)

extern const unsigned char bp_rec_magic[8]; /* "BPREC\0v1" */

struct bp_recfile {
    pthread_mutex_t lock;
    /* everything below is under lock */
    int fd;                 /* -1 while closed */
    unsigned char *map;     /* header + ring, MAP_SHARED; NULL while closed */
    uint64_t ring_size;
    uint64_t pos;           /* ring offset of the next frame */
    uint64_t seq;           /* sequence number of the next frame */
    uint64_t bytes;         /* frame bytes written since open (padding included) */
    uint64_t frames;        /* frames written since open */
    uint64_t wraps;         /* times the writer went back to offset 0 */
    uint64_t dropped;       /* frames refused since open (payload too large) */
    char path[PATH_MAX];
};

enum bp_recfile_err {
    BP_REC_OK = 0,
    BP_REC_LOCKED = -1,          /* another open file description holds the flock */
    BP_REC_NOT_A_RECORDING = -2, /* exists, is not empty, has no magic (or is not a regular file) */
    BP_REC_SYS = -3,             /* a system call failed: errno in *sys_errno */
    BP_REC_ALREADY_OPEN = -4,
    BP_REC_BAD_ARG = -5,         /* ring size out of bounds or not a multiple of 8; path too long */
    BP_REC_CLOSED = -6,          /* append: no file open */
    BP_REC_TOO_LARGE = -7        /* append: payload empty or larger than the bound */
};

/* What bp_recfile_open did with an existing file. */
enum bp_recfile_how {
    BP_REC_CREATED = 0, /* new file (or an empty one) */
    BP_REC_RESUMED = 1, /* this VM's own recording: appending after its newest frame */
    BP_REC_MOVED = 2    /* another VM's recording moved to path.prev, new file made */
};

struct bp_recfile_info {
    int open;
    uint64_t ring_size, bytes, frames, wraps, dropped, seq;
    char path[PATH_MAX];
};

/* Makes the lock; the file is closed. Returns 0 or -1. */
int bp_recfile_init(struct bp_recfile *r);

/* Closes the file if open, destroys the lock. No other thread may use r. */
void bp_recfile_destroy(struct bp_recfile *r);

/* Opens (or creates) the recording at path with a ring of ring_size bytes
 * (a multiple of 8 in BP_REC_RING_MIN..BP_REC_RING_MAX) for writing, as
 * doc/recording-format.md says ("Writing"): O_NOFOLLOW, 0600 when created,
 * flock(LOCK_EX | LOCK_NB) held until close. An existing recording is
 * resumed when its header names os_pid and says it was opened at or after
 * since_us (µs since the epoch when this VM started: a pid reused by a
 * restarted container's VM is another VM), its header is valid and its
 * ring has ring_size bytes; otherwise it is renamed to path.prev (replacing
 * that) and a new file is made. An existing empty file is taken as new.
 * now_us goes into the header. When first is not NULL, first[0..first_len)
 * is appended as a frame before the lock is released, so that it is the
 * first frame after this open whatever other threads append. Returns an enum bp_recfile_err; on
 * BP_REC_SYS *sys_errno is set; on BP_REC_OK *how says what happened.
 * Blocks on file I/O (reads the whole ring on resume): not for a normal
 * scheduler. */
int bp_recfile_open(struct bp_recfile *r, const char *path, uint64_t ring_size,
                    uint64_t os_pid, int64_t since_us, int64_t now_us,
                    const void *first, size_t first_len,
                    int *sys_errno, enum bp_recfile_how *how);

/* Appends one frame holding payload[0..len) (1 <= len <= BP_REC_PAYLOAD_MAX
 * and <= ring - 40), stamped with CLOCK_MONOTONIC and CLOCK_REALTIME read
 * under the lock (so seq and times rise together). The frame's magic is
 * written last. Never allocates, never blocks on I/O except for a page
 * fault on a page not yet in memory. Any thread. Returns BP_REC_OK,
 * BP_REC_CLOSED or BP_REC_TOO_LARGE (counted in dropped). */
int bp_recfile_append(struct bp_recfile *r, const void *payload, size_t len);

/* Unmaps, unlocks and closes the file, if open. No fsync. Any thread. */
void bp_recfile_close(struct bp_recfile *r);

/* Copies the counters (all zero and open = 0 while closed). Any thread. */
void bp_recfile_info(struct bp_recfile *r, struct bp_recfile_info *out);

/* Frame scan shared with the resume logic and the tests: whether a valid
 * frame (magic, length within the ring, CRC) starts at ring offset off;
 * fills *seq and *end (its padded end) when it does. Pure. */
int bp_recfile_frame_at(const unsigned char *ring, uint64_t ring_size, uint64_t off,
                        uint64_t *seq, uint64_t *end);

#endif
