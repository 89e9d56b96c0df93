"""`partnerkpi subscriptions add | list | remove | run | resend | log | address | allow`: scheduled reports by
mail, one edition per partner for partner subscriptions, with a run log per recipient."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from partnerkpi.cli.common import DbOption, Format, _hub, _reader, csv_text, out
from partnerkpi.delivery.recipients import check_address, check_domain
from partnerkpi.delivery.runs import AUDIENCES, DeliveryFailed, RunSummary, open_subscriptions
from partnerkpi.delivery.schedule import next_fire
from partnerkpi.errors import UsageError
from partnerkpi.settings import Settings
from partnerkpi.store.subscriptions import STATUSES

subscriptions_app = typer.Typer(help="Reports by mail on a schedule: per-partner editions, a run log, resends.",
                                no_args_is_help=True)
LOG_FIELDS = ["subscription", "fire_at", "edition", "recipient", "period", "status", "attempts", "last_error",
              "sent_at", "message_id"]


def _instant(text: str | None, option: str) -> datetime | None:
    """An ISO date or instant (Z or an offset converts to UTC; none means UTC) as naive UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} '{text}' is not a date or time",
                         hint="write it like 2027-01-04T06:00:00Z") from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False)


def _check(summaries: list[RunSummary]) -> None:
    """Fail (exit 1) when a recipient of these runs is left failed."""
    failed = {s.subscription: s.counts.get("failed", 0) for s in summaries if s.counts.get("failed")}
    if failed:
        name = next(iter(failed))
        raise DeliveryFailed(f"{sum(failed.values())} recipient(s) failed in {', '.join(failed)}",
                             hint=f"see why with `partnerkpi subscriptions log {name} --status failed`; once fixed, "
                             f"`partnerkpi subscriptions resend {name}` sends only those")


@subscriptions_app.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="A name to refer to it by")],
    cron: Annotated[str, typer.Option("--cron", help='When it fires, e.g. "0 7 * * 1" (Mondays 07:00)')],
    period: Annotated[str, typer.Option(
        "--period", help="The quarter each fire reports: last-quarter, this-quarter or a label like 2026-Q3")],
    audience: Annotated[str, typer.Option(
        "--audience", help="internal (the internal edition to --to) or partners (each partner's own edition)")],
    tz: Annotated[str | None, typer.Option("--tz", help="Time zone of --cron (default: $PARTNERKPI_TIMEZONE, else UTC)")
                  ] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="Only partners with TRAIT=VALUE, e.g. type=reseller")
                       ] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="Internal recipient (repeatable)")] = None,
    db: DbOption = None,
) -> None:
    """Add a subscription."""
    if audience not in AUDIENCES:
        raise UsageError(f"--audience '{audience}' is not internal or partners", hint="use internal or partners")
    settings = Settings.from_env(db)
    with _hub(db) as hub:
        subs = open_subscriptions(hub, settings.mail)
        sub = subs.add(name, cron, period=period, audience=audience, tz=tz, segment=segment, to=tuple(to or ()))
        _say(f"added {sub.name}: next fire {subs.next_fire(sub):%Y-%m-%d %H:%M} UTC")


@subscriptions_app.command("list")
def list_(db: DbOption = None, as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False) -> None:
    """Every subscription with its next fire and the outcome of its last run."""
    with _reader(db) as hub:
        tables = hub.store.subscriptions
        subs = tables.all() if "subscriptions" in hub.store.tables() else []
        counts = tables.last_counts() if subs else {}
        now = hub.clock()
        records = []
        for sub in subs:
            last = counts.get(sub.name)
            records.append({"name": sub.name, "cron": sub.cron, "tz": sub.tz, "period": sub.period,
                            "audience": sub.audience, "segment": sub.segment, "to": list(sub.to),
                            "next_fire_at": next_fire(sub.cron, sub.tz, now).isoformat(),
                            "last_fire_at": last[0].isoformat() if last else None,
                            "last_run": last[1] if last else {}})
    if as_json:
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return
    table = Table(title=f"{len(records)} subscription(s)", title_justify="left")
    for column in ("name", "schedule", "period", "audience", "next fire (UTC)", "last run"):
        table.add_column(column)
    for r in records:
        who = r["audience"] + (f" {r['segment']}" if r["segment"] else "") + (
            f" → {', '.join(r['to'])}" if r["to"] else "")
        last = ", ".join(f"{n} {s}" for s, n in sorted(r["last_run"].items())) or "never"
        table.add_row(r["name"], f"{r['cron']} {r['tz']}", r["period"], Text(who), r["next_fire_at"][:16], last)
    out.print(table)


@subscriptions_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The subscription")], db: DbOption = None) -> None:
    """Remove a subscription and its run log."""
    with _hub(db) as hub:
        open_subscriptions(hub, Settings.from_env(db).mail).remove(name)
    _say(f"removed {name}")


@subscriptions_app.command("run")
def run(
    name: Annotated[str | None, typer.Argument(help="The subscription (with --once)")] = None,
    now: Annotated[bool, typer.Option("--now", help="Fire every subscription that is due now")] = False,
    once: Annotated[bool, typer.Option("--once", help="Fire NAME now, whatever its schedule")] = False,
    at: Annotated[str | None, typer.Option("--at", help="With --now: judge what is due as of this instant")] = None,
    db: DbOption = None,
) -> None:
    """Fire due subscriptions (--now), or one at once (NAME --once): render, send, log per recipient."""
    if now == once or (once and not name) or (now and name):
        raise UsageError("say what to run", hint="use `run --now` (every due one) or `run NAME --once`")
    with _hub(db) as hub:
        subs = open_subscriptions(hub, Settings.from_env(db).mail)
        summaries = subs.run_due(_instant(at, "--at")) if now else [subs.run_once(name or "")]
    if not summaries:
        _say("nothing is due")
    for summary in summaries:
        _say(summary.text())
    _check(summaries)


@subscriptions_app.command("resend")
def resend(
    name: Annotated[str, typer.Argument(help="The subscription")],
    fire: Annotated[str | None, typer.Option(
        "--fire", help="Only this fire instant (UTC; default: every fire)")] = None,
    db: DbOption = None,
) -> None:
    """Deliver what is still pending or failed; what went out is never sent again."""
    with _hub(db) as hub:
        summaries = open_subscriptions(hub, Settings.from_env(db).mail).resend(name, _instant(fire, "--fire"))
    if not summaries:
        _say(f"{name}: nothing to resend")
    for summary in summaries:
        _say(summary.text())
    _check(summaries)


@subscriptions_app.command("log")
def log(
    name: Annotated[str | None, typer.Argument(help="The subscription (default: all)")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only sent, failed, refused or pending")] = None,
    format: Annotated[Format, typer.Option(help="table, json or csv")] = Format.table,
    db: DbOption = None,
) -> None:
    """The run log: one row per recipient of each fire, with its status and why."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status '{status}' is not one of {', '.join(STATUSES)}", hint="e.g. --status failed")
    with _reader(db) as hub:
        rows = (hub.store.subscriptions.log(name, statuses=(status,) if status else STATUSES)
                if "subscription_deliveries" in hub.store.tables() else [])
    records = [{"subscription": r.subscription, "fire_at": r.fire_at.isoformat(), "edition": r.edition,
                "recipient": r.recipient, "period": r.period, "status": r.status, "attempts": r.attempts,
                "last_error": r.last_error, "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                "message_id": r.message_id} for r in rows]
    if format is Format.json:
        sys.stdout.write(json.dumps(records, indent=2) + "\n")
        return
    if format is Format.csv:
        sys.stdout.write(csv_text(records, LOG_FIELDS))
        return
    table = Table(title=f"{len(records)} delivery(ies)", title_justify="left")
    for column in ("subscription", "fire (UTC)", "edition", "recipient", "status", "tries", "why"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(r["subscription"], r["fire_at"][:16], r["edition"], r["recipient"], r["status"],
                      str(r["attempts"]), Text(r["last_error"] or ""))
    out.print(table)


@subscriptions_app.command("address")
def address(
    partner: Annotated[str, typer.Argument(help="The partner id")],
    email: Annotated[str, typer.Argument(help="An address the partner's edition also goes to")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove it instead")] = False,
    db: DbOption = None,
) -> None:
    """Configure an address for a partner's edition (besides its users); it must be on the partner's allow-list."""
    with _hub(db) as hub:
        hub.store.subscriptions.set_address(partner, check_address(email), present=not remove)
    _say(f"{'removed' if remove else 'added'} {email.strip().lower()} for partner {partner}")


@subscriptions_app.command("allow")
def allow(
    partner: Annotated[str, typer.Argument(help="The partner id")],
    domain: Annotated[str, typer.Argument(help="A recipient domain, e.g. partner.example")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove it instead")] = False,
    db: DbOption = None,
) -> None:
    """Allow a recipient domain for a partner's edition. A partner with none allows its own users' domains."""
    with _hub(db) as hub:
        hub.store.subscriptions.set_domain(partner, check_domain(domain), present=not remove)
    _say(f"{'removed' if remove else 'allowed'} {check_domain(domain)} for partner {partner}")
