/* bp_threads.h - the VM's scheduler threads and their CPU clocks.
 *
 * A table of the scheduler threads of this OS process (normal, dirty CPU,
 * dirty IO), discovered from the thread names in /proc/self/task/<tid>/comm
 * and kept sorted by type then index. Each thread's CPU time is read through
 * its per-thread CPU clock (one clock_gettime, no file parsing per read).
 *
 * Concurrency: a table is shared by the sampler thread and NIF callers; every
 * function taking a `struct bp_threads *` locks the table's own mutex
 * (`lock`) for its whole duration unless it says otherwise. No other lock is
 * taken while it is held.
 */
#ifndef BP_THREADS_H
#define BP_THREADS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bp_thread_kind.h"
#include "bp_threads_self.h"


struct bp_thread {
    pid_t tid;
    enum bp_thread_type type;
    uint32_t index;      /* N of "N_scheduler" or "erts_sched_N", >= 1 */
    int64_t sampler_prev; /* CPU ns at the sampler's previous tick; -1 = none */
    int64_t wait_prev;    /* run-queue wait ns at that tick; -1 = none */
    int stat_fd;          /* /proc/self/task/<tid>/schedstat, normal only; -1 */
};

/* One CPU reading, as returned to callers. */
struct bp_thread_cpu {
    enum bp_thread_type type;
    uint32_t index;
    uint64_t cpu_ns;
};

struct bp_threads {
    pthread_mutex_t lock;
    size_t count;
    int need_rescan; /* set when a read failed and a thread was dropped */
    struct bp_thread t[BP_THREADS_MAX];
    struct bp_thread scratch[BP_THREADS_MAX]; /* rescan's work area */
};

/* --- pure (bp_threads.c) ------------------------------------------------ */

/* Classifies a thread name as read from comm (trailing newline allowed).
 * Returns 1 and fills *type and *index for OTP 25's "N_scheduler",
 * "N_dirty_cpu_sch..." and "N_dirty_io_sche..." (the kernel truncates names
 * to 15 characters, so a truncated tail must still be a prefix of the full
 * name) and for OTP 26+'s "erts_sched_N", "erts_dcpus_N" and "erts_dios_N";
 * returns 0 for anything else (including index 0 or leading zeros). */
int bp_threads_classify(const char *name, size_t len, enum bp_thread_type *type,
                        uint32_t *index);

/* Parses /proc/<pid>/task/<tid>/schedstat: "<run ns> <run-queue wait ns>
 * <timeslices>". Returns 0 and fills *run and *wait, or -1. */
int bp_threads_parse_schedstat(const char *buf, size_t len, uint64_t *run,
                               uint64_t *wait);

/* Sorts entries by type then index (insertion sort: tables are small and
 * nearly sorted). Does not lock. */
void bp_threads_sort(struct bp_thread *t, size_t n);

/* --- platform (bp_threads_linux.c) --------------------------------------- */

/* Initialises the table's mutex and scans. Returns 0, or -1 if the mutex
 * could not be made. The table memory is the caller's. */
int bp_threads_init(struct bp_threads *tab);

/* Destroys the mutex. No thread may use the table afterwards. */
void bp_threads_destroy(struct bp_threads *tab);

/* Rediscovers the threads, keeping sampler_prev of those still present.
 * Returns the number of scheduler threads found. Locks. */
size_t bp_threads_rescan(struct bp_threads *tab);

/* Reads the CPU time of one thread of this process. Returns 0 and sets *ns,
 * or -1 if the thread no longer exists. Thread-safe, no lock. */
int bp_threads_cpu_ns(pid_t tid, uint64_t *ns);

/* Reads every known thread's CPU time into out[0..max) in table order and
 * returns how many were written. A thread whose read fails is dropped and the
 * table rescanned once. Locks. */
size_t bp_threads_read_all(struct bp_threads *tab, struct bp_thread_cpu *out,
                           size_t max);

/* Sampler step: reads the normal scheduler threads' schedstat (CPU time and
 * time spent runnable but waiting for a CPU, in one pread of a kept-open fd;
 * the CPU clock alone when the file cannot be read), sums the deltas since
 * the previous call for those that have one, and stores the new readings.
 * *run_ns and *wait_ns get the sums, *n the number of threads that
 * contributed; only threads with index <= online contribute when online is
 * not 0 (offline schedulers sleep and would dilute the ratio), though all
 * are read. Drops vanished threads and rescans. Locks. Only the sampler
 * thread calls it. */
void bp_threads_sample_normal(struct bp_threads *tab, uint32_t online,
                              uint64_t *run_ns, uint64_t *wait_ns, uint32_t *n);

/* Number of known scheduler threads. Locks. */
size_t bp_threads_count(struct bp_threads *tab);

/* Forgets every sampler_prev (a new sampler thread starts afresh). Locks. */
void bp_threads_reset_prev(struct bp_threads *tab);

#endif
