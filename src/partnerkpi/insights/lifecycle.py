"""Partner lifecycle and stickiness, as PostHog defines them for people, applied to partners.

A partner is **active** in a period when any of its users (or an event with no user) sent an activity event
in it while the partner was in the period's population (KPI-SPEC §4), so the active partners here are
exactly `active_partner_rate`'s numerator. Per period, each partner is at most one of:

- **new**: active, and this is the first period it was ever active in (keyed, as PostHog does, on the first
  activity, not on `onboarded_at`: a partner onboarded in May that first acts in July is new in July; the
  first period of the data shows every partner active in it as new);
- **returning**: active in this period and in the previous one;
- **resurrecting**: active in this period, not in the previous one, but in some earlier one;
- **dormant**: active in the previous period, not in this one. PostHog draws it as a negative bar; the
  counts here are positive, and `returning + dormant` = the active partners of the previous period.

Stickiness (PostHog's "how many intervals of the range was each entity active in"): over the last N periods
of a range, how many partners were active in exactly k of them, k = 1..N, plus k = 0 for the partners in
the program (in the population of at least one of the N periods) that never were.

Everything is one set-based ibis query over the activity days table, all partners at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import ibis
import ibis.expr.types as ir
from rich.table import Table

from partnerkpi.engine.derived import DERIVED
from partnerkpi.engine.periods import Grain, Period, periods_between
from partnerkpi.engine.result import iso_z
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub

STATES = ("new", "returning", "resurrecting", "dormant")
PROGRAM = ""  # the seg value of whole-program rows



def _step(grain: Grain) -> ir.IntervalScalar:
    """One period of `grain` as an interval (a timestamp plus it is the next period's start)."""
    months = {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}.get(grain)
    return ibis.interval(days=7) if months is None else ibis.interval(months=months)


@dataclass(frozen=True)
class LifecycleRow:
    """The lifecycle counts of one period and segment (`{}`: the whole program); `ids` when asked for."""

    period: str
    period_start: datetime
    period_end: datetime
    segment: dict[str, str]
    new: int = 0
    returning: int = 0
    resurrecting: int = 0
    dormant: int = 0
    ids: dict[str, list[str]] | None = None

    @property
    def active(self) -> int:
        return self.new + self.returning + self.resurrecting

    def to_json(self) -> dict[str, Any]:
        out = {"period": self.period, "period_start": iso_z(self.period_start), "period_end": iso_z(self.period_end),
               "segment": dict(self.segment), "new": self.new, "returning": self.returning,
               "resurrecting": self.resurrecting, "dormant": self.dormant, "active": self.active}
        if self.ids is not None:
            out["ids"] = {s: list(self.ids.get(s, [])) for s in STATES}
        return out


@dataclass(frozen=True)
class Lifecycle:
    """Lifecycle rows for every period of a range, whole program first, then per segment of `by`."""

    grain: str
    by: str | None
    rows: list[LifecycleRow]

    def row(self, period: str, segment: dict[str, str] | None = None) -> LifecycleRow:
        """The row of `period` (a label) and `segment` ({} or None: the whole program)."""
        segment = segment or {}
        found = [r for r in self.rows if r.period == period and r.segment == segment]
        if len(found) != 1:
            raise KeyError(f"no lifecycle row for {period} {segment}")
        return found[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "grain": self.grain, "by": self.by,
            "definition": "PostHog lifecycle at partner level: new (first-ever active period), returning, "
            "resurrecting, dormant (positive counts; chart dormant as negative). Activity counts only while "
            "the partner is in the period's population.",
            "rows": [r.to_json() for r in self.rows],
        }

    def __rich__(self) -> Table:
        t = Table(title=f"Partner lifecycle by {self.grain}", title_justify="left")
        columns = ["period", *(["segment"] if self.by else []), "new", "returning", "resurrecting", "dormant", "active"]
        for c in columns:
            t.add_column(c, justify="left" if c in ("period", "segment") else "right")
        for r in self.rows:
            seg = [", ".join(r.segment.values()) or "all"] if self.by else []
            dormant = f"[red]−{r.dormant}[/]" if r.dormant else "0"
            t.add_row(r.period, *seg, f"[green]{r.new}[/]", str(r.returning), str(r.resurrecting), dormant,
                      f"[bold]{r.active}[/]")
        t.caption = "dormant: active the period before, not in this one (PostHog draws it below zero)"
        return t


@dataclass(frozen=True)
class Stickiness:
    """Partners by the number of the last N periods they were active in: `counts[segment][k]`, k = 0..N."""

    grain: str
    by: str | None
    periods: list[Period]
    counts: dict[str, list[int]] = field(default_factory=dict)  # seg value ("" = program) -> [k=0, ..., k=N]

    @property
    def n(self) -> int:
        return len(self.periods)

    def histogram(self, segment: dict[str, str] | None = None) -> dict[int, int]:
        """{k: partners active in exactly k of the N periods} for a segment ({} or None: the program)."""
        seg = next(iter((segment or {}).values()), PROGRAM)
        return dict(enumerate(self.counts[seg]))

    def to_json(self) -> dict[str, Any]:
        return {
            "grain": self.grain, "by": self.by, "n": self.n, "periods": [p.label for p in self.periods],
            "start": iso_z(self.periods[0].start), "end": iso_z(self.periods[-1].end),
            "definition": "partners active in exactly k of the last n periods (k = 1..n, PostHog stickiness); "
            "k = 0: partners in the program during those periods that were never active",
            "segments": [
                {"segment": {} if seg == PROGRAM else {self.by: seg}, "partners": sum(c),
                 "counts": [{"k": k, "partners": v} for k, v in enumerate(c)]}
                for seg, c in self.counts.items()
            ],
        }

    def __rich__(self) -> Table:
        span = f"{self.periods[0].label} .. {self.periods[-1].label}"
        t = Table(title=f"Stickiness: partners by {self.grain}s active out of {self.n} ({span})", title_justify="left")
        t.add_column("segment" if self.by else "", justify="left")
        for k in range(self.n + 1):
            t.add_column(f"{k}/{self.n}", justify="right")
        t.add_column("partners", justify="right")
        for seg, c in self.counts.items():
            t.add_row(seg or "all", *(str(v) for v in c), str(sum(c)))
        return t


# -- the expressions ---------------------------------------------------------------------------------
def active_periods(hub: Hub, grain: Grain) -> ir.Table:
    """(partner_id, p): every period (all history) in which the partner was active while in its population."""
    engine = hub.engine
    days = engine.materialized("derived_activity_days") if engine.materialized else None
    if days is None:
        days = DERIVED["derived_activity_days"](engine.table("events"), hub.plan)
    days = days.filter(days.partner_id.notnull())
    ap = days.select("partner_id", p=days.day.truncate(grain.truncate_unit).cast("timestamp")).distinct()
    partners = engine.table("partners").select(pid="partner_id", on="onboarded_at", off="offboarded_at")
    j = ap.join(partners, ap.partner_id == partners.pid)
    in_p = (j.on < j.p + _step(grain)) & (j.off.isnull() | (j.off >= j.p))
    return j.filter(in_p).select("partner_id", "p")


def _states(ap: ir.Table, grain: Grain, periods: Sequence[Period]) -> ir.Table:
    """(partner_id, period_start, state) for the periods of the range."""
    step = _step(grain)
    w = ibis.window(group_by="partner_id", order_by="p")
    t = ap.mutate(
        prev=ap.p.lag().over(w),
        next=ap.p.lead().over(w),
        first=ap.p.min().over(ibis.window(group_by="partner_id")),
    )
    state = ibis.cases(
        (t.p == t.first, "new"),
        (t.prev.notnull() & (t.prev + step == t.p), "returning"),
        else_="resurrecting",
    )
    active = t.select("partner_id", period_start=t.p, state=state)
    gone = t.filter(t.next.isnull() | (t.next > t.p + step))
    dormant = gone.select("partner_id", period_start=(gone.p + step).cast("timestamp"), state=ibis.literal("dormant"))
    states = active.union(dormant, distinct=False)
    lo, hi = periods[0].start, periods[-1].end
    return states.filter((states.period_start >= lo) & (states.period_start < hi))


def _with_seg(hub: Hub, t: ir.Table, by: str | None) -> ir.Table:
    program = t.mutate(seg=ibis.literal(PROGRAM))
    if by is None:
        return program
    p = hub.engine.table("partners")
    p = p.select(_pid="partner_id", seg=p[by].cast("string"))
    p = p.filter(p.seg.notnull() & (p.seg != PROGRAM))
    return program.union(t.join(p, t.partner_id == p._pid).drop("_pid"), distinct=False)


def _segments(hub: Hub, by: str | None) -> list[str]:
    if by is None:
        return [PROGRAM]
    if by not in hub.traits():
        raise UsageError(f"unknown partner trait '{by}'", hint=f"segment by one of: {', '.join(hub.traits())}")
    return [PROGRAM, *hub.engine.segments(by)]


def _grain(grain: Grain | str) -> Grain:
    return grain if isinstance(grain, Grain) else Grain.parse(grain)


# -- the public calls --------------------------------------------------------------------------------
def lifecycle(
    hub: Hub, grain: Grain | str, start: date, end: date, by: str | None = None, ids: bool = False
) -> Lifecycle:
    """Lifecycle counts (new, returning, resurrecting, dormant) for every period of [start, end), whole
    program and per segment of the partner trait `by`; with `ids`, the partner ids of each state too."""
    grain = _grain(grain)
    periods = periods_between(grain, start, end)
    segs = _segments(hub, by)
    engine = hub.engine
    states = _with_seg(hub, _states(active_periods(hub, grain), grain, periods), by)
    counts: dict[tuple[datetime, str, str], int] = {}
    members: dict[tuple[datetime, str, str], list[str]] = {}
    if ids:
        df = engine.execute(states.order_by(["period_start", "seg", "state", "partner_id"]))
        for pid, start_, state, seg in df[["partner_id", "period_start", "state", "seg"]].itertuples(index=False):
            key = (_ts(start_), str(seg), str(state))
            members.setdefault(key, []).append(str(pid))
        counts = {k: len(v) for k, v in members.items()}
    else:
        df = engine.execute(states.group_by(["period_start", "seg", "state"]).aggregate(n=states.count()))
        for start_, seg, state, n in df[["period_start", "seg", "state", "n"]].itertuples(index=False):
            counts[(_ts(start_), str(seg), str(state))] = int(n)
    rows = []
    for seg in segs:
        for p in periods:
            values = {s: counts.get((p.start, seg, s), 0) for s in STATES}
            chosen = {s: members.get((p.start, seg, s), []) for s in STATES} if ids else None
            rows.append(LifecycleRow(p.label, p.start, p.end, {} if seg == PROGRAM else {by: seg}, ids=chosen,
                                     **values))
    return Lifecycle(grain.value, by, rows)


def stickiness(
    hub: Hub, grain: Grain | str, start: date, end: date, n: int | None = None, by: str | None = None
) -> Stickiness:
    """How many partners were active in exactly k of the last `n` periods of [start, end) (default: all
    of them), k = 0..n, for the program and per segment of `by`. k = 0 counts the partners in the program
    during those periods (onboarded before their end, not offboarded before their start) never active."""
    grain = _grain(grain)
    periods = periods_between(grain, start, end)
    if n is not None:
        if n < 1:
            raise UsageError(f"stickiness needs at least one period, not {n}", hint="pass n >= 1")
        periods = periods[-n:]
    segs = _segments(hub, by)
    lo, hi = periods[0].start, periods[-1].end
    engine = hub.engine
    ap = active_periods(hub, grain)
    ap = ap.filter((ap.p >= lo) & (ap.p < hi))
    per_partner = ap.group_by("partner_id").aggregate(k=ap.p.nunique())
    p = engine.table("partners")
    population = p.filter((p.onboarded_at < hi) & (p.offboarded_at.isnull() | (p.offboarded_at >= lo)))
    pop = population.select(pid="partner_id")
    j = pop.left_join(per_partner, pop.pid == per_partner.partner_id)
    j = j.select(partner_id=j.pid, k=j.k.fill_null(0))
    t = _with_seg(hub, j, by)
    df = engine.execute(t.group_by(["seg", "k"]).aggregate(partners=t.count()))
    counts = {seg: [0] * (len(periods) + 1) for seg in segs}
    for seg, k, count in df[["seg", "k", "partners"]].itertuples(index=False):
        counts[str(seg)][int(k)] = int(count)
    return Stickiness(grain.value, by, periods, counts)


def _ts(x: Any) -> datetime:
    import pandas as pd

    return pd.Timestamp(x).to_pydatetime().replace(tzinfo=None)
