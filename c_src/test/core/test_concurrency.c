/* test_concurrency.c - the published gate (seqlock) and the ring under a
 * writer thread and reader threads: a reader never sees a torn snapshot or
 * a ring copy out of order. Also run under ThreadSanitizer (make test-tsan). */
#include <pthread.h>
#include <stdatomic.h>

#include "bp_gate.h"
#include "bp_ring.h"
#include "bp_test.h"

#define WRITES 200000
#define READERS 2

static struct bp_gate_pub pub;
static struct bp_tick slots[64];
static struct bp_ring ring;
static atomic_int done;
static atomic_int bad;

/* Snapshot k: every field is a function of k. */
static void *gate_writer(void *arg)
{
    (void)arg;
    for (int k = 1; k <= WRITES; k++)
        bp_gate_publish(&pub, k & 1, (enum bp_gate_reason)(1 + (k & 1)),
                        (double)k, (enum bp_sched_source)(k % 3), k);
    atomic_store(&done, 1);
    return NULL;
}

static void *gate_reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&done)) {
        struct bp_gate_snapshot g;
        bp_gate_read(&pub, &g);
        int k = (int)g.ratio;
        if (k == 0)
            continue;
        if (g.closed != (k & 1) || (int)g.reason != 1 + (k & 1) ||
            (int)g.source != k % 3 || g.changed_at != k)
            atomic_fetch_add(&bad, 1);
    }
    return NULL;
}

BP_TEST(gate_snapshots_never_torn)
{
    pthread_t w, r[READERS];
    bp_gate_pub_init(&pub, 0);
    atomic_store(&done, 0);
    atomic_store(&bad, 0);
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, gate_reader, NULL);
    pthread_create(&w, NULL, gate_writer, NULL);
    pthread_join(w, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    CHECK(atomic_load(&bad) == 0);
}

static void *ring_writer(void *arg)
{
    (void)arg;
    for (int k = 1; k <= WRITES; k++) {
        struct bp_tick t = {0};
        t.mono_ns = k;
        t.sched_ratio = (double)k;
        bp_ring_push(&ring, &t);
    }
    atomic_store(&done, 1);
    return NULL;
}

static void *ring_reader(void *arg)
{
    (void)arg;
    struct bp_tick out[64];
    while (!atomic_load(&done)) {
        size_t n = bp_ring_copy(&ring, out, 64);
        for (size_t i = 0; i < n; i++) {
            if (out[i].sched_ratio != (double)out[i].mono_ns ||
                (i > 0 && out[i].mono_ns != out[i - 1].mono_ns - 1))
                atomic_fetch_add(&bad, 1);
        }
    }
    return NULL;
}

BP_TEST(ring_copies_consistent)
{
    pthread_t w, r[READERS];
    CHECK(bp_ring_init(&ring, slots, 64) == 0);
    atomic_store(&done, 0);
    atomic_store(&bad, 0);
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, ring_reader, NULL);
    pthread_create(&w, NULL, ring_writer, NULL);
    pthread_join(w, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    CHECK(atomic_load(&bad) == 0);
    bp_ring_destroy(&ring);
}

const struct bp_test_case bp_concurrency_tests[] = {
    {"concurrency: gate snapshots never torn", gate_snapshots_never_torn},
    {"concurrency: ring copies consistent", ring_copies_consistent},
    {NULL, NULL},
};
