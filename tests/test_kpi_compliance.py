"""Compliance KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.kpi_fixtures import SEPTEMBER, Fixture, value

# --- policy_ack_rate ---------------------------------------------------------------------------


def test_policy_ack_rate_pairs_and_program_wide_policies_in_segments(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="referral")
    fx.partner("C", type="reseller", offboarded="2026-07-31")  # not at end
    fx.partner("D", type="referral", onboarded="2026-08-01")  # not at end
    fx.user("uA", "A").user("uB", "B").user("uC", "C").user("uD", "D")

    def publish(policy, ts, **required):
        fx.event("Policy Published", ts, object=policy, **required)  # program-wide: no partner

    def ack(policy, user, ts):
        fx.event("Policy Acknowledged", ts, user=user, object=policy)

    publish("pol1", "2026-07-10", required=True)
    publish("pol2", "2026-03-01", required=True)
    publish("pol3", "2026-07-01", required="true")  # a string, not JSON true: not required
    publish("pol4", "2026-07-01", required=False)
    publish("pol5", "2026-08-01", required=True)  # published at end, not before
    publish("pol6", "2026-05-01", required=False)  # the first publication decides: not required
    publish("pol6", "2026-06-01", required=True)
    publish("pol7", "2026-07-01")  # no required property
    ack("pol1", "uA", "2026-07-05")  # before the publication: counts
    ack("pol2", "uA", "2026-08-01")  # at end, not before
    ack("pol2", "uB", "2026-03-05")
    ack("pol1", "uB", "2026-07-12")
    ack("pol3", "uA", "2026-07-02")
    ack("pol1", "uC", "2026-07-15")  # C is not at end
    ack("pol1", "uD", "2026-07-15")  # D is not at end
    rows = fx.scorecard(kpis=["policy_ack_rate"], by="type")

    whole = value(rows, "policy_ack_rate", "2026-07")
    # pairs: {A, B} x {pol1, pol2} = 4; acknowledged: (A,pol1) (B,pol2) (B,pol1) = 3 -> 75
    assert whole.value == pytest.approx(75.0)
    assert (whole.numerator, whole.denominator, whole.n) == (3, 4, 4)
    reseller = value(rows, "policy_ack_rate", "2026-07", {"type": "reseller"})
    # Policy Published has no partner but belongs to every segment: {A} x {pol1, pol2} = 2; acked 1 -> 50
    assert reseller.value == pytest.approx(50.0)
    assert (reseller.numerator, reseller.denominator) == (1, 2)
    referral = value(rows, "policy_ack_rate", "2026-07", {"type": "referral"})
    assert referral.value == pytest.approx(100.0)  # {B} x {pol1, pol2}: both acked
    assert (referral.numerator, referral.denominator) == (2, 2)


# --- submission_accuracy -----------------------------------------------------------------------


def test_submission_accuracy(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")

    def review(obj, ts, **outcome):
        fx.event("Compliance Document Reviewed", ts, partner="A", object=obj, **outcome)

    review("s1", "2026-07-01", outcome="accepted")
    review("s2", "2026-07-02", outcome="accepted")
    review("s3", "2026-07-31 23:59:59", outcome="accepted")
    review("s4", "2026-07-03", outcome="rejected")
    review("s5", "2026-07-04", outcome="Accepted")  # case-sensitive: not "accepted"
    review("s6", "2026-07-05")  # no outcome: reviewed, not accepted
    review("s7", "2026-08-01", outcome="accepted")  # August
    july = value(fx.scorecard(kpis=["submission_accuracy"]), "submission_accuracy", "2026-07")
    # reviewed in July: s1-s6 = 6; accepted: s1 s2 s3 = 3 -> 50
    assert july.value == pytest.approx(50.0)
    assert (july.numerator, july.denominator, july.n) == (3, 6, 6)


# --- overdue_compliance_tasks ------------------------------------------------------------------


def test_overdue_compliance_tasks_at_end(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")

    def assign(task, kind="compliance", ts="2026-06-01", **due):
        fx.event("Task Assigned", ts, partner="A", object=task, kind=kind, **due)

    def done(task, ts, event="Task Completed"):
        fx.event(event, ts, partner="A", object=task)

    assign("c1", due_at="2026-07-10T00:00:00Z")  # overdue
    assign("c2", due_at="2026-07-10T00:00:00Z")
    done("c2", "2026-07-12")  # late but completed before end
    assign("c3", due_at="2026-07-31T23:59:59Z")  # due < end: overdue
    assign("c4", due_at="2026-08-01T00:00:00Z")  # due at end: not yet overdue in July
    assign("c5", ts="2026-06-15")  # no due_at: due Jun 15 + 30 d = Jul 15: overdue
    assign("c6", due_at="2026-07-05T00:00:00Z")
    done("c6", "2026-08-01")  # completed at end, not before: overdue in July
    assign("c7", due_at="2026-07-05T00:00:00Z")
    done("c7", "2026-07-06", event="Task Cancelled")  # cancelled: not overdue
    assign("c8", kind="training", due_at="2026-07-05T00:00:00Z")  # not compliance
    assign("c9", kind="general", due_at="2026-07-05T00:00:00Z")  # the first Task Assigned decides
    assign("c9", ts="2026-06-10", due_at="2026-07-05T00:00:00Z")
    assign("c10", due_at="2026-03-01T00:00:00Z")  # long overdue
    done("c10", "2026-08-15")
    rows = fx.scorecard(kpis=["overdue_compliance_tasks"], end=SEPTEMBER)
    july = value(rows, "overdue_compliance_tasks", "2026-07")
    # at Aug 1: c1 c3 c5 c6 c10 = 5
    assert july.value == 5
    assert july.n == 5
    august = value(rows, "overdue_compliance_tasks", "2026-08")
    # at Sep 1: c1 c3 c4 c5 = 4 (c6 completed Aug 1, c10 completed Aug 15)
    assert august.value == 4


# --- audit_findings ----------------------------------------------------------------------------


def test_audit_findings_by_month_and_segment(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="referral")
    def finding(obj, ts, area, partner=None):
        fx.event("Audit Finding Recorded", ts, partner=partner, object=obj, area=area, severity="low")

    finding("f1", "2026-07-03", "partner_access", partner="A")
    finding("f2", "2026-07-04", "partner_access")  # no partner: whole program only
    finding("f3", "2026-07-05", "security", partner="B")  # another area
    finding("f4", "2026-08-01", "partner_access", partner="B")  # August
    rows = fx.scorecard(kpis=["audit_findings"], by="type")
    whole = value(rows, "audit_findings", "2026-07")
    assert whole.value == 2  # f1, f2 (f3 wrong area, f4 August)
    assert whole.n == 2
    assert value(rows, "audit_findings", "2026-07", {"type": "reseller"}).value == 1  # f1
    assert value(rows, "audit_findings", "2026-07", {"type": "referral"}).value == 0


def test_audit_findings_year_grain_and_previous_year(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2025-01-01")
    for obj, ts in (("f1", "2026-01-01"), ("f2", "2026-12-31 23:59:59"), ("f3", "2026-06-15")):
        fx.event("Audit Finding Recorded", ts, partner="A", object=obj, area="partner_access")
    fx.event("Audit Finding Recorded", "2025-12-31 23:59:59", partner="A", object="f0", area="partner_access")
    fx.event("Audit Finding Recorded", "2027-01-01", partner="A", object="f9", area="partner_access")
    rows = fx.scorecard(kpis=["audit_findings"], grain="year", start=date(2026, 1, 1), end=date(2027, 1, 1))
    assert [r.period for r in rows] == ["2026"]
    year = value(rows, "audit_findings", "2026")
    assert (year.period_start, year.period_end) == (datetime(2026, 1, 1), datetime(2027, 1, 1))
    assert year.value == 3  # f1, f2, f3
    assert year.previous == 1  # 2025: f0
    assert year.change == 2  # 3 - 1
