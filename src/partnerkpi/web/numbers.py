"""Every number a page shows goes through `display_number` (the `fmt` Jinja filter): the report formatter for
KPI units, plus the pages' own kinds (shares of 1, scores, AUC, correlations, means), never "nan", "inf"
or "-0.0"."""

from __future__ import annotations

import math
import re

from partnerkpi.reports.table import format_value

NO_VALUE = "–"
DECIMALS = {"auc": 3, "r": 2, "mean": 2}  # the pages' own kinds of number, beside the KPI units


def display_number(value: float | None, unit: str = "count", *, signed: bool = False) -> str:
    """`value` for people in `unit`: a KPI unit ("%", "currency", "days", ...), or "count", "share" (a
    fraction of 1 shown as %), "score" (whole points), "auc", "r", "mean" (3, 2, 2 decimals). `signed`
    marks a change: "+" on a rise, and a change of a % KPI is in percentage points ("pts")."""
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return NO_VALUE
    if unit == "share":
        text = f"{100 * value:,.1f} %"
    elif unit == "score":
        text = f"{value:,.0f}"
    elif unit in DECIMALS:
        text = f"{value:,.{DECIMALS[unit]}f}"
    elif signed and unit == "%":
        text = f"{value:,.1f} pts"
    else:
        text = format_value(value, unit)
    text = text.removeprefix("+")
    if not re.search(r"[1-9]", text):
        return text.removeprefix("-")  # rounded to zero: no "-0.0", no "+0"
    if (signed or unit == "NPS") and not text.startswith("-"):
        text = "+" + text  # a rise; and a positive NPS carries its sign by convention
    return text
