"""Operations: /healthz and /readyz (with the reasons when not ready), and request ids with one JSON log line
per request."""

from __future__ import annotations

import base64
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.settings import CollectorSettings, Settings
from partnerkpi.web import create_app
from partnerkpi.web.logs import LOGGER
from tests.test_serve import free_port, tokens
from tests.web_fixtures import build_program, client_for

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ops")
    db = build_program(directory)
    admin, _ = tokens(db)
    return db, admin


def lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_healthz_and_readyz_answer_anonymous_callers_without_data(program):
    db, _ = program
    with TestClient(create_app(Settings(db=str(db)))) as client:
        health = client.get("/healthz")
        ready = client.get("/readyz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["reasons"] == []
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [("store", True), ("warm", True), ("loader", True),
                                                                ("backlog", True)]
    assert "R1" not in ready.text and "Logged In" not in ready.text


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_readyz_is_503_with_the_reason_when_the_backlog_reaches_its_bound(tmp_path):
    db = build_program(tmp_path)
    with Hub.open(db) as hub:
        key = Credentials(hub.store, clock=hub.clock).create_write_key("portal")
    # The loader looks once in ten minutes: what is acknowledged stays in the backlog for the test.
    slow = CollectorSettings(batch_events=1000, batch_ms=600_000, max_backlog=10, refresh_every=600)
    with TestClient(create_app(Settings(db=str(db), collector=slow))) as client:
        batch = [{"type": "track", "userId": "uR1", "event": "Logged In", "messageId": f"m{i}"} for i in range(10)]
        assert client.post("/v1/batch", json={"batch": batch}, headers=_basic(key)).status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert ready.json()["reasons"] == ["backlog: 10 events to load (bound 10), 0 requests waiting for the spool "
                                           "(bound 512)"]
        assert client.get("/healthz").status_code == 200  # alive, only not ready


def test_readyz_is_503_while_the_loader_fails(tmp_path):
    db = build_program(tmp_path)
    with Hub.open(db) as hub:
        key = Credentials(hub.store, clock=hub.clock).create_write_key("portal")
    quick = CollectorSettings(batch_ms=50, refresh_every=600)
    app = create_app(Settings(db=str(db), collector=quick))
    with TestClient(app) as client:
        st = app.state.partnerkpi
        with st.write_lock:  # a table the loader needs is gone: every load fails until it is back
            st.hub.store.con.execute("ALTER TABLE imports RENAME TO imports_away")
        # Refused by the collector (no user): its load only logs it, so no refresh runs after it.
        event = {"type": "track", "event": "Logged In", "messageId": "x1"}
        assert client.post("/v1/batch", json={"batch": [event]}, headers=_basic(key)).status_code == 200
        deadline = time.monotonic() + 30
        while (ready := client.get("/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "the loader's failure never showed"
            time.sleep(0.1)
        assert ready.status_code == 503
        [reason] = ready.json()["reasons"]
        assert reason.startswith("loader: the last load failed: ") and "imports" in reason
        with st.write_lock:
            st.hub.store.con.execute("ALTER TABLE imports_away RENAME TO imports")
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:  # the next load succeeds: ready again
            assert time.monotonic() < deadline, "not ready again after the table came back"
            time.sleep(0.2)


def test_a_request_id_is_kept_or_made_and_logged_once_per_request(program, caplog):
    db, admin = program
    caplog.set_level(logging.INFO, logger=LOGGER)
    for client in client_for(db):
        caplog.clear()
        kept = client.get("/api/v1/scorecard?grain=month", headers={"X-Request-ID": "req-42.a:b"})
        forged = client.get("/healthz", headers={"X-Request-ID": 'x" injected\n{"status": 200}'})
        made = client.get("/nowhere?token=s3cret-in-query")
    assert kept.status_code == 200 and kept.headers["X-Request-ID"] == "req-42.a:b"
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])  # not the caller's: it could forge a line
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"]) and made.status_code == 404
    logged = lines(caplog)
    assert [(e["request_id"], e["method"], e["path"], e["status"], e["actor"]) for e in logged] == [
        ("req-42.a:b", "GET", "/api/v1/scorecard", 200, "analyst"),
        (forged.headers["X-Request-ID"], "GET", "/healthz", 200, "anonymous"),
        (made.headers["X-Request-ID"], "GET", "/nowhere", 404, "anonymous"),  # no route: nobody resolved
    ]
    assert all(set(e) == {"ts", "request_id", "method", "path", "status", "ms", "actor"} for e in logged)
    assert all(e["ts"].endswith("Z") and e["ms"] >= 0 for e in logged)
    assert "s3cret" not in caplog.text


def test_the_log_names_token_and_write_key_callers_without_their_secrets(program, caplog):
    db, admin = program
    caplog.set_level(logging.INFO, logger=LOGGER)
    with TestClient(create_app(Settings(db=str(db)))) as client:
        caplog.clear()
        assert client.get("/api/v1/partners", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        assert client.post("/v1/track", json={}, headers=_basic("pk_wk_unknown")).status_code == 401
        assert client.get("/api/v1/partners", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert [(e["path"], e["status"], e["actor"]) for e in lines(caplog)] == [
        ("/api/v1/partners", 200, "api_token"), ("/v1/track", 401, "write_key"),
        ("/api/v1/partners", 401, "anonymous")]
    assert admin not in caplog.text and "pk_wk_unknown" not in caplog.text


@pytest.mark.slow
def test_serve_log_json_writes_one_line_per_request_to_stderr(program, tmp_path):
    db, _ = program
    copy = tmp_path / "hub.duckdb"
    copy.write_bytes(db.read_bytes())
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "partnerkpi.cli", "serve", "--db", str(copy), "--port", str(port),
                             "--log-json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{url}/healthz", headers={"X-Request-ID": "probe"}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        while (answer := httpx.get(f"{url}/readyz", headers={"X-Request-ID": "from-the-balancer"},
                                   timeout=30)).status_code != 200:  # 503 while the default views warm
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.2)
        assert answer.headers["X-Request-ID"] == "from-the-balancer"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    balancer = [(e["path"], e["status"]) for e in logged if e["request_id"] == "from-the-balancer"]
    assert balancer[-1] == ("/readyz", 200) and set(balancer[:-1]) <= {("/readyz", 503)}
    assert ("probe", "/healthz", 200) in [(e["request_id"], e["path"], e["status"]) for e in logged]


def test_readyz_is_503_until_the_default_views_are_computed_after_the_start(program, monkeypatch):
    import partnerkpi.web.warm as warming

    db, _ = program
    gate, real = threading.Event(), warming.warm
    monkeypatch.setattr(warming, "warm", lambda st, stop: (gate.wait(30), real(st, stop)))
    with TestClient(create_app(Settings(db=str(db)), warm=True)) as client:
        held = client.get("/readyz")
        gate.set()
        deadline = time.monotonic() + 60
        while (ready := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.05)
        warmed = [family[0] for family in client.app.state.partnerkpi.results.latest]
    assert held.status_code == 503
    assert held.json()["reasons"] == ["warm: computing the default views after the start (web/warm.py)"]
    assert ready.json()["ready"] is True
    assert {"scorecard", "partner_list_rows", "at_risk", "health", "backtest", "kpi_chart", "partner_chart"} <= set(
        warmed)
    assert warmed.count("kpi_chart") == len(list(client.app.state.partnerkpi.hub.catalog))  # every KPI page
    # what every partner page reads: the peers' figures of the internal KPIs and of those partners see (and
    # the per-partner rows of those two KPI sets and of the partner list's columns)
    assert warmed.count("peer_index") == 2 and warmed.count("per_partner") == 3


def test_the_servers_duckdb_keeps_to_its_memory_limit_unless_one_is_set(program, monkeypatch):
    db, _ = program
    monkeypatch.delenv("PARTNERKPI_MEMORY_LIMIT", raising=False)
    assert (Settings.from_env(str(db)).memory_limit, Settings.from_env(str(db), server=True).memory_limit) == (
        "2GB", "1GB")
    settings = Settings.from_env(str(db), server=True)
    with Hub.open(settings.db, memory_limit=settings.memory_limit) as hub:
        limit = hub.store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit == "953.6 MiB"  # 1 GB, as DuckDB shows it
    monkeypatch.setenv("PARTNERKPI_MEMORY_LIMIT", "3GB")
    assert Settings.from_env(str(db), server=True).memory_limit == "3GB"
