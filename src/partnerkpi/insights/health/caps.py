"""Gates on the health level: rules that keep a partner out of the better levels whatever its score.

A cap names a `kind` of breach, a grace period (`grace_days`) and the best level a partner in breach may
have (`max_level`). Each cap measures, for all partners at once (ibis over the canonical tables), at `as_of`:

- overdue_compliance: compliance tasks open at `as_of` (neither completed nor cancelled before it) whose
  due date lies more than `grace_days` before it (due < as_of − grace: exactly the grace is not a breach);
- unacknowledged_policy: required policies (their first Policy Published says `required` = true) that no
  user of the partner acknowledged before `as_of` (an acknowledgement before the publication counts), waiting
  for more than `grace_days`: since the later of the publication and the partner's onboarding, because a
  partner cannot read a policy before it joins;
- inactivity: no activity event in the `grace_days` before `as_of` (last < as_of − grace, or none at all),
  the same rule as the inactive list (`partnerkpi inactive --days`).

A breach caps the level at `max_level`; the score itself is not changed, and the reason says why ("level
capped at watch: ..." when the cap lowered the level, the bare breach when the level was already as low).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field

from partnerkpi.engine.derived import first_per, last_activity
from partnerkpi.engine.partner_reads import policy_titles

if TYPE_CHECKING:
    from partnerkpi.insights.health.measures import Context

__all__ = ["CAP_QUERIES", "CapConfig", "CapResult", "judge", "policy_titles"]

DAY = timedelta(days=1)
CapKind = Literal["overdue_compliance", "unacknowledged_policy", "inactivity"]
DEFAULT_LABELS = {
    "overdue_compliance": "Compliance gate: overdue tasks",
    "unacknowledged_policy": "Compliance gate: required policies",
    "inactivity": "Activity gate",
}


class CapConfig(BaseModel):
    """A cap rule: the breach it looks for, its grace period in days, the best level a breach allows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CapKind
    max_level: str = Field(min_length=1)
    grace_days: float = Field(14, ge=0)
    label: str | None = None

    @property
    def title(self) -> str:
        return self.label or DEFAULT_LABELS[self.kind]


@dataclass(frozen=True)
class CapResult:
    """A cap for one partner: whether it applied (a breach), what was measured in words, the breach in
    words, whether it lowered the level (the score's level was better than `max_level`), and the reason."""

    kind: str
    label: str
    max_level: str
    grace_days: float
    applied: bool
    detail: str
    breach: str | None = None
    lowered: bool = False
    reason: str | None = None

    def settle(self, lowered: bool) -> CapResult:
        """This result once the level is known: a cap that lowered it says "level capped at ..."."""
        if not self.applied:
            return self
        reason = f"level capped at {self.max_level}: {self.breach}" if lowered else self.breach
        return replace(self, lowered=lowered, reason=reason)


# -- the queries: one row per partner in breach or with data --------------------------------------------
def _q_overdue(ctx: Context, cap: CapConfig) -> ir.Table:
    t, at = ctx.derived("derived_tasks"), ctx.as_of
    t = t.filter(
        t.partner_id.notnull() & (t.kind == "compliance") & (t.assigned_at < at)
        & (t.due < at - cap.grace_days * DAY)
        & (t.completed_at.isnull() | (t.completed_at >= at)) & (t.cancelled_at.isnull() | (t.cancelled_at >= at))
    )
    return t.group_by("partner_id").aggregate(n=t.count(), oldest=t.due.min())


def _q_policies(ctx: Context, cap: CapConfig) -> ir.Table:
    e, at = ctx.table("events"), ctx.as_of
    pub = first_per(e.filter((e.event == "Policy Published") & e.object_id.notnull()), "object_id")
    pub = pub.filter(pub.p_required.fill_null(False) & (pub.ts < at)).select(policy="object_id", published="ts")
    p = ctx.table("partners")
    p = p.filter(p.onboarded_at < at).select("partner_id", "onboarded_at")
    pairs = p.cross_join(pub)
    pairs = pairs.mutate(since=ibis.greatest(pairs.published, pairs.onboarded_at))
    pairs = pairs.filter(pairs.since < at - cap.grace_days * DAY)
    ack = e.filter(
        (e.event == "Policy Acknowledged") & e.partner_id.notnull() & e.user_id.notnull() & e.object_id.notnull()
        & (e.ts < at)
    ).select(a_partner="partner_id", a_policy="object_id").distinct()
    waiting = pairs.anti_join(ack, [pairs.partner_id == ack.a_partner, pairs.policy == ack.a_policy])
    return waiting.group_by("partner_id").aggregate(
        n=waiting.count(), oldest=waiting.since.min(), policy=waiting.policy.argmin(waiting.since)
    )


def _q_inactivity(ctx: Context, cap: CapConfig) -> ir.Table:
    return last_activity(ctx.table("events"), ctx.plan, ctx.as_of)


CAP_QUERIES: dict[str, Callable[[Context, CapConfig], ir.Table]] = {
    "overdue_compliance": _q_overdue,
    "unacknowledged_policy": _q_policies,
    "inactivity": _q_inactivity,
}


# -- judging (pure) ---------------------------------------------------------------------------------------
def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def _grace(cap: CapConfig) -> str:
    g = cap.grace_days
    return f"{g:.0f} days" if float(g).is_integer() else f"{g:g} days"


def judge(cap: CapConfig, raw: Mapping[str, Any], as_of: datetime, start: datetime | None,
          titles: Mapping[str, str]) -> CapResult:
    """Whether `cap` applies to a partner, from its query's row (`raw`, empty when the partner has none);
    `start` is the later of its onboarding and the start of the history; `titles` names policies."""
    def get(key: str) -> Any:
        v = raw.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    def result(applied: bool, detail: str, why: str | None = None) -> CapResult:
        return CapResult(cap.kind, cap.title, cap.max_level, cap.grace_days, applied, detail, why)

    if cap.kind == "overdue_compliance":
        n = int(get("n") or 0)
        if n == 0:
            return result(False, f"no compliance task overdue by more than {_grace(cap)}")
        oldest = _days(as_of - get("oldest"))
        tasks = "1 compliance task" if n == 1 else f"{n} compliance tasks"
        text = f"{tasks} overdue by more than {_grace(cap)}, oldest {oldest:.0f} days"
        return result(True, text, f"{tasks} overdue, oldest {oldest:.0f} days")
    if cap.kind == "unacknowledged_policy":
        n = int(get("n") or 0)
        if n == 0:
            return result(False, f"no required policy unacknowledged for more than {_grace(cap)}")
        waited = _days(as_of - get("oldest"))
        name = titles.get(get("policy"), get("policy"))
        if n == 1:
            text = f"required policy '{name}' unacknowledged for {waited:.0f} days"
        else:
            text = f"{n} required policies unacknowledged, oldest '{name}' for {waited:.0f} days"
        return result(True, text, text)
    last = get("last")  # inactivity
    if last is not None and last >= as_of - cap.grace_days * DAY:
        return result(False, f"active in the last {_grace(cap)}")
    if last is not None:
        idle = _days(as_of - last)
        return result(True, f"no activity for {idle:.0f} days", f"no activity for {idle:.0f} days")
    idle = _days(as_of - start) if start is not None else None
    text = "no activity yet" if idle is None else f"no activity at all in {idle:.0f} days"
    return result(True, text, text)
