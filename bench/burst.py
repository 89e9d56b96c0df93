"""Time one burst of the demo: the partner edition of every partner, mailed to its users on a local SMTP server.

    python bench/burst.py                        # 300 partners, the product's report renderer
    python bench/burst.py --partners 40 --renderer minimal
    python bench/burst.py --segment type=reseller   # one segment of the 300-partner demo

The demo (24 months, seed 7) is generated and imported once, cached under bench/data/burst/<partners>/.
`--renderer product` uses partnerkpi.reports.render (one partner-scoped PDF per partner); `minimal` renders a
one-page WeasyPrint PDF of the partner's name, which times the delivery side alone. The SMTP server is
aiosmtpd on loopback, so the figure is render + compose + SMTP hand-off, not a real mail relay. Results are
appended to bench/results/burst.jsonl.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from datetime import UTC, datetime
from html import escape
from pathlib import Path

HERE = Path(__file__).resolve().parent


def hub_for(partners: int):
    """The Hub of the demo with `partners` partners, generated and imported on first use."""
    from partnerkpi.demo import generate
    from partnerkpi.hub import Hub

    root = HERE / "data" / "burst" / str(partners)
    db = root / "hub.duckdb"
    if not db.exists():
        files = generate(root / "files", partners=partners, months=24, seed=7)
        with Hub.open(db) as hub:
            hub.import_files([files.partners, files.users, files.events])
    return Hub.open(db)


def minimal_renderer(hub):
    """A one-page PDF per partner naming it: the delivery side's cost without the report's."""
    from weasyprint import HTML

    def render(period: str, audience: str, fmt: str) -> bytes:
        pid = audience.removeprefix("partner:")
        ((name,),) = hub.store.con.execute("SELECT name FROM partners WHERE partner_id = ?", [pid]).fetchall()
        return HTML(string=f"<h1>{escape(name)}</h1><p>{period}</p>").write_pdf()

    return render


class Counter:
    """An aiosmtpd handler that counts the messages it accepts."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages += len(envelope.rcpt_tos)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--partners", type=int, default=300)
    parser.add_argument("--renderer", choices=("product", "minimal"), default="product")
    parser.add_argument("--segment", default=None, help="TRAIT=VALUE: burst only these partners")
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    from partnerkpi.delivery import Retry, Subscriptions, report_renderer
    from partnerkpi.settings import MailSettings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    hub = hub_for(args.partners)
    try:
        tables = hub.store.subscriptions
        name = f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        render = report_renderer(hub) if args.renderer == "product" else minimal_renderer(hub)
        subs = Subscriptions(tables, render, MailSettings(host="127.0.0.1", port=port), retry=Retry(1))
        subs.add(name, "0 7 * * 1", period="last-quarter", audience="partners", segment=args.segment)
        started = time.perf_counter()
        summary = subs.run_once(name)
        seconds = time.perf_counter() - started
        editions = len({row.edition for row in tables.log(name)})
        subs.remove(name)
    finally:
        hub.close()
        controller.stop()
    result = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "partners": args.partners,
              "renderer": args.renderer, "segment": args.segment, "editions": editions, "seconds": round(seconds, 2),
              "messages": counter.messages,
              "counts": summary.counts, "seconds_per_edition": round(seconds / max(editions, 1), 3)}
    print(json.dumps(result))
    with (HERE / "results" / "burst.jsonl").open("a") as f:
        f.write(json.dumps(result) + "\n")
    if summary.counts.get("failed"):
        sys.exit(1)


if __name__ == "__main__":
    main()
