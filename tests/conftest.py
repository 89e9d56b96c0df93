"""Shared fixtures. Backend fixtures (PostgreSQL server, Spark session) live in tests/backends.py."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.backends"]


@pytest.fixture
def db_path(tmp_path):
    """A fresh DuckDB file path."""
    return tmp_path / "hub.duckdb"
