"""`partnerkpi targets init` and `partnerkpi alerts init`: commented starting points for the files that
`review --targets` and `alerts run --rules` read, made from the built-in defaults so they never drift."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from partnerkpi.cli.common import err
from partnerkpi.errors import UsageError

OutOption = Annotated[Path | None, typer.Option("--out", help="Write the template to this file (default: print it)")]
ForceOption = Annotated[bool, typer.Option("--force", help="With --out: replace an existing file")]

targets_app = typer.Typer(help="Targets and band sets over time (read by `review --targets`).", no_args_is_help=True)

TARGETS_HEAD = """\
# partnerkpi targets: edit, then `partnerkpi review --targets targets.yaml` (or set $PARTNERKPI_TARGETS).
# The built-in entries below are read anyway; an entry of yours with the same KPI, segment and
# effective_from replaces one, a later effective_from takes over from that date. A segment's own entry
# beats the program's: e.g.  - {kpi: portal_usage_rate, segment: {type: agency}, effective_from: 2026-07-01,
# value: 60, label: "Agencies"}
"""
JUDGMENT_PLACEHOLDER = """
# judgment: how a KPI without a target or bands is judged against its own past (baseline window and
# tolerance; see the README's "Judgment" settings once your version has them).
"""
ALERTS_HEAD = ("# partnerkpi alert rules: edit, then `partnerkpi alerts run --rules alerts.yaml`"
               " (or set $PARTNERKPI_ALERTS).\n")


def targets_template() -> str:
    """The targets file template: the built-in targets, commented, and where judgment settings go."""
    text = resources.files("partnerkpi.insights").joinpath("defaults/targets.yaml").read_text(encoding="utf-8")
    return TARGETS_HEAD + text + ("" if "judgment:" in text else JUDGMENT_PLACEHOLDER)


def alerts_template() -> str:
    """The alert rules template: the built-in rules with their field reference."""
    text = resources.files("partnerkpi.insights").joinpath("defaults/alerts.yaml").read_text(encoding="utf-8")
    return ALERTS_HEAD + text


def emit(text: str, out: Path | None, force: bool) -> None:
    """Print `text`, or write it to `out` (an existing file only with `force`)."""
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.exists() and not force:
        raise UsageError(f"{out} exists already", hint="choose another --out, or add --force to replace it")
    out.write_text(text, encoding="utf-8")
    err.print(f"wrote {out}", highlight=False)


@targets_app.command("init")
def targets_init(out: OutOption = None, force: ForceOption = False) -> None:
    """Print (or write with --out) a commented targets file to start from."""
    emit(targets_template(), out, force)


def alerts_init(out: OutOption = None, force: ForceOption = False) -> None:
    """Print (or write with --out) a commented alert rules file to start from."""
    emit(alerts_template(), out, force)


def register(app: typer.Typer) -> None:
    """Add `targets init` to `app` (`alerts init` is in the alerts group, cli/alerts.py)."""
    app.add_typer(targets_app, name="targets")
