"""Static SVG charts of a report, made on the server so the HTML works offline and WeasyPrint (which runs no
JavaScript) prints them: the trend figure is drawn by Altair and `vl_convert.vegalite_to_svg`; sparklines,
one per table row, are a few SVG lines written here (vl-convert takes about half a second a chart)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

import altair as alt
import vl_convert

from partnerkpi.reports.document import Point

LINE = "#2b5fad"
PEER = "#9aa0a6"
SPARK_W, SPARK_H = 90, 22


def sparkline(series: Sequence[Point]) -> str:
    """A small line of the series (gaps where a period has no value), no axes; "" with fewer than 2 values."""
    values = [p.value for p in series]
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = SPARK_W / max(len(values) - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{i * step:.1f},{SPARK_H - 2 - (v - low) / span * (SPARK_H - 4):.1f}"

    runs: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(xy(i, v))
    lines = "".join(f'<polyline points="{" ".join(r)}" fill="none" stroke="{LINE}" stroke-width="1.5"/>'
                    for r in runs if len(r) > 1)
    last = next((i, v) for i, v in reversed(list(enumerate(values))) if v is not None)
    x, y = xy(*last).split(",")
    title = escape(", ".join(f"{p.period}: {'–' if p.value is None else f'{p.value:g}'}" for p in series))
    return (f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" viewBox="-2 0 {SPARK_W + 4} {SPARK_H}" '
            f'width="{SPARK_W}" height="{SPARK_H}" role="img"><title>{title}</title>{lines}'
            f'<circle cx="{x}" cy="{y}" r="2" fill="{LINE}"/></svg>')


def trend_figure(lines: dict[str, Sequence[Point]], columns: int = 4) -> str:
    """Small multiples (one panel per name, its own y scale) of the series, as an SVG that fills its
    container's width; "" when no series has a value."""
    data = [{"kpi": name, "period": p.period, "value": p.value} for name, series in lines.items() for p in series]
    if all(row["value"] is None for row in data):
        return ""
    chart = (
        alt.Chart(alt.Data(values=data))
        # A period without a value breaks the line (a gap), rather than a line drawn across it.
        .mark_line(color=LINE, strokeWidth=1.6, invalid="break-paths-filter-domains",
                   point=alt.OverlayMarkDef(size=12, color=LINE))
        .encode(x=alt.X("period:O", title=None, axis=alt.Axis(labelAngle=-40, labelFontSize=8)),
                y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(labelFontSize=8,
                                                                                         tickCount=4)))
        .properties(width=130, height=70)
        .facet(facet=alt.Facet("kpi:N", title=None, header=alt.Header(labelFontSize=9, labelLimit=150),
                               sort=list(lines)), columns=columns)
        .resolve_scale(y="independent")
        .configure_view(stroke=None)
    )
    svg = vl_convert.vegalite_to_svg(chart.to_dict())
    # The SVG states its size in pixels: let it scale to the page's width (100 %) and keep its proportions.
    return re.sub(r'<svg([^>]*?) width="([\d.]+)" height="([\d.]+)"',
                  r'<svg\1 width="100%" preserveAspectRatio="xMidYMin meet" data-w="\2" data-h="\3"', svg, count=1)
