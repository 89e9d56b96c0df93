"""`partnerkpi scorecard`, `kpis` and `explain`: the KPI rows of a range, the catalog, one KPI in full."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from partnerkpi.catalog.model import ATTRIBUTE_TITLES
from partnerkpi.cli.common import (
    CatalogOption,
    DbOption,
    ExportFormat,
    OutOption,
    TargetsOption,
    _parse_date,
    _range,
    _reader,
    err,
    out,
    wants_file,
    write_export,
)
from partnerkpi.reports import exports
from partnerkpi.settings import Settings


def scorecard(
    db: DbOption = None,
    grain: Annotated[str, typer.Option(help="week, month, quarter or year")] = "month",
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD); default: 6 periods back")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End day, exclusive; default: after the last event")] = None,
    by: Annotated[str | None, typer.Option(help="Segment by a partner trait (type, tier, region, ...)")] = None,
    kpi: Annotated[list[str] | None, typer.Option("--kpi", help="Only these KPI ids (repeatable)")] = None,
    format: Annotated[ExportFormat, typer.Option(help="table, json, csv, xlsx or parquet")] = ExportFormat.table,
    out_path: OutOption = None,
    partial: Annotated[bool, typer.Option(
        "--partial", help="Also show the running period the data reaches into, marked partial")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Table: every period as a column (default: the latest)")
                    ] = False,
    catalog: CatalogOption = None,
    targets: TargetsOption = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The data is complete up to this day (e.g. the export's date): a range ending by then is "
        "shown whole, periods after the last event included")] = None,
) -> None:
    """KPI rows for every period of a range, for the program and per segment, each with its status. The table
    shows each KPI's latest period (value, change, band, status); --wide shows every period; json and csv hold
    every row, as does a csv, xlsx or parquet file with --out (one KPI's series: --kpi ID).
    Only periods the data covers completely, unless --partial."""
    from partnerkpi.reports import rows_to_csv, scorecard_tables

    with _reader(db, catalog, targets=targets) as hub:
        start, end = _range(hub, grain, _parse_date(from_, "--from"), _parse_date(to, "--to"), partial=partial)
        complete = _parse_date(as_of, "--as-of")
        if complete is None or complete < end:
            end, note = hub.covered_range(grain, start, end, partial=partial)
            if note:
                err.print(f"note: {note}", highlight=False, soft_wrap=True)
        rows = hub.scorecard(grain, start, end, by=by, kpis=kpi or None, progress=sys.stderr.isatty())
        running = hub.running_period(grain) if partial else None
        is_partial = lambda r: running is not None and r.period_start == running.start  # noqa: E731
        records = [{**r.to_json(), **({"partial": True} if is_partial(r) else {})} for r in rows]
        if wants_file(format, out_path):
            write_export(exports.table("scorecard", records), format, out_path)
            return
        if format is ExportFormat.json:
            sys.stdout.write(json.dumps(records, allow_nan=False) + "\n")
            return
        shown = [dataclasses.replace(r, period=f"{r.period} (partial)") if is_partial(r) else r for r in rows]
        if format is ExportFormat.csv:
            sys.stdout.write(rows_to_csv(shown))
        else:
            for table in scorecard_tables(shown, hub.catalog, wide=wide):
                out.print(table)


def kpis(catalog: CatalogOption = None) -> None:
    """The KPI catalog: every KPI with its category, unit, direction and definition."""
    from rich.table import Table

    from partnerkpi.catalog import load_catalog
    from partnerkpi.catalog.model import CATEGORY_TITLES

    cat = load_catalog(tuple(catalog or ()))
    table = Table(title=f"{len(cat)} KPIs", title_justify="left")
    for column in ("id", "name", "category", "unit", "better", "timing"):
        table.add_column(column, no_wrap=column in ("id", "better", "timing"), overflow="fold")
    for k in cat:
        better = "higher" if k.direction == "up" else "lower"
        table.add_row(k.id, k.name, CATEGORY_TITLES[k.category], k.unit, better, k.timing or "")
    out.print(table)


def explain(
    kpi_id: Annotated[str, typer.Argument(metavar="KPI", help="A KPI id, e.g. portal_usage_rate")],
    db: DbOption = None,
    grain: Annotated[str, typer.Option(help="Grain of the latest value")] = "month",
    catalog: CatalogOption = None,
) -> None:
    """All 12 attributes of a KPI, with its latest value, band and trend when there is data."""
    from partnerkpi.catalog import load_catalog
    from partnerkpi.locations import parse_location
    from partnerkpi.reports import format_change, format_value, trend_arrow

    settings = Settings.from_env(db, tuple(catalog or ()))
    kpi = load_catalog(settings.catalog_paths).get(kpi_id)
    location = parse_location(settings.db)
    if db is not None or not location.is_file or Path(location.target).exists():
        with _reader(db, catalog) as hub:
            start, end = _range(hub, grain, None, None)
            rows = [r for r in hub.scorecard(grain, start, end, kpis=[kpi.id]) if not r.segment]
        if rows:
            last = rows[-1]
            history = "  ".join(f"{r.period}: {format_value(r.value, kpi.unit)}" for r in rows)
            line = f"[bold]{format_value(last.value, kpi.unit)}[/] in {last.period}"
            line += f" (band: {last.band})" if last.band else ""
            line += f", {last.status} ({last.status_note})" if last.status else ""
            change = f" {format_change(last.change, kpi.unit, last.value)}" if last.change is not None else ""
            out.print(Panel(f"{line}  {trend_arrow(kpi, last.change)}{change}\n{history}", title="Latest"))
    out.print(Panel(_explain_text(kpi), title=f"{kpi.name} ({kpi.id})", title_align="left"))


def _explain_text(kpi) -> str:
    better = "higher" if kpi.direction == "up" else "lower"
    parts = [
        ("Unit / better / timing", f"{kpi.unit} / {better} / {kpi.timing or '-'}"),
        ("Bands", ", ".join(f"{b.name}: {_band_text(b)}" for b in kpi.bands) or "-"),
        ("Benchmarks", ", ".join(f"{b.value:g} {b.label} ({b.source})" for b in kpi.benchmarks) or "-"),
    ]
    for attribute, title in ATTRIBUTE_TITLES:
        value = getattr(kpi, attribute)
        body = value if isinstance(value, str) else "\n".join(f"• {item}" for item in value)
        if attribute == "change_impact":
            body += "".join(f"\n• {r.kpi}: {r.effect}" for r in kpi.related)
        parts.append((title, body))
    return "\n\n".join(f"[bold]{title}[/]\n{body}" for title, body in parts)


def _band_text(band) -> str:
    low = "" if band.min is None else f"{band.min:g} {'<=' if band.min_inclusive else '<'} "
    high = "" if band.max is None else f" {'<=' if band.max_inclusive else '<'} {band.max:g}"
    return f"{low}value{high}"



def register(app: typer.Typer) -> None:
    """Add `scorecard`, `kpis` and `explain` to `app`."""
    app.command()(scorecard)
    app.command()(kpis)
    app.command()(explain)
