"""The JSON API under /api/v1: each page's JSON twin, built by the same view functions as the page."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from partnerkpi.web.partner_views import PAGE_MAX, PartnerOut, PartnersOut, partner_view, partners_view
from partnerkpi.web.reader import Reader, api_reader
from partnerkpi.web.views import (
    CatalogOut,
    DataOut,
    KpiOut,
    RejectedFilter,
    RejectedOut,
    RejectedRowOut,
    ScorecardOut,
    SegmentsOut,
    TwinRoute,
    catalog_view,
    data_view,
    kpi_view,
    rejected_view,
    resolve_query,
    scorecard_view,
    segments_view,
)

router = APIRouter(prefix="/api/v1", tags=["api"], route_class=TwinRoute)

Data = Annotated[Reader, Depends(api_reader)]
GrainParam = Annotated[str, Query(description="week, month, quarter or year")]
FromParam = Annotated[str | None, Query(alias="from", description="First day (YYYY-MM-DD); default: 6 periods back")]
ToParam = Annotated[str | None, Query(description="End day, exclusive (YYYY-MM-DD); default: after the last event")]
ByParam = Annotated[str | None, Query(description="Segment by a partner trait (see /api/v1/segments)")]
PartialParam = Annotated[bool, Query(description="Also the running period the data reaches into, its rows marked "
                                                 "partial (default: complete periods only)")]


@router.get("/scorecard", response_model=ScorecardOut)
def scorecard(
    data: Data,
    grain: GrainParam = "month",
    from_: FromParam = None,
    to: ToParam = None,
    by: ByParam = None,
    kpi: Annotated[list[str] | None, Query(description="Only these KPI ids (repeatable)")] = None,
    partial: PartialParam = False,
) -> ScorecardOut:
    """KPI rows for every period of the range the data covers, for the program and per segment, with the
    scorecard tiles."""
    return scorecard_view(data, resolve_query(data, grain, from_, to, by, partial), kpis=kpi or None)


@router.get("/kpis", response_model=CatalogOut)
def kpis(data: Data) -> CatalogOut:
    """The KPI catalog: every KPI with its category, unit, direction, timing and definition."""
    return catalog_view(data)


@router.get("/kpis/{kpi_id}", response_model=KpiOut, responses={404: {"description": "No such KPI"}})
def kpi(
    data: Data, kpi_id: str, grain: GrainParam = "month", from_: FromParam = None, to: ToParam = None,
    by: ByParam = None, partial: PartialParam = False,
) -> KpiOut:
    """One KPI: all its catalog attributes, bands and benchmarks, and its rows over the range."""
    data.kpi(kpi_id)  # an unknown id is a 404 before any query runs
    return kpi_view(data, kpi_id, resolve_query(data, grain, from_, to, by, partial))


@router.get("/segments", response_model=SegmentsOut)
def segments(data: Data) -> SegmentsOut:
    """The partner traits a scorecard can be segmented by."""
    return segments_view(data)


@router.get("/partners", response_model=PartnersOut)
def partners(
    data: Data, grain: GrainParam = "month", from_: FromParam = None, to: ToParam = None,
    q: Annotated[str, Query(description="Search in id, name and trait values")] = "",
    sort: Annotated[str, Query(description="partner_id, name, onboarded_at, last_active, status, health "
                                           "(internal users), a trait or a KPI column")] = "partner_id",
    order: Annotated[str, Query(description="asc or desc (missing values last either way)")] = "asc",
    page: Annotated[int, Query(ge=1, le=PAGE_MAX, description="The page, 50 partners a page; past the last page "
                                                              "answers 400")] = 1,
) -> PartnersOut:
    """The partners (a partner user: their own), their traits, last activity, key KPIs of the latest period
    and (internal users) health level; one page with `total`, `page` and `pages`."""
    return partners_view(data, resolve_query(data, grain, from_, to), q, sort, order, page)


@router.get("/partners/{partner_id}", response_model=PartnerOut, responses={404: {"description": "No such partner"}})
def partner(
    data: Data, partner_id: str, grain: GrainParam = "month", from_: FromParam = None, to: ToParam = None,
    peers_by: Annotated[str | None, Query(description="The trait whose segment are the peers (default: type)")]
    = None,
) -> PartnerOut:
    """One partner: its KPIs against its peers' median and top quartile, its open tasks and unacknowledged
    required policies. Another partner's id answers like an id that does not exist."""
    data.partner(partner_id)  # unknown or not yours: 404 before any query runs
    return partner_view(data, partner_id, resolve_query(data, grain, from_, to), peers_by)


Filters = Annotated[RejectedFilter, Query()]


@router.get("/data", response_model=DataOut)
def data_quality(data: Data, filters: Filters) -> DataOut:
    """Table counts, every import, tracking-plan coverage and the first rejected rows."""
    return data_view(data, filters)


@router.get("/rejected", response_model=RejectedOut)
def rejected(
    data: Data, filters: Filters, limit: Annotated[int, Query(ge=1, le=10_000)] = 200
) -> RejectedOut:
    """Rejected rows with their source, row, field, raw content and reason, filtered and paged."""
    return rejected_view(data, filters, limit)


@router.get("/rejected.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def rejected_csv(data: Data, filters: Filters) -> Response:
    """Every rejected row matching the filters, as CSV (to fix and import again)."""
    view = rejected_view(data, filters, limit=None)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(RejectedRowOut.model_fields), lineterminator="\n")
    writer.writeheader()
    for row in view.rows:
        writer.writerow(row.model_dump())
    return Response(
        out.getvalue(), media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rejected_rows.csv"'},
    )
