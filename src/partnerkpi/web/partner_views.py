"""The partner list and the partner page (the partner view): view models and how they are built.

Internal users see every partner; a partner user's reader holds their own partner only, so the same
functions give them their own page, with peers as anonymous figures (median, top quartile, how many).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from partnerkpi.catalog.model import CATEGORY_TITLES, KPI
from partnerkpi.engine.partner_reads import peer_position
from partnerkpi.engine.result import KpiRow
from partnerkpi.errors import NotFoundError, UsageError
from partnerkpi.hub import PER_PARTNER, Hub
from partnerkpi.web.numbers import display_number
from partnerkpi.web.openapi import Instant
from partnerkpi.web.reader import MIN_PEERS, RangeQuery, Reader
from partnerkpi.web.views import QueryOut, Row, Tile, Twin, query_out, tile

# The key KPIs of the partner list: usage, work done, compliance and the load a partner puts on support.
LIST_KPIS = (
    "login_frequency", "stickiness", "task_completion_rate", "policy_ack_rate", "overdue_compliance_tasks",
    "support_requests_per_partner",
)
FIXED_SORTS = ("partner_id", "name", "onboarded_at", "last_active", "status")
HEALTH_SORT = "health"  # internal users only: level (worst first when ascending), then score
PAGE_SIZE = 50
PAGE_MAX = 100_000  # a page number above this is refused by the query's validation (422)
DEFAULT_PEERS_BY = "type"


# -- the partner list -----------------------------------------------------------------------------------
class ListKpi(BaseModel):
    """A KPI column of the partner list."""

    id: str
    name: str
    unit: str
    direction: str


class PartnerCell(BaseModel):
    """A partner's latest value of a KPI."""

    value: int | float | None
    display: str
    band_color: str | None


class PartnerListRow(BaseModel):
    """A partner as the list shows it."""

    partner_id: str
    name: str | None
    traits: dict[str, str | None]
    status: Literal["active", "offboarded"]
    onboarded_at: Instant | None
    offboarded_at: Instant | None
    last_active: Instant | None
    health: str | None  # the health level (internal users only; None for a partner's own users)
    health_score: float | None
    kpis: dict[str, PartnerCell]


class PartnersOut(Twin):
    """The partner list: the resolved query, search and sort, KPI columns of the latest period, and one
    page of the rows (`total` partners match the search, in `pages` pages of `page_size`)."""

    query: QueryOut
    period: str | None
    q: str
    sort: str
    order: Literal["asc", "desc"]
    traits: list[str]
    columns: list[ListKpi]
    health_levels: list[str] | None  # the health levels, best first (None: health is not shown)
    total: int
    page: int
    pages: int
    page_size: int
    partners: list[PartnerListRow]


def _latest_by_partner(rows: Sequence[KpiRow]) -> tuple[str | None, dict[tuple[str, str], KpiRow]]:
    """The last period of the rows, and each (partner, KPI) row of that period."""
    if not rows:
        return None, {}
    last = max(r.period_start for r in rows)
    chosen = {(r.segment[PER_PARTNER], r.kpi): r for r in rows if r.period_start == last}
    return next(r.period for r in rows if r.period_start == last), chosen


def _sort_value(sort: str, traits: Sequence[str], level_rank: dict[str, int]) -> Any:
    """The value a partner is sorted by (None: it goes last, whichever the order)."""

    def value(p: PartnerListRow) -> Any:
        if sort == HEALTH_SORT:
            return None if p.health is None else (level_rank.get(p.health, 0), p.health_score)
        if sort in FIXED_SORTS:
            v = getattr(p, sort)
        elif sort in traits:
            v = p.traits.get(sort)
        else:
            v = p.kpis[sort].value
        return v.casefold() if isinstance(v, str) else v

    return value


def sort_choices(hub: Hub) -> list[str]:
    """What the partner list sorts by (health: internal users only), for the OpenAPI document."""
    known = {k.id for k in hub.catalog}
    return [*FIXED_SORTS, HEALTH_SORT, *hub.traits(), *(k for k in LIST_KPIS if k in known)]


def _list_rows(data: Reader, query: RangeQuery, columns: Sequence[KPI], traits: Sequence[str]
               ) -> tuple[str | None, list[PartnerListRow]]:
    """The latest period of the range and every partner the actor may see as a list row, by id; made once
    per data version for every search, sort and page of the list."""

    def make() -> tuple[str | None, list[PartnerListRow]]:
        health = data.insights.health_scores()
        partners, rows, last_active = data.partner_list(query, [k.id for k in columns])
        period, latest = _latest_by_partner(rows)
        out = []
        for p in partners:
            pid = p["partner_id"]
            cells = {}
            for kpi in columns:
                row = latest.get((pid, kpi.id))
                value = row.value if row else None
                band = next((b for b in kpi.bands if row and b.name == row.band), None)
                cells[kpi.id] = PartnerCell(value=value, display=display_number(value, kpi.unit),
                                            band_color=band.color if band else None)
            score = (health or {}).get(pid)
            out.append(PartnerListRow(
                partner_id=pid, name=p.get("name"), traits={t: (None if p.get(t) is None else str(p[t]))
                                                            for t in traits},
                status="offboarded" if p.get("offboarded_at") else "active", onboarded_at=p.get("onboarded_at"),
                offboarded_at=p.get("offboarded_at"), last_active=last_active.get(pid),
                health=score.level if score else None, health_score=score.score if score else None, kpis=cells,
            ))
        return period, out

    return data.cached(("partner_list_rows", query, data.scope, tuple(k.id for k in columns), tuple(traits)),
                        make)


def partners_view(data: Reader, query: RangeQuery, q: str = "", sort: str = "partner_id",
                  order: str = "asc", page: int = 1) -> PartnersOut:
    """One page (of PAGE_SIZE) of the partners the actor may see, searched (id, name, trait values) and
    sorted (nulls last either way); internal users also see and sort by each partner's health level."""
    columns = [data.kpi(k) for k in LIST_KPIS if k in {x.id for x in data.kpis()}]
    traits = data.traits()
    health = data.insights.health_scores()
    levels = [lv.name for lv in data.insights.health_config().levels] if health is not None else None
    allowed = (*FIXED_SORTS, *((HEALTH_SORT,) if health is not None else ()), *traits, *(k.id for k in columns))
    if sort not in allowed:
        raise UsageError(f"cannot sort partners by '{sort}'", hint=f"sort by one of: {', '.join(allowed)}")
    if order not in ("asc", "desc"):
        raise UsageError(f"order '{order}' is neither asc nor desc", hint="write order=asc or order=desc")
    period, rows = _list_rows(data, query, columns, traits)
    needle = q.strip().casefold()
    out = [p for p in rows if not needle or needle in " ".join(
        [p.partner_id, p.name or "", *(v or "" for v in p.traits.values())]).casefold()]
    # ascending health puts the worst level first: levels are listed best first
    value = _sort_value(sort, traits, {name: -i for i, name in enumerate(levels or [])})
    ordered = sorted((p for p in out if value(p) is not None), key=value, reverse=order == "desc")
    ordered += [p for p in out if value(p) is None]  # by id (the reader's order), last either way
    pages = max(1, -(-len(ordered) // PAGE_SIZE))
    if page > pages:
        raise NotFoundError(f"page {page} is past the last page ({pages})",
                            hint=f"ask for a page from 1 to {pages}; {len(ordered)} partners match")
    return PartnersOut(
        query=query_out(query), period=period, q=q, sort=sort, order=order, traits=traits,
        columns=[ListKpi(id=k.id, name=k.name, unit=k.unit, direction=k.direction) for k in columns],
        health_levels=levels, total=len(ordered), page=page, pages=pages, page_size=PAGE_SIZE,
        partners=ordered[(page - 1) * PAGE_SIZE: page * PAGE_SIZE],
    )


# -- the partner page -----------------------------------------------------------------------------------
class PeerFigure(BaseModel):
    """The peers' figures of a KPI in a period: how many had a value, their median and top-quartile mark."""

    n: int
    median: float | None
    top_quartile: float | None
    median_display: str
    top_quartile_display: str
    position: str | None  # "top quartile", "above median", "below median" (in the KPI's direction)


class PartnerTile(BaseModel):
    """A KPI of the partner, with its peers' figures of the same period."""

    tile: Tile
    peers: PeerFigure | None


class PartnerCategory(BaseModel):
    """A category of the partner's KPIs."""

    id: str
    title: str
    tiles: list[PartnerTile]


class PeerRow(BaseModel):
    """The peers' figures of a KPI in one period (for the chart and the JSON twin)."""

    kpi: str
    period: str
    n: int
    median: float | None
    top_quartile: float | None


class TaskOut(BaseModel):
    """An open task of the partner."""

    task: str
    kind: str | None
    title: str | None = None  # the task's `title` (else `name`) property, when it has one
    assigned_at: Instant
    due: Instant
    overdue: bool
    days_overdue: int
    started: bool
    reminders: int
    last_reminder_at: Instant | None


class PolicyOut(BaseModel):
    """A required policy the partner has not acknowledged."""

    policy: str
    title: str | None = None  # the policy's `title` (else `name`) property, when it has one
    published_at: Instant
    days_since_published: int


class PartnerInfo(BaseModel):
    """Who the partner is."""

    partner_id: str
    name: str | None
    traits: dict[str, str | None]
    onboarded_at: Instant | None
    offboarded_at: Instant | None
    last_active: Instant | None


class PartnerOut(Twin):
    """The partner page: the partner, its KPIs against its peers', its open tasks and unacknowledged policies."""

    partner: PartnerInfo
    query: QueryOut
    traits: list[str]
    peers_by: str | None
    peer_group: str
    min_peers: int
    categories: list[PartnerCategory]
    rows: list[Row]  # the partner's own rows (segment {"partner_id": ...})
    peers: list[PeerRow]
    tasks: list[TaskOut]
    overdue_tasks: int
    policies: list[PolicyOut]
    health: dict[str, Any] | None  # the health score with its components (internal users only)


def _peer_figure(kpi: KPI, t: Tile, stats: Any) -> PeerFigure:
    return PeerFigure(
        n=stats.n, median=stats.median, top_quartile=stats.top_quartile,
        median_display=display_number(stats.median, kpi.unit), top_quartile_display=display_number(stats.top_quartile,
                                                                                                kpi.unit),
        position=peer_position(t.value, stats, kpi.direction),
    )


def partner_view(data: Reader, partner_id: str, query: RangeQuery, peers_by: str | None = None) -> PartnerOut:
    """One partner's page and its JSON twin (the same for an internal user and the partner's own users,
    who see fewer KPIs: the reader decides)."""
    traits = data.traits()
    if peers_by is None:
        peers_by = DEFAULT_PEERS_BY if DEFAULT_PEERS_BY in traits else (traits[0] if traits else None)
    figures = data.partner_figures(partner_id, query, peers_by or None)
    p = figures.partner
    categories: dict[str, list[PartnerTile]] = {}
    for kpi in data.partner_kpis():
        t = tile(kpi, figures.rows)
        stats = figures.peers.get((kpi.id, t.period)) if t.period else None
        categories.setdefault(kpi.category, []).append(
            PartnerTile(tile=t, peers=_peer_figure(kpi, t, stats) if stats else None)
        )
    tasks = [TaskOut(**{k: v for k, v in task.items() if k in TaskOut.model_fields})
             for task in data.open_tasks(partner_id)]
    own_rows = [Row(**{**r.to_json(), "segment": {PER_PARTNER: partner_id}}) for r in figures.rows]
    return PartnerOut(
        partner=PartnerInfo(
            partner_id=partner_id, name=p.get("name"), traits={t: (None if p.get(t) is None else str(p[t]))
                                                               for t in traits},
            onboarded_at=p.get("onboarded_at"), offboarded_at=p.get("offboarded_at"),
            last_active=data.last_active(partner_id),
        ),
        query=query_out(query), traits=traits, peers_by=figures.peers_by, peer_group=figures.peer_group,
        min_peers=MIN_PEERS,
        categories=[PartnerCategory(id=c, title=CATEGORY_TITLES[c], tiles=t) for c, t in categories.items()],
        rows=own_rows,
        peers=[PeerRow(kpi=k, period=period, n=s.n, median=s.median, top_quartile=s.top_quartile)
               for (k, period), s in sorted(figures.peers.items())],
        tasks=tasks, overdue_tasks=sum(t.overdue for t in tasks),
        policies=[PolicyOut(**pol) for pol in data.unacknowledged_policies(partner_id)],
        health=health.to_dict() if (health := data.insights.partner_health(partner_id)) else None,
    )
