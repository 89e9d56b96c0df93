"""Time PostgreSQL as the store: import the demo program by URL (checked in DuckDB, moved by COPY), then the full
scorecard computed on PostgreSQL, beside the same on a DuckDB file.

    python bench/pg_store.py --url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/pg_store.py --url postgresql://... --events 1000000 --partners 3000

A fresh database is created on the server of --url for each run (and dropped at the end unless --keep).
The demo files (seed 7, 24 months) are generated once, cached under bench/data/pg/<events>/. Results are
appended to bench/results/pg_store.jsonl. Figures on a shared machine are provisional.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


def timed(what: str, figures: dict[str, float], run: Callable[[], T]) -> T:
    """Run `run`, print and keep its wall time under `what`."""
    start = time.perf_counter()
    result = run()
    figures[what] = round(time.perf_counter() - start, 2)
    print(f"{what:>28}: {figures[what]:8.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL URL; a database is created on its server")
    parser.add_argument("--events", type=int, default=200_000, help="about how many events (default 200000)")
    parser.add_argument("--partners", type=int, default=300, help="partners in the demo (default 300)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    import psycopg

    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    files = generate(HERE / "data" / "pg" / str(args.events), partners=args.partners, months=24, seed=7,
                     events_target=args.events)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.url.rpartition('/')[0]}/{name}"
    figures: dict[str, float] = {}
    paths = [files.partners, files.users, files.events]
    try:
        with Hub.open(url) as hub:
            timed("postgres import", figures, lambda: hub.import_files(paths))
            grain, (start, end) = "month", hub.default_range("month")
            timed("postgres full scorecard", figures, lambda: hub.scorecard(grain, start, end))
            events = hub.store.counts()["events"]
        with tempfile.TemporaryDirectory() as tmp, Hub.open(Path(tmp) / "hub.duckdb") as hub:
            timed("duckdb import + prepare", figures, lambda: hub.import_files(paths))
            timed("duckdb full scorecard", figures, lambda: hub.scorecard(grain, start, end))
    finally:
        if not args.keep:
            with psycopg.connect(args.url, autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "events": events, **figures}
    results = HERE / "results" / "pg_store.jsonl"
    results.parent.mkdir(exist_ok=True)
    with results.open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
