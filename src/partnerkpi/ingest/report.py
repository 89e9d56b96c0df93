"""What the terminal shows of an import: a progress bar per file, and the summary table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from partnerkpi.ingest.importer import ImportSummary

PHASES = ("fingerprint", "read", "check and write")


@contextmanager
def progress_bar(enabled: bool, console: Console | None = None) -> Iterator[Progress | None]:
    """A Rich progress display on stderr while files are imported, or nothing."""
    if not enabled:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[phase]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console or Console(stderr=True)) as progress:
        yield progress


class Phases:
    """One file's task on the progress display; a no-op without one."""

    def __init__(self, progress: Progress | None, name: str) -> None:
        self.progress = progress
        self.task = progress.add_task(name, total=len(PHASES), phase="waiting") if progress else None

    def phase(self, name: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=PHASES.index(name), phase=name)

    def finish(self, note: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=len(PHASES), phase=note)


def _reasons(s: ImportSummary) -> str:
    if s.skipped_same_file:
        return f"already imported (import {s.import_id}); nothing added"
    text = ", ".join(f"{code} {n}" for code, n in s.rejected_by_reason.items())
    if s.ignored_columns:  # said, not dropped silently: a misspelt column would otherwise vanish
        text += ("; " if text else "") + f"columns not imported: {', '.join(s.ignored_columns)}"
    return text


def summary_table(summaries: Sequence[ImportSummary]) -> Table:
    """The import summaries as a table: rows read, accepted, duplicates, rejected by reason."""
    table = Table(title="Import")
    table.add_column("file")
    table.add_column("kind")
    for name in ("read", "accepted", "duplicates", "rejected"):
        table.add_column(name, justify="right")
    table.add_column("rejected by reason")
    for s in summaries:
        table.add_row(s.source, s.kind, f"{s.rows_read:,}", f"{s.accepted:,}", f"{s.duplicates:,}",
                      f"{s.rejected:,}", _reasons(s))
    return table
