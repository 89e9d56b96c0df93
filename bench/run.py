"""Benchmark: import and full scorecard on generated demo data, against one raw DuckDB pass.

    python bench/run.py                      # 10M and 50M events
    python bench/run.py --events 10000000    # one size

Each phase runs in its own process, so its wall time and peak memory (max RSS) are its own. Data is
cached under bench/data/<size>/; results are appended to bench/results/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
PHASES = ("generate", "import", "prepare", "scorecard", "raw", "append")


def phase(name: str, root: Path, events: int, partners: int) -> dict:
    """Run one phase in this process and return its figures."""
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    data, db = root / "data", root / "hub.duckdb"
    started = time.perf_counter()
    info: dict = {}
    if name == "generate":
        files = generate(data, partners=partners, months=24, seed=7, events_target=events, progress=True)
        info["events"] = files.event_count
    elif name == "import":
        for stale in (db, db.with_suffix(".duckdb.wal")):
            stale.unlink(missing_ok=True)
        from partnerkpi.ingest import import_files

        with Hub.open(db) as hub:  # validation and load only; the rollups are the next phase
            summaries = import_files(
                hub.store, [data / "partners.parquet", data / "users.parquet", data / "events.parquet"],
                progress=True,
            )
        info["accepted"] = sum(s.accepted for s in summaries)
        info["events_accepted"] = summaries[-1].accepted
    elif name == "prepare":
        with Hub.open(db) as hub:
            hub.prepare(progress=True)
    elif name == "scorecard":
        from datetime import date

        with Hub.open(db, read_only=True) as hub:
            rows = hub.scorecard("month", date(2024, 11, 1), date(2026, 11, 1), by="type")
        info["rows"] = len(rows)
    elif name == "append":  # a collector-sized batch on top: one day of page views, then the refresh
        import json

        batch = root / "append.jsonl"
        with Hub.open(db) as hub:
            users = hub.store.con.execute(
                "SELECT user_id, partner_id FROM users WHERE deactivated_at IS NULL ORDER BY user_id LIMIT 500"
            ).fetchall()
            with batch.open("w") as fh:
                for i in range(10_000):
                    user, partner = users[i % len(users)]
                    fh.write(json.dumps({
                        "event_id": f"append-{started}-{i}", "ts": f"2026-10-31T{8 + i % 10:02d}:{i % 60:02d}:00Z",
                        "event": "Page Viewed", "user_id": user, "partner_id": partner,
                        "properties": {"path": "/resources"},
                    }) + "\n")
            from partnerkpi.ingest import import_files

            t = time.perf_counter()
            import_files(hub.store, [batch], kind="events")
            info["import_seconds"] = time.perf_counter() - t
            t = time.perf_counter()
            hub.prepare()
            info["refresh_seconds"] = time.perf_counter() - t
    elif name == "raw":
        import duckdb

        con = duckdb.connect(str(db), read_only=True)
        sql = """
            SELECT date_trunc('month', e.ts) AS m, p.type, count(DISTINCT e.partner_id) AS active,
                   count(*) AS events
            FROM events e JOIN partners p USING (partner_id)
            WHERE e.ts >= TIMESTAMP '2024-10-01' AND e.ts < TIMESTAMP '2026-11-01'
            GROUP BY ALL
        """
        info["groups"] = len(con.execute(sql).fetchall())
    info["seconds"] = time.perf_counter() - started
    info["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, action="append", help="event count (repeatable)")
    parser.add_argument("--partners", type=int, default=3000)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # child process
        print(json.dumps(phase(args.phase, args.root, args.events[0], args.partners)))
        return
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    for events in args.events or [10_000_000, 50_000_000]:
        root = HERE / "data" / f"{events // 1_000_000}M"
        record = {"events_target": events, "partners": args.partners, "at": datetime.now(UTC).isoformat(),
                  "machine": f"{platform.machine()} {platform.python_version()}"}
        for name in PHASES:
            if name == "generate" and (root / "data" / "events.parquet").exists():
                continue
            out = subprocess.run(
                [sys.executable, __file__, "--phase", name, "--root", str(root), "--events", str(events),
                 "--partners", str(args.partners)],
                check=True, stdout=subprocess.PIPE, text=True,
            ).stdout
            record[name] = json.loads(out.strip().splitlines()[-1])
            print(f"{events:>11,} events  {name:<9} {record[name]['seconds']:7.2f} s  "
                  f"{record[name]['peak_mib']:8.0f} MiB  {record[name]}", flush=True)
        if "import" in record and "accepted" in record["import"]:
            rate = record["import"]["accepted"] / record["import"]["seconds"]
            print(f"  import rate: {rate / 1e6:.2f}M rows/s (validated, from Parquet)")
        if "scorecard" in record and "raw" in record:
            print(f"  scorecard / raw DuckDB pass: {record['scorecard']['seconds'] / record['raw']['seconds']:.1f}x")
        with (results / "results.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
