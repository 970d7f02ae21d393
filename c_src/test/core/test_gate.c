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


/* --- bp_gate_input: which figure a tick uses --------------------------- */

#define MS 1000000LL

static struct bp_gate_input input(int blind, double demand)
{
    struct bp_gate_input in = {
        .blind = blind, .demand = demand, .mark = 0.80, .now = 10000 * MS,
        .tick_ns = 100 * MS, .ping_ns = 0, .report_ns = 0, .report = 0.0,
        .fresh_ns = 1100 * MS,
    };
    return in;
}

BP_TEST(input_below_mark_is_demand)
{
    struct bp_gate_input in = input(0, 0.30);
    struct bp_gate_choice c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_OS_CPU && !c.ping);
    CHECK_NEAR(c.figure, 0.30);
}

/* A scheduler blocked in the kernel: demand 0, scheduler_wall_time busy.
 * A fresh heartbeat answer decides; a stale one does not. */
BP_TEST(input_fresh_report_above_demand_decides)
{
    struct bp_gate_input in = input(0, 0.0);
    in.report_ns = in.now - 500 * MS;
    in.report = 0.97;
    struct bp_gate_choice c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_ERLANG);
    CHECK_NEAR(c.figure, 0.97);
    in.report_ns = in.now - 2000 * MS; /* stale */
    c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_OS_CPU);
    CHECK_NEAR(c.figure, 0.0);
    in.report_ns = in.now - 500 * MS; /* fresh but lower than demand */
    in.report = 0.1;
    in.demand = 0.5;
    c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_OS_CPU);
    CHECK_NEAR(c.figure, 0.5);
}

BP_TEST(input_at_mark_pings_then_uses_answer_or_demand)
{
    struct bp_gate_input in = input(0, 0.95);
    struct bp_gate_choice c = bp_gate_input(&in);
    CHECK(c.ping && c.source == BP_SOURCE_NONE && c.figure < 0.0);
    in.ping_ns = in.now - 50 * MS; /* outstanding, not late */
    c = bp_gate_input(&in);
    CHECK(!c.ping && !c.clear_ping && c.figure < 0.0);
    in.report_ns = in.now - 10 * MS; /* answered after the ping */
    in.report = 0.40;
    c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_ERLANG && c.ping && c.clear_ping);
    CHECK_NEAR(c.figure, 0.40);
    in.report_ns = 0;
    in.ping_ns = in.now - 150 * MS; /* starved */
    c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_OS_CPU && !c.ping && !c.clear_ping);
    CHECK_NEAR(c.figure, 0.95);
}

BP_TEST(input_blind_runs_on_reports)
{
    struct bp_gate_input in = input(1, 0.0);
    in.fresh_ns = 200 * MS;
    struct bp_gate_choice c = bp_gate_input(&in);
    CHECK(c.ping && c.figure < 0.0 && c.source == BP_SOURCE_NONE); /* nothing known yet */
    in.ping_ns = in.now - 100 * MS;
    in.report_ns = in.now - 40 * MS;
    in.report = 0.92;
    c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_ERLANG && c.ping && c.clear_ping);
    CHECK_NEAR(c.figure, 0.92);
    /* the low figure of a fresh report reopens as well: no demand to mix in */
    in.report = 0.05;
    c = bp_gate_input(&in);
    CHECK_NEAR(c.figure, 0.05);
    /* unanswered for a tick, no fresh report: starved, every scheduler busy */
    in.report_ns = in.now - 400 * MS;
    in.ping_ns = in.now - 150 * MS;
    c = bp_gate_input(&in);
    CHECK(c.source == BP_SOURCE_STARVED && !c.ping);
    CHECK_NEAR(c.figure, 1.0);
    /* a ping lost for five ticks is sent again */
    in.ping_ns = in.now - 500 * MS;
    in.report_ns = in.now - 600 * MS;
    c = bp_gate_input(&in);
    CHECK(c.ping && c.source == BP_SOURCE_STARVED);
}

BP_TEST(input_blind_closes_the_gate_through_step)
{
    struct bp_gate_config gc = cfg();
    struct bp_gate_state s;
    bp_gate_state_init(&s);
    struct bp_gate_input in = input(1, 0.0);
    in.fresh_ns = 200 * MS;
    in.report_ns = in.now - 10 * MS;
    in.report = 0.99;
    struct bp_gate_choice c = bp_gate_input(&in);
    CHECK(bp_gate_step(&gc, &s, c.figure, 0.1) == 1);
    CHECK(s.closed && s.reason == BP_REASON_SCHEDULER);
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
    {"gate input: below the mark is demand", input_below_mark_is_demand},
    {"gate input: a fresh report above demand decides", input_fresh_report_above_demand_decides},
    {"gate input: at the mark, ping then answer or demand", input_at_mark_pings_then_uses_answer_or_demand},
    {"gate input: blind runs on reports", input_blind_runs_on_reports},
    {"gate input: blind closes the gate", input_blind_closes_the_gate_through_step},
    {NULL, NULL},
};
