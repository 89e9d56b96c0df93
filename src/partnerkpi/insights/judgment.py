"""Judgment (KPI-SPEC v2 §6): a status for every KPI row, so no KPI with a value is left unjudged.

Pure functions over result rows and a TargetBook. The first basis that applies wins:

- `target`: a target in force for the KPI and segment at the period's start; good when met in the KPI's
  direction, watch when worse by up to the tolerance (a share of |target|), poor beyond;
- `band`: the band in force that holds the value (the book's band set, else the catalog's bands), by its
  colour (green, amber, red) or else its name (strong, moderate, low);
- `baseline`: the program's own baseline for the KPI, segment and grain (`baselines`), judged like a target.

Exactly at the tolerance is watch. A target or baseline of 0 leaves no tolerance: any worsening is poor.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from partnerkpi.catalog.model import KPI, Band
from partnerkpi.engine.result import KpiRow
from partnerkpi.insights.targets import JudgmentSettings, TargetBook
from partnerkpi.reports.numbers import format_value

__all__ = ["GOOD", "POOR", "STATUSES", "WATCH", "Baseline", "SeriesKey", "against", "baselines", "judge",
           "judge_rows", "series_key"]

GOOD, WATCH, POOR = "good", "watch", "poor"
STATUSES = (GOOD, WATCH, POOR)
_BY_COLOUR = {"green": GOOD, "amber": WATCH, "red": POOR}
_BY_NAME = {"strong": GOOD, "good": GOOD, "high": GOOD, "moderate": WATCH, "medium": WATCH, "fair": WATCH,
            "low": POOR, "weak": POOR, "poor": POOR}
_EDGE = 1e-9  # relative slack so that "exactly 10 % worse" survives float rounding (62 - 55.8 > 6.2)

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (kpi, sorted segment items)


def series_key(row: KpiRow) -> SeriesKey:
    """The KPI and segment a row belongs to (a baseline is kept per series, for one grain)."""
    return row.kpi, tuple(sorted(row.segment.items()))


@dataclass(frozen=True)
class Baseline:
    """A series' baseline: the median of its first periods with a value, and their labels."""

    value: float
    periods: tuple[str, ...]

    def describe(self, unit: str = "count") -> str:
        """In words, as tiles show it on hover, in the KPI's unit: "vs baseline 2025-01..03: 62.0 %"."""
        return f"vs baseline {_span(self.periods)}: {format_value(self.value, unit)}"


def _span(labels: Sequence[str]) -> str:
    first, last = labels[0], labels[-1]
    if first == last:
        return first
    if len(first) > 5 and first[:5] == last[:5]:  # same year: 2025-01..03, 2025-W01..W03, 2025-Q1..Q3
        return f"{first}..{last[5:]}"
    return f"{first}..{last}"


def _number(x: float) -> str:
    if float(x).is_integer():
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:g}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.1f}" if abs(x) >= 1 else f"{x:.3g}"


def _measured(row: KpiRow) -> bool:
    """A value that counted something: a count of 0 (n == 0) before its first event is no measurement."""
    return row.value is not None and row.n != 0


def baselines(rows: Iterable[KpiRow], settings: JudgmentSettings) -> dict[SeriesKey, Baseline]:
    """Each series' baseline from its rows (which must run from the data's first period): the median of the
    first `baseline_periods` periods that measured something, else of the first periods with any value."""
    series: dict[SeriesKey, dict] = defaultdict(dict)
    for row in rows:
        if row.value is not None:
            series[series_key(row)].setdefault(row.period_start, row)
    out = {}
    for key, by_start in series.items():
        ordered = [by_start[s] for s in sorted(by_start)]
        window = settings.baseline_periods_for(key[0])
        chosen = [r for r in ordered if _measured(r)][:window] or ordered[:window]
        if chosen:
            out[key] = Baseline(float(statistics.median(r.value for r in chosen)),  # type: ignore[misc]
                                tuple(r.period for r in chosen))
    return out


def against(value: float, reference: float, direction: str, tolerance: float) -> str:
    """good when `value` is at least as good as `reference` in the KPI's direction, watch when worse by up to
    `tolerance` × |reference| (the edge included), poor beyond."""
    worse = reference - value if direction == "up" else value - reference
    if worse <= 0:
        return GOOD
    allowed = tolerance * abs(reference)
    return WATCH if worse <= allowed or math.isclose(worse, allowed, rel_tol=_EDGE) else POOR


def _band_status(band: Band) -> str | None:
    return _BY_COLOUR.get(band.color) or _BY_NAME.get(band.name.lower())


def _band_text(band: Band) -> str:
    def edge(x: float) -> str:
        return _number(x)

    if band.min is not None and band.max is not None:
        return f"band {band.name} ({edge(band.min)}–{edge(band.max)})"
    if band.min is not None:
        return f"band {band.name} ({'≥' if band.min_inclusive else '>'} {edge(band.min)})"
    if band.max is not None:
        return f"band {band.name} ({'≤' if band.max_inclusive else '<'} {edge(band.max)})"
    return f"band {band.name}"


def judge(row: KpiRow, kpi: KPI, book: TargetBook, baseline: Baseline | None) -> KpiRow:
    """The row with its status, basis and note (all None without a value, or without any basis)."""
    if row.value is None:
        return replace(row, status=None, status_basis=None, status_note=None)
    settings = book.judgment
    target = book.target_for(kpi, row.segment, row.period_start)
    if target is not None:
        status = against(row.value, target.value, kpi.direction, settings.tolerance_for(kpi.id))
        note = f"vs target {format_value(target.value, kpi.unit)} from {target.effective_from.isoformat()}"
        return replace(row, status=status, status_basis="target", status_note=note)
    band = book.band_of(kpi, row.segment, row.period_start, row.value)
    if band is not None and (status := _band_status(band)) is not None:
        return replace(row, status=status, status_basis="band", status_note=_band_text(band))
    if baseline is not None:
        status = against(row.value, baseline.value, kpi.direction, settings.tolerance_for(kpi.id))
        return replace(row, status=status, status_basis="baseline", status_note=baseline.describe(kpi.unit))
    return replace(row, status=None, status_basis=None, status_note=None)


def judge_rows(rows: Sequence[KpiRow], book: TargetBook,
               found: Mapping[SeriesKey, Baseline]) -> list[KpiRow]:
    """Every row judged (`found`: the baselines, from `baselines` over the series' rows since the data began)."""
    kpis = {k.id: k for k in book.catalog}
    return [judge(r, kpis[r.kpi], book, found.get(series_key(r))) for r in rows]
