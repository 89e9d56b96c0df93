"""Derived tables: rollups many KPIs share, defined once as ibis expressions over `events`.

They are computed inline on any backend, or read from a materialized copy when one is fresh (the
DuckDB store materializes them after each import; see `Hub.prepare`). A copy is fresh when its
fingerprint (the events' row count and last arrival number, and the plan's activity vocabulary)
matches the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from partnerkpi.catalog.plan import TrackingPlan

SESSION_GAP_MINUTES = 30  # the materialized sessions use the catalog's gap; other gaps are computed inline


def is_activity(e: ir.Table, plan: TrackingPlan) -> ir.BooleanValue:
    """Activity events (KPI-SPEC §3): the plan says so, or a custom event with a user."""
    return e.event.isin(list(plan.activity_events)) | (e.event.notin(list(plan.names)) & e.user_id.notnull())


def last_activity(events: ir.Table, plan: TrackingPlan, before: datetime | None = None) -> ir.Table:
    """(partner_id, last): each partner's latest activity event, before `before` when given."""
    a = events.filter(is_activity(events, plan) & events.partner_id.notnull())
    if before is not None:
        a = a.filter(a.ts < before)
    return a.group_by("partner_id").aggregate(last=a.ts.max())


def activity_days(events: ir.Table, plan: TrackingPlan) -> ir.Table:
    """One row per (partner, user, UTC day) with activity: first_ts, n. Period edges are midnights, so
    a day lies wholly inside one period of every grain."""
    a = events.filter(is_activity(events, plan))
    a = a.mutate(day=a.ts.truncate("D").cast("timestamp"))
    return a.group_by(["partner_id", "user_id", "day"]).aggregate(first_ts=a.ts.min(), n=a.count())


def sessions(events: ir.Table, plan: TrackingPlan, gap_minutes: float = SESSION_GAP_MINUTES) -> ir.Table:
    """Sessions per user over all the data: a gap over `gap_minutes` starts a new one (exactly the gap
    continues it). Columns: user_id, partner_id, start, end.

    One window finds the starts (the gap to the previous event); the previous event of a start is the
    end of the session before it, so a second window over the starts alone closes every session."""
    gap_us = float(gap_minutes) * 60_000_000
    a = events.filter(is_activity(events, plan) & events.user_id.notnull())
    a = a.select("user_id", "partner_id", "ts", "seq")
    a = a.mutate(prev=a.ts.lag().over(ibis.window(group_by="user_id", order_by=["ts", "seq"])))
    starts = a.filter(a.prev.isnull() | (a.ts.delta(a.prev, unit="microsecond") > gap_us))
    last = a.group_by(last_user="user_id").aggregate(last_ts=a.ts.max())
    w = ibis.window(group_by="user_id", order_by=["ts", "seq"])
    starts = starts.mutate(next_prev=starts.prev.lead().over(w))
    starts = starts.join(last, starts.user_id == last.last_user)
    return starts.select(
        "user_id", "partner_id", start=starts.ts, end=starts.next_prev.fill_null(starts.last_ts)
    )


def first_per(t: ir.Table, key: str | list[str]) -> ir.Table:
    """The first row per `key`: earliest ts, ties broken by arrival order (seq)."""
    w = ibis.window(group_by=key, order_by=["ts", "seq"])
    return t.mutate(_rn=ibis.row_number().over(w)).filter(lambda r: r._rn == 0).drop("_rn")


def first_ts(events: ir.Table, event: str, alias: str) -> ir.Table:
    """(oid, alias): the earliest `event` per object, whatever its partner."""
    e = events.filter((events.event == event) & events.object_id.notnull())
    return e.group_by(oid="object_id").aggregate(**{alias: e.ts.min()})


def with_first(t: ir.Table, key: str, events: ir.Table, event: str, alias: str) -> ir.Table:
    """`t` with the earliest `event` of the object in column `key` (null when there is none)."""
    f = first_ts(events, event, alias)
    return t.left_join(f, t[key] == f.oid).drop("oid")


def tasks(events: ir.Table, plan: TrackingPlan) -> ir.Table:
    """A row per task with a Task Assigned (the first one counts): task, partner_id, kind, assigned_at,
    due (`due_at`, else assigned + 30 days), completed_at and cancelled_at (the first of each)."""
    assigned = first_per(events.filter((events.event == "Task Assigned") & events.object_id.notnull()), "object_id")
    t = assigned.select(
        task="object_id",
        partner_id="partner_id",
        kind="p_kind",
        assigned_at="ts",
        due=assigned.p_due_at.fill_null(assigned.ts + ibis.interval(days=30)),
    )
    t = with_first(t, "task", events, "Task Completed", "completed_at")
    return with_first(t, "task", events, "Task Cancelled", "cancelled_at")


def grants(events: ir.Table, plan: TrackingPlan) -> ir.Table:
    """A row per grant: gid, holder (the user of the first Access Granted), holder_partner, granted_at,
    revoked_at (the first Access Revoked)."""
    g = events.filter((events.event == "Access Granted") & events.object_id.notnull() & events.partner_id.notnull())
    g = first_per(g, "object_id")
    g = g.select(gid="object_id", holder="user_id", holder_partner="partner_id", granted_at="ts")
    return with_first(g, "gid", events, "Access Revoked", "revoked_at")


def event_days(events: ir.Table, plan: TrackingPlan) -> ir.Table:
    """Events per (partner, user, UTC day, event name): n. Counts of named events read this instead of
    the raw rows (a day lies wholly inside one period of every grain)."""
    e = events.mutate(day=events.ts.truncate("D").cast("timestamp"))
    return e.group_by(["partner_id", "user_id", "day", "event"]).aggregate(n=e.count())


def object_firsts(events: ir.Table, plan: TrackingPlan) -> ir.Table:
    """The first event (earliest ts, then arrival) of each name for each object: the whole row."""
    return first_per(events.filter(events.object_id.notnull()), ["event", "object_id"])


DERIVED: dict[str, Callable[[ir.Table, TrackingPlan], ir.Table]] = {
    "derived_event_days": event_days,
    "derived_object_firsts": object_firsts,
    "derived_activity_days": activity_days,
    "derived_sessions": sessions,
    "derived_tasks": tasks,
    "derived_grants": grants,
}

# Each derived row depends only on the events that share one key with it, so after an append only the
# keys the new events carry need recomputing: (the key of an event, the matching column of the table).
DayKey = Callable[[ir.Table], ir.Value]
REFRESH_KEYS: dict[str, tuple[DayKey, str]] = {
    "derived_event_days": (lambda e: e.ts.truncate("D").cast("timestamp"), "day"),
    "derived_activity_days": (lambda e: e.ts.truncate("D").cast("timestamp"), "day"),
    "derived_object_firsts": (lambda e: e.object_id, "object_id"),
    "derived_sessions": (lambda e: e.user_id, "user_id"),
    "derived_tasks": (lambda e: e.object_id, "task"),
    "derived_grants": (lambda e: e.object_id, "gid"),
}


def affected_events(
    events: ir.Table, name: str, after_seq: int, days: tuple[datetime, datetime] | None = None
) -> tuple[ir.Table, ir.Table]:
    """The keys that events arrived after `after_seq` carry for derived table `name`, and all the events
    with those keys (what the table's rows for those keys are computed from). `days`: the first and last
    UTC day of the new events, which bounds the day-keyed scopes so that storage can skip the rest."""
    key_of, column = REFRESH_KEYS[name]
    new = events.filter(events.seq > after_seq)
    keys = new.select(_key=key_of(new)).filter(lambda t: t._key.notnull()).distinct()
    if column == "day" and days is not None:
        events = events.filter((events.ts >= days[0]) & (events.ts < days[1] + timedelta(days=1)))
    tagged = events.mutate(_key=key_of(events))
    return keys, tagged.semi_join(keys, "_key").drop("_key")


def plan_fingerprint(plan: TrackingPlan) -> str:
    """What the derived tables depend on in the plan: the event names and which of them are activity."""
    text = json.dumps([sorted(plan.names), sorted(plan.activity_events)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_fingerprint(events: ir.Table, execute: Callable[[ir.Expr], object], plan: TrackingPlan) -> str:
    """The fingerprint of the events as they are now, under this plan: plan:rows:last arrival number."""
    df = execute(events.aggregate(rows=events.count(), last=events.seq.max()))
    rows, last = df["rows"].iloc[0], df["last"].iloc[0]
    return f"{plan_fingerprint(plan)}:{int(rows)}:{0 if last is None or last != last else int(last)}"


def appended_since(old: str, new: str, count_after: Callable[[int], int]) -> int | None:
    """The arrival number after which events were only appended between fingerprints `old` and `new`
    (None when the plan changed or rows were not simply appended: rebuild in full)."""
    old_plan, old_rows, old_last = old.split(":")
    new_plan, new_rows, _ = new.split(":")
    if old_plan != new_plan or int(new_rows) < int(old_rows):
        return None
    return int(old_last) if count_after(int(old_last)) == int(new_rows) - int(old_rows) else None
