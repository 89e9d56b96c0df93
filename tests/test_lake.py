"""Spark over a lake (partnerkpi.lake): the layout `partnerkpi lake export` writes, the small reads the state
store answers from the lake's files without Spark, the errors for what a lake cannot do, and (slow) the read
commands through the CLI on Spark giving what they give on the DuckDB file the lake came from."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from partnerkpi.cli import app
from partnerkpi.errors import StoreError, UsageError
from partnerkpi.hub import Hub
from partnerkpi.lake import LakeHub
from tests.kpi_fixtures import Fixture

runner = CliRunner()


def _program(tmp_path: Path) -> Path:
    """Two partners (one with a `segment` trait), two users, three logins in July and August 2026, in a DuckDB
    file (closed)."""
    fx = Fixture(tmp_path)
    fx.partner("A", type="reseller").partner("B", type="isv", tier="silver")
    fx.user("ua", "A").user("ub", "B")
    fx.event("Logged In", "2026-07-03 10:00", user="ua")
    fx.event("Logged In", "2026-07-20 10:00", user="ub")
    fx.event("Logged In", "2026-08-03 23:30", user="ua")
    fx.hub().close()
    return fx.dir / "hub.duckdb"


def _export(db: Path, lake: Path, *extra: str) -> str:
    result = runner.invoke(app, ["lake", "export", "--db", str(db), "--out", str(lake), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _url(lake: Path) -> str:
    return f"spark:local[2]?lake={lake}"


def test_export_writes_the_layout_with_month_partitions_and_refuses_to_overwrite(tmp_path):
    db, lake = _program(tmp_path), tmp_path / "lake"
    said = _export(db, lake, "--partition", "month")
    assert "2 partners, 2 users, 3 events written" in said
    files = sorted(str(p.relative_to(lake)) for p in lake.rglob("*.parquet"))
    assert files == ["events/month=2026-07/data_0.parquet", "events/month=2026-08/data_0.parquet",
                     "partners/partners.parquet", "users/users.parquet"]
    july = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/events/month=2026-07/*.parquet')").fetchall()
    assert july == [(2,)]
    again = runner.invoke(app, ["lake", "export", "--db", str(db), "--out", str(lake)])
    assert isinstance(again.exception, UsageError) and "--replace" in again.exception.hint
    _export(db, lake, "--replace")  # unpartitioned now: one file of events
    assert [p.name for p in (lake / "events").iterdir()] == ["events.parquet"]


def test_the_small_reads_come_from_the_lake_files_without_starting_spark(tmp_path):
    lake = tmp_path / "lake"
    _export(_program(tmp_path), lake, "--partition", "month")
    with Hub.open(_url(lake), read_only=True) as hub:
        assert isinstance(hub, LakeHub) and hub.source is None
        assert hub.last_event_at() == datetime(2026, 8, 3, 23, 30)
        assert hub.watermark() == datetime(2026, 8, 4)  # the end of the last event's UTC day
        assert hub.partner_names() == {"A": "Partner A", "B": "Partner B"}
        assert hub.has_partner("B") and not hub.has_partner("Z")
        assert hub.traits() == ["type", "tier", "region"]
        assert hub.store.counts()["events"] == 3
        logins = next(r for r in hub.plan_coverage() if r["event"] == "Logged In")
        assert logins["count"] == 3
        assert hub.source is None  # none of it needed Spark
    assert (lake / "partnerkpi-state.duckdb").is_file()  # the state store, beside the lake by default


def test_a_grown_lake_is_read_whole_by_a_read_only_open(tmp_path):
    """New files and a new trait column show without a writable open by hand: the views are rewritten when
    they no longer match the files."""
    lake = tmp_path / "lake"
    _export(_program(tmp_path), lake, "--partition", "month")
    with Hub.open(_url(lake), read_only=True) as hub:
        assert hub.watermark() == datetime(2026, 8, 4)
    (lake / "events" / "month=2026-09").mkdir()
    duckdb.sql(f"COPY (SELECT * REPLACE (TIMESTAMP '2026-09-10 08:00' AS ts, 'e9' AS event_id) FROM "
               f"read_parquet('{lake}/events/month=2026-07/*.parquet') LIMIT 1) TO "
               f"'{lake}/events/month=2026-09/more.parquet' (FORMAT parquet)")
    duckdb.sql(f"COPY (SELECT *, 'north' AS area FROM '{lake}/partners/partners.parquet') TO "
               f"'{lake}/partners/partners.parquet' (FORMAT parquet)")
    with Hub.open(_url(lake), read_only=True) as hub:
        assert hub.watermark() == datetime(2026, 9, 11)
        assert hub.traits() == ["type", "tier", "region", "area"]
        assert hub.store.counts()["events"] == 4


def test_the_snapshots_of_a_lake_hub_share_its_spark_views(tmp_path):
    """The server reads through a snapshot per request: the lake's views are made once, not again under other
    requests' queries."""
    lake = tmp_path / "lake"
    _export(_program(tmp_path), lake)
    with Hub.open(_url(lake), read_only=True) as hub:
        snapshots = [hub.snapshot() for _ in range(3)]
        try:
            sources = [snapshot.engine and snapshot.source for snapshot in snapshots]  # Spark starts on first use
            assert sources[0] is not None and all(source is sources[0] for source in sources)
        finally:
            for snapshot in snapshots:
                snapshot.close_snapshot()


def test_instants_with_a_zone_read_as_utc(tmp_path):
    lake = tmp_path / "lake"
    _export(_program(tmp_path), lake)
    events = lake / "events" / "events.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Europe/Berlin'")  # the writer's zone must not matter
    con.execute(f"COPY (SELECT * REPLACE (CAST('2026-08-04 01:30:00+02' AS TIMESTAMPTZ) AS ts) FROM '{events}') "
                f"TO '{tmp_path / 'tz.parquet'}' (FORMAT parquet)")
    (tmp_path / "tz.parquet").replace(events)
    with Hub.open(_url(lake), read_only=True) as hub:
        assert hub.last_event_at() == datetime(2026, 8, 3, 23, 30)


def test_import_into_a_lake_is_refused_and_says_how_to_add_data(tmp_path):
    lake = tmp_path / "lake"
    _export(_program(tmp_path), lake)
    more = tmp_path / "more.jsonl"
    more.write_text('{"event_id": "x", "ts": "2026-07-04T10:00:00Z", "event": "Logged In", "user_id": "ua"}\n')
    result = runner.invoke(app, ["import", str(more), "--db", _url(lake)])
    assert isinstance(result.exception, UsageError)
    assert "in place" in result.exception.message and "lake export" in result.exception.hint


def test_a_lake_without_a_table_or_with_a_table_it_cannot_read_says_what_to_do(tmp_path):
    lake = tmp_path / "lake"
    _export(_program(tmp_path), lake)
    (lake / "users" / "users.parquet").unlink()
    with pytest.raises(StoreError, match="holds no Parquet file"):
        Hub.open(_url(lake), read_only=True)
    (lake / "users").rmdir()
    with pytest.raises(StoreError, match="no users table") as missing:
        Hub.open(_url(lake), read_only=True)
    assert "partnerkpi lake export" in missing.value.hint
    (lake / "users" / "_delta_log").mkdir(parents=True)
    with pytest.raises(StoreError, match="Delta table") as delta:
        Hub.open(_url(lake), read_only=True)
    assert "pip install delta-spark" in delta.value.hint
    with pytest.raises(StoreError, match="does not exist"):
        Hub.open(_url(tmp_path / "nowhere"), read_only=True)


def test_a_state_store_with_data_is_not_taken_for_a_lake_state(tmp_path):
    db, lake = _program(tmp_path), tmp_path / "lake"
    _export(db, lake)
    with pytest.raises(StoreError, match="holds a partners table with rows"):
        Hub.open(f"spark:local[2]?lake={lake}&state={db}")


# -- through Spark (slow: a JVM) ---------------------------------------------------------------------------

def _json(args: list[str]) -> object:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", [
    ["scorecard", "--from", "2026-07-01", "--to", "2026-08-01", "--by", "type", "--kpi", "active_partner_rate",
     "--kpi", "login_frequency"],
    ["health", "--as-of", "2026-09-01"],
])
def test_read_commands_on_spark_give_what_they_give_on_the_duckdb_file(spark, tmp_path, command):
    db, lake = _program(tmp_path), tmp_path / "lake"
    _export(db, lake, "--partition", "month")
    on_duckdb = _json([*command, "--db", str(db), "--format", "json"])
    on_spark = _json([*command, "--db", _url(lake), "--format", "json"])
    assert on_spark == on_duckdb
    assert on_spark  # not two empty answers
