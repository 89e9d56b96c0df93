"""The façade: `Hub` holds the store, the tracking plan, the KPI catalog and the clock, and does the work.

The CLI and the web app only build a Hub and call it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from partnerkpi.backends import Backend, duckdb_backend
from partnerkpi.catalog import Catalog, load_catalog
from partnerkpi.catalog.model import KPI
from partnerkpi.catalog.plan import TrackingPlan, load_plan
from partnerkpi.clock import Clock, utc_now
from partnerkpi.engine.compute import Engine
from partnerkpi.engine.derived import DERIVED, data_fingerprint, last_activity
from partnerkpi.engine.periods import LATEST_DAY, Grain, period_start, periods_between, shift
from partnerkpi.engine.refresh import refresh
from partnerkpi.engine.result import KpiRow
from partnerkpi.errors import UsageError
from partnerkpi.settings import DEFAULT_MEMORY_LIMIT, TimeBounds
from partnerkpi.store import Store

PER_PARTNER = "partner_id"  # `by` value of a scorecard with one segment per partner (the partner pages)


@dataclass
class Hub:
    """A partner hub's data and its KPIs."""

    store: Store
    plan: TrackingPlan
    catalog: Catalog
    clock: Clock = field(default=utc_now)
    bounds: TimeBounds = field(default_factory=TimeBounds)  # the instants imports accept

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
        bounds: TimeBounds | None = None,
    ) -> Hub:
        """Open (creating when new) the DuckDB file `db` with the built-in catalog plus the user's files.
        A writable open rebuilds rollups left stale (an import whose refresh never ran, a changed plan)."""
        plan = load_plan(plan_path)
        catalog = load_catalog(tuple(catalog_paths), plan=plan)
        store = Store.open(db, plan, read_only=read_only, memory_limit=memory_limit)
        hub = cls(store=store, plan=plan, catalog=catalog, clock=clock, bounds=bounds or TimeBounds())
        if not read_only:
            try:
                hub.heal()
            except BaseException:
                store.close()
                raise
        return hub

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
            progress=progress, clock=self.clock, bounds=self.bounds,
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

    def stale_rollups(self) -> list[str]:
        """The rollups whose fingerprint does not match the data (none on a store that never had any)."""
        backend = duckdb_backend(self.store)
        fresh = self._fresh_derived(backend)
        if "derived_state" not in self.store.tables():
            has_events = self.store.con.execute("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1)").fetchall()
            return list(DERIVED) if has_events[0][0] else []
        return [name for name in DERIVED if name not in fresh]

    def heal(self, *, progress: bool = False) -> list[str]:
        """Rebuild the rollups left stale, e.g. by a crash between an import's commit and its refresh;
        returns their names."""
        stale = self.stale_rollups()
        if stale:
            self.prepare(progress=progress)
        return stale

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
            day = last.date() if last else self.clock().date()
            # a stored instant past the dates ranges may span (from before imports had bounds) is ignored
            end = min(day, LATEST_DAY - timedelta(days=1)) + timedelta(days=1)
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
        if offset < 0 or (limit is not None and limit < 0):
            raise UsageError("a page of rejected rows starts at offset 0 or later and holds 0 or more rows",
                             hint="give offset and limit as whole numbers of 0 or more")
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
    ) -> list[KpiRow]:
        """KPI rows (KPI-SPEC §6) for every period of [start, end), whole program and per `by` segment
        (a partner trait, or PER_PARTNER for one segment per partner)."""
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
            return self.engine.compute(chosen, grain, periods, by, on_kpi=lambda _: bar.advance(task))
