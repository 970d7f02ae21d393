/* bp_recfile.c - the recording's ring file: open/create, resume, append,
 * close (format: doc/recording-format.md). */
#include "bp_recfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bp_crc32.h"

const unsigned char bp_rec_magic[8] = {'B', 'P', 'R', 'E', 'C', 0, 'v', '1'};

/* ------------------------------------------------------ little-endian */

static void bp_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void bp_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t bp_get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t bp_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The frame magic as a native uint32_t whose bytes are 42 50 52 46: one
 * aligned store (frames start at multiples of 8) that readers of the
 * mapping see whole. */
static uint32_t bp_frame_magic_native(void)
{
    unsigned char b[4];
    uint32_t v;
    bp_put32(b, BP_REC_FRAME_MAGIC);
    memcpy(&v, b, 4);
    return v;
}

static int64_t bp_now(clockid_t clock, int64_t div)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec) / div;
}

/* ----------------------------------------------------------- lifecycle */

int bp_recfile_init(struct bp_recfile *r)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    return pthread_mutex_init(&r->lock, NULL) == 0 ? 0 : -1;
}

void bp_recfile_destroy(struct bp_recfile *r)
{
    bp_recfile_close(r);
    pthread_mutex_destroy(&r->lock);
}

/* Unmaps and closes (which drops the flock). Under lock. */
static void bp_recfile_release(struct bp_recfile *r)
{
    if (r->map != NULL)
        munmap(r->map, BP_REC_HEADER_SIZE + r->ring_size);
    if (r->fd >= 0)
        close(r->fd);
    r->map = NULL;
    r->fd = -1;
}

void bp_recfile_close(struct bp_recfile *r)
{
    pthread_mutex_lock(&r->lock);
    bp_recfile_release(r);
    pthread_mutex_unlock(&r->lock);
}

/* -------------------------------------------------------------- header */

static void bp_header_write(unsigned char *h, uint64_t ring_size, uint64_t pid, int64_t now_us)
{
    memset(h, 0, BP_REC_HEADER_SIZE);
    memcpy(h, bp_rec_magic, 8);
    bp_put32(h + 8, BP_REC_VERSION);
    bp_put32(h + 12, BP_REC_HEADER_SIZE);
    bp_put64(h + 16, ring_size);
    bp_put64(h + 24, pid);
    bp_put64(h + 32, (uint64_t)now_us);
    bp_put32(h + 40, bp_crc32_update(0, h, 40));
}

/* Whether h (the first 48 bytes at least) is a valid header for a file of
 * file_size bytes; fills *ring, *pid, *opened. */
static int bp_header_valid(const unsigned char *h, uint64_t file_size, uint64_t *ring,
                           uint64_t *pid, int64_t *opened)
{
    if (memcmp(h, bp_rec_magic, 8) != 0 || bp_get32(h + 8) != BP_REC_VERSION ||
        bp_get32(h + 12) != BP_REC_HEADER_SIZE || bp_get32(h + 40) != bp_crc32_update(0, h, 40))
        return 0;
    *ring = bp_get64(h + 16);
    *pid = bp_get64(h + 24);
    *opened = (int64_t)bp_get64(h + 32);
    return *ring >= BP_REC_RING_MIN && *ring % 8 == 0 && file_size == BP_REC_HEADER_SIZE + *ring;
}

/* --------------------------------------------------------------- frames */

int bp_recfile_frame_at(const unsigned char *ring, uint64_t ring_size, uint64_t off,
                        uint64_t *seq, uint64_t *end)
{
    if (off % 8 != 0 || off + BP_REC_FRAME_HEAD > ring_size)
        return 0;
    const unsigned char *f = ring + off;
    if (bp_get32(f) != BP_REC_FRAME_MAGIC)
        return 0;
    uint64_t len = bp_get32(f + 4);
    if (len < 1 || len > ring_size - BP_REC_FRAME_HEAD - off)
        return 0;
    uint32_t crc = bp_crc32_update(0, f + 4, 28);
    crc = bp_crc32_update(crc, f + BP_REC_FRAME_HEAD, (size_t)len);
    if (crc != bp_get32(f + 32))
        return 0;
    *seq = bp_get64(f + 8);
    *end = (off + BP_REC_FRAME_HEAD + len + 7) & ~(uint64_t)7;
    return 1;
}

/* Where writing resumes: after the valid frame with the highest sequence
 * number (position 0 and seq 1 when there is none). */
static void bp_recfile_find_tail(struct bp_recfile *r)
{
    const unsigned char *ring = r->map + BP_REC_HEADER_SIZE;
    uint64_t best = 0, best_end = 0, seq, end;
    for (uint64_t off = 0; off + BP_REC_FRAME_HEAD <= r->ring_size;) {
        if (bp_recfile_frame_at(ring, r->ring_size, off, &seq, &end)) {
            if (seq >= best) {
                best = seq;
                best_end = end;
            }
            off = end;
        } else {
            off += 8;
        }
    }
    r->seq = best + 1;
    r->pos = best_end >= r->ring_size ? 0 : best_end;
}

static int bp_recfile_append_locked(struct bp_recfile *r, const void *payload, size_t len);

/* ----------------------------------------------------------------- open */

/* Opens path without following a final symlink; creates it (0600, O_EXCL)
 * if absent. *created says which. Returns the fd or -1 (errno set). */
static int bp_open_file(const char *path, int *created)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            *created = 0;
            return fd;
        }
        if (errno != ENOENT)
            return -1;
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *created = 1;
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

/* Sizes, maps and (when fresh) writes the header of r->fd. */
static int bp_recfile_map(struct bp_recfile *r, int fresh, uint64_t pid, int64_t now_us)
{
    size_t total = (size_t)(BP_REC_HEADER_SIZE + r->ring_size);
    if (fresh && ftruncate(r->fd, (off_t)total) != 0)
        return -1;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (m == MAP_FAILED)
        return -1;
    r->map = m;
    if (fresh) {
        r->pos = 0;
        r->seq = 1;
    } else {
        bp_recfile_find_tail(r);
    }
    bp_header_write(r->map, r->ring_size, pid, now_us);
    return 0;
}

enum bp_verdict { BP_V_FRESH, BP_V_RESUME, BP_V_MOVE, BP_V_FOREIGN };

/* What to do with the file open (and locked) at fd. */
static enum bp_verdict bp_recfile_judge(int fd, uint64_t ring_size, uint64_t pid,
                                        int64_t since_us, int *err)
{
    struct stat st;
    unsigned char h[48];
    uint64_t ring, hpid;
    int64_t opened;
    if (fstat(fd, &st) != 0) {
        *err = errno;
        return BP_V_FOREIGN;
    }
    if (!S_ISREG(st.st_mode))
        return BP_V_FOREIGN;
    if (st.st_size == 0)
        return BP_V_FRESH;
    if (st.st_size < 8 || pread(fd, h, sizeof h, 0) < 8 || memcmp(h, bp_rec_magic, 8) != 0)
        return BP_V_FOREIGN;
    if (st.st_size >= (off_t)sizeof h &&
        bp_header_valid(h, (uint64_t)st.st_size, &ring, &hpid, &opened) && hpid == pid &&
        opened >= since_us && ring == ring_size)
        return BP_V_RESUME;
    return BP_V_MOVE; /* another VM's, a corrupt header or another size: keep it */
}

/* Renames the locked file at path to path.prev (replacing it). */
static int bp_move_prev(const char *path)
{
    char prev[PATH_MAX];
    if (snprintf(prev, sizeof prev, "%s.prev", path) >= (int)sizeof prev) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return rename(path, prev);
}

/* One attempt: open, lock, judge, maybe move aside (then *again), map. */
static int bp_recfile_try(struct bp_recfile *r, const char *path, uint64_t pid,
                          int64_t since_us, int64_t now_us, int *sys_errno,
                          enum bp_recfile_how *how, int *again)
{
    int created, err = 0;
    int fd = bp_open_file(path, &created);
    if (fd < 0) {
        *sys_errno = errno;
        return BP_REC_SYS;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return BP_REC_LOCKED;
        *sys_errno = e;
        return BP_REC_SYS;
    }
    enum bp_verdict v = created ? BP_V_FRESH
                                : bp_recfile_judge(fd, r->ring_size, pid, since_us, &err);
    if (v == BP_V_FOREIGN || v == BP_V_MOVE) {
        int moved = v == BP_V_MOVE && bp_move_prev(path) == 0;
        int e = errno;
        close(fd);
        if (v == BP_V_MOVE && !moved) {
            *sys_errno = e;
            return BP_REC_SYS;
        }
        if (err != 0) {
            *sys_errno = err;
            return BP_REC_SYS;
        }
        if (moved) {
            *how = BP_REC_MOVED;
            *again = 1;
            return BP_REC_OK;
        }
        return BP_REC_NOT_A_RECORDING;
    }
    r->fd = fd;
    if (bp_recfile_map(r, v == BP_V_FRESH, pid, now_us) != 0) {
        *sys_errno = errno;
        bp_recfile_release(r);
        return BP_REC_SYS;
    }
    if (*how != BP_REC_MOVED)
        *how = v == BP_V_RESUME ? BP_REC_RESUMED : BP_REC_CREATED;
    return BP_REC_OK;
}

int bp_recfile_open(struct bp_recfile *r, const char *path, uint64_t ring_size,
                    uint64_t os_pid, int64_t since_us, int64_t now_us,
                    const void *first, size_t first_len,
                    int *sys_errno, enum bp_recfile_how *how)
{
    if (ring_size < BP_REC_RING_MIN || ring_size > BP_REC_RING_MAX || ring_size % 8 != 0 ||
        strlen(path) + sizeof ".prev" > PATH_MAX || path[0] == '\0')
        return BP_REC_BAD_ARG;
    pthread_mutex_lock(&r->lock);
    int rc = BP_REC_ALREADY_OPEN;
    if (r->fd < 0) {
        r->ring_size = ring_size;
        *how = BP_REC_CREATED;
        int again = 0;
        rc = bp_recfile_try(r, path, os_pid, since_us, now_us, sys_errno, how, &again);
        if (rc == BP_REC_OK && again) { /* moved aside: the path is free now */
            again = 0;
            rc = bp_recfile_try(r, path, os_pid, since_us, now_us, sys_errno, how, &again);
            if (rc == BP_REC_OK && again)
                rc = BP_REC_LOCKED; /* someone made a recording there meanwhile */
        }
        if (rc == BP_REC_OK) {
            r->bytes = r->frames = r->wraps = r->dropped = 0;
            snprintf(r->path, sizeof r->path, "%s", path);
            if (first != NULL)
                (void)bp_recfile_append_locked(r, first, first_len);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* -------------------------------------------------------------- append */

/* Appends with the lock held. */
static int bp_recfile_append_locked(struct bp_recfile *r, const void *payload, size_t len)
{
    int rc = BP_REC_OK;
    if (r->map == NULL) {
        rc = BP_REC_CLOSED;
        goto out;
    }
    if (len < 1 || len > BP_REC_PAYLOAD_MAX || len > r->ring_size - BP_REC_FRAME_HEAD) {
        r->dropped++;
        rc = BP_REC_TOO_LARGE;
        goto out;
    }
    uint64_t need = (BP_REC_FRAME_HEAD + len + 7) & ~(uint64_t)7;
    unsigned char *ring = r->map + BP_REC_HEADER_SIZE;
    if (r->pos + need > r->ring_size) { /* never cross the end: zero the rest, wrap */
        memset(ring + r->pos, 0, (size_t)(r->ring_size - r->pos));
        r->bytes += r->ring_size - r->pos;
        r->pos = 0;
        r->wraps++;
    }
    unsigned char *f = ring + r->pos;
    bp_put32(f, 0); /* an older frame's magic here stops being one first */
    bp_put32(f + 4, (uint32_t)len);
    bp_put64(f + 8, r->seq);
    bp_put64(f + 16, (uint64_t)bp_now(CLOCK_MONOTONIC, 1));
    bp_put64(f + 24, (uint64_t)bp_now(CLOCK_REALTIME, 1000));
    bp_put32(f + 36, 0);
    memcpy(f + BP_REC_FRAME_HEAD, payload, len);
    memset(f + BP_REC_FRAME_HEAD + len, 0, (size_t)(need - BP_REC_FRAME_HEAD - len));
    uint32_t crc = bp_crc32_update(0, f + 4, 28);
    bp_put32(f + 32, bp_crc32_update(crc, payload, len));
    __atomic_store_n((uint32_t *)(void *)f, bp_frame_magic_native(), __ATOMIC_RELEASE);
    r->pos += need;
    r->seq++;
    r->frames++;
    r->bytes += need;
out:
    return rc;
}

int bp_recfile_append(struct bp_recfile *r, const void *payload, size_t len)
{
    pthread_mutex_lock(&r->lock);
    int rc = bp_recfile_append_locked(r, payload, len);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void bp_recfile_info(struct bp_recfile *r, struct bp_recfile_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->lock);
    if (r->map != NULL) {
        out->open = 1;
        out->ring_size = r->ring_size;
        out->bytes = r->bytes;
        out->frames = r->frames;
        out->wraps = r->wraps;
        out->dropped = r->dropped;
        out->seq = r->seq;
        snprintf(out->path, sizeof out->path, "%s", r->path);
    }
    pthread_mutex_unlock(&r->lock);
}
