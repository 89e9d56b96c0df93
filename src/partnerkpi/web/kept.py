"""Per-partner figures kept between data changes: health scores and each partner's last activity.

After an append that only touches some partners' own events, only those partners' health scores are
computed again; the last activity of each partner takes the latest of the kept one and the new events'.

A partner's score at `as_of` reads its own events (by `partner_id`), its users and tasks, the program's
first activity (where look-backs stop), policy titles and the overrides in force. So the kept scores
are reused, with the touched partners' scores recomputed, only when `as_of` and the health config are the
same, partners and users are unchanged, rows were only appended, every new event names a partner and
no object (tasks, grants, policies and surveys are objects shared across partners), and no new activity
is earlier than the first. Anything else computes every score again; overrides clear the cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from partnerkpi.engine.results import DataVersion
from partnerkpi.hub import Hub
from partnerkpi.insights.health import HealthConfig, HealthScore, health_scores, history_start


@dataclass(frozen=True)
class _Kept:
    version: DataVersion
    as_of: datetime
    config: HealthConfig
    since: datetime | None
    scores: tuple[HealthScore, ...]


class LiveHealth:
    """The latest health scores computed, and how to bring them to a newer data version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: _Kept | None = None

    def scores(self, hub: Hub, version: DataVersion, as_of: datetime, config: HealthConfig) -> list[HealthScore]:
        """Every partner's health at `as_of` for the data at `version` (read before the hub's data)."""
        with self._lock:
            kept = self._kept
        if kept is not None and kept.version == version and kept.as_of == as_of and kept.config == config:
            return list(kept.scores)
        touched = self._touched(hub, kept, version, as_of, config)
        if touched is None:
            since, made = history_start(hub), health_scores(hub, as_of, config)
        else:
            since = kept.since  # type: ignore[union-attr]
            fresh = {h.partner_id: h for h in health_scores(hub, as_of, config, partners=sorted(touched))}
            merged = {h.partner_id: h for h in kept.scores if h.partner_id not in touched}  # type: ignore[union-attr]
            merged.update(fresh)
            made = [merged[pid] for pid in sorted(merged)]
        with self._lock:
            if self._kept is None or self._kept.version.last_seq <= version.last_seq:
                self._kept = _Kept(version, as_of, config, since, tuple(made))
        return made

    @staticmethod
    def _touched(hub: Hub, kept: _Kept | None, version: DataVersion, as_of: datetime,
                 config: HealthConfig) -> frozenset[str] | None:
        """The partners whose scores an append since `kept` can change; None: every score may change."""
        if kept is None or kept.as_of != as_of or kept.config != config:
            return None
        old = kept.version
        if (old.plan, old.entities) != (version.plan, version.entities) or version.last_seq < old.last_seq:
            return None
        new = hub.appended(old.last_seq)
        if new.rows != version.rows - old.rows or new.partners is None:
            return None
        if new.first_activity is not None and (kept.since is None or new.first_activity < kept.since):
            return None
        return new.partners


class LastActive:
    """Each partner's latest activity event, brought up to date from the events appended since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[DataVersion, dict[str, datetime]] | None = None

    def of(self, hub: Hub, version: DataVersion) -> dict[str, datetime]:
        """Partner id -> its latest activity event, for the data at `version` (read before the hub's data);
        rows only appended add their latest, anything else reads every event again."""
        with self._lock:
            kept = self._kept
        if kept is not None and kept[0] == version:
            return kept[1]
        old = kept[0] if kept is not None else None
        if (kept is None or old.plan != version.plan or version.last_seq < old.last_seq  # type: ignore[union-attr]
                or hub.appended(old.last_seq).rows != version.rows - old.rows):  # type: ignore[union-attr]
            made = hub.last_active()
        else:
            made = dict(kept[1])
            for pid, last in hub.last_active(after_seq=old.last_seq).items():  # type: ignore[union-attr]
                made[pid] = max(last, made.get(pid, last))
        with self._lock:
            if self._kept is None or self._kept[0].last_seq <= version.last_seq:
                self._kept = (version, made)
        return made
