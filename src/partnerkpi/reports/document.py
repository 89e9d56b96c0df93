"""The quarterly report as data: what the HTML, the PDF and the JSON twin all show, with no I/O.

`Report` holds both editions' parts (a part an edition does not have stays empty); values are kept exact
beside the text a person reads (`display`), formatted by `reports/numbers.py`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from partnerkpi.engine.result import iso_z


@dataclass(frozen=True)
class Point:
    """One period of a KPI's series (None: no value in that period)."""

    period: str
    value: float | None


@dataclass(frozen=True)
class Headline:
    """A KPI of the quarter: value, change against the quarter before, judgment, band, benchmark and series."""

    kpi: str
    name: str
    unit: str
    direction: str
    value: float | None
    display: str
    previous: float | None
    change_display: str
    status: str | None
    status_note: str | None
    band: str | None
    band_color: str | None
    benchmark: str | None
    series: tuple[Point, ...] = ()


@dataclass(frozen=True)
class Move:
    """A KPI (and segment) that improved, worsened, or changed band or status."""

    kpi: str
    name: str
    segment: str
    before: str
    after: str
    change: str = ""
    better: bool | None = None


@dataclass(frozen=True)
class RiskItem:
    """An at-risk partner (internal edition only) with its health and reasons."""

    partner_id: str
    name: str | None
    level: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SegmentRow:
    """One KPI across the values of a partner trait (the segment comparison)."""

    kpi: str
    name: str
    cells: dict[str, str]


@dataclass(frozen=True)
class Decision:
    """A KPI off its mark, how far (a share of the mark: 0.25 = 25 % off) and the catalog's levers for it."""

    kpi: str
    name: str
    state: str  # "poor vs target 75", "band red", "below the peer median"
    distance: float | None
    levers: tuple[str, ...]


@dataclass(frozen=True)
class PeerLine:
    """A partner's KPI against the anonymous figures of its peers (partner edition)."""

    kpi: str
    name: str
    unit: str
    value: float | None
    display: str
    change_display: str
    peers_n: int
    peer_median: str
    peer_top_quartile: str
    position: str | None
    series: tuple[Point, ...] = ()


@dataclass(frozen=True)
class TaskItem:
    """An open task of the partner (partner edition)."""

    task: str
    title: str | None
    kind: str | None
    due: datetime | None
    overdue: bool
    days_overdue: int


@dataclass(frozen=True)
class PolicyItem:
    """A required policy the partner has not acknowledged (partner edition)."""

    policy: str
    title: str | None
    published_at: datetime | None
    days_since_published: int


@dataclass(frozen=True)
class Definition:
    """A KPI's catalog definition and formula (the appendix)."""

    kpi: str
    name: str
    definition: str
    formula: str


@dataclass(frozen=True)
class Report:
    """One edition of the quarterly report for one period: internal (the program) or one partner's."""

    edition: str  # "internal" | "partner"
    audience: str  # "internal" | "partner:P1"
    title: str
    period: str
    previous_period: str
    segment: str  # the filters' segment: "whole program", or the partner's peer group
    generated_at: datetime
    watermark: datetime | None
    partner_id: str | None = None
    partner_name: str | None = None
    summary: tuple[str, ...] = ()
    headlines: tuple[Headline, ...] = ()
    improved: tuple[Move, ...] = ()
    worsened: tuple[Move, ...] = ()
    band_changes: tuple[Move, ...] = ()
    status_changes: tuple[Move, ...] = ()
    leading: tuple[Headline, ...] = ()
    at_risk: tuple[RiskItem, ...] = ()
    segment_by: str | None = None
    segment_values: tuple[str, ...] = ()
    segments: tuple[SegmentRow, ...] = ()
    peers: tuple[PeerLine, ...] = ()
    tasks: tuple[TaskItem, ...] = ()
    policies: tuple[PolicyItem, ...] = ()
    decisions: tuple[Decision, ...] = ()
    definitions: tuple[Definition, ...] = field(default=())

    @property
    def filters(self) -> str:
        """The filters in words, as every page prints them."""
        return f"Period {self.period} · Audience {self.audience} · Segment {self.segment}"

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON object (instants as ISO-8601 Z)."""
        return _plain(asdict(self))


def _plain(x: Any) -> Any:
    if isinstance(x, datetime):
        return iso_z(x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x
