"""Server-rendered pages: scorecard, KPI page and catalog, each drawn from the same view as its JSON twin."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from partnerkpi.catalog.model import ATTRIBUTE_TITLES, KPI
from partnerkpi.web.charts import kpi_chart, partner_chart, sparkline
from partnerkpi.web.empty import NoDataYet, empty_view
from partnerkpi.web.numbers import display_number
from partnerkpi.web.partner_views import PAGE_MAX, partner_view, partners_view
from partnerkpi.web.reader import Reader, page_reader
from partnerkpi.web.views import (
    KpiOut,
    RejectedFilter,
    ScorecardOut,
    catalog_view,
    data_banner,
    data_view,
    kpi_view,
    resolve_query,
    rows_of,
    scorecard_view,
)

router = APIRouter(include_in_schema=False)

Data = Annotated[Reader, Depends(page_reader)]
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".png": "image/png"}
GRAINS = ("week", "month", "quarter", "year")


@cache
def templates() -> Jinja2Templates:
    """The page templates (built on first use, not at import)."""
    made = Jinja2Templates(directory=str(resources.files("partnerkpi.web") / "templates"))
    made.env.filters["fmt"] = display_number  # {{ value | fmt(unit) }}: the one way a page shows a number
    made.env.globals["data_banner"] = data_banner  # base.html: "Data as of ..." for signed-in users
    return made


@cache
def vega_bundle() -> bytes:
    """Vega, Vega-Lite and vega-embed as one offline bundle, made on first request and kept in memory."""
    import vl_convert

    return vl_convert.javascript_bundle().encode()


def _render(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates().TemplateResponse(request, name, {"grains": GRAINS, **context})


def _qs(view: ScorecardOut | KpiOut) -> str:
    """The resolved query as a query string, so links and the JSON twin show the same range."""
    q = view.query
    return urlencode({"grain": q.grain, "from": q.from_, "to": q.to, **({"by": q.by} if q.by else {}),
                      **({"partial": 1} if q.partial else {})})


@router.get("/", response_class=HTMLResponse)
def scorecard_page(
    request: Request, data: Data, grain: str = "month", from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None, by: str | None = None, partial: bool = False,
) -> HTMLResponse:
    """The scorecard: KPI tiles by category, with pickers for grain, range and segment."""
    view = scorecard_view(data, resolve_query(data, grain, from_, to, by, partial))
    rows = rows_of(view)
    sparks = {kpi.id: sparkline([r for r in rows if r["kpi"] == kpi.id]) for kpi in data.kpis()}
    return _render(request, "scorecard.html", view=view, sparks=sparks, qs=_qs(view), page="scorecard")


@router.get("/kpis/{kpi_id}", response_class=HTMLResponse)
def kpi_page(
    request: Request, data: Data, kpi_id: str, grain: str = "month",
    from_: Annotated[str | None, Query(alias="from")] = None, to: str | None = None, by: str | None = None,
) -> HTMLResponse:
    """One KPI: its 12 catalog attributes beside the live value, and its chart over time."""
    kpi: KPI = data.kpi(kpi_id)
    view = kpi_view(data, kpi.id, resolve_query(data, grain, from_, to, by))
    return _render(
        request, "kpi.html", view=view, kpi=kpi, attributes=ATTRIBUTE_TITLES,
        chart=kpi_chart(rows_of(view), kpi, targets=[t.model_dump() for t in view.targets]),
        qs=_qs(view), page="kpi",
    )


@router.get("/partners", response_class=HTMLResponse)
def partners_page(
    request: Request, data: Data, grain: str = "month", from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None, q: str = "", sort: str = "partner_id", order: str = "asc",
    page: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 1,
) -> HTMLResponse:
    """The partners, 50 a page: searchable, sortable, with traits, health, last activity and key KPIs."""
    view = partners_view(data, resolve_query(data, grain, from_, to), q, sort, order, page)
    base = {"grain": view.query.grain, "from": view.query.from_, "to": view.query.to, **({"q": q} if q else {})}
    sorted_by = urlencode({**base, "sort": sort, "order": order})
    return _render(request, "partners.html", view=view, base=urlencode(base), sorted_by=sorted_by,
                   qs=f"{sorted_by}&page={view.page}", page="partners")


@router.get("/partners/{partner_id}", response_class=HTMLResponse)
def partner_page(
    request: Request, data: Data, partner_id: str, grain: str = "month",
    from_: Annotated[str | None, Query(alias="from")] = None, to: str | None = None,
    peers_by: str | None = None, kpi: str | None = None,
) -> HTMLResponse:
    """One partner against its peers (the partner view of a partner user), with its tasks and policies."""
    data.partner(partner_id)
    view = partner_view(data, partner_id, resolve_query(data, grain, from_, to), peers_by)
    shown = [t.tile.kpi for c in view.categories for t in c.tiles]
    chosen = data.kpi(kpi) if kpi in shown else (data.kpi(shown[0]) if shown else None)
    rows = [r.model_dump() for r in view.rows]
    peers = [p.model_dump() for p in view.peers]
    chart = partner_chart(rows, peers, chosen, "This partner") if chosen else None
    sparks = {k: sparkline([r for r in rows if r["kpi"] == k], program_only=False) for k in shown}
    q = view.query
    qs = urlencode({"grain": q.grain, "from": q.from_, "to": q.to, **({"peers_by": peers_by} if peers_by else {})})
    levels = [level.name for level in data.insights.health_config().levels] if view.health else []
    return _render(request, "partner.html", view=view, chart=chart, chosen=chosen, sparks=sparks, qs=qs,
                   levels=levels, page="partner")


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(request: Request, data: Data) -> HTMLResponse:
    """Every KPI of the catalog with its definition."""
    return _render(request, "catalog.html", view=catalog_view(data), page="catalog")


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, data: Data, filters: Annotated[RejectedFilter, Query()]) -> HTMLResponse:
    """Imports, table counts, rejected rows with their reasons (filterable, downloadable), plan coverage."""
    view = data_view(data, filters)
    query = urlencode({k: v for k, v in filters.model_dump().items() if v not in (None, "", 0)})
    try:
        data.require_data()
        empty = None
    except NoDataYet as exc:  # the page still shows its tables: rejected rows say why an import stored nothing
        empty = empty_view(exc, request.app.state.partnerkpi.settings.db, str(request.base_url))
    return _render(request, "data.html", view=view, query=query, empty=empty, page="data")


@router.get("/static/vega.js")
def vega_js() -> Response:
    """The chart bundle, served by the app itself (no CDN)."""
    return Response(vega_bundle(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """A file of web/static (flat: no sub-folders)."""
    suffix = name[name.rfind("."):] if "." in name else ""
    path = resources.files("partnerkpi.web") / "static" / name
    if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES or not path.is_file():
        raise HTTPException(404, f"no static file '{name}'")
    return Response(path.read_bytes(), media_type=STATIC_TYPES[suffix])
