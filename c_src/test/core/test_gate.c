/* test_gate.c - the gate's step function and published state. */
#include "bp_gate.h"
#include "bp_test.h"

static struct bp_gate_config cfg(void)
{
    struct bp_gate_config c;
    bp_gate_config_default(&c);
    return c;
}

BP_TEST(closes_on_scheduler)
{
    struct bp_gate_config c = cfg();
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    CHECK(bp_gate_step(&c, &s, 0.80, 0.10) == 0); /* at the mark: stays open */
    CHECK(!s.closed);
    CHECK(bp_gate_step(&c, &s, 0.93, 0.10) == 1);
    CHECK(s.closed && s.reason == BP_REASON_SCHEDULER);
    CHECK_NEAR(s.ratio, 0.93);
}

BP_TEST(closes_on_memory)
{
    struct bp_gate_config c = cfg();
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.95) == 1);
    CHECK(s.closed && s.reason == BP_REASON_MEMORY);
    CHECK_NEAR(s.ratio, 0.95);
}

BP_TEST(memory_takes_precedence)
{
    struct bp_gate_config c = cfg();
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    CHECK(bp_gate_step(&c, &s, 0.99, 0.91) == 1);
    CHECK(s.reason == BP_REASON_MEMORY);
    CHECK_NEAR(s.ratio, 0.91);
}

BP_TEST(hysteresis_and_reopen_ticks)
{
    struct bp_gate_config c = cfg();
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    bp_gate_step(&c, &s, 0.95, 0.1);
    /* below the high mark but above the low one: stays closed */
    for (int i = 0; i < 10; i++)
        CHECK(bp_gate_step(&c, &s, 0.70, 0.1) == 0);
    CHECK(s.closed);
    /* two calm ticks, then a hot-ish one resets the count */
    CHECK(bp_gate_step(&c, &s, 0.10, 0.1) == 0);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.1) == 0);
    CHECK(bp_gate_step(&c, &s, 0.65, 0.1) == 0);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.1) == 0);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.1) == 0);
    CHECK(s.closed);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.1) == 1); /* third calm tick */
    CHECK(!s.closed && s.reason == BP_REASON_NONE);
    /* memory between the marks also keeps it closed */
    bp_gate_step(&c, &s, 0.1, 0.95);
    for (int i = 0; i < 5; i++)
        CHECK(bp_gate_step(&c, &s, 0.1, 0.87) == 0);
    CHECK(s.closed);
}

BP_TEST(reopen_ticks_one)
{
    struct bp_gate_config c = cfg();
    c.reopen_ticks = 1;
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    bp_gate_step(&c, &s, 0.95, 0.1);
    CHECK(bp_gate_step(&c, &s, 0.1, 0.1) == 1);
    CHECK(!s.closed);
}

BP_TEST(reason_kept_current)
{
    struct bp_gate_config c = cfg();
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    bp_gate_step(&c, &s, 0.95, 0.1);
    bp_gate_step(&c, &s, 0.97, 0.1);
    CHECK(s.reason == BP_REASON_SCHEDULER);
    CHECK_NEAR(s.ratio, 0.97);
    bp_gate_step(&c, &s, 0.97, 0.96); /* memory becomes the reason */
    CHECK(s.reason == BP_REASON_MEMORY);
    CHECK_NEAR(s.ratio, 0.96);
    bp_gate_step(&c, &s, 0.97, 0.88); /* cooling memory: ratio follows */
    CHECK(s.reason == BP_REASON_SCHEDULER);
    CHECK_NEAR(s.ratio, 0.97);
    bp_gate_step(&c, &s, 0.70, 0.88);
    CHECK(s.reason == BP_REASON_SCHEDULER);
    CHECK_NEAR(s.ratio, 0.70);
}

BP_TEST(published_snapshot)
{
    struct bp_gate_pub p;
    struct bp_gate_snapshot g;
    bp_gate_pub_init(&p, 5);
    CHECK(!bp_gate_is_closed(&p));
    CHECK(bp_gate_publish(&p, 1, BP_REASON_MEMORY, 0.93, BP_SOURCE_OS_CPU, 10) == 1);
    CHECK(bp_gate_is_closed(&p));
    CHECK(bp_gate_publish(&p, 1, BP_REASON_SCHEDULER, 0.9, BP_SOURCE_ERLANG, 20) == 0);
    bp_gate_read(&p, &g);
    CHECK(g.closed && g.reason == BP_REASON_SCHEDULER && g.source == BP_SOURCE_ERLANG);
    CHECK_NEAR(g.ratio, 0.9);
    CHECK(g.changed_at == 10); /* only a flip moves changed_at */
    CHECK(bp_gate_publish(&p, 0, BP_REASON_NONE, 0.0, BP_SOURCE_NONE, 30) == 1);
    bp_gate_read(&p, &g);
    CHECK(!g.closed && g.changed_at == 30);
}

BP_TEST(unknown_scheduler_input_holds)
{
    struct bp_gate_config c = cfg();
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    CHECK(bp_gate_step(&c, &s, -1.0, 0.10) == 0); /* unknown: cannot close */
    CHECK(!s.closed);
    CHECK(bp_gate_step(&c, &s, -1.0, 0.95) == 1); /* memory still can */
    CHECK(s.reason == BP_REASON_MEMORY);
    bp_gate_state_init(&s);
    CHECK(bp_gate_step(&c, &s, 0.95, 0.10) == 1);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.10) == 0);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.10) == 0);
    CHECK(bp_gate_step(&c, &s, -1.0, 0.10) == 0); /* unknown: not calm */
    CHECK(s.closed && s.calm_ticks == 0);
    CHECK_NEAR(s.ratio, 0.10); /* keeps the last known figure */
    CHECK(bp_gate_step(&c, &s, 0.10, 0.10) == 0);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.10) == 0);
    CHECK(bp_gate_step(&c, &s, 0.10, 0.10) == 1);
    CHECK(!s.closed);
}

const struct bp_test_case bp_gate_tests[] = {
    {"gate: unknown scheduler input holds", unknown_scheduler_input_holds},
    {"gate: closes on scheduler", closes_on_scheduler},
    {"gate: closes on memory", closes_on_memory},
    {"gate: memory takes precedence", memory_takes_precedence},
    {"gate: hysteresis and reopen_ticks", hysteresis_and_reopen_ticks},
    {"gate: reopen_ticks = 1", reopen_ticks_one},
    {"gate: reason kept current", reason_kept_current},
    {"gate: published snapshot", published_snapshot},
    {NULL, NULL},
};
