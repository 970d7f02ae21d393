/* bp_threads_self.c - the calling thread's name and CPU clock (Linux). */
#include "bp_threads_self.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

uint64_t bp_threads_self_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bp_threads_name_self(const char *name)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%s", name);
    (void)pthread_setname_np(pthread_self(), buf);
}
