"""What every KPI expression is built from: the canonical tables seen for one grain, range and segment.

A KPI expression returns tables keyed by (`period_start`, `seg`). `seg` is the empty string for the
whole program; when a trait is given, every partner row (and every event of a partner) appears once
more with its trait value as `seg`, so one pass computes the program and its segments. Partners with
an empty value, and events with no partner, are only in the program rows. Joins between such tables
therefore match on `seg` too, and windows partition by it. All expressions are ibis, so they run
unchanged on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

import ibis
import ibis.expr.types as ir

from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.engine.derived import DERIVED, SESSION_GAP_MINUTES, is_activity, sessions
from partnerkpi.engine.periods import Grain, Period

KEYS = ["period_start", "seg"]
PROGRAM = ""  # the seg value of whole-program rows


@dataclass(frozen=True)
class Ratio:
    """`scale × num / den`, each a table keyed by KEYS with one column (`num`, `den`); missing counts 0."""

    num: ir.Table
    den: ir.Table
    scale: float = 1.0


@dataclass(frozen=True)
class Stat:
    """A median or mean: table keyed by KEYS with `value` and `n`; missing means null over nothing."""

    table: ir.Table


@dataclass(frozen=True)
class Total:
    """A count or a sum: table keyed by KEYS with `value` and `n`; missing means 0 over nothing."""

    table: ir.Table


Partial = Ratio | Stat | Total


def us_in(unit: str) -> float:
    """Microseconds in one `unit` (days, hours, minutes). Durations are exact microsecond deltas: coarser
    `delta` units round differently on DuckDB, PostgreSQL and Spark."""
    return {"days": 86_400_000_000.0, "hours": 3_600_000_000.0, "minutes": 60_000_000.0}[unit]


@dataclass
class Context:
    """The canonical tables restricted to one segment dimension, plus the periods to compute."""

    table: Callable[[str], ir.Table]
    plan: TrackingPlan
    grain: Grain
    periods: Sequence[Period]
    trait: str | None = None
    materialized: Callable[[str], ir.Table | None] | None = None  # fresh derived tables, when there are

    @property
    def range_start(self):
        return self.periods[0].start

    @property
    def range_end(self):
        return self.periods[-1].end

    @cached_property
    def period_table(self) -> ir.Table:
        return ibis.memtable(
            {
                "period_start": [p.start for p in self.periods],
                "period_end": [p.end for p in self.periods],
            },
            schema={"period_start": "timestamp", "period_end": "timestamp"},
        )

    def bucket(self, ts: ir.TimestampValue) -> ir.TimestampValue:
        """The start of the period that holds `ts`."""
        return ts.truncate(self.grain.truncate_unit).cast("timestamp")

    # -- entities -----------------------------------------------------------------------------------
    @cached_property
    def partners(self) -> ir.Table:
        """partner_id, onboarded_at, offboarded_at, seg."""
        p = self.table("partners")
        program = p.select("partner_id", "onboarded_at", "offboarded_at", seg=ibis.literal(PROGRAM))
        if self.trait is None:
            return program
        segments = p.select("partner_id", "onboarded_at", "offboarded_at", seg=p[self.trait].cast("string"))
        segments = segments.filter(segments.seg.notnull() & (segments.seg != PROGRAM))
        return program.union(segments, distinct=False)

    @cached_property
    def users(self) -> ir.Table:
        """Users whose partner is known (and in the segment): user_id, partner_id, created_at,
        deactivated_at, seg, p_onboarded_at, p_offboarded_at."""
        u = self.table("users").select("user_id", "partner_id", "created_at", "deactivated_at")
        p = self.partners.select(
            pid="partner_id", seg="seg", p_onboarded_at="onboarded_at", p_offboarded_at="offboarded_at"
        )
        j = u.join(p, u.partner_id == p.pid)
        columns = ["user_id", "partner_id", "created_at", "deactivated_at", "seg"]
        return j.select(*columns, "p_onboarded_at", "p_offboarded_at")

    def partner_population(self, at: str = "in") -> ir.Table:
        """Partners per period: `in` P, at `end`, or at `start` (KPI-SPEC §4). Keys + partner_id."""
        j = self.partners.cross_join(self.period_table)
        on, off = j.onboarded_at, j.offboarded_at
        if at == "in":
            cond = (on < j.period_end) & (off.isnull() | (off >= j.period_start))
        elif at == "end":
            cond = (on < j.period_end) & (off.isnull() | (off >= j.period_end))
        else:
            cond = (on < j.period_start) & (off.isnull() | (off >= j.period_start))
        return j.filter(cond).select(
            "period_start", "period_end", "seg", "partner_id", "onboarded_at", "offboarded_at"
        )

    def user_population(self, at: str = "in") -> ir.Table:
        """Users per period, `in` P or at `end`, whose partner is in P / at end too. Keys + user_id."""
        j = self.users.cross_join(self.period_table)
        start, end = j.period_start, j.period_end
        if at == "in":
            cond = (
                (j.created_at < end)
                & (j.deactivated_at.isnull() | (j.deactivated_at >= start))
                & (j.p_onboarded_at < end)
                & (j.p_offboarded_at.isnull() | (j.p_offboarded_at >= start))
            )
        else:
            cond = (
                (j.created_at < end)
                & (j.deactivated_at.isnull() | (j.deactivated_at >= end))
                & (j.p_onboarded_at < end)
                & (j.p_offboarded_at.isnull() | (j.p_offboarded_at >= end))
            )
        return j.filter(cond).select("period_start", "period_end", "seg", "user_id", "partner_id")

    # -- events -------------------------------------------------------------------------------------
    def with_seg(self, t: ir.Table) -> ir.Table:
        """`t` (with a partner_id) plus `seg`; segment runs keep only rows of the segment's partners."""
        program = t.mutate(seg=ibis.literal(PROGRAM))
        if self.trait is None:
            return program
        p = self.partners.filter(self.partners.seg != PROGRAM).select(_pid="partner_id", seg="seg")
        return program.union(t.join(p, t.partner_id == p._pid).drop("_pid"), distinct=False)

    @cached_property
    def events(self) -> ir.Table:
        """All events with `seg` and `is_activity`."""
        e = self.with_seg(self.table("events"))
        return e.mutate(is_activity=is_activity(e, self.plan))

    def derived(self, name: str) -> ir.Table:
        """A derived table: its fresh materialized copy if there is one, else the inline expression."""
        table = self.materialized(name) if self.materialized else None
        return table if table is not None else DERIVED[name](self.table("events"), self.plan)

    def sessions(self, gap_minutes: float) -> ir.Table:
        """(user_id, partner_id, start, end, n, seg): activity sessions."""
        if gap_minutes == SESSION_GAP_MINUTES:
            return self.with_seg(self.derived("derived_sessions"))
        return self.with_seg(sessions(self.table("events"), self.plan, gap_minutes))

    def named(self, names: Sequence[str] | str, where: dict | None = None) -> ir.Table:
        """Events with one of `names` (or "activity": every activity event) matching `where`."""
        e = self.events
        if names == "activity":
            e = e.filter(e.is_activity)
        else:
            e = e.filter(e.event.isin([names] if isinstance(names, str) else list(names)))
        for prop, value in (where or {}).items():
            e = e.filter(e[f"p_{prop}"] == value)
        return e

    def raw_named(self, names: Sequence[str] | str, where: dict | None = None) -> ir.Table:
        """Events with one of `names` (or "activity") matching `where`, whatever their partner (no `seg`)."""
        e = self.table("events")
        if names == "activity":
            e = e.filter(is_activity(e, self.plan))
        else:
            e = e.filter(e.event.isin([names] if isinstance(names, str) else list(names)))
        for prop, value in (where or {}).items():
            e = e.filter(e[f"p_{prop}"] == value)
        return e

    def firsts(self, event: str) -> ir.Table:
        """The first `event` of each object (the whole event row)."""
        f = self.derived("derived_object_firsts")
        return f.filter(f.event == event)

    def per_partner(self, t: ir.Table, **measures: ir.Value) -> ir.Table:
        """Aggregate `t` (rows with period_start and partner_id) per (period, partner) first, then attach
        `seg`. Rolling up from there is exact for counts, sums and distinct users or partners, since each
        user and partner is in one segment, and it keeps the segment join off the raw rows."""
        agg = t.group_by(["period_start", "partner_id"]).aggregate(**measures)
        return self.with_seg(agg)

    def in_range(self, t: ir.Table, ts: str = "ts") -> ir.Table:
        """Rows whose `ts` falls in one of the periods, with its `period_start`."""
        t = t.filter((t[ts] >= self.range_start) & (t[ts] < self.range_end))
        return t.mutate(period_start=self.bucket(t[ts]))

    def lookback(self, days: int):
        return self.range_start - timedelta(days=days)


def count_by(t: ir.Table, name: str) -> ir.Table:
    """Rows per (period_start, seg) as float column `name`."""
    return t.group_by(KEYS).aggregate(**{name: t.count().cast("float64")})


def distinct_count_by(t: ir.Table, column: str, name: str) -> ir.Table:
    """Distinct `column` values per (period_start, seg) as float column `name`."""
    return t.group_by(KEYS).aggregate(**{name: t[column].nunique().cast("float64")})


def in_population(t: ir.Table, population: ir.Table, key: str) -> ir.Table:
    """Rows of `t` whose (period_start, key) is in the population."""
    pop = population.select("period_start", key).distinct()
    return t.semi_join(pop, ["period_start", key])
