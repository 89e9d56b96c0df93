"""The KPIs whose definitions are truly odd (KPI-SPEC §5): sessions, tasks, grants, policies, NPS, ..."""

from __future__ import annotations

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
from partnerkpi.engine.regular_kinds import kind, named_per_partner, sum_by


def counted(t: ir.Table) -> Total:
    """The number of rows per (period, segment) as a count KPI."""
    return Total(t.group_by(KEYS).aggregate(value=t.count().cast("float64"), n=t.count()))


def _days(end: ir.TimestampValue, start: ir.TimestampValue) -> ir.FloatingValue:
    return end.delta(start, unit="microsecond").cast("float64") / us_in("days")


def _with_first(t: ir.Table, key: str, ctx: Context, event: str, alias: str) -> ir.Table:
    """`t` with the ts of the first `event` of the object in column `key` (null when there is none)."""
    f = ctx.firsts(event).select(_oid="object_id", **{alias: "ts"})
    return t.left_join(f, t[key] == f._oid).drop("_oid")


def tasks(ctx: Context) -> ir.Table:
    """A row per assigned task with its seg: task, kind, assigned_at, due, completed_at, cancelled_at."""
    return ctx.with_seg(ctx.derived("derived_tasks"))


def tasks_due(ctx: Context) -> ir.Table:
    """Tasks due in P, not cancelled before their due (a cancellation exactly at due keeps the task)."""
    t = tasks(ctx)
    t = t.filter(t.cancelled_at.isnull() | (t.cancelled_at >= t.due))
    return ctx.in_range(t, "due")


def grants(ctx: Context) -> ir.Table:
    """A row per grant: gid, holder (user), holder_partner, granted_at, revoked_at."""
    return ctx.derived("derived_grants")


def with_holder_offboarding(ctx: Context, g: ir.Table) -> ir.Table:
    """Grants with `seg` of the holder's partner and `offboarded`: the earlier of the user's
    deactivation and the partner's offboarding (the partner's alone for a grant without a user)."""
    p = ctx.partners.select(pid="partner_id", seg="seg", p_off="offboarded_at")
    u = ctx.table("users").select(uid="user_id", u_off="deactivated_at")
    j = g.join(p, g.holder_partner == p.pid).left_join(u, g.holder == u.uid)
    off = ibis.cases(
        (j.u_off.isnull(), j.p_off),
        (j.p_off.isnull(), j.u_off),
        else_=ibis.least(j.u_off, j.p_off),
    )
    return j.mutate(offboarded=off).drop("pid", "uid", "p_off", "u_off")


def open_grants_at_end(ctx: Context) -> ir.Table:
    """Per period: grants granted before end and not revoked before end."""
    g = with_holder_offboarding(ctx, grants(ctx)).cross_join(ctx.period_table)
    return g.filter((g.granted_at < g.period_end) & (g.revoked_at.isnull() | (g.revoked_at >= g.period_end)))


@kind("first_login_rate")
def first_login_rate(ctx: Context, params: dict[str, Any]) -> Partial:
    logins = ctx.derived("derived_event_days")  # period ends are midnights: the day decides "before end"
    logins = logins.filter((logins.event == "Logged In") & logins.user_id.notnull() & (logins.day < ctx.range_end))
    first = logins.group_by(uid="user_id").aggregate(first_login=logins.day.min())
    pop = ctx.user_population("end")
    hit = pop.join(first, pop.user_id == first.uid)
    hit = hit.filter(hit.first_login < hit.period_end)
    return Ratio(count_by(hit, "num"), count_by(pop, "den"), scale=100.0)


@kind("stickiness")
def stickiness(ctx: Context, params: dict[str, Any]) -> Partial:
    act = ctx.in_range(ctx.derived("derived_activity_days"), "day")
    act = act.filter(act.user_id.notnull())
    act = act.group_by(["period_start", "partner_id", "user_id"]).aggregate(days=act.day.nunique())
    users = in_population(ctx.with_seg(act), ctx.user_population("in"), "user_id")
    dau = sum_by(users, "days", "dau").join(ctx.period_table, "period_start")
    num = dau.select(*KEYS, num=dau.dau / _days(dau.period_end, dau.period_start))
    return Ratio(num, count_by(users, "den"), scale=100.0)


@kind("task_completion_rate")
def task_completion_rate(ctx: Context, params: dict[str, Any]) -> Partial:
    due = tasks_due(ctx)
    on_time = due.filter(due.completed_at.notnull() & (due.completed_at <= due.due))
    return Ratio(count_by(on_time, "num"), count_by(due, "den"), scale=100.0)


@kind("reminders_per_task")
def reminders_per_task(ctx: Context, params: dict[str, Any]) -> Partial:
    reminders = named_per_partner(ctx, "Reminder Sent")
    return Ratio(sum_by(reminders, "n", "num"), count_by(tasks_due(ctx), "den"))


@kind("session_minutes")
def session_minutes(ctx: Context, params: dict[str, Any]) -> Partial:
    s = ctx.sessions(float(params.get("gap_minutes", 30)))
    s = ctx.in_range(s, "start")
    s = s.mutate(minutes=s.end.delta(s.start, unit="microsecond").cast("float64") / us_in("minutes"))
    return Stat(s.group_by(KEYS).aggregate(value=s.minutes.mean(), n=s.count()))


@kind("task_abandonment_rate")
def task_abandonment_rate(ctx: Context, params: dict[str, Any]) -> Partial:
    window = ibis.interval(days=int(params.get("window_days", 30)))
    started = ctx.firsts("Task Started")
    t = started.select(task="object_id", partner_id="partner_id", deadline=started.ts + window)
    t = _with_first(t, "task", ctx, "Task Completed", "completed_at")
    t = ctx.with_seg(_with_first(t, "task", ctx, "Task Cancelled", "cancelled_at"))
    t = ctx.in_range(t.filter(t.cancelled_at.isnull() | (t.cancelled_at > t.deadline)), "deadline")
    abandoned = t.filter(t.completed_at.isnull() | (t.completed_at > t.deadline))
    return Ratio(count_by(abandoned, "num"), count_by(t, "den"), scale=100.0)


@kind("repeat_question_rate")
def repeat_question_rate(ctx: Context, params: dict[str, Any]) -> Partial:
    days = int(params.get("window_days", 90))
    sr = ctx.named("Support Requested")
    sr = sr.filter(sr.p_topic.notnull() & (sr.ts < ctx.range_end) & (sr.ts >= ctx.lookback(days)))
    distinct = sr.filter(sr.partner_id.notnull()).select("partner_id", "p_topic", "ts").distinct()
    w = ibis.window(group_by=["partner_id", "p_topic"], order_by="ts")
    distinct = distinct.mutate(prev=distinct.ts.lag().over(w))
    earlier = distinct.select(gp="partner_id", gt="p_topic", gts="ts", prev="prev")
    cur = ctx.in_range(sr)
    j = cur.left_join(
        earlier, (cur.partner_id == earlier.gp) & (cur.p_topic == earlier.gt) & (cur.ts == earlier.gts)
    )
    repeats = j.filter(j.prev.notnull() & (j.prev >= j.ts - ibis.interval(days=days)))
    return Ratio(count_by(repeats, "num"), count_by(cur, "den"), scale=100.0)


@kind("inactive_partners_with_access")
def inactive_partners_with_access(ctx: Context, params: dict[str, Any]) -> Partial:
    days = int(params.get("inactive_days", 90))
    holders = open_grants_at_end(ctx).select("period_start", "period_end", "seg", partner_id="holder_partner")
    holders = holders.distinct()
    act = ctx.derived("derived_activity_days")
    act = act.filter(act.partner_id.notnull() & (act.day >= ctx.lookback(days)) & (act.day < ctx.range_end))
    # the last active day of each partner in each period (lookback periods included): the last one
    # before a period's end is the latest over that period and the ones before it
    last = act.group_by(apid="partner_id", bucket=ctx.bucket(act.day)).aggregate(last_day=act.day.max())
    seen = holders.join(last, (holders.partner_id == last.apid) & (last.bucket <= holders.period_start))
    seen = seen.group_by(["period_start", "period_end", "partner_id"]).aggregate(last_day=seen.last_day.max())
    recent = seen.filter(seen.last_day >= seen.period_end - ibis.interval(days=days))
    inactive = holders.anti_join(recent, ["period_start", "partner_id"])
    return counted(inactive)


@kind("access_review_completion_rate")
def access_review_completion_rate(ctx: Context, params: dict[str, Any]) -> Partial:
    sched = ctx.firsts("Access Review Scheduled")
    r = sched.filter(sched.p_due_at.notnull()).select(task="object_id", partner_id="partner_id", due="p_due_at")
    r = _with_first(r, "task", ctx, "Access Review Completed", "completed_at")
    r = ctx.in_range(ctx.with_seg(r), "due")
    done = r.filter(r.completed_at.notnull() & (r.completed_at <= r.due))
    return Ratio(count_by(done, "num"), count_by(r, "den"), scale=100.0)


@kind("time_to_revoke")
def time_to_revoke(ctx: Context, params: dict[str, Any]) -> Partial:
    g = with_holder_offboarding(ctx, grants(ctx))
    g = ctx.in_range(g.filter(g.revoked_at.notnull()), "revoked_at")
    g = g.filter(g.offboarded.notnull() & (g.offboarded < g.revoked_at))
    g = g.mutate(hours=g.revoked_at.delta(g.offboarded, unit="microsecond").cast("float64") / us_in("hours"))
    return Stat(g.group_by(KEYS).aggregate(value=g.hours.median(), n=g.count()))


@kind("orphaned_grants")
def orphaned_grants(ctx: Context, params: dict[str, Any]) -> Partial:
    g = open_grants_at_end(ctx)
    g = g.filter(g.offboarded.notnull() & (g.offboarded < g.period_end))
    return counted(g)


@kind("policy_ack_rate")
def policy_ack_rate(ctx: Context, params: dict[str, Any]) -> Partial:
    pub = ctx.firsts("Policy Published")
    pub = pub.filter(pub.p_required.fill_null(False) & (pub.ts < ctx.range_end))
    pub = pub.select(policy="object_id", published_at="ts")
    pop = ctx.partner_population("end").select("period_start", "period_end", "seg", "partner_id")
    pairs = pop.cross_join(pub).filter(lambda r: r.published_at < r.period_end)
    ack = ctx.raw_named("Policy Acknowledged")
    ack = ack.filter(ack.user_id.notnull() & ack.partner_id.notnull() & ack.object_id.notnull())
    ack = ack.group_by(apid="partner_id", apol="object_id").aggregate(acked_at=ack.ts.min())
    hit = pairs.join(ack, (pairs.partner_id == ack.apid) & (pairs.policy == ack.apol))
    hit = hit.filter(hit.acked_at < hit.period_end)
    return Ratio(count_by(hit, "num"), count_by(pairs, "den"), scale=100.0)


@kind("overdue_tasks")
def overdue_tasks(ctx: Context, params: dict[str, Any]) -> Partial:
    t = tasks(ctx)
    t = t.filter(t.kind == params["task_kind"]).cross_join(ctx.period_table)
    end = t.period_end
    t = t.filter(
        (t.assigned_at < end)
        & (t.due < end)
        & (t.completed_at.isnull() | (t.completed_at >= end))
        & (t.cancelled_at.isnull() | (t.cancelled_at >= end))
    )
    return counted(t)


@kind("churn_rate")
def churn_rate(ctx: Context, params: dict[str, Any]) -> Partial:
    pop = ctx.partner_population("start")
    gone = pop.filter(pop.offboarded_at.notnull() & (pop.offboarded_at < pop.period_end))
    return Ratio(count_by(gone, "num"), count_by(pop, "den"), scale=100.0)


@kind("nps")
def nps(ctx: Context, params: dict[str, Any]) -> Partial:
    s = ctx.named("Survey Responded")
    s = s.filter(s.user_id.notnull() & s.p_score.notnull() & (s.p_score >= 0) & (s.p_score <= 10))
    s = ctx.in_range(s)
    w = ibis.window(group_by=["period_start", "seg", "user_id"], order_by=[s.ts.desc(), s.seq.desc()])
    last = s.mutate(_rn=ibis.row_number().over(w)).filter(lambda r: r._rn == 0)
    last = last.mutate(
        pts=ibis.cases((last.p_score >= 9, 1.0), (last.p_score <= 6, -1.0), else_=0.0)
    )
    num = last.group_by(KEYS).aggregate(num=last.pts.sum())
    return Ratio(num, count_by(last, "den"), scale=100.0)
