"""The façade: `Hub(store, catalog, plan, clock)` does the work; the CLI and the web app only build it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from partnerkpi.catalog.plan import TrackingPlan, load_plan
from partnerkpi.store import Store

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Hub:
    """A partner hub's data and its KPIs."""

    store: Store
    plan: TrackingPlan
    catalog: object = None  # partnerkpi.catalog.Catalog, filled in by open()
    clock: Clock = field(default=utc_now)

    @classmethod
    def open(
        cls,
        db: str | os.PathLike[str],
        *,
        catalog_paths: Sequence[Path] = (),
        plan_path: Path | None = None,
        clock: Clock = utc_now,
        read_only: bool = False,
    ) -> Hub:
        """Open (creating when new) the DuckDB file `db` with the built-in catalog plus the user's files."""
        plan = load_plan(plan_path)
        store = Store.open(db, plan, read_only=read_only)
        return cls(store=store, plan=plan, clock=clock)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Filled in as the engine lands:
    # import_files(paths, kind=None, mapping=None, progress=False) -> list[ImportSummary]
    # scorecard(grain, start: date, end: date, by=None, kpis=None) -> list[KpiRow]
    def scorecard(self, grain: str, start: date, end: date, by: str | None = None,
                  kpis: Sequence[str] | None = None):  # pragma: no cover - replaced by the engine
        raise NotImplementedError
