"""Where things are: resolved once, in main, and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = "partnerkpi.duckdb"
DEFAULT_ALERT_INTERVAL = 300.0
DEFAULT_MEMORY_LIMIT = "2GB"  # DuckDB would take 80 % of the machine's memory; this keeps a laptop usable
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
    currency: str = DEFAULT_CURRENCY  # shown on money KPIs (cost_to_serve, partner_revenue)

    @classmethod
    def from_env(cls, db: str | None = None, catalog_paths: tuple[Path, ...] = ()) -> Settings:
        """--db / $PARTNERKPI_DB, extra catalogs from $PARTNERKPI_CATALOG, $PARTNERKPI_MEMORY_LIMIT, and the
        targets, health-score and alert-rule files from $PARTNERKPI_TARGETS, $PARTNERKPI_HEALTH and
        $PARTNERKPI_ALERTS, the server's alert schedule from $PARTNERKPI_ALERT_INTERVAL (seconds), and the
        program's currency from $PARTNERKPI_CURRENCY."""
        extra = tuple(Path(p) for p in os.environ.get("PARTNERKPI_CATALOG", "").split(os.pathsep) if p)
        memory = os.environ.get("PARTNERKPI_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT

        def path(name: str) -> Path | None:
            value = os.environ.get(name)
            return Path(value) if value else None

        return cls(db=resolve_db(db), catalog_paths=extra + tuple(catalog_paths), memory_limit=memory,
                   targets=path("PARTNERKPI_TARGETS"), health=path("PARTNERKPI_HEALTH"),
                   alerts=path("PARTNERKPI_ALERTS"), currency=default_currency(),
                   alert_interval=float(os.environ.get("PARTNERKPI_ALERT_INTERVAL") or DEFAULT_ALERT_INTERVAL))
