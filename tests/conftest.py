"""Shared fixtures. Backend fixtures (PostgreSQL server, Spark session) live in tests/backends.py."""

from __future__ import annotations

import os

import pytest

# Every read waits for results fresh for the data it sees, so a test's assertions never race a background
# refresh; tests/test_stale_while_revalidate.py turns serving the last result on where it tests it.
os.environ.setdefault("PARTNERKPI_LIVE_AFTER_MS", "inf")

pytest_plugins = ["tests.backends", "tests.browser", "tests.spark_connect"]


@pytest.fixture
def db_path(tmp_path):
    """A fresh DuckDB file path."""
    return tmp_path / "hub.duckdb"


@pytest.fixture
def store(tmp_path):
    """A fresh canonical store with the built-in tracking plan."""
    from partnerkpi.catalog.plan import load_plan
    from partnerkpi.store import Store

    s = Store.open(tmp_path / "x.duckdb", load_plan())
    yield s
    s.close()
