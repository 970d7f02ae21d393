/* test_ring.c - ring wrap-around and copy order. */
#include "bp_ring.h"
#include "bp_test.h"

static struct bp_tick tick(int64_t n)
{
    struct bp_tick t = {0};
    t.mono_ns = n;
    t.sched_ratio = (double)n / 100.0;
    return t;
}

BP_TEST(empty_ring)
{
    struct bp_tick slots[4], out[4];
    struct bp_ring r;
    CHECK(bp_ring_init(&r, slots, 4) == 0);
    CHECK(bp_ring_copy(&r, out, 4) == 0);
    bp_ring_destroy(&r);
}

BP_TEST(partial_newest_first)
{
    struct bp_tick slots[4], out[4];
    struct bp_ring r;
    bp_ring_init(&r, slots, 4);
    for (int i = 1; i <= 3; i++) {
        struct bp_tick t = tick(i);
        bp_ring_push(&r, &t);
    }
    CHECK(bp_ring_copy(&r, out, 4) == 3);
    CHECK(out[0].mono_ns == 3 && out[1].mono_ns == 2 && out[2].mono_ns == 1);
    bp_ring_destroy(&r);
}

BP_TEST(wrap_around)
{
    struct bp_tick slots[4], out[8];
    struct bp_ring r;
    bp_ring_init(&r, slots, 4);
    for (int i = 1; i <= 10; i++) {
        struct bp_tick t = tick(i);
        bp_ring_push(&r, &t);
    }
    CHECK(bp_ring_copy(&r, out, 8) == 4);
    for (int i = 0; i < 4; i++)
        CHECK(out[i].mono_ns == 10 - i);
    CHECK_NEAR(out[0].sched_ratio, 0.10);
    /* a shorter copy takes the newest */
    CHECK(bp_ring_copy(&r, out, 3) == 3);
    CHECK(out[0].mono_ns == 10 && out[2].mono_ns == 8);
    bp_ring_destroy(&r);
}

BP_TEST(exactly_full)
{
    struct bp_tick slots[3], out[3];
    struct bp_ring r;
    bp_ring_init(&r, slots, 3);
    for (int i = 1; i <= 3; i++) {
        struct bp_tick t = tick(i);
        bp_ring_push(&r, &t);
    }
    CHECK(bp_ring_copy(&r, out, 3) == 3);
    CHECK(out[0].mono_ns == 3 && out[2].mono_ns == 1);
    bp_ring_destroy(&r);
}

const struct bp_test_case bp_ring_tests[] = {
    {"ring: empty", empty_ring},
    {"ring: partial, newest first", partial_newest_first},
    {"ring: wrap-around", wrap_around},
    {"ring: exactly full", exactly_full},
    {NULL, NULL},
};
