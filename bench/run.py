"""Benchmark suite: import, prepare, scorecard and the raw DuckDB pass per size, the other benches, the targets.

    python bench/run.py                          # 1M, 10M and 50M events, then the other benches
    python bench/run.py --events 1000000         # one size
    python bench/run.py --report                 # only the target table and the plots, from recorded results
    python bench/run.py --postgres postgresql://user@127.0.0.1:5432/db   # also PostgreSQL at 10M

Per size (data generated once and cached under bench/data/<size>/): import from Parquet and from CSV,
the first prepare, the full scorecard, the raw DuckDB pass and a 10,000-event append; each phase runs in
its own process, so its wall time and peak memory (max RSS) are its own. Results are appended to
bench/results/results.jsonl. Then, when present, bench/collector.py, bench/dashboard.py (10M, with and
without a 1,000 events/s stream) and bench/lake.py (Spark over a lake, on the 10M store) run as they are
and keep their own results. Last: the plots (docs/bench/*.png) and every target of issue 10 beside its
latest figure (bench/targets.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCAL = ("import", "import_csv", "prepare", "scorecard", "raw", "append")
BACKENDS_AT = 10_000_000


def child(name: str, root: Path, events: int, partners: int, postgres: str | None) -> dict:
    """Run one phase in a child process and return its figures."""
    cmd = [sys.executable, __file__, "--phase", name, "--root", str(root), "--events", str(events),
           "--partners", str(partners)]
    out = subprocess.run([*cmd, "--postgres", postgres] if postgres else cmd, check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_size(events: int, partners: int, postgres: str | None) -> dict:
    """Every local phase at one size; the record appended to results.jsonl."""
    root = HERE / "data" / f"{events // 1_000_000}M"
    record = {"events_target": events, "partners": partners, "at": datetime.now(UTC).isoformat(),
              "machine": f"{platform.machine()} {platform.python_version()}", "cpus": os.cpu_count(),
              "load_average": os.getloadavg()[0]}
    names = list(LOCAL)
    if not (root / "data" / "events.csv").exists():
        names.insert(0, "generate")
    if postgres and events == BACKENDS_AT:
        names.append("postgres")
    for name in names:
        record[name] = child(name, root, events, partners, postgres)
        print(f"{events:>11,} events  {name:<10} {record[name]['seconds']:8.2f} s  "
              f"{record[name]['peak_mib']:7.0f} MiB  {record[name]}", flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    with (HERE / "results" / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    return record


def script(name: str, *args: str) -> None:
    """Run another bench script as it is, when it exists; it records its own results."""
    path = HERE / name
    if not path.exists():
        print(f"{name}: not available (skipped)", flush=True)
        return
    print(f"{name} {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, str(path), *args], check=False)
    if done.returncode:
        print(f"{name}: failed with exit code {done.returncode}", flush=True)


def main() -> None:
    """Run the suite (or one phase, in a child process) and print the targets."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, action="append", help="event count (repeatable)")
    parser.add_argument("--partners", type=int, default=3000)
    parser.add_argument("--postgres", default=os.environ.get("PARTNERKPI_BENCH_POSTGRES"),
                        help="a PostgreSQL URL to time at 10M (default $PARTNERKPI_BENCH_POSTGRES; none: skipped)")
    parser.add_argument("--only-local", action="store_true", help="skip the collector, dashboard and lake benches")
    parser.add_argument("--report", action="store_true", help="only print the targets and write the plots")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.phase:
        from phases import run

        print(json.dumps(run(args.phase, args.root, args.events[0], args.partners, args.postgres)))
        return
    sizes = args.events or [1_000_000, 10_000_000, 50_000_000]
    if not args.report:
        for events in sizes:
            one_size(events, args.partners, args.postgres)
        if BACKENDS_AT in sizes and not args.postgres:
            print("PostgreSQL at 10M: not available (pass --postgres URL)", flush=True)
        if not args.only_local:
            script("collector.py")
            for rate in ("0", "1000"):
                script("dashboard.py", "--events", str(BACKENDS_AT), "--rate", rate)
            store = HERE / "data" / f"{BACKENDS_AT // 1_000_000}M" / "hub.duckdb"
            if store.exists():
                script("lake.py", "--db", str(store))
            else:
                print("lake.py: no 10M store to read (run the 10M size first)", flush=True)
    from plots import write
    from targets import report

    for path in write():
        print(f"plot: {path}")
    print(report())


if __name__ == "__main__":
    main()
