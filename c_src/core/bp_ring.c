/* bp_ring.c - fixed-size ring of tick records. */
#include "bp_ring.h"

#include <string.h>

int bp_ring_init(struct bp_ring *r, struct bp_tick *slots, size_t capacity)
{
    r->slots = slots;
    r->capacity = capacity;
    r->next = 0;
    r->count = 0;
    return pthread_mutex_init(&r->lock, NULL) == 0 ? 0 : -1;
}

void bp_ring_destroy(struct bp_ring *r)
{
    pthread_mutex_destroy(&r->lock);
}

void bp_ring_push(struct bp_ring *r, const struct bp_tick *t)
{
    if (r->capacity == 0)
        return;
    pthread_mutex_lock(&r->lock);
    r->slots[r->next] = *t;
    r->next = (r->next + 1) % r->capacity;
    if (r->count < r->capacity)
        r->count++;
    pthread_mutex_unlock(&r->lock);
}

/* Copies oldest-first in at most two memcpys under the lock, then reverses
 * outside it. */
size_t bp_ring_copy(struct bp_ring *r, struct bp_tick *out, size_t max)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->count < max ? r->count : max;
    /* the n newest records start at next - n (mod capacity) */
    size_t start = (r->next + r->capacity - n) % (r->capacity ? r->capacity : 1);
    size_t first = n;
    if (start + n > r->capacity)
        first = r->capacity - start;
    if (first > 0)
        memcpy(out, &r->slots[start], first * sizeof *out);
    if (n > first)
        memcpy(out + first, r->slots, (n - first) * sizeof *out);
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < n / 2; i++) {
        struct bp_tick tmp = out[i];
        out[i] = out[n - 1 - i];
        out[n - 1 - i] = tmp;
    }
    return n;
}
