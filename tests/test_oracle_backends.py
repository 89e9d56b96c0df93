"""The hand-computed KPI fixtures (tests/test_kpi_*.py) through the `partnerkpi` command, on a DuckDB file and on
PostgreSQL by URL (one database per fixture on the session's server): every test passes, none is skipped. A
handful also through the scorecard API of `partnerkpi serve --workers 2` on PostgreSQL, both workers answering."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import test_kpi_adoption as adoption
from tests import test_kpi_outcomes as outcomes
from tests import test_kpi_rows as kpi_rows
from tests.kpi_fixtures import AUGUST, JULY, Fixture
from tests.oracle_cli import PG_SERVER_ENV, server_postgres_scorecard

ROOT = Path(__file__).resolve().parent.parent
KPI_TESTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_kpi_*.py"))


def pytest_run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *KPI_TESTS],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=3600)
    return result.stdout + result.stderr


def counted(output: str, outcome: str) -> int:
    found = re.search(rf"(\d+) {outcome}", output)
    return int(found.group(1)) if found else 0


@pytest.fixture(scope="module")
def kpi_test_count() -> int:
    """How many KPI tests the library run collects."""
    output = pytest_run("--collect-only")
    n = counted(output, "tests? collected")
    assert n > 50, output[-2000:]
    return n


@pytest.mark.parametrize("oracle", ["cli-duckdb", "cli-postgres"])
def test_every_kpi_fixture_passes_through_the_command_line(oracle, postgres_url, kpi_test_count):
    env = {**os.environ, "PARTNERKPI_ORACLE": oracle, "PARTNERKPI_ORACLE_PG": postgres_url}
    env.pop("PARTNERKPI_DB", None)
    output = pytest_run(env=env)
    tail = output[-4000:]
    assert counted(output, "passed") == kpi_test_count, tail
    assert (counted(output, "failed"), counted(output, "skipped"), counted(output, "errors?")) == (0, 0, 0), tail


SERVER_CASES = [
    adoption.test_usage_rate_is_a_share_of_users_and_per_partner_divides_by_partners,
    adoption.test_active_partner_rate_boundaries_and_previous,
    outcomes.test_cost_to_serve_per_partner,
    kpi_rows.test_previous_and_change_null_when_the_period_before_is_null,
]


@pytest.fixture
def on_two_workers(postgres_url, monkeypatch):
    """Fixture.scorecard answered by `partnerkpi serve --workers 2` on PostgreSQL (tests/oracle_cli.py)."""
    monkeypatch.setenv(PG_SERVER_ENV, postgres_url)

    def scorecard(fixture, kpis=None, grain="month", start=JULY, end=AUGUST, by=None):
        return server_postgres_scorecard(fixture, kpis, grain, start, end, by)

    monkeypatch.setattr(Fixture, "scorecard", scorecard)


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c.__name__.removeprefix("test_") for c in SERVER_CASES])
def test_hand_computed_kpis_from_a_two_worker_server_on_postgresql(on_two_workers, tmp_path, case):
    case(tmp_path)
