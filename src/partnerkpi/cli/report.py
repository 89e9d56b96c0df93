"""The `report` command: `register(app)` adds it to the `partnerkpi` app.

It opens the database read-only like every read command and calls `render_report`, the one renderer the web
page, the PDF download and the scheduled send use. This module has no `from __future__ import annotations`:
typer must see the options themselves.
"""

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class ReportFormat(StrEnum):
    html = "html"
    pdf = "pdf"


class ReportPaper(StrEnum):
    A4 = "A4"
    Letter = "Letter"


def register(app: typer.Typer) -> None:
    """Add `report` to `app`."""
    from partnerkpi.cli.common import CatalogOption, DbOption, TargetsOption, _reader, err

    @app.command()
    def report(
        period: Annotated[str | None, typer.Option(
            help="The quarter to report, e.g. 2026-Q3 (default: the last quarter the data covers)")] = None,
        audience: Annotated[str, typer.Option(
            help="internal (the whole program) or partner:ID (that partner's own edition)")] = "internal",
        format: Annotated[ReportFormat, typer.Option("--format", help="html or pdf")] = ReportFormat.html,
        paper: Annotated[ReportPaper, typer.Option(help="A4 or Letter")] = ReportPaper.A4,
        out_path: Annotated[Path | None, typer.Option(
            "--out", help="Write the report here (HTML goes to stdout without it; a PDF needs it)")] = None,
        db: DbOption = None,
        targets: TargetsOption = None,
        catalog: CatalogOption = None,
    ) -> None:
        """The quarterly report, internal or one partner's edition, as HTML or PDF."""
        from partnerkpi.errors import UsageError
        from partnerkpi.reports.render import render_report

        if format is ReportFormat.pdf and out_path is None:
            raise UsageError("a PDF report needs a file to go to", hint="add --out report.pdf")
        with _reader(db, catalog, targets) as hub:
            document = render_report(hub, period, audience, paper=paper.value, fmt=format.value)  # type: ignore[arg-type]
        if out_path is None:
            sys.stdout.write(document.decode("utf-8"))
            return
        out_path.write_bytes(document)
        err.print(f"wrote {out_path} ({len(document):,} bytes)", highlight=False)
