"""The tables of report subscriptions: the subscriptions, the addresses and recipient domains configured per
partner, and the run log (one row per subscription, fire instant, edition and recipient). Every SQL statement
on them lives here, with the reads of partners and users that bursting needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from partnerkpi.errors import UsageError

STATUSES = ("sent", "failed", "refused", "pending")
OPEN = ("pending", "failed")  # rows a resend delivers

DDL = (
    """CREATE TABLE IF NOT EXISTS subscriptions (
        name VARCHAR PRIMARY KEY, cron VARCHAR NOT NULL, tz VARCHAR NOT NULL, period VARCHAR NOT NULL,
        audience VARCHAR NOT NULL, segment_trait VARCHAR, segment_value VARCHAR, to_addresses VARCHAR[],
        created_at TIMESTAMP NOT NULL, last_fire_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS subscription_addresses (
        partner_id VARCHAR NOT NULL, email VARCHAR NOT NULL, PRIMARY KEY (partner_id, email))""",
    """CREATE TABLE IF NOT EXISTS subscription_domains (
        partner_id VARCHAR NOT NULL, domain VARCHAR NOT NULL, PRIMARY KEY (partner_id, domain))""",
    """CREATE TABLE IF NOT EXISTS subscription_deliveries (
        subscription VARCHAR NOT NULL, fire_at TIMESTAMP NOT NULL, edition VARCHAR NOT NULL, partner_id VARCHAR,
        recipient VARCHAR NOT NULL, period VARCHAR NOT NULL, status VARCHAR NOT NULL, attempts INTEGER NOT NULL,
        last_error VARCHAR, message_id VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL, sent_at TIMESTAMP,
        PRIMARY KEY (subscription, fire_at, edition, recipient))""",
)
SUBSCRIPTION_FIELDS = ("name, cron, tz, period, audience, segment_trait, segment_value, to_addresses, created_at, "
                       "last_fire_at")
DELIVERY_FIELDS = ("subscription, fire_at, edition, partner_id, recipient, period, status, attempts, last_error, "
                   "message_id, updated_at, sent_at")


@dataclass(frozen=True)
class Subscription:
    """A scheduled report: when (cron in a zone), which period, for whom (internal, or every partner of an
    optional segment), and the internal addresses it goes to."""

    name: str
    cron: str
    tz: str
    period: str  # a relative period (last-quarter, ...) or a label (2026-Q3)
    audience: str  # internal | partners
    segment_trait: str | None = None
    segment_value: str | None = None
    to: tuple[str, ...] = ()
    created_at: datetime | None = None
    last_fire_at: datetime | None = None

    @property
    def segment(self) -> str | None:
        """The segment as typed (type=reseller), or None for every partner."""
        return f"{self.segment_trait}={self.segment_value}" if self.segment_trait else None


@dataclass(frozen=True)
class Delivery:
    """One row of the run log: what one recipient got (or not) from one fire of a subscription."""

    subscription: str
    fire_at: datetime
    edition: str  # internal | partner:ID
    partner_id: str | None
    recipient: str
    period: str
    status: str  # sent | failed | refused | pending
    attempts: int
    last_error: str | None
    message_id: str
    updated_at: datetime
    sent_at: datetime | None

    @property
    def key(self) -> tuple[str, datetime, str, str]:
        """What makes the row unique: (subscription, fire instant, edition, recipient)."""
        return (self.subscription, self.fire_at, self.edition, self.recipient)


def _subscription(row: tuple) -> Subscription:
    return Subscription(*row[:7], to=tuple(row[7] or ()), created_at=row[8], last_fire_at=row[9])


class SubscriptionTables:
    """The subscription tables of one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def create(self) -> None:
        """Create the tables when missing."""
        with self.con.cursor() as cur:
            for statement in DDL:
                cur.execute(statement)

    # -- subscriptions ---------------------------------------------------------------------------------
    def add(self, sub: Subscription, now: datetime) -> None:
        """Store a new subscription; the name must be free."""
        if self.get(sub.name) is not None:
            raise UsageError(f"a subscription named '{sub.name}' exists",
                             hint="pick another --name, or remove it first with `partnerkpi subscriptions remove`")
        with self.con.cursor() as cur:
            cur.execute(f"INSERT INTO subscriptions ({SUBSCRIPTION_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                        [sub.name, sub.cron, sub.tz, sub.period, sub.audience, sub.segment_trait, sub.segment_value,
                         list(sub.to), now])

    def remove(self, name: str) -> bool:
        """Remove a subscription and its run log; False when there was none."""
        with self.con.cursor() as cur:
            cur.execute("BEGIN")
            try:
                cur.execute("DELETE FROM subscription_deliveries WHERE subscription = ?", [name])
                gone = cur.execute("DELETE FROM subscriptions WHERE name = ? RETURNING name", [name]).fetchall()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return bool(gone)

    def get(self, name: str) -> Subscription | None:
        """The subscription called `name`, if any."""
        with self.con.cursor() as cur:
            row = cur.execute(f"SELECT {SUBSCRIPTION_FIELDS} FROM subscriptions WHERE name = ?", [name]).fetchall()
        return _subscription(row[0]) if row else None

    def all(self) -> list[Subscription]:
        """Every subscription, by name."""
        with self.con.cursor() as cur:
            rows = cur.execute(f"SELECT {SUBSCRIPTION_FIELDS} FROM subscriptions ORDER BY name").fetchall()
        return [_subscription(r) for r in rows]

    # -- the run log -----------------------------------------------------------------------------------
    def plan(self, name: str, fire_at: datetime, rows: Sequence[Delivery]) -> None:
        """Record a fire in one transaction: its log rows (existing ones kept as they are, so a second run
        of the same fire never resets what went out) and the subscription's last fire instant."""
        values = [[d.subscription, d.fire_at, d.edition, d.partner_id, d.recipient, d.period, d.status, d.attempts,
                   d.last_error, d.message_id, d.updated_at, d.sent_at] for d in rows]
        with self.con.cursor() as cur:
            cur.execute("BEGIN")
            try:
                if values:
                    cur.executemany(f"INSERT INTO subscription_deliveries ({DELIVERY_FIELDS}) VALUES "
                                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", values)
                cur.execute("UPDATE subscriptions SET last_fire_at = greatest(coalesce(last_fire_at, ?), ?) "
                            "WHERE name = ?", [fire_at, fire_at, name])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def record(self, key: tuple[str, datetime, str, str], *, status: str, error: str | None, now: datetime) -> None:
        """Record one attempt on a log row: its new status and error; `sent` also stamps sent_at."""
        with self.con.cursor() as cur:
            cur.execute("UPDATE subscription_deliveries SET status = ?, attempts = attempts + 1, last_error = ?, "
                        "updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END "
                        "WHERE subscription = ? AND fire_at = ? AND edition = ? AND recipient = ?",
                        [status, error, now, status, now, *key])

    def mark(self, key: tuple[str, datetime, str, str], *, status: str, error: str | None, now: datetime) -> None:
        """Set a log row's status and error without counting an attempt (e.g. its edition failed to render)."""
        with self.con.cursor() as cur:
            cur.execute("UPDATE subscription_deliveries SET status = ?, last_error = ?, updated_at = ? "
                        "WHERE subscription = ? AND fire_at = ? AND edition = ? AND recipient = ?",
                        [status, error, now, *key])

    def log(self, name: str | None = None, *, fire_at: datetime | None = None,
            statuses: Sequence[str] = STATUSES) -> list[Delivery]:
        """Log rows, newest fire first, then by edition and recipient; optionally of one subscription, one fire
        and some statuses."""
        with self.con.cursor() as cur:
            rows = cur.execute(
                f"SELECT {DELIVERY_FIELDS} FROM subscription_deliveries WHERE (? IS NULL OR subscription = ?) "
                "AND (CAST(? AS TIMESTAMP) IS NULL OR fire_at = ?) AND list_contains(?, status) "
                "ORDER BY subscription, fire_at DESC, edition, recipient",
                [name, name, fire_at, fire_at, list(statuses)]).fetchall()
        return [Delivery(*r) for r in rows]

    def last_counts(self) -> dict[str, tuple[datetime, dict[str, int]]]:
        """Per subscription: its latest logged fire and the count of rows by status in it."""
        with self.con.cursor() as cur:
            rows = cur.execute(
                "SELECT d.subscription, d.fire_at, d.status, count(*) FROM subscription_deliveries d "
                "JOIN (SELECT subscription, max(fire_at) AS fire_at FROM subscription_deliveries GROUP BY 1) m "
                "USING (subscription, fire_at) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
        out: dict[str, tuple[datetime, dict[str, int]]] = {}
        for name, fire, status, count in rows:
            out.setdefault(name, (fire, {}))[1][status] = count
        return out

    # -- per-partner recipients ------------------------------------------------------------------------
    def set_address(self, partner_id: str, email: str, *, present: bool = True) -> None:
        """Add (or with present=False remove) an address a partner's edition also goes to."""
        self._set("subscription_addresses", "email", partner_id, email, present)

    def set_domain(self, partner_id: str, domain: str, *, present: bool = True) -> None:
        """Add (or remove) a domain to a partner's allow-list of recipient domains."""
        self._set("subscription_domains", "domain", partner_id, domain, present)

    def _set(self, table: str, column: str, partner_id: str, value: str, present: bool) -> None:
        with self.con.cursor() as cur:
            if present:
                cur.execute(f"INSERT INTO {table} (partner_id, {column}) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            [partner_id, value])
            else:
                cur.execute(f"DELETE FROM {table} WHERE partner_id = ? AND {column} = ?", [partner_id, value])

    def addresses(self) -> dict[str, list[str]]:
        """The configured addresses per partner."""
        return self._pairs("SELECT partner_id, email FROM subscription_addresses ORDER BY 1, 2")

    def domains(self) -> dict[str, list[str]]:
        """The configured allow-list of recipient domains per partner (a partner without one has none here)."""
        return self._pairs("SELECT partner_id, domain FROM subscription_domains ORDER BY 1, 2")

    def user_emails(self, at: datetime) -> dict[str, list[str]]:
        """Per partner, the emails of its users still active at `at` (from the canonical users table)."""
        return self._pairs("SELECT partner_id, lower(trim(email)) FROM users WHERE partner_id IS NOT NULL "
                           "AND coalesce(trim(email), '') <> '' AND (deactivated_at IS NULL OR deactivated_at > ?) "
                           "ORDER BY 1, 2", [at])

    def _pairs(self, sql: str, params: list | None = None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.con.cursor() as cur:
            for key, value in cur.execute(sql, params or []).fetchall():
                out.setdefault(key, []).append(value)
        return out

    def partner_names(self) -> dict[str, str]:
        """Every partner's name by id (its id when it has none)."""
        with self.con.cursor() as cur:
            return dict(cur.execute("SELECT partner_id, coalesce(name, partner_id) FROM partners").fetchall())

    def partners(self, at: datetime, trait: str | None = None, value: str | None = None) -> list[tuple[str, str]]:
        """(partner_id, name) of the partners in the program at `at`, optionally only those whose `trait` is
        `value`, by id."""
        with self.con.cursor() as cur:
            columns = {r[0] for r in cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'partners'").fetchall()}
            if trait is not None and trait not in columns - {"partner_id", "name", "onboarded_at", "offboarded_at"}:
                raise UsageError(f"partners have no trait '{trait}'",
                                 hint="write --segment as TRAIT=VALUE with a trait such as type, tier or region")
            where = f' AND "{trait}" = ?' if trait is not None else ""
            rows = cur.execute(
                "SELECT partner_id, coalesce(name, partner_id) FROM partners WHERE (onboarded_at IS NULL OR "
                f"onboarded_at <= ?) AND (offboarded_at IS NULL OR offboarded_at > ?){where} ORDER BY partner_id",
                [at, at, *([value] if trait is not None else [])]).fetchall()
        return [(r[0], r[1]) for r in rows]
