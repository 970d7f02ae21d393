/* bp_reaper.c - frees large blocks on a thread of ours (see bp_reaper.h). */
#include "bp_reaper.h"

#include <erl_nif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "bp_threads_self.h"

#define BP_REAPER_QUEUE 64
#define BP_REAPER_NAME "beamprof_reaper" /* 15 characters: the kernel's limit */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int cond_made;
    unsigned refs;          /* under lock */
    int running;            /* under lock: the thread takes blocks */
    int stop;               /* under lock */
    ErlNifTid tid;          /* under lock */
    struct bp_block q[BP_REAPER_QUEUE]; /* under lock */
    size_t n;               /* under lock */
    _Atomic uint64_t freed;
} reaper = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *bp_reaper_main(void *arg)
{
    (void)arg;
    bp_threads_name_self(BP_REAPER_NAME);
    pthread_mutex_lock(&reaper.lock);
    for (;;) {
        while (reaper.n > 0) {
            struct bp_block b = reaper.q[--reaper.n];
            pthread_mutex_unlock(&reaper.lock);
            bp_block_free(&b);
            atomic_fetch_add(&reaper.freed, 1);
            pthread_mutex_lock(&reaper.lock);
        }
        if (reaper.stop)
            break;
        pthread_cond_wait(&reaper.cond, &reaper.lock);
    }
    pthread_mutex_unlock(&reaper.lock);
    return NULL;
}

/* Starts the thread, lock held. 0 or -1. */
static int bp_reaper_start_locked(void)
{
    if (!reaper.cond_made) {
        if (pthread_cond_init(&reaper.cond, NULL) != 0)
            return -1;
        reaper.cond_made = 1;
    }
    reaper.stop = 0;
    if (enif_thread_create(BP_REAPER_NAME, &reaper.tid, bp_reaper_main, NULL, NULL) != 0)
        return -1;
    reaper.running = 1;
    return 0;
}

int bp_reaper_ref(void)
{
    pthread_mutex_lock(&reaper.lock);
    reaper.refs++;
    int rc = reaper.running ? 0 : bp_reaper_start_locked();
    pthread_mutex_unlock(&reaper.lock);
    return rc;
}

void bp_reaper_unref(void)
{
    pthread_mutex_lock(&reaper.lock);
    if (reaper.refs > 0)
        reaper.refs--;
    int join = reaper.refs == 0 && reaper.running;
    if (join) {
        reaper.stop = 1;
        reaper.running = 0; /* no more hand-overs: callers free at once */
        pthread_cond_signal(&reaper.cond);
    }
    ErlNifTid tid = reaper.tid;
    pthread_mutex_unlock(&reaper.lock);
    if (join)
        enif_thread_join(tid, NULL); /* it frees what is queued first */
}

void bp_reaper_free(struct bp_block *b)
{
    if (b->p == NULL)
        return;
    if (b->bytes >= BP_REAPER_MIN_BYTES) {
        pthread_mutex_lock(&reaper.lock);
        int taken = reaper.running && reaper.n < BP_REAPER_QUEUE;
        if (taken) {
            reaper.q[reaper.n++] = *b;
            pthread_cond_signal(&reaper.cond);
        }
        pthread_mutex_unlock(&reaper.lock);
        if (taken) {
            memset(b, 0, sizeof *b);
            return;
        }
    }
    bp_block_free(b);
}

uint64_t bp_reaper_freed(void)
{
    return atomic_load(&reaper.freed);
}
