"""`partnerkpi serve` and `demo`: run the web app (one process owning the DuckDB file), or make a demo program
and serve it."""

from __future__ import annotations

import secrets
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from partnerkpi.cli.common import CatalogOption, DbOption, _open, out
from partnerkpi.cli.data import _watch
from partnerkpi.cli.kpis import scorecard
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.local_server import remove_marker, write_marker
from partnerkpi.locations import parse_location
from partnerkpi.settings import Settings


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
        _serve(Settings.from_env(db, server=True), host, port)
    else:
        out.print(f"\nNext: [bold]partnerkpi serve --db {settings.db}[/], "
                  f"[bold]partnerkpi scorecard --db {settings.db} --by type[/], "
                  f"[bold]partnerkpi explain portal_usage_rate --db {settings.db}[/]")


DEMO_DOMAIN = "demo.partnerkpi"


def _demo_accounts(hub: Hub) -> tuple[list[tuple[str, str, str, str | None]], str]:
    """Fresh demo users (admin, analyst, a reseller's partner user) with new random passwords, and a new API
    token of the admin; earlier demo users go, with their tokens. Returns (role, email, password, partner)."""
    from partnerkpi.credentials import Credentials

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


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    catalog: CatalogOption = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (several need PostgreSQL: one process owns a DuckDB file)")] = 1,
    log_json: Annotated[bool, typer.Option(
        "--log-json", help="Log one JSON line per request to stderr (ts, request_id, method, path, status, ms, "
        "actor)")] = False,
) -> None:
    """Serve the dashboard, the JSON API and the collector. The server owns the DuckDB file while it runs; on
    PostgreSQL several worker processes can serve (--workers)."""
    settings = Settings.from_env(db, tuple(catalog or ()), server=True)
    if log_json:
        from partnerkpi.web.logs import log_to_stderr

        log_to_stderr()
    if workers > 1:
        _serve_workers(settings, host, port, workers)
    else:
        _serve(settings, host, port)


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
        location = parse_location(settings.db)
        marker = write_marker(location.target, url) if location.is_file else None
        previous = signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises it after a graceful stop
        try:
            out.print(f"partnerkpi serving {settings.db} at [bold]{url}[/] (Ctrl-C stops it)")
            uvicorn.run(create_app(settings, hub=hub, warm=True), host=host, port=port, workers=1, log_level="warning")
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            if marker is not None:
                remove_marker(marker)


WORKER_HEADER = "X-Partnerkpi-Worker"  # the pid of the worker process that answered


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run `workers` uvicorn worker processes, each building its app from the environment (`app_from_env`)."""
    import os

    import uvicorn

    location = parse_location(settings.db)
    if location.kind != "postgres":
        raise UsageError(
            f"--workers {workers} needs a PostgreSQL database: {settings.db} is a DuckDB file, which one process "
            "may write (every worker would write it: imports, the collector, alerts)",
            hint="serve it with one worker (leave out --workers), or move the data to PostgreSQL "
            "(--db postgresql://user@host/dbname)")
    _check_port(host, port)
    with _open(settings):  # the schema is made once, here, not by the workers racing
        pass
    os.environ["PARTNERKPI_DB"] = settings.db
    os.environ["PARTNERKPI_CATALOG"] = os.pathsep.join(str(p) for p in settings.catalog_paths)
    out.print(f"partnerkpi serving {location.text} at [bold]{_url(host, port)}[/] with {workers} workers "
              "(Ctrl-C stops it)")
    uvicorn.run("partnerkpi.cli.serve:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning")


def app_from_env() -> object:
    """The app of one worker process: settings from the environment (`PARTNERKPI_DB`, ...), and a header naming
    the worker's pid on every response."""
    import os

    from partnerkpi.web import create_app

    app = create_app(Settings.from_env(None, server=True))
    pid = str(os.getpid())

    @app.middleware("http")
    async def name_the_worker(request: object, call_next: object) -> object:
        response = await call_next(request)  # type: ignore[operator]
        response.headers[WORKER_HEADER] = pid
        return response

    return app


def register(app: typer.Typer) -> None:
    """Add `demo` and `serve` to `app`."""
    app.command()(demo)
    app.command()(serve)
