"""The hub on Spark Connect: `--db 'sc://HOST:PORT?lake=…'` gives the read commands the answers the DuckDB file
the lake came from gives, and `partnerkpi serve` on such a URL answers the scorecard API from a process that
starts no JVM of its own (the session's server, tests/spark_connect.py, runs the queries)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from tests.test_lake import _export, _program
from tests.test_serve import start_server, stop
from tests.web_fixtures import ADMIN

pytestmark = [pytest.mark.slow, pytest.mark.spark]

@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """test_lake's tiny program (A and B log in in July, A again in August) as a DuckDB file and a lake."""
    folder = tmp_path_factory.mktemp("connect-program")
    db, lake = _program(folder), folder / "lake"
    _export(db, lake, "--partition", "month")
    return db, lake


def _output(args: list[str]) -> str:
    """`partnerkpi ARGS` in a process of its own: a Spark Connect session cannot start in a process where an
    earlier test left a local Spark session running."""
    result = subprocess.run([sys.executable, "-m", "partnerkpi.cli", *args], capture_output=True, text=True,
                            timeout=600, env={k: v for k, v in os.environ.items() if k != "PARTNERKPI_DB"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("command", [
    ["scorecard", "--from", "2026-07-01", "--to", "2026-09-01", "--by", "type", "--kpi", "active_partner_rate",
     "--kpi", "login_frequency", "--format", "json"],
    ["trends", "--from", "2026-07-01", "--to", "2026-09-01", "--kpi", "active_partner_rate", "--format", "json"],
])
def test_read_commands_on_spark_connect_give_what_they_give_on_the_duckdb_file(spark_connect_url, program, command):
    db, lake = program
    on_duckdb = json.loads(_output([*command, "--db", str(db)]))
    on_connect = json.loads(_output([*command, "--db", f"{spark_connect_url}?lake={lake}"]))
    assert on_connect == on_duckdb
    assert on_connect  # not two empty answers


def test_explain_on_spark_connect_shows_the_latest_value_the_duckdb_file_shows(spark_connect_url, program):
    db, lake = program
    on_connect = _output(["explain", "active_partner_rate", "--db", f"{spark_connect_url}?lake={lake}"])
    assert on_connect == _output(["explain", "active_partner_rate", "--db", str(db)])
    # July 2026, the last complete month (data as of Aug 3): both partners, A and B, logged in.
    assert "100.0 % in 2026-07" in on_connect and "2026-06: 0.0 %" in on_connect


def test_serve_on_spark_connect_answers_the_scorecard_api(spark_connect_url, program, tmp_path):
    _, lake = program
    url = f"{spark_connect_url}?lake={lake}&state={tmp_path / 'state.duckdb'}"
    with Hub.open(url) as hub:  # the state store beside the lake holds the users and tokens; no Spark needed
        creds = Credentials(hub.store)
        creds.add_user(*ADMIN, "admin")
        token = creds.create_token(ADMIN[0])
    proc, base = start_server(url)  # type: ignore[arg-type]
    try:
        java = [p for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                if "java" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
        assert java == []  # the server's queries go to the Connect server
        query = {"from": "2026-07-01", "to": "2026-09-01", "kpi": "active_partner_rate", "partial": "true"}
        response = httpx.get(f"{base}/api/v1/scorecard", params=query, headers={"Authorization": f"Bearer {token}"},
                             timeout=600)
        if response.status_code != 200:
            proc.terminate()
            raise AssertionError(f"{response.status_code} {response.text}\n{proc.communicate(timeout=60)[1][-6000:]}")
        values = {r["period"]: r["value"] for r in response.json()["rows"]
                  if r["kpi"] == "active_partner_rate" and not r["segment"]}
        assert values == {"2026-07": 100.0, "2026-08": 50.0}  # July: A and B of 2 partners; August: A only
    finally:
        stop(proc)
