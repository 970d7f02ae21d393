/* test_memory.c - /proc and cgroup text parsers, and the limit decision. */
#include <string.h>

#include "bp_memory.h"
#include "bp_test.h"

#define S(str) str, strlen(str)

BP_TEST(statm)
{
    uint64_t pages = 0;
    CHECK(bp_memory_parse_statm(S("12345 678 90 1 0 2 0\n"), &pages) == 0);
    CHECK(pages == 678);
    CHECK(bp_memory_parse_statm(S(""), &pages) == -1);
    CHECK(bp_memory_parse_statm(S("12345"), &pages) == -1);
    CHECK(bp_memory_parse_statm(S("x 1"), &pages) == -1);
}

BP_TEST(meminfo)
{
    const char *txt = "MemTotal:       24682416 kB\n"
                      "MemFree:        24481992 kB\n"
                      "MemAvailable:   24399864 kB\n"
                      "Buffers:           1234 kB\n";
    uint64_t total = 0, avail = 0;
    CHECK(bp_memory_parse_meminfo(S(txt), &total, &avail) == 0);
    CHECK(total == 24682416ull * 1024);
    CHECK(avail == 24399864ull * 1024);
    /* old kernels: no MemAvailable, fall back to MemFree */
    CHECK(bp_memory_parse_meminfo(S("MemTotal: 100 kB\nMemFree: 40 kB\n"), &total,
                                  &avail) == 0);
    CHECK(total == 102400 && avail == 40960);
    CHECK(bp_memory_parse_meminfo(S("MemFree: 40 kB\n"), &total, &avail) == -1);
    /* a truncated read keeps what is complete */
    CHECK(bp_memory_parse_meminfo(S("MemTotal: 100 kB\nMemAvail"), &total, &avail) == -1);
}

BP_TEST(cgroup_v1)
{
    const char *txt = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n"
                      "2:cpuacct:/\n";
    struct bp_cgroup_paths p;
    CHECK(bp_memory_parse_cgroup(S(txt), &p) == 0);
    CHECK(p.has_v1 && !p.has_v2);
    CHECK(strcmp(p.v1, "/process_api/abc") == 0);
    /* memory among comma-separated controllers */
    CHECK(bp_memory_parse_cgroup(S("5:cpu,memory,blkio:/a/b\n"), &p) == 0);
    CHECK(p.has_v1 && strcmp(p.v1, "/a/b") == 0);
    /* memsw-like names are not memory */
    CHECK(bp_memory_parse_cgroup(S("5:memoryx:/a\n"), &p) == 0);
    CHECK(!p.has_v1);
}

BP_TEST(cgroup_v2_and_mixed)
{
    struct bp_cgroup_paths p;
    CHECK(bp_memory_parse_cgroup(S("0::/user.slice/app.scope\n"), &p) == 0);
    CHECK(p.has_v2 && !p.has_v1 && strcmp(p.v2, "/user.slice/app.scope") == 0);
    /* hybrid: v1 memory plus the unified line (this machine) */
    const char *mixed = "4:memory:/process_api/172937916\n3:cpuset:/\n0::/\n";
    CHECK(bp_memory_parse_cgroup(S(mixed), &p) == 0);
    CHECK(p.has_v1 && p.has_v2);
    CHECK(strcmp(p.v1, "/process_api/172937916") == 0 && strcmp(p.v2, "/") == 0);
    /* no trailing newline, path with a colon */
    CHECK(bp_memory_parse_cgroup(S("0::/a:b"), &p) == 0);
    CHECK(p.has_v2 && strcmp(p.v2, "/a:b") == 0);
    CHECK(bp_memory_parse_cgroup(S(""), &p) == 0);
    CHECK(!p.has_v1 && !p.has_v2);
}

BP_TEST(limit_values)
{
    uint64_t b = 0;
    CHECK(bp_memory_parse_limit(S("max\n"), &b) == 0);
    CHECK(bp_memory_parse_limit(S("536870912\n"), &b) == 1 && b == 536870912ull);
    CHECK(bp_memory_parse_limit(S("9223372036854771712\n"), &b) == 1);
    CHECK(b == 9223372036854771712ull);
    CHECK(bp_memory_parse_limit(S("12ab\n"), &b) == -1);
    CHECK(bp_memory_parse_limit(S("\n"), &b) == -1);
    CHECK(bp_memory_parse_limit(S("99999999999999999999999\n"), &b) == -1);
}

BP_TEST(limit_decision)
{
    struct bp_memory_reading r = {0};
    struct bp_cgroup_limit none = {0, BP_LIMIT_MACHINE};
    struct bp_cgroup_limit huge = {9223372036854771712ull, BP_LIMIT_CGROUP_V1};
    struct bp_cgroup_limit v2 = {1000, BP_LIMIT_CGROUP_V2};
    r.rss = 500;
    r.mem_total = 4000;
    r.mem_available = 1000;
    bp_memory_decide(800, &v2, &r); /* option wins */
    CHECK(r.source == BP_LIMIT_OPTION && r.limit == 800 && r.used == 500);
    CHECK_NEAR(r.ratio, 0.625);
    bp_memory_decide(0, &v2, &r);
    CHECK(r.source == BP_LIMIT_CGROUP_V2 && r.limit == 1000);
    CHECK_NEAR(r.ratio, 0.5);
    bp_memory_decide(0, &huge, &r); /* above MemTotal: no limit */
    CHECK(r.source == BP_LIMIT_MACHINE && r.limit == 4000 && r.used == 3000);
    CHECK_NEAR(r.ratio, 0.75);
    bp_memory_decide(0, &none, &r);
    CHECK(r.source == BP_LIMIT_MACHINE);
    r.rss = 1500; /* RSS above an explicit limit: ratio above 1 */
    bp_memory_decide(1000, &none, &r);
    CHECK_NEAR(r.ratio, 1.5);
}

const struct bp_test_case bp_memory_tests[] = {
    {"memory: statm", statm},
    {"memory: meminfo", meminfo},
    {"memory: /proc/self/cgroup v1", cgroup_v1},
    {"memory: /proc/self/cgroup v2 and mixed", cgroup_v2_and_mixed},
    {"memory: limit values", limit_values},
    {"memory: limit decision", limit_decision},
    {NULL, NULL},
};
