"""Where things are: resolved once, in main, and passed down."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from partnerkpi.errors import UsageError

DEFAULT_DB = "partnerkpi.duckdb"
DEFAULT_ALERT_INTERVAL = 300.0
DEFAULT_FEED_CADENCE = 1.0  # days between two arrivals of data a feed is expected to keep
DEFAULT_STALE_GRACE = 2.0  # days past the cadence before the data is reported stale
DEFAULT_MEMORY_LIMIT = "2GB"  # DuckDB would take 80 % of the machine's memory; this keeps a laptop usable
# The server's DuckDB: its pages read kept results, and the process (DuckDB, the kept results, the refreshes)
# stays within 2 GiB at 10M events with it (bench/dashboard.py); the CLI's one-off computations get more.
SERVER_MEMORY_LIMIT = "1GB"
DEFAULT_MAX_CLOCK_SKEW = timedelta(days=1)
DEFAULT_TS_FLOOR = datetime(2000, 1, 1)
# pandas holds instants as nanoseconds (1677..2262): instants outside these can never be read back.
EARLIEST_FLOOR = datetime(1900, 1, 1)
LONGEST_SKEW = timedelta(days=3650)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class TimeBounds:
    """The instants an import accepts: from `floor` to the receiving instant plus `skew`."""

    floor: datetime = DEFAULT_TS_FLOOR
    skew: timedelta = DEFAULT_MAX_CLOCK_SKEW

    def __post_init__(self) -> None:
        if self.floor < EARLIEST_FLOOR:
            raise UsageError(f"the earliest accepted instant {self.floor:%Y-%m-%d} is before "
                             f"{EARLIEST_FLOOR:%Y-%m-%d}", hint="set PARTNERKPI_TS_FLOOR to a later date")
        if not timedelta(0) <= self.skew <= LONGEST_SKEW:
            raise UsageError(f"the allowed clock skew {self.skew} is not between 0 and {LONGEST_SKEW.days} days",
                             hint="set PARTNERKPI_MAX_CLOCK_SKEW to e.g. 1d, 12h or 3600 (seconds)")


def parse_duration(text: str) -> timedelta:
    """'90' (seconds), '90s', '15m', '12h', '1d' or '2w' as a timedelta."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"'{text}' is not a duration", hint="write it like 1d, 12h, 15m or 3600 (seconds)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[(m.group(2) or "s").lower()])


def parse_floor(text: str) -> datetime:
    """An ISO-8601 date or naive UTC instant as the earliest accepted instant."""
    try:
        value = datetime.fromisoformat(text.strip().removesuffix("Z"))
    except ValueError:
        raise UsageError(f"'{text}' is not a date", hint="write it like 2000-01-01") from None
    return value.replace(tzinfo=None)


def time_bounds_from_env() -> TimeBounds:
    """$PARTNERKPI_TS_FLOOR and $PARTNERKPI_MAX_CLOCK_SKEW, each defaulting when unset."""
    floor = os.environ.get("PARTNERKPI_TS_FLOOR")
    skew = os.environ.get("PARTNERKPI_MAX_CLOCK_SKEW")
    return TimeBounds(parse_floor(floor) if floor else DEFAULT_TS_FLOOR,
                      parse_duration(skew) if skew else DEFAULT_MAX_CLOCK_SKEW)
DEFAULT_CURRENCY = "USD"


def default_currency() -> str:
    """The program's currency (an ISO 4217 code) for money KPIs: $PARTNERKPI_CURRENCY, else USD."""
    return (os.environ.get("PARTNERKPI_CURRENCY") or DEFAULT_CURRENCY).strip().upper()


def resolve_db(db: str | os.PathLike[str] | None) -> str:
    """`--db` if given, else `PARTNERKPI_DB`, else ./partnerkpi.duckdb."""
    if db:
        return os.fspath(db)
    return os.environ.get("PARTNERKPI_DB") or DEFAULT_DB


@dataclass(frozen=True)
class MailSettings:
    """Where report mail goes out: the SMTP server, the sender, retries, and the link printed in the body."""

    host: str = "localhost"
    port: int = 25
    sender: str = "partnerkpi@localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed
    starttls: bool = False
    timeout: float = 30.0
    attempts: int = 3  # tries per recipient within one run
    backoff: float = 30.0  # seconds before the second try; doubled before each further one
    base_url: str = "http://127.0.0.1:8000"  # the product's address, linked from the mail body
    timezone: str = "UTC"  # of subscriptions added without --tz

    @classmethod
    def from_env(cls) -> MailSettings:
        """$PARTNERKPI_SMTP_HOST, _PORT, _FROM, _USER, _PASSWORD, _STARTTLS (1/0), _ATTEMPTS, _BACKOFF (seconds),
        $PARTNERKPI_BASE_URL and $PARTNERKPI_TIMEZONE, each defaulting when unset."""
        env = os.environ.get

        def number(name: str, default: float, kind: type = int) -> Any:
            try:
                return kind(env(name) or default)
            except ValueError:
                raise UsageError(f"${name} '{env(name)}' is not a number", hint=f"set it like {default}") from None

        return cls(host=env("PARTNERKPI_SMTP_HOST") or cls.host, port=number("PARTNERKPI_SMTP_PORT", cls.port),
                   sender=env("PARTNERKPI_SMTP_FROM") or cls.sender, username=env("PARTNERKPI_SMTP_USER") or None,
                   password=env("PARTNERKPI_SMTP_PASSWORD") or None,
                   starttls=(env("PARTNERKPI_SMTP_STARTTLS") or "0").strip().lower() in ("1", "true", "yes"),
                   attempts=number("PARTNERKPI_SMTP_ATTEMPTS", cls.attempts),
                   backoff=number("PARTNERKPI_SMTP_BACKOFF", cls.backoff, float),
                   base_url=env("PARTNERKPI_BASE_URL") or cls.base_url, timezone=env("PARTNERKPI_TIMEZONE") or "UTC")


@dataclass(frozen=True)
class CollectorSettings:
    """How the collector spools and loads: a load every `batch_ms` or `batch_events` events, a 503 past
    `max_backlog` events spooled but not loaded, `max_waiting` requests waiting for the spool or `max_inflight`
    requests under way (so a flood is turned away at once instead of queueing until clients time out)."""

    batch_events: int = 20_000  # events in one load transaction, at most
    batch_ms: float = 250.0  # how often the loader looks for spooled events
    max_backlog: int = 200_000  # events spooled but not loaded before requests get 503
    max_waiting: int = 512  # requests waiting for the spool's fsync before requests get 503
    max_inflight: int = 256  # requests being read, parsed or spooled at once; more get 503 before their body is read
    retry_after: int = 1  # seconds, told to a refused client
    refresh_every: float = 10.0  # seconds between rollup refreshes while events keep coming
    key_cache: float = 2.0  # seconds a checked write key is trusted: a revocation takes effect within it
    segment_bytes: int = 64 << 20  # a spool segment is closed past this size

    @classmethod
    def from_env(cls) -> CollectorSettings:
        """$PARTNERKPI_COLLECTOR_BATCH_EVENTS, _BATCH_MS, _MAX_BACKLOG, _MAX_WAITING, _MAX_INFLIGHT, _RETRY_AFTER,
        _REFRESH_EVERY and _KEY_CACHE, each defaulting when unset."""
        values: dict[str, Any] = {}
        for name in ("batch_events", "batch_ms", "max_backlog", "max_waiting", "max_inflight", "retry_after",
                     "refresh_every", "key_cache"):
            text = os.environ.get(f"PARTNERKPI_COLLECTOR_{name.upper()}")
            if text:
                kind = type(getattr(cls, name))
                try:
                    values[name] = kind(text)
                except ValueError:
                    raise UsageError(f"$PARTNERKPI_COLLECTOR_{name.upper()} '{text}' is not a number",
                                     hint=f"set it like {getattr(cls, name)}") from None
        return cls(**values)


@dataclass(frozen=True)
class Settings:
    """Settings of one run of the product."""

    db: str = DEFAULT_DB
    catalog_paths: tuple[Path, ...] = ()
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    # The insight configurations (None: the built-in defaults).
    targets: Path | None = None
    health: Path | None = None
    alerts: Path | None = None
    alert_interval: float = DEFAULT_ALERT_INTERVAL  # seconds between scheduled alert runs of the server
    feed_cadence: float = DEFAULT_FEED_CADENCE  # days
    stale_grace: float = DEFAULT_STALE_GRACE  # days
    time_bounds: TimeBounds = field(default_factory=TimeBounds)  # instants imports accept
    currency: str = DEFAULT_CURRENCY  # shown on money KPIs (cost_to_serve, partner_revenue)
    mail: MailSettings = field(default_factory=MailSettings)  # report subscriptions' SMTP delivery
    collector: CollectorSettings = field(default_factory=CollectorSettings)  # spool, loader, back-pressure

    @property
    def stale_after(self) -> timedelta:
        """How long after the data watermark the data counts as stale: the feed cadence plus the grace."""
        return timedelta(days=self.feed_cadence + self.stale_grace)

    @classmethod
    def from_env(cls, db: str | None = None, catalog_paths: tuple[Path, ...] = (), *, server: bool = False
                 ) -> Settings:
        """--db / $PARTNERKPI_DB, extra catalogs from $PARTNERKPI_CATALOG, $PARTNERKPI_MEMORY_LIMIT, and the
        targets, health-score and alert-rule files from $PARTNERKPI_TARGETS, $PARTNERKPI_HEALTH and
        $PARTNERKPI_ALERTS, the server's alert schedule from $PARTNERKPI_ALERT_INTERVAL (seconds), when data is
        stale from $PARTNERKPI_FEED_CADENCE and $PARTNERKPI_STALE_GRACE (days), the instants imports accept
        from $PARTNERKPI_TS_FLOOR and $PARTNERKPI_MAX_CLOCK_SKEW, and the program's currency from
        $PARTNERKPI_CURRENCY, report mail from `MailSettings.from_env` and the collector's from
        `CollectorSettings.from_env`. A `server`'s DuckDB memory defaults to SERVER_MEMORY_LIMIT."""
        extra = tuple(Path(p) for p in os.environ.get("PARTNERKPI_CATALOG", "").split(os.pathsep) if p)
        memory = os.environ.get("PARTNERKPI_MEMORY_LIMIT") or (SERVER_MEMORY_LIMIT if server else DEFAULT_MEMORY_LIMIT)

        def path(name: str) -> Path | None:
            value = os.environ.get(name)
            return Path(value) if value else None

        return cls(db=resolve_db(db), catalog_paths=extra + tuple(catalog_paths), memory_limit=memory,
                   targets=path("PARTNERKPI_TARGETS"), health=path("PARTNERKPI_HEALTH"),
                   alerts=path("PARTNERKPI_ALERTS"), currency=default_currency(),
                   alert_interval=float(os.environ.get("PARTNERKPI_ALERT_INTERVAL") or DEFAULT_ALERT_INTERVAL),
                   feed_cadence=float(os.environ.get("PARTNERKPI_FEED_CADENCE") or DEFAULT_FEED_CADENCE),
                   stale_grace=float(os.environ.get("PARTNERKPI_STALE_GRACE") or DEFAULT_STALE_GRACE),
                   time_bounds=time_bounds_from_env(), mail=MailSettings.from_env(),
                   collector=CollectorSettings.from_env())
