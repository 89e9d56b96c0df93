"""Shared fixtures. Backend fixtures (PostgreSQL server, Spark session) live in tests/backends.py."""

from __future__ import annotations

import pytest

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
