"""Read commands never create a database, and work while `partnerkpi serve` owns the file (through a
snapshot the server writes for holders of its local secret)."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.test_cli import run
from tests.test_serve import PARTNERS_NEW, cli, start_server, stop, tokens, write
from tests.web_fixtures import build_program

READ_COMMANDS = [
    ["scorecard"], ["explain", "portal_usage_rate"], ["trends"], ["review"], ["health"], ["at-risk"],
    ["inactive"], ["lifecycle"], ["backtest"], ["impact", "--kpi", "active_partner_rate", "--on", "partner_revenue"],
    ["alerts", "list"], ["override", "list"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0] if c[0] != "alerts" else "alerts-list")
def test_a_read_command_on_a_missing_file_names_it_and_creates_nothing(tmp_path, command):
    result = run(*command, "--db", str(tmp_path / "hbu.duckdb"))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"no database at {tmp_path / 'hbu.duckdb'}" in message
    assert "the default is ./partnerkpi.duckdb (or $PARTNERKPI_DB)" in message
    assert "partnerkpi demo" in message
    assert list(tmp_path.iterdir()) == []


def test_the_default_database_is_not_created_either(tmp_path):
    result = run("scorecard", cwd=tmp_path)
    assert result.returncode == 2
    assert "no database at partnerkpi.duckdb" in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == []


def test_a_writing_command_still_creates_the_file(tmp_path):
    db = tmp_path / "new.duckdb"
    result = run("import", "--db", str(db), str(write(tmp_path / "partners_new.csv", PARTNERS_NEW)))
    assert result.returncode == 0, result.stderr
    assert db.is_file()


def test_a_read_command_leaves_the_file_unchanged(tmp_path):
    """Opened read-only: not even the schema is touched (the file's bytes stay the same)."""
    db = build_program(tmp_path)
    before = db.read_bytes()
    assert run("scorecard", "--db", str(db), "--format", "json").returncode == 0
    assert db.read_bytes() == before


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("snap")
    db = build_program(directory)
    admin, _ = tokens(db)
    proc, url = start_server(db)
    yield db, url, proc.pid, admin
    stop(proc)


@pytest.mark.slow
def test_the_marker_holds_a_secret_only_its_user_may_read(served):
    db, url, pid, _ = served
    marker = Path(f"{db}.server")
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600
    info = json.loads(marker.read_text())
    assert (info["url"], info["pid"]) == (url, pid) and len(info["secret"]) >= 32


@pytest.mark.slow
def test_scorecard_reads_a_snapshot_while_the_server_runs_and_sees_its_imports(served, tmp_path):
    db, url, _, admin = served
    first = cli("scorecard", "--db", str(db), "--kpi", "portal_usage_rate", "--format", "json")
    assert first.returncode == 0, first.stderr
    july = [r for r in json.loads(first.stdout) if r["period"] == "2026-07"]
    assert [(r["numerator"], r["denominator"]) for r in july] == [(3, 4)]  # 3 active users of 4 in July

    # two more partners arrive through the server: the next read command sees them (6 partners)
    assert cli("import", "--server", url, "--token", admin,
               str(write(tmp_path / "partners_new.csv", PARTNERS_NEW))).returncode == 0
    health = cli("health", "--db", str(db), "--format", "json")
    assert health.returncode == 0, health.stderr
    assert {"N1", "N2"} <= {h["partner_id"] for h in json.loads(health.stdout)}
    # the snapshot is gone afterwards
    assert not [p for p in Path(tempfile.gettempdir()).glob("partnerkpi-snapshot-*")
                if p.stat().st_uid == os.getuid() and any(p.iterdir())]


@pytest.mark.slow
def test_a_writing_command_is_still_refused_while_the_server_runs(served):
    db, url, pid, _ = served
    result = cli("users", "list", "--db", str(db))
    assert result.returncode == 5
    assert f"the partnerkpi server at {url} (pid {pid}) owns {db}" in " ".join(result.stderr.split())


@pytest.mark.slow
def test_the_snapshot_route_wants_the_local_secret_and_is_not_in_the_openapi_document(served, tmp_path):
    db, url, _, admin = served
    target = str(tmp_path / "copy.duckdb")
    for headers in ({}, {"X-PartnerKPI-Local-Secret": "guess"}, {"Authorization": f"Bearer {admin}"}):
        response = httpx.post(f"{url}/api/v1/snapshot", json={"path": target}, headers=headers, timeout=30)
        assert response.status_code == 403, response.text
    assert not Path(target).exists()
    secret = json.loads(Path(f"{db}.server").read_text())["secret"]
    relative = httpx.post(f"{url}/api/v1/snapshot", json={"path": "copy.duckdb"},
                          headers={"X-PartnerKPI-Local-Secret": secret}, timeout=30)
    assert relative.status_code == 400
    ok = httpx.post(f"{url}/api/v1/snapshot", json={"path": target}, headers={"X-PartnerKPI-Local-Secret": secret},
                    timeout=60)
    assert ok.status_code == 200, ok.text
    from partnerkpi.hub import Hub

    with Hub.open(target, read_only=True) as hub:
        assert hub.store.counts()["partners"] >= 4
    doc = httpx.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
    assert "/api/v1/snapshot" not in doc["paths"]
