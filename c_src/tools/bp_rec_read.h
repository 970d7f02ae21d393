/* bp_rec_read.h - the flight recording's file format (doc/recording-format.md,
 * version 1) on the reading side: CRC-32, the header, the scan of the ring
 * for whole frames. Pure C on a buffer the caller owns: no I/O, no ei, no
 * VM. Used by the command-line reader (beamprof_read.c). */
#ifndef BP_REC_READ_H
#define BP_REC_READ_H

#include <stddef.h>
#include <stdint.h>

#define BP_REC_HEADER_SIZE 4096u
#define BP_REC_FRAME_HEAD 40u
#define BP_REC_MIN_RING 65536u

enum bp_rec_status {
    BP_REC_OK = 0,
    BP_REC_NOT_RECORDING, /* the first 8 bytes are not the magic */
    BP_REC_TRUNCATED,     /* shorter than the header says (or than a header) */
    BP_REC_CORRUPT_HEADER, /* header CRC, header size or ring size wrong */
    BP_REC_CORRUPT_SIZE,  /* longer than the header says */
    BP_REC_UNSUPPORTED    /* a valid header of another format version */
};

struct bp_rec_header {
    uint32_t version;
    uint64_t ring_size;
    uint64_t os_pid;
    int64_t opened_us;
};

struct bp_rec_frame {
    uint64_t seq;
    int64_t mono_ns;
    int64_t sys_us;
    const uint8_t *payload; /* points into the ring given to bp_rec_scan */
    uint32_t len;
};

struct bp_rec_scan {
    struct bp_rec_frame *frames; /* sorted by seq, duplicates removed */
    size_t count;
    size_t taken;      /* frames whose magic, length and CRC checked */
    size_t bad_frames; /* places with the magic whose length or CRC failed */
    size_t duplicates; /* frames dropped: another frame had their seq */
};


/* Checks the header of a file of `size' bytes whose first min(size, 4096)
 * bytes are `file'. Fills `out' when it returns BP_REC_OK, and `*expected'
 * with the size the file should have (4096 when unknown) for every status. */
enum bp_rec_status bp_rec_header_parse(const uint8_t *file, size_t avail, uint64_t size,
                                       struct bp_rec_header *out, uint64_t *expected);

/* Scans `ring' (`ring_size' bytes, a multiple of 8) as the format says:
 * every multiple of 8, a frame is taken where the magic stands, its length
 * fits and its CRC matches, and the scan continues after it. The frames
 * are sorted by seq; a seq held by two frames or more drops them all.
 * Returns 0, or -1 when memory runs out. The caller frees with
 * bp_rec_scan_free; the frames point into `ring'. */
int bp_rec_scan(const uint8_t *ring, uint64_t ring_size, struct bp_rec_scan *out);

void bp_rec_scan_free(struct bp_rec_scan *scan);

/* Little-endian reads. */
uint32_t bp_rec_u32(const uint8_t *p);
uint64_t bp_rec_u64(const uint8_t *p);

#endif
