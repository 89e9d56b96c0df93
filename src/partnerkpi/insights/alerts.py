"""Alerts: rules on any KPI for the program, per segment or per partner (read by `alert_rules`), stored
once per firing and shown on the dashboard; `alert_delivery` sends them to webhooks (Slack-compatible
JSON) and by email (SMTP).

Which period a rule looks at: the **last complete period** by the data watermark (`Hub.watermark`: data
up to 2026-07-31 makes July the last complete month), never the month the wall clock is in. A running
period holds only part of its events, so its counts and rates swing with the day of the month, and a
period the data does not reach would read as 0: a collapse that did not happen. Judging complete periods
means a firing states a fact that later data of the same period can only refine (late imports are picked
up by the next evaluation). The wall clock is compared with the watermark for one thing only: a feed
silent for longer than the stale-after setting raises one `stale_data` alert, and meanwhile the rules keep
judging the same last complete period, so a stopped feed fires nothing else.

State lives in the hub's store: `alerts` holds one row per firing (`resolved_at` set when the
condition clears; a condition that comes back is a new firing) and `alert_deliveries` one row per
(alert, channel, event), written in the same transaction as the state change and sent after commit,
so a failed delivery stays visible and is retried by the next run, and a successful one never repeats.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from partnerkpi.catalog.model import KPI
from partnerkpi.engine.periods import Grain, Period, make_period, period_start, shift
from partnerkpi.engine.result import KpiRow, iso_z
from partnerkpi.errors import UsageError
from partnerkpi.hub import PER_PARTNER
from partnerkpi.insights.alert_rules import (
    AtRiskRule,
    BandChangeRule,
    ChangePctRule,
    Rule,
    RuleSet,
    StaleDataRule,
    ThresholdRule,
    WorseningRule,
    load_rules,
)

if TYPE_CHECKING:
    from partnerkpi.hub import Hub
    from partnerkpi.store import Store
    from partnerkpi.store.alerts import NewFiring

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (rule id, scope key, kpi): the identity of a firing
AtRiskProvider = Callable[["Hub", datetime], dict[str, str]]
DEFAULT_STALE_AFTER = timedelta(days=3)  # the settings' default feed cadence (1 day) plus grace (2 days)


# -- evaluation (pure on the KPI rows) ------------------------------------------------------------------
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


def _scope_label(key: str, names: dict[str, str]) -> str:
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
                                 f"{_scope_label(key, names)}: {text}", rule.severity)
                out[cond.key] = cond
    for rule in rule_list:
        if isinstance(rule, AtRiskRule) and at_risk is not None and covered:
            period = current_period(rule.grain, now).label
            for pid, reason in sorted(at_risk(hub, min(now, hub.now())).items()):
                key = f"{PER_PARTNER}={pid}"
                cond = Condition(rule.id, key, "", period, None,
                                 f"{_scope_label(key, names)} is at risk: {reason}", rule.severity)
                out[cond.key] = cond
        elif isinstance(rule, StaleDataRule):
            found = stale_condition(rule, hub.watermark(), clock or hub.clock(), stale_after)
            if found is not None:
                out[found.key] = found
    return out


# -- state ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """One firing as stored: active while `resolved_at` is None."""

    alert_id: int
    rule_id: str
    scope_key: str
    kpi: str
    fired_at: datetime
    resolved_at: datetime | None
    period: str | None
    value: float | None
    message: str
    severity: str
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def status(self) -> str:
        return "active" if self.resolved_at is None else "resolved"

    def to_json(self) -> dict[str, Any]:
        """The alert for the dashboard's JSON twin."""
        out = asdict(self)
        for k in ("fired_at", "resolved_at", "acknowledged_at"):
            out[k] = iso_z(out[k]) if out[k] is not None else None
        return {**out, "status": self.status}


def ensure_schema(store: Store) -> None:
    """Create the alert tables when missing (a store opened before alerts existed)."""
    store.alerts.create()


def _alerts(store: Store, status: str = "all", ids: Sequence[int] | None = None) -> list[Alert]:
    return [Alert(*r) for r in store.alerts.rows(status, ids)]


def _apply(
    store: Store, rules: RuleSet, conditions: dict[Key, Condition], evaluated: set[str], now: datetime
) -> tuple[list[Alert], list[Alert]]:
    """Store new firings and resolves, with their pending deliveries, in one transaction."""
    channels = {r.id: r.channels for r in rules.rules}

    def decide(active: dict[Key, int]) -> tuple[list[tuple[int, Sequence[str]]], list[tuple[NewFiring, Sequence[str]]]]:
        resolve = [(alert_id, channels.get(key[0], ())) for key, alert_id in active.items()
                   if key[0] in evaluated and key not in conditions]
        fire = [((c.rule_id, c.scope_key, c.kpi, c.period, c.value, c.message, c.severity),
                 channels.get(c.rule_id, ())) for key, c in conditions.items() if key not in active]
        return resolve, fire

    fired_ids, resolved_ids = store.alerts.apply(decide, now)
    by_id = {a.alert_id: a for a in _alerts(store, ids=fired_ids + resolved_ids)}
    return [by_id[i] for i in fired_ids], [by_id[i] for i in resolved_ids]


# -- entry points ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertRun:
    """What one run did: firings, resolves, what stays active, deliveries, rules not evaluated."""

    now: datetime
    fired: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    active: int  # alerts open after the run (new ones included)
    deliveries_ok: int
    deliveries_failed: int
    skipped: tuple[str, ...] = ()  # at_risk rules without a provider

    @property
    def still_active(self) -> int:
        """Alerts that were open before the run and still hold."""
        return self.active - len(self.fired)

    def to_json(self) -> dict[str, Any]:
        return {"now": iso_z(self.now), "fired": [a.to_json() for a in self.fired],
                "resolved": [a.to_json() for a in self.resolved], "active": self.active,
                "still_active": self.still_active, "deliveries_ok": self.deliveries_ok,
                "deliveries_failed": self.deliveries_failed, "skipped": list(self.skipped)}


_RUN_LOCK = threading.Lock()  # the scheduler and post-import hooks may call run_alerts at the same time


def run_alerts(
    hub: Hub,
    rules_path: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    at_risk: AtRiskProvider | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> AlertRun:
    """Evaluate the rules as of `now` (default: the hub's clock; firings and resolves are stamped with it):
    KPI and at-risk rules judge the data's now (`data_now`), stale_data rules compare `now` with the
    watermark. Store firings and resolves, deliver."""
    from partnerkpi.insights.alert_delivery import _deliver  # alert_delivery imports this module

    if hub.store.read_only:
        raise UsageError("alerts need a writable database", hint="open the hub read-write to run alerts")
    rules = load_rules(rules_path, hub)
    now = now or hub.clock()
    skipped = tuple(r.id for r in rules.rules if isinstance(r, AtRiskRule) and at_risk is None)
    with _RUN_LOCK:
        ensure_schema(hub.store)
        conditions = evaluate(hub, rules, data_now(hub, now), at_risk, clock=now, stale_after=stale_after)
        evaluated = {r.id for r in rules.rules} - set(skipped)
        fired, resolved = _apply(hub.store, rules, conditions, evaluated, now)
        ok, failed = _deliver(hub, rules)
        active = len(_alerts(hub.store, "active"))
    return AlertRun(now, tuple(fired), tuple(resolved), active, ok, failed, skipped)


def list_alerts(hub: Hub, status: Literal["active", "resolved", "all"] = "active") -> list[Alert]:
    """Alerts for the dashboard, newest first."""
    if status not in ("active", "resolved", "all"):
        raise UsageError(f"unknown alert status '{status}'", hint="use active, resolved or all")
    return sorted(_alerts(hub.store, status), key=lambda a: a.alert_id, reverse=True)


def list_deliveries(hub: Hub, alert_id: int | None = None) -> list[dict[str, Any]]:
    """Delivery attempts (status pending, ok or failed, with the last error), by alert."""
    return hub.store.alerts.deliveries(alert_id)


def acknowledge(hub: Hub, alert_id: int, by: str) -> Alert:
    """Mark an alert as seen by `by` (the first acknowledgement stays)."""
    if not _alerts(hub.store, ids=[alert_id]):
        raise UsageError(f"there is no alert #{alert_id}", hint="list them with `partnerkpi alerts list --status all`")
    hub.store.alerts.acknowledge(alert_id, by, hub.clock())
    return _alerts(hub.store, ids=[alert_id])[0]


class AlertScheduler:
    """Calls `run` every `interval_seconds` on a daemon thread, and after `poke()` (an import or a
    collector flush) but at most once per `min_gap_seconds` (a busy collector does not evaluate the rules
    after every request), until `stop()`; a failing run is logged and the next one still happens."""

    def __init__(self, interval_seconds: float, run: Callable[[], object], min_gap_seconds: float = 30.0) -> None:
        if interval_seconds <= 0:
            raise UsageError("the alert interval must be positive", hint="e.g. 300 seconds")
        self.interval = interval_seconds
        self.min_gap = min_gap_seconds
        self.run = run
        self.runs = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="partnerkpi-alerts", daemon=True)

    def start(self) -> AlertScheduler:
        self._thread.start()
        return self

    def poke(self) -> None:
        """Run soon (new data arrived); pokes during a run make one more run, not one each."""
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the thread to stop and wait for a run in progress to finish."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        last: float | None = None
        while True:
            self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            gap = min(self.min_gap, self.interval) - (time.monotonic() - last) if last is not None else 0.0
            if gap > 0 and self._stop.wait(gap):
                return
            self._wake.clear()
            try:
                self.run()
            except Exception as exc:  # keep the schedule alive; the error is logged and kept for the UI
                self.errors += 1
                self.last_error = exc
                log.exception("scheduled alert run failed")
            finally:
                self.runs += 1
                last = time.monotonic()
