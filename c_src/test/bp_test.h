/* bp_test.h - a tiny assert harness: BP_TEST(name) defines a test, CHECK
 * records a failure and continues, main runs them all and prints
 * "N passed, M failed". */
#ifndef BP_TEST_H
#define BP_TEST_H

#include <stdio.h>

struct bp_test_case {
    const char *name;
    void (*fn)(void);
};

extern int bp_test_failures; /* failures of the running test */

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            bp_test_failures++;                                              \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_NEAR(a, b) CHECK(((a) - (b)) < 1e-9 && ((b) - (a)) < 1e-9)

/* Each test file defines its table: BP_TESTS_<file>. */
#define BP_TEST(name) static void name(void)

#endif
