/* bp_threads_self.h - the calling thread's name and CPU clock. Compiled
 * into both libraries (each keeps its own hidden copy). */
#ifndef BP_THREADS_SELF_H
#define BP_THREADS_SELF_H

#include <stdint.h>

/* Names the calling thread (at most 15 characters are kept). */
void bp_threads_name_self(const char *name);

/* CPU time of the calling thread in ns (0 if it cannot be read). Any
 * thread; not for signal handlers (not in the async-signal-safe list). */
uint64_t bp_threads_self_cpu_ns(void);

#endif
