"""`partnerkpi backup` and `restore`: a consistent copy, also while the server imports and collects, and a
restore that gives back the same events and the same scorecard, refusing what it must not overwrite."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import httpx
import pytest

from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from tests.test_serve import start_server, stop, tokens
from tests.web_fixtures import build_program

pytestmark = pytest.mark.reliability


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "partnerkpi.cli", *args], capture_output=True, text=True,
                          timeout=300, env=_env())


def _env() -> dict[str, str]:
    import os

    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PARTNERKPI_DB", None)
    env.pop("PARTNERKPI_TOKEN", None)
    return env


def event_ids(db: Path) -> list[str]:
    """The stored event ids, a collector message's without its source (`<write key name>/<messageId>`)."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT event_id FROM events ORDER BY event_id").fetchall()
    return sorted(r[0].rsplit("/", 1)[-1] for r in rows)


def scorecard(db: Path, *period: str) -> list[dict]:
    result = cli("scorecard", "--db", str(db), "--format", "json", *period)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_backup_then_restore_gives_the_same_events_and_scorecard(tmp_path):
    db = build_program(tmp_path)
    made = cli("backup", "--db", str(db), "--out", str(tmp_path / "copy.duckdb"))
    assert made.returncode == 0, made.stderr
    assert "backed up" in made.stderr and "5 events" in " ".join(made.stderr.split())
    restored = tmp_path / "restored" / "hub.duckdb"
    restored.parent.mkdir()
    done = cli("restore", "--from", str(tmp_path / "copy.duckdb"), "--db", str(restored))
    assert done.returncode == 0, done.stderr
    assert event_ids(restored) == event_ids(db) and len(event_ids(db)) == 5
    assert scorecard(restored) == scorecard(db)
    assert [p.name for p in restored.parent.iterdir()] == ["hub.duckdb"]  # no partial file left behind


def test_restore_refuses_to_overwrite_without_force_and_replaces_with_it(tmp_path):
    db = build_program(tmp_path)
    assert cli("backup", "--db", str(db), "--out", str(tmp_path / "copy.duckdb")).returncode == 0
    other = tmp_path / "other.duckdb"
    with Hub.open(other):  # an empty partnerkpi database
        pass
    before = other.read_bytes()
    refused = cli("restore", "--from", str(tmp_path / "copy.duckdb"), "--db", str(other))
    assert refused.returncode == 2
    assert "exists; restore does not overwrite" in refused.stderr and "--force" in refused.stderr
    assert other.read_bytes() == before
    forced = cli("restore", "--from", str(tmp_path / "copy.duckdb"), "--db", str(other), "--force")
    assert forced.returncode == 0, forced.stderr
    assert event_ids(other) == event_ids(db)


def test_backup_refuses_to_overwrite_its_out_file_without_force(tmp_path):
    db = build_program(tmp_path)
    out = tmp_path / "copy.duckdb"
    out.write_text("keep me")
    refused = cli("backup", "--db", str(db), "--out", str(out))
    assert refused.returncode == 2 and "exists; backup does not overwrite" in refused.stderr
    assert out.read_text() == "keep me"
    assert cli("backup", "--db", str(db), "--out", str(out), "--force").returncode == 0
    assert event_ids(out) == event_ids(db)


def test_restore_checks_the_file_is_a_partnerkpi_database(tmp_path):
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database")
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE events (id INTEGER)")
    target = tmp_path / "hub.duckdb"
    for source, says in ((text, "is not a DuckDB database"), (foreign, "not a partnerkpi database (no table "
                                                                        "partners, users, rejected_rows, imports)"),
                         (tmp_path / "missing.duckdb", "there is no file at")):
        result = cli("restore", "--from", str(source), "--db", str(target))
        assert result.returncode == 2, result.stderr
        assert says in " ".join(result.stderr.split())
        assert not target.exists()


def _events_file(path: Path, n: int) -> Path:
    lines = (json.dumps({"event_id": f"imp-{i:06d}", "ts": "2026-07-15T10:00:00Z", "event": "Logged In",
                         "partner_id": "R1", "user_id": "uR1"}) for i in range(n))
    path.write_text("\n".join(lines) + "\n")
    return path


def _stream(url: str, key: str, stop_sending: threading.Event, acked: list[str]) -> None:
    """Post batches of 50 track calls until told to stop; note the ids of each acknowledged batch."""
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
        i = 0
        while not stop_sending.is_set():
            ids = [f"col-{i:05d}-{j:02d}" for j in range(50)]
            batch = [{"type": "track", "userId": "uR1", "event": "Logged In", "messageId": m,
                      "timestamp": "2026-07-20T10:00:00Z", "context": {"groupId": "R1"}} for m in ids]
            if client.post("/v1/batch", json={"batch": batch}).status_code == 200:
                acked.extend(ids)
            i += 1


def _wait_loaded(url: str, key: str, timeout: float = 120) -> None:
    import time

    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/v1/backlog", headers=auth, timeout=30).json()["pending"]:
        assert time.monotonic() < deadline, "the collector did not catch up"
        time.sleep(0.2)


@pytest.mark.slow
def test_backup_while_the_server_imports_and_collects_is_consistent_and_restores(tmp_path):
    """Each import and each collector batch is in the backup entirely or not at all; the restored database
    holds exactly the backup's events and gives the live database's scorecard."""
    db = build_program(tmp_path)
    admin, _ = tokens(db)
    with Hub.open(db) as hub:
        key = Credentials(hub.store, clock=hub.clock).create_write_key("portal")
    big = _events_file(tmp_path / "events.jsonl", 20_000)
    proc, url = start_server(db, quiet=True)
    try:
        stop_sending, acked = threading.Event(), []
        sender = threading.Thread(target=_stream, args=(url, key, stop_sending, acked))
        sender.start()
        importer = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "import", "--server", url, "--token",
                                     admin, str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=_env())
        while len(acked) < 500:
            threading.Event().wait(0.05)
        first = cli("backup", "--db", str(db), "--out", str(tmp_path / "during.duckdb"))
        assert importer.wait(300) == 0, importer.communicate()
        stop_sending.set()
        sender.join(60)
        assert first.returncode == 0, first.stderr
        assert f"a snapshot by the server at {url}" in " ".join(first.stderr.split())

        during = event_ids(tmp_path / "during.duckdb")
        imported = [e for e in during if e.startswith("imp-")]
        assert len(imported) in (0, 20_000)  # an import is in a backup whole or not at all
        collected = {e for e in during if e.startswith("col-")}
        batches = {e.rsplit("-", 1)[0] for e in collected}
        assert all(f"{b}-{j:02d}" in collected for b in batches for j in range(50))  # whole batches only
        assert collected <= set(acked)

        _wait_loaded(url, key)
        final = cli("backup", "--db", str(db), "--out", str(tmp_path / "after.duckdb"))
        assert final.returncode == 0, final.stderr
    finally:
        stop(proc)
    july = ("--from", "2026-06-01", "--to", "2026-08-01")
    before = scorecard(db)
    after = event_ids(tmp_path / "after.duckdb")
    assert set(after) >= set(acked) | {f"imp-{i:06d}" for i in range(20_000)}
    assert len(after) == len(set(after))

    restored = tmp_path / "restored.duckdb"
    assert cli("restore", "--from", str(tmp_path / "during.duckdb"), "--db", str(restored)).returncode == 0
    assert event_ids(restored) == during
    assert cli("restore", "--from", str(tmp_path / "after.duckdb"), "--db", str(restored), "--force"
               ).returncode == 0
    assert event_ids(restored) == after
    assert scorecard(restored, *july) == scorecard(db, *july)
    # The default range ends at the watermark, which counts collector arrivals by the spool beside the
    # database: restored in place, as an operator does, the default scorecard is the same too.
    db.unlink()
    assert cli("restore", "--from", str(tmp_path / "after.duckdb"), "--db", str(db)).returncode == 0
    assert event_ids(db) == after
    assert scorecard(db) == before

@pytest.mark.slow
def test_restore_refuses_a_database_a_server_owns(tmp_path):
    db = build_program(tmp_path)
    assert cli("backup", "--db", str(db), "--out", str(tmp_path / "copy.duckdb")).returncode == 0
    proc, url = start_server(db, quiet=True)
    try:
        refused = cli("restore", "--from", str(tmp_path / "copy.duckdb"), "--db", str(db), "--force")
    finally:
        stop(proc)
    assert refused.returncode == 5
    assert f"the partnerkpi server at {url}" in refused.stderr and "stop the server" in refused.stderr


def test_a_copy_is_whole_in_its_file_while_other_cursors_list_the_catalog(tmp_path):
    """Reads listing the catalog while a copy is attached hold the copy open after DETACH, its rows still in its
    WAL; the server's snapshot is copied as one file, so `copy_database` returns only once the file holds them."""
    from partnerkpi.store.backup import STORE_TABLES, check_store, copy_database

    con = duckdb.connect(str(tmp_path / "source.duckdb"))
    for i, table in enumerate(STORE_TABLES):
        con.execute(f"CREATE TABLE {table} AS SELECT range AS id FROM range({(i + 1) * 50_000})")
    stop_reading, failures = threading.Event(), []

    def read() -> None:
        cursor = con.cursor()
        while not stop_reading.is_set():
            try:
                cursor.execute("SELECT table_name FROM information_schema.tables").fetchall()
                cursor.execute("SELECT count(*) FROM events").fetchall()
            except duckdb.Error as exc:  # e.g. two databases by one name in a reader's transaction
                failures.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for i in range(8):
            copy_database(con, tmp_path / f"copy{i}.duckdb")
            alone = tmp_path / f"alone{i}.duckdb"  # the file by itself, as `partnerkpi backup` copies it
            alone.write_bytes((tmp_path / f"copy{i}.duckdb").read_bytes())
            assert check_store(alone).counts == {t: (j + 1) * 50_000 for j, t in enumerate(STORE_TABLES)}
    finally:
        stop_reading.set()
        for reader in readers:
            reader.join()
    assert failures == []
