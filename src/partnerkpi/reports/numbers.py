"""Numbers for people, as a finance tool shows them: thousands separators, the program's currency on money,
a fixed number of decimals per unit, changes rounded like their values, and never "-0.0".

Values are rounded for display only: bands, statuses and targets are judged on the exact value.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal

from partnerkpi.settings import default_currency

# Currencies written before the amount ($1,234); any other code goes after it (1,234 CHF).
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
DURATION_UNITS = {"days": "d", "hours": "h", "minutes": "min"}
MISSING = "–"
_WIDE = Context(prec=400)  # room for every finite float's digits (up to 1.8e308) and its decimals


def decimals(value: float | None, unit: str) -> int:
    """How many decimals a value of `unit` is shown with: one for percentages and durations, none for money,
    NPS and whole counts, two for other ratios."""
    if unit in ("%", *DURATION_UNITS):
        return 1
    if unit in ("currency", "NPS"):
        return 0
    if value is not None and math.isfinite(value) and float(value).is_integer():
        return 0
    return 2


def _number(value: float, places: int, sign: bool = False) -> tuple[str, str]:
    """(sign, digits) of `value` rounded half away from zero to `places` (as written: 2.675 is 2.68, 0.5 is 1,
    where binary floats and Python's round would say 2.67 and 0), with thousands separators; zero has no
    sign."""
    exact = Decimal(repr(abs(float(value))))
    rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=_WIDE)
    digits = f"{rounded:,.{places}f}"
    if rounded == 0:
        return ("", digits)
    if value < 0:
        return ("-", digits)
    return ("+" if sign else "", digits)


def _with_unit(sign: str, digits: str, unit: str, currency: str | None, change: bool) -> str:
    if unit == "%":
        return f"{sign}{digits} {'pp' if change else '%'}"
    if unit == "currency":
        code = (currency or default_currency()).upper()
        symbol = CURRENCY_SYMBOLS.get(code)
        return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {code}"
    if unit in DURATION_UNITS:
        return f"{sign}{digits} {DURATION_UNITS[unit]}"
    return f"{sign}{digits}"


def format_value(value: float | None, unit: str, currency: str | None = None) -> str:
    """A KPI value for people: "12,345.6 %", "$1,234" (money in `currency`, default $PARTNERKPI_CURRENCY or
    USD), "3.5 d", "+42" for NPS, "1,204" for counts, "1.25" for other ratios; "–" when there is none."""
    if value is None or not math.isfinite(value):
        return MISSING
    sign, digits = _number(value, decimals(value, unit), sign=unit == "NPS")
    return _with_unit(sign, digits, unit, currency, change=False)


def format_change(change: float | None, unit: str, value: float | None = None, currency: str | None = None) -> str:
    """A change against an earlier period, with its sign and rounded like the value it belongs to (`value`, so a
    ratio shown as 1.25 changes by +0.10 and a count of 12 by +3); a change of a percentage is in points (pp).
    A change that rounds to zero is "0" in the value's decimals, without a sign."""
    if change is None or not math.isfinite(change):
        return MISSING
    places = decimals(value if value is not None else change, unit)
    if value is not None and places == 0 and not float(change).is_integer() and unit not in ("currency", "NPS"):
        places = 2  # a whole value whose change is not whole (an average moving): say how much
    sign, digits = _number(change, places, sign=True)
    return _with_unit(sign, digits, unit, currency, change=True)
