"""One KPI's page (its 12 catalog attributes beside its chart) and the catalog, with their JSON twins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from partnerkpi.catalog.model import ATTRIBUTE_TITLES, KPI
from partnerkpi.reports.exports import table
from partnerkpi.web.charts import kpi_chart
from partnerkpi.web.deps import (
    EXPORT_RESPONSES,
    ApiData,
    ByParam,
    ExportParam,
    FromParam,
    GrainParam,
    PageData,
    PartialParam,
    ToParam,
    download,
    records,
    render,
)
from partnerkpi.web.openapi import READ_ERRORS
from partnerkpi.web.reader import RangeQuery, Reader
from partnerkpi.web.views import (
    CatalogOut,
    KpiOut,
    Row,
    TwinRoute,
    catalog_view,
    kpi_view,
    query_string,
    resolve_query,
    rows_of,
)

api = APIRouter(prefix="/api/v1", tags=["api"], route_class=TwinRoute, responses=READ_ERRORS)
pages = APIRouter(include_in_schema=False)


def kpi_page_chart(data: Reader, kpi: KPI, query: RangeQuery, view: KpiOut) -> dict[str, Any]:
    """The KPI page's chart of `view` (which checked the actor's scope), made once per data version; the warm
    start makes each KPI's default one."""
    return data.cached(("kpi_chart", kpi.id, query),
                       lambda: kpi_chart(rows_of(view), kpi, targets=[t.model_dump() for t in view.targets]))


@pages.get("/kpis/{kpi_id}", response_class=HTMLResponse)
def kpi_page(
    request: Request, data: PageData, kpi_id: str, grain: str = "month",
    from_: Annotated[str | None, Query(alias="from")] = None, to: str | None = None, by: str | None = None,
) -> HTMLResponse:
    """One KPI: its 12 catalog attributes beside the live value, and its chart over time."""
    kpi: KPI = data.kpi(kpi_id)
    query = resolve_query(data, grain, from_, to, by)
    view = kpi_view(data, kpi.id, query)  # the actor's scope is checked here, before the chart's cache
    chart = kpi_page_chart(data, kpi, query, view)
    return render(request, "kpi.html", view=view, kpi=kpi, attributes=ATTRIBUTE_TITLES, chart=chart,
                  qs=query_string(view), page="kpi")


@api.get("/kpis/{kpi_id}", response_model=KpiOut, responses=EXPORT_RESPONSES)
def kpi(
    data: ApiData, kpi_id: str, grain: GrainParam = "month", from_: FromParam = None, to: ToParam = None,
    by: ByParam = None, partial: PartialParam = False, format: ExportParam = None,
) -> KpiOut | Response:
    """One KPI: all its catalog attributes, bands and benchmarks, and its rows over the range; with `format`,
    the KPI's series (its rows) as a file."""
    data.kpi(kpi_id)  # an unknown id is a 404 before any query runs
    view = kpi_view(data, kpi_id, resolve_query(data, grain, from_, to, by, partial))
    if format:
        return download(table(view.kpi.id, records(view.rows), Row.model_fields), format)
    return view


@pages.get("/catalog", response_class=HTMLResponse)
def catalog_page(request: Request, data: PageData) -> HTMLResponse:
    """Every KPI of the catalog with its definition."""
    return render(request, "catalog.html", view=catalog_view(data), page="catalog")


@api.get("/kpis", response_model=CatalogOut)
def kpis(data: ApiData) -> CatalogOut:
    """The KPI catalog: every KPI with its category, unit, direction, timing and definition."""
    return catalog_view(data)
