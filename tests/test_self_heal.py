"""A crash between an import's commit and its rollup refresh heals itself on the next writable open."""

from __future__ import annotations

import json
from datetime import date, datetime

from typer.testing import CliRunner

from partnerkpi.catalog.plan import load_plan
from partnerkpi.cli import app
from partnerkpi.clock import FixedClock
from partnerkpi.hub import Hub
from partnerkpi.ingest import import_files
from partnerkpi.store import Store
from tests.kpi_fixtures import Fixture


def _program(tmp_path):
    fx = Fixture(tmp_path)
    fx.partner("A").partner("B").user("ua", "A").user("ub", "B")
    fx.event("Logged In", "2026-07-03 10:00", user="ua")
    fx.hub().close()
    return tmp_path / "hub.duckdb"


def _crash_after_commit(db, tmp_path):
    """Import one more event the way `import` does, but stop before the rollups are refreshed."""
    late = tmp_path / "events-late.jsonl"
    late.write_text(json.dumps({"event_id": "late", "ts": "2026-07-20T09:00:00Z", "event": "Logged In",
                                "user_id": "ub"}) + "\n")
    store = Store.open(db, load_plan())
    [s] = import_files(store, [late])
    assert s.accepted == 1
    store.close()


def _days(hub: Hub) -> list[tuple]:
    return hub.store.con.execute("SELECT partner_id, day FROM derived_activity_days ORDER BY day").fetchall()


def test_the_next_open_rebuilds_stale_rollups(tmp_path):
    db = _program(tmp_path)
    _crash_after_commit(db, tmp_path)
    with Hub.open(db, read_only=True) as hub:  # a reader leaves the file alone: the engine computes inline
        assert set(hub.stale_rollups()) == {"derived_event_days", "derived_object_firsts", "derived_activity_days",
                                            "derived_sessions", "derived_tasks", "derived_grants"}
        assert len(_days(hub)) == 1
        rows = hub.scorecard("month", date(2026, 7, 1), date(2026, 8, 1), kpis=["active_partner_rate"])
        assert rows[0].value == 100.0  # both partners, the late event included
    with Hub.open(db) as hub:
        assert hub.stale_rollups() == []
        assert [r[0] for r in _days(hub)] == ["A", "B"]


def test_refresh_command_heals_and_full_rebuilds(tmp_path):
    db = _program(tmp_path)
    _crash_after_commit(db, tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["refresh", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "rollups up to date" in result.output
    result = runner.invoke(app, ["refresh", "--db", str(db), "--full"])
    assert result.exit_code == 0 and "rollups rebuilt" in result.output
    with Hub.open(db, read_only=True) as hub:
        assert hub.stale_rollups() == []
        assert [r[0] for r in _days(hub)] == ["A", "B"]


def test_an_empty_store_has_nothing_to_heal(tmp_path):
    with Hub.open(tmp_path / "new.duckdb") as hub:
        assert hub.stale_rollups() == []
        assert "derived_state" not in hub.store.tables()


def test_a_year_9999_row_stored_before_bounds_existed_breaks_no_open(tmp_path):
    db = _program(tmp_path)
    with Hub.open(db) as hub:  # as an older version left it: the row committed, its refresh failed
        hub.store.con.execute("INSERT INTO events (seq, event_id, ts, event, user_id, partner_id, properties) "
                              "VALUES (99, 'far', TIMESTAMP '9999-12-31 00:00:00', 'Logged In', 'ub', 'B', '{}')")
    with Hub.open(db, clock=FixedClock(datetime(2026, 8, 15, 12))) as hub:
        assert hub.stale_rollups() == []
        # the watermark stops at the end of the clock's day: July is the last complete month
        assert hub.watermark() == datetime(2026, 8, 16)
        start, end = hub.default_range("month")
        assert end == date(2026, 8, 1)
        rows = hub.scorecard("month", date(2026, 7, 1), date(2026, 8, 1), kpis=["active_partner_rate"])
        assert rows[0].value == 50.0
