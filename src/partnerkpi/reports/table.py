"""Readable Rich tables: a KPI a row, periods as columns, band colours and change arrows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from partnerkpi.catalog import Catalog
from partnerkpi.catalog.model import CATEGORY_TITLES, KPI
from partnerkpi.engine.result import KpiRow

BAND_STYLES = {"green": "bold green", "amber": "bold yellow", "red": "bold red", "grey": "white"}
STATUS_STYLES = {"good": "bold green", "watch": "bold yellow", "poor": "bold red"}


def format_value(value: float | None, unit: str) -> str:
    """A value for people: rounded for display only (bands are judged on the exact value)."""
    if value is None:
        return "–"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "currency":
        return f"{value:,.0f}"
    if unit in {"days", "hours", "minutes"}:
        return f"{value:.1f} {unit[0]}"
    if unit == "NPS":
        return f"{value:+.0f}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def trend_arrow(kpi: KPI, change: float | None) -> Text:
    """▲/▼ for the change against the previous period, green when it is an improvement."""
    if change is None:
        return Text("·", style="dim")
    if abs(change) < 1e-9:
        return Text("=", style="dim")
    better = (change > 0) == (kpi.direction == "up")
    return Text("▲" if change > 0 else "▼", style="green" if better else "red")


def _cell(kpi: KPI, row: KpiRow) -> Text:
    text = Text(format_value(row.value, kpi.unit))
    if row.band is not None:
        band = next(b for b in kpi.bands if b.name == row.band)
        text.stylize(BAND_STYLES.get(band.color, ""))
    return text


def scorecard_tables(rows: Sequence[KpiRow], catalog: Catalog) -> list[Table]:
    """One table per segment (the whole program first), KPIs grouped by category."""
    by_segment: dict[tuple, list[KpiRow]] = defaultdict(list)
    for row in rows:
        by_segment[tuple(sorted(row.segment.items()))].append(row)
    tables = []
    for segment, seg_rows in by_segment.items():
        periods = sorted({(r.period_start, r.period) for r in seg_rows})
        title = "Whole program" if not segment else ", ".join(f"{k} = {v}" for k, v in segment)
        table = Table(title=title, title_justify="left", show_lines=False)
        table.add_column("KPI", no_wrap=True)
        for _, label in periods:
            table.add_column(label, justify="right")
        table.add_column("", justify="center")
        table.add_column("band")
        table.add_column("status")
        cells = {(r.kpi, r.period): r for r in seg_rows}
        current_category = None
        for kpi in catalog:
            if not any((kpi.id, label) in cells for _, label in periods):
                continue
            if kpi.category != current_category:
                current_category = kpi.category
                table.add_row(Text(CATEGORY_TITLES[kpi.category], style="bold underline"))
            kpi_rows = [cells.get((kpi.id, label)) for _, label in periods]
            last = kpi_rows[-1]
            marker = f" ({kpi.timing})" if kpi.timing else ""
            table.add_row(
                Text(kpi.name) + Text(marker, style="dim"),
                *[_cell(kpi, r) if r else Text("") for r in kpi_rows],
                trend_arrow(kpi, last.change if last else None),
                Text(last.band or "") if last else Text(""),
                Text(last.status or "", style=STATUS_STYLES.get(last.status or "", "")) if last else Text(""),
            )
        tables.append(table)
    return tables
