"""Property test: refreshing the rollups after random appends equals rebuilding them from all the events.

Each example imports a first batch (a full build), then later batches that mix new events, late events
(earlier than what is stored), resent events (exact duplicates) and reused ids with other content
(conflicts). After every batch each rollup must hold exactly the rows of a full rebuild.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnerkpi.clock import FixedClock
from partnerkpi.engine.derived import appended_since
from partnerkpi.hub import Hub
from tests.kpi_fixtures import RECEIVED
from tests.test_derived import _rebuilt_equals_stored

USERS = {"u1": "p1", "u2": "p1", "u3": "p2"}
OBJECT_EVENTS = ("Task Assigned", "Task Completed", "Task Cancelled", "Access Granted", "Access Revoked")
# 15-minute steps from 10:00 on four days: gaps of exactly the 30-minute session gap, and of one step more
INSTANTS = [datetime(2026, 7, day, 10) + timedelta(minutes=15 * k) for day in range(1, 5) for k in range(9)]


@st.composite
def events(draw: st.DrawFn) -> dict:
    """One event row: activity or object events, on a small grid of ids, users, objects and instants."""
    name = draw(st.sampled_from(["Logged In", "Page Viewed", "Custom Clicked", *OBJECT_EVENTS]))
    user = draw(st.sampled_from([None, "u1", "u2", "u3"])) if name not in ("Logged In", "Custom Clicked") \
        else draw(st.sampled_from(["u1", "u2", "u3"]))
    row = {
        "event_id": draw(st.sampled_from([f"e{i}" for i in range(40)])),
        "ts": draw(st.sampled_from(INSTANTS)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "event": name,
        "user_id": user,
        "partner_id": None if user else draw(st.sampled_from(["p1", "p2"])),
        "object_id": draw(st.sampled_from(["o1", "o2", "o3"])) if name in OBJECT_EVENTS else None,
        "properties": {},
    }
    if name == "Task Assigned":
        row["properties"] = {"kind": "compliance", **draw(st.sampled_from([{}, {"due_at": "2026-07-03T00:00:00Z"}]))}
    return row


# a batch: new rows, and positions of rows sent before to send again unchanged
batches = st.lists(
    st.tuples(st.lists(events(), min_size=1, max_size=8), st.lists(st.integers(0, 200), max_size=3)),
    min_size=2, max_size=3,
)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _fingerprints(hub: Hub) -> dict[str, str]:
    return hub.store.derived.fingerprints() if hub.store.derived.exists() else {}


def _appended_after(hub: Hub, old: str, new: str) -> int | None:
    return appended_since(old, new, lambda seq: hub.store.con.execute(
        "SELECT count(*) FROM events WHERE seq > ?", [seq]).fetchall()[0][0])


@pytest.mark.slow  # about 3 s of CPU an example: a store, 3-4 imports and 6 rollups compared each time
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_incremental_refresh_equals_a_full_rebuild_after_random_appends(batches):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        partners = [{"partner_id": p, "name": p, "onboarded_at": "2026-01-01T00:00:00Z"} for p in ("p1", "p2")]
        users = [{"user_id": u, "partner_id": p, "email": f"{u}@example.com", "created_at": "2026-01-01T00:00:00Z"}
                 for u, p in USERS.items()]
        with Hub.open(root / "hub.duckdb", clock=FixedClock(RECEIVED)) as hub:
            hub.import_files([_write(root / "partners.jsonl", partners), _write(root / "users.jsonl", users)])
            sent: list[dict] = []
            for n, (rows, resend) in enumerate(batches):
                before = _fingerprints(hub)
                batch = rows + [sent[i % len(sent)] for i in resend if sent]
                (summary,) = hub.import_files([_write(root / f"events-{n}.jsonl", batch)], kind="events")
                sent += rows
                assert summary.skipped_same_file or summary.rows_read == len(batch)
                diffs = _rebuilt_equals_stored(hub)
                assert all(d == (0, 0) for d in diffs.values()), (n, diffs)
                after = _fingerprints(hub)
                if before and summary.accepted:  # a later batch that added rows took the incremental path
                    assert all(_appended_after(hub, before[t], after[t]) is not None for t in after)
