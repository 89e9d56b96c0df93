"""The quarterly review and the `review` / `trends` commands, on a program computed by hand.

Partners A, B (reseller) and C, D (agency), one user each, all onboarded 2026-01-01.
Q2 2026: ua logs in and asks 2 support questions.  Q3 2026: ua, ub, uc log in; ua asks 4 questions.

                            Q2                      Q3
active_partner_rate   program  1/4 = 25  low        3/4 = 75  strong
                      reseller 1/2 = 50  moderate   2/2 = 100 strong
                      agency   0/2 = 0   low        1/2 = 50  moderate
portal_usage_rate     (one user per partner: the same numbers and bands)
support_requests_per_ program  2/4 = 0.5 calm       4/4 = 1.0 busy     (bands from the targets file)
partner               reseller 2/2 = 1.0 busy       4/2 = 2.0 busy
                      agency   0/2 = 0   calm       0/2 = 0   calm
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from partnerkpi.cli.insights import register
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.insights.review import quarter_review, review_tables
from partnerkpi.insights.targets import TargetBook
from tests.kpi_fixtures import Fixture

KPIS = ["portal_usage_rate", "active_partner_rate", "support_requests_per_partner"]
TARGETS = """
targets:
  - {kpi: portal_usage_rate, effective_from: 2026-07-01, value: 80, label: stretch}   # replaces the default 75
  - {kpi: active_partner_rate, effective_from: 2026-04-01, value: 70}                 # later than the default
  - {kpi: active_partner_rate, segment: {type: agency}, effective_from: 2026-01-01, value: 50}
  - {kpi: support_requests_per_partner, effective_from: 2026-07-02, value: 0.8}       # not yet in force on Jul 1
band_sets:
  - kpi: support_requests_per_partner
    effective_from: 2026-01-01
    bands:
      - {name: calm, max: 0.75, max_inclusive: false, color: green}
      - {name: busy, min: 0.75, color: amber}
"""


def build_review_program(tmp: Path) -> Path:
    """The review's program (see the module docstring) in `tmp`, with its targets.yaml; returns the DB path."""
    fx = Fixture(tmp)
    for p, kind in (("A", "reseller"), ("B", "reseller"), ("C", "agency"), ("D", "agency")):
        fx.partner(p, type=kind)
        fx.user(f"u{p.lower()}", p)
    fx.event("Logged In", "2026-05-01", user="ua")
    fx.event("Support Requested", "2026-04-10", user="ua", object="t1", topic="pricing")
    fx.event("Support Requested", "2026-05-10", user="ua", object="t2", topic="access")
    for user in ("ua", "ub", "uc"):
        fx.event("Logged In", "2026-08-01", user=user)
    for day in range(1, 5):
        fx.event("Support Requested", f"2026-07-0{day}", user="ua", object=f"t{day + 2}", topic=f"q{day}")
    fx.hub().close()  # each test opens the file again (the commands open it themselves)
    (tmp / "targets.yaml").write_text(TARGETS)
    return tmp / "hub.duckdb"


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    build_review_program(tmp)
    return tmp


@pytest.fixture
def hub(program):
    with Hub.open(program / "hub.duckdb") as opened:
        yield opened


def keyed(items):
    return {(i.kpi, tuple(sorted(i.segment.items()))) for i in items}


RESELLER, AGENCY = (("type", "reseller"),), (("type", "agency"),)


def test_review_by_type_lists_moves_band_changes_and_targets(program, hub):
    book = TargetBook.load(program / "targets.yaml", catalog=hub.catalog)
    review = quarter_review(hub, "2026-Q3", book=book, by="type", kpis=KPIS)
    assert (review.quarter, review.previous_quarter) == ("2026-Q3", "2026-Q2")

    adoption = {(k, s) for k in KPIS[:2] for s in ((), RESELLER, AGENCY)}
    assert keyed(review.improved) == adoption  # both adoption KPIs rose everywhere
    # more support requests per partner is worse: program 0.5 -> 1.0, reseller 1.0 -> 2.0; agency stays at 0
    assert keyed(review.worsened) == {("support_requests_per_partner", ()), ("support_requests_per_partner", RESELLER)}
    assert keyed(review.unchanged) == {("support_requests_per_partner", AGENCY)}
    program_support = next(m for m in review.worsened if not m.segment)
    assert (program_support.previous, program_support.value, program_support.change, program_support.change_pct) == (
        pytest.approx(0.5), pytest.approx(1.0), pytest.approx(0.5), pytest.approx(100.0))

    bands = {(b.kpi, tuple(sorted(b.segment.items()))): (b.band_from, b.band_to, b.better) for b in review.band_changes}
    assert bands == {
        ("portal_usage_rate", ()): ("low", "strong", True),  # 25 -> 75
        ("portal_usage_rate", RESELLER): ("moderate", "strong", True),  # 50 (edge, inclusive) -> 100
        ("portal_usage_rate", AGENCY): ("low", "moderate", True),  # 0 -> 50
        ("active_partner_rate", ()): ("low", "strong", True),
        ("active_partner_rate", RESELLER): ("moderate", "strong", True),
        ("active_partner_rate", AGENCY): ("low", "moderate", True),
        # the targets file's band set, not the catalog's (none): 0.5 < 0.75 calm -> 1.0 busy; reseller stays busy
        ("support_requests_per_partner", ()): ("calm", "busy", False),
    }

    targets = {(t.kpi, tuple(sorted(t.segment.items()))): (t.target, t.met, t.gap) for t in review.targets}
    assert targets == {
        # portal usage: the file's 80 from Jul 1 applies to the program and to every segment
        ("portal_usage_rate", ()): (80.0, False, pytest.approx(-5.0)),  # 75 < 80: missed
        ("portal_usage_rate", RESELLER): (80.0, True, pytest.approx(20.0)),  # 100 >= 80
        ("portal_usage_rate", AGENCY): (80.0, False, pytest.approx(-30.0)),  # 50 < 80
        # active partners: program 70 (Apr 1 beats the default's Jan 1); agency's own 50 beats the program's 70
        ("active_partner_rate", ()): (70.0, True, pytest.approx(5.0)),
        ("active_partner_rate", RESELLER): (70.0, True, pytest.approx(30.0)),
        ("active_partner_rate", AGENCY): (50.0, True, pytest.approx(0.0)),  # 50 >= 50: equal meets
        # support: its target starts Jul 2, after the quarter's start: none in force
    }
    assert keyed(review.targets_missed) == {("portal_usage_rate", ()), ("portal_usage_rate", AGENCY)}
    assert review.counts() == {"improved": 6, "worsened": 2, "unchanged": 1, "band_changes": 7, "targets_met": 4,
                               "targets_missed": 2, "targets_without_value": 0}
    assert [t.title.split(" (")[0] for t in review_tables(review)] == [
        "Improved", "Worsened", "Band changes", "Targets missed", "Targets met"]


def test_review_defaults_to_the_last_complete_quarter(hub):
    # the last event is on 2026-08-01: Q3 is not over in the data, so the default is Q2 (against Q1)
    review = quarter_review(hub, kpis=["active_partner_rate"])
    assert (review.quarter, review.previous_quarter) == ("2026-Q2", "2026-Q1")
    # Q1 nobody active (0 %), Q2 1 of 4 (25 %): improved, still low; the default target 75 is missed
    assert [(m.previous, m.value) for m in review.improved] == [(0.0, 25.0)]
    assert [(t.target, t.gap) for t in review.targets_missed] == [(75.0, -50.0)]


def test_review_with_default_targets_and_json(hub):
    review = quarter_review(hub, "2026-Q3", kpis=KPIS)
    assert review.by is None
    # default targets: 75 for both adoption KPIs from 2026-01-01; both are at exactly 75: met
    assert {(t.kpi, t.target, t.met) for t in review.targets} == {
        ("portal_usage_rate", 75.0, True), ("active_partner_rate", 75.0, True)}
    # without the file's band set the support KPI has no bands: no band change for it
    assert {b.kpi for b in review.band_changes} == {"portal_usage_rate", "active_partner_rate"}
    data = json.loads(json.dumps(review.to_json(), allow_nan=False))
    assert data["counts"]["improved"] == 2 and data["counts"]["worsened"] == 1
    assert data["worsened"] == [{
        "kpi": "support_requests_per_partner", "name": "Support Requests per Partner", "unit": "per partner",
        "segment": {}, "value": 1.0, "previous": 0.5, "change": 0.5, "change_pct": 100.0,
        # no target, no bands: the baseline is the median of Q2 (0.5) and Q3 (1.0), the only quarters with data;
        # 1.0 is 0.25 worse, beyond 10 % of 0.75
        "status": "poor", "status_basis": "baseline", "status_note": "vs baseline 2026-Q2..Q3: 0.75"}]
    assert data["targets_met"][0]["effective_from"] == "2026-01-01"


def test_review_needs_a_quarter_label(hub):
    with pytest.raises(UsageError, match="not a quarter"):
        quarter_review(hub, "2026-07", kpis=KPIS)


# -- the commands ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    register(app)
    return app


def test_review_command_json_and_table(program, cli):
    tmp = program
    db = str(tmp / "hub.duckdb")
    args = ["review", "--db", db, "--quarter", "2026-Q3", "--by", "type", "--targets", str(tmp / "targets.yaml")]
    kpis = [a for k in KPIS for a in ("--kpi", k)]
    result = CliRunner().invoke(cli, [*args, *kpis, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["quarter"] == "2026-Q3" and data["counts"]["targets_missed"] == 2
    assert {(t["kpi"], t["segment"].get("type")) for t in data["targets_missed"]} == {
        ("portal_usage_rate", None), ("portal_usage_rate", "agency")}

    result = CliRunner().invoke(cli, [*args, *kpis], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "6 improved, 2 worsened, 7 band change(s), 2 target(s) missed, 4 met" in result.stdout
    assert "Targets missed (2)" in result.stdout and "low → strong" in result.stdout


def test_review_command_reports_a_bad_targets_file(program, cli):
    tmp = program
    bad = tmp / "bad.yaml"
    bad.write_text("targets:\n  - {kpi: nope, effective_from: 2026-01-01, value: 1}\n")
    result = CliRunner().invoke(cli, ["review", "--db", str(tmp / "hub.duckdb"), "--targets", str(bad)])
    assert result.exit_code != 0
    assert result.exception is not None and result.exception.exit_code == 4
    assert "target #1 (kpi 'nope'), field 'kpi': unknown KPI" in str(result.exception)


def test_trends_command(program, cli):
    tmp = program
    args = ["trends", "--db", str(tmp / "hub.duckdb"), "--grain", "quarter", "--from", "2026-04-01",
            "--to", "2026-10-01", "--kpi", "active_partner_rate", "--baseline", "2026-Q1", "--window", "2"]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    q2, q3 = json.loads(result.stdout)
    # Q1: nobody active (0 %), Q2 25 %, Q3 75 %; baseline Q1 = 0: no percentage against it
    assert (q3["period"], q3["value"], q3["baseline_period"], q3["baseline"], q3["change_vs_baseline"]) == (
        "2026-Q3", 75.0, "2026-Q1", 0.0, 75.0)
    assert q3["change_vs_baseline_pct"] is None and q3["direction"] == "improving"
    assert (q2["previous"], q2["change"], q2["change_pct"]) == (0.0, 25.0, None)
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2026-Q3 (baseline 2026-Q1, trend over 2 periods)" in result.stdout and "improving" in result.stdout
