"""The result row of every KPI computation (KPI-SPEC §6)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def iso_z(instant: datetime) -> str:
    """A naive UTC datetime as ISO-8601 with a Z."""
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(x: float | int | None) -> float | int | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return x


def _count_like(x: float | int | None) -> float | int | None:
    """Numerators and denominators that are whole numbers print as integers (77, not 77.0)."""
    x = _clean(x)
    return int(x) if isinstance(x, float) and x.is_integer() else x


@dataclass(frozen=True)
class KpiRow:
    """One KPI for one period and one segment (`segment == {}` for the whole program)."""

    kpi: str
    period: str
    period_start: datetime
    period_end: datetime
    segment: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    n: int | None = None
    unit: str = ""
    band: str | None = None
    previous: float | None = None
    change: float | None = None
    status: str | None = None  # good | watch | poor (None: no value, or not judged yet)
    status_basis: str | None = None  # target | band | baseline
    status_note: str | None = None  # what it was judged against, in words: "vs target 75.0 % from 2026-01-01"

    def to_json(self) -> dict[str, Any]:
        """The row exactly as KPI-SPEC §6 shows it (`status_note` is for people: pages and tables)."""
        return {
            "kpi": self.kpi,
            "period": self.period,
            "period_start": iso_z(self.period_start),
            "period_end": iso_z(self.period_end),
            "segment": dict(self.segment),
            "value": _clean(self.value),
            "numerator": _count_like(self.numerator),
            "denominator": _count_like(self.denominator),
            "n": self.n,
            "unit": self.unit,
            "band": self.band,
            "previous": _clean(self.previous),
            "change": _clean(self.change),
            "status": self.status,
            "status_basis": self.status_basis,
        }
