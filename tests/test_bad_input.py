"""Bad input gets a clear reason and is kept: instants out of bounds, conflicting repeats of an event id."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.ingest import import_files
from partnerkpi.settings import Settings, TimeBounds, parse_duration
from partnerkpi.store import Store

NOW = datetime(2026, 8, 1, 12, 0)


def jsonl(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def people(store, tmp_path):
    """Partner p1 (onboarded 2026-01-01) and its user u1."""
    import_files(store, [jsonl(tmp_path / "partners.jsonl", {"partner_id": "p1", "onboarded_at": "2026-01-01"}),
                         jsonl(tmp_path / "users.jsonl", {"user_id": "u1", "partner_id": "p1",
                                                          "created_at": "2026-01-02"})], clock=lambda: NOW)
    return store


def ev(eid: str, ts: str, **more) -> dict:
    return {"event_id": eid, "ts": ts, "event": "Logged In", "user_id": "u1", **more}


def rejected(store: Store) -> list[tuple]:
    return store.con.execute("SELECT row_number, field, reason FROM rejected_rows WHERE kind = 'events' "
                              "ORDER BY row_number").fetchall()


def test_event_times_outside_the_bounds_are_rejected_with_a_reason(people, tmp_path):
    path = jsonl(tmp_path / "events.jsonl",
                 ev("e1", "2026-07-01T10:00:00Z"),
                 ev("e2", "9999-12-31T00:00:00Z"),
                 ev("e3", "2999-01-01T00:00:00Z"),
                 ev("e4", "0001-01-01T00:00:00Z"),
                 ev("e5", "2026-08-02T11:59:59Z"),  # within the day of skew
                 ev("e6", "2026-08-02T12:00:01Z"),  # one second past it
                 ev("e7", "2000-01-01T00:00:00Z"),  # the floor itself
                 ev("e8", "1999-12-31T23:59:59Z"))
    [s] = import_files(people, [path], clock=lambda: NOW)
    assert (s.rows_read, s.accepted, s.rejected) == (8, 3, 5)
    assert s.rejected_by_reason == {"ts_in_future": 3, "ts_too_early": 2}
    stored = [r[0] for r in people.con.execute("SELECT event_id FROM events ORDER BY event_id").fetchall()]
    assert stored == ["e1", "e5", "e7"]
    rows = rejected(people)
    assert [r[0] for r in rows] == [2, 3, 4, 6, 8]
    assert rows[0][1] == "ts"
    assert rows[0][2] == ("ts 9999-12-31T00:00:00Z is later than the moment it was received (2026-08-01T12:00:00Z) "
                          "plus the allowed clock skew of 1 day; fix the value or the sender's clock (or allow "
                          "more skew with PARTNERKPI_MAX_CLOCK_SKEW)")
    assert rows[2][2] == ("ts 0001-01-01T00:00:00Z is before 2000-01-01, the earliest instant accepted; fix the "
                          "value (or lower the floor with PARTNERKPI_TS_FLOOR)")
    raw = people.con.execute("SELECT raw FROM rejected_rows WHERE row_number = 2 AND kind = 'events'").fetchall()
    assert json.loads(raw[0][0])["ts"] == "9999-12-31T00:00:00Z"  # nothing lost


def test_the_bounds_are_settings(people, tmp_path, monkeypatch):
    monkeypatch.setenv("PARTNERKPI_MAX_CLOCK_SKEW", "3d")
    monkeypatch.setenv("PARTNERKPI_TS_FLOOR", "2026-01-01")
    bounds = Settings.from_env("x.duckdb").time_bounds
    assert bounds == TimeBounds(datetime(2026, 1, 1), timedelta(days=3))
    path = jsonl(tmp_path / "events.jsonl", ev("e1", "2026-08-03T12:00:00Z"), ev("e2", "2025-12-31T23:00:00Z"))
    [s] = import_files(people, [path], clock=lambda: NOW, bounds=bounds)
    assert (s.accepted, s.rejected_by_reason) == (1, {"ts_too_early": 1})
    assert "is before 2026-01-01, the earliest instant accepted" in rejected(people)[0][2]
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90") == timedelta(seconds=90)
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration("soon")
    with pytest.raises(UsageError, match="before 1900-01-01"):
        TimeBounds(datetime(1000, 1, 1))


def test_partner_and_user_instants_have_bounds(store, tmp_path):
    partners = jsonl(tmp_path / "partners.jsonl",
                     {"partner_id": "p1", "onboarded_at": "2026-01-01", "offboarded_at": "2027-06-30"},  # planned end
                     {"partner_id": "p2", "onboarded_at": "9999-12-31"},
                     {"partner_id": "p3", "onboarded_at": "1970-01-01"},
                     {"partner_id": "p4", "onboarded_at": "2026-01-01", "offboarded_at": "9999-12-31"})
    users = jsonl(tmp_path / "users.jsonl",
                  {"user_id": "u1", "partner_id": "p1", "created_at": "2999-01-01"},
                  {"user_id": "u2", "partner_id": "p1", "created_at": "2026-01-01", "deactivated_at": "0001-01-01"})
    ps, us = import_files(store, [partners, users], clock=lambda: NOW)
    assert (ps.accepted, ps.rejected_by_reason) == (1, {"offboarded_at_too_late": 1, "onboarded_at_in_future": 1,
                                                         "onboarded_at_too_early": 1})
    assert us.rejected_by_reason == {"created_at_in_future": 1, "deactivated_at_too_early": 1}
    reasons = [r[0] for r in store.con.execute("SELECT reason FROM rejected_rows WHERE kind = 'partners' "
                                               "ORDER BY row_number").fetchall()]
    assert reasons[2] == "offboarded_at 9999-12-31T00:00:00Z is more than 100 years after the import; fix the value"


def test_a_far_due_date_counts_as_no_due_date(people, tmp_path):
    path = jsonl(tmp_path / "events.jsonl",
                 {"event_id": "t1", "ts": "2026-07-01T00:00:00Z", "event": "Task Assigned", "partner_id": "p1",
                  "object_id": "task-1", "properties": {"kind": "compliance", "due_at": "9999-12-31T00:00:00Z"}},
                 {"event_id": "t2", "ts": "2026-07-01T00:00:00Z", "event": "Task Assigned", "partner_id": "p1",
                  "object_id": "task-2", "properties": {"kind": "compliance", "due_at": "2026-09-01T00:00:00Z"}})
    [s] = import_files(people, [path], clock=lambda: NOW)
    assert s.accepted == 2
    got = people.con.execute("SELECT event_id, p_due_at, properties FROM events ORDER BY event_id").fetchall()
    assert got[0][1] is None and "9999-12-31" in got[0][2]  # the raw value is kept
    assert got[1][1] == datetime(2026, 9, 1)


def test_one_event_in_year_9999_breaks_nothing(tmp_path):
    from tests.kpi_fixtures import Fixture

    fx = Fixture(tmp_path)
    fx.partner("A").user("ua", "A")
    fx.event("Logged In", "2026-07-03 10:00", user="ua")
    fx.event("Logged In", "9999-12-31", user="ua")
    hub = fx.hub()
    assert fx.summaries["events"].rejected_by_reason == {"ts_in_future": 1}
    start, end = hub.default_range("month")
    assert end == datetime(2026, 7, 1).date()  # the data reaches 2026-07-03: June is the last complete month
    assert hub.watermark() == datetime(2026, 7, 4)
    rows = hub.scorecard("month", end, datetime(2026, 8, 1).date(), kpis=["active_partner_rate"])
    assert [r.value for r in rows] == [100.0]


def test_identical_repeats_are_duplicates_and_different_ones_conflicts(people, tmp_path):
    first = jsonl(tmp_path / "events-1.jsonl", ev("e1", "2026-07-01T10:00:00Z", properties={"path": "/a"}))
    import_files(people, [first], clock=lambda: NOW)
    path = jsonl(tmp_path / "events-2.jsonl",
                 ev("e1", "2026-07-01T10:00:00Z", properties={"path": "/a"}),  # the stored one again
                 ev("e1", "2026-07-01T11:00:00Z", properties={"path": "/b"}),  # differs from the stored one
                 ev("e2", "2026-07-02T10:00:00Z"),
                 ev("e2", "2026-07-02T10:00:00Z"),  # same as row 3
                 ev("e2", "2026-07-02T10:00:00Z", event="Logged Out"))  # differs from row 3
    [s] = import_files(people, [path], clock=lambda: NOW)
    assert (s.rows_read, s.accepted, s.duplicates, s.rejected) == (5, 1, 2, 2)
    assert s.rejected_by_reason == {"conflict": 2}
    rows = rejected(people)
    assert [(r[0], r[1]) for r in rows] == [(2, "ts"), (5, "event")]
    assert rows[0][2] == ("event_id 'e1' repeats the event stored by import 3 with different content: "
                          "ts '2026-07-01 11:00:00' here, '2026-07-01 10:00:00' there; properties "
                          "'{\"path\":\"/b\"}' here, '{\"path\":\"/a\"}' there; keep one version: correct this "
                          "row, or give it its own id if it is another event")
    assert rows[1][2].startswith("event_id 'e2' repeats row 3 of this file with different content: "
                                 "event 'Logged Out' here, 'Logged In' there;")
    assert people.con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 2


def test_hub_passes_its_bounds_and_clock(tmp_path):
    hub = Hub.open(tmp_path / "h.duckdb", clock=lambda: NOW, bounds=TimeBounds(skew=timedelta(hours=1)))
    hub.import_files([jsonl(tmp_path / "partners.jsonl", {"partner_id": "p1", "onboarded_at": "2026-08-01T13:30:00Z"})])
    assert hub.store.counts()["partners"] == 0
    assert hub.store.con.execute("SELECT field FROM rejected_rows").fetchall() == [("onboarded_at",)]
    hub.close()
