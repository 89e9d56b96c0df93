"""The Reports page, the report document itself (HTML for the page's frame, PDF as a download) and its JSON
twin. Every one of them comes from the one renderer (`partnerkpi.reports.render`), so what is previewed,
downloaded and mailed is the same document; the Reader decides which editions the actor may read."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from partnerkpi.engine.periods import Grain, label, shift
from partnerkpi.engine.result import iso_z
from partnerkpi.web.deps import ApiData, PageData, render
from partnerkpi.web.openapi import READ_ERRORS
from partnerkpi.web.reader import Reader

router = APIRouter()

PeriodParam = Annotated[str | None, Query(description="The quarter, e.g. 2026-Q3 (default: the last quarter "
                                                      "the data covers completely)",
                                          json_schema_extra={"pattern": r"^(?:19|20|21)\d\d-Q[1-4]$"})]
AudienceParam = Annotated[str | None, Query(description="internal or partner:ID (default: the actor's own "
                                                        "edition)",
                                            json_schema_extra={"pattern": r"^(?:|internal|partner:.+)$"})]
PaperParam = Annotated[Literal["A4", "Letter"], Query(description="A4 or Letter")]
QUARTERS_OFFERED = 8


def _quarters(data: Reader) -> list[str]:
    """The quarters the picker offers: the last one the data covers completely and those before it."""
    last = data.hub.last_complete(Grain.QUARTER)
    if last is None:
        return []
    return [label(shift(last.start, Grain.QUARTER, -k), Grain.QUARTER) for k in range(QUARTERS_OFFERED)]


def _query(period: str, audience: str, paper: str) -> str:
    return urlencode({"period": period, "audience": audience, "paper": paper})


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
def reports_page(request: Request, data: PageData, period: PeriodParam = None, audience: AudienceParam = None,
                 paper: PaperParam = "A4") -> HTMLResponse:
    """Pick a period and an edition; the page shows the rendered document in a frame, with a PDF download."""

    report = data.report(period, audience)
    query = _query(report.period, report.audience, paper)
    context: dict[str, Any] = {
        "quarters": _quarters(data) or [report.period], "audiences": data.report_audiences(), "report": report,
        "paper": paper, "document_url": f"/reports/document?{query}", "pdf_url": f"/reports/document.pdf?{query}",
        "json_url": f"/api/v1/reports?{urlencode({'period': report.period, 'audience': report.audience})}",
    }
    return render(request, "reports.html", page="reports", **context)


@router.get("/reports/document", response_class=HTMLResponse, include_in_schema=False)
def report_document(data: PageData, period: PeriodParam = None, audience: AudienceParam = None,
                    paper: PaperParam = "A4") -> HTMLResponse:
    """The report as HTML, exactly as `render_report` writes it."""
    return HTMLResponse(data.report_html(period, audience, paper))


@router.get("/reports/document.pdf", include_in_schema=False)
def report_pdf(data: PageData, period: PeriodParam = None, audience: AudienceParam = None,
               paper: PaperParam = "A4") -> Response:
    """The report as a PDF download (WeasyPrint lays out the same HTML)."""
    from partnerkpi.reports.render import report_pdf as to_pdf

    report = data.report(period, audience)
    pdf = to_pdf(data.report_html(period, audience, paper))
    name = f"partnerkpi-{report.period}-{report.audience.replace(':', '-')}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/api/v1/reports", tags=["reports"], responses=READ_ERRORS)
def report_json(data: ApiData, period: PeriodParam = None, audience: AudienceParam = None) -> dict[str, Any]:
    """The report model (the JSON twin of the Reports page and of the PDF), with the data watermark every
    twin states."""
    mark = data.hub.watermark()
    return {"data_as_of": iso_z(mark) if mark else None, **data.report(period, audience).to_json()}
