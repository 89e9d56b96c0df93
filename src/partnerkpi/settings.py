"""Where things are: resolved once, in main, and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

DEFAULT_DB = "partnerkpi.duckdb"
DEFAULT_ALERT_INTERVAL = 300.0
DEFAULT_FEED_CADENCE = 1.0  # days between two arrivals of data a feed is expected to keep
DEFAULT_STALE_GRACE = 2.0  # days past the cadence before the data is reported stale
DEFAULT_MEMORY_LIMIT = "2GB"  # DuckDB would take 80 % of the machine's memory; this keeps a laptop usable


def resolve_db(db: str | os.PathLike[str] | None) -> str:
    """`--db` if given, else `PARTNERKPI_DB`, else ./partnerkpi.duckdb."""
    if db:
        return os.fspath(db)
    return os.environ.get("PARTNERKPI_DB") or DEFAULT_DB


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

    @property
    def stale_after(self) -> timedelta:
        """How long after the data watermark the data counts as stale: the feed cadence plus the grace."""
        return timedelta(days=self.feed_cadence + self.stale_grace)

    @classmethod
    def from_env(cls, db: str | None = None, catalog_paths: tuple[Path, ...] = ()) -> Settings:
        """--db / $PARTNERKPI_DB, extra catalogs from $PARTNERKPI_CATALOG, $PARTNERKPI_MEMORY_LIMIT, and the
        targets, health-score and alert-rule files from $PARTNERKPI_TARGETS, $PARTNERKPI_HEALTH and
        $PARTNERKPI_ALERTS, the server's alert schedule from $PARTNERKPI_ALERT_INTERVAL (seconds), and when
        data is stale from $PARTNERKPI_FEED_CADENCE and $PARTNERKPI_STALE_GRACE (days)."""
        extra = tuple(Path(p) for p in os.environ.get("PARTNERKPI_CATALOG", "").split(os.pathsep) if p)
        memory = os.environ.get("PARTNERKPI_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT

        def path(name: str) -> Path | None:
            value = os.environ.get(name)
            return Path(value) if value else None

        return cls(db=resolve_db(db), catalog_paths=extra + tuple(catalog_paths), memory_limit=memory,
                   targets=path("PARTNERKPI_TARGETS"), health=path("PARTNERKPI_HEALTH"),
                   alerts=path("PARTNERKPI_ALERTS"),
                   alert_interval=float(os.environ.get("PARTNERKPI_ALERT_INTERVAL") or DEFAULT_ALERT_INTERVAL),
                   feed_cadence=float(os.environ.get("PARTNERKPI_FEED_CADENCE") or DEFAULT_FEED_CADENCE),
                   stale_grace=float(os.environ.get("PARTNERKPI_STALE_GRACE") or DEFAULT_STALE_GRACE))
