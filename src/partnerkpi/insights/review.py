"""The quarterly review: a quarter against the quarter before, per KPI and segment. What improved and what
worsened (in the KPI's direction), which KPIs changed band (bands from the TargetBook in force at each
quarter's start), and which targets were met or missed (the target in force at the quarter's start).

Rendered as Rich tables (one per section) and as JSON (`QuarterReview.to_json()`), from the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from partnerkpi.catalog.model import KPI
from partnerkpi.engine.periods import Grain, label, parse_period_label, period_start, shift
from partnerkpi.engine.result import KpiRow, _clean, iso_z
from partnerkpi.errors import UsageError
from partnerkpi.insights.targets import TargetBook
from partnerkpi.insights.trends import relative_change

if TYPE_CHECKING:
    from rich.table import Table

    from partnerkpi.hub import Hub

__all__ = ["BandChange", "Movement", "QuarterReview", "TargetCheck", "quarter_review", "review_tables"]

UNCHANGED = 1e-9  # a change this small is no change (as the scorecard's arrow judges it)


def _json(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        v = getattr(obj, name)
        if isinstance(v, datetime):
            v = iso_z(v)
        elif isinstance(v, date):
            v = v.isoformat()
        elif isinstance(v, dict):
            v = dict(v)
        out[name] = _clean(v) if isinstance(v, float) else v
    return out


@dataclass(frozen=True)
class _Item:
    """A KPI (and segment) in the review."""

    kpi: str
    name: str
    unit: str
    segment: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class Movement(_Item):
    """A KPI (and segment) whose value moved between the two quarters; `change` = value - previous."""

    value: float
    previous: float
    change: float
    change_pct: float | None
    status: str | None = None  # the quarter's judgment (KPI-SPEC v2 §6): good, watch, poor
    status_basis: str | None = None
    status_note: str | None = None


@dataclass(frozen=True)
class BandChange(_Item):
    """A KPI (and segment) that sits in another band than in the quarter before (None: in no band)."""

    value: float
    previous: float
    band_from: str | None
    band_to: str | None
    color_from: str | None = None
    color_to: str | None = None
    better: bool | None = None  # the value moved the KPI's way (None: it did not move)


@dataclass(frozen=True)
class TargetCheck(_Item):
    """A KPI (and segment) against the target in force at the quarter's start; `gap` = value - target."""

    value: float | None
    target: float
    target_label: str | None
    effective_from: date
    met: bool | None  # None: the KPI has no value in the quarter
    gap: float | None
    status: str | None = None  # good when met, watch within the tolerance, poor beyond
    status_basis: str | None = None
    status_note: str | None = None


@dataclass(frozen=True)
class QuarterReview:
    """A quarter compared with the one before it; every list in catalog order, the whole program first."""

    quarter: str
    previous_quarter: str
    period_start: datetime
    period_end: datetime
    by: str | None = None
    improved: tuple[Movement, ...] = ()
    worsened: tuple[Movement, ...] = ()
    unchanged: tuple[Movement, ...] = ()
    band_changes: tuple[BandChange, ...] = ()
    targets: tuple[TargetCheck, ...] = ()

    @property
    def targets_met(self) -> tuple[TargetCheck, ...]:
        return tuple(t for t in self.targets if t.met is True)

    @property
    def targets_missed(self) -> tuple[TargetCheck, ...]:
        return tuple(t for t in self.targets if t.met is False)

    @property
    def targets_without_value(self) -> tuple[TargetCheck, ...]:
        return tuple(t for t in self.targets if t.met is None)

    def counts(self) -> dict[str, int]:
        """How many items each section holds."""
        return {
            "improved": len(self.improved),
            "worsened": len(self.worsened),
            "unchanged": len(self.unchanged),
            "band_changes": len(self.band_changes),
            "targets_met": len(self.targets_met),
            "targets_missed": len(self.targets_missed),
            "targets_without_value": len(self.targets_without_value),
        }

    def to_json(self) -> dict[str, Any]:
        """The review as one JSON object: the quarter, the counts and a list per section."""
        return {
            "quarter": self.quarter,
            "previous_quarter": self.previous_quarter,
            "period_start": iso_z(self.period_start),
            "period_end": iso_z(self.period_end),
            "by": self.by,
            "counts": self.counts(),
            "improved": [m.to_json() for m in self.improved],
            "worsened": [m.to_json() for m in self.worsened],
            "unchanged": [m.to_json() for m in self.unchanged],
            "band_changes": [b.to_json() for b in self.band_changes],
            "targets_met": [t.to_json() for t in self.targets_met],
            "targets_missed": [t.to_json() for t in self.targets_missed],
            "targets_without_value": [t.to_json() for t in self.targets_without_value],
        }


def _quarter(hub: Hub, quarter: str | None) -> tuple[datetime, str]:
    if quarter is None:  # the last quarter the data covers completely (by the watermark)
        last = hub.last_complete(Grain.QUARTER)
        start = last.start if last else shift(period_start(hub.now(), Grain.QUARTER), Grain.QUARTER, -1)
        return start, label(start, Grain.QUARTER)
    grain, period = parse_period_label(quarter)
    if grain is not Grain.QUARTER:
        raise UsageError(f"'{quarter}' is not a quarter", hint="write the quarter as 2026-Q3")
    return period.start, period.label


def quarter_review(
    hub: Hub,
    quarter: str | None = None,
    book: TargetBook | None = None,
    by: str | None = None,
    kpis: Sequence[str] | None = None,
) -> QuarterReview:
    """Review `quarter` (a label like 2026-Q3; default: the last quarter the data covers completely) against the
    quarter before, for the program and per `by` segment; `book` defaults to the package's default targets."""
    start, quarter_label = _quarter(hub, quarter)
    end = shift(start, Grain.QUARTER)
    before = shift(start, Grain.QUARTER, -1)
    book = book if book is not None else TargetBook.load(catalog=hub.catalog)
    rows = hub.scorecard(Grain.QUARTER, start.date(), end.date(), by=by, kpis=kpis, book=book)
    improved, worsened, unchanged, bands, targets = [], [], [], [], []
    for row in rows:
        kpi = hub.kpi(row.kpi)
        if row.value is not None and row.previous is not None:
            movement = _movement(kpi, row)
            better = None if abs(movement.change) < UNCHANGED else (movement.change > 0) == (kpi.direction == "up")
            (unchanged if better is None else improved if better else worsened).append(movement)
            change = _band_change(book, kpi, row, before, start, better)
            if change is not None:
                bands.append(change)
        target = book.target_for(kpi, row.segment, start)
        if target is not None:
            targets.append(TargetCheck(
                kpi=kpi.id, name=kpi.name, unit=kpi.unit, segment=dict(row.segment), value=row.value,
                target=target.value, target_label=target.label, effective_from=target.effective_from,
                met=book.met(kpi, row.value, target),
                gap=None if row.value is None else row.value - target.value,
                **_judgment(row),
            ))
    return QuarterReview(
        quarter=quarter_label, previous_quarter=label(before, Grain.QUARTER), period_start=start, period_end=end,
        by=by, improved=tuple(improved), worsened=tuple(worsened), unchanged=tuple(unchanged),
        band_changes=tuple(bands), targets=tuple(targets),
    )


def _movement(kpi: KPI, row: KpiRow) -> Movement:
    assert row.value is not None and row.previous is not None
    return Movement(
        kpi=kpi.id, name=kpi.name, unit=kpi.unit, segment=dict(row.segment), value=row.value,
        previous=row.previous, change=row.value - row.previous, change_pct=relative_change(row.value, row.previous),
        **_judgment(row),
    )


def _judgment(row: KpiRow) -> dict[str, str | None]:
    return {"status": row.status, "status_basis": row.status_basis, "status_note": row.status_note}


def _band_change(
    book: TargetBook, kpi: KPI, row: KpiRow, before: datetime, start: datetime, better: bool | None
) -> BandChange | None:
    """Each quarter is judged on the bands in force at its own start (as its scorecard showed it)."""
    if not book.bands_for(kpi, row.segment, start) and not book.bands_for(kpi, row.segment, before):
        return None
    band_from = book.band_of(kpi, row.segment, before, row.previous)
    band_to = book.band_of(kpi, row.segment, start, row.value)
    name_from = band_from.name if band_from else None
    name_to = band_to.name if band_to else None
    if name_from == name_to:
        return None
    assert row.value is not None and row.previous is not None
    return BandChange(
        kpi=kpi.id, name=kpi.name, unit=kpi.unit, segment=dict(row.segment), value=row.value,
        previous=row.previous, band_from=name_from, band_to=name_to,
        color_from=band_from.color if band_from else None, color_to=band_to.color if band_to else None,
        better=better,
    )


# -- rendering ------------------------------------------------------------------------------------------
def _segment_text(segment: Mapping[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sorted(segment.items())) or "program"


def review_tables(review: QuarterReview) -> list[Table]:
    """One Rich table per non-empty section: improved, worsened, band changes, targets missed, targets met,
    targets without a value."""
    from rich.table import Table
    from rich.text import Text

    from partnerkpi.insights.trends import signed
    from partnerkpi.reports import format_value
    from partnerkpi.reports.table import BAND_STYLES

    def table(title: str, columns: Sequence[str]) -> Table:
        t = Table(title=title, title_justify="left")
        for c in columns:
            t.add_column(c, justify="left" if c in {"KPI", "segment", "band", "target label"} else "right")
        return t

    def changed(m: Movement, style: str) -> Text:
        pct = "" if m.change_pct is None else f" ({m.change_pct:+.1f} %)"
        return Text(signed(m.change, m.unit) + pct, style=style)

    def band_text(name: str | None, color: str | None) -> Text:
        return Text(name or "(none)", style=BAND_STYLES.get(color or "", "dim"))

    versus = f"{review.quarter} vs {review.previous_quarter}"
    tables = []
    for title, items, style in (("Improved", review.improved, "green"), ("Worsened", review.worsened, "red")):
        if not items:
            continue
        t = table(f"{title} ({len(items)}), {versus}", ["KPI", "segment", review.previous_quarter,
                                                          review.quarter, "change"])
        for m in items:
            t.add_row(m.name, _segment_text(m.segment), format_value(m.previous, m.unit),
                      format_value(m.value, m.unit), changed(m, style))
        tables.append(t)
    if review.band_changes:
        t = table(f"Band changes ({len(review.band_changes)}), {versus}", ["KPI", "segment", "value", "band"])
        for b in review.band_changes:
            arrow = Text(" → ", style="green" if b.better else "red" if b.better is False else "dim")
            t.add_row(b.name, _segment_text(b.segment),
                      f"{format_value(b.previous, b.unit)} → {format_value(b.value, b.unit)}",
                      band_text(b.band_from, b.color_from) + arrow + band_text(b.band_to, b.color_to))
        tables.append(t)
    for title, items, style in (("Targets missed", review.targets_missed, "red"),
                                ("Targets met", review.targets_met, "green"),
                                ("Targets without a value", review.targets_without_value, "dim")):
        if not items:
            continue
        t = table(f"{title} ({len(items)}), {review.quarter}", ["KPI", "segment", "value", "target", "gap",
                                                                 "target label"])
        for c in items:
            gap = "–" if c.gap is None else signed(c.gap, c.unit)
            t.add_row(c.name, _segment_text(c.segment), format_value(c.value, c.unit),
                      format_value(c.target, c.unit), Text(gap, style=style),
                      f"{c.target_label or ''} (from {c.effective_from})".strip())
        tables.append(t)
    return tables
