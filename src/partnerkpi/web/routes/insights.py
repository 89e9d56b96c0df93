"""Insight pages and their JSON twins: at-risk partners, targets and the quarterly review, impact."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from partnerkpi.engine.periods import Grain, parse_day
from partnerkpi.errors import UsageError
from partnerkpi.reports.exports import table
from partnerkpi.web.auth import check_csrf
from partnerkpi.web.deps import (
    EXPORT_RESPONSES,
    ApiActor,
    ApiData,
    ByParam,
    ExportParam,
    FromParam,
    GrainParam,
    PageActor,
    PageData,
    ToParam,
    download,
    records,
    render,
)
from partnerkpi.web.insight_views import (
    AlertOut,
    AlertsOut,
    AtRiskOut,
    ImpactOut,
    LifecycleOut,
    RiskOut,
    TargetsOut,
    alerts_view,
    at_risk_json,
    at_risk_view,
    before_after_chart,
    impact_view,
    lifecycle_chart,
    lifecycle_view,
    risers_chart,
    stickiness_chart,
    targets_view,
)
from partnerkpi.web.openapi import NOT_BLANK, READ_ERRORS, optional_day
from partnerkpi.web.views import TwinRoute, resolve_query

api = APIRouter(prefix="/api/v1", tags=["insights"], route_class=TwinRoute, responses=READ_ERRORS)
pages = APIRouter(include_in_schema=False)

DaysParam = Annotated[int, Query(ge=1, le=3650, description="Inactive: no activity for this many days")]
QUARTER_PATTERN = r"^(?:|(?:19|20|21)\d\d-Q[1-4])$"
QuarterParam = Annotated[str | None, Query(description="The quarter to review, e.g. 2026-Q3 (default: the last "
                                                       "quarter the data covers completely)",
                                           json_schema_extra={"pattern": QUARTER_PATTERN})]
KpiParam = Annotated[str, Query(description="The KPI that may drive the outcome")]
OnParam = Annotated[str, Query(description="The outcome KPI")]
AroundParam = Annotated[str | None, Query(description="A date (YYYY-MM-DD), e.g. a portal revamp",
                                          json_schema_extra=optional_day)]
StatusParam = Annotated[str, Query(description="active, resolved or all",
                                   json_schema_extra={"enum": ["active", "resolved", "all"]})]


def _around(text: str | None) -> date | None:
    return parse_day(text, "around")


@api.get("/at-risk", response_model=AtRiskOut, responses=EXPORT_RESPONSES)
def at_risk(data: ApiData, days: DaysParam = 30, format: ExportParam = None) -> AtRiskOut | Response:
    """Partners at risk by their health score, and partners inactive for `days` days: reasons, trend, levers.
    With `format`, both lists as one file, its `list` column saying which (at_risk or inactive)."""
    if not format:
        return Response(at_risk_json(data, days), media_type="application/json")
    view = at_risk_view(data, days)
    rows = [{"list": name, **r} for name, entries in (("at_risk", view.at_risk), ("inactive", view.inactive))
            for r in records(entries)]
    return download(table("at-risk", rows, ["list", *RiskOut.model_fields]), format)


@pages.get("/at-risk", response_class=HTMLResponse)
def at_risk_page(request: Request, data: PageData, days: DaysParam = 30) -> HTMLResponse:
    """At-risk and inactive partners."""
    return render(request, "at_risk.html", view=at_risk_view(data, days), page="at-risk")


@api.get("/targets", response_model=TargetsOut)
def targets(data: ApiData, quarter: QuarterParam = None) -> TargetsOut:
    """Targets and band sets by effective date and segment, and the quarterly review counting targets met."""
    return targets_view(data, quarter)


@pages.get("/targets", response_class=HTMLResponse)
def targets_page(request: Request, data: PageData, quarter: QuarterParam = None) -> HTMLResponse:
    """Targets, band sets and the quarterly review."""
    return render(request, "targets.html", view=targets_view(data, quarter), page="targets")


@api.get("/impact", response_model=ImpactOut)
def impact(data: ApiData, kpi: KpiParam = "active_partner_rate", on: OnParam = "partner_revenue",
           around: AroundParam = None, grain: GrainParam = "month") -> ImpactOut:
    """Does `kpi` move `on`: risers vs fallers, lagged correlation, and before/after `around`."""
    return impact_view(data, kpi, on, _around(around), Grain.parse(grain))[0]


@pages.get("/impact", response_class=HTMLResponse)
def impact_page(request: Request, data: PageData, kpi: KpiParam = "active_partner_rate",
                on: OnParam = "partner_revenue", around: AroundParam = None,
                grain: GrainParam = "month") -> HTMLResponse:
    """Impact analysis with its charts."""
    g = Grain.parse(grain)
    view, report = impact_view(data, kpi, on, _around(around), g)
    return render(request, "impact.html", view=view, kpis=data.kpis(), page="impact",
                   before_after=before_after_chart(report, g), risers=risers_chart(report))


@api.get("/alerts", response_model=AlertsOut, responses=EXPORT_RESPONSES)
def alerts(data: ApiData, status: StatusParam = "active", format: ExportParam = None) -> AlertsOut | Response:
    """Alerts fired by the rules (active until their condition clears), with their deliveries; with `format`,
    the alerts as a file (the deliveries as JSON text in one column)."""
    view = alerts_view(data, status)
    if format:
        return download(table("alerts", records(view.alerts), AlertOut.model_fields), format)
    return view


@api.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge_alert(data: ApiData, alert_id: int, actor: ApiActor) -> AlertOut:
    """Mark an alert as seen (the first acknowledgement stays)."""
    alert = data.insights.acknowledge(alert_id, actor.email)
    return AlertOut(**alert.to_json(), deliveries=[])


@pages.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, data: PageData, status: StatusParam = "active") -> HTMLResponse:
    """Active or resolved alerts, with acknowledge buttons."""
    return render(request, "alerts.html", view=alerts_view(data, status), page="alerts")


@pages.post("/alerts/{alert_id}/acknowledge", dependencies=[Depends(check_csrf)])
def acknowledge_page(
    data: PageData, alert_id: int, actor: PageActor
) -> RedirectResponse:
    """The acknowledge button of the alerts page."""
    data.insights.acknowledge(alert_id, actor.email)
    return RedirectResponse("/alerts", status_code=303)


@api.get("/lifecycle", response_model=LifecycleOut)
def lifecycle(data: ApiData, grain: GrainParam = "month", from_: FromParam = None, to: ToParam = None,
              by: ByParam = None) -> LifecycleOut:
    """Partners new, returning, resurrecting and dormant per period, and how many periods they were active."""
    return lifecycle_view(data, resolve_query(data, grain, from_, to, by))


@pages.get("/lifecycle", response_class=HTMLResponse)
def lifecycle_page(request: Request, data: PageData, grain: GrainParam = "month", from_: FromParam = None,
                   to: ToParam = None, by: ByParam = None) -> HTMLResponse:
    """The lifecycle chart and the stickiness distribution."""
    view = lifecycle_view(data, resolve_query(data, grain, from_, to, by))
    return render(request, "lifecycle.html", view=view, chart=lifecycle_chart(view),
                   sticky=stickiness_chart(view), page="lifecycle")


class NewOverride(BaseModel):
    """A manual health level for a partner, with the reason and until when."""

    level: str = Field(description="a level of the health score (the document lists the configured ones)")
    reason: str = Field(json_schema_extra={"pattern": NOT_BLANK})
    expires_at: date = Field(description="a day after today (the server's clock)")


class OverrideOut(BaseModel):
    """The override made."""

    override_id: int
    partner_id: str
    level: str


@api.post("/partners/{partner_id}/health-override", status_code=201, response_model=OverrideOut)
def override_api(data: ApiData, partner_id: str, body: NewOverride,
                 actor: ApiActor) -> dict:
    """Override a partner's health level (staff): the reason and expiry show wherever the score does."""
    made = data.insights.override(partner_id, level=body.level, reason=body.reason, expires_at=body.expires_at,
                                  by=actor.email)
    return {"override_id": made.override_id, "partner_id": partner_id, "level": made.level}


@pages.post("/partners/{partner_id}/health-override", dependencies=[Depends(check_csrf)])
def override_page(
    data: PageData, partner_id: str, actor: PageActor,
    level: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "", expires_at: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """The override form of the partner page."""
    try:
        expires = date.fromisoformat(expires_at)
    except ValueError:
        raise UsageError(f"expiry '{expires_at}' is not a date", hint="pick a date in the form") from None
    data.insights.override(partner_id, level=level, reason=reason, expires_at=expires, by=actor.email)
    return RedirectResponse(f"/partners/{partner_id}#health", status_code=303)


@pages.post("/partners/{partner_id}/health-override/remove", dependencies=[Depends(check_csrf)])
def override_remove_page(data: PageData, partner_id: str,
                         override_id: Annotated[int, Form()]) -> RedirectResponse:
    """The remove button of an override on the partner page."""
    data.insights.remove_override(partner_id, override_id)
    return RedirectResponse(f"/partners/{partner_id}#health", status_code=303)
