"""Engagement KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

import pytest

from tests.kpi_fixtures import SEPTEMBER, Fixture, value

# --- task_completion_rate ----------------------------------------------------------------------


def test_task_completion_rate_due_rules(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").user("u1", "A")

    def assign(task, ts, **props):
        fx.event("Task Assigned", ts, partner="A", object=task, kind="general", **props)

    assign("t1", "2026-06-20", due_at="2026-07-10T00:00:00Z")
    fx.event("Task Completed", "2026-07-09", partner="A", object="t1")  # on time
    assign("t2", "2026-06-20", due_at="2026-07-15T12:00:00Z")
    fx.event("Task Completed", "2026-07-15 12:00", partner="A", object="t2")  # exactly at due: on time
    assign("t3", "2026-07-01")  # no due_at: due = Jul 1 + 30 d = Jul 31 00:00
    fx.event("Task Completed", "2026-07-31 00:00:01", partner="A", object="t3")  # 1 s late
    assign("t4", "2026-07-02")  # no due_at: due = Aug 1 00:00 -> due in August
    assign("t5", "2026-06-15", due_at="not a date")  # unparseable: due = Jun 15 + 30 d = Jul 15
    assign("t6", "2026-06-20", due_at="2026-07-20T00:00:00Z")
    fx.event("Task Cancelled", "2026-07-20", partner="A", object="t6")  # cancelled exactly at due: stays
    assign("t7", "2026-06-20", due_at="2026-07-20T00:00:00Z")
    fx.event("Task Cancelled", "2026-07-19", partner="A", object="t7")  # cancelled before due: out
    assign("t8", "2026-06-01", due_at="2026-07-05T00:00:00Z")  # the first Task Assigned wins
    assign("t8", "2026-06-10", due_at="2026-08-05T00:00:00Z")  # ignored
    fx.event("Task Completed", "2026-07-06", partner="A", object="t8")  # late against Jul 5
    assign("t9", "2026-06-01", due_at="2026-06-30T23:59:59Z")  # due in June
    fx.event("Task Completed", "2026-07-01", partner="A", object="t10")  # never assigned: no due
    rows = fx.scorecard(kpis=["task_completion_rate"], end=SEPTEMBER)

    july = value(rows, "task_completion_rate", "2026-07")
    # due in July: t1 t2 t3 t5 t6 t8 = 6; completed at or before due: t1, t2 = 2 -> 100 * 2 / 6
    assert july.value == pytest.approx(100 * 2 / 6)
    assert (july.numerator, july.denominator, july.n) == (2, 6, 6)
    august = value(rows, "task_completion_rate", "2026-08")
    # due in August: t4 only (t8's second assignment does not count); not completed -> 0 / 1 = 0
    assert august.value == 0.0
    assert (august.numerator, august.denominator) == (0, 1)


def test_task_completion_rate_due_at_with_offset_and_ties(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    # 2026-08-01T01:00+02:00 is 2026-07-31T23:00Z: due in July
    fx.event("Task Assigned", "2026-07-01", partner="A", object="t1", due_at="2026-08-01T01:00:00+02:00")
    fx.event("Task Completed", "2026-07-31 22:00", partner="A", object="t1")  # before due: on time
    # two Task Assigned at the same ts: arrival order breaks the tie, the first in the file wins
    fx.event("Task Assigned", "2026-07-01", partner="A", object="t2", due_at="2026-07-10T00:00:00Z")
    fx.event("Task Assigned", "2026-07-01", partner="A", object="t2", due_at="2026-08-10T00:00:00Z")
    rows = fx.scorecard(kpis=["task_completion_rate"], end=SEPTEMBER)
    july = value(rows, "task_completion_rate", "2026-07")
    # due in July: t1 (Jul 31 23:00Z), t2 (Jul 10) = 2; on time: t1 -> 50
    assert july.value == pytest.approx(50.0)
    assert (july.numerator, july.denominator) == (1, 2)
    august = value(rows, "task_completion_rate", "2026-08")
    assert august.value is None  # nothing due in August: null, not 0
    assert august.n == 0


# --- document_access_frequency -----------------------------------------------------------------


def test_document_access_frequency_per_active_partner_with_segments(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("C", type="reseller")
    fx.partner("B", type="referral")
    fx.partner("D", type="distributor")
    fx.partner("X", type="reseller", offboarded="2026-06-01")  # not in July
    for p in "ABX":
        fx.user(f"u{p}", p)
    fx.event("Document Viewed", "2026-07-02", user="uA", object="d1")
    fx.event("Document Viewed", "2026-07-03", user="uA", object="d2")
    fx.event("Document Downloaded", "2026-07-03", user="uA", object="d2")
    fx.event("Document Viewed", "2026-08-01", user="uA", object="d3")  # August
    fx.event("Logged In", "2026-07-04", user="uB")  # B active, no documents
    fx.event("Document Viewed", "2026-07-05", user="uX", object="d1")  # X not in P: not counted
    fx.event("Document Viewed", "2026-07-06", object="d9")  # no partner: whole program only
    rows = fx.scorecard(kpis=["document_access_frequency"], by="type")

    whole = value(rows, "document_access_frequency", "2026-07")
    # documents: A 3 + no-partner 1 = 4; active partners: A, B = 2 -> 2.0
    assert whole.value == pytest.approx(2.0)
    assert (whole.numerator, whole.denominator, whole.n) == (4, 2, 2)
    reseller = value(rows, "document_access_frequency", "2026-07", {"type": "reseller"})
    # reseller: A 3 (X out, the no-partner view is in no segment); active: A -> 3 / 1
    assert reseller.value == pytest.approx(3.0)
    assert (reseller.numerator, reseller.denominator) == (3, 1)
    referral = value(rows, "document_access_frequency", "2026-07", {"type": "referral"})
    assert referral.value == 0.0  # 0 documents / 1 active partner (B)
    distributor = value(rows, "document_access_frequency", "2026-07", {"type": "distributor"})
    assert distributor.value is None  # no active partner: 0 / 0 -> null
    assert distributor.n == 0


# --- announcement_reach ------------------------------------------------------------------------


def test_announcement_reach(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="reseller")
    fx.partner("C", type="referral")
    fx.partner("D", type="referral", onboarded="2026-08-01")  # not in July
    for p in "ABCD":
        fx.user(f"u{p}", p)
    fx.event("Announcement Published", "2026-06-30", object="an1")  # program-wide, not a view
    fx.event("Announcement Viewed", "2026-07-01", user="uA", object="an1")
    fx.event("Announcement Viewed", "2026-07-02", user="uA", object="an1")  # same partner again
    fx.event("Announcement Viewed", "2026-06-30 23:59:59", user="uB", object="an1")  # June
    fx.event("Logged In", "2026-07-05", user="uC")
    fx.event("Announcement Viewed", "2026-07-05", user="uD", object="an1")  # D not in July
    rows = fx.scorecard(kpis=["announcement_reach"], by="type")
    whole = value(rows, "announcement_reach", "2026-07")
    # partners in July: A B C = 3; with a view in July: A -> 100 / 3
    assert whole.value == pytest.approx(100 / 3)
    assert (whole.numerator, whole.denominator, whole.n) == (1, 3, 3)
    reseller = value(rows, "announcement_reach", "2026-07", {"type": "reseller"})
    assert reseller.value == pytest.approx(50.0)  # A of {A, B}
    referral = value(rows, "announcement_reach", "2026-07", {"type": "referral"})
    assert referral.value == 0.0  # none of {C}
    assert (referral.numerator, referral.denominator) == (0, 1)


# --- avg_session_minutes -----------------------------------------------------------------------


def test_avg_session_minutes_gap_rule_and_period_of_first_event(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    for u in ("u1", "u2", "u3", "u4"):
        fx.user(u, "A")
    fx.event("Logged In", "2026-07-01 10:00", user="u1")
    fx.event("Webinar Joined", "2026-07-01 10:30", user="u1")  # custom with a user: activity; gap 30 min
    fx.event("Task Completed", "2026-07-01 10:45", user="u1", object="t1")  # not activity: no bridge
    fx.event("Page Viewed", "2026-07-01 11:00:01", user="u1", path="/")  # gap 30 min 1 s: new session
    fx.event("Logged In", "2026-07-31 23:50", user="u2")
    fx.event("Page Viewed", "2026-08-01 00:10", user="u2", path="/")  # same session, kept by July
    fx.event("Logged In", "2026-06-30 23:45", user="u3")
    fx.event("Page Viewed", "2026-07-01 00:05", user="u3", path="/")  # session of June
    fx.event("Logged In", "2026-08-01", user="u4")  # one-event session in August
    rows = fx.scorecard(kpis=["avg_session_minutes"], end=SEPTEMBER)

    july = value(rows, "avg_session_minutes", "2026-07")
    # July sessions: u1 10:00-10:30 = 30, u1 11:00:01 alone = 0, u2 23:50-00:10 = 20 -> 50 / 3
    assert july.value == pytest.approx(50 / 3)
    assert july.n == 3
    assert july.unit == "minutes"
    # June: u3 23:45-00:05 = 20 -> previous 20
    assert july.previous == pytest.approx(20.0)
    assert july.change == pytest.approx(50 / 3 - 20)
    august = value(rows, "avg_session_minutes", "2026-08")
    # August sessions: u4 alone = 0 (u2's 00:10 belongs to July's session) -> 0 / 1
    assert august.value == 0.0
    assert august.n == 1
