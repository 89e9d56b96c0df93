"""Judgment (KPI-SPEC v2 §6): every row with a value gets a status and the basis it was judged on.

Pure rules first (KpiRow objects and a TargetBook), then the baseline over all the data on a real DuckDB
file, per segment and per partner, and the CLI's JSON and CSV.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from partnerkpi.catalog import load_catalog
from partnerkpi.engine.result import KpiRow
from partnerkpi.hub import PER_PARTNER, Hub
from partnerkpi.insights.judgment import Baseline, against, baselines, judge, judge_rows
from partnerkpi.insights.targets import JudgmentSettings, TargetBook, TargetsError
from tests.kpi_fixtures import Fixture, value


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def book_from(tmp_path: Path, text: str, catalog, defaults: bool = False) -> TargetBook:
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return TargetBook.load(path, catalog=catalog, defaults=defaults)


def row(kpi: str, period: str, v: float | None, n: int | None = 1, segment: dict[str, str] | None = None) -> KpiRow:
    start = datetime.strptime(period, "%Y-%m")
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    return KpiRow(kpi=kpi, period=period, period_start=start, period_end=end, segment=segment or {}, value=v, n=n)


# -- the comparison: direction and the edge of the tolerance -------------------------------------------------
@pytest.mark.parametrize(("value_", "expected"), [
    (80.0, "good"), (75.0, "good"),  # better, and equal: meets
    (67.5, "watch"),  # exactly 10 % of 75 worse: the edge is watch
    (67.5 - 1e-6, "poor"),  # a hair more
    (70.0, "watch"),
])
def test_direction_up_against_a_reference(value_, expected):
    assert against(value_, 75.0, "up", 0.1) == expected


@pytest.mark.parametrize(("value_", "expected"), [
    (50.0, "good"), (62.0, "good"),
    (62.0 * 1.1, "watch"),  # 68.2: exactly 10 % higher (worse for a down KPI)
    (68.2, "watch"),  # as written in a file
    (68.2 + 1e-6, "poor"),
])
def test_direction_down_against_a_reference(value_, expected):
    assert against(value_, 62.0, "down", 0.1) == expected


def test_the_edge_survives_float_rounding_and_negative_references():
    assert 62.0 - 55.8 > 6.2  # in floats the edge is a hair past the tolerance...
    assert against(55.8, 62.0, "up", 0.1) == "watch"  # ...and still counts as the edge
    # NPS can be negative: the tolerance is 10 % of |baseline| (-20 -> 2 points)
    assert against(-22.0, -20.0, "up", 0.1) == "watch"
    assert against(-22.5, -20.0, "up", 0.1) == "poor"


def test_a_reference_of_zero_leaves_no_tolerance():
    assert against(0.0, 0.0, "down", 0.1) == "good"
    assert against(1e-9, 0.0, "down", 0.1) == "poor"  # any worsening
    assert against(-1.0, 0.0, "up", 0.1) == "poor"


# -- the three bases and their order ---------------------------------------------------------------------------
TARGETS = """
targets:
  - {kpi: portal_usage_rate, effective_from: 2026-07-01, value: 80}
  - {kpi: portal_usage_rate, segment: {type: agency}, effective_from: 2026-07-01, value: 40}
"""


def test_target_beats_bands_beats_baseline(tmp_path, catalog):
    book = book_from(tmp_path, TARGETS, catalog)
    kpi = catalog.get("portal_usage_rate")  # bands: low < 50, moderate 50..70, strong > 70
    base = Baseline(90.0, ("2026-01", "2026-02", "2026-03"))
    # July: the target (80, from Jul 1) is in force: 75 is 5 short, within 8: watch (the band would say strong)
    july = judge(row(kpi.id, "2026-07", 75.0), kpi, book, base)
    assert (july.status, july.status_basis, july.status_note) == ("watch", "target", "vs target 80.0 % from 2026-07-01")
    # June: no target yet, the catalog's bands: 75 is strong (the baseline would say poor)
    june = judge(row(kpi.id, "2026-06", 75.0), kpi, book, base)
    assert (june.status, june.status_basis, june.status_note) == ("good", "band", "band strong (> 70)")
    assert judge(row(kpi.id, "2026-06", 60.0), kpi, book, base).status_note == "band moderate (50–70)"
    assert judge(row(kpi.id, "2026-06", 60.0), kpi, book, base).status == "watch"
    assert judge(row(kpi.id, "2026-06", 20.0), kpi, book, base).status == "poor"
    # a KPI without bands or targets: the baseline
    logins = catalog.get("login_frequency")
    judged = judge(row(logins.id, "2026-06", 3.0), logins, book, Baseline(4.0, ("2026-01", "2026-02", "2026-03")))
    assert (judged.status, judged.status_basis, judged.status_note) == (
        "poor", "baseline", "vs baseline 2026-01..03: 4")  # 1 worse, beyond 0.4


def test_a_segment_is_judged_against_its_own_target(tmp_path, catalog):
    book = book_from(tmp_path, TARGETS, catalog)
    kpi = catalog.get("portal_usage_rate")
    agency = judge(row(kpi.id, "2026-07", 45.0, segment={"type": "agency"}), kpi, book, None)
    assert (agency.status, agency.status_note) == ("good", "vs target 40.0 % from 2026-07-01")
    reseller = judge(row(kpi.id, "2026-07", 45.0, segment={"type": "reseller"}), kpi, book, None)
    assert (reseller.status, reseller.status_note) == ("poor", "vs target 80.0 % from 2026-07-01")  # the program's


def test_band_sets_of_the_book_beat_the_catalog_bands(tmp_path, catalog):
    book = book_from(tmp_path, """
band_sets:
  - kpi: portal_usage_rate
    effective_from: 2026-07-01
    bands:
      - {name: behind, max: 80, max_inclusive: false, color: red}
      - {name: ahead, min: 80, color: green}
""", catalog)
    kpi = catalog.get("portal_usage_rate")
    judged = judge(row(kpi.id, "2026-07", 75.0), kpi, book, None)  # strong in the catalog, behind in the book
    assert (judged.status, judged.status_basis, judged.status_note) == ("poor", "band", "band behind (< 80)")
    assert judge(row(kpi.id, "2026-06", 75.0), kpi, book, None).status == "good"  # before the set: catalog bands
    assert judged.band is None  # `band` keeps its meaning: the catalog's bands only (set by the engine)


def test_null_value_has_no_status(tmp_path, catalog):
    book = book_from(tmp_path, TARGETS, catalog)
    kpi = catalog.get("portal_usage_rate")
    judged = judge(row(kpi.id, "2026-07", None, n=0), kpi, book, Baseline(1.0, ("2026-01",)))
    assert (judged.status, judged.status_basis, judged.status_note) == (None, None, None)


# -- baselines ---------------------------------------------------------------------------------------------------
def test_baseline_is_the_median_of_the_first_three_periods_with_a_value():
    rows = [row("login_frequency", "2025-12", None, n=0), row("login_frequency", "2026-01", 2.0),
            row("login_frequency", "2026-02", 6.0), row("login_frequency", "2026-03", 4.0),
            row("login_frequency", "2026-04", 100.0)]
    found = baselines(rows, JudgmentSettings())
    assert found[("login_frequency", ())] == Baseline(4.0, ("2026-01", "2026-02", "2026-03"))


def test_a_count_of_zero_before_anything_happened_is_not_a_baseline_period():
    rows = [row("escalations", "2026-01", 0.0, n=0), row("escalations", "2026-02", 3.0, n=3),
            row("escalations", "2026-03", 0.0, n=0), row("escalations", "2026-04", 2.0, n=2),
            row("escalations", "2026-05", 1.0, n=1), row("escalations", "2026-06", 9.0, n=9)]
    assert baselines(rows, JudgmentSettings())[("escalations", ())] == Baseline(2.0, ("2026-02", "2026-04", "2026-05"))
    # a count that never counted anything takes its first values as they are: 0, so any rise is poor
    zeros = [row("escalations", f"2026-0{m}", 0.0, n=0) for m in (1, 2, 3, 4)]
    assert baselines(zeros, JudgmentSettings())[("escalations", ())] == Baseline(0.0, ("2026-01", "2026-02", "2026-03"))


def test_baselines_are_kept_per_segment_and_the_window_is_a_setting(tmp_path, catalog):
    rows = [row("login_frequency", f"2026-0{m}", float(m), segment=seg)
            for seg in ({}, {"type": "agency"}) for m in (1, 2, 3, 4, 5)]
    rows += [row("login_frequency", "2026-06", 9.0, segment={"type": "reseller"})]  # one period only
    found = baselines(rows, JudgmentSettings())
    assert found[("login_frequency", ())].value == 2.0
    assert found[("login_frequency", (("type", "agency"),))].value == 2.0
    assert found[("login_frequency", (("type", "reseller"),))] == Baseline(9.0, ("2026-06",))
    book = book_from(tmp_path, "judgment: {baseline_periods: 4, kpis: {login_frequency: {baseline_periods: 5}}}",
                     catalog)
    assert baselines(rows, book.judgment)[("login_frequency", ())] == Baseline(
        3.0, ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05"))
    judged = judge_rows(rows, book, baselines(rows, book.judgment))
    assert [r.status for r in judged if not r.segment] == ["poor", "poor", "good", "good", "good"]


# -- settings ----------------------------------------------------------------------------------------------------
def test_tolerance_is_a_setting_per_program_and_per_kpi(tmp_path, catalog):
    book = book_from(tmp_path, """
judgment:
  tolerance_pct: 20
  kpis:
    login_frequency: {tolerance_pct: 50}
""", catalog, defaults=True)
    assert book.judgment.baseline_periods == 3  # from the built-in file
    assert book.judgment.tolerance_for("escalations") == pytest.approx(0.2)
    assert book.judgment.tolerance_for("login_frequency") == pytest.approx(0.5)
    logins = catalog.get("login_frequency")
    # baseline 4: 2.0 is 50 % worse, the KPI's edge: watch (10 % by default would be poor)
    assert judge(row(logins.id, "2026-06", 2.0), logins, book, Baseline(4.0, ("2026-01",))).status == "watch"


def test_builtin_judgment_settings():
    settings = TargetBook.load(catalog=load_catalog()).judgment
    assert (settings.baseline_periods, settings.tolerance_pct, settings.kpis) == (3, 10.0, {})


def test_bad_judgment_settings_name_file_section_and_field(tmp_path, catalog):
    with pytest.raises(TargetsError) as caught:
        book_from(tmp_path, """
judgment:
  baseline_periods: 0
  tolerance_pct: ten
  tolerence: 5
  kpis:
    login_frequncy: {tolerance_pct: 5}
    escalations: {baseline: 2}
""", catalog)
    text = str(caught.value)
    where = f"{tmp_path / 'targets.yaml'}: judgment"
    assert f"{where}, field 'baseline_periods'" in text and "1 or more" in text
    assert f"{where}, field 'tolerance_pct'" in text and "10 means 10 %" in text
    assert f"{where}, field 'tolerence': unknown field; how to fix: did you mean 'tolerance_pct'?" in text
    assert f"{where}, field 'kpis.login_frequncy': unknown KPI" in text and "'login_frequency'" in text
    assert f"{where}, field 'kpis.escalations.baseline': unknown field" in text
    with pytest.raises(TargetsError, match="judgment: the section is a list"):
        book_from(tmp_path, "judgment: [3, 10]", catalog)


# -- on a real DuckDB file: the baseline over all the data -------------------------------------------------------
@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """One partner A (agency) and one B (reseller). The data starts with an escalation in December 2025.
    Logins of A's user: Jan 2, Feb 4, Mar 6, Apr-Jun 4 each, Jul 3. B's user logs in 5 times a month from
    April. Escalations: Dec 1, Feb 3, Mar 2, Jul 2 (none in Jan)."""
    fx = Fixture(tmp_path_factory.mktemp("judgment"))
    fx.partner("A", onboarded="2025-12-01", type="agency").partner("B", onboarded="2026-04-01", type="reseller")
    fx.user("ua", "A", created="2025-12-01").user("ub", "B", created="2026-04-01")
    fx.event("Escalation Raised", "2025-12-15", partner="A")
    for month, logins in ((1, 2), (2, 4), (3, 6), (4, 4), (5, 4), (6, 4), (7, 3)):
        for day in range(1, logins + 1):
            fx.event("Logged In", f"2026-{month:02d}-{day:02d} 09:00", user="ua")
    for month in (4, 5, 6, 7):
        for day in range(1, 6):
            fx.event("Logged In", f"2026-{month:02d}-{day:02d} 10:00", user="ub")
    for month, count in ((2, 3), (3, 2), (7, 2)):
        for day in range(1, count + 1):
            fx.event("Escalation Raised", f"2026-{month:02d}-{day + 10:02d}", partner="A")
    fx.hub()
    yield fx
    fx.hub().close()


def test_baseline_comes_from_the_first_periods_of_all_the_data(history):
    # only July asked: the baseline still comes from the first periods with a value (Dec has no login: skipped)
    rows = history.scorecard(kpis=["login_frequency", "escalations"], by="type")
    logins = value(rows, "login_frequency", "2026-07")
    # July program: (3 + 5) logins / 2 users = 4; Jan-Mar program: 2, 4, 6 (only A) -> median 4: good
    assert logins.value == 4.0
    assert (logins.status, logins.status_basis, logins.status_note) == (
        "good", "baseline", "vs baseline 2026-01..03: 4")
    # agency (A only): July 3 vs 4 is 1 worse, beyond 0.4: poor
    agency = value(rows, "login_frequency", "2026-07", {"type": "agency"})
    assert (agency.value, agency.status, agency.status_note) == (3.0, "poor", "vs baseline 2026-01..03: 4")
    # reseller (B from April): its own first periods Apr-Jun, 5 each: July 5 is good
    reseller = value(rows, "login_frequency", "2026-07", {"type": "reseller"})
    assert (reseller.value, reseller.status, reseller.status_note) == (5.0, "good", "vs baseline 2026-04..06: 5")
    # escalations (down): the history starts with the first activity event (January), so December's 1 is
    # before it; then (Jan none counted) Feb 3, Mar 2, (Apr-Jun none), Jul 2 -> median 2; July 2 is good
    esc = value(rows, "escalations", "2026-07")
    assert (esc.value, esc.status, esc.status_note) == (2.0, "good", "vs baseline 2026-02..07: 2")


def test_every_period_of_a_longer_range_is_judged_against_the_same_baseline(history):
    rows = history.scorecard(kpis=["escalations"], start=date(2026, 1, 1))
    program = [(r.period, r.value, r.status) for r in rows if not r.segment]
    assert program == [("2026-01", 0.0, "good"), ("2026-02", 3.0, "poor"), ("2026-03", 2.0, "good"),
                       ("2026-04", 0.0, "good"), ("2026-05", 0.0, "good"), ("2026-06", 0.0, "good"),
                       ("2026-07", 2.0, "good")]


def test_per_partner_rows_are_judged(history):
    rows = history.hub().scorecard("month", date(2026, 7, 1), date(2026, 8, 1), by=PER_PARTNER,
                                   kpis=["login_frequency"])
    per_partner = {r.segment.get(PER_PARTNER): (r.value, r.status, r.status_basis) for r in rows}
    assert per_partner == {None: (4.0, "good", "baseline"), "A": (3.0, "poor", "baseline"),
                           "B": (5.0, "good", "baseline")}


def test_targets_file_of_the_hub_judges_the_rows(history, tmp_path, catalog):
    book = book_from(tmp_path, """
targets:
  - {kpi: login_frequency, effective_from: 2026-07-01, value: 4.4}
judgment: {tolerance_pct: 5}
""", catalog)
    rows = history.hub().scorecard("month", date(2026, 7, 1), date(2026, 8, 1), kpis=["login_frequency"], book=book)
    # 4 vs 4.4: 0.4 short, beyond 5 % (0.22): poor, against the target
    assert [(r.status, r.status_basis, r.status_note) for r in rows] == [
        ("poor", "target", "vs target 4.40 from 2026-07-01")]


def test_cli_json_and_csv_carry_status_and_basis(history, tmp_path):
    targets = tmp_path / "mine.yaml"
    targets.write_text("judgment: {tolerance_pct: 50}\n")
    base = [sys.executable, "-m", "partnerkpi.cli", "scorecard", "--db", str(history.dir / "hub.duckdb"),
            "--from", "2026-07-01", "--to", "2026-08-01", "--kpi", "login_frequency", "--by", "type",
            "--partial"]  # the fixture's data ends in mid-July: July is the running period
    history.hub().close()  # the CLI opens the file itself (the fixture's teardown closes the reopened hub)
    try:
        done = subprocess.run([*base, "--format", "json"], capture_output=True, text=True, check=False)
        csv_done = subprocess.run([*base, "--format", "csv", "--targets", str(targets)], capture_output=True,
                                  text=True, check=False)
    finally:
        history._hub = Hub.open(history.dir / "hub.duckdb")
    assert done.returncode == 0, done.stderr
    assert [(r["segment"], r["status"], r["status_basis"]) for r in json.loads(done.stdout)] == [
        ({}, "good", "baseline"), ({"type": "agency"}, "poor", "baseline"), ({"type": "reseller"}, "good", "baseline")]
    # a targets file with a wider tolerance: agency's 3 vs 4 (25 % worse) is now watch
    assert csv_done.returncode == 0, csv_done.stderr
    header, *lines = csv_done.stdout.strip().splitlines()
    assert header.endswith(",previous,change,status,status_basis")
    assert [line.rsplit(",", 2)[1:] for line in lines] == [["good", "baseline"], ["watch", "baseline"],
                                                          ["good", "baseline"]]


# -- the pages and their JSON twins -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web(tmp_path_factory):
    from tests.web_fixtures import build_program, client_for

    yield from client_for(build_program(tmp_path_factory.mktemp("judged-web")))


def test_tiles_and_api_rows_carry_the_status(web):
    july = {"from": "2026-07-01", "to": "2026-08-01"}
    body = web.get("/api/v1/scorecard", params=july).json()
    program = {r["kpi"]: r for r in body["rows"] if not r["segment"]}
    # 3 of 4 partners active in July = 75 %, exactly the built-in target of 75: good
    assert (program["active_partner_rate"]["status"], program["active_partner_rate"]["status_basis"]) == (
        "good", "target")
    tile = next(t for c in body["categories"] for t in c["tiles"] if t["kpi"] == "active_partner_rate")
    assert (tile["status"], tile["status_note"]) == ("good", "vs target 75.0 % from 2026-01-01")
    html = web.get("/", params=july).text
    assert ('<article class="tile status-good" data-kpi="active_partner_rate" '
            'title="vs target 75.0 % from 2026-01-01">') in html
    # every tile whose KPI has a value in the range carries a status class
    valued = {t["kpi"] for c in body["categories"] for t in c["tiles"] if t["value"] is not None}
    coloured = set(re.findall(r'<article class="tile status-(?:good|watch|poor)" data-kpi="(\w+)"', html))
    assert valued and coloured == valued


def test_partner_page_tiles_are_coloured_by_status(web):
    html = web.get("/partners/R1", params={"from": "2026-07-01", "to": "2026-08-01"}).text
    # R1's user logged in once in June and once in July (the data's first two months): baseline 1, July 1: good
    assert ('<article class="tile status-good" data-kpi="login_frequency" title="vs baseline 2026-06..07: 1">'
            in html)
    # KPIs with a value are never left grey
    assert not re.search(r'class="tile status-none" data-kpi="(login_frequency|first_login_rate)"', html)


def test_a_baseline_is_written_in_its_kpis_unit_beside_the_value_it_judges():
    # a tile reads "0.2 d" with "vs baseline ...: 644.9 d" on hover, not a bare 644.9 beside days
    months = ("2024-11", "2024-12", "2025-01")
    assert Baseline(644.9, months).describe("days") == "vs baseline 2024-11..2025-01: 644.9 d"
    assert Baseline(62.0, ("2025-01", "2025-03")).describe("%") == "vs baseline 2025-01..03: 62.0 %"
    assert Baseline(4.0, ("2026-01",)).describe() == "vs baseline 2026-01: 4"
