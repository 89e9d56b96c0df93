"""The health-score commands: `health`, `at-risk`, `inactive`, `backtest` and `override add/list/remove`.

`register(app)` adds them to the main `partnerkpi` app; they build a Hub with cli's helpers and call
`partnerkpi.insights`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from partnerkpi.cli.common import (
    DbOption,
    ExportFormat,
    Format,
    OutOption,
    _hub,
    _parse_date,
    _reader,
    out,
    wants_file,
    write_export,
)
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.insights.health import (
    CapResult,
    HealthConfig,
    HealthScore,
    add_override,
    default_as_of,
    health_scores,
    list_overrides,
    load_config,
    remove_override,
)
from partnerkpi.reports import exports

AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="Score at this day's midnight UTC (YYYY-MM-DD); default: after the last event")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Health-score YAML (components, weights, thresholds, levels); default: the built-in one")]
FormatOption = Annotated[Format, typer.Option(help="table, json or csv")]
ExportFormatOption = Annotated[ExportFormat, typer.Option(help="table, json, csv, xlsx or parquet")]
WideOption = Annotated[bool, typer.Option("--wide", help="Table: also the score's trend and suggested levers")]
LEVEL_STYLE = {"healthy": "green", "watch": "yellow", "at_risk": "red"}
LEVERS_SHOWN = 3


def _as_of(hub: Hub, text: str | None) -> datetime:
    day = _parse_date(text, "--as-of")
    return default_as_of(hub) if day is None else datetime(day.year, day.month, day.day)


def _config(hub: Hub, path: Path | None) -> HealthConfig:
    return load_config(path, catalog=hub.catalog)


def _write(format: Format, records: list[dict[str, Any]], table: Table) -> None:
    if format is Format.json:
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    elif format is Format.csv:
        buf = io.StringIO()
        if records:
            writer = csv.DictWriter(buf, fieldnames=list(records[0]))
            writer.writeheader()
            for r in records:
                writer.writerow({k: json.dumps(v, default=str) if isinstance(v, list | dict | tuple) else v
                                 for k, v in r.items()})
        sys.stdout.write(buf.getvalue())
    else:
        out.print(table)


def _level(level: str) -> str:
    return f"[{LEVEL_STYLE.get(level, 'white')}]{level}[/]"


def _health_table(scores: list[HealthScore], as_of: datetime) -> Table:
    table = Table(title=f"Partner health at {as_of:%Y-%m-%d}: {len(scores)} partners", title_justify="left")
    for col in ("partner", "name", "score", "level", "reasons"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for h in scores:
        level = _level(h.level) + (" (override)" if h.override else "")
        table.add_row(h.partner_id, h.name or "", f"{h.score:.1f}", level, h.reason_text or "-")
    return table


def _component_table(h: HealthScore) -> Table:
    title = f"{h.partner_id} {h.name or ''}: {h.score:.1f} ({h.level})"
    if h.override:
        title += (f", overridden until {h.override.expires_at:%Y-%m-%d} by {h.override.created_by}: "
                  f"{h.override.reason} (computed {h.computed_score:.1f}, {h.computed_level})")
    table = Table(title=title, title_justify="left")
    for col in ("component", "measured", "score", "weight", "contribution"):
        table.add_column(col, justify="left" if col in ("component", "measured") else "right")
    total_weight = sum(c.weight for c in h.components)
    for c in h.components:
        table.add_row(c.label, c.detail, f"{c.score:.1f}", f"{100 * c.weight / total_weight:.0f} %",
                      f"{c.contribution:.1f}")
    if h.caps:
        table.add_section()
    for cap in h.caps:
        table.add_row(cap.label, cap.detail, "", f"cap: {cap.max_level}", cap_status(cap),
                      style="yellow" if cap.lowered else None)
    table.add_section()
    table.add_row("total", "; ".join(h.reasons) or "-", f"{h.computed_score:.1f}", "100 %",
                  f"{h.computed_score:.1f}", style="bold")
    return table


def cap_status(cap: CapResult) -> str:
    """Whether a cap applied, in words: "applied", "breach (level already lower)" or "not applied"."""
    if not cap.applied:
        return "not applied"
    return "applied" if cap.lowered else "breach (level already lower)"


def _health_record(h: HealthScore) -> dict[str, Any]:
    d = h.to_dict()
    d["reasons"] = list(h.reasons)
    return d


def _risk_table(title: str, entries: list, days: bool = False, wide: bool = False) -> Table:
    """Partner, name, (inactive days,) score, level and reasons; `wide` adds the trend and suggested levers."""
    table = Table(title=title, title_justify="left")
    columns = ["partner", "name", *(["inactive days"] if days else []), "score", "level", "reasons",
               *(["trend", "suggested levers"] if wide else [])]
    for col in columns:
        table.add_column(col, no_wrap=col in ("partner", "score", "level"), overflow="fold",
                         justify="right" if col in ("score", "inactive days") else "left")
    for e in entries:
        cells = {"partner": e.partner_id, "name": e.name or "", "score": f"{e.score:.1f}", "level": _level(e.level),
                 "inactive days": "never" if e.days_inactive is None else f"{e.days_inactive:,.0f}",
                 "reasons": "; ".join(e.reasons) or "-", "trend": " → ".join(f"{s:.0f}" for _, s in e.trend),
                 "suggested levers": "\n".join(f"• {lever}" for lever in e.levers[:LEVERS_SHOWN]) or "-"}
        table.add_row(*[cells[c] for c in columns])
    return table


def register(app: typer.Typer) -> None:
    """Add the health-score commands to `app`."""

    @app.command()
    def health(
        db: DbOption = None,
        as_of: AsOfOption = None,
        partner: Annotated[str | None, typer.Option("--partner", help="One partner: its components in full")] = None,
        format: FormatOption = Format.table,
        config: ConfigOption = None,
    ) -> None:
        """Health score of every partner (or one, in full): components, contributions, level and reasons."""
        with _reader(db) as hub:
            cfg, at = _config(hub, config), _as_of(hub, as_of)
            scores = health_scores(hub, at, cfg, partners=[partner] if partner else None)
            if partner and not scores:
                raise UsageError(f"partner '{partner}' is not in the program at {at:%Y-%m-%d}",
                                 hint="check the id, or give an --as-of when it was onboarded and not offboarded")
            table = _component_table(scores[0]) if partner else _health_table(scores, at)
            records = [_health_record(h) for h in scores]
            if format is Format.csv:
                records = [{"partner_id": h.partner_id, "name": h.name, "score": h.score, "level": h.level,
                            "computed_score": h.computed_score, "reasons": h.reason_text,
                            "caps_applied": " ".join(c.kind for c in h.caps if c.applied),
                            **{f"{c.name}_score": c.score for c in h.components}} for h in scores]
            _write(format, records, table)

    @app.command("at-risk")
    def at_risk_(
        db: DbOption = None, as_of: AsOfOption = None, format: ExportFormatOption = ExportFormat.table,
        config: ConfigOption = None, wide: WideOption = False, out_path: OutOption = None,
    ) -> None:
        """Partners at risk, lowest score first, with the reasons, the score's trend and suggested levers
        (--format csv, xlsx or parquet with --out: a file)."""
        from partnerkpi.insights.risk import at_risk

        with _reader(db) as hub:
            at = _as_of(hub, as_of)
            entries = at_risk(hub, at, _config(hub, config))
            if wants_file(format, out_path):
                write_export(exports.table("at-risk", [e.to_dict() for e in entries]), format, out_path)
                return
            _write(Format(format.value), [e.to_dict() for e in entries],
                   _risk_table(f"At-risk partners at {at:%Y-%m-%d}: {len(entries)}", entries, wide=wide))

    @app.command()
    def inactive(
        db: DbOption = None, as_of: AsOfOption = None,
        days: Annotated[int, typer.Option(help="No activity event in this many days before --as-of")] = 30,
        format: ExportFormatOption = ExportFormat.table, config: ConfigOption = None, wide: WideOption = False,
        out_path: OutOption = None,
    ) -> None:
        """Partners with no activity in the last --days days, with reasons, trend and suggested levers
        (--format csv, xlsx or parquet with --out: a file)."""
        from partnerkpi.insights.risk import inactive as find_inactive

        if days <= 0:
            raise UsageError(f"--days {days} is not a positive number of days", hint="e.g. --days 30")
        with _reader(db) as hub:
            at = _as_of(hub, as_of)
            entries = find_inactive(hub, at, days, _config(hub, config))
            if wants_file(format, out_path):
                write_export(exports.table("inactive", [e.to_dict() for e in entries]), format, out_path)
                return
            _write(Format(format.value), [e.to_dict() for e in entries],
                   _risk_table(f"Partners inactive for {days} days at {at:%Y-%m-%d}: {len(entries)}", entries,
                               days=True, wide=wide))

    @app.command()
    def backtest(db: DbOption = None, format: FormatOption = Format.table, config: ConfigOption = None) -> None:
        """How well the score at each quarter end predicted churn in the next quarter, against a naive rule."""
        from partnerkpi.insights.backtest import backtest as run_backtest

        with _reader(db) as hub:
            result = run_backtest(hub, _config(hub, config))
        if format is Format.table:
            out.print(result.rich_table())
        elif format is Format.json:
            sys.stdout.write(result.to_json() + "\n")
        else:
            _write(format, [{"as_of": q.as_of.date().isoformat(), **{f"model_{k}": v for k, v in vars(q.model).items()},
                             **{f"naive_{k}": v for k, v in vars(q.naive).items()}} for q in result.quarters], Table())

    override_app = typer.Typer(help="Manual overrides of a partner's health level or score, with a reason and an "
                                    "expiry", no_args_is_help=True)
    app.add_typer(override_app, name="override")

    @override_app.command("add")
    def override_add(
        partner: Annotated[str, typer.Argument(help="Partner id")],
        reason: Annotated[str, typer.Option(help="Why (shown with the score)")],
        expires: Annotated[str, typer.Option(help="Ignored from this day on (YYYY-MM-DD)")],
        level: Annotated[str | None, typer.Option(help="The level to show (healthy, watch, at_risk)")] = None,
        score: Annotated[float | None, typer.Option(help="The score to show (0..100)")] = None,
        by: Annotated[str, typer.Option("--by", help="Who decided")] = "cli",
        db: DbOption = None,
        config: ConfigOption = None,
    ) -> None:
        """Override a partner's level or score until --expires."""
        day = _parse_date(expires, "--expires")
        assert day is not None
        with _hub(db) as hub:
            o = add_override(hub, partner, reason=reason, expires_at=day, level=level, score=score, created_by=by,
                             config=_config(hub, config))
        what = f"level {o.level}" if o.level else f"score {o.score:g}"
        out.print(f"override {o.override_id}: {o.partner_id} shows {what} until {o.expires_at:%Y-%m-%d} ({o.reason})",
                  highlight=False)

    @override_app.command("list")
    def override_list(
        db: DbOption = None,
        all_: Annotated[bool, typer.Option("--all", help="Expired ones too")] = False,
        format: FormatOption = Format.table,
    ) -> None:
        """The overrides in force (today, by the clock), newest first."""
        with _reader(db) as hub:
            found = list_overrides(hub, include_expired=all_)
            now = hub.clock()
        records = [{"override_id": o.override_id, "partner_id": o.partner_id, "level": o.level, "score": o.score,
                    "reason": o.reason, "expires_at": _day(o.expires_at), "created_by": o.created_by,
                    "created_at": o.created_at.isoformat(timespec="seconds"), "in_force": o.in_force(now)}
                   for o in found]
        table = Table(title=f"{len(found)} override(s)", title_justify="left")
        for col in ("id", "partner", "level / score", "reason", "expires", "by", "in force"):
            table.add_column(col)
        for o in found:
            table.add_row(str(o.override_id), o.partner_id, o.level or f"{o.score:g}", o.reason, _day(o.expires_at),
                          o.created_by, "yes" if o.in_force(now) else "expired")
        _write(format, records, table)

    @override_app.command("remove")
    def override_remove(
        override_id: Annotated[int, typer.Argument(help="The override's id (see `override list --all`)")],
        db: DbOption = None,
    ) -> None:
        """Delete an override."""
        with _hub(db) as hub:
            if not remove_override(hub, override_id):
                raise UsageError(f"no override {override_id}", hint="see the ids with `partnerkpi override list --all`")
        out.print(f"override {override_id} removed")


def _day(instant: datetime | date) -> str:
    return instant.strftime("%Y-%m-%d")
