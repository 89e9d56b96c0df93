"""Schemathesis' CLI (`st run`) over the whole OpenAPI document of a real `partnerkpi serve`, at a large count.

The tiny program of tests/web_fixtures.py is served on a loopback port; `st run` authenticates with an admin's
API token (the JSON API) and a write key (the collector), runs every check in every phase (examples, coverage,
fuzzing, stateful), each once or, with --max-time, fuzzing and stateful again until that time is spent. One
JSON line of figures (cases, failures, errors, seconds) is appended to reliability/results/schemathesis_run.jsonl;
the exit status is 1 when anything failed.

    python reliability/schemathesis_run.py --examples 200 [--max-time 900]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

from tests.conformance import st_run  # noqa: E402

RESULTS = ROOT / "reliability" / "results" / "schemathesis_run.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="max examples per operation and phase")
    parser.add_argument("--max-time", type=int, default=None,
                        help="keep fuzzing (and stateful testing) until this many seconds are spent")
    parser.add_argument("--seed", type=int, default=11, help="hypothesis seed (the same seed replays a run)")
    parser.add_argument("--workers", type=int, default=1, help="concurrent schemathesis workers")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    figures, output = st_run(args.examples, seed=args.seed, workers=args.workers, max_time=args.max_time)
    figures["command"] = " ".join(["python reliability/schemathesis_run.py", *sys.argv[1:]])
    RESULTS.with_suffix(".last.txt").write_text(output)
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(figures) + "\n")
    print(json.dumps(figures, indent=2))
    return 0 if figures["failures"] == 0 and figures["errors"] == 0 and figures["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
