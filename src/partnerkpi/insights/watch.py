"""Alerts with the health score behind the at-risk rule: what runs after an import, after a collector
flush and on the server's schedule."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime

from partnerkpi.hub import Hub
from partnerkpi.insights.alerts import AlertRun, run_alerts
from partnerkpi.insights.health import load_config
from partnerkpi.insights.risk import at_risk
from partnerkpi.settings import Settings


def run_watch(hub: Hub, settings: Settings, now: datetime | None = None, *, reader: Hub | None = None,
              write_lock: AbstractContextManager[object] | None = None) -> AlertRun:
    """Evaluate the alert rules of `settings` (default: the built-in ones) at `now` (default: the clock), with
    the at-risk partners of the settings' health-score configuration and their reasons, and the settings'
    stale-after delay; `reader` and `write_lock` as in `run_alerts`."""
    config = load_config(settings.health, hub.catalog)

    def reasons(h: Hub, when: datetime) -> dict[str, str]:
        return {e.partner_id: "; ".join(e.reasons) for e in at_risk(h, when, config)}

    return run_alerts(hub, settings.alerts, now=now, at_risk=reasons, stale_after=settings.stale_after,
                      reader=reader, write_lock=write_lock)
