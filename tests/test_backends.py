"""The canonical tables and the ibis operations the engine relies on agree on DuckDB, PostgreSQL and Spark."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import ibis.expr.datatypes as dt
import pandas as pd
import pytest

from partnerkpi.backends import (
    CANONICAL_TABLES,
    Backend,
    duckdb_backend,
    load_into_postgres,
    load_into_spark,
    postgres_backend,
    spark_backend,
)
from partnerkpi.catalog.plan import load_plan
from partnerkpi.store import Store

ENGINES = [
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow]),
    pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow]),
]
ORDER = {
    "partners": ["partner_id"],
    "users": ["user_id"],
    "events": ["seq"],
    "rejected_rows": ["import_id", "row_number"],
    "imports": ["import_id"],
}
BOUNDARY = datetime(2026, 7, 1)

PARTNERS = """
INSERT INTO partners (partner_id, name, type, tier, region, onboarded_at, offboarded_at) VALUES
  ('p1', 'Zoë "Z" & Co, Ltd', 'reseller', 'gold', '', '2026-06-30 23:59:59', NULL),
  ('p2', 'Beta', 'referral', NULL, 'EMEA', '2026-07-01 00:00:00', '2026-09-30 12:00:00')
"""
USERS = """
INSERT INTO users (user_id, partner_id, email, role, created_at, deactivated_at) VALUES
  ('u1', 'p1', 'a@p1.example', 'admin', '2026-07-01 00:00:00', NULL),
  ('u2', 'p1', NULL, 'member', '2026-06-15 08:00:00', NULL),
  ('u3', 'p2', 'c@p2.example', 'member', '2026-05-01 00:00:00', '2026-08-01 00:00:00')
"""
EVENTS = """
INSERT INTO events (seq, event_id, ts, event, partner_id, user_id, object_id, properties, import_id,
                    p_kind, p_due_at, p_manual, p_required, p_amount, p_category) VALUES
  (1, 'e1', '2026-07-01 00:00:00', 'Task Assigned', 'p1', 'u1', 't1', '{"kind": "cert"}', 1,
   'cert', '2026-07-01 00:00:01.5', NULL, NULL, NULL, NULL),
  (2, 'e2', '2026-06-30 23:59:59.999', 'Task Assigned', 'p2', 'u3', 't2', '{}', 1,
   NULL, '2026-07-01 00:00:00.001', NULL, NULL, NULL, NULL),
  (3, 'e3', '2026-07-05 23:59:59', 'Task Assigned', 'p1', 'u2', 't3', '{}', 1,
   NULL, '2026-07-06 00:00:00', NULL, NULL, NULL, NULL),
  (4, 'e4', '2026-07-06 00:00:00', 'Reminder Sent', 'p1', 'u1', 't1', '{"manual": true}', 1,
   NULL, NULL, true, NULL, NULL, NULL),
  (5, 'e5', '2026-03-29 23:59:59', 'Reminder Sent', 'p2', 'u3', 't2', '{"manual": false}', 1,
   NULL, NULL, false, NULL, NULL, NULL),
  (6, 'e6', '2026-12-31 23:59:59.999999', 'Reminder Sent', 'p1', NULL, 't3', '{}', 1,
   NULL, NULL, NULL, NULL, NULL, NULL),
  (7, 'e7', '2026-01-01 00:00:00', 'Policy Published', NULL, NULL, 'pol1', '{"required": true}', 1,
   NULL, NULL, NULL, true, NULL, NULL),
  (8, 'e8', '2026-07-01 00:00:00', 'Policy Published', NULL, NULL, 'pol2', '{"required": false}', 1,
   NULL, NULL, NULL, false, NULL, NULL),
  (9, 'e9', '2026-07-02 12:00:00', 'Deal Closed', 'p2', 'u3', 'd1', '{"amount": 1234.5}', 1,
   NULL, NULL, NULL, NULL, 1234.5, NULL),
  (10, 'e10', '2026-07-03 08:30:00', 'Deal Registered', 'p1', 'u1', 'd2', '{"amount": 0.1}', 1,
   NULL, NULL, NULL, NULL, 0.1, NULL),
  (11, 'e11', '2026-07-04 00:00:00', 'Cost Recorded', 'p1', NULL, NULL, '{"note": "a\\nb"}', 1,
   NULL, NULL, NULL, NULL, -2.5e-9, 'travel, "intl"' || chr(10) || 'Zoë \\N'),
  (12, 'e12', '2026-06-30 12:00:00', 'Task Assigned', 'p2', 'u3', 't4', '{}', 1,
   NULL, '2026-07-01 11:00:00', NULL, NULL, NULL, NULL),
  (13, 'e13', '2026-07-01 00:00:00.0009', 'Task Assigned', 'p2', 'u3', 't4', '{}', 1,
   NULL, '2026-07-01 00:00:00.0011', NULL, NULL, NULL, NULL)
"""
IMPORTS = """
INSERT INTO imports VALUES
  (1, 'events.csv', 'events', 'abc', '2026-07-01 00:00:00', '2026-07-01 00:00:02.25', 14, 13, 0, 1, 'note')
"""
REJECTED = """
INSERT INTO rejected_rows VALUES
  (1, 'events.csv', 'events', 7, 'ts', 'not an ISO-8601 time; write e.g. 2026-07-01T00:00:00Z',
   '{"ts": "yesterday", "raw": "a\\\\b"}', '2026-07-01 00:00:02')
"""
# Instants for period truncation: a Sunday 23:59:59 and the Monday after, month/quarter/year edges.
TRUNCATE_UNITS = ("D", "W", "M", "Q", "Y")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(tmp_path_factory.mktemp("backends") / "x.duckdb", load_plan())
    for sql in (PARTNERS, USERS, EVENTS, IMPORTS, REJECTED):
        store.con.execute(sql)
    yield store
    store.close()


@pytest.fixture(scope="module")
def duck(store: Store) -> Backend:
    return duckdb_backend(store)


@pytest.fixture(scope="module")
def pg(store: Store, postgres_url: str) -> Iterator[Backend]:
    counts = load_into_postgres(store, postgres_url)
    assert counts == store.counts()
    backend = postgres_backend(postgres_url)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def spk(store: Store, spark: Any) -> Backend:
    counts = load_into_spark(store, spark)
    assert counts == store.counts()
    return spark_backend(spark)


@pytest.fixture(params=ENGINES)
def other(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue({"postgres": "pg", "spark": "spk"}[request.param])


def _cell(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return pd.Timestamp(value).to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    """DataFrame cells as plain Python values, so engines' differing pandas dtypes compare equal."""
    return [tuple(_cell(v) for v in row) for row in df.astype(object).itertuples(index=False)]


def fetch(backend: Backend, table: str) -> pd.DataFrame:
    t = backend.table(table)
    return backend.execute(t.order_by(ORDER[table]))


def test_duckdb_tables_hold_the_inserted_values(duck: Backend) -> None:
    events = fetch(duck, "events")
    assert len(events) == 13
    assert events.loc[0, "ts"] == pd.Timestamp(BOUNDARY)
    assert events.loc[1, "ts"] == pd.Timestamp("2026-06-30 23:59:59.999")
    partners = fetch(duck, "partners")
    assert partners["offboarded_at"].isna().tolist() == [True, False]
    assert rows(partners)[0][4] == ""  # empty region stays empty, not null
    assert rows(partners)[1][3] is None


@pytest.mark.parametrize("table", CANONICAL_TABLES)
def test_schema_matches_duckdb(duck: Backend, other: Backend, table: str) -> None:
    want, got = duck.table(table).schema(), other.table(table).schema()
    assert list(got.names) == list(want.names)
    for name in want.names:
        w, g = want[name], got[name]
        if other.name == "spark" and w.is_timestamp():
            # Spark timestamps are always microseconds; ibis reports them without a scale.
            assert g == dt.Timestamp(), name
        else:
            assert g == w, name


@pytest.mark.parametrize("table", CANONICAL_TABLES)
def test_values_match_duckdb(duck: Backend, other: Backend, table: str) -> None:
    count = other.execute(other.table(table).count()).iloc[0, 0]
    assert count == duck.execute(duck.table(table).count()).iloc[0, 0]
    assert rows(fetch(other, table)) == rows(fetch(duck, table))


def test_boundary_nulls_and_booleans(other: Backend) -> None:
    events = rows(fetch(other, "events"))
    assert events[0][2] == BOUNDARY
    assert events[0][4] == "p1" and events[6][4] is None
    cols = list(other.table("events").schema().names)
    required, manual, amount = cols.index("p_required"), cols.index("p_manual"), cols.index("p_amount")
    assert [e[required] for e in events[6:8]] == [True, False]
    assert [e[manual] for e in events[3:6]] == [True, False, None]
    assert [e[amount] for e in events[8:11]] == [1234.5, 0.1, -2.5e-9]


def ratio(backend: Backend) -> float:
    t = backend.table("events")
    agg = t.aggregate(
        reminders=t.count(where=t.event == "Reminder Sent"),
        policies=t.count(where=t.event == "Policy Published"),
    )
    return backend.execute(agg.mutate(r=agg.reminders.cast("float64") / agg.policies).r).iloc[0, 0]


def events_per_object(backend: Backend) -> dict[str, float | None]:
    t = backend.table("events")
    g = t.group_by("event").aggregate(n=t.count(), objects=t.object_id.nunique())
    # Without the cast PostgreSQL runs `n / objects` as integer division (ibis emits no cast in a mutate);
    # without nullif a zero divisor gives inf on DuckDB and an error on PostgreSQL and Spark (ANSI mode).
    g = g.mutate(r=g.n.cast("float64") / g.objects.nullif(0))
    return {event: _cell(r) for event, r in backend.execute(g.select("event", "r")).itertuples(index=False)}


def test_ratio_of_counts_is_not_integer_division(duck: Backend, other: Backend) -> None:
    assert ratio(duck) == ratio(other) == 1.5
    want = events_per_object(duck)
    assert want["Task Assigned"] == 1.25
    assert want["Cost Recorded"] is None  # no objects: 1 / 0 is unknown, not infinite
    assert events_per_object(other) == want


def deltas(backend: Backend, unit: str) -> list[float]:
    t = backend.table("events")
    t = t.filter(t.p_due_at.notnull()).order_by("seq")
    return backend.execute(t.select(d=t.p_due_at.delta(t.ts, unit=unit)))["d"].tolist()


def test_delta_in_milliseconds_on_whole_milliseconds(duck: Backend, other: Backend) -> None:
    want = [1500, 2, 1000, 23 * 3600 * 1000]
    assert deltas(duck, "millisecond")[:4] == want
    assert deltas(other, "millisecond")[:4] == want


def test_delta_in_microseconds_is_exact_everywhere(duck: Backend, other: Backend) -> None:
    # Coarser units disagree (DuckDB counts boundaries crossed, PostgreSQL rounds, Spark truncates):
    # the engine takes microseconds and divides.
    want = [1_500_000, 2_000, 1_000_000, 23 * 3600 * 1_000_000, 200]
    assert deltas(duck, "microsecond") == want
    assert deltas(other, "microsecond") == want


def truncations(backend: Backend) -> list[tuple[Any, ...]]:
    t = backend.table("events")
    expr = t.select("seq", "ts", **{u: t.ts.truncate(u) for u in TRUNCATE_UNITS}).order_by("seq")
    return rows(backend.execute(expr))


def test_truncate_matches_duckdb(duck: Backend, other: Backend) -> None:
    want = truncations(duck)
    sunday, monday = want[2], want[3]
    assert sunday[1] == datetime(2026, 7, 5, 23, 59, 59) and sunday[3] == datetime(2026, 6, 29)
    assert monday[1] == datetime(2026, 7, 6) and monday[3] == datetime(2026, 7, 6)
    assert want[5][4:] == (datetime(2026, 12, 1), datetime(2026, 10, 1), datetime(2026, 1, 1))
    assert want[6][3] == datetime(2025, 12, 29)  # the week of 2026-01-01 starts in 2025
    assert truncations(other) == want
