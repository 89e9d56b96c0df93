"""Component measurements: for all partners at once (ibis over the canonical tables), one raw figure per
component, then that figure as a value and in words (pure)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from partnerkpi.engine.derived import is_activity, last_activity
from partnerkpi.insights.health.config import ComponentConfig

DAY = timedelta(days=1)


# -- measuring ----------------------------------------------------------------------------------------
def utc_instant(at: date | datetime) -> datetime:
    """A naive UTC datetime: a date is its midnight, an aware datetime is converted."""
    if not isinstance(at, datetime):
        return datetime(at.year, at.month, at.day)
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Context:
    """What the component queries read: the tables, the instant, and the start of the history."""

    table: Callable[[str], ir.Table]
    derived: Callable[[str], ir.Table]
    plan: Any
    as_of: datetime
    since: datetime | None


def _events(ctx: Context, name: str, start: datetime) -> ir.Table:
    e = ctx.table("events")
    return e.filter((e.event == name) & e.partner_id.notnull() & (e.ts >= start) & (e.ts < ctx.as_of))


def _q_recency(ctx: Context, c: ComponentConfig) -> ir.Table:
    return last_activity(ctx.table("events"), ctx.plan, ctx.as_of)


def _q_window_counts(event: str) -> Callable[[Context, ComponentConfig], ir.Table]:
    def query(ctx: Context, c: ComponentConfig) -> ir.Table:
        split = ctx.as_of - c.recent_days * DAY
        e = _events(ctx, event, split - c.baseline_days * DAY)
        return e.group_by("partner_id").aggregate(recent=e.count(where=e.ts >= split), base=e.count(where=e.ts < split))

    return query


def _q_user_days(ctx: Context, c: ComponentConfig) -> ir.Table:
    e = ctx.table("events")
    a = e.filter(
        is_activity(e, ctx.plan) & e.partner_id.notnull() & e.user_id.notnull()
        & (e.ts >= ctx.as_of - c.window_days * DAY) & (e.ts < ctx.as_of)
    )
    a = a.select("partner_id", "user_id", day=a.ts.truncate("D")).distinct()
    return a.group_by("partner_id").aggregate(user_days=a.count(), users=a.user_id.nunique())


def _q_tasks(ctx: Context, c: ComponentConfig) -> ir.Table:
    t = ctx.derived("derived_tasks")
    t = t.filter(
        t.partner_id.notnull() & (t.assigned_at < ctx.as_of) & (t.due >= ctx.as_of - c.window_days * DAY)
        & (t.due < ctx.as_of) & (t.cancelled_at.isnull() | (t.cancelled_at >= t.due))
    )
    on_time = t.completed_at.notnull() & (t.completed_at <= t.due)
    return t.group_by("partner_id").aggregate(due=t.count(), done=t.count(where=on_time))


def _q_overdue(ctx: Context, c: ComponentConfig) -> ir.Table:
    t, at = ctx.derived("derived_tasks"), ctx.as_of
    t = t.filter(
        t.partner_id.notnull() & (t.kind == "compliance") & (t.assigned_at < at) & (t.due < at)
        & (t.completed_at.isnull() | (t.completed_at >= at)) & (t.cancelled_at.isnull() | (t.cancelled_at >= at))
    )
    return t.group_by("partner_id").aggregate(n=t.count())


def _q_satisfaction(ctx: Context, c: ComponentConfig) -> ir.Table:
    s = _events(ctx, "Survey Responded", ctx.as_of - c.window_days * DAY)
    s = s.filter(s.user_id.notnull() & s.p_score.notnull() & (s.p_score >= 0) & (s.p_score <= 10))
    latest = ibis.window(group_by="user_id", order_by=[ibis.desc("ts"), ibis.desc("seq")])
    s = s.mutate(_rn=ibis.row_number().over(latest)).filter(lambda r: r._rn == 0)
    return s.group_by("partner_id").aggregate(mean=s.p_score.mean(), n=s.count())


def _q_access(ctx: Context, c: ComponentConfig) -> ir.Table:
    g, u, at = ctx.derived("derived_grants"), ctx.table("users"), ctx.as_of
    g = g.filter(g.holder.notnull() & (g.granted_at < at) & (g.revoked_at.isnull() | (g.revoked_at >= at)))
    gone = u.filter(u.deactivated_at.notnull() & (u.deactivated_at < at)).select(uid="user_id")
    g = g.join(gone, g.holder == gone.uid)
    return g.group_by(partner_id="holder_partner").aggregate(n=g.count())


QUERIES: dict[str, Callable[[Context, ComponentConfig], ir.Table]] = {
    "days_since_activity": _q_recency,
    "login_trend": _q_window_counts("Logged In"),
    "active_user_days": _q_user_days,
    "task_completion": _q_tasks,
    "overdue_compliance": _q_overdue,
    "support_trend": _q_window_counts("Support Requested"),
    "satisfaction": _q_satisfaction,
    "access_hygiene": _q_access,
}


# -- from raw figures to a measured value, in words (pure) ------------------------------------------------
@dataclass(frozen=True)
class Measured:
    """A component's measured value (None: no data), what it is in words, and the reason text if it hurts."""

    value: float | None
    detail: str
    reason: str


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def _covered(lo: datetime, hi: datetime, start: datetime | None) -> float:
    """Days of [lo, hi) at or after `start`."""
    return max(0.0, _days(hi - max(lo, start))) if start is not None else _days(hi - lo)


def short_number(x: float) -> str:
    """A figure in few characters: up to one decimal, no trailing .0."""
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _plural(n: float, word: str) -> str:
    return f"{short_number(n)} {word}{'' if n == 1 else 's'}"


def measure(c: ComponentConfig, raw: Mapping[str, Any], as_of: datetime, start: datetime | None) -> Measured:
    """The measured value of component `c` from its raw figures (columns of its query, None when the
    partner has no row); `start` is the later of the partner's onboarding and the start of the history."""
    def get(key: str, default: float = 0) -> Any:
        v = raw.get(key)
        return default if v is None or (isinstance(v, float) and math.isnan(v)) else v

    if c.measure == "days_since_activity":
        last = raw.get("last")
        if last is not None:
            days = _days(as_of - last)
            return Measured(days, f"last active {days:.0f} days ago", f"no activity for {days:.0f} days")
        days = _covered(as_of - 36500 * DAY, as_of, start)
        return Measured(days, f"no activity in {days:.0f} days of history", f"no activity at all in {days:.0f} days")
    if c.measure in ("login_trend", "support_trend"):
        split = as_of - c.recent_days * DAY
        recent_days = _covered(split, as_of, start)
        base_days = _covered(split - c.baseline_days * DAY, split, start)
        what = "logins" if c.measure == "login_trend" else "support requests"
        if base_days < c.baseline_days / 2 or recent_days <= 0:
            return Measured(None, f"no data: too little history to compare {what}", "")
        recent = get("recent") / recent_days * c.recent_days
        base = get("base") / base_days * c.recent_days
        compare = (f"{short_number(recent)} in the last {c.recent_days} days vs {short_number(base)} per "
                   f"{c.recent_days} days before")
        if c.measure == "support_trend":
            extra = recent - base
            return Measured(extra, compare, f"support requests up: {compare}")
        if base == 0:
            return Measured(None, f"no data: no logins in the {c.baseline_days} days before to compare", "")
        change = 100 * (recent - base) / base
        way = "down" if change < 0 else "up"
        return Measured(change, f"logins {way} {abs(change):.0f} % ({compare})",
                        f"logins {way} {abs(change):.0f} % over {c.recent_days} days ({compare})")
    if c.measure == "active_user_days":
        covered = _covered(as_of - c.window_days * DAY, as_of, start)
        if covered < c.window_days / 2:
            return Measured(None, f"no data: too little history for {c.window_days} days of use", "")
        days, users = int(get("user_days")), int(get("users"))
        per = days / covered * c.window_days
        text = (f"{_plural(days, 'user-day')} of activity in the last {c.window_days} days "
                f"({_plural(users, 'user')})")
        if covered < c.window_days:
            text += f", {short_number(per)} per {c.window_days} days"
        return Measured(per, text, f"little use: {text}")
    if c.measure == "task_completion":
        due, done = int(get("due")), int(get("done"))
        if due == 0:
            return Measured(None, f"no data: no task due in the last {c.window_days} days", "")
        pct = 100 * done / due
        text = f"{done} of {_plural(due, 'task')} due in the last {c.window_days} days done on time ({pct:.0f} %)"
        return Measured(pct, text, text)
    if c.measure == "overdue_compliance":
        n = int(get("n"))
        text = f"{_plural(n, 'overdue compliance task')}"
        return Measured(float(n), text, text)
    if c.measure == "satisfaction":
        n = int(get("n"))
        if n == 0:
            return Measured(None, f"no data: no survey answer in the last {c.window_days} days", "")
        mean = float(get("mean"))
        text = f"satisfaction {mean:.1f} of 10 (latest answers of {_plural(n, 'user')} in {c.window_days} days)"
        return Measured(mean, text, f"low {text}")
    n = int(get("n"))  # access_hygiene
    text = f"{_plural(n, 'grant')} still held by deactivated users"
    return Measured(float(n), text, text)


# -- activity, for the inactive list -------------------------------------------------------------------
def history_start(hub: Any) -> datetime | None:
    """The first activity event: before it the hub recorded no usage, so look-backs do not reach past it."""
    engine = hub.engine
    e = engine.table("events")
    e = e.filter(is_activity(e, hub.plan))
    return python_value(engine.execute(e.aggregate(since=e.ts.min()))["since"].iloc[0])


def python_value(v: Any) -> Any:
    """A DataFrame cell as a plain Python value (NaN and NaT: None; a Timestamp: a datetime)."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v.item() if hasattr(v, "item") else v


def iso_instant(instant: datetime | None) -> str | None:
    """A naive UTC instant as ISO 8601 with a Z (None stays None)."""
    return None if instant is None else instant.strftime("%Y-%m-%dT%H:%M:%SZ")
