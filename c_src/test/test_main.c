/* test_main.c - runs every test table and prints the summary line. The
 * native sampler's tables (test/native/) are in only where it is built
 * (BP_TEST_NATIVE, set by the Makefile). */
#include <string.h>

#include "bp_test.h"

int bp_test_failures;

extern const struct bp_test_case bp_gate_tests[];
extern const struct bp_test_case bp_ring_tests[];
extern const struct bp_test_case bp_memory_tests[];
extern const struct bp_test_case bp_threads_tests[];
extern const struct bp_test_case bp_concurrency_tests[];
extern const struct bp_test_case bp_scan_tests[];
extern const struct bp_test_case bp_ptab_tests[];
extern const struct bp_test_case bp_channel_tests[];
extern const struct bp_test_case bp_recfile_tests[];
extern const struct bp_test_case bp_rec_read_tests[];
#ifdef BP_TEST_NATIVE
extern const struct bp_test_case bp_native_tests[];
extern const struct bp_test_case bp_symbols_tests[];
extern const struct bp_test_case bp_unwind_tests[];
extern const struct bp_test_case bp_elf_tests[];
#endif

static const struct bp_test_case *const tables[] = {
    bp_gate_tests, bp_ring_tests, bp_memory_tests, bp_threads_tests,
    bp_concurrency_tests, bp_scan_tests, bp_ptab_tests, bp_channel_tests,
    bp_recfile_tests, bp_rec_read_tests,
#ifdef BP_TEST_NATIVE
    bp_native_tests, bp_symbols_tests, bp_unwind_tests, bp_elf_tests,
#endif
};

int main(void)
{
    int passed = 0, failed = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (const struct bp_test_case *c = tables[t]; c->name != NULL; c++) {
            bp_test_failures = 0;
            c->fn();
            if (bp_test_failures == 0) {
                passed++;
            } else {
                failed++;
                fprintf(stderr, "FAIL %s\n", c->name);
            }
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
