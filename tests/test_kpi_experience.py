"""Partner-experience KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

import pytest

from tests.kpi_fixtures import SEPTEMBER, Fixture, value

# --- task_abandonment_rate ---------------------------------------------------------------------


def test_task_abandonment_rate(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").user("u1", "A")

    def start(task, ts):
        fx.event("Task Started", ts, user="u1", object=task)

    start("k1", "2026-06-05")  # threshold Jul 5
    fx.event("Task Completed", "2026-07-05", partner="A", object="k1")  # exactly at threshold: done
    start("k2", "2026-06-10")  # threshold Jul 10, never completed: abandoned
    start("k3", "2026-06-15")  # threshold Jul 15
    fx.event("Task Completed", "2026-07-16", partner="A", object="k3")  # after: abandoned
    start("k4", "2026-06-20")  # threshold Jul 20
    fx.event("Task Cancelled", "2026-07-20", partner="A", object="k4")  # cancelled at threshold: out
    start("k5", "2026-06-02")  # first start: threshold Jul 2, not completed: abandoned
    start("k5", "2026-07-05")  # a later start: ignored (would give Aug 4)
    start("k6", "2026-07-02")  # threshold Aug 1 00:00: August
    start("k7", "2026-06-01")  # threshold Jul 1 00:00: first instant of July
    fx.event("Task Completed", "2026-06-20", partner="A", object="k7")
    rows = fx.scorecard(kpis=["task_abandonment_rate"], end=SEPTEMBER)
    july = value(rows, "task_abandonment_rate", "2026-07")
    # population: k1 k2 k3 k5 k7 = 5; abandoned: k2 k3 k5 = 3 -> 60
    assert july.value == pytest.approx(60.0)
    assert (july.numerator, july.denominator, july.n) == (3, 5, 5)
    august = value(rows, "task_abandonment_rate", "2026-08")
    assert august.value == pytest.approx(100.0)  # k6 only, never completed
    assert (august.numerator, august.denominator) == (1, 1)


# --- resubmission_rate -------------------------------------------------------------------------


def test_resubmission_rate(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").user("u1", "A")
    fx.event("Task Submitted", "2026-06-30", user="u1", object="s0")  # June
    for task, ts in (("s1", "2026-07-01"), ("s2", "2026-07-02"), ("s3", "2026-07-03"), ("s4", "2026-07-31")):
        fx.event("Task Submitted", ts, user="u1", object=task)
    fx.event("Task Rejected", "2026-07-02", partner="A", object="s1", reason="missing signature")
    fx.event("Task Rejected", "2026-07-01", partner="A", object="s0", reason="blurred")  # June's, in July
    fx.event("Task Submitted", "2026-08-01", user="u1", object="s5")  # August
    rows = fx.scorecard(kpis=["resubmission_rate"], end=SEPTEMBER)
    july = value(rows, "resubmission_rate", "2026-07")
    # rejected in July: 2; submitted in July: s1-s4 = 4 -> 100 * 2 / 4 = 50
    assert july.value == pytest.approx(50.0)
    assert (july.numerator, july.denominator, july.n) == (2, 4, 4)
    august = value(rows, "resubmission_rate", "2026-08")
    assert august.value == 0.0  # 0 rejected / 1 submitted
    assert august.n == 1


# --- support_requests_per_partner --------------------------------------------------------------


def test_support_requests_per_partner_by_tier(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", tier="gold").partner("B", tier="silver")
    fx.partner("X", tier="gold", offboarded="2026-06-01")  # not in July
    fx.user("uA", "A").user("uX", "X")
    for ts in ("2026-07-01", "2026-07-02", "2026-07-03"):
        fx.event("Support Requested", ts, user="uA", object=f"tk{ts}", topic="billing")
    fx.event("Support Requested", "2026-07-04", user="uX", object="tkx", topic="billing")  # X out
    fx.event("Support Requested", "2026-07-05", object="tkn", topic="login")  # no partner: whole only
    rows = fx.scorecard(kpis=["support_requests_per_partner"], by="tier")
    whole = value(rows, "support_requests_per_partner", "2026-07")
    # A 3 + no-partner 1 = 4; partners in P: A, B = 2 -> 2.0
    assert whole.value == pytest.approx(2.0)
    assert (whole.numerator, whole.denominator, whole.n) == (4, 2, 2)
    gold = value(rows, "support_requests_per_partner", "2026-07", {"tier": "gold"})
    assert gold.value == pytest.approx(3.0)  # A 3 / {A} 1 (X is not in P)
    silver = value(rows, "support_requests_per_partner", "2026-07", {"tier": "silver"})
    assert silver.value == 0.0  # 0 / {B} 1


# --- repeat_question_rate ----------------------------------------------------------------------


def test_repeat_question_rate_90_day_lookback(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B")
    fx.user("uA", "A").user("uB", "B")

    def ask(obj, ts, user, **topic):
        fx.event("Support Requested", ts, user=user, object=obj, **topic)

    ask("r0", "2026-04-10", "uA", topic="billing")  # before the range: still looked back at
    ask("r1", "2026-07-09", "uA", topic="billing")  # window [Apr 10, Jul 9) holds r0 (inclusive): repeat
    ask("rl", "2026-04-20 23:59:59", "uA", topic="login")
    ask("r2", "2026-07-20", "uA", topic="login")  # window [Apr 21, Jul 20): rl is 1 s outside: new
    ask("r3", "2026-07-21", "uA", topic="Billing")  # case-sensitive: not "billing": new
    ask("r4", "2026-07-22", "uA", topic="billing")  # r1 within 90 days: repeat
    ask("r5", "2026-07-23", "uA")  # no topic: not in the denominator
    ask("r6", "2026-07-25", "uB", topic="billing")  # B never raised it: new
    july = value(fx.scorecard(kpis=["repeat_question_rate"]), "repeat_question_rate", "2026-07")
    # with a topic in July: r1 r2 r3 r4 r6 = 5; repeats: r1, r4 = 2 -> 40
    assert july.value == pytest.approx(40.0)
    assert (july.numerator, july.denominator, july.n) == (2, 5, 5)
