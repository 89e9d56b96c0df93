"""The TargetBook: targets and band sets with effective dates, per segment, validated like the catalog."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from partnerkpi.catalog import load_catalog
from partnerkpi.insights.targets import DEFAULT_SOURCE, TargetBook, TargetsError, load_targets


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def book_from(tmp_path, text: str, catalog, defaults: bool = False) -> TargetBook:
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return TargetBook.load(path, catalog=catalog, defaults=defaults)


CHANGING = """
targets:
  - {kpi: active_partner_rate, effective_from: 2026-07-01, value: 60, label: first}
  - {kpi: active_partner_rate, effective_from: 2026-10-01, value: 75, label: raised}
  - {kpi: active_partner_rate, segment: {type: agency}, effective_from: 2026-08-01, value: 40}
  - {kpi: support_requests_per_partner, effective_from: 2026-01-01, value: 0.5}
"""


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 6, 30), None),  # the day before the first effective_from: no target
        (date(2026, 7, 1), 60.0),  # on it
        (date(2026, 7, 2), 60.0),  # the day after
        (date(2026, 9, 30), 60.0),  # the day before the raise
        (datetime(2026, 10, 1), 75.0),  # on the raise (a period start as KpiRow holds it)
        (date(2027, 1, 1), 75.0),  # latest effective_from <= the day wins
    ],
)
def test_target_in_force_follows_effective_dates(tmp_path, catalog, day, expected):
    book = book_from(tmp_path, CHANGING, catalog)
    found = book.target_for("active_partner_rate", {}, day)
    assert (found.value if found else None) == expected


def test_segment_target_beats_the_program_one(tmp_path, catalog):
    book = book_from(tmp_path, CHANGING, catalog)
    # agency's own target (40, from Aug 1) beats the program's, even the program's later raise to 75
    assert book.target_for("active_partner_rate", {"type": "agency"}, date(2026, 8, 1)).value == 40.0
    assert book.target_for("active_partner_rate", {"type": "agency"}, date(2026, 11, 1)).value == 40.0
    # before agency's own entry is in force, the program target applies to agency too
    assert book.target_for("active_partner_rate", {"type": "agency"}, date(2026, 7, 31)).value == 60.0
    # another segment has no entry of its own: the program target
    assert book.target_for("active_partner_rate", {"type": "reseller"}, date(2026, 8, 1)).value == 60.0
    # the program is not affected by the agency entry
    assert book.target_for("active_partner_rate", {}, date(2026, 8, 1)).value == 60.0


def test_target_steps_for_charts(tmp_path, catalog):
    book = book_from(tmp_path, CHANGING, catalog)
    # program: 60 from Jul 1, 75 from Oct 1
    assert [(day, t.value) for day, t in book.target_steps("active_partner_rate", {})] == [
        (date(2026, 7, 1), 60.0), (date(2026, 10, 1), 75.0)]
    # agency: the program's 60 until its own 40 starts on Aug 1, which the program's raise does not override
    assert [(day, t.value) for day, t in book.target_steps("active_partner_rate", {"type": "agency"})] == [
        (date(2026, 7, 1), 60.0), (date(2026, 8, 1), 40.0)]


def test_met_respects_the_direction_and_counts_equal_as_met(tmp_path, catalog):
    book = book_from(tmp_path, CHANGING, catalog)
    target = book.target_for("active_partner_rate", {}, date(2026, 7, 1))  # 60, up: value >= 60
    assert book.met("active_partner_rate", 60.0, target) is True
    assert book.met("active_partner_rate", 59.999, target) is False
    down = book.target_for("support_requests_per_partner", {}, date(2026, 7, 1))  # 0.5, down: value <= 0.5
    assert book.met("support_requests_per_partner", 0.5, down) is True
    assert book.met("support_requests_per_partner", 0.25, down) is True
    assert book.met("support_requests_per_partner", 0.51, down) is False
    assert book.met("support_requests_per_partner", None, down) is None
    assert book.met("support_requests_per_partner", 0.4, None) is None


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (49.999, "low"),  # low: value < 50
        (50.0, "moderate"),  # moderate: 50 <= value <= 70, 50 inclusive
        (70.0, "moderate"),  # 70 inclusive: still moderate
        (70.001, "strong"),  # strong: value > 70
    ],
)
def test_catalog_bands_apply_without_a_band_set(catalog, value, band):
    book = TargetBook([], [], catalog)
    assert book.band_of("portal_usage_rate", {}, date(2026, 7, 1), value).name == band


BAND_SETS = """
band_sets:
  - kpi: portal_usage_rate
    effective_from: 2027-01-01
    bands:
      - {name: low, max: 50, color: red}                          # 50 now belongs to low
      - {name: moderate, min: 50, min_inclusive: false, max: 70, max_inclusive: false, color: amber}
      - {name: strong, min: 70, color: green}                     # and 70 to strong
  - kpi: portal_usage_rate
    segment: {tier: gold}
    effective_from: 2026-07-01
    bands:
      - {name: below, max: 80, max_inclusive: false, color: red}
      - {name: at_or_above, min: 80, color: green}
"""


def test_band_set_changes_over_time_with_exclusive_edges(tmp_path, catalog):
    book = book_from(tmp_path, BAND_SETS, catalog)
    before, after = date(2026, 12, 31), date(2027, 1, 1)
    # until 2026-12-31 the catalog's bands: 50 and 70 are moderate
    assert book.band_of("portal_usage_rate", {}, before, 50.0).name == "moderate"
    assert book.band_of("portal_usage_rate", {}, before, 70.0).name == "moderate"
    assert book.band_set_for("portal_usage_rate", {}, before) is None
    # from 2027-01-01 the band set: moderate is 50 < v < 70, so 50 is low and 70 strong
    assert book.band_of("portal_usage_rate", {}, after, 50.0).name == "low"
    assert book.band_of("portal_usage_rate", {}, after, 60.0).name == "moderate"
    assert book.band_of("portal_usage_rate", {}, after, 70.0).name == "strong"
    assert [b.name for b in book.bands_for("portal_usage_rate", {}, after)] == ["low", "moderate", "strong"]
    # gold's own set (from 2026-07-01) beats both; other tiers keep the program's bands
    assert book.band_of("portal_usage_rate", {"tier": "gold"}, after, 75.0).name == "below"
    assert book.band_of("portal_usage_rate", {"tier": "silver"}, after, 75.0).name == "strong"
    assert book.band_of("portal_usage_rate", {"tier": "gold"}, date(2026, 6, 30), 75.0).name == "strong"
    # no value, or a KPI without bands: no band
    assert book.band_of("portal_usage_rate", {}, after, None) is None
    assert book.band_of("support_requests_per_partner", {}, after, 1.0) is None


def test_default_book_targets_the_top_quartile_benchmark_from_2026(catalog):
    book = TargetBook.load(catalog=catalog)
    target = book.target_for("portal_usage_rate", {}, date(2026, 1, 1))
    assert (target.value, target.effective_from, target.source) == (75.0, date(2026, 1, 1), DEFAULT_SOURCE)
    assert book.target_for("active_partner_rate", {"type": "reseller"}, date(2026, 7, 1)).value == 75.0
    assert book.target_for("portal_usage_rate", {}, date(2025, 12, 31)) is None
    assert book.target_for("partner_churn_rate", {}, date(2026, 7, 1)) is None
    assert book.band_set_for("portal_usage_rate", {}, date(2026, 7, 1)) is None  # the catalog's three bands


def test_user_file_replaces_a_default_entry_with_the_same_key(tmp_path, catalog):
    path = tmp_path / "mine.yaml"
    path.write_text("targets:\n  - {kpi: portal_usage_rate, effective_from: 2026-01-01, value: 60}\n")
    book = load_targets([path], catalog=catalog)
    assert book.target_for("portal_usage_rate", {}, date(2026, 7, 1)).value == 60.0
    assert book.target_for("portal_usage_rate", {}, date(2026, 7, 1)).source == str(path)
    assert book.target_for("active_partner_rate", {}, date(2026, 7, 1)).value == 75.0  # default kept


def test_every_problem_is_reported_with_file_and_entry(tmp_path, catalog):
    text = """
targets:
  - {kpi: portal_usage_rat, effective_from: 2026-01-01, value: 75}
  - {kpi: active_partner_rate, effective_from: 2026-13-01, value: 75}
  - {kpi: active_partner_rate, effective_from: 2026-01-01}
  - {kpi: active_partner_rate, effective_from: 2026-02-01, value: 70}
  - {kpi: active_partner_rate, effective_from: 2026-02-01, value: 71}
  - {kpi: active_partner_rate, effective_from: 2026-03-01, value: 70, colour: red}
band_sets:
  - kpi: portal_usage_rate
    effective_from: 2026-01-01
    bands:
      - {name: low, max: 50, color: red}
      - {name: high, min: 50, color: green}
  - {kpi: portal_usage_rate, effective_from: 2026-02-01, bands: []}
tagrets: []
"""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TargetsError) as info:
        TargetBook.load(path, catalog=catalog, defaults=False)
    problems = info.value.problems
    assert info.value.exit_code == 4
    expected = [
        ("target #1 (kpi 'portal_usage_rat'), field 'kpi'", "did you mean 'portal_usage_rate'"),
        ("target #2 (kpi 'active_partner_rate'), field 'effective_from'", "YYYY-MM-DD"),
        ("target #3 (kpi 'active_partner_rate'), field 'value'", "the field is missing"),
        ("target #5 (kpi 'active_partner_rate'), field 'effective_from'", "same kpi, segment and effective_from"),
        ("target #6 (kpi 'active_partner_rate'), field 'colour'", "unknown field"),
        ("band set #1 (kpi 'portal_usage_rate'), field 'bands.1'", "overlaps band 'low'"),
        ("band set #2 (kpi 'portal_usage_rate'), field 'bands'", "at least one band"),
        ("unknown top-level key 'tagrets'", "did you mean 'targets'?"),
    ]
    for where, what in expected:
        assert any(p.startswith(f"{path}: ") and where in p and what in p for p in problems), (where, problems)
    assert len(problems) == len(expected), problems


def test_unreadable_file_and_yaml_syntax_error_are_problems(tmp_path, catalog):
    broken = tmp_path / "broken.yaml"
    broken.write_text("targets:\n  - {kpi: portal_usage_rate, value: [\n")
    with pytest.raises(TargetsError) as info:
        load_targets([tmp_path / "missing.yaml", broken], catalog=catalog)
    assert len(info.value.problems) == 2
    assert "missing.yaml: cannot read the file" in info.value.problems[0]
    assert "broken.yaml: YAML syntax error at line" in info.value.problems[1]
