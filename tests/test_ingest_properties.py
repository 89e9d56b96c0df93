"""Property tests of the import's invariants over random event files (duplicates, bad rows, inheritance)."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnerkpi.catalog.plan import load_plan
from partnerkpi.ingest import import_files
from partnerkpi.store import Store

PLAN = load_plan()
USERS = {"u1": "p1", "u2": "p1", "u3": "p2"}

event_rows = st.lists(
    st.fixed_dictionaries(
        {
            "event_id": st.sampled_from([f"e{i}" for i in range(12)]),  # few ids: many duplicates
            "ts": st.sampled_from(["2026-07-01T10:00:00Z", "2026-07-02T23:59:59+02:00", "not a time"]),
            "event": st.sampled_from(["Logged In", "Page Viewed", "Webinar Joined"]),
            "user_id": st.sampled_from([None, "u1", "u2", "u3", "u9"]),
            "partner_id": st.sampled_from([None, "", "p1", "p2", "p9"]),
        }
    ),
    max_size=25,
)


def _content(row: dict) -> tuple:
    instant = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
    return instant, row["event"], row["partner_id"], row["user_id"]


def _expected(rows: list[dict]) -> tuple[dict[str, dict], int, int]:
    """By KPI-SPEC §2, by hand: the stored rows (first valid per id), duplicates and rejections."""
    stored: dict[str, dict] = {}
    duplicates = rejected = 0
    for row in rows:
        user, partner = row["user_id"], row["partner_id"] or None
        valid = row["ts"] != "not a time" and user != "u9" and partner != "p9"
        if valid and user is not None and partner is not None and USERS[user] != partner:
            valid = False
        if not valid:
            rejected += 1
        elif row["event_id"] in stored:  # identical: a duplicate; different: a conflict, rejected
            same = _content(stored[row["event_id"]]) == _content(
                {**row, "partner_id": partner or (USERS[user] if user else None)})
            duplicates, rejected = (duplicates + 1, rejected) if same else (duplicates, rejected + 1)
        else:
            stored[row["event_id"]] = {**row, "partner_id": partner or (USERS[user] if user else None)}
    return stored, duplicates, rejected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_rows)
def test_every_row_is_stored_once_counted_as_duplicate_or_kept_as_rejected(rows):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "partners.csv").write_text("partner_id,name,onboarded_at\np1,P1,2026-01-01\np2,P2,2026-01-01\n")
        (root / "users.csv").write_text(
            "user_id,partner_id,created_at\n" + "".join(f"{u},{p},2026-01-01\n" for u, p in USERS.items())
        )
        events = root / "events.jsonl"
        events.write_text("".join(json.dumps(r) + "\n" for r in rows) or "\n")
        store = Store.open(root / "hub.duckdb", PLAN)
        try:
            import_files(store, [root / "partners.csv", root / "users.csv"])
            if not rows:
                return
            (summary,) = import_files(store, [events], kind="events")
            stored, duplicates, rejected = _expected(rows)
            assert summary.rows_read == len(rows) == summary.accepted + summary.duplicates + summary.rejected
            assert (summary.accepted, summary.duplicates, summary.rejected) == (len(stored), duplicates, rejected)
            got = store.con.execute("SELECT event_id, event, user_id, partner_id FROM events").fetchall()
            assert sorted(got, key=str) == sorted(
                ((i, r["event"], r["user_id"], r["partner_id"]) for i, r in stored.items()), key=str
            )
            kept = store.con.execute("SELECT count(*) FROM rejected_rows WHERE kind = 'events'").fetchall()[0][0]
            assert kept == rejected
            (again,) = import_files(store, [events], kind="events")
            assert again.skipped_same_file and store.counts()["events"] == len(stored)
        finally:
            store.close()
