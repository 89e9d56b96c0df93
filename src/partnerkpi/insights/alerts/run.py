"""One alert run: evaluate the rules, store firings and resolves, deliver what is pending."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from partnerkpi.engine.result import iso_z
from partnerkpi.errors import UsageError
from partnerkpi.insights.alerts.delivery import deliver_pending
from partnerkpi.insights.alerts.evaluate import DEFAULT_STALE_AFTER, AtRiskProvider, data_now, evaluate
from partnerkpi.insights.alerts.rules import AtRiskRule, load_rules
from partnerkpi.insights.alerts.state import Alert, alerts_in, apply_conditions, ensure_schema

if TYPE_CHECKING:
    from partnerkpi.hub import Hub


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
    *,
    reader: Hub | None = None,
    write_lock: AbstractContextManager[object] | None = None,
) -> AlertRun:
    """Evaluate the rules as of `now` (default: the hub's clock; firings and resolves are stamped with it):
    KPI and at-risk rules judge the data's now (`data_now`), stale_data rules compare `now` with the
    watermark. Store firings and resolves, deliver. A server passes a `reader` (a snapshot of the hub) to
    evaluate on and its `write_lock`, held only while firings are stored: the long evaluation never holds
    back the collector's loader."""
    if hub.store.read_only:
        raise UsageError("alerts need a writable database", hint="open the hub read-write to run alerts")
    source = reader or hub  # every read goes to the snapshot: the loader may hold a transaction on `hub`'s connection
    rules = load_rules(rules_path, source)
    now = now or hub.clock()
    skipped = tuple(r.id for r in rules.rules if isinstance(r, AtRiskRule) and at_risk is None)
    with _RUN_LOCK:
        with write_lock or nullcontext():
            ensure_schema(hub.store)
        conditions = evaluate(source, rules, data_now(source, now), at_risk, clock=now, stale_after=stale_after)
        evaluated = {r.id for r in rules.rules} - set(skipped)
        with write_lock or nullcontext():
            fired, resolved = apply_conditions(hub.store, rules, conditions, evaluated, now)
            ok, failed = deliver_pending(hub, rules)
            active = len(alerts_in(hub.store, "active"))
    return AlertRun(now, tuple(fired), tuple(resolved), active, ok, failed, skipped)
