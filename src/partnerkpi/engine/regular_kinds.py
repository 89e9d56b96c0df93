"""The regular KPI kinds: each compiles a catalog entry's `compute` parameters into ibis expressions.

These are the kinds users may use in their own KPI files. The odd KPIs live in `special_kinds.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir

from partnerkpi.engine.context import (
    KEYS,
    Context,
    Partial,
    Ratio,
    Stat,
    Total,
    count_by,
    in_population,
    us_in,
)

Builder = Callable[[Context, dict[str, Any]], Partial]
BUILDERS: dict[str, Builder] = {}


def kind(name: str) -> Callable[[Builder], Builder]:
    """Register a builder under its kind name."""

    def register(fn: Builder) -> Builder:
        BUILDERS[name] = fn
        return fn

    return register


def named_per_partner(ctx: Context, events: Any, where: dict | None = None, sum_of: str | None = None) -> ir.Table:
    """Named events in the periods per (period, partner, seg): `n` rows, and `total` of a property."""
    if not where and not sum_of and events != "activity":
        d = ctx.derived("derived_event_days")
        d = ctx.in_range(d.filter(d.event.isin([events] if isinstance(events, str) else list(events))), "day")
        return ctx.per_partner(d, n=d.n.sum().cast("float64"))
    e = ctx.in_range(ctx.raw_named(events, where))
    measures = {"n": e.count().cast("float64")}
    if sum_of:
        measures["total"] = e[f"p_{sum_of}"].sum().cast("float64")
    return ctx.per_partner(e, **measures)


def in_partner_population(ctx: Context, t: ir.Table) -> ir.Table:
    """Per-partner rows of partners in P, plus (whole-program rows only) the rows with no partner."""
    pop = ctx.partner_population("in").select("period_start", "seg", "partner_id", _in=ibis.literal(True))
    j = t.left_join(pop, ["period_start", "seg", "partner_id"])
    return j.filter(j._in.notnull() | j.partner_id.isnull())


def sum_by(t: ir.Table, column: str, name: str) -> ir.Table:
    """Sum of `column` per (period_start, seg) as `name` (0 over nothing)."""
    agg = t.group_by(KEYS).aggregate(**{name: t[column].sum().cast("float64")})
    return agg.mutate(**{name: agg[name].fill_null(0.0)})


@kind("event_count")
def event_count(ctx: Context, params: dict[str, Any]) -> Partial:
    t = named_per_partner(ctx, params["event"], params.get("where"))
    return Total(t.group_by(KEYS).aggregate(value=t.n.sum(), n=t.n.sum().cast("int64")))


@kind("event_sum")
def event_sum(ctx: Context, params: dict[str, Any]) -> Partial:
    t = named_per_partner(ctx, params["event"], params.get("where"), params["sum"])
    t = t.group_by(KEYS).aggregate(value=t.total.sum(), n=t.n.sum().cast("int64"))
    return Total(t.mutate(value=t.value.fill_null(0.0)))


@kind("per_partner")
def per_partner(ctx: Context, params: dict[str, Any]) -> Partial:
    t = in_partner_population(ctx, named_per_partner(ctx, params["events"], params.get("where"), params.get("sum")))
    num = sum_by(t, "total" if params.get("sum") else "n", "num")
    return Ratio(num, count_by(ctx.partner_population("in"), "den"))


def active_partners(ctx: Context) -> ir.Table:
    """(period_start, seg, partner_id) of partners in P with an activity event in P."""
    act = ctx.in_range(ctx.derived("derived_activity_days"), "day")
    act = act.filter(act.partner_id.notnull())
    act = ctx.per_partner(act, days=act.count())
    return in_population(act.select("period_start", "seg", "partner_id"), ctx.partner_population("in"), "partner_id")


@kind("per_active_partner")
def per_active_partner(ctx: Context, params: dict[str, Any]) -> Partial:
    t = in_partner_population(ctx, named_per_partner(ctx, params["events"], params.get("where")))
    return Ratio(sum_by(t, "n", "num"), count_by(active_partners(ctx), "den"))


@kind("event_ratio")
def event_ratio(ctx: Context, params: dict[str, Any]) -> Partial:
    num_spec, den_spec = params["numerator"], params["denominator"]
    num = named_per_partner(ctx, num_spec["event"], num_spec.get("where"))
    den = named_per_partner(ctx, den_spec["event"], den_spec.get("where"))
    return Ratio(sum_by(num, "n", "num"), sum_by(den, "n", "den"), scale=params.get("scale", 100.0))


@kind("partner_share")
def partner_share(ctx: Context, params: dict[str, Any]) -> Partial:
    pop = ctx.partner_population("in")
    if params["events"] == "activity":
        hit = active_partners(ctx)
    else:
        e = named_per_partner(ctx, params["events"], params.get("where"))
        e = e.filter(e.partner_id.notnull()).select("period_start", "seg", "partner_id")
        hit = in_population(e, pop, "partner_id")
    return Ratio(count_by(hit, "num"), count_by(pop, "den"), scale=100.0)


def users_doing(ctx: Context, events: Any, where: dict | None = None) -> ir.Table:
    """(period_start, seg, user_id) of users in P with at least one of `events` in P (or any activity).

    Only members of the user population count, so the result is a subset of users in P (KPI-SPEC §4)."""
    if where:
        d = ctx.in_range(ctx.raw_named(events, where))
    elif events == "activity":
        d = ctx.in_range(ctx.derived("derived_activity_days"), "day")
    else:
        d = ctx.derived("derived_event_days")
        d = ctx.in_range(d.filter(d.event.isin([events] if isinstance(events, str) else list(events))), "day")
    d = d.filter(d.user_id.notnull())
    d = d.group_by(["period_start", "partner_id", "user_id"]).aggregate(rows=d.count())
    hit = ctx.with_seg(d).select("period_start", "seg", "user_id")
    return in_population(hit, ctx.user_population("in"), "user_id")


@kind("user_share")
def user_share(ctx: Context, params: dict[str, Any]) -> Partial:
    hit = users_doing(ctx, params["events"], params.get("where"))
    return Ratio(count_by(hit, "num"), count_by(ctx.user_population("in"), "den"), scale=100.0)


@kind("users_per_partner")
def users_per_partner(ctx: Context, params: dict[str, Any]) -> Partial:
    hit = users_doing(ctx, params["events"], params.get("where"))
    return Ratio(count_by(hit, "num"), count_by(ctx.partner_population("in"), "den"))


@kind("per_actor")
def per_actor(ctx: Context, params: dict[str, Any]) -> Partial:
    """Events per distinct user doing them; events without a user count in neither part."""
    if params.get("where") or params["event"] == "activity":
        e = ctx.in_range(ctx.raw_named(params["event"], params.get("where")))
        e = e.filter(e.user_id.notnull())
        t = ctx.per_partner(e, n=e.count().cast("float64"), users=e.user_id.nunique().cast("float64"))
    else:
        d = ctx.derived("derived_event_days")
        d = ctx.in_range(d.filter((d.event == params["event"]) & d.user_id.notnull()), "day")
        t = ctx.per_partner(d, n=d.n.sum().cast("float64"), users=d.user_id.nunique().cast("float64"))
    return Ratio(sum_by(t, "n", "num"), sum_by(t, "users", "den"), scale=params.get("scale", 1.0))


@kind("median_since_onboarding")
def median_since_onboarding(ctx: Context, params: dict[str, Any]) -> Partial:
    """Median days from onboarding to each partner's first `event` (first-ever), by that event's period."""
    if params["event"] == "activity":
        a = ctx.derived("derived_activity_days")
        a = a.filter(a.partner_id.notnull() & (a.day < ctx.range_end))
        first = a.group_by("partner_id").aggregate(ts=a.first_ts.min())
    else:
        e = ctx.raw_named(params["event"])
        e = e.filter(e.partner_id.notnull() & (e.ts < ctx.range_end))
        first = e.group_by("partner_id").aggregate(ts=e.ts.min())
    first = ctx.with_seg(first)
    p = ctx.table("partners").select(pid="partner_id", onboarded_at="onboarded_at")
    j = ctx.in_range(first.join(p, first.partner_id == p.pid))
    days = j.ts.delta(j.onboarded_at, unit="microsecond").cast("float64") / us_in("days")
    if params.get("clip_at_zero"):
        days = ibis.greatest(days, 0.0)
    j = j.mutate(days=days)
    return Stat(j.group_by(KEYS).aggregate(value=j.days.median(), n=j.count()))


@kind("object_cycle")
def object_cycle(ctx: Context, params: dict[str, Any]) -> Partial:
    """Median time from an object's first `start` event to its first `end` event, by the end's period.

    The object's segment is its start event's partner: the end event is often logged by staff.
    """
    unit = params.get("unit", "days")
    start, end = ctx.firsts(params["start"]), ctx.firsts(params["end"])
    s = start.select(oid="object_id", started="ts", partner_id="partner_id")
    end = ctx.in_range(end.select("object_id", "ts"))
    j = ctx.with_seg(end.join(s, end.object_id == s.oid))
    j = j.mutate(d=j.ts.delta(j.started, unit="microsecond").cast("float64") / us_in(unit))
    return Stat(j.group_by(KEYS).aggregate(value=j.d.median(), n=j.count()))
