"""Building the report model: the internal edition from the Hub, a partner's edition from its scope only.

`build_report(hub, period, audience)` picks the edition; the partner edition is built by `partner_report`
from `hub.scoped(partner_id)`, which answers nothing about any other partner (peers only as anonymous
median, top quartile and count).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from partnerkpi.access import Memo, PartnerScope
from partnerkpi.catalog import Catalog
from partnerkpi.catalog.model import KPI
from partnerkpi.engine.partner_reads import peer_position
from partnerkpi.engine.periods import EARLIEST_DAY, Grain, label, parse_period_label, period_start, shift
from partnerkpi.engine.result import KpiRow
from partnerkpi.errors import UsageError
from partnerkpi.hub import Hub
from partnerkpi.reports.document import (
    Decision,
    Definition,
    Headline,
    Move,
    PeerLine,
    Point,
    PolicyItem,
    Report,
    RiskItem,
    SegmentRow,
    TaskItem,
)
from partnerkpi.reports.numbers import format_change, format_value

if TYPE_CHECKING:
    from partnerkpi.insights.review import Movement

HISTORY = 6  # quarters in a sparkline, the reported one last
HEADLINE_KPIS = ("active_partner_rate", "portal_usage_rate", "task_completion_rate", "policy_ack_rate",
                 "overdue_compliance_tasks", "support_requests_per_partner", "partner_revenue", "partner_churn_rate")
SEGMENT_BY = "type"
TOP_MOVES = 6
TOP_RISKS = 10
TOP_DECISIONS = 6
NEXT_STEPS = 3


def parse_audience(audience: str) -> str | None:
    """The partner id of "partner:ID" (None for "internal"); UsageError for anything else."""
    if audience == "internal":
        return None
    if audience.startswith("partner:") and audience.removeprefix("partner:").strip():
        return audience.removeprefix("partner:").strip()
    raise UsageError(f"unknown audience '{audience}'", hint="write internal, or partner:ID (e.g. partner:P001)")


def quarter_of(hub: Hub | PartnerScope, period: str | None) -> tuple[datetime, str]:
    """The start and label of `period` (a quarter like 2026-Q3; None: the last quarter the data covers)."""
    if period is None:
        last = hub.last_complete(Grain.QUARTER)
        start = last.start if last else period_start(hub.clock(), Grain.QUARTER)
        return start, label(start, Grain.QUARTER)
    grain, found = parse_period_label(period)
    if grain is not Grain.QUARTER:
        raise UsageError(f"'{period}' is not a quarter", hint="write the period as a quarter, e.g. 2026-Q3")
    return found.start, found.label


def history_start(start: datetime) -> datetime:
    """The first quarter of the sparklines of a report on the quarter starting at `start`: HISTORY quarters
    back, but never before the earliest day partnerkpi handles (a report on 1900-Q1 has one quarter of history)."""
    earliest = datetime(EARLIEST_DAY.year, EARLIEST_DAY.month, EARLIEST_DAY.day)
    return max(shift(start, Grain.QUARTER, 1 - HISTORY), earliest)


def build_report(hub: Hub, period: str | None = None, audience: str = "internal", *,
                 memo: Memo | None = None) -> Report:
    """The report of `period` for `audience`: "internal", or "partner:ID" (built from that partner's scope;
    a `memo` shared across partners, as a burst does, computes the peers' rows once)."""
    partner_id = parse_audience(audience)
    if partner_id is not None:
        return partner_report(hub.scoped(partner_id, memo=memo), period)
    return internal_report(hub, period)


def _series(rows: Sequence[KpiRow], kpi_id: str) -> tuple[Point, ...]:
    return tuple(Point(r.period, r.value) for r in sorted(rows, key=lambda r: r.period_start) if r.kpi == kpi_id)


def _benchmark(kpi: KPI) -> str | None:
    return f"{format_value(kpi.benchmarks[0].value, kpi.unit)} ({kpi.benchmarks[0].label})" if kpi.benchmarks else None


def _headline(hub: Hub, kpi: KPI, row: KpiRow, history: Sequence[KpiRow]) -> Headline:
    band = hub.book.band_of(kpi, row.segment, row.period_start, row.value) if row.value is not None else None
    return Headline(
        kpi=kpi.id, name=kpi.name, unit=kpi.unit, direction=kpi.direction, value=row.value,
        display=format_value(row.value, kpi.unit), previous=row.previous,
        change_display=format_change(row.change, kpi.unit, row.value), status=row.status,
        status_note=row.status_note, band=band.name if band else row.band, band_color=band.color if band else None,
        benchmark=_benchmark(kpi), series=_series(history, kpi.id),
    )


def _distance(kpi: KPI, value: float | None, mark: float | None) -> float | None:
    """How far `value` falls short of `mark` in the KPI's direction, as a share of the mark (0: at or past it).
    A mark of zero is measured against one unit, or the whole 100 % scale for a percentage (33 pp over a 0 %
    median is 33 % off, not 3,300 %)."""
    if value is None or mark is None:
        return None
    short = (mark - value) if kpi.direction == "up" else (value - mark)
    return max(short, 0.0) / (abs(mark) or (100.0 if kpi.unit == "%" else 1.0))


def internal_report(hub: Hub, period: str | None = None) -> Report:
    """The internal edition: the program's story of the quarter, segments, decisions and definitions."""
    from partnerkpi.insights.health import default_as_of, load_config
    from partnerkpi.insights.review import quarter_review
    from partnerkpi.insights.risk import at_risk

    start, quarter = quarter_of(hub, period)
    end = shift(start, Grain.QUARTER)
    first = history_start(start)
    chosen = [k for k in HEADLINE_KPIS if k in hub.catalog]
    by = SEGMENT_BY if SEGMENT_BY in hub.traits() else None
    rows = hub.scorecard(Grain.QUARTER, first.date(), end.date(), by=by, judged=True)  # one compute for all parts
    program = [r for r in rows if not r.segment]
    current = {r.kpi: r for r in program if r.period == quarter}
    before = {r.kpi: r for r in program if r.period_start == shift(start, Grain.QUARTER, -1)}
    headlines = tuple(_headline(hub, hub.kpi(k), current[k], program) for k in chosen if k in current)
    review = quarter_review(hub, quarter, hub.book)

    def move(m: Movement, better: bool | None) -> Move:
        return Move(m.kpi, m.name, "program", format_value(m.previous, m.unit), format_value(m.value, m.unit),
                    format_change(m.change, m.unit, m.value), better)

    def biggest(items: Iterable[Movement]) -> list[Movement]:
        return sorted(items, key=lambda m: -abs(m.change_pct or 0.0))[:TOP_MOVES]

    improved = tuple(move(m, True) for m in biggest(m for m in review.improved if not m.segment))
    worsened = tuple(move(m, False) for m in biggest(m for m in review.worsened if not m.segment))
    bands = tuple(Move(b.kpi, b.name, "program", b.band_from or "(none)", b.band_to or "(none)",
                       f"{format_value(b.previous, b.unit)} → {format_value(b.value, b.unit)}", b.better)
                  for b in review.band_changes if not b.segment)
    statuses = tuple(
        Move(r.kpi, hub.kpi(r.kpi).name, "program", str(before[r.kpi].status), str(r.status),
             format_change(r.change, r.unit, r.value), _ranked(r.status) > _ranked(before[r.kpi].status))
        for r in current.values()
        if r.kpi in before and r.status and before[r.kpi].status and r.status != before[r.kpi].status)
    leading = tuple(_headline(hub, k, current[k.id], program) for k in hub.catalog
                    if k.timing == "leading" and k.id in current and current[k.id].status in ("watch", "poor"))
    as_of = default_as_of(hub)
    risks = tuple(RiskItem(e.partner_id, e.name, e.level, e.score, e.reasons)
                  for e in at_risk(hub, as_of, load_config(catalog=hub.catalog))[:TOP_RISKS])
    values, segments = _segment_table(hub, by, [r for r in rows if r.segment and r.period == quarter], chosen)
    decisions = _decisions(hub, list(current.values()), start)
    shown = dict.fromkeys([*chosen, *(d.kpi for d in decisions), *(m.kpi for m in leading)])
    return Report(
        edition="internal", audience="internal", title=f"Partner program review {quarter}", period=quarter,
        previous_period=label(shift(start, Grain.QUARTER, -1), Grain.QUARTER), segment="whole program",
        generated_at=hub.clock(), watermark=hub.watermark(),
        summary=_summary(review.counts(), len(risks), quarter),
        headlines=headlines, improved=improved, worsened=worsened, band_changes=bands, status_changes=statuses,
        leading=leading, at_risk=risks, segment_by=by, segment_values=values, segments=segments,
        decisions=decisions, definitions=_definitions(hub.catalog, shown),
    )


def _ranked(status: str | None) -> int:
    return {"poor": 0, "watch": 1, "good": 2}.get(status or "", -1)


def _summary(counts: dict[str, int], risks: int, quarter: str) -> tuple[str, ...]:
    return (
        f"{counts['improved']} KPI figures improved and {counts['worsened']} worsened in {quarter} "
        f"against the quarter before (program and segments).",
        f"{counts['band_changes']} changed band; {counts['targets_missed']} targets were missed and "
        f"{counts['targets_met']} met.",
        f"{risks} partners are at risk." if risks != 1 else "1 partner is at risk.",
    )


def _segment_table(hub: Hub, by: str | None, rows: Sequence[KpiRow], kpis: Sequence[str]
                   ) -> tuple[tuple[str, ...], tuple[SegmentRow, ...]]:
    if by is None:
        return (), ()
    values = tuple(sorted({r.segment[by] for r in rows}))
    cells = {(r.kpi, r.segment[by]): r.value for r in rows}
    return values, tuple(
        SegmentRow(k, hub.kpi(k).name, {v: format_value(cells.get((k, v)), hub.kpi(k).unit) for v in values})
        for k in kpis)


def _decisions(hub: Hub, rows: Sequence[KpiRow], start: datetime) -> tuple[Decision, ...]:
    """The KPIs judged poor or watch, or in a red or amber band, ranked by how far off their target (else
    their benchmark) they are, each with the catalog's levers."""
    found = []
    for r in rows:
        kpi = hub.kpi(r.kpi)
        band = hub.book.band_of(kpi, r.segment, r.period_start, r.value) if r.value is not None else None
        off_band = band is not None and band.color in ("red", "amber")
        if r.status not in ("poor", "watch") and not off_band:
            continue
        target = hub.book.target_for(kpi, r.segment, start)
        mark = target.value if target else (kpi.benchmarks[0].value if kpi.benchmarks else None)
        state = ", ".join(x for x in (r.status and f"{r.status} {r.status_note or ''}".strip(),
                                      off_band and f"band {band.name}") if x)
        found.append(Decision(kpi.id, kpi.name, state, _distance(kpi, r.value, mark), kpi.improvement_levers))
    found.sort(key=lambda d: (-(d.distance or 0.0), d.kpi))
    return tuple(found[:TOP_DECISIONS])


def _definitions(catalog: Catalog, ids: Iterable[str]) -> tuple[Definition, ...]:
    return tuple(Definition(k, catalog.get(k).name, catalog.get(k).definition, catalog.get(k).formula)
                 for k in ids if k in catalog)


def partner_report(scope: PartnerScope, period: str | None = None) -> Report:
    """A partner's edition, from its scope alone: its KPIs against anonymous peers, trends, tasks, policies
    and next steps."""
    start, quarter = quarter_of(scope, period)
    end = shift(start, Grain.QUARTER)
    first = history_start(start)
    partner = scope.partner()
    by = SEGMENT_BY if SEGMENT_BY in scope.traits() else None
    figures = scope.figures(Grain.QUARTER, first.date(), end.date(), by)
    lines, weak = [], []
    for kpi in scope.kpis():
        row = next((r for r in figures.rows if r.kpi == kpi.id and r.period == quarter), None)
        if row is None or row.value is None:
            continue
        stats = figures.peers.get((kpi.id, quarter))
        position = peer_position(row.value, stats, kpi.direction) if stats else None
        lines.append(PeerLine(
            kpi=kpi.id, name=kpi.name, unit=kpi.unit, value=row.value, display=format_value(row.value, kpi.unit),
            change_display=format_change(row.change, kpi.unit, row.value), peers_n=stats.n if stats else 0,
            peer_median=format_value(stats.median if stats else None, kpi.unit),
            peer_top_quartile=format_value(stats.top_quartile if stats else None, kpi.unit),
            position=position, series=_series(figures.rows, kpi.id)))
        if position == "below median" and stats is not None:
            weak.append(Decision(kpi.id, kpi.name, "below the peer median",
                                 _distance(kpi, row.value, stats.median), kpi.improvement_levers))
        elif position is None and row.status == "poor":  # too few peers to compare: its own judgment says
            weak.append(Decision(kpi.id, kpi.name, f"poor {row.status_note or ''}".strip(), None,
                                 kpi.improvement_levers))
    weak.sort(key=lambda d: (-(d.distance or 0.0), d.kpi))
    tasks = tuple(TaskItem(t["task"], t["title"], t["kind"], t["due"], t["overdue"], t["days_overdue"])
                  for t in scope.open_tasks())
    policies = tuple(PolicyItem(p["policy"], p["title"], p["published_at"], p["days_since_published"])
                     for p in scope.unacknowledged_policies())
    name = partner.get("name") or scope.partner_id
    overdue = sum(t.overdue for t in tasks)
    return Report(
        edition="partner", audience=f"partner:{scope.partner_id}", title=f"{name}: partner review {quarter}",
        period=quarter, previous_period=label(shift(start, Grain.QUARTER, -1), Grain.QUARTER),
        segment=f"peers: {figures.peer_group}", generated_at=scope.clock(), watermark=scope.watermark(),
        partner_id=scope.partner_id, partner_name=name,
        summary=(f"{sum(p.position in ('top quartile', 'above median') for p in lines)} of {len(lines)} KPIs at "
                 f"or above the peer median ({figures.peer_group}).",
                 f"{_counted(len(tasks), 'open task')}, {overdue} overdue; "
                 f"{_counted(len(policies), 'policy', 'policies')} to acknowledge."),
        peers=tuple(lines), tasks=tasks, policies=policies, decisions=tuple(weak[:NEXT_STEPS]),
        definitions=_definitions(scope.catalog, [p.kpi for p in lines]),
    )


def _counted(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
