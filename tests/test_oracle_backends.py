"""The hand-computed KPI fixtures (tests/test_kpi_*.py) through the `partnerkpi` command, on a DuckDB file and on
PostgreSQL by URL (one database per fixture on the session's server): every test passes, none is skipped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
