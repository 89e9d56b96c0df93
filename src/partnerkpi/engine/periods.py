"""Period arithmetic (KPI-SPEC §1): half-open [start, end) periods of ISO weeks, months, quarters, years."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from partnerkpi.errors import UsageError

# The dates a range may span: wide enough for any program, narrow enough that period arithmetic and
# pandas' nanosecond instants (1677..2262) never overflow.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2200, 1, 1)
MAX_PERIODS = 1000


def check_day(day: date, name: str) -> date:
    """`day` when it lies in [EARLIEST_DAY, LATEST_DAY], else a UsageError naming the option."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise UsageError(f"{name} {day.isoformat()} is outside the dates partnerkpi handles "
                         f"({EARLIEST_DAY} .. {LATEST_DAY})", hint=f"write {name} as a date between those")
    return day


def parse_day(text: str | None, name: str) -> date | None:
    """An ISO date (YYYY-MM-DD) typed by a user, None when not given; a UsageError naming `name` otherwise."""
    if text is None or text == "":
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} '{text}' is not a date", hint=f"write {name} as YYYY-MM-DD") from None
    return check_day(day, name)


class Grain(StrEnum):
    """The period grains; the value is the name users type."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @classmethod
    def parse(cls, text: str) -> Grain:
        try:
            return cls(text.lower())
        except ValueError:
            raise UsageError(
                f"unknown grain '{text}'", hint="use one of: week, month, quarter, year"
            ) from None

    @property
    def truncate_unit(self) -> str:
        """The ibis `truncate` unit that maps an instant to the start of its period."""
        return {"week": "W", "month": "M", "quarter": "Q", "year": "Y"}[self.value]


@dataclass(frozen=True, order=True)
class Period:
    """One period: `start <= t < end`, with its label (2026-W27, 2026-07, 2026-Q3, 2026)."""

    start: datetime
    end: datetime
    label: str


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def period_start(instant: date | datetime, grain: Grain) -> datetime:
    """The start of the period that contains `instant`."""
    day = instant.date() if isinstance(instant, datetime) else instant
    if grain is Grain.WEEK:
        return _midnight(day - timedelta(days=day.weekday()))
    if grain is Grain.MONTH:
        return datetime(day.year, day.month, 1)
    if grain is Grain.QUARTER:
        return datetime(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return datetime(day.year, 1, 1)


def _add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1)


def shift(start: datetime, grain: Grain, steps: int = 1) -> datetime:
    """The start of the period `steps` periods after the one starting at `start` (negative: before)."""
    if grain is Grain.WEEK:
        return start + timedelta(weeks=steps)
    return _add_months(start, {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[grain] * steps)


def label(start: datetime, grain: Grain) -> str:
    """The period's label."""
    if grain is Grain.WEEK:
        iso = start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if grain is Grain.MONTH:
        return f"{start.year}-{start.month:02d}"
    if grain is Grain.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year}"


def make_period(start: datetime, grain: Grain) -> Period:
    """The period that starts at `start`."""
    return Period(start, shift(start, grain), label(start, grain))


def periods_between(grain: Grain, start: date, end: date) -> list[Period]:
    """The periods from the one containing `start` while they start before `end`."""
    if end <= start:
        raise UsageError(
            f"the range {start} .. {end} is empty", hint="--to must be after --from (--to is exclusive)"
        )
    check_day(start if not isinstance(start, datetime) else start.date(), "the start")
    check_day(end if not isinstance(end, datetime) else end.date(), "the end")
    stop = end if isinstance(end, datetime) else _midnight(end)
    out, cursor = [], period_start(start, grain)
    while cursor < stop:
        if len(out) == MAX_PERIODS:
            raise UsageError(f"the range {start} .. {end} holds more than {MAX_PERIODS} {grain.value}s",
                             hint="choose a shorter range or a coarser grain")
        out.append(make_period(cursor, grain))
        cursor = shift(cursor, grain)
    return out


def parse_period_label(text: str) -> tuple[Grain, Period]:
    """Parse a label like 2026-Q3, 2026-07, 2026-W27 or 2026 back into its grain and period."""
    import re

    text = text.strip()
    if m := re.fullmatch(r"(\d{4})-W(\d{2})", text):
        start = _midnight(date.fromisocalendar(int(m[1]), int(m[2]), 1))
        return Grain.WEEK, make_period(start, Grain.WEEK)
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        return Grain.QUARTER, make_period(datetime(int(m[1]), 3 * int(m[2]) - 2, 1), Grain.QUARTER)
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        return Grain.MONTH, make_period(datetime(int(m[1]), int(m[2]), 1), Grain.MONTH)
    if m := re.fullmatch(r"(\d{4})", text):
        return Grain.YEAR, make_period(datetime(int(m[1]), 1, 1), Grain.YEAR)
    raise UsageError(f"'{text}' is not a period label", hint="write 2026-W27, 2026-07, 2026-Q3 or 2026")
