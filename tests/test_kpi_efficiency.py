"""Operational-efficiency KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

import pytest

from tests.kpi_fixtures import SEPTEMBER, Fixture, segments, value

# --- manual_touches_per_partner ----------------------------------------------------------------


def test_manual_touches_per_partner_program_wide_touch_only_in_whole_program(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="reseller")
    fx.partner("C", type="referral")
    fx.partner("X", type="reseller", offboarded="2026-06-15")  # not in July
    fx.event("Coordination Logged", "2026-07-01", partner="A", channel="email")
    fx.event("Coordination Logged", "2026-07-20", partner="A", channel="call")
    fx.event("Coordination Logged", "2026-07-21", partner="C", channel="meeting")
    fx.event("Coordination Logged", "2026-07-22", channel="email")  # no partner: whole program only
    fx.event("Coordination Logged", "2026-07-23", partner="X", channel="email")  # X not in P
    fx.event("Coordination Logged", "2026-08-01", partner="A", channel="email")  # August
    rows = fx.scorecard(kpis=["manual_touches_per_partner"], by="type")

    whole = value(rows, "manual_touches_per_partner", "2026-07")
    # touches: A 2 + C 1 + no-partner 1 = 4 (X out); partners in P: A B C = 3 -> 4/3
    assert whole.value == pytest.approx(4 / 3)
    assert (whole.numerator, whole.denominator, whole.n) == (4, 3, 3)
    reseller = value(rows, "manual_touches_per_partner", "2026-07", {"type": "reseller"})
    # reseller: A 2 / {A, B} 2 = 1.0 (the no-partner touch is in no segment)
    assert reseller.value == pytest.approx(1.0)
    assert (reseller.numerator, reseller.denominator) == (2, 2)
    referral = value(rows, "manual_touches_per_partner", "2026-07", {"type": "referral"})
    assert referral.value == pytest.approx(1.0)  # C 1 / {C} 1
    assert segments(rows, "manual_touches_per_partner", "2026-07") == [
        {},
        {"type": "referral"},
        {"type": "reseller"},
    ]


# --- onboarding_days ---------------------------------------------------------------------------


def test_onboarding_days_first_completion_and_previous(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-06-01")
    fx.partner("B", onboarded="2026-07-01")
    fx.partner("C", onboarded="2026-07-01")
    fx.partner("D", onboarded="2026-05-01")
    fx.partner("E", onboarded="2026-07-01")
    fx.event("Onboarding Completed", "2026-07-11", partner="A")  # 40 days
    fx.event("Onboarding Completed", "2026-07-03 12:00", partner="B")  # 2.5 days
    fx.event("Onboarding Completed", "2026-07-06", partner="C")  # 5 days
    fx.event("Onboarding Completed", "2026-06-30", partner="D")  # first one, in June: 60 days
    fx.event("Onboarding Completed", "2026-07-10", partner="D")  # not the first: ignored
    fx.event("Onboarding Completed", "2026-08-01", partner="E")  # August
    july = value(fx.scorecard(kpis=["onboarding_days"]), "onboarding_days", "2026-07")
    # July: 40, 2.5, 5 -> sorted 2.5, 5, 40 -> median 5
    assert july.value == pytest.approx(5.0)
    assert july.n == 3
    assert july.numerator is None and july.denominator is None
    # June (before the range): D 60 -> previous 60, change 5 - 60 = -55
    assert july.previous == pytest.approx(60.0)
    assert july.change == pytest.approx(-55.0)


# --- approval_cycle_days -----------------------------------------------------------------------


def test_approval_cycle_days(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").user("u1", "A")

    def request(obj, ts):
        fx.event("Approval Requested", ts, user="u1", object=obj, kind="discount")

    def decide(obj, ts, outcome="approved"):
        fx.event("Approval Decided", ts, partner="A", object=obj, outcome=outcome)

    request("a1", "2026-06-28")
    decide("a1", "2026-07-02")  # 4 days
    request("a2", "2026-07-10")
    request("a2", "2026-07-12")  # not the first request: ignored
    decide("a2", "2026-07-13 06:00")  # 3.25 days from the first request
    request("a3", "2026-07-20")
    decide("a3", "2026-07-21")  # 1 day
    decide("a3", "2026-07-25", outcome="rejected")  # not the first decision: ignored
    request("a4", "2026-07-30")
    decide("a4", "2026-08-01")  # decided in August: 2 days
    request("a6", "2026-07-01")
    decide("a6", "2026-07-01 12:00")  # 0.5 day
    # reading: an approval decided without any Approval Requested has no cycle and is left out
    decide("a5", "2026-07-15")
    rows = fx.scorecard(kpis=["approval_cycle_days"], end=SEPTEMBER)
    july = value(rows, "approval_cycle_days", "2026-07")
    # July: a1 4, a2 3.25, a3 1, a6 0.5 -> sorted 0.5, 1, 3.25, 4 -> median (1 + 3.25) / 2 = 2.125
    assert july.value == pytest.approx(2.125)
    assert july.n == 4
    august = value(rows, "approval_cycle_days", "2026-08")
    assert august.value == pytest.approx(2.0)  # a4: Jul 30 -> Aug 1
    assert august.n == 1


# --- reminders_per_task ------------------------------------------------------------------------


def test_reminders_per_task(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.event("Task Assigned", "2026-06-20", partner="A", object="t1", due_at="2026-07-10T00:00:00Z")
    fx.event("Task Assigned", "2026-06-20", partner="A", object="t2", due_at="2026-07-20T00:00:00Z")
    fx.event("Task Cancelled", "2026-07-19", partner="A", object="t2")  # cancelled before due: not due
    fx.event("Task Assigned", "2026-06-20", partner="A", object="t3", due_at="2026-07-25T00:00:00Z")
    fx.event("Task Assigned", "2026-07-01", partner="A", object="t4", due_at="2026-08-10T00:00:00Z")
    for ts in ("2026-07-01", "2026-07-05", "2026-07-08"):
        fx.event("Reminder Sent", ts, partner="A", object="t1", manual=True)
    fx.event("Reminder Sent", "2026-07-20", partner="A", object="t3", manual=False)
    fx.event("Reminder Sent", "2026-07-31 23:59:59", partner="A", object="t4", manual=True)
    fx.event("Reminder Sent", "2026-08-01", partner="A", object="t4", manual=True)  # August
    rows = fx.scorecard(kpis=["reminders_per_task"], end=SEPTEMBER)
    july = value(rows, "reminders_per_task", "2026-07")
    # reminders in July: 3 + 1 + 1 = 5 (any task); tasks due in July: t1, t3 = 2 -> 2.5
    assert july.value == pytest.approx(2.5)
    assert (july.numerator, july.denominator, july.n) == (5, 2, 2)
    assert july.band is None
    august = value(rows, "reminders_per_task", "2026-08")
    assert august.value == pytest.approx(1.0)  # 1 reminder / t4 due Aug 10
