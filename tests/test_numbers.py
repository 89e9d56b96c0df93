"""Every number on a page goes through one filter: no "nan", "inf", "-0.0" or "+0", changes signed."""

from __future__ import annotations

import math

import pytest

from partnerkpi.web.numbers import display_number


@pytest.mark.parametrize(("value", "unit", "signed", "shown"), [
    (None, "%", False, "–"),
    (math.nan, "%", False, "–"),
    (math.inf, "count", False, "–"),
    (-math.inf, "currency", True, "–"),
    (-0.0001, "%", False, "0.0 %"),
    (-0.04, "%", True, "0.0 pts"),
    (50, "%", True, "+50.0 pts"),
    (-12.25, "%", True, "-12.2 pts"),
    (1_234_567, "count", False, "1,234,567"),
    (0.456, "share", False, "45.6 %"),
    (0.9996, "share", False, "100.0 %"),
    (-0.0004, "share", True, "0.0 %"),
    (0.125, "share", True, "+12.5 %"),
    (43, "NPS", False, "+43"),
    (0.2, "NPS", False, "0"),
    (-8, "NPS", False, "-8"),
    (88.6, "score", False, "89"),
    (-0.4, "score", False, "0"),
    (0.78123, "auc", False, "0.781"),
    (-0.004, "r", True, "0.00"),
    (0.5, "r", True, "+0.50"),
    (-0.3, "days", True, "-0.3 d"),
])
def test_display_number(value, unit, signed, shown):
    assert display_number(value, unit, signed=signed) == shown


def test_the_pages_use_it_as_their_fmt_filter():
    from partnerkpi.web.deps import templates

    assert templates().env.filters["fmt"] is display_number


def test_a_tile_whose_change_rounds_to_nothing_shows_no_arrow():
    from datetime import datetime

    from partnerkpi.catalog import load_catalog
    from partnerkpi.engine.result import KpiRow
    from partnerkpi.web.views import tile

    churn = load_catalog().get("partner_churn_rate")

    def shown(change: float) -> tuple[str, str, bool | None]:
        row = KpiRow(kpi=churn.id, period="2026-10", period_start=datetime(2026, 10, 1),
                     period_end=datetime(2026, 11, 1), value=0.4, unit="%", previous=0.4 - change, change=change)
        t = tile(churn, [row])
        return t.arrow, t.change_display, t.improved

    assert shown(-0.04) == ("=", "0.0 pts", None)  # 0.44 % -> 0.40 %: no change at one decimal
    assert shown(-0.06) == ("▼", "-0.1 pts", True)  # a real fall of churn: an improvement
