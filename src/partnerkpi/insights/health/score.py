"""Scoring: each component scored through its points, weighted into a score and a level, the caps applied,
the reasons in words, and a manual override in force winning over both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from itertools import pairwise
from typing import Any

import ibis.expr.types as ir

from partnerkpi.engine.derived import grants as derived_grants
from partnerkpi.engine.derived import tasks as derived_tasks
from partnerkpi.engine.partner_reads import policy_titles
from partnerkpi.insights.health.caps import CAP_QUERIES, CapResult, judge
from partnerkpi.insights.health.config import HealthConfig, load_config
from partnerkpi.insights.health.measures import (
    QUERIES,
    Context,
    history_start,
    iso_instant,
    measure,
    python_value,
    short_number,
    utc_instant,
)
from partnerkpi.insights.health.overrides import Override, active_overrides


def score_of(points: Sequence[tuple[float, float]], value: float) -> float:
    """`value` scored through `points`: linear between two points, the end score beyond either end."""
    if value <= points[0][0]:
        return float(points[0][1])
    for (x0, y0), (x1, y1) in pairwise(points):
        if value <= x1:
            return y0 + (y1 - y0) * (value - x0) / (x1 - x0)
    return float(points[-1][1])


# -- results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComponentScore:
    """One component for one partner: the measured value (None: no data), its score, weight and
    contribution (weight × score / Σ weights), what was measured in words, and the reason when it hurts."""

    name: str
    label: str
    measured: float | None
    score: float
    weight: float
    contribution: float
    detail: str
    reason: str | None = None
    kpi: str | None = None

    @property
    def has_data(self) -> bool:
        return self.measured is not None


@dataclass(frozen=True)
class HealthScore:
    """A partner's health at `as_of`: the score and level (an override's when one is in force), the
    computed ones, the components, and the reasons (worst loss first)."""

    partner_id: str
    name: str | None
    traits: dict[str, Any]
    as_of: datetime
    score: float
    level: str
    computed_score: float
    computed_level: str
    components: tuple[ComponentScore, ...]
    reasons: tuple[str, ...]
    override: Override | None = None
    caps: tuple[CapResult, ...] = ()

    @property
    def capped(self) -> bool:
        """Whether any cap applied (the computed level is then at best the cap's `max_level`)."""
        return any(c.applied for c in self.caps)

    @property
    def hurting(self) -> list[ComponentScore]:
        """The components named in the reasons, worst loss (weight × (100 − score)) first."""
        return sorted((c for c in self.components if c.reason),
                      key=lambda c: (-c.weight * (100 - c.score), c.name))

    @property
    def reason_text(self) -> str:
        """The reasons in one line ("logins down 60 % ...; 3 overdue compliance tasks")."""
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["as_of"] = iso_instant(self.as_of)
        if self.override is not None:
            d["override"] = {**asdict(self.override), "expires_at": iso_instant(self.override.expires_at),
                             "created_at": iso_instant(self.override.created_at)}
        return d


# -- the scores ---------------------------------------------------------------------------------------
def health_scores(
    hub: Any,
    as_of: date | datetime,
    config: HealthConfig | None = None,
    *,
    partners: Sequence[str] | None = None,
    overrides: bool = True,
) -> list[HealthScore]:
    """The health of every partner in the program at `as_of` (onboarded before it, not offboarded before
    it), by partner id; `partners` keeps only those; `overrides=False` ignores manual overrides."""
    config = config or load_config(catalog=hub.catalog)
    as_of = utc_instant(as_of)
    engine = hub.engine
    materialized = engine.materialized or (lambda name: None)
    inline = {"derived_tasks": derived_tasks, "derived_grants": derived_grants}

    def derived(name: str) -> ir.Table:
        found = materialized(name)
        return found if found is not None else inline[name](table("events"), hub.plan)

    since = history_start(hub)
    tables: dict[str, ir.Table] = {}

    def table(name: str) -> ir.Table:  # each lookup reads the schema: once per call is enough
        return tables[name] if name in tables else tables.setdefault(name, engine.table(name))

    ctx = Context(table, derived, hub.plan, as_of, since)
    traits = [t for t in hub.traits() if t != "partner_id"]
    p = table("partners")
    p = p.filter((p.onboarded_at < as_of) & (p.offboarded_at.isnull() | (p.offboarded_at >= as_of)))
    if partners is not None:
        p = p.filter(p.partner_id.isin(list(partners)))
    joined = p.select("partner_id", "name", "onboarded_at", *traits)
    for i, c in enumerate(config.components.values()):
        q = QUERIES[c.measure](ctx, c)
        q = q.rename({f"c{i}__{col}": col for col in q.columns})
        joined = joined.left_join(q, joined.partner_id == q[f"c{i}__partner_id"]).drop(f"c{i}__partner_id")
    for i, cap in enumerate(config.caps):
        q = CAP_QUERIES[cap.kind](ctx, cap)
        q = q.rename({f"k{i}__{col}": col for col in q.columns})
        joined = joined.left_join(q, joined.partner_id == q[f"k{i}__partner_id"]).drop(f"k{i}__partner_id")
    df = engine.execute(joined.order_by("partner_id"))
    titles = (policy_titles(table, engine.execute)
              if any(c.kind == "unacknowledged_policy" for c in config.caps) else {})
    # An override's expiry is a date on the wall calendar, not in the data: judged at the clock, not at as_of.
    in_force = active_overrides(hub, utc_instant(hub.clock())) if overrides else {}
    out = []
    for row in df.to_dict("records"):
        onboarded = python_value(row["onboarded_at"])
        start = max(onboarded, since) if since is not None and onboarded is not None else (onboarded or since)
        raws = [_prefixed(row, f"c{i}__") for i in range(len(config.components))]
        caps = tuple(judge(cap, _prefixed(row, f"k{i}__"), as_of, start, titles) for i, cap in enumerate(config.caps))
        out.append(
            _score_partner(config, row["partner_id"], row["name"], {t: python_value(row[t]) for t in traits}, as_of,
                           start, raws, in_force.get(row["partner_id"]), caps)
        )
    return out


def _prefixed(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): python_value(v) for k, v in row.items() if k.startswith(prefix)}


def _score_partner(
    config: HealthConfig,
    partner_id: str,
    name: str | None,
    traits: dict[str, Any],
    as_of: datetime,
    start: datetime | None,
    raws: Sequence[Mapping[str, Any]],
    override: Override | None,
    caps: Sequence[CapResult] = (),
) -> HealthScore:
    total_weight = sum(c.weight for c in config.components.values())
    comps: list[ComponentScore] = []
    for (cname, c), raw in zip(config.components.items(), raws, strict=True):
        m = measure(c, raw, as_of, start)
        s = config.neutral_score if m.value is None else score_of(c.points, m.value)
        detail = m.detail if m.value is not None else f"{m.detail} (neutral score {short_number(config.neutral_score)})"
        hurts = m.value is not None and s < config.reason_below
        comps.append(ComponentScore(cname, c.label or cname, m.value, s, c.weight, c.weight * s / total_weight,
                                    detail, m.reason if hurts else None, c.kpi))
    computed = sum(c.weight * c.score for c in comps) / total_weight
    computed_level = config.level_of(computed)
    settled = []
    for cap in caps:
        lowered = cap.applied and config.worse(computed_level, cap.max_level) != computed_level
        settled.append(cap.settle(lowered))
    for cap in caps:
        if cap.applied:
            computed_level = config.worse(computed_level, cap.max_level)
    score, level = computed, computed_level
    if override is not None:  # a person's judgment wins over the caps; their reasons stay listed
        score = override.score if override.score is not None else score
        level = override.level if override.level is not None else config.level_of(score)
    h = HealthScore(partner_id, name, traits, as_of, score, level, computed, computed_level, tuple(comps),
                    (), override, tuple(settled))
    # A breached cap already names what the component of the same measure would say in other words.
    said = {m for cap in settled if cap.reason for m in CAP_REPEATS.get(cap.kind, ())}
    repeated = {name for name, c in config.components.items() if c.measure in said}
    reasons = [c.reason for c in settled if c.reason] + [
        c.reason for c in h.hurting if c.reason and c.name not in repeated]
    return replace(h, reasons=tuple(dict.fromkeys(reasons)))  # a breach and a component can say the same


# The component measures whose reasons a breached cap of each kind repeats.
CAP_REPEATS = {"overdue_compliance": ("overdue_compliance",), "inactivity": ("days_since_activity", "active_user_days")}


def default_as_of(hub: Any) -> datetime:
    """When no date is given: the data's now (`Hub.now`: the watermark, or the clock if that is earlier)."""
    return hub.now()
