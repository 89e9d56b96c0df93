"""The façade: `Hub` holds the store, the tracking plan, the KPI catalog and the clock, and does the work.

The CLI and the web app only build a Hub and call it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from partnerkpi.backends import Backend, duckdb_backend
from partnerkpi.catalog import Catalog, load_catalog
from partnerkpi.catalog.model import KPI
from partnerkpi.catalog.plan import TrackingPlan, load_plan
from partnerkpi.clock import Clock, utc_now
from partnerkpi.engine.compute import Engine
from partnerkpi.engine.derived import data_fingerprint, last_activity
from partnerkpi.engine.periods import Grain, Period, period_start, periods_between, shift
from partnerkpi.engine.refresh import refresh
from partnerkpi.engine.result import KpiRow
from partnerkpi.errors import UsageError
from partnerkpi.settings import DEFAULT_MEMORY_LIMIT
from partnerkpi.store import Store

if TYPE_CHECKING:
    from partnerkpi.insights.targets import TargetBook

PER_PARTNER = "partner_id"  # `by` value of a scorecard with one segment per partner (the partner pages)


@dataclass
class Hub:
    """A partner hub's data and its KPIs."""

    store: Store
    plan: TrackingPlan
    catalog: Catalog
    clock: Clock = field(default=utc_now)
    # The targets, band sets and judgment settings rows are judged by; None: the built-in ones, loaded
    # on first use (`targets_path` of `open` names the user's file).
    targets: TargetBook | None = None

    @classmethod
    def open(
        cls,
        db: str | os.PathLike[str],
        *,
        catalog_paths: Sequence[Path] = (),
        plan_path: Path | None = None,
        clock: Clock = utc_now,
        read_only: bool = False,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        targets_path: str | os.PathLike[str] | None = None,
    ) -> Hub:
        """Open (creating when new) the DuckDB file `db` with the built-in catalog plus the user's files, and
        the built-in targets plus the user's targets file (TargetsError before anything is opened)."""
        from partnerkpi.insights.targets import TargetBook

        plan = load_plan(plan_path)
        catalog = load_catalog(tuple(catalog_paths), plan=plan)
        book = TargetBook.load(Path(targets_path), catalog=catalog) if targets_path is not None else None
        store = Store.open(db, plan, read_only=read_only, memory_limit=memory_limit)
        return cls(store=store, plan=plan, catalog=catalog, clock=clock, targets=book)

    @property
    def book(self) -> TargetBook:
        """The targets, band sets and judgment settings in force (the built-in ones when none were given)."""
        if self.targets is None:
            from partnerkpi.insights.targets import TargetBook

            self.targets = TargetBook.load(catalog=self.catalog)
        return self.targets

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- data in ------------------------------------------------------------------------------------
    def import_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        kind: str | None = None,
        mapping: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ):
        """Import files into the store (one transaction per file); returns one summary per file."""
        from partnerkpi.ingest import import_files

        summaries = import_files(
            self.store, [Path(p) for p in paths], kind=kind, mapping=Path(mapping) if mapping else None,
            progress=progress,
        )
        if any(s.accepted for s in summaries):
            self.prepare(progress=progress)
        return summaries

    def prepare(self, *, progress: bool = False, full: bool = False) -> None:
        """Bring the rollups up to date: after appends only what the new events touch is recomputed; a
        changed plan, a first run or `full` rebuilds them."""
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      disable=not progress, transient=True) as bar:
            task = bar.add_task("preparing rollups")
            refresh(self.store, full=full, on_table=lambda name: bar.update(
                task, description=f"preparing rollups: {name.removeprefix('derived_')}"))

    def _fresh_derived(self, backend: Backend) -> set[str]:
        if "derived_state" not in self.store.tables():
            return set()
        fingerprint = data_fingerprint(backend.table("events"), backend.execute, self.plan)
        rows = self.store.con.execute("SELECT name FROM derived_state WHERE fingerprint = ?", [fingerprint])
        return {r[0] for r in rows.fetchall()}

    # -- KPIs ---------------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine on the store's own DuckDB file, reading the derived tables that are fresh."""
        backend = duckdb_backend(self.store)
        fresh = self._fresh_derived(backend)
        engine = self.engine_on(backend)
        engine.materialized = lambda name: backend.table(name) if name in fresh else None
        engine.fork = lambda: duckdb_backend(self.store).execute  # a cursor per worker thread
        return engine

    def engine_on(self, backend: Backend) -> Engine:
        """The same KPI expressions on another backend holding the canonical tables (PostgreSQL, Spark)."""
        return Engine(table=backend.table, execute=backend.execute, plan=self.plan)

    def kpi(self, kpi_id: str) -> KPI:
        """One catalog entry (UnknownKPIError with close matches when there is none)."""
        return self.catalog.get(kpi_id)

    def default_range(self, grain: str | Grain, periods: int = 6, end: date | None = None) -> tuple[date, date]:
        """The range a scorecard shows when none is given: `periods` periods up to `end`, by default the
        day after the last event (today, when there are no events)."""
        g = grain if isinstance(grain, Grain) else Grain.parse(grain)
        if end is None:
            last = self.store.con.execute("SELECT max(ts) FROM events").fetchall()[0][0]
            end = (last.date() if last else self.clock().date()) + timedelta(days=1)
        return shift(period_start(end - timedelta(days=1), g), g, 1 - periods).date(), end

    # -- data quality -------------------------------------------------------------------------------
    def imports(self) -> list[dict]:
        """Every import, newest first: source, kind, when, rows read, accepted, duplicates, rejected."""
        cur = self.store.con.execute("SELECT * FROM imports ORDER BY import_id DESC")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def rejected(
        self,
        *,
        kind: str | None = None,
        field: str | None = None,
        import_id: int | None = None,
        text: str | None = None,
        limit: int | None = 200,
        offset: int = 0,
    ) -> tuple[list[dict], int]:
        """Rejected rows matching the filters (newest import first, then file order), and how many match.
        `text` looks in the reason and the source; `limit=None` returns them all."""
        where, args = ["TRUE"], []
        for column, value in (("kind", kind), ("field", field), ("import_id", import_id)):
            if value not in (None, ""):
                where.append(f"{column} = ?")
                args.append(value)
        if text:
            where.append("(reason ILIKE ? OR source ILIKE ?)")
            args += [f"%{text}%", f"%{text}%"]
        condition = " AND ".join(where)
        con = self.store.con
        total = con.execute(f"SELECT count(*) FROM rejected_rows WHERE {condition}", args).fetchall()[0][0]
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        cur = con.execute(
            f"SELECT import_id, source, kind, row_number, field, reason, raw, rejected_at FROM rejected_rows "
            f"WHERE {condition} ORDER BY import_id DESC, row_number{page}",
            args,
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()], total

    def plan_coverage(self) -> list[dict]:
        """Each tracking-plan event with how often and when it was seen (0 and None: never), then the
        custom events seen that the plan does not name."""
        seen = {
            name: (n, first, last)
            for name, n, first, last in self.store.con.execute(
                "SELECT event, count(*), min(ts), max(ts) FROM events GROUP BY event"
            ).fetchall()
        }
        out = []
        for event in self.plan.events:
            n, first, last = seen.pop(event.name, (0, None, None))
            out.append({"event": event.name, "in_plan": True, "activity": event.activity, "count": n,
                        "first_seen": first, "last_seen": last})
        for name, (n, first, last) in sorted(seen.items()):
            out.append({"event": name, "in_plan": False, "activity": None, "count": n,
                        "first_seen": first, "last_seen": last})
        return out

    def partners(self) -> list[dict]:
        """Every partner with its id, name, onboarding and offboarding instants and traits, by id."""
        cur = self.store.con.execute("SELECT * FROM partners ORDER BY partner_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def last_active(self, before: datetime | None = None) -> dict[str, datetime]:
        """Each partner's latest activity event (any of its users), before `before` when given; partners
        without activity are left out."""
        engine = self.engine
        df = engine.execute(last_activity(engine.table("events"), self.plan, before))
        return {pid: last.to_pydatetime() for pid, last in zip(df["partner_id"], df["last"], strict=True)}

    def traits(self) -> list[str]:
        """The partner traits a scorecard can be segmented by."""
        return self.store.trait_columns()

    def scorecard(
        self,
        grain: str | Grain,
        start: date,
        end: date,
        by: str | None = None,
        kpis: Sequence[str] | None = None,
        progress: bool = False,
        book: TargetBook | None = None,
        judged: bool = True,
    ) -> list[KpiRow]:
        """KPI rows (KPI-SPEC §6) for every period of [start, end), whole program and per `by` segment
        (a partner trait, or PER_PARTNER for one segment per partner), each judged against `book` (by
        default the hub's): status good / watch / poor on the basis target, band or baseline. `judged=False`
        skips the judgment and the extra periods its baselines need (statuses stay None), for callers that only
        read values."""
        grain = grain if isinstance(grain, Grain) else Grain.parse(grain)
        chosen = [self.kpi(k) for k in kpis] if kpis else list(self.catalog)
        if by is not None and by != PER_PARTNER and by not in self.traits():
            raise UsageError(
                f"unknown partner trait '{by}'", hint=f"segment by one of: {', '.join(self.traits())}"
            )
        periods = periods_between(grain, start, end)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            disable=not progress, transient=True,
        ) as bar:
            task = bar.add_task(f"computing {len(chosen)} KPIs x {len(periods)} periods", total=len(chosen))
            book = book or self.book
            before, after = self._history(grain, periods, max(
                [book.judgment.baseline_periods, *(book.judgment.baseline_periods_for(k.id) for k in chosen)]),
            ) if judged else ([], [])
            rows = self.engine.compute(chosen, grain, [*before, *periods, *after], by,
                                       on_kpi=lambda _: bar.advance(task))
        return self._judged(rows, periods, book) if judged else rows

    def _history(self, grain: Grain, periods: Sequence[Period], window: int) -> tuple[list[Period], list[Period]]:
        """The periods to compute beside `periods` for the baselines: from the one holding the data's first
        event up to `periods`, and after them up to `window` periods from that first one (never past the last
        event). They run in the same compute, which costs about the same as the range alone for the program
        and trait segments (the engine groups by period in one scan)."""
        first, last = self._data_span()
        if first is None or last is None:
            return [], []
        begin = period_start(first, grain)
        before = periods_between(grain, begin, periods[0].start) if begin < periods[0].start else []
        stop = min(shift(begin, grain, window), shift(period_start(last, grain), grain))
        after = periods_between(grain, periods[-1].end, stop) if periods[-1].end < stop else []
        return before, after

    def _data_span(self) -> tuple[datetime | None, datetime | None]:
        return tuple(self.store.con.execute("SELECT min(ts), max(ts) FROM events").fetchall()[0])  # type: ignore[return-value]

    def _judged(self, rows: list[KpiRow], periods: Sequence[Period], book: TargetBook) -> list[KpiRow]:
        """The rows of `periods`, each judged (KPI-SPEC v2 §6); `rows` run from the data's first period, and
        periods that start after the last event take no part in a baseline."""
        from partnerkpi.insights.judgment import baselines, judge_rows

        last = self._data_span()[1]
        found = baselines([r for r in rows if last is not None and r.period_start <= last], book.judgment)
        start, end = periods[0].start, periods[-1].end
        return judge_rows([r for r in rows if start <= r.period_start < end], book, found)
