"""Impact analysis: the statistics by hand, the per-partner views on tiny programs, the CLI, and the demo's story."""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from partnerkpi.cli import insights as cli_impact
from partnerkpi.errors import UsageError
from partnerkpi.insights.impact import before_after, co_movement, lagged_correlation, risers_vs_fallers
from partnerkpi.insights.stats import (
    changes,
    difference_of_means,
    fisher_interval,
    lagged_pearson,
    paired_relative_change,
    pearson,
)
from tests.kpi_fixtures import Fixture

JUNE, AUGUST, OCTOBER = date(2026, 6, 1), date(2026, 8, 1), date(2026, 10, 1)
BEFORE, AFTER = (JUNE, AUGUST), (AUGUST, OCTOBER)


# -- the statistics ---------------------------------------------------------------------------------
def test_pearson_by_hand():
    # deviations (-1, 0, 1) and (-1, 1, 0): covariance 1, variances 2 and 2 -> r = 1 / 2
    assert pearson([1, 2, 3], [1, 3, 2]) == (pytest.approx(0.5), 3)
    assert pearson([1, None, 2, 3, 9], [1, 5, 3, 2, None]) == (pytest.approx(0.5), 3)  # pairs with a null dropped
    assert pearson([1, 2, 3], [4, 4, 4]) == (None, 3)  # no variation: no correlation
    assert pearson([1, 2], [2, 1]) == (None, 2)  # too few pairs


def test_lagged_pearson_finds_a_known_lag():
    x = [1.0, 4.0, 2.0, 8.0, 5.0, 7.0, 3.0, 6.0]
    y = [0.0, 9.0, *x[:6]]  # y follows x two periods later
    found = {lag: (r, n) for lag, r, n in lagged_pearson(x, y, [0, 1, 2, 3])}
    assert found[2] == (pytest.approx(1.0), 6)
    assert all(abs(found[lag][0]) < 0.9 for lag in (0, 1, 3))
    assert changes([1.0, 3.0, None, 4.0]) == [None, 2.0, None, None]
    assert lagged_pearson(x, y, [8]) == [(8, None, 0)]


def test_difference_of_means_and_its_bootstrap_interval():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0])
    point, ci = difference_of_means(a, b, seed=11, n_boot=500)
    assert point == pytest.approx(2.0 - 0.5)
    assert ci.low <= point <= ci.high and ci.low < ci.high
    # resampled means of a lie in [1, 3], of b in [0, 1]: the difference in [0, 3]
    assert 0.0 <= ci.low and ci.high <= 3.0
    x, y = np.arange(40.0) % 7, np.arange(30.0) % 5
    ci = difference_of_means(x, y, seed=11, n_boot=500)[1]
    again = difference_of_means(x, y, seed=11, n_boot=500)[1]
    assert (again.low, again.high) == (ci.low, ci.high)  # same seed, same interval
    other = difference_of_means(x, y, seed=12, n_boot=500)[1]
    assert (other.low, other.high) != (ci.low, ci.high)
    assert difference_of_means(a, np.array([]), seed=1)[0] is None


def test_paired_relative_change_and_fisher_interval():
    point, ci = paired_relative_change(np.array([100.0, 200.0]), np.array([150.0, 250.0]), seed=3, n_boot=300)
    assert point == pytest.approx(400 / 300 - 1)
    assert ci.low <= point <= ci.high
    assert ci.excludes_zero  # every resample: 150/100, 250/200 or 400/300, all above 1
    r_ci = fisher_interval(0.5, 20)
    assert r_ci.low < 0.5 < r_ci.high and r_ci.low == pytest.approx(0.0738, abs=1e-3)
    assert fisher_interval(0.5, 3).low is None


# -- risers vs fallers and before/after on a tiny program -------------------------------------------
ACTIVE = {  # partner: months with a login; June and July are "before", August and September "after"
    "R1": ["07", "08", "09"],  # before 50, after 100: rose
    "R2": ["09"],  # 0 -> 50: rose
    "F1": ["06", "07", "08"],  # 100 -> 50: fell
    "F2": ["06"],  # 50 -> 0: fell
    "T1": ["06", "08"],  # 50 -> 50: unchanged
    "N1": ["08"],  # 0 -> 50: rose, but no revenue before
    "X": ["08"],  # onboarded in August: no KPI before
    "Y": [],  # 0 -> 0: unchanged
    "Z": ["06"],  # offboarded in July: no KPI after
}
REVENUE = {  # partner: {month: Deal Closed amount}
    "R1": {"06": 1000, "08": 600, "09": 900},  # mean per month 500 -> 750: +50 %
    "R2": {"06": 1000, "07": 1000, "08": 2000, "09": 2000},  # 1000 -> 2000: +100 %
    "F1": {"06": 1000, "08": 400, "09": 400},  # 500 -> 400: -20 %
    "F2": {"06": 250, "07": 250, "09": 500},  # 250 -> 250: 0 %
    "T1": {"06": 100},  # 50 -> 0
    "N1": {"08": 700},  # 0 -> 350
    "Z": {"08": 5000},  # after offboarding: not in the population, never counted
}


def build_program(fx: Fixture) -> Fixture:
    for p in ACTIVE:
        onboarded = "2026-08-10" if p == "X" else "2026-01-01"
        fx.partner(p, onboarded=onboarded, offboarded="2026-07-10" if p == "Z" else None)
        fx.user(p.lower(), p)
    for p, months in ACTIVE.items():
        for m in months:
            fx.event("Logged In", f"2026-{m}-12 10:00", user=p.lower())
    for p, amounts in REVENUE.items():
        for m, amount in amounts.items():
            fx.event("Deal Closed", f"2026-{m}-15", partner=p, object=f"deal-{p}-{m}", amount=amount)
    fx.event("Logged In", "2026-09-20", user="r1")
    fx.event("Data Checkpoint", "2026-09-30 12:00")  # the data covers September (no KPI counts this event)
    return fx


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    fx = build_program(Fixture(tmp_path_factory.mktemp("impact")))
    yield fx
    fx.hub().close()


def test_risers_vs_fallers_by_hand(program):
    result = risers_vs_fallers(program.hub(), "active_partner_rate", "partner_revenue", BEFORE, AFTER,
                               grain="month", seed=5, n_boot=1000)
    assert (result.risers.n, result.fallers.n) == (2, 2)
    assert result.risers.kpi_change == pytest.approx(50.0) and result.fallers.kpi_change == pytest.approx(-50.0)
    assert result.risers.outcome_change == pytest.approx((0.5 + 1.0) / 2)
    assert result.fallers.outcome_change == pytest.approx((-0.2 + 0.0) / 2)
    assert result.difference == pytest.approx(0.75 - (-0.1))
    # pooled: risers (750 + 2000) / (500 + 1000) - 1; fallers (400 + 250) / (500 + 250) - 1
    assert result.pooled_difference == pytest.approx(2750 / 1500 - 650 / 750)
    assert result.excluded == {"tie": 2, "no_kpi": 2, "no_outcome": 1}  # T1, Y | X, Z | N1
    ci = result.interval
    assert ci.low <= result.difference <= ci.high
    assert result.pooled_interval.low <= result.pooled_difference <= result.pooled_interval.high
    again = risers_vs_fallers(program.hub(), "active_partner_rate", "partner_revenue", BEFORE, AFTER,
                              grain="month", seed=5, n_boot=1000)
    assert (again.interval.low, again.interval.high) == (ci.low, ci.high)
    groups = {p["partner_id"]: p["group"] for p in result.partners}
    assert groups == {"R1": "riser", "R2": "riser", "F1": "faller", "F2": "faller", "T1": None, "N1": None,
                      "X": None, "Y": None, "Z": None}
    body = result.to_json()
    assert body["difference"] == pytest.approx(0.85) and body["excluded"]["tie"] == 2
    json.dumps(body, allow_nan=False)


def test_before_after_by_hand(program):
    result = before_after(program.hub(), "partner_revenue", AUGUST, 2, "month", seed=1, n_boot=500,
                          bounds=(JUNE, OCTOBER))
    assert (result.before, result.after, result.periods) == (BEFORE, AFTER, (2, 2))
    # pooled over partner-months in the population: before (June, July) R1 R2 F1 F2 T1 N1 Y Z (Z left on
    # July 10) = 16 partner-months, revenue 1000 + 2000 + 1000 + 500 + 100 = 4600 -> 287.5 per partner-month;
    # after (August, September) R1 R2 F1 F2 T1 N1 Y X (X joined on August 10) = 16 partner-months, revenue
    # 1500 + 4000 + 800 + 500 + 700 = 7500 (Z's August deal is after it left) -> 468.75.
    assert result.partners == 9
    assert result.mean_before == pytest.approx(4600 / 16) and result.mean_after == pytest.approx(7500 / 16)
    assert result.relative_change == pytest.approx(7500 / 4600 - 1)
    assert result.interval.low <= result.relative_change <= result.interval.high
    assert result.program_before == [pytest.approx(3350.0), pytest.approx(1250.0)]
    assert json.loads(json.dumps(result.to_json()))["relative_change"] == pytest.approx(7500 / 4600 - 1)


def test_before_after_window_edges(program):
    # a date inside August: August belongs to neither side; the window is clipped to the bounds
    result = before_after(program.hub(), "partner_revenue", date(2026, 8, 15), 3, "month", bounds=(JUNE, OCTOBER))
    assert (result.before, result.after, result.periods) == ((JUNE, AUGUST), (date(2026, 9, 1), OCTOBER), (2, 1))
    assert len(result.program_before) == 2 and len(result.program_after) == 1
    with pytest.raises(UsageError, match="no whole month on both sides"):
        before_after(program.hub(), "partner_revenue", JUNE, 2, "month", bounds=(JUNE, OCTOBER))


# -- correlations over time ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series_program(tmp_path_factory):
    """Four partners, January..June 2026: 1, 3, 2, 4, 1, 2 of them active; each month's revenue is
    1000 × the active partners of the month before (500 in January)."""
    fx = Fixture(tmp_path_factory.mktemp("series"))
    active = [1, 3, 2, 4, 1, 2]
    for i in range(4):
        fx.partner(f"P{i}").user(f"u{i}", f"P{i}")
    for m, k in enumerate(active):
        for i in range(k):
            fx.event("Logged In", f"2026-{m + 1:02d}-10", user=f"u{i}")
        amount = 500 if m == 0 else 1000 * active[m - 1]
        fx.event("Deal Closed", f"2026-{m + 1:02d}-20", partner="P0", object=f"d{m}", amount=amount)
    yield fx
    fx.hub().close()


def test_lagged_correlation_finds_the_one_month_lag(series_program):
    hub = series_program.hub()
    result = lagged_correlation(hub, "active_partner_rate", "partner_revenue", "month", date(2026, 1, 1),
                                date(2026, 7, 1))
    by_lag = {c.lag: c for c in result.lags}
    assert result.method == "changes"
    # changes of the rate (+50, -25, +50, -75, +25) lead the revenue's (+2000, -1000, +2000, -3000) by one month
    assert by_lag[1].r == pytest.approx(1.0) and by_lag[1].n == 4
    assert abs(by_lag[0].r) < 0.9
    assert result.strongest.lag == 1
    levels = lagged_correlation(hub, "active_partner_rate", "partner_revenue", "month", date(2026, 1, 1),
                                date(2026, 7, 1), lags=[1], method="levels")
    assert (levels.lags[0].r, levels.lags[0].n) == (pytest.approx(1.0), 5)
    assert result.to_json()["strongest_lag"] == 1


def test_co_movement_sorts_by_strength(series_program):
    result = co_movement(series_program.hub(), "active_partner_rate", "month", date(2026, 1, 1), date(2026, 7, 1),
                         kpis=["login_frequency", "partner_revenue", "portal_usage_rate"])
    order = [o["kpi"] for o in result.others]
    # one user per partner: usage moves exactly with the rate; one login per active user: frequency never moves
    assert order == ["portal_usage_rate", "partner_revenue", "login_frequency"]
    assert result.others[0]["r"] == pytest.approx(1.0)
    assert abs(result.others[1]["r"]) < 0.9
    assert result.others[2]["r"] is None
    assert result.to_json()["moves_with"][0]["kpi"] == "portal_usage_rate"


# -- the CLI -------------------------------------------------------------------------------------------
@pytest.fixture
def cli_db(tmp_path):
    fx = build_program(Fixture(tmp_path))
    fx.hub().close()
    return str(tmp_path / "hub.duckdb")


def invoke(*args: str):
    app = typer.Typer()
    cli_impact.register(app)
    return CliRunner().invoke(app, list(args))


def test_cli_impact_without_a_date_splits_the_range_in_halves(cli_db):
    result = invoke("impact", "--kpi", "active_partner_rate", "--on", "partner_revenue", "--db", cli_db,
                    "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    # the data's range: June (first activity) .. September, the last complete month: 4 months
    rvf = body["risers_vs_fallers"]
    assert (rvf["before"], rvf["after"]) == ({"start": "2026-06-01", "end": "2026-08-01"},
                                             {"start": "2026-08-01", "end": "2026-10-01"})
    assert rvf["difference"] == pytest.approx(0.85)
    assert "first half" in body["note"] and body["before_after"] == []
    assert [c["lag"] for c in body["lagged_correlation"]["lags"]] == [0, 1, 2, 3]


def test_cli_impact_around_a_date(cli_db):
    result = invoke("impact", "--kpi", "active_partner_rate", "--on", "partner_revenue", "--around", "2026-08-01",
                    "--db", cli_db, "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [b["on"] for b in body["before_after"]] == ["active_partner_rate", "partner_revenue"]
    assert body["before_after"][1]["relative_change"] == pytest.approx(3750 / 2300 - 1)
    assert body["risers_vs_fallers"]["difference"] == pytest.approx(0.85)
    table = invoke("impact", "--kpi", "active_partner_rate", "--on", "partner_revenue", "--around", "2026-08-01",
                   "--db", cli_db)
    assert table.exit_code == 0 and "risers − fallers" in table.stdout and "+85.0 %" in table.stdout
    csv = invoke("impact", "--kpi", "active_partner_rate", "--on", "partner_revenue", "--db", cli_db,
                 "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("partner_id,group,active_partner_rate_before")
    unknown = invoke("impact", "--kpi", "active_partner_rat", "--on", "partner_revenue", "--db", cli_db)
    assert unknown.exit_code != 0 and isinstance(unknown.exception, UsageError)


def test_cli_lifecycle(cli_db):
    result = invoke("lifecycle", "--from", "2026-06-01", "--to", "2026-10-01", "--db", cli_db, "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    rows = {r["period"]: r for r in body["lifecycle"]["rows"]}
    # June: F1 F2 T1 Z first active; July: R1 new, F1 returning, F2 T1 Z dormant
    assert (rows["2026-06"]["new"], rows["2026-06"]["returning"]) == (4, 0)
    assert [rows["2026-07"][s] for s in ("new", "returning", "resurrecting", "dormant")] == [1, 1, 0, 3]
    assert body["stickiness"]["n"] == 4
    by = invoke("lifecycle", "--from", "2026-06-01", "--to", "2026-10-01", "--by", "type", "--db", cli_db,
                "--format", "csv")
    header = "period,period_start,period_end,segment,new,returning,resurrecting,dormant,active"
    assert by.stdout.splitlines()[0] == header
    assert any(line.startswith("2026-07,") and ",type=reseller," in line for line in by.stdout.splitlines())
    table = invoke("lifecycle", "--from", "2026-06-01", "--to", "2026-10-01", "--db", cli_db)
    assert "Partner lifecycle by month" in table.stdout and "Stickiness" in table.stdout
    bad = invoke("lifecycle", "--ids", "--db", cli_db)
    assert isinstance(bad.exception, UsageError)


# -- the demo's story ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_recovers_the_revamp_story(tmp_path):
    from partnerkpi.demo import generate, story
    from partnerkpi.hub import Hub
    from partnerkpi.insights.lifecycle import lifecycle

    began = time.perf_counter()
    files = generate(tmp_path / "demo", partners=300, months=24, seed=7)
    with Hub.open(tmp_path / "hub.duckdb") as hub:
        hub.import_files([files.partners, files.users, files.events])
        revamp, start, end = story.revamp_date(), files.start, files.end
        bounds = (start, end)
        # every whole month of the range on each side: 10 before the revamp, 14 after it
        revenue = before_after(hub, "partner_revenue", revamp, (10, 14), "month", seed=7, bounds=bounds)
        active = before_after(hub, "active_partner_rate", revamp, (10, 14), "month", seed=7, bounds=bounds)
        rvf = risers_vs_fallers(hub, "active_partner_rate", "partner_revenue", (start, revamp), (revamp, end),
                                "month", seed=7)
        states = lifecycle(hub, "month", start, end)
        rates = hub.scorecard("month", start, end, kpis=["active_partner_rate"])
    print(f"\ndemo story: revenue {revenue.to_json()['relative_change']:+.3f} {revenue.interval}; "
          f"active {active.relative_change:+.3f} {active.interval}; risers-fallers {rvf.difference:+.3f} "
          f"{rvf.interval}, pooled {rvf.pooled_difference:+.3f} {rvf.pooled_interval}; "
          f"{time.perf_counter() - began:.1f} s")
    # The generator calibrates closed revenue per partner-month to exactly +15 % after the revamp (over the
    # partner-months in the program); the pooled estimate is that figure, and the interval over partners
    # excludes zero.
    assert revenue.relative_change == pytest.approx(story.REVENUE_UPLIFT, abs=0.01)
    assert revenue.interval.excludes_zero and revenue.interval.low <= story.REVENUE_UPLIFT <= revenue.interval.high
    # Usage: 45 % of partners active before the revamp, 80 % once it has settled.
    assert active.relative_change > 0.25 and active.interval.excludes_zero
    program = [r.value for r in rates]
    assert 40 <= float(np.mean(program[:10])) <= 50 and 75 <= float(np.mean(program[-6:])) <= 85
    # Partners who became more active brought more revenue (deals only come from active partners). The
    # interval over single partners is wide (about ±0.55 on this seed) and may touch zero; the pooled one
    # carries the significance.
    assert rvf.difference > 0
    assert rvf.pooled_difference > 0 and rvf.pooled_interval.excludes_zero
    # The lifecycle's active partners are active_partner_rate's numerator, month by month.
    assert [states.row(r.period).active for r in rates] == [r.numerator for r in rates]
