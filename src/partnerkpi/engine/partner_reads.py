"""One partner's own view: its open tasks, the required policies it has not acknowledged, and where a
value stands among its peers.

The two lookups are ibis expressions over the canonical tables (so they run on every backend) that
follow the KPI-SPEC §4 rules of `overdue_compliance_tasks` and `policy_ack_rate` exactly; they take the
Engine's pair, `table` (a canonical table by name) and `execute` (an expression to a DataFrame):

    engine = hub.engine
    open_tasks(engine.table, engine.execute, "A", datetime(2026, 8, 1))

Instants are naive UTC datetimes (aware ones are converted). The peer figures are plain Python.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import ibis.expr.types as ir
import pandas as pd

from partnerkpi.engine.derived import first_per
from partnerkpi.engine.derived import tasks as derived_tasks

Table = Callable[[str], ir.Table]
Execute = Callable[[ir.Expr], pd.DataFrame]
Direction = Literal["up", "down"]
Position = Literal["top quartile", "above median", "below median"]

DAY = timedelta(days=1)


def _utc(instant: datetime) -> datetime:
    """A naive UTC datetime, as the canonical tables store instants."""
    return instant if instant.tzinfo is None else instant.astimezone(UTC).replace(tzinfo=None)


def _dt(x: Any) -> datetime | None:
    return None if x is None or pd.isna(x) else pd.Timestamp(x).to_pydatetime()


def _records(execute: Execute, expr: ir.Table) -> list[dict[str, Any]]:
    return execute(expr).to_dict("records")


def title_of(properties: Any) -> str | None:
    """The `title` (else `name`) string of a raw properties JSON text; None when there is none."""
    if not isinstance(properties, str):
        return None
    try:
        d = json.loads(properties)
    except ValueError:
        return None
    if not isinstance(d, dict):
        return None
    for key in ("title", "name"):
        if isinstance(d.get(key), str) and d[key].strip():
            return d[key].strip()
    return None


def policy_titles(table: Table, execute: Execute) -> dict[str, str]:
    """Each policy's title (`title`, else `name`, of its first Policy Published), where it has one."""
    e = table("events")
    pub = first_per(e.filter((e.event == "Policy Published") & e.object_id.notnull()), "object_id")
    return {r["object_id"]: t for r in _records(execute, pub.select("object_id", "properties"))
            if (t := title_of(r["properties"])) is not None}


def open_tasks(table: Table, execute: Execute, partner_id: str, at: datetime) -> list[dict[str, Any]]:
    """The partner's tasks open at `at` (assigned before it, neither completed nor cancelled before it),
    overdue first, then by due, then by task id.

    Each: task, kind, title (the `title`, else `name`, property of its first Task Assigned; None without
    one), assigned_at, due, overdue (due < at), days_overdue (whole days past due, so 0
    for less than a day), started (a Task Started before `at`), reminders and last_reminder_at (the
    Reminder Sent events for the task before `at`; None when there is none). A task belongs to the
    partner of its first Task Assigned."""
    at = _utc(at)
    events = table("events")
    t = derived_tasks(events, None)  # type: ignore[arg-type]  # the plan only shares the DERIVED signature
    t = t.filter(
        (t.partner_id == partner_id)
        & (t.assigned_at < at)
        & (t.completed_at.isnull() | (t.completed_at >= at))
        & (t.cancelled_at.isnull() | (t.cancelled_at >= at))
    )
    before = events.filter(events.object_id.notnull() & (events.ts < at))
    sent = before.filter(before.event == "Reminder Sent")
    sent = sent.group_by(r_task="object_id").aggregate(n_sent=sent.count(), last_sent=sent.ts.max())
    started = before.filter(before.event == "Task Started").select(s_task="object_id").distinct()
    first = first_per(events.filter((events.event == "Task Assigned") & events.object_id.notnull()), "object_id")
    first = first.select(f_task="object_id", f_props="properties")
    j = t.left_join(sent, t.task == sent.r_task).left_join(started, t.task == started.s_task)
    j = j.left_join(first, j.task == first.f_task)
    j = j.select(
        "task", "kind", "assigned_at", "due", props=j.f_props,
        started=j.s_task.notnull(), reminders=j.n_sent.fill_null(0), last_reminder_at=j.last_sent,
    )
    out = []
    for r in _records(execute, j):
        due = _dt(r["due"])
        overdue = due < at
        out.append(
            {
                "task": r["task"],
                "kind": None if pd.isna(r["kind"]) else r["kind"],
                "title": title_of(r["props"]),
                "assigned_at": _dt(r["assigned_at"]),
                "due": due,
                "overdue": overdue,
                "days_overdue": (at - due) // DAY if overdue else 0,
                "started": bool(r["started"]),
                "last_reminder_at": _dt(r["last_reminder_at"]),
                "reminders": int(r["reminders"]),
            }
        )
    return sorted(out, key=lambda r: (not r["overdue"], r["due"], r["task"]))


def unacknowledged_policies(table: Table, execute: Execute, partner_id: str, at: datetime) -> list[dict[str, Any]]:
    """Required policies published before `at` that no user of the partner acknowledged before `at`
    (whenever, even before the publication), oldest publication first; [] unless the partner is a
    partner at `at` (onboarded before it, not offboarded before it). As in policy_ack_rate, a policy is
    required when its first Policy Published says `required` = true.

    Each: policy, title (the `title`, else `name`, property of its first Policy Published; None without
    one), published_at, days_since_published (whole days)."""
    at = _utc(at)
    events = table("events")
    p = table("partners")
    p = p.filter(
        (p.partner_id == partner_id) & (p.onboarded_at < at) & (p.offboarded_at.isnull() | (p.offboarded_at >= at))
    )
    pub = first_per(events.filter((events.event == "Policy Published") & events.object_id.notnull()), "object_id")
    pub = pub.filter(pub.p_required.fill_null(False) & (pub.ts < at)).select(
        policy="object_id", published_at="ts", props="properties")
    pairs = p.select("partner_id").cross_join(pub)
    ack = events.filter(
        (events.event == "Policy Acknowledged")
        & (events.partner_id == partner_id)
        & events.user_id.notnull()
        & events.object_id.notnull()
        & (events.ts < at)
    )
    pending = pairs.anti_join(ack, pairs.policy == ack.object_id).select("policy", "published_at", "props")
    out = []
    for r in _records(execute, pending):
        published = _dt(r["published_at"])
        out.append({"policy": r["policy"], "title": title_of(r["props"]), "published_at": published,
                    "days_since_published": (at - published) // DAY})
    return sorted(out, key=lambda r: (r["published_at"], r["policy"]))


def _check(direction: str) -> None:
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")


@dataclass(frozen=True)
class PeerStats:
    """The peers' figures for one KPI: n values, their median, and the mark of the best quarter
    (None when too few peers to keep them anonymous)."""

    n: int
    median: float | None
    top_quartile: float | None


def peer_stats(values: Sequence[float | None], direction: Direction, min_peers: int = 5) -> PeerStats:
    """Median and top-quartile mark of the non-null `values`: the 75th percentile when higher is better
    ("up"), the 25th when lower is ("down"), linear between closest ranks (statistics' "inclusive")."""
    _check(direction)
    kept = [float(v) for v in values if v is not None]
    if len(kept) < max(min_peers, 1):
        return PeerStats(len(kept), None, None)
    if len(kept) == 1:  # min_peers=1: statistics.quantiles wants two points; every quantile is the value
        return PeerStats(1, kept[0], kept[0])
    q1, _, q3 = statistics.quantiles(kept, n=4, method="inclusive")
    return PeerStats(len(kept), statistics.median(kept), q3 if direction == "up" else q1)


def peer_position(value: float | None, stats: PeerStats, direction: Direction) -> Position | None:
    """Where `value` stands, judged in the KPI's direction ("above" means better, so numerically lower
    for "down"): "top quartile" when it reaches the top-quartile mark (inclusive), else "above median"
    when it reaches the median (inclusive), else "below median"; None without a value or figures."""
    _check(direction)
    if value is None or stats.median is None or stats.top_quartile is None:
        return None

    def reaches(mark: float) -> bool:
        return value >= mark if direction == "up" else value <= mark

    if reaches(stats.top_quartile):
        return "top quartile"
    return "above median" if reaches(stats.median) else "below median"
