"""Fuzz the import parsers with atheris: every input must import or be refused with a PartnerKPIError.

Each parser (CSV, JSONL and Parquet event files, a Segment JSON Lines file, a mapping file) is fuzzed in a
process of its own, bounded by --runs and --seconds, starting from a few valid inputs. A crash is any other
exception; the first one stops that parser's run and its input is kept under reliability/results/crashes/.
One JSON line of figures per run is appended to reliability/results/fuzz.jsonl:

    python reliability/fuzz.py --seconds 60              # every parser, about 60 s each
    python reliability/fuzz.py --parser csv --runs 500   # one parser, 500 inputs
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PARSERS = ("csv", "jsonl", "parquet", "segment", "mapping")
SEEDS: dict[str, list[bytes]] = {
    "csv": [b"event_id,ts,event,user_id,properties\ne1,2026-07-01T10:00:00Z,Logged In,u1,\"{\"\"a\"\": 1}\"\n"],
    "jsonl": [b'{"event_id": "e1", "ts": "2026-07-01T10:00:00Z", "event": "Logged In", "user_id": "u1"}\n'],
    "segment": [b'{"type": "track", "messageId": "m1", "userId": "u1", "event": "Logged In", '
                b'"timestamp": "2026-07-01T10:00:00Z", "context": {"groupId": "p1"}}\n'
                b'{"type": "identify", "userId": "u1", "traits": {"partner_id": "p1"}}\n'],
    "mapping": [b"columns: {AccountId: partner_id}\nevents: {login: Logged In}\nproperties: {size: amount}\n"],
}


def parquet_seed() -> bytes:
    """A small valid events Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"event_id": ["e1"], "ts": ["2026-07-01T10:00:00Z"], "event": ["Logged In"],
                             "user_id": ["u1"]}), sink)
    return sink.getvalue()


def child(parser: str, runs: int, seconds: int, stats_path: Path) -> None:
    """Run atheris on one parser in this process, writing the figures to `stats_path` as it goes."""
    import atheris
    import duckdb  # noqa: F401  the dependencies load uninstrumented: only partnerkpi's code is traced
    import pyarrow  # noqa: F401
    import rich  # noqa: F401
    import yaml  # noqa: F401

    with atheris.instrument_imports(include=["partnerkpi"]):
        from partnerkpi.catalog.plan import load_plan
        from partnerkpi.errors import PartnerKPIError
        from partnerkpi.ingest import import_files
        from partnerkpi.ingest.mapping import load_mapping
        from partnerkpi.store import Store

    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{parser}-"))
    store = Store.open(":memory:", load_plan())
    suffix = {"csv": "events.csv", "jsonl": "events.jsonl", "parquet": "events.parquet",
              "segment": "messages.segment.jsonl", "mapping": "mapping.yaml"}[parser]
    path = work / suffix
    figures = {"parser": parser, "executions": 0, "refused": 0, "crashes": 0, "started": time.time()}

    def save() -> None:
        stats_path.write_text(json.dumps(figures))

    def one(data: bytes) -> None:
        path.write_bytes(data)
        figures["executions"] += 1
        try:
            if parser == "mapping":
                load_mapping(path)
            else:
                import_files(store, [path])
        except PartnerKPIError as exc:
            assert exc.message, "a refusal without a message"
            figures["refused"] += 1
        except BaseException:
            figures["crashes"] += 1
            crashes = RESULTS / "crashes"
            crashes.mkdir(parents=True, exist_ok=True)
            (crashes / f"{parser}-{int(time.time())}.bin").write_bytes(data)
            save()
            raise
        if figures["executions"] % 50 == 0:
            save()

    corpus = work / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS.get(parser) or [parquet_seed()]):
        (corpus / f"seed-{i}").write_bytes(seed)
    save()
    crashes = RESULTS / "crashes"  # libFuzzer writes a crashing input to its working folder otherwise
    crashes.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], str(corpus), f"-atheris_runs={runs}", f"-max_total_time={seconds}",
                   "-max_len=4096", "-rss_limit_mb=4096", f"-artifact_prefix={crashes}/{parser}-"], one)
    atheris.Fuzz()


def run_parser(parser: str, runs: int, seconds: int) -> dict:
    """Fuzz one parser in a child process and return its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", parser, "--runs", str(runs), "--seconds",
                               str(seconds), "--stats", str(stats)], capture_output=True, text=True,
                              timeout=seconds + 600)
        elapsed = time.perf_counter() - t0
        figures = json.loads(stats.read_text()) if stats.exists() else {"parser": parser, "executions": 0}
    figures.pop("started", None)
    figures.update(seconds=round(elapsed, 1), exec_per_s=round(figures["executions"] / elapsed, 1),
                   exit_code=proc.returncode)
    if proc.returncode != 0 and not figures.get("crashes"):
        figures["crashes"] = 1  # the child died outside a fuzzed call: count it and keep its output
        figures["error"] = proc.stderr[-2000:]
    return figures


def main() -> None:
    """Parse the arguments and fuzz the chosen parsers one after another."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parser", choices=PARSERS, action="append", help="a parser to fuzz (repeatable; default all)")
    ap.add_argument("--runs", type=int, default=1_000_000, help="at most this many inputs per parser")
    ap.add_argument("--seconds", type=int, default=60, help="at most this long per parser (default 60)")
    ap.add_argument("--child", choices=PARSERS, help=argparse.SUPPRESS)
    ap.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.runs, args.seconds, args.stats)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    for parser in args.parser or PARSERS:
        figures = run_parser(parser, args.runs, args.seconds)
        figures.update(command=" ".join(["python", "reliability/fuzz.py", *sys.argv[1:]]),
                       at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), pid=os.getpid())
        with open(RESULTS / "fuzz.jsonl", "a") as fh:
            fh.write(json.dumps(figures) + "\n")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
