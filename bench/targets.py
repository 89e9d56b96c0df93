"""Issue 10's targets beside the latest measured figures: read from bench/results/*.jsonl, printed as a table.

    python bench/targets.py        # the table from the results already there (bench/run.py prints it too)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def latest(name: str, keep: Callable[[dict], bool] = lambda r: True) -> dict | None:
    """The last record of bench/results/<name>.jsonl that `keep` accepts."""
    path = RESULTS / f"{name}.jsonl"
    if not path.exists():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in records if keep(r)]
    return kept[-1] if kept else None


def runs_by_size() -> dict[int, dict]:
    """The latest bench/run.py record per event target, smallest first."""
    out: dict[int, dict] = {}
    path = RESULTS / "results.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        record = json.loads(line)
        if "import" in record:
            out[record["events_target"]] = record
    return dict(sorted(out.items()))


def when(record: dict) -> str:
    """When a record was taken, and the machine's load then (figures under load are provisional)."""
    load = record.get("load_average")
    return record["at"][:16] + (f", load {load:.1f}" if load is not None else "")


@dataclass
class Row:
    """One target: what it asks, the figure measured, and whether it is met (None: not measured)."""

    target: str
    measured: str
    met: bool | None
    source: str = ""

    def line(self) -> str:
        """The row as a fixed-width line."""
        verdict = {True: "met", False: "MISSED", None: "not measured"}[self.met]
        return f"  {self.target:<58} {self.measured:<34} {verdict:<13} {self.source}"


def import_rows(runs: dict[int, dict]) -> list[Row]:
    """Import rate from Parquet ≥ 1M events/s, and the first prepare no slower than the import, per size."""
    rows = []
    for size, r in runs.items():
        label = f"{size // 1_000_000}M"
        rate = r["import"]["events_accepted"] / r["import"]["seconds"]
        rows.append(Row(f"Parquet import >= 1.00M events/s ({label})", f"{rate / 1e6:.2f}M events/s",
                        rate >= 1e6, when(r)))
        if "prepare" in r:
            p, i = r["prepare"]["seconds"], r["import"]["seconds"]
            rows.append(Row(f"first prepare <= import time ({label})", f"{p:.1f} s vs import {i:.1f} s", p <= i,
                            when(r)))
    return rows


def collector_rows() -> list[Row]:
    """The collector's throughput and latency targets (bench/collector.py)."""
    r = latest("collector")
    if r is None:
        return [Row("collector acknowledged and stored >= 10,000 events/s", "no bench/collector.py run yet", None),
                Row("collector p99 < 100 ms at half that rate", "no bench/collector.py run yet", None)]
    full, half, at = r["full"], r["half"], when(r)
    stored = full.get("stored_per_s", 0)
    return [
        Row("collector acknowledged >= 10,000 events/s", f"{full['acked_per_s']:,} events/s",
            full["acked_per_s"] >= 10_000, at),
        Row("collector stored >= 10,000 events/s", f"{stored:,} events/s", stored >= 10_000, at),
        Row("collector p99 < 100 ms at half the measured rate",
            f"{half['p99_ms']} ms at {half.get('offered_per_s', '?'):,}/s", half["p99_ms"] < 100, at),
    ] + ([Row("collector p99 < 100 ms at half the 10,000/s target",
              f"{r['target_half']['p99_ms']} ms at {r['target_half']['offered_per_s']:,}/s",
              r["target_half"]["p99_ms"] < 100, at)] if r.get("target_half") else [])


def dashboard_rows(events: int = 10_000_000) -> list[Row]:
    """Pages p95 < 200 ms on the 10M data under a 1,000 events/s stream, and the server's memory ≤ 2 GiB."""
    r = latest("dashboard", lambda r: r.get("events_target") == events and r.get("stream_rate", 0) >= 1000)
    if r is None:
        return [Row(f"pages p95 < 200 ms, {events // 1_000_000}M events, 1,000 events/s stream",
                    "no such bench/dashboard.py run yet", None)]
    at = when(r)
    rows = [Row(f"{name} p95 < 200 ms (stream {r['stream_rate']}/s)", f"p95 {v['p95_ms']} ms (first {v['first_ms']})",
                v["p95_ms"] < 200, at) for name, v in r["views"].items()]
    rows.append(Row("server peak memory <= 2 GiB", f"{r['peak_rss_mib']:,} MiB", r["peak_rss_mib"] <= 2048, at))
    return rows


def rows() -> list[Row]:
    """Every target of issue 10 with its latest figure."""
    return [*collector_rows(), *dashboard_rows(), *import_rows(runs_by_size()),
            Row("incremental refresh equals a full rebuild", "property test", None,
                "tests/test_refresh_properties.py")]


def side_by_side(runs: dict[int, dict]) -> list[str]:
    """Figures without a target, per size: scorecard against the raw DuckDB pass, CSV, append, backends."""
    lines = []
    for size, r in runs.items():
        parts = []
        if "scorecard" in r and "raw" in r:
            s, w = r["scorecard"]["seconds"], r["raw"]["seconds"]
            parts.append(f"scorecard {s:.1f} s vs raw DuckDB pass {w:.2f} s ({s / w:.1f}x)")
        if "import_csv" in r:
            ic = r["import_csv"]
            parts.append(f"CSV import {ic['events_accepted'] / ic['seconds'] / 1e6:.2f}M events/s")
        if "append" in r:
            parts.append(f"10k append: import {r['append']['import_seconds']:.2f} s, "
                         f"refresh {r['append']['refresh_seconds']:.2f} s")
        if "postgres" in r:
            pg = r["postgres"]
            parts.append(f"PostgreSQL: load {pg['load_seconds']:.1f} s, scorecard {pg['scorecard_seconds']:.1f} s")
        lines.append(f"  {size // 1_000_000:>3}M: " + "; ".join(parts))
    for rate, label in ((0, "without a stream"), (1000, "with a 1,000 events/s stream")):
        d = latest("dashboard", lambda r, rate=rate: r.get("stream_rate", 0) == rate)
        if d is not None:
            views = ", ".join(f"{k} {v['p50_ms']:.0f}/{v['p95_ms']:.0f}" for k, v in d["views"].items())
            lines.append(f"  pages {label} ({d['events_target'] // 1_000_000}M, p50/p95 ms): {views}")
    lake = latest("lake")
    if lake is not None:
        secs = ", ".join(f"{k} {v:.1f} s" for k, v in lake["seconds"].items())
        lines.append(f"  Spark over a lake ({lake['events']:,} events, {lake['master']}): {secs}")
    return lines


def report() -> str:
    """The whole table as text."""
    head = f"  {'target':<58} {'measured':<34} {'verdict':<13} when / where"
    out = ["Issue 10 targets (latest figures; see bench/README.md for how each is measured)", head,
           *(r.line() for r in rows()), "", "Side by side (no target):", *side_by_side(runs_by_size())]
    return "\n".join(out)


def main() -> None:
    """Print the target table from the results already recorded."""
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print(report())


if __name__ == "__main__":
    main()
