"""The `review` and `trends` commands: `register(app)` adds them to the `partnerkpi` app.

They reuse cli.py's hub opening, options and date parsing; errors map to exit codes in `cli.main` as for
every other command. Call `register(app)` once cli.py's options are defined (for instance just before `main`).
The commands are defined inside `register` (importing cli.py there, so cli.py may import this module at its
top), and this module has no `from __future__ import annotations`: typer must see the options themselves.
"""

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class ReviewFormat(StrEnum):
    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add `review` and `trends` to `app`."""
    from partnerkpi.cli_common import CatalogOption, DbOption, _parse_date, _range, _reader, out

    @app.command()
    def review(
        quarter: Annotated[str | None, typer.Option(
            help="The quarter to review, e.g. 2026-Q3 (default: the quarter of the last event)")] = None,
        db: DbOption = None,
        by: Annotated[str | None, typer.Option(help="Also per segment of a partner trait (type, tier, ...)")] = None,
        targets: Annotated[Path | None, typer.Option(
            help="Targets and band sets YAML, read after the built-in defaults")] = None,
        kpi: Annotated[list[str] | None, typer.Option("--kpi", help="Only these KPI ids (repeatable)")] = None,
        format: Annotated[ReviewFormat, typer.Option(help="table or json")] = ReviewFormat.table,
        catalog: CatalogOption = None,
    ) -> None:
        """Quarterly review: what improved and worsened since the quarter before, band changes, targets missed."""
        from partnerkpi.insights.review import quarter_review, review_tables
        from partnerkpi.insights.targets import TargetBook

        with _reader(db, catalog) as hub:
            book = TargetBook.load(targets, catalog=hub.catalog)
            result = quarter_review(hub, quarter, book=book, by=by, kpis=kpi or None)
        if format is ReviewFormat.json:
            sys.stdout.write(json.dumps(result.to_json(), allow_nan=False) + "\n")
            return
        counts = result.counts()
        out.print(f"[bold]Review of {result.quarter}[/] against {result.previous_quarter}: "
                  f"{counts['improved']} improved, {counts['worsened']} worsened, "
                  f"{counts['band_changes']} band change(s), {counts['targets_missed']} target(s) missed, "
                  f"{counts['targets_met']} met", highlight=False)
        for table in review_tables(result):
            out.print(table)

    @app.command()
    def trends(
        db: DbOption = None,
        grain: Annotated[str, typer.Option(help="week, month, quarter or year")] = "month",
        from_: Annotated[str | None, typer.Option(
            "--from", help="First day (YYYY-MM-DD); default: 6 periods back")] = None,
        to: Annotated[str | None, typer.Option("--to", help="End day, exclusive; default: after the last event")
                      ] = None,
        by: Annotated[str | None, typer.Option(help="Also per segment of a partner trait (type, tier, ...)")] = None,
        kpi: Annotated[list[str] | None, typer.Option("--kpi", help="Only these KPI ids (repeatable)")] = None,
        baseline: Annotated[str | None, typer.Option(
            help="Baseline period label, e.g. 2026-01 (default: the first period of the range)")] = None,
        window: Annotated[int, typer.Option(help="Periods the trend direction is judged over")] = 3,
        format: Annotated[ReviewFormat, typer.Option(
            help="table (each KPI's last period) or json (every period)")] = ReviewFormat.table,
        catalog: CatalogOption = None,
    ) -> None:
        """Trends: change against the previous period, a year earlier and a baseline; direction over N periods."""
        from partnerkpi.insights.trends import trend_tables
        from partnerkpi.insights.trends import trends as compute_trends

        with _reader(db, catalog) as hub:
            start, end = _range(hub, grain, _parse_date(from_, "--from"), _parse_date(to, "--to"))
            items = compute_trends(hub, grain, start, end, by=by, kpis=kpi or None, baseline=baseline, window=window)
            if format is ReviewFormat.json:
                sys.stdout.write(json.dumps([t.to_json() for t in items], allow_nan=False) + "\n")
                return
            for table in trend_tables(items, hub.catalog):
                out.print(table)
