"""Trends and baselines (issue 4, point 1), computed by hand on tiny fixtures."""

from __future__ import annotations

from datetime import date

import pytest

from partnerkpi.errors import UsageError
from partnerkpi.insights.trends import relative_change, trend_direction, trends
from tests.kpi_fixtures import AUGUST, JULY, Fixture, value


def one(items, kpi, period, segment=None):
    found = [t for t in items if t.kpi == kpi and t.period == period and t.segment == (segment or {})]
    assert len(found) == 1, found
    return found[0]


def login(fx, user, ts):
    fx.event("Logged In", ts, user=user)


def test_year_ago_is_twelve_months_back_not_thirteen(tmp_path):
    fx = Fixture(tmp_path)
    for p in "ABCD":
        fx.partner(p, onboarded="2025-01-01")
        fx.user(f"u{p}", p, created="2025-01-01")
    for p in "ABCD":  # 2025-06, 13 months back: all 4 active (100 %): must not be taken as the year-ago value
        login(fx, f"u{p}", "2025-06-15")
    login(fx, "uA", "2025-07-15")  # 2025-07, 12 months back: 1 of 4 = 25 %
    login(fx, "uA", "2026-06-15")  # 2026-06: A, B = 50 %
    login(fx, "uB", "2026-06-15")
    for p in "ABC":  # 2026-07: A, B, C = 75 %
        login(fx, f"u{p}", "2026-07-15")
    items = trends(fx.hub(), "month", JULY, AUGUST, kpis=["active_partner_rate"])

    assert [(t.kpi, t.period) for t in items] == [("active_partner_rate", "2026-07")]  # only the range
    t = items[0]
    assert t.value == pytest.approx(75.0)
    assert (t.year_ago_period, t.year_ago) == ("2025-07", pytest.approx(25.0))
    assert t.change_vs_year == pytest.approx(50.0)  # 75 - 25
    assert t.change_vs_year_pct == pytest.approx(200.0)  # 100 * 50 / 25
    assert (t.previous, t.change, t.change_pct) == (pytest.approx(50.0), pytest.approx(25.0), pytest.approx(50.0))
    # default baseline: the first period of the range, i.e. July itself
    assert (t.baseline_period, t.baseline, t.change_vs_baseline, t.change_vs_baseline_pct) == (
        "2026-07", pytest.approx(75.0), 0.0, 0.0)
    # window 2026-05 (0 %), 2026-06 (50 %), 2026-07 (75 %): slope +37.5 per month, rising: improving
    assert t.direction == "improving"
    # the §6 rows are untouched: the trend repeats the scorecard's value, previous and change
    row = value(fx.scorecard(kpis=["active_partner_rate"]), "active_partner_rate", "2026-07")
    assert (t.value, t.previous, t.change) == (row.value, row.previous, row.change)


@pytest.fixture
def support(tmp_path):
    """Two partners; Support Requested per month: Feb 4, Mar 0, Apr 0, May 3, Jun 2, Jul 1 (all by ua)."""
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B")
    fx.user("ua", "A")
    counts = {"2026-02": 4, "2026-05": 3, "2026-06": 2, "2026-07": 1}
    for month, n in counts.items():
        for i in range(n):
            fx.event("Support Requested", f"{month}-{10 + i:02d}", user="ua", object=f"t{month}-{i}", topic=f"q{i}")
    return fx


def test_baseline_the_user_picks_and_a_down_kpi(support):
    items = trends(support.hub(), "month", date(2026, 5, 1), AUGUST, kpis=["support_requests_per_partner"],
                   baseline="2026-02")
    assert [t.period for t in items] == ["2026-05", "2026-06", "2026-07"]
    may, june, july = items
    # per partner: Feb 4/2 = 2.0 (the baseline), May 3/2 = 1.5, June 2/2 = 1.0, July 1/2 = 0.5
    assert {t.baseline_period for t in items} == {"2026-02"} and july.baseline == pytest.approx(2.0)
    assert july.value == pytest.approx(0.5)
    assert july.change_vs_baseline == pytest.approx(-1.5)  # 0.5 - 2.0
    assert july.change_vs_baseline_pct == pytest.approx(-75.0)  # 100 * -1.5 / 2.0
    assert may.change_vs_baseline == pytest.approx(-0.5)  # 1.5 - 2.0
    assert may.change_vs_baseline_pct == pytest.approx(-25.0)
    # July: window May 1.5, June 1.0, July 0.5: slope -0.5 per month; fewer requests is better: improving
    assert july.direction == "improving"
    # June: window Apr 0, May 1.5, June 1.0: slope (1.0 - 0) / 2 = +0.5: more requests: worsening
    assert june.direction == "worsening"
    # May: window Mar 0, Apr 0, May 1.5: slope +0.75: worsening
    assert may.direction == "worsening"
    # a year earlier there were no partners (onboarded 2026-01-01): no value, so no change against it
    assert (july.year_ago_period, july.year_ago, july.change_vs_year, july.change_vs_year_pct) == (
        "2025-07", None, None, None)
    # previous period: June 1.0 -> July 0.5: -0.5, -50 %
    assert (july.change, july.change_pct) == (pytest.approx(-0.5), pytest.approx(-50.0))


def test_default_baseline_is_the_first_period_and_window_is_a_parameter(support):
    items = trends(support.hub(), "month", date(2026, 5, 1), AUGUST, kpis=["support_requests_per_partner"],
                   window=2)
    july = one(items, "support_requests_per_partner", "2026-07")
    assert (july.baseline_period, july.baseline) == ("2026-05", pytest.approx(1.5))
    assert july.change_vs_baseline == pytest.approx(-1.0)  # 0.5 - 1.5
    assert july.change_vs_baseline_pct == pytest.approx(-200 / 3)  # 100 * -1.0 / 1.5
    # window 2 for May: Apr 0 -> May 1.5: worsening; change against a 0 base has no percentage
    may = one(items, "support_requests_per_partner", "2026-05")
    assert (may.window, may.direction, may.change, may.change_pct) == (2, "worsening", pytest.approx(1.5), None)


def test_flat_and_not_enough_data_by_segment(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="reseller")
    fx.partner("C", type="agency", onboarded="2026-07-01")  # no agency before July: null values
    fx.user("ua", "A").user("uc", "C", created="2026-07-01")
    for month in ("2026-05", "2026-06", "2026-07"):
        login(fx, "ua", f"{month}-15")
    login(fx, "uc", "2026-07-15")
    items = trends(fx.hub(), "month", JULY, AUGUST, by="type", kpis=["active_partner_rate"])

    reseller = one(items, "active_partner_rate", "2026-07", {"type": "reseller"})
    # resellers: 1 of 2 active in May, June and July = 50, 50, 50: slope 0: flat
    assert reseller.value == pytest.approx(50.0) and reseller.direction == "flat"
    agency = one(items, "active_partner_rate", "2026-07", {"type": "agency"})
    # agency: May and June have no partners (null), July 1 of 1 = 100: one value: not enough data
    assert (agency.value, agency.previous, agency.change_pct) == (pytest.approx(100.0), None, None)
    assert agency.direction is None
    program = one(items, "active_partner_rate", "2026-07")
    # program: May 1/2 = 50, June 1/2 = 50, July 2/3 = 66.7: slope +8.3 per month: improving
    assert program.value == pytest.approx(200 / 3) and program.direction == "improving"


@pytest.mark.parametrize(
    ("values", "direction", "expected"),
    [
        ([100.0, 100.5, 101.0], "up", "flat"),  # slope 0.5 <= 1 % of the mean 100.5: flat
        ([100.0, 102.0, 104.0], "up", "improving"),  # slope 2 > 1.02: rising, up KPI
        ([100.0, 102.0, 104.0], "down", "worsening"),  # the same rise for a down KPI
        ([10.0, 8.0, 6.0], "down", "improving"),  # falling churn is improving
        ([10.0, 8.0, 6.0], "up", "worsening"),
        ([0.0, 0.0, 0.0], "up", "flat"),  # all zero: slope 0
        ([5.0, None, 6.0], "up", "improving"),  # a gap keeps its spacing: slope (6 - 5) / 2
        ([None, None, 6.0], "up", None),  # one value: not enough data
        ([5.0, 6.0, None], "up", None),  # no value for the period itself
        ([], "up", None),
    ],
)
def test_trend_direction_rule(values, direction, expected):
    assert trend_direction(values, direction) == expected


def test_relative_change_needs_a_nonzero_base():
    assert relative_change(75.0, 25.0) == pytest.approx(200.0)
    assert relative_change(-5.0, -10.0) == pytest.approx(50.0)  # NPS -10 -> -5 is +50 % (base taken as |base|)
    assert relative_change(5.0, 0.0) is None
    assert relative_change(None, 3.0) is None


def test_bad_baseline_and_window_are_usage_errors(support):
    with pytest.raises(UsageError, match="is a quarter but the trends are by month"):
        trends(support.hub(), "month", JULY, AUGUST, kpis=["support_requests_per_partner"], baseline="2026-Q1")
    with pytest.raises(UsageError, match="not a period label"):
        trends(support.hub(), "month", JULY, AUGUST, kpis=["support_requests_per_partner"], baseline="last year")
    with pytest.raises(UsageError, match="window"):
        trends(support.hub(), "month", JULY, AUGUST, kpis=["support_requests_per_partner"], window=1)
