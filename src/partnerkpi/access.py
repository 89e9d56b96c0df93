"""What one partner may read: `Hub.scoped(partner_id)` gives a `PartnerScope`, the only door the partner's
pages, its report and its API go through.

A scope holds the partner itself, its own rows of the KPIs shown to partners (as program rows), anonymous
figures of its peers (median, top quartile, how many; computed here, never their rows), its open tasks,
unacknowledged policies and last activity. Anything program-wide is refused here, in one place (OutOfScope,
a 403); another partner's id answers exactly as an id that does not exist (UnknownPartnerError, a 404).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from partnerkpi.catalog.model import KPI
from partnerkpi.engine.partner_reads import PeerStats, open_tasks, peer_stats, unacknowledged_policies
from partnerkpi.engine.periods import Grain
from partnerkpi.engine.result import KpiRow
from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.hub import PER_PARTNER, Hub

if TYPE_CHECKING:
    from partnerkpi.insights.targets import TargetBook

MIN_PEERS = 5  # fewer peers than this and a median could give a peer's own figure away

# How a scope reads through a cache when its caller keeps one (the web app): memo(key, make) -> make().
Memo = Callable[[tuple, Callable[[], Any]], Any]


def _direct(key: tuple, make: Callable[[], Any]) -> Any:
    return make()


class DictMemo:
    """A memo that keeps every result in a dict, for one run over many partners (a burst of reports)."""

    def __init__(self) -> None:
        self.entries: dict[tuple, Any] = {}

    def __call__(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key not in self.entries:
            self.entries[key] = make()
        return self.entries[key]


def partner_kpis(catalog: Iterable[KPI], *, internal: bool = False) -> list[KPI]:
    """The KPIs a partner page shows, in catalog order: `partner_page: everyone`, plus `internal` ones to the
    program team."""
    shown = {"everyone", "internal"} if internal else {"everyone"}
    return [k for k in catalog if k.partner_page in shown]


class UnknownPartnerError(PartnerKPIError):
    """No such partner, or one the reader may not see: both answer the same."""

    http_status = 404

    def __init__(self, partner_id: str) -> None:
        super().__init__(f"no partner '{partner_id}'", hint="the partners you may see are listed at /partners")


class OutOfScope(PartnerKPIError):
    """A program-wide read asked of one partner's scope."""

    http_status = 403

    def __init__(self, partner_id: str) -> None:
        super().__init__("partner users see their own partner only",
                         hint=f"your partner's page is /partners/{partner_id}")


@dataclass(frozen=True)
class PartnerFigures:
    """What a partner page may show: the partner, its own rows (as program rows: `segment` is empty),
    and per (KPI, period label) the anonymous figures of its peers."""

    partner: dict[str, Any]
    peers_by: str | None
    peer_group: str  # "type = reseller", or "all partners"
    rows: list[KpiRow]
    peers: dict[tuple[str, str], PeerStats]


Values = dict[tuple[str, str], list[tuple[str, float | None]]]  # (KPI, period) -> (partner, value) pairs


@dataclass(frozen=True)
class PeerIndex:
    """Per-partner rows of a range, arranged once for every partner page that reads them: each partner's own
    rows, and per (KPI, period) the values of the partners who were partners during that period, of all
    partners and of each value of the peer trait (a page leaves its own partner out)."""

    own: dict[str, list[KpiRow]]
    everyone: Values
    groups: dict[Any, Values]

    @classmethod
    def of(cls, rows: Iterable[KpiRow], partners: Iterable[dict[str, Any]], peers_by: str | None) -> PeerIndex:
        members = {p["partner_id"]: p for p in partners}
        own: dict[str, list[KpiRow]] = {}
        everyone: Values = {}
        groups: dict[Any, Values] = {}
        for r in rows:
            pid = r.segment.get(PER_PARTNER)
            own.setdefault(pid, []).append(r)
            member = members.get(pid)
            if member is None or not _in_period(member, r):
                continue
            everyone.setdefault((r.kpi, r.period), []).append((pid, r.value))
            if peers_by and member.get(peers_by) not in (None, ""):
                groups.setdefault(member[peers_by], {}).setdefault((r.kpi, r.period), []).append((pid, r.value))
        return cls(own, everyone, groups)


def partner_figures(hub: Hub, partner: dict[str, Any], grain: Grain, start: date, end: date,
                    peers_by: str | None, kpis: Sequence[KPI], *, book: TargetBook | None = None,
                    memo: Memo = _direct) -> PartnerFigures:
    """A partner's own rows of `kpis` over [start, end), and per row the figures of its peers (the partners
    of the same `peers_by` value, all partners without one) who were partners during the row's period."""
    partner_id = partner["partner_id"]
    if peers_by and peers_by not in hub.traits():
        raise UsageError(f"unknown partner trait '{peers_by}'",
                         hint=f"compare with peers by one of: {', '.join(hub.traits())}")
    by_id = {k.id: k for k in kpis}
    index = memo(("peer_index", grain, start, end, tuple(by_id), peers_by), lambda: PeerIndex.of(
        memo(("per_partner", grain, start, end, tuple(by_id)),
             lambda: hub.scorecard(grain, start, end, by=PER_PARTNER, kpis=list(by_id), book=book)),
        memo(("partners",), hub.partners), peers_by))
    group_value = partner.get(peers_by) if peers_by else None
    if group_value in (None, ""):
        peers_by, label, group = None, "all partners", index.everyone
    else:
        label, group = f"{peers_by} = {group_value}", index.groups.get(group_value, {})
    own = [_as_program(r) for r in index.own.get(partner_id, [])]
    peers = {
        (kpi_id, period): peer_stats([v for pid, v in group.get((kpi_id, period), ()) if pid != partner_id],
                                     by_id[kpi_id].direction, MIN_PEERS)
        for kpi_id, period in {(r.kpi, r.period) for r in own}
    }
    return PartnerFigures(partner, peers_by, label, own, peers)


class PartnerScope:
    """One partner's view of a hub: its own figures, anonymous peer figures, tasks, policies and activity.
    Every other read of the hub raises OutOfScope."""

    # Reads that say nothing about any partner: the catalog, the clock and how far the data reaches.
    _NEUTRAL = frozenset({"catalog", "clock", "kpi", "traits", "watermark", "now", "last_complete",
                          "running_period", "default_range", "covered_range"})

    def __init__(self, hub: Hub, partner_id: str, *, memo: Memo = _direct) -> None:
        self._hub, self._memo = hub, memo
        self.partner_id = partner_id
        found = next((p for p in memo(("partners",), hub.partners) if p["partner_id"] == partner_id), None)
        if found is None:
            raise UnknownPartnerError(partner_id)
        self._partner = found

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._NEUTRAL:
            return getattr(self._hub, name)
        if hasattr(self._hub, name):
            raise OutOfScope(self.partner_id)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"PartnerScope({self.partner_id!r})"

    def partner(self, partner_id: str | None = None) -> dict[str, Any]:
        """The scope's partner (UnknownPartnerError for any other id, the same as for no such partner)."""
        if partner_id is not None and partner_id != self.partner_id:
            raise UnknownPartnerError(partner_id)
        return dict(self._partner)

    def partners(self) -> list[dict[str, Any]]:
        """The partners this scope may see: its own."""
        return [self.partner()]

    def kpis(self) -> list[KPI]:
        """The KPIs shown to a partner (`partner_page: everyone`), in catalog order."""
        return partner_kpis(self._hub.catalog)

    def figures(self, grain: Grain, start: date, end: date, peers_by: str | None = None, *,
                book: TargetBook | None = None) -> PartnerFigures:
        """The partner's own rows over [start, end) and its peers' anonymous figures per row."""
        return partner_figures(self._hub, self.partner(), grain, start, end, peers_by, self.kpis(), book=book,
                               memo=self._memo)

    def open_tasks(self) -> list[dict[str, Any]]:
        """The partner's open tasks now (the data's now), overdue first."""
        def make() -> list[dict[str, Any]]:
            engine = self._hub.engine
            return open_tasks(engine.table, engine.execute, self.partner_id, self._hub.now())
        return self._memo(("open_tasks", self.partner_id), make)

    def unacknowledged_policies(self) -> list[dict[str, Any]]:
        """The required policies the partner has not acknowledged yet."""
        def make() -> list[dict[str, Any]]:
            engine = self._hub.engine
            return unacknowledged_policies(engine.table, engine.execute, self.partner_id, self._hub.now())
        return self._memo(("unacknowledged_policies", self.partner_id), make)

    def last_active(self) -> datetime | None:
        """The partner's latest activity event (None: never active)."""
        return self._memo(("last_active",), self._hub.last_active).get(self.partner_id)


def _as_program(row: KpiRow) -> KpiRow:
    """A partner's row shown on its own page: no segment (the page is about this partner)."""
    return replace(row, segment={})


def _in_period(partner: dict[str, Any], row: KpiRow) -> bool:
    """Whether a peer was a partner during the row's period (onboarded before its end, not gone before its start)."""
    on, off = partner.get("onboarded_at"), partner.get("offboarded_at")
    return (on is None or on < row.period_end) and (off is None or off >= row.period_start)
