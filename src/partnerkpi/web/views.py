"""View models: what each page shows, built once and rendered both as HTML and as its JSON twin.

All data a request reads goes through its `Reader` (web/reader.py), which applies the actor's scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, model_serializer

from partnerkpi.catalog.model import CATEGORY_TITLES, KPI, Band, Benchmark
from partnerkpi.engine.periods import Grain, label, parse_day
from partnerkpi.engine.result import KpiRow, iso_z
from partnerkpi.errors import UsageError
from partnerkpi.web.logs import stale_age
from partnerkpi.web.numbers import display_number
from partnerkpi.web.openapi import Instant
from partnerkpi.web.reader import RangeQuery, Reader

MOVES_WITH = 5  # the KPIs shown as moving with a KPI, strongest correlation first


# -- queries -----------------------------------------------------------------------------------------
def resolve_query(
    data: Reader, grain: str = "month", start: str | None = None, end: str | None = None, by: str | None = None,
    partial: bool = False,
) -> RangeQuery:
    """The query with the CLI's defaults filled in; empty dates and trait (from HTML forms) mean "not given", an
    empty grain is refused (the forms always send one). The range ends where the data does: with the last
    complete period, or with `partial` the running one."""
    g = Grain.parse(grain)
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if first is None or last is None:
        default_start, last = data.default_range(g, last, partial=partial)
        first = first or default_start
    if by and by not in data.traits():
        raise UsageError(f"unknown partner trait '{by}'", hint=f"segment by one of: {', '.join(data.traits())}")
    last, note = data.hub.covered_range(g, first, last, partial=partial)
    running = data.hub.running_period(g) if partial else None
    return RangeQuery(grain=g, start=first, end=last, by=by or None, partial=partial, note=note,
                      running=running.start if running else None)


# -- the data watermark on every page and JSON twin ------------------------------------------------------
_TWIN_APP: ContextVar[Any] = ContextVar("partnerkpi_twin_app", default=None)


def _data_as_of() -> str | None:
    """The watermark of the app answering the current API request (None outside one, or without data)."""
    st = _TWIN_APP.get()
    mark = st.hub.watermark() if st is not None else None
    return iso_z(mark) if mark else None


class Twin(BaseModel):
    """The base of every page's JSON twin: each states how far the data reaches."""

    data_as_of: str | None = Field(
        default_factory=_data_as_of,
        description="The data watermark (ISO-8601 UTC): periods ending at or before it are complete; null "
        "when there is no data",
    )


class TwinRoute(APIRoute):
    """The route class of the JSON API: while a request runs, the twins it builds read the app's watermark
    (the one place `data_as_of` is filled, for every route)."""

    def get_route_handler(self):  # noqa: ANN201 (Starlette's handler type)
        handler = super().get_route_handler()

        async def stated(request: Request) -> Response:
            token = _TWIN_APP.set(getattr(request.app.state, "partnerkpi", None))
            try:
                return await handler(request)
            finally:
                _TWIN_APP.reset(token)

        return stated


def data_banner(request: Request) -> str | None:
    """The header line of every page for a signed-in user: "Data as of 2026-11-01 (last complete month:
    2026-10)"; None without data."""
    st = getattr(request.app.state, "partnerkpi", None)
    reader = getattr(request.state, "reader", None)  # the request's snapshot, which has read the watermark once
    if reader is not None and not reader.finished:
        hub = reader.hub
    else:  # no reader, or an error page after it closed its snapshot
        hub = st.hub if st is not None else None
    mark = hub.watermark() if hub is not None else None
    if mark is None:
        return None
    month = hub.last_complete(Grain.MONTH)
    return f"Data as of {mark:%Y-%m-%d} (last complete month: {month.label})"


def stale_note(request: Request) -> str | None:
    """The banner's second line when the page holds figures computed before the latest data arrived (served
    while their fresh computation runs: web/state.ResultCache); None when every figure is fresh."""
    age = stale_age(request.scope)
    if age is None:
        return None
    return (f"Some figures are from {_ago(age)} ago: new data is arriving and they are being brought up to date. "
            "Reload in a moment for the latest.")


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


# -- response models (the JSON twins) ----------------------------------------------------------------
class Row(BaseModel):
    """One KPI row, exactly as `KpiRow.to_json` writes it (KPI-SPEC §6)."""

    kpi: str
    period: str
    period_start: str
    period_end: str
    segment: dict[str, str]
    value: int | float | None
    numerator: int | float | None
    denominator: int | float | None
    n: int | None
    unit: str
    band: str | None
    previous: int | float | None
    change: int | float | None
    status: str | None
    status_basis: str | None
    partial: bool | None = Field(None, description="true on the running period the data reaches into (only "
                                 "asked for with partial=1); absent otherwise")

    @model_serializer(mode="wrap")
    def _partial_only_when_true(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        if not out.get("partial"):
            out.pop("partial", None)
        return out


def row_out(row: KpiRow, query: RangeQuery) -> Row:
    """A row of the JSON twins: the §6 row, flagged partial when its period ends after the watermark."""
    return Row(**row.to_json(), partial=True if query.is_partial(row) else None)


def _marked(t: Tile, query: RangeQuery) -> Tile:
    """A tile whose latest period is the running one says so beside the period."""
    if query.running is None or t.period is None or t.period != label(query.running, query.grain):
        return t
    return t.model_copy(update={"period": f"{t.period} (partial)"})


class SegmentValue(BaseModel):
    """A segment's latest value of a KPI."""

    segment: dict[str, str]
    label: str
    value: int | float | None
    display: str
    band: str | None
    band_color: str | None
    status: str | None
    status_basis: str | None
    status_note: str | None


class Tile(BaseModel):
    """A KPI's latest program value as a scorecard tile shows it."""

    kpi: str
    name: str
    category: str
    unit: str
    direction: str
    timing: str | None
    period: str | None
    value: int | float | None
    display: str
    band: str | None
    band_color: str | None
    status: str | None  # good | watch | poor (None: no value): what the tile's colour shows
    status_basis: str | None  # target | band | baseline
    status_note: str | None  # the basis in words, for the hover and the legend
    change: int | float | None
    change_display: str
    arrow: str  # ▲ ▼ = or · (no change known)
    improved: bool | None  # None: no change, or no previous value
    benchmarks: list[Benchmark]
    benchmark_marker: float | None  # where the first benchmark sits, as a percentage of the value scale
    value_marker: float | None
    segments: list[SegmentValue]
    spark: list[float | None]


class Category(BaseModel):
    """A category of tiles."""

    id: str
    title: str
    tiles: list[Tile]


class QueryOut(BaseModel):
    """The query as it was resolved (defaults filled in)."""

    grain: str
    from_: date = Field(alias="from")
    to: date
    by: str | None
    partial: bool = False  # the running period is shown (marked partial)
    note: str | None = None  # why the range ends earlier than asked (where the data ends)


class ScorecardOut(Twin):
    """The scorecard: the resolved query, the rows, and the tiles the page draws from them."""

    query: QueryOut
    traits: list[str]
    rows: list[Row]
    categories: list[Category]


class KpiSummary(BaseModel):
    """A catalog entry in short."""

    id: str
    name: str
    category: str
    category_title: str
    unit: str
    direction: str
    timing: str | None
    definition: str


class CatalogOut(Twin):
    """Every KPI of the catalog."""

    count: int
    kpis: list[KpiSummary]


class TargetPoint(BaseModel):
    """The program's target in force in a period."""

    period: str
    value: float
    label: str | None


class TrendOut(BaseModel):
    """The program's trend in a period: against the previous period, a year earlier, the range's first
    period; and the direction over the last periods, judged in the KPI's direction."""

    period: str
    value: float | None
    change: float | None
    year_ago: float | None
    change_vs_year: float | None
    baseline_period: str | None
    change_vs_baseline: float | None
    direction: str | None


class MovesWith(BaseModel):
    """Another KPI whose period-over-period changes correlate with this one's (program level)."""

    kpi: str
    name: str
    r: float | None
    n: int


class KpiOut(Twin):
    """One KPI: all its catalog attributes, its rows over the range, its latest program value, the
    targets in force, its trends and the KPIs that move with it."""

    kpi: KPI
    query: QueryOut
    traits: list[str]
    latest: Tile
    band: Band | None
    rows: list[Row]
    targets: list[TargetPoint]
    trends: list[TrendOut]
    moves_with: list[MovesWith]


class SegmentsOut(Twin):
    """The partner traits a scorecard can be segmented by."""

    traits: list[str]


# -- building the views ------------------------------------------------------------------------------
class ImportOut(BaseModel):
    """One import: a file (or collector request) and what became of its rows."""

    import_id: int
    source: str
    kind: str
    started_at: Instant
    finished_at: Instant | None
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    ignored_columns: str | None = None  # the columns no field took, comma-separated


class CoverageOut(BaseModel):
    """A tracking-plan event (or a custom one) and whether it was ever seen."""

    event: str
    in_plan: bool
    activity: bool | None
    count: int
    first_seen: Instant | None
    last_seen: Instant | None


class RejectedFilter(BaseModel):
    """Filters of the rejected rows: kind, field, import, a text in the reason or source, a page."""

    kind: str | None = None
    field: str | None = None
    import_id: int | None = None
    q: str | None = None
    offset: int = Field(0, ge=0)


class RejectedRowOut(BaseModel):
    """A row that was not stored, with where it came from, its raw content and why."""

    import_id: int | None
    source: str
    kind: str
    row_number: int | None
    field: str | None
    reason: str
    raw: str | None
    rejected_at: Instant | None


class RejectedOut(Twin):
    """A page of rejected rows and how many match the filters in all."""

    filters: RejectedFilter
    total: int
    rows: list[RejectedRowOut]


class DataOut(Twin):
    """The data page: table counts, imports, tracking-plan coverage and the first rejected rows."""

    counts: dict[str, int]
    imports: list[ImportOut]
    coverage: list[CoverageOut]
    never_seen: list[str]
    rejected: RejectedOut


def rejected_view(data: Reader, filters: RejectedFilter, limit: int | None = 200) -> RejectedOut:
    """Rejected rows as the API and the data page show them."""
    rows, total = data.rejected(kind=filters.kind, field=filters.field, import_id=filters.import_id, text=filters.q,
                                limit=limit, offset=filters.offset)
    return RejectedOut(filters=filters, total=total, rows=[RejectedRowOut(**r) for r in rows])


def data_view(data: Reader, filters: RejectedFilter) -> DataOut:
    """Everything the data page shows."""
    counts, imports, coverage = data.data_quality()
    return DataOut(
        counts=counts,
        imports=[ImportOut(**i) for i in imports],
        coverage=[CoverageOut(**c) for c in coverage],
        never_seen=[c["event"] for c in coverage if c["in_plan"] and not c["count"]],
        rejected=rejected_view(data, filters),
    )


def query_out(query: RangeQuery) -> QueryOut:
    """The query as the JSON shows it."""
    return QueryOut.model_validate({"grain": query.grain.value, "from": query.start, "to": query.end, "by": query.by,
                                    "partial": query.partial, "note": query.note})


def query_string(view: ScorecardOut | KpiOut) -> str:
    """The resolved query as a query string, so links and the JSON twin show the same range."""
    q = view.query
    return urlencode({"grain": q.grain, "from": q.from_, "to": q.to, **({"by": q.by} if q.by else {}),
                      **({"partial": 1} if q.partial else {})})


def _band(kpi: KPI, name: str | None) -> Band | None:
    return next((b for b in kpi.bands if b.name == name), None)


def _segment_label(segment: dict[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in segment.items()) or "Whole program"


def _marker(kpi: KPI, rows: Sequence[KpiRow], value: float | None) -> tuple[float | None, float | None]:
    """Positions (0-100) of the first benchmark and of the value on a scale spanning both and the band edges."""
    if not kpi.benchmarks:
        return None, None
    points = [b.value for b in kpi.benchmarks] + [v for b in kpi.bands for v in (b.min, b.max) if v is not None]
    points += [r.value for r in rows if r.value is not None]
    low, high = min(points + [0.0]), max(points)
    if high <= low:
        return None, None

    def pos(x: float) -> float:
        return round(100 * (x - low) / (high - low), 1)

    return pos(kpi.benchmarks[0].value), (pos(value) if value is not None else None)


def tile(kpi: KPI, rows: Sequence[KpiRow]) -> Tile:
    """The tile of `kpi` from its rows (program rows make the value and sparkline; segments the breakdown): the
    latest period in which the KPI has a value, with its status."""
    program = sorted((r for r in rows if r.kpi == kpi.id and not r.segment), key=lambda r: r.period_start)
    # The latest period with a value (its label is on the tile), so a KPI measured in the range is never grey.
    last = next((r for r in reversed(program) if r.value is not None), program[-1] if program else None)
    value = last.value if last else None
    change = last.change if last else None
    change_display = "" if change is None else display_number(change, kpi.unit, signed=True)
    if change is None:
        arrow, improved = "·", None
    elif not any(c in "123456789" for c in change_display):  # rounds to no change at the shown precision
        arrow, improved = "=", None
    else:
        arrow, improved = ("▲" if change > 0 else "▼"), (change > 0) == (kpi.direction == "up")
    band = _band(kpi, last.band if last else None)
    bench_at, value_at = _marker(kpi, program, value)
    segments = []
    if last is not None:
        for r in rows:
            if r.kpi == kpi.id and r.segment and r.period == last.period:
                b = _band(kpi, r.band)
                segments.append(SegmentValue(
                    segment=r.segment, label=_segment_label(r.segment), value=r.value,
                    display=display_number(r.value, kpi.unit), band=r.band, band_color=b.color if b else None,
                    status=r.status, status_basis=r.status_basis, status_note=r.status_note,
                ))
    return Tile(
        kpi=kpi.id, name=kpi.name, category=kpi.category, unit=kpi.unit, direction=kpi.direction,
        timing=kpi.timing, period=last.period if last else None, value=value,
        display=display_number(value, kpi.unit), band=band.name if band else None,
        band_color=band.color if band else None, status=last.status if last else None,
        status_basis=last.status_basis if last else None, status_note=last.status_note if last else None,
        change=change,
        change_display=change_display, arrow=arrow,
        improved=improved,
        benchmarks=list(kpi.benchmarks), benchmark_marker=bench_at, value_marker=value_at,
        segments=sorted(segments, key=lambda s: s.label), spark=[r.value for r in program],
    )


def scorecard_view(data: Reader, query: RangeQuery, kpis: Sequence[str] | None = None) -> ScorecardOut:
    """The scorecard page and its JSON twin: every KPI of the catalog (or those named) over the range."""
    rows = data.scorecard(query, kpis=kpis)
    chosen = [data.kpi(k) for k in kpis] if kpis else data.kpis()
    by_category: dict[str, list[Tile]] = {}
    for kpi in chosen:
        by_category.setdefault(kpi.category, []).append(_marked(tile(kpi, rows), query))
    return ScorecardOut(
        query=query_out(query), traits=data.traits(), rows=[row_out(r, query) for r in rows],
        categories=[Category(id=c, title=CATEGORY_TITLES[c], tiles=t) for c, t in by_category.items()],
    )


def kpi_view(data: Reader, kpi_id: str, query: RangeQuery) -> KpiOut:
    """The KPI page and its JSON twin: the catalog entry with its rows over the range."""
    kpi = data.kpi(kpi_id)
    rows = data.scorecard(query, kpis=[kpi.id])
    latest = _marked(tile(kpi, rows), query)
    book = data.insights.book()
    program = [r for r in rows if not r.segment]
    targets = [TargetPoint(period=r.period, value=t.value, label=t.label)
               for r in program if (t := book.target_for(kpi, {}, r.period_start)) is not None]
    trends = [TrendOut(**{k: v for k, v in t.to_json().items() if k in TrendOut.model_fields})
              for t in data.insights.trends(query, kpi.id) if not t.segment]
    moves = [MovesWith(kpi=o["kpi"], name=data.kpi(o["kpi"]).name, r=o["r"], n=o["n"])
             for o in data.insights.co_movement(kpi.id, query.grain).others[:MOVES_WITH] if o["r"] is not None]
    return KpiOut(
        kpi=kpi, query=query_out(query), traits=data.traits(), latest=latest, band=_band(kpi, latest.band),
        rows=[row_out(r, query) for r in rows], targets=targets, trends=trends, moves_with=moves,
    )


def catalog_view(data: Reader) -> CatalogOut:
    """The catalog page and its JSON twin."""
    kpis = [
        KpiSummary(
            id=k.id, name=k.name, category=k.category, category_title=CATEGORY_TITLES[k.category], unit=k.unit,
            direction=k.direction, timing=k.timing, definition=k.definition,
        )
        for k in data.kpis()
    ]
    return CatalogOut(count=len(kpis), kpis=kpis)


def segments_view(data: Reader) -> SegmentsOut:
    """The traits, for the segment picker and its JSON twin."""
    return SegmentsOut(traits=data.traits())


def rows_of(view: ScorecardOut | KpiOut) -> list[dict[str, Any]]:
    """The view's rows as plain dicts (for the charts)."""
    return [r.model_dump() for r in view.rows]
