"""The instants an import accepts: nothing before the floor, nothing after the receiving instant plus
the allowed clock skew (start instants and event times), nothing a century past it (end instants and
timestamp properties such as `due_at`, which may lie in the future).

An instant outside these bounds is a typo or a broken clock; stored, it would stretch every default
range and overflow date arithmetic later (pandas holds instants only up to 2262).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from partnerkpi.ingest.sources import Col, message
from partnerkpi.settings import TimeBounds

FAR_YEARS = 100
ISO_OUT = "%Y-%m-%dT%H:%M:%SZ"


def _skew_text(skew: timedelta) -> str:
    seconds = int(skew.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


@dataclass(frozen=True)
class Window:
    """One import's bounds: `now` is its receiving instant (a row's own `_recv`, when earlier, wins)."""

    now: datetime
    bounds: TimeBounds = field(default_factory=TimeBounds)

    def _lit(self, instant: datetime) -> str:
        return f"TIMESTAMP '{instant.isoformat(sep=' ')}'"

    @property
    def received(self) -> str:
        """SQL: the row's receiving instant (a collector message's receivedAt, else the import's)."""
        return f"least(COALESCE(_recv, {self._lit(self.now)}), {self._lit(self.now)})"

    @property
    def latest_start(self) -> str:
        """SQL: the latest accepted event time or start instant of the row."""
        return f"({self.received} + INTERVAL {int(self.bounds.skew.total_seconds())} SECOND)"

    @property
    def latest_end(self) -> str:
        """SQL: the latest accepted end instant or timestamp property."""
        return self._lit(self.now.replace(year=self.now.year + FAR_YEARS) if not (
            self.now.month == 2 and self.now.day == 29) else self.now + timedelta(days=365 * FAR_YEARS))

    @property
    def floor(self) -> str:
        return self._lit(self.bounds.floor)

    def clamp(self, expr: str) -> str:
        """SQL: a timestamp property inside the bounds, NULL (as if unparseable) outside them."""
        return f"CASE WHEN ({expr}) BETWEEN {self.floor} AND {self.latest_end} THEN ({expr}) END"

    def checks(self, f: str, name: str, *, end: bool = False) -> list[tuple[str, str, str, str]]:
        """(code, blamed field, failing condition, reason SQL) of the bounds of time field `f`."""
        shown = Col(f"strftime({f}, '{ISO_OUT}')")
        floor = self.bounds.floor
        early = (f"{f}_too_early", name, f"{f} < {self.floor}",
                 message(f"{name} ", shown, f" is before {floor:%Y-%m-%d}, the earliest instant accepted; "
                         "fix the value (or lower the floor with PARTNERKPI_TS_FLOOR)"))
        if end:
            late = (f"{f}_too_late", name, f"{f} > {self.latest_end}",
                    message(f"{name} ", shown, f" is more than {FAR_YEARS} years after the import; fix the value"))
        else:
            late = (f"{f}_in_future", name, f"{f} > {self.latest_start}",
                    message(f"{name} ", shown, " is later than the moment it was received (",
                            Col(f"strftime({self.received}, '{ISO_OUT}')"),
                            f") plus the allowed clock skew of {_skew_text(self.bounds.skew)}; fix the value or "
                            "the sender's clock (or allow more skew with PARTNERKPI_MAX_CLOCK_SKEW)"))
        return [early, late]
