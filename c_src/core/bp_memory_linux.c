/* bp_memory_linux.c - /proc and cgroupfs access for bp_memory. */
#include "bp_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads up to size-1 bytes of an open /proc file from offset 0 and
 * terminates them. Returns the length or -1. */
static ssize_t bp_pread_all(int fd, char *buf, size_t size)
{
    ssize_t n;
    do {
        n = pread(fd, buf, size - 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/* Opens, reads and closes a small file. Returns the length or -1. */
static ssize_t bp_read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = bp_pread_all(fd, buf, size);
    close(fd);
    return n;
}

/* Reads one limit file. Returns 1 with *bytes for a number, 0 for "max",
 * -1 if missing or malformed. */
static int bp_read_limit(const char *path, uint64_t *bytes)
{
    char buf[64];
    ssize_t n = bp_read_file(path, buf, sizeof buf);
    if (n <= 0)
        return -1;
    return bp_memory_parse_limit(buf, (size_t)n, bytes);
}

/* Tries <root><path>/<file>, then <root>/<file>. */
static int bp_read_limit_at(const char *root, const char *path, const char *file,
                            uint64_t *bytes)
{
    char full[BP_CGROUP_PATH_MAX + 64];
    int r = -1;
    if (path[0] != '\0' && strcmp(path, "/") != 0) {
        snprintf(full, sizeof full, "%s%s/%s", root, path, file);
        r = bp_read_limit(full, bytes);
    }
    if (r < 0) {
        snprintf(full, sizeof full, "%s/%s", root, file);
        r = bp_read_limit(full, bytes);
    }
    return r;
}

/* Reads the cgroup limit now: v1 when the memory controller is bound to a
 * v1 hierarchy (it then cannot be on v2), else v2. */
static struct bp_cgroup_limit bp_cgroup_read(void)
{
    struct bp_cgroup_limit cg = {0, BP_LIMIT_MACHINE};
    char buf[4096];
    struct bp_cgroup_paths paths;
    ssize_t n = bp_read_file("/proc/self/cgroup", buf, sizeof buf);
    if (n <= 0 || bp_memory_parse_cgroup(buf, (size_t)n, &paths) != 0)
        return cg;
    uint64_t bytes = 0;
    if (paths.has_v1) {
        if (bp_read_limit_at("/sys/fs/cgroup/memory", paths.v1,
                             "memory.limit_in_bytes", &bytes) == 1) {
            cg.bytes = bytes;
            cg.source = BP_LIMIT_CGROUP_V1;
        }
    } else if (paths.has_v2) {
        if (bp_read_limit_at("/sys/fs/cgroup", paths.v2, "memory.max", &bytes) == 1) {
            cg.bytes = bytes;
            cg.source = BP_LIMIT_CGROUP_V2;
        }
    }
    return cg;
}

int bp_memory_open(struct bp_memory *m)
{
    long ps = sysconf(_SC_PAGESIZE);
    m->page_size = ps > 0 ? (uint64_t)ps : 4096;
    m->mem_total = 0;
    m->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    m->meminfo_fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (m->statm_fd < 0 || m->meminfo_fd < 0)
        goto fail;
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        goto fail;
    m->cgroup = bp_cgroup_read();
    return 0;
fail:
    if (m->statm_fd >= 0)
        close(m->statm_fd);
    if (m->meminfo_fd >= 0)
        close(m->meminfo_fd);
    m->statm_fd = m->meminfo_fd = -1;
    return -1;
}

void bp_memory_close(struct bp_memory *m)
{
    close(m->statm_fd);
    close(m->meminfo_fd);
    m->statm_fd = m->meminfo_fd = -1;
    pthread_mutex_destroy(&m->lock);
}

void bp_memory_refresh_cgroup(struct bp_memory *m)
{
    struct bp_cgroup_limit cg = bp_cgroup_read(); /* file reads outside the lock */
    pthread_mutex_lock(&m->lock);
    m->cgroup = cg;
    pthread_mutex_unlock(&m->lock);
}

int bp_memory_read(struct bp_memory *m, uint64_t option_limit, int machine,
                   struct bp_memory_reading *out)
{
    char statm[128];
    char meminfo[1024]; /* MemTotal, MemFree, MemAvailable are the first lines */
    uint64_t pages;
    ssize_t nm = 0;
    pthread_mutex_lock(&m->lock);
    struct bp_cgroup_limit cg = m->cgroup;
    /* the machine's figures when they are the limit (bp_memory_decide) */
    int need_meminfo = machine ||
                       !(option_limit > 0 || bp_memory_cgroup_applies(&cg, m->mem_total));
    ssize_t ns = bp_pread_all(m->statm_fd, statm, sizeof statm);
    if (need_meminfo) {
        nm = bp_pread_all(m->meminfo_fd, meminfo, sizeof meminfo);
        if (nm > 0 && bp_memory_parse_meminfo(meminfo, (size_t)nm, &out->mem_total,
                                              &out->mem_available) == 0)
            m->mem_total = out->mem_total;
        else
            nm = -1;
    } else {
        out->mem_total = m->mem_total;
    }
    pthread_mutex_unlock(&m->lock);
    if (ns <= 0 || nm < 0 || bp_memory_parse_statm(statm, (size_t)ns, &pages) != 0)
        return -1;
    out->rss = pages * m->page_size;
    bp_memory_decide(option_limit, &cg, out);
    return 0;
}
