"""Manual overrides of a partner's health: a level or a score with a reason until an expiry, kept in the
`health_overrides` table (`store.overrides`); `score.health_scores` applies the one in force."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from partnerkpi.errors import UsageError
from partnerkpi.insights.health.config import HealthConfig, load_config
from partnerkpi.insights.health.measures import iso_instant, utc_instant


@dataclass(frozen=True)
class Override:
    """A manual override of a partner's level or score, with its reason, until `expires_at` (exclusive)."""

    override_id: int
    partner_id: str
    level: str | None
    score: float | None
    reason: str
    expires_at: datetime
    created_by: str
    created_at: datetime

    def in_force(self, at: datetime) -> bool:
        return at < self.expires_at


def add_override(
    hub: Any,
    partner_id: str,
    *,
    reason: str,
    expires_at: date | datetime,
    level: str | None = None,
    score: float | None = None,
    created_by: str = "unknown",
    config: HealthConfig | None = None,
) -> Override:
    """Override a partner's level or its score (exactly one) with a reason, until `expires_at`."""
    config = config or load_config(catalog=hub.catalog)
    expires, now = utc_instant(expires_at), utc_instant(hub.clock())
    levels = [lv.name for lv in config.levels]
    if (level is None) == (score is None):
        raise UsageError("an override sets either a level or a score", hint="give --level or --score, not both")
    if level is not None and level not in levels:
        raise UsageError(f"unknown level '{level}'", hint=f"use one of: {', '.join(levels)}")
    if score is not None and not 0 <= score <= 100:
        raise UsageError(f"score {score:g} is not in 0..100", hint="give a score from 0 to 100")
    if not reason or not reason.strip():
        raise UsageError("an override needs a reason", hint="say why, e.g. --reason 'renewal signed on 3 Oct'")
    if expires <= now:
        raise UsageError(f"the expiry {iso_instant(expires)} is not in the future", hint="give a later --expires date")
    if not hub.has_partner(partner_id):
        raise UsageError(f"unknown partner '{partner_id}'", hint="see the partner ids with `partnerkpi health`")
    tables = hub.store.overrides
    tables.create()  # a store opened before overrides existed
    o = Override(tables.next_id(), partner_id, level, None if score is None else float(score), reason.strip(), expires,
                 created_by, now)
    tables.insert((o.override_id, o.partner_id, o.level, o.score, o.reason, o.expires_at, o.created_by,
                   o.created_at))
    return o


def list_overrides(hub: Any, *, at: date | datetime | None = None, include_expired: bool = False) -> list[Override]:
    """The overrides in force at `at` (default: the hub's clock), newest first; all with `include_expired`."""
    found = [Override(*r) for r in hub.store.overrides.newest_first()]
    when = utc_instant(at if at is not None else hub.clock())
    return found if include_expired else [o for o in found if o.in_force(when)]


def remove_override(hub: Any, override_id: int) -> bool:
    """Delete an override; False when there is no such override."""
    return hub.store.overrides.delete(override_id)


def active_overrides(hub: Any, at: datetime) -> dict[str, Override]:
    """Per partner, the newest override in force at `at` (expired ones are ignored)."""
    out: dict[str, Override] = {}
    for o in list_overrides(hub, at=at):
        out.setdefault(o.partner_id, o)
    return out
