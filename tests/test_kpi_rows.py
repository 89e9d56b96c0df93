"""Result rows (KPI-SPEC §6): the periods returned, labels, segments, units, nulls and the JSON shape."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.kpi_fixtures import SEPTEMBER, Fixture, segments, value

# reading: the unit of each row is spelled exactly as in the unit column of the §5 catalog
UNITS = {
    "portal_usage_rate": "%",
    "active_users_per_partner": "users per partner",
    "active_partner_rate": "%",
    "login_frequency": "logins per user",
    "first_login_rate": "%",
    "time_to_first_action": "days",
    "stickiness": "%",
    "task_completion_rate": "%",
    "document_access_frequency": "per active partner",
    "announcement_reach": "%",
    "avg_session_minutes": "minutes",
    "manual_touches_per_partner": "per partner",
    "onboarding_days": "days",
    "approval_cycle_days": "days",
    "reminders_per_task": "per task",
    "task_abandonment_rate": "%",
    "resubmission_rate": "%",
    "support_requests_per_partner": "per partner",
    "repeat_question_rate": "%",
    "inactive_partners_with_access": "partners",
    "access_review_completion_rate": "%",
    "time_to_revoke_hours": "hours",
    "orphaned_grants": "grants",
    "access_incidents": "incidents",
    "policy_ack_rate": "%",
    "submission_accuracy": "%",
    "overdue_compliance_tasks": "tasks",
    "audit_findings": "findings",
    "partner_churn_rate": "%",
    "partner_nps": "NPS",
    "cost_to_serve": "currency",
    "partner_revenue": "currency",
    "escalations": "count",
}

# One partner onboarded 2026-01-01, no user, no event, July 2026: (value, n) of every KPI.
# Ratios over nothing are null with n 0; counts and sums over nothing are 0; per-partner KPIs are 0 / 1.
EMPTY_JULY = {
    "portal_usage_rate": (None, 0),  # no users in P: 0 / 0
    "active_users_per_partner": (0.0, 1),  # 0 active users / 1 partner
    "active_partner_rate": (0.0, 1),
    "login_frequency": (None, 0),
    "first_login_rate": (None, 0),  # no users at end
    "time_to_first_action": (None, 0),
    "stickiness": (None, 0),
    "task_completion_rate": (None, 0),
    "document_access_frequency": (None, 0),  # no active partner
    "announcement_reach": (0.0, 1),
    "avg_session_minutes": (None, 0),
    "manual_touches_per_partner": (0.0, 1),
    "onboarding_days": (None, 0),
    "approval_cycle_days": (None, 0),
    "reminders_per_task": (None, 0),
    "task_abandonment_rate": (None, 0),
    "resubmission_rate": (None, 0),
    "support_requests_per_partner": (0.0, 1),
    "repeat_question_rate": (None, 0),
    "inactive_partners_with_access": (0, 0),
    "access_review_completion_rate": (None, 0),
    "time_to_revoke_hours": (None, 0),
    "orphaned_grants": (0, 0),
    "access_incidents": (0, 0),
    "policy_ack_rate": (None, 0),
    "submission_accuracy": (None, 0),
    "overdue_compliance_tasks": (0, 0),
    "audit_findings": (0, 0),
    "partner_churn_rate": (0.0, 1),  # 0 offboarded / 1 partner at start
    "partner_nps": (None, 0),
    "cost_to_serve": (0.0, 1),  # sum over nothing 0 / 1 partner
    "partner_revenue": (0.0, 0),  # sum over nothing, 0 deals
    "escalations": (0, 0),
}


def test_every_kpi_on_an_empty_program_null_vs_zero(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    rows = fx.scorecard()  # kpis=None: the whole catalog
    assert sorted(r.kpi for r in rows) == sorted(UNITS)  # one row per KPI, 33 of them
    problems = []
    for kpi, (expected, n) in EMPTY_JULY.items():
        got = value(rows, kpi, "2026-07")
        if (got.value, got.n) != (expected, n) or got.unit != UNITS[kpi]:
            problems.append(f"{kpi}: value {got.value!r} n {got.n!r} unit {got.unit!r}")
        expected_band = "low" if kpi == "active_partner_rate" else None  # a null usage share has no band
        if got.band != expected_band:
            problems.append(f"{kpi}: band {got.band!r}, expected {expected_band!r}")
    assert problems == []


@pytest.mark.parametrize(
    ("start", "end", "periods"),
    [
        (date(2026, 7, 15), date(2026, 8, 1), ["2026-07"]),  # August starts at end: not returned
        (date(2026, 7, 15), date(2026, 8, 2), ["2026-07", "2026-08"]),  # August starts before end
        (date(2026, 7, 1), SEPTEMBER, ["2026-07", "2026-08"]),
    ],
)
def test_months_returned_from_the_one_containing_start(tmp_path, start, end, periods):
    fx = Fixture(tmp_path)
    fx.partner("A")
    rows = fx.scorecard(kpis=["escalations"], start=start, end=end)
    assert [r.period for r in rows] == periods


def test_iso_week_labels_across_the_year_end(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.event("Escalation Raised", "2027-01-03 23:59:59", partner="A")  # Sunday: 2026-W53
    fx.event("Escalation Raised", "2027-01-04", partner="A")  # Monday: 2027-W01
    fx.event("Escalation Raised", "2027-01-05", partner="A")
    # 2027-01-01 is a Friday in ISO week 2026-W53 (Mon 2026-12-28 .. Sun 2027-01-03)
    rows = fx.scorecard(kpis=["escalations"], grain="week", start=date(2027, 1, 1), end=date(2027, 1, 5))
    assert [r.period for r in rows] == ["2026-W53", "2027-W01"]
    w53, w01 = rows
    assert (w53.period_start, w53.period_end) == (datetime(2026, 12, 28), datetime(2027, 1, 4))
    assert (w01.period_start, w01.period_end) == (datetime(2027, 1, 4), datetime(2027, 1, 11))
    assert (w53.value, w01.value) == (1, 2)
    assert w01.previous == 1  # W53
    assert w01.change == 1


def test_quarter_and_year_labels(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    quarters = fx.scorecard(
        kpis=["escalations"], grain="quarter", start=date(2026, 8, 15), end=date(2026, 10, 2)
    )
    assert [(r.period, r.period_start, r.period_end) for r in quarters] == [
        ("2026-Q3", datetime(2026, 7, 1), datetime(2026, 10, 1)),
        ("2026-Q4", datetime(2026, 10, 1), datetime(2027, 1, 1)),
    ]
    years = fx.scorecard(kpis=["escalations"], grain="year", start=date(2026, 3, 1), end=date(2026, 12, 31))
    assert [(r.period, r.period_start, r.period_end) for r in years] == [
        ("2026", datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ]


def test_segments_every_period_even_when_empty(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="referral")
    fx.partner("C", type="")  # empty type: in no segment, still in the whole program
    fx.partner("D", type="distributor", onboarded="2026-08-15")  # no partner of its segment in July
    fx.user("uA", "A").user("uC", "C")
    fx.event("Logged In", "2026-07-02", user="uA")
    fx.event("Logged In", "2026-07-03", user="uC")
    rows = fx.scorecard(kpis=["active_partner_rate"], end=SEPTEMBER, by="type")
    expected_segments = [{}, {"type": "distributor"}, {"type": "referral"}, {"type": "reseller"}]
    assert segments(rows, "active_partner_rate", "2026-07") == expected_segments
    assert segments(rows, "active_partner_rate", "2026-08") == expected_segments
    assert len(rows) == 8  # 2 periods x (whole program + 3 segments)

    whole = value(rows, "active_partner_rate", "2026-07")
    # July: partners A B C = 3 (D onboarded Aug 15); active A, C -> 66.67, moderate
    assert whole.value == pytest.approx(200 / 3)
    assert whole.band == "moderate"
    reseller = value(rows, "active_partner_rate", "2026-07", {"type": "reseller"})
    assert (reseller.value, reseller.band) == (pytest.approx(100.0), "strong")
    referral = value(rows, "active_partner_rate", "2026-07", {"type": "referral"})
    assert (referral.value, referral.band) == (0.0, "low")
    distributor = value(rows, "active_partner_rate", "2026-07", {"type": "distributor"})
    # reading: a segment with no partners in the period gets a row with a null value and no band
    assert (distributor.value, distributor.n, distributor.band) == (None, 0, None)
    august_distributor = value(rows, "active_partner_rate", "2026-08", {"type": "distributor"})
    assert (august_distributor.value, august_distributor.n) == (0.0, 1)  # D in P, inactive
    assert august_distributor.previous is None  # July was null
    assert august_distributor.change is None
    august = value(rows, "active_partner_rate", "2026-08")
    assert august.value == 0.0  # A B C D = 4 partners, nobody active
    assert august.previous == pytest.approx(200 / 3)
    assert august.change == pytest.approx(-200 / 3)


def test_previous_and_change_null_when_the_period_before_is_null(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-07-01").user("uA", "A")  # nobody in June
    fx.event("Logged In", "2026-07-02", user="uA")
    july = value(fx.scorecard(kpis=["active_partner_rate"]), "active_partner_rate", "2026-07")
    assert july.value == pytest.approx(100.0)
    assert july.previous is None  # June: 0 / 0
    assert july.change is None


def test_row_json_shape(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="reseller").partner("C", type="reseller")
    fx.user("uA", "A")
    fx.event("Logged In", "2026-07-02", user="uA")
    rows = fx.scorecard(kpis=["active_partner_rate"], by="type")
    as_json = value(rows, "active_partner_rate", "2026-07", {"type": "reseller"}).to_json()
    assert list(as_json) == [
        "kpi", "period", "period_start", "period_end", "segment", "value",
        "numerator", "denominator", "n", "unit", "band", "previous", "change", "status", "status_basis",
    ]
    assert as_json["period_start"] == "2026-07-01T00:00:00Z"
    assert as_json["period_end"] == "2026-08-01T00:00:00Z"
    assert as_json["segment"] == {"type": "reseller"}
    # 100 * 1 / 3, not rounded
    assert as_json["value"] == pytest.approx(100 / 3, rel=1e-12)
    assert (as_json["numerator"], as_json["denominator"], as_json["n"]) == (1, 3, 3)
    assert as_json["band"] == "low"
    # June: 3 partners, nobody active -> 0; change 33.33
    assert as_json["previous"] == 0.0
    assert as_json["change"] == pytest.approx(100 / 3)
    # the built-in program target (75 from 2026-01-01) applies to the segment: 33.3 is 41.7 short, beyond 7.5
    assert (as_json["status"], as_json["status_basis"]) == ("poor", "target")
