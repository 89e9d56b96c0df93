"""The one renderer of the quarterly report: the web page, the PDF download, the CLI and the scheduled send
all call `render_report` (HTML from the Jinja templates beside this module, PDF from that same HTML by
WeasyPrint), so what is shown, downloaded and sent is the same document."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from partnerkpi.access import Memo
from partnerkpi.errors import UsageError
from partnerkpi.reports.build import build_report
from partnerkpi.reports.charts import sparkline, trend_figure
from partnerkpi.reports.document import Report

if TYPE_CHECKING:
    from partnerkpi.hub import Hub

Paper = Literal["A4", "Letter"]
Fmt = Literal["html", "pdf"]
PAPERS = {"A4": "A4", "Letter": "letter"}
TEMPLATES = Path(__file__).parent / "templates"


def css_string(text: object) -> Markup:
    """Text for a CSS string inside the page's <style> (the margin boxes): every character that could end the
    string or the style element is written as a CSS escape, so a partner's name prints as it is."""
    return Markup("".join(f"\\{ord(c):x} " if c in '\\"<>&\'\n\r' else c for c in str(text)))


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["spark"] = lambda series: Markup(sparkline(series))
    env.filters["stamp"] = lambda t: "—" if t is None else f"{t:%Y-%m-%d %H:%M} UTC"
    env.filters["cssstr"] = css_string
    env.filters["day"] = lambda t: "—" if t is None else f"{t:%Y-%m-%d}"
    return env


def report_html(report: Report, paper: Paper = "A4") -> str:
    """The report as one self-contained HTML document (CSS and SVG inline, no script)."""
    if paper not in PAPERS:
        raise UsageError(f"unknown paper '{paper}'", hint="choose A4 or Letter")
    if report.edition == "internal":
        trend = {h.name: h.series for h in report.headlines}
    else:
        trend = {p.name: p.series for p in report.peers if any(x.value is not None for x in p.series)}
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return _environment().get_template("report.html").render(
        r=report, paper=PAPERS[paper], css=Markup(css), trend=Markup(trend_figure(trend)))


def report_pdf(html: str) -> bytes:
    """The PDF WeasyPrint lays out from the report's HTML (paged media: running header and footer)."""
    from weasyprint import HTML

    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def render_report(hub: Hub, period: str | None = "2026-Q3", audience: str = "internal", *,
                  paper: Paper = "A4", fmt: Fmt = "html", memo: Memo | None = None) -> bytes:
    """The report of `period` (a quarter, None: the last the data covers) for `audience` ("internal" or
    "partner:ID", built from that partner's scope only), as HTML or PDF bytes on A4 or Letter paper. Pass
    one `memo` (e.g. `DictMemo()`) to every partner of a burst so the peers' rows are computed once."""
    if fmt not in ("html", "pdf"):
        raise UsageError(f"unknown report format '{fmt}'", hint="choose html or pdf")
    html = report_html(build_report(hub, period, audience, memo=memo), paper)
    return report_pdf(html) if fmt == "pdf" else html.encode("utf-8")

