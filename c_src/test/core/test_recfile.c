/* test_recfile.c - the recording's ring file: create, reuse, .prev,
 * locked, not_a_recording, wrap, torn frames, resumed sequence numbers. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bp_crc32.h"
#include "bp_recfile.h"
#include "bp_test.h"

#define RING 65536u

static char dir[64];
static char path[128];

static void fresh_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/bp_recfile_XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof path, "%s/rec", dir);
}

static void cleanup(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/rec.prev", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/link", dir);
    unlink(p);
    unlink(path);
    rmdir(dir);
}

static int open_as(struct bp_recfile *r, uint64_t pid, int64_t since, enum bp_recfile_how *how)
{
    int e = 0;
    return bp_recfile_open(r, path, RING, pid, since, 1000, NULL, 0, &e, how);
}

/* Reads the whole file into a malloc'd buffer; *size gets its length. */
static unsigned char *slurp(const char *p, size_t *size)
{
    FILE *f = fopen(p, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* Valid frames of a file image: count, lowest and highest seq. */
static int scan(const unsigned char *file, uint64_t *lo, uint64_t *hi)
{
    const unsigned char *ring = file + BP_REC_HEADER_SIZE;
    uint64_t seq, end;
    int n = 0;
    *lo = UINT64_MAX;
    *hi = 0;
    for (uint64_t off = 0; off + BP_REC_FRAME_HEAD <= RING;) {
        if (bp_recfile_frame_at(ring, RING, off, &seq, &end)) {
            CHECK(end <= RING);
            n++;
            *lo = seq < *lo ? seq : *lo;
            *hi = seq > *hi ? seq : *hi;
            off = end;
        } else {
            off += 8;
        }
    }
    return n;
}

static void append_n(struct bp_recfile *r, int n, size_t len)
{
    unsigned char p[2048];
    memset(p, 0x5a, sizeof p);
    p[0] = 131;
    for (int i = 0; i < n; i++)
        CHECK(bp_recfile_append(r, p, len) == BP_REC_OK);
}

BP_TEST(crc32_check_value)
{
    CHECK(bp_crc32_update(0, "123456789", 9) == 0xCBF43926u);
    uint32_t c = bp_crc32_update(0, "12345", 5);
    CHECK(bp_crc32_update(c, "6789", 4) == 0xCBF43926u);
    CHECK(bp_crc32_update(0, "", 0) == 0);
    /* 43 bytes: the 4-byte steps and a tail of 3 */
    CHECK(bp_crc32_update(0, "The quick brown fox jumps over the lazy dog", 43) == 0x414FA339u);
}

BP_TEST(create_header_and_mode)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    struct stat st;
    fresh_dir();
    CHECK(bp_recfile_init(&r) == 0);
    CHECK(open_as(&r, 42, 0, &how) == BP_REC_OK && how == BP_REC_CREATED);
    CHECK(stat(path, &st) == 0 && st.st_size == BP_REC_HEADER_SIZE + RING);
    CHECK((st.st_mode & 0777) == 0600);
    append_n(&r, 3, 100);
    size_t n;
    unsigned char *f = slurp(path, &n); /* read while open: MAP_SHARED is the file */
    CHECK(memcmp(f, bp_rec_magic, 8) == 0 && f[8] == 1 && f[12] == 0 && f[13] == 0x10);
    CHECK(f[24] == 42);
    CHECK(bp_crc32_update(0, f, 40) ==
          (uint32_t)(f[40] | f[41] << 8 | f[42] << 16 | (uint32_t)f[43] << 24));
    uint64_t lo, hi;
    CHECK(scan(f, &lo, &hi) == 3 && lo == 1 && hi == 3);
    /* the first frame: magic bytes, length, padding to 8 */
    const unsigned char *fr = f + BP_REC_HEADER_SIZE;
    CHECK(fr[0] == 0x42 && fr[1] == 0x50 && fr[2] == 0x52 && fr[3] == 0x46);
    CHECK(fr[4] == 100 && fr[40] == 131 && fr[140] == 0 && fr[143] == 0);
    CHECK(fr[144] == 0x42); /* next frame at 40 + 100 rounded up to 8 */
    struct bp_recfile_info info;
    bp_recfile_info(&r, &info);
    CHECK(info.open && info.frames == 3 && info.bytes == 3 * 144 && info.seq == 4);
    CHECK(open_as(&r, 42, 0, &how) == BP_REC_ALREADY_OPEN);
    free(f);
    bp_recfile_destroy(&r);
    cleanup();
}

BP_TEST(resume_same_vm)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    fresh_dir();
    bp_recfile_init(&r);
    CHECK(open_as(&r, 7, 500, &how) == BP_REC_OK);
    append_n(&r, 5, 60);
    bp_recfile_close(&r);
    CHECK(bp_recfile_append(&r, "x", 1) == BP_REC_CLOSED);
    CHECK(open_as(&r, 7, 500, &how) == BP_REC_OK && how == BP_REC_RESUMED);
    struct bp_recfile_info info;
    bp_recfile_info(&r, &info);
    CHECK(info.seq == 6 && info.frames == 0);
    append_n(&r, 2, 60);
    size_t n;
    unsigned char *f = slurp(path, &n);
    uint64_t lo, hi;
    CHECK(scan(f, &lo, &hi) == 7 && lo == 1 && hi == 7);
    free(f);
    bp_recfile_destroy(&r);
    cleanup();
}

BP_TEST(other_vm_moves_to_prev)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    char prev[160];
    size_t n;
    uint64_t lo, hi;
    fresh_dir();
    snprintf(prev, sizeof prev, "%s.prev", path);
    bp_recfile_init(&r);
    CHECK(open_as(&r, 7, 0, &how) == BP_REC_OK);
    append_n(&r, 4, 60);
    bp_recfile_close(&r);
    CHECK(open_as(&r, 8, 0, &how) == BP_REC_OK && how == BP_REC_MOVED);
    append_n(&r, 1, 60);
    bp_recfile_close(&r);
    unsigned char *f = slurp(prev, &n);
    CHECK(f != NULL && scan(f, &lo, &hi) == 4 && f[24] == 7);
    free(f);
    f = slurp(path, &n);
    CHECK(scan(f, &lo, &hi) == 1 && lo == 1 && f[24] == 8);
    free(f);
    /* the same pid, but opened before this VM started: a reused pid */
    CHECK(open_as(&r, 8, 2000, &how) == BP_REC_OK && how == BP_REC_MOVED);
    bp_recfile_close(&r);
    f = slurp(prev, &n);
    CHECK(f != NULL && f[24] == 8 && scan(f, &lo, &hi) == 1);
    free(f);
    bp_recfile_destroy(&r);
    cleanup();
}

BP_TEST(locked_by_another_writer)
{
    struct bp_recfile a, b;
    enum bp_recfile_how how;
    fresh_dir();
    bp_recfile_init(&a);
    bp_recfile_init(&b);
    CHECK(open_as(&a, 7, 0, &how) == BP_REC_OK);
    CHECK(open_as(&b, 7, 0, &how) == BP_REC_LOCKED);
    CHECK(open_as(&b, 9, 0, &how) == BP_REC_LOCKED);
    bp_recfile_close(&a);
    CHECK(open_as(&b, 7, 0, &how) == BP_REC_OK && how == BP_REC_RESUMED);
    bp_recfile_destroy(&a);
    bp_recfile_destroy(&b);
    cleanup();
}

BP_TEST(foreign_file_untouched)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    int e = 0;
    size_t n;
    char link[160];
    fresh_dir();
    FILE *f = fopen(path, "wb");
    fputs("precious data, not a recording", f);
    fclose(f);
    bp_recfile_init(&r);
    CHECK(open_as(&r, 7, 0, &how) == BP_REC_NOT_A_RECORDING);
    unsigned char *b = slurp(path, &n);
    CHECK(n == 30 && memcmp(b, "precious", 8) == 0);
    free(b);
    snprintf(link, sizeof link, "%s/link", dir);
    CHECK(symlink(path, link) == 0);
    CHECK(bp_recfile_open(&r, link, RING, 7, 0, 0, NULL, 0, &e, &how) == BP_REC_SYS && e == ELOOP);
    CHECK(bp_recfile_open(&r, dir, RING, 7, 0, 0, NULL, 0, &e, &how) != BP_REC_OK);
    CHECK(bp_recfile_open(&r, "/nonexistent-dir/x", RING, 7, 0, 0, NULL, 0, &e, &how) == BP_REC_SYS &&
          e == ENOENT);
    CHECK(bp_recfile_open(&r, path, RING + 4, 7, 0, 0, NULL, 0, &e, &how) == BP_REC_BAD_ARG);
    CHECK(bp_recfile_open(&r, path, 4096, 7, 0, 0, NULL, 0, &e, &how) == BP_REC_BAD_ARG);
    CHECK(bp_recfile_open(&r, "", RING, 7, 0, 0, NULL, 0, &e, &how) == BP_REC_BAD_ARG);
    bp_recfile_destroy(&r);
    cleanup();
}

BP_TEST(wrap_keeps_newest)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    size_t n;
    uint64_t lo, hi;
    fresh_dir();
    bp_recfile_init(&r);
    CHECK(open_as(&r, 7, 0, &how) == BP_REC_OK);
    append_n(&r, 500, 1000); /* 500 x 1040 bytes through a 64 KiB ring */
    struct bp_recfile_info info;
    bp_recfile_info(&r, &info);
    CHECK(info.wraps >= 7 && info.frames == 500 && info.seq == 501);
    unsigned char *f = slurp(path, &n);
    int k = scan(f, &lo, &hi);
    CHECK(hi == 500 && (uint64_t)k == hi - lo + 1 && k >= 60);
    free(f);
    /* too large or empty payloads are refused and counted */
    static unsigned char big[RING];
    CHECK(bp_recfile_append(&r, big, RING - BP_REC_FRAME_HEAD + 1) == BP_REC_TOO_LARGE);
    CHECK(bp_recfile_append(&r, big, 0) == BP_REC_TOO_LARGE);
    CHECK(bp_recfile_append(&r, big, RING - BP_REC_FRAME_HEAD) == BP_REC_OK);
    bp_recfile_info(&r, &info);
    CHECK(info.dropped == 2 && info.frames == 501);
    f = slurp(path, &n);
    CHECK(scan(f, &lo, &hi) == 1 && lo == 501);
    free(f);
    bp_recfile_destroy(&r);
    cleanup();
}

BP_TEST(torn_frame_skipped_and_resumed_over)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    size_t n;
    uint64_t lo, hi;
    fresh_dir();
    bp_recfile_init(&r);
    CHECK(open_as(&r, 7, 0, &how) == BP_REC_OK);
    append_n(&r, 3, 100); /* frames at 0, 144, 288 */
    bp_recfile_close(&r);
    int fd = open(path, O_RDWR);
    unsigned char bad = 0xff;
    CHECK(pwrite(fd, &bad, 1, BP_REC_HEADER_SIZE + 288 + 60) == 1); /* payload of seq 3 */
    close(fd);
    unsigned char *f = slurp(path, &n);
    CHECK(scan(f, &lo, &hi) == 2 && hi == 2);
    free(f);
    CHECK(open_as(&r, 7, 0, &how) == BP_REC_OK && how == BP_REC_RESUMED);
    struct bp_recfile_info info;
    bp_recfile_info(&r, &info);
    CHECK(info.seq == 3);
    append_n(&r, 1, 100);
    f = slurp(path, &n);
    CHECK(scan(f, &lo, &hi) == 3 && hi == 3);
    free(f);
    bp_recfile_destroy(&r);
    cleanup();
}

BP_TEST(first_frame_follows_open)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    int e = 0;
    size_t n;
    uint64_t lo, hi;
    fresh_dir();
    bp_recfile_init(&r);
    CHECK(bp_recfile_open(&r, path, RING, 7, 0, 0, "\x83j", 2, &e, &how) == BP_REC_OK);
    append_n(&r, 2, 60);
    bp_recfile_close(&r);
    CHECK(bp_recfile_open(&r, path, RING, 7, 0, 0, "\x83j", 2, &e, &how) == BP_REC_OK &&
          how == BP_REC_RESUMED);
    unsigned char *f = slurp(path, &n);
    const unsigned char *ring = f + BP_REC_HEADER_SIZE;
    CHECK(ring[4] == 2 && ring[8] == 1 && ring[40] == 0x83); /* seq 1: the first payload */
    CHECK(scan(f, &lo, &hi) == 4 && hi == 4);
    free(f);
    struct bp_recfile_info info;
    bp_recfile_info(&r, &info);
    CHECK(info.frames == 1 && info.seq == 5);
    bp_recfile_destroy(&r);
    cleanup();
}

struct writer {
    struct bp_recfile *r;
    int n, len;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    unsigned char p[300];
    memset(p, w->len, sizeof p);
    p[0] = 131;
    for (int i = 0; i < w->n; i++)
        CHECK(bp_recfile_append(w->r, p, (size_t)(w->len + i % 50)) == BP_REC_OK);
    return NULL;
}

/* Two threads appending at once (the sampler thread and a NIF caller):
 * every frame left in the ring is whole, their sequence numbers are one
 * unbroken run ending at the last frame written. */
BP_TEST(concurrent_writers)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    size_t n;
    uint64_t lo, hi;
    pthread_t a, b;
    fresh_dir();
    bp_recfile_init(&r);
    CHECK(open_as(&r, 7, 0, &how) == BP_REC_OK);
    struct writer wa = {&r, 3000, 40}, wb = {&r, 3000, 200};
    pthread_create(&a, NULL, writer_main, &wa);
    pthread_create(&b, NULL, writer_main, &wb);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    unsigned char *f = slurp(path, &n);
    int k = scan(f, &lo, &hi);
    CHECK(hi == 6000 && (uint64_t)k == hi - lo + 1 && k > 100);
    free(f);
    bp_recfile_destroy(&r);
    cleanup();
}

/* Not an assertion on time: prints what one frame costs (800-byte payload,
 * a 16 MiB ring, every page touched for the first time and then again). */
BP_TEST(append_cost_printed)
{
    struct bp_recfile r;
    enum bp_recfile_how how;
    int e = 0;
    static unsigned char p[800];
    struct timespec a, b;
    fresh_dir();
    bp_recfile_init(&r);
    CHECK(bp_recfile_open(&r, path, 16u << 20, 7, 0, 0, NULL, 0, &e, &how) == BP_REC_OK);
    p[0] = 131;
    double ns[2];
    for (int round = 0; round < 2; round++) {
        int n = (16 << 20) / 840; /* one pass over the ring */
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < n; i++)
            CHECK(bp_recfile_append(&r, p, sizeof p) == BP_REC_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns[round] = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
    }
    printf("  bp_recfile_append: %.0f ns per 800-byte frame on fresh pages, %.0f ns on "
           "pages already mapped\n", ns[0], ns[1]);
    bp_recfile_destroy(&r);
    cleanup();
}

const struct bp_test_case bp_recfile_tests[] = {
    {"concurrent_writers", concurrent_writers},
    {"append_cost_printed", append_cost_printed},
    {"first_frame_follows_open", first_frame_follows_open},
    {"crc32_check_value", crc32_check_value},
    {"create_header_and_mode", create_header_and_mode},
    {"resume_same_vm", resume_same_vm},
    {"other_vm_moves_to_prev", other_vm_moves_to_prev},
    {"locked_by_another_writer", locked_by_another_writer},
    {"foreign_file_untouched", foreign_file_untouched},
    {"wrap_keeps_newest", wrap_keeps_newest},
    {"torn_frame_skipped_and_resumed_over", torn_frame_skipped_and_resumed_over},
    {NULL, NULL},
};
