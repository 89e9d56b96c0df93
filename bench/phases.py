"""The timed phases of `bench/run.py`, each run alone in a child process so its peak memory is its own.

A phase reads the cached data under <root>/data and works on <root>/hub.duckdb (the CSV import on
<root>/hub-csv.duckdb) and returns its figures as a dict; `seconds` and `peak_mib` are added by `run`.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

ENTITY_FILES = ("partners", "users")
RAW_SQL = """
    SELECT date_trunc('month', e.ts) AS m, p.type, count(DISTINCT e.partner_id) AS active, count(*) AS events
    FROM events e JOIN partners p USING (partner_id)
    WHERE e.ts >= TIMESTAMP '2024-10-01' AND e.ts < TIMESTAMP '2026-11-01'
    GROUP BY ALL
"""
SCORECARD_RANGE = (date(2024, 11, 1), date(2026, 11, 1))


def _fresh(db: Path) -> Path:
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    return db


def _import(db: Path, files: list[Path]) -> dict:
    from partnerkpi.hub import Hub
    from partnerkpi.ingest import import_files

    with Hub.open(_fresh(db)) as hub:  # validation and load only; the rollups are the prepare phase
        summaries = import_files(hub.store, files, progress=True)
    return {"accepted": sum(s.accepted for s in summaries), "events_accepted": summaries[-1].accepted}


def generate(root: Path, events: int, partners: int) -> dict:
    """The demo data (seed 7, 24 months) as Parquet, and a CSV copy of each file for the CSV import."""
    import duckdb

    from partnerkpi.demo import generate as demo

    data = root / "data"
    files = demo(data, partners=partners, months=24, seed=7, events_target=events, progress=True)
    con = duckdb.connect()
    for name in (*ENTITY_FILES, "events"):
        con.execute(f"COPY (SELECT * FROM read_parquet('{data / name}.parquet')) TO '{data / name}.csv' (HEADER)")
    return {"events": files.event_count}


def import_parquet(root: Path) -> dict:
    """Import partners, users and events from Parquet into a new store."""
    return _import(root / "hub.duckdb", [root / "data" / f"{n}.parquet" for n in (*ENTITY_FILES, "events")])


def import_csv(root: Path) -> dict:
    """The same import from the CSV copies, into a store of its own (deleted afterwards)."""
    db = root / "hub-csv.duckdb"
    figures = _import(db, [root / "data" / f"{n}.csv" for n in (*ENTITY_FILES, "events")])
    _fresh(db)
    return figures


def prepare(root: Path) -> dict:
    """The first prepare after the import: every rollup built in full."""
    from partnerkpi.hub import Hub

    with Hub.open(root / "hub.duckdb") as hub:
        hub.prepare(progress=True)
    return {}


def scorecard(root: Path) -> dict:
    """The full scorecard (every KPI, by month and partner type, 24 months) on the prepared store."""
    from partnerkpi.hub import Hub

    with Hub.open(root / "hub.duckdb", read_only=True) as hub:
        rows = hub.scorecard("month", *SCORECARD_RANGE, by="type")
    return {"rows": len(rows)}


def raw(root: Path) -> dict:
    """One hand-written DuckDB pass over the events (active partners and events per month and type)."""
    import duckdb

    con = duckdb.connect(str(root / "hub.duckdb"), read_only=True)
    return {"groups": len(con.execute(RAW_SQL).fetchall())}


def append(root: Path) -> dict:
    """A collector-sized batch on top (10,000 page views on one day), imported, then the incremental refresh."""
    from partnerkpi.hub import Hub
    from partnerkpi.ingest import import_files

    batch = root / "append.jsonl"
    with Hub.open(root / "hub.duckdb") as hub:
        users = hub.store.con.execute(
            "SELECT user_id, partner_id FROM users WHERE deactivated_at IS NULL ORDER BY user_id LIMIT 500"
        ).fetchall()
        stamp = time.time_ns()
        with batch.open("w") as fh:
            for i in range(10_000):
                user, partner = users[i % len(users)]
                fh.write(json.dumps({
                    "event_id": f"append-{stamp}-{i}", "ts": f"2026-10-31T{8 + i % 10:02d}:{i % 60:02d}:00Z",
                    "event": "Page Viewed", "user_id": user, "partner_id": partner,
                    "properties": {"path": "/resources"},
                }) + "\n")
        t = time.perf_counter()
        import_files(hub.store, [batch], kind="events")
        figures = {"import_seconds": time.perf_counter() - t}
        t = time.perf_counter()
        hub.prepare()
        figures["refresh_seconds"] = time.perf_counter() - t
    return figures


def postgres(root: Path, url: str) -> dict:
    """Today's path to PostgreSQL: copy the store into it (COPY), then the full scorecard there."""
    from partnerkpi.backends import load_into_postgres, postgres_backend
    from partnerkpi.engine.periods import Grain, periods_between
    from partnerkpi.hub import Hub

    with Hub.open(root / "hub.duckdb", read_only=True) as hub:
        t = time.perf_counter()
        counts = load_into_postgres(hub.store, url)
        load = time.perf_counter() - t
        t = time.perf_counter()
        backend = postgres_backend(url)
        try:
            rows = hub.engine_on(backend).compute(list(hub.catalog), Grain.MONTH,
                                                  periods_between(Grain.MONTH, *SCORECARD_RANGE), "type")
        finally:
            backend.close()
        seconds = time.perf_counter() - t
    return {"path": "copy of the DuckDB store (load_into_postgres) + Hub.engine_on", "load_seconds": load,
            "events": counts.get("events"), "scorecard_seconds": seconds, "rows": len(rows)}


PHASES: dict[str, Callable[..., dict]] = {
    "generate": generate, "import": import_parquet, "import_csv": import_csv, "prepare": prepare,
    "scorecard": scorecard, "raw": raw, "append": append, "postgres": postgres,
}


def run(name: str, root: Path, events: int, partners: int, postgres_url: str | None) -> dict:
    """Run phase `name` here and return its figures with wall `seconds` and this process's `peak_mib`."""
    started = time.perf_counter()
    if name == "generate":
        figures = generate(root, events, partners)
    elif name == "postgres":
        figures = postgres(root, postgres_url or "")
    else:
        figures = PHASES[name](root)
    figures["seconds"] = time.perf_counter() - started
    figures["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures
