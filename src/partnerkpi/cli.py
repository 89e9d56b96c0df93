"""The `partnerkpi` command: builds a Hub and calls it. Errors map to exit codes here, in one place."""

from __future__ import annotations

import dataclasses
import json
import secrets
import signal
import sys
from contextlib import ExitStack
from enum import StrEnum
from importlib import import_module
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from partnerkpi.catalog.model import ATTRIBUTE_TITLES
from partnerkpi.cli_admin import keys_app, tokens_app, users_app
from partnerkpi.cli_common import (
    CatalogOption,
    DbOption,
    Format,
    TargetsOption,
    _open,
    _parse_date,
    _range,
    _reader,
    err,
    out,
)
from partnerkpi.cli_subscriptions import subscriptions_app
from partnerkpi.errors import InputFileError, PartnerKPIError, UsageError
from partnerkpi.hub import Hub
from partnerkpi.local_server import remove_marker, write_marker
from partnerkpi.settings import Settings

app = typer.Typer(
    help="KPIs of a partner hub: adoption, engagement, efficiency, experience, access, compliance, outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
app.add_typer(subscriptions_app, name="subscriptions")


class Kind(StrEnum):
    partners = "partners"
    users = "users"
    events = "events"
    segment = "segment"


@app.command("import")
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


@app.command()
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


@app.command()
def scorecard(
    db: DbOption = None,
    grain: Annotated[str, typer.Option(help="week, month, quarter or year")] = "month",
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD); default: 6 periods back")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End day, exclusive; default: after the last event")] = None,
    by: Annotated[str | None, typer.Option(help="Segment by a partner trait (type, tier, region, ...)")] = None,
    kpi: Annotated[list[str] | None, typer.Option("--kpi", help="Only these KPI ids (repeatable)")] = None,
    format: Annotated[Format, typer.Option(help="table, json or csv")] = Format.table,
    partial: Annotated[bool, typer.Option(
        "--partial", help="Also show the running period the data reaches into, marked partial")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Table: every period as a column (default: the latest)")
                    ] = False,
    catalog: CatalogOption = None,
    targets: TargetsOption = None,
) -> None:
    """KPI rows for every period of a range, for the program and per segment, each with its status. The table
    shows each KPI's latest period (value, change, band, status); --wide shows every period; json and csv hold
    every row. Only periods the data covers completely, unless --partial."""
    from partnerkpi.reports import rows_to_csv, scorecard_tables

    with _reader(db, catalog, targets=targets) as hub:
        start, end = _range(hub, grain, _parse_date(from_, "--from"), _parse_date(to, "--to"), partial=partial)
        end, note = hub.covered_range(grain, start, end, partial=partial)
        if note:
            err.print(f"note: {note}", highlight=False, soft_wrap=True)
        rows = hub.scorecard(grain, start, end, by=by, kpis=kpi or None, progress=sys.stderr.isatty())
        running = hub.running_period(grain) if partial else None
        is_partial = lambda r: running is not None and r.period_start == running.start  # noqa: E731
        if format is Format.json:
            records = [{**r.to_json(), **({"partial": True} if is_partial(r) else {})} for r in rows]
            sys.stdout.write(json.dumps(records, allow_nan=False) + "\n")
            return
        shown = [dataclasses.replace(r, period=f"{r.period} (partial)") if is_partial(r) else r for r in rows]
        if format is Format.csv:
            sys.stdout.write(rows_to_csv(shown))
        else:
            for table in scorecard_tables(shown, hub.catalog, wide=wide):
                out.print(table)


@app.command()
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


@app.command()
def explain(
    kpi_id: Annotated[str, typer.Argument(metavar="KPI", help="A KPI id, e.g. portal_usage_rate")],
    db: DbOption = None,
    grain: Annotated[str, typer.Option(help="Grain of the latest value")] = "month",
    catalog: CatalogOption = None,
) -> None:
    """All 12 attributes of a KPI, with its latest value, band and trend when there is data."""
    from partnerkpi.catalog import load_catalog
    from partnerkpi.reports import format_change, format_value, trend_arrow

    settings = Settings.from_env(db, tuple(catalog or ()))
    kpi = load_catalog(settings.catalog_paths).get(kpi_id)
    if db is not None or Path(settings.db).exists():
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


@app.command()
def demo(
    db: DbOption = None,
    partners: Annotated[int, typer.Option(help="How many partners")] = 300,
    months: Annotated[int, typer.Option(help="How many months of history")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data")] = 7,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Where to write the demo files")] = None,
    host: Annotated[str, typer.Option(help="Address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8000,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the demo when it is ready")] = True,
    via_make: Annotated[bool, typer.Option("--via-make", hidden=True, help="Name `make demo PORT=` in hints")
                        ] = False,
) -> None:
    """Generate a realistic partner program, import it, print its scorecard and demo sign-ins, and serve it."""
    from partnerkpi.demo import generate

    settings = Settings.from_env(db)
    if serve_:
        _check_port(host, port, "partnerkpi demo", via_make)  # before minutes of work, not after
    target = out_dir or Path(settings.db).resolve().parent / "demo-data"
    files = generate(target, partners=partners, months=months, seed=seed, progress=True)
    with _open(settings) as hub:
        summaries = hub.import_files([files.partners, files.users, files.events], progress=True)
        from partnerkpi.ingest import summary_table

        out.print(summary_table(summaries))
        _watch(hub, settings)
    scorecard(db=settings.db, by=None, wide=False)
    with _open(settings) as hub:
        accounts, api_token = _demo_accounts(hub)
    url = _url(host, port)
    out.print(_sign_in_panel(url, accounts, api_token, serving=serve_), highlight=False)
    if serve_:
        _serve(settings, host, port)
    else:
        out.print(f"\nNext: [bold]partnerkpi serve --db {settings.db}[/], "
                  f"[bold]partnerkpi scorecard --db {settings.db} --by type[/], "
                  f"[bold]partnerkpi explain portal_usage_rate --db {settings.db}[/]")


DEMO_DOMAIN = "demo.partnerkpi"


def _demo_accounts(hub: Hub) -> tuple[list[tuple[str, str, str, str | None]], str]:
    """Fresh demo users (admin, analyst, a reseller's partner user) with new random passwords, and a new API
    token of the admin; earlier demo users go, with their tokens. Returns (role, email, password, partner)."""
    from partnerkpi.web.credentials import Credentials

    row = hub.store.con.execute(
        "SELECT partner_id FROM partners WHERE type IS NOT NULL "
        "ORDER BY type <> 'reseller', offboarded_at IS NOT NULL, partner_id LIMIT 1").fetchone()
    if row is None:
        raise UsageError("the demo database has no partner with a type", hint="run `partnerkpi demo` again")
    creds = Credentials(hub.store, clock=hub.clock)
    for user in creds.list_users():
        if user.email.endswith((f"@{DEMO_DOMAIN}", f".{DEMO_DOMAIN}")):
            creds.remove_user(user.email)
    accounts = [
        ("admin", f"admin@{DEMO_DOMAIN}", secrets.token_urlsafe(12), None),
        ("analyst", f"analyst@{DEMO_DOMAIN}", secrets.token_urlsafe(12), None),
        ("partner", f"partner@{row[0].lower()}.{DEMO_DOMAIN}", secrets.token_urlsafe(12), row[0]),
    ]
    for role, email, password, partner in accounts:
        creds.add_user(email, password, role, partner)
    return accounts, creds.create_token(accounts[0][1], name="demo")


def _sign_in_panel(url: str, accounts: list[tuple[str, str, str, str | None]], api_token: str,
                   serving: bool) -> Panel:
    from rich.console import Group
    from rich.table import Table

    users = Table(box=None, pad_edge=False)
    for column in ("role", "email", "password", "sees"):
        users.add_column(column)
    for role, email, password, partner in accounts:
        users.add_row(role, email, password, f"partner {partner} only" if partner else "the whole program")
    where = f"Sign in at [bold]{url}/signin[/]" + ("" if serving else " once `partnerkpi serve` runs")
    token = f"Admin API token, for the JSON API and `partnerkpi import --server {url} --token`:\n{api_token}"
    return Panel(Group(where, "", users, "", token), title="Demo sign-in (new passwords at every run)",
                 title_align="left", expand=False)


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    catalog: CatalogOption = None,
) -> None:
    """Serve the dashboard, the JSON API and the collector. The server owns the DuckDB file while it runs."""
    _serve(Settings.from_env(db, tuple(catalog or ())), host, port)


def _url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _bind_error(host: str, port: int) -> OSError | None:
    """Why `host:port` cannot be listened on (None: it can)."""
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(infos[0][4])
    except OSError as exc:
        return exc
    return None


def _check_port(host: str, port: int, command: str = "partnerkpi serve", via_make: bool = False) -> None:
    """Fail before any work when the port is taken, naming a free one and the command that uses it."""
    import errno

    exc = _bind_error(host, port)
    if exc is None:
        return
    if exc.errno != errno.EADDRINUSE:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                         hint="choose another --host or --port") from exc
    free = next((p for p in range(port + 1, min(port + 100, 65536)) if _bind_error(host, p) is None), None)
    other = free or port + 1
    run = f"make demo PORT={other}" if via_make else f"{command} --port {other}"
    raise UsageError(f"port {port} is in use on {host}; run `{run}`" + ("" if free else " with a free port"),
                     hint=f"use the free port above, or stop what listens on port {port}") from exc


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(settings: Settings, host: str, port: int) -> None:
    """Run the server (one uvicorn process owning the DuckDB file) until Ctrl-C or SIGTERM; while it runs,
    `<db>.server` names it, so other commands can say where to send their work."""
    import uvicorn

    from partnerkpi.web import create_app

    url = _url(host, port)
    _check_port(host, port)
    with _open(settings) as hub:
        marker = write_marker(settings.db, url) if settings.db != ":memory:" else None
        previous = signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after a graceful stop
        try:
            out.print(f"partnerkpi serving {settings.db} at [bold]{url}[/] (Ctrl-C stops it)")
            uvicorn.run(create_app(settings, hub=hub), host=host, port=port, workers=1, log_level="warning")
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            if marker is not None:
                remove_marker(marker)


# Insight commands live in their own modules and register themselves on the app.
for _module in ("cli_review", "cli_health", "cli_impact", "cli_alerts", "cli_templates"):
    import_module(f"partnerkpi.{_module}").register(app)


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
