"""Outcome KPIs (KPI-SPEC §5), computed by hand on tiny fixtures."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.kpi_fixtures import Fixture, value

# --- partner_churn_rate ------------------------------------------------------------------------


def test_partner_churn_rate_quarter(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    fx.partner("B", offboarded="2026-07-01")  # offboarded exactly at start: at start, and churned in Q3
    fx.partner("C", offboarded="2026-09-30 23:59:59")  # churned in Q3
    fx.partner("D", offboarded="2026-10-01")  # offboarded at end: churns in Q4
    fx.partner("E", onboarded="2026-07-01", offboarded="2026-08-15")  # not at start (onboarded at start)
    fx.partner("F", offboarded="2026-06-30 23:59:59")  # gone before start; churned in Q2
    fx.partner("G", onboarded="2026-06-30 23:59:59")  # at start
    rows = fx.scorecard(
        kpis=["partner_churn_rate"], grain="quarter", start=date(2026, 7, 1), end=date(2026, 10, 1)
    )
    assert [r.period for r in rows] == ["2026-Q3"]
    q3 = value(rows, "partner_churn_rate", "2026-Q3")
    assert (q3.period_start, q3.period_end) == (datetime(2026, 7, 1), datetime(2026, 10, 1))
    # at start (Jul 1): A B C D G = 5; offboarded in Q3: B, C = 2 -> 40
    assert q3.value == pytest.approx(40.0)
    assert (q3.numerator, q3.denominator, q3.n) == (2, 5, 5)
    # Q2: at Apr 1: A B C D F = 5 (E, G not yet onboarded); offboarded in Q2: F -> 20
    assert q3.previous == pytest.approx(20.0)
    assert q3.change == pytest.approx(20.0)


# --- partner_nps -------------------------------------------------------------------------------


def test_partner_nps_last_valid_response_per_user(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A")
    for u in ("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"):
        fx.user(u, "A")

    def survey(user, ts, **score):
        fx.event("Survey Responded", ts, user=user, partner=None if user else "A", **score)

    survey("u1", "2026-07-02", score=3)
    survey("u1", "2026-07-20", score=10)  # last: promoter
    survey("u2", "2026-07-05", score=9)
    survey("u2", "2026-07-25", score=6)  # last: detractor
    survey("u3", "2026-07-10", score=9)  # promoter
    survey("u4", "2026-07-11", score=10)  # promoter
    survey("u5", "2026-07-12", score=11)  # out of 0..10: ignored, u5 is no respondent
    survey("u6", "2026-07-01", score=0)  # detractor ...
    # reading: invalid responses are dropped before taking the last one, so u6 stays a detractor (0)
    survey("u6", "2026-07-30", score=-1)
    survey("u7", "2026-06-30", score=0)  # June
    survey("u7", "2026-08-01", score=10)  # August
    # reading: a score sent as a JSON string ("10") is not a number and is ignored
    survey("u8", "2026-07-15", score="10")
    survey(None, "2026-07-16", score=0)  # no user: ignored
    july = value(fx.scorecard(kpis=["partner_nps"]), "partner_nps", "2026-07")
    # respondents: u1 (10) u2 (6) u3 (9) u4 (10) u6 (0) = 5; promoters 3, detractors 2
    # -> 100 * (3/5 - 2/5) = 20; numerator = promoters - detractors = 1, denominator 5
    assert july.value == pytest.approx(20.0)
    assert (july.numerator, july.denominator, july.n) == (1, 5, 5)
    assert july.unit == "NPS"


# --- cost_to_serve -----------------------------------------------------------------------------


def test_cost_to_serve_per_partner(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="referral")
    fx.partner("X", type="reseller", offboarded="2026-06-01")  # not in July
    fx.event("Cost Recorded", "2026-07-01", partner="A", amount=100.0, category="support")
    fx.event("Cost Recorded", "2026-07-15", partner="A", amount=50.5, category="mdf")
    fx.event("Cost Recorded", "2026-07-16", partner="B", amount=20, category="support")
    fx.event("Cost Recorded", "2026-07-17", partner="X", amount=1000, category="support")  # X not in P
    fx.event("Cost Recorded", "2026-07-18", amount=30, category="platform")  # no partner: whole only
    fx.event("Cost Recorded", "2026-08-01", partner="A", amount=999, category="support")  # August
    rows = fx.scorecard(kpis=["cost_to_serve"], by="type")
    whole = value(rows, "cost_to_serve", "2026-07")
    # (100 + 50.5 + 20 + 30) / partners in P {A, B} 2 = 200.5 / 2 = 100.25
    assert whole.value == pytest.approx(100.25)
    assert whole.numerator == pytest.approx(200.5)
    assert (whole.denominator, whole.n) == (2, 2)
    reseller = value(rows, "cost_to_serve", "2026-07", {"type": "reseller"})
    assert reseller.value == pytest.approx(150.5)  # A 150.5 / {A} 1
    referral = value(rows, "cost_to_serve", "2026-07", {"type": "referral"})
    assert referral.value == pytest.approx(20.0)  # B 20 / {B} 1


# --- partner_revenue ---------------------------------------------------------------------------


def test_partner_revenue_sum_and_empty_month(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").user("uA", "A")
    fx.event("Deal Closed", "2026-07-01", partner="A", object="d1", amount=1000)
    fx.event("Deal Closed", "2026-07-31 23:59:59", partner="A", object="d2", amount=2500.5)
    fx.event("Deal Registered", "2026-07-02", user="uA", object="d3", amount=9999)  # not closed
    fx.event("Deal Closed", "2026-08-01", partner="A", object="d4", amount=700)  # August
    rows = fx.scorecard(kpis=["partner_revenue"], start=date(2026, 7, 1), end=date(2026, 10, 1))
    july = value(rows, "partner_revenue", "2026-07")
    assert july.value == pytest.approx(3500.5)  # 1000 + 2500.5
    assert july.n == 2  # deals
    assert july.numerator is None and july.denominator is None  # a sum, not a ratio
    assert july.band is None
    august = value(rows, "partner_revenue", "2026-08")
    assert august.value == pytest.approx(700.0)
    assert august.n == 1
    september = value(rows, "partner_revenue", "2026-09")
    assert september.value == 0.0  # a sum over nothing is 0, not null
    assert september.n == 0
    assert september.previous == pytest.approx(700.0)
    assert september.change == pytest.approx(-700.0)


# --- escalations -------------------------------------------------------------------------------


def test_escalations_count(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="referral")
    fx.event("Escalation Raised", "2026-07-01", partner="A")
    fx.event("Escalation Raised", "2026-07-31 23:59:59", partner="A")
    fx.event("Escalation Raised", "2026-07-15")  # no partner: whole program only
    fx.event("Escalation Raised", "2026-08-01", partner="B")  # August
    fx.event("Escalation Raised", "2026-06-30 23:59:59", partner="B")  # June
    rows = fx.scorecard(kpis=["escalations"], by="type")
    whole = value(rows, "escalations", "2026-07")
    assert whole.value == 3
    assert whole.n == 3
    assert whole.previous == 1  # June
    assert whole.change == 2
    assert whole.unit == "count"
    assert value(rows, "escalations", "2026-07", {"type": "reseller"}).value == 2
    assert value(rows, "escalations", "2026-07", {"type": "referral"}).value == 0
