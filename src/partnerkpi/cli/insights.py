"""The insight commands: `review` (a quarter against the one before), `trends`, `impact` and `lifecycle`.
They build a Hub, call `partnerkpi.insights`, and print the results."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from partnerkpi.cli.common import CatalogOption, DbOption, Format, _parse_date, _range, _reader, csv_text, out
from partnerkpi.errors import UsageError

GrainOption = Annotated[str, typer.Option(help="week, month, quarter or year")]
FromOption = Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD)")]
ToOption = Annotated[str | None, typer.Option("--to", help="End day, exclusive (YYYY-MM-DD)")]


def impact(
    kpi: Annotated[str, typer.Option("--kpi", help="The KPI that may drive the outcome, e.g. active_partner_rate")],
    on: Annotated[str, typer.Option("--on", help="The outcome KPI, e.g. partner_revenue")],
    around: Annotated[str | None, typer.Option(
        help="A date (YYYY-MM-DD), e.g. a portal revamp: compare the periods before it with those after it")] = None,
    grain: GrainOption = "month",
    from_: FromOption = None,
    to: ToOption = None,
    db: DbOption = None,
    format: Annotated[Format, typer.Option(
        help="table, json, or csv (the per-partner risers vs fallers table)")] = Format.table,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap: same seed, same interval")] = 0,
) -> None:
    """Does KPI move the outcome? Risers vs fallers, lagged correlation, and before/after a date.

    The range defaults to all the data (from the first period with activity to the day after the last
    event). Without --around, partners are compared between the first and second half of the range."""
    from partnerkpi.insights.impact import activity_range
    from partnerkpi.insights.impact import impact as analyse

    with _reader(db) as hub:
        hub.kpi(kpi)
        hub.kpi(on)
        start, end = _parse_date(from_, "--from"), _parse_date(to, "--to")
        if start is None or end is None:
            first, last = activity_range(hub, grain)
            start, end = start or first, end or last
        report = analyse(hub, kpi, on, grain, start, end, around=_parse_date(around, "--around"), seed=seed)
    if format is Format.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")
    elif format is Format.csv:
        sys.stdout.write(csv_text(report.risers_vs_fallers.partners))
    else:
        out.print(report)


def lifecycle(
    grain: GrainOption = "month",
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD); default: 6 periods back")
                     ] = None,
    to: Annotated[str | None, typer.Option("--to", help="End day, exclusive; default: after the last event")] = None,
    by: Annotated[str | None, typer.Option(help="Segment by a partner trait (type, tier, region, ...)")] = None,
    db: DbOption = None,
    format: Annotated[Format, typer.Option(help="table, json or csv (csv: the lifecycle rows)")] = Format.table,
    ids: Annotated[bool, typer.Option("--ids", help="Include the partner ids of each state (json)")] = False,
) -> None:
    """Partners per period as new, returning, resurrecting or dormant (PostHog's lifecycle), and how many
    of the range's periods each partner was active in (stickiness)."""
    from partnerkpi.insights.lifecycle import lifecycle as compute_lifecycle
    from partnerkpi.insights.lifecycle import stickiness

    if ids and format is not Format.json:
        raise UsageError("--ids lists partner ids, which only the JSON output carries", hint="add --format json")
    with _reader(db) as hub:
        start, end = _range(hub, grain, _parse_date(from_, "--from"), _parse_date(to, "--to"))
        states = compute_lifecycle(hub, grain, start, end, by=by, ids=ids)
        sticky = stickiness(hub, grain, start, end, by=by)
    if format is Format.json:
        body = {"lifecycle": states.to_json(), "stickiness": sticky.to_json()}
        sys.stdout.write(json.dumps(body, indent=2, allow_nan=False) + "\n")
    elif format is Format.csv:
        records = [r.to_json() for r in states.rows]
        for r in records:
            r["segment"] = ";".join(f"{k}={v}" for k, v in r["segment"].items())
        sys.stdout.write(csv_text(records))
    else:
        out.print(states)
        out.print(sticky)


class ReviewFormat(StrEnum):
    table = "table"
    json = "json"


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


def register(app: typer.Typer) -> None:
    """Add `review`, `trends`, `impact` and `lifecycle` to the partnerkpi command."""
    app.command()(review)
    app.command()(trends)
    app.command("impact")(impact)
    app.command("lifecycle")(lifecycle)
