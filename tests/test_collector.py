"""The Segment-compatible collector over real HTTP: Segment's own Python SDK, limits, auth and rejections.

A 200 means the request is durably spooled; the loader imports it a moment later, so a test reads the store
after `Served.wait_loaded(n)` has seen the n messages it sent in the import log."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from markupsafe import escape

from partnerkpi.clock import utc_now
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.ingest.spool import SpooledRequest, read_records, segment_numbers, segment_path
from partnerkpi.settings import CollectorSettings, Settings
from partnerkpi.web import create_app
from tests.web_fixtures import ANALYST, sign_in


@dataclass
class Served:
    """A running server: its URL, a valid and a revoked write key, and the app's hub."""

    url: str
    key: str
    revoked: str
    hub: Hub
    db: Path

    lock: threading.Lock  # the app's: its alert runs share the hub's connection
    app: FastAPI

    def rows(self, sql: str) -> list[tuple]:
        with self.lock, self.hub.store.con.cursor() as cur:
            return cur.execute(sql).fetchall()

    def wait_loaded(self, messages: int, timeout: float = 30) -> None:
        """Poll the import log until the loader has imported exactly `messages` messages (each accepted,
        duplicate or rejected); more than that fails at once."""
        deadline = time.monotonic() + timeout
        while True:
            [(read,)] = self.rows("SELECT coalesce(sum(rows_read), 0) FROM imports")
            assert read <= messages, f"{read} messages were imported, only {messages} were sent"
            if read == messages:
                return
            assert time.monotonic() < deadline, f"only {read} of {messages} messages were loaded"
            time.sleep(0.02)

    def post(self, path: str, body: object = None, *, key: str | None = "", content: bytes | None = None,
             ) -> httpx.Response:
        key = self.key if key == "" else key
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        data = content if content is not None else json.dumps(body).encode()
        return httpx.post(self.url + path, content=data, headers=headers, timeout=30)


def spooled(db: Path) -> list[SpooledRequest]:
    """Every request in the spool beside `db`, in the order it was acknowledged."""
    wal = Path(f"{db}.spool") / "wal"
    return [SpooledRequest.from_bytes(payload) for n in segment_numbers(wal)
            for _, payload in read_records(segment_path(wal, n))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(tmp_path: Path, settings: CollectorSettings | None = None) -> Iterator[Served]:
    """The app on a fresh DuckDB file (a write key, a revoked one, an analyst) served by uvicorn on a free port."""
    db = tmp_path / "hub.duckdb"
    with Hub.open(db) as hub:
        creds = Credentials(hub.store, clock=hub.clock)
        key = creds.create_write_key("portal")
        revoked = creds.create_write_key("old portal")
        creds.revoke(revoked)
        creds.add_user(*ANALYST, "analyst")
    app = create_app(Settings(db=str(db), collector=settings or CollectorSettings()))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        st = app.state.partnerkpi
        yield Served(f"http://127.0.0.1:{port}", key, revoked, st.hub, db, st.write_lock, app)
    finally:
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive()


@pytest.fixture
def served(tmp_path) -> Iterator[Served]:
    with serve(tmp_path) as running:
        yield running


@pytest.fixture
def analytics(served):
    """Segment's own SDK, unchanged, pointed at the server (sync mode: each call posts at once)."""
    import segment.analytics as analytics

    errors: list[Exception] = []
    analytics.default_client = None
    analytics.write_key, analytics.host, analytics.sync_mode = served.key, served.url, True
    analytics.on_error = lambda error, batch: errors.append(error)
    yield analytics
    analytics.flush()
    analytics.default_client = None
    assert errors == []


def _month(d: date) -> tuple[date, date]:
    start = d.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def test_segment_sdk_calls_land_and_the_kpi_reflects_them(served, analytics):
    analytics.group("u1", "p1", {"name": "Acme", "type": "reseller", "tier": "gold", "region": "EMEA"})
    analytics.group("u2", "p2", {"name": "Bolt", "type": "referral", "tier": "silver", "region": "APAC"})
    analytics.identify("u1", {"email": "ana@acme.example", "partner_id": "p1", "role": "admin"})
    analytics.identify("u2", {"email": "bo@bolt.example", "partner_id": "p2"})
    analytics.track("u1", "Logged In", {"method": "sso"})
    analytics.page("u1", "Docs", "Resources", {"path": "/resources"})
    analytics.track("u1", "Logged In", message_id="m-dup")
    analytics.track("u1", "Logged In", message_id="m-dup")  # a retry: stored once
    analytics.flush()
    served.wait_loaded(8)

    assert served.rows("SELECT partner_id, name, type, tier FROM partners ORDER BY 1") == [
        ("p1", "Acme", "reseller", "gold"), ("p2", "Bolt", "referral", "silver")]
    assert served.rows("SELECT user_id, partner_id, email FROM users ORDER BY 1") == [
        ("u1", "p1", "ana@acme.example"), ("u2", "p2", "bo@bolt.example")]
    events = served.rows("SELECT event, partner_id, user_id, p_path FROM events ORDER BY seq")
    assert events == [("Logged In", "p1", "u1", None), ("Page Viewed", "p1", "u1", "/resources"),
                      ("Logged In", "p1", "u1", None)]
    # stored under the write key's source: Segment dedupes per source
    assert served.rows("SELECT count(*) FROM events WHERE event_id = 'portal/m-dup'") == [(1,)]
    assert served.rows("SELECT sum(duplicates) FROM imports") == [(1,)]
    assert served.rows("SELECT count(*) FROM rejected_rows") == [(0,)]

    [(ts,)] = served.rows("SELECT max(ts) FROM events")
    start, end = _month(ts.date())
    with served.lock:
        [row] = served.hub.scorecard("month", start, end, kpis=["active_partner_rate"])
    assert (row.value, row.numerator, row.denominator) == (50.0, 1, 2)  # p1 active, p2 not

    requests = spooled(served.db)
    assert [len(r.accepted) for r in requests] == [1] * 8
    assert all("receivedAt" in json.loads(r.accepted[0]) for r in requests)
    assert not list((served.db.parent / "hub.duckdb.spool" / "batches").glob("*.jsonl"))  # removed once loaded


def test_batch_context_merge_clock_skew_and_write_key_in_body(served):
    groups = [{"type": "group", "groupId": g, "userId": "x", "messageId": f"g-{g}",
               "traits": {"name": g, "onboarded_at": "2026-01-01T00:00:00Z"}} for g in ("p1", "p2")]
    users = [{"type": "identify", "userId": u, "messageId": f"i-{u}", "traits": {"partner_id": p}}
             for u, p in (("u1", "p1"), ("u2", "p2"))]
    assert served.post("/v1/batch", {"batch": groups + users}).json() == {"success": True}

    before = utc_now()
    body = {
        "writeKey": served.key,
        "context": {"groupId": "p2", "ip": "10.0.0.1"},
        "sentAt": "2026-07-01T10:00:05Z",
        "batch": [
            {"type": "track", "event": "Logged In", "userId": "u2", "messageId": "t-1",
             "timestamp": "2026-07-01T10:00:00Z"},
            {"type": "track", "event": "Logged In", "userId": "u1", "messageId": "t-2",
             "timestamp": "2026-07-01T10:00:00Z", "context": {"groupId": "p1"}},
            {"type": "track", "event": "Logged In", "userId": "u2", "messageId": "t-3"},  # no time: when received
        ],
    }
    assert served.post("/v1/batch", body, key=None).status_code == 200
    after = utc_now()
    served.wait_loaded(7)
    got = served.rows("SELECT event_id, partner_id, ts FROM events ORDER BY event_id")
    # the item's context wins
    assert [r[:2] for r in got] == [("portal/t-1", "p2"), ("portal/t-2", "p1"), ("portal/t-3", "p2")]
    for _, _, ts in got[:2]:  # receivedAt − (sentAt − timestamp): the client sent them 5 s after they happened
        assert before - timedelta(seconds=5) <= ts <= after - timedelta(seconds=5)
    assert before <= got[2][2] <= after


def test_single_calls_and_rejected_messages_are_kept_with_reasons(served):
    assert served.post("/v1/group", {"groupId": "p1", "userId": "u1", "traits": {"name": "Acme"}}).status_code == 200
    assert served.post("/v1/identify", {"userId": "u1", "traits": {"partner_id": "p1"}}).status_code == 200
    assert served.post("/v1/track", {"userId": "u1", "messageId": "ok-1"}).status_code == 200  # no event
    assert served.post("/v1/track", {"event": "Logged In", "messageId": "anon"}).status_code == 200  # no user
    assert served.post("/v1/screen", {"userId": "u1", "name": "Home", "messageId": "s-1"}).status_code == 200
    batch = [{"type": "track", "event": "Logged In", "userId": "u1", "messageId": "b-1"},
             {"type": "track", "event": "Big", "userId": "u1", "messageId": "b-2", "properties": {"x": "y" * 40_000}},
             {"event": "Logged In", "userId": "u1", "messageId": "b-3"},
             "not an object"]
    assert served.post("/v1/batch", {"batch": batch}).status_code == 200
    served.wait_loaded(9)

    assert served.rows("SELECT event_id FROM events") == [("portal/b-1",)]
    rejected = served.rows("SELECT field, reason FROM rejected_rows ORDER BY field NULLS LAST, reason")
    assert rejected == [
        ("event", "event is missing; name the event, e.g. Logged In"),
        ("type", "Segment message type 'screen' is not imported (only identify, group, track, page are); "
                 "remove the line if it is not needed"),
        ("type", "type is missing; a Segment message has type identify, group, track or page"),
        ("userId", "neither userId nor anonymousId is given; every Segment call needs one of them"),
        (None, "the message is not a JSON object; send one object per message"),
        (None, "the message is over 32 KB (Segment's limit per message); trim its properties or traits"),
    ]
    [(raw,)] = served.rows("SELECT raw FROM rejected_rows WHERE reason LIKE 'neither%'")
    assert json.loads(raw)["messageId"] == "portal/anon" and "receivedAt" in json.loads(raw)
    assert served.rows("SELECT sum(rows_read), sum(accepted), sum(rejected) FROM imports") == [(9, 3, 6)]
    with httpx.Client(base_url=served.url, timeout=30) as browser:  # an analyst looks at the Data page
        assert sign_in(browser, *ANALYST).status_code == 303
        page = browser.get("/data", params={"kind": "segment"})
        assert page.status_code == 200
        for _, reason in rejected:
            assert str(escape(reason)) in page.text  # as Jinja writes it
        assert browser.get("/api/v1/rejected", params={"kind": "segment"}).json()["total"] == 6


def test_malformed_and_oversize_requests_get_400(served):
    invalid = served.post("/v1/track", content=b'{"event": "Logged In", ')
    assert (invalid.status_code, invalid.json()["code"]) == (400, "invalid_json")
    big_event = served.post("/v1/track", {"userId": "u1", "event": "Big", "properties": {"x": "y" * 40_000}})
    assert (big_event.status_code, big_event.json()["code"]) == (400, "too_large")
    item = {"type": "track", "userId": "u1", "event": "Logged In", "properties": {"x": "y" * 25_000}}
    big_batch = served.post("/v1/batch", {"batch": [item] * 21})
    assert (big_batch.status_code, big_batch.json()["code"]) == (400, "too_large")
    many = served.post("/v1/batch", {"batch": [{"type": "track", "userId": "u1", "event": "E"}] * 2501})
    assert (many.status_code, many.json()["code"]) == (400, "too_many_events")
    assert served.post("/v1/batch", {"batch": "nope"}).status_code == 400
    assert served.rows("SELECT count(*) FROM imports") == [(0,)]
    served.post("/v1/group", {"groupId": "p1", "userId": "u1"})
    served.post("/v1/identify", {"userId": "u1", "traits": {"partner_id": "p1"}})
    assert served.post("/v1/batch", {"batch": [{"type": "track", "userId": "u1", "event": "E"}] * 2500}
                       ).status_code == 200
    served.wait_loaded(2502)
    assert served.rows("SELECT count(*) FROM events") == [(2500,)]
    assert served.rows("SELECT count(*) FROM rejected_rows") == [(0,)]


def test_missing_unknown_and_revoked_write_keys_get_one_401(served):
    body = {"userId": "u1", "event": "Logged In"}
    missing = served.post("/v1/track", body, key=None)
    unknown = served.post("/v1/track", body, key="pk_wk_" + "z" * 43)
    revoked = served.post("/v1/track", body, key=served.revoked)
    in_body = httpx.post(served.url + "/v1/track", json={**body, "writeKey": served.revoked}, timeout=30)
    assert {r.status_code for r in (missing, unknown, revoked, in_body)} == {401}
    assert missing.content == unknown.content == revoked.content == in_body.content
    assert missing.json()["success"] is False and "write key" in missing.json()["message"]
    assert served.rows("SELECT count(*) FROM imports") == [(0,)]


def test_the_openapi_document_describes_the_collector(served):
    with served.lock:
        token = Credentials(served.hub.store, clock=served.hub.clock).create_token(ANALYST[0])
    paths = httpx.get(served.url + "/openapi.json", headers={"Authorization": f"Bearer {token}"},
                      timeout=30).json()["paths"]
    for call in ("identify", "group", "track", "page", "screen", "alias", "batch"):
        assert "post" in paths[f"/v1/{call}"]


def test_the_spool_holds_each_acknowledged_request_whole(served):
    assert served.post("/v1/track", content=b'{"event": ').status_code == 400  # refused whole: not spooled
    assert served.post("/v1/batch", {"batch": [1, {"type": "track", "userId": "u1", "event": "Logged In"}]}
                       ).status_code == 200  # unknown user: rejected by the import, still spooled
    [request] = spooled(served.db)
    [message] = [json.loads(text) for text in request.accepted]
    assert request.refused == [(None, "the message is not a JSON object; send one object per message", "1")]
    assert message["type"] == "track" and message["messageId"].startswith("portal/api-")
    assert datetime.fromisoformat(message["receivedAt"]).tzinfo is not None


def test_gzip_bodies_and_concurrent_requests_all_commit(served):
    import gzip
    from concurrent.futures import ThreadPoolExecutor

    served.post("/v1/batch", {"batch": [{"type": "group", "groupId": "p1", "userId": "u1"},
                                        {"type": "identify", "userId": "u1", "traits": {"partner_id": "p1"}}]})
    body = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "u1", "event": "Logged In",
                                                "messageId": "gz-1"}]}).encode())
    auth = "Basic " + base64.b64encode(f"{served.key}:".encode()).decode()
    zipped = httpx.post(served.url + "/v1/batch", content=body, timeout=30,
                        headers={"Content-Encoding": "gzip", "Authorization": auth})
    assert zipped.status_code == 200

    def send(i: int) -> int:
        batch = [{"type": "track", "userId": "u1", "event": "Logged In", "messageId": f"c-{i}-{j}"} for j in range(20)]
        return served.post("/v1/batch", {"batch": batch}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(6))) == {200}
    served.wait_loaded(123)
    assert served.rows("SELECT count(*), count(DISTINCT event_id) FROM events") == [(121, 121)]


def test_times_past_the_receiving_instant_and_conflicting_message_ids_are_kept_aside(served):
    received = utc_now()
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"partner_id": "p1"}, "messageId": "i1",
         "timestamp": "2026-01-01T00:00:00Z"},
        {"type": "group", "userId": "u1", "groupId": "p1", "messageId": "g1", "timestamp": "2026-01-01T00:00:00Z"},
        *({"type": "track", "userId": "u1", "event": "Logged In", "messageId": mid, "timestamp": ts}
          for mid, ts in (("far", "9999-12-31T00:00:00Z"), ("old", "0001-01-01T00:00:00Z"),
                          ("ok", "2026-07-01T00:00:00Z"))),
    ]
    assert served.post("/v1/batch", {"batch": batch}).status_code == 200
    served.wait_loaded(5)
    again = [{"type": "track", "userId": "u1", "event": "Logged In", "messageId": "ok",
              "timestamp": "2026-07-01T00:00:00Z"},  # a resend: a duplicate
             {"type": "track", "userId": "u1", "event": "Logged Out", "messageId": "ok",
              "timestamp": "2026-07-01T00:00:00Z"}]  # another event under the same id: a conflict
    assert served.post("/v1/batch", {"batch": again}).status_code == 200
    served.wait_loaded(7)
    assert served.rows("SELECT event_id FROM events ORDER BY event_id") == [("portal/ok",)]
    kept = served.rows("SELECT field, reason FROM rejected_rows ORDER BY import_id, row_number")
    assert [f for f, _ in kept] == ["timestamp", "timestamp", "event"]
    far = kept[0][1]
    assert far.startswith("timestamp 9999-12-31T00:00:00Z is later than the moment it was received (")
    shown = datetime.fromisoformat(far.split("received (")[1][:20].removesuffix("Z"))
    assert abs(shown - received) < timedelta(minutes=5)  # the request's receivedAt, not the message's claim
    assert kept[1][1].startswith("timestamp 0001-01-01T00:00:00Z is before 2000-01-01")
    assert kept[2][1].startswith("messageId 'portal/ok' repeats the event stored by import ")
    assert "event 'Logged Out' here, 'Logged In' there" in kept[2][1]
    assert served.rows("SELECT duplicates, rejected FROM imports ORDER BY import_id DESC LIMIT 1") == [(1, 1)]
