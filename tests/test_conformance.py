"""One engine, three backends: every KPI gives the same rows on DuckDB, PostgreSQL and Spark."""

from __future__ import annotations

import math
from datetime import date

import pytest

from partnerkpi.backends import load_into_postgres, load_into_spark, postgres_backend, spark_backend
from partnerkpi.demo import generate
from partnerkpi.engine.periods import Grain, periods_between
from partnerkpi.hub import Hub

pytestmark = pytest.mark.slow
START, END = date(2025, 9, 1), date(2026, 11, 1)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A small demo program (every event of the tracking plan) in a DuckDB file."""
    root = tmp_path_factory.mktemp("conformance")
    files = generate(root / "data", partners=40, months=14, seed=11)
    h = Hub.open(root / "hub.duckdb")
    h.import_files([files.partners, files.users, files.events])
    yield h
    h.close()


@pytest.fixture(scope="module")
def reference(hub):
    rows = hub.scorecard("month", START, END, by="type")
    return {_key(r): r for r in rows}


def _key(row):
    return (row.kpi, row.period, tuple(sorted(row.segment.items())))


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _compare(reference, rows):
    assert len(rows) == len(reference)
    differences = []
    for row in rows:
        ref = reference[_key(row)]
        for field in ("value", "numerator", "denominator", "previous", "change"):
            if not _same(getattr(ref, field), getattr(row, field)):
                differences.append((*_key(row), field, getattr(ref, field), getattr(row, field)))
        if (ref.n, ref.band) != (row.n, row.band):
            differences.append((*_key(row), "n/band", (ref.n, ref.band), (row.n, row.band)))
    assert not differences, differences[:20]


def test_reference_covers_every_kpi_with_data(hub, reference):
    """The fixture is rich enough: every KPI has at least one non-null, non-zero value."""
    with_data = {k for (k, _, seg), r in reference.items() if not seg and r.value not in (None, 0.0)}
    assert with_data == set(hub.catalog.ids)


@pytest.mark.postgres
def test_postgres_matches_duckdb(hub, reference, postgres_url):
    load_into_postgres(hub.store, postgres_url)
    backend = postgres_backend(postgres_url)
    try:
        engine = hub.engine_on(backend)
        rows = engine.compute(list(hub.catalog), Grain.MONTH, periods_between(Grain.MONTH, START, END), "type")
    finally:
        backend.close()
    _compare(reference, rows)


@pytest.mark.spark
def test_spark_matches_duckdb(hub, reference, spark):
    load_into_spark(hub.store, spark)
    engine = hub.engine_on(spark_backend(spark))
    rows = engine.compute(list(hub.catalog), Grain.MONTH, periods_between(Grain.MONTH, START, END), "type")
    _compare(reference, rows)
