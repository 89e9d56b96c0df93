"""A tiny builder for hand-computed KPI tests: partners, users and events written as JSONL and imported.

    fx = Fixture(tmp_path)
    fx.partner("A", onboarded="2026-01-01", type="reseller")
    fx.user("ua", "A")
    fx.event("Logged In", "2026-07-03 10:00", user="ua")
    rows = fx.scorecard(kpis=["active_partner_rate"])          # July 2026 by default
    assert value(rows, "active_partner_rate", "2026-07").value == 100.0

Timestamps are written as ISO-8601 UTC: "2026-07-01" is midnight, "2026-07-01 10:00" and
"2026-07-01 10:00:30" add a time, a string with a "T" is written as given (so offsets can be tested).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from partnerkpi.clock import FixedClock
from partnerkpi.engine.result import KpiRow
from partnerkpi.hub import Hub

# The fixtures' programs are received "now" = this instant, after every instant they hold (some reach into
# 2027), so that no event counts as dated in the future.
RECEIVED = datetime(2030, 1, 1)

JULY = date(2026, 7, 1)
AUGUST = date(2026, 8, 1)
SEPTEMBER = date(2026, 9, 1)


def iso(instant: str | datetime | None) -> str | None:
    """A short timestamp ("2026-07-01", "2026-07-01 10:00[:30]") or a naive UTC datetime as ISO-8601 Z."""
    if instant is None:
        return None
    if isinstance(instant, datetime):
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "T" in instant or instant == "":
        return instant
    if " " not in instant:
        return f"{instant}T00:00:00Z"
    day, time = instant.split(" ")
    if time.count(":") == 1:
        time += ":00"
    return f"{day}T{time}Z"


def at(instant: str) -> datetime:
    """A short timestamp as the naive UTC datetime KpiRow uses for period_start / period_end."""
    return datetime.fromisoformat(iso(instant).removesuffix("Z"))


class Fixture:
    """Collects rows, writes partners.jsonl / users.jsonl / events.jsonl and imports them into a Hub."""

    def __init__(self, tmp_path: Path, catalog_paths: Sequence[Path] = ()) -> None:
        self.dir = Path(tmp_path)
        self.catalog_paths = tuple(catalog_paths)  # user KPI files loaded beside the built-in catalog
        self.partners: list[dict[str, Any]] = []
        self.users: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.summaries: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._hub: Hub | None = None

    def partner(
        self,
        partner_id: str,
        onboarded: str | None = "2026-01-01",
        offboarded: str | None = None,
        type: str = "reseller",
        tier: str = "gold",
        region: str = "emea",
        name: str | None = None,
    ) -> Fixture:
        """Add a partner (onboarded 2026-01-01 unless told)."""
        self.partners.append(
            {
                "partner_id": partner_id,
                "name": name or f"Partner {partner_id}",
                "type": type,
                "tier": tier,
                "region": region,
                "onboarded_at": iso(onboarded),
                "offboarded_at": iso(offboarded),
            }
        )
        return self

    def user(
        self,
        user_id: str,
        partner: str,
        created: str | None = "2026-01-01",
        deactivated: str | None = None,
        role: str = "member",
    ) -> Fixture:
        """Add a partner user (created 2026-01-01 unless told)."""
        self.users.append(
            {
                "user_id": user_id,
                "partner_id": partner,
                "email": f"{user_id}@example.com",
                "role": role,
                "created_at": iso(created),
                "deactivated_at": iso(deactivated),
            }
        )
        return self

    def event(
        self,
        event: str,
        ts: str,
        partner: str | None = None,
        user: str | None = None,
        object: str | None = None,
        id: str | None = None,
        **properties: Any,
    ) -> Fixture:
        """Add an event; ids are e0001, e0002, ... unless given; properties keep their JSON types."""
        self.events.append(
            {
                "event_id": id or f"e{next(self._ids):04d}",
                "ts": iso(ts),
                "event": event,
                "partner_id": partner,
                "user_id": user,
                "object_id": object,
                "properties": properties,
            }
        )
        return self

    def write(self) -> dict[str, Path]:
        """Write the non-empty files; returns {kind: path} in import order."""
        paths: dict[str, Path] = {}
        for kind, rows in (("partners", self.partners), ("users", self.users), ("events", self.events)):
            if not rows:
                continue
            path = self.dir / f"{kind}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            paths[kind] = path
        return paths

    def hub(self) -> Hub:
        """The Hub with every file imported (partners, then users, then events); built once."""
        if self._hub is None:
            hub = Hub.open(self.dir / "hub.duckdb", catalog_paths=self.catalog_paths, clock=FixedClock(RECEIVED))
            for kind, path in self.write().items():
                (summary,) = hub.import_files([path], kind=kind)
                self.summaries[kind] = summary
            self._hub = hub
        return self._hub

    def scorecard(
        self,
        kpis: Sequence[str] | None = None,
        grain: str = "month",
        start: date = JULY,
        end: date = AUGUST,
        by: str | None = None,
    ) -> list[KpiRow]:
        """`Hub.scorecard` on the imported data; July 2026 by month unless told (through the command line on
        another backend when $PARTNERKPI_ORACLE names one: `tests/oracle_cli.py`)."""
        from tests.oracle_cli import runner

        run = runner()
        if run is not None:
            return run(self, kpis, grain, start, end, by)
        return self.hub().scorecard(grain=grain, start=start, end=end, by=by, kpis=kpis)


def value(rows: Sequence[KpiRow], kpi: str, period: str, segment: dict[str, str] | None = None) -> KpiRow:
    """The one row of `kpi` for `period` and `segment` ({} = whole program)."""
    segment = segment or {}
    found = [r for r in rows if r.kpi == kpi and r.period == period and r.segment == segment]
    assert len(found) == 1, f"{len(found)} rows for {kpi} {period} {segment}: {rows}"
    return found[0]


row = value


def segments(rows: Sequence[KpiRow], kpi: str, period: str) -> list[dict[str, str]]:
    """The segments that have a row of `kpi` for `period`, sorted (whole program `{}` first)."""
    found = [r.segment for r in rows if r.kpi == kpi and r.period == period]
    return sorted(found, key=lambda s: sorted(s.items()))
