"""Evaluation: which rules hold at the data's now, as conditions keyed by (rule, scope, KPI); pure on the
KPI rows the hub computes (see the package docstring for which period a rule judges)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from partnerkpi.catalog.model import KPI
from partnerkpi.engine.periods import Grain, Period, make_period, period_start, shift
from partnerkpi.engine.result import KpiRow, iso_z
from partnerkpi.hub import PER_PARTNER
from partnerkpi.insights.alerts.rules import (
    AtRiskRule,
    BandChangeRule,
    ChangePctRule,
    Rule,
    RuleSet,
    StaleDataRule,
    ThresholdRule,
    WorseningRule,
)

if TYPE_CHECKING:
    from partnerkpi.hub import Hub

Key = tuple[str, str, str]  # (rule id, scope key, kpi): the identity of a firing
AtRiskProvider = Callable[["Hub", datetime], dict[str, str]]
DEFAULT_STALE_AFTER = timedelta(days=3)  # the settings' default feed cadence (1 day) plus grace (2 days)


@dataclass(frozen=True)
class Condition:
    """A rule that holds now, for one scope (and KPI)."""

    rule_id: str
    scope_key: str  # "" (program), "type=reseller", "partner_id=P1"
    kpi: str  # "" for at_risk rules
    period: str
    value: float | None
    message: str
    severity: str

    @property
    def key(self) -> Key:
        return (self.rule_id, self.scope_key, self.kpi)


def current_period(grain: Grain, now: datetime) -> Period:
    """The period a rule judges: the last complete one at `now`, the data's now (see the module docstring)."""
    return make_period(shift(period_start(now, grain), grain, -1), grain)


def data_now(hub: Hub, now: datetime | None = None) -> datetime:
    """The instant the rules judge at: the data watermark, or `now` when that is earlier (a replay)."""
    mark = hub.watermark()
    if now is None:
        return hub.now() if mark is None else mark
    return now if mark is None else min(now, mark)


def _days(delta: timedelta) -> str:
    return _num(delta.total_seconds() / 86400)


def stale_condition(rule: StaleDataRule, watermark: datetime | None, clock: datetime,
                    stale_after: timedelta) -> Condition | None:
    """The stale-data condition when the wall clock is more than `stale_after` past the watermark."""
    if watermark is None or clock - watermark <= stale_after:
        return None
    return Condition(
        rule.id, "", "", f"{watermark:%Y-%m-%d}", (clock - watermark).total_seconds() / 86400,
        f"whole program: no new data since {watermark - timedelta(days=1):%Y-%m-%d} (data as of "
        f"{iso_z(watermark)}, {_days(clock - watermark)} days ago; stale after {_days(stale_after)} days). "
        "KPIs and alerts stay on the last complete period until data arrives.", rule.severity)


def _num(x: float) -> str:
    text = f"{x:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _show(x: float | None, unit: str) -> str:
    if x is None:
        return "no value"
    return f"{_num(x)}%" if unit == "%" else f"{_num(x)} {unit}"


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def _worse(before: float | None, after: float | None, direction: str) -> bool:
    before, after = _finite(before), _finite(after)
    if before is None or after is None:
        return False
    return after < before if direction == "up" else after > before


def check(rule: Rule, kpi: KPI, series: Sequence[KpiRow]) -> tuple[float | None, str] | None:
    """(value, message) when `rule` holds on `series` (one scope's rows, oldest first, the last being the
    current period); None otherwise."""
    row = series[-1]
    v, prev = _finite(row.value), _finite(row.previous)
    if isinstance(rule, ThresholdRule):
        if v is None:
            return None
        edge = v == rule.value and rule.inclusive
        if (v < rule.value or edge) if rule.op == "below" else (v > rule.value or edge):
            words = f"at or {rule.op}" if rule.inclusive else rule.op
            return v, f"{kpi.name} is {_show(v, kpi.unit)} in {row.period}, {words} {_num(rule.value)}"
    elif isinstance(rule, BandChangeRule):
        band, before = kpi.band_of(v), kpi.band_of(prev)
        if band and before and band != before and (rule.to is None or band in rule.to):
            return v, (f"{kpi.name} moved from {before} to {band} in {row.period} "
                       f"({_show(prev, kpi.unit)} → {_show(v, kpi.unit)})")
    elif isinstance(rule, ChangePctRule):
        if v is None or prev is None or prev == 0:
            return None
        pct = 100 * (v - prev) / abs(prev)
        if rule.direction == "any":
            hit = abs(pct) > rule.more_than
        else:
            hit = pct < -rule.more_than if kpi.direction == "up" else pct > rule.more_than
        if hit:
            return v, (f"{kpi.name} changed {pct:+.1f}% in {row.period} ({_show(prev, kpi.unit)} → "
                       f"{_show(v, kpi.unit)}), more than {_num(rule.more_than)}%")
    elif isinstance(rule, WorseningRule):
        last = series[-rule.periods:]
        if len(last) == rule.periods and all(_worse(r.previous, r.value, kpi.direction) for r in last):
            path = " → ".join(_show(x, kpi.unit) for x in [last[0].previous, *(r.value for r in last)])
            return v, (f"{kpi.name} worsened {rule.periods} period(s) in a row up to {row.period}: {path}"
                       f" ({'lower' if kpi.direction == 'up' else 'higher'} is worse)")
    return None


def scope_key(segment: dict[str, str]) -> str:
    """"" for the whole program, "type=reseller" for a segment, "partner_id=P1" for a partner."""
    return ",".join(f"{k}={v}" for k, v in sorted(segment.items()))


def scope_label(key: str, names: dict[str, str]) -> str:
    """A scope key in words: "whole program", "partner P1 (Acme)", or the key itself for a segment."""
    if not key:
        return "whole program"
    if key.startswith(f"{PER_PARTNER}="):
        pid = key.split("=", 1)[1]
        name = names.get(pid)
        return f"partner {pid}" + (f" ({name})" if name and name != pid else "")
    return key


def _by(rule: Rule) -> str | None:
    return rule.by if rule.scope == "segment" else PER_PARTNER if rule.scope == "partner" else None


def evaluate(
    hub: Hub, rules: RuleSet | Sequence[Rule], now: datetime, at_risk: AtRiskProvider | None = None,
    clock: datetime | None = None, stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> dict[Key, Condition]:
    """The conditions that hold at `now` (the data's now: see `data_now`), keyed by (rule id, scope key,
    kpi). One scorecard per (grain, by) covers every rule of that group; at_risk rules are skipped without a
    provider; stale_data rules compare the wall `clock` (default: the hub's) with the watermark."""
    rule_list = rules.rules if isinstance(rules, RuleSet) else tuple(rules)
    names: dict[str, str] = {}  # partner names make the messages readable
    if any(r.scope == "partner" for r in rule_list):
        names = hub.partner_names()
    groups: dict[tuple[Grain, str | None], list[Rule]] = defaultdict(list)
    covered = hub.watermark() is not None  # without data no period is covered: nothing to judge
    for rule in rule_list:
        if covered and not isinstance(rule, AtRiskRule | StaleDataRule):
            groups[(rule.grain, _by(rule))].append(rule)
    out: dict[Key, Condition] = {}
    for (grain, by), group in groups.items():
        current = current_period(grain, now)
        need = max(r.periods if isinstance(r, WorseningRule) else 1 for r in group)
        start = shift(current.start, grain, 1 - need)
        rows = hub.scorecard(grain, start.date(), current.end.date(), by=by, kpis=sorted({r.kpi for r in group}),
                             judged=False)
        series: dict[tuple[str, str], list[KpiRow]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: r.period_start):
            series[(row.kpi, scope_key(row.segment))].append(row)
        for rule in group:
            kpi = hub.kpi(rule.kpi)
            for (kpi_id, key), seq in series.items():
                in_scope = key == "" if by is None else key.startswith(f"{by}=")
                if kpi_id != rule.kpi or not in_scope or (found := check(rule, kpi, seq)) is None:
                    continue
                value, text = found
                cond = Condition(rule.id, key, kpi.id, seq[-1].period, value,
                                 f"{scope_label(key, names)}: {text}", rule.severity)
                out[cond.key] = cond
    for rule in rule_list:
        if isinstance(rule, AtRiskRule) and at_risk is not None and covered:
            period = current_period(rule.grain, now).label
            for pid, reason in sorted(at_risk(hub, min(now, hub.now())).items()):
                key = f"{PER_PARTNER}={pid}"
                cond = Condition(rule.id, key, "", period, None,
                                 f"{scope_label(key, names)} is at risk: {reason}", rule.severity)
                out[cond.key] = cond
        elif isinstance(rule, StaleDataRule):
            found = stale_condition(rule, hub.watermark(), clock or hub.clock(), stale_after)
            if found is not None:
                out[found.key] = found
    return out
