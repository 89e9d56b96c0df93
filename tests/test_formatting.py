"""Numbers as a finance tool shows them, and scorecard tables that fit 100 columns without cutting a value."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date

import pytest
from rich.console import Console

from partnerkpi.reports import format_change, format_value, scorecard_tables
from tests.web_fixtures import build_program


@pytest.mark.parametrize(("value", "unit", "shown"), [
    (None, "%", "–"),
    (float("nan"), "days", "–"),
    (-0.0004, "%", "0.0 %"),  # never "-0.0"
    (-0.0004, "per partner", "0.00"),
    (-0.04, "days", "0.0 d"),
    (-0.05, "%", "-0.1 %"),  # half away from zero, as written
    (-0.4, "NPS", "0"),
    (999.95, "%", "1,000.0 %"),
    (999.95, "per partner", "999.95"),
    (999.95, "hours", "1,000.0 h"),
    (12345.6, "%", "12,345.6 %"),
    (2.675, "per partner", "2.68"),  # the binary float is 2.67499..; people wrote 2.675
    (1e9, "currency", "$1,000,000,000"),
    (1e9, "count", "1,000,000,000"),
    (1234.5, "currency", "$1,235"),
    (-1234.4, "currency", "-$1,234"),
    (42, "NPS", "+42"),
    (-12, "NPS", "-12"),
    (1204, "partners", "1,204"),
    (7.5, "minutes", "7.5 min"),
])
def test_values_read_like_a_finance_tool(value, unit, shown):
    assert format_value(value, unit) == shown


def test_the_currency_is_a_setting(monkeypatch):
    assert format_value(1234, "currency", "EUR") == "€1,234"
    assert format_value(1234, "currency", "chf") == "1,234 CHF"
    monkeypatch.setenv("PARTNERKPI_CURRENCY", "GBP")
    assert format_value(-50_000, "currency") == "-£50,000"
    assert format_change(2500, "currency", 52_500) == "+£2,500"


@pytest.mark.parametrize(("change", "unit", "value", "shown"), [
    (None, "%", 45.0, "–"),
    (6.1666, "%", 64.1666, "+6.2 pp"),  # a percentage changes by points, with the value's one decimal
    (-0.0004, "%", 45.0, "0.0 pp"),
    (0.1, "per partner", 1.25, "+0.10"),
    (3, "count", 12, "+3"),
    (0.5, "per partner", 2.0, "+0.50"),  # a whole ratio whose change is not whole still says how much
    (-1234.5, "currency", 5000, "-$1,235"),
    (-2.04, "days", 9.5, "-2.0 d"),
    (5, "NPS", 40, "+5"),
])
def test_changes_are_rounded_like_their_values(change, unit, value, shown):
    assert format_change(change, unit, value, "USD") == shown


def _lines(tables, width: int = 100) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
    return console.export_text().splitlines()


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    from partnerkpi.hub import Hub

    db = build_program(tmp_path_factory.mktemp("fmt"))
    with Hub.open(db, read_only=True) as hub:
        return hub.scorecard("month", date(2026, 2, 1), date(2026, 8, 1), by="type"), hub.catalog


def test_the_default_table_fits_100_columns_and_cuts_nothing(rows):
    scorecard, catalog = rows
    lines = _lines(scorecard_tables(scorecard, catalog))
    assert max(len(line) for line in lines) <= 100
    assert not any("…" in line for line in lines)
    headers = next(line for line in lines if "KPI" in line)
    assert [h.strip() for h in headers.strip("┃ ").split("┃")] == ["KPI", "period", "value", "change", "band", "status"]
    # July 2026: 3 of 4 partners active, up from 1 of 4 in June
    usage = next(line for line in lines if "Partner Portal Usage Rate" in line)
    cells = [c.strip() for c in usage.strip("│ ").split("│")][1:]
    assert cells == ["2026-07", "75.0 %", "▲ +50.0 pp", "strong", "good"]  # 75 meets the default target of 75
    assert {line.strip() for line in lines if line.startswith(("Whole", "type"))} == {
        "Whole program", "type = reseller", "type = agency"}


def test_wide_shows_every_period(rows):
    scorecard, catalog = rows
    lines = _lines(scorecard_tables(scorecard, catalog, wide=True), width=200)
    headers = next(line for line in lines if "KPI" in line)
    assert [h.strip() for h in headers.strip("┃ ").split("┃")] == [
        "KPI", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07", "change", "band", "status"]


@pytest.mark.parametrize("command", [["scorecard"], ["scorecard", "--by", "type"], ["alerts", "list"], ["at-risk"],
                                     ["inactive", "--days", "30", "--wide"], ["kpis"]], ids=" ".join)
def test_commands_at_100_columns_print_no_line_longer_and_no_cut_value(tmp_path, command):
    db = build_program(tmp_path)
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("PARTNERKPI_DB", None)
    where = [] if command == ["kpis"] else ["--db", str(db)]
    result = subprocess.run([sys.executable, "-m", "partnerkpi.cli", *command, *where],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert "…" not in result.stdout


def test_csv_keeps_fields_a_row_gains_after_the_spec_columns(rows):
    """A row field beyond §6's (the status another part adds) is written after them, not refused."""
    import dataclasses

    from partnerkpi.reports import rows_to_csv
    from partnerkpi.reports.formats import CSV_COLUMNS

    scorecard, _ = rows
    row = next(r for r in scorecard if r.kpi == "active_partner_rate" and r.period == "2026-07" and not r.segment)

    @dataclasses.dataclass(frozen=True)
    class Flagged:
        row: object

        def to_json(self) -> dict:
            return {**self.row.to_json(), "partial": True}

    header, line = rows_to_csv([Flagged(row)]).strip().splitlines()
    assert header.split(",") == [*CSV_COLUMNS, "partial"]
    assert line.startswith("active_partner_rate,2026-07,") and line.endswith(",True")


def test_a_change_that_rounds_to_nothing_shows_no_arrow():
    from datetime import datetime

    from partnerkpi.catalog import load_catalog
    from partnerkpi.engine.result import KpiRow

    def line(value: float, change: float) -> str:
        row = KpiRow(kpi="partner_churn_rate", period="2026-10", period_start=datetime(2026, 10, 1),
                     period_end=datetime(2026, 11, 1), value=value, unit="%", previous=value - change, change=change)
        console = Console(file=io.StringIO(), width=100, color_system=None)
        for table in scorecard_tables([row], load_catalog()):
            console.print(table)
        return next(x for x in console.file.getvalue().splitlines() if "Partner Churn" in x)

    # 0.4 % after 0.44 %: a change of -0.04 pp shows as 0.0 at one decimal, so "=", not a falling arrow
    assert "= 0.0 pp" in line(0.4, -0.04) and "▼" not in line(0.4, -0.04)
    assert "▼ -0.1 pp" in line(0.4, -0.06)  # -0.06 rounds to -0.1: a real fall
