"""What the insight pages show (at-risk partners, targets and the quarterly review, impact, alerts), as
response models of their JSON twins, built from the insights through the request's Reader."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import altair as alt
from pydantic import BaseModel

from partnerkpi.engine.periods import Grain, periods_between
from partnerkpi.engine.result import iso_z
from partnerkpi.insights.impact import ImpactReport
from partnerkpi.insights.risk import RiskEntry
from partnerkpi.web.reader import RangeQuery, Reader
from partnerkpi.web.views import QueryOut, Twin, query_out


# -- at-risk and inactive partners -----------------------------------------------------------------------
class TrendPoint(BaseModel):
    as_of: str
    score: float


class RiskOut(BaseModel):
    """A partner on the at-risk or the inactive list: score, level, why, how it went, what to do."""

    partner_id: str
    name: str | None
    traits: dict[str, Any]
    score: float
    level: str
    computed_score: float
    reasons: list[str]
    trend: list[TrendPoint]
    levers: list[str]
    last_active: str | None
    days_inactive: float | None
    override_reason: str | None


class AtRiskOut(Twin):
    """The at-risk partners (health level in the at-risk levels) and those inactive for `days` days, and
    how well the score predicted churn so far (the backtest)."""

    as_of: str  # ISO-8601 UTC with a Z, as every instant of the API
    days: int
    at_risk: list[RiskOut]
    inactive: list[RiskOut]
    backtest: dict[str, Any]


def _risk(entry: RiskEntry) -> RiskOut:
    return RiskOut(**entry.to_dict())


def at_risk_view(data: Reader, days: int = 30) -> AtRiskOut:
    """The at-risk page and its JSON twin (internal users only), made once per data version."""
    data._whole_program()  # before the cache: the view is the whole program's

    def make() -> AtRiskOut:
        as_of, risky, quiet = data.insights.at_risk(days)
        return AtRiskOut(as_of=iso_z(as_of), days=days, at_risk=[_risk(e) for e in risky],
                         inactive=[_risk(e) for e in quiet], backtest=data.insights.backtest().to_dict())

    return data.cached(("at_risk_view", days), make)


def at_risk_json(data: Reader, days: int = 30) -> bytes:
    """`at_risk_view` as the API sends it, written once per data version (thousands of inactive partners on
    a large program make megabytes of JSON)."""
    view = at_risk_view(data, days)
    return data.cached(("at_risk_json", days), lambda: view.model_dump_json().encode())


# -- lifecycle -------------------------------------------------------------------------------------------
class LifecycleOut(Twin):
    """Partner lifecycle per period (PostHog's states at partner level) and the stickiness distribution."""

    query: QueryOut
    traits: list[str]
    lifecycle: dict[str, Any]
    stickiness: dict[str, Any]


def lifecycle_view(data: Reader, query: RangeQuery) -> LifecycleOut:
    states, sticky = data.insights.lifecycle(query)
    return LifecycleOut(query=query_out(query), traits=data.traits(), lifecycle=states.to_json(),
                        stickiness=sticky.to_json())


LIFECYCLE_COLORS = {"new": "#2e9e5b", "returning": "#2b5fad", "resurrecting": "#e0a100", "dormant": "#d64541"}


def lifecycle_chart(view: LifecycleOut) -> dict[str, Any]:
    """PostHog's lifecycle chart of the program: the three active states stacked up, dormant below zero."""
    rows = [r for r in view.lifecycle["rows"] if not r["segment"]]
    labels = [r["period"] for r in rows]
    points = [{"period": r["period"], "state": state, "partners": -r[state] if state == "dormant" else r[state]}
              for r in rows for state in LIFECYCLE_COLORS if r[state]]
    return alt.Chart(alt.Data(values=points)).mark_bar().encode(
        x=alt.X("period:O", sort=labels, title="period", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("sum(partners):Q", title="partners"),
        color=alt.Color("state:N", legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=list(LIFECYCLE_COLORS), range=list(LIFECYCLE_COLORS.values()))),
        tooltip=["period:N", "state:N", "partners:Q"],
    ).properties(width="container", height=300).to_dict()


def stickiness_chart(view: LifecycleOut) -> dict[str, Any]:
    """How many partners were active in exactly k of the range's periods."""
    program = next(s for s in view.stickiness["segments"] if not s.get("segment"))
    points = program["counts"]
    return alt.Chart(alt.Data(values=points)).mark_bar(color="#2b5fad").encode(
        x=alt.X("k:O", title=f"active in k of {view.stickiness['n']} periods", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("partners:Q", title="partners"), tooltip=["k:O", "partners:Q"],
    ).properties(width="container", height=300).to_dict()


# -- targets and the quarterly review ------------------------------------------------------------------
class TargetOut(BaseModel):
    """A target in force from `effective_from` (for a segment, or the program when `segment` is empty)."""

    kpi: str
    name: str
    segment: dict[str, str]
    effective_from: date
    value: float
    label: str | None


class BandSetOut(BaseModel):
    """Named bands of a KPI from `effective_from` on (edges with their inclusivity)."""

    kpi: str
    segment: dict[str, str]
    effective_from: date
    bands: list[dict[str, Any]]


class TargetsOut(Twin):
    """Every target and band set, and the quarterly review that counts targets met and missed."""

    targets: list[TargetOut]
    band_sets: list[BandSetOut]
    review: dict[str, Any]


def targets_view(data: Reader, quarter: str | None = None) -> TargetsOut:
    book = data.insights.book()
    review = data.insights.review(quarter or None)
    return TargetsOut(
        targets=[TargetOut(kpi=t.kpi, name=data.kpi(t.kpi).name, segment=dict(t.segment),
                           effective_from=t.effective_from, value=t.value, label=t.label) for t in book.targets],
        band_sets=[BandSetOut(kpi=b.kpi, segment=dict(b.segment), effective_from=b.effective_from,
                              bands=[band.model_dump() for band in b.bands]) for b in book.band_sets],
        review=review.to_json(),
    )


# -- impact ----------------------------------------------------------------------------------------------
class ImpactOut(Twin):
    """Does a KPI move an outcome: risers vs fallers, lagged correlation, before/after a date."""

    kpi: str
    on: str
    around: date | None
    grain: str
    note: str
    risers_vs_fallers: dict[str, Any]
    lagged_correlation: dict[str, Any]
    before_after: list[dict[str, Any]]


def impact_view(data: Reader, kpi: str, on: str, around: date | None, grain: Grain) -> tuple[ImpactOut, ImpactReport]:
    report = data.insights.impact(kpi, on, around, grain)
    body = report.to_json()
    return ImpactOut(grain=grain.value, **body), report


def before_after_chart(report: ImpactReport, grain: Grain) -> dict[str, Any] | None:
    """The outcome per period over both windows, each side's mean as a rule, the date as a vertical rule."""
    view = next((b for b in report.before_after if b.on == report.on), None)
    if view is None:
        return None
    labels = [p.label for p in periods_between(grain, view.before[0], view.after[1])]
    values = [*view.program_before, *view.program_after]
    sides = ["before"] * len(view.program_before) + ["after"] * len(view.program_after)
    points = [{"period": label, "value": v, "side": side}
              for label, v, side in zip(labels, values, sides, strict=False) if v is not None]
    line = alt.Chart(alt.Data(values=points)).mark_line(point=True, color="#2b5fad").encode(
        x=alt.X("period:O", sort=labels, title="period"), y=alt.Y("value:Q", title=report.on),
        tooltip=["period:N", alt.Tooltip("value:Q", format=",.0f"), "side:N"])
    bars = alt.Chart(alt.Data(values=points)).mark_bar(opacity=0.25).encode(
        x=alt.X("period:O", sort=labels), y="value:Q",
        color=alt.Color("side:N", scale=alt.Scale(domain=["before", "after"], range=["#9aa0a6", "#2e9e5b"])))
    return alt.layer(bars, line).properties(width="container", height=260).to_dict()


def risers_chart(report: ImpactReport) -> dict[str, Any]:
    """Mean relative change of the outcome for risers and fallers."""
    rvf = report.risers_vs_fallers
    rows = [{"group": name, "change": 100 * (g.outcome_change or 0.0), "partners": g.n}
            for name, g in (("risers", rvf.risers), ("fallers", rvf.fallers))]
    return alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("group:N", title=None), y=alt.Y("change:Q", title=f"mean change of {report.on} (%)"),
        color=alt.Color("group:N", scale=alt.Scale(domain=["risers", "fallers"], range=["#2e9e5b", "#d64541"]),
                        legend=None),
        tooltip=["group:N", "partners:Q", alt.Tooltip("change:Q", format=".1f")],
    ).properties(width=220, height=220).to_dict()


# -- alerts ----------------------------------------------------------------------------------------------
class DeliveryOut(BaseModel):
    """A delivery of an alert's firing or resolve to a channel: pending, ok or failed (with the error)."""

    channel: str
    event: str
    status: str
    attempts: int
    error: str | None
    delivered_at: str | None


class AlertOut(BaseModel):
    """An alert as stored: active until its condition clears."""

    alert_id: int
    rule_id: str
    scope_key: str
    kpi: str
    fired_at: str
    resolved_at: str | None
    period: str | None
    value: float | None
    message: str
    severity: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    status: str
    deliveries: list[DeliveryOut]


class AlertsOut(Twin):
    """The alerts of a status (active, resolved, all), newest first."""

    status: str
    alerts: list[AlertOut]


def alerts_view(data: Reader, status: str = "active") -> AlertsOut:
    alerts, deliveries = data.insights.alerts(status)
    by_alert: dict[int, list[DeliveryOut]] = {}
    for d in deliveries:
        at = d.get("delivered_at")
        by_alert.setdefault(d["alert_id"], []).append(DeliveryOut(
            channel=d["channel"], event=d["event"], status=d["status"], attempts=d.get("attempts") or 0,
            error=d.get("error"), delivered_at=at.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(at, datetime) else at,
        ))
    return AlertsOut(status=status, alerts=[AlertOut(**a.to_json(), deliveries=by_alert.get(a.alert_id, []))
                                            for a in alerts])
