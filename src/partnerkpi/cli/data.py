"""`partnerkpi import` and `refresh`: bring data in (from files or to a running server) and keep the rollups fresh."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from partnerkpi.cli.common import DbOption, _open, err, out
from partnerkpi.errors import InputFileError, PartnerKPIError, UsageError
from partnerkpi.hub import Hub
from partnerkpi.settings import Settings


class Kind(StrEnum):
    partners = "partners"
    users = "users"
    events = "events"
    segment = "segment"


def import_(
    files: Annotated[list[Path], typer.Argument(help="CSV, JSONL or Parquet files")],
    db: DbOption = None,
    kind: Annotated[Kind | None, typer.Option(help="What the files hold (default: from the file name)")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping of the source's columns/events")] = None,
    server: Annotated[str | None, typer.Option(
        help="Send the files to the running `partnerkpi serve` at this URL (it owns its DuckDB file)")] = None,
    token: Annotated[str | None, typer.Option(envvar="PARTNERKPI_TOKEN", help="An admin's API token, for --server")
                     ] = None,
) -> None:
    """Import files without losing anything: bad rows are kept with their reason."""
    from partnerkpi.ingest import summary_table

    if server is not None:
        if db is not None:
            raise UsageError("--db and --server exclude each other: the server imports into its own database",
                             hint="leave out --db, or leave out --server to import into a file no server owns")
        summaries = _import_remote(server, token, files, kind.value if kind else None, mapping)
        out.print(summary_table(summaries))
    else:
        settings = Settings.from_env(db)
        with _open(settings) as hub:
            summaries = hub.import_files(files, kind=kind.value if kind else None, mapping=mapping, progress=True)
            out.print(summary_table(summaries))
            if any(s.accepted for s in summaries):
                _watch(hub, settings)


def refresh(
    db: DbOption = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild every rollup, fresh or not")] = False,
) -> None:
    """Bring the rollups up to date (opening the database already heals stale ones; --full rebuilds all)."""
    with _open(Settings.from_env(db)) as hub:
        if full:
            hub.prepare(progress=True, full=True)
        out.print("rollups rebuilt" if full else "rollups up to date", highlight=False)


def _watch(hub: Hub, settings: Settings) -> None:
    """Evaluate the alert rules after new data, and say what changed (a broken rule file does not undo the
    import: it is reported, and the data stays)."""
    from partnerkpi.insights.watch import run_watch

    try:
        run = run_watch(hub, settings)
    except PartnerKPIError as exc:
        hint = f"\n  how to fix: {exc.hint}" if exc.hint else ""
        err.print(f"[yellow]alerts not evaluated:[/] {exc.message}{hint}", highlight=False)
        return
    out.print(f"alerts: {len(run.fired)} fired, {len(run.resolved)} resolved, {run.still_active} still active"
              f" (partnerkpi alerts list)", highlight=False)


class ServerRefused(PartnerKPIError):
    """`import --server`: the server refused the files (4xx, exit 3), failed or could not be reached (exit 5)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 3) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def _import_remote(server: str, token: str | None, files: list[Path], kind: str | None, mapping: Path | None):
    """POST the files to a running server's /api/v1/imports; its summaries, shown under the local names."""
    import httpx

    from partnerkpi.ingest import ImportSummary

    url = (server if "://" in server else f"http://{server}").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server '{server}' is not an http(s) URL", hint="e.g. --server http://127.0.0.1:8000")
    if not token:
        raise UsageError("--server needs an admin's API token",
                         hint="pass --token TOKEN or set $PARTNERKPI_TOKEN; make one with `partnerkpi tokens create "
                         "<admin email>` (while no server owns the database)")
    for path in [*files, *([mapping] if mapping else [])]:
        if not path.is_file():
            raise InputFileError("the file does not exist", file=str(path), hint="check the path")
    err.print(f"sending {len(files)} file(s) to {url}", highlight=False)
    with ExitStack() as stack:
        parts = [("files", (p.name, stack.enter_context(p.open("rb")), "application/octet-stream")) for p in files]
        if mapping:
            parts.append(("mapping", (mapping.name, stack.enter_context(mapping.open("rb")), "application/yaml")))
        try:
            response = httpx.post(f"{url}/api/v1/imports", files=parts, data={"kind": kind} if kind else None,
                                  headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx.Timeout(None, connect=10))
        except httpx.TransportError as exc:
            raise ServerRefused(f"cannot reach the partnerkpi server at {url}: {exc}", exit_code=5,
                                hint="check the URL, and that `partnerkpi serve` runs there") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.is_success:
        body = body if isinstance(body, dict) else {}
        message = body.get("error") or body.get("detail") or response.text.strip()[:300] or response.reason_phrase
        raise ServerRefused(f"the server at {url} refused the import ({response.status_code}): {message}",
                            hint=body.get("hint"), exit_code=5 if response.status_code >= 500 else 3)
    fields = {f.name for f in dataclasses.fields(ImportSummary)}
    return [ImportSummary(**{**{k: v for k, v in item.items() if k in fields}, "source": str(path)})
            for path, item in zip(files, body["imports"], strict=True)]



def register(app: typer.Typer) -> None:
    """Add `import` and `refresh` to `app`."""
    app.command("import")(import_)
    app.command()(refresh)
