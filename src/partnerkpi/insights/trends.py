"""Trends and baselines: each KPI row compared with the previous period, the same period a year earlier and a
baseline period, plus a trend direction over the last N periods that respects the KPI's direction.

The rule for `direction` (decided here, tested in tests/test_trends.py):

- take the values of the last `window` periods ending with this one (this one included; periods before the
  range count), ignoring nulls but keeping each value at its period position, so gaps keep their spacing;
- `None` when this period's value is null or fewer than 2 values remain (not enough data);
- fit a least-squares line through (position, value); its slope is the change per period;
- "flat" when |slope| <= FLAT_TOLERANCE x mean(|values|), i.e. less than 1 % of the window's level per period
  (so a window of zeros is flat);
- otherwise "improving" when the slope goes the KPI's way (rising for `up`, falling for `down`), else
  "worsening".

A year earlier is 12 months, 4 quarters, 1 year, or 52 weeks for the week grain (so 2026-W27 compares with
2025-W27 in most years). Percent changes are 100 x (value - base) / |base|, null where the base is 0 or null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from partnerkpi.engine.periods import Grain, Period, label, parse_period_label, periods_between, shift
from partnerkpi.engine.result import KpiRow, _clean, iso_z
from partnerkpi.errors import UsageError

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from partnerkpi.catalog import Catalog
    from partnerkpi.catalog.model import KPI
    from partnerkpi.hub import Hub

__all__ = [
    "DEFAULT_WINDOW",
    "FLAT_TOLERANCE",
    "PERIODS_PER_YEAR",
    "Trend",
    "TrendDirection",
    "absolute_change",
    "relative_change",
    "signed",
    "trend_direction",
    "trend_tables",
    "trends",
]

TrendDirection = Literal["improving", "worsening", "flat"]
DEFAULT_WINDOW = 3
FLAT_TOLERANCE = 0.01  # |slope| up to 1 % of the window's mean absolute value per period counts as flat
PERIODS_PER_YEAR: dict[Grain, int] = {Grain.WEEK: 52, Grain.MONTH: 12, Grain.QUARTER: 4, Grain.YEAR: 1}


def absolute_change(value: float | None, base: float | None) -> float | None:
    """value - base; None where either is None."""
    return None if value is None or base is None else value - base


def relative_change(value: float | None, base: float | None) -> float | None:
    """100 x (value - base) / |base| in %; None where either is None or the base is 0."""
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / abs(base)


def trend_direction(
    values: Sequence[float | None], kpi_direction: str, tolerance: float = FLAT_TOLERANCE
) -> TrendDirection | None:
    """The direction of `values` (oldest first, the last is the current period) under the rule of this module."""
    points = [(float(x), float(y)) for x, y in enumerate(values) if y is not None]
    if not values or values[-1] is None or len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    level = sum(abs(y) for _, y in points) / len(points)
    if abs(slope) <= tolerance * level:
        return "flat"
    return "improving" if (slope > 0) == (kpi_direction == "up") else "worsening"


@dataclass(frozen=True)
class Trend:
    """One KPI for one period and segment, compared with the previous period, a year earlier and a baseline."""

    kpi: str
    period: str
    period_start: datetime
    period_end: datetime
    segment: dict[str, str] = field(default_factory=dict)
    unit: str = ""
    value: float | None = None
    previous: float | None = None
    change: float | None = None
    change_pct: float | None = None
    year_ago_period: str = ""
    year_ago: float | None = None
    change_vs_year: float | None = None
    change_vs_year_pct: float | None = None
    baseline_period: str = ""
    baseline: float | None = None
    change_vs_baseline: float | None = None
    change_vs_baseline_pct: float | None = None
    window: int = DEFAULT_WINDOW
    direction: TrendDirection | None = None

    def to_json(self) -> dict[str, Any]:
        """The trend as JSON (instants as ISO-8601 Z, NaN as null)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = iso_z(v) if isinstance(v, datetime) else dict(v) if isinstance(v, dict) else _clean(v)
        return out


def _baseline_period(baseline: str | None, grain: Grain, periods: Sequence[Period]) -> Period:
    if baseline is None:
        return periods[0]
    base_grain, period = parse_period_label(baseline)
    if base_grain is not grain:
        raise UsageError(
            f"the baseline '{baseline}' is a {base_grain} but the trends are by {grain}",
            hint=f"give a {grain} label, like {periods[0].label}",
        )
    return period


def trends(
    hub: Hub,
    grain: str | Grain,
    start: date,
    end: date,
    by: str | None = None,
    kpis: Sequence[str] | None = None,
    baseline: str | None = None,
    window: int = DEFAULT_WINDOW,
) -> list[Trend]:
    """A Trend per KPI row of [start, end) (same order as `Hub.scorecard`), from one scorecard run over the
    range extended back to cover a year earlier, the trend window and the baseline period."""
    grain = grain if isinstance(grain, Grain) else Grain.parse(grain)
    if window < 2:
        raise UsageError(f"the trend window is {window} period(s)", hint="give --window 2 or more")
    periods = periods_between(grain, start, end)
    base = _baseline_period(baseline, grain, periods)
    first = periods[0].start
    ext_start = min(shift(first, grain, -PERIODS_PER_YEAR[grain]), shift(first, grain, 1 - window), base.start)
    ext_end = max(periods[-1].end, base.end)
    rows = hub.scorecard(grain, ext_start.date(), ext_end.date(), by=by, kpis=kpis, judged=False)
    values: dict[tuple[str, tuple, datetime], float | None] = {}
    for row in rows:
        values[(row.kpi, _key(row.segment), row.period_start)] = row.value
    in_range = {p.start for p in periods}
    directions = {k.id: k.direction for k in (hub.kpi(r) for r in {row.kpi for row in rows})}
    return [
        _trend(row, grain, base, window, directions[row.kpi], values)
        for row in rows
        if row.period_start in in_range
    ]


def _key(segment: dict[str, str]) -> tuple:
    return tuple(sorted(segment.items()))


def _trend(
    row: KpiRow,
    grain: Grain,
    base: Period,
    window: int,
    kpi_direction: str,
    values: dict[tuple[str, tuple, datetime], float | None],
) -> Trend:
    seg = _key(row.segment)
    year_start = shift(row.period_start, grain, -PERIODS_PER_YEAR[grain])
    year_ago = values.get((row.kpi, seg, year_start))
    base_value = values.get((row.kpi, seg, base.start))
    recent = [values.get((row.kpi, seg, shift(row.period_start, grain, -i))) for i in range(window - 1, -1, -1)]
    return Trend(
        kpi=row.kpi,
        period=row.period,
        period_start=row.period_start,
        period_end=row.period_end,
        segment=dict(row.segment),
        unit=row.unit,
        value=row.value,
        previous=row.previous,
        change=row.change,
        change_pct=relative_change(row.value, row.previous),
        year_ago_period=label(year_start, grain),
        year_ago=year_ago,
        change_vs_year=absolute_change(row.value, year_ago),
        change_vs_year_pct=relative_change(row.value, year_ago),
        baseline_period=base.label,
        baseline=base_value,
        change_vs_baseline=absolute_change(row.value, base_value),
        change_vs_baseline_pct=relative_change(row.value, base_value),
        window=window,
        direction=trend_direction(recent, kpi_direction),
    )


# -- rendering ------------------------------------------------------------------------------------------
_DIRECTION_STYLES = {"improving": ("▲ improving", "green"), "worsening": ("▼ worsening", "red"),
                     "flat": ("= flat", "dim")}


def signed(change: float, unit: str) -> str:
    """A change for people, with its sign; a change of a % KPI is in percentage points (pp)."""
    from partnerkpi.reports import format_value

    if unit == "%":
        return f"{change:+.1f} pp"
    text = format_value(change, unit)
    return "+" + text if change > 0 and not text.startswith("+") else text


def _change_text(kpi: KPI, change: float | None, pct: float | None) -> Text:
    from rich.text import Text

    if change is None:
        return Text("–", style="dim")
    text = signed(change, kpi.unit)
    if pct is not None:
        text += f" ({pct:+.1f} %)"
    better = change != 0 and (change > 0) == (kpi.direction == "up")
    return Text(text, style="" if change == 0 else "green" if better else "red")


def trend_tables(items: Sequence[Trend], catalog: Catalog) -> list[Table]:
    """One Rich table per segment (the whole program first) with each KPI's latest period of the range."""
    from rich.table import Table
    from rich.text import Text

    from partnerkpi.reports import format_value

    latest: dict[tuple, dict[str, Trend]] = {}
    for t in items:
        kept = latest.setdefault(_key(t.segment), {}).get(t.kpi)
        if kept is None or t.period_start > kept.period_start:
            latest[_key(t.segment)][t.kpi] = t
    tables = []
    for seg, by_kpi in latest.items():
        sample = next(iter(by_kpi.values()))
        title = "Whole program" if not seg else ", ".join(f"{k} = {v}" for k, v in seg)
        table = Table(title=f"{title}: {sample.period} (baseline {sample.baseline_period}, "
                            f"trend over {sample.window} periods)", title_justify="left")
        for column in ("KPI", "value", "vs previous", "vs year ago", "vs baseline", "trend"):
            table.add_column(column, justify="left" if column in {"KPI", "trend"} else "right")
        for kpi in catalog:
            t = by_kpi.get(kpi.id)
            if t is None:
                continue
            shown, style = _DIRECTION_STYLES.get(t.direction or "", ("·", "dim"))
            table.add_row(
                kpi.name,
                format_value(t.value, kpi.unit),
                _change_text(kpi, t.change, t.change_pct),
                _change_text(kpi, t.change_vs_year, t.change_vs_year_pct),
                _change_text(kpi, t.change_vs_baseline, t.change_vs_baseline_pct),
                Text(shown, style=style),
            )
        tables.append(table)
    return tables
