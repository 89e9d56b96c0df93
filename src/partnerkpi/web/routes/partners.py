"""The partner list and one partner against its peers, with their JSON twins (a partner user sees its own)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from partnerkpi.catalog.model import KPI
from partnerkpi.reports.exports import table
from partnerkpi.web.charts import partner_chart, sparkline
from partnerkpi.web.deps import (
    EXPORT_RESPONSES,
    ApiData,
    ExportParam,
    FromParam,
    GrainParam,
    PageData,
    ToParam,
    download,
    records,
    render,
)
from partnerkpi.web.openapi import READ_ERRORS
from partnerkpi.web.partner_views import PAGE_MAX, PartnerListRow, PartnerOut, PartnersOut, partner_view, partners_view
from partnerkpi.web.reader import RangeQuery, Reader
from partnerkpi.web.views import TwinRoute, resolve_query

api = APIRouter(prefix="/api/v1", tags=["api"], route_class=TwinRoute, responses=READ_ERRORS)
pages = APIRouter(include_in_schema=False)


@pages.get("/partners", response_class=HTMLResponse)
def partners_page(
    request: Request, data: PageData, grain: str = "month", from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None, q: str = "", sort: str = "partner_id", order: str = "asc",
    page: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 1,
) -> HTMLResponse:
    """The partners, 50 a page: searchable, sortable, with traits, health, last activity and key KPIs."""
    view = partners_view(data, resolve_query(data, grain, from_, to), q, sort, order, page)
    base = {"grain": view.query.grain, "from": view.query.from_, "to": view.query.to, **({"q": q} if q else {})}
    sorted_by = urlencode({**base, "sort": sort, "order": order})
    return render(request, "partners.html", view=view, base=urlencode(base), sorted_by=sorted_by,
                   qs=f"{sorted_by}&page={view.page}", page="partners")


@api.get("/partners", response_model=PartnersOut, responses=EXPORT_RESPONSES)
def partners(
    data: ApiData, grain: GrainParam = "month", from_: FromParam = None, to: ToParam = None,
    q: Annotated[str, Query(description="Search in id, name and trait values")] = "",
    sort: Annotated[str, Query(description="partner_id, name, onboarded_at, last_active, status, health "
                                           "(internal users), a trait or a KPI column")] = "partner_id",
    order: Annotated[str, Query(description="asc or desc (missing values last either way)",
                                json_schema_extra={"enum": ["asc", "desc"]})] = "asc",
    page: Annotated[int, Query(ge=1, le=PAGE_MAX, description="The page, 50 partners a page; past the last page "
                                                              "answers 400")] = 1,
    format: ExportParam = None,
) -> PartnersOut | Response:
    """The partners (a partner user: their own), their traits, last activity, key KPIs of the latest period
    and (internal users) health level; one page with `total`, `page` and `pages`. With `format`, every
    partner the search finds (all pages, in the order asked) as a file."""
    query = resolve_query(data, grain, from_, to)
    view = partners_view(data, query, q, sort, order, page)
    if not format:
        return view
    rows = [p for n in range(1, view.pages + 1)
            for p in (view if n == page else partners_view(data, query, q, sort, order, n)).partners]
    return download(table("partners", records(rows), PartnerListRow.model_fields), format)


def partner_page_parts(data: Reader, partner_id: str, query: RangeQuery, peers_by: str | None, kpi: str | None
                       ) -> tuple[PartnerOut, KPI | None, dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """A partner page's view, its chosen KPI (`kpi` if shown, else the first), that KPI's chart (made once per
    data version; the warm start makes the default one) and a sparkline a tile."""
    view = partner_view(data, partner_id, query, peers_by)
    shown = [t.tile.kpi for c in view.categories for t in c.tiles]
    chosen = data.kpi(kpi) if kpi in shown else (data.kpi(shown[0]) if shown else None)
    rows = [r.model_dump() for r in view.rows]
    peers = [p.model_dump() for p in view.peers]
    chart = data.cached(("partner_chart", partner_id, chosen.id, query, view.peers_by, data.scope),
                        lambda: partner_chart(rows, peers, chosen, "This partner")) if chosen else None
    sparks = {k: sparkline([r for r in rows if r["kpi"] == k], program_only=False) for k in shown}
    return view, chosen, chart, sparks


@pages.get("/partners/{partner_id}", response_class=HTMLResponse)
def partner_page(
    request: Request, data: PageData, partner_id: str, grain: str = "month",
    from_: Annotated[str | None, Query(alias="from")] = None, to: str | None = None,
    peers_by: str | None = None, kpi: str | None = None,
) -> HTMLResponse:
    """One partner against its peers (the partner view of a partner user), with its tasks and policies."""
    data.partner(partner_id)
    view, chosen, chart, sparks = partner_page_parts(data, partner_id, resolve_query(data, grain, from_, to),
                                                     peers_by, kpi)
    q = view.query
    qs = urlencode({"grain": q.grain, "from": q.from_, "to": q.to, **({"peers_by": peers_by} if peers_by else {})})
    levels = [level.name for level in data.insights.health_config().levels] if view.health else []
    return render(request, "partner.html", view=view, chart=chart, chosen=chosen, sparks=sparks, qs=qs,
                   levels=levels, page="partner")


@api.get("/partners/{partner_id}", response_model=PartnerOut)
def partner(
    data: ApiData, partner_id: str, grain: GrainParam = "month", from_: FromParam = None, to: ToParam = None,
    peers_by: Annotated[str | None, Query(description="The trait whose segment are the peers (default: type)")]
    = None,
) -> PartnerOut:
    """One partner: its KPIs against its peers' median and top quartile, its open tasks and unacknowledged
    required policies. Another partner's id answers like an id that does not exist."""
    data.partner(partner_id)  # unknown or not yours: 404 before any query runs
    return partner_view(data, partner_id, resolve_query(data, grain, from_, to), peers_by)
