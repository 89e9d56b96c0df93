"""What every `partnerkpi` command shares: the consoles, the common options, opening the hub (and saying
which server owns a locked file), dates and ranges. Every command module of
`partnerkpi.cli` imports from here."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from partnerkpi.engine.periods import parse_day
from partnerkpi.errors import NoDatabaseError, StoreError, UsageError
from partnerkpi.hub import Hub
from partnerkpi.local_server import read_marker, snapshot_from
from partnerkpi.locations import parse_location
from partnerkpi.reports.exports import Table, export
from partnerkpi.settings import DEFAULT_DB, Settings

# Piped output gets room for a scorecard (Rich would fall back to 80 columns); COLUMNS still wins.
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err = Console(stderr=True)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Where the data lives: a DuckDB file, postgresql://user@host/db or "
                             "spark:local[*]?lake=PATH (default: $PARTNERKPI_DB, else ./partnerkpi.duckdb)")
]
CatalogOption = Annotated[
    list[Path] | None, typer.Option("--catalog", help="Extra KPI catalog YAML file(s), loaded beside the built-in")
]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(StrEnum):
    """The formats of a list command that also exports: csv, xlsx and parquet files with --out."""

    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    parquet = "parquet"


OutOption = Annotated[Path | None, typer.Option(
    "--out", help="Write the rows to this file (csv, xlsx or parquet; needed for xlsx and parquet)")]


def wants_file(format: ExportFormat, out_path: Path | None) -> bool:
    """Whether the rows go to an export file; xlsx and parquet need --out, and --out needs such a format."""
    if format in (ExportFormat.xlsx, ExportFormat.parquet) and out_path is None:
        raise UsageError(f"--format {format.value} writes a binary file", hint=f"add --out rows.{format.value}")
    if out_path is not None and format in (ExportFormat.table, ExportFormat.json):
        raise UsageError(f"--out writes csv, xlsx or parquet, not {format.value}",
                         hint="add --format csv, --format xlsx or --format parquet")
    return out_path is not None


def write_export(data: Table, format: ExportFormat, out_path: Path) -> None:
    """Write an export file and say where (on stderr: stdout stays clean for pipes)."""
    out_path.write_bytes(export(data, format.value))
    err.print(f"{len(data.rows)} rows written to {out_path}", highlight=False)


TargetsOption = Annotated[Path | None, typer.Option(
    "--targets", help="Targets, band sets and judgment settings YAML, read after the built-in defaults "
    "(default: $PARTNERKPI_TARGETS)")]


def _settings(db: str | None, catalog: list[Path] | None, targets: Path | None) -> Settings:
    settings = Settings.from_env(db, tuple(catalog or ()))
    return dataclasses.replace(settings, targets=targets) if targets is not None else settings


def _hub(db: str | None, catalog: list[Path] | None = None, read_only: bool = False,
         targets: Path | None = None) -> Hub:
    """The hub of a writing command (the file is created when missing)."""
    return _open(_settings(db, catalog, targets), read_only)


@contextmanager
def _reader(db: str | None, catalog: list[Path] | None = None, targets: Path | None = None) -> Iterator[Hub]:
    """The hub of a read command: never creates a database; opens the file read-only, or, while a server
    owns it, a consistent snapshot the server writes (see `partnerkpi.local_server`)."""
    settings = _settings(db, catalog, targets)
    location = parse_location(settings.db)
    if not location.is_file:  # :memory:, PostgreSQL or a lake: no file to find, no local server to ask
        with _open(settings, read_only=True) as hub:
            yield hub
        return
    if not Path(location.target).is_file():
        raise NoDatabaseError(location.target, DEFAULT_DB)
    settings = dataclasses.replace(settings, db=location.target)
    server = read_marker(settings.db)
    if server is None:
        with _open(settings, read_only=True) as hub:
            yield hub
        return
    with snapshot_from(server, settings.db) as copy:
        with _open(dataclasses.replace(settings, db=str(copy)), read_only=True) as hub:
            yield hub


def _open(settings: Settings, read_only: bool = False) -> Hub:
    """The hub of `settings`; a DB locked by a running `partnerkpi serve` says so, and how to proceed."""
    try:
        return Hub.open(
            settings.db, catalog_paths=settings.catalog_paths, read_only=read_only, memory_limit=settings.memory_limit,
            targets_path=settings.targets,
            bounds=settings.time_bounds,
        )
    except StoreError as exc:
        location = parse_location(settings.db)
        locked = location.is_file and "lock" in str(exc.__cause__).lower()
        server = read_marker(location.target) if locked else None
        if server is None:
            raise
        url, pid = server.url, server.pid
        raise StoreError(
            f"the partnerkpi server at {url} (pid {pid}) owns {settings.db} (DuckDB allows one writer per file)",
            hint=f"stop the server (Ctrl-C in its terminal, or `kill {pid}`) and run this again; or send files to it "
            f"with `partnerkpi import --server {url} --token <API token> FILES` (an admin's token: make one at "
            f"{url}/admin/tokens); read commands (scorecard, review, health, ...) work meanwhile",
        ) from exc


def csv_text(records: list[dict], fields: list[str] | None = None) -> str:
    """Records as CSV (None as an empty cell); the header is `fields`, else the first record's keys."""
    buffer = io.StringIO()
    fields = fields or (list(records[0]) if records else None)
    if fields:
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
    return buffer.getvalue()


def _parse_date(text: str | None, option: str) -> date | None:
    return parse_day(text, option)


def _range(hub: Hub, grain: str, start: date | None, end: date | None, partial: bool = False
           ) -> tuple[date, date]:
    running = hub.running_period(grain) if partial and end is None else None
    default_start, end = hub.default_range(grain, end=running.end.date() if running else end)
    return start or default_start, end


