/* test_scan.c - top-K, histogram, id buffer and window table against
 * straightforward models (sorting, exact percentiles). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bp_scan.h"
#include "bp_test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int desc_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x > y ? -1 : (x < y);
}

static int asc_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

BP_TEST(topk_bad_k)
{
    struct bp_topk t;
    CHECK(bp_topk_init(&t, 0) == -1);
    CHECK(bp_topk_init(&t, BP_TOPK_MAX + 1) == -1);
}

/* The kept values are the K largest of the input; each entry's id is the
 * one offered with its value (id = offer index, value derived from it). */
BP_TEST(topk_matches_sort)
{
    enum { N = 5000 };
    static int64_t values[N], sorted[N];
    static struct bp_topk_entry out[BP_TOPK_MAX];
    for (uint32_t k = 1; k <= 64; k = k * 2 + 1) {
        struct bp_topk t;
        CHECK(bp_topk_init(&t, k) == 0);
        for (int i = 0; i < N; i++) {
            values[i] = (int64_t)(rnd() % 1000) - 300; /* many ties */
            uint64_t ev;
            int r = bp_topk_offer(&t, values[i], (uint64_t)i, &ev);
            CHECK(r >= 0 && r <= 2);
            if (t.n == k)
                CHECK(bp_topk_floor(&t) == t.heap[0].value);
        }
        memcpy(sorted, values, sizeof values);
        qsort(sorted, N, sizeof sorted[0], desc_i64);
        uint32_t n = bp_topk_sorted(&t, out);
        CHECK(n == k);
        for (uint32_t i = 0; i < n; i++) {
            CHECK(out[i].value == sorted[i]);
            CHECK(values[out[i].id] == out[i].value);
            if (i > 0 && out[i].value == out[i - 1].value)
                CHECK(out[i].id > out[i - 1].id); /* ties: earlier first */
        }
        bp_topk_destroy(&t);
    }
}

BP_TEST(topk_floor_and_eviction)
{
    struct bp_topk t;
    uint64_t ev = 0;
    CHECK(bp_topk_init(&t, 2) == 0);
    CHECK(bp_topk_floor(&t) == INT64_MIN);
    CHECK(bp_topk_offer(&t, 5, 1, &ev) == 1);
    CHECK(bp_topk_offer(&t, 7, 2, &ev) == 1);
    CHECK(bp_topk_floor(&t) == 5);
    CHECK(bp_topk_offer(&t, 5, 3, &ev) == 0); /* equal: refused */
    CHECK(bp_topk_offer(&t, 9, 4, &ev) == 2 && ev == 1);
    CHECK(bp_topk_floor(&t) == 7);
    CHECK(bp_topk_offer(&t, INT64_MIN, 5, &ev) == 0);
    bp_topk_destroy(&t);
}

BP_TEST(hist_index_bounds)
{
    CHECK(bp_hist_index(0) == 0);
    CHECK(bp_hist_index(63) == 63);
    CHECK(bp_hist_index(UINT64_MAX) == BP_HIST_BUCKETS - 1);
    CHECK(bp_hist_upper(BP_HIST_BUCKETS - 1) == UINT64_MAX);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = rnd() >> (rnd() % 64);
        uint32_t idx = bp_hist_index(v);
        CHECK(idx < BP_HIST_BUCKETS);
        CHECK(bp_hist_lower(idx) <= v && v <= bp_hist_upper(idx));
        /* the bucket spans at most 1/32 of its lower bound */
        CHECK(bp_hist_upper(idx) - bp_hist_lower(idx) <= bp_hist_lower(idx) / 32);
    }
    for (uint32_t i = 1; i < BP_HIST_BUCKETS; i++)
        CHECK(bp_hist_lower(i) == bp_hist_upper(i - 1) + 1);
}

BP_TEST(hist_percentiles_match_exact)
{
    enum { N = 20000 };
    static uint64_t values[N];
    struct bp_hist *h = malloc(sizeof *h);
    bp_hist_init(h);
    CHECK(bp_hist_percentile(h, 50.0) == 0);
    for (int i = 0; i < N; i++) {
        values[i] = (rnd() % 1000000) >> (rnd() % 20);
        bp_hist_add(h, values[i]);
    }
    qsort(values, N, sizeof values[0], asc_u64);
    CHECK(h->count == N && h->min == values[0] && h->max == values[N - 1]);
    const double ps[] = {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double exact = ps[i] / 100.0 * N;
        size_t rank = (size_t)exact;
        if ((double)rank < exact)
            rank++;
        if (rank < 1)
            rank = 1;
        uint64_t want = values[rank - 1], got = bp_hist_percentile(h, ps[i]);
        CHECK(bp_hist_index(got) == bp_hist_index(want) && got >= want);
    }
    CHECK(bp_hist_percentile(h, 100.0) == values[N - 1]);
    free(h);
}

BP_TEST(idbuf_take_in_order)
{
    struct bp_idbuf b;
    const uint64_t *p;
    bp_idbuf_init(&b);
    CHECK(bp_idbuf_take(&b, 10, &p) == 0);
    for (uint64_t i = 0; i < 5000; i++) {
        CHECK(bp_idbuf_reserve(&b, 1) == 0);
        bp_idbuf_push(&b, i);
    }
    CHECK(bp_idbuf_reserve(&b, BP_IDBUF_MAX) == -1);
    uint64_t expect = 0;
    size_t n;
    while ((n = bp_idbuf_take(&b, 777, &p)) > 0)
        for (size_t i = 0; i < n; i++)
            CHECK(p[i] == expect++);
    CHECK(expect == 5000);
    bp_idbuf_destroy(&b);
}

/* Grown in the table walk's way (reserve, write at spare, added) to 1M ids:
 * every doubling to 8 MiB keeps what was written (the pages move). */
BP_TEST(idbuf_grows_in_blocks)
{
    struct bp_idbuf b;
    const uint64_t *p;
    bp_idbuf_init(&b);
    uint64_t next = 0;
    for (int block = 0; block < 128; block++) {
        CHECK(bp_idbuf_reserve(&b, 8192) == 0);
        uint64_t *at = bp_idbuf_spare(&b);
        for (size_t i = 0; i < 8192; i++)
            at[i] = next++ * 2654435761u;
        bp_idbuf_added(&b, 8192);
    }
    CHECK(b.capacity == 1u << 20);
    uint64_t expect = 0;
    size_t n;
    while ((n = bp_idbuf_take(&b, 100000, &p)) > 0)
        for (size_t i = 0; i < n; i++)
            CHECK(p[i] == expect++ * 2654435761u);
    CHECK(expect == next);
    bp_idbuf_destroy(&b);
    CHECK(b.ids == NULL && b.capacity == 0);
}

static int eq_low(uint64_t a, uint64_t b)
{
    return (a & 0xffffffffu) == (b & 0xffffffffu);
}

/* Three generations over ids that come and go: deltas against the previous
 * generation only, new ids get their whole value, flags carry one step. */
BP_TEST(window_generations)
{
    struct bp_window w;
    uint64_t d;
    unsigned pf;
    int ins;
    bp_window_init(&w, NULL);
    CHECK(bp_window_update(&w, 1, 1, 10, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == -1);
    CHECK(bp_window_begin(&w, 3) == 1);
    CHECK(bp_window_update(&w, 1, 7, 100, 1, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 0 && d == 0 && ins);
    CHECK(bp_window_update(&w, 2, 7, 50, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 0 && d == 0);
    CHECK(bp_window_begin(&w, 3) == 0);
    CHECK(bp_window_update(&w, 1, 7, 130, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 1 && d == 30 && pf == 1);
    CHECK(bp_window_update(&w, 3, 9, 40, 2, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 0 && d == 40 && pf == 0);
    /* id 2 is gone this generation */
    CHECK(bp_window_begin(&w, 3) == 1);
    CHECK(bp_window_update(&w, 2, 7, 60, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 0 && d == 60);
    CHECK(bp_window_update(&w, 3, 9, 45, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 1 && d == 5 && pf == 2);
    CHECK(bp_window_update(&w, 1, 7, 10, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 1 && d == 10); /* went down */
    /* updating twice in a generation keeps one slot */
    CHECK(bp_window_update(&w, 3, 9, 47, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 1 && d == 7 && !ins);
    CHECK(w.t[1].used == 3);
    bp_window_destroy(&w);
}

/* The aux word is kept beside the value and read back from the previous
 * generation only; an update without one forgets it. */
BP_TEST(window_aux_previous)
{
    struct bp_window w;
    uint64_t d, v, aux;
    unsigned pf;
    int ins;
    bp_window_init(&w, NULL);
    CHECK(bp_window_previous(&w, 1, 7, &v, &aux) == 0);
    CHECK(bp_window_begin(&w, 3) == 1);
    CHECK(bp_window_update(&w, 1, 7, 100, 0, 4242, &d, &pf, &ins) == 0);
    CHECK(bp_window_update(&w, 2, 7, 50, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 0);
    CHECK(bp_window_previous(&w, 1, 7, &v, &aux) == 0); /* not in a previous generation */
    CHECK(bp_window_begin(&w, 3) == 0);
    CHECK(bp_window_previous(&w, 1, 7, &v, &aux) == 1 && v == 100 && aux == 4242);
    CHECK(bp_window_previous(&w, 2, 7, &v, &aux) == 1 && v == 50 && aux == BP_WINDOW_NO_AUX);
    CHECK(bp_window_previous(&w, 3, 7, &v, &aux) == 0);
    CHECK(bp_window_update(&w, 1, 7, 100, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 1 && d == 0);
    CHECK(bp_window_update(&w, 2, 7, 60, 0, 7, &d, &pf, &ins) == 1 && d == 10);
    CHECK(bp_window_begin(&w, 3) == 1);
    CHECK(bp_window_previous(&w, 1, 7, &v, &aux) == 1 && aux == BP_WINDOW_NO_AUX);
    CHECK(bp_window_previous(&w, 2, 7, &v, &aux) == 1 && v == 60 && aux == 7);
    /* two generations back is gone */
    CHECK(bp_window_begin(&w, 3) == 0);
    CHECK(bp_window_previous(&w, 2, 7, &v, &aux) == 0);
    bp_window_destroy(&w);
}

BP_TEST(window_custom_equality)
{
    struct bp_window w;
    uint64_t d;
    unsigned pf;
    int ins;
    bp_window_init(&w, eq_low);
    bp_window_begin(&w, 1);
    bp_window_update(&w, 0x100000005ull, 5, 10, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins);
    bp_window_begin(&w, 1);
    CHECK(bp_window_update(&w, 0x200000005ull, 5, 15, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == 1 && d == 5);
    bp_window_destroy(&w);
}

/* Many ids, all colliding hashes in part: every delta is exact. */
BP_TEST(window_many_ids)
{
    enum { N = 20000 }; /* colliding hashes probe linearly: keep it quadratic-cheap */
    struct bp_window w;
    uint64_t d;
    unsigned pf;
    int ins, bad = 0;
    bp_window_init(&w, NULL);
    for (int g = 0; g < 4; g++) {
        CHECK(bp_window_begin(&w, N) >= 0);
        for (uint64_t i = 0; i < N; i++) {
            int r = bp_window_update(&w, i, (uint32_t)(i * 2654435761u) & 0xfff0u,
                                     i * (uint64_t)(g + 1), 0, BP_WINDOW_NO_AUX, &d, &pf, &ins);
            if (g > 0 && (r != 1 || d != i))
                bad++;
        }
    }
    CHECK(bad == 0);
    CHECK(w.overflow == 0);
    bp_window_destroy(&w);
}

/* More updates than the table was sized for: refused, counted, no crash. */
BP_TEST(window_overflow)
{
    struct bp_window w;
    uint64_t d;
    unsigned pf;
    int ins, refused = 0;
    bp_window_init(&w, NULL);
    bp_window_begin(&w, 0);
    for (uint64_t i = 0; i < 1000; i++)
        refused += bp_window_update(&w, i, (uint32_t)i, 1, 0, BP_WINDOW_NO_AUX, &d, &pf, &ins) == -1;
    CHECK(refused > 0 && w.overflow == (uint64_t)refused);
    CHECK(w.t[1].used <= (w.t[1].mask + 1) * 3 / 4);
    bp_window_destroy(&w);
}

/* A window that keeps what begin drops: the replaced table is handed back,
 * not freed; detach hands back everything and leaves an empty window. */
BP_TEST(window_keeps_dropped_tables)
{
    struct bp_window w;
    bp_window_init(&w, NULL);
    w.keep_dropped = 1;
    CHECK(bp_window_begin(&w, 3) == 1);
    CHECK(bp_window_begin(&w, 3) == 0);
    void *small = w.t[1].slots;
    size_t small_bytes = ((size_t)w.t[1].mask + 1) * sizeof(struct bp_wslot);
    CHECK(bp_window_begin(&w, 100000) == 1); /* regrows table 1 */
    CHECK(w.t[1].slots != small && w.t[1].gen == 3);
    struct bp_block d[2];
    bp_window_take_dropped(&w, d);
    CHECK(d[0].p == small && d[0].bytes == small_bytes && d[1].p == NULL);
    bp_block_free(&d[0]);
    CHECK(d[0].p == NULL);
    uint64_t delta;
    unsigned prev;
    int ins;
    CHECK(bp_window_update(&w, 7, 7, 10, 0, BP_WINDOW_NO_AUX, &delta, &prev, &ins) == 0);
    struct bp_block all[4];
    bp_window_detach(&w, all);
    CHECK(all[0].p != NULL && all[1].p != NULL && all[2].p == NULL && all[3].p == NULL);
    CHECK(w.t[0].slots == NULL && w.t[1].slots == NULL);
    for (int i = 0; i < 4; i++)
        bp_block_free(&all[i]);
    bp_window_destroy(&w); /* an empty window: nothing left to free */
}

BP_TEST(idbuf_detach_hands_the_ids)
{
    struct bp_idbuf b;
    bp_idbuf_init(&b);
    CHECK(bp_idbuf_reserve(&b, 1000) == 0);
    for (uint64_t i = 0; i < 1000; i++)
        bp_idbuf_push(&b, i);
    uint64_t *ids = b.ids;
    struct bp_block blk;
    bp_idbuf_detach(&b, &blk);
    CHECK(blk.p == ids && blk.bytes >= 1000 * sizeof(uint64_t));
    CHECK(b.ids == NULL && b.size == 0 && b.capacity == 0);
    CHECK(((uint64_t *)blk.p)[999] == 999);
    bp_block_free(&blk);
    bp_idbuf_destroy(&b);
}

const struct bp_test_case bp_scan_tests[] = {
    {"scan: top-K refuses a bad k", topk_bad_k},
    {"scan: window keeps the tables begin drops", window_keeps_dropped_tables},
    {"scan: id buffer detach hands the ids over", idbuf_detach_hands_the_ids},
    {"scan: top-K keeps the K largest", topk_matches_sort},
    {"scan: top-K floor and eviction", topk_floor_and_eviction},
    {"scan: histogram bucket bounds", hist_index_bounds},
    {"scan: histogram percentiles within a bucket", hist_percentiles_match_exact},
    {"scan: id buffer in order", idbuf_take_in_order},
    {"scan: id buffer grown in blocks keeps its ids", idbuf_grows_in_blocks},
    {"scan: window over generations", window_generations},
    {"scan: aux word read back from the previous generation", window_aux_previous},
    {"scan: window with an equality function", window_custom_equality},
    {"scan: window with many ids", window_many_ids},
    {"scan: window overflow refused", window_overflow},
    {NULL, NULL},
};
