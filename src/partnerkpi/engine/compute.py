"""The one engine: compile catalog entries to ibis expressions, run them, assemble KPI-SPEC §6 rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis.expr.types as ir
import pandas as pd

import partnerkpi.engine.special  # noqa: F401  (registers the special kinds)
from partnerkpi.catalog.model import KPI
from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.engine.context import PROGRAM, Context, Partial, Ratio, Stat, Total
from partnerkpi.engine.kinds import BUILDERS
from partnerkpi.engine.periods import Grain, Period, make_period, shift
from partnerkpi.engine.result import KpiRow

Execute = Callable[[ir.Expr], pd.DataFrame]
Key = tuple[datetime, str]


@dataclass(frozen=True)
class Cell:
    """One computed (period, segment) value before it becomes a row."""

    value: float | None
    numerator: float | None
    denominator: float | None
    n: int | None


def _ts(x: Any) -> datetime:
    return pd.Timestamp(x).to_pydatetime().replace(tzinfo=None)


def _num(x: Any) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA or x is pd.NaT:
        return None
    return float(x)


def _frame(df: pd.DataFrame, column: str) -> dict[Key, Any]:
    return {(_ts(p), str(s)): v for p, s, v in zip(df["period_start"], df["seg"], df[column], strict=True)}


def evaluate(partial: Partial, execute: Execute, keys: Sequence[Key]) -> dict[Key, Cell]:
    """Run a KPI's expressions and fill every (period, segment) key, empty ones included."""
    if isinstance(partial, Ratio):
        num = _frame(execute(partial.num), "num")
        den = _frame(execute(partial.den), "den")
        out = {}
        for key in keys:
            n, d = _num(num.get(key)) or 0.0, _num(den.get(key)) or 0.0
            value = partial.scale * n / d if d else None
            out[key] = Cell(value, n, d, int(round(d)))
        return out
    df = execute(partial.table)
    values, counts = _frame(df, "value"), _frame(df, "n")
    empty = 0.0 if isinstance(partial, Total) else None
    out = {}
    for key in keys:
        value = _num(values.get(key))
        n = _num(counts.get(key))
        out[key] = Cell(empty if value is None and not n else value, None, None, int(n or 0))
    return out


@dataclass
class Engine:
    """Computes catalog KPIs on one backend (any ibis connection holding the canonical tables)."""

    table: Callable[[str], ir.Table]
    execute: Execute
    plan: TrackingPlan

    def segments(self, trait: str) -> list[str]:
        """Distinct non-empty values of a partner trait, sorted."""
        p = self.table("partners")
        values = self.execute(p.select(v=p[trait].cast("string")).distinct())["v"]
        return sorted({str(v) for v in values if v is not None and not pd.isna(v) and str(v) != ""})

    def compute(
        self, kpis: Sequence[KPI], grain: Grain, periods: Sequence[Period], trait: str | None = None
    ) -> list[KpiRow]:
        """KPI rows for `periods`, whole program first, then per segment of `trait` when given."""
        before = make_period(shift(periods[0].start, grain, -1), grain)
        all_periods = [before, *periods]
        runs: list[tuple[str | None, list[str]]] = [(None, [PROGRAM])]
        if trait is not None:
            runs.append((trait, self.segments(trait)))
        rows: list[KpiRow] = []
        for kpi in kpis:
            for run_trait, segs in runs:
                ctx = Context(self.table, self.plan, grain, all_periods, run_trait)
                partial = BUILDERS[kpi.compute.kind](ctx, kpi.compute.params)
                keys = [(p.start, s) for p in all_periods for s in segs]
                cells = evaluate(partial, self.execute, keys)
                for seg in segs:
                    segment = {} if run_trait is None else {run_trait: seg}
                    for prev_period, period in zip(all_periods, all_periods[1:], strict=False):
                        cell, prev = cells[(period.start, seg)], cells[(prev_period.start, seg)]
                        rows.append(_row(kpi, period, segment, cell, prev))
        return rows


def _row(kpi: KPI, period: Period, segment: dict[str, str], cell: Cell, prev: Cell) -> KpiRow:
    change = None if cell.value is None or prev.value is None else cell.value - prev.value
    return KpiRow(
        kpi=kpi.id,
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        segment=segment,
        value=cell.value,
        numerator=cell.numerator,
        denominator=cell.denominator,
        n=cell.n,
        unit=kpi.unit,
        band=kpi.band_of(cell.value),
        previous=prev.value,
        change=change,
    )
