"""PostgreSQL as the store (`partnerkpi.pg`): imports give the same rows, rejections and log as on DuckDB, a
failed import leaves PostgreSQL as it was, and the product's own tables live there."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime

import psycopg
import pytest

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.insights.health.overrides import add_override, list_overrides
from partnerkpi.pg import PostgresHub
from partnerkpi.pg.connection import dialect
from tests.kpi_fixtures import RECEIVED, Fixture
from tests.oracle_cli import new_database

CLOCK = FixedClock(RECEIVED)


@pytest.fixture
def pg_db(postgres_url: str) -> str:
    """A fresh database of its own on the session's PostgreSQL server."""
    return new_database(postgres_url, "store")


def program(fx: Fixture) -> Fixture:
    """Two partners, two users; events with an unknown user, a conflicting repeat, an exact repeat and
    a trait the store has not seen (segment)."""
    fx.partner("A").partner("B", type="distributor")
    fx.partners[1]["segment"] = "smb"
    fx.user("ua", "A").user("ub", "B")
    fx.event("Logged In", "2026-07-03 10:00", user="ua", id="e1")
    fx.event("Logged In", "2026-07-04 10:00", user="ua", id="e1")  # conflict: another ts
    fx.event("Logged In", "2026-07-03 10:00", user="ua", id="e1")  # exact repeat: a duplicate
    fx.event("Logged In", "2026-07-05 10:00", user="zz", id="e2")  # unknown user
    fx.event("Escalation Raised", "2026-07-06", partner="B", id="e3", note="it's 100% \"quoted\"")
    return fx


def table_rows(hub: Hub, table: str) -> list[tuple]:
    columns = ", ".join(f'"{c}"' for c in hub.store.columns(table))
    return hub.store.con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL_COLUMNS".replace(
        "ALL_COLUMNS", columns)).fetchall()


def test_dialect_turns_the_stores_duckdb_sql_into_postgresql():
    assert dialect("CREATE TABLE t (x DOUBLE, y DOUBLE PRECISION)", False) == (
        "CREATE TABLE t (x DOUBLE PRECISION, y DOUBLE PRECISION)")
    assert dialect("SELECT 1 WHERE list_contains(?, event) AND a ILIKE ?", True) == (
        "SELECT 1 WHERE (event = ANY(%s)) AND a ILIKE %s")
    assert dialect("SELECT * FROM alerts WHERE TRUE AND alert_id IN (SELECT unnest(?))", True) == (
        "SELECT * FROM alerts WHERE TRUE AND alert_id = ANY(%s)")
    assert dialect("SELECT '5%' LIKE ?", True) == "SELECT '5%%' LIKE %s"
    assert dialect("SELECT '5%'", False) == "SELECT '5%'"


def test_import_into_postgres_keeps_the_same_rows_rejections_and_log_as_duckdb(tmp_path, pg_db):
    paths = program(Fixture(tmp_path)).write()
    with Hub.open(tmp_path / "hub.duckdb", clock=CLOCK) as duck, Hub.open(pg_db, clock=CLOCK) as pg:
        assert isinstance(pg, PostgresHub)
        for kind, path in paths.items():
            (on_duck,), (on_pg,) = duck.import_files([path], kind=kind), pg.import_files([path], kind=kind)
            assert {**on_pg.to_json(), "seconds": 0} == {**on_duck.to_json(), "seconds": 0}
        # 5 event lines: e1 and e3 stored, the exact repeat a duplicate, the conflict and zz rejected
        assert (on_pg.rows_read, on_pg.accepted, on_pg.duplicates, on_pg.rejected) == (5, 2, 1, 2)
        assert pg.store.counts() == duck.store.counts() == {
            "partners": 2, "users": 2, "events": 2, "rejected_rows": 2, "imports": 3}
        assert pg.traits() == duck.traits() == ["type", "tier", "region", "segment"]
        assert pg.rejected() == duck.rejected()
        assert pg.imports() == duck.imports()
        for table in ("partners", "users", "events"):
            assert table_rows(pg, table) == table_rows(duck, table)
        stored = dict(pg.store.con.execute("SELECT event_id, properties FROM events").fetchall())
        assert stored["e3"] == '{"note":"it\'s 100% \\"quoted\\""}'


def test_the_same_file_twice_and_repeats_of_stored_events(tmp_path, pg_db):
    fx = program(Fixture(tmp_path))
    paths = fx.write()
    with Hub.open(pg_db, clock=CLOCK) as hub:
        for kind, path in paths.items():
            hub.import_files([path], kind=kind)
        (again,) = hub.import_files([paths["events"]], kind="events")
        assert again.skipped_same_file and again.import_id == 3
        later = tmp_path / "later" / "events.jsonl"
        later.parent.mkdir()
        fx2 = Fixture(later.parent)
        fx2.event("Escalation Raised", "2026-07-06", partner="B", id="e3", note="it's 100% \"quoted\"")  # same
        fx2.event("Escalation Raised", "2026-07-07", partner="B", id="e3")  # another version of e3
        fx2.event("Escalation Raised", "2026-07-08", partner="A", id="e4")
        (summary,) = hub.import_files([fx2.write()["events"]], kind="events")
        assert (summary.rows_read, summary.accepted, summary.duplicates, summary.rejected) == (3, 1, 1, 1)
        rows, total = hub.rejected(import_id=summary.import_id)
        assert total == 1 and "the event stored by import 3" in rows[0]["reason"]
        assert hub.store.counts()["events"] == 3
        # seq continues from the stored maximum (e3, line 5 of the first file) by line number: e4 is line 3
        assert hub.store.con.execute("SELECT seq FROM events WHERE event_id = 'e4'").fetchall()[0][0] == 8


def test_a_failed_import_leaves_postgresql_untouched(tmp_path, pg_db):
    paths = program(Fixture(tmp_path)).write()
    with Hub.open(pg_db, clock=CLOCK) as hub:
        hub.import_files([paths["partners"]], kind="partners")
        before = {t: table_rows(hub, t) for t in ("partners", "users", "events", "rejected_rows", "imports")}
        with psycopg.connect(pg_db, autocommit=True) as con:  # the import log refuses the entry: the last write
            con.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'disk full (test)'; END $$")
            con.execute("CREATE TRIGGER refuse BEFORE INSERT ON imports FOR EACH ROW EXECUTE FUNCTION refuse()")
        with pytest.raises(psycopg.Error, match="disk full"):
            hub.import_files([paths["events"]], kind="events")
        with pytest.raises(psycopg.Error, match="disk full"):
            hub.import_files([paths["users"]], kind="users")
        assert {t: table_rows(hub, t) for t in before} == before
        with psycopg.connect(pg_db, autocommit=True) as con:
            con.execute("DROP TRIGGER refuse ON imports")
        (users,) = hub.import_files([paths["users"]], kind="users")
        assert users.import_id == 2 and hub.store.counts()["users"] == 2


def test_users_tokens_and_overrides_live_in_postgresql(tmp_path, pg_db):
    paths = program(Fixture(tmp_path)).write()
    with Hub.open(pg_db, clock=CLOCK) as hub:
        hub.import_files([paths["partners"]], kind="partners")
        creds = Credentials(hub.store, clock=CLOCK)
        creds.add_user("Ann@Example.com", "a long password", "partner", "A")
        token = creds.create_token("ann@example.com", name="ci")
        add_override(hub, "B", level="at_risk", reason="renewal lost", expires_at=datetime(2030, 6, 1),
                     created_by="ann@example.com")
    with Hub.open(pg_db, clock=CLOCK, read_only=True) as hub:  # another session sees them
        creds = Credentials(hub.store, clock=CLOCK)
        assert creds.verify_password("ann@example.com", "a long password").partner_id == "A"
        assert creds.verify_password("ann@example.com", "wrong password") is None
        assert creds.verify_api_token(token).email == "ann@example.com"
        assert [(o.partner_id, o.level, o.reason) for o in list_overrides(hub)] == [("B", "at_risk", "renewal lost")]


def test_a_job_runs_in_one_process_at_a_time(pg_db):
    with Hub.open(pg_db) as first, Hub.open(pg_db) as second:
        with first.job_lock("alerts") as got_first, second.job_lock("alerts") as got_second:
            assert (got_first, got_second) == (True, False)
            with second.job_lock("subscriptions") as other_job:
                assert other_job
        with second.job_lock("alerts") as got_later:
            assert got_later


def test_two_server_workers_answer_from_one_postgresql_database(tmp_path, pg_db):
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B").user("ua", "A").user("ub", "B")
    fx.event("Logged In", "2026-07-03 10:00", user="ua")
    fx.event("Logged In", "2026-08-02 10:00", user="ub")  # the data reaches into August: July is complete
    with Hub.open(pg_db) as hub:
        for kind, path in fx.write().items():
            hub.import_files([path], kind=kind)
        creds = Credentials(hub.store)
        creds.add_user("admin@example.com", "a long password", "admin")
        token = creds.create_token("admin@example.com")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PARTNERKPI_DB", "PARTNERKPI_CATALOG")}
    proc = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "serve", "--db", pg_db, "--port", str(port),
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        answers = workers_answering(f"http://127.0.0.1:{port}", token, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert len(answers) == 2, f"one worker answered every request: {list(answers)}"
    (first, second) = answers.values()
    assert first == second
    july = [r for r in first if r["kpi"] == "active_partner_rate" and r["period"] == "2026-07" and not r["segment"]]
    assert [(r["value"], r["numerator"], r["denominator"]) for r in july] == [(50.0, 1, 2)]  # A of A and B


JULY_QUERY = {"from": "2026-07-01", "to": "2026-08-01", "kpi": "active_partner_rate"}


def workers_answering(url: str, token: str, proc: subprocess.Popen[str], query: dict | None = None,
                      timeout: float = 60) -> dict[str, list[dict]]:
    """Scorecard rows (of `query`, default July's active partner rate) by the pid of the worker that answered,
    asking on new connections until two have; `timeout` is each request's."""
    import httpx

    from partnerkpi.cli.serve import WORKER_HEADER

    answers: dict[str, list[dict]] = {}
    deadline = time.monotonic() + 180
    while len(answers) < 2 and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server stopped: {proc.communicate()}")
        try:
            response = httpx.get(f"{url}/api/v1/scorecard", params=query or JULY_QUERY,
                                 headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code != 200:
            proc.terminate()
            raise AssertionError(f"{response.status_code} {response.text}: {proc.communicate(timeout=30)}")
        answers[response.headers[WORKER_HEADER]] = response.json()["rows"]
    return answers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
