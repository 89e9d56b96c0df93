"""The oracle through the CLI on Spark: a hand-computed fixture's scorecard, computed by
`partnerkpi scorecard --db 'MASTER?lake=…'` over a lake that `partnerkpi lake export` wrote. MASTER is
$PARTNERKPI_ORACLE_SPARK when set (e.g. `sc://127.0.0.1:15002`, a Spark Connect server), else `spark:local[2]`.

`spark_scorecard` has the signature of `Fixture.scorecard` (plus the fixture), so the hand-computed tests run
unchanged against it. The CLI runs in this process (CliRunner): its one Spark session serves every call.
The CLI's clock is the fixture's (2030-01-01, after every instant the fixtures hold), as `Fixture.hub` gives
its hub: `tests/oracle_cli.cli` runs the command with that clock, and `row_from_json` reads its rows back.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from datetime import date

from partnerkpi.engine.result import KpiRow
from tests.kpi_fixtures import AUGUST, JULY, RECEIVED, Fixture
from tests.oracle_cli import cli, row_from_json

SPARK_MASTER = "spark:local[2]"
MASTER_ENV = "PARTNERKPI_ORACLE_SPARK"


def master() -> str:
    """The Spark target the oracle's commands name: $PARTNERKPI_ORACLE_SPARK, else local mode."""
    return os.environ.get(MASTER_ENV, "").strip() or SPARK_MASTER


def lake_of(fixture: Fixture) -> str:
    """The fixture's program as a lake (built once per fixture, and again when it gained rows): the DuckDB
    store `Fixture.hub` builds, copied and exported with `partnerkpi lake export`."""
    rows = (len(fixture.partners), len(fixture.users), len(fixture.events))
    lake = fixture.dir / "lake"
    if getattr(fixture, "_oracle_lake", None) == rows:
        return str(lake)
    hub = fixture.hub()
    hub.store.con.execute("CHECKPOINT")
    copy = fixture.dir / "lake-source.duckdb"
    shutil.copyfile(hub.store.path, copy)
    cli(["lake", "export", "--db", str(copy), "--out", str(lake), "--partition", "month", "--replace"], RECEIVED)
    fixture._oracle_lake = rows  # type: ignore[attr-defined]
    return str(lake)


def spark_scorecard(
    fixture: Fixture,
    kpis: Sequence[str] | None = None,
    grain: str = "month",
    start: date = JULY,
    end: date = AUGUST,
    by: str | None = None,
) -> list[KpiRow]:
    """`Fixture.scorecard` computed by the CLI on Spark over the fixture exported as a lake."""
    db = f"{master()}?lake={lake_of(fixture)}"
    args = ["scorecard", "--db", db, "--grain", grain, "--from", start.isoformat(), "--to", end.isoformat(),
            "--as-of", RECEIVED.date().isoformat(), "--format", "json"]
    for kpi in kpis or ():
        args += ["--kpi", kpi]
    if by is not None:
        args += ["--by", by]
    args += [a for path in fixture.catalog_paths for a in ("--catalog", str(path))]
    return [row_from_json(r) for r in json.loads(cli(args, RECEIVED))]


def pytest_configure(config: object) -> None:
    """As a plugin (`pytest -p tests.oracle_spark tests/test_kpi_*.py`) run every hand-computed KPI test on
    Spark through the CLI."""
    Fixture.scorecard = spark_scorecard  # type: ignore[method-assign]
