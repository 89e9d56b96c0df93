"""Time the quarterly report on the 300-partner demo: building the model, the HTML and the PDF of the internal
edition, and one partner's edition.

    python bench/report_bench.py                 # seed 7, the last quarter the data covers
    python bench/report_bench.py --period 2026-Q3 --seed 7

The demo (300 partners, 24 months) is generated and imported once, cached under bench/data/report/<seed>/
(git-ignored). Figures are printed and appended to bench/results/report_bench.jsonl; nothing large is written
in the repository.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTNERS, MONTHS = 300, 24


def hub_for(seed: int):
    """The Hub (read-only) of the seed's demo, generated and imported on first use."""
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    root = HERE / "data" / "report" / str(seed)
    db = root / "hub.duckdb"
    if not db.exists():
        files = generate(root / "files", partners=PARTNERS, months=MONTHS, seed=seed)
        with Hub.open(db) as hub:
            hub.import_files([files.partners, files.users, files.events])
    return Hub.open(db, read_only=True)


def timed(what: str, results: dict[str, float], make):
    start = time.perf_counter()
    value = make()
    results[what] = round(time.perf_counter() - start, 2)
    print(f"{what:<28} {results[what]:>7.2f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--period", default=None, help="a quarter, e.g. 2026-Q3 (default: the last covered)")
    args = parser.parse_args()

    from partnerkpi.reports.build import build_report
    from partnerkpi.reports.render import report_html, report_pdf

    results: dict[str, float] = {}
    hub = timed("open (generate on first run)", results, lambda: hub_for(args.seed))
    with hub:
        internal = timed("internal: model", results, lambda: build_report(hub, args.period, "internal"))
        html = timed("internal: html", results, lambda: report_html(internal))
        pdf = timed("internal: pdf", results, lambda: report_pdf(html))
        partner_id = hub.partners()[0]["partner_id"]
        partner = timed("partner: model", results, lambda: build_report(hub, args.period, f"partner:{partner_id}"))
        partner_pdf = timed("partner: html + pdf", results, lambda: report_pdf(report_html(partner)))
    print(f"internal {internal.period}: {len(pdf):,} bytes; partner {partner_id}: {len(partner_pdf):,} bytes")
    record = {"at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "seed": args.seed, "period": internal.period,
              "partners": PARTNERS, "months": MONTHS, "seconds": results}
    out = HERE / "results" / "report_bench.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
