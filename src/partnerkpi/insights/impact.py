"""Impact analysis: does a KPI move the outcomes? Four views, each a result object with `to_json()` and a
Rich rendering.

- `risers_vs_fallers`: partners whose KPI rose between two windows against those whose KPI fell, on the
  relative change of an outcome (a difference of means with a percentile bootstrap interval).
- `lagged_correlation`: the program series of a KPI at t against an outcome at t + lag, on
  period-over-period changes (levels of two trending series correlate whatever drives them).
- `before_after`: an outcome in the N periods before a date against the N periods after it, paired per
  partner, with a bootstrap interval of the relative change.
- `co_movement`: which other KPIs' period-over-period changes move with this one's (the KPI page's
  "moves with").

Per-partner values come from the scorecard with one segment per partner; a partner-period counts only
when the partner is in the period's population (KPI-SPEC §4: onboarded before the end, not offboarded
before the start), so the months before a partner joined never read as zeros. The statistics are in `stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from partnerkpi.engine.derived import DERIVED
from partnerkpi.engine.periods import Grain, Period, period_start, periods_between, shift
from partnerkpi.errors import NotFoundError, UsageError
from partnerkpi.hub import PER_PARTNER, Hub
from partnerkpi.insights.stats import (
    Interval,
    _clean,
    changes,
    difference_of_means,
    difference_of_pooled_changes,
    fisher_interval,
    lagged_pearson,
    pearson,
    pooled_relative_change,
)

Method = Literal["changes", "levels"]
Window = tuple[date, date]


# -- per-partner panels -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Panel:
    """KPI values per partner and period: `values[kpi][partner, period]`, nan where the partner is not in
    the period's population or the value is null."""

    periods: list[Period]
    partners: list[str]
    values: dict[str, np.ndarray]

    def window_mean(self, kpi: str, window: Window) -> np.ndarray:
        """Each partner's mean per period over the periods lying wholly inside `window` (nan: none)."""
        block = self.values[kpi][:, _window_cols(self, window)]
        seen = np.isfinite(block)
        count = seen.sum(axis=1)
        total = np.where(seen, block, 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def window_total(self, kpi: str, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Each partner's sum of values and number of periods with a value, over the periods lying wholly
        inside `window`."""
        block = self.values[kpi][:, _window_cols(self, window)]
        seen = np.isfinite(block)
        return np.where(seen, block, 0.0).sum(axis=1), seen.sum(axis=1).astype(np.float64)


def _window_cols(panel: Panel, window: Window) -> list[int]:
    lo, hi = _dt(window[0]), _dt(window[1])
    return [j for j, p in enumerate(panel.periods) if p.start >= lo and p.end <= hi]


def partner_panel(hub: Hub, kpis: Sequence[str], grain: Grain | str, start: date, end: date) -> Panel:
    """The per-partner scorecard of `kpis` over [start, end) as arrays."""
    grain = _grain(grain)
    periods = periods_between(grain, start, end)
    partners = hub.partners()
    ids = [str(p["partner_id"]) for p in partners]
    row_of = {pid: i for i, pid in enumerate(ids)}
    col_of = {p.start: j for j, p in enumerate(periods)}
    in_p = np.array(
        [[p["onboarded_at"] < q.end and (p["offboarded_at"] is None or p["offboarded_at"] >= q.start)
          for q in periods] for p in partners],
        dtype=bool,
    ).reshape(len(ids), len(periods))
    values = {k: np.full((len(ids), len(periods)), np.nan) for k in kpis}
    for r in hub.scorecard(grain, start, end, by=PER_PARTNER, kpis=list(kpis), judged=False):
        if r.segment and r.value is not None and r.period_start in col_of:
            values[r.kpi][row_of[r.segment[PER_PARTNER]], col_of[r.period_start]] = r.value
    for k in kpis:
        values[k][~in_p] = np.nan
    return Panel(periods, ids, values)


def activity_range(hub: Hub, grain: Grain | str) -> tuple[date, date]:
    """The range an impact analysis covers by default: from the start of the period of the first activity
    day (earlier non-activity events, such as old access grants, do not start it) to the day after the
    last event."""
    grain = _grain(grain)
    engine = hub.engine
    days = engine.materialized("derived_activity_days") if engine.materialized else None
    if days is None:
        days = DERIVED["derived_activity_days"](engine.table("events"), hub.plan)
    first = engine.execute(days.aggregate(first=days.day.min()))["first"].iloc[0]
    _, end = hub.default_range(grain)
    if first is None or first != first:
        raise UsageError("there is no activity data yet", hint="import events first (`partnerkpi import`)")
    start = period_start(first.to_pydatetime(), grain).date()
    if end <= start:  # e.g. by year on data that has not covered a whole year yet
        raise NotFoundError(f"the data covers no whole {grain.value} yet", hint="use a finer grain, e.g. month")
    return start, end


# -- (a) risers vs fallers --------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupStats:
    """One group of partners: how many, their mean KPI change, their mean relative outcome change, and the
    pooled one (the group's summed outcome after / before − 1: big partners weigh more, small bases less)."""

    n: int
    kpi_change: float | None
    outcome_change: float | None
    pooled_change: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "kpi_change": _clean(self.kpi_change), "outcome_change": _clean(self.outcome_change),
                "pooled_change": _clean(self.pooled_change)}


@dataclass(frozen=True)
class RisersVsFallers:
    """Partners whose `kpi` rose between the windows against those whose `kpi` fell: the difference of
    their mean relative change of `on` (risers − fallers), with a bootstrap interval."""

    kpi: str
    on: str
    grain: str
    before: Window
    after: Window
    risers: GroupStats
    fallers: GroupStats
    difference: float | None
    interval: Interval
    pooled_difference: float | None
    pooled_interval: Interval
    excluded: dict[str, int]
    n_boot: int
    seed: int
    partners: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "analysis": "risers_vs_fallers", "kpi": self.kpi, "on": self.on, "grain": self.grain,
            "before": _window_json(self.before), "after": _window_json(self.after),
            "outcome": f"relative change of the mean {self.on} per period, after vs before, per partner",
            "risers": self.risers.to_json(), "fallers": self.fallers.to_json(),
            "difference": _clean(self.difference), "interval": self.interval.to_json(),
            "pooled_difference": _clean(self.pooled_difference), "pooled_interval": self.pooled_interval.to_json(),
            "excluded": dict(self.excluded), "n_boot": self.n_boot, "seed": self.seed,
            "partners": [{k: _clean(v) for k, v in p.items()} for p in self.partners],
        }

    def __rich__(self) -> Table:
        t = Table(title=f"Partners whose {self.kpi} rose vs fell: change of {self.on} "
                  f"({_window_text(self.before)} → {_window_text(self.after)}, by {self.grain})",
                  title_justify="left")
        for column in ("group", "partners", f"mean Δ {self.kpi}", f"mean relative Δ {self.on}", "pooled"):
            t.add_column(column, justify="left" if column == "group" else "right")
        for name, g in (("risers", self.risers), ("fallers", self.fallers)):
            t.add_row(name, str(g.n), _num(g.kpi_change), _pct(g.outcome_change), _pct(g.pooled_change))
        t.add_row("[bold]risers − fallers[/]", "", "", f"[bold]{_pct(self.difference, sign=True)}[/] "
                  f"{_ci_text(self.interval, percent=True)}",
                  f"{_pct(self.pooled_difference, sign=True)} {_ci_text(self.pooled_interval, percent=True)}")
        t.caption = (f"excluded: {self.excluded['tie']} unchanged, {self.excluded['no_kpi']} without the KPI in "
                     f"both windows, {self.excluded['no_outcome']} without {self.on} before; "
                     f"bootstrap {self.n_boot}×, seed {self.seed}")
        return t


def risers_vs_fallers(
    hub: Hub,
    kpi: str,
    on: str,
    before: Window,
    after: Window,
    grain: Grain | str = "month",
    seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
) -> RisersVsFallers:
    """Per partner, the change of `kpi` (mean per period, after − before) and the relative change of `on`
    (mean per period, after / before − 1); risers (change > 0) against fallers (change < 0).

    Excluded, and counted: unchanged partners (ties), partners without a `kpi` value in both windows
    (not in the population, or a null ratio), and partners whose `on` was 0 or null before (no relative
    change). The interval resamples partners within each group. The mean of per-partner relative changes
    leans on partners with small bases, so the pooled difference (each group's summed outcome, after /
    before − 1) is given beside it, with its own interval."""
    grain = _grain(grain)
    hub.kpi(kpi)
    hub.kpi(on)
    start, end = min(before[0], after[0]), max(before[1], after[1])
    panel = partner_panel(hub, _unique([kpi, on]), grain, start, end)
    k_before, k_after = panel.window_mean(kpi, before), panel.window_mean(kpi, after)
    o_before, o_after = panel.window_mean(on, before), panel.window_mean(on, after)
    delta = k_after - k_before
    has_kpi = np.isfinite(delta)
    tie = has_kpi & np.isclose(delta, 0.0, rtol=0.0, atol=1e-9)
    has_outcome = np.isfinite(o_before) & np.isfinite(o_after) & (o_before != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        outcome = np.where(has_outcome, o_after / np.where(o_before != 0, o_before, 1.0) - 1, np.nan)
    rose = has_kpi & ~tie & (delta > 0) & has_outcome
    fell = has_kpi & ~tie & (delta < 0) & has_outcome
    difference, interval = difference_of_means(outcome[rose], outcome[fell], seed=seed, n_boot=n_boot, level=level)
    pooled, pooled_interval = difference_of_pooled_changes(
        o_before[rose], o_after[rose], o_before[fell], o_after[fell], seed=seed, n_boot=n_boot, level=level
    )
    excluded = {"tie": int(tie.sum()), "no_kpi": int((~has_kpi).sum()),
                "no_outcome": int((has_kpi & ~tie & ~has_outcome).sum())}
    group = np.where(rose, "riser", np.where(fell, "faller", None))
    partners = [
        {"partner_id": pid, "group": group[i], f"{kpi}_before": _f(k_before[i]), f"{kpi}_after": _f(k_after[i]),
         f"{on}_before": _f(o_before[i]), f"{on}_after": _f(o_after[i]), "outcome_change": _f(outcome[i])}
        for i, pid in enumerate(panel.partners)
    ]
    return RisersVsFallers(
        kpi=kpi, on=on, grain=grain.value, before=before, after=after,
        risers=_group(delta[rose], outcome[rose], o_before[rose], o_after[rose]),
        fallers=_group(delta[fell], outcome[fell], o_before[fell], o_after[fell]),
        difference=difference, interval=interval, pooled_difference=pooled, pooled_interval=pooled_interval,
        excluded=excluded, n_boot=n_boot, seed=seed, partners=partners,
    )


# -- (b) lagged correlation -------------------------------------------------------------------------
@dataclass(frozen=True)
class LagCorrelation:
    lag: int
    r: float | None
    n: int
    interval: Interval

    def to_json(self) -> dict[str, Any]:
        return {"lag": self.lag, "r": _clean(self.r), "n": self.n, "interval": self.interval.to_json()}


@dataclass(frozen=True)
class LaggedCorrelation:
    """Correlation of the program's `kpi` at t with `on` at t + lag, for each lag."""

    kpi: str
    on: str
    grain: str
    start: date
    end: date
    method: str
    lags: list[LagCorrelation]

    @property
    def strongest(self) -> LagCorrelation | None:
        known = [c for c in self.lags if c.r is not None]
        return max(known, key=lambda c: abs(c.r or 0.0)) if known else None

    def to_json(self) -> dict[str, Any]:
        best = self.strongest
        return {"analysis": "lagged_correlation", "kpi": self.kpi, "on": self.on, "grain": self.grain,
                "start": self.start.isoformat(), "end": self.end.isoformat(), "method": self.method,
                "lags": [c.to_json() for c in self.lags], "strongest_lag": best.lag if best else None}

    def __rich__(self) -> Table:
        what = "period-over-period changes" if self.method == "changes" else "levels"
        t = Table(title=f"{self.kpi} at t vs {self.on} at t + lag ({what}, by {self.grain})", title_justify="left")
        for column in ("lag", "r", "95% interval (Fisher z)", "pairs"):
            t.add_column(column, justify="right")
        for c in self.lags:
            t.add_row(f"{c.lag} {self.grain}{'s' if c.lag != 1 else ''}", _num(c.r, 2),
                      _ci_text(c.interval, digits=2), str(c.n))
        return t


def lagged_correlation(
    hub: Hub,
    kpi: str,
    on: str,
    grain: Grain | str,
    start: date,
    end: date,
    lags: Sequence[int] = (0, 1, 2, 3),
    method: Method = "changes",
) -> LaggedCorrelation:
    """Pearson's r of the program series of `kpi` at t with `on` at t + lag. By default on period-over-period
    changes: two series that both trend (a growing program) correlate in levels whatever drives them;
    changes ask whether a move in the KPI is followed by a move in the outcome. `method="levels"` is there
    for comparison."""
    grain = _grain(grain)
    series = _program_series(hub, _unique([kpi, on]), grain, start, end)
    x, y = series[kpi], series[on]
    if method == "changes":
        x, y = changes(x), changes(y)
    found = lagged_pearson(x, y, lags)
    return LaggedCorrelation(kpi, on, grain.value, start, end, method,
                             [LagCorrelation(lag, r, n, fisher_interval(r, n)) for lag, r, n in found])


# -- (c) before / after -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BeforeAfter:
    """`on` per partner-period in the periods before `date` against those after it (pooled means)."""

    on: str
    date: date
    grain: str
    before: Window
    after: Window
    periods: tuple[int, int]
    partners: int
    mean_before: float | None
    mean_after: float | None
    relative_change: float | None
    interval: Interval
    program_before: list[float | None]
    program_after: list[float | None]
    n_boot: int
    seed: int

    @property
    def change(self) -> float | None:
        return None if self.mean_before is None or self.mean_after is None else self.mean_after - self.mean_before

    def to_json(self) -> dict[str, Any]:
        return {
            "analysis": "before_after", "on": self.on, "date": self.date.isoformat(), "grain": self.grain,
            "before": _window_json(self.before), "after": _window_json(self.after),
            "periods": {"before": self.periods[0], "after": self.periods[1]}, "partners": self.partners,
            "mean_before": _clean(self.mean_before), "mean_after": _clean(self.mean_after),
            "change": _clean(self.change), "relative_change": _clean(self.relative_change),
            "interval": self.interval.to_json(),
            "program_before": [_clean(v) for v in self.program_before],
            "program_after": [_clean(v) for v in self.program_after],
            "n_boot": self.n_boot, "seed": self.seed,
        }

    def __rich__(self) -> Table:
        t = Table(title=f"{self.on} before vs after {self.date.isoformat()} (by {self.grain})", title_justify="left")
        for column in ("", "window", "periods", "mean per partner-period"):
            t.add_column(column, justify="left" if not column else "right")
        t.add_row("before", _window_text(self.before), str(self.periods[0]), _num(self.mean_before))
        t.add_row("after", _window_text(self.after), str(self.periods[1]), _num(self.mean_after))
        t.add_row("[bold]change[/]", "", "", f"[bold]{_pct(self.relative_change, sign=True)}[/] "
                  f"{_ci_text(self.interval, percent=True)}")
        t.caption = (f"{self.partners} partners in the population on either side; pooled per partner-period; "
                     f"bootstrap {self.n_boot}× over partners, seed {self.seed}")
        return t


def before_after(
    hub: Hub,
    on: str,
    date: date,
    window_periods: int | tuple[int, int] = 6,
    grain: Grain | str = "month",
    seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
    bounds: Window | None = None,
) -> BeforeAfter:
    """Mean `on` per partner-period in the `window_periods` periods before `date` and after it (a pair
    (before, after) gives each side its own count). The after side starts at the first period starting on
    or after `date`; a period that holds `date` inside it belongs to neither side. Both sides are clipped to
    `bounds` (default: `activity_range`), so periods without data never count as zeros. Each side's mean
    is pooled: the sum of `on` over the partner-periods in the population, divided by their number (so
    "revenue per partner-month", as a program reports it); the relative change is after / before − 1,
    and its interval comes from resampling partners whole (a cluster bootstrap: a partner's periods stay
    together, so its own level and noise are not counted as independent)."""
    grain = _grain(grain)
    hub.kpi(on)
    n_before, n_after = window_periods if isinstance(window_periods, tuple) else (window_periods, window_periods)
    lo, hi = bounds or activity_range(hub, grain)
    pivot = period_start(date, grain)
    first_after = pivot if pivot == _dt(date) else shift(pivot, grain)
    before_start = max(shift(pivot, grain, -n_before), _dt(lo))
    after_end = min(shift(first_after, grain, n_after), _dt(hi))
    if before_start >= pivot or after_end <= first_after:
        raise NotFoundError(f"no whole {grain.value} on both sides of {date.isoformat()} within the data "
                            f"({lo.isoformat()} .. {hi.isoformat()})", hint="choose a date inside the data's range")
    before_w: Window = (before_start.date(), pivot.date())
    after_w: Window = (first_after.date(), after_end.date())
    panel = partner_panel(hub, [on], grain, before_w[0], after_w[1])
    (b_sum, b_n), (a_sum, a_n) = panel.window_total(on, before_w), panel.window_total(on, after_w)
    relative, interval = pooled_relative_change(b_sum, b_n, a_sum, a_n, seed=seed, n_boot=n_boot, level=level)
    counted = (b_n > 0) | (a_n > 0)
    program = _program_series(hub, [on], grain, before_w[0], after_w[1])[on]
    starts = [p.start for p in panel.periods]
    program_before = [v for v, s in zip(program, starts, strict=True) if s < pivot]
    program_after = [v for v, s in zip(program, starts, strict=True) if s >= first_after]
    return BeforeAfter(
        on=on, date=date, grain=grain.value, before=before_w, after=after_w,
        periods=(len(program_before), len(program_after)), partners=int(counted.sum()),
        mean_before=_f(b_sum.sum() / b_n.sum()) if b_n.sum() else None,
        mean_after=_f(a_sum.sum() / a_n.sum()) if a_n.sum() else None,
        relative_change=relative, interval=interval,
        program_before=program_before, program_after=program_after, n_boot=n_boot, seed=seed,
    )


# -- (d) co-movement --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoMovement:
    """The other KPIs whose period-over-period changes correlate with this KPI's, strongest first."""

    kpi: str
    grain: str
    start: date
    end: date
    others: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"analysis": "co_movement", "kpi": self.kpi, "grain": self.grain, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "method": "changes",
                "moves_with": [{k: _clean(v) for k, v in o.items()} for o in self.others]}

    def __rich__(self) -> Table:
        t = Table(title=f"Moves with {self.kpi} (period-over-period changes, by {self.grain})", title_justify="left")
        for column in ("kpi", "r", "pairs", ""):
            t.add_column(column, justify="left" if column in ("kpi", "") else "right")
        for o in self.others:
            together = "" if o["r"] is None else ("together" if o["r"] > 0 else "opposite")
            t.add_row(o["kpi"], _num(o["r"], 2), str(o["n"]), together)
        return t


def co_movement(
    hub: Hub, kpi: str, grain: Grain | str, start: date, end: date, kpis: Sequence[str] | None = None
) -> CoMovement:
    """Pearson's r between the program's period-over-period changes of `kpi` and of every other KPI (or of
    `kpis`), sorted by |r| descending; KPIs with too few pairs or no variation come last with r None."""
    grain = _grain(grain)
    hub.kpi(kpi)
    others = [k for k in (kpis or [k.id for k in hub.catalog]) if k != kpi]
    series = _program_series(hub, [kpi, *others], grain, start, end)
    x = changes(series[kpi])
    found = []
    for other in others:
        r, n = pearson(x, changes(series[other]))
        found.append({"kpi": other, "r": r, "n": n})
    found.sort(key=lambda o: (o["r"] is None, -abs(o["r"] or 0.0), o["kpi"]))
    return CoMovement(kpi, grain.value, start, end, found)


# -- the CLI's report: the views together -----------------------------------------------------------
@dataclass(frozen=True)
class ImpactReport:
    """What `partnerkpi impact` shows: risers vs fallers, lagged correlation, and before/after views."""

    kpi: str
    on: str
    around: date | None
    note: str
    risers_vs_fallers: RisersVsFallers
    lagged: LaggedCorrelation
    before_after: list[BeforeAfter] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kpi": self.kpi, "on": self.on, "around": self.around.isoformat() if self.around else None,
                "note": self.note, "risers_vs_fallers": self.risers_vs_fallers.to_json(),
                "lagged_correlation": self.lagged.to_json(),
                "before_after": [b.to_json() for b in self.before_after]}

    def __rich__(self) -> Group:
        return Group(Text(self.note, style="dim"), *self.before_after, self.risers_vs_fallers, self.lagged)


def impact(
    hub: Hub,
    kpi: str,
    on: str,
    grain: Grain | str,
    start: date,
    end: date,
    around: date | None = None,
    seed: int = 0,
    n_boot: int = 2000,
) -> ImpactReport:
    """The impact views over [start, end). With `around`: before/after of `kpi` and `on` over all the whole
    periods of the range on each side of it, and risers vs fallers between those two sides. Without it:
    risers vs fallers between the first and the second half of the range's periods."""
    grain = _grain(grain)
    periods = periods_between(grain, start, end)
    if around is None:
        if len(periods) < 2:
            raise NotFoundError(f"the range holds fewer than two whole {grain.value}s to compare",
                                hint="widen --from/--to or use a finer --grain")
        half = len(periods) // 2
        before: Window = (periods[0].start.date(), periods[half].start.date())
        after: Window = (periods[half].start.date(), periods[-1].end.date())
        note = (f"no --around date: partners compared between the first half ({_window_text(before)}) and the "
                f"second half ({_window_text(after)}) of the range")
        views = []
    else:
        pivot = period_start(around, grain)
        n_before = sum(1 for p in periods if p.end <= pivot)
        n_after = sum(1 for p in periods if p.start >= _dt(around))
        bounds = (periods[0].start.date(), periods[-1].end.date())
        views = [before_after(hub, k, around, (n_before, n_after), grain, seed, n_boot, bounds=bounds)
                 for k in _unique([kpi, on])]
        before, after = views[0].before, views[0].after
        note = (f"around {around.isoformat()}: {_window_text(before)} against {_window_text(after)}, "
                "all whole periods of the range on each side")
    rvf = risers_vs_fallers(hub, kpi, on, before, after, grain, seed, n_boot)
    lagged = lagged_correlation(hub, kpi, on, grain, start, end)
    return ImpactReport(kpi, on, around, note, rvf, lagged, views)


# -- helpers ----------------------------------------------------------------------------------------
def _program_series(hub: Hub, kpis: Sequence[str], grain: Grain, start: date, end: date) -> dict[str, list]:
    rows = [r for r in hub.scorecard(grain, start, end, kpis=list(kpis), judged=False) if not r.segment]
    out: dict[str, list] = {k: [] for k in kpis}
    for r in sorted(rows, key=lambda r: r.period_start):
        out[r.kpi].append(r.value)
    return out


def _group(kpi_change: np.ndarray, outcome: np.ndarray, before: np.ndarray, after: np.ndarray) -> GroupStats:
    if kpi_change.size == 0:
        return GroupStats(0, None, None)
    pooled = float(after.sum() / before.sum() - 1) if before.sum() else None
    return GroupStats(int(kpi_change.size), float(kpi_change.mean()), float(outcome.mean()), pooled)


def _grain(grain: Grain | str) -> Grain:
    return grain if isinstance(grain, Grain) else Grain.parse(grain)


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _dt(day: date | datetime) -> datetime:
    return day if isinstance(day, datetime) else datetime(day.year, day.month, day.day)


def _f(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _window_json(w: Window) -> dict[str, str]:
    return {"start": w[0].isoformat(), "end": w[1].isoformat()}


def _window_text(w: Window) -> str:
    return f"{w[0].isoformat()} .. {(w[1] - timedelta(days=1)).isoformat()}"


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _pct(x: float | None, sign: bool = False) -> str:
    return "–" if x is None else f"{100 * x:{'+' if sign else ''}.1f} %"


def _ci_text(ci: Interval, percent: bool = False, digits: int = 1) -> str:
    if ci.low is None or ci.high is None:
        return ""
    if percent:
        return f"[{100 * ci.low:+.1f} %, {100 * ci.high:+.1f} %]"
    return f"[{ci.low:+.{digits}f}, {ci.high:+.{digits}f}]"
