"""Time the scorecard on Spark over a lake against the DuckDB file it was exported from.

    python bench/lake.py                         # the demo with 60 partners over 12 months
    python bench/lake.py --partners 300 --months 24 --master 'local[2]'
    python bench/lake.py --db bench/data/10M/hub.duckdb   # an existing store (e.g. the 10M bench data)

The demo (seed 7) is generated and imported once, cached under bench/data/lake/<partners>x<months>/, and its
lake exported beside it (events partitioned by month). Timed: the export, the first Spark open and scorecard
(JVM start included), a second scorecard in the same process (the session reused), and the same full
scorecard on the DuckDB file. Results are appended to bench/results/lake.jsonl.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def store_for(partners: int, months: int) -> Path:
    """The DuckDB file of the demo, generated and imported on first use."""
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    root = HERE / "data" / "lake" / f"{partners}x{months}"
    db = root / "hub.duckdb"
    if not db.exists():
        files = generate(root / "files", partners=partners, months=months, seed=7)
        with Hub.open(db) as hub:
            hub.import_files([files.partners, files.users, files.events])
    return db


def timed(figures: dict[str, float], name: str, work):
    """Run `work`, keep its wall time in seconds under `name`, and return its result."""
    start = time.perf_counter()
    result = work()
    figures[name] = round(time.perf_counter() - start, 3)
    print(f"{name:>28}: {figures[name]:8.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=60)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--db", type=Path, help="an existing DuckDB store instead of the demo")
    parser.add_argument("--master", default="local[2]", help="Spark master: local[N], or a sc:// URL")
    args = parser.parse_args()

    from partnerkpi.hub import Hub
    from partnerkpi.lake import export_lake

    db = args.db or store_for(args.partners, args.months)
    lake = db.parent / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    figures: dict[str, float] = {}
    with Hub.open(db, read_only=True) as hub:
        counts = timed(figures, "export (DuckDB -> Parquet)", lambda: export_lake(hub.store, lake, partition="month"))
        start, end = hub.default_range("month")
        timed(figures, "scorecard on DuckDB", lambda: hub.scorecard("month", start, end))
    url = f"{args.master}?lake={lake}" if args.master.startswith("sc://") else f"spark:{args.master}?lake={lake}"
    with Hub.open(url, read_only=True) as hub:
        timed(figures, "first scorecard on Spark", lambda: hub.scorecard("month", start, end))
    with Hub.open(url, read_only=True) as hub:
        timed(figures, "next scorecard on Spark", lambda: hub.scorecard("month", start, end))
    record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "db": str(db), "master": args.master,
              "events": counts["events"], "range": [str(start), str(end)], "seconds": figures}
    (HERE / "results").mkdir(exist_ok=True)
    with (HERE / "results" / "lake.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
