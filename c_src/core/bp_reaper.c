/* bp_reaper.c - the thread that frees what destructors hand it (see bp_reaper.h). */
#include "bp_reaper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bp_threads_self.h"

#define BP_REAPER_THREAD_NAME "beamprof_reaper"

struct bp_reaper_job {
    void (*fn)(void *);
    void *arg;
    size_t bytes;
    struct bp_reaper_job *next;
};

static pthread_mutex_t bp_reaper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bp_reaper_cond = PTHREAD_COND_INITIALIZER;
/* under bp_reaper_lock */
static struct bp_reaper_job *bp_reaper_head, *bp_reaper_tail;
static int bp_reaper_opens, bp_reaper_stopping, bp_reaper_have_thread;
static pthread_t bp_reaper_tid;

static _Atomic uint64_t bp_reaper_given, bp_reaper_done, bp_reaper_bytes_given,
    bp_reaper_bytes_done, bp_reaper_inline;

/* Runs jobs until told to stop with nothing queued. */
static void *bp_reaper_main(void *unused)
{
    (void)unused;
    bp_threads_name_self(BP_REAPER_THREAD_NAME);
    pthread_mutex_lock(&bp_reaper_lock);
    for (;;) {
        struct bp_reaper_job *j = bp_reaper_head;
        if (j == NULL) {
            if (bp_reaper_stopping)
                break;
            pthread_cond_wait(&bp_reaper_cond, &bp_reaper_lock);
            continue;
        }
        bp_reaper_head = j->next;
        if (bp_reaper_head == NULL)
            bp_reaper_tail = NULL;
        pthread_mutex_unlock(&bp_reaper_lock);
        j->fn(j->arg);
        atomic_fetch_add(&bp_reaper_bytes_done, j->bytes);
        atomic_fetch_add(&bp_reaper_done, 1);
        free(j);
        pthread_mutex_lock(&bp_reaper_lock);
    }
    pthread_mutex_unlock(&bp_reaper_lock);
    return NULL;
}

void bp_reaper_open(void)
{
    pthread_mutex_lock(&bp_reaper_lock);
    bp_reaper_opens++;
    pthread_mutex_unlock(&bp_reaper_lock);
}

void bp_reaper_close(void)
{
    pthread_mutex_lock(&bp_reaper_lock);
    int last = --bp_reaper_opens <= 0, join = last && bp_reaper_have_thread;
    if (last) {
        bp_reaper_opens = 0;
        bp_reaper_stopping = 1;
        pthread_cond_signal(&bp_reaper_cond);
    }
    pthread_mutex_unlock(&bp_reaper_lock);
    if (join)
        pthread_join(bp_reaper_tid, NULL);
    if (last) { /* a later load of this image starts afresh */
        pthread_mutex_lock(&bp_reaper_lock);
        bp_reaper_have_thread = 0;
        bp_reaper_stopping = 0;
        pthread_mutex_unlock(&bp_reaper_lock);
    }
}

/* Starts the thread if there is none (lock held). 0 when there is one. */
static int bp_reaper_ensure_thread(void)
{
    if (bp_reaper_have_thread)
        return 0;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    (void)pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&bp_reaper_tid, &attr, bp_reaper_main, NULL);
    pthread_attr_destroy(&attr);
    bp_reaper_have_thread = rc == 0;
    return rc == 0 ? 0 : -1;
}

int bp_reaper_give(void (*fn)(void *), void *arg, size_t bytes)
{
    struct bp_reaper_job *j = malloc(sizeof *j);
    if (j == NULL)
        return -1;
    j->fn = fn;
    j->arg = arg;
    j->bytes = bytes;
    j->next = NULL;
    pthread_mutex_lock(&bp_reaper_lock);
    int ok = bp_reaper_opens > 0 && !bp_reaper_stopping && bp_reaper_ensure_thread() == 0;
    if (ok) {
        if (bp_reaper_tail != NULL)
            bp_reaper_tail->next = j;
        else
            bp_reaper_head = j;
        bp_reaper_tail = j;
        atomic_fetch_add(&bp_reaper_given, 1);
        atomic_fetch_add(&bp_reaper_bytes_given, bytes);
        pthread_cond_signal(&bp_reaper_cond);
    }
    pthread_mutex_unlock(&bp_reaper_lock);
    if (!ok)
        free(j);
    return ok ? 0 : -1;
}

void bp_reaper_count_inline(void)
{
    atomic_fetch_add(&bp_reaper_inline, 1);
}

void bp_reaper_stats(struct bp_reaper_stats *s)
{
    s->given = atomic_load(&bp_reaper_given);
    s->done = atomic_load(&bp_reaper_done);
    s->bytes_given = atomic_load(&bp_reaper_bytes_given);
    s->bytes_done = atomic_load(&bp_reaper_bytes_done);
    s->inline_frees = atomic_load(&bp_reaper_inline);
    pthread_mutex_lock(&bp_reaper_lock);
    s->running = bp_reaper_have_thread;
    pthread_mutex_unlock(&bp_reaper_lock);
}
