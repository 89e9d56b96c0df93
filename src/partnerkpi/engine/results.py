"""KPI rows kept up to date between data changes instead of computed again on every read.

`LiveResults` holds the unjudged rows of every (KPI, grain, segmenting, period) computed so far, and the
span of the data. On each read the caller says what the data is now (`DataVersion`); the rows it can no
longer trust are dropped, the rest are served, and only the missing periods are computed.

What a change invalidates (the refresh key, as Cube and dbt microbatch would call it):
- events only appended, the earliest new `ts` at t: every period that ends after t. A KPI row of a period
  reads the events before the period's end only (KPI-SPEC §4 counts and snapshots are "in P" or "at the
  end of P"), and its `previous`/`change` read the period before, which ends earlier still; so a late
  event invalidates its period and every later one, a live event today only the running period;
- anything else (a changed plan, partners or users, events removed or rewritten): everything.

The rows are the engine's, before judgment: judging reads baselines over many periods and is cheap, so the
Hub judges on each read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from partnerkpi.catalog.model import KPI
from partnerkpi.engine.periods import Grain, Period
from partnerkpi.engine.result import KpiRow

KEPT_CUTS = 256  # invalidations remembered for computations still running when they happened
KEPT_JUDGED = 64


@dataclass(frozen=True)
class DataVersion:
    """What the stored data is: the plan's fingerprint, the events' row count and last arrival number (`seq`),
    and a fingerprint of the partners and users tables."""

    plan: str
    rows: int
    last_seq: int
    entities: str


@dataclass(frozen=True)
class Appended:
    """The events that arrived after an arrival number: how many, their earliest and latest `ts`, the
    earliest `ts` of an activity event among them, and the partners they touch."""

    rows: int
    first: datetime | None
    last: datetime | None
    first_activity: datetime | None
    partners: frozenset[str] | None = None  # the partners they name; None when one names none or an object


class Identity:
    """An object as a dict key by identity (and kept alive by the key), for values that are not hashable."""

    def __init__(self, of: object) -> None:
        self.of = of

    def __hash__(self) -> int:
        return id(self.of)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.of is self.of


Compute = Callable[[Sequence[KPI], Grain, Sequence[Period], str | None], list[KpiRow]]
Span = tuple[datetime | None, datetime | None]
_Key = tuple[str, Grain, str | None]  # (kpi id, grain, by)
_EVERYTHING = datetime.min  # a cut at the beginning of time: every period ends after it


class LiveResults:
    """Unjudged KPI rows per (KPI, grain, `by`, period), invalidated by data changes as the module says;
    safe to share between threads (computations run outside its lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[_Key, dict[datetime, tuple[datetime, list[KpiRow]]]] = {}
        self._version: DataVersion | None = None
        self._span: Span | None = None
        self._generation = 0
        self._cuts: list[tuple[int, datetime]] = []  # (generation, cut): periods ending after cut went stale
        self._judged: dict[tuple, tuple[tuple, list[KpiRow]]] = {}  # key -> (the row lists judged, judged rows)

    @property
    def version(self) -> DataVersion | None:
        """The data version the kept rows are valid for (None before the first sync)."""
        return self._version

    def sync(self, now: DataVersion, appended: Callable[[int], Appended]) -> None:
        """Bring the kept rows to the data version `now`; `appended(seq)` describes the events after `seq`.
        An older version than the one kept (a read that started before another's sync) changes nothing."""
        while True:
            with self._lock:
                old = self._version
                if old == now or (old is not None and now.last_seq < old.last_seq):
                    return
            new = appended(old.last_seq) if old is not None and _only_appended(old, now) else None
            if new is not None and new.rows != now.rows - old.rows:  # type: ignore[union-attr]
                new = None  # rows went missing as others arrived: not a plain append
            with self._lock:
                if self._version != old:  # another sync moved on meanwhile: start again from where it got
                    continue
                if new is None:
                    self._cut(_EVERYTHING)
                    self._span = None
                elif new.first is not None:
                    self._cut(new.first)
                    if self._span is not None:
                        self._span = (_least(self._span[0], new.first_activity), _greatest(self._span[1], new.last))
                self._version = now
                return

    def rows(self, kpis: Sequence[KPI], grain: Grain, periods: Sequence[Period], by: str | None,
             compute: Compute) -> list[KpiRow]:
        """The rows of `kpis` over `periods` (contiguous, in order) in the engine's order, computing only the
        periods not kept: one computation over the span from the first to the last missing period."""
        return _in_engine_order(kpis, periods, self._found(kpis, grain, periods, by, compute))

    def judged(self, kpis: Sequence[KPI], grain: Grain, periods: Sequence[Period], by: str | None,
               compute: Compute, judge: Callable[[list[KpiRow]], list[KpiRow]], token: tuple) -> list[KpiRow]:
        """`judge(rows)` of the rows of `periods`, kept while each period's rows are the very ones judged
        before (none was computed again) and `token` (what else the judgment reads) is the same."""
        found = self._found(kpis, grain, periods, by, compute)
        inputs = tuple(found[k.id].get(p.start) for k in kpis for p in periods)
        key = (tuple(k.id for k in kpis), grain, by, periods[0].start, periods[-1].start, token)
        with self._lock:
            hit = self._judged.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], inputs, strict=True)):
            return hit[1]
        out = judge(_in_engine_order(kpis, periods, found))
        with self._lock:  # the entry holds the lists it was judged from, so their identities stay unique
            self._judged.pop(key, None)
            while len(self._judged) >= KEPT_JUDGED:
                self._judged.pop(next(iter(self._judged)))
            self._judged[key] = (inputs, out)
        return out

    def _found(self, kpis: Sequence[KPI], grain: Grain, periods: Sequence[Period], by: str | None,
               compute: Compute) -> dict[str, dict[datetime, list[KpiRow]]]:
        """Per KPI and period start, the rows kept or just computed."""
        with self._lock:
            generation = self._generation
            kept = {k.id: self._rows.get((k.id, grain, by), {}) for k in kpis}
            missing = [p for p in periods if any(p.start not in kept[k.id] for k in kpis)]
            found = {k.id: {p.start: kept[k.id][p.start][1] for p in periods if p.start in kept[k.id]} for k in kpis}
        if missing:
            run = [p for p in periods if missing[0].start <= p.start <= missing[-1].start]
            made: dict[str, dict[datetime, list[KpiRow]]] = {k.id: {} for k in kpis}
            for row in compute(kpis, grain, run, by):
                made[row.kpi].setdefault(row.period_start, []).append(row)
            self._keep(made, grain, by, {p.start: p.end for p in run}, generation)
            for kpi_id, by_period in made.items():
                found[kpi_id].update(by_period)
        return found

    def span(self, scan: Callable[[], Span]) -> Span:
        """(first activity, last event) of the data: kept up to date by syncs, scanned when unknown."""
        with self._lock:
            if self._span is not None:
                return self._span
            generation = self._generation
        span = scan()
        with self._lock:
            if self._span is None and not self._cuts_since(generation):
                self._span = span
        return span

    def clear(self) -> None:
        """Forget every kept row and the span (the next reads compute them again)."""
        with self._lock:
            self._cut(_EVERYTHING)
            self._span = None

    # -- under the lock ---------------------------------------------------------------------------------
    def _cut(self, at: datetime) -> None:
        """Drop the rows of every period that ends after `at`, and remember it for running computations."""
        self._generation += 1
        self._cuts = [*self._cuts[-KEPT_CUTS + 1:], (self._generation, at)]
        for by_period in self._rows.values():
            for start in [s for s, (end, _) in by_period.items() if end > at]:
                del by_period[start]

    def _cuts_since(self, generation: int) -> list[datetime]:
        if self._cuts and self._cuts[0][0] > generation + 1:  # some were forgotten: assume the worst
            return [_EVERYTHING]
        return [at for g, at in self._cuts if g > generation]

    def _keep(self, made: dict[str, dict[datetime, list[KpiRow]]], grain: Grain, by: str | None,
              ends: dict[datetime, datetime], generation: int) -> None:
        """Keep what a computation begun at `generation` made, except periods invalidated meanwhile."""
        with self._lock:
            cuts = self._cuts_since(generation)
            cut = min(cuts) if cuts else None
            for kpi_id, by_period in made.items():
                slot = self._rows.setdefault((kpi_id, grain, by), {})
                for start, rows in by_period.items():
                    if cut is None or ends[start] <= cut:
                        slot[start] = (ends[start], rows)


def _only_appended(old: DataVersion, now: DataVersion) -> bool:
    return old.plan == now.plan and old.entities == now.entities and now.rows >= old.rows


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _in_engine_order(kpis: Sequence[KPI], periods: Sequence[Period],
                     found: dict[str, dict[datetime, list[KpiRow]]]) -> list[KpiRow]:
    """Rows as `Engine.compute` orders them: by KPI, then segment (program first), then period."""
    out: list[KpiRow] = []
    for kpi in kpis:
        by_segment: dict[tuple, list[KpiRow]] = {}
        for period in periods:
            for row in found[kpi.id].get(period.start, []):
                by_segment.setdefault(tuple(sorted(row.segment.items())), []).append(row)
        for rows in by_segment.values():
            out.extend(rows)
    return out
