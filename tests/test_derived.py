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
