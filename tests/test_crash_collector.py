"""Collector crash and duplicate proofs (issue 11): kill -9 under a retrying sender, duplicate storms, per-source ids.

A sender that behaves like Segment's SDKs (the same messageIds again after a connection error, a 5xx or a 429,
with exponential backoff) delivers every event while `partnerkpi serve` is killed -9 and restarted; each
acknowledged event is stored exactly once. Every batch sent three times, concurrently and shuffled, stores the
same rows and the same scorecard as sending it once. Two sources (write keys) may use the same messageId.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from partnerkpi.clock import FixedClock
from partnerkpi.credentials import Credentials
from partnerkpi.hub import Hub
from tests.kpi_fixtures import AUGUST, JULY, RECEIVED
from tests.scale import scaled
from tests.test_collector import Served, serve
from tests.test_collector_durability import _auth
from tests.test_crash_import import rounded
from tests.test_serve import start_server

pytestmark = pytest.mark.reliability

EVENTS = scaled(2000, 10000)
STORM_EVENTS = scaled(600, 10000)
KILLS = scaled(2, 5)
BATCH = 100
PARTNERS = ("pA", "pB", "pC")
NAMES = ("Logged In", "Page Viewed", "Document Viewed", "Support Requested", "Survey Responded")


def setup_messages() -> list[dict]:
    """Partners and users with their own times, so that two databases fed in another order agree."""
    groups = [{"type": "group", "groupId": p, "userId": f"u-{p}-0", "messageId": f"g-{p}",
               "traits": {"name": p, "type": "reseller" if i % 2 else "agency", "onboarded_at": "2026-01-01T00:00:00Z"}}
              for i, p in enumerate(PARTNERS)]
    users = [{"type": "identify", "userId": f"u-{p}-{u}", "messageId": f"i-{p}-{u}",
              "traits": {"partner_id": p, "created_at": "2026-02-01T00:00:00Z"}} for p in PARTNERS for u in range(4)]
    return groups + users


def event_batches(count: int, seed: int) -> list[list[dict]]:
    """`count` track messages with unique messageIds and fixed timestamps in July 2026, in batches of BATCH."""
    rng = random.Random(seed)
    start = datetime(2026, 7, 1)
    messages = []
    for i in range(count):
        partner = rng.choice(PARTNERS)
        ts = start + timedelta(seconds=rng.randrange(30 * 86400))
        messages.append({"type": "track", "userId": f"u-{partner}-{rng.randrange(4)}", "event": rng.choice(NAMES),
                         "messageId": f"m-{seed}-{i}", "timestamp": ts.isoformat() + "Z",
                         "properties": {"score": rng.randrange(11)}})
    return [messages[i:i + BATCH] for i in range(0, count, BATCH)]


class RetryingSender:
    """Posts each batch until it is acknowledged, as Segment's SDKs do: the same messageIds again after a
    connection error, a 5xx or a 429, waiting 0.1 s doubling up to 2 s (or Retry-After) between tries."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.retries = 0

    def deliver(self, batch: list[dict], deadline: float) -> None:
        """Post `batch` until a 200; an AssertionError past `deadline` or on any other status."""
        wait = 0.1
        while True:
            try:
                response = httpx.post(f"{self.url}/v1/batch", content=json.dumps({"batch": batch}),
                                      headers=_auth(self.key), timeout=30)
                if response.status_code == 200:
                    return
                assert response.status_code in (429, 500, 502, 503, 504), (response.status_code, response.text)
                pause = float(response.headers.get("retry-after", wait))
            except httpx.TransportError:
                pause = wait
            self.retries += 1
            assert time.monotonic() < deadline, "a batch was never acknowledged"
            time.sleep(pause)
            wait = min(wait * 2, 2.0)


def stored_events(db: Path) -> list[tuple]:
    with Hub.open(db, clock=FixedClock(RECEIVED)) as hub:
        return hub.store.con.execute("SELECT event_id, count(*) FROM events GROUP BY 1").fetchall()


@pytest.mark.slow
def test_a_retrying_sender_through_kill_9_gets_every_event_stored_exactly_once(tmp_path):
    db = tmp_path / "hub.duckdb"
    with Hub.open(db) as hub:
        key = Credentials(hub.store, clock=hub.clock).create_write_key("portal")
    seed = 7
    batches = event_batches(EVENTS, seed)
    proc, url = start_server(db, quiet=True)
    sender = RetryingSender(url, key)
    sender.deliver(setup_messages(), time.monotonic() + 120)
    acked: list[str] = []
    done = threading.Event()

    def send_all() -> None:
        try:
            for batch in batches:
                sender.deliver(batch, time.monotonic() + 300)
                acked.extend(m["messageId"] for m in batch)
        finally:
            done.set()

    thread = threading.Thread(target=send_all)
    thread.start()
    rng = random.Random(seed)
    t0 = time.monotonic()
    for _ in range(KILLS):
        target = len(acked) + rng.randrange(1, max(2, EVENTS // (KILLS + 1)))
        while len(acked) < target and not done.is_set():
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc, sender.url = start_server(db, quiet=True)
    thread.join(600)
    assert not thread.is_alive() and len(acked) == EVENTS, f"seed {seed}: {len(acked)} of {EVENTS} acknowledged"
    proc.send_signal(signal.SIGINT)  # a graceful stop loads what is spooled
    stopped = proc.wait(120)
    counts = dict(stored_events(db))
    twice = [m for m, n in counts.items() if n > 1]
    missing = {f"portal/{m}" for m in acked} - set(counts)
    assert twice == [] and missing == set(), f"seed {seed}: {len(twice)} twice, {len(missing)} lost"
    assert len(counts) == EVENTS
    assert stopped == 0, f"seed {seed}: the graceful stop after the last restart exited with {stopped}"
    print(f"\n{EVENTS} events acknowledged and stored once through {KILLS} kill -9, {sender.retries} retries, "
          f"{time.monotonic() - t0:.1f} s")


def _post_all(served: Served, batches: list[list[dict]], workers: int) -> None:
    sender = RetryingSender(served.url, served.key)
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(sender.deliver, b, time.monotonic() + 300) for b in batches]:
            future.result()


def _fed(tmp_path: Path, batches: list[list[dict]], workers: int, expected_reads: int) -> tuple[list[tuple], str, int]:
    """Rows, scorecard (JSON) and counted duplicates of a fresh server fed `batches`."""
    with serve(tmp_path) as served:
        assert served.post("/v1/batch", {"batch": setup_messages()}).status_code == 200
        served.wait_loaded(len(setup_messages()))
        _post_all(served, batches, workers)
        served.wait_loaded(len(setup_messages()) + expected_reads, timeout=300)
        [(duplicates,)] = served.rows("SELECT sum(duplicates) FROM imports")
    with Hub.open(served.db, clock=FixedClock(RECEIVED)) as hub:
        rows = hub.store.con.execute("SELECT event_id, ts, event, partner_id, user_id, object_id, properties "
                                     "FROM events ORDER BY event_id").fetchall()
        card = hub.scorecard(grain="month", start=JULY, end=AUGUST, by="type")
    return rows, json.dumps([rounded(r.to_json()) for r in card], sort_keys=True), duplicates


def test_every_batch_three_times_concurrently_and_shuffled_stores_what_once_does(tmp_path):
    seed = 21
    batches = event_batches(STORM_EVENTS, seed)
    storm = [b for b in batches for _ in range(3)]
    random.Random(seed).shuffle(storm)
    t0 = time.monotonic()
    once_rows, once_card, once_duplicates = _fed(tmp_path / "once", batches, 1, STORM_EVENTS)
    storm_rows, storm_card, storm_duplicates = _fed(tmp_path / "storm", storm, 6, 3 * STORM_EVENTS)
    assert len(once_rows) == STORM_EVENTS and once_duplicates == 0, f"seed {seed}"
    assert storm_rows == once_rows, f"seed {seed}: the stored rows differ"
    assert storm_card == once_card, f"seed {seed}: a KPI differs"
    assert storm_duplicates == 2 * STORM_EVENTS, f"seed {seed}"
    print(f"\nstorm: {len(storm)} batches ({3 * STORM_EVENTS} events) -> {len(storm_rows)} rows, {storm_duplicates} "
          f"duplicates counted, {time.monotonic() - t0:.1f} s")


def test_two_sources_may_use_the_same_message_id_and_each_dedupes_its_own(tmp_path):
    with serve(tmp_path) as served:
        with served.lock:
            other = Credentials(served.hub.store).create_write_key("partner/b")  # a "/" in a name stays apart
        assert served.post("/v1/batch", {"batch": setup_messages()}).status_code == 200
        track = {"type": "track", "event": "Logged In", "messageId": "m-1", "timestamp": "2026-07-02T10:00:00Z"}
        assert served.post("/v1/batch", {"batch": [{**track, "userId": "u-pA-0"}]}).status_code == 200
        assert served.post("/v1/batch", {"batch": [{**track, "userId": "u-pB-0"}]}, key=other).status_code == 200
        assert served.post("/v1/batch", {"batch": [{**track, "userId": "u-pA-0"}]}).status_code == 200  # a retry
        served.wait_loaded(len(setup_messages()) + 3)
        assert served.rows("SELECT event_id, partner_id FROM events ORDER BY 1") == [
            ("partner%2Fb/m-1", "pB"), ("portal/m-1", "pA")]
        assert served.rows("SELECT sum(duplicates), sum(rejected) FROM imports") == [(1, 0)]
