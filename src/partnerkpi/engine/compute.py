"""The one engine: compile catalog entries to ibis expressions, run them, assemble KPI-SPEC §6 rows."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

import partnerkpi.engine.special_kinds  # noqa: F401  (registers the special kinds)
from partnerkpi.catalog.kind_specs import params_of
from partnerkpi.catalog.model import KPI
from partnerkpi.catalog.plan import TrackingPlan
from partnerkpi.engine.context import PROGRAM, Context, Partial, Ratio, Total
from partnerkpi.engine.periods import Grain, Period, make_period, shift
from partnerkpi.engine.regular_kinds import BUILDERS
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


def parts(kpi_id: str, partial: Partial) -> list[ir.Table]:
    """A KPI's expressions as tables of one shape (kpi, part, period_start, seg, a, b), to run as one."""

    def shaped(t: ir.Table, part: str, a: str, b: str | None) -> ir.Table:
        return t.select(
            kpi=ibis.literal(kpi_id),
            part=ibis.literal(part),
            period_start=t.period_start.cast("timestamp"),
            seg=t.seg.cast("string"),
            a=t[a].cast("float64"),
            b=(t[b] if b else ibis.null()).cast("float64"),
        )

    if isinstance(partial, Ratio):
        return [shaped(partial.num, "num", "num", None), shaped(partial.den, "den", "den", None)]
    return [shaped(partial.table, "cell", "value", "n")]


Found = dict[tuple[str, Key], tuple[Any, Any]]


def cells(partial: Partial, found: Found, keys: Sequence[Key]) -> dict[Key, Cell]:
    """Fill every (period, segment) key of one KPI from the rows found, empty ones included."""
    out = {}
    for key in keys:
        if isinstance(partial, Ratio):
            n = _num(found.get(("num", key), (None, None))[0]) or 0.0
            d = _num(found.get(("den", key), (None, None))[0]) or 0.0
            out[key] = Cell(partial.scale * n / d if d else None, n, d, int(round(d)))
            continue
        value, count = (_num(x) for x in found.get(("cell", key), (None, None)))
        if value is None and not count:
            value = 0.0 if isinstance(partial, Total) else None
        out[key] = Cell(value, None, None, int(count or 0))
    return out


@dataclass
class Engine:
    """Computes catalog KPIs on one backend (any ibis connection holding the canonical tables)."""

    table: Callable[[str], ir.Table]
    execute: Execute
    plan: TrackingPlan
    materialized: Callable[[str], ir.Table | None] | None = None
    # A factory of executors for worker threads (one each): while one thread's query runs in the
    # database, another compiles the next KPI. None: one KPI after the other.
    fork: Callable[[], Execute] | None = None
    threads: int = 2

    def segments(self, trait: str) -> list[str]:
        """Distinct non-empty values of a partner trait, sorted."""
        p = self.table("partners")
        values = self.execute(p.select(v=p[trait].cast("string")).distinct())["v"]
        return sorted({str(v) for v in values if v is not None and not pd.isna(v) and str(v) != ""})

    def compute(
        self,
        kpis: Sequence[KPI],
        grain: Grain,
        periods: Sequence[Period],
        trait: str | None = None,
        on_kpi: Callable[[str], None] | None = None,
    ) -> list[KpiRow]:
        """KPI rows for `periods`, whole program first, then per segment of `trait` when given."""
        before = make_period(shift(periods[0].start, grain, -1), grain)
        all_periods = [before, *periods]
        segs = [PROGRAM, *(self.segments(trait) if trait is not None else [])]
        ctx = Context(self.table, self.plan, grain, all_periods, trait, self.materialized)
        partials = {k.id: BUILDERS[k.compute.kind](ctx, params_of(k.compute)) for k in kpis}
        found: dict[str, Found] = {k.id: {} for k in kpis}
        for kpi_id, df in self._run(partials, on_kpi):
            for _, part, start, seg, a, b in df.itertuples(index=False, name=None):
                found[kpi_id][(part, (_ts(start), str(seg)))] = (a, b)
        keys = [(p.start, s) for p in all_periods for s in segs]
        rows: list[KpiRow] = []
        for kpi in kpis:
            filled = cells(partials[kpi.id], found[kpi.id], keys)
            for seg in segs:
                segment = {} if seg == PROGRAM else {trait: seg}
                for prev_period, period in zip(all_periods, all_periods[1:], strict=False):
                    cell, prev = filled[(period.start, seg)], filled[(prev_period.start, seg)]
                    rows.append(_row(kpi, period, segment, cell, prev))
        return rows


    def _run(
        self, partials: dict[str, Partial], on_kpi: Callable[[str], None] | None
    ) -> list[tuple[str, pd.DataFrame]]:
        """Execute each KPI's expression (in worker threads when the backend can fork executors)."""

        def one(item: tuple[str, Partial], execute: Execute) -> tuple[str, pd.DataFrame]:
            kpi_id, partial = item
            tables = parts(kpi_id, partial)
            df = execute(ibis.union(*tables, distinct=False) if len(tables) > 1 else tables[0])
            if on_kpi is not None:
                on_kpi(kpi_id)
            return kpi_id, df

        if self.fork is None or self.threads < 2:
            return [one(item, self.execute) for item in partials.items()]
        local = threading.local()

        def in_thread(item: tuple[str, Partial]) -> tuple[str, pd.DataFrame]:
            if not hasattr(local, "execute"):
                local.execute = self.fork()
            return one(item, local.execute)

        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(in_thread, partials.items()))


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
