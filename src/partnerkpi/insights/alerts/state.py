"""Alert state: one stored firing per condition that starts holding, resolved when it stops, acknowledged by
a person; the rows live behind `store.alerts`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from partnerkpi.engine.result import iso_z
from partnerkpi.errors import NotFoundError, UsageError
from partnerkpi.insights.alerts.evaluate import Condition, Key
from partnerkpi.insights.alerts.rules import RuleSet

if TYPE_CHECKING:
    from partnerkpi.hub import Hub
    from partnerkpi.store import Store
    from partnerkpi.store.alerts import NewFiring


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


def alerts_in(store: Store, status: str = "all", ids: Sequence[int] | None = None) -> list[Alert]:
    """Stored alerts with `status` (active, resolved, all), only `ids` when given, by id."""
    return [Alert(*r) for r in store.alerts.rows(status, ids)]


def apply_conditions(
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
    by_id = {a.alert_id: a for a in alerts_in(store, ids=fired_ids + resolved_ids)}
    return [by_id[i] for i in fired_ids], [by_id[i] for i in resolved_ids]


def list_alerts(hub: Hub, status: Literal["active", "resolved", "all"] = "active") -> list[Alert]:
    """Alerts for the dashboard, newest first."""
    if status not in ("active", "resolved", "all"):
        raise UsageError(f"unknown alert status '{status}'", hint="use active, resolved or all")
    return sorted(alerts_in(hub.store, status), key=lambda a: a.alert_id, reverse=True)


def list_deliveries(hub: Hub, alert_id: int | None = None) -> list[dict[str, Any]]:
    """Delivery attempts (status pending, ok or failed, with the last error), by alert."""
    return hub.store.alerts.deliveries(alert_id)


def acknowledge(hub: Hub, alert_id: int, by: str) -> Alert:
    """Mark an alert as seen by `by` (the first acknowledgement stays)."""
    if not alerts_in(hub.store, ids=[alert_id]):
        raise NotFoundError(f"there is no alert #{alert_id}",
                            hint="list them with `partnerkpi alerts list --status all`")
    hub.store.alerts.acknowledge(alert_id, by, hub.clock())
    return alerts_in(hub.store, ids=[alert_id])[0]
