"""Vega-Lite specs (built with Altair) for the pages; the browser renders them with vegaEmbed.

Rows are KPI rows as `KpiRow.to_json` writes them (dicts), so a chart can be drawn from the JSON API too.

Altair checks a spec against the Vega-Lite schema when it writes it; that check took most of a partner
page's time (a spec a tile), so the page charts are written unchecked: a sparkline is one frame, checked
once, with the tile's points; the tests check every kind of chart against the schema (tests/test_pages.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import altair as alt

from partnerkpi.catalog.model import KPI

BAND_FILLS = {"green": "#2e9e5b", "amber": "#e0a100", "red": "#d64541", "grey": "#9aa0a6"}
LINE = "#2b5fad"
PROGRAM = "Whole program"


def _segment_label(segment: Mapping[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in segment.items()) or PROGRAM


def _points(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chart points of rows; a row may name its line with `series` (else its segment names it)."""
    return [
        {"period": r["period"], "start": r["period_start"], "value": r["value"],
         "series": r.get("series") or _segment_label(r["segment"])}
        for r in rows
        if r["value"] is not None
    ]


def _scale(kpi: KPI, values: Sequence[float]) -> tuple[float, float]:
    """A y range holding the values, the finite band edges and the benchmarks, with a little room."""
    points = list(values) + [b.value for b in kpi.benchmarks]
    points += [edge for b in kpi.bands for edge in (b.min, b.max) if edge is not None]
    if not points:
        return 0.0, 1.0
    low, high = min(points), max(points)
    pad = (high - low) * 0.08 or max(abs(high), 1.0) * 0.1
    low = 0.0 if low >= 0 and low - pad < 0 else low - pad
    return low, high + pad


def kpi_chart(rows: Sequence[Mapping[str, Any]], kpi: KPI, main: str = PROGRAM,
              targets: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The KPI over time: one line for the program (or the `main` series) and one per segment (or other
    series), bands as rectangles, benchmarks as rules, and the program's target in force per period
    (`targets`: period, value) as a dashed step line."""
    points = _points([r for r in rows if r["kpi"] == kpi.id])
    low, high = _scale(kpi, [p["value"] for p in points] + [t["value"] for t in targets])
    y_scale = alt.Scale(domain=[low, high], nice=False, zero=False)
    title = f"{kpi.name} ({kpi.unit})" if kpi.unit else kpi.name
    layers: list[alt.Chart] = []
    bands = [
        {
            "band": b.name,
            "y": low if b.min is None else max(b.min, low),
            "y2": high if b.max is None else min(b.max, high),
            "fill": BAND_FILLS.get(b.color, BAND_FILLS["grey"]),
        }
        for b in kpi.bands
    ]
    if bands:
        layers.append(
            alt.Chart(alt.Data(values=bands))
            .mark_rect(opacity=0.13)
            .encode(
                y=alt.Y("y:Q", scale=y_scale, title=title),
                y2="y2:Q",
                color=alt.Color("fill:N", scale=None),
                tooltip=[alt.Tooltip("band:N")],
            )
        )
    if kpi.benchmarks:
        marks = [{"value": b.value, "label": f"{b.label}: {b.value:g}"} for b in kpi.benchmarks]
        rule = alt.Chart(alt.Data(values=marks)).encode(y=alt.Y("value:Q", scale=y_scale))
        layers.append(rule.mark_rule(strokeDash=[5, 4], color="#555", strokeWidth=1.2).encode(tooltip=["label:N"]))
        layers.append(rule.mark_text(align="left", dx=4, dy=-6, fontSize=10, color="#444").encode(
            x=alt.value(0), text="label:N"
        ))
    if targets:
        goal = [{"period": t["period"], "value": t["value"], "label": f"target {t['value']:g}"} for t in targets]
        layers.append(
            alt.Chart(alt.Data(values=goal))
            .mark_line(interpolate="step", strokeDash=[2, 3], color="#1b7f45", strokeWidth=2)
            .encode(x=alt.X("period:O"), y=alt.Y("value:Q", scale=y_scale), tooltip=["label:N", "period:N"])
        )
    series = list(dict.fromkeys(p["series"] for p in points))
    periods = [label for _, label in sorted({(p["start"], p["period"]) for p in points})]
    domain = [main] + [s for s in series if s != main]
    palette = ["#1f1f1f", "#2b5fad", "#c2571a", "#6a3d9a", "#1b9e77", "#e7298a", "#66a61e", "#a6761d"]
    layers.append(
        alt.Chart(alt.Data(values=points))
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("period:O", title="period", sort=periods, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("value:Q", scale=y_scale, title=title),
            color=alt.Color(
                "series:N",
                title="segment",
                scale=alt.Scale(domain=domain, range=[palette[i % len(palette)] for i in range(len(domain))]),
                legend=alt.Legend(orient="bottom", symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1),
            ),
            strokeWidth=alt.condition(f"datum.series == {json.dumps(main)}", alt.value(3), alt.value(1.6)),
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("period:N"), alt.Tooltip("value:Q", format=".2f")],
        )
    )
    chart = alt.layer(*layers).resolve_scale(color="independent").properties(width="container", height=320)
    return chart.to_dict(validate=False)


def sparkline(rows: Sequence[Mapping[str, Any]], program_only: bool = True) -> dict[str, Any]:
    """A small line of the program's values (or of all the rows given) over the periods, no axes."""
    points = _points([r for r in rows if not (program_only and r["segment"])])
    return {**copy.deepcopy(_sparkline_frame()), "data": {"values": points}}


@cache
def _sparkline_frame() -> dict[str, Any]:
    """Every sparkline's spec but its points (checked against the schema once)."""
    return (
        alt.Chart(alt.Data(values=[]))
        .mark_line(color=LINE, strokeWidth=1.6, point=alt.OverlayMarkDef(size=10, color=LINE))
        .encode(
            x=alt.X("start:T", axis=None),
            y=alt.Y("value:Q", axis=None, scale=alt.Scale(zero=False)),
            tooltip=[alt.Tooltip("period:N"), alt.Tooltip("value:Q", format=".2f")],
        )
        .properties(width=140, height=32)
        .configure_view(stroke=None)
        .to_dict()
    )


def partner_chart(own: Sequence[Mapping[str, Any]], peers: Sequence[Mapping[str, Any]], kpi: KPI,
                  partner: str) -> dict[str, Any]:
    """A partner's KPI over time against its peers' median and top-quartile mark (peer rows: kpi, period,
    median, top_quartile), with the KPI's bands and benchmarks."""
    starts = {r["period"]: r["period_start"] for r in own}
    rows = [{**r, "series": partner} for r in own if r["kpi"] == kpi.id]
    for p in peers:
        if p["kpi"] == kpi.id and p["period"] in starts:
            for field, label in (("median", "Peer median"), ("top_quartile", "Peer top quartile")):
                rows.append({"kpi": kpi.id, "period": p["period"], "period_start": starts[p["period"]],
                             "segment": {}, "value": p[field], "series": label})
    return kpi_chart(rows, kpi, main=partner)
