"""Readable Rich tables of KPI rows. By default a summary a program manager reads at 100 columns (each
KPI's latest period: value, change, band, status); `wide=True` shows every period as a column."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from rich.table import Table
from rich.text import Text

from partnerkpi.catalog import Catalog
from partnerkpi.catalog.model import CATEGORY_TITLES, KPI
from partnerkpi.engine.result import KpiRow
from partnerkpi.reports.numbers import format_change, format_value

__all__ = ["BAND_STYLES", "format_value", "scorecard_tables", "trend_arrow"]

BAND_STYLES = {"green": "bold green", "amber": "bold yellow", "red": "bold red", "grey": "white"}
STATUS_STYLES = {"good": "bold green", "watch": "bold yellow", "poor": "bold red"}


def trend_arrow(kpi: KPI, change: float | None) -> Text:
    """▲/▼ for the change against the previous period, green when it is an improvement."""
    if change is None:
        return Text("·", style="dim")
    if abs(change) < 1e-9:
        return Text("=", style="dim")
    better = (change > 0) == (kpi.direction == "up")
    return Text("▲" if change > 0 else "▼", style="green" if better else "red")


def _band_style(kpi: KPI, row: KpiRow) -> str:
    band = next((b for b in kpi.bands if b.name == row.band), None) if row.band else None
    return BAND_STYLES.get(band.color, "") if band else ""


def _cell(kpi: KPI, row: KpiRow, currency: str | None) -> Text:
    return Text(format_value(row.value, kpi.unit, currency), style=_band_style(kpi, row))


def _status(kpi: KPI, row: KpiRow, currency: str | None) -> Text:
    return Text(row.status or "", style=STATUS_STYLES.get(row.status or "", ""))


def _change(kpi: KPI, row: KpiRow, currency: str | None) -> Text:
    if row.change is None:
        return Text("")
    text = format_change(row.change, kpi.unit, row.value, currency)
    if not any(c in "123456789" for c in text):  # rounds to no change at the value's precision
        return Text("= " + text, style="dim")
    arrow = trend_arrow(kpi, row.change)
    return arrow + Text(" " + text, style=arrow.style)


# The summary's columns after the KPI's name: (header, justify, cell).
SummaryColumn = tuple[str, str, Callable[[KPI, KpiRow, str | None], Text]]
SUMMARY_COLUMNS: list[SummaryColumn] = [
    ("period", "left", lambda kpi, row, currency: Text(row.period)),
    ("value", "right", _cell),
    ("change", "right", _change),
    ("band", "left", lambda kpi, row, currency: Text(row.band or "", style=_band_style(kpi, row))),
    ("status", "left", _status),
]


def _kpi_label(kpi: KPI) -> Text:
    return Text(kpi.name) + Text(f" ({kpi.timing})" if kpi.timing else "", style="dim")


def _by_segment(rows: Sequence[KpiRow]) -> dict[tuple, list[KpiRow]]:
    by_segment: dict[tuple, list[KpiRow]] = defaultdict(list)
    for row in rows:
        by_segment[tuple(sorted(row.segment.items()))].append(row)
    return by_segment


def _title(segment: tuple) -> str:
    return "Whole program" if not segment else ", ".join(f"{k} = {v}" for k, v in segment)


def scorecard_tables(rows: Sequence[KpiRow], catalog: Catalog, *, wide: bool = False,
                     currency: str | None = None) -> list[Table]:
    """One table per segment (the whole program first), KPIs grouped by category: each KPI's latest period
    (its value, change and band), or with `wide` every period as a column."""
    make = _wide_table if wide else _summary_table
    return [make(_title(segment), seg_rows, catalog, currency) for segment, seg_rows in _by_segment(rows).items()]


def _summary_table(title: str, rows: list[KpiRow], catalog: Catalog, currency: str | None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("KPI", overflow="fold")
    for header, justify, _ in SUMMARY_COLUMNS:
        table.add_column(header, justify=justify, no_wrap=True)
    latest: dict[str, KpiRow] = {}
    for row in sorted(rows, key=lambda r: r.period_start):
        latest[row.kpi] = row
    _add_rows(table, catalog, latest, lambda kpi, row: [cell(kpi, row, currency) for _, _, cell in SUMMARY_COLUMNS])
    return table


def _wide_table(title: str, rows: list[KpiRow], catalog: Catalog, currency: str | None) -> Table:
    periods = sorted({(r.period_start, r.period) for r in rows})
    table = Table(title=title, title_justify="left")
    table.add_column("KPI", no_wrap=True)
    for _, label in periods:
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column("change", justify="right", no_wrap=True)
    table.add_column("band", no_wrap=True)
    table.add_column("status", no_wrap=True)
    cells = {(r.kpi, r.period): r for r in rows}
    latest = {kpi.id: r for kpi in catalog for _, label in periods if (r := cells.get((kpi.id, label)))}

    def line(kpi: KPI, last: KpiRow) -> list[Text]:
        values = [_cell(kpi, r, currency) if (r := cells.get((kpi.id, label))) else Text("") for _, label in periods]
        return [*values, _change(kpi, last, currency), Text(last.band or "", style=_band_style(kpi, last)),
                _status(kpi, last, currency)]

    _add_rows(table, catalog, latest, line)
    return table


def _add_rows(table: Table, catalog: Catalog, latest: dict[str, KpiRow],
              cells: Callable[[KPI, KpiRow], list[Text]]) -> None:
    """A row per KPI with rows (in catalog order), under a heading row per category."""
    current_category = None
    for kpi in catalog:
        row = latest.get(kpi.id)
        if row is None:
            continue
        if kpi.category != current_category:
            current_category = kpi.category
            table.add_row(Text(CATEGORY_TITLES[kpi.category], style="bold underline"))
        table.add_row(_kpi_label(kpi), *cells(kpi, row))
