/* beamprof_read - prints a flight recording (doc/recording-format.md) as
 * text or JSON lines, oldest first, with no Erlang VM: the frames are found
 * and their CRC checked here, the payloads decoded with ei.
 *
 *   beamprof_read [--json] [--since MS] [--until MS] [--kind KIND]... [--stats] FILE
 *
 * --since/--until keep records whose time (ms since the epoch) is within
 * them; --kind (repeatable) keeps those kinds; --stats prints the counts to
 * stderr (they are printed anyway when a frame was skipped).
 *
 * Exit codes: 0 read (even with frames skipped), 1 usage, 2 the file cannot
 * be read, 3 not a recording, 4 truncated, 5 corrupt (header or size),
 * 6 another format version, 7 out of memory. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_rec_print.h"
#include "bp_rec_read.h"

#define MAX_KINDS 32

struct opts {
    int json, stats, nkinds;
    int has_since, has_until;
    long long since, until;
    const char *kinds[MAX_KINDS];
    const char *path;
};

static int usage(void)
{
    fprintf(stderr, "usage: beamprof_read [--json] [--since MS] [--until MS] [--kind KIND]... "
                    "[--stats] FILE\n");
    return 1;
}

static int number(const char *s, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == '\0';
}

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "--json") == 0)
            o->json = 1;
        else if (strcmp(a, "--stats") == 0)
            o->stats = 1;
        else if (strcmp(a, "--since") == 0 && more && number(argv[i + 1], &o->since))
            o->has_since = 1, i++;
        else if (strcmp(a, "--until") == 0 && more && number(argv[i + 1], &o->until))
            o->has_until = 1, i++;
        else if (strcmp(a, "--kind") == 0 && more && o->nkinds < MAX_KINDS)
            o->kinds[o->nkinds++] = argv[++i];
        else if (a[0] != '-' && o->path == NULL)
            o->path = a;
        else
            return -1;
    }
    return o->path ? 0 : -1;
}

/* The whole file into memory; NULL with errno set on failure. */
static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 20;
            uint8_t *n = realloc(buf, ncap);
            if (n == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = n;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            int err = ferror(f) ? errno : 0;
            fclose(f);
            if (err) {
                free(buf);
                errno = err;
                return NULL;
            }
            *size = len;
            return buf;
        }
    }
}

static int header_error(const char *path, enum bp_rec_status st, size_t size, uint64_t expected,
                        uint32_t version)
{
    switch (st) {
    case BP_REC_NOT_RECORDING:
        fprintf(stderr, "beamprof_read: %s: not a beamprof recording\n", path);
        return 3;
    case BP_REC_TRUNCATED:
        fprintf(stderr, "beamprof_read: %s: truncated: %zu bytes, the header says %" PRIu64 "\n",
                path, size, expected);
        return 4;
    case BP_REC_CORRUPT_HEADER:
        fprintf(stderr, "beamprof_read: %s: corrupt header\n", path);
        return 5;
    case BP_REC_CORRUPT_SIZE:
        fprintf(stderr, "beamprof_read: %s: corrupt: %zu bytes, the header says %" PRIu64 "\n",
                path, size, expected);
        return 5;
    default:
        fprintf(stderr, "beamprof_read: %s: format version %u is not supported (this reader "
                        "reads version 1)\n", path, (unsigned)version);
        return 6;
    }
}

static int wanted_kind(const struct opts *o, const char *kind)
{
    if (o->nkinds == 0)
        return 1;
    for (int i = 0; i < o->nkinds; i++)
        if (strcmp(o->kinds[i], kind) == 0)
            return 1;
    return 0;
}

static int in_time(const struct opts *o, int64_t sys_us)
{
    int64_t ms = sys_us >= 0 ? sys_us / 1000 : -((-sys_us + 999) / 1000);
    return (!o->has_since || ms >= o->since) && (!o->has_until || ms <= o->until);
}

/* Prints the frames' records; counts the undecodable ones. */
static int print_frames(const struct opts *o, const struct bp_rec_scan *scan, size_t *printed,
                        size_t *undecodable)
{
    size_t max = 0;
    for (size_t i = 0; i < scan->count; i++)
        if (scan->frames[i].len > max)
            max = scan->frames[i].len;
    char *payload = calloc(1, max + BP_REC_PAD);
    struct bp_rec_line line = {0};
    char kind[BP_REC_KIND_MAX];
    if (payload == NULL)
        return -1;
    for (size_t i = 0; i < scan->count; i++) {
        const struct bp_rec_frame *f = &scan->frames[i];
        if (!in_time(o, f->sys_us))
            continue;
        memcpy(payload, f->payload, f->len);
        memset(payload + f->len, 0, BP_REC_PAD);
        if (bp_rec_render(&line, f, payload, o->json ? BP_REC_JSON : BP_REC_TEXT, kind,
                          sizeof kind) < 0) {
            (*undecodable)++;
            continue;
        }
        if (wanted_kind(o, kind)) {
            fwrite(line.p, 1, line.len, stdout);
            (*printed)++;
        }
    }
    bp_rec_line_free(&line);
    free(payload);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, &o) < 0)
        return usage();
    size_t size;
    uint8_t *file = slurp(o.path, &size);
    if (file == NULL) {
        fprintf(stderr, "beamprof_read: %s: %s\n", o.path, strerror(errno));
        return errno == ENOMEM ? 7 : 2;
    }
    struct bp_rec_header h = {0};
    uint64_t expected;
    enum bp_rec_status st = bp_rec_header_parse(file, size < BP_REC_HEADER_SIZE ? size : BP_REC_HEADER_SIZE,
                                                size, &h, &expected);
    if (st != BP_REC_OK) {
        int rc = header_error(o.path, st, size, expected, h.version);
        free(file);
        return rc;
    }
    struct bp_rec_scan scan;
    size_t printed = 0, undecodable = 0;
    if (bp_rec_scan(file + BP_REC_HEADER_SIZE, h.ring_size, &scan) < 0 ||
        print_frames(&o, &scan, &printed, &undecodable) < 0) {
        fprintf(stderr, "beamprof_read: out of memory\n");
        bp_rec_scan_free(&scan);
        free(file);
        return 7;
    }
    if (o.stats || scan.bad_frames || scan.duplicates || undecodable)
        fprintf(stderr, "beamprof_read: %zu records printed; %zu frames taken; skipped: %zu bad "
                        "frames, %zu undecodable, %zu duplicate sequence numbers\n",
                printed, scan.taken, scan.bad_frames, undecodable, scan.duplicates);
    fflush(stdout);
    bp_rec_scan_free(&scan);
    free(file);
    return ferror(stdout) ? 2 : 0;
}
