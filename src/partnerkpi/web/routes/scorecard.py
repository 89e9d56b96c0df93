"""The scorecard: KPI tiles by category for a range, grain and segment (`/`), and its JSON twin; the
segmenting traits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from partnerkpi.reports.exports import table
from partnerkpi.web.charts import sparkline
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
from partnerkpi.web.views import (
    Row,
    ScorecardOut,
    SegmentsOut,
    TwinRoute,
    query_string,
    resolve_query,
    rows_of,
    scorecard_view,
    segments_view,
)

api = APIRouter(prefix="/api/v1", tags=["api"], route_class=TwinRoute, responses=READ_ERRORS)
pages = APIRouter(include_in_schema=False)


@pages.get("/", response_class=HTMLResponse)
def scorecard_page(
    request: Request, data: PageData, grain: str = "month", from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None, by: str | None = None, partial: bool = False,
) -> HTMLResponse:
    """The scorecard: KPI tiles by category, with pickers for grain, range and segment."""
    view = scorecard_view(data, resolve_query(data, grain, from_, to, by, partial))
    rows = rows_of(view)
    sparks = {kpi.id: sparkline([r for r in rows if r["kpi"] == kpi.id]) for kpi in data.kpis()}
    return render(request, "scorecard.html", view=view, sparks=sparks, qs=query_string(view), page="scorecard")


@api.get("/scorecard", response_model=ScorecardOut, responses=EXPORT_RESPONSES)
def scorecard(
    data: ApiData,
    grain: GrainParam = "month",
    from_: FromParam = None,
    to: ToParam = None,
    by: ByParam = None,
    kpi: Annotated[list[str] | None, Query(description="Only these KPI ids (repeatable)")] = None,
    partial: PartialParam = False,
    format: ExportParam = None,
) -> ScorecardOut | Response:
    """KPI rows for every period of the range the data covers, for the program and per segment, with the
    scorecard tiles; with `format`, its rows as a file."""
    view = scorecard_view(data, resolve_query(data, grain, from_, to, by, partial), kpis=kpi or None)
    if format:
        return download(table("scorecard", records(view.rows), Row.model_fields), format)
    return view


@api.get("/segments", response_model=SegmentsOut)
def segments(data: ApiData) -> SegmentsOut:
    """The partner traits a scorecard can be segmented by."""
    return segments_view(data)
