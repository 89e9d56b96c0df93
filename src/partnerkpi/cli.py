"""The `partnerkpi` command: builds a Hub and calls it. Errors map to exit codes here, in one place."""

from __future__ import annotations

import os
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from partnerkpi.catalog.model import ATTRIBUTE_TITLES
from partnerkpi.cli_admin import keys_app, tokens_app, users_app
from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings

app = typer.Typer(
    help="KPIs of a partner hub: adoption, engagement, efficiency, experience, access, compliance, outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output gets room for a scorecard (Rich would fall back to 80 columns); COLUMNS still wins.
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err = Console(stderr=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")

DbOption = Annotated[
    str | None, typer.Option("--db", help="DuckDB file (default: $PARTNERKPI_DB, else ./partnerkpi.duckdb)")
]
CatalogOption = Annotated[
    list[Path] | None, typer.Option("--catalog", help="Extra KPI catalog YAML file(s), loaded beside the built-in")
]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Kind(StrEnum):
    partners = "partners"
    users = "users"
    events = "events"
    segment = "segment"


def _hub(db: str | None, catalog: list[Path] | None = None, read_only: bool = False) -> Hub:
    settings = Settings.from_env(db, tuple(catalog or ()))
    return Hub.open(
        settings.db, catalog_paths=settings.catalog_paths, read_only=read_only, memory_limit=settings.memory_limit
    )


def _parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} '{text}' is not a date", hint=f"write {option} as YYYY-MM-DD") from None


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="CSV, JSONL or Parquet files")],
    db: DbOption = None,
    kind: Annotated[Kind | None, typer.Option(help="What the files hold (default: from the file name)")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping of the source's columns/events")] = None,
) -> None:
    """Import files without losing anything: bad rows are kept with their reason."""
    from partnerkpi.ingest import summary_table

    with _hub(db) as hub:
        summaries = hub.import_files(files, kind=kind.value if kind else None, mapping=mapping, progress=True)
    out.print(summary_table(summaries))


@app.command()
def scorecard(
    db: DbOption = None,
    grain: Annotated[str, typer.Option(help="week, month, quarter or year")] = "month",
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD); default: 6 periods back")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End day, exclusive; default: after the last event")] = None,
    by: Annotated[str | None, typer.Option(help="Segment by a partner trait (type, tier, region, ...)")] = None,
    kpi: Annotated[list[str] | None, typer.Option("--kpi", help="Only these KPI ids (repeatable)")] = None,
    format: Annotated[Format, typer.Option(help="table, json or csv")] = Format.table,
    catalog: CatalogOption = None,
) -> None:
    """KPI rows for every period of a range, for the program and per segment."""
    from partnerkpi.reports import rows_to_csv, rows_to_json, scorecard_tables

    with _hub(db, catalog) as hub:
        start, end = _range(hub, grain, _parse_date(from_, "--from"), _parse_date(to, "--to"))
        rows = hub.scorecard(grain, start, end, by=by, kpis=kpi or None, progress=sys.stderr.isatty())
        if format is Format.json:
            sys.stdout.write(rows_to_json(rows) + "\n")
        elif format is Format.csv:
            sys.stdout.write(rows_to_csv(rows))
        else:
            for table in scorecard_tables(rows, hub.catalog):
                out.print(table)


def _range(hub: Hub, grain: str, start: date | None, end: date | None) -> tuple[date, date]:
    default_start, end = hub.default_range(grain, end=end)
    return start or default_start, end


@app.command()
def kpis(catalog: CatalogOption = None) -> None:
    """The KPI catalog: every KPI with its category, unit, direction and definition."""
    from rich.table import Table

    from partnerkpi.catalog import load_catalog
    from partnerkpi.catalog.model import CATEGORY_TITLES

    cat = load_catalog(tuple(catalog or ()))
    table = Table(title=f"{len(cat)} KPIs", title_justify="left")
    for column in ("id", "name", "category", "unit", "better", "timing"):
        table.add_column(column)
    for k in cat:
        better = "higher" if k.direction == "up" else "lower"
        table.add_row(k.id, k.name, CATEGORY_TITLES[k.category], k.unit, better, k.timing or "")
    out.print(table)


@app.command()
def explain(
    kpi_id: Annotated[str, typer.Argument(metavar="KPI", help="A KPI id, e.g. portal_usage_rate")],
    db: DbOption = None,
    grain: Annotated[str, typer.Option(help="Grain of the latest value")] = "month",
    catalog: CatalogOption = None,
) -> None:
    """All 12 attributes of a KPI, with its latest value, band and trend when there is data."""
    from partnerkpi.catalog import load_catalog
    from partnerkpi.reports import format_value, trend_arrow

    settings = Settings.from_env(db, tuple(catalog or ()))
    kpi = load_catalog(settings.catalog_paths).get(kpi_id)
    if db is not None or Path(settings.db).exists():
        with _hub(db, catalog) as hub:
            start, end = _range(hub, grain, None, None)
            rows = [r for r in hub.scorecard(grain, start, end, kpis=[kpi.id]) if not r.segment]
        if rows:
            last = rows[-1]
            history = "  ".join(f"{r.period}: {format_value(r.value, kpi.unit)}" for r in rows)
            line = f"[bold]{format_value(last.value, kpi.unit)}[/] in {last.period}"
            line += f" (band: {last.band})" if last.band else ""
            out.print(Panel(f"{line}  {trend_arrow(kpi, last.change)}\n{history}", title="Latest"))
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


@app.command()
def demo(
    db: DbOption = None,
    partners: Annotated[int, typer.Option(help="How many partners")] = 300,
    months: Annotated[int, typer.Option(help="How many months of history")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data")] = 7,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write the demo files")] = None,
) -> None:
    """Generate a realistic partner program, import it, and print its scorecard."""
    from partnerkpi.demo import generate

    settings = Settings.from_env(db)
    target = out_dir or Path(settings.db).resolve().parent / "demo-data"
    files = generate(target, partners=partners, months=months, seed=seed, progress=True)
    with _hub(settings.db) as hub:
        summaries = hub.import_files([files.partners, files.users, files.events], progress=True)
        from partnerkpi.ingest import summary_table

        out.print(summary_table(summaries))
    scorecard(db=settings.db, by=None)
    out.print(f"\nNext: [bold]partnerkpi scorecard --db {settings.db} --by type[/], "
              f"[bold]partnerkpi explain portal_usage_rate --db {settings.db}[/]")


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    catalog: CatalogOption = None,
) -> None:
    """Serve the dashboard, the JSON API and the collector. The server owns the DuckDB file while it runs."""
    import uvicorn

    from partnerkpi.web import create_app

    settings = Settings.from_env(db, tuple(catalog or ()))
    out.print(f"partnerkpi serving {settings.db} at [bold]http://{host}:{port}[/]")
    uvicorn.run(create_app(settings), host=host, port=port, workers=1, log_level="warning")


def main() -> None:
    """Entry point: run the app, turning partnerkpi errors into a message and an exit code."""
    try:
        app(standalone_mode=False)
    except PartnerKPIError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        raise SystemExit(130) from None
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise


if __name__ == "__main__":
    main()
