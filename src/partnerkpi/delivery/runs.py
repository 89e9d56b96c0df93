"""Running subscriptions. A fire first records one log row per recipient (`pending`, or `refused` with the
reason) in one transaction, then renders each edition once and sends it to that edition's recipients only,
retrying failures with exponential backoff. A row turns `sent` only after the SMTP server accepted the message;
a resend delivers the `pending` and `failed` rows and nothing else, so nothing goes out twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from partnerkpi.clock import Clock, utc_now
from partnerkpi.delivery.recipients import INTERNAL, check_address, editions
from partnerkpi.delivery.schedule import check_cron, check_period, due_fires, next_fire, period_at, whole_seconds, zone
from partnerkpi.delivery.smtp import Report, SendError, compose, message_id, send
from partnerkpi.errors import PartnerKPIError, UsageError
from partnerkpi.settings import MailSettings
from partnerkpi.store.subscriptions import OPEN, Delivery, Subscription, SubscriptionTables

if TYPE_CHECKING:
    from partnerkpi.hub import Hub

log = logging.getLogger(__name__)
AUDIENCES = ("internal", "partners")
Sleeper = Callable[[float], None]


class Renderer(Protocol):
    """Renders one edition: `(period label, audience "internal" or "partner:ID", "pdf" or "html") -> bytes`."""

    def __call__(self, period: str, audience: str, fmt: str) -> bytes: ...


class UnknownSubscription(UsageError):
    """No subscription has this name."""

    http_status = 404


class DeliveryFailed(PartnerKPIError):
    """Some recipients could not be sent to; the run log says why, and a resend delivers just those."""

    http_status = 502


def report_renderer(hub: Hub) -> Renderer:
    """The product's report renderer bound to `hub` (each partner edition is built in that partner's scope).
    The renders of one renderer share a memo, so a burst computes the peers' figures once."""
    from partnerkpi.access import DictMemo
    from partnerkpi.reports.render import render_report

    memo = DictMemo()

    def render(period: str, audience: str, fmt: str) -> bytes:
        return render_report(hub, period, audience, fmt=fmt, memo=memo)

    return render


@dataclass(frozen=True)
class Retry:
    """How often a recipient is tried within one run, and the wait before the second try (doubled after)."""

    attempts: int = 3
    backoff: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        return self.backoff * 2 ** (attempt - 1)


@dataclass(frozen=True)
class RunSummary:
    """The state of one fire after a run or a resend: log rows by status, and older fires skipped as missed."""

    subscription: str
    fire_at: datetime
    counts: dict[str, int]
    skipped: int = 0

    def text(self) -> str:
        """One line for the CLI."""
        parts = ", ".join(f"{self.counts.get(s, 0)} {s}" for s in ("sent", "failed", "refused", "pending"))
        missed = f" ({self.skipped} missed fire(s) skipped)" if self.skipped else ""
        return f"{self.subscription} @ {self.fire_at:%Y-%m-%d %H:%M} UTC: {parts}{missed}"


def parse_segment(text: str | None) -> tuple[str | None, str | None]:
    """--segment TRAIT=VALUE as (trait, value); None as (None, None)."""
    if not text:
        return None, None
    trait, sep, value = text.partition("=")
    if not sep or not trait.strip() or not value.strip():
        raise UsageError(f"--segment '{text}' is not TRAIT=VALUE", hint="write it like type=reseller")
    return trait.strip(), value.strip()


@dataclass
class Subscriptions:
    """Subscriptions of one store: add and list them, fire the due ones, resend what failed."""

    tables: SubscriptionTables
    render: Renderer
    mail: MailSettings = field(default_factory=MailSettings)
    clock: Clock = utc_now
    sleep: Sleeper = time.sleep
    retry: Retry | None = None  # None: from `mail` (attempts, backoff)

    def __post_init__(self) -> None:
        if self.retry is None:
            self.retry = Retry(max(1, self.mail.attempts), self.mail.backoff)

    # -- managing ----------------------------------------------------------------------------------------
    def add(self, name: str, cron: str, *, period: str, audience: str, tz: str | None = None,
            segment: str | None = None, to: tuple[str, ...] = ()) -> Subscription:
        """Add a subscription; every value is checked first."""
        if not name.strip():
            raise UsageError("a subscription needs a name", hint="give --name, e.g. --name weekly-partners")
        if audience not in AUDIENCES:
            raise UsageError(f"--audience '{audience}' is not internal or partners",
                             hint="internal: the internal edition to --to; partners: each partner's own edition")
        if audience == INTERNAL and not to:
            raise UsageError("an internal subscription needs recipients", hint="add --to ADDRESS (repeatable)")
        if audience != INTERNAL and to:
            raise UsageError("--to is for internal subscriptions; a partner edition goes to that partner's users",
                             hint="add partner addresses with `partnerkpi subscriptions address PARTNER EMAIL`")
        tz = tz or self.mail.timezone
        zone(tz)
        trait, value = parse_segment(segment)
        if audience == INTERNAL and trait:
            raise UsageError("--segment is for partner subscriptions", hint="leave it out, or use --audience partners")
        if trait:
            self.tables.partners(self.clock(), trait, value)  # an unknown trait fails here, not at the first fire
        sub = Subscription(name.strip(), check_cron(cron), tz, check_period(period), audience, trait, value,
                           tuple(dict.fromkeys(check_address(a) for a in to)))
        self.tables.add(sub, self.clock())
        return self.get(sub.name)

    def get(self, name: str) -> Subscription:
        """The subscription called `name`."""
        sub = self.tables.get(name)
        if sub is None:
            raise UnknownSubscription(f"there is no subscription '{name}'",
                                      hint="see them with `partnerkpi subscriptions list`")
        return sub

    def remove(self, name: str) -> None:
        """Remove a subscription and its run log."""
        if not self.tables.remove(name):
            raise UnknownSubscription(f"there is no subscription '{name}'",
                                      hint="see them with `partnerkpi subscriptions list`")

    def next_fire(self, sub: Subscription, after: datetime | None = None) -> datetime:
        """The next instant `sub` fires after `after` (default: now), naive UTC."""
        return next_fire(sub.cron, sub.tz, after or self.clock())

    # -- running -----------------------------------------------------------------------------------------
    def run_due(self, now: datetime | None = None) -> list[RunSummary]:
        """Fire every subscription that is due at `now` (default: the clock): its latest fire since the last
        one (or since it was added); older missed fires are skipped, not sent late one after another."""
        now = now or self.clock()
        out = []
        for sub in self.tables.all():
            since = sub.last_fire_at or sub.created_at or now
            fires = due_fires(sub.cron, sub.tz, since, now)
            if fires:
                summary = self.fire(sub.name, fires[-1])
                out.append(RunSummary(summary.subscription, summary.fire_at, summary.counts, len(fires) - 1))
        return out

    def run_once(self, name: str) -> RunSummary:
        """Fire `name` now, whatever its schedule."""
        return self.fire(name, whole_seconds(self.clock()))

    def fire(self, name: str, fire_at: datetime) -> RunSummary:
        """Fire `name` at `fire_at`: log a row per recipient, then deliver. Firing the same instant again
        delivers only what is still pending or failed."""
        sub = self.get(name)
        period, now = period_at(sub.period, fire_at, sub.tz), self.clock()
        rows = [Delivery(sub.name, fire_at, ed.audience, ed.partner_id, r.email, period,
                         "refused" if r.refused else "pending", 0, r.refused,
                         message_id(sub.name, fire_at, ed.audience, r.email), now, None)
                for ed in editions(self.tables, sub, fire_at) for r in ed.recipients]
        self.tables.plan(sub.name, fire_at, rows)
        for row in rows:
            if row.status == "refused":
                log.warning("%s: refused %s for %s: %s", sub.name, row.recipient, row.edition, row.last_error)
        self._deliver(self.tables.log(sub.name, fire_at=fire_at, statuses=OPEN))
        return self.summary(sub.name, fire_at)

    def resend(self, name: str, fire_at: datetime | None = None) -> list[RunSummary]:
        """Deliver the pending and failed rows of `name` (of one fire, or of all); sent ones are never touched."""
        self.get(name)
        rows = self.tables.log(name, fire_at=fire_at, statuses=OPEN)
        self._deliver(rows)
        return [self.summary(name, fire) for fire in sorted({r.fire_at for r in rows})]

    def summary(self, name: str, fire_at: datetime) -> RunSummary:
        """The log rows of one fire, counted by status."""
        counts: dict[str, int] = {}
        for row in self.tables.log(name, fire_at=fire_at):
            counts[row.status] = counts.get(row.status, 0) + 1
        return RunSummary(name, fire_at, counts)

    def _deliver(self, rows: list[Delivery]) -> None:
        """Send each open row, in rounds: after a round with failures, wait (doubling), then try those again."""
        assert self.retry is not None
        titles = self.tables.partner_names() if any(r.partner_id for r in rows) else {}
        reports: dict[tuple[str, datetime, str], Report | str] = {}
        todo = rows
        for attempt in range(1, self.retry.attempts + 1):
            failed = []
            for row in todo:
                error = self._send_one(row, reports, titles)
                last = attempt == self.retry.attempts
                if error is None:
                    self.tables.record(row.key, status="sent", error=None, now=self.clock())
                    continue
                self.tables.record(row.key, status="failed" if last else "pending", error=error, now=self.clock())
                log.warning("%s: delivery of %s to %s failed (try %d): %s",
                            row.subscription, row.edition, row.recipient, attempt, error)
                failed.append(row)
            todo = failed
            if not todo or attempt == self.retry.attempts:
                break
            self.sleep(self.retry.delay(attempt))

    def _send_one(self, row: Delivery, reports: dict, titles: dict[str, str]) -> str | None:
        """Send one row's message; the error text, or None when the server accepted it. Each edition of a
        fire is rendered once; a rendering that fails fails every recipient of that edition with its reason."""
        key = (row.subscription, row.fire_at, row.edition)
        if key not in reports:
            try:
                pdf = self.render(row.period, row.edition, "pdf")
                title = titles.get(row.partner_id, row.partner_id) if row.partner_id else INTERNAL
                reports[key] = Report(row.subscription, row.fire_at, row.period, row.edition, title, pdf)
            except PartnerKPIError as exc:
                reports[key] = f"the report could not be rendered: {exc.message}"
            except Exception as exc:  # noqa: BLE001 (a renderer's failure is the recipients' logged reason)
                reports[key] = f"the report could not be rendered: {type(exc).__name__}: {exc}"
        report = reports[key]
        if isinstance(report, str):
            return report
        try:
            send(compose(report, row.recipient, self.mail), self.mail)
        except SendError as exc:
            return str(exc)
        return None


def open_subscriptions(hub: Hub, mail: MailSettings, *, render: Renderer | None = None,
                       sleep: Sleeper = time.sleep, retry: Retry | None = None) -> Subscriptions:
    """The subscriptions of `hub`'s store (their tables made when missing), rendering with `render` (default: the
    product's report renderer)."""
    return Subscriptions(hub.store.subscriptions, render or report_renderer(hub), mail, hub.clock, sleep, retry)
