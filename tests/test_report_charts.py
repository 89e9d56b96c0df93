"""The report's trend figure and its distance to a mark, on hand-made series."""

from __future__ import annotations

import re
from types import SimpleNamespace

from partnerkpi.reports.build import _distance
from partnerkpi.reports.charts import trend_figure
from partnerkpi.reports.document import Point


def _line_paths(svg: str) -> list[str]:
    return re.findall(r'aria-roledescription="line mark" d="([^"]*)"', svg)


def test_a_period_without_a_value_breaks_the_line():
    quarters = ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4")
    svg = trend_figure({
        "gap": [Point(q, v) for q, v in zip(quarters, (1.0, 2.0, None, 4.0), strict=True)],
        "full": [Point(q, v) for q, v in zip(quarters, (1.0, 2.0, 3.0, 4.0), strict=True)],
    })
    gap, full = _line_paths(svg)
    # "gap": Q1-Q2 drawn, then a new sub-path starts at Q4 (no segment across Q3); "full": one path of 4 points
    assert gap.count("M") == 2 and gap.count("L") == 1
    assert full.count("M") == 1 and full.count("L") == 3
    assert len(re.findall(r'aria-roledescription="point"', svg)) == 7  # no dot for the missing quarter
    assert "value: 3" in svg and svg.count("period: 2025-Q3") == 1


def test_no_value_at_all_draws_no_figure():
    assert trend_figure({"empty": [Point("2025-Q1", None), Point("2025-Q2", None)]}) == ""


def test_distance_is_a_share_of_the_mark_and_of_the_scale_for_a_zero_percent_mark():
    share = SimpleNamespace(unit="%", direction="down")
    count = SimpleNamespace(unit="tasks", direction="down")
    up = SimpleNamespace(unit="%", direction="up")
    assert round(_distance(share, 33.3, 0.0), 6) == 0.333  # 33.3 pp over a 0 % median: a third of the scale
    assert _distance(count, 1.0, 0.0) == 1.0  # one task over none: one unit
    assert round(_distance(up, 60.0, 80.0), 6) == 0.25  # 20 short of 80
    assert _distance(up, 90.0, 80.0) == 0.0
    assert _distance(up, None, 80.0) is None
