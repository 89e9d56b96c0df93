"""The façade: `Hub` holds the store, the tracking plan, the KPI catalog and the clock, and does the work.

The CLI and the web app only build a Hub and call it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from partnerkpi.backends import Backend, duckdb_backend
from partnerkpi.catalog import Catalog, load_catalog
from partnerkpi.catalog.model import KPI
from partnerkpi.catalog.plan import TrackingPlan, load_plan
from partnerkpi.clock import Clock, utc_now
from partnerkpi.engine.compute import Engine
from partnerkpi.engine.derived import DERIVED, data_fingerprint, last_activity, plan_fingerprint
from partnerkpi.engine.periods import Grain, Period, make_period, period_start, periods_between, shift
from partnerkpi.engine.refresh import refresh
from partnerkpi.engine.result import KpiRow
from partnerkpi.engine.results import Appended, DataVersion, Identity, LiveResults
from partnerkpi.errors import UsageError
from partnerkpi.locations import Location, parse_location
from partnerkpi.settings import DEFAULT_MEMORY_LIMIT, TimeBounds
from partnerkpi.store import Store

if TYPE_CHECKING:
    from partnerkpi.access import Memo, PartnerScope
    from partnerkpi.insights.targets import TargetBook

PER_PARTNER = "partner_id"  # `by` value of a scorecard with one segment per partner (the partner pages)
DAY = timedelta(days=1)
# The source of an import the collector's loader made: <db>.spool/[memory-…/]batches/<segment>-<offset>.segment.jsonl
SPOOLED_BATCH = f"%.spool{os.sep}%batches{os.sep}%.segment.jsonl"


def _grain(grain: str | Grain) -> Grain:
    return grain if isinstance(grain, Grain) else Grain.parse(grain)


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
    bounds: TimeBounds = field(default_factory=TimeBounds)  # the instants imports accept
    # Where the KPI expressions run when the canonical tables are not the store's own (PostgreSQL by URL,
    # Spark over a lake); None: the store's DuckDB file, with its rollups.
    source: Backend | None = None
    # Rows kept between data changes (engine/results.py), shared by the hubs of one server; None: compute each time.
    results: LiveResults | None = None
    # A snapshot's answers to the reads a request makes many times (the latest instant, the data version), kept
    # for the snapshot's life (`snapshot`); None: read each time. Under a stream each such read waits for the
    # loader's queries on the database's threads, so a request reads each once.
    snapshot_reads: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    # The store's SQL for `data_version` and `appended` (a PostgreSQL hub says them in its own words).
    VERSION_SQL: ClassVar[str] = (
        "SELECT (SELECT count(*) FROM events), (SELECT coalesce(max(seq), 0) FROM events), "
        "(SELECT concat(count(*), ':', sum(hash(p))) FROM partners p), "
        "(SELECT concat(count(*), ':', sum(hash(u))) FROM users u)")
    APPENDED_SQL: ClassVar[str] = (
        "SELECT count(*), min(ts), max(ts), min(ts) FILTER (WHERE list_contains(?, event) OR "
        "(user_id IS NOT NULL AND NOT list_contains(?, event))), "
        "bool_or(partner_id IS NULL OR object_id IS NOT NULL), list(DISTINCT partner_id) "
        "FROM events WHERE seq > ?")

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
        bounds: TimeBounds | None = None,
    ) -> Hub:
        """Open (creating when new) the DuckDB file `db` with the built-in catalog plus the user's files, and
        the built-in targets plus the user's targets file (TargetsError before anything is opened). A writable
        open rebuilds rollups left stale (an import whose refresh never ran, a changed plan). `db` may also be
        a URL (`partnerkpi.locations`): PostgreSQL, or Spark over a lake."""
        from partnerkpi.insights.targets import TargetBook

        location = parse_location(db)
        if location.kind != "duckdb":
            return open_elsewhere(cls, location, catalog_paths=catalog_paths, plan_path=plan_path, clock=clock,
                                  read_only=read_only, memory_limit=memory_limit, targets_path=targets_path,
                                  bounds=bounds)
        db = location.target
        plan = load_plan(plan_path)
        catalog = load_catalog(tuple(catalog_paths), plan=plan)
        book = TargetBook.load(Path(targets_path), catalog=catalog) if targets_path is not None else None
        store = Store.open(db, plan, read_only=read_only, memory_limit=memory_limit)
        hub = cls(store=store, plan=plan, catalog=catalog, clock=clock, targets=book, bounds=bounds or TimeBounds())
        if not read_only:
            try:
                hub.heal()
            except BaseException:
                store.close()
                raise
        return hub

    @property
    def book(self) -> TargetBook:
        """The targets, band sets and judgment settings in force (the built-in ones when none were given)."""
        if self.targets is None:
            from partnerkpi.insights.targets import TargetBook

            self.targets = TargetBook.load(catalog=self.catalog)
        return self.targets

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def job_lock(self, name: str) -> Iterator[bool]:
        """Whether this process may run background job `name` now: always on a DuckDB file, which one server
        process owns (a PostgreSQL hub, served by several, takes a lock per run)."""
        yield True

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scoped(self, partner_id: str, *, memo: Memo | None = None) -> PartnerScope:
        """What the partner `partner_id` may read of this hub (UnknownPartnerError when there is no such
        partner); `memo(key, make)` puts a cache in front of its reads."""
        from partnerkpi.access import PartnerScope

        return PartnerScope(self, partner_id) if memo is None else PartnerScope(self, partner_id, memo=memo)

    def snapshot(self) -> Hub:
        """This hub reading through a DuckDB connection of its own (its reads see committed data only and never
        wait for a writer's transaction); close it with `close_snapshot`."""
        return replace(self, store=self.store.cursor_view(), snapshot_reads={})

    def close_snapshot(self) -> None:
        """Close the connection of a hub made by `snapshot` (the store's own stays open)."""
        self.store.con.close()

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
        if not self.store.derived.exists():
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
        if not self.store.derived.exists():
            return set()
        return self.store.derived.fresh(data_fingerprint(backend.table("events"), backend.execute, self.plan))

    # -- KPIs ---------------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine on the store's own DuckDB file, reading the derived tables that are fresh (or on the
        hub's `source`, when its data lives elsewhere)."""
        if self.source is not None:
            return self.engine_on(self.source)
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
        """The range a scorecard shows when none is given: `periods` periods up to `end`, by default the end of
        the last complete period (today's period, when there is no data yet)."""
        g = _grain(grain)
        if end is None:
            last = self.last_complete(g)
            end = last.end.date() if last else self.clock().date() + DAY
        return shift(period_start(end - DAY, g), g, 1 - periods).date(), end

    # -- what the data covers (KPI-SPEC §6 Completeness) ---------------------------------------------
    def spool_dir(self) -> Path:
        """Where the collector keeps the raw requests it received: `<db>.spool/` beside the database. Its
        imports are the collector arrivals the watermark counts."""
        if self.store.path == ":memory:":
            import tempfile

            return Path(tempfile.gettempdir()) / "partnerkpi.spool"
        return Path(self.store.path + ".spool")

    def watermark(self) -> datetime | None:
        """The data watermark: the end (the next UTC midnight) of the latest UTC day that holds an event `ts`
        or a collector arrival, whichever is later, but no later than the end of the clock's day; None when
        there is no data. Data up to 2026-10-31 makes it 2026-11-01 00:00, and October complete. File imports
        are not arrivals: a file of old events says nothing about how far the data reaches. Arrivals are found
        by the shape of a spooled batch's name, not by this database's spool path, so a snapshot or a restored
        backup read elsewhere has the same watermark as the server."""
        latest = self._read_once("latest", "SELECT greatest((SELECT max(ts) FROM events), (SELECT max(started_at) "
                                 "FROM imports WHERE source LIKE ? AND rows_read > rejected))", [SPOOLED_BATCH])[0]
        if latest is None:
            return None
        # A timestamp later than today (a wrong clock, 9999-12-31) cannot make a period complete before it ends.
        day = min(latest.date(), self.clock().date())
        return datetime(day.year, day.month, day.day) + DAY

    def now(self) -> datetime:
        """The instant every "now" about the data uses (health scores, at-risk and inactive lists, overdue
        ages, which period alerts judge): the watermark, but never later than the clock; the clock when there
        is no data. Wall-clock matters (sessions, tokens, override expiry, delivery times) keep `clock()`."""
        mark, clock = self.watermark(), self.clock()
        return clock if mark is None else min(mark, clock)

    def last_complete(self, grain: str | Grain) -> Period | None:
        """The last period whose end is at or before the watermark (None when there is no data)."""
        mark = self.watermark()
        if mark is None:
            return None
        g = _grain(grain)
        return make_period(shift(period_start(mark, g), g, -1), g)

    def running_period(self, grain: str | Grain) -> Period | None:
        """The incomplete period the data reaches into (it holds data but ends after the watermark); None
        when the watermark is a period boundary or there is no data."""
        mark = self.watermark()
        if mark is None:
            return None
        g = _grain(grain)
        start = period_start(mark - DAY, g)
        return make_period(start, g) if shift(start, g) > mark else None

    def covered_range(self, grain: str | Grain, start: date, end: date, partial: bool = False
                      ) -> tuple[date, str | None]:
        """The end of [start, end) cut where the data stops, and a note saying so (None when nothing was cut):
        without `partial`, after the last complete period; with it, after the running period. Periods entirely
        after the watermark are never computed (they would read as 0). UsageError when nothing is left."""
        g = _grain(grain)
        last = (self.running_period(g) or self.last_complete(g)) if partial else self.last_complete(g)
        if last is None or last.end.date() >= end:
            return end, None
        mark = self.watermark()
        if last.end.date() <= period_start(start, g).date():
            raise UsageError(
                f"the data ends at {mark:%Y-%m-%d}: no {'' if partial else 'complete '}{g.value} of "
                f"{start} .. {end} is covered",
                hint=f"pick a range before {last.end:%Y-%m-%d}" + ("" if partial else
                                                                   ", or ask for the running period (partial)"))
        what = "the running" if partial else "the last complete"
        return last.end.date(), (f"data as of {mark:%Y-%m-%d}: the range ends with {what} {g.value}, "
                                 f"{last.label}, not at {end}")

    # -- data quality -------------------------------------------------------------------------------
    def imports(self) -> list[dict]:
        """Every import, newest first: source, kind, when, rows read, accepted, duplicates, rejected."""
        return self.store.imports.newest_first()

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
        return self.store.imports.rejected(kind=kind, field=field, import_id=import_id, text=text, limit=limit,
                                           offset=offset)

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

    def data_version(self) -> DataVersion:
        """What the data is now (events appended, partners or users changed, the plan), for results kept
        between reads (engine/results.py)."""
        rows, last, partners, users = self._read_once("version", self.VERSION_SQL)
        return DataVersion(plan_fingerprint(self.plan), rows, last, f"{partners}/{users}")

    def _read_once(self, name: str, sql: str, params: list[Any] | None = None) -> tuple:
        """The one row of `sql`, read on a cursor of its own (pages and the scheduler read from any thread); a
        snapshot reads it once."""
        if self.snapshot_reads is not None and name in self.snapshot_reads:
            return self.snapshot_reads[name]
        with self.store.con.cursor() as cur:
            row = cur.execute(sql, params).fetchall()[0]
        if self.snapshot_reads is not None:
            self.snapshot_reads[name] = row
        return row

    def appended(self, after_seq: int) -> Appended:
        """The events that arrived after arrival number `after_seq`: how many, their first and last `ts`, the
        first `ts` of an activity event among them, and the partners they name (None when one names no
        partner, or an object: tasks, grants, policies are shared across partners)."""
        activity, known = list(self.plan.activity_events), [e.name for e in self.plan.events]
        with self.store.con.cursor() as cur:
            rows, first, last, first_activity, shared, partners = cur.execute(
                self.APPENDED_SQL, [activity, known, after_seq]).fetchall()[0]
        return Appended(rows, first, last, first_activity, None if shared else frozenset(partners or ()))

    def last_event_at(self) -> datetime | None:
        """The latest stored event `ts` (None without events); unlike `watermark` not cut at the clock."""
        with self.store.con.cursor() as cur:
            return cur.execute("SELECT max(ts) FROM events").fetchall()[0][0]

    def has_partner(self, partner_id: str) -> bool:
        """True when the store holds a partner with this id."""
        with self.store.con.cursor() as cur:
            found = cur.execute("SELECT count(*) FROM partners WHERE partner_id = ?", [partner_id]).fetchall()
        return bool(found[0][0])

    def partner_names(self) -> dict[str, str]:
        """Partner id -> its name ('' when it has none), for messages."""
        with self.store.con.cursor() as cur:  # a cursor of its own: the alert scheduler calls it on its thread
            return dict(cur.execute("SELECT partner_id, coalesce(name, '') FROM partners").fetchall())

    def partners(self) -> list[dict]:
        """Every partner with its id, name, onboarding and offboarding instants and traits, by id."""
        cur = self.store.con.execute("SELECT * FROM partners ORDER BY partner_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def last_active(self, before: datetime | None = None, after_seq: int | None = None) -> dict[str, datetime]:
        """Each partner's latest activity event (any of its users), before `before` when given, among the
        events that arrived after arrival number `after_seq` when given; partners without activity are left out."""
        engine = self.engine
        events = engine.table("events")
        if after_seq is not None:
            events = events.filter(events.seq > after_seq)
        df = engine.execute(last_activity(events, self.plan, before))
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
        if self.results is not None:  # before anything reads the data: the kept rows must not be older
            self.results.sync(self.data_version(), self.appended)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            disable=not progress, transient=True,
        ) as bar:
            task = bar.add_task(f"computing {len(chosen)} KPIs x {len(periods)} periods", total=len(chosen))
            book = book or self.book
            span = self._data_span() if judged else (None, None)
            before, after = self._history(grain, periods, span, max(
                [book.judgment.baseline_periods, *(book.judgment.baseline_periods_for(k.id) for k in chosen)]),
            ) if judged else ([], [])
            every = [*before, *periods, *after]
            if self.results is not None:
                return self._kept(chosen, grain, every, periods, by, book, span[1] if judged else None, judged)
            rows = self.engine.compute(chosen, grain, every, by, on_kpi=lambda _: bar.advance(task))
        return self._judged(rows, periods, book, span[1]) if judged else rows

    def _kept(self, kpis: list[KPI], grain: Grain, every: list[Period], periods: list[Period], by: str | None,
              book: TargetBook, last: datetime | None, judged: bool) -> list[KpiRow]:
        """The rows of `every` period from the kept results (computing only what they miss), judged like
        `_judged` when `judged` (kept as long as what the judgment reads is the same)."""
        results = self.results
        assert results is not None

        def compute(chosen: Sequence[KPI], grain: Grain, run: Sequence[Period], by: str | None) -> list[KpiRow]:
            return self.engine.compute(chosen, grain, run, by)

        if not judged:
            return results.rows(kpis, grain, every, by, compute)
        in_baseline = sum(1 for p in every if last is not None and p.start <= last)
        return results.judged(kpis, grain, every, by, compute,
                              lambda rows: self._judged(rows, periods, book, last),
                              (Identity(book), periods[0].start, periods[-1].start, in_baseline))

    def _history(self, grain: Grain, periods: Sequence[Period], span: tuple[datetime | None, datetime | None],
                 window: int) -> tuple[list[Period], list[Period]]:
        """The periods to compute beside `periods` for the baselines: from the one holding the data's first
        event up to `periods`, and after them up to `window` periods from that first one (never past the last
        event). They run in the same compute, which costs about the same as the range alone for the program
        and trait segments (the engine groups by period in one scan)."""
        first, last = span
        if first is None or last is None:
            return [], []
        begin = period_start(first, grain)
        before = periods_between(grain, begin, periods[0].start) if begin < periods[0].start else []
        stop = min(shift(begin, grain, window), shift(period_start(last, grain), grain))
        after = periods_between(grain, periods[-1].end, stop) if periods[-1].end < stop else []
        return before, after

    def _data_span(self) -> tuple[datetime | None, datetime | None]:
        """From the first activity event (when partners started using the hub: grants or policies back-filled
        from before carry no measurement of it) to the last event of any kind, at most the watermark."""
        first, last = self.results.span(self._scan_span) if self.results is not None else self._scan_span()
        mark = self.watermark()  # a stored instant past it (9999-12-31 from before imports had bounds) ends there
        return first, (min(last, mark) if last is not None and mark is not None else last)

    def _scan_span(self) -> tuple[datetime | None, datetime | None]:
        """The first activity event and the last event of any kind, read from the events."""
        activity, known = list(self.plan.activity_events), [e.name for e in self.plan.events]
        with self.store.con.cursor() as cur:
            return cur.execute(
                "SELECT min(ts) FILTER (WHERE list_contains(?, event) OR (user_id IS NOT NULL AND NOT "
                "list_contains(?, event))), max(ts) FROM events", [activity, known]).fetchall()[0]

    def _judged(self, rows: list[KpiRow], periods: Sequence[Period], book: TargetBook, last: datetime | None
                ) -> list[KpiRow]:
        """The rows of `periods`, each judged (KPI-SPEC v2 §6); `rows` run from the data's first period, and
        periods that start after the last event take no part in a baseline."""
        from partnerkpi.insights.judgment import baselines, judge_rows

        found = baselines([r for r in rows if last is not None and r.period_start <= last], book.judgment)
        start, end = periods[0].start, periods[-1].end
        return judge_rows([r for r in rows if start <= r.period_start < end], book, found)


def open_elsewhere(cls: type[Hub], location: Location, **options: object) -> Hub:
    """The hub of a location that is not a DuckDB file: PostgreSQL as the store (`partnerkpi.pg`), or Spark
    over a lake (`partnerkpi.lake`)."""
    if location.kind == "postgres":
        from partnerkpi.pg import open_postgres_hub

        return open_postgres_hub(cls, location, **options)
    from partnerkpi.lake import open_lake_hub

    return open_lake_hub(cls, location, **options)
