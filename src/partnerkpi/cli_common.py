"""What every `partnerkpi` command shares: the consoles, the common options, opening the hub (and saying
which server owns a locked file), dates and ranges. The command modules (cli, cli_review, cli_health,
cli_impact, cli_alerts) import from here, so none of them imports another."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from partnerkpi.engine.periods import parse_day
from partnerkpi.errors import StoreError
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings

# Piped output gets room for a scorecard (Rich would fall back to 80 columns); COLUMNS still wins.
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err = Console(stderr=True)

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


def _hub(db: str | None, catalog: list[Path] | None = None, read_only: bool = False) -> Hub:
    return _open(Settings.from_env(db, tuple(catalog or ())), read_only)


def _open(settings: Settings, read_only: bool = False) -> Hub:
    """The hub of `settings`; a DB locked by a running `partnerkpi serve` says so, and how to proceed."""
    try:
        return Hub.open(
            settings.db, catalog_paths=settings.catalog_paths, read_only=read_only, memory_limit=settings.memory_limit,
            bounds=settings.time_bounds,
        )
    except StoreError as exc:
        server = _running_server(settings.db) if "lock" in str(exc.__cause__).lower() else None
        if server is None:
            raise
        url, pid = server
        raise StoreError(
            f"the partnerkpi server at {url} (pid {pid}) owns {settings.db} (DuckDB allows one writer per file)",
            hint=f"stop the server (Ctrl-C in its terminal, or `kill {pid}`) and run this again; or send files to it "
            f"with `partnerkpi import --server {url} --token <API token> FILES` (an admin's token: make one at "
            f"{url}/admin/tokens); read through its pages and {url}/api/v1",
        ) from exc


# -- the server marker: `<db>.server` says which server process owns the DuckDB file ------------------
def _marker(db: str) -> Path:
    return Path(f"{db}.server")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _running_server(db: str) -> tuple[str, int] | None:
    """(url, pid) of the live server that owns `db`, from its marker; None without one."""
    try:
        info = json.loads(_marker(db).read_text())
        url, pid = str(info["url"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (url, pid) if pid > 0 and _alive(pid) else None


def _write_marker(db: str, url: str) -> Path:
    marker = _marker(db)
    tmp = marker.with_name(marker.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(),
                               "started_at": datetime.now(UTC).isoformat(timespec="seconds")}))
    tmp.replace(marker)
    return marker


def _remove_marker(marker: Path) -> None:
    try:
        if json.loads(marker.read_text()).get("pid") == os.getpid():
            marker.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _parse_date(text: str | None, option: str) -> date | None:
    return parse_day(text, option)


def _range(hub: Hub, grain: str, start: date | None, end: date | None) -> tuple[date, date]:
    default_start, end = hub.default_range(grain, end=end)
    return start or default_start, end


