"""The one door to data: every query a request makes goes through a `Reader`, built for its actor.

An internal actor's reader reads the Hub; a partner user's reader wraps the library's `PartnerScope`
(`hub.scoped(partner_id)`, partnerkpi/access.py), which decides what the partner may read. The reader adds
only what the web needs in front of them: the result cache. Routes never look at who is asking.

A request's hub is a snapshot (`Hub.snapshot`: a DuckDB connection of its own), so its reads never wait for
the app's write lock; the few writes a reader makes (overrides, acknowledgements) take that lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from partnerkpi.access import (
    MIN_PEERS,
    OutOfScope,
    PartnerFigures,
    PartnerScope,
    UnknownPartnerError,
    partner_figures,
    partner_kpis,
)
from partnerkpi.catalog.model import KPI
from partnerkpi.engine.periods import Grain
from partnerkpi.engine.result import KpiRow
from partnerkpi.errors import UsageError
from partnerkpi.hub import PER_PARTNER, Hub
from partnerkpi.insights.alerts import Alert, acknowledge, list_alerts, list_deliveries
from partnerkpi.insights.backtest import BacktestResult, backtest
from partnerkpi.insights.health import (
    HealthConfig,
    HealthScore,
    Override,
    add_override,
    default_as_of,
    list_overrides,
    load_config,
    remove_override,
)
from partnerkpi.insights.impact import CoMovement, ImpactReport, activity_range, co_movement, impact
from partnerkpi.insights.lifecycle import Lifecycle, Stickiness, lifecycle, stickiness
from partnerkpi.insights.review import QuarterReview, quarter_review
from partnerkpi.insights.risk import RiskEntry, at_risk, inactive
from partnerkpi.insights.targets import TargetBook, load_targets
from partnerkpi.insights.trends import Trend, trends
from partnerkpi.reports.document import Report
from partnerkpi.settings import Settings
from partnerkpi.web.empty import NoDataYet
from partnerkpi.web.kept import LastActive, LiveHealth
from partnerkpi.web.state import Refresher, ResultCache

log = logging.getLogger(__name__)

DEFAULT_PERIODS = 6
__all__ = ["MIN_PEERS", "OutOfScope", "PartnerFigures", "RangeQuery", "Reader", "UnknownPartnerError"]


@dataclass(frozen=True)
class RangeQuery:
    """Grain, half-open date range [start, end) and optional segmenting trait of a request."""

    grain: Grain
    start: date
    end: date
    by: str | None = None
    partial: bool = False  # asked for the running period
    note: str | None = None  # why the range ends before what was asked (the data ends there)
    running: datetime | None = None  # start of the running (incomplete) period shown, when partial

    def is_partial(self, row: KpiRow) -> bool:
        """Whether a row is of the running period, whose data is not complete yet."""
        return self.running is not None and row.period_start >= self.running


@dataclass
class Reader:
    """What a request may read from the hub; `scope` is the one partner a partner user may see."""

    hub: Hub
    write_lock: threading.Lock
    scope: str | None = None
    cache: ResultCache = field(default_factory=ResultCache)
    insights: Insights = field(init=False)
    _data_version: tuple | None = field(default=None, init=False, repr=False)
    _access: PartnerScope | None = field(default=None, init=False, repr=False)
    fresh_only: bool = False  # compute every result for the data as it is now (warming, background refreshes)
    _after: list[Callable[[], None]] = field(default_factory=list, init=False, repr=False)
    refresher: Refresher | None = None  # the server's worker for the results served stale (without: all fresh)
    stale_age: float | None = field(default=None, init=False)  # seconds: the oldest last result served stale
    finished: bool = field(default=False, init=False)  # `done` ran: its snapshot is (being) closed

    # -- scope ------------------------------------------------------------------------------------
    @property
    def access(self) -> PartnerScope | None:
        """The library's scope of a partner user (None for an internal actor, who reads the hub)."""
        if self.scope is None:
            return None
        if self._access is None:
            self._access = self.hub.scoped(self.scope, memo=self._cached)
        return self._access

    def _whole_program(self) -> None:
        if self.scope is not None:
            raise OutOfScope(self.scope)

    def _visible(self) -> list[dict[str, Any]]:
        if self.scope is not None:
            try:
                return self.access.partners()  # type: ignore[union-attr]
            except UnknownPartnerError:  # the actor's partner is not (or no longer) in the data
                return []
        return self._cached(("partners",), self.hub.partners)

    def partner(self, partner_id: str) -> dict[str, Any]:
        """A partner the actor may see (UnknownPartnerError otherwise, the same as for no such partner)."""
        if self.access is not None:
            return self.access.partner(partner_id)
        found = next((p for p in self._visible() if p["partner_id"] == partner_id), None)
        if found is None:
            raise UnknownPartnerError(partner_id)
        return found

    def _scope_of(self, partner_id: str) -> PartnerScope:
        """The scope of a partner the actor may see: its own, or (internal actors) any partner's."""
        if self.access is not None:
            self.access.partner(partner_id)
            return self.access
        return self.hub.scoped(partner_id, memo=self._cached)

    def _version(self) -> tuple:
        """The data version cached results are keyed by (the hub's data version, the last import, the partner
        count); read once per request."""
        if self._data_version is None:
            imports, partners = self.hub.store.con.execute(
                "SELECT (SELECT max(import_id) FROM imports), (SELECT count(*) FROM partners)").fetchall()[0]
            self._data_version = (self.hub.data_version(), imports, partners)
        return self._data_version

    def require_data(self) -> None:
        """Raise NoDataYet while the database holds no partners or no events: there is nothing to compute."""
        data, _, partners = self._version()
        if not data.rows or not partners:
            raise NoDataYet(partners, data.rows)

    def _cached(self, key: tuple, make: Callable[[], Any], family: tuple | None = None) -> Any:
        """The result of `key` for the data as it is (or, when the data changed under a slow result, that
        result while a fresh one is computed after this request: `ResultCache`). `family` is what the result
        answers whatever the data (by default `key`; without parts that move with the data, like `as_of`)."""
        refresh = None if self.fresh_only or self.refresher is None else self._after.append
        return self.cache.get((self._version(), *key), make, family=key if family is None else family,
                              refresh=refresh, served=self._served_stale)

    def cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        """`make()` once per data version for every request that asks for `key` (a view's chart, say); check
        the actor's scope before, as the key does not name the actor unless it says so."""
        return self._cached(key, make)

    def _served_stale(self, age: float) -> None:
        self.stale_age = max(age, self.stale_age or 0.0)

    def done(self) -> None:
        """The request is over: close its snapshot, after the server's refresher has computed on it (fresh, in
        order) the results it served stale."""
        self.finished = True
        if self._after:
            self.refresher.submit(self)  # type: ignore[union-attr]  # only a reader with one serves stale
        else:
            self.hub.close_snapshot()

    def refresh(self) -> None:
        """Compute the results served stale, fresh, then close the snapshot."""
        self.fresh_only = True
        try:
            while self._after:
                try:
                    self._after.pop(0)()
                except Exception:  # the next request that needs it computes it again and reports the failure
                    log.exception("refreshing a result in the background failed")
        finally:
            self.hub.close_snapshot()

    def discard(self) -> None:
        """Close the snapshot without computing the results served stale (the server stops)."""
        self._after.clear()
        self.hub.close_snapshot()

    # -- catalog ----------------------------------------------------------------------------------
    def kpis(self) -> list[KPI]:
        """The catalog, in display order."""
        return list(self.hub.catalog)

    def kpi(self, kpi_id: str) -> KPI:
        """One catalog entry (UnknownKPIError, a 404, when there is none)."""
        return self.hub.kpi(kpi_id)

    def partner_kpis(self) -> list[KPI]:
        """The KPIs a partner page shows to this actor: per-partner KPIs, internal ones to internal users."""
        return partner_kpis(self.hub.catalog, internal=self.scope is None)

    def traits(self) -> list[str]:
        """The partner traits a scorecard can be segmented by."""
        return self._cached(("traits",), self.hub.traits)

    def default_range(self, grain: Grain, end: date | None = None, partial: bool = False) -> tuple[date, date]:
        """Like the CLI: 6 periods up to `end`, by default the end of the last complete period (with `partial`,
        of the running one)."""
        running = self.hub.running_period(grain) if partial and end is None else None
        return self.hub.default_range(grain, DEFAULT_PERIODS, running.end.date() if running else end)

    # -- the whole program (internal actors) ------------------------------------------------------
    def scorecard(self, query: RangeQuery, kpis: Sequence[str] | None = None) -> list[KpiRow]:
        """KPI rows of the query's range, program and segments."""
        self._whole_program()
        key = ("scorecard", query, tuple(kpis or ()))
        book = self.insights.book()
        return self._cached(key, lambda: self.hub.scorecard(query.grain, query.start, query.end, by=query.by,
                                                            kpis=kpis, book=book))

    def data_quality(self) -> tuple[dict[str, int], list[dict], list[dict]]:
        """Table counts, imports (newest first) and tracking-plan coverage."""
        self._whole_program()
        return self.hub.store.counts(), self.hub.imports(), self.hub.plan_coverage()

    def rejected(self, *, kind: str | None, field: str | None, import_id: int | None, text: str | None,
                 limit: int | None, offset: int) -> tuple[list[dict], int]:
        """Rejected rows matching the filters, and how many match."""
        self._whole_program()
        return self.hub.rejected(kind=kind, field=field, import_id=import_id, text=text, limit=limit,
                                 offset=offset)

    # -- partners ---------------------------------------------------------------------------------
    def _per_partner(self, query: RangeQuery, kpis: Sequence[str]) -> list[KpiRow]:
        key = ("per_partner", query.grain, query.start, query.end, tuple(kpis))
        book = self.insights.book()
        return self._cached(key, lambda: self.hub.scorecard(query.grain, query.start, query.end, by=PER_PARTNER,
                                                            kpis=kpis, book=book))

    def partner_list(self, query: RangeQuery, kpis: Sequence[str]) -> tuple[list[dict], list[KpiRow],
                                                                            dict[str, datetime]]:
        """The partners the actor may see, their rows of `kpis` over the range, and their last activity."""
        partners = self._visible()
        ids = {p["partner_id"] for p in partners}
        rows = [r for r in self._per_partner(query, kpis) if r.segment.get(PER_PARTNER) in ids]
        last = self.cache.get(("kept_last_active",), LastActive).of(self.hub, self._version()[0])
        return partners, rows, {pid: ts for pid, ts in last.items() if pid in ids}

    def last_active(self, partner_id: str) -> datetime | None:
        """The partner's latest activity event."""
        return self._scope_of(partner_id).last_active()

    def partner_figures(self, partner_id: str, query: RangeQuery, peers_by: str | None) -> PartnerFigures:
        """A partner's own rows of the partner-page KPIs, and its peers' figures (never their rows)."""
        book = self.insights.book()
        key = ("partner_figures", partner_id, query, peers_by, self.scope)  # once per data version
        if self.access is not None:
            self.access.partner(partner_id)
            scope = self.access
            return self._cached(key, lambda: scope.figures(query.grain, query.start, query.end, peers_by, book=book))
        partner = self.partner(partner_id)
        return self._cached(key, lambda: partner_figures(self.hub, partner, query.grain, query.start, query.end,
                                                         peers_by, self.partner_kpis(), book=book, memo=self._cached))

    def open_tasks(self, partner_id: str) -> list[dict]:
        """The partner's open tasks now, overdue first."""
        scope = self._scope_of(partner_id)
        return scope.open_tasks()

    def unacknowledged_policies(self, partner_id: str) -> list[dict]:
        """The required policies the partner has not acknowledged yet."""
        scope = self._scope_of(partner_id)
        return scope.unacknowledged_policies()

    # -- the quarterly report ---------------------------------------------------------------------
    def report_audiences(self) -> list[tuple[str, str]]:
        """(audience, label) of the reports the actor may read: internal users the internal edition and every
        partner's; a partner user its own."""
        own = [] if self.scope is not None else [("internal", "Internal (whole program)")]
        return own + [(f"partner:{p['partner_id']}", f"{p.get('name') or p['partner_id']} ({p['partner_id']})")
                      for p in self._visible()]

    def _audience(self, audience: str | None) -> str:
        """The audience asked for, checked: a partner user's own edition only (another partner's is a 404, the
        internal one a 403); by default the actor's own edition."""
        from partnerkpi.reports.build import parse_audience

        if audience in (None, ""):
            return "internal" if self.scope is None else f"partner:{self.scope}"
        partner_id = parse_audience(audience)
        if partner_id is None:
            self._whole_program()
        else:
            self.partner(partner_id)
        return audience

    def report(self, period: str | None, audience: str | None) -> Report:
        """The report model of `period` (a quarter) for `audience` ("internal" or "partner:ID")."""
        from partnerkpi.reports.build import build_report

        audience = self._audience(audience)
        return self._cached(("report", period, audience), lambda: build_report(self.hub, period, audience))

    def report_html(self, period: str | None, audience: str | None, paper: str = "A4") -> str:
        """The report as the one renderer writes it (the page's frame, the PDF and the mails show it)."""
        from partnerkpi.reports.render import report_html

        report = self.report(period, audience)
        return self._cached(("report_html", report.period, report.audience, paper),
                            lambda: report_html(report, paper))  # type: ignore[arg-type]


class Insights:
    """The insight reads of a Reader (program-wide: internal actors only, except where said)."""

    def __init__(self, reader: Reader, settings: Settings) -> None:
        self.reader, self.settings = reader, settings

    @property
    def hub(self) -> Hub:
        return self.reader.hub

    def book(self) -> TargetBook:
        """The targets and band sets in force (the built-in ones plus the settings' file)."""
        paths = [self.settings.targets] if self.settings.targets else []
        # not keyed by the data version: kept results judged by the same book are reused (engine/results.py)
        return self.reader.cache.get(("targets", tuple(paths)), lambda: load_targets(paths, catalog=self.hub.catalog))

    def health_config(self) -> HealthConfig:
        return self.reader.cache.get(("health_config", self.settings.health),
                                     lambda: load_config(self.settings.health, self.hub.catalog))

    def as_of(self) -> datetime:
        """The instant health is judged at: the data's now (the watermark, or the clock if that is earlier)."""
        return self.reader._cached(("as_of",), lambda: default_as_of(self.hub))

    def at_risk(self, days: int) -> tuple[datetime, list[RiskEntry], list[RiskEntry]]:
        """At-risk partners and those inactive for `days` days, with reasons, trend and levers."""
        self.reader._whole_program()
        as_of, config = self.as_of(), self.health_config()
        return self.reader._cached(  # the instant travels with the lists: a stale read shows its own
            ("at_risk", as_of, days),
            lambda: (as_of, at_risk(self.hub, as_of, config), inactive(self.hub, as_of, days, config)),
            family=("at_risk", days))

    def partner_health(self, partner_id: str) -> HealthScore | None:
        """A partner's health score for internal users; None for the partner's own users (the score is the
        program team's judgment, with overrides, so it stays internal)."""
        self.reader.partner(partner_id)
        return (self.health_scores() or {}).get(partner_id)

    def health_scores(self) -> dict[str, HealthScore] | None:
        """Every partner's health score by id for internal users; None for a partner's own users."""
        if self.reader.scope is not None:
            return None
        as_of, config = self.as_of(), self.health_config()
        live = self.reader.cache.get(("kept_health",), LiveHealth)  # not keyed by the data version
        version = self.reader._version()[0]
        scores = self.reader._cached(("health", as_of), lambda: live.scores(self.hub, version, as_of, config),
                                     family=("health",))
        return {h.partner_id: h for h in scores}

    def override(self, partner_id: str, *, level: str, reason: str, expires_at: date, by: str) -> Override:
        """Override a partner's health level with a reason until `expires_at` (internal users only)."""
        self.reader._whole_program()
        self.reader.partner(partner_id)
        config = self.health_config()
        with self.reader.write_lock:
            made = add_override(self.hub, partner_id, level=level, reason=reason, expires_at=expires_at,
                                created_by=by, config=config)
            self.reader.cache.clear()  # scores and lists computed before the override are stale
        return made

    def remove_override(self, partner_id: str, override_id: int) -> None:
        """Remove one of the partner's overrides (internal users only)."""
        self.reader._whole_program()
        self.reader.partner(partner_id)
        with self.reader.write_lock:
            if not any(o.override_id == override_id and o.partner_id == partner_id
                       for o in list_overrides(self.hub, include_expired=True)):
                raise UsageError(f"partner {partner_id} has no override #{override_id}",
                                 hint="reload the partner page")
            remove_override(self.hub, override_id)
            self.reader.cache.clear()

    def review(self, quarter: str | None) -> QuarterReview:
        """The quarterly review (improved, worsened, band changes, targets met and missed)."""
        self.reader._whole_program()
        book = self.book()
        return self.reader._cached(("review", quarter), lambda: quarter_review(self.hub, quarter, book))

    def trends(self, query: RangeQuery, kpi: str) -> list[Trend]:
        """One KPI's trends over the range (vs previous, a year earlier, the first period; direction)."""
        self.reader._whole_program()
        return self.reader._cached(("trends", query, kpi), lambda: trends(
            self.hub, query.grain, query.start, query.end, by=query.by, kpis=[kpi]))

    def co_movement(self, kpi: str, grain: Grain) -> CoMovement:
        """Which KPIs move with this one, over all the data."""
        self.reader._whole_program()

        def make() -> CoMovement:
            start, end = activity_range(self.hub, grain)
            return co_movement(self.hub, kpi, grain, start, end)

        return self.reader._cached(("co_movement", kpi, grain), make)

    def impact(self, kpi: str, on: str, around: date | None, grain: Grain) -> ImpactReport:
        """Risers vs fallers, lagged correlation and before/after `around`, over all the data."""
        self.reader._whole_program()
        for kpi_id in (kpi, on):
            self.hub.kpi(kpi_id)  # an unknown id is a 404 before any work

        def make() -> ImpactReport:
            start, end = activity_range(self.hub, grain)
            return impact(self.hub, kpi, on, grain, start, end, around=around)

        return self.reader._cached(("impact", kpi, on, around, grain), make)


    def lifecycle(self, query: RangeQuery) -> tuple[Lifecycle, Stickiness]:
        """Partner lifecycle per period (new, returning, resurrecting, dormant) and the stickiness
        distribution over the range's periods, program and per `by` segment."""
        self.reader._whole_program()
        return self.reader._cached(("lifecycle", query), lambda: (
            lifecycle(self.hub, query.grain, query.start, query.end, by=query.by),
            stickiness(self.hub, query.grain, query.start, query.end, by=query.by)))

    def backtest(self) -> BacktestResult:
        """How well the health score at each quarter end predicted churn in the next quarter."""
        self.reader._whole_program()
        config = self.health_config()
        return self.reader._cached(("backtest",), lambda: backtest(self.hub, config))

    def alerts(self, status: str) -> tuple[list[Alert], list[dict[str, Any]]]:
        """Alerts (active, resolved or all, newest first) and their delivery attempts."""
        self.reader._whole_program()
        return list_alerts(self.hub, status), list_deliveries(self.hub)  # type: ignore[arg-type]

    def acknowledge(self, alert_id: int, by: str) -> Alert:
        """Mark an alert as seen (the first acknowledgement stays)."""
        self.reader._whole_program()
        with self.reader.write_lock:
            return acknowledge(self.hub, alert_id, by)


