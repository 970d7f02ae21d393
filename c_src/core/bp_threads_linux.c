/* bp_threads_linux.c - Linux side of the scheduler thread table:
 * /proc/self/task/<tid>/comm for discovery, per-thread CPU clocks for
 * readings, /proc/self/task/<tid>/schedstat (kept open) for the sampler's
 * run-queue wait. (Naming our own thread: shared/bp_threads_self.c.) */
#include "bp_threads.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The kernel's per-thread CPU clock id for a tid:
 * CPUCLOCK_SCHED (2) | CPUCLOCK_PERTHREAD_MASK (4), pid in the upper bits as
 * its complement. Computed unsigned to avoid shifting a negative number. */
static clockid_t bp_thread_clock(pid_t tid)
{
    unsigned int id = ((~(unsigned int)tid) << 3) | 6u;
    return (clockid_t)id;
}

int bp_threads_cpu_ns(pid_t tid, uint64_t *ns)
{
    struct timespec ts;
    if (clock_gettime(bp_thread_clock(tid), &ts) != 0)
        return -1;
    *ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return 0;
}

/* Reads one task's comm into buf; returns its length or -1. */
static ssize_t bp_read_comm(pid_t tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do {
        n = read(fd, buf, size);
    } while (n < 0 && errno == EINTR);
    close(fd);
    return n;
}

static const struct bp_thread *bp_find(const struct bp_thread *t, size_t n, pid_t tid)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].tid == tid)
            return &t[i];
    return NULL;
}

static int bp_open_schedstat(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    return open(path, O_RDONLY | O_CLOEXEC);
}

static void bp_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Carries an entry's readings and fd over from the old table, or opens the
 * fd for a new normal scheduler thread. */
static void bp_adopt_or_open(struct bp_thread *th, struct bp_thread *old, size_t n)
{
    const struct bp_thread *was = bp_find(old, n, th->tid);
    th->sampler_prev = was != NULL ? was->sampler_prev : -1;
    th->wait_prev = was != NULL ? was->wait_prev : -1;
    if (was != NULL) {
        th->stat_fd = was->stat_fd;
        old[was - old].stat_fd = -1; /* moved */
    } else {
        th->stat_fd = th->type == BP_THREAD_NORMAL ? bp_open_schedstat(th->tid) : -1;
    }
}

/* Rescans with the table lock held. */
static size_t bp_threads_rescan_locked(struct bp_threads *tab)
{
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL)
        return tab->count; /* keep what we have */
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && n < BP_THREADS_MAX) {
        char *end;
        long tid = strtol(de->d_name, &end, 10);
        if (tid <= 0 || *end != '\0')
            continue;
        char comm[32];
        struct bp_thread th;
        th.tid = (pid_t)tid;
        ssize_t len = bp_read_comm(th.tid, comm, sizeof comm);
        if (len <= 0 || !bp_threads_classify(comm, (size_t)len, &th.type, &th.index))
            continue;
        bp_adopt_or_open(&th, tab->t, tab->count);
        tab->scratch[n++] = th;
    }
    closedir(dir);
    for (size_t i = 0; i < tab->count; i++) /* threads that are gone */
        bp_close_fd(&tab->t[i].stat_fd);
    bp_threads_sort(tab->scratch, n);
    memcpy(tab->t, tab->scratch, n * sizeof tab->t[0]);
    tab->count = n;
    tab->need_rescan = 0;
    return n;
}

int bp_threads_init(struct bp_threads *tab)
{
    tab->count = 0;
    tab->need_rescan = 0;
    if (pthread_mutex_init(&tab->lock, NULL) != 0)
        return -1;
    bp_threads_rescan(tab);
    return 0;
}

void bp_threads_destroy(struct bp_threads *tab)
{
    for (size_t i = 0; i < tab->count; i++)
        bp_close_fd(&tab->t[i].stat_fd);
    pthread_mutex_destroy(&tab->lock);
}

size_t bp_threads_rescan(struct bp_threads *tab)
{
    pthread_mutex_lock(&tab->lock);
    size_t n = bp_threads_rescan_locked(tab);
    pthread_mutex_unlock(&tab->lock);
    return n;
}

/* Drops entry i (order kept). Lock held. */
static void bp_threads_drop(struct bp_threads *tab, size_t i)
{
    bp_close_fd(&tab->t[i].stat_fd);
    memmove(&tab->t[i], &tab->t[i + 1], (tab->count - i - 1) * sizeof tab->t[0]);
    tab->count--;
    tab->need_rescan = 1;
}

/* Reads every entry into out; drops failures. Lock held. */
static size_t bp_threads_read_locked(struct bp_threads *tab,
                                     struct bp_thread_cpu *out, size_t max)
{
    size_t w = 0, i = 0;
    while (i < tab->count) {
        uint64_t ns;
        if (bp_threads_cpu_ns(tab->t[i].tid, &ns) != 0) {
            bp_threads_drop(tab, i);
            continue;
        }
        if (w < max) {
            out[w].type = tab->t[i].type;
            out[w].index = tab->t[i].index;
            out[w].cpu_ns = ns;
            w++;
        }
        i++;
    }
    return w;
}

size_t bp_threads_read_all(struct bp_threads *tab, struct bp_thread_cpu *out,
                           size_t max)
{
    pthread_mutex_lock(&tab->lock);
    size_t w = bp_threads_read_locked(tab, out, max);
    if (tab->need_rescan) {
        bp_threads_rescan_locked(tab);
        w = bp_threads_read_locked(tab, out, max);
    }
    pthread_mutex_unlock(&tab->lock);
    return w;
}

/* Reads one normal thread's CPU and run-queue wait: schedstat through its
 * kept-open fd (one pread, a line of three numbers), else the CPU clock with
 * no wait. Returns -1 if the thread is gone. */
static int bp_read_sched(struct bp_thread *th, uint64_t *run, uint64_t *wait)
{
    if (th->stat_fd >= 0) {
        char buf[96];
        ssize_t len = pread(th->stat_fd, buf, sizeof buf - 1, 0);
        if (len > 0 && bp_threads_parse_schedstat(buf, (size_t)len, run, wait) == 0)
            return 0;
        if (len < 0 && errno == ESRCH)
            return -1;
    }
    *wait = 0;
    return bp_threads_cpu_ns(th->tid, run);
}

void bp_threads_sample_normal(struct bp_threads *tab, uint32_t online,
                              uint64_t *run_ns, uint64_t *wait_ns, uint32_t *n)
{
    uint64_t run_sum = 0, wait_sum = 0;
    uint32_t k = 0;
    pthread_mutex_lock(&tab->lock);
    size_t i = 0;
    while (i < tab->count && tab->t[i].type == BP_THREAD_NORMAL) {
        struct bp_thread *th = &tab->t[i];
        uint64_t run, wait;
        if (bp_read_sched(th, &run, &wait) != 0) {
            bp_threads_drop(tab, i);
            continue;
        }
        int counted = online == 0 || th->index <= online;
        if (counted && th->sampler_prev >= 0 && run >= (uint64_t)th->sampler_prev) {
            run_sum += run - (uint64_t)th->sampler_prev;
            if (th->wait_prev >= 0 && wait >= (uint64_t)th->wait_prev)
                wait_sum += wait - (uint64_t)th->wait_prev;
            k++;
        }
        th->sampler_prev = (int64_t)run;
        th->wait_prev = (int64_t)wait;
        i++;
    }
    if (tab->need_rescan)
        bp_threads_rescan_locked(tab);
    pthread_mutex_unlock(&tab->lock);
    *run_ns = run_sum;
    *wait_ns = wait_sum;
    *n = k;
}

size_t bp_threads_count(struct bp_threads *tab)
{
    pthread_mutex_lock(&tab->lock);
    size_t n = tab->count;
    pthread_mutex_unlock(&tab->lock);
    return n;
}

void bp_threads_reset_prev(struct bp_threads *tab)
{
    pthread_mutex_lock(&tab->lock);
    for (size_t i = 0; i < tab->count; i++) {
        tab->t[i].sampler_prev = -1;
        tab->t[i].wait_prev = -1;
    }
    pthread_mutex_unlock(&tab->lock);
}
