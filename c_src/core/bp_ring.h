/* bp_ring.h - fixed-size ring of sampler tick records.
 *
 * The storage is the caller's, given once at init; pushing never allocates.
 * One writer (the sampler thread) and any number of readers (the history/0
 * NIF). The ring's own mutex is held only for a record copy or a memcpy of
 * the whole ring; it is a leaf lock: nothing else is locked while it is held.
 */
#ifndef BP_RING_H
#define BP_RING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct bp_tick {
    int64_t mono_ns;      /* enif_monotonic_time(ERL_NIF_NSEC) at the tick */
    double sched_ratio;   /* scheduler figure the gate used */
    int sched_source;     /* enum bp_sched_source */
    int gate_closed;      /* gate state after the tick */
    double os_cpu_ratio;  /* OS CPU of the normal scheduler threads */
    double demand_ratio;  /* their CPU + run-queue wait over wall time */
    uint64_t mem_used;    /* bytes */
    uint64_t mem_limit;   /* bytes */
    double mem_ratio;
};

struct bp_ring {
    pthread_mutex_t lock;
    struct bp_tick *slots;
    size_t capacity;
    size_t next;  /* where the next push goes */
    size_t count; /* valid records, <= capacity */
};

/* Uses `slots` (capacity records, owned by the caller and outliving the
 * ring). Returns 0, or -1 if the mutex cannot be made. */
int bp_ring_init(struct bp_ring *r, struct bp_tick *slots, size_t capacity);

/* Destroys the mutex; the slots stay the caller's. */
void bp_ring_destroy(struct bp_ring *r);

/* Appends a record, overwriting the oldest when full. Locks. */
void bp_ring_push(struct bp_ring *r, const struct bp_tick *t);

/* Copies up to max records into out, newest first. Returns how many.
 * Locks only for the memcpy. */
size_t bp_ring_copy(struct bp_ring *r, struct bp_tick *out, size_t max);

#endif
