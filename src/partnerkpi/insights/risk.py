"""At-risk and inactive partners: who, why (the health score's reasons), the trend of the score, and what
to do (the improvement levers of the catalog KPIs tied to the components that hurt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from partnerkpi.catalog import Catalog
from partnerkpi.insights.health import (
    HealthConfig,
    HealthScore,
    health_scores,
    load_config,
    utc_instant,
)

TREND_POINTS = 3
TREND_STEP = timedelta(days=30)


@dataclass(frozen=True)
class RiskEntry:
    """One partner on a list: its health (score and level after any override), the reasons, the computed
    score every 30 days up to `as_of` (oldest first), the suggested levers, and its last activity."""

    partner_id: str
    name: str | None
    traits: dict[str, Any]
    score: float
    level: str
    computed_score: float
    reasons: tuple[str, ...]
    trend: tuple[tuple[str, float], ...]
    levers: tuple[str, ...]
    last_active: datetime | None
    days_inactive: float | None
    override_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trend"] = [{"as_of": day, "score": score} for day, score in self.trend]
        d["last_active"] = None if self.last_active is None else self.last_active.strftime("%Y-%m-%dT%H:%M:%SZ")
        return d


def suggested_levers(catalog: Catalog, health: HealthScore) -> tuple[str, ...]:
    """The improvement levers of the KPIs of the hurting components, worst component first, each once."""
    out: dict[str, None] = {}
    for c in health.hurting:
        if c.kpi is not None and c.kpi in catalog:
            out.update(dict.fromkeys(catalog.get(c.kpi).improvement_levers))
    return tuple(out)


def score_trend(hub: Any, as_of: datetime, config: HealthConfig, partners: Sequence[str],
                latest: Sequence[HealthScore] = ()) -> dict[str, list[tuple[str, float]]]:
    """The computed score of `partners` every 30 days, TREND_POINTS points up to `as_of` (oldest first);
    `latest` reuses the scores already taken at `as_of`."""
    trend: dict[str, list[tuple[str, float]]] = {p: [] for p in partners}
    have = {h.partner_id: h for h in latest}
    for k in range(TREND_POINTS - 1, -1, -1):
        at = as_of - k * TREND_STEP
        scores = [have[p] for p in partners if p in have] if k == 0 and have else health_scores(
            hub, at, config, partners=list(partners), overrides=False)
        for h in scores:
            trend[h.partner_id].append((at.date().isoformat(), h.computed_score))
    return trend


def _entries(hub: Any, as_of: datetime, config: HealthConfig, chosen: list[HealthScore],
             last: dict[str, datetime]) -> list[RiskEntry]:
    trend = score_trend(hub, as_of, config, [h.partner_id for h in chosen], chosen)
    out = []
    for h in chosen:
        seen = last.get(h.partner_id)
        out.append(RiskEntry(
            h.partner_id, h.name, h.traits, h.score, h.level, h.computed_score, h.reasons,
            tuple(trend[h.partner_id]), suggested_levers(hub.catalog, h), seen,
            None if seen is None else (as_of - seen).total_seconds() / 86400,
            h.override.reason if h.override else None,
        ))
    return out


def at_risk(hub: Any, as_of: date | datetime, config: HealthConfig | None = None) -> list[RiskEntry]:
    """Partners whose level (after any override in force) is an at-risk level, lowest score first."""
    config = config or load_config(catalog=hub.catalog)
    as_of = utc_instant(as_of)
    flagged = [h for h in health_scores(hub, as_of, config) if h.level in config.at_risk_levels]
    flagged.sort(key=lambda h: (h.score, h.partner_id))
    return _entries(hub, as_of, config, flagged, hub.last_active(as_of))


def inactive(hub: Any, as_of: date | datetime, days: int = 30, config: HealthConfig | None = None
             ) -> list[RiskEntry]:
    """Partners in the program at `as_of` with no activity event in the `days` days before it (never
    active ones first, then the longest inactive)."""
    config = config or load_config(catalog=hub.catalog)
    as_of = utc_instant(as_of)
    last = hub.last_active(as_of)
    cutoff = as_of - timedelta(days=days)
    idle = [h for h in health_scores(hub, as_of, config) if last.get(h.partner_id) is None
            or last[h.partner_id] < cutoff]
    idle.sort(key=lambda h: (last.get(h.partner_id) is not None, last.get(h.partner_id) or as_of, h.partner_id))
    return _entries(hub, as_of, config, idle, last)
