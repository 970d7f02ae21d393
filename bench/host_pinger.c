/*
 * host_pinger CPU: the machine's own stalls (bench/run.sh host_stalls).
 *
 * A thread pinned to CPU, at real-time priority when it may have it, wakes
 * every millisecond on an absolute CLOCK_MONOTONIC deadline and notes every
 * gap between two wakes over 1.5 ms. A real-time thread that wakes late was
 * not kept waiting by anything of the guest's at normal priority (the VM
 * included): the CPU was taken from the machine (the hypervisor) or held by
 * the kernel. On the 2-core machines here, with nothing else running, such a
 * thread sees gaps of 5-9 ms, mostly on one CPU at a time.
 *
 * Protocol (a port): prints "rt 1" (or "rt 0" when real-time priority was
 * refused) once running; on a line or end of file on stdin, prints each gap
 * as "gap START_NS END_NS" (CLOCK_MONOTONIC), then "end WAKES", and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define GAP_NS 1500000LL
#define MAX_GAPS 65536

static long long gaps[MAX_GAPS][2];

static long long ns_of(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static int stdin_ready(void)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: host_pinger CPU\n");
        return 2;
    }
    char *end;
    long cpu = strtol(argv[1], &end, 10);
    if (*end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE) {
        fprintf(stderr, "host_pinger: bad CPU %s\n", argv[1]);
        return 2;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("host_pinger: sched_setaffinity");
        return 1;
    }
    struct sched_param prio = {.sched_priority = 10};
    int rt = sched_setscheduler(0, SCHED_FIFO, &prio) == 0;
    printf("rt %d\n", rt);
    fflush(stdout);

    struct timespec next, now;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long long last = ns_of(&next), wakes = 0;
    size_t n = 0;
    while (!stdin_ready()) {
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long t = ns_of(&now);
        if (t - last > GAP_NS && n < MAX_GAPS) {
            gaps[n][0] = last;
            gaps[n][1] = t;
            n++;
        }
        last = t;
        wakes++;
        if (t > ns_of(&next) + 1000000) /* fell behind: start again from now */
            next = now;
    }
    for (size_t i = 0; i < n; i++)
        printf("gap %lld %lld\n", gaps[i][0], gaps[i][1]);
    printf("end %lld\n", wakes);
    return 0;
}
