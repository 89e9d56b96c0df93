"""The hand-computed KPI fixtures through the `partnerkpi` command instead of the library.

With `PARTNERKPI_ORACLE` set, `Fixture.scorecard` imports the fixture's files with `partnerkpi import --db URL`
and reads `partnerkpi scorecard --db URL --format json` (Typer's CliRunner, in process), so the same expected
values check the command line on each backend:

    cli-duckdb    a DuckDB file in the fixture's folder
    cli-postgres  a fresh database on the server of $PARTNERKPI_ORACLE_PG (a postgresql:// URL)
    cli-spark     tests/oracle_spark.py::spark_scorecard (Spark over a Parquet lake)
    server-postgres  `/api/v1/scorecard` of `partnerkpi serve --workers 2` on the fixture's database there (the
                  import still by the command); both workers must answer, with the same rows

The clock the fixtures are received at (2030-01-01) comes in from outside, as in `Fixture.hub`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from unittest import mock

from typer.testing import CliRunner

from partnerkpi.clock import FixedClock
from partnerkpi.engine.result import KpiRow
from partnerkpi.hub import Hub
from partnerkpi.ingest import ImportSummary

if TYPE_CHECKING:
    from tests.kpi_fixtures import Fixture

ENV = "PARTNERKPI_ORACLE"
PG_SERVER_ENV = "PARTNERKPI_ORACLE_PG"
Runner = Callable[["Fixture", Sequence[str] | None, str, date, date, str | None], list[KpiRow]]


def runner() -> Runner | None:
    """The runner `PARTNERKPI_ORACLE` names (None when unset: the library runs the fixtures)."""
    name = os.environ.get(ENV, "").strip()
    if not name:
        return None
    if name == "cli-spark":
        from tests.oracle_spark import spark_scorecard

        return spark_scorecard
    if name not in RUNNERS:
        raise ValueError(f"{ENV}={name}: give one of {', '.join([*RUNNERS, 'cli-spark'])}")
    return RUNNERS[name]


def new_database(server_url: str, prefix: str = "oracle") -> str:
    """A new, empty database on the PostgreSQL server of `server_url`; returns its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def received_at(now: datetime) -> Iterator[None]:
    """Every hub the command opens gets a clock standing at `now` (what `Fixture.hub` gives the library)."""
    plain = Hub.open.__func__  # type: ignore[attr-defined]

    def open_at(cls: type[Hub], db: Any, **options: Any) -> Hub:
        return plain(cls, db, **{**options, "clock": FixedClock(now)})

    with mock.patch.object(Hub, "open", classmethod(open_at)):
        yield


def cli(args: Sequence[str], now: datetime) -> str:
    """Run `partnerkpi ARGS` in process; its stdout (AssertionError with the output when it fails)."""
    from partnerkpi.cli import app

    with received_at(now):
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, f"partnerkpi {' '.join(args)} exited {result.exit_code}:\n{result.output}"
    return result.stdout


def imported(fixture: Fixture, url: str) -> str:
    """`url` holding the fixture's files (imported once, by the command), with `fixture.summaries` filled."""
    from tests.kpi_fixtures import RECEIVED

    if getattr(fixture, "_oracle_db", None) != url:
        # No alert rules: the import's alert run would compute every KPI, which is not what the fixtures check.
        fixture.dir.mkdir(parents=True, exist_ok=True)  # the library's Hub.open makes it; the command imports into it
        files = [str(path) for path in fixture.write().values()]  # kinds from the names
        rules = fixture.dir / "oracle-alerts.yaml"
        rules.write_text("rules: []\n")
        with mock.patch.dict(os.environ, {"PARTNERKPI_ALERTS": str(rules)}):
            cli(["import", "--db", url, *files], RECEIVED)
        with Hub.open(url, read_only=True, clock=FixedClock(RECEIVED)) as hub:
            log = {row["kind"]: row for row in hub.imports()}
        fixture.summaries = {kind: ImportSummary(
            row["source"], kind, rows_read=row["rows_read"], accepted=row["accepted"],
            duplicates=row["duplicates"], rejected=row["rejected"], import_id=row["import_id"])
            for kind, row in log.items()}
        fixture._oracle_db = url  # type: ignore[attr-defined]
    return url


def scorecard_by_cli(fixture: Fixture, url: str, kpis: Sequence[str] | None, grain: str, start: date, end: date,
                     by: str | None) -> list[KpiRow]:
    """`partnerkpi scorecard --format json` on the fixture imported into `url`, parsed back into KpiRows."""
    from tests.kpi_fixtures import RECEIVED

    args = ["scorecard", "--db", imported(fixture, url), "--grain", grain, "--from", start.isoformat(),
            "--to", end.isoformat(), "--as-of", RECEIVED.date().isoformat(), "--format", "json"]
    args += [*(["--by", by] if by else []), *[a for k in kpis or () for a in ("--kpi", k)]]
    args += [a for p in fixture.catalog_paths for a in ("--catalog", str(p))]
    return [row_from_json(r) for r in json.loads(cli(args, RECEIVED))]


def row_from_json(record: dict[str, Any]) -> KpiRow:
    """A KpiRow from its JSON form (`KpiRow.to_json`; `status_note` is not in it)."""
    when = {k: datetime.fromisoformat(record[k].removesuffix("Z")) for k in ("period_start", "period_end")}
    fields = {k: v for k, v in record.items() if k in KpiRow.__dataclass_fields__ and k not in when}
    return KpiRow(**fields, **when)


def duckdb_scorecard(fixture: Fixture, kpis: Sequence[str] | None, grain: str, start: date, end: date,
                     by: str | None) -> list[KpiRow]:
    """The CLI on a DuckDB file in the fixture's folder."""
    return scorecard_by_cli(fixture, str(fixture.dir / "oracle.duckdb"), kpis, grain, start, end, by)


def postgres_scorecard(fixture: Fixture, kpis: Sequence[str] | None, grain: str, start: date, end: date,
                       by: str | None) -> list[KpiRow]:
    """The CLI on a database of its own on the server of $PARTNERKPI_ORACLE_PG."""
    url = getattr(fixture, "_oracle_db", None)
    if url is None:
        server = os.environ.get(PG_SERVER_ENV)
        if not server:
            raise RuntimeError(f"{ENV}=cli-postgres needs {PG_SERVER_ENV}=postgresql://... (a server to create "
                               "databases on)")
        url = new_database(server)
    return scorecard_by_cli(fixture, url, kpis, grain, start, end, by)




def server_postgres_scorecard(fixture: Fixture, kpis: Sequence[str] | None, grain: str, start: date, end: date,
                              by: str | None) -> list[KpiRow]:
    """`/api/v1/scorecard` from `partnerkpi serve --workers 2` on the fixture's own PostgreSQL database (imported
    by the command); asked until both workers answered, which must give the same rows."""
    from partnerkpi.credentials import Credentials
    from tests.kpi_fixtures import RECEIVED

    url = getattr(fixture, "_oracle_db", None)
    if url is None:
        server = os.environ.get(PG_SERVER_ENV)
        if not server:
            raise RuntimeError(f"{ENV}=server-postgres needs {PG_SERVER_ENV}=postgresql://...")
        url = new_database(server)
    imported(fixture, url)
    token = getattr(fixture, "_oracle_token", None)
    if token is None:
        with Hub.open(url, clock=FixedClock(RECEIVED)) as hub:
            creds = Credentials(hub.store)
            creds.add_user("oracle@example.com", "a long password", "admin")
            token = fixture._oracle_token = creds.create_token("oracle@example.com")  # type: ignore[attr-defined]
    query: dict[str, Any] = {"grain": grain, "from": start.isoformat(), "to": end.isoformat(), "partial": "true",
                             "kpi": list(kpis or ()), **({"by": by} if by else {})}
    answers = answers_of_two_workers(url, token, query, fixture.catalog_paths)
    first, second = answers.values()
    assert first == second, "the two workers gave different rows"
    return [row_from_json(r) for r in first]


def answers_of_two_workers(db: str, token: str, query: dict[str, Any], catalogs: Sequence[os.PathLike[str]] = ()
                           ) -> dict[str, list[dict[str, Any]]]:
    """Scorecard rows by the pid of the worker that answered, from a fresh `serve --workers 2` on `db`, asking on
    new connections until two workers have answered (AssertionError with the server's output otherwise)."""
    import signal
    import subprocess
    import sys

    from tests.test_pg_store import free_port, workers_answering

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PARTNERKPI_DB", "PARTNERKPI_CATALOG", ENV)}
    proc = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "serve", "--db", db, "--port", str(port),
                             "--workers", "2", *[a for c in catalogs for a in ("--catalog", str(c))]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        answers = workers_answering(f"http://127.0.0.1:{port}", token, proc, query, timeout=120)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert len(answers) == 2, f"one worker answered every request: {list(answers)}"
    return answers


RUNNERS: dict[str, Runner] = {"cli-duckdb": duckdb_scorecard, "cli-postgres": postgres_scorecard,
                               "server-postgres": server_postgres_scorecard}
