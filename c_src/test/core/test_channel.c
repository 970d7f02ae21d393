/* test_channel.c - the channel check both libraries agree on
 * (shared/bp_channel.h): what a reader accepts, what it refuses and why. */
#include <stdlib.h>
#include <string.h>

#include "bp_channel.h"
#include "bp_test.h"

static _Atomic int gate;

static size_t no_threads(void *ctx, struct bp_channel_thread *out, size_t max)
{
    (void)ctx;
    (void)out;
    (void)max;
    return 0;
}

/* A channel as the core makes it, in place (self must be its address). */
static void make(struct bp_channel *ch)
{
    memset(ch, 0, sizeof *ch);
    ch->magic = BP_CHANNEL_MAGIC;
    ch->version = BP_CHANNEL_VERSION;
    ch->size = sizeof *ch;
    ch->thread_size = sizeof(struct bp_channel_thread);
    ch->self = ch;
    ch->resource = ch;
    ch->gate_closed = &gate;
    ch->threads = no_threads;
}

static enum bp_channel_status check(const struct bp_channel *ch, size_t len,
                                    const char **why)
{
    const struct bp_channel *out = (const void *)1;
    enum bp_channel_status s = bp_channel_check(ch, len, &out, why);
    CHECK(s == BP_CHANNEL_OK ? out == ch : out == NULL);
    CHECK((s == BP_CHANNEL_OK) == (*why == NULL));
    return s;
}

BP_TEST(accepts_its_own)
{
    struct bp_channel ch;
    const char *why;
    make(&ch);
    CHECK(check(&ch, sizeof ch, &why) == BP_CHANNEL_OK);
}

/* A copy of the bytes (binary:copy/1, term_to_binary and back) is not the
 * channel: self points elsewhere. */
BP_TEST(refuses_a_copy)
{
    struct bp_channel ch, copy;
    const char *why;
    make(&ch);
    memcpy(&copy, &ch, sizeof ch);
    CHECK(check(&copy, sizeof copy, &why) == BP_CHANNEL_NOT_A_CHANNEL);
}

BP_TEST(refuses_short_or_foreign_bytes)
{
    struct bp_channel ch;
    const char *why;
    make(&ch);
    CHECK(check(&ch, 0, &why) == BP_CHANNEL_NOT_A_CHANNEL);
    CHECK(check(&ch, offsetof(struct bp_channel, resource) - 1, &why) ==
          BP_CHANNEL_NOT_A_CHANNEL);
    CHECK(check(&ch, sizeof ch - 1, &why) == BP_CHANNEL_NOT_A_CHANNEL); /* size > len */
    CHECK(check(NULL, sizeof ch, &why) == BP_CHANNEL_NOT_A_CHANNEL);
    ch.magic ^= 1;
    CHECK(check(&ch, sizeof ch, &why) == BP_CHANNEL_NOT_A_CHANNEL);
}

/* Another major version is refused whatever its size, with a reason. */
BP_TEST(refuses_another_version)
{
    struct bp_channel ch;
    const char *why;
    make(&ch);
    ch.version = BP_CHANNEL_VERSION + 1;
    CHECK(check(&ch, sizeof ch, &why) == BP_CHANNEL_BAD_VERSION);
    CHECK(why != NULL && strstr(why, "version") != NULL);
    ch.version = 0;
    CHECK(check(&ch, sizeof ch, &why) == BP_CHANNEL_BAD_VERSION);
}

/* The same version with fields appended is accepted (size grows); one that
 * lacks what this reader uses is refused. */
BP_TEST(size_rules)
{
    const char *why;
    size_t big = sizeof(struct bp_channel) + 64;
    struct bp_channel *ch = calloc(1, big);
    CHECK(ch != NULL);
    if (ch == NULL)
        return;
    make(ch);
    ch->size = (uint32_t)big;
    CHECK(check(ch, big, &why) == BP_CHANNEL_OK);
    ch->size = (uint32_t)BP_CHANNEL_V1_SIZE - 8;
    CHECK(check(ch, big, &why) == BP_CHANNEL_TOO_SMALL);
    make(ch);
    ch->thread_size = sizeof(struct bp_channel_thread) + 4;
    CHECK(check(ch, big, &why) == BP_CHANNEL_TOO_SMALL);
    make(ch);
    ch->threads = NULL;
    CHECK(check(ch, big, &why) == BP_CHANNEL_TOO_SMALL);
    free(ch);
}

const struct bp_test_case bp_channel_tests[] = {
    {"channel: accepts its own", accepts_its_own},
    {"channel: refuses a copy", refuses_a_copy},
    {"channel: refuses short or foreign bytes", refuses_short_or_foreign_bytes},
    {"channel: refuses another version", refuses_another_version},
    {"channel: size rules", size_rules},
    {NULL, NULL},
};
