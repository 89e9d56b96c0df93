"""Pure statistics for impact analysis: percentile bootstrap intervals of differences and relative
changes, Pearson's r with Fisher's interval, period-over-period changes and lagged correlations. Plain
numpy with a seed, so the same data and seed give the same interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap confidence interval."""

    low: float | None
    high: float | None
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def to_json(self) -> dict[str, Any]:
        return {"low": _clean(self.low), "high": _clean(self.high), "level": self.level,
                "excludes_zero": self.excludes_zero}


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> Interval:
    """The central `level` interval of bootstrap samples (nan samples dropped)."""
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return Interval(None, None, level)
    low, high = np.quantile(samples, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Interval(float(low), float(high), level)


def difference_of_means(
    a: np.ndarray, b: np.ndarray, *, seed: int, n_boot: int = 2000, level: float = 0.95
) -> tuple[float | None, Interval]:
    """mean(a) − mean(b) and its percentile bootstrap interval, resampling within each group."""
    if a.size == 0 or b.size == 0:
        return None, Interval(None, None, level)
    rng = np.random.default_rng(seed)
    boot_a = a[rng.integers(0, a.size, (n_boot, a.size))].mean(axis=1)
    boot_b = b[rng.integers(0, b.size, (n_boot, b.size))].mean(axis=1)
    return float(a.mean() - b.mean()), percentile_interval(boot_a - boot_b, level)


def difference_of_pooled_changes(
    before_a: np.ndarray, after_a: np.ndarray, before_b: np.ndarray, after_b: np.ndarray,
    *, seed: int, n_boot: int = 2000, level: float = 0.95,
) -> tuple[float | None, Interval]:
    """(Σafter_a / Σbefore_a − 1) − (Σafter_b / Σbefore_b − 1) and its bootstrap interval, resampling
    units (pairs) within each group."""
    if before_a.sum() == 0 or before_b.sum() == 0:
        return None, Interval(None, None, level)
    rng = np.random.default_rng(seed)

    def boot(before: np.ndarray, after: np.ndarray) -> np.ndarray:
        idx = rng.integers(0, before.size, (n_boot, before.size))
        b = before[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b != 0, after[idx].sum(axis=1) / b - 1, np.nan)

    point = (after_a.sum() / before_a.sum()) - (after_b.sum() / before_b.sum())
    return float(point), percentile_interval(boot(before_a, after_a) - boot(before_b, after_b), level)


def paired_relative_change(
    before: np.ndarray, after: np.ndarray, *, seed: int, n_boot: int = 2000, level: float = 0.95
) -> tuple[float | None, Interval]:
    """mean(after) / mean(before) − 1 over paired units and its bootstrap interval (units resampled whole)."""
    if before.size == 0 or before.mean() == 0:
        return None, Interval(None, None, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, before.size, (n_boot, before.size))
    b, a = before[idx].mean(axis=1), after[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = np.where(b != 0, a / b - 1, np.nan)
    return float(after.mean() / before.mean() - 1), percentile_interval(samples, level)


def pooled_relative_change(
    before_sum: np.ndarray, before_n: np.ndarray, after_sum: np.ndarray, after_n: np.ndarray, *, seed: int,
    n_boot: int = 2000, level: float = 0.95,
) -> tuple[float | None, Interval]:
    """(Σ after / Σ after periods) / (Σ before / Σ before periods) − 1 over units (partners) given as
    per-unit sums and period counts, and its percentile interval with units resampled whole."""
    if before_n.sum() == 0 or after_n.sum() == 0 or before_sum.sum() == 0:
        return None, Interval(None, None, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, before_sum.size, (n_boot, before_sum.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        b = before_sum[idx].sum(axis=1) / before_n[idx].sum(axis=1)
        a = after_sum[idx].sum(axis=1) / after_n[idx].sum(axis=1)
        samples = np.where(b != 0, a / b - 1, np.nan)
    point = (after_sum.sum() / after_n.sum()) / (before_sum.sum() / before_n.sum()) - 1
    return float(point), percentile_interval(samples, level)


def pearson(x: Sequence[float | None], y: Sequence[float | None]) -> tuple[float | None, int]:
    """Pearson's r over the pairs where both are numbers, and how many pairs; None when fewer than 3 pairs
    or a side is constant."""
    xs, ys = _floats(x), _floats(y)
    ok = np.isfinite(xs) & np.isfinite(ys)
    n = int(ok.sum())
    if n < 3:
        return None, n
    xs, ys = xs[ok] - xs[ok].mean(), ys[ok] - ys[ok].mean()
    denominator = math.sqrt(float((xs * xs).sum() * (ys * ys).sum()))
    if denominator == 0:
        return None, n
    return max(-1.0, min(1.0, float((xs * ys).sum()) / denominator)), n


def fisher_interval(r: float | None, n: int, level: float = 0.95) -> Interval:
    """Fisher's z interval of a correlation (None below 4 pairs)."""
    if r is None or n < 4:
        return Interval(None, None, level)
    z, se = math.atanh(max(-0.999999, min(0.999999, r))), 1 / math.sqrt(n - 3)
    q = NormalDist().inv_cdf(1 - (1 - level) / 2)
    return Interval(math.tanh(z - q * se), math.tanh(z + q * se), level)


def changes(series: Sequence[float | None]) -> list[float | None]:
    """Period-over-period changes; the first is None (and any change touching a null)."""
    out: list[float | None] = [None]
    for prev, cur in zip(series, series[1:], strict=False):
        out.append(None if prev is None or cur is None else cur - prev)
    return out


def lagged_pearson(
    x: Sequence[float | None], y: Sequence[float | None], lags: Sequence[int]
) -> list[tuple[int, float | None, int]]:
    """(lag, r, n) of x[t] against y[t + lag] for each lag."""
    out = []
    for lag in lags:
        if lag >= len(x):
            out.append((lag, None, 0))
            continue
        r, n = pearson(x[: len(x) - lag] if lag else x, y[lag:])
        out.append((lag, r, n))
    return out


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _clean(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
