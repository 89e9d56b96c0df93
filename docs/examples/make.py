"""Make the example reports shown in the README: the demo's internal edition and one reseller's edition of the
last complete quarter, as A4 PDFs and as PNGs of their first two pages.

    python docs/examples/make.py                    # seed 7, 300 partners, 24 months (like `make demo`)
    python docs/examples/make.py --partner P-0042   # another partner's edition

The demo is generated and imported once into the cache bench/report_bench.py uses (bench/data/report/<seed>/,
git-ignored). The PNGs come from poppler's `pdftoppm -png -r 60`. Files written beside this script:
internal-<quarter>.pdf, internal-<quarter>-1.png, internal-<quarter>-2.png, partner-<id>-<quarter>.pdf, ...
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from partnerkpi.hub import Hub

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent.parent / "bench" / "data" / "report"
PARTNERS, MONTHS = 300, 24
MIN_PEERS = 5
PAGES = (1, 2)


def demo_hub(seed: int) -> Hub:
    """The read-only Hub of the seed's demo, generated and imported into the bench cache on first use."""
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    db = CACHE / str(seed) / "hub.duckdb"
    if not db.exists():
        files = generate(db.parent / "files", partners=PARTNERS, months=MONTHS, seed=seed)
        with Hub.open(db) as hub:
            hub.import_files([files.partners, files.users, files.events])
    return Hub.open(db, read_only=True)


def example_partner(hub: Hub, period: str | None) -> str:
    """The first active reseller (by id) with an overdue task, an open policy and KPIs shown against at least
    five peers: a partner edition with every part filled."""
    from partnerkpi.access import DictMemo
    from partnerkpi.reports.build import build_report

    memo = DictMemo()
    for partner in hub.partners():
        if partner.get("type") != "reseller" or partner.get("offboarded_at") is not None:
            continue
        scope = hub.scoped(partner["partner_id"], memo=memo)
        if not any(t["overdue"] for t in scope.open_tasks()) or not scope.unacknowledged_policies():
            continue
        report = build_report(hub, period, f"partner:{partner['partner_id']}", memo=memo)
        if report.peers and min(p.peers_n for p in report.peers) >= MIN_PEERS:
            return partner["partner_id"]
    raise SystemExit("no reseller has an overdue task, an open policy and five peers; pass --partner")


def write_example(hub: Hub, period: str | None, audience: str, stem: str) -> list[Path]:
    """Render `audience`'s edition as `<stem>-<quarter>.pdf` and its first pages as PNGs; the files written."""
    from partnerkpi.reports.build import build_report
    from partnerkpi.reports.render import report_html, report_pdf

    report = build_report(hub, period, audience)
    pdf = HERE / f"{stem}-{report.period}.pdf"
    pdf.write_bytes(report_pdf(report_html(report, "A4")))
    written = [pdf]
    for page in PAGES:
        out = pdf.with_suffix("").with_name(f"{pdf.stem}-{page}")
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page), "-singlefile",
                        str(pdf), str(out)], check=True)
        written.append(out.with_suffix(".png"))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--period", default=None, help="a quarter, e.g. 2026-Q3 (default: the last complete)")
    parser.add_argument("--partner", default=None, help="the partner of the partner edition (default: chosen)")
    args = parser.parse_args()

    with demo_hub(args.seed) as hub:
        partner_id = args.partner or example_partner(hub, args.period)
        written = write_example(hub, args.period, "internal", "internal")
        written += write_example(hub, args.period, f"partner:{partner_id}", f"partner-{partner_id}")
    for path in written:
        print(f"{path.relative_to(HERE.parent.parent)}  {path.stat().st_size:>9,} bytes")


if __name__ == "__main__":
    main()
