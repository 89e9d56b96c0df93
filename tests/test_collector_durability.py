"""The collector's promises under stress: a torn spool tail is ignored, a restarted loader loads nothing twice,
kill -9 under load loses no acknowledged event and stores none twice, and overload gets 503 + Retry-After."""

from __future__ import annotations

import base64
import json
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from partnerkpi.clock import utc_now
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from partnerkpi.ingest.loader import Loader, read_batch
from partnerkpi.ingest.spool import (
    HEADER,
    Position,
    SpooledRequest,
    SpoolWriter,
    read_records,
    segment_numbers,
    segment_path,
)
from partnerkpi.settings import CollectorSettings
from tests.test_collector import serve
from tests.test_serve import start_server

SETUP = [{"type": "group", "groupId": "p1", "userId": "u1", "messageId": "g-1", "traits": {"name": "Acme"}},
         {"type": "identify", "userId": "u1", "messageId": "i-1", "traits": {"partner_id": "p1"}}]


def track(message_id: str) -> dict:
    return {"type": "track", "userId": "u1", "event": "Logged In", "messageId": message_id}


def test_a_torn_tail_is_ignored_and_the_next_writer_starts_a_new_segment(tmp_path):
    writer = SpoolWriter(tmp_path).start()
    requests = [SpooledRequest([json.dumps({"n": i, "pad": "x" * i})], [(None, "why", str(i))]) for i in range(3)]
    payloads = [r.to_bytes() for r in requests]
    ends = [writer.submit(p).result(10) for p in payloads]
    writer.close()
    path = segment_path(tmp_path, 1)
    assert [SpooledRequest.from_bytes(p) for _, p in read_records(path)] == requests
    assert [end for end, _ in read_records(path)] == [e.offset for e in ends] == [
        sum(HEADER.size + len(p) for p in payloads[:i + 1]) for i in range(3)]

    whole = path.read_bytes()
    for cut in (ends[1].offset + 3, ends[1].offset + HEADER.size + 4):  # inside the header, inside the payload
        path.write_bytes(whole[:cut])
        assert [p for _, p in read_records(path)] == payloads[:2]
    damaged = bytearray(whole)
    damaged[ends[0].offset + HEADER.size] ^= 0xFF  # a flipped bit in the second payload: its checksum fails
    path.write_bytes(bytes(damaged))
    assert [p for _, p in read_records(path)] == payloads[:1]

    path.write_bytes(whole[:ends[1].offset + 5])  # a crash in the middle of the third append
    again = SpoolWriter(tmp_path).start()
    later = SpooledRequest(['{"after":"the crash"}'])
    assert again.submit(later.to_bytes()).result(10) == Position(2, HEADER.size + len(later.to_bytes()))
    again.close()
    assert segment_numbers(tmp_path) == [1, 2]
    batch = read_batch(tmp_path, Position(0, 0), again.durable, 100)  # the loader's view: torn tail skipped
    assert batch.accepted == [*requests[0].accepted, *requests[1].accepted, *later.accepted]
    assert batch.refused == [(None, "why", "0"), (None, "why", "1")]
    assert batch.end == again.durable
    fresh = SpoolWriter(tmp_path / "emptied").start(first=7)  # the spool was removed, the checkpoint was at 6
    fresh.close()
    assert fresh.durable == Position(7, 0)


def as_received(message: dict) -> str:
    """A message as the collector spools it: with its receiving instant (and so its time) set."""
    now = utc_now().isoformat(timespec="microseconds") + "Z"
    return json.dumps({**message, "receivedAt": now, "timestamp": now})


def test_a_restarted_loader_goes_on_from_the_checkpoint_and_loads_nothing_twice(tmp_path):
    db = tmp_path / "hub.duckdb"
    spool = tmp_path / "hub.duckdb.spool"
    writer = SpoolWriter(spool / "wal").start()
    writer.submit(SpooledRequest([as_received(m) for m in SETUP], [(None, "not an object", "1")]).to_bytes()).result(10)
    settings = CollectorSettings(batch_events=1)
    refreshed: list[int] = []

    def loader(hub: Hub) -> Loader:
        return Loader(hub.store, spool, lambda: writer.durable, lock=threading.Lock(), clock=hub.clock,
                      bounds=hub.bounds, settings=settings, refresh=lambda: refreshed.append(1), on_loaded=lambda: None)

    with Hub.open(db) as hub:
        assert loader(hub).load_available() == 3
        counts = hub.store.con.execute("SELECT sum(rows_read), sum(accepted), sum(rejected) FROM imports").fetchall()
        assert counts == [(3, 2, 1)]
    ids = [f"t-{i}" for i in range(3)]
    writer.submit(SpooledRequest([as_received(track(i)) for i in ids]).to_bytes()).result(10)
    writer.close()
    with Hub.open(db) as hub:  # a restart: only the request after the checkpoint is new
        again = loader(hub)
        assert again.load_available() == 3 and again.load_available() == 0
        assert hub.store.con.execute("SELECT sum(rows_read), sum(duplicates) FROM imports").fetchall() == [(6, 0)]
        assert hub.store.con.execute("SELECT event_id FROM events ORDER BY 1").fetchall() == [(i,) for i in ids]
        assert hub.store.checkpoints.position() == (writer.durable.segment, writer.durable.offset)
    assert refreshed == [1, 1]  # once per load that accepted something, as nothing else arrived meanwhile


def test_loaded_rows_are_folded_into_the_database_file_and_not_left_in_its_wal(tmp_path):
    """Until a checkpoint, DuckDB answers the reads of every request (latest instant, row count) by scanning
    the whole events table instead of from the file's statistics: the loader checkpoints after its loads."""
    db = tmp_path / "hub.duckdb"
    spool = tmp_path / "hub.duckdb.spool"
    writer = SpoolWriter(spool / "wal").start()
    writer.submit(SpooledRequest([as_received(m) for m in [*SETUP, track("t-1")]]).to_bytes()).result(10)
    with Hub.open(db) as hub:
        wal = Path(f"{db}.wal")
        hub.store.con.execute("CHECKPOINT")
        assert not wal.exists() or wal.stat().st_size == 0
        loader = Loader(hub.store, spool, lambda: writer.durable, lock=threading.Lock(), clock=hub.clock,
                        bounds=hub.bounds, settings=CollectorSettings(), refresh=lambda: None, on_loaded=lambda: None)
        assert loader.load_available() == 3
        assert hub.store.counts()["events"] == 1
        assert not wal.exists() or wal.stat().st_size == 0
    writer.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
            "Content-Type": "application/json"}


def _send_until_gone(url: str, key: str, prefix: str, acked: list[str], sent: list[str]) -> None:
    """Post batches of 50 unique messages until the server is gone; note each sent and each acknowledged id."""
    with httpx.Client(base_url=url, headers=_auth(key), timeout=30) as client:
        for i in range(100_000):
            ids = [f"{prefix}-{i}-{j}" for j in range(50)]
            sent.extend(ids)
            try:
                response = client.post("/v1/batch", content=json.dumps({"batch": [track(m) for m in ids]}))
            except httpx.TransportError:
                return
            if response.status_code == 200:
                acked.extend(ids)


@pytest.mark.slow
def test_kill_9_under_load_five_times_loses_no_acknowledged_event_and_stores_none_twice(tmp_path):
    db = tmp_path / "hub.duckdb"
    with Hub.open(db) as hub:
        key = Credentials(hub.store, clock=hub.clock).create_write_key("portal")
    acked: list[str] = []
    sent: list[str] = []
    rng = random.Random(10)
    for round_ in range(5):
        proc, url = start_server(db, quiet=True)
        if round_ == 0:
            assert httpx.post(f"{url}/v1/batch", content=json.dumps({"batch": SETUP}), headers=_auth(key),
                              timeout=30).status_code == 200
        before = len(acked)
        senders = [threading.Thread(target=_send_until_gone, args=(url, key, f"r{round_}-t{t}", acked, sent))
                   for t in range(3)]
        for sender in senders:
            sender.start()
        while len(acked) == before:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.2, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for sender in senders:
            sender.join(60)
        assert len(acked) > before
    # The last start replays what the last kill left, then a graceful stop loads what is spooled.
    proc, url = start_server(db, quiet=True)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 0

    with Hub.open(db) as hub:
        stored = hub.store.con.execute("SELECT event_id, count(*) FROM events GROUP BY 1").fetchall()
        duplicates = hub.store.con.execute("SELECT sum(duplicates) FROM imports").fetchall()[0][0]
    counts = {event_id.removeprefix("portal/"): n for event_id, n in stored}
    assert [m for m, n in counts.items() if n > 1] == []
    assert set(acked) <= set(counts)
    assert set(counts) <= set(sent)
    assert duplicates == 0  # no spooled request was loaded twice (its unique ids would count as duplicates)


def _flood(url: str, key: str, prefix: str, until: float, statuses: list[tuple[int, str | None]],
           acked: list[str]) -> None:
    with httpx.Client(base_url=url, headers=_auth(key), timeout=30) as client:
        i = 0
        while time.monotonic() < until:
            ids = [f"{prefix}-{i}-{j}" for j in range(50)]
            response = client.post("/v1/batch", content=json.dumps({"batch": [track(m) for m in ids]}))
            statuses.append((response.status_code, response.headers.get("retry-after")))
            if response.status_code == 200:
                acked.extend(ids)
            i += 1


def test_overload_gets_503_with_retry_after_then_everything_acknowledged_is_stored(tmp_path):
    small = CollectorSettings(batch_events=50, batch_ms=200, max_backlog=200, refresh_every=60)
    with serve(tmp_path, small) as served:
        assert served.post("/v1/batch", {"batch": SETUP}).status_code == 200
        served.wait_loaded(2)
        statuses: list[tuple[int, str | None]] = []
        acked: list[str] = []
        until = time.monotonic() + 3
        threads = [threading.Thread(target=_flood, args=(served.url, served.key, f"t{t}", until, statuses, acked))
                   for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert {s for s, _ in statuses} == {200, 503}
        assert {after for s, after in statuses if s == 503} == {"1"}
        served.wait_loaded(2 + len(acked), timeout=180)  # a shared 2-core machine loads slowly
        stored = served.rows("SELECT event_id FROM events")
        assert sorted(e for (e,) in stored) == sorted(f"portal/{m}" for m in acked)
        assert served.post("/v1/batch", {"batch": [track("after")]}).status_code == 200  # recovered
        served.wait_loaded(3 + len(acked))


def test_segment_sdk_delivers_everything_through_an_overload(tmp_path):
    import segment.analytics as analytics

    small = CollectorSettings(batch_events=20, batch_ms=300, max_backlog=40, refresh_every=60)
    with serve(tmp_path, small) as served:
        assert served.post("/v1/batch", {"batch": SETUP}).status_code == 200
        served.wait_loaded(2)
        errors: list[Exception] = []
        clients = [analytics.Client(served.key, host=served.url, upload_size=30, upload_interval=0.05,
                                    on_error=lambda error, batch: errors.append(error)) for _ in range(3)]
        for c, client in enumerate(clients):
            for i in range(150):
                client.track("u1", "Logged In", message_id=f"sdk-{c}-{i}")
        for client in clients:
            client.flush()
            client.join()
        assert errors == []
        assert served.app.state.collector.turned_away > 0  # the SDK met the overload and sent again
        served.wait_loaded(2 + 450, timeout=120)
        assert served.rows("SELECT count(DISTINCT event_id), count(*) FROM events") == [(450, 450)]


def _send_and_vanish(url: str, key: str, message_id: str) -> None:
    """Post a batch and reset the connection at once, without reading the answer."""
    import socket
    import struct

    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps({"batch": [track(message_id)] * 1 + [track(f"{message_id}-{i}") for i in range(2000)]})
    head = (f"POST /v1/batch HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: {_auth(key)['Authorization']}\r\nContent-Length: {len(payload)}\r\n\r\n")
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset
        sock.sendall(head.encode() + payload.encode())


def test_a_request_whose_client_is_gone_before_its_append_is_not_spooled(tmp_path):
    from tests.test_collector import spooled

    with serve(tmp_path, CollectorSettings(key_cache=0)) as served:  # each request checks its key in a thread
        gone = [f"gone-{i}" for i in range(5)]
        for message_id in gone:
            _send_and_vanish(served.url, served.key, message_id)
        assert served.post("/v1/batch", {"batch": [track("stays")]}).status_code == 200
        in_spool = {json.loads(m)["messageId"].removeprefix("portal/") for r in spooled(served.db) for m in r.accepted}
        assert "stays" in in_spool
        assert set(gone) - in_spool, "every request of a vanished client was spooled"
        assert served.app.state.collector.turned_away >= len(set(gone) - in_spool)
