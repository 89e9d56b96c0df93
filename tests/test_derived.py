"""Derived rollups: materialized after import, never read when stale."""

from __future__ import annotations

from datetime import datetime

from tests.kpi_fixtures import Fixture, value


def _program(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-01-01")
    fx.partner("B", onboarded="2026-01-01")
    fx.user("ua", "A")
    fx.user("ub", "B")
    fx.event("Logged In", "2026-07-03 10:00", user="ua")
    fx.event("Page Viewed", "2026-07-03 10:20", user="ua", path="/home")
    return fx


def test_import_materializes_fresh_rollups_that_the_engine_reads(tmp_path):
    fx = _program(tmp_path)
    hub = fx.hub()
    assert {"derived_activity_days", "derived_sessions"} <= hub.store.tables()
    engine = hub.engine
    assert engine.materialized("derived_sessions") is not None
    # one session of A's user: 10:00 .. 10:20 = 20 minutes; 1 of 2 partners active
    rows = fx.scorecard(["avg_session_minutes", "active_partner_rate"])
    assert value(rows, "avg_session_minutes", "2026-07").value == 20.0
    assert value(rows, "active_partner_rate", "2026-07").value == 50.0


def test_events_written_behind_the_rollups_back_make_them_stale_and_unused(tmp_path):
    fx = _program(tmp_path)
    hub = fx.hub()
    hub.store.con.execute(
        "INSERT INTO events (seq, event_id, ts, event, partner_id, user_id, properties) "
        "VALUES (99, 'late', ?, 'Logged In', 'B', 'ub', '{}')",
        [datetime(2026, 7, 9, 8, 0)],
    )
    assert hub.engine.materialized("derived_sessions") is None
    rows = fx.scorecard(["avg_session_minutes", "active_partner_rate"])
    # now both partners are active (2 of 2); sessions: 20 min and a one-event 0 min session -> mean 10
    assert value(rows, "active_partner_rate", "2026-07").value == 100.0
    assert value(rows, "avg_session_minutes", "2026-07").value == 10.0
    hub.prepare()
    assert hub.engine.materialized("derived_sessions") is not None
    assert value(fx.scorecard(["avg_session_minutes"]), "avg_session_minutes", "2026-07").value == 10.0


def _rebuilt_equals_stored(hub) -> dict[str, tuple[int, int]]:
    """For every derived table: (rows only in the stored table, rows only in a fresh full build)."""
    import ibis

    from partnerkpi.backends import duckdb_backend
    from partnerkpi.engine.derived import DERIVED

    events = duckdb_backend(hub.store).table("events")
    out = {}
    for name, build in DERIVED.items():
        sql = ibis.to_sql(build(events, hub.plan), dialect="duckdb")
        cols = ", ".join(f'"{c}"' for c in hub.store.columns(name))
        only_stored = f'SELECT count(*) FROM (SELECT {cols} FROM "{name}" EXCEPT ALL SELECT {cols} FROM ({sql}))'
        only_fresh = f'SELECT count(*) FROM (SELECT {cols} FROM ({sql}) EXCEPT ALL SELECT {cols} FROM "{name}")'
        out[name] = (hub.store.con.execute(only_stored).fetchall()[0][0],
                     hub.store.con.execute(only_fresh).fetchall()[0][0])
    return out


def test_a_later_import_refreshes_only_what_it_touches_and_equals_a_full_rebuild(tmp_path):
    fx = _program(tmp_path)
    fx.event("Task Assigned", "2026-07-01 09:00", partner="A", object="t1", kind="compliance")
    fx.event("Access Granted", "2026-07-01 09:00", user="ua", object="g1", role="viewer")
    hub = fx.hub()
    later = tmp_path / "later.jsonl"
    rows = [
        # continues ua's 10:00-10:20 session of the first import (10 min gap) -> one 25-minute session
        {"event_id": "n1", "ts": "2026-07-03T10:25:00Z", "event": "Page Viewed", "user_id": "ua"},
        {"event_id": "n2", "ts": "2026-07-04T08:00:00Z", "event": "Task Completed", "partner_id": "A",
         "object_id": "t1"},
        {"event_id": "n3", "ts": "2026-07-05T08:00:00Z", "event": "Access Revoked", "partner_id": "A",
         "object_id": "g1"},
        {"event_id": "n4", "ts": "2026-07-06T12:00:00Z", "event": "Logged In", "user_id": "ub"},
    ]
    later.write_text("".join(__import__("json").dumps(r) + "\n" for r in rows))
    hub.import_files([later], kind="events")  # prepares incrementally
    assert hub.engine.materialized("derived_sessions") is not None
    assert all(diff == (0, 0) for diff in _rebuilt_equals_stored(hub).values()), _rebuilt_equals_stored(hub)
    sessions = hub.store.con.execute(
        "SELECT user_id, start, \"end\" FROM derived_sessions ORDER BY user_id, start").fetchall()
    assert sessions == [
        ("ua", datetime(2026, 7, 3, 10, 0), datetime(2026, 7, 3, 10, 25)),
        ("ub", datetime(2026, 7, 6, 12, 0), datetime(2026, 7, 6, 12, 0)),
    ]
    task = hub.store.con.execute("SELECT completed_at FROM derived_tasks WHERE task = 't1'").fetchall()
    assert task == [(datetime(2026, 7, 4, 8, 0),)]


def test_a_late_event_that_bridges_two_sessions_merges_them_as_a_full_rebuild_would(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-01-01")
    fx.user("ua", "A")
    fx.user("ub", "A")
    for ts in ("2026-07-03 10:00", "2026-07-03 10:50", "2026-07-03 12:00", "2026-07-09 09:00"):
        fx.event("Page Viewed", ts, user="ua", path="/")
    fx.event("Logged In", "2026-07-08 09:00", user="ub")
    hub = fx.hub()
    assert hub.store.con.execute("SELECT count(*) FROM derived_sessions WHERE user_id = 'ua'").fetchall() == [(4,)]
    late = tmp_path / "late.jsonl"
    late.write_text(
        '{"event_id": "late1", "ts": "2026-07-03T10:25:00Z", "event": "Page Viewed", "user_id": "ua"}\n'
        '{"event_id": "late2", "ts": "2026-07-01T08:00:00Z", "event": "Logged In", "user_id": "ub"}\n'
    )
    hub.import_files([late], kind="events")
    assert all(diff == (0, 0) for diff in _rebuilt_equals_stored(hub).values())
    # 10:00, 10:25 and 10:50 are now one session (gaps of 25 minutes); 12:00 and 07-09 stay apart
    assert hub.store.con.execute(
        "SELECT start, \"end\" FROM derived_sessions WHERE user_id = 'ua' ORDER BY start").fetchall() == [
        (datetime(2026, 7, 3, 10, 0), datetime(2026, 7, 3, 10, 50)),
        (datetime(2026, 7, 3, 12, 0), datetime(2026, 7, 3, 12, 0)),
        (datetime(2026, 7, 9, 9, 0), datetime(2026, 7, 9, 9, 0)),
    ]
