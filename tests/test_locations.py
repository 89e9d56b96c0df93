"""`--db` names where the data lives: a DuckDB file or URL, PostgreSQL, or Spark over a lake."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from partnerkpi.cli import app
from partnerkpi.errors import UsageError
from partnerkpi.locations import parse_location


@pytest.mark.parametrize(("text", "target"), [
    ("hub.duckdb", "hub.duckdb"),
    ("data/dir/hub.duckdb", "data/dir/hub.duckdb"),
    ("duckdb:///srv/pk/hub.duckdb", "/srv/pk/hub.duckdb"),
    ("duckdb:relative.duckdb", "relative.duckdb"),
    (":memory:", ":memory:"),
])
def test_duckdb_paths_and_urls(text, target):
    location = parse_location(text)
    assert (location.kind, location.target) == ("duckdb", target)
    assert location.is_file == (target != ":memory:")


def test_postgres_urls_are_kept_whole():
    for url in ("postgresql://pk:secret@db.example:5433/hub", "postgres://localhost/hub"):
        location = parse_location(url)
        assert (location.kind, location.target, location.is_file) == ("postgres", url, False)


def test_spark_masters_lake_and_state(monkeypatch):
    monkeypatch.delenv("PARTNERKPI_LAKE", raising=False)
    monkeypatch.delenv("PARTNERKPI_STATE", raising=False)
    local = parse_location("spark:local[*]?lake=/data/lake")
    assert (local.kind, local.target, local.lake, local.state) == (
        "spark", "local[*]", "/data/lake", "/data/lake/partnerkpi-state.duckdb")
    assert not local.spark_connect
    remote = parse_location("sc://spark.example:15002?lake=/data/lake&state=postgresql://pk@db/state")
    assert (remote.target, remote.state, remote.spark_connect) == ("sc://spark.example:15002",
                                                                    "postgresql://pk@db/state", True)
    assert parse_location("spark://master:7077?lake=/l").target == "spark://master:7077"
    monkeypatch.setenv("PARTNERKPI_LAKE", "/env/lake")
    assert parse_location("spark:local[2]").lake == "/env/lake"


@pytest.mark.parametrize(("text", "says"), [
    ("mysql://db/hub", "unknown database URL scheme 'mysql://'"),
    ("spark:local[*]", "no lake"),
    ("spark:local[*]?lake=/l&lakes=/m", "unknown option(s) lakes"),
    ("postgresql:///hub", "no host"),
    ("duckdb://", "no file"),
    ("  ", "--db is empty"),
])
def test_bad_locations_say_what_and_how(text, says, monkeypatch):
    monkeypatch.delenv("PARTNERKPI_LAKE", raising=False)
    with pytest.raises(UsageError) as caught:
        parse_location(text)
    assert says in str(caught.value) and caught.value.hint


def test_a_command_takes_a_duckdb_url(tmp_path):
    from tests.kpi_fixtures import Fixture

    fx = Fixture(tmp_path)
    fx.partner("A").user("a1", "A").user("a2", "A").event("Logged In", "2026-07-02 09:00", user="a1")
    fx.event("Logged In", "2026-08-02 09:00", user="a2")  # the data covers July whole
    fx.hub().close()
    db = (fx.dir / "hub.duckdb").resolve()
    url = f"duckdb://{db}"  # an absolute path after the two slashes: duckdb:///tmp/...
    result = CliRunner().invoke(app, ["scorecard", "--db", url, "--kpi", "portal_usage_rate", "--format", "json",
                                      "--from", "2026-07-01", "--to", "2026-08-01"])
    assert result.exit_code == 0, result.output
    assert '"value": 50.0' in result.stdout  # a1 of {a1, a2} active in July
