"""`partnerkpi alerts run | list`: evaluate the alert rules and show the alerts (added with `register(app)`)."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from partnerkpi.cli.common import (
    CatalogOption,
    DbOption,
    ExportFormat,
    OutOption,
    _open,
    _reader,
    csv_text,
    out,
    wants_file,
    write_export,
)
from partnerkpi.errors import UsageError
from partnerkpi.insights.alerts import list_alerts
from partnerkpi.insights.watch import run_watch
from partnerkpi.reports import exports
from partnerkpi.settings import Settings

alerts_app = typer.Typer(help="Alert rules on KPIs: evaluate them, list what fired.", no_args_is_help=True)


class Status(StrEnum):
    active = "active"
    resolved = "resolved"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add the `alerts` command group to the `partnerkpi` app."""
    from partnerkpi.cli.templates import alerts_init

    alerts_app.command("init")(alerts_init)
    app.add_typer(alerts_app, name="alerts")


def _parse_now(text: str | None) -> datetime | None:
    """An ISO date or instant (a Z or an offset converts to UTC; none means UTC) as a naive UTC datetime."""
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now '{text}' is not a date or time",
                         hint="write it as 2026-08-05 or 2026-08-05T09:00:00Z") from None
    return instant.astimezone(UTC).replace(tzinfo=None) if instant.tzinfo else instant


@alerts_app.command("run")
def run(
    db: DbOption = None,
    rules: Annotated[Path | None, typer.Option(
        help="Alert rules YAML (default: $PARTNERKPI_ALERTS, else the built-in rules)")] = None,
    now: Annotated[str | None, typer.Option(
        help="Evaluate as of this instant (default: now); rules judge the last complete period the data covers "
             "before it, and the data is stale when it is too far past the data's end")] = None,
    catalog: CatalogOption = None,
) -> None:
    """Evaluate the rules once: store new firings and resolves, deliver them, retry failed deliveries.
    The at-risk rule uses the health score ($PARTNERKPI_HEALTH, else the built-in configuration); the
    stale_data rule fires when no data arrived for $PARTNERKPI_FEED_CADENCE + $PARTNERKPI_STALE_GRACE days
    (default 1 + 2)."""
    settings = Settings.from_env(db, tuple(catalog or ()))
    if rules is not None:
        settings = dataclasses.replace(settings, alerts=rules)
    with _open(settings) as hub:
        summary = run_watch(hub, settings, now=_parse_now(now))
    say = lambda text: out.print(text, highlight=False, markup=False)  # noqa: E731 (messages may hold [..])
    say(f"{len(summary.fired)} fired, {len(summary.resolved)} resolved, {summary.still_active} still active; "
        f"deliveries: {summary.deliveries_ok} ok, {summary.deliveries_failed} failed")
    for label, alerts in (("fired", summary.fired), ("resolved", summary.resolved)):
        for a in alerts:
            say(f"  {label} #{a.alert_id} [{a.severity}] {a.rule_id}: {a.message}")
    for rule_id in summary.skipped:
        say(f"  skipped {rule_id}: no at-risk provider is configured")


@alerts_app.command("list")
def list_(
    db: DbOption = None,
    status: Annotated[Status, typer.Option(help="active, resolved or all")] = Status.active,
    format: Annotated[ExportFormat, typer.Option(help="table, json, csv, xlsx or parquet")] = ExportFormat.table,
    wide: Annotated[bool, typer.Option("--wide", help="Table: also the rule, KPI value and times")] = False,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json")] = False,
    out_path: OutOption = None,
) -> None:
    """The alerts, newest first (--format csv, xlsx or parquet with --out: a file)."""
    with _reader(db) as hub:
        alerts = list_alerts(hub, status.value)
    if wants_file(format, out_path):
        write_export(exports.table("alerts", [a.to_json() for a in alerts], ALERT_FIELDS), format, out_path)
        return
    if as_json or format is ExportFormat.json:
        sys.stdout.write(json.dumps([a.to_json() for a in alerts], indent=2, allow_nan=False) + "\n")
        return
    if format is ExportFormat.csv:
        sys.stdout.write(csv_text([a.to_json() for a in alerts], ALERT_FIELDS))
        return
    title = f"{len(alerts)} {status.value if status is not Status.all else ''} alert(s)".replace("  ", " ")
    table = Table(title=title, title_justify="left")
    columns = ["id", "severity", *(["rule"] if wide else []), "scope", "period", *(["value"] if wide else []),
               "fired", *(["resolved"] if wide else []), "message"]
    for column in columns:
        table.add_column(column, no_wrap=column != "message", overflow="fold" if column == "message" else "ellipsis")
    for a in alerts:
        cells = {"id": str(a.alert_id), "severity": a.severity, "rule": a.rule_id, "scope": a.scope_key or "program",
                 "period": a.period or "", "value": "" if a.value is None else f"{a.value:,.6g}",
                 "fired": f"{a.fired_at:%Y-%m-%d}" if not wide else f"{a.fired_at:%Y-%m-%d %H:%M}",
                 "resolved": f"{a.resolved_at:%Y-%m-%d %H:%M}" if a.resolved_at else "", "message": Text(a.message)}
        table.add_row(*[cells[c] for c in columns])
    out.print(table)


ALERT_FIELDS = ["alert_id", "status", "severity", "rule_id", "scope_key", "kpi", "period", "value", "message",
                "fired_at", "resolved_at", "acknowledged_by", "acknowledged_at"]
