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

from partnerkpi.cli_common import CatalogOption, DbOption, _hub, _open, out
from partnerkpi.errors import UsageError
from partnerkpi.insights.alerts import list_alerts
from partnerkpi.insights.watch import run_watch
from partnerkpi.settings import Settings

alerts_app = typer.Typer(help="Alert rules on KPIs: evaluate them, list what fired.", no_args_is_help=True)


class Status(StrEnum):
    active = "active"
    resolved = "resolved"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add the `alerts` command group to the `partnerkpi` app."""
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """The alerts, newest first."""
    with _hub(db, read_only=True) as hub:
        alerts = list_alerts(hub, status.value)
    if as_json:
        sys.stdout.write(json.dumps([a.to_json() for a in alerts], indent=2) + "\n")
        return
    table = Table(title=f"{len(alerts)} {status.value if status is not Status.all else ''} alert(s)".replace("  ", " "),
                  title_justify="left")
    for column in ("id", "severity", "rule", "scope", "period", "fired", "resolved", "message"):
        table.add_column(column)
    for a in alerts:
        table.add_row(str(a.alert_id), a.severity, a.rule_id, a.scope_key or "program", a.period or "",
                      f"{a.fired_at:%Y-%m-%d %H:%M}", f"{a.resolved_at:%Y-%m-%d %H:%M}" if a.resolved_at else "",
                      Text(a.message))
    out.print(table)
