"""The regular KPI kinds: each compiles a catalog entry's `compute` parameters into ibis expressions.

These are the kinds users may use in their own KPI files. The odd KPIs live in `special.py`.
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
    distinct_count_by,
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


def per_partner_events(ctx: Context, t: ir.Table) -> ir.Table:
    """Events in P attributed to partners in P, plus (whole-program rows only) events with no partner."""
    pop = ctx.partner_population("in").select("period_start", "seg", "partner_id", _in=ibis.literal(True))
    j = t.left_join(pop, ["period_start", "seg", "partner_id"])
    return j.filter(j._in.notnull() | j.partner_id.isnull())


@kind("event_count")
def event_count(ctx: Context, params: dict[str, Any]) -> Partial:
    from partnerkpi.engine.special import counted

    return counted(ctx.in_range(ctx.named(params["event"], params.get("where"))))


@kind("event_sum")
def event_sum(ctx: Context, params: dict[str, Any]) -> Partial:
    e = ctx.in_range(ctx.named(params["event"], params.get("where")))
    column = e[f"p_{params['sum']}"]
    t = e.group_by(KEYS).aggregate(value=column.sum().cast("float64"), n=e.count())
    return Total(t.mutate(value=t.value.fill_null(0.0)))


@kind("per_partner")
def per_partner(ctx: Context, params: dict[str, Any]) -> Partial:
    e = per_partner_events(ctx, ctx.in_range(ctx.named(params["events"], params.get("where"))))
    if params.get("sum"):
        num = e.group_by(KEYS).aggregate(num=e[f"p_{params['sum']}"].sum().cast("float64"))
        num = num.mutate(num=num.num.fill_null(0.0))
    else:
        num = count_by(e, "num")
    den = count_by(ctx.partner_population("in"), "den")
    return Ratio(num, den)


def active_partners(ctx: Context) -> ir.Table:
    """(period_start, seg, partner_id) of partners in P with an activity event in P."""
    act = ctx.in_range(ctx.activity_days, "day")
    act = act.filter(act.partner_id.notnull()).select("period_start", "seg", "partner_id").distinct()
    return in_population(act, ctx.partner_population("in"), "partner_id")


@kind("per_active_partner")
def per_active_partner(ctx: Context, params: dict[str, Any]) -> Partial:
    e = per_partner_events(ctx, ctx.in_range(ctx.named(params["events"], params.get("where"))))
    return Ratio(count_by(e, "num"), count_by(active_partners(ctx), "den"))


@kind("event_ratio")
def event_ratio(ctx: Context, params: dict[str, Any]) -> Partial:
    num_spec, den_spec = params["numerator"], params["denominator"]
    num = ctx.in_range(ctx.named(num_spec["event"], num_spec.get("where")))
    den = ctx.in_range(ctx.named(den_spec["event"], den_spec.get("where")))
    return Ratio(count_by(num, "num"), count_by(den, "den"), scale=params.get("scale", 100.0))


@kind("partner_share")
def partner_share(ctx: Context, params: dict[str, Any]) -> Partial:
    pop = ctx.partner_population("in")
    if params["events"] == "activity":
        hit = active_partners(ctx)
    else:
        e = ctx.in_range(ctx.named(params["events"], params.get("where")))
        e = e.filter(e.partner_id.notnull()).select("period_start", "seg", "partner_id").distinct()
        hit = in_population(e, pop, "partner_id")
    return Ratio(count_by(hit, "num"), count_by(pop, "den"), scale=100.0)


@kind("per_actor")
def per_actor(ctx: Context, params: dict[str, Any]) -> Partial:
    """Events per distinct user doing them; events without a user count in neither part."""
    e = ctx.in_range(ctx.named(params["event"], params.get("where")))
    e = e.filter(e.user_id.notnull())
    return Ratio(count_by(e, "num"), distinct_count_by(e, "user_id", "den"), scale=params.get("scale", 1.0))


@kind("median_since_onboarding")
def median_since_onboarding(ctx: Context, params: dict[str, Any]) -> Partial:
    if params["event"] == "activity":
        a = ctx.activity_days
        a = a.filter(a.partner_id.notnull() & (a.day < ctx.range_end))
        first = a.group_by(["partner_id", "seg"]).aggregate(ts=a.first_ts.min())
    else:
        e = ctx.named(params["event"])
        e = e.filter(e.partner_id.notnull() & (e.ts < ctx.range_end))
        first = e.group_by(["partner_id", "seg"]).aggregate(ts=e.ts.min())
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
    start = ctx.first_per(ctx.named(params["start"]).filter(lambda r: r.object_id.notnull()), "object_id")
    end = ctx.first_per(ctx.raw_named(params["end"]).filter(lambda r: r.object_id.notnull()), "object_id")
    s = start.select(oid="object_id", started="ts", seg="seg")
    end = ctx.in_range(end.select("object_id", "ts"))
    j = end.join(s, end.object_id == s.oid)
    j = j.mutate(d=j.ts.delta(j.started, unit="microsecond").cast("float64") / us_in(unit))
    return Stat(j.group_by(KEYS).aggregate(value=j.d.median(), n=j.count()))
