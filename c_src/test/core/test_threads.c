/* test_threads.c - thread name classification and ordering. */
#include <string.h>

#include "bp_threads.h"
#include "bp_test.h"

static int classify(const char *name, enum bp_thread_type *t, uint32_t *i)
{
    return bp_threads_classify(name, strlen(name), t, i);
}

BP_TEST(scheduler_names)
{
    enum bp_thread_type t;
    uint32_t i;
    CHECK(classify("1_scheduler\n", &t, &i) && t == BP_THREAD_NORMAL && i == 1);
    CHECK(classify("64_scheduler", &t, &i) && t == BP_THREAD_NORMAL && i == 64);
    CHECK(classify("2_dirty_cpu_sch\n", &t, &i) && t == BP_THREAD_DIRTY_CPU && i == 2);
    CHECK(classify("9_dirty_io_sche\n", &t, &i) && t == BP_THREAD_DIRTY_IO && i == 9);
    CHECK(classify("10_dirty_io_sch\n", &t, &i) && t == BP_THREAD_DIRTY_IO && i == 10);
    CHECK(classify("100_dirty_cpu_s", &t, &i) && t == BP_THREAD_DIRTY_CPU && i == 100);
    CHECK(classify("1000_dirty_io_s", &t, &i) && t == BP_THREAD_DIRTY_IO && i == 1000);
}

/* OTP 26 and later. */
BP_TEST(erts_prefixed_names)
{
    enum bp_thread_type t;
    uint32_t i;
    CHECK(classify("erts_sched_1\n", &t, &i) && t == BP_THREAD_NORMAL && i == 1);
    CHECK(classify("erts_sched_1024", &t, &i) && t == BP_THREAD_NORMAL && i == 1024);
    CHECK(classify("erts_dcpus_3\n", &t, &i) && t == BP_THREAD_DIRTY_CPU && i == 3);
    CHECK(classify("erts_dios_10\n", &t, &i) && t == BP_THREAD_DIRTY_IO && i == 10);
    const char *bad[] = {"erts_sched_0", "erts_sched_", "erts_sched_01", "erts_sched_1x",
                         "erts_dcpus", "erts_aux_1", "erts_dios_-1", "erts_sys_sig",
                         "erts_sched_123456"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK(!classify(bad[k], &t, &i));
}

BP_TEST(other_names_rejected)
{
    enum bp_thread_type t;
    uint32_t i;
    const char *bad[] = {"beam.smp\n", "sys_sig_dispatc\n", "async_1\n",
                         "1_aux\n", "0_poller\n", "beamprof_sampl\n",
                         "0_scheduler", "01_scheduler", "_scheduler", "1scheduler",
                         "1_schedule", "1_scheduler2", "x_scheduler",
                         "1_dirty_cpu", /* not truncated, so not a full name */
                         "12345_dirty_cp", "", "\n"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int r = classify(bad[k], &t, &i);
        if (r)
            fprintf(stderr, "  wrongly accepted: %s\n", bad[k]);
        CHECK(!r);
    }
}

BP_TEST(sort_by_type_then_index)
{
    struct bp_thread t[5] = {
        {10, BP_THREAD_DIRTY_IO, 2, -1, -1, -1}, {11, BP_THREAD_NORMAL, 2, -1, -1, -1},
        {12, BP_THREAD_DIRTY_CPU, 1, -1, -1, -1}, {13, BP_THREAD_NORMAL, 1, -1, -1, -1},
        {14, BP_THREAD_DIRTY_IO, 1, -1, -1, -1},
    };
    bp_threads_sort(t, 5);
    CHECK(t[0].tid == 13 && t[1].tid == 11 && t[2].tid == 12);
    CHECK(t[3].tid == 14 && t[4].tid == 10);
}

BP_TEST(schedstat_parsed)
{
    uint64_t run = 0, wait = 0;
    const char *line = "1964591625 233984804 769\n";
    CHECK(bp_threads_parse_schedstat(line, strlen(line), &run, &wait) == 0);
    CHECK(run == 1964591625u && wait == 233984804u);
    const char *big = "18446744073709551615 0 1";
    CHECK(bp_threads_parse_schedstat(big, strlen(big), &run, &wait) == 0);
    CHECK(run == UINT64_MAX && wait == 0);
    const char *bad[] = {"", "12", "x 1 2", "18446744073709551616 0 1", " \n"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK(bp_threads_parse_schedstat(bad[k], strlen(bad[k]), &run, &wait) == -1);
    /* never reads past len */
    CHECK(bp_threads_parse_schedstat("12 34", 2, &run, &wait) == -1);
}

const struct bp_test_case bp_threads_tests[] = {
    {"threads: schedstat parsed", schedstat_parsed},
    {"threads: scheduler names", scheduler_names},
    {"threads: OTP 26+ scheduler names", erts_prefixed_names},
    {"threads: other names rejected", other_names_rejected},
    {"threads: sort by type then index", sort_by_type_then_index},
    {NULL, NULL},
};
