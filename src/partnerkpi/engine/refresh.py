"""Keeping the materialized rollups of the DuckDB store up to date (see `derived.py`).

After an append only what the new events touch is recomputed: the days of day-keyed rollups, the
objects of per-object ones, and for sessions the tail of each touched user's sessions from the last
one that the new events can reach. A changed plan, a first run or `full=True` rebuilds a rollup.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import ibis
import ibis.expr.types as ir

from partnerkpi.backends import duckdb_backend
from partnerkpi.engine.derived import (
    DERIVED,
    REFRESH_KEYS,
    SESSION_GAP_MINUTES,
    affected_events,
    appended_since,
    data_fingerprint,
)
from partnerkpi.store import Store


def refresh(store: Store, *, full: bool = False, on_table: Callable[[str], None] | None = None) -> None:
    """Bring every derived table of `store` up to date, one transaction per table."""
    backend = duckdb_backend(store)
    events = backend.table("events")
    fingerprint = data_fingerprint(events, backend.execute, store.plan)
    con = store.con
    store.derived.create()
    known = store.derived.fingerprints()
    tables = store.tables()

    def count_after(seq: int) -> int:
        return con.execute("SELECT count(*) FROM events WHERE seq > ?", [seq]).fetchall()[0][0]

    for name, build in DERIVED.items():
        if on_table is not None:
            on_table(name)
        if known.get(name) == fingerprint and name in tables:
            continue
        after = None
        if not full and name in known and name in tables:
            after = appended_since(known[name], fingerprint, count_after)
        con.execute("BEGIN")
        try:
            if after is None:
                store.derived.rebuild(name, _sql(build(events, store.plan)))
            elif name == "derived_sessions":
                _refresh_sessions(store, events, after)
            else:
                _refresh_keys(store, events, name, after)
            store.derived.mark(name, fingerprint)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _sql(expr: ir.Expr) -> str:
    return ibis.to_sql(expr, dialect="duckdb")


def _scoped(store: Store, events: ir.Table, scope: ir.Table) -> ir.Table:
    """Materialize `scope` (a subset of events) so the rollup runs over it alone; the same schema."""
    store.con.execute(f"CREATE OR REPLACE TEMP TABLE _refresh_scope AS {_sql(scope)}")
    return ibis.table(events.schema(), name="_refresh_scope")


def _refresh_keys(store: Store, events: ir.Table, name: str, after: int) -> None:
    """Recompute the rows of the keys (days, objects) that events after `after` carry."""
    con = store.con
    lo, hi = con.execute(
        "SELECT date_trunc('day', min(ts)), date_trunc('day', max(ts)) FROM events WHERE seq > ?", [after]
    ).fetchall()[0]
    # a day past 9999-12-30 has no next day to bound the scope with (a row stored before imports had bounds)
    days: tuple[datetime, datetime] | None = (lo, hi) if lo is not None and hi < datetime(9999, 12, 30) else None
    keys, scope = affected_events(events, name, after, days)
    column = REFRESH_KEYS[name][1]
    scoped = _scoped(store, events, scope)
    con.execute(f'DELETE FROM "{name}" WHERE "{column}" IN (SELECT _key FROM ({_sql(keys)}))')
    con.execute(f'INSERT INTO "{name}" BY NAME {_sql(DERIVED[name](scoped, store.plan))}')
    con.execute("DROP TABLE _refresh_scope")


def _refresh_sessions(store: Store, events: ir.Table, after: int) -> None:
    """Recompute each touched user's sessions from the first one the new events can reach.

    For a user whose first new event is at t, a session that ended before t - gap stays apart from every
    new event; the sessions ending at or after it are replaced by sessions recomputed from the earliest
    start among them (or t - gap)."""
    con = store.con
    gap = f"INTERVAL {int(SESSION_GAP_MINUTES * 60)} SECOND"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _reach AS SELECT user_id, min(ts) - " + gap + " AS lo FROM events "
        "WHERE seq > ? AND user_id IS NOT NULL GROUP BY user_id",
        [after],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _reach_from AS SELECT r.user_id, least(r.lo, coalesce(min(s.start), r.lo)) "
        'AS since FROM _reach r LEFT JOIN derived_sessions s ON s.user_id = r.user_id AND s."end" >= r.lo '
        "GROUP BY r.user_id, r.lo"
    )
    con.execute(
        'DELETE FROM derived_sessions USING _reach r WHERE derived_sessions.user_id = r.user_id '
        'AND derived_sessions."end" >= r.lo'
    )
    reach = ibis.table({"user_id": "string", "since": "timestamp"}, name="_reach_from")
    scope = events.join(reach, (events.user_id == reach.user_id) & (events.ts >= reach.since)).select(
        *events.columns
    )
    scoped = _scoped(store, events, scope)
    con.execute(f'INSERT INTO derived_sessions BY NAME {_sql(DERIVED["derived_sessions"](scoped, store.plan))}')
    con.execute("DROP TABLE _refresh_scope")
    con.execute("DROP TABLE _reach")
    con.execute("DROP TABLE _reach_from")
